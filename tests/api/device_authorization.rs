//! Device authorization (seed 004): a trusted app in a web view signs the flow's server
//! payload with its device key and is signed in with no interaction.

use assent_device_sdk::{DeviceKey, DeviceSigner, ServerPayload, decode_server_payload};
use serde_json::{Value, json};

use assent_proto::authn::{ActionRequest, AuthnState, ErrorCode, StatusName};

use crate::support::{
    Backend, Refusal, TestApp, expect_status, links, on_both_backends, oob_request,
};

on_both_backends!(a_trusted_app_is_authorized_and_others_are_refused);

fn authorization(user: &str) -> Value {
    let mut request = oob_request(user);
    request["kind"] = json!("device_authorization");
    request
}

async fn a_trusted_app_is_authorized_and_others_are_refused(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let alice_phone = app.pair_device("alice").await;
    let bob_phone = app.pair_device("bob").await;
    let flow = app.start_flow(&authorization("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MobilePairingRequired);
    assert_eq!(links(&state), ["authenticate", "cancelAuthentication"]);
    let server_payload = expect_status!(state, MobilePairingRequired)
        .server_payload
        .clone();

    let authenticate =
        |mobile_payload: String| app.act(&flow, ActionRequest::authenticate(mobile_payload));
    let refused = |response: Result<AuthnState, Refusal>| async move {
        let refusal = response.expect_err("refused");
        assert_eq!(refusal.status, 400);
        assert_eq!(refusal.body.code, ErrorCode::ValidationError, "{refusal:?}");
    };
    // Another user's trusted device, an unpaired key, another flow's challenge, garbage.
    refused(authenticate(bob_phone.device.authorize(&server_payload).unwrap()).await).await;
    let stranger = DeviceSigner::new(alice_phone.id(), DeviceKey::generate().unwrap());
    let challenge = decode_server_payload(&server_payload).unwrap();
    assert_eq!(challenge.flow_id, flow);
    refused(authenticate(stranger.answer_server_payload(&challenge).unwrap()).await).await;
    let other_flow = app.start_flow(&authorization("alice")).await;
    let alice_signer = alice_phone.device.signer();
    let elsewhere = ServerPayload {
        flow_id: other_flow,
        ..challenge.clone()
    };
    refused(authenticate(alice_signer.answer_server_payload(&elsewhere).unwrap()).await).await;
    let wrong_nonce = ServerPayload {
        nonce: "wrong-nonce".to_owned(),
        ..challenge
    };
    refused(authenticate(alice_signer.answer_server_payload(&wrong_nonce).unwrap()).await).await;
    refused(authenticate("not.a.jws".to_owned()).await).await;
    let missing = app.act_raw(&flow, "authenticate", Some(json!({}))).await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MobilePairingRequired,
        "untouched"
    );

    let done = authenticate(alice_phone.device.authorize(&server_payload).unwrap())
        .await
        .expect("authorized");
    assert_eq!(done.status.name(), StatusName::Completed);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["method"], "device_authorization");
    assert_eq!(result["deviceId"], alice_phone.id());
    assert_eq!(result["amr"], json!(["swk"]));
    assert!(
        alice_phone.pending(0).await.is_empty(),
        "no interaction was asked"
    );
}
