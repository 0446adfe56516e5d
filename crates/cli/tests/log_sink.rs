//! A log sink that is gone or stuck never takes the gateway down: `scimgw serve` with its stdout
//! and stderr in a pipe whose reader closed it (`serve | tee`, then Ctrl-C) or never reads it
//! (a stopped pager) keeps answering, and SIGTERM still ends it within
//! `dispatcher.shutdown_grace_secs` plus the stop margin.
#![cfg(test)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Gw, Proc};
use scimgw_store::testing::TestDb;
use vendor_sim::{Sim, SimConfig};

/// The grace period the tests give `serve`; the process must be gone within it plus the margin
/// (5 s, `serve::STOP_MARGIN`) and a little for the exit itself.
const GRACE_SECS: u64 = 2;
const STOP_WITHIN: Duration = Duration::from_secs(GRACE_SECS + 5 + 3);

#[derive(Clone, Copy, Debug)]
enum Reader {
    /// The pipe's read ends are closed: every write fails with EPIPE.
    Closed,
    /// The read ends stay open and nobody reads: once the pipe's buffer is full every write blocks.
    Stuck,
}

async fn serve_into_a_pipe_then(reader: Reader) {
    let db = TestDb::sqlite();
    let sim = Sim::start(SimConfig::default()).unwrap();
    let gw = Gw::new(&db.config().url, &sim, "");
    let token = gw.token();
    let child = gw
        .cmd(&["serve"])
        // Debug: several lines per request, so the pipe's 64 KiB fill within the test.
        .env("RUST_LOG", "debug")
        .env("SCIMGW_DISPATCHER__SHUTDOWN_GRACE_SECS", GRACE_SECS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut serve = Proc(child);
    let (out, err) = (serve.0.stdout.take(), serve.0.stderr.take());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let base = format!("http://127.0.0.1:{}", gw.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = match reader {
        Reader::Closed => {
            drop((out, err));
            None
        }
        Reader::Stuck => Some((out, err)),
    };

    // Enough requests to fill a pipe many times over at debug level; each must be answered.
    for i in 0..400 {
        let r = client
            .post(format!("{base}/scim/v2/Users"))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body(format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"u{i}@example.com"}}"#
            ))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{reader:?}: request {i} got no answer: {e}"));
        assert_eq!(r.status(), 201, "{reader:?}: request {i}");
    }
    let health = client.get(format!("{base}/healthz")).send().await.unwrap_or_else(|e| panic!("{reader:?}: {e}"));
    assert_eq!(health.status(), 200);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let dropped = |reason: &str| -> f64 {
        let key = format!("scimgw_log_lines_dropped_total{{reason=\"{reason}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
    };
    match reader {
        Reader::Closed => assert!(dropped("write_failed") > 0.0, "failed writes are counted: {metrics}"),
        // The writer thread is stuck in a write; what the queue cannot hold is dropped.
        Reader::Stuck => {
            assert!(dropped("write_failed") == 0.0, "a blocked write is not a failed one: {}", dropped("write_failed"))
        }
    }

    let status = Command::new("kill").args(["-TERM", &serve.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let asked = Instant::now();
    let exited = loop {
        if let Some(status) = serve.0.try_wait().unwrap() {
            break Some(status);
        }
        if asked.elapsed() > STOP_WITHIN {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = asked.elapsed();
    assert!(exited.is_some(), "{reader:?}: serve still running {took:?} after SIGTERM");
    eprintln!(
        "{reader:?}: 400 POSTs answered 201, /healthz 200; dropped lines: queue_full {}, write_failed {}; \
         exited {took:?} after SIGTERM ({:?})",
        dropped("queue_full"),
        dropped("write_failed"),
        exited.and_then(|s| s.code())
    );
    drop(held);
}

#[tokio::test]
async fn serve_keeps_answering_and_stops_on_sigterm_after_its_log_reader_is_gone() {
    serve_into_a_pipe_then(Reader::Closed).await;
}

#[tokio::test]
async fn serve_keeps_answering_and_stops_on_sigterm_while_nobody_reads_its_log() {
    serve_into_a_pipe_then(Reader::Stuck).await;
}
