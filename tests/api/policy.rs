//! The MFA policy end to end, through the real server: network rules (IPv4, IPv6, mapped
//! addresses), the skip-MFA window, the per-user push limit, the minimum OS version,
//! number matching, per-group and per-application overrides, the administrator's message, allowed
//! methods, `useCode`, and the passcode fallback when a push cannot be delivered.

use std::sync::Once;
use std::time::{Duration, Instant};

use assent_core::Config;
use figment::Figment;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use assent_proto::authn::{
    ActionRequest, AuthnState, DetailCode, DeviceType, ErrorCode, StatusName,
};

use crate::support::{
    Backend, HttpSink, Refusal, TestApp, TestDevice, expect_status, free_port, links,
    on_both_backends, oob_request, repo_root, unique,
};

on_both_backends!(
    a_bypass_range_completes_without_a_push_and_a_deny_range_fails,
    ipv6_rules_match_in_order_and_mapped_ipv4_matches_ipv4_rules,
    a_recent_mfa_skips_the_next_from_the_same_address_and_client_device,
    without_a_skip_window_every_sign_in_asks,
    a_require_rule_asks_even_within_the_skip_window,
    the_push_limit_stops_push_bombing_of_one_user,
    a_device_older_than_the_minimum_os_is_refused,
    a_device_recent_enough_gets_the_push,
    with_two_devices_only_the_recent_enough_one_is_pushed,
    number_matching_refuses_the_wrong_number_and_accepts_the_right_one,
    without_number_matching_no_number_is_shown_or_asked,
    an_application_override_applies_to_that_application_only,
    a_group_override_applies_to_its_members_below_the_application_override,
    the_admin_message_reaches_the_page_and_the_device,
    without_an_admin_message_none_is_shown,
    a_method_not_allowed_is_neither_offered_nor_selectable,
    a_mandatory_method_that_is_not_allowed_is_refused_at_start,
    use_code_lets_the_app_passcode_replace_the_push_once,
    without_use_code_no_passcode_is_taken_during_a_push,
    an_undeliverable_push_falls_back_to_the_app_passcode,
    without_otp_fallback_an_undeliverable_push_keeps_waiting,
);

/// The push webhook's secret. The name starts with `ASSENT_SECRET_`: any other `ASSENT_*`
/// variable would be read as a configuration key by every instance of this test binary
/// (and refused as unknown).
const WEBHOOK_SECRET_ENV: &str = "ASSENT_SECRET_TEST_POLICY_WEBHOOK_SECRET";
/// 40 bytes.
const WEBHOOK_SECRET: &str = "policy-webhook-secret-0123456789abcdefgh";

const ADMIN_MESSAGE: &str = "Never approve a request you did not start.";

async fn spawn(backend: Backend<'_>, overrides: Figment) -> TestApp {
    TestApp::spawn_with(backend, &unique("t"), overrides).await
}

/// `oob_request("alice")` from another address (and browser, if given).
fn request_from(ip: &str, client_device: Option<&str>) -> Value {
    let mut request = oob_request("alice");
    request["clientIp"] = json!(ip);
    if let Some(client_device) = client_device {
        request["clientDevice"] = json!(client_device);
    }
    request
}

fn network_rules(rules: &[(&str, &str)]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(|(cidr, action)| json!({ "cidr": cidr, "action": action }))
            .collect(),
    )
}

/// Starts a flow and returns it with its first state.
async fn start(app: &TestApp, request: &Value) -> (String, AuthnState) {
    let flow = app.start_flow(request).await;
    let state = app.state(&flow).await;
    (flow, state)
}

/// The result, picked up once by the federation server.
async fn result(app: &TestApp, flow: &str) -> Value {
    let response = app.result(flow).await;
    assert_eq!(response.status(), 200, "the result is ready");
    response.json().await.unwrap()
}

