//! The threads that run the store's blocking work for async callers: one per pooled connection.
//!
//! Work on the store can never run more at once than the pool has connections. Handed to tokio's
//! blocking pool instead, each task waiting for a connection held a thread of its own: with 64
//! deliveries and 64 requests in flight on PostgreSQL the gateway ran about 100 threads, most of
//! them waiting on the pool, at about 1 MB of memory each (issue 7's end-to-end run peaked at
//! 166 MB). Here the work waits in a queue, which costs no thread, and a fixed set of threads
//! takes it in order. A panic in a job is caught: its caller gets an error, the thread carries on.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::StoreError;

type Job = Box<dyn FnOnce() + Send>;

/// The error of a caller that waited `deadline` for the store in vain.
pub(crate) fn not_answered(deadline: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "the store did not answer within {} ms (store.statement_timeout_ms + connect_timeout_secs): the \
         database server accepts connections but does not answer, or is overloaded",
        deadline.as_millis()
    ))
}

/// A fixed set of threads taking jobs from one queue.
#[derive(Debug)]
pub(crate) struct Workers {
    queue: Sender<Job>,
    /// How long a caller waits for its job's answer (PostgreSQL; see
    /// `StoreConfig::answer_deadline`). A job still queued when its caller gave up is skipped.
    deadline: Option<Duration>,
}

impl Workers {
    /// Starts `n` (at least 1) threads named `scimgw-store`; callers wait at most `deadline`.
    pub(crate) fn start(n: usize, deadline: Option<Duration>) -> Result<Workers, StoreError> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..n.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name("scimgw-store".into())
                .spawn(move || {
                    loop {
                        // The lock is held only to take the next job, never while running it.
                        let next = match rx.lock() {
                            Ok(queue) => queue.recv(),
                            Err(poisoned) => poisoned.into_inner().recv(),
                        };
                        let Ok(job) = next else { return };
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| StoreError::Internal(format!("cannot start a store thread: {e}")))?;
        }
        Ok(Workers { queue: tx, deadline })
    }

    /// Runs `f` on one of the threads; its result once it has run.
    pub(crate) async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Its caller answered 503 already: a store that stopped answering must not also be
            // sent the backlog once it answers again.
            if !tx.is_closed() {
                let _ = tx.send(f());
            }
        });
        self.queue.send(job).map_err(|_| StoreError::Internal("the store's threads have stopped".into()))?;
        let answered = match self.deadline {
            Some(deadline) => tokio::time::timeout(deadline, rx).await.map_err(|_| not_answered(deadline))?,
            None => rx.await,
        };
        answered.map_err(|_| StoreError::Internal("a store task failed (it panicked)".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_survives_a_panic() {
        let workers = Workers::start(1, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(workers.run(|| 2 + 2).await.ok(), Some(4));
        let failed = workers.run(|| -> u32 { panic!("a job that panics") }).await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        // The one thread is still there.
        assert_eq!(workers.run(|| "after").await.ok(), Some("after"));
    }

    #[tokio::test]
    async fn no_more_at_once_than_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let workers = Arc::new(Workers::start(3, None).unwrap_or_else(|e| panic!("{e}")));
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut all = Vec::new();
        for _ in 0..24 {
            let (w, now, peak) = (workers.clone(), now.clone(), peak.clone());
            all.push(tokio::spawn(async move {
                w.run(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for task in all {
            assert!(task.await.is_ok_and(|r| r.is_ok()));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
