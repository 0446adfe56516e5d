//! The HTTP face of the simulated app: one entry point that records the request, applies the
//! faults, authenticates, and routes to the SCIM endpoints or the admin API.
//!
//! One handler instead of an actix route table: every request — even one to a path the app does
//! not serve — must be recorded with its body before anything else happens, and the faults must
//! apply before routing.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use scimgw_scim::ScimError;
use scimgw_scim::messages::{ListResponse, SearchRequest};
use serde_json::{Value, json};

use crate::Shared;
use crate::admin;
use crate::faults::{Action, FaultReply, InjectedFault};
use crate::profile::{Kind, RequestInfo};
use crate::store::QuerySpec;

/// The SCIM media type (RFC 7644 §8.1).
pub(crate) const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Every request enters here.
pub(crate) async fn entry(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_owned();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return admin::handle(&req, &body, &shared);
    }
    let headers = recorded_headers(&req);
    let authenticated = is_authenticated(&req, &shared.token);
    let seq = shared.record_start(&req, &headers, &body, authenticated);
    let (resp, fault) = serve(&req, &body, &shared, &headers, authenticated, seq).await;
    shared.record_finish(seq, resp.status().as_u16(), fault);
    resp
}

/// Outage, authentication, latency, the other faults, then the endpoint (see `faults`).
async fn serve(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    headers: &[(String, String)],
    authenticated: bool,
    seq: u64,
) -> (HttpResponse, Option<InjectedFault>) {
    let now = Instant::now();
    let method = req.method().as_str();
    let rel = shared.relative_path(req.path());
    let fault_path = rel.unwrap_or(req.path());
    let outage = shared.lock().faults.outage(now, method, fault_path);
    if let Some((reply, hold)) = outage {
        if !hold.is_zero() {
            shared.mark_fault(seq, reply.fault);
            tokio::time::sleep(hold).await;
        }
        let mut resp = fault_response(&reply);
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return (resp, Some(reply.fault));
    }
    if !authenticated {
        let mut resp = error_response(&ScimError::new(401, None, "missing or wrong bearer token"));
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"vendor-sim\""));
        return (resp, None);
    }
    let (latency, action) = shared.lock().faults.plan(now, method, fault_path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match action {
        Action::Serve => (route(req, body, shared, headers, rel), None),
        Action::Reply(reply) => (fault_response(&reply), Some(reply.fault)),
        Action::Hang { hold, after_apply: false } => {
            tokio::time::sleep(hold).await;
            let e = ScimError::new(504, None, "vendor-sim: the request was held and never applied");
            (error_response(&e), Some(InjectedFault::Hang))
        }
        Action::Hang { hold, after_apply: true } => {
            let resp = route(req, body, shared, headers, rel);
            tokio::time::sleep(hold).await;
            (resp, Some(InjectedFault::Hang))
        }
    }
}

