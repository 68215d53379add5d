//! Tokens: the ID token (OpenID Connect), the JWT access token (RFC 9068) and the opaque,
//! rotating refresh token; the token endpoint's grants; introspection (RFC 7662).

pub(crate) mod claims;
#[cfg(test)]
mod tests;

use assent_core::AdapterError;
use assent_core::config::{CibaClientConfig, DeliveryMode};
use assent_core::error::FlowError;
use assent_core::flow::ciba::Grant;
use assent_core::flow::{Flow, View};
use assent_core::ids::random_alphanumeric;
use assent_proto::ciba::{
    AccessTokenClaims, ErrorCode, Introspection, ProfileClaims, TokenResponse, TokenType,
};

pub use self::claims::Authentication;
use self::claims::Issuance;
use crate::Provider;
use crate::error::OAuthError;
use crate::form::Form;

/// The CIBA grant type.
pub const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";

/// What a token request for a CIBA request gets while there are no tokens yet.
fn not_yet(grant: Grant) -> Option<OAuthError> {
    let (code, description) = match grant {
        Grant::Approved => return None,
        Grant::Pending => (
            ErrorCode::AuthorizationPending,
            "the user has not answered yet",
        ),
        Grant::SlowDown => (
            ErrorCode::SlowDown,
            "polling too fast: the interval grew by 5 seconds",
        ),
        Grant::Expired => (ErrorCode::ExpiredToken, "the auth_req_id has expired"),
        Grant::Denied => (ErrorCode::AccessDenied, "the user denied the request"),
    };
    Some(OAuthError::new(code, description))
}

impl Provider {
    /// Mints the tokens for an authentication.
    pub async fn mint(
        &self,
        client: &CibaClientConfig,
        auth: &Authentication<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let config = &self.adapter.config().ciba;
        let issuer = self.issuer();
        let at = Issuance {
            issuer: &issuer,
            client_id: &client.id,
            now: self.adapter.clock().now_secs(),
        };
        let keys = self.keys.keys().await;
        let server_error = |error: crate::signing::SigningError| {
            tracing::error!(%error, "token signing failed");
            OAuthError::server_error("tokens could not be signed")
        };

        let access = claims::access_token(
            at,
            auth,
            config.access_token_lifetime_secs,
            random_alphanumeric(22),
        );
        let access_token = keys
            .sign(&config.access_token_signing_alg, "at+jwt", &access)
            .map_err(server_error)?;
        let refresh_token =
            match claims::refresh_grant(at, auth, config.refresh_token_lifetime_secs) {
                Some(grant) => Some(self.adapter.refresh_tokens().issue(&grant).await?),
                None => None,
            };
        let profile = self.profile(auth).await?;
        let id = claims::id_token(
            at,
            auth,
            config.id_token_lifetime_secs,
            &access_token,
            refresh_token.as_deref(),
            profile,
        );
        let id_token = keys
            .sign(&client.id_token_signed_response_alg, "JWT", &id)
            .map_err(server_error)?;
        self.metrics.tokens_issued.inc();
        Ok(TokenResponse {
            access_token,
            token_type: TokenType::Bearer,
            expires_in: config.access_token_lifetime_secs,
            id_token,
            refresh_token,
            scope: access.scope,
        })
    }

    /// The user's claims the scopes ask for; the user is read only when some are.
    async fn profile(&self, auth: &Authentication<'_>) -> Result<ProfileClaims, OAuthError> {
        if !claims::wants_profile(auth.scopes) {
            return Ok(ProfileClaims::default());
        }
        if let Some(user) = auth.profile {
            return Ok(claims::profile(user, auth.scopes));
        }
        let user = self.adapter.user(auth.subject).await?;
        Ok(claims::profile(&user, auth.scopes))
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
            refresh_family: None,
            profile: request.profile.as_ref(),
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
                ErrorCode::UnsupportedGrantType,
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
                ErrorCode::UnauthorizedClient,
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
        if let Some(error) = not_yet(grant) {
            return Err(error);
        }
        let auth = Self::approved(&flow, false)
            .ok_or_else(|| OAuthError::server_error("approved without approval"))?;
        self.mint(client, &auth).await
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
        self.mint(client, &Authentication::of_refresh(&grant)).await
    }

    /// RFC 7662: whether a token is active, for the client it was issued to.
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<Introspection, OAuthError> {
        let client = self.authenticate_client(authorization, form).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let keys = self.keys.keys().await;
        if let Ok(verified) = crate::jose::verify(token, &keys.jwks()) {
            // Our ID tokens verify too: only access tokens are introspected.
            let access = (crate::jose::header_type(token).as_deref() == Some("at+jwt"))
                .then(|| {
                    serde_json::from_value::<AccessTokenClaims>(
                        verified.claims_set().clone().into(),
                    )
                    .ok()
                })
                .flatten();
            return Ok(match access {
                Some(access) => {
                    claims::introspect_access(access, &client.id, self.adapter.clock().now_secs())
                }
                None => Introspection::inactive(),
            });
        }
        Ok(
            match self
                .adapter
                .refresh_tokens()
                .find(token, &client.id)
                .await?
            {
                Some(grant) => claims::introspect_refresh(grant, &self.issuer()),
                None => Introspection::inactive(),
            },
        )
    }
}
