//! The passcode and set-up pages in headless Chromium, in English and in German: an SMS
//! passcode sign-in (the code read from the text message sent, typed into the page) and
//! setting up an authenticator app (its key read from the page, its code computed apart),
//! each ending on the federation server's return URL. Codes are typed and sent with the
//! Enter key, as a keyboard user does. axe-core checks every page visited (WCAG 2.1 A and
//! AA); a screenshot of each is kept under target/screenshots/.

use std::time::Duration;

use assent_proto::admin::AuditActor;
use figment::Figment;
use serde_json::{Value, json};

use crate::audit::browser_trail;
use crate::browser::{Browser, ReturnPage, check_page, click};
use crate::pages_passcode::{Outbox, authenticator_code, code_in, sms_request};
use crate::support::{Backend, TestApp, oob_request, unique};

/// How long a page may take to move on.
const SCREEN: Duration = Duration::from_secs(20);

/// Enter, as WebDriver spells the key.
const ENTER: &str = "\u{E007}";

/// The languages each flow runs in: the language, the application (the German bank's
/// pages speak German whatever the browser asks for), and the user.
const RUNS: [(&str, &str); 2] = [("en", "bank"), ("de", "bank-de")];

/// The pages' language per application.
fn languages() -> Figment {
    Figment::new().merge(("pages.application_languages.bank-de", "de"))
}

/// The text of the element with id `id`, once the page shows it.
async fn text_of(browser: &Browser, id: &str) -> String {
    browser
        .wait_for(
            &format!("#{id}"),
            "const element = document.getElementById(arguments[0]); return element && element.textContent.trim();",
            json!([id]),
            SCREEN,
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_passcode_sign_in_completes_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let outbox = Outbox::new();
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        outbox.config().merge(languages()),
    )
    .await;
    for ((language, application), (phone, texts)) in RUNS.into_iter().zip([
        (
            "+15555550161",
            [
                "Verify it's you",
                "Choose a device",
                "Enter your passcode",
                "Attempts left: 2",
                "Authentication successful",
            ],
        ),
        (
            "+15555550162",
            [
                "Bestätigen Sie, dass Sie es sind",
                "Gerät wählen",
                "Geben Sie Ihren Code ein",
                "Verbleibende Versuche: 2",
                "Authentifizierung erfolgreich",
            ],
        ),
    ]) {
        let mut request = sms_request(&format!("sms-{language}"), phone);
        request["application"]["id"] = json!(application);
        request["returnUrl"] = json!(back.url);
        let flow = app.start_flow_unauthenticated(&request).await;
        let name = |step: &str| format!("passcode-{language}-{step}");
        browser.goto(&app.url(&format!("/flows/{flow}"))).await;
        browser.wait_for_text(texts[0], SCREEN).await;
        check_page(&browser, &name("1-start")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[1], SCREEN).await;
        check_page(&browser, &name("2-select")).await;
        click(&browser, "input[name=device]").await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[2], SCREEN).await;
        let masked = format!("{}***{}", &phone[..5], &phone[phone.len() - 4..]);
        assert!(browser.text().await.contains(&masked), "{masked}");
        check_page(&browser, &name("3-passcode")).await;
        let code = code_in(&outbox.wait_for_texts(phone, 1).await[0]);

        // A wrong code, typed and sent with Enter: the page says so, with the tries left.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        browser.type_into("#otp", &format!("{wrong}{ENTER}")).await;
        browser.wait_for_text(texts[3], SCREEN).await;
        check_page(&browser, &name("4-wrong-code")).await;

        browser.type_into("#otp", &format!("{code}{ENTER}")).await;
        browser.wait_for_text(texts[4], SCREEN).await;
        check_page(&browser, &name("5-completed")).await;
        click(&browser, "button.primary").await;
        browser.wait_for_url(&back.url, SCREEN).await;
        let result: Value = app.result(&flow).await.json().await.unwrap();
        assert_eq!(result["status"], "COMPLETED", "{result}");
        assert_eq!(result["method"], "sms", "{result}");
        // The audit trail: each step by whom, the wrong code included.
        assert_eq!(
            browser_trail(&app, &flow).await,
            [
                ("start", AuditActor::FederationServer),
                ("authenticate", AuditActor::Browser),
                ("selectDevice", AuditActor::Browser),
                ("checkOtp", AuditActor::Browser),
                ("checkOtp", AuditActor::Browser),
                ("continueAuthentication", AuditActor::Browser),
                ("result pickup", AuditActor::FederationServer),
            ]
            .map(|(event, actor)| (event.to_owned(), actor))
        );
    }
    app.stop().await;
    back.handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticator_app_is_set_up_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        languages().merge(("mfa.mandatory_authentication_methods", json!(["TOTP"]))),
    )
    .await;
    for ((language, application), texts) in RUNS.into_iter().zip([
        [
            "Verify it's you",
            "Set up your sign-in methods",
            "Choose a method to set up",
            "Set up your authenticator app",
            "Authentication successful",
        ],
        [
            "Bestätigen Sie, dass Sie es sind",
            "Anmeldemethoden einrichten",
            "Methode zum Einrichten wählen",
            "Authenticator-App einrichten",
            "Authentifizierung erfolgreich",
        ],
    ]) {
        let mut request = oob_request(&format!("totp-{language}"));
        request["application"]["id"] = json!(application);
        request["returnUrl"] = json!(back.url);
        let flow = app.start_flow_unauthenticated(&request).await;
        let name = |step: &str| format!("totp-setup-{language}-{step}");
        browser.goto(&app.url(&format!("/flows/{flow}"))).await;
        browser.wait_for_text(texts[0], SCREEN).await;
        check_page(&browser, &name("1-start")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[1], SCREEN).await;
        check_page(&browser, &name("2-setup")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[2], SCREEN).await;
        check_page(&browser, &name("3-method")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[3], SCREEN).await;
        let drawn = browser
            .run(
                "const qr = document.querySelector('img.qr'); return qr && qr.complete && qr.naturalWidth;",
                json!([]),
            )
            .await;
        assert!(drawn.as_u64().unwrap_or_default() > 0, "the QR code shows");
        check_page(&browser, &name("4-authenticator")).await;
        let key = text_of(&browser, "key").await;
        browser
            .type_into("#otp", &format!("{}{ENTER}", authenticator_code(&key)))
            .await;

        browser.wait_for_text(texts[4], SCREEN).await;
        check_page(&browser, &name("5-completed")).await;
        click(&browser, "button.primary").await;
        browser.wait_for_url(&back.url, SCREEN).await;
        let result: Value = app.result(&flow).await.json().await.unwrap();
        assert_eq!(result["status"], "COMPLETED", "{result}");
        assert_eq!(result["method"], "enrolment", "{result}");
        assert_eq!(
            browser_trail(&app, &flow).await,
            [
                ("start", AuditActor::FederationServer),
                ("authenticate", AuditActor::Browser),
                ("setupMfa", AuditActor::Browser),
                ("selectDevicePairingMethod", AuditActor::Browser),
                ("checkOtp", AuditActor::Browser),
                ("continueAuthentication", AuditActor::Browser),
                ("result pickup", AuditActor::FederationServer),
            ]
            .map(|(event, actor)| (event.to_owned(), actor))
        );
    }
    app.stop().await;
    back.handle.stop(false).await;
}
