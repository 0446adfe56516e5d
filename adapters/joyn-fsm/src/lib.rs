//! The Joyn FSM adapter (`kind = "joyn-fsm"`).
//!
//! Where each rule comes from: the vendor's Entra provisioning guide
//! (`shared/seeds/joyn-fsm-entra-provisioning.md`, Step 5's attribute table, lines 98–117, with
//! its "Supported for filtering" and "Required by Joyn FSM" columns), digested in `VENDORS.md`
//! § Joyn FSM:
//!
//! - **Required**: `userName` and `emails[type eq "work"].value` (the two ✓ of "Required by Joyn
//!   FSM", lines 100–101); the app refuses a user without one, so the gateway refuses (or skips)
//!   it first.
//! - **Attributes**: those of the table — `userName`, the work email, `active`, `name.formatted`,
//!   `displayName`, `externalId`, `name.givenName` (the table leaves its type blank, line 106: a
//!   string, as everywhere else), `name.familyName`, the work address (`formatted`,
//!   `streetAddress`, `locality`, `region`, `postalCode`, `country`), the mobile phone, the
//!   Enterprise `department`, and Joyn's extension
//!   (`urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User`) `xid` and `joynFieldId`, which
//!   the guide lists without a word on their meaning and which are passed through as opaque
//!   strings. Nothing else is sent; `extra_attributes` adds more.
//! - **Matching**: `userName`, the only ✓ of "Supported for filtering" (line 100).
//! - **Users only** *(our reading)*: the guide's wording is Entra's template ("users and groups",
//!   lines 22 and 61) but its mappings are users' only, so no group is sent.
//! - **Warning only** *(our choice, not the guide's)*: a work email that does not look like an
//!   email address. The guide types it only as a String; refusing what the app may accept would
//!   block the person's provisioning and count as a failure on Entra's side, so `scimgw preview`
//!   shows it instead.
//! - **Deprovisioning**: "Remove users in Joyn FSM when they don't require access anymore"
//!   (line 28) is Entra's template wording: Entra disables (PATCH `active` false) and deletes only
//!   on a hard delete. `deprovision = "delete"` is honoured, but it is the target's choice.

use std::sync::Arc;

use scimgw_adapter::table::{Row, Rule, Table};
use scimgw_adapter::vendor::{TableAdapter, VendorSpec};
use scimgw_adapter::{Adapter, Secret, TargetConfig};
use scimgw_scim::schema::{Attribute, Schema};

/// `kind` of Joyn FSM targets.
pub const KIND: &str = "joyn-fsm";

/// Rules that only warn (our choice; see the module doc).
const WARNINGS: &[Row] = &[Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Email] }];

/// Joyn FSM's extension schema URN.
pub const JOYN_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";

/// The attribute table (VENDORS.md § Joyn FSM).
pub const ATTRIBUTES: &[Row] = &[
    Row { path: "userName", rules: &[Rule::Required] },
    Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Required] },
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
    Ok(VendorSpec {
        warnings: Table::new("Joyn FSM, our check", WARNINGS, &[])?,
        ..VendorSpec::from_table(KIND, "Joyn FSM", ATTRIBUTES, target, &[], extension_schemas)?
    })
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
        // The guide types the work email only as a String: a malformed one is a warning.
        u.insert("emails".into(), json!([{"type": "work", "value": "not an email"}]));
        assert!(a.validate(&u).is_empty());
        assert_eq!(a.warnings(&u)[0].rule, "must be an email address (Joyn FSM, our check)");
    }
}
