//! Passwordless sign-in over HTTP (seed 001's Initialize / Finalize Passwordless
//! Authentication): a flow started with no user asks for any passkey, the assertion's
//! credential names its owner, and the result's one-time `passwordlessContext` is spent by
//! the finalize. Signed by the core's software authenticator (a real P-256 key), so that
//! both backends run it without a browser.

use assent_core::config::SecretHash;
use assent_proto::adapter::PasswordlessFinalized;
use assent_proto::authn::{
    ActionRequest, Assertion, Attestation, AuthnState, Compatibility, PairingMethodChoice,
    PairingMethodRef, StatusName,
};
use figment::Figment;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{
    Backend, FEDERATION, TestApp, expect_status, links, oob_request, problem, unique,
};
use crate::webauthn_widget::clone_reported;

use crate::soft_authenticator::{SoftAuthenticator, VERIFIED};

on_both_backends!(
    a_passkey_signs_its_owner_in_and_the_context_is_finalized_once,
    finalize_refuses_bad_input_and_leaves_nothing,
    a_passwordless_flow_refuses_what_is_not_its_owners_passkey,
);

use crate::support::on_both_backends;

/// Another federation server of the same deployment.
const OTHER: (&str, &str) = ("other-federation", "other-federation-secret-0123456789");

/// The page's origin (the software authenticator's relying party is `example.com`).
const ORIGIN: &str = "https://login.example.com";

/// A relying party on `example.com`, PLATFORM mandatory; the `payroll` application allows
/// security keys only, and `198.51.100.0/24` is denied.
fn passkeys() -> Figment {
    let clients = json!([
        { "id": FEDERATION.0, "secret_sha256": SecretHash::of(FEDERATION.1).to_hex() },
        { "id": OTHER.0, "secret_sha256": SecretHash::of(OTHER.1).to_hex() },
    ]);
    Figment::new()
        .merge(("adapter_clients", clients))
        .merge(("webauthn.rp_id", "example.com"))
        .merge(("webauthn.rp_name", "Demo Bank"))
        .merge(("webauthn.origins", vec![ORIGIN]))
        .merge((
            "mfa.allowed_methods",
            vec!["PINGID_MOBILE", "SMS", "TOTP", "SECURITY_KEY", "PLATFORM"],
        ))
        .merge(("mfa.mandatory_authentication_methods", vec!["PLATFORM"]))
        .merge((
            "mfa.network_rules",
            json!([{ "cidr": "198.51.100.0/24", "action": "deny" }]),
        ))
        .merge((
            "application_policies.payroll.allowed_methods",
            vec!["SECURITY_KEY"],
        ))
        .merge((
            "application_policies.payroll.mandatory_authentication_methods",
            Vec::<String>::new(),
        ))
}

/// A passwordless flow's start: no user.
pub(crate) fn passwordless_request(application_id: &str) -> Value {
    json!({
        "kind": "passwordless",
        "application": { "name": "Demo Bank", "id": application_id },
        "clientIp": "203.0.113.7",
        "returnUrl": "https://sso.example.com/resume",
    })
}

/// The user handle a credential of `user` carries (as the server derives it).
fn user_handle(user: &str) -> Vec<u8> {
    Sha256::digest(user.as_bytes())[..16].to_vec()
}

/// A software authenticator with its own credential id.
fn authenticator() -> SoftAuthenticator {
    let mut authenticator = SoftAuthenticator::new();
    authenticator.credential_id = unique("cred").into_bytes();
    authenticator
}

/// `user` sets up `authenticator` as their PLATFORM credential in an out-of-band flow.
async fn set_up_platform(app: &TestApp, user: &str, authenticator: &SoftAuthenticator) {
    let flow = app.start_flow(&oob_request(user)).await;
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let choice = PairingMethodChoice {
        device_pairing_method: PairingMethodRef {
            device_type: "PLATFORM".to_owned(),
            application_name: None,
        },
    };
    let state = app
        .act_ok(&flow, ActionRequest::SelectDevicePairingMethod(choice))
        .await;
    let activation = expect_status!(state, PlatformActivationRequired);
    let attestation = authenticator.attest(
        &activation.public_key_credential_creation_options,
        ORIGIN,
        VERIFIED,
    );
    let state = app
        .act_ok(
            &flow,
            ActionRequest::ActivatePlatformDevice(Attestation {
                attestation,
                origin: ORIGIN.to_owned(),
            }),
        )
        .await;
    assert_eq!(state.status.name(), StatusName::MfaCompleted, "{state:?}");
}

/// The challenge an `ASSERTION_REQUIRED` state asks to sign.
fn challenge(state: &AuthnState) -> Vec<u8> {
    let asked = expect_status!(state, AssertionRequired);
    asked
        .public_key_credential_request_options
        .challenge
        .clone()
}

fn check(assertion: String) -> ActionRequest {
    ActionRequest::CheckAssertion(Assertion {
        assertion,
        origin: ORIGIN.to_owned(),
        compatibility: Compatibility::Full,
    })
}

