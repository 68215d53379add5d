//! The federation example (examples/federation) end to end in headless Chromium: its
//! relying party (openid-client) sends the browser to its OpenID provider (oidc-provider),
//! which checks alice's password, starts an assent flow through the Adapter API and sends
//! the browser to assent's hosted page; a simulated phone approves; the provider picks up
//! assent's result once and the relying party shows an ID token whose `amr` and `acr`
//! come from it. Before that, a sign-in cancelled at assent ends at the relying party with
//! `access_denied`. axe-core checks the provider's login page.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assent_core::flow::{ACR_MOBILE_PUSH, ApprovalMethod};
use assent_proto::admin::{AuditActor, FlowEvents};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::browser::{Browser, check_page, click};
use crate::support::{Backend, FEDERATION, TestApp, free_port, repo_root};

/// How long a page may take to move on.
const SCREEN: Duration = Duration::from_secs(20);

/// The claims the relying party shows from the ID token it received.
#[derive(Debug, Deserialize)]
struct IdTokenClaims {
    sub: String,
    iss: String,
    aud: String,
    amr: Vec<String>,
    acr: Option<String>,
}

/// One of the example's node servers, ended when dropped.
struct NodeServer {
    _child: Child,
}

impl NodeServer {
    /// Runs `script` of examples/federation with `env`, once it says it listens.
    async fn start(script: &str, env: &[(&str, String)]) -> Self {
        let directory = repo_root().join("examples/federation");
        assert!(
            directory.join("node_modules/oidc-provider").exists(),
            "run ./scripts/test, which installs the example (npm ci in examples/federation)"
        );
        let log = log_path(script);
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(&directory)
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = child.stdout.take().expect("its output");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(15), lines.next_line()).await;
        assert!(
            matches!(ready, Ok(Ok(Some(_)))),
            "{script} did not start; see {}",
            log.display()
        );
        // Keeps reading, so that the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { _child: child }
    }
}

fn log_path(script: &str) -> PathBuf {
    let directory = repo_root().join("target/federation");
    std::fs::create_dir_all(&directory).expect("target/federation");
    directory.join(Path::new(script).with_extension("log"))
}

/// Fills the login form and submits it as a person would.
async fn sign_in(browser: &Browser, username: &str, password: &str) {
    browser
        .run(
            "document.getElementById('username').value = arguments[0];
             document.getElementById('password').value = arguments[1];
             return true;",
            json!([username, password]),
        )
        .await;
    click(browser, "form button[type=submit]").await;
}

/// From the relying party's home page to assent's first page, through the provider's
/// login page with alice's password (on the `first` pass, axe-core checks the login page
/// and a wrong password is refused first). Returns the login page's URL and the flow id.
async fn to_assent(
    browser: &Browser,
    rp_url: &str,
    op_url: &str,
    app: &TestApp,
    first: bool,
) -> (String, String) {
    browser.goto(rp_url).await;
    browser.wait_for_text("Not signed in", SCREEN).await;
    click(browser, "a.button").await;
    browser
        .wait_for_text("to continue to Demo relying party", SCREEN)
        .await;
    let login = browser.current_url().await;
    assert!(
        login.starts_with(&format!("{op_url}/interaction/")),
        "{login}"
    );
    if first {
        check_page(browser, "federation-1-op-login").await;
        // A wrong password is refused by the provider itself: no flow at assent.
        sign_in(browser, "alice", "not-her-password").await;
        browser
            .wait_for_text("The username or password is incorrect.", SCREEN)
            .await;
        check_page(browser, "federation-2-op-login-refused").await;
    }
    sign_in(browser, "alice", "alice-demo-password").await;
    let flow_page = format!("{}/flows/", app.address);
    let url = browser
        .wait_for(
            "assent's hosted page",
            "return location.href.startsWith(arguments[0]) && location.href;",
            json!([flow_page]),
            SCREEN,
        )
        .await;
    browser.wait_for_text("Verify it's you", SCREEN).await;
    let flow = url.as_str().unwrap()[flow_page.len()..].to_owned();
    (login, flow)
}

