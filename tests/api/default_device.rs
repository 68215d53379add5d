//! The user's primary device and the policy's device selection: the first device paired
//! becomes primary and gets the push at once (`default_device`); unpairing it promotes
//! the oldest remaining; `prompt` asks when there are several devices, `always_display`
//! always; new-device verification follows the same choice, and CIBA always goes to the
//! primary.

use figment::Figment;
use serde_json::{Value, json};

use assent_proto::admin::UserDevices;
use assent_proto::authn::{ActionRequest, AuthnState, StatusName};
use assent_proto::ciba::Acknowledgement;
use assent_proto::device::PairedDevice;

use crate::support::{
    ADMIN_TOKEN, Backend, TestApp, TestDevice, expect_status, on_both_backends, oob_request, unique,
};

on_both_backends!(
    the_primary_gets_the_push_at_once_and_the_person_may_change_device,
    unpairing_the_primary_promotes_the_oldest_remaining_device,
    prompt_asks_only_with_several_devices,
    always_display_asks_even_with_one_device,
    new_device_verification_follows_the_device_selection,
    ciba_pushes_to_the_primary_whatever_the_device_selection,
    each_flow_sees_devices_added_removed_or_made_primary_since_the_last,
);

async fn spawn(backend: Backend<'_>, selection: Option<&str>) -> TestApp {
    let overrides = match selection {
        Some(selection) => Figment::new().merge(("mfa.device_selection", selection)),
        None => Figment::new(),
    };
    TestApp::spawn_with(backend, &unique("t"), overrides).await
}

async fn devices(app: &TestApp, user: &str) -> Vec<PairedDevice> {
    let response = app
        .admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await;
    assert_eq!(response.status(), 200);
    let body: UserDevices = response.json().await.unwrap();
    body.devices
}

async fn primary_of(app: &TestApp, user: &str) -> Option<String> {
    let listed = devices(app, user).await;
    let primaries: Vec<&PairedDevice> = listed.iter().filter(|device| device.primary).collect();
    assert!(primaries.len() <= 1, "one primary at most: {listed:?}");
    primaries.first().map(|device| device.id.clone())
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn make_primary(app: &TestApp, user: &str, device: &TestDevice) {
    let path = format!("/admin/v1/users/{user}/devices/{}", device.id());
    let status = admin(
        app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({ "primary": true })),
    )
    .await;
    assert_eq!(status, 200);
}

async fn unpair(app: &TestApp, user: &str, device: &TestDevice) {
    let path = format!("/admin/v1/users/{user}/devices/{}", device.id());
    assert_eq!(admin(app, reqwest::Method::DELETE, &path, None).await, 204);
}

/// The device a waiting push went to.
fn pushed_to(state: &AuthnState) -> String {
    let push = expect_status!(state, PushConfirmationWaiting);
    push.selected_device_ref.as_ref().unwrap().id.clone()
}

async fn the_primary_gets_the_push_at_once_and_the_person_may_change_device(backend: Backend<'_>) {
    let app = spawn(backend, None).await;
    let first = app.pair_device("bob").await;
    let second = app.pair_device("bob").await;
    assert_eq!(primary_of(&app, "bob").await.as_deref(), Some(first.id()));

    // The default policy: straight to the primary, no list first.
    let flow = app.start_flow(&oob_request("bob")).await;
    let waiting = app.state(&flow).await;
    assert_eq!(pushed_to(&waiting), first.id());
    let push = expect_status!(waiting, PushConfirmationWaiting);
    assert!(push.change_device_permitted, "another device may be chosen");
    let listed: Vec<(&str, bool)> = push
        .devices
        .iter()
        .map(|device| (device.id.as_str(), device.default))
        .collect();
    assert_eq!(listed, [(first.id(), true), (second.id(), false)]);
    assert_eq!(first.pending(0).await.len(), 1);
    assert!(
        second.pending(0).await.is_empty(),
        "only the primary is asked"
    );

    // "Change device" in PingFederate's widget shows the list it already holds and posts
    // `selectDevice` on PUSH_CONFIRMATION_WAITING: the request moves to that device.
    let moved = app
        .act_ok(&flow, ActionRequest::select_device(second.id()))
        .await;
    assert_eq!(pushed_to(&moved), second.id());
    assert!(
        first.pending(0).await.is_empty(),
        "the first push is withdrawn"
    );
    assert_eq!(second.answer_pending(true).await, "MFA_COMPLETED");
}

