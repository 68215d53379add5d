//! Each instance keeps the last version of a flow it read or wrote and commits against it
//! without reading first. These tests make that version stale (instance 1 holds it,
//! instance 2 changes the flow) and check that what instance 1 then answers is decided on
//! the current state: an action the cached state refused but the current one allows
//! succeeds, and one the cached state allowed but the current one refuses is refused and
//! writes nothing. Two instances share a store only on Redis.

use std::time::Duration;

use assent_proto::authn::{ActionRequest, DetailCode, ErrorCode, StatusName};
use figment::Figment;
use serde_json::Value;

use crate::support::{Backend, RedisServer, TestApp, oob_request, unique};

/// Two instances on one Redis (one key prefix), relying parties polling every second.
async fn two_instances(redis: &RedisServer) -> (TestApp, TestApp) {
    let prefix = unique("cache");
    let overrides = || Figment::new().merge(("ciba.poll_interval_secs", 1));
    (
        TestApp::spawn_with(Backend::Redis(redis), &prefix, overrides()).await,
        TestApp::spawn_with(Backend::Redis(redis), &prefix, overrides()).await,
    )
}

/// An OOB flow started and entered through `first` (which now holds it waiting for the
/// push), approved by a phone talking to `second`; `second`'s client presents the
/// browser's binding. `first` has not seen the approval.
async fn approved_behind_the_first_instance_back(first: &TestApp, second: &TestApp) -> String {
    let phone = second.pair_device("alice").await;
    let flow = first.start_flow(&oob_request("alice")).await;
    second.present_binding(&flow, first.binding(&flow).expect("bound by the GET"));
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    flow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_the_cached_state_refuses_is_decided_on_the_current_one() {
    let redis = RedisServer::start();
    let (first, second) = two_instances(&redis).await;
    let flow = approved_behind_the_first_instance_back(&first, &second).await;
    // The first instance holds the flow waiting for the push, where `continueAuthentication`
    // is not offered; the flow is at `MFA_COMPLETED`, where it is.
    let done = first
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
    let result = first.result(&flow).await;
    assert_eq!(result.status(), 200);
    let result: Value = result.json().await.unwrap();
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["status"], "COMPLETED", "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_the_current_state_refuses_writes_nothing() {
    let redis = RedisServer::start();
    let (first, second) = two_instances(&redis).await;
    let flow = approved_behind_the_first_instance_back(&first, &second).await;
    // Canceling is offered while the push waits (as the first instance last saw the
    // flow), not once it is approved.
    let refused = first
        .act_err(&flow, ActionRequest::CancelAuthentication)
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.body.code, ErrorCode::InvalidActionId);
    assert_eq!(
        second.state(&flow).await.status.name(),
        StatusName::MfaCompleted,
        "the approval stands"
    );
    // The federation server picks the result up through the second instance; the first
    // still holds the flow unpicked, and must not hand it out again.
    second
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(second.result(&flow).await.status(), 200);
    assert_eq!(first.result(&flow).await.status(), 404, "picked up once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_written_through_another_instance_holds() {
    let redis = RedisServer::start();
    let (first, second) = two_instances(&redis).await;
    let _phone = first.pair_device("alice").await;
    // Both flows are held unbound by the first instance (it created them); the browser
    // binds each through the second.
    let taken = first
        .start_flow_unauthenticated(&oob_request("alice"))
        .await;
    let owned = first
        .start_flow_unauthenticated(&oob_request("alice"))
        .await;
    for flow in [&taken, &owned] {
        assert_eq!(
            second.state(flow).await.status.name(),
            StatusName::AuthenticationRequired
        );
    }
    // Another client, through the first instance, without the secret: refused.
    let refused = first
        .act_err(&taken, ActionRequest::authenticate_browser())
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.detail().code, DetailCode::FlowBoundToAnotherClient);
    assert_eq!(
        second.state(&taken).await.status.name(),
        StatusName::AuthenticationRequired,
        "the refused request wrote nothing"
    );
    // The browser itself, through the first instance, with its secret: accepted, and its
    // binding stays the one it holds.
    let secret = second.binding(&owned).expect("bound by the GET");
    first.present_binding(&owned, secret.clone());
    let entered = first
        .act_ok(&owned, ActionRequest::authenticate_browser())
        .await;
    assert_eq!(entered.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(first.binding(&owned), Some(secret));
    assert_eq!(
        second.state(&owned).await.status.name(),
        StatusName::PushConfirmationWaiting
    );
}

/// A relying party's CIBA requests, through one instance.
struct RelyingParty<'a>(&'a TestApp);

impl RelyingParty<'_> {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .0
            .http
            .post(self.0.url(path))
            .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn start(&self, user: &str) -> String {
        let (status, started) = self
            .post(
                "/as/bc-auth.ciba",
                &[("scope", "openid"), ("login_hint", user)],
            )
            .await;
        assert_eq!(status, 200, "{started}");
        started["auth_req_id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, auth_req_id: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id),
        ];
        self.post("/as/token.oauth2", &form).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ciba_tokens_are_decided_on_the_current_request() {
    let redis = RedisServer::start();
    let (first, second) = two_instances(&redis).await;
    let (rp_first, rp_second) = (RelyingParty(&first), RelyingParty(&second));

    // Approved through the second instance while the first holds the request pending:
    // the first issues the tokens.
    let alice_phone = second.pair_device("alice").await;
    let id = rp_first.start("alice").await;
    alice_phone
        .device
        .approve(&alice_phone.one_pending().await)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = rp_first.token(&id).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());

    // Approved through the first instance, which then holds the request approved; the
    // tokens are issued through the second: the first must not issue them again.
    let bob_phone = first.pair_device("bob").await;
    let id = rp_first.start("bob").await;
    bob_phone
        .device
        .approve(&bob_phone.one_pending().await)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = rp_second.token(&id).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, again) = rp_first.token(&id).await;
    assert_eq!(status, 400, "tokens are issued once: {again}");
    assert_eq!(again["error"], "invalid_grant", "{again}");
}
