//! CIBA and its OAuth endpoints (CIBA Core 1.0, RFC 6749, RFC 7662, RFC 9068): the
//! backchannel acknowledgement, the token and introspection answers, discovery, ping and
//! push notifications, the claims inside the tokens, and the error body with its codes.

use serde::{Deserialize, Serialize};

/// An error code of OAuth 2.0, CIBA Core or RFC 7662.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is malformed.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The auth_req_id or refresh token is unknown, spent, or another client's.
    InvalidGrant,
    /// A scope is unknown, not allowed for the client, or `openid` is missing.
    InvalidScope,
    /// The client may not use this grant (a push-mode client polling).
    UnauthorizedClient,
    /// The grant type is not one assent supports.
    UnsupportedGrantType,
    /// The person denied the request, or it cannot be put to them.
    AccessDenied,
    /// CIBA: the person has not answered yet.
    AuthorizationPending,
    /// CIBA: polling faster than the interval; the interval grew.
    SlowDown,
    /// CIBA: the auth_req_id has expired.
    ExpiredToken,
    /// CIBA: the login_hint_token has expired.
    ExpiredLoginHintToken,
    /// CIBA: the hint names no known user.
    UnknownUserId,
    /// CIBA: the binding message is too long or not printable.
    InvalidBindingMessage,
    /// CIBA: the user code is wrong (or too many were).
    InvalidUserCode,
    /// CIBA: the client must send the user's code and did not.
    MissingUserCode,
    /// CIBA push mode: the approved request could not be turned into tokens.
    TransactionFailed,
    /// The service cannot answer now; retry.
    TemporarilyUnavailable,
    /// A bug on assent's side.
    ServerError,
}

impl ErrorCode {
    /// The registered name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::AccessDenied => "access_denied",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::ExpiredLoginHintToken => "expired_login_hint_token",
            Self::UnknownUserId => "unknown_user_id",
            Self::InvalidBindingMessage => "invalid_binding_message",
            Self::InvalidUserCode => "invalid_user_code",
            Self::MissingUserCode => "missing_user_code",
            Self::TransactionFailed => "transaction_failed",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error of these endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The code.
    pub error: ErrorCode,
    /// What went wrong, in printable ASCII.
    pub error_description: String,
}

/// The answer of the backchannel authentication endpoint (CIBA §7.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The request's id.
    pub auth_req_id: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Minimum seconds between polls (poll and ping modes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

/// The type of the access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    /// RFC 6750 bearer token.
    Bearer,
}

/// A token response (RFC 6749 §5.1, with the ID token of OpenID Connect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: TokenType,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// The ID token.
    pub id_token: String,
    /// When `offline_access` was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// What an introspected token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntrospectedType {
    /// An access token.
    Bearer,
    /// A refresh token.
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

/// The answer of the introspection endpoint (RFC 7662 §2.2): `{"active": false}` alone for
/// a token that is not active for the asking client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introspection {
    /// Whether the token is active.
    pub active: bool,
    /// What the token is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<IntrospectedType>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The audience (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// When it was issued (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// When it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Its id (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When the person approved (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The authentication context class (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The authentication methods (access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl Introspection {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Self::default()
    }
}

/// The claims of an access token (RFC 9068).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The audience: the issuer itself (its introspection endpoint).
    pub aud: String,
    /// The client it was issued to.
    pub client_id: String,
    /// When it was issued.
    pub iat: u64,
    /// When it expires.
    pub exp: u64,
    /// Its id.
    pub jti: String,
    /// The scopes, space-separated.
    pub scope: String,
    /// When the person approved.
    pub auth_time: u64,
    /// The authentication context class (`null` when the approval reaches none).
    pub acr: Option<String>,
    /// The authentication methods (RFC 8176).
    pub amr: Vec<String>,
}

