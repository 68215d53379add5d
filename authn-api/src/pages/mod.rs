//! The hosted sign-in pages, `/flows/{flowId}`: a page per Authentication API status,
//! rendered on the server from the same typed state and the same domain calls as the JSON
//! API, bound to the browser by the same secret (see `routes::binding_cookies`). Each
//! action is a form POST answered by a redirect (POST-redirect-GET), so the pages work
//! without script; one small script, served here, long polls the JSON API while the flow
//! waits and reloads the page when the status changes.

mod l10n;
mod phone;
mod security;
mod view;
mod webauthn;

use std::sync::Arc;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use assent_core::error::FlowError;
use assent_core::flow::{Flow, FlowAction};
use assent_core::{Adapter, AdapterError};
use assent_proto::authn::{ActionId, ActionRequest, Compatibility};
use fluent_bundle::FluentArgs;
use minijinja::value::Kwargs;
use minijinja::{Environment, State};
use serde::{Deserialize, Serialize};

use crate::error::AuthnError;
use crate::render::render;
use crate::routes::{browser, flow_url, presented_state, set_binding_cookies};

pub use assent_core::l10n::BadMessages;
use assent_core::l10n::Catalog;
pub use phone::{DEMO_PHONE_PATH, configure_demo_phone, demo_phone_allowed};

/// The templates, embedded.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../pages/templates/base.html")),
    (
        "start.html",
        include_str!("../../pages/templates/start.html"),
    ),
    (
        "select.html",
        include_str!("../../pages/templates/select.html"),
    ),
    (
        "waiting.html",
        include_str!("../../pages/templates/waiting.html"),
    ),
    (
        "retry.html",
        include_str!("../../pages/templates/retry.html"),
    ),
    (
        "completed.html",
        include_str!("../../pages/templates/completed.html"),
    ),
    ("done.html", include_str!("../../pages/templates/done.html")),
    (
        "ended.html",
        include_str!("../../pages/templates/ended.html"),
    ),
    (
        "other.html",
        include_str!("../../pages/templates/other.html"),
    ),
    (
        "error.html",
        include_str!("../../pages/templates/error.html"),
    ),
    (
        "cancel.html",
        include_str!("../../pages/templates/cancel.html"),
    ),
    (
        "other_device.html",
        include_str!("../../pages/templates/other_device.html"),
    ),
    (
        "transaction.html",
        include_str!("../../pages/templates/transaction.html"),
    ),
    (
        "qr_start.html",
        include_str!("../../pages/templates/qr_start.html"),
    ),
    ("qr.html", include_str!("../../pages/templates/qr.html")),
    (
        "passcode.html",
        include_str!("../../pages/templates/passcode.html"),
    ),
    (
        "code_form.html",
        include_str!("../../pages/templates/code_form.html"),
    ),
    ("totp.html", include_str!("../../pages/templates/totp.html")),
    (
        "notice.html",
        include_str!("../../pages/templates/notice.html"),
    ),
    (
        "setup.html",
        include_str!("../../pages/templates/setup.html"),
    ),
    (
        "target.html",
        include_str!("../../pages/templates/target.html"),
    ),
    (
        "mobile.html",
        include_str!("../../pages/templates/mobile.html"),
    ),
    (
        "phone.html",
        include_str!("../../pages/templates/phone.html"),
    ),
    (
        "webauthn.html",
        include_str!("../../pages/templates/webauthn.html"),
    ),
];

const SCRIPT: &str = include_str!("../../pages/assets/pages.js");
const STYLE: &str = include_str!("../../pages/assets/pages.css");

/// The templates and messages, built once per process.
pub struct Pages {
    env: Environment<'static>,
    catalog: Arc<Catalog>,
}

/// The pages cannot be built: a bug of the embedded files, caught by the tests.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// A message file.
    #[error(transparent)]
    Messages(#[from] BadMessages),
    /// A template.
    #[error("a page template does not parse: {0}")]
    Template(#[from] minijinja::Error),
}

impl Pages {
    /// Parses the embedded templates and message files.
    pub fn load() -> Result<Self, PagesError> {
        let catalog = Arc::new(l10n::catalog()?);
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let messages = Arc::clone(&catalog);
        // `t("id", name=value, ...)`: message `id` in the page's language. Its text is
        // escaped like any other value, arguments included.
        env.add_function(
            "t",
            move |state: &State, id: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
                let lang = state
                    .lookup("lang")
                    .and_then(|lang| lang.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut args = FluentArgs::new();
                for name in kwargs.args() {
                    let value: minijinja::Value = kwargs.get(name)?;
                    args.set(name.to_owned(), value.to_string());
                }
                messages.format(&lang, id, &args).ok_or_else(|| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        format!("no message `{id}`"),
                    )
                })
            },
        );
        Ok(Self { env, catalog })
    }

    fn render(&self, template: &str, context: impl Serialize) -> Result<String, minijinja::Error> {
        self.env.get_template(template)?.render(context)
    }
}

