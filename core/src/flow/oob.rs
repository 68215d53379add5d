//! The state machine of out-of-band and transaction flows (they differ only in what the
//! device shows). Pure: no I/O, no clock; the caller supplies the time and applies the
//! result with one compare-and-set.

use super::{Action, Approval, DeviceSummary, Flow, FlowState, Method, Push, Status};
use crate::error::FlowError;
use crate::ids::{AuthId, DeviceId};
use crate::otp::SentCode;

/// Something that happens to a flow.
#[derive(Clone, Debug)]
pub enum Event {
    /// The person picked a device (or retries after a time-out): push to it.
    SelectDevice {
        /// The device.
        device: DeviceId,
        /// A fresh request id for the push.
        auth_id: AuthId,
        /// How long the device has to answer.
        timeout_ms: u64,
        /// How many pushes the flow may send in all.
        max_pushes: u32,
        /// Number matching: the number to show and the three the device offers.
        number_match: Option<(u8, Vec<u8>)>,
    },
    /// The person picked a passcode device (or a backup), or picked it again to resend.
    OtpDeviceSelected {
        /// The device.
        device: DeviceId,
        /// The code sent to it, unless the device computes its own.
        sent: Option<SentCode>,
    },
    /// The passcode was sent again.
    CodeResent {
        /// The new code.
        sent: SentCode,
    },
    /// The right passcode was given.
    OtpPassed {
        /// The device it came from.
        device: DeviceId,
        /// `sms`, `voice`, `email`, `totp` or `mobile_otp`.
        method: &'static str,
        /// For a new device verified by its primary: its pairing key and expiry.
        pairing: Option<(String, u64)>,
    },
    /// A wrong passcode was given.
    OtpWrong {
        /// Wrong passcodes that fail the authentication.
        max_attempts: u32,
    },
    /// `setupMfa`: the person starts setting up the missing methods.
    SetupStarted,
    /// The person picked a method to pair.
    PairingMethodChosen {
        /// The method.
        method: Method,
        /// A new authenticator secret (TOTP).
        totp_secret: Option<String>,
        /// A pairing key and its expiry (the mobile app).
        pairing: Option<(String, u64)>,
    },
    /// The person gave the address to pair, and a code was sent to it.
    TargetSubmitted {
        /// Phone number or email address.
        address: String,
        /// The code sent.
        sent: SentCode,
    },
    /// The new method proved to work and was saved.
    Activated {
        /// The saved device.
        device: DeviceSummary,
    },
    /// The person managed their devices while choosing one.
    DevicesChanged {
        /// The device list now.
        devices: Vec<DeviceSummary>,
    },
    /// The device answered.
    Decision {
        /// The request answered.
        auth_id: AuthId,
        /// The device that answered (authenticated).
        device: DeviceId,
        /// Approve (`true`) or deny.
        approve: bool,
    },
    /// The device approved with another number than the browser showed: a denial.
    WrongNumber {
        /// The request answered.
        auth_id: AuthId,
        /// The device that answered (authenticated).
        device: DeviceId,
    },
    /// The primary device approved a new device: it may now pair with this key.
    NewDeviceApproved {
        /// The request answered.
        auth_id: AuthId,
        /// The primary that approved.
        device: DeviceId,
        /// The new device's pairing key.
        pairing_key: String,
        /// When the key expires (ms since the epoch).
        expires_at_ms: u64,
    },
    /// The device answered a silent push with its key: now ask the person.
    SilentVerified {
        /// The silent request answered.
        auth_id: AuthId,
        /// The device that answered (authenticated).
        device: DeviceId,
        /// The id of the approval request that follows.
        follow_up: AuthId,
    },
    /// The browser moves on after `MFA_COMPLETED`.
    Continue,
    /// The person gives up.
    Cancel,
    /// The federation server takes the result (once).
    PickUp,
    /// A trusted device signed the flow's challenge.
    DeviceAuthorized {
        /// The device.
        device: DeviceSummary,
        /// The nonce it signed.
        nonce: String,
    },
    /// A device was paired with the flow's pairing key.
    DevicePaired {
        /// The new device.
        device: DeviceSummary,
    },
    /// A device was unpaired: a request waiting on it can no longer be answered.
    DeviceUnpaired {
        /// The device.
        device: DeviceId,
    },
}

