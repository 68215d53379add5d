//! Client authentication at the CIBA, token and introspection endpoints:
//! `client_secret_basic`, `client_secret_post` and `private_key_jwt` (RFC 7523), each
//! client held to the one method it registered.

use assent_core::config::{CibaClientConfig, ClientAuthMethod, SecretHash};
use assent_core::{credentials, jwt};

use crate::error::OAuthError;
use crate::form::Form;
use crate::{Provider, jose};

/// RFC 7523's assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest accepted lifetime of a client assertion or request object.
const MAX_ASSERTION_LIFETIME: u64 = 3600;

/// Form parameters that carry client authentication, not the request itself.
pub const AUTH_PARAMS: [&str; 4] = [
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

fn decode_component(raw: &str) -> String {
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    form_urlencoded::parse(format!("v={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

impl Provider {
    /// Authenticates the client of a request, by the method it registered.
    pub async fn authenticate_client(
        &self,
        authorization: Option<&str>,
        form: &Form,
    ) -> Result<&CibaClientConfig, OAuthError> {
        let basic = authorization.and_then(|value| credentials::with_scheme(value, "Basic"));
        let methods = usize::from(basic.is_some())
            + usize::from(form.get("client_secret").is_some())
            + usize::from(form.get("client_assertion").is_some());
        if methods > 1 {
            // RFC 6749 §2.3: a client must not use more than one method per request.
            return Err(OAuthError::invalid_request(
                "more than one client authentication method in one request",
            ));
        }
        if let Some(encoded) = basic {
            let fail = |why: &str| OAuthError::invalid_client(why, true);
            let (id, secret) =
                credentials::basic(encoded).ok_or_else(|| fail("malformed Basic credentials"))?;
            let (id, secret) = (decode_component(&id), decode_component(&secret));
            if form.get("client_id").is_some_and(|given| given != id) {
                return Err(fail("client_id differs from the Basic credentials"));
            }
            return self.check_secret(&id, &secret, ClientAuthMethod::ClientSecretBasic, true);
        }
        if let Some(assertion) = form.get("client_assertion") {
            if form.get("client_assertion_type") != Some(JWT_BEARER) {
                return Err(OAuthError::invalid_client(
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    false,
                ));
            }
            return self.check_assertion(assertion, form.get("client_id")).await;
        }
        if let (Some(id), Some(secret)) = (form.get("client_id"), form.get("client_secret")) {
            return self.check_secret(id, secret, ClientAuthMethod::ClientSecretPost, false);
        }
        Err(OAuthError::invalid_client(
            "client authentication required",
            false,
        ))
    }

    fn check_secret(
        &self,
        id: &str,
        secret: &str,
        method: ClientAuthMethod,
        basic: bool,
    ) -> Result<&CibaClientConfig, OAuthError> {
        let client = self.client(id);
        // Hash even for an unknown id, so that timing does not tell which ids exist.
        let verified = match client.and_then(|client| client.secret_sha256.as_ref()) {
            Some(hash) => hash.verify(secret),
            None => {
                let _ = SecretHash::of(secret);
                false
            }
        };
        match client {
            Some(client) if verified && client.auth_method == method => Ok(client),
            Some(client) if verified => Err(OAuthError::invalid_client(
                format!(
                    "this client authenticates with {}",
                    client.auth_method.as_str()
                ),
                basic,
            )),
            _ => Err(OAuthError::invalid_client(
                "unknown client or wrong secret",
                basic,
            )),
        }
    }

    async fn check_assertion(
        &self,
        assertion: &str,
        client_id: Option<&str>,
    ) -> Result<&CibaClientConfig, OAuthError> {
        let fail = |why: &str| OAuthError::invalid_client(why.to_owned(), false);
        let issuer =
            jwt::unverified_issuer(assertion).ok_or_else(|| fail("the assertion has no iss"))?;
        if client_id.is_some_and(|id| id != issuer) {
            return Err(fail("client_id differs from the assertion's iss"));
        }
        let client = self.client(&issuer).ok_or_else(|| fail("unknown client"))?;
        if client.auth_method != ClientAuthMethod::PrivateKeyJwt {
            return Err(fail("this client does not use private_key_jwt"));
        }
        let keys = client
            .jwks
            .as_ref()
            .and_then(jose::client_keys)
            .ok_or_else(|| fail("the client has no usable jwks"))?;
        let claims = jose::verify(assertion, &keys).map_err(fail)?;
        if claims.subject() != Some(issuer.as_str()) {
            return Err(fail("the assertion's sub must be the client_id"));
        }
        // CIBA §7.1: the issuer, the token endpoint or the backchannel endpoint.
        let audiences = [
            self.issuer(),
            self.endpoint("/as/token.oauth2"),
            self.endpoint("/as/bc-auth.ciba"),
            self.endpoint("/as/introspect.oauth2"),
        ];
        if !claims.audience().is_some_and(|aud| {
            aud.iter()
                .any(|aud| audiences.iter().any(|ours| ours == aud))
        }) {
            return Err(fail("the assertion's aud is not this server"));
        }
        self.consume_jti(&issuer, &claims, "assertion", |why| {
            OAuthError::invalid_client(why, false)
        })
        .await?;
        Ok(client)
    }

    /// Checks `exp` (present, future, not too far) and spends the `jti` of a client JWT,
    /// so that it cannot be replayed while it would still be accepted. A refused JWT is
    /// answered with `refuse(why)`; a store failure as such.
    pub(crate) async fn consume_jti(
        &self,
        client_id: &str,
        claims: &josekit::jwt::JwtPayload,
        what: &str,
        refuse: impl Fn(String) -> OAuthError,
    ) -> Result<(), OAuthError> {
        let now = self.adapter.clock().now_secs();
        let exp = jwt::numeric_claim(claims, "exp")
            .map_err(|why| refuse(format!("the {what}: {why}")))?
            .ok_or_else(|| refuse(format!("the {what} has no exp")))?;
        if exp <= now {
            return Err(refuse(format!("the {what} has expired")));
        }
        if exp > now + MAX_ASSERTION_LIFETIME {
            return Err(refuse(format!(
                "the {what}'s exp is more than an hour ahead"
            )));
        }
        let jti = claims
            .jwt_id()
            .filter(|jti| !jti.is_empty() && jti.len() <= 256)
            .ok_or_else(|| refuse(format!("the {what} needs a jti")))?;
        if !self
            .adapter
            .client_jtis()
            .spend(client_id, jti, exp)
            .await?
        {
            return Err(refuse(format!("the {what}'s jti was already used")));
        }
        Ok(())
    }
}
