//! Reading an action request: the action id (from the content type or `?action=`), the
//! XSRF header, and the action's parameters as the typed bodies of `assent-proto`.

use actix_web::HttpRequest;
use actix_web::http::header;
use assent_core::flow::{Action, FlowAction, Method};
use assent_proto::authn::{
    ActionId, ActionRequest, Assertion, Attestation, DetailCode, DeviceChoice, EmailTarget,
    MobilePayload, NicknameUpdate, PairingMethodChoice, Passcode, PhoneTarget,
};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

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
pub fn action_id(request: &HttpRequest, query: &AuthnQuery) -> Result<ActionId, AuthnError> {
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
    ActionId::parse(&id).ok_or_else(|| {
        AuthnError::InvalidActionId(format!("unknown action id `{}`", id.escape_default()))
    })
}

/// The action `id` with its parameters read from `body`. Every body must be a JSON object;
/// an empty one counts as `{}`, as the widget sends parameterless actions without a body.
pub fn request(id: ActionId, body: &[u8]) -> Result<ActionRequest, AuthnError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    // Checked apart from the parameters, so that a malformed body is told from a wrong
    // field, and so that an array is not read as a struct's fields in order.
    serde_json::from_slice::<IgnoredAny>(body)
        .map_err(|error| AuthnError::InvalidJson(format!("malformed JSON: {error}")))?;
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(AuthnError::InvalidJson(
            "the body must be a JSON object".to_owned(),
        ));
    }
    Ok(match id {
        ActionId::SelectDevice => ActionRequest::SelectDevice(parameters(body)?),
        ActionId::SetDefaultDevice => ActionRequest::SetDefaultDevice(parameters(body)?),
        ActionId::UpdateDeviceNickname => ActionRequest::UpdateDeviceNickname(parameters(body)?),
        ActionId::RemoveDevice => ActionRequest::RemoveDevice(parameters(body)?),
        ActionId::Poll => ActionRequest::Poll,
        ActionId::ContinueAuthentication => ActionRequest::ContinueAuthentication,
        ActionId::CancelAuthentication => ActionRequest::CancelAuthentication,
        ActionId::CancelDevicePairing => ActionRequest::CancelDevicePairing,
        ActionId::Authenticate => ActionRequest::Authenticate(parameters(body)?),
        ActionId::CheckOtp => ActionRequest::CheckOtp(parameters(body)?),
        ActionId::Resend => ActionRequest::Resend,
        ActionId::ResendOtp => ActionRequest::ResendOtp,
        ActionId::SetupMfa => ActionRequest::SetupMfa,
        ActionId::SelectDevicePairingMethod => {
            ActionRequest::SelectDevicePairingMethod(parameters(body)?)
        }
        ActionId::SubmitSmsTarget => ActionRequest::SubmitSmsTarget(parameters(body)?),
        ActionId::SubmitVoiceTarget => ActionRequest::SubmitVoiceTarget(parameters(body)?),
        ActionId::SubmitEmailTarget => ActionRequest::SubmitEmailTarget(parameters(body)?),
        ActionId::ActivateSmsDevice => ActionRequest::ActivateSmsDevice(parameters(body)?),
        ActionId::ActivateVoiceDevice => ActionRequest::ActivateVoiceDevice(parameters(body)?),
        ActionId::ActivateEmailDevice => ActionRequest::ActivateEmailDevice(parameters(body)?),
        ActionId::ActivateTotpDevice => ActionRequest::ActivateTotpDevice(parameters(body)?),
        ActionId::ActivateSecurityKeyDevice => {
            ActionRequest::ActivateSecurityKeyDevice(parameters(body)?)
        }
        ActionId::ActivatePlatformDevice => {
            ActionRequest::ActivatePlatformDevice(parameters(body)?)
        }
        ActionId::CheckAssertion => ActionRequest::CheckAssertion(parameters(body)?),
    })
}

/// An action body: where its text fields sit, to name the one at fault.
trait Parameters: DeserializeOwned {
    /// The paths of its text fields, as error details name them.
    const TARGETS: &'static [&'static str];

    /// Its text fields, in the order of `TARGETS`.
    fn texts(&self) -> Vec<&str>;
}

impl Parameters for DeviceChoice {
    const TARGETS: &'static [&'static str] = &["deviceRef.id"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.device_ref.id]
    }
}

