//! assent's CIBA provider (OpenID Connect CIBA Core 1.0): the backchannel authentication,
//! token and introspection endpoints, discovery and the JWKS. Requests reach the user's
//! mobile device through the adapter's device requests and proofs.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

mod backchannel;
mod client_auth;
mod error;
mod form;
mod jose;
mod notify;
mod routes;
mod signing;
#[cfg(test)]
mod test_support;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use assent_core::Adapter;
use assent_core::config::CibaClientConfig;
use prometheus::{IntCounter, IntCounterVec, Opts};

pub use crate::routes::configure;
pub use crate::signing::{KeyRing, SigningError};

/// CIBA's own metrics.
struct CibaMetrics {
    notifications: IntCounterVec,
    tokens_issued: IntCounter,
}

/// The CIBA provider of one instance.
pub struct Provider {
    adapter: Adapter,
    keys: KeyRing,
    http: reqwest::Client,
    metrics: CibaMetrics,
}

impl Provider {
    /// Loads the signing keys, registers metrics and the decision hook.
    pub async fn start(adapter: Adapter) -> Result<Arc<Self>, SigningError> {
        let keys = KeyRing::load(&adapter).await?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "ciba_notifications_total",
                "CIBA pings and pushes, by mode and outcome",
            ),
            &["mode", "outcome"],
        )
        .map_err(|error| SigningError::File(error.to_string()))?;
        let tokens_issued = IntCounter::new("tokens_issued_total", "Token responses issued")
            .map_err(|error| SigningError::File(error.to_string()))?;
        let _ = adapter.metrics().register(Box::new(notifications.clone()));
        let _ = adapter.metrics().register(Box::new(tokens_issued.clone()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            // CIBA §10.2: the OP must not follow redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| SigningError::File(error.to_string()))?;
        let provider = Arc::new(Self {
            adapter: adapter.clone(),
            keys,
            http,
            metrics: CibaMetrics {
                notifications,
                tokens_issued,
            },
        });
        adapter.on_decision(Arc::new(notify::Notifier(Arc::downgrade(&provider))));
        Ok(provider)
    }

    /// The issuer identifier: the public URL.
    pub fn issuer(&self) -> String {
        self.adapter
            .config()
            .public_url
            .trim_end_matches('/')
            .to_owned()
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer())
    }

    fn client(&self, id: &str) -> Option<&CibaClientConfig> {
        self.adapter
            .config()
            .ciba_clients
            .iter()
            .find(|client| client.id == id)
    }
}
