//! The WebAuthn hosted pages in headless Chromium with a WebDriver virtual security key:
//! a user whose policy makes SECURITY_KEY mandatory sets one up through the pages, then
//! signs in with it on a second flow, both in English; a third sign-in, in German, is
//! refused by the browser first (the page says so and offers to try again) and then
//! completes. Each flow ends on the federation server's return URL with its result picked
//! up as the federation server does. axe-core checks every page shown (WCAG 2.1 A and AA).
//! WebAuthn binds a credential to the page's host, so the instance is reached as
//! `localhost` on a port of its own, which is its `public_url` and its one origin.

use std::time::Duration;

use assent_proto::admin::AuditActor;
use figment::Figment;
use serde_json::{Value, json};

use crate::audit::browser_trail;
use crate::browser::{Browser, ReturnPage, check_page, click};
use crate::support::{Backend, TestApp, free_port, oob_request, unique};

/// How long a page may take to move on.
const SCREEN: Duration = Duration::from_secs(20);

/// The instance on `port`, as the browser reaches it: `http://localhost:PORT`, its
/// public URL and the relying party's one origin; SECURITY_KEY mandatory; the German
/// bank's pages in German.
fn relying_party(port: u16) -> Figment {
    let origin = format!("http://localhost:{port}");
    Figment::new()
        .merge(("listen", format!("127.0.0.1:{port}")))
        .merge(("public_url", origin.clone()))
        .merge(("webauthn.rp_id", "localhost"))
        .merge(("webauthn.rp_name", "Demo Bank"))
        .merge(("webauthn.origins", json!([origin])))
        .merge((
            "mfa.allowed_methods",
            json!(["PINGID_MOBILE", "SMS", "SECURITY_KEY"]),
        ))
        .merge((
            "mfa.mandatory_authentication_methods",
            json!(["SECURITY_KEY"]),
        ))
        .merge(("pages.application_languages.bank-de", "de"))
}

/// Starts a flow for `user` in `application` and opens its page.
async fn open_flow(
    app: &TestApp,
    browser: &Browser,
    origin: &str,
    back: &ReturnPage,
    user: &str,
    application: &str,
) -> String {
    let mut request = oob_request(user);
    request["application"]["id"] = json!(application);
    request["returnUrl"] = json!(back.url);
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&format!("{origin}/flows/{flow}")).await;
    flow
}

/// The completed page, then the return URL, then the result the federation server
/// picks up (once), which it returns.
async fn finish(
    app: &TestApp,
    browser: &Browser,
    back: &ReturnPage,
    flow: &str,
    done: &str,
) -> Value {
    browser.wait_for_text(done, SCREEN).await;
    click(browser, "button.primary").await;
    browser.wait_for_url(&back.url, SCREEN).await;
    let result: Value = app.result(flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_security_key_is_set_up_and_used_through_the_pages_in_chromium() {
    let back = ReturnPage::start().await;
    let browser = Browser::start().await;
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(Backend::Memory, &unique("t"), relying_party(port)).await;
    let user = "alice-key";

    // Set-up, in English: the page starts the ceremony itself, the key answers.
    let key = browser.add_virtual_authenticator("usb", false).await;
    let flow = open_flow(&app, &browser, &origin, &back, user, "bank").await;
    browser.wait_for_text("Verify it's you", SCREEN).await;
    click(&browser, "button.primary").await;
    browser
        .wait_for_text("Set up your sign-in methods", SCREEN)
        .await;
    click(&browser, "button.primary").await;
    browser
        .wait_for_text("Choose a method to set up", SCREEN)
        .await;
    click(&browser, "input[name=method][value=SECURITY_KEY]").await;
    click(&browser, "button.primary").await;
    finish(&app, &browser, &back, &flow, "Authentication successful").await;
    // The page's script posted the key's answer, from the browser.
    assert_eq!(
        browser_trail(&app, &flow).await,
        [
            ("start", AuditActor::FederationServer),
            ("authenticate", AuditActor::Browser),
            ("setupMfa", AuditActor::Browser),
            ("selectDevicePairingMethod", AuditActor::Browser),
            ("webauthn activation", AuditActor::Browser),
            ("continueAuthentication", AuditActor::Browser),
            ("result pickup", AuditActor::FederationServer),
        ]
        .map(|(event, actor)| (event.to_owned(), actor))
    );
    let credentials = browser.virtual_credentials(&key).await;
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(credentials[0]["rpId"], "localhost");
    let set_up_count = credentials[0]["signCount"].as_u64().unwrap();

    // Sign-in, in English: the key is the only device; the page asks it at once.
    let flow = open_flow(&app, &browser, &origin, &back, user, "bank").await;
    browser.wait_for_text("Verify it's you", SCREEN).await;
    click(&browser, "button.primary").await;
    let result = finish(&app, &browser, &back, &flow, "Authentication successful").await;
    assert_eq!(result["method"], "security_key", "{result}");
    let credentials = browser.virtual_credentials(&key).await;
    assert!(
        credentials[0]["signCount"].as_u64().unwrap() > set_up_count,
        "the key signed: {credentials:?}"
    );

    // Sign-in, in German, first with a key that holds no credential for this user (the
    // wrong key; the browser refuses as when the person cancels): the page says so and
    // offers to try again; then with the right one.
    browser.remove_virtual_authenticator(&key).await;
    let key = browser.add_virtual_authenticator("usb", false).await;
    let flow = open_flow(&app, &browser, &origin, &back, user, "bank-de").await;
    browser
        .wait_for_text("Bestätigen Sie, dass Sie es sind", SCREEN)
        .await;
    click(&browser, "button.primary").await;
    browser
        .wait_for_text("Die Anfrage wurde abgebrochen oder ist abgelaufen.", SCREEN)
        .await;
    let page = browser.text().await;
    for shown in [
        "Sicherheitsschlüssel verwenden",
        "Um sich bei Demo Bank anzumelden, verwenden Sie Sicherheitsschlüssel:",
        "Erneut versuchen",
        "Anmeldung abbrechen",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    check_page(&browser, "webauthn-de-sign-in-canceled").await;
    // An answer assent does not accept (a forged one, sent with the page's form): the same
    // page says so (422), and waits for the person to try again.
    let forged = json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "clientDataJSON": "e30=", "authenticatorData": "AAAA",
                      "signature": "AAAA", "userHandle": "" },
    })
    .to_string();
    browser
        .run(
            "const form = document.getElementById('webauthn');
             form.querySelector('[data-answer]').value = arguments[0];
             form.querySelector('[data-origin]').value = window.location.origin;
             form.querySelector('[data-compatibility]').value = 'SECURITY_KEY_ONLY';
             form.submit();
             return true;",
            json!([forged]),
        )
        .await;
    browser
        .wait_for_text(
            "Die Antwort Ihres Sicherheitsschlüssels wurde nicht angenommen.",
            SCREEN,
        )
        .await;
    check_page(&browser, "webauthn-de-sign-in-refused").await;
    browser
        .add_virtual_credential(&key, credentials[0].clone())
        .await;
    click(&browser, "#webauthn-start").await;
    let result = finish(
        &app,
        &browser,
        &back,
        &flow,
        "Authentifizierung erfolgreich",
    )
    .await;
    assert_eq!(result["method"], "security_key", "{result}");

    app.stop().await;
    back.handle.stop(false).await;
}
