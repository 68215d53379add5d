//! Identifiers and one-time secrets: random, URL- and key-safe, parsed at the boundary.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

/// `len` random alphanumeric characters from the OS-seeded CSPRNG (5.95 bits each).
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random value.
            pub fn generate() -> Self {
                Self(random_alphanumeric($len))
            }

            /// Accepts exactly what [`Self::generate`] produces.
            pub fn parse(raw: &str) -> Option<Self> {
                (raw.len() == $len && raw.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .then(|| Self(raw.to_owned()))
            }

            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(
    /// A flow id: 24 alphanumerics (142 bits), which PingFederate's widget accepts
    /// (`^[a-zA-Z0-9]{1,30}$`) and nobody can guess.
    FlowId,
    24
);

random_id!(
    /// A paired device.
    DeviceId,
    20
);

/// A one-time pairing key (119 bits), typed or scanned by the person pairing a device.
/// Its `Debug` hides the value, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingKey(String);

impl PairingKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(random_alphanumeric(20))
    }

    /// Accepts exactly what [`Self::generate`] produces.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 20 && raw.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_owned()))
    }

    /// The key itself, to hand to the person pairing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PairingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingKey(..)")
    }
}

/// A request sent to a device: the flow it belongs to and the attempt within it, so that
/// the request and its flow share one record (and one Redis hash tag).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthId(String);

impl AuthId {
    /// A fresh request id within `flow`.
    pub fn generate(flow: &FlowId) -> Self {
        Self(format!("{flow}.{}", random_alphanumeric(12)))
    }

    /// Parses `<flowId>.<nonce>`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (flow, nonce) = raw.split_once('.')?;
        FlowId::parse(flow)?;
        (nonce.len() == 12 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_owned()))
    }

    /// The flow this request belongs to.
    pub fn flow(&self) -> FlowId {
        let flow = self
            .0
            .split_once('.')
            .map_or(self.0.as_str(), |(flow, _)| flow);
        FlowId(flow.to_owned())
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuthId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
