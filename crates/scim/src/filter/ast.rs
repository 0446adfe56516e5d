//! The filter AST and its canonical printer: `parse(print(ast)) == ast` for every parsed filter.

use std::fmt::{self, Display, Formatter, Write as _};

/// An attribute path: `[urn:]name[.subAttr]` (RFC 7644 §3.4.2.2 `attrPath`).
///
/// Names keep the spelling the client used; comparisons against the schema ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, without the colon that separates it from the name.
    pub urn: Option<String>,
    /// The attribute name.
    pub name: String,
    /// The sub-attribute name, for `name.familyName`.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// A bare attribute name, e.g. `userName`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { urn: None, name: name.into(), sub_attr: None }
    }

    /// `name.sub`, e.g. `name.familyName`.
    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        Self { urn: None, name: name.into(), sub_attr: Some(sub.into()) }
    }

    /// `urn:name`, e.g. the enterprise extension's `department`.
    pub fn with_urn(urn: impl Into<String>, name: impl Into<String>) -> Self {
        Self { urn: Some(urn.into()), name: name.into(), sub_attr: None }
    }
}

impl Display for AttrPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            f.write_str(urn)?;
            f.write_char(':')?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            f.write_char('.')?;
            f.write_str(sub)?;
        }
        Ok(())
    }
}

/// A comparison operator (RFC 7644 §3.4.2.2, Table 3). `pr` is [`Filter::Present`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal: exactly `not (… eq …)`.
    Ne,
    /// Contains (substring).
    Co,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Greater than.
    Gt,
    /// Greater than or equal to.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal to.
    Le,
}

impl CompareOp {
    /// Every operator, in the order the RFC lists them.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The lowercase keyword, e.g. `eq`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator spelled `word`, ignoring case.
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        CompareOp::ALL.into_iter().find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether this is `gt`, `ge`, `lt` or `le`.
    pub fn is_ordering(self) -> bool {
        matches!(self, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le)
    }

    /// Whether this is `co`, `sw` or `ew`.
    pub fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

impl Display for CompareOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The literal on the right of a comparison: a JSON scalar (RFC 7644 §3.4.2.2 `compValue`).
/// dateTime values are strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A JSON string, unescaped.
    Str(String),
}

impl Display for CompValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Null => f.write_str("null"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Number(n) => write!(f, "{n}"),
            CompValue::Str(s) => write_json_string(f, s),
        }
    }
}

/// Writes `s` as a JSON string literal: quotes, backslashes and control characters escaped,
/// everything else (including non-ASCII) as is.
fn write_json_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(f, "\\u{:04x}", u32::from(c))?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// A parsed filter (RFC 7644 §3.4.2.2).
///
/// `and` and `or` are binary and left-associative, as parsed: `a and b and c` is
/// `And(And(a, b), c)`. Parentheses leave no node of their own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Filter {
    /// `path op value`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The literal.
        value: CompValue,
    },
    /// `path pr`.
    Present(AttrPath),
    /// `left and right`.
    And(Box<Filter>, Box<Filter>),
    /// `left or right`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (inner)`.
    Not(Box<Filter>),
    /// `path[filter]`, e.g. `emails[type eq "work"]`. The paths inside `filter` are relative:
    /// they name sub-attributes of `path`.
    ValuePath {
        /// The complex (usually multi-valued) attribute.
        path: AttrPath,
        /// The filter each element is tested against.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// `path op value`.
    pub fn compare(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare { path, op, value }
    }

    /// `self and other`.
    pub fn and(self, other: Filter) -> Filter {
        Filter::And(Box::new(self), Box::new(other))
    }

    /// `self or other`.
    pub fn or(self, other: Filter) -> Filter {
        Filter::Or(Box::new(self), Box::new(other))
    }

    /// `not (self)`.
    pub fn negate(self) -> Filter {
        Filter::Not(Box::new(self))
    }
}

impl Display for Filter {
    /// The canonical text. Parentheses appear only where the tree differs from what precedence
    /// (`or` < `and` < `not`) and left-associativity would give, and always after `not`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(left, right) => {
                write!(f, "{left}")?;
                f.write_str(" or ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut Formatter<'_>, operand: &Filter, parenthesize: bool) -> fmt::Result {
    if parenthesize { write!(f, "({operand})") } else { write!(f, "{operand}") }
}

/// A PATCH operation's `path` (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PatchPath {
    /// `userName`, `name.familyName`, `urn:…:User:manager`.
    Attr(AttrPath),
    /// `emails[type eq "work"]` or `emails[type eq "work"].value`.
    ValuePath {
        /// The multi-valued complex attribute.
        path: AttrPath,
        /// Selects the elements; its paths are sub-attributes of `path`.
        filter: Filter,
        /// The sub-attribute of each selected element, when the path names one.
        sub_attr: Option<String>,
    },
}

impl Display for PatchPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            PatchPath::Attr(path) => write!(f, "{path}"),
            PatchPath::ValuePath { path, filter, sub_attr } => {
                write!(f, "{path}[{filter}]")?;
                if let Some(sub) = sub_attr {
                    write!(f, ".{sub}")?;
                }
                Ok(())
            }
        }
    }
}
