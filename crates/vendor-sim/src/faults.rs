//! Fault injection: what to break ([`Faults`], plain data that serialises for the admin API) and
//! the per-request decision that applies it (`FaultState`, crate-private).
//!
//! Every fault is deterministic: counters (`fail_next`, `throttle_next`, `hang_next`) say exactly
//! which requests fail, and `error_rate` draws from a PRNG seeded by `seed`, so the same requests
//! in the same order fail the same way on every run.
//!
//! The order of decisions for a request inside [`Scope`] is fixed and documented here, because a
//! test that combines faults relies on it:
//!
//! 1. `outage` (before authentication, as a load balancer in front of the app would answer);
//! 2. authentication (401), done by the server, not here;
//! 3. `latency_ms` (or a draw up to `latency_max_ms`), added to whatever follows;
//! 4. `hang_next`, then `throttle_next`, then `rate_limit`, then `fail_next`, then `error_rate`;
//! 5. the request is served.
//!
//! Unauthenticated requests consume no counter. Requests outside [`Scope`] get no fault at all,
//! except that a `refuse` outage closes the port for everyone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The longest a request that slipped in during a `refuse` outage is held (see
/// [`FaultState::outage`]).
const REFUSE_HOLD_MAX: Duration = Duration::from_secs(5);

/// What to break. `Faults::default()` breaks nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Which requests the faults apply to (all SCIM requests by default).
    pub scope: Scope,
    /// Delay added to every request in scope, in milliseconds.
    pub latency_ms: u64,
    /// With a value above `latency_ms`: each request's delay is drawn uniformly between
    /// `latency_ms` and this (from the same PRNG as `error_rate`), as a slow app's is.
    pub latency_max_ms: Option<u64>,
    /// Fail exactly the next `n` requests with [`Faults::error`].
    pub fail_next: u32,
    /// Fail this fraction (0.0 to 1.0) of requests with [`Faults::error`], drawn from a PRNG
    /// seeded by [`Faults::seed`].
    pub error_rate: f64,
    /// Seed of the `error_rate` PRNG.
    pub seed: u64,
    /// The reply of `fail_next` and `error_rate`: 500 by default.
    pub error: InjectedError,
    /// Answer exactly the next `n` requests with `429 Too Many Requests` and
    /// `Retry-After: retry_after_secs`.
    pub throttle_next: u32,
    /// The `Retry-After` of `throttle_next`, in seconds.
    pub retry_after_secs: u64,
    /// A real rate limit: 429 once more than `max_requests` arrive within `window_ms`.
    pub rate_limit: Option<RateLimit>,
    /// Hold exactly the next `n` requests for `hang_ms` (longer than the client's timeout).
    pub hang_next: u32,
    /// How long a hung request is held, in milliseconds.
    pub hang_ms: u64,
    /// `false` (default): a hung request is never applied and, if the client is still waiting
    /// after `hang_ms`, gets `504`. `true`: it is applied first and its real response is sent
    /// after `hang_ms` — the "the app did it but the answer was lost" case.
    pub hang_after_apply: bool,
    /// A window during which the app is down.
    pub outage: Option<Outage>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            scope: Scope::default(),
            latency_ms: 0,
            latency_max_ms: None,
            fail_next: 0,
            error_rate: 0.0,
            seed: 0,
            error: InjectedError::default(),
            throttle_next: 0,
            retry_after_secs: 1,
            rate_limit: None,
            hang_next: 0,
            hang_ms: 30_000,
            hang_after_apply: false,
            outage: None,
        }
    }
}

impl Faults {
    /// Checks ranges: `error_rate` in 0..=1, statuses that are errors, a rate limit that admits
    /// something. The admin API answers 400 with this message.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err("error_rate must be between 0.0 and 1.0".into());
        }
        if !(400..=599).contains(&self.error.status) {
            return Err("error.status must be a 4xx or 5xx status".into());
        }
        if let Some(rl) = &self.rate_limit {
            if rl.max_requests == 0 || rl.window_ms == 0 {
                return Err("rate_limit needs max_requests and window_ms above 0".into());
            }
        }
        Ok(())
    }

    /// Whether these faults close the port with no end: nothing served on that port — the admin
    /// API included — could open it again, so the admin API and the binary refuse them.
    pub fn refuses_forever(&self) -> bool {
        self.outage.as_ref().is_some_and(|o| o.mode == OutageMode::Refuse && o.duration_ms.is_none())
    }
}

