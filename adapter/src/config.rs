//! Layered configuration: `conf/assent.toml`, then `ASSENT_*` environment variables.
//!
//! Every key maps to an environment variable: upper-case it, prefix `ASSENT_`, and join
//! nested keys with a double underscore (`http.long_poll_max_secs` is
//! `ASSENT_HTTP__LONG_POLL_MAX_SECS`).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::user::UserProfile;

/// Secrets shipped in `conf/assent.toml` for trying assent on one's own machine.
const DEMO_SECRETS: &[&str] = &[
    "demo-federation-secret",
    "demo-ciba-secret",
    "demo-admin-token",
];

/// A configuration that could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is missing, has the wrong type, or is not known.
    #[error("{0}")]
    Invalid(String),
    /// A key parsed but its value is not acceptable.
    #[error("invalid value for key `{key}`: {reason}")]
    Value {
        /// The offending key, dotted.
        key: String,
        /// What was expected.
        reason: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        let messages: Vec<String> = error
            .into_iter()
            .map(|error| {
                let key = error.path.join(".");
                // Where the value came from: the file, or the environment variable's name.
                let origin = match error.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                    Some(source) => format!(" (in {source})"),
                    None if error.metadata.is_some() => {
                        format!(" (from ASSENT_{})", error.path.join("__").to_uppercase())
                    }
                    None => String::new(),
                };
                if key.is_empty() {
                    error.kind.to_string()
                } else {
                    format!("invalid value for key `{key}`{origin}: {}", error.kind)
                }
            })
            .collect();
        Self::Invalid(messages.join("; "))
    }
}

/// The whole configuration of one assent instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The URL browsers and apps use to reach this service (links in responses).
    pub public_url: String,
    /// `memory`, or a `redis://` URL.
    pub store: StoreUrl,
    /// Lets the demo secrets be used on a non-loopback address. Never in production.
    #[serde(default)]
    pub allow_demo_secrets: bool,
    /// Store tuning.
    #[serde(default)]
    pub store_options: StoreOptions,
    /// HTTP server limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// The operator's credentials.
    pub admin: AdminConfig,
    /// Federation servers allowed to call the Adapter API.
    #[serde(default)]
    pub adapter_clients: Vec<ClientConfig>,
    /// Relying parties allowed to use CIBA.
    #[serde(default)]
    pub ciba_clients: Vec<ClientConfig>,
    /// Users known before any federation server mentions them (demo data).
    #[serde(default)]
    pub users: Vec<UserProfile>,
    /// Global policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Message templates for the device, by id (`${name}` placeholders).
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, crate::params::Template>,
}

/// Which backend holds the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process only.
    Memory,
    /// A `redis://` or `rediss://` URL.
    Redis(String),
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == "memory" {
            Ok(Self::Memory)
        } else if raw.starts_with("redis://") || raw.starts_with("rediss://") {
            Ok(Self::Redis(raw))
        } else {
            Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(&raw),
                &"`memory` or a redis:// URL",
            ))
        }
    }
}

/// Store tuning.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreOptions {
    /// Put before every Redis key, so that several deployments can share one Redis.
    pub key_prefix: String,
    /// Upper bound on one store call; past it the request answers 503.
    pub timeout_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            key_prefix: "assent:".to_owned(),
            timeout_ms: 2000,
        }
    }
}

/// HTTP server limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Cap on `?wait=` for long polls.
    pub long_poll_max_secs: u64,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Browser origins allowed to call the Authentication API with credentials.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 16 * 1024,
            long_poll_max_secs: 30,
            workers: 0,
            cors_origins: Vec::new(),
        }
    }
}

/// The operator's credentials.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// SHA-256 of the admin bearer token.
    pub token_sha256: SecretHash,
}

