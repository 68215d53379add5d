//! The Device API: what the native app (or `assent device`) sends and receives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::adapter::Application;

/// `201` answer of `POST /admin/v1/users/{userId}/pairing-keys`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingKeyIssued {
    /// The one-time key.
    pub pairing_key: String,
    /// For whom.
    pub user_id: String,
    /// When it stops working (seconds since the epoch).
    pub expires_at: u64,
}

/// What a device says about itself when it pairs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// A name for the device.
    pub name: String,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
}

/// `POST /device/v1/pairings`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PairRequest {
    /// The one-time key.
    pub pairing_key: String,
    /// The device's EC P-256 public JWK.
    pub public_jwk: Map<String, Value>,
    /// A name for the device.
    pub name: String,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
}

/// `201` answer to a pairing.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Paired {
    /// The new device's id (the `iss` of its JWTs).
    pub device_id: String,
    /// The user it is paired with.
    pub user_id: String,
    /// The seed (base32, RFC 6238, SHA-1, 6 digits, 30 s) of the app's own passcodes,
    /// given once, at pairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_seed: Option<String>,
}

/// A request as the device sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    /// The id to answer.
    pub auth_id: String,
    /// `oob` or `transaction`.
    pub kind: String,
    /// The user asked (a device may serve several).
    pub user_id: String,
    /// Title to show.
    pub title: String,
    /// Body to show.
    pub body: String,
    /// The application signed in to.
    pub application: Application,
    /// The browser's address.
    pub client_ip: Option<String>,
    /// The parameters shown, which the proof binds.
    pub dynamic_params: BTreeMap<String, String>,
    /// When the request times out (seconds since the epoch).
    pub expires_at: u64,
    /// A silent request: the app answers with its key, without asking the person.
    #[serde(default)]
    pub silent: bool,
    /// Number matching: the person picks the number their browser shows among these,
    /// and the proof carries it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub number_choices: Vec<u8>,
    /// The administrator's message, shown with the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_message: Option<String>,
}

/// `GET /device/v1/pending`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PendingList {
    /// Requests waiting for this device, soonest expiry first.
    pub requests: Vec<PendingRequest>,
}

/// A device's answer to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Yes, it's me.
    Approve,
    /// No.
    Deny,
}

impl Decision {
    /// Parses `approve` / `deny`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "approve" => Some(Self::Approve),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

/// `POST /device/v1/authentications/{authId}`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approve` or `deny`; kept a string so the server can say what is wrong with it.
    pub decision: String,
    /// Compact JWS by the device key over [`ProofClaims`].
    pub proof: String,
}

/// What a device signs when it answers a request (the payload of `proof`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofClaims {
    /// The request answered.
    pub auth_id: String,
    /// The answer.
    pub decision: Decision,
    /// The hash of the dynamic parameters shown: base64url (no padding) of the SHA-256
    /// of their JSON object, keys sorted, no spaces.
    pub params_hash: String,
    /// Number matching: the number the person picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

/// Answer to a decision.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionAccepted {
    /// The request answered.
    pub auth_id: String,
    /// The flow's status now.
    pub status: String,
}

/// `POST /device/v1/users`: pairs a trusted device with one more user (a shared device).
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRequest {
    /// A pairing key issued for that user.
    pub pairing_key: String,
}

/// A paired device as its user (`GET /device/v1/devices`) and the operator see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    /// Device id.
    pub id: String,
    /// The name the app reported.
    pub name: String,
    /// The user's name for it.
    pub nickname: Option<String>,
    /// Operating system.
    pub os: String,
    /// Operating system version.
    pub os_version: String,
    /// Hardware model.
    pub model: String,
    /// When it was paired (seconds since the epoch).
    pub paired_at: u64,
    /// The user's primary device.
    pub primary: bool,
}

/// `GET /device/v1/devices`: the devices of this device's user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// Oldest first.
    pub devices: Vec<PairedDevice>,
}

/// Answer of `POST /device/v1/users`: the users this (shared) device now serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceJoined {
    /// The device.
    pub device_id: String,
    /// Every user it is paired with, the first pairing first.
    pub users: Vec<String>,
}

/// Where a QR sign-on stands after a scan or a user selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QrStatus {
    /// A shared device: the person picks which of its users they are.
    UserSelectionRequired,
    /// The person must still approve on the device (a silent push comes first).
    PushConfirmationWaiting,
    /// Signed in.
    Completed,
}

/// Answer to `POST /device/v1/qr/{token}` and `.../select`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrOutcome {
    /// Where the sign-on stands.
    pub status: QrStatus,
    /// The application signed in to.
    pub application_name: String,
    /// The users to choose from (a shared device).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<QrUser>,
}

/// A user a shared device can sign in as.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QrUser {
    /// The user id to select.
    pub id: String,
    /// Their login name.
    pub username: String,
}

/// `POST /device/v1/qr/{token}/select`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QrSelectRequest {
    /// Which of the device's users signs in.
    pub user_id: String,
}
