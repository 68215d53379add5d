//! JWS verification against a JWK set (ours or a client's), for the algorithms assent
//! accepts: RS256, PS256, ES256. `none` and HMAC are never accepted.

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{ES256, JwsVerifier, PS256, RS256};
use josekit::jwt::{self, JwtPayload};

/// The signing algorithms accepted from clients and offered for ID tokens.
pub const ALGORITHMS: [&str; 3] = ["RS256", "PS256", "ES256"];

fn verifier(jwk: &Jwk, alg: &str) -> Option<Box<dyn JwsVerifier>> {
    let verifier: Box<dyn JwsVerifier> = match (alg, jwk.key_type()) {
        ("RS256", "RSA") => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        ("PS256", "RSA") => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        ("ES256", "EC") => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    };
    Some(verifier)
}

/// Verifies a JWT's signature with the key of `keys` its header names (by `kid`, or the
/// only key of the right type), and returns its claims. Claims are not checked here.
pub fn verify(token: &str, keys: &JwkSet) -> Result<JwtPayload, &'static str> {
    let header = jwt::decode_header(token).map_err(|_| "not a JWT")?;
    let alg = header
        .claim("alg")
        .and_then(|alg| alg.as_str())
        .filter(|alg| ALGORITHMS.contains(alg))
        .ok_or("the JWT's alg is not RS256, PS256 or ES256")?
        .to_owned();
    let kid = header
        .claim("kid")
        .and_then(|kid| kid.as_str())
        .map(str::to_owned);
    let candidates: Vec<&Jwk> = match &kid {
        Some(kid) => keys.get(kid),
        None => keys.keys(),
    };
    let mut verifiers = candidates.into_iter().filter_map(|jwk| verifier(jwk, &alg));
    let verifier = verifiers.next().ok_or("no key to verify the JWT with")?;
    if kid.is_none() && verifiers.next().is_some() {
        return Err("several keys fit the JWT: it needs a kid");
    }
    let (payload, _) = jwt::decode_with_verifier(token, verifier.as_ref())
        .map_err(|_| "the JWT's signature does not verify")?;
    Ok(payload)
}

/// A client's JWK set from its configuration.
pub fn client_keys(jwks: &serde_json::Value) -> Option<JwkSet> {
    let map = jwks.as_object()?.clone();
    JwkSet::from_map(map).ok()
}

/// The `typ` of a JWT's header.
pub fn header_type(token: &str) -> Option<String> {
    let header = jwt::decode_header(token).ok()?;
    header.claim("typ")?.as_str().map(str::to_owned)
}
