//! Steps several kinds share, as pure functions over the flow's head: reaching a chosen
//! device (a push or a passcode), checking a passcode, what `_links` offers while a
//! second factor is under way, and the ending a cancel leads to. Each kind maps their
//! outcomes onto its own states.

use super::machine::{Context, Effect, Pick, WebauthnSignIn};
use super::{Action, Approval, ApprovalMethod, DeviceSummary, Flow, Head, Push, Status};
use crate::error::FlowError;
use crate::ids::DeviceId;
use crate::otp::SentCode;

/// How a chosen device is waited on.
#[derive(Debug)]
pub(super) enum Reached {
    /// A push is on it.
    Push(Push),
    /// A passcode is expected from it.
    Otp {
        /// The device.
        device: DeviceId,
        /// The code sent to it, if any.
        sent: Option<SentCode>,
    },
    /// A WebAuthn authenticator is to sign the challenge.
    Assertion {
        /// The device.
        device: DeviceId,
        /// The ceremony.
        sign_in: Box<WebauthnSignIn>,
    },
}

/// The device the person picked, if it is one of the flow's and policy lets it be used.
pub(super) fn selectable<'a>(
    head: &'a Head,
    device: &DeviceId,
) -> Result<&'a DeviceSummary, FlowError> {
    let chosen = head
        .devices
        .iter()
        .find(|known| known.id == *device)
        .ok_or(FlowError::UnknownDevice)?;
    match &chosen.unusable {
        Some(reason) => Err(FlowError::DeviceRefused(reason.clone())),
        None => Ok(chosen),
    }
}

/// Reaches `device` the way `pick` says: a push (within the flow's cap) or a passcode.
pub(super) fn reach(
    head: &Head,
    device: DeviceId,
    pick: Pick,
    ctx: &Context,
) -> Result<(Head, Reached, Vec<Effect>), FlowError> {
    let chosen = selectable(head, &device)?;
    let mut head = head.clone();
    match pick {
        Pick::Push {
            auth_id,
            number_match,
        } => {
            if !chosen.push_enabled {
                return Err(FlowError::UnknownDevice);
            }
            if head.pushes_sent >= ctx.max_pushes {
                return Err(FlowError::TooManyPushes);
            }
            head.pushes_sent += 1;
            let (number, choices) = number_match.map_or((None, Vec::new()), |(number, choices)| {
                (Some(number), choices)
            });
            let push = Push {
                auth_id: auth_id.clone(),
                device_id: device.clone(),
                sent_at_ms: ctx.now_ms,
                expires_at_ms: ctx.now_ms + ctx.push_timeout_ms,
                silent: false,
                number,
                choices,
            };
            let effect = Effect::SendPush { device, auth_id };
            Ok((head, Reached::Push(push), vec![effect]))
        }
        Pick::Code { sent, message } => {
            if !chosen.otp_enabled {
                return Err(FlowError::UnknownDevice);
            }
            head.codes_sent += u32::from(sent.is_some());
            let effects = message.map(Effect::SendCode).into_iter().collect();
            Ok((head, Reached::Otp { device, sent }, effects))
        }
        Pick::Assertion(sign_in) => {
            if !chosen.method.is_webauthn() {
                return Err(FlowError::UnknownDevice);
            }
            Ok((head, Reached::Assertion { device, sign_in }, Vec::new()))
        }
    }
}

/// What a checked passcode leads to.
#[derive(Debug)]
pub(super) enum Checked {
    /// Right: the second factor is given.
    Passed(Approval),
    /// Wrong, with tries left.
    Wrong,
    /// Wrong, and the last try: the authentication fails.
    LockedOut,
}

/// Counts a passcode check against the flow's tries.
pub(super) fn check_code(
    flow: &Flow,
    device: &DeviceId,
    passed: bool,
    ctx: &Context,
) -> (Head, Checked) {
    let mut head = flow.head.clone();
    if passed {
        head.otp_failures = 0;
        let method = flow
            .devices
            .iter()
            .find(|known| known.id == *device)
            .map_or(ApprovalMethod::MobileOtp, |known| {
                ApprovalMethod::of_passcode(known.method)
            });
        let approval = Approval {
            device_id: device.clone(),
            method,
            decided_at_ms: ctx.now_ms,
        };
        return (head, Checked::Passed(approval));
    }
    head.otp_failures += 1;
    if head.otp_failures >= ctx.max_otp_attempts {
        (head, Checked::LockedOut)
    } else {
        (head, Checked::Wrong)
    }
}

