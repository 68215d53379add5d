//! Malformed, oversized and hostile input: every endpoint answers a 4xx in its own
//! convention and leaves no state behind.

use std::time::{Duration, SystemTime};

use assent_core::config::SecretHash;
use assent_device_sdk::{DeviceKey, DeviceSigner};
use assent_proto::device::{Decision, ProofClaims};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use assent_proto::authn::{ActionRequest, StatusName};

use crate::support::{
    Backend, FEDERATION, TestApp, oob_request, problem, transfer_request, unique,
};

/// Asserts a Ping error body (no `status` field: the widget would read it as a state).
async fn ping_error(response: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(response.status(), status);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body.get("status").is_none(),
        "no status in an error body: {body}"
    );
    assert!(body["details"][0]["userMessage"].is_string(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_api_refuses_bad_requests_without_touching_the_flow() {
    let app = TestApp::spawn(Backend::Memory).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let url = app.url(&format!("/pf-ws/authn/flows/{flow}"));
    let before = app.state(&flow).await;
    let cancel_type = "application/vnd.pingidentity.cancelAuthentication+json";

    // No X-XSRF-Header.
    let response = app
        .http
        .post(&url)
        .header("Content-Type", cancel_type)
        .send()
        .await
        .unwrap();
    ping_error(response, 403, "INVALID_REQUEST").await;
    // A POST with the XSRF header, to `target`, with this content type and body.
    let post = |target: String, content_type: &str, body: &str| {
        app.http
            .post(target)
            .header("X-XSRF-Header", "x")
            .header("Content-Type", content_type.to_owned())
            .body(body.to_owned())
            .send()
    };
    let select_type = "application/vnd.pingidentity.selectDevice+json";
    // Unknown action id, in the content type and in ?action=.
    let response = post(
        url.clone(),
        "application/vnd.pingidentity.approveEverything+json",
        "",
    )
    .await
    .unwrap();
    ping_error(response, 400, "INVALID_ACTION_ID").await;
    let response = post(format!("{url}?action=nope"), "application/json", "")
        .await
        .unwrap();
    ping_error(response, 400, "INVALID_ACTION_ID").await;
    // No action id at all.
    let response = post(url.clone(), "application/json", "{}").await.unwrap();
    ping_error(response, 400, "INVALID_ACTION_ID").await;
    // An action the flow does not offer now.
    let response = app.act_raw(&flow, "continueAuthentication", None).await;
    ping_error(response, 400, "INVALID_ACTION_ID").await;
    // Malformed JSON, and JSON that is not an object.
    for body in ["{not json", "[1,2]"] {
        let response = post(url.clone(), select_type, body).await.unwrap();
        ping_error(response, 400, "INVALID_REQUEST").await;
    }
    // Missing and wrong parameters.
    let response = app.act_raw(&flow, "selectDevice", Some(json!({}))).await;
    let body = ping_error(response, 400, "VALIDATION_ERROR").await;
    assert_eq!(body["details"][0]["target"], "deviceRef.id");
    let response = app
        .act_raw(
            &flow,
            "selectDevice",
            Some(json!({ "deviceRef": { "id": "AAAAAAAAAAAAAAAAAAAA" } })),
        )
        .await;
    ping_error(response, 400, "VALIDATION_ERROR").await;
    // Oversized body.
    let oversized = format!("{{\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
    let response = post(url.clone(), select_type, &oversized).await.unwrap();
    ping_error(response, 413, "INVALID_REQUEST").await;
    // Wrong content type.
    let response = post(url.clone(), "text/plain", "cancel").await.unwrap();
    ping_error(response, 415, "INVALID_REQUEST").await;

    assert_eq!(app.state(&flow).await, before, "nothing changed the flow");
    assert_eq!(phone.pending(0).await.len(), 1, "the push is still waiting");

    // Unknown and malformed flow ids.
    for id in [
        "AAAAAAAAAAAAAAAAAAAAAAAA",
        "not-a-flow",
        "x".repeat(300).as_str(),
    ] {
        let response = app.get(&format!("/pf-ws/authn/flows/{id}")).await;
        ping_error(response, 404, "RESOURCE_NOT_FOUND").await;
        let response = app.act_raw(id, "cancelAuthentication", None).await;
        ping_error(response, 404, "RESOURCE_NOT_FOUND").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_api_allows_configured_origins_with_credentials() {
    let app = TestApp::spawn(Backend::Memory).await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let url = app.url(&format!("/pf-ws/authn/flows/{flow}"));
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-xsrf-header",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-xsrf-header") && allowed.contains("content-type"));

    let get = app
        .http
        .get(&url)
        .header("Origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let stranger = app
        .http
        .get(&url)
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        !stranger
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapter_api_refuses_bad_requests_and_creates_nothing() {
    let other_secret = "other-federation-secret-0123456789";
    let clients = json!([
        { "id": FEDERATION.0, "secret_sha256": SecretHash::of(FEDERATION.1).to_hex() },
        { "id": "other-federation", "secret_sha256": SecretHash::of(other_secret).to_hex() },
    ]);
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        figment::Figment::new().merge(("adapter_clients", clients)),
    )
    .await;
    let newcomer = unique("dave");
    let flows = app.url("/adapter/v1/flows");
    let body = oob_request(&newcomer);

    for (id, secret) in [
        ("demo-federation", "wrong"),
        ("nobody", "demo-federation-secret"),
    ] {
        let response = app
            .http
            .post(&flows)
            .basic_auth(id, Some(secret))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("Basic")
        );
        problem(response).await;
    }
    let response = app.http.post(&flows).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // Credentials are checked before the body: a stranger learns nothing of its shape.
    let response = app
        .http
        .post(&flows)
        .header("Content-Type", "text/plain")
        .body("{garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .http
        .post(&flows)
        .header("Authorization", "Basic !!!notbase64")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let authed = || {
        app.http
            .post(&flows)
            .basic_auth(FEDERATION.0, Some(FEDERATION.1))
    };
    let response = authed()
        .header("Content-Type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    problem(response).await;
    let response = authed()
        .header("Content-Type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    problem(response).await;
    let mut huge = body.clone();
    huge["user"]["attributes"] = json!({ "blob": "x".repeat(64 * 1024) });
    let response = authed().json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    problem(response).await;

    let mut invalid = Vec::new();
    let mut unknown_kind = body.clone();
    unknown_kind["kind"] = json!("teleport");
    invalid.push(unknown_kind);
    let mut bad_user = body.clone();
    bad_user["user"]["id"] = json!("{evil}");
    invalid.push(bad_user);
    let mut bad_ip = body.clone();
    bad_ip["clientIp"] = json!("300.1.1.1");
    invalid.push(bad_ip);
    let mut bad_return = body.clone();
    bad_return["returnUrl"] = json!("javascript:alert(1)");
    invalid.push(bad_return);
    let mut unknown_field = body.clone();
    unknown_field["surprise"] = json!(true);
    invalid.push(unknown_field);
    // Transactions: unknown placeholder (missing parameter), oversized value, unknown
    // template, no template.
    let mut missing_param = transfer_request(&newcomer, "10", "Bob");
    missing_param["dynamicParams"] = json!({ "amount": "10" });
    invalid.push(missing_param);
    invalid.push(transfer_request(&newcomer, &"9".repeat(300), "Bob"));
    let mut unknown_template = transfer_request(&newcomer, "10", "Bob");
    unknown_template["templateId"] = json!("nope");
    invalid.push(unknown_template);
    let mut no_template = transfer_request(&newcomer, "10", "Bob");
    no_template.as_object_mut().unwrap().remove("templateId");
    invalid.push(no_template);
    let mut bad_param_name = body.clone();
    bad_param_name["dynamicParams"] = json!({ "bad name": "1" });
    invalid.push(bad_param_name);

    for request in &invalid {
        let response = app.start_flow_raw(request).await;
        assert_eq!(response.status(), 400, "{request}");
        problem(response).await;
    }
    let user = app.admin_get(&format!("/admin/v1/users/{newcomer}")).await;
    assert_eq!(
        user.status(),
        404,
        "no user was created by a refused request"
    );

    // Results: unknown flow, malformed id, another client's flow, bad credentials.
    assert_eq!(app.result("AAAAAAAAAAAAAAAAAAAAAAAA").await.status(), 404);
    assert_eq!(app.result("..%2F..%2Fetc").await.status(), 404);
    let flow = app.start_flow(&oob_request("alice")).await;
    app.act_ok(&flow, ActionRequest::CancelAuthentication).await;
    let result_url = app.url(&format!("/adapter/v1/flows/{flow}/result"));
    let response = app
        .http
        .get(&result_url)
        .basic_auth("demo-federation", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // Another federation server cannot read (or consume) this flow's result.
    let response = app
        .http
        .get(&result_url)
        .basic_auth("other-federation", Some(other_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        app.result(&flow).await.status(),
        200,
        "still there for its owner"
    );
}

/// A JWT with the given header and claims, signed (or not) as asked.
fn forged_token(header: serde_json::Value, claims: serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_api_refuses_bad_tokens_keys_and_proofs() {
    let app = TestApp::spawn(Backend::Memory).await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let request = phone.one_pending().await;
    let pending_url = app.url("/device/v1/pending");
    let get_pending = |authorization: String| {
        app.http
            .get(&pending_url)
            .header("Authorization", authorization)
            .send()
    };

    // Signed by another key, claiming to be this device.
    let impostor = DeviceSigner::new(phone.id(), DeviceKey::generate().unwrap());
    let expired = phone
        .device
        .signer()
        .token_with(SystemTime::now() - Duration::from_secs(120), "old-jti")
        .unwrap();
    let far = phone
        .device
        .signer()
        .token_with(SystemTime::now() + Duration::from_secs(3600), "far-jti")
        .unwrap();
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let unsigned = forged_token(
        json!({ "alg": "none", "typ": "JWT" }),
        json!({ "iss": phone.id(), "exp": exp, "jti": "none-jti" }),
        "",
    );
    let hs256 = forged_token(
        json!({ "alg": "HS256", "typ": "JWT" }),
        json!({ "iss": phone.id(), "exp": exp, "jti": "hs-jti" }),
        "c2lnbmF0dXJl",
    );
    let huge_exp = phone
        .device
        .signer()
        .key()
        .sign_jwt(&json!({ "iss": phone.id(), "exp": 1e20, "jti": "huge" }))
        .unwrap();
    let negative_nbf = phone
        .device
        .signer()
        .key()
        .sign_jwt(&json!({ "iss": phone.id(), "exp": exp, "nbf": -1e30, "jti": "neg" }))
        .unwrap();
    let text_exp = phone
        .device
        .signer()
        .key()
        .sign_jwt(&json!({ "iss": phone.id(), "exp": "soon", "jti": "text" }))
        .unwrap();
    let cases = [
        ("huge exp", format!("Device {huge_exp}")),
        ("negative nbf", format!("Device {negative_nbf}")),
        ("text exp", format!("Device {text_exp}")),
        (
            "another key",
            format!("Device {}", impostor.token().unwrap()),
        ),
        ("expired", format!("Device {expired}")),
        ("exp too far", format!("Device {far}")),
        ("alg none", format!("Device {unsigned}")),
        ("alg HS256", format!("Device {hs256}")),
        ("garbage", "Device not.a.jwt".to_owned()),
        (
            "wrong scheme",
            format!("Bearer {}", phone.device.signer().token().unwrap()),
        ),
    ];
    for (case, authorization) in cases {
        let response = get_pending(authorization).await.unwrap();
        assert_eq!(response.status(), 401, "{case}");
        problem(response).await;
    }
    let response = app.http.get(&pending_url).send().await.unwrap();
    assert_eq!(response.status(), 401);

    // Decisions with bad proofs: wrong key, wrong auth id, wrong decision, garbage.
    let decide = |auth_id: String, body: serde_json::Value| {
        app.http
            .post(app.url(&format!("/device/v1/authentications/{auth_id}")))
            .header("Authorization", phone.authorization())
            .json(&body)
            .send()
    };
    let claims = |auth_id: &str, decision: Decision| ProofClaims {
        auth_id: auth_id.to_owned(),
        decision,
        params_hash: assent_core::params::digest(&request.dynamic_params),
        number: None,
    };
    let auth_id = request.auth_id.to_string();
    let wrong_key = impostor
        .proof(&claims(&auth_id, Decision::Approve))
        .unwrap();
    let other_request = format!("{flow}.AAAAAAAAAAAA");
    let wrong_auth = phone
        .device
        .signer()
        .proof(&claims(&other_request, Decision::Approve))
        .unwrap();
    let wrong_decision = phone
        .device
        .signer()
        .proof(&claims(&auth_id, Decision::Deny))
        .unwrap();
    for (case, proof) in [
        ("wrong key", wrong_key),
        ("wrong auth id", wrong_auth),
        ("wrong decision", wrong_decision),
        ("garbage", "x.y.z".to_owned()),
    ] {
        let response = decide(
            auth_id.clone(),
            json!({ "decision": "approve", "proof": proof }),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 400, "{case}");
        problem(response).await;
    }
    let valid = phone
        .device
        .signer()
        .proof(&claims(&auth_id, Decision::Approve))
        .unwrap();
    let response = decide(
        auth_id.clone(),
        json!({ "decision": "maybe", "proof": valid }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let response = decide(
        "nope".into(),
        json!({ "decision": "approve", "proof": valid }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
    let proof_for_other = phone
        .device
        .signer()
        .proof(&claims(&other_request, Decision::Approve))
        .unwrap();
    let response = decide(
        other_request,
        json!({ "decision": "approve", "proof": proof_for_other }),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        409,
        "a request that is not the flow's current one"
    );
    let response = decide(auth_id.clone(), json!({ "decision": "approve" }))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let raw_decide = |content_type: &str, body: String| {
        app.http
            .post(app.url(&format!("/device/v1/authentications/{auth_id}")))
            .header("Authorization", phone.authorization())
            .header("Content-Type", content_type.to_owned())
            .body(body)
            .send()
    };
    for (content_type, body, status) in [
        ("application/json", "{nope".to_owned(), 400),
        ("text/plain", "approve".to_owned(), 415),
        (
            "application/json",
            format!("{{\"proof\":\"{}\"}}", "x".repeat(64 * 1024)),
            413,
        ),
    ] {
        let response = raw_decide(content_type, body).await.unwrap();
        assert_eq!(response.status(), status);
        problem(response).await;
    }

    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::PushConfirmationWaiting,
        "flow untouched"
    );
    assert_eq!(phone.pending(0).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_refuses_bad_keys_and_works_once() {
    let app = TestApp::spawn(Backend::Memory).await;
    let pair = |body: serde_json::Value| {
        app.http
            .post(app.url("/device/v1/pairings"))
            .json(&body)
            .send()
    };
    let device_key = DeviceKey::generate().unwrap();
    let public = device_key.public_jwk().clone();
    let private = device_key.private_jwk();
    let key = app.pairing_key("alice").await;
    let body = |pairing_key: &str, jwk: &serde_json::Map<String, serde_json::Value>| {
        json!({
            "pairingKey": pairing_key, "publicJwk": jwk, "name": "Phone",
            "os": "iOS", "osVersion": "18.1", "model": "iPhone 16",
        })
    };

    // A private key, a wrong curve, a key off the curve: refused, and the pairing key is
    // still usable afterwards.
    let mut off_curve = public.clone();
    off_curve.insert("x".into(), json!(URL_SAFE_NO_PAD.encode([7u8; 32])));
    let mut wrong_curve = public.clone();
    wrong_curve.insert("crv".into(), json!("P-384"));
    for jwk in [&private, &off_curve, &wrong_curve] {
        let response = pair(body(&key, jwk)).await.unwrap();
        assert_eq!(response.status(), 400);
        problem(response).await;
    }
    let mut bad_name = body(&key, &public);
    bad_name["name"] = json!("x".repeat(500));
    assert_eq!(pair(bad_name).await.unwrap().status(), 400);
    let response = pair(json!({ "pairingKey": key })).await.unwrap();
    assert_eq!(response.status(), 400);
    let raw_pair = |content_type: &str, body: String| {
        app.http
            .post(app.url("/device/v1/pairings"))
            .header("Content-Type", content_type.to_owned())
            .body(body)
            .send()
    };
    for (content_type, body, status) in [
        ("application/json", "{\"pairingKey\":".to_owned(), 400),
        (
            "application/x-www-form-urlencoded",
            format!("pairingKey={key}"),
            415,
        ),
        (
            "application/json",
            format!("{{\"name\":\"{}\"}}", "x".repeat(64 * 1024)),
            413,
        ),
    ] {
        let response = raw_pair(content_type, body).await.unwrap();
        assert_eq!(response.status(), status);
        problem(response).await;
    }
    // None of that paired anything for alice (a flow still finds no device).
    let flow = app.start_flow(&oob_request("alice")).await;
    assert_eq!(app.state(&flow).await.status.name(), StatusName::MfaFailed);

    let response = pair(body(&key, &public)).await.unwrap();
    assert_eq!(response.status(), 201);
    let paired: serde_json::Value = response.json().await.unwrap();
    assert_eq!(paired["userId"], "alice");
    let reused = pair(body(&key, &public)).await.unwrap();
    assert_eq!(reused.status(), 404, "a pairing key works once");
    let unknown = pair(body("AAAAAAAAAAAAAAAAAAAA", &public)).await.unwrap();
    assert_eq!(unknown.status(), 404);

    // Admin: pairing keys only for known users, only with the token.
    assert_eq!(
        app.admin_post("/admin/v1/users/nobody/pairing-keys")
            .await
            .status(),
        404
    );
    let wrong_token = app
        .http
        .post(app.url("/admin/v1/users/alice/pairing-keys"))
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
    let anonymous = app
        .http
        .post(app.url("/admin/v1/users/alice/pairing-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_pairing_key_is_refused() {
    let app = TestApp::spawn_with(
        Backend::Memory,
        &unique("t"),
        figment::Figment::new().merge(("policy.pairing_key_ttl_secs", 1)),
    )
    .await;
    let key = app.pairing_key("alice").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let error = crate::support::pair_phone(&app.address, &key, "late phone")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("404"), "{error}");
}
