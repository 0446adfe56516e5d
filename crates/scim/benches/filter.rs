//! Filter benchmarks: parsing Entra's query, parsing a ten-clause filter, evaluating on a user.

#![expect(clippy::expect_used, reason = "a benchmark whose setup fails should stop loudly")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use scimgw_scim::filter::parse_filter;
use scimgw_scim::schema::Registry;
use serde_json::json;

const ENTRA_QUERY: &str = r#"userName eq "alice@example.com""#;

const TEN_CLAUSES: &str = r#"userName eq "alice@example.com" and active eq true and (emails[type eq "work" and value co "@example.com"] or title pr) and not (userType eq "Intern") and name.familyName sw "Sm" and meta.lastModified gt "2024-01-01T00:00:00Z" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Sales" and externalId ne "x""#;

const THREE_CLAUSES: &str =
    r#"userName eq "ALICE@example.com" and active eq true and emails[type eq "work" and value ew "@example.com"]"#;

fn parsing(c: &mut Criterion) {
    c.bench_function("parse an Entra userName query", |b| b.iter(|| parse_filter(black_box(ENTRA_QUERY))));
    c.bench_function("parse a ten-clause filter", |b| b.iter(|| parse_filter(black_box(TEN_CLAUSES))));
}

fn evaluating(c: &mut Criterion) {
    let registry = Registry::default();
    let schema = registry.resource("User").expect("the default registry has User");
    let filter = parse_filter(THREE_CLAUSES).expect("the benchmark filter parses");
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "userName": "alice@example.com",
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"type": "home", "value": "alice@home.example"}, {"type": "work", "value": "alice@example.com", "primary": true}],
        "meta": {"resourceType": "User", "lastModified": "2024-03-02T10:30:00Z"}
    });
    assert!(filter.matches(&user, &schema));
    c.bench_function("evaluate a three-clause filter on a user", |b| {
        b.iter(|| black_box(&filter).matches(black_box(&user), &schema))
    });
}

criterion_group!(benches, parsing, evaluating);
criterion_main!(benches);