/// Checks a flow that policy let through without a second factor, and that the device
/// heard nothing.
async fn assert_skipped(
    app: &TestApp,
    phone: &TestDevice,
    flow: &str,
    state: &AuthnState,
    why: &str,
) {
    assert_eq!(state.status.name(), StatusName::Completed, "{state:?}");
    assert!(links(state).is_empty(), "{state:?}");
    let result = result(app, flow).await;
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["method"], Value::Null, "no second factor: {result}");
    assert_eq!(result["deviceId"], Value::Null);
    assert_eq!(result["amr"], json!([]));
    let reason = result["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "reason {reason:?} mentions {why:?}");
    assert!(phone.pending(0).await.is_empty(), "no push was sent");
}

/// Checks a flow that policy failed at start, for a reason mentioning `why`, as the page
/// and the federation server see it.
async fn assert_failed(app: &TestApp, flow: &str, state: &AuthnState, why: &str) {
    assert_eq!(state.status.name(), StatusName::MfaFailed, "{state:?}");
    assert_eq!(links(state), ["cancelAuthentication"]);
    let reason = &expect_status!(state, MfaFailed).reason;
    assert!(reason.contains(why), "{reason:?} mentions {why:?}");
    let result = result(app, flow).await;
    assert_eq!(result["status"], "FAILED", "{result}");
    assert_eq!(result["amr"], json!([]));
    let reason = result["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(why), "{reason:?} mentions {why:?}");
}

/// Checks a flow that network policy refused.
async fn assert_denied(app: &TestApp, flow: &str, state: &AuthnState) {
    assert_failed(app, flow, state, "network").await;
}

/// Approves the flow's push on the device and completes it in the browser.
async fn approve_and_continue(app: &TestApp, phone: &TestDevice, flow: &str) {
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    let done = app
        .act_ok(flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
}

/// The error and detail codes of a 4xx Authentication API answer.
fn error_detail(refusal: Result<AuthnState, Refusal>, status: u16) -> (ErrorCode, DetailCode) {
    let refusal = refusal.expect_err("a refusal");
    assert_eq!(refusal.status, status);
    (refusal.body.code, refusal.detail().code)
}

async fn a_bypass_range_completes_without_a_push_and_a_deny_range_fails(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge((
            "mfa.network_rules",
            network_rules(&[("10.0.0.0/8", "bypass"), ("198.51.100.0/24", "deny")]),
        )),
    )
    .await;
    let phone = app.pair_device("alice").await;

    let (flow, state) = start(&app, &request_from("10.1.2.3", None)).await;
    assert_skipped(&app, &phone, &flow, &state, "trusted network").await;

    // A dual-stack listener reports IPv4 clients as mapped IPv6: the IPv4 rule applies.
    let (flow, state) = start(&app, &request_from("::ffff:10.1.2.3", None)).await;
    assert_skipped(&app, &phone, &flow, &state, "trusted network").await;

    let (flow, state) = start(&app, &request_from("198.51.100.9", None)).await;
    assert_denied(&app, &flow, &state).await;
    assert!(
        phone.pending(0).await.is_empty(),
        "no push to a denied sign-in"
    );

    // No address at all while deny rules exist: refused, not let through.
    let mut anonymous = oob_request("alice");
    anonymous.as_object_mut().unwrap().remove("clientIp");
    let (flow, state) = start(&app, &anonymous).await;
    assert_denied(&app, &flow, &state).await;

    // Outside every range: the usual push.
    let (flow, state) = start(&app, &request_from("203.0.113.7", None)).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    approve_and_continue(&app, &phone, &flow).await;
    assert_eq!(result(&app, &flow).await["method"], "push");
}

async fn ipv6_rules_match_in_order_and_mapped_ipv4_matches_ipv4_rules(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge((
            "mfa.network_rules",
            // The narrower deny is listed first: first match wins.
            network_rules(&[
                ("2001:db8:dead::/48", "deny"),
                ("2001:db8::/32", "bypass"),
                ("10.0.0.0/8", "bypass"),
            ]),
        )),
    )
    .await;
    let phone = app.pair_device("alice").await;

    let (flow, state) = start(&app, &request_from("2001:db8:dead::1", None)).await;
    assert_denied(&app, &flow, &state).await;

    let (flow, state) = start(&app, &request_from("2001:db8:1::1", None)).await;
    assert_skipped(&app, &phone, &flow, &state, "trusted network").await;

    let (flow, state) = start(&app, &request_from("::ffff:10.1.2.3", None)).await;
    assert_skipped(&app, &phone, &flow, &state, "trusted network").await;

    let (_, state) = start(&app, &request_from("2001:db9::1", None)).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert_eq!(
        phone.one_pending().await.client_ip.as_deref(),
        Some("2001:db9::1")
    );
}

