//! `/healthz` and `/readyz` over HTTP, including "not ready" when PostgreSQL goes away: the
//! gateway reaches PostgreSQL through a loopback TCP proxy that the test cuts.

#![cfg(test)]

use std::sync::Arc;
use std::time::Duration;

use scimgw_e2e::TestApp;
use scimgw_gateway::Targets;
use scimgw_store::testing::{TestDb, postgres_url};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

async fn healthz_and_readyz_answer_without_a_token(app: TestApp) {
    let health = app.client.get(format!("{}/healthz", app.origin)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["migrations"], "current");
    assert!(body["checks"].get("dispatcher").is_none(), "no dispatcher in this process, so none checked");
}
scimgw_e2e::both_backends!(healthz_and_readyz_answer_without_a_token);

/// A TCP proxy to `upstream` on a free loopback port, on its own thread and runtime (the test's
/// runtime blocks while the store opens). Sending on the returned channel cuts every connection
/// and stops accepting.
fn proxy(upstream: String) -> (u16, std::sync::mpsc::Sender<()>) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let (cut, cut_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.spawn(async move {
            let listener = TcpListener::from_std(std_listener).unwrap();
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                conns.spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        let _ = cut_rx.recv();
        // Dropping the runtime drops the listener and every proxied connection.
        rt.shutdown_background();
    });
    (port, cut)
}

#[actix_web::test]
async fn readyz_is_503_when_postgresql_is_unreachable() {
    let Some(base) = postgres_url() else {
        eprintln!("SKIPPED (set SCIMGW_TEST_DATABASE_URL): readyz_is_503_when_postgresql_is_unreachable");
        return;
    };
    let (port, cut) = proxy("127.0.0.1:5432".into());
    let via_proxy = base.replacen("127.0.0.1:5432", &format!("127.0.0.1:{port}"), 1);
    assert_ne!(via_proxy, base, "the test expects PostgreSQL at 127.0.0.1:5432");
    let db = TestDb::postgres_with(|c| {
        c.url = c.url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{port}"), 1);
        c.connect_timeout_secs = 1;
    })
    .unwrap();
    let app = TestApp::spawn_on(db, |_| {}, Arc::new(Targets::default()), Arc::new(tokio::sync::Notify::new())).await;
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready while PostgreSQL answers");

    cut.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ready = app.client.get(format!("{}/readyz", app.origin)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_ne!(body["checks"]["store"], "ok", "{body}");
    // The process is still alive: liveness and readiness differ.
    assert_eq!(app.client.get(format!("{}/healthz", app.origin)).send().await.unwrap().status(), 200);
}
