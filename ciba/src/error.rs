//! OAuth errors (`{error, error_description}`), the convention of every CIBA, token and
//! introspection endpoint, and the one place they become responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_core::AdapterError;
use serde::Serialize;

/// An OAuth error code with its description.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The registered error code.
    pub code: &'static str,
    /// What went wrong, in printable ASCII.
    pub description: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// Whether the client used HTTP Basic (a 401 then carries a Basic challenge).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with this code.
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        let status = match code {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            code,
            description: description.into(),
            status,
            basic_challenge: false,
        }
    }

    /// The same error with another status (`access_denied` is 403 at the backchannel
    /// endpoint, 400 at the token endpoint).
    pub fn with_status(self, status: StatusCode) -> Self {
        Self { status, ..self }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    /// `invalid_client`, with a Basic challenge when the client tried Basic.
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new("invalid_client", description)
        }
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }
}

impl From<AdapterError> for OAuthError {
    fn from(error: AdapterError) -> Self {
        match error {
            AdapterError::Unavailable(_) => Self::new(
                "temporarily_unavailable",
                "the service is unavailable; retry",
            ),
            AdapterError::NotFound(what) => Self::invalid_grant(format!("unknown {what}")),
            AdapterError::Invalid(reason) => Self::invalid_request(reason),
            AdapterError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                Self::new("server_error", "an internal error occurred")
            }
            other => Self::invalid_request(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: String,
}

/// Keeps a description within the characters RFC 6749 allows (%x20-21 / %x23-5B / %x5D-7E).
fn printable(description: &str) -> String {
    description
        .chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        if self.basic_challenge {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"assent\""),
            ));
        }
        if self.code == "temporarily_unavailable" {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(Body {
            error: self.code,
            error_description: printable(&self.description),
        })
    }
}
