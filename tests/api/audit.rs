//! Issue 15's per-flow audit trail: who changed each flow, from where, read back through
//! the Admin API; and its line on the `audit` log target.

use std::time::Duration;

use assent_proto::admin::{AuditActor, AuditEvent, FlowEvents, UserEvents};
use assent_proto::authn::{ActionRequest, StatusName};

use crate::pages::PageBrowser;
use crate::support::{
    ADMIN_TOKEN, AssentProcess, Backend, TestApp, on_both_backends, oob_request, problem,
    transfer_request, unique,
};

on_both_backends!(
    an_approved_oob_flow_names_each_actor_in_order,
    a_users_trail_pages_their_flows_newest_first,
    bad_paging_and_unknown_flows_are_refused,
    a_qr_sign_on_through_the_pages_names_the_scanning_device,
    a_transaction_approved_through_the_pages_has_its_trail,
    a_registration_names_the_paired_device,
    an_unpairing_is_the_devices_or_the_operators,
);

const BROWSER_AGENT: &str = "AuditTestBrowser/1.0 (X11; Linux)";

pub(crate) async fn flow_events(app: &TestApp, flow: &str, query: &str) -> FlowEvents {
    let response = app
        .admin_get(&format!("/admin/v1/flows/{flow}/events{query}"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a page of events")
}

async fn user_events(app: &TestApp, user: &str, query: &str) -> UserEvents {
    let response = app
        .admin_get(&format!("/admin/v1/users/{user}/events{query}"))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("a page of flows")
}

/// `authenticate {}` from a browser that names itself, bound as the test client is.
async fn enter_with_user_agent(app: &TestApp, flow: &str) {
    assert_eq!(
        app.state(flow).await.status.name(),
        StatusName::AuthenticationRequired
    );
    let response = app
        .http
        .post(app.url(&format!("/pf-ws/authn/flows/{flow}")))
        .header("X-XSRF-Header", "PingFederate")
        .header("User-Agent", BROWSER_AGENT)
        .header(
            "Content-Type",
            "application/vnd.pingidentity.authenticate+json",
        )
        .header("X-PF-Authn-API-State", app.binding(flow).expect("bound"))
        .body("{}")
        .send()
        .await
        .expect("the request reaches the server");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// The trail of `flow` driven through the pages in Chromium, oldest first, as (event,
/// actor): every browser step carries Chromium's user agent and the loopback address.
pub(crate) async fn browser_trail(app: &TestApp, flow: &str) -> Vec<(String, AuditActor)> {
    let mut events = flow_events(app, flow, "").await.events;
    events.reverse();
    for event in events
        .iter()
        .filter(|event| event.actor == AuditActor::Browser)
    {
        let agent = event.user_agent.as_deref().unwrap_or_default();
        assert!(agent.contains("Chrome"), "{event:?}");
        assert_eq!(event.ip.as_deref(), Some("127.0.0.1"), "{event:?}");
    }
    events
        .into_iter()
        .map(|event| (event.event, event.actor))
        .collect()
}

pub(crate) fn summary(events: &[AuditEvent]) -> Vec<(&str, AuditActor)> {
    events
        .iter()
        .map(|event| (event.event.as_str(), event.actor))
        .collect()
}

async fn an_approved_oob_flow_names_each_actor_in_order(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("bob").await;
    let flow = app.start_flow_unauthenticated(&oob_request("bob")).await;
    enter_with_user_agent(&app, &flow).await;
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(app.result(&flow).await.status(), 200);

    let trail = flow_events(&app, &flow, "").await;
    assert_eq!(trail.next_before, None);
    let events = trail.events;
    assert_eq!(
        summary(&events),
        [
            ("result pickup", AuditActor::FederationServer),
            ("continueAuthentication", AuditActor::Browser),
            ("device decision", AuditActor::Device),
            ("authenticate", AuditActor::Browser),
            ("start", AuditActor::FederationServer),
        ],
        "newest first: {events:#?}"
    );
    assert!(events.windows(2).all(|pair| pair[0].at_ms >= pair[1].at_ms));
    let [pickup, _, decision, entry, start] = &events[..] else {
        unreachable!()
    };
    assert_eq!(start.client_id.as_deref(), Some("demo-federation"));
    assert_eq!(start.status_before, None);
    assert_eq!(start.status_after, "AUTHENTICATION_REQUIRED");
    assert_eq!(entry.user_agent.as_deref(), Some(BROWSER_AGENT));
    assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entry.status_after, "PUSH_CONFIRMATION_WAITING");
    assert_eq!(decision.device_id.as_deref(), Some(phone.id()));
    assert_eq!(
        decision.status_before.as_deref(),
        Some("PUSH_CONFIRMATION_WAITING")
    );
    assert_eq!(decision.status_after, "MFA_COMPLETED");
    assert_eq!(pickup.client_id.as_deref(), Some("demo-federation"));
    assert!(
        events
            .iter()
            .all(|event| event.user_id == "bob" && event.flow_id == flow && event.kind == "oob")
    );

    // Paged two at a time, newest first, with nothing lost or repeated.
    let first = flow_events(&app, &flow, "?limit=2").await;
    assert_eq!(first.events, events[..2]);
    let before = first.next_before.expect("more to read");
    let second = flow_events(&app, &flow, &format!("?limit=2&before={before}")).await;
    assert_eq!(second.events, events[2..4]);
    let before = second.next_before.expect("more to read");
    let last = flow_events(&app, &flow, &format!("?limit=2&before={before}")).await;
    assert_eq!(last.events, events[4..]);
    assert_eq!(last.next_before, None);
}

async fn a_users_trail_pages_their_flows_newest_first(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    // Two people signing in from one browser (this client): separate trails.
    let older = app.start_flow_unauthenticated(&oob_request("dave")).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let other = app.start_flow_unauthenticated(&oob_request("erin")).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let newer = app.start_flow_unauthenticated(&oob_request("dave")).await;
    app.act_ok(&newer, ActionRequest::CancelAuthentication)
        .await;

    let all = user_events(&app, "dave", "").await;
    let flows: Vec<&str> = all.flows.iter().map(|flow| flow.flow_id.as_str()).collect();
    assert_eq!(flows, [newer.as_str(), older.as_str()]);
    assert_eq!(all.next_before, None);
    assert_eq!(
        summary(&all.flows[0].events),
        [
            ("cancelAuthentication", AuditActor::Browser),
            ("start", AuditActor::FederationServer)
        ]
    );

    let first = user_events(&app, "dave", "?limit=1").await;
    assert_eq!(first.flows.len(), 1);
    assert_eq!(first.flows[0].flow_id, newer);
    let before = first.next_before.expect("an older page");
    let second = user_events(&app, "dave", &format!("?limit=1&before={before}")).await;
    assert_eq!(second.flows.len(), 1);
    assert_eq!(second.flows[0].flow_id, older);
    let before = second.next_before.expect("a page may follow a full one");
    let third = user_events(&app, "dave", &format!("?limit=1&before={before}")).await;
    assert!(third.flows.is_empty());
    assert_eq!(third.next_before, None);

    let erin = user_events(&app, "erin", "").await;
    let flows: Vec<&str> = erin
        .flows
        .iter()
        .map(|flow| flow.flow_id.as_str())
        .collect();
    assert_eq!(
        flows,
        [other.as_str()],
        "another user's flows are not in it"
    );
    assert!(user_events(&app, "nobody", "").await.flows.is_empty());
}

async fn bad_paging_and_unknown_flows_are_refused(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let flow = app.start_flow_unauthenticated(&oob_request("frank")).await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=-1",
        "?limit=ten",
        "?before=yesterday",
        "?cursor=1",
    ] {
        let response = app
            .admin_get(&format!("/admin/v1/flows/{flow}/events{query}"))
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let body = problem(response).await;
        assert_eq!(body["status"], 400, "{query}: {body}");
    }
    for query in ["?limit=0", "?limit=51", "?before=-5"] {
        let response = app
            .admin_get(&format!("/admin/v1/users/frank/events{query}"))
            .await;
        assert_eq!(response.status(), 400, "{query}");
        problem(response).await;
    }
    for unknown in ["Xw6sdEywvMrvbzV0jhPwu3Xo", "not-a-flow-id"] {
        let response = app
            .admin_get(&format!("/admin/v1/flows/{unknown}/events"))
            .await;
        assert_eq!(response.status(), 404, "{unknown}");
        problem(response).await;
    }
    let response = app
        .http
        .get(app.url(&format!("/admin/v1/flows/{flow}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "the admin token is required");
    problem(response).await;
    let response = app.admin_get("/admin/v1/users/bad%20id/events").await;
    assert_eq!(response.status(), 400, "a malformed user id");
    problem(response).await;
}

/// Each event is one JSON line on the `audit` target, naming who did what and carrying
/// no secret.
#[tokio::test]
async fn each_event_is_one_json_line_on_the_audit_target() {
    let process = AssentProcess::serve(&["--log-format", "json"], &[]).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{}/adapter/v1/flows", process.address))
        .basic_auth("demo-federation", Some("demo-federation-secret"))
        .header("User-Agent", "DemoFederation/2.0")
        .json(&oob_request("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flow = created["flowId"].as_str().unwrap().to_owned();
    // An operator imports a YubiKey for alice, then removes it: device events, outside
    // any flow, carry neither key.
    let aes_key = "00112233445566778899aabbccddeeff";
    let imported: serde_json::Value = client
        .post(format!("{}/admin/v1/users/alice/yubikeys", process.address))
        .bearer_auth("demo-admin-token")
        .json(&serde_json::json!({
            "publicId": "vvccccdedbjh", "privateId": "0a1b2c3d4e5f", "aesKey": aes_key,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = imported["id"]
        .as_str()
        .expect("the imported device")
        .to_owned();
    let removed = client
        .delete(format!(
            "{}/admin/v1/users/alice/devices/{device}",
            process.address
        ))
        .bearer_auth("demo-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);

    let (_, logs) = process.terminate();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["target"] == "audit")
        .collect();
    let device_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["device_id"] == device.as_str())
        .collect();
    assert_eq!(device_lines.len(), 2, "{logs}");
    for (event, line) in ["device added", "device removed"].iter().zip(device_lines) {
        let fields = &line["fields"];
        assert_eq!(fields["event"], *event, "{line}");
        assert_eq!(fields["user_id"], "alice");
        assert_eq!(fields["method"], "YUBIKEY");
        assert_eq!(fields["actor"], "operator");
        assert_eq!(fields["ip"], "127.0.0.1");
    }
    assert!(
        !logs.contains(aes_key) && !logs.contains("0a1b2c3d4e5f"),
        "{logs}"
    );
    let lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["flow_id"].is_string())
        .collect();
    assert_eq!(lines.len(), 1, "one line for the start: {logs}");
    let fields = &lines[0]["fields"];
    assert_eq!(fields["flow_id"], flow.as_str());
    assert_eq!(fields["event"], "start");
    assert_eq!(fields["actor"], "federation_server");
    assert_eq!(fields["client_id"], "demo-federation");
    assert_eq!(fields["user_agent"], "DemoFederation/2.0");
    assert_eq!(fields["ip"], "127.0.0.1");
    assert_eq!(fields["status_after"], "AUTHENTICATION_REQUIRED");
    assert!(!lines[0].to_string().contains("demo-federation-secret"));
}

/// Where the federation server takes the browser back, in the flows completed through the
/// pages.
const RETURN_URL: &str = "https://rp.example:8443/back?state=audit";

async fn a_qr_sign_on_through_the_pages_names_the_scanning_device(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        figment::Figment::new().merge(("policy.qr_user_approval", false)),
    )
    .await;
    let tablet = app.pair_device("alice").await;
    tablet
        .device
        .join(&app.pairing_key("bob").await)
        .await
        .unwrap();
    let flow = app
        .start_flow_unauthenticated(&serde_json::json!({
            "kind": "qr",
            "application": { "name": "Demo Bank" },
            "returnUrl": RETURN_URL,
        }))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    page.act("authenticate", None).await;
    let code = crate::pages_qr::short_code(&page.get("en").await);
    tablet.device.scan(&code).await.unwrap();
    tablet.device.select(&code, "bob").await.unwrap();
    page.get("en").await.assert_shows(&["Return to Demo Bank"]);
    assert_eq!(app.result(&flow).await.status(), 200);

    let events = flow_events(&app, &flow, "").await.events;
    assert_eq!(
        summary(&events),
        [
            ("result pickup", AuditActor::FederationServer),
            ("QR user selection", AuditActor::Device),
            ("QR scan", AuditActor::Device),
            ("authenticate", AuditActor::Browser),
            ("start", AuditActor::FederationServer),
        ],
        "newest first: {events:#?}"
    );
    let [_, selection, scan, entry, _] = &events[..] else {
        unreachable!()
    };
    for by_tablet in [selection, scan] {
        assert_eq!(by_tablet.device_id.as_deref(), Some(tablet.id()));
        assert_eq!(by_tablet.ip.as_deref(), Some("127.0.0.1"));
    }
    assert_eq!(
        scan.status_before.as_deref(),
        Some("AUTHENTICATION_CODE_RESPONSE_REQUIRED")
    );
    assert_eq!(selection.status_after, "RESUME");
    assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entry.status_after, "AUTHENTICATION_CODE_RESPONSE_REQUIRED");
    assert!(events.iter().all(|event| event.kind == "qr"), "{events:#?}");
}

async fn a_transaction_approved_through_the_pages_has_its_trail(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let phone = app.pair_device("bob").await;
    let mut request = transfer_request("bob", "99.00", "Dan");
    request["returnUrl"] = serde_json::json!(RETURN_URL);
    let flow = app.start_flow_unauthenticated(&request).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.act("authenticate", None).await;
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    assert_eq!(
        page.act("continueAuthentication", None).await,
        format!("/flows/{flow}")
    );
    assert_eq!(app.result(&flow).await.status(), 200);

    let events = flow_events(&app, &flow, "").await.events;
    assert_eq!(
        summary(&events),
        [
            ("result pickup", AuditActor::FederationServer),
            ("continueAuthentication", AuditActor::Browser),
            ("device decision", AuditActor::Device),
            ("authenticate", AuditActor::Browser),
            ("start", AuditActor::FederationServer),
        ],
        "newest first: {events:#?}"
    );
    assert_eq!(events[2].device_id.as_deref(), Some(phone.id()));
    assert!(
        events
            .iter()
            .all(|event| event.kind == "transaction" && event.user_id == "bob"),
        "{events:#?}"
    );
}

async fn a_registration_names_the_paired_device(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let mut request = oob_request("gina");
    request["kind"] = serde_json::json!("registration");
    let flow = app.start_flow(&request).await;
    let state = app.state(&flow).await;
    let key = crate::support::expect_status!(state, MobileActivationRequired)
        .pairing_key
        .clone();
    let device = crate::support::pair_phone(&app.address, &key, "new phone")
        .await
        .expect("the app pairs");

    let events = flow_events(&app, &flow, "").await.events;
    let paired = events
        .iter()
        .find(|event| event.event == "device pairing")
        .unwrap_or_else(|| panic!("a pairing in {events:#?}"));
    assert_eq!(paired.actor, AuditActor::Device);
    assert_eq!(paired.device_id.as_deref(), Some(device.id()));
    assert_eq!(paired.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        paired.status_before.as_deref(),
        Some("MOBILE_ACTIVATION_REQUIRED")
    );
    assert!(events.iter().all(|event| event.kind == "registration"));
}

async fn an_unpairing_is_the_devices_or_the_operators(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    // The device unpairs itself while a request waits for it.
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    phone.one_pending().await;
    phone.device.unpair().await.unwrap();
    let events = flow_events(&app, &flow, "").await.events;
    let unpaired = &events[0];
    assert_eq!(
        (unpaired.event.as_str(), unpaired.actor),
        ("device unpairing", AuditActor::Device),
        "{events:#?}"
    );
    assert_eq!(unpaired.device_id.as_deref(), Some(phone.id()));
    assert_eq!(unpaired.status_after, "MFA_FAILED");

    // The operator unpairs another through the Admin API.
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    phone.one_pending().await;
    let response = app
        .http
        .delete(app.url(&format!("/admin/v1/users/alice/devices/{}", phone.id())))
        .bearer_auth(ADMIN_TOKEN)
        .header("User-Agent", "AuditTestOperator/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let events = flow_events(&app, &flow, "").await.events;
    let unpaired = &events[0];
    assert_eq!(
        (unpaired.event.as_str(), unpaired.actor),
        ("device unpairing", AuditActor::Operator),
        "{events:#?}"
    );
    assert_eq!(
        unpaired.user_agent.as_deref(),
        Some("AuditTestOperator/1.0")
    );
    assert_eq!(unpaired.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(unpaired.status_after, "MFA_FAILED");
}