/// Registers the pages and their two assets.
pub fn configure(pages: web::Data<Pages>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(pages)
            .route("/flows/assets/pages.js", web::get().to(script))
            .route("/flows/assets/pages.css", web::get().to(style))
            .service(
                web::resource("/flows/{flowId}")
                    .route(web::get().to(show))
                    .route(web::post().to(submit)),
            );
    }
}

fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    security::harden(&mut response, "default-src 'none'");
    response
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type(content_type)
        .body(body)
}

async fn script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> HttpResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

/// Why a page cannot show the flow; each has a page of its own.
#[derive(Clone, Copy, Debug)]
enum Trouble {
    NotFound,
    Forbidden,
    BadForm,
    Refused,
    Unavailable,
    Internal,
}

impl Trouble {
    fn status(self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadForm => StatusCode::BAD_REQUEST,
            Self::Refused => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::Forbidden => "forbidden",
            Self::BadForm => "bad-form",
            Self::Refused => "refused",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl From<&AdapterError> for Trouble {
    fn from(error: &AdapterError) -> Self {
        match error {
            AdapterError::NotFound(_) => Self::NotFound,
            AdapterError::Forbidden(_) | AdapterError::Unauthenticated(_) => Self::Forbidden,
            // Only a crafted form names a method the page did not list.
            AdapterError::Flow(FlowError::MethodNotOffered) => Self::BadForm,
            AdapterError::Invalid(_) | AdapterError::Conflict(_) | AdapterError::Flow(_) => {
                Self::Refused
            }
            AdapterError::Unavailable(_) => Self::Unavailable,
            AdapterError::Internal(reason) => {
                tracing::error!(%reason, "internal error on a page");
                Self::Internal
            }
        }
    }
}

impl From<&AuthnError> for Trouble {
    fn from(error: &AuthnError) -> Self {
        match error {
            AuthnError::Domain(error) => error.into(),
            other => {
                tracing::error!(error = %other, "a page cannot be rendered");
                Self::Internal
            }
        }
    }
}

fn accept_language(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
}

/// The page's language: the flow's application's, else the browser's, else the default.
fn language(
    pages: &Pages,
    adapter: &Adapter,
    request: &HttpRequest,
    flow: Option<&Flow>,
) -> &'static str {
    let config = &adapter.config().pages;
    let application = flow
        .and_then(|flow| flow.application.id.as_deref())
        .and_then(|id| config.application_languages.get(id))
        .map(String::as_str);
    pages.catalog.choose(
        application,
        accept_language(request),
        &config.default_language,
    )
}

/// A finished page: HTML with the pages' headers.
fn html(adapter: &Adapter, status: StatusCode, body: String) -> HttpResponse {
    let csp = security::content_security_policy(&adapter.config().pages.frame_ancestors);
    let mut response = HttpResponse::build(status);
    security::harden(&mut response, &csp);
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[derive(Serialize)]
struct TroubleView<'a> {
    lang: &'static str,
    heading: String,
    text: String,
    flow_id: Option<&'a str>,
}

/// The page for a request that cannot go on.
fn trouble_page(
    pages: &Pages,
    adapter: &Adapter,
    request: &HttpRequest,
    trouble: Trouble,
    flow_id: Option<&str>,
) -> HttpResponse {
    let view = TroubleView {
        lang: language(pages, adapter, request, None),
        heading: format!("{}-heading", trouble.message()),
        text: format!("{}-text", trouble.message()),
        // A refused step links back to where the flow is now.
        flow_id: flow_id.filter(|_| matches!(trouble, Trouble::Refused)),
    };
    match pages.render("error.html", &view) {
        Ok(body) => html(adapter, trouble.status(), body),
        Err(error) => {
            tracing::error!(%error, "the error page does not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// `GET /flows/{flowId}`: the flow as a page. The first request binds the flow to this
/// browser, as a first `GET` of the JSON API does.
async fn show(
    pages: web::Data<Pages>,
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    flow_page(&pages, &adapter, &request, &path, None).await
}

/// The flow's page as it is now; with `notice`, the form just sent was not taken and the
/// page says why (422).
async fn flow_page(
    pages: &Pages,
    adapter: &Adapter,
    request: &HttpRequest,
    flow_id: &str,
    notice: Option<view::Notice>,
) -> HttpResponse {
    let presented = presented_state(request);
    let (flow, secret) = match adapter
        .flow_for_browser(flow_id, presented.as_deref())
        .await
    {
        Ok(found) => found,
        Err(error) => return trouble_page(pages, adapter, request, (&error).into(), None),
    };
    let now = adapter.clock().now_ms();
    let state = adapter
        .live_qr(&flow, now)
        .map_err(AuthnError::from)
        .and_then(|qr| {
            render(
                &flow,
                now,
                &flow_url(adapter, flow.id.as_str()),
                qr.as_ref(),
            )
        });
    let state = match state {
        Ok(state) => state,
        Err(error) => return trouble_page(pages, adapter, request, (&error).into(), None),
    };
    let lang = language(pages, adapter, request, Some(&flow));
    let status = match notice {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let page = view::page(
        &state,
        &flow,
        lang,
        security::csrf_token(&secret),
        notice,
        &pages.catalog,
    );
    let mut response = match pages.render(page.template, &page) {
        Ok(body) => html(adapter, status, body),
        Err(error) => {
            tracing::error!(%error, template = page.template, "a page does not render");
            return trouble_page(pages, adapter, request, Trouble::Internal, None);
        }
    };
    if presented.as_deref() != Some(secret.as_str()) {
        set_binding_cookies(&mut response, adapter, &flow, &secret);
    }
    response
}

/// A page's form: the action, its token, and the field that action needs.
#[derive(Debug, Deserialize)]
struct Form {
    action: ActionId,
    csrf: Option<String>,
    /// `selectDevice`: the device.
    device: Option<String>,
    /// `checkOtp` and the `activate*Device` actions: the code.
    otp: Option<String>,
    /// The `submit*Target` actions: the phone number or email address.
    target: Option<String>,
    /// `selectDevicePairingMethod`: the method's `deviceType`.
    method: Option<String>,
    /// The WebAuthn set-up actions: the new credential, as the page's script wrote it.
    attestation: Option<String>,
    /// `checkAssertion`: the signed challenge, as the page's script wrote it.
    assertion: Option<String>,
    /// The WebAuthn actions: the page's origin, as the browser reports it.
    origin: Option<String>,
    /// `checkAssertion`: what WebAuthn the browser supports.
    compatibility: Option<Compatibility>,
}

/// The domain action of a form, for the actions the pages offer: the request the JSON
/// API would read, mapped as it maps it. A field the action needs, missing or blank,
/// makes no action.
fn flow_action(form: Form) -> Option<FlowAction> {
    let given = |field: Option<String>| field.filter(|value| !value.trim().is_empty());
    let request = match form.action {
        ActionId::Authenticate => ActionRequest::authenticate_browser(),
        ActionId::SelectDevice => ActionRequest::select_device(given(form.device)?),
        ActionId::ContinueAuthentication => ActionRequest::ContinueAuthentication,
        ActionId::CancelAuthentication => ActionRequest::CancelAuthentication,
        ActionId::CheckOtp => ActionRequest::check_otp(given(form.otp)?),
        ActionId::Resend => ActionRequest::Resend,
        ActionId::ResendOtp => ActionRequest::ResendOtp,
        ActionId::SetupMfa => ActionRequest::SetupMfa,
        ActionId::SelectDevicePairingMethod => {
            ActionRequest::select_pairing_method(given(form.method)?)
        }
        ActionId::SubmitSmsTarget => ActionRequest::submit_sms_target(given(form.target)?),
        ActionId::SubmitVoiceTarget => ActionRequest::submit_voice_target(given(form.target)?),
        ActionId::SubmitEmailTarget => ActionRequest::submit_email_target(given(form.target)?),
        ActionId::ActivateSmsDevice => ActionRequest::activate_sms_device(given(form.otp)?),
        ActionId::ActivateVoiceDevice => ActionRequest::activate_voice_device(given(form.otp)?),
        ActionId::ActivateEmailDevice => ActionRequest::activate_email_device(given(form.otp)?),
        ActionId::ActivateTotpDevice => ActionRequest::activate_totp_device(given(form.otp)?),
        ActionId::ActivateSecurityKeyDevice
        | ActionId::ActivatePlatformDevice
        | ActionId::CheckAssertion => webauthn::request(
            form.action,
            webauthn::Answer {
                attestation: form.attestation,
                assertion: form.assertion,
                origin: form.origin,
                compatibility: form.compatibility,
            },
        )?,
        _ => return None,
    };
    crate::action::flow_action(request).ok()
}

/// What the person is told, on the same page, when the domain does not take what they
/// typed: a wrong or used code, a code asked for too soon, an address that is none, an
/// authenticator's answer refused (the person tries again, or picks another device).
/// Anything else gets a page of its own.
fn notice(error: &AdapterError, action: ActionId) -> Option<view::Notice> {
    let (message, attempts) = match error {
        // An action the flow no longer offers (sent twice, or the flow moved on) is no
        // fault of the answer: the refused page links to where the flow is now.
        AdapterError::Flow(FlowError::NotAllowed { .. }) => return None,
        AdapterError::Invalid(_) | AdapterError::Conflict(_) | AdapterError::Flow(_)
            if webauthn::is_answer(action) =>
        {
            ("notice-webauthn-refused", None)
        }
        AdapterError::Flow(FlowError::InvalidOtp(left)) => ("notice-wrong-code", Some(*left)),
        AdapterError::Flow(FlowError::OtpReplayed) => ("notice-code-used", None),
        AdapterError::Flow(FlowError::Throttled(_)) => ("notice-throttled", None),
        AdapterError::Invalid(_) => match action {
            ActionId::SubmitSmsTarget | ActionId::SubmitVoiceTarget => ("notice-bad-phone", None),
            ActionId::SubmitEmailTarget => ("notice-bad-email", None),
            _ => return None,
        },
        _ => return None,
    };
    Some(view::Notice { message, attempts })
}

/// `POST /flows/{flowId}`: one action, then a redirect to the page again.
async fn submit(
    pages: web::Data<Pages>,
    adapter: web::Data<Adapter>,
    request: HttpRequest,
    path: web::Path<String>,
    form: Result<web::Form<Form>, actix_web::Error>,
) -> HttpResponse {
    let Ok(form) = form.map(web::Form::into_inner) else {
        return trouble_page(&pages, &adapter, &request, Trouble::BadForm, None);
    };
    let presented = presented_state(&request);
    // Checked before the domain is asked anything: a forged form changes nothing, not
    // even an unbound flow's binding.
    if !security::csrf_matches(presented.as_deref(), form.csrf.as_deref()) {
        return trouble_page(&pages, &adapter, &request, Trouble::Forbidden, None);
    }
    let action_id = form.action;
    let Some(action) = flow_action(form) else {
        return trouble_page(&pages, &adapter, &request, Trouble::BadForm, None);
    };
    let acting = adapter.act(&path, presented.as_deref(), action);
    match Box::pin(adapter.acting(browser(&request), acting)).await {
        Ok((flow, _)) => {
            // Always back to the page, even once done: its done page sends the browser on
            // to the return URL (see `security::content_security_policy`).
            let location = format!("/flows/{}", flow.id);
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Err(error) => match notice(&error, action_id) {
            Some(notice) => flow_page(&pages, &adapter, &request, &path, Some(notice)).await,
            None => trouble_page(
                &pages,
                &adapter,
                &request,
                (&error).into(),
                Some(path.as_str()),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_templates_and_messages_load() {
        Pages::load().expect("the embedded pages load");
    }

    #[test]
    fn a_refused_authenticator_answer_is_a_notice_on_the_same_page() {
        let refused = AdapterError::Invalid("the attestation did not verify".into());
        let moved_on = AdapterError::Flow(FlowError::NotAllowed {
            action: "checkAssertion",
            status: "COMPLETED",
        });
        for action in [
            ActionId::ActivateSecurityKeyDevice,
            ActionId::ActivatePlatformDevice,
            ActionId::CheckAssertion,
        ] {
            let shown = notice(&refused, action).expect("a notice");
            assert_eq!(shown.message, "notice-webauthn-refused");
            assert!(notice(&moved_on, action).is_none());
            assert!(notice(&AdapterError::NotFound("flow"), action).is_none());
        }
        assert!(notice(&refused, ActionId::CheckOtp).is_none());
    }
}
