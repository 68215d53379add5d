//! Entering a flow, as PingFederate's MFA adapters do it: a flow opens in
//! `AUTHENTICATION_REQUIRED`, nothing reaches a phone until `authenticate` is posted; a
//! browser posts `authenticate {}` (as PingFederate's widget does by itself), a native app
//! `authenticate {mobilePayload}` — a trusted device is signed in with no interaction, an
//! app not trusted yet pairs through `serverPayload`.

use std::time::{Duration, SystemTime};

use assent_device_sdk::{Client, DeviceInfo, DeviceKey, decode_server_payload};
use figment::Figment;
use serde_json::{Value, json};

use assent_proto::authn::{ActionRequest, AuthnState, ErrorCode, StatusName};

use crate::support::{
    Backend, TestApp, expect_status, links, on_both_backends, oob_request, transfer_request, unique,
};

on_both_backends!(
    nothing_reaches_a_phone_before_the_browser_authenticates,
    every_browser_kind_opens_in_authentication_required,
    a_trusted_app_is_signed_in_with_no_push,
    mobile_payloads_that_do_not_prove_a_trusted_device_are_refused,
    an_unknown_app_pairs_through_the_server_payload,
    an_unknown_app_is_verified_by_the_primary_first,
);

fn kind(user: Option<&str>, kind: &str) -> Value {
    let mut request = match user {
        Some(user) => oob_request(user),
        None => json!({"application": {"name": "Portal"}}),
    };
    request["kind"] = json!(kind);
    request
}

fn app_info() -> DeviceInfo {
    DeviceInfo {
        name: "Alice's new phone".to_owned(),
        os: "Android".to_owned(),
        os_version: "15".to_owned(),
        model: "Pixel 9".to_owned(),
    }
}

