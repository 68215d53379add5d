//! `application/problem+json` (RFC 9457), the error convention of the Adapter, Device and
//! Admin APIs; [`ProblemError`] is the one place adapter errors become responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_core::error::{AdapterError, FlowError};
use serde::Serialize;

/// A problem details body.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A short summary of the kind.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The flow's current status, when the problem is that the flow has not ended.
    #[serde(rename = "flowStatus", skip_serializing_if = "Option::is_none")]
    pub flow_status: Option<&'static str>,
}

/// An error on its way to becoming a problem response.
#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    /// From the domain.
    #[error(transparent)]
    Domain(#[from] AdapterError),
    /// From HTTP itself: body too large, wrong content type.
    #[error("{detail}")]
    Http {
        /// The status to answer.
        status: StatusCode,
        /// What was wrong.
        detail: String,
    },
}

impl ProblemError {
    fn problem(&self) -> (StatusCode, &'static str, &'static str) {
        let error = match self {
            Self::Domain(error) => error,
            Self::Http { status, .. } => {
                return (
                    *status,
                    "urn:assent:problem:invalid-request",
                    status.canonical_reason().unwrap_or("Invalid request"),
                );
            }
        };
        match error {
            AdapterError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:assent:problem:unavailable",
                "Service unavailable",
            ),
            AdapterError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "urn:assent:problem:unauthenticated",
                "Authentication required",
            ),
            AdapterError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "urn:assent:problem:forbidden",
                "Forbidden",
            ),
            AdapterError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "urn:assent:problem:not-found",
                "Not found",
            ),
            AdapterError::Invalid(_) => (
                StatusCode::BAD_REQUEST,
                "urn:assent:problem:invalid-request",
                "Invalid request",
            ),
            AdapterError::Conflict(_) => (
                StatusCode::CONFLICT,
                "urn:assent:problem:conflict",
                "Conflict",
            ),
            AdapterError::Flow(FlowError::UnknownDevice) => (
                StatusCode::BAD_REQUEST,
                "urn:assent:problem:invalid-request",
                "Invalid request",
            ),
            AdapterError::Flow(FlowError::Throttled(_) | FlowError::PushLimited) => (
                StatusCode::TOO_MANY_REQUESTS,
                "urn:assent:problem:too-many-requests",
                "Too many requests",
            ),
            AdapterError::Flow(FlowError::AlreadyPickedUp) => (
                StatusCode::NOT_FOUND,
                "urn:assent:problem:not-found",
                "Not found",
            ),
            AdapterError::Flow(_) => (
                StatusCode::CONFLICT,
                "urn:assent:problem:flow-state",
                "Not possible in the flow's current state",
            ),
            AdapterError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "urn:assent:problem:internal",
                "Internal error",
            ),
        }
    }
}

impl ResponseError for ProblemError {
    fn status_code(&self) -> StatusCode {
        self.problem().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, kind, title) = self.problem();
        let detail = match self {
            // Internal details stay in the log, not in the response.
            Self::Domain(AdapterError::Internal(reason)) => {
                tracing::error!(%reason, "internal error");
                "an internal error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match status {
            StatusCode::UNAUTHORIZED => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(
                        "Basic realm=\"assent\", Bearer realm=\"assent\", Device realm=\"assent\"",
                    ),
                ));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            StatusCode::TOO_MANY_REQUESTS => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("60")));
            }
            _ => {}
        }
        response.json(Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
            flow_status: match self {
                Self::Domain(AdapterError::Flow(FlowError::NotTerminal(status))) => Some(status),
                _ => None,
            },
        })
    }
}

/// A problem for a request that never reached the domain (bad JSON, bad query).
pub fn bad_request(detail: impl Into<String>) -> ProblemError {
    ProblemError::Domain(AdapterError::Invalid(detail.into()))
}

/// Maps a JSON body that could not be read: 413 when too large, 415 when not JSON, else 400.
pub fn json_error(error: actix_web::error::JsonPayloadError) -> ProblemError {
    use actix_web::error::JsonPayloadError;
    let status = match &error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    ProblemError::Http {
        status,
        detail: error.to_string(),
    }
}
