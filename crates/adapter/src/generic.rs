//! The `scim` adapter kind: any SCIM 2.0 app, with the attributes to send given as an allow-list.
//!
//! ```toml
//! [[targets]]
//! name = "crm"
//! kind = "scim"
//! base_url = "https://crm.example/scim/v2"
//! token_file = "/run/secrets/crm"
//! attributes = ["userName", "active", "name.givenName", "name.familyName", "emails"]
//! match_attribute = "userName"   # or "externalId": how an existing account is found and adopted
//! update = "patch"               # or "put": how a change of a user is sent
//! ```
//!
//! Users are created with `POST /Users`, deactivated with a PATCH of `active`, and deleted with
//! `DELETE`. A change is, by default (`update = "patch"`), one `PATCH /Users/{id}` of the
//! difference between what the app was last sent and the allow-listed state it should now hold
//! ([`crate::diff`], RFC 7644 shapes; no request when nothing changed; the app's copy read back
//! once when nothing was recorded), so attributes outside the allow-list that only the app holds
//! are never touched. `update = "put"` sends `PUT /Users/{id}` with the whole allow-listed state
//! instead, for apps that do not implement PATCH. With `groups = true`, groups go the same way to `/Groups`: found by
//! `displayName`, sent with `displayName`, `externalId` and their members as the app's ids.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use scimgw_scim::value::get_ci;

use crate::adapter::{Adapter, Capabilities, ReadBack, Remote, UserPage, Violation};
use crate::client::ScimClient;
use crate::diff::{Dialect, patch_user};
use crate::outcome::DeliveryError;
use crate::secret::Secret;
use crate::target::TargetConfig;

/// The core User schema URN.
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The core Group schema URN.
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Attributes sent when the target gives no `attributes` list.
pub const DEFAULT_ATTRIBUTES: &[&str] = &["userName", "externalId", "active", "name", "displayName", "emails"];

/// The adapter's own configuration keys.
const OPTION_KEYS: &[&str] = &["attributes", "match_attribute", "groups", "update"];

/// A generic SCIM 2.0 target.
#[derive(Debug)]
pub struct ScimAdapter {
    client: ScimClient,
    /// Allow-listed attribute paths: `name`, `name.givenName`, `urn:…:User:department`.
    attributes: Vec<AttrPath>,
    /// Whether `attributes` came from the target (else [`DEFAULT_ATTRIBUTES`]).
    attributes_listed: bool,
    match_attribute: MatchAttribute,
    groups: bool,
    update: UpdateMode,
}

/// How a change of a user is sent (the `update` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpdateMode {
    /// One PATCH of the difference (the default).
    Patch,
    /// A PUT of the whole allow-listed state.
    Put,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AttrPath {
    /// An extension URN, for attributes that live under one.
    urn: Option<String>,
    name: String,
    sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchAttribute {
    UserName,
    ExternalId,
}

impl MatchAttribute {
    fn name(self) -> &'static str {
        match self {
            MatchAttribute::UserName => "userName",
            MatchAttribute::ExternalId => "externalId",
        }
    }
}

fn parse_path(text: &str) -> Result<AttrPath, String> {
    let (urn, rest) = match text.rfind(':') {
        Some(i) if text.to_ascii_lowercase().starts_with("urn:") => (Some(text[..i].to_owned()), &text[i + 1..]),
        _ => (None, text),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s.to_owned())),
        None => (rest, None),
    };
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid(name) || sub.as_deref().is_some_and(|s| !valid(s)) {
        return Err(format!("attributes: \"{text}\" is not an attribute path (name, name.sub or urn:…:name)"));
    }
    Ok(AttrPath { urn, name: name.to_owned(), sub })
}

