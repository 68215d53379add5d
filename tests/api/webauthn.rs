//! Security keys over the Authentication API, as a client that is not a browser sees them:
//! the set-up and sign-in ceremonies answered by a software authenticator (a real P-256
//! key), each challenge answering once, bad answers refused with a new challenge and
//! nothing saved, counters that show a clone refused, on both backends.

use assent_proto::admin::UserDevices;
use assent_proto::authn::{
    ActionRequest, Assertion, Attestation, AuthnState, Compatibility, DetailCode, Method,
    StatusName,
};
use figment::Figment;
use serde_json::Value;

use crate::soft_authenticator::{Maker, PRESENT, SoftAuthenticator, VERIFIED};
use crate::support::{Backend, TestApp, expect_status, oob_request, unique};

const ORIGIN: &str = "https://login.example.com";

async fn spawn(backend: Backend<'_>) -> TestApp {
    spawn_requiring(backend, "SECURITY_KEY").await
}

/// An instance whose relying party is example.com and whose policy makes `method`
/// mandatory.
async fn spawn_requiring(backend: Backend<'_>, method: &str) -> TestApp {
    let config = Figment::new()
        .merge(("webauthn.rp_id", "example.com"))
        .merge(("webauthn.rp_name", "Demo Bank"))
        .merge(("webauthn.origins", vec![ORIGIN]))
        .merge((
            "mfa.allowed_methods",
            vec!["SMS", "SECURITY_KEY", "PLATFORM"],
        ))
        .merge(("mfa.mandatory_authentication_methods", vec![method]));
    TestApp::spawn_with(backend, &unique("t"), config).await
}

fn activate(attestation: String, origin: &str) -> ActionRequest {
    ActionRequest::ActivateSecurityKeyDevice(Attestation {
        attestation,
        origin: origin.to_owned(),
    })
}

fn check(assertion: String) -> ActionRequest {
    ActionRequest::CheckAssertion(Assertion {
        assertion,
        origin: ORIGIN.to_owned(),
        compatibility: Compatibility::SecurityKeyOnly,
    })
}

/// The creation options a `SECURITY_KEY_ACTIVATION_REQUIRED` state shows.
fn creation_options(state: &AuthnState) -> String {
    expect_status!(state, SecurityKeyActivationRequired)
        .public_key_credential_creation_options
        .clone()
}

/// The challenge an `ASSERTION_REQUIRED` state shows.
fn challenge(state: &AuthnState) -> Vec<u8> {
    expect_status!(state, AssertionRequired)
        .public_key_credential_request_options
        .challenge
        .clone()
}

async fn security_keys(app: &TestApp, user: &str) -> UserDevices {
    app.admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await
        .json()
        .await
        .unwrap()
}

/// A flow for a user with nothing, at the security key's set-up.
async fn at_set_up(app: &TestApp, user: &str) -> (String, AuthnState) {
    let flow = app.start_flow(&oob_request(user)).await;
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MfaSetupRequired
    );
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let state = app
        .act_ok(&flow, ActionRequest::select_pairing_method("SECURITY_KEY"))
        .await;
    (flow, state)
}

