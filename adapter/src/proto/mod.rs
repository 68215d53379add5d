//! Wire types of the Adapter and Device APIs: plain serde structs shared by the server and
//! the device simulator, so that client and server cannot drift.

pub mod adapter;
pub mod device;
