//! Tenant isolation: a token selects one tenant, and nothing of another tenant can be read,
//! changed, found or referenced with it — not even its existence.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::StatusCode;
use scimgw_e2e::{GROUP_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

/// Tenant B's user and group, and tokens for A and B.
struct Setup {
    a: String,
    b: String,
    b_user: Value,
    b_group: Value,
}

async fn setup(app: &TestApp) -> Setup {
    let a = app.token("tenant-a");
    let b = app.token("tenant-b");
    let b_user = app.create_user(&b, "shared.name@example.com").await;
    let patched = app
        .patch(
            &b,
            &format!("/Users/{}", b_user["id"].as_str().unwrap()),
            &patch_op(json!([{"op":"add","value":{"externalId":"b-ext","displayName":"B Person"}}])),
        )
        .await
        .status;
    assert_eq!(patched, StatusCode::OK);
    let b_group = app.create_group(&b, "B Team", &[b_user["id"].as_str().unwrap()]).await;
    // As a GET shows it now: with its group (a user's `groups` are read from the memberships).
    let mut b_user_full = app.get(&b, &format!("/Users/{}", b_user["id"].as_str().unwrap())).await.body;
    b_user_full.as_object_mut().unwrap().remove("meta");
    assert_eq!(b_user_full["groups"][0]["display"], "B Team");
    Setup { a, b, b_user: b_user_full, b_group }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

async fn another_tenants_ids_are_not_found_on_any_endpoint(app: TestApp) {
    let s = setup(&app).await;
    let user_path = format!("/Users/{}", id(&s.b_user));
    let group_path = format!("/Groups/{}", id(&s.b_group));
    let user_body = json!({"schemas":[USER_URN],"userName":"hijack@example.com"});
    let group_body = json!({"schemas":[GROUP_URN],"displayName":"Hijacked"});
    let patch = patch_op(json!([{"op":"replace","path":"displayName","value":"Hijacked"}]));
    for (path, body) in [(&user_path, &user_body), (&group_path, &group_body)] {
        app.get(&s.a, path).await.assert_error(404, None, &format!("GET {path}"));
        app.put(&s.a, path, body).await.assert_error(404, None, &format!("PUT {path}"));
        app.patch(&s.a, path, &patch).await.assert_error(404, None, &format!("PATCH {path}"));
        app.delete(&s.a, path).await.assert_error(404, None, &format!("DELETE {path}"));
        // With If-Match the condition fails as it would on an id that exists nowhere (412, RFC
        // 9110 §13.1.1), with the same words: no version and no existence is revealed.
        let auth = format!("Bearer {}", s.a);
        let headers = [("authorization", auth.as_str()), ("if-match", "W/\"1\"")];
        let r = app.request(reqwest::Method::DELETE, path, &headers, None).await;
        r.assert_error(412, None, &format!("DELETE {path} with If-Match"));
        let kind = path.split('/').nth(1).unwrap();
        let nowhere_path = format!("/{kind}/5b1d1b1e-0000-4000-8000-000000000000");
        let nowhere = app.request(reqwest::Method::DELETE, &nowhere_path, &headers, None).await;
        assert_eq!(nowhere.status, r.status);
        let theirs_id = path.rsplit('/').next().unwrap();
        assert_eq!(
            nowhere.body["detail"].as_str().unwrap().replace("5b1d1b1e-0000-4000-8000-000000000000", "ID"),
            r.body["detail"].as_str().unwrap().replace(theirs_id, "ID")
        );
        let r = app
            .request(
                reqwest::Method::GET,
                path,
                &[("authorization", &format!("Bearer {}", s.a)), ("if-none-match", "W/\"1\"")],
                None,
            )
            .await;
        r.assert_error(404, None, &format!("GET {path} with If-None-Match"));
    }
    // The 404 is the same as for an id that exists nowhere (no existence oracle).
    let nowhere = app.get(&s.a, "/Users/5b1d1b1e-0000-4000-8000-000000000000").await;
    let theirs = app.get(&s.a, &user_path).await;
    assert_eq!(nowhere.status, theirs.status);
    assert_eq!(
        nowhere.body["detail"].as_str().unwrap().replace("5b1d1b1e-0000-4000-8000-000000000000", "ID"),
        theirs.body["detail"].as_str().unwrap().replace(id(&s.b_user), "ID")
    );

    // B's resources are untouched.
    let r = app.get(&s.b, &user_path).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut now = r.body.clone();
    now.as_object_mut().unwrap().remove("meta");
    assert_eq!(now, s.b_user);
    let r = app.get(&s.b, &group_path).await;
    assert_eq!((r.status, r.body["displayName"].clone()), (StatusCode::OK, json!("B Team")));
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert_eq!(app.member_ids(&s.b, id(&s.b_group)).await, vec![id(&s.b_user).to_owned()]);
}
both_backends!(another_tenants_ids_are_not_found_on_any_endpoint);

async fn lists_filters_and_searches_see_only_the_own_tenant(app: TestApp) {
    let s = setup(&app).await;
    let own = app.create_user(&s.a, "own@example.com").await;
    let own_group = app.create_group(&s.a, "A Team", &[id(&own)]).await;
    let user_queries = [
        String::new(),
        format!("userName eq \"{}\"", s.b_user["userName"].as_str().unwrap()),
        format!("id eq \"{}\"", id(&s.b_user)),
        "externalId eq \"b-ext\"".into(),
        "displayName eq \"B Person\"".into(),
        "userName sw \"shared\"".into(),
        "userName pr".into(),
        "emails pr or title pr or userName co \"name\"".into(),
        "meta.created gt \"2000-01-01T00:00:00Z\"".into(),
        "not (userName eq \"own@example.com\")".into(),
    ];
    for filter in &user_queries {
        let r = app.get(&s.a, &format!("/Users?filter={}", enc(filter))).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text);
        assert!(r.resources().iter().all(|u| u["id"] != id(&s.b_user)), "{filter} found B's user: {}", r.text);
        let expected = u64::from(matches!(r.resources().first(), Some(u) if u["id"] == id(&own)));
        assert_eq!(r.total(), expected, "{filter}: totalResults counts only A's: {}", r.text);
        let r = app
            .post(
                &s.a,
                "/Users/.search",
                &json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter": filter}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, ".search {filter}: {}", r.text);
        assert!(r.resources().iter().all(|u| u["id"] != id(&s.b_user)), ".search {filter}: {}", r.text);
    }
    for filter in [
        String::new(),
        "displayName eq \"B Team\"".into(),
        format!("id eq \"{}\"", id(&s.b_group)),
        format!("members.value eq \"{}\"", id(&s.b_user)),
        format!("members[value eq \"{}\"]", id(&s.b_user)),
        "displayName pr".into(),
    ] {
        let r = app.get(&s.a, &format!("/Groups?filter={}", enc(&filter))).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text);
        assert!(r.resources().iter().all(|g| g["id"] != id(&s.b_group)), "{filter} found B's group: {}", r.text);
        assert!(r.total() <= 1, "{filter}: {}", r.text);
        let r = app.post(&s.a, "/Groups/.search", &json!({"filter": filter})).await;
        assert_eq!(r.status, StatusCode::OK, ".search {filter}: {}", r.text);
        assert!(r.resources().iter().all(|g| g["id"] != id(&s.b_group)), ".search {filter}: {}", r.text);
    }
    // Sorting and paging do not leak either.
    let r = app.get(&s.a, "/Users?sortBy=userName&sortOrder=descending&startIndex=1&count=1000").await;
    assert_eq!(r.total(), 1, "{}", r.text);
    let r = app.get(&s.a, "/Groups?sortBy=displayName").await;
    assert_eq!(r.total(), 1, "{}", r.text);
    assert_eq!(r.resources()[0]["id"], id(&own_group));
}
both_backends!(lists_filters_and_searches_see_only_the_own_tenant);

async fn another_tenants_user_cannot_be_made_a_member(app: TestApp) {
    let s = setup(&app).await;
    let b_uid = id(&s.b_user).to_owned();
    let b_gid = id(&s.b_group).to_owned();
    let own = app.create_user(&s.a, "member@example.com").await;
    // On create.
    let r = app
        .post(&s.a, "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"A Team","members":[{"value": b_uid}]}))
        .await;
    r.assert_error(400, Some("invalidValue"), "POST a group with B's user");
    let gid = app.create_group(&s.a, "A Team", &[id(&own)]).await["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    // By every PATCH shape, and nested: B's group.
    for (what, op) in [
        ("add with a path", json!({"op":"add","path":"members","value":[{"value": b_uid}]})),
        ("add without a path", json!({"op":"add","value":{"members":[{"value": b_uid}]}})),
        ("replace with a path", json!({"op":"replace","path":"members","value":[{"value": b_uid}]})),
        ("replace without a path", json!({"op":"replace","value":{"members":[{"value": b_uid}]}})),
        ("add B's group", json!({"op":"add","path":"members","value":[{"value": b_gid}]})),
        ("add own and B's", json!({"op":"add","path":"members","value":[{"value": id(&own)},{"value": b_uid}]})),
    ] {
        app.patch(&s.a, &path, &patch_op(json!([op]))).await.assert_error(400, Some("invalidValue"), what);
    }
    // By PUT.
    let r =
        app.put(&s.a, &path, &json!({"schemas":[GROUP_URN],"displayName":"A Team","members":[{"value": b_uid}]})).await;
    r.assert_error(400, Some("invalidValue"), "PUT with B's user");
    // Nothing changed; and removing B's user from A's group is a harmless no-op, not a leak.
    assert_eq!(app.member_ids(&s.a, &gid).await, vec![id(&own).to_owned()]);
    let r = app
        .patch(&s.a, &path, &patch_op(json!([{"op":"remove","path":format!("members[value eq \"{b_uid}\"]")}])))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.member_ids(&s.b, &b_gid).await, vec![b_uid.clone()], "B's group keeps its member");
}
both_backends!(another_tenants_user_cannot_be_made_a_member);

async fn user_names_are_unique_per_tenant_only(app: TestApp) {
    let s = setup(&app).await;
    let name = s.b_user["userName"].as_str().unwrap();
    let mine = app.create_user(&s.a, &name.to_uppercase()).await;
    assert_ne!(id(&mine), id(&s.b_user));
    // Deleting one tenant's user leaves the other's.
    let r = app.delete(&s.a, &format!("/Users/{}", id(&mine))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app.get(&s.b, &format!("/Users/{}", id(&s.b_user))).await;
    assert_eq!(r.status, StatusCode::OK);
    // Deleting B's user takes it out of B's group only.
    let r = app.delete(&s.b, &format!("/Users/{}", id(&s.b_user))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(app.member_ids(&s.b, id(&s.b_group)).await.is_empty());
}
both_backends!(user_names_are_unique_per_tenant_only);

async fn a_revoked_key_loses_access_and_other_keys_keep_it(app: TestApp) {
    let s = setup(&app).await;
    let second = app.token("tenant-b");
    let key_id = s.b.trim_start_matches("scimgw_").split('_').next().unwrap().to_owned();
    // The key authenticated a moment ago, so the gateway trusts it for `auth.key_cache_ms`
    // (1 s by default) without reading the store: the revocation lands within that.
    assert!(app.store().revoke_api_key(&key_id).unwrap());
    let revoked = std::time::Instant::now();
    let r = loop {
        let r = app.get(&s.b, "/Users").await;
        if r.status == StatusCode::UNAUTHORIZED || revoked.elapsed() > std::time::Duration::from_secs(5) {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    r.assert_error(401, None, "revoked key");
    eprintln!("a revoked key (auth.key_cache_ms = 1000) was first refused after {:?}", revoked.elapsed());
    assert!(revoked.elapsed() < std::time::Duration::from_millis(1500), "refused after {:?}", revoked.elapsed());
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let r = app.get(&second, "/Users").await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 1), "{}", r.text);
}
both_backends!(a_revoked_key_loses_access_and_other_keys_keep_it);

/// With the key cache off, a revocation is refused on the very next request.
async fn without_the_key_cache_a_revocation_is_immediate(app: TestApp) {
    let token = app.token("acme");
    assert_eq!(app.get(&token, "/Users").await.status, StatusCode::OK);
    let key_id = token.trim_start_matches("scimgw_").split('_').next().unwrap().to_owned();
    assert!(app.store().revoke_api_key(&key_id).unwrap());
    app.get(&token, "/Users").await.assert_error(401, None, "revoked key");
}
both_backends!(without_the_key_cache_a_revocation_is_immediate, |c: &mut scimgw_e2e::Config| c.auth.key_cache_ms = 0);

/// A key the gateway trusts from its cache still needs its own secret: the same key id with
/// another secret is refused. A key whose tenant was removed meanwhile cannot write (401, not a
/// 500 from the store's foreign key).
async fn the_key_cache_checks_every_secret_and_follows_tenant_removal(app: TestApp) {
    let token = app.token("acme");
    assert_eq!(app.get(&token, "/Users").await.status, StatusCode::OK);
    let (prefix, secret) = token.rsplit_once('_').unwrap();
    let flipped: String = secret.chars().map(|c| if c == '0' { '1' } else { '0' }).collect();
    let forged = format!("{prefix}_{flipped}");
    app.get(&forged, "/Users").await.assert_error(401, None, "a cached key id with another secret");
    assert_eq!(app.get(&token, "/Users").await.status, StatusCode::OK, "the real secret still works");

    assert!(app.store().remove_tenant("acme").unwrap());
    let r = app.post(&token, "/Users", &json!({"schemas": [USER_URN], "userName": "late@example.com"})).await;
    r.assert_error(401, None, "a write for a removed tenant");
}
both_backends!(the_key_cache_checks_every_secret_and_follows_tenant_removal);
