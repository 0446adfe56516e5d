//! JumpCloud's real-time user import: a URL flag for anything but creates, RFC-shaped PATCH only,
//! strict `userName` and company email rules, `userName` the only filter.
//!
//! Every rule comes from `shared/VENDORS.md`, section "JumpCloud-style directory", which digests
//! the vendor's Entra ID article (`shared/seeds/jumpcloud-entra-scim-import.txt`: its
//! "Considerations" and its "Supported SCIM Attribute Mappings" table with a validation column):
//!
//! - **The `aadOptscim062020` flag** — "must be added to the Tenant URL for user updates and
//!   deprovisioning to be supported. Only new users will be created if this flag is not added":
//!   without it on the query, `PUT`, `PATCH` and `DELETE` are `403` with a detail that names the
//!   flag. Reads (`GET`, `POST /Users/.search`) and `POST /Users` pass. 403, not 400: the request
//!   is well formed, the connection as configured is not allowed to do it, and a 4xx is not
//!   retried.
//! - **RFC-shaped PATCH** — "Speaks only the RFC-shaped PATCH (that is what the flag turns on in
//!   Entra)": what Entra's legacy dialect sends, and the protocol core accepts, is refused here
//!   with `400`: an `op` not in lower case (`"Replace"`, `invalidSyntax`), a boolean sent as a
//!   string (`"active": "False"`, `invalidValue`; also in `POST`/`PUT` bodies, where the table types
//!   `active` as boolean), dotted keys in a path-less `add`/`replace` (`"name.givenName"`,
//!   `invalidPath`), a `remove` that carries a `value` (`invalidSyntax`).
//! - **Users only** — "Real-time Group import isn't currently supported": no `/Groups` (404).
//! - **Filters** *(our choice)* — the guide marks no filterable attribute and says nothing of
//!   lookups; Entra matches on `userName` by default, so only `userName eq "…"` passes
//!   (`400 invalidFilter`).
//! - **`userName`** — "required, no special characters, (max length 1024). note: email may not be
//!   used as username": an email-shaped value is `400 invalidValue` "must not be an email address";
//!   "no special characters" read conservatively as ASCII letters, digits, `.`, `-`, `_` (VENDORS.md
//!   says so); at most 1024 characters. Unique ignoring case (`409 uniqueness`).
//! - **Company email** — "emails: value (primary) … email, required, max length 1024": the email
//!   marked primary, else the work email, must be present, email-shaped and at most 1024
//!   characters. Each email must be the work one or the primary one: the table maps only that one.
//! - **Names** — `name.givenName`, `name.familyName`: "max length 1024" each.
//! - **`manager`** — "The manager attribute isn't supported": `400 invalidValue` "not supported".
//! - **Attributes** — only the table's: `userName`, `name.givenName`, `name.familyName`, `emails`,
//!   `displayName`, `active`, `title`, `locale`, `userType`, and the Enterprise extension's
//!   `department`, `costCenter`, `organization`, `employeeNumber`; anything else — `externalId`,
//!   `name.formatted` included — is `400 invalidValue` naming it ("Any unsupported attributes that
//!   are left enabled in Entra ID can cause the provisioning to fail", line 32).
//! - **`costCenter` and `organization`** — the table's "SCIM v2 Mapping" column writes them
//!   without a URN (lines 68, 70), unlike `department` and `employeeNumber` (lines 65, 72): that
//!   bare spelling is what the table says the app "will accept" (line 49), and what the gateway's
//!   adapter sends. RFC 7643 §4.3 defines both in the Enterprise extension, and each maps to one
//!   directory property (`costCenter`, `company`), so the Enterprise spelling is taken too: the
//!   top-level spelling is read as the Enterprise one (in bodies, PATCH paths and path-less PATCH
//!   values) and stored there, which is also where reads return it. The same value sent both ways
//!   is taken; two different values are `400 invalidValue`. The e2e test
//!   `cost_center_and_organization_reach_jumpcloud_without_a_urn` checks the spelling the adapter
//!   sends in the request log.
//! - The column writes the Enterprise URN with a lower-case `user` (`…:2.0:user:department`): URNs
//!   are compared ignoring case, so that spelling and RFC 7643's `…:2.0:User` are one extension.
//! - **`employeeNumber`** — becomes `employeeIdentifier` (line 73), which "must be unique among
//!   the directory's users" *(outside the seed: VENDORS.md, from the vendor's V1 API)*:
//!   `409 uniqueness`.
//! - **Inactive users** — "If a user is inactive in the source application, the user will not be
//!   created": a create with `active: false` is `400 invalidValue`, which catches a gateway that
//!   creates one. An existing user may be deactivated (`PATCH`; `PUT` of a user is refused by
//!   every vendor profile, as Entra never sends one). Pre-seeded users follow the
//!   same rule: seed an active user, then deactivate it over HTTP.

