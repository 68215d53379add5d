//! A device's P-256 key (ES256, through josekit): the server verifies device JWTs and
//! decision proofs with the public half; the device (or the simulator) signs with the
//! private half.

use std::time::{Duration, SystemTime};

use josekit::jwk::Jwk;
use josekit::jws::{ES256, JwsHeader};
use josekit::jwt::{self, JwtPayload};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jwt::numeric_claim;

/// How far ahead a device JWT's `exp` may lie: tokens are short-lived by design.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated between device and server.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// A device's public key: an EC P-256 JWK with only its public parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PublicDeviceKey(Map<String, Value>);

impl PublicDeviceKey {
    /// Accepts an EC P-256 public JWK; refuses private keys and other key types.
    pub fn parse(raw: &Map<String, Value>) -> Result<Self, String> {
        let field = |name: &str| raw.get(name).and_then(Value::as_str);
        if field("kty") != Some("EC") || field("crv") != Some("P-256") {
            return Err("publicJwk must be an EC key on P-256 (kty EC, crv P-256)".to_owned());
        }
        if raw.contains_key("d") {
            return Err("publicJwk holds a private key: send only the public part".to_owned());
        }
        let (Some(x), Some(y)) = (field("x"), field("y")) else {
            return Err("publicJwk needs x and y".to_owned());
        };
        let mut public = Map::new();
        for (name, value) in [("kty", "EC"), ("crv", "P-256"), ("x", x), ("y", y)] {
            public.insert(name.to_owned(), Value::String(value.to_owned()));
        }
        let key = Self(public);
        // Proves the point is on the curve and the encoding valid.
        key.verifier()
            .map_err(|_| "publicJwk is not a valid P-256 public key".to_owned())?;
        Ok(key)
    }

    fn verifier(&self) -> Result<josekit::jws::alg::ecdsa::EcdsaJwsVerifier, josekit::JoseError> {
        ES256.verifier_from_jwk(&Jwk::from_map(self.0.clone())?)
    }

    /// The JWK as JSON.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// What a verified device JWT says.
#[derive(Debug)]
pub struct TokenClaims {
    /// The token id, single-use.
    pub jti: String,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// Verifies a device JWT: ES256 signature by `key`, `iss` = `device_id`, `exp` in the
/// future but at most [`MAX_TOKEN_LIFETIME`] ahead, a `jti`. The message says what failed.
pub fn verify_token(
    token: &str,
    key: &PublicDeviceKey,
    device_id: &str,
    now: SystemTime,
) -> Result<TokenClaims, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (payload, _) = jwt::decode_with_verifier(token, &verifier)
        .map_err(|_| "the device token's signature does not verify (ES256 by the device key)")?;
    if payload.issuer() != Some(device_id) {
        return Err("the device token's iss is not the device id");
    }
    let now_secs = unix_secs(now);
    let exp = numeric_claim(&payload, "exp")?.ok_or("the device token has no exp")?;
    if exp.saturating_add(CLOCK_SKEW.as_secs()) <= now_secs {
        return Err("the device token has expired");
    }
    if exp > now_secs + MAX_TOKEN_LIFETIME.as_secs() + CLOCK_SKEW.as_secs() {
        return Err("the device token's exp is too far ahead (at most 5 minutes)");
    }
    if numeric_claim(&payload, "nbf")?.is_some_and(|nbf| nbf > now_secs + CLOCK_SKEW.as_secs()) {
        return Err("the device token is not valid yet");
    }
    let expires_at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp);
    let jti = payload
        .jwt_id()
        .filter(|jti| (1..=128).contains(&jti.len()))
        .ok_or("the device token needs a jti of 1 to 128 characters")?;
    Ok(TokenClaims {
        jti: jti.to_owned(),
        expires_at,
    })
}

/// What a device signs when it answers a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofClaims {
    /// The request answered.
    pub auth_id: String,
    /// `approve` or `deny`.
    pub decision: String,
    /// [`crate::params::DynamicParams::digest`] of the parameters shown.
    pub params_hash: String,
    /// Number matching: the number the person picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
}

/// Verifies a decision proof (a compact JWS, ES256, by the device key) and returns what
/// it binds.
pub fn verify_proof(proof: &str, key: &PublicDeviceKey) -> Result<ProofClaims, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (payload, _) = josekit::jws::deserialize_compact(proof, &verifier)
        .map_err(|_| "the proof's signature does not verify (ES256 by the device key)")?;
    serde_json::from_slice(&payload)
        .map_err(|_| "the proof's payload is not {authId, decision, paramsHash}")
}

