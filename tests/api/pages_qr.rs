//! The QR sign-on pages over plain HTTP, as a browser without script sees them: the
//! start, the code (image, short code, expiry, renewal) in English and German, the page
//! after a shared phone scanned it, a code renewed after it expired, and completion back
//! to the federation server's return URL. `pages_qr_browser` drives them in Chromium.

use std::time::Duration;

use assent_core::clock::Clock;
use assent_proto::device::QrStatus;
use base64::Engine;
use chrono::Timelike;
use figment::Figment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pages::{Fetched, PageBrowser};
use crate::support::{Backend, TestApp, on_both_backends, unique};

on_both_backends!(
    the_qr_page_shows_the_code_then_the_scan_then_the_return,
    an_expired_code_is_renewed_and_the_approval_returns_to_the_return_url,
);

/// Where the federation server takes the browser back.
const RETURN_URL: &str = "https://rp.example:8443/back?state=qr";

fn qr_request() -> Value {
    json!({
        "kind": "qr",
        "application": { "name": "Demo Bank" },
        "clientIp": "203.0.113.7",
        "returnUrl": RETURN_URL,
    })
}

/// The text between `marker` and the next `end` on the page.
fn after<'a>(page: &'a Fetched, marker: &str, end: char) -> &'a str {
    let start = page
        .html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} on the page:\n{}", page.html))
        + marker.len();
    page.html[start..].split(end).next().unwrap()
}

/// The short code the page prints for a person to type into the app.
pub(crate) fn short_code(page: &Fetched) -> String {
    let code = after(page, "<p class=\"code\" id=\"short-code\">", '<').to_owned();
    assert_eq!(
        after(page, "data-code=\"", '"'),
        code,
        "the script compares the code shown"
    );
    code
}

/// Checks the QR code page's image and expiry; returns the short code.
fn shows_a_live_code(page: &Fetched) -> String {
    // The template escapes the attribute as any other (`/` as `&#x2f;`).
    let image = after(page, "src=\"data:image&#x2f;svg+xml;base64,", '"');
    let svg = base64::engine::general_purpose::STANDARD
        .decode(image)
        .expect("the image is base64");
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    let expires = after(page, "<time id=\"qr-expires\" datetime=\"", '"');
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("an RFC 3339 time");
    let now = assent_core::clock::SystemClock.now_ms();
    let expires_ms = u64::try_from(expires.timestamp_millis()).unwrap();
    assert!(
        expires_ms > now && expires_ms - now <= 60_000,
        "the code shown is live, for at most its lifetime"
    );
    let written = format!(
        "{:02}:{:02}:{:02} UTC</time>",
        expires.hour(),
        expires.minute(),
        expires.second()
    );
    assert!(
        page.html.contains(&written),
        "the expiry is written out for people"
    );
    short_code(page)
}

async fn the_qr_page_shows_the_code_then_the_scan_then_the_return(backend: Backend<'_>) {
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.qr_user_approval", false)),
    )
    .await;
    // A shared tablet: after the scan, the person picks which of its users they are.
    let tablet = app.pair_device("alice").await;
    tablet
        .device
        .join(&app.pairing_key("bob").await)
        .await
        .unwrap();
    let flow = app.start_flow_unauthenticated(&qr_request()).await;
    let mut page = PageBrowser::new(&app, &flow);

    // The start says a code comes, not a request to a device.
    let start = page
        .shows(
            &["Sign in with your phone", "Show the code"],
            &["Mit dem Telefon anmelden", "Code anzeigen"],
        )
        .await;
    assert!(!start.html.contains("Send a request to my device"));

    assert_eq!(
        page.act("authenticate", None).await,
        format!("/flows/{flow}")
    );
    let shown = page
        .shows(
            &[
                "Scan the code with your phone",
                "alt=\"QR code to sign in to Demo Bank\"",
                "Type this code in the app",
                "Valid until",
                "Show a new code",
                "data-poll=\"true\"",
            ],
            &[
                "Scannen Sie den Code mit Ihrem Telefon",
                "alt=\"QR-Code zur Anmeldung bei Demo Bank\"",
                "Geben Sie diesen Code in der App ein",
                "Gültig bis",
                "Neuen Code anzeigen",
            ],
        )
        .await;
    let code = shows_a_live_code(&shown);
    // Renewal is a plain GET of the page, which shows the live code.
    assert!(
        shown
            .html
            .contains(&format!("<form method=\"get\" action=\"/flows/{flow}\">"))
    );

    // The phone types the code the page prints, as when the camera cannot scan.
    let scanned = tablet.device.scan(&code).await.unwrap();
    assert_eq!(scanned.status, QrStatus::UserSelectionRequired);
    let claimed = page
        .shows(
            &[
                "Code scanned",
                "Choose your account on your phone to sign in to Demo Bank",
                "data-code=\"\"",
                "data-poll=\"true\"",
            ],
            &["Code gescannt", "Wählen Sie auf Ihrem Telefon Ihr Konto"],
        )
        .await;
    assert!(
        !claimed.html.contains("<img"),
        "a scanned code is shown no more"
    );

    assert_eq!(
        tablet.device.select(&code, "bob").await.unwrap().status,
        QrStatus::Completed
    );
    let done = page
        .shows(&["Return to Demo Bank"], &["Zurück zu Demo Bank"])
        .await;
    // Escaped as any attribute (`/` as `&#x2f;`).
    let href = format!("href=\"{}\"", RETURN_URL.replace('/', "&#x2f;"));
    assert!(done.html.contains(&href), "{}", done.html);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["subject"], "bob", "{result}");
}

async fn an_expired_code_is_renewed_and_the_approval_returns_to_the_return_url(
    backend: Backend<'_>,
) {
    // Codes of a second's lifetime; the person approves on the phone after the scan (the
    // default policy).
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new().merge(("policy.qr_token_ttl_secs", 1)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow_unauthenticated(&qr_request()).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.act("authenticate", None).await;
    let first = page.get("en").await;
    assert_eq!(first.status, StatusCode::OK);
    let expired = shows_a_live_code(&first);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        phone.device.scan(&expired).await.is_err(),
        "an expired code is refused"
    );
    // "Show a new code": the page again, with a code that works.
    let renewed = page.get("de").await;
    renewed.assert_shows(&["Neuen Code anzeigen"]);
    let fresh = shows_a_live_code(&renewed);
    assert_ne!(fresh, expired);
    assert_eq!(
        phone.device.scan(&fresh).await.unwrap().status,
        QrStatus::PushConfirmationWaiting
    );
    page.shows(&["Check your device"], &["Prüfen Sie Ihr Gerät"])
        .await;
    let silent = phone.one_pending().await;
    assert!(silent.silent);
    phone.device.approve(&silent).await.unwrap();
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
    page.shows(
        &["Authentication successful"],
        &["Authentifizierung erfolgreich"],
    )
    .await;
    page.continue_to(RETURN_URL).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["subject"], "alice", "{result}");
}
