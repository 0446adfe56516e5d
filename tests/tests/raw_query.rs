//! Request targets no HTTP client library sends, written on a raw socket: what happens to raw
//! `"` and spaces in the query string (Microsoft's SCIM Validator has been seen sending both).
//!
//! # What is pinned here, and why it cannot be fixed in the gateway
//!
//! actix-web parses the request line with `httparse` and then builds an `http::Uri` (actix-http
//! 3.x uses `http` 0.2; `http` 1.x has the same rule), all before any application code, any
//! middleware or any `default_service` runs:
//!
//! - A raw **space** ends the request target: `GET /Users?filter=userName eq "x" HTTP/1.1` has
//!   five space-separated parts, and `httparse` rejects the request line.
//! - A raw **`"`** (also `<`, `>` and bytes ≥ 0x80) passes `httparse` but `http`'s query parser
//!   allows only `0x21 / 0x24-0x3B / 0x3D / 0x3F-0x7E` (the WHATWG query set minus `"`, `<`, `>`),
//!   so `Uri::try_from` fails. (In the *path*, `"`, `{` and `}` are tolerated.)
//!
//! Either way actix-http answers a bare `400 Bad Request` with `content-length: 0` — no SCIM
//! Error body, no `scimType` — and closes the connection. The gateway cannot see, log or rewrite
//! such a request; accepting it would mean replacing actix's HTTP/1 parser or putting a
//! rewriting TCP proxy in front of it. Percent-encoded targets (`%22`, `%20` or `+`), which
//! every real Entra ID and Okta request uses, work; `[`, `]`, `{`, `}` may be sent raw.
//!
//! If these tests start failing because a dependency update made the parser lenient, the
//! gateway then *accepts* raw quotes: update the pins and the README.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use scimgw_e2e::{RawReply, TestApp, both_backends};
use serde_json::Value;

/// A GET of `target` (written as is) with `token`, on its own connection.
async fn raw_get(app: &TestApp, token: &str, target: &str) -> RawReply {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nAccept: application/scim+json\r\nConnection: close\r\n\r\n"
    );
    app.raw(req.as_bytes()).await
}

/// The answer came from the gateway: a JSON body with SCIM's media type.
fn from_the_gateway(r: &RawReply) -> Value {
    assert!(r.head.to_ascii_lowercase().contains("content-type: application/scim+json"), "{}", r.head);
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("a JSON body: {}", r.body))
}

/// The answer came from actix-http's parser: a bare 400 with no body.
#[track_caller]
fn rejected_by_the_http_parser(r: &RawReply, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.head);
    assert!(r.body.is_empty(), "{what}: the parser's 400 has no body: {}", r.body);
    let head = r.head.to_ascii_lowercase();
    assert!(head.contains("content-length: 0"), "{what}: {}", r.head);
    assert!(!head.contains("content-type"), "{what}: {}", r.head);
}

async fn percent_encoded_quotes_and_spaces_work(app: TestApp) {
    let token = app.token("validator");
    let id = app.create_user(&token, "x@example.com").await["id"].as_str().unwrap().to_owned();
    for target in [
        "/scim/v2/Users?filter=userName%20eq%20%22x@example.com%22",
        "/scim/v2/Users?filter=userName+eq+%22x%40example.com%22",
        "/scim/v2/Users?filter=userName%20eq%20%22X@EXAMPLE.COM%22&aadOptscim062020",
        "/scim/v2/Users?aadOptscim062020&filter=userName+eq+%22x@example.com%22&startIndex=1&count=100",
        // Brackets and braces may come raw: the parser allows them in a query.
        "/scim/v2/Users?filter=emails[value%20pr]%20or%20userName%20eq%20%22x@example.com%22",
    ] {
        let r = raw_get(&app, &token, target).await;
        assert_eq!(r.status, 200, "{target}: {}\n{}", r.head, r.body);
        let body = from_the_gateway(&r);
        assert_eq!(body["totalResults"], 1, "{target}: {}", r.body);
        assert_eq!(body["Resources"][0]["id"], id.as_str());
    }
    // A raw brace reaches the gateway, which answers with a SCIM error of its own.
    let r = raw_get(&app, &token, "/scim/v2/Users?filter={x}").await;
    assert_eq!(r.status, 400);
    assert_eq!(from_the_gateway(&r)["scimType"], "invalidFilter");
}
both_backends!(percent_encoded_quotes_and_spaces_work);

async fn raw_quotes_in_the_query_are_refused_before_the_gateway_sees_them(app: TestApp) {
    let token = app.token("validator");
    app.create_user(&token, "x@example.com").await;
    for target in [
        "/scim/v2/Users?filter=userName%20eq%20\"x@example.com\"",
        "/scim/v2/Users?filter=userName+eq+\"x@example.com\"",
        "/scim/v2/Groups?filter=displayName%20eq%20\"Sales\"&excludedAttributes=members",
        "/scim/v2/Users?filter=\"",
        // `<` and `>` fall under the same rule.
        "/scim/v2/Users?filter=<x>",
    ] {
        let r = raw_get(&app, &token, target).await;
        rejected_by_the_http_parser(&r, target);
    }
    // Even without credentials: the request never gets as far as authentication.
    let r = app
        .raw(b"GET /scim/v2/Users?filter=userName%20eq%20\"x\" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .await;
    rejected_by_the_http_parser(&r, "no credentials");
}
both_backends!(raw_quotes_in_the_query_are_refused_before_the_gateway_sees_them);

async fn raw_spaces_in_the_query_are_refused_before_the_gateway_sees_them(app: TestApp) {
    let token = app.token("validator");
    for target in [
        "/scim/v2/Users?filter=userName eq \"x@example.com\"",
        "/scim/v2/Users?filter=userName eq %22x@example.com%22",
        "/scim/v2/Users?filter=active eq true",
    ] {
        let r = raw_get(&app, &token, target).await;
        rejected_by_the_http_parser(&r, target);
    }
}
both_backends!(raw_spaces_in_the_query_are_refused_before_the_gateway_sees_them);

async fn a_raw_quote_in_the_path_reaches_the_gateway(app: TestApp) {
    // The path tolerates `"` (http's parity rule with httparse): an ordinary SCIM 404.
    let token = app.token("validator");
    let r = raw_get(&app, &token, "/scim/v2/Users/\"abc\"").await;
    assert_eq!(r.status, 404, "{}", r.head);
    assert_eq!(from_the_gateway(&r)["status"], "404");
}
both_backends!(a_raw_quote_in_the_path_reaches_the_gateway);

async fn the_gateway_keeps_serving_after_refused_requests(app: TestApp) {
    let token = app.token("validator");
    for _ in 0..20 {
        let r = raw_get(&app, &token, "/scim/v2/Users?filter=userName eq \"x\"").await;
        assert_eq!(r.status, 400);
    }
    let r = app.get(&token, "/Users?filter=userName%20eq%20%22x%22").await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.text);
}
both_backends!(the_gateway_keeps_serving_after_refused_requests);
