#![doc = include_str!("../README.md")]

mod admin;
pub mod faults;
mod http;
pub mod log;
mod patch;
pub mod profile;
mod server;
mod store;

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use actix_web::HttpRequest;
use scimgw_scim::ScimError;
use scimgw_scim::schema::{Registry, RegistryError};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

pub use crate::faults::{Faults, InjectedError, InjectedFault, Outage, OutageMode, RateLimit, Scope};
pub use crate::log::RecordedRequest;
pub use crate::patch::PatchTarget;
pub use crate::profile::{
    AAD_OPT_FLAG, GenericProfile, JOSTLE_USER_SCHEMA, JOYN_FSM_USER_SCHEMA, JostleProfile, JoynFsmProfile,
    JumpCloudProfile, Kind, Profile, ProfileKind, RequestInfo, Write,
};
use crate::server::Control;
use crate::store::{Ctx, Store};

/// The token a [`SimConfig::default`] requires.
pub const DEFAULT_TOKEN: &str = "vendor-sim-token";

/// How long the library waits for the simulator's thread to answer a control message.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start a simulator.
#[derive(Clone)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` (a free loopback port) by default.
    pub listen: SocketAddr,
    /// The bearer token every SCIM request must carry (401 otherwise).
    pub token: String,
    /// The path the SCIM API is served under, `/scim/v2` by default.
    pub base_path: String,
    /// The app being simulated.
    pub profile: Arc<dyn Profile>,
    /// The faults in force from the start.
    pub faults: Faults,
    /// actix worker threads; one is plenty for tests, as every handler is quick and async.
    pub workers: usize,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: DEFAULT_TOKEN.to_owned(),
            base_path: "/scim/v2".to_owned(),
            profile: Arc::new(GenericProfile),
            faults: Faults::default(),
            workers: 1,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

impl SimConfig {
    /// The default configuration with this profile.
    pub fn with_profile(profile: Arc<dyn Profile>) -> Self {
        Self { profile, ..Self::default() }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .field("base_path", &self.base_path)
            .field("profile", &self.profile.name())
            .field("faults", &self.faults)
            .field("workers", &self.workers)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// Why the simulator could not start or take a setting.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The simulator's thread could not be started.
    #[error("starting the simulator thread: {0}")]
    Thread(io::Error),
    /// The profile's extension schemas do not fit the registry.
    #[error("profile {profile}: {source}")]
    Profile {
        /// The profile's name.
        profile: &'static str,
        /// The cause.
        source: RegistryError,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A [`Faults`] value is out of range.
    #[error("invalid faults: {0}")]
    InvalidFaults(String),
    /// The simulator's thread is gone.
    #[error("the simulator has stopped")]
    Stopped,
}

/// What the simulator's thread and the [`Sim`] handle share.
pub(crate) struct State {
    pub store: Store,
    pub log: Vec<RecordedRequest>,
    pub next_seq: u64,
    pub faults: faults::FaultState,
}

pub(crate) struct Shared {
    pub token: String,
    pub base_path: String,
    pub profile: Arc<dyn Profile>,
    pub registry: Registry,
    pub started: Instant,
    pub max_body_bytes: usize,
    /// `http://127.0.0.1:<port>`, known once bound.
    origin: OnceLock<String>,
    /// `origin` + `base_path`.
    base_url: OnceLock<String>,
    state: Mutex<State>,
    control: UnboundedSender<Control>,
    /// Woken whenever the log changes, for [`Sim::wait_until`].
    changed: Notify,
}

impl Shared {
    /// The state. A panic while it was held cannot leave it half-written (every write is one
    /// assignment or a complete store operation), so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            registry: &self.registry,
            profile: self.profile.as_ref(),
            base_url: self.base_url.get().map_or("", String::as_str),
        }
    }

    pub(crate) fn set_origin(&self, addr: SocketAddr) {
        let origin = format!("http://{addr}");
        let _ = self.base_url.set(format!("{origin}{}", self.base_path));
        let _ = self.origin.set(origin);
    }

