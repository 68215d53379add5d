//! Reading JWTs: claims before verification (only to find the key that verifies them),
//! and NumericDate claims as plain integers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwt::JwtPayload;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The claims of a compact JWS with a JSON payload (a JWT, a device's mobile payload),
/// decoded without checking the signature: only to find the key that verifies it.
pub fn unverified_claims<T: DeserializeOwned>(token: &str) -> Option<T> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The `iss` a JWT claims before it is verified: the device or client whose key to try.
pub fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    unverified_claims::<Issuer>(token).map(|claims| claims.iss)
}

/// A NumericDate claim as whole seconds; absent is `None`, anything but a non-negative
/// number in range is an error.
pub fn numeric_claim(payload: &JwtPayload, name: &str) -> Result<Option<u64>, &'static str> {
    // Read as plain integers: josekit's SystemTime helpers panic on huge values.
    match payload.claim(name) {
        None => Ok(None),
        Some(Value::Number(number)) => match (number.as_u64(), number.as_f64()) {
            (Some(secs), _) if secs < 1 << 40 => Ok(Some(secs)),
            (None, Some(secs)) if (0.0..1e12).contains(&secs) => Ok(Some(secs as u64)),
            _ => Err("a time claim is out of range"),
        },
        Some(_) => Err("a time claim is not a number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn the_issuer_is_read_without_a_signature_check() {
        assert_eq!(
            unverified_issuer(&token(r#"{"iss":"dev-1","exp":1}"#)).as_deref(),
            Some("dev-1")
        );
        assert_eq!(unverified_issuer(&token(r#"{"iss":7}"#)), None);
        assert_eq!(unverified_issuer(&token("[1]")), None);
        assert_eq!(unverified_issuer("no-dots"), None);
        assert_eq!(unverified_issuer("a.%%%.c"), None);
    }

    #[test]
    fn time_claims_are_bounded_integers() {
        let mut payload = JwtPayload::new();
        assert_eq!(numeric_claim(&payload, "exp"), Ok(None));
        let _ = payload.set_claim("exp", Some(Value::from(1_700_000_000_u64)));
        assert_eq!(numeric_claim(&payload, "exp"), Ok(Some(1_700_000_000)));
        let _ = payload.set_claim("exp", Some(Value::from(1.5e12)));
        assert!(numeric_claim(&payload, "exp").is_err());
        let _ = payload.set_claim("exp", Some(Value::from(-1)));
        assert!(numeric_claim(&payload, "exp").is_err());
        let _ = payload.set_claim("exp", Some(Value::from("soon")));
        assert!(numeric_claim(&payload, "exp").is_err());
    }
}
