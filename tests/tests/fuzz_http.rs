//! Fuzzing through the whole request path (issue 8): the gateway's actix application in process
//! (routing, authentication, body reading, validation, filters, PATCH, the store on SQLite or
//! PostgreSQL, the error mapping), fed with Entra's request shapes mutated — bytes flipped,
//! inserted, deleted and duplicated, JSON values replaced with other types, deep nesting and NUL,
//! filter and PATCH tokens from the libFuzzer dictionaries spliced into query strings and bodies,
//! methods, content types, ETags and tokens swapped.
//!
//! Every answer must be a 2xx or a SCIM error (the Error schema, `status` equal to the HTTP code, a
//! `detail`), never a 500 or a panic; and the store must hold exactly the users the 201s created
//! and the 204s did not delete — no half-written data.
//!
//! This is a mutation fuzzer without coverage feedback (cargo-fuzz needs a nightly toolchain these
//! machines do not install). Bounded by time: `SCIMGW_FUZZ_SECS` (default 20 s per engine in
//! `cargo test`), seeded by `SCIMGW_FUZZ_SEED` (printed on every run, to replay a failure).

#![cfg(test)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::web;
use scimgw_gateway::{AppState, Config, issue_key};
use scimgw_store::Backend;
use scimgw_store::testing::TestDb;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The libFuzzer dictionaries' tokens.
fn dictionary() -> Vec<Vec<u8>> {
    let text = [include_str!("../../fuzz/filter.dict"), include_str!("../../fuzz/patch.dict")].join("\n");
    let mut tokens: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.strip_suffix('"')))
        .map(|t| t.replace("\\\"", "\"").replace("\\\\", "\\").into_bytes())
        .collect();
    for extra in [
        "%",
        "%00",
        "%ZZ",
        "\\u0000",
        "&",
        "=",
        "?",
        "/",
        "..",
        "{",
        "}",
        ",",
        ":",
        "null",
        "1e999",
        "-1",
        "99999999999999999999",
    ] {
        tokens.push(extra.as_bytes().to_vec());
    }
    tokens
}

/// xorshift64*: reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone)]
struct Case {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
}

fn entra_user(n: u64) -> Value {
    json!({
        "schemas": [USER, ENTERPRISE],
        "externalId": format!("ext-{n}"),
        "userName": format!("Test_User_{n}@contoso.com"),
        "active": true,
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": format!("Test_User_{n}@contoso.com")}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "addresses": [{"type": "work", "country": "US", "postalCode": "98052"}],
        "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
        ENTERPRISE: {"department": "Sales", "employeeNumber": "42", "manager": {"value": "m-1"}}
    })
}

