//! The real senders behind `Delivery`: email through a real SMTP server (aiosmtpd, plain,
//! STARTTLS and SMTPS), SMS, voice and push through a local HTTP server standing in for
//! the provider, and the development outbox file.

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use assent_core::notify::{Channel, Delivery, DeliveryConfig, DeliveryError, Message};
use figment::providers::{Format, Toml};
use hmac::{Hmac, Mac};
use prometheus::{IntCounterVec, Opts};
use sha2::Sha256;

use crate::support::{HttpSink, SmtpServer, TestCert, free_port, mail_body, mail_header, unique};

const SMS_TOKEN_ENV: &str = "ASSENT_SECRET_TEST_DELIVERY_SMS_TOKEN";
const SMS_TOKEN: &str = "sms-auth-token-for-the-tests";
const WEBHOOK_SECRET_ENV: &str = "ASSENT_SECRET_TEST_DELIVERY_WEBHOOK_SECRET";
const WEBHOOK_SECRET: &str = "a-webhook-secret-of-more-than-32-bytes";
const SHORT_SECRET_ENV: &str = "ASSENT_SECRET_TEST_DELIVERY_SHORT_SECRET";

/// Sets the secrets the senders read from the environment, once for the whole binary.
fn secrets() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: these variables are set once, and nothing reads them but the senders
        // built after this call.
        unsafe {
            std::env::set_var(SMS_TOKEN_ENV, SMS_TOKEN);
            std::env::set_var(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET);
            std::env::set_var(SHORT_SECRET_ENV, "short");
        }
    });
}

/// A `[delivery]` table from TOML.
fn config(toml: &str) -> DeliveryConfig {
    figment::Figment::from(Toml::string(toml))
        .extract()
        .unwrap_or_else(|error| panic!("invalid test configuration: {error}\n{toml}"))
}

fn system_clock() -> std::sync::Arc<dyn assent_core::clock::Clock> {
    std::sync::Arc::new(assent_core::clock::SystemClock)
}

/// The senders of `toml`, and the failure counter they count into.
fn delivery(toml: &str) -> (Delivery, IntCounterVec) {
    secrets();
    let failures = IntCounterVec::new(Opts::new("failures", "test"), &["channel"]).unwrap();
    let delivery = assent_senders::delivery(&config(toml), failures.clone(), system_clock())
        .unwrap_or_else(|error| panic!("the senders start: {error}"));
    (delivery, failures)
}

fn message(channel: Channel, to: &str, text: &str) -> Message {
    Message {
        channel,
        to: to.to_owned(),
        subject: "Your sign-in code".to_owned(),
        text: text.to_owned(),
        data: serde_json::json!({ "flowId": "f-1", "user": "alice" }),
    }
}

fn smtp_toml(host: &str, port: u16, tls: &str, extra: &str) -> String {
    format!(
        "email = \"smtp\"\ntimeout_ms = 5000\n[smtp]\nhost = \"{host}\"\nport = {port}\n\
         tls = \"{tls}\"\nfrom = \"Assent <no-reply@assent.test>\"\ntimeout_secs = 3\n{extra}"
    )
}

