//! The Adapter API: federation servers start flows and pick up their results.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use assent_core::Adapter;
use assent_core::audit::Actor;
use assent_proto::adapter::{
    AccessingDevice, FinalizePasswordlessRequest, FlowCreated, PasswordlessFinalized,
    StartFlowRequest,
};

use crate::auth;
use crate::problem::{ProblemError, bad_request};
use crate::wire;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .service(start_flow)
        .service(flow_result)
        .service(finalize_passwordless);
}

fn client(adapter: &Adapter, request: &HttpRequest) -> Result<String, ProblemError> {
    let (id, secret) = auth::basic(request)?;
    Ok(adapter.authenticate_client(&id, &secret)?)
}

/// Starts a flow for a user the federation server has authenticated.
#[post("/adapter/v1/flows")]
async fn start_flow(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    body: Result<web::Json<StartFlowRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    // Credentials first: an unauthenticated caller learns nothing about the body's shape.
    let client_id = client(&adapter, &request)?;
    let start = wire::start_flow(body?.into_inner()).map_err(bad_request)?;
    let origin = wire::origin(&request, Actor::FederationServer);
    let flow = adapter
        .acting(origin, adapter.start_flow(&client_id, start))
        .await
        .map_err(ProblemError::from)?;
    let url = format!(
        "{}/pf-ws/authn/flows/{}",
        adapter.config().public_url.trim_end_matches('/'),
        flow.id
    );
    let expires_at = flow.created_at_ms / 1000 + adapter.config().policy.flow_ttl_secs;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, url.clone()))
        .json(FlowCreated {
            flow_id: flow.id.to_string(),
            authn_api_url: url,
            status: flow.status(adapter.clock().now_ms()).as_str().to_owned(),
            expires_at,
            one_time_device_id: flow.one_time_device.as_ref().map(ToString::to_string),
        }))
}

/// The outcome of an ended flow, once.
#[get("/adapter/v1/flows/{flowId}/result")]
async fn flow_result(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ProblemError> {
    let client_id = client(&adapter, &request)?;
    let origin = wire::origin(&request, Actor::FederationServer);
    let result = adapter
        .acting(origin, adapter.pick_up_result(&client_id, &path))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(result))
}

/// Seed 001's "Finalize Passwordless Authentication": spends a passwordless flow's
/// context and answers whether the user's policy lets the sign-in complete.
#[post("/adapter/v1/passwordless/finalize")]
async fn finalize_passwordless(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    body: Result<web::Json<FinalizePasswordlessRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let client_id = client(&adapter, &request)?;
    let finalize = wire::finalize_passwordless(body?.into_inner()).map_err(bad_request)?;
    let origin = wire::origin(&request, Actor::FederationServer);
    let outcome = adapter
        .acting(origin, adapter.finalize_passwordless(&client_id, finalize))
        .await
        .map_err(ProblemError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(PasswordlessFinalized {
            status: if outcome.completed {
                "COMPLETED"
            } else {
                "FAILED"
            }
            .to_owned(),
            sub: outcome.sub.to_string(),
            authentication_type: outcome.authentication_type.to_owned(),
            accessing_device: outcome
                .accessing_ip
                .map(|ip| AccessingDevice { ip: ip.to_string() }),
            reason: outcome.reason,
        }))
}
