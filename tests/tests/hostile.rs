//! Hostile input over HTTP on both engines: requests built to make the gateway store what it must
//! not, or to work far longer than their size warrants (RELIABILITY.md, "Hostile input").
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

/// Data a request controls: how many values an attribute may hold, and group members whatever
/// shape of PATCH puts them there.
mod data {
    use reqwest::StatusCode;
    use scimgw_e2e::{GROUP_URN, TestApp, USER_URN, both_backends, patch_op};
    use serde_json::{Value, json};

    fn emails(n: usize, from: usize) -> Vec<Value> {
        (from..from + n).map(|i| json!({"type": "work", "value": format!("e{i}@contoso.example")})).collect()
    }

    /// The group's version, as a GET shows it.
    async fn version(app: &TestApp, token: &str, group: &str) -> Value {
        app.get(token, &format!("/Groups/{group}")).await.body["meta"]["version"].clone()
    }

    async fn a_multi_valued_attribute_holds_at_most_1000_values(app: TestApp) {
        let token = app.token("contoso");
        let r = app
            .post(&token, "/Users", &json!({"schemas": [USER_URN], "userName": "many", "emails": emails(1001, 0)}))
            .await;
        r.assert_error(400, Some("invalidValue"), "POST with 1,001 emails");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("emails") && detail.contains("1000"),
            "the detail names the attribute and limit: {detail}"
        );

        let r = app
            .post(&token, "/Users", &json!({"schemas": [USER_URN], "userName": "many", "emails": emails(1000, 0)}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "1,000 are accepted: {}", r.text);
        let id = r.id();
        let path = format!("/Users/{id}");

        // One more, in one operation or spread over several: the result counts.
        let r = app
            .patch(&token, &path, &patch_op(json!([{"op": "add", "path": "emails", "value": emails(1, 1000)}])))
            .await;
        r.assert_error(400, Some("invalidValue"), "PATCH add of the 1,001st email");
        assert!(r.body["detail"].as_str().unwrap().contains("emails"), "{}", r.text);
        let ops: Vec<Value> = (0..2)
            .map(|i| json!({"op": "add", "path": "emails[type eq \"home\" and value eq \"h{i}@x\"].value".replace("{i}", &i.to_string()), "value": format!("h{i}@x")}))
            .collect();
        let r = app.patch(&token, &path, &patch_op(json!(ops))).await;
        r.assert_error(400, Some("invalidValue"), "PATCH adds through value filters beyond 1,000");

        // Adding values already there is a no-op (RFC 7644 §3.5.2.1), whatever their case.
        let again: Vec<Value> = emails(20, 0)
            .into_iter()
            .map(|mut e| {
                e["value"] = json!(e["value"].as_str().unwrap().to_uppercase());
                e
            })
            .collect();
        let before = app.get(&token, &path).await.body;
        let r = app.patch(&token, &path, &patch_op(json!([{"op": "add", "path": "emails", "value": again}]))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["emails"].as_array().unwrap().len(), 1000);

        let mut put = before.clone();
        put["emails"] = json!(emails(5000, 0));
        let r = app.put(&token, &path, &put).await;
        r.assert_error(400, Some("invalidValue"), "PUT with 5,000 emails");
        let after = app.get(&token, &path).await.body;
        assert_eq!(after["emails"].as_array().unwrap().len(), 1000, "nothing refused was stored");
    }
    both_backends!(a_multi_valued_attribute_holds_at_most_1000_values);

    /// A group with one member `a`, a user `b` of the tenant not in it, and a user of another
    /// tenant: (token, group, a, b, foreign).
    async fn setup(app: &TestApp) -> (String, String, String, String, String) {
        let token = app.token("contoso");
        let a = app.create_user(&token, "a@contoso.example").await["id"].as_str().unwrap().to_owned();
        let b = app.create_user(&token, "b@contoso.example").await["id"].as_str().unwrap().to_owned();
        let other = app.token("fabrikam");
        let foreign = app.create_user(&other, "x@fabrikam.example").await["id"].as_str().unwrap().to_owned();
        let group = app.create_group(&token, "G", &[&a]).await["id"].as_str().unwrap().to_owned();
        (token, group, a, b, foreign)
    }