/// Which requests faults apply to. Empty means every SCIM request; the admin API under `/_sim/`
/// is never faulted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// HTTP methods (any case); empty means all.
    pub methods: Vec<String>,
    /// A prefix of the path below the base path, such as `/Users`; `None` means all.
    pub path_prefix: Option<String>,
}

impl Scope {
    fn matches(&self, method: &str, rel_path: &str) -> bool {
        let method_ok = self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
        let path_ok = self.path_prefix.as_deref().is_none_or(|p| {
            rel_path.len() >= p.len()
                && rel_path.is_char_boundary(p.len())
                && rel_path[..p.len()].eq_ignore_ascii_case(p)
        });
        method_ok && path_ok
    }
}

/// An error reply: the status and the SCIM Error body a vendor would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectedError {
    /// The HTTP status: 500 and 503 are transient, 400 says the data is wrong.
    pub status: u16,
    /// The `scimType` of the body, e.g. `invalidValue` for a permanent 400.
    pub scim_type: Option<String>,
    /// The vendor's message, as the `detail` of the body.
    pub detail: String,
    /// A `Retry-After` header, in seconds (a 503 that says when to come back).
    pub retry_after_secs: Option<u64>,
}

impl Default for InjectedError {
    fn default() -> Self {
        Self::new(500, "vendor-sim: injected internal server error")
    }
}

impl InjectedError {
    /// An error with this status and vendor message.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self { status, scim_type: None, detail: detail.into(), retry_after_secs: None }
    }

    /// A permanent `400 invalidValue` carrying the vendor's message: the data is wrong, do not retry.
    pub fn permanent(detail: impl Into<String>) -> Self {
        Self { scim_type: Some("invalidValue".into()), ..Self::new(400, detail) }
    }

    /// `503` with `Retry-After`.
    pub fn unavailable(retry_after_secs: u64) -> Self {
        Self { retry_after_secs: Some(retry_after_secs), ..Self::new(503, "vendor-sim: injected service unavailable") }
    }
}

/// A rate limit over a sliding window. Only admitted requests count, so a client that waits
/// `Retry-After` gets through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests admitted per window.
    pub max_requests: u32,
    /// The window, in milliseconds (1,000 = per second).
    #[serde(default = "one_second_ms")]
    pub window_ms: u64,
    /// A fixed `Retry-After`; by default the seconds until the window admits again, rounded up.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn one_second_ms() -> u64 {
    1_000
}

impl RateLimit {
    /// At most `max_requests` per second.
    pub fn per_second(max_requests: u32) -> Self {
        Self { max_requests, window_ms: one_second_ms(), retry_after_secs: None }
    }
}

/// How the app is down during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// Every request in scope gets `503 Service Unavailable`.
    #[default]
    Unavailable,
    /// The port is closed: connections are refused (open ones are dropped). It opens again on the
    /// same port when the window ends or the faults change.
    Refuse,
}

/// An outage window, measured from the moment the faults are set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outage {
    /// How the app is down.
    pub mode: OutageMode,
    /// When the window opens, in milliseconds after the faults are set.
    pub starts_after_ms: u64,
    /// How long it lasts; `None` until the faults change.
    pub duration_ms: Option<u64>,
    /// `Retry-After` on the 503s; by default the seconds left in the window, rounded up (none
    /// when the window has no end).
    pub retry_after_secs: Option<u64>,
}

impl Outage {
    /// Down from now until the faults change.
    pub fn indefinite(mode: OutageMode) -> Self {
        Self { mode, ..Self::default() }
    }

    /// Down from now for `duration` (millisecond precision).
    pub fn lasting(mode: OutageMode, duration: Duration) -> Self {
        Self { mode, duration_ms: Some(millis(duration)), ..Self::default() }
    }

