//! QR code sign-on (seed 004): the page shows a one-time code, a trusted device scans it,
//! a shared device picks its user, and the flow completes as that user.

use std::time::Duration;

use assent_core::clock::Clock;

use assent_proto::device::QrStatus;
use figment::Figment;
use serde_json::{Value, json};

use assent_proto::authn::{ActionId, ActionRequest, AuthnState, ErrorCode, StatusName};

use crate::support::{Backend, TestApp, expect_status, links, on_both_backends, unique};

on_both_backends!(
    a_denied_silent_push_ends_the_qr_flow,
    a_trusted_device_signs_in_by_scanning,
    replayed_expired_and_untrusted_scans_are_refused,
    a_shared_device_picks_its_user,
    policy_may_ask_the_user_to_approve_after_the_scan,
    the_short_code_is_typed_like_a_scan_and_guessing_is_limited,
    every_get_shows_a_live_code_without_writing,
);

fn qr_request() -> Value {
    json!({ "kind": "qr", "application": { "name": "Demo Bank" }, "clientIp": "203.0.113.7" })
}

fn token(state: &AuthnState) -> String {
    let uri = uri(state);
    assert!(
        uri.starts_with("assent://assent?authentication_token="),
        "{uri}"
    );
    uri.split_once("authentication_token=")
        .unwrap()
        .1
        .to_owned()
}

/// What the QR code encodes.
fn uri(state: &AuthnState) -> &str {
    expect_status!(state, AuthenticationCodeResponseRequired)
        .uri
        .as_deref()
        .unwrap_or_else(|| panic!("a QR code in {state:?}"))
}

/// The no-approval path: an operator turned `qr_user_approval` (on by default) off.
fn without_approval() -> Figment {
    Figment::new().merge(("policy.qr_user_approval", false))
}

async fn a_trusted_device_signs_in_by_scanning(backend: Backend<'_>) {
    let app = TestApp::spawn_with(backend, &unique("t"), without_approval()).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    let state = app.state(&flow).await;
    assert_eq!(
        state.status.name(),
        StatusName::AuthenticationCodeResponseRequired
    );
    assert_eq!(links(&state), ["cancelAuthentication", "poll"]);
    assert!(
        expect_status!(state, AuthenticationCodeResponseRequired)
            .qr_code
            .as_ref()
            .unwrap()
            .png
            .starts_with("data:image/png;base64,")
    );
    let scanned = phone.device.scan(uri(&state)).await.unwrap();
    assert_eq!(scanned.status, QrStatus::Completed);
    assert_eq!(scanned.application_name, "Demo Bank");
    assert_eq!(app.state(&flow).await.status.name(), StatusName::Completed);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["method"], "qr");
    assert_eq!(result["deviceId"], phone.id());

    // A QR flow starts without a user; naming one is refused.
    let mut with_user = qr_request();
    with_user["user"] = json!({ "id": "alice", "username": "alice" });
    assert_eq!(app.start_flow_raw(&with_user).await.status(), 400);
}

