//! assent's domain: users, devices, pairing, flows, policy, the [`store::Store`] with its
//! memory and Redis backends, and [`notify::Delivery`] behind the [`notify::Notifier`]
//! trait. It knows nothing of HTTP: the routes live in `assent-adapter`, the concrete
//! senders in `assent-senders`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]

pub mod audit;
pub mod clock;
pub mod config;
mod counter;
pub mod credentials;
pub mod device;
pub mod device_key;
pub mod device_management;
pub mod error;
pub mod flow;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod l10n;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod oath;
pub mod oauth;
pub mod otp;
pub mod otp_device;
pub mod pairing;
pub mod params;
pub mod policy;
pub mod sealing;
#[cfg(test)]
mod soft_authenticator;
pub mod store;
pub mod user;
pub mod webauthn;
pub mod webauthn_authentication;
mod webauthn_credential;
pub mod webauthn_registration;
pub mod yubikey;

use std::sync::Arc;
use std::time::Duration;

pub use crate::config::Config;
pub use crate::error::AdapterError;
pub use crate::metrics::Metrics;
use crate::store::{MemoryStore, Store};
use crate::user::{UserId, UserProfile};

/// One instance's view of the service: configuration, state and metrics. Cheap to clone.
#[derive(Clone)]
pub struct Adapter {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    metrics: Metrics,
    delivery: notify::Delivery,
    data_key: Option<sealing::DataKey>,
    clock: Arc<dyn clock::Clock>,
    decision_hook: Arc<std::sync::OnceLock<Arc<dyn flow::DecisionHook>>>,
    flows: Arc<flow::cache::FlowCache>,
    relying_party: Option<Arc<webauthn::RelyingParty>>,
}

impl Adapter {
    /// Connects to the configured store and loads the configured users into it (in the
    /// background, retrying, when Redis is not up yet); messages leave through `delivery` (built from `config.delivery` by `assent-senders`), and
    /// time is told by `clock` (the system's; tests move a manual one).
    pub async fn start(
        config: Config,
        metrics: Metrics,
        delivery: notify::Delivery,
        clock: Arc<dyn clock::Clock>,
    ) -> Result<Self, AdapterError> {
        let users = Arc::new(config.users.clone());
        let store: Arc<dyn Store> = match &config.store {
            config::StoreUrl::Memory => {
                let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
                seed_users(Arc::clone(&store), users).await?;
                store
            }
            config::StoreUrl::Redis(url) => {
                let options = store::redis_options(url, &config.store_options);
                // Redis may come up after assent: the store answers "unavailable" (and
                // `/readyz` is false) until it is reached and the users are written.
                let prepare: store::Prepare = Arc::new(move |store| {
                    let users = Arc::clone(&users);
                    Box::pin(async move {
                        seed_users(store, users).await.map_err(|error| match error {
                            AdapterError::Unavailable(error) => error,
                            other => store::StoreError::Unavailable(other.to_string()),
                        })
                    })
                });
                store::connect_or_defer(options, metrics.store_errors.clone(), prepare).await
            }
        };
        let data_key = match &config.secrets.data_key_env {
            Some(name) => Some(sealing::DataKey::from_env(name).map_err(|reason| {
                AdapterError::Invalid(format!("secrets.data_key_env: {reason}"))
            })?),
            None => None,
        };
        let flows = Arc::new(flow::cache::FlowCache::new(std::time::Duration::from_secs(
            config.policy.flow_ttl_secs,
        )));
        let relying_party = match &config.webauthn {
            Some(webauthn) => Some(Arc::new(webauthn.relying_party().map_err(
                |(key, reason)| AdapterError::Invalid(format!("webauthn.{key}: {reason}")),
            )?)),
            None => None,
        };
        let adapter = Self {
            flows,
            relying_party,
            data_key,
            delivery,
            config: Arc::new(config),
            store,
            metrics,
            clock,
            decision_hook: Arc::default(),
        };
        Ok(adapter)
    }

    /// Registers what runs after a device's decision (the CIBA provider's notifications).
    /// Set once at start-up; later calls are ignored.
    pub fn on_decision(&self, hook: Arc<dyn flow::DecisionHook>) {
        let _ = self.decision_hook.set(hook);
    }

    pub(crate) fn decision_hook(&self) -> Option<&Arc<dyn flow::DecisionHook>> {
        self.decision_hook.get()
    }

    /// The configuration this instance runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The flows this instance last read or wrote.
    pub(crate) fn flow_cache(&self) -> &flow::cache::FlowCache {
        &self.flows
    }

