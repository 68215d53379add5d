//! OOB from mobile (seed 004): a new, untrusted device of a known user wants to pair.
//! With "additional trusted devices" = `verify_with_primary`, the primary approves first
//! (a push, or a passcode for an SMS, voice or email primary) and only then is a pairing
//! key issued; with `pair_individually` the key is issued at once, as in a registration.
//! The primary's approval goes through the same check as every device decision: the
//! number picked and the parameters hash count here too.
//!
//! A flow of another kind that a native app not trusted yet enters (`authenticate
//! {mobilePayload}` with its new key) continues here: admitted the same way, the app is
//! then shown `MOBILE_PAIRING_REQUIRED` with a `serverPayload` carrying the pairing key,
//! pairs that very key through its SDK, and posts `continueAuthentication`.

use serde::{Deserialize, Serialize};

use super::machine::{AppArrival, Context, Effect, Entry, Event, FirstPick, Transition};
use super::steps::{self, Answered, Checked, Ending, Reached};
use super::{Action, Approval, ApprovalMethod, Flow, FlowState, Head, PairingOffer, Push, View};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::otp::SentCode;
use crate::policy::NetworkAction;

/// Where a new device's admission stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The person picks which trusted device verifies the new one.
    DeviceSelectionRequired,
    /// The primary is asked to approve (timed out by the clock).
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The primary denied: final.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A passcode from the primary (an SMS, voice or email primary).
    OtpRequired {
        /// The primary.
        device: DeviceId,
        /// The code sent to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<SentCode>,
    },
    /// Admitted: the new device may pair with this key.
    MobileActivationRequired {
        /// The key and its expiry.
        pairing: PairingOffer,
    },
    /// Admitted: the app that entered pairs its key with this one (`serverPayload`), then
    /// continues.
    AppPairingRequired {
        /// The key and its expiry.
        pairing: PairingOffer,
        /// The challenge `serverPayload` carries.
        nonce: String,
        /// Set once the app paired: `continueAuthentication` completes with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paired: Option<Approval>,
    },
    /// It cannot be admitted (no primary, policy, network).
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// The new device is paired.
    Completed {
        /// The pairing.
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
            Self::AppPairingRequired {
                pairing,
                nonce,
                paired,
            } => View::MobilePayload {
                nonce,
                pairing: Some((pairing, paired.is_some())),
            },
            Self::PushWaiting { push } => View::Push(push),
            Self::PushRejected { push, reason } => View::PushRejected {
                push,
                reason: reason.as_deref(),
            },
            Self::OtpRequired { device, sent } => View::Otp {
                device,
                sent: sent.as_ref(),
            },
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

/// How a new device is admitted.
#[derive(Clone, Debug)]
pub enum Admission {
    /// Paired individually: the key at once.
    Individually(PairingOffer),
    /// Verified by a trusted device: the one policy's device selection went to at once,
    /// reached (or refused) through policy; `None` when the person picks, or when the
    /// user has no trusted device (the flow's devices are empty).
    ByPrimary(Option<FirstPick>),
}

fn in_state(head: Head, state: State) -> Flow {
    head.into_flow(FlowState::NewDevice(state))
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::NewDevice(state))
}

fn reached_state(reached: Reached) -> Result<State, FlowError> {
    match reached {
        Reached::Push(push) => Ok(State::PushWaiting { push }),
        Reached::Otp { device, sent } => Ok(State::OtpRequired { device, sent }),
        // Trusted devices verify a new one: a security key is not one of them.
        Reached::Assertion { .. } => Err(FlowError::UnknownDevice),
    }
}

/// The first state.
pub fn start(
    head: Head,
    network: Option<NetworkAction>,
    admission: Admission,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    if let Some(reason) = steps::network_denial(network) {
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    match admission {
        Admission::Individually(pairing) => admitted_at_once(head, pairing),
        Admission::ByPrimary(None) if steps_usable(&head) => Ok(Transition::to(in_state(
            head,
            State::DeviceSelectionRequired,
        ))),
        Admission::ByPrimary(None) => Ok(Transition::to(in_state(
            head,
            State::MfaFailed {
                reason: "the user has no primary device to verify the new one with".to_owned(),
            },
        ))),
        Admission::ByPrimary(Some(FirstPick::Refused(refusal))) => Ok(Transition::to(in_state(
            head,
            State::MfaFailed {
                reason: refusal.to_string(),
            },
        ))),
        Admission::ByPrimary(Some(FirstPick::Reached { device, pick })) => {
            let (head, reached, effects) = steps::reach(&head, device, *pick, ctx)?;
            let mut transition = Transition::to(in_state(head, reached_state(reached)?));
            transition.effects = effects;
            Ok(transition)
        }
    }
}

/// Whether any of the flow's devices could verify the new one.
fn steps_usable(head: &Head) -> bool {
    !super::oob::usable(head).is_empty()
}

/// What `_links` offers now.
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    steps::browser_actions(flow, flow.status(now_ms))
}

