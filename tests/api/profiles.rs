//! User profiles: a flow start merges what the federation server says into the stored
//! profile (absent keeps, `null` or `""` clears, the connector's `landline` is the voice
//! number); the result carries the connector's outputs; and configured users survive
//! the store losing its data.

use serde_json::{Value, json};

use assent_core::keys;
use assent_proto::ciba::Acknowledgement;

use crate::support::{Backend, TestApp, on_both_backends, oob_request};

on_both_backends!(
    a_flow_start_merges_the_profile_and_null_or_empty_clears_a_field,
    the_result_carries_the_accessing_ip_the_device_and_the_authentication_type,
    configured_users_come_back_after_the_store_lost_its_data,
);

/// The stored profile, as the operator reads it.
async fn profile(app: &TestApp, user: &str) -> Value {
    let response = app.admin_get(&format!("/admin/v1/users/{user}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A flow start for alice with `user` as the user object.
fn start_with(user: Value) -> Value {
    let mut request = oob_request("alice");
    request["user"] = user;
    request
}

/// Starts a CIBA request for a login hint; `Ok(auth_req_id)` or the refusal's body.
async fn ciba_for(app: &TestApp, login_hint: &str) -> Result<String, Value> {
    let response = app
        .http
        .post(app.url("/as/bc-auth.ciba"))
        .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
        .form(&[("scope", "openid"), ("login_hint", login_hint)])
        .send()
        .await
        .unwrap();
    if response.status() == 200 {
        let acknowledged: Acknowledgement = response.json().await.unwrap();
        Ok(acknowledged.auth_req_id)
    } else {
        Err(response.json().await.unwrap())
    }
}

async fn a_flow_start_merges_the_profile_and_null_or_empty_clears_a_field(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let _phone = app.pair_device("alice").await;
    // The README's push walk-through: a start that names only id and username...
    app.start_flow(&start_with(json!({ "id": "alice", "username": "alice" })))
        .await;
    let stored = profile(&app, "alice").await;
    assert_eq!(stored["email"], "alice@example.com", "{stored}");
    assert_eq!(stored["phone"], "+15555550101");
    assert_eq!(stored["first_name"], "Alice");
    // ...so that its CIBA walk-through still finds alice by email.
    ciba_for(&app, "alice@example.com").await.unwrap();

    // `null` and "" clear; the connector's `landline` sets the voice number.
    let cleared = json!({
        "id": "alice", "username": "alice",
        "email": null, "phone": "", "landline": "+15555550177",
        "groups": ["tellers"],
    });
    app.start_flow(&start_with(cleared)).await;
    let stored = profile(&app, "alice").await;
    assert_eq!(stored["email"], Value::Null, "{stored}");
    assert_eq!(stored["phone"], Value::Null);
    assert_eq!(stored["voice"], "+15555550177");
    assert_eq!(stored["first_name"], "Alice", "absent: kept");
    assert_eq!(stored["groups"], json!(["tellers"]));
    let refused = ciba_for(&app, "alice@example.com").await.unwrap_err();
    assert_eq!(refused["error"], "unknown_user_id", "{refused}");

    // A value is checked after the merge, and the voice number named twice is refused.
    for user in [
        json!({ "id": "alice", "username": "alice", "landline": "555" }),
        json!({ "id": "alice", "username": "alice", "landline": "+15555550177",
                "voiceNumber": "+15555550178" }),
    ] {
        let response = app.start_flow_raw(&start_with(user.clone())).await;
        assert_eq!(response.status(), 400, "{user}");
    }
    assert_eq!(profile(&app, "alice").await["voice"], "+15555550177");
}

async fn the_result_carries_the_accessing_ip_the_device_and_the_authentication_type(
    backend: Backend<'_>,
) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    app.act_ok(
        &flow,
        assent_proto::authn::ActionRequest::ContinueAuthentication,
    )
    .await;
    let response = app.result(&flow).await;
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["accessingDevice"]["ip"], "203.0.113.7", "{result}");
    assert_eq!(result["authenticationDevice"]["id"], phone.id());
    assert_eq!(result["authenticationType"], "PUSH");
}

async fn configured_users_come_back_after_the_store_lost_its_data(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(profile(&app, "alice").await["email"], "alice@example.com");
    match backend {
        Backend::Redis(redis) => {
            assert_eq!(redis.command(&["FLUSHALL"]).trim(), "+OK");
        }
        Backend::Cluster(_) | Backend::Sentinel(_) => unreachable!("runs on memory and Redis"),
        // The memory store cannot be flushed from outside: drop what a flush drops.
        Backend::Memory => {
            let store = app.adapter.store();
            let alice = assent_core::user::UserId::parse("alice").unwrap();
            for key in [
                keys::user(&alice),
                keys::login("username", "alice"),
                keys::login("email", "alice@example.com"),
            ] {
                store.delete(&key).await.unwrap();
            }
        }
    }
    // Found by login hint (CIBA) and by id, without a restart; a device pairs again.
    let phone = app.pair_device("alice").await;
    ciba_for(&app, "alice@example.com").await.unwrap();
    assert_eq!(phone.pending(0).await.len(), 1);
    assert_eq!(profile(&app, "alice").await["username"], "alice");
    // A flow start that omits the email merges onto the configured profile.
    app.start_flow(&start_with(json!({ "id": "alice", "username": "alice" })))
        .await;
    assert_eq!(profile(&app, "alice").await["email"], "alice@example.com");
}
