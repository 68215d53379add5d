//! Automatic device registration (seed 004): the federation server has authenticated the
//! user; a one-time pairing key is shown (`MOBILE_ACTIVATION_REQUIRED`), the app posts it
//! with its public key, and the flow completes once the device is trusted.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Effect, Entry, Event, Transition};
use super::steps::{self, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, PairingOffer, View};
use crate::error::FlowError;
use crate::policy::NetworkAction;

/// Where a registration stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The pairing key waits for the app (failed once it expires).
    MobileActivationRequired {
        /// The key and its expiry.
        pairing: PairingOffer,
    },
    /// Refused before a key was issued (the network policy).
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// The device is paired.
    Completed {
        /// The pairing.
        approval: Approval,
    },
    /// Canceled after the key expired.
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
            Self::AuthenticationRequired => View::AuthenticationRequired,
            Self::MobileActivationRequired { pairing } => View::MobileActivation(pairing),
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

/// The first state: a pairing key, written with the flow, unless the network refuses.
pub fn start(head: Head, network: Option<NetworkAction>, pairing: PairingOffer) -> Transition {
    if let Some(reason) = steps::network_denial(network) {
        return Transition::to(
            head.into_flow(FlowState::Registration(State::MfaFailed { reason })),
        );
    }
    let state = State::MobileActivationRequired {
        pairing: pairing.clone(),
    };
    Transition::to(head.into_flow(FlowState::Registration(state)))
        .with(Effect::IssuePairingKey(pairing))
}

/// What `_links` offers now.
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    steps::browser_actions(flow, flow.status(now_ms))
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Registration(state))
}

/// The flow after `event`, or why the event does not apply.
pub fn apply(
    flow: &Flow,
    state: &State,
    event: Event,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    let now = ctx.now_ms;
    let status = flow.status(now);
    match (state, event) {
        (State::AuthenticationRequired, Event::Authenticate(entry)) => match *entry {
            Entry::Registration { network, pairing } => {
                Ok(start(flow.head.clone(), network, pairing))
            }
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        (State::AuthenticationRequired, Event::AppAuthorized { device, network }) => {
            Ok(Transition::to(next(
                flow,
                match super::entry::app_authorized(&device, network, now) {
                    Ok(approval) => State::Completed { approval },
                    Err(reason) => State::MfaFailed { reason },
                },
            )))
        }
        (State::AuthenticationRequired, Event::AppArrived(arrival)) => {
            super::new_device::app_arrived(flow, *arrival, ctx)
        }
        (State::MobileActivationRequired { .. }, Event::DevicePaired { device })
            if status == super::Status::MobileActivationRequired =>
        {
            let approval = Approval {
                device_id: device.id.clone(),
                method: ApprovalMethod::Registration,
                decided_at_ms: now,
            };
            let mut next = next(flow, State::Completed { approval });
            next.devices.push(device);
            Ok(Transition::to(next))
        }
        (_, Event::Cancel) => {
            let withdrawn = match state {
                State::MobileActivationRequired { pairing } => {
                    Some(Effect::WithdrawPairingKey(pairing.pairing_key.clone()))
                }
                _ => None,
            };
            let state = match steps::cancel(flow, status) {
                Some(Ending::Canceled) => State::Canceled,
                Some(Ending::Failed(reason)) => State::Failed { reason },
                None => return Err(steps::not_allowed(&Event::Cancel, flow, now)),
            };
            Ok(Transition::to(next(flow, state)).with_opt(withdrawn))
        }
        (_, Event::PickUp) => Ok(Transition::to(steps::pick_up(flow, now)?)),
        (_, Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. }) => {
            Err(FlowError::NotPending)
        }
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
