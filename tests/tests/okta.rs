//! Okta's provisioning sequences (shared/ENTRA.md, "Okta"): existence checks, create with a
//! password, updates by full PUT, activation by PATCH, imports by page, group push.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::StatusCode;
use scimgw_e2e::{GROUP_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

/// The body Okta POSTs and PUTs.
fn okta_user(user_name: &str, given: &str, active: bool) -> Value {
    json!({
        "schemas": [USER_URN],
        "userName": user_name,
        "name": {"givenName": given, "familyName": "Doe"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} Doe"),
        "locale": "en-US",
        "externalId": format!("okta-{user_name}"),
        "groups": [],
        "password": "t1meMa$heen",
        "active": active
    })
}

async fn setup_probes_get_list_responses_with_integer_counts(app: TestApp) {
    let token = app.token("okta");
    for path in ["/Users?startIndex=1&count=2", "/Groups?startIndex=1&count=100", "/Users?startIndex=1&count=100"] {
        let r = app.get(&token, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(r.body["totalResults"].is_u64(), "{path}: {}", r.text);
        assert!(r.body["itemsPerPage"].is_u64(), "{path}: {}", r.text);
        assert_eq!(r.body["startIndex"], 1, "{path}");
        assert_eq!(r.body["Resources"], json!([]), "{path}");
    }
}
both_backends!(setup_probes_get_list_responses_with_integer_counts);

async fn user_lifecycle_by_post_put_and_patch(app: TestApp) {
    let token = app.token("okta");
    let user_name = "jane.doe@example.com";
    let exists = format!("/Users?filter={}&startIndex=1&count=100", enc(&format!("userName eq \"{user_name}\"")));
    let r = app.get(&token, &exists).await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 0), "{}", r.text);

    let r = app.post(&token, "/Users", &okta_user(user_name, "Jane", true)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.is_empty(), "Okta treats an empty 2xx body as a failure");
    assert!(!r.text.contains("t1meMa$heen"), "the password is never returned: {}", r.text);
    assert!(r.body.get("password").is_none());
    assert!(r.body.get("groups").is_none(), "groups is readOnly and not stored: {}", r.text);
    let id = r.id();
    let path = format!("/Users/{id}");

    let r = app.get(&token, &exists).await;
    assert_eq!(r.total(), 1);
    assert_eq!(r.resources()[0]["id"], id.as_str());

    // Update: GET, then PUT the whole resource (Okta sends the id and meta back; both ignored).
    let mut current = app.get(&token, &path).await.body;
    current["name"]["givenName"] = json!("Janet");
    current["displayName"] = json!("Janet Doe");
    current["password"] = json!("n3wPa$$");
    let r = app.put(&token, &path, &current).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["name"]["givenName"], "Janet");
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    assert!(r.body.get("password").is_none());

    // PUT is a full replace: what the body leaves out is gone.
    let mut slim = okta_user(user_name, "Janet", true);
    slim.as_object_mut().unwrap().remove("locale");
    slim.as_object_mut().unwrap().remove("displayName");
    let r = app.put(&token, &path, &slim).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("locale").is_none(), "{}", r.text);
    assert!(r.body.get("displayName").is_none(), "{}", r.text);
    let r = app.get(&token, &format!("/Users?filter={}", enc("displayName eq \"Janet Doe\""))).await;
    assert_eq!(r.total(), 0, "the displayName column follows a PUT that drops it");

    // The same PUT again changes nothing and keeps the version.
    let before = app.get(&token, &path).await.body["meta"]["version"].clone();
    let again = app.put(&token, &path, &slim).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["meta"]["version"], before, "an identical PUT is not a change");

    // Deactivate by PUT active:false, then by PATCH; reactivate by PATCH.
    let r = app.put(&token, &path, &okta_user(user_name, "Janet", false)).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.text);
    let r = app.get(&token, &exists).await;
    assert_eq!(r.total(), 1, "inactive users are still found");
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"replace","value":{"active":true}}]))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(true)), "{}", r.text);
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"replace","value":{"active":false}}]))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.text);
    assert_eq!(r.body["name"]["givenName"], "Janet", "a PATCH of active leaves the rest");
    let r = app.get(&token, &path).await;
    assert_eq!((r.body["id"].clone(), r.body["active"].clone()), (json!(id), json!(false)));

    // A PUT to an id that does not exist is a 404, not a create.
    let r =
        app.put(&token, "/Users/00000000-0000-4000-8000-000000000000", &okta_user("x@example.com", "X", true)).await;
    r.assert_error(404, None, "PUT to an unknown id");
    // A PUT that renames onto another user's userName is a conflict.
    app.post(&token, "/Users", &okta_user("other@example.com", "Other", true)).await;
    let r = app.put(&token, &path, &okta_user("OTHER@example.com", "Janet", true)).await;
    r.assert_error(409, Some("uniqueness"), "PUT onto a taken userName");
}
both_backends!(user_lifecycle_by_post_put_and_patch);

