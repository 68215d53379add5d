//! The native app's side of assent, as a library a mobile app can embed (and the
//! `assent device` simulator is built on): the device's key pair, the JWTs that
//! authenticate it to the Device API, the proofs that answer a request, the payloads of a
//! flow the app drives itself, and a typed async client of the Device API.
//!
//! Crypto is josekit's (ES256 on P-256); the wire types are `assent-proto`'s, the same the
//! server reads, so the two cannot drift.

#![deny(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

mod client;
mod error;
mod file;
mod key;
mod mobile;
mod record;
mod signer;

#[cfg(test)]
mod tests;

/// The wire types, so an app needs no second dependency to name them.
pub use assent_proto as proto;
pub use assent_proto::device::{Decision, DeviceInfo};
pub use assent_proto::mobile::ServerPayload;
pub use client::{Client, Device, qr_token};
pub use error::SdkError;
pub use key::DeviceKey;
pub use mobile::decode_server_payload;
pub use record::DeviceRecord;
pub use signer::{DeviceSigner, TOKEN_LIFETIME, params_hash};