    /// Down from now until `until`, counted from the moment this is called (millisecond precision).
    pub fn until(mode: OutageMode, until: Instant) -> Self {
        Self::lasting(mode, until.saturating_duration_since(Instant::now()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Which fault shaped a response, as the request log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectedFault {
    /// An outage window's 503.
    Outage,
    /// A held request (`hang_next`).
    Hang,
    /// A forced 429 (`throttle_next`).
    Throttled,
    /// A 429 of the rate limit.
    RateLimited,
    /// `fail_next` or `error_rate`.
    Error,
}

/// An answer decided by a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultReply {
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: String,
    pub retry_after_secs: Option<u64>,
    pub fault: InjectedFault,
}

/// What to do with an authenticated request in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Serve it.
    Serve,
    /// Hold it for the duration; serve it first when `after_apply`.
    Hang { hold: Duration, after_apply: bool },
    /// Answer with an injected error.
    Reply(FaultReply),
}

/// The faults in force and their running counters.
#[derive(Debug)]
pub(crate) struct FaultState {
    faults: Faults,
    set_at: Instant,
    rng: u64,
    admitted: VecDeque<Instant>,
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new(Faults::default())
    }
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> Self {
        Self { rng: faults.seed, faults, set_at: Instant::now(), admitted: VecDeque::new() }
    }

    /// The faults with the counters as they stand now.
    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The outage window in force: its mode, start and end.
    fn window(&self) -> Option<(OutageMode, Instant, Option<Instant>)> {
        let o = self.faults.outage.as_ref()?;
        let start = self.set_at + Duration::from_millis(o.starts_after_ms);
        Some((o.mode, start, o.duration_ms.map(|d| start + Duration::from_millis(d))))
    }

    /// Whether the port must be closed at `now`, and when that next changes.
    pub(crate) fn refuse_schedule(&self, now: Instant) -> (bool, Option<Instant>) {
        match self.window() {
            Some((OutageMode::Refuse, start, _)) if now < start => (false, Some(start)),
            Some((OutageMode::Refuse, _, Some(end))) if now >= end => (false, None),
            Some((OutageMode::Refuse, _, end)) => (true, end),
            _ => (false, None),
        }
    }

    /// Step 1: the outage's answer for a request in scope, and how long to hold the request first.
    ///
    /// During a `refuse` outage the port is closed, but a request can still arrive on a connection
    /// that was open before, while the server is shutting down. It gets no answer: it is held
    /// until its connection is dropped — which is what the client of a vanished app sees — or, if
    /// the port somehow stays open, until the window ends ([`REFUSE_HOLD_MAX`] at most), and then a 503.
    pub(crate) fn outage(&self, now: Instant, method: &str, rel_path: &str) -> Option<(FaultReply, Duration)> {
        let (mode, start, end) = self.window()?;
        let in_window = now >= start && end.is_none_or(|e| now < e);
        if !in_window || (mode == OutageMode::Unavailable && !self.faults.scope.matches(method, rel_path)) {
            return None;
        }
        let configured = self.faults.outage.as_ref().and_then(|o| o.retry_after_secs);
        let retry_after_secs = configured.or_else(|| end.map(|e| ceil_secs(e.saturating_duration_since(now))));
        let hold = match mode {
            OutageMode::Unavailable => Duration::ZERO,
            OutageMode::Refuse => {
                end.map_or(REFUSE_HOLD_MAX, |e| e.saturating_duration_since(now).min(REFUSE_HOLD_MAX))
            }
        };
        let reply = FaultReply {
            status: 503,
            scim_type: None,
            detail: "vendor-sim: the service is in a simulated outage".into(),
            retry_after_secs,
            fault: InjectedFault::Outage,
        };
        Some((reply, hold))
    }

    /// Steps 3 and 4 for an authenticated request: the latency to add and the action. Consumes
    /// counters and PRNG draws.
    pub(crate) fn plan(&mut self, now: Instant, method: &str, rel_path: &str) -> (Duration, Action) {
        if !self.faults.scope.matches(method, rel_path) {
            return (Duration::ZERO, Action::Serve);
        }
        let mut latency_ms = self.faults.latency_ms;
        if let Some(max) = self.faults.latency_max_ms.filter(|max| *max > latency_ms) {
            latency_ms += splitmix64(&mut self.rng) % (max - latency_ms + 1);
        }
        (Duration::from_millis(latency_ms), self.action(now))
    }

    fn action(&mut self, now: Instant) -> Action {
        let f = &mut self.faults;
        if f.hang_next > 0 {
            f.hang_next -= 1;
            return Action::Hang { hold: Duration::from_millis(f.hang_ms), after_apply: f.hang_after_apply };
        }
        if f.throttle_next > 0 {
            f.throttle_next -= 1;
            return Action::Reply(too_many(f.retry_after_secs, InjectedFault::Throttled));
        }
        if let Some(rl) = &f.rate_limit {
            let window = Duration::from_millis(rl.window_ms);
            while self.admitted.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
                self.admitted.pop_front();
            }
            if self.admitted.len() >= rl.max_requests as usize {
                let free_at = self.admitted.front().map_or(now, |t| *t + window);
                let secs = rl.retry_after_secs.unwrap_or_else(|| ceil_secs(free_at.saturating_duration_since(now)));
                return Action::Reply(too_many(secs, InjectedFault::RateLimited));
            }
            self.admitted.push_back(now);
        }
        if f.fail_next > 0 {
            f.fail_next -= 1;
            return Action::Reply(error_reply(&f.error));
        }
        if f.error_rate > 0.0 {
            let draw = splitmix64(&mut self.rng);
            // 53 random bits as a fraction in [0, 1).
            let fraction = (draw >> 11) as f64 / (1u64 << 53) as f64;
            if fraction < f.error_rate {
                return Action::Reply(error_reply(&f.error));
            }
        }
        Action::Serve
    }
}

