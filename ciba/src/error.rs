//! OAuth errors (`{error, error_description}`), the convention of every CIBA, token and
//! introspection endpoint, and the one place they become responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use assent_core::AdapterError;
use assent_proto::ciba::{ErrorBody, ErrorCode};

/// An OAuth error code with its description.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The registered error code.
    pub code: ErrorCode,
    /// What went wrong, in printable ASCII.
    pub description: String,
    /// The HTTP status.
    pub status: StatusCode,
    /// Whether the client used HTTP Basic (a 401 then carries a Basic challenge).
    pub basic_challenge: bool,
}

impl OAuthError {
    /// An error with this code.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
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
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`, with a Basic challenge when the client tried Basic.
    pub fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(ErrorCode::InvalidClient, description)
        }
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `server_error`; the description stays generic.
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServerError, description)
    }
}

impl From<AdapterError> for OAuthError {
    fn from(error: AdapterError) -> Self {
        match error {
            AdapterError::Unavailable(_) => Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the service is unavailable; retry",
            ),
            AdapterError::NotFound(what) => Self::invalid_grant(format!("unknown {what}")),
            AdapterError::Invalid(reason) => Self::invalid_request(reason),
            AdapterError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                Self::server_error("an internal error occurred")
            }
            other => Self::invalid_request(other.to_string()),
        }
    }
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
        if self.code == ErrorCode::TemporarilyUnavailable {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(ErrorBody {
            error: self.code,
            error_description: printable(&self.description),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_its_status() {
        let status = |code| OAuthError::new(code, "").status;
        assert_eq!(status(ErrorCode::InvalidClient), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(ErrorCode::AuthorizationPending),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(ErrorCode::TemporarilyUnavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(ErrorCode::ServerError),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn descriptions_stay_printable_ascii() {
        assert_eq!(printable("a \"b\"\\ é\n"), "a 'b'' ??");
    }
}
