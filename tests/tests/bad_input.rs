//! Bad input, table-driven: every case must get its status and `scimType` in a SCIM Error
//! body (`schemas` with the Error URN, `status` as a string) — and no case may ever get a 500.
//!
//! The table runs on a gateway with `max_body_bytes = 4096`, so that the 413 cases stay small.
#![expect(clippy::unwrap_used, reason = "a test: a panic is the failure report")]

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use scimgw_e2e::{ENTERPRISE_URN, GROUP_URN, PATCH_URN, TestApp, USER_URN, both_backends, enc};
use serde_json::{Value, json};

const BODY_LIMIT: usize = 4096;
const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const NO_SUCH_ID: &str = "00000000-0000-4000-8000-000000000000";

/// Which credentials a case sends.
#[derive(Clone)]
enum Auth {
    /// The tenant's valid token.
    Valid,
    /// No `Authorization` header.
    Missing,
    /// This exact header value.
    Header(String),
}

struct Case {
    name: String,
    method: Method,
    path: String,
    auth: Auth,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    scim_type: Option<&'static str>,
}

impl Case {
    fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Self {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            auth: Auth::Valid,
            headers: Vec::new(),
            body: None,
            status: 400,
            scim_type: None,
        }
    }
    fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }
    fn text(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn expect(mut self, status: u16, scim_type: Option<&'static str>) -> Self {
        self.status = status;
        self.scim_type = scim_type;
        self
    }
}

fn get(name: &str, path: impl Into<String>) -> Case {
    Case::new(name, Method::GET, path)
}
fn post(name: &str, path: impl Into<String>, body: &Value) -> Case {
    Case::new(name, Method::POST, path).json(body)
}
fn put(name: &str, path: impl Into<String>, body: &Value) -> Case {
    Case::new(name, Method::PUT, path).json(body)
}
fn patch(name: &str, path: impl Into<String>, ops: Value) -> Case {
    Case::new(name, Method::PATCH, path).json(&json!({"schemas":[PATCH_URN],"Operations": ops}))
}
fn users_where(filter: &str) -> String {
    format!("/Users?filter={}", enc(filter))
}
/// A valid user body with a userName of its own, changed by `extra`: one case's mistake cannot
/// make the next case a 409.
fn user(extra: Value) -> Value {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut u = json!({"schemas":[USER_URN],"userName": format!("fresh{n}@example.com")});
    for (k, v) in extra.as_object().unwrap() {
        u[k] = v.clone();
    }
    u
}

/// The ids and tokens the cases refer to.
struct Fixture {
    uid: String,
    gid: String,
    revoked: String,
    unknown: String,
    wrong_secret: String,
}

