//! Hardware tokens end to end: YubiKeys (OTPs made here with a random AES key, as a key
//! would make them) and OATH HOTP/TOTP tokens, imported through the Admin API and used
//! at sign-in through the Authentication API: accepted once, replays and older counters
//! refused, HOTP look-ahead and resync, and bad imports refused without a trace.

use assent_core::clock::{Clock, SystemClock};
use assent_proto::admin::{PasscodeDevice, UserDevices};
use assent_proto::authn::{ActionRequest, DetailCode, DeviceType, Method, PairingType, StatusName};
use figment::Figment;
use rand::Rng;
use serde_json::{Value, json};

use crate::pages::PageBrowser;
use crate::support::{
    ADMIN_TOKEN, Backend, TestApp, expect_status, on_both_backends, oob_request, problem,
    repo_root, unique,
};

on_both_backends!(
    a_yubikey_otp_works_once_and_only_with_newer_counters,
    a_yubikey_otp_with_a_bad_crc_private_id_or_public_id_is_refused,
    of_two_concurrent_submissions_of_one_otp_exactly_one_wins,
    a_hotp_token_works_within_its_look_ahead_and_after_a_resync,
    a_totp_token_code_works_once_per_step,
    bad_imports_are_refused_and_leave_nothing,
    a_mandatory_token_is_never_offered_for_set_up,
    a_yubikey_signs_in_through_the_hosted_page,
);

const DATA_KEY_ENV: &str = "ASSENT_SECRET_TEST_TOKENS_DATA_KEY";

/// Secrets sealed with a data key; wrong codes never lock these tests out: each refusal
/// is what is checked.
async fn spawn(backend: Backend<'_>) -> TestApp {
    spawn_with(backend, Figment::new()).await
}

/// [`spawn`], with `extra` configuration on top.
async fn spawn_with(backend: Backend<'_>, extra: Figment) -> TestApp {
    static KEY: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any server of this process reads it, to the same value.
    KEY.call_once(|| unsafe {
        std::env::set_var(DATA_KEY_ENV, "Zm9yIHRoZSB0b2tlbiB0ZXN0cyBvbmx5LCAzMiBieXQ=")
    });
    TestApp::spawn_with(
        backend,
        &unique("tok"),
        Figment::new()
            .merge(("secrets.data_key_env", DATA_KEY_ENV))
            .merge((
                "mfa.allowed_methods",
                json!(["SMS", "YUBIKEY", "OATH_TOKEN"]),
            ))
            .merge(("mfa.otp_attempt_limit", 0))
            .merge(("mfa.otp_max_attempts", 10))
            .merge(extra),
    )
    .await
}

/// `POST path` with the admin token and a JSON body.
async fn admin_post_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .expect("the request reaches the server")
}

/// The user's passcode devices, as the operator lists them.
async fn passcode_devices(app: &TestApp, user: &str) -> Vec<PasscodeDevice> {
    let response = app
        .admin_get(&format!("/admin/v1/users/{user}/devices"))
        .await;
    assert_eq!(response.status(), 200);
    response
        .json::<UserDevices>()
        .await
        .unwrap()
        .passcode_devices
}

const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";

fn modhex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
        .map(|nibble| char::from(MODHEX[usize::from(nibble)]))
        .collect()
}

/// CRC-16 (ISO 13239), as a YubiKey computes it over its token.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for byte in data {
        crc ^= u16::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A YubiKey made up for a test: its identities and AES key, random.
struct TestYubikey {
    public_id: String,
    private_id: [u8; 6],
    aes_key: [u8; 16],
}

impl TestYubikey {
    fn random() -> Self {
        let mut rng = rand::rng();
        Self {
            public_id: modhex(&rng.random::<[u8; 6]>()),
            private_id: rng.random(),
            aes_key: rng.random(),
        }
    }

    /// What the operator imports.
    fn import(&self) -> Value {
        json!({
            "publicId": self.public_id,
            "privateId": hex::encode(self.private_id),
            "aesKey": hex::encode(self.aes_key),
        })
    }

