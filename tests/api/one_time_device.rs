//! One-time device authentication (seed 001): a flow brings a device's public key and
//! details; that device answers for this flow only and is never paired.

use serde_json::{Value, json};

use assent_device_sdk::{DeviceKey, DeviceSigner};
use assent_proto::device::{Decision, ProofClaims};

use assent_proto::admin::UserDevices;
use assent_proto::authn::{ActionRequest, StatusName};

use crate::support::{Backend, TestApp, expect_status, on_both_backends, oob_request};

on_both_backends!(
    a_one_time_device_answers_once_and_is_never_paired,
    a_one_time_device_is_pushed_to_under_the_users_push_limit,
);

async fn a_one_time_device_is_pushed_to_under_the_users_push_limit(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &crate::support::unique("t"),
        figment::Figment::new().merge(("mfa.push_limit", 1)),
    )
    .await;
    let start = || async {
        let public = DeviceKey::generate().unwrap().public_jwk().clone();
        let mut request = oob_request("alice");
        request["oneTimeDevice"] = json!({
            "publicJwk": public, "name": "Kiosk", "os": "Android", "osVersion": "14", "model": "Kiosk 1",
        });
        let flow = app.start_flow(&request).await;
        app.state(&flow).await
    };
    assert_eq!(
        start().await.status.name(),
        StatusName::PushConfirmationWaiting
    );
    let refused = start().await;
    assert_eq!(refused.status.name(), StatusName::MfaFailed);
    assert!(
        expect_status!(refused, MfaFailed)
            .reason
            .contains("too many push notifications")
    );
}

pub(crate) async fn a_one_time_device_answers_once_and_is_never_paired(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let paired = app.pair_device("alice").await;
    let key = DeviceKey::generate().unwrap();
    let public = key.public_jwk().clone();
    let mut request = oob_request("alice");
    request["oneTimeDevice"] = json!({
        "publicJwk": public, "name": "Kiosk", "os": "Android", "osVersion": "14", "model": "Kiosk 1",
    });
    let response = app.start_flow_raw(&request).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let flow = created["flowId"].as_str().unwrap().to_owned();
    let device_id = created["oneTimeDeviceId"].as_str().unwrap().to_owned();

    let state = app.enter(&flow).await;
    assert_eq!(state.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(state.status.selected_device_id(), Some(device_id.as_str()));
    assert!(
        paired.pending(0).await.is_empty(),
        "the paired phone is not asked"
    );

    let kiosk = DeviceSigner::new(&device_id, key);
    let pending: Value = app
        .http
        .get(app.url("/device/v1/pending"))
        .header(
            "Authorization",
            format!("Device {}", kiosk.token().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = &pending["requests"][0];
    let auth_id = request["authId"].as_str().unwrap();
    let params: assent_core::params::DynamicParams =
        serde_json::from_value(request["dynamicParams"].clone()).unwrap();
    let proof = kiosk
        .proof(&ProofClaims {
            auth_id: auth_id.to_owned(),
            decision: Decision::Approve,
            params_hash: params.digest(),
            number: None,
        })
        .unwrap();
    let answer = app
        .http
        .post(app.url(&format!("/device/v1/authentications/{auth_id}")))
        .header(
            "Authorization",
            format!("Device {}", kiosk.token().unwrap()),
        )
        .json(&json!({ "decision": "approve", "proof": proof }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MfaCompleted
    );

    // It cannot act as a paired device: no QR scan, no joining, no device list.
    let kiosk_auth = || format!("Device {}", kiosk.token().unwrap());
    for (method, path) in [
        (reqwest::Method::GET, "/device/v1/devices".to_owned()),
        (
            reqwest::Method::POST,
            format!("/device/v1/qr/{flow}.AAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
    ] {
        let response = app
            .http
            .request(method, app.url(&path))
            .header("Authorization", kiosk_auth())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // Once its flow has ended, it is trusted no more.
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let after = app
        .http
        .get(app.url("/device/v1/pending"))
        .header("Authorization", kiosk_auth())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);

    // Never listed among alice's devices, and it cannot start anything new.
    let devices: UserDevices = app
        .admin_get("/admin/v1/users/alice/devices")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = devices
        .devices
        .iter()
        .map(|device| device.id.as_str())
        .collect();
    assert_eq!(ids, [paired.id()]);
    let next = app.start_flow(&oob_request("alice")).await;
    let next = app.state(&next).await;
    assert_eq!(
        expect_status!(next, PushConfirmationWaiting)
            .selected_device_ref
            .as_ref()
            .map(|device| device.id.as_str()),
        Some(paired.id())
    );

    // A bad key or a flow kind that cannot carry one is refused, leaving nothing behind.
    let mut bad = oob_request("alice");
    bad["oneTimeDevice"] = json!({ "publicJwk": { "kty": "EC" }, "name": "x", "os": "x", "osVersion": "1", "model": "x" });
    assert_eq!(app.start_flow_raw(&bad).await.status(), 400);
    let mut wrong_kind = request_for_registration(&public);
    wrong_kind["kind"] = json!("registration");
    assert_eq!(app.start_flow_raw(&wrong_kind).await.status(), 400);
}

fn request_for_registration(public: &serde_json::Map<String, Value>) -> Value {
    let mut request = oob_request("alice");
    request["oneTimeDevice"] = json!({
        "publicJwk": public, "name": "Kiosk", "os": "Android", "osVersion": "14", "model": "Kiosk 1",
    });
    request
}