/// The SCIM endpoints below the base path.
fn route(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    headers: &[(String, String)],
    rel: Option<&str>,
) -> HttpResponse {
    let Some(rel) = rel else {
        return error_response(&ScimError::not_found(format!(
            "no SCIM endpoint here; the API is served under {}",
            shared.base_path
        )));
    };
    let info = RequestInfo { method: req.method().as_str(), path: rel, query: req.query_string(), headers };
    match dispatch(req, body, shared, &info) {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn dispatch(
    req: &HttpRequest,
    body: &[u8],
    shared: &Shared,
    info: &RequestInfo<'_>,
) -> Result<HttpResponse, ScimError> {
    shared.profile.admit(info)?;
    let segments: Vec<&str> = info.path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().as_str();
    let kind = |endpoint: &str| -> Result<Kind, ScimError> {
        match endpoint {
            "Users" => Ok(Kind::User),
            "Groups" if shared.profile.supports_groups() => Ok(Kind::Group),
            "Groups" => Err(ScimError::not_found("this app has no Groups endpoint: it does not support groups")),
            _ => Err(ScimError::not_found(format!("no SCIM endpoint /{}", clip(endpoint)))),
        }
    };
    match (segments.as_slice(), method) {
        (["ServiceProviderConfig"], "GET") => Ok(ok(&shared.service_provider_config())),
        (["ResourceTypes"], "GET") => Ok(ok(&shared.resource_types())),
        (["Schemas"], "GET") => Ok(ok(&shared.schemas())),
        (["ServiceProviderConfig" | "ResourceTypes" | "Schemas"], _) => Err(method_not_allowed()),
        ([endpoint], "GET") => {
            let kind = kind(endpoint)?;
            let q = query_spec(req.query_string())?;
            let ctx = shared.ctx();
            Ok(ok(&shared.lock().store.query(&ctx, kind, &q)?))
        }
        ([endpoint], "POST") => {
            let kind = kind(endpoint)?;
            let value = read_json(req, body)?;
            let ctx = shared.ctx();
            let created = shared.lock().store.create(&ctx, kind, value, None)?;
            let mut resp = json_response(StatusCode::CREATED, &created);
            if let Some(loc) = created.pointer("/meta/location").and_then(Value::as_str) {
                if let Ok(v) = HeaderValue::from_str(loc) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
            }
            Ok(resp)
        }
        ([endpoint, ".search"], "POST") => {
            let kind = kind(endpoint)?;
            let sr = SearchRequest::from_json(&read_json(req, body)?)?;
            let q = QuerySpec {
                filter: sr.filter,
                attributes: (!sr.attributes.is_empty()).then(|| sr.attributes.join(",")),
                excluded_attributes: (!sr.excluded_attributes.is_empty()).then(|| sr.excluded_attributes.join(",")),
                start_index: sr.start_index.map(|i| i.to_string()),
                count: sr.count.map(|c| c.to_string()),
            };
            let ctx = shared.ctx();
            Ok(ok(&shared.lock().store.query(&ctx, kind, &q)?))
        }
        ([endpoint], _) => {
            kind(endpoint)?;
            Err(method_not_allowed())
        }
        ([endpoint, id], "GET") => {
            let kind = kind(endpoint)?;
            let q = query_spec(req.query_string())?;
            let ctx = shared.ctx();
            Ok(ok(&shared.lock().store.get(&ctx, kind, id, &q)?))
        }
        ([endpoint, id], "PUT") => {
            let kind = kind(endpoint)?;
            if kind == Kind::User && !shared.profile.replaces_users() {
                return Err(ScimError::new(
                    405,
                    None,
                    "this app does not replace users: change them with PATCH (RFC 7644 §3.5.2)",
                ));
            }
            let value = read_json(req, body)?;
            let ctx = shared.ctx();
            Ok(ok(&shared.lock().store.replace(&ctx, kind, id, value)?))
        }
        ([endpoint, id], "PATCH") => {
            let kind = kind(endpoint)?;
            let value = read_json(req, body)?;
            let ctx = shared.ctx();
            Ok(ok(&shared.lock().store.patch(&ctx, kind, id, &value)?))
        }
        ([endpoint, id], "DELETE") => {
            let kind = kind(endpoint)?;
            let ctx = shared.ctx();
            shared.lock().store.delete(&ctx, kind, id)?;
            Ok(HttpResponse::NoContent().finish())
        }
        ([endpoint, _], _) => {
            kind(endpoint)?;
            Err(method_not_allowed())
        }
        _ => Err(ScimError::not_found("no SCIM endpoint at this path")),
    }
}

fn method_not_allowed() -> ScimError {
    ScimError::new(405, None, "method not allowed on this endpoint")
}

/// `filter`, `attributes`, `excludedAttributes`, `startIndex`, `count`, names in any case. Other
/// parameters — `aadOptscim062020` and the like — are accepted and ignored.
fn query_spec(query: &str) -> Result<QuerySpec, ScimError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ScimError::invalid_value(format!("the query string could not be decoded: {e}")))?;
    let get = |name: &str| pairs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    Ok(QuerySpec {
        filter: get("filter"),
        attributes: get("attributes"),
        excluded_attributes: get("excludedAttributes"),
        start_index: get("startIndex"),
        count: get("count"),
    })
}

/// The body as JSON: `application/scim+json`, `application/json` or no content type; 415 for
/// anything else.
pub(crate) fn read_json(req: &HttpRequest, body: &[u8]) -> Result<Value, ScimError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(ct.is_empty() || ct == "application/json" || ct.ends_with("+json")) {
            return Err(ScimError::new(415, None, "send the body as application/scim+json or application/json"));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("the request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(body).map_err(|e| ScimError::invalid_syntax(format!("the request body is not JSON: {e}")))
}

fn is_authenticated(req: &HttpRequest, token: &str) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut parts = value.trim().splitn(2, ' ');
    let scheme_ok = parts.next().is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
    scheme_ok && parts.next().map(str::trim) == Some(token)
}

/// The headers to record: every one except Authorization, names in lower case.
fn recorded_headers(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter(|(name, _)| *name != header::AUTHORIZATION)
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE)))
        .body(body.to_string())
}

fn ok(body: &Value) -> HttpResponse {
    json_response(StatusCode::OK, body)
}

/// A SCIM Error response (RFC 7644 §3.12).
pub(crate) fn error_response(e: &ScimError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_value(e.to_response()).unwrap_or(Value::Null);
    json_response(status, &body)
}

/// An injected error: a SCIM Error body with the configured `scimType` and `detail`, and
/// `Retry-After` when set.
fn fault_response(reply: &FaultReply) -> HttpResponse {
    let mut body = json!({
        "schemas": [scimgw_scim::error::ERROR_SCHEMA],
        "status": reply.status.to_string(),
        "detail": reply.detail,
    });
    if let (Some(t), Value::Object(obj)) = (&reply.scim_type, &mut body) {
        obj.insert("scimType".into(), Value::String(t.clone()));
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(status, &body);
    if let Some(secs) = reply.retry_after_secs {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A list of discovery resources.
pub(crate) fn list_of(items: Vec<Value>) -> Value {
    let total = items.len() as u64;
    serde_json::to_value(ListResponse::new(items, total, 1)).unwrap_or(Value::Null)
}