    /// The OTP the key types at `session` and `use_counter`.
    fn otp(&self, session: u16, use_counter: u8) -> String {
        self.otp_with(self.private_id, session, use_counter, false)
    }

    /// An OTP with a given private id, its CRC corrupted if asked.
    fn otp_with(
        &self,
        private_id: [u8; 6],
        session: u16,
        use_counter: u8,
        bad_crc: bool,
    ) -> String {
        let mut plain = [0u8; 16];
        plain[..6].copy_from_slice(&private_id);
        plain[6..8].copy_from_slice(&session.to_le_bytes());
        plain[8..11].copy_from_slice(&rand::rng().random::<[u8; 3]>());
        plain[11] = use_counter;
        plain[12..14].copy_from_slice(&rand::rng().random::<[u8; 2]>());
        let crc = !crc16(&plain[..14]) ^ u16::from(bad_crc);
        plain[14..].copy_from_slice(&crc.to_le_bytes());
        let cipher = openssl::symm::Cipher::aes_128_ecb();
        let mut crypter =
            openssl::symm::Crypter::new(cipher, openssl::symm::Mode::Encrypt, &self.aes_key, None)
                .unwrap();
        crypter.pad(false);
        let mut token = vec![0u8; 32];
        let written = crypter.update(&plain, &mut token).unwrap();
        let rest = crypter.finalize(&mut token[written..]).unwrap();
        assert_eq!(written + rest, 16);
        format!("{}{}", self.public_id, modhex(&token[..16]))
    }
}

/// What the store holds of `user`'s passcode devices, as text.
async fn stored_devices(app: &TestApp, user: &str) -> String {
    let user = assent_core::user::UserId::parse(user).unwrap();
    let record = app
        .adapter
        .store()
        .get(&assent_core::keys::otp_devices(&user))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(record.value).unwrap()
}

/// Imports a key for `user` and checks what the operator sees: the public id, never a
/// secret.
async fn import_yubikey(app: &TestApp, user: &str, key: &TestYubikey) -> PasscodeDevice {
    let response = admin_post_json(
        app,
        &format!("/admin/v1/users/{user}/yubikeys"),
        &key.import(),
    )
    .await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(&hex::encode(key.aes_key)), "{text}");
    assert!(!text.contains(&hex::encode(key.private_id)), "{text}");
    let device: PasscodeDevice = serde_json::from_str(&text).unwrap();
    assert_eq!(device.method, Method::Yubikey);
    assert_eq!(device.target.as_deref(), Some(key.public_id.as_str()));
    let stored = stored_devices(app, user).await;
    assert!(
        !stored.contains(&hex::encode(key.aes_key)),
        "sealed at rest"
    );
    assert!(stored.contains("sealed:"), "{stored}");
    device
}

/// A sign-in of `user`, whose only device is a token: it waits for the token's code, and
/// lists the token.
async fn sign_in(app: &TestApp, user: &str, kind: DeviceType) -> String {
    let flow = app.start_flow(&oob_request(user)).await;
    let state = app.state(&flow).await;
    let challenge = expect_status!(state, OtpRequired);
    assert_eq!(challenge.devices.len(), 1, "{state:?}");
    assert_eq!(challenge.devices[0].device_type, kind);
    flow
}

/// Submits `otp` in a new sign-in: `Ok` when the sign-in completed, else the status and
/// detail code of the refusal.
async fn try_otp(
    app: &TestApp,
    user: &str,
    kind: DeviceType,
    otp: &str,
) -> Result<(), (u16, DetailCode)> {
    let flow = sign_in(app, user, kind).await;
    match app.act(&flow, ActionRequest::check_otp(otp)).await {
        Ok(state) => {
            assert_eq!(state.status.name(), StatusName::MfaCompleted, "{state:?}");
            Ok(())
        }
        Err(refusal) => Err((refusal.status, refusal.detail().code)),
    }
}

const REFUSED: Result<(), (u16, DetailCode)> = Err((400, DetailCode::InvalidOtp));

