//! A flow's state as PingFederate renders it: `{id, pluginTypeId, status, _links, ...}`,
//! with exactly the fields the widget's templates read for that status.

use assent_core::flow::{Action, DeviceSummary, Flow, Method, Status, View};
use serde_json::{Map, Value, json};

/// The plugin type reported in every state.
pub const PLUGIN_TYPE_ID: &str = "assent";

/// A device as the widget reads it. The widget offers "Use passcode" for a device with
/// `otpEnabled`, so the app's own passcode shows only while `checkOtp` is allowed.
fn device_json(device: &DeviceSummary, app_code_allowed: bool) -> Value {
    let otp_enabled = match device.method {
        Method::PingidMobile => device.otp_enabled && app_code_allowed,
        _ => device.otp_enabled,
    };
    json!({
        "id": device.id.as_str(),
        "type": device.kind,
        "name": device.name,
        "nickname": device.nickname,
        "target": device.target,
        "default": device.default,
        "defaultDevice": device.default,
        "usable": device.usable(),
        "unusableReason": device.unusable,
        "otpEnabled": otp_enabled,
        "pushEnabled": device.push_enabled,
        "backup": device.backup,
    })
}

/// Renders `flow` as seen at `now_ms`; `flow_url` is where actions are posted.
pub fn render(flow: &Flow, now_ms: u64, flow_url: &str, qr_scheme: &str) -> Value {
    let status = flow.status(now_ms);
    let links: Map<String, Value> = flow
        .allowed_actions(now_ms)
        .iter()
        .map(|action| (action.id().to_owned(), json!({ "href": flow_url })))
        .collect();
    let mut state = json!({
        "id": flow.id.as_str(),
        "pluginTypeId": PLUGIN_TYPE_ID,
        "status": status.as_str(),
        "_links": links,
    });
    let fields = fields(flow, now_ms, qr_scheme);
    if let (Some(state), Value::Object(fields)) = (state.as_object_mut(), fields) {
        state.extend(fields);
        if let Some(message) = &flow.policy.admin_message
            && !status.is_terminal()
        {
            state.insert("adminMessage".to_owned(), message.clone().into());
        }
    }
    state
}

/// Methods the person still has to set up.
fn missing_methods(flow: &Flow) -> Vec<Method> {
    flow.enrolment
        .as_ref()
        .map(|enrolment| enrolment.missing.clone())
        .unwrap_or_default()
}

fn pairing_method_json(method: Method, application: &str) -> Value {
    match method {
        Method::PingidMobile => json!({ "deviceType": "MOBILE", "applicationName": application }),
        other => json!({ "deviceType": other.widget_type() }),
    }
}

fn activation_json(flow: &Flow, otp_length: u32) -> Value {
    let View::Activation {
        method,
        address,
        totp_secret,
        ..
    } = flow.view()
    else {
        return json!({});
    };
    let shown = address.map(assent_core::notify::mask_recipient);
    match (method, totp_secret) {
        (Method::Totp, Some(secret)) => {
            let account = flow.user_id.as_str();
            let key_uri = assent_core::otp::key_uri(secret, &flow.application.name, account)
                .unwrap_or_default();
            json!({
                "keyUri": key_uri,
                "pairingKey": secret,
                "qrCode": crate::qr::images(&key_uri),
                "otpLength": assent_core::otp::TOTP_DIGITS,
            })
        }
        (Method::Email, _) => json!({ "email": shown, "otpLength": otp_length }),
        _ => json!({ "phone": shown, "otpLength": otp_length }),
    }
}

