//! Fault tests: Redis SIGKILLed under OOB load and restarted (AOF `always` and
//! `everysec`), an assent instance SIGKILLed mid-flow, and notification endpoints that
//! are slow or dead. Real processes, bounded in time; each prints what it checked.

use std::sync::Once;
use std::time::{Duration, Instant};

use assent_device_sdk::proto::device::Decision;
use assent_proto::authn::StatusName;
use figment::Figment;
use serde_json::{Value, json};

use crate::load::{self, Expect, Load};
use crate::support::topology::{RedisCluster, RedisSentinel, cli};
use crate::support::{
    AssentProcess, Backend, RedisServer, TestApp, free_port, on_both_backends, oob_request, unique,
};

/// The store timeout the instances run with: a 503 during an outage must come within
/// three times that (see [`load::Ledger::check`]).
const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// Flows per load test: enough to catch flows at every step when the fault strikes.
const FLOWS: usize = 40;

/// Time between two flow starts: the starts span 1.6 s, and the fault strikes in the
/// middle of them.
const SPACING: Duration = Duration::from_millis(40);

/// An `assent serve` on `redis`, sharing `prefix` with its siblings, logging to a file
/// in the test's directory.
async fn assent_on(redis: &RedisServer, prefix: &str, dir: &std::path::Path) -> AssentProcess {
    assent_at(redis.url(), 0, STORE_TIMEOUT, prefix, dir).await
}

/// An `assent serve` on the store at `store_url`, waiting for `replica_acks` replicas.
async fn assent_at(
    store_url: String,
    replica_acks: u32,
    store_timeout: Duration,
    prefix: &str,
    dir: &std::path::Path,
) -> AssentProcess {
    let log = dir.join(unique("assent.log"));
    let env = [
        ("ASSENT_STORE", store_url),
        (
            "ASSENT_STORE_OPTIONS__REPLICA_ACKS",
            replica_acks.to_string(),
        ),
        ("ASSENT_STORE_OPTIONS__KEY_PREFIX", prefix.to_owned()),
        (
            "ASSENT_STORE_OPTIONS__TIMEOUT_MS",
            store_timeout.as_millis().to_string(),
        ),
        (
            "ASSENT_DELIVERY__FILE__PATH",
            dir.join("outbox.jsonl").display().to_string(),
        ),
    ];
    let process = AssentProcess::serve_logging_to(&[], &env, &log).await;
    load::wait_until_serving(
        std::slice::from_ref(&process.address),
        Duration::from_secs(10),
    )
    .await;
    process
}

/// A scratch directory, removed when dropped; kept when the test fails, for the
/// instances' logs in it.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("assent-faults"));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the instances' logs are kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Pairs a phone per flow, starts [`FLOWS`] OOB flows spread over `urls` in the
/// background, and returns once the load is 0.8 s in: the moment a fault strikes.
async fn start_load(
    urls: &[String],
    flow_deadline: Duration,
) -> tokio::task::JoinHandle<load::Ledger> {
    let phones = load::pair_phones(urls, FLOWS).await;
    let plan = Load {
        urls: urls.to_vec(),
        flows: FLOWS,
        spacing: SPACING,
        spread: true,
        flow_deadline,
    };
    let running = tokio::spawn(load::run(plan, phones));
    tokio::time::sleep(Duration::from_millis(800)).await;
    running
}

/// Runs OOB load against one assent on a Redis with AOF `policy`, SIGKILLs Redis in the
/// middle of it, restarts it on the same port and directory 1.5 s later, and checks the
/// ledger.
async fn redis_crash_under_load(policy: &'static str, lossless: bool) -> load::Summary {
    let scratch = Scratch::new();
    let mut redis = RedisServer::start_with_appendfsync(policy);
    let assent = assent_on(&redis, &unique("f"), &scratch.0).await;
    let urls = vec![assent.address.clone()];
    let running = start_load(&urls, Duration::from_secs(20)).await;
    let down = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tokio::task::block_in_place(|| redis.relaunch());
    let up = Instant::now();
    let resumed = load::wait_until_serving(&urls, Duration::from_secs(5)).await;

    let ledger = running.await.expect("the load runs");
    println!(
        "redis SIGKILLed (appendfsync {policy}) for {:.1} s; assent served again {:.2} s after \
         Redis was back, without a restart",
        (up - down).as_secs_f64(),
        resumed.as_secs_f64()
    );
    ledger.check(Expect {
        lossless,
        store_timeout: STORE_TIMEOUT,
        calls_per_503: 3,
        outage: Some((down, up)),
        killed: &[],
    })
}

