//! The WebAuthn relying party (`[webauthn]`): its id, name and origins, the attestation
//! policy, and the `webauthn-rs` verifier built from them.

use std::time::Duration;

use serde::Deserialize;
use url::Url;
use webauthn_rs::prelude::Uuid;
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The stack a ceremony's verification runs on: `webauthn-rs` parses CBOR and checks
/// attestations in deep, large frames, more than an unoptimised build fits in a server
/// worker thread's 2 MiB.
const VERIFICATION_STACK: usize = 8 << 20;

/// Runs a ceremony's verification on a thread of its own with [`VERIFICATION_STACK`],
/// off the async worker (WebAuthn ceremonies are rare next to other requests).
pub(crate) async fn verify_apart<T: Send + 'static>(
    verify: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::AdapterError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("webauthn".to_owned())
        .stack_size(VERIFICATION_STACK)
        .spawn(move || {
            let _ = answer.send(verify());
        })
        .map_err(crate::AdapterError::internal)?;
    answered
        .await
        .map_err(|_| crate::AdapterError::internal("the WebAuthn verification thread failed"))
}

/// Longest life of a ceremony's challenge.
const MAX_CHALLENGE_TTL_SECS: u64 = 600;

/// What the relying party asks of an authenticator's attestation at set-up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationPolicy {
    /// No attestation asked for: any authenticator may be set up.
    #[default]
    None,
    /// The authenticator's attestation is asked for and verified, so its AAGUID (its
    /// model) can be trusted and checked against `allowed_aaguids`.
    Indirect,
}

/// `[webauthn]`: the relying party security keys and platform authenticators are bound
/// to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying party id: the registrable domain (or a subdomain of it) the
    /// credentials are scoped to, e.g. `example.com`. It cannot change once credentials
    /// exist.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// Origins the ceremonies may come from (`https://login.example.com`); each one's
    /// host is the relying party id or a subdomain of it.
    pub origins: Vec<String>,
    /// `none` or `indirect`.
    #[serde(default)]
    pub attestation: AttestationPolicy,
    /// Authenticator models (AAGUIDs) allowed to be set up; empty: any. Needs
    /// `attestation = "indirect"`, without which an AAGUID is only the authenticator's
    /// claim.
    #[serde(default)]
    pub allowed_aaguids: Vec<Uuid>,
    /// How long a set-up or sign-in challenge may be answered.
    #[serde(default = "default_challenge_ttl_secs")]
    pub challenge_ttl_secs: u64,
    /// How long a passwordless sign-in's `passwordlessContext` may be finalized after
    /// its result was picked up.
    #[serde(default = "default_passwordless_context_ttl_secs")]
    pub passwordless_context_ttl_secs: u64,
}

fn default_challenge_ttl_secs() -> u64 {
    300
}

fn default_passwordless_context_ttl_secs() -> u64 {
    120
}

impl WebauthnConfig {
    /// Checks values and builds the verifier; the error names the key (under
    /// `webauthn.`).
    pub fn relying_party(&self) -> Result<Webauthn, (&'static str, String)> {
        if !is_rp_id(&self.rp_id) {
            return Err((
                "rp_id",
                "a domain name such as example.com (lowercase; no scheme, port, path or IP \
                 address; not a bare top-level domain)"
                    .to_owned(),
            ));
        }
        if self.rp_name.trim().is_empty() {
            return Err(("rp_name", "a name people recognise".to_owned()));
        }
        let origins = self
            .origins
            .iter()
            .map(|origin| self.origin(origin))
            .collect::<Result<Vec<_>, _>>()?;
        let Some((first, rest)) = origins.split_first() else {
            return Err(("origins", "at least one origin".to_owned()));
        };
        if self.challenge_ttl_secs == 0 || self.challenge_ttl_secs > MAX_CHALLENGE_TTL_SECS {
            return Err((
                "challenge_ttl_secs",
                format!("between 1 and {MAX_CHALLENGE_TTL_SECS}"),
            ));
        }
        // A federation server finalizes right after picking the result up.
        if self.passwordless_context_ttl_secs == 0
            || self.passwordless_context_ttl_secs > MAX_CHALLENGE_TTL_SECS
        {
            return Err((
                "passwordless_context_ttl_secs",
                format!("between 1 and {MAX_CHALLENGE_TTL_SECS}"),
            ));
        }
        if !self.allowed_aaguids.is_empty() && self.attestation != AttestationPolicy::Indirect {
            return Err((
                "allowed_aaguids",
                "needs attestation = \"indirect\": without a verified attestation the AAGUID \
                 is only the authenticator's claim"
                    .to_owned(),
            ));
        }
        let builder = WebauthnBuilder::new(&self.rp_id, first)
            .map_err(|error| ("origins", error.to_string()))?
            .rp_name(&self.rp_name)
            .timeout(Duration::from_secs(self.challenge_ttl_secs))
            // Roaming keys without a PIN are security keys as the issue asks; a platform
            // authenticator is still required to verify the person (see
            // `Method::requires_user_verification`).
            .danger_set_user_presence_only_security_keys(true);
        rest.iter()
            .fold(builder, |builder, origin| {
                builder.append_allowed_origin(origin)
            })
            .build()
            .map_err(|error| ("origins", error.to_string()))
    }

