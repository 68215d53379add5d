//! What a paired device signs with its key: the JWTs that authenticate it to the Device
//! API (`Authorization: Device <jwt>`) and the proofs that answer a request.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use assent_proto::device::{Decision, PendingRequest, ProofClaims};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::Digest;

use crate::{DeviceKey, SdkError};

/// How long a device JWT made by [`DeviceSigner::token`] lives: the server accepts at most
/// five minutes, and a short life makes a leaked one nearly worthless.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// A device's id with its key: what signs for a paired (or one-time) device.
#[derive(Clone, Debug)]
pub struct DeviceSigner {
    device_id: String,
    key: DeviceKey,
}

/// The claims of a device JWT.
#[derive(Serialize)]
struct TokenClaims<'a> {
    iss: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
}

/// Seconds since the epoch (0 before it: a clock that wrong fails at the server).
pub(crate) fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A single-use id: 128 random bits, base64url.
pub(crate) fn random_jti() -> String {
    URL_SAFE_NO_PAD.encode(josekit::util::random_bytes(16))
}

/// The hash a proof carries of the dynamic parameters a request showed: base64url (no
/// padding) of the SHA-256 of their JSON object (keys sorted, no spaces).
pub fn params_hash(params: &BTreeMap<String, String>) -> String {
    // josekit offers no bare digest; sha2 is what the server hashes the same bytes with.
    let canonical = serde_json::to_vec(params).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical))
}

impl DeviceSigner {
    /// The signer of the device the server knows as `device_id`.
    pub fn new(device_id: impl Into<String>, key: DeviceKey) -> Self {
        Self {
            device_id: device_id.into(),
            key,
        }
    }

    /// The device id (the `iss` of its JWTs).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The key it signs with.
    pub fn key(&self) -> &DeviceKey {
        &self.key
    }

    /// A fresh device JWT (`iss` = device id, [`TOKEN_LIFETIME`], random `jti`), for
    /// `Authorization: Device <jwt>`.
    pub fn token(&self) -> Result<String, SdkError> {
        self.token_with(SystemTime::now() + TOKEN_LIFETIME, &random_jti())
    }

    /// A device JWT with a chosen expiry and id (to try what the server refuses).
    pub fn token_with(&self, expires_at: SystemTime, jti: &str) -> Result<String, SdkError> {
        self.key.sign_jwt(&TokenClaims {
            iss: &self.device_id,
            iat: unix_secs(SystemTime::now()),
            exp: unix_secs(expires_at),
            jti,
        })
    }

    /// A decision proof over any claims.
    pub fn proof(&self, claims: &ProofClaims) -> Result<String, SdkError> {
        self.key.sign(None, claims)
    }

    /// The proof answering `request`: its auth id, the decision, the hash of the
    /// parameters it showed, and the number picked when it asks for number matching.
    pub fn decision_proof(
        &self,
        request: &PendingRequest,
        decision: Decision,
        number: Option<u8>,
    ) -> Result<String, SdkError> {
        self.proof(&ProofClaims {
            auth_id: request.auth_id.clone(),
            decision,
            params_hash: params_hash(&request.dynamic_params),
            number,
        })
    }
}
