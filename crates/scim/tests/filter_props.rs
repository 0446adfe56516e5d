//! Property tests: printing then parsing any filter gives it back, and the evaluator agrees with
//! a deliberately naive reference evaluator written here from the module's documented rules.

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use chrono::{DateTime, NaiveDateTime, Utc};
use proptest::prelude::*;
use scimgw_scim::filter::{AttrPath, CompValue, CompareOp, Filter, PatchPath, parse_filter, parse_patch_path};
use scimgw_scim::schema::{Attribute, Registry, Schema};
use serde_json::{Map, Number, Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const TEST_EXT: &str = "urn:example:params:scim:schemas:extension:test:2.0:User";

/// Cases per property; the round trip is cheap, so it gets more.
const ROUND_TRIP_CASES: u32 = 4_000;
const EVAL_CASES: u32 = 3_000;

// ---- (a) parse(print(ast)) == ast ---------------------------------------------------------------

fn op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(CompareOp::ALL.to_vec())
}

/// Paths of every shape, including contextual keywords (`and`, `eq`, `pr`, `true`) as names.
fn any_path() -> impl Strategy<Value = AttrPath> {
    prop_oneof![
        Just(AttrPath::new("userName")),
        Just(AttrPath::new("USERNAME")),
        Just(AttrPath::new("a-b_c9")),
        Just(AttrPath::new("and")),
        Just(AttrPath::new("eq")),
        Just(AttrPath::new("pr")),
        Just(AttrPath::new("true")),
        Just(AttrPath::with_sub("name", "familyName")),
        Just(AttrPath::with_sub("members", "$ref")),
        Just(AttrPath::with_sub("meta", "lastModified")),
        Just(AttrPath::with_urn(ENTERPRISE, "department")),
        Just(AttrPath { urn: Some(ENTERPRISE.into()), name: "manager".into(), sub_attr: Some("value".into()) }),
        Just(AttrPath::with_urn(CORE_USER, "userName")),
        Just(AttrPath::with_urn("urn:a", "or")),
    ]
}

/// Paths inside brackets: sub-attribute names.
fn relative_path() -> impl Strategy<Value = AttrPath> {
    prop_oneof![
        Just(AttrPath::new("type")),
        Just(AttrPath::new("value")),
        Just(AttrPath::new("Primary")),
        Just(AttrPath::new("$ref")),
        Just(AttrPath::new("or")),
    ]
}

fn any_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|n| CompValue::Number(n.into())),
        any::<u64>().prop_map(|n| CompValue::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(CompValue::Number)),
        any::<String>().prop_map(CompValue::Str),
        // Quotes, backslashes, control characters, non-ASCII and astral characters.
        "[\"\\\\/\u{0}-\u{1f}\u{7f}aé😀 \t]{0,12}".prop_map(CompValue::Str),
    ]
}

fn leaf(path: impl Strategy<Value = AttrPath>) -> impl Strategy<Value = Filter> {
    (path, proptest::option::of((op(), any_value()))).prop_map(|(path, cmp)| match cmp {
        Some((op, value)) => Filter::Compare { path, op, value },
        None => Filter::Present(path),
    })
}

fn combine(inner: BoxedStrategy<Filter>) -> impl Strategy<Value = Filter> {
    prop_oneof![
        (inner.clone(), inner.clone()).prop_map(|(a, b)| a.and(b)),
        (inner.clone(), inner.clone()).prop_map(|(a, b)| a.or(b)),
        inner.prop_map(Filter::negate),
    ]
}

/// A filter over sub-attributes, for inside brackets: no value paths.
fn relative_filter() -> impl Strategy<Value = Filter> {
    leaf(relative_path()).prop_recursive(3, 12, 2, |inner| combine(inner.boxed()))
}

