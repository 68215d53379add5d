//! A WebAuthn set-up ceremony on `webauthn-rs`: the options in the shape PingFederate's
//! widget reads (binary fields as arrays of byte numbers), the ceremony state to keep in
//! the flow record between the two steps, and the credential it yields.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    AttestationCaList, AttestationMetadata, AttestedPasskeyRegistration, Credential, CredentialID,
    PasskeyRegistration, RegisterPublicKeyCredential, SecurityKeyRegistration, Uuid, WebauthnError,
};

use crate::policy::Method;

/// Why a set-up ceremony could not start or finish.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistrationError {
    /// Only SECURITY_KEY and PLATFORM are WebAuthn methods.
    #[error("{0} is not a WebAuthn method")]
    NotWebauthn(&'static str),
    /// The challenge outlived its `challenge_ttl_secs`.
    #[error("the challenge expired")]
    Expired,
    /// The attestation is not the JSON of a public key credential.
    #[error("the attestation is malformed")]
    Malformed,
    /// The ceremony ran on an origin the relying party does not list.
    #[error("the origin is not one of the relying party's")]
    WrongOrigin,
    /// The authenticator's answer did not verify (challenge, flags, signature).
    #[error("the attestation did not verify")]
    Refused,
    /// An attestation was required and none chaining to a trusted root came.
    #[error("the authenticator's attestation does not chain to a trusted root")]
    Unattested,
    /// The attestation chains to a trusted root, for a model not allowed.
    #[error("the authenticator model is not allowed")]
    ModelNotAllowed,
    /// The kept ceremony state could not be read back (a bug or a corrupted record).
    #[error("the ceremony state is unreadable")]
    State,
}

/// The ceremony state kept in the flow record until the attestation arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistration {
    /// SECURITY_KEY or PLATFORM.
    pub method: Method,
    /// `webauthn-rs`'s state (challenge included, and the trusted roots when attested),
    /// as JSON.
    state: Value,
    /// Whether an attestation chaining to a trusted root was asked for.
    #[serde(default)]
    attested: bool,
    /// When the challenge stops being answerable (ms since the epoch).
    pub expires_at_ms: u64,
}

/// A WebAuthn credential of a user, as stored with their devices: verified at set-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebauthnKey {
    /// SECURITY_KEY or PLATFORM.
    pub method: Method,
    /// The credential id the authenticator chose.
    pub credential_id: Vec<u8>,
    /// The authenticator model, as its maker's attestation proved it (`None` when no
    /// attestation was asked for: an unverified AAGUID is only a claim).
    pub aaguid: Option<Uuid>,
    /// The signature counter at set-up (0 for authenticators that keep none).
    pub sign_count: u32,
    /// `webauthn-rs`'s credential (public key included), as JSON: a `SecurityKey` for
    /// SECURITY_KEY, a `Passkey` for PLATFORM.
    pub credential: Value,
    /// Why it may no longer be used (its signature counter showed a clone), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
}