/// Admitted: the key goes with the transition that shows it (to the app that entered,
/// in its `serverPayload`; else as a pairing key to type or scan).
fn admitted(
    flow: &Flow,
    head: Head,
    pairing: Option<PairingOffer>,
) -> Result<Transition, FlowError> {
    let _ = flow;
    admitted_at_once(head, pairing.ok_or(FlowError::NotPending)?)
}

fn admitted_at_once(head: Head, pairing: PairingOffer) -> Result<Transition, FlowError> {
    let state = match &head.entering_app {
        Some(app) => State::AppPairingRequired {
            pairing: pairing.clone(),
            nonce: app.nonce.clone(),
            paired: None,
        },
        None => State::MobileActivationRequired {
            pairing: pairing.clone(),
        },
    };
    Ok(Transition::to(in_state(head, state)).with(Effect::IssuePairingKey(pairing)))
}

/// An app not trusted yet entered a flow (of any kind that takes one): it is admitted as
/// a new device is, and remembered so that only its key may pair.
pub(super) fn app_arrived(
    flow: &Flow,
    arrival: AppArrival,
    ctx: &Context,
) -> Result<Transition, FlowError> {
    let mut head = flow.head.clone();
    if let Some(devices) = arrival.devices {
        head.devices = devices;
    }
    head.entering_app = Some(super::EnteringApp {
        key: arrival.key,
        nonce: arrival.nonce,
    });
    start(head, arrival.network, arrival.admission, ctx)
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
            Entry::NewDevice {
                devices,
                network,
                admission,
            } => {
                let mut head = flow.head.clone();
                if let Some(devices) = devices {
                    head.devices = devices;
                }
                start(head, network, admission, ctx)
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
            app_arrived(flow, *arrival, ctx)
        }
        (
            State::AppPairingRequired {
                pairing,
                nonce,
                paired: None,
            },
            Event::DevicePaired { device },
        ) if status == super::Status::MobilePairingRequired => {
            let approval = Approval {
                device_id: device.id.clone(),
                method: ApprovalMethod::Registration,
                decided_at_ms: now,
            };
            let mut next = next(
                flow,
                State::AppPairingRequired {
                    pairing: pairing.clone(),
                    nonce: nonce.clone(),
                    paired: Some(approval),
                },
            );
            next.devices.push(device);
            Ok(Transition::to(next))
        }
        (State::AppPairingRequired { paired, .. }, Event::Continue)
            if status == super::Status::MobilePairingRequired =>
        {
            let approval = paired.clone().ok_or(FlowError::NotPaired)?;
            Ok(Transition::to(next(flow, State::Completed { approval })))
        }
        (
            State::DeviceSelectionRequired | State::PushWaiting { .. } | State::OtpRequired { .. },
            Event::SelectDevice { device, pick },
        ) => {
            let (head, reached, effects) = steps::reach(&flow.head, device, pick, ctx)?;
            let mut transition = Transition::to(in_state(head, reached_state(reached)?));
            transition.effects = effects;
            Ok(transition)
        }
        (
            State::OtpRequired {
                device,
                sent: Some(_),
            },
            Event::CodeResent { sent, message },
        ) => {
            let mut next = next(
                flow,
                State::OtpRequired {
                    device: device.clone(),
                    sent: Some(sent),
                },
            );
            next.codes_sent += 1;
            Ok(Transition::to(next).with(Effect::SendCode(message)))
        }
        (
            State::OtpRequired { .. } | State::PushWaiting { .. },
            Event::OtpChecked {
                device,
                passed,
                pairing,
            },
        ) => {
            let accepts = flow.allowed_actions(now).contains(&Action::CheckOtp)
                && flow.selected_device() == Some(&device);
            if !accepts {
                return Err(FlowError::NotAllowed {
                    action: "checkOtp",
                    status: status.as_str(),
                });
            }
            match steps::check_code(flow, &device, passed, ctx) {
                (head, Checked::Passed(_)) => admitted(flow, head, pairing),
                (head, Checked::Wrong) => Ok(Transition::to(
                    head.into_flow(FlowState::NewDevice(state.clone())),
                )),
                (head, Checked::LockedOut) => Ok(Transition::to(in_state(
                    head,
                    State::MfaFailed {
                        reason: steps::LOCKED_OUT.to_owned(),
                    },
                ))),
            }
        }
        (State::PushWaiting { .. }, Event::DeviceAnswered { answer, fresh }) => {
            let (answered, effects) = steps::answer(flow, &answer, ctx)?;
            let mut transition = match answered {
                Answered::Approved(_) => admitted(flow, flow.head.clone(), fresh.pairing)?,
                Answered::Rejected { push, reason } => {
                    Transition::to(next(flow, State::PushRejected { push, reason }))
                }
                Answered::Silent(_) => return Err(FlowError::NotPending),
            };
            transition.effects.extend(effects);
            Ok(transition)
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
            let withdrawn = match state {
                State::MobileActivationRequired { pairing }
                | State::AppPairingRequired {
                    pairing,
                    paired: None,
                    ..
                } => Some(Effect::WithdrawPairingKey(pairing.pairing_key.clone())),
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
