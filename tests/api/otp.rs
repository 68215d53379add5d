//! One-time passcodes end to end: codes by SMS and voice (read back from a local HTTP
//! provider), by email (read back from a real SMTP server), authenticator apps, wrong
//! codes, replays, resends, and setting up the methods policy makes mandatory.

use std::time::Duration;

use assent_core::clock::{Clock, SystemClock};
use assent_proto::admin::UserDevices;
use assent_proto::authn::{
    ActionRequest, AuthnState, DetailCode, Device, DeviceType, ErrorCode, Method, PairingMethod,
    PairingType, StatusName,
};
use figment::Figment;
use serde_json::{Value, json};

use crate::support::{
    Backend, HttpSink, SmtpServer, TestApp, expect_status, links, mail_body, mail_header,
    on_both_backends, oob_request, transfer_request, unique,
};

on_both_backends!(
    a_code_by_sms_completes_the_sign_in,
    a_code_by_voice_call_completes_the_sign_in,
    a_code_by_email_arrives_through_smtp_and_completes_the_sign_in,
    wrong_codes_fail_the_sign_in_after_the_limit,
    resends_are_limited_and_replace_the_code,
    mandatory_sms_and_totp_are_set_up_after_the_push,
    mandatory_voice_and_email_are_set_up_before_anything_else,
    bad_enrolment_input_is_refused_and_changes_nothing,
    a_passcode_primary_verifies_a_new_device,
    codes_sent_to_a_user_are_limited_across_sign_ins,
    a_transaction_is_approved_only_by_the_devices_signature,
    a_user_with_devices_cannot_set_up_a_method_instead_of_using_them,
    passcodes_tried_are_limited_across_sign_ins,
    an_older_app_passcode_is_refused_once_a_newer_one_was_used,
    seeds_are_sealed_at_rest_with_the_data_key,
);

const SMS_TOKEN_ENV: &str = "ASSENT_SECRET_TEST_SMS_TOKEN";

/// Delivery through a local HTTP provider (SMS and voice) and a real SMTP server (email).
fn channels(sink: &HttpSink, smtp: &SmtpServer) -> Figment {
    static TOKEN: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any server of this process reads it, to the same value.
    TOKEN.call_once(|| unsafe { std::env::set_var(SMS_TOKEN_ENV, "test-sms-auth-token") });
    Figment::new()
        .merge(("delivery.sms", "http"))
        .merge(("delivery.voice", "http"))
        .merge(("delivery.email", "smtp"))
        .merge(("delivery.sms_http.base_url", sink.url()))
        .merge(("delivery.sms_http.account_sid", "AC0123456789"))
        .merge(("delivery.sms_http.auth_token_env", SMS_TOKEN_ENV))
        .merge(("delivery.sms_http.from", "+15555550100"))
        .merge(("delivery.smtp.host", "127.0.0.1"))
        .merge(("delivery.smtp.port", smtp.port()))
        .merge(("delivery.smtp.tls", "none"))
        .merge(("delivery.smtp.from", "Demo Bank <no-reply@bank.example>"))
        // Resends without waiting, so that tests need not sleep.
        .merge(("mfa.otp_resend_interval_secs", 0))
}

/// The service with delivery through the local provider and SMTP server it returns (kept
/// alive as long as the test holds them), and `extra` configuration on top.
pub(crate) async fn spawn(backend: Backend<'_>, extra: Figment) -> (TestApp, HttpSink, SmtpServer) {
    let (sink, smtp) = (HttpSink::start().await, SmtpServer::start());
    let app = TestApp::spawn_with(backend, &unique("t"), channels(&sink, &smtp).merge(extra)).await;
    (app, sink, smtp)
}

/// The digits of the first run of `len` digits in `text`.
pub(crate) fn code_in(text: &str, len: usize) -> String {
    let digits: Vec<char> = text.chars().collect();
    digits
        .windows(len)
        .find(|window| window.iter().all(char::is_ascii_digit))
        .map(|window| window.iter().collect())
        .unwrap_or_else(|| panic!("no {len}-digit code in {text:?}"))
}

/// The `n`-th (1-based) text message the provider received: its form fields.
pub(crate) async fn nth_sms(
    sink: &HttpSink,
    n: usize,
) -> std::collections::BTreeMap<String, String> {
    let requests = sink.wait_for(n).await;
    let request = &requests[n - 1];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        "/2010-04-01/Accounts/AC0123456789/Messages.json"
    );
    assert_eq!(
        request.basic_auth(),
        Some(("AC0123456789".to_owned(), "test-sms-auth-token".to_owned()))
    );
    request.form()
}

