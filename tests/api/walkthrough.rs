//! The README's walk-throughs, run as a person pastes them (with the binary and address of
//! this test), and the device simulator driven from the command line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assent_proto::authn::{AuthnState, StatusName};

use crate::support::{AssentProcess, repo_root, unique};

/// Every ```sh block of the README's `## Walk-through...` sections, in README order, with
/// the heading of its section.
fn walk_through_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut heading = String::new();
    let mut block: Option<String> = None;
    for line in readme.lines() {
        match &mut block {
            Some(text) if line.trim_start().starts_with("```") => {
                blocks.push((heading.clone(), std::mem::take(text)));
                block = None;
            }
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None if line.starts_with("## ") => heading = line.to_owned(),
            None if line.trim_start() == "```sh" && heading.starts_with("## Walk-through") => {
                block = Some(String::new());
            }
            None => {}
        }
    }
    blocks
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique("assent-walk"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one walk-through printed, and whether it ran to its end.
struct Ran {
    heading: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

/// The walk-throughs [`check`] knows: each must still be in the README.
const CHECKED: &[&str] = &[
    "## Walk-through: a second factor by push",
    "## Walk-through: CIBA in poll mode",
    "## Walk-through: registering a device, and device authorization",
    "## Walk-through: QR sign-on, shared devices, new devices, one-time devices",
    "## Walk-through: passcodes, number matching and policy",
];

/// What the walk-through of `heading` must show beyond running to its end (a walk-through
/// not named here is only run).
fn check(heading: &str, stdout: &str) {
    let has = |text: &str| assert!(stdout.contains(text), "{heading}: {text}\n{stdout}");
    match heading {
        "## Walk-through: a second factor by push" => {
            has("paired device");
            has(r#""status":"PUSH_CONFIRMATION_WAITING""#);
            has("Approve transfer of €100 to Bob?");
            has("flow is MFA_COMPLETED");
            // continueAuthentication's answer is a state (it has `_links`); the pickup is not.
            has(r#""_links":{},"status":"COMPLETED""#);
            has(r#""status":"COMPLETED","subject":"alice""#);
            has("unpaired");
        }
        "## Walk-through: CIBA in poll mode" => {
            has(r#""error":"authorization_pending""#);
            has("flow is MFA_COMPLETED");
            has(r#""token_type":"Bearer""#);
            has(r#""refresh_token""#);
        }
        "## Walk-through: registering a device, and device authorization" => {
            has("paired device");
            has("with user bob");
            has(r#""resumeUrl":"demobank://assent/registered""#);
            has(r#""status":"COMPLETED""#);
        }
        "## Walk-through: QR sign-on, shared devices, new devices, one-time devices" => {
            has(r#""subject":"alice""#);
            has("USER_SELECTION_REQUIRED");
            has("device now paired with: alice, bob");
            assert_eq!(
                stdout.matches(r#""status":"COMPLETED""#).count(),
                3,
                "{stdout}"
            );
            // The primary and the kiosk approve.
            has("flow is MFA_COMPLETED");
            has("one-time device");
            has(r#""nickname":"Kitchen tablet""#);
            has("unpaired");
            assert_eq!(
                stdout.matches("with user alice").count(),
                2,
                "the phone, then the tablet the phone approved: {stdout}"
            );
        }
        "## Walk-through: passcodes, number matching and policy" => {
            has(r#""status":"OTP_REQUIRED""#);
            has(r#""status":"MFA_COMPLETED""#);
            has("pick the number your browser shows");
            has("Payroll will never ask you");
            has("flow is MFA_COMPLETED");
            let lines: Vec<&str> = stdout.lines().collect();
            let unpaired = lines
                .iter()
                .position(|line| line.ends_with(" unpaired"))
                .unwrap_or_default();
            let code = unpaired
                .checked_sub(1)
                .and_then(|at| lines.get(at))
                .copied()
                .unwrap_or_default();
            assert!(
                code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
                "the app's passcode is printed before the phone leaves: {stdout}"
            );
            // The hardware tokens: a YubiKey imported, an OATH token imported and resynced.
            has(r#""method":"YUBIKEY","target":"vvccccdedbjh""#);
            assert_eq!(lines.last().copied(), Some("204"), "the resync: {stdout}");
        }
        _ => {}
    }
}

/// Runs every walk-through in README order, each in a shell of its own (no variable
/// crosses from one to the next), all in one directory against one `assent serve`, as a
/// person pastes them into one terminal; a walk-through that fails does not stop the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walk_throughs_run_in_order_as_written() {
    let blocks = walk_through_blocks();
    assert!(blocks.len() >= 5, "the README's walk-throughs are found");
    let dir = scratch_dir();
    // The development sender's outbox sits where the README's commands run.
    let outbox = dir.join("assent-outbox.jsonl").display().to_string();
    let process = AssentProcess::serve(&[], &[("ASSENT_DELIVERY__FILE__PATH", outbox)]).await;
    let host = process.address.trim_start_matches("http://").to_owned();
    let mut ran: Vec<Ran> = Vec::new();
    for (heading, script) in blocks {
        let script = script
            .replace("localhost:9031", &host)
            .replace("cargo run -q --", env!("CARGO_BIN_EXE_assent"));
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&dir)
            .env("ASSENT_DEVICE_SERVER", &process.address)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match ran.last_mut() {
            // Two blocks under one heading are one walk-through.
            Some(last) if last.heading == heading => {
                last.ok &= output.status.success();
                last.stdout.push_str(&stdout);
                last.stderr.push_str(&stderr);
            }
            _ => ran.push(Ran {
                heading,
                ok: output.status.success(),
                stdout,
                stderr,
            }),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let failed: Vec<String> = ran
        .iter()
        .filter(|walk| !walk.ok)
        .map(|walk| format!("{}\n{}\n{}", walk.heading, walk.stdout, walk.stderr))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
    for heading in CHECKED {
        assert!(
            ran.iter().any(|walk| walk.heading == *heading),
            "{heading} is run"
        );
    }
    for walk in &ran {
        check(&walk.heading, &walk.stdout);
    }
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
