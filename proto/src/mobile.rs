//! The native app's payloads on the Authentication API: `mobilePayload` (from the app's
//! SDK, in `authenticate` and `continueAuthentication`) and `serverPayload` (from assent,
//! in `MOBILE_PAIRING_REQUIRED`). The federation server relays both without reading them.
//!
//! - A trusted device proves itself with a compact JWS (ES256, by its device key, `typ`
//!   [`TRUSTED_DEVICE_PAYLOAD_TYPE`]) over [`TrustedDeviceClaims`].
//! - An app not trusted yet sends its new public key, self-signed: a compact JWS (ES256, by
//!   the key it carries, `typ` [`NEW_DEVICE_PAYLOAD_TYPE`]) over [`NewDeviceClaims`].
//! - `serverPayload` is base64url (no padding) of the JSON of [`ServerPayload`]; the app
//!   answers it with a compact JWS by its device key over [`ServerPayloadAnswer`], or pairs
//!   with the pairing key it carries.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::device::DeviceInfo;

/// The JWS `typ` of a trusted device's `mobilePayload`: no other token of the device
/// (a Device API JWT, a decision proof) can pass for one.
pub const TRUSTED_DEVICE_PAYLOAD_TYPE: &str = "assent-trusted-device+jwt";

/// The JWS `typ` of an untrusted app's self-signed `mobilePayload`.
pub const NEW_DEVICE_PAYLOAD_TYPE: &str = "assent-new-device+jwt";

/// What a trusted device signs to be let into a flow with no interaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustedDeviceClaims {
    /// The signing device's id.
    pub iss: String,
    /// The flow it authenticates for.
    pub flow_id: String,
    /// When it was signed (seconds since the epoch): the server accepts only fresh ones.
    pub iat: u64,
    /// A single-use id: the server refuses a payload it has seen.
    pub jti: String,
}

/// What an app that is not trusted yet signs with the new key it wants to pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDeviceClaims {
    /// The new key's EC P-256 public JWK; it also verifies this payload.
    pub public_jwk: Map<String, Value>,
    /// The flow it wants to pair in.
    pub flow_id: String,
    /// When it was signed (seconds since the epoch).
    pub iat: u64,
    /// A single-use id.
    pub jti: String,
    /// What the device says about itself, as in a pairing.
    #[serde(flatten)]
    pub device: DeviceInfo,
}

/// `serverPayload`, decoded: the server's one-time challenge to the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPayload {
    /// The flow it belongs to.
    pub flow_id: String,
    /// The one-time challenge.
    pub nonce: String,
    /// For automatic pairing: the one-time key the app pairs its new key with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing_key: Option<String>,
}

/// What a device signs to answer a [`ServerPayload`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPayloadAnswer {
    /// The signing device.
    pub device_id: String,
    /// The flow it authorizes.
    pub flow_id: String,
    /// The challenge answered.
    pub nonce: String,
}
