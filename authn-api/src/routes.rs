//! The routes: `GET` renders, `POST` acts. Handlers parse, call one domain function, and
//! render its result; errors become the Ping error model in `error.rs`.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use assent_core::Adapter;
use assent_core::audit::{Actor, Origin};
use assent_core::flow::Flow;
use assent_proto::authn::ActionRequest;

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

pub(crate) fn flow_url(adapter: &Adapter, flow_id: &str) -> String {
    format!(
        "{}/pf-ws/authn/flows/{flow_id}",
        adapter.config().public_url.trim_end_matches('/')
    )
}

/// The header a cookieless client echoes `_pf_authn_api_state` in.
const STATE_HEADER: &str = "x-pf-authn-api-state";
/// The cookie a browser carries the same secret in.
const STATE_COOKIE: &str = "assent_authn_state";

/// The binding secret the caller presents: the header, else the cookie.
pub(crate) fn presented_state(request: &HttpRequest) -> Option<String> {
    if let Some(value) = request.headers().get(STATE_HEADER) {
        return value.to_str().ok().map(str::to_owned);
    }
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == STATE_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The state as JSON, with the binding secret for a cookieless client to echo.
fn state_response(
    adapter: &Adapter,
    flow: &Flow,
    state: Option<&str>,
) -> Result<HttpResponse, AuthnError> {
    let now = adapter.clock().now_ms();
    let qr = adapter.live_qr(flow, now)?;
    let mut body = render(flow, now, &flow_url(adapter, flow.id.as_str()), qr.as_ref())?;
    body.authn_api_state = state.map(str::to_owned);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

/// The cookies that carry the binding for browsers, one per path that reads it: the JSON
/// API's and the hosted page's (`/flows/{flowId}`), both scoped to this one flow and
/// holding the same secret, so that a page and the script polling the API share one
/// binding whichever of them bound the flow first.
pub(crate) fn binding_cookies(adapter: &Adapter, flow: &Flow, secret: &str) -> [String; 2] {
    let secure = adapter.config().public_url.starts_with("https://");
    // Cross-site widgets need SameSite=None, which browsers only accept with Secure.
    let same_site = if secure { "None; Secure" } else { "Lax" };
    let cookie = |path: String| {
        format!("{STATE_COOKIE}={secret}; Path={path}; HttpOnly; SameSite={same_site}")
    };
    [
        cookie(format!("/pf-ws/authn/flows/{}", flow.id)),
        // The page's forms are same-site only: Lax is enough there, and keeps it off
        // cross-site POSTs even over https.
        format!(
            "{STATE_COOKIE}={secret}; Path=/flows/{}; HttpOnly; SameSite=Lax{}",
            flow.id,
            if secure { "; Secure" } else { "" }
        ),
    ]
}

/// Adds the binding cookies for a secret this request minted.
pub(crate) fn set_binding_cookies(
    response: &mut HttpResponse,
    adapter: &Adapter,
    flow: &Flow,
    secret: &str,
) {
    for cookie in binding_cookies(adapter, flow, secret) {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// The flow's current state. The first GET binds the flow to its caller; after that a GET
/// must present the binding, and never changes the flow.
async fn get_flow(
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AuthnError> {
    let presented = presented_state(&request);
    let (flow, secret) = adapter
        .flow_for_browser(&path, presented.as_deref())
        .await?;
    let mut response = state_response(&adapter, &flow, Some(&secret))?;
    if presented.as_deref() != Some(secret.as_str()) {
        set_binding_cookies(&mut response, &adapter, &flow, &secret);
    }
    Ok(response)
}

/// The browser behind `request`, for the audit trail: the connection's peer address
/// (never a forwarding header a client could forge) and its `User-Agent`.
pub(crate) fn browser(request: &HttpRequest) -> Origin {
    Origin {
        actor: Actor::Browser,
        ip: request.peer_addr().map(|address| address.ip()),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
    }
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
    let action = action::request(action, &body.map_err(|_| AuthnError::TooLarge)?)?;
    // The body (an 8 KiB buffer) is gone here: a long poll keeps only what it waits with.
    let presented = presented_state(&request);
    // The first request of any method binds the flow: a POST to a flow nobody has read
    // yet binds it to this caller, who gets the secret as a GET would. Both calls are
    // boxed so that this future stays small while a poll sleeps in it.
    let (flow, minted) = if action == ActionRequest::Poll {
        let wait = std::time::Duration::from_secs(query.wait.unwrap_or(0));
        let waiting = adapter.wait_for_flow(&path, presented.as_deref(), wait);
        Box::pin(adapter.acting(browser(&request), waiting)).await?
    } else {
        let action = action::flow_action(action)?;
        let acting = adapter.act(&path, presented.as_deref(), action);
        Box::pin(adapter.acting(browser(&request), acting)).await?
    };
    let state = match &minted {
        Some(secret) => Some(secret.as_str()),
        None => presented
            .as_deref()
            .filter(|_| flow.browser_binding.is_some()),
    };
    let mut response = state_response(&adapter, &flow, state)?;
    if let Some(secret) = &minted {
        set_binding_cookies(&mut response, &adapter, &flow, secret);
    }
    Ok(response)
}
