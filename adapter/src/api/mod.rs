//! HTTP routes of the Adapter, Device and Admin APIs, and the operational endpoints.
//! The only module of this crate that knows about actix.

mod admin;
mod ops;
mod problem;
mod telemetry;

use actix_web::web;

pub use self::problem::{Problem, ProblemError, bad_request};
pub use self::telemetry::observe;

/// Registers every route of this crate.
pub fn configure(config: &mut web::ServiceConfig) {
    ops::configure(config);
    admin::configure(config);
}
