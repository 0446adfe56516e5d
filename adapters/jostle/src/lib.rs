//! The Jostle adapter (`kind = "jostle"`).
//!
//! Where each rule comes from: Jostle's Entra provisioning tutorial
//! (`shared/seeds/jostle-entra-provisioning.txt`; its attribute table is the one line 56),
//! digested in `VENDORS.md` § Jostle, which adds facts from Jostle's API reference, marked
//! *(outside the seed)* below:
//!
//! - **Attributes**: the ten of the tutorial's table (line 56) — `userName`, `active`,
//!   `name.givenName`, `name.familyName`, the work, personal, alternate1 and alternate2 emails,
//!   and the two alternate-email labels of Jostle's extension
//!   `urn:ietf:params:scim:schemas:extension:jostle:2.0:User`. Nothing else is sent. Newer
//!   versions of the tutorial list more attributes (VENDORS.md): a target adds them with
//!   `extra_attributes = ["title", "phoneNumbers[type eq \"mobile\"].value"]`.
//! - **Required** *(outside the seed: VENDORS.md's "smallest valid create"; the tutorial's table
//!   marks nothing required)*: `userName`, `name.givenName`, `name.familyName` (with `active`,
//!   which the gateway always has).
//! - **Warning only** *(outside the seed)*: no work email. Jostle's own UI expects one for a
//!   person, but its API accepts the user; `scimgw preview` shows it.
//! - **Matching**: `userName`, the only attribute with ✓ in "Supported for filtering" (line 56).
//! - **Users only** *(outside the seed: Jostle's API article, its `/ResourceTypes` has no Group;
//!   the tutorial says "users and groups" in Entra's template wording, lines 2 and 42)*: groups
//!   are never sent.
//! - **Deprovisioning**: the tutorial's Entra flow creates, updates and disables (line 42;
//!   "Remove users … when they do not require access anymore", line 5, is Entra's template
//!   wording for the same). `deprovision = "delete"` is honoured too, as Jostle's API allows it
//!   *(outside the seed)*: the target's choice.

use std::sync::Arc;

use scimgw_adapter::table::{Row, Rule, Table};
use scimgw_adapter::vendor::{TableAdapter, VendorSpec};
use scimgw_adapter::{Adapter, Secret, TargetConfig};
use scimgw_scim::schema::{Attribute, Schema};

/// `kind` of Jostle targets.
pub const KIND: &str = "jostle";

/// Jostle's extension schema URN.
pub const JOSTLE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";

/// The attribute table (VENDORS.md § Jostle).
pub const ATTRIBUTES: &[Row] = &[
    Row { path: "userName", rules: &[Rule::Required] },
    Row { path: "active", rules: &[] },
    Row { path: "name.givenName", rules: &[Rule::Required] },
    Row { path: "name.familyName", rules: &[Rule::Required] },
    Row { path: "emails[type eq \"work\"].value", rules: &[] },
    Row { path: "emails[type eq \"personal\"].value", rules: &[] },
    Row { path: "emails[type eq \"alternate1\"].value", rules: &[] },
    Row { path: "emails[type eq \"alternate2\"].value", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:jostle:2.0:User:alternateEmail1Label", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:jostle:2.0:User:alternateEmail2Label", rules: &[] },
];

/// Rules that only warn.
const WARNINGS: &[Row] = &[Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Required] }];

/// Jostle's extension schema: the two alternate-email labels.
pub fn extension_schemas() -> Vec<(Schema, &'static str)> {
    vec![(
        Schema {
            id: JOSTLE_USER_SCHEMA.into(),
            name: "JostleUser".into(),
            description: "Jostle's user extension".into(),
            attributes: vec![
                Attribute::string("alternateEmail1Label").desc("The label Jostle shows for the alternate1 email."),
                Attribute::string("alternateEmail2Label").desc("The label Jostle shows for the alternate2 email."),
            ],
        },
        "User",
    )]
}

/// The spec of one target.
pub fn spec(target: &TargetConfig) -> Result<VendorSpec, String> {
    Ok(VendorSpec {
        warnings: Table::new("Jostle's UI", WARNINGS, &[])?,
        ..VendorSpec::from_table(KIND, "Jostle", ATTRIBUTES, target, &[], extension_schemas)?
    })
}

/// The registry constructor of `kind = "jostle"`.
pub fn construct(target: &TargetConfig, token: Secret) -> Result<Arc<dyn Adapter>, String> {
    Ok(Arc::new(TableAdapter::new(spec(target)?, target, token)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn target(extra: Value) -> TargetConfig {
        let mut t = json!({"name": "j", "kind": "jostle", "base_url": "https://jostle.example/scim"});
        if let (Some(t), Some(e)) = (t.as_object_mut(), extra.as_object()) {
            t.extend(e.clone());
        }
        serde_json::from_value(t).unwrap()
    }

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", JOSTLE_USER_SCHEMA],
            "id": "l1",
            "userName": "kim@corp.example",
            "active": true,
            "title": "Lead",
            "name": {"givenName": "Kim", "familyName": "Ode", "formatted": "Kim Ode"},
            "emails": [
                {"type": "work", "value": "kim@corp.example", "primary": true},
                {"type": "alternate1", "value": "kim@alt.example"},
                {"type": "other", "value": "kim@other.example"}
            ],
            JOSTLE_USER_SCHEMA: {"alternateEmail1Label": "Lab"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn only_the_table_is_sent() {
        let a = construct(&target(json!({})), Secret::new("t")).unwrap();
        assert!(a.validate(&user()).is_empty());
        assert_eq!(
            a.translate(&user()).unwrap(),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", JOSTLE_USER_SCHEMA],
                "userName": "kim@corp.example",
                "active": true,
                "name": {"givenName": "Kim", "familyName": "Ode"},
                "emails": [{"type": "work", "value": "kim@corp.example"}, {"type": "alternate1", "value": "kim@alt.example"}],
                JOSTLE_USER_SCHEMA: {"alternateEmail1Label": "Lab"}
            })
        );
        let dropped: Vec<String> = a.dropped(&user()).into_iter().map(|(a, _)| a).collect();
        assert!(dropped.contains(&"title".to_owned()) && dropped.contains(&"emails[type eq \"other\"]".to_owned()));
    }

    #[test]
    fn names_are_required_and_a_missing_work_email_only_warns() {
        let a = construct(&target(json!({})), Secret::new("t")).unwrap();
        let mut u = user();
        u.insert("name".into(), json!({"givenName": "Kim"}));
        u.remove("emails");
        let v = a.validate(&u);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].to_string(), "name.familyName: is required (Jostle)");
        assert_eq!(a.warnings(&u)[0].attribute, "emails[type eq \"work\"].value");
    }

    #[test]
    fn extra_attributes_extend_the_table() {
        let a = construct(&target(json!({"extra_attributes": ["title"]})), Secret::new("t")).unwrap();
        assert_eq!(a.translate(&user()).unwrap()["title"], "Lead");
        let err = construct(&target(json!({"extra": 1})), Secret::new("t")).unwrap_err();
        assert!(err.contains("unknown key \"extra\""), "{err}");
        assert!(construct(&target(json!({"extra_attributes": ["a b"]})), Secret::new("t")).is_err());
    }
}