async fn a_yubikey_otp_works_once_and_only_with_newer_counters(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("yk");
    app.start_flow(&oob_request(&user)).await;
    let key = TestYubikey::random();
    import_yubikey(&app, &user, &key).await;

    let flow = sign_in(&app, &user, DeviceType::Yubikey).await;
    let state = app.state(&flow).await;
    assert_eq!(
        expect_status!(state, OtpRequired).otp_length,
        44,
        "a YubiKey OTP's length"
    );
    let done = app
        .act_ok(&flow, ActionRequest::check_otp(key.otp(3, 5)))
        .await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted);
    app.act_ok(&flow, ActionRequest::ContinueAuthentication)
        .await;
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["method"], "yubikey");
    assert_eq!(result["amr"], json!(["mfa", "hwk", "otp"]));

    let same = key.otp(3, 5);
    assert_eq!(
        try_otp(&app, &user, DeviceType::Yubikey, &same).await,
        REFUSED,
        "a replay"
    );
    let older = key.otp(3, 4);
    assert_eq!(
        try_otp(&app, &user, DeviceType::Yubikey, &older).await,
        REFUSED,
        "an older use"
    );
    let older_session = key.otp(2, 200);
    assert_eq!(
        try_otp(&app, &user, DeviceType::Yubikey, &older_session).await,
        REFUSED
    );
    // The next touch, and the first of the next session, work; upper case too.
    assert_eq!(
        try_otp(&app, &user, DeviceType::Yubikey, &key.otp(3, 6)).await,
        Ok(())
    );
    let next_session = key.otp(4, 0).to_ascii_uppercase();
    assert_eq!(
        try_otp(&app, &user, DeviceType::Yubikey, &next_session).await,
        Ok(())
    );
}

async fn a_yubikey_otp_with_a_bad_crc_private_id_or_public_id_is_refused(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("yk");
    app.start_flow(&oob_request(&user)).await;
    let key = TestYubikey::random();
    import_yubikey(&app, &user, &key).await;
    let kind = DeviceType::Yubikey;

    let bad_crc = key.otp_with(key.private_id, 1, 1, true);
    assert_eq!(
        try_otp(&app, &user, kind, &bad_crc).await,
        REFUSED,
        "a corrupted CRC"
    );
    let mut other_private = key.private_id;
    other_private[0] ^= 0x80;
    let wrong_private = key.otp_with(other_private, 1, 1, false);
    assert_eq!(
        try_otp(&app, &user, kind, &wrong_private).await,
        REFUSED,
        "a wrong private id"
    );
    // The same secrets behind a public id never imported.
    let stranger = TestYubikey {
        public_id: TestYubikey::random().public_id,
        private_id: key.private_id,
        aes_key: key.aes_key,
    };
    let unknown = stranger.otp(1, 1);
    assert_eq!(
        try_otp(&app, &user, kind, &unknown).await,
        REFUSED,
        "an unknown public id"
    );
    // Another key's OTP re-labelled with this key's public id: its AES key is not this one.
    let other = TestYubikey::random().otp(1, 1);
    let relabelled = format!("{}{}", key.public_id, &other[12..]);
    assert_eq!(try_otp(&app, &user, kind, &relabelled).await, REFUSED);
    let not_modhex = format!("{}a{}", key.public_id, &key.otp(1, 1)[13..]);
    assert_eq!(
        try_otp(&app, &user, kind, &not_modhex).await,
        REFUSED,
        "not modhex"
    );
    // None of these moved the counters: the key's first OTP still works.
    assert_eq!(try_otp(&app, &user, kind, &key.otp(1, 1)).await, Ok(()));
}

