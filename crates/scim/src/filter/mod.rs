//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): tokenizer, parser, AST, printer, validator, evaluator.
//!
//! [`parse_filter`] turns `?filter=` text into a [`Filter`]; [`Filter::validate`] checks it
//! against a resource type's schemas; [`Filter::matches`] evaluates it on a resource held as
//! JSON. [`parse_patch_path`] reads a PATCH operation's `path`, and [`matches_element`] tests one
//! element of a multi-valued attribute against its value filter. `Display` on every AST type
//! prints the canonical text, and `parse(print(ast)) == ast` for every parsed AST.
//!
//! # Syntax
//!
//! The whole of RFC 7644 Figure 1, plus these decisions:
//!
//! - Operators, `and`, `or`, `not`, `true`, `false` and `null` ignore case (`EQ`, `And`, `True`).
//!   Keywords are contextual: `and`, `or` and the operators are keywords only where an operator
//!   is expected, so they remain usable as attribute names. `not` at the start of a term is
//!   always the keyword and must be followed by `(`.
//! - Attribute names are `ALPHA *(ALPHA / DIGIT / "-" / "_")`, plus `$ref`. A URN prefix is
//!   everything before the *last* colon (URNs contain dots, as in `2.0`), so
//!   `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value` is the
//!   extension's `manager` with sub-attribute `value`.
//! - Values are JSON literals: strings with every JSON escape (raw control characters are
//!   rejected, as in JSON), numbers in JSON syntax. dateTime values are strings.
//! - Whitespace (space, tab, CR, LF) between tokens is insignificant and may be absent where
//!   tokens are otherwise delimited: `userName eq"x"` and `not(title pr)` parse.
//! - Value filters do not nest (`emails[x[y pr]]` is an error, as the RFC says the inner filter
//!   uses sub-attributes of the outer attribute).
//! - **Lenient extension**: in a filter, `emails[type eq "work"].value eq "x"` is accepted and
//!   parsed as `emails[type eq "work" and value eq "x"]` (a [`Filter::ValuePath`] whose filter
//!   is an `And`), which is what it means. It prints in that canonical form. In a PATCH path,
//!   `.value` after `]` is the RFC's `subAttr` and lands in [`PatchPath::ValuePath::sub_attr`].
//!
//! Errors read `expected X, found Y at column N` (1-based column in the message, 0-based
//! character offset in [`FilterError::position`]). They quote at most 32 characters of the input
//! and never quote string or number literals, which are attribute values and may be personal
//! data.
//!
//! # Limits
//!
//! No input can exhaust the stack or the heap: the input is at most [`MAX_FILTER_LEN`] bytes;
//! `(`, `not (` and `[` nest at most [`MAX_DEPTH`] deep (the parser's recursion is bounded by
//! that); a filter holds at most [`MAX_TERMS`] attribute expressions. `and`/`or` chains are
//! parsed by a loop into a left-leaning tree, whose height is therefore at most
//! `MAX_TERMS + MAX_DEPTH + 1`, which bounds the recursion of `Drop`, `Display`, `PartialEq`,
//! validation and evaluation on any parsed filter. Hand-built trees are the builder's business.
//! The canonical text can be longer than the input it came from (`1e3` prints as `1000.0`,
//! `a eq"x"` as `a eq "x"`), so the round trip holds for filters whose printed form fits in
//! [`MAX_FILTER_LEN`].
//!
//! # Evaluation semantics
//!
//! - Attribute names and schema URNs ignore case. Unqualified names are looked up among the
//!   common attributes (`id`, `externalId`, `meta`) and the core schema; a core-URN-qualified
//!   path reads the top level too; an extension attribute needs its URN and is read from the
//!   object stored under that URN key (matched ignoring case). `schemas` is known everywhere as
//!   a multi-valued, case-insensitive string.
//! - A comparison on a multi-valued attribute matches if **any** value matches. A comparison on
//!   a complex attribute without a sub-attribute compares its `value` sub-attribute
//!   (`emails co "@example.com"`, RFC 7644 §3.4.2.2); a complex attribute without `value` never
//!   matches (and fails validation).
//! - `ne` is exactly `not (… eq …)`: a missing attribute matches `ne "x"`, and a multi-valued one
//!   matches only if **no** value equals. `eq null` means "not present", `ne null` "present".
//! - Strings (and references) compare ignoring case unless the attribute is `caseExact`; the
//!   folding is Unicode `to_lowercase`. `co`, `sw`, `ew` and ordering follow the same rule;
//!   ordering is by code point. Binary values are always case-exact (RFC 7643 §2.3.6).
//! - integer and decimal compare numerically (`1 eq 1.0`); dateTime compares chronologically
//!   (RFC 3339, or a date-time without offset read as UTC), falling back to plain string
//!   comparison when either side does not parse.
//! - Booleans support `eq`/`ne` only. A boolean stored or given as the string `"true"`/`"false"`
//!   in any case (Entra sends `"True"`) equals the JSON boolean.
//! - `pr`: the attribute has a value that is not `null`, not an empty string, and for arrays
//!   and objects has at least one present element or member (RFC 7644: "non-empty").
//! - A value whose JSON type does not fit the attribute, an unknown attribute, or an operator
//!   that does not apply to the type never matches (and never panics); [`Filter::validate`]
//!   is where such filters are reported.
//! - A value filter (`emails[…]`) matches if any element of the attribute matches the inner
//!   filter; a single-valued complex attribute counts as one element.
//!
//! # Validation
//!
//! [`Filter::validate`] returns `400 invalidFilter` for: an unknown attribute, sub-attribute or
//! schema URN (naming it; an unqualified extension attribute gets a hint with its URN); `gt`,
//! `ge`, `lt`, `le` on boolean or binary attributes (RFC 7644 §3.4.2.2); `co`, `sw`, `ew` on
//! anything but string and reference attributes (boolean, integer, decimal, dateTime, binary);
//! ordering or substring operators with `null`; a value whose type cannot match (a number for a
//! string, `"yes"` for a boolean, an unparsable dateTime); a comparison on a complex attribute
//! without a `value` sub-attribute; a value filter on a non-complex attribute or on a path with
//! a sub-attribute, and inner paths that are not sub-attributes of the outer attribute.

