//! Operator tools around secrets: hashing user codes, rotating the signing keys.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher, SaltString};
use assent_core::clock::{Clock, SystemClock};
use assent_core::config::StoreUrl;
use assent_core::{Adapter, Config, Metrics};

/// The Argon2id hash (PHC string) of a user code, for `user_code_hash` in the config.
pub fn hash_user_code(code: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(code.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Rotates the signing keys in the configured store; returns the new current kids.
pub async fn rotate_signing_keys(config: Config) -> Result<Vec<String>, String> {
    if config.store == StoreUrl::Memory {
        return Err(concat!(
            "the memory store lives inside the serving process: ",
            "rotate with a Redis store (ASSENT_STORE=redis://...)"
        )
        .to_owned());
    }
    let lifetime = config
        .ciba
        .id_token_lifetime_secs
        .max(config.ciba.access_token_lifetime_secs);
    let config_refresh = config.ciba.key_refresh_secs;
    let metrics = Metrics::new().map_err(|error| error.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let delivery = assent_senders::delivery(
        &config.delivery,
        metrics.deliveries_failed.clone(),
        clock.clone(),
    )?;
    let adapter = Adapter::start(config, metrics, delivery, clock)
        .await
        .map_err(|error| error.to_string())?;
    // Keep retired keys until every token they signed has expired: instances may sign
    // with a retired key until their next refresh, and JWKS readers cache for a minute.
    let retain = Duration::from_secs(lifetime + config_refresh + 120);
    adapter
        .signing_keys()
        .rotate(retain)
        .await
        .map_err(|error| error.to_string())
}
