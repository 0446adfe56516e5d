//! HTTP plumbing shared by the handlers: reading bodies within the limit, query parameters,
//! content types, ETags and SCIM responses.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use scimgw_scim::{ScimError, ScimType};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, bad_json};

/// `https://host/scim/v2`: the service's base URL, under which every resource is placed
/// (`meta.location`, a member's `$ref`, a create's `Location`, the discovery documents). The
/// configured `public_url`; else the listener's scheme and the request's `Host` with the base path.
///
/// `Forwarded`, `X-Forwarded-Host` and `X-Forwarded-Proto` are believed only from a peer in
/// `trusted_proxies` (as `X-Forwarded-For` is by the throttle): from anyone else, a request with
/// `Forwarded: host=evil.example` would be answered with locations at evil.example, and a cache
/// or a client that follows them would go there. From a trusted proxy, only what the proxy itself
/// wrote counts: the rightmost value of each header (a proxy appends its own after what the
/// client sent), `X-Forwarded-*` before `Forwarded` (nginx overwrites `X-Forwarded-Host` but
/// passes a client's `Forwarded` through). A host that is not a host name or address with an
/// optional port is ignored. `public_url` leaves nothing to headers at all.
pub(crate) fn base_url(req: &HttpRequest, state: &crate::AppState) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let base_path = state.config.base_path();
    let config = req.app_config();
    let headers = req.headers();
    let own_host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| plausible_host(h))
        .unwrap_or_else(|| config.host());
    let mut scheme = if config.secure() { "https" } else { "http" };
    let mut host = own_host;
    let trusted = req.peer_addr().is_some_and(|peer| state.config.trusted_proxies.contains(&peer.ip()));
    if trusted {
        let forwarded = |key: &str| rightmost(headers, "forwarded").and_then(|e| forwarded_pair(e, key));
        if let Some(h) = rightmost(headers, "x-forwarded-host").or_else(|| forwarded("host")) {
            if plausible_host(h) {
                host = h;
            }
        }
        match rightmost(headers, "x-forwarded-proto").or_else(|| forwarded("proto")) {
            Some(p) if p.eq_ignore_ascii_case("https") => scheme = "https",
            Some(p) if p.eq_ignore_ascii_case("http") => scheme = "http",
            _ => {}
        }
    }
    format!("{scheme}://{host}{base_path}")
}

/// The last comma-separated element of the last `name` header, trimmed (of `Forwarded`, the last
/// element: the nearest proxy's).
fn rightmost<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get_all(name).last()?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    (!last.is_empty()).then_some(last)
}

/// `key=value` of one `Forwarded` element (RFC 7239 §4), unquoted.
fn forwarded_pair<'e>(element: &'e str, key: &str) -> Option<&'e str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim().trim_matches('"'))
    })
}

/// A host name, IPv4 or bracketed IPv6 address, with an optional port: nothing that could carry
/// a path, userinfo or a second URL into a location.
fn plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'))
}

/// The SCIM media type (RFC 7644 §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Reads the body (at most `limit` bytes; 413 beyond) and parses it as JSON (400 otherwise; a
/// NUL character anywhere in it is a 400 too, see [`crate::limits`]).
/// `application/scim+json`, `application/json` and no content type at all are accepted;
/// anything else is a 415.
pub(crate) async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
    config: &crate::Config,
) -> Result<Value, ApiError> {
    let limit = config.max_body_bytes;
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !(ct.is_empty() || ct == SCIM_CONTENT_TYPE || ct == "application/json" || ct.ends_with("+json")) {
            return Err(ScimError::new(
                415,
                None,
                format!("Content-Type \"{ct}\" is not supported; send application/scim+json or application/json"),
            )
            .into());
        }
    }
    let too_large = || ScimError::new(413, None, format!("the request body exceeds the limit of {limit} bytes"));
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if len > limit {
            return Err(too_large().into());
        }
    }
    let mut body = web::BytesMut::new();
    // A client that sends its body slower than request_timeout_secs in all gets 408 (actix's
    // client_request_timeout covers only the head).
    let timeout = std::time::Duration::from_secs(config.request_timeout_secs);
    let read = tokio::time::timeout(timeout, async {
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ScimError::invalid_syntax(format!("the request body could not be read: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    });
    match read.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => {
            return Err(ScimError::new(
                408,
                None,
                format!(
                    "the request body did not arrive within request_timeout_secs ({} s)",
                    config.request_timeout_secs
                ),
            )
            .into());
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("the request body is empty; a JSON object is required").into());
    }
    let value = serde_json::from_slice(&body).map_err(|e| bad_json(&e))?;
    crate::limits::reject_nul_in_body(&value)?;
    Ok(value)
}

/// Query parameters, parsed leniently: `?aadOptscim062020` (a flag without a value) and unknown
/// parameters are accepted and ignored; names are matched ignoring case.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(req: &HttpRequest) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).map_err(|e| {
            ScimError::bad_request(ScimType::InvalidValue, format!("the query string could not be decoded: {e}"))
        })?;
        Ok(Self(pairs))
    }

    /// The value of `name` (last one wins, as most servers do).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// The media type to answer with: `application/json` only when the client asks for it and not
/// for SCIM's own type.
pub(crate) fn response_content_type(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/json") && !accept.contains(SCIM_CONTENT_TYPE) && !accept.contains("*/*") {
        "application/json"
    } else {
        SCIM_CONTENT_TYPE
    }
}

/// A SCIM JSON response with the negotiated content type.
pub(crate) fn json_response<T: Serialize>(
    req: &HttpRequest,
    status: actix_web::http::StatusCode,
    body: &T,
) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| ApiError::Store(scimgw_store::StoreError::Internal(format!("serialising a response: {e}"))))?;
    Ok(HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(response_content_type(req.headers()))))
        .body(bytes))
}

/// `If-Match` as a version number: `None` when absent or `*`. A value that is not one of our
/// ETags can never match, so it is a 412 straight away.
pub(crate) fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else { return Ok(None) };
    let raw = raw.to_str().unwrap_or("").trim();
    if raw == "*" {
        return Ok(None);
    }
    // Several ETags may be listed; ours are W/"<n>" and the store compares one version.
    let first = raw.split(',').next().unwrap_or("").trim();
    parse_etag(first).map(Some).ok_or_else(|| {
        ScimError::new(412, None, "If-Match does not name a version of this resource; read it again for its ETag")
            .into()
    })
}

/// `W/"7"` or `"7"` → 7.
pub(crate) fn parse_etag(s: &str) -> Option<i64> {
    let s = s.strip_prefix("W/").unwrap_or(s);
    s.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_parse_weak_and_strong() {
        assert_eq!(parse_etag("W/\"7\""), Some(7));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("7"), None);
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
