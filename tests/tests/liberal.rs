//! What real SCIM clients send that RFC 7643/7644 allow, over HTTP on both engines: several values
//! of one `type`, unknown attributes and extensions (and `strict_attributes`), value filters in
//! `attributes`, a `schemas` key inside an extension's PATCH value, booleans as strings.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use reqwest::StatusCode;
use scimgw_e2e::{ENTERPRISE_URN, TestApp, USER_URN, both_backends, enc, patch_op};
use serde_json::{Value, json};

/// An extension an admin's custom Entra mapping sends, which the gateway has never heard of.
const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

fn emails_of(user: &Value, ty: &str) -> Vec<String> {
    user["emails"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["type"] == ty).map(|e| e["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

async fn several_values_of_one_type_are_accepted_and_patched_together(app: TestApp) {
    let token = app.token("contoso");
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN], "userName":"two.emails@contoso.example",
                "emails":[{"type":"work","value":"a@contoso.example","primary":true},
                          {"type":"work","value":"b@contoso.example"}],
                "phoneNumbers":[{"type":"mobile","value":"+1 555 0100"},{"type":"mobile","value":"+1 555 0101"}],
                "addresses":[{"type":"work","locality":"Oslo"},{"type":"work","locality":"Bergen"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    let user = app.get(&token, &format!("/Users/{id}")).await.body;
    assert_eq!(emails_of(&user, "work"), ["a@contoso.example", "b@contoso.example"]);
    assert_eq!(user["phoneNumbers"].as_array().unwrap().len(), 2);
    assert_eq!(user["addresses"].as_array().unwrap().len(), 2);

    // A value filter finds the second one.
    let filter = enc("emails[type eq \"work\" and value eq \"b@contoso.example\"]");
    let r = app.get(&token, &format!("/Users?filter={filter}")).await;
    assert_eq!(r.total(), 1, "{}", r.text);

    // RFC 7644 §3.5.2: a value path applies to every value it matches.
    let r = app
        .patch(
            &token,
            &format!("/Users/{id}"),
            &patch_op(json!([{"op":"replace","path":"addresses[type eq \"work\"].country","value":"NO"}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let countries: Vec<&Value> = r.body["addresses"].as_array().unwrap().iter().map(|a| &a["country"]).collect();
    assert_eq!(countries, [&json!("NO"), &json!("NO")]);

    // The same through PUT, as Okta updates.
    let mut put = user.clone();
    put["emails"] = json!([{"type":"work","value":"c@contoso.example"},{"type":"work","value":"d@contoso.example"}]);
    let r = app.put(&token, &format!("/Users/{id}"), &put).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(emails_of(&r.body, "work"), ["c@contoso.example", "d@contoso.example"]);

    // Still at most one primary, and the error says so.
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN], "userName":"two.primaries@contoso.example",
                "emails":[{"type":"work","value":"a@contoso.example","primary":true},
                          {"type":"home","value":"b@contoso.example","primary":true}]}),
        )
        .await;
    r.assert_error(400, Some("invalidValue"), "primary");
}
both_backends!(several_values_of_one_type_are_accepted_and_patched_together);

/// The value of `scimgw_scim_dropped_attributes_total` (0 before the first drop).
async fn dropped_count(app: &TestApp) -> f64 {
    let text = app.client.get(format!("{}/metrics", app.origin)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("scimgw_scim_dropped_attributes_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn unknown_attributes_are_dropped_and_unknown_extensions_kept(app: TestApp) {
    let token = app.token("contoso");
    let before = dropped_count(&app).await;
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN, ENTERPRISE_URN, CUSTOM], "userName":"custom@contoso.example",
                "adreses":[{"locality":"typo"}],
                "name":{"givenName":"Ann","middleNmae":"typo"},
                ENTERPRISE_URN:{"department":"Sales","costCentre":"typo"},
                CUSTOM:{"costCode":"C-17","region":"EU"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    for body in [&r.body, &app.get(&token, &format!("/Users/{id}")).await.body] {
        assert!(body.get("adreses").is_none(), "{body}");
        assert_eq!(body["name"], json!({"givenName":"Ann"}));
        assert_eq!(body[ENTERPRISE_URN], json!({"department":"Sales"}));
        assert_eq!(body[CUSTOM], json!({"costCode":"C-17","region":"EU"}));
        assert!(body["schemas"].as_array().unwrap().contains(&json!(CUSTOM)), "{body}");
    }
    assert!(dropped_count(&app).await >= before + 3.0, "each dropped attribute is counted");

    // Filterable by the core evaluator, projected by name.
    let r = app.get(&token, &format!("/Users?filter={}", enc(&format!("{CUSTOM}:costCode eq \"c-17\"")))).await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 1), "{}", r.text);
    let r = app.get(&token, &format!("/Users?filter={}", enc(&format!("{CUSTOM}:region eq \"US\"")))).await;
    assert_eq!((r.status, r.total()), (StatusCode::OK, 0), "{}", r.text);
    let r = app.get(&token, &format!("/Users/{id}?attributes={}", enc(&format!("{CUSTOM}:region")))).await;
    assert_eq!(r.body[CUSTOM], json!({"region":"EU"}), "{}", r.text);
    assert!(r.body.get("userName").is_none());

    // Entra's PATCH of a custom attribute, both dialects.
    let r = app
        .patch(
            &token,
            &format!("/Users/{id}"),
            &patch_op(json!([{"op":"Add","path":format!("{CUSTOM}:costCode"),"value":"C-18"},
                             {"op":"replace","value":{format!("{CUSTOM}:region"):"US","adreses":"typo"}}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body[CUSTOM], json!({"costCode":"C-18","region":"US"}));
    let r = app
        .patch(&token, &format!("/Users/{id}"), &patch_op(json!([{"op":"Replace","path":"nickNmae","value":"typo"}])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "an unknown PATCH path is dropped: {}", r.text);
}
both_backends!(unknown_attributes_are_dropped_and_unknown_extensions_kept);

async fn strict_attributes_refuses_unknown_attributes_naming_them(app: TestApp) {
    let token = app.token("contoso");
    let r = app
        .post(&token, "/Users", &json!({"schemas":[USER_URN], "userName":"typo@contoso.example", "adreses":[]}))
        .await;
    r.assert_error(400, Some("invalidSyntax"), "adreses");
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN, CUSTOM], "userName":"custom@contoso.example", CUSTOM:{"costCode":"1"}}),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"), "CustomExtensionName");
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN, ENTERPRISE_URN], "userName":"shoe@contoso.example", ENTERPRISE_URN:{"shoeSize":9}}),
        )
        .await;
    r.assert_error(400, Some("invalidSyntax"), "shoeSize");
    let id = app.create_user(&token, "ok@contoso.example").await["id"].as_str().unwrap().to_owned();
    for (ops, named) in [
        (json!([{"op":"Replace","path":"nickNmae","value":"x"}]), "nickNmae"),
        (json!([{"op":"add","path":"name.middle","value":"x"}]), "middle"),
        (json!([{"op":"add","value":{"shoeSize":9}}]), "shoeSize"),
    ] {
        let r = app.patch(&token, &format!("/Users/{id}"), &patch_op(ops)).await;
        r.assert_error(400, Some("invalidPath"), named);
    }
}
both_backends!(strict_attributes_refuses_unknown_attributes_naming_them, |c: &mut scimgw_e2e::Config| {
    c.strict_attributes = true;
});

async fn a_value_filter_in_attributes_reads_as_the_attribute(app: TestApp) {
    let token = app.token("contoso");
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN], "userName":"proj@contoso.example", "displayName":"P",
                "emails":[{"type":"work","value":"w@contoso.example"},{"type":"home","value":"h@contoso.example"}]}),
        )
        .await;
    let id = r.id();
    let work = enc("emails[type eq \"work\"]");
    let r = app.get(&token, &format!("/Users/{id}?attributes={work}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 2, "the attribute, not a filter on its values");
    assert!(r.body.get("displayName").is_none());
    let r = app
        .get(
            &token,
            &format!("/Users?excludedAttributes={work}&filter={}", enc("userName eq \"proj@contoso.example\"")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.resources()[0].get("emails").is_none());
    assert_eq!(r.resources()[0]["displayName"], "P");
}
both_backends!(a_value_filter_in_attributes_reads_as_the_attribute);

async fn an_extension_path_patch_ignores_a_schemas_key_in_its_value(app: TestApp) {
    let token = app.token("contoso");
    let id = app.create_user(&token, "ext@contoso.example").await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(
            &token,
            &format!("/Users/{id}"),
            &patch_op(json!([{"op":"add","path":ENTERPRISE_URN,
                "value":{"schemas":[ENTERPRISE_URN],"department":"Ops","employeeNumber":"7"}}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body[ENTERPRISE_URN], json!({"department":"Ops","employeeNumber":"7"}));
}
both_backends!(an_extension_path_patch_ignores_a_schemas_key_in_its_value);

async fn booleans_as_strings_are_stored_as_booleans(app: TestApp) {
    let token = app.token("contoso");
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN], "userName":"bools@contoso.example", "active":"True",
                "emails":[{"type":"work","value":"b@contoso.example","primary":"true"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    assert_eq!((&r.body["active"], &r.body["emails"][0]["primary"]), (&json!(true), &json!(true)));
    let r = app
        .patch(&token, &format!("/Users/{id}"), &patch_op(json!([{"op":"Replace","path":"active","value":"False"}])))
        .await;
    assert_eq!(r.body["active"], json!(false), "{}", r.text);
    let r = app
        .patch(&token, &format!("/Users/{id}"), &patch_op(json!([{"op":"replace","value":{"active":"TRUE"}}])))
        .await;
    assert_eq!(r.body["active"], json!(true), "{}", r.text);
    let mut put = app.get(&token, &format!("/Users/{id}")).await.body;
    put["active"] = json!("false");
    put["emails"][0]["primary"] = json!("False");
    let r = app.put(&token, &format!("/Users/{id}"), &put).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((&r.body["active"], &r.body["emails"][0]["primary"]), (&json!(false), &json!(false)));
    // Stored as booleans: the indexed `active` filter finds it.
    let r = app
        .get(&token, &format!("/Users?filter={}", enc("active eq false and userName eq \"bools@contoso.example\"")))
        .await;
    assert_eq!(r.total(), 1, "{}", r.text);
    // A string that is not a boolean is still a 400 naming the attribute.
    let r = app
        .patch(&token, &format!("/Users/{id}"), &patch_op(json!([{"op":"replace","path":"active","value":"yes"}])))
        .await;
    r.assert_error(400, Some("invalidValue"), "active");
}
both_backends!(booleans_as_strings_are_stored_as_booleans);

async fn what_stays_strict_says_why(app: TestApp) {
    let token = app.token("contoso");
    // A member naming nothing in the tenant: 400 naming the id.
    let r = app
        .post(
            &token,
            "/Groups",
            &json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName":"G",
                "members":[{"value":"no-such-user"}]}),
        )
        .await;
    r.assert_error(400, Some("invalidValue"), "member naming nothing");
    assert!(r.body["detail"].as_str().unwrap().contains("no-such-user"), "{}", r.text);
    // A filter value that is not JSON: 400 with the position.
    let r = app.get(&token, &format!("/Users?filter={}", enc("userName eq bob"))).await;
    r.assert_error(400, Some("invalidFilter"), "unquoted filter value");
    assert!(r.body["detail"].as_str().unwrap().contains("column"), "{}", r.text);
    // A filter on an unknown core attribute: a typo would silently match nothing.
    let r = app.get(&token, &format!("/Users?filter={}", enc("adreses pr"))).await;
    r.assert_error(400, Some("invalidFilter"), "unknown attribute in a filter");
    // A group PATCH answers 204.
    let g = app.create_group(&token, "Sales", &[]).await["id"].as_str().unwrap().to_owned();
    let r = app
        .patch(&token, &format!("/Groups/{g}"), &patch_op(json!([{"op":"replace","path":"displayName","value":"S"}])))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}
both_backends!(what_stays_strict_says_why);

async fn unknown_extensions_are_bounded_and_survive_a_get_put_round_trip(app: TestApp) {
    let token = app.token("contoso");
    // Thousands of invented URNs: one 400 naming the limit, not seconds of work on the writer.
    let mut body = json!({"schemas":[USER_URN], "userName":"many@contoso.example"});
    for i in 0..2_000 {
        body[format!("urn:x:{i}:User")] = json!({"a": 0});
    }
    let r = app.post(&token, "/Users", &body).await;
    r.assert_error(400, Some("invalidValue"), "too many unknown extensions");
    assert!(r.body["detail"].as_str().unwrap().contains("at most 16"), "{}", r.text);
    let id = app.create_user(&token, "ok@contoso.example").await["id"].as_str().unwrap().to_owned();
    let attrs: serde_json::Map<String, Value> = (0..2_000).map(|i| (format!("a{i}"), json!(i))).collect();
    let r = app.patch(&token, &format!("/Users/{id}"), &patch_op(json!([{"op":"add","value":{CUSTOM: attrs}}]))).await;
    r.assert_error(400, Some("invalidValue"), "too many attributes in one unknown extension");

    // Keys that would shadow registered attributes are dropped, and what is stored comes back
    // unchanged through GET and PUT.
    let r = app
        .post(
            &token,
            "/Users",
            &json!({"schemas":[USER_URN], "userName":"shadow@contoso.example",
                "name":{"givenName":"Real","familyName":"Person"},
                "urn:ietf:params:scim:schemas:core:2.0:User:name:givenName":"Evil",
                CUSTOM:{"p":1}, format!("{CUSTOM}:p:q"): 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.id();
    let got = app.get(&token, &format!("/Users/{id}")).await.body;
    assert_eq!(got["name"], json!({"givenName":"Real","familyName":"Person"}));
    let r = app.put(&token, &format!("/Users/{id}"), &got).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["meta"]["version"], got["meta"]["version"], "an identical PUT changes nothing: {}", r.text);
    assert_eq!(r.body[CUSTOM], json!({"p":1,"p:q":2}));
}
both_backends!(unknown_extensions_are_bounded_and_survive_a_get_put_round_trip);
