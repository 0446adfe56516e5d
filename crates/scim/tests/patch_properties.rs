#![cfg(test)]
//! Property tests of the PATCH engine: adding a value and then removing it restores the resource.

use proptest::prelude::*;
use scimgw_scim::messages::PatchRequest;
use scimgw_scim::patch::apply_patch;
use scimgw_scim::resource::validate_resource;
use scimgw_scim::schema::{ENTERPRISE_USER_SCHEMA, Registry};
use serde_json::{Map, Value, json};

const TYPES: [&str; 3] = ["work", "home", "other"];

/// A user as Entra or Okta might create it, in canonical stored form.
fn user() -> impl Strategy<Value = Map<String, Value>> {
    (
        "[a-z][a-z0-9._-]{0,11}",
        proptest::option::of("[A-Za-z ]{1,12}"),
        proptest::option::of("[A-Za-z]{1,8}"),
        proptest::sample::subsequence(TYPES.to_vec(), 0..=3),
        proptest::option::of(0usize..3),
        proptest::option::of("[A-Za-z]{1,8}"),
        any::<bool>(),
    )
        .prop_map(|(user_name, display, given, types, primary, department, active)| {
            let emails: Vec<Value> = types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let mut e = json!({"value": format!("{user_name}.{t}@example.com"), "type": t});
                    if primary == Some(i) {
                        e["primary"] = json!(true);
                    }
                    e
                })
                .collect();
            let mut body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_SCHEMA],
                "userName": user_name, "active": active, "emails": emails,
            });
            if let Some(d) = display {
                body["displayName"] = json!(d);
            }
            if let Some(g) = given {
                body["name"] = json!({"givenName": g});
            }
            if let Some(d) = department {
                body[ENTERPRISE_USER_SCHEMA] = json!({"department": d});
            }
            let reg = Registry::default();
            validate_resource(&reg.resource("User").unwrap(), body).unwrap()
        })
}

