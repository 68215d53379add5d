//! A provider for unit tests: memory store, a manual clock, two clients and one user, no
//! HTTP server. Time moves when a test says so.

use std::sync::Arc;
use std::time::Duration;

use assent_core::clock::ManualClock;
use assent_core::config::SecretHash;
use assent_core::notify::Delivery;
use assent_core::{Adapter, Config, Metrics};
use figment::Figment;
use figment::providers::{Format, Toml};

use crate::Provider;
use crate::form::Form;

/// The clock's start: 2023-11-14T22:13:20Z.
pub const START: u64 = 1_700_000_000;
/// The issuer.
pub const ISSUER: &str = "https://idp.example";
/// Both clients' secret.
pub const SECRET: &str = "a-long-random-client-secret";

/// A provider and the clock it tells time by.
pub async fn provider() -> (Arc<Provider>, Arc<ManualClock>) {
    provider_with("").await
}

/// A provider with more `[ciba]` settings (TOML lines).
pub async fn provider_with(ciba: &str) -> (Arc<Provider>, Arc<ManualClock>) {
    let secret = SecretHash::of(SECRET).to_hex();
    let toml = format!(
        r#"
        listen = "127.0.0.1:0"
        public_url = "{ISSUER}/"
        store = "memory"
        [admin]
        token_sha256 = "{secret}"
        [ciba]
        access_token_lifetime_secs = 300
        id_token_lifetime_secs = 600
        refresh_token_lifetime_secs = 3600
        key_refresh_secs = 30
        {ciba}
        [[ciba_clients]]
        id = "rp"
        name = "Relying party"
        auth_method = "client_secret_post"
        secret_sha256 = "{secret}"
        delivery_mode = "poll"
        scopes = ["openid", "profile", "email", "phone", "offline_access"]
        [[ciba_clients]]
        id = "other"
        name = "Another relying party"
        auth_method = "client_secret_post"
        secret_sha256 = "{secret}"
        delivery_mode = "poll"
        id_token_signed_response_alg = "ES256"
        scopes = ["openid", "offline_access"]
        [[users]]
        id = "alice"
        username = "alice"
        first_name = "Alice"
        last_name = "Liddell"
        email = "alice@example.com"
        phone = "+15555550101"
        "#
    );
    let config = Config::from_figment(Figment::from(Toml::string(&toml))).expect("config");
    let metrics = Metrics::new().expect("metrics");
    let delivery = Delivery::new(
        None,
        None,
        None,
        None,
        Duration::from_secs(1),
        metrics.deliveries_failed.clone(),
    );
    let clock = Arc::new(ManualClock::at_secs(START));
    let adapter = Adapter::start(config, metrics, delivery, clock.clone())
        .await
        .expect("adapter");
    (Provider::start(adapter).await.expect("provider"), clock)
}

/// A form body as the endpoints receive it, with `client`'s `client_secret_post`
/// credentials.
pub fn form(client: &str, params: &[(&str, &str)]) -> Form {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client)
        .append_pair("client_secret", SECRET)
        .extend_pairs(params)
        .finish();
    Form::parse(Some("application/x-www-form-urlencoded"), body.as_bytes()).expect("form")
}
