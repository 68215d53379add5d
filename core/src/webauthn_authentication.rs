//! A WebAuthn sign-in ceremony on `webauthn-rs`: the request options in the shape
//! PingFederate's widget reads, the ceremony state to keep in the flow record between the
//! two steps, and what a verified assertion proves. The last accepted signature counter is
//! not kept here: the caller holds it (compare-and-set) and checks the one reported.

use assent_proto::authn::{AllowedCredential, PublicKeyCredentialRequestOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PublicKeyCredential,
    RequestChallengeResponse, SecurityKey, SecurityKeyAuthentication, WebauthnError,
};

use crate::policy::Method;
use crate::webauthn_registration::{WebauthnKey, unreadable, url_safe, user_handle};

/// Why a sign-in ceremony could not start or finish.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionError {
    /// Only SECURITY_KEY and PLATFORM are WebAuthn methods.
    #[error("{0} is not a WebAuthn method")]
    NotWebauthn(&'static str),
    /// The challenge outlived its `challenge_ttl_secs`.
    #[error("the challenge expired")]
    Expired,
    /// The assertion is not the JSON of a public key credential.
    #[error("the assertion is malformed")]
    Malformed,
    /// The ceremony ran on an origin the relying party does not list.
    #[error("the origin is not one of the relying party's")]
    WrongOrigin,
    /// The authenticator's answer did not verify (challenge, flags, signature, counter).
    #[error("the assertion did not verify")]
    Refused,
    /// The signature verified, but its counter is not above the one the key was set up
    /// with: a cloned authenticator (WebAuthn §7.2 step 22).
    #[error("the signature counter did not move forward")]
    CounterBehind,
    /// The assertion names another credential, or another user, than the stored key's.
    #[error("the assertion names another credential")]
    UnknownCredential,
    /// The kept ceremony state or the stored key could not be read back (a bug or a
    /// corrupted record).
    #[error("the ceremony state is unreadable")]
    State,
}

/// The ceremony state kept in the flow record until the assertion arrives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAssertion {
    /// SECURITY_KEY or PLATFORM; `None` for a discoverable (passwordless) sign-in, where
    /// the assertion names the credential.
    pub method: Option<Method>,
    /// `webauthn-rs`'s state (challenge included), as JSON.
    state: Value,
    /// When the challenge stops being answerable (ms since the epoch).
    pub expires_at_ms: u64,
}

/// What a verified assertion proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asserted {
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// The signature counter the authenticator presented (0 if it keeps none); the caller
    /// checks it against the last accepted one.
    pub sign_count: u32,
    /// Whether the authenticator verified the person (PIN or biometrics).
    pub user_verified: bool,
}

/// Starts a sign-in with one stored credential: a security key need only see the person
/// present, a platform authenticator must verify them.
pub fn start(
    relying_party: &Webauthn,
    key: &WebauthnKey,
    expires_at_ms: u64,
) -> Result<(PublicKeyCredentialRequestOptions, PendingAssertion), AssertionError> {
    let (options, state) = match key.method {
        Method::SecurityKey => {
            let stored: SecurityKey = stored(key)?;
            let (options, state) = relying_party
                .start_securitykey_authentication(&[stored])
                .map_err(|_| AssertionError::Refused)?;
            (options, serde_json::to_value(state))
        }
        // A passkey sign-in asks for, and checks, user verification.
        Method::Platform => {
            let stored: Passkey = stored(key)?;
            let (options, state) = relying_party
                .start_passkey_authentication(&[stored])
                .map_err(|_| AssertionError::Refused)?;
            (options, serde_json::to_value(state))
        }
        other => return Err(AssertionError::NotWebauthn(other.as_str())),
    };
    pending(options, Some(key.method), state, expires_at_ms)
}

/// Starts a passwordless sign-in: no credential named (the authenticator offers the
/// discoverable ones it holds for the relying party) and the person verified.
pub fn start_discoverable(
    relying_party: &Webauthn,
    expires_at_ms: u64,
) -> Result<(PublicKeyCredentialRequestOptions, PendingAssertion), AssertionError> {
    let (options, state) = relying_party
        .start_discoverable_authentication()
        .map_err(|_| AssertionError::Refused)?;
    pending(options, None, serde_json::to_value(state), expires_at_ms)
}

