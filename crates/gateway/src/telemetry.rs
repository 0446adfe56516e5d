//! Operations endpoints and telemetry: `/healthz`, `/readyz`, Prometheus `/metrics`, and the
//! per-request span (request id, tenant) with its access-log line and metrics.
//!
//! The request id is taken from an incoming `X-Request-Id` when it is sane (1–64 characters of
//! letters, digits, `-`, `_`, `.`), else generated, and echoed in the response. Every log line of a
//! request is inside the `request` span, which carries the id and, once the bearer token is
//! checked, the tenant. Headers, bodies and query strings are never logged (filters carry user
//! names; the Authorization header carries the token).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tracing::Instrument;

use crate::AppState;
use crate::auth::Principal;

/// `X-Request-Id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Latency buckets in seconds, for requests and deliveries.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Buckets of the group-commit batch sizes (writes per SQLite commit).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The process's Prometheus recorder, installed on first use. `None` if another recorder was
/// installed first (then metrics are not exported).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).and_then(|b| {
                b.set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full("scimgw_store_write_batch_size".into()),
                    BATCH_BUCKETS,
                )
            });
            match builder {
                Ok(b) => b.install_recorder().ok(),
                Err(_) => None,
            }
        })
        .as_ref()
}

pub use scimgw_delivery::dispatch::Heartbeat;

fn sane_request_id(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_request_id() -> String {
    use rand::RngExt;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

/// The route pattern a path is served by, as actix would name it (`/scim/v2/Users/{id}`), for
/// the access log and the metrics labels. Worked out from the path's shape: asking actix
/// (`match_pattern`) runs every route's regex again, a few per cent of a GET's CPU. The path is
/// the canonical one (`paths` runs first), so `/users/` is counted as `/scim/v2/Users`.
pub(crate) fn route_of(path: &str, base: &str) -> String {
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return path.to_owned();
    }
    let unmatched = || "(unmatched)".to_owned();
    let Some(rest) = path.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else { return unmatched() };
    let mut parts = rest.split('/');
    let (Some(first), second, None) = (parts.next(), parts.next(), parts.next()) else { return unmatched() };
    match (first, second) {
        ("Users" | "Groups" | "Schemas" | "ResourceTypes" | "ServiceProviderConfig" | ".search", None) => {
            format!("{base}/{first}")
        }
        ("Users" | "Groups", Some(".search")) => format!("{base}/{first}/.search"),
        ("Users" | "Groups" | "Schemas" | "ResourceTypes", Some(id)) if !id.is_empty() => {
            format!("{base}/{first}/{{id}}")
        }
        _ => unmatched(),
    }
}

/// The `method` label of a request: one of the methods RFC 9110 defines, else `other`. Metric
/// labels come from closed sets (this, [`route_of`], the status, an authenticated tenant): a
/// label taken as sent lets anyone, without a token, add series that are never freed (300
/// requests with invented methods once grew `/metrics` to 44 MB). The access log uses the same
/// label, so an invented method cannot fill the log either.
pub(crate) fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The request's id, in the request's extensions for handlers (the audit trail records it).
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) String);

