//! Bearer tokens: `scimgw_<key id>_<secret>` with a 256-bit random secret. The store keeps the key
//! id and the SHA-256 of the secret; the token alone selects the tenant.
//!
//! A slow password hash adds nothing here: the secret is 256 random bits, not a human password,
//! so SHA-256 cannot be brute-forced, and verification stays a few microseconds per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;
use scimgw_store::{NewApiKey, Store, StoreError, Tenant};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix every token starts with; secret scanners can look for it.
pub const TOKEN_PREFIX: &str = "scimgw_";
const KEY_ID_LEN: usize = 12;
const SECRET_BYTES: usize = 32;
const KEY_ID_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A freshly issued key. `token` is shown once and never stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedKey {
    /// The bearer token: `scimgw_<key_id>_<secret>`.
    pub token: String,
    /// The key id, safe to show and log.
    pub key_id: String,
    /// The tenant's name.
    pub tenant: String,
}

/// Issues a key for `tenant`: a random key id and secret; the store receives only the hash.
pub fn issue_key(store: &Store, tenant: &Tenant, label: Option<&str>) -> Result<IssuedKey, StoreError> {
    let mut rng = rand::rng();
    let key_id: String =
        (0..KEY_ID_LEN).map(|_| KEY_ID_ALPHABET[(rng.next_u32() as usize) % KEY_ID_ALPHABET.len()] as char).collect();
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill_bytes(&mut secret);
    let secret_hex = hex(&secret);
    store.insert_api_key(&NewApiKey {
        id: key_id.clone(),
        tenant_id: tenant.id.clone(),
        secret_sha256: sha256(secret_hex.as_bytes()),
        label: label.map(str::to_owned),
    })?;
    Ok(IssuedKey { token: format!("{TOKEN_PREFIX}{key_id}_{secret_hex}"), key_id, tenant: tenant.name.clone() })
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant's id.
    pub tenant_id: String,
    /// The tenant's name.
    pub tenant_name: String,
    /// The key that authenticated the request.
    pub key_id: String,
}

/// Why a request was not authenticated. The client sees one message for all of them (no oracle
/// for which key ids exist); the log sees the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer scimgw_<id>_<secret>`.
    Malformed,
    /// No key with that id, or the secret does not match.
    Unknown,
    /// The key was revoked.
    Revoked,
}

impl AuthFailure {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Unknown => "unknown",
            AuthFailure::Revoked => "revoked",
        }
    }
}

/// Splits an `Authorization` header value into (key id, secret).
pub(crate) fn parse_bearer(header: &str) -> Result<(&str, &str), AuthFailure> {
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Malformed);
    }
    let rest = token.trim().strip_prefix(TOKEN_PREFIX).ok_or(AuthFailure::Malformed)?;
    let (key_id, secret) = rest.split_once('_').ok_or(AuthFailure::Malformed)?;
    let well_formed = key_id.len() == KEY_ID_LEN
        && key_id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b))
        && secret.len() == SECRET_BYTES * 2
        && secret.bytes().all(|b| b.is_ascii_hexdigit());
    if well_formed { Ok((key_id, secret)) } else { Err(AuthFailure::Malformed) }
}

/// Checks a header against the store. Returns the principal, or why not.
pub(crate) fn authenticate(store: &Store, header: Option<&str>) -> Result<Result<Principal, AuthFailure>, StoreError> {
    let Some(header) = header else { return Ok(Err(AuthFailure::Missing)) };
    let (key_id, secret) = match parse_bearer(header) {
        Ok(parts) => parts,
        Err(f) => return Ok(Err(f)),
    };
    let Some((key, tenant)) = store.api_key_with_tenant(key_id)? else {
        return Ok(Err(AuthFailure::Unknown));
    };
    let presented = sha256(secret.to_ascii_lowercase().as_bytes());
    if !bool::from(presented.as_slice().ct_eq(key.secret_sha256.as_slice())) {
        return Ok(Err(AuthFailure::Unknown));
    }
    if key.revoked.is_some() {
        return Ok(Err(AuthFailure::Revoked));
    }
    Ok(Ok(Principal { tenant_id: tenant.id, tenant_name: tenant.name, key_id: key.id }))
}

