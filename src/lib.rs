//! Start-up wiring of the `assent` binary: builds the application from a configuration,
//! the same way in `main` and in the tests.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

pub mod config;
pub mod device;
pub mod secrets;
pub mod startup;
pub mod telemetry;

pub use startup::{Application, StartError};