/// Entra's request shapes (ENTRA.md), against the ids made in the set-up, and hostile ones
/// (RELIABILITY.md): multi-valued attributes at and beyond their limit, and every PATCH shape
/// that can leave a member in a group, naming nothing or `foreign` (another tenant's user); they
/// work on the group `hostile` and its member `member`, which the run never deletes.
fn seeds(user: &str, group: &str, (member, hostile, foreign): (&str, &str, &str), n: u64) -> Vec<Case> {
    let q = |path: &str| Case { method: Method::GET, path: format!("/scim/v2{path}"), body: None, headers: vec![] };
    let with = |method: Method, path: String, body: Value| Case {
        method,
        path: format!("/scim/v2{path}"),
        body: Some(body.to_string().into_bytes()),
        headers: vec![("content-type", "application/scim+json".into())],
    };
    let patch = |path: String, ops: Value| with(Method::PATCH, path, json!({"schemas": [PATCH], "Operations": ops}));
    vec![
        q("/Users?filter=userName+eq+%22Test_User_1%40contoso.com%22"),
        q("/Users?filter=externalId%20eq%20%22ext-1%22&attributes=userName,emails"),
        q("/Users?filter=emails%5Btype%20eq%20%22work%22%20and%20value%20co%20%22contoso%22%5D&count=5&startIndex=2"),
        q("/Groups?filter=displayName+eq+%22Group%22&excludedAttributes=members"),
        q(&format!("/Users/{user}?aadOptscim062020")),
        q(&format!("/Groups/{group}")),
        q("/Users?startIndex=1&count=100&sortBy=userName&sortOrder=descending"),
        q("/ServiceProviderConfig"),
        q("/Schemas"),
        q("/ResourceTypes/User"),
        with(Method::POST, "/Users".into(), entra_user(n)),
        with(
            Method::POST,
            "/Groups".into(),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("G{n}"), "members": [{"value": user}]}),
        ),
        with(
            Method::POST,
            "/Users/.search".into(),
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"Test\"", "count": 3}),
        ),
        with(Method::PUT, format!("/Users/{user}"), entra_user(1)),
        patch(format!("/Users/{user}"), json!([{"op": "Replace", "path": "active", "value": "False"}])),
        patch(
            format!("/Users/{user}"),
            json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "w@contoso.com"}]),
        ),
        patch(
            format!("/Users/{user}"),
            json!([{"op": "replace", "value": {"displayName": "x", "name.givenName": "g", format!("{ENTERPRISE}:department"): "d"}}]),
        ),
        patch(format!("/Users/{user}"), json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}])),
        patch(format!("/Groups/{group}"), json!([{"op": "Add", "path": "members", "value": [{"value": user}]}])),
        patch(format!("/Groups/{group}"), json!([{"op": "Remove", "path": format!("members[value eq \"{user}\"]")}])),
        patch(format!("/Groups/{group}"), json!([{"op": "Replace", "path": "displayName", "value": "Renamed"}])),
        Case { method: Method::DELETE, path: format!("/scim/v2/Users/{user}"), body: None, headers: vec![] },
        // Many values: one beyond the limit (1,000), and enough to take the hashed path. Built
        // once: serialising them for every execution would slow the run down tenfold.
        Case { body: Some(heavy()[0].clone()), ..with(Method::POST, "/Users".into(), Value::Null) },
        Case { body: Some(heavy()[1].clone()), ..with(Method::PATCH, format!("/Users/{user}"), Value::Null) },
        Case { body: Some(heavy()[2].clone()), ..with(Method::PATCH, format!("/Users/{user}"), Value::Null) },
        // Members through every shape, naming another tenant's user or nothing.
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Add", "path": format!("members[value eq \"{foreign}\"]"), "value": {"value": foreign}}]),
        ),
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Replace", "path": format!("members[value eq \"{member}\"].value"), "value": foreign}]),
        ),
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Replace", "path": format!("members[value eq \"{member}\"]"), "value": {"value": "ghost"}}]),
        ),
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Add", "value": {format!("members[value eq \"{foreign}\"]"): {"type": "User"}}}]),
        ),
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Remove", "path": "members[value sw \"zz\"]"}, {"op": "Add", "path": "members", "value": [{"value": member}, {"value": foreign}]}]),
        ),
        patch(
            format!("/Groups/{hostile}"),
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": member}]}]),
        ),
    ]
}

/// The bodies of the many-valued seeds: a POST of 1,001 emails, a PATCH adding 40 emails, one
/// adding 1,001 roles.
fn heavy() -> &'static [Vec<u8>; 3] {
    static HEAVY: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
    HEAVY.get_or_init(|| {
        let emails = |count: usize| -> Vec<Value> {
            (0..count).map(|i| json!({"type": "work", "value": format!("m{i}@contoso.com")})).collect()
        };
        let mut post = entra_user(u64::MAX - 1);
        post["emails"] = json!(emails(1001));
        let add = |path: &str, value: Vec<Value>| {
            json!({"schemas": [PATCH], "Operations": [{"op": "Add", "path": path, "value": value}]})
                .to_string()
                .into_bytes()
        };
        [post.to_string().into_bytes(), add("emails", emails(40)), add("roles", vec![json!({"value": "r"}); 1001])]
    })
}

