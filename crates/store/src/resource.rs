//! The store's resource types (users and groups as stored) and their SCIM rendering with `id` and `meta`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use scimgw_scim::ScimError;

/// Users or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl Kind {
    /// The SCIM resource type name: `User` or `Group`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The kind a SCIM resource type name names (`User`, `Group`; exact, as the store writes them).
    pub fn from_resource_type(name: &str) -> Option<Kind> {
        match name {
            "User" => Some(Kind::User),
            "Group" => Some(Kind::Group),
            _ => None,
        }
    }

    /// The endpoint of the resource type under the service's base URL: `Users` or `Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }

    /// Where the resource `id` of this kind lives: `{base}/Users/{id}` or `{base}/Groups/{id}`,
    /// `base` being the service's base URL (`https://host/scim/v2`). The one place that builds a
    /// resource's URL: `meta.location`, a member's `$ref` and a create's `Location` header.
    pub fn location(self, base: &str, id: &str) -> String {
        // Pushed, not `format!`ted: a group's GET builds one for each of its members.
        let (base, endpoint) = (base.trim_end_matches('/'), self.endpoint());
        let mut url = String::with_capacity(base.len() + endpoint.len() + id.len() + 2);
        for part in [base, "/", endpoint, "/", id] {
            url.push_str(part);
        }
        url
    }
}

/// One member of a group: a user's or a group's id, which of the two it is, and its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// The member's id.
    pub value: String,
    /// `User` or `Group` (RFC 7643 §4.2). Read from the store: what the member is, found by its
    /// id (the stored type when the id names nothing any more). Written: as the caller says.
    pub r#type: Option<String>,
    /// The member's name as read from its own row: a user's `displayName`, else its `userName`;
    /// a group's `displayName`. Filled in by reads only; ignored by writes (readOnly, RFC 7643
    /// §4.2), so it is never stale.
    pub display: Option<String>,
}

impl Member {
    /// A member without a type.
    pub fn new(value: impl Into<String>) -> Self {
        Self { value: value.into(), r#type: None, display: None }
    }

    /// A member with a type.
    pub fn typed(value: impl Into<String>, ty: impl Into<String>) -> Self {
        Self { value: value.into(), r#type: Some(ty.into()), display: None }
    }

    /// This member with a display name.
    pub fn with_display(self, display: impl Into<String>) -> Self {
        Self { display: Some(display.into()), ..self }
    }

    /// `{"value", "$ref", "type", "display"}`, each but `value` only when known; `$ref` is the
    /// member's location under `base` (see [`Kind::location`]).
    pub fn to_json(&self, base: Option<&str>) -> Value {
        self.clone().into_json(base)
    }

    /// [`Member::to_json`], moving the member's strings into the JSON.
    pub fn into_json(self, base: Option<&str>) -> Value {
        let mut m = Map::new();
        if let Some(t) = self.r#type {
            if let (Some(base), Some(kind)) = (base, Kind::from_resource_type(&t)) {
                m.insert("$ref".into(), Value::String(kind.location(base, &self.value)));
            }
            m.insert("type".into(), Value::String(t));
        }
        if let Some(d) = self.display {
            m.insert("display".into(), Value::String(d));
        }
        m.insert("value".into(), Value::String(self.value));
        Value::Object(m)
    }
}

/// One of a user's groups in its `groups` attribute: `value` (the group's id), `$ref` (with a base
/// URL), `display` (its displayName) and `type` `direct` — the store keeps direct memberships only.
fn group_json(group: Member, base: Option<&str>) -> Value {
    let mut m = Map::new();
    if let Some(base) = base {
        m.insert("$ref".into(), Value::String(Kind::Group.location(base, &group.value)));
    }
    if let Some(d) = group.display {
        m.insert("display".into(), Value::String(d));
    }
    m.insert("type".into(), Value::String("direct".into()));
    m.insert("value".into(), Value::String(group.value));
    Value::Object(m)
}

/// A resource to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    /// User or group.
    pub kind: Kind,
    /// The canonical body (`resource::validate_resource`'s output) without `id`, `meta` and, for
    /// groups, without `members`: members are rows of their own.
    pub body: Map<String, Value>,
    /// A group's members (a user's must be empty). Duplicate values are stored once.
    pub members: Vec<Member>,
}

/// A stored user or group.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The id the store assigned (a UUID).
    pub id: String,
    /// User or group.
    pub kind: Kind,
    /// The canonical body, without `id`, `meta` and `members`.
    pub body: Map<String, Value>,
    /// Bumped by every change; the ETag is `W/"<version>"`.
    pub version: i64,
    /// When it was created (millisecond precision).
    pub created: DateTime<Utc>,
    /// When it last changed (millisecond precision).
    pub last_modified: DateTime<Utc>,
    /// The resource's membership rows, when they were asked for; `None` when not loaded. A
    /// group's members, ordered by value; a user's groups (RFC 7643 §4.1.2's readOnly `groups`,
    /// direct memberships only), each as a [`Member`] whose `value` is the group's id and
    /// `display` its displayName, ordered by id.
    pub members: Option<Vec<Member>>,
}

impl Resource {
    /// The SCIM representation: `schemas`, `id`, the body's attributes, `members` (groups, when
    /// loaded and not empty; see [`Member::to_json`]), then `meta` with `resourceType`, `created`,
    /// `lastModified` (RFC 3339, milliseconds, `Z`), `version` (`W/"<version>"`) and `location`
    /// ([`Kind::location`]). `base` is the service's base URL (`https://host/scim/v2`); without
    /// one there is no `location` and no member `$ref`.
    pub fn to_scim(&self, base: Option<&str>) -> Map<String, Value> {
        self.clone().into_scim(base)
    }