/// The credential id and user handle an assertion names, read before anything is
/// verified (to find the stored key); the widget sends `userHandle` "" when the
/// authenticator gave none.
pub fn identify(assertion: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), AssertionError> {
    let answer = parse(assertion)?;
    Ok((answer.raw_id.clone(), presented_handle(&answer)))
}

/// Verifies an assertion (the widget's `assertion` JSON string, binary fields in padded
/// standard base64) against the pending ceremony and `key`, stored for `user_id`: the
/// challenge is the pending one, the origin one of the relying party's.
pub fn finish(
    relying_party: &Webauthn,
    pending: &PendingAssertion,
    key: &WebauthnKey,
    user_id: &str,
    assertion: &str,
    now_ms: u64,
) -> Result<Asserted, AssertionError> {
    if now_ms >= pending.expires_at_ms {
        return Err(AssertionError::Expired);
    }
    let answer = parse(assertion)?;
    // Named or not, the credential must be the key the caller found; `webauthn-rs`
    // verifies a named one with the copy kept in the state at start.
    if answer.raw_id != key.credential_id {
        return Err(AssertionError::UnknownCredential);
    }
    // A clone was seen: however well it signs, it is not accepted again.
    if key.disabled.is_some() {
        return Err(AssertionError::Refused);
    }
    // WebAuthn §7.2 step 6: a user handle, when given, is the key's user's; a
    // passwordless sign-in found the user by it, so there it must be given.
    match presented_handle(&answer) {
        Some(handle) if handle != user_handle(user_id).as_bytes() => {
            return Err(AssertionError::UnknownCredential);
        }
        None if pending.method.is_none() => return Err(AssertionError::UnknownCredential),
        _ => {}
    }
    let verified = match pending.method {
        Some(Method::SecurityKey) => {
            let state: SecurityKeyAuthentication = state(pending)?;
            relying_party.finish_securitykey_authentication(&answer, &state)
        }
        Some(Method::Platform) => {
            let state: PasskeyAuthentication = state(pending)?;
            relying_party.finish_passkey_authentication(&answer, &state)
        }
        Some(other) => return Err(AssertionError::NotWebauthn(other.as_str())),
        None => {
            let state: DiscoverableAuthentication = state(pending)?;
            let credential = match key.method {
                Method::SecurityKey => Credential::from(stored::<SecurityKey>(key)?),
                Method::Platform => Credential::from(stored::<Passkey>(key)?),
                other => return Err(AssertionError::NotWebauthn(other.as_str())),
            };
            relying_party.finish_discoverable_authentication_v2(&answer, state, &credential)
        }
    };
    let result = verified.map_err(|error| match error {
        WebauthnError::InvalidRPOrigin => AssertionError::WrongOrigin,
        error if unreadable(&error) => AssertionError::Malformed,
        // Checked after the signature: the authenticator holds the key, and counts behind.
        WebauthnError::CredentialPossibleCompromise => AssertionError::CounterBehind,
        _ => AssertionError::Refused,
    })?;
    Ok(Asserted {
        credential_id: result.cred_id().clone(),
        sign_count: result.counter(),
        user_verified: result.user_verified(),
    })
}

/// The options in the widget's shape, and the state to keep.
fn pending(
    options: RequestChallengeResponse,
    method: Option<Method>,
    state: serde_json::Result<Value>,
    expires_at_ms: u64,
) -> Result<(PublicKeyCredentialRequestOptions, PendingAssertion), AssertionError> {
    let options = options.public_key;
    let allow_credentials = options
        .allow_credentials
        .into_iter()
        .map(|allowed| {
            Ok(AllowedCredential {
                kind: allowed.type_,
                id: allowed.id,
                transports: allowed.transports.map(rewire).transpose()?,
            })
        })
        .collect::<Result<_, AssertionError>>()?;
    let user_verification = rewire(options.user_verification)?;
    let options = PublicKeyCredentialRequestOptions {
        challenge: options.challenge,
        timeout: options.timeout,
        rp_id: options.rp_id,
        allow_credentials,
        user_verification,
    };
    let pending = PendingAssertion {
        method,
        state: state.map_err(|_| AssertionError::State)?,
        expires_at_ms,
    };
    Ok((options, pending))
}

