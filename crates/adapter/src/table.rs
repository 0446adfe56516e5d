//! Attribute tables: what a vendor accepts, as data.
//!
//! A vendor adapter declares its attributes as rows (`emails[type eq "work"].value`, with the
//! rules the value must pass) and gets from the [`Table`] the three things every vendor needs:
//! the rule check (`validate`), the projection of a user onto exactly the attributes of the table
//! (`translate` — nothing outside the table is ever sent), and the list of what is dropped and why
//! (`scimgw preview`). A new vendor attribute is one row; a target's `extra_attributes` adds rows
//! without code.
//!
//! Paths are SCIM PATCH paths restricted to what a table needs: `userName`, `name.givenName`,
//! `urn:…:User:department`, and `emails[type eq "work"].value` (a multi-valued attribute's element
//! of one `type`, and one of its sub-attributes). Reading a path takes the element of that type
//! marked primary, else the first of that type (several values may share a type: two work emails
//! are legal SCIM; `dropped` lists the others); writing one builds `{"type": "work", "value": …}`
//! and merges rows of the same element. A row may also be read from a second path
//! ([`Table::reading_also`]) when a vendor documents an attribute under another spelling than the
//! gateway stores it: the row's own path is what is sent.

use serde_json::{Map, Value};

use scimgw_scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, parse_patch_path};
use scimgw_scim::value::get_ci;

use crate::adapter::Violation;

/// The core User schema URN.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// A rule a value must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Present and not an empty string.
    Required,
    /// At most this many characters.
    MaxChars(usize),
    /// Shaped like an email address (`local@domain.tld`, no spaces).
    Email,
    /// Not an email address (no `@`).
    NotEmail,
    /// Only ASCII letters, digits, `.`, `-` and `_` (JumpCloud's "no special characters", read as what the
    /// mail nickname its guide advises can hold: Exchange aliases are ASCII).
    PlainName,
}

impl Rule {
    /// The rule as an admin reads it.
    pub fn describe(self) -> String {
        match self {
            Rule::Required => "is required".into(),
            Rule::MaxChars(n) => format!("must be at most {n} characters"),
            Rule::Email => "must be an email address".into(),
            Rule::NotEmail => "must not be an email address".into(),
            Rule::PlainName => "may hold only ASCII letters, digits, '.', '-' and '_'".into(),
        }
    }

    /// Whether `value` (present) passes.
    fn passes(self, value: &Value) -> bool {
        let text = match value {
            Value::String(s) => s.as_str(),
            Value::Null => return self != Rule::Required,
            _ => return true,
        };
        match self {
            Rule::Required => !text.trim().is_empty(),
            Rule::MaxChars(n) => text.chars().count() <= n,
            Rule::Email => is_email(text),
            Rule::NotEmail => !text.contains('@'),
            Rule::PlainName => text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
        }
    }
}

/// `local@domain.tld` with no spaces and one `@`.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// The index of the element of type `ty` that a path with `[type eq "ty"]` reads.
fn chosen_of_type(items: &[Value], ty: &str) -> Option<usize> {
    let mut first = None;
    for (i, e) in items.iter().enumerate() {
        let of_type = e
            .as_object()
            .and_then(|o| get_ci(o, "type"))
            .and_then(Value::as_str)
            .is_some_and(|x| x.eq_ignore_ascii_case(ty));
        if of_type {
            if is_primary(e) {
                return Some(i);
            }
            first.get_or_insert(i);
        }
    }
    first
}

/// Whether a multi-valued attribute's element says `primary: true`.
fn is_primary(element: &Value) -> bool {
    element.as_object().and_then(|o| get_ci(o, "primary")) == Some(&Value::Bool(true))
}

/// One row of a vendor's table: a path and its rules.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The SCIM path.
    pub path: &'static str,
    /// The rules its value must pass.
    pub rules: &'static [Rule],
}

/// A parsed table path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePath {
    /// The path as written.
    pub text: String,
    urn: Option<String>,
    attr: String,
    /// `emails[type eq "work"]`: the type.
    type_is: Option<String>,
    sub: Option<String>,
}

