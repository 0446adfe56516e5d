//! PostgreSQL: the tables' statistics refreshed as the store grows, so that plans follow.
//!
//! Every hot statement is prepared once per connection, and PostgreSQL keeps a prepared
//! statement's generic plan until something invalidates it — an `ANALYZE` of a table it reads. A
//! plan made while the tables were nearly empty (the first requests of an initial sync) then
//! serves them at 100,000 users: in the end-to-end run on a server without autovacuum, the
//! `userName eq` lookups walked `users_created` and read every user of the tenant for a name not
//! there yet (3–25 ms a lookup at 20,000 users; issue 7). In the same run `users_modified` was
//! scanned 27,000 times, 17,000 entries a scan, by a statement not pinned down. With autovacuum on, its first `ANALYZE` comes within a minute or so; an initial sync
//! creates tens of thousands of users in that minute. So the store does what PostgreSQL's manual
//! advises after a bulk load: each time the number of resources it has created doubles (from
//! [`FIRST`]), it analyzes the tables the hot statements read, on a thread of its own, one run at
//! a time. Analyzing samples a bounded number of rows (300 × `default_statistics_target`), so a
//! run costs tens of milliseconds; it happens about ten times on the way to a million creates.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Creates before the first `ANALYZE`.
pub(crate) const FIRST: u64 = 1_000;

/// What `ANALYZE` runs on: every table the hot statements read.
pub(crate) const TABLES: &str = "ANALYZE users, groups, group_members, deliveries, links";

/// The count of creates and the next threshold.
#[derive(Debug)]
pub(crate) struct Growth {
    created: AtomicU64,
    next: AtomicU64,
    running: AtomicBool,
    runs: AtomicU64,
}

impl Growth {
    pub(crate) fn new() -> Self {
        Growth {
            created: AtomicU64::new(0),
            next: AtomicU64::new(FIRST),
            running: AtomicBool::new(false),
            runs: AtomicU64::new(0),
        }
    }

    /// Counts one create; `true` when the caller is to run `ANALYZE` now (and then call
    /// [`Growth::done`]).
    pub(crate) fn created(&self) -> bool {
        let n = self.created.fetch_add(1, Ordering::Relaxed) + 1;
        n >= self.next.load(Ordering::Relaxed)
            && self.running.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// The run started by [`Growth::created`] ended: the next one when the count has doubled.
    pub(crate) fn done(&self) {
        let n = self.created.load(Ordering::Relaxed);
        self.next.store(n.saturating_mul(2).max(FIRST), Ordering::Relaxed);
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.running.store(false, Ordering::Release);
    }

    /// How many runs have ended.
    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_at_the_first_threshold_then_each_time_the_count_doubles() {
        let g = Growth::new();
        let mut at = Vec::new();
        for n in 1..=10_000u64 {
            if g.created() {
                at.push(n);
                g.done();
            }
        }
        assert_eq!(at, vec![1_000, 2_000, 4_000, 8_000]);
        assert_eq!(g.runs(), 4);
    }

    #[test]
    fn one_run_at_a_time() {
        let g = Growth::new();
        for _ in 0..FIRST - 1 {
            assert!(!g.created());
        }
        assert!(g.created());
        // Still running: the creates past the threshold start nothing.
        assert!(!g.created());
        assert!(!g.created());
        g.done();
        assert!(!g.created());
    }
}