use scimgw_scim::ScimError;
use scimgw_scim::filter::Filter;
use scimgw_scim::schema::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
use scimgw_scim::value::{get_ci, get_ci_mut, key_ci, remove_ci};
use serde_json::{Map, Value};

use super::rules::{self, AttributeTable, MultiValued};
use super::{Kind, PatchTarget, Profile, RequestInfo, Write};
use crate::patch::{Path, parse_path};

const VENDOR: &str = "JumpCloud";

/// The query flag that turns on updates and deprovisioning.
pub const AAD_OPT_FLAG: &str = "aadOptscim062020";

/// The vendor's "max length" for `userName`, names and the company email.
const MAX_LEN: usize = 1024;

/// The attribute table of VENDORS.md, "JumpCloud-style directory" (`manager` is refused before
/// this table is consulted, with its own message).
const TABLE: AttributeTable = AttributeTable {
    vendor: VENDOR,
    simple: &["userName", "displayName", "active", "title", "locale", "userType"],
    complex: &[("name", &["givenName", "familyName"])],
    multi: &[MultiValued { name: "emails", types: &["work"], primary_is_enough: true, subs: &["value"] }],
    extensions: &[(ENTERPRISE_USER_SCHEMA, &["department", "costCenter", "organization", "employeeNumber"])],
};

/// Attributes the table lists both at the top level and in the Enterprise extension.
const ENTERPRISE_ALIASES: &[&str] = &["costCenter", "organization"];

/// JumpCloud's SCIM import endpoint (see the module doc for each rule and its source).
#[derive(Debug, Clone, Copy, Default)]
pub struct JumpCloudProfile;