/// A passwordless flow entered by the browser: its id and its `ASSERTION_REQUIRED`.
async fn passwordless_flow(app: &TestApp, application_id: &str) -> (String, AuthnState) {
    let flow = app
        .start_flow_unauthenticated(&passwordless_request(application_id))
        .await;
    let state = app.enter(&flow).await;
    (flow, state)
}

/// Signs in without a username: `authenticator`'s assertion (at `count`) answers; the
/// result as the federation server reads it.
async fn sign_in(
    app: &TestApp,
    authenticator: &mut SoftAuthenticator,
    user: &str,
    count: u32,
) -> Value {
    let (flow, state) = passwordless_flow(app, "bank").await;
    authenticator.sign_count = count;
    let assertion = authenticator.assert(&challenge(&state), ORIGIN, VERIFIED, &user_handle(user));
    let state = app.act_ok(&flow, check(assertion)).await;
    assert_eq!(state.status.name(), StatusName::Resume, "{state:?}");
    let response = app.result(&flow).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `POST /adapter/v1/passwordless/finalize` as the demo federation server.
pub(crate) async fn finalize(app: &TestApp, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/adapter/v1/passwordless/finalize"))
        .basic_auth(FEDERATION.0, Some(FEDERATION.1))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A finalize for `user` with `context`, from `192.0.2.10`, for the `bank` application.
pub(crate) fn finalize_request(user: &str, context: &str) -> Value {
    json!({
        "sub": user,
        "passwordlessContext": context,
        "application": { "name": "Demo Bank", "id": "bank" },
        "clientIp": "192.0.2.10",
    })
}

async fn a_passkey_signs_its_owner_in_and_the_context_is_finalized_once(backend: Backend<'_>) {
    let app = TestApp::spawn_with(backend, &unique("t"), passkeys()).await;
    let user = unique("erin");
    let mut passkey = authenticator();
    set_up_platform(&app, &user, &passkey).await;

    // The page asks for any passkey: none named, the person verified, no device listed.
    let (flow, state) = passwordless_flow(&app, "bank").await;
    let asked = expect_status!(state, AssertionRequired);
    assert!(asked.devices.is_empty(), "{asked:?}");
    assert_eq!(asked.selected_device_ref, None);
    let options = &asked.public_key_credential_request_options;
    assert!(options.allow_credentials.is_empty(), "{options:?}");
    assert_eq!(options.user_verification, "required");
    assert_eq!(links(&state), ["cancelAuthentication", "checkAssertion"]);
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;

    let result = sign_in(&app, &mut passkey, &user, 1).await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["subject"], user.as_str());
    assert_eq!(result["method"], "platform");
    assert_eq!(result["authenticationType"], "PLATFORM");
    assert!(result["deviceId"].is_string(), "{result}");
    let context = result["passwordlessContext"].as_str().expect("a context");

    // Seed 001's second step: policy for the user, once.
    let response = finalize(&app, &finalize_request(&user, context)).await;
    assert_eq!(response.status(), 200);
    let finalized: PasswordlessFinalized = response.json().await.unwrap();
    assert_eq!(finalized.status, "COMPLETED", "{finalized:?}");
    assert_eq!(finalized.sub, user);
    assert_eq!(finalized.authentication_type, "PLATFORM");
    assert_eq!(finalized.accessing_device.unwrap().ip, "192.0.2.10");
    let again = finalize(&app, &finalize_request(&user, context)).await;
    assert_eq!(again.status(), 404, "a context is spent once");

    // Another federation server's context: unknown to this one, and spent.
    let result = sign_in(&app, &mut passkey, &user, 2).await;
    let context = result["passwordlessContext"].as_str().unwrap();
    let foreign = reqwest::Client::new()
        .post(app.url("/adapter/v1/passwordless/finalize"))
        .basic_auth(OTHER.0, Some(OTHER.1))
        .json(&finalize_request(&user, context))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);
    let spent = finalize(&app, &finalize_request(&user, context)).await;
    assert_eq!(spent.status(), 404);

    // Another user's name with the context: refused, and the context is spent.
    let result = sign_in(&app, &mut passkey, &user, 3).await;
    let context = result["passwordlessContext"].as_str().unwrap();
    let other = finalize(&app, &finalize_request("mallory", context)).await;
    assert_eq!(other.status(), 400);
    let problem = problem(other).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("sub"),
        "{problem}"
    );
    let spent = finalize(&app, &finalize_request(&user, context)).await;
    assert_eq!(spent.status(), 404);

    // Policy at the finalize: an application that allows security keys only, a network
    // that is denied.
    for (application, ip, reason) in [
        ("payroll", "192.0.2.10", "PLATFORM"),
        ("bank", "198.51.100.7", "network"),
    ] {
        let count = if application == "payroll" { 4 } else { 5 };
        let result = sign_in(&app, &mut passkey, &user, count).await;
        let mut body = finalize_request(&user, result["passwordlessContext"].as_str().unwrap());
        body["application"]["id"] = json!(application);
        body["clientIp"] = json!(ip);
        let finalized: PasswordlessFinalized = finalize(&app, &body).await.json().await.unwrap();
        assert_eq!(finalized.status, "FAILED", "{finalized:?}");
        assert!(
            finalized.reason.as_deref().unwrap_or("").contains(reason),
            "{finalized:?}"
        );
    }
    app.stop().await;
}