    /// The challenge's lifetime.
    pub fn challenge_ttl(&self) -> Duration {
        Duration::from_secs(self.challenge_ttl_secs)
    }

    /// Parses one origin and checks it belongs to the relying party.
    fn origin(&self, raw: &str) -> Result<Url, (&'static str, String)> {
        let url = Url::parse(raw)
            .ok()
            .filter(|url| url.origin().ascii_serialization() == raw.trim_end_matches('/'));
        let Some(url) = url else {
            return Err((
                "origins",
                format!("{raw}: an exact origin such as https://login.example.com"),
            ));
        };
        // WebAuthn runs only in a secure context: https, or http on the machine itself.
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "https" && host != "localhost" {
            return Err(("origins", format!("{raw}: https (http only for localhost)")));
        }
        if url
            .domain()
            .is_none_or(|domain| !within(domain, &self.rp_id))
        {
            return Err((
                "origins",
                format!(
                    "{raw}: its host must be {} or a subdomain of it",
                    self.rp_id
                ),
            ));
        }
        Ok(url)
    }
}

/// Whether `domain` is `rp_id` or under it (a label boundary, so `badexample.com` is not
/// under `example.com`).
fn within(domain: &str, rp_id: &str) -> bool {
    domain == rp_id
        || domain
            .strip_suffix(rp_id)
            .is_some_and(|head| head.ends_with('.'))
}

/// A lowercase DNS name of two labels or more, or `localhost`. Without the public suffix
/// list a suffix such as `co.uk` passes here; browsers refuse it at set-up.
fn is_rp_id(raw: &str) -> bool {
    let labels: Vec<&str> = raw.split('.').collect();
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let all_digits = labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    raw.len() <= 253
        && labels.iter().all(label_ok)
        && !all_digits
        && (labels.len() >= 2 || raw == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp_id: &str, origins: &[&str]) -> WebauthnConfig {
        WebauthnConfig {
            rp_id: rp_id.to_owned(),
            rp_name: "Example Bank".to_owned(),
            origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            attestation: AttestationPolicy::None,
            allowed_aaguids: Vec::new(),
            challenge_ttl_secs: 300,
            passwordless_context_ttl_secs: 120,
        }
    }

    fn refusal(config: &WebauthnConfig) -> &'static str {
        match config.relying_party() {
            Ok(_) => "accepted",
            Err((key, _)) => key,
        }
    }

    #[test]
    fn origins_under_the_rp_id_are_accepted() {
        let ok = config(
            "example.com",
            &["https://example.com", "https://login.example.com:8443"],
        );
        let relying_party = ok.relying_party().map_err(|(_, reason)| reason);
        assert_eq!(
            relying_party.map(|rp| rp.get_allowed_origins().len()),
            Ok(2)
        );
        assert_eq!(
            refusal(&config("localhost", &["http://localhost:8080"])),
            "accepted"
        );
    }

    #[test]
    fn an_origin_outside_the_rp_id_is_refused() {
        for origin in [
            "https://badexample.com",
            "https://example.org",
            "http://login.example.com",
            "https://login.example.com/path",
            "https://192.0.2.1",
            "login.example.com",
        ] {
            // Second, too: `webauthn-rs` checks only the first origin against the rp id.
            for origins in [
                [origin, "https://example.com"],
                ["https://example.com", origin],
            ] {
                assert_eq!(
                    refusal(&config("example.com", &origins)),
                    "origins",
                    "{origin}"
                );
            }
        }
        assert_eq!(refusal(&config("example.com", &[])), "origins");
    }

    #[test]
    fn an_rp_id_must_be_a_domain() {
        for rp_id in [
            "com",
            "https://example.com",
            "Example.com",
            "192.0.2.1",
            "example.com:443",
            "",
        ] {
            assert_eq!(
                refusal(&config(rp_id, &["https://example.com"])),
                "rp_id",
                "{rp_id}"
            );
        }
    }

    #[test]
    fn aaguids_need_a_verified_attestation_and_the_ttl_is_bounded() {
        let mut aaguids = config("example.com", &["https://example.com"]);
        aaguids.allowed_aaguids = vec![Uuid::nil()];
        assert_eq!(refusal(&aaguids), "allowed_aaguids");
        aaguids.attestation = AttestationPolicy::Indirect;
        assert_eq!(refusal(&aaguids), "accepted");
        let mut ttl = config("example.com", &["https://example.com"]);
        ttl.challenge_ttl_secs = 0;
        assert_eq!(refusal(&ttl), "challenge_ttl_secs");
        ttl.challenge_ttl_secs = 3600;
        assert_eq!(refusal(&ttl), "challenge_ttl_secs");
        let mut context = config("example.com", &["https://example.com"]);
        context.passwordless_context_ttl_secs = 0;
        assert_eq!(refusal(&context), "passwordless_context_ttl_secs");
    }
}
