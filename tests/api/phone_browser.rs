//! The demo phone page in headless Chromium: it pairs with a pairing key from the Admin
//! API (its P-256 key made by Web Crypto), stays paired across a reload, shows an OOB
//! push with number matching and a transaction with what they ask, and the number the
//! person picks and the approval complete both flows. axe-core checks the page with and
//! without a request; screenshots go to target/screenshots/.

use std::time::Duration;

use assent_proto::admin::UserDevices;
use assent_proto::authn::{ActionRequest, StatusName};
use figment::Figment;
use serde_json::{Value, json};

use crate::browser::{Browser, check_page, click};
use crate::support::{Backend, TestApp, expect_status, oob_request, transfer_request, unique};

/// How long the page may take to move on (its long poll answers at once).
const SCREEN: Duration = Duration::from_secs(20);

/// The numbers the request on the page offers, once one is shown.
const NUMBERS: &str = "const buttons = document.querySelectorAll('#requests button[data-number]');
    return buttons.length ? Array.from(buttons, b => Number(b.dataset.number)) : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_phone_pairs_in_chromium_and_answers_with_the_number_shown() {
    let browser = Browser::start().await;
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        Figment::new().merge(("mfa.number_matching", true)),
    )
    .await;

    browser.goto(&app.url("/demo/phone")).await;
    browser.wait_for_text("Pair this phone", SCREEN).await;
    check_page(&browser, "demo-phone-1-pair").await;
    let key = app.pairing_key("alice").await;
    browser
        .run(
            "document.getElementById('pairing-key').value = arguments[0]; return true;",
            json!([key]),
        )
        .await;
    click(&browser, "#pair-form button[type=submit]").await;
    browser.wait_for_text("Waiting for requests", SCREEN).await;
    let devices: UserDevices = app
        .admin_get("/admin/v1/users/alice/devices")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(devices.devices.len(), 1, "{devices:?}");
    assert_eq!(devices.devices[0].name, "Browser phone");
    let device_id = devices.devices[0].id.clone();
    assert!(browser.text().await.contains(&device_id));

    // The key stays in the browser (IndexedDB): a reload is still the same phone.
    browser.goto(&app.url("/demo/phone")).await;
    browser.wait_for_text("Waiting for requests", SCREEN).await;
    assert!(browser.text().await.contains(&device_id));
    check_page(&browser, "demo-phone-2-paired").await;

    // An OOB push with number matching: the phone shows the request and its numbers, the
    // person picks the one the browser shows.
    let flow = app.start_flow(&oob_request("alice")).await;
    let waiting = app.state(&flow).await;
    let shown = expect_status!(waiting, PushConfirmationWaiting)
        .number_match
        .expect("number matching is on");
    let choices = browser
        .wait_for("the request's numbers", NUMBERS, json!([]), SCREEN)
        .await;
    let choices: Vec<u8> = serde_json::from_value(choices).unwrap();
    assert!(choices.contains(&shown) && choices.len() > 1, "{choices:?}");
    let text = browser.text().await;
    for expected in [
        "Demo Bank",
        "203.0.113.7",
        "Pick the number your browser shows",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    check_page(&browser, "demo-phone-3-request").await;
    click(
        &browser,
        &format!("#requests button[data-number=\"{shown}\"]"),
    )
    .await;
    browser.wait_for_text("Approved.", SCREEN).await;
    let done = app.poll(&flow, 10).await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted, "{done:?}");
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["deviceId"], device_id.as_str());

    // A transaction: the phone shows its title, body and parameters, and its proof binds
    // the parameters it showed (hashed by the page; a non-ASCII amount included).
    let flow = app
        .start_flow(&transfer_request("alice", "€1 250,00", "Zoë Ünal"))
        .await;
    let waiting = app.state(&flow).await;
    let number = expect_status!(waiting, PushConfirmationWaiting).number_match;
    browser.wait_for_text("Zoë Ünal", SCREEN).await;
    let text = browser.text().await;
    assert!(
        text.contains("€1 250,00") && text.contains("payee"),
        "{text}"
    );
    match number {
        Some(number) => {
            browser
                .wait_for("the request's numbers", NUMBERS, json!([]), SCREEN)
                .await;
            click(
                &browser,
                &format!("#requests button[data-number=\"{number}\"]"),
            )
            .await;
        }
        None => click(&browser, "#requests button[data-action=approve]").await,
    }
    browser.wait_for_text("Approved.", SCREEN).await;
    let done = app.poll(&flow, 10).await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted, "{done:?}");
    // The page's long poll ends with the browser, so the server stops at once.
    drop(browser);
    app.stop().await;
}
