//! Loading the configuration as `assent serve` and `assent config check` do: the file (or
//! the built-in default) with `ASSENT_*` overrides, checked by the domain and the senders.

use std::path::Path;

use assent_core::Config;
use assent_core::config::ConfigError;
use figment::Figment;

/// The default configuration, built in so that `assent serve` runs from any directory.
pub const DEFAULT_CONFIG: &str = include_str!("../conf/assent.toml");

/// Loads and checks the configuration (the file given, else the built-in default).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    check(match path {
        Some(path) => Config::figment(path),
        None => Config::figment_of_text(DEFAULT_CONFIG),
    })
}

/// Loads and checks a configuration file's text (with `ASSENT_*` overrides on top).
pub fn load_text(toml: &str) -> Result<Config, ConfigError> {
    check(Config::figment_of_text(toml))
}

/// Extracts and validates, with what only the senders can check (that the SMTP `from` is
/// a mailbox).
fn check(figment: Figment) -> Result<Config, ConfigError> {
    let config = Config::from_figment(figment)?;
    assent_senders::validate(&config.delivery).map_err(|(key, reason)| ConfigError::Value {
        key: format!("delivery.{key}"),
        reason,
    })?;
    Ok(config)
}