/// A user known only by their profile: no device, the given addresses.
fn profile_request(user: &str, phone: &str) -> Value {
    let mut request = oob_request(user);
    request["user"]["phone"] = json!(phone);
    request["user"]["voiceNumber"] = json!(phone);
    request
}

/// Starts a sign-in for `user`, known only by the profile's `phone`, and picks the SMS
/// backup: the flow waits for the code (`OTP_REQUIRED`).
async fn sms_sign_in(app: &TestApp, user: &str, phone: &str) -> String {
    let flow = app.start_flow(&profile_request(user, phone)).await;
    let state = app.state(&flow).await;
    let waiting = select(app, &flow, device_of_type(&state, DeviceType::Sms)).await;
    assert_eq!(
        waiting.status.name(),
        StatusName::OtpRequired,
        "{waiting:?}"
    );
    flow
}

pub(crate) async fn select(app: &TestApp, flow: &str, device: &Device) -> AuthnState {
    app.act_ok(flow, ActionRequest::select_device(&device.id))
        .await
}

pub(crate) fn device_of_type(state: &AuthnState, kind: DeviceType) -> &Device {
    state
        .status
        .devices()
        .iter()
        .find(|device| device.device_type == kind)
        .unwrap_or_else(|| panic!("a {kind:?} device in {state:?}"))
}

async fn finish(app: &TestApp, flow: &str, completed: AuthnState) -> Value {
    assert_eq!(
        completed.status.name(),
        StatusName::MfaCompleted,
        "{completed:?}"
    );
    let done = app
        .act_ok(flow, ActionRequest::ContinueAuthentication)
        .await;
    assert_eq!(done.status.name(), StatusName::Completed);
    let result = app.result(flow).await;
    assert_eq!(result.status(), 200);
    result.json().await.unwrap()
}

