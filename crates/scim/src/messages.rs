//! The SCIM protocol messages (RFC 7644 §3.4.2, §3.4.3, §3.5.2): ListResponse, SearchRequest,
//! PatchOp, and the pagination rules. The Error message lives in [`crate::error`].

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::resource::json_type;
use crate::value::get_ci;

/// URN of the ListResponse message.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// URN of the PatchOp message.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// URN of the SearchRequest message.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Most operations one PATCH request may carry. Entra sends a handful; group membership batches
/// put many members in one operation's `value`, not many operations.
pub const MAX_PATCH_OPERATIONS: usize = 1_000;

/// A page of query results (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListResponse<T> {
    /// Always `[LIST_RESPONSE_SCHEMA]`.
    pub schemas: [&'static str; 1],
    /// How many resources match, over all pages.
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    /// How many resources this page holds.
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: u64,
    /// The 1-based index of this page's first resource.
    #[serde(rename = "startIndex")]
    pub start_index: u64,
    /// The resources. Always present, empty when nothing matched: Entra's Test Connection and
    /// Okta's existence checks read an empty list as "not found".
    #[serde(rename = "Resources")]
    pub resources: Vec<T>,
}

impl<T> ListResponse<T> {
    /// A page of `resources`, of `total_results` in all, starting at the 1-based `start_index`.
    pub fn new(resources: Vec<T>, total_results: u64, start_index: u64) -> Self {
        Self {
            schemas: [LIST_RESPONSE_SCHEMA],
            total_results,
            items_per_page: resources.len() as u64,
            start_index,
            resources,
        }
    }
}

/// Sort direction (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first (the default).
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

impl SortOrder {
    /// Parses `ascending` / `descending`, case-insensitively.
    pub fn parse(s: &str) -> Result<Self, ScimError> {
        if s.eq_ignore_ascii_case("ascending") {
            Ok(Self::Ascending)
        } else if s.eq_ignore_ascii_case("descending") {
            Ok(Self::Descending)
        } else {
            Err(ScimError::invalid_value("sortOrder must be \"ascending\" or \"descending\""))
        }
    }
}

/// Which page to return: a 1-based start index and a count, already clamped (RFC 7644 §3.4.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based index of the first result.
    pub start_index: u64,
    /// How many results at most; 0 asks only for `totalResults`.
    pub count: u64,
}

impl Page {
    /// Applies RFC 7644 §3.4.2.4: a `startIndex` below 1 means 1, a negative `count` means 0, and
    /// `count` is capped at `max_count` (the server's advertised maximum). Missing values take
    /// 1 and `default_count`.
    pub fn new(start_index: Option<i64>, count: Option<i64>, default_count: u64, max_count: u64) -> Self {
        let start_index = start_index.map_or(1, |s| s.max(1) as u64);
        let count = count.map_or(default_count, |c| c.max(0) as u64).min(max_count);
        Self { start_index, count }
    }

    /// Parses the query-string forms; a value that is not an integer is a 400 `invalidValue`.
    pub fn from_query(
        start_index: Option<&str>,
        count: Option<&str>,
        default_count: u64,
        max_count: u64,
    ) -> Result<Self, ScimError> {
        let parse = |name: &str, v: Option<&str>| v.map(|s| parse_integer_param(name, s)).transpose();
        Ok(Self::new(parse("startIndex", start_index)?, parse("count", count)?, default_count, max_count))
    }

    /// The 0-based offset of the first result.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

/// Parses a `startIndex` or `count` query parameter. Integers beyond `i64` saturate (a client's
/// `count=99999999999999999999` means "as many as you give", and is then clamped like any other
/// large count); anything that is not an integer is a 400 `invalidValue` naming `name`.
pub fn parse_integer_param(name: &str, s: &str) -> Result<i64, ScimError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(if negative { i64::MIN } else { i64::MAX });
    }
    Err(ScimError::invalid_value(format!("{name} must be an integer (RFC 7644 §3.4.2.4)")))
}

/// A JSON number as an integer parameter: integers beyond `i64` (which serde_json holds as
/// `u64` or `f64`) saturate as in [`parse_integer_param`]; a fraction is not an integer.
fn json_integer(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    let f = n.as_f64()?;
    // `as` saturates at i64::MIN/MAX, which is the intent here.
    (f.is_finite() && f.fract() == 0.0).then_some(f as i64)
}

/// A query sent as `POST …/.search` (RFC 7644 §3.4.3). Attribute lists are kept as the client
/// wrote them and parsed where they are used.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchRequest {
    /// Attributes to return.
    pub attributes: Vec<String>,
    /// Attributes not to return.
    pub excluded_attributes: Vec<String>,
    /// The filter, unparsed.
    pub filter: Option<String>,
    /// The attribute to sort by.
    pub sort_by: Option<String>,
    /// The sort direction.
    pub sort_order: Option<SortOrder>,
    /// The 1-based start index, as sent.
    pub start_index: Option<i64>,
    /// The page size, as sent.
    pub count: Option<i64>,
}

