//! What real SCIM clients send: endpoint names in any case, trailing and doubled slashes (a tenant
//! URL entered with a trailing slash), with ids still exact; and the search at the root over users
//! and groups (RFC 7644 §3.4.3).
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

/// A directory of 3 users and 2 groups in tenant `root` (created in this order: users, then
/// groups), and the same names in tenant `elsewhere`, which must never show up.
struct Directory {
    token: String,
    users: Vec<String>,
    groups: Vec<String>,
}

async fn directory(app: &TestApp) -> Directory {
    let token = app.token("root");
    let mut users = Vec::new();
    for (name, display) in [("u1@example.com", "Delta"), ("u2@example.com", "alpha"), ("u3@example.com", "Charlie")] {
        let body = json!({"schemas": [USER_URN], "userName": name, "displayName": display});
        let r = app.post(&token, "/Users", &body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        users.push(r.id());
    }
    let mut groups = Vec::new();
    for (name, members) in [("bravo", vec![users[0].as_str()]), ("Echo", vec![])] {
        groups.push(app.create_group(&token, name, &members).await["id"].as_str().unwrap().to_owned());
    }
    let other = app.token("elsewhere");
    for (name, display) in [("u1@example.com", "Delta"), ("x@example.com", "alpha")] {
        let body = json!({"schemas": [USER_URN], "userName": name, "displayName": display});
        assert_eq!(app.post(&other, "/Users", &body).await.status, StatusCode::CREATED);
    }
    app.create_group(&other, "bravo", &[]).await;
    Directory { token, users, groups }
}

/// POST `/.search` with `body`; the answer must be a 200 ListResponse.
async fn root_search(app: &TestApp, token: &str, body: Value) -> scimgw_e2e::Reply {
    let r = app.post(token, "/.search", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.text);
    assert_eq!(r.body["schemas"], json!([scimgw_e2e::LIST_URN]), "{}", r.text);
    r
}

fn ids(r: &scimgw_e2e::Reply) -> Vec<String> {
    r.resources().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

async fn a_search_at_the_root_lists_users_then_groups_each_with_its_resource_type(app: TestApp) {
    let d = directory(&app).await;
    let r = root_search(&app, &d.token, json!({"schemas": [SEARCH_URN]})).await;
    assert_eq!(r.total(), 5, "{}", r.text);
    assert_eq!(ids(&r), [d.users.clone(), d.groups.clone()].concat(), "users in creation order, then groups");
    for (v, kind) in r.resources().iter().zip(["User", "User", "User", "Group", "Group"]) {
        assert_eq!(v["meta"]["resourceType"], kind, "{v}");
        let id = v["id"].as_str().unwrap();
        assert_eq!(v["meta"]["location"], json!(app.url(&format!("/{kind}s/{id}"))), "{v}");
        let urn = if kind == "User" { USER_URN } else { GROUP_URN };
        assert_eq!(v["schemas"], json!([urn]), "{v}");
    }
    assert_eq!((r.body["startIndex"].as_u64(), r.body["itemsPerPage"].as_u64()), (Some(1), Some(5)));
    // The endpoint name in any case, with a trailing slash or doubled slashes, as every other.
    for path in ["/.SEARCH", "/.search/", "//.search"] {
        let r = app.post(&d.token, path, &json!({})).await;
        assert_eq!((r.status, r.total()), (StatusCode::OK, 5), "{path}: {}", r.text);
    }
}
both_backends!(a_search_at_the_root_lists_users_then_groups_each_with_its_resource_type);

async fn root_search_pages_across_the_boundary_between_users_and_groups(app: TestApp) {
    let d = directory(&app).await;
    let (u, g) = (&d.users, &d.groups);
    for (start, count, want) in [
        (3, 2, vec![&u[2], &g[0]]),
        (1, 2, vec![&u[0], &u[1]]),
        (4, 1, vec![&g[0]]),
        (2, 3, vec![&u[1], &u[2], &g[0]]),
        (5, 10, vec![&g[1]]),
        (6, 10, vec![]),
        (1000, 10, vec![]),
        (3, 0, vec![]),
    ] {
        let r = root_search(&app, &d.token, json!({"startIndex": start, "count": count})).await;
        assert_eq!(r.total(), 5, "startIndex={start} count={count}: totalResults is exact");
        assert_eq!(ids(&r), want.into_iter().cloned().collect::<Vec<_>>(), "startIndex={start} count={count}");
        assert_eq!(r.body["startIndex"].as_u64(), Some(start), "startIndex={start} count={count}");
    }
}
both_backends!(root_search_pages_across_the_boundary_between_users_and_groups);

async fn root_search_filters_both_kinds_an_attribute_a_type_lacks_being_absent(app: TestApp) {
    let d = directory(&app).await;
    let (u, g) = (&d.users, &d.groups);
    for (filter, want) in [
        // Both types have displayName.
        (r#"displayName co "h""#, vec![&u[1], &u[2], &g[1]]),
        (r#"displayName eq "BRAVO""#, vec![&g[0]]),
        (r#"id eq "{g0}""#, vec![&g[0]]),
        // Only users have userName: no group matches.
        (r#"userName eq "u1@example.com""#, vec![&u[0]]),
        ("userName pr", vec![&u[0], &u[1], &u[2]]),
        // Only groups have members.
        ("members pr", vec![&g[0]]),
        (r#"members[value eq "{u0}"]"#, vec![&g[0]]),
        // RFC 7644 §3.4.2.1: meta.resourceType narrows a root search to types.
        (r#"meta.resourceType eq "Group""#, vec![&g[0], &g[1]]),
        (r#"meta.resourceType eq "User" and displayName sw "a""#, vec![&u[1]]),
        (r#"not (meta.resourceType eq "User")"#, vec![&g[0], &g[1]]),
        // RFC 7644 §3.4.2.2: an attribute a type lacks is absent there, so a filter mixing the
        // two types' attributes finds both.
        (r#"userName eq "u1@example.com" or displayName eq "bravo""#, vec![&u[0], &g[0]]),
        (r#"members[value eq "{u0}"] or userName eq "u1@example.com""#, vec![&u[0], &g[0]]),
        (r#"not (userName pr) and displayName pr"#, vec![&g[0], &g[1]]),
    ] {
        let filter = filter.replace("{g0}", &g[0]).replace("{u0}", &u[0]);
        let r = root_search(&app, &d.token, json!({"filter": filter})).await;
        assert_eq!(ids(&r), want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{filter}: {}", r.text);
        assert_eq!(r.total(), want.len() as u64, "{filter}");
    }
}
both_backends!(root_search_filters_both_kinds_an_attribute_a_type_lacks_being_absent);

async fn root_search_sorts_users_and_groups_as_one_list(app: TestApp) {
    let d = directory(&app).await;
    let (u, g) = (&d.users, &d.groups);
    // alpha (user), bravo (group), Charlie (user), Delta (user), Echo (group): ignoring case.
    let ascending = [&u[1], &g[0], &u[2], &u[0], &g[1]];
    let page = |body: Value| {
        let (app, token) = (&app, &d.token);
        async move { root_search(app, token, body).await }
    };
    let r = page(json!({"sortBy": "displayName"})).await;
    assert_eq!(ids(&r), ascending.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{}", r.text);
    let r = page(json!({"sortBy": "displayName", "sortOrder": "descending"})).await;
    let descending: Vec<String> = ascending.iter().rev().map(|s| s.to_string()).collect();
    assert_eq!(ids(&r), descending);
    let r = page(json!({"sortBy": "displayName", "startIndex": 2, "count": 2})).await;
    assert_eq!((ids(&r), r.total()), (vec![g[0].clone(), u[2].clone()], 5), "sorted, then paged");
    let r = page(json!({"sortBy": "displayName", "sortOrder": "descending", "startIndex": 4, "count": 5})).await;
    assert_eq!(ids(&r), [g[0].clone(), u[1].clone()]);
    let r = page(json!({"sortBy": "displayName", "filter": "displayName lt \"d\""})).await;
    assert_eq!(ids(&r), [u[1].clone(), g[0].clone(), u[2].clone()], "filtered and sorted");
    // Only users have userName: groups sort as missing it, last either way.
    let r = page(json!({"sortBy": "userName", "sortOrder": "descending"})).await;
    assert_eq!(ids(&r), [u[2].clone(), u[1].clone(), u[0].clone(), g[0].clone(), g[1].clone()]);
}
both_backends!(root_search_sorts_users_and_groups_as_one_list);

async fn root_search_projects_each_type_and_returns_members_only_when_asked(app: TestApp) {
    let d = directory(&app).await;
    let r = root_search(&app, &d.token, json!({"attributes": ["displayName"]})).await;
    assert_eq!(r.total(), 5);
    for v in r.resources() {
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["displayName", "id", "schemas"], "{v}");
    }
    let r = root_search(&app, &d.token, json!({"excludedAttributes": ["members", "meta"], "startIndex": 4})).await;
    assert_eq!(ids(&r), d.groups, "{}", r.text);
    assert!(r.resources().iter().all(|v| v.get("members").is_none() && v.get("meta").is_none()), "{}", r.text);
    // By default members are returned (as GET /Groups does); users never have them.
    let r = root_search(&app, &d.token, json!({})).await;
    assert_eq!(r.resources()[3]["members"][0]["value"], json!(d.users[0]), "{}", r.text);
    assert!(r.resources()[..3].iter().all(|v| v.get("members").is_none()));
    let r = root_search(&app, &d.token, json!({"attributes": ["members"], "sortBy": "displayName"})).await;
    assert_eq!(r.resources()[1]["members"][0]["value"], json!(d.users[0]), "{}", r.text);
    assert!(r.resources()[1].get("displayName").is_none());
}
both_backends!(root_search_projects_each_type_and_returns_members_only_when_asked);

async fn root_search_never_shows_another_tenants_resources(app: TestApp) {
    let d = directory(&app).await;
    let ours: Vec<String> = [d.users.clone(), d.groups.clone()].concat();
    for body in [
        json!({}),
        json!({"filter": "displayName pr"}),
        json!({"filter": r#"userName eq "u1@example.com" or displayName eq "bravo""#}),
        json!({"sortBy": "displayName", "count": 100}),
        json!({"filter": r#"displayName eq "alpha""#, "sortBy": "userName"}),
    ] {
        let r = root_search(&app, &d.token, body.clone()).await;
        assert!(ids(&r).iter().all(|id| ours.contains(id)), "{body}: {}", r.text);
        assert!(r.total() <= 5, "{body}: {}", r.text);
    }
    // And the other tenant sees its own three only.
    let r = root_search(&app, &app.token("elsewhere"), json!({})).await;
    assert_eq!(r.total(), 3, "{}", r.text);
    assert!(ids(&r).iter().all(|id| !ours.contains(id)));
}
both_backends!(root_search_never_shows_another_tenants_resources);

async fn a_root_search_that_fits_neither_type_is_refused(app: TestApp) {
    let d = directory(&app).await;
    for (body, status, scim_type) in [
        (json!({"filter": "shoeSize eq 42"}), 400, "invalidFilter"),
        (json!({"filter": r#"userName eq "x" and shoeSize pr"#}), 400, "invalidFilter"),
        (json!({"filter": "userName eq"}), 400, "invalidFilter"),
        (json!({"sortBy": "shoeSize"}), 400, "invalidValue"),
        (json!({"sortBy": "displayName", "startIndex": 1_999, "count": 5}), 400, "tooMany"),
        (json!({"sortBy": "members.value"}), 400, "invalidValue"),
    ] {
        let r = app.post(&d.token, "/.search", &body).await;
        r.assert_error(status, Some(scim_type), &body.to_string());
    }
    // Each test fits one type, so the filter is valid; no resource has both attributes.
    let r = root_search(&app, &d.token, json!({"filter": r#"userName eq "u1@example.com" and members pr"#})).await;
    assert_eq!(r.total(), 0, "{}", r.text);
    // The limit is only on merging sorted lists: without sortBy, any page is fine.
    let r = root_search(&app, &d.token, json!({"startIndex": 1_000_000, "count": 5})).await;
    assert_eq!((r.total(), r.resources().len()), (5, 0));
    let r = root_search(&app, &d.token, json!({"sortBy": "displayName", "startIndex": 1_996, "count": 5})).await;
    assert_eq!((r.total(), r.resources().len()), (5, 0), "at the limit");
}
both_backends!(a_root_search_that_fits_neither_type_is_refused);

async fn the_root_is_not_a_search_endpoint_for_other_methods(app: TestApp) {
    let token = app.token("root");
    for path in ["", "/", "/?aadOptscim062020&filter=userName%20pr"] {
        app.get(&token, path).await.assert_error(404, None, &format!("GET {path}"));
    }
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let r = app.send(method.clone(), &token, "/.search", None).await;
        r.assert_error(405, None, &format!("{method} /.search"));
        assert_eq!(r.header("allow"), Some("POST"));
    }
    // Authentication first, as on every endpoint.
    let r = app.post("not-a-token", "/.search", &json!({})).await;
    r.assert_error(401, None, "no token");
}
both_backends!(the_root_is_not_a_search_endpoint_for_other_methods);
