//! The request log: every request the simulated app received, in arrival order, with the answer
//! it got. Tests assert on it instead of trusting what the client says it sent.

use std::time::{Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::faults::InjectedFault;

/// One request as the app received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Arrival order, from 1; not reset by [`crate::Sim::clear_requests`].
    pub seq: u64,
    /// `GET`, `POST`, …
    pub method: String,
    /// The full path, e.g. `/scim/v2/Users/abc`.
    pub path: String,
    /// The raw query string, without `?` (`filter=…`, `aadOptscim062020`).
    pub query: String,
    /// The headers, names in lower case, in arrival order. `Authorization` is never recorded.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8); empty when there was none.
    pub body: String,
    /// Whether the bearer token was the right one.
    pub authenticated: bool,
    /// When it arrived, for measuring intervals (backoff, Retry-After).
    pub at: Instant,
    /// When it arrived, by the wall clock.
    pub time: SystemTime,
    /// The status answered; `None` while the request is still held, or when the client went away
    /// before an answer (a hung request the client timed out on).
    pub status: Option<u16>,
    /// The fault that shaped the answer, if any.
    pub fault: Option<InjectedFault>,
}

impl RecordedRequest {
    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A decoded query parameter (`filter`, `startIndex`); a bare flag such as `aadOptscim062020`
    /// gives `Some("")`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&self.query).ok()?;
        pairs.into_iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The JSON the admin API shows: times as milliseconds since the simulator started and as
    /// RFC 3339.
    pub(crate) fn to_json(&self, started: Instant) -> Value {
        let headers: serde_json::Map<String, Value> =
            self.headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        json!({
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": self.json().unwrap_or_else(|| Value::String(self.body.clone())),
            "authenticated": self.authenticated,
            "elapsed_ms": self.at.saturating_duration_since(started).as_secs_f64() * 1000.0,
            "time": rfc3339(self.time),
            "time_us": self
                .time
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            "status": self.status,
            "fault": self.fault,
        })
    }
}

/// `2025-01-02T03:04:05.678Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Millis, true)
}