    /// The path below the base path (`/Users/abc`), or `None` outside it.
    pub(crate) fn relative_path<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.base_path.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    pub(crate) fn record_start(
        &self,
        req: &HttpRequest,
        headers: &[(String, String)],
        body: &[u8],
        authenticated: bool,
    ) -> u64 {
        let mut st = self.lock();
        st.next_seq += 1;
        let seq = st.next_seq;
        st.log.push(RecordedRequest {
            seq,
            method: req.method().as_str().to_owned(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: headers.to_vec(),
            body: String::from_utf8_lossy(body).into_owned(),
            authenticated,
            at: Instant::now(),
            time: SystemTime::now(),
            status: None,
            fault: None,
        });
        drop(st);
        self.changed.notify_waiters();
        seq
    }

    pub(crate) fn record_finish(&self, seq: u64, status: u16, fault: Option<InjectedFault>) {
        let mut st = self.lock();
        // The log is in seq order; a reset in the meantime may have removed the entry.
        if let Ok(i) = st.log.binary_search_by_key(&seq, |r| r.seq) {
            st.log[i].status = Some(status);
            st.log[i].fault = fault;
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Records the fault of a request that is being held without an answer.
    pub(crate) fn mark_fault(&self, seq: u64, fault: InjectedFault) {
        let mut st = self.lock();
        if let Ok(i) = st.log.binary_search_by_key(&seq, |r| r.seq) {
            st.log[i].fault = Some(fault);
        }
    }

    pub(crate) fn install_faults(&self, faults: Faults) {
        self.lock().faults = faults::FaultState::new(faults);
    }

    pub(crate) fn clear_all(&self) {
        let mut st = self.lock();
        st.store.clear();
        st.log.clear();
        st.faults = faults::FaultState::default();
    }

    pub(crate) fn insert(&self, kind: Kind, mut value: Value) -> Result<Value, ScimError> {
        let wanted_id = value.as_object_mut().and_then(|o| o.remove("id")).and_then(|v| v.as_str().map(str::to_owned));
        let ctx = self.ctx();
        self.lock().store.create(&ctx, kind, value, wanted_id)
    }

    /// A PATCH made inside the app (an admin editing a user), not through its API.
    pub(crate) fn edit(&self, kind: Kind, id: &str, operations: Value) -> Result<Value, ScimError> {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        let ctx = self.ctx();
        self.lock().store.patch(&ctx, kind, id, &body)
    }

    /// A resource removed inside the app.
    pub(crate) fn remove(&self, kind: Kind, id: &str) -> Result<(), ScimError> {
        let ctx = self.ctx();
        self.lock().store.delete(&ctx, kind, id)
    }

    /// Tells the supervisor to follow the faults, a moment from now: called from an admin request,
    /// whose own response must leave before a `refuse` outage closes the port.
    pub(crate) fn reconcile_soon(&self) {
        let control = self.control.clone();
        actix_web::rt::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = control.send(Control::Reconcile(None));
        });
    }

    /// Tells the supervisor to follow the faults and waits until it has.
    fn reconcile(&self) -> Result<(), SimError> {
        let (tx, rx) = std_mpsc::channel();
        self.control.send(Control::Reconcile(Some(tx))).map_err(|_| SimError::Stopped)?;
        rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| SimError::Stopped)
    }

