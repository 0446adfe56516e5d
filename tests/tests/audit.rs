//! The audit trail over HTTP (issue 8): each change made through the API leaves one event naming
//! the key, the operation, the resource, the version and the request id; refused and no-op
//! requests leave none; each tenant sees only its own.

#![cfg(test)]

use reqwest::Method;
use scimgw_e2e::{TestApp, both_backends, patch_op};
use serde_json::json;

fn key_id(token: &str) -> &str {
    token.split('_').nth(1).unwrap()
}

async fn every_change_is_audited_once_with_its_key(app: TestApp) {
    let (first, second) = (app.token("acme"), app.token("acme"));
    let other = app.token("globex");
    let user = app.create_user(&first, "audit@example.com").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let put = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "audit@example.com", "title": "Boss"});
    assert_eq!(app.put(&second, &format!("/Users/{id}"), &put).await.status, 200);
    let change = patch_op(json!([{"op": "replace", "path": "title", "value": "Chief"}]));
    let body = serde_json::to_vec(&change).unwrap();
    let auth = format!("Bearer {first}");
    let headers =
        [("authorization", auth.as_str()), ("content-type", "application/scim+json"), ("x-request-id", "req-audit-1")];
    assert_eq!(app.request(Method::PATCH, &format!("/Users/{id}"), &headers, Some(&body)).await.status, 200);
    // A PATCH that changes nothing, a refused one and a read: no event.
    assert_eq!(app.patch(&first, &format!("/Users/{id}"), &change).await.status, 200);
    let bad = patch_op(json!([{"op": "replace", "path": "userName", "value": 7}]));
    assert_eq!(app.patch(&first, &format!("/Users/{id}"), &bad).await.status, 400);
    assert_eq!(app.get(&first, &format!("/Users/{id}")).await.status, 200);
    let group = app.create_group(&second, "Auditors", &[&id]).await;
    let gid = group["id"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(&first, &format!("/Users/{id}")).await.status, 204);
    // Another tenant's attempt on this id changes nothing and records nothing here.
    assert_eq!(app.delete(&other, &format!("/Groups/{gid}")).await.status, 404);

    let tenant = app.store().tenant_by_name("acme").unwrap().unwrap();
    let events = app.store().audit_events(&tenant.id, None, 100).unwrap();
    let seen: Vec<(&str, &str, &str, i64)> =
        events.iter().map(|e| (e.operation.as_str(), e.resource_type.as_str(), e.key_id.as_str(), e.version)).collect();
    assert_eq!(
        seen,
        [
            ("create", "User", key_id(&first), 1),
            ("replace", "User", key_id(&second), 2),
            ("patch", "User", key_id(&first), 3),
            ("create", "Group", key_id(&second), 1),
            // Version 4: joining "Auditors" changed the user's `groups`, so its version.
            ("delete", "User", key_id(&first), 4),
        ]
    );
    assert!(events.iter().take(3).all(|e| e.resource_id == id));
    assert_eq!(events[2].request_id.as_deref(), Some("req-audit-1"));
    assert!(
        events.iter().all(|e| e.request_id.as_deref().is_some_and(|r| !r.is_empty())),
        "every event names its request"
    );
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    let since = app.store().audit_events(&tenant.id, Some(events[3].at), 100).unwrap();
    assert_eq!(since.len(), 2, "--since keeps the events at or after the time");
    let globex = app.store().tenant_by_name("globex").unwrap().unwrap();
    assert!(app.store().audit_events(&globex.id, None, 100).unwrap().is_empty());
}
both_backends!(every_change_is_audited_once_with_its_key);
