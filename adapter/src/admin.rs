//! The Admin API: the operator's view of users and devices, behind the admin token.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use assent_core::Adapter;
use assent_core::audit::Actor;
use assent_core::device_management::{DeviceUpdate, PasscodeDeviceView};
use assent_core::error::AdapterError;
use assent_core::oath::{OathImport, OathResync};
use assent_core::user::UserId;
use assent_core::yubikey::YubikeyImport;
use assent_proto::admin::UserDevices;
use assent_proto::device::PairingKeyIssued;

use serde::Deserialize;

use crate::problem::{ProblemError, bad_request};
use crate::{auth, wire};

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(get_user)
        .service(issue_pairing_key)
        .service(list_devices)
        .service(update_device)
        .service(unpair_device)
        .service(import_yubikey)
        .service(import_oath_token)
        .service(resync_oath_token)
        .service(flow_events)
        .service(user_events);
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

/// The admin token checked, then the user id of the path parsed.
fn authorized_user(
    adapter: &Adapter,
    request: &HttpRequest,
    raw: &str,
) -> Result<UserId, ProblemError> {
    authorize(adapter, request)?;
    UserId::parse(raw).map_err(bad_request)
}

/// A user's profile.
#[get("/admin/v1/users/{userId}")]
async fn get_user(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let id = authorized_user(&adapter, &request, &path)?;
    let profile = adapter.user(&id).await?;
    Ok(HttpResponse::Ok().json(wire::admin_user(profile)))
}

/// A one-time pairing key for a user's new device.
#[post("/admin/v1/users/{userId}/pairing-keys")]
async fn issue_pairing_key(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let id = authorized_user(&adapter, &request, &path)?;
    let (key, expires_at) = adapter.issue_pairing_key(&id).await?;
    Ok(HttpResponse::Created().json(PairingKeyIssued {
        pairing_key: key.expose().to_owned(),
        user_id: id.to_string(),
        expires_at,
    }))
}

/// A user's devices.
#[get("/admin/v1/users/{userId}/devices")]
async fn list_devices(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let user = authorized_user(&adapter, &request, &path)?;
    let devices = adapter.devices_of(&user).await?;
    let passcode_devices = adapter.passcode_devices_of(&user).await?;
    Ok(HttpResponse::Ok().json(UserDevices {
        devices: devices.into_iter().map(wire::paired_device).collect(),
        passcode_devices: passcode_devices
            .into_iter()
            .map(wire::passcode_device)
            .collect(),
    }))
}

/// Renames a device or makes it the user's primary one.
#[patch("/admin/v1/users/{userId}/devices/{deviceId}")]
async fn update_device(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Json<DeviceUpdate>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let (user, device) = path.into_inner();
    let user = authorized_user(&adapter, &request, &user)?;
    let view = adapter
        .update_device(&user, &device, body?.into_inner())
        .await
        .map_err(ProblemError::from)?;
    Ok(HttpResponse::Ok().json(wire::paired_device(view)))
}

/// Unpairs a device; requests waiting for it fail.
#[delete("/admin/v1/users/{userId}/devices/{deviceId}")]
async fn unpair_device(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ProblemError> {
    let (user, device) = path.into_inner();
    let user = authorized_user(&adapter, &request, &user)?;
    let origin = wire::origin(&request, Actor::Operator);
    adapter
        .acting(origin, adapter.unpair(&user, &device))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The body parsed, or a 400 problem naming what is wrong.
fn json_body<T>(body: Result<web::Json<T>, actix_web::Error>) -> Result<T, ProblemError> {
    body.map(web::Json::into_inner)
        .map_err(|error| bad_request(format!("bad request body: {error}")))
}

/// Imports a YubiKey (public id, private id, AES key) for a user.
#[post("/admin/v1/users/{userId}/yubikeys")]
async fn import_yubikey(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<YubikeyImport>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let user = authorized_user(&adapter, &request, &path)?;
    let origin = wire::origin(&request, Actor::Operator);
    let import = adapter.import_yubikey(&user, json_body(body)?);
    let device = adapter.acting(origin, import).await?;
    Ok(HttpResponse::Created().json(wire::passcode_device(PasscodeDeviceView::of(device))))
}

/// Imports an OATH hardware token (serial, seed, parameters) for a user.
#[post("/admin/v1/users/{userId}/oath-tokens")]
async fn import_oath_token(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<OathImport>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let user = authorized_user(&adapter, &request, &path)?;
    let origin = wire::origin(&request, Actor::Operator);
    let import = adapter.import_oath_token(&user, json_body(body)?);
    let device = adapter.acting(origin, import).await?;
    Ok(HttpResponse::Created().json(wire::passcode_device(PasscodeDeviceView::of(device))))
}

/// Resynchronises a user's HOTP token with two consecutive codes.
#[post("/admin/v1/users/{userId}/oath-tokens/{deviceId}/resync")]
async fn resync_oath_token(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Json<OathResync>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let (user, device) = path.into_inner();
    let user = authorized_user(&adapter, &request, &user)?;
    let origin = wire::origin(&request, Actor::Operator);
    let resync = adapter.resync_oath_token(&user, &device, json_body(body)?);
    adapter.acting(origin, resync).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `?limit=&before=` of the audit trail's pages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<usize>,
    before: Option<u64>,
}

/// The query parsed, or a 400 problem naming what is wrong.
fn page_query(
    query: Result<web::Query<PageQuery>, actix_web::Error>,
) -> Result<PageQuery, ProblemError> {
    query
        .map(web::Query::into_inner)
        .map_err(|error| bad_request(format!("bad paging parameters: {error}")))
}

/// A flow's audit trail, newest first.
#[get("/admin/v1/flows/{flowId}/events")]
async fn flow_events(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<PageQuery>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    authorize(&adapter, &request)?;
    let query = page_query(query)?;
    let page = adapter
        .flow_events(&path, query.before, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(wire::flow_events(page)))
}

/// A user's flows with their audit trails, newest first.
#[get("/admin/v1/users/{userId}/events")]
async fn user_events(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<PageQuery>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let user = authorized_user(&adapter, &request, &path)?;
    let query = page_query(query)?;
    let page = adapter
        .user_events(&user, query.before, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(wire::user_events(page)))
}
