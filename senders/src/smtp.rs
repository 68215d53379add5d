//! Email over SMTP (lettre), with STARTTLS or implicit TLS and an optional private CA.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use assent_core::notify::config::{DEFAULT_SMTP_TIMEOUT_SECS, Invalid, invalid};
use assent_core::notify::{DeliveryError, Message, Notifier, SmtpConfig, SmtpTls};
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::secret_from_env;

/// What only lettre can check of `[delivery.smtp]`: that `from` is a mailbox it accepts
/// (core's [`SmtpConfig::validate`] checks the rest).
pub(crate) fn check_from(config: &SmtpConfig) -> Result<(), Invalid> {
    if config.from.parse::<Mailbox>().is_err() {
        return Err(invalid(
            "from",
            "a mailbox: `Assent <no-reply@example.com>` or `no-reply@example.com`",
        ));
    }
    Ok(())
}

/// Sends email through one SMTP server, reusing connections (lettre's pool).
pub(crate) struct SmtpSender {
    from: Mailbox,
    server: String,
    builder: AsyncSmtpTransportBuilder,
    // Built on first use: lettre's pool spawns its cleaner on the current Tokio runtime,
    // and the configuration may be loaded outside one.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

// By hand: the builder holds the password.
impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Reads the CA file and the password; a missing one is a start-up error.
    pub(crate) fn new(config: &SmtpConfig) -> Result<Self, Invalid> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|_| invalid("from", "a mailbox"))?;
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(config)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        let timeout = config.timeout_secs.unwrap_or(DEFAULT_SMTP_TIMEOUT_SECS);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port())
            .tls(tls)
            .timeout(Some(Duration::from_secs(timeout)));
        if let (Some(username), Some(name)) = (&config.username, &config.password_env) {
            let password = secret_from_env("password_env", name)?;
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            from,
            server: format!("{}:{}", config.host, config.port()),
            builder,
            transport: OnceLock::new(),
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport
            .get_or_init(|| self.builder.clone().build::<Tokio1Executor>())
    }

    /// The email for `message`: plain text, from the configured sender.
    fn email(&self, message: &Message) -> Result<lettre::Message, DeliveryError> {
        let to = message
            .to
            .parse::<Mailbox>()
            .map_err(|_| DeliveryError::Failed("the recipient is not an email address".into()))?;
        lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|error| DeliveryError::Failed(format!("cannot build the email: {error}")))
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, Invalid> {
    let mut parameters = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            invalid(
                "ca_file",
                &format!("cannot read {}: {error}", path.display()),
            )
        })?;
        let certificate =
            Certificate::from_pem(&pem).map_err(|_| invalid("ca_file", "a PEM certificate"))?;
        parameters = parameters.add_root_certificate(certificate);
    }
    parameters
        .build()
        .map_err(|error| invalid("tls", &format!("cannot set up TLS: {error}")))
}

#[async_trait]
impl Notifier for SmtpSender {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let email = self.email(message)?;
        self.transport()
            .send(email)
            .await
            .map(drop)
            .map_err(|error| DeliveryError::Failed(format!("SMTP {}: {error}", self.server)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_core::notify::Channel;

    fn config(toml: &str) -> SmtpConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml))
            .extract()
            .unwrap()
    }

    #[test]
    fn from_must_be_a_mailbox() {
        let error = check_from(&config("host = \"mail\"\nfrom = \"not a mailbox\"")).unwrap_err();
        assert_eq!(error.0, "from");
        for good in ["Assent <a@example.com>", "a@example.com"] {
            let from = format!("host = \"mail.example\"\nfrom = \"{good}\"");
            assert!(check_from(&config(&from)).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_missing_password_or_ca_file_is_a_start_up_error() {
        let base = "host = \"mail.example\"\nfrom = \"a@example.com\"\n";
        let with_password = config(&format!(
            "{base}username = \"u\"\npassword_env = \"ASSENT_TEST_UNSET_SMTP_PASSWORD\""
        ));
        let error = SmtpSender::new(&with_password).unwrap_err();
        assert_eq!(error.0, "password_env");
        assert!(
            error.1.contains("ASSENT_TEST_UNSET_SMTP_PASSWORD"),
            "{error:?}"
        );
        let with_ca = config(&format!("{base}ca_file = \"/nonexistent/ca.pem\""));
        assert_eq!(SmtpSender::new(&with_ca).unwrap_err().0, "ca_file");
    }

    #[test]
    fn headers_cannot_be_injected() {
        let sender = SmtpSender::new(&config(
            "host = \"mail.example\"\nfrom = \"Assent <no-reply@example.com>\"",
        ))
        .unwrap();
        let message = Message {
            channel: Channel::Email,
            to: "alice@example.com".into(),
            subject: "Code\r\nBcc: mallory@example.com".into(),
            text: "Your code is 123456".into(),
            data: serde_json::Value::Null,
        };
        let email = sender.email(&message).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert_eq!(email.envelope().to().len(), 1);
        let bad = Message {
            to: "alice@example.com>, mallory@example.com".into(),
            ..message
        };
        assert!(sender.email(&bad).is_err());
    }
}
