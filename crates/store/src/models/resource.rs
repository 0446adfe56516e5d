//! Rows of `users`, `groups` and `group_members`, and the indexed columns derived from a body.

use diesel::prelude::*;
use serde_json::{Map, Value};

use scimgw_scim::value::get_ci;

use crate::schema::{group_members, groups, users};

/// What every query reads of a user or group row (the same tuple from either table).
#[derive(Debug, Clone, Queryable)]
pub(crate) struct ResourceRow {
    pub id: String,
    pub body: String,
    pub version: i64,
    pub created_us: i64,
    pub modified_us: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = groups)]
pub(crate) struct NewGroupRow<'a> {
    pub tenant_id: &'a str,
    pub id: &'a str,
    #[diesel(embed)]
    pub columns: GroupColumns,
    pub body: &'a str,
    pub version: i64,
    pub created_us: i64,
    pub modified_us: i64,
}

/// The indexed columns of a user, derived from its body. `AsChangeset` keeps `None` as NULL:
/// an attribute that disappears from the body must disappear from its column too.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub(crate) struct UserColumns {
    pub user_name: String,
    pub user_name_ci: String,
    pub external_id: Option<String>,
    pub display_name: Option<String>,
    pub display_name_ci: Option<String>,
    pub active: Option<bool>,
}

/// The indexed columns of a group, derived from its body.
#[derive(Debug, Clone, PartialEq, Insertable, AsChangeset)]
#[diesel(table_name = groups, treat_none_as_null = true)]
pub(crate) struct GroupColumns {
    pub display_name: String,
    pub display_name_ci: String,
    pub external_id: Option<String>,
}

/// A string attribute's value, or `None` when absent or not a string (then the filter evaluator
/// would not match it either).
/// The name a user or group carries as a group's member (RFC 7643 §4.2 `display`): a user's
/// displayName, else its userName; a group's displayName.
pub(crate) fn member_name(kind: crate::resource::Kind, body: &Map<String, Value>) -> Option<String> {
    match kind {
        crate::resource::Kind::User => string(body, "displayName").or_else(|| string(body, "userName")),
        crate::resource::Kind::Group => string(body, "displayName"),
    }
}

fn string(body: &Map<String, Value>, name: &str) -> Option<String> {
    get_ci(body, name).and_then(Value::as_str).map(str::to_owned)
}

/// The case-insensitive twin of a column: Rust's Unicode `to_lowercase`, as the filter evaluator
/// folds, so both engines compare the same strings.
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

impl UserColumns {
    /// `None` when the body has no `userName` string.
    pub(crate) fn from_body(body: &Map<String, Value>) -> Option<Self> {
        let user_name = string(body, "userName")?;
        let display_name = string(body, "displayName");
        let active = get_ci(body, "active").and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            // Entra's "True"/"False": the evaluator reads them as booleans, so the column does too.
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        });
        Some(Self {
            user_name_ci: fold(&user_name),
            user_name,
            external_id: string(body, "externalId"),
            display_name_ci: display_name.as_deref().map(fold),
            display_name,
            active,
        })
    }
}

impl GroupColumns {
    /// `None` when the body has no `displayName` string.
    pub(crate) fn from_body(body: &Map<String, Value>) -> Option<Self> {
        let display_name = string(body, "displayName")?;
        Some(Self { display_name_ci: fold(&display_name), display_name, external_id: string(body, "externalId") })
    }
}

/// A membership row as read for a group's `members`: the member's id, what it is, and its name.
#[derive(Debug, Clone, Queryable)]
pub(crate) struct MemberRow {
    pub member_id: String,
    pub member_type: Option<String>,
    pub member_display: Option<String>,
}

/// `None` inserts NULL rather than `DEFAULT`: SQLite's multi-row `INSERT` has no `DEFAULT`.
#[derive(Debug, Insertable)]
#[diesel(table_name = group_members, treat_none_as_default_value = false)]
pub(crate) struct NewMemberRow<'a> {
    pub tenant_id: &'a str,
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub member_type: Option<&'a str>,
    pub member_display: Option<&'a str>,
}
