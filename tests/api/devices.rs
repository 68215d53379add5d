//! Device management: the operator (Admin API) and the device itself (Device API) list,
//! rename, choose the primary and unpair; unpairing fails the requests waiting for it.

use serde_json::{Value, json};

use assent_proto::admin::UserDevices;
use assent_proto::authn::StatusName;
use assent_proto::device::{DeviceList, PairedDevice};

use crate::support::{Backend, TestApp, expect_status, on_both_backends, oob_request, problem};

on_both_backends!(
    the_operator_manages_a_users_devices,
    unpairing_fails_the_requests_waiting_for_the_device,
    a_device_lists_its_users_devices_and_unpairs_only_itself,
    a_shared_device_serves_each_of_its_users,
);

async fn devices(app: &TestApp, user: &str) -> Vec<PairedDevice> {
    let response = app
        .admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await;
    assert_eq!(response.status(), 200);
    let body: UserDevices = response.json().await.unwrap();
    body.devices
}

async fn the_operator_manages_a_users_devices(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let first = app.pair_device("bob").await;
    let second = app.pair_device("bob").await;
    let listed = devices(&app, "bob").await;
    assert_eq!(listed.len(), 2);
    // The first device paired became the primary.
    assert!(listed[0].primary && !listed[1].primary, "{listed:?}");
    assert_eq!(listed[0].id, first.id());
    assert_eq!(listed[0].model, "assent simulator");

    let url = |device: &str| app.url(&format!("/admin/v1/users/bob/devices/{device}"));
    let patch = |device: &str, body: Value| {
        app.http
            .patch(url(device))
            .bearer_auth(crate::support::ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let updated: PairedDevice = patch(
        second.id(),
        json!({ "nickname": "Work phone", "primary": true }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(updated.nickname.as_deref(), Some("Work phone"));
    assert!(updated.primary);
    let listed = devices(&app, "bob").await;
    let primary: Vec<&PairedDevice> = listed.iter().filter(|device| device.primary).collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0].id, second.id());
    // A new flow for bob lists the primary as the default device.
    let flow = app.start_flow(&oob_request("bob")).await;
    let state = app.state(&flow).await;
    let default = state
        .status
        .devices()
        .iter()
        .find(|device| device.default)
        .unwrap();
    assert_eq!(default.id, second.id());

    for (device, body, status) in [
        (first.id(), json!({ "nickname": "x".repeat(200) }), 400),
        (first.id(), json!({ "nickname": "evil\u{202E}" }), 400),
        (first.id(), json!({ "primary": false }), 400),
        (first.id(), json!({ "colour": "red" }), 400),
        ("AAAAAAAAAAAAAAAAAAAA", json!({ "nickname": "ghost" }), 404),
    ] {
        let response = patch(device, body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        problem(response).await;
    }
    // Another user's device is not found under bob... nor bob's under alice.
    let alice_phone = app.pair_device("alice").await;
    assert_eq!(
        patch(alice_phone.id(), json!({ "nickname": "mine" }))
            .await
            .unwrap()
            .status(),
        404
    );
    let anonymous = app
        .http
        .get(app.url("/admin/v1/users/bob/devices"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let removed = app
        .http
        .delete(url(first.id()))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    assert_eq!(devices(&app, "bob").await.len(), 1);
    let again = app
        .http
        .delete(url(first.id()))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

async fn unpairing_fails_the_requests_waiting_for_the_device(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_eq!(phone.pending(0).await.len(), 1);
    let response = app
        .http
        .delete(app.url(&format!("/admin/v1/users/alice/devices/{}", phone.id())))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MfaFailed);
    assert!(
        expect_status!(state, MfaFailed)
            .user_message
            .contains("unpaired")
    );
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED");
    let refused = app
        .http
        .get(app.url("/device/v1/pending"))
        .header("Authorization", phone.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "an unpaired device cannot authenticate"
    );
}

async fn a_device_lists_its_users_devices_and_unpairs_only_itself(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let first = app.pair_device("bob").await;
    let second = app.pair_device("bob").await;
    let listed: DeviceList = app
        .http
        .get(app.url("/device/v1/devices"))
        .header("Authorization", first.authorization())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.devices.len(), 2);
    let delete = |target: &str, by: &crate::support::TestDevice| {
        app.http
            .delete(app.url(&format!("/device/v1/devices/{target}")))
            .header("Authorization", by.authorization())
            .send()
    };
    let other = delete(second.id(), &first).await.unwrap();
    assert_eq!(other.status(), 403);
    problem(other).await;
    assert_eq!(delete(first.id(), &first).await.unwrap().status(), 204);
    assert_eq!(devices(&app, "bob").await.len(), 1);
    let gone = app
        .http
        .get(app.url("/device/v1/devices"))
        .header("Authorization", first.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401);
}

async fn a_shared_device_serves_each_of_its_users(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let tablet = app.pair_device("alice").await;
    let joined = tablet
        .device
        .join(&app.pairing_key("bob").await)
        .await
        .unwrap();
    assert_eq!(joined.device_id, tablet.id());
    assert_eq!(joined.users, ["alice", "bob"]);
    // A second key for a user it already serves is refused, and not spent.
    let key = app.pairing_key("bob").await;
    let again = tablet.device.join(&key).await.unwrap_err().to_string();
    assert!(again.contains("409"), "{again}");
    let other = app.pair_device("alice").await;
    other
        .device
        .join(&key)
        .await
        .expect("the refused key was not spent");
    // A shared device that unpairs itself leaves every user it served.
    let response = app
        .http
        .delete(app.url(&format!("/device/v1/devices/{}", other.id())))
        .header("Authorization", other.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    for user in ["alice", "bob"] {
        let listed = devices(&app, user).await;
        assert!(
            listed.iter().all(|device| device.id != other.id()),
            "{user}"
        );
    }
    assert_eq!(devices(&app, "bob").await.len(), 1);

    // It lists the devices of each of its users, and of nobody else's.
    let listed = |user: &str| {
        app.http
            .get(app.url(&format!("/device/v1/devices?userId={user}")))
            .header("Authorization", tablet.authorization())
            .send()
    };
    assert_eq!(listed("bob").await.unwrap().status(), 200);
    assert_eq!(listed("carol").await.unwrap().status(), 403);

    // Each user's requests reach it, labelled with the user.
    let alice_flow = app.start_flow(&oob_request("alice")).await;
    let bob_flow = app.start_flow(&oob_request("bob")).await;
    let mut pending = tablet.pending(5).await;
    pending.sort_by(|a, b| a.user_id.as_str().cmp(b.user_id.as_str()));
    let labels: Vec<&str> = pending
        .iter()
        .map(|request| request.user_id.as_str())
        .collect();
    assert_eq!(labels, ["alice", "bob"]);
    tablet.device.approve(&pending[1]).await.unwrap();
    assert_eq!(
        app.state(&bob_flow).await.status.name(),
        StatusName::MfaCompleted
    );

    // Unpairing bob keeps alice's pairing and her waiting request.
    let response = app
        .http
        .delete(app.url(&format!("/admin/v1/users/bob/devices/{}", tablet.id())))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(devices(&app, "bob").await.is_empty());
    assert_eq!(devices(&app, "alice").await.len(), 1);
    assert_eq!(
        app.state(&alice_flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
    assert_eq!(
        tablet.pending(0).await.len(),
        1,
        "alice's request is still there"
    );
}
