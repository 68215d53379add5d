//! Passwordless sign-in through PingFederate's own widget, unchanged, in headless
//! Chromium with a WebDriver virtual platform authenticator: a user whose policy makes
//! PLATFORM mandatory sets up a passkey, then a flow started with no user signs in with it
//! (the widget asks for any passkey when no device is listed), and the federation server
//! gets the subject back and finalizes it once (seed 001). The same passkey then signs in
//! through assent's own hosted page, which asks for a passkey with no username.

use assent_proto::adapter::PasswordlessFinalized;
use assent_proto::authn::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, ReturnPage, check_page, click};
use crate::passwordless::{finalize, finalize_request, passwordless_request};
use crate::support::{Backend, TestApp, free_port, oob_request, unique};
use crate::webauthn_widget::{only_credential, security_keys_required, set_up_through_widget};
use crate::widget::{SCREEN, SignInPages};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingfederate_widget_signs_in_with_a_passkey_and_no_username() {
    let browser = Browser::start().await;
    let pages = SignInPages::start().await;
    let origin = pages.address.replace("127.0.0.1", "localhost");
    // assent's own pages are an origin of the relying party too: `localhost` on its port.
    let port = free_port();
    let own = format!("http://localhost:{port}");
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        security_keys_required(&[origin.clone(), own.clone()])
            .merge(("listen", format!("127.0.0.1:{port}")))
            .merge(("public_url", own.clone()))
            .merge(("mfa.mandatory_authentication_methods", vec!["PLATFORM"]))
            .merge(("http.cors_origins", vec![origin.clone()])),
    )
    .await;
    let authenticator = browser.add_virtual_authenticator("internal", true).await;
    let user = unique("frank");
    let return_url = format!("{origin}/resumed.html");
    let api = app.address.replace("127.0.0.1", "localhost");
    let sign_in = |flow: &str| format!("{origin}/index.html?flowId={flow}&baseUrl={api}");

    // Set-up: the policy's window asks for a platform authenticator, made a passkey.
    let mut request = oob_request(&user);
    request["returnUrl"] = json!(return_url);
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    set_up_through_widget(&browser, &api, &flow, "PLATFORM", &return_url).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let passkey = only_credential(&app, &user, Method::Platform).await;
    let held = browser.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "a discoverable passkey"
    );

    // Passwordless: no username anywhere; the passkey tells who.
    let mut request = passwordless_request("bank");
    request["returnUrl"] = json!(return_url);
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    browser.wait_for_url(&return_url, SCREEN).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["subject"], user.as_str(), "{result}");
    assert_eq!(result["method"], "platform");
    assert_eq!(result["authenticationType"], "PLATFORM");
    assert_eq!(result["deviceId"], passkey.id.as_str());
    assert_eq!(result["accessingDevice"]["ip"], "203.0.113.7");
    let context = result["passwordlessContext"].as_str().expect("a context");

    // Seed 001's finalize with the username the federation server resolved: once.
    let finalized: PasswordlessFinalized = finalize(&app, &finalize_request(&user, context))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(finalized.status, "COMPLETED", "{finalized:?}");
    assert_eq!(finalized.sub, user);
    assert_eq!(finalized.authentication_type, "PLATFORM");
    let again = finalize(&app, &finalize_request(&user, context)).await;
    assert_eq!(again.status(), 404);

    // assent's hosted page: it asks for a passkey and names nobody. First on an
    // authenticator holding none (the browser refuses at once, as when the person
    // cancels: the page stays, says so and offers to try again), then with the passkey.
    let passkeys = browser.virtual_credentials(&authenticator).await;
    browser.remove_virtual_authenticator(&authenticator).await;
    let authenticator = browser.add_virtual_authenticator("internal", true).await;
    let back = ReturnPage::start().await;
    let mut request = passwordless_request("bank");
    request["returnUrl"] = json!(back.url);
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&format!("{own}/flows/{flow}")).await;
    browser.wait_for_text("Verify it's you", SCREEN).await;
    click(&browser, "button.primary").await;
    browser
        .wait_for_text("The request was canceled or timed out.", SCREEN)
        .await;
    let page = browser.text().await;
    for shown in [
        "Sign in with a passkey",
        "No password is needed.",
        "Try again",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    check_page(&browser, "passwordless-canceled").await;
    browser
        .add_virtual_credential(&authenticator, passkeys[0].clone())
        .await;
    click(&browser, "#webauthn-start").await;
    browser.wait_for_url(&back.url, SCREEN).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["subject"], user.as_str(), "{result}");
    assert_eq!(result["deviceId"], passkey.id.as_str());
    back.handle.stop(false).await;
    pages.handle.stop(false).await;
}