/// The claims of an ID token (OpenID Connect Core §2, CIBA §7.4 and §10.3.1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// When it was issued.
    pub iat: u64,
    /// When it expires.
    pub exp: u64,
    /// When the person approved.
    pub auth_time: u64,
    /// The authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// The authentication context class, when the approval reaches one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Left half of the access token's SHA-256.
    pub at_hash: String,
    /// Push mode: the request the tokens answer.
    #[serde(
        rename = "urn:openid:params:jwt:claim:auth_req_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_req_id: Option<String>,
    /// Push mode: left half of the refresh token's SHA-256.
    #[serde(
        rename = "urn:openid:params:jwt:claim:rt_hash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub rt_hash: Option<String>,
    /// The standard claims the scopes asked for.
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// Standard claims (OpenID Connect Core §5.1) released by the `profile`, `email` and
/// `phone` scopes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileClaims {
    /// The login name (`profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Given name (`profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name (`profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Email address (`email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number (`phone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// What a ping-mode client is sent once the person answered (CIBA §10.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNotification {
    /// The request that has an answer.
    pub auth_req_id: String,
}

/// What a push-mode client is sent (CIBA §10.3): the tokens, or why there are none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PushNotification {
    /// The person approved: the tokens.
    Tokens {
        /// The request answered.
        auth_req_id: String,
        /// The tokens.
        #[serde(flatten)]
        tokens: TokenResponse,
    },
    /// The person denied, or the tokens could not be issued.
    Error {
        /// The request answered.
        auth_req_id: String,
        /// `access_denied` or `transaction_failed`.
        error: ErrorCode,
        /// Why.
        error_description: String,
    },
}

/// The OpenID Provider metadata (`/.well-known/openid-configuration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The issuer identifier.
    pub issuer: String,
    /// The JWK set of the token signing keys.
    pub jwks_uri: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The backchannel authentication endpoint.
    pub backchannel_authentication_endpoint: String,
    /// The introspection endpoint.
    pub introspection_endpoint: String,
    /// Grant types.
    pub grant_types_supported: Vec<String>,
    /// CIBA delivery modes.
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// Algorithms of signed authentication requests.
    pub backchannel_authentication_request_signing_alg_values_supported: Vec<String>,
    /// Whether `user_code` is supported.
    pub backchannel_user_code_parameter_supported: bool,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algorithms of `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// ID token signing algorithms.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Subject identifier types.
    pub subject_types_supported: Vec<String>,
    /// Response types (none: there is no authorization endpoint).
    pub response_types_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Claims.
    pub claims_supported: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_notification_is_either_tokens_or_an_error() {
        let error = PushNotification::Error {
            auth_req_id: "r1".into(),
            error: ErrorCode::AccessDenied,
            error_description: "no".into(),
        };
        let text = serde_json::to_string(&error).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"auth_req_id":"r1","error":"access_denied","error_description":"no"}"#
        );
        assert_eq!(
            serde_json::from_str::<PushNotification>(&text).ok(),
            Some(error)
        );

        let tokens = PushNotification::Tokens {
            auth_req_id: "r1".into(),
            tokens: TokenResponse {
                access_token: "a".into(),
                token_type: TokenType::Bearer,
                expires_in: 60,
                id_token: "i".into(),
                refresh_token: None,
                scope: "openid".into(),
            },
        };
        let text = serde_json::to_string(&tokens).unwrap_or_default();
        assert!(text.contains(r#""auth_req_id":"r1""#), "{text}");
        assert!(text.contains(r#""token_type":"Bearer""#), "{text}");
        assert_eq!(
            serde_json::from_str::<PushNotification>(&text).ok(),
            Some(tokens)
        );
    }

    #[test]
    fn an_inactive_token_says_only_that() {
        let text = serde_json::to_string(&Introspection::inactive()).unwrap_or_default();
        assert_eq!(text, r#"{"active":false}"#);
    }

    #[test]
    fn error_codes_use_their_registered_names() {
        for code in [ErrorCode::SlowDown, ErrorCode::ExpiredLoginHintToken] {
            let text = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(text, format!("\"{}\"", code.as_str()));
        }
    }
}