/// What a trusted app signs to authorize a flow: the server's challenge, and who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MobileClaims {
    /// The signing device.
    pub device_id: String,
    /// The flow it authorizes.
    pub flow_id: String,
    /// The flow's one-time nonce.
    pub nonce: String,
}

/// The device a mobile payload claims to come from, before verifying it.
pub fn mobile_payload_device(payload: &str) -> Option<String> {
    crate::jwt::unverified_claims::<MobileClaims>(payload).map(|claims| claims.device_id)
}

/// Verifies a mobile payload (a compact JWS, ES256, by the device key).
pub fn verify_mobile_payload(
    payload: &str,
    key: &PublicDeviceKey,
) -> Result<MobileClaims, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (bytes, _) = josekit::jws::deserialize_compact(payload, &verifier)
        .map_err(|_| "the mobile payload's signature does not verify (ES256 by the device key)")?;
    serde_json::from_slice(&bytes)
        .map_err(|_| "the mobile payload is not {deviceId, flowId, nonce}")
}

/// The device's side: a private key and the id the server gave it.
pub struct DeviceSigner {
    device_id: String,
    private_jwk: Jwk,
}

impl DeviceSigner {
    /// A fresh P-256 key pair: the private JWK (to keep) and the public JWK (to pair with).
    pub fn generate_key() -> Result<(Jwk, Jwk), josekit::JoseError> {
        let pair = ES256.generate_key_pair()?;
        Ok((pair.to_jwk_private_key(), pair.to_jwk_public_key()))
    }

    /// A signer for a paired device.
    pub fn new(
        device_id: &str,
        private_jwk: Map<String, Value>,
    ) -> Result<Self, josekit::JoseError> {
        Ok(Self {
            device_id: device_id.to_owned(),
            private_jwk: Jwk::from_map(private_jwk)?,
        })
    }

    /// A fresh device JWT (`iss` = device id, 60 s lifetime, random `jti`), for
    /// `Authorization: Device <jwt>`.
    pub fn token(&self) -> Result<String, josekit::JoseError> {
        self.token_with(
            SystemTime::now() + Duration::from_secs(60),
            &crate::ids::random_alphanumeric(22),
        )
    }

    /// A device JWT with a chosen expiry and id (tests use it to try expired ones).
    pub fn token_with(
        &self,
        expires_at: SystemTime,
        jti: &str,
    ) -> Result<String, josekit::JoseError> {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let mut payload = JwtPayload::new();
        payload.set_issuer(&self.device_id);
        payload.set_issued_at(&SystemTime::now());
        payload.set_expires_at(&expires_at);
        payload.set_jwt_id(jti);
        let signer = ES256.signer_from_jwk(&self.private_jwk)?;
        jwt::encode_with_signer(&payload, &header, &signer)
    }

    /// Any claims as a JWT signed by the device key, unchecked (tests use it to forge
    /// odd tokens).
    pub fn sign_jwt(&self, claims: Value) -> Result<String, josekit::JoseError> {
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        let signer = ES256.signer_from_jwk(&self.private_jwk)?;
        josekit::jws::serialize_compact(claims.to_string().as_bytes(), &header, &signer)
    }

    /// The mobile payload answering a flow's server payload (`{flowId, nonce}`).
    pub fn mobile_payload(&self, flow_id: &str, nonce: &str) -> Result<String, josekit::JoseError> {
        let claims = MobileClaims {
            device_id: self.device_id.clone(),
            flow_id: flow_id.to_owned(),
            nonce: nonce.to_owned(),
        };
        let signer = ES256.signer_from_jwk(&self.private_jwk)?;
        let payload =
            serde_json::to_vec(&claims).map_err(|e| josekit::JoseError::InvalidJson(e.into()))?;
        josekit::jws::serialize_compact(&payload, &JwsHeader::new(), &signer)
    }

    /// A decision proof.
    pub fn proof(&self, claims: &ProofClaims) -> Result<String, josekit::JoseError> {
        let signer = ES256.signer_from_jwk(&self.private_jwk)?;
        let payload =
            serde_json::to_vec(claims).map_err(|e| josekit::JoseError::InvalidJson(e.into()))?;
        josekit::jws::serialize_compact(&payload, &JwsHeader::new(), &signer)
    }
}