impl SearchRequest {
    /// Parses a SearchRequest body. Member names are matched case-insensitively; `attributes` may
    /// be an array of names or one comma-separated string.
    pub fn from_json(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(format!(
                "a SearchRequest must be a JSON object, found {}",
                json_type(body)
            )));
        };
        check_schema(obj, SEARCH_REQUEST_SCHEMA, "SearchRequest")?;
        let string = |name: &str| -> Result<Option<String>, ScimError> {
            match get_ci(obj, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(ScimError::invalid_syntax(format!("\"{name}\" must be a string, found {}", json_type(other))))
                }
            }
        };
        let integer = |name: &str| -> Result<Option<i64>, ScimError> {
            match get_ci(obj, name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => json_integer(n)
                    .map(Some)
                    .ok_or_else(|| ScimError::invalid_value(format!("\"{name}\" must be an integer"))),
                Some(other) => {
                    Err(ScimError::invalid_value(format!("\"{name}\" must be an integer, found {}", json_type(other))))
                }
            }
        };
        let list = |name: &str| -> Result<Vec<String>, ScimError> {
            match get_ci(obj, name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(split_attribute_list(s)),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| ScimError::invalid_syntax(format!("\"{name}\" must be an array of strings")))
                    })
                    .collect(),
                Some(other) => Err(ScimError::invalid_syntax(format!(
                    "\"{name}\" must be an array of attribute names, found {}",
                    json_type(other)
                ))),
            }
        };
        Ok(Self {
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?.as_deref().map(SortOrder::parse).transpose()?,
            start_index: integer("startIndex")?,
            count: integer("count")?,
        })
    }
}

/// Splits a comma-separated attribute list (`attributes=userName,name.givenName`), dropping blanks.
pub fn split_attribute_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// A PATCH operation's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `remove`
    Remove,
}

/// One PATCH operation, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where, unparsed; `None` when the client sent no path.
    pub path: Option<String>,
    /// The value, when one was sent.
    pub value: Option<Value>,
}

/// A PatchOp message (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, in order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses a PatchOp body as Entra and Okta send it: `op` in any case (`Add`, `REPLACE`), member
    /// names case-insensitive (`Operations`, `operations`). A `value` of `null` counts as absent.
    pub fn from_json(body: &Value) -> Result<Self, ScimError> {
        let Value::Object(obj) = body else {
            return Err(ScimError::invalid_syntax(format!(
                "a PatchOp request must be a JSON object, found {}",
                json_type(body)
            )));
        };
        check_schema(obj, PATCH_OP_SCHEMA, "PatchOp")?;
        let ops = match get_ci(obj, "Operations") {
            Some(Value::Array(ops)) => ops,
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "\"Operations\" must be an array, found {}",
                    json_type(other)
                )));
            }
            None => return Err(ScimError::invalid_syntax("\"Operations\" is missing from the PatchOp request")),
        };
        if ops.is_empty() {
            return Err(ScimError::invalid_syntax("\"Operations\" is empty: a PATCH needs at least one operation"));
        }
        if ops.len() > MAX_PATCH_OPERATIONS {
            return Err(ScimError::invalid_value(format!(
                "a PATCH may carry at most {MAX_PATCH_OPERATIONS} operations; this one has {}",
                ops.len()
            )));
        }
        let operations = ops.iter().enumerate().map(|(i, op)| parse_operation(i, op)).collect::<Result<_, _>>()?;
        Ok(Self { operations })
    }
}

fn parse_operation(i: usize, op: &Value) -> Result<PatchOperation, ScimError> {
    let Value::Object(obj) = op else {
        return Err(ScimError::invalid_syntax(format!("Operations[{i}] must be an object, found {}", json_type(op))));
    };
    let kind = match get_ci(obj, "op") {
        Some(Value::String(s)) if s.eq_ignore_ascii_case("add") => PatchOpKind::Add,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("replace") => PatchOpKind::Replace,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("remove") => PatchOpKind::Remove,
        Some(Value::String(_)) => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op must be \"add\", \"replace\" or \"remove\""
            )));
        }
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}].op must be a string, found {}",
                json_type(other)
            )));
        }
        None => return Err(ScimError::invalid_syntax(format!("Operations[{i}] has no \"op\""))),
    };
    let path = match get_ci(obj, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}].path must be a string, found {}",
                json_type(other)
            )));
        }
    };
    let value = match get_ci(obj, "value") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    };
    Ok(PatchOperation { op: kind, path, value })
}