impl ScimAdapter {
    /// Builds the adapter of one target (the [`crate::Constructor`] of kind `scim`).
    pub fn from_config(target: &TargetConfig, token: Secret) -> Result<ScimAdapter, String> {
        if let Some(unknown) = target.options.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
            return Err(crate::target::unknown_key("scim", unknown, OPTION_KEYS));
        }
        let attributes = match target.options.get("attributes") {
            None => DEFAULT_ATTRIBUTES.iter().map(|a| parse_path(a)).collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or("attributes: every entry must be a string".to_owned()).and_then(parse_path))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err("attributes must be a list of attribute paths".into()),
        };
        if !attributes.iter().any(|a| a.urn.is_none() && a.name.eq_ignore_ascii_case("userName")) {
            return Err("attributes must include userName (SCIM requires it on every user)".into());
        }
        let match_attribute = match target.options.get("match_attribute").map(|v| v.as_str()) {
            None | Some(Some("userName")) => MatchAttribute::UserName,
            Some(Some("externalId")) => MatchAttribute::ExternalId,
            Some(_) => return Err("match_attribute must be \"userName\" or \"externalId\"".into()),
        };
        let groups = match target.options.get("groups") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("groups must be true or false".into()),
        };
        let update = match target.options.get("update").map(|v| v.as_str()) {
            None | Some(Some("patch")) => UpdateMode::Patch,
            Some(Some("put")) => UpdateMode::Put,
            Some(_) => return Err("update must be \"patch\" or \"put\"".into()),
        };
        let client = ScimClient::new(&target.base_url, token, target.client_options())?;
        let attributes_listed = target.options.contains_key("attributes");
        Ok(ScimAdapter { client, attributes, attributes_listed, match_attribute, groups, update })
    }

    /// [`ScimAdapter::from_config`] as a registry constructor.
    pub fn construct(target: &TargetConfig, token: Secret) -> Result<Arc<dyn Adapter>, String> {
        Ok(Arc::new(ScimAdapter::from_config(target, token)?))
    }

    /// The matching attribute's value: `userName` without case (RFC 7643 makes it
    /// case-insensitive), `externalId` as is (case-exact).
    fn key_of(&self, resource: &Map<String, Value>) -> Option<String> {
        let value = get_ci(resource, self.match_attribute.name()).and_then(Value::as_str)?;
        Some(match self.match_attribute {
            MatchAttribute::UserName => value.to_lowercase(),
            MatchAttribute::ExternalId => value.to_owned(),
        })
    }

    /// Whether the target asked for groups (`groups = true`).
    pub fn wants_groups(&self) -> bool {
        self.groups
    }
}

/// A string as a SCIM filter literal (JSON string syntax).
pub fn filter_literal(value: &str) -> String {
    Value::String(value.to_owned()).to_string()
}

