//! PATCH, validation and projection benchmarks on a typical Entra-provisioned user.
#![expect(clippy::expect_used, reason = "a bench whose fixtures do not parse should stop loudly")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scimgw_scim::messages::PatchRequest;
use scimgw_scim::patch::apply_patch;
use scimgw_scim::projection::Projection;
use scimgw_scim::resource::validate_resource;
use scimgw_scim::schema::Registry;
use serde_json::{Value, json};

fn entra_user() -> Value {
    json!({
        "schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com",
        "active":true,"displayName":"Test User",
        "emails":[{"primary":true,"type":"work","value":"Test_User_ab6490ee@contoso.com"}],
        "meta":{"resourceType":"User"},
        "name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
        "roles":[],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales","employeeNumber":"701984"}
    })
}

fn entra_patch() -> Value {
    json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
     "Operations":[
       {"op":"Replace","path":"active","value":"False"},
       {"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"},
       {"op":"Replace","path":"name.familyName","value":"Smith"},
       {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"},
       {"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        "value":[{"$ref":null,"value":"26118915-6090-4610-87a4-b2a8f2f9c52d"}]}]})
}

fn benches(c: &mut Criterion) {
    let reg = Registry::default();
    let schema = reg.resource("User").expect("User resource type");
    let user = validate_resource(&schema, entra_user()).expect("valid user");
    let body = entra_patch();
    let request = PatchRequest::from_json(&body).expect("valid PatchOp");

    c.bench_function("patch/apply_entra_5_ops", |b| {
        b.iter(|| apply_patch(&schema, black_box(&user), black_box(&request)).expect("patch applies"))
    });
    c.bench_function("patch/parse_and_apply_entra_5_ops", |b| {
        b.iter(|| {
            let req = PatchRequest::from_json(black_box(&body)).expect("valid PatchOp");
            apply_patch(&schema, &user, &req).expect("patch applies")
        })
    });
    let raw = entra_user();
    c.bench_function("resource/validate_entra_create", |b| {
        b.iter(|| validate_resource(&schema, black_box(raw.clone())).expect("valid user"))
    });
    let projection = Projection::parse(&schema, &["userName".into(), "name.givenName".into()], &[]).expect("parses");
    c.bench_function("projection/two_attributes", |b| b.iter(|| projection.apply(&schema, black_box(&user))));
}

criterion_group!(patch, benches);
criterion_main!(patch);
