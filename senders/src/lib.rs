//! assent's senders: email over SMTP, SMS and voice calls through an HTTP provider, push
//! notifications through a signed webhook, and the development outbox file, each behind
//! core's [`Notifier`]; [`delivery`] builds a [`Delivery`] from `[delivery]`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

mod file;
mod sms_http;
mod smtp;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use assent_core::clock::Clock;
use assent_core::notify::config::{Invalid, check_env_name, invalid};
use assent_core::notify::{Delivery, DeliveryConfig, Notifier, SenderKind};
use secrecy::SecretString;

use self::file::FileSender;
use self::sms_http::SmsHttpSender;
use self::smtp::SmtpSender;
use self::webhook::WebhookSender;

/// Checks `[delivery]`: core's [`DeliveryConfig::validate`], then what only the senders
/// can check (that the SMTP `from` is a mailbox). The error names the key within
/// `delivery.` and what is expected.
pub fn validate(config: &DeliveryConfig) -> Result<(), Invalid> {
    config.validate()?;
    match &config.smtp {
        Some(smtp) if config.uses(SenderKind::Smtp) => {
            smtp::check_from(smtp).map_err(|(key, reason)| (format!("smtp.{key}"), reason))
        }
        _ => Ok(()),
    }
}

/// Builds the configured senders, reading the secrets that `*_env` keys name; failed
/// deliveries are counted in `failures`, by channel; messages are stamped by `clock`.
pub fn delivery(
    config: &DeliveryConfig,
    failures: prometheus::IntCounterVec,
    clock: Arc<dyn Clock>,
) -> Result<Delivery, String> {
    // Errors name the full key, e.g. `delivery.smtp.password_env: ...`.
    validate(config).map_err(report(""))?;
    let timeout = Duration::from_millis(config.timeout_ms);
    // One instance per sender, shared by the channels it serves: the file sender's
    // lock must cover every channel writing to the outbox.
    let file = match config.uses(SenderKind::File) {
        true => Some(shared(
            FileSender::new(&config.file, clock.clone()).map_err(report("file."))?,
        )),
        false => None,
    };
    let smtp = match &config.smtp {
        Some(smtp) if config.uses(SenderKind::Smtp) => {
            Some(shared(SmtpSender::new(smtp).map_err(report("smtp."))?))
        }
        _ => None,
    };
    let sms_http = match &config.sms_http {
        Some(sms_http) if config.uses(SenderKind::Http) => Some(shared(
            SmsHttpSender::new(sms_http, timeout).map_err(report("sms_http."))?,
        )),
        _ => None,
    };
    let webhook = match &config.webhook {
        Some(webhook) if config.uses(SenderKind::Webhook) => Some(shared(
            WebhookSender::new(webhook, timeout, clock.clone()).map_err(report("webhook."))?,
        )),
        _ => None,
    };
    let pick = |kind: SenderKind| match kind {
        SenderKind::File => file.clone(),
        SenderKind::Smtp => smtp.clone(),
        SenderKind::Http => sms_http.clone(),
        SenderKind::Webhook => webhook.clone(),
        SenderKind::None => None,
    };
    Ok(Delivery::new(
        pick(config.email),
        pick(config.sms),
        pick(config.voice),
        pick(config.push),
        timeout,
        failures,
    ))
}

/// `delivery.<table><key>: <reason>`, for start-up errors.
fn report(table: &'static str) -> impl Fn(Invalid) -> String {
    move |(key, reason)| format!("delivery.{table}{key}: {reason}")
}

fn shared(sender: impl Notifier + 'static) -> Arc<dyn Notifier> {
    Arc::new(sender)
}

/// Reads the secret held by the environment variable `name` (named by `key`).
pub(crate) fn secret_from_env(key: &str, name: &str) -> Result<SecretString, Invalid> {
    check_env_name(key, name)?;
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Err(invalid(
            key,
            &format!("the environment variable {name} is empty"),
        )),
        Ok(value) => Ok(SecretString::from(value)),
        Err(std::env::VarError::NotPresent) => Err(invalid(
            key,
            &format!("the environment variable {name} is not set"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(invalid(
            key,
            &format!("the environment variable {name} is not valid UTF-8"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> DeliveryConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml))
            .extract()
            .unwrap_or_else(|error| panic!("{toml}: {error}"))
    }

    #[test]
    fn missing_secrets_are_start_up_errors_naming_the_variable() {
        let config = parse(
            "push = \"webhook\"\n[webhook]\nurl = \"https://push.example\"\nsecret_env = \"ASSENT_TEST_UNSET_WEBHOOK_SECRET\"",
        );
        let failures =
            prometheus::IntCounterVec::new(prometheus::Opts::new("failures", "test"), &["channel"])
                .unwrap();
        let Err(error) = delivery(&config, failures, Arc::new(assent_core::clock::SystemClock))
        else {
            panic!("an unset secret is refused");
        };
        assert_eq!(
            error,
            "delivery.webhook.secret_env: the environment variable \
             ASSENT_TEST_UNSET_WEBHOOK_SECRET is not set"
        );
        assert!(check_env_name("k", "A=B").is_err());
        assert!(check_env_name("k", "").is_err());
        assert!(check_env_name("k", "1ABC").is_err());
        assert!(check_env_name("k", "ASSENT_SMTP_PASSWORD").is_ok());
    }

    #[test]
    fn the_smtp_sender_must_be_a_mailbox() {
        let config = parse("email = \"smtp\"\n[smtp]\nhost = \"mail\"\nfrom = \"not a mailbox\"");
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(validate(&config).unwrap_err().0, "smtp.from");
        let failures =
            prometheus::IntCounterVec::new(prometheus::Opts::new("failures", "test"), &["channel"])
                .unwrap();
        let Err(error) = delivery(&config, failures, Arc::new(assent_core::clock::SystemClock))
        else {
            panic!("a bad sender address is refused");
        };
        assert!(
            error.starts_with("delivery.smtp.from: a mailbox"),
            "{error}"
        );
    }
}