impl TablePath {
    /// Parses `userName`, `name.givenName`, `urn:…:department`, `emails[type eq "work"].value`.
    pub fn parse(text: &str) -> Result<TablePath, String> {
        let bad = |why: &str| format!("attribute path \"{text}\": {why}");
        let parsed = parse_patch_path(text).map_err(|e| bad(&e.to_string()))?;
        let (path, type_is, sub): (AttrPath, Option<String>, Option<String>) = match parsed {
            PatchPath::Attr(p) => {
                let sub = p.sub_attr.clone();
                (p, None, sub)
            }
            PatchPath::ValuePath { path, filter, sub_attr } => match filter {
                Filter::Compare { path: f, op: CompareOp::Eq, value: CompValue::Str(t) }
                    if f.name.eq_ignore_ascii_case("type") && f.urn.is_none() && f.sub_attr.is_none() =>
                {
                    (path, Some(t), sub_attr)
                }
                _ => return Err(bad("only [type eq \"…\"] selects an element in a table")),
            },
        };
        Ok(TablePath { text: text.to_owned(), urn: path.urn, attr: path.name, type_is, sub })
    }

    /// The object a path reads from: the user, or its extension object.
    fn scope<'a>(&self, user: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
        match &self.urn {
            None => Some(user),
            Some(urn) if urn.eq_ignore_ascii_case(USER_URN) => Some(user),
            Some(urn) => user.iter().find(|(k, _)| k.eq_ignore_ascii_case(urn)).and_then(|(_, v)| v.as_object()),
        }
    }

    /// The value at this path in `user`, if any.
    pub fn get<'a>(&self, user: &'a Map<String, Value>) -> Option<&'a Value> {
        let top = get_ci(self.scope(user)?, &self.attr)?;
        let node = match &self.type_is {
            None => top,
            Some(t) => {
                // Several values may share a type (two work emails are legal SCIM): the primary
                // one of that type is sent, else the first.
                let items = top.as_array()?;
                items.get(chosen_of_type(items, t)?)?
            }
        };
        match &self.sub {
            None => Some(node),
            Some(sub) => get_ci(node.as_object()?, sub),
        }
    }

    /// Writes `value` at this path in `out`, creating what is missing.
    pub fn put(&self, out: &mut Map<String, Value>, value: Value) {
        let scope = match &self.urn {
            Some(urn) if !urn.eq_ignore_ascii_case(USER_URN) => {
                let entry = out.entry(urn.clone()).or_insert_with(|| Value::Object(Map::new()));
                match entry.as_object_mut() {
                    Some(o) => o,
                    None => return,
                }
            }
            _ => out,
        };
        match (&self.type_is, &self.sub) {
            (None, None) => {
                scope.insert(self.attr.clone(), value);
            }
            (None, Some(sub)) => {
                let entry = scope.entry(self.attr.clone()).or_insert_with(|| Value::Object(Map::new()));
                if let Some(o) = entry.as_object_mut() {
                    o.insert(sub.clone(), value);
                }
            }
            (Some(t), sub) => {
                let entry = scope.entry(self.attr.clone()).or_insert_with(|| Value::Array(Vec::new()));
                let Some(items) = entry.as_array_mut() else { return };
                let pos = items.iter().position(|e| e.get("type").and_then(Value::as_str) == Some(t.as_str()));
                let idx = match pos {
                    Some(i) => i,
                    None => {
                        let mut fresh = Map::new();
                        fresh.insert("type".into(), Value::String(t.clone()));
                        items.push(Value::Object(fresh));
                        items.len() - 1
                    }
                };
                if let Some(element) = items.get_mut(idx).and_then(Value::as_object_mut) {
                    match (sub, value) {
                        (Some(sub), v) => {
                            element.insert(sub.clone(), v);
                        }
                        (None, Value::Object(whole)) => {
                            for (k, v) in whole {
                                if !k.eq_ignore_ascii_case("type") {
                                    element.insert(k, v);
                                }
                            }
                        }
                        (None, _) => {}
                    }
                }
            }
        }
    }

    /// Whether this path covers `attr` (of extension `urn`, `None` for core), and with `sub`.
    fn covers(&self, urn: Option<&str>, attr: &str, sub: Option<&str>, ty: Option<&str>) -> bool {
        let urn_ok = match (&self.urn, urn) {
            (None, None) => true,
            (Some(a), None) => a.eq_ignore_ascii_case(USER_URN),
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, Some(b)) => b.eq_ignore_ascii_case(USER_URN),
        };
        // A path without a type or sub-attribute covers every type or sub-attribute.
        let type_ok = match (&self.type_is, ty) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        let sub_ok = match (&self.sub, sub) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        urn_ok && self.attr.eq_ignore_ascii_case(attr) && type_ok && sub_ok
    }

    /// The extension URN this path writes under, if any.
    pub fn extension(&self) -> Option<&str> {
        self.urn.as_deref().filter(|u| !u.eq_ignore_ascii_case(USER_URN))
    }
}