async fn of_two_concurrent_submissions_of_one_otp_exactly_one_wins(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("yk");
    app.start_flow(&oob_request(&user)).await;
    let key = TestYubikey::random();
    import_yubikey(&app, &user, &key).await;
    for round in 1..=10u8 {
        let (first, second) = (
            sign_in(&app, &user, DeviceType::Yubikey).await,
            sign_in(&app, &user, DeviceType::Yubikey).await,
        );
        let otp = key.otp(1, round);
        let (a, b) = tokio::join!(
            app.act(&first, ActionRequest::check_otp(otp.clone())),
            app.act(&second, ActionRequest::check_otp(otp.clone())),
        );
        let won: Vec<bool> = [&a, &b].iter().map(|outcome| outcome.is_ok()).collect();
        assert_eq!(won.iter().filter(|won| **won).count(), 1, "{a:?} {b:?}");
        let refused = if won[0] {
            b.unwrap_err()
        } else {
            a.unwrap_err()
        };
        assert_eq!(refused.status, 400);
    }
}

/// The code of an HOTP seed at `counter` (RFC 4226: TOTP with a one-second step).
fn hotp(seed: &[u8], counter: u64) -> String {
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        1,
        seed.to_vec(),
        None,
        String::new(),
    )
    .generate(counter)
}

async fn import_oath(app: &TestApp, user: &str, body: &Value) -> PasscodeDevice {
    let response = admin_post_json(app, &format!("/admin/v1/users/{user}/oath-tokens"), body).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(body["seed"].as_str().unwrap()), "{text}");
    let device: PasscodeDevice = serde_json::from_str(&text).unwrap();
    assert_eq!(device.method, Method::OathToken);
    let stored = stored_devices(app, user).await;
    assert!(
        !stored.contains(body["seed"].as_str().unwrap()),
        "sealed at rest"
    );
    assert_eq!(
        device.target.as_ref(),
        body["serial"].as_str().map(str::to_owned).as_ref()
    );
    device
}

async fn resync(
    app: &TestApp,
    user: &str,
    device: &str,
    first: &str,
    second: &str,
) -> reqwest::Response {
    admin_post_json(
        app,
        &format!("/admin/v1/users/{user}/oath-tokens/{device}/resync"),
        &json!({ "first": first, "second": second }),
    )
    .await
}

async fn a_hotp_token_works_within_its_look_ahead_and_after_a_resync(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("hotp");
    app.start_flow(&oob_request(&user)).await;
    let seed: [u8; 20] = rand::rng().random();
    let device = import_oath(
        &app,
        &user,
        &json!({ "serial": unique("OATH"), "seed": hex::encode(seed), "kind": "hotp" }),
    )
    .await;
    let kind = DeviceType::OathToken;
    let code = |counter| hotp(&seed, counter);

    assert_eq!(try_otp(&app, &user, kind, &code(0)).await, Ok(()));
    assert_eq!(
        try_otp(&app, &user, kind, &code(0)).await,
        REFUSED,
        "a replay"
    );
    // Presses never submitted: within the look-ahead of 10 past the last accepted.
    assert_eq!(try_otp(&app, &user, kind, &code(5)).await, Ok(()));
    assert_eq!(
        try_otp(&app, &user, kind, &code(3)).await,
        REFUSED,
        "behind the counter"
    );
    assert_eq!(
        try_otp(&app, &user, kind, &code(17)).await,
        REFUSED,
        "past the look-ahead"
    );
    assert_eq!(
        try_otp(&app, &user, kind, &code(16)).await,
        Ok(()),
        "at its end"
    );

    // The token ran far ahead: the operator resyncs it with two consecutive codes.
    assert_eq!(try_otp(&app, &user, kind, &code(60)).await, REFUSED);
    let not_consecutive = resync(&app, &user, &device.id, &code(60), &code(62)).await;
    assert_eq!(not_consecutive.status(), 400);
    problem(not_consecutive).await;
    let too_far = resync(&app, &user, &device.id, &code(200), &code(201)).await;
    assert_eq!(too_far.status(), 400, "past the resync window of 100");
    let unknown = resync(&app, &user, "no-such-device", &code(60), &code(61)).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        resync(&app, &user, &device.id, &code(60), &code(61))
            .await
            .status(),
        204
    );
    assert_eq!(
        try_otp(&app, &user, kind, &code(61)).await,
        REFUSED,
        "spent by the resync"
    );
    assert_eq!(try_otp(&app, &user, kind, &code(62)).await, Ok(()));
}