fn mutate_bytes(rng: &mut Rng, dict: &[Vec<u8>], data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    match rng.below(6) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 => {
            let token = &dict[rng.below(dict.len())];
            data.splice(at..at, token.iter().copied());
        }
        2 if !data.is_empty() => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at.min(end)..end);
        }
        3 if at < data.len() => {
            let end = (at + 1 + rng.below(32)).min(data.len());
            let copy = data[at..end].to_vec();
            data.splice(end..end, copy);
        }
        4 => data.truncate(at),
        _ => {
            let i = rng.below(data.len() + 1);
            let bytes = b"\"'\\{[(%\0\xff";
            data.insert(i.min(data.len()), bytes[rng.below(bytes.len())]);
        }
    }
}

fn random_value(rng: &mut Rng, dict: &[Vec<u8>]) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(f64::from(rng.below(1000) as u32) / 7.0),
        4 => json!(String::from_utf8_lossy(&dict[rng.below(dict.len())])),
        5 => json!("x".repeat(rng.below(3000))),
        6 => {
            let depth = 1 + rng.below(200);
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!([v]);
            }
            v
        }
        7 => json!({"value": "a\u{0}b", "$ref": "../Users/x", "display": {"nested": [1, {}]}}),
        _ => json!([]),
    }
}

/// Replaces, removes or adds one node somewhere in `v`.
fn mutate_json(rng: &mut Rng, dict: &[Vec<u8>], v: &mut Value, depth: usize) {
    match v {
        Value::Object(map) if !map.is_empty() && depth < 8 && rng.chance(70) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys[rng.below(keys.len())].clone();
            match rng.below(5) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    let value = random_value(rng, dict);
                    map.insert(format!("{key}{}", String::from_utf8_lossy(&dict[rng.below(dict.len())])), value);
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate_json(rng, dict, child, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && depth < 8 && rng.chance(70) => {
            let i = rng.below(items.len());
            if rng.chance(20) {
                let copy = items[i].clone();
                items.push(copy);
            } else {
                mutate_json(rng, dict, &mut items[i], depth + 1);
            }
        }
        Value::String(s) if rng.chance(60) => {
            let mut bytes = std::mem::take(s).into_bytes();
            mutate_bytes(rng, dict, &mut bytes);
            *s = String::from_utf8_lossy(&bytes).into_owned();
        }
        other => *other = random_value(rng, dict),
    }
}

fn mutate(rng: &mut Rng, dict: &[Vec<u8>], mut case: Case) -> Case {
    for _ in 0..1 + rng.below(3) {
        match rng.below(10) {
            0..=3 => {
                if let Some(body) = &mut case.body {
                    match serde_json::from_slice::<Value>(body) {
                        Ok(mut v) if rng.chance(60) => {
                            mutate_json(rng, dict, &mut v, 0);
                            *body = v.to_string().into_bytes();
                        }
                        _ => mutate_bytes(rng, dict, body),
                    }
                }
            }
            4..=6 => {
                // The path and query, past the base path.
                let mut bytes = case.path.clone().into_bytes();
                let fixed = "/scim/v2".len();
                let mut tail = bytes.split_off(fixed.min(bytes.len()));
                mutate_bytes(rng, dict, &mut tail);
                bytes.extend(tail);
                // Only what an HTTP request line can carry: the HTTP parser refuses the rest
                // before the application sees it.
                let raw = String::from_utf8_lossy(&bytes).into_owned();
                case.path = if actix_web::http::Uri::try_from(raw.as_str()).is_ok() {
                    raw
                } else {
                    raw.bytes()
                        .map(|b| match b {
                            b'A'..=b'Z'
                            | b'a'..=b'z'
                            | b'0'..=b'9'
                            | b'-'
                            | b'.'
                            | b'_'
                            | b'~'
                            | b'/'
                            | b'?'
                            | b'&'
                            | b'='
                            | b'%' => char::from(b).to_string(),
                            other => format!("%{other:02X}"),
                        })
                        .collect()
                };
            }
            7 => {
                case.method =
                    [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE][rng.below(5)].clone();
            }
            8 => {
                let values = ["application/json", "text/plain", "application/scim+json; charset=utf-16", "", "*/*"];
                case.headers.push(("content-type", values[rng.below(values.len())].to_owned()));
            }
            _ => {
                let values = ["W/\"1\"", "\"x\"", "*", "W/\"99999999999999999999\"", ""];
                case.headers.push(("if-match", values[rng.below(values.len())].to_owned()));
            }
        }
    }
    case
}

async fn fuzz(backend: Backend) {
    let Some(db) = TestDb::on(backend) else { return };
    let secs = std::env::var("SCIMGW_FUZZ_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("SCIMGW_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("{backend:?}: fuzzing the request path for {secs} s, SCIMGW_FUZZ_SEED={seed}");
    let store = db.store().clone();
    let tenant = store.create_tenant("fuzz").unwrap();
    let token = issue_key(&store, &tenant, None).unwrap().token;
    let config = Config { store: db.config().clone(), ..Config::default() };
    let state = web::Data::new(AppState::new(config, store.clone(), scimgw_delivery::schema_registry()));
    let app = init_service(scimgw_gateway::app(state)).await;
    let dict = dictionary();
    let mut rng = Rng(seed.max(1));

    let send = |case: &Case, auth: Option<String>| {
        let mut req = TestRequest::default().method(case.method.clone()).uri(&case.path);
        if let Some(a) = auth {
            req = req.insert_header(("authorization", a));
        }
        for (k, v) in &case.headers {
            req = req.insert_header((*k, v.as_str()));
        }
        if let Some(body) = &case.body {
            req = req.set_payload(body.clone());
        }
        req.to_request()
    };
    // The set-up: a user and a group the seeds name.
    let mut users: HashSet<String> = HashSet::new();
    let make = |v: Value, path: &str| Case {
        method: Method::POST,
        path: format!("/scim/v2{path}"),
        body: Some(v.to_string().into_bytes()),
        headers: vec![("content-type", "application/scim+json".into())],
    };
    let user_case = make(entra_user(0), "/Users");
    let res = call_service(&app, send(&user_case, Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let user: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let user_id = user["id"].as_str().unwrap().to_owned();
    users.insert(user_id.clone());
    let res = call_service(&app, send(&make(entra_user(u64::MAX), "/Users"), Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let member: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let member_id = member["id"].as_str().unwrap().to_owned();
    users.insert(member_id.clone());
    let hostile_case = make(
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Hostile", "members": [{"value": member_id}]}),
        "/Groups",
    );
    let res = call_service(&app, send(&hostile_case, Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hostile: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let hostile_id = hostile["id"].as_str().unwrap().to_owned();
    let group_case =
        make(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Group"}), "/Groups");
    let res = call_service(&app, send(&group_case, Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let group: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();
    // Another tenant's user, which the hostile seeds try to make a member.
    let other = store.create_tenant("fuzz-other").unwrap();
    let other_token = issue_key(&store, &other, None).unwrap().token;
    let res = call_service(&app, send(&make(entra_user(0), "/Users"), Some(format!("Bearer {other_token}")))).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let foreign: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let foreign_id = foreign["id"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut executions, mut by_class) = (0u64, [0u64; 6]);
    while Instant::now() < deadline {
        executions += 1;
        let seeds = seeds(&user_id, &group_id, (&member_id, &hostile_id, &foreign_id), executions);
        let pick = rng.below(seeds.len());
        let case = mutate(&mut rng, &dict, seeds[pick].clone());
        if case.method == Method::DELETE && (case.path.contains(&hostile_id) || case.path.contains(&member_id)) {
            // Kept for the members check at the end: not sent, not counted.
            executions -= 1;
            continue;
        }
        let auth = match rng.below(20) {
            0 => None,
            1 => Some(format!("Bearer {}0", &token[..token.len() - 1])),
            2 => Some(format!("Basic {token}")),
            _ => Some(format!("Bearer {token}")),
        };
        let res = call_service(&app, send(&case, auth)).await;
        let status = res.status().as_u16();
        by_class[usize::from(status / 100).min(5)] += 1;
        let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_body(res).await;
        let what = || {
            format!(
                "{} {} → {status} (seed {seed}, execution {executions}); body sent: {}; answer: {}",
                case.method,
                case.path,
                case.body.as_deref().map(String::from_utf8_lossy).unwrap_or_default(),
                String::from_utf8_lossy(&body)
            )
        };
        assert!(status < 500, "{}", what());
        if status >= 400 {
            let err: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {}", what()));
            assert_eq!(err["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error", "{}", what());
            assert_eq!(err["status"], status.to_string(), "{}", what());
            assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", what());
        }
        // What was created or deleted, told by the answer and the id rather than by the path's
        // spelling: endpoint names in any case and extra slashes reach the same endpoint.
        if case.method == Method::POST && status == 201 {
            let location = location.unwrap_or_else(|| panic!("a 201 without Location: {}", what()));
            if let Some((_, id)) = location.rsplit_once("/Users/") {
                users.insert(id.to_owned());
            }
        }
        if case.method == Method::DELETE && status == 204 {
            let path = case.path.split('?').next().unwrap_or("");
            if let Some(id) = path.trim_end_matches('/').rsplit('/').next() {
                users.remove(id);
            }
        }
    }
    // No half-written data: the store holds exactly the users acknowledged and not deleted.
    let count = Case { method: Method::GET, path: "/scim/v2/Users?count=0".into(), body: None, headers: vec![] };
    let res = call_service(&app, send(&count, Some(format!("Bearer {token}")))).await;
    let total: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    assert_eq!(total["totalResults"], users.len(), "users in the store vs acknowledged (seed {seed})");
    // No group names a member that is not a user or group of the tenant, whatever PATCH put it there.
    let groups = Case {
        method: Method::GET,
        path: "/scim/v2/Groups?count=1000&attributes=members".into(),
        body: None,
        headers: vec![],
    };
    let res = call_service(&app, send(&groups, Some(format!("Bearer {token}")))).await;
    let list: Value = serde_json::from_slice(&read_body(res).await).unwrap();
    let mut members = 0;
    for g in list["Resources"].as_array().unwrap() {
        for m in g["members"].as_array().map(Vec::as_slice).unwrap_or_default() {
            members += 1;
            let endpoint = if m["type"] == "Group" { "Groups" } else { "Users" };
            let get = Case {
                method: Method::GET,
                path: format!("/scim/v2/{endpoint}/{}", m["value"].as_str().unwrap()),
                body: None,
                headers: vec![],
            };
            let res = call_service(&app, send(&get, Some(format!("Bearer {token}")))).await;
            assert_eq!(
                res.status(),
                StatusCode::OK,
                "group {} has a member that names nothing: {m} (seed {seed})",
                g["id"]
            );
        }
    }
    eprintln!(
        "{backend:?}: {executions} executions in {secs} s (seed {seed}): {} 2xx, {} 4xx, 0 5xx; {} users stored = acknowledged; {members} group members, each a user or group of the tenant",
        by_class[2],
        by_class[4],
        users.len()
    );
}

#[actix_web::test]
async fn the_whole_request_path_survives_mutated_entra_requests_sqlite() {
    fuzz(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_whole_request_path_survives_mutated_entra_requests_postgres() {
    fuzz(Backend::Postgres).await;
}
