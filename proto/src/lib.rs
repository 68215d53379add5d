//! Wire types of the Adapter, Authentication, Device, Admin and CIBA APIs and of the native app's
//! payloads: plain serde
//! structs shared by the server, the device SDK and the device simulator, so that client
//! and server cannot drift. Ids are plain strings here; the server checks them where it
//! turns these into domain values.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

pub mod adapter;
pub mod admin;
pub mod authn;
pub mod ciba;
pub mod device;
pub mod mobile;
pub mod ops;
