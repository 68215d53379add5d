//! Tokens: the ID token (OpenID Connect), the JWT access token (RFC 9068) and the opaque,
//! rotating refresh token; the token endpoint's grants; introspection (RFC 7662).

use assent_core::AdapterError;
use assent_core::config::{CibaClientConfig, DeliveryMode};
use assent_core::error::FlowError;
use assent_core::flow::ciba::Grant;
use assent_core::flow::{ApprovalMethod, Flow, View};
use assent_core::oauth::refresh::RefreshGrant;
use assent_core::user::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::Provider;
use crate::error::OAuthError;
use crate::form::Form;

/// The CIBA grant type.
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// A token response (RFC 6749 §5.1 with an ID token).
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The JWT access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// The ID token.
    pub id_token: String,
    /// When `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted.
    pub scope: String,
}

/// The authentication behind a set of tokens.
pub struct Authentication<'a> {
    /// The user.
    pub subject: &'a UserId,
    /// Scopes granted.
    pub scopes: &'a [String],
    /// When the person approved (seconds since the epoch).
    pub auth_time: u64,
    /// How the person approved (`amr` and `acr` follow from it).
    pub method: ApprovalMethod,
    /// Push mode binds the ID token to the request and the tokens (CIBA §10.3.1).
    pub push_auth_req_id: Option<&'a str>,
    /// When a refresh session started by this authentication ends (set on refresh).
    pub session_ends_at: Option<u64>,
}