/// A vendor's attribute table.
#[derive(Debug, Clone)]
pub struct Table {
    vendor: &'static str,
    rows: Vec<(TablePath, Vec<Rule>)>,
    /// Where else a row's value may be read from (row index, path): a vendor that documents an
    /// attribute under another spelling than the gateway stores it (JumpCloud's bare
    /// `costCenter`, the gateway's Enterprise one).
    read_also: Vec<(usize, TablePath)>,
}

impl Table {
    /// The table of `vendor` (its name in messages), plus `extra` paths (no rules) from a
    /// target's configuration.
    pub fn new(vendor: &'static str, rows: &[Row], extra: &[String]) -> Result<Table, String> {
        let mut out = Vec::with_capacity(rows.len() + extra.len());
        for row in rows {
            out.push((TablePath::parse(row.path)?, row.rules.to_vec()));
        }
        for text in extra {
            let path = TablePath::parse(text)?;
            if !out.iter().any(|(p, _)| *p == path) {
                out.push((path, Vec::new()));
            }
        }
        Ok(Table { vendor, rows: out, read_also: Vec::new() })
    }

    /// The table with the row of path `row` also read from `from` when the user has no value at
    /// `row`: the row is still what is sent, and `from` is no longer listed as dropped.
    pub fn reading_also(mut self, row: &str, from: &str) -> Result<Table, String> {
        let wanted = TablePath::parse(row)?;
        let index = self
            .rows
            .iter()
            .position(|(p, _)| *p == wanted)
            .ok_or_else(|| format!("attribute path \"{row}\" is not a row of the {} table", self.vendor))?;
        self.read_also.push((index, TablePath::parse(from)?));
        Ok(self)
    }

