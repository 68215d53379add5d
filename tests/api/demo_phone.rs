//! The demo phone page (`/demo/phone`) over plain HTTP: served in four languages with the
//! pages' security headers while demo secrets are on and assent listens on loopback; a
//! plain 404 (page and assets) without demo secrets, or off loopback. `phone_browser`
//! pairs it and answers a flow in headless Chromium.

use figment::Figment;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::support::{Backend, TestApp, free_port, on_both_backends, unique};

on_both_backends!(
    the_demo_phone_is_served_in_four_languages_with_strict_headers,
    without_demo_secrets_there_is_no_demo_phone,
    off_loopback_there_is_no_demo_phone,
);

/// The phone's Content-Security-Policy: its own script and style, calls to its own origin
/// only (the Device API), no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// The page and its assets.
const PATHS: [&str; 3] = [
    "/demo/phone",
    "/demo/phone/assets/phone.js",
    "/demo/phone/assets/phone.css",
];

async fn get(app: &TestApp, path: &str, language: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("Accept-Language", language)
        .send()
        .await
        .expect("the request reaches the server")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

async fn the_demo_phone_is_served_in_four_languages_with_strict_headers(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    for (language, heading, pair) in [
        ("en-GB,en;q=0.8", "Demo phone", "Pair this phone"),
        ("de-CH", "Demo-Telefon", "Dieses Telefon koppeln"),
        ("fr", "Téléphone de démonstration", "Associer ce téléphone"),
        (
            "es-MX, en;q=0.5",
            "Teléfono de demostración",
            "Vincular este teléfono",
        ),
    ] {
        let response = get(&app, "/demo/phone", language).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-security-policy"), CSP);
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert_eq!(header(&response, "cache-control"), "no-store");
        assert_eq!(header(&response, "vary"), "accept-language");
        assert_eq!(
            header(&response, "content-type"),
            "text/html; charset=utf-8"
        );
        let html = response.text().await.unwrap();
        let lang = language.get(..2).unwrap();
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
        assert!(html.contains(&format!("<h1>{heading}</h1>")), "{html}");
        assert!(html.contains(pair), "{html}");
        // Nothing inline for the CSP to refuse: the one script and the styles are files.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        assert!(html.contains("<script src=\"/demo/phone/assets/phone.js\" defer></script>"));
        assert!(
            !html.contains("<style") && !html.contains(" style="),
            "{html}"
        );
    }
    for (path, content_type) in [
        (
            "/demo/phone/assets/phone.js",
            "text/javascript; charset=utf-8",
        ),
        ("/demo/phone/assets/phone.css", "text/css; charset=utf-8"),
    ] {
        let response = get(&app, path, "en").await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&response, "content-type"), content_type);
        assert_eq!(
            header(&response, "content-security-policy"),
            "default-src 'none'"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(!response.text().await.unwrap().is_empty());
    }
    app.stop().await;
}

/// Every path of the phone is assent's ordinary 404 (a problem body, as for any unknown
/// path).
async fn assert_not_served(app: &TestApp) {
    for path in PATHS {
        let response = get(app, path, "en").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            header(&response, "content-type"),
            "application/problem+json",
            "{path}"
        );
    }
}

async fn without_demo_secrets_there_is_no_demo_phone(backend: Backend<'_>) {
    let own = |secret: &str| format!("{:x}", Sha256::digest(secret.as_bytes()));
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new()
            .merge(("admin.token_sha256", own("an operator's own token")))
            .merge((
                "adapter_clients",
                json!([{
                    "id": "federation",
                    "name": "Federation server",
                    "secret_sha256": own("a federation server's own secret"),
                }]),
            ))
            .merge(("ciba_clients", json!([]))),
    )
    .await;
    assert_eq!(app.adapter.config().demo_secret_in_use(), None);
    assert_not_served(&app).await;
    app.stop().await;
}

async fn off_loopback_there_is_no_demo_phone(backend: Backend<'_>) {
    let port = free_port();
    let app = TestApp::spawn_with(
        backend,
        &unique("t"),
        Figment::new()
            .merge(("listen", format!("0.0.0.0:{port}")))
            .merge(("allow_demo_secrets", true))
            .merge(("secrets.allow_unsealed", true)),
    )
    .await;
    assert!(app.adapter.config().demo_secret_in_use().is_some());
    // Every address, loopback included, reaches it now: still no phone.
    assert_not_served(&app).await;
    app.stop().await;
}
