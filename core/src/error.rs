//! The adapter's error types; each API maps them to its own convention in one place.

use crate::store::StoreError;

/// Why a flow refused an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The action is not one the flow offers in its current status.
    #[error("{action} is not allowed while the flow is {status}")]
    NotAllowed {
        /// The action attempted.
        action: &'static str,
        /// The flow's status.
        status: &'static str,
    },
    /// The device named is not one of the user's.
    #[error("the device is not one of the user's devices")]
    UnknownDevice,
    /// The device answered a request that is not waiting for it (answered already,
    /// replaced by a newer one, or addressed to another device).
    #[error("the request is not waiting for this device's answer")]
    NotPending,
    /// The device answered after the request timed out.
    #[error("the request has expired")]
    RequestExpired,
    /// The result was asked for before the flow ended.
    #[error("the flow has not ended: it is {0}")]
    NotTerminal(&'static str),
    /// The result was already picked up.
    #[error("the result was already picked up")]
    AlreadyPickedUp,
    /// The flow sent as many pushes as policy allows.
    #[error("too many push notifications for this sign-in")]
    TooManyPushes,
    /// Policy refuses the device; the text says why (e.g. its OS is too old).
    #[error("{0}")]
    DeviceRefused(String),
    /// The method is not one the person is asked to set up.
    #[error("that method is not offered for pairing here")]
    MethodNotOffered,
    /// A wrong one-time passcode; this many tries remain.
    #[error("the passcode is wrong or expired; {0} attempt(s) remaining")]
    InvalidOtp(u32),
    /// The passcode was already used (a TOTP code within its window).
    #[error("the passcode was already used; wait for the next one")]
    OtpReplayed,
    /// Too many passcodes sent, or too soon after the last.
    #[error("{0}")]
    Throttled(String),
    /// The user received as many push notifications as policy allows for now.
    #[error("too many push notifications for this user; try again later")]
    PushLimited,
    /// The user has no device that can receive the request.
    #[error("the user has no paired mobile device")]
    NoUsableDevice,
    /// A device's proof does not verify or binds something else; the text says what.
    #[error("{0}")]
    BadProof(&'static str),
    /// The QR token is not this flow's.
    #[error("QR code not found")]
    QrCodeUnknown,
    /// The QR code expired before it was scanned.
    #[error("the QR code has expired")]
    QrCodeExpired,
    /// The QR code was already scanned.
    #[error("the QR code was already used")]
    QrCodeUsed,
    /// Another device scanned the code.
    #[error("another device scanned this code")]
    QrOtherDevice,
    /// No user selection waits (the text says why).
    #[error("{0}")]
    QrSelectionClosed(&'static str),
    /// `continueAuthentication` before the app paired with its `serverPayload`.
    #[error("the app has not paired with the serverPayload's key yet")]
    NotPaired,
    /// A WebAuthn authenticator's answer was refused (`target` names the field, `reason`
    /// says why); this many tries remain, each with a new challenge.
    #[error("{reason}; {left} attempt(s) remaining")]
    WebauthnRefused {
        /// `attestation` or `assertion`.
        target: &'static str,
        /// Why.
        reason: &'static str,
        /// Tries left.
        left: u32,
    },
    /// The user picked is not paired with the scanning device.
    #[error("that user is not paired with this device")]
    QrUserNotPaired,
}

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The store cannot be reached; retry later.
    #[error("the state store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Credentials missing or wrong; the text says which check failed.
    #[error("authentication failed: {0}")]
    Unauthenticated(&'static str),
    /// Authenticated, or holding an id, but not allowed to act on this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The named thing does not exist (or is no longer there).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is well-formed but not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// A concurrent change won; the request lost the race.
    #[error("{0}")]
    Conflict(String),
    /// The flow refused the event.
    #[error(transparent)]
    Flow(#[from] FlowError),
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
            StoreError::CrossSlot => Self::internal(error),
        }
    }
}
