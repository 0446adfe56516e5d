//! Concurrent writers: no update is ever lost, and `If-Match` lets exactly one of several
//! writers of the same version win (the others get 412).
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use scimgw_e2e::{TestApp, both_backends, patch_op};
use serde_json::json;

const WRITERS: usize = 50;

fn emails_of(user: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = user["emails"]
        .as_array()
        .map(|e| e.iter().map(|e| e["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

async fn fifty_concurrent_patches_all_survive(app: TestApp) {
    let token = app.token("busy");
    let id = app.create_user(&token, "busy@example.com").await["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let replies = join_all((0..WRITERS).map(|i| {
        let body = patch_op(json!([{"op":"add","path":"emails","value":[{"value": format!("e{i:02}@example.com")}]}]));
        let (app, token, path) = (&app, &token, &path);
        async move { app.patch(token, path, &body).await }
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let user = app.get(&token, &path).await.body;
    let mut expected: Vec<String> = (0..WRITERS).map(|i| format!("e{i:02}@example.com")).collect();
    expected.sort();
    assert_eq!(emails_of(&user), expected, "every concurrent add survives");
    assert_eq!(user["meta"]["version"], format!("W/\"{}\"", WRITERS + 1), "one version per write");
    // Each reply saw its own write: its version is unique.
    let mut versions: Vec<String> =
        replies.iter().map(|r| r.body["meta"]["version"].as_str().unwrap().to_owned()).collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), WRITERS);
}
both_backends!(fifty_concurrent_patches_all_survive);

async fn with_if_match_on_one_version_exactly_one_writer_wins(app: TestApp) {
    let token = app.token("busy");
    let created = app.create_user(&token, "contended@example.com").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let etag = created["meta"]["version"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let replies = join_all((0..20).map(|i| {
        let body = patch_op(json!([{"op":"add","path":"emails","value":[{"value": format!("w{i:02}@example.com")}]}]))
            .to_string();
        let (app, path, auth, etag) = (&app, &path, &auth, &etag);
        async move {
            let headers = [
                ("authorization", auth.as_str()),
                ("if-match", etag.as_str()),
                ("content-type", "application/scim+json"),
            ];
            (i, app.request(Method::PATCH, path, &headers, Some(body.as_bytes())).await)
        }
    }))
    .await;
    let winners: Vec<usize> = replies.iter().filter(|(_, r)| r.status == StatusCode::OK).map(|(i, _)| *i).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer of {etag} wins: {:?}",
        replies.iter().map(|(_, r)| r.status).collect::<Vec<_>>()
    );
    for (_, r) in replies.iter().filter(|(_, r)| r.status != StatusCode::OK) {
        r.assert_error(412, None, "a loser of the If-Match race");
    }
    let user = app.get(&token, &path).await.body;
    assert_eq!(emails_of(&user), vec![format!("w{:02}@example.com", winners[0])], "the winner's write, and only it");
    assert_eq!(user["meta"]["version"], "W/\"2\"");

    // The losers read again and retry with the new ETag, one after another: nothing is lost.
    for (i, r) in &replies {
        if r.status == StatusCode::OK {
            continue;
        }
        let current = app.get(&token, &path).await;
        let etag = current.header("etag").unwrap().to_owned();
        let body = patch_op(json!([{"op":"add","path":"emails","value":[{"value": format!("w{i:02}@example.com")}]}]))
            .to_string();
        let headers =
            [("authorization", auth.as_str()), ("if-match", etag.as_str()), ("content-type", "application/scim+json")];
        let r = app.request(Method::PATCH, &path, &headers, Some(body.as_bytes())).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let user = app.get(&token, &path).await.body;
    assert_eq!(emails_of(&user).len(), 20);
}
both_backends!(with_if_match_on_one_version_exactly_one_writer_wins);

async fn with_if_match_concurrent_puts_and_deletes_have_one_winner(app: TestApp) {
    let token = app.token("busy");
    let created = app.create_user(&token, "put-race@example.com").await;
    let path = format!("/Users/{}", created["id"].as_str().unwrap());
    let auth = format!("Bearer {token}");
    let replies = join_all((0..10).map(|i| {
        let body = json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
                          "userName":"put-race@example.com","title": format!("t{i}")})
        .to_string();
        let (app, path, auth) = (&app, &path, &auth);
        async move {
            let headers =
                [("authorization", auth.as_str()), ("if-match", "W/\"1\""), ("content-type", "application/scim+json")];
            if i == 9 {
                app.request(Method::DELETE, path, &headers[..2], None).await
            } else {
                app.request(Method::PUT, path, &headers, Some(body.as_bytes())).await
            }
        }
    }))
    .await;
    let won = replies.iter().filter(|r| r.status.is_success()).count();
    assert_eq!(won, 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| !r.status.is_success()) {
        r.assert_error(412, None, "a loser of the If-Match race");
    }
}
both_backends!(with_if_match_concurrent_puts_and_deletes_have_one_winner);

async fn concurrent_member_adds_to_one_group_all_survive(app: TestApp) {
    let token = app.token("busy");
    let mut users = Vec::new();
    for i in 0..WRITERS {
        users.push(app.create_user(&token, &format!("m{i:02}@example.com")).await["id"].as_str().unwrap().to_owned());
    }
    let gid = app.create_group(&token, "Crowd", &[]).await["id"].as_str().unwrap().to_owned();
    let path = format!("/Groups/{gid}");
    let replies = join_all(users.iter().enumerate().map(|(i, uid)| {
        // Alternate the shapes Entra and Okta send.
        let op = if i % 2 == 0 {
            json!({"op":"Add","path":"members","value":[{"value": uid}]})
        } else {
            json!({"op":"add","value":{"members":[{"value": uid}]}})
        };
        let (app, token, path) = (&app, &token, &path);
        async move { app.patch(token, path, &patch_op(json!([op]))).await }
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected, "every concurrent member add survives");

    // Concurrent removals of half and a rename at the same time.
    let mut replies = join_all(users.iter().step_by(2).map(|uid| {
        let (app, token, path) = (&app, &token, &path);
        let op = json!({"op":"remove","path": format!("members[value eq \"{uid}\"]")});
        async move { app.patch(token, path, &patch_op(json!([op]))).await }
    }))
    .await;
    replies
        .push(app.patch(&token, &path, &patch_op(json!([{"op":"replace","path":"displayName","value":"Half"}]))).await);
    for r in &replies {
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    }
    let mut expected: Vec<String> = users.iter().skip(1).step_by(2).cloned().collect();
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected);
    assert_eq!(app.get(&token, &path).await.body["displayName"], "Half");
}
both_backends!(concurrent_member_adds_to_one_group_all_survive);

async fn concurrent_creates_of_one_user_name_make_one_user(app: TestApp) {
    let token = app.token("busy");
    let replies = join_all((0..20).map(|i| {
        let name = if i % 2 == 0 { "Twin@Example.com" } else { "twin@example.com" };
        let (app, token) = (&app, &token);
        async move {
            app.post(
                token,
                "/Users",
                &json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName": name}),
            )
            .await
        }
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    for r in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        r.assert_error(409, Some("uniqueness"), "a losing create");
    }
    let r = app.get(&token, "/Users").await;
    assert_eq!(r.total(), 1);
}
both_backends!(concurrent_creates_of_one_user_name_make_one_user);
