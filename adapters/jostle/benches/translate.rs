//! The adapter's hot path, run once per delivery: rules (`validate`) and translation of a typical
//! Entra-provisioned user into Jostle's SCIM body.
#![expect(clippy::expect_used, reason = "a bench whose fixtures do not parse should stop loudly")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scimgw_adapter::{Secret, TargetConfig};
use serde_json::{Map, Value, json};

fn entra_user() -> Map<String, Value> {
    let v = json!({
        "schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id":"6a1f0f2e-8d2a-4f8e-bf98-7363c4aed4ef",
        "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com",
        "active":true,"displayName":"Test User","title":"Engineer",
        "emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
        "phoneNumbers":[{"type":"work","value":"+1 555 0100"},{"type":"mobile","value":"+1 555 0101"}],
        "addresses":[{"type":"work","locality":"Vancouver","country":"CA"}],
        "name":{"formatted":"Test User","familyName":"User","givenName":"Test"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701984"}
    });
    v.as_object().expect("an object").clone()
}

fn benches(c: &mut Criterion) {
    let target: TargetConfig =
        serde_json::from_value(json!({"name": "j", "kind": "jostle", "base_url": "https://jostle.example/scim"}))
            .expect("a target");
    let adapter = scimgw_adapter_jostle::construct(&target, Secret::new("t")).expect("the adapter");
    let user = entra_user();
    c.bench_function("adapter/jostle_validate", |b| b.iter(|| adapter.validate(black_box(&user))));
    c.bench_function("adapter/jostle_translate", |b| {
        b.iter(|| adapter.translate(black_box(&user)).expect("translates"))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
