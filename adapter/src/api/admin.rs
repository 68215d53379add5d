//! The Admin API: the operator's view of users and devices, behind the admin token.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};

use super::problem::{ProblemError, bad_request};
use crate::Adapter;
use crate::error::AdapterError;
use crate::user::UserId;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(get_user);
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
fn authorize(adapter: &Adapter, request: &HttpRequest) -> Result<(), ProblemError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AdapterError::Unauthenticated)?;
    if adapter.config().admin.token_sha256.verify(token.trim()) {
        Ok(())
    } else {
        Err(AdapterError::Unauthenticated.into())
    }
}

/// A user's profile.
#[get("/admin/v1/users/{userId}")]
async fn get_user(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    authorize(&adapter, &request)?;
    let id = UserId::parse(&path).map_err(bad_request)?;
    let profile = adapter.user(&id).await?;
    Ok(HttpResponse::Ok().json(profile))
}