async fn finalize_refuses_bad_input_and_leaves_nothing(backend: Backend<'_>) {
    let app = TestApp::spawn_with(backend, &unique("t"), passkeys()).await;
    let well_formed = "A".repeat(40);
    let unauthenticated = reqwest::Client::new()
        .post(app.url("/adapter/v1/passwordless/finalize"))
        .json(&finalize_request("erin", &well_formed))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let mut unknown_field = finalize_request("erin", &well_formed);
    unknown_field["extra"] = json!(true);
    let mut bad_ip = finalize_request("erin", &well_formed);
    bad_ip["clientIp"] = json!("not an address");
    for (body, status) in [
        (json!({ "sub": "erin" }), 400),
        (unknown_field, 400),
        (bad_ip, 400),
        (finalize_request("erin", "short"), 400),
        (finalize_request("", &well_formed), 400),
        (finalize_request("erin", &well_formed), 404),
    ] {
        let response = finalize(&app, &body).await;
        assert_eq!(response.status(), status, "{body}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "application/problem+json", "{body}");
    }
    // A passwordless flow names its user itself.
    let mut with_user = passwordless_request("bank");
    with_user["user"] = json!({ "id": "erin", "username": "erin" });
    assert_eq!(app.start_flow_raw(&with_user).await.status(), 400);
    app.stop().await;
}

async fn a_passwordless_flow_refuses_what_is_not_its_owners_passkey(backend: Backend<'_>) {
    let config = passkeys().merge(("mfa.otp_max_attempts", 5));
    let app = TestApp::spawn_with(backend, &unique("t"), config).await;
    let user = unique("erin");
    let mut passkey = authenticator();
    set_up_platform(&app, &user, &passkey).await;

    // Garbage, an unknown passkey, a wrong origin: each a 400 with a new challenge.
    let (flow, state) = passwordless_flow(&app, "bank").await;
    let mut asked = challenge(&state);
    let stranger = authenticator();
    let wrong_origin = {
        passkey.sign_count = 1;
        passkey.assert(
            &asked,
            "https://evil.example.net",
            VERIFIED,
            &user_handle(&user),
        )
    };
    for assertion in [
        "{not json".to_owned(),
        stranger.assert(&asked, ORIGIN, VERIFIED, &user_handle(&user)),
        wrong_origin,
    ] {
        let refusal = app.act_err(&flow, check(assertion)).await;
        assert_eq!(refusal.status, 400, "{refusal:?}");
        let state = app.state(&flow).await;
        let renewed = challenge(&state);
        assert_ne!(renewed, asked, "a refused answer gets a new challenge");
        asked = renewed;
    }
    // The same passkey presenting another user's handle is not its owner's.
    let refusal = app
        .act_err(
            &flow,
            check(passkey.assert(&asked, ORIGIN, VERIFIED, &user_handle("mallory"))),
        )
        .await;
    assert_eq!(refusal.status, 400, "{refusal:?}");
    // The fifth refused answer ends the sign-in, as wrong passcodes do.
    let state = app
        .act(&flow, check("{}".to_owned()))
        .await
        .expect("the last try ends the flow");
    let failure = expect_status!(state, MfaFailed);
    assert!(failure.reason.contains("too many"), "{failure:?}");

    // The owner's policy decides: `payroll` does not allow PLATFORM.
    let (flow, state) = passwordless_flow(&app, "payroll").await;
    passkey.sign_count = 2;
    let assertion = passkey.assert(&challenge(&state), ORIGIN, VERIFIED, &user_handle(&user));
    let state = app.act_ok(&flow, check(assertion)).await;
    let failure = expect_status!(state, MfaFailed);
    assert!(failure.reason.contains("PLATFORM"), "{failure:?}");

    // A clone (its counter behind the last accepted one): refused and disabled.
    let (flow, state) = passwordless_flow(&app, "bank").await;
    passkey.sign_count = 1;
    let assertion = passkey.assert(&challenge(&state), ORIGIN, VERIFIED, &user_handle(&user));
    let state = app.act_ok(&flow, check(assertion)).await;
    let failure = expect_status!(state, MfaFailed);
    assert!(failure.reason.contains("cloned"), "{failure:?}");
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED");
    assert!(result.get("passwordlessContext").is_none(), "{result}");
    clone_reported(&app, &flow, &user).await;
    app.stop().await;
}
