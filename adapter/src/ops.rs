//! Liveness, readiness and metrics.

use actix_web::{HttpResponse, get, web};
use assent_core::Adapter;
use assent_proto::ops::{Health, HealthStatus};

use crate::problem::ProblemError;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config.service(healthz).service(readyz).service(metrics);
}

/// The process is up.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: HealthStatus::Ok,
        store: None,
    })
}

/// The store answers: this instance can serve flows.
#[get("/readyz")]
async fn readyz(adapter: web::Data<Adapter>) -> Result<HttpResponse, ProblemError> {
    let backend = adapter.ready().await?;
    Ok(HttpResponse::Ok().json(Health {
        status: HealthStatus::Ready,
        store: Some(backend.to_owned()),
    }))
}

/// Prometheus text exposition.
#[get("/metrics")]
async fn metrics(adapter: web::Data<Adapter>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(adapter.metrics().render())
}
