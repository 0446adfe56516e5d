//! The token bucket a target's dispatchers share (`Store::take_tokens`): several takers on one
//! store together get no more than the rate plus the burst, and about that much. Both engines
//! (on PostgreSQL, four threads with connections of their own race for the bucket).

use std::time::{Duration, Instant};

use scimgw_store::testing::TestDb;

const RATE: u32 = 20;
const BURST: u32 = 2;

fn takers_share_the_rate(db: TestDb) {
    let store = db.store().clone();
    let tenant = store.create_tenant("acme").unwrap_or_else(|e| panic!("{e}")).id;
    let run_for = Duration::from_secs(3);
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (store, tenant) = (store.clone(), tenant.clone());
            std::thread::spawn(move || {
                let mut taken = 0u32;
                while started.elapsed() < run_for {
                    match store.take_tokens(&tenant, "crm", 1, RATE, BURST) {
                        Ok(None) => taken += 1,
                        Ok(Some(wait)) => std::thread::sleep(wait.min(Duration::from_millis(50))),
                        // Two takers creating the bucket at once: the loser tries again.
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                taken
            })
        })
        .collect();
    let taken: u32 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let most = (f64::from(RATE) * elapsed).ceil() as u32 + BURST;
    assert!(taken <= most, "{taken} tokens in {elapsed:.2} s at {RATE}/s, burst {BURST}: at most {most}");
    assert!(taken >= RATE * 2, "{taken} tokens in {elapsed:.2} s: the takers were held back too much");
    // Another target's bucket is its own.
    assert_eq!(store.take_tokens(&tenant, "hr", BURST, RATE, BURST).unwrap_or_else(|e| panic!("{e}")), None);
}

#[test]
fn takers_share_the_rate_sqlite() {
    takers_share_the_rate(TestDb::sqlite());
}

#[test]
fn takers_share_the_rate_postgres() {
    if let Some(db) = TestDb::postgres() {
        takers_share_the_rate(db);
    }
}
