//! [`TableAdapter`]: an adapter for a vendor whose app is a SCIM 2.0 service provider and whose
//! rules are an attribute [`Table`]. The vendor crates (`adapters/*`) are a table, a config
//! struct and a few hooks on top of it.
//!
//! The vendors are documented only as targets of Entra ID's provisioning, so the adapter sends
//! what Entra sends and nothing else: users found with `filter=userName eq`, created with POST,
//! changed with **one PATCH** of the difference between what the app was last sent and what it
//! should now hold ([`crate::diff`]; nothing at all when nothing changed), deactivated with
//! `replace active false`, deleted with DELETE. Never a PUT: an app that refuses PUT would
//! dead-letter every update, and one that treats it as a full replace would wipe what only it
//! holds. When nothing was recorded (a link made before payloads were recorded, or one a
//! reconcile repair cleared), the app's copy is read back once (`GET /Users/{id}`), projected
//! onto the table, and diffed against that.
//!
//! Each vendor's PATCH is shaped in the Entra dialect its tenant URL selects ([`Dialect`]):
//! Jostle and Joyn FSM in the legacy one (no `aadOptscim062020` on their URLs: capitalised
//! `Add`/`Replace`/`Remove`, one operation per attribute path), JumpCloud, whose URL carries the
//! flag, in the flagged one as far as it is RFC 7644 (lowercase `op`, one operation per path; not
//! Entra's path-less `replace` with dotted keys, which is not RFC 7644 and which VENDORS.md says
//! the directory refuses: it "speaks only the RFC-shaped PATCH"). Booleans go as JSON booleans in
//! both: Entra's legacy `"False"` strings are a non-compliance its flag exists to fix, and the
//! tables type `active` as boolean, so a string is not a value the table allows. The op-name case,
//! which RFC 7644 does not make case-insensitive, is kept as Entra sends it to each app, since the
//! apps are built and tested against Entra's requests.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use scimgw_scim::schema::Schema;
use scimgw_scim::value::get_ci;

use crate::adapter::{Adapter, Capabilities, ReadBack, Remote, UserPage, Violation};
use crate::client::ScimClient;
use crate::diff::{Dialect, deactivation, patch_user, render};
use crate::generic::filter_literal;
use crate::outcome::DeliveryError;
use crate::secret::Secret;
use crate::table::Table;
use crate::target::TargetConfig;

/// Rewrites a user before the table reads it (JumpCloud derives its username here).
pub type Prepare = Arc<dyn Fn(&Map<String, Value>) -> Map<String, Value> + Send + Sync>;

/// What makes one table vendor differ from another.
#[derive(Clone)]
pub struct VendorSpec {
    /// The `kind` of its targets.
    pub kind: &'static str,
    /// Its name in messages (`Jostle`).
    pub vendor: &'static str,
    /// The attribute table (with any `extra_attributes` of the target).
    pub table: Table,
    /// Rewrites applied before the table reads a user.
    pub prepare: Option<Prepare>,
    /// Rules that only warn (shown by `preview`, never refuse a change).
    pub warnings: Table,
    /// Whether an inactive user that the app does not have yet is created there.
    pub creates_inactive: bool,
    /// Whether the `prepare` hook derives the username from something else than `userName`
    /// (see [`Adapter::derives_user_name`]).
    pub derives_user_name: bool,
    /// Reasons for dropping attributes that say more than "not in the table" (`manager`).
    pub drop_reasons: Vec<(&'static str, &'static str)>,
    /// The extension schemas it defines.
    pub extension_schemas: fn() -> Vec<(Schema, &'static str)>,
    /// The PATCH dialect of its updates: Entra's legacy one unless the tenant URL selects
    /// `aadOptscim062020` ([`Dialect::Rfc`]).
    pub dialect: Dialect,
}

impl std::fmt::Debug for VendorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorSpec").field("kind", &self.kind).finish()
    }
}

impl VendorSpec {
    /// The spec of a vendor whose rules are its table: `extra_attributes` (and `more_options`)
    /// are the target's only adapter keys; no prepare hook, no warnings, inactive users created,
    /// the default reasons for dropped attributes. Vendors change the fields that differ.
    pub fn from_table(
        kind: &'static str,
        vendor: &'static str,
        rows: &[crate::table::Row],
        target: &TargetConfig,
        more_options: &[&str],
        extension_schemas: fn() -> Vec<(Schema, &'static str)>,
    ) -> Result<VendorSpec, String> {
        let mut known = vec!["extra_attributes"];
        known.extend_from_slice(more_options);
        check_options(target, &known)?;
        Ok(VendorSpec {
            kind,
            vendor,
            table: Table::new(vendor, rows, &extra_attributes(target)?)?,
            prepare: None,
            warnings: Table::new(vendor, &[], &[])?,
            creates_inactive: true,
            derives_user_name: false,
            drop_reasons: Vec::new(),
            extension_schemas,
            dialect: Dialect::EntraLegacy,
        })
    }
}

/// An adapter driven by a [`VendorSpec`]: users only, matched by `userName`, created with POST,
/// updated with a PATCH of the difference, deactivated with a PATCH of `active`, deleted with
/// DELETE.
#[derive(Debug)]
pub struct TableAdapter {
    spec: VendorSpec,
    client: ScimClient,
}

impl TableAdapter {
    /// The adapter of one target.
    pub fn new(spec: VendorSpec, target: &TargetConfig, token: Secret) -> Result<TableAdapter, String> {
        let client = ScimClient::new(&target.base_url, token, target.client_options())?;
        Ok(TableAdapter { spec, client })
    }

