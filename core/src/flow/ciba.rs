//! What a CIBA request adds to a flow, and the token endpoint's view of it: pending,
//! slow down, expired, denied, or approved (once). Pure: the caller applies the result
//! with one compare-and-set.

use serde::{Deserialize, Serialize};

use super::{Flow, FlowState, Status};
use crate::config::DeliveryMode;
use crate::error::FlowError;

/// How much a poll that came too early adds to the interval (CIBA Core 1.0, §11).
pub const SLOW_DOWN_STEP_SECS: u64 = 5;

/// The relying party's side of a CIBA request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CibaRequest {
    /// The client that asked.
    pub client_id: String,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// Shown on the device and the consumption device alike.
    pub binding_message: Option<String>,
    /// Requested authentication context classes.
    pub acr_values: Option<String>,
    /// How the client learns the outcome.
    pub delivery_mode: DeliveryMode,
    /// The bearer token for the client's notification endpoint (ping and push). It is the
    /// client's credential towards itself, so it must be kept as given.
    pub notification_token: Option<String>,
    /// The minimum seconds between two token polls; grows on `slow_down`.
    pub interval_secs: u64,
    /// When the client last polled (ms since the epoch).
    pub last_poll_ms: Option<u64>,
}

/// What the token endpoint answers for a CIBA request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The person has not answered yet.
    Pending,
    /// The client polled sooner than `interval`; the interval grew.
    SlowDown,
    /// The request expired unanswered.
    Expired,
    /// The person (or the OP) denied it.
    Denied,
    /// Approved: issue the tokens, now and never again.
    Approved,
}

/// A token request for `flow` by a poll- or ping-mode client at `now_ms`: the flow to
/// store (the poll time, the interval, the redemption) and the answer.
pub fn token_request(flow: &Flow, now_ms: u64) -> Result<(Flow, Grant), FlowError> {
    let Some(request) = &flow.ciba else {
        return Err(FlowError::NotPending);
    };
    let mut next = flow.clone();
    let status = flow.status(now_ms);
    let grant = match status {
        Status::MfaCompleted if !flow.result_picked_up => {
            if let FlowState::MfaCompleted { approval } = &flow.state {
                next.state = FlowState::Completed {
                    approval: approval.clone(),
                };
            }
            next.result_picked_up = true;
            Grant::Approved
        }
        Status::Completed | Status::Resume => return Err(FlowError::AlreadyPickedUp),
        Status::PushConfirmationRejected | Status::Failed | Status::Canceled => Grant::Denied,
        Status::PushConfirmationTimedOut | Status::MfaFailed => Grant::Expired,
        _ => {
            let too_soon = request
                .last_poll_ms
                .is_some_and(|last| now_ms < last + request.interval_secs * 1000);
            let ciba = next.ciba.get_or_insert_with(|| request.clone());
            ciba.last_poll_ms = Some(now_ms);
            if too_soon {
                ciba.interval_secs += SLOW_DOWN_STEP_SECS;
                Grant::SlowDown
            } else {
                Grant::Pending
            }
        }
    };
    Ok((next, grant))
}