async fn unpairing_the_primary_promotes_the_oldest_remaining_device(backend: Backend<'_>) {
    let app = spawn(backend, None).await;
    let oldest = app.pair_device("bob").await;
    let middle = app.pair_device("bob").await;
    let newest = app.pair_device("bob").await;
    // The operator may still choose the primary.
    make_primary(&app, "bob", &newest).await;
    assert_eq!(primary_of(&app, "bob").await.as_deref(), Some(newest.id()));
    let flow = app.start_flow(&oob_request("bob")).await;
    assert_eq!(pushed_to(&app.state(&flow).await), newest.id());

    // Unpairing the primary fails its waiting request and promotes the oldest left.
    unpair(&app, "bob", &newest).await;
    assert_eq!(app.state(&flow).await.status.name(), StatusName::MfaFailed);
    assert_eq!(primary_of(&app, "bob").await.as_deref(), Some(oldest.id()));
    let flow = app.start_flow(&oob_request("bob")).await;
    assert_eq!(pushed_to(&app.state(&flow).await), oldest.id());
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;

    // Unpairing another device leaves the primary alone.
    unpair(&app, "bob", &middle).await;
    assert_eq!(primary_of(&app, "bob").await.as_deref(), Some(oldest.id()));
    // The last one unpaired: no primary; the next device paired becomes it.
    unpair(&app, "bob", &oldest).await;
    assert_eq!(primary_of(&app, "bob").await, None);
    let again = app.pair_device("bob").await;
    assert_eq!(primary_of(&app, "bob").await.as_deref(), Some(again.id()));
}

async fn prompt_asks_only_with_several_devices(backend: Backend<'_>) {
    let app = spawn(backend, Some("prompt")).await;
    let first = app.pair_device("bob").await;
    let flow = app.start_flow(&oob_request("bob")).await;
    assert_eq!(
        pushed_to(&app.state(&flow).await),
        first.id(),
        "one device: no question"
    );
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;

    let second = app.pair_device("bob").await;
    let flow = app.start_flow(&oob_request("bob")).await;
    let selection = app.state(&flow).await;
    assert_eq!(
        expect_status!(selection, DeviceSelectionRequired)
            .devices
            .len(),
        2
    );
    assert!(first.pending(0).await.is_empty() && second.pending(0).await.is_empty());
    let waiting = app
        .act_ok(&flow, ActionRequest::select_device(second.id()))
        .await;
    assert_eq!(pushed_to(&waiting), second.id());
}

async fn always_display_asks_even_with_one_device(backend: Backend<'_>) {
    let app = spawn(backend, Some("always_display")).await;
    let only = app.pair_device("bob").await;
    let flow = app.start_flow(&oob_request("bob")).await;
    let selection = app.state(&flow).await;
    let choice = expect_status!(selection, DeviceSelectionRequired);
    assert_eq!(choice.devices.len(), 1);
    assert!(choice.devices[0].default, "the primary is marked");
    assert!(
        only.pending(0).await.is_empty(),
        "nothing before the choice"
    );
    let waiting = app
        .act_ok(&flow, ActionRequest::select_device(only.id()))
        .await;
    assert_eq!(pushed_to(&waiting), only.id());
    assert_eq!(only.answer_pending(true).await, "MFA_COMPLETED");
}

fn new_device(user: &str) -> Value {
    let mut request = oob_request(user);
    request["kind"] = json!("new_device");
    request
}