/// Keys that authenticated in the last `auth.key_cache_ms`, so that the requests of one token cost
/// one store read per interval instead of one each (on PostgreSQL a thread hop and a round trip,
/// half of a GET by id). A hit still compares the presented secret's hash with the stored one, in
/// constant time; a miss, a mismatch or an expired entry goes to the store. Only keys that
/// authenticated are kept, so a client guessing key ids cannot grow it.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    ttl: Duration,
    keys: std::sync::RwLock<HashMap<String, CachedKey>>,
}

#[derive(Debug, Clone)]
struct CachedKey {
    secret_sha256: [u8; 32],
    principal: Principal,
    at: Instant,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        KeyCache { ttl, keys: Default::default() }
    }

    /// The principal of `header` if its key authenticated within the interval and the secret
    /// matches; `None`: ask the store.
    pub(crate) fn check(&self, header: Option<&str>) -> Option<Principal> {
        if self.ttl.is_zero() {
            return None;
        }
        let (key_id, secret) = parse_bearer(header?).ok()?;
        let keys = self.keys.read().ok()?;
        let cached = keys.get(key_id).filter(|k| k.at.elapsed() < self.ttl)?;
        let presented = sha256(secret.to_ascii_lowercase().as_bytes());
        bool::from(presented.as_slice().ct_eq(cached.secret_sha256.as_slice())).then(|| cached.principal.clone())
    }

    /// Remembers a key the store just accepted for `header`.
    pub(crate) fn remember(&self, header: Option<&str>, principal: &Principal) {
        let Some((key_id, secret)) =
            (!self.ttl.is_zero()).then_some(header).flatten().and_then(|h| parse_bearer(h).ok())
        else {
            return;
        };
        let entry = CachedKey {
            secret_sha256: sha256(secret.to_ascii_lowercase().as_bytes()),
            principal: principal.clone(),
            at: Instant::now(),
        };
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= 10_000 {
                let ttl = self.ttl;
                keys.retain(|_, k| k.at.elapsed() < ttl);
            }
            keys.insert(key_id.to_owned(), entry);
        }
    }
}

/// Records "last used" at most once a minute per key, so that reads do not become writes.
#[derive(Debug, Default)]
pub(crate) struct LastUsed {
    seen: Mutex<HashMap<String, Instant>>,
}

impl LastUsed {
    const EVERY: Duration = Duration::from_secs(60);

