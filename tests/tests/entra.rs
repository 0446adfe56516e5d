//! Microsoft Entra ID's provisioning sequences (shared/ENTRA.md), request by request over HTTP,
//! in both PATCH dialects: legacy (no flag) and `?aadOptscim062020`.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::StatusCode;
use scimgw_e2e::{ENTERPRISE_URN, GROUP_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

/// The query flag Entra appends to every request when the tenant URL carries it.
const FLAG: &str = "aadOptscim062020";

/// `path` with the flag appended when `flagged`.
fn at(path: &str, flagged: bool) -> String {
    match (flagged, path.contains('?')) {
        (false, _) => path.to_owned(),
        (true, true) => format!("{path}&{FLAG}"),
        (true, false) => format!("{path}?{FLAG}"),
    }
}

/// The tenant URL as an admin typed it into Entra, which appends `/Users` or `/Groups` to it as
/// typed: with a trailing slash the requests go to `…/scim/v2//Users`.
#[derive(Clone, Copy)]
struct TenantUrl {
    /// `?aadOptscim062020` on the URL.
    flagged: bool,
    /// `https://host/scim/v2/` rather than `https://host/scim/v2`.
    trailing_slash: bool,
    /// A client that spells the endpoints in lower case (`/users`, `/groups`).
    lower_case: bool,
}

impl TenantUrl {
    const fn plain(flagged: bool) -> Self {
        Self { flagged, trailing_slash: false, lower_case: false }
    }

    /// `path` (`/Users…`) as this tenant URL makes it.
    fn at(self, path: &str) -> String {
        let mut p = path.to_owned();
        if self.lower_case {
            p = p.replacen("/Users", "/users", 1).replacen("/Groups", "/groups", 1);
        }
        if self.trailing_slash {
            p = format!("/{p}");
        }
        at(&p, self.flagged)
    }
}

/// `/Users?filter=…` with the filter encoded as Entra encodes it.
fn users_where(filter: &str) -> String {
    format!("/Users?filter={}", enc(filter))
}

/// Entra's create body from shared/ENTRA.md, for `user_name` and `external_id`.
fn entra_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER_URN, ENTERPRISE_URN],
        "externalId": external_id,
        "userName": user_name,
        "active": true,
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE_URN: {"department": "Sales", "employeeNumber": "701984"}
    })
}

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The work email of a user body.
fn work_email(user: &Value) -> Option<&str> {
    user["emails"].as_array()?.iter().find(|e| e["type"] == "work")?["value"].as_str()
}

async fn test_connection_with_a_random_guid_finds_nothing(app: TestApp) {
    let token = app.token("contoso");
    for flagged in [false, true] {
        let r = app.get(&token, &at(&users_where(&format!("userName eq \"{}\"", guid())), flagged)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.body["schemas"], json!([scimgw_e2e::LIST_URN]));
        assert_eq!(r.body["totalResults"], 0);
        assert_eq!(r.body["Resources"], json!([]));
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/scim+json")));
    }
    // Entra may also read one user and one group to check the credentials.
    for path in ["/Users?count=1", "/Groups?count=1", "/Groups?excludedAttributes=members&count=1"] {
        let r = app.get(&token, &at(path, true)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.total(), 0, "{path}");
    }
}
both_backends!(test_connection_with_a_random_guid_finds_nothing);

