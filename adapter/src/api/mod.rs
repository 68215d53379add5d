//! HTTP routes of the Adapter, Device and Admin APIs, and the operational endpoints.
//! The only module of this crate that knows about actix.

mod adapter_api;
mod admin;
mod auth;
mod device_api;
mod ops;
mod problem;
mod telemetry;

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