/// The reason a flow fails with after too many wrong passcodes.
pub(super) const LOCKED_OUT: &str = "too many wrong passcodes";

/// Why a sign-in fails, and its authenticator is disabled, when an assertion's signature
/// counter did not move forward.
pub(super) const CLONED: &str = "the security key's signature counter went backwards: it may \
     have been cloned, and it is disabled until an administrator removes it";

/// The reason a flow fails with after too many refused WebAuthn answers.
pub(super) const WEBAUTHN_LOCKED_OUT: &str = "too many refused security key answers";

/// Whether the selected device may give a code now: `useCode` while the push waits, the
/// OTP fallback once it timed out.
fn code_instead(flow: &Flow, allowed: bool) -> bool {
    allowed
        && flow
            .selected_device()
            .and_then(|id| flow.devices.iter().find(|device| device.id == *id))
            .is_some_and(|device| device.otp_enabled)
}

/// What `_links` offers while a second factor is under way (device selection, push,
/// passcode, setting methods up), and at the ends every browser-driven kind shares.
pub(super) fn browser_actions(flow: &Flow, status: Status) -> Vec<Action> {
    use Action::*;
    match status {
        Status::AuthenticationRequired => vec![Authenticate, CancelAuthentication],
        Status::DeviceSelectionRequired if flow.manage_devices => vec![
            SelectDevice,
            SetDefaultDevice,
            UpdateDeviceNickname,
            RemoveDevice,
            CancelAuthentication,
        ],
        Status::DeviceSelectionRequired => vec![SelectDevice, CancelAuthentication],
        Status::MobileActivationRequired => vec![Poll, CancelAuthentication, CancelDevicePairing],
        // An app pairing its new key continues once paired; a trusted app (device
        // authorization) answers the challenge.
        Status::MobilePairingRequired => match flow.view() {
            super::View::MobilePayload {
                pairing: Some(_), ..
            } => vec![ContinueAuthentication, CancelAuthentication],
            _ => vec![Authenticate, CancelAuthentication],
        },
        Status::AuthenticationCodeResponseRequired => vec![Poll, CancelAuthentication],
        Status::PushConfirmationWaiting if code_instead(flow, flow.policy.use_code) => {
            vec![Poll, CheckOtp, SelectDevice, CancelAuthentication]
        }
        Status::PushConfirmationWaiting => vec![Poll, SelectDevice, CancelAuthentication],
        Status::PushConfirmationTimedOut if code_instead(flow, flow.policy.otp_fallback) => {
            vec![CheckOtp, SelectDevice, CancelAuthentication]
        }
        Status::PushConfirmationTimedOut => vec![SelectDevice, CancelAuthentication],
        Status::OtpRequired => match flow.view() {
            super::View::Otp { sent: Some(_), .. } => {
                vec![
                    CheckOtp,
                    Resend,
                    ResendOtp,
                    SelectDevice,
                    CancelAuthentication,
                ]
            }
            _ => vec![CheckOtp, SelectDevice, CancelAuthentication],
        },
        Status::MfaSetupRequired => vec![SetupMfa, CancelAuthentication],
        Status::DevicePairingMethodRequired => vec![
            SelectDevicePairingMethod,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::SmsPairingTargetRequired => {
            vec![SubmitSmsTarget, CancelDevicePairing, CancelAuthentication]
        }
        Status::VoicePairingTargetRequired => {
            vec![SubmitVoiceTarget, CancelDevicePairing, CancelAuthentication]
        }
        Status::EmailPairingTargetRequired => {
            vec![SubmitEmailTarget, CancelDevicePairing, CancelAuthentication]
        }
        Status::SmsActivationRequired => vec![
            ActivateSmsDevice,
            ResendOtp,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::VoiceActivationRequired => vec![
            ActivateVoiceDevice,
            ResendOtp,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::EmailActivationRequired => vec![
            ActivateEmailDevice,
            ResendOtp,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::TotpActivationRequired => {
            vec![
                ActivateTotpDevice,
                CancelDevicePairing,
                CancelAuthentication,
            ]
        }
        Status::SecurityKeyActivationRequired => vec![
            ActivateSecurityKeyDevice,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::PlatformActivationRequired => vec![
            ActivatePlatformDevice,
            CancelDevicePairing,
            CancelAuthentication,
        ],
        Status::AssertionRequired => vec![CheckAssertion, SelectDevice, CancelAuthentication],
        Status::PushConfirmationRejected | Status::MfaFailed => vec![CancelAuthentication],
        Status::MfaCompleted => vec![ContinueAuthentication],
        Status::Completed | Status::Resume | Status::Failed | Status::Canceled => vec![],
    }
}

/// How a cancel ends a flow that is in `status`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// The person gave up.
    Canceled,
    /// Canceling after a denial or a failure ends the flow as failed: the federation
    /// server must not read a denial as a mere change of mind.
    Failed(String),
}

/// The ending a cancel leads to, or `None` when the flow has already ended.
pub(super) fn cancel(flow: &Flow, status: Status) -> Option<Ending> {
    match status {
        Status::PushConfirmationRejected | Status::MfaFailed => Some(Ending::Failed(
            flow.failure_reason()
                .unwrap_or("the second factor failed")
                .to_owned(),
        )),
        Status::MfaCompleted
        | Status::Completed
        | Status::Resume
        | Status::Failed
        | Status::Canceled => None,
        _ => Some(Ending::Canceled),
    }
}

/// Marks the result as picked up, once, when the flow has ended.
pub(super) fn pick_up(flow: &Flow, now_ms: u64) -> Result<Flow, FlowError> {
    let status = flow.status(now_ms);
    if !status.is_terminal() {
        return Err(FlowError::NotTerminal(status.as_str()));
    }
    if flow.result_picked_up {
        return Err(FlowError::AlreadyPickedUp);
    }
    let mut next = flow.clone();
    next.result_picked_up = true;
    Ok(next)
}

/// The error for an event a kind does not take in its current status.
pub(super) fn not_allowed(event: &super::Event, flow: &Flow, now_ms: u64) -> FlowError {
    FlowError::NotAllowed {
        action: event.name(),
        status: flow.status(now_ms).as_str(),
    }
}

/// What a verified device answer leads to.
#[derive(Debug)]
pub(super) enum Answered {
    /// Approved by the person.
    Approved(Approval),
    /// Denied (or the wrong number picked, with the reason).
    Rejected {
        /// The request denied.
        push: Push,
        /// Why, when not a plain denial.
        reason: Option<String>,
    },
    /// A silent push answered by the app's key alone.
    Silent(Push),
}

/// Runs a device's answer through the one check ([`super::verify::check`]) and says what it
/// means; the effects take the request off the device's list and count the decision.
pub(super) fn answer(
    flow: &Flow,
    answer: &super::verify::DeviceAnswer,
    ctx: &Context,
) -> Result<(Answered, Vec<Effect>), FlowError> {
    use super::verify::Verdict;
    let (push, verdict) = super::verify::check(flow, answer, ctx.now_ms)?;
    let effects = vec![
        Effect::ClearPending {
            device: push.device_id.clone(),
            auth_id: push.auth_id.clone(),
        },
        Effect::Record(super::Metric::Decided(answer.decision())),
    ];
    let answered = match verdict {
        Verdict::Approved => Answered::Approved(Approval {
            device_id: answer.device().clone(),
            method: ApprovalMethod::Push,
            decided_at_ms: ctx.now_ms,
        }),
        Verdict::Denied => Answered::Rejected {
            push: push.clone(),
            reason: None,
        },
        Verdict::WrongNumber => Answered::Rejected {
            push: push.clone(),
            reason: Some("the wrong number was picked on the device".to_owned()),
        },
        Verdict::SilentVerified => Answered::Silent(push.clone()),
    };
    Ok((answered, effects))
}

/// A flow that ends this way when the network policy denies the sign-in.
pub(super) fn network_denial(network: Option<crate::policy::NetworkAction>) -> Option<String> {
    (network == Some(crate::policy::NetworkAction::Deny))
        .then(|| "sign-in from this network is not allowed".to_owned())
}