async fn a_security_key_is_set_up_once_from_a_fresh_challenge(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("erin");
    let (flow, first) = at_set_up(&app, &user).await;
    let first_options = creation_options(&first);
    let parsed: Value = serde_json::from_str(&first_options).unwrap();
    assert_eq!(parsed["rp"]["id"], "example.com");
    assert!(
        parsed["challenge"]
            .as_array()
            .is_some_and(|c| c.len() >= 16)
    );
    let key = SoftAuthenticator::new();

    // A field missing: a validation error naming it, and the challenge still stands.
    let missing = app
        .act_raw(
            &flow,
            "activateSecurityKeyDevice",
            Some(serde_json::json!({ "origin": ORIGIN })),
        )
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(creation_options(&app.state(&flow).await), first_options);

    // From an origin that is not the relying party's: refused, and a new challenge.
    let elsewhere = app
        .act_err(
            &flow,
            activate(
                key.attest(&first_options, ORIGIN, PRESENT),
                "https://evil.example",
            ),
        )
        .await;
    assert_eq!(elsewhere.status, 400);
    assert_eq!(elsewhere.detail().code, DetailCode::InvalidValue);
    assert_eq!(elsewhere.detail().target.as_deref(), Some("attestation"));
    let second_options = creation_options(&app.state(&flow).await);
    assert_ne!(
        second_options, first_options,
        "a refused answer spends its challenge"
    );

    // The first challenge, answered properly now, is spent.
    let stale = app
        .act_err(
            &flow,
            activate(key.attest(&first_options, ORIGIN, PRESENT), ORIGIN),
        )
        .await;
    assert_eq!(stale.status, 400);
    assert!(security_keys(&app, &user).await.passcode_devices.is_empty());

    // The current one: the key is set up, and the flow is done.
    let third_options = creation_options(&app.state(&flow).await);
    let done = app
        .act_ok(
            &flow,
            activate(key.attest(&third_options, ORIGIN, PRESENT), ORIGIN),
        )
        .await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    let devices = security_keys(&app, &user).await;
    let [saved] = devices.passcode_devices.as_slice() else {
        panic!("one security key: {devices:?}");
    };
    assert_eq!(saved.method, Method::SecurityKey);

    // The same authenticator's credential cannot be set up again, by anyone.
    let other = unique("frank");
    let (flow, state) = at_set_up(&app, &other).await;
    let again = app
        .act_err(
            &flow,
            activate(
                key.attest(&creation_options(&state), ORIGIN, PRESENT),
                ORIGIN,
            ),
        )
        .await;
    assert_eq!(again.status, 400);
    assert!(again.body.message.contains("already set up"), "{again:?}");
    assert!(
        security_keys(&app, &other)
            .await
            .passcode_devices
            .is_empty()
    );
}

async fn set_up(app: &TestApp, user: &str, key: &SoftAuthenticator) {
    let (flow, state) = at_set_up(app, user).await;
    let options = creation_options(&state);
    app.act_ok(
        &flow,
        activate(key.attest(&options, ORIGIN, PRESENT), ORIGIN),
    )
    .await;
}

async fn a_security_key_signs_in_once_per_challenge_and_its_clone_is_refused(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("gina");
    let mut key = SoftAuthenticator::new();
    set_up(&app, &user, &key).await;

    // The key is the only device: the sign-in asks it at once, naming its credential.
    let flow = app.start_flow(&oob_request(&user)).await;
    let state = app.state(&flow).await;
    let options = &expect_status!(state, AssertionRequired).public_key_credential_request_options;
    assert_eq!(options.rp_id, "example.com");
    assert_eq!(options.allow_credentials[0].id, key.credential_id);

    // Another key with the same credential id: its signature does not verify.
    let mut impostor = SoftAuthenticator::new();
    impostor.sign_count = 1;
    let refused = app
        .act_err(
            &flow,
            check(impostor.assert(&challenge(&state), ORIGIN, PRESENT, b"")),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.detail().target.as_deref(), Some("assertion"));
    let fresh = app.state(&flow).await;
    assert_ne!(challenge(&fresh), challenge(&state), "a new challenge");

    // The key answers the current challenge: done, phishing-resistant.
    key.sign_count = 1;
    let signed = key.assert(&challenge(&fresh), ORIGIN, PRESENT, b"");
    let done = app.act_ok(&flow, check(signed.clone())).await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["method"], "security_key");
    assert_eq!(
        result["acr"], "urn:assent:acr:phishing-resistant",
        "{result}"
    );

    // The same signed answer on another sign-in answers another challenge: refused.
    let flow = app.start_flow(&oob_request(&user)).await;
    let replay = app.act_err(&flow, check(signed)).await;
    assert_eq!(replay.status, 400);

    // A clone: the same key, its counter behind the last accepted one.
    let state = app.state(&flow).await;
    let cloned = app
        .act_ok(
            &flow,
            check(key.assert(&challenge(&state), ORIGIN, PRESENT, b"")),
        )
        .await;
    let failure = expect_status!(cloned, MfaFailed);
    assert!(failure.reason.contains("cloned"), "{failure:?}");
    let devices = security_keys(&app, &user).await;
    assert!(
        devices.passcode_devices[0].disabled.is_some(),
        "disabled: {devices:?}"
    );
    // Disabled, even the real key is not asked any more.
    key.sign_count = 7;
    let flow = app.start_flow(&oob_request(&user)).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MfaFailed);
}

