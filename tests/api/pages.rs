//! The hosted sign-in pages (`/flows/{flowId}`) over plain HTTP, as a browser without
//! script sees them: each status of an OOB push flow in English and German, the exact
//! security headers, forms refused without their token, and the page for an unknown flow.
//! `pages_browser` drives the same pages in headless Chromium with axe-core.

use std::time::Duration;

use figment::Figment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Backend, TestApp, TestDevice, on_both_backends, oob_request, transfer_request, unique,
};

on_both_backends!(
    each_oob_status_renders_in_english_and_german,
    a_form_without_its_token_is_refused_and_changes_nothing,
    an_unknown_flow_is_a_not_found_page,
    a_transaction_shows_what_is_approved_and_other_statuses_get_a_generic_page,
    a_pages_action_is_the_browsers_in_the_audit_trail,
);

/// Where the federation server takes the browser back.
const RETURN_URL: &str = "https://rp.example:8443/back?state=1";

/// The Content-Security-Policy of every page: forms post to assent only, and no redirect
/// after a form leaves it (browsers check `form-action` along the redirect chain, which
/// would stop a federation server redirecting on to its relying party).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// The return URL as a page writes it in an attribute (minijinja escapes `/` too, which
/// the browser reads back as it was).
pub(crate) fn escaped(url: &str) -> String {
    url.replace('&', "&amp;").replace('/', "&#x2f;")
}

/// A browser without script on one flow's page: it keeps the binding cookie the page sets.
pub(crate) struct PageBrowser<'a> {
    app: &'a TestApp,
    pub(crate) flow: String,
    pub(crate) cookie: Option<String>,
}

/// A page as fetched: its status, its headers and its HTML.
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) html: String,
}

impl Fetched {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The value of the first hidden field or attribute `name="..."` is followed by.
    pub(crate) fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.html.find(&marker).unwrap_or_else(|| {
            panic!("no field {name} in:\n{}", self.html);
        }) + marker.len();
        self.html[start..].split('"').next().unwrap().to_owned()
    }

    pub(crate) fn assert_shows(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                self.html.contains(text),
                "{text:?} not on the page:\n{}",
                self.html
            );
        }
    }
}

impl<'a> PageBrowser<'a> {
    pub(crate) fn new(app: &'a TestApp, flow: &str) -> Self {
        Self {
            app,
            flow: flow.to_owned(),
            cookie: None,
        }
    }

    pub(crate) fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(secret) => request.header("Cookie", format!("assent_authn_state={secret}")),
            None => request,
        }
    }

    /// `GET /flows/{flow}` in `language`.
    pub(crate) async fn get(&mut self, language: &str) -> Fetched {
        let request = self
            .app
            .http
            .get(self.app.url(&format!("/flows/{}", self.flow)))
            .header("Accept-Language", language);
        let response = self.with_cookie(request).send().await.unwrap();
        let page_cookie = format!("Path=/flows/{};", self.flow);
        for cookie in response.headers().get_all("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            if cookie.contains(&page_cookie) {
                let value = cookie.split(';').next().unwrap();
                self.cookie = Some(value.split_once('=').unwrap().1.to_owned());
            }
        }
        Fetched {
            status: response.status(),
            headers: response.headers().clone(),
            html: response.text().await.unwrap(),
        }
    }

    /// Posts a page's form with `fields`.
    pub(crate) async fn post(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let request = self
            .app
            .http
            .post(self.app.url(&format!("/flows/{}", self.flow)))
            .form(fields);
        self.with_cookie(request).send().await.unwrap()
    }

    /// Posts `action` with the page's token (and `device`), expecting a redirect; returns
    /// where to.
    pub(crate) async fn act(&mut self, action: &str, device: Option<&str>) -> String {
        let csrf = self.get("en").await.field("csrf");
        let mut fields = vec![("csrf", csrf.as_str()), ("action", action)];
        if let Some(device) = device {
            fields.push(("device", device));
        }
        let response = self.post(&fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
        response.headers()["location"].to_str().unwrap().to_owned()
    }

    /// "Continue" on the completed page: back to the page, whose done page then sends
    /// the browser on to `return_url` by itself (a plain navigation, which `form-action`
    /// does not limit) and links there.
    pub(crate) async fn continue_to(&mut self, return_url: &str) -> Fetched {
        assert_eq!(
            self.act("continueAuthentication", None).await,
            format!("/flows/{}", self.flow)
        );
        let done = self
            .shows(&["Return to Demo Bank"], &["Zurück zu Demo Bank"])
            .await;
        let url = escaped(return_url);
        assert!(
            done.html.contains(&format!("href=\"{url}\"")),
            "{}",
            done.html
        );
        assert!(
            done.html.contains(&format!(
                "<meta http-equiv=\"refresh\" content=\"0;url={url}\">"
            )),
            "the done page moves on to the return URL: {}",
            done.html
        );
        done
    }

    /// The page in English and in German shows `english` and `german`.
    pub(crate) async fn shows(&mut self, english: &[&str], german: &[&str]) -> Fetched {
        let page = self.get("de-DE,de;q=0.9,en;q=0.5").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html.contains("<html lang=\"de\">"));
        page.assert_shows(german);
        let page = self.get("en-GB,en;q=0.8").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html.contains("<html lang=\"en\">"));
        page.assert_shows(english);
        page
    }
}

