//! Delivery: push notifications, SMS, voice calls and email leave through one
//! [`Notifier`] per channel. The senders are real (SMTP, an HTTP SMS/voice provider, a
//! signed webhook); a development sender writes to a file. They live in `assent-senders`,
//! which builds a [`Delivery`] from [`DeliveryConfig`]. Every delivery is bounded in time
//! and its failures are counted.

pub mod config;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::config::{
    DeliveryConfig, FileConfig, SenderKind, SmsHttpConfig, SmtpConfig, SmtpTls, WebhookConfig,
};

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Email to an address.
    Email,
    /// A text message to a mobile number (E.164).
    Sms,
    /// A voice call reading the message to a number (E.164).
    Voice,
    /// A push notification to a paired mobile device.
    Push,
}

impl Channel {
    /// The name used in configuration and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Voice => "voice",
            Self::Push => "push",
        }
    }
}

/// One message to deliver.
#[derive(Clone)]
pub struct Message {
    /// The channel.
    pub channel: Channel,
    /// The address: email address, E.164 number, or device id for push.
    pub to: String,
    /// Email subject, push title.
    pub subject: String,
    /// The text (it may carry a one-time passcode: never log it).
    pub text: String,
    /// Structured data for push (auth id, user, application...).
    pub data: serde_json::Value,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text carries a passcode and the address is personal: neither in logs.
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("to", &mask_recipient(&self.to))
            .finish_non_exhaustive()
    }
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No sender is configured for the channel.
    #[error("no sender is configured for {0}")]
    NotConfigured(&'static str),
    /// The sender did not finish in time.
    #[error("the {0} sender timed out")]
    TimedOut(&'static str),
    /// The sender or the provider refused or failed; the text says why (no secrets).
    #[error("{0}")]
    Failed(String),
}

/// One way of sending messages.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// The sender's name, for logs.
    fn name(&self) -> &'static str;

    /// Sends one message.
    async fn send(&self, message: &Message) -> Result<(), DeliveryError>;
}

/// The senders of every channel.
#[derive(Clone)]
pub struct Delivery {
    senders: Arc<Senders>,
}

struct Senders {
    email: Option<Arc<dyn Notifier>>,
    sms: Option<Arc<dyn Notifier>>,
    voice: Option<Arc<dyn Notifier>>,
    push: Option<Arc<dyn Notifier>>,
    timeout: std::time::Duration,
    failures: prometheus::IntCounterVec,
}

impl Delivery {
    /// The sender of each channel (`None`: the channel is not offered). Every delivery
    /// gives up after `timeout`; failures are counted in `failures`, by channel.
    pub fn new(
        email: Option<Arc<dyn Notifier>>,
        sms: Option<Arc<dyn Notifier>>,
        voice: Option<Arc<dyn Notifier>>,
        push: Option<Arc<dyn Notifier>>,
        timeout: std::time::Duration,
        failures: prometheus::IntCounterVec,
    ) -> Self {
        Self {
            senders: Arc::new(Senders {
                email,
                sms,
                voice,
                push,
                timeout,
                failures,
            }),
        }
    }

    /// Whether a sender is configured for `channel`.
    pub fn has(&self, channel: Channel) -> bool {
        self.sender(channel).is_some()
    }

    fn sender(&self, channel: Channel) -> Option<&Arc<dyn Notifier>> {
        match channel {
            Channel::Email => self.senders.email.as_ref(),
            Channel::Sms => self.senders.sms.as_ref(),
            Channel::Voice => self.senders.voice.as_ref(),
            Channel::Push => self.senders.push.as_ref(),
        }
    }

    /// Delivers `message` within the configured time; a failure is counted and returned.
    pub async fn deliver(&self, message: &Message) -> Result<(), DeliveryError> {
        let channel = message.channel.as_str();
        let result = match self.sender(message.channel) {
            None => Err(DeliveryError::NotConfigured(channel)),
            Some(sender) => {
                match tokio::time::timeout(self.senders.timeout, sender.send(message)).await {
                    Ok(result) => result,
                    Err(_) => Err(DeliveryError::TimedOut(channel)),
                }
            }
        };
        if let Err(error) = &result {
            self.senders.failures.with_label_values(&[channel]).inc();
            let sender = self
                .sender(message.channel)
                .map_or("none", |sender| sender.name());
            tracing::warn!(channel, sender, %error, "delivery failed");
        }
        result
    }
}

/// A recipient fit for logs: `+1555***0101`, `a***@example.com`.
pub fn mask_recipient(to: &str) -> String {
    if let Some((local, domain)) = to.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    let chars: Vec<char> = to.chars().collect();
    // Short values would be mostly revealed by a head and a tail: hide them whole.
    if chars.len() < 10 {
        return "***".to_owned();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

#[cfg(test)]
mod tests {
    use super::mask_recipient;

    #[test]
    fn recipients_are_masked() {
        assert_eq!(mask_recipient("+15555550101"), "+1555***0101");
        assert_eq!(mask_recipient("alice@example.com"), "a***@example.com");
        assert_eq!(mask_recipient("@example.com"), "***@example.com");
        assert_eq!(mask_recipient("+4912345"), "***");
        assert_eq!(mask_recipient("device-0123456789"), "devic***6789");
        assert_eq!(mask_recipient("ééééééééééé"), "ééééé***éééé");
    }
}