/// The per-request middleware: span, request id, access log, request metrics.
pub(crate) async fn request_telemetry(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map_or_else(new_request_id, str::to_owned);
    let method = method_label(req.method());
    let route = match req.app_data::<web::Data<AppState>>() {
        Some(state) => route_of(req.path(), state.config.base_path()),
        None => req.match_pattern().unwrap_or_else(|| "(unmatched)".to_owned()),
    };
    let span = tracing::info_span!("request", request_id = %id, tenant = tracing::field::Empty);
    {
        use actix_web::HttpMessage;
        req.extensions_mut().insert(RequestId(id.clone()));
    }
    let mut res = next.call(req).instrument(span.clone()).await?;
    let status = res.status().as_u16();
    let principal = res.request().extensions().get::<Principal>().cloned();
    let tenant = principal.as_ref().map_or("-", |p| p.tenant_name.as_str()).to_owned();
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| {
        tracing::info!(
            http.method = %method,
            http.route = %route,
            http.status = status,
            duration_ms = elapsed * 1000.0,
            key.id = principal.as_ref().map_or("-", |p| p.key_id.as_str()),
            "request"
        );
    });
    if route != "/metrics" {
        let labels = [
            ("route", route.clone()),
            ("method", method.to_owned()),
            ("status", status.to_string()),
            ("tenant", tenant),
        ];
        metrics::counter!("scimgw_http_requests_total", &labels).increment(1);
        metrics::histogram!("scimgw_http_request_duration_seconds", "route" => route, "method" => method)
            .record(elapsed);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    Ok(res)
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers, its migrations are current, and the dispatcher (when this
/// process runs one) went round its loop recently. 503 with the failing checks otherwise.
///
/// The answer names the failing check, never the store's own error: that can carry the database
/// host, port and user, and `/readyz` needs no token. The error goes to the log (warn), once per
/// failed probe.
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    // On the store's threads: on PostgreSQL a server that stopped answering costs a 503 within
    // the store's deadline instead of a probe that never ends.
    let store = state
        .store
        .run_blocking(move |store| -> Result<usize, (&'static str, scimgw_store::StoreError)> {
            store.ping().map_err(|e| ("store", e))?;
            store.pending_migrations().map(|p| p.len()).map_err(|e| ("migrations", e))
        })
        .await;
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    match store {
        Ok(Ok(0)) => {
            checks.insert("store".into(), json!("ok"));
            checks.insert("migrations".into(), json!("current"));
        }
        Ok(Ok(n)) => {
            ready = false;
            checks.insert("store".into(), json!("ok"));
            checks.insert("migrations".into(), json!(format!("{n} pending: run scimgw migrate")));
        }
        Ok(Err((check, e))) => {
            ready = false;
            tracing::warn!(readyz.check = check, error = %e, "not ready");
            if check == "migrations" {
                checks.insert("store".into(), json!("ok"));
                checks.insert("migrations".into(), json!("unknown: the store could not list them (see the log)"));
            } else {
                checks.insert("store".into(), json!("unavailable (see the log)"));
            }
        }
        Err(e) => {
            ready = false;
            tracing::warn!(readyz.check = "store", error = %e, "not ready: the check did not run");
            checks.insert("store".into(), json!("unavailable (see the log)"));
        }
    }
    if let Some(hb) = &state.heartbeat {
        let limit = i64::try_from(state.config.dispatcher.poll_ms.saturating_mul(20).max(10_000)).unwrap_or(i64::MAX);
        match hb.age_ms() {
            Some(age) if age <= limit => {
                checks.insert("dispatcher".into(), json!("running"));
            }
            Some(age) => {
                ready = false;
                checks.insert("dispatcher".into(), json!(format!("stalled: last loop {age} ms ago")));
            }
            None => {
                ready = false;
                checks.insert("dispatcher".into(), json!("not started"));
            }
        }
    }
    // Degraded, not unready: the other targets and tenants work, and restarting would not fix a
    // configuration. Counted only; the names and problems are in the log and `scimgw status`
    // (this endpoint answers without authentication).
    let set = state.targets.snapshot();
    let broken = set.all_broken().filter(|(_, b)| !b.running_previous).count();
    let stale = set.all_broken().filter(|(_, b)| b.running_previous).count();
    let targets = match (broken, stale) {
        (0, 0) => "ok".to_owned(),
        (b, s) => {
            let mut parts = Vec::new();
            if b > 0 {
                parts.push(format!("{b} target(s) not loaded, their changes wait in the outbox"));
            }
            if s > 0 {
                parts.push(format!("{s} target(s) run their previous configuration, a reload could not load them"));
            }
            format!("degraded: {} (see the log or scimgw status)", parts.join("; "))
        }
    };
    checks.insert("targets".into(), json!(targets));
    let body = json!({"status": if ready { "ready" } else { "not ready" }, "checks": checks});
    if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) }
}