async fn a_recent_mfa_skips_the_next_from_the_same_address_and_client_device(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("mfa.skip_mfa_within_secs", 600)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let here = request_from("203.0.113.7", Some("browser-1"));

    let (flow, state) = start(&app, &here).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    approve_and_continue(&app, &phone, &flow).await;

    // Same user, address and browser: no second factor this time.
    let (flow, state) = start(&app, &here).await;
    assert_skipped(&app, &phone, &flow, &state, "recently").await;

    // Another address, same browser: a push.
    let (elsewhere, state) = start(&app, &request_from("198.51.100.20", Some("browser-1"))).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    // Same address, another browser: a push.
    let (other_browser, state) = start(&app, &request_from("203.0.113.7", Some("browser-2"))).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    let mut pending: Vec<String> = phone
        .pending(0)
        .await
        .iter()
        .map(|request| {
            assent_core::ids::AuthId::parse(&request.auth_id)
                .unwrap()
                .flow()
                .as_str()
                .to_owned()
        })
        .collect();
    // Same address, no browser id: an address alone may be a whole carrier's NAT.
    let (no_browser, state) = start(&app, &request_from("203.0.113.7", None)).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    pending.sort();
    let mut expected = vec![elsewhere, other_browser];
    expected.sort();
    assert_eq!(pending, expected, "a push for each of them");
    assert!(phone.pending(0).await.iter().any(|request| {
        assent_core::ids::AuthId::parse(&request.auth_id)
            .unwrap()
            .flow()
            .as_str()
            == no_browser
    }));
}

async fn without_a_skip_window_every_sign_in_asks(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new()).await;
    let phone = app.pair_device("alice").await;
    let here = request_from("203.0.113.7", Some("browser-1"));
    let (flow, _) = start(&app, &here).await;
    approve_and_continue(&app, &phone, &flow).await;

    let (_, state) = start(&app, &here).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    phone.one_pending().await;
}

async fn a_require_rule_asks_even_within_the_skip_window(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new()
            .merge(("mfa.skip_mfa_within_secs", 600))
            .merge((
                "mfa.network_rules",
                network_rules(&[("203.0.113.0/24", "require")]),
            )),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let here = request_from("203.0.113.7", Some("browser-1"));
    let (flow, _) = start(&app, &here).await;
    approve_and_continue(&app, &phone, &flow).await;

    let (flow, state) = start(&app, &here).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    approve_and_continue(&app, &phone, &flow).await;
    assert_eq!(result(&app, &flow).await["method"], "push");
}

async fn the_push_limit_stops_push_bombing_of_one_user(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new()
            .merge(("mfa.push_limit", 2))
            .merge(("mfa.push_limit_window_secs", 3600)),
    )
    .await;
    let phone = app.pair_device("alice").await;

    let (first, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    let (_, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );

    let (third, state) = start(&app, &oob_request("alice")).await;
    assert_failed(&app, &third, &state, "push notifications").await;
    assert_eq!(phone.pending(0).await.len(), 2, "no third push");

    // Sending the push again from a waiting flow counts too.
    let again = app
        .act(&first, ActionRequest::select_device(phone.id()))
        .await;
    assert_eq!(
        error_detail(again, 429),
        (ErrorCode::RequestFailed, DetailCode::PushLimitExceeded)
    );
    assert_eq!(
        app.state(&first).await.status.name(),
        StatusName::PushConfirmationWaiting,
        "the refused push leaves the flow as it was"
    );

    // The limit is per user.
    let bobs = app.pair_device("bob").await;
    let (_, state) = start(&app, &oob_request("bob")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    bobs.one_pending().await;
}

async fn a_device_older_than_the_minimum_os_is_refused(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("mfa.min_os_version", json!({ "android": "16" }))),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_failed(&app, &flow, &state, "16").await;
    assert!(
        phone.pending(0).await.is_empty(),
        "no push to a refused device"
    );
}

