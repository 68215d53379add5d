//! The demo phone, `/demo/phone`: a page that pairs the browser as a device and answers
//! its requests through the Device API, so a newcomer sees a whole flow in two tabs. It
//! is registered only while demo secrets are configured and assent listens on loopback
//! (see [`demo_phone_allowed`]); everywhere else the path is a plain 404.
//!
//! Under `/demo/` rather than `/flows/`: nothing of the product lives there, so an
//! operator's proxy rules and logs can tell the demo apart at a glance.

use std::net::IpAddr;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use assent_core::Adapter;
use serde::Serialize;

use super::{Pages, accept_language, asset, html};

/// The page's path.
pub const DEMO_PHONE_PATH: &str = "/demo/phone";

const SCRIPT: &str = include_str!("../../pages/assets/phone.js");
const STYLE: &str = include_str!("../../pages/assets/phone.css");

/// Whether the demo phone may be served: only with demo secrets configured (a demo
/// installation) and on a loopback address (nobody else can reach it). A phone anyone
/// could open would pair with any pairing key it is given, which is harmless, but it has
/// no place in a real deployment.
pub fn demo_phone_allowed(demo_secrets: bool, listening_on: IpAddr) -> bool {
    demo_secrets && listening_on.is_loopback()
}

/// Registers the page and its two assets (only call it when [`demo_phone_allowed`]).
pub fn configure_demo_phone(pages: web::Data<Pages>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(pages)
            .route(DEMO_PHONE_PATH, web::get().to(page))
            .route("/demo/phone/assets/phone.js", web::get().to(script))
            .route("/demo/phone/assets/phone.css", web::get().to(style));
    }
}

async fn script() -> HttpResponse {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> HttpResponse {
    asset(STYLE, "text/css; charset=utf-8")
}

#[derive(Serialize)]
struct PhoneView {
    lang: &'static str,
}

/// `GET /demo/phone`, in the browser's language.
async fn page(
    pages: web::Data<Pages>,
    adapter: web::Data<Adapter>,
    request: HttpRequest,
) -> HttpResponse {
    let lang = pages.catalog.choose(
        None,
        accept_language(&request),
        &adapter.config().pages.default_language,
    );
    match pages.render("phone.html", PhoneView { lang }) {
        Ok(body) => {
            let mut response = html(&adapter, StatusCode::OK, body);
            // The page is the same for everyone; only its language varies.
            response.headers_mut().insert(
                header::VARY,
                header::HeaderValue::from_static("accept-language"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "the demo phone page does not render");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_demo_secrets_on_loopback_allow_the_phone() {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        let anywhere = IpAddr::from([0, 0, 0, 0]);
        assert!(demo_phone_allowed(true, loopback));
        assert!(demo_phone_allowed(true, v6));
        assert!(!demo_phone_allowed(false, loopback));
        assert!(!demo_phone_allowed(true, anywhere));
        assert!(!demo_phone_allowed(true, IpAddr::from([192, 0, 2, 1])));
    }
}
