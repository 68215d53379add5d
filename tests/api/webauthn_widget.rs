//! FIDO2 security keys through PingFederate's own widget, unchanged, in headless Chromium
//! with a WebDriver virtual authenticator: a user whose policy makes SECURITY_KEY
//! mandatory sets one up, signs in with it, and a clone of it (the same key with an older
//! signature counter) is refused, reported in the audit trail and disabled.

use assent_proto::admin::{FlowEvents, PasscodeDevice, UserDevices};
use assent_proto::authn::{AuthnState, Method, StatusName};
use figment::Figment;
use serde_json::{Value, json};

use crate::browser::Browser;
use crate::support::{Backend, TestApp, expect_status, oob_request, unique};
use crate::widget::{SCREEN, SignInPages};

/// The configuration of a relying party on `localhost` (WebAuthn needs the page's host to
/// be the rp id) whose origin is the sign-in page's, with SECURITY_KEY mandatory.
pub(crate) fn security_keys_required(origins: &[String]) -> Figment {
    Figment::new()
        .merge(("webauthn.rp_id", "localhost"))
        .merge(("webauthn.rp_name", "Demo Bank"))
        .merge(("webauthn.origins", origins.to_vec()))
        .merge((
            "mfa.allowed_methods",
            vec!["PINGID_MOBILE", "SMS", "TOTP", "SECURITY_KEY", "PLATFORM"],
        ))
        .merge(("mfa.mandatory_authentication_methods", vec!["SECURITY_KEY"]))
}

/// The flow's state as the browser reads it from the API on `localhost` (the binding
/// cookie is the API host's: `localhost`, as the page's, so that it is sent).
async fn state_in_browser(browser: &Browser, api: &str, flow: &str) -> AuthnState {
    let script = "const done = arguments[arguments.length - 1];
        fetch(arguments[0], { credentials: 'include', headers: { Accept: 'application/json' } })
            .then(response => response.text()).then(done, error => done('failed: ' + error));";
    let url = format!("{api}/pf-ws/authn/flows/{flow}");
    let body = browser.run_async(script, json!([url])).await;
    let body = body.as_str().unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
}