async fn spawn(backend: Backend<'_>) -> TestApp {
    TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new()
            .merge(("mfa.number_matching", true))
            .merge(("mfa.device_selection", "prompt"))
            .merge(("policy.push_timeout_secs", 2)),
    )
    .await
}

fn request_returning(user: &str) -> Value {
    let mut request = oob_request(user);
    request["returnUrl"] = json!(RETURN_URL);
    request
}

/// The number the page shows for the phone to pick.
fn number(page: &Fetched) -> u8 {
    let marker = "<p class=\"number\" id=\"number\">";
    let start = page.html.find(marker).expect("a number on the page") + marker.len();
    page.html[start..]
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn answer_with(phone: &TestDevice, number: u8) -> String {
    let pending = phone.one_pending().await;
    assert!(pending.number_choices.contains(&number), "{pending:?}");
    phone
        .device
        .answer(
            &pending,
            assent_proto::device::Decision::Approve,
            Some(number),
        )
        .await
        .expect("the answer is taken")
        .status
}

async fn each_oob_status_renders_in_english_and_german(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let first = app.pair_device("alice").await;
    let second = app.pair_device("alice").await;
    let flow = app
        .start_flow_unauthenticated(&request_returning("alice"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);

    let start = page
        .shows(
            &["Send a request to my device", "Demo Bank asks you"],
            &["Anfrage an mein Gerät senden", "Demo Bank bittet Sie"],
        )
        .await;
    assert_eq!(start.header("content-security-policy"), CSP);
    assert_eq!(start.header("x-content-type-options"), "nosniff");
    assert_eq!(start.header("referrer-policy"), "no-referrer");
    assert!(start.header("content-type").starts_with("text/html"));

    assert_eq!(
        page.act("authenticate", None).await,
        format!("/flows/{flow}")
    );
    let selection = page
        .shows(
            &["Choose a device", "Send request", "test phone", "Default"],
            &["Gerät wählen", "Anfrage senden", "Standard"],
        )
        .await;
    assert!(
        selection
            .html
            .contains(&format!("value=\"{}\"", second.id()))
    );

    page.act("selectDevice", Some(first.id())).await;
    let waiting = page
        .shows(
            &[
                "Check your device",
                "Tap this number on your device",
                "role=\"status\"",
            ],
            &[
                "Prüfen Sie Ihr Gerät",
                "Tippen Sie auf Ihrem Gerät auf diese Zahl",
            ],
        )
        .await;
    assert!(waiting.html.contains("data-poll=\"true\""));
    let shown = number(&waiting);
    assert!(first.one_pending().await.number_choices.contains(&shown));

    // No answer: the push times out (2 s here), and the page offers to send again or to
    // another device.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    page.shows(
        &[
            "No answer from your device",
            "Send again",
            "Send request there",
        ],
        &["Keine Antwort von Ihrem Gerät", "Erneut senden"],
    )
    .await;

    page.act("selectDevice", Some(second.id())).await;
    let waiting = page.get("en").await;
    assert_eq!(
        answer_with(&second, number(&waiting)).await,
        "MFA_COMPLETED"
    );
    page.shows(
        &["Authentication successful", "Continue to Demo Bank"],
        &["Authentifizierung erfolgreich", "Weiter zu Demo Bank"],
    )
    .await;

    // Continue: to the done page, which sends the browser on to the federation server.
    page.continue_to(RETURN_URL).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");

    // Denied on the phone.
    let flow = app
        .start_flow_unauthenticated(&request_returning("alice"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("authenticate", None).await;
    page.act("selectDevice", Some(first.id())).await;
    assert_eq!(
        first.answer_pending(false).await,
        "PUSH_CONFIRMATION_REJECTED"
    );
    page.shows(
        &["Request denied", "denied on test phone", "Cancel sign-in"],
        &["Anfrage abgelehnt", "Anmeldung abbrechen"],
    )
    .await;
    page.act("cancelAuthentication", None).await;
    let failed = page
        .shows(
            &["Sign-in failed", "Return to Demo Bank"],
            &["Anmeldung fehlgeschlagen", "Zurück zu Demo Bank"],
        )
        .await;
    // A way back, so the federation server hears of the failure; no automatic move on,
    // so the person can read why.
    assert!(
        failed
            .html
            .contains(&format!("href=\"{}\"", escaped(RETURN_URL)))
    );
    assert!(!failed.html.contains("http-equiv"));

    // Canceled from the start page.
    let flow = app
        .start_flow_unauthenticated(&request_returning("alice"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("cancelAuthentication", None).await;
    page.shows(
        &["Sign-in canceled", "was canceled", "Return to Demo Bank"],
        &["Anmeldung abgebrochen", "Zurück zu Demo Bank"],
    )
    .await;
    app.stop().await;
}

async fn a_form_without_its_token_is_refused_and_changes_nothing(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let phone = app.pair_device("alice").await;
    let flow = app
        .start_flow_unauthenticated(&request_returning("alice"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);

    // Before any page was read: refused, and the flow is not bound to the poster.
    let response = page.post(&[("action", "authenticate")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let refused = response.text().await.unwrap();
    assert!(refused.contains("Sign-in opened elsewhere"), "{refused}");

    let start = page.get("en").await;
    assert_eq!(start.status, StatusCode::OK);
    let token = start.field("csrf");
    for fields in [
        vec![("action", "authenticate")],
        vec![("action", "authenticate"), ("csrf", "0123456789abcdef")],
    ] {
        let response = page.post(&fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{fields:?}");
    }
    // The right token without the browser's cookie: a forged form from elsewhere.
    let response = app
        .http
        .post(app.url(&format!("/flows/{flow}")))
        .form(&[("action", "authenticate"), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A form the pages do not offer.
    let response = page
        .post(&[("action", "checkOtp"), ("csrf", token.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Nothing moved: still the start page, nothing sent to the phone.
    page.get("en")
        .await
        .assert_shows(&["Send a request to my device"]);
    assert!(phone.pending(0).await.is_empty());
    app.stop().await;
}

async fn an_unknown_flow_is_a_not_found_page(backend: Backend<'_>) {
    let app = spawn(backend).await;
    for (language, text) in [
        ("en", "Sign-in not found"),
        ("de", "Anmeldung nicht gefunden"),
    ] {
        let mut page = PageBrowser::new(&app, "Xw6sdEywvMrvbzV0jhPwu3Xo");
        let missing = page.get(language).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        missing.assert_shows(&[text, &format!("<html lang=\"{language}\">")]);
        assert!(
            missing
                .header("content-security-policy")
                .starts_with("default-src 'none'; script-src 'self';")
        );
        let mut page = PageBrowser::new(&app, "not a flow id");
        assert_eq!(page.get(language).await.status, StatusCode::NOT_FOUND);
    }
    app.stop().await;
}

async fn a_transaction_shows_what_is_approved_and_other_statuses_get_a_generic_page(
    backend: Backend<'_>,
) {
    let app = spawn(backend).await;
    let phone = app.pair_device("bob").await;
    let flow = app
        .start_flow_unauthenticated(&transfer_request("bob", "250.00", "Carol <Garage>"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("authenticate", None).await;
    let waiting = page
        .shows(
            &[
                "What you are approving",
                "250.00",
                "payee",
                "Carol &lt;Garage&gt;",
            ],
            &["Was Sie bestätigen", "250.00"],
        )
        .await;
    assert!(!waiting.html.contains("Carol <Garage>"), "escaped");
    assert!(phone.one_pending().await.body.contains("Carol <Garage>"));

    // A trusted app's device authorization waits for the app in a web view, which a page
    // cannot stand in for: a clear message and a way out. (A QR sign-on's pages are in
    // `pages_qr`, set-up pages in `pages_passcode`.)
    let mut authorization = oob_request("bob");
    authorization["kind"] = json!("device_authorization");
    let flow = app.start_flow_unauthenticated(&authorization).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.shows(
        &["Continue in the application", "Cancel sign-in"],
        &["In der Anwendung fortfahren", "Anmeldung abbrechen"],
    )
    .await;
    page.act("cancelAuthentication", None).await;
    page.shows(&["Sign-in canceled"], &["Anmeldung abgebrochen"])
        .await;
    app.stop().await;
}

/// What a person does on a page is recorded as the browser's doing, with its address.
async fn a_pages_action_is_the_browsers_in_the_audit_trail(backend: Backend<'_>) {
    let app = spawn(backend).await;
    app.pair_device("alice").await;
    let flow = app
        .start_flow_unauthenticated(&request_returning("alice"))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    page.act("authenticate", None).await;

    let response = app
        .admin_get(&format!("/admin/v1/flows/{flow}/events"))
        .await;
    assert_eq!(response.status(), 200);
    let trail: assent_proto::admin::FlowEvents = response.json().await.expect("events");
    let entered = trail
        .events
        .iter()
        .find(|event| event.event == "authenticate")
        .expect("the page's authenticate is in the trail");
    assert_eq!(entered.actor, assent_proto::admin::AuditActor::Browser);
    assert_eq!(entered.ip.as_deref(), Some("127.0.0.1"));
}
