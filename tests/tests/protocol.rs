//! Protocol details every client relies on: lenient query strings, paging limits, sorting,
//! attribute projection, media types, ETags, discovery, the size limit of indexed values, and
//! group members as RFC 7643 §4.2 shows them.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::{Method, StatusCode};
use scimgw_e2e::{ENTERPRISE_URN, GROUP_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

async fn unknown_query_parameters_are_accepted_on_every_route(app: TestApp) {
    let token = app.token("proto");
    let q = "?aadOptscim062020&unknown=1&flag";
    let uid = app.create_user(&token, "q@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Q", &[]).await["id"].as_str().unwrap().to_owned();
    let user = json!({"schemas":[USER_URN],"userName":"q2@example.com"});
    let group = json!({"schemas":[GROUP_URN],"displayName":"Q2"});
    let patch = patch_op(json!([{"op":"replace","path":"displayName","value":"Q3"}]));
    let search = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    let same_user = json!({"schemas":[USER_URN],"userName":"q@example.com"});
    let same_group = json!({"schemas":[GROUP_URN],"displayName":"Q"});
    let checks: Vec<(Method, String, Option<&Value>, u16)> = vec![
        (Method::GET, format!("/Users{q}"), None, 200),
        (Method::POST, format!("/Users{q}"), Some(&user), 201),
        (Method::GET, format!("/Users/{uid}{q}"), None, 200),
        (Method::PUT, format!("/Users/{uid}{q}"), Some(&same_user), 200),
        (Method::PATCH, format!("/Users/{uid}{q}"), Some(&patch), 200),
        (Method::POST, format!("/Users/.search{q}"), Some(&search), 200),
        (Method::GET, format!("/Groups{q}"), None, 200),
        (Method::POST, format!("/Groups{q}"), Some(&group), 201),
        (Method::GET, format!("/Groups/{gid}{q}"), None, 200),
        (Method::PUT, format!("/Groups/{gid}{q}"), Some(&same_group), 200),
        (Method::PATCH, format!("/Groups/{gid}{q}"), Some(&patch), 204),
        (Method::POST, format!("/Groups/.search{q}"), Some(&search), 200),
        (Method::GET, format!("/ServiceProviderConfig{q}"), None, 200),
        (Method::GET, format!("/Schemas{q}"), None, 200),
        (Method::GET, format!("/Schemas/{USER_URN}{q}"), None, 200),
        (Method::GET, format!("/ResourceTypes{q}"), None, 200),
        (Method::GET, format!("/ResourceTypes/User{q}"), None, 200),
        (Method::DELETE, format!("/Users/{uid}{q}"), None, 204),
        (Method::DELETE, format!("/Groups/{gid}{q}"), None, 204),
    ];
    for (method, path, body, status) in checks {
        let r = app.send(method.clone(), &token, &path, body).await;
        assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.text);
    }
}
both_backends!(unknown_query_parameters_are_accepted_on_every_route);