impl Profile for JumpCloudProfile {
    fn name(&self) -> &'static str {
        "jumpcloud"
    }

    fn accepted_extensions(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec![ENTERPRISE_USER_SCHEMA.into()],
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

    fn unique_attributes(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::User => vec!["userName".into(), format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber")],
            Kind::Group => Vec::new(),
        }
    }

    fn admit(&self, request: &RequestInfo<'_>) -> Result<(), ScimError> {
        let writes_existing = matches!(request.method, "PUT" | "PATCH" | "DELETE");
        if writes_existing && !request.has_query_flag(AAD_OPT_FLAG) {
            return Err(ScimError::new(
                403,
                None,
                format!(
                    "{VENDOR}: only new users are created without the {AAD_OPT_FLAG} flag; add \
                     ?{AAD_OPT_FLAG} to the Tenant URL for updates and deprovisioning"
                ),
            ));
        }
        Ok(())
    }

    fn check_filter(&self, _kind: Kind, filter: &Filter) -> Result<(), ScimError> {
        rules::only_username_eq(VENDOR, filter)
    }

    fn read_body(&self, _kind: Kind, body: Value, write: Write<'_>) -> Result<Value, ScimError> {
        // Anything but an object is left to the core, which says what it expected.
        let Value::Object(mut obj) = body else { return Ok(body) };
        match write {
            Write::Patch { .. } => read_patch(&mut obj)?,
            Write::Create | Write::Replace { .. } => {
                if let Some(at) = string_boolean(&obj, "") {
                    return Err(string_boolean_error(&at));
                }
                if move_aliases(&mut obj)? {
                    add_enterprise_schema(&mut obj);
                }
            }
        }
        Ok(Value::Object(obj))
    }

    fn check_patch_target(&self, _kind: Kind, target: &PatchTarget<'_>) -> Result<(), ScimError> {
        let enterprise = target.extension.is_some_and(|u| u.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA));
        if enterprise && target.attribute.eq_ignore_ascii_case("manager") {
            return Err(manager_not_supported());
        }
        TABLE.check_target(target)
    }

    fn validate_user(&self, user: &Map<String, Value>, write: Write<'_>) -> Result<(), ScimError> {
        if user.get(ENTERPRISE_USER_SCHEMA).and_then(|e| e.get("manager")).is_some() {
            return Err(manager_not_supported());
        }
        TABLE.check(user)?;
        check_user_name(rules::string(user, "userName").unwrap_or(""))?;
        check_company_email(user)?;
        for sub in ["givenName", "familyName"] {
            if rules::sub_string(user, "name", sub).is_some_and(|s| rules::char_len(s) > MAX_LEN) {
                return Err(ScimError::invalid_value(format!(
                    "{VENDOR}: name.{sub} is longer than {MAX_LEN} characters"
                )));
            }
        }
        if matches!(write, Write::Create) && user.get("active") == Some(&Value::Bool(false)) {
            return Err(ScimError::invalid_value(format!(
                "{VENDOR}: a user that is inactive in the source is not created (active is false)"
            )));
        }
        Ok(())
    }
}

/// "The manager attribute isn't supported".
fn manager_not_supported() -> ScimError {
    ScimError::invalid_value(format!("{VENDOR}: attribute \"{ENTERPRISE_USER_SCHEMA}:manager\" is not supported"))
}

/// Required (the core checks presence), not an email, ASCII letters, digits, `.`, `-`, `_`, ≤ 1024.
fn check_user_name(user_name: &str) -> Result<(), ScimError> {
    if user_name.contains('@') || rules::is_email_shaped(user_name) {
        return Err(ScimError::invalid_value(format!(
            "{VENDOR}: userName must not be an email address; use the mail nickname (first.last)"
        )));
    }
    // ASCII only: the guide promises nothing for other letters, and the source it advises (the
    // mail nickname, line 33) is ASCII by Exchange's rules; the adapter refuses the same.
    if !user_name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) {
        return Err(ScimError::invalid_value(format!(
            "{VENDOR}: userName has special characters; only ASCII letters, digits, '.', '-' and '_' are allowed"
        )));
    }
    if rules::char_len(user_name) > MAX_LEN {
        return Err(ScimError::invalid_value(format!("{VENDOR}: userName is longer than {MAX_LEN} characters")));
    }
    Ok(())
}

/// The company email: the one marked primary, else the work one.
fn check_company_email(user: &Map<String, Value>) -> Result<(), ScimError> {
    let primary = rules::values(user, "emails")
        .find(|e| e.get("primary") == Some(&Value::Bool(true)))
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty());
    let Some(email) = primary.or_else(|| rules::typed_value(user, "emails", "work")) else {
        return Err(ScimError::invalid_value(format!(
            "{VENDOR}: the company email is required: emails[type eq \"work\"].value, or the email marked primary"
        )));
    };
    if !rules::is_email_shaped(email) {
        return Err(ScimError::invalid_value(format!(
            "{VENDOR}: the company email (emails.value) is not an email address"
        )));
    }
    if rules::char_len(email) > MAX_LEN {
        return Err(ScimError::invalid_value(format!(
            "{VENDOR}: the company email (emails.value) is longer than {MAX_LEN} characters"
        )));
    }
    Ok(())
}

