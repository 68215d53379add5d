//! End-to-end tests: each starts the real server (and, for the Redis backend, a real
//! `redis-server` on a free port) and talks to it over HTTP like a client would.
//! All modules compile into this one test binary.

mod browser;
// The software authenticator of the core's WebAuthn tests: one implementation for both.
#[path = "../../core/src/soft_authenticator.rs"]
mod soft_authenticator;
mod support;

mod audit;
mod bad_input;
mod ciba;
mod default_device;
mod delivery;
mod demo_phone;
mod device_authorization;
mod devices;
mod entry;
mod faults;
mod federation;
mod flow_cache;
mod hostile;
mod interop;
mod languages;
mod load;
mod new_device;
mod one_time_device;
mod oob;
mod ops;
mod otp;
mod pages;
mod pages_browser;
mod pages_passcode;
mod pages_passcode_browser;
mod pages_qr;
mod pages_qr_browser;
mod passwordless;
mod passwordless_browser;
mod phone_browser;
mod policy;
mod profiles;
mod qr;
mod registration;
mod scale;
mod store;
mod tokens;
mod walkthrough;
mod webauthn;
mod webauthn_config;
mod webauthn_pages_browser;
mod webauthn_widget;
mod widget;
