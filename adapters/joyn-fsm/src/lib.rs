//! The Joyn FSM adapter (`kind = "joyn-fsm"`).
//!
//! Where each rule comes from (`VENDORS.md` § Joyn FSM, and the vendor's Entra provisioning guide
//! in `seeds/joyn-fsm-entra-provisioning.md`):
//!
//! - **Required**: `userName` and a work email (`emails[type eq "work"].value`); the app refuses a
//!   user without one, so the gateway refuses (or skips) it first.
//! - **Attributes**: those of the vendor's table — `userName`, the work email, `active`,
//!   `name.formatted`, `displayName`, `externalId`, `name.givenName`, `name.familyName`, the work
//!   address (`formatted`, `streetAddress`, `locality`, `region`, `postalCode`, `country`), the
//!   mobile phone, the enterprise `department`, and Joyn's extension
//!   (`urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User`) `xid` and `joynFieldId`, which are
//!   undocumented and passed through as opaque strings. Nothing else is sent;
//!   `extra_attributes` adds more.
//! - **Matching**: `userName`, the only attribute Joyn FSM filters on.
//! - **Users only**: no groups are documented, so none are sent.
//! - The work email is also checked to look like an email address: the guide maps it from the
//!   user's mail, and a malformed one would be refused by the app with a less helpful message.

use std::sync::Arc;

use scimgw_adapter::table::{Row, Rule};
use scimgw_adapter::vendor::{TableAdapter, VendorSpec};
use scimgw_adapter::{Adapter, Secret, TargetConfig};
use scimgw_scim::schema::{Attribute, Schema};

/// `kind` of Joyn FSM targets.
pub const KIND: &str = "joyn-fsm";

/// Joyn FSM's extension schema URN.
pub const JOYN_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";

/// The attribute table (VENDORS.md § Joyn FSM).
pub const ATTRIBUTES: &[Row] = &[
    Row { path: "userName", rules: &[Rule::Required] },
    Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Required, Rule::Email] },
    Row { path: "active", rules: &[] },
    Row { path: "name.formatted", rules: &[] },
    Row { path: "displayName", rules: &[] },
    Row { path: "externalId", rules: &[] },
    Row { path: "name.givenName", rules: &[] },
    Row { path: "name.familyName", rules: &[] },
    Row { path: "addresses[type eq \"work\"].formatted", rules: &[] },
    Row { path: "addresses[type eq \"work\"].streetAddress", rules: &[] },
    Row { path: "addresses[type eq \"work\"].locality", rules: &[] },
    Row { path: "addresses[type eq \"work\"].region", rules: &[] },
    Row { path: "addresses[type eq \"work\"].postalCode", rules: &[] },
    Row { path: "addresses[type eq \"work\"].country", rules: &[] },
    Row { path: "phoneNumbers[type eq \"mobile\"].value", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User:xid", rules: &[] },
    Row { path: "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User:joynFieldId", rules: &[] },
];

/// Joyn FSM's extension schema: `xid` and `joynFieldId`, opaque strings.
pub fn extension_schemas() -> Vec<(Schema, &'static str)> {
    vec![(
        Schema {
            id: JOYN_USER_SCHEMA.into(),
            name: "JoynFsmUser".into(),
            description: "Joyn FSM's user extension (undocumented fields, passed through)".into(),
            attributes: vec![
                Attribute::string("xid").desc("Joyn FSM's external id (undocumented; passed through)."),
                Attribute::string("joynFieldId").desc("Joyn FSM's field id (undocumented; passed through)."),
            ],
        },
        "User",
    )]
}

/// The spec of one target.
pub fn spec(target: &TargetConfig) -> Result<VendorSpec, String> {
    VendorSpec::from_table(KIND, "Joyn FSM", ATTRIBUTES, target, &[], extension_schemas)
}

/// The registry constructor of `kind = "joyn-fsm"`.
pub fn construct(target: &TargetConfig, token: Secret) -> Result<Arc<dyn Adapter>, String> {
    Ok(Arc::new(TableAdapter::new(spec(target)?, target, token)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    fn target() -> TargetConfig {
        serde_json::from_value(json!({"name": "j", "kind": "joyn-fsm", "base_url": "https://joyn.example/scim"}))
            .unwrap()
    }

    fn user() -> Map<String, Value> {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "lee@corp.example",
            "active": true,
            "externalId": "e-7",
            "title": "Tech",
            "emails": [{"type": "work", "value": "lee@corp.example", "primary": true}],
            "addresses": [{"type": "work", "locality": "Leeds", "country": "GB"}, {"type": "home", "locality": "York"}],
            "phoneNumbers": [{"type": "mobile", "value": "+44 7700 900000"}, {"type": "work", "value": "1"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Field", "employeeNumber": "9"},
            JOYN_USER_SCHEMA: {"xid": "X-1", "joynFieldId": "F-2"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn the_table_is_sent_and_the_rest_dropped() {
        let a = construct(&target(), Secret::new("t")).unwrap();
        assert!(a.validate(&user()).is_empty());
        let out = a.translate(&user()).unwrap();
        assert_eq!(out["addresses"], json!([{"type": "work", "locality": "Leeds", "country": "GB"}]));
        assert_eq!(out["phoneNumbers"], json!([{"type": "mobile", "value": "+44 7700 900000"}]));
        assert_eq!(out[JOYN_USER_SCHEMA], json!({"xid": "X-1", "joynFieldId": "F-2"}));
        assert_eq!(out["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], json!({"department": "Field"}));
        assert!(out.get("title").is_none());
    }

    #[test]
    fn a_work_email_is_required() {
        let a = construct(&target(), Secret::new("t")).unwrap();
        let mut u = user();
        u.insert("emails".into(), json!([{"type": "home", "value": "lee@home.example"}]));
        let v = a.validate(&u);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].to_string(), "emails[type eq \"work\"].value: is required (Joyn FSM)");
        u.insert("emails".into(), json!([{"type": "work", "value": "not an email"}]));
        assert_eq!(a.validate(&u)[0].rule, "must be an email address (Joyn FSM)");
    }
}
