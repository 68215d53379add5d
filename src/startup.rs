//! `Application::build` + `run_until_stopped`: the one start-up path.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use assent_adapter::{ProblemError, observe};
use assent_authn_api::pages::{DEMO_PHONE_PATH, configure_demo_phone, demo_phone_allowed};
use assent_core::clock::{Clock, SystemClock};
use assent_core::{Adapter, AdapterError, Config, Metrics};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The metrics registry refused a metric (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] assent_core::metrics::MetricsError),
    /// The store could not be reached or seeded.
    #[error("store: {0}")]
    Store(#[from] AdapterError),
    /// The token signing keys could not be loaded.
    #[error("signing keys: {0}")]
    Signing(#[from] assent_ciba::SigningError),
    /// The hosted pages' embedded templates or messages do not load (a bug).
    #[error("hosted pages: {0}")]
    Pages(#[from] assent_authn_api::pages::PagesError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The configured address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A built, bound, not yet running service.
pub struct Application {
    address: SocketAddr,
    server: Server,
    adapter: Adapter,
}

impl Application {
    /// Connects the store, binds the listener and prepares the HTTP server.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let metrics = Metrics::new()?;
        let listen = config.listen;
        let workers = config.http.workers;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let delivery = assent_senders::delivery(
            &config.delivery,
            metrics.deliveries_failed.clone(),
            clock.clone(),
        )
        .map_err(AdapterError::Invalid)?;
        let adapter = Adapter::start(config, metrics, delivery, clock).await?;
        let provider = web::Data::new(assent_ciba::Provider::start(adapter.clone()).await?);
        let listener = TcpListener::bind(listen).map_err(|source| StartError::Listen {
            address: listen,
            source,
        })?;
        let address = listener.local_addr().map_err(|source| StartError::Listen {
            address: listen,
            source,
        })?;

        let body_limit = adapter.config().http.body_limit_bytes;
        let data = web::Data::new(adapter.clone());
        let mut cors_origins = adapter.config().http.cors_origins.clone();
        // The hosted pages' script long polls the API from assent's own origin, and a
        // browser sends `Origin` on a same-origin POST too.
        if let Ok(public) = url::Url::parse(&adapter.config().public_url) {
            cors_origins.push(public.origin().ascii_serialization());
        }
        let pages = web::Data::new(assent_authn_api::pages::Pages::load()?);
        let demo_secrets = adapter.config().demo_secret_in_use().is_some();
        let demo_phone = demo_phone_allowed(demo_secrets, address.ip());
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(observe))
                .app_data(data.clone())
                .app_data(provider.clone())
                .app_data(web::PayloadConfig::new(body_limit))
                .app_data(
                    web::JsonConfig::default()
                        .limit(body_limit)
                        .error_handler(|error, _| assent_adapter::json_error(error).into()),
                )
                // The browsers' polls first: routes are tried in order, and each dynamic
                // route tried costs a regex match.
                .configure(assent_authn_api::configure(&cors_origins))
                .configure(assent_authn_api::pages::configure(pages.clone()))
                .configure(|config| {
                    if demo_phone {
                        configure_demo_phone(pages.clone())(config);
                    }
                })
                .configure(assent_adapter::configure)
                .configure(assent_ciba::configure)
                .default_service(web::to(not_found))
        })
        .listen(listener)
        .map_err(|source| StartError::Listen {
            address: listen,
            source,
        })?
        // Long polls last at most `long_poll_max_secs`; let them finish on SIGTERM.
        .shutdown_timeout(adapter.config().http.long_poll_max_secs + 1);
        if workers > 0 {
            server = server.workers(workers);
        }
        tracing::info!(%address, store = adapter.store().backend(), "assent listening");
        if demo_phone {
            tracing::info!(
                url = %format!("http://{address}{DEMO_PHONE_PATH}"),
                "demo phone page served (demo secrets on a loopback address)"
            );
        } else if demo_secrets {
            tracing::info!(
                path = DEMO_PHONE_PATH,
                "demo phone page not served: assent is not on a loopback address"
            );
        } else {
            tracing::info!(
                path = DEMO_PHONE_PATH,
                "demo phone page not served: no demo secret is configured"
            );
        }
        Ok(Self {
            address,
            server: server.run(),
            adapter,
        })
    }

    /// The bound address (the real port when the configuration asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The domain service behind the routes (tests use its store).
    pub fn adapter(&self) -> &Adapter {
        &self.adapter
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle that can stop the server from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

async fn not_found() -> Result<HttpResponse, ProblemError> {
    Err(AdapterError::NotFound("route").into())
}