async fn refused_answers_lock_the_sign_in_out(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("hugo");
    let key = SoftAuthenticator::new();
    set_up(&app, &user, &key).await;
    let flow = app.start_flow(&oob_request(&user)).await;
    for left in [2, 1] {
        let refused = app.act_err(&flow, check("{}".to_owned())).await;
        assert_eq!(refused.status, 400);
        assert!(
            refused.body.message.contains(&format!("{left} attempt")),
            "{refused:?}"
        );
    }
    let locked = app.act_ok(&flow, check("not json".to_owned())).await;
    assert_eq!(locked.status.name(), StatusName::MfaFailed);
}

async fn a_platform_authenticator_must_verify_the_person(backend: Backend<'_>) {
    let app = spawn_requiring(backend, "PLATFORM").await;
    let user = unique("iris");
    let flow = app.start_flow(&oob_request(&user)).await;
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let state = app
        .act_ok(&flow, ActionRequest::select_pairing_method("PLATFORM"))
        .await;
    let options = |state: &AuthnState| {
        expect_status!(state, PlatformActivationRequired)
            .public_key_credential_creation_options
            .clone()
    };
    let parsed: Value = serde_json::from_str(&options(&state)).unwrap();
    let selection = &parsed["authenticatorSelection"];
    assert_eq!(selection["userVerification"], "required", "{parsed}");
    assert_eq!(selection["authenticatorAttachment"], "platform");
    assert_eq!(
        selection["residentKey"], "required",
        "a passkey, found with no user named"
    );
    let key = SoftAuthenticator::new();
    let platform = |attestation| {
        ActionRequest::ActivatePlatformDevice(Attestation {
            attestation,
            origin: ORIGIN.to_owned(),
        })
    };
    // Present but not verified: a thief holding the laptop is present too.
    let unverified = app
        .act_err(
            &flow,
            platform(key.attest(&options(&state), ORIGIN, PRESENT)),
        )
        .await;
    assert_eq!(unverified.status, 400);
    let state = app.state(&flow).await;
    let done = app
        .act_ok(
            &flow,
            platform(key.attest(&options(&state), ORIGIN, VERIFIED)),
        )
        .await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    let devices = security_keys(&app, &user).await;
    assert_eq!(devices.passcode_devices[0].method, Method::Platform);
}

/// The model the bank allows, and another model of the same maker.
const ALLOWED: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";
const OTHER: &str = "ee882879-721c-4913-9775-3dfcce97072a";

/// An instance requiring `method` of the model ALLOWED, attested by `maker`'s root
/// (written to a file, as an operator configures it).
async fn spawn_attesting(backend: Backend<'_>, maker: &Maker, method: &str) -> TestApp {
    let root = std::env::temp_dir().join(format!("{}.pem", unique("maker-root")));
    std::fs::write(&root, maker.root_pem()).unwrap();
    let config = Figment::new()
        .merge(("webauthn.rp_id", "example.com"))
        .merge(("webauthn.rp_name", "Demo Bank"))
        .merge(("webauthn.origins", vec![ORIGIN]))
        .merge(("webauthn.attestation", "indirect"))
        .merge(("webauthn.allowed_aaguids", vec![ALLOWED]))
        .merge((
            "webauthn.attestation_roots",
            vec![root.display().to_string()],
        ))
        .merge((
            "mfa.allowed_methods",
            vec!["SMS", "SECURITY_KEY", "PLATFORM"],
        ))
        .merge(("mfa.mandatory_authentication_methods", vec![method]));
    TestApp::spawn_with(backend, &unique("t"), config).await
}

