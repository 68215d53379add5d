//! `[delivery]`: which sender serves each channel, and their settings. Plain data read
//! with the rest of [`crate::Config`]; `assent-senders` builds the senders from it.

mod file;
mod sms_http;
mod smtp;
mod webhook;

use serde::Deserialize;

pub use self::file::FileConfig;
pub use self::sms_http::SmsHttpConfig;
pub use self::smtp::{DEFAULT_SMTP_TIMEOUT_SECS, SmtpConfig, SmtpTls};
pub use self::webhook::WebhookConfig;
use super::Channel;

/// A configuration error: the key (relative to the table checked) and what is expected.
pub type Invalid = (String, String);

/// Which sender serves a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    /// Appends to the development outbox file (`[delivery.file]`).
    File,
    /// SMTP, for email only (`[delivery.smtp]`).
    Smtp,
    /// The HTTP SMS/voice provider, for SMS and voice only (`[delivery.sms_http]`).
    Http,
    /// The signed webhook, for push only (`[delivery.webhook]`).
    Webhook,
    /// No sender: the channel is not offered.
    None,
}

impl SenderKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Smtp => "smtp",
            Self::Http => "http",
            Self::Webhook => "webhook",
            Self::None => "none",
        }
    }

    /// The one real sender that fits `channel` (besides `file` and `none`).
    fn real_for(channel: Channel) -> Self {
        match channel {
            Channel::Email => Self::Smtp,
            Channel::Sms | Channel::Voice => Self::Http,
            Channel::Push => Self::Webhook,
        }
    }
}

/// Which sender serves each channel, and their settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Upper bound on one delivery, in milliseconds (100..=60000).
    pub timeout_ms: u64,
    /// Sender of email: `file`, `smtp` or `none`.
    pub email: SenderKind,
    /// Sender of SMS: `file`, `http` or `none`.
    pub sms: SenderKind,
    /// Sender of voice calls: `file`, `http` or `none`.
    pub voice: SenderKind,
    /// Sender of push notifications: `file`, `webhook` or `none`.
    pub push: SenderKind,
    /// The development outbox.
    pub file: FileConfig,
    /// The SMTP server, when `email = "smtp"`.
    pub smtp: Option<SmtpConfig>,
    /// The HTTP SMS/voice provider, when `sms` or `voice` is `"http"`.
    pub sms_http: Option<SmsHttpConfig>,
    /// The push webhook, when `push = "webhook"`.
    pub webhook: Option<WebhookConfig>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        // The quick start needs no network and no setup: messages land in a local file,
        // and devices fetch their requests by long poll, so push needs no sender.
        Self {
            timeout_ms: 5000,
            email: SenderKind::File,
            sms: SenderKind::File,
            voice: SenderKind::File,
            push: SenderKind::None,
            file: FileConfig::default(),
            smtp: None,
            sms_http: None,
            webhook: None,
        }
    }
}

impl DeliveryConfig {
    /// Checks the settings; the error names the key and what is expected.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(invalid("timeout_ms", "between 100 and 60000"));
        }
        for (channel, kind) in self.choices() {
            let real = SenderKind::real_for(channel);
            if ![SenderKind::File, SenderKind::None, real].contains(&kind) {
                return Err(invalid(
                    channel.as_str(),
                    &format!("\"file\", \"{}\" or \"none\"", real.as_str()),
                ));
            }
            let used_by = format!("{} = \"{}\"", channel.as_str(), kind.as_str());
            let checked = match kind {
                SenderKind::None => Ok(()),
                SenderKind::File => self.file.validate().map_err(within("file")),
                SenderKind::Smtp => block(&self.smtp, "smtp", &used_by)?
                    .validate(&used_by)
                    .map_err(within("smtp")),
                SenderKind::Http => block(&self.sms_http, "sms_http", &used_by)?
                    .validate(&used_by)
                    .map_err(within("sms_http")),
                SenderKind::Webhook => block(&self.webhook, "webhook", &used_by)?
                    .validate(&used_by)
                    .map_err(within("webhook")),
            };
            checked?;
        }
        Ok(())
    }

    fn choices(&self) -> [(Channel, SenderKind); 4] {
        [
            (Channel::Email, self.email),
            (Channel::Sms, self.sms),
            (Channel::Voice, self.voice),
            (Channel::Push, self.push),
        ]
    }

    /// Whether some channel is served by `kind`.
    pub fn uses(&self, kind: SenderKind) -> bool {
        self.choices().iter().any(|(_, chosen)| *chosen == kind)
    }
}

