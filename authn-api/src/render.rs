//! A flow's state as PingFederate renders it: the typed [`AuthnState`] of `assent-proto`,
//! with exactly the fields the widget's templates read for that status.

use assent_core::AdapterError;
use assent_core::flow::{Action, DeviceSummary, Flow, LiveQr, Method, Status, View};
use assent_proto::authn::{
    AssertionChallenge, AuthenticationCode, AuthnState, AuthorizeResponse, Cancellation,
    Completion, Device, DeviceRef, DeviceSelection, DeviceType, EmailActivation, Failure, Link,
    MfaSetup, MobileActivation, MobilePairing, OtpChallenge, Outcome, PLUGIN_TYPE_ID,
    PairingMethod, PairingMethods, PairingType, PhoneActivation, PushConfirmation, PushRejection,
    Resume, Status as Wire, TotpActivation, WebauthnActivation,
};
use assent_proto::mobile::ServerPayload;
use chrono::{DateTime, Utc};

use crate::error::AuthnError;

/// Renders `flow` as seen at `now_ms`; `flow_url` is where actions are posted; `qr` is the
/// code a QR sign-on shows now (the domain derives it). Fails only if the flow's status and
/// what its state shows disagree, which the domain rules out.
pub fn render(
    flow: &Flow,
    now_ms: u64,
    flow_url: &str,
    qr: Option<&LiveQr>,
) -> Result<AuthnState, AuthnError> {
    let status = flow.status(now_ms);
    let links = flow
        .allowed_actions(now_ms)
        .into_iter()
        .map(|action| {
            let link = Link {
                href: flow_url.to_owned(),
            };
            (action, link)
        })
        .collect();
    let admin_message = flow
        .policy
        .admin_message
        .clone()
        .filter(|_| !status.is_terminal());
    Ok(AuthnState {
        id: flow.id.as_str().to_owned(),
        plugin_type_id: PLUGIN_TYPE_ID.to_owned(),
        links,
        admin_message,
        authn_api_state: None,
        status: fields(flow, status, now_ms, qr)?,
    })
}

fn method(method: Method) -> assent_proto::authn::Method {
    use assent_proto::authn::Method as Wire;
    match method {
        Method::PingidMobile => Wire::PingidMobile,
        Method::Sms => Wire::Sms,
        Method::Voice => Wire::Voice,
        Method::Email => Wire::Email,
        Method::Totp => Wire::Totp,
        Method::SecurityKey => Wire::SecurityKey,
        Method::Platform => Wire::Platform,
        Method::Yubikey => Wire::Yubikey,
        Method::OathToken => Wire::OathToken,
    }
}

/// The widget's icon for a device: the app's platform, or the passcode method.
fn device_type(device: &DeviceSummary) -> DeviceType {
    match device.method {
        Method::PingidMobile => match device.kind.as_str() {
            "iPhone" => DeviceType::IPhone,
            "Android" => DeviceType::Android,
            _ => DeviceType::Mobile,
        },
        Method::Sms => DeviceType::Sms,
        Method::Voice => DeviceType::Voice,
        Method::Email => DeviceType::Email,
        Method::Totp => DeviceType::Totp,
        Method::SecurityKey => DeviceType::SecurityKey,
        Method::Platform => DeviceType::Platform,
        Method::Yubikey => DeviceType::Yubikey,
        Method::OathToken => DeviceType::OathToken,
    }
}

/// A device as the widget reads it. The widget offers "Use passcode" for a device with
/// `otpEnabled`, so the app's own passcode shows only while `checkOtp` is allowed.
fn device(device: &DeviceSummary, app_code_allowed: bool) -> Device {
    let otp_enabled = match device.method {
        Method::PingidMobile => device.otp_enabled && app_code_allowed,
        _ => device.otp_enabled,
    };
    Device {
        id: device.id.as_str().to_owned(),
        device_type: device_type(device),
        name: device.name.clone(),
        nickname: device.nickname.clone(),
        target: device.target.clone(),
        default: device.default,
        default_device: device.default,
        usable: device.usable(),
        unusable_reason: device.unusable.clone(),
        otp_enabled,
        push_enabled: device.push_enabled,
        backup: device.backup,
    }
}

/// Methods the person still has to set up.
fn missing_methods(flow: &Flow) -> Vec<Method> {
    flow.enrolment
        .as_ref()
        .map(|enrolment| enrolment.missing.clone())
        .unwrap_or_default()
}

/// How a method is set up in a flow; `None` for imported hardware tokens, which never are.
fn pairing_method(method: Method, application: &str) -> Option<PairingMethod> {
    let (device_type, application_name) = match method {
        Method::PingidMobile => (PairingType::Mobile, Some(application.to_owned())),
        Method::Sms => (PairingType::Sms, None),
        Method::Voice => (PairingType::Voice, None),
        Method::Email => (PairingType::Email, None),
        Method::Totp => (PairingType::Totp, None),
        Method::SecurityKey => (PairingType::SecurityKey, None),
        Method::Platform => (PairingType::Platform, None),
        Method::Yubikey | Method::OathToken => return None,
    };
    Some(PairingMethod {
        device_type,
        application_name,
    })
}

