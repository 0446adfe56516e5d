//! Fault injection with each vendor profile: the same faults as the generic profile, applied before
//! the vendor's own rules (so an injected 503 is a 503 even where the vendor would refuse).

#![expect(clippy::unwrap_used, reason = "test helpers: a failed setup must fail the test loudly")]

mod common;

use common::{Client, patch_op, user};
use reqwest::StatusCode;
use serde_json::json;
use vendor_sim::{Faults, InjectedError, InjectedFault, ProfileKind, Scope, Sim, SimConfig};

const VENDORS: [ProfileKind; 3] = [ProfileKind::Jostle, ProfileKind::JoynFsm, ProfileKind::JumpCloud];

fn start(kind: ProfileKind) -> (Sim, Client) {
    let sim = Sim::start(SimConfig::with_profile(kind.build())).unwrap();
    let client = Client::new(&sim);
    (sim, client)
}

#[tokio::test]
async fn errors_and_throttling_apply_with_every_vendor_profile() {
    for kind in VENDORS {
        let (sim, c) = start(kind);
        sim.set_faults(Faults { fail_next: 1, throttle_next: 1, retry_after_secs: 3, ..Faults::default() }).unwrap();
        for _ in 0..3 {
            c.post("/Users", &user("ada")).await;
        }
        let faults: Vec<_> = sim.requests().iter().map(|r| (r.status, r.fault)).collect();
        assert_eq!(faults.last().unwrap(), &(Some(201), None), "{}: a valid user after the faults", kind.name());
        assert!(faults.contains(&(Some(500), Some(InjectedFault::Error))), "{}: {faults:?}", kind.name());
        assert!(faults.contains(&(Some(429), Some(InjectedFault::Throttled))), "{}: {faults:?}", kind.name());
        assert_eq!(sim.users().len(), 1, "{}", kind.name());
    }
}

#[tokio::test]
async fn a_permanent_error_carries_the_vendors_message_with_a_vendor_profile() {
    for kind in VENDORS {
        let (sim, c) = start(kind);
        let error = InjectedError::permanent("the email domain is not allowed for this organisation");
        sim.set_faults(Faults { fail_next: 1, error, ..Faults::default() }).unwrap();
        let r = c.post("/Users", &user("ada")).await;
        assert_eq!((r.status, r.body["scimType"].clone()), (StatusCode::BAD_REQUEST, json!("invalidValue")));
        assert!(sim.users().is_empty(), "{}", kind.name());
    }
}

#[tokio::test]
async fn faults_apply_before_jumpclouds_url_flag_is_checked() {
    let (sim, c) = start(ProfileKind::JumpCloud);
    let id = c.post("/Users", &user("ada")).await.body["id"].as_str().unwrap().to_owned();
    let scope = Scope { methods: vec!["PATCH".into()], path_prefix: Some("/Users".into()) };
    sim.set_faults(Faults { fail_next: 1, error: InjectedError::unavailable(2), scope, ..Faults::default() }).unwrap();
    let deactivate = patch_op(json!([{"op": "replace", "path": "active", "value": false}]));
    let r = c.patch(&format!("/Users/{id}"), &deactivate).await;
    assert_eq!((r.status, r.header("retry-after")), (StatusCode::SERVICE_UNAVAILABLE, Some("2")));
    assert_eq!(c.patch(&format!("/Users/{id}"), &deactivate).await.status, StatusCode::FORBIDDEN, "then the flag rule");
    assert_eq!(c.get(&format!("/Users/{id}")).await.status, StatusCode::OK, "the scope spares reads");
}

#[tokio::test]
async fn latency_applies_with_a_vendor_profile() {
    let (sim, c) = start(ProfileKind::Jostle);
    sim.set_faults(Faults { latency_ms: 60, ..Faults::default() }).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(c.get("/Users").await.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
}
