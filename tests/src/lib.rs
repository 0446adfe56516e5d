//! The end-to-end test harness: [`TestApp::spawn`] starts a real gateway on a real store (a
//! temporary SQLite file, or a fresh PostgreSQL schema when `SCIMGW_TEST_DATABASE_URL` is set)
//! on a free loopback port, and the tests speak HTTP to it.
//!
//! Write a test once as `async fn name(app: TestApp)` and let [`both_backends!`] make
//! `name::sqlite` and `name::postgres` of it; the PostgreSQL one prints a loud `SKIPPED` line and
//! passes when PostgreSQL is not configured.
#![allow(clippy::expect_used, reason = "a test harness: a failed setup must stop the test loudly")]

pub mod delivery;

use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::web;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use scimgw_delivery::Targets;
pub use scimgw_gateway::Config;
use scimgw_gateway::{AppState, issue_key};
pub use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;

/// A running gateway with its own store.
pub struct TestApp {
    /// `http://127.0.0.1:<port>/scim/v2`
    pub base_url: String,
    /// `http://127.0.0.1:<port>`
    pub origin: String,
    /// `http://127.0.0.1:<port>` of the operations endpoints when `admin_listen` is set.
    pub admin_origin: Option<String>,
    /// A client for the tests.
    pub client: reqwest::Client,
    db: TestDb,
    handle: ServerHandle,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `scimType` of a SCIM error body.
    pub fn scim_type(&self) -> Option<&str> {
        self.body.get("scimType").and_then(Value::as_str)
    }

    /// `Resources` of a ListResponse (empty when there is none).
    pub fn resources(&self) -> &[Value] {
        self.body.get("Resources").and_then(Value::as_array).map_or(&[], Vec::as_slice)
    }

    /// `totalResults` of a ListResponse.
    pub fn total(&self) -> u64 {
        self.body.get("totalResults").and_then(Value::as_u64).expect("a ListResponse has totalResults")
    }

    /// `id` of a resource body.
    pub fn id(&self) -> String {
        self.body.get("id").and_then(Value::as_str).expect("the body has an id").to_owned()
    }

    /// Panics unless this is a SCIM Error with `status` and `scim_type` (`None`: no `scimType`).
    /// `what` says which case failed.
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>, what: &str) {
        assert_eq!(self.status.as_u16(), status, "{what}: status; body: {}", self.text);
        assert!(
            self.body["schemas"].as_array().is_some_and(|s| s.iter().any(|u| u == ERROR_URN)),
            "{what}: not a SCIM Error: {}",
            self.text
        );
        assert_eq!(self.body["status"], Value::String(status.to_string()), "{what}: status is a string");
        assert_eq!(self.scim_type(), scim_type, "{what}: scimType; body: {}", self.text);
    }
}

/// URN of the SCIM Error message.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// URN of the PatchOp message.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// URN of the ListResponse message.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// URN of the core User schema.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// URN of the core Group schema.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// URN of the enterprise User extension.
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Percent-encodes a query-string value: everything but RFC 3986's unreserved characters.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A PatchOp body with `operations`.
pub fn patch_op(operations: Value) -> Value {
    serde_json::json!({"schemas": [PATCH_URN], "Operations": operations})
}

/// A response read off a raw socket: the status line's code, the header block and the body, as
/// bytes arrived.
#[derive(Debug)]
pub struct RawReply {
    /// The status code, 0 when the connection closed without a status line.
    pub status: u16,
    /// The status line and headers, as text.
    pub head: String,
    /// Whatever followed the blank line.
    pub body: String,
}

