//! Why an SDK call failed.

use std::path::PathBuf;

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// Making, reading or using a key failed, or signing did.
    #[error("crypto: {0}")]
    Crypto(#[from] josekit::JoseError),
    /// A key that is not an EC P-256 private JWK.
    #[error("the device key must be an EC P-256 private JWK: {0}")]
    Key(&'static str),
    /// The server's base URL cannot carry the Device API's paths.
    #[error("server URL {url}: {reason}")]
    ServerUrl {
        /// The URL given.
        url: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The server could not be reached, or its answer not read.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused the request.
    #[error("server answered {status}: {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The problem body.
        body: String,
    },
    /// A device file could not be read or written.
    #[error("device file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not a `serverPayload` this SDK can read.
    #[error("not a server payload: {0}")]
    ServerPayload(&'static str),
    /// A `serverPayload` with no pairing key, given to pair with.
    #[error("the server payload carries no pairing key")]
    NoPairingKey,
    /// The request to answer is not pending on this device.
    #[error("no pending request {0} on this device")]
    NotPending(String),
}

impl SdkError {
    /// The HTTP status of a refusal by the server.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}
