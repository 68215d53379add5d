//! What a device keeps between runs: its server, its ids, its private key and the seed of
//! its own passcodes. An app would keep it in its platform's key store; the simulator
//! keeps it in a file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::SdkError;

/// A device's record, as kept.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRecord {
    /// The assent base URL.
    pub server: String,
    /// The id the server gave the device (empty for a one-time device's key not yet
    /// given one).
    pub device_id: String,
    /// The user it was paired with (empty for a one-time device).
    pub user_id: String,
    /// The device's private JWK.
    pub private_jwk: Map<String, Value>,
    /// The seed of the app's own passcodes, given at pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_seed: Option<String>,
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl DeviceRecord {
    /// Reads a record from a JSON file.
    pub fn load(path: &Path) -> Result<Self, SdkError> {
        crate::file::read_json(path)
    }

    /// Writes the record to a JSON file only its owner may read.
    pub fn save(&self, path: &Path) -> Result<(), SdkError> {
        crate::file::write_private_json(path, self)
    }
}
