//! Automatic device registration (seed 004): the authenticated user gets a one-time
//! pairing key (text and QR code), the app pairs with it, and control returns.

use std::time::{Duration, Instant};

use figment::Figment;
use serde_json::{Value, json};

use assent_proto::admin::UserDevices;
use assent_proto::authn::{ActionRequest, StatusName};

use crate::support::{
    Backend, TestApp, expect_status, links, on_both_backends, oob_request, unique,
};

on_both_backends!(
    a_registration_pairs_the_app_and_resumes,
    an_expired_or_withdrawn_pairing_key_is_refused,
    an_oob_flow_may_enrol_a_user_without_device,
);

fn registration(user: &str) -> Value {
    let mut request = oob_request(user);
    request["kind"] = json!("registration");
    request["returnUrl"] = json!("myapp://assent/registered");
    request
}

async fn pair_with(app: &TestApp, key: &str) -> Result<assent_device_sdk::Device, String> {
    crate::support::pair_phone(&app.address, key, "new phone")
        .await
        .map_err(|error| error.to_string())
}

/// The pairing key the flow shows.
async fn pairing_key(app: &TestApp, flow: &str) -> String {
    let state = app.state(flow).await;
    expect_status!(state, MobileActivationRequired)
        .pairing_key
        .clone()
}

/// The refusal of a pairing that must fail.
async fn refused(app: &TestApp, key: &str) -> String {
    match pair_with(app, key).await {
        Ok(device) => panic!("paired {} with a key that should not work", device.id()),
        Err(error) => error,
    }
}

pub(crate) async fn a_registration_pairs_the_app_and_resumes(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let flow = app.start_flow(&registration("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MobileActivationRequired);
    let activation = expect_status!(state, MobileActivationRequired);
    assert_eq!(activation.application_name, "Demo Bank");
    assert_eq!(
        links(&state),
        ["cancelAuthentication", "cancelDevicePairing", "poll"]
    );
    let key = activation.pairing_key.clone();
    let qr_code = activation.qr_code.as_ref().unwrap();
    assert!(qr_code.svg.starts_with("data:image/svg+xml;base64,"));
    assert!(qr_code.png.starts_with("data:image/png;base64,"));
    // The key's expiry is an RFC 3339 time on the wire, a few minutes ahead.
    let raw = app.state_json(&flow).await;
    let written = raw["expiresAt"].as_str().expect("expiresAt is a string");
    let expires_at = chrono::DateTime::parse_from_rfc3339(written).unwrap();
    assert_eq!(expires_at, activation.expires_at, "{written}");
    let ahead = expires_at.timestamp()
        - assent_core::clock::Clock::now_secs(&assent_core::clock::SystemClock) as i64;
    assert!((1..=3600).contains(&ahead), "{written} is {ahead} s ahead");

    // The browser long-polls; the app's pairing wakes it.
    let poll = async {
        let started = Instant::now();
        (app.poll(&flow, 20).await, started.elapsed())
    };
    let pair = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        pair_with(&app, &key).await.unwrap()
    };
    let ((state, waited), device) = tokio::join!(poll, pair);
    assert_eq!(state.status.name(), StatusName::Resume);
    assert_eq!(
        expect_status!(state, Resume).resume_url,
        "myapp://assent/registered"
    );
    assert!(waited < Duration::from_secs(15), "{waited:?}");

    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["method"], "registration");
    assert_eq!(result["deviceId"], device.id());
    assert_eq!(result["amr"], json!(["swk"]));
    // The new device is trusted: it can authenticate and is listed for alice.
    let devices: UserDevices = app
        .admin_get("/admin/v1/users/alice/devices")
        .await
        .json()
        .await
        .unwrap();
    assert!(devices.devices.iter().any(|d| d.id == device.id()));
    assert!(device.pending(0).await.unwrap().is_empty());
    // The key worked once.
    assert!(refused(&app, &key).await.contains("404"));
}

async fn an_expired_or_withdrawn_pairing_key_is_refused(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.pairing_key_ttl_secs", 1)),
    )
    .await;
    let flow = app.start_flow(&registration("alice")).await;
    let key = pairing_key(&app, &flow).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = app.state(&flow).await;
    assert_eq!(expired.status.name(), StatusName::MfaFailed);
    assert!(
        expect_status!(expired, MfaFailed)
            .user_message
            .contains("expired")
    );
    assert!(refused(&app, &key).await.contains("404"));

    let app = TestApp::spawn(backend).await;
    let flow = app.start_flow(&registration("alice")).await;
    let key = pairing_key(&app, &flow).await;
    let canceled = app.act_ok(&flow, ActionRequest::CancelDevicePairing).await;
    assert_eq!(canceled.status.name(), StatusName::Canceled);
    assert!(
        refused(&app, &key).await.contains("404"),
        "a canceled registration's key is withdrawn"
    );
}

async fn an_oob_flow_may_enrol_a_user_without_device(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.enrol_on_the_spot", true)),
    )
    .await;
    let newcomer = unique("erin");
    let flow = app.start_flow(&oob_request(&newcomer)).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MobileActivationRequired);
    let device = pair_with(
        &app,
        &expect_status!(state, MobileActivationRequired).pairing_key,
    )
    .await
    .unwrap();
    assert_eq!(device.user_id(), newcomer);
    let completed = app.state(&flow).await;
    assert_eq!(completed.status.name(), StatusName::MfaCompleted);
    let done = app
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);

    // A transaction is never turned into an enrolment: nobody would see what is approved.
    let transfer = crate::support::transfer_request(&unique("gus"), "100", "Bob");
    let flow = app.start_flow(&transfer).await;
    assert_eq!(app.state(&flow).await.status.name(), StatusName::MfaFailed);

    // Without the policy, the same user (had they no device) fails clearly: see oob.rs.
    let mut ciba_kind = oob_request(&newcomer);
    ciba_kind["kind"] = json!("ciba");
    assert_eq!(app.start_flow_raw(&ciba_kind).await.status(), 400);
}
