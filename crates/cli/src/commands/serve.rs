//! `scimgw serve` (the SCIM endpoint and, unless turned off, the dispatcher) and `scimgw worker`
//! (the dispatcher alone).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use anyhow::{Context, bail};
use scimgw_delivery::dispatch::Dispatcher;
use scimgw_delivery::{TargetSet, Targets, adapter_registry};
use scimgw_gateway::{AppState, Config};
use scimgw_scim::schema::Registry;
use scimgw_store::{Store, redact_url};
use tokio::sync::{Notify, watch};

use super::{create_store, open_store};
use crate::logging;

/// `scimgw serve` and `scimgw worker`.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Refuse to start when any tenant's target cannot be loaded (a missing token variable, a
    /// mistake in a tenant file). Without it the gateway starts with every target that loads,
    /// holds the changes of the others in the outbox and reports them (log, `status`, `/readyz`,
    /// `/metrics`).
    #[arg(long)]
    pub strict: bool,
}

/// Loads every tenant's targets. A target that cannot be loaded is logged as an error and
/// reported (see [`record_problems`]); the set holds the others. `strict`: any error refuses the
/// whole set, each problem on its own line.
pub(crate) fn load_targets(
    config: &Config,
    store: &Store,
    schemas: &Registry,
    strict: bool,
) -> anyhow::Result<TargetSet> {
    let tenants = store.tenants().context("reading tenants")?;
    let dir = Path::new(&config.tenants_dir);
    let (set, problems) = TargetSet::load(dir, &tenants, &adapter_registry(), schemas);
    if strict && problems.iter().any(|p| !p.warning) {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("the target configuration in {} has problems (--strict):\n  {}", config.tenants_dir, lines.join("\n  "));
    }
    let survey = scimgw_delivery::targets::survey(dir, &tenants);
    for w in problems.iter().filter(|p| p.warning).chain(&survey.warnings) {
        tracing::warn!("{w}");
    }
    for note in &survey.notes {
        tracing::info!("note: {note}");
    }
    Ok(set)
}

/// Tells what could not be loaded, where an operator looks: the log (an error per target), the
/// store (for `scimgw status`; the admin's shell may lack the secrets the gateway has) and the
/// metrics. Then wakes the held deliveries of every target the set loads (held by an earlier
/// start or load that could not load it).
fn record_problems(store: &Store, set: &TargetSet, wake: &[(String, String)]) {
    let now = chrono::Utc::now().timestamp_micros();
    let mut rows = Vec::new();
    for (tenant_id, broken) in set.all_broken() {
        tracing::error!("{}", broken.describe());
        rows.push(scimgw_store::TargetProblem {
            tenant_id: tenant_id.to_owned(),
            target: broken.target.clone().unwrap_or_default(),
            problems: broken.problems.join("\n"),
            running_previous: i64::from(broken.running_previous),
            since_us: now,
        });
    }
    if let Err(e) = store.set_target_problems(&rows) {
        tracing::warn!(error = %e, "recording which targets are not loaded failed; scimgw status will not show them");
    }
    for (tenant_id, target) in wake {
        match store.wake_held(tenant_id, target) {
            Ok(0) => {}
            Ok(n) => tracing::info!(target = %target, deliveries = n, "target loaded: its held deliveries are due now"),
            Err(e) => {
                tracing::warn!(error = %e, target = %target, "waking held deliveries failed; they come due by themselves within hours, or at the next reload")
            }
        }
    }
}