impl Event {
    fn action(&self) -> &'static str {
        match self {
            Self::SelectDevice { .. } => "selectDevice",
            Self::DevicesChanged { .. } => "device management",
            Self::Decision { .. }
            | Self::WrongNumber { .. }
            | Self::SilentVerified { .. }
            | Self::NewDeviceApproved { .. } => "device decision",
            Self::Continue => "continueAuthentication",
            Self::Cancel => "cancelAuthentication",
            Self::PickUp => "result pickup",
            Self::DeviceUnpaired { .. } => "device unpairing",
            Self::DevicePaired { .. } => "device pairing",
            Self::DeviceAuthorized { .. } => "authenticate",
            Self::OtpDeviceSelected { .. } => "selectDevice",
            Self::CodeResent { .. } => "resend",
            Self::OtpPassed { .. } | Self::OtpWrong { .. } => "checkOtp",
            Self::SetupStarted => "setupMfa",
            Self::PairingMethodChosen { .. } => "selectDevicePairingMethod",
            Self::TargetSubmitted { .. } => "submitTarget",
            Self::Activated { .. } => "activateDevice",
        }
    }
}

/// The push a device's answer is for: the flow's current one, to that device, still
/// waiting (and silent, for a silent answer).
fn answered<'a>(
    flow: &'a Flow,
    status: Status,
    auth_id: &AuthId,
    device: &DeviceId,
    silent: bool,
) -> Result<&'a Push, FlowError> {
    let push = flow
        .push()
        .filter(|push| !silent || push.silent)
        .ok_or(FlowError::NotPending)?;
    if push.auth_id != *auth_id || push.device_id != *device {
        return Err(FlowError::NotPending);
    }
    match status {
        Status::PushConfirmationWaiting => Ok(push),
        Status::PushConfirmationTimedOut => Err(FlowError::RequestExpired),
        _ => Err(FlowError::NotPending),
    }
}

/// The second factor was given: done, unless mandatory methods are still to be set up.
fn factor_given(next: &mut Flow, approval: Approval) {
    match &mut next.enrolment {
        Some(enrolment) if !enrolment.missing.is_empty() => {
            enrolment.authenticated = Some(approval);
            next.state = FlowState::SetupRequired;
        }
        _ => next.state = FlowState::MfaCompleted { approval },
    }
}

/// A method was set up: on to the next missing one, or done.
fn enrolled(next: &mut Flow, method: Method, approval: Approval) {
    let Some(enrolment) = &mut next.enrolment else {
        next.state = FlowState::MfaCompleted { approval };
        return;
    };
    enrolment.missing.retain(|missing| *missing != method);
    next.state = if enrolment.missing.is_empty() {
        // Setting methods up proves only that the person holds what they just set up,
        // not a second factor: a user who had nothing completes as `enrolment`.
        let approval = enrolment.authenticated.clone().unwrap_or(Approval {
            method: "enrolment".to_owned(),
            ..approval
        });
        FlowState::MfaCompleted { approval }
    } else {
        FlowState::PairingMethodRequired
    };
}

fn is_enrolling(status: Status) -> bool {
    matches!(
        status,
        Status::MfaSetupRequired
            | Status::DevicePairingMethodRequired
            | Status::SmsPairingTargetRequired
            | Status::VoicePairingTargetRequired
            | Status::EmailPairingTargetRequired
            | Status::SmsActivationRequired
            | Status::VoiceActivationRequired
            | Status::EmailActivationRequired
            | Status::TotpActivationRequired
    )
}

/// The device the person picked, if they may pick it now.
fn selectable<'a>(
    flow: &'a Flow,
    status: Status,
    device: &DeviceId,
) -> Result<&'a DeviceSummary, FlowError> {
    if !matches!(
        status,
        Status::DeviceSelectionRequired
            | Status::PushConfirmationWaiting
            | Status::PushConfirmationTimedOut
            | Status::OtpRequired
    ) {
        return Err(FlowError::NotAllowed {
            action: "selectDevice",
            status: status.as_str(),
        });
    }
    let chosen = flow
        .devices
        .iter()
        .find(|known| known.id == *device)
        .ok_or(FlowError::UnknownDevice)?;
    match &chosen.unusable {
        Some(reason) => Err(FlowError::DeviceRefused(reason.clone())),
        None => Ok(chosen),
    }
}

