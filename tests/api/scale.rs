//! assent on a Redis Cluster and on a Sentinel-watched master, as it runs at scale: two
//! instances share each deployment, the browser talks to one and the phone to the other.

use std::time::{Duration, Instant};

use assent_proto::authn::{ActionRequest, AuthnState, StatusName};
use assent_proto::device::QrStatus;
use figment::Figment;
use serde_json::{Value, json};

use crate::support::topology::{RedisCluster, RedisSentinel, replicated};
use crate::support::{Backend, TestApp, TestDevice, expect_status, oob_request, unique};

/// Two instances sharing one deployment (one key prefix), each with the demo relying
/// party polling every second, and the QR sign-in without the extra approval.
async fn two_instances(backend: Backend<'_>) -> (TestApp, TestApp) {
    let prefix = unique("scale");
    let overrides = || {
        Figment::new()
            .merge(("ciba.poll_interval_secs", 1))
            .merge(("policy.qr_user_approval", false))
    };
    (
        TestApp::spawn_with(backend, &prefix, overrides()).await,
        TestApp::spawn_with(backend, &prefix, overrides()).await,
    )
}

/// An OOB sign-in of `user`: started and watched on `browser_side`, approved by `phone`
/// (paired through the other instance), and its result picked up once.
async fn oob_sign_in(browser_side: &TestApp, phone: &TestDevice, user: &str) {
    let flow = browser_side.start_flow(&oob_request(user)).await;
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    assert_eq!(
        browser_side.state(&flow).await.status.name(),
        StatusName::MfaCompleted
    );
    browser_side
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let result = browser_side.result(&flow).await;
    assert_eq!(result.status(), 200);
    let result: Value = result.json().await.unwrap();
    assert_eq!(result["subject"], user);
    assert_eq!(
        browser_side.result(&flow).await.status(),
        404,
        "a result is picked up once"
    );
}

/// A QR sign-on: the code shown by `browser_side`, scanned by `phone`.
async fn qr_sign_in(browser_side: &TestApp, phone: &TestDevice) {
    let request = json!({ "kind": "qr", "application": { "name": "Demo Bank" } });
    let flow = browser_side.start_flow(&request).await;
    let state = browser_side.state(&flow).await;
    let uri = expect_status!(state, AuthenticationCodeResponseRequired)
        .uri
        .clone()
        .expect("a QR code");
    let scanned = phone.device.scan(&uri).await.unwrap();
    assert_eq!(scanned.status, QrStatus::Completed);
    assert_eq!(
        browser_side.state(&flow).await.status.name(),
        StatusName::Completed
    );
    let result: Value = browser_side.result(&flow).await.json().await.unwrap();
    assert_eq!(result["subject"], "alice");
}

