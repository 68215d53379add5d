//! The routes: `GET` renders, `POST` acts. Handlers parse, call one domain function, and
//! render its result; errors become the Ping error model in `error.rs`.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use assent_adapter::Adapter;
use assent_adapter::flow::Action;
use assent_adapter::flow::service::now_ms;

use crate::action::{self, AuthnQuery, XSRF_HEADER};
use crate::error::AuthnError;
use crate::render::render;

/// Registers the Authentication API, with CORS (credentials allowed) for `origins`.
pub fn configure(origins: &[String]) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |config| {
        let mut cors = Cors::default()
            .allowed_methods([Method::GET, Method::POST])
            .allowed_headers([
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::HeaderName::from_static(XSRF_HEADER),
                header::HeaderName::from_static("x-pf-authn-api-state"),
            ])
            .supports_credentials()
            .max_age(600);
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
        config.service(
            web::resource("/pf-ws/authn/flows/{flowId}")
                .wrap(cors)
                .route(web::get().to(get_flow))
                .route(web::post().to(post_flow)),
        );
    }
}

fn flow_url(adapter: &Adapter, flow_id: &str) -> String {
    format!(
        "{}/pf-ws/authn/flows/{flow_id}",
        adapter.config().public_url.trim_end_matches('/')
    )
}

fn state_response(adapter: &Adapter, flow: &assent_adapter::flow::Flow) -> HttpResponse {
    let now = now_ms();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(render(flow, now, &flow_url(adapter, flow.id.as_str())))
}

/// The flow's current state. Never changes the flow.
async fn get_flow(
    adapter: web::Data<Adapter>,
    path: web::Path<String>,
) -> Result<HttpResponse, AuthnError> {
    let flow = adapter.flow(&path).await?;
    Ok(state_response(&adapter, &flow))
}

/// Performs one action and answers the next state.
async fn post_flow(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    query: Result<web::Query<AuthnQuery>, actix_web::Error>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AuthnError> {
    let query = query
        .map(web::Query::into_inner)
        .map_err(|error| AuthnError::InvalidJson(format!("bad query string: {error}")))?;
    let action = action::action_id(&request, &query)?;
    let body = body.map_err(|_| AuthnError::TooLarge)?;
    let body = action::body_object(&body)?;
    let flow = if action == Action::Poll {
        let wait = std::time::Duration::from_secs(query.wait.unwrap_or(0));
        adapter.wait_for_flow(&path, wait).await?
    } else {
        adapter
            .act(&path, action::flow_action(action, &body)?)
            .await?
    };
    Ok(state_response(&adapter, &flow))
}