fn fields(flow: &Flow, now_ms: u64, qr_scheme: &str) -> Value {
    let otp_length = flow.policy.otp_length;
    let status = flow.status(now_ms);
    let app_code_allowed = flow.allowed_actions(now_ms).contains(&Action::CheckOtp);
    let as_json = |device: &DeviceSummary| device_json(device, app_code_allowed);
    let devices: Vec<Value> = flow.devices.iter().map(as_json).collect();
    let selected = flow.selected_device();
    let selected_json = selected.map(|id| json!({ "id": id.as_str() }));
    let device = selected
        .and_then(|id| flow.devices.iter().find(|device| device.id == *id))
        .map(as_json);
    let change_permitted = flow.devices.len() > 1;
    match status {
        Status::DeviceSelectionRequired => json!({
            "devices": devices,
            "selectedDeviceRef": selected_json,
            "changeDevicePermitted": true,
            "manageDevicesAllowed": flow.manage_devices,
            "userSelectedDefault": flow.devices.iter().any(|device| device.default),
        }),
        Status::PushConfirmationWaiting | Status::PushConfirmationTimedOut => {
            let mut fields = json!({
                "devices": devices,
                "selectedDeviceRef": selected_json,
                "device": device,
                "changeDevicePermitted": change_permitted,
                "applicationName": flow.application.name,
                "otpLength": assent_core::otp::TOTP_DIGITS,
            });
            // Number matching: the page shows the number the person picks on the phone.
            if let (Some(number), Some(fields)) = (
                flow.push().and_then(|push| push.number),
                fields.as_object_mut(),
            ) {
                fields.insert("numberMatch".to_owned(), number.into());
            }
            fields
        }
        Status::OtpRequired => {
            // A code the device computes (authenticator app, the app's seed) has the
            // TOTP length; a sent one the policy's.
            let sent = matches!(flow.view(), View::Otp { sent: Some(_), .. });
            json!({
                "devices": devices,
                "selectedDeviceRef": selected_json,
                "device": device,
                "changeDevicePermitted": change_permitted,
                "applicationName": flow.application.name,
                "otpLength": if sent { otp_length as usize } else { assent_core::otp::TOTP_DIGITS },
            })
        }
        Status::MfaSetupRequired => json!({
            "allowSkipMfa": false,
            "requiredMethods": missing_methods(flow),
        }),
        Status::DevicePairingMethodRequired => json!({
            "devicePairingMethods": missing_methods(flow)
                .iter()
                .map(|method| pairing_method_json(*method, &flow.application.name))
                .collect::<Vec<_>>(),
        }),
        Status::SmsPairingTargetRequired
        | Status::VoicePairingTargetRequired
        | Status::EmailPairingTargetRequired => json!({}),
        Status::SmsActivationRequired
        | Status::VoiceActivationRequired
        | Status::EmailActivationRequired
        | Status::TotpActivationRequired => activation_json(flow, otp_length),
        Status::PushConfirmationRejected => json!({
            "devices": devices,
            "selectedDeviceRef": selected_json,
            "device": device,
        }),
        Status::MfaFailed | Status::Failed => {
            let reason = flow.failure_reason().unwrap_or("the second factor failed");
            json!({ "reason": reason, "userMessage": reason })
        }
        Status::Resume => json!({ "resumeUrl": flow.return_url }),
        Status::Completed => match flow.completed_approval() {
            Some(approval) => json!({
                "outcome": "APPROVED",
                "authorizeResponse": { "deviceId": approval.device_id.as_str() },
            }),
            _ => json!({}),
        },
        Status::Canceled => json!({ "outcome": "CANCELED" }),
        Status::MfaCompleted => json!({}),
        Status::AuthenticationCodeResponseRequired => match flow.view() {
            View::QrCode {
                token,
                expires_at_ms,
            } => {
                let uri = format!("{qr_scheme}://assent?authentication_token={token}");
                json!({
                    "uri": uri,
                    "qrCode": crate::qr::images(&uri),
                    "expiresAt": expires_at_ms / 1000,
                    "applicationName": flow.application.name,
                    "claimed": false,
                })
            }
            _ => json!({ "applicationName": flow.application.name, "claimed": true }),
        },
        // Opaque to the federation server and the page: the app's SDK signs it.
        Status::MobilePairingRequired => match flow.view() {
            View::MobilePayload { nonce } => {
                let payload = json!({ "flowId": flow.id.as_str(), "nonce": nonce }).to_string();
                json!({ "serverPayload": base64_url(payload.as_bytes()) })
            }
            _ => json!({}),
        },
        Status::MobileActivationRequired => match flow.view() {
            View::MobileActivation(offer) => json!({
                "pairingKey": offer.pairing_key,
                "applicationName": flow.application.name,
                "qrCode": crate::qr::images(&offer.pairing_key),
                "expiresAt": offer.expires_at_ms / 1000,
            }),
            _ => json!({}),
        },
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