async fn replayed_expired_and_untrusted_scans_are_refused(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        without_approval().merge(("policy.qr_token_ttl_secs", 1)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let other = app.pair_device("bob").await;
    let flow = app.start_flow(&qr_request()).await;
    let code = token(&app.state(&flow).await);
    phone.device.scan(&code).await.unwrap();
    let replay = other.device.scan(&code).await.unwrap_err().to_string();
    assert!(replay.contains("409"), "{replay}");
    assert_eq!(
        app.result(&flow).await.json::<Value>().await.unwrap()["subject"],
        "alice"
    );

    // An unpaired key cannot even authenticate.
    let flow = app.start_flow(&qr_request()).await;
    let code = token(&app.state(&flow).await);
    let response = app
        .http
        .post(app.url(&format!("/device/v1/qr/{code}")))
        .header("Authorization", "Device not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A forged secret for a real flow is not found.
    let forged = format!("{flow}.{}", "A".repeat(24));
    assert!(
        phone
            .device
            .scan(&forged)
            .await
            .unwrap_err()
            .to_string()
            .contains("404")
    );
    // Expired: refused, and the page's poll shows a new code that works.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        phone
            .device
            .scan(&code)
            .await
            .unwrap_err()
            .to_string()
            .contains("409")
    );
    let renewed = app.poll(&flow, 0).await;
    let fresh = token(&renewed);
    assert_ne!(fresh, code);
    assert_eq!(
        phone.device.scan(&fresh).await.unwrap().status,
        QrStatus::Completed
    );
}

async fn a_shared_device_picks_its_user(backend: Backend<'_>) {
    let app = TestApp::spawn_with(backend, &unique("t"), without_approval()).await;
    let tablet = app.pair_device("alice").await;
    tablet
        .device
        .join(&app.pairing_key("bob").await)
        .await
        .unwrap();
    let stranger = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    let code = token(&app.state(&flow).await);
    let scanned = tablet.device.scan(&code).await.unwrap();
    assert_eq!(scanned.status, QrStatus::UserSelectionRequired);
    let users: Vec<&str> = scanned.users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(users, ["alice", "bob"]);
    let claimed = app.state(&flow).await;
    assert!(expect_status!(claimed, AuthenticationCodeResponseRequired).claimed);

    let forged = format!("{flow}.{}", "B".repeat(24));
    let guess = tablet
        .device
        .select(&forged, "alice")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        guess.contains("404"),
        "the selection needs the scanned token: {guess}"
    );
    let browser = app
        .act_err(&flow, ActionRequest::select_device(tablet.id()))
        .await;
    assert_eq!(browser.status, 400, "the page cannot push on a QR flow");
    assert_eq!(browser.body.code, ErrorCode::InvalidActionId, "{browser:?}");
    let intruder = stranger
        .device
        .select(&code, "alice")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        intruder.contains("403"),
        "only the scanning device selects: {intruder}"
    );
    let outsider = tablet
        .device
        .select(&code, "carol")
        .await
        .unwrap_err()
        .to_string();
    assert!(outsider.contains("400"), "{outsider}");
    let selected = tablet.device.select(&code, "bob").await.unwrap();
    assert_eq!(selected.status, QrStatus::Completed);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(
        result["subject"], "bob",
        "the flow completes as the selected user"
    );
}

async fn policy_may_ask_the_user_to_approve_after_the_scan(backend: Backend<'_>) {
    // The default: no configuration asks for the approval.
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    let code = token(&app.state(&flow).await);
    assert_eq!(
        phone.device.scan(&code).await.unwrap().status,
        QrStatus::PushConfirmationWaiting
    );
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
    // First a silent push, answered by the device key alone...
    let silent = phone.one_pending().await;
    assert!(silent.silent);
    assert_eq!(silent.user_id.as_str(), "alice");
    phone.device.approve(&silent).await.unwrap();
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
    // ...then the person's approval.
    let request = phone.one_pending().await;
    assert!(!request.silent);
    assert_ne!(request.auth_id, silent.auth_id);
    // What the person checks before approving: the application and where the browser is.
    assert_eq!(request.application.name, "Demo Bank");
    assert_eq!(request.client_ip.as_deref(), Some("203.0.113.7"));
    // The page waits: it never pushes to the scanning device itself, even though that
    // device is now the flow's.
    let waiting = app.state(&flow).await;
    assert!(!waiting.offers(ActionId::SelectDevice), "{waiting:?}");
    let browser = app
        .act_err(&flow, ActionRequest::select_device(phone.id()))
        .await;
    assert_eq!(browser.status, 400, "the page cannot push on a QR flow");
    assert_eq!(browser.body.code, ErrorCode::InvalidActionId, "{browser:?}");
    assert_eq!(
        phone.one_pending().await.auth_id,
        request.auth_id,
        "no new push reached the device"
    );
    phone.device.approve(&request).await.unwrap();
    let done = app
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
    assert_eq!(
        app.result(&flow).await.json::<Value>().await.unwrap()["subject"],
        "alice"
    );
}

