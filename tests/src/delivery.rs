//! A gateway with targets and a running dispatcher, delivering to `vendor-sim` apps on loopback.
//!
//! [`DeliveryApp::spawn`] starts the gateway (as [`TestApp`] does), one simulator per target,
//! writes the tenant's `<tenant>.toml` with each target's `base_url` and a `token_file`, loads
//! it, and runs a [`Dispatcher`] on the test's runtime.
#![allow(clippy::expect_used, reason = "a test harness: a failed setup must stop the test loudly")]

use std::sync::Arc;
use std::time::Duration;

use scimgw_delivery::dispatch::{Dispatcher, DispatcherConfig};
use scimgw_delivery::{TargetSet, Targets, adapter_registry};
use scimgw_store::{Backend, Delivery, DeliveryFilter, DeliveryState};
use tokio::sync::{Notify, watch};
use vendor_sim::{ProfileKind, Sim, SimConfig};

use crate::TestApp;

/// One target to configure: its name, adapter kind, the simulator profile that plays the app,
/// and the TOML lines after `name`, `kind`, `base_url` and `token_file` (e.g.
/// `scope = 'active eq true'`).
pub struct TargetSpec {
    /// The target's name.
    pub name: &'static str,
    /// The adapter kind.
    pub kind: &'static str,
    /// The simulated app.
    pub profile: ProfileKind,
    /// Appended to the simulator's base URL (`/?aadOptscim062020`).
    pub url_suffix: &'static str,
    /// Extra TOML keys.
    pub extra: String,
}

impl TargetSpec {
    /// A `scim` target on a generic simulator, with these extra keys.
    pub fn new(name: &'static str, extra: &str) -> Self {
        TargetSpec { name, kind: "scim", profile: ProfileKind::Generic, url_suffix: "", extra: extra.to_owned() }
    }

    /// A vendor target on that vendor's strict simulator.
    pub fn vendor(name: &'static str, kind: &'static str, extra: &str) -> Self {
        let (profile, url_suffix) = match kind {
            "jostle" => (ProfileKind::Jostle, ""),
            "joyn-fsm" => (ProfileKind::JoynFsm, ""),
            "jumpcloud" => (ProfileKind::JumpCloud, "/?aadOptscim062020"),
            _ => (ProfileKind::Generic, ""),
        };
        TargetSpec { name, kind, profile, url_suffix, extra: extra.to_owned() }
    }
}

/// A gateway, its simulators and its dispatcher.
pub struct DeliveryApp {
    /// The gateway.
    pub app: TestApp,
    /// A token of the tenant `acme`.
    pub token: String,
    /// The tenant's id.
    pub tenant_id: String,
    /// One simulator per target, in the order given.
    pub sims: Vec<Sim>,
    /// The targets the dispatcher delivers to (their rate limiters are the dispatcher's).
    pub targets: Arc<Targets>,
    /// The schemas.
    pub schemas: Arc<scimgw_scim::schema::Registry>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Fast retries for tests: 50 ms doubling to 1 s.
pub const FAST_RETRY: &str = "backoff_base_ms = 50\nbackoff_max_ms = 1000\n";

impl DeliveryApp {
    /// Starts everything; `None` when `backend` is not configured here.
    pub async fn spawn(backend: Backend, targets: Vec<TargetSpec>) -> Option<DeliveryApp> {
        let holder = Arc::new(Targets::default());
        let wake = Arc::new(Notify::new());
        let app = TestApp::spawn_with_targets(backend, |_| {}, holder.clone(), wake.clone()).await?;
        let token = app.token("acme");
        let tenant = app.store().tenant_by_name("acme").expect("reading tenants").expect("the tenant exists");
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut toml = String::new();
        let mut sims = Vec::new();
        for spec in &targets {
            let sim = Sim::start(SimConfig::with_profile(spec.profile.build())).expect("the simulator starts");
            let token_file = dir.path().join(format!("{}.token", spec.name));
            std::fs::write(&token_file, sim.token()).expect("writing the token file");
            toml.push_str(&format!(
                "[[targets]]\nname = \"{}\"\nkind = \"{}\"\nbase_url = \"{}{}\"\ntoken_file = \"{}\"\n{}\n\n",
                spec.name,
                spec.kind,
                sim.base_url(),
                spec.url_suffix,
                token_file.display(),
                spec.extra
            ));
            sims.push(sim);
        }
        std::fs::write(dir.path().join("acme.toml"), toml).expect("writing the tenant file");
        let schemas = Arc::new(scimgw_delivery::schema_registry());
        let (set, problems) = TargetSet::load(dir.path(), std::slice::from_ref(&tenant), &adapter_registry(), &schemas);
        let errors: Vec<String> = problems.iter().filter(|p| !p.warning).map(ToString::to_string).collect();
        assert!(errors.is_empty(), "the tenant file is valid: {errors:?}");
        holder.replace(set);
        let (stop, stopped) = watch::channel(false);
        let config = DispatcherConfig { poll_ms: 20, lease_secs: 30, ..DispatcherConfig::default() };
        let dispatcher = Arc::new(Dispatcher::new(app.store().clone(), holder.clone(), schemas.clone(), config, wake));
        actix_web::rt::spawn(dispatcher.run(stopped));
        Some(DeliveryApp { app, token, tenant_id: tenant.id, sims, targets: holder, schemas, stop, _dir: dir })
    }

    /// The first simulator.
    pub fn sim(&self) -> &Sim {
        &self.sims[0]
    }

    /// Every delivery of the tenant, newest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.app
            .store()
            .deliveries(&DeliveryFilter {
                tenant_id: Some(&self.tenant_id),
                limit: 10_000,
                ..DeliveryFilter::default()
            })
            .expect("reading deliveries")
    }

    /// Waits until no delivery is pending or failed (or `timeout` passes); whether it got there.
    pub async fn settled(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let busy =
                self.deliveries().iter().any(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Failed));
            if !busy {
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `cond` holds (or `timeout` passes); whether it did.
    pub async fn until(&self, timeout: Duration, cond: impl Fn(&DeliveryApp) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !cond(self) {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

impl Drop for DeliveryApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The most requests in `log` that arrived within any one second (rate-limit checks).
pub fn busiest_second(log: &[vendor_sim::RecordedRequest]) -> usize {
    let mut at: Vec<_> = log.iter().map(|r| r.at).collect();
    at.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..at.len() {
        while at[end].duration_since(at[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

/// `both_backends_delivery!(name, [targets…])`: `name::sqlite` and `name::postgres` of an
/// `async fn name(app: DeliveryApp)`.
#[macro_export]
macro_rules! both_backends_delivery {
    ($name:ident, $targets:expr) => {
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let app = $crate::delivery::DeliveryApp::spawn($crate::Backend::Sqlite, $targets)
                    .await
                    .expect("SQLite is always available");
                super::$name(app).await;
            }

            #[actix_web::test]
            async fn postgres() {
                let Some(app) = $crate::delivery::DeliveryApp::spawn($crate::Backend::Postgres, $targets).await else {
                    return;
                };
                super::$name(app).await;
            }
        }
    };
}
