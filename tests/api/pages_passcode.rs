//! The hosted passcode and set-up pages over plain HTTP, as a browser without script sees
//! them: passcode entry with the masked number, a wrong code's attempts left and a resend;
//! setting up SMS and an authenticator app as policy requires; each in English and German;
//! forged and malformed forms refused without changing the flow.
//! `pages_passcode_browser` drives the same pages in headless Chromium.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use assent_proto::authn::{AuthnState, StatusName};
use figment::Figment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages::{Fetched, PageBrowser};
use crate::support::{Backend, TestApp, on_both_backends, oob_request, unique};

on_both_backends!(
    the_passcode_page_shows_the_number_counts_wrong_codes_and_resends,
    the_set_up_pages_lead_through_sms_and_an_authenticator_app,
    forged_or_malformed_passcode_forms_change_nothing,
    an_email_address_is_set_up_on_the_pages,
    the_pairing_page_shows_the_key_and_moves_on_once_the_app_paired,
);

/// Where the federation server takes the browser back.
const RETURN_URL: &str = "https://rp.example:8443/back?state=1";

/// The number of the SMS sign-ins' user.
const PHONE: &str = "+15555550177";

/// The development sender's outbox file of one test: every message sent, one JSON line each.
pub(crate) struct Outbox {
    path: PathBuf,
}

impl Outbox {
    /// A fresh file name.
    pub(crate) fn new() -> Self {
        Self {
            path: std::env::temp_dir().join(unique("assent-outbox")),
        }
    }

    /// The configuration that writes messages there, passcodes by SMS to the profile's
    /// number, and resends without waiting (so that tests need not sleep).
    pub(crate) fn config(&self) -> Figment {
        Figment::new()
            .merge(("delivery.sms", "file"))
            .merge(("delivery.file.path", self.path.display().to_string()))
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.otp_resend_interval_secs", 0))
    }

