//! What real SCIM clients send beyond the RFC's spelling: endpoint names in any case, trailing and
//! doubled slashes (a tenant URL entered with a trailing slash), with ids still exact.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::{Method, StatusCode};
use scimgw_e2e::{GROUP_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Sends each `(method, path, body, status)` and collects every mismatch, so that one run names
/// all the spellings that fail.
async fn expect_all(app: &TestApp, token: &str, checks: &[(Method, String, Option<Value>, u16)]) {
    let mut failures = Vec::new();
    for (method, path, body, status) in checks {
        let r = app.send(method.clone(), token, path, body.as_ref()).await;
        if r.status.as_u16() != *status {
            failures.push(format!("{method} {path}: {} (want {status}): {}", r.status, r.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn every_endpoint_name_matches_in_lower_and_upper_case(app: TestApp) {
    let token = app.token("paths");
    let uid = app.create_user(&token, "case@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Case", &[]).await["id"].as_str().unwrap().to_owned();
    let search = json!({"schemas": [SEARCH_URN]});
    let mut checks: Vec<(Method, String, Option<Value>, u16)> = Vec::new();
    for (i, (users, groups, spc, schemas, types, dot_search)) in [
        ("users", "groups", "serviceproviderconfig", "schemas", "resourcetypes", ".search"),
        ("USERS", "GROUPS", "SERVICEPROVIDERCONFIG", "SCHEMAS", "RESOURCETYPES", ".SEARCH"),
        ("uSeRs", "GrOuPs", "ServiceProviderconfig", "SChemas", "Resourcetypes", ".Search"),
    ]
    .into_iter()
    .enumerate()
    {
        let user = json!({"schemas": [USER_URN], "userName": format!("case{i}@example.com")});
        let group = json!({"schemas": [GROUP_URN], "displayName": format!("Case {i}")});
        let rename = patch_op(json!([{"op": "replace", "path": "displayName", "value": format!("Renamed {i}")}]));
        checks.extend([
            (Method::GET, format!("/{users}"), None, 200),
            (Method::POST, format!("/{users}"), Some(user), 201),
            (Method::GET, format!("/{users}/{uid}"), None, 200),
            (Method::PATCH, format!("/{users}/{uid}"), Some(rename.clone()), 200),
            (
                Method::PUT,
                format!("/{users}/{uid}"),
                Some(json!({"schemas": [USER_URN], "userName": "case@example.com"})),
                200,
            ),
            (Method::POST, format!("/{users}/{dot_search}"), Some(search.clone()), 200),
            (Method::GET, format!("/{groups}"), None, 200),
            (Method::POST, format!("/{groups}"), Some(group), 201),
            (Method::GET, format!("/{groups}/{gid}"), None, 200),
            (Method::PATCH, format!("/{groups}/{gid}"), Some(rename), 204),
            (Method::POST, format!("/{groups}/{dot_search}"), Some(search.clone()), 200),
            (Method::GET, format!("/{spc}"), None, 200),
            (Method::GET, format!("/{schemas}"), None, 200),
            (Method::GET, format!("/{schemas}/{USER_URN}"), None, 200),
            (Method::GET, format!("/{types}"), None, 200),
            (Method::GET, format!("/{types}/User"), None, 200),
            // Wrong methods on the lower-cased names still get 405, not 404.
            (Method::DELETE, format!("/{users}"), None, 405),
            (Method::GET, format!("/{users}/{dot_search}"), None, 405),
            (Method::POST, format!("/{spc}"), Some(json!({})), 405),
        ]);
    }
    checks.extend([
        (Method::DELETE, format!("/users/{uid}"), None, 204),
        (Method::DELETE, format!("/GROUPS/{gid}"), None, 204),
    ]);
    expect_all(&app, &token, &checks).await;
}
both_backends!(every_endpoint_name_matches_in_lower_and_upper_case);

async fn a_trailing_slash_is_accepted_on_lists_resources_searches_and_discovery(app: TestApp) {
    let token = app.token("paths");
    let uid = app.create_user(&token, "slash@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Slash", &[]).await["id"].as_str().unwrap().to_owned();
    let search = json!({"schemas": [SEARCH_URN]});
    let flag = "?aadOptscim062020";
    let checks = vec![
        (Method::GET, "/Users/".to_owned(), None, 200),
        (Method::GET, format!("/Users/{flag}"), None, 200),
        (
            Method::POST,
            "/Users/".to_owned(),
            Some(json!({"schemas": [USER_URN], "userName": "slash2@example.com"})),
            201,
        ),
        (Method::GET, format!("/Users/{uid}/"), None, 200),
        (Method::GET, format!("/Users/{uid}/{flag}"), None, 200),
        (
            Method::PATCH,
            format!("/Users/{uid}/"),
            Some(patch_op(json!([{"op": "add", "path": "title", "value": "x"}]))),
            200,
        ),
        (Method::POST, "/Users/.search/".to_owned(), Some(search.clone()), 200),
        (Method::GET, "/Groups/".to_owned(), None, 200),
        (Method::GET, format!("/Groups/{gid}/"), None, 200),
        (Method::POST, "/Groups/.search/".to_owned(), Some(search), 200),
        (Method::GET, "/ServiceProviderConfig/".to_owned(), None, 200),
        (Method::GET, format!("/ServiceProviderConfig/{flag}"), None, 200),
        (Method::GET, "/Schemas/".to_owned(), None, 200),
        (Method::GET, format!("/Schemas/{USER_URN}/"), None, 200),
        (Method::GET, "/ResourceTypes/".to_owned(), None, 200),
        (Method::GET, "/ResourceTypes/Group/".to_owned(), None, 200),
        (Method::DELETE, format!("/Groups/{gid}/"), None, 204),
    ];
    expect_all(&app, &token, &checks).await;
    let r = app.get(&token, &format!("/Users/{uid}/")).await;
    assert_eq!(r.id(), uid, "the trailing slash is not part of the id");
}
both_backends!(a_trailing_slash_is_accepted_on_lists_resources_searches_and_discovery);

async fn doubled_slashes_collapse_as_when_the_tenant_url_ends_in_a_slash(app: TestApp) {
    let token = app.token("paths");
    // Entra appends `/Users` to the tenant URL: `…/scim/v2/` + `/Users` = `…/scim/v2//Users`.
    let r = app
        .post(&token, "//Users?aadOptscim062020", &json!({"schemas": [USER_URN], "userName": "double@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let uid = r.id();
    let filter = enc("userName eq \"double@example.com\"");
    let checks = vec![
        (Method::GET, format!("//Users?aadOptscim062020&filter={filter}"), None, 200),
        (Method::GET, format!("//Users//{uid}"), None, 200),
        (Method::GET, format!("///users///{uid}//"), None, 200),
        (Method::GET, "//ServiceProviderConfig".to_owned(), None, 200),
        (Method::POST, "//Users//.search".to_owned(), Some(json!({"schemas": [SEARCH_URN]})), 200),
    ];
    expect_all(&app, &token, &checks).await;
    let r = app.get(&token, &format!("//Users?aadOptscim062020&filter={filter}")).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    // The Location the gateway answers with is canonical, whatever path the client used.
    let location = app.get(&token, &format!("//users//{uid}/")).await.body["meta"]["location"].clone();
    assert_eq!(location, json!(app.url(&format!("/Users/{uid}"))));
}
both_backends!(doubled_slashes_collapse_as_when_the_tenant_url_ends_in_a_slash);

async fn ids_are_exact_so_an_id_in_another_case_is_not_found(app: TestApp) {
    let token = app.token("paths");
    let uid = app.create_user(&token, "exact@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Exact", &[]).await["id"].as_str().unwrap().to_owned();
    assert_ne!(uid, uid.to_uppercase(), "UUIDs carry letters");
    for path in [
        format!("/Users/{}", uid.to_uppercase()),
        format!("/users/{}/", uid.to_uppercase()),
        format!("/Groups/{}", gid.to_uppercase()),
        format!("/GROUPS/{}/", gid.to_uppercase()),
    ] {
        app.get(&token, &path).await.assert_error(404, None, &path);
    }
    // Nor is the id rewritten on a write.
    let path = format!("/USERS/{}", uid.to_uppercase());
    app.delete(&token, &path).await.assert_error(404, None, &format!("DELETE {path}"));
    assert_eq!(app.get(&token, &format!("/users/{uid}")).await.status, StatusCode::OK);
}
both_backends!(ids_are_exact_so_an_id_in_another_case_is_not_found);

async fn the_query_string_is_kept_when_the_path_is_rewritten(app: TestApp) {
    let token = app.token("paths");
    for name in ["q1@example.com", "q2@example.com", "q3@example.com"] {
        app.create_user(&token, name).await;
    }
    let filter = enc("userName eq \"q2@example.com\"");
    for path in [format!("/users/?filter={filter}"), format!("/USERS?filter={filter}&aadOptscim062020")] {
        let r = app.get(&token, &path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.total(), 1, "{path}: {}", r.text);
        assert_eq!(r.resources()[0]["userName"], "q2@example.com", "{path}");
    }
    let r = app.get(&token, "/users/?startIndex=2&count=1&attributes=userName").await;
    assert_eq!((r.total(), r.body["startIndex"].as_u64(), r.resources().len()), (3, Some(2), 1), "{}", r.text);
    assert_eq!(r.resources()[0]["userName"], "q2@example.com");
    assert!(r.resources()[0].get("active").is_none(), "attributes applied: {}", r.text);
}
both_backends!(the_query_string_is_kept_when_the_path_is_rewritten);

async fn unknown_paths_and_wrong_methods_still_get_scim_errors(app: TestApp) {
    let token = app.token("paths");
    let uid = app.create_user(&token, "errors@example.com").await["id"].as_str().unwrap().to_owned();
    for path in
        ["/nope/".to_owned(), "/Users2".to_owned(), format!("/users/{uid}/extra/"), "/".to_owned(), String::new()]
    {
        app.get(&token, &path).await.assert_error(404, None, &format!("GET {path}"));
    }
    for (method, path, allow) in [
        (Method::DELETE, "/users/", "GET, POST"),
        (Method::PUT, "//Groups", "GET, POST"),
        (Method::GET, "/users/.SEARCH/", "POST"),
        (Method::POST, "/schemas/", "GET"),
    ] {
        let r = app.send(method.clone(), &token, path, Some(&json!({}))).await;
        r.assert_error(405, None, &format!("{method} {path}"));
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // The operations endpoints, outside the base path, are untouched.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = app.client.get(format!("{}{path}", app.origin)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}
both_backends!(unknown_paths_and_wrong_methods_still_get_scim_errors);

async fn metrics_count_a_request_under_its_canonical_route(app: TestApp) {
    // A tenant of its own: the metrics registry is the process's, shared with the other tests.
    let tenant = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let token = app.token(&tenant);
    assert_eq!(app.get(&token, "//users/?count=1").await.status, StatusCode::OK);
    let text = app.client.get(format!("{}/metrics", app.origin)).send().await.unwrap().text().await.unwrap();
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("scimgw_http_requests_total{") && l.contains(&format!("tenant=\"{tenant}\"")))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].contains("route=\"/scim/v2/Users\""), "{}", ours[0]);
}
both_backends!(metrics_count_a_request_under_its_canonical_route);
