//! Evaluator and validator tests on a user as Microsoft Entra ID creates it, with the default
//! registry (plus a small test extension for integer and decimal attributes).

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use scimgw_scim::ScimType;
use scimgw_scim::filter::{Filter, PatchPath, matches_element, parse_filter, parse_patch_path};
use scimgw_scim::schema::{Attribute, Registry, Schema};
use serde_json::{Value, json};

const TEST_EXT: &str = "urn:example:params:scim:schemas:extension:test:2.0:User";

fn registry() -> Registry {
    let mut reg = Registry::default();
    let ext = Schema {
        id: TEST_EXT.into(),
        name: "TestUser".into(),
        description: String::new(),
        attributes: vec![Attribute::integer("level"), Attribute::decimal("score"), Attribute::binary("badge")],
    };
    reg.register_extension(ext, "User").unwrap();
    reg
}

/// The user of ENTRA.md's create request, as the gateway stores it (with `id` and `meta`).
fn entra_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee@contoso.com",
        "active": true,
        "displayName": "Test User",
        "title": "",
        "emails": [
            {"primary": true, "type": "work", "value": "Test_User_ab6490ee@contoso.com"},
            {"primary": "False", "type": "home", "value": "tüser@example.org"}
        ],
        "meta": {
            "resourceType": "User",
            "created": "2024-03-01T09:00:00Z",
            "lastModified": "2024-03-02T10:30:00+01:00",
            "location": "https://scimgw.example/scim/v2/Users/2819c223-7f76-453a-919d-413861904646",
            "version": "W/\"1\""
        },
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        "addresses": [{}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales", "employeeNumber": "701984", "manager": {"value": "26118915-6090"}
        },
        "urn:example:params:scim:schemas:extension:test:2.0:User": {"level": 3, "score": 2.5, "badge": "QUJD"}
    })
}

#[track_caller]
fn matches(filter: &str) -> bool {
    let reg = registry();
    let schema = reg.resource("User").unwrap();
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    f.validate(&schema).unwrap_or_else(|e| panic!("{filter}: {e}"));
    f.matches(&entra_user(), &schema)
}

#[track_caller]
fn assert_matches(filters: &[&str]) {
    for f in filters {
        assert!(matches(f), "{f} should match");
    }
}

#[track_caller]
fn assert_no_match(filters: &[&str]) {
    for f in filters {
        assert!(!matches(f), "{f} should not match");
    }
}

#[track_caller]
fn invalid(filter: &str) -> String {
    let reg = registry();
    let schema = reg.resource("User").unwrap();
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
    let e = f.validate(&schema).expect_err(filter);
    assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidFilter)), "{filter}");
    // Unvalidated, the same filter is evaluated without panicking.
    let _ = f.matches(&entra_user(), &schema);
    e.detail
}

