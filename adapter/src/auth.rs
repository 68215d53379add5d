//! Credentials in headers: HTTP Basic for federation servers, Bearer for the operator,
//! `Device <jwt>` for paired devices. Parsing only (core's); checking is the domain's.

use actix_web::HttpRequest;
use actix_web::http::header;
use assent_core::credentials;
use assent_core::error::AdapterError;

fn authorization<'a>(request: &'a HttpRequest, scheme: &str) -> Option<&'a str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    credentials::with_scheme(value, scheme)
}

/// `Authorization: Basic base64(id:secret)`.
pub(crate) fn basic(request: &HttpRequest) -> Result<(String, String), AdapterError> {
    let encoded = authorization(request, "Basic").ok_or(AdapterError::Unauthenticated(
        "HTTP Basic client credentials required",
    ))?;
    credentials::basic(encoded).ok_or(AdapterError::Unauthenticated("malformed Basic credentials"))
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