mod ast;
mod eval;
mod lexer;
mod parser;
mod validate;

use std::str::FromStr;

pub use ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
pub use eval::names_nothing;

use crate::error::ScimError;
use crate::schema::{Attribute, ResourceSchema};

/// The longest filter or PATCH path accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 8 * 1024;
/// How deep `(`, `not (` and `[` may nest.
pub const MAX_DEPTH: usize = 32;
/// How many attribute expressions (comparisons and `pr`) one filter may hold.
pub const MAX_TERMS: usize = 256;

/// A filter or path that does not parse: where, and why, in words an admin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// 0-based character offset of the problem in the input.
    pub position: usize,
    /// The message, ending with the 1-based column (`… at column 13`).
    pub message: String,
}

impl FilterError {
    /// `{what} at column {position + 1}`: the one constructor of positioned errors.
    pub(crate) fn at(position: usize, what: impl std::fmt::Display) -> Self {
        Self { position, message: format!("{what} at column {}", position + 1) }
    }

    /// As a filter error: `400 invalidFilter`.
    pub fn into_filter_error(self) -> ScimError {
        ScimError::invalid_filter(self.message)
    }

    /// As a PATCH path error: `400 invalidPath`.
    pub fn into_path_error(self) -> ScimError {
        ScimError::invalid_path(self.message)
    }
}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        e.into_filter_error()
    }
}

/// Parses a filter, e.g. the `filter` query parameter of `GET /Users`.
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    parser::parse_filter(input)
}

/// Parses a PATCH operation's `path` (RFC 7644 §3.5.2).
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    parser::parse_patch_path(input)
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_filter(s)
    }
}

impl FromStr for PatchPath {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_patch_path(s)
    }
}

impl Filter {
    /// Checks the filter against a resource type's schemas (see the module doc for the rules).
    /// Every failure is `400 invalidFilter` naming the attribute and the rule.
    pub fn validate(&self, schema: &ResourceSchema<'_>) -> Result<(), ScimError> {
        validate::validate(self, schema)
    }

    /// Whether `resource` (a JSON object) matches. Anything that is not an object never matches.
    pub fn matches(&self, resource: &serde_json::Value, schema: &ResourceSchema<'_>) -> bool {
        eval::matches(self, resource, schema)
    }

    /// [`Filter::matches`] on a resource held as its object: callers that keep resources as
    /// `Map`s (the delivery engine's per-target scope) need not clone one into a `Value` first.
    pub fn matches_object(
        &self,
        resource: &serde_json::Map<String, serde_json::Value>,
        schema: &ResourceSchema<'_>,
    ) -> bool {
        eval::matches_object(self, resource, schema)
    }
}

/// Whether one element of the multi-valued complex attribute `attr` matches a value filter
/// whose paths are sub-attributes of `attr`, as in PATCH's `emails[type eq "work"]`.
pub fn matches_element(filter: &Filter, element: &serde_json::Value, attr: &Attribute) -> bool {
    eval::matches_element(filter, element, attr)
}