fn cases(f: &Fixture) -> Vec<Case> {
    let uid = &f.uid;
    let gid = &f.gid;
    let u = format!("/Users/{uid}");
    let g = format!("/Groups/{gid}");
    let long = "x".repeat(1025);
    let big = json!({"schemas":[USER_URN],"userName":"big@example.com","title":"x".repeat(BODY_LIMIT)});
    let nested_parens = format!("{}userName eq \"a\"{}", "(".repeat(100), ")".repeat(100));
    let mut c = vec![
        // Malformed JSON.
        post("truncated JSON", "/Users", &json!(null)).text("{").expect(400, Some("invalidSyntax")),
        post("not JSON at all", "/Users", &json!(null)).text("userName=alice").expect(400, Some("invalidSyntax")),
        post("empty body", "/Users", &json!(null)).text("").expect(400, Some("invalidSyntax")),
        post("whitespace body", "/Users", &json!(null)).text("  \n ").expect(400, Some("invalidSyntax")),
        post("JSON array body", "/Users", &json!([])).expect(400, Some("invalidSyntax")),
        post("JSON string body", "/Groups", &json!("group")).expect(400, Some("invalidSyntax")),
        post("trailing garbage", "/Groups", &json!(null))
            .text(r#"{"displayName":"x"} x"#)
            .expect(400, Some("invalidSyntax")),
        post("invalid UTF-8", "/Users", &json!(null))
            .text(b"{\"userName\":\"\xff\xfe\"}".to_vec())
            .expect(400, Some("invalidSyntax")),
        put("truncated PUT", &u, &json!(null)).text(r#"{"userName":"#).expect(400, Some("invalidSyntax")),
        patch("truncated PATCH", &u, json!(null)).text("{]").expect(400, Some("invalidSyntax")),
        post("truncated .search", "/Users/.search", &json!(null)).text("{").expect(400, Some("invalidSyntax")),
        post("PATCH body sent to POST", "/Users", &json!({"schemas":[PATCH_URN],"Operations":[]}))
            .expect(400, Some("invalidSyntax")),
        // Wrong JSON types.
        post("userName a number", "/Users", &user(json!({"userName": 5}))).expect(400, Some("invalidValue")),
        post("active not a boolean", "/Users", &user(json!({"active": "yes"}))).expect(400, Some("invalidValue")),
        post("active a number", "/Users", &user(json!({"active": 1}))).expect(400, Some("invalidValue")),
        post("name a string", "/Users", &user(json!({"name": "Ann"}))).expect(400, Some("invalidValue")),
        post("emails a number", "/Users", &user(json!({"emails": 5}))).expect(400, Some("invalidValue")),
        post("email value a number", "/Users", &user(json!({"emails": [{"value": 5}]}))).expect(400, Some("invalidValue")),
        post("primary a string", "/Users", &user(json!({"emails": [{"value": "a@x", "primary": "maybe"}]})))
            .expect(400, Some("invalidValue")),
        post("two primaries", "/Users", &user(json!({"emails": [{"value":"a@x","primary":true,"type":"work"},{"value":"b@x","primary":true,"type":"home"}]})))
            .expect(400, Some("invalidValue")),
        post("schemas a string", "/Users", &json!({"schemas": USER_URN, "userName": "s@example.com"}))
            .expect(400, Some("invalidSyntax")),
        post("displayName an array", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":["a"]}))
            .expect(400, Some("invalidValue")),
        post("members a string", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"g","members":"x"}))
            .expect(400, Some("invalidValue")),
        post("member value a number", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"g","members":[{"value":5}]}))
            .expect(400, Some("invalidValue")),
        post("extension not an object", "/Users", &user(json!({ENTERPRISE_URN: "Sales"}))).expect(400, Some("invalidSyntax")),
        post("certificate value a number", "/Users", &user(json!({"x509Certificates": [{"value": 7}]})))
            .expect(400, Some("invalidValue")),
        post(".search count a string", "/Users/.search", &json!({"schemas":[SEARCH_URN],"count":"ten"}))
            .expect(400, Some("invalidValue")),
        post(".search filter a number", "/Users/.search", &json!({"schemas":[SEARCH_URN],"filter":5}))
            .expect(400, Some("invalidSyntax")),
        post(".search attributes a number", "/Users/.search", &json!({"schemas":[SEARCH_URN],"attributes":5}))
            .expect(400, Some("invalidSyntax")),
        post(".search startIndex a float", "/Users/.search", &json!({"schemas":[SEARCH_URN],"startIndex":1.5}))
            .expect(400, Some("invalidValue")),
        // Over the body limit.
        post("POST over the limit", "/Users", &big).expect(413, None),
        put("PUT over the limit", &u, &big).expect(413, None),
        patch("PATCH over the limit", &u, json!([{"op":"add","path":"title","value":"x".repeat(BODY_LIMIT)}]))
            .expect(413, None),
        post(".search over the limit", "/Users/.search", &json!({"filter": "x".repeat(BODY_LIMIT)})).expect(413, None),
        // Missing required attributes.
        post("user without anything", "/Users", &json!({})).expect(400, Some("invalidSyntax")),
        post("user without userName", "/Users", &json!({"schemas":[USER_URN],"displayName":"No Name"}))
            .expect(400, Some("invalidValue")),
        post("user with null userName", "/Users", &user(json!({"userName": null}))).expect(400, Some("invalidValue")),
        post("user with an empty userName", "/Users", &user(json!({"userName": ""}))).expect(400, Some("invalidValue")),
        post("user with a blank userName", "/Users", &user(json!({"userName": "  "}))).expect(400, Some("invalidValue")),
        post("group with an empty displayName", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":""}))
            .expect(400, Some("invalidValue")),
        patch("PATCH userName to empty", &u, json!([{"op":"replace","path":"userName","value":""}]))
            .expect(400, Some("invalidValue")),
        post("group without displayName", "/Groups", &json!({"schemas":[GROUP_URN],"members":[]}))
            .expect(400, Some("invalidValue")),
        put("PUT without userName", &u, &json!({"schemas":[USER_URN],"title":"x"})).expect(400, Some("invalidValue")),
        put("PUT group without displayName", &g, &json!({"schemas":[GROUP_URN]})).expect(400, Some("invalidValue")),
        patch("PATCH removes userName", &u, json!([{"op":"remove","path":"userName"}])).expect(400, Some("mutability")),
        patch("PATCH removes displayName of a group", &g, json!([{"op":"remove","path":"displayName"}]))
            .expect(400, Some("mutability")),
        // Unknown schema URNs and attributes.
        post("unknown schema URN", "/Users", &json!({"schemas":["urn:example:unknown"],"userName":"u@example.com"}))
            .expect(400, Some("invalidSyntax")),
        post("only the extension URN", "/Users", &json!({"schemas":[ENTERPRISE_URN],"userName":"u@example.com"}))
            .expect(400, Some("invalidSyntax")),
        post("group schema on /Users", "/Users", &json!({"schemas":[GROUP_URN],"userName":"u@example.com"}))
            .expect(400, Some("invalidSyntax")),
        post("user schema on /Groups", "/Groups", &json!({"schemas":[USER_URN],"displayName":"g"}))
            .expect(400, Some("invalidSyntax")),
        patch("PatchOp with a wrong schema", &u, json!([])).json(&json!({"schemas":["urn:example:patch"],"Operations":[{"op":"remove","path":"title"}]}))
            .expect(400, Some("invalidSyntax")),
        post(".search with a wrong schema", "/Users/.search", &json!({"schemas":[USER_URN]})).expect(400, Some("invalidSyntax")),
        // Invalid filters.
        get("filter without a value", users_where("userName eq")).expect(400, Some("invalidFilter")),
        get("filter with an unknown operator", users_where("userName xx \"a\"")).expect(400, Some("invalidFilter")),
        get("filter with an open parenthesis", users_where("(userName eq \"a\"")).expect(400, Some("invalidFilter")),
        get("filter on an unknown attribute", users_where("shoeSize eq 9")).expect(400, Some("invalidFilter")),
        get("filter ending in and", users_where("userName eq \"a\" and")).expect(400, Some("invalidFilter")),
        get("filter with an unquoted value", users_where("userName eq alice")).expect(400, Some("invalidFilter")),
        get("filter with an open bracket", users_where("emails[type eq \"work\"")).expect(400, Some("invalidFilter")),
        get("filter on a dateTime with a non-date", users_where("meta.created gt \"not a date\""))
            .expect(400, Some("invalidFilter")),
        get("filter with a number too large for a double", users_where("userName eq 1e400")).expect(400, Some("invalidFilter")),
        post("JSON nested 200 deep", "/Users", &json!(null))
            .text(format!("{}{}", "[".repeat(200), "]".repeat(200)))
            .expect(400, Some("invalidSyntax")),
        get("filter gt on a boolean", users_where("active gt true")).expect(400, Some("invalidFilter")),
        get("filter over the length limit", users_where(&format!("userName eq \"{}\"", "a".repeat(9000))))
            .expect(400, Some("invalidFilter")),
        get("filter nested too deep", users_where(&nested_parens)).expect(400, Some("invalidFilter")),
        get("filter with a raw control character", users_where("userName eq \"a\u{1}\"")).expect(400, Some("invalidFilter")),
        get("filter with a NUL escape", users_where("userName eq \"a\\u0000b\"")).expect(400, Some("invalidFilter")),
        get("filter on externalId with a NUL escape", users_where("externalId eq \"\\u0000\"")).expect(400, Some("invalidFilter")),
        get("group filter with a NUL escape", format!("/Groups?filter={}", enc("displayName sw \"\\u0000\"")))
            .expect(400, Some("invalidFilter")),
        get("filter with a raw NUL", "/Users?filter=userName%20eq%20%22a%00%22").expect(400, Some("invalidFilter")),
        post(".search with a bad filter", "/Users/.search", &json!({"filter":"userName eq"})).expect(400, Some("invalidFilter")),
        post(".search with a NUL filter", "/Groups/.search", &json!({"filter":"id eq \"\u{0}\""})).expect(400, Some("invalidValue")),
        post(".search with a NUL escape", "/Groups/.search", &json!({"filter":"id eq \"\\u0000\""})).expect(400, Some("invalidFilter")),
        // Query parameters.
        get("count not a number", "/Users?count=ten").expect(400, Some("invalidValue")),
        get("startIndex not a number", "/Users?startIndex=first").expect(400, Some("invalidValue")),
        get("count a decimal", "/Users?count=1.5").expect(400, Some("invalidValue")),
        get("count empty", "/Users?count=").expect(400, Some("invalidValue")),
        get("startIndex hex", "/Groups?startIndex=0x10").expect(400, Some("invalidValue")),
        get("sortOrder unknown", "/Users?sortOrder=sideways").expect(400, Some("invalidValue")),
        get("sortBy unknown", "/Users?sortBy=shoeSize").expect(400, Some("invalidValue")),
        get("sortBy malformed", "/Users?sortBy=emails%5B").expect(400, Some("invalidValue")),
        get("attributes malformed", "/Users?attributes=emails%5Btype").expect(400, Some("invalidPath")),
        get("excludedAttributes malformed", "/Groups?excludedAttributes=members.").expect(400, Some("invalidPath")),
        get("query string with bad percent-encoding", "/Users?filter=%FF%FE").expect(400, Some("invalidFilter")),
        get("sortBy with a NUL", "/Users?sortBy=userName%00").expect(400, Some("invalidValue")),
        get("attributes with a NUL", "/Users?attributes=%00").expect(400, Some("invalidPath")),
        // Duplicates: 409, ignoring case.
        post("duplicate userName", "/Users", &user(json!({"userName":"taken@example.com"}))).expect(409, Some("uniqueness")),
        post("duplicate userName in other case", "/Users", &user(json!({"userName":"TAKEN@Example.COM"})))
            .expect(409, Some("uniqueness")),
        put("PUT onto a taken userName", "/Users/{uid2}", &user(json!({"userName":"Taken@example.com"})))
            .expect(409, Some("uniqueness")),
        patch("PATCH onto a taken userName", "/Users/{uid2}", json!([{"op":"replace","path":"userName","value":"taken@EXAMPLE.com"}]))
            .expect(409, Some("uniqueness")),
        // Unknown routes and ids.
        get("unknown endpoint", "/Nope").expect(404, None),
        get("base path itself", "").expect(404, None),
        get("outside the base path", "/../../Users").expect(404, None),
        get("sub-path of a user", format!("{u}/extra")).expect(404, None),
        get("unknown user", format!("/Users/{NO_SUCH_ID}")).expect(404, None),
        get("unknown group", format!("/Groups/{NO_SUCH_ID}")).expect(404, None),
        put("PUT unknown user", format!("/Users/{NO_SUCH_ID}"), &user(json!({}))).expect(404, None),
        patch("PATCH unknown group", format!("/Groups/{NO_SUCH_ID}"), json!([{"op":"remove","path":"members"}])).expect(404, None),
        Case::new("DELETE unknown user", Method::DELETE, format!("/Users/{NO_SUCH_ID}")).expect(404, None),
        get("a user's id on /Groups", format!("/Groups/{uid}")).expect(404, None),
        get("an id with a NUL", "/Users/a%00b").expect(404, None),
        Case::new("DELETE an id with a NUL", Method::DELETE, "/Groups/%00").expect(404, None),
        patch("PATCH an id with a NUL", "/Users/%00", json!([{"op":"remove","path":"title"}])).expect(404, None),
        put("PUT an id with a NUL", "/Groups/x%00", &json!({"schemas":[GROUP_URN],"displayName":"g"})).expect(404, None),
        get("an id of 10,000 characters", format!("/Users/{}", "a".repeat(10_000))).expect(404, None),
        get("unknown schema", "/Schemas/urn:example:nope").expect(404, None),
        get("unknown resource type", "/ResourceTypes/Nope").expect(404, None),
        // Wrong methods: 405 with Allow.
        Case::new("DELETE /Users", Method::DELETE, "/Users").expect(405, None),
        put("PUT /Users", "/Users", &user(json!({}))).expect(405, None),
        patch("PATCH /Groups", "/Groups", json!([{"op":"remove","path":"members"}])).expect(405, None),
        get("GET /Users/.search", "/Users/.search").expect(405, None),
        post("POST to a user", &u, &user(json!({}))).expect(405, None),
        post("POST /ServiceProviderConfig", "/ServiceProviderConfig", &json!({})).expect(405, None),
        Case::new("DELETE /Schemas", Method::DELETE, "/Schemas").expect(405, None),
        post("POST /ResourceTypes", "/ResourceTypes", &json!({})).expect(405, None),
        // Content types.
        post("text/plain", "/Users", &user(json!({}))).header("content-type", "text/plain").expect(415, None),
        post("application/xml", "/Users", &user(json!({}))).header("content-type", "application/xml").expect(415, None),
        patch("form-encoded PATCH", &u, json!([{"op":"remove","path":"title"}]))
            .header("content-type", "application/x-www-form-urlencoded")
            .expect(415, None),
        put("text/html PUT", &u, &user(json!({}))).header("content-type", "text/html").expect(415, None),
        post("multipart .search", "/Users/.search", &json!({})).header("content-type", "multipart/form-data").expect(415, None),
        // If-Match.
        patch("If-Match garbage", &u, json!([{"op":"add","path":"title","value":"x"}])).header("if-match", "garbage").expect(412, None),
        patch("If-Match stale", &u, json!([{"op":"add","path":"title","value":"x"}])).header("if-match", "W/\"999\"").expect(412, None),
        put("If-Match older", &u, &user(json!({"userName":"taken@example.com"}))).header("if-match", "W/\"0\"").expect(412, None),
        Case::new("DELETE If-Match stale", Method::DELETE, &g).header("if-match", "\"7\"").expect(412, None),
        patch("If-Match not a number", &g, json!([{"op":"add","path":"externalId","value":"x"}]))
            .header("if-match", "W/\"one\"")
            .expect(412, None),
        // PATCH operations.
        patch("op unknown", &u, json!([{"op":"move","path":"title","value":"x"}])).expect(400, Some("invalidSyntax")),
        patch("op missing", &u, json!([{"path":"title","value":"x"}])).expect(400, Some("invalidSyntax")),
        patch("op a number", &u, json!([{"op":1,"path":"title","value":"x"}])).expect(400, Some("invalidSyntax")),
        patch("Operations empty", &u, json!([])).expect(400, Some("invalidSyntax")),
        patch("Operations an object", &u, json!({"op":"add"})).expect(400, Some("invalidSyntax")),
        patch("Operations missing", &u, json!(null)).json(&json!({"schemas":[PATCH_URN]})).expect(400, Some("invalidSyntax")),
        patch("an operation a string", &u, json!(["add"])).expect(400, Some("invalidSyntax")),
        patch("path a number", &u, json!([{"op":"add","path":7,"value":"x"}])).expect(400, Some("invalidPath")),
        // Unknown attributes and paths, and two values of one type, are accepted by default;
        // tests/tests/liberal.rs checks them, and their 400s under `strict_attributes`.
        patch("path unparsable", &u, json!([{"op":"add","path":"emails[type eq","value":"x"}])).expect(400, Some("invalidPath")),
        patch("path to id", &u, json!([{"op":"replace","path":"id","value":"x"}])).expect(400, Some("mutability")),
        patch("path to meta.created", &u, json!([{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"}]))
            .expect(400, Some("mutability")),
        patch("remove without a path", &u, json!([{"op":"remove"}])).expect(400, Some("noTarget")),
        patch("replace a filter that matches nothing", &u, json!([{"op":"replace","path":"emails[value co \"zzz\"].display","value":"x"}]))
            .expect(400, Some("noTarget")),
        patch("active maybe", &u, json!([{"op":"replace","path":"active","value":"maybe"}])).expect(400, Some("invalidValue")),
        patch("userName a number", &u, json!([{"op":"replace","path":"userName","value":5}])).expect(400, Some("invalidValue")),
        patch("add without a value", &u, json!([{"op":"add","path":"title"}])).expect(400, Some("invalidValue")),
        patch("no-path add with a non-object", &u, json!([{"op":"add","value":"x"}])).expect(400, Some("invalidValue")),
        patch("unknown member", &g, json!([{"op":"add","path":"members","value":[{"value": NO_SUCH_ID}]}]))
            .expect(400, Some("invalidValue")),
        patch("member a number", &g, json!([{"op":"add","path":"members","value":[5]}])).expect(400, Some("invalidValue")),
        patch("member id with a NUL", &g, json!([{"op":"add","path":"members","value":[{"value":"a\u{0}b"}]}]))
            .expect(400, Some("invalidValue")),
        patch("remove a member filter with a NUL", &g, json!([{"op":"remove","path":"members[value eq \"\\u0000\"]"}]))
            .expect(400, Some("invalidPath")),
        patch("remove a NUL member by value", &g, json!([{"op":"remove","path":"members","value":[{"value":"\u{0}"}]}]))
            .expect(400, Some("invalidValue")),
        post("group member that does not exist", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"g","members":[{"value":NO_SUCH_ID}]}))
            .expect(400, Some("invalidValue")),
        // NUL characters and values too long for an index.
        post("userName with a NUL", "/Users", &user(json!({"userName":"a\u{0}b"}))).expect(400, Some("invalidValue")),
        post("externalId with a NUL", "/Users", &user(json!({"externalId":"\u{0}"}))).expect(400, Some("invalidValue")),
        post("title with a NUL", "/Users", &user(json!({"title":"x\u{0}"}))).expect(400, Some("invalidValue")),
        post("attribute name with a NUL", "/Users", &user(json!({"title\u{0}":"x"}))).expect(400, Some("invalidValue")),
        post("group displayName with a NUL", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"\u{0}"}))
            .expect(400, Some("invalidValue")),
        patch("PATCH displayName with a NUL", &u, json!([{"op":"replace","path":"displayName","value":"\u{0}"}]))
            .expect(400, Some("invalidValue")),
        put("PUT userName with a NUL", &u, &user(json!({"userName":"taken\u{0}@example.com"}))).expect(400, Some("invalidValue")),
        post("userName of 1025 bytes", "/Users", &user(json!({"userName": long}))).expect(400, Some("invalidValue")),
        post("externalId of 1025 bytes", "/Users", &user(json!({"externalId": long}))).expect(400, Some("invalidValue")),
        post("displayName of 1025 bytes", "/Users", &user(json!({"displayName": long}))).expect(400, Some("invalidValue")),
        post("group displayName of 1025 bytes", "/Groups", &json!({"schemas":[GROUP_URN],"displayName": long}))
            .expect(400, Some("invalidValue")),
        post("group externalId of 1025 bytes", "/Groups", &json!({"schemas":[GROUP_URN],"displayName":"g","externalId": long}))
            .expect(400, Some("invalidValue")),
        put("PUT a userName of 1025 bytes", &u, &user(json!({"userName": long}))).expect(400, Some("invalidValue")),
        patch("PATCH a displayName of 1025 bytes", &g, json!([{"op":"replace","path":"displayName","value": long}]))
            .expect(400, Some("invalidValue")),
        patch("PATCH an externalId of 1025 bytes without a path", &u, json!([{"op":"replace","value":{"externalId": long}}]))
            .expect(400, Some("invalidValue")),
        post("userName of 400 four-byte characters", "/Users", &user(json!({"userName": "😀".repeat(400)})))
            .expect(400, Some("invalidValue")),
    ];
    // Authentication: every failure is one 401 with WWW-Authenticate, before anything else.
    let bad_auth: Vec<(&str, Auth)> = vec![
        ("no Authorization", Auth::Missing),
        ("Basic credentials", Auth::Header("Basic dXNlcjpwYXNz".into())),
        ("Bearer without a token", Auth::Header("Bearer".into())),
        ("Bearer garbage", Auth::Header("Bearer garbage".into())),
        ("unknown key", Auth::Header(format!("Bearer {}", f.unknown))),
        ("wrong secret", Auth::Header(format!("Bearer {}", f.wrong_secret))),
        ("revoked key", Auth::Header(format!("Bearer {}", f.revoked))),
        ("token without the scheme", Auth::Header(f.unknown.clone())),
    ];
    for (what, auth) in bad_auth {
        c.push(get(&format!("{what}: GET /Users"), "/Users").auth(auth.clone()).expect(401, None));
        c.push(post(&format!("{what}: POST /Users"), "/Users", &user(json!({}))).auth(auth.clone()).expect(401, None));
        c.push(
            patch(&format!("{what}: PATCH a user"), &u, json!([{"op":"add","path":"title","value":"x"}]))
                .auth(auth.clone())
                .expect(401, None),
        );
        c.push(Case::new(format!("{what}: DELETE a group"), Method::DELETE, &g).auth(auth.clone()).expect(401, None));
        c.push(
            get(&format!("{what}: GET /ServiceProviderConfig"), "/ServiceProviderConfig").auth(auth).expect(401, None),
        );
    }
    c.push(
        post("bad token and a bad body: 401 first", "/Users", &json!(null))
            .text("{")
            .auth(Auth::Missing)
            .expect(401, None),
    );
    c
}

