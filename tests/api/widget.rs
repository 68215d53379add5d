//! PingFederate's own widget (npm `@ping-identity/pf-authn-js-widget`, pinned in
//! tests/interop), unchanged, drives assent's browser flows in headless Chromium: from a
//! sign-in page on another origin (CORS with credentials, as PingFederate deployments
//! host it), through each status the widget knows, back to the federation server's
//! return URL. The tests assert what the person sees and where the flow ends.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use assent_proto::authn::AuthnState;
use assent_proto::device::QrStatus;
use figment::Figment;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::{
    Backend, RedisServer, TestApp, expect_status, oob_request, repo_root, transfer_request, unique,
};

/// How long a screen may take to appear: the widget polls with a GET every second.
pub(crate) const SCREEN: Duration = Duration::from_secs(20);

/// The sign-in page and the federation server's return page, on an origin of their own.
pub(crate) struct SignInPages {
    pub(crate) address: String,
    pub(crate) handle: actix_web::dev::ServerHandle,
}

impl SignInPages {
    pub(crate) async fn start() -> Self {
        let server = HttpServer::new(|| App::new().route("/{file}", web::get().to(page_asset)))
            .workers(1)
            .bind(("127.0.0.1", 0))
            .expect("a port for the sign-in pages");
        let address = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { address, handle }
    }

    /// The sign-in page for `flow`, as PingFederate redirects a browser to it.
    pub(crate) fn sign_in(&self, app: &TestApp, flow: &str) -> String {
        format!(
            "{}/index.html?flowId={flow}&baseUrl={}",
            self.address, app.address
        )
    }

    /// The federation server's return URL.
    pub(crate) fn return_url(&self) -> String {
        format!("{}/resumed.html", self.address)
    }
}

async fn page_asset(file: web::Path<String>) -> HttpResponse {
    let interop = repo_root().join("tests/interop");
    let dist = interop.join("node_modules/@ping-identity/pf-authn-js-widget/dist");
    let (path, content_type) = match file.as_str() {
        "index.html" => (interop.join("widget/index.html"), "text/html"),
        "resumed.html" => (interop.join("widget/resumed.html"), "text/html"),
        "pf.authn-widget.js" => (dist.join("pf.authn-widget.js"), "text/javascript"),
        "main-styles.css" => (dist.join("main-styles.css"), "text/css"),
        _ => return HttpResponse::NotFound().finish(),
    };
    match std::fs::read(path) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(format!("{content_type}; charset=utf-8"))
            .body(bytes),
        Err(_) => HttpResponse::NotFound().finish(),
    }
}

/// The screens the widget showed for `flow`, in order (the page records them).
pub(crate) async fn screens(browser: &Browser, flow: &str) -> Vec<String> {
    let seen = browser
        .run(
            "return JSON.parse(sessionStorage.getItem('seen:' + arguments[0]) || '[]');",
            json!([flow]),
        )
        .await;
    serde_json::from_value(seen).expect("a list of screens")
}

