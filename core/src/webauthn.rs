//! The WebAuthn relying party (`[webauthn]`): its id, name and origins, the attestation
//! policy (the makers' roots and the models they vouch for), and the `webauthn-rs`
//! verifier built from them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder, Uuid};
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
    /// The authenticator's attestation is asked for (`direct`: an anonymised one would
    /// not name the model) and must chain to one of `attestation_roots`; its AAGUID (its
    /// model) must be one of `allowed_aaguids`.
    Indirect,
}

/// The relying party as the ceremonies use it: the verifier, and what an attestation
/// must chain to.
pub struct RelyingParty {
    /// `webauthn-rs`'s verifier.
    pub webauthn: Arc<Webauthn>,
    /// With `attestation = "indirect"`: each root of `attestation_roots`, trusted for each
    /// of `allowed_aaguids`.
    pub attestation: Option<AttestationCaList>,
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
    /// Authenticator models (AAGUIDs) allowed to be set up: with `attestation =
    /// "indirect"`, at least one; without it, none (an AAGUID would only be the
    /// authenticator's claim).
    #[serde(default)]
    pub allowed_aaguids: Vec<Uuid>,
    /// PEM files (paths from the working directory) of the makers' attestation roots an
    /// attestation must chain to, each trusted for each of `allowed_aaguids`; needs
    /// `attestation = "indirect"`.
    #[serde(default)]
    pub attestation_roots: Vec<PathBuf>,
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
    /// Checks values and builds the verifier and the trusted attestation roots (read from
    /// their files); the error names the key (under `webauthn.`).
    pub fn relying_party(&self) -> Result<RelyingParty, (&'static str, String)> {
        let webauthn = Arc::new(self.verifier()?);
        Ok(RelyingParty {
            webauthn,
            attestation: self.attestation_roots()?,
        })
    }

    /// The makers' roots, each trusted for each allowed model; `None` without
    /// `attestation = "indirect"`.
    fn attestation_roots(&self) -> Result<Option<AttestationCaList>, (&'static str, String)> {
        if self.attestation != AttestationPolicy::Indirect {
            if !self.allowed_aaguids.is_empty() {
                return Err((
                    "allowed_aaguids",
                    "needs attestation = \"indirect\": without a verified attestation the \
                     AAGUID is only the authenticator's claim"
                        .to_owned(),
                ));
            }
            if !self.attestation_roots.is_empty() {
                return Err((
                    "attestation_roots",
                    "needs attestation = \"indirect\" (no attestation is asked for)".to_owned(),
                ));
            }
            return Ok(None);
        }
        if self.allowed_aaguids.is_empty() {
            return Err((
                "allowed_aaguids",
                "the authenticator models (AAGUIDs) attestation = \"indirect\" lets be set \
                 up: at least one"
                    .to_owned(),
            ));
        }
        if self.attestation_roots.is_empty() {
            return Err((
                "attestation_roots",
                "the PEM files of the makers' attestation roots that attestation = \
                 \"indirect\" trusts: at least one"
                    .to_owned(),
            ));
        }
        let mut roots = AttestationCaListBuilder::new();
        for path in &self.attestation_roots {
            let unusable =
                |reason: String| ("attestation_roots", format!("{}: {reason}", path.display()));
            let pem = std::fs::read(path).map_err(|error| unusable(error.to_string()))?;
            let certificates = openssl::x509::X509::stack_from_pem(&pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| unusable("not a PEM certificate".to_owned()))?;
            for certificate in certificates {
                let der = certificate
                    .to_der()
                    .map_err(|error| unusable(error.to_string()))?;
                for aaguid in &self.allowed_aaguids {
                    roots
                        .insert_device_der(
                            &der,
                            *aaguid,
                            format!("{aaguid} under {}", path.display()),
                            BTreeMap::new(),
                        )
                        .map_err(|error| unusable(error.to_string()))?;
                }
            }
        }
        Ok(Some(roots.build()))
    }

    /// The `webauthn-rs` verifier.
    fn verifier(&self) -> Result<Webauthn, (&'static str, String)> {
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
pub(crate) mod tests {
    use super::*;
    use crate::soft_authenticator::Maker;

    fn config(rp_id: &str, origins: &[&str]) -> WebauthnConfig {
        WebauthnConfig {
            rp_id: rp_id.to_owned(),
            rp_name: "Example Bank".to_owned(),
            origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            attestation: AttestationPolicy::None,
            allowed_aaguids: Vec::new(),
            attestation_roots: Vec::new(),
            challenge_ttl_secs: 300,
            passwordless_context_ttl_secs: 120,
        }
    }

    /// A file holding `contents`, named for the test that writes it.
    pub(crate) fn file(name: &str, contents: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("assent-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
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
            relying_party.map(|rp| rp.webauthn.get_allowed_origins().len()),
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
        aaguids.attestation_roots = vec![file("aaguids-root.pem", &Maker::new("Acme").root_pem())];
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

    #[test]
    fn each_root_is_trusted_for_each_allowed_model() {
        let mut policy = config("example.com", &["https://example.com"]);
        policy.attestation = AttestationPolicy::Indirect;
        let models = [Uuid::from_u128(1), Uuid::from_u128(2)];
        policy.allowed_aaguids = models.to_vec();
        let (acme, globex) = (Maker::new("Acme"), Maker::new("Globex"));
        // One file may hold a bundle of roots.
        let bundle = [acme.root_pem(), globex.root_pem()].concat();
        policy.attestation_roots = vec![file("each-root.pem", &bundle)];
        let relying_party = policy
            .relying_party()
            .map_err(|(_, reason)| reason)
            .unwrap();
        let roots = relying_party.attestation.unwrap();
        assert_eq!(roots.len(), 2, "both roots of the bundle");
        for root in roots.cas().values() {
            assert!(!root.blanket_allow(), "only the models listed");
            assert_eq!(root.aaguids().keys().copied().collect::<Vec<_>>(), models);
        }
    }

    #[test]
    fn roots_must_be_readable_pem_and_need_the_indirect_policy() {
        let root = file("policy-root.pem", &Maker::new("Acme").root_pem());
        let mut policy = config("example.com", &["https://example.com"]);
        policy.attestation_roots = vec![root.clone()];
        assert_eq!(
            refusal(&policy),
            "attestation_roots",
            "roots without the policy"
        );
        policy.attestation = AttestationPolicy::Indirect;
        assert_eq!(
            refusal(&policy),
            "allowed_aaguids",
            "the policy with no model"
        );
        policy.allowed_aaguids = vec![Uuid::from_u128(1)];
        assert_eq!(refusal(&policy), "accepted");
        policy.attestation_roots = Vec::new();
        assert_eq!(
            refusal(&policy),
            "attestation_roots",
            "the policy with no root"
        );
        for (unusable, why) in [
            (root.with_extension("missing"), "No such file"),
            (
                file("policy-root.der", b"not a certificate"),
                "not a PEM certificate",
            ),
        ] {
            policy.attestation_roots = vec![root.clone(), unusable.clone()];
            let Err((key, reason)) = policy.relying_party() else {
                panic!("{unusable:?} accepted");
            };
            assert_eq!(key, "attestation_roots");
            assert!(reason.contains(why), "{reason}");
            assert!(reason.contains(&unusable.display().to_string()), "{reason}");
        }
    }
}
