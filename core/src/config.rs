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
    /// The URL browsers and apps use to reach this service (links in responses, the
    /// OpenID issuer). Unset, it is `http://` + `listen` (a loopback address in place of
    /// an unspecified one), filled in at load.
    #[serde(default)]
    pub public_url: String,
    /// Whether `public_url` was derived from `listen` rather than configured.
    #[serde(skip)]
    pub public_url_derived: bool,
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
    /// The hosted sign-in pages (`/flows/{flowId}`).
    #[serde(default)]
    pub pages: PagesConfig,
    /// The operator's credentials.
    pub admin: AdminConfig,
    /// The per-flow audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Federation servers allowed to call the Adapter API.
    #[serde(default)]
    pub adapter_clients: Vec<ClientConfig>,
    /// Relying parties allowed to use CIBA.
    #[serde(default)]
    pub ciba_clients: Vec<CibaClientConfig>,
    /// The CIBA provider.
    #[serde(default)]
    pub ciba: CibaConfig,
    /// Users known before any federation server mentions them (demo data).
    #[serde(default)]
    pub users: Vec<UserProfile>,
    /// Global policy.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The global MFA policy (seed 001).
    #[serde(default)]
    pub mfa: crate::policy::MfaPolicy,
    /// Per-group changes to the MFA policy, by the user's directory group (the first of
    /// a user's groups listed here applies).
    #[serde(default)]
    pub group_policies: crate::policy::Overrides,
    /// Per-application changes to the MFA policy, by the federation server's application
    /// id; they win over a group's.
    #[serde(default)]
    pub application_policies: crate::policy::Overrides,
    /// `mfa` with each group's and application's changes merged, computed at load.
    #[serde(skip)]
    pub policies: crate::policy::Policies,
    /// Keys kept outside the store.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Hardware tokens imported by an operator (YubiKey OTP, OATH).
    #[serde(default)]
    pub tokens: TokensConfig,
    /// Senders of push notifications, SMS, voice calls and email.
    #[serde(default)]
    pub delivery: crate::notify::DeliveryConfig,
    /// Message templates for the device, by id (`${name}` placeholders).
    #[serde(default)]
    pub templates: std::collections::BTreeMap<String, crate::params::Template>,
    /// The WebAuthn relying party, which `SECURITY_KEY` and `PLATFORM` need.
    #[serde(default)]
    pub webauthn: Option<crate::webauthn::WebauthnConfig>,
}

/// Keys kept outside the store.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// The environment variable holding the data key (32 bytes, base64) that seals TOTP
    /// seeds at rest; without one they are stored as they are.
    pub data_key_env: Option<String>,
    /// Lets assent listen off loopback without a data key. Never in production.
    pub allow_unsealed: bool,
}

/// Hardware tokens: how far an OATH token's codes may have run ahead or drifted.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokensConfig {
    /// HOTP counters past the last accepted one a code may come from (button presses
    /// that were never submitted).
    pub hotp_look_ahead: u64,
    /// The wider window a resynchronisation (two consecutive codes) searches.
    pub hotp_resync_window: u64,
    /// TOTP token steps either side of now still accepted (clock drift).
    pub totp_drift_steps: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            hotp_look_ahead: 10,
            hotp_resync_window: 100,
            totp_drift_steps: 1,
        }
    }
}

/// Which backend holds the state.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In this process only.
    Memory,
    /// A `redis://`, `redis-cluster://` or `redis-sentinel://` URL.
    Redis(String),
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            // The URL may carry a password.
            Self::Redis(_) => f.write_str("redis://(redacted)"),
        }
    }
}

impl<'de> Deserialize<'de> for StoreUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == "memory" {
            Ok(Self::Memory)
        // Checked here, not at the first connection: assent waits for a Redis that is not
        // up yet, and would wait for ever on a URL that can never work.
        } else if crate::store::Topology::parse(&raw).is_ok() {
            Ok(Self::Redis(raw))
        } else {
            // The value is not echoed: it may be a URL with a password in it.
            Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Other("another value"),
                &"`memory` or a valid redis://, redis-cluster:// or redis-sentinel:// URL",
            ))
        }
    }
}