#[async_trait]
impl Adapter for ScimAdapter {
    fn kind(&self) -> &'static str {
        "scim"
    }

    fn capabilities(&self) -> Capabilities {
        // Listing is part of RFC 7644 (§3.4.2), so every SCIM app can be paged through.
        Capabilities { users: true, groups: self.groups, deactivate: true, delete: true, read_back: ReadBack::List }
    }

    fn validate(&self, user: &Map<String, Value>) -> Vec<Violation> {
        let mut out = Vec::new();
        if self.match_attribute == MatchAttribute::ExternalId && get_ci(user, "externalId").is_none_or(Value::is_null) {
            out.push(Violation::new("externalId", "this target matches accounts by externalId, so it is required"));
        }
        out
    }

    fn translate(&self, user: &Map<String, Value>) -> Result<Value, Violation> {
        let mut out = Map::new();
        let mut schemas = vec![Value::from(USER_URN)];
        for path in &self.attributes {
            let source = match &path.urn {
                None => Some(user),
                Some(urn) => user.iter().find(|(k, _)| k.eq_ignore_ascii_case(urn)).and_then(|(_, v)| v.as_object()),
            };
            let Some(value) = source.and_then(|s| get_ci(s, &path.name)) else {
                continue;
            };
            let value = match &path.sub {
                None => value.clone(),
                Some(sub) => match value.as_object().and_then(|o| get_ci(o, sub)) {
                    Some(v) => json!({ sub.as_str(): v }),
                    None => continue,
                },
            };
            let dest = match &path.urn {
                None => &mut out,
                Some(urn) => {
                    if !schemas.iter().any(|s| s.as_str() == Some(urn.as_str())) {
                        schemas.push(Value::from(urn.as_str()));
                    }
                    out.entry(urn.clone()).or_insert_with(|| Value::Object(Map::new()));
                    match out.get_mut(urn).and_then(Value::as_object_mut) {
                        Some(o) => o,
                        None => continue,
                    }
                }
            };
            match (dest.get_mut(&path.name), value) {
                (Some(Value::Object(existing)), Value::Object(more)) if path.sub.is_some() => existing.extend(more),
                (_, v) => {
                    dest.insert(path.name.clone(), v);
                }
            }
        }
        out.insert("schemas".into(), Value::Array(schemas));
        Ok(Value::Object(out))
    }

    /// What `translate` leaves out (read off its result, so the two cannot disagree): each
    /// attribute, sub-attribute and extension attribute outside the target's `attributes`.
    fn dropped(&self, user: &Map<String, Value>) -> Vec<(String, String)> {
        let Ok(Value::Object(sent)) = self.translate(user) else { return Vec::new() };
        let reason = if self.attributes_listed {
            "not in the target's attributes".to_owned()
        } else {
            format!(
                "not in the default attributes ({}); list it in attributes to send it",
                DEFAULT_ATTRIBUTES.join(", ")
            )
        };
        let mut out = Vec::new();
        for (key, value) in user {
            // The gateway's own id and metadata are never a target's; `schemas` is rebuilt.
            if matches!(key.as_str(), "schemas" | "id" | "meta") {
                continue;
            }
            let kept = get_ci(&sent, key);
            let sep = if key.to_ascii_lowercase().starts_with("urn:") { ':' } else { '.' };
            match (value, kept) {
                (_, None) => out.push((key.clone(), reason.clone())),
                (Value::Object(parts), Some(Value::Object(kept))) => {
                    for (sub, sub_value) in parts {
                        match (sub_value, get_ci(kept, sub)) {
                            (_, None) => out.push((format!("{key}{sep}{sub}"), reason.clone())),
                            // An extension attribute listed by one sub-attribute (`urn:…:manager.value`).
                            (Value::Object(inner), Some(Value::Object(kept_inner))) => {
                                out.extend(
                                    inner
                                        .keys()
                                        .filter(|k| get_ci(kept_inner, k).is_none())
                                        .map(|k| (format!("{key}{sep}{sub}.{k}"), reason.clone())),
                                );
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    async fn find(&self, user: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError> {
        match self.lookup_user(user).await? {
            None => Ok(None),
            Some(found) => remote_of(&found).map(Some),
        }
    }

    fn match_key(&self, user: &Map<String, Value>) -> Option<String> {
        self.key_of(user)
    }

    fn remote_match_key(&self, remote: &Map<String, Value>) -> Option<String> {
        self.key_of(remote)
    }

    async fn list_users(&self, start_index: u64, count: u64) -> Result<UserPage, DeliveryError> {
        self.client.list("Users", start_index, count).await
    }

    async fn read_user(&self, remote_id: &str) -> Result<Option<Value>, DeliveryError> {
        self.client.get("Users", remote_id).await
    }

    async fn lookup_user(&self, user: &Map<String, Value>) -> Result<Option<Value>, DeliveryError> {
        let attr = self.match_attribute.name();
        let Some(value) = get_ci(user, attr).and_then(Value::as_str) else {
            return Ok(None);
        };
        self.client.find_one("Users", &format!("{attr} eq {}", filter_literal(value))).await
    }

    async fn create(&self, payload: &Value) -> Result<Remote, DeliveryError> {
        remote_of(&self.client.create("Users", payload).await?)
    }

    fn updates_by_diff(&self) -> bool {
        self.update == UpdateMode::Patch
    }

    async fn update(&self, remote_id: &str, previous: Option<&Value>, payload: &Value) -> Result<(), DeliveryError> {
        if self.update == UpdateMode::Put {
            let mut body = payload.clone();
            if let Some(o) = body.as_object_mut() {
                o.insert("id".into(), Value::from(remote_id));
            }
            return self.client.replace("Users", remote_id, &body).await.map(drop);
        }
        // The copy, when read back, is seen through the allow-list (`translate`): what the app
        // holds beyond it is not ours to diff.
        patch_user(self, &self.client, remote_id, previous, payload, Dialect::Rfc).await
    }

    async fn deactivate(&self, remote_id: &str) -> Result<(), DeliveryError> {
        let ops = json!([{"op": "replace", "path": "active", "value": false}]);
        self.client.patch("Users", remote_id, ops).await.map(drop)
    }

    async fn delete(&self, remote_id: &str) -> Result<(), DeliveryError> {
        self.client.delete("Users", remote_id).await
    }

    fn translate_group(&self, group: &Map<String, Value>, member_remote_ids: &[String]) -> Result<Value, Violation> {
        let name = get_ci(group, "displayName")
            .and_then(Value::as_str)
            .ok_or_else(|| Violation::new("displayName", "a group needs a displayName"))?;
        let mut out = Map::new();
        out.insert("schemas".into(), json!([GROUP_URN]));
        out.insert("displayName".into(), Value::from(name));
        if let Some(ext) = get_ci(group, "externalId").filter(|v| v.is_string()) {
            out.insert("externalId".into(), ext.clone());
        }
        let members: Vec<Value> = member_remote_ids.iter().map(|id| json!({ "value": id })).collect();
        out.insert("members".into(), Value::Array(members));
        Ok(Value::Object(out))
    }

    async fn find_group(&self, group: &Map<String, Value>) -> Result<Option<Remote>, DeliveryError> {
        let Some(name) = get_ci(group, "displayName").and_then(Value::as_str) else {
            return Ok(None);
        };
        let filter = format!("displayName eq {}", filter_literal(name));
        match self.client.find_one("Groups", &filter).await? {
            None => Ok(None),
            Some(found) => remote_of(&found).map(Some),
        }
    }

    async fn create_group(&self, payload: &Value) -> Result<Remote, DeliveryError> {
        remote_of(&self.client.create("Groups", payload).await?)
    }

    async fn update_group(&self, remote_id: &str, payload: &Value) -> Result<(), DeliveryError> {
        let mut body = payload.clone();
        if let Some(o) = body.as_object_mut() {
            o.insert("id".into(), Value::from(remote_id));
        }
        self.client.replace("Groups", remote_id, &body).await.map(drop)
    }

    async fn delete_group(&self, remote_id: &str) -> Result<(), DeliveryError> {
        self.client.delete("Groups", remote_id).await
    }
}

/// The vendor id in a vendor's answer.
fn remote_of(resource: &Value) -> Result<Remote, DeliveryError> {
    match resource.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(Remote { id: id.clone() }),
        Some(Value::Number(n)) => Ok(Remote { id: n.to_string() }),
        _ => Err(DeliveryError::Retryable { message: "the target's answer has no \"id\"".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(options: Value) -> TargetConfig {
        let mut t = json!({"name": "crm", "kind": "scim", "base_url": "http://127.0.0.1:9/scim/v2"});
        if let (Some(t), Some(o)) = (t.as_object_mut(), options.as_object()) {
            t.extend(o.clone());
        }
        serde_json::from_value(t).unwrap()
    }

    fn user() -> Map<String, Value> {
        json!({
            "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "id": "local-1",
            "userName": "alice@example.com",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
            "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
            "title": "Engineer",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "costCenter": "7"}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn translate_sends_only_the_allow_list() {
        let a = ScimAdapter::from_config(
            &target(json!({"attributes": [
                "userName", "name.givenName", "emails",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            ]})),
            Secret::new("t"),
        )
        .unwrap();
        assert_eq!(
            a.translate(&user()).unwrap(),
            json!({
                "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "alice@example.com",
                "name": {"givenName": "Alice"},
                "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            })
        );
        let default = ScimAdapter::from_config(&target(json!({})), Secret::new("t")).unwrap();
        let out = default.translate(&user()).unwrap();
        assert!(out.get("title").is_none() && out.get("id").is_none());
        assert_eq!(out["active"], json!(true));
    }

    #[test]
    fn dropped_names_every_attribute_outside_the_allow_list() {
        let a = ScimAdapter::from_config(
            &target(json!({"attributes": [
                "userName", "name.givenName", "emails",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
            ]})),
            Secret::new("t"),
        )
        .unwrap();
        let dropped = a.dropped(&user());
        let names: Vec<&str> = dropped.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "active",
                "name.familyName",
                "name.formatted",
                "title",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
            ]
        );
        assert!(dropped.iter().all(|(_, why)| why == "not in the target's attributes"), "{dropped:?}");
        let default = ScimAdapter::from_config(&target(json!({})), Secret::new("t")).unwrap();
        let dropped = default.dropped(&user());
        let names: Vec<&str> = dropped.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(names, ["title", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]);
        assert!(dropped[0].1.contains("not in the default attributes (userName, externalId"), "{dropped:?}");
    }

    #[test]
    fn bad_options_are_refused_by_name() {
        for (opts, needle) in [
            (json!({"atributes": []}), "unknown key \"atributes\""),
            (json!({"attributes": "userName"}), "must be a list"),
            (json!({"attributes": ["name"]}), "must include userName"),
            (json!({"attributes": ["userName", "a b"]}), "not an attribute path"),
            (json!({"match_attribute": "email"}), "match_attribute"),
            (json!({"groups": "yes"}), "groups must be"),
            (json!({"update": "replace"}), "update must be"),
        ] {
            let err = ScimAdapter::from_config(&target(opts), Secret::new("t")).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn matching_by_external_id_makes_it_required() {
        let a = ScimAdapter::from_config(&target(json!({"match_attribute": "externalId"})), Secret::new("t")).unwrap();
        let v = a.validate(&user());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].attribute, "externalId");
        assert_eq!(filter_literal("a\"b"), "\"a\\\"b\"");
    }
}
