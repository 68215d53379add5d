//! `[delivery.webhook]`: the push webhook (the sender is in `assent-senders`).

use serde::Deserialize;

use super::{Invalid, check_env_name, check_url, invalid};

/// `[delivery.webhook]`: where push notifications are posted, signed (the scheme is
/// described with the webhook sender, in `assent-senders`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver: https, or http only to this machine.
    pub url: String,
    /// The environment variable holding the signing secret (32 bytes or more).
    pub secret_env: String,
}

impl WebhookConfig {
    /// Checks the settings; `used_by` names the choice that needs this table.
    pub fn validate(&self, used_by: &str) -> Result<(), Invalid> {
        let required = format!("required when {used_by}");
        if self.url.is_empty() {
            return Err(invalid("url", &required));
        }
        check_url("url", &self.url)?;
        if self.secret_env.is_empty() {
            return Err(invalid("secret_env", &required));
        }
        check_env_name("secret_env", &self.secret_env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_key() {
        let used_by = "push = \"webhook\"";
        assert_eq!(
            WebhookConfig::default().validate(used_by).unwrap_err(),
            invalid("url", "required when push = \"webhook\"")
        );
        let config = WebhookConfig {
            url: "https://push.example".into(),
            secret_env: String::new(),
        };
        assert_eq!(config.validate(used_by).unwrap_err().0, "secret_env");
    }
}