/// `authenticate {}` exactly as PingFederate's widget posts it (`postEmptyAuthentication`:
/// `POST_FLOW("authenticate", "{}")`, the action id in the content type, `Accept` JSON,
/// `X-XSRF-Header: PingFederate`).
async fn widget_authenticate(app: &TestApp, flow: &str) -> AuthnState {
    let mut request = app
        .http
        .post(app.url(&format!("/pf-ws/authn/flows/{flow}")))
        .header("Accept", "application/json")
        .header("X-XSRF-Header", "PingFederate")
        .header(
            "Content-Type",
            "application/vnd.pingidentity.authenticate+json",
        )
        .body("{}");
    if let Some(secret) = app.binding(flow) {
        request = request.header("X-PF-Authn-API-State", secret);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn nothing_reaches_a_phone_before_the_browser_authenticates(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;

    let opened = app.state(&flow).await;
    assert_eq!(opened.status.name(), StatusName::AuthenticationRequired);
    assert_eq!(links(&opened), ["authenticate", "cancelAuthentication"]);
    assert!(
        phone.pending(1).await.is_empty(),
        "no request before a browser is on the page"
    );
    let early = app.result(&flow).await;
    assert_eq!(early.status(), 409, "not over: nothing to pick up");

    let entered = widget_authenticate(&app, &flow).await;
    assert_eq!(entered.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(entered.status.selected_device_id(), Some(phone.id()));
    assert_eq!(
        phone.pending(5).await.len(),
        1,
        "the push went with authenticate"
    );
    let again = app
        .act_err(&flow, ActionRequest::authenticate_browser())
        .await;
    assert_eq!(again.status, 400);
    assert_eq!(again.body.code, ErrorCode::InvalidActionId);
    assert_eq!(phone.pending(0).await.len(), 1, "entered once, pushed once");

    // The widget's other way to name the action: `?action=` with application/json.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let state = app
        .http
        .post(app.url(&format!("/pf-ws/authn/flows/{flow}?action=authenticate")))
        .header("X-XSRF-Header", "PingFederate")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(state.status(), 200);
    let state: AuthnState = state.json().await.unwrap();
    assert_eq!(state.status.name(), StatusName::PushConfirmationWaiting);

    // Canceled before entering: nothing was ever sent for it.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let canceled = app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    assert_eq!(canceled.status.name(), StatusName::Canceled);
    assert_eq!(
        phone.pending(0).await.len(),
        2,
        "only the two entered flows"
    );
}

async fn every_browser_kind_opens_in_authentication_required(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    for (request, entered) in [
        (
            transfer_request("alice", "10.00", "Bob"),
            StatusName::PushConfirmationWaiting,
        ),
        (
            kind(Some("alice"), "registration"),
            StatusName::MobileActivationRequired,
        ),
        (
            kind(None, "qr"),
            StatusName::AuthenticationCodeResponseRequired,
        ),
        (
            kind(Some("alice"), "new_device"),
            StatusName::PushConfirmationWaiting,
        ),
    ] {
        let flow = app.start_flow_unauthenticated(&request).await;
        assert_eq!(
            app.state(&flow).await.status.name(),
            StatusName::AuthenticationRequired,
            "{request}"
        );
        assert!(phone.pending(0).await.is_empty(), "{request}");
        let state = widget_authenticate(&app, &flow).await;
        assert_eq!(state.status.name(), entered, "{request}");
        app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    }
    // A registration's pairing key exists only once a browser shows it.
    let flow = app
        .start_flow_unauthenticated(&kind(Some("alice"), "registration"))
        .await;
    let listed = app.state_json(&flow).await;
    assert!(listed.get("pairingKey").is_none(), "{listed}");
}

async fn a_trusted_app_is_signed_in_with_no_push(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let payload = phone.device.signer().trusted_device_payload(&flow).unwrap();
    let done = app
        .act_ok(&flow, ActionRequest::authenticate(payload))
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
    assert!(phone.pending(1).await.is_empty(), "no push was sent");
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["method"], "device_authorization");
    assert_eq!(result["deviceId"], phone.id());
}

async fn mobile_payloads_that_do_not_prove_a_trusted_device_are_refused(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let bob_phone = app.pair_device("bob").await;
    let signer = phone.device.signer();
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let other_flow = app.start_flow_unauthenticated(&oob_request("alice")).await;

    // A jti spent on a flow that accepted it.
    let spent_on = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let spent = signer
        .trusted_device_payload_with(&spent_on, SystemTime::now(), "jti-once")
        .unwrap();
    app.act_ok(&spent_on, ActionRequest::authenticate(spent))
        .await;

    let stale = SystemTime::now() - Duration::from_secs(600);
    let stranger = DeviceKey::generate().unwrap();
    let refused = [
        (
            "a stale iat",
            signer
                .trusted_device_payload_with(&flow, stale, "jti-stale")
                .unwrap(),
        ),
        (
            "a replayed jti",
            signer
                .trusted_device_payload_with(&flow, SystemTime::now(), "jti-once")
                .unwrap(),
        ),
        (
            "another flow's id",
            signer.trusted_device_payload(&other_flow).unwrap(),
        ),
        (
            "another user's device",
            bob_phone
                .device
                .signer()
                .trusted_device_payload(&flow)
                .unwrap(),
        ),
        (
            "a new app's payload for another flow",
            stranger
                .new_device_payload(&other_flow, &app_info())
                .unwrap(),
        ),
        (
            "a new app's stale payload",
            stranger
                .new_device_payload_with(&flow, &app_info(), stale, "jti-new")
                .unwrap(),
        ),
        ("garbage", "not.a.jws".to_owned()),
        ("a device token", phone.authorization()),
    ];
    for (what, payload) in refused {
        let refusal = app
            .act_err(&flow, ActionRequest::authenticate(payload))
            .await;
        assert_eq!(refusal.status, 400, "{what}: {refusal:?}");
        assert_eq!(refusal.body.code, ErrorCode::ValidationError, "{what}");
        assert_eq!(
            app.state(&flow).await.status.name(),
            StatusName::AuthenticationRequired,
            "{what}: the flow is unchanged"
        );
    }
    let empty = app
        .act_raw(&flow, "authenticate", Some(json!({"mobilePayload": ""})))
        .await;
    assert_eq!(empty.status(), 400);
    assert!(phone.pending(0).await.is_empty(), "nothing was sent");

    // A transaction is approved on the device that shows it, never by an app's presence.
    let transaction = app
        .start_flow_unauthenticated(&transfer_request("alice", "10.00", "Bob"))
        .await;
    let refusal = app
        .act_err(
            &transaction,
            ActionRequest::authenticate(signer.trusted_device_payload(&transaction).unwrap()),
        )
        .await;
    assert_eq!(refusal.status, 400);
    assert_eq!(
        app.state(&transaction).await.status.name(),
        StatusName::AuthenticationRequired
    );
}

/// The app's side of automatic pairing: its new key's payload, then `serverPayload`.
async fn enter_as_new_app(app: &TestApp, flow: &str, key: &DeviceKey) -> AuthnState {
    let payload = key.new_device_payload(flow, &app_info()).unwrap();
    app.act_ok(flow, ActionRequest::authenticate(payload)).await
}

/// Pairs `key` with the pairing key the state's `serverPayload` carries, continues, and
/// checks the flow completed with the new device, which is then trusted.
async fn pair_and_continue(app: &TestApp, flow: &str, key: DeviceKey, state: &AuthnState) {
    assert_eq!(
        links(state),
        ["cancelAuthentication", "continueAuthentication"]
    );
    let server_payload =
        decode_server_payload(&expect_status!(state, MobilePairingRequired).server_payload)
            .unwrap();
    assert_eq!(server_payload.flow_id, flow);
    let early = app
        .act_err(flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(early.status, 409, "not paired yet: {early:?}");

    let client = Client::new(&app.address).unwrap();
    // Whoever else reads the relayed payload cannot pair a key of their own with it.
    let intruder = client
        .pair_with_server_payload(DeviceKey::generate().unwrap(), &server_payload, &app_info())
        .await;
    assert!(intruder.is_err(), "another key is refused");
    let device = client
        .pair_with_server_payload(key, &server_payload, &app_info())
        .await
        .expect("the app pairs its own key");
    let done = app
        .act_ok(flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
    let result: Value = app.result(flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["method"], "registration");
    assert_eq!(result["deviceId"], device.id());

    // Now trusted: the next sign-in from the app completes with no interaction.
    let next = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let payload = device.signer().trusted_device_payload(&next).unwrap();
    let signed_in = app
        .act_ok(&next, ActionRequest::authenticate(payload))
        .await;
    assert_eq!(signed_in.status.name(), StatusName::Completed);
}

async fn an_unknown_app_pairs_through_the_server_payload(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.additional_trusted_devices", "pair_individually")),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let key = DeviceKey::generate().unwrap();
    let state = enter_as_new_app(&app, &flow, &key).await;
    assert_eq!(state.status.name(), StatusName::MobilePairingRequired);
    assert!(
        phone.pending(0).await.is_empty(),
        "paired individually: the primary is not asked"
    );
    pair_and_continue(&app, &flow, key, &state).await;
}

async fn an_unknown_app_is_verified_by_the_primary_first(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let key = DeviceKey::generate().unwrap();
    let waiting = enter_as_new_app(&app, &flow, &key).await;
    assert_eq!(waiting.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(waiting.status.selected_device_id(), Some(phone.id()));
    assert_eq!(phone.answer_pending(true).await, "MOBILE_PAIRING_REQUIRED");
    let admitted = app.state(&flow).await;
    assert_eq!(admitted.status.name(), StatusName::MobilePairingRequired);
    pair_and_continue(&app, &flow, key, &admitted).await;
}
