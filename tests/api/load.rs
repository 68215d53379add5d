//! A topology-agnostic OOB load driver for the fault tests, and the ledger of what each
//! party was told: flows spread over a list of assent base URLs (one Redis, a cluster or a
//! sentinel group behind them, it does not matter), each driven by a federation server, a
//! browser and a phone that retry as real ones do, through outages and dead instances.
//! [`Ledger::check`] then asserts the invariants a fault must never break.

#![allow(dead_code)]

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assent_device_sdk::proto::device::{Decision, PendingRequest};
use assent_device_sdk::{Client, Device, DeviceKey, SdkError};
use assent_proto::authn::{AuthnState, StatusName};

use crate::support::{ADMIN_TOKEN, FEDERATION, oob_request, pair_phone, unique};

/// How long a browser's poll and a phone's pending list wait (seconds): short, so that
/// flows move on quickly after an outage.
const WAIT_SECS: u64 = 2;

/// Pause between two retries of a refused or failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What to run.
#[derive(Clone, Debug)]
pub struct Load {
    /// The assent instances' base URLs.
    pub urls: Vec<String>,
    /// How many flows (each with its own user and phone).
    pub flows: usize,
    /// Time between two flow starts (flows overlap: they run concurrently).
    pub spacing: Duration,
    /// Whether flow `i` starts on `urls[i % n]` (true) or all start on `urls[0]`.
    pub spread: bool,
    /// A flow not finished this long after its start is given up (and reported).
    pub flow_deadline: Duration,
}

/// A user and its phone, paired before the load, able to talk to every instance.
pub struct Phone {
    /// The user id.
    pub user: String,
    /// The same device (same key) as seen through each URL, in [`Load::urls`] order.
    devices: Vec<Device>,
}

/// An HTTP client for the driver: short connection timeout (a dead instance is noticed
/// at once), and a request timeout well past any long poll, so that a hang is measured,
/// not hidden.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(15))
        .build()
        .expect("an HTTP client")
}

/// Pairs `count` phones, each with a new user (made by a first flow start), through the
/// first URL.
pub async fn pair_phones(urls: &[String], count: usize) -> Vec<Phone> {
    let http = http_client();
    let mut phones = Vec::with_capacity(count);
    for _ in 0..count {
        let user = unique("load");
        // The federation server's first flow for a user creates the user.
        let created = http
            .post(format!("{}/adapter/v1/flows", urls[0]))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .json(&oob_request(&user))
            .send()
            .await
            .expect("the Adapter API answers");
        assert_eq!(created.status(), 201, "a flow for {user}");
        let response = http
            .post(format!("{}/admin/v1/users/{user}/pairing-keys", urls[0]))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("the Admin API answers");
        assert_eq!(response.status(), 201, "a pairing key for {user}");
        let issued: serde_json::Value = response.json().await.expect("a pairing key");
        let key = issued["pairingKey"].as_str().expect("a pairing key");
        let paired = pair_phone(&urls[0], key, "load phone")
            .await
            .expect("pairing succeeds");
        let record = paired.record();
        let devices = urls
            .iter()
            .map(|url| {
                let key = DeviceKey::from_private_jwk(record.private_jwk.clone()).expect("its key");
                Client::with_http(url, http.clone())
                    .expect("a Device API client")
                    .device(&record.device_id, &record.user_id, key)
            })
            .collect();
        phones.push(Phone { user, devices });
    }
    phones
}

/// One answer the driver got, for the outage checks.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Which request (`start`, `poll`, `approve`...).
    pub what: &'static str,
    /// The instance asked.
    pub url: usize,
    /// When it was sent.
    pub sent: Instant,
    /// How long the answer took.
    pub took: Duration,
    /// How long the request itself asked to wait (a long poll).
    pub wait: Duration,
    /// The HTTP status, or `None` when no answer came (refused connection, reset, timeout).
    pub status: Option<u16>,
}

