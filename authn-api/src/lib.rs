//! assent's PingFederate-style Authentication API: `GET/POST /pf-ws/authn/flows/{flowId}`.
//! It renders a flow's state as the typed PingFederate status of `assent-proto` and maps
//! the typed actions onto the domain; the flows themselves live in `assent-core`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

mod action;
mod error;
pub mod pages;
mod qr;
mod render;
mod routes;

pub use routes::configure;
