//! QR code sign-on (seed 004): the page shows a code carrying a one-time token and no
//! user is known; a trusted device scans it (`CREATED` → `CLAIMED`); a shared device lets
//! the person pick which of its users they are; the flow completes as that user — after
//! extra verification when policy asks (a silent push the app answers with its key, then
//! the person's approval, both through the one device check). An unscanned code expires
//! and the browser's poll shows a new one.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::machine::{Context, Effect, Entry, Event, Transition};
use super::steps::{self, Answered, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, Push, View};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::policy::NetworkAction;
use crate::user::UserId;

/// Where a QR sign-on stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The code waits to be scanned.
    CodeShown {
        /// The one-time token the code carries (`<flowId>.<secret>`).
        token: String,
        /// When it stops working; a poll after that shows a new one.
        expires_at_ms: u64,
    },
    /// A shared device scanned the code; the person picks which of its users they are.
    UserSelection {
        /// The device that scanned.
        device: DeviceId,
        /// Its users to choose from.
        users: Vec<UserId>,
        /// The token scanned: the selection must present it again.
        token: String,
        /// When an unfinished selection gives way to a new code.
        expires_at_ms: u64,
    },
    /// Extra verification: a silent push, then the person's approval.
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The person denied on the device: final.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Approved after the extra verification; the browser continues.
    MfaCompleted {
        /// How.
        approval: Approval,
    },
    /// Refused (the network policy).
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// Signed in as the user picked.
    Completed {
        /// How.
        approval: Approval,
    },
    /// Ended without success after a rejection.
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
            Self::CodeShown {
                token,
                expires_at_ms,
            } => View::QrCode {
                token,
                expires_at_ms: *expires_at_ms,
            },
            Self::UserSelection { expires_at_ms, .. } => View::QrClaimed {
                expires_at_ms: *expires_at_ms,
            },
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

/// The first state: a code, unless the network refuses.
pub fn start(
    head: Head,
    network: Option<NetworkAction>,
    token: String,
    expires_at_ms: u64,
) -> Transition {
    let state = match steps::network_denial(network) {
        Some(reason) => State::MfaFailed { reason },
        None => State::CodeShown {
            token,
            expires_at_ms,
        },
    };
    Transition::to(head.into_flow(FlowState::Qr(state)))
}

/// What `_links` offers now: the page waits and may cancel; it never picks or pushes to
/// a device itself (the scanning device does).
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    let mut actions = steps::browser_actions(flow, flow.status(now_ms));
    actions.retain(|action| !matches!(action, Action::SelectDevice | Action::CheckOtp));
    actions
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Qr(state))
}

fn same_secret(expected: &str, presented: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Whether the code (or the selection it led to) has expired at `now_ms`.
pub fn code_expired(flow: &Flow, now_ms: u64) -> bool {
    matches!(
        flow.state(),
        FlowState::Qr(State::CodeShown { expires_at_ms, .. } | State::UserSelection { expires_at_ms, .. })
            if *expires_at_ms <= now_ms
    )
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
            Entry::Qr {
                network,
                token,
                expires_at_ms,
            } => Ok(start(flow.head.clone(), network, token, expires_at_ms)),
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        (
            State::CodeShown { expires_at_ms, .. } | State::UserSelection { expires_at_ms, .. },
            Event::QrRenewed {
                token,
                expires_at_ms: renewed,
            },
        ) if *expires_at_ms <= now => Ok(Transition::to(next(
            flow,
            State::CodeShown {
                token,
                expires_at_ms: renewed,
            },
        ))),
        (
            State::CodeShown {
                token: expected,
                expires_at_ms,
            },
            Event::QrScanned {
                device,
                token,
                users,
                selection_ms,
            },
        ) => {
            if !same_secret(expected, &token) {
                return Err(FlowError::QrCodeUnknown);
            }
            if *expires_at_ms <= now {
                return Err(FlowError::QrCodeExpired);
            }
            Ok(Transition::to(next(
                flow,
                State::UserSelection {
                    device,
                    users,
                    token,
                    expires_at_ms: now + selection_ms,
                },
            )))
        }
        (_, Event::QrScanned { .. }) => Err(FlowError::QrCodeUsed),
        (
            State::UserSelection {
                device: scanner,
                users,
                token: scanned,
                expires_at_ms,
            },
            Event::QrUserSelected {
                device,
                user,
                token,
                verify_with,
            },
        ) => {
            if token.is_some_and(|token| !same_secret(scanned, &token)) {
                return Err(FlowError::QrCodeUnknown);
            }
            if *scanner != device.id {
                return Err(FlowError::QrOtherDevice);
            }
            if *expires_at_ms <= now {
                return Err(FlowError::QrSelectionClosed("the selection has expired"));
            }
            if !users.contains(&user) {
                return Err(FlowError::QrUserNotPaired);
            }
            let mut head = flow.head.clone();
            head.user_id = user;
            let device_id = device.id.clone();
            head.devices = vec![device];
            let Some(auth_id) = verify_with else {
                let approval = Approval {
                    device_id,
                    method: ApprovalMethod::Qr,
                    decided_at_ms: now,
                };
                return Ok(Transition::to(
                    head.into_flow(FlowState::Qr(State::Completed { approval })),
                ));
            };
            // Extra verification: first a silent push the app answers with its key alone.
            let push = Push {
                auth_id: auth_id.clone(),
                device_id: device_id.clone(),
                sent_at_ms: now,
                expires_at_ms: now + ctx.push_timeout_ms,
                silent: true,
                number: None,
                choices: Vec::new(),
            };
            head.pushes_sent += 1;
            Ok(
                Transition::to(head.into_flow(FlowState::Qr(State::PushWaiting { push }))).with(
                    Effect::SendPush {
                        device: device_id,
                        auth_id,
                    },
                ),
            )
        }
        (_, Event::QrUserSelected { .. }) => {
            Err(FlowError::QrSelectionClosed("no user selection is waiting"))
        }
        (State::PushWaiting { .. }, Event::DeviceAnswered { answer, fresh }) => {
            let (answered, effects) = steps::answer(flow, &answer, ctx)?;
            let mut transition = match answered {
                // The key answered: now the person, with the time the first request had.
                Answered::Silent(silent) => {
                    let push = Push {
                        auth_id: fresh.auth_id.clone(),
                        sent_at_ms: now,
                        expires_at_ms: now + (silent.expires_at_ms - silent.sent_at_ms),
                        silent: false,
                        ..silent
                    };
                    Transition::to(next(flow, State::PushWaiting { push })).with(Effect::SendPush {
                        device: answer.device().clone(),
                        auth_id: fresh.auth_id,
                    })
                }
                Answered::Approved(approval) => {
                    Transition::to(next(flow, State::MfaCompleted { approval }))
                }
                Answered::Rejected { push, reason } => {
                    Transition::to(next(flow, State::PushRejected { push, reason }))
                }
            };
            transition.effects.extend(effects);
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
            Ok(Transition::to(next(
                flow,
                State::MfaFailed {
                    reason: "the device was unpaired while the request waited for it".to_owned(),
                },
            )))
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
        (_, Event::QrRenewed { .. }) => Err(FlowError::NotPending),
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