/// Create, look up, update in the given dialect, disable, hard-delete: one user's whole life.
async fn user_lifecycle(app: &TestApp, url: TenantUrl) {
    let flagged = url.flagged;
    let token = app.token("contoso");
    let user_name = format!("Test_User_{}@contoso.com", &guid()[..8]);
    let external_id = guid();

    // A query on the matching attribute comes first: zero hits.
    let r = app.get(&token, &url.at(&users_where(&format!("userName eq \"{user_name}\"")))).await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 0), "{}", r.text);

    let r = app.post(&token, &url.at("/Users"), &entra_user(&user_name, &external_id)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    let created = r.body.clone();
    assert_eq!(created["userName"], user_name.as_str(), "stored as sent");
    assert_eq!(created["externalId"], external_id.as_str());
    assert_eq!(created["active"], true);
    assert_eq!(created[ENTERPRISE_URN]["employeeNumber"], "701984");
    assert_eq!(created["name"]["formatted"], "givenName familyName");
    for key in ["created", "lastModified", "location", "version"] {
        assert!(created["meta"][key].is_string(), "meta.{key} in {created}");
    }
    assert_eq!(created["meta"]["resourceType"], "User");
    assert_eq!(created["meta"]["version"], "W/\"1\"");
    let location = created["meta"]["location"].as_str().unwrap();
    assert_eq!(location, app.url(&format!("/Users/{id}")));
    assert_eq!(r.header("location"), Some(location));
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/scim+json")));

    // The same user again (Entra retrying after a timeout): 409 uniqueness, ignoring case.
    let r = app.post(&token, &url.at("/Users"), &entra_user(&user_name.to_uppercase(), &guid())).await;
    r.assert_error(409, Some("uniqueness"), "duplicate userName");

    // Lookups on userName and externalId find it, with the id Entra cached.
    for filter in [
        format!("userName eq \"{user_name}\""),
        format!("externalId eq \"{external_id}\""),
        format!("userName eq \"{}\"", user_name.to_lowercase()),
        format!("userName eq \"{user_name}\" and externalId eq \"{external_id}\""),
    ] {
        let r = app.get(&token, &url.at(&users_where(&filter))).await;
        assert_eq!((r.status, r.total()), (StatusCode::OK, 1), "{filter}: {}", r.text);
        assert_eq!(r.resources()[0]["id"], id.as_str(), "{filter}");
    }

    // Entra's update, in its dialect.
    let manager = guid();
    let update = if flagged {
        patch_op(json!([
            {"op": "replace", "value": {
                "active": false, "name.givenName": "Ann", "displayName": "Ann Smith",
                format!("{ENTERPRISE_URN}:employeeNumber"): "701985"}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ann@contoso.com"},
            {"op": "add", "path": format!("{ENTERPRISE_URN}:manager"), "value": {"value": manager}}
        ]))
    } else {
        patch_op(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ann@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Smith"},
            {"op": "Add", "path": format!("{ENTERPRISE_URN}:department"), "value": "Ops"},
            {"op": "Add", "path": format!("{ENTERPRISE_URN}:manager"),
             "value": [{"$ref": null, "value": manager}]}
        ]))
    };
    let r = app.patch(&token, &url.at(&format!("/Users/{id}")), &update).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let patched = &r.body;
    assert_eq!(patched["id"], id.as_str(), "ids never change");
    assert_eq!(patched["active"], false, "a boolean, whatever the dialect sent");
    assert_eq!(work_email(patched), Some("ann@contoso.com"));
    assert_eq!(patched["emails"].as_array().unwrap().len(), 1, "replaced, not added");
    assert_eq!(patched[ENTERPRISE_URN]["manager"]["value"], manager.as_str());
    if flagged {
        assert_eq!(patched["name"]["givenName"], "Ann");
        assert_eq!(patched["name"]["familyName"], "familyName", "the other sub-attributes stay");
        assert_eq!(patched["displayName"], "Ann Smith");
        assert_eq!(patched[ENTERPRISE_URN]["employeeNumber"], "701985");
        assert_eq!(patched[ENTERPRISE_URN]["department"], "Sales");
    } else {
        assert_eq!(patched["name"]["familyName"], "Smith");
        assert_eq!(patched["name"]["givenName"], "givenName");
        assert_eq!(patched[ENTERPRISE_URN]["department"], "Ops");
        assert_eq!(patched[ENTERPRISE_URN]["employeeNumber"], "701984");
    }
    assert_eq!(patched["meta"]["version"], "W/\"2\"");
    assert_eq!(patched["meta"]["created"], created["meta"]["created"]);

    // Disabled users are still there for GET and for every filter.
    let r = app.get(&token, &url.at(&format!("/Users/{id}"))).await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(false)), "{}", r.text);
    for filter in
        [format!("userName eq \"{user_name}\""), format!("externalId eq \"{external_id}\""), "active eq false".into()]
    {
        let r = app.get(&token, &url.at(&users_where(&filter))).await;
        assert_eq!(r.total(), 1, "{filter}: {}", r.text);
        assert_eq!(r.resources()[0]["id"], id.as_str());
    }

    // Re-enabled the same way, then hard-deleted.
    let r = app
        .patch(
            &token,
            &url.at(&format!("/Users/{id}")),
            &patch_op(json!([{"op":"Replace","path":"active","value":"True"}])),
        )
        .await;
    assert_eq!((r.status, r.body["active"].clone()), (StatusCode::OK, json!(true)), "{}", r.text);
    let r = app.delete(&token, &url.at(&format!("/Users/{id}"))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(r.text.is_empty());
    let r = app.get(&token, &url.at(&format!("/Users/{id}"))).await;
    r.assert_error(404, None, "GET after DELETE");
    let r = app.delete(&token, &url.at(&format!("/Users/{id}"))).await;
    r.assert_error(404, None, "DELETE after DELETE");
    let r = app.get(&token, &url.at(&users_where(&format!("userName eq \"{user_name}\"")))).await;
    assert_eq!(r.total(), 0);
    // The userName is free again.
    let r = app.post(&token, &url.at("/Users"), &entra_user(&user_name, &external_id)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(r.id(), id, "a new user gets a new id");
}

async fn user_lifecycle_in_the_legacy_dialect(app: TestApp) {
    user_lifecycle(&app, TenantUrl::plain(false)).await;
}
both_backends!(user_lifecycle_in_the_legacy_dialect);

async fn user_lifecycle_with_aad_opt_flag(app: TestApp) {
    user_lifecycle(&app, TenantUrl::plain(true)).await;
}
both_backends!(user_lifecycle_with_aad_opt_flag);

async fn user_lifecycle_on_a_tenant_url_entered_with_a_trailing_slash(app: TestApp) {
    user_lifecycle(&app, TenantUrl { flagged: true, trailing_slash: true, lower_case: false }).await;
}
both_backends!(user_lifecycle_on_a_tenant_url_entered_with_a_trailing_slash);

async fn user_lifecycle_on_lower_case_endpoints(app: TestApp) {
    user_lifecycle(&app, TenantUrl { flagged: false, trailing_slash: true, lower_case: true }).await;
}
both_backends!(user_lifecycle_on_lower_case_endpoints);

async fn patch_op_names_in_any_case_and_booleans_as_strings(app: TestApp) {
    let token = app.token("contoso");
    let id = app.create_user(&token, "casing@contoso.com").await["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    for (op, value, expected) in [
        ("Replace", json!("False"), false),
        ("REPLACE", json!("True"), true),
        ("replace", json!("false"), false),
        ("Add", json!("TRUE"), true),
        ("ADD", json!(false), false),
        ("add", json!(true), true),
    ] {
        let r = app.patch(&token, &path, &patch_op(json!([{"op": op, "path": "active", "value": value}]))).await;
        assert_eq!(r.status, StatusCode::OK, "{op} {value}: {}", r.text);
        assert_eq!(r.body["active"], expected, "{op} {value}");
    }
    // A path-less replace with a string boolean, and member names in any case.
    let r = app
        .patch(
            &token,
            &path,
            &json!({"schemas":[scimgw_e2e::PATCH_URN],
            "operations":[{"OP":"Replace","VALUE":{"active":"False","title":"Boss"}}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["active"].clone(), r.body["title"].clone()), (json!(false), json!("Boss")));
    // The column the filters use follows the string booleans too.
    let r = app.get(&token, &users_where("active eq false")).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    let r = app.get(&token, &users_where("active eq true")).await;
    assert_eq!(r.total(), 0, "{}", r.text);
    // "Remove" of an attribute the user does not have changes nothing and is no error.
    let before = app.get(&token, &path).await.body["meta"]["version"].clone();
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"Remove","path":"nickName"}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["meta"]["version"], before, "a no-op does not bump the version");
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"Remove","path":"title"}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body.get("title").is_none(), "{}", r.text);
}
both_backends!(patch_op_names_in_any_case_and_booleans_as_strings);