async fn a_code_by_sms_completes_the_sign_in(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(backend, Figment::new().merge(("mfa.sms_backup", true))).await;
    let flow = app
        .start_flow(&profile_request("carol", "+15555550177"))
        .await;
    let state = app.state(&flow).await;
    // No device: the SMS backup to the profile's number is what there is to choose.
    assert_eq!(state.status.name(), StatusName::DeviceSelectionRequired);
    let sms = device_of_type(&state, DeviceType::Sms);
    assert_eq!(sms.target, "+1555***0177", "the number is shown masked");
    assert!(sms.otp_enabled);

    let waiting = select(&app, &flow, sms).await;
    assert_eq!(waiting.status.name(), StatusName::OtpRequired);
    assert_eq!(
        links(&waiting),
        [
            "cancelAuthentication",
            "checkOtp",
            "resend",
            "resendOtp",
            "selectDevice"
        ]
    );
    assert_eq!(expect_status!(waiting, OtpRequired).otp_length, 6);
    let message = nth_sms(&sink, 1).await;
    assert_eq!(message["To"], "+15555550177");
    assert_eq!(message["From"], "+15555550100");
    let code = code_in(&message["Body"], 6);

    let completed = app.act_ok(&flow, ActionRequest::check_otp(&code)).await;
    let result = finish(&app, &flow, completed).await;
    assert_eq!(result["status"], "COMPLETED");
    assert_eq!(result["method"], "sms");
    assert_eq!(result["amr"], json!(["mfa", "sms", "otp"]));
    // Single use: the code cannot complete anything again.
    let again = app.act_err(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(again.status, 400);
}

async fn a_code_by_voice_call_completes_the_sign_in(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(backend, Figment::new().merge(("mfa.phone_backup", true))).await;
    let flow = app
        .start_flow(&profile_request("dave", "+15555550188"))
        .await;
    let state = app.state(&flow).await;
    let voice = device_of_type(&state, DeviceType::Voice);
    assert_eq!(
        select(&app, &flow, voice).await.status.name(),
        StatusName::OtpRequired
    );

    let call = &sink.wait_for(1).await[0];
    assert_eq!(call.path, "/2010-04-01/Accounts/AC0123456789/Calls.json");
    let form = call.form();
    assert_eq!(form["To"], "+15555550188");
    // The call reads the digits one by one: "1, 2, 3, 4, 5, 6".
    let twiml = &form["Twiml"];
    assert!(twiml.starts_with("<Response><Say>"), "{twiml}");
    let spoken = twiml
        .split("code is ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap();
    let code: String = spoken.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{twiml}");

    let completed = app.act_ok(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(finish(&app, &flow, completed).await["method"], "voice");
}

async fn a_code_by_email_arrives_through_smtp_and_completes_the_sign_in(backend: Backend<'_>) {
    let (app, _sink, smtp) = spawn(backend, Figment::new().merge(("mfa.email_backup", true))).await;
    let flow = app.start_flow(&oob_request("erin")).await;
    let state = app.state(&flow).await;
    let email = device_of_type(&state, DeviceType::Email);
    assert_eq!(email.target, "e***@example.com");
    assert_eq!(
        select(&app, &flow, email).await.status.name(),
        StatusName::OtpRequired
    );

    let messages = smtp.wait_for_messages(1, Duration::from_secs(10)).await;
    let message = &messages[0];
    assert_eq!(mail_header(message, "To").unwrap(), "erin@example.com");
    assert!(
        mail_header(message, "From")
            .unwrap()
            .contains("no-reply@bank.example")
    );
    assert!(
        mail_header(message, "Subject")
            .unwrap()
            .contains("Demo Bank")
    );
    let code = code_in(&mail_body(message), 6);

    let completed = app.act_ok(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(finish(&app, &flow, completed).await["method"], "email");
}

async fn wrong_codes_fail_the_sign_in_after_the_limit(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.otp_max_attempts", 3)),
    )
    .await;
    let flow = sms_sign_in(&app, "frank", "+15555550199").await;
    let code = code_in(&nth_sms(&sink, 1).await["Body"], 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for remaining in [2, 1] {
        let response = app
            .act_raw(&flow, "checkOtp", Some(json!({ "otp": wrong })))
            .await;
        assert_eq!(response.status(), 400);
        let raw: Value = response.json().await.unwrap();
        assert!(
            raw.get("status").is_none(),
            "the widget reads `status` as a state"
        );
        let error: assent_proto::authn::ErrorBody = serde_json::from_value(raw).unwrap();
        assert_eq!(error.code, ErrorCode::ValidationError);
        let detail = &error.details[0];
        assert_eq!(detail.code, DetailCode::InvalidOtp);
        assert_eq!(detail.target.as_deref(), Some("otp"));
        assert_eq!(detail.attempts_remaining, Some(remaining));
        assert_eq!(
            app.state(&flow).await.status.name(),
            StatusName::OtpRequired
        );
    }
    // The last wrong try fails the authentication; the right code no longer helps.
    let failed = app.act_ok(&flow, ActionRequest::check_otp(wrong)).await;
    assert_eq!(failed.status.name(), StatusName::MfaFailed);
    let late = app.act_err(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(late.status, 400);
    let result: Value = app.result(&flow).await.json().await.unwrap();
    assert_eq!(result["status"], "FAILED");
    assert!(
        result["reason"]
            .as_str()
            .unwrap()
            .contains("wrong passcodes")
    );
}

async fn resends_are_limited_and_replace_the_code(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.otp_max_sends", 3)),
    )
    .await;
    let flow = app
        .start_flow(&profile_request("gina", "+15555550166"))
        .await;
    let state = app.state(&flow).await;
    let sms = device_of_type(&state, DeviceType::Sms).clone();
    select(&app, &flow, &sms).await;
    let first = code_in(&nth_sms(&sink, 1).await["Body"], 6);

    // `resend`, and the widget's own way: picking the same device again.
    assert_eq!(
        app.act_ok(&flow, ActionRequest::Resend).await.status.name(),
        StatusName::OtpRequired
    );
    let second = code_in(&nth_sms(&sink, 2).await["Body"], 6);
    assert_eq!(
        select(&app, &flow, &sms).await.status.name(),
        StatusName::OtpRequired
    );
    let third = code_in(&nth_sms(&sink, 3).await["Body"], 6);

    let refused = app.act_err(&flow, ActionRequest::Resend).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.body.code, ErrorCode::RequestFailed);
    assert_eq!(refused.detail().code, DetailCode::TooManyRequests);
    assert_eq!(sink.requests().len(), 3, "nothing more was sent");

    // Only the last code works.
    for old in [&first, &second] {
        if old != &third {
            let response = app.act_err(&flow, ActionRequest::check_otp(old)).await;
            assert_eq!(response.status, 400);
        }
    }
    let completed = app.act_ok(&flow, ActionRequest::check_otp(third)).await;
    assert_eq!(completed.status.name(), StatusName::MfaCompleted);

    // The interval between sends is enforced too.
    let (app, _sink, _smtp) = spawn(
        Backend::Memory,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.otp_resend_interval_secs", 60)),
    )
    .await;
    let flow = sms_sign_in(&app, "gina", "+15555550166").await;
    let early = app.act_err(&flow, ActionRequest::Resend).await;
    assert_eq!(early.status, 429);
    assert!(early.body.message.contains("wait"), "{early:?}");
}

/// A pairing method as `DEVICE_PAIRING_METHOD_REQUIRED` lists a passcode method.
fn pairing(device_type: PairingType) -> PairingMethod {
    PairingMethod {
        device_type,
        application_name: None,
    }
}

/// `selectDevicePairingMethod` as the widget posts it (`deviceType` as its tiles name it).
async fn pick_method(app: &TestApp, flow: &str, device_type: &str) -> AuthnState {
    app.act_ok(flow, ActionRequest::select_pairing_method(device_type))
        .await
}

/// The seed of an `otpauth://` URI.
fn secret_of(key_uri: &str) -> String {
    key_uri
        .split(['?', '&'])
        .find_map(|part| part.strip_prefix("secret="))
        .unwrap()
        .to_owned()
}

fn totp_now(secret: &str) -> String {
    assent_core::otp::totp_now(secret, SystemClock.now_secs()).unwrap()
}

async fn mandatory_sms_and_totp_are_set_up_after_the_push(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge((
                "mfa.mandatory_authentication_methods",
                json!(["SMS", "TOTP"]),
            ))
            // The person picks among the devices set up (the next sign-in reads the list).
            .merge(("mfa.device_selection", "prompt")),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    // The person proves themselves with the device they have first...
    assert_eq!(phone.answer_pending(true).await, "MFA_SETUP_REQUIRED");
    let setup = app.state(&flow).await;
    assert_eq!(setup.status.name(), StatusName::MfaSetupRequired);
    assert_eq!(links(&setup), ["cancelAuthentication", "setupMfa"]);
    let result = app.result(&flow).await;
    assert_eq!(
        result.status(),
        409,
        "not done until the methods are set up"
    );

    // ... then sets up each missing method.
    let methods = app.act_ok(&flow, ActionRequest::SetupMfa).await;
    assert_eq!(
        methods.status.name(),
        StatusName::DevicePairingMethodRequired
    );
    assert_eq!(
        expect_status!(methods, DevicePairingMethodRequired).device_pairing_methods,
        [pairing(PairingType::Sms), pairing(PairingType::Totp)]
    );
    let target = pick_method(&app, &flow, "SMS").await;
    assert_eq!(target.status.name(), StatusName::SmsPairingTargetRequired);
    // The widget sends the country code and the number together.
    let activation = app
        .act_ok(&flow, ActionRequest::submit_sms_target("+1 555 555 0123"))
        .await;
    assert_eq!(activation.status.name(), StatusName::SmsActivationRequired);
    assert_eq!(
        expect_status!(activation, SmsActivationRequired)
            .phone
            .as_deref(),
        Some("+1555***0123")
    );
    assert!(links(&activation).contains(&"resendOtp".to_owned()));
    let message = nth_sms(&sink, 1).await;
    assert_eq!(message["To"], "+15555550123");
    // The widget's "Resend" on this page: a new code to the same number replaces the first.
    let resent = app.act_ok(&flow, ActionRequest::ResendOtp).await;
    assert_eq!(resent.status.name(), StatusName::SmsActivationRequired);
    let message = nth_sms(&sink, 2).await;
    assert_eq!(message["To"], "+15555550123");
    let code = code_in(&message["Body"], 6);
    let next = app
        .act_ok(&flow, ActionRequest::activate_sms_device(code))
        .await;
    assert_eq!(next.status.name(), StatusName::DevicePairingMethodRequired);
    assert_eq!(
        expect_status!(next, DevicePairingMethodRequired).device_pairing_methods,
        [pairing(PairingType::Totp)]
    );

    let totp = pick_method(&app, &flow, "TOTP").await;
    assert_eq!(totp.status.name(), StatusName::TotpActivationRequired);
    let activation = expect_status!(totp, TotpActivationRequired);
    let key_uri = activation.key_uri.as_str();
    assert!(
        key_uri.starts_with("otpauth://totp/Demo%20Bank:alice?"),
        "{key_uri}"
    );
    assert!(
        activation
            .qr_code
            .as_ref()
            .unwrap()
            .png
            .starts_with("data:image/png;base64,")
    );
    let secret = secret_of(key_uri);
    assert_eq!(activation.pairing_key, secret);
    let completed = app
        .act_ok(
            &flow,
            ActionRequest::activate_totp_device(totp_now(&secret)),
        )
        .await;
    let result = finish(&app, &flow, completed).await;
    assert_eq!(result["method"], "push", "the second factor was the push");

    // Next time the user has all three, and nothing more to set up. A TOTP code works
    // once: the same code again, in another sign-in, is refused.
    let flow = app.start_flow(&oob_request("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::DeviceSelectionRequired);
    let kinds: Vec<DeviceType> = state
        .status
        .devices()
        .iter()
        .map(|device| device.device_type)
        .collect();
    assert_eq!(
        kinds,
        [DeviceType::Android, DeviceType::Sms, DeviceType::Totp]
    );
    let waiting = select(&app, &flow, device_of_type(&state, DeviceType::Totp)).await;
    assert_eq!(waiting.status.name(), StatusName::OtpRequired);
    assert_eq!(
        links(&waiting),
        ["cancelAuthentication", "checkOtp", "selectDevice"],
        "nothing to resend for an authenticator app"
    );
    // The code of the next time step (within the accepted drift): newer than the step the
    // activation spent, so it is accepted once...
    let next_step = SystemClock.now_secs() + 30;
    let code = assent_core::otp::totp_now(&secret, next_step).unwrap();
    let accepted = app.act_ok(&flow, ActionRequest::check_otp(&code)).await;
    assert_eq!(
        accepted.status.name(),
        StatusName::MfaCompleted,
        "{accepted:?}"
    );
    // ...and never again, not even in another sign-in.
    let replay_flow = app.start_flow(&oob_request("alice")).await;
    let state = app.state(&replay_flow).await;
    select(&app, &replay_flow, device_of_type(&state, DeviceType::Totp)).await;
    let replay = app
        .act_err(&replay_flow, ActionRequest::check_otp(code))
        .await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.detail().code, DetailCode::InvalidOtp);
    assert!(replay.body.message.contains("already used"), "{replay:?}");
}

async fn mandatory_voice_and_email_are_set_up_before_anything_else(backend: Backend<'_>) {
    let (app, sink, smtp) = spawn(
        backend,
        Figment::new()
            .merge((
                "mfa.mandatory_authentication_methods",
                json!(["VOICE", "EMAIL"]),
            ))
            // The person picks among the devices set up (the next sign-in reads the list).
            .merge(("mfa.device_selection", "prompt")),
    )
    .await;
    // No device at all: setting up comes first.
    let flow = app.start_flow(&oob_request("hank")).await;
    let setup = app.state(&flow).await;
    assert_eq!(setup.status.name(), StatusName::MfaSetupRequired);
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let voice = pick_method(&app, &flow, "Voice").await;
    assert_eq!(voice.status.name(), StatusName::VoicePairingTargetRequired);
    let activation = app
        .act_ok(&flow, ActionRequest::submit_voice_target("+15555550144"))
        .await;
    assert_eq!(
        activation.status.name(),
        StatusName::VoiceActivationRequired
    );
    let twiml = sink.wait_for(1).await[0].form()["Twiml"].clone();
    let spoken = twiml
        .split("code is ")
        .nth(1)
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let code: String = spoken.chars().filter(char::is_ascii_digit).collect();
    let next = app
        .act_ok(&flow, ActionRequest::activate_voice_device(code))
        .await;
    assert_eq!(next.status.name(), StatusName::DevicePairingMethodRequired);

    pick_method(&app, &flow, "Email").await;
    let activation = app
        .act_ok(
            &flow,
            ActionRequest::submit_email_target("hank@work.example"),
        )
        .await;
    assert_eq!(
        activation.status.name(),
        StatusName::EmailActivationRequired
    );
    assert_eq!(
        expect_status!(activation, EmailActivationRequired)
            .email
            .as_deref(),
        Some("h***@work.example")
    );
    let mail = &smtp.wait_for_messages(1, Duration::from_secs(10)).await[0];
    assert_eq!(mail_header(mail, "To").unwrap(), "hank@work.example");
    let code = code_in(&mail_body(mail), 6);
    let completed = app
        .act_ok(&flow, ActionRequest::activate_email_device(code))
        .await;
    let result = finish(&app, &flow, completed).await;
    // Setting methods up proves no second factor: the federation server is told so.
    assert_eq!(result["method"], "enrolment");
    assert_eq!(result["amr"], json!([]));

    // Both are now the user's devices; the operator sees them (masked) and may remove one.
    let flow = app.start_flow(&oob_request("hank")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::DeviceSelectionRequired);
    assert_eq!(state.status.devices().len(), 2);
    let listed: UserDevices = app
        .admin_get("/admin/v1/users/hank/devices")
        .await
        .json()
        .await
        .unwrap();
    let passcode = &listed.passcode_devices;
    assert_eq!(passcode.len(), 2);
    assert_eq!(passcode[0].method, Method::Voice);
    assert_eq!(passcode[0].target.as_deref(), Some("+1555***0144"));
    assert_eq!(passcode[1].target.as_deref(), Some("h***@work.example"));
    let removed = app
        .http
        .delete(app.url(&format!("/admin/v1/users/hank/devices/{}", passcode[0].id)))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let listed: UserDevices = app
        .admin_get("/admin/v1/users/hank/devices")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.passcode_devices.len(), 1);
}

async fn bad_enrolment_input_is_refused_and_changes_nothing(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new().merge(("mfa.mandatory_authentication_methods", json!(["SMS"]))),
    )
    .await;
    let flow = app.start_flow(&oob_request("ivan")).await;
    app.state(&flow).await;
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    // A method not asked for, and one that does not exist.
    for device_type in ["TOTP", "CARRIER_PIGEON"] {
        let response = app
            .act_err(&flow, ActionRequest::select_pairing_method(device_type))
            .await;
        assert_eq!(response.status, 400, "{device_type}");
    }
    pick_method(&app, &flow, "SMS").await;
    for phone in ["5555550101", "+1555-CALL-NOW", "+1234567890123456789", ""] {
        let response = app
            .act_err(&flow, ActionRequest::submit_sms_target(phone))
            .await;
        assert_eq!(response.status, 400, "{phone:?}");
        assert_eq!(response.body.code, ErrorCode::ValidationError);
    }
    // No body at all: the phone number is missing.
    let response = app.act_raw(&flow, "submitSmsTarget", None).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::SmsPairingTargetRequired,
        "the flow did not move"
    );
    assert!(sink.requests().is_empty(), "nothing was sent");
    // A non-numeric or absurd code is a wrong code, not a crash.
    app.act_ok(&flow, ActionRequest::submit_sms_target("+15555550111"))
        .await;
    for otp in ["abcdef", "1234567890123", " "] {
        let response = app
            .act_err(&flow, ActionRequest::activate_sms_device(otp))
            .await;
        assert_eq!(response.status, 400, "{otp:?}");
    }
    let cancelled = app.act_ok(&flow, ActionRequest::CancelDevicePairing).await;
    assert_eq!(cancelled.status.name(), StatusName::Canceled);
}

async fn a_passcode_primary_verifies_a_new_device(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(backend, Figment::new()).await;
    let user = assent_core::user::UserId::parse("alice").unwrap();
    // alice's only device is her phone number (set up in an earlier sign-in).
    assent_core::otp_device::add(
        app.adapter.store(),
        &user,
        assent_core::otp_device::OtpDevice {
            id: assent_core::ids::DeviceId::generate(),
            method: assent_core::policy::Method::Sms,
            address: Some("+15555550101".to_owned()),
            totp_secret: None,
            yubikey: None,
            oath: None,
            webauthn: None,
            paired_at: 0,
        },
    )
    .await
    .unwrap();
    let mut request = oob_request("alice");
    request["kind"] = json!("new_device");
    let flow = app.start_flow(&request).await;
    let waiting = app.state(&flow).await;
    assert_eq!(waiting.status.name(), StatusName::OtpRequired);
    let message = nth_sms(&sink, 1).await;
    assert_eq!(message["To"], "+15555550101");
    let wrong = app
        .act_err(&flow, ActionRequest::check_otp("12345678"))
        .await;
    assert_eq!(wrong.status, 400);
    let admitted = app
        .act_ok(
            &flow,
            ActionRequest::check_otp(code_in(&message["Body"], 6)),
        )
        .await;
    assert_eq!(admitted.status.name(), StatusName::MobileActivationRequired);
    let key = &expect_status!(admitted, MobileActivationRequired).pairing_key;
    crate::support::pair_phone(&app.address, key, "new phone")
        .await
        .expect("the new device pairs with the key the primary's code unlocked");
    assert_eq!(app.state(&flow).await.status.name(), StatusName::Completed);
}

async fn codes_sent_to_a_user_are_limited_across_sign_ins(backend: Backend<'_>) {
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.otp_send_limit", 2)),
    )
    .await;
    for _ in 0..2 {
        sms_sign_in(&app, "jill", "+15555550155").await;
    }
    // A third sign-in, even a fresh one, may not send another code to jill for now.
    let flow = app
        .start_flow(&profile_request("jill", "+15555550155"))
        .await;
    let state = app.state(&flow).await;
    let sms = device_of_type(&state, DeviceType::Sms);
    let refused = app
        .act_err(&flow, ActionRequest::select_device(&sms.id))
        .await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.message.contains("too many passcodes"),
        "{refused:?}"
    );
    assert_eq!(
        app.state(&flow).await.status.name(),
        StatusName::DeviceSelectionRequired
    );
    assert_eq!(sink.requests().len(), 2);
    // Another user is not affected.
    sms_sign_in(&app, "kate", "+15555550156").await;
}