/// What happened to one flow, as its three parties saw it.
#[derive(Clone, Debug, Default)]
pub struct FlowRecord {
    /// The user.
    pub user: String,
    /// The flow id, once a start was answered.
    pub flow_id: Option<String>,
    /// Approvals the phone signed and sent.
    pub approvals_sent: u32,
    /// When the phone was told an approval was accepted (200), oldest first.
    pub accepted: Vec<Instant>,
    /// Approvals sent whose answer did not say (a 503, no answer): they may have landed.
    pub ambiguous_approvals: u32,
    /// Accepted approvals that a later read showed undone.
    pub lost_approvals: u32,
    /// The last status the browser saw.
    pub browser_saw: Option<StatusName>,
    /// The status of the first result picked up.
    pub result: Option<String>,
    /// Result pickups answered 200 (must be at most 1).
    pub pickups: u32,
    /// What a second pickup got (must be a refusal).
    pub second_pickup: Option<u16>,
    /// The result went to a pickup whose answer never came (an instance killed after the
    /// pickup's write, or a 503 from a write no replica acknowledged in time): the retry
    /// was refused as a second pickup. At most once, by design: a lost answer loses the
    /// result, it never hands it out twice.
    pub result_lost_with_its_answer: bool,
    /// Requests that got no answer from an instance, after which the party moved to the
    /// next URL.
    pub switches: u32,
    /// Flows the browser had to start over: its first answer, which bound the flow to it,
    /// was lost (a crash between the write and the answer), so the flow is bound to a
    /// secret it never got.
    pub restarts: u32,
    /// The last refusal the browser got (status and body), to explain a flow given up.
    pub last_refusal: Option<String>,
    /// Why the driver gave up on the flow, if it did.
    pub gave_up: Option<String>,
}

impl FlowRecord {
    /// Whether the federation server picked up a successful result.
    pub fn completed(&self) -> bool {
        matches!(self.result.as_deref(), Some("COMPLETED" | "RESUME"))
    }
}

/// Everything the driver recorded.
#[derive(Debug)]
pub struct Ledger {
    /// One record per flow, in start order.
    pub flows: Vec<FlowRecord>,
    /// Every answer, in no particular order.
    pub answers: Vec<Answer>,
}

/// The shared state of one flow's three parties.
struct Shared {
    record: Mutex<FlowRecord>,
    answers: Arc<Mutex<Vec<Answer>>>,
    /// Set by the browser when it stops, so that the phone stops too.
    done: AtomicBool,
    http: reqwest::Client,
    urls: Vec<String>,
}

impl Shared {
    fn record(&self) -> std::sync::MutexGuard<'_, FlowRecord> {
        self.record.lock().expect("not poisoned")
    }

    fn answered(
        &self,
        what: &'static str,
        url: usize,
        sent: Instant,
        wait: Duration,
        status: Option<u16>,
    ) {
        self.answers.lock().expect("not poisoned").push(Answer {
            what,
            url,
            sent,
            took: sent.elapsed(),
            wait,
            status,
        });
    }
}

/// Runs the load: every flow to its end (or its deadline), then returns the ledger.
/// Runs concurrently with whatever fault the test injects meanwhile.
pub async fn run(load: Load, phones: Vec<Phone>) -> Ledger {
    assert!(phones.len() >= load.flows, "one phone per flow");
    let answers = Arc::new(Mutex::new(Vec::new()));
    let http = http_client();
    let mut tasks = Vec::new();
    for (index, phone) in phones.into_iter().take(load.flows).enumerate() {
        let shared = Arc::new(Shared {
            record: Mutex::new(FlowRecord {
                user: phone.user.clone(),
                ..FlowRecord::default()
            }),
            answers: Arc::clone(&answers),
            done: AtomicBool::new(false),
            http: http.clone(),
            urls: load.urls.clone(),
        });
        let home = if load.spread {
            index % load.urls.len()
        } else {
            0
        };
        let start_at = tokio::time::Instant::now() + load.spacing * index as u32;
        let deadline = start_at + load.flow_deadline;
        let phone_side = {
            let shared = Arc::clone(&shared);
            async move {
                tokio::time::sleep_until(start_at).await;
                phone_loop(&shared, phone, home, deadline).await;
            }
        };
        let browser_side = {
            let shared = Arc::clone(&shared);
            async move {
                tokio::time::sleep_until(start_at).await;
                let gave_up =
                    match tokio::time::timeout_at(deadline, browser_loop(&shared, home)).await {
                        Ok(Ok(())) => None,
                        Ok(Err(why)) => Some(why),
                        Err(_) => Some("the deadline passed".to_owned()),
                    };
                if gave_up.is_some() {
                    shared.record().gave_up = gave_up;
                }
                shared.done.store(true, Ordering::SeqCst);
            }
        };
        tasks.push(tokio::spawn(async move {
            tokio::join!(phone_side, browser_side);
            shared.record().clone()
        }));
    }
    let mut flows = Vec::with_capacity(tasks.len());
    for task in tasks {
        flows.push(task.await.expect("a flow task does not panic"));
    }
    let answers = answers.lock().expect("not poisoned").clone();
    Ledger { flows, answers }
}