async fn only_an_allowed_model_attested_by_a_trusted_root_is_set_up(backend: Backend<'_>) {
    let acme = Maker::new("Acme");
    let app = spawn_attesting(backend, &acme, "SECURITY_KEY").await;
    let user = unique("jane");
    let (flow, state) = at_set_up(&app, &user).await;
    let parsed: Value = serde_json::from_str(&creation_options(&state)).unwrap();
    assert_eq!(
        parsed["attestation"], "direct",
        "the maker's attestation is asked for: {parsed}"
    );
    let mut key = SoftAuthenticator::new();
    let refused = |refusal: crate::support::Refusal, why: &str| {
        assert_eq!(refusal.status, 400);
        assert_eq!(refusal.detail().target.as_deref(), Some("attestation"));
        assert!(refusal.body.message.contains(why), "{refusal:?}");
    };

    // No attestation: nothing vouches for the model.
    let options = creation_options(&app.state(&flow).await);
    let none = app
        .act_err(
            &flow,
            activate(key.attest(&options, ORIGIN, PRESENT), ORIGIN),
        )
        .await;
    refused(none, "maker did not vouch");

    // The trusted maker's other model.
    let options = creation_options(&app.state(&flow).await);
    let other = key.attest_packed(&acme.model(OTHER), &options, ORIGIN, PRESENT);
    refused(
        app.act_err(&flow, activate(other, ORIGIN)).await,
        "model is not allowed",
    );
    assert!(security_keys(&app, &user).await.passcode_devices.is_empty());

    // The allowed model: set up, and the operator sees which model it is.
    let options = creation_options(&app.state(&flow).await);
    let allowed = key.attest_packed(&acme.model(ALLOWED), &options, ORIGIN, PRESENT);
    let done = app.act_ok(&flow, activate(allowed, ORIGIN)).await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    let devices = security_keys(&app, &user).await;
    let [saved] = devices.passcode_devices.as_slice() else {
        panic!("one security key: {devices:?}");
    };
    assert_eq!(saved.target.as_deref(), Some(ALLOWED));

    // It signs in like any security key.
    let flow = app.start_flow(&oob_request(&user)).await;
    key.sign_count = 1;
    let signed = key.assert(&challenge(&app.state(&flow).await), ORIGIN, PRESENT, b"");
    let signed_in = app.act_ok(&flow, check(signed)).await;
    assert_eq!(signed_in.status.name(), StatusName::MfaCompleted);

    // The allowed model's AAGUID under an impostor root of the maker's very name.
    let other_user = unique("karl");
    let (flow, state) = at_set_up(&app, &other_user).await;
    let impostor = Maker::new("Acme").model(ALLOWED);
    let forged = SoftAuthenticator::new().attest_packed(
        &impostor,
        &creation_options(&state),
        ORIGIN,
        PRESENT,
    );
    refused(
        app.act_err(&flow, activate(forged, ORIGIN)).await,
        "maker did not vouch",
    );
    assert!(
        security_keys(&app, &other_user)
            .await
            .passcode_devices
            .is_empty()
    );
}

async fn a_platform_authenticator_is_held_to_the_attestation_policy(backend: Backend<'_>) {
    let acme = Maker::new("Acme");
    let app = spawn_attesting(backend, &acme, "PLATFORM").await;
    let user = unique("lena");
    let flow = app.start_flow(&oob_request(&user)).await;
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    app.act_ok(&flow, ActionRequest::select_pairing_method("PLATFORM"))
        .await;
    let options = |state: &AuthnState| {
        expect_status!(state, PlatformActivationRequired)
            .public_key_credential_creation_options
            .clone()
    };
    let platform = |attestation| {
        ActionRequest::ActivatePlatformDevice(Attestation {
            attestation,
            origin: ORIGIN.to_owned(),
        })
    };
    let mut key = SoftAuthenticator::new();

    // The person verified, but no attestation (as most phones' passkeys): refused.
    let state = app.state(&flow).await;
    let none = key.attest(&options(&state), ORIGIN, VERIFIED);
    let refused = app.act_err(&flow, platform(none)).await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.message.contains("maker did not vouch"),
        "{refused:?}"
    );

    // The allowed model, attested: set up as that model, and it signs in.
    let state = app.state(&flow).await;
    let attested = key.attest_packed(&acme.model(ALLOWED), &options(&state), ORIGIN, VERIFIED);
    let done = app.act_ok(&flow, platform(attested)).await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    let devices = security_keys(&app, &user).await;
    assert_eq!(devices.passcode_devices[0].method, Method::Platform);
    assert_eq!(devices.passcode_devices[0].target.as_deref(), Some(ALLOWED));
    let flow = app.start_flow(&oob_request(&user)).await;
    key.sign_count = 1;
    let signed = key.assert(&challenge(&app.state(&flow).await), ORIGIN, VERIFIED, b"");
    let signed_in = app.act_ok(&flow, check(signed)).await;
    assert_eq!(signed_in.status.name(), StatusName::MfaCompleted);
}

crate::support::on_both_backends!(
    a_platform_authenticator_is_held_to_the_attestation_policy,
    only_an_allowed_model_attested_by_a_trusted_root_is_set_up,
    a_platform_authenticator_must_verify_the_person,
    a_security_key_is_set_up_once_from_a_fresh_challenge,
    a_security_key_signs_in_once_per_challenge_and_its_clone_is_refused,
    refused_answers_lock_the_sign_in_out,
);