/// The per-flow audit trail.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days a flow's events are kept after the flow itself expires.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 30 }
    }
}

impl AuditConfig {
    /// How long events outlive their flow.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.retention_days) * 86_400)
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
    /// Replicas that must acknowledge every state change before it counts as done
    /// (Redis `WAIT`): with 1, a Sentinel or Cluster failover loses no answer a device or
    /// browser was given. 0 (the default) does not wait.
    pub replica_acks: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            key_prefix: "assent:".to_owned(),
            timeout_ms: 2000,
            replica_acks: 0,
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

/// The languages the hosted pages speak.
pub const PAGE_LANGUAGES: &[&str] = &["en", "de", "fr", "es"];

/// The hosted sign-in pages.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagesConfig {
    /// The language when `Accept-Language` names none the pages speak.
    pub default_language: String,
    /// A language per application id (the federation server's), which wins over
    /// `Accept-Language`.
    pub application_languages: std::collections::BTreeMap<String, String>,
    /// Origins allowed to frame the pages (CSP `frame-ancestors`); none by default.
    pub frame_ancestors: Vec<String>,
}

impl Default for PagesConfig {
    fn default() -> Self {
        Self {
            default_language: "en".to_owned(),
            application_languages: std::collections::BTreeMap::new(),
            frame_ancestors: Vec::new(),
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
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// How a CIBA client authenticates to the backchannel, token and introspection endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMethod {
    /// HTTP Basic with id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with one of the client's keys (RFC 7523).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// How a CIBA client learns the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The client polls the token endpoint.
    Poll,
    /// assent calls the client's endpoint, then the client calls the token endpoint.
    Ping,
    /// assent sends the tokens to the client's endpoint.
    Push,
}

impl DeliveryMode {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::Ping => "ping",
            Self::Push => "push",
        }
    }
}

/// A relying party allowed to use CIBA.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CibaClientConfig {
    /// The client id.
    pub id: String,
    /// Shown on the device ("<name> asks you to sign in").
    pub name: String,
    /// How it authenticates.
    pub auth_method: ClientAuthMethod,
    /// SHA-256 of its secret, for the `client_secret_*` methods.
    #[serde(default)]
    pub secret_sha256: Option<SecretHash>,
    /// Its public keys (a JWK set), for `private_key_jwt` and signed request objects.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Token delivery mode.
    pub delivery_mode: DeliveryMode,
    /// Where pings and pushes go (ping and push modes).
    #[serde(default)]
    pub notification_endpoint: Option<String>,
    /// Authentication requests must come as signed request objects.
    #[serde(default)]
    pub require_signed_request: bool,
    /// Authentication requests must carry the user's `user_code`.
    #[serde(default)]
    pub require_user_code: bool,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// ID token signing algorithm: `RS256` (default), `PS256` or `ES256`.
    #[serde(default = "default_id_token_alg")]
    pub id_token_signed_response_alg: String,
}

fn default_id_token_alg() -> String {
    "RS256".to_owned()
}

/// The CIBA provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CibaConfig {
    /// Minimum seconds between two token polls (the `interval` answered).
    pub poll_interval_secs: u64,
    /// How long a request waits for the person when the client does not say.
    pub default_expiry_secs: u64,
    /// The longest `requested_expiry` honoured.
    pub max_expiry_secs: u64,
    /// ID token lifetime.
    pub id_token_lifetime_secs: u64,
    /// Access token lifetime.
    pub access_token_lifetime_secs: u64,
    /// How access tokens are signed: `ES256` (the default: a fourteenth of an RS256
    /// signature's cost), `RS256` or `PS256`. ID tokens follow each client's registration.
    pub access_token_signing_alg: String,
    /// Refresh token lifetime.
    pub refresh_token_lifetime_secs: u64,
    /// A JWK set file holding the signing keys; when absent, keys are generated on first
    /// start and kept in the store, shared by every instance.
    pub signing_jwk_file: Option<std::path::PathBuf>,
    /// How often an instance reloads the signing keys from the store (after a rotation).
    pub key_refresh_secs: u64,
    /// Ping and push: attempts before giving up.
    pub notification_attempts: u32,
}