/// How many times the demo federation server picked up `flow`'s result (the audit trail).
async fn pickups(app: &TestApp, flow: &str) -> usize {
    let events: FlowEvents = app
        .admin_get(&format!("/admin/v1/flows/{flow}/events"))
        .await
        .json()
        .await
        .expect("the flow's events");
    events
        .events
        .iter()
        .filter(|event| event.event == "result pickup")
        .inspect(|event| {
            assert_eq!(event.actor, AuditActor::FederationServer);
            assert_eq!(event.client_id.as_deref(), Some(FEDERATION.0));
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relying_party_signs_alice_in_through_the_federation_example_with_amr_from_assent() {
    let app = TestApp::spawn(Backend::Memory).await;
    let phone = app.pair_device("alice").await;
    let (op_port, rp_port) = (free_port(), free_port());
    let op_url = format!("http://127.0.0.1:{op_port}");
    let rp_url = format!("http://127.0.0.1:{rp_port}");
    let _op = NodeServer::start(
        "op.mjs",
        &[
            ("OP_PORT", op_port.to_string()),
            ("ASSENT_URL", app.address.clone()),
            ("ASSENT_CLIENT_ID", FEDERATION.0.to_owned()),
            ("ASSENT_CLIENT_SECRET", FEDERATION.1.to_owned()),
            ("RP_REDIRECT_URI", format!("{rp_url}/callback")),
        ],
    )
    .await;
    let _rp = NodeServer::start(
        "rp.mjs",
        &[
            ("RP_PORT", rp_port.to_string()),
            ("OP_ISSUER", op_url.clone()),
        ],
    )
    .await;
    let browser = Browser::start().await;

    // First the person cancels at assent: the relying party hears access_denied.
    let (login, cancelled) = to_assent(&browser, &rp_url, &op_url, &app, true).await;
    click(&browser, "form.secondary button").await;
    browser.wait_for_text("Sign-in canceled", SCREEN).await;
    // assent's page says to close the window; the person goes back to the provider
    // instead, at the flow's returnUrl.
    browser.goto(&format!("{login}/resume")).await;
    let error = browser
        .wait_for(
            "the relying party's refusal",
            "const error = document.getElementById('error'); return error && error.textContent;",
            json!([]),
            SCREEN,
        )
        .await;
    assert_eq!(error, "access_denied");
    assert!(
        browser
            .current_url()
            .await
            .starts_with(&format!("{rp_url}/callback?"))
    );
    assert_eq!(app.result(&cancelled).await.status(), 404);
    assert_eq!(
        pickups(&app, &cancelled).await,
        1,
        "picked up by the provider"
    );

    // Then alice signs in.
    let (_, flow) = to_assent(&browser, &rp_url, &op_url, &app, false).await;
    click(&browser, "button.primary").await;
    browser.wait_for_text("Check your device", SCREEN).await;

    let pending = phone.one_pending().await;
    assert_eq!(pending.user_id, "alice");
    assert_eq!(pending.application.name, "Demo relying party");
    phone
        .device
        .answer(&pending, assent_proto::device::Decision::Approve, None)
        .await
        .expect("the answer is taken");
    browser
        .wait_for_text("Authentication successful", SCREEN)
        .await;
    click(&browser, "button.primary").await;

    // Back through the provider to the relying party, which shows the ID token's claims.
    browser.wait_for_url(&format!("{rp_url}/"), SCREEN).await;
    let claims = browser
        .wait_for(
            "the ID token's claims",
            "const claims = document.getElementById('claims'); return claims && claims.textContent;",
            json!([]),
            SCREEN,
        )
        .await;
    let claims: IdTokenClaims = serde_json::from_str(claims.as_str().unwrap()).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iss, op_url);
    assert_eq!(claims.aud, "demo-rp");
    // The password the provider checked, then exactly what assent's result named for a push
    // approved with the device's key.
    let mut expected = vec!["pwd".to_owned()];
    expected.extend(
        ApprovalMethod::Push
            .amr()
            .iter()
            .map(|amr| (*amr).to_owned()),
    );
    assert_eq!(claims.amr, expected);
    assert!(claims.amr.iter().any(|amr| amr == "mfa"), "{claims:?}");
    assert_eq!(claims.acr.as_deref(), Some(ACR_MOBILE_PUSH));

    // The provider picked the result up, once: it is gone, and the trail has one pickup,
    // by the federation server.
    let again = app.result(&flow).await;
    assert_eq!(again.status(), 404);
    assert_eq!(pickups(&app, &flow).await, 1);
    app.stop().await;
}
