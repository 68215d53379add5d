//! Credentials in headers: HTTP Basic for federation servers, Bearer for the operator,
//! `Device <jwt>` for paired devices. Parsing only; checking is the domain's.

use actix_web::HttpRequest;
use actix_web::http::header;
use assent_core::error::AdapterError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

fn authorization<'a>(request: &'a HttpRequest, scheme: &str) -> Option<&'a str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (given, credentials) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim())
}

/// `Authorization: Basic base64(id:secret)`.
pub(crate) fn basic(request: &HttpRequest) -> Result<(String, String), AdapterError> {
    let encoded = authorization(request, "Basic").ok_or(AdapterError::Unauthenticated(
        "HTTP Basic client credentials required",
    ))?;
    let decoded = STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(AdapterError::Unauthenticated("malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or(AdapterError::Unauthenticated("malformed Basic credentials"))?;
    Ok((id.to_owned(), secret.to_owned()))
}

/// `Authorization: Bearer <token>`.
pub(crate) fn bearer(request: &HttpRequest) -> Result<&str, AdapterError> {
    authorization(request, "Bearer").ok_or(AdapterError::Unauthenticated("bearer token required"))
}

/// `Authorization: Device <jwt>`.
pub(crate) fn device(request: &HttpRequest) -> Result<&str, AdapterError> {
    authorization(request, "Device").ok_or(AdapterError::Unauthenticated(
        "`Authorization: Device <jwt>` required",
    ))
}
