//! A token bucket per target, shared by every dispatcher on the store, so that a target's
//! `rate_per_sec` holds across replicas (each process's own limiter holds it for the process).
//!
//! The bucket is a row: what it held (`tokens_milli`, in thousandths of a request) at
//! `updated_us`. Taking `n` tokens reads the row, adds what the time since refilled (at `rate`
//! per second, at most `burst`), and writes the rest back only if nobody wrote in between (a
//! compare-and-set on both columns; retried when another dispatcher won). Precision: a
//! dispatcher takes a share of several tokens at once and spends it over the next moments, so
//! over any second the target receives at most `rate` plus `burst` plus one share per
//! dispatcher (the share is a tenth of a second's worth, at least one).

use std::time::Duration;

use diesel::prelude::*;

use crate::error::StoreError;
use crate::resource::now_us;
use crate::schema::rate_buckets;
use crate::store::Store;

impl Store {
    /// Takes `n` tokens from the bucket of (`tenant_id`, `target`) that refills at `rate` per
    /// second up to `burst`: `None` when taken, or how long until there are enough.
    pub fn take_tokens(
        &self,
        tenant_id: &str,
        target: &str,
        n: u32,
        rate: u32,
        burst: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let (tenant_id, target) = (tenant_id.to_owned(), target.to_owned());
        let (want, cap, rate) = (i64::from(n) * 1000, i64::from(burst.max(n)) * 1000, i64::from(rate.max(1)));
        self.write_owned(move |c| {
            for _ in 0..8 {
                let now = now_us();
                let row: Option<(i64, i64)> = rate_buckets::table
                    .find((&tenant_id, &target))
                    .select((rate_buckets::tokens_milli, rate_buckets::updated_us))
                    .first(c)
                    .optional()?;
                let Some((held, at)) = row else {
                    // A full bucket, less what is taken now. Two dispatchers creating it at once:
                    // the second insert fails and the transaction is retried by the caller.
                    diesel::insert_into(rate_buckets::table)
                        .values((
                            rate_buckets::tenant_id.eq(&tenant_id),
                            rate_buckets::target.eq(&target),
                            rate_buckets::tokens_milli.eq(cap - want),
                            rate_buckets::updated_us.eq(now),
                        ))
                        .execute(c)?;
                    return Ok(None);
                };
                // Thousandths of a token refilled: microseconds × rate / 1,000.
                let refilled = now.saturating_sub(at).max(0).saturating_mul(rate) / 1000;
                let available = held.saturating_add(refilled).min(cap);
                if available < want {
                    let missing = u64::try_from(want - available).unwrap_or(0);
                    let rate = u64::try_from(rate).unwrap_or(1);
                    return Ok(Some(Duration::from_micros(missing.saturating_mul(1000) / rate + 1)));
                }
                let won = diesel::update(
                    rate_buckets::table
                        .find((&tenant_id, &target))
                        .filter(rate_buckets::tokens_milli.eq(held))
                        .filter(rate_buckets::updated_us.eq(at)),
                )
                .set((rate_buckets::tokens_milli.eq(available - want), rate_buckets::updated_us.eq(now)))
                .execute(c)?;
                if won > 0 {
                    return Ok(None);
                }
            }
            // Busy: let the caller come back shortly.
            Ok(Some(Duration::from_millis(10)))
        })
    }
}
