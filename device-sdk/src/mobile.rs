//! The native app's payloads for a flow it drives itself (see [`assent_proto::mobile`]):
//! a trusted device's `mobilePayload`, an untrusted app's self-signed one, and reading and
//! answering the server's `serverPayload`.

use std::time::SystemTime;

use assent_proto::device::DeviceInfo;
use assent_proto::mobile::{
    NEW_DEVICE_PAYLOAD_TYPE, NewDeviceClaims, ServerPayload, ServerPayloadAnswer,
    TRUSTED_DEVICE_PAYLOAD_TYPE, TrustedDeviceClaims,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::signer::{random_jti, unix_secs};
use crate::{DeviceKey, DeviceSigner, SdkError};

/// Reads a flow's `serverPayload` (base64url JSON, as `MOBILE_PAIRING_REQUIRED` shows it).
pub fn decode_server_payload(raw: &str) -> Result<ServerPayload, SdkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.trim())
        .map_err(|_| SdkError::ServerPayload("not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| SdkError::ServerPayload("not {flowId, nonce, pairingKey?}"))
}

impl DeviceSigner {
    /// A trusted device's `mobilePayload` for `flow_id`: signed now, with a fresh `jti`.
    pub fn trusted_device_payload(&self, flow_id: &str) -> Result<String, SdkError> {
        self.trusted_device_payload_with(flow_id, SystemTime::now(), &random_jti())
    }

    /// A trusted device's `mobilePayload` with a chosen `iat` and `jti` (to try what the
    /// server refuses: a stale one, a replayed one).
    pub fn trusted_device_payload_with(
        &self,
        flow_id: &str,
        issued_at: SystemTime,
        jti: &str,
    ) -> Result<String, SdkError> {
        let claims = TrustedDeviceClaims {
            iss: self.device_id().to_owned(),
            flow_id: flow_id.to_owned(),
            iat: unix_secs(issued_at),
            jti: jti.to_owned(),
        };
        self.key().sign(Some(TRUSTED_DEVICE_PAYLOAD_TYPE), &claims)
    }

    /// The `mobilePayload` answering a `serverPayload`: the device's signature over it.
    pub fn answer_server_payload(&self, payload: &ServerPayload) -> Result<String, SdkError> {
        let answer = ServerPayloadAnswer {
            device_id: self.device_id().to_owned(),
            flow_id: payload.flow_id.clone(),
            nonce: payload.nonce.clone(),
        };
        self.key().sign(None, &answer)
    }
}

impl DeviceKey {
    /// The `mobilePayload` of an app that is not trusted yet: this new key's public half
    /// and what the device says about itself, signed by the key, for `flow_id`.
    pub fn new_device_payload(&self, flow_id: &str, info: &DeviceInfo) -> Result<String, SdkError> {
        self.new_device_payload_with(flow_id, info, SystemTime::now(), &random_jti())
    }

    /// [`Self::new_device_payload`] with a chosen `iat` and `jti`.
    pub fn new_device_payload_with(
        &self,
        flow_id: &str,
        info: &DeviceInfo,
        issued_at: SystemTime,
        jti: &str,
    ) -> Result<String, SdkError> {
        let claims = NewDeviceClaims {
            public_jwk: self.public_jwk().clone(),
            flow_id: flow_id.to_owned(),
            iat: unix_secs(issued_at),
            jti: jti.to_owned(),
            device: info.clone(),
        };
        self.sign(Some(NEW_DEVICE_PAYLOAD_TYPE), &claims)
    }
}