async fn a_totp_token_code_works_once_per_step(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("totp");
    app.start_flow(&oob_request(&user)).await;
    let seed: [u8; 32] = rand::rng().random();
    let base32 = match totp_rs::Secret::Raw(seed.to_vec()).to_encoded() {
        totp_rs::Secret::Encoded(text) => text,
        totp_rs::Secret::Raw(_) => unreachable!(),
    };
    let device = import_oath(
        &app,
        &user,
        &json!({
            "serial": unique("TOTP"), "seed": base32, "seedEncoding": "base32", "kind": "totp",
            "algorithm": "SHA256", "digits": 8, "period": 30,
        }),
    )
    .await;
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA256,
        8,
        0,
        30,
        seed.to_vec(),
        None,
        String::new(),
    );
    let now = SystemClock.now_secs();
    let kind = DeviceType::OathToken;
    // The challenge says the token's own length, so a client does not cut the code short.
    let flow = sign_in(&app, &user, kind).await;
    let state = app.state(&flow).await;
    assert_eq!(expect_status!(state, OtpRequired).otp_length, 8);
    assert_eq!(
        try_otp(&app, &user, kind, &totp.generate(now)).await,
        Ok(())
    );
    assert_eq!(
        try_otp(&app, &user, kind, &totp.generate(now)).await,
        REFUSED,
        "same step"
    );
    let previous = totp.generate(now - 30);
    assert_eq!(
        try_otp(&app, &user, kind, &previous).await,
        REFUSED,
        "an older step"
    );
    let later = totp.generate(now + 30);
    assert_eq!(
        try_otp(&app, &user, kind, &later).await,
        Ok(()),
        "the next step, drifted"
    );
    let resynced = resync(&app, &user, &device.id, "12345678", "12345679").await;
    assert_eq!(resynced.status(), 400, "a TOTP token is not resynchronised");
}