/// Puts a reload on the operator trail: per tenant whose targets changed, what changed, and per
/// tenant whose change was refused, which targets keep their previous configuration; one event
/// saying nothing changed otherwise. The actor is the gateway: a signal does not say who sent it.
fn record_reload(store: &Store, set: &TargetSet, previous: &TargetSet, refused: &[(String, Vec<String>)]) {
    let tenants = store.tenants().unwrap_or_default();
    let changes = set.changes_from(previous);
    let actor = format!("gateway pid {} (SIGHUP)", std::process::id());
    let mut actions: Vec<scimgw_store::OperatorAction> = changes
        .iter()
        .map(|(tenant_id, c)| scimgw_store::OperatorAction {
            actor: actor.clone(),
            operation: "targets-reload",
            tenant_id: Some(tenant_id.clone()),
            tenant_name: tenants.iter().find(|t| &t.id == tenant_id).map(|t| t.name.clone()),
            detail: format!("targets reloaded: {c}"),
            ..Default::default()
        })
        .collect();
    for (tenant_name, kept) in refused {
        actions.push(scimgw_store::OperatorAction {
            actor: actor.clone(),
            operation: "targets-reload",
            tenant_id: tenants.iter().find(|t| &t.name == tenant_name).map(|t| t.id.clone()),
            tenant_name: Some(tenant_name.clone()),
            detail: format!("reload refused for {}: the previous configuration keeps running", kept.join(", ")),
            ..Default::default()
        });
    }
    if actions.is_empty() {
        actions.push(scimgw_store::OperatorAction {
            actor,
            operation: "targets-reload",
            detail: format!("targets reloaded: nothing changed ({} targets)", set.len()),
            ..Default::default()
        });
    }
    for action in &actions {
        if let Err(e) = store.record_operator_event(action) {
            tracing::warn!(error = %e, "recording the reload on the audit trail failed");
        }
    }
}

/// Every loaded target, as (tenant id, name): at start, any of them may have held deliveries.
fn loaded(set: &TargetSet) -> Vec<(String, String)> {
    set.iter().map(|(t, target)| (t.to_owned(), target.name().to_owned())).collect()
}

/// Re-reads the targets on every SIGHUP. A target that no longer loads keeps running its previous
/// configuration (and is reported); one that loads now wakes its held deliveries.
fn reload_on_sighup(config: Config, store: Store, schemas: Arc<Registry>, targets: Arc<Targets>, wake: Arc<Notify>) {
    actix_web::rt::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; targets are read at start only");
            return;
        };
        while hup.recv().await.is_some() {
            let (c, s, sc, t) = (config.clone(), store.clone(), schemas.clone(), targets.clone());
            let reloaded = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
                let mut set = load_targets(&c, &s, &sc, false)?;
                let reloaded = set.keep_running(&t.snapshot());
                record_reload(&s, &set, &t.snapshot(), &reloaded.refused);
                for (tenant, kept) in &reloaded.refused {
                    tracing::error!(
                        "SIGHUP: reload refused for tenant {tenant}'s {}: mistakes below; the previous \
                         configuration keeps running",
                        kept.join(", ")
                    );
                }
                for (_, target) in &reloaded.woken {
                    tracing::info!(target = %target, "SIGHUP: target loaded");
                }
                // Every loaded target, not only those new to this process: another replica that
                // could not load one may have held its rows.
                let wake = loaded(&set);
                let n = set.len();
                // The set first: a row woken before it would be claimed against the old one and
                // held again.
                t.replace(set);
                record_problems(&s, &t.snapshot(), &wake);
                Ok(n)
            })
            .await;
            match reloaded {
                Ok(Ok(n)) => {
                    tracing::info!(targets = n, "SIGHUP: targets reloaded");
                    wake.notify_one();
                }
                Ok(Err(e)) => tracing::error!("SIGHUP: reload refused, keeping the previous targets: {e:#}"),
                Err(e) => tracing::error!("SIGHUP: reload failed: {e}"),
            }
        }
    });
}

/// Runs until SIGINT or SIGTERM: stops taking requests, lets in-flight requests and deliveries
/// finish (deliveries within `dispatcher.shutdown_grace_secs`), and leaves the rest in the outbox.
pub fn run(config: Config, args: &ServeArgs) -> anyhow::Result<()> {
    logging::init(&config);
    let store = create_store(&config)?;
    tracing::info!(store = %redact_url(&config.store.url), "store ready");
    if store.tenants().context("reading tenants")?.is_empty() {
        logging::warn(
            "\nNo tenant exists yet. Create one and issue its first token (shown once):\n\n    \
             scimgw tenant add acme\n    scimgw key issue --tenant acme\n\n\
             (from a checkout: cargo run -- tenant add acme, then cargo run -- key issue --tenant acme)\n",
        );
    }
    serve_until_stopped(config, store, args.strict, |_| {})
}