/// The user handle: stable for a user, and not their id in clear.
pub(crate) fn user_handle(user_id: &str) -> Uuid {
    let digest = Sha256::digest(user_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// Starts a set-up: the widget's `publicKeyCredentialCreationOptions` (a JSON string)
/// and the state to keep. `existing` are the user's credential ids, excluded so the same
/// authenticator is not set up twice. With `attestation`, the authenticator is asked for
/// its maker's attestation, which must chain to one of those roots for a model listed.
pub fn start(
    relying_party: &Webauthn,
    attestation: Option<&AttestationCaList>,
    method: Method,
    user_id: &str,
    user_name: &str,
    existing: Vec<Vec<u8>>,
    expires_at_ms: u64,
) -> Result<(String, PendingRegistration), RegistrationError> {
    let handle = user_handle(user_id);
    let exclude: Option<Vec<CredentialID>> = (!existing.is_empty()).then_some(existing);
    let (options, state) = match method {
        Method::SecurityKey => {
            let roots = attestation.cloned();
            let (options, state) = relying_party
                .start_securitykey_registration(handle, user_name, user_name, exclude, roots, None)
                .map_err(|_| RegistrationError::Refused)?;
            (options, serde_json::to_value(state))
        }
        // A passkey registration asks the authenticator to verify the person. Attested, it
        // also refuses synced passkeys (their attestation vouches for no one device).
        Method::Platform => match attestation {
            None => {
                let (options, state) = relying_party
                    .start_passkey_registration(handle, user_name, user_name, exclude)
                    .map_err(|_| RegistrationError::Refused)?;
                (options, serde_json::to_value(state))
            }
            Some(roots) => {
                let (options, state) = relying_party
                    .start_attested_passkey_registration(
                        handle,
                        user_name,
                        user_name,
                        exclude,
                        roots.clone(),
                        None,
                    )
                    .map_err(|_| RegistrationError::Refused)?;
                (options, serde_json::to_value(state))
            }
        },
        other => return Err(RegistrationError::NotWebauthn(other.as_str())),
    };
    let state = state.map_err(|_| RegistrationError::State)?;
    let mut public_key =
        serde_json::to_value(&options.public_key).map_err(|_| RegistrationError::State)?;
    bytes_as_arrays(&mut public_key);
    select_authenticator(&mut public_key, method);
    let pending = PendingRegistration {
        method,
        state,
        attested: attestation.is_some(),
        expires_at_ms,
    };
    Ok((public_key.to_string(), pending))
}

/// Finishes a set-up with the widget's `attestation` (a JSON string, binary fields in
/// padded base64); nothing is stored on failure.
pub fn finish(
    relying_party: &Webauthn,
    pending: &PendingRegistration,
    attestation: &str,
    now_ms: u64,
) -> Result<WebauthnKey, RegistrationError> {
    if now_ms >= pending.expires_at_ms {
        return Err(RegistrationError::Expired);
    }
    let mut answer: Value =
        serde_json::from_str(attestation).map_err(|_| RegistrationError::Malformed)?;
    for field in [
        "/rawId",
        "/response/clientDataJSON",
        "/response/attestationObject",
    ] {
        url_safe(&mut answer, field).ok_or(RegistrationError::Malformed)?;
    }
    let answer: RegisterPublicKeyCredential =
        serde_json::from_value(answer).map_err(|_| RegistrationError::Malformed)?;
    let verified = match pending.method {
        Method::Platform if pending.attested => {
            let state: AttestedPasskeyRegistration = serde_json::from_value(pending.state.clone())
                .map_err(|_| RegistrationError::State)?;
            relying_party
                .finish_attested_passkey_registration(&answer, &state)
                .map(|key| (serde_json::to_value(&key), Credential::from(key)))
        }
        Method::SecurityKey => {
            let state: SecurityKeyRegistration = serde_json::from_value(pending.state.clone())
                .map_err(|_| RegistrationError::State)?;
            relying_party
                .finish_securitykey_registration(&answer, &state)
                .map(|key| (serde_json::to_value(&key), Credential::from(key)))
        }
        Method::Platform => {
            let state: PasskeyRegistration = serde_json::from_value(pending.state.clone())
                .map_err(|_| RegistrationError::State)?;
            relying_party
                .finish_passkey_registration(&answer, &state)
                .map(|key| (serde_json::to_value(&key), Credential::from(key)))
        }
        other => return Err(RegistrationError::NotWebauthn(other.as_str())),
    };
    let (stored, credential) = verified.map_err(|error| match error {
        WebauthnError::InvalidRPOrigin => RegistrationError::WrongOrigin,
        WebauthnError::AttestationUntrustedAaguid => RegistrationError::ModelNotAllowed,
        WebauthnError::AttestationNotVerifiable
        | WebauthnError::AttestationChainNotTrusted(_)
        | WebauthnError::AttestationFormatMissingAaguid => RegistrationError::Unattested,
        error if unreadable(&error) => RegistrationError::Malformed,
        _ => RegistrationError::Refused,
    })?;
    // `webauthn-rs` checked the chain to a trusted root and the model against the list.
    let aaguid = match credential.attestation.metadata {
        AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. }
            if pending.attested =>
        {
            Some(aaguid)
        }
        _ => None,
    };
    Ok(WebauthnKey {
        method: pending.method,
        credential_id: credential.cred_id.to_vec(),
        aaguid,
        sign_count: credential.counter,
        credential: stored.map_err(|_| RegistrationError::State)?,
        disabled: None,
    })
}

/// Whether `webauthn-rs` refused an answer because it could not read it (rather than
/// because it did not verify).
pub(crate) fn unreadable(error: &WebauthnError) -> bool {
    matches!(
        error,
        WebauthnError::ParseCBORFailure(_)
            | WebauthnError::ParseNOMFailure
            | WebauthnError::ParseInsufficientBytesAvailable
            | WebauthnError::ParseJSONFailure(_)
    )
}

/// A platform credential is a passkey the authenticator keeps (discoverable, so that a
/// passwordless sign-in can find it with no user named) on the device itself; a security
/// key is a roaming one, whose storage for discoverable credentials is not spent. Only
/// the request says so: `webauthn-rs` verifies the answer the same way either way.
fn select_authenticator(options: &mut Value, method: Method) {
    let (attachment, resident) = match method {
        Method::Platform => ("platform", true),
        _ => ("cross-platform", false),
    };
    if let Some(Value::Object(selection)) = options.get_mut("authenticatorSelection") {
        selection.insert("authenticatorAttachment".to_owned(), attachment.into());
        selection.insert("requireResidentKey".to_owned(), resident.into());
        let resident_key = if resident { "required" } else { "discouraged" };
        selection.insert("residentKey".to_owned(), resident_key.into());
    }
}

/// The widget sends binary fields in padded standard base64, which `webauthn-rs` does
/// not read when they hold `+` or `/`: re-encoded here as base64url. `None` when the
/// field is missing or not base64.
pub(crate) fn url_safe(answer: &mut Value, pointer: &str) -> Option<()> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let field = answer.pointer_mut(pointer)?;
    let bytes = field.as_str().and_then(|text| STANDARD.decode(text).ok())?;
    *field = Value::from(URL_SAFE_NO_PAD.encode(bytes));
    Some(())
}