async fn a_device_recent_enough_gets_the_push(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("mfa.min_os_version", json!({ "android": "14" }))),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    approve_and_continue(&app, &phone, &flow).await;
}

/// Pairs a device that reports another OS than the simulator does, through the device
/// SDK.
async fn pair_device_with_os(app: &TestApp, user: &str, os: &str, version: &str) -> TestDevice {
    let key = app.pairing_key(user).await;
    let info = assent_device_sdk::DeviceInfo {
        name: format!("{os} phone"),
        os: os.to_owned(),
        os_version: version.to_owned(),
        model: "test model".to_owned(),
    };
    let device = assent_device_sdk::Device::pair(&app.address, &key, &info)
        .await
        .expect("pairing succeeds");
    TestDevice { device }
}

async fn with_two_devices_only_the_recent_enough_one_is_pushed(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("mfa.min_os_version", json!({ "android": "16" }))),
    )
    .await;
    let old = app.pair_device("alice").await;
    let recent = pair_device_with_os(&app, "alice", "Android", "16.1").await;

    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    let push = expect_status!(state, PushConfirmationWaiting);
    assert_eq!(
        push.selected_device_ref
            .as_ref()
            .map(|device| device.id.as_str()),
        Some(recent.id())
    );
    let shown_old = push
        .devices
        .iter()
        .find(|device| device.id == old.id())
        .expect("the old device is listed");
    assert!(!shown_old.usable, "{shown_old:?}");
    assert!(
        shown_old
            .unusable_reason
            .as_deref()
            .unwrap_or_default()
            .contains("16"),
        "{shown_old:?}"
    );
    assert!(old.pending(0).await.is_empty(), "no push to the old device");

    let refused = app.act(&flow, ActionRequest::select_device(old.id())).await;
    assert_eq!(
        error_detail(refused, 400),
        (ErrorCode::ValidationError, DetailCode::DeviceNotAllowed)
    );
    approve_and_continue(&app, &recent, &flow).await;
    assert_eq!(result(&app, &flow).await["deviceId"], recent.id());
}

/// The number the page shows, and the device's request with its choices.
async fn number_shown(
    app: &TestApp,
    phone: &TestDevice,
    request: &Value,
) -> (String, u8, assent_proto::device::PendingRequest) {
    let (flow, state) = start(app, request).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    let number = expect_status!(state, PushConfirmationWaiting)
        .number_match
        .unwrap_or_else(|| panic!("numberMatch in {state:?}"));
    let pending = phone.one_pending().await;
    let mut choices = pending.number_choices.clone();
    assert_eq!(choices.len(), 3, "{choices:?}");
    assert!(choices.contains(&number), "{number} among {choices:?}");
    choices.sort_unstable();
    choices.dedup();
    assert_eq!(choices.len(), 3, "three distinct numbers");
    (flow, number, pending)
}

async fn number_matching_refuses_the_wrong_number_and_accepts_the_right_one(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new().merge(("mfa.number_matching", true))).await;
    let phone = app.pair_device("alice").await;

    let (flow, number, pending) = number_shown(&app, &phone, &oob_request("alice")).await;
    let wrong = *pending
        .number_choices
        .iter()
        .find(|choice| **choice != number)
        .unwrap();
    let answer = phone
        .device
        .answer(
            &pending,
            assent_proto::device::Decision::Approve,
            Some(wrong),
        )
        .await
        .expect("the answer is taken");
    assert_eq!(answer.status, "PUSH_CONFIRMATION_REJECTED");
    let state = app.state(&flow).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationRejected,
        "{state:?}"
    );
    let outcome = result(&app, &flow).await;
    assert_eq!(outcome["status"], "FAILED");
    assert!(
        outcome["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong number"),
        "{outcome}"
    );

    let (flow, number, pending) = number_shown(&app, &phone, &oob_request("alice")).await;
    let answer = phone
        .device
        .answer(
            &pending,
            assent_proto::device::Decision::Approve,
            Some(number),
        )
        .await
        .expect("the answer is taken");
    assert_eq!(answer.status, "MFA_COMPLETED");
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MfaCompleted
    );
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let outcome = result(&app, &flow).await;
    assert_eq!(outcome["status"], "COMPLETED");
    assert_eq!(outcome["method"], "push");
}

