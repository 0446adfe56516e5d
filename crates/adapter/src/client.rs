//! A SCIM 2.0 client for vendor adapters: reqwest over rustls, timeouts, connection reuse, bearer
//! auth, and vendor errors classified into [`DeliveryError`].

use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::outcome::{DeliveryError, Down};
use crate::secret::Secret;

/// The media type of SCIM bodies (RFC 7644 §3.1).
const SCIM_JSON: &str = "application/scim+json";

/// How much of a non-SCIM error body is kept as the vendor's message.
const MAX_MESSAGE_CHARS: usize = 300;

/// The largest answer read from a vendor, in bytes (4 MiB). A listing page of 1,000 users is
/// about 1 MB; beyond this the answer is refused (a retryable delivery error naming the limit)
/// rather than held in memory whole, whatever the vendor — or something posing as it — sends.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Timeouts and pool settings of a [`ScimClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, response body included.
    pub request_timeout: Duration,
    /// Accept any certificate from the vendor (`tls_skip_verify`); verification is on by default.
    pub accept_invalid_certs: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            accept_invalid_certs: false,
        }
    }
}

/// A client for one SCIM 2.0 service provider.
///
/// The base URL may carry a query string (Entra-style `…/scim/v2/?aadOptscim062020`): it is kept on
/// every request. Clones share one connection pool.
#[derive(Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base: Url,
    base_path: String,
    base_query: Option<String>,
    token: Secret,
}

impl std::fmt::Debug for ScimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClient").field("base", &self.base.as_str()).field("token", &self.token).finish()
    }
}

impl ScimClient {
    /// A client for the service provider at `base_url` (http or https), authenticating with
    /// `Authorization: Bearer <token>`.
    pub fn new(base_url: &str, token: Secret, options: ClientOptions) -> Result<ScimClient, String> {
        let base = parse_base_url(base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("scimgw/", env!("CARGO_PKG_VERSION")))
            // A redirect is never followed: it would carry the request, bearer token and user
            // included (a 307/308 re-sends the body), to wherever the vendor — or whoever
            // answers in its place — points. `send` turns it into an error naming the target.
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(options.accept_invalid_certs)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let base_path = base.path().trim_end_matches('/').to_owned();
        let base_query = base.query().filter(|q| !q.is_empty()).map(str::to_owned);
        Ok(ScimClient { http, base, base_path, base_query, token })
    }

