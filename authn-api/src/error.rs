//! The Ping error model — `{code, message, details:[{code, message, userMessage, target}]}`
//! — and the one place where errors become Authentication API responses. Error bodies
//! never carry a `status` field: the widget reads any body with one as a flow state.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_core::AdapterError;
use assent_core::error::FlowError;
use assent_proto::authn::{DetailCode, ErrorBody, ErrorCode, ErrorDetail};

/// Why an Authentication API request failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// From the domain.
    #[error(transparent)]
    Domain(#[from] AdapterError),
    /// A POST without `X-XSRF-Header`.
    #[error("the X-XSRF-Header header is required")]
    MissingXsrf,
    /// No action id, an unknown one, or one the flow does not offer now.
    #[error("{0}")]
    InvalidActionId(String),
    /// Neither `application/vnd.pingidentity.<action>+json` nor `application/json`.
    #[error("{0}")]
    UnsupportedContentType(String),
    /// The body is not a JSON object.
    #[error("{0}")]
    InvalidJson(String),
    /// The body is larger than allowed.
    #[error("the request body is too large")]
    TooLarge,
    /// A field is missing or wrong.
    #[error("{message}")]
    Validation {
        /// Detail code, e.g. `INVALID_VALUE`.
        code: DetailCode,
        /// What is wrong.
        message: String,
        /// The field.
        target: &'static str,
    },
}

impl AuthnError {
    /// Status, top-level code, detail code, detail target.
    fn parts(&self) -> (StatusCode, ErrorCode, DetailCode, Option<&'static str>) {
        use DetailCode as D;
        use ErrorCode as E;
        use StatusCode as S;
        match self {
            Self::MissingXsrf => (S::FORBIDDEN, E::InvalidRequest, D::MissingXsrfHeader, None),
            Self::InvalidActionId(_) => {
                (S::BAD_REQUEST, E::InvalidActionId, D::InvalidActionId, None)
            }
            Self::UnsupportedContentType(_) => (
                S::UNSUPPORTED_MEDIA_TYPE,
                E::InvalidRequest,
                D::InvalidContentType,
                None,
            ),
            Self::InvalidJson(_) => (S::BAD_REQUEST, E::InvalidRequest, D::InvalidJson, None),
            Self::TooLarge => (
                S::PAYLOAD_TOO_LARGE,
                E::InvalidRequest,
                D::RequestTooLarge,
                None,
            ),
            Self::Validation { code, target, .. } => {
                (S::BAD_REQUEST, E::ValidationError, *code, Some(target))
            }
            Self::Domain(error) => match error {
                AdapterError::NotFound(_) => {
                    (S::NOT_FOUND, E::ResourceNotFound, D::ResourceNotFound, None)
                }
                AdapterError::Forbidden(_) => (
                    S::FORBIDDEN,
                    E::InvalidRequest,
                    D::FlowBoundToAnotherClient,
                    None,
                ),
                AdapterError::Flow(FlowError::NotAllowed { .. }) => {
                    (S::BAD_REQUEST, E::InvalidActionId, D::InvalidActionId, None)
                }
                AdapterError::Flow(FlowError::InvalidOtp(_) | FlowError::OtpReplayed) => (
                    S::BAD_REQUEST,
                    E::ValidationError,
                    D::InvalidOtp,
                    Some("otp"),
                ),
                AdapterError::Flow(FlowError::WebauthnRefused { target, .. }) => (
                    S::BAD_REQUEST,
                    E::ValidationError,
                    D::InvalidValue,
                    Some(*target),
                ),
                AdapterError::Flow(FlowError::DeviceRefused(_)) => (
                    S::BAD_REQUEST,
                    E::ValidationError,
                    D::DeviceNotAllowed,
                    Some("deviceRef.id"),
                ),
                AdapterError::Flow(FlowError::MethodNotOffered) => (
                    S::BAD_REQUEST,
                    E::ValidationError,
                    D::InvalidValue,
                    Some("devicePairingMethod.deviceType"),
                ),
                AdapterError::Flow(FlowError::Throttled(_)) => (
                    S::TOO_MANY_REQUESTS,
                    E::RequestFailed,
                    D::TooManyRequests,
                    None,
                ),
                AdapterError::Flow(FlowError::TooManyPushes) => (
                    S::TOO_MANY_REQUESTS,
                    E::RequestFailed,
                    D::TooManyRequests,
                    None,
                ),
                AdapterError::Flow(FlowError::PushLimited) => (
                    S::TOO_MANY_REQUESTS,
                    E::RequestFailed,
                    D::PushLimitExceeded,
                    None,
                ),
                AdapterError::Flow(FlowError::UnknownDevice) => (
                    S::BAD_REQUEST,
                    E::ValidationError,
                    D::InvalidDevice,
                    Some("deviceRef.id"),
                ),
                AdapterError::Invalid(_) => {
                    (S::BAD_REQUEST, E::ValidationError, D::InvalidValue, None)
                }
                AdapterError::Flow(_) | AdapterError::Conflict(_) => {
                    (S::CONFLICT, E::RequestFailed, D::Conflict, None)
                }
                AdapterError::Unauthenticated(_) => {
                    (S::UNAUTHORIZED, E::InvalidRequest, D::Unauthenticated, None)
                }
                AdapterError::Unavailable(_) => (
                    S::SERVICE_UNAVAILABLE,
                    E::RequestFailed,
                    D::ServiceUnavailable,
                    None,
                ),
                AdapterError::Internal(_) => (
                    S::INTERNAL_SERVER_ERROR,
                    E::UnexpectedError,
                    D::UnexpectedError,
                    None,
                ),
            },
        }
    }

    fn user_message(&self) -> &'static str {
        match self {
            Self::Domain(AdapterError::Unavailable(_)) => {
                "The service is temporarily unavailable. Please try again."
            }
            Self::Domain(AdapterError::NotFound(_)) => {
                "This sign-in has expired. Please start again."
            }
            Self::Domain(AdapterError::Flow(FlowError::UnknownDevice)) => {
                "That device is not one of yours."
            }
            Self::Domain(AdapterError::Flow(FlowError::InvalidOtp(_))) => {
                "The passcode is not correct. Please try again."
            }
            Self::Domain(AdapterError::Flow(FlowError::OtpReplayed)) => {
                "That passcode was already used. Please wait for the next one."
            }
            Self::Domain(AdapterError::Flow(FlowError::DeviceRefused(_))) => {
                "This device cannot be used. Please update it or choose another."
            }
            Self::Domain(AdapterError::Flow(FlowError::Throttled(_) | FlowError::PushLimited)) => {
                "Too many requests. Please wait and try again."
            }
            Self::Validation { .. } | Self::Domain(AdapterError::Invalid(_)) => {
                "Please check what you entered."
            }
            _ => "Something went wrong. Please try again.",
        }
    }
}

impl ResponseError for AuthnError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code, detail_code, target) = self.parts();
        let message = match self {
            Self::Domain(AdapterError::Internal(reason)) => {
                tracing::error!(%reason, "internal error");
                "An unexpected error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(status);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ErrorBody {
                code,
                message: message.clone(),
                details: vec![ErrorDetail {
                    code: detail_code,
                    message,
                    user_message: self.user_message().to_owned(),
                    target: target.map(str::to_owned),
                    attempts_remaining: match self {
                        Self::Domain(AdapterError::Flow(FlowError::InvalidOtp(left))) => {
                            Some(*left)
                        }
                        _ => None,
                    },
                }],
            })
    }
}