/// The flow's state as the browser reads it (it holds the flow's binding cookie).
pub(crate) async fn state_in_browser(browser: &Browser, app: &TestApp, flow: &str) -> AuthnState {
    let script = "const done = arguments[arguments.length - 1];
        fetch(arguments[0], { credentials: 'include', headers: { Accept: 'application/json' } })
            .then(response => response.text()).then(done, error => done('failed: ' + error));";
    let url = app.url(&format!("/pf-ws/authn/flows/{flow}"));
    let body = browser.run_async(script, json!([url])).await;
    let body = body.as_str().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

/// The widget brought the person back to the federation server, which reads `COMPLETED`.
pub(crate) async fn returned_completed(
    browser: &Browser,
    app: &TestApp,
    pages: &SignInPages,
    flow: &str,
) -> Value {
    browser.wait_for_url(&pages.return_url(), SCREEN).await;
    assert!(
        browser
            .text()
            .await
            .contains("Back at the federation server")
    );
    let state = state_in_browser(browser, app, flow).await;
    assert_eq!(expect_status!(state, Resume).resume_url, pages.return_url());
    let result: Value = app.result(flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    result
}

/// Where the pages shown for a flow include, in order, each of `expected` (as substrings).
pub(crate) fn assert_screens(screens: &[String], expected: &[&str]) {
    let mut rest = screens.iter();
    for text in expected {
        assert!(
            rest.any(|screen| screen.contains(text)),
            "no screen with {text:?} (in order) among {screens:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingfederate_widget_drives_browser_flows_in_chromium() {
    let interop = repo_root().join("tests/interop");
    assert!(
        interop
            .join("node_modules/@ping-identity/pf-authn-js-widget/dist/pf.authn-widget.js")
            .exists(),
        "run ./scripts/test, which installs the widget (npm ci in tests/interop)"
    );
    // One browser for every flow on both backends: starting Chromium is the slow part.
    let browser = Browser::start().await;
    let pages = SignInPages::start().await;
    let redis = RedisServer::start();
    for backend in [Backend::Memory, Backend::Redis(&redis)] {
        let app = TestApp::spawn_with(
            backend,
            &unique("t"),
            Figment::new()
                // The page lives on its own origin, as PingFederate deployments host it.
                .merge(("http.cors_origins", vec![pages.address.clone()]))
                // A QR scan then also asks the person to approve on the phone (the safe
                // default issue 12 asks for), which the widget must wait through.
                .merge(("policy.qr_user_approval", true)),
        )
        .await;
        push_approval(&browser, &app, &pages).await;
        transaction_approval(&browser, &app, &pages).await;
        registration(&browser, &app, &pages).await;
        qr_sign_on(&browser, &app, &pages).await;
    }
    pages.handle.stop(false).await;
}

/// `oob`: the widget waits on the push, the phone approves, the widget says so and returns.
async fn push_approval(browser: &Browser, app: &TestApp, pages: &SignInPages) {
    let phone = app.pair_device("alice").await;
    let mut request = oob_request("alice");
    request["returnUrl"] = json!(pages.return_url());
    let flow = app.start_flow_unauthenticated(&request).await;
    assert!(
        phone.pending(0).await.is_empty(),
        "nothing reaches the phone before the widget is on the page"
    );
    browser.goto(&pages.sign_in(app, &flow)).await;
    browser.wait_for_text("Authenticating", SCREEN).await;
    let push = phone.one_pending().await;
    assert_eq!(push.application.name, "Demo Bank");
    phone.device.approve(&push).await.unwrap();

    let result = returned_completed(browser, app, pages, &flow).await;
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["deviceId"], phone.id());
    assert_screens(
        &screens(browser, &flow).await,
        &["Authenticating", "Authenticated"],
    );
}

/// `transaction`: as `oob`, and the phone shows the transfer the person approves.
async fn transaction_approval(browser: &Browser, app: &TestApp, pages: &SignInPages) {
    let phone = app.pair_device("bob").await;
    let mut request = transfer_request("bob", "250.00", "Carol's Garage");
    request["returnUrl"] = json!(pages.return_url());
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&pages.sign_in(app, &flow)).await;
    browser.wait_for_text("Authenticating", SCREEN).await;
    let push = phone.one_pending().await;
    assert!(
        push.body.contains("250.00") && push.body.contains("Carol's Garage"),
        "{push:?}"
    );
    phone.device.approve(&push).await.unwrap();

    let result = returned_completed(browser, app, pages, &flow).await;
    assert_eq!(result["subject"], "bob");
    assert_screens(
        &screens(browser, &flow).await,
        &["Authenticating", "Authenticated"],
    );
}

/// `registration`: the widget shows the pairing key and its QR code; the app pairs with
/// the key the person reads off the page; the widget returns.
async fn registration(browser: &Browser, app: &TestApp, pages: &SignInPages) {
    let user = unique("carol");
    let mut request = oob_request(&user);
    request["kind"] = json!("registration");
    request["returnUrl"] = json!(pages.return_url());
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&pages.sign_in(app, &flow)).await;
    browser.wait_for_text("Pairing Key:", SCREEN).await;
    assert!(browser.text().await.contains("Demo Bank"));
    assert!(qr_code_drawn(browser).await, "the pairing QR code is drawn");
    // The key is the text under "Pairing Key:".
    let key = browser
        .run(
            "const blocks = [...document.querySelectorAll('#authnwidget .text-block--overflow-wrap')];
             const label = blocks.findIndex(block => block.innerText.trim() === 'Pairing Key:');
             return label >= 0 && blocks[label + 1] ? blocks[label + 1].innerText.trim() : null;",
            json!([]),
        )
        .await;
    let key = key.as_str().expect("a pairing key on the page");
    let device = crate::support::pair_phone(&app.address, key, "new phone")
        .await
        .expect("the key on the page pairs the app");

    let result = returned_completed(browser, app, pages, &flow).await;
    assert_screens(&screens(browser, &flow).await, &["Pairing Key:"]);
    assert_eq!(result["method"], "registration");
    assert_eq!(result["subject"], user.as_str());
    assert_eq!(result["deviceId"], device.id());
}

/// `qr`: the widget shows the QR code; a trusted phone scans it, the person approves on the
/// phone (policy `qr_user_approval`), and the widget moves on to completion.
async fn qr_sign_on(browser: &Browser, app: &TestApp, pages: &SignInPages) {
    let phone = app.pair_device("alice").await;
    let request = json!({
        "kind": "qr",
        "application": { "name": "Demo Bank" },
        "returnUrl": pages.return_url(),
    });
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&pages.sign_in(app, &flow)).await;
    browser.wait_for_text("Authentication Code", SCREEN).await;
    assert!(qr_code_drawn(browser).await, "the sign-on QR code is drawn");
    // What the QR code encodes, from the state the widget holds and drew it from.
    let shown = browser
        .run("return window.authnWidget.store.getStore();", json!([]))
        .await;
    assert_eq!(shown["status"], "AUTHENTICATION_CODE_RESPONSE_REQUIRED");
    let uri = shown["uri"].as_str().expect("a QR code").to_owned();
    // A short code to type in, where the flow gives one, is printed under the QR code.
    if let Some(short) = shown["code"].as_str().filter(|short| !short.is_empty()) {
        assert!(browser.text().await.contains(short), "{short} is printed");
    }

    let scanned = phone.device.scan(&uri).await.expect("the scan is accepted");
    assert_eq!(scanned.status, QrStatus::PushConfirmationWaiting);
    // The widget keeps the code screen up while it polls (it re-renders only when the
    // status is neither that nor PUSH_CONFIRMATION_WAITING).
    let silent = phone.one_pending().await;
    assert!(silent.silent);
    phone.device.approve(&silent).await.unwrap();
    let approval = phone.one_pending().await;
    assert!(!approval.silent);
    phone.device.approve(&approval).await.unwrap();

    let result = returned_completed(browser, app, pages, &flow).await;
    assert_eq!(result["subject"], "alice");
    assert_eq!(result["deviceId"], phone.id());
    assert_screens(
        &screens(browser, &flow).await,
        &["Authentication Code", "Authenticated"],
    );
}

/// Whether the page's QR canvas has dark modules drawn on it.
async fn qr_code_drawn(browser: &Browser) -> bool {
    let script = "const canvas = document.getElementById('qrcode');
        if (!canvas || canvas.width === 0) return false;
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < pixels.length; i += 4) { if (pixels[i + 3] > 0 && pixels[i] < 128) return true; }
        return false;";
    browser.run(script, json!([])).await == true
}
