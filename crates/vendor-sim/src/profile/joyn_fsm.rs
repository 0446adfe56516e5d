//! Joyn FSM: users only, a work email required, `userName` the only filter.
//!
//! Every rule comes from `shared/VENDORS.md`, section "Joyn FSM", which digests the vendor's Entra
//! ID article (`shared/seeds/joyn-fsm-entra-provisioning.md`, its attribute table with the
//! "Required by Joyn FSM" column):
//!
//! - **Users only** — "no groups documented": no `/Groups` (404), `/ResourceTypes` lists User alone.
//! - **No PUT of a user** — the app is documented only as a target of Entra ID, which changes
//!   users with PATCH and never PUTs one: `PUT /Users/{id}` is `405`.
//! - **Filters** — "`userName` (the only filterable attribute)": only `userName eq "…"`; anything
//!   else is `400 invalidFilter`.
//! - **Required** — "`userName` **and** `emails[type eq "work"].value`. A user without a work email
//!   is refused": `400 invalidValue` "a work email is required" on every write, a PATCH that
//!   removes the work email included. `userName` is unique ignoring case (`409 uniqueness`).
//! - **Attributes** — the table's: `userName`, `active`, `displayName`, `externalId`,
//!   `name.formatted`, `name.givenName`, `name.familyName`, emails of type `work`, addresses of
//!   type `work` (`formatted`, `streetAddress`, `locality`, `region`, `postalCode`, `country`),
//!   phone numbers of type `mobile`, the Enterprise extension's `department`, and the Joyn FSM
//!   extension's `xid` and `joynFieldId` (opaque strings: "undocumented: pass them through").
//!   Anything else is `400 invalidValue` naming it: another Enterprise attribute, an email, address
//!   or phone number of another type or without one, a sub-attribute outside the list. `primary`
//!   is accepted on a value (a characteristic, not an attribute of its own); `display` is not.

use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{Attribute, ENTERPRISE_USER_SCHEMA, Schema};
use serde_json::{Map, Value};

use super::rules::{self, AttributeTable, MultiValued};
use super::{Kind, PatchTarget, Profile, Write};

/// The URN of Joyn FSM's User extension (`xid`, `joynFieldId`).
pub const JOYN_FSM_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:joynfsm:2.0:User";

const VENDOR: &str = "Joyn FSM";

/// The attribute table of VENDORS.md, "Joyn FSM".
const TABLE: AttributeTable = AttributeTable {
    vendor: VENDOR,
    simple: &["userName", "active", "displayName", "externalId"],
    complex: &[("name", &["formatted", "givenName", "familyName"])],
    multi: &[
        MultiValued { name: "emails", types: &["work"], primary_is_enough: false, subs: &["value"] },
        MultiValued {
            name: "addresses",
            types: &["work"],
            primary_is_enough: false,
            subs: &["formatted", "streetAddress", "locality", "region", "postalCode", "country"],
        },
        MultiValued { name: "phoneNumbers", types: &["mobile"], primary_is_enough: false, subs: &["value"] },
    ],
    extensions: &[(ENTERPRISE_USER_SCHEMA, &["department"]), (JOYN_FSM_USER_SCHEMA, &["xid", "joynFieldId"])],
};

/// Joyn FSM's SCIM API (see the module doc for each rule and its source).
#[derive(Debug, Clone, Copy, Default)]
pub struct JoynFsmProfile;

impl Profile for JoynFsmProfile {
    fn name(&self) -> &'static str {
        "joyn-fsm"
    }

    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        let schema = Schema {
            id: JOYN_FSM_USER_SCHEMA.into(),
            name: "JoynFsmUser".into(),
            description: "Joyn FSM's own user fields, undocumented by the vendor".into(),
            attributes: vec![
                Attribute::string("xid").desc("Undocumented; an opaque string."),
                Attribute::string("joynFieldId").desc("Undocumented; an opaque string."),
            ],
        };
        vec![(schema, "User")]
    }

    fn accepted_extensions(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec![ENTERPRISE_USER_SCHEMA.into(), JOYN_FSM_USER_SCHEMA.into()],
            Kind::Group => Vec::new(),
        }
    }

    fn supports_groups(&self) -> bool {
        false
    }

    fn replaces_users(&self) -> bool {
        // Only Entra's requests are documented: it never PUTs a user.
        false
    }

    fn check_filter(&self, _kind: Kind, filter: &Filter) -> Result<(), ScimError> {
        rules::only_username_eq(VENDOR, filter)
    }

    fn check_patch_target(&self, _kind: Kind, target: &PatchTarget<'_>) -> Result<(), ScimError> {
        TABLE.check_target(target)
    }

    fn validate_user(&self, user: &Map<String, Value>, _write: Write<'_>) -> Result<(), ScimError> {
        TABLE.check(user)?;
        if rules::typed_value(user, "emails", "work").is_none() {
            return Err(ScimError::invalid_value(format!(
                "{VENDOR}: a work email is required: emails[type eq \"work\"].value is missing"
            )));
        }
        Ok(())
    }
}