/// The flow after `event` at `now_ms`, or why the event does not apply.
pub fn apply(flow: &Flow, event: Event, now_ms: u64) -> Result<Flow, FlowError> {
    let status = flow.status(now_ms);
    let not_allowed = |event: &Event| FlowError::NotAllowed {
        action: event.action(),
        status: status.as_str(),
    };
    let mut next = flow.clone();
    match event {
        Event::SelectDevice {
            device,
            auth_id,
            timeout_ms,
            max_pushes,
            number_match,
        } => {
            let chosen = selectable(flow, status, &device)?;
            if !chosen.push_enabled {
                return Err(FlowError::UnknownDevice);
            }
            if flow.pushes_sent >= max_pushes {
                return Err(FlowError::TooManyPushes);
            }
            next.pushes_sent += 1;
            let (number, choices) = number_match.map_or((None, Vec::new()), |(number, choices)| {
                (Some(number), choices)
            });
            next.state = FlowState::PushWaiting {
                push: Push {
                    auth_id,
                    device_id: device,
                    sent_at_ms: now_ms,
                    expires_at_ms: now_ms + timeout_ms,
                    silent: false,
                    number,
                    choices,
                },
            };
        }
        Event::OtpDeviceSelected { device, sent } => {
            let chosen = selectable(flow, status, &device)?;
            if !chosen.otp_enabled {
                return Err(FlowError::UnknownDevice);
            }
            next.codes_sent += u32::from(sent.is_some());
            next.state = FlowState::OtpRequired { device, sent };
        }
        Event::CodeResent { sent } => match &mut next.state {
            FlowState::OtpRequired { sent: current, .. }
            | FlowState::ActivationRequired { sent: current, .. }
                if current.is_some() =>
            {
                *current = Some(sent);
                next.codes_sent += 1;
            }
            _ => {
                return Err(FlowError::NotAllowed {
                    action: "resend",
                    status: status.as_str(),
                });
            }
        },
        Event::OtpPassed {
            device,
            method,
            pairing,
        } => {
            let expected = match status {
                Status::OtpRequired => flow.selected_device(),
                _ if flow.allowed_actions(now_ms).contains(&Action::CheckOtp) => {
                    flow.selected_device()
                }
                _ => None,
            };
            if expected != Some(&device) {
                return Err(FlowError::NotAllowed {
                    action: "checkOtp",
                    status: status.as_str(),
                });
            }
            next.otp_failures = 0;
            match pairing {
                Some((pairing_key, expires_at_ms)) => {
                    next.state = FlowState::MobileActivationRequired {
                        pairing_key,
                        expires_at_ms,
                    };
                }
                None => factor_given(
                    &mut next,
                    Approval {
                        device_id: device,
                        method: method.to_owned(),
                        decided_at_ms: now_ms,
                    },
                ),
            }
        }
        Event::OtpWrong { max_attempts } => {
            let accepts_code = flow.allowed_actions(now_ms).contains(&Action::CheckOtp)
                || matches!(flow.state, FlowState::ActivationRequired { .. });
            if !accepts_code {
                return Err(FlowError::NotAllowed {
                    action: "checkOtp",
                    status: status.as_str(),
                });
            }
            next.otp_failures += 1;
            if next.otp_failures >= max_attempts {
                next.state = FlowState::MfaFailed {
                    reason: "too many wrong passcodes".to_owned(),
                };
            }
        }
        Event::SetupStarted => {
            if status != Status::MfaSetupRequired {
                return Err(not_allowed(&Event::SetupStarted));
            }
            next.state = FlowState::PairingMethodRequired;
        }
        Event::PairingMethodChosen {
            method,
            totp_secret,
            pairing,
        } => {
            let offered = flow
                .enrolment
                .as_ref()
                .is_some_and(|enrolment| enrolment.missing.contains(&method));
            if status != Status::DevicePairingMethodRequired || !offered {
                return Err(FlowError::MethodNotOffered);
            }
            next.state = match (method, totp_secret, pairing) {
                (Method::Totp, Some(secret), _) => FlowState::ActivationRequired {
                    method,
                    address: None,
                    sent: None,
                    totp_secret: Some(secret),
                },
                (Method::PingidMobile, _, Some((pairing_key, expires_at_ms))) => {
                    FlowState::MobileActivationRequired {
                        pairing_key,
                        expires_at_ms,
                    }
                }
                (Method::Sms | Method::Voice | Method::Email, _, _) => {
                    FlowState::PairingTargetRequired { method }
                }
                _ => return Err(FlowError::MethodNotOffered),
            };
        }
        Event::TargetSubmitted { address, sent } => {
            let FlowState::PairingTargetRequired { method } = flow.state else {
                return Err(FlowError::NotAllowed {
                    action: "submitTarget",
                    status: status.as_str(),
                });
            };
            next.codes_sent += 1;
            next.state = FlowState::ActivationRequired {
                method,
                address: Some(address),
                sent: Some(sent),
                totp_secret: None,
            };
        }
        Event::Activated { device } => {
            let FlowState::ActivationRequired { method, .. } = flow.state else {
                return Err(FlowError::NotAllowed {
                    action: "activate",
                    status: status.as_str(),
                });
            };
            let approval = Approval {
                device_id: device.id.clone(),
                method: method.approval_name().to_owned(),
                decided_at_ms: now_ms,
            };
            next.otp_failures = 0;
            next.devices.push(device);
            enrolled(&mut next, method, approval);
        }
        Event::DevicesChanged { devices } => {
            if status != Status::DeviceSelectionRequired {
                return Err(not_allowed(&Event::DevicesChanged { devices }));
            }
            next.state = if devices.is_empty() {
                FlowState::MfaFailed {
                    reason: "the user has no paired device left".to_owned(),
                }
            } else {
                FlowState::DeviceSelectionRequired
            };
            next.devices = devices;
        }
        Event::Decision {
            auth_id,
            device,
            approve,
        } => {
            let push = answered(flow, status, &auth_id, &device, false)?;
            if approve {
                let approval = Approval {
                    device_id: device,
                    method: "push".to_owned(),
                    decided_at_ms: now_ms,
                };
                factor_given(&mut next, approval);
            } else {
                next.state = FlowState::PushRejected {
                    push: push.clone(),
                    reason: None,
                };
            }
        }
        Event::WrongNumber { auth_id, device } => {
            let push = answered(flow, status, &auth_id, &device, false)?;
            next.state = FlowState::PushRejected {
                push: push.clone(),
                reason: Some("the wrong number was picked on the device".to_owned()),
            };
        }
        Event::NewDeviceApproved {
            auth_id,
            device,
            pairing_key,
            expires_at_ms,
        } => {
            answered(flow, status, &auth_id, &device, false)?;
            next.state = FlowState::MobileActivationRequired {
                pairing_key,
                expires_at_ms,
            };
        }
        Event::SilentVerified {
            auth_id,
            device,
            follow_up,
        } => {
            let push = answered(flow, status, &auth_id, &device, true)?;
            next.state = FlowState::PushWaiting {
                push: Push {
                    auth_id: follow_up,
                    device_id: device,
                    sent_at_ms: now_ms,
                    expires_at_ms: now_ms + (push.expires_at_ms - push.sent_at_ms),
                    silent: false,
                    number: push.number,
                    choices: push.choices.clone(),
                },
            };
        }
        Event::Continue => match &flow.state {
            FlowState::MfaCompleted { approval } => {
                next.state = FlowState::Completed {
                    approval: approval.clone(),
                };
            }
            _ => return Err(not_allowed(&Event::Continue)),
        },
        Event::Cancel => {
            next.state = match status {
                Status::DeviceSelectionRequired
                | Status::MobileActivationRequired
                | Status::MobilePairingRequired
                | Status::AuthenticationCodeResponseRequired
                | Status::PushConfirmationWaiting
                | Status::PushConfirmationTimedOut
                | Status::OtpRequired => FlowState::Canceled,
                enrolling if is_enrolling(enrolling) => FlowState::Canceled,
                // Canceling after a denial or a failure ends the flow as failed: the
                // federation server must not read a denial as a mere change of mind.
                Status::PushConfirmationRejected | Status::MfaFailed => FlowState::Failed {
                    reason: flow
                        .failure_reason()
                        .unwrap_or("the second factor failed")
                        .to_owned(),
                },
                _ => return Err(not_allowed(&Event::Cancel)),
            };
        }
        Event::DeviceAuthorized { device, nonce } => {
            let FlowState::MobilePayloadRequired { nonce: expected } = &flow.state else {
                return Err(not_allowed(&Event::DeviceAuthorized { device, nonce }));
            };
            if *expected != nonce {
                return Err(FlowError::NotPending);
            }
            next.state = FlowState::Completed {
                approval: Approval {
                    device_id: device.id.clone(),
                    method: "device_authorization".to_owned(),
                    decided_at_ms: now_ms,
                },
            };
        }
        Event::DevicePaired { device } => {
            if status != Status::MobileActivationRequired {
                return Err(not_allowed(&Event::DevicePaired { device }));
            }
            let approval = Approval {
                device_id: device.id.clone(),
                method: "registration".to_owned(),
                decided_at_ms: now_ms,
            };
            // A registration is done once the device is trusted; an out-of-band flow that
            // enrolled on the spot goes on through the browser's continue.
            next.devices.push(device);
            if matches!(
                flow.kind,
                super::FlowKind::Registration | super::FlowKind::NewDevice
            ) {
                next.state = FlowState::Completed { approval };
            } else {
                enrolled(&mut next, Method::PingidMobile, approval);
            }
        }
        Event::DeviceUnpaired { device } => {
            let waiting_on_it = flow.push().is_some_and(|push| push.device_id == device)
                && matches!(
                    status,
                    Status::PushConfirmationWaiting | Status::PushConfirmationTimedOut
                );
            if !waiting_on_it {
                return Err(FlowError::NotPending);
            }
            next.devices.retain(|known| known.id != device);
            next.state = FlowState::MfaFailed {
                reason: "the device was unpaired while the request waited for it".to_owned(),
            };
        }
        Event::PickUp => {
            if !status.is_terminal() {
                return Err(FlowError::NotTerminal(status.as_str()));
            }
            if flow.result_picked_up {
                return Err(FlowError::AlreadyPickedUp);
            }
            next.result_picked_up = true;
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Application, FlowKind};
    use crate::ids::FlowId;
    use crate::params::{DynamicParams, Message};
    use crate::user::UserId;

    fn device(id: &DeviceId) -> DeviceSummary {
        DeviceSummary {
            id: id.clone(),
            kind: "iPhone".into(),
            name: "phone".into(),
            nickname: None,
            target: "iPhone 15".into(),
            default: false,
            method: Method::PingidMobile,
            otp_enabled: false,
            push_enabled: true,
            address: None,
            unusable: None,
            backup: false,
        }
    }

    fn flow(devices: &[DeviceId], return_url: Option<&str>) -> Flow {
        Flow {
            id: FlowId::generate(),
            kind: FlowKind::Oob,
            client_id: "fed".into(),
            user_id: UserId::parse("alice").unwrap(),
            application: Application::default(),
            client_ip: None,
            client_device: None,
            params: DynamicParams::default(),
            message: Message {
                title: "t".into(),
                body: "b".into(),
            },
            return_url: return_url.map(str::to_owned),
            created_at_ms: 0,
            devices: devices.iter().map(device).collect(),
            state: FlowState::DeviceSelectionRequired,
            result_picked_up: false,
            ciba: None,
            manage_devices: true,
            pushes_sent: 0,
            browser_binding: None,
            one_time_device: None,
            policy: Default::default(),
            otp_failures: 0,
            codes_sent: 0,
            enrolment: None,
        }
    }

    fn select(flow: &Flow, device: &DeviceId, now: u64) -> (Flow, AuthId) {
        let auth_id = AuthId::generate(&flow.id);
        let event = Event::SelectDevice {
            device: device.clone(),
            auth_id: auth_id.clone(),
            timeout_ms: 1000,
            max_pushes: 3,
            number_match: None,
        };
        (apply(flow, event, now).unwrap(), auth_id)
    }

    #[test]
    fn approve_then_continue_completes_once() {
        let phone = DeviceId::generate();
        let (waiting, auth_id) = select(&flow(std::slice::from_ref(&phone), None), &phone, 0);
        assert_eq!(waiting.status(10), Status::PushConfirmationWaiting);
        let decided = apply(
            &waiting,
            Event::Decision {
                auth_id,
                device: phone,
                approve: true,
            },
            10,
        )
        .unwrap();
        assert_eq!(decided.status(10), Status::MfaCompleted);
        assert!(matches!(
            apply(&decided, Event::PickUp, 10),
            Err(FlowError::NotTerminal("MFA_COMPLETED"))
        ));
        let done = apply(&decided, Event::Continue, 20).unwrap();
        assert_eq!(done.status(20), Status::Completed);
        let picked = apply(&done, Event::PickUp, 20).unwrap();
        assert!(matches!(
            apply(&picked, Event::PickUp, 20),
            Err(FlowError::AlreadyPickedUp)
        ));
    }

    #[test]
    fn with_a_return_url_the_browser_resumes() {
        let phone = DeviceId::generate();
        let mut done = flow(
            std::slice::from_ref(&phone),
            Some("https://sp.example/back"),
        );
        done.state = FlowState::Completed {
            approval: Approval {
                device_id: phone,
                method: "push".into(),
                decided_at_ms: 0,
            },
        };
        assert_eq!(done.status(0), Status::Resume);
        assert!(done.status(0).is_terminal());
    }

    #[test]
    fn a_push_times_out_by_the_clock_and_can_be_retried() {
        let phone = DeviceId::generate();
        let (waiting, auth_id) = select(&flow(std::slice::from_ref(&phone), None), &phone, 0);
        assert_eq!(waiting.status(1000), Status::PushConfirmationTimedOut);
        let late = Event::Decision {
            auth_id,
            device: phone.clone(),
            approve: true,
        };
        assert!(matches!(
            apply(&waiting, late, 1000),
            Err(FlowError::RequestExpired)
        ));
        let (retried, _) = select(&waiting, &phone, 1000);
        assert_eq!(retried.status(1500), Status::PushConfirmationWaiting);
    }

    #[test]
    fn a_denial_is_final() {
        let phone = DeviceId::generate();
        let (waiting, auth_id) = select(&flow(std::slice::from_ref(&phone), None), &phone, 0);
        let denied = apply(
            &waiting,
            Event::Decision {
                auth_id,
                device: phone.clone(),
                approve: false,
            },
            5,
        )
        .unwrap();
        assert_eq!(denied.status(5), Status::PushConfirmationRejected);
        assert_eq!(
            denied.allowed_actions(5),
            vec![crate::flow::Action::CancelAuthentication]
        );
        let retry = Event::SelectDevice {
            device: phone,
            auth_id: AuthId::generate(&denied.id),
            timeout_ms: 1000,
            max_pushes: 3,
            number_match: None,
        };
        assert!(matches!(
            apply(&denied, retry, 6),
            Err(FlowError::NotAllowed { .. })
        ));
        let failed = apply(&denied, Event::Cancel, 7).unwrap();
        assert_eq!(failed.status(7), Status::Failed);
    }

    #[test]
    fn only_the_asked_device_answers_the_current_request() {
        let phone = DeviceId::generate();
        let other = DeviceId::generate();
        let (waiting, auth_id) = select(&flow(&[phone.clone(), other.clone()], None), &phone, 0);
        let wrong_device = Event::Decision {
            auth_id: auth_id.clone(),
            device: other,
            approve: true,
        };
        assert!(matches!(
            apply(&waiting, wrong_device, 1),
            Err(FlowError::NotPending)
        ));
        let stale = Event::Decision {
            auth_id: AuthId::generate(&waiting.id),
            device: phone,
            approve: true,
        };
        assert!(matches!(
            apply(&waiting, stale, 1),
            Err(FlowError::NotPending)
        ));
    }

    #[test]
    fn pushes_are_capped_per_flow() {
        let phone = DeviceId::generate();
        let mut current = flow(std::slice::from_ref(&phone), None);
        for _ in 0..3 {
            current = select(&current, &phone, 0).0;
        }
        let fourth = Event::SelectDevice {
            device: phone,
            auth_id: AuthId::generate(&current.id),
            timeout_ms: 1000,
            max_pushes: 3,
            number_match: None,
        };
        assert_eq!(apply(&current, fourth, 0), Err(FlowError::TooManyPushes));
    }

    #[test]
    fn unknown_devices_cannot_be_selected() {
        let phone = DeviceId::generate();
        let start = flow(&[phone], None);
        let event = Event::SelectDevice {
            device: DeviceId::generate(),
            auth_id: AuthId::generate(&start.id),
            timeout_ms: 1000,
            max_pushes: 3,
            number_match: None,
        };
        assert!(matches!(
            apply(&start, event, 0),
            Err(FlowError::UnknownDevice)
        ));
    }

    #[test]
    fn removing_the_last_device_fails_the_flow() {
        let phone = DeviceId::generate();
        let start = flow(&[phone], None);
        let empty = apply(&start, Event::DevicesChanged { devices: vec![] }, 0).unwrap();
        assert_eq!(empty.status(0), Status::MfaFailed);
    }
}