    /// The user as the table reads it: rewritten by the vendor's `prepare` hook, else as it is
    /// (borrowed: validating and translating run on every write, per target).
    fn prepared<'u>(&self, user: &'u Map<String, Value>) -> Cow<'u, Map<String, Value>> {
        match &self.spec.prepare {
            Some(f) => Cow::Owned(f(user)),
            None => Cow::Borrowed(user),
        }
    }
}

/// The `extra_attributes` option: a list of attribute paths, or nothing.
pub fn extra_attributes(target: &TargetConfig) -> Result<Vec<String>, String> {
    match target.options.get("extra_attributes") {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| "extra_attributes: every entry must be a string".into())
            })
            .collect(),
        Some(_) => Err("extra_attributes must be a list of attribute paths".into()),
    }
}

/// Refuses option keys outside `known`.
pub fn check_options(target: &TargetConfig, known: &[&str]) -> Result<(), String> {
    match target.options.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(crate::target::unknown_key(&target.kind, unknown, known)),
        None => Ok(()),
    }
}

#[async_trait]
impl Adapter for TableAdapter {
    fn kind(&self) -> &'static str {
        self.spec.kind
    }

    fn capabilities(&self) -> Capabilities {
        // The vendors document lookups by `userName` (the only filterable attribute) and reads by
        // id, not listing everyone: reconciled by lookups unless a target says `reconcile_by`.
        Capabilities { users: true, groups: false, deactivate: true, delete: true, read_back: ReadBack::Lookup }
    }

    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        (self.spec.extension_schemas)()
    }

    fn validate(&self, user: &Map<String, Value>) -> Vec<Violation> {
        self.spec.table.validate(&self.prepared(user))
    }

    fn translate(&self, user: &Map<String, Value>) -> Result<Value, Violation> {
        Ok(Value::Object(self.spec.table.project(&self.prepared(user))))
    }

    fn check(&self, user: &Map<String, Value>) -> Result<Value, Vec<Violation>> {
        let prepared = self.prepared(user);
        let violations = self.spec.table.validate(&prepared);
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(Value::Object(self.spec.table.project(&prepared)))
    }

    fn warnings(&self, user: &Map<String, Value>) -> Vec<Violation> {
        self.spec.warnings.validate(&self.prepared(user))
    }

    fn dropped(&self, user: &Map<String, Value>) -> Vec<(String, String)> {
        let mut out = self.spec.table.dropped(user);
        for (attr, reason) in &mut out {
            if let Some((_, better)) = self.spec.drop_reasons.iter().find(|(a, _)| attr.eq_ignore_ascii_case(a)) {
                *reason = (*better).to_owned();
            }
        }
        out
    }

    fn creates_inactive(&self) -> bool {
        self.spec.creates_inactive
    }

    fn derives_user_name(&self) -> bool {
        self.spec.derives_user_name
    }

    async fn find(&self, user: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError> {
        let found = self.lookup_user(user).await?;
        Ok(found.and_then(|v| v.get("id").and_then(Value::as_str).map(|id| Remote { id: id.to_owned() })))
    }

    fn match_key(&self, user: &Map<String, Value>) -> Option<String> {
        get_ci(&self.prepared(user), "userName").and_then(Value::as_str).map(str::to_lowercase)
    }

    async fn list_users(&self, start_index: u64, count: u64) -> Result<UserPage, DeliveryError> {
        self.client.list("Users", start_index, count).await
    }

    async fn read_user(&self, remote_id: &str) -> Result<Option<Value>, DeliveryError> {
        self.client.get("Users", remote_id).await
    }

    async fn lookup_user(&self, user: &Map<String, Value>) -> Result<Option<Value>, DeliveryError> {
        let prepared = self.prepared(user);
        let Some(name) = get_ci(&prepared, "userName").and_then(Value::as_str) else {
            return Ok(None);
        };
        self.client.find_one("Users", &format!("userName eq {}", filter_literal(name))).await
    }

    async fn create(&self, payload: &Value) -> Result<Remote, DeliveryError> {
        let created = self.client.create("Users", payload).await?;
        match created.get("id").and_then(Value::as_str) {
            Some(id) => Ok(Remote { id: id.to_owned() }),
            None => Err(DeliveryError::retryable(format!("{}'s answer to the create has no \"id\"", self.spec.vendor))),
        }
    }

    fn updates_by_diff(&self) -> bool {
        true
    }

    fn payload_of_copy(&self, copy: &Map<String, Value>) -> Value {
        // No `prepare`: the copy holds what was sent (a derived username), not the gateway's user.
        Value::Object(self.spec.table.project(copy))
    }

    async fn update(&self, remote_id: &str, previous: Option<&Value>, payload: &Value) -> Result<(), DeliveryError> {
        patch_user(self, &self.client, remote_id, previous, payload, self.spec.dialect).await
    }

    async fn deactivate(&self, remote_id: &str) -> Result<(), DeliveryError> {
        self.client.patch("Users", remote_id, render(&deactivation(), self.spec.dialect)).await.map(drop)
    }

    async fn delete(&self, remote_id: &str) -> Result<(), DeliveryError> {
        self.client.delete("Users", remote_id).await
    }
}