fn any_filter() -> impl Strategy<Value = Filter> {
    let value_path =
        (any_path(), relative_filter()).prop_map(|(path, f)| Filter::ValuePath { path, filter: Box::new(f) });
    prop_oneof![3 => leaf(any_path()), 1 => value_path].prop_recursive(5, 32, 2, |inner| combine(inner.boxed()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(ROUND_TRIP_CASES))]

    #[test]
    fn printing_then_parsing_a_filter_gives_it_back(f in any_filter()) {
        let printed = f.to_string();
        let parsed = parse_filter(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(parsed, f);
    }

    #[test]
    fn printing_then_parsing_a_patch_path_gives_it_back(
        path in any_path(),
        filter in proptest::option::of(relative_filter()),
        sub in proptest::option::of(prop_oneof![Just("value".to_owned()), Just("display".to_owned())]),
    ) {
        let p = match filter {
            Some(filter) => PatchPath::ValuePath { path, filter, sub_attr: sub },
            None => PatchPath::Attr(path),
        };
        let printed = p.to_string();
        let parsed = parse_patch_path(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(parsed, p);
    }
}

// ---- (b) the evaluator against a naive reference ------------------------------------------------

fn registry() -> Registry {
    let mut reg = Registry::default();
    let ext = Schema {
        id: TEST_EXT.into(),
        name: "TestUser".into(),
        description: String::new(),
        attributes: vec![Attribute::decimal("level")],
    };
    reg.register_extension(ext, "User").unwrap();
    reg
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &[T]) -> impl Strategy<Value = T> + use<T> {
    proptest::sample::select(items.to_vec())
}

fn opt_json(items: &[Value]) -> impl Strategy<Value = Option<Value>> + use<> {
    proptest::option::of(pick(items))
}

const NAMES: &[&str] = &["alice", "ALICE", "Alice", "bob", "Ünï", "ünï", ""];
const DATES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-01-01T01:00:00+01:00",
    "2023-12-31T23:59:59Z",
    "2024-06-01T00:00:00",
    "2024-06-01T00:00:00.5Z",
    "not a date",
];

fn strs(items: &[&str]) -> Vec<Value> {
    items.iter().map(|s| json!(s)).collect()
}

/// Users with the attributes the filters below talk about; every field may be missing, and
/// some hold values of the wrong JSON type on purpose.
fn user() -> impl Strategy<Value = Value> {
    let email = (
        opt_json(&strs(&["work", "home", "WORK"])),
        opt_json(&strs(&["a@x.com", "A@X.COM", "b@y.org", ""])),
        opt_json(&[json!(true), json!(false), json!("True"), json!("no")]),
    )
        .prop_map(|(ty, value, primary)| {
            let mut e = Map::new();
            for (k, v) in [("type", ty), ("value", value), ("primary", primary)] {
                if let Some(v) = v {
                    e.insert(k.into(), v);
                }
            }
            Value::Object(e)
        });
    (
        opt_json(&strs(NAMES)),
        opt_json(&[json!(true), json!(false), json!("True"), json!("FALSE"), json!("yes"), json!(1)]),
        opt_json(&strs(&["Ann", "ann", "Bob", ""])),
        proptest::option::of(proptest::collection::vec(email, 0..3)),
        opt_json(&strs(&["Sales", "sales", "Ops", ""])),
        opt_json(&[json!(3), json!(3.0), json!(-2.5), json!(0), json!(7), json!("3")]),
        opt_json(&strs(DATES)),
        opt_json(&strs(&["abc", "ABC", "ab"])),
    )
        .prop_map(|(user_name, active, given, emails, department, level, modified, external_id)| {
            let mut u = Map::new();
            let put = |m: &mut Map<String, Value>, k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put(&mut u, "userName", user_name);
            put(&mut u, "active", active);
            put(&mut u, "externalId", external_id);
            put(&mut u, "emails", emails.map(Value::Array));
            let mut name = Map::new();
            put(&mut name, "givenName", given);
            u.insert("name".into(), Value::Object(name));
            let mut meta = Map::new();
            put(&mut meta, "lastModified", modified);
            u.insert("meta".into(), Value::Object(meta));
            let mut ent = Map::new();
            put(&mut ent, "department", department);
            u.insert(ENTERPRISE.into(), Value::Object(ent));
            let mut ext = Map::new();
            put(&mut ext, "level", level);
            u.insert(TEST_EXT.into(), Value::Object(ext));
            Value::Object(u)
        })
}

fn eval_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        pick(&[0.0, 3.0, -2.5, 5.0, 7.0]).prop_map(|f| CompValue::Number(Number::from_f64(f).unwrap())),
        pick(&[0_i64, 3, -1]).prop_map(|n| CompValue::Number(n.into())),
        pick(&[
            "alice", "ALI", "ice", "ünï", "ÜNÏ", "ann", "work", "a@x.com", "x.com", "@", "sales", "", "abc", "ABC",
            "true", "False",
        ])
        .prop_map(|s| CompValue::Str(s.into())),
        pick(DATES).prop_map(|s| CompValue::Str(s.into())),
    ]
}