    pub(crate) fn service_provider_config(&self) -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://github.com/scimgw/scimgw/tree/main/crates/vendor-sim",
            "patch": {"supported": true},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": self.profile.max_page_size()},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "Authorization: Bearer <the simulator's token>",
                "primary": true
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", self.base_url.get().map_or("", String::as_str))
            }
        })
    }

    fn served(&self, resource_type: &str) -> bool {
        resource_type.eq_ignore_ascii_case("User")
            || (resource_type.eq_ignore_ascii_case("Group") && self.profile.supports_groups())
    }

    pub(crate) fn resource_types(&self) -> Value {
        let items = self
            .registry
            .resource_types()
            .iter()
            .filter(|rt| self.served(&rt.name))
            .map(|rt| {
                let kind = if rt.name.eq_ignore_ascii_case("Group") { Kind::Group } else { Kind::User };
                let accepted = self.profile.accepted_extensions(kind);
                let mut v = serde_json::to_value(rt).unwrap_or(Value::Null);
                if let Value::Object(obj) = &mut v {
                    if let Some(Value::Array(exts)) = obj.get_mut("schemaExtensions") {
                        exts.retain(|e| {
                            e.get("schema")
                                .and_then(Value::as_str)
                                .is_some_and(|urn| accepted.iter().any(|a| a.eq_ignore_ascii_case(urn)))
                        });
                    }
                    obj.insert("schemas".into(), json!(["urn:ietf:params:scim:schemas:core:2.0:ResourceType"]));
                }
                v
            })
            .collect();
        http::list_of(items)
    }

    pub(crate) fn schemas(&self) -> Value {
        let mut accepted: Vec<String> = Vec::new();
        for rt in self.registry.resource_types().iter().filter(|rt| self.served(&rt.name)) {
            let kind = if rt.name.eq_ignore_ascii_case("Group") { Kind::Group } else { Kind::User };
            accepted.push(rt.schema.clone());
            accepted.extend(self.profile.accepted_extensions(kind));
        }
        let items = self
            .registry
            .schemas()
            .iter()
            .filter(|s| accepted.iter().any(|a| a.eq_ignore_ascii_case(&s.id)))
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                if let Value::Object(obj) = &mut v {
                    obj.insert("schemas".into(), json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"]));
                }
                v
            })
            .collect();
        http::list_of(items)
    }
}

/// A running simulated SCIM app. Dropping it stops it.
pub struct Sim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("addr", &self.addr).field("profile", &self.shared.profile.name()).finish()
    }
}

