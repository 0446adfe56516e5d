//! The trait a vendor adapter implements, and the types of its answers.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use scimgw_scim::schema::Schema;

use crate::outcome::DeliveryError;

/// What an adapter can do at its vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Delivers users (every adapter does today).
    pub users: bool,
    /// Delivers groups and their members.
    pub groups: bool,
    /// Can deprovision by deactivating (`active: false`).
    pub deactivate: bool,
    /// Can deprovision by deleting.
    pub delete: bool,
    /// How `scimgw reconcile` can read the vendor's users back.
    pub read_back: ReadBack,
}

/// How a vendor's users can be read back, for `scimgw reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadBack {
    /// Page through every user (`GET /Users?startIndex=…&count=…`): finds accounts the gateway
    /// does not know too.
    List,
    /// Only look users up: by the vendor's id, and by the matching attribute. Accounts the
    /// gateway knows nothing of cannot be found this way.
    #[default]
    Lookup,
}

impl ReadBack {
    /// `list` or `lookup`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadBack::List => "list",
            ReadBack::Lookup => "lookup",
        }
    }
}

/// One page of a vendor's users.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserPage {
    /// The users, as the vendor returns them.
    pub resources: Vec<Value>,
    /// The vendor's `totalResults`, when it says.
    pub total: Option<u64>,
}

/// How a user who leaves the target (deleted, or out of its scope) is deprovisioned there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    /// Keep the account, set `active: false`.
    #[default]
    Deactivate,
    /// Delete the account.
    Delete,
}

/// A vendor rule that a user breaks: which attribute, and what the rule says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The attribute path as an admin would write it in a filter (`emails[type eq "work"]`).
    pub attribute: String,
    /// The rule, phrased so that the admin knows what to change.
    pub rule: String,
}

impl Violation {
    /// A violation of `rule` by `attribute`.
    pub fn new(attribute: impl Into<String>, rule: impl Into<String>) -> Self {
        Violation { attribute: attribute.into(), rule: rule.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.attribute, self.rule)
    }
}

/// A resource as the vendor holds it: its id there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The vendor's id for the resource.
    pub id: String,
}

/// One vendor app, as one configured target sees it.
///
/// `validate` and `translate` are pure and fast: `validate` runs on every create, replace and
/// PATCH before anything is committed. The delivery operations run in the dispatcher, one at a
/// time per call, and report failures as [`DeliveryError`]s; retries, backoff, rate limits and
/// links are the dispatcher's business, not the adapter's.
///
/// Users are handed over as their SCIM representation (`schemas`, `id`, attributes; no `meta`).
#[async_trait]
pub trait Adapter: Send + Sync + fmt::Debug {
    /// The `kind` this adapter is configured with (`scim`, `jumpcloud`, …).
    fn kind(&self) -> &'static str;

    /// What it can do.
    fn capabilities(&self) -> Capabilities;

    /// Extension schemas this adapter needs registered in the core, with the resource type
    /// (`User`) each extends.
    fn extension_schemas(&self) -> Vec<(Schema, &'static str)> {
        Vec::new()
    }

    /// The vendor's rules that `user` breaks; empty when the vendor would accept it.
    fn validate(&self, user: &Map<String, Value>) -> Vec<Violation>;

    /// The payload the vendor accepts for `user`.
    fn translate(&self, user: &Map<String, Value>) -> Result<Value, Violation>;

    /// [`Adapter::validate`], then [`Adapter::translate`] if no rule is broken: the payload, or
    /// every rule broken (a failed translation is one). The per-target decision calls this on
    /// every write, once per target; an adapter that prepares the user for both (the table
    /// adapters) overrides it to prepare once.
    fn check(&self, user: &Map<String, Value>) -> Result<Value, Vec<Violation>> {
        let violations = self.validate(user);
        if !violations.is_empty() {
            return Err(violations);
        }
        self.translate(user).map_err(|v| vec![v])
    }

    /// Things about `user` worth an admin's attention that do not stop a delivery (`preview`).
    fn warnings(&self, user: &Map<String, Value>) -> Vec<Violation> {
        let _ = user;
        Vec::new()
    }

    /// What of `user` is not sent, each with the reason (`preview`).
    fn dropped(&self, user: &Map<String, Value>) -> Vec<(String, String)> {
        let _ = user;
        Vec::new()
    }

    /// Whether an inactive user that the vendor does not have yet is created there (`false`: it
    /// is created when it becomes active; one that exists is still deactivated).
    fn creates_inactive(&self) -> bool {
        true
    }

    /// Whether the user's name at the vendor (the translated `userName`) is derived from
    /// something other than the gateway's `userName` — JumpCloud's username from the mail
    /// nickname or an email's local part — so that two users can come out with one name. The
    /// edge then has the store refuse a change whose name another user's account there holds.
    fn derives_user_name(&self) -> bool {
        false
    }

