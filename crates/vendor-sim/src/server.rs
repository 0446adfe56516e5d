//! The simulator's own thread: an actix system that serves the app, and a supervisor that closes
//! and reopens the port for `refuse` outages.
//!
//! The server runs on a thread of its own so that a test on any runtime — `#[tokio::test]`,
//! `#[actix_web::test]`, or none — can start it, and so that a test that blocks its own runtime
//! cannot stall the app it is talking to.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Shared;
use crate::http;

/// A message to the supervisor. `Reconcile` carries an optional acknowledgement, sent once the
/// port's state matches the faults, so that `Sim::set_faults` returns only when a `refuse`
/// outage has really closed the port.
pub(crate) enum Control {
    /// The faults changed: open or close the port as they say.
    Reconcile(Option<std_mpsc::Sender<()>>),
    /// Stop serving and end the thread.
    Stop(std_mpsc::Sender<()>),
}

/// Binds `listen` and starts serving; the returned server handle stops it.
fn serve(shared: &Arc<Shared>, listen: SocketAddr, workers: usize) -> io::Result<(ServerHandle, SocketAddr)> {
    let factory_shared = web::Data::from(Arc::clone(shared));
    let max_body = shared.max_body_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(factory_shared.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .default_service(web::to(http::entry))
    })
    .workers(workers.max(1))
    // The owner of the process (a test, or the binary's ctrl-c handler) decides when to stop.
    .disable_signals()
    .shutdown_timeout(0)
    .bind(listen)?;
    let bound = server.addrs().first().copied().ok_or_else(|| io::Error::other("bound no address"))?;
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((handle, bound))
}

/// Waits until nothing listens on `addr` any more: binding it succeeds only then.
async fn wait_until_closed(addr: SocketAddr) {
    for _ in 0..200 {
        if std::net::TcpListener::bind(addr).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The thread's body: binds, reports the address on `ready`, then follows the control messages
/// and the outage schedule until told to stop.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    listen: SocketAddr,
    workers: usize,
    mut control: UnboundedReceiver<Control>,
    ready: std_mpsc::Sender<io::Result<SocketAddr>>,
) {
    let (handle, addr) = match serve(&shared, listen, workers) {
        Ok(ok) => ok,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    shared.set_origin(addr);
    let _ = ready.send(Ok(addr));
    let mut running = Some(handle);
    let mut acks: Vec<std_mpsc::Sender<()>> = Vec::new();
    loop {
        let now = Instant::now();
        let (refusing, mut next_change) = shared.lock().faults.refuse_schedule(now);
        if refusing {
            if let Some(h) = running.take() {
                h.stop(false).await;
                wait_until_closed(addr).await;
            }
        } else if running.is_none() {
            match serve(&shared, addr, workers) {
                Ok((h, _)) => running = Some(h),
                // Something else holds the port for a moment (a socket in an odd state): retry soon.
                Err(_) => next_change = Some(now + Duration::from_millis(20)),
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
        let message = match next_change {
            Some(at) => tokio::select! {
                m = control.recv() => Some(m),
                () = tokio::time::sleep_until(at.into()) => None,
            },
            None => Some(control.recv().await),
        };
        match message {
            None | Some(Some(Control::Reconcile(None))) => {}
            Some(Some(Control::Reconcile(Some(ack)))) => acks.push(ack),
            Some(Some(Control::Stop(ack))) => {
                if let Some(h) = running.take() {
                    h.stop(false).await;
                }
                let _ = ack.send(());
                return;
            }
            // Every sender is gone: the Sim was dropped without stop.
            Some(None) => {
                if let Some(h) = running.take() {
                    h.stop(false).await;
                }
                return;
            }
        }
    }
}