async fn without_number_matching_no_number_is_shown_or_asked(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new()).await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert!(
        expect_status!(state, PushConfirmationWaiting)
            .number_match
            .is_none(),
        "{state:?}"
    );
    let pending = phone.one_pending().await;
    assert!(pending.number_choices.is_empty(), "{pending:?}");
    // The raw Device API answer has no numberChoices either.
    let raw: Value = app
        .http
        .get(app.url("/device/v1/pending?wait=0"))
        .header("Authorization", phone.authorization())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(raw["requests"][0].get("numberChoices").is_none(), "{raw}");
    approve_and_continue(&app, &phone, &flow).await;
}

async fn an_application_override_applies_to_that_application_only(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("application_policies.bank.number_matching", true)),
    )
    .await;
    let phone = app.pair_device("alice").await;

    let (flow, number, pending) = number_shown(&app, &phone, &oob_request("alice")).await;
    let answer = phone
        .device
        .answer(
            &pending,
            assent_proto::device::Decision::Approve,
            Some(number),
        )
        .await
        .expect("the answer is taken");
    assert_eq!(answer.status, "MFA_COMPLETED");
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MfaCompleted
    );

    let mut other = oob_request("alice");
    other["application"]["id"] = json!("other");
    other["application"]["name"] = json!("Other App");
    let (flow, state) = start(&app, &other).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert!(
        expect_status!(state, PushConfirmationWaiting)
            .number_match
            .is_none(),
        "{state:?}"
    );
    let pending = phone.one_pending().await;
    assert_eq!(pending.application.name, "Other App");
    assert!(pending.number_choices.is_empty(), "{pending:?}");
    approve_and_continue(&app, &phone, &flow).await;
}