/// Refuses what only Entra's legacy PATCH dialect sends, and reads the top-level spellings of
/// `costCenter` and `organization` as the Enterprise ones. Malformed messages are left to the
/// core, which names what it expected.
fn read_patch(message: &mut Map<String, Value>) -> Result<(), ScimError> {
    let Some(Value::Array(ops)) = get_ci_mut(message, "Operations") else { return Ok(()) };
    for (i, op) in ops.iter_mut().enumerate() {
        let Value::Object(op) = op else { continue };
        let Some(name) = get_ci(op, "op").and_then(Value::as_str) else { continue };
        let lower = name.to_ascii_lowercase();
        if !matches!(lower.as_str(), "add" | "replace" | "remove") {
            continue;
        }
        if name != lower {
            return Err(ScimError::invalid_syntax(format!(
                "{VENDOR}: Operations[{i}].op must be \"{lower}\" in lower case (RFC 7644 §3.5.2)"
            )));
        }
        let path = get_ci(op, "path").and_then(Value::as_str).map(str::to_owned);
        let value = get_ci_mut(op, "value").filter(|v| !v.is_null());
        match (path, value) {
            (Some(_), Some(_)) if lower == "remove" => {
                return Err(ScimError::invalid_syntax(format!(
                    "{VENDOR}: Operations[{i}]: \"remove\" takes no \"value\"; name what to remove in \"path\" \
                     (RFC 7644 §3.5.2.2)"
                )));
            }
            (Some(path), value) => {
                let Ok(parsed) = parse_path(&path) else { continue };
                if let Some(value) = value {
                    if is_boolean_leaf(&parsed) && value.is_string() {
                        return Err(string_boolean_error(&path));
                    }
                    if let Some(at) = value_string_boolean(value, &path) {
                        return Err(string_boolean_error(&at));
                    }
                }
                if let Some(alias) = enterprise_alias(&parsed) {
                    if let Some(key) = key_ci(op, "path") {
                        op.insert(key, Value::String(format!("{ENTERPRISE_USER_SCHEMA}:{alias}")));
                    }
                }
            }
            (None, Some(Value::Object(values))) => {
                if let Some(key) = values.keys().find(|k| is_dotted(k)) {
                    return Err(ScimError::invalid_path(format!(
                        "{VENDOR}: Operations[{i}]: \"{}\" is a dotted key in a value without \"path\"; send \
                         {{\"path\": \"{}\", \"value\": …}} instead",
                        clip(key),
                        clip(key)
                    )));
                }
                if let Some(at) = string_boolean(values, "") {
                    return Err(string_boolean_error(&at));
                }
                move_aliases(values)?;
            }
            (None, _) => {}
        }
    }
    Ok(())
}

/// Whether a path-less PATCH key names a sub-attribute with a dot (`name.givenName`,
/// `urn:…:User:name.givenName`); an extension URN (`urn:…:2.0:User`) has dots of its own.
fn is_dotted(key: &str) -> bool {
    let attribute = if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        key.rsplit(':').next().unwrap_or("")
    } else {
        key
    };
    attribute.contains('.')
}

/// Whether a PATCH path ends at a boolean the table knows (`active`, `emails[…].primary`).
fn is_boolean_leaf(path: &Path) -> bool {
    let leaf = path.sub.as_deref().unwrap_or(&path.attr);
    leaf.eq_ignore_ascii_case("active") || leaf.eq_ignore_ascii_case("primary")
}

/// `costCenter` or `organization` (canonical spelling) when the path names one without the
/// Enterprise URN.
fn enterprise_alias(path: &Path) -> Option<&'static str> {
    let core = path.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(USER_SCHEMA));
    if !core || path.filter.is_some() || path.sub.is_some() {
        return None;
    }
    ENTERPRISE_ALIASES.iter().copied().find(|a| a.eq_ignore_ascii_case(&path.attr))
}