#[test]
fn entra_matching_queries_find_the_user() {
    assert_matches(&[
        r#"userName eq "Test_User_ab6490ee@contoso.com""#,
        r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
        r#"userName eq "Test_User_ab6490ee@contoso.com" and externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
    ]);
    assert_no_match(&[r#"userName eq "5e1d3f0c-39a8-4c5e-9a5b-2b6e5a6f0d11""#]);
}

#[test]
fn filter_on_username_is_case_insensitive() {
    assert_matches(&[
        r#"userName eq "test_user_AB6490EE@CONTOSO.com""#,
        r#"USERNAME eq "Test_User_ab6490ee@contoso.com""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:username sw "TEST_""#,
        r#"userName ew "@Contoso.COM""#,
        r#"userName co "AB6490""#,
    ]);
}

#[test]
fn case_exact_attributes_compare_exactly() {
    assert_matches(&[r#"id eq "2819c223-7f76-453a-919d-413861904646""#]);
    assert_no_match(&[
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
        r#"externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF""#,
        r#"externalId sw "0A21""#,
        r#"meta.resourceType eq "user""#,
    ]);
}

#[test]
fn non_ascii_strings_fold_case_too() {
    assert_matches(&[r#"emails.value eq "TÜSER@example.org""#, r#"emails co "ÜSER@""#]);
}

#[test]
fn multi_valued_attributes_match_if_any_value_matches() {
    assert_matches(&[
        r#"emails.type eq "home""#,
        r#"emails.type eq "work""#,
        // A complex attribute without a sub-attribute compares its `value` (RFC 7644 §3.4.2.2).
        r#"emails co "contoso.com""#,
        r#"emails co "example.org""#,
        r#"schemas eq "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
    ]);
    assert_no_match(&[r#"emails.type eq "other""#, r#"emails co "example.net""#]);
}

#[test]
fn value_filters_match_within_one_element() {
    assert_matches(&[
        r#"emails[type eq "work" and value co "@contoso.com"]"#,
        r#"emails[type eq "home" and primary eq false]"#,
        r#"emails[type eq "work"].value ew "contoso.com""#,
        r#"emails[not (primary eq true)]"#,
    ]);
    // Both conditions hold on the user, but never on the same email.
    assert_no_match(&[r#"emails[type eq "home" and value co "@contoso.com"]"#, r#"emails[type eq "fax"]"#]);
}

#[test]
fn matches_element_tests_one_element_for_patch() {
    let reg = registry();
    let schema = reg.resource("User").unwrap();
    let emails = schema.resolve(None, "emails", None).unwrap().attribute;
    let PatchPath::ValuePath { filter, .. } = parse_patch_path(r#"emails[type eq "WORK"].value"#).unwrap() else {
        panic!("not a value path");
    };
    let user = entra_user();
    let hits: Vec<bool> =
        user["emails"].as_array().unwrap().iter().map(|e| matches_element(&filter, e, emails)).collect();
    assert_eq!(hits, [true, false]);
    assert!(!matches_element(&filter, &json!("work"), emails));
    let group = reg.resource("Group").unwrap();
    let members = group.resolve(None, "members", None).unwrap().attribute;
    let f = parse_filter(r#"value eq "abc""#).unwrap();
    assert!(matches_element(&f, &json!({"value": "abc", "display": "Ann"}), members));
    // RFC 7643 §8.7.1 makes members.value case-insensitive.
    assert!(matches_element(&f, &json!({"value": "ABC"}), members));
    assert!(!matches_element(&f, &json!({"value": "abcd"}), members));
}

#[test]
fn extension_attributes_are_read_under_their_urn() {
    assert_matches(&[
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#,
        r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:employeeNumber eq "701984""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090""#,
    ]);
    assert_no_match(&[r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#]);
}

#[test]
fn date_times_compare_chronologically() {
    // lastModified is 2024-03-02T09:30:00Z, written with a +01:00 offset.
    assert_matches(&[
        r#"meta.lastModified eq "2024-03-02T09:30:00Z""#,
        r#"meta.lastModified eq "2024-03-02T09:30:00.000Z""#,
        r#"meta.lastModified gt "2024-03-02T09:29:59Z""#,
        r#"meta.lastModified ge "2024-03-02T09:30:00Z""#,
        r#"meta.lastModified lt "2024-03-02T10:00:00Z""#,
        r#"meta.lastModified le "2024-03-02T09:30:00""#,
        r#"meta.created lt "2024-03-02T10:30:00+01:00""#,
    ]);
    // As strings, "2024-03-02T10:30:00+01:00" > "2024-03-02T10:00:00Z"; chronologically it is not.
    assert_no_match(&[r#"meta.lastModified gt "2024-03-02T10:00:00Z""#]);
}

#[test]
fn numbers_compare_numerically() {
    assert_matches(&[
        &format!("{TEST_EXT}:level eq 3"),
        &format!("{TEST_EXT}:level eq 3.0"),
        &format!("{TEST_EXT}:level gt 2.5"),
        &format!("{TEST_EXT}:level lt 10"),
        &format!("{TEST_EXT}:score ge 2.5"),
        &format!("{TEST_EXT}:score lt 3"),
        &format!("{TEST_EXT}:score gt -1e3"),
    ]);
    assert_no_match(&[&format!("{TEST_EXT}:level gt 3"), &format!("{TEST_EXT}:score eq 2")]);
}

#[test]
fn booleans_equal_their_true_and_false_strings() {
    assert_matches(&[
        "active eq true",
        r#"active eq "True""#,
        r#"active ne "False""#,
        "emails[primary eq FALSE]",
        r#"emails[primary eq "false"]"#,
    ]);
    assert_no_match(&["active eq false", r#"active eq "FALSE""#, "active ne true"]);
}

#[test]
fn present_means_a_non_empty_value() {
    assert_matches(&["userName pr", "emails pr", "name pr", "emails.primary pr", "active pr"]);
    // `title` is "", `roles` is [], `addresses` is [{}], `nickName` is absent.
    assert_no_match(&["title pr", "roles pr", "addresses pr", "nickName pr", "name.middleName pr"]);
    assert_matches(&["title eq null", "roles eq null", "nickName eq null", "userName ne null"]);
    assert_no_match(&["userName eq null", "title ne null"]);
}

#[test]
fn ne_is_not_eq() {
    assert_matches(&[
        r#"userName ne "someone-else""#,
        r#"nickName ne "x""#, // absent: matches ne
        r#"emails.type ne "fax""#,
        r#"not (userName eq "someone-else")"#,
    ]);
    // One email is "work": the multi-valued attribute does not match ne "work".
    assert_no_match(&[r#"emails.type ne "work""#, r#"userName ne "TEST_USER_AB6490EE@contoso.com""#]);
}

#[test]
fn mismatched_json_types_do_not_match_and_do_not_panic() {
    let reg = registry();
    let schema = reg.resource("User").unwrap();
    let odd = json!({
        "userName": 42, "active": "maybe", "emails": "not-an-array", "name": ["x"], "meta": null,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": "oops"
    });
    for f in [
        r#"userName eq "42""#,
        "active eq true",
        r#"emails.value eq "x""#,
        r#"name.givenName eq "x""#,
        r#"meta.lastModified gt "2020-01-01T00:00:00Z""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
        r#"emails[type eq "work"]"#,
    ] {
        assert!(!parse_filter(f).unwrap().matches(&odd, &schema), "{f}");
    }
    assert!(!parse_filter("userName pr").unwrap().matches(&json!("not an object"), &schema));
}

#[test]
fn unknown_attributes_do_not_match_and_fail_validation() {
    let reg = registry();
    let schema = reg.resource("User").unwrap();
    let f: Filter = r#"favouriteColour eq "blue""#.parse().unwrap();
    assert!(!f.matches(&entra_user(), &schema));
    assert_eq!(invalid(r#"favouriteColour eq "blue""#), r#"unknown attribute "favouriteColour" in the filter"#);
}

#[test]
fn validation_names_the_attribute_and_the_rule() {
    for (filter, detail) in [
        (
            r#"department eq "Sales""#,
            r#"unknown attribute "department" in the filter; the extension attribute is written urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"#,
        ),
        (r#"name.nickName eq "x""#, r#"unknown sub-attribute "nickName" of name in the filter"#),
        (r#"userName.value eq "x""#, r#"userName has no sub-attributes, so "userName.value" is not a valid path"#),
        (
            r#"urn:example:no:such:schema:x eq "x""#,
            r#"the filter names the schema "urn:example:no:such:schema", which User resources do not have"#,
        ),
        ("active gt true", r#""gt" does not apply to active, a boolean attribute (use eq or ne)"#),
        (r#"active co "t""#, r#""co" does not apply to active, a boolean attribute (use eq or ne)"#),
        (
            r#"meta.lastModified sw "2024""#,
            r#""sw" does not apply to meta.lastModified, a dateTime attribute (use eq, ne, gt, ge, lt or le)"#,
        ),
        (
            &format!("{TEST_EXT}:level co 3"),
            &format!(r#""co" does not apply to {TEST_EXT}:level, an integer attribute (use eq, ne, gt, ge, lt or le)"#),
        ),
        (
            &format!(r#"{TEST_EXT}:badge gt "QQ==""#),
            &format!(r#""gt" does not apply to {TEST_EXT}:badge, a binary attribute (use eq or ne)"#),
        ),
        (r#"active eq "yes""#, "active is a boolean attribute: compare it with true or false"),
        ("userName eq 42", "userName is a string attribute: put the value in double quotes"),
        (
            &format!(r#"{TEST_EXT}:level eq "3""#),
            &format!("{TEST_EXT}:level is an integer attribute: compare it with a number, without quotes"),
        ),
        (
            r#"meta.lastModified gt "yesterday""#,
            r#"meta.lastModified is a dateTime attribute: compare it with a quoted date-time such as "2011-05-13T04:42:34Z""#,
        ),
        ("userName gt null", r#""gt null" is not a comparison (only eq null and ne null are), on userName"#),
        (r#"name eq "x""#, "name is a complex attribute; compare one of its sub-attributes, such as name.formatted"),
        (
            r#"userName[value eq "x"]"#,
            r#""userName" is a string attribute, so it cannot take a value filter in brackets (only complex attributes such as emails can)"#,
        ),
        (
            r#"emails.value[type eq "x"]"#,
            r#"a value filter applies to a complex attribute, not to the sub-attribute "emails.value""#,
        ),
        (r#"emails[kind eq "x"]"#, r#"unknown sub-attribute "kind" of emails in the filter"#),
        (
            r#"emails[value.x eq "x"]"#,
            r#"inside emails[…], name a sub-attribute of emails (such as value), found "value.x""#,
        ),
        (r#"emails[type eq 1]"#, "type is a string attribute: put the value in double quotes"),
    ] {
        assert_eq!(invalid(filter), detail, "{filter}");
    }
}

#[test]
fn valid_filters_pass_validation_on_users_and_groups() {
    let reg = registry();
    let group = reg.resource("Group").unwrap();
    for f in [r#"displayName eq "Sales""#, r#"members[value eq "x"]"#, "members pr", r#"schemas eq "x""#] {
        parse_filter(f).unwrap().validate(&group).unwrap();
    }
    assert!(parse_filter(r#"userName eq "x""#).unwrap().validate(&group).is_err());
    // `matches` validates first.
    assert_matches(&[r#"meta.location sw "https://""#, "name ne null"]);
    assert_no_match(&[
        // References are caseExact in the schema.
        r#"meta.location sw "HTTPS://""#,
        "name eq null",
        r#"x509Certificates.value eq "QUJD""#,
        "groups[$ref pr]",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref pr",
    ]);
}

#[test]
fn attributes_of_an_unregistered_extension_filter_by_their_stored_values() {
    use scimgw_scim::schema::{DropHook, UnknownAttributes};
    let custom = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    let mut reg = registry();
    reg.set_unknown_attributes(UnknownAttributes::Accept(DropHook::NONE));
    let schema = reg.resource("User").unwrap();
    let mut user = entra_user();
    user[custom] = json!({"costCode": "C-17", "remote": true, "badge": {"id": "B7"}});
    let check = |filter: &str| {
        let f = parse_filter(filter).unwrap();
        f.validate(&schema).unwrap_or_else(|e| panic!("{filter}: {e}"));
        f.matches(&user, &schema)
    };
    assert!(check(&format!("{custom}:costCode eq \"c-17\"")));
    assert!(check(&format!("{custom}:costCode sw \"C-\" and userName pr")));
    assert!(!check(&format!("{custom}:costCode eq \"C-18\"")));
    assert!(check(&format!("{custom}:remote eq true")));
    assert!(check(&format!("{custom}:badge.id eq \"B7\"")));
    assert!(!check(&format!("{custom}:missing pr")));
    // Strict (the registry's default): the unknown schema is refused.
    let strict = registry();
    let e = parse_filter(&format!("{custom}:costCode eq \"x\"")).unwrap().validate(&strict.resource("User").unwrap());
    assert_eq!(e.unwrap_err().scim_type, Some(ScimType::InvalidFilter));
}