async fn a_transaction_is_approved_only_by_the_devices_signature(backend: Backend<'_>) {
    let (app, _sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.use_code", true))
            .merge(("mfa.mandatory_authentication_methods", json!(["SMS"]))),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let mut request = transfer_request("alice", "€900", "Mallory");
    request["user"]["phone"] = json!("+15555550101");
    let flow = app.start_flow(&request).await;
    let waiting = app.state(&flow).await;
    // No passcode signs what is approved: no backup offered, no code instead of the push,
    // and nothing to set up first.
    assert_eq!(waiting.status.name(), StatusName::PushConfirmationWaiting);
    assert_eq!(waiting.status.devices().len(), 1);
    assert!(!links(&waiting).contains(&"checkOtp".to_owned()));
    let code = phone.current_otp();
    let refused = app.act_err(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(phone.answer_pending(true).await, "MFA_COMPLETED");
}

async fn a_user_with_devices_cannot_set_up_a_method_instead_of_using_them(backend: Backend<'_>) {
    // alice's only phone is too old for policy, and SMS is mandatory: setting SMS up now
    // would let a password alone enrol an attacker's phone.
    let (app, _sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.mandatory_authentication_methods", json!(["SMS"])))
            .merge(("mfa.min_os_version", json!({ "android": "99" }))),
    )
    .await;
    app.pair_device("alice").await;
    let flow = app.start_flow(&oob_request("alice")).await;
    let state = app.state(&flow).await;
    assert_eq!(state.status.name(), StatusName::MfaFailed, "{state:?}");
    assert!(expect_status!(state, MfaFailed).reason.contains("99"));
    let setup = app.act_err(&flow, ActionRequest::SetupMfa).await;
    assert_eq!(setup.status, 400);
}

async fn passcodes_tried_are_limited_across_sign_ins(backend: Backend<'_>) {
    let (app, _sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("mfa.use_code", true))
            .merge(("mfa.otp_attempt_limit", 2)),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let code = phone.current_otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // Each sign-in allows three wrong codes; the user allows two tries in all.
    for _ in 0..2 {
        let flow = app.start_flow(&oob_request("alice")).await;
        app.state(&flow).await;
        let response = app.act_err(&flow, ActionRequest::check_otp(wrong)).await;
        assert_eq!(response.status, 400);
    }
    let flow = app.start_flow(&oob_request("alice")).await;
    app.state(&flow).await;
    let response = app.act_err(&flow, ActionRequest::check_otp(code)).await;
    assert_eq!(
        response.status, 429,
        "even the right code waits out the window"
    );
    assert!(response.body.message.contains("too many passcodes tried"));
}

async fn an_older_app_passcode_is_refused_once_a_newer_one_was_used(backend: Backend<'_>) {
    let (app, _sink, _smtp) = spawn(backend, Figment::new().merge(("mfa.use_code", true))).await;
    let phone = app.pair_device("alice").await;
    let seed = simulator_state(&phone)["totpSeed"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = SystemClock.now_secs();
    let current = assent_core::otp::totp_now(&seed, now).unwrap();
    let previous = assent_core::otp::totp_now(&seed, now - 30).unwrap();
    let flow = app.start_flow(&oob_request("alice")).await;
    app.state(&flow).await;
    let used = app.act_ok(&flow, ActionRequest::check_otp(current)).await;
    assert_eq!(used.status.name(), StatusName::MfaCompleted);
    // The previous step's code is still within the clock drift, but older than one used.
    let flow = app.start_flow(&oob_request("alice")).await;
    app.state(&flow).await;
    let response = app.act_err(&flow, ActionRequest::check_otp(previous)).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.detail().code, DetailCode::InvalidOtp);
}

const DATA_KEY_ENV: &str = "ASSENT_SECRET_TEST_DATA_KEY";

/// The device simulator's state file, as JSON (it holds the seed the pairing gave).
fn simulator_state(phone: &crate::support::TestDevice) -> Value {
    let path = std::env::temp_dir().join(unique("phone-state"));
    phone.device.save(&path).unwrap();
    let state = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    state
}

async fn seeds_are_sealed_at_rest_with_the_data_key(backend: Backend<'_>) {
    static KEY: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, before any server of this process reads it, to the same value.
    KEY.call_once(|| unsafe {
        std::env::set_var(DATA_KEY_ENV, "q1Jt5OqXzN0yH7vQm8uW2eR4tY6iO0pA3sD5fG7hJ9k=")
    });
    let (app, sink, _smtp) = spawn(
        backend,
        Figment::new()
            .merge(("secrets.data_key_env", DATA_KEY_ENV))
            .merge(("mfa.sms_backup", true))
            .merge(("mfa.use_code", true))
            .merge(("mfa.mandatory_authentication_methods", json!(["TOTP"]))),
    )
    .await;
    let phone = app.pair_device("alice").await;
    let seed = simulator_state(&phone)["totpSeed"]
        .as_str()
        .unwrap()
        .to_owned();
    let device_id = assent_core::ids::DeviceId::parse(phone.id()).unwrap();
    let stored = app
        .adapter
        .store()
        .get(&assent_core::keys::device(&device_id))
        .await
        .unwrap()
        .unwrap();
    let stored = String::from_utf8(stored.value).unwrap();
    assert!(
        !stored.contains(&seed),
        "the app's seed is not in the store: {stored}"
    );
    assert!(stored.contains("sealed:"));

    // The sealed seed still checks the app's codes; then the authenticator app is set up.
    let flow = app.start_flow(&oob_request("alice")).await;
    app.state(&flow).await;
    let setup = app
        .act_ok(&flow, ActionRequest::check_otp(phone.current_otp()))
        .await;
    assert_eq!(setup.status.name(), StatusName::MfaSetupRequired);
    app.act_ok(&flow, ActionRequest::SetupMfa).await;
    let totp = pick_method(&app, &flow, "TOTP").await;
    let secret = secret_of(&expect_status!(totp, TotpActivationRequired).key_uri);
    let completed = app
        .act_ok(
            &flow,
            ActionRequest::activate_totp_device(totp_now(&secret)),
        )
        .await;
    assert_eq!(completed.status.name(), StatusName::MfaCompleted);
    let user = assent_core::user::UserId::parse("alice").unwrap();
    let stored = app
        .adapter
        .store()
        .get(&assent_core::keys::otp_devices(&user))
        .await
        .unwrap()
        .unwrap();
    let stored = String::from_utf8(stored.value).unwrap();
    assert!(
        !stored.contains(&secret),
        "the authenticator's secret is sealed: {stored}"
    );

    // A code sent by SMS is kept as an HMAC under the data key: the stored salt and digest
    // alone do not let anyone search the six-digit space.
    let flow = sms_sign_in(&app, "zoe", "+15555550177").await;
    let code = code_in(&nth_sms(&sink, 1).await["Body"], 6);
    let flow_id = assent_core::ids::FlowId::parse(&flow).unwrap();
    let record = app
        .adapter
        .store()
        .get(&assent_core::keys::flow(&flow_id))
        .await
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_slice(&record.value).unwrap();
    // A flow is stored as `{"head", "state": {"<kind>": {...}}}`.
    let (_kind, state) = stored["state"].as_object().unwrap().iter().next().unwrap();
    let sent = &state["sent"];
    let unkeyed = {
        use sha2::Digest;
        let input = format!("{}\u{0}{code}", sent["salt"].as_str().unwrap());
        sha2::Sha256::digest(input.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    assert_ne!(sent["code_sha256"].as_str().unwrap(), unkeyed);
    let completed = app.act_ok(&flow, ActionRequest::check_otp(&code)).await;
    // Accepted (this application then wants its mandatory authenticator app set up).
    assert_eq!(completed.status.name(), StatusName::MfaSetupRequired);

    // Without its key the service does not start, and says which variable is missing.
    let config = crate::support::test_config(
        Backend::Memory,
        &unique("t"),
        figment::Figment::new().merge(("secrets.data_key_env", "ASSENT_SECRET_TEST_NO_SUCH_KEY")),
    );
    let error = assent::Application::build(config).await.err().unwrap();
    assert!(
        error.to_string().contains("ASSENT_SECRET_TEST_NO_SUCH_KEY"),
        "{error}"
    );
}
