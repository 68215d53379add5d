//! The foundation as an operator sees it: health, readiness, metrics, request ids,
//! configuration, the quick start, and surviving a Redis outage.

use std::time::{Duration, Instant};

use assent_proto::admin::AdminUser;
use assent_proto::ciba::Discovery;
use assent_proto::ops::{Health, HealthStatus};

use crate::support::{
    AssentProcess, Backend, RedisServer, TestApp, assent_command, problem, repo_root, unique,
};

#[tokio::test]
async fn health_and_readiness_on_memory() {
    let app = TestApp::spawn(Backend::Memory).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "memory");
}

#[tokio::test]
async fn demo_users_are_seeded_and_admin_needs_the_token() {
    let redis = RedisServer::start();
    for backend in [Backend::Memory, Backend::Redis(&redis)] {
        let app = TestApp::spawn(backend).await;
        let alice: serde_json::Value = app
            .admin_get("/admin/v1/users/alice")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(alice["email"], "alice@example.com");
        assert_eq!(alice["phone"], "+15555550101");
        let bob = app.admin_get("/admin/v1/users/bob").await;
        assert_eq!(bob.status(), 200);
        // alice has a CIBA user code: the operator learns that she has one, never its
        // hash (a short code falls to an offline guess from the hash alone).
        let raw = app
            .admin_get("/admin/v1/users/alice")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            !raw.contains("argon2") && !raw.contains("user_code_hash"),
            "{raw}"
        );
        let typed: AdminUser = serde_json::from_str(&raw).unwrap();
        assert!(typed.has_user_code);
        assert_eq!(typed.email.as_deref(), Some("alice@example.com"));

        let anonymous = app.get("/admin/v1/users/alice").await;
        assert_eq!(anonymous.status(), 401);
        assert!(anonymous.headers().contains_key("www-authenticate"));
        let wrong = app
            .http
            .get(app.url("/admin/v1/users/alice"))
            .bearer_auth("demo-admin-token-but-wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(problem(wrong).await["status"], 401);

        let missing = app.admin_get("/admin/v1/users/nobody").await;
        assert_eq!(missing.status(), 404);
        let bad = app.admin_get("/admin/v1/users/a%7Bb%7D").await;
        assert_eq!(bad.status(), 400);
        assert!(
            problem(bad).await["detail"]
                .as_str()
                .unwrap()
                .contains("user id")
        );
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = TestApp::spawn(Backend::Memory).await;
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "trace-42");
    // A hostile id (too long) is replaced, not echoed.
    let hostile = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    let made = hostile.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 16);
    let unmatched = app.get("/no/such/route").await;
    assert!(unmatched.headers().contains_key("x-request-id"));
    assert_eq!(problem(unmatched).await["status"], 404);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = TestApp::spawn(Backend::Memory).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/admin/v1/users/alice").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"assent_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"assent_http_requests_total{method="GET",route="/admin/v1/users/{userId}",status="401"} 1"#
    ));
    assert!(text.contains("assent_http_request_duration_seconds_bucket"));
    assert!(text.contains("assent_store_errors_total 0"));
}

#[tokio::test]
async fn redis_outage_answers_503_and_heals_without_restart() {
    let mut redis = RedisServer::start();
    let app = TestApp::spawn(Backend::Redis(&redis)).await;
    assert_eq!(app.admin_get("/admin/v1/users/alice").await.status(), 200);

    redis.stop();
    let started = Instant::now();
    let down = app.admin_get("/admin/v1/users/alice").await;
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    assert_eq!(problem(down).await["status"], 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers promptly, does not hang"
    );
    let not_ready = app.get("/readyz").await;
    assert_eq!(not_ready.status(), 503);
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "the process itself is alive"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("assent_store_errors_total 0"),
        "store errors counted"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("/readyz").await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "readiness recovers once Redis is back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healed = app.admin_get("/admin/v1/users/alice").await;
    assert_eq!(healed.status(), 200);
    let alice: serde_json::Value = healed.json().await.unwrap();
    assert_eq!(alice["username"], "alice");

    // Wake-ups flow again too: the pub/sub feed reconnected by itself, so a write made
    // through another client (another instance) reaches this instance's waiters.
    let other_instance = redis.store(&app.key_prefix).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut subscription = app.adapter.store().subscribe("probe");
        other_instance.notify("probe").await.unwrap();
        if subscription.wait(Duration::from_millis(500)).await {
            break;
        }
        assert!(Instant::now() < deadline, "the pub/sub feed recovers");
    }
}

