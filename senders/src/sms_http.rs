//! SMS and voice calls through an HTTP provider with Twilio's REST API shape.

use std::fmt;
use std::time::Duration;

use assent_core::notify::config::{Invalid, check_url, invalid};
use assent_core::notify::{Channel, DeliveryError, Message, Notifier, SmsHttpConfig};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::secret_from_env;

/// Posts SMS to `Messages.json` and calls to `Calls.json` of one account.
pub(crate) struct SmsHttpSender {
    client: reqwest::Client,
    messages_url: String,
    calls_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: String,
    voice_from: String,
}

// By hand, although SecretString hides itself: the URLs are all a reader needs.
impl fmt::Debug for SmsHttpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsHttpSender")
            .field("messages_url", &self.messages_url)
            .finish_non_exhaustive()
    }
}

impl SmsHttpSender {
    /// Reads the auth token; requests give up after `timeout`.
    pub(crate) fn new(config: &SmsHttpConfig, timeout: Duration) -> Result<Self, Invalid> {
        let base_url = check_url("base_url", &config.base_url)?;
        let auth_token = secret_from_env("auth_token_env", &config.auth_token_env)?;
        let account = format!(
            "{}/2010-04-01/Accounts/{}",
            base_url.as_str().trim_end_matches('/'),
            config.account_sid
        );
        Ok(Self {
            client: http_client(timeout).map_err(|reason| invalid("base_url", &reason))?,
            messages_url: format!("{account}/Messages.json"),
            calls_url: format!("{account}/Calls.json"),
            account_sid: config.account_sid.clone(),
            auth_token,
            from: config.from.clone(),
            voice_from: config
                .voice_from
                .clone()
                .unwrap_or_else(|| config.from.clone()),
        })
    }
}

/// An HTTP client for providers: bounded in time, never following redirects (a POST
/// with credentials goes where it was configured to go, or nowhere).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| format!("cannot build an HTTP client: {error}"))
}

#[async_trait]
impl Notifier for SmsHttpSender {
    fn name(&self) -> &'static str {
        "sms_http"
    }

    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let (url, form) = match message.channel {
            Channel::Sms => (
                &self.messages_url,
                [
                    ("To", message.to.clone()),
                    ("From", self.from.clone()),
                    ("Body", message.text.clone()),
                ],
            ),
            Channel::Voice => (
                &self.calls_url,
                [
                    ("To", message.to.clone()),
                    ("From", self.voice_from.clone()),
                    ("Twiml", twiml(&message.text)),
                ],
            ),
            Channel::Email | Channel::Push => {
                return Err(DeliveryError::Failed(
                    "the SMS provider sends only SMS and calls".into(),
                ));
            }
        };
        let response = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(|error| {
                DeliveryError::Failed(format!("SMS provider: {}", error.without_url()))
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The provider's numeric error code says why; its message may echo the request.
        let code = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|body| body.get("code").and_then(serde_json::Value::as_u64))
            .map(|code| format!(" (error {code})"))
            .unwrap_or_default();
        Err(DeliveryError::Failed(format!(
            "the SMS provider answered {status}{code}"
        )))
    }
}

/// The TwiML that reads `text` aloud.
fn twiml(text: &str) -> String {
    format!("<Response><Say>{}</Say></Response>", xml_escape(text))
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twiml_escapes_the_text() {
        assert_eq!(
            twiml("Code <1 2 3> & \"4\" 'five'\u{7}"),
            "<Response><Say>Code &lt;1 2 3&gt; &amp; &quot;4&quot; &apos;five&apos; </Say></Response>"
        );
    }
}