    /// The base URL as configured.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `{base}/{relative}` with the base's query string and then `query`.
    fn url(&self, relative: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.set_path(&format!("{}/{}", self.base_path, relative.trim_start_matches('/')));
        url.set_query(self.base_query.as_deref());
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends one request and returns the response body as JSON (`Value::Null` when empty), or the
    /// classified error.
    pub async fn send(
        &self,
        method: Method,
        relative: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, DeliveryError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|e| DeliveryError::permanent(e.to_string()))?;
        let Answer { status, headers, text } =
            self.exchange(&method, relative, query, body).await.map_err(|e| transport_error(&method, relative, &e))?;
        if status.is_redirection() {
            return Err(redirect_error(status, &headers, &format!("{method} {relative}"), |t| self.scrub(t)));
        }
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| {
                DeliveryError::retryable(format!(
                    "{method} {relative}: the target answered {status} with a body that is not JSON ({e})"
                ))
            });
        }
        Err(classify(status, &headers, &self.scrub(text), &format!("{method} {relative}")))
    }

    /// Sends one request and reads the whole answer, whatever its status, up to
    /// [`MAX_RESPONSE_BYTES`]: the one place a request is built (URL, bearer token, media types)
    /// and an answer read.
    pub(crate) async fn exchange(
        &self,
        method: &Method,
        relative: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ExchangeError> {
        let mut req = self
            .http
            .request(method.clone(), self.url(relative, query))
            .bearer_auth(self.token.expose())
            .header(ACCEPT, format!("{SCIM_JSON}, application/json"));
        if let Some(bytes) = body {
            req = req.header(CONTENT_TYPE, SCIM_JSON).body(bytes);
        }
        let mut response = req.send().await.map_err(ExchangeError::Transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let too_large = || ExchangeError::TooLarge { status };
        if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(ExchangeError::Transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Answer { status, headers, text })
    }

    /// `text` without the token: a vendor that echoes the request's credential in its error must
    /// not put it into the outbox's last error, the logs, `deliveries show` or `target test`.
    pub(crate) fn scrub(&self, text: String) -> String {
        let secret = self.token.expose();
        if secret.len() < 8 {
            return text;
        }
        // Also as it would stand in a URL (a redirect's Location, a query echoed back).
        let mut text = if text.contains(secret) { text.replace(secret, "***") } else { text };
        for encoded in [percent_encoded(secret, false), percent_encoded(secret, true)] {
            if encoded != secret && text.contains(&encoded) {
                text = text.replace(&encoded, "***");
            }
        }
        text
    }

    /// `GET {resource}?filter=…&count=2`: the one resource matching, `None` when none does. More
    /// than one match is a permanent error (adopting either would be a guess).
    pub async fn find_one(&self, resource: &str, filter: &str) -> Result<Option<Value>, DeliveryError> {
        let mut list = self.send(Method::GET, resource, &[("filter", filter), ("count", "2")], None).await?;
        let resources = match list.get_mut("Resources").map(Value::take) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        match resources.len() {
            0 => Ok(None),
            1 => Ok(resources.into_iter().next()),
            n => Err(DeliveryError::permanent(format!(
                "the target holds {n} {resource} matching {filter}; refusing to guess which one is ours"
            ))),
        }
    }

    /// `GET {resource}?startIndex=…&count=…`: one page of a listing (RFC 7644 §3.4.2.4).
    pub async fn list(&self, resource: &str, start_index: u64, count: u64) -> Result<crate::UserPage, DeliveryError> {
        let count_n = count;
        let (start, count) = (start_index.to_string(), count.to_string());
        let mut list = self.send(Method::GET, resource, &[("startIndex", &start), ("count", &count)], None).await?;
        let Some(resources) = list.get_mut("Resources").map(|r| match r.take() {
            Value::Array(a) => Some(a),
            _ => None,
        }) else {
            // RFC 7644 §3.4.2: an empty result may leave `Resources` out.
            return Ok(crate::UserPage {
                resources: Vec::new(),
                total: list.get("totalResults").and_then(Value::as_u64),
            });
        };
        let resources = resources.ok_or_else(|| {
            DeliveryError::permanent(format!("GET {resource}: the target's \"Resources\" is not a list"))
        })?;
        // RFC 7644 §3.4.2.4: no more than asked for. A page of many more (tiny objects, each a map
        // of its own) would hold far more memory than its bytes, page after page.
        if resources.len() as u64 > count_n {
            return Err(DeliveryError::permanent(format!(
                "GET {resource}: the target answered {} resources to a page of count={count_n}; refusing a listing \
                 that does not keep to the page size (RFC 7644 §3.4.2.4)",
                resources.len()
            )));
        }
        Ok(crate::UserPage { resources, total: list.get("totalResults").and_then(Value::as_u64) })
    }

    /// `GET {resource}/{id}`: the resource, `None` when the vendor answers 404.
    pub async fn get(&self, resource: &str, id: &str) -> Result<Option<Value>, DeliveryError> {
        match self.send(Method::GET, &format!("{resource}/{}", encode_segment(id)), &[], None).await {
            Ok(v) if v.is_object() => Ok(Some(v)),
            Ok(_) => Err(DeliveryError::retryable(format!("GET {resource}/…: the target's answer is not a resource"))),
            Err(DeliveryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST {resource}`: the created resource as the vendor returned it.
    pub async fn create(&self, resource: &str, body: &Value) -> Result<Value, DeliveryError> {
        self.send(Method::POST, resource, &[], Some(body)).await
    }

    /// `PUT {resource}/{id}`.
    pub async fn replace(&self, resource: &str, id: &str, body: &Value) -> Result<Value, DeliveryError> {
        self.send(Method::PUT, &format!("{resource}/{}", encode_segment(id)), &[], Some(body)).await
    }

    /// `PATCH {resource}/{id}` with these operations.
    pub async fn patch(&self, resource: &str, id: &str, operations: Value) -> Result<Value, DeliveryError> {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        });
        self.send(Method::PATCH, &format!("{resource}/{}", encode_segment(id)), &[], Some(&body)).await
    }

    /// `DELETE {resource}/{id}`; a 404 counts as done (the goal is that it is gone).
    pub async fn delete(&self, resource: &str, id: &str) -> Result<(), DeliveryError> {
        match self.send(Method::DELETE, &format!("{resource}/{}", encode_segment(id)), &[], None).await {
            Ok(_) | Err(DeliveryError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Why [`ScimClient::exchange`] has no answer.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// No answer: reqwest's error (connect, TLS, timeout, a body cut short).
    Transport(reqwest::Error),
    /// An answer larger than [`MAX_RESPONSE_BYTES`], left unread.
    TooLarge {
        /// Its status.
        status: StatusCode,
    },
}

/// `text` percent-encoded as in a URL (RFC 3986 §2.3: all but the unreserved characters), with
/// upper- or lower-case hex digits.
fn percent_encoded(text: &str, lower: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if lower {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A redirect: never followed (see [`ScimClient::new`]); retried like a wrong credential, since
/// nothing in the data is wrong and an operator fixes it (`base_url`). The error names where it
/// pointed, scrubbed of the token like any vendor text.
fn redirect_error(
    status: StatusCode,
    headers: &HeaderMap,
    what: &str,
    scrub: impl Fn(String) -> String,
) -> DeliveryError {
    // Scrubbed whole, then cut: cut first, a token across the cut would not be found and its
    // first part would be kept.
    let to = headers.get(reqwest::header::LOCATION).map_or_else(
        || "nowhere (no Location)".to_owned(),
        |v| scrub(String::from_utf8_lossy(v.as_bytes()).into_owned()).chars().take(MAX_MESSAGE_CHARS).collect(),
    );
    DeliveryError::Retryable {
        message: format!(
            "{what} → {}: the target redirects to {to}; redirects are not followed (set base_url to where the API is)",
            status.as_u16()
        ),
    }
}

/// One answer of the vendor, read whole.
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as text (empty when there was none).
    pub text: String,
}

/// `base_url` parsed, when it is an http(s) URL with a host; else why not.
pub(crate) fn parse_base_url(base_url: &str) -> Result<Url, String> {
    let base = Url::parse(base_url).map_err(|e| format!("base_url \"{base_url}\" is not a URL: {e}"))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!("base_url \"{base_url}\" must be http:// or https://"));
    }
    if base.host_str().is_none() {
        return Err(format!("base_url \"{base_url}\" has no host"));
    }
    Ok(base)
}

/// Percent-encodes a remote id for use as one path segment.
fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A failure before any response: always worth retrying (the vendor may be restarting). An
/// answer over [`MAX_RESPONSE_BYTES`] is retried too (a listing page can be asked smaller).
fn transport_error(method: &Method, relative: &str, e: &ExchangeError) -> DeliveryError {
    let e = match e {
        ExchangeError::Transport(e) => e,
        ExchangeError::TooLarge { status } => {
            return DeliveryError::retryable(format!(
                "{method} {relative} → {}: the answer is larger than {MAX_RESPONSE_BYTES} bytes (MAX_RESPONSE_BYTES); not read",
                status.as_u16()
            ));
        }
    };
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let message = format!("{method} {relative} {what}: {}", error_chain(e));
    // A request that could not be built is ours; anything else (refused, reset, timed out) is
    // the target not answering.
    match e.is_builder() {
        true => DeliveryError::Retryable { message },
        false => DeliveryError::TargetDown { reason: Down::Unreachable, message },
    }
}

/// reqwest's error with its causes, which say why (a refused connection, an untrusted
/// certificate). reqwest's error text names the URL but never the headers, so the token cannot
/// leak here.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

/// Classifies an error response.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &str, what: &str) -> DeliveryError {
    let message = format!("{what} → {}: {}", status.as_u16(), vendor_message(body));
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    match status.as_u16() {
        429 => DeliveryError::RateLimited { retry_after, message },
        503 if retry_after.is_some() => DeliveryError::RateLimited { retry_after, message },
        404 => DeliveryError::NotFound { message },
        409 => DeliveryError::Conflict { message },
        // A wrong or expired credential, or a timeout: nothing in the data is wrong, so retry
        // (with backoff, up to max_attempts) while an operator fixes the target.
        401 => DeliveryError::TargetDown { reason: Down::Unauthorized, message },
        403 => DeliveryError::TargetDown { reason: Down::Forbidden, message },
        s if s == 408 || s >= 500 => DeliveryError::TargetDown { reason: Down::ServerError, message },
        s => DeliveryError::Permanent { status: Some(s), message },
    }
}

/// The vendor's own words: a SCIM error's `detail` (with its `scimType`), else the start of the body.
pub(crate) fn vendor_message(body: &str) -> String {
    if let Ok(Value::Object(err)) = serde_json::from_str::<Value>(body) {
        let detail = err.get("detail").and_then(Value::as_str);
        let scim_type = err.get("scimType").and_then(Value::as_str);
        match (detail, scim_type) {
            (Some(d), Some(t)) => return format!("{d} (scimType {t})"),
            (Some(d), None) => return d.to_owned(),
            _ => {}
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "(empty body)".into();
    }
    let mut out: String = trimmed.chars().take(MAX_MESSAGE_CHARS).collect();
    if trimmed.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn client(base: &str) -> ScimClient {
        ScimClient::new(base, Secret::new("t"), ClientOptions::default()).unwrap()
    }

    #[test]
    fn urls_keep_the_base_query_and_add_the_request_query() {
        let c = client("https://d.example/scim/v2/?aadOptscim062020");
        assert_eq!(c.url("Users", &[]).as_str(), "https://d.example/scim/v2/Users?aadOptscim062020");
        assert_eq!(
            c.url("Users", &[("filter", "userName eq \"a b\"")]).as_str(),
            "https://d.example/scim/v2/Users?aadOptscim062020&filter=userName+eq+%22a+b%22"
        );
        let plain = client("http://127.0.0.1:9/scim");
        assert_eq!(plain.url("/Users/x", &[]).as_str(), "http://127.0.0.1:9/scim/Users/x");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn bad_base_urls_are_refused_with_a_reason() {
        for bad in ["not a url", "ftp://x/scim", "file:///etc/passwd"] {
            let err = ScimClient::new(bad, Secret::new("t"), ClientOptions::default()).unwrap_err();
            assert!(err.contains("base_url"), "{err}");
        }
    }

    #[test]
    fn errors_are_classified_for_the_dispatcher() {
        let mut h = HeaderMap::new();
        let scim = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"email is required"}"#;
        match classify(StatusCode::BAD_REQUEST, &h, scim, "POST Users") {
            DeliveryError::Permanent { status: Some(400), message } => {
                assert_eq!(message, "POST Users → 400: email is required (scimType invalidValue)")
            }
            other => panic!("{other:?}"),
        }
        assert!(classify(StatusCode::INTERNAL_SERVER_ERROR, &h, "", "x").is_retryable());
        assert!(classify(StatusCode::UNAUTHORIZED, &h, "", "x").is_retryable());
        assert!(matches!(classify(StatusCode::NOT_FOUND, &h, "", "x"), DeliveryError::NotFound { .. }));
        assert!(matches!(classify(StatusCode::CONFLICT, &h, "", "x"), DeliveryError::Conflict { .. }));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, "", "x"),
            DeliveryError::RateLimited { retry_after: None, .. }
        ));
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &h, "", "x"),
            DeliveryError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        let long = "x".repeat(1000);
        let DeliveryError::Permanent { message, .. } = classify(StatusCode::UNPROCESSABLE_ENTITY, &h, &long, "x")
        else {
            panic!()
        };
        assert!(message.chars().count() < 320, "{message}");
    }

    #[test]
    fn a_redirect_names_where_it_points_without_any_part_of_the_token() {
        let token = "s3cret/token+with=specials";
        let c = ScimClient::new("https://d.example/scim", Secret::new(token), ClientOptions::default()).unwrap();
        // The token across the 300th character: cut before scrubbing, its first part stayed.
        let at = MAX_MESSAGE_CHARS - 5;
        for location in [
            format!("https://evil.example/{}?t={token}", "a".repeat(at - 25)),
            format!("https://evil.example/?t={}", percent_encoded(token, false)),
            format!("https://evil.example/?t={}", percent_encoded(token, true)),
        ] {
            let mut h = HeaderMap::new();
            h.insert(reqwest::header::LOCATION, HeaderValue::from_str(&location).unwrap());
            let DeliveryError::Retryable { message } =
                redirect_error(StatusCode::TEMPORARY_REDIRECT, &h, "POST Users", |t| c.scrub(t))
            else {
                panic!()
            };
            assert!(message.contains("https://evil.example/"), "{message}");
            assert!(!message.contains("s3cret") && !message.contains("s3cret%2F"), "{message}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
