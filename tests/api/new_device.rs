//! A new device verified by the primary one (seed 004, "out of band from mobile"): the
//! primary approves before the new device may pair; or, by policy, each device pairs on
//! its own.

use figment::Figment;
use serde_json::{Value, json};

use assent_proto::admin::UserDevices;
use assent_proto::authn::{ActionRequest, AuthnState, StatusName};

use crate::support::{Backend, TestApp, expect_status, on_both_backends, oob_request, unique};

on_both_backends!(
    a_wrong_number_or_a_proof_over_other_parameters_admits_no_device,
    the_primary_approves_and_the_new_device_pairs,
    the_primary_denies_and_nothing_is_paired,
    pair_individually_goes_straight_to_registration,
);

fn new_device(user: &str) -> Value {
    let mut request = oob_request(user);
    request["kind"] = json!("new_device");
    request
}

async fn devices_of(app: &TestApp, user: &str) -> usize {
    let body: UserDevices = app
        .admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await
        .json()
        .await
        .unwrap();
    body.devices.len()
}

/// The number the page shows under number matching.
fn number_shown(state: &AuthnState) -> u8 {
    expect_status!(state, PushConfirmationWaiting)
        .number_match
        .expect("a number")
}

/// Whether the raw state carries a pairing key (whatever its status).
async fn shows_a_pairing_key(app: &TestApp, flow: &str) -> bool {
    app.state_json(flow).await.get("pairingKey").is_some()
}

async fn the_primary_approves_and_the_new_device_pairs(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let old_phone = app.pair_device("alice").await;
    let primary = app.pair_device("alice").await;
    // The primary is the default device, not merely the first.
    let response = app
        .http
        .patch(app.url(&format!("/admin/v1/users/alice/devices/{}", primary.id())))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .json(&json!({ "primary": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let flow = app.start_flow(&new_device("alice")).await;
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
    assert!(
        old_phone.pending(0).await.is_empty(),
        "only the primary is asked"
    );
    let request = primary.one_pending().await;
    assert_eq!(request.kind, "new_device");
    assert_eq!(request.title, "New device");
    primary.device.approve(&request).await.unwrap();

    let state = app.state(&flow).await;
    assert_eq!(
        state.status.name(),
        StatusName::MobileActivationRequired,
        "straight to pairing"
    );
    let early = app
        .act_err(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(early.status, 400, "no completion without the new device");
    let newcomer = crate::support::pair_phone(
        &app.address,
        &expect_status!(state, MobileActivationRequired).pairing_key,
        "new phone",
    )
    .await
    .unwrap();
    assert_eq!(newcomer.user_id(), "alice");
    assert_eq!(app.state(&flow).await.status.name(), StatusName::Completed);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["deviceId"], newcomer.id());
    assert_eq!(devices_of(&app, "alice").await, 3);
}

async fn the_primary_denies_and_nothing_is_paired(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let primary = app.pair_device("alice").await;
    let flow = app.start_flow(&new_device("alice")).await;
    primary.answer_pending(false).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::PushConfirmationRejected);
    assert!(!shows_a_pairing_key(&app, &flow).await);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED");
    assert_eq!(devices_of(&app, "alice").await, 1);

    // A user with no device at all has no primary to ask.
    let flow = app.start_flow(&new_device(&unique("fay"))).await;
    assert_eq!(app.state(&flow).await.status.name(), StatusName::MfaFailed);
}

async fn pair_individually_goes_straight_to_registration(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.additional_trusted_devices", "pair_individually")),
    )
    .await;
    let primary = app.pair_device("alice").await;
    let flow = app.start_flow(&new_device("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MobileActivationRequired);
    assert!(
        primary.pending(0).await.is_empty(),
        "the primary is not asked"
    );
    crate::support::pair_phone(
        &app.address,
        &expect_status!(state, MobileActivationRequired).pairing_key,
        "tablet",
    )
    .await
    .unwrap();
    assert_eq!(app.state(&flow).await.status.name(), StatusName::Completed);
}

/// The primary's approval goes through the same check as every device decision: under
/// number matching, the wrong number is a denial, and a proof over other parameters than
/// the request shows is refused; neither issues a pairing key.
async fn a_wrong_number_or_a_proof_over_other_parameters_admits_no_device(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("mfa.number_matching", true)),
    )
    .await;
    let primary = app.pair_device("alice").await;

    // A proof over other parameters: refused, and the request still waits.
    let flow = app.start_flow(&new_device("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    let number = number_shown(&state);
    let request = primary.one_pending().await;
    assert!(request.number_choices.contains(&number), "{request:?}");
    let forged = assent_proto::device::ProofClaims {
        auth_id: request.auth_id.to_string(),
        decision: assent_proto::device::Decision::Approve,
        params_hash: assent_core::params::DynamicParams::default().digest() + "0",
        number: Some(number),
    };
    let proof = primary.device.signer().proof(&forged).unwrap();
    let response = app
        .http
        .post(app.url(&format!("/device/v1/authentications/{}", request.auth_id)))
        .header("Authorization", primary.authorization())
        .json(&json!({ "decision": "approve", "proof": proof }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("other parameters"),
        "{problem}"
    );
    let state = app.state(&flow).await;
    assert_eq!(
        state.status.name(),
        StatusName::PushConfirmationWaiting,
        "{state:?}"
    );
    assert!(!shows_a_pairing_key(&app, &flow).await, "{state:?}");

    // The wrong number: a denial, final, and no pairing key.
    let wrong = *request
        .number_choices
        .iter()
        .find(|choice| **choice != number)
        .unwrap();
    let answer = primary
        .device
        .answer(
            &request,
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
    assert!(!shows_a_pairing_key(&app, &flow).await, "{state:?}");
    assert_eq!(devices_of(&app, "alice").await, 1, "nothing was paired");

    // The right number admits the new device.
    let flow = app.start_flow(&new_device("alice")).await;
    let state = app.state(&flow).await;
    let number = number_shown(&state);
    let request = primary.one_pending().await;
    let answer = primary
        .device
        .answer(
            &request,
            assent_proto::device::Decision::Approve,
            Some(number),
        )
        .await
        .expect("the answer is taken");
    assert_eq!(answer.status, "MOBILE_ACTIVATION_REQUIRED");
    let state = app.state(&flow).await;
    assert!(
        !expect_status!(state, MobileActivationRequired)
            .pairing_key
            .is_empty(),
        "{state:?}"
    );
}