/// Label sets of the outbox gauges set at the last scrape, to zero those that disappeared.
static OUTBOX_LABELS: Mutex<Option<HashSet<(String, String, String)>>> = Mutex::new(None);

/// Label sets of `scimgw_target_not_loaded` set at the last scrape, likewise.
static NOT_LOADED_LABELS: Mutex<Option<HashSet<(String, String, String)>>> = Mutex::new(None);

/// Label sets of `scimgw_target_paused` set at the last scrape, likewise.
static PAUSED_LABELS: Mutex<Option<HashSet<(String, String, String)>>> = Mutex::new(None);

/// `GET /metrics`: the Prometheus text format, with the outbox gauges read from the store now.
pub(crate) async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = prometheus() else {
        return HttpResponse::ServiceUnavailable().body("metrics are not available in this process\n");
    };
    // On the store's threads, so that a store that stopped answering costs a scrape without the
    // outbox gauges (within the store's deadline), not a scrape that never ends.
    let stats = state
        .store
        .run_blocking(move |store| -> Result<_, String> {
            let tenants = store.tenants().map_err(|e| e.to_string())?;
            let rows = store.outbox_stats(false).map_err(|e| e.to_string())?;
            let runs = store.reconcile_runs().map_err(|e| e.to_string())?;
            let paused = store.paused_targets().map_err(|e| e.to_string())?;
            Ok((tenants, rows, runs, paused))
        })
        .await;
    if let Ok(Ok((tenants, rows, runs, paused))) = stats {
        let name = |id: &str| tenants.iter().find(|t| t.id == id).map_or_else(|| id.to_owned(), |t| t.name.clone());
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut seen = HashSet::new();
        for row in &rows {
            let tenant = name(&row.tenant_id);
            let key = (tenant.clone(), row.target.clone(), row.state.clone());
            metrics::gauge!("scimgw_outbox_rows", "tenant" => key.0.clone(), "target" => key.1.clone(), "state" => key.2.clone())
                .set(row.count as f64);
            if row.state == "pending" || row.state == "failed" {
                let age = (now_us - row.oldest_created_us).max(0) as f64 / 1e6;
                metrics::gauge!("scimgw_outbox_oldest_seconds", "tenant" => tenant, "target" => row.target.clone(), "state" => row.state.clone())
                    .set(age);
            }
            seen.insert(key);
        }
        if let Ok(mut last) = OUTBOX_LABELS.lock() {
            for gone in last.get_or_insert_with(HashSet::new).difference(&seen) {
                metrics::gauge!("scimgw_outbox_rows", "tenant" => gone.0.clone(), "target" => gone.1.clone(), "state" => gone.2.clone())
                    .set(0.0);
                metrics::gauge!("scimgw_outbox_oldest_seconds", "tenant" => gone.0.clone(), "target" => gone.1.clone(), "state" => gone.2.clone())
                    .set(0.0);
            }
            *last = Some(seen);
        }
        // Targets the last load could not build, 1 each: `effect` says whether their changes
        // are held or a reload's mistake left the previous configuration running ('' as target
        // names a whole tenant file).
        let set = state.targets.snapshot();
        let mut now_broken = HashSet::new();
        for (tenant_id, b) in set.all_broken() {
            let effect = if b.running_previous { "previous_running" } else { "held" };
            let key = (name(tenant_id), b.target.clone().unwrap_or_default(), effect.to_owned());
            metrics::gauge!("scimgw_target_not_loaded", "tenant" => key.0.clone(), "target" => key.1.clone(), "effect" => effect)
                .set(1.0);
            now_broken.insert(key);
        }
        if let Ok(mut last) = NOT_LOADED_LABELS.lock() {
            for gone in last.get_or_insert_with(HashSet::new).difference(&now_broken) {
                metrics::gauge!("scimgw_target_not_loaded", "tenant" => gone.0.clone(), "target" => gone.1.clone(), "effect" => gone.2.clone())
                    .set(0.0);
            }
            *last = Some(now_broken);
        }
        // Targets paused because they stopped serving us: 1 with the reason, and since when.
        let mut now_paused = HashSet::new();
        for p in &paused {
            let key = (name(&p.tenant_id), p.target.clone(), p.reason.clone());
            metrics::gauge!("scimgw_target_paused", "tenant" => key.0.clone(), "target" => key.1.clone(), "reason" => key.2.clone())
                .set(1.0);
            metrics::gauge!("scimgw_target_paused_since_seconds", "tenant" => key.0.clone(), "target" => key.1.clone())
                .set(p.since_us as f64 / 1e6);
            now_paused.insert(key);
        }
        if let Ok(mut last) = PAUSED_LABELS.lock() {
            for gone in last.get_or_insert_with(HashSet::new).difference(&now_paused) {
                metrics::gauge!("scimgw_target_paused", "tenant" => gone.0.clone(), "target" => gone.1.clone(), "reason" => gone.2.clone())
                    .set(0.0);
                if !now_paused.iter().any(|k| k.0 == gone.0 && k.1 == gone.1) {
                    metrics::gauge!("scimgw_target_paused_since_seconds", "tenant" => gone.0.clone(), "target" => gone.1.clone())
                        .set(0.0);
                }
            }
            *last = Some(now_paused);
        }
        // The last reconcile of each target (a failed run keeps the previous counts).
        for run in runs.iter().filter(|r| r.finished_us.is_some()) {
            let tenant = name(&run.tenant_id);
            for (finding, count) in [
                ("drifted", run.drifted),
                ("missing", run.missing),
                ("orphans", run.orphans),
                ("unlinked", run.unlinked),
            ] {
                metrics::gauge!("scimgw_reconcile_findings", "tenant" => tenant.clone(), "target" => run.target.clone(), "finding" => finding)
                    .set(count as f64);
            }
            let finished = run.finished_us.unwrap_or(0) as f64 / 1e6;
            metrics::gauge!("scimgw_reconcile_last_run_timestamp_seconds", "tenant" => tenant.clone(), "target" => run.target.clone())
                .set(finished);
            metrics::gauge!("scimgw_reconcile_last_run_failed", "tenant" => tenant, "target" => run.target.clone())
                .set(if run.error.is_some() { 1.0 } else { 0.0 });
        }
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(handle.render())
}

