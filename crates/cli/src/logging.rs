//! The process's log: tracing to stderr (or `demo`'s file) through a bounded queue and a writer
//! thread of its own, so that a log sink that is gone or stuck never stops the gateway.
//!
//! A reader of stdout/stderr that has gone away (`scimgw serve | tee`, then Ctrl-C, which ends
//! `tee` too) makes every write fail; one that stops reading makes every write block once the
//! pipe's buffer is full. Written in place, the second held every thread that logged — the HTTP
//! workers, the dispatcher and the signal handler — so the gateway stopped answering and could not
//! be stopped short of SIGKILL. Here a log line is queued (`tracing-appender`'s lossy
//! non-blocking writer) and written by one thread; a line that finds the queue full, or whose
//! write fails, is dropped and counted in `scimgw_log_lines_dropped_total{reason}`.
//!
//! [`say`] is for what the CLI prints to a person: it never panics on a closed stdout (as
//! `println!` does) and never blocks the gateway's threads for long (it runs where it is called).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use scimgw_gateway::Config;
use scimgw_gateway::config::LogFormat;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines the queue can hold before new ones are dropped.
const QUEUE_LINES: usize = 16_384;

/// The writer thread's guard, until [`flush`] drops it (which writes out what is queued).
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Lines whose write failed (the sink is gone): counted by the writer thread.
static WRITE_FAILED: AtomicU64 = AtomicU64::new(0);

/// Logs to stderr at the configured level (`RUST_LOG` wins), ANSI colours when it is a terminal.
pub(crate) fn init(config: &Config) {
    use std::io::IsTerminal;
    install(config, std::io::stderr(), std::io::stderr().is_terminal());
}

/// Logs to `path` (appended) instead of stderr, at the configured level: `demo` keeps the
/// terminal for what reaches the vendors.
pub(crate) fn init_to_file(config: &Config, path: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    install(config, file, false);
    Ok(())
}

fn install<W: Write + Send + 'static>(config: &Config, sink: W, ansi: bool) {
    let (writer, guard) =
        NonBlockingBuilder::default().lossy(true).buffered_lines_limit(QUEUE_LINES).finish(Counting(sink));
    let queue_full = writer.error_counter();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    let installed = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
    if installed.is_err() {
        return;
    }
    if let Ok(mut slot) = GUARD.lock() {
        *slot = Some(guard);
    }
    // The drop counts reach /metrics as counters; the exporter reads them from here every second.
    let _ = std::thread::Builder::new().name("scimgw-log-count".into()).spawn(move || {
        loop {
            metrics::counter!("scimgw_log_lines_dropped_total", "reason" => "queue_full")
                .absolute(queue_full.dropped_lines() as u64);
            metrics::counter!("scimgw_log_lines_dropped_total", "reason" => "write_failed")
                .absolute(WRITE_FAILED.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

/// The sink as the writer thread sees it: a failed write is counted and dropped, never returned
/// (`tracing-appender` would only discard the error) and never retried.
struct Counting<W>(W);

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.write_all(buf).is_err() {
            WRITE_FAILED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

/// Writes out the queued log lines before the process ends (at most about a second, however
/// stuck the sink: `tracing-appender` bounds it); later lines are dropped.
pub(crate) fn flush() {
    let guard = GUARD.lock().ok().and_then(|mut slot| slot.take());
    drop(guard);
}

/// Prints `text` and a newline to stdout for a person; a closed or failing stdout is ignored.
pub(crate) fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// As [`say`], to stderr.
pub(crate) fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}
