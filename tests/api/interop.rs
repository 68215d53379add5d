//! Interoperability: openid-client (panva/openid-client, the reference OpenID client for
//! JavaScript, pinned in tests/interop) runs a whole CIBA poll-mode flow against assent,
//! from discovery to an ID token whose signature it checks through `/pf/JWKS`.

use std::process::Stdio;
use std::time::Duration;

use figment::Figment;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{Backend, TestApp, repo_root, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_a_ciba_poll_flow() {
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        Figment::new().merge(("ciba.poll_interval_secs", 1)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let interop = repo_root().join("tests/interop");
    assert!(
        interop.join("node_modules/openid-client").exists(),
        "run ./scripts/test, which installs the interop clients (npm ci in tests/interop)"
    );
    let mut client = tokio::process::Command::new("node")
        .arg("ciba-poll.mjs")
        .current_dir(&interop)
        .env("ISSUER", &app.address)
        .env("CLIENT_ID", "demo-ciba-poll")
        .env("CLIENT_SECRET", "demo-ciba-secret")
        .env("LOGIN_HINT", "alice@example.com")
        .env("BINDING_MESSAGE", "Interop 1")
        .env("SCOPE", "openid profile email")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let started: serde_json::Value = serde_json::from_str(
        &tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("openid-client starts the request")
            .unwrap()
            .unwrap_or_default(),
    )
    .expect("a JSON line with the auth_req_id");
    let request = phone.one_pending().await;
    assert_eq!(
        assent_core::ids::AuthId::parse(&request.auth_id)
            .unwrap()
            .flow()
            .as_str(),
        started["auth_req_id"].as_str().unwrap()
    );
    assert!(request.body.contains("Interop 1"));
    phone.device.approve(&request).await.unwrap();

    let finished = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("openid-client finishes polling")
        .unwrap();
    let output = client.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openid-client failed: {stderr}");
    let result: serde_json::Value = serde_json::from_str(&finished.unwrap_or_default()).unwrap();
    assert_eq!(result["sub"], "alice");
    assert_eq!(result["id_token_claims"]["iss"], app.address.as_str());
    assert_eq!(result["id_token_claims"]["aud"], "demo-ciba-poll");
    assert_eq!(result["id_token_claims"]["email"], "alice@example.com");
    assert_eq!(result["token_type"], "bearer");
    assert_eq!(result["has_access_token"], true);
}
