//! The operations endpoints: liveness and readiness.

use serde::{Deserialize, Serialize};

/// `GET /healthz` and `GET /readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` (the process is up) or `ready` (the store answers too).
    pub status: HealthStatus,
    /// The store's backend (`memory`, `redis`...), on `/readyz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}

/// What a health answer says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// The process is up.
    Ok,
    /// The store answers: this instance can serve flows.
    Ready,
}