/// Where, below `value` (a PATCH value at `path`), an `active` or `primary` is a string.
fn value_string_boolean(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Object(obj) => string_boolean(obj, &format!("{path}.")),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| match item {
            Value::Object(obj) => string_boolean(obj, &format!("{path}[{i}].")),
            _ => None,
        }),
        _ => None,
    }
}

/// Where, in `obj` and below, an `active` or `primary` is sent as a string (`"False"`), prefixed
/// with `prefix`.
fn string_boolean(obj: &Map<String, Value>, prefix: &str) -> Option<String> {
    for (key, value) in obj {
        let at = format!("{prefix}{}", clip(key));
        let boolean = key.eq_ignore_ascii_case("active") || key.eq_ignore_ascii_case("primary");
        if boolean && value.is_string() {
            return Some(at);
        }
        if let Some(found) = value_string_boolean(value, &at) {
            return Some(found);
        }
    }
    None
}

fn string_boolean_error(at: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "{VENDOR}: \"{at}\" must be a JSON boolean (true or false), not a string as in Entra's legacy dialect"
    ))
}

/// Moves top-level `costCenter` and `organization` into the Enterprise extension object of `obj`;
/// whether anything moved. The same value under both spellings is one value; two different ones
/// are refused.
fn move_aliases(obj: &mut Map<String, Value>) -> Result<bool, ScimError> {
    let mut moved = false;
    for alias in ENTERPRISE_ALIASES {
        let Some(value) = remove_ci(obj, alias) else { continue };
        let key = key_ci(obj, ENTERPRISE_USER_SCHEMA).unwrap_or_else(|| ENTERPRISE_USER_SCHEMA.to_owned());
        let ext = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(ext) = ext else {
            // Not an object: the core refuses the extension's shape with its own message.
            continue;
        };
        match get_ci(ext, alias) {
            Some(existing) if *existing != value => {
                return Err(ScimError::invalid_value(format!(
                    "{VENDOR}: {alias} was sent twice with different values, at the top level and as \
                     {ENTERPRISE_USER_SCHEMA}:{alias}; both are the directory's {alias}"
                )));
            }
            Some(_) => {}
            None => {
                ext.insert((*alias).to_owned(), value);
            }
        }
        moved = true;
    }
    Ok(moved)
}

/// Declares the Enterprise extension in a resource's `schemas`, which the core requires of data
/// under it.
fn add_enterprise_schema(obj: &mut Map<String, Value>) {
    if let Some(Value::Array(schemas)) = get_ci_mut(obj, "schemas") {
        let declared =
            schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ENTERPRISE_USER_SCHEMA)));
        if !declared {
            schemas.push(Value::String(ENTERPRISE_USER_SCHEMA.into()));
        }
    }
}

