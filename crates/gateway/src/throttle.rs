//! Failed-authentication throttling: a client that keeps presenting bad tokens is answered 429
//! for a while, without a store lookup, while clients with good tokens are not slowed.
//!
//! - Clients are told apart by IP address: the peer's, or — when the peer is one of
//!   `trusted_proxies` — the nearest untrusted address of `X-Forwarded-For`. Behind a reverse
//!   proxy that is not listed, every client shares the proxy's address.
//! - Each failed authentication takes a cell from the client's budget (`auth.failures_per_minute`,
//!   with `auth.failure_burst` at once, GCRA from `governor`). When none is left, that failure and
//!   every request of the client until a cell is free again are answered 429 with `Retry-After`.
//! - A token that authenticated within the last ten minutes is still checked normally while its
//!   client is paused (revocation stays immediate): so a flood of bad tokens through a shared
//!   proxy address cannot lock out an identity provider whose token is good.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `[auth]`: failed-authentication throttling, and how long a good key is remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed authentications one client may have per minute, sustained; 0 switches throttling off.
    pub failures_per_minute: u32,
    /// Failed authentications one client may have at once before the per-minute rate applies.
    pub failure_burst: u32,
    /// How long a key that authenticated is trusted without reading the store again (the secret
    /// presented is still checked on every request): a revoked key, or a removed tenant, is
    /// refused within this time. 0: read the store on every request.
    pub key_cache_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { failures_per_minute: 30, failure_burst: 10, key_cache_ms: 1000 }
    }
}

/// How long a token that authenticated is remembered as good.
const GOOD_FOR: Duration = Duration::from_secs(600);
/// Entries kept in each map before expired ones are swept out.
const SWEEP_AT: usize = 10_000;

/// The throttle's state, shared by the workers.
pub(crate) struct AuthThrottle {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Whether any client was ever paused: until then the hot path takes no lock.
    any_paused: AtomicBool,
    paused: Mutex<HashMap<IpAddr, Instant>>,
    /// Tokens (by digest) that authenticated, and when that was last recorded.
    good: RwLock<HashMap<[u8; 32], Instant>>,
}

impl std::fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthThrottle").field("enabled", &self.limiter.is_some()).finish_non_exhaustive()
    }
}

impl AuthThrottle {
    pub(crate) fn new(config: &AuthConfig) -> Self {
        let limiter = NonZeroU32::new(config.failures_per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(config.failure_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        Self {
            limiter,
            any_paused: AtomicBool::new(false),
            paused: Mutex::new(HashMap::new()),
            good: RwLock::new(HashMap::new()),
        }
    }

    /// Whether a request from `client` presenting `header` must be answered 429 now, without being
    /// checked; `Some(seconds to wait)` if so.
    pub(crate) fn refuse(&self, client: IpAddr, header: Option<&str>) -> Option<u64> {
        self.limiter.as_ref()?;
        if !self.any_paused.load(Ordering::Relaxed) {
            return None;
        }
        let now = Instant::now();
        let until = {
            let paused = self.paused.lock().ok()?;
            *paused.get(&client).filter(|until| **until > now)?
        };
        if let Some(h) = header {
            let good = self.good.read().ok()?;
            if good.get(&digest(h)).is_some_and(|at| now.duration_since(*at) < GOOD_FOR) {
                return None;
            }
        }
        Some(until.saturating_duration_since(now).as_secs().max(1))
    }

    /// Records a successful authentication with `header`.
    pub(crate) fn succeeded(&self, header: &str) {
        if self.limiter.is_none() {
            return;
        }
        let now = Instant::now();
        let key = digest(header);
        // Every request of a busy client lands here: read first, write only to refresh an entry
        // older than a minute.
        if let Ok(good) = self.good.read() {
            if good.get(&key).is_some_and(|at| now.duration_since(*at) < Duration::from_secs(60)) {
                return;
            }
        }
        if let Ok(mut good) = self.good.write() {
            if good.len() >= SWEEP_AT {
                good.retain(|_, at| now.duration_since(*at) < GOOD_FOR);
            }
            good.insert(key, now);
        }
    }

    /// Records a failed authentication from `client`; `Some(seconds to wait)` when it used up the
    /// client's budget, and the answer must be 429 instead of 401.
    pub(crate) fn failed(&self, client: IpAddr) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        let not_until = limiter.check_key(&client).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let now = Instant::now();
        if let Ok(mut paused) = self.paused.lock() {
            if paused.len() >= SWEEP_AT {
                paused.retain(|_, until| *until > now);
                limiter.retain_recent();
            }
            paused.insert(client, now + wait);
            self.any_paused.store(true, Ordering::Relaxed);
        }
        Some(wait.as_secs().max(1))
    }
}

fn digest(header: &str) -> [u8; 32] {
    Sha256::digest(header.as_bytes()).into()
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not one (read from the right, as each proxy appends its peer).
pub(crate) fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(chain) = forwarded_for else { return Some(peer) };
    let mut nearest = peer;
    for hop in chain.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => nearest = ip,
            Ok(ip) => return Some(ip),
            // An entry that is not an address (a port, `unknown`): stop at what we know.
            Err(_) => return Some(nearest),
        }
    }
    Some(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        assert_eq!(client_ip(Some(ip("1.2.3.4")), Some("9.9.9.9"), &[proxy]), Some(ip("1.2.3.4")), "spoofed header");
        assert_eq!(client_ip(Some(proxy), Some("9.9.9.9, 5.6.7.8"), &[proxy]), Some(ip("5.6.7.8")));
        assert_eq!(client_ip(Some(proxy), Some("5.6.7.8, 10.0.0.2"), &[proxy, ip("10.0.0.2")]), Some(ip("5.6.7.8")));
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), Some(proxy));
        assert_eq!(client_ip(Some(proxy), Some("garbage"), &[proxy]), Some(proxy));
        assert_eq!(client_ip(None, None, &[]), None);
    }

    #[test]
    fn failures_beyond_the_burst_pause_the_client_but_not_a_known_good_token() {
        let t = AuthThrottle::new(&AuthConfig { failures_per_minute: 1, failure_burst: 3, ..AuthConfig::default() });
        let (bad, other) = (ip("1.1.1.1"), ip("2.2.2.2"));
        t.succeeded("Bearer good");
        for _ in 0..3 {
            assert_eq!(t.failed(bad), None);
        }
        assert!(t.failed(bad).is_some_and(|s| s >= 1), "the fourth failure is over the burst");
        assert!(t.refuse(bad, Some("Bearer guess")).is_some());
        assert!(t.refuse(bad, None).is_some());
        assert_eq!(t.refuse(bad, Some("Bearer good")), None, "a token that worked is still checked");
        assert_eq!(t.refuse(other, Some("Bearer guess")), None, "other clients are not paused");
        let off = AuthThrottle::new(&AuthConfig { failures_per_minute: 0, failure_burst: 3, ..AuthConfig::default() });
        assert!((0..100).all(|_| off.failed(bad).is_none()));
    }
}