/// Left half of the SHA-256 of a token, base64url: `at_hash` / `rt_hash` for RS256,
/// PS256 and ES256 alike.
fn half_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Provider {
    /// Mints the tokens for an authentication.
    pub async fn mint(
        &self,
        client: &CibaClientConfig,
        auth: &Authentication<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let config = &self.adapter.config().ciba;
        let now = self.adapter.clock().now_secs();
        let keys = self.keys.keys().await;
        let scope = auth.scopes.join(" ");
        let server_error = |error: crate::signing::SigningError| {
            tracing::error!(%error, "token signing failed");
            OAuthError::new("server_error", "tokens could not be signed")
        };

        let access_token = keys
            .sign(
                "RS256",
                "at+jwt",
                object(json!({
                    "iss": self.issuer(),
                    "sub": auth.subject.as_str(),
                    "aud": self.issuer(),
                    "client_id": client.id,
                    "iat": now,
                    "exp": now + config.access_token_lifetime_secs,
                    "jti": assent_core::ids::random_alphanumeric(22),
                    "scope": scope,
                    "auth_time": auth.auth_time,
                    "acr": auth.method.acr(),
                    "amr": auth.method.amr(),
                })),
            )
            .map_err(server_error)?;

        let refresh_token = if auth.scopes.iter().any(|scope| scope == "offline_access") {
            let expires_at = auth
                .session_ends_at
                .unwrap_or(now + config.refresh_token_lifetime_secs);
            let grant = RefreshGrant {
                client_id: client.id.clone(),
                subject: auth.subject.clone(),
                scopes: auth.scopes.to_vec(),
                auth_time: auth.auth_time,
                method: auth.method,
                expires_at,
            };
            Some(self.adapter.refresh_tokens().issue(&grant).await?)
        } else {
            None
        };

        let mut claims = object(json!({
            "iss": self.issuer(),
            "sub": auth.subject.as_str(),
            "aud": client.id,
            "iat": now,
            "exp": now + config.id_token_lifetime_secs,
            "auth_time": auth.auth_time,
            "amr": auth.method.amr(),
            "at_hash": half_hash(&access_token),
        }));
        if let Some(acr) = auth.method.acr() {
            claims.insert("acr".into(), acr.into());
        }
        if let Some(auth_req_id) = auth.push_auth_req_id {
            claims.insert(
                "urn:openid:params:jwt:claim:auth_req_id".into(),
                auth_req_id.into(),
            );
            if let Some(refresh) = &refresh_token {
                claims.insert(
                    "urn:openid:params:jwt:claim:rt_hash".into(),
                    half_hash(refresh).into(),
                );
            }
        }
        self.profile_claims(auth.subject, auth.scopes, &mut claims)
            .await?;
        let id_token = keys
            .sign(&client.id_token_signed_response_alg, "JWT", claims)
            .map_err(server_error)?;
        self.metrics.tokens_issued.inc();
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: config.access_token_lifetime_secs,
            id_token,
            refresh_token,
            scope,
        })
    }

    /// Standard claims the scopes ask for (OIDC Core §5.4).
    async fn profile_claims(
        &self,
        subject: &UserId,
        scopes: &[String],
        claims: &mut Map<String, Value>,
    ) -> Result<(), OAuthError> {
        let wants = |scope: &str| scopes.iter().any(|granted| granted == scope);
        if !wants("profile") && !wants("email") && !wants("phone") {
            return Ok(());
        }
        let profile = self.adapter.user(subject).await?;
        if wants("profile") {
            claims.insert("preferred_username".into(), profile.username.into());
            if let Some(given) = profile.first_name {
                claims.insert("given_name".into(), given.into());
            }
            if let Some(family) = profile.last_name {
                claims.insert("family_name".into(), family.into());
            }
        }
        if wants("email")
            && let Some(email) = profile.email
        {
            claims.insert("email".into(), email.into());
        }
        if wants("phone")
            && let Some(phone) = profile.phone
        {
            claims.insert("phone_number".into(), phone.into());
        }
        Ok(())
    }

    /// The authentication behind an approved CIBA flow.
    pub(crate) fn approved<'a>(flow: &'a Flow, push: bool) -> Option<Authentication<'a>> {
        let request = flow.ciba.as_ref()?;
        let approval = match flow.view() {
            View::Completed {
                approval: Some(approval),
                ..
            }
            | View::MfaCompleted(approval) => approval,
            _ => return None,
        };
        Some(Authentication {
            subject: &flow.user_id,
            scopes: &request.scopes,
            auth_time: approval.decided_at_ms / 1000,
            method: approval.method,
            push_auth_req_id: push.then_some(flow.id.as_str()),
            session_ends_at: None,
        })
    }

    /// The token endpoint.
    pub async fn token(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.authenticate_client(authorization, form).await?;
        match form.get("grant_type") {
            Some(CIBA_GRANT) => self.ciba_grant(client, form).await,
            Some("refresh_token") => self.refresh_grant(client, form).await,
            Some(_) => Err(OAuthError::new(
                "unsupported_grant_type",
                "grant_type must be urn:openid:params:grant-type:ciba or refresh_token",
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }
    }

    async fn ciba_grant(
        &self,
        client: &CibaClientConfig,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        if client.delivery_mode == DeliveryMode::Push {
            return Err(OAuthError::new(
                "unauthorized_client",
                "the client is registered for push mode: tokens are pushed, not polled",
            ));
        }
        let auth_req_id = form
            .get("auth_req_id")
            .ok_or_else(|| OAuthError::invalid_request("auth_req_id is required"))?;
        let (flow, grant) = match self.adapter.ciba_token(auth_req_id, &client.id).await {
            Ok(answer) => answer,
            Err(AdapterError::NotFound(_)) => {
                return Err(OAuthError::invalid_grant(
                    "unknown auth_req_id, or issued to another client",
                ));
            }
            Err(AdapterError::Flow(FlowError::AlreadyPickedUp)) => {
                return Err(OAuthError::invalid_grant(
                    "the auth_req_id was already redeemed",
                ));
            }
            Err(error) => return Err(error.into()),
        };
        match grant {
            Grant::Pending => Err(OAuthError::new(
                "authorization_pending",
                "the user has not answered yet",
            )),
            Grant::SlowDown => Err(OAuthError::new(
                "slow_down",
                "polling too fast: the interval grew by 5 seconds",
            )),
            Grant::Expired => Err(OAuthError::new(
                "expired_token",
                "the auth_req_id has expired",
            )),
            Grant::Denied => Err(OAuthError::new(
                "access_denied",
                "the user denied the request",
            )),
            Grant::Approved => {
                let auth = Self::approved(&flow, false)
                    .ok_or_else(|| OAuthError::new("server_error", "approved without approval"))?;
                self.mint(client, &auth).await
            }
        }
    }

    async fn refresh_grant(
        &self,
        client: &CibaClientConfig,
        form: &Form,
    ) -> Result<TokenResponse, OAuthError> {
        let token = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        // Rotation: the token works once; of two concurrent uses one wins.
        let grant = self
            .adapter
            .refresh_tokens()
            .redeem(token, &client.id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("unknown, expired or used refresh token"))?;
        let auth = Authentication {
            subject: &grant.subject,
            scopes: &grant.scopes,
            auth_time: grant.auth_time,
            method: grant.method,
            push_auth_req_id: None,
            session_ends_at: Some(grant.expires_at),
        };
        self.mint(client, &auth).await
    }

    /// RFC 7662: whether a token is active, for the client it was issued to.
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticate_client(authorization, form).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let inactive = json!({ "active": false });
        let keys = self.keys.keys().await;
        if let Ok(claims) = crate::jose::verify(token, &keys.jwks()) {
            let now = self.adapter.clock().now_secs();
            let exp = assent_core::jwt::numeric_claim(&claims, "exp")
                .ok()
                .flatten();
            let typ_ok = crate::jose::header_type(token).as_deref() == Some("at+jwt");
            let mine =
                claims.claim("client_id").and_then(Value::as_str) == Some(client.id.as_str());
            if !typ_ok || !mine || exp.is_none_or(|exp| exp <= now) {
                return Ok(inactive);
            }
            let mut answer = claims.claims_set().clone();
            answer.insert("active".into(), true.into());
            answer.insert("token_type".into(), "Bearer".into());
            return Ok(Value::Object(answer));
        }
        match self
            .adapter
            .refresh_tokens()
            .find(token, &client.id)
            .await?
        {
            Some(grant) => Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "sub": grant.subject,
                "scope": grant.scopes.join(" "),
                "iss": self.issuer(),
                "exp": grant.expires_at,
            })),
            _ => Ok(inactive),
        }
    }
}
