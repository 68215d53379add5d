//! `[delivery]`: which sender serves each channel, and their settings.

use serde::Deserialize;

/// Which sender serves each channel (placeholder until the senders land).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {}

impl DeliveryConfig {
    /// Checks the settings; the error names the key and what is expected.
    pub fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}

impl super::Delivery {
    /// Builds the configured senders.
    pub fn from_config(
        config: &DeliveryConfig,
        failures: prometheus::IntCounterVec,
    ) -> Result<Self, String> {
        let _ = config;
        Ok(Self {
            senders: std::sync::Arc::new(super::Senders {
                email: None,
                sms: None,
                voice: None,
                push: None,
                timeout: std::time::Duration::from_secs(5),
                failures,
            }),
        })
    }
}
