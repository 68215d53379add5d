//! Device authorization (seed 004): a trusted app signs the flow's one-time challenge
//! (`serverPayload`) with its device key and posts it as `authenticate {mobilePayload}`;
//! the flow completes with no interaction.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Event, Transition};
use super::steps::{self, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, View};
use crate::error::FlowError;
use crate::policy::NetworkAction;

/// Where a device authorization stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// The app must sign the server payload with its device key.
    MobilePayloadRequired {
        /// The one-time challenge.
        nonce: String,
    },
    /// Refused (the network policy).
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// The device proved itself.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Canceled after a failure.
    Failed {
        /// Why.
        reason: String,
    },
    /// The person gave up.
    Canceled,
}

impl State {
    /// What the state shows.
    pub fn view(&self) -> View<'_> {
        match self {
            Self::MobilePayloadRequired { nonce } => View::MobilePayload {
                nonce,
                pairing: None,
            },
            Self::MfaFailed { reason } => View::MfaFailed(reason),
            Self::Completed { approval } => View::Completed {
                approval: Some(approval),
                skipped: None,
            },
            Self::Failed { reason } => View::Failed(reason),
            Self::Canceled => View::Canceled,
        }
    }
}

/// The first state: a one-time challenge, unless the network refuses.
pub fn start(head: Head, network: Option<NetworkAction>, nonce: String) -> Transition {
    let state = match steps::network_denial(network) {
        Some(reason) => State::MfaFailed { reason },
        None => State::MobilePayloadRequired { nonce },
    };
    Transition::to(head.into_flow(FlowState::DeviceAuthorization(state)))
}

/// What `_links` offers now.
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    steps::browser_actions(flow, flow.status(now_ms))
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone()
        .with_state(FlowState::DeviceAuthorization(state))
}

/// The flow after `event`, or why the event does not apply.
pub fn apply(
    flow: &Flow,
    state: &State,
    event: Event,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    let now = ctx.now_ms;
    match (state, event) {
        (
            State::MobilePayloadRequired { nonce: expected },
            Event::DeviceAuthorized { device, nonce },
        ) => {
            if *expected != nonce {
                return Err(FlowError::NotPending);
            }
            let approval = Approval {
                device_id: device.id.clone(),
                method: ApprovalMethod::DeviceAuthorization,
                decided_at_ms: now,
            };
            Ok(Transition::to(next(flow, State::Completed { approval })))
        }
        (_, Event::Cancel) => {
            let state = match steps::cancel(flow, flow.status(now)) {
                Some(Ending::Canceled) => State::Canceled,
                Some(Ending::Failed(reason)) => State::Failed { reason },
                None => return Err(steps::not_allowed(&Event::Cancel, flow, now)),
            };
            Ok(Transition::to(next(flow, state)))
        }
        (_, Event::PickUp) => Ok(Transition::to(steps::pick_up(flow, now)?)),
        (_, Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. }) => {
            Err(FlowError::NotPending)
        }
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