impl Parameters for NicknameUpdate {
    const TARGETS: &'static [&'static str] = &["id", "nickname"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.id, &self.nickname]
    }
}

impl Parameters for MobilePayload {
    const TARGETS: &'static [&'static str] = &["mobilePayload"];

    fn texts(&self) -> Vec<&str> {
        // Absent is a browser's `authenticate {}`; present, it must not be empty.
        self.mobile_payload.iter().map(String::as_str).collect()
    }
}

impl Parameters for Passcode {
    const TARGETS: &'static [&'static str] = &["otp"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.otp]
    }
}

impl Parameters for Attestation {
    const TARGETS: &'static [&'static str] = &["attestation", "origin"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.attestation, &self.origin]
    }
}

impl Parameters for Assertion {
    const TARGETS: &'static [&'static str] = &["assertion", "origin", "compatibility"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.assertion, &self.origin]
    }
}

impl Parameters for PairingMethodChoice {
    const TARGETS: &'static [&'static str] = &["devicePairingMethod.deviceType"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.device_pairing_method.device_type]
    }
}

impl Parameters for PhoneTarget {
    const TARGETS: &'static [&'static str] = &["phone"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.phone]
    }
}

impl Parameters for EmailTarget {
    const TARGETS: &'static [&'static str] = &["email"];

    fn texts(&self) -> Vec<&str> {
        vec![&self.email]
    }
}

/// Reads a JSON object as `T`, refusing empty text; the error names the field at fault.
fn parameters<T: Parameters>(body: &[u8]) -> Result<T, AuthnError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            let at = error.path().to_string();
            let inner = error.into_inner();
            // serde reports a missing field at its parent, naming it only in the message.
            let missing = inner
                .to_string()
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .map(|field| match at.as_str() {
                    "." => field.to_owned(),
                    parent => format!("{parent}.{field}"),
                });
            let place = missing.as_deref().unwrap_or(&at);
            let target = T::TARGETS
                .iter()
                .copied()
                .find(|target| {
                    *target == place
                        || target
                            .strip_prefix(place)
                            .is_some_and(|rest| rest.starts_with('.'))
                })
                .unwrap_or(T::TARGETS[0]);
            return Err(match missing {
                Some(_) => missing_value(target),
                None => invalid_value(target),
            });
        }
    };
    match T::TARGETS
        .iter()
        .zip(parsed.texts())
        .find(|(_, text)| text.is_empty())
    {
        Some((target, _)) => Err(invalid_value(target)),
        None => Ok(parsed),
    }
}

fn missing_value(target: &'static str) -> AuthnError {
    AuthnError::Validation {
        code: DetailCode::MissingValue,
        message: format!("`{target}` is required"),
        target,
    }
}

fn invalid_value(target: &'static str) -> AuthnError {
    AuthnError::Validation {
        code: DetailCode::InvalidValue,
        message: format!("`{target}` must be a non-empty string"),
        target,
    }
}

