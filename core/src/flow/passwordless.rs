//! Passwordless sign-in (seed 001's "Initialize Passwordless Authentication"): the flow
//! starts with no user; the page asks for a passkey with no credential named (a
//! discoverable one answers, the person verified), the credential the assertion names
//! tells who signs in, and the flow completes as its owner. Pure: the service finds the
//! owner, verifies the signature and reads the owner's policy; this machine only moves.

use serde::{Deserialize, Serialize};

use super::machine::{Context, Entry, Event, Transition, WebauthnSignIn};
use super::steps::{self, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, View};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::policy::{Method, NetworkAction};
use crate::user::UserId;

/// Where a passwordless sign-in stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for the browser to enter (`authenticate {}`).
    AuthenticationRequired,
    /// Any passkey of the relying party may sign the challenge.
    AssertionRequired {
        /// The options and the ceremony state (boxed: large).
        sign_in: Box<WebauthnSignIn>,
    },
    /// Refused: the network, the owner's policy, too many refused answers, a clone.
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// Signed in as the credential's owner.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Ended without success after a failure.
    Failed {
        /// Why.
        reason: String,
    },
    /// The person gave up.
    Canceled,
}

/// Who a verified passkey names, as the service found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The credential's owner: the flow's user from now on.
    pub user: UserId,
    /// The credential, as the owner's device.
    pub device: DeviceId,
    /// SECURITY_KEY or PLATFORM, as it was set up.
    pub method: Method,
    /// The owner's policy group (the first of their groups that has one).
    pub policy_group: Option<String>,
}

/// What a checked passkey assertion leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified, and the owner's policy allows its method: signed in as the owner.
    Passed(Owner),
    /// Refused (unknown credential, wrong origin, bad signature): a new challenge.
    Refused(Box<WebauthnSignIn>),
    /// The sign-in cannot complete, for this reason (the owner's policy refuses the
    /// method; the counter showed a clone).
    Denied(String),
}

impl State {
    /// What the state shows.
    pub fn view(&self) -> View<'_> {
        match self {
            Self::AuthenticationRequired => View::AuthenticationRequired,
            Self::AssertionRequired { sign_in } => View::Assertion {
                device: None,
                options: &sign_in.options,
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

/// The first state once a browser is on the page: a challenge, unless the network
/// refuses.
pub fn start(
    head: Head,
    network: Option<NetworkAction>,
    sign_in: Box<WebauthnSignIn>,
) -> Transition {
    let state = match steps::network_denial(network) {
        Some(reason) => State::MfaFailed { reason },
        None => State::AssertionRequired { sign_in },
    };
    Transition::to(head.into_flow(FlowState::Passwordless(state)))
}

/// What `_links` offers now: no device to pick (the passkey picks itself).
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    let mut actions = steps::browser_actions(flow, flow.status(now_ms));
    actions.retain(|action| !matches!(action, Action::SelectDevice));
    actions
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Passwordless(state))
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
        (State::AuthenticationRequired, Event::Authenticate(entry)) => match *entry {
            Entry::Passwordless { network, sign_in } => {
                Ok(start(flow.head.clone(), network, sign_in))
            }
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        (State::AssertionRequired { .. }, Event::PasskeyChecked(verdict)) => {
            let mut head = flow.head.clone();
            let state = match *verdict {
                Verdict::Passed(owner) => {
                    head.otp_failures = 0;
                    head.user_id = owner.user;
                    head.policy_group = owner.policy_group;
                    State::Completed {
                        approval: Approval {
                            device_id: owner.device,
                            method: ApprovalMethod::of_passcode(owner.method),
                            decided_at_ms: now,
                        },
                    }
                }
                Verdict::Refused(retry) => {
                    head.otp_failures += 1;
                    if head.otp_failures >= ctx.max_otp_attempts {
                        State::MfaFailed {
                            reason: steps::WEBAUTHN_LOCKED_OUT.to_owned(),
                        }
                    } else {
                        State::AssertionRequired { sign_in: retry }
                    }
                }
                Verdict::Denied(reason) => State::MfaFailed { reason },
            };
            Ok(Transition::to(
                head.into_flow(FlowState::Passwordless(state)),
            ))
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
        (
            _,
            Event::PasskeyChecked(_) | Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. },
        ) => Err(FlowError::NotPending),
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
