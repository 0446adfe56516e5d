//! Hostile input against the gateway's surface and from vendors: what anyone who can reach a port,
//! or answer in a vendor's place, can make the gateway hold, send or say. RELIABILITY.md's
//! "Hostile input" section lists each attack with what these tests observed.

#![cfg(test)]

/// The unauthenticated surface (`/metrics` labels, the operations endpoints on their own address,
/// forwarding headers) and the outbound side (redirects, answer sizes, listings that never end).
mod surface {
    /// `/metrics`: labels from closed sets.
    mod metrics {
        use futures_util::StreamExt;
        use reqwest::Method;
        use scimgw_e2e::TestApp;

        /// Series in a Prometheus text exposition: its sample lines.
        fn series(text: &str) -> usize {
            text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
        }

        async fn scrape(origin: &str, client: &reqwest::Client) -> String {
            let r = client.get(format!("{origin}/metrics")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }

        /// `n` requests, without a token, each with a method and a path nobody defined.
        async fn invent(app: &TestApp, from: usize, n: usize) {
            futures_util::stream::iter(from..from + n)
                .for_each_concurrent(16, |i| async move {
                    let method = Method::from_bytes(format!("INVENTED{i}{}", "X".repeat(64)).as_bytes()).unwrap();
                    let path = if i % 2 == 0 { format!("/no/such/path/{i}") } else { "/scim/v2/Users".to_owned() };
                    let r = app.client.request(method, format!("{}{path}", app.origin)).send().await.unwrap();
                    assert!(matches!(r.status().as_u16(), 404 | 405), "{}", r.status());
                })
                .await;
        }

        /// 1,000 requests with invented methods and paths add no series to `/metrics`: the method
        /// label is a known method or `other`, the route a known route or `(unmatched)`.
        async fn invented_methods_and_paths_add_no_metric_series(app: TestApp) {
            invent(&app, 0, 20).await;
            let before = scrape(&app.origin, &app.client).await;
            invent(&app, 20, 1_000).await;
            let after = scrape(&app.origin, &app.client).await;
            eprintln!(
                "/metrics after 20 invented requests: {} series, {} bytes; after 1,020: {} series, {} bytes",
                series(&before),
                before.len(),
                series(&after),
                after.len()
            );
            assert!(!after.contains("INVENTED"), "an invented method became a label");
            assert!(!after.contains("/no/such/path"), "an invented path became a label");
            // Other tests of this binary may run in this process meanwhile and add their own few
            // series; 1,000 invented methods used to add 1,000 per metric.
            assert!(
                series(&after) < series(&before) + 50,
                "series grew from {} to {}",
                series(&before),
                series(&after)
            );
        }
        scimgw_e2e::both_backends!(invented_methods_and_paths_add_no_metric_series);
    }

    /// `admin_listen` and `/readyz`.
    mod admin {
        use scimgw_e2e::{Config, TestApp};
        use serde_json::Value;

        /// With `admin_listen`, the operations endpoints answer there and only there; the SCIM API
        /// is not served there.
        async fn operations_endpoints_move_to_admin_listen(app: TestApp) {
            let admin = app.admin_origin.clone().expect("admin_listen is set");
            for path in ["/healthz", "/readyz", "/metrics"] {
                let on_admin = app.client.get(format!("{admin}{path}")).send().await.unwrap();
                assert_eq!(on_admin.status(), 200, "{path} on admin_listen");
                let on_listen = app.client.get(format!("{}{path}", app.origin)).send().await.unwrap();
                assert_eq!(on_listen.status(), 404, "{path} on listen");
            }
            let ready: Value = app.client.get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
            assert_eq!(ready["checks"]["store"], "ok", "{ready}");
            let token = app.token("acme");
            let scim_on_admin =
                app.client.get(format!("{admin}/scim/v2/Users")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(scim_on_admin.status(), 404, "the SCIM API on admin_listen");
            assert_eq!(app.get(&token, "/Users").await.status, 200, "the SCIM API on listen");
        }
        scimgw_e2e::both_backends!(operations_endpoints_move_to_admin_listen, |c: &mut Config| {
            c.admin_listen = Some("127.0.0.1:0".into());
        });
    }

    /// `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto`.
    mod forwarding {
        use reqwest::Method;
        use scimgw_e2e::{Config, TestApp, USER_URN};
        use serde_json::json;

        const FORWARDING: [(&str, &str); 3] = [
            ("forwarded", "host=evil.example;proto=https"),
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-proto", "https"),
        ];

        /// Creates a user with the forwarding headers; returns `Location` and `meta.location`.
        async fn create_forwarded(app: &TestApp, token: &str) -> (String, String) {
            let mut req = app
                .client
                .post(app.url("/Users"))
                .bearer_auth(token)
                .header("content-type", "application/scim+json")
                .body(json!({"schemas": [USER_URN], "userName": "f@example.com"}).to_string());
            for (name, value) in FORWARDING {
                req = req.header(name, value);
            }
            let r = TestApp::read(req.send().await.unwrap()).await;
            assert_eq!(r.status, 201, "{}", r.text);
            let location = r.header("location").unwrap_or_default().to_owned();
            (location, r.body["meta"]["location"].as_str().unwrap_or_default().to_owned())
        }

        /// From a peer that is not a trusted proxy, `Forwarded` and `X-Forwarded-Host` do not place
        /// the gateway's URLs elsewhere.
        async fn forwarding_headers_from_an_untrusted_peer_are_ignored(app: TestApp) {
            let token = app.token("acme");
            let (location, meta) = create_forwarded(&app, &token).await;
            assert!(location.starts_with(&app.base_url), "Location {location}");
            assert_eq!(meta, location);
            let id = location.rsplit('/').next().unwrap_or_default();
            let mut req = app.client.get(app.url(&format!("/Users/{id}"))).bearer_auth(&token);
            for (name, value) in FORWARDING {
                req = req.header(name, value);
            }
            let r = TestApp::read(req.send().await.unwrap()).await;
            assert_eq!(r.body["meta"]["location"].as_str(), Some(location.as_str()), "{}", r.text);
            let r = app.request(Method::GET, "/ServiceProviderConfig", &FORWARDING, None).await;
            assert!(!r.text.contains("evil.example"), "{}", r.text);
        }
        scimgw_e2e::both_backends!(forwarding_headers_from_an_untrusted_peer_are_ignored);

        /// From a trusted proxy they are believed, as before.
        async fn forwarding_headers_from_a_trusted_proxy_are_believed(app: TestApp) {
            let token = app.token("acme");
            let (location, meta) = create_forwarded(&app, &token).await;
            assert!(location.starts_with("https://evil.example/scim/v2/Users/"), "Location {location}");
            assert_eq!(meta, location);
        }
        scimgw_e2e::both_backends!(forwarding_headers_from_a_trusted_proxy_are_believed, |c: &mut Config| {
            c.trusted_proxies = vec![std::net::IpAddr::from([127, 0, 0, 1])];
        });
    }
}