    /// The texts of the messages (text messages, emails) sent to `to` so far.
    pub(crate) fn texts_to(&self, to: &str) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["to"] == to)
            .map(|message| message["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until `count` messages went to `to`; returns them.
    pub(crate) async fn wait_for_texts(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let texts = self.texts_to(to);
            if texts.len() >= count {
                return texts;
            }
            assert!(
                Instant::now() < deadline,
                "{count} message(s) to {to}; sent: {texts:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The six-digit code in a message.
pub(crate) fn code_in(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(6)
        .find(|window| window.iter().all(char::is_ascii_digit))
        .map(|window| window.iter().collect())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

/// The code an authenticator app shows now for the base32 `key` (RFC 6238: SHA-1, six
/// digits, 30 s), computed apart from assent's own code.
pub(crate) fn authenticator_code(key: &str) -> String {
    let secret = totp_rs::Secret::Encoded(key.to_owned())
        .to_bytes()
        .expect("a base32 key");
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        None,
        "test".to_owned(),
    )
    .generate_current()
    .expect("the clock is after 1970")
}

/// A sign-in of `user`, known only by their profile's phone number, returning to
/// [`RETURN_URL`].
pub(crate) fn sms_request(user: &str, phone: &str) -> Value {
    let mut request = oob_request(user);
    request["user"]["phone"] = json!(phone);
    request["returnUrl"] = json!(RETURN_URL);
    request
}

/// The flow's state through the JSON API, with the page's binding.
async fn state(app: &TestApp, page: &PageBrowser<'_>) -> AuthnState {
    let response = app
        .http
        .get(app.url(&format!("/pf-ws/authn/flows/{}", page.flow)))
        .header(
            "X-PF-Authn-API-State",
            page.cookie.clone().expect("the page bound the flow"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Posts `fields` as a browser asking for `language` does.
async fn post_in(
    app: &TestApp,
    page: &PageBrowser<'_>,
    language: &str,
    fields: &[(&str, &str)],
) -> Fetched {
    let request = app
        .http
        .post(app.url(&format!("/flows/{}", page.flow)))
        .header("Accept-Language", language)
        .form(fields);
    let response = page.with_cookie(request).send().await.unwrap();
    Fetched {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

/// Posts `action` with the page's token and `fields`, expecting a redirect to the page.
async fn act_with(page: &mut PageBrowser<'_>, action: &str, fields: &[(&str, &str)]) {
    let csrf = page.get("en").await.field("csrf");
    let mut form = vec![("csrf", csrf.as_str()), ("action", action)];
    form.extend_from_slice(fields);
    let response = page.post(&form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{action}");
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!("/flows/{}", page.flow),
        "{action}"
    );
}

/// From the start page to the passcode page: enter, pick the SMS backup.
async fn to_passcode_page(app: &TestApp, page: &mut PageBrowser<'_>) {
    page.get("en").await;
    page.act("authenticate", None).await;
    // The method's name in the page's language (the API's own `name` is English).
    page.shows(&["Text message (backup)"], &["SMS (Ersatz)"])
        .await;
    let german = page.get("de").await;
    assert!(
        !german.html.contains("Backup: text message"),
        "{}",
        german.html
    );
    let selection = state(app, page).await;
    let sms = &selection.status.devices()[0];
    page.act("selectDevice", Some(&sms.id)).await;
    assert_eq!(
        state(app, page).await.status.name(),
        StatusName::OtpRequired
    );
}

/// The text of the element with id `id`.
fn text_of(page: &Fetched, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page
        .html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in:\n{}", page.html))
        + marker.len();
    page.html[start..].split('<').next().unwrap().to_owned()
}

async fn the_passcode_page_shows_the_number_counts_wrong_codes_and_resends(backend: Backend<'_>) {
    let outbox = Outbox::new();
    let app = TestApp::spawn_with(backend, &unique("t"), outbox.config()).await;
    let flow = app
        .start_flow_unauthenticated(&sms_request("carol", PHONE))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    to_passcode_page(&app, &mut page).await;
    let first = code_in(&outbox.wait_for_texts(PHONE, 1).await[0]);

    let entry = page
        .shows(
            &[
                "Enter your passcode",
                "We sent a code by text message to",
                "+1555***0177",
                "The code has 6 digits.",
                "Send a new code",
                "Cancel sign-in",
            ],
            &[
                "Geben Sie Ihren Code ein",
                "Wir haben einen Code per SMS an",
                "+1555***0177",
                "Neuen Code senden",
            ],
        )
        .await;
    for attribute in [
        "name=\"otp\"",
        "autocomplete=\"one-time-code\"",
        "inputmode=\"numeric\"",
        "<label for=\"otp\">",
    ] {
        assert!(entry.html.contains(attribute), "{attribute}");
    }
    assert!(!entry.html.contains("5555550177"), "the number is masked");

    // A wrong code: the same page, saying so in the person's language, with the tries left.
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    let csrf = entry.field("csrf");
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "checkOtp"),
        ("otp", wrong),
    ];
    let refused = post_in(&app, &page, "de-DE,de;q=0.9", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_shows(&[
        "<html lang=\"de\">",
        "Geben Sie Ihren Code ein",
        "Dieser Code ist falsch oder abgelaufen. Verbleibende Versuche: 2.",
        "aria-invalid=\"true\"",
    ]);
    let refused = post_in(&app, &page, "en", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        text_of(&refused, "notice"),
        "That code is wrong or has expired. Attempts left: 1."
    );
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::OtpRequired
    );

    // Send a new code: a second text to the same number. Past the sends policy allows
    // (three), the page says to wait, and nothing more is sent.
    act_with(&mut page, "resend", &[]).await;
    let texts = outbox.wait_for_texts(PHONE, 2).await;
    assert_eq!(texts.len(), 2);
    act_with(&mut page, "resend", &[]).await;
    let texts = outbox.wait_for_texts(PHONE, 3).await;
    let csrf = page.get("en").await.field("csrf");
    let refused = post_in(
        &app,
        &page,
        "en",
        &[("csrf", csrf.as_str()), ("action", "resend")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        text_of(&refused, "notice"),
        "Too many codes were asked for. Wait a moment and try again."
    );
    assert_eq!(outbox.texts_to(PHONE).len(), 3);
    // The latest code completes the sign-in.
    let latest = code_in(&texts[2]);
    act_with(&mut page, "checkOtp", &[("otp", &latest)]).await;
    page.shows(
        &["Authentication successful"],
        &["Authentifizierung erfolgreich"],
    )
    .await;
    page.continue_to(RETURN_URL).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["method"], "sms", "{result}");
    app.stop().await;
}

async fn the_set_up_pages_lead_through_sms_and_an_authenticator_app(backend: Backend<'_>) {
    const ADMIN: &str = "Questions? Call the help desk on 555 0100.";
    const NEW_PHONE: &str = "+15555550123";
    let outbox = Outbox::new();
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        outbox
            .config()
            .merge((
                "mfa.mandatory_authentication_methods",
                json!(["SMS", "TOTP"]),
            ))
            .merge(("mfa.admin_message", ADMIN)),
    )
    .await;
    // No device at all: the mandatory devices window comes first.
    let mut request = oob_request("hank");
    request["returnUrl"] = json!(RETURN_URL);
    let flow = app.start_flow_unauthenticated(&request).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("authenticate", None).await;
    page.shows(
        &[
            "Set up your sign-in methods",
            "Text message (SMS)",
            "Authenticator app",
            "it cannot be skipped",
            ADMIN,
            "Start set-up",
        ],
        &[
            "Anmeldemethoden einrichten",
            "Textnachricht (SMS)",
            "Authenticator-App",
            "kann nicht übersprungen werden",
            ADMIN,
        ],
    )
    .await;

    act_with(&mut page, "setupMfa", &[]).await;
    let methods = page
        .shows(
            &[
                "Choose a method to set up",
                "value=\"SMS\"",
                "value=\"TOTP\"",
                "Continue",
            ],
            &["Methode zum Einrichten wählen", "Weiter"],
        )
        .await;
    // A method the page did not list: a bad form, and the flow stays where it was.
    let csrf = methods.field("csrf");
    let forged = post_in(
        &app,
        &page,
        "en",
        &[
            ("csrf", &csrf),
            ("action", "selectDevicePairingMethod"),
            ("method", "CARRIER_PIGEON"),
        ],
    )
    .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::DevicePairingMethodRequired
    );

    act_with(&mut page, "selectDevicePairingMethod", &[("method", "SMS")]).await;
    let target = page
        .shows(
            &[
                "Add a phone number for text messages",
                "<label for=\"target\">Phone number</label>",
                "type=\"tel\"",
                "autocomplete=\"tel\"",
            ],
            &[
                "Telefonnummer für Textnachrichten hinzufügen",
                "Telefonnummer",
            ],
        )
        .await;
    // Not a number: said on the page, nothing sent, the number still asked for.
    let csrf = target.field("csrf");
    let fields = [
        ("csrf", csrf.as_str()),
        ("action", "submitSmsTarget"),
        ("target", "+1555-CALL-NOW"),
    ];
    let refused = post_in(&app, &page, "de", &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    refused.assert_shows(&["Diese Telefonnummer können wir nicht verwenden"]);
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::SmsPairingTargetRequired
    );
    assert!(outbox.texts_to("+1555-CALL-NOW").is_empty());

    act_with(
        &mut page,
        "submitSmsTarget",
        &[("target", "+1 555 555 0123")],
    )
    .await;
    let activation = page
        .shows(
            &[
                "Confirm your phone number",
                "We sent a code by text message to +1555***0123.",
                "autocomplete=\"one-time-code\"",
                "Send a new code",
            ],
            &["Telefonnummer bestätigen", "+1555***0123"],
        )
        .await;
    assert!(activation.html.contains("inputmode=\"numeric\""));
    let code = code_in(&outbox.wait_for_texts(NEW_PHONE, 1).await[0]);
    act_with(&mut page, "activateSmsDevice", &[("otp", &code)]).await;

    // SMS is done: only the authenticator app is left to choose.
    let methods = page
        .shows(&["Choose a method to set up", "Authenticator app"], &[])
        .await;
    assert!(!methods.html.contains("value=\"SMS\""));
    act_with(
        &mut page,
        "selectDevicePairingMethod",
        &[("method", "TOTP")],
    )
    .await;
    let totp = page
        .shows(
            &[
                "Set up your authenticator app",
                "Key:",
                "alt=\"QR code for your authenticator app\"",
            ],
            &["Authenticator-App einrichten", "Schlüssel:"],
        )
        .await;
    // minijinja escapes `/` too, which the browser reads back as it was.
    assert!(
        totp.html
            .replace("&#x2f;", "/")
            .contains("src=\"data:image/svg+xml;base64,")
    );
    let key = text_of(&totp, "key");
    let csrf = totp.field("csrf");
    let wrong = post_in(
        &app,
        &page,
        "en",
        &[
            ("csrf", &csrf),
            ("action", "activateTotpDevice"),
            ("otp", "12345"),
        ],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    wrong.assert_shows(&["That code is wrong or has expired.", "Key:"]);
    act_with(
        &mut page,
        "activateTotpDevice",
        &[("otp", &authenticator_code(&key))],
    )
    .await;
    page.shows(
        &["Authentication successful"],
        &["Authentifizierung erfolgreich"],
    )
    .await;
    page.continue_to(RETURN_URL).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["method"], "enrolment", "{result}");
    app.stop().await;
}

async fn forged_or_malformed_passcode_forms_change_nothing(backend: Backend<'_>) {
    let outbox = Outbox::new();
    let app = TestApp::spawn_with(backend, &unique("t"), outbox.config()).await;
    let flow = app
        .start_flow_unauthenticated(&sms_request("erin", PHONE))
        .await;
    let mut page = PageBrowser::new(&app, &flow);
    to_passcode_page(&app, &mut page).await;
    let code = code_in(&outbox.wait_for_texts(PHONE, 1).await[0]);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let token = page.get("en").await.field("csrf");

    // Forged: no token, another token, the right token without the browser's cookie.
    for fields in [
        vec![("action", "checkOtp"), ("otp", wrong)],
        vec![
            ("csrf", "0123456789abcdef"),
            ("action", "checkOtp"),
            ("otp", wrong),
        ],
        vec![("csrf", "0123456789abcdef"), ("action", "resend")],
    ] {
        let response = page.post(&fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{fields:?}");
    }
    let response = app
        .http
        .post(app.url(&format!("/flows/{flow}")))
        .form(&[("csrf", token.as_str()), ("action", "resend")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // Malformed: no code, a blank one, an unknown action, a target with no value.
    for fields in [
        vec![("csrf", token.as_str()), ("action", "checkOtp")],
        vec![
            ("csrf", token.as_str()),
            ("action", "checkOtp"),
            ("otp", "  "),
        ],
        vec![("csrf", token.as_str()), ("action", "frobnicate")],
        vec![("csrf", token.as_str()), ("action", "submitSmsTarget")],
    ] {
        let refused = post_in(&app, &page, "de", &fields).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}");
        refused.assert_shows(&["<html lang=\"de\">"]);
    }

    // Nothing moved: one text only, no attempt counted, and the code still works.
    assert_eq!(outbox.texts_to(PHONE).len(), 1);
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::OtpRequired
    );
    let refused = post_in(
        &app,
        &page,
        "en",
        &[
            ("csrf", token.as_str()),
            ("action", "checkOtp"),
            ("otp", wrong),
        ],
    )
    .await;
    assert_eq!(
        text_of(&refused, "notice"),
        "That code is wrong or has expired. Attempts left: 2."
    );
    act_with(&mut page, "checkOtp", &[("otp", &code)]).await;
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::MfaCompleted
    );
    app.stop().await;
}

async fn an_email_address_is_set_up_on_the_pages(backend: Backend<'_>) {
    const ADDRESS: &str = "ivy@work.example";
    let outbox = Outbox::new();
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        outbox
            .config()
            .merge(("delivery.email", "file"))
            .merge(("mfa.mandatory_authentication_methods", json!(["EMAIL"]))),
    )
    .await;
    let mut request = oob_request("ivy");
    request["returnUrl"] = json!(RETURN_URL);
    let flow = app.start_flow_unauthenticated(&request).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("authenticate", None).await;
    act_with(&mut page, "setupMfa", &[]).await;
    page.shows(&["Email", "value=\"Email\""], &["E-Mail"]).await;
    act_with(
        &mut page,
        "selectDevicePairingMethod",
        &[("method", "Email")],
    )
    .await;
    let target = page
        .shows(
            &[
                "Add an email address",
                "<label for=\"target\">Email address</label>",
                "type=\"email\"",
                "autocomplete=\"email\"",
            ],
            &["E-Mail-Adresse hinzufügen", "E-Mail-Adresse"],
        )
        .await;
    let csrf = target.field("csrf");
    let refused = post_in(
        &app,
        &page,
        "en",
        &[
            ("csrf", &csrf),
            ("action", "submitEmailTarget"),
            ("target", "ivy at work"),
        ],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        text_of(&refused, "notice"),
        "That is not an email address we can use."
    );
    assert_eq!(
        state(&app, &page).await.status.name(),
        StatusName::EmailPairingTargetRequired
    );

    act_with(&mut page, "submitEmailTarget", &[("target", ADDRESS)]).await;
    page.shows(
        &[
            "Confirm your email address",
            "We sent a code to i***@work.example.",
            "autocomplete=\"one-time-code\"",
        ],
        &["E-Mail-Adresse bestätigen", "i***@work.example"],
    )
    .await;
    let code = code_in(&outbox.wait_for_texts(ADDRESS, 1).await[0]);
    act_with(&mut page, "activateEmailDevice", &[("otp", &code)]).await;
    page.shows(
        &["Authentication successful"],
        &["Authentifizierung erfolgreich"],
    )
    .await;
    app.stop().await;
}

async fn the_pairing_page_shows_the_key_and_moves_on_once_the_app_paired(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    let mut request = oob_request("alice");
    request["kind"] = json!("registration");
    request["returnUrl"] = json!(RETURN_URL);
    let flow = app.start_flow_unauthenticated(&request).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    if state(&app, &page).await.status.name() == StatusName::AuthenticationRequired {
        page.act("authenticate", None).await;
    }
    let pairing = page
        .shows(
            &[
                "Pair your mobile app",
                "Open Demo Bank on your phone",
                "Pairing key:",
                "alt=\"QR code with the pairing key\"",
                "data-poll=\"true\"",
                "Cancel sign-in",
            ],
            &["Mobile App koppeln", "Kopplungsschlüssel:"],
        )
        .await;
    assert!(
        pairing
            .html
            .replace("&#x2f;", "/")
            .contains("src=\"data:image/svg+xml;base64,")
    );
    let key = text_of(&pairing, "key");
    let device = crate::support::pair_phone(&app.address, &key, "new phone")
        .await
        .expect("the key shown pairs the app");
    page.shows(&["Return to Demo Bank"], &["Zurück zu Demo Bank"])
        .await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["method"], "registration", "{result}");
    assert_eq!(result["deviceId"], device.id());
    app.stop().await;
}