    /// The state store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The senders of push notifications, SMS, voice calls and email.
    pub fn delivery(&self) -> &notify::Delivery {
        &self.delivery
    }

    /// The key sealing stored TOTP seeds, when one is configured.
    pub fn data_key(&self) -> Option<&sealing::DataKey> {
        self.data_key.as_ref()
    }

    /// The WebAuthn relying party (`[webauthn]`), which every security key and platform
    /// ceremony runs against.
    pub(crate) fn relying_party(&self) -> Result<&Arc<webauthn_rs::Webauthn>, AdapterError> {
        let relying_party = self.relying_party.as_ref().ok_or_else(|| {
            AdapterError::internal("a WebAuthn method is in use with no [webauthn] relying party")
        })?;
        Ok(&relying_party.webauthn)
    }

    /// The makers' roots an authenticator's attestation must chain to, each trusted for
    /// the models allowed (`[webauthn] attestation = "indirect"`); `None`: no attestation
    /// is asked for.
    pub(crate) fn attestation_roots(&self) -> Option<&webauthn_rs::prelude::AttestationCaList> {
        self.relying_party.as_ref()?.attestation.as_ref()
    }

    /// The clock every service tells time by.
    pub fn clock(&self) -> &dyn clock::Clock {
        self.clock.as_ref()
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether the store answers; `/readyz` reports this.
    pub async fn ready(&self) -> Result<&'static str, AdapterError> {
        self.store.ping().await?;
        Ok(self.store.backend())
    }

    /// A user's profile, for the operator.
    pub async fn user(&self, id: &UserId) -> Result<UserProfile, AdapterError> {
        self.find_user(id)
            .await?
            .ok_or(AdapterError::NotFound("user"))
    }

    /// A user's profile, if there is such a user: the store's, else the configured one —
    /// written back, so that a store that lost its data (a Redis flush, a failover to an
    /// empty replica) serves the configured users again without a restart.
    pub async fn find_user(&self, id: &UserId) -> Result<Option<UserProfile>, AdapterError> {
        if let Some(profile) = user::find(self.store(), id).await? {
            return Ok(Some(profile));
        }
        let Some(configured) = self.config.users.iter().find(|user| user.id == *id) else {
            return Ok(None);
        };
        tracing::info!(user = %id, "configured user missing from the store; seeded again");
        user::upsert(self.store(), configured).await?;
        Ok(Some(configured.clone()))
    }

    /// A user with their device ids, default device and passcode devices, read in one
    /// step (see [`user::find_with_devices`]); a configured user missing from the store
    /// is seeded again, as [`Adapter::find_user`] does.
    pub async fn find_user_with_devices(
        &self,
        id: &UserId,
        passcodes: user::Passcodes,
    ) -> Result<Option<user::UserWithDevices>, AdapterError> {
        if let Some(found) = user::find_with_devices(self.store(), id, passcodes).await? {
            return Ok(Some(found));
        }
        if self.find_user(id).await?.is_none() {
            return Ok(None);
        }
        user::find_with_devices(self.store(), id, passcodes).await
    }

    /// The user a login hint (username, email or phone number) names, if any, with what
    /// [`Adapter::find_user_with_devices`] reads; a configured user is found (and seeded
    /// again) even when the store lost them.
    pub async fn find_user_by_login(
        &self,
        hint: &str,
        passcodes: user::Passcodes,
    ) -> Result<Option<user::UserWithDevices>, AdapterError> {
        if let Some(found) = user::find_by_login_with_devices(self.store(), hint, passcodes).await?
        {
            return Ok(Some(found));
        }
        let Some(configured) = self
            .config
            .users
            .iter()
            .find(|user| user::answers_to(user, hint))
        else {
            return Ok(None);
        };
        // A stored profile of that user stays as it is (a flow start may have changed
        // it); it must still carry the hint.
        Ok(self
            .find_user_with_devices(&configured.id, passcodes)
            .await?
            .filter(|found| user::answers_to(&found.profile, hint)))
    }

    /// How long long polls may wait at most.
    pub fn long_poll_cap(&self) -> Duration {
        Duration::from_secs(self.config.http.long_poll_max_secs)
    }
}

/// Writes the users of the configuration into a store that has just been reached.
async fn seed_users(
    store: Arc<dyn Store>,
    users: Arc<Vec<UserProfile>>,
) -> Result<(), AdapterError> {
    for profile in users.iter() {
        user::upsert(store.as_ref(), profile).await?;
    }
    Ok(())
}