/// Runs OOB load through two assent instances on `store_url` (every change acknowledged
/// by a replica), lets `fail_over` kill a master and wait until its replica is promoted,
/// and checks the ledger: nothing lost, nothing completed without an approval, no double
/// pickup, quick 503s meanwhile, service back within 5 s of the promotion.
async fn failover_under_load(
    label: &str,
    store_url: String,
    fail_over: impl FnOnce() + Send,
) -> load::Summary {
    let scratch = Scratch::new();
    let prefix = unique("f");
    let first = assent_at(store_url.clone(), 1, FAILOVER_TIMEOUT, &prefix, &scratch.0).await;
    let second = assent_at(store_url, 1, FAILOVER_TIMEOUT, &prefix, &scratch.0).await;
    let urls = vec![first.address.clone(), second.address.clone()];
    let running = start_load(&urls, Duration::from_secs(25)).await;
    let down = Instant::now();
    tokio::task::block_in_place(fail_over);
    let up = Instant::now();
    let resumed = load::wait_until_serving(&urls, Duration::from_secs(5)).await;

    let ledger = running.await.expect("the load runs");
    println!(
        "{label}: a master SIGKILLed; its replica promoted {:.1} s later; both instances \
         served again {:.2} s after that, without a restart",
        (up - down).as_secs_f64(),
        resumed.as_secs_f64()
    );
    ledger.check(Expect {
        lossless: true,
        store_timeout: FAILOVER_TIMEOUT,
        calls_per_503: 4,
        outage: Some((down, up)),
        killed: &[],
    })
}

/// The master on `port` was asked to wait for replicas (`WAIT`) before it dies: the
/// changes the load made were acknowledged.
fn assert_waited_for_replicas(port: u16) {
    let stats = cli(port, &["INFO", "commandstats"]);
    assert!(
        stats.contains("cmdstat_wait:calls="),
        "writes waited for a replica: {stats}"
    );
}

/// The store timeout of the failover tests: each change waits for its replica's
/// acknowledgement for up to half of it, and a loaded test machine needs more than 250 ms.
const FAILOVER_TIMEOUT: Duration = Duration::from_millis(1000);

/// A Cluster of three masters with a replica each; one master is SIGKILLed during OOB
/// load through two instances and its replica takes over its slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_loses_nothing() {
    let mut cluster = RedisCluster::start(3, 1);
    let victim = cluster.master_ports()[0];
    let url = cluster.url();
    let summary = failover_under_load("cluster", url, || {
        assert_waited_for_replicas(victim);
        cluster.kill_master(victim);
    })
    .await;
    assert_eq!(summary.lost, 0);
    // Every flow completed; a result whose pickup's answer was lost (written, then the
    // instance died or no replica acknowledged in time) is refused to the retry: the
    // pickup is at most once.
    assert_eq!(
        summary.completed + summary.results_lost_with_their_answer,
        FLOWS
    );
}

/// A master and a replica watched by three Sentinels; the master is SIGKILLed during OOB
/// load through two instances, and both follow the Sentinels to the promoted replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_killed_under_load_loses_nothing() {
    let mut sentinel = RedisSentinel::start();
    let url = sentinel.url();
    let summary = failover_under_load("sentinel", url, || {
        assert_waited_for_replicas(sentinel.master_port());
        sentinel.kill_master();
    })
    .await;
    assert_eq!(summary.lost, 0);
    // Every flow completed; a result whose pickup's answer was lost (written, then the
    // instance died or no replica acknowledged in time) is refused to the retry: the
    // pickup is at most once.
    assert_eq!(
        summary.completed + summary.results_lost_with_their_answer,
        FLOWS
    );
}

/// AOF `appendfsync always`: Redis answers a write only once it is on disk, so a crash
/// loses no approval the phone was told was accepted, and every flow completes once
/// Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_with_aof_always_loses_no_accepted_approval() {
    let summary = redis_crash_under_load("always", true).await;
    assert_eq!(summary.lost, 0);
    // Every flow completed; a result whose pickup's answer was lost (written, then the
    // instance died or no replica acknowledged in time) is refused to the retry: the
    // pickup is at most once.
    assert_eq!(
        summary.completed + summary.results_lost_with_their_answer,
        FLOWS
    );
    assert!(
        summary
            .outage_answers
            .get(&Some(503))
            .is_some_and(|count| *count > 0),
        "the load ran into the outage: {summary}"
    );
}