async fn no_path_replace_takes_dotted_and_urn_qualified_keys(app: TestApp) {
    let token = app.token("contoso");
    let r = app.post(&token, "/Users", &entra_user("dotted@contoso.com", &guid())).await;
    let id = r.id();
    let r = app
        .patch(
            &token,
            &format!("/Users/{id}?{FLAG}"),
            &patch_op(json!([{"op":"replace","value":{
                "name.givenName": "Ann",
                "name.familyName": "Smith",
                "emails[type eq \"work\"].value": "ann@contoso.com",
                format!("{ENTERPRISE_URN}:department"): "Ops",
                format!("{ENTERPRISE_URN}:manager"): "boss-id",
                format!("{USER_URN}:displayName"): "Ann Smith",
                "externalId": "ext-2"
            }}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let u = &r.body;
    assert_eq!(u["name"]["givenName"], "Ann");
    assert_eq!(u["name"]["familyName"], "Smith");
    assert_eq!(u["name"]["formatted"], "givenName familyName", "untouched sub-attributes stay");
    assert_eq!(work_email(u), Some("ann@contoso.com"));
    assert_eq!(u[ENTERPRISE_URN]["department"], "Ops");
    assert_eq!(u[ENTERPRISE_URN]["employeeNumber"], "701984");
    assert_eq!(u[ENTERPRISE_URN]["manager"]["value"], "boss-id");
    assert_eq!(u["displayName"], "Ann Smith");
    assert_eq!(u["externalId"], "ext-2");
    assert!(u.get(format!("{USER_URN}:displayName")).is_none(), "no URN-qualified key is stored as such");
    let r = app.get(&token, &users_where("externalId eq \"ext-2\"")).await;
    assert_eq!(r.total(), 1, "the externalId column follows a path-less replace");
}
both_backends!(no_path_replace_takes_dotted_and_urn_qualified_keys);

async fn manager_as_a_string_an_object_or_a_one_element_array(app: TestApp) {
    let token = app.token("contoso");
    let id = app.create_user(&token, "report@contoso.com").await["id"].as_str().unwrap().to_owned();
    let path = format!("/Users/{id}");
    let manager_path = format!("{ENTERPRISE_URN}:manager");
    for (op, value, expected) in [
        ("Add", json!("m-1"), "m-1"),
        ("Replace", json!({"value": "m-2"}), "m-2"),
        ("Add", json!([{"$ref": null, "value": "m-3"}]), "m-3"),
        ("replace", json!({"value": "m-4", "$ref": null}), "m-4"),
    ] {
        let r = app.patch(&token, &path, &patch_op(json!([{"op": op, "path": manager_path, "value": value}]))).await;
        assert_eq!(r.status, StatusCode::OK, "{value}: {}", r.text);
        assert_eq!(r.body[ENTERPRISE_URN]["manager"]["value"], expected, "{value}: {}", r.text);
    }
    // The path-less form, as the flagged dialect sends it.
    let r = app
        .patch(
            &token,
            &format!("{path}?{FLAG}"),
            &patch_op(json!([{"op":"replace","value":{ manager_path.clone(): "m-5"}}])),
        )
        .await;
    assert_eq!(r.body[ENTERPRISE_URN]["manager"]["value"], "m-5", "{}", r.text);
    // On POST too.
    let mut body = entra_user("managed@contoso.com", &guid());
    body[ENTERPRISE_URN]["manager"] = json!("m-6");
    let r = app.post(&token, "/Users", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body[ENTERPRISE_URN]["manager"]["value"], "m-6");
    // And removed with no value.
    let r = app.patch(&token, &path, &patch_op(json!([{"op":"Remove","path": manager_path}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body[ENTERPRISE_URN].get("manager").is_none(), "{}", r.text);
}
both_backends!(manager_as_a_string_an_object_or_a_one_element_array);

async fn a_user_with_several_emails_of_one_type_is_provisioned(app: TestApp) {
    let token = app.token("contoso");
    let mut body = entra_user("twice@contoso.com", &guid());
    body["emails"] = json!([{"type":"work","value":"b@contoso.com"},
                            {"type":"work","value":"a@contoso.com","primary":true},
                            {"type":"mobile","value":"m@contoso.com"}]);
    body["phoneNumbers"] = json!([{"type":"mobile","value":"+1 555 0100"},{"type":"mobile","value":"+1 555 0101"}]);
    let r = app.post(&token, "/Users", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "RFC 7643 allows two work emails: {}", r.text);
    let id = r.id();
    assert_eq!(r.body["emails"].as_array().unwrap().iter().filter(|e| e["type"] == "work").count(), 2);
    // Entra's lookup and its legacy-dialect update, which changes every work email it matches.
    let r = app.get(&token, &users_where("userName eq \"twice@contoso.com\"")).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    let r = app
        .patch(
            &token,
            &format!("/Users/{id}"),
            &patch_op(json!([{"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let works: Vec<&Value> = r.body["emails"].as_array().unwrap().iter().filter(|e| e["type"] == "work").collect();
    assert_eq!(works.len(), 2);
    assert!(works.iter().all(|e| e["value"] == "new@contoso.com"), "{}", r.text);
    // A second work email added by PATCH is kept too.
    let id2 = app.post(&token, "/Users", &entra_user("once@contoso.com", &guid())).await.id();
    let r = app
        .patch(
            &token,
            &format!("/Users/{id2}?{FLAG}"),
            &patch_op(json!([{"op":"add","path":"emails","value":[{"type":"work","value":"second@contoso.com"}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["emails"].as_array().unwrap().iter().filter(|e| e["type"] == "work").count(), 2);
}
both_backends!(a_user_with_several_emails_of_one_type_is_provisioned);

/// Create a group, fill it in batches, remove members, rename, delete.
async fn group_lifecycle(app: &TestApp, url: TenantUrl) {
    let flagged = url.flagged;
    let token = app.token("contoso");
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(app.create_user(&token, &format!("member{i}@contoso.com")).await["id"].as_str().unwrap().to_owned());
    }
    let display_name = format!("Sales {}", &guid()[..8]);
    let groups_where = |f: &str| url.at(&format!("/Groups?filter={}&excludedAttributes=members", enc(f)));

    let r = app.get(&token, &groups_where(&format!("displayName eq \"{display_name}\""))).await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 0), "{}", r.text);

    let external_id = guid();
    let r = app
        .post(
            &token,
            &url.at("/Groups"),
            &json!({"schemas": [GROUP_URN, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                    "displayName": display_name, "externalId": external_id, "members": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let gid = r.id();
    assert_eq!(r.body["schemas"], json!([GROUP_URN]), "the Microsoft URN is accepted, not echoed");
    assert_eq!(r.body["displayName"], display_name.as_str());
    assert_eq!(r.body["externalId"], external_id.as_str());
    assert_eq!(r.body["meta"]["resourceType"], "Group");
    assert_eq!(r.header("location"), Some(app.url(&format!("/Groups/{gid}")).as_str()));
    let gpath = url.at(&format!("/Groups/{gid}"));

    // Members in batches, one operation per batch, and two batches in one request.
    let batch = |ids: &[String]| json!(ids.iter().map(|id| json!({"value": id})).collect::<Vec<_>>());
    let r =
        app.patch(&token, &gpath, &patch_op(json!([{"op":"Add","path":"members","value": batch(&users[0..3])}]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body");
    let r = app
        .patch(
            &token,
            &gpath,
            &patch_op(json!([
                {"op":"add","path":"members","value": batch(&users[3..5])},
                {"op":"ADD","path":"members","value": batch(&users[5..7])}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // Adding a member twice changes nothing.
    let r =
        app.patch(&token, &gpath, &patch_op(json!([{"op":"Add","path":"members","value": batch(&users[0..1])}]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected);
    let r = app.get(&token, &gpath).await;
    for m in r.body["members"].as_array().unwrap() {
        assert_eq!(m["type"], "User", "each member says what it is: {m}");
    }

    // The lookup Entra makes before each change: found, without the member list.
    let r = app.get(&token, &groups_where(&format!("displayName eq \"{display_name}\""))).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    assert_eq!(r.resources()[0]["id"], gid.as_str());
    assert!(r.resources()[0].get("members").is_none(), "excludedAttributes=members: {}", r.text);
    let r = app.get(&token, &groups_where(&format!("externalId eq \"{external_id}\""))).await;
    assert_eq!(r.total(), 1, "{}", r.text);

    // Removal: the legacy value array, or the flagged dialect's value filter.
    let remove = if flagged {
        patch_op(json!([
            {"op":"remove","path": format!("members[value eq \"{}\"]", users[0])},
            {"op":"remove","path": format!("members[value eq \"{}\"]", users[1])}
        ]))
    } else {
        patch_op(json!([{"op":"Remove","path":"members","value": batch(&users[0..2])}]))
    };
    let r = app.patch(&token, &gpath, &remove).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let mut expected: Vec<String> = users[2..].to_vec();
    expected.sort();
    assert_eq!(app.member_ids(&token, &gid).await, expected);
    // Removing someone who is not a member (Entra retrying) is fine.
    let r = app.patch(&token, &gpath, &remove).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await, expected);

    // Rename.
    let renamed = format!("{display_name} renamed");
    let r = app.patch(&token, &gpath, &patch_op(json!([{"op":"Replace","path":"displayName","value": renamed}]))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&token, &groups_where(&format!("displayName eq \"{renamed}\""))).await;
    assert_eq!(r.total(), 1, "{}", r.text);
    assert_eq!(r.resources()[0]["id"], gid.as_str(), "ids never change");
    let r = app.get(&token, &groups_where(&format!("displayName eq \"{display_name}\""))).await;
    assert_eq!(r.total(), 0, "{}", r.text);
    assert_eq!(app.member_ids(&token, &gid).await, expected, "a rename keeps the members");

    // A user deleted in Entra leaves the group too.
    let r = app.delete(&token, &format!("/Users/{}", users[6])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(!app.member_ids(&token, &gid).await.contains(&users[6]));

    let r = app.delete(&token, &gpath).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.get(&token, &gpath).await.assert_error(404, None, "GET group after DELETE");
    app.patch(&token, &gpath, &remove).await.assert_error(404, None, "PATCH group after DELETE");
    // The members themselves are untouched.
    let r = app.get(&token, &format!("/Users/{}", users[2])).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn group_lifecycle_in_the_legacy_dialect(app: TestApp) {
    group_lifecycle(&app, TenantUrl::plain(false)).await;
}
both_backends!(group_lifecycle_in_the_legacy_dialect);

async fn group_lifecycle_with_aad_opt_flag(app: TestApp) {
    group_lifecycle(&app, TenantUrl::plain(true)).await;
}
both_backends!(group_lifecycle_with_aad_opt_flag);

async fn group_lifecycle_on_lower_case_endpoints_and_a_trailing_slash(app: TestApp) {
    group_lifecycle(&app, TenantUrl { flagged: true, trailing_slash: true, lower_case: true }).await;
}
both_backends!(group_lifecycle_on_lower_case_endpoints_and_a_trailing_slash);

async fn group_patch_add_records_the_member_type(app: TestApp) {
    // A regression: members added by PATCH came back without "type" (POST filled it in).
    let token = app.token("contoso");
    let uid = app.create_user(&token, "typed@contoso.com").await["id"].as_str().unwrap().to_owned();
    let inner = app.create_group(&token, "Inner", &[]).await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Outer", &[]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op":"Add","path":"members","value":[{"value": uid}, {"value": inner}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid}")).await;
    let members = r.body["members"].as_array().unwrap();
    let type_of = |id: &str| members.iter().find(|m| m["value"] == id).map(|m| m["type"].clone());
    assert_eq!(type_of(&uid), Some(json!("User")), "{}", r.text);
    assert_eq!(type_of(&inner), Some(json!("Group")), "{}", r.text);
    // A type the client got wrong is corrected from what the member is.
    let gid2 = app.create_group(&token, "Other", &[]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid2}"),
            &patch_op(json!([{"op":"add","path":"members","value":[{"value": uid, "type": "Group"}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid2}")).await;
    assert_eq!(r.body["members"], json!([app.member("User", &uid, "typed@contoso.com")]), "{}", r.text);
    // Path-less add and replace of members (Okta) record it too.
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid2}"),
            &patch_op(json!([{"op":"replace","value":{"members":[{"value": inner}]}}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid2}")).await;
    assert_eq!(r.body["members"], json!([app.member("Group", &inner, "Inner")]), "{}", r.text);
}
both_backends!(group_patch_add_records_the_member_type);

async fn group_patch_answers_with_the_group_when_asked(app: TestApp) {
    let token = app.token("contoso");
    let uid = app.create_user(&token, "asked@contoso.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Asked", &[]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &patch_op(json!([{"op":"Add","path":"members","value":[{"value": uid}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], gid.as_str());
    assert!(r.body.get("members").is_none(), "{}", r.text);
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid}?attributes=members"),
            &patch_op(json!([{"op":"Replace","path":"displayName","value":"Asked 2"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["members"], json!([app.member("User", &uid, "asked@contoso.com")]), "{}", r.text);
    assert!(r.body.get("displayName").is_none(), "attributes=members returns only members (and id): {}", r.text);
}
both_backends!(group_patch_answers_with_the_group_when_asked);

async fn member_operations_the_fast_path_does_not_cover_still_work(app: TestApp) {
    // A filter on `type` sends the whole PATCH through the engine on the full member list;
    // members added in that PATCH get their type too.
    let token = app.token("contoso");
    let u1 = app.create_user(&token, "one@contoso.com").await["id"].as_str().unwrap().to_owned();
    let u2 = app.create_user(&token, "two@contoso.com").await["id"].as_str().unwrap().to_owned();
    let inner = app.create_group(&token, "Nested", &[]).await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Mixed", &[&u1, &inner]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &token,
            &format!("/Groups/{gid}"),
            &patch_op(json!([
                {"op":"remove","path":"members[type eq \"Group\"]"},
                {"op":"add","path":"members","value":[{"value": u2}]}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&token, &format!("/Groups/{gid}")).await;
    let mut members = r.body["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    let mut expected = vec![app.member("User", &u1, "one@contoso.com"), app.member("User", &u2, "two@contoso.com")];
    expected.sort_by_key(|m| m["value"].as_str().unwrap().to_owned());
    assert_eq!(members, expected, "{}", r.text);
}
both_backends!(member_operations_the_fast_path_does_not_cover_still_work);