impl TestApp {
    /// Starts a gateway on `backend`; `None` when that backend is not configured here.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// As [`TestApp::spawn`], with the configuration adjusted first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let wake = Arc::new(tokio::sync::Notify::new());
        Self::spawn_with_targets(backend, adjust, Arc::new(Targets::default()), wake).await
    }

    /// As [`TestApp::spawn_with`], with these targets (empty until the caller fills them) and a
    /// dispatcher's wake-up signal.
    pub async fn spawn_with_targets(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
        targets: Arc<Targets>,
        wake: Arc<tokio::sync::Notify>,
    ) -> Option<TestApp> {
        let db = TestDb::on(backend)?;
        Some(Self::spawn_on(db, adjust, targets, wake).await)
    }

    /// A gateway on this test database (for tests that shape the store's connection, e.g.
    /// through a proxy they can cut).
    pub async fn spawn_on(
        db: TestDb,
        adjust: impl FnOnce(&mut Config),
        targets: Arc<Targets>,
        wake: Arc<tokio::sync::Notify>,
    ) -> TestApp {
        let mut config = Config { listen: "127.0.0.1:0".into(), workers: Some(2), ..Config::default() };
        config.store = db.config().clone();
        adjust(&mut config);
        let base_path = config.base_path().to_owned();
        let state = web::Data::new(
            AppState::new(config, db.store().clone(), scimgw_delivery::schema_registry()).with_targets(targets, wake),
        );
        let bound = scimgw_gateway::bind(state).expect("the gateway binds a loopback port");
        let handle = bound.server.handle();
        actix_web::rt::spawn(bound.server);
        let origin = format!("http://{}", bound.addrs[0]);
        let admin_origin = bound.admin.map(|(admin, addrs)| {
            // Stopped with the runtime at the end of the test.
            actix_web::rt::spawn(admin);
            format!("http://{}", addrs[0])
        });
        TestApp {
            base_url: format!("{origin}{base_path}"),
            origin,
            admin_origin,
            client: reqwest::Client::builder().build().expect("a reqwest client"),
            db,
            handle,
        }
    }

    /// The store behind the gateway.
    pub fn store(&self) -> &scimgw_store::Store {
        self.db.store()
    }

    /// A fresh token for `tenant`, creating the tenant when it does not exist.
    pub fn token(&self, tenant: &str) -> String {
        let store = self.store();
        let t = match store.tenant_by_name(tenant).expect("reading tenants") {
            Some(t) => t,
            None => store.create_tenant(tenant).expect("creating a tenant"),
        };
        issue_key(store, &t, Some("test")).expect("issuing a key").token
    }

    /// `base_url` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request with a bearer token and an optional JSON body.
    pub async fn send(&self, method: Method, token: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        Self::read(req.send().await.expect("the request reaches the gateway")).await
    }

    /// Reads a response whole.
    pub async fn read(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("the body is readable");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body, text }
    }

    /// GET `path`.
    pub async fn get(&self, token: &str, path: &str) -> Reply {
        self.send(Method::GET, token, path, None).await
    }

    /// POST `path` with `body`.
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, token, path, Some(body)).await
    }

    /// PUT `path` with `body`.
    pub async fn put(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, token, path, Some(body)).await
    }

    /// PATCH `path` with `body`.
    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, token, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, token: &str, path: &str) -> Reply {
        self.send(Method::DELETE, token, path, None).await
    }

    /// Any request: `headers` as given (no bearer token unless among them), `body` as raw text.
    pub async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        Self::read(req.send().await.expect("the request reaches the gateway")).await
    }

    /// Writes `request` as is on a fresh TCP connection and reads the answer until the server
    /// closes (send `Connection: close`). For what no HTTP client library will send.
    pub async fn raw(&self, request: &[u8]) -> RawReply {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.origin.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connecting to the gateway");
        stream.write_all(request).await.expect("writing the request");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the gateway neither answered nor closed the connection within 10 s");
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        RawReply { status, head: head.to_owned(), body: body.to_owned() }
    }

    /// Creates a user with `user_name` (and nothing else required); returns the created body.
    pub async fn create_user(&self, token: &str, user_name: &str) -> Value {
        let r = self
            .post(token, "/Users", &serde_json::json!({"schemas": [USER_URN], "userName": user_name, "active": true}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "creating user: {}", r.text);
        r.body
    }

    /// Creates a group named `display_name` with the given member ids; returns the created body.
    pub async fn create_group(&self, token: &str, display_name: &str, members: &[&str]) -> Value {
        let members: Vec<Value> = members.iter().map(|m| serde_json::json!({"value": m})).collect();
        let r = self
            .post(
                token,
                "/Groups",
                &serde_json::json!({"schemas": [GROUP_URN], "displayName": display_name, "members": members}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "creating group: {}", r.text);
        r.body
    }

    /// A group member as a GET shows it (RFC 7643 §4.2): `value`, `$ref` (where it lives on this
    /// gateway), `type` (`User` or `Group`) and `display`.
    pub fn member(&self, r#type: &str, id: &str, display: &str) -> Value {
        let endpoint = if r#type == "Group" { "Groups" } else { "Users" };
        serde_json::json!({"value": id, "$ref": self.url(&format!("/{endpoint}/{id}")), "type": r#type, "display": display})
    }

    /// The member ids of a group, sorted, as a GET returns them.
    pub async fn member_ids(&self, token: &str, group_id: &str) -> Vec<String> {
        let r = self.get(token, &format!("/Groups/{group_id}")).await;
        assert_eq!(r.status, StatusCode::OK, "reading group: {}", r.text);
        let mut ids: Vec<String> = r.body["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["value"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping is asynchronous; the runtime ends with the test anyway.
        drop(actix_web::rt::spawn(async move { handle.stop(false).await }));
    }
}

/// `both_backends!(name)` where `name` is an `async fn(TestApp)`: defines the module `name`
/// with the tests `sqlite` and `postgres`. `both_backends!(name, adjust)` spawns the gateway
/// with its configuration adjusted by `adjust: fn(&mut Config)` (see [`TestApp::spawn_with`]).
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        $crate::both_backends!($name, |_: &mut $crate::Config| {});
    };
    ($name:ident, $adjust:expr) => {
        mod $name {
            // `$adjust` is written in the caller's module and may name its items.
            #[allow(unused_imports, reason = "used only when the adjustment names the caller's items")]
            use super::*;

            #[actix_web::test]
            async fn sqlite() {
                let app = $crate::TestApp::spawn_with($crate::Backend::Sqlite, $adjust)
                    .await
                    .expect("SQLite is always available");
                super::$name(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let Some(app) = $crate::TestApp::spawn_with($crate::Backend::Postgres, $adjust).await else { return };
                super::$name(app).await;
            }
        }
    };
}