/// What one HTTP exchange of the browser or the federation server came to.
enum Exchange {
    /// A 200 with a state (Authentication API).
    State(Box<AuthnState>),
    /// Another status, with its body.
    Status(u16, String),
    /// No answer: the instance is gone or did not answer in time.
    NoAnswer,
}

/// The browser (and the federation server that started its flow and picks up its result).
struct Browser<'a> {
    shared: &'a Shared,
    url: usize,
    flow: String,
    /// The `_pf_authn_api_state` it echoes, as a cookieless widget does.
    binding: Option<String>,
}

impl Browser<'_> {
    fn base(&self) -> &str {
        &self.shared.urls[self.url]
    }

    /// Moves to the next instance after one did not answer.
    fn switch(&mut self) {
        self.url = (self.url + 1) % self.shared.urls.len();
        self.shared.record().switches += 1;
    }

    async fn send(
        &mut self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        wait: Duration,
    ) -> Exchange {
        let sent = Instant::now();
        let url = self.url;
        let Ok(response) = request.send().await else {
            self.shared.answered(what, url, sent, wait, None);
            self.switch();
            return Exchange::NoAnswer;
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        self.shared.answered(what, url, sent, wait, Some(status));
        // Only the Authentication API answers states; the result is the Adapter API's.
        if status != 200 || what == "result" {
            return Exchange::Status(status, body);
        }
        match serde_json::from_str::<AuthnState>(&body) {
            Ok(state) => {
                if let Some(secret) = &state.authn_api_state {
                    self.binding = Some(secret.clone());
                }
                self.observed(&state, sent);
                Exchange::State(Box::new(state))
            }
            Err(error) => Exchange::Status(status, format!("{error}: {body}")),
        }
    }

    /// Notes what the browser saw; a read sent after an accepted approval that still shows
    /// the flow waiting means that approval was undone.
    fn observed(&self, state: &AuthnState, sent: Instant) {
        let status = state.status.name();
        let mut record = self.shared.record();
        record.browser_saw = Some(status);
        let waiting = matches!(
            status,
            StatusName::PushConfirmationWaiting | StatusName::AuthenticationRequired
        );
        if waiting
            && let Some(accepted) = record.accepted.last().copied()
            && sent > accepted
        {
            record.lost_approvals += 1;
            // Counted once: the phone approves again if the request comes back.
            record.accepted.clear();
        }
    }

    fn flow_url(&self) -> String {
        format!("{}/pf-ws/authn/flows/{}", self.base(), self.flow)
    }

    fn with_binding(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.binding {
            Some(secret) => request.header("X-PF-Authn-API-State", secret),
            None => request,
        }
    }

    async fn get(&mut self) -> Exchange {
        let request = self.with_binding(self.shared.http.get(self.flow_url()));
        self.send("get", request, Duration::ZERO).await
    }

    async fn action(&mut self, action: &'static str, body: Option<&str>, wait: u64) -> Exchange {
        let mut url = self.flow_url();
        if wait > 0 {
            url.push_str(&format!("?wait={wait}"));
        }
        let mut request = self
            .shared
            .http
            .post(url)
            .header("X-XSRF-Header", "PingFederate")
            .header(
                "Content-Type",
                format!("application/vnd.pingidentity.{action}+json"),
            );
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let request = self.with_binding(request);
        self.send(action, request, Duration::from_secs(wait)).await
    }

    /// The federation server's pickup: the result's status, or the HTTP status refusing it.
    async fn pickup(&mut self) -> Result<String, Option<u16>> {
        let request = self
            .shared
            .http
            .get(format!(
                "{}/adapter/v1/flows/{}/result",
                self.base(),
                self.flow
            ))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1));
        match self.send("result", request, Duration::ZERO).await {
            Exchange::Status(200, body) => {
                let result: serde_json::Value =
                    serde_json::from_str(&body).map_err(|_| Some(200))?;
                Ok(result["status"].as_str().unwrap_or_default().to_owned())
            }
            Exchange::Status(status, _) => Err(Some(status)),
            Exchange::State(_) => Err(Some(200)),
            Exchange::NoAnswer => Err(None),
        }
    }
}

/// Starts the flow (retrying), enters it, polls until it ends, continues, picks up the
/// result once and checks that a second pickup is refused.
async fn browser_loop(shared: &Shared, home: usize) -> Result<(), String> {
    let mut url = home;
    // A browser locked out of its flow starts over, as a person whose sign-in page shows
    // an error would: the federation server starts a new flow.
    loop {
        match one_flow(shared, url).await {
            Ok(()) => return Ok(()),
            Err(Restart(at)) => {
                shared.record().restarts += 1;
                url = at;
            }
        }
    }
}

