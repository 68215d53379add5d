//! Texts in the user's language: the profile's `language` (BCP 47, given with the user at
//! a flow start) chooses the language of the SMS, the email, a push's default title and
//! body and a CIBA request's body; a user without one gets `pages.default_language`; a
//! malformed tag is a 400 that stores nothing.

use std::time::Duration;

use assent_proto::admin::AdminUser;
use assent_proto::authn::{DeviceType, StatusName};
use assent_proto::device::Decision;
use base64::Engine;
use figment::Figment;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::otp::{code_in, device_of_type, nth_sms, select, spawn};
use crate::support::{
    Backend, TestApp, mail_body, mail_header, on_both_backends, oob_request, problem,
};

on_both_backends!(
    texts_sent_to_a_user_are_in_their_language,
    a_malformed_language_tag_is_refused_and_stores_nothing,
);

/// A sign-in for `user` in `language` (none: no `language` field).
fn request(user: &str, language: Option<&str>) -> Value {
    let mut request = oob_request(user);
    request["user"]["phone"] = json!("+15555550123");
    if let Some(language) = language {
        request["user"]["language"] = json!(language);
    }
    request
}

/// The text of a mail's body, decoded from quoted-printable or base64 if it was sent so.
fn mail_text(message: &str) -> String {
    let body = mail_body(message);
    match mail_header(message, "Content-Transfer-Encoding").as_deref() {
        Some("base64") => {
            let joined: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        }
        Some("quoted-printable") => {
            let joined = body.replace("=\n", "");
            let mut bytes = Vec::new();
            let mut rest = joined.as_bytes();
            while let Some((&first, tail)) = rest.split_first() {
                if first == b'=' && tail.len() >= 2 {
                    let hex = std::str::from_utf8(&tail[..2]).unwrap();
                    bytes.push(u8::from_str_radix(hex, 16).unwrap());
                    rest = &tail[2..];
                } else {
                    bytes.push(first);
                    rest = tail;
                }
            }
            String::from_utf8(bytes).unwrap()
        }
        _ => body,
    }
}

async fn texts_sent_to_a_user_are_in_their_language(backend: Backend<'_>) {
    let (app, sink, smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.email_backup", true))
            // The default, for a user who has no language: not the catalogue's English.
            .merge(("pages.default_language", "es")),
    )
    .await;

    // A German-speaking user (a regional tag: the catalogue's German) gets a German SMS.
    let flow = app.start_flow(&request("hans", Some("de-CH"))).await;
    let state = app.state(&flow).await;
    let waiting = select(&app, &flow, device_of_type(&state, DeviceType::Sms)).await;
    assert_eq!(waiting.status.name(), StatusName::OtpRequired);
    let sms = nth_sms(&sink, 1).await;
    let code = code_in(&sms["Body"], 6);
    assert_eq!(
        sms["Body"],
        format!("{code} ist Ihr Anmeldecode für Demo Bank. Er läuft in 5 Min. ab.")
    );

    // A French user gets a French email.
    let flow = app.start_flow(&request("amelie", Some("fr"))).await;
    let state = app.state(&flow).await;
    select(&app, &flow, device_of_type(&state, DeviceType::Email)).await;
    let mails = smtp.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(
        mail_header(&mails[0], "Subject").unwrap(),
        "Votre code de connexion Demo Bank"
    );
    let text = mail_text(&mails[0]);
    let code = code_in(&text, 6);
    assert!(
        text.starts_with(&format!(
            "Votre code de connexion Demo Bank est {code}.\n\nIl expire dans 5 minutes."
        )),
        "{text}"
    );

    // A push's default title and body, as the phone shows them: in the user's language,
    // and for alice (no language) in the configured default.
    let mut phones = Vec::new();
    for (user, language, title, body) in [
        (
            "alice",
            None,
            "Solicitud de inicio de sesión",
            "¿Aprobar el inicio de sesión en Demo Bank?",
        ),
        (
            "bob",
            Some("de"),
            "Anmeldeanfrage",
            "Anmeldung bei Demo Bank bestätigen?",
        ),
    ] {
        let phone = app.pair_device(user).await;
        let mut start = oob_request(user);
        if let Some(language) = language {
            start["user"]["language"] = json!(language);
        }
        app.start_flow(&start).await;
        let pending = phone.one_pending().await;
        assert_eq!(
            (pending.title.as_str(), pending.body.as_str()),
            (title, body)
        );
        let answer = phone.device.answer(&pending, Decision::Deny, None).await;
        answer.expect("the denial is taken");
        phones.push(phone);
    }

    // A CIBA request's body, its binding message quoted, to bob: in German.
    let started = app
        .http
        .post(app.url("/as/bc-auth.ciba"))
        .basic_auth("demo-ciba-poll", Some("demo-ciba-secret"))
        .form(&[
            ("scope", "openid"),
            ("login_hint", "bob@example.com"),
            ("binding_message", "Order 42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::OK);
    let pending = phones[1].one_pending().await;
    assert_eq!(pending.kind, "ciba");
    assert_eq!(
        pending.body,
        "Demo CIBA client (poll) bittet Sie, sich anzumelden: Order 42"
    );
    app.stop().await;
}

async fn profile(app: &TestApp, id: &str) -> reqwest::Response {
    app.admin_get(&format!("/admin/v1/users/{id}")).await
}

async fn a_malformed_language_tag_is_refused_and_stores_nothing(backend: Backend<'_>) {
    let app = TestApp::spawn(backend).await;
    // A new user with a bad tag is not created; a known one keeps their profile.
    for (id, tag) in [
        ("zed", "not a tag!"),
        ("alice", "de_DE@euro"),
        ("alice", ""),
    ] {
        let before = profile(&app, id).await.status();
        let mut start = oob_request(id);
        start["user"]["language"] = json!(tag);
        let response = app.start_flow_raw(&start).await;
        if tag.is_empty() {
            // An empty string clears the field, as for every profile field.
            assert_eq!(response.status(), StatusCode::CREATED);
            continue;
        }
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{tag}");
        let problem = problem(response).await;
        assert_eq!(problem["status"], 400);
        assert!(
            problem["detail"].as_str().unwrap().contains("`language`"),
            "{problem}"
        );
        assert_eq!(profile(&app, id).await.status(), before, "{id}");
    }
    assert_eq!(profile(&app, "zed").await.status(), StatusCode::NOT_FOUND);
    let alice: AdminUser = profile(&app, "alice").await.json().await.unwrap();
    assert_eq!(alice.language, None);

    // A good tag is kept with the profile, for the operator to read.
    let mut start = oob_request("alice");
    start["user"]["language"] = json!("pt-BR");
    assert_eq!(
        app.start_flow_raw(&start).await.status(),
        StatusCode::CREATED
    );
    let alice: AdminUser = profile(&app, "alice").await.json().await.unwrap();
    assert_eq!(alice.language.as_deref(), Some("pt-BR"));
    app.stop().await;
}
