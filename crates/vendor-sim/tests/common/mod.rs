//! What every test file shares: a small SCIM client over reqwest.
#![allow(dead_code, reason = "each test file uses a different part of the helper")]
#![expect(clippy::expect_used, reason = "test helpers: a request that gets no answer must fail the test loudly")]

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vendor_sim::Sim;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A SCIM client for one simulator.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(sim: &Sim) -> Self {
        Self::with_http(sim, reqwest::Client::new())
    }

    pub fn with_http(sim: &Sim, http: reqwest::Client) -> Self {
        Self { http, base: sim.base_url(), token: sim.token().to_owned() }
    }

    pub async fn try_send(&self, method: Method, path: &str, body: Option<&Value>) -> reqwest::Result<Reply> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        Ok(Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) })
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.try_send(method, path, body).await.expect("the simulator answers")
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }
}

/// A valid user with a work email.
pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": format!("{user_name}@example.com"), "type": "work", "primary": true}],
        "active": true
    })
}

/// A PatchOp body.
pub fn patch_op(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

/// Asserts a SCIM error: the status, the `scimType` (or none), and a `detail` that contains
/// `names` (the attribute or rule the error must name).
#[track_caller]
pub fn assert_error(r: &Reply, status: StatusCode, scim_type: Option<&str>, names: &str) {
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{}", r.body);
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
    assert!(detail.contains(names), "detail {detail:?} does not name {names:?}");
}

/// Asserts a `400 invalidValue` that names `names`.
#[track_caller]
pub fn assert_invalid_value(r: &Reply, names: &str) {
    assert_error(r, StatusCode::BAD_REQUEST, Some("invalidValue"), names);
}

/// A URL query value, percent-encoded (enough for filters: spaces and quotes).
pub fn encode(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20").replace('"', "%22").replace('&', "%26").replace('+', "%2B")
}

/// One change to a valid body, for tests that break one rule at a time.
pub type Change = Box<dyn Fn(&mut Value)>;
