//! Email over SMTP (lettre), with STARTTLS or implicit TLS and an optional private CA.

use std::fmt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransport, AsyncSmtpTransportBuilder};
use lettre::{AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::config::{Invalid, check_env_name, invalid, secret_from_env};
use super::{DeliveryError, Message, Notifier};

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on this machine or a trusted network; no password then).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[delivery.smtp]`: the SMTP server that sends email.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name (checked against its certificate).
    pub host: String,
    /// The port; by default 587 (starttls), 465 (tls) or 25 (none).
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub tls: SmtpTls,
    /// The user to authenticate as, if the server wants a login.
    pub username: Option<String>,
    /// The environment variable holding the password (read at start-up).
    pub password_env: Option<String>,
    /// The sender: `Assent <no-reply@example.com>` or a bare address.
    pub from: String,
    /// A PEM certificate to trust besides the system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Timeout of each SMTP command, in seconds (default 10).
    pub timeout_secs: Option<u64>,
}

/// Used when `timeout_secs` is not set; the delivery timeout bounds a send anyway.
const DEFAULT_TIMEOUT_SECS: u64 = 10;

impl SmtpConfig {
    pub(super) fn validate(&self, used_by: &str) -> Result<(), Invalid> {
        let required = format!("required when {used_by}");
        if self.host.trim().is_empty() {
            return Err(invalid("host", &required));
        }
        if self.from.trim().is_empty() {
            return Err(invalid("from", &required));
        }
        if self.from.parse::<Mailbox>().is_err() {
            return Err(invalid(
                "from",
                "a mailbox: `Assent <no-reply@example.com>` or `no-reply@example.com`",
            ));
        }
        if self.port == Some(0) {
            return Err(invalid("port", "between 1 and 65535"));
        }
        if !(1..=300).contains(&self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)) {
            return Err(invalid("timeout_secs", "between 1 and 300"));
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => {
                return Err(invalid("password_env", "required when username is set"));
            }
            (None, Some(_)) => {
                return Err(invalid("username", "required when password_env is set"));
            }
            (Some(_), Some(name)) => check_env_name("password_env", name)?,
            (None, None) => {}
        }
        if self.username.is_some() && self.tls == SmtpTls::None && !self.host_is_loopback() {
            return Err(invalid(
                "tls",
                "\"starttls\" or \"tls\": a password goes in clear only to this machine",
            ));
        }
        Ok(())
    }

    fn host_is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

/// Sends email through one SMTP server, reusing connections (lettre's pool).
pub(super) struct SmtpSender {
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
    pub(super) fn new(config: &SmtpConfig) -> Result<Self, Invalid> {
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|_| invalid("from", "a mailbox"))?;
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(config)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        let timeout = config.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
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
    use crate::notify::Channel;

    fn config(toml: &str) -> SmtpConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml))
            .extract()
            .unwrap()
    }

    const USED_BY: &str = "email = \"smtp\"";

    #[test]
    fn validation_names_the_key() {
        let error = |toml: &str| config(toml).validate(USED_BY).unwrap_err();
        assert_eq!(
            error("from = \"a@example.com\""),
            invalid("host", "required when email = \"smtp\"")
        );
        assert_eq!(error("host = \"mail\"").0, "from");
        assert_eq!(error("host = \"mail\"\nfrom = \"not a mailbox\"").0, "from");
        let base = "host = \"mail.example\"\nfrom = \"Assent <a@example.com>\"\n";
        assert_eq!(error(&format!("{base}port = 0")).0, "port");
        assert_eq!(error(&format!("{base}timeout_secs = 0")).0, "timeout_secs");
        assert_eq!(error(&format!("{base}username = \"u\"")).0, "password_env");
        assert_eq!(error(&format!("{base}password_env = \"P\"")).0, "username");
        assert_eq!(
            error(&format!("{base}username = \"u\"\npassword_env = \"P-1\"")).0,
            "password_env"
        );
        assert_eq!(
            error(&format!(
                "{base}tls = \"none\"\nusername = \"u\"\npassword_env = \"P\""
            ))
            .0,
            "tls"
        );
        assert!(config(base).validate(USED_BY).is_ok());
        assert_eq!(config(base).port(), 587);
        assert_eq!(config(&format!("{base}tls = \"tls\"")).port(), 465);
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
