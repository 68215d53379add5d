//! What the SDK signs, checked by the server's own verifiers (`assent-core`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use assent_core::device_key::{self, PublicDeviceKey};
use assent_proto::adapter::Application;
use assent_proto::device::{Decision, DeviceInfo, PendingRequest};
use assent_proto::mobile::ServerPayload;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::{
    Client, DeviceKey, DeviceRecord, DeviceSigner, SdkError, decode_server_payload, params_hash,
    qr_token,
};

fn server_key(key: &DeviceKey) -> PublicDeviceKey {
    PublicDeviceKey::parse(key.public_jwk()).expect("the server accepts the public JWK")
}

fn signer() -> DeviceSigner {
    DeviceSigner::new("dev-1", DeviceKey::generate().unwrap())
}

fn info() -> DeviceInfo {
    DeviceInfo {
        name: "Phone".into(),
        os: "iOS".into(),
        os_version: "18.1".into(),
        model: "iPhone 16".into(),
    }
}

fn request(params: &[(&str, &str)]) -> PendingRequest {
    PendingRequest {
        auth_id: "flow.AAAAAAAAAAAA".into(),
        kind: "transaction".into(),
        user_id: "alice".into(),
        title: "Approve".into(),
        body: "Approve transfer".into(),
        application: Application::default(),
        client_ip: None,
        dynamic_params: params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        expires_at: 0,
        silent: false,
        number_choices: vec![],
        admin_message: None,
    }
}

fn private_part(jwk: &Map<String, Value>) -> String {
    jwk["d"].as_str().unwrap().to_owned()
}

#[test]
fn a_key_exports_its_public_half_and_comes_back_from_its_private_jwk() {
    let key = DeviceKey::generate().unwrap();
    let public = key.public_jwk();
    assert_eq!(public["kty"], "EC");
    assert_eq!(public["crv"], "P-256");
    assert!(public.contains_key("x") && public.contains_key("y"));
    assert!(!public.contains_key("d"), "no private part in {public:?}");
    server_key(&key);

    let again = DeviceKey::from_private_jwk(key.private_jwk()).unwrap();
    assert_eq!(again.public_jwk(), public);
    // As the simulator kept keys before: `d` alone.
    let mut d_only = key.private_jwk();
    d_only.remove("x");
    d_only.remove("y");
    assert_eq!(
        DeviceKey::from_private_jwk(d_only).unwrap().public_jwk(),
        public
    );
    // A stored public half that does not match is not believed.
    let mut mismatched = key.private_jwk();
    let other = DeviceKey::generate().unwrap();
    mismatched.insert("x".into(), other.public_jwk()["x"].clone());
    assert_eq!(
        DeviceKey::from_private_jwk(mismatched)
            .unwrap()
            .public_jwk(),
        public
    );
}

#[test]
fn only_p256_private_keys_are_taken() {
    let key = DeviceKey::generate().unwrap();
    let mut wrong_curve = key.private_jwk();
    wrong_curve.insert("crv".into(), json!("P-384"));
    let mut rsa = key.private_jwk();
    rsa.insert("kty".into(), json!("RSA"));
    let mut garbage = key.private_jwk();
    garbage.insert("d".into(), json!("!!"));
    for jwk in [
        wrong_curve,
        rsa,
        key.public_jwk().clone(),
        garbage,
        Map::new(),
    ] {
        assert!(DeviceKey::from_private_jwk(jwk).is_err());
    }
}

#[test]
fn debug_output_holds_no_private_key() {
    let key = DeviceKey::generate().unwrap();
    let d = private_part(&key.private_jwk());
    let record = DeviceRecord {
        server: "http://127.0.0.1:9031".into(),
        device_id: "dev-1".into(),
        user_id: "alice".into(),
        private_jwk: key.private_jwk(),
        totp_seed: Some("JBSWY3DPEHPK3PXP".into()),
    };
    for text in [format!("{key:?}"), format!("{record:?}")] {
        assert!(!text.contains(&d), "{text}");
        assert!(!text.contains("JBSWY3DPEHPK3PXP"), "{text}");
    }
}