/// The browser's first answer (the one that bound the flow to it) was lost: the flow is
/// bound to a secret it never got. Start over from the instance it was talking to.
struct Restart(usize);

/// One flow: started, entered, followed to its end, its result picked up.
async fn one_flow(shared: &Shared, home: usize) -> Result<(), Restart> {
    let user = shared.record().user.clone();
    let mut url = home;
    let flow = loop {
        let sent = Instant::now();
        let response = shared
            .http
            .post(format!("{}/adapter/v1/flows", shared.urls[url]))
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
            .json(&oob_request(&user))
            .send()
            .await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                shared.answered("start", url, sent, Duration::ZERO, Some(status));
                if status == 201
                    && let Ok(created) = response.json::<serde_json::Value>().await
                {
                    break created["flowId"].as_str().unwrap_or_default().to_owned();
                }
            }
            Err(_) => {
                shared.answered("start", url, sent, Duration::ZERO, None);
                url = (url + 1) % shared.urls.len();
                shared.record().switches += 1;
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    };
    shared.record().flow_id = Some(flow.clone());
    let mut browser = Browser {
        shared,
        url,
        flow,
        binding: None,
    };
    // The first read binds the flow to this browser; each later step follows the status.
    let mut state = browser.get().await;
    loop {
        let status = match &state {
            Exchange::State(state) => state.status.name(),
            Exchange::NoAnswer | Exchange::Status(503, _) => {
                tokio::time::sleep(RETRY_PAUSE).await;
                state = browser.get().await;
                continue;
            }
            Exchange::Status(404, _) => {
                shared.record().gave_up = Some("the flow is gone (404)".to_owned());
                return Ok(());
            }
            Exchange::Status(403, body)
                if browser.binding.is_none() && body.contains("FLOW_BOUND_TO_ANOTHER_CLIENT") =>
            {
                return Err(Restart(browser.url));
            }
            // A refused action (an earlier try landed although its answer was lost, say):
            // read where the flow is.
            Exchange::Status(status, body) => {
                shared.record().last_refusal = Some(format!("{status} {body}"));
                tokio::time::sleep(RETRY_PAUSE).await;
                state = browser.get().await;
                continue;
            }
        };
        state = match status {
            StatusName::AuthenticationRequired => {
                browser.action("authenticate", Some("{}"), 0).await
            }
            StatusName::PushConfirmationWaiting => browser.action("poll", None, WAIT_SECS).await,
            StatusName::MfaCompleted => browser.action("continueAuthentication", None, 0).await,
            StatusName::Completed | StatusName::Resume => break,
            other => {
                shared.record().gave_up = Some(format!("the flow ended {other:?}"));
                return Ok(());
            }
        };
    }
    // The federation server picks the result up once; a second pickup must be refused.
    let mut unanswered = false;
    loop {
        match browser.pickup().await {
            Ok(status) => {
                let mut record = shared.record();
                record.pickups += 1;
                record.result = Some(status);
                break;
            }
            Err(Some(503) | None) => {
                unanswered = true;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(Some(404)) if unanswered => {
                shared.record().result_lost_with_its_answer = true;
                return Ok(());
            }
            Err(Some(status)) => {
                shared.record().gave_up = Some(format!("the result pickup got {status}"));
                return Ok(());
            }
        }
    }
    loop {
        match browser.pickup().await {
            Ok(_) => {
                let mut record = shared.record();
                record.pickups += 1;
                record.second_pickup = Some(200);
                break;
            }
            Err(Some(503) | None) => tokio::time::sleep(RETRY_PAUSE).await,
            Err(Some(status)) => {
                shared.record().second_pickup = Some(status);
                break;
            }
        }
    }
    Ok(())
}

/// The phone: long-polls its pending list and approves what comes, until the browser is
/// done; moves to the next instance when one does not answer.
async fn phone_loop(shared: &Shared, phone: Phone, home: usize, deadline: tokio::time::Instant) {
    let mut url = home;
    while !shared.done.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
        let device = &phone.devices[url];
        let sent = Instant::now();
        let pending = device.pending(WAIT_SECS).await;
        let wait = Duration::from_secs(WAIT_SECS);
        let requests = match pending {
            Ok(requests) => {
                shared.answered("pending", url, sent, wait, Some(200));
                requests
            }
            Err(error) => {
                shared.answered("pending", url, sent, wait, error.status());
                if error.status().is_none() {
                    url = (url + 1) % phone.devices.len();
                    shared.record().switches += 1;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        };
        for request in requests {
            if approve(shared, &phone.devices[url], url, &request)
                .await
                .is_none()
            {
                url = (url + 1) % phone.devices.len();
                shared.record().switches += 1;
            }
        }
    }
}

/// Approves one request and records what the phone was told; `None` when the instance
/// did not answer.
async fn approve(
    shared: &Shared,
    device: &Device,
    url: usize,
    request: &PendingRequest,
) -> Option<()> {
    shared.record().approvals_sent += 1;
    let sent = Instant::now();
    match device.answer(request, Decision::Approve, None).await {
        Ok(_) => {
            shared.answered("approve", url, sent, Duration::ZERO, Some(200));
            shared.record().accepted.push(Instant::now());
            Some(())
        }
        Err(error @ SdkError::Refused { .. }) => {
            let status = error.status();
            shared.answered("approve", url, sent, Duration::ZERO, status);
            if status.is_some_and(|status| status >= 500) {
                shared.record().ambiguous_approvals += 1;
            }
            Some(())
        }
        Err(_) => {
            shared.answered("approve", url, sent, Duration::ZERO, None);
            shared.record().ambiguous_approvals += 1;
            None
        }
    }
}

/// What a fault test expects.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// No approval the phone was told was accepted may be lost (AOF `always`, a dead
    /// assent instance); false where the store may lose its last writes (`everysec`).
    pub lossless: bool,
    /// The store's timeout: a 503 during an outage must come within three times that.
    pub store_timeout: Duration,
    /// How many store timeouts a 503 may take: a request that fails makes one or two
    /// store calls on one server; during a failover, up to four may each wait it out.
    pub calls_per_503: u32,
    /// The outage: from the fault to the store (or instance) being back.
    pub outage: Option<(Instant, Instant)>,
    /// The instances that were killed (their URLs' indexes): no answer from them is fine.
    pub killed: &'static [usize],
}

/// The counts a check prints.
#[derive(Debug, Default)]
pub struct Summary {
    /// Flows run.
    pub flows: usize,
    /// Flows whose phone was told an approval was accepted.
    pub approvals_accepted: usize,
    /// Flows whose result was picked up as completed.
    pub completed: usize,
    /// Accepted approvals undone.
    pub lost: u32,
    /// Approvals whose answer did not say whether they landed.
    pub ambiguous: u32,
    /// Flows whose result went to a pickup whose answer was lost.
    pub results_lost_with_their_answer: usize,
    /// Flows whose result was picked up twice.
    pub double_pickups: usize,
    /// Flows given up, with why.
    pub unfinished: Vec<String>,
    /// Answers to requests sent during the outage, by status (`None`: no answer).
    pub outage_answers: std::collections::BTreeMap<Option<u16>, usize>,
    /// The slowest 503 among those answers.
    pub outage_slowest: Duration,
    /// Requests that moved to another instance after one did not answer.
    pub switches: u32,
    /// Flows started over after the browser's binding answer was lost.
    pub restarts: u32,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answers: Vec<String> = self
            .outage_answers
            .iter()
            .map(|(status, count)| match status {
                Some(status) => format!("{count} × {status}"),
                None => format!("{count} × no answer"),
            })
            .collect();
        write!(
            f,
            "flows: {}, approvals accepted: {}, completed: {}, lost: {}, ambiguous: {}, \
             results lost with their pickup's answer: {}, double pickups: {}, unfinished: {}, \
             outage answers: {} (max {:.2} s), switches: {}, \
             restarted after a lost binding answer: {}",
            self.flows,
            self.approvals_accepted,
            self.completed,
            self.lost,
            self.ambiguous,
            self.results_lost_with_their_answer,
            self.double_pickups,
            self.unfinished.len(),
            if answers.is_empty() {
                "none".to_owned()
            } else {
                answers.join(", ")
            },
            self.outage_slowest.as_secs_f64(),
            self.switches,
            self.restarts,
        )
    }
}