/// A time of the domain (ms since the epoch) as the wire writes it.
fn time(ms: u64) -> Result<DateTime<Utc>, AuthnError> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| AdapterError::internal(format!("{ms} ms is no time")).into())
}

/// The status shows something its state does not have.
fn mismatch(status: Status) -> AuthnError {
    AdapterError::internal(format!("{} without its state", status.as_str())).into()
}

fn activation(flow: &Flow, status: Status, otp_length: u32) -> Result<Wire, AuthnError> {
    let View::Activation {
        method: activated,
        address,
        totp_secret,
        ..
    } = flow.view()
    else {
        return Err(mismatch(status));
    };
    let shown = address.map(assent_core::notify::mask_recipient);
    Ok(match activated {
        Method::Totp => {
            let secret = totp_secret.ok_or_else(|| mismatch(status))?;
            let account = flow.user_id.as_str();
            let key_uri = assent_core::otp::key_uri(secret, &flow.application.name, account)
                .unwrap_or_default();
            Wire::TotpActivationRequired(TotpActivation {
                qr_code: crate::qr::images(&key_uri),
                key_uri,
                pairing_key: secret.to_owned(),
                otp_length: assent_core::otp::TOTP_DIGITS as u32,
            })
        }
        Method::Email => Wire::EmailActivationRequired(EmailActivation {
            email: shown,
            otp_length,
        }),
        Method::Voice => Wire::VoiceActivationRequired(PhoneActivation {
            phone: shown,
            otp_length,
        }),
        Method::Sms | Method::PingidMobile => Wire::SmsActivationRequired(PhoneActivation {
            phone: shown,
            otp_length,
        }),
        // Their own view (`View::WebauthnActivation`), rendered apart.
        Method::SecurityKey | Method::Platform => return Err(mismatch(status)),
        // Imported by an operator: never activated in a flow.
        Method::Yubikey | Method::OathToken => return Err(mismatch(status)),
    })
}

