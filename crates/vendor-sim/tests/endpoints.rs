//! Every SCIM endpoint of the generic profile, over real HTTP.

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use common::{Client, ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, patch_op, user};
use reqwest::{Method, StatusCode};
use serde_json::json;
use vendor_sim::{Sim, SimConfig};

fn start() -> (Sim, Client) {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

#[tokio::test]
async fn create_returns_201_with_id_meta_and_location_and_stores_the_user() {
    let (sim, c) = start();
    let r = c.post("/Users", &user("alice")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.body["userName"], "alice");
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    let location = format!("{}/Users/{id}", sim.base_url());
    assert_eq!(r.body["meta"]["location"], location.as_str());
    assert_eq!(r.header("location"), Some(location.as_str()));
    assert_eq!(sim.users(), vec![r.body.clone()]);
    assert_eq!(sim.user(id), Some(r.body.clone()));
    assert_eq!(sim.user_by_username("ALICE").unwrap()["id"], id);
}

#[actix_web::test]
async fn works_from_an_actix_test_runtime_too() {
    let (_sim, c) = start();
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
    assert_eq!(c.get("/Users").await.body["totalResults"], 1);
}

#[tokio::test]
async fn duplicate_user_name_is_409_uniqueness_ignoring_case() {
    let (sim, c) = start();
    c.post("/Users", &user("alice")).await;
    let r = c.post("/Users", &user("ALICE")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["scimType"], "uniqueness");
    assert_eq!(r.body["status"], "409");
    assert_eq!(r.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    assert_eq!(sim.users().len(), 1);
}

#[tokio::test]
async fn invalid_bodies_are_scim_400s_and_store_nothing() {
    let (sim, c) = start();
    let r = c.post("/Users", &json!({"schemas": [USER_SCHEMA], "name": {"givenName": "x"}})).await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")));
    let r = c.post("/Users", &json!({"schemas": [USER_SCHEMA], "userName": "a", "shoeSize": 42})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let resp = c
        .http
        .post(format!("{}/Users", c.base))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = c
        .http
        .post(format!("{}/Users", c.base))
        .bearer_auth(&c.token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(sim.users().is_empty());
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_a_bearer_challenge() {
    let (sim, c) = start();
    let resp = c.http.get(format!("{}/Users", sim.base_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let resp = c.http.get(format!("{}/Users", sim.base_url())).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|r| !r.authenticated && r.status == Some(401)));
}

#[tokio::test]
async fn the_token_is_configurable() {
    let sim = Sim::start(SimConfig { token: "XYZ".into(), ..SimConfig::default() }).unwrap();
    assert_eq!(sim.token(), "XYZ");
    let c = Client::new(&sim);
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn get_by_id_returns_the_user_and_404_when_missing() {
    let (_sim, c) = start();
    let id = c.post("/Users", &user("alice")).await.body["id"].as_str().unwrap().to_owned();
    let r = c.get(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["userName"], "alice");
    let r = c.get(&format!("/Users/{id}?attributes=userName")).await;
    assert_eq!(r.body["userName"], "alice");
    assert!(r.body.get("emails").is_none());
    let r = c.get("/Users/no-such-id").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["status"], "404");
}

#[tokio::test]
async fn list_filters_with_the_core_evaluator_and_pages() {
    let (_sim, c) = start();
    for name in ["alice", "bob", "carol", "dave"] {
        c.post("/Users", &user(name)).await;
    }
    let r = c.get("/Users?filter=userName%20eq%20%22BOB%22").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["userName"], "bob");
    let r = c.get("/Users?filter=userName%20eq%20%22nobody%22").await;
    assert_eq!((r.body["totalResults"].clone(), r.body["Resources"].clone()), (json!(0), json!([])));
    let r = c.get("/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20sw%20%22c%22").await;
    assert_eq!(r.body["Resources"][0]["userName"], "carol");
    let r = c.get("/Users?startIndex=2&count=2").await;
    assert_eq!(r.body["totalResults"], 4);
    assert_eq!(r.body["itemsPerPage"], 2);
    assert_eq!(r.body["startIndex"], 2);
    let names: Vec<&str> =
        r.body["Resources"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
    assert_eq!(names, ["bob", "carol"]);
    let r = c.get("/Users?count=0").await;
    assert_eq!((r.body["totalResults"].clone(), r.body["Resources"].clone()), (json!(4), json!([])));
    let r = c.get("/Users?filter=userName%20eq").await;
    assert_eq!((r.status, r.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidFilter")));
    let r = c.get("/Users?filter=shoeSize%20eq%201").await;
    assert_eq!(r.body["scimType"], "invalidFilter");
}

#[tokio::test]
async fn the_aad_flag_and_other_unknown_query_parameters_are_ignored() {
    let (sim, c) = start();
    c.post("/Users?aadOptscim062020", &user("alice")).await;
    let r = c.get("/Users?aadOptscim062020&filter=userName%20eq%20%22alice%22").await;
    assert_eq!(r.body["totalResults"], 1);
    // A Tenant URL ending in `/?aadOptscim062020` with the endpoint appended to its path.
    let r = c.get("/Users/?aadOptscim062020").await;
    assert_eq!(r.status, StatusCode::OK);
    let log = sim.requests();
    assert_eq!(log[0].query, "aadOptscim062020");
    assert_eq!(log[0].query_param("aadOptscim062020").as_deref(), Some(""));
    assert_eq!(log[1].query_param("filter").as_deref(), Some("userName eq \"alice\""));
}

#[tokio::test]
async fn search_posts_a_search_request() {
    let (_sim, c) = start();
    c.post("/Users", &user("alice")).await;
    c.post("/Users", &user("bob")).await;
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"a\"", "attributes": ["userName"]});
    let r = c.post("/Users/.search", &body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("emails").is_none());
}

#[tokio::test]
async fn put_replaces_every_attribute_and_keeps_id_and_created() {
    let (sim, c) = start();
    let created = c.post("/Users", &user("alice")).await.body;
    let id = created["id"].as_str().unwrap();
    let replacement = json!({"schemas": [USER_SCHEMA, ENTERPRISE], "userName": "alice", "active": false,
        ENTERPRISE: {"department": "R&D"}});
    let r = c.put(&format!("/Users/{id}"), &replacement).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["active"], false);
    assert!(r.body.get("emails").is_none(), "PUT drops what the body leaves out");
    assert_eq!(r.body[ENTERPRISE]["department"], "R&D");
    assert_eq!(r.body["meta"]["created"], created["meta"]["created"]);
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    assert_eq!(sim.user(id).unwrap(), r.body);
    c.post("/Users", &user("bob")).await;
    let r = c.put(&format!("/Users/{id}"), &user("Bob")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(c.put("/Users/missing", &user("x")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_takes_both_entra_dialects() {
    let (sim, c) = start();
    let id = c.post("/Users", &user("alice")).await.body["id"].as_str().unwrap().to_owned();
    let ops = patch_op(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "replace", "value": {"name.givenName": "Augusta", (format!("{ENTERPRISE}:employeeNumber")): "42"}},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "augusta@example.com"}
    ]));
    let r = c.patch(&format!("/Users/{id}"), &ops).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["name"]["givenName"], "Augusta");
    assert_eq!(r.body["name"]["familyName"], "Lovelace");
    assert_eq!(r.body[ENTERPRISE]["employeeNumber"], "42");
    assert_eq!(r.body["emails"][0]["value"], "augusta@example.com");
    assert_eq!(sim.user(&id).unwrap()["active"], false);
    // A PATCH that changes nothing leaves the version alone.
    let again =
        c.patch(&format!("/Users/{id}"), &patch_op(json!([{"op": "replace", "path": "active", "value": false}]))).await;
    assert_eq!(again.body["meta"]["version"], r.body["meta"]["version"]);
    let bad = c.patch(&format!("/Users/{id}"), &patch_op(json!([{"op": "remove", "path": "userName"}]))).await;
    assert_eq!((bad.status, bad.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("mutability")));
    let bad = c.patch(&format!("/Users/{id}"), &json!({"Operations": "nope"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(c.patch("/Users/missing", &ops).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let (sim, c) = start();
    let id = c.post("/Users", &user("alice")).await.body["id"].as_str().unwrap().to_owned();
    let r = c.delete(&format!("/Users/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(sim.users().is_empty());
    assert_eq!(c.delete(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get(&format!("/Users/{id}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn groups_hold_known_members_and_lose_deleted_users() {
    let (sim, c) = start();
    let alice = c.post("/Users", &user("alice")).await.body["id"].as_str().unwrap().to_owned();
    let bob = c.post("/Users", &user("bob")).await.body["id"].as_str().unwrap().to_owned();
    let g = c
        .post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops", "members": [{"value": alice}]}))
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let dup = c.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "ops"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let unknown = c
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "X", "members": [{"value": "gateway-local-id"}]}),
        )
        .await;
    assert_eq!((unknown.status, unknown.body["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")));

    let add = patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": bob}]}]));
    let r = c.patch(&format!("/Groups/{gid}"), &add).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let remove = patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{alice}\"]")}]));
    let r = c.patch(&format!("/Groups/{gid}"), &remove).await;
    assert_eq!(r.body["members"], json!([{"value": bob}]));

    let r = c.get("/Groups?filter=displayName%20eq%20%22Ops%22&excludedAttributes=members").await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(r.body["Resources"][0].get("members").is_none());

    c.delete(&format!("/Users/{bob}")).await;
    assert!(sim.group(&gid).unwrap().get("members").is_none(), "a deleted user leaves its groups");

    let r = c
        .put(
            &format!("/Groups/{gid}"),
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Ops 2", "members": [{"value": alice}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(sim.groups()[0]["displayName"], "Ops 2");
    assert_eq!(c.delete(&format!("/Groups/{gid}")).await.status, StatusCode::NO_CONTENT);
    assert!(sim.groups().is_empty());
}

#[tokio::test]
async fn discovery_endpoints_describe_the_app() {
    let (sim, c) = start();
    let r = c.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["patch"]["supported"], true);
    assert_eq!(r.body["bulk"]["supported"], false);
    assert_eq!(r.body["authenticationSchemes"][0]["type"], "oauthbearertoken");
    assert_eq!(r.body["meta"]["location"], format!("{}/ServiceProviderConfig", sim.base_url()));
    let r = c.get("/ResourceTypes").await;
    let names: Vec<&str> =
        r.body["Resources"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["User", "Group"]);
    assert_eq!(r.body["Resources"][0]["schemaExtensions"][0]["schema"], ENTERPRISE);
    let r = c.get("/Schemas").await;
    assert_eq!(r.body["totalResults"], 3);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_scim_errors() {
    let (_sim, c) = start();
    assert_eq!(c.get("/Devices").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("").await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.send(Method::DELETE, "/Users", None).await.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        c.send(Method::POST, "/ServiceProviderConfig", Some(&json!({}))).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let resp = c.http.get(format!("http://{}/elsewhere", _sim.addr())).bearer_auth(&c.token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_request_log_records_everything_but_the_token() {
    let (sim, c) = start();
    let before = std::time::Instant::now();
    c.post("/Users", &user("alice")).await;
    c.get("/Users?filter=userName%20eq%20%22alice%22").await;
    let log = sim.requests();
    assert_eq!(log.len(), 2);
    let post = &log[0];
    assert_eq!((post.seq, post.method.as_str(), post.path.as_str()), (1, "POST", "/scim/v2/Users"));
    assert_eq!(post.status, Some(201));
    assert!(post.authenticated);
    assert_eq!(post.header("content-type"), Some("application/scim+json"));
    assert!(post.header("authorization").is_none());
    assert!(!post.headers.iter().any(|(_, v)| v.contains(sim.token())));
    assert_eq!(post.json().unwrap()["userName"], "alice");
    assert!(post.at >= before && log[1].at >= post.at);
    assert!(post.time <= std::time::SystemTime::now());
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].body, "");
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    c.get("/Users").await;
    assert_eq!(sim.requests()[0].seq, 3, "sequence numbers go on after clearing");
}

#[tokio::test]
async fn insert_user_pre_seeds_for_adoption_and_keeps_a_given_id() {
    let (sim, c) = start();
    let mut seeded = user("existing");
    seeded["id"] = json!("vendor-123");
    let u = sim.insert_user(seeded).unwrap();
    assert_eq!(u["id"], "vendor-123");
    assert!(sim.requests().is_empty(), "seeding is not a request");
    let r = c.get("/Users?filter=userName%20eq%20%22Existing%22").await;
    assert_eq!(r.body["Resources"][0]["id"], "vendor-123");
    assert_eq!(sim.insert_user(user("EXISTING")).unwrap_err().status, 409);
    let g =
        sim.insert_group(json!({"schemas": [GROUP_SCHEMA], "displayName": "G", "members": [{"value": "vendor-123"}]}));
    assert!(g.is_ok());
}

#[tokio::test]
async fn reset_empties_store_log_and_faults() {
    let (sim, c) = start();
    c.post("/Users", &user("alice")).await;
    sim.set_faults(vendor_sim::Faults { fail_next: 5, ..Default::default() }).unwrap();
    sim.reset().unwrap();
    assert!(sim.users().is_empty() && sim.requests().is_empty());
    assert_eq!(sim.faults(), vendor_sim::Faults::default());
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn wait_for_requests_returns_once_they_have_arrived() {
    let (sim, c) = start();
    let waiter = sim.wait_for_requests(2, std::time::Duration::from_secs(5));
    let sender = async {
        c.get("/Users").await;
        c.get("/Users").await;
    };
    let (arrived, ()) = tokio::join!(waiter, sender);
    assert!(arrived);
    assert!(!sim.wait_for_requests(3, std::time::Duration::from_millis(50)).await);
}

#[tokio::test]
async fn a_custom_base_path_is_served() {
    let sim = Sim::start(SimConfig { base_path: "/api/scim/".into(), ..SimConfig::default() }).unwrap();
    assert!(sim.base_url().ends_with("/api/scim"));
    let c = Client::new(&sim);
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    assert!(Sim::start(SimConfig { base_path: "scim".into(), ..SimConfig::default() }).is_err());
}

#[test]
fn starting_on_a_taken_port_is_an_error_not_a_panic() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let err = Sim::start(SimConfig { listen: sim.addr(), ..SimConfig::default() }).unwrap_err();
    assert!(matches!(err, vendor_sim::SimError::Bind { .. }), "{err}");
    sim.stop();
}

#[test]
fn stop_closes_the_port() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let addr = sim.addr();
    sim.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// `attr eq` lookups are answered from the value index: they must follow renames, deletes and
/// extension attributes, ignore case where the attribute does, and name a core attribute by its
/// schema URN too.
#[tokio::test]
async fn eq_lookups_follow_every_change_of_the_indexed_values() {
    let (_sim, c) = start();
    let count = |r: &common::Reply| r.body["totalResults"].as_u64().unwrap();
    let q = |f: &str| format!("/Users?filter={}", common::encode(f));
    let mut alice = user("alice");
    alice[ENTERPRISE] = json!({"employeeNumber": "E-1"});
    let id = c.post("/Users", &alice).await.body["id"].as_str().unwrap().to_owned();
    c.post("/Users", &user("bob")).await;
    assert_eq!(count(&c.get(&q("userName eq \"ALICE\"")).await), 1, "userName is case-insensitive");
    assert_eq!(count(&c.get(&q(&format!("{USER_SCHEMA}:userName eq \"alice\""))).await), 1);
    assert_eq!(count(&c.get(&q(&format!("{ENTERPRISE}:employeeNumber eq \"E-1\""))).await), 1);
    // A rename moves the lookup: the old name finds nothing, the new one finds the user.
    let r = c
        .patch(&format!("/Users/{id}"), &patch_op(json!([{"op": "replace", "path": "userName", "value": "carol"}])))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(count(&c.get(&q("userName eq \"alice\"")).await), 0);
    assert_eq!(count(&c.get(&q("userName eq \"carol\"")).await), 1);
    // The freed name can be taken again; the new one cannot.
    assert_eq!(c.post("/Users", &user("alice")).await.status, StatusCode::CREATED);
    assert_eq!(c.post("/Users", &user("CAROL")).await.status, StatusCode::CONFLICT);
    // A delete takes the user out of every lookup.
    assert_eq!(c.delete(&format!("/Users/{id}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(count(&c.get(&q("userName eq \"carol\"")).await), 0);
    assert_eq!(count(&c.get(&q(&format!("{ENTERPRISE}:employeeNumber eq \"E-1\""))).await), 0);
    assert_eq!(count(&c.get(&q("userName eq \"bob\"")).await), 1);
}
