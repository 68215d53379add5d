//! A CIBA request (CIBA Core 1.0) as a flow: no browser; started by the relying party for
//! a known user, pushed to their mobile device, answered through the same device requests
//! and proofs as out-of-band flows, and redeemed for tokens exactly once.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Effect, Event, Pick, Transition};
use super::steps::{self, Answered, Reached};
use super::{Approval, Flow, FlowState, Head, Push, Status, View};
use crate::config::DeliveryMode;
use crate::error::FlowError;
use crate::ids::DeviceId;

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
    /// The user's profile as read for the request, when the scopes release its claims:
    /// the token request then signs it without reading the user again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::user::UserProfile>,
}

/// Where a CIBA request stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// On the device (expired by the clock).
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The person denied.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Approved; the tokens have not been issued yet.
    Approved {
        /// How.
        approval: Approval,
    },
    /// The tokens were issued (once).
    Redeemed {
        /// How it was approved.
        approval: Approval,
    },
    /// It can no longer be answered (the device was unpaired).
    MfaFailed {
        /// Why.
        reason: String,
    },
}

impl State {
    /// What the state shows.
    pub fn view(&self) -> View<'_> {
        match self {
            Self::PushWaiting { push } => View::Push(push),
            Self::PushRejected { push, reason } => View::PushRejected {
                push,
                reason: reason.as_deref(),
            },
            Self::Approved { approval } => View::MfaCompleted(approval),
            Self::Redeemed { approval } => View::Completed {
                approval: Some(approval),
                skipped: None,
            },
            Self::MfaFailed { reason } => View::MfaFailed(reason),
        }
    }
}

/// What the token endpoint answers for a CIBA request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

/// The first state: the push to the chosen device (`head.devices` holds only it), which
/// has the whole request's expiry to answer.
pub fn start(
    head: Head,
    device: DeviceId,
    pick: Pick,
    expiry_ms: u64,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    let ctx = Context {
        push_timeout_ms: expiry_ms,
        max_pushes: 1,
        ..*ctx
    };
    let (head, reached, effects) = steps::reach(&head, device, pick, &ctx)?;
    let Reached::Push(push) = reached else {
        return Err(FlowError::NoUsableDevice);
    };
    let mut transition =
        Transition::to(head.into_flow(FlowState::Ciba(State::PushWaiting { push })));
    transition.effects = effects;
    Ok(transition)
}

/// What a token request for `flow` gets at `now_ms`.
pub fn grant(flow: &Flow, now_ms: u64) -> Result<Grant, FlowError> {
    let request = flow.ciba.as_ref().ok_or(FlowError::NotPending)?;
    Ok(match flow.status(now_ms) {
        Status::MfaCompleted if !flow.result_picked_up => Grant::Approved,
        Status::Completed | Status::Resume => return Err(FlowError::AlreadyPickedUp),
        Status::PushConfirmationRejected | Status::Failed | Status::Canceled => Grant::Denied,
        Status::PushConfirmationTimedOut | Status::MfaFailed => Grant::Expired,
        _ if request
            .last_poll_ms
            .is_some_and(|last| now_ms < last + request.interval_secs * 1000) =>
        {
            Grant::SlowDown
        }
        _ => Grant::Pending,
    })
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Ciba(state))
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
        (State::PushWaiting { .. }, Event::DeviceAnswered { answer, .. }) => {
            let (answered, effects) = steps::answer(flow, &answer, ctx)?;
            let state = match answered {
                Answered::Approved(approval) => State::Approved { approval },
                Answered::Rejected { push, reason } => State::PushRejected { push, reason },
                Answered::Silent(_) => return Err(FlowError::NotPending),
            };
            let mut transition = Transition::to(next(flow, state)).with(Effect::Notify);
            transition.effects.extend(effects);
            Ok(transition)
        }
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
        (_, Event::TokenRequested) => {
            let mut next = match (grant(flow, now)?, state) {
                (Grant::Approved, State::Approved { approval }) => {
                    let mut next = next(
                        flow,
                        State::Redeemed {
                            approval: approval.clone(),
                        },
                    );
                    next.result_picked_up = true;
                    return Ok(Transition::to(next));
                }
                (Grant::Denied | Grant::Expired, _) => return Ok(Transition::to(flow.clone())),
                (Grant::SlowDown, _) => {
                    let mut next = flow.clone();
                    if let Some(request) = &mut next.ciba {
                        request.interval_secs += SLOW_DOWN_STEP_SECS;
                    }
                    next
                }
                _ => flow.clone(),
            };
            if let Some(request) = &mut next.ciba {
                request.last_poll_ms = Some(now);
            }
            Ok(Transition::to(next))
        }
        (_, Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. }) => {
            Err(FlowError::NotPending)
        }
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
