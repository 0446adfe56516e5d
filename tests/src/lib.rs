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
use scimgw_gateway::{AppState, Config, Targets, issue_key};
use scimgw_scim::schema::Registry;
pub use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::Value;

/// A running gateway with its own store.
pub struct TestApp {
    /// `http://127.0.0.1:<port>/scim/v2`
    pub base_url: String,
    /// `http://127.0.0.1:<port>`
    pub origin: String,
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
        let mut config = Config { listen: "127.0.0.1:0".into(), workers: Some(2), ..Config::default() };
        config.store = db.config().clone();
        adjust(&mut config);
        let base_path = config.base_path().to_owned();
        let state =
            web::Data::new(AppState::new(config, db.store().clone(), Registry::default()).with_targets(targets, wake));
        let (server, addrs) = scimgw_gateway::bind(state).expect("the gateway binds a loopback port");
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let origin = format!("http://{}", addrs[0]);
        Some(TestApp {
            base_url: format!("{origin}{base_path}"),
            origin,
            client: reqwest::Client::builder().build().expect("a reqwest client"),
            db,
            handle,
        })
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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping is asynchronous; the runtime ends with the test anyway.
        drop(actix_web::rt::spawn(async move { handle.stop(false).await }));
    }
}

/// `both_backends!(name, body)` where `body` is an `async fn(TestApp)`: defines the module `name`
/// with the tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let app = $crate::TestApp::spawn($crate::Backend::Sqlite).await.expect("SQLite is always available");
                super::$name(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres).await else { return };
                super::$name(app).await;
            }
        }
    };
}