    /// [`Resource::to_scim`], moving the body and the members into the JSON: for a response,
    /// where a group's members would otherwise be copied once more.
    pub fn into_scim(self, base: Option<&str>) -> Map<String, Value> {
        let mut meta = Map::new();
        meta.insert("resourceType".into(), Value::String(self.kind.resource_type().into()));
        meta.insert("created".into(), Value::String(rfc3339_ms(self.created)));
        meta.insert("lastModified".into(), Value::String(rfc3339_ms(self.last_modified)));
        meta.insert("version".into(), Value::String(self.etag()));
        if let Some(base) = base {
            meta.insert("location".into(), Value::String(self.kind.location(base, &self.id)));
        }
        let mut out = Map::new();
        for (key, value) in self.body {
            if !matches!(key.as_str(), "id" | "meta" | "members") {
                out.insert(key, value);
            }
        }
        out.insert("id".into(), Value::String(self.id));
        match (self.kind, self.members.filter(|m| !m.is_empty())) {
            (_, None) => {}
            (Kind::Group, Some(members)) => {
                out.insert("members".into(), Value::Array(members.into_iter().map(|m| m.into_json(base)).collect()));
            }
            (Kind::User, Some(groups)) => {
                out.insert("groups".into(), Value::Array(groups.into_iter().map(|g| group_json(g, base)).collect()));
            }
        }
        out.insert("meta".into(), Value::Object(meta));
        out
    }

    /// The user's groups as JSON (see [`group_json`]), when loaded; `None` for a group.
    pub fn groups_json(&self, base: Option<&str>) -> Option<Value> {
        let groups = self.members.as_ref().filter(|_| self.kind == Kind::User)?;
        Some(Value::Array(groups.iter().cloned().map(|g| group_json(g, base)).collect()))
    }

    /// The weak ETag of this version: `W/"<version>"`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// What an update closure decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Nothing to change: the version is not bumped and nothing is written.
    Unchanged,
    /// Store this body (canonical, without `id`, `meta`, `members`) and apply these member changes
    /// in order; the version is bumped by one.
    Update {
        /// The new body.
        body: Map<String, Value>,
        /// Member changes (groups only), applied in order.
        members: Vec<MembersChange>,
    },
}

/// A change to a group's member rows. None of them reads or rewrites the other members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembersChange {
    /// Add these members; values already present are left as they are.
    Add(Vec<Member>),
    /// Remove the members with these values (exact match); absent ones are ignored.
    Remove(Vec<String>),
    /// Remove every member.
    Clear,
    /// Make the members exactly these (only the difference is written).
    Set(Vec<Member>),
}

/// The outcome of [`crate::Store::update`].
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    /// The resource after the update (members loaded iff `load_members` was asked).
    pub resource: Resource,
    /// Whether anything changed (`false` for [`Change::Unchanged`]: same version).
    pub changed: bool,
}

/// `2024-05-01T10:00:00.123Z`.
pub(crate) fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Microseconds since the epoch as a time; out-of-range values (never written by the store) read
/// as the epoch.
pub(crate) fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Now, truncated to whole milliseconds: `meta` shows milliseconds, and filters on
/// `meta.lastModified` must give the same answer in SQL (on microseconds) as on the rendered text.
pub(crate) fn now_us() -> i64 {
    let us = Utc::now().timestamp_micros();
    us - us.rem_euclid(1000)
}

/// Refuses a body the tables cannot hold (the canonical form always has these).
pub(crate) fn missing(attribute: &str, kind: Kind) -> ScimError {
    ScimError::invalid_value(format!(
        "required attribute \"{attribute}\" is missing or not a string (RFC 7643 requires it for a {})",
        kind.resource_type()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scim_rendering_adds_id_members_and_meta_to_the_stored_body() {
        let body = json!({"displayName": "Ops", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]});
        let r = Resource {
            id: "g1".into(),
            kind: Kind::Group,
            body: body.as_object().unwrap().clone(),
            version: 3,
            created: from_us(1_700_000_000_123_000),
            last_modified: from_us(1_700_000_001_000_000),
            members: Some(vec![
                Member::typed("u1", "User").with_display("Ann"),
                Member::typed("g2", "Group").with_display("Ops"),
                Member::new("u2"),
            ]),
        };
        let out = r.to_scim(Some("https://x/scim/"));
        assert_eq!(
            Value::Object(out),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": "g1",
                "displayName": "Ops",
                "members": [
                    {"value": "u1", "$ref": "https://x/scim/Users/u1", "type": "User", "display": "Ann"},
                    {"value": "g2", "$ref": "https://x/scim/Groups/g2", "type": "Group", "display": "Ops"},
                    {"value": "u2"}
                ],
                "meta": {
                    "resourceType": "Group",
                    "created": "2023-11-14T22:13:20.123Z",
                    "lastModified": "2023-11-14T22:13:21.000Z",
                    "version": "W/\"3\"",
                    "location": "https://x/scim/Groups/g1"
                }
            })
        );
        let unplaced = r.to_scim(None);
        assert_eq!(
            unplaced["members"][0],
            json!({"value": "u1", "type": "User", "display": "Ann"}),
            "no base, no $ref"
        );
        let none = Resource { members: Some(Vec::new()), ..r };
        assert!(!none.to_scim(None).contains_key("members"));
        assert!(!none.to_scim(None)["meta"].as_object().unwrap().contains_key("location"));
        assert_eq!(none.etag(), "W/\"3\"");
    }

    #[test]
    fn now_is_whole_milliseconds() {
        assert_eq!(now_us() % 1000, 0);
    }
}