async fn the_admin_message_reaches_the_page_and_the_device(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new().merge(("mfa.admin_message", ADMIN_MESSAGE)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert_eq!(state.admin_message.as_deref(), Some(ADMIN_MESSAGE));
    let pending = phone.one_pending().await;
    assert_eq!(pending.admin_message.as_deref(), Some(ADMIN_MESSAGE));
    assert_eq!(
        phone.device.approve(&pending).await.unwrap().status,
        "MFA_COMPLETED"
    );
    assert_eq!(
        app.state(&flow).await.admin_message.as_deref(),
        Some(ADMIN_MESSAGE)
    );
}

async fn without_an_admin_message_none_is_shown(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new()).await;
    let phone = app.pair_device("alice").await;
    let (_, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert!(state.admin_message.is_none(), "{state:?}");
    let pending = phone.one_pending().await;
    assert_eq!(pending.admin_message, None);
}

async fn a_method_not_allowed_is_neither_offered_nor_selectable(backend: Backend<'_>) {
    let app = spawn(
        backend,
        Figment::new()
            .merge(("mfa.allowed_methods", json!(["SMS"])))
            .merge(("mfa.sms_backup", true)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let mut request = oob_request("alice");
    request["user"]["phone"] = json!("+15555550123");
    let (flow, state) = start(&app, &request).await;
    assert_eq!(
        state.status.name(),
        StatusName::DeviceSelectionRequired,
        "{state:?}"
    );
    let devices = state.status.devices();
    assert_eq!(devices.len(), 1, "only the SMS backup: {state:?}");
    assert_eq!(devices[0].device_type, DeviceType::Sms);
    assert!(devices[0].backup);
    assert!(phone.pending(0).await.is_empty(), "no push");

    let refused = app
        .act(&flow, ActionRequest::select_device(phone.id()))
        .await;
    assert_eq!(
        error_detail(refused, 400),
        (ErrorCode::ValidationError, DetailCode::InvalidDevice)
    );
    assert!(phone.pending(0).await.is_empty(), "still no push");

    // The allowed method works.
    let sms = app
        .act_ok(&flow, ActionRequest::select_device(&devices[0].id))
        .await;
    assert_eq!(sms.status.name(), StatusName::OtpRequired, "{sms:?}");
}

async fn a_mandatory_method_that_is_not_allowed_is_refused_at_start(backend: Backend<'_>) {
    // As `support::test_config` builds it, without its panic on an invalid configuration.
    let figment = |overrides: Figment| {
        let store = backend.store_url();
        let port = free_port();
        Config::figment(&repo_root().join("conf/assent.toml"))
            .merge(("listen", format!("127.0.0.1:{port}")))
            .merge(("public_url", format!("http://127.0.0.1:{port}")))
            .merge(("store", store))
            .merge(("store_options.key_prefix", format!("{}:", unique("t"))))
            .merge(("http.workers", 1))
            .merge((
                "delivery.file.path",
                std::env::temp_dir().join(unique("assent-outbox")),
            ))
            .merge(("mfa.allowed_methods", json!(["SMS"])))
            .merge(overrides)
    };
    assert!(Config::from_figment(figment(Figment::new())).is_ok());

    let error = Config::from_figment(figment(
        Figment::new().merge(("mfa.mandatory_authentication_methods", json!(["TOTP"]))),
    ))
    .expect_err("TOTP is mandatory but not allowed")
    .to_string();
    assert!(
        error.contains("mfa.mandatory_authentication_methods") && error.contains("TOTP"),
        "{error}"
    );

    let error = Config::from_figment(figment(Figment::new().merge((
        "application_policies.bank.mandatory_authentication_methods",
        json!(["PINGID_MOBILE"]),
    ))))
    .expect_err("an application's mandatory method must be allowed too")
    .to_string();
    assert!(
        error.contains("application_policies.bank.mandatory_authentication_methods"),
        "{error}"
    );
}

async fn use_code_lets_the_app_passcode_replace_the_push_once(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new().merge(("mfa.use_code", true))).await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert_eq!(
        links(&state),
        ["cancelAuthentication", "checkOtp", "poll", "selectDevice"]
    );
    let code = phone.current_otp();
    let completed = app.act_ok(&flow, ActionRequest::check_otp(&code)).await;
    assert_eq!(
        completed.status.name(),
        StatusName::MfaCompleted,
        "{completed:?}"
    );
    assert!(
        phone.pending(0).await.is_empty(),
        "the push is no longer pending"
    );
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let outcome = result(&app, &flow).await;
    assert_eq!(outcome["status"], "COMPLETED");
    assert_eq!(outcome["method"], "mobile_otp");
    assert_eq!(outcome["deviceId"], phone.id());

    // The same code again, in another sign-in: refused.
    let (flow, _) = start(&app, &oob_request("alice")).await;
    let replayed = app.act(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(
        error_detail(replayed, 400),
        (ErrorCode::ValidationError, DetailCode::InvalidOtp)
    );
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
}

async fn without_use_code_no_passcode_is_taken_during_a_push(backend: Backend<'_>) {
    let app = spawn(backend, Figment::new().merge(("mfa.use_code", false))).await;
    let phone = app.pair_device("alice").await;
    let (flow, state) = start(&app, &oob_request("alice")).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert_eq!(
        links(&state),
        ["cancelAuthentication", "poll", "selectDevice"]
    );
    let code = phone.current_otp();
    let refused = app.act(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(error_detail(refused, 400).0, ErrorCode::InvalidActionId);
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
}

/// Push through a webhook that answers 500 (a failing APNs/FCM bridge).
async fn failing_push_webhook(sink: &HttpSink) -> Figment {
    static SECRET: Once = Once::new();
    // SAFETY: set once, to the same value, before any instance of this binary reads it.
    SECRET.call_once(|| unsafe { std::env::set_var(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET) });
    assert_eq!(WEBHOOK_SECRET.len(), 40);
    Figment::new()
        .merge(("delivery.push", "webhook"))
        .merge(("delivery.webhook.url", format!("{}/push", sink.url())))
        .merge(("delivery.webhook.secret_env", WEBHOOK_SECRET_ENV))
}

/// Checks the webhook call: a signed JSON POST announcing the push to `device`.
fn assert_signed_push(request: &crate::support::SinkRequest, device: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/push");
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    assert_eq!(body["channel"], "push");
    assert_eq!(body["to"], device);
    assert!(body["data"]["authId"].as_str().is_some(), "{body}");
    let signature = request.header("x-assent-signature").expect("a signature");
    let (t, v1) = signature.split_once(',').expect("t=...,v1=...");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(v1, expected, "the HMAC matches");
}

async fn an_undeliverable_push_falls_back_to_the_app_passcode(backend: Backend<'_>) {
    let sink = HttpSink::answering(500, json!({})).await;
    let app = spawn(backend, failing_push_webhook(&sink).await).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_signed_push(&sink.wait_for(1).await[0], phone.id());

    // The failure is handled off the request: the flow moves on shortly after.
    let deadline = Instant::now() + Duration::from_secs(5);
    let state = loop {
        let state = app.state(&flow).await;
        if state.status.name() != StatusName::PushConfirmationWaiting || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state.status.name(), StatusName::OtpRequired, "{state:?}");
    assert!(links(&state).contains(&"checkOtp".to_owned()), "{state:?}");
    assert_eq!(
        expect_status!(state, OtpRequired)
            .selected_device_ref
            .as_ref()
            .map(|device| device.id.as_str()),
        Some(phone.id())
    );

    let code = phone.current_otp();
    let completed = app.act_ok(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(
        completed.status.name(),
        StatusName::MfaCompleted,
        "{completed:?}"
    );
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(result(&app, &flow).await["method"], "mobile_otp");
    assert_eq!(sink.requests().len(), 1, "one push attempt");
}

async fn without_otp_fallback_an_undeliverable_push_keeps_waiting(backend: Backend<'_>) {
    let sink = HttpSink::answering(500, json!({})).await;
    let app = spawn(
        backend,
        failing_push_webhook(&sink)
            .await
            .merge(("mfa.otp_fallback", false)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_signed_push(&sink.wait_for(1).await[0], phone.id());
    // A one-second long poll: any change (a fallback) would end it with the new state.
    let state = {
        app.state(&flow).await;
        app.poll(&flow, 1).await
    };
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert!(!links(&state).contains(&"checkOtp".to_owned()), "{state:?}");

    // The device still sees the request through its own long poll, and approves.
    approve_and_continue(&app, &phone, &flow).await;
    assert_eq!(result(&app, &flow).await["method"], "push");
}

/// A sign-in of alice, in `groups`, to the application `application`.
fn member_of(groups: &[&str], application: &str) -> Value {
    let mut request = oob_request("alice");
    request["user"]["groups"] = json!(groups);
    request["application"]["id"] = json!(application);
    request
}

async fn a_group_override_applies_to_its_members_below_the_application_override(
    backend: Backend<'_>,
) {
    let app = spawn(
        backend,
        Figment::new()
            .merge(("group_policies.tellers.number_matching", true))
            .merge((
                "group_policies.contractors.device_selection",
                "always_display",
            ))
            .merge(("application_policies.payroll.number_matching", false)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let number = |state: &AuthnState| expect_status!(state, PushConfirmationWaiting).number_match;

    // A teller gets the group's number matching...
    let (flow, state) = start(&app, &member_of(&["staff", "tellers"], "bank")).await;
    assert!(number(&state).is_some(), "{state:?}");
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    // ...except in an application whose own policy says otherwise.
    let (flow, state) = start(&app, &member_of(&["tellers"], "payroll")).await;
    assert!(number(&state).is_none(), "the application wins: {state:?}");
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    // In two groups, the first listed decides: the contractors' device list, and none
    // of the tellers' number matching.
    let (flow, state) = start(&app, &member_of(&["contractors", "tellers"], "bank")).await;
    assert_eq!(state.status.name(), StatusName::DeviceSelectionRequired);
    let waiting = app
        .act_ok(&flow, ActionRequest::select_device(phone.id()))
        .await;
    assert!(number(&waiting).is_none(), "{waiting:?}");
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    // In no group: the global policy.
    let (_, state) = start(&app, &member_of(&[], "bank")).await;
    assert!(number(&state).is_none(), "{state:?}");
}
