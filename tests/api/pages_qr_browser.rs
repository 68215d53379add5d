//! The hosted pages in headless Chromium for a QR sign-on and a transaction approval,
//! each in English and in German (the application's language), ending on the federation
//! server's return URL. axe-core checks every page visited; screenshots are kept under
//! target/screenshots/.

use std::time::Duration;

use assent_proto::device::QrStatus;
use figment::Figment;
use serde_json::{Value, json};

use crate::browser::{Browser, ReturnPage, check_page, click};
use crate::support::{Backend, TestApp, transfer_request, unique};

/// How long a page may take to move on (the script's long poll answers at once).
const SCREEN: Duration = Duration::from_secs(20);

/// The application whose pages speak German whatever the browser asks for.
fn german_bank() -> Figment {
    Figment::new().merge(("pages.application_languages.bank-de", "de"))
}

/// The language `lang` of the page shown now.
async fn page_language(browser: &Browser) -> Value {
    browser
        .run("return document.documentElement.lang;", json!([]))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_sign_on_completes_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        german_bank().merge(("policy.qr_user_approval", false)),
    )
    .await;
    // A shared tablet: after the scan, the person picks who they are on it.
    let tablet = app.pair_device("alice").await;
    tablet
        .device
        .join(&app.pairing_key("bob").await)
        .await
        .unwrap();
    for (language, application, texts) in [
        (
            "en",
            "bank",
            [
                "Sign in with your phone",
                "Scan the code with your phone",
                "Code scanned",
            ],
        ),
        (
            "de",
            "bank-de",
            [
                "Mit dem Telefon anmelden",
                "Scannen Sie den Code mit Ihrem Telefon",
                "Code gescannt",
            ],
        ),
    ] {
        let request = json!({
            "kind": "qr",
            "application": { "id": application, "name": "Demo Bank" },
            "returnUrl": back.url,
        });
        let flow = app.start_flow_unauthenticated(&request).await;
        browser.goto(&app.url(&format!("/flows/{flow}"))).await;
        browser.wait_for_text(texts[0], SCREEN).await;
        assert_eq!(page_language(&browser).await, language);
        check_page(&browser, &format!("qr-{language}-1-start")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[1], SCREEN).await;
        // What the phone reads: the code printed under the image, as a person types it
        // when the camera cannot scan.
        let code = browser
            .wait_for(
                "the short code",
                "const code = document.getElementById('short-code'); return code && code.textContent;",
                json!([]),
                SCREEN,
            )
            .await;
        let code = code.as_str().unwrap().trim().to_owned();
        let image = browser
            .run(
                "const image = document.getElementById('qr-image'); return image.complete && image.naturalWidth > 0;",
                json!([]),
            )
            .await;
        assert_eq!(image, true, "the QR image is drawn");
        check_page(&browser, &format!("qr-{language}-2-code")).await;
        assert_eq!(
            tablet.device.scan(&code).await.unwrap().status,
            QrStatus::UserSelectionRequired
        );

        // The page's script hears of the scan (the status stays) and says what comes.
        browser.wait_for_text(texts[2], SCREEN).await;
        check_page(&browser, &format!("qr-{language}-3-scanned")).await;
        assert_eq!(
            tablet.device.select(&code, "bob").await.unwrap().status,
            QrStatus::Completed
        );

        // The page hears of the completion and the done page sends the browser on by
        // itself (the done page's own HTML is checked in pages_qr).
        browser.wait_for_url(&back.url, SCREEN).await;
        let result: Value = app.result(&flow).await.json().await.unwrap();
        assert_eq!(result["subject"], "bob", "{result}");
        assert_eq!(result["deviceId"], tablet.id());
    }
    app.stop().await;
    back.handle.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_approval_completes_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let app = TestApp::spawn_with(Backend::Memory, &unique("t"), german_bank()).await;
    let phone = app.pair_device("alice").await;
    for (language, application, texts) in [
        (
            "en",
            "bank",
            [
                "What you are approving",
                "Check your device",
                "Authentication successful",
            ],
        ),
        (
            "de",
            "bank-de",
            [
                "Was Sie bestätigen",
                "Prüfen Sie Ihr Gerät",
                "Authentifizierung erfolgreich",
            ],
        ),
    ] {
        let mut request = transfer_request("alice", "250.00", "Carol's Garage");
        request["application"]["id"] = json!(application);
        request["returnUrl"] = json!(back.url);
        let flow = app.start_flow_unauthenticated(&request).await;
        browser.goto(&app.url(&format!("/flows/{flow}"))).await;
        browser.wait_for_text(texts[0], SCREEN).await;
        assert_eq!(page_language(&browser).await, language);
        check_page(&browser, &format!("transaction-{language}-1-start")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[1], SCREEN).await;
        // What the person approves, on the page while the phone asks.
        let shown = browser.text().await;
        for text in [
            "Approve transfer",
            "Approve transfer of 250.00 to Carol's Garage?",
            "amount",
            "250.00",
            "payee",
        ] {
            assert!(shown.contains(text), "{text:?} not on the page:\n{shown}");
        }
        check_page(&browser, &format!("transaction-{language}-2-waiting")).await;
        let pending = phone.one_pending().await;
        assert!(pending.body.contains("250.00"), "{pending:?}");
        assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");

        browser.wait_for_text(texts[2], SCREEN).await;
        check_page(&browser, &format!("transaction-{language}-3-completed")).await;
        click(&browser, "button.primary").await;
        browser.wait_for_url(&back.url, SCREEN).await;
        let result: Value = app.result(&flow).await.json().await.unwrap();
        assert_eq!(result["status"], "COMPLETED", "{result}");
        assert_eq!(result["deviceId"], phone.id());
    }
    app.stop().await;
    back.handle.stop(false).await;
}