/// The widget builds its `ArrayBuffer`s from arrays of byte numbers, where `webauthn-rs`
/// writes base64url strings: the challenge, the user id and excluded credential ids.
fn bytes_as_arrays(options: &mut Value) {
    use base64::Engine;
    let decode = |value: &mut Value| {
        let bytes = value.as_str().and_then(|text| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .ok()
        });
        if let Some(bytes) = bytes {
            *value = Value::from(bytes);
        }
    };
    if let Some(challenge) = options.get_mut("challenge") {
        decode(challenge);
    }
    if let Some(id) = options.pointer_mut("/user/id") {
        decode(id);
    }
    if let Some(Value::Array(excluded)) = options.get_mut("excludeCredentials") {
        for credential in excluded {
            if let Some(id) = credential.get_mut("id") {
                decode(id);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::soft_authenticator::{Maker, PRESENT, RP_ID, SoftAuthenticator, VERIFIED};
    use crate::webauthn::tests::file;
    use crate::webauthn::{AttestationPolicy, RelyingParty, WebauthnConfig};

    const ORIGIN: &str = "https://login.example.com";

    /// The relying party both ceremonies' tests run against.
    pub(crate) fn relying_party() -> Webauthn {
        let relying_party = configured(AttestationPolicy::None, &[], Vec::new());
        std::sync::Arc::into_inner(relying_party.webauthn).unwrap()
    }

    /// A set-up for alice with no credential to exclude, its challenge good until 1 000 ms.
    fn alices(
        rp: &Webauthn,
        roots: Option<&AttestationCaList>,
        method: Method,
    ) -> Result<(String, PendingRegistration), RegistrationError> {
        start(rp, roots, method, "alice", "alice", Vec::new(), 1_000)
    }

    fn configured(
        attestation: AttestationPolicy,
        aaguids: &[&str],
        roots: Vec<std::path::PathBuf>,
    ) -> RelyingParty {
        let config = WebauthnConfig {
            rp_id: RP_ID.to_owned(),
            rp_name: "Example Bank".to_owned(),
            origins: vec![ORIGIN.to_owned()],
            attestation,
            allowed_aaguids: aaguids
                .iter()
                .map(|a| Uuid::parse_str(a).unwrap())
                .collect(),
            attestation_roots: roots,
            challenge_ttl_secs: 300,
            passwordless_context_ttl_secs: 120,
        };
        config
            .relying_party()
            .map_err(|(_, reason)| reason)
            .unwrap()
    }

    /// The model the bank allows, and another one of the same maker.
    const ALLOWED: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
    const OTHER: &str = "ee882879-721c-4913-9775-3dfcce97072a";

    /// A relying party requiring an attestation by Acme's root for the model ALLOWED.
    fn requiring_acme(acme: &Maker, name: &str) -> RelyingParty {
        let root = file(name, &acme.root_pem());
        configured(AttestationPolicy::Indirect, &[ALLOWED], vec![root])
    }

    /// The set-up of `method` by `answer` (given the options) under `rp`.
    fn set_up(
        rp: &RelyingParty,
        method: Method,
        answer: impl Fn(&str) -> String,
    ) -> Result<WebauthnKey, RegistrationError> {
        let attestation = rp.attestation.as_ref();
        let (options, pending) = alices(&rp.webauthn, attestation, method)?;
        finish(&rp.webauthn, &pending, &answer(&options), 999)
    }

    #[test]
    fn an_allowed_model_attested_by_a_trusted_root_is_set_up_as_that_model() {
        let acme = Maker::new("Acme");
        let rp = requiring_acme(&acme, "allowed-root.pem");
        let model = acme.model(ALLOWED);
        for (method, flags) in [(Method::SecurityKey, PRESENT), (Method::Platform, VERIFIED)] {
            let options = alices(&rp.webauthn, rp.attestation.as_ref(), method)
                .unwrap()
                .0;
            let options: Value = serde_json::from_str(&options).unwrap();
            assert_eq!(options["attestation"], "direct", "{options}");
            let key = set_up(&rp, method, |options| {
                SoftAuthenticator::new().attest_packed(&model, options, ORIGIN, flags)
            })
            .unwrap();
            assert_eq!(key.aaguid, Some(Uuid::parse_str(ALLOWED).unwrap()));
            assert_eq!(key.method, method);
            // Signed in later like any passkey of its kind.
            if method == Method::Platform {
                let passkey = serde_json::from_value::<webauthn_rs::prelude::Passkey>;
                assert!(passkey(key.credential.clone()).is_ok());
            }
        }
    }

    #[test]
    fn a_model_not_allowed_is_refused_though_its_maker_is_trusted() {
        let acme = Maker::new("Acme");
        let rp = requiring_acme(&acme, "other-root.pem");
        let other = acme.model(OTHER);
        for (method, flags) in [(Method::SecurityKey, PRESENT), (Method::Platform, VERIFIED)] {
            let refused = set_up(&rp, method, |options| {
                SoftAuthenticator::new().attest_packed(&other, options, ORIGIN, flags)
            });
            assert_eq!(refused.map(|_| ()), Err(RegistrationError::ModelNotAllowed));
        }
    }

    #[test]
    fn an_attestation_from_an_untrusted_root_or_none_is_refused_when_required() {
        let acme = Maker::new("Acme");
        let rp = requiring_acme(&acme, "untrusted-root.pem");
        // An impostor: a root of Acme's very name, not Acme's key.
        let impostor = Maker::new("Acme").model(ALLOWED);
        let rogue = Maker::new("Rogue").model(ALLOWED);
        for (method, flags) in [(Method::SecurityKey, PRESENT), (Method::Platform, VERIFIED)] {
            for model in [&impostor, &rogue] {
                let refused = set_up(&rp, method, |options| {
                    SoftAuthenticator::new().attest_packed(model, options, ORIGIN, flags)
                });
                assert_eq!(refused.map(|_| ()), Err(RegistrationError::Unattested));
            }
            let unattested = set_up(&rp, method, |options| {
                SoftAuthenticator::new().attest(options, ORIGIN, flags)
            });
            assert_eq!(unattested.map(|_| ()), Err(RegistrationError::Unattested));
        }
    }

    #[test]
    fn without_the_policy_a_claimed_model_is_not_recorded() {
        let rp = configured(AttestationPolicy::None, &[], Vec::new());
        let claimed = Maker::new("Acme").model(ALLOWED);
        let key = set_up(&rp, Method::SecurityKey, |options| {
            SoftAuthenticator::new().attest_packed(&claimed, options, ORIGIN, PRESENT)
        })
        .unwrap();
        assert_eq!(key.aaguid, None, "nothing vouched for the model");
    }

    #[test]
    fn options_carry_binary_fields_as_byte_arrays() {
        let rp = relying_party();
        for method in [Method::SecurityKey, Method::Platform] {
            let (options, pending) = start(
                &rp,
                None,
                method,
                "alice",
                "alice",
                vec![vec![7, 7, 7]],
                1_000,
            )
            .unwrap();
            let options: Value = serde_json::from_str(&options).unwrap();
            let challenge = options["challenge"].as_array().map(Vec::len);
            assert!(challenge.is_some_and(|len| len >= 16), "{options}");
            assert_eq!(options["rp"]["id"], "example.com");
            assert_eq!(
                options["excludeCredentials"][0]["id"],
                serde_json::json!([7, 7, 7])
            );
            assert!(options["user"]["id"].is_array());
            assert_eq!(pending.method, method);
            let resident = options["authenticatorSelection"]["residentKey"].as_str();
            let expected = if method == Method::Platform {
                "required"
            } else {
                "discouraged"
            };
            assert_eq!(resident, Some(expected), "{options}");
        }
        assert_eq!(
            alices(&rp, None, Method::Sms).map(|_| ()),
            Err(RegistrationError::NotWebauthn("SMS"))
        );
    }

    #[test]
    fn a_late_or_malformed_attestation_is_refused() {
        let rp = relying_party();
        let (_, pending) = alices(&rp, None, Method::SecurityKey).unwrap();
        let result = |answer: &str, now_ms| finish(&rp, &pending, answer, now_ms).map(|_| ());
        assert_eq!(result("{}", 1_000), Err(RegistrationError::Expired));
        assert_eq!(result("not json", 999), Err(RegistrationError::Malformed));
        let garbage = r#"{"id":"AAAA","rawId":"AAAA","type":"public-key",
            "response":{"clientDataJSON":"e30=","attestationObject":"AAAA"}}"#;
        assert_eq!(result(garbage, 999), Err(RegistrationError::Malformed));
    }

    #[test]
    fn an_attestation_from_another_origin_is_refused() {
        let rp = relying_party();
        let (options, pending) = alices(&rp, None, Method::SecurityKey).unwrap();
        let answer =
            SoftAuthenticator::new().attest(&options, "https://login.example.org", PRESENT);
        assert_eq!(
            finish(&rp, &pending, &answer, 999).map(|_| ()),
            Err(RegistrationError::WrongOrigin)
        );
    }

    #[test]
    fn a_verified_attestation_yields_the_credential() {
        let rp = relying_party();
        for (method, flags) in [(Method::SecurityKey, PRESENT), (Method::Platform, VERIFIED)] {
            let (options, pending) = alices(&rp, None, method).unwrap();
            let answer =
                SoftAuthenticator::new().attest(&options, "https://login.example.com", flags);
            let credential = finish(&rp, &pending, &answer, 999).unwrap();
            assert_eq!(credential.method, method);
            assert_eq!(credential.credential_id, vec![9; 16]);
            assert_eq!(credential.sign_count, 0);
            assert_eq!(
                credential.aaguid, None,
                "`none` attestation vouches for no model"
            );
        }
    }

    #[test]
    fn a_platform_authenticator_must_verify_the_person() {
        let rp = relying_party();
        let (options, pending) = alices(&rp, None, Method::Platform).unwrap();
        let answer =
            SoftAuthenticator::new().attest(&options, "https://login.example.com", PRESENT);
        assert_eq!(
            finish(&rp, &pending, &answer, 999).map(|_| ()),
            Err(RegistrationError::Refused)
        );
    }
}