fn eval_path() -> impl Strategy<Value = AttrPath> {
    prop_oneof![
        Just(AttrPath::new("userName")),
        Just(AttrPath::new("active")),
        Just(AttrPath::new("externalId")),
        Just(AttrPath::with_sub("name", "givenName")),
        Just(AttrPath::new("emails")),
        Just(AttrPath::with_sub("emails", "value")),
        Just(AttrPath::with_sub("emails", "type")),
        Just(AttrPath::with_sub("emails", "primary")),
        Just(AttrPath::with_urn(ENTERPRISE, "department")),
        Just(AttrPath::with_urn(TEST_EXT, "level")),
        Just(AttrPath::with_sub("meta", "lastModified")),
        Just(AttrPath::new("nickName")),
        Just(AttrPath::new("favouriteColour")),
    ]
}

fn eval_leaf(path: impl Strategy<Value = AttrPath>) -> impl Strategy<Value = Filter> {
    (path, proptest::option::of((op(), eval_value()))).prop_map(|(path, cmp)| match cmp {
        Some((op, value)) => Filter::Compare { path, op, value },
        None => Filter::Present(path),
    })
}

fn eval_filter() -> impl Strategy<Value = Filter> {
    let email_path = pick(&["type", "value", "primary"]).prop_map(AttrPath::new);
    let inner = eval_leaf(email_path).prop_recursive(2, 6, 2, |inner| combine(inner.boxed()));
    let value_path = inner.prop_map(|f| Filter::ValuePath { path: AttrPath::new("emails"), filter: Box::new(f) });
    prop_oneof![3 => eval_leaf(eval_path()), 1 => value_path].prop_recursive(3, 12, 2, |inner| combine(inner.boxed()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(EVAL_CASES))]

    #[test]
    fn the_evaluator_agrees_with_the_naive_reference(u in user(), f in eval_filter()) {
        let reg = registry();
        let schema = reg.resource("User").unwrap();
        prop_assert_eq!(f.matches(&u, &schema), naive::eval(&f, &u), "filter: {}\nuser: {}", f, u);
    }
}

/// The reference: a direct reading of the documented rules for exactly the attributes above,
/// with no schema, no fast paths and no sharing with the real evaluator.
mod naive {
    use super::*;

    enum Kind {
        Text { exact: bool },
        Boolean,
        Number,
        Date,
    }

    fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
        v.as_object()?.get(key)
    }

    /// The stored values a path designates, with their kind; `None` for an unknown path.
    fn lookup(u: &Value, path: &AttrPath) -> Option<(Kind, Vec<Value>)> {
        let text = path.to_string().to_lowercase();
        let emails: Vec<Value> = get(u, "emails").and_then(Value::as_array).cloned().unwrap_or_default();
        let field = |k: &str| emails.iter().filter_map(|e| get(e, k).cloned()).collect::<Vec<_>>();
        let one = |v: Option<&Value>| v.cloned().into_iter().collect::<Vec<_>>();
        Some(match text.as_str() {
            "username" => (Kind::Text { exact: false }, one(get(u, "userName"))),
            "externalid" => (Kind::Text { exact: true }, one(get(u, "externalId"))),
            "nickname" => (Kind::Text { exact: false }, one(get(u, "nickName"))),
            "active" => (Kind::Boolean, one(get(u, "active"))),
            "name.givenname" => (Kind::Text { exact: false }, one(get(u, "name").and_then(|n| get(n, "givenName")))),
            "emails" | "emails.value" => (Kind::Text { exact: false }, field("value")),
            "emails.type" => (Kind::Text { exact: false }, field("type")),
            "emails.primary" => (Kind::Boolean, field("primary")),
            "meta.lastmodified" => (Kind::Date, one(get(u, "meta").and_then(|m| get(m, "lastModified")))),
            t if t == format!("{ENTERPRISE}:department").to_lowercase() => {
                (Kind::Text { exact: false }, one(get(u, ENTERPRISE).and_then(|e| get(e, "department"))))
            }
            t if t == format!("{TEST_EXT}:level").to_lowercase() => {
                (Kind::Number, one(get(u, TEST_EXT).and_then(|e| get(e, "level"))))
            }
            _ => return None,
        })
    }

    /// Element lookups inside `emails[…]`.
    fn lookup_in_email(e: &Value, path: &AttrPath) -> Option<(Kind, Vec<Value>)> {
        let key = ["type", "value", "primary"].into_iter().find(|k| k.eq_ignore_ascii_case(&path.name))?;
        let kind = if key == "primary" { Kind::Boolean } else { Kind::Text { exact: false } };
        Some((kind, get(e, key).cloned().into_iter().collect()))
    }

    fn present(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => a.iter().any(present),
            Value::Object(o) => o.values().any(present),
            _ => true,
        }
    }

    fn as_bool(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.to_lowercase() == "true" => Some(true),
            Value::String(s) if s.to_lowercase() == "false" => Some(false),
            _ => None,
        }
    }

    fn date(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.to_utc())
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc()))
    }

    fn ordered(op: CompareOp, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match op {
            CompareOp::Eq => o == Equal,
            CompareOp::Gt => o == Greater,
            CompareOp::Ge => o != Less,
            CompareOp::Lt => o == Less,
            CompareOp::Le => o != Greater,
            _ => false,
        }
    }

    fn one(kind: &Kind, actual: &Value, op: CompareOp, expected: &CompValue) -> bool {
        match kind {
            Kind::Text { exact } => {
                let (Value::String(a), CompValue::Str(b)) = (actual, expected) else { return false };
                let (a, b) = if *exact { (a.clone(), b.clone()) } else { (a.to_lowercase(), b.to_lowercase()) };
                match op {
                    CompareOp::Co => a.contains(&b),
                    CompareOp::Sw => a.starts_with(&b),
                    CompareOp::Ew => a.ends_with(&b),
                    op => ordered(op, a.cmp(&b)),
                }
            }
            Kind::Boolean => {
                let b = match expected {
                    CompValue::Bool(b) => Some(*b),
                    CompValue::Str(s) => as_bool(&Value::String(s.clone())),
                    _ => None,
                };
                op == CompareOp::Eq && as_bool(actual).is_some() && as_bool(actual) == b
            }
            Kind::Number => {
                let (Value::Number(a), CompValue::Number(b)) = (actual, expected) else { return false };
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                a.partial_cmp(&b).is_some_and(|o| ordered(op, o))
            }
            Kind::Date => {
                let (Value::String(a), CompValue::Str(b)) = (actual, expected) else { return false };
                match (date(a), date(b)) {
                    (Some(x), Some(y)) => ordered(op, x.cmp(&y)),
                    _ => ordered(op, a.cmp(b)),
                }
            }
        }
    }

    fn compare(found: Option<(Kind, Vec<Value>)>, op: CompareOp, value: &CompValue) -> bool {
        let Some((kind, values)) = found else { return false };
        match (op, value) {
            (CompareOp::Eq, CompValue::Null) => !values.iter().any(present),
            (CompareOp::Ne, CompValue::Null) => values.iter().any(present),
            (_, CompValue::Null) => false,
            (CompareOp::Ne, v) => !values.iter().any(|a| one(&kind, a, CompareOp::Eq, v)),
            (op, v) => values.iter().any(|a| one(&kind, a, op, v)),
        }
    }

    pub fn eval(f: &Filter, u: &Value) -> bool {
        match f {
            // `eq null` is "not present" and `ne null` "present", for a complex attribute as a
            // whole, exactly like `pr` (the filter module doc).
            Filter::Compare { path, op: op @ (CompareOp::Eq | CompareOp::Ne), value: CompValue::Null }
                if path.name.eq_ignore_ascii_case("emails") && path.sub_attr.is_none() =>
            {
                let present = get(u, "emails").is_some_and(present);
                if *op == CompareOp::Eq { !present } else { present }
            }
            Filter::Compare { path, op, value } => compare(lookup(u, path), *op, value),
            Filter::Present(path) if path.name.eq_ignore_ascii_case("emails") && path.sub_attr.is_none() => {
                get(u, "emails").is_some_and(present)
            }
            Filter::Present(path) => lookup(u, path).is_some_and(|(_, vs)| vs.iter().any(present)),
            Filter::And(a, b) => eval(a, u) && eval(b, u),
            Filter::Or(a, b) => eval(a, u) || eval(b, u),
            Filter::Not(a) => !eval(a, u),
            Filter::ValuePath { filter, .. } => get(u, "emails")
                .and_then(Value::as_array)
                .is_some_and(|emails| emails.iter().any(|e| e.is_object() && eval_in_email(filter, e))),
        }
    }

    fn eval_in_email(f: &Filter, e: &Value) -> bool {
        match f {
            Filter::Compare { path, op, value } => compare(lookup_in_email(e, path), *op, value),
            Filter::Present(path) => lookup_in_email(e, path).is_some_and(|(_, vs)| vs.iter().any(present)),
            Filter::And(a, b) => eval_in_email(a, e) && eval_in_email(b, e),
            Filter::Or(a, b) => eval_in_email(a, e) || eval_in_email(b, e),
            Filter::Not(a) => !eval_in_email(a, e),
            Filter::ValuePath { .. } => false,
        }
    }
}