fn too_many(retry_after_secs: u64, fault: InjectedFault) -> FaultReply {
    FaultReply {
        status: 429,
        scim_type: None,
        detail: "vendor-sim: too many requests; retry after the Retry-After delay".into(),
        retry_after_secs: Some(retry_after_secs),
        fault,
    }
}

fn error_reply(e: &InjectedError) -> FaultReply {
    FaultReply {
        status: e.status,
        scim_type: e.scim_type.clone(),
        detail: e.detail.clone(),
        retry_after_secs: e.retry_after_secs,
        fault: InjectedFault::Error,
    }
}

/// Whole seconds, rounded up, at least 1: `Retry-After: 0` would invite a busy loop.
fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

/// SplitMix64: tiny, fast, and the same sequence on every platform.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_pattern(faults: Faults, n: usize) -> Vec<bool> {
        let mut st = FaultState::new(faults);
        let now = Instant::now();
        (0..n).map(|_| st.plan(now, "GET", "/Users").1 == Action::Serve).collect()
    }

    #[test]
    fn error_rate_is_the_same_for_the_same_seed_and_near_the_rate() {
        let f = Faults { error_rate: 0.3, seed: 42, ..Faults::default() };
        let a = serve_pattern(f.clone(), 1000);
        assert_eq!(a, serve_pattern(f, 1000));
        let failed = a.iter().filter(|ok| !**ok).count();
        assert!((250..350).contains(&failed), "{failed}");
        let other = serve_pattern(Faults { error_rate: 0.3, seed: 43, ..Faults::default() }, 1000);
        assert_ne!(a, other);
    }

    #[test]
    fn latency_is_drawn_between_its_bounds() {
        let mut st =
            FaultState::new(Faults { latency_ms: 100, latency_max_ms: Some(300), seed: 7, ..Faults::default() });
        let now = Instant::now();
        let drawn: Vec<u128> = (0..200).map(|_| st.plan(now, "GET", "/Users").0.as_millis()).collect();
        assert!(drawn.iter().all(|ms| (100..=300).contains(ms)), "{drawn:?}");
        assert!(drawn.iter().any(|ms| *ms < 150) && drawn.iter().any(|ms| *ms > 250), "{drawn:?}");
        let mut fixed = FaultState::new(Faults { latency_ms: 100, latency_max_ms: Some(50), ..Faults::default() });
        assert_eq!(fixed.plan(now, "GET", "/Users").0, Duration::from_millis(100), "a max below the base is ignored");
    }

    #[test]
    fn counters_apply_in_the_documented_order() {
        let mut st = FaultState::new(Faults { hang_next: 1, throttle_next: 1, fail_next: 1, ..Faults::default() });
        let now = Instant::now();
        assert!(matches!(st.plan(now, "GET", "/Users").1, Action::Hang { .. }));
        assert!(matches!(st.plan(now, "GET", "/Users").1, Action::Reply(r) if r.status == 429));
        assert!(matches!(st.plan(now, "GET", "/Users").1, Action::Reply(r) if r.status == 500));
        assert_eq!(st.plan(now, "GET", "/Users").1, Action::Serve);
    }

    #[test]
    fn scope_limits_faults_to_matching_requests() {
        let scope = Scope { methods: vec!["post".into()], path_prefix: Some("/users".into()) };
        let mut st = FaultState::new(Faults { scope, fail_next: 1, ..Faults::default() });
        let now = Instant::now();
        assert_eq!(st.plan(now, "GET", "/Users").1, Action::Serve);
        assert_eq!(st.plan(now, "POST", "/Groups").1, Action::Serve);
        assert!(matches!(st.plan(now, "POST", "/Users").1, Action::Reply(_)));
    }

    #[test]
    fn rate_limit_admits_max_requests_per_window_and_says_when_to_return() {
        let rl = RateLimit { max_requests: 2, window_ms: 10_000, retry_after_secs: None };
        let mut st = FaultState::new(Faults { rate_limit: Some(rl), ..Faults::default() });
        let t0 = Instant::now();
        assert_eq!(st.plan(t0, "GET", "/Users").1, Action::Serve);
        assert_eq!(st.plan(t0, "GET", "/Users").1, Action::Serve);
        let Action::Reply(r) = st.plan(t0 + Duration::from_millis(500), "GET", "/Users").1 else { panic!() };
        assert_eq!((r.status, r.retry_after_secs, r.fault), (429, Some(10), InjectedFault::RateLimited));
        assert_eq!(st.plan(t0 + Duration::from_secs(10), "GET", "/Users").1, Action::Serve);
    }

    #[test]
    fn refuse_schedule_follows_the_window() {
        let outage =
            Outage { mode: OutageMode::Refuse, starts_after_ms: 100, duration_ms: Some(200), ..Outage::default() };
        let st = FaultState::new(Faults { outage: Some(outage), ..Faults::default() });
        let t = st.set_at;
        assert_eq!(st.refuse_schedule(t), (false, Some(t + Duration::from_millis(100))));
        assert_eq!(st.refuse_schedule(t + Duration::from_millis(150)), (true, Some(t + Duration::from_millis(300))));
        assert_eq!(st.refuse_schedule(t + Duration::from_millis(300)), (false, None));
    }

    #[test]
    fn unavailable_outage_gives_the_seconds_left_as_retry_after() {
        let st = FaultState::new(Faults {
            outage: Some(Outage::lasting(OutageMode::Unavailable, Duration::from_millis(2_500))),
            ..Faults::default()
        });
        let (r, hold) = st.outage(st.set_at, "GET", "/Users").unwrap();
        assert_eq!((r.status, r.retry_after_secs, hold), (503, Some(3), Duration::ZERO));
        assert!(st.outage(st.set_at + Duration::from_secs(3), "GET", "/Users").is_none());
    }

    #[test]
    fn faults_round_trip_through_json_with_defaults() {
        let f: Faults = serde_json::from_str(r#"{"fail_next": 2, "error": {"status": 400, "detail": "bad"}}"#).unwrap();
        assert_eq!(f.fail_next, 2);
        assert_eq!(f.error.status, 400);
        assert_eq!(f.hang_ms, 30_000);
        assert!(serde_json::from_str::<Faults>(r#"{"fial_next": 2}"#).is_err());
        let back: Faults = serde_json::from_value(serde_json::to_value(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(Faults { error_rate: 1.5, ..Faults::default() }.validate().is_err());
    }
}