impl Default for CibaConfig {
    fn default() -> Self {
        Self {
            poll_interval_secs: 5,
            default_expiry_secs: 300,
            max_expiry_secs: 1800,
            id_token_lifetime_secs: 600,
            access_token_lifetime_secs: 600,
            access_token_signing_alg: "ES256".to_owned(),
            refresh_token_lifetime_secs: 30 * 24 * 3600,
            signing_jwk_file: None,
            key_refresh_secs: 30,
            notification_attempts: 4,
        }
    }
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
    /// How many pushes one flow may send (the first and the retries), against push fatigue.
    pub max_pushes_per_flow: u32,
    /// How a user's additional devices become trusted (seed 001 "additional trusted
    /// devices").
    pub additional_trusted_devices: AdditionalTrustedDevices,
    /// How long a QR sign-on code works (a poll after that shows a new one).
    pub qr_token_ttl_secs: u64,
    /// The app's URI scheme the QR code uses (`<scheme>://assent?authentication_token=`).
    pub qr_app_scheme: String,
    /// Extra verification after a QR scan: a silent push the app answers with its key,
    /// then an approval request to the selected user, showing the application and the
    /// browser's address. On by default, against QR login-jacking (a code shown to the
    /// victim by an attacker's page); an operator may turn it off.
    pub qr_user_approval: bool,
    /// Whether an out-of-band flow for a user without any device offers to register one
    /// on the spot (`MOBILE_ACTIVATION_REQUIRED`) instead of failing.
    pub enrol_on_the_spot: bool,
    /// Whether the person may rename, remove and choose a default device while choosing
    /// one. Off by default: the flow id alone (a password's worth of trust) should not
    /// manage a user's devices.
    pub manage_devices_in_flow: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            flow_ttl_secs: 600,
            push_timeout_secs: 120,
            pairing_key_ttl_secs: 600,
            max_pushes_per_flow: 5,
            enrol_on_the_spot: false,
            additional_trusted_devices: AdditionalTrustedDevices::VerifyWithPrimary,
            qr_token_ttl_secs: 60,
            qr_app_scheme: "assent".to_owned(),
            qr_user_approval: true,
            manage_devices_in_flow: false,
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
        Self::layered(Toml::file_exact(path))
    }

    /// The layered sources with the configuration file's text given (the default one the
    /// binary embeds), then `ASSENT_*` variables.
    pub fn figment_of_text(toml: &str) -> Figment {
        Self::layered(Toml::string(toml))
    }

    fn layered(file: figment::providers::Data<Toml>) -> Figment {
        // `ASSENT_SECRET_*` variables hold secrets that keys such as
        // `delivery.smtp.password_env` name, and `ASSENT_DEVICE_*` ones belong to the
        // device simulator (`assent device`): neither are configuration keys.
        Figment::new().merge(file).merge(
            Env::prefixed("ASSENT_")
                .ignore(&["CONFIG", "LOG", "LOG_FORMAT"])
                .filter(|key| !key.starts_with("secret_") && !key.starts_with("device_"))
                .split("__"),
        )
    }

    /// Loads `path` with environment overrides, and validates it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment(path))
    }

    /// Extracts and validates a configuration.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Self = figment.extract()?;
        if config.public_url.is_empty() {
            let mut address = config.listen;
            if address.ip().is_unspecified() {
                // Listening on every interface: which name clients use is not known here
                // (set `public_url`); this one at least works on the machine itself.
                address.set_ip(match address {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            config.public_url = format!("http://{address}");
            config.public_url_derived = true;
        }
        config.validate()?;
        config.policies = crate::policy::Policies::resolve(
            &config.mfa,
            &config.group_policies,
            &config.application_policies,
        )
        .map_err(|(key, reason)| ConfigError::Value { key, reason })?;
        config.validate_webauthn()?;
        Ok(config)
    }

    /// The relying party builds, and every policy naming a WebAuthn method has one.
    fn validate_webauthn(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Value {
            key: key.to_owned(),
            reason,
        };
        if let Some(webauthn) = &self.webauthn {
            webauthn
                .relying_party()
                .map_err(|(key, reason)| invalid(&format!("webauthn.{key}"), reason))?;
            if webauthn.challenge_ttl_secs > self.policy.flow_ttl_secs {
                return Err(invalid(
                    "webauthn.challenge_ttl_secs",
                    "at most policy.flow_ttl_secs (the challenge lives in the flow)".to_owned(),
                ));
            }
        }
        for policy in self.policies.all() {
            let webauthn_method = policy.allowed_methods.iter().find(|m| m.is_webauthn());
            if let Some(method) = webauthn_method
                && self.webauthn.is_none()
            {
                return Err(invalid(
                    "webauthn",
                    format!(
                        "{} is allowed by policy: configure the relying party ([webauthn] \
                         rp_id, rp_name, origins)",
                        method.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Value {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(invalid("public_url", "an http:// or https:// URL"));
        }
        if !matches!(
            self.ciba.access_token_signing_alg.as_str(),
            "RS256" | "PS256" | "ES256"
        ) {
            return Err(invalid(
                "ciba.access_token_signing_alg",
                "RS256, PS256 or ES256",
            ));
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
        let spoken = |language: &String| PAGE_LANGUAGES.contains(&language.as_str());
        if !spoken(&self.pages.default_language) {
            return Err(invalid("pages.default_language", "one of en, de, fr, es"));
        }
        if !self.pages.application_languages.values().all(spoken) {
            return Err(invalid(
                "pages.application_languages",
                "each one of en, de, fr, es",
            ));
        }
        // A source expression is one token: a space or `;` would add sources or directives.
        if self.pages.frame_ancestors.iter().any(|origin| {
            origin.is_empty()
                || origin.contains(|c: char| c.is_whitespace() || matches!(c, ';' | ','))
        }) {
            return Err(invalid(
                "pages.frame_ancestors",
                "origins such as https://portal.example.com, without spaces or `;`",
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
        for origin in &self.http.cors_origins {
            if !is_origin(origin) {
                return Err(invalid(
                    "http.cors_origins",
                    "exact origins such as https://app.example.com (scheme, host, optional \
                     port; no path, no wildcard)",
                ));
            }
        }
        let day = 24 * 3600;
        for (key, value, max) in [
            ("policy.flow_ttl_secs", self.policy.flow_ttl_secs, day),
            (
                "policy.push_timeout_secs",
                self.policy.push_timeout_secs,
                3600,
            ),
            (
                "policy.pairing_key_ttl_secs",
                self.policy.pairing_key_ttl_secs,
                7 * day,
            ),
            (
                "policy.max_pushes_per_flow",
                u64::from(self.policy.max_pushes_per_flow),
                100,
            ),
            (
                "policy.qr_token_ttl_secs",
                self.policy.qr_token_ttl_secs,
                600,
            ),
            ("tokens.hotp_look_ahead", self.tokens.hotp_look_ahead, 100),
            (
                "tokens.hotp_resync_window",
                self.tokens.hotp_resync_window,
                1000,
            ),
            ("ciba.poll_interval_secs", self.ciba.poll_interval_secs, 60),
            (
                "ciba.default_expiry_secs",
                self.ciba.default_expiry_secs,
                day,
            ),
            ("ciba.max_expiry_secs", self.ciba.max_expiry_secs, day),
            (
                "ciba.id_token_lifetime_secs",
                self.ciba.id_token_lifetime_secs,
                day,
            ),
            (
                "ciba.access_token_lifetime_secs",
                self.ciba.access_token_lifetime_secs,
                day,
            ),
            (
                "ciba.refresh_token_lifetime_secs",
                self.ciba.refresh_token_lifetime_secs,
                365 * day,
            ),
            ("ciba.key_refresh_secs", self.ciba.key_refresh_secs, 3600),
            (
                "ciba.notification_attempts",
                u64::from(self.ciba.notification_attempts),
                10,
            ),
        ] {
            if value == 0 || value > max {
                return Err(invalid(key, &format!("between 1 and {max}")));
            }
        }
        let scheme = &self.policy.qr_app_scheme;
        if !scheme.starts_with(|c: char| c.is_ascii_lowercase())
            || !scheme.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
            })
            || matches!(scheme.as_str(), "javascript" | "data" | "vbscript" | "file")
        {
            return Err(invalid(
                "policy.qr_app_scheme",
                "an app's URI scheme: lower-case letters, digits, + - .",
            ));
        }
        if self.tokens.totp_drift_steps > 10 {
            return Err(invalid("tokens.totp_drift_steps", "0 to 10"));
        }
        if self.tokens.hotp_resync_window <= self.tokens.hotp_look_ahead {
            return Err(invalid(
                "tokens.hotp_resync_window",
                "wider than tokens.hotp_look_ahead",
            ));
        }
        if self.policy.push_timeout_secs >= self.policy.flow_ttl_secs {
            return Err(invalid(
                "policy.push_timeout_secs",
                "shorter than policy.flow_ttl_secs",
            ));
        }
        self.delivery
            .validate()
            .map_err(|(key, reason)| invalid(&format!("delivery.{key}"), &reason))?;
        for (id, template) in &self.templates {
            template
                .validate()
                .map_err(|reason| invalid(&format!("templates.{id}"), &reason))?;
        }
        for (index, client) in self.ciba_clients.iter().enumerate() {
            client
                .validate()
                .map_err(|reason| invalid(&format!("ciba_clients[{index}]"), &reason))?;
        }
        for (index, user) in self.users.iter().enumerate() {
            user.validate()
                .map_err(|reason| invalid(&format!("users[{index}]"), &reason))?;
        }
        if self.secrets.data_key_env.is_none()
            && !self.listen.ip().is_loopback()
            && !self.secrets.allow_unsealed
        {
            return Err(invalid(
                "secrets.data_key_env",
                "required off a loopback address: name the environment variable holding a \
                 32-byte key (openssl rand -base64 32), so that TOTP seeds and sent codes are \
                 sealed at rest; or set secrets.allow_unsealed = true if you really mean it",
            ));
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
            .filter_map(|client| client.secret_sha256.as_ref())
            .any(is_demo)
        {
            return Some("ciba_clients.secret_sha256");
        }
        None
    }
}

impl CibaClientConfig {
    fn validate(&self) -> Result<(), String> {
        match self.auth_method {
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost
                if self.secret_sha256.is_none() =>
            {
                return Err(format!("{} needs secret_sha256", self.auth_method.as_str()));
            }
            ClientAuthMethod::PrivateKeyJwt if self.jwks.is_none() => {
                return Err("private_key_jwt needs jwks".to_owned());
            }
            _ => {}
        }
        if self.require_signed_request && self.jwks.is_none() {
            return Err("require_signed_request needs jwks".to_owned());
        }
        if let Some(jwks) = &self.jwks
            && !jwks.get("keys").is_some_and(serde_json::Value::is_array)
        {
            return Err("jwks must be a JWK set: {\"keys\": [...]}".to_owned());
        }
        // CIBA §4: an HTTPS URL; plain HTTP only to this machine (development, tests).
        let endpoint_ok = self.notification_endpoint.as_deref().is_some_and(|url| {
            url.starts_with("https://")
                || ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
                    .iter()
                    .any(|local| url.starts_with(local))
        });
        if self.delivery_mode != DeliveryMode::Poll && !endpoint_ok {
            return Err(format!(
                "{} mode needs an https notification_endpoint (http only on loopback)",
                self.delivery_mode.as_str()
            ));
        }
        if !self.scopes.iter().any(|scope| scope == "openid") {
            return Err("scopes must include openid".to_owned());
        }
        if !matches!(
            self.id_token_signed_response_alg.as_str(),
            "RS256" | "PS256" | "ES256"
        ) {
            return Err("id_token_signed_response_alg is RS256, PS256 or ES256".to_owned());
        }
        Ok(())
    }
}

/// `scheme://host[:port]`, nothing more.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// How a user's additional devices become trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdditionalTrustedDevices {
    /// The primary device must approve before the new one is paired.
    VerifyWithPrimary,
    /// Each device is paired on its own, through the registration flow.
    PairIndividually,
}
