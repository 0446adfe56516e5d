//! Parser tests: every RFC 7644 §3.4.2.2 example and every Entra query, the printer's canonical
//! form, PATCH paths, every class of syntax error, and the limits.

// Integration tests are test code: clippy's allow-unwrap-in-tests applies to `cfg(test)` items.
#![cfg(test)]

use std::time::{Duration, Instant};

use scimgw_scim::ScimType;
use scimgw_scim::filter::{
    AttrPath, CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_FILTER_LEN, MAX_TERMS, PatchPath, parse_filter,
    parse_patch_path,
};
use serde_json::Number;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn path(name: &str) -> AttrPath {
    AttrPath::new(name)
}

fn sub(name: &str, sub: &str) -> AttrPath {
    AttrPath::with_sub(name, sub)
}

fn s(v: &str) -> CompValue {
    CompValue::Str(v.to_owned())
}

fn cmp(path: AttrPath, op: CompareOp, value: CompValue) -> Filter {
    Filter::compare(path, op, value)
}

fn eq(name: &str, v: &str) -> Filter {
    cmp(path(name), CompareOp::Eq, s(v))
}

fn vp(name: &str, inner: Filter) -> Filter {
    Filter::ValuePath { path: path(name), filter: Box::new(inner) }
}

/// Parses `input`, checks that it equals `expected`, that printing gives `canonical`, and that
/// the printed text parses back to the same tree.
#[track_caller]
fn check(input: &str, expected: Filter, canonical: &str) {
    let parsed = parse_filter(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    assert_eq!(parsed, expected, "{input}");
    let printed = parsed.to_string();
    assert_eq!(printed, canonical, "{input}");
    assert_eq!(parse_filter(&printed).unwrap(), parsed, "{printed}");
    assert_eq!(input.parse::<Filter>().unwrap(), parsed);
}

/// Checks an input that is already in canonical form.
#[track_caller]
fn check_canonical(input: &str, expected: Filter) {
    check(input, expected, input);
}

#[track_caller]
fn error(input: &str) -> FilterError {
    match parse_filter(input) {
        Ok(f) => panic!("{input:?} parsed as {f:?}"),
        Err(e) => {
            let scim = scimgw_scim::ScimError::from(e.clone());
            assert_eq!((scim.status, scim.scim_type), (400, Some(ScimType::InvalidFilter)));
            assert_eq!(scim.detail, e.message);
            e
        }
    }
}

#[track_caller]
fn error_is(input: &str, position: usize, message: &str) {
    let e = error(input);
    assert_eq!((e.position, e.message.as_str()), (position, message), "{input:?}");
}

// ---- RFC 7644 §3.4.2.2 examples -------------------------------------------------------------

#[test]
fn rfc_examples_of_single_comparisons_parse_and_round_trip() {
    check_canonical(r#"userName eq "bjensen""#, eq("userName", "bjensen"));
    check_canonical(r#"name.familyName co "O'Malley""#, cmp(sub("name", "familyName"), CompareOp::Co, s("O'Malley")));
    check_canonical(r#"userName sw "J""#, cmp(path("userName"), CompareOp::Sw, s("J")));
    check_canonical(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        cmp(AttrPath::with_urn(CORE_USER, "userName"), CompareOp::Sw, s("J")),
    );
    check_canonical("title pr", Filter::Present(path("title")));
    for (op, word) in [(CompareOp::Gt, "gt"), (CompareOp::Ge, "ge"), (CompareOp::Lt, "lt"), (CompareOp::Le, "le")] {
        check_canonical(
            &format!(r#"meta.lastModified {word} "2011-05-13T04:42:34Z""#),
            cmp(sub("meta", "lastModified"), op, s("2011-05-13T04:42:34Z")),
        );
    }
    check_canonical(
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        eq("schemas", ENTERPRISE),
    );
}

#[test]
fn rfc_examples_of_logical_combinations_parse_and_round_trip() {
    check_canonical(
        r#"title pr and userType eq "Employee""#,
        Filter::Present(path("title")).and(eq("userType", "Employee")),
    );
    check_canonical(r#"title pr or userType eq "Intern""#, Filter::Present(path("title")).or(eq("userType", "Intern")));
    let emails_co = cmp(path("emails"), CompareOp::Co, s("example.com"));
    let emails_value_co = cmp(sub("emails", "value"), CompareOp::Co, s("example.org"));
    check_canonical(
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        eq("userType", "Employee").and(emails_co.clone().or(emails_value_co.clone())),
    );
    check_canonical(
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        cmp(path("userType"), CompareOp::Ne, s("Employee")).and(emails_co.or(emails_value_co).negate()),
    );
    // The parentheses around a single comparison leave no trace in the tree.
    check(
        r#"userType eq "Employee" and (emails.type eq "work")"#,
        eq("userType", "Employee").and(cmp(sub("emails", "type"), CompareOp::Eq, s("work"))),
        r#"userType eq "Employee" and emails.type eq "work""#,
    );
}

#[test]
fn rfc_examples_of_value_filters_parse_and_round_trip() {
    let work_example = eq("type", "work").and(cmp(path("value"), CompareOp::Co, s("@example.com")));
    check_canonical(
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        eq("userType", "Employee").and(vp("emails", work_example.clone())),
    );
    check_canonical(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        vp("emails", work_example)
            .or(vp("ims", eq("type", "xmpp").and(cmp(path("value"), CompareOp::Co, s("@foo.com"))))),
    );
}

// ---- Microsoft Entra ID ---------------------------------------------------------------------

#[test]
fn entra_queries_parse_and_round_trip() {
    check_canonical(
        r#"userName eq "Test_User_ab6490ee@contoso.com""#,
        eq("userName", "Test_User_ab6490ee@contoso.com"),
    );
    check_canonical(
        r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
        eq("externalId", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"),
    );
    check_canonical(r#"displayName eq "Sales""#, eq("displayName", "Sales"));
    // Test Connection sends a random GUID.
    check_canonical(
        r#"userName eq "5e1d3f0c-39a8-4c5e-9a5b-2b6e5a6f0d11""#,
        eq("userName", "5e1d3f0c-39a8-4c5e-9a5b-2b6e5a6f0d11"),
    );
    check_canonical(r#"userName eq "a" and externalId eq "b""#, eq("userName", "a").and(eq("externalId", "b")));
}

// ---- Syntax details ---------------------------------------------------------------------------

#[test]
fn keywords_and_literals_ignore_case_and_print_lowercase() {
    check(
        r#"userName EQ "x" And NOT (active Eq TRUE) OR title PR"#,
        eq("userName", "x")
            .and(cmp(path("active"), CompareOp::Eq, CompValue::Bool(true)).negate())
            .or(Filter::Present(path("title"))),
        r#"userName eq "x" and not (active eq true) or title pr"#,
    );
    check("x eq False", cmp(path("x"), CompareOp::Eq, CompValue::Bool(false)), "x eq false");
    check("x ne NULL", cmp(path("x"), CompareOp::Ne, CompValue::Null), "x ne null");
}

#[test]
fn and_binds_tighter_than_or_and_both_associate_to_the_left() {
    let (a, b, c) = (Filter::Present(path("a")), Filter::Present(path("b")), Filter::Present(path("c")));
    check_canonical("a pr or b pr and c pr", a.clone().or(b.clone().and(c.clone())));
    check_canonical("a pr and b pr or c pr", a.clone().and(b.clone()).or(c.clone()));
    check_canonical("a pr and b pr and c pr", a.clone().and(b.clone()).and(c.clone()));
    check_canonical("a pr and (b pr and c pr)", a.clone().and(b.clone().and(c.clone())));
    check_canonical("a pr or (b pr or c pr)", a.clone().or(b.clone().or(c.clone())));
    check_canonical("(a pr or b pr) and c pr", a.clone().or(b.clone()).and(c.clone()));
    check("((a pr)) or ((b pr))", a.clone().or(b), "a pr or b pr");
    check("not((a pr))", a.negate(), "not (a pr)");
}

#[test]
fn whitespace_between_tokens_is_insignificant() {
    check("\t userName   eq\"x\"  \r\n", eq("userName", "x"), r#"userName eq "x""#);
    check(r#"emails [ type eq "work" ]"#, vp("emails", eq("type", "work")), r#"emails[type eq "work"]"#);
}

#[test]
fn values_are_json_literals() {
    check(r#"x eq "a\"b\\c\/d\u00e9\n""#, eq("x", "a\"b\\c/dé\n"), r#"x eq "a\"b\\c/dé\n""#);
    check_canonical(r#"x eq "😀 ünïcödé""#, eq("x", "😀 ünïcödé"));
    check_canonical("x eq 42", cmp(path("x"), CompareOp::Eq, CompValue::Number(42.into())));
    check_canonical("x gt -7", cmp(path("x"), CompareOp::Gt, CompValue::Number((-7).into())));
    check_canonical("x lt 1.5", cmp(path("x"), CompareOp::Lt, CompValue::Number(Number::from_f64(1.5).unwrap())));
    check(
        "x le 2E3",
        cmp(path("x"), CompareOp::Le, CompValue::Number(Number::from_f64(2000.0).unwrap())),
        "x le 2000.0",
    );
    check("x eq 1e-2", cmp(path("x"), CompareOp::Eq, CompValue::Number(Number::from_f64(0.01).unwrap())), "x eq 0.01");
}

#[test]
fn urn_paths_split_at_the_last_colon() {
    check_canonical(
        &format!(r#"{ENTERPRISE}:department eq "Sales""#),
        cmp(AttrPath::with_urn(ENTERPRISE, "department"), CompareOp::Eq, s("Sales")),
    );
    check_canonical(
        &format!(r#"{ENTERPRISE}:manager.value eq "26118915""#),
        cmp(
            AttrPath { urn: Some(ENTERPRISE.into()), name: "manager".into(), sub_attr: Some("value".into()) },
            CompareOp::Eq,
            s("26118915"),
        ),
    );
}

#[test]
fn contextual_keywords_can_be_attribute_names_except_not() {
    check_canonical(r#"and eq "x" or or pr"#, eq("and", "x").or(Filter::Present(path("or"))));
    check_canonical(r#"eq eq "x" and pr pr"#, eq("eq", "x").and(Filter::Present(path("pr"))));
    check_canonical("members[$ref pr]", vp("members", Filter::Present(path("$ref"))));
    error_is(r#"not eq "x""#, 4, r#"expected "(" after "not", found "eq" at column 5"#);
}

#[test]
fn a_sub_attribute_after_a_value_filter_is_folded_into_the_filter() {
    check(
        r#"emails[type eq "work"].value eq "x@example.com""#,
        vp("emails", eq("type", "work").and(eq("value", "x@example.com"))),
        r#"emails[type eq "work" and value eq "x@example.com"]"#,
    );
    check(
        r#"emails[type eq "work" or primary eq true].value pr"#,
        vp(
            "emails",
            eq("type", "work")
                .or(cmp(path("primary"), CompareOp::Eq, CompValue::Bool(true)))
                .and(Filter::Present(path("value"))),
        ),
        r#"emails[(type eq "work" or primary eq true) and value pr]"#,
    );
}

// ---- PATCH paths ---------------------------------------------------------------------------

#[test]
fn patch_paths_parse_every_form_entra_sends() {
    assert_eq!(parse_patch_path("active").unwrap(), PatchPath::Attr(path("active")));
    assert_eq!(parse_patch_path("name.familyName").unwrap(), PatchPath::Attr(sub("name", "familyName")));
    assert_eq!(
        parse_patch_path(&format!("{ENTERPRISE}:manager")).unwrap(),
        PatchPath::Attr(AttrPath::with_urn(ENTERPRISE, "manager"))
    );
    let work = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
    assert_eq!(
        work,
        PatchPath::ValuePath { path: path("emails"), filter: eq("type", "work"), sub_attr: Some("value".into()) }
    );
    assert_eq!(work.to_string(), r#"emails[type eq "work"].value"#);
    let member = parse_patch_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
    assert_eq!(
        member,
        PatchPath::ValuePath {
            path: path("members"),
            filter: eq("value", "2819c223-7f76-453a-919d-413861904646"),
            sub_attr: None
        }
    );
    assert_eq!(member.to_string().parse::<PatchPath>().unwrap(), member);
}

#[test]
fn patch_path_errors_are_invalid_path() {
    for (input, position, message) in [
        ("", 0, "expected an attribute path, found the end of the input at column 1"),
        (
            "emails[type eq \"work\"",
            21,
            "expected \"and\", \"or\" or \"]\" to close the \"[\" at column 7, found the end of the input at column 22",
        ),
        (
            "emails[type eq \"work\"].value.x",
            23,
            "expected a sub-attribute name after \".\", found \"value.x\" at column 24",
        ),
        ("userName eq \"x\"", 9, "expected \"[\" or the end of the path, found \"eq\" at column 10"),
        (
            "emails[type eq \"work\"] x",
            23,
            "expected \".\" and a sub-attribute name, or the end of the path, found \"x\" at column 24",
        ),
    ] {
        let e = parse_patch_path(input).unwrap_err();
        assert_eq!((e.position, e.message.as_str()), (position, message), "{input:?}");
        let scim = e.into_path_error();
        assert_eq!((scim.status, scim.scim_type), (400, Some(ScimType::InvalidPath)));
    }
}

// ---- Errors ---------------------------------------------------------------------------------

#[test]
fn an_empty_filter_is_an_error() {
    error_is("", 0, r#"expected an attribute name, "(" or "not", found the end of the input at column 1"#);
    error_is("   ", 3, r#"expected an attribute name, "(" or "not", found the end of the input at column 4"#);
}

#[test]
fn a_missing_value_is_an_error() {
    error_is(
        "userName eq",
        11,
        "expected a value (a string in double quotes, a number, true, false or null), found the end of the input at column 12",
    );
    error_is(
        "userName eq bjensen",
        12,
        "expected a value (a string in double quotes, a number, true, false or null), found an unquoted word (strings go in double quotes) at column 13",
    );
}

#[test]
fn an_unknown_operator_is_an_error() {
    error_is(
        r#"userName equals "bjensen""#,
        9,
        r#"expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found "equals" at column 10"#,
    );
    error_is(
        "userName",
        8,
        "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr), found the end of the input at column 9",
    );
}

#[test]
fn string_errors_point_at_the_string() {
    error_is(r#"userName eq "bjensen"#, 12, "unterminated string starting at column 13");
    error_is(
        r#"userName eq "b\qx""#,
        14,
        r#"invalid escape "\\q" in a string (valid: \" \\ \/ \b \f \n \r \t \uXXXX) at column 15"#,
    );
    error_is(r#"x eq "\u12""#, 6, "invalid \\u escape (it takes four hexadecimal digits) at column 7");
    error_is(r#"x eq "\ud800""#, 6, "unpaired UTF-16 surrogate in a \\u escape at column 7");
    error_is("x eq \"a\tb\"", 7, "control character U+0009 in a string (escape it, e.g. \\t or \\n) at column 8");
}

#[test]
fn unbalanced_parentheses_are_errors() {
    error_is(
        r#"(userName eq "x""#,
        16,
        r#"expected ")" to close the "(" at column 1, found the end of the input at column 17"#,
    );
    error_is(r#"userName eq "x")"#, 15, r#"unbalanced ")" at column 16"#);
    error_is(r#")"#, 0, r#"unbalanced ")" at column 1"#);
    error_is(r#"(title pr]"#, 9, r#"expected ")" to close the "(" at column 1, found "]" at column 10"#);
}

#[test]
fn trailing_garbage_is_an_error() {
    error_is(r#"title pr title"#, 9, r#"expected "and", "or" or the end of the filter, found "title" at column 10"#);
    error_is(r#"title pr ."#, 9, r#"expected "and", "or" or the end of the filter, found "." at column 10"#);
    error_is(r#"title pr %"#, 9, r#"unexpected character "%" at column 10"#);
}

#[test]
fn not_needs_parentheses() {
    error_is(r#"not title pr"#, 4, r#"expected "(" after "not", found "title" at column 5"#);
}

#[test]
fn value_filters_do_not_nest() {
    error_is(
        r#"emails[type[value pr]]"#,
        11,
        r#"value filters cannot be nested (the enclosing "[" is at column 7), found "[" at column 12"#,
    );
    error_is(r#"emails[]"#, 7, r#"expected an attribute name, "(" or "not", found "]" at column 8"#);
}

#[test]
fn present_takes_no_value() {
    error_is(r#"title pr "x""#, 9, r#""pr" takes no value, found a string at column 10"#);
    error_is(r#"title pr true"#, 9, r#""pr" takes no value, found "true" at column 10"#);
}

#[test]
fn malformed_numbers_are_errors() {
    let invalid = "invalid number (expected a JSON number such as 42, -7, 1.5 or 2e3) at column 6";
    for bad in ["x eq 1.2.3", "x eq 01", "x eq 1.", "x eq -", "x eq 1e", "x eq 12ab"] {
        error_is(bad, 5, invalid);
    }
    error_is("x eq 1e999", 5, "number out of range at column 6");
}

#[test]
fn malformed_attribute_paths_are_errors() {
    error_is(
        "name.givenName.x pr",
        14,
        r#"attribute path "name.givenName.x" has more than one sub-attribute at column 15"#,
    );
    error_is(
        r#"name. pr"#,
        5,
        r#"expected an attribute name (a letter, then letters, digits, "-" or "_"), found nothing at column 6"#,
    );
    error_is(
        "foo:bar pr",
        0,
        r#"expected a schema URN such as urn:ietf:params:scim:schemas:core:2.0:User before the last ":", found "foo" at column 1"#,
    );
    error_is(
        "urn:x:na$me pr",
        6,
        r#"expected an attribute name (a letter, then letters, digits, "-" or "_"), found "na$me" at column 7"#,
    );
}

#[test]
fn error_positions_count_characters_and_quotes_are_truncated() {
    error_is(r#"x eq "héllo" y"#, 13, r#"expected "and", "or" or the end of the filter, found "y" at column 14"#);
    let long = "a".repeat(100);
    let e = error(&format!("x pr {long}"));
    assert_eq!(
        e.message,
        format!(r#"expected "and", "or" or the end of the filter, found "{}…" at column 6"#, "a".repeat(32))
    );
    // Invisible characters are shown escaped.
    error_is("x\u{a0}pr", 1, r#"unexpected character "\u{a0}" at column 2"#);
}

#[test]
fn no_input_panics_on_multibyte_and_control_characters() {
    for input in
        ["é", "😀 eq 1", "x eq \u{0}", "\u{0}", "x\u{200b} pr", "x eq \"\\u00e9", "[", "]", "x[", "x[y pr", "\"", "\\"]
    {
        let _ = parse_filter(input);
        let _ = parse_patch_path(input);
    }
}

// ---- Limits ---------------------------------------------------------------------------------

#[track_caller]
fn fails_fast(input: &str) -> FilterError {
    let start = Instant::now();
    let e = error(input);
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    e
}

#[test]
fn a_filter_longer_than_the_limit_is_rejected_before_parsing() {
    let input = format!(r#"userName eq "{}""#, "x".repeat(MAX_FILTER_LEN));
    let e = fails_fast(&input);
    assert_eq!((e.position, e.message.as_str()), (0, "filter is longer than 8192 bytes"));
    let e = parse_patch_path(&input).unwrap_err();
    assert_eq!(e.message, "path is longer than 8192 bytes");
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error() {
    let ok = format!("{}x pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert_eq!(parse_filter(&ok).unwrap(), Filter::Present(path("x")));
    let nots = format!("{}x pr{}", "not (".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(parse_filter(&nots).is_ok());
    let e = fails_fast(&format!("{}x pr{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1)));
    assert_eq!(e.message, "filter nests deeper than 32 levels of parentheses and brackets at column 33");
    // 100,000 parentheses would overflow a naive recursive parser; this stops at the 33rd,
    // before the length limit is even relevant (the length check comes first for long input).
    let e = fails_fast(&"(".repeat(MAX_FILTER_LEN));
    assert_eq!(e.position, MAX_DEPTH);
    let e = fails_fast(&"(".repeat(100_000));
    assert_eq!(e.message, "filter is longer than 8192 bytes");
    let e = fails_fast(&"not (".repeat(1_000));
    assert_eq!(e.position, 5 * MAX_DEPTH + 4);
}

#[test]
fn long_and_chains_are_bounded_by_the_term_limit() {
    let chain = |n: usize| vec!["a pr"; n].join(" and ");
    let f = parse_filter(&chain(MAX_TERMS)).unwrap();
    // The tree is as deep as the chain is long: printing, comparing and dropping it must be fine.
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
    let e = fails_fast(&chain(MAX_TERMS + 1));
    assert_eq!(
        e.message,
        format!("filter has more than {MAX_TERMS} attribute comparisons at column {}", MAX_TERMS * 9 + 3)
    );
    // 10,000 terms do not fit in the length limit; a chain within it is stopped by the term limit.
    let e = fails_fast(&vec!["a pr"; 10_000].join(" and "));
    assert_eq!(e.message, "filter is longer than 8192 bytes");
    let e = fails_fast(&vec!["a pr"; 10_000].join(" or ")[..MAX_FILTER_LEN - 8]);
    assert!(e.message.starts_with("filter has more than 256 attribute comparisons"), "{}", e.message);
}

#[test]
fn the_folded_value_filter_counts_the_parentheses_its_canonical_form_adds() {
    // `emails[a pr or b pr].c pr` prints as `emails[(a pr or b pr) and c pr]`: one level deeper.
    let nested = |n: usize| format!("{}emails[a pr or b pr].c pr{}", "(".repeat(n), ")".repeat(n));
    let f = parse_filter(&nested(MAX_DEPTH - 2)).unwrap();
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
    let e = error(&nested(MAX_DEPTH - 1));
    assert_eq!(
        e.message,
        format!("filter nests deeper than 32 levels of parentheses and brackets at column {}", MAX_DEPTH - 1 + 21)
    );
}
