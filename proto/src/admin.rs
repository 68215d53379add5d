//! The Admin API: what the operator reads about users and their devices.

use serde::{Deserialize, Serialize};

use crate::authn::Method;
use crate::device::PairedDevice;

/// `GET /admin/v1/users/{userId}/devices`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDevices {
    /// The paired mobile devices, oldest first.
    pub devices: Vec<PairedDevice>,
    /// The passcode devices (SMS, voice, email, authenticator app), oldest first.
    pub passcode_devices: Vec<PasscodeDevice>,
}

/// A passcode device as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasscodeDevice {
    /// Device id.
    pub id: String,
    /// `SMS`, `VOICE`, `EMAIL` or `TOTP`.
    pub method: Method,
    /// Where codes go, masked.
    pub target: Option<String>,
    /// When it was set up (seconds since the epoch).
    pub paired_at: u64,
}
