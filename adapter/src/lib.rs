//! assent's HTTP routes of the Adapter, Device and Admin APIs, and the operational
//! endpoints: each parses, calls one function of `assent-core`, and maps its result or its
//! error to a response. Wire types come from `assent-proto`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

mod adapter_api;
mod admin;
mod auth;
mod device_api;
mod ops;
mod problem;
mod telemetry;
mod wire;

use actix_web::web;

pub use self::problem::{Problem, ProblemError, bad_request, json_error};
pub use self::telemetry::observe;

/// Registers every route of this crate.
pub fn configure(config: &mut web::ServiceConfig) {
    ops::configure(config);
    admin::configure(config);
    adapter_api::configure(config);
    device_api::configure(config);
}
