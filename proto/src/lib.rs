//! Wire types of the Adapter, Device and CIBA APIs: plain serde structs shared by the
//! server and the device simulator, so that client and server cannot drift. Ids are plain
//! strings here; the server checks them where it turns these into domain values.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

pub mod adapter;
pub mod ciba;
pub mod device;