/// AOF `appendfsync everysec`: Redis fsyncs once a second, so a crash may lose up to about
/// one second of acknowledged writes — an approval the phone was told was accepted may be
/// undone (the phone then sees the request again), a flow start or an entry may vanish.
/// What must still hold: nothing completes without an approval, no result is picked up
/// twice, every request during the outage gets a quick 503, and service resumes. The
/// test prints what was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_with_aof_everysec_stays_safe_and_says_what_it_lost() {
    let summary = redis_crash_under_load("everysec", false).await;
    println!(
        "everysec lost {} accepted approval(s); {} flow(s) did not finish",
        summary.lost,
        summary.unfinished.len()
    );
}

/// Two assent instances on one Redis; every flow starts on the first, whose phone and
/// browser long-poll it too; it is SIGKILLed mid-flow, and every flow finishes through
/// the second, its parties retrying there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assent_instance_killed_mid_flow_leaves_every_flow_to_the_other() {
    let scratch = Scratch::new();
    let redis = RedisServer::start();
    let prefix = unique("f");
    let mut first = assent_on(&redis, &prefix, &scratch.0).await;
    let second = assent_on(&redis, &prefix, &scratch.0).await;
    let urls = vec![first.address.clone(), second.address.clone()];
    let flows = 30;
    let phones = load::pair_phones(&urls, flows).await;
    let plan = Load {
        urls,
        flows,
        spacing: SPACING,
        spread: false,
        flow_deadline: Duration::from_secs(20),
    };
    let running = tokio::spawn(load::run(plan, phones));
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.kill();
    let ledger = running.await.expect("the load runs");
    let moved = ledger.flows.iter().filter(|flow| flow.switches > 0).count();
    println!("assent SIGKILLed mid-flow; {moved} flow(s) moved to the other instance");
    let summary = ledger.check(Expect {
        lossless: true,
        store_timeout: STORE_TIMEOUT,
        calls_per_503: 3,
        outage: None,
        killed: &[0],
    });
    // Every flow completed; a result whose pickup's answer was lost (written, then the
    // instance died or no replica acknowledged in time) is refused to the retry: the
    // pickup is at most once.
    assert_eq!(
        summary.completed + summary.results_lost_with_their_answer,
        flows
    );
    assert!(
        moved > 0,
        "some flows were on the killed instance: {summary}"
    );
}

/// The push webhook's secret (the name starts with `ASSENT_SECRET_`, so no instance reads
/// it as a configuration key).
const WEBHOOK_SECRET_ENV: &str = "ASSENT_SECRET_TEST_FAULTS_WEBHOOK_SECRET";

/// An endpoint that accepts connections (the kernel's backlog does) and never answers:
/// a hung notification receiver or push bridge. Kept open while it lives.
struct BlackHole {
    listener: std::net::TcpListener,
}

impl BlackHole {
    fn open() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        Self { listener }
    }

    fn url(&self, path: &str) -> String {
        let port = self.listener.local_addr().expect("an address").port();
        format!("http://127.0.0.1:{port}{path}")
    }
}

/// Where notifications go: nowhere that answers.
#[derive(Clone, Copy, Debug)]
enum Endpoint {
    /// Accepts the connection, never answers.
    Hung,
    /// Nothing listens: the connection is refused.
    Dead,
}

const SECRET: &str = "demo-ciba-secret";

/// Takes `what` and fails if it took more than a second.
async fn promptly<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let value = future.await;
    let took = started.elapsed();
    println!("{what}: {:.3} s", took.as_secs_f64());
    assert!(
        took < Duration::from_secs(1),
        "{what} took {:.2} s: it waited for a notification endpoint",
        took.as_secs_f64()
    );
    value
}

