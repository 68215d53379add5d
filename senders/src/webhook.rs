//! Push notifications through a signed webhook, for operators who bridge to APNs or FCM.
//!
//! Each notification is a JSON POST:
//!
//! ```json
//! {"channel":"push","to":"<device id>","title":"...","body":"...","data":{...},"timestamp":1700000000}
//! ```
//!
//! with the header `X-Assent-Signature: t=<unix secs>,v1=<hex>` (Stripe's scheme). To
//! verify it, the receiver:
//! 1. splits the header on `,` and takes `t` and every `v1` (there may be several while a
//!    secret is being rotated);
//! 2. computes HMAC-SHA256, keyed with the shared secret, over the bytes
//!    `<t>` `.` `<raw request body>` (the body exactly as received, before any parsing);
//! 3. compares its hex digest with each `v1` in constant time, and accepts on a match;
//! 4. rejects the request when `t` is more than five minutes from its own clock, so that
//!    a recorded request cannot be replayed later.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use assent_core::clock::Clock;
use assent_core::notify::config::{Invalid, check_url, invalid};
use assent_core::notify::{DeliveryError, Message, Notifier, WebhookConfig};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;

use crate::secret_from_env;
use crate::sms_http::http_client;

/// The signature header.
const SIGNATURE_HEADER: &str = "X-Assent-Signature";

/// Shorter secrets could be guessed offline from one signed request.
const MIN_SECRET_BYTES: usize = 32;

/// Posts signed push notifications to one URL.
pub(crate) struct WebhookSender {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: SecretString,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The JSON body.
#[derive(Serialize)]
struct Push<'a> {
    channel: &'static str,
    to: &'a str,
    title: &'a str,
    body: &'a str,
    data: &'a serde_json::Value,
    timestamp: u64,
}

impl WebhookSender {
    /// Reads the secret and checks its length; requests give up after `timeout`.
    pub(crate) fn new(
        config: &WebhookConfig,
        timeout: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Invalid> {
        let url = check_url("url", &config.url)?;
        let secret = secret_from_env("secret_env", &config.secret_env)?;
        check_secret_length(&secret, &config.secret_env)?;
        Ok(Self {
            client: http_client(timeout).map_err(|reason| invalid("url", &reason))?,
            url,
            secret,
            clock,
        })
    }
}

fn check_secret_length(secret: &SecretString, name: &str) -> Result<(), Invalid> {
    match secret.expose_secret().len() {
        length if length >= MIN_SECRET_BYTES => Ok(()),
        _ => Err(invalid(
            "secret_env",
            &format!("the secret in {name} is shorter than {MIN_SECRET_BYTES} bytes"),
        )),
    }
}

/// `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> Result<String, DeliveryError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| DeliveryError::Failed("unusable webhook secret".into()))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = hex::encode(mac.finalize().into_bytes());
    Ok(format!("t={timestamp},v1={digest}"))
}

#[async_trait]
impl Notifier for WebhookSender {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let timestamp = self.clock.now_secs();
        let body = serde_json::to_vec(&Push {
            channel: message.channel.as_str(),
            to: &message.to,
            title: &message.subject,
            body: &message.text,
            data: &message.data,
            timestamp,
        })
        .map_err(|error| DeliveryError::Failed(format!("webhook body: {error}")))?;
        let signature = signature(self.secret.expose_secret().as_bytes(), timestamp, &body)?;
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(|error| DeliveryError::Failed(format!("webhook: {}", error.without_url())))?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(DeliveryError::Failed(format!(
                "the webhook answered {status}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_stripes_scheme() {
        // Independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", 1_700_000_000, br#"{"a":1}"#).unwrap(),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        let short = SecretString::from("too short");
        let (key, reason) = check_secret_length(&short, "PUSH_SECRET").unwrap_err();
        assert_eq!(key, "secret_env");
        assert_eq!(reason, "the secret in PUSH_SECRET is shorter than 32 bytes");
        assert!(check_secret_length(&SecretString::from("x".repeat(32)), "S").is_ok());
    }
}