async fn every_bad_input_gets_its_scim_error_and_never_a_500(app: TestApp) {
    let token = app.token("bad-input");
    let uid = app.create_user(&token, "taken@example.com").await["id"].as_str().unwrap().to_owned();
    let uid2 = app.create_user(&token, "second@example.com").await["id"].as_str().unwrap().to_owned();
    let gid = app.create_group(&token, "Group", &[&uid]).await["id"].as_str().unwrap().to_owned();
    let revoked = app.token("bad-input");
    let key_id = revoked.trim_start_matches("scimgw_").split('_').next().unwrap();
    assert!(app.store().revoke_api_key(key_id).unwrap());
    let (prefix, secret) = token.rsplit_once('_').unwrap();
    let wrong_secret = format!("{prefix}_{}", secret.chars().rev().collect::<String>());
    let unknown = format!("scimgw_abcdefghijkm_{}", "0".repeat(64));
    let fixture = Fixture { uid: uid.clone(), gid, revoked, unknown, wrong_secret };
    let cases = cases(&fixture);
    assert!(cases.len() >= 80, "{} cases", cases.len());

    let mut failures = Vec::new();
    for case in &cases {
        let path = case.path.replace("{uid2}", &uid2);
        let mut headers: Vec<(&str, String)> = Vec::new();
        match &case.auth {
            Auth::Valid => headers.push(("authorization", format!("Bearer {token}"))),
            Auth::Missing => {}
            Auth::Header(h) => headers.push(("authorization", h.clone())),
        }
        if case.body.is_some() && !case.headers.iter().any(|(n, _)| *n == "content-type") {
            headers.push(("content-type", "application/scim+json".into()));
        }
        headers.extend(case.headers.iter().cloned());
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r = app.request(case.method.clone(), &path, &headers, case.body.as_deref()).await;
        let name = &case.name;
        if r.status.as_u16() >= 500 {
            failures.push(format!("{name}: got {} (never a 5xx): {}", r.status, r.text));
            continue;
        }
        let is_error = r.body["schemas"].as_array().is_some_and(|s| s.iter().any(|u| u == scimgw_e2e::ERROR_URN));
        let status_ok = r.body["status"] == Value::String(r.status.as_u16().to_string());
        if r.status.as_u16() != case.status || r.scim_type() != case.scim_type || !is_error || !status_ok {
            failures.push(format!(
                "{name}: expected {} {:?}, got {} {:?}: {}",
                case.status,
                case.scim_type,
                r.status.as_u16(),
                r.scim_type(),
                r.text.chars().take(300).collect::<String>()
            ));
            continue;
        }
        if case.status == 401 && !r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")) {
            failures.push(format!("{name}: 401 without WWW-Authenticate: Bearer"));
        }
        if case.status == 405 && r.header("allow").is_none() {
            failures.push(format!("{name}: 405 without Allow"));
        }
        if !r.header("content-type").is_some_and(|c| c.starts_with("application/scim+json")) {
            failures.push(format!("{name}: content type {:?}", r.header("content-type")));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Nothing the table sent changed the fixtures.
    let r = app.get(&token, &format!("/Users/{uid}")).await;
    // 2: joining the fixture group changed its `groups`, so its version.
    assert_eq!(r.body["meta"]["version"], "W/\"2\"", "{}", r.text);
    assert_eq!(r.body["userName"], "taken@example.com");
    let r = app.get(&token, &format!("/Users/{uid2}")).await;
    assert_eq!(r.body["meta"]["version"], "W/\"1\"", "{}", r.text);
    let r = app.get(&token, "/Users").await;
    assert_eq!(r.total(), 2, "no bad input created a user: {}", r.text);
    let r = app.get(&token, "/Groups").await;
    assert_eq!(r.total(), 1, "no bad input created a group: {}", r.text);
}
// The table sends thirty bad tokens in a row: the failed-auth throttle (tests/tests/limits.rs)
// would answer the later ones 429, so it is off here.
both_backends!(every_bad_input_gets_its_scim_error_and_never_a_500, |c: &mut scimgw_e2e::Config| {
    c.max_body_bytes = BODY_LIMIT;
    c.auth.failures_per_minute = 0;
});

async fn a_chunked_body_over_the_limit_is_413(app: TestApp) {
    // No Content-Length to check up front: the limit holds while reading.
    let token = app.token("bad-input");
    let chunk = "x".repeat(1000);
    let mut req = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let body = format!("{{\"userName\":\"{}\"}}", chunk.repeat(6));
    for piece in body.as_bytes().chunks(1000) {
        req.push_str(&format!("{:x}\r\n{}\r\n", piece.len(), String::from_utf8_lossy(piece)));
    }
    req.push_str("0\r\n\r\n");
    let r = app.raw(req.as_bytes()).await;
    assert_eq!(r.status, 413, "{}\n{}", r.head, r.body);
    let body: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("a JSON body: {}", r.body));
    assert_eq!(body["status"], "413");
}
both_backends!(a_chunked_body_over_the_limit_is_413, |c: &mut scimgw_e2e::Config| c.max_body_bytes = BODY_LIMIT);

async fn more_than_a_thousand_patch_operations_are_refused(app: TestApp) {
    let token = app.token("bad-input");
    let id = app.create_user(&token, "ops@example.com").await["id"].as_str().unwrap().to_owned();
    let ops = vec![json!({"op":"remove","path":"title"}); 1001];
    let r = app.patch(&token, &format!("/Users/{id}"), &json!({"schemas":[PATCH_URN],"Operations": ops})).await;
    r.assert_error(400, Some("invalidValue"), "1001 operations");
    let ops = vec![json!({"op":"remove","path":"title"}); 1000];
    let r = app.patch(&token, &format!("/Users/{id}"), &json!({"schemas":[PATCH_URN],"Operations": ops})).await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "1000 operations are fine: {}", r.text);
}
both_backends!(more_than_a_thousand_patch_operations_are_refused);