/// The drop hook of lenient validation: an attribute no schema defines was dropped from a
/// request. Counted, and named at debug level inside the request's span (which names the
/// tenant) — the name only, never the value.
pub(crate) fn dropped_attribute(name: &str) {
    metrics::counter!("scimgw_scim_dropped_attributes_total").increment(1);
    tracing::debug!(attribute = name, "unknown attribute dropped (strict_attributes is off)");
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_are_named_as_actix_names_them() {
        let b = "/scim/v2";
        for (path, route) in [
            ("/scim/v2/Users", "/scim/v2/Users"),
            ("/scim/v2/Users/6a1f", "/scim/v2/Users/{id}"),
            ("/scim/v2/Groups/.search", "/scim/v2/Groups/.search"),
            ("/scim/v2/.search", "/scim/v2/.search"),
            ("/scim/v2/.search/x", "(unmatched)"),
            ("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "/scim/v2/Schemas/{id}"),
            ("/scim/v2/ServiceProviderConfig", "/scim/v2/ServiceProviderConfig"),
            ("/healthz", "/healthz"),
            ("/metrics", "/metrics"),
            // Never seen after `paths`, which makes these `/scim/v2/Users`.
            ("/scim/v2/Users/", "(unmatched)"),
            ("/scim/v2/users", "(unmatched)"),
            ("/scim/v2/Users/a/b", "(unmatched)"),
            ("/scim/v2/ServiceProviderConfig/x", "(unmatched)"),
            ("/scim/v2/Nope", "(unmatched)"),
            ("/scim/v2x/Users", "(unmatched)"),
            ("/other", "(unmatched)"),
        ] {
            assert_eq!(route_of(path, b), route, "{path}");
        }
        assert_eq!(route_of("/Users/1", ""), "/Users/{id}");
    }
}
