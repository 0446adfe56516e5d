//! Fuzz target: PATCH parsing and application on a realistic user and group. Any input must give
//! `Ok` or a 4xx `ScimError` — never a panic, a hang or a 5xx — and a successful PATCH must give
//! a resource that validates again unchanged. Both attribute policies run: strict (unknown
//! attributes refused) and the gateway's default (unknown attributes dropped, unknown extensions
//! kept as sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scimgw_scim::messages::PatchRequest;
use scimgw_scim::patch::apply_patch;
use scimgw_scim::resource::validate_resource;
use scimgw_scim::schema::{DropHook, Registry, UnknownAttributes};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let mut lenient = Registry::default();
    lenient.set_unknown_attributes(UnknownAttributes::Accept(DropHook::NONE));
    for registry in [Registry::default(), lenient] {
        check(&registry, &body);
    }
});

fn check(registry: &Registry, body: &Value) {
    let user_schema = registry.resource("User").expect("User is built in");
    let group_schema = registry.resource("Group").expect("Group is built in");
    let user = validate_resource(
        &user_schema,
        json!({
            "schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId":"0a21f0f2","userName":"Test_User@contoso.com","active":true,"displayName":"Test User",
            "emails":[{"primary":true,"type":"work","value":"Test_User@contoso.com"},{"type":"home","value":"h@x.org"}],
            "name":{"familyName":"familyName","givenName":"givenName"},
            "addresses":[{"type":"work","locality":"Oslo"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","manager":{"value":"m1"}}
        }),
    )
    .expect("fixture user is valid");
    let group = validate_resource(
        &group_schema,
        json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sales",
               "members":[{"value":"a"},{"value":"b","type":"User"}]}),
    )
    .expect("fixture group is valid");

    let request = match PatchRequest::from_json(body) {
        Ok(r) => r,
        Err(e) => {
            assert!((400..500).contains(&e.status), "parse error must be a 4xx: {e}");
            return;
        }
    };
    for (schema, resource) in [(&user_schema, &user), (&group_schema, &group)] {
        match apply_patch(schema, resource, &request) {
            Ok(out) => {
                let again = validate_resource(schema, Value::Object(out.resource.clone()))
                    .expect("a patched resource must validate again");
                assert_eq!(again, out.resource, "a patched resource must already be canonical");
            }
            Err(e) => assert!((400..500).contains(&e.status), "PATCH error must be a 4xx: {e}"),
        }
    }
}