/// A poll-mode CIBA request: asked of `rp_side`, approved by `phone`, tokens from
/// `rp_side`.
async fn ciba_sign_in(rp_side: &TestApp, phone: &TestDevice) {
    let post = |path: &'static str, form: Vec<(&'static str, String)>| async move {
        let response = rp_side
            .http
            .post(rp_side.url(path))
            .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.unwrap())
    };
    let (status, started) = post(
        "/as/bc-auth.ciba",
        vec![
            ("scope", "openid".to_owned()),
            ("login_hint", "alice".to_owned()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let auth_req_id = started["auth_req_id"].as_str().unwrap().to_owned();
    let request = phone.one_pending().await;
    assert_eq!(request.kind, "ciba");
    phone.device.approve(&request).await.unwrap();
    let token_request = || {
        vec![
            ("grant_type", "urn:openid:params:grant-type:ciba".to_owned()),
            ("auth_req_id", auth_req_id.clone()),
        ]
    };
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = post("/as/token.oauth2", token_request()).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
    let (status, again) = post("/as/token.oauth2", token_request()).await;
    assert_eq!(status, 400, "tokens are issued once: {again}");
}

/// A long poll on `browser_side` is answered by an approval on the phone's instance, in
/// far less than the poll's own deadline.
async fn long_poll_woken_across_instances(browser_side: &TestApp, phone: &TestDevice) {
    let flow = browser_side.start_flow(&oob_request("alice")).await;
    let poll = async {
        let started = Instant::now();
        let state = browser_side.poll(&flow, 25).await;
        (state, started.elapsed())
    };
    let approve = async {
        // Once the poll is waiting (a pending request exists from the start).
        tokio::time::sleep(Duration::from_millis(300)).await;
        phone.answer_pending(true).await
    };
    let ((state, waited), answer): ((AuthnState, Duration), String) = tokio::join!(poll, approve);
    assert_eq!(answer, "MFA_COMPLETED");
    assert_eq!(state.status.name(), StatusName::MfaCompleted);
    assert!(
        waited < Duration::from_secs(10),
        "woken by the approval, not the deadline: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_oob_qr_and_ciba_through_two_instances() {
    let cluster = RedisCluster::start(3, 0);
    let (first, second) = two_instances(Backend::Cluster(&cluster)).await;
    assert_eq!(first.adapter.store().backend(), "redis-cluster");
    // The phone talks to the second instance, the browser and relying party to the first.
    let phone = second.pair_device("alice").await;
    oob_sign_in(&first, &phone, "alice").await;
    qr_sign_in(&first, &phone).await;
    ciba_sign_in(&first, &phone).await;
    long_poll_woken_across_instances(&first, &phone).await;
    let other_phone = first.pair_device("bob").await;
    oob_sign_in(&second, &other_phone, "bob").await;
    println!("cluster: OOB, QR, CIBA and a cross-instance long poll on 3 masters, 2 instances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_serves_flows_and_follows_a_failover() {
    let mut sentinel = RedisSentinel::start();
    let (first, second) = two_instances(Backend::Sentinel(&sentinel)).await;
    assert_eq!(first.adapter.store().backend(), "redis-sentinel");
    let phone = second.pair_device("alice").await;
    oob_sign_in(&first, &phone, "alice").await;
    long_poll_woken_across_instances(&first, &phone).await;

    let old_master = sentinel.master_port();
    sentinel.kill_master();
    let promoted = Instant::now();
    assert_ne!(sentinel.master_port(), old_master);
    // Both instances follow the new master without a restart.
    let mut ready = false;
    while promoted.elapsed() < Duration::from_secs(5) {
        let first_ready = first.get("/readyz").await.status() == 200;
        let second_ready = second.get("/readyz").await.status() == 200;
        if first_ready && second_ready {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready within 5 s of the promotion");
    let resumed = promoted.elapsed();
    // The phone paired before the failover is still known: its record was replicated.
    oob_sign_in(&first, &phone, "alice").await;
    long_poll_woken_across_instances(&first, &phone).await;
    println!(
        "sentinel: failover from port {old_master} to {}, both instances ready {resumed:?} after the promotion",
        sentinel.master_port()
    );
}

/// The records a flow writes on another slot than its own (a registration's pairing key,
/// a one-time device) work on a cluster: the flows' own tests, run on one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_beside_a_flow_live_on_other_slots() {
    let cluster = RedisCluster::start(3, 0);
    crate::registration::a_registration_pairs_the_app_and_resumes(Backend::Cluster(&cluster)).await;
    crate::one_time_device::a_one_time_device_answers_once_and_is_never_paired(Backend::Cluster(
        &cluster,
    ))
    .await;
}

/// With `store_options.replica_acks = 1`, a state change counts only once a replica has
/// it: while the replica is connected but stalled, the request answers 503 at once rather
/// than report a change a failover could lose. A master left with no replica at all (no
/// failover can lose anything to one) serves unacknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_no_replica_acknowledged_is_not_reported_done() {
    let (master, mut replica) = replicated();
    let app = TestApp::spawn_with(
        Backend::Redis(&master),
        &unique("acks"),
        // A loaded machine may take a while to replicate: WAIT gets half of 2 s.
        Figment::new()
            .merge(("store_options.replica_acks", 1))
            .merge(("store_options.timeout_ms", 2000)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    oob_sign_in(&app, &phone, "alice").await;

    replica.freeze(true);
    let started = Instant::now();
    let refused = app.start_flow_raw(&oob_request("alice")).await;
    let took = started.elapsed();
    replica.freeze(false);
    assert_eq!(refused.status(), 503);
    assert!(took < Duration::from_secs(3), "answered quickly: {took:?}");

    replica.kill();
    oob_sign_in(&app, &phone, "alice").await;
    println!(
        "replica_acks = 1: a stalled replica makes a flow start answer 503 in {took:?}; \
         with no replica left, flows complete"
    );
}