/// Loads the targets, then serves SCIM and delivers until SIGINT/SIGTERM; `on_ready` gets the
/// bound addresses once the endpoint listens (`demo` prints its instructions there).
pub(crate) fn serve_until_stopped(
    config: Config,
    store: Store,
    strict: bool,
    on_ready: impl FnOnce(&[std::net::SocketAddr]),
) -> anyhow::Result<()> {
    let schemas = Arc::new(scimgw_delivery::schema_registry());
    let set = load_targets(&config, &store, &schemas, strict)?;
    record_problems(&store, &set, &loaded(&set));
    tracing::info!(targets = set.len(), tenants_dir = %config.tenants_dir, "targets loaded");
    let targets = Arc::new(Targets::new(set));
    let wake = Arc::new(Notify::new());
    let dispatcher = config.dispatcher.enabled.then(|| {
        Arc::new(Dispatcher::new(
            store.clone(),
            targets.clone(),
            schemas.clone(),
            config.dispatcher_config(),
            wake.clone(),
        ))
    });
    let mut app_state = AppState::new(config.clone(), store.clone(), scimgw_delivery::schema_registry())
        .with_targets(targets.clone(), wake.clone());
    if let Some(d) = &dispatcher {
        app_state = app_state.with_heartbeat(d.heartbeat());
    }
    let state = web::Data::new(app_state);
    let delivering = dispatcher.is_some().then(|| dispatcher_runtime(&config)).transpose()?;
    let on_dispatcher = delivering.as_ref().map(|rt| rt.handle().clone());
    let grace_secs = config.dispatcher.shutdown_grace_secs;
    let result = system(&config)?.block_on(async move {
        let scimgw_gateway::Bound { server, addrs, admin } = scimgw_gateway::bind(state).with_context(|| {
            format!(
                "listening on {}{}",
                config.listen,
                config.admin_listen.as_ref().map_or_else(String::new, |a| format!(" and {a}"))
            )
        })?;
        for addr in &addrs {
            tracing::info!(
                "SCIM endpoint at {}://{addr}{}",
                if config.tls.is_some() { "https" } else { "http" },
                config.base_path()
            );
        }
        let admin_handle = admin.map(|(admin, admin_addrs)| {
            for addr in &admin_addrs {
                tracing::info!("operations endpoints (/healthz, /readyz, /metrics) at http://{addr}");
            }
            let handle = admin.handle();
            actix_web::rt::spawn(admin);
            handle
        });
        on_ready(&addrs);
        reload_on_sighup(config.clone(), store.clone(), schemas.clone(), targets.clone(), wake);
        let (stop, stopped) = watch::channel(false);
        let dispatcher = dispatcher.zip(on_dispatcher).map(|(d, rt)| rt.spawn(d.run(stopped)));
        // On SIGINT/SIGTERM: stop taking requests and stop the dispatcher together; in-flight
        // requests and deliveries finish (deliveries within dispatcher.shutdown_grace_secs).
        let handle = server.handle();
        actix_web::rt::spawn(async move {
            wait_for_stop_signal().await;
            tracing::info!("stopping: finishing in-flight requests and deliveries");
            arm_stop_deadline(Duration::from_secs(grace_secs));
            let _ = stop.send(true);
            // Both at once: a `/readyz` stuck on a hung database must not hold the SCIM listener
            // open while the grace period runs out.
            let admin = async {
                if let Some(admin) = admin_handle {
                    admin.stop(true).await;
                }
            };
            tokio::join!(admin, handle.stop(true));
        });
        let served = server.await.context("serving");
        if let Some(d) = dispatcher {
            let _ = d.await;
        }
        served
    });
    if let Some(rt) = delivering {
        // The dispatcher has returned; what is left are idle connection tasks.
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    }
    result
}

