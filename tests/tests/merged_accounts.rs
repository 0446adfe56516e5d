//! No merged accounts: an account at a target is linked to at most one user (issue 17, point 4).
//!
//! JumpCloud derives its username (here the local part of `userName`), so two people —
//! anna@contoso.example and anna@fabrikam.example — would both be `anna` there. The second is
//! refused at the edge with 409 `uniqueness` naming the target, the name and the holder (or, with
//! `on_invalid = "skip"`, stored and skipped at that target, saying the same); and adoption never
//! links an account another user's link holds: that delivery is dead-lettered, naming the holder.
//! Both engines.

#![cfg(test)]

use std::time::Duration;

use scimgw_e2e::both_backends_delivery;
use scimgw_e2e::delivery::{DeliveryApp, FAST_RETRY, TargetSpec};
use scimgw_store::{DeliveryState, Kind};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn person(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "active": true,
        "name": {"givenName": "Anna", "familyName": "Berg"},
        "emails": [{"type": "work", "primary": true, "value": user_name}],
    })
}

fn jumpcloud(on_invalid: &str) -> Vec<TargetSpec> {
    vec![TargetSpec::vendor(
        "jumpcloud",
        "jumpcloud",
        &format!("username_from = \"userName_local_part\"\non_invalid = \"{on_invalid}\"\n{FAST_RETRY}"),
    )]
}

async fn a_second_person_with_the_same_derived_username_is_refused(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &person("anna@contoso.example")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let first = r.id();
    assert!(app.settled(WAIT).await);
    assert!(app.sim().user_by_username("anna").is_some());

    let r = app.app.post(&app.token, "/Users", &person("anna@fabrikam.example")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["scimType"], "uniqueness", "{}", r.text);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("jumpcloud") && detail.contains("\"anna\"") && detail.contains(&first), "{detail}");
    let r = app.app.get(&app.token, "/Users?filter=userName%20eq%20%22anna%40fabrikam.example%22").await;
    assert_eq!(r.total(), 0, "nothing stored: {}", r.text);

    // A rename onto the taken name is refused the same way; the first person can keep hers.
    let r = app.app.post(&app.token, "/Users", &person("berg@fabrikam.example")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.id();
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "ANNA@fabrikam.example"}]});
    let r = app.app.patch(&app.token, &format!("/Users/{second}"), &rename).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let touch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]});
    let r = app.app.patch(&app.token, &format!("/Users/{first}"), &touch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(app.settled(WAIT).await);
    assert_eq!(app.sim().users().len(), 2, "anna and berg, never a shared account");
}
both_backends_delivery!(a_second_person_with_the_same_derived_username_is_refused, super::jumpcloud("reject"));

async fn with_skip_the_second_person_is_stored_and_skipped_there(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &person("anna@contoso.example")).await;
    let first = r.id();
    assert!(app.settled(WAIT).await);
    let r = app.app.post(&app.token, "/Users", &person("anna@fabrikam.example")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.id();
    assert!(app.settled(WAIT).await);
    let skipped = app.deliveries().into_iter().find(|d| d.resource_id == second).unwrap();
    assert_eq!(skipped.state, DeliveryState::Skipped, "{skipped:?}");
    assert!(skipped.last_error.as_deref().unwrap_or("").contains(&first), "{skipped:?}");
    assert_eq!(app.sim().users().len(), 1);
}
both_backends_delivery!(with_skip_the_second_person_is_stored_and_skipped_there, super::jumpcloud("skip"));

/// A link that does not say the name its account has (made before names were recorded, say):
/// the edge cannot see the clash, the lookup finds the account, and adoption refuses it.
async fn adoption_never_takes_an_account_another_user_holds(app: DeliveryApp) {
    let r = app.app.post(&app.token, "/Users", &person("anna@contoso.example")).await;
    let first = r.id();
    assert!(app.settled(WAIT).await);
    let store = app.app.store();
    let mut link = store.link(&app.tenant_id, "jumpcloud", Kind::User, &first).unwrap().unwrap();
    let account = link.remote_id.clone().unwrap();
    link.delivered_payload = Some(r#"{"userName":"recorded-otherwise"}"#.into());
    link.account_name = Some("recorded-otherwise".into());
    store.put_link(&link).unwrap();

    let r = app.app.post(&app.token, "/Users", &person("anna@fabrikam.example")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let second = r.id();
    assert!(app.settled(WAIT).await);
    let dead = app.deliveries().into_iter().find(|d| d.resource_id == second).unwrap();
    assert_eq!(dead.state, DeliveryState::Dead, "{dead:?}");
    let why = dead.last_error.unwrap_or_default();
    assert!(why.contains(&account) && why.contains(&first) && why.contains("not adopted"), "{why}");
    assert!(store.link(&app.tenant_id, "jumpcloud", Kind::User, &second).unwrap().is_none());
    assert_eq!(app.sim().users().len(), 1, "the account is Anna's alone");
}
both_backends_delivery!(adoption_never_takes_an_account_another_user_holds, super::jumpcloud("reject"));
