//! The README's walk-through, run as written (with the binary and address of this test),
//! and the device simulator driven from the command line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assent_proto::authn::{AuthnState, StatusName};

use crate::support::{AssentProcess, repo_root, unique};

/// The first ```sh block after `heading` in the README.
fn readme_block(heading: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split(heading)
        .nth(1)
        .expect("the README has the section");
    let block = section.split("```sh").nth(1).expect("a shell block");
    block.split("```").next().unwrap().to_owned()
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("assent-walk"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs README shell lines against a fresh `assent serve` (its own port, the binary
/// under test for `cargo run -q --`), in a scratch directory; returns what they printed.
async fn run_as_written(script: &str) -> String {
    let dir = scratch_dir();
    // The development sender's outbox sits where the README's commands run.
    let outbox = dir.join("assent-outbox.jsonl").display().to_string();
    let process = AssentProcess::serve(&[], &[("ASSENT_DELIVERY__FILE__PATH", outbox)]).await;
    let host = process.address.trim_start_matches("http://").to_owned();
    let script = script
        .replace("localhost:9031", &host)
        .replace("cargo run -q --", env!("CARGO_BIN_EXE_assent"));
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&dir)
        .env("ASSENT_DEVICE_SERVER", &process.address)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_through_works_as_written() {
    let stdout = run_as_written(&readme_block("## Walk-through")).await;
    assert!(stdout.contains("paired device"), "{stdout}");
    assert!(
        stdout.contains(r#""status":"PUSH_CONFIRMATION_WAITING""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("Approve transfer of €100 to Bob?"),
        "{stdout}"
    );
    assert!(stdout.contains("flow is MFA_COMPLETED"), "{stdout}");
    // continueAuthentication's answer is a state (it has `_links`); the pickup is not.
    assert!(
        stdout.contains(r#""_links":{},"status":"COMPLETED""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""status":"COMPLETED","subject":"alice""#),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_watches_and_answers_from_the_command_line() {
    let process = AssentProcess::serve(&[], &[]).await;
    let http = reqwest::Client::new();
    let dir = scratch_dir();
    let assent = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_assent"));
        command.current_dir(&dir);
        command
    };
    let key: serde_json::Value = http
        .post(format!(
            "{}/admin/v1/users/bob/pairing-keys",
            process.address
        ))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paired = assent()
        .args(["device", "pair", "--server", &process.address, "--key"])
        .arg(key["pairingKey"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(paired.status.success());
    let empty = assent().args(["device", "pending"]).output().unwrap();
    assert!(String::from_utf8_lossy(&empty.stdout).contains("no pending requests"));
    // A reader that stops reading (`| head -1`): the simulator ends quietly, no panic.
    let mut closed = assent()
        .args(["device", "pending"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(closed.stdout.take());
    let closed = closed.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(closed.status.success() && stderr.is_empty(), "{stderr}");

    let watcher = assent()
        .args(["device", "watch", "--auto", "deny", "--count", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let created: serde_json::Value = http
        .post(format!("{}/adapter/v1/flows", process.address))
        .basic_auth("demo-federation", Some("demo-federation-secret"))
        .json(&crate::support::oob_request("bob"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flow = created["flowId"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut binding = String::new();
    loop {
        let state: AuthnState = http
            .get(format!("{}/pf-ws/authn/flows/{flow}", process.address))
            .header("X-PF-Authn-API-State", binding.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state.status.name() == StatusName::PushConfirmationRejected {
            break;
        }
        binding = state.authn_api_state.clone().unwrap();
        // The browser enters, as the widget does: only then is the push sent.
        if state.status.name() == StatusName::AuthenticationRequired {
            let entered = http
                .post(format!("{}/pf-ws/authn/flows/{flow}", process.address))
                .header("X-PF-Authn-API-State", binding.clone())
                .header("X-XSRF-Header", "PingFederate")
                .header(
                    "Content-Type",
                    "application/vnd.pingidentity.authenticate+json",
                )
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(entered.status(), 200);
        }
        assert!(
            Instant::now() < deadline,
            "the watcher denies the request: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = watcher.wait_with_output().unwrap();
    let _ = std::fs::remove_file(dir.join("jar"));
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("denied"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_ciba_walk_through_works_as_written() {
    // The CIBA walk-through starts with the simulator paired, as the first one leaves it.
    let pairing = readme_block("## Walk-through: a second factor by push")
        .lines()
        .take_while(|line| !line.contains("The federation server"))
        .collect::<Vec<_>>()
        .join("\n");
    let script = format!(
        "{pairing}\n{}",
        readme_block("## Walk-through: CIBA in poll mode")
    );
    let stdout = run_as_written(&script).await;
    assert!(
        stdout.contains(r#""error":"authorization_pending""#),
        "{stdout}"
    );
    assert!(stdout.contains("flow is MFA_COMPLETED"), "{stdout}");
    assert!(stdout.contains(r#""token_type":"Bearer""#), "{stdout}");
    assert!(stdout.contains(r#""refresh_token""#), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_registration_walk_through_works_as_written() {
    let stdout = run_as_written(&readme_block(
        "## Walk-through: registering a device, and device authorization",
    ))
    .await;
    assert!(stdout.contains("paired device"), "{stdout}");
    assert!(stdout.contains("with user bob"), "{stdout}");
    assert!(
        stdout.contains(r#""resumeUrl":"demobank://assent/registered""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""status":"COMPLETED""#), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_device_flows_walk_through_works_as_written() {
    let stdout = run_as_written(&readme_block(
        "## Walk-through: QR sign-on, shared devices, new devices, one-time devices",
    ))
    .await;
    assert!(stdout.contains(r#""subject":"alice""#), "{stdout}");
    assert!(stdout.contains("USER_SELECTION_REQUIRED"), "{stdout}");
    assert!(
        stdout.contains("device now paired with: alice, bob"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches(r#""status":"COMPLETED""#).count(),
        3,
        "{stdout}"
    );
    assert!(
        stdout.contains("flow is MFA_COMPLETED"),
        "the primary and the kiosk approve: {stdout}"
    );
    assert!(stdout.contains("one-time device"), "{stdout}");
    assert!(
        stdout.contains(r#""nickname":"Kitchen tablet""#),
        "{stdout}"
    );
    assert!(stdout.contains("unpaired"), "{stdout}");
    assert_eq!(
        stdout.matches("with user alice").count(),
        2,
        "the phone, then the tablet the phone approved: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_passcode_walk_through_works_as_written() {
    let stdout = run_as_written(&readme_block(
        "## Walk-through: passcodes, number matching and policy",
    ))
    .await;
    assert!(stdout.contains(r#""status":"OTP_REQUIRED""#), "{stdout}");
    assert!(stdout.contains(r#""status":"MFA_COMPLETED""#), "{stdout}");
    assert!(
        stdout.contains("pick the number your browser shows"),
        "{stdout}"
    );
    assert!(stdout.contains("Payroll will never ask you"), "{stdout}");
    assert!(stdout.contains("flow is MFA_COMPLETED"), "{stdout}");
    let code = stdout.lines().last().unwrap_or_default();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "the app's passcode is printed last: {stdout}"
    );
}
