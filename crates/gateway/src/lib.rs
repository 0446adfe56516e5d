#![doc = include_str!("../README.md")]

pub mod auth;
pub mod config;
mod discovery;
mod error;
mod http;
mod limits;
mod members;
mod paths;
mod resources;
pub mod telemetry;
pub mod throttle;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use scimgw_delivery::Targets;
use scimgw_scim::ScimError;
use scimgw_scim::schema::{DropHook, Registry, UnknownAttributes};
use scimgw_store::{Kind, Store};

pub use crate::auth::{IssuedKey, Principal, issue_key};
pub use crate::config::Config;
pub use crate::error::ApiError;
pub use crate::limits::MAX_INDEXED_VALUE_BYTES;

/// What every handler shares.
pub struct AppState {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) config: Config,
    pub(crate) last_used: auth::LastUsed,
    pub(crate) key_cache: auth::KeyCache,
    pub(crate) throttle: throttle::AuthThrottle,
    pub(crate) targets: Arc<Targets>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
    pub(crate) heartbeat: Option<telemetry::Heartbeat>,
}

impl AppState {
    /// State for a gateway on `store` with `registry`'s schemas and no targets.
    pub fn new(config: Config, store: Store, mut registry: Registry) -> Self {
        apply_attribute_policy(&mut registry, &config);
        let throttle = throttle::AuthThrottle::new(&config.auth);
        let key_cache = auth::KeyCache::new(std::time::Duration::from_millis(config.auth.key_cache_ms));
        Self {
            store,
            registry,
            config,
            last_used: auth::LastUsed::default(),
            key_cache,
            throttle,
            targets: Arc::new(Targets::default()),
            wake: Arc::new(tokio::sync::Notify::new()),
            heartbeat: None,
        }
    }

    /// With the heartbeat of the dispatcher this process runs, which `/readyz` then checks.
    pub fn with_heartbeat(mut self, heartbeat: telemetry::Heartbeat) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    /// With these targets; `wake` is notified after every write so that a dispatcher on it
    /// starts delivering at once rather than at its next poll.
    pub fn with_targets(mut self, targets: Arc<Targets>, wake: Arc<tokio::sync::Notify>) -> Self {
        self.targets = targets;
        self.wake = wake;
        self
    }
}

/// Sets what `registry` does with attributes no schema defines, from `strict_attributes`: the
/// SCIM endpoint and everything that shows what it would store (`preview`) use the same rule.
pub fn apply_attribute_policy(registry: &mut Registry, config: &Config) {
    registry.set_unknown_attributes(if config.strict_attributes {
        UnknownAttributes::Reject
    } else {
        UnknownAttributes::Accept(DropHook(telemetry::dropped_attribute))
    });
}

/// Runs a short read of the store: a primary-key or unique-index lookup whose cost is bounded.
///
/// On SQLite it runs inline on the worker thread: a lookup in a local file takes a few
/// microseconds, less than the hand-off to another thread and back that it would otherwise
/// cost (two futex wake-ups and two context switches per hop, the largest item in the profile of
/// GET /Users/{id} after the statement cache was fixed; bench/RESULTS.md). SQLite readers never
/// wait for the writer (WAL), so the worker cannot stall on a lock. On PostgreSQL every query is
/// a network round trip that may stall, so it goes to the store's threads
/// (`Store::run_blocking`). Anything whose cost grows with the data (a filter that scans, a
/// group's members) must not use this.
pub(crate) async fn quick_read<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, scimgw_store::StoreError> + Send + 'static,
{
    if state.store.backend() == scimgw_store::Backend::Sqlite {
        return Ok(f(&state.store)?);
    }
    Ok(state.store.run_blocking(f).await??)
}

