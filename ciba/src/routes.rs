//! The routes: discovery, JWKS, backchannel authentication, token, introspection. Each
//! handler parses the form, calls one provider function, and answers JSON.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use assent_core::AdapterError;
use assent_core::audit::{Actor, Origin};
use assent_core::store::StoreError;
use assent_proto::ciba::Discovery;

use crate::Provider;
use crate::error::OAuthError;
use crate::form::Form;
use crate::jose::ALGORITHMS;
use crate::tokens::CIBA_GRANT;

/// Registers the CIBA provider's routes.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/.well-known/openid-configuration",
            web::get().to(discovery),
        )
        .route("/pf/JWKS", web::get().to(jwks))
        .route("/as/bc-auth.ciba", web::post().to(backchannel))
        .route("/as/token.oauth2", web::post().to(token))
        .route("/as/introspect.oauth2", web::post().to(introspect));
}

fn no_store(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

fn parts(request: &HttpRequest, body: &[u8]) -> Result<(Option<String>, Form), OAuthError> {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let form = Form::parse(header(header::CONTENT_TYPE).as_deref(), body)?;
    Ok((header(header::AUTHORIZATION), form))
}

/// The relying party behind `request`, for the audit trail: the connection's peer address
/// (never a forwarding header a client could forge) and its `User-Agent`.
fn relying_party(request: &HttpRequest) -> Origin {
    Origin {
        actor: Actor::RelyingParty,
        ip: request.peer_addr().map(|address| address.ip()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    }
}

fn body_or_error(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, OAuthError> {
    body.map_err(|_| OAuthError::invalid_request("the request body is too large or unreadable"))
}

async fn discovery(provider: web::Data<std::sync::Arc<Provider>>) -> HttpResponse {
    let issuer = provider.issuer();
    let strings = |values: &[&str]| values.iter().map(|&value| value.to_owned()).collect();
    let client_auth = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    HttpResponse::Ok().json(Discovery {
        jwks_uri: format!("{issuer}/pf/JWKS"),
        token_endpoint: format!("{issuer}/as/token.oauth2"),
        backchannel_authentication_endpoint: format!("{issuer}/as/bc-auth.ciba"),
        introspection_endpoint: format!("{issuer}/as/introspect.oauth2"),
        issuer,
        grant_types_supported: strings(&[CIBA_GRANT, "refresh_token"]),
        backchannel_token_delivery_modes_supported: strings(&["poll", "ping", "push"]),
        backchannel_authentication_request_signing_alg_values_supported: strings(&ALGORITHMS),
        backchannel_user_code_parameter_supported: true,
        token_endpoint_auth_methods_supported: strings(&client_auth),
        token_endpoint_auth_signing_alg_values_supported: strings(&ALGORITHMS),
        introspection_endpoint_auth_methods_supported: strings(&client_auth),
        id_token_signing_alg_values_supported: strings(&ALGORITHMS),
        subject_types_supported: strings(&["public"]),
        response_types_supported: Vec::new(),
        scopes_supported: strings(&["openid", "profile", "email", "phone", "offline_access"]),
        claims_supported: strings(&[
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "amr",
            "preferred_username",
            "given_name",
            "family_name",
            "email",
            "phone_number",
        ]),
    })
}

async fn jwks(provider: web::Data<std::sync::Arc<Provider>>) -> Result<HttpResponse, OAuthError> {
    // From this instance's cache, refreshed every `ciba.key_refresh_secs`: no store trip
    // per request for a public, unauthenticated endpoint.
    let keys = provider.keys.keys().await;
    if keys.is_empty() {
        // Not an empty set a relying party would cache: the keys are not loaded yet.
        return Err(AdapterError::Unavailable(StoreError::Unavailable(
            "signing keys not loaded yet".to_owned(),
        ))
        .into());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, "max-age=60"))
        .json(keys.jwks().as_ref()))
}

async fn backchannel(
    provider: web::Data<std::sync::Arc<Provider>>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (authorization, form) = parts(&request, &body_or_error(body)?)?;
    let acknowledgement = provider
        .adapter
        .acting(
            relying_party(&request),
            provider.backchannel(authorization.as_deref(), &form),
        )
        .await?;
    Ok(no_store(acknowledgement))
}

async fn token(
    provider: web::Data<std::sync::Arc<Provider>>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (authorization, form) = parts(&request, &body_or_error(body)?)?;
    let tokens = provider
        .adapter
        .acting(
            relying_party(&request),
            provider.token(authorization.as_deref(), &form),
        )
        .await?;
    Ok(no_store(tokens))
}

async fn introspect(
    provider: web::Data<std::sync::Arc<Provider>>,
    request: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (authorization, form) = parts(&request, &body_or_error(body)?)?;
    let answer = provider.introspect(authorization.as_deref(), &form).await?;
    Ok(no_store(answer))
}