/// An (add, remove) pair of operation lists over a value the user does not have yet.
#[derive(Debug, Clone)]
enum Addition {
    Simple { attr: &'static str, value: String },
    PathlessSimple { attr: &'static str, value: String },
    Email { value: String },
    Extension { value: String },
    SubAttribute { value: String },
}

fn addition() -> impl Strategy<Value = Addition> {
    let text = "[A-Za-z0-9 .@'\"\\\\-]{1,16}";
    prop_oneof![
        (prop::sample::select(vec!["title", "nickName", "locale", "userType", "profileUrl"]), text)
            .prop_map(|(attr, value)| Addition::Simple { attr, value }),
        (prop::sample::select(vec!["title", "nickName", "timezone"]), text)
            .prop_map(|(attr, value)| Addition::PathlessSimple { attr, value }),
        "[a-z]{1,8}@added\\.example".prop_map(|value| Addition::Email { value }),
        text.prop_map(|value| Addition::Extension { value }),
        text.prop_map(|value| Addition::SubAttribute { value }),
    ]
}

fn ops(addition: &Addition, user: &Map<String, Value>) -> (Value, Value) {
    match addition {
        Addition::Simple { attr, value } => {
            (json!([{"op":"add","path":attr,"value":value}]), json!([{"op":"remove","path":attr}]))
        }
        Addition::PathlessSimple { attr, value } => (
            json!([{"op":"Add","value": Value::Object(Map::from_iter([((*attr).to_owned(), json!(value))]))}]),
            json!([{"op":"Remove","path":attr}]),
        ),
        Addition::Email { value } => {
            let used: Vec<&str> = user
                .get("emails")
                .and_then(Value::as_array)
                .map_or_else(Vec::new, |e| e.iter().filter_map(|v| v["type"].as_str()).collect());
            // An email without a type never clashes with the typed ones.
            let mut email = json!({"value": value});
            if let Some(t) = TYPES.iter().find(|t| !used.contains(t)) {
                email["type"] = json!(t);
            }
            (
                json!([{"op":"add","path":"emails","value":[email]}]),
                json!([{"op":"remove","path":format!("emails[value eq {}]", Value::String(value.clone()))}]),
            )
        }
        Addition::Extension { value } => (
            json!([{"op":"add","path":format!("{ENTERPRISE_USER_SCHEMA}:costCenter"),"value":value}]),
            json!([{"op":"remove","path":format!("{ENTERPRISE_USER_SCHEMA}:costCenter")}]),
        ),
        Addition::SubAttribute { value } => (
            json!([{"op":"add","path":"name.middleName","value":value}]),
            json!([{"op":"remove","path":"name.middleName"}]),
        ),
    }
}

fn run(user: &Map<String, Value>, ops: Value) -> (Map<String, Value>, bool) {
    let reg = Registry::default();
    let req = PatchRequest::from_json(&json!({"Operations": ops})).unwrap();
    let out = apply_patch(&reg.resource("User").unwrap(), user, &req).unwrap();
    (out.resource, out.changed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn add_then_remove_restores_the_user(user in user(), addition in addition()) {
        let (add, remove) = ops(&addition, &user);
        let (added, changed) = run(&user, add);
        prop_assert!(changed, "the add must change the user");
        let (restored, _) = run(&added, remove);
        prop_assert_eq!(restored, user);
    }

    #[test]
    fn add_then_remove_of_group_members_restores_the_group(
        existing in proptest::collection::btree_set("[0-9a-f]{8}", 0..20),
        added in proptest::collection::btree_set("[g-z]{8}", 1..20),
        legacy in any::<bool>(),
    ) {
        let reg = Registry::default();
        let schema = reg.resource("Group").unwrap();
        let members: Vec<Value> = existing.iter().map(|id| json!({"value": id})).collect();
        let group = validate_resource(&schema, json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName":"G", "members": members})).unwrap();
        let add: Vec<Value> = added.iter().map(|id| json!({"value": id})).collect();
        let req = PatchRequest::from_json(&json!({"Operations":[{"op":"Add","path":"members","value":add.clone()}]})).unwrap();
        let with = apply_patch(&schema, &group, &req).unwrap().resource;
        prop_assert_eq!(with["members"].as_array().unwrap().len(), existing.len() + added.len());
        let removal = if legacy {
            json!([{"op":"Remove","path":"members","value":add}])
        } else {
            Value::Array(added.iter().map(|id| json!({"op":"remove","path":format!("members[value eq \"{id}\"]")})).collect())
        };
        let req = PatchRequest::from_json(&json!({"Operations": removal})).unwrap();
        let restored = apply_patch(&schema, &with, &req).unwrap().resource;
        prop_assert_eq!(restored, group);
    }
}

/// Paths a client may PATCH when unknown attributes are accepted: attributes and whole objects of
/// an extension the gateway does not know, unknown core attributes and sub-attributes, and
/// registered ones beside them.
fn lenient_path() -> impl Strategy<Value = Option<String>> {
    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
    proptest::option::of(prop::sample::select(vec![
        CUSTOM.to_owned(),
        format!("{CUSTOM}:costCode"),
        format!("{CUSTOM}:badge.id"),
        "urn:example:ext:tags".to_owned(),
        "adreses".to_owned(),
        "name.middleNmae".to_owned(),
        "displayName".to_owned(),
        format!("{ENTERPRISE_USER_SCHEMA}:department"),
        ENTERPRISE_USER_SCHEMA.to_owned(),
        "emails[type eq \"work\"].value".to_owned(),
    ]))
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[A-Za-z0-9:.]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "costCode",
                    "schemas",
                    "department",
                    "value",
                    "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User:costCode",
                    "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User",
                ]),
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// With unknown attributes accepted, any PATCH of these shapes either fails with a 4xx or
    /// gives a resource that validates again unchanged (what the gateway stores is canonical).
    #[test]
    fn lenient_patches_give_canonical_resources_or_a_4xx(
        user in user(),
        ops in prop::collection::vec(
            (prop::sample::select(vec!["add", "replace", "remove"]), lenient_path(), any_json()),
            1..5,
        ),
    ) {
        let mut reg = Registry::default();
        reg.set_unknown_attributes(scimgw_scim::schema::UnknownAttributes::Accept(scimgw_scim::schema::DropHook::NONE));
        let schema = reg.resource("User").unwrap();
        let operations: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, value)| {
                let mut o = json!({"op": op, "value": value});
                if let Some(p) = path {
                    o["path"] = json!(p);
                }
                o
            })
            .collect();
        let body = json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        let Ok(request) = PatchRequest::from_json(&body) else { return Ok(()) };
        match apply_patch(&schema, &user, &request) {
            Ok(out) => {
                let again = validate_resource(&schema, Value::Object(out.resource.clone()));
                prop_assert!(again.is_ok(), "{:?} from {}", again, body);
                prop_assert_eq!(again.unwrap(), out.resource, "{}", body);
            }
            Err(e) => prop_assert!((400..500).contains(&e.status), "{e}"),
        }
    }
}
