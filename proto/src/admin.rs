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

/// `GET /admin/v1/users/{userId}`: the profile as the operator sees it. The user code's
/// hash is never part of it: an offline guess needs only the hash, and the code is short.
/// Field names are those the profile was always answered with (snake case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    /// Stable identifier.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Mobile number for SMS, E.164.
    #[serde(default)]
    pub phone: Option<String>,
    /// Number for voice calls, E.164.
    #[serde(default)]
    pub voice: Option<String>,
    /// Directory groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free attributes from the federation server.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Whether the user has a CIBA `user_code` (never the code or its hash).
    pub has_user_code: bool,
}