async fn paging_clamps_to_the_advertised_maximum(app: TestApp) {
    let token = app.token("proto");
    for i in 0..8 {
        app.create_user(&token, &format!("page{i}@example.com")).await;
    }
    let page = |path: &str| {
        let path = path.to_owned();
        let (app, token) = (&app, &token);
        async move {
            let r = app.get(token, &path).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
            (r.total(), r.resources().len(), r.body["startIndex"].as_u64().unwrap(), r.body["itemsPerPage"].clone())
        }
    };
    assert_eq!(page("/Users").await, (8, 3, 1, json!(3)), "default_page_size");
    assert_eq!(page("/Users?count=100").await, (8, 5, 1, json!(5)), "clamped to max_page_size");
    assert_eq!(page("/Users?count=99999999999999999999").await, (8, 5, 1, json!(5)), "beyond i64: clamped");
    assert_eq!(page("/Users?count=-1").await, (8, 0, 1, json!(0)), "negative count is 0");
    assert_eq!(page("/Users?count=-99999999999999999999").await, (8, 0, 1, json!(0)));
    assert_eq!(page("/Users?startIndex=0&count=2").await, (8, 2, 1, json!(2)), "startIndex below 1 is 1");
    assert_eq!(page("/Users?startIndex=-7").await.2, 1);
    assert_eq!(page("/Users?startIndex=7&count=5").await, (8, 2, 7, json!(2)));
    assert_eq!(page("/Users?startIndex=99999999999999999999").await.1, 0, "far past the end: empty, not an error");
    assert_eq!(page("/Users?startIndex=9223372036854775807&count=99999999999999999999").await.1, 0);
    assert_eq!(page("/Users?count=%2B2").await.1, 2, "a leading + is an integer");
    // Also through a filter evaluated in Rust (title is not an indexed column), and .search.
    assert_eq!(
        page(&format!("/Users?filter={}&count=99999999999999999999", enc("title pr or userName pr"))).await.1,
        5
    );
    let r =
        app.post(&token, "/Users/.search", &serde_json::from_str(r#"{"count":99999999999999999999}"#).unwrap()).await;
    assert_eq!((r.status, r.resources().len()), (StatusCode::OK, 5), "{}", r.text);
    let r = app.post(&token, "/Users/.search", &json!({"count":1e30,"startIndex":2})).await;
    assert_eq!((r.status, r.resources().len()), (StatusCode::OK, 5), "{}", r.text);
    // The maximum is advertised.
    let r = app.get(&token, "/ServiceProviderConfig").await;
    assert_eq!(r.body["filter"]["maxResults"], 5, "{}", r.text);
    assert_eq!(r.body["filter"]["supported"], true);
}
both_backends!(paging_clamps_to_the_advertised_maximum, |c: &mut scimgw_e2e::Config| {
    c.default_page_size = 3;
    c.max_page_size = 5;
});

async fn count_zero_returns_only_the_total(app: TestApp) {
    let token = app.token("proto");
    for i in 0..3 {
        app.create_user(&token, &format!("zero{i}@example.com")).await;
    }
    for path in ["/Users?count=0", &format!("/Users?count=0&filter={}", enc("userName sw \"zero\"")), "/Groups?count=0"]
    {
        let r = app.get(&token, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(r.resources().is_empty(), "{path}: {}", r.text);
        assert_eq!(r.body["itemsPerPage"], 0, "{path}");
    }
    assert_eq!(app.get(&token, "/Users?count=0").await.total(), 3);
    let r = app.post(&token, "/Users/.search", &json!({"count":0,"filter":"title pr"})).await;
    assert_eq!((r.total(), r.resources().len()), (0, 0), "{}", r.text);
}
both_backends!(count_zero_returns_only_the_total);

async fn sort_by_orders_results_and_puts_missing_values_last(app: TestApp) {
    let token = app.token("proto");
    for (name, display, family) in [
        ("b@example.com", Some("Beta"), "Zed"),
        ("A@example.com", None, "Young"),
        ("c@example.com", Some("alpha"), "Xu"),
    ] {
        let mut body = json!({"schemas":[USER_URN],"userName":name,"name":{"familyName":family}});
        if let Some(d) = display {
            body["displayName"] = json!(d);
        }
        assert_eq!(app.post(&token, "/Users", &body).await.status, StatusCode::CREATED);
    }
    let names = |r: &scimgw_e2e::Reply| -> Vec<String> {
        r.resources().iter().map(|u| u["userName"].as_str().unwrap().to_owned()).collect()
    };
    let r = app.get(&token, "/Users?sortBy=userName").await;
    assert_eq!(names(&r), ["A@example.com", "b@example.com", "c@example.com"], "case-insensitive ascending");
    let r = app.get(&token, "/Users?sortBy=userName&sortOrder=descending").await;
    assert_eq!(names(&r), ["c@example.com", "b@example.com", "A@example.com"]);
    let r = app.get(&token, "/Users?sortBy=displayName").await;
    assert_eq!(names(&r), ["c@example.com", "b@example.com", "A@example.com"], "missing displayName last");
    let r = app.get(&token, "/Users?sortBy=displayName&sortOrder=DESCENDING").await;
    assert_eq!(names(&r), ["b@example.com", "c@example.com", "A@example.com"], "missing last either way");
    let r = app.get(&token, "/Users?sortBy=name.familyName").await;
    assert_eq!(names(&r), ["c@example.com", "A@example.com", "b@example.com"], "a non-indexed attribute");
    let r = app.get(&token, "/Users?sortBy=name.familyName&startIndex=2&count=1").await;
    assert_eq!(names(&r), ["A@example.com"], "sorted, then paged");
    let r = app.post(&token, "/Users/.search", &json!({"sortBy":"userName","sortOrder":"descending","count":2})).await;
    assert_eq!(names(&r), ["c@example.com", "b@example.com"]);
}
both_backends!(sort_by_orders_results_and_puts_missing_values_last);

async fn attributes_and_excluded_attributes_shape_every_response(app: TestApp) {
    let token = app.token("proto");
    let body = json!({"schemas":[USER_URN, ENTERPRISE_URN],"userName":"shape@example.com","displayName":"Shape",
        "emails":[{"type":"work","value":"shape@example.com"}],"name":{"givenName":"S","familyName":"Hape"},
        ENTERPRISE_URN: {"department":"Ops","employeeNumber":"7"}});
    let r = app.post(&token, "/Users?attributes=userName", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    assert_eq!(r.body["userName"], "shape@example.com");
    assert!(r.body.get("displayName").is_none() && r.body.get("emails").is_none(), "{}", r.text);

    let r = app.get(&token, &format!("/Users/{id}?attributes=userName,name.givenName")).await;
    assert_eq!(r.body["id"], id.as_str(), "id is always returned");
    assert_eq!(r.body["name"], json!({"givenName":"S"}), "{}", r.text);
    assert!(r.body.get("emails").is_none() && r.body.get(ENTERPRISE_URN).is_none(), "{}", r.text);

    let r = app.get(&token, &format!("/Users/{id}?excludedAttributes=emails,name,{ENTERPRISE_URN}:department")).await;
    assert!(r.body.get("emails").is_none() && r.body.get("name").is_none(), "{}", r.text);
    assert_eq!(r.body[ENTERPRISE_URN], json!({"employeeNumber":"7"}), "{}", r.text);
    assert_eq!(r.body["userName"], "shape@example.com", "userName is returned always... or by default");

    let r = app.get(&token, &format!("/Users?attributes={ENTERPRISE_URN}:department")).await;
    assert_eq!(r.resources()[0][ENTERPRISE_URN], json!({"department":"Ops"}), "{}", r.text);
    assert!(r.resources()[0].get("displayName").is_none(), "{}", r.text);

    let r = app.put(&token, &format!("/Users/{id}?excludedAttributes=meta"), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("meta").is_none(), "{}", r.text);

    let r = app.post(&token, "/Users/.search", &json!({"attributes":["displayName"],"filter":"userName pr"})).await;
    assert_eq!(r.resources()[0]["displayName"], "Shape");
    assert!(r.resources()[0].get("emails").is_none(), "{}", r.text);

    let gid = app.create_group(&token, "Shaped", &[&id]).await["id"].as_str().unwrap().to_owned();
    let r = app.get(&token, &format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none(), "{}", r.text);
    assert_eq!(r.body["displayName"], "Shaped");
    let r = app.get(&token, &format!("/Groups?attributes=members&filter={}", enc("displayName eq \"Shaped\""))).await;
    assert_eq!(r.resources()[0]["members"], json!([app.member("User", &id, "Shape")]), "{}", r.text);
    assert!(r.resources()[0].get("displayName").is_none(), "{}", r.text);
}
both_backends!(attributes_and_excluded_attributes_shape_every_response);

async fn json_and_scim_json_are_both_accepted(app: TestApp) {
    let token = app.token("proto");
    let auth = format!("Bearer {token}");
    for (i, ct) in [
        Some("application/scim+json"),
        Some("application/json"),
        Some("application/scim+json; charset=utf-8"),
        Some("Application/JSON;charset=UTF-8"),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"schemas":[USER_URN],"userName": format!("ct{i}@example.com")}).to_string();
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            headers.push(("content-type", ct));
        }
        let r = app.request(Method::POST, "/Users", &headers, Some(body.as_bytes())).await;
        assert_eq!(r.status, StatusCode::CREATED, "{ct:?}: {}", r.text);
    }
    // The answer is SCIM's type unless the client asks only for application/json.
    for (accept, expected) in [
        (None, "application/scim+json"),
        (Some("application/scim+json"), "application/scim+json"),
        (Some("application/json"), "application/json"),
        (Some("application/json, application/scim+json"), "application/scim+json"),
        (Some("*/*"), "application/scim+json"),
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(a) = accept {
            headers.push(("accept", a));
        }
        let r = app.request(Method::GET, "/Users", &headers, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.header("content-type").is_some_and(|c| c.starts_with(expected)),
            "{accept:?}: {:?}",
            r.header("content-type")
        );
    }
}
both_backends!(json_and_scim_json_are_both_accepted);

async fn etags_guard_writes_and_save_reads(app: TestApp) {
    let token = app.token("proto");
    let auth = format!("Bearer {token}");
    let created = app.create_user(&token, "etag@example.com").await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let r = app.get(&token, &path).await;
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    let with = |name: &'static str, value: &'static str| {
        let auth = auth.clone();
        move || vec![("authorization".to_owned(), auth.clone()), (name.to_owned(), value.to_owned())]
    };
    let send = |method: Method, headers: Vec<(String, String)>, body: Option<Value>| {
        let path = path.clone();
        let app = &app;
        async move {
            let mut h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let body = body.map(|b| b.to_string());
            if body.is_some() {
                h.push(("content-type", "application/scim+json"));
            }
            app.request(method, &path, &h, body.as_deref().map(str::as_bytes)).await
        }
    };
    let title = |t: &str| patch_op(json!([{"op":"replace","path":"title","value": t}]));

    // If-None-Match: weak comparison (RFC 7232 §3.2), so W/"1" and "1" both match version 1.
    for inm in ["W/\"1\"", "\"1\"", "*", "W/\"9\", W/\"1\""] {
        let r =
            send(Method::GET, vec![("authorization".into(), auth.clone()), ("if-none-match".into(), inm.into())], None)
                .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match: {inm}");
        assert!(r.text.is_empty());
        assert_eq!(r.header("etag"), Some("W/\"1\""));
    }
    let r = send(Method::GET, with("if-none-match", "W/\"0\"")(), None).await;
    assert_eq!(r.status, StatusCode::OK, "a stale If-None-Match reads the resource");

    // If-Match: the current version (weak or strong form) or * lets the write through.
    let r = send(Method::PATCH, with("if-match", "W/\"1\"")(), Some(title("one"))).await;
    assert_eq!((r.status, r.header("etag")), (StatusCode::OK, Some("W/\"2\"")), "{}", r.text);
    let r = send(Method::PATCH, with("if-match", "\"2\"")(), Some(title("two"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = send(Method::PATCH, with("if-match", "*")(), Some(title("three"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A stale version is 412 and changes nothing.
    let r = send(Method::PATCH, with("if-match", "W/\"1\"")(), Some(title("stale"))).await;
    r.assert_error(412, None, "stale If-Match on PATCH");
    let r = send(
        Method::PUT,
        with("if-match", "W/\"2\"")(),
        Some(json!({"schemas":[USER_URN],"userName":"etag@example.com"})),
    )
    .await;
    r.assert_error(412, None, "stale If-Match on PUT");
    let r = send(Method::DELETE, with("if-match", "W/\"3\"")(), None).await;
    r.assert_error(412, None, "stale If-Match on DELETE");
    let r = app.get(&token, &path).await;
    assert_eq!((r.body["title"].clone(), r.body["meta"]["version"].clone()), (json!("three"), json!("W/\"4\"")));
    // The current one deletes.
    let r = send(Method::DELETE, with("if-match", "W/\"4\"")(), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // A conditional write of what is gone fails its condition (412); without one it is a 404.
    let r = send(Method::PATCH, with("if-match", "W/\"4\"")(), Some(title("late"))).await;
    r.assert_error(412, None, "If-Match on a deleted resource");
    let r = send(Method::DELETE, with("if-match", "*")(), None).await;
    r.assert_error(412, None, "If-Match: * on a deleted resource");
    let r = app.delete(&token, &path).await;
    r.assert_error(404, None, "an unconditional DELETE of a deleted resource");
}
both_backends!(etags_guard_writes_and_save_reads);

async fn indexed_values_up_to_the_limit_are_stored_and_found(app: TestApp) {
    let token = app.token("proto");
    let limit = scimgw_gateway::MAX_INDEXED_VALUE_BYTES;
    // 'İ' is 2 bytes and folds to 3: the case-folded column is half as long again.
    for name in ["u".repeat(limit), "İ".repeat(limit / 2), format!("{}@x", "É".repeat((limit - 2) / 2))] {
        assert!(name.len() <= limit);
        let body = json!({"schemas":[USER_URN],"userName": name, "externalId": "e".repeat(limit), "displayName": "Ğ".repeat(limit / 2)});
        let r = app.post(&token, "/Users", &body).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{} bytes: {}",
            name.len(),
            r.text.chars().take(200).collect::<String>()
        );
        let r = app
            .get(&token, &format!("/Users?filter={}", enc(&format!("userName eq \"{}\"", name.to_lowercase()))))
            .await;
        assert_eq!(r.total(), 1, "found again through the case-insensitive index");
        let id = r.resources()[0]["id"].as_str().unwrap().to_owned();
        app.delete(&token, &format!("/Users/{id}")).await;
    }
    let r = app
        .post(
            &token,
            "/Groups",
            &json!({"schemas":[GROUP_URN],"displayName": "İ".repeat(limit / 2), "externalId": "g".repeat(limit)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text.chars().take(200).collect::<String>());
    let id = r.id();
    let r = app
        .patch(
            &token,
            &format!("/Groups/{id}"),
            &patch_op(json!([{"op":"replace","path":"displayName","value":"x".repeat(limit + 1)}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"), "one byte over");
    assert!(r.body["detail"].as_str().unwrap().contains("displayName"), "{}", r.text);
    assert!(!r.text.contains("xxxxxxxx"), "the detail names the attribute, never the value");
}
both_backends!(indexed_values_up_to_the_limit_are_stored_and_found);

async fn discovery_describes_what_the_gateway_serves(app: TestApp) {
    let token = app.token("proto");
    let r = app.get(&token, "/ServiceProviderConfig").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for feature in ["patch", "filter", "sort", "etag"] {
        assert_eq!(r.body[feature]["supported"], true, "{feature}");
    }
    for feature in ["bulk", "changePassword"] {
        assert_eq!(r.body[feature]["supported"], false, "{feature}");
    }
    let r = app.get(&token, "/Schemas").await;
    let ids: Vec<&str> = r.resources().iter().filter_map(|s| s["id"].as_str()).collect();
    for urn in [USER_URN, GROUP_URN, ENTERPRISE_URN] {
        assert!(ids.contains(&urn), "{urn} in {ids:?}");
    }
    assert!(!r.text.contains("schemas.microsoft.com"), "the accepted Microsoft URN is not served as a schema");
    let r = app.get(&token, "/ResourceTypes/User").await;
    assert_eq!(r.body["endpoint"], "/Users", "{}", r.text);
    assert!(r.text.contains(ENTERPRISE_URN));
    let r = app.get(&token, &format!("/Schemas/{ENTERPRISE_URN}")).await;
    assert_eq!(r.body["id"], ENTERPRISE_URN);
}
both_backends!(discovery_describes_what_the_gateway_serves);

async fn filter_literals_with_sql_wildcards_and_odd_values_match_literally(app: TestApp) {
    let token = app.token("proto");
    for name in
        ["a_b@example.com", "axb@example.com", "100%@example.com", "back\\slash@example.com", "ǅemo@example.com"]
    {
        app.create_user(&token, name).await;
    }
    let count = |filter: String| {
        let (app, token) = (&app, &token);
        async move {
            let r = app.get(token, &format!("/Users?filter={}", enc(&filter))).await;
            assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text);
            r.total()
        }
    };
    assert_eq!(count("userName co \"_\"".into()).await, 1, "_ is not a LIKE wildcard");
    assert_eq!(count("userName sw \"a_\"".into()).await, 1);
    assert_eq!(count("userName co \"%\"".into()).await, 1, "% is not a LIKE wildcard");
    assert_eq!(count("userName ew \"%@example.com\"".into()).await, 1);
    assert_eq!(count("userName co \"\\\\\"".into()).await, 1, "a backslash is literal");
    assert_eq!(count("userName sw \"back\\\\\"".into()).await, 1);
    assert_eq!(count("userName sw \"ǆ\"".into()).await, 1, "titlecase folds like the stored value");
    assert_eq!(count("userName eq \"A_B@EXAMPLE.COM\"".into()).await, 1);
    // Long literals are only compared, never stored: no index limit applies.
    assert_eq!(count(format!("externalId eq \"{}\"", "x".repeat(7000))).await, 0);
    assert_eq!(count(format!("userName sw \"{}\"", "y".repeat(7000))).await, 0);
    // Odd values of the right type.
    assert_eq!(count("meta.created gt \"1970-01-01T00:00:00Z\"".into()).await, 5);
    assert_eq!(count("meta.lastModified lt \"9999-12-31T23:59:59.999Z\"".into()).await, 5);
}
both_backends!(filter_literals_with_sql_wildcards_and_odd_values_match_literally);

async fn no_filter_or_sort_fails_in_the_store(app: TestApp) {
    // Every attribute of both resource types in filters and sorts, on both SQL and Rust paths:
    // 200 or a 400 from validation, never a 5xx.
    let token = app.token("proto");
    let uid = app.create_user(&token, "every@example.com").await["id"].as_str().unwrap().to_owned();
    let inner = app.create_group(&token, "Inner", &[&uid]).await["id"].as_str().unwrap().to_owned();
    app.create_group(&token, "Outer", &[&uid, &inner]).await;
    let user_filters = [
        "id eq \"x\"",
        "id gt \"a\"",
        "userName le \"m\"",
        "externalId pr",
        "not (externalId pr)",
        "externalId eq null",
        "displayName ne null",
        "active eq true or active eq false",
        "active ne true",
        "meta.created ge \"2000-01-01T00:00:00Z\" and meta.lastModified le \"2999-01-01T00:00:00Z\"",
        "meta.created eq \"2000-01-01\"",
        "meta.resourceType eq \"User\"",
        "meta.version eq \"W/\\\"1\\\"\"",
        "schemas eq \"urn:ietf:params:scim:schemas:core:2.0:User\"",
        "emails[type eq \"work\" and value co \"@\"] or emails.value ew \".com\"",
        "name.familyName sw \"a\" or nickName co \"b\" or title ew \"c\"",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"x\"",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department pr",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"every@example.com\"",
        "groups.value eq \"x\"",
        "x509Certificates pr",
        "userName eq \"every@example.com\" and (title pr or not (nickName pr))",
        "userName gt 5",
        "userName eq true",
        "active eq \"True\"",
    ];
    let group_filters = [
        "members.value eq \"x\"",
        "members[value eq \"x\" or type eq \"Group\"]",
        "members pr",
        "members eq \"x\"",
        "not (members pr)",
        "displayName sw \"O\" and members.type eq \"User\"",
        "externalId eq null",
        "meta.lastModified gt \"2000-01-01T00:00:00Z\"",
        "members.display co \"x\"",
        "id ne \"x\"",
    ];
    let user_sorts = [
        "id",
        "userName",
        "externalId",
        "displayName",
        "active",
        "meta.created",
        "meta.lastModified",
        "emails",
        "emails.value",
        "name.givenName",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "x509Certificates",
        "meta",
    ];
    let group_sorts = ["displayName", "members", "members.value", "externalId", "meta.version", "id"];
    for (endpoint, filters, sorts) in
        [("/Users", &user_filters[..], &user_sorts[..]), ("/Groups", &group_filters[..], &group_sorts[..])]
    {
        for filter in filters {
            for sort in sorts.iter().take(3).chain([&"", &"meta.created"]) {
                let path =
                    format!("{endpoint}?filter={}&sortBy={}&sortOrder=descending&count=2", enc(filter), enc(sort));
                let r = app.get(&token, &path).await;
                assert!(
                    r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
                    "{filter} / {sort}: {}",
                    r.text
                );
            }
        }
        for sort in sorts {
            let r = app.get(&token, &format!("{endpoint}?sortBy={}&startIndex=2", enc(sort))).await;
            assert!(r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST, "sortBy={sort}: {}", r.text);
        }
    }
}
both_backends!(no_filter_or_sort_fails_in_the_store);

async fn tens_of_thousands_of_member_ids_in_one_patch_are_handled(app: TestApp) {
    let token = app.token("proto");
    let gid = app.create_group(&token, "Big", &[]).await["id"].as_str().unwrap().to_owned();
    // Nested groups are members too, and cheaper to create here than users. The id lists below
    // are longer than SQLite's 32,766 bind parameters: statements must be chunked.
    let mut ids = Vec::new();
    for i in 0..60 {
        ids.push(app.create_group(&token, &format!("Part {i}"), &[]).await["id"].as_str().unwrap().to_owned());
    }
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let r = app
        .patch(&token, &format!("/Groups/{gid}"), &patch_op(json!([{"op":"add","path":"members","value": members}])))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await.len(), 60);
    // An unknown id among many: the whole batch is refused, nothing is added.
    let mut members: Vec<Value> = (0..33_000).map(|i| json!({"value": format!("m{i}")})).collect();
    members.push(json!({"value": ids[0]}));
    let gid2 = app.create_group(&token, "Big2", &[]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(&token, &format!("/Groups/{gid2}"), &patch_op(json!([{"op":"add","path":"members","value": members}])))
        .await;
    r.assert_error(400, Some("invalidValue"), "33,000 unknown members");
    assert!(app.member_ids(&token, &gid2).await.is_empty());
    // Removing 33,000 ids in one go, most of them not members.
    let mut gone: Vec<Value> = (0..33_000).map(|i| json!({"value": format!("m{i}")})).collect();
    gone.extend(ids.iter().take(30).map(|id| json!({"value": id})));
    let r = app
        .patch(&token, &format!("/Groups/{gid}"), &patch_op(json!([{"op":"remove","path":"members","value": gone}])))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await.len(), 30);
}
both_backends!(tens_of_thousands_of_member_ids_in_one_patch_are_handled);

/// Sorts members as the gateway returns them: by `value`.
fn by_value(mut members: Vec<Value>) -> Value {
    members.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    Value::Array(members)
}

async fn group_members_carry_value_ref_type_and_display(app: TestApp) {
    let token = app.token("proto");
    let named = json!({"schemas":[USER_URN],"userName":"ann@example.com","displayName":"Ann Example"});
    let ann = app.post(&token, "/Users", &named).await.id();
    let bob = app.create_user(&token, "bob@example.com").await["id"].as_str().unwrap().to_owned();
    let inner = app.create_group(&token, "Inner", &[&bob]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &token,
            "/Groups",
            &json!({"schemas":[GROUP_URN],"displayName":"Outer","members":[{"value": ann},{"value": bob},{"value": inner}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let gid = r.id();
    let expected = by_value(vec![
        app.member("User", &ann, "Ann Example"),
        app.member("User", &bob, "bob@example.com"),
        app.member("Group", &inner, "Inner"),
    ]);
    assert_eq!(r.body["members"], expected, "the create's answer: displayName, else userName; a group's displayName");
    let r = app.get(&token, &format!("/Groups/{gid}")).await;
    assert_eq!(r.body["members"], expected, "{}", r.text);

    // Each $ref is where that member is read, as its meta.location says.
    for m in expected.as_array().unwrap() {
        let url = m["$ref"].as_str().unwrap();
        let member = TestApp::read(app.client.get(url).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(member.status, StatusCode::OK, "GET {url}: {}", member.text);
        assert_eq!(member.body["id"], m["value"]);
        assert_eq!(member.body["meta"]["location"], m["$ref"]);
        assert_eq!(member.body["meta"]["resourceType"], m["type"]);
    }

    // Lists of several groups name each group's members, and so does a search.
    let r = app.get(&token, "/Groups").await;
    assert_eq!(r.total(), 2, "{}", r.text);
    let of = |r: &scimgw_e2e::Reply, id: &str| {
        r.resources().iter().find(|g| g["id"] == id).map(|g| g["members"].clone()).unwrap()
    };
    assert_eq!(of(&r, &gid), expected, "{}", r.text);
    assert_eq!(of(&r, &inner), json!([app.member("User", &bob, "bob@example.com")]), "{}", r.text);
    let r = app.post(&token, "/Groups/.search", &json!({"filter": "displayName eq \"Outer\""})).await;
    assert_eq!(r.resources()[0]["members"], expected, "{}", r.text);
    // A filter on a member's display name is evaluated on what the join read.
    let r = app.get(&token, &format!("/Groups?filter={}", enc("members.display eq \"Ann Example\""))).await;
    assert_eq!((r.total(), r.resources()[0]["id"].clone()), (1, json!(gid)), "{}", r.text);

    // A renamed member is shown with its new name (user by PATCH, group by PUT), in every group.
    let rename = patch_op(json!([{"op":"replace","path":"displayName","value":"Ann Renamed"}]));
    let r = app.patch(&token, &format!("/Users/{ann}"), &rename).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .put(
            &token,
            &format!("/Groups/{inner}"),
            &json!({"schemas":[GROUP_URN],"displayName":"Inner circle","members":[{"value": bob}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let renamed = by_value(vec![
        app.member("User", &ann, "Ann Renamed"),
        app.member("User", &bob, "bob@example.com"),
        app.member("Group", &inner, "Inner circle"),
    ]);
    let r = app.get(&token, &format!("/Groups/{gid}")).await;
    assert_eq!(r.body["members"], renamed, "{}", r.text);
    let r = app.get(&token, &format!("/Groups?filter={}", enc("members.display eq \"Ann Renamed\""))).await;
    assert_eq!((r.total(), r.resources()[0]["id"].clone()), (1, json!(gid)), "{}", r.text);
    let r = app
        .put(
            &token,
            &format!("/Groups/{inner}"),
            &json!({"schemas":[GROUP_URN],"displayName":"Inner","members":[{"value": bob}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .patch(
            &token,
            &format!("/Users/{ann}"),
            &patch_op(json!([{"op":"replace","path":"displayName","value":"Ann Example"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // excludedAttributes=members: none, on a read and in a list.
    let r = app.get(&token, &format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none(), "{}", r.text);
    let r = app.get(&token, "/Groups?excludedAttributes=members").await;
    assert!(r.resources().iter().all(|g| g.get("members").is_none()), "{}", r.text);

    // Projections of the sub-attributes keep only those, member by member.
    let only = |key: &str| -> Value {
        expected.as_array().unwrap().iter().map(|m| json!({ key: m[key] })).collect::<Vec<_>>().into()
    };
    let r = app.get(&token, &format!("/Groups/{gid}?attributes=members.display")).await;
    assert_eq!(r.body["members"], only("display"), "{}", r.text);
    assert!(r.body.get("displayName").is_none(), "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid}?attributes=members.value")).await;
    assert_eq!(r.body["members"], only("value"), "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid}?excludedAttributes=members.display")).await;
    assert!(
        r.body["members"].as_array().unwrap().iter().all(|m| m.get("display").is_none() && m.get("$ref").is_some())
    );
}
both_backends!(group_members_carry_value_ref_type_and_display);

async fn a_put_echoing_a_groups_members_keeps_them(app: TestApp) {
    // Okta updates a group by PUT with the members it read, display and $ref included.
    let token = app.token("proto");
    let ann = app.create_user(&token, "ann@example.com").await["id"].as_str().unwrap().to_owned();
    let inner = app.create_group(&token, "Inner", &[]).await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Echo", &[&ann, &inner]).await["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    let read = app.get(&token, &path).await;
    assert!(
        read.body["members"].as_array().unwrap().iter().all(|m| m.get("$ref").is_some() && m.get("display").is_some())
    );

    let r = app.put(&token, &path, &read.body).await;
    assert_eq!(r.status, StatusCode::OK, "the GET's own body is a valid PUT: {}", r.text);
    assert_eq!(r.body["members"], read.body["members"], "{}", r.text);
    assert_eq!(r.header("etag"), read.header("etag"), "the same members: no new version");

    let mut renamed = read.body.clone();
    renamed["displayName"] = json!("Echoed");
    // A client's own idea of display and $ref is ignored, not stored.
    renamed["members"][0]["display"] = json!("someone else");
    renamed["members"][0]["$ref"] = json!("https://elsewhere.example.com/Users/x");
    let r = app.put(&token, &path, &renamed).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["displayName"], "Echoed");
    assert_eq!(r.body["members"], read.body["members"], "{}", r.text);
    assert_eq!(app.get(&token, &path).await.body["members"], read.body["members"]);
}
both_backends!(a_put_echoing_a_groups_members_keeps_them);

async fn a_renamed_member_shows_its_new_name_in_the_group(app: TestApp) {
    let token = app.token("proto");
    let ann = app.create_user(&token, "ann@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Named", &[&ann]).await["id"].as_str().unwrap().to_owned();
    let display = |r: &scimgw_e2e::Reply| r.body["members"][0]["display"].clone();
    assert_eq!(display(&app.get(&token, &format!("/Groups/{gid}")).await), "ann@example.com");

    let set = patch_op(json!([{"op":"replace","path":"displayName","value":"Ann Example"}]));
    assert!(app.patch(&token, &format!("/Users/{ann}"), &set).await.status.is_success());
    assert_eq!(display(&app.get(&token, &format!("/Groups/{gid}")).await), "Ann Example");
    let set = patch_op(json!([{"op":"replace","path":"userName","value":"ann.example@example.com"}]));
    assert!(app.patch(&token, &format!("/Users/{ann}"), &set).await.status.is_success());
    assert_eq!(display(&app.get(&token, &format!("/Groups/{gid}")).await), "Ann Example", "displayName first");
    let unset = patch_op(json!([{"op":"remove","path":"displayName"}]));
    assert!(app.patch(&token, &format!("/Users/{ann}"), &unset).await.status.is_success());
    assert_eq!(display(&app.get(&token, &format!("/Groups/{gid}")).await), "ann.example@example.com");
}
both_backends!(a_renamed_member_shows_its_new_name_in_the_group);

async fn member_refs_and_locations_use_the_public_url(app: TestApp) {
    let token = app.token("proto");
    let ann = app.create_user(&token, "ann@example.com").await["id"].as_str().unwrap().to_owned();
    let r = app
        .post(&token, "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"Public","members":[{"value": ann}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let gid = r.id();
    assert_eq!(r.header("location"), Some(format!("https://scim.example.com/scim/v2/Groups/{gid}").as_str()));
    assert_eq!(r.body["meta"]["location"], format!("https://scim.example.com/scim/v2/Groups/{gid}"));
    assert_eq!(r.body["members"][0]["$ref"], format!("https://scim.example.com/scim/v2/Users/{ann}"));
}
both_backends!(member_refs_and_locations_use_the_public_url, |c: &mut scimgw_e2e::Config| {
    c.public_url = Some("https://scim.example.com/scim/v2/".into());
});