async fn a_denied_silent_push_ends_the_qr_flow(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.qr_user_approval", true)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    phone
        .device
        .scan(&token(&app.state(&flow).await))
        .await
        .unwrap();
    let silent = phone.one_pending().await;
    assert!(silent.silent);
    phone.device.deny(&silent).await.unwrap();
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationRejected
    );
    assert!(
        phone.pending(0).await.is_empty(),
        "no approval request follows a refusal"
    );
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED");
}

async fn the_short_code_is_typed_like_a_scan_and_guessing_is_limited(backend: Backend<'_>) {
    let app = TestApp::spawn_with(backend, &unique("t"), without_approval()).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    let state = app.state(&flow).await;
    // What the widget prints under "Authentication Code".
    let code = expect_status!(state, AuthenticationCodeResponseRequired)
        .code
        .clone()
        .expect("a short code");
    assert_eq!(code.len(), 9, "{code}");
    assert!(
        code.chars()
            .all(|c| c == '-' || "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(c))
    );
    // Typed into the app, the way a person copies it: the SDK's scan takes it.
    let typed = code.to_lowercase();
    assert_eq!(
        phone.device.scan(&typed).await.unwrap().status,
        QrStatus::Completed
    );
    assert_eq!(app.state(&flow).await.status.name(), StatusName::Completed);
    let again = phone.device.scan(&code).await.unwrap_err().to_string();
    assert!(again.contains("409"), "{again}");

    // Guessing another flow's code: five wrong codes are compared, then the flow refuses
    // typed codes (429), even the right one; its QR code still works.
    let flow = app.start_flow(&qr_request()).await;
    let state = app.state(&flow).await;
    let right = expect_status!(state, AuthenticationCodeResponseRequired)
        .code
        .clone()
        .unwrap();
    let guesser = app.pair_device("bob").await;
    let guesses: Vec<String> = ["0000", "1111", "2222", "3333", "4444", "5555"]
        .iter()
        .map(|guess| format!("{}-{guess}", &right[..4]))
        .filter(|guess| *guess != right)
        .take(5)
        .collect();
    for guess in &guesses {
        let wrong = guesser.device.scan(guess).await.unwrap_err().to_string();
        assert!(wrong.contains("404"), "{wrong}");
    }
    let limited = phone.device.scan(&right).await.unwrap_err().to_string();
    assert!(limited.contains("429"), "{limited}");
    assert_eq!(
        phone.device.scan(&token(&state)).await.unwrap().status,
        QrStatus::Completed
    );
}

async fn every_get_shows_a_live_code_without_writing(backend: Backend<'_>) {
    // Codes of a second's lifetime: a new one every half second.
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        without_approval().merge(("policy.qr_token_ttl_secs", 1)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&qr_request()).await;
    let first = app.state(&flow).await;
    let flow_key = assent_core::keys::flow(&assent_core::ids::FlowId::parse(&flow).unwrap());
    let store = app.adapter.store();
    let before = store.get(&flow_key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Only GETs, as the widget does while it shows the code: each shows a live code.
    let later = app.state(&flow).await;
    assert_ne!(token(&later), token(&first));
    let codes = |state: &AuthnState| {
        expect_status!(state, AuthenticationCodeResponseRequired)
            .code
            .clone()
            .unwrap()
    };
    assert_ne!(codes(&later), codes(&first));
    let shown = expect_status!(later, AuthenticationCodeResponseRequired)
        .expires_at
        .unwrap();
    let now = assent_core::clock::SystemClock.now_ms();
    assert!(
        u64::try_from(shown.timestamp_millis()).unwrap() > now,
        "the code shown is live"
    );
    assert_eq!(
        store.get(&flow_key).await.unwrap(),
        before,
        "a GET never writes the flow"
    );
    // The code first shown is refused now; the live one works.
    let stale = phone
        .device
        .scan(&token(&first))
        .await
        .unwrap_err()
        .to_string();
    assert!(stale.contains("409"), "{stale}");
    assert_eq!(
        phone.device.scan(uri(&later)).await.unwrap().status,
        QrStatus::Completed
    );
}