    async fn add_through_a_value_filter_checks_that_the_member_exists(app: TestApp) {
        let (token, group, a, b, foreign) = setup(&app).await;
        let path = format!("/Groups/{group}");
        let v0 = version(&app, &token, &group).await;
        for (what, id, value) in [
            ("a value naming nothing", "ghost".to_owned(), json!({"value": "ghost"})),
            ("another tenant's user", foreign.clone(), json!({"value": foreign})),
            ("a value without `value`", "ghost".to_owned(), json!({"type": "User"})),
        ] {
            let ops = json!([{"op": "add", "path": format!("members[value eq \"{id}\"]"), "value": value}]);
            let r = app.patch(&token, &path, &patch_op(ops)).await;
            r.assert_error(400, Some("invalidValue"), what);
            // The filter's value path with a URN, and as a path-less key.
            let ops = json!([{"op": "add", "path": format!("{GROUP_URN}:members[value eq \"{id}\"]"), "value": value}]);
            app.patch(&token, &path, &patch_op(ops)).await.assert_error(400, Some("invalidValue"), what);
            let ops = json!([{"op": "add", "value": {format!("members[value eq \"{id}\"]"): value}}]);
            app.patch(&token, &path, &patch_op(ops)).await.assert_error(400, Some("invalidValue"), what);
        }
        assert_eq!(app.member_ids(&token, &group).await, [a.as_str()]);
        assert_eq!(version(&app, &token, &group).await, v0, "nothing was written");

        // The same shape with a user of the tenant works, and the member gets its real type.
        let ops = json!([{"op": "add", "path": format!("members[value eq \"{b}\"]"), "value": {"value": b, "type": "Group"}}]);
        let r = app.patch(&token, &path, &patch_op(ops)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let got = app.get(&token, &path).await.body;
        let added = got["members"].as_array().unwrap().iter().find(|m| m["value"] == b.as_str()).unwrap();
        assert_eq!(added["type"], "User", "{got}");
    }
    both_backends!(add_through_a_value_filter_checks_that_the_member_exists);

    async fn a_members_value_is_immutable(app: TestApp) {
        let (token, group, a, b, foreign) = setup(&app).await;
        let path = format!("/Groups/{group}");
        for id in ["ghost", foreign.as_str(), b.as_str()] {
            for ops in [
                json!([{"op": "replace", "path": format!("members[value eq \"{a}\"].value"), "value": id}]),
                json!([{"op": "add", "path": format!("members[value eq \"{a}\"].value"), "value": id}]),
                json!([{"op": "replace", "path": "members.value", "value": id}]),
                json!([{"op": "replace", "value": {format!("members[value eq \"{a}\"].value"): id}}]),
                json!([{"op": "add", "path": format!("members[value eq \"{a}\"]"), "value": {"value": id}}]),
            ] {
                let r = app.patch(&token, &path, &patch_op(ops.clone())).await;
                r.assert_error(400, Some("mutability"), &format!("{ops}"));
                assert!(r.body["detail"].as_str().unwrap().contains("members.value"), "{}", r.text);
            }
        }
        let r = app
            .patch(
                &token,
                &path,
                &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{a}\"].value")}])),
            )
            .await;
        r.assert_error(400, Some("mutability"), "remove of a member's value");
        assert_eq!(app.member_ids(&token, &group).await, [a.as_str()]);

        // Replacing the whole value is another member: checked like any added one.
        for (what, id) in [("naming nothing", "ghost"), ("another tenant's", foreign.as_str())] {
            let ops = json!([{"op": "replace", "path": format!("members[value eq \"{a}\"]"), "value": {"value": id}}]);
            app.patch(&token, &path, &patch_op(ops)).await.assert_error(400, Some("invalidValue"), what);
        }
        assert_eq!(app.member_ids(&token, &group).await, [a.as_str()]);
        let ops = json!([{"op": "replace", "path": format!("members[value eq \"{a}\"]"), "value": {"value": b}}]);
        let r = app.patch(&token, &path, &patch_op(ops)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        assert_eq!(app.member_ids(&token, &group).await, [b]);
    }
    both_backends!(a_members_value_is_immutable);

    async fn every_patch_shape_that_ends_with_members_checks_them(app: TestApp) {
        let (token, group, a, b, foreign) = setup(&app).await;
        let path = format!("/Groups/{group}");
        let bad = ["ghost", foreign.as_str()];
        for id in bad {
            for ops in [
                json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
                json!([{"op": "replace", "path": "members", "value": [{"value": a}, {"value": id}]}]),
                json!([{"op": "add", "value": {"members": [{"value": id}]}}]),
                json!([{"op": "add", "value": {format!("{GROUP_URN}:members"): [{"value": id}]}}]),
                json!([{"op": "add", "path": format!("{GROUP_URN}:members"), "value": [{"value": id}]}]),
                // Through the general path: a filter the fast path does not take, then an add.
                json!([{"op": "remove", "path": "members[value sw \"zzz\"]"}, {"op": "add", "path": "members", "value": [{"value": id}]}]),
                json!([{"op": "add", "path": "members[value eq \"x\" and type eq \"User\"]", "value": {"value": id}}]),
            ] {
                let r = app.patch(&token, &path, &patch_op(ops.clone())).await;
                r.assert_error(400, Some("invalidValue"), &format!("{ops}"));
            }
        }
        assert_eq!(app.member_ids(&token, &group).await, [a.as_str()]);
        let ops = json!([{"op": "remove", "path": "members[value sw \"zzz\"]"}, {"op": "add", "path": "members", "value": [{"value": b}]}]);
        let r = app.patch(&token, &path, &patch_op(ops)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(app.member_ids(&token, &group).await, want);
    }
    both_backends!(every_patch_shape_that_ends_with_members_checks_them);

    /// A PATCH of many operations is computed before its write (off SQLite's writer thread), and
    /// still lands whole, once, under its `If-Match`.
    async fn a_patch_of_many_operations_applies_whole_and_keeps_if_match(app: TestApp) {
        let token = app.token("contoso");
        let id = app.create_user(&token, "ops@contoso.example").await["id"].as_str().unwrap().to_owned();
        let path = format!("/Users/{id}");
        let ops: Vec<Value> = (0..200)
            .map(|i| json!({"op": "add", "path": "emails", "value": [{"type": "work", "value": format!("o{}@x", i % 50)}]}))
            .chain([json!({"op": "replace", "path": "displayName", "value": "Many"})])
            .collect();
        let r = app
            .request(
                reqwest::Method::PATCH,
                &path,
                &[
                    ("authorization", &format!("Bearer {token}")),
                    ("content-type", "application/scim+json"),
                    ("if-match", "W/\"7\""),
                ],
                Some(patch_op(json!(ops)).to_string().as_bytes()),
            )
            .await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.text);
        let r = app.patch(&token, &path, &patch_op(json!(ops))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["emails"].as_array().unwrap().len(), 50);
        assert_eq!(r.body["displayName"], "Many");
        assert_eq!(r.body["meta"]["version"], "W/\"2\"");
        let r = app.patch(&token, &path, &patch_op(json!(ops))).await;
        assert_eq!(r.body["meta"]["version"], "W/\"2\"", "the same PATCH again changes nothing: {}", r.text);
    }
    both_backends!(a_patch_of_many_operations_applies_whole_and_keeps_if_match);
}