#[tokio::test]
async fn quick_start_binary_serves_and_stops_on_sigterm() {
    let process = AssentProcess::serve(&["--log-format", "json"], &[]).await;
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{}/healthz", process.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{}/readyz", process.address))
        .header("x-request-id", "quickstart-1")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["store"],
        "memory"
    );

    let (status, logs) = process.terminate();
    assert!(
        status.success(),
        "graceful exit on SIGTERM: {status:?}\n{logs}"
    );
    let line = logs
        .lines()
        .find(|line| line.contains("quickstart-1"))
        .expect("the request id is on the request's log line");
    let line: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert_eq!(line["span"]["request_id"], "quickstart-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let process = AssentProcess::serve(
        &["--log-format", "json"],
        &[("ASSENT_LOG", "debug".to_owned())],
    )
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", process.address);
    let issued: serde_json::Value = http
        .post(url("/admin/v1/users/alice/pairing-keys"))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pairing_key = issued["pairingKey"].as_str().unwrap().to_owned();
    let phone = crate::support::pair_phone(&process.address, &pairing_key, "phone")
        .await
        .unwrap();
    let token = phone.signer().token().unwrap();
    http.get(url("/device/v1/pending"))
        .header("Authorization", format!("Device {token}"))
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = http
        .post(url("/adapter/v1/flows"))
        .basic_auth("demo-federation", Some("demo-federation-secret"))
        .json(&crate::support::oob_request("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["flowId"].is_string());
    // Wrong credentials are not logged either.
    http.get(url("/admin/v1/users/alice"))
        .bearer_auth("a-wrong-guess-at-the-token")
        .send()
        .await
        .unwrap();

    let (_, logs) = process.terminate();
    assert!(
        logs.contains("request completed"),
        "the requests were logged: {logs}"
    );
    for secret in [
        "demo-admin-token",
        "a-wrong-guess-at-the-token",
        "demo-federation-secret",
        "ZGVtby1mZWRlcmF0aW9uOmRlbW8tZmVkZXJhdGlvbi1zZWNyZXQ", // Basic credentials
        pairing_key.as_str(),
        token.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
}

#[tokio::test]
async fn assent_store_variable_selects_redis() {
    let redis = RedisServer::start();
    let process = AssentProcess::serve(&[], &[("ASSENT_STORE", redis.url())]).await;
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", process.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], "redis");
    // The demo users were written to that Redis, under the default prefix and hash tag.
    let store = redis.store("assent:").await;
    assert!(store.get("user:{u:alice}").await.unwrap().is_some());
}

fn config_check(config: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut command = assent_command();
    command.args(["config", "check", "--config"]).arg(config);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn config_check_names_the_offending_key() {
    let demo = repo_root().join("conf/assent.toml");
    assert!(
        config_check(&demo, &[]).0,
        "the shipped configuration is valid"
    );

    let text = std::fs::read_to_string(&demo).unwrap();
    let dir = std::env::temp_dir().join(unique("assent-conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong_type = dir.join("wrong-type.toml");
    std::fs::write(
        &wrong_type,
        text.replace("long_poll_max_secs = 30", "long_poll_max_secs = \"lots\""),
    )
    .unwrap();
    let (ok, message) = config_check(&wrong_type, &[]);
    assert!(!ok);
    assert!(message.contains("http.long_poll_max_secs"), "{message}");

    let (ok, message) = config_check(&demo, &[("ASSENT_STORE", "postgres://nope")]);
    assert!(!ok);
    assert!(
        message.contains("store") && message.contains("redis://"),
        "{message}"
    );

    let (ok, message) = config_check(&demo, &[("ASSENT_HTTP__BODY_LIMIT_BYTES", "huge")]);
    assert!(!ok);
    assert!(message.contains("http.body_limit_bytes"), "{message}");

    let sealed = ("ASSENT_SECRETS__DATA_KEY_ENV", "ASSENT_SECRET_DATA_KEY");
    let (ok, message) = config_check(&demo, &[("ASSENT_LISTEN", "0.0.0.0:9031"), sealed]);
    assert!(!ok, "demo secrets refused off loopback");
    assert!(message.contains("admin.token_sha256"), "{message}");
    let (ok, _) = config_check(
        &demo,
        &[
            ("ASSENT_LISTEN", "0.0.0.0:9031"),
            ("ASSENT_ALLOW_DEMO_SECRETS", "true"),
            sealed,
        ],
    );
    assert!(ok, "unless told so");
    // Off loopback, secrets at rest must be sealed with a data key, unless told so.
    let (ok, message) = config_check(
        &demo,
        &[
            ("ASSENT_LISTEN", "0.0.0.0:9031"),
            ("ASSENT_ALLOW_DEMO_SECRETS", "true"),
        ],
    );
    assert!(!ok);
    assert!(message.contains("secrets.data_key_env"), "{message}");
    let (ok, _) = config_check(
        &demo,
        &[
            ("ASSENT_LISTEN", "0.0.0.0:9031"),
            ("ASSENT_ALLOW_DEMO_SECRETS", "true"),
            ("ASSENT_SECRETS__ALLOW_UNSEALED", "true"),
        ],
    );
    assert!(ok);

    let typo = dir.join("typo.toml");
    std::fs::write(
        &typo,
        text.replace("allow_demo_secrets", "allow_demo_secretz"),
    )
    .unwrap();
    let (ok, message) = config_check(&typo, &[]);
    assert!(!ok);
    assert!(message.contains("allow_demo_secretz"), "{message}");
    let _ = std::fs::remove_dir_all(dir);
}

/// An empty directory of its own, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("assent-empty"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn admin_user(address: &str, id: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{address}/admin/v1/users/{id}"))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_from_any_directory_on_its_built_in_configuration() {
    let empty = ScratchDir::new();
    let process = AssentProcess::serve_in(&empty.0, &[], &[]).await;
    let ready = reqwest::get(format!("{}/readyz", process.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // The demo data came with it.
    let alice = admin_user(&process.address, "alice").await;
    assert_eq!(alice["email"], "alice@example.com");
    let (status, logs) = process.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("built-in conf/assent.toml"), "{logs}");

    let check = assent_command()
        .current_dir(&empty.0)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // `--config` still wins over the built-in one.
    let own = empty.0.join("own.toml");
    let text = std::fs::read_to_string(repo_root().join("conf/assent.toml")).unwrap();
    std::fs::write(&own, text.replace("alice@example.com", "alice@own.example")).unwrap();
    let own = own.display().to_string();
    let process = AssentProcess::serve_in(&empty.0, &["--config", &own], &[]).await;
    let alice = admin_user(&process.address, "alice").await;
    assert_eq!(alice["email"], "alice@own.example");
}

#[tokio::test]
async fn the_issuer_follows_the_listen_address() {
    // `AssentProcess` changes only `listen` (a free port), as a person would.
    let process = AssentProcess::serve(&[], &[]).await;
    let discovery: Discovery = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        process.address
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(discovery.issuer, process.address);
    assert_eq!(
        discovery.token_endpoint,
        format!("{}/as/token.oauth2", process.address)
    );
}

#[tokio::test]
async fn the_simulators_variables_do_not_stop_serve() {
    // What the README has a person export for `assent device`, in the same shell.
    let process = AssentProcess::serve(
        &[],
        &[("ASSENT_DEVICE_SERVER", "http://127.0.0.1:9031".to_owned())],
    )
    .await;
    let ready = reqwest::get(format!("{}/readyz", process.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_redis_and_is_ready_once_it_is_up() {
    const PASSWORD: &str = "hunter2-not-for-logs";
    let mut redis = RedisServer::reserve();
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port());
    // Nothing listens on that port yet; assent starts anyway, alive but not ready.
    let process = AssentProcess::serve(&["--log-format", "json"], &[("ASSENT_STORE", url)]).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", process.address)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let not_ready = get("/readyz").await.unwrap();
    assert_eq!(not_ready.status(), 503);
    assert_eq!(problem(not_ready).await["status"], 503);
    let started = Instant::now();
    let early = http
        .post(format!("{}/adapter/v1/flows", process.address))
        .basic_auth("demo-federation", Some("demo-federation-secret"))
        .json(&crate::support::oob_request("alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 503);
    assert!(early.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a quick answer, not a wait for Redis"
    );
    assert_eq!(get("/pf/JWKS").await.unwrap().status(), 503);

    redis.launch_with(&["--requirepass", PASSWORD]);
    let up = Instant::now();
    loop {
        let ready = get("/readyz").await.unwrap();
        if ready.status() == 200 {
            let health: Health = ready.json().await.unwrap();
            assert_eq!(health.status, HealthStatus::Ready);
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(5),
            "ready within a few seconds of Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The configured users were written once Redis answered, and a flow starts.
    assert_eq!(
        admin_user(&process.address, "alice").await["username"],
        "alice"
    );
    let created: serde_json::Value = http
        .post(format!("{}/adapter/v1/flows", process.address))
        .basic_auth("demo-federation", Some("demo-federation-secret"))
        .json(&crate::support::oob_request("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flow = created["flowId"].as_str().expect("a flow id");
    let state = get(&format!("/pf-ws/authn/flows/{flow}")).await.unwrap();
    assert_eq!(state.status(), 200);
    let jwks = get("/pf/JWKS").await.unwrap();
    assert_eq!(
        jwks.status(),
        200,
        "the signing keys were created on first use"
    );

    let (_, logs) = process.terminate();
    assert!(logs.contains("Redis is not reachable yet"), "{logs}");
    assert!(logs.contains("connected to Redis"), "{logs}");
    assert!(
        !logs.contains(PASSWORD),
        "the password leaked into the logs"
    );
}