/// Checks that `raw` is the email of [`message`] to alice.
fn assert_is_code_email(raw: &str, text: &str) {
    assert_eq!(mail_header(raw, "To").as_deref(), Some("alice@example.com"));
    assert_eq!(
        mail_header(raw, "From").as_deref(),
        Some("Assent <no-reply@assent.test>")
    );
    assert_eq!(
        mail_header(raw, "Subject").as_deref(),
        Some("Your sign-in code")
    );
    assert_eq!(mail_body(raw).trim_end(), text);
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_server() {
    let server = SmtpServer::start();
    let (delivery, failures) = delivery(&smtp_toml("127.0.0.1", server.port(), "none", ""));
    assert!(delivery.has(Channel::Email));
    let text = "Your code is 402913. It expires in 5 minutes.";
    delivery
        .deliver(&message(Channel::Email, "alice@example.com", text))
        .await
        .unwrap();
    let messages = server.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_is_code_email(&messages[0], text);
    // The pooled connection is reused for the next one.
    delivery
        .deliver(&message(Channel::Email, "alice@example.com", text))
        .await
        .unwrap();
    server.wait_for_messages(2, Duration::from_secs(10)).await;
    assert_eq!(failures.with_label_values(&["email"]).get(), 0);
}

#[tokio::test]
async fn email_over_starttls_trusts_the_configured_ca() {
    let cert = TestCert::localhost();
    let server = SmtpServer::start_tls(&cert.cert, &cert.key);
    let ca = format!("ca_file = \"{}\"", cert.cert.display());
    let (delivery, _) = delivery(&smtp_toml("localhost", server.port(), "starttls", &ca));
    let text = "Your code is 771204.";
    delivery
        .deliver(&message(Channel::Email, "alice@example.com", text))
        .await
        .unwrap();
    let messages = server.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_is_code_email(&messages[0], text);
}

#[tokio::test]
async fn email_over_implicit_tls_trusts_the_configured_ca() {
    let cert = TestCert::localhost();
    let server = SmtpServer::start_smtps(&cert.cert, &cert.key);
    let ca = format!("ca_file = \"{}\"", cert.cert.display());
    let (delivery, _) = delivery(&smtp_toml("localhost", server.port(), "tls", &ca));
    let text = "Your code is 118345.";
    delivery
        .deliver(&message(Channel::Email, "alice@example.com", text))
        .await
        .unwrap();
    let messages = server.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_is_code_email(&messages[0], text);
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let cert = TestCert::localhost();
    let server = SmtpServer::start_tls(&cert.cert, &cert.key);
    let (delivery, failures) = delivery(&smtp_toml("localhost", server.port(), "starttls", ""));
    let result = delivery
        .deliver(&message(Channel::Email, "alice@example.com", "Code 1"))
        .await;
    assert!(
        matches!(result, Err(DeliveryError::Failed(_))),
        "{result:?}"
    );
    assert_eq!(failures.with_label_values(&["email"]).get(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_required_not_opportunistic() {
    // A server that offers no STARTTLS (or an attacker who strips it) gets nothing.
    let server = SmtpServer::start();
    let (delivery, _) = delivery(&smtp_toml("127.0.0.1", server.port(), "starttls", ""));
    let result = delivery
        .deliver(&message(Channel::Email, "alice@example.com", "Code 2"))
        .await;
    assert!(
        matches!(result, Err(DeliveryError::Failed(_))),
        "{result:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_fails_within_the_timeout() {
    let closed = free_port();
    let (delivery, failures) = delivery(&smtp_toml("127.0.0.1", closed, "none", ""));
    let started = Instant::now();
    let result = delivery
        .deliver(&message(Channel::Email, "alice@example.com", "Code 3"))
        .await;
    assert!(
        matches!(result, Err(DeliveryError::Failed(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(failures.with_label_values(&["email"]).get(), 1);

    // A server that accepts the connection but never speaks: the delivery timeout ends it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let toml =
        smtp_toml("127.0.0.1", port, "none", "").replace("timeout_ms = 5000", "timeout_ms = 300");
    let (delivery, failures) = self::delivery(&toml);
    let started = Instant::now();
    let result = delivery
        .deliver(&message(Channel::Email, "alice@example.com", "Code 4"))
        .await;
    assert!(
        matches!(result, Err(DeliveryError::TimedOut("email"))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(failures.with_label_values(&["email"]).get(), 1);
}

fn sms_toml(base_url: &str) -> String {
    format!(
        "sms = \"http\"\nvoice = \"http\"\n[sms_http]\nbase_url = \"{base_url}\"\n\
         account_sid = \"AC0123456789abcdef\"\nauth_token_env = \"{SMS_TOKEN_ENV}\"\n\
         from = \"+15550000001\"\nvoice_from = \"+15550000002\"\n"
    )
}

#[tokio::test]
async fn sms_and_voice_go_to_the_provider() {
    let sink = HttpSink::answering(201, serde_json::json!({ "sid": "SM1" })).await;
    let (delivery, failures) = delivery(&sms_toml(&sink.url()));
    delivery
        .deliver(&message(
            Channel::Sms,
            "+15555550101",
            "Your code is 402913",
        ))
        .await
        .unwrap();
    delivery
        .deliver(&message(
            Channel::Voice,
            "+15555550101",
            "Your code is 4 0 2 9 1 3 <again> & \"bye\"",
        ))
        .await
        .unwrap();
    let requests = sink.wait_for(2).await;
    let (sms, call) = (&requests[0], &requests[1]);
    let account = "/2010-04-01/Accounts/AC0123456789abcdef";

    assert_eq!(sms.method, "POST");
    assert_eq!(sms.path, format!("{account}/Messages.json"));
    assert_eq!(
        sms.basic_auth(),
        Some(("AC0123456789abcdef".to_owned(), SMS_TOKEN.to_owned()))
    );
    assert_eq!(
        sms.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = sms.form();
    assert_eq!(form["To"], "+15555550101");
    assert_eq!(form["From"], "+15550000001");
    assert_eq!(form["Body"], "Your code is 402913");
    assert_eq!(form.len(), 3);

    assert_eq!(call.path, format!("{account}/Calls.json"));
    assert_eq!(call.basic_auth(), sms.basic_auth());
    let form = call.form();
    assert_eq!(form["To"], "+15555550101");
    assert_eq!(form["From"], "+15550000002");
    assert_eq!(
        form["Twiml"],
        "<Response><Say>Your code is 4 0 2 9 1 3 &lt;again&gt; &amp; &quot;bye&quot;</Say></Response>"
    );
    assert_eq!(failures.with_label_values(&["sms"]).get(), 0);
}

#[tokio::test]
async fn a_provider_error_is_a_counted_failure_without_the_providers_text() {
    let sink = HttpSink::answering(
        500,
        serde_json::json!({ "code": 20500, "message": "Internal error for +15555550101" }),
    )
    .await;
    let (delivery, failures) = delivery(&sms_toml(&sink.url()));
    let result = delivery
        .deliver(&message(
            Channel::Sms,
            "+15555550101",
            "Your code is 402913",
        ))
        .await;
    let Err(DeliveryError::Failed(reason)) = result else {
        panic!("a 500 is a failure: {result:?}");
    };
    assert!(
        reason.contains("500") && reason.contains("20500"),
        "{reason}"
    );
    assert!(!reason.contains("+1555"), "{reason}");
    assert_eq!(failures.with_label_values(&["sms"]).get(), 1);

    sink.respond_with(401, serde_json::json!({}));
    assert!(
        delivery
            .deliver(&message(Channel::Voice, "+15555550101", "402913"))
            .await
            .is_err()
    );
    assert_eq!(failures.with_label_values(&["voice"]).get(), 1);
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn push_goes_to_the_signed_webhook() {
    let sink = HttpSink::start().await;
    let toml = format!(
        "push = \"webhook\"\n[webhook]\nurl = \"{}/push\"\nsecret_env = \"{WEBHOOK_SECRET_ENV}\"",
        sink.url()
    );
    let (delivery, failures) = delivery(&toml);
    let push = Message {
        channel: Channel::Push,
        to: "device-7f3a".to_owned(),
        subject: "Sign in to Demo Bank?".to_owned(),
        text: "Approve the sign-in from Paris".to_owned(),
        data: serde_json::json!({ "authId": "a-1", "application": "bank" }),
    };
    delivery.deliver(&push).await.unwrap();
    let request = &sink.wait_for(1).await[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/push");
    assert_eq!(request.header("content-type"), Some("application/json"));

    let body = request.json();
    let timestamp = body["timestamp"].as_u64().expect("a numeric timestamp");
    assert_eq!(
        body,
        serde_json::json!({
            "channel": "push",
            "to": "device-7f3a",
            "title": "Sign in to Demo Bank?",
            "body": "Approve the sign-in from Paris",
            "data": { "authId": "a-1", "application": "bank" },
            "timestamp": timestamp,
        })
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(timestamp) < 60);

    // Verify as a receiver would: HMAC-SHA256 over "<t>.<raw body>".
    let header = request.header("x-assent-signature").expect("a signature");
    let (t, v1) = header.split_once(',').expect("t=...,v1=...");
    let t = t.strip_prefix("t=").expect("t=");
    let v1 = v1.strip_prefix("v1=").expect("v1=");
    assert_eq!(t, timestamp.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    mac.verify_slice(&hex_decode(v1))
        .expect("the signature verifies");
    assert_eq!(failures.with_label_values(&["push"]).get(), 0);

    sink.respond_with(503, serde_json::json!({}));
    assert!(delivery.deliver(&push).await.is_err());
    assert_eq!(failures.with_label_values(&["push"]).get(), 1);
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn start_up_errors_name_the_key_and_the_variable() {
    secrets();
    let start = |toml: &str| {
        let failures = IntCounterVec::new(Opts::new("f", "t"), &["channel"]).unwrap();
        match assent_senders::delivery(&config(toml), failures, system_clock()) {
            Ok(_) => panic!("refused: {toml}"),
            Err(error) => error.to_string(),
        }
    };
    assert_eq!(
        start(&format!(
            "push = \"webhook\"\n[webhook]\nurl = \"https://push.example\"\n\
             secret_env = \"{SHORT_SECRET_ENV}\""
        )),
        format!(
            "delivery.webhook.secret_env: the secret in {SHORT_SECRET_ENV} is shorter than 32 bytes"
        )
    );
    assert_eq!(
        start(
            "sms = \"http\"\n[sms_http]\naccount_sid = \"AC1\"\nfrom = \"+15550100\"\n\
             auth_token_env = \"ASSENT_SECRET_TEST_DELIVERY_NOT_SET\""
        ),
        "delivery.sms_http.auth_token_env: the environment variable \
         ASSENT_SECRET_TEST_DELIVERY_NOT_SET is not set"
    );
    assert_eq!(
        start("email = \"smtp\""),
        "delivery.smtp: a [delivery.smtp] table is required when email = \"smtp\""
    );
    assert_eq!(
        start("[file]\npath = \"/nonexistent-assent-dir/outbox.jsonl\""),
        "delivery.file.path: the directory /nonexistent-assent-dir does not exist"
    );
}

/// Everything the code under test logs, as text.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_outbox_gets_one_json_line_per_message_and_the_logs_no_passcode() {
    let dir = std::env::temp_dir().join(unique("assent-outbox"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("outbox.jsonl");
    let toml = format!("push = \"file\"\n[file]\npath = \"{}\"", path.display());
    let (delivery, failures) = delivery(&toml);
    assert!(
        [Channel::Email, Channel::Sms, Channel::Voice, Channel::Push]
            .into_iter()
            .all(|channel| delivery.has(channel))
    );

    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    // Concurrent deliveries on all channels: the lines must not interleave.
    let messages: Vec<Message> = (0..40)
        .map(|i| {
            let (channel, to) = match i % 4 {
                0 => (Channel::Email, "alice@example.com"),
                1 => (Channel::Sms, "+15555550101"),
                2 => (Channel::Voice, "+15555550101"),
                _ => (Channel::Push, "device-0123456789"),
            };
            message(channel, to, &format!("Your code is {:06}", 900_000 + i))
        })
        .collect();
    let results =
        futures_util::future::join_all(messages.iter().map(|m| delivery.deliver(m))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(failures.with_label_values(&["email"]).get(), 0);

    let written = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 40);
    let first = lines
        .iter()
        .find(|line| line["text"] == "Your code is 900000")
        .expect("the first message");
    assert_eq!(first["channel"], "email");
    assert_eq!(first["to"], "alice@example.com");
    assert_eq!(first["subject"], "Your sign-in code");
    assert_eq!(first["data"]["flowId"], "f-1");
    assert!(first["at"].as_u64().is_some());
    let mut texts: Vec<&str> = lines
        .iter()
        .map(|line| line["text"].as_str().unwrap())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 40);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("a***@example.com"), "{logs}");
    assert!(logs.contains("+1555***0101"), "{logs}");
    assert!(!logs.contains("9000"), "no passcode in the logs: {logs}");
    assert!(!logs.contains("alice@example.com"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_channel_without_sender_is_a_counted_failure() {
    let (delivery, failures) = delivery("");
    assert!(!delivery.has(Channel::Push));
    let result = delivery
        .deliver(&message(Channel::Push, "device-1", "Approve?"))
        .await;
    assert!(
        matches!(result, Err(DeliveryError::NotConfigured("push"))),
        "{result:?}"
    );
    assert_eq!(failures.with_label_values(&["push"]).get(), 1);
}

#[test]
fn the_commented_examples_in_the_default_configuration_are_valid() {
    let conf =
        std::fs::read_to_string(crate::support::repo_root().join("conf/assent.toml")).unwrap();
    let start = conf.find("\n[delivery]\n").expect("a [delivery] section");
    let end = start + conf[start..].find("\n[[").unwrap_or(conf.len() - start);
    // Uncomment the example tables and keys, keep the comments about them.
    let uncommented: String = conf[start..end]
        .lines()
        .filter(|line| !line.starts_with("# #"))
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || is_key_line(rest) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let section: DeliveryConfig = figment::Figment::from(Toml::string(&uncommented))
        .focus("delivery")
        .extract()
        .unwrap_or_else(|error| panic!("{error}\n{uncommented}"));
    assert_eq!(assent_senders::validate(&section), Ok(()));
    assert!(section.smtp.is_some() && section.sms_http.is_some() && section.webhook.is_some());
    let real = DeliveryConfig {
        email: assent_core::notify::SenderKind::Smtp,
        sms: assent_core::notify::SenderKind::Http,
        voice: assent_core::notify::SenderKind::Http,
        push: assent_core::notify::SenderKind::Webhook,
        ..section
    };
    assert_eq!(assent_senders::validate(&real), Ok(()));
}

/// `key = value`, as opposed to prose.
fn is_key_line(line: &str) -> bool {
    line.split_once(" = ")
        .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}