/// Waits until the flow, as the browser reads it, is in `status`.
async fn wait_status(browser: &Browser, api: &str, flow: &str, status: StatusName) {
    let deadline = std::time::Instant::now() + SCREEN;
    loop {
        let state = state_in_browser(browser, api, flow).await;
        if state.status.name() == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the flow stayed {:?}, not {status:?}: {}",
            state.status.name(),
            browser.text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// On the widget's page of `flow` (whose user lacks `method`), sets up `method` as the
/// policy's window asks: the widget runs navigator.credentials.create, the virtual
/// authenticator answers, the widget posts the activation and continues to `return_url`.
pub(crate) async fn set_up_through_widget(
    browser: &Browser,
    api: &str,
    flow: &str,
    method: &str,
    return_url: &str,
) {
    wait_status(browser, api, flow, StatusName::MfaSetupRequired).await;
    browser
        .run("document.querySelector('#submit').click();", json!([]))
        .await;
    wait_status(browser, api, flow, StatusName::DevicePairingMethodRequired).await;
    let chosen = browser
        .run(
            "const tile = document.querySelector(
                 '[data-mfa-device-pairing-selection^=\"' + arguments[0] + '\"]');
             if (tile) tile.click();
             return !!tile;",
            json!([method]),
        )
        .await;
    assert_eq!(
        chosen,
        true,
        "the widget offers {method}: {}",
        browser.text().await
    );
    browser.wait_for_url(return_url, SCREEN).await;
}

/// The user's devices, as the operator sees them.
async fn user_devices(app: &TestApp, user: &str) -> UserDevices {
    app.admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await
        .json()
        .await
        .unwrap()
}

/// The user's one WebAuthn credential, of `method`, as the operator sees it (enabled).
pub(crate) async fn only_credential(app: &TestApp, user: &str, method: Method) -> PasscodeDevice {
    let devices = user_devices(app, user).await;
    let [credential] = devices.passcode_devices.as_slice() else {
        panic!("one credential: {devices:?}");
    };
    assert_eq!(credential.method, method);
    assert_eq!(credential.disabled, None);
    credential.clone()
}

/// A clone refused in `flow`: in the flow's audit trail, and the user's credential shown
/// disabled to the operator, with why.
pub(crate) async fn clone_reported(app: &TestApp, flow: &str, user: &str) {
    let trail: FlowEvents = app
        .admin_get(&format!("/admin/v1/flows/{flow}/events"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        trail
            .events
            .iter()
            .any(|event| event.event == "cloned authenticator refused"
                && event.status_after == "MFA_FAILED"),
        "the clone is in the flow's audit trail: {trail:?}"
    );
    let devices = user_devices(app, user).await;
    let disabled = devices.passcode_devices[0].disabled.as_deref();
    assert!(
        disabled.is_some_and(|reason| reason.contains("cloned")),
        "the operator sees the credential disabled and why: {disabled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingfederate_widget_sets_up_a_security_key_signs_in_and_refuses_its_clone() {
    let browser = Browser::start().await;
    let pages = SignInPages::start().await;
    let origin = pages.address.replace("127.0.0.1", "localhost");
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        security_keys_required(std::slice::from_ref(&origin))
            .merge(("http.cors_origins", vec![origin.clone()])),
    )
    .await;
    let authenticator = browser.add_virtual_authenticator("usb", false).await;
    let user = unique("dana");
    let return_url = format!("{origin}/resumed.html");
    let request = {
        let mut request = oob_request(&user);
        request["returnUrl"] = json!(return_url);
        request
    };
    // The API on `localhost` too: same site as the page, so its binding cookie is sent.
    let api = app.address.replace("127.0.0.1", "localhost");
    let sign_in = |flow: &str| format!("{origin}/index.html?flowId={flow}&baseUrl={api}");

    // Set-up: the person has nothing yet; the policy's window asks for a security key.
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    set_up_through_widget(&browser, &api, &flow, "SECURITY_KEY", &return_url).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    let key = only_credential(&app, &user, Method::SecurityKey).await;
    let held = browser.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "the key holds one credential: {held:?}");
    assert_eq!(held[0]["rpId"], "localhost");

    // Sign-in: the key is the user's only device, so the widget asks for it at once.
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    browser.wait_for_url(&return_url, SCREEN).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "COMPLETED", "{result}");
    assert_eq!(result["method"], "security_key", "{result}");
    assert_eq!(result["deviceId"], key.id.as_str());
    let signed_in_at = browser.virtual_credentials(&authenticator).await[0]["signCount"]
        .as_u64()
        .expect("a signature counter");
    assert!(signed_in_at >= 1, "the key counts its signatures");

    // A clone: the same private key in another authenticator, its counter behind.
    let mut copy = browser.virtual_credentials(&authenticator).await.remove(0);
    copy["signCount"] = json!(0);
    browser.remove_virtual_authenticator(&authenticator).await;
    let clone = browser.add_virtual_authenticator("usb", false).await;
    browser.add_virtual_credential(&clone, copy).await;
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    wait_status(&browser, &api, &flow, StatusName::MfaFailed).await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED", "{result}");
    clone_reported(&app, &flow, &user).await;

    // Disabled, the key is not asked again: the next sign-in fails saying why.
    let flow = app.start_flow_unauthenticated(&request).await;
    browser.goto(&sign_in(&flow)).await;
    wait_status(&browser, &api, &flow, StatusName::MfaFailed).await;
    let state = state_in_browser(&browser, &api, &flow).await;
    let failure = expect_status!(state, MfaFailed);
    assert!(failure.reason.contains("cloned"), "{failure:?}");
    pages.handle.stop(false).await;
}
