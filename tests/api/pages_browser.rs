//! The hosted pages in headless Chromium: an OOB push with number matching completed
//! through them in English and in German, a test phone picking the number the page shows,
//! ending on the federation server's return URL. axe-core (tests/interop) checks every
//! page visited against WCAG 2.1 A and AA; a screenshot of each is kept under
//! target/screenshots/.

use std::time::Duration;

use assent_proto::admin::AuditActor;
use figment::Figment;
use serde_json::{Value, json};

use crate::audit::browser_trail;
use crate::browser::{Browser, ReturnPage, check_page, click};
use crate::support::{Backend, TestApp, oob_request, unique};

/// How long a page may take to move on (the script's long poll answers at once).
const SCREEN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oob_push_with_number_matching_completes_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        Figment::new()
            .merge(("mfa.number_matching", true))
            // The German bank's pages speak German whatever the browser asks for.
            .merge(("pages.application_languages.bank-de", "de")),
    )
    .await;
    let phone = app.pair_device("alice").await;
    for (language, application, texts) in [
        (
            "en",
            "bank",
            [
                "Verify it's you",
                "Check your device",
                "Authentication successful",
            ],
        ),
        (
            "de",
            "bank-de",
            [
                "Bestätigen Sie, dass Sie es sind",
                "Prüfen Sie Ihr Gerät",
                "Authentifizierung erfolgreich",
            ],
        ),
    ] {
        let mut request = oob_request("alice");
        request["application"]["id"] = json!(application);
        request["returnUrl"] = json!(back.url);
        let flow = app.start_flow_unauthenticated(&request).await;
        browser.goto(&app.url(&format!("/flows/{flow}"))).await;
        browser.wait_for_text(texts[0], SCREEN).await;
        let lang = browser
            .run("return document.documentElement.lang;", json!([]))
            .await;
        assert_eq!(lang, language);
        check_page(&browser, &format!("pages-{language}-1-start")).await;
        click(&browser, "button.primary").await;

        browser.wait_for_text(texts[1], SCREEN).await;
        let shown = browser
            .wait_for(
                "the number to match",
                "const number = document.getElementById('number'); return number && number.textContent;",
                json!([]),
                SCREEN,
            )
            .await;
        let shown: u8 = shown.as_str().unwrap().trim().parse().unwrap();
        check_page(&browser, &format!("pages-{language}-2-waiting")).await;
        let pending = phone.one_pending().await;
        assert!(pending.number_choices.contains(&shown), "{pending:?}");
        phone
            .device
            .answer(
                &pending,
                assent_proto::device::Decision::Approve,
                Some(shown),
            )
            .await
            .expect("the answer is taken");

        // The page's script hears of the answer and shows the next page by itself.
        browser.wait_for_text(texts[2], SCREEN).await;
        check_page(&browser, &format!("pages-{language}-3-completed")).await;
        click(&browser, "button.primary").await;
        browser.wait_for_url(&back.url, SCREEN).await;
        assert!(
            browser
                .text()
                .await
                .contains("Back at the federation server")
        );
        let result: Value = app.result(&flow).await.json().await.unwrap();
        assert_eq!(result["status"], "COMPLETED", "{result}");
        assert_eq!(result["deviceId"], phone.id());
        assert_eq!(
            browser_trail(&app, &flow).await,
            [
                ("start", AuditActor::FederationServer),
                ("authenticate", AuditActor::Browser),
                ("device decision", AuditActor::Device),
                ("continueAuthentication", AuditActor::Browser),
                ("result pickup", AuditActor::FederationServer),
            ]
            .map(|(event, actor)| (event.to_owned(), actor))
        );
    }
    app.stop().await;
    back.handle.stop(false).await;
}