/// A `webauthn-rs` value as the wire type of the same JSON (a policy or transports as
/// their names).
fn rewire<T: Serialize, U: serde::de::DeserializeOwned>(value: T) -> Result<U, AssertionError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|_| AssertionError::State)
}

/// The stored key's `webauthn-rs` credential.
fn stored<T: serde::de::DeserializeOwned>(key: &WebauthnKey) -> Result<T, AssertionError> {
    serde_json::from_value(key.credential.clone()).map_err(|_| AssertionError::State)
}

/// The kept ceremony state.
fn state<T: serde::de::DeserializeOwned>(pending: &PendingAssertion) -> Result<T, AssertionError> {
    serde_json::from_value(pending.state.clone()).map_err(|_| AssertionError::State)
}

/// The widget's assertion, its binary fields re-encoded as `webauthn-rs` reads them.
fn parse(assertion: &str) -> Result<PublicKeyCredential, AssertionError> {
    let mut answer: Value =
        serde_json::from_str(assertion).map_err(|_| AssertionError::Malformed)?;
    for field in [
        "/rawId",
        "/response/clientDataJSON",
        "/response/authenticatorData",
        "/response/signature",
    ] {
        url_safe(&mut answer, field).ok_or(AssertionError::Malformed)?;
    }
    let none_given = answer
        .pointer("/response/userHandle")
        .is_none_or(|handle| handle.is_null() || handle == "");
    if none_given {
        if let Some(Value::Object(response)) = answer.get_mut("response") {
            response.remove("userHandle");
        }
    } else {
        url_safe(&mut answer, "/response/userHandle").ok_or(AssertionError::Malformed)?;
    }
    let answer: PublicKeyCredential =
        serde_json::from_value(answer).map_err(|_| AssertionError::Malformed)?;
    if answer.raw_id.is_empty() {
        return Err(AssertionError::Malformed);
    }
    Ok(answer)
}