impl Ledger {
    /// Asserts the invariants, prints what was checked, and returns the counts.
    pub fn check(&self, expect: Expect) -> Summary {
        let mut summary = Summary {
            flows: self.flows.len(),
            ..Summary::default()
        };
        for flow in &self.flows {
            let id = flow.flow_id.as_deref().unwrap_or("(not started)");
            summary.lost += flow.lost_approvals;
            summary.ambiguous += flow.ambiguous_approvals;
            summary.switches += flow.switches;
            summary.restarts += flow.restarts;
            if !flow.accepted.is_empty() || flow.lost_approvals > 0 {
                summary.approvals_accepted += 1;
            }
            if flow.result_lost_with_its_answer {
                summary.results_lost_with_their_answer += 1;
            }
            if flow.completed() {
                summary.completed += 1;
                // Safety: nothing completes without the phone's approval. An approval whose
                // answer was lost (a 503 or no answer after the write landed) is the only
                // way the phone may not have heard "accepted".
                assert!(
                    !flow.accepted.is_empty()
                        || flow.lost_approvals > 0
                        || flow.ambiguous_approvals > 0,
                    "flow {id} completed without an approval the phone sent and was told \
                     was accepted: {flow:?}"
                );
                assert!(flow.approvals_sent > 0, "flow {id}: no approval sent");
            }
            if flow.pickups > 1 {
                summary.double_pickups += 1;
            }
            assert!(
                flow.pickups <= 1,
                "flow {id}: the result was picked up twice"
            );
            if flow.result.is_some() {
                assert!(
                    matches!(flow.second_pickup, Some(status) if (400..500).contains(&status)),
                    "flow {id}: a second pickup must be refused, got {:?}",
                    flow.second_pickup
                );
            }
            if let Some(why) = &flow.gave_up {
                summary.unfinished.push(format!("{id}: {why}"));
            }
            if expect.lossless {
                assert_eq!(
                    flow.lost_approvals, 0,
                    "flow {id} lost an accepted approval"
                );
                assert!(
                    flow.completed() || flow.result_lost_with_its_answer,
                    "flow {id} did not complete although nothing may be lost: {flow:?}"
                );
            }
        }
        // Every request sent during the outage got an answer, quickly: a 503 within
        // `calls_per_503` times the store's timeout. Each store call is bounded by it, and
        // a request makes up to two before it fails on one server (the device token's
        // replay check, then the read), with one more as slack for this shared two-core
        // machine; typical: 0.6 to 0.9 s at 0.5 s.
        let quick = expect.store_timeout * expect.calls_per_503;
        for answer in &self.answers {
            let during = expect
                .outage
                .is_some_and(|(from, to)| answer.sent >= from && answer.sent <= to);
            let killed = expect.killed.contains(&answer.url);
            if let Some(status) = answer.status {
                assert!(
                    status < 500 || status == 503,
                    "a {status} to {} (only 503 may say the store is down)",
                    answer.what
                );
            } else {
                assert!(
                    killed,
                    "{} to instance {} got no answer after {:.2} s",
                    answer.what,
                    answer.url,
                    answer.took.as_secs_f64()
                );
            }
            if !during {
                continue;
            }
            *summary.outage_answers.entry(answer.status).or_default() += 1;
            if answer.status == Some(503) {
                summary.outage_slowest = summary.outage_slowest.max(answer.took);
                assert!(
                    answer.took <= quick,
                    "a 503 to {} took {:.2} s (more than {} times the store timeout)",
                    answer.what,
                    answer.took.as_secs_f64(),
                    expect.calls_per_503
                );
            } else if answer.status.is_some() {
                // Sent during the outage, answered once the store was back: its store
                // calls may each have waited for the reconnection, but it must not hang.
                let beyond = answer.took.saturating_sub(answer.wait);
                assert!(
                    beyond <= expect.store_timeout * 5,
                    "{} answered {:?} after {:.2} s beyond its wait during the outage",
                    answer.what,
                    answer.status,
                    beyond.as_secs_f64()
                );
            }
        }
        println!("{summary}");
        for why in &summary.unfinished {
            println!("  unfinished: {why}");
        }
        summary
    }
}

/// Waits until every instance serves again (a flow starts on each), at most `within`;
/// returns how long that took.
pub async fn wait_until_serving(urls: &[String], within: Duration) -> Duration {
    let http = http_client();
    let since = Instant::now();
    for url in urls {
        loop {
            let started = http
                .post(format!("{url}/adapter/v1/flows"))
                .basic_auth(FEDERATION.0, Some(FEDERATION.1))
                .json(&oob_request("alice"))
                .send()
                .await
                .is_ok_and(|response| response.status() == 201);
            if started {
                break;
            }
            assert!(
                since.elapsed() < within,
                "{url} does not serve {:.1} s after the store is back",
                within.as_secs_f64()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    since.elapsed()
}