/// `(key, reason)` from borrowed parts.
pub fn invalid(key: &str, reason: &str) -> Invalid {
    (key.to_owned(), reason.to_owned())
}

/// Prefixes the key of an error found inside `table`.
fn within(table: &'static str) -> impl Fn(Invalid) -> Invalid {
    move |(key, reason)| (format!("{table}.{key}"), reason)
}

/// The sub-table a chosen sender needs, or an error naming it.
fn block<'a, T>(block: &'a Option<T>, table: &str, used_by: &str) -> Result<&'a T, Invalid> {
    block.as_ref().ok_or_else(|| {
        invalid(
            table,
            &format!("a [delivery.{table}] table is required when {used_by}"),
        )
    })
}

/// Checks the name of an environment variable (`*_env` keys).
pub fn check_env_name(key: &str, name: &str) -> Result<(), Invalid> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    match valid {
        true => Ok(()),
        false => Err(invalid(
            key,
            "the name of an environment variable (A-Z, 0-9, _)",
        )),
    }
}

/// Checks a provider's URL: https, or plain http only to this machine (a local relay or
/// a test receiver), since the requests carry credentials and passcodes.
pub fn check_url(key: &str, url: &str) -> Result<url::Url, Invalid> {
    let expected = "an https:// URL (http:// only to localhost or a loopback address)";
    let parsed = url::Url::parse(url).map_err(|_| invalid(key, expected))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let secure = match parsed.scheme() {
        "https" => !host.is_empty(),
        "http" => loopback,
        _ => false,
    };
    if !secure || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(key, expected));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(key, "a URL without query or fragment"));
    }
    Ok(parsed)
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

    fn error(toml: &str) -> (String, String) {
        parse(toml).validate().unwrap_err()
    }

    #[test]
    fn defaults_need_no_setup() {
        let config = parse("");
        assert_eq!(config.timeout_ms, 5000);
        assert_eq!(
            [config.email, config.sms, config.voice, config.push],
            [
                SenderKind::File,
                SenderKind::File,
                SenderKind::File,
                SenderKind::None
            ]
        );
        assert_eq!(config.file.path.to_str(), Some("assent-outbox.jsonl"));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(error("timeout_ms = 50").0, "timeout_ms");
        assert_eq!(
            error("email = \"http\""),
            invalid("email", "\"file\", \"smtp\" or \"none\"")
        );
        assert_eq!(error("push = \"smtp\"").0, "push");
        assert_eq!(
            error("email = \"smtp\""),
            invalid(
                "smtp",
                "a [delivery.smtp] table is required when email = \"smtp\""
            )
        );
        assert_eq!(
            error("email = \"smtp\"\n[smtp]\nfrom = \"a@example.com\""),
            invalid("smtp.host", "required when email = \"smtp\"")
        );
        assert_eq!(
            error("voice = \"http\"\n[sms_http]\naccount_sid = \"AC1\"\nfrom = \"+15550100\""),
            invalid("sms_http.auth_token_env", "required when voice = \"http\"")
        );
        assert_eq!(
            error("push = \"webhook\"\n[webhook]\nurl = \"http://example.com/push\"\nsecret_env = \"S\"").0,
            "webhook.url"
        );
        assert_eq!(error("[file]\npath = \"\"").0, "file.path");
    }

    #[test]
    fn unknown_keys_are_refused() {
        use figment::providers::{Format, Toml};
        for toml in [
            "emial = \"file\"",
            "[smtp]\nhots = \"x\"",
            "[sms_http]\ntoken = \"x\"",
            "[webhook]\nsecret = \"x\"",
            "[file]\ndir = \"x\"",
            "email = \"carrier-pigeon\"",
        ] {
            let result: Result<DeliveryConfig, _> =
                figment::Figment::from(Toml::string(toml)).extract();
            assert!(result.is_err(), "{toml}");
        }
    }

    #[test]
    fn urls_must_be_https_or_loopback() {
        for good in [
            "https://api.twilio.com",
            "http://127.0.0.1:8080/x",
            "http://localhost:1/",
            "http://[::1]:9/",
        ] {
            assert!(check_url("url", good).is_ok(), "{good}");
        }
        for bad in [
            "http://example.com",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "https://user:pw@example.com",
            "https://example.com/?token=1",
            "not a url",
        ] {
            assert!(check_url("url", bad).is_err(), "{bad}");
        }
    }
}
