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
}