impl Sim {
    /// Binds `config.listen` and serves on a thread of its own, so that it works from any test
    /// runtime (`#[tokio::test]`, `#[actix_web::test]`) or none. Returns once the port accepts
    /// connections.
    pub fn start(config: SimConfig) -> Result<Sim, SimError> {
        let base_path = config.base_path.trim_end_matches('/').to_owned();
        if !(base_path.is_empty() || base_path.starts_with('/')) || base_path.starts_with("/_sim") {
            return Err(SimError::Config("base_path must start with '/' and not be under /_sim".into()));
        }
        config.faults.validate().map_err(SimError::InvalidFaults)?;
        let mut registry = Registry::default();
        for (schema, resource_type) in config.profile.extension_schemas() {
            registry
                .register_extension(schema, resource_type)
                .map_err(|source| SimError::Profile { profile: config.profile.name(), source })?;
        }
        let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            token: config.token,
            base_path,
            profile: config.profile,
            registry,
            started: Instant::now(),
            max_body_bytes: config.max_body_bytes,
            origin: OnceLock::new(),
            base_url: OnceLock::new(),
            state: Mutex::new(State {
                store: Store::default(),
                log: Vec::new(),
                next_seq: 0,
                faults: faults::FaultState::new(config.faults),
            }),
            control: control_tx,
            changed: Notify::new(),
        });
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let (listen, workers) = (config.listen, config.workers);
        let thread = std::thread::Builder::new()
            .name("vendor-sim".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(server::supervise(
                    thread_shared,
                    listen,
                    workers,
                    control_rx,
                    ready_tx,
                ));
            })
            .map_err(SimError::Thread)?;
        let addr = match ready_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(source)) => {
                let _ = thread.join();
                return Err(SimError::Bind { addr: listen, source });
            }
            Err(_) => {
                let _ = thread.join();
                return Err(SimError::Stopped);
            }
        };
        let sim = Sim { shared, addr, thread: Some(thread) };
        // Faults given at start may open with a `refuse` outage.
        sim.shared.reconcile()?;
        Ok(sim)
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`: where the admin API lives (`/_sim/…`).
    pub fn origin(&self) -> String {
        self.shared.origin.get().cloned().unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>/scim/v2`: the "Tenant URL" to configure a client with. Query
    /// suffixes such as `?aadOptscim062020` may be added; the app ignores them.
    pub fn base_url(&self) -> String {
        self.shared.base_url.get().cloned().unwrap_or_default()
    }

    /// The bearer token the app requires.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The profile being simulated.
    pub fn profile(&self) -> &dyn Profile {
        self.shared.profile.as_ref()
    }

    /// Every user in the store, as `GET` returns them, in creation order.
    pub fn users(&self) -> Vec<Value> {
        self.shared.lock().store.snapshot(Kind::User)
    }

    /// Every group in the store, as `GET` returns them, in creation order.
    pub fn groups(&self) -> Vec<Value> {
        self.shared.lock().store.snapshot(Kind::Group)
    }

    /// One user by id.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.shared.lock().store.find(Kind::User, id)
    }

    /// One group by id.
    pub fn group(&self, id: &str) -> Option<Value> {
        self.shared.lock().store.find(Kind::Group, id)
    }

    /// The user whose `userName` is `user_name`, ignoring case (as the app's uniqueness does).
    pub fn user_by_username(&self, user_name: &str) -> Option<Value> {
        self.users().into_iter().find(|u| {
            u.get("userName").and_then(Value::as_str).is_some_and(|n| n.to_lowercase() == user_name.to_lowercase())
        })
    }

    /// Pre-seeds a user, as if it had been created in the app before the test (adoption tests).
    /// The same validation and rules as a `POST` apply; an `id` in the body is kept. Not recorded
    /// in the request log.
    pub fn insert_user(&self, user: Value) -> Result<Value, ScimError> {
        self.shared.insert(Kind::User, user)
    }

    /// Changes a user as an admin of the app would, inside it: a SCIM PATCH's `Operations`
    /// applied with the app's own rules, not recorded in the request log (drift tests).
    pub fn edit_user(&self, id: &str, operations: Value) -> Result<Value, ScimError> {
        self.shared.edit(Kind::User, id, operations)
    }

    /// Removes a user inside the app, not recorded in the request log.
    pub fn remove_user(&self, id: &str) -> Result<(), ScimError> {
        self.shared.remove(Kind::User, id)
    }

    /// Pre-seeds a group; see [`Sim::insert_user`].
    pub fn insert_group(&self, group: Value) -> Result<Value, ScimError> {
        self.shared.insert(Kind::Group, group)
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    /// Empties the request log (sequence numbers go on).
    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Waits until `done` holds for the request log, or `timeout` passes; whether it held. Any
    /// tokio-based runtime will do. Use it instead of sleeping while something else (the
    /// gateway's dispatcher) sends the requests.
    pub async fn wait_until(&self, timeout: Duration, done: impl Fn(&[RecordedRequest]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between the check and the wait still wakes us.
            notified.as_mut().enable();
            if done(&self.shared.lock().log) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.shared.lock().log);
            }
        }
    }

    /// Waits until the log holds at least `n` answered requests.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |log| log.iter().filter(|r| r.status.is_some()).count() >= n).await
    }

    /// The faults in force, counters as they stand.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.faults().clone()
    }

    /// Replaces the faults, resetting counters, the `error_rate` PRNG and the rate-limit window.
    /// Returns once they are in force: after a `refuse` outage, the port is already closed.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        faults.validate().map_err(SimError::InvalidFaults)?;
        self.shared.install_faults(faults);
        self.shared.reconcile()
    }

    /// Clears every fault; the port is open again when this returns.
    pub fn clear_faults(&self) -> Result<(), SimError> {
        self.set_faults(Faults::default())
    }

    /// Empties the store and the request log and clears the faults.
    pub fn reset(&self) -> Result<(), SimError> {
        self.shared.clear_all();
        self.shared.reconcile()
    }

    /// Stops serving and waits for the simulator's thread to end. Requests still held are dropped.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        let (tx, rx) = std_mpsc::channel();
        if self.shared.control.send(Control::Stop(tx)).is_ok() && rx.recv_timeout(CONTROL_TIMEOUT).is_ok() {
            let _ = thread.join();
        }
        // Otherwise the thread is stuck or gone; it is detached rather than joined forever.
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown();
    }
}
