//! Limits against hostile clients (issue 8): slow clients (request head and body), oversized
//! headers, and failed-authentication throttling. Body size, JSON nesting, filter length and
//! depth, PATCH operations and page size are covered in `bad_input.rs` and `protocol.rs`.

#![cfg(test)]

use std::time::{Duration, Instant};

use reqwest::Method;
use scimgw_e2e::{Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app(adjust: impl FnOnce(&mut scimgw_e2e::Config)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, adjust).await.expect("SQLite is always available")
}

/// Sends `first`, then nothing more; returns what the server answered (if anything) and when it
/// answered or closed.
async fn stall(app: &TestApp, first: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(app.origin.trim_start_matches("http://")).await.unwrap();
    stream.write_all(first).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the gateway kept a stalled connection open for 15 s");
    (String::from_utf8_lossy(&buf).into_owned(), started.elapsed())
}

#[actix_web::test]
async fn a_client_that_stalls_in_its_head_or_body_is_cut_off() {
    let app = app(|c| c.request_timeout_secs = 1).await;
    let token = app.token("acme");
    let (answer, took) = stall(&app, b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bear").await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(5), "the stalled head was held {took:?}");

    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\":"
    );
    let (answer, took) = stall(&app, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout_secs"), "{answer}");
    assert!(took < Duration::from_secs(5), "the stalled body was held {took:?}");
    // Nothing was created from half a body.
    assert_eq!(app.get(&token, "/Users").await.total(), 0);
}

#[actix_web::test]
async fn oversized_or_too_many_headers_are_refused() {
    let app = app(|_| {}).await;
    let big = format!(
        "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(140_000)
    );
    let r = app.raw(big.as_bytes()).await;
    assert_eq!(r.status, 431, "{}", r.head);
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r =
        app.raw(format!("GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(r.status, 431, "{}", r.head);
    // The server is still there.
    assert_eq!(app.client.get(format!("{}/healthz", app.origin)).send().await.unwrap().status(), 200);
}

#[actix_web::test]
async fn repeated_bad_tokens_are_answered_429_without_slowing_good_ones() {
    let app = app(|c| {
        c.auth.failures_per_minute = 6;
        c.auth.failure_burst = 3;
        // The test's requests come from a "proxy" on loopback naming the client.
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let good = app.token("acme");
    let never_used = app.token("acme");
    let bad = format!("Bearer {}", good.replace(&good[good.len() - 4..], "0000"));
    let from = |ip: &'static str, auth: String| [("x-forwarded-for", ip.to_owned()), ("authorization", auth)];
    let call = |headers: [(&'static str, String); 2]| {
        let app = &app;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.request(Method::GET, "/Users", &h, None).await
        }
    };
    // The identity provider's good token works before the attack.
    assert_eq!(call(from("198.51.100.1", format!("Bearer {good}"))).await.status, 200);
    for i in 0..3 {
        call(from("203.0.113.7", bad.clone())).await.assert_error(401, None, &format!("failure {i}"));
    }
    let paused = call(from("203.0.113.7", bad.clone())).await;
    paused.assert_error(429, None, "the failure over the burst");
    assert!(paused.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));
    assert!(paused.body["detail"].as_str().unwrap().contains("failed authentications"), "{}", paused.text);
    // While paused, the client's unknown tokens are not even looked up...
    call(from("203.0.113.7", format!("Bearer {never_used}"))).await.assert_error(429, None, "paused client");
    // ...but a token that has worked still does (a shared proxy address cannot lock out the IdP),
    // and other clients are not slowed.
    assert_eq!(call(from("203.0.113.7", format!("Bearer {good}"))).await.status, 200);
    assert_eq!(call(from("198.51.100.1", format!("Bearer {never_used}"))).await.status, 200);
    assert_eq!(call(from("198.51.100.2", bad.clone())).await.status, 401, "another client's first failure");

    // Without trusted proxies, X-Forwarded-For is not believed: rotating it does not escape.
    let direct = app_with_default_proxies().await;
    let token = direct.token("acme");
    let bad = format!("Bearer {}", token.replace(&token[token.len() - 4..], "0000"));
    let mut statuses = Vec::new();
    for i in 0..5 {
        let ip = format!("203.0.113.{i}");
        let h = [("x-forwarded-for", ip.as_str()), ("authorization", bad.as_str())];
        statuses.push(direct.request(Method::GET, "/Users", &h, None).await.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

async fn app_with_default_proxies() -> TestApp {
    app(|c| {
        c.auth.failures_per_minute = 6;
        c.auth.failure_burst = 3;
    })
    .await
}
