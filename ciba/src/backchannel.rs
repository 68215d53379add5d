//! The backchannel authentication endpoint (CIBA Core §7): a client asks for a user's
//! approval on their mobile device and gets an `auth_req_id`.

use std::time::Duration;

use actix_web::http::StatusCode;
use assent_core::AdapterError;
use assent_core::config::{CibaClientConfig, DeliveryMode};
use assent_core::error::FlowError;
use assent_core::flow::StartCiba;
use assent_core::jwt::numeric_claim;
use assent_core::oauth::user_code::UserCodeCheck;
use assent_core::user::{Passcodes, UserId, UserWithDevices};
use assent_proto::ciba::{Acknowledgement, ErrorCode};
use serde_json::{Map, Value};

use crate::client_auth::AUTH_PARAMS;
use crate::error::OAuthError;
use crate::form::Form;
use crate::{Provider, jose};

/// Longest accepted binding message.
const MAX_BINDING_MESSAGE: usize = 100;
/// Longest accepted client notification token (CIBA §7.1).
const MAX_NOTIFICATION_TOKEN: usize = 1024;

/// The request's parameters: from the form, or from a signed request object.
enum Params<'a> {
    Form(&'a Form),
    Signed(Map<String, Value>),
}

impl Params<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Form(form) => form.get(name).map(str::to_owned),
            Self::Signed(claims) => match claims.get(name)? {
                Value::String(text) if !text.is_empty() => Some(text.clone()),
                // requested_expiry may be a JSON number (CIBA §7.1.1).
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            },
        }
    }
}

fn denied(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, description).with_status(StatusCode::FORBIDDEN)
}

