//! Out of band / step up authentication from web (seed 004): the person picks a device
//! (or policy picks the only one), approves a push or types a passcode, and the browser
//! continues. Policy may let the sign-in through (a trusted network, a recent MFA), make
//! the person set up mandatory methods first, or pair the app on the spot. Pure: no I/O,
//! no clock; the engine stores the result and runs its effects.

use serde::{Deserialize, Serialize};

use super::machine::{
    AssertionVerdict, Context, Effect, Entry, Event, FirstPick, Transition, WebauthnSetup,
    WebauthnSignIn,
};
use super::steps::{self, Answered, Checked, Ending, Reached};
use super::{
    Action, Approval, ApprovalMethod, Enrolment, Flow, FlowState, Head, Method, PairingOffer, Push,
    View,
};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::otp::SentCode;
use crate::policy::NetworkAction;

/// Where an out-of-band flow stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for a browser or an app to enter (`authenticate`).
    AuthenticationRequired,
    /// The user has several devices and must pick one.
    DeviceSelectionRequired,
    /// A request is on the device (timed out by the clock).
    PushWaiting {
        /// The request.
        push: Push,
    },
    /// The device denied: final.
    PushRejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial (the wrong number picked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A one-time passcode is expected from this device.
    OtpRequired {
        /// The device (or backup) the code comes from.
        device: DeviceId,
        /// The code sent to it; none when the device computes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<SentCode>,
    },
    /// A WebAuthn authenticator is to sign the challenge.
    AssertionRequired {
        /// The device asked.
        device: DeviceId,
        /// The options and the ceremony state (boxed: large, and rare).
        sign_in: Box<WebauthnSignIn>,
    },
    /// Policy requires methods the user lacks: they must set them up.
    SetupRequired,
    /// The person picks which method to pair.
    PairingMethodRequired,
    /// The person gives the phone number or email address to pair.
    PairingTargetRequired {
        /// SMS, voice or email.
        method: Method,
    },
    /// A passcode proves the new method works before it is saved.
    ActivationRequired {
        /// The method being paired.
        method: Method,
        /// The phone number or email address (not for TOTP).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// The code sent to it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent: Option<SentCode>,
        /// The authenticator app's new secret (TOTP), shown while the flow lives.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        totp_secret: Option<String>,
    },
    /// A new WebAuthn credential is to be created (SECURITY_KEY or PLATFORM).
    WebauthnActivationRequired {
        /// The method being set up.
        method: Method,
        /// The options and the ceremony state (boxed: large, and rare).
        setup: Box<WebauthnSetup>,
    },
    /// A pairing key waits for the app (a user with no device pairs on the spot, or sets
    /// the app up as a mandatory method).
    MobileActivationRequired {
        /// The key and its expiry.
        pairing: PairingOffer,
    },
    /// The second factor was given; the browser continues.
    MfaCompleted {
        /// How.
        approval: Approval,
    },
    /// The second factor cannot be given.
    MfaFailed {
        /// Why.
        reason: String,
    },
    /// Policy let the sign-in through without a second factor.
    Skipped {
        /// Why.
        reason: String,
    },
    /// Done.
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
            Self::OtpRequired { device, sent } => View::Otp {
                device,
                sent: sent.as_ref(),
            },
            Self::AssertionRequired { device, sign_in } => View::Assertion {
                device: Some(device),
                options: &sign_in.options,
            },
            Self::SetupRequired => View::SetupRequired,
            Self::PairingMethodRequired => View::PairingMethod,
            Self::PairingTargetRequired { method } => View::PairingTarget(*method),
            Self::ActivationRequired {
                method,
                address,
                sent,
                totp_secret,
            } => View::Activation {
                method: *method,
                address: address.as_deref(),
                sent: sent.as_ref(),
                totp_secret: totp_secret.as_deref(),
            },
            Self::WebauthnActivationRequired { method, setup } => View::WebauthnActivation {
                method: *method,
                options: &setup.options,
            },
            Self::MobileActivationRequired { pairing } => View::MobileActivation(pairing),
            Self::MfaCompleted { approval } => View::MfaCompleted(approval),
            Self::MfaFailed { reason } => View::MfaFailed(reason),
            Self::Skipped { reason } => View::Completed {
                approval: None,
                skipped: Some(reason),
            },
            Self::Completed { approval } => View::Completed {
                approval: Some(approval),
                skipped: None,
            },
            Self::Failed { reason } => View::Failed(reason),
            Self::Canceled => View::Canceled,
        }
    }
}