async fn slow_or_dead_endpoints_delay_no_answer(backend: Backend<'_>, endpoint: Endpoint) {
    static SECRET_SET: Once = Once::new();
    // SAFETY: set once, to the same value, before any instance of this binary reads it.
    SECRET_SET.call_once(|| unsafe {
        std::env::set_var(
            WEBHOOK_SECRET_ENV,
            "faults-webhook-secret-0123456789abcdefghij",
        )
    });
    let hole = BlackHole::open();
    let url = |path: &str| match endpoint {
        Endpoint::Hung => hole.url(path),
        Endpoint::Dead => format!("http://127.0.0.1:{}{path}", free_port()),
    };
    let secret = assent_core::config::SecretHash::of(SECRET).to_hex();
    let scopes = json!(["openid", "profile"]);
    let clients = json!([
        { "id": "rp-ping", "name": "Ping RP", "auth_method": "client_secret_basic",
          "secret_sha256": secret, "delivery_mode": "ping", "scopes": scopes,
          "notification_endpoint": url("/ping") },
        { "id": "rp-push", "name": "Push RP", "auth_method": "client_secret_basic",
          "secret_sha256": secret, "delivery_mode": "push", "scopes": scopes,
          "notification_endpoint": url("/push") },
    ]);
    let overrides = Figment::new()
        .merge(("ciba_clients", clients))
        .merge(("ciba.poll_interval_secs", 1))
        .merge(("delivery.push", "webhook"))
        .merge(("delivery.webhook.url", url("/bridge")))
        .merge(("delivery.webhook.secret_env", WEBHOOK_SECRET_ENV))
        // The push must stay the way to answer, even when its announcement fails at once.
        .merge(("mfa.otp_fallback", false));
    let app = TestApp::spawn_with(backend, &unique("t"), overrides).await;
    let phone = app.pair_device("alice").await;

    // Out of band: entering sends the push (to the webhook), the phone answers.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    app.state(&flow).await;
    promptly(
        "authenticate (push announced through the webhook)",
        app.act(
            &flow,
            assent_proto::authn::ActionRequest::authenticate_browser(),
        ),
    )
    .await
    .expect("entered");
    let request = phone.one_pending().await;
    promptly(
        "device decision (oob)",
        phone.device.answer(&request, Decision::Approve, None),
    )
    .await
    .expect("the approval is accepted");
    assert_eq!(
        app.poll(&flow, 5).await.status.name(),
        StatusName::MfaCompleted
    );

    // CIBA ping: the answer and the token response do not wait for the ping.
    let post = |path: &'static str, client: &'static str, form: Vec<(&'static str, String)>| {
        let request = app
            .http
            .post(app.url(path))
            .basic_auth(client, Some(SECRET))
            .form(&form);
        async move {
            let response = request.send().await.expect("an answer");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("a JSON body"))
        }
    };
    let start = |client: &'static str| {
        vec![
            ("scope", "openid".to_owned()),
            ("login_hint", "alice".to_owned()),
            (
                "client_notification_token",
                format!("{client}-token-0123456789"),
            ),
        ]
    };
    let (status, ack) = promptly(
        "backchannel request (push announced through the webhook)",
        post("/as/bc-auth.ciba", "rp-ping", start("rp-ping")),
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    let auth_req_id = ack["auth_req_id"]
        .as_str()
        .expect("an auth_req_id")
        .to_owned();
    let request = phone.one_pending().await;
    promptly(
        "device decision (ciba ping)",
        phone.device.answer(&request, Decision::Approve, None),
    )
    .await
    .expect("the approval is accepted");
    let token_form = vec![
        ("grant_type", "urn:openid:params:grant-type:ciba".to_owned()),
        ("auth_req_id", auth_req_id),
    ];
    let (status, tokens) = promptly(
        "token response (ciba ping)",
        post("/as/token.oauth2", "rp-ping", token_form),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());

    // CIBA push: the tokens are redeemed and pushed after the answer, not inside it.
    let (status, ack) = promptly(
        "backchannel request (ciba push)",
        post("/as/bc-auth.ciba", "rp-push", start("rp-push")),
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    let request = phone.one_pending().await;
    promptly(
        "device decision (ciba push)",
        phone.device.answer(&request, Decision::Approve, None),
    )
    .await
    .expect("the approval is accepted");

    // The failures are counted, off the requests: a refused connection fails at once
    // (the ping and push after their retries, the webhook on its first try).
    if matches!(endpoint, Endpoint::Dead) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let metrics = app.get("/metrics").await.text().await.expect("metrics");
            let counted = [
                r#"assent_ciba_notifications_total{mode="ping",outcome="failed"} 1"#,
                r#"assent_ciba_notifications_total{mode="push",outcome="failed"} 1"#,
                r#"assent_deliveries_failed_total{channel="push"} 3"#,
            ]
            .iter()
            .all(|line| metrics.contains(line));
            if counted {
                break;
            }
            assert!(Instant::now() < deadline, "{metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(hole);
}

async fn hung_notification_endpoints_delay_no_answer(backend: Backend<'_>) {
    slow_or_dead_endpoints_delay_no_answer(backend, Endpoint::Hung).await;
}

async fn dead_notification_endpoints_delay_no_answer(backend: Backend<'_>) {
    slow_or_dead_endpoints_delay_no_answer(backend, Endpoint::Dead).await;
}

on_both_backends!(
    hung_notification_endpoints_delay_no_answer,
    dead_notification_endpoints_delay_no_answer,
);
