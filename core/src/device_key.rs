//! A device's P-256 key (ES256, through josekit), as the server sees it: the public half,
//! and the checks of what the device signs with the private half — its JWTs, its decision
//! proofs, its mobile payloads. The signing side is the device SDK's (`assent-device-sdk`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use assent_proto::device::ProofClaims;
use assent_proto::mobile::{
    NEW_DEVICE_PAYLOAD_TYPE, NewDeviceClaims, ServerPayloadAnswer, TRUSTED_DEVICE_PAYLOAD_TYPE,
    TrustedDeviceClaims,
};
use josekit::jwk::Jwk;
use josekit::jws::ES256;
use josekit::jws::alg::ecdsa::EcdsaJwsVerifier;
use josekit::jwt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jwt::numeric_claim;

/// How far ahead a device JWT's `exp` may lie: tokens are short-lived by design.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Clock skew tolerated between device and server.
pub const CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Verifiers by their key's coordinates `(x, y)`.
type VerifierCache = HashMap<(String, String), Arc<EcdsaJwsVerifier>>;

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

    /// The key's verifier, decoded once per key and kept: decoding a key costs OpenSSL more
    /// than the verification itself.
    fn verifier(&self) -> Result<Arc<EcdsaJwsVerifier>, josekit::JoseError> {
        /// Keys kept at most; past it the cache starts over (every entry can be rebuilt).
        const CAPACITY: usize = 16_384;
        static VERIFIERS: LazyLock<Mutex<VerifierCache>> = LazyLock::new(Mutex::default);
        let coordinate = |name: &str| {
            self.0
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let id = (coordinate("x"), coordinate("y"));
        if let Some(verifier) = VERIFIERS
            .lock()
            .ok()
            .and_then(|cache| cache.get(&id).cloned())
        {
            return Ok(verifier);
        }
        let verifier = Arc::new(ES256.verifier_from_jwk(&Jwk::from_map(self.0.clone())?)?);
        if let Ok(mut cache) = VERIFIERS.lock() {
            if cache.len() >= CAPACITY {
                cache.clear();
            }
            cache.insert(id, Arc::clone(&verifier));
        }
        Ok(verifier)
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
    let (payload, _) = jwt::decode_with_verifier(token, verifier.as_ref())
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

/// Verifies a decision proof (a compact JWS, ES256, by the device key) and returns what
/// it binds.
pub fn verify_proof(proof: &str, key: &PublicDeviceKey) -> Result<ProofClaims, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (payload, _) = josekit::jws::deserialize_compact(proof, verifier.as_ref())
        .map_err(|_| "the proof's signature does not verify (ES256 by the device key)")?;
    serde_json::from_slice(&payload)
        .map_err(|_| "the proof's payload is not {authId, decision, paramsHash}")
}

/// The device a mobile payload claims to come from, before verifying it.
pub fn mobile_payload_device(payload: &str) -> Option<String> {
    crate::jwt::unverified_claims::<ServerPayloadAnswer>(payload).map(|claims| claims.device_id)
}

/// Verifies a mobile payload (a compact JWS, ES256, by the device key).
pub fn verify_mobile_payload(
    payload: &str,
    key: &PublicDeviceKey,
) -> Result<ServerPayloadAnswer, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (bytes, _) = josekit::jws::deserialize_compact(payload, verifier.as_ref())
        .map_err(|_| "the mobile payload's signature does not verify (ES256 by the device key)")?;
    serde_json::from_slice(&bytes)
        .map_err(|_| "the mobile payload is not {deviceId, flowId, nonce}")
}

/// How long after its `iat` a trusted or new device's mobile payload is accepted: the app
/// signs it just before posting it, so its `jti` need only be remembered that long.
pub const MOBILE_PAYLOAD_LIFETIME: Duration = Duration::from_secs(120);

/// `iat` within [`MOBILE_PAYLOAD_LIFETIME`] before `now`, allowing [`CLOCK_SKEW`]; and a
/// `jti` of 1 to 128 characters.
fn check_fresh(iat: u64, jti: &str, now: SystemTime) -> Result<(), &'static str> {
    let now = unix_secs(now);
    if iat > now.saturating_add(CLOCK_SKEW.as_secs()) {
        return Err("the mobile payload's iat is in the future");
    }
    let lifetime = MOBILE_PAYLOAD_LIFETIME + CLOCK_SKEW;
    if iat.saturating_add(lifetime.as_secs()) < now {
        return Err("the mobile payload is too old (iat)");
    }
    if !(1..=128).contains(&jti.len()) {
        return Err("the mobile payload needs a jti of 1 to 128 characters");
    }
    Ok(())
}

/// Verifies a trusted device's mobile payload: `typ`, ES256 by `key`, `iss` = `device_id`,
/// a fresh `iat`, a `jti`. The caller checks the flow id and keeps the `jti` for
/// [`MOBILE_PAYLOAD_LIFETIME`] to refuse a replay.
pub fn verify_trusted_device_payload(
    payload: &str,
    key: &PublicDeviceKey,
    device_id: &str,
    now: SystemTime,
) -> Result<TrustedDeviceClaims, &'static str> {
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (bytes, header) = josekit::jws::deserialize_compact(payload, verifier.as_ref())
        .map_err(|_| "the mobile payload's signature does not verify (ES256 by the device key)")?;
    if header.token_type() != Some(TRUSTED_DEVICE_PAYLOAD_TYPE) {
        return Err("the mobile payload is not a trusted device's (typ)");
    }
    let claims: TrustedDeviceClaims = serde_json::from_slice(&bytes)
        .map_err(|_| "the mobile payload is not {iss, flowId, iat, jti}")?;
    if claims.iss != device_id {
        return Err("the mobile payload's iss is not the device id");
    }
    check_fresh(claims.iat, &claims.jti, now)?;
    Ok(claims)
}

/// Verifies an untrusted app's mobile payload: `typ`, signed (ES256) by the P-256 key it
/// carries, a fresh `iat`, a `jti`; returns the key with the claims. As for a trusted
/// device, the caller checks the flow id and the `jti`.
pub fn verify_new_device_payload(
    payload: &str,
    now: SystemTime,
) -> Result<(PublicDeviceKey, NewDeviceClaims), &'static str> {
    let unverified: NewDeviceClaims =
        crate::jwt::unverified_claims(payload).ok_or("the mobile payload is not a new device's")?;
    let key = PublicDeviceKey::parse(&unverified.public_jwk)
        .map_err(|_| "the mobile payload's publicJwk is not a P-256 public key")?;
    let verifier = key.verifier().map_err(|_| "the device key is unusable")?;
    let (bytes, header) = josekit::jws::deserialize_compact(payload, verifier.as_ref())
        .map_err(|_| "the mobile payload is not signed by the key it carries (ES256)")?;
    if header.token_type() != Some(NEW_DEVICE_PAYLOAD_TYPE) {
        return Err("the mobile payload is not a new device's (typ)");
    }
    let claims: NewDeviceClaims =
        serde_json::from_slice(&bytes).map_err(|_| "the mobile payload is not a new device's")?;
    check_fresh(claims.iat, &claims.jti, now)?;
    Ok((key, claims))
}

/// The `typ` a mobile payload's JWS header claims, before it is verified: which check
/// applies (a trusted device's, an untrusted app's).
pub fn mobile_payload_type(payload: &str) -> Option<String> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Header {
        typ: Option<String>,
    }
    let header = payload.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    serde_json::from_slice::<Header>(&bytes).ok()?.typ
}