/// The dispatcher's own multi-threaded runtime (`dispatcher.threads`, 0: one thread per CPU),
/// apart from the SCIM workers': deliveries use every core while a backlog drains, and a slow
/// vendor never holds a thread that answers the IdP. Its blocking pool is bounded like theirs.
fn dispatcher_runtime(config: &Config) -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = match config.dispatcher.threads {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("scimgw-deliver")
        .max_blocking_threads(config.blocking_threads.max(1))
        .enable_all()
        .build()
        .context("starting the dispatcher's runtime")
}

/// The actix system the server runs on, with its blocking pool bounded like the HTTP workers'
/// (`blocking_threads`): with tokio's default of 512 threads a busy outbox once grew the RSS to
/// 380 MB.
fn system(config: &Config) -> anyhow::Result<actix_web::rt::SystemRunner> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(config.blocking_threads.max(1))
        .build()
        .context("starting the runtime")?;
    Ok(actix_web::rt::System::with_tokio_rt(move || runtime))
}

/// `scimgw worker`: the dispatcher without the SCIM endpoint, for scale-out on PostgreSQL.
pub fn worker(config: Config, args: &ServeArgs) -> anyhow::Result<()> {
    logging::init(&config);
    let store = open_store(&config)?;
    let schemas = Arc::new(scimgw_delivery::schema_registry());
    let set = load_targets(&config, &store, &schemas, args.strict)?;
    record_problems(&store, &set, &loaded(&set));
    tracing::info!(targets = set.len(), "worker: targets loaded");
    let targets = Arc::new(Targets::new(set));
    let delivering = dispatcher_runtime(&config)?;
    let on_dispatcher = delivering.handle().clone();
    let grace_secs = config.dispatcher.shutdown_grace_secs;
    let result = system(&config)?.block_on(async move {
        let wake = Arc::new(Notify::new());
        reload_on_sighup(config.clone(), store.clone(), schemas.clone(), targets.clone(), wake.clone());
        let (stop, stopped) = watch::channel(false);
        let d = Arc::new(Dispatcher::new(store, targets, schemas, config.dispatcher_config(), wake));
        let task = on_dispatcher.spawn(d.run(stopped));
        wait_for_stop_signal().await;
        tracing::info!("worker: stopping");
        arm_stop_deadline(Duration::from_secs(grace_secs));
        let _ = stop.send(true);
        let _ = task.await;
        Ok(())
    });
    delivering.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// How long past `dispatcher.shutdown_grace_secs` a stopping process may take before it exits
/// regardless (a request or a delivery that does not end, a store that does not answer).
pub(crate) const STOP_MARGIN: Duration = Duration::from_secs(5);

/// Exit code of a process that did not stop within its grace period plus [`STOP_MARGIN`], or was
/// told to stop a second time.
const EXIT_FORCED: i32 = 2;

/// After the first SIGINT/SIGTERM: the process ends within `grace` plus [`STOP_MARGIN`] whatever
/// state it is in, and at once on a second signal (a second Ctrl-C). Committed writes are durable
/// and leased deliveries come back when their leases expire, as after a crash. Nothing is printed
/// on the way out but through the log's queue (its flush is bounded): an output nobody reads
/// could block a print.
fn arm_stop_deadline(grace: Duration) {
    let _ = std::thread::Builder::new().name("scimgw-stop".into()).spawn(move || {
        std::thread::sleep(grace + STOP_MARGIN);
        tracing::warn!("still stopping {}s after the grace period: exiting", STOP_MARGIN.as_secs());
        crate::logging::flush();
        std::process::exit(EXIT_FORCED);
    });
    let _ = std::thread::Builder::new().name("scimgw-stop-again".into()).spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(wait_for_stop_signal());
        tracing::warn!("stopped again: exiting at once");
        crate::logging::flush();
        std::process::exit(EXIT_FORCED);
    });
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn wait_for_stop_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