async fn bad_imports_are_refused_and_leave_nothing(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let (user, other) = (unique("bad"), unique("other"));
    app.start_flow(&oob_request(&user)).await;
    app.start_flow(&oob_request(&other)).await;
    let key = TestYubikey::random();
    let good = import_yubikey(&app, &user, &key).await;
    let serial = unique("SN");
    let seed = hex::encode(rand::rng().random::<[u8; 20]>());
    let token = import_oath(
        &app,
        &user,
        &json!({ "serial": serial, "seed": seed, "kind": "hotp" }),
    )
    .await;

    let fresh = TestYubikey::random();
    let with = |field: &str, value: Value| {
        let mut body = fresh.import();
        body[field] = value;
        body
    };
    let yubikeys = format!("/admin/v1/users/{user}/yubikeys");
    for (body, why) in [
        (with("aesKey", json!("zz".repeat(16))), "bad hex"),
        (with("aesKey", json!("00".repeat(15))), "a 15-byte AES key"),
        (
            with("privateId", json!("00".repeat(7))),
            "a 7-byte private id",
        ),
        (with("publicId", json!("cbdefghijkln0")), "13 characters"),
        (with("publicId", json!("cbdefghijkla")), "not modhex"),
        (json!({ "publicId": fresh.public_id }), "missing fields"),
        (with("extra", json!(1)), "an unknown field"),
    ] {
        let response = admin_post_json(&app, &yubikeys, &body).await;
        assert_eq!(response.status(), 400, "{why}");
        problem(response).await;
    }
    for owner in [&user, &other] {
        let response = admin_post_json(
            &app,
            &format!("/admin/v1/users/{owner}/yubikeys"),
            &TestYubikey {
                public_id: key.public_id.clone(),
                ..TestYubikey::random()
            }
            .import(),
        )
        .await;
        assert_eq!(response.status(), 409, "a public id already imported");
        problem(response).await;
    }
    let nobody = admin_post_json(
        &app,
        &format!("/admin/v1/users/{}/yubikeys", unique("nobody")),
        &fresh.import(),
    )
    .await;
    assert_eq!(nobody.status(), 404);

    let tokens = format!("/admin/v1/users/{user}/oath-tokens");
    let oath = |changes: Value| {
        let mut body =
            json!({ "serial": unique("SN"), "seed": hex::encode([7u8; 20]), "kind": "hotp" });
        for (field, value) in changes.as_object().unwrap() {
            body[field] = value.clone();
        }
        body
    };
    for (body, why) in [
        (oath(json!({ "seed": "xyz" })), "bad hex"),
        (oath(json!({ "seed": "00".repeat(9) })), "a 9-byte seed"),
        (
            oath(json!({ "seed": "0189", "seedEncoding": "base32" })),
            "bad base32",
        ),
        (oath(json!({ "digits": 7 })), "7 digits"),
        (oath(json!({ "kind": "motp" })), "an unknown kind"),
        (oath(json!({ "algorithm": "MD5" })), "an unknown algorithm"),
        (oath(json!({ "period": 30 })), "a period for HOTP"),
        (
            oath(json!({ "kind": "totp", "period": 5 })),
            "a 5-second period",
        ),
        (oath(json!({ "serial": "" })), "an empty serial"),
        (oath(json!({ "serial": "a/b" })), "a serial with a slash"),
    ] {
        let response = admin_post_json(&app, &tokens, &body).await;
        assert_eq!(response.status(), 400, "{why}");
        problem(response).await;
    }
    let duplicate = admin_post_json(
        &app,
        &format!("/admin/v1/users/{other}/oath-tokens"),
        &json!({ "serial": serial, "seed": hex::encode([9u8; 20]), "kind": "totp" }),
    )
    .await;
    assert_eq!(duplicate.status(), 409, "a serial already imported");
    problem(duplicate).await;

    // Only the two good imports exist; the refused ones claimed nothing.
    let ids: Vec<String> = passcode_devices(&app, &user)
        .await
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, [good.id.clone(), token.id.clone()]);
    assert!(passcode_devices(&app, &other).await.is_empty());
    let again = admin_post_json(&app, &yubikeys, &fresh.import()).await;
    assert_eq!(
        again.status(),
        201,
        "the refused key's public id was never claimed"
    );
    let again: PasscodeDevice = again.json().await.unwrap();
    let listed: Vec<String> = passcode_devices(&app, &user)
        .await
        .into_iter()
        .map(|device| device.id)
        .collect();
    assert_eq!(
        listed,
        [good.id.clone(), token.id.clone(), again.id],
        "a second key"
    );
    // Removing a key frees its public id.
    let removed = app
        .http
        .delete(app.url(&format!("/admin/v1/users/{user}/devices/{}", good.id)))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    import_yubikey(&app, &other, &key).await;
}

