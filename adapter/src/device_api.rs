//! The Device API: apps pair, wait for requests and answer them with signed proofs.

use assent_core::audit::Actor;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use assent_core::Adapter;
use assent_core::device::Device;
use assent_core::device_key::PublicDeviceKey;
use assent_core::flow::Decision;
use assent_core::pairing::PairingRequest;
use assent_proto::device::{
    DecisionAccepted, DecisionRequest, DeviceJoined, DeviceList, PairRequest, Paired, PendingList,
};
use serde::Deserialize;

use crate::auth;
use crate::problem::{ProblemError, bad_request};
use crate::wire;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(pair)
        .service(pending)
        .service(decide)
        .service(join)
        .service(scan_qr)
        .service(select_qr_user)
        .service(own_devices)
        .service(unpair_self);
}

async fn device(adapter: &Adapter, request: &HttpRequest) -> Result<Device, ProblemError> {
    let token = auth::device(request)?;
    Ok(adapter.authenticate_device(token).await?)
}

/// A device answering requests (one-time devices included, while their flow runs).
async fn responding_device(
    adapter: &Adapter,
    request: &HttpRequest,
) -> Result<Device, ProblemError> {
    let token = auth::device(request)?;
    Ok(adapter.authenticate_responding_device(token).await?)
}

/// Pairs a device with the user its one-time key was issued for.
#[post("/device/v1/pairings")]
async fn pair(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    body: web::Json<PairRequest>,
) -> Result<HttpResponse, ProblemError> {
    let body = body.into_inner();
    let public_key = PublicDeviceKey::parse(&body.public_jwk).map_err(bad_request)?;
    let pairing = adapter.pair_device(PairingRequest {
        pairing_key: body.pairing_key,
        public_key,
        name: body.name,
        os: body.os,
        os_version: body.os_version,
        model: body.model,
    });
    let device = adapter
        .acting(wire::origin(&request, Actor::NewDevice), pairing)
        .await?;
    Ok(HttpResponse::Created().json(Paired {
        device_id: device.id.to_string(),
        user_id: device.user_id.to_string(),
        totp_seed: device.otp_seed.clone(),
    }))
}

/// `?wait=` seconds for a long poll.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitQuery {
    #[serde(default)]
    wait: Option<u64>,
}

impl WaitQuery {
    /// The requested wait; the domain caps it.
    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs(self.wait.unwrap_or(0))
    }
}

/// The requests waiting for this device; long-polls with `?wait=N`.
#[get("/device/v1/pending")]
async fn pending(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    query: Result<web::Query<WaitQuery>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let query = query.map_err(|error| bad_request(format!("bad query: {error}")))?;
    let device = responding_device(&adapter, &request).await?;
    let requests = adapter.pending_requests(&device, query.duration()).await?;
    let requests = requests.into_iter().map(wire::pending_request).collect();
    Ok(HttpResponse::Ok().json(PendingList { requests }))
}

/// The device's signed answer to a request.
#[post("/device/v1/authentications/{authId}")]
async fn decide(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<DecisionRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let device = responding_device(&adapter, &request).await?;
    let body = body?;
    let decision = Decision::parse(&body.decision)
        .ok_or_else(|| bad_request("decision must be `approve` or `deny`"))?;
    let origin = wire::origin(&request, Actor::Device(device.id.clone()));
    let flow = adapter
        .acting(
            origin,
            adapter.decide(&device, &path, decision, &body.proof),
        )
        .await
        .map_err(ProblemError::from)?;
    Ok(HttpResponse::Ok().json(DecisionAccepted {
        auth_id: path.into_inner(),
        status: flow.status(adapter.clock().now_ms()).as_str().to_owned(),
    }))
}

/// `?userId=` picks which user of a shared device.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevicesQuery {
    #[serde(default)]
    user_id: Option<String>,
}

/// The devices of this device's user (of one of its users, for a shared device).
#[get("/device/v1/devices")]
async fn own_devices(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    query: Result<web::Query<DevicesQuery>, actix_web::Error>,
) -> Result<HttpResponse, ProblemError> {
    let query = query.map_err(|error| bad_request(format!("bad query: {error}")))?;
    let device = device(&adapter, &request).await?;
    let user = match &query.user_id {
        Some(user) => assent_core::user::UserId::parse(user).map_err(bad_request)?,
        None => device.user_id.clone(),
    };
    if !device.serves(&user) {
        return Err(assent_core::error::AdapterError::Forbidden(
            "this device does not serve that user",
        )
        .into());
    }
    let devices = adapter.devices_of(&user).await?;
    Ok(HttpResponse::Ok().json(DeviceList {
        devices: devices.into_iter().map(wire::paired_device).collect(),
    }))
}

/// Unpairs this device (a device may remove only itself).
#[delete("/device/v1/devices/{deviceId}")]
async fn unpair_self(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let device = device(&adapter, &request).await?;
    if device.id.as_str() != path.as_str() {
        return Err(
            assent_core::error::AdapterError::Forbidden("a device may only unpair itself").into(),
        );
    }
    // A device leaving leaves every user it served.
    let origin = wire::origin(&request, Actor::Device(device.id.clone()));
    for user in device.users() {
        adapter
            .acting(origin.clone(), adapter.unpair(user, &path))
            .await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /device/v1/users`: a pairing key for one more user of this (shared) device.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JoinRequest {
    pairing_key: String,
}

/// Pairs this trusted device with one more user.
#[post("/device/v1/users")]
async fn join(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    body: Result<web::Json<JoinRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let device = device(&adapter, &request).await?;
    let body = body?;
    let device = adapter
        .join_device(&device, &body.pairing_key)
        .await
        .map_err(ProblemError::from)?;
    Ok(HttpResponse::Ok().json(DeviceJoined {
        device_id: device.id.as_str().to_owned(),
        users: device
            .users()
            .map(|user| user.as_str().to_owned())
            .collect(),
    }))
}

/// A trusted device scanned a QR sign-on code.
#[post("/device/v1/qr/{token}")]
async fn scan_qr(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let device = device(&adapter, &request).await?;
    let origin = wire::origin(&request, Actor::Device(device.id.clone()));
    let outcome = adapter
        .acting(origin, adapter.scan_qr(&device, &path))
        .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

/// `POST /device/v1/qr/{token}/select`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SelectUser {
    user_id: String,
}

/// The person picked which of a shared device's users they are.
#[post("/device/v1/qr/{token}/select")]
async fn select_qr_user(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    body: Result<web::Json<SelectUser>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let device = device(&adapter, &request).await?;
    let body = body?;
    let origin = wire::origin(&request, Actor::Device(device.id.clone()));
    let outcome = adapter
        .acting(
            origin,
            adapter.select_qr_user_by_token(&device, &path, &body.user_id),
        )
        .await
        .map_err(ProblemError::from)?;
    Ok(HttpResponse::Ok().json(outcome))
}