async fn new_device_verification_follows_the_device_selection(backend: Backend<'_>) {
    // By default the primary verifies at once.
    let app = spawn(backend, None).await;
    let primary = app.pair_device("bob").await;
    let other = app.pair_device("bob").await;
    let flow = app.start_flow(&new_device("bob")).await;
    assert_eq!(pushed_to(&app.state(&flow).await), primary.id());
    assert!(other.pending(0).await.is_empty());

    // Under `prompt`, the person picks which trusted device verifies the new one.
    let app = spawn(backend, Some("prompt")).await;
    let primary = app.pair_device("bob").await;
    let other = app.pair_device("bob").await;
    let flow = app.start_flow(&new_device("bob")).await;
    let selection = app.state(&flow).await;
    let choice = expect_status!(selection, DeviceSelectionRequired);
    let ids: Vec<&str> = choice
        .devices
        .iter()
        .map(|device| device.id.as_str())
        .collect();
    assert_eq!(ids, [primary.id(), other.id()]);
    assert!(primary.pending(0).await.is_empty() && other.pending(0).await.is_empty());
    let waiting = app
        .act_ok(&flow, ActionRequest::select_device(other.id()))
        .await;
    assert_eq!(pushed_to(&waiting), other.id());
    let request = other.one_pending().await;
    assert_eq!(request.kind, "new_device");
    other.device.approve(&request).await.unwrap();
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MobileActivationRequired
    );
}

async fn ciba_pushes_to_the_primary_whatever_the_device_selection(backend: Backend<'_>) {
    // No person is at a page to pick: even `always_display` sends CIBA to the primary.
    let app = spawn(backend, Some("always_display")).await;
    let first = app.pair_device("alice").await;
    let second = app.pair_device("alice").await;
    make_primary(&app, "alice", &second).await;
    let response = app
        .http
        .post(app.url("/as/bc-auth.ciba"))
        .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let acknowledged: Acknowledgement = response.json().await.unwrap();
    assert!(!acknowledged.auth_req_id.is_empty());
    assert!(first.pending(0).await.is_empty());
    assert_eq!(second.pending(0).await.len(), 1);
}

/// Where a user's next flow goes and what it lists, for an out-of-band sign-in and for a
/// CIBA request: the user's devices are read afresh for each (the user's slot in one
/// read), so a change between two flows is seen by the next one.
async fn next_flows_go_to(app: &TestApp, phones: &[&TestDevice], expected: &TestDevice) {
    let flow = app.start_flow(&oob_request("alice")).await;
    let waiting = app.state(&flow).await;
    assert_eq!(
        pushed_to(&waiting),
        expected.id(),
        "the push goes to the primary"
    );
    let listed: Vec<&str> = expect_status!(waiting, PushConfirmationWaiting)
        .devices
        .iter()
        .map(|device| device.id.as_str())
        .collect();
    let paired: Vec<&str> = phones.iter().map(|phone| phone.id()).collect();
    assert_eq!(listed, paired, "the flow lists the devices paired now");
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;

    let response = app
        .http
        .post(app.url("/as/bc-auth.ciba"))
        .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
        .form(&[("scope", "openid"), ("login_hint", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Exactly one request waits on the expected phone (or this fails).
    expected.answer_pending(false).await;
    for phone in phones {
        assert!(
            phone.pending(0).await.is_empty(),
            "only the primary is asked"
        );
    }
}

async fn each_flow_sees_devices_added_removed_or_made_primary_since_the_last(backend: Backend<'_>) {
    // Twelve pushes to one user: more than the default push limit allows in an hour.
    let unlimited = Figment::new().merge(("mfa.push_limit", 0));
    let app = TestApp::spawn_with(backend, &unique("t"), unlimited).await;
    let first = app.pair_device("alice").await;
    next_flows_go_to(&app, &[&first], &first).await;

    // A device added: listed by the next flows, which still go to the primary.
    let second = app.pair_device("alice").await;
    next_flows_go_to(&app, &[&first, &second], &first).await;

    // The primary changed: the next flows go to the new one.
    make_primary(&app, "alice", &second).await;
    next_flows_go_to(&app, &[&first, &second], &second).await;
    let third = app.pair_device("alice").await;
    make_primary(&app, "alice", &third).await;
    next_flows_go_to(&app, &[&first, &second, &third], &third).await;

    // Devices removed: gone from the next flows, the primary's successor asked.
    unpair(&app, "alice", &second).await;
    next_flows_go_to(&app, &[&first, &third], &third).await;
    unpair(&app, "alice", &third).await;
    next_flows_go_to(&app, &[&first], &first).await;
}