    /// The value of row `index` in `user`: at its path, else at a path it is also read from.
    fn value<'a>(&self, index: usize, user: &'a Map<String, Value>) -> Option<&'a Value> {
        let (path, _) = self.rows.get(index)?;
        path.get(user)
            .or_else(|| self.read_also.iter().filter(|(i, _)| *i == index).find_map(|(_, from)| from.get(user)))
    }

    /// The rows' paths, in order, then the paths rows are also read from.
    pub fn paths(&self) -> impl Iterator<Item = &TablePath> {
        self.rows.iter().map(|(p, _)| p).chain(self.read_also.iter().map(|(_, p)| p))
    }

    /// Every rule `user` breaks.
    pub fn validate(&self, user: &Map<String, Value>) -> Vec<Violation> {
        let mut out = Vec::new();
        for (index, (path, rules)) in self.rows.iter().enumerate() {
            let value = self.value(index, user);
            for rule in rules {
                let ok = match value {
                    None => *rule != Rule::Required,
                    Some(v) => rule.passes(v),
                };
                if !ok {
                    out.push(Violation::new(path.text.clone(), format!("{} ({})", rule.describe(), self.vendor)));
                }
            }
        }
        out
    }

    /// `user` projected onto the table: every row's value, nothing else, with `schemas` naming
    /// the core schema and each extension written.
    pub fn project(&self, user: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        let mut schemas = vec![Value::from(USER_URN)];
        for (index, (path, _)) in self.rows.iter().enumerate() {
            let Some(value) = self.value(index, user) else { continue };
            if value.is_null() {
                continue;
            }
            if let Some(urn) = path.extension() {
                if !schemas.iter().any(|s| s.as_str().is_some_and(|x| x.eq_ignore_ascii_case(urn))) {
                    schemas.push(Value::from(urn));
                }
            }
            path.put(&mut out, value.clone());
        }
        out.insert("schemas".into(), Value::Array(schemas));
        out
    }

    /// What of `user` the table does not send, each with the reason: attributes, sub-attributes
    /// and multi-valued elements of other types.
    pub fn dropped(&self, user: &Map<String, Value>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let reason = format!("not in the {} attribute table", self.vendor);
        for (key, value) in user {
            if matches!(key.as_str(), "schemas" | "id" | "meta") {
                continue;
            }
            let is_urn = key.to_ascii_lowercase().starts_with("urn:");
            if is_urn {
                let Some(ext) = value.as_object() else { continue };
                for (attr, _) in ext {
                    if !self.paths().any(|p| p.covers(Some(key), attr, None, None)) {
                        out.push((format!("{key}:{attr}"), reason.clone()));
                    }
                }
                continue;
            }
            if !self.paths().any(|p| p.covers(None, key, None, None)) {
                out.push((key.clone(), reason.clone()));
                continue;
            }
            match value {
                Value::Object(o) => {
                    for sub in o.keys() {
                        if !self.paths().any(|p| p.covers(None, key, Some(sub), None)) {
                            out.push((format!("{key}.{sub}"), reason.clone()));
                        }
                    }
                }
                Value::Array(items) => {
                    let typed = self.paths().any(|p| p.attr.eq_ignore_ascii_case(key) && p.type_is.is_some());
                    if !typed {
                        continue;
                    }
                    for (i, item) in items.iter().enumerate() {
                        let ty = item.get("type").and_then(Value::as_str).unwrap_or("");
                        let element = format!("{key}[type eq \"{ty}\"]");
                        if !self.paths().any(|p| p.type_is.is_some() && p.covers(None, key, None, Some(ty))) {
                            out.push((
                                element,
                                format!("{} accepts {key} only of the types in its table", self.vendor),
                            ));
                            continue;
                        }
                        if chosen_of_type(items, ty) != Some(i) {
                            out.push((
                                format!("{key}[{i}] ({element})"),
                                format!(
                                    "{} takes one {key} of type \"{ty}\": the primary one of that type is sent, else the first",
                                    self.vendor
                                ),
                            ));
                            continue;
                        }
                        for sub in item.as_object().map(|o| o.keys().collect::<Vec<_>>()).unwrap_or_default() {
                            if sub.eq_ignore_ascii_case("type") {
                                continue;
                            }
                            if !self.paths().any(|p| p.type_is.is_some() && p.covers(None, key, Some(sub), Some(ty))) {
                                out.push((format!("{element}.{sub}"), reason.clone()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROWS: &[Row] = &[
        Row { path: "userName", rules: &[Rule::Required, Rule::NotEmail, Rule::PlainName] },
        Row { path: "name.givenName", rules: &[Rule::MaxChars(5)] },
        Row { path: "emails[type eq \"work\"].value", rules: &[Rule::Required, Rule::Email] },
        Row { path: "addresses[type eq \"work\"].locality", rules: &[] },
        Row { path: "addresses[type eq \"work\"].country", rules: &[] },
        Row { path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", rules: &[] },
    ];

    fn user() -> Map<String, Value> {
        json!({
            "schemas": [USER_URN],
            "id": "x",
            "userName": "ann.lee",
            "title": "CTO",
            "name": {"givenName": "Ann", "familyName": "Lee"},
            "emails": [{"type": "home", "value": "a@home.example"}, {"type": "Work", "value": "ann@corp.example", "primary": true}],
            "addresses": [{"type": "work", "locality": "Oslo", "country": "NO", "postalCode": "0150"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m"}}
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn of_several_values_of_one_type_the_primary_is_sent_else_the_first() {
        let t = Table::new("Test", ROWS, &[]).unwrap();
        let mut u = user();
        u.insert(
            "emails".into(),
            json!([{"type":"work","value":"first@corp.example"},{"type":"work","value":"second@corp.example","primary":true}]),
        );
        assert_eq!(t.project(&u)["emails"], json!([{"type":"work","value":"second@corp.example"}]));
        let dropped = t.dropped(&u);
        assert!(
            dropped.iter().any(|(what, why)| what.starts_with("emails[0]") && why.contains("the primary one")),
            "{dropped:?}"
        );
        u.insert(
            "emails".into(),
            json!([{"type":"work","value":"first@corp.example"},{"type":"work","value":"second@corp.example"}]),
        );
        assert_eq!(t.project(&u)["emails"], json!([{"type":"work","value":"first@corp.example"}]));
        assert!(t.dropped(&u).iter().any(|(what, _)| what.starts_with("emails[1]")));
    }

    #[test]
    fn extra_attributes_read_an_extension_the_gateway_keeps_as_sent() {
        let custom = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";
        let t = Table::new("Test", ROWS, &[format!("{custom}:costCode")]).unwrap();
        let mut u = user();
        u.insert(custom.into(), json!({"costCode":"C-17","other":"x"}));
        assert_eq!(t.project(&u)[custom], json!({"costCode":"C-17"}));
    }

    #[test]
    fn projection_sends_exactly_the_table() {
        let t = Table::new("Acme", ROWS, &[]).unwrap();
        assert_eq!(
            Value::Object(t.project(&user())),
            json!({
                "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": "ann.lee",
                "name": {"givenName": "Ann"},
                "emails": [{"type": "work", "value": "ann@corp.example"}],
                "addresses": [{"type": "work", "locality": "Oslo", "country": "NO"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
            })
        );
        let with_title = Table::new("Acme", ROWS, &["title".into()]).unwrap();
        assert_eq!(with_title.project(&user())["title"], "CTO");
    }

    #[test]
    fn rules_name_the_path_and_the_vendor() {
        let t = Table::new("Acme", ROWS, &[]).unwrap();
        assert!(t.validate(&user()).is_empty());
        let mut bad = user();
        bad.insert("userName".into(), json!("ann@corp.example"));
        bad.insert("name".into(), json!({"givenName": "Annabelle"}));
        bad.remove("emails");
        let v: Vec<String> = t.validate(&bad).iter().map(ToString::to_string).collect();
        assert_eq!(
            v,
            [
                "userName: must not be an email address (Acme)",
                "userName: may hold only ASCII letters, digits, '.', '-' and '_' (Acme)",
                "name.givenName: must be at most 5 characters (Acme)",
                "emails[type eq \"work\"].value: is required (Acme)",
            ]
        );
    }

    #[test]
    fn dropped_lists_what_is_not_sent_and_why() {
        let t = Table::new("Acme", ROWS, &[]).unwrap();
        let d: Vec<String> = t.dropped(&user()).into_iter().map(|(a, _)| a).collect();
        assert_eq!(
            d,
            [
                "addresses[type eq \"work\"].postalCode",
                "emails[type eq \"home\"]",
                "emails[type eq \"Work\"].primary",
                "name.familyName",
                "title",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ]
        );
        let reasons: Vec<String> = t.dropped(&user()).into_iter().map(|(_, r)| r).collect();
        assert_eq!(reasons[1], "Acme accepts emails only of the types in its table");
        assert_eq!(reasons[4], "not in the Acme attribute table");
    }

    #[test]
    fn a_row_read_also_from_another_path_sends_its_own() {
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let t = Table::new("Acme", &[Row { path: "costCenter", rules: &[Rule::Required] }], &[])
            .unwrap()
            .reading_also("costCenter", &format!("{ent}:costCenter"))
            .unwrap();
        let stored = json!({"userName": "a", ent: {"costCenter": "CC-1"}}).as_object().unwrap().clone();
        assert_eq!(Value::Object(t.project(&stored)), json!({"schemas": [USER_URN], "costCenter": "CC-1"}));
        assert!(t.validate(&stored).is_empty());
        assert_eq!(t.dropped(&stored), [("userName".to_owned(), "not in the Acme attribute table".to_owned())]);
        let sent = json!({"costCenter": "CC-2", ent: {"costCenter": "CC-1"}}).as_object().unwrap().clone();
        assert_eq!(t.project(&sent)["costCenter"], "CC-2", "the row's own path comes first");
        assert!(Table::new("Acme", &[], &[]).unwrap().reading_also("costCenter", "x").is_err());
    }

    #[test]
    fn bad_paths_are_refused() {
        assert!(TablePath::parse("emails[value co \"x\"]").unwrap_err().contains("type eq"));
        assert!(TablePath::parse("a b").is_err());
        assert!(is_email("a.b@c.example") && !is_email("a b@c.example") && !is_email("a@b") && !is_email("@b.c"));
    }
}
