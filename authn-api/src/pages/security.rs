//! What keeps the pages safe: the form token, and the headers every page carries.

use actix_web::HttpResponseBuilder;
use actix_web::http::header;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The form token for a flow's binding secret: a hash of it, so a page can carry it in a
/// hidden field without showing the secret itself (the cookie stays `HttpOnly`). A
/// cross-site form cannot know it: it needs the secret, which only the bound browser's
/// cookie holds.
pub fn csrf_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"assent page form\0");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `token` is the form token of `secret` (constant time).
pub fn csrf_matches(secret: Option<&str>, token: Option<&str>) -> bool {
    match (secret, token) {
        (Some(secret), Some(token)) => {
            bool::from(csrf_token(secret).as_bytes().ct_eq(token.as_bytes()))
        }
        _ => false,
    }
}

/// The Content-Security-Policy of a page: nothing but this origin's own script, style and
/// images; the script may call this origin only (its long poll of the JSON API, which
/// `default-src 'none'` alone would block); forms post here only; framing only by
/// `frame_ancestors`. Forms never redirect off this origin: browsers check `form-action`
/// along a form's whole redirect chain, so a federation server that redirects onward to
/// its relying party would be blocked. The done page moves on with a plain navigation
/// instead.
pub fn content_security_policy(frame_ancestors: &[String]) -> String {
    let frame_ancestors = if frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

/// Adds the headers every page and asset carries.
pub fn harden(response: &mut HttpResponseBuilder, csp: &str) {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, csp.to_owned()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_token_opens_only_its_own_secret() {
        let token = csrf_token("secret-a");
        assert!(csrf_matches(Some("secret-a"), Some(&token)));
        assert!(!csrf_matches(Some("secret-b"), Some(&token)));
        assert!(!csrf_matches(None, Some(&token)));
        assert!(!csrf_matches(Some("secret-a"), None));
    }

    #[test]
    fn forms_post_here_only_and_framing_follows_the_configuration() {
        assert_eq!(
            content_security_policy(&[]),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
        );
        assert!(
            content_security_policy(&["https://portal.example".into()])
                .ends_with("form-action 'self'; frame-ancestors https://portal.example")
        );
    }
}
