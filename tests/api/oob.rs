//! Out-of-band push and transaction approval, end to end: the federation server starts a
//! flow, the browser drives it as PingFederate's widget would, the device answers.

use std::time::{Duration, Instant};

use assent_proto::device::Decision;
use figment::Figment;
use serde_json::json;

use assent_proto::authn::{
    ActionRequest, AuthnState, DeviceType, ErrorBody, ErrorCode, StatusName,
};

use crate::support::{
    Backend, RedisServer, TestApp, expect_status, links, on_both_backends, oob_request, problem,
    transfer_request, unique,
};

on_both_backends!(
    whole_oob_flow_completes_and_the_result_is_picked_up_once,
    a_denial_is_rejected_and_final,
    with_two_devices_the_person_selects_and_manages_them,
    cancel_ends_the_flow,
    a_user_without_device_gets_mfa_failed,
    a_return_url_resumes,
    transaction_shows_the_rendered_template_and_binds_the_parameters,
    concurrent_answers_have_exactly_one_winner,
    a_replayed_device_token_is_refused,
    no_answer_times_out_and_the_person_may_retry,
    a_long_poll_is_capped_and_woken_by_the_answer,
    the_phones_long_poll_is_woken_by_a_push,
);

/// Waits until the instance reports `n` open long polls (so the test knows its poll is
/// really waiting before it acts).
async fn until_open_long_polls(app: &TestApp, n: u32) {
    let needle = format!("assent_open_long_polls {n}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .contains(&needle)
    {
        assert!(Instant::now() < deadline, "{needle}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_long_poll_is_capped_and_woken_by_the_answer(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("http.long_poll_max_secs", 4)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let poll = || async {
        let started = Instant::now();
        (app.poll(&flow, 60).await, started.elapsed())
    };
    // Nobody answers: the configured cap (4 s), not the asked 60 s, ends the wait.
    let (state, waited) = poll().await;
    assert_eq!(state.status.name(), StatusName::PushConfirmationWaiting);
    assert!(
        waited >= Duration::from_millis(3500) && waited < Duration::from_secs(15),
        "{waited:?}"
    );

    // The device answers while the poll waits: the poll returns at once.
    let approve = async {
        until_open_long_polls(&app, 1).await;
        phone.answer_pending(true).await
    };
    let ((state, waited), answer) = tokio::join!(poll(), approve);
    assert_eq!(answer, "MFA_COMPLETED");
    assert_eq!(state.status.name(), StatusName::MfaCompleted);
    assert!(
        waited < Duration::from_millis(3500),
        "woken, not timed out: {waited:?}"
    );
}

/// A phone waiting on its pending list hears of a push when it is sent, not when its
/// wait runs out.
async fn the_phones_long_poll_is_woken_by_a_push(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let listen = async {
        let started = Instant::now();
        let requests = phone.device.pending(20).await.expect("the pending list");
        (requests, started.elapsed())
    };
    let push = async {
        until_open_long_polls(&app, 1).await;
        app.start_flow(&oob_request("alice")).await
    };
    let ((requests, waited), flow) = tokio::join!(listen, push);
    assert_eq!(requests.len(), 1, "the push is listed: {requests:?}");
    assert_eq!(requests[0].auth_id.split('.').next(), Some(flow.as_str()));
    assert!(
        waited < Duration::from_secs(10),
        "woken by the push, not by the end of its 20 s wait: {waited:?}"
    );
}

async fn whole_oob_flow_completes_and_the_result_is_picked_up_once(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;

    let waiting = app.state(&flow).await;
    assert_eq!(waiting.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(waiting.id, flow);
    let push = expect_status!(waiting, PushConfirmationWaiting);
    assert_eq!(
        push.selected_device_ref
            .as_ref()
            .map(|device| device.id.as_str()),
        Some(phone.id())
    );
    assert_eq!(
        links(&waiting),
        ["cancelAuthentication", "poll", "selectDevice"]
    );

    // Before the flow ends the federation server is told where it stands.
    let early = app.result(&flow).await;
    assert_eq!(early.status(), 409);
    assert_eq!(
        problem(early).await["flowStatus"],
        "PUSH_CONFIRMATION_WAITING"
    );

    let request = phone.one_pending().await;
    assert_eq!(request.application.name, "Demo Bank");
    assert_eq!(request.client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(request.kind, "oob");
    assert_eq!(
        phone.device.approve(&request).await.unwrap().status,
        "MFA_COMPLETED"
    );
    assert!(
        phone.pending(0).await.is_empty(),
        "answered requests leave the list"
    );

    let completed = app.act_ok(&flow, ActionRequest::Poll).await;
    assert_eq!(completed.status.name(), StatusName::MfaCompleted);
    assert_eq!(links(&completed), ["continueAuthentication"]);
    // The widget sends `{}` for continueAuthentication.
    let done = app
        .act_raw(&flow, "continueAuthentication", Some(json!({})))
        .await;
    assert_eq!(done.status(), 200);
    let done: AuthnState = done.json().await.unwrap();
    assert_eq!(done.status.name(), StatusName::Completed);
    assert!(links(&done).is_empty());

    let result = app.result(&flow).await;
    assert_eq!(result.status(), 200);
    let result: serde_json::Value = result.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["method"], "push");
    assert_eq!(result["deviceId"], phone.id());
    assert_eq!(result["amr"], json!(["mfa", "swk", "user"]));
    assert!(result["acr"].as_str().is_some());
    assert!(result["completedAt"].as_u64().is_some());
    assert_eq!(
        app.result(&flow).await.status(),
        404,
        "a second pickup finds nothing"
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"assent_flows_started_total{kind="oob"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"assent_flows_finished_total{kind="oob",outcome="completed"} 1"#));
    assert!(
        metrics.contains(r#"assent_flow_decision_seconds_count{decision="approve",kind="oob"} 1"#)
    );
}

async fn a_denial_is_rejected_and_final(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_eq!(
        phone.answer_pending(false).await,
        "PUSH_CONFIRMATION_REJECTED"
    );

    let rejected = app.state(&flow).await;
    assert_eq!(rejected.status.name(), StatusName::PushConfirmationRejected);
    assert_eq!(links(&rejected), ["cancelAuthentication"]);
    // A denial is final: the federation server can read it without waiting for the browser.
    let early: serde_json::Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(early["status"], "FAILED");
    assert!(early["reason"].as_str().unwrap().contains("denied"));
    let retry = app
        .act_err(&flow, ActionRequest::select_device(phone.id()))
        .await;
    assert_eq!(retry.status, 400);
    assert_eq!(retry.body.code, ErrorCode::InvalidActionId);

    let failed = app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    assert_eq!(failed.status.name(), StatusName::Failed);
    assert_eq!(app.result(&flow).await.status(), 404, "picked up once");
    assert_eq!(early["amr"], json!([]));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"assent_flows_finished_total{kind="oob",outcome="rejected"} 1"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"outcome="failed""#),
        "the cancel after a denial is not a second outcome"
    );
}

async fn with_two_devices_the_person_selects_and_manages_them(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new()
            .merge(("policy.manage_devices_in_flow", true))
            // With several devices the person is asked (the default goes to the primary).
            .merge(("mfa.device_selection", "prompt")),
    )
    .await;
    let first = app.pair_device("bob").await;
    let second = app.pair_device("bob").await;
    let flow = app.start_flow(&oob_request("bob")).await;

    let selection = app.state(&flow).await;
    assert_eq!(selection.status.name(), StatusName::DeviceSelectionRequired);
    let choice = expect_status!(selection, DeviceSelectionRequired);
    assert!(choice.manage_devices_allowed);
    assert_eq!(
        links(&selection),
        [
            "cancelAuthentication",
            "removeDevice",
            "selectDevice",
            "setDefaultDevice",
            "updateDeviceNickname"
        ]
    );
    let devices = &choice.devices;
    assert_eq!(devices.len(), 2);
    for device in devices {
        assert_eq!(device.device_type, DeviceType::Android);
        assert!(device.usable);
        assert!(!device.target.is_empty());
    }
    assert!(
        first.pending(0).await.is_empty(),
        "nothing is pushed before a choice"
    );

    let renamed = app
        .act_ok(
            &flow,
            ActionRequest::update_device_nickname(second.id(), "Work phone"),
        )
        .await;
    let device = |state: &AuthnState, id: &str| {
        state
            .status
            .devices()
            .iter()
            .find(|device| device.id == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        device(&renamed, second.id()).nickname.as_deref(),
        Some("Work phone")
    );
    let defaulted = app
        .act_ok(&flow, ActionRequest::set_default_device(second.id()))
        .await;
    assert!(device(&defaulted, second.id()).default);
    assert!(!device(&defaulted, first.id()).default);

    let waiting = app
        .act_ok(&flow, ActionRequest::select_device(second.id()))
        .await;
    assert_eq!(waiting.status.name(), StatusName::PushConfirmationWaiting);
    let push = expect_status!(waiting, PushConfirmationWaiting);
    assert_eq!(
        push.selected_device_ref
            .as_ref()
            .map(|device| device.id.as_str()),
        Some(second.id())
    );
    assert!(push.change_device_permitted);
    assert!(
        first.pending(0).await.is_empty(),
        "only the chosen device is asked"
    );
    // Changing device moves the request: the first push is withdrawn.
    app.act_ok(&flow, ActionRequest::select_device(first.id()))
        .await;
    assert!(second.pending(0).await.is_empty());
    assert_eq!(first.answer_pending(true).await, "MFA_COMPLETED");

    // Removing a device from a fresh flow unpairs it for good.
    let again = app.start_flow(&oob_request("bob")).await;
    let removed = app
        .act_ok(&again, ActionRequest::remove_device(first.id()))
        .await;
    assert_eq!(
        expect_status!(removed, DeviceSelectionRequired)
            .devices
            .len(),
        1
    );
    let unpaired = app
        .http
        .get(app.url("/device/v1/pending"))
        .header("Authorization", first.authorization())
        .send()
        .await
        .unwrap();
    assert_eq!(unpaired.status(), 401);
}

async fn cancel_ends_the_flow(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    // The widget posts cancelAuthentication with no body at all.
    let canceled = app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    assert_eq!(canceled.status.name(), StatusName::Canceled);
    assert!(
        phone.pending(0).await.is_empty(),
        "a canceled request is withdrawn"
    );
    let result: serde_json::Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "CANCELED");
}

async fn a_user_without_device_gets_mfa_failed(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let newcomer = unique("carol");
    let flow = app.start_flow(&oob_request(&newcomer)).await;
    let failed = app.state(&flow).await;
    assert_eq!(failed.status.name(), StatusName::MfaFailed);
    assert!(
        expect_status!(failed, MfaFailed)
            .user_message
            .contains("no paired device")
    );
    assert_eq!(links(&failed), ["cancelAuthentication"]);
    // The user was created just in time.
    let user: serde_json::Value = app
        .admin_get(&format!("/admin/v1/users/{newcomer}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["email"], format!("{newcomer}@example.com"));
}

async fn a_return_url_resumes(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let mut request = oob_request("alice");
    request["returnUrl"] = json!("https://idp.example/resume/abc");
    let flow = app.start_flow(&request).await;
    phone.answer_pending(true).await;
    let resumed = app
        .act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(resumed.status.name(), StatusName::Resume);
    assert_eq!(
        expect_status!(resumed, Resume).resume_url,
        "https://idp.example/resume/abc"
    );
    let result: serde_json::Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED");
}

async fn transaction_shows_the_rendered_template_and_binds_the_parameters(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app
        .start_flow(&transfer_request("alice", "€1,000", "Mallory Ltd"))
        .await;
    let request = phone.one_pending().await;
    assert_eq!(request.kind, "transaction");
    assert_eq!(request.title, "Approve transfer");
    assert_eq!(request.body, "Approve transfer of €1,000 to Mallory Ltd?");

    // A proof over other parameters (what a tampered app would have shown) is refused.
    let mut altered = request.clone();
    altered.dynamic_params.insert("amount".into(), "€1".into());
    let refused = phone
        .device
        .approve(&altered)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("400") && refused.contains("parameters"),
        "{refused}"
    );
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting,
        "flow untouched"
    );

    assert_eq!(
        phone.device.approve(&request).await.unwrap().status,
        "MFA_COMPLETED"
    );
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let result: serde_json::Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(
        result["dynamicParams"],
        json!({ "amount": "€1,000", "payee": "Mallory Ltd" })
    );
}

async fn concurrent_answers_have_exactly_one_winner(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    for decisions in [
        [Decision::Approve, Decision::Approve],
        [Decision::Approve, Decision::Deny],
    ] {
        let flow = app.start_flow(&oob_request("alice")).await;
        let request = phone.one_pending().await;
        let (a, b) = tokio::join!(
            phone.device.answer(&request, decisions[0], None),
            phone.device.answer(&request, decisions[1], None)
        );
        let outcomes = [a.is_ok(), b.is_ok()];
        assert_eq!(
            outcomes.iter().filter(|ok| **ok).count(),
            1,
            "one winner: {a:?} {b:?}"
        );
        let loser = if outcomes[0] {
            b.unwrap_err()
        } else {
            a.unwrap_err()
        }
        .to_string();
        assert!(loser.contains("409"), "the loser gets a conflict: {loser}");
        let winner = if outcomes[0] {
            decisions[0]
        } else {
            decisions[1]
        };
        let expected = match winner {
            Decision::Approve => StatusName::MfaCompleted,
            Decision::Deny => StatusName::PushConfirmationRejected,
        };
        assert_eq!(app.state(&flow).await.status.name(), expected);
        let _ = app.act(&flow, ActionRequest::CancelAuthentication).await;
    }
}

async fn a_replayed_device_token_is_refused(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let authorization = phone.authorization();
    let pending = |authorization: String| {
        app.http
            .get(app.url("/device/v1/pending"))
            .header("Authorization", authorization)
            .send()
    };
    assert_eq!(pending(authorization.clone()).await.unwrap().status(), 200);
    let replay = pending(authorization).await.unwrap();
    assert_eq!(replay.status(), 401);
    assert!(
        problem(replay).await["detail"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
}

async fn no_answer_times_out_and_the_person_may_retry(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.push_timeout_secs", 1)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let request = phone.one_pending().await;
    let waiting = app.state(&flow).await;
    assert!(
        !expect_status!(waiting, PushConfirmationWaiting)
            .device
            .as_ref()
            .unwrap()
            .otp_enabled,
        "no passcode while the push waits, unless useCode"
    );
    // A long poll returns by the push's own time-out, not the requested wait.
    let started = Instant::now();
    let timed_out = app.poll(&flow, 20).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        timed_out.status.name(),
        StatusName::PushConfirmationTimedOut
    );
    // OTP fallback (on by default): the app's own passcode may be typed instead, and the
    // widget offers "Use passcode" for a device with otpEnabled.
    assert_eq!(
        links(&timed_out),
        ["cancelAuthentication", "checkOtp", "selectDevice"]
    );
    assert!(
        expect_status!(timed_out, PushConfirmationTimedOut)
            .device
            .as_ref()
            .unwrap()
            .otp_enabled
    );

    let late = phone
        .device
        .approve(&request)
        .await
        .unwrap_err()
        .to_string();
    assert!(late.contains("409"), "{late}");
    assert!(
        phone.pending(0).await.is_empty(),
        "expired requests leave the list"
    );

    let retried = app
        .act_ok(&flow, ActionRequest::select_device(phone.id()))
        .await;
    assert_eq!(retried.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_an_approval_through_another_instance() {
    let redis = RedisServer::start();
    let prefix = unique("shared");
    let browser_side = TestApp::spawn_with(Backend::Redis(&redis), &prefix, Figment::new()).await;
    let device_side = TestApp::spawn_with(Backend::Redis(&redis), &prefix, Figment::new()).await;
    let phone = device_side.pair_device("alice").await;
    let flow = browser_side.start_flow(&oob_request("alice")).await;

    let poll = async {
        let started = Instant::now();
        let state = browser_side
            .http
            .post(browser_side.url(&format!("/pf-ws/authn/flows/{flow}?action=poll&wait=25")))
            .header("X-XSRF-Header", "x")
            // The browser that entered the flow (and so bound it) polls.
            .header(
                "X-PF-Authn-API-State",
                browser_side.binding(&flow).expect("bound"),
            )
            .header("Content-Type", "application/json")
            .send()
            .await
            .unwrap()
            .json::<AuthnState>()
            .await
            .unwrap();
        (state, started.elapsed())
    };
    let approve = async {
        // Only once the poll is really waiting on the other instance.
        until_open_long_polls(&browser_side, 1).await;
        phone.answer_pending(true).await
    };
    let ((state, waited), answer) = tokio::join!(poll, approve);
    assert_eq!(answer, "MFA_COMPLETED");
    assert_eq!(state.status.name(), StatusName::MfaCompleted);
    assert!(
        waited < Duration::from_secs(10),
        "woken by the approval, not the deadline: {waited:?}"
    );
}

/// DESIGN.md: "a completed out-of-band flow should cost about ten Redis commands". Counted
/// (not timed) with `INFO commandstats`, over the whole flow through the real APIs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_flow_costs_few_redis_round_trips() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(Backend::Redis(&redis)).await;
    let phone = app.pair_device("alice").await;
    // A returning user: the federation server has sent this profile before.
    let warm_up = app.start_flow(&oob_request("alice")).await;
    phone.answer_pending(false).await;
    app.act_ok(&warm_up, ActionRequest::CancelAuthentication)
        .await;
    redis.command(&["CONFIG", "RESETSTAT"]);
    let monitor = redis.monitor();

    let flow = app.start_flow(&oob_request("alice")).await;
    let request = phone.device.pending(0).await.unwrap().remove(0);
    phone.device.approve(&request).await.unwrap();
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::MfaCompleted
    );
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(app.result(&flow).await.status(), 200);

    // Round trips: every command assent sent (a script is one `evalsha`), whatever its
    // name, as MONITOR saw it; commands run inside scripts are not round trips.
    let sent = monitor.stop();
    let round_trips = sent.len();
    let stats: Vec<(String, u64)> = redis
        .command_stats()
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "info" | "config|resetstat" | "monitor"))
        .collect();
    let total: u64 = stats.iter().map(|(_, calls)| calls).sum();
    println!("round trips for one completed OOB flow ({round_trips}): {sent:?}");
    println!("commands including script internals ({total}): {stats:?}");
    assert!(
        !sent.iter().any(|command| command == "publish"),
        "wake-ups are published inside the transition's script: {sent:?}"
    );
    // The user's passcode devices are read when the flow is entered, and the first GET
    // writes the binding of the flow to its browser. Entering (`authenticate {}`) is one
    // action more than before it existed: a read of the flow, its commit, and the profile
    // read that policy needs (backup addresses), where the start used to do that work. The
    // push counts against the user's push limit (on by default against push bombing: one
    // atomic script).
    // 27 round trips before the user's slot was read in one script when the flow is
    // entered (the user, the device set, the default device and the passcode devices were
    // four round trips, now one: see `entering_a_flow_reads_the_user_in_one_round_trip`),
    // and before each change after the first GET (`authenticate {}`, the approval,
    // continue, the pickup) committed against the version this instance last saw, without
    // a read first.
    // 21 since the audit trail (issue 15): the flow enters its user's timeline at the
    // start, on the user's slot (`{u:user}`), which the flow's insert cannot write. Each
    // event rides in its commit's script: no round trip for those.
    assert!(round_trips <= 21, "the hot path stays lean: {sent:?}");
    // The device's JWT ids are spent with one `SET NX PX` each (they were a script of
    // three commands: 58 in all before). The push's listing publishes the device's wake-up
    // in its script (one command; it had been lost, and a phone's long poll heard of a
    // push only when its wait ran out).
    // 59 since the audit trail: an `RPUSH` per event in its commit's script (5), the
    // list's `PEXPIRE` when the start creates it, and the user's timeline (`EVALSHA`,
    // `ZADD`, `ZREMRANGEBYSCORE`, `PEXPIRE`).
    assert!(total <= 59, "commands: {stats:?}");
}

/// `authenticate {}` alone: the user's slot in one read (profile, device set, default
/// device, passcode devices), each device's record, the push limit, the commit and the
/// push's listing. The flow is not read: the browser's GET left its latest version in
/// this instance's cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entering_a_flow_reads_the_user_in_one_round_trip() {
    let redis = RedisServer::start();
    let app = TestApp::spawn(Backend::Redis(&redis)).await;
    app.pair_device("alice").await;
    let enter = || async {
        let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
        app.state(&flow).await;
        let monitor = redis.monitor();
        let entered = app
            .act_ok(&flow, ActionRequest::authenticate_browser())
            .await;
        let sent = monitor.stop();
        assert_eq!(entered.status.name(), StatusName::PushConfirmationWaiting);
        app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
        sent
    };
    // The first entry loads the scripts.
    enter().await;

    let sent = enter().await;
    println!("round trips for authenticate {{}}, one device: {sent:?}");
    // 9 before: `HMGET user`, `SMEMBERS devices`, `HMGET default-device` and `HMGET
    // otp-devices` were four, and the flow was read before its commit.
    assert_eq!(
        sent,
        ["evalsha", "hmget", "evalsha", "evalsha", "evalsha"],
        "the user's slot, the device, the push limit, the commit, the listing"
    );

    // Each further device is one read more: device records live on their own slots.
    app.pair_device("alice").await;
    let sent = enter().await;
    println!("round trips for authenticate {{}}, two devices: {sent:?}");
    assert_eq!(sent.len(), 6, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_flow_cannot_manage_devices() {
    // The person is asked to pick (`prompt`): the list is where managing would be offered.
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        Figment::new().merge(("mfa.device_selection", "prompt")),
    )
    .await;
    let first = app.pair_device("bob").await;
    let _second = app.pair_device("bob").await;
    let flow = app.start_flow(&oob_request("bob")).await;
    let selection = app.state(&flow).await;
    assert!(!expect_status!(selection, DeviceSelectionRequired).manage_devices_allowed);
    assert_eq!(links(&selection), ["cancelAuthentication", "selectDevice"]);
    let remove = app
        .act_err(&flow, ActionRequest::remove_device(first.id()))
        .await;
    assert_eq!(remove.status, 400);
    assert_eq!(remove.body.code, ErrorCode::InvalidActionId);
    assert_eq!(app.state(&flow).await.status.devices().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_per_flow_are_capped() {
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        Figment::new().merge(("policy.max_pushes_per_flow", 2)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let select = || app.act(&flow, ActionRequest::select_device(phone.id()));
    assert!(select().await.is_ok(), "the second push");
    let third = select().await.unwrap_err();
    assert_eq!(third.status, 429);
    assert_eq!(third.body.code, ErrorCode::RequestFailed);
    assert_eq!(
        phone.pending(0).await.len(),
        1,
        "still one request on the phone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_as_the_first_request_binds_the_flow() {
    let app = TestApp::spawn(Backend::Memory).await;
    app.pair_device("alice").await;
    let stranger = reqwest::Client::new();
    let post = |flow: &str, action: &str, state: Option<&str>| {
        let mut request = stranger
            .post(app.url(&format!("/pf-ws/authn/flows/{flow}")))
            .header("X-XSRF-Header", "x")
            .header(
                "Content-Type",
                format!("application/vnd.pingidentity.{action}+json"),
            );
        if let Some(state) = state {
            request = request.header("X-PF-Authn-API-State", state.to_owned());
        }
        if action == "authenticate" {
            request = request.body("{}");
        }
        request.send()
    };

    // Nobody has read the flow: a POST (here the widget's `authenticate {}`) binds it to
    // whoever sent it, who gets the secret (and a cookie) as a GET would.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let first = post(&flow, "authenticate", None).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().contains_key("set-cookie"));
    let first: AuthnState = first.json().await.unwrap();
    let secret = first.authn_api_state.clone().expect("the binding secret");
    // A second browser without the cookie or the state is refused, for reads and acts.
    let other = app
        .http
        .get(app.url(&format!("/pf-ws/authn/flows/{flow}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let hijack = post(&flow, "cancelAuthentication", Some("guessed"))
        .await
        .unwrap();
    assert_eq!(hijack.status(), 403);
    let hijack = post(&flow, "cancelAuthentication", None).await.unwrap();
    assert_eq!(hijack.status(), 403);
    let body: ErrorBody = hijack.json().await.unwrap();
    assert_eq!(body.code, ErrorCode::InvalidRequest);
    let owner = post(&flow, "poll", Some(&secret)).await.unwrap();
    assert_eq!(owner.status(), 200);
    assert_eq!(
        owner.json::<AuthnState>().await.unwrap().status.name(),
        StatusName::PushConfirmationWaiting,
        "untouched by the others"
    );

    // The same for an action that ends the flow: the canceling client holds it.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let first = post(&flow, "cancelAuthentication", None).await.unwrap();
    assert_eq!(first.status(), 200);
    let first: AuthnState = first.json().await.unwrap();
    assert_eq!(first.status.name(), StatusName::Canceled);
    assert!(first.authn_api_state.is_some());
    let other = app
        .http
        .get(app.url(&format!("/pf-ws/authn/flows/{flow}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_bound_to_the_client_that_first_reads_it() {
    let app = TestApp::spawn(Backend::Memory).await;
    app.pair_device("alice").await;
    let stranger = reqwest::Client::new();

    // Cookieless: the state carries the secret; the flow id alone no longer suffices.
    let flow = app.start_flow(&oob_request("alice")).await;
    let state = app.state(&flow).await;
    let secret = state.authn_api_state.clone().unwrap();
    assert!(secret.len() >= 32);
    let url = app.url(&format!("/pf-ws/authn/flows/{flow}"));
    let peek = stranger.get(&url).send().await.unwrap();
    assert_eq!(peek.status(), 403);
    let cancel = |state: Option<&str>| {
        let mut request = stranger.post(&url).header("X-XSRF-Header", "x").header(
            "Content-Type",
            "application/vnd.pingidentity.cancelAuthentication+json",
        );
        if let Some(state) = state {
            request = request.header("X-PF-Authn-API-State", state.to_owned());
        }
        request.send()
    };
    let hijack = cancel(Some("guessed-state")).await.unwrap();
    assert_eq!(hijack.status(), 403);
    let body: ErrorBody = hijack.json().await.unwrap();
    assert_eq!(body.code, ErrorCode::InvalidRequest);
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting,
        "untouched"
    );
    let owner = cancel(Some(&secret)).await.unwrap();
    assert_eq!(owner.status(), 200);
    assert_eq!(
        owner.json::<AuthnState>().await.unwrap().status.name(),
        StatusName::Canceled
    );

    // Browsers: the binding GET sets an HttpOnly cookie scoped to the flow.
    let flow = app.start_flow_unauthenticated(&oob_request("alice")).await;
    let url = app.url(&format!("/pf-ws/authn/flows/{flow}"));
    let first = stranger.get(&url).send().await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(
        cookie.contains(&format!("Path=/pf-ws/authn/flows/{flow}")),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let again = stranger
        .get(&url)
        .header("Cookie", pair.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(!again.headers().contains_key("set-cookie"), "bound once");
    let other = app.http.get(&url).send().await.unwrap();
    assert_eq!(other.status(), 403, "another client is refused");
}