/// What the service found out before the flow starts (each read once).
#[derive(Clone, Debug, Default)]
pub struct Start {
    /// What the network rules say about the client's address.
    pub network: Option<NetworkAction>,
    /// Deny rules exist but the federation server sent no address.
    pub address_required: bool,
    /// A recent MFA from the same browser and address (the skip window).
    pub recent_mfa: bool,
    /// The user has nothing at all to prove themselves with.
    pub has_nothing: bool,
    /// A pairing key for the app, when a user with no device may pair on the spot.
    pub enrol_on_the_spot: Option<PairingOffer>,
    /// The device policy's device selection goes to at once (the primary, or the only
    /// usable one), already reached through policy (push limit), if any.
    pub first: Option<FirstPick>,
    /// A mandatory method an operator issues (a hardware token) that the user lacks: the
    /// person cannot set it up, so the sign-in cannot meet the policy.
    pub token_missing: Option<Method>,
}

fn in_state(head: Head, state: State) -> Flow {
    head.into_flow(FlowState::Oob(state))
}

fn next(flow: &Flow, state: State) -> Flow {
    flow.clone().with_state(FlowState::Oob(state))
}

/// The first state: policy first (network, skip window, mandatory methods), then the
/// device: the one policy's device selection picked at once (`first`), else the person
/// picks.
pub fn start(head: Head, start: Start, ctx: &Context) -> Result<Transition, FlowError> {
    if start.address_required {
        let reason = "the network policy needs the client's address (clientIp)".to_owned();
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    if let Some(reason) = steps::network_denial(start.network) {
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    match start.network {
        Some(NetworkAction::Deny) => {}
        Some(NetworkAction::Bypass) => {
            let reason = "sign-in from a trusted network".to_owned();
            return Ok(Transition::to(in_state(head, State::Skipped { reason })));
        }
        Some(NetworkAction::Require) => {}
        None if start.recent_mfa => {
            let reason = "MFA completed recently from the same device and address".to_owned();
            return Ok(Transition::to(in_state(head, State::Skipped { reason })));
        }
        None => {}
    }
    if let Some(method) = start.token_missing {
        let reason = format!(
            "policy requires a {} device, which only an administrator can issue: the user \
             has none",
            method.as_str()
        );
        return Ok(Transition::to(in_state(head, State::MfaFailed { reason })));
    }
    let candidates = usable(&head);
    let backups = head.devices.iter().any(|device| device.backup);
    let setup_first = head.enrolment.is_some() && start.has_nothing;
    if candidates.is_empty()
        && !setup_first
        && !backups
        && head.devices.is_empty()
        && let Some(pairing) = start.enrol_on_the_spot
    {
        let state = State::MobileActivationRequired {
            pairing: pairing.clone(),
        };
        return Ok(Transition::to(in_state(head, state)).with(Effect::IssuePairingKey(pairing)));
    }
    let state = match (candidates.as_slice(), start.first) {
        ([], _) if setup_first => State::SetupRequired,
        ([], _) if backups => State::DeviceSelectionRequired,
        ([], _) => {
            let reason = head
                .devices
                .iter()
                .find_map(|device| device.unusable.clone())
                .unwrap_or_else(|| "the user has no paired device: register one first".to_owned());
            State::MfaFailed { reason }
        }
        (_, Some(FirstPick::Reached { device, pick })) => {
            let (head, reached, effects) = steps::reach(&head, device, *pick, ctx)?;
            let mut transition = Transition::to(in_state(head, reached_state(reached)));
            transition.effects = effects;
            return Ok(transition);
        }
        // Over the push limit: another method may still do, else the sign-in fails.
        (_, Some(FirstPick::Refused(_))) if head.devices.len() > 1 => {
            State::DeviceSelectionRequired
        }
        (_, Some(FirstPick::Refused(refusal))) => State::MfaFailed {
            reason: refusal.to_string(),
        },
        _ => State::DeviceSelectionRequired,
    };
    Ok(Transition::to(in_state(head, state)))
}

/// The devices a flow could push to or take a code from without asking (not backups).
pub fn usable(head: &Head) -> Vec<DeviceId> {
    head.devices
        .iter()
        .filter(|device| device.usable() && !device.backup)
        .map(|device| device.id.clone())
        .collect()
}

fn reached_state(reached: Reached) -> State {
    match reached {
        Reached::Push(push) => State::PushWaiting { push },
        Reached::Otp { device, sent } => State::OtpRequired { device, sent },
        Reached::Assertion { device, sign_in } => State::AssertionRequired { device, sign_in },
    }
}

/// What `_links` offers now.
pub fn actions(flow: &Flow, now_ms: u64) -> Vec<Action> {
    steps::browser_actions(flow, flow.status(now_ms))
}

/// The second factor was given: done, unless mandatory methods are still to be set up.
fn factor_given(head: Head, approval: Approval) -> Transition {
    let mut head = head;
    let state = match &mut head.enrolment {
        Some(enrolment) if !enrolment.missing.is_empty() => {
            enrolment.authenticated = Some(approval);
            State::SetupRequired
        }
        _ => State::MfaCompleted { approval },
    };
    Transition::to(head.into_flow(FlowState::Oob(state)))
}

/// A method was set up: on to the next missing one, or done.
fn enrolled(head: Head, method: Method, approval: Approval) -> Flow {
    let mut head = head;
    let state = match &mut head.enrolment {
        None => State::MfaCompleted { approval },
        Some(enrolment) => {
            enrolment.missing.retain(|missing| *missing != method);
            if enrolment.missing.is_empty() {
                // Setting methods up proves only that the person holds what they just
                // set up, not a second factor: a user who had nothing completes as
                // `enrolment`.
                let approval = enrolment.authenticated.clone().unwrap_or(Approval {
                    method: ApprovalMethod::Enrolment,
                    ..approval
                });
                State::MfaCompleted { approval }
            } else {
                State::PairingMethodRequired
            }
        }
    };
    head.into_flow(FlowState::Oob(state))
}

fn missing(enrolment: Option<&Enrolment>, method: Method) -> bool {
    enrolment.is_some_and(|enrolment| enrolment.missing.contains(&method))
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
    let not_allowed = |event: &Event| steps::not_allowed(event, flow, now);
    match (state, event) {
        (State::AuthenticationRequired, Event::Authenticate(entry)) => match *entry {
            Entry::Oob {
                devices,
                enrolment,
                start: decided,
            } => {
                let mut head = flow.head.clone();
                head.devices = devices;
                head.enrolment = enrolment;
                start(head, *decided, ctx)
            }
            other => Err(not_allowed(&Event::Authenticate(Box::new(other)))),
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
        (
            State::DeviceSelectionRequired
            | State::PushWaiting { .. }
            | State::OtpRequired { .. }
            | State::AssertionRequired { .. },
            Event::SelectDevice { device, pick },
        ) => {
            let (head, reached, effects) = steps::reach(&flow.head, device, pick, ctx)?;
            let mut transition =
                Transition::to(head.into_flow(FlowState::Oob(reached_state(reached))));
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
            State::ActivationRequired {
                method,
                address,
                sent: Some(_),
                totp_secret,
            },
            Event::CodeResent { sent, message },
        ) => {
            let mut next = next(
                flow,
                State::ActivationRequired {
                    method: *method,
                    address: address.clone(),
                    sent: Some(sent),
                    totp_secret: totp_secret.clone(),
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
                pairing: _,
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
                (head, Checked::Passed(approval)) => Ok(factor_given(head, approval)),
                (head, Checked::Wrong) => Ok(Transition::to(
                    head.into_flow(FlowState::Oob(state.clone())),
                )),
                (head, Checked::LockedOut) => Ok(Transition::to(head.into_flow(FlowState::Oob(
                    State::MfaFailed {
                        reason: steps::LOCKED_OUT.to_owned(),
                    },
                )))),
            }
        }
        (
            State::AssertionRequired { device: asked, .. },
            Event::AssertionChecked { device, verdict },
        ) if *asked == device => {
            let mut head = flow.head.clone();
            match verdict {
                AssertionVerdict::Passed => {
                    head.otp_failures = 0;
                    let method = head
                        .devices
                        .iter()
                        .find(|known| known.id == device)
                        .map_or(ApprovalMethod::SecurityKey, |known| {
                            ApprovalMethod::of_passcode(known.method)
                        });
                    let approval = Approval {
                        device_id: device,
                        method,
                        decided_at_ms: now,
                    };
                    Ok(factor_given(head, approval))
                }
                AssertionVerdict::Refused(retry) => {
                    head.otp_failures += 1;
                    let state = if head.otp_failures >= ctx.max_otp_attempts {
                        State::MfaFailed {
                            reason: steps::WEBAUTHN_LOCKED_OUT.to_owned(),
                        }
                    } else {
                        State::AssertionRequired {
                            device,
                            sign_in: retry,
                        }
                    };
                    Ok(Transition::to(head.into_flow(FlowState::Oob(state))))
                }
                AssertionVerdict::Cloned => {
                    for known in head.devices.iter_mut().filter(|known| known.id == device) {
                        known.unusable = Some(steps::CLONED.to_owned());
                    }
                    let state = State::MfaFailed {
                        reason: steps::CLONED.to_owned(),
                    };
                    Ok(Transition::to(head.into_flow(FlowState::Oob(state))))
                }
            }
        }
        (State::SetupRequired, Event::SetupStarted) => {
            Ok(Transition::to(next(flow, State::PairingMethodRequired)))
        }
        (
            State::PairingMethodRequired,
            Event::PairingMethodChosen {
                method,
                totp_secret,
                pairing,
                webauthn,
            },
        ) => {
            if !missing(flow.enrolment.as_ref(), method) {
                return Err(FlowError::MethodNotOffered);
            }
            if let Some(setup) = webauthn.filter(|_| method.is_webauthn()) {
                let state = State::WebauthnActivationRequired { method, setup };
                return Ok(Transition::to(next(flow, state)));
            }
            match (method, totp_secret, pairing) {
                (Method::Totp, Some(secret), _) => Ok(Transition::to(next(
                    flow,
                    State::ActivationRequired {
                        method,
                        address: None,
                        sent: None,
                        totp_secret: Some(secret),
                    },
                ))),
                (Method::PingidMobile, _, Some(pairing)) => Ok(Transition::to(next(
                    flow,
                    State::MobileActivationRequired {
                        pairing: pairing.clone(),
                    },
                ))
                .with(Effect::IssuePairingKey(pairing))),
                (Method::Sms | Method::Voice | Method::Email, _, _) => Ok(Transition::to(next(
                    flow,
                    State::PairingTargetRequired { method },
                ))),
                _ => Err(FlowError::MethodNotOffered),
            }
        }
        (
            State::PairingTargetRequired { method: expected },
            Event::TargetSubmitted {
                method,
                address,
                sent,
                message,
            },
        ) if *expected == method => {
            let mut next = next(
                flow,
                State::ActivationRequired {
                    method,
                    address: Some(address),
                    sent: Some(sent),
                    totp_secret: None,
                },
            );
            next.codes_sent += 1;
            Ok(Transition::to(next).with(Effect::SendCode(message)))
        }
        (State::ActivationRequired { method, .. }, Event::ActivationChecked { passed, device }) => {
            if !passed {
                let mut head = flow.head.clone();
                head.otp_failures += 1;
                let state = if head.otp_failures >= ctx.max_otp_attempts {
                    State::MfaFailed {
                        reason: steps::LOCKED_OUT.to_owned(),
                    }
                } else {
                    state.clone()
                };
                return Ok(Transition::to(head.into_flow(FlowState::Oob(state))));
            }
            let approval = Approval {
                device_id: device.id.clone(),
                method: ApprovalMethod::of_passcode(*method),
                decided_at_ms: now,
            };
            let mut head = flow.head.clone();
            head.otp_failures = 0;
            head.devices.push(super::mfa::otp_summary(&device));
            Ok(Transition::to(enrolled(head, *method, approval)).with(Effect::EnrolDevice(device)))
        }
        (
            State::WebauthnActivationRequired { method, .. },
            Event::WebauthnActivationChecked { device, retry },
        ) => match (device, retry) {
            (Some(device), _) => {
                let approval = Approval {
                    device_id: device.id.clone(),
                    method: ApprovalMethod::of_passcode(*method),
                    decided_at_ms: now,
                };
                let mut head = flow.head.clone();
                head.otp_failures = 0;
                head.devices.push(super::mfa::otp_summary(&device));
                Ok(Transition::to(enrolled(head, *method, approval))
                    .with(Effect::EnrolDevice(device)))
            }
            (None, Some(setup)) => {
                let mut head = flow.head.clone();
                head.otp_failures += 1;
                let state = if head.otp_failures >= ctx.max_otp_attempts {
                    State::MfaFailed {
                        reason: steps::WEBAUTHN_LOCKED_OUT.to_owned(),
                    }
                } else {
                    State::WebauthnActivationRequired {
                        method: *method,
                        setup,
                    }
                };
                Ok(Transition::to(head.into_flow(FlowState::Oob(state))))
            }
            (None, None) => Err(FlowError::NotPending),
        },
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
            let mut transition = match answered {
                Answered::Approved(approval) => factor_given(flow.head.clone(), approval),
                Answered::Rejected { push, reason } => {
                    Transition::to(next(flow, State::PushRejected { push, reason }))
                }
                Answered::Silent(_) => return Err(FlowError::NotPending),
            };
            transition.effects.extend(effects);
            Ok(transition)
        }
        (State::PushWaiting { push }, Event::PushUndelivered { auth_id }) => {
            let fallback = flow.policy.otp_fallback
                && push.auth_id == auth_id
                && status == super::Status::PushConfirmationWaiting
                && flow
                    .devices
                    .iter()
                    .any(|device| device.id == push.device_id && device.otp_enabled);
            if !fallback {
                return Err(FlowError::NotPending);
            }
            Ok(Transition::to(next(
                flow,
                State::OtpRequired {
                    device: push.device_id.clone(),
                    sent: None,
                },
            )))
        }
        (State::MfaCompleted { approval }, Event::Continue) => Ok(Transition::to(next(
            flow,
            State::Completed {
                approval: approval.clone(),
            },
        ))
        .with(Effect::RememberMfa)),
        (State::MobileActivationRequired { pairing }, Event::DevicePaired { device }) => {
            if status != super::Status::MobileActivationRequired {
                return Err(not_allowed(&Event::DevicePaired { device }));
            }
            let _ = pairing;
            let approval = Approval {
                device_id: device.id.clone(),
                method: ApprovalMethod::Registration,
                decided_at_ms: now,
            };
            let mut head = flow.head.clone();
            head.devices.push(device);
            Ok(Transition::to(enrolled(
                head,
                Method::PingidMobile,
                approval,
            )))
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
            let ending = steps::cancel(flow, status).ok_or_else(|| not_allowed(&Event::Cancel))?;
            let withdrawn = match state {
                State::MobileActivationRequired { pairing } => {
                    Some(Effect::WithdrawPairingKey(pairing.pairing_key.clone()))
                }
                _ => None,
            };
            let state = match ending {
                Ending::Canceled => State::Canceled,
                Ending::Failed(reason) => State::Failed { reason },
            };
            Ok(Transition::to(next(flow, state)).with_opt(withdrawn))
        }
        (_, Event::PickUp) => Ok(Transition::to(steps::pick_up(flow, now)?)),
        (_, Event::DeviceUnpaired { .. } | Event::DeviceAnswered { .. }) => {
            Err(FlowError::NotPending)
        }
        (_, event) => Err(not_allowed(&event)),
    }
}
