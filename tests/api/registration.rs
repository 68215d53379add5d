//! Automatic device registration (seed 004): the authenticated user gets a one-time
//! pairing key (text and QR code), the app pairs with it, and control returns.

use std::time::{Duration, Instant};

use figment::Figment;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, links, on_both_backends, oob_request, unique};

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

/// The refusal of a pairing that must fail.
async fn refused(app: &TestApp, key: &str) -> String {
    match pair_with(app, key).await {
        Ok(device) => panic!("paired {} with a key that should not work", device.id()),
        Err(error) => error,
    }
}

async fn a_registration_pairs_the_app_and_resumes(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let flow = app.start_flow(&registration("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state["status"], "MOBILE_ACTIVATION_REQUIRED");
    assert_eq!(state["applicationName"], "Demo Bank");
    assert_eq!(
        links(&state),
        ["cancelAuthentication", "cancelDevicePairing", "poll"]
    );
    let key = state["pairingKey"].as_str().unwrap().to_owned();
    assert!(
        state["qrCode"]["svg"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    assert!(
        state["qrCode"]["png"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );

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
    assert_eq!(state["status"], "RESUME");
    assert_eq!(state["resumeUrl"], "myapp://assent/registered");
    assert!(waited < Duration::from_secs(15), "{waited:?}");

    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["method"], "registration");
    assert_eq!(result["deviceId"], device.id());
    assert_eq!(result["amr"], json!(["swk"]));
    // The new device is trusted: it can authenticate and is listed for alice.
    let devices: Value = app
        .admin_get("/admin/v1/users/alice/devices")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        devices["devices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == device.id())
    );
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
    let key = app.state(&flow).await["pairingKey"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let expired = app.state(&flow).await;
    assert_eq!(expired["status"], "MFA_FAILED");
    assert!(expired["userMessage"].as_str().unwrap().contains("expired"));
    assert!(refused(&app, &key).await.contains("404"));

    let app = TestApp::spawn(backend).await;
    let flow = app.start_flow(&registration("alice")).await;
    let key = app.state(&flow).await["pairingKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let canceled = app.act_ok(&flow, "cancelDevicePairing", None).await;
    assert_eq!(canceled["status"], "CANCELED");
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
    assert_eq!(state["status"], "MOBILE_ACTIVATION_REQUIRED");
    let device = pair_with(&app, state["pairingKey"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(device.user_id(), newcomer);
    let completed = app.state(&flow).await;
    assert_eq!(completed["status"], "MFA_COMPLETED");
    let done = app.act_ok(&flow, "continueAuthentication", None).await;
    assert_eq!(done["status"], "COMPLETED");

    // A transaction is never turned into an enrolment: nobody would see what is approved.
    let transfer = crate::support::transfer_request(&unique("gus"), "100", "Bob");
    let flow = app.start_flow(&transfer).await;
    assert_eq!(app.state(&flow).await["status"], "MFA_FAILED");

    // Without the policy, the same user (had they no device) fails clearly: see oob.rs.
    let mut ciba_kind = oob_request(&newcomer);
    ciba_kind["kind"] = json!("ciba");
    assert_eq!(app.start_flow_raw(&ciba_kind).await.status(), 400);
}
