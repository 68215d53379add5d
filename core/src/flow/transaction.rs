//! Transaction approval (seed 004): as [`super::oob`], but the device shows a title and
//! body rendered from the flow's dynamic parameters, and its signature covers them, so
//! what was approved is what was shown. Only a paired device's signature approves: no
//! passcode (it signs nothing), no skip by network or recent MFA, no set-up on the spot.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Entry, Event, FirstPick, Transition};
use super::steps::{self, Answered, Ending, Reached};
use super::{Action, Approval, Flow, FlowState, Head, Push, View};
use crate::error::FlowError;
use crate::policy::NetworkAction;

/// Where a transaction approval stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The user has several devices and must pick one.
    DeviceSelectionRequired,
    /// The transaction is on the device (timed out by the clock).
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The device denied: final.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The device signed the transaction; the browser continues.
    MfaCompleted {
        /// How.
        approval: Approval,
    },
    /// It cannot be approved (no usable device, network refused).
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// Approved.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Ended without success after a rejection or a failure.
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
            Self::DeviceSelectionRequired => View::DeviceSelection,
            Self::PushWaiting { push } => View::Push(push),
            Self::PushRejected { push, reason } => View::PushRejected {
                push,
                reason: reason.as_deref(),
            },
            Self::MfaCompleted { approval } => View::MfaCompleted(approval),
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

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Transaction(state))
}

fn in_state(head: Head, state: State) -> Flow {
    head.into_flow(FlowState::Transaction(state))
}

/// The first state: the network rules (a deny only: a transaction is never skipped),
/// then the device, picked at once when only one can sign.
pub fn start(
    head: Head,
    network: Option<NetworkAction>,
    address_required: bool,
    first: Option<FirstPick>,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    if let Some(reason) = steps::network_denial(network) {
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    if address_required {
        let reason = "the network policy needs the client's address (clientIp)".to_owned();
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    let candidates = super::oob::usable(&head);
    let state = match (candidates.as_slice(), first) {
        ([], _) => State::MfaFailed {
            reason: head
                .devices
                .iter()
                .find_map(|device| device.unusable.clone())
                .unwrap_or_else(|| "the user has no paired device: register one first".to_owned()),
        },
        (_, Some(FirstPick::Reached { device, pick })) => {
            let (head, reached, effects) = steps::reach(&head, device, *pick, ctx)?;
            let Reached::Push(push) = reached else {
                return Err(FlowError::UnknownDevice);
            };
            let mut transition = Transition::to(in_state(head, State::PushWaiting { push }));
            transition.effects = effects;
            return Ok(transition);
        }
        (_, Some(FirstPick::Refused(refusal))) => State::MfaFailed {
            reason: refusal.to_string(),
        },
        _ => State::DeviceSelectionRequired,
    };
    Ok(Transition::to(in_state(head, state)))
}

/// What `_links` offers now.
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    steps::browser_actions(flow, flow.status(now_ms))
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
            Entry::Transaction {
                devices,
                network,
                address_required,
                first,
            } => {
                let mut head = flow.head.clone();
                head.devices = devices;
                start(head, network, address_required, first, ctx)
            }
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        (
            State::DeviceSelectionRequired | State::PushWaiting { .. },
            Event::SelectDevice { device, pick },
        ) => {
            let (head, reached, effects) = steps::reach(&flow.head, device, pick, ctx)?;
            // Only a signature approves a transaction.
            let Reached::Push(push) = reached else {
                return Err(FlowError::UnknownDevice);
            };
            let mut transition = Transition::to(in_state(head, State::PushWaiting { push }));
            transition.effects = effects;
            Ok(transition)
        }
        (State::DeviceSelectionRequired, Event::DevicesChanged { devices }) => {
            let state = if devices.is_empty() {
                State::MfaFailed {
                    reason: "the user has no paired device left".to_owned(),
                }
            } else {
                State::DeviceSelectionRequired
            };
            let mut next = next(flow, state);
            next.devices = devices;
            Ok(Transition::to(next))
        }
        (State::PushWaiting { .. }, Event::DeviceAnswered { answer, .. }) => {
            let (answered, effects) = steps::answer(flow, &answer, ctx)?;
            let state = match answered {
                Answered::Approved(approval) => State::MfaCompleted { approval },
                Answered::Rejected { push, reason } => State::PushRejected { push, reason },
                Answered::Silent(_) => return Err(FlowError::NotPending),
            };
            let mut transition = Transition::to(next(flow, state));
            transition.effects = effects;
            Ok(transition)
        }
        (State::MfaCompleted { approval }, Event::Continue) => Ok(Transition::to(next(
            flow,
            State::Completed {
                approval: approval.clone(),
            },
        ))),
        (State::PushWaiting { push }, Event::DeviceUnpaired { device })
            if push.device_id == device =>
        {
            let mut next = next(
                flow,
                State::MfaFailed {
                    reason: "the device was unpaired while the request waited for it".to_owned(),
                },
            );
            next.devices.retain(|known| known.id != device);
            Ok(Transition::to(next))
        }
        (_, Event::Cancel) => {
            let state = match steps::cancel(flow, status) {
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