/// A message's `schemas` must name its URN. Clients that leave `schemas` out are accepted: the
/// endpoint already says which message it is, and rejecting them would help no one.
fn check_schema(obj: &Map<String, Value>, urn: &str, what: &str) -> Result<(), ScimError> {
    match get_ci(obj, "schemas") {
        None => Ok(()),
        Some(Value::Array(items)) if items.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn))) => {
            Ok(())
        }
        Some(_) => Err(ScimError::invalid_syntax(format!("a {what} request must have \"schemas\": [\"{urn}\"]"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ScimType;

    #[test]
    fn list_response_is_one_based_and_always_has_resources() {
        let v = serde_json::to_value(ListResponse::<Value>::new(vec![], 0, 1)).unwrap();
        assert_eq!(
            v,
            json!({"schemas":[LIST_RESPONSE_SCHEMA],"totalResults":0,"itemsPerPage":0,"startIndex":1,"Resources":[]})
        );
    }

    #[test]
    fn pagination_follows_rfc_7644_clamping() {
        assert_eq!(Page::new(None, None, 100, 1000), Page { start_index: 1, count: 100 });
        assert_eq!(Page::new(Some(0), Some(-5), 100, 1000), Page { start_index: 1, count: 0 });
        assert_eq!(Page::new(Some(101), Some(5000), 100, 1000), Page { start_index: 101, count: 1000 });
        assert_eq!(Page::from_query(Some("1"), Some("2"), 100, 1000).unwrap().count, 2);
        let e = Page::from_query(Some("one"), None, 100, 1000).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        // Beyond i64 saturates, then clamps like any large count.
        assert_eq!(
            Page::from_query(Some("99999999999999999999"), Some("99999999999999999999"), 100, 1000).unwrap(),
            Page { start_index: i64::MAX as u64, count: 1000 }
        );
        assert_eq!(Page::from_query(None, Some("-99999999999999999999"), 100, 1000).unwrap().count, 0);
        for bad in ["", "-", "1.5", "1e3", "0x10", "ten", "１"] {
            assert!(Page::from_query(None, Some(bad), 100, 1000).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_op_accepts_entra_casing() {
        let req = PatchRequest::from_json(&json!({"schemas":[PATCH_OP_SCHEMA],
            "Operations":[{"op":"Replace","path":"active","value":"False"},{"OP":"ADD","Path":"title","Value":"x"},
                          {"op":"remove","path":"title"}]}))
        .unwrap();
        assert_eq!(req.operations[0].op, PatchOpKind::Replace);
        assert_eq!(
            req.operations[1],
            PatchOperation { op: PatchOpKind::Add, path: Some("title".into()), value: Some(json!("x")) }
        );
        assert_eq!(req.operations[2].value, None);
    }

    #[test]
    fn malformed_patch_op_messages_are_invalid_syntax() {
        for (body, detail) in [
            (json!([]), "must be a JSON object"),
            (json!({"schemas":["urn:wrong"], "Operations":[]}), "must have \"schemas\""),
            (json!({"schemas":[PATCH_OP_SCHEMA]}), "\"Operations\" is missing"),
            (json!({"schemas":[PATCH_OP_SCHEMA], "Operations":{}}), "must be an array"),
            (json!({"schemas":[PATCH_OP_SCHEMA], "Operations":[]}), "is empty"),
            (json!({"schemas":[PATCH_OP_SCHEMA], "Operations":[1]}), "Operations[0] must be an object"),
            (json!({"schemas":[PATCH_OP_SCHEMA], "Operations":[{"path":"x"}]}), "has no \"op\""),
            (
                json!({"schemas":[PATCH_OP_SCHEMA], "Operations":[{"op":"move"}]}),
                "must be \"add\", \"replace\" or \"remove\"",
            ),
        ] {
            let e = PatchRequest::from_json(&body).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{body}");
            assert!(e.detail.contains(detail), "{body}: {}", e.detail);
        }
        let e = PatchRequest::from_json(&json!({"Operations":[{"op":"add","path":7}]})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        let many: Vec<Value> = (0..=MAX_PATCH_OPERATIONS).map(|_| json!({"op":"remove","path":"title"})).collect();
        let e = PatchRequest::from_json(&json!({"Operations": many})).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn search_request_parses_lists_and_paging() {
        let r = SearchRequest::from_json(&json!({"schemas":[SEARCH_REQUEST_SCHEMA],
            "attributes":["displayName","userName"], "excludedAttributes":"members, meta",
            "filter":"displayName sw \"smith\"","startIndex":1,"count":10,"sortOrder":"Descending"}))
        .unwrap();
        assert_eq!(r.attributes, vec!["displayName", "userName"]);
        assert_eq!(r.excluded_attributes, vec!["members", "meta"]);
        assert_eq!(r.sort_order, Some(SortOrder::Descending));
        assert_eq!((r.start_index, r.count), (Some(1), Some(10)));
        assert!(SearchRequest::from_json(&json!({"count":"ten"})).is_err());
        assert!(SearchRequest::from_json(&json!({"count":1.5})).is_err());
        let huge: Value =
            serde_json::from_str(r#"{"count":99999999999999999999,"startIndex":18446744073709551615}"#).unwrap();
        let r = SearchRequest::from_json(&huge).unwrap();
        assert_eq!((r.count, r.start_index), (Some(i64::MAX), Some(i64::MAX)));
        assert!(SearchRequest::from_json(&json!({"sortOrder":"up"})).is_err());
    }
}