fn fields(
    flow: &Flow,
    status: Status,
    now_ms: u64,
    qr: Option<&LiveQr>,
) -> Result<Wire, AuthnError> {
    let otp_length = flow.policy.otp_length;
    let app_code_allowed = flow.allowed_actions(now_ms).contains(&Action::CheckOtp);
    let as_wire = |summary: &DeviceSummary| device(summary, app_code_allowed);
    let devices = || flow.devices.iter().map(as_wire).collect::<Vec<_>>();
    let selected = flow.selected_device();
    let selected_device_ref = selected.map(|id| DeviceRef {
        id: id.as_str().to_owned(),
    });
    let selected_device = || {
        selected
            .and_then(|id| flow.devices.iter().find(|device| device.id == *id))
            .map(as_wire)
    };
    let change_device_permitted = flow.devices.len() > 1;
    let application_name = || flow.application.name.clone();
    Ok(match status {
        Status::AuthenticationRequired => Wire::AuthenticationRequired,
        Status::DeviceSelectionRequired => Wire::DeviceSelectionRequired(DeviceSelection {
            devices: devices(),
            selected_device_ref,
            change_device_permitted: true,
            manage_devices_allowed: flow.manage_devices,
            user_selected_default: flow.devices.iter().any(|device| device.default),
        }),
        Status::PushConfirmationWaiting | Status::PushConfirmationTimedOut => {
            let fields = PushConfirmation {
                devices: devices(),
                selected_device_ref,
                device: selected_device(),
                change_device_permitted,
                application_name: application_name(),
                otp_length: assent_core::otp::TOTP_DIGITS as u32,
                // Number matching: the page shows the number the person picks on the phone.
                number_match: flow.push().and_then(|push| push.number),
            };
            if status == Status::PushConfirmationWaiting {
                Wire::PushConfirmationWaiting(fields)
            } else {
                Wire::PushConfirmationTimedOut(fields)
            }
        }
        Status::OtpRequired => {
            // A sent code has the policy's length; one the device computes its own (a
            // hardware token's digits, a YubiKey's 44 characters), else the TOTP length.
            let sent = matches!(flow.view(), View::Otp { sent: Some(_), .. });
            let computed = selected
                .and_then(|id| flow.devices.iter().find(|device| device.id == *id))
                .and_then(|device| device.code_length)
                .unwrap_or(assent_core::otp::TOTP_DIGITS as u32);
            Wire::OtpRequired(OtpChallenge {
                devices: devices(),
                selected_device_ref,
                device: selected_device(),
                change_device_permitted,
                application_name: application_name(),
                otp_length: if sent { otp_length } else { computed },
            })
        }
        Status::MfaSetupRequired => Wire::MfaSetupRequired(MfaSetup {
            allow_skip_mfa: false,
            required_methods: missing_methods(flow).into_iter().map(method).collect(),
        }),
        Status::DevicePairingMethodRequired => Wire::DevicePairingMethodRequired(PairingMethods {
            device_pairing_methods: missing_methods(flow)
                .into_iter()
                .filter_map(|method| pairing_method(method, &flow.application.name))
                .collect(),
        }),
        Status::SmsPairingTargetRequired => Wire::SmsPairingTargetRequired,
        Status::VoicePairingTargetRequired => Wire::VoicePairingTargetRequired,
        Status::EmailPairingTargetRequired => Wire::EmailPairingTargetRequired,
        Status::SmsActivationRequired
        | Status::VoiceActivationRequired
        | Status::EmailActivationRequired
        | Status::TotpActivationRequired => activation(flow, status, otp_length)?,
        Status::SecurityKeyActivationRequired | Status::PlatformActivationRequired => {
            let View::WebauthnActivation { method, options } = flow.view() else {
                return Err(mismatch(status));
            };
            let activation = WebauthnActivation {
                public_key_credential_creation_options: options.to_owned(),
            };
            match method {
                Method::Platform => Wire::PlatformActivationRequired(activation),
                _ => Wire::SecurityKeyActivationRequired(activation),
            }
        }
        Status::AssertionRequired => {
            let View::Assertion { options, .. } = flow.view() else {
                return Err(mismatch(status));
            };
            Wire::AssertionRequired(AssertionChallenge {
                devices: devices(),
                selected_device_ref,
                change_device_permitted,
                application_name: flow.application.name.clone(),
                public_key_credential_request_options: options.clone(),
            })
        }
        Status::PushConfirmationRejected => Wire::PushConfirmationRejected(PushRejection {
            devices: devices(),
            selected_device_ref,
            device: selected_device(),
        }),
        Status::MfaFailed | Status::Failed => {
            let reason = flow
                .failure_reason()
                .unwrap_or("the second factor failed")
                .to_owned();
            let failure = Failure {
                user_message: reason.clone(),
                reason,
            };
            if status == Status::MfaFailed {
                Wire::MfaFailed(failure)
            } else {
                Wire::Failed(failure)
            }
        }
        Status::Resume => Wire::Resume(Resume {
            resume_url: flow.return_url.clone().ok_or_else(|| mismatch(status))?,
        }),
        Status::Completed => Wire::Completed(match flow.completed_approval() {
            Some(approval) => Completion {
                outcome: Some(Outcome::Approved),
                authorize_response: Some(AuthorizeResponse {
                    device_id: approval.device_id.as_str().to_owned(),
                }),
            },
            None => Completion {
                outcome: None,
                authorize_response: None,
            },
        }),
        Status::Canceled => Wire::Canceled(Cancellation {
            outcome: Outcome::Canceled,
        }),
        Status::MfaCompleted => Wire::MfaCompleted,
        Status::AuthenticationCodeResponseRequired => {
            Wire::AuthenticationCodeResponseRequired(match qr {
                Some(live) => AuthenticationCode {
                    qr_code: crate::qr::images(&live.uri),
                    uri: Some(live.uri.clone()),
                    expires_at: Some(time(live.expires_at_ms)?),
                    code: Some(live.code.clone()),
                    application_name: application_name(),
                    claimed: false,
                },
                None => AuthenticationCode {
                    uri: None,
                    qr_code: None,
                    expires_at: None,
                    code: None,
                    application_name: application_name(),
                    claimed: true,
                },
            })
        }
        // Opaque to the federation server and the page: the app's SDK signs it.
        Status::MobilePairingRequired => {
            let View::MobilePayload { nonce, pairing } = flow.view() else {
                return Err(mismatch(status));
            };
            let payload = ServerPayload {
                flow_id: flow.id.as_str().to_owned(),
                nonce: nonce.to_owned(),
                // Shown until the app has paired with it (it works once anyway).
                pairing_key: pairing
                    .filter(|(_, paired)| !paired)
                    .map(|(offer, _)| offer.pairing_key.clone()),
            };
            let payload = serde_json::to_vec(&payload).map_err(AdapterError::internal)?;
            Wire::MobilePairingRequired(MobilePairing {
                server_payload: base64_url(&payload),
            })
        }
        Status::MobileActivationRequired => {
            let View::MobileActivation(offer) = flow.view() else {
                return Err(mismatch(status));
            };
            Wire::MobileActivationRequired(MobileActivation {
                pairing_key: offer.pairing_key.clone(),
                application_name: application_name(),
                qr_code: crate::qr::images(&offer.pairing_key),
                expires_at: time(offer.expires_at_ms)?,
            })
        }
    })
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