    /// Looks up the vendor's copy of `user` by the matching attribute (to adopt it rather than
    /// create a duplicate). `None` when the vendor has none.
    async fn find(&self, user: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError>;

    /// The key the vendor matches accounts by (`userName`, lowercased, by default), of a gateway
    /// user: what [`Adapter::find`] looks up.
    fn match_key(&self, user: &Map<String, Value>) -> Option<String> {
        scimgw_scim::value::get_ci(user, "userName").and_then(Value::as_str).map(str::to_lowercase)
    }

    /// The same key of an account as the vendor returns it (`reconcile` pairs accounts with users).
    fn remote_match_key(&self, remote: &Map<String, Value>) -> Option<String> {
        scimgw_scim::value::get_ci(remote, "userName").and_then(Value::as_str).map(str::to_lowercase)
    }

    /// The attributes the vendor's copy `remote` holds otherwise than `payload` (a `translate`
    /// result) says: drift, for `reconcile`. See [`crate::compare`] for what is compared.
    fn differences(&self, payload: &Value, remote: &Value) -> Vec<crate::compare::Difference> {
        crate::compare::differences(payload, remote)
    }

    /// One page of the vendor's users, from `start_index` (1-based). Only called when
    /// `capabilities().read_back` is [`ReadBack::List`].
    async fn list_users(&self, start_index: u64, count: u64) -> Result<UserPage, DeliveryError> {
        let _ = (start_index, count);
        Err(DeliveryError::permanent(format!("the {} adapter cannot list users", self.kind())))
    }

    /// The vendor's copy `remote_id` as the vendor returns it; `None` when it has none.
    async fn read_user(&self, remote_id: &str) -> Result<Option<Value>, DeliveryError> {
        let _ = remote_id;
        Err(DeliveryError::permanent(format!("the {} adapter cannot read users back", self.kind())))
    }

    /// The vendor's copy of `user` found by the matching attribute, whole; `None` when none.
    async fn lookup_user(&self, user: &Map<String, Value>) -> Result<Option<Value>, DeliveryError> {
        let _ = user;
        Err(DeliveryError::permanent(format!("the {} adapter cannot read users back", self.kind())))
    }

    /// Whether [`Adapter::update`] sends the difference from a base (a PATCH) rather than the
    /// whole payload: the dispatcher then reads the vendor's copy back (paced like any request)
    /// when the link recorded nothing, and passes it as `previous`.
    fn updates_by_diff(&self) -> bool {
        false
    }

    /// The vendor's copy `copy` (as [`Adapter::read_user`] returns it) seen as a `translate`
    /// payload: only what the adapter sends, shaped as it sends it. The base of a diff when the
    /// link recorded nothing.
    fn payload_of_copy(&self, copy: &Map<String, Value>) -> Value {
        self.translate(copy).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Creates the user at the vendor from `translate`'s payload.
    async fn create(&self, payload: &Value) -> Result<Remote, DeliveryError>;

    /// Brings the vendor's copy `remote_id` to `payload` (a `translate` result). `previous` is
    /// what the vendor was last sent, when recorded: the base of a PATCH of the difference (no
    /// request when there is none); `None` makes a patching adapter read the copy back first.
    /// A copy the vendor no longer has is [`DeliveryError::NotFound`].
    async fn update(&self, remote_id: &str, previous: Option<&Value>, payload: &Value) -> Result<(), DeliveryError>;

    /// Deactivates the vendor's copy.
    async fn deactivate(&self, remote_id: &str) -> Result<(), DeliveryError>;

    /// Deletes the vendor's copy; one already gone counts as deleted.
    async fn delete(&self, remote_id: &str) -> Result<(), DeliveryError>;

    /// The payload the vendor accepts for `group` (its SCIM representation without `members`),
    /// with its members given as the vendor's ids. Only called when `capabilities().groups`.
    fn translate_group(&self, group: &Map<String, Value>, member_remote_ids: &[String]) -> Result<Value, Violation> {
        let _ = (group, member_remote_ids);
        Err(Violation::new("members", format!("the {} adapter does not deliver groups", self.kind())))
    }

    /// Looks up the vendor's copy of `group` (by `displayName`, typically).
    async fn find_group(&self, group: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError> {
        let _ = group;
        Err(no_groups(self.kind()))
    }

    /// Creates the group at the vendor.
    async fn create_group(&self, payload: &Value) -> Result<Remote, DeliveryError> {
        let _ = payload;
        Err(no_groups(self.kind()))
    }

    /// Brings the vendor's group `remote_id` to `payload`, members included.
    async fn update_group(&self, remote_id: &str, payload: &Value) -> Result<(), DeliveryError> {
        let _ = (remote_id, payload);
        Err(no_groups(self.kind()))
    }

    /// Deletes the vendor's group; one already gone counts as deleted.
    async fn delete_group(&self, remote_id: &str) -> Result<(), DeliveryError> {
        let _ = remote_id;
        Err(no_groups(self.kind()))
    }
}

fn no_groups(kind: &str) -> DeliveryError {
    DeliveryError::permanent(format!("the {kind} adapter does not deliver groups"))
}
