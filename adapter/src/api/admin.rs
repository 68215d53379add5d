//! The Admin API: the operator's view of users and devices, behind the admin token.

use actix_web::{HttpRequest, HttpResponse, get, post, web};

use super::auth;
use super::problem::{ProblemError, bad_request};
use crate::Adapter;
use crate::error::AdapterError;
use crate::proto::device::PairingKeyIssued;
use crate::user::UserId;

pub(super) fn configure(config: &mut web::ServiceConfig) {
    config.service(get_user).service(issue_pairing_key);
}

/// Checks `Authorization: Bearer <admin token>` in constant time.
fn authorize(adapter: &Adapter, request: &HttpRequest) -> Result<(), ProblemError> {
    let token = auth::bearer(request)?;
    if adapter.config().admin.token_sha256.verify(token) {
        Ok(())
    } else {
        Err(AdapterError::Unauthenticated("wrong admin token").into())
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

/// A one-time pairing key for a user's new device.
#[post("/admin/v1/users/{userId}/pairing-keys")]
async fn issue_pairing_key(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    authorize(&adapter, &request)?;
    let id = UserId::parse(&path).map_err(bad_request)?;
    let (key, expires_at) = adapter.issue_pairing_key(&id).await?;
    Ok(HttpResponse::Created().json(PairingKeyIssued {
        pairing_key: key.expose().to_owned(),
        user_id: id.to_string(),
        expires_at,
    }))
}