/// Client-sent names echoed in errors are cut short.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(body: Value, write: Write<'_>) -> Result<Value, ScimError> {
        JumpCloudProfile.read_body(Kind::User, body, write)
    }

    fn patch(ops: Value) -> Result<Value, ScimError> {
        let previous = Map::new();
        read(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
            Write::Patch { previous: &previous },
        )
    }

    #[test]
    fn user_names_are_nicknames_of_plain_characters() {
        assert!(check_user_name("ada.lovelace-1_x").is_ok());
        assert!(
            check_user_name("Zoë").unwrap_err().detail.contains("special characters"),
            "the guide promises nothing outside ASCII"
        );
        assert!(check_user_name("ada@example.com").unwrap_err().detail.contains("must not be an email"));
        assert!(check_user_name("ada@").unwrap_err().detail.contains("must not be an email"));
        assert!(check_user_name("ada lovelace").unwrap_err().detail.contains("special characters"));
        assert!(check_user_name("ada+1").unwrap_err().detail.contains("special characters"));
        assert!(check_user_name(&"a".repeat(1024)).is_ok());
        assert!(check_user_name(&"a".repeat(1025)).unwrap_err().detail.contains("1024"));
    }

    #[test]
    fn dotted_keys_are_told_from_urns() {
        assert!(is_dotted("name.givenName"));
        assert!(is_dotted("urn:ietf:params:scim:schemas:core:2.0:User:name.givenName"));
        assert!(!is_dotted(ENTERPRISE_USER_SCHEMA));
        assert!(!is_dotted(&format!("{ENTERPRISE_USER_SCHEMA}:department")));
        assert!(!is_dotted("displayName"));
    }

    #[test]
    fn legacy_patch_is_refused_and_rfc_patch_passes() {
        let refused = |ops: Value| patch(ops).unwrap_err();
        let e = refused(json!([{"op": "Replace", "path": "title", "value": "x"}]));
        assert_eq!(e.scim_type.map(|t| t.as_str()), Some("invalidSyntax"));
        assert!(e.detail.contains("Operations[0].op"));
        assert!(refused(json!([{"op": "replace", "path": "active", "value": "False"}])).detail.contains("\"active\""));
        let e = refused(json!([{"op": "add", "path": "emails", "value": [{"value": "a@b.io", "primary": "True"}]}]));
        assert!(e.detail.contains("emails[0].primary"), "{}", e.detail);
        let e = refused(json!([{"op": "replace", "value": {"name.givenName": "Ada"}}]));
        assert_eq!(e.scim_type.map(|t| t.as_str()), Some("invalidPath"));
        assert!(refused(json!([{"op": "replace", "value": {"active": "false"}}])).detail.contains("\"active\""));
        let e = refused(json!([{"op": "remove", "path": "emails", "value": [{"value": "a@b.io"}]}]));
        assert!(e.detail.contains("takes no \"value\""));
        let ok = json!([
            {"op": "replace", "path": "active", "value": false},
            {"op": "add", "path": "emails[type eq \"work\"].value", "value": "a@b.io"},
            {"op": "replace", "value": {"displayName": "Ada", "name": {"givenName": "Ada"}, ENTERPRISE_USER_SCHEMA: {"department": "R&D"}}},
            {"op": "remove", "path": "title"}
        ]);
        assert!(patch(ok).is_ok());
    }

    #[test]
    fn top_level_cost_center_and_organization_are_read_as_the_enterprise_ones() {
        let body = json!({"schemas": [USER_SCHEMA], "userName": "ada", "costCenter": "42", "Organization": "Acme"});
        let read_back = read(body, Write::Create).unwrap();
        assert_eq!(read_back[ENTERPRISE_USER_SCHEMA], json!({"costCenter": "42", "organization": "Acme"}));
        assert_eq!(read_back["schemas"], json!([USER_SCHEMA, ENTERPRISE_USER_SCHEMA]));
        assert!(read_back.get("costCenter").is_none());
        let same = json!({"schemas": [USER_SCHEMA], "costCenter": "42", ENTERPRISE_USER_SCHEMA: {"costCenter": "42"}});
        assert!(read(same, Write::Create).is_ok());
        let clash = json!({"schemas": [USER_SCHEMA], "costCenter": "42", ENTERPRISE_USER_SCHEMA: {"costCenter": "7"}});
        assert!(read(clash, Write::Create).unwrap_err().detail.contains("costCenter was sent twice"));
        let message = patch(json!([
            {"op": "replace", "path": "costCenter", "value": "42"},
            {"op": "replace", "value": {"organization": "Acme"}}
        ]))
        .unwrap();
        assert_eq!(message["Operations"][0]["path"], format!("{ENTERPRISE_USER_SCHEMA}:costCenter"));
        assert_eq!(message["Operations"][1]["value"], json!({ENTERPRISE_USER_SCHEMA: {"organization": "Acme"}}));
    }

    #[test]
    fn string_booleans_are_refused_in_resources_too() {
        let body = json!({"schemas": [USER_SCHEMA], "userName": "ada", "active": "True"});
        assert!(read(body, Write::Create).unwrap_err().detail.contains("\"active\""));
    }
}