/// Registers the SCIM routes under the configured base path, each in its one canonical spelling:
/// [`app`] makes request paths canonical before routing (`paths`: endpoint names in any case,
/// trailing and doubled slashes).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    let base = state.config.base_path().to_owned();
    let operations_here = state.config.admin_listen.is_none();
    cfg.app_data(state);
    for kind in [Kind::User, Kind::Group] {
        let plural = kind.endpoint();
        cfg.service(
            web::resource(format!("{base}/{plural}"))
                .route(web::get().to(move |r, p, s| resources::list(r, p, s, kind)))
                .route(web::post().to(move |r, p, s, b| resources::create(r, p, s, b, kind)))
                .default_service(web::to(|| async { method_not_allowed("GET, POST") })),
        );
        cfg.service(
            web::resource(format!("{base}/{plural}/.search"))
                .route(web::post().to(move |r, p, s, b| resources::search(r, p, s, b, kind)))
                .default_service(web::to(|| async { method_not_allowed("POST") })),
        );
        cfg.service(
            web::resource(format!("{base}/{plural}/{{id}}"))
                .route(web::get().to(move |r, p, s, id| resources::get(r, p, s, id, kind)))
                .route(web::put().to(move |r, p, s, id, b| resources::replace(r, p, s, id, b, kind)))
                .route(web::patch().to(move |r, p, s, id, b| resources::patch(r, p, s, id, b, kind)))
                .route(web::delete().to(move |r, p, s, id| resources::delete(r, p, s, id, kind)))
                .default_service(web::to(|| async { method_not_allowed("GET, PUT, PATCH, DELETE") })),
        );
    }
    // The search at the root, over users and groups (RFC 7644 §3.4.3). `GET {base}` is no
    // search: it has no route, so it is the SCIM 404 of any unknown path.
    cfg.service(
        web::resource(format!("{base}/.search"))
            .route(web::post().to(resources::search_root))
            .default_service(web::to(|| async { method_not_allowed("POST") })),
    );
    if operations_here {
        operations(cfg);
    }
    cfg.service(
        web::resource(format!("{base}/ServiceProviderConfig"))
            .route(web::get().to(discovery::service_provider_config))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
    cfg.service(
        web::resource(format!("{base}/Schemas"))
            .route(web::get().to(discovery::schemas))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
    cfg.service(
        web::resource(format!("{base}/Schemas/{{id}}"))
            .route(web::get().to(discovery::schema))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
    cfg.service(
        web::resource(format!("{base}/ResourceTypes"))
            .route(web::get().to(discovery::resource_types))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
    cfg.service(
        web::resource(format!("{base}/ResourceTypes/{{id}}"))
            .route(web::get().to(discovery::resource_type))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
}

/// The operations endpoints: on `listen` beside the SCIM routes, or alone on `admin_listen`.
fn operations(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(telemetry::healthz)));
    cfg.service(web::resource("/readyz").route(web::get().to(telemetry::readyz)));
    cfg.service(web::resource("/metrics").route(web::get().to(telemetry::metrics_endpoint)));
}

/// The application of `admin_listen`: the operations endpoints and a plain 404 for anything else.
/// No SCIM route, no token: keep this address to your monitoring.
fn admin_app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().app_data(state).configure(operations).default_service(web::to(HttpResponse::NotFound))
}

/// What [`bind`] bound.
pub struct Bound {
    /// The SCIM endpoint (with the operations endpoints unless `admin_listen` is set); await it.
    pub server: Server,
    /// Where it listens.
    pub addrs: Vec<SocketAddr>,
    /// The operations endpoints on `admin_listen`, when set, and where; await it too.
    pub admin: Option<(Server, Vec<SocketAddr>)>,
}

/// The whole application one worker serves: the SCIM routes, the SCIM 404 for anything else, and
/// the request middleware — outermost the path-normalising step, so that routing, the access log
/// and the metrics' route label all see the canonical path. Tests drive it in process
/// (`actix_web::test::init_service`).
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let base = state.config.base_path().to_owned();
    App::new()
        .configure(|cfg| configure(cfg, state))
        .default_service(web::to(not_found))
        .wrap(from_fn(telemetry::request_telemetry))
        .wrap_fn(move |mut req, next| {
            paths::rewrite(&mut req, &base);
            next.call(req)
        })
}

/// Builds the HTTP servers and binds them: the SCIM endpoint on `listen`, and the operations
/// endpoints on `admin_listen` when set. The caller runs (awaits) the returned servers.
pub fn bind(state: web::Data<AppState>) -> std::io::Result<Bound> {
    // Install the Prometheus recorder before the first request is counted.
    let _ = telemetry::prometheus();
    let listen = state.config.listen.clone();
    let workers = state.config.workers;
    let request_timeout = std::time::Duration::from_secs(state.config.request_timeout_secs);
    let factory_state = state.clone();
    let mut server = HttpServer::new(move || app(factory_state.clone()));
    if let Some(w) = workers {
        server = server.workers(w.max(1));
    }
    server = server
        .worker_max_blocking_threads(state.config.blocking_threads.max(1))
        // A client that does not finish sending its request head in time gets 408 and is
        // disconnected (slow-loris); read_json applies the same limit to the body.
        .client_request_timeout(request_timeout)
        .client_disconnect_timeout(std::time::Duration::from_secs(1))
        // In-flight requests get the dispatcher's grace period on shutdown (actix's default is
        // 30 s, longer than the process waits: see the binary's stop deadline).
        .shutdown_timeout(state.config.dispatcher.shutdown_grace_secs);
    // The binary handles SIGINT/SIGTERM itself, so that the dispatcher stops with the server.
    let server = server.disable_signals();
    let server = match &state.config.tls {
        Some(tls) => server.bind_rustls_0_23(&listen, tls::server_config(tls)?)?,
        None => server.bind(&listen)?,
    };
    let addrs = server.addrs();
    let admin = match &state.config.admin_listen {
        Some(admin_listen) => {
            let admin_state = state.clone();
            // Scrapes and probes are few: one worker, the same head timeout.
            let admin = HttpServer::new(move || admin_app(admin_state.clone()))
                .workers(1)
                .worker_max_blocking_threads(4)
                .client_request_timeout(request_timeout)
                .disable_signals()
                .bind(admin_listen)?;
            let admin_addrs = admin.addrs();
            Some((admin.run(), admin_addrs))
        }
        None => None,
    };
    Ok(Bound { server: server.run(), addrs, admin })
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    scim_error_response(&ScimError::not_found(format!(
        "no SCIM endpoint at {}; the API is served under the configured base_path (e.g. /scim/v2/Users)",
        req.path()
    )))
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut resp = scim_error_response(&ScimError::new(
        405,
        None,
        format!("method not allowed here; this endpoint takes {allow}"),
    ));
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

fn scim_error_response(e: &ScimError) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(e.status).unwrap_or_default())
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(http::SCIM_CONTENT_TYPE)))
        .body(serde_json::to_vec(&e.to_response()).unwrap_or_default())
}