impl Provider {
    /// Validates a backchannel authentication request and starts it.
    pub async fn backchannel(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<Acknowledgement, OAuthError> {
        let client = self.authenticate_client(authorization, form).await?;
        let params = self.request_params(client, form).await?;

        let scope = params
            .get("scope")
            .ok_or_else(|| OAuthError::invalid_request("scope is required"))?;
        let scopes: Vec<String> = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope must contain openid",
            ));
        }
        if let Some(unknown) = scopes.iter().find(|scope| !client.scopes.contains(scope)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope {unknown} is not allowed for this client"),
            ));
        }

        let user = self.resolve_hint(client, &params).await?;
        let binding_message = params.get("binding_message");
        if let Some(message) = &binding_message
            && (message.chars().count() > MAX_BINDING_MESSAGE
                || message.len() > 4 * MAX_BINDING_MESSAGE
                || message.chars().any(assent_core::params::is_deceptive))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidBindingMessage,
                format!(
                    "binding_message must be at most {MAX_BINDING_MESSAGE} printable characters"
                ),
            ));
        }
        if client.require_user_code {
            let given = params.get("user_code");
            match self
                .adapter
                .user_codes()
                .check(&user.profile, given.as_deref())
                .await?
            {
                UserCodeCheck::Accepted => {}
                UserCodeCheck::Missing => {
                    return Err(OAuthError::new(
                        ErrorCode::MissingUserCode,
                        "user_code is required",
                    ));
                }
                UserCodeCheck::Wrong => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidUserCode,
                        "the user_code is wrong",
                    ));
                }
                UserCodeCheck::Limited => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidUserCode,
                        "too many wrong user codes; try again later",
                    ));
                }
            }
        }
        let config = &self.adapter.config().ciba;
        // CIBA §7.1: requested_expiry only influences the lifetime; longer asks are cut
        // to the maximum, and the acknowledgement tells the real one.
        let expiry = match params.get("requested_expiry") {
            None => config.default_expiry_secs,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|secs| *secs > 0)
                .ok_or_else(|| {
                    OAuthError::invalid_request("requested_expiry must be a positive integer")
                })?
                .min(config.max_expiry_secs),
        };
        let notification_token = params.get("client_notification_token");
        if client.delivery_mode != DeliveryMode::Poll {
            let valid = notification_token.as_deref().is_some_and(|token| {
                token.len() <= MAX_NOTIFICATION_TOKEN
                    && token.trim_end_matches('=').bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
                    })
            });
            if !valid {
                return Err(OAuthError::invalid_request(
                    "client_notification_token is required in ping and push modes (RFC 6750 \
                     syntax, at most 1024 characters)",
                ));
            }
        }

        let flow = self
            .adapter
            .start_ciba(StartCiba {
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                keep_profile: crate::tokens::claims::wants_profile(&scopes),
                user,
                scopes,
                binding_message,
                acr_values: params.get("acr_values"),
                delivery_mode: client.delivery_mode,
                notification_token,
                expiry: Duration::from_secs(expiry),
                interval_secs: config.poll_interval_secs,
            })
            .await
            .map_err(|error| match error {
                AdapterError::Flow(FlowError::NoUsableDevice) => {
                    denied("the user has no paired mobile device to approve on")
                }
                AdapterError::Flow(FlowError::PushLimited) => {
                    denied("too many push notifications for this user; try again later")
                }
                other => other.into(),
            })?;
        Ok(Acknowledgement {
            auth_req_id: flow.id.to_string(),
            expires_in: expiry,
            interval: (client.delivery_mode != DeliveryMode::Push)
                .then_some(config.poll_interval_secs),
        })
    }

    /// The parameters, verified from the `request` object when there is one (§7.1.1).
    async fn request_params<'a>(
        &self,
        client: &CibaClientConfig,
        form: &'a Form,
    ) -> Result<Params<'a>, OAuthError> {
        let Some(request) = form.get("request") else {
            if client.require_signed_request {
                return Err(OAuthError::invalid_request(
                    "this client must send a signed request object",
                ));
            }
            return Ok(Params::Form(form));
        };
        if let Some(outside) = form
            .names()
            .find(|name| *name != "request" && !AUTH_PARAMS.contains(name))
        {
            return Err(OAuthError::invalid_request(format!(
                "{outside} must be inside the signed request object, not beside it"
            )));
        }
        let keys = client
            .jwks
            .as_ref()
            .and_then(jose::client_keys)
            .ok_or_else(|| {
                OAuthError::invalid_request("the client has no keys for signed requests")
            })?;
        let claims = jose::verify(request, &keys).map_err(OAuthError::invalid_request)?;
        let invalid = |why: &str| OAuthError::invalid_request(format!("request object: {why}"));
        if claims.issuer() != Some(client.id.as_str()) {
            return Err(invalid("iss must be the client_id"));
        }
        if !claims
            .audience()
            .is_some_and(|aud| aud.iter().any(|aud| *aud == self.issuer()))
        {
            return Err(invalid("aud must be the issuer"));
        }
        let now = self.adapter.clock().now_secs();
        for claim in ["iat", "nbf"] {
            let value = numeric_claim(&claims, claim)
                .map_err(invalid)?
                .ok_or_else(|| invalid(&format!("{claim} is required")))?;
            if value > now + 30 {
                return Err(invalid(&format!("{claim} is in the future")));
            }
        }
        self.consume_jti(
            &client.id,
            &claims,
            "request object",
            OAuthError::invalid_request,
        )
        .await?;
        Ok(Params::Signed(claims.claims_set().clone()))
    }

    /// Exactly one of login_hint, id_token_hint, login_hint_token names a known user: read
    /// with their device ids and default device, which the request goes on to use.
    async fn resolve_hint(
        &self,
        client: &CibaClientConfig,
        params: &Params<'_>,
    ) -> Result<UserWithDevices, OAuthError> {
        let hints =
            ["login_hint", "id_token_hint", "login_hint_token"].map(|name| params.get(name));
        let unknown = || OAuthError::new(ErrorCode::UnknownUserId, "no such user");
        match hints {
            [Some(login), None, None] => self
                .adapter
                .find_user_by_login(&login, Passcodes::Skip)
                .await?
                .ok_or_else(unknown),
            [None, Some(id_token), None] => {
                let keys = self.keys.keys().await;
                let claims = jose::verify(&id_token, &keys.jwks()).map_err(|_| {
                    OAuthError::invalid_request("id_token_hint is not an ID token of this issuer")
                })?;
                // An expired ID token is still a fine hint (OIDC Core §3.1.2.1).
                if claims.issuer() != Some(self.issuer().as_str())
                    || !claims
                        .audience()
                        .is_some_and(|aud| aud.contains(&client.id.as_str()))
                {
                    return Err(OAuthError::invalid_request(
                        "id_token_hint was not issued to this client",
                    ));
                }
                let subject = claims
                    .subject()
                    .and_then(|sub| UserId::parse(sub).ok())
                    .ok_or_else(unknown)?;
                self.adapter
                    .find_user_with_devices(&subject, Passcodes::Skip)
                    .await?
                    .ok_or_else(unknown)
            }
            [None, None, Some(token)] => {
                let keys = client
                    .jwks
                    .as_ref()
                    .and_then(jose::client_keys)
                    .ok_or_else(|| {
                        OAuthError::invalid_request("login_hint_token needs the client's jwks")
                    })?;
                let claims = jose::verify(&token, &keys).map_err(|why| {
                    OAuthError::invalid_request(format!("login_hint_token: {why}"))
                })?;
                let exp = numeric_claim(&claims, "exp")
                    .map_err(OAuthError::invalid_request)?
                    .ok_or_else(|| OAuthError::invalid_request("login_hint_token needs exp"))?;
                if exp <= self.adapter.clock().now_secs() {
                    return Err(OAuthError::new(
                        ErrorCode::ExpiredLoginHintToken,
                        "the login_hint_token has expired",
                    ));
                }
                match (
                    claims.subject(),
                    claims.claim("login_hint").and_then(Value::as_str),
                ) {
                    (Some(sub), _) => {
                        let id = UserId::parse(sub).map_err(|_| unknown())?;
                        self.adapter
                            .find_user_with_devices(&id, Passcodes::Skip)
                            .await?
                            .ok_or_else(unknown)
                    }
                    (None, Some(login)) => self
                        .adapter
                        .find_user_by_login(login, Passcodes::Skip)
                        .await?
                        .ok_or_else(unknown),
                    (None, None) => Err(OAuthError::invalid_request(
                        "login_hint_token names no user (sub or login_hint)",
                    )),
                }
            }
            _ => Err(OAuthError::invalid_request(
                "exactly one of login_hint, id_token_hint and login_hint_token is required",
            )),
        }
    }
}
