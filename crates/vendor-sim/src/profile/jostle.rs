//! Jostle: users only, ten attributes, `userName` the only filter.
//!
//! Every rule comes from `shared/VENDORS.md`, section "Jostle", which digests the vendor's Entra ID
//! tutorial (`shared/seeds/jostle-entra-provisioning.txt`, its attribute table):
//!
//! - **Users only** — "its `/ResourceTypes` has no Group": no `/Groups` (404), `/ResourceTypes`
//!   lists User alone.
//! - **No PUT of a user** — the app is documented only as a target of Entra ID, which changes
//!   users with PATCH and never PUTs one: `PUT /Users/{id}` is `405`.
//! - **Filters** — "`userName` (the only attribute Jostle supports in filters)": only
//!   `userName eq "…"`; anything else is `400 invalidFilter`.
//! - **Attributes** — the ten of the table: `userName`, `active`, `name.givenName`,
//!   `name.familyName`, `emails` of type `work`, `personal`, `alternate1`, `alternate2`, and the
//!   extension's `alternateEmail1Label`, `alternateEmail2Label`. "Anything else is not sent", so
//!   anything else is `400 invalidValue` naming it — `externalId`, `displayName`, the Enterprise
//!   extension included, and an email of another type or without one. An email value may carry
//!   `primary` (a characteristic, not an attribute of its own); not `display`.
//! - **Smallest valid create** — "`userName` (unique), `name.givenName`, `name.familyName`,
//!   `active`": `name.givenName` and `name.familyName` are required on every write (a PATCH that
//!   removes one is refused too); `userName` is unique ignoring case (`409 uniqueness`). `active`
//!   is not required: the digest lists it in the smallest create but never says a user without it
//!   is refused, and the core defaults nothing, so the simulator leaves that to the adapter.
//! - A missing work email is only a *warning* on the gateway's side ("Jostle's own UI also
//!   expects a work email"): the simulator accepts a user without one.

use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{Attribute, Schema};
use serde_json::{Map, Value};

use super::rules::{self, AttributeTable, MultiValued};
use super::{Kind, PatchTarget, Profile, Write};

/// The URN of Jostle's User extension, which holds the alternate emails' labels.
pub const JOSTLE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:jostle:2.0:User";

const VENDOR: &str = "Jostle";

/// The attribute table of VENDORS.md, "Jostle".
const TABLE: AttributeTable = AttributeTable {
    vendor: VENDOR,
    simple: &["userName", "active"],
    complex: &[("name", &["givenName", "familyName"])],
    multi: &[MultiValued {
        name: "emails",
        types: &["work", "personal", "alternate1", "alternate2"],
        primary_is_enough: false,
        subs: &["value"],
    }],
    extensions: &[(JOSTLE_USER_SCHEMA, &["alternateEmail1Label", "alternateEmail2Label"])],
};

/// The Jostle intranet's SCIM API (see the module doc for each rule and its source).
#[derive(Debug, Clone, Copy, Default)]
pub struct JostleProfile;

impl Profile for JostleProfile {
    fn name(&self) -> &'static str {
        "jostle"
    }

    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        let schema = Schema {
            id: JOSTLE_USER_SCHEMA.into(),
            name: "JostleUser".into(),
            description: "Jostle's labels for a user's alternate emails".into(),
            attributes: vec![
                Attribute::string("alternateEmail1Label").desc("The label of the email of type alternate1."),
                Attribute::string("alternateEmail2Label").desc("The label of the email of type alternate2."),
            ],
        };
        vec![(schema, "User")]
    }

    fn accepted_extensions(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec![JOSTLE_USER_SCHEMA.into()],
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
        for sub in ["givenName", "familyName"] {
            if rules::sub_string(user, "name", sub).is_none_or(|s| s.trim().is_empty()) {
                return Err(ScimError::invalid_value(format!(
                    "{VENDOR}: name.{sub} is required; a person needs a first and a last name"
                )));
            }
        }
        Ok(())
    }
}