/// The domain action for a request (not `poll`, which only waits).
pub fn flow_action(request: ActionRequest) -> Result<FlowAction, AuthnError> {
    Ok(match request {
        ActionRequest::SelectDevice(choice) => FlowAction::SelectDevice(choice.device_ref.id),
        ActionRequest::SetDefaultDevice(choice) => {
            FlowAction::SetDefaultDevice(choice.device_ref.id)
        }
        ActionRequest::RemoveDevice(choice) => FlowAction::RemoveDevice(choice.device_ref.id),
        ActionRequest::UpdateDeviceNickname(update) => FlowAction::UpdateDeviceNickname {
            id: update.id,
            nickname: update.nickname,
        },
        ActionRequest::ContinueAuthentication => FlowAction::Continue,
        ActionRequest::CancelAuthentication => FlowAction::Cancel,
        ActionRequest::CancelDevicePairing => FlowAction::CancelPairing,
        ActionRequest::Authenticate(payload) => FlowAction::Authenticate {
            mobile_payload: payload.mobile_payload,
        },
        ActionRequest::CheckOtp(passcode) => FlowAction::CheckOtp(passcode.otp),
        ActionRequest::Resend => FlowAction::Resend(Action::Resend),
        ActionRequest::ResendOtp => FlowAction::Resend(Action::ResendOtp),
        ActionRequest::SetupMfa => FlowAction::SetupMfa,
        ActionRequest::SelectDevicePairingMethod(choice) => {
            FlowAction::SelectPairingMethod(choice.device_pairing_method.device_type)
        }
        ActionRequest::SubmitSmsTarget(target) => FlowAction::SubmitTarget {
            method: Method::Sms,
            address: target.phone,
        },
        ActionRequest::SubmitVoiceTarget(target) => FlowAction::SubmitTarget {
            method: Method::Voice,
            address: target.phone,
        },
        ActionRequest::SubmitEmailTarget(target) => FlowAction::SubmitTarget {
            method: Method::Email,
            address: target.email,
        },
        ActionRequest::ActivateSmsDevice(passcode) => activate(Method::Sms, passcode),
        ActionRequest::ActivateVoiceDevice(passcode) => activate(Method::Voice, passcode),
        ActionRequest::ActivateEmailDevice(passcode) => activate(Method::Email, passcode),
        ActionRequest::ActivateTotpDevice(passcode) => activate(Method::Totp, passcode),
        ActionRequest::ActivateSecurityKeyDevice(answer) => FlowAction::ActivateWebauthn {
            method: Method::SecurityKey,
            attestation: answer.attestation,
            origin: answer.origin,
        },
        ActionRequest::ActivatePlatformDevice(answer) => FlowAction::ActivateWebauthn {
            method: Method::Platform,
            attestation: answer.attestation,
            origin: answer.origin,
        },
        ActionRequest::CheckAssertion(answer) => FlowAction::CheckAssertion {
            assertion: answer.assertion,
            origin: answer.origin,
        },
        ActionRequest::Poll => {
            return Err(AuthnError::InvalidActionId(
                "poll is handled by waiting, not as a flow action".to_owned(),
            ));
        }
    })
}

fn activate(method: Method, passcode: Passcode) -> FlowAction {
    FlowAction::Activate {
        method,
        otp: passcode.otp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_of(id: ActionId, body: &str) -> (DetailCode, &'static str) {
        match request(id, body.as_bytes()) {
            Err(AuthnError::Validation { code, target, .. }) => (code, target),
            other => panic!("a validation error for {body}: {other:?}"),
        }
    }

    #[test]
    fn a_wrong_parameter_is_named_by_its_full_path() {
        let missing = (DetailCode::MissingValue, "deviceRef.id");
        assert_eq!(target_of(ActionId::SelectDevice, "{}"), missing);
        assert_eq!(
            target_of(ActionId::SelectDevice, r#"{"deviceRef":{}}"#),
            missing
        );
        let invalid = (DetailCode::InvalidValue, "deviceRef.id");
        assert_eq!(
            target_of(ActionId::SelectDevice, r#"{"deviceRef":{"id":""}}"#),
            invalid
        );
        assert_eq!(
            target_of(ActionId::SelectDevice, r#"{"deviceRef":{"id":7}}"#),
            invalid
        );
        assert_eq!(
            target_of(ActionId::UpdateDeviceNickname, r#"{"id":"D1"}"#),
            (DetailCode::MissingValue, "nickname")
        );
        assert_eq!(
            target_of(
                ActionId::UpdateDeviceNickname,
                r#"{"id":"D1","nickname":false}"#
            ),
            (DetailCode::InvalidValue, "nickname")
        );
        assert_eq!(
            target_of(
                ActionId::SelectDevicePairingMethod,
                r#"{"devicePairingMethod":{"deviceType":""}}"#
            ),
            (DetailCode::InvalidValue, "devicePairingMethod.deviceType")
        );
    }

    #[test]
    fn bodies_are_objects_or_empty() {
        for body in ["[1,2]", "\"otp\"", "{not json"] {
            assert!(matches!(
                request(ActionId::CheckOtp, body.as_bytes()),
                Err(AuthnError::InvalidJson(_))
            ));
        }
        assert!(matches!(
            request(ActionId::CancelAuthentication, b" \n"),
            Ok(ActionRequest::CancelAuthentication)
        ));
        // The widget adds fields of its own (FIDO's relyingPartyId...): they are ignored.
        assert!(matches!(
            request(
                ActionId::SelectDevicePairingMethod,
                br#"{"devicePairingMethod":{"deviceType":"SMS","userAgent":"x"}}"#
            ),
            Ok(ActionRequest::SelectDevicePairingMethod(_))
        ));
    }
}
