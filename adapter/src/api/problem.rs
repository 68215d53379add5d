//! `application/problem+json` (RFC 9457), the error convention of the Adapter, Device and
//! Admin APIs; [`ProblemError`] is the one place adapter errors become responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::AdapterError;

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
}

/// An adapter error on its way to becoming a problem response.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ProblemError(#[from] pub AdapterError);

impl ProblemError {
    fn problem(&self) -> (StatusCode, &'static str, &'static str) {
        match &self.0 {
            AdapterError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "urn:assent:problem:unavailable",
                "Service unavailable",
            ),
            AdapterError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "urn:assent:problem:unauthenticated",
                "Authentication required",
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
        let detail = match &self.0 {
            // Internal details stay in the log, not in the response.
            AdapterError::Internal(reason) => {
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
                    HeaderValue::from_static("Basic realm=\"assent\", Bearer realm=\"assent\""),
                ));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        response.json(Problem {
            kind,
            title,
            status: status.as_u16(),
            detail,
        })
    }
}

/// A problem for a request that never reached the domain (bad JSON, oversized body).
pub fn bad_request(detail: impl Into<String>) -> ProblemError {
    ProblemError(AdapterError::Invalid(detail.into()))
}
