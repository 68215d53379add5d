//! `[delivery.sms_http]`: the SMS and voice provider (the sender is in `assent-senders`).

use serde::Deserialize;

use super::{Invalid, check_env_name, check_url, invalid};

/// `[delivery.sms_http]`: the SMS and voice provider (Twilio or an API-compatible one).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsHttpConfig {
    /// The API's base URL: https, or http only to this machine.
    pub base_url: String,
    /// The account id: part of the path and the Basic auth user.
    pub account_sid: String,
    /// The environment variable holding the auth token (read at start-up).
    pub auth_token_env: String,
    /// The number (or sender id) SMS come from; calls too, unless `voice_from` is set.
    pub from: String,
    /// The number calls come from, when it differs from `from`.
    pub voice_from: Option<String>,
}

impl Default for SmsHttpConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.twilio.com".to_owned(),
            account_sid: String::new(),
            auth_token_env: String::new(),
            from: String::new(),
            voice_from: None,
        }
    }
}

impl SmsHttpConfig {
    /// Checks the settings; `used_by` names the choice that needs this table.
    pub fn validate(&self, used_by: &str) -> Result<(), Invalid> {
        let required = format!("required when {used_by}");
        if self.account_sid.is_empty() {
            return Err(invalid("account_sid", &required));
        }
        // It becomes a path segment: nothing that could leave it.
        if !self.account_sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("account_sid", "letters and digits"));
        }
        if self.auth_token_env.is_empty() {
            return Err(invalid("auth_token_env", &required));
        }
        check_env_name("auth_token_env", &self.auth_token_env)?;
        if self.from.trim().is_empty() {
            return Err(invalid("from", &required));
        }
        if self
            .voice_from
            .as_ref()
            .is_some_and(|from| from.trim().is_empty())
        {
            return Err(invalid("voice_from", "a number, or no key at all"));
        }
        check_url("base_url", &self.base_url)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> SmsHttpConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml))
            .extract()
            .unwrap()
    }

    #[test]
    fn validation_names_the_key() {
        let used_by = "sms = \"http\"";
        let error = |toml: &str| config(toml).validate(used_by).unwrap_err().0;
        assert_eq!(
            config("").validate(used_by).unwrap_err(),
            invalid("account_sid", "required when sms = \"http\"")
        );
        assert_eq!(error("account_sid = \"AC/../x\""), "account_sid");
        assert_eq!(error("account_sid = \"AC1\""), "auth_token_env");
        assert_eq!(
            error("account_sid = \"AC1\"\nauth_token_env = \"T\""),
            "from"
        );
        let base = "account_sid = \"AC1\"\nauth_token_env = \"T\"\nfrom = \"+15550100\"\n";
        assert_eq!(error(&format!("{base}voice_from = \"\"")), "voice_from");
        assert_eq!(
            error(&format!("{base}base_url = \"http://sms.example\"")),
            "base_url"
        );
        assert!(config(base).validate(used_by).is_ok());
    }
}
