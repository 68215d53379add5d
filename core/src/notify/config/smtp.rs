//! `[delivery.smtp]`: the SMTP server that sends email (the sender is in `assent-senders`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{Invalid, check_env_name, invalid};

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
pub const DEFAULT_SMTP_TIMEOUT_SECS: u64 = 10;

impl SmtpConfig {
    /// Checks the settings (that `from` is a mailbox is checked where email is built,
    /// in `assent-senders`); `used_by` names the choice that needs this table.
    pub fn validate(&self, used_by: &str) -> Result<(), Invalid> {
        let required = format!("required when {used_by}");
        if self.host.trim().is_empty() {
            return Err(invalid("host", &required));
        }
        if self.from.trim().is_empty() {
            return Err(invalid("from", &required));
        }
        if self.port == Some(0) {
            return Err(invalid("port", "between 1 and 65535"));
        }
        if !(1..=300).contains(&self.timeout_secs.unwrap_or(DEFAULT_SMTP_TIMEOUT_SECS)) {
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

    /// The port, or the default of the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> SmtpConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml))
            .extract()
            .unwrap()
    }

    const USED_BY: &str = "email = \"smtp\"";

    // That `from` is a mailbox is checked by `assent-senders` (lettre parses it).
    #[test]
    fn validation_names_the_key() {
        let error = |toml: &str| config(toml).validate(USED_BY).unwrap_err();
        assert_eq!(
            error("from = \"a@example.com\""),
            invalid("host", "required when email = \"smtp\"")
        );
        assert_eq!(error("host = \"mail\"").0, "from");
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
}