#[test]
fn keys_and_records_are_saved_for_their_owner_only_and_read_back() {
    let dir = std::env::temp_dir().join(format!(
        "assent-sdk-{}-{}",
        std::process::id(),
        crate::signer::random_jti()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = DeviceKey::generate().unwrap();
    let key_path = dir.join("key.json");
    // An existing file with wider permissions is narrowed.
    std::fs::write(&key_path, "{}").unwrap();
    key.save(&key_path).unwrap();
    assert_eq!(
        DeviceKey::load(&key_path).unwrap().public_jwk(),
        key.public_jwk()
    );

    // The record format the simulator has always written (`d` alone, no seed) still loads.
    let mut d_only = Map::new();
    d_only.insert("kty".into(), json!("EC"));
    d_only.insert("crv".into(), json!("P-256"));
    d_only.insert("d".into(), json!(private_part(&key.private_jwk())));
    let record_path = dir.join("device.json");
    let old = json!({
        "server": "http://127.0.0.1:9031", "deviceId": "dev-1", "userId": "alice",
        "privateJwk": d_only,
    });
    std::fs::write(&record_path, old.to_string()).unwrap();
    let device = crate::Device::load(&record_path).unwrap();
    assert_eq!(device.id(), "dev-1");
    assert_eq!(device.user_id(), "alice");
    assert_eq!(device.totp_seed(), None);
    assert_eq!(device.signer().key().public_jwk(), key.public_jwk());
    device.save(&record_path).unwrap();
    let saved = DeviceRecord::load(&record_path).unwrap();
    assert_eq!(saved.device_id, "dev-1");
    assert_eq!(saved.server, "http://127.0.0.1:9031");

    #[cfg(unix)]
    for path in [&key_path, &record_path] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let missing = DeviceKey::load(&dir.join("nope.json")).unwrap_err();
    assert!(matches!(missing, SdkError::File { .. }), "{missing}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn device_tokens_verify_at_the_server() {
    let signer = signer();
    let key = server_key(signer.key());
    let now = SystemTime::now();
    let claims = device_key::verify_token(&signer.token().unwrap(), &key, "dev-1", now).unwrap();
    assert_eq!(claims.jti.len(), 22);
    let other = signer.token().unwrap();
    assert_eq!(
        assent_core::jwt::unverified_issuer(&other).as_deref(),
        Some("dev-1")
    );
    assert_ne!(
        device_key::verify_token(&other, &key, "dev-1", now)
            .unwrap()
            .jti,
        claims.jti,
        "every token has its own jti"
    );
    assert!(device_key::verify_token(&other, &key, "dev-2", now).is_err());
    let expired = signer
        .token_with(now - Duration::from_secs(120), "old")
        .unwrap();
    assert!(device_key::verify_token(&expired, &key, "dev-1", now).is_err());
    let stranger = server_key(&DeviceKey::generate().unwrap());
    assert!(device_key::verify_token(&signer.token().unwrap(), &stranger, "dev-1", now).is_err());
}

#[test]
fn the_params_hash_is_the_servers() {
    let mut params = BTreeMap::new();
    assert_eq!(params_hash(&params), assent_core::params::digest(&params));
    params.insert("payee".to_owned(), "Bob \"the builder\" ü".to_owned());
    params.insert("amount".to_owned(), "€100".to_owned());
    assert_eq!(params_hash(&params), assent_core::params::digest(&params));
}

#[test]
fn decision_proofs_verify_at_the_server_and_bind_what_was_shown() {
    let signer = signer();
    let key = server_key(signer.key());
    let shown = request(&[("amount", "100"), ("payee", "Bob")]);
    let proof = signer
        .decision_proof(&shown, Decision::Approve, Some(42))
        .unwrap();
    let claims = device_key::verify_proof(&proof, &key).unwrap();
    assert_eq!(claims.auth_id, shown.auth_id);
    assert_eq!(claims.decision, Decision::Approve);
    assert_eq!(claims.number, Some(42));
    assert_eq!(
        claims.params_hash,
        assent_core::params::digest(&shown.dynamic_params)
    );
    let denial = signer.decision_proof(&shown, Decision::Deny, None).unwrap();
    let claims = device_key::verify_proof(&denial, &key).unwrap();
    assert_eq!((claims.decision, claims.number), (Decision::Deny, None));
    let other = server_key(&DeviceKey::generate().unwrap());
    assert!(device_key::verify_proof(&proof, &other).is_err());
}

#[test]
fn the_answer_to_a_server_payload_verifies_at_the_server() {
    let signer = signer();
    let raw = URL_SAFE_NO_PAD.encode(json!({ "flowId": "f1", "nonce": "n1" }).to_string());
    let payload = decode_server_payload(&raw).unwrap();
    assert_eq!(
        payload,
        ServerPayload {
            flow_id: "f1".into(),
            nonce: "n1".into(),
            pairing_key: None,
        }
    );
    let answer = signer.answer_server_payload(&payload).unwrap();
    assert_eq!(
        device_key::mobile_payload_device(&answer).as_deref(),
        Some("dev-1")
    );
    let claims = device_key::verify_mobile_payload(&answer, &server_key(signer.key())).unwrap();
    assert_eq!(
        (
            claims.device_id.as_str(),
            claims.flow_id.as_str(),
            claims.nonce.as_str()
        ),
        ("dev-1", "f1", "n1")
    );
}

#[test]
fn server_payloads_are_read_or_refused() {
    let with_key = json!({ "flowId": "f1", "nonce": "n1", "pairingKey": "123456789012" });
    let payload = decode_server_payload(&URL_SAFE_NO_PAD.encode(with_key.to_string())).unwrap();
    assert_eq!(payload.pairing_key.as_deref(), Some("123456789012"));
    for raw in [
        "",
        "not base64!",
        &URL_SAFE_NO_PAD.encode("[]"),
        &URL_SAFE_NO_PAD.encode(r#"{"flowId":"f1"}"#),
    ] {
        assert!(
            matches!(decode_server_payload(raw), Err(SdkError::ServerPayload(_))),
            "{raw}"
        );
    }
}

#[test]
fn a_trusted_device_payload_verifies_at_the_server_once_fresh() {
    let signer = signer();
    let key = server_key(signer.key());
    let now = SystemTime::now();
    let payload = signer.trusted_device_payload("flow-1").unwrap();
    assert_eq!(
        assent_core::jwt::unverified_issuer(&payload).as_deref(),
        Some("dev-1")
    );
    let claims = device_key::verify_trusted_device_payload(&payload, &key, "dev-1", now).unwrap();
    assert_eq!(claims.flow_id, "flow-1");
    assert_eq!(claims.jti.len(), 22);
    assert!(claims.iat.abs_diff(crate::signer::unix_secs(now)) <= 1);
    assert_ne!(
        signer.trusted_device_payload("flow-1").unwrap(),
        payload,
        "a fresh jti each time"
    );

    let stale = signer
        .trusted_device_payload_with("flow-1", now - Duration::from_secs(600), "j1")
        .unwrap();
    let future = signer
        .trusted_device_payload_with("flow-1", now + Duration::from_secs(600), "j2")
        .unwrap();
    let no_jti = signer
        .trusted_device_payload_with("flow-1", now, "")
        .unwrap();
    // Other things the device signs cannot pass for one.
    let token = signer.token().unwrap();
    let answer = signer
        .answer_server_payload(&ServerPayload {
            flow_id: "flow-1".into(),
            nonce: "n".into(),
            pairing_key: None,
        })
        .unwrap();
    let untyped = signer
        .key()
        .sign(
            None,
            &json!({ "iss": "dev-1", "flowId": "flow-1", "iat": crate::signer::unix_secs(now), "jti": "j3" }),
        )
        .unwrap();
    for (case, payload) in [
        ("stale", stale),
        ("future", future),
        ("no jti", no_jti),
        ("device token", token),
        ("server payload answer", answer),
        ("no typ", untyped),
    ] {
        assert!(
            device_key::verify_trusted_device_payload(&payload, &key, "dev-1", now).is_err(),
            "{case}"
        );
    }
    assert!(device_key::verify_trusted_device_payload(&payload, &key, "dev-2", now).is_err());
    let stranger = server_key(&DeviceKey::generate().unwrap());
    assert!(device_key::verify_trusted_device_payload(&payload, &stranger, "dev-1", now).is_err());
}

#[test]
fn a_new_device_payload_carries_its_key_self_signed() {
    let key = DeviceKey::generate().unwrap();
    let now = SystemTime::now();
    let payload = key.new_device_payload("flow-1", &info()).unwrap();
    let (public, claims) = device_key::verify_new_device_payload(&payload, now).unwrap();
    assert_eq!(public.as_map(), key.public_jwk());
    assert_eq!(claims.flow_id, "flow-1");
    assert_eq!(claims.device, info());
    assert_eq!(claims.jti.len(), 22);

    // Signed by another key than the one it carries: refused.
    let impostor = DeviceKey::generate().unwrap();
    let mut claims = claims;
    claims.public_jwk = impostor.public_jwk().clone();
    let forged = key
        .sign(Some(assent_proto::mobile::NEW_DEVICE_PAYLOAD_TYPE), &claims)
        .unwrap();
    let stale = key
        .new_device_payload_with("flow-1", &info(), now - Duration::from_secs(600), "j1")
        .unwrap();
    let trusted = DeviceSigner::new("dev-1", key.clone())
        .trusted_device_payload("flow-1")
        .unwrap();
    for (case, payload) in [
        ("another key", forged),
        ("stale", stale),
        ("a trusted device's", trusted),
        ("garbage", "x.y.z".to_owned()),
    ] {
        assert!(
            device_key::verify_new_device_payload(&payload, now).is_err(),
            "{case}"
        );
    }
}

#[test]
fn qr_codes_give_their_token() {
    assert_eq!(
        qr_token("demobank://assent?authentication_token=abc.def"),
        "abc.def"
    );
    assert_eq!(qr_token(" abc.def\n"), "abc.def");
}

#[test]
fn device_api_urls_keep_hostile_segments_in_their_place() {
    let client = Client::new("https://mfa.example.com/assent/").unwrap();
    assert_eq!(client.server(), "https://mfa.example.com/assent");
    assert_eq!(
        client.url(&["device", "v1", "qr", "a/../b?c#d"]).as_str(),
        "https://mfa.example.com/assent/device/v1/qr/a%2F..%2Fb%3Fc%23d"
    );
    let root = Client::new("http://127.0.0.1:9031").unwrap();
    assert_eq!(
        root.url(&["device", "v1", "pending"]).as_str(),
        "http://127.0.0.1:9031/device/v1/pending"
    );
    for server in ["", "not a url", "mailto:someone@example.com", "ftp://host/"] {
        assert!(
            matches!(Client::new(server), Err(SdkError::ServerUrl { .. })),
            "{server}"
        );
    }
}
