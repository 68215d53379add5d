//! Credentials as they arrive in an `Authorization` value, parsed once where they enter;
//! checking them is the services' job. Text in, text out: no HTTP types here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What follows `scheme` (matched without regard to case) in an `Authorization` value.
pub fn with_scheme<'a>(authorization: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, credentials) = authorization.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
}

/// The id and secret of HTTP Basic credentials (RFC 7617), `base64(id:secret)`, as sent.
pub fn basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let value = format!("basic  {}", STANDARD.encode("fed:s3:cret"));
        let encoded = with_scheme(&value, "Basic").unwrap_or_default();
        assert_eq!(
            basic(encoded),
            Some(("fed".to_owned(), "s3:cret".to_owned()))
        );
        assert_eq!(with_scheme(&value, "Bearer"), None);
        assert_eq!(with_scheme("Basic", "Basic"), None);
        assert_eq!(basic(&STANDARD.encode("no colon")), None);
        assert_eq!(basic("%%%"), None);
        assert_eq!(basic(&STANDARD.encode([0xff, b':', b'x'])), None);
    }
}