/// A client configured with a lower-case base (`…/scim/v2/users/`), as some Okta app integrations
/// are typed, and a user with two work emails and two mobile phones.
async fn lower_case_paths_with_trailing_slashes_and_several_emails_of_one_type(app: TestApp) {
    let token = app.token("okta");
    let r = app.get(&token, "/users/?startIndex=1&count=2").await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 0), "{}", r.text);
    let mut body = okta_user("two.mails@example.com", "Two", true);
    body["emails"] = json!([{"primary": true, "value": "two.mails@example.com", "type": "work"},
                            {"value": "two.alias@example.com", "type": "work"}]);
    body["phoneNumbers"] =
        json!([{"value": "+1 555 0100", "type": "mobile"}, {"value": "+1 555 0101", "type": "mobile"}]);
    let r = app.post(&token, "/users/", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    assert!(r.header("location").is_some_and(|l| l.ends_with(&format!("/Users/{id}"))), "the canonical location");
    let exists = format!("/USERS?filter={}&startIndex=1&count=100", enc("userName eq \"two.mails@example.com\""));
    assert_eq!(app.get(&token, &exists).await.total(), 1);

    // Okta's update: GET, then PUT the whole resource back, both on the lower-case path.
    let mut current = app.get(&token, &format!("/users/{id}/")).await.body;
    assert_eq!(current["emails"].as_array().unwrap().len(), 2, "{current}");
    current["emails"][1]["value"] = json!("two.other@example.com");
    let r = app.put(&token, &format!("/users/{id}/"), &current).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let values: Vec<&str> = r.body["emails"].as_array().unwrap().iter().map(|e| e["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["two.mails@example.com", "two.other@example.com"]);
    assert_eq!(r.body["phoneNumbers"].as_array().unwrap().len(), 2);
    let r =
        app.patch(&token, &format!("/users/{id}"), &patch_op(json!([{"op":"replace","value":{"active":false}}]))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.text);

    // Group push on the lower-case path.
    let r =
        app.post(&token, "/groups/", &json!({"schemas":[GROUP_URN], "displayName":"Okta Group", "members":[]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let gid = r.id();
    let r = app
        .patch(
            &token,
            &format!("/groups/{gid}/"),
            &patch_op(json!([{"op":"add","path":"members","value":[{"value":id}]}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await, std::slice::from_ref(&id));
    assert_eq!(app.delete(&token, &format!("/groups/{gid}/")).await.status, StatusCode::NO_CONTENT);
}
both_backends!(lower_case_paths_with_trailing_slashes_and_several_emails_of_one_type);

async fn import_pages_are_complete_and_stable(app: TestApp) {
    let token = app.token("okta");
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            app.create_user(&token, &format!("import{i:02}@example.com")).await["id"].as_str().unwrap().to_owned(),
        );
    }
    let read_all = || async {
        let mut seen = Vec::new();
        for start in [1, 11, 21] {
            let r = app.get(&token, &format!("/Users?startIndex={start}&count=10")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(r.total(), 25);
            assert_eq!(r.body["startIndex"], start);
            assert_eq!(r.body["itemsPerPage"], if start == 21 { 5 } else { 10 });
            seen.extend(r.resources().iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        }
        seen
    };
    let first = read_all().await;
    assert_eq!(first.len(), 25);
    let mut sorted = first.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 25, "no user on two pages");
    // An update in between does not reorder the import.
    app.patch(&token, &format!("/Users/{}", created[0]), &patch_op(json!([{"op":"replace","value":{"active":false}}])))
        .await;
    assert_eq!(read_all().await, first, "the order is stable across reads and updates");
    assert_eq!(first, created, "without sortBy, pages are in creation order");
    // Past the end: an empty page with the total.
    let r = app.get(&token, "/Users?startIndex=26&count=10").await;
    assert_eq!((r.total(), r.resources().len()), (25, 0));
}
both_backends!(import_pages_are_complete_and_stable);

async fn group_push(app: TestApp) {
    let token = app.token("okta");
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.create_user(&token, &format!("push{i}@example.com")).await["id"].as_str().unwrap().to_owned());
    }
    let r = app.post(&token, "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"Engineering","members":[]})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(!r.text.is_empty());
    let gid = r.id();
    let path = format!("/Groups/{gid}");
    // members: null on the way back would be fine for Okta; absent is what we send.
    assert!(r.body.get("members").is_none_or(|m| m.is_null() || m == &json!([])), "{}", r.text);

    // Add with a value array and remove with a value filter, in one request.
    let r = app
        .patch(&token, &path, &patch_op(json!([{"op":"add","path":"members","value":[{"value":users[0]},{"value":users[1]},{"value":users[2]}]}])))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app
        .patch(
            &token,
            &path,
            &patch_op(json!([
                {"op":"add","path":"members","value":[{"value":users[3], "display":"push3@example.com"}]},
                {"op":"remove","path":format!("members[value eq \"{}\"]", users[0])}
            ])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let mut expected = vec![users[1].clone(), users[2].clone(), users[3].clone()];
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected);

    // A full replace of members.
    let r = app
        .patch(
            &token,
            &path,
            &patch_op(json!([{"op":"replace","path":"members","value":[{"value":users[4]},{"value":users[1]}]}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let mut expected = vec![users[4].clone(), users[1].clone()];
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected);

    // A path-less replace with the id and a new displayName (the id is readOnly and ignored).
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"replace","value":{"id":gid,"displayName":"Eng"}}]))).await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = app.get(&token, &path).await;
    assert_eq!((r.body["id"].clone(), r.body["displayName"].clone()), (json!(gid), json!("Eng")));
    assert_eq!(app.member_ids(&token, &gid).await, expected, "a rename keeps the members");

    // A path-less replace with an id that is not the group's does not move it either.
    let r = app
        .patch(&token, &path, &patch_op(json!([{"op":"replace","value":{"id":"something-else","displayName":"Eng2"}}])))
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    assert_eq!(app.get(&token, &path).await.body["id"], gid.as_str());

    // PUT of the whole group replaces the members too.
    let r = app
        .put(&token, &path, &json!({"schemas":[GROUP_URN],"id":gid,"displayName":"Eng","members":[{"value":users[0]}]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["members"], json!([app.member("User", &users[0], "push0@example.com")]), "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await, vec![users[0].clone()]);
    // A PUT without members empties the group.
    let r = app.put(&token, &path, &json!({"schemas":[GROUP_URN],"displayName":"Eng"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(app.member_ids(&token, &gid).await.is_empty());

    // members: null is "no members", on POST and on PUT.
    app.patch(&token, &path, &patch_op(json!([{"op":"add","path":"members","value":[{"value":users[3]}]}]))).await;
    let r = app.put(&token, &path, &json!({"schemas":[GROUP_URN],"displayName":"Eng","members":null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(app.member_ids(&token, &gid).await.is_empty());
    let r = app.post(&token, "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"Null","members":null})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Remove of all members with no value.
    app.patch(&token, &path, &patch_op(json!([{"op":"add","path":"members","value":[{"value":users[2]}]}]))).await;
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"remove","path":"members"}]))).await;
    assert!(r.status.is_success(), "{}", r.text);
    assert!(app.member_ids(&token, &gid).await.is_empty());

    let r = app.delete(&token, &path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    app.get(&token, &path).await.assert_error(404, None, "GET after DELETE");
}
both_backends!(group_push);

async fn get_of_an_unknown_user_is_a_scim_404(app: TestApp) {
    // Okta reads a 404 as "not found"; it must be a SCIM Error, not an HTML page.
    let token = app.token("okta");
    let r = app.get(&token, "/Users/00000000-0000-4000-8000-000000000000").await;
    r.assert_error(404, None, "unknown user");
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/scim+json")));
}
both_backends!(get_of_an_unknown_user_is_a_scim_404);