/// The user handle the authenticator gave, if any.
fn presented_handle(answer: &PublicKeyCredential) -> Option<Vec<u8>> {
    answer
        .get_user_unique_id()
        .filter(|handle| !handle.is_empty())
        .map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::soft_authenticator::{PRESENT, RP_ID, SoftAuthenticator, VERIFIED};
    use crate::webauthn_registration::{self, tests::relying_party};

    const ORIGIN: &str = "https://login.example.com";

    /// A credential of alice's set up through the registration ceremony, its
    /// authenticator's counter at `sign_count`.
    fn enrolled(
        rp: &Webauthn,
        method: Method,
        sign_count: u32,
    ) -> (SoftAuthenticator, WebauthnKey) {
        let mut authenticator = SoftAuthenticator::new();
        authenticator.sign_count = sign_count;
        let (options, pending) =
            webauthn_registration::start(rp, None, method, "alice", "alice", Vec::new(), 1_000)
                .unwrap();
        let answer = authenticator.attest(&options, ORIGIN, VERIFIED);
        let key = webauthn_registration::finish(rp, &pending, &answer, 999).unwrap();
        assert_eq!(key.sign_count, sign_count);
        (authenticator, key)
    }

    fn alice() -> Vec<u8> {
        user_handle("alice").as_bytes().to_vec()
    }

    #[test]
    fn a_good_assertion_verifies_and_reports_its_counter_and_user_verification() {
        let rp = relying_party();
        for (method, flags, verification) in [
            (Method::SecurityKey, PRESENT, "discouraged"),
            (Method::SecurityKey, VERIFIED, "discouraged"),
            (Method::Platform, VERIFIED, "required"),
        ] {
            let (mut authenticator, key) = enrolled(&rp, method, 0);
            let (options, pending) = start(&rp, &key, 1_000).unwrap();
            assert_eq!(pending.method, Some(method));
            assert_eq!(options.rp_id, RP_ID);
            assert!(options.challenge.len() >= 16);
            assert_eq!(options.user_verification, verification);
            assert_eq!(options.allow_credentials.len(), 1);
            assert_eq!(options.allow_credentials[0].kind, "public-key");
            assert_eq!(options.allow_credentials[0].id, key.credential_id);
            authenticator.sign_count = 7;
            let answer = authenticator.assert(&options.challenge, ORIGIN, flags, b"");
            assert_eq!(
                finish(&rp, &pending, &key, "alice", &answer, 999),
                Ok(Asserted {
                    credential_id: key.credential_id.clone(),
                    sign_count: 7,
                    user_verified: flags == VERIFIED,
                }),
                "{method:?}"
            );
        }
    }

    #[test]
    fn counters_at_or_below_the_set_up_one_show_a_clone() {
        let rp = relying_party();
        let (mut authenticator, key) = enrolled(&rp, Method::SecurityKey, 5);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let result = |authenticator: &SoftAuthenticator| {
            let answer = authenticator.assert(&options.challenge, ORIGIN, PRESENT, b"");
            finish(&rp, &pending, &key, "alice", &answer, 999).map(|asserted| asserted.sign_count)
        };
        for lower in [0, 4, 5] {
            authenticator.sign_count = lower;
            assert_eq!(
                result(&authenticator),
                Err(AssertionError::CounterBehind),
                "{lower}"
            );
        }
        authenticator.sign_count = 6;
        assert_eq!(result(&authenticator), Ok(6));
        // One that never counts presents 0 each time: webauthn-rs lets it through.
        let (uncounted, key) = enrolled(&rp, Method::SecurityKey, 0);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let answer = uncounted.assert(&options.challenge, ORIGIN, PRESENT, b"");
        let asserted = finish(&rp, &pending, &key, "alice", &answer, 999);
        assert_eq!(asserted.map(|asserted| asserted.sign_count), Ok(0));
    }

    #[test]
    fn a_wrong_challenge_origin_or_signature_is_refused() {
        let rp = relying_party();
        let (authenticator, key) = enrolled(&rp, Method::SecurityKey, 0);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let (other, _) = start(&rp, &key, 1_000).unwrap();
        let result = |answer: &str| finish(&rp, &pending, &key, "alice", answer, 999).map(|_| ());
        let stale = authenticator.assert(&other.challenge, ORIGIN, PRESENT, b"");
        assert_eq!(result(&stale), Err(AssertionError::Refused));
        let elsewhere = authenticator.assert(
            &options.challenge,
            "https://login.example.org",
            PRESENT,
            b"",
        );
        assert_eq!(result(&elsewhere), Err(AssertionError::WrongOrigin));
        let mut tampered: Value =
            serde_json::from_str(&authenticator.assert(&options.challenge, ORIGIN, PRESENT, b""))
                .unwrap();
        let signature = &mut tampered["response"]["signature"];
        let mut bytes = STANDARD.decode(signature.as_str().unwrap()).unwrap();
        bytes[6] ^= 1; // inside r: still DER, no longer the signature
        *signature = Value::from(STANDARD.encode(bytes));
        assert_eq!(result(&tampered.to_string()), Err(AssertionError::Refused));
    }

    #[test]
    fn another_credential_or_user_is_unknown() {
        let rp = relying_party();
        let (authenticator, key) = enrolled(&rp, Method::Platform, 0);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let mut stranger = SoftAuthenticator::new();
        stranger.credential_id = vec![8; 16];
        let result =
            |answer: &str, user| finish(&rp, &pending, &key, user, answer, 999).map(|_| ());
        let theirs = stranger.assert(&options.challenge, ORIGIN, VERIFIED, b"");
        assert_eq!(
            result(&theirs, "alice"),
            Err(AssertionError::UnknownCredential)
        );
        let handled = authenticator.assert(&options.challenge, ORIGIN, VERIFIED, &alice());
        assert_eq!(
            result(&handled, "bob"),
            Err(AssertionError::UnknownCredential)
        );
        assert_eq!(result(&handled, "alice"), Ok(()));
    }

    #[test]
    fn a_late_or_malformed_assertion_is_refused() {
        let rp = relying_party();
        let (authenticator, key) = enrolled(&rp, Method::SecurityKey, 0);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let result =
            |answer: &str, now_ms| finish(&rp, &pending, &key, "alice", answer, now_ms).map(|_| ());
        let good = authenticator.assert(&options.challenge, ORIGIN, PRESENT, b"");
        assert_eq!(result(&good, 1_000), Err(AssertionError::Expired));
        assert_eq!(result("not json", 999), Err(AssertionError::Malformed));
        assert_eq!(result("{}", 999), Err(AssertionError::Malformed));
        for (field, garbage) in [
            ("signature", "%%%"),
            ("authenticatorData", "AAAA"),
            ("clientDataJSON", "e30="),
            ("userHandle", "*"),
        ] {
            let mut answer: Value = serde_json::from_str(&good).unwrap();
            answer["response"][field] = Value::from(garbage);
            assert_eq!(
                result(&answer.to_string(), 999),
                Err(AssertionError::Malformed),
                "{field}"
            );
        }
        assert_eq!(identify("not json"), Err(AssertionError::Malformed));
        let mut nameless: Value = serde_json::from_str(&good).unwrap();
        nameless["rawId"] = Value::from("");
        assert_eq!(
            identify(&nameless.to_string()),
            Err(AssertionError::Malformed)
        );
        assert_eq!(result(&good, 999), Ok(()));
    }

    #[test]
    fn a_platform_key_must_verify_the_person_and_a_disabled_key_is_refused() {
        let rp = relying_party();
        let (authenticator, key) = enrolled(&rp, Method::Platform, 0);
        let (options, pending) = start(&rp, &key, 1_000).unwrap();
        let answer = authenticator.assert(&options.challenge, ORIGIN, PRESENT, b"");
        assert_eq!(
            finish(&rp, &pending, &key, "alice", &answer, 999).map(|_| ()),
            Err(AssertionError::Refused)
        );
        let verified = authenticator.assert(&options.challenge, ORIGIN, VERIFIED, b"");
        assert_eq!(
            finish(&rp, &pending, &key, "alice", &verified, 999).map(|_| ()),
            Ok(())
        );
        let cloned = WebauthnKey {
            disabled: Some("its signature counter went back".to_owned()),
            ..key.clone()
        };
        assert_eq!(
            finish(&rp, &pending, &cloned, "alice", &verified, 999).map(|_| ()),
            Err(AssertionError::Refused),
            "a disabled key"
        );
    }

    #[test]
    fn a_discoverable_sign_in_names_no_credential_and_finds_the_user_by_handle() {
        let rp = relying_party();
        let (authenticator, key) = enrolled(&rp, Method::Platform, 0);
        let (options, pending) = start_discoverable(&rp, 1_000).unwrap();
        assert_eq!(pending.method, None);
        assert!(options.allow_credentials.is_empty());
        assert_eq!(options.user_verification, "required");
        let result = |answer: &str, user| finish(&rp, &pending, &key, user, answer, 999);
        let unverified = authenticator.assert(&options.challenge, ORIGIN, PRESENT, &alice());
        assert_eq!(result(&unverified, "alice"), Err(AssertionError::Refused));
        let anonymous = authenticator.assert(&options.challenge, ORIGIN, VERIFIED, b"");
        assert_eq!(
            result(&anonymous, "alice"),
            Err(AssertionError::UnknownCredential)
        );
        let answer = authenticator.assert(&options.challenge, ORIGIN, VERIFIED, &alice());
        assert_eq!(
            identify(&answer),
            Ok((key.credential_id.clone(), Some(alice())))
        );
        assert_eq!(
            result(&answer, "bob"),
            Err(AssertionError::UnknownCredential)
        );
        assert_eq!(
            result(&answer, "alice"),
            Ok(Asserted {
                credential_id: key.credential_id.clone(),
                sign_count: 0,
                user_verified: true,
            })
        );
    }

    #[test]
    fn identify_reads_the_credential_id_and_an_empty_user_handle_as_none() {
        let mut authenticator = SoftAuthenticator::new();
        authenticator.credential_id = vec![0xfb, 0xff, 0x3e];
        let answer = authenticator.assert(&[1; 16], ORIGIN, PRESENT, b"");
        assert_eq!(identify(&answer), Ok((vec![0xfb, 0xff, 0x3e], None)));
        let answer = authenticator.assert(&[1; 16], ORIGIN, PRESENT, &[0xff; 16]);
        assert_eq!(
            identify(&answer),
            Ok((vec![0xfb, 0xff, 0x3e], Some(vec![0xff; 16])))
        );
    }
}