async fn a_mandatory_token_is_never_offered_for_set_up(backend: Backend<'_>) {
    let app = spawn_with(
        backend,
        Figment::new()
            .merge((
                "mfa.allowed_methods",
                json!(["SMS", "TOTP", "YUBIKEY", "OATH_TOKEN"]),
            ))
            .merge((
                "mfa.mandatory_authentication_methods",
                json!(["TOTP", "YUBIKEY"]),
            )),
    )
    .await;
    // A user without the mandatory YubiKey cannot get one in a flow: the sign-in fails,
    // saying why, rather than going on without it.
    let user = unique("new");
    let flow = app.start_flow(&oob_request(&user)).await;
    let failed = app.state(&flow).await;
    let reason = &expect_status!(failed, MfaFailed).reason;
    assert!(reason.contains("YUBIKEY"), "{reason}");

    // Once the operator imported one, the person signs in with it and then sets up the
    // authenticator app, the other mandatory method; the tokens are never offered.
    let key = TestYubikey::random();
    import_yubikey(&app, &user, &key).await;
    let flow = sign_in(&app, &user, DeviceType::Yubikey).await;
    let setup = app
        .act_ok(&flow, ActionRequest::check_otp(key.otp(1, 1)))
        .await;
    let required = &expect_status!(setup, MfaSetupRequired).required_methods;
    assert_eq!(
        required,
        &[Method::Totp],
        "imported by an operator, never set up"
    );
    let methods = app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let offered: Vec<PairingType> = expect_status!(methods, DevicePairingMethodRequired)
        .device_pairing_methods
        .iter()
        .map(|method| method.device_type)
        .collect();
    assert_eq!(offered, [PairingType::Totp]);
    for token in ["YUBIKEY", "OATH_TOKEN"] {
        let refused = app
            .act_err(&flow, ActionRequest::select_pairing_method(token))
            .await;
        assert_eq!(refused.status, 400, "{token}");
    }
    // Once the authenticator app is set up, nothing is left to set up: the sign-in ends.
    let activation = app
        .act_ok(&flow, ActionRequest::select_pairing_method("TOTP"))
        .await;
    let secret = expect_status!(activation, TotpActivationRequired)
        .pairing_key
        .clone();
    let code = assent_core::otp::totp_now(&secret, SystemClock.now_secs()).unwrap();
    let done = app
        .act_ok(&flow, ActionRequest::activate_totp_device(code))
        .await;
    assert_eq!(done.status.name(), StatusName::MfaCompleted, "{done:?}");
}

/// `assent config check` on the shipped configuration with `env` on top.
fn config_check(env: &[(&str, &str)]) -> (bool, String) {
    let mut command = crate::support::assent_command();
    command
        .args(["config", "check", "--config"])
        .arg(repo_root().join("conf/assent.toml"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn config_check_accepts_token_methods_and_checks_their_windows() {
    let (ok, message) = config_check(&[
        (
            "ASSENT_MFA__ALLOWED_METHODS",
            r#"["YUBIKEY", "OATH_TOKEN", "SMS"]"#,
        ),
        (
            "ASSENT_MFA__MANDATORY_AUTHENTICATION_METHODS",
            r#"["YUBIKEY"]"#,
        ),
    ]);
    assert!(ok, "{message}");
    let (ok, message) = config_check(&[("ASSENT_TOKENS__HOTP_LOOK_AHEAD", "0")]);
    assert!(!ok);
    assert!(message.contains("tokens.hotp_look_ahead"), "{message}");
    let (ok, message) = config_check(&[("ASSENT_TOKENS__HOTP_RESYNC_WINDOW", "5")]);
    assert!(!ok);
    assert!(message.contains("tokens.hotp_resync_window"), "{message}");
}

/// The hosted page takes a YubiKey's OTP (letters, typed by the key) in its code field.
async fn a_yubikey_signs_in_through_the_hosted_page(backend: Backend<'_>) {
    let app = spawn(backend).await;
    let user = unique("yk");
    app.start_flow(&oob_request(&user)).await;
    let key = TestYubikey::random();
    import_yubikey(&app, &user, &key).await;
    let mut request = oob_request(&user);
    request["returnUrl"] = json!("https://rp.example/back");
    let flow = app.start_flow_unauthenticated(&request).await;
    let mut page = PageBrowser::new(&app, &flow);
    page.get("en").await;
    page.act("authenticate", None).await;
    let entry = page
        .shows(
            &[
                "Touch your YubiKey",
                "maxlength=\"44\"",
                "autocomplete=\"off\"",
            ],
            &["Berühren Sie Ihren YubiKey"],
        )
        .await;
    assert!(
        !entry.html.contains("inputmode=\"numeric\""),
        "{}",
        entry.html
    );
    let csrf = page.get("en").await.field("csrf");
    let otp = key.otp(1, 1);
    let response = page
        .post(&[("csrf", &csrf), ("action", "checkOtp"), ("otp", &otp)])
        .await;
    assert_eq!(response.status(), 303);
    page.shows(
        &["Authentication successful"],
        &["Authentifizierung erfolgreich"],
    )
    .await;
}
