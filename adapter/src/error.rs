//! The adapter's one error type; each API maps it to its own convention in one place.

use crate::store::StoreError;

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The store cannot be reached; retry later.
    #[error("the state store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Credentials missing or wrong.
    #[error("authentication required")]
    Unauthenticated,
    /// The named thing does not exist (or is no longer there).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A concurrent change won; the request lost the race.
    #[error("{0}")]
    Conflict(String),
    /// A bug or corrupt state, never caused by the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AdapterError {
    /// Wraps an unexpected failure (corrupt record, serialisation bug).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<StoreError> for AdapterError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(error),
            StoreError::Conflict => Self::Conflict("the record was changed concurrently".into()),
            StoreError::NotFound => Self::NotFound("record"),
        }
    }
}
