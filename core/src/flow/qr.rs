//! QR code sign-on (seed 004): the page shows a code carrying a one-time token and no
//! user is known; a trusted device scans it (`CREATED` → `CLAIMED`); a shared device lets
//! the person pick which of its users they are; the flow completes as that user — after
//! extra verification when policy asks (a silent push the app answers with its key, then
//! the person's approval, both through the one device check).
//!
//! The code shown is derived, not stored: an HMAC of the flow's QR secret and the current
//! time step, so that every `GET` shows a live code without writing (PingFederate's widget
//! only reads while it shows one). A code works during its step and the next (half the
//! configured lifetime each, so no code outlives it), and a claim spends its step and
//! every earlier one. A short code derived the same way (with a handle naming the flow)
//! is what a person types into the app when the camera cannot scan.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::machine::{Context, Effect, Entry, Event, Transition};
use super::steps::{self, Answered, Ending};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, Push, View};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::policy::NetworkAction;
use crate::user::UserId;

/// The short code's alphabet: Crockford's base 32 (no I, L, O, U), read back leniently.
pub const SHORT_CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of the handle that names the flow in a short code.
pub const HANDLE_LEN: usize = 4;
/// Characters of the short code's secret part.
const SHORT_SECRET_LEN: usize = 4;

/// Where a flow's codes come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrCodes {
    /// The flow's QR secret (base64url), sealed under the data key when one is configured.
    pub secret: String,
    /// The short code's first part: names the flow (registered in the store at start).
    pub handle: String,
    /// How long one code is shown, in ms (half the configured lifetime).
    pub step_ms: u64,
    /// The last step claimed: codes of it and of every earlier step never work again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_step: Option<u64>,
}

impl QrCodes {
    /// The step shown at `now_ms`.
    pub fn step_at(&self, now_ms: u64) -> u64 {
        now_ms / self.step_ms.max(1)
    }

    /// When the page shows the next code.
    pub fn next_code_at_ms(&self, now_ms: u64) -> u64 {
        (self.step_at(now_ms) + 1) * self.step_ms.max(1)
    }

    /// When the code shown at `now_ms` stops working (the end of the next step).
    pub fn expires_at_ms(&self, now_ms: u64) -> u64 {
        (self.step_at(now_ms) + 2) * self.step_ms.max(1)
    }

    /// Whether a code of `step` may claim the flow at `now_ms`.
    fn check_step(&self, step: u64, now_ms: u64) -> Result<(), FlowError> {
        let current = self.step_at(now_ms);
        if self.spent_step.is_some_and(|spent| step <= spent) {
            return Err(FlowError::QrCodeUsed);
        }
        if step > current {
            return Err(FlowError::QrCodeUnknown);
        }
        if step + 1 < current {
            return Err(FlowError::QrCodeExpired);
        }
        Ok(())
    }
}

fn mac(secret: &[u8], label: &str, step: u64) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(label.as_bytes());
    mac.update(&step.to_be_bytes());
    mac.finalize().into_bytes().into()
}

/// The token of `step` for the flow `flow_id` (`<flowId>.<step>.<mac>`, 128 bits of MAC).
pub fn token(flow_id: &str, secret: &[u8], step: u64) -> String {
    let mac = mac(secret, "assent-qr-token", step);
    format!("{flow_id}.{step}.{}", URL_SAFE_NO_PAD.encode(&mac[..16]))
}

/// The short code of `step`: the handle, a dash, then four characters of MAC.
pub fn short_code(handle: &str, secret: &[u8], step: u64) -> String {
    let mac = mac(secret, "assent-qr-short-code", step);
    let secret_part: String = mac[..SHORT_SECRET_LEN]
        .iter()
        .map(|byte| char::from(SHORT_CODE_ALPHABET[usize::from(byte % 32)]))
        .collect();
    format!("{handle}-{secret_part}")
}

/// A typed short code in its canonical form (`HHHH-CCCC`), or `None` when it cannot be
/// one: case, spaces and dashes do not matter, and O, I and L read as 0, 1 and 1.
pub fn normalise_short_code(typed: &str) -> Option<String> {
    let mut canonical = String::new();
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !SHORT_CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        canonical.push(c);
    }
    if canonical.len() != HANDLE_LEN + SHORT_SECRET_LEN {
        return None;
    }
    canonical.insert(HANDLE_LEN, '-');
    Some(canonical)
}

/// Where a QR sign-on stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The code waits to be scanned.
    CodeShown {
        /// Where the codes shown come from.
        codes: QrCodes,
    },
    /// A shared device scanned the code; the person picks which of its users they are.
    UserSelection {
        /// The device that scanned.
        device: DeviceId,
        /// Its users to choose from.
        users: Vec<UserId>,
        /// The codes, with the step scanned spent: the selection presents it again.
        codes: QrCodes,
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
            Self::CodeShown { codes } => View::QrCode {
                codes,
                claimed_until_ms: None,
            },
            Self::UserSelection {
                codes,
                expires_at_ms,
                ..
            } => View::QrCode {
                codes,
                claimed_until_ms: Some(*expires_at_ms),
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
pub fn start(head: Head, network: Option<NetworkAction>, codes: QrCodes) -> Transition {
    let state = match steps::network_denial(network) {
        Some(reason) => State::MfaFailed { reason },
        None => State::CodeShown { codes },
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

/// Whether a scan may claim the flow now: a code waits, or a selection was left to expire.
fn claimable(state: &State, now_ms: u64) -> bool {
    match state {
        State::CodeShown { .. } => true,
        State::UserSelection { expires_at_ms, .. } => *expires_at_ms <= now_ms,
        _ => false,
    }
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
            Entry::Qr { network, codes } => Ok(start(flow.head.clone(), network, codes)),
            other => Err(steps::not_allowed(
                &Event::Authenticate(Box::new(other)),
                flow,
                now,
            )),
        },
        // A code is claimed; an unfinished selection that expired gives way to a new one.
        (
            State::CodeShown { codes } | State::UserSelection { codes, .. },
            Event::QrScanned {
                device,
                step,
                users,
                selection_ms,
            },
        ) if claimable(state, now) => {
            codes.check_step(step, now)?;
            Ok(Transition::to(next(
                flow,
                State::UserSelection {
                    device,
                    users,
                    codes: QrCodes {
                        spent_step: Some(step),
                        ..codes.clone()
                    },
                    expires_at_ms: now + selection_ms,
                },
            )))
        }
        (_, Event::QrScanned { .. }) => Err(FlowError::QrCodeUsed),
        (
            State::UserSelection {
                device: scanner,
                users,
                codes,
                expires_at_ms,
            },
            Event::QrUserSelected {
                device,
                user,
                step,
                verify_with,
            },
        ) => {
            if step.is_some_and(|step| Some(step) != codes.spent_step) {
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
        (_, event) => Err(steps::not_allowed(&event, flow, now)),
    }
}