/// A client of the Adapter API or of CIBA, authenticated by id and secret.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client id.
    pub id: String,
    /// SHA-256 of the client secret (secrets are generated, high-entropy values).
    pub secret_sha256: SecretHash,
    /// A display name, shown on the device.
    #[serde(default)]
    pub name: Option<String>,
    /// CIBA token delivery mode: `poll`, `ping` or `push`.
    #[serde(default)]
    pub delivery_mode: Option<String>,
    /// CIBA notification endpoint, for ping and push.
    #[serde(default)]
    pub notification_endpoint: Option<String>,
}

/// Global policy; later issues extend it.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// How long a flow lives, from start to result pickup.
    pub flow_ttl_secs: u64,
    /// How long a push waits for the device's answer before timing out.
    pub push_timeout_secs: u64,
    /// How long an admin-issued pairing key stays usable.
    pub pairing_key_ttl_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            flow_ttl_secs: 600,
            push_timeout_secs: 120,
            pairing_key_ttl_secs: 600,
        }
    }
}

/// The SHA-256 of a secret, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes a secret.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `presented` hashes to this value, in time independent of where they differ.
    pub fn verify(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&presented))
    }

    /// The lower-case hex form written in configuration files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(raw.trim(), &mut bytes).map_err(|_| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Str("(hidden)"),
                &"64 hex digits: the SHA-256 of the secret (`assent config hash-secret`)",
            )
        })?;
        Ok(Self(bytes))
    }
}

impl Config {
    /// The layered sources: the file at `path`, then `ASSENT_*` variables. Tests merge
    /// their own overrides on top before calling [`Config::from_figment`].
    pub fn figment(path: &Path) -> Figment {
        Figment::new().merge(Toml::file_exact(path)).merge(
            Env::prefixed("ASSENT_")
                .ignore(&["CONFIG", "LOG", "LOG_FORMAT"])
                .split("__"),
        )
    }

    /// Loads `path` with environment overrides, and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(path))
    }

    /// Extracts and validates a configuration.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Self = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Value {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(invalid("public_url", "an http:// or https:// URL"));
        }
        let prefix = &self.store_options.key_prefix;
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-' | '.'))
        {
            return Err(invalid(
                "store_options.key_prefix",
                "letters, digits and `:_-.` only (hash tags belong to the keys)",
            ));
        }
        if self.store_options.timeout_ms == 0 {
            return Err(invalid("store_options.timeout_ms", "a positive number"));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(invalid("http.body_limit_bytes", "at least 1024"));
        }
        if self.http.long_poll_max_secs == 0 || self.http.long_poll_max_secs > 300 {
            return Err(invalid("http.long_poll_max_secs", "between 1 and 300"));
        }
        for (id, template) in &self.templates {
            template
                .validate()
                .map_err(|reason| invalid(&format!("templates.{id}"), &reason))?;
        }
        for (index, user) in self.users.iter().enumerate() {
            user.validate()
                .map_err(|reason| invalid(&format!("users[{index}]"), &reason))?;
        }
        if let Some(key) = self.demo_secret_in_use()
            && !self.listen.ip().is_loopback()
            && !self.allow_demo_secrets
        {
            return Err(invalid(
                key,
                "a demo secret may only be used on a loopback address; replace it, or set \
                 allow_demo_secrets = true (ASSENT_ALLOW_DEMO_SECRETS=true) if you really mean it",
            ));
        }
        Ok(())
    }

    /// The first key whose secret is one of the published demo secrets.
    pub fn demo_secret_in_use(&self) -> Option<&'static str> {
        let is_demo = |hash: &SecretHash| DEMO_SECRETS.iter().any(|demo| hash.verify(demo));
        if is_demo(&self.admin.token_sha256) {
            return Some("admin.token_sha256");
        }
        if self
            .adapter_clients
            .iter()
            .any(|client| is_demo(&client.secret_sha256))
        {
            return Some("adapter_clients.secret_sha256");
        }
        if self
            .ciba_clients
            .iter()
            .any(|client| is_demo(&client.secret_sha256))
        {
            return Some("ciba_clients.secret_sha256");
        }
        None
    }
}