    /// Whether this use should be written to the store now.
    pub(crate) fn due(&self, key_id: &str) -> bool {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else { return false };
        match seen.get(key_id) {
            Some(at) if now.duration_since(*at) < Self::EVERY => false,
            _ => {
                seen.insert(key_id.to_owned(), now);
                true
            }
        }
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// The extractor every SCIM handler takes: authenticates the request or answers 401.
impl actix_web::FromRequest for Principal {
    type Error = crate::error::ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage;
        let state = req.app_data::<actix_web::web::Data<crate::AppState>>().cloned();
        let header = req.headers().get(actix_web::http::header::AUTHORIZATION).map(|v| v.to_str().map(str::to_owned));
        let forwarded_for = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = state.as_ref().and_then(|st| {
            crate::throttle::client_ip(req.peer_addr().map(|a| a.ip()), forwarded_for, &st.config.trusted_proxies)
        });
        let req = req.clone();
        Box::pin(async move {
            let Some(state) = state else {
                return Err(crate::error::ApiError::Store(StoreError::Internal("application state is missing".into())));
            };
            let header = match header {
                None => None,
                Some(Ok(h)) => Some(h),
                Some(Err(_)) => {
                    tracing::warn!(auth.failure = "malformed", "authentication failed");
                    metrics::counter!("scimgw_auth_failures_total", "reason" => "malformed").increment(1);
                    return Err(refused(&state, client));
                }
            };
            if let Some(secs) = client.and_then(|c| state.throttle.refuse(c, header.as_deref())) {
                metrics::counter!("scimgw_auth_throttled_total").increment(1);
                tracing::debug!(client = ?client, "client paused after failed authentications");
                return Err(crate::error::ApiError::Throttled(secs));
            }
            let (outcome, header) = match state.key_cache.check(header.as_deref()) {
                Some(principal) => (Ok(principal), header),
                // The header comes back from the store call, for the throttle's record of good
                // tokens.
                None => {
                    let (outcome, header) =
                        crate::quick_read(&state, move |store| Ok((authenticate(store, header.as_deref())?, header)))
                            .await?;
                    if let Ok(principal) = &outcome {
                        state.key_cache.remember(header.as_deref(), principal);
                    }
                    (outcome, header)
                }
            };
            match outcome {
                Ok(principal) => {
                    if let Some(h) = &header {
                        state.throttle.succeeded(h);
                    }
                    if state.last_used.due(&principal.key_id) {
                        let st = state.clone();
                        let key_id = principal.key_id.clone();
                        // Best effort, off the request's path: a failed "last used" write must not
                        // fail the request.
                        actix_web::rt::spawn(async move {
                            let res =
                                actix_web::web::block(move || st.store.touch_api_key(&key_id, chrono::Utc::now()))
                                    .await;
                            if let Ok(Err(e)) = res {
                                tracing::warn!(error = %e, "could not record the key's last use");
                            }
                        });
                    }
                    tracing::Span::current().record("tenant", principal.tenant_name.as_str());
                    req.extensions_mut().insert(principal.clone());
                    Ok(principal)
                }
                Err(failure) => {
                    tracing::warn!(auth.failure = failure.as_str(), client = ?client, "authentication failed");
                    metrics::counter!("scimgw_auth_failures_total", "reason" => failure.as_str()).increment(1);
                    Err(refused(&state, client))
                }
            }
        })
    }
}

/// The answer to a failed authentication: 401, or 429 once the client has used up its budget of
/// failures (see [`crate::throttle`]).
fn refused(state: &crate::AppState, client: Option<std::net::IpAddr>) -> crate::error::ApiError {
    match client.and_then(|c| state.throttle.failed(c)) {
        Some(secs) => {
            tracing::warn!(client = ?client, retry_after_secs = secs, "too many failed authentications; client paused");
            metrics::counter!("scimgw_auth_throttled_total").increment(1);
            crate::error::ApiError::Throttled(secs)
        }
        None => crate::error::ApiError::Unauthorized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_accepts_only_well_formed_tokens() {
        let secret = "ab".repeat(32);
        let good = format!("Bearer scimgw_abcdefghijkm_{secret}");
        assert_eq!(parse_bearer(&good), Ok(("abcdefghijkm", secret.as_str())));
        assert_eq!(parse_bearer(&format!("bearer  scimgw_abcdefghijkm_{secret}")).map(|p| p.0), Ok("abcdefghijkm"));
        for bad in [
            "".to_owned(),
            "Bearer".to_owned(),
            format!("Basic scimgw_abcdefghijkm_{secret}"),
            format!("Bearer abcdefghijkm_{secret}"),
            format!("Bearer scimgw_abcdefghijk_{secret}"),
            format!("Bearer scimgw_abcdefghijkm_{}", &secret[1..]),
            format!("Bearer scimgw_abcdefghijkm_{}zz", &secret[2..]),
            format!("Bearer scimgw_ABCDEFGHIJKM_{secret}"),
        ] {
            assert_eq!(parse_bearer(&bad), Err(AuthFailure::Malformed), "{bad}");
        }
    }

    #[test]
    fn last_used_is_written_at_most_once_a_minute() {
        let l = LastUsed::default();
        assert!(l.due("k1"));
        assert!(!l.due("k1"));
        assert!(l.due("k2"));
    }
}
