//! Reading an action request: the action id (from the content type or `?action=`), the
//! XSRF header, and the action's parameters.

use actix_web::HttpRequest;
use actix_web::http::header;
use assent_core::flow::{Action, FlowAction, Method};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::AuthnError;

/// The header every POST must carry (any value), as PingFederate requires.
pub const XSRF_HEADER: &str = "x-xsrf-header";

/// Query parameters of the Authentication API.
#[derive(Debug, Default, Deserialize)]
pub struct AuthnQuery {
    /// The action id, for clients that cannot send custom content types.
    pub action: Option<String>,
    /// Long-poll seconds for `poll`.
    pub wait: Option<u64>,
}

/// The action id of a POST: `application/vnd.pingidentity.<id>+json`, or
/// `application/json` with `?action=<id>`.
pub fn action_id(request: &HttpRequest, query: &AuthnQuery) -> Result<Action, AuthnError> {
    if !request.headers().contains_key(XSRF_HEADER) {
        return Err(AuthnError::MissingXsrf);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or("\u{0}"))
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        });
    const VENDOR_PREFIX: &str = "application/vnd.pingidentity.";
    let from_type = match content_type.as_deref() {
        // The media type is case-insensitive; the action id inside it is not.
        Some(media) => match media
            .get(..VENDOR_PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(VENDOR_PREFIX))
            .and(media.get(VENDOR_PREFIX.len()..))
            .and_then(|rest| rest.strip_suffix("+json"))
        {
            Some(id) => Some(id.to_owned()),
            None if media.eq_ignore_ascii_case("application/json") => None,
            None => {
                return Err(AuthnError::UnsupportedContentType(format!(
                    "content type `{}` is neither application/vnd.pingidentity.<actionId>+json \
                     nor application/json",
                    media.escape_default()
                )));
            }
        },
        None => None,
    };
    let id = match (from_type, query.action.as_deref()) {
        (Some(from_type), Some(from_query)) if from_type != from_query => {
            return Err(AuthnError::InvalidActionId(
                "the content type and ?action= name different actions".to_owned(),
            ));
        }
        (Some(from_type), _) => from_type,
        (None, Some(from_query)) => from_query.to_owned(),
        (None, None) => {
            return Err(AuthnError::InvalidActionId(
                "no action id: use Content-Type application/vnd.pingidentity.<actionId>+json \
                 or ?action=<actionId>"
                    .to_owned(),
            ));
        }
    };
    Action::parse(&id).ok_or_else(|| {
        AuthnError::InvalidActionId(format!("unknown action id `{}`", id.escape_default()))
    })
}

/// The body as a JSON object; an empty body is an empty object, as the widget sends
/// parameterless actions without one.
pub fn body_object(body: &[u8]) -> Result<Map<String, Value>, AuthnError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AuthnError::InvalidJson(
            "the body must be a JSON object".to_owned(),
        )),
        Err(error) => Err(AuthnError::InvalidJson(format!("malformed JSON: {error}"))),
    }
}

fn string_field(
    map: &Map<String, Value>,
    path: &[&str],
    target: &'static str,
) -> Result<String, AuthnError> {
    let mut value = map.get(path[0]);
    for key in &path[1..] {
        value = value.and_then(|value| value.get(key));
    }
    match value {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(_) => Err(AuthnError::Validation {
            code: "INVALID_VALUE",
            message: format!("`{target}` must be a non-empty string"),
            target,
        }),
        None => Err(AuthnError::Validation {
            code: "MISSING_VALUE",
            message: format!("`{target}` is required"),
            target,
        }),
    }
}

/// The domain action for an action id and its body (not `poll`, which only waits).
pub fn flow_action(action: Action, body: &Map<String, Value>) -> Result<FlowAction, AuthnError> {
    let device_ref = || string_field(body, &["deviceRef", "id"], "deviceRef.id");
    Ok(match action {
        Action::SelectDevice => FlowAction::SelectDevice(device_ref()?),
        Action::SetDefaultDevice => FlowAction::SetDefaultDevice(device_ref()?),
        Action::RemoveDevice => FlowAction::RemoveDevice(device_ref()?),
        Action::UpdateDeviceNickname => FlowAction::UpdateDeviceNickname {
            id: string_field(body, &["id"], "id")?,
            nickname: string_field(body, &["nickname"], "nickname")?,
        },
        Action::ContinueAuthentication => FlowAction::Continue,
        Action::CancelAuthentication => FlowAction::Cancel,
        Action::CancelDevicePairing => FlowAction::CancelPairing,
        Action::Authenticate => FlowAction::Authenticate {
            mobile_payload: string_field(body, &["mobilePayload"], "mobilePayload")?,
        },
        Action::CheckOtp => FlowAction::CheckOtp(string_field(body, &["otp"], "otp")?),
        Action::Resend | Action::ResendOtp => FlowAction::Resend(action),
        Action::SetupMfa => FlowAction::SetupMfa,
        Action::SelectDevicePairingMethod => FlowAction::SelectPairingMethod(string_field(
            body,
            &["devicePairingMethod", "deviceType"],
            "devicePairingMethod.deviceType",
        )?),
        Action::SubmitSmsTarget => FlowAction::SubmitTarget {
            method: Method::Sms,
            address: string_field(body, &["phone"], "phone")?,
        },
        Action::SubmitVoiceTarget => FlowAction::SubmitTarget {
            method: Method::Voice,
            address: string_field(body, &["phone"], "phone")?,
        },
        Action::SubmitEmailTarget => FlowAction::SubmitTarget {
            method: Method::Email,
            address: string_field(body, &["email"], "email")?,
        },
        Action::ActivateSmsDevice => activate(Method::Sms, body)?,
        Action::ActivateVoiceDevice => activate(Method::Voice, body)?,
        Action::ActivateEmailDevice => activate(Method::Email, body)?,
        Action::ActivateTotpDevice => activate(Method::Totp, body)?,
        Action::Poll => {
            return Err(AuthnError::InvalidActionId(
                "poll is handled by waiting, not as a flow action".to_owned(),
            ));
        }
    })
}

fn activate(method: Method, body: &Map<String, Value>) -> Result<FlowAction, AuthnError> {
    Ok(FlowAction::Activate {
        method,
        otp: string_field(body, &["otp"], "otp")?,
    })
}
