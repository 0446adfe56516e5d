//! The store's configuration (`[store]` in gateway.toml): where the database is and how the pool behaves.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::connection::Target;
use crate::redact::redact_url;

/// How the store connects. Every field has a default, so `[store]` may be left out entirely.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (`sqlite:///abs/path.db` for an absolute path) or
    /// `postgres://user:password@host:5432/db`. The store takes a relative SQLite path as given
    /// (from the working directory); the `scimgw` binary first makes it absolute against the
    /// configuration file's directory. [`Store::open`](crate::Store::open) creates a missing SQLite
    /// file and its directory. PostgreSQL URLs take libpq's parameters, TLS included
    /// (`sslmode=require|verify-ca|verify-full`, `sslrootcert=`).
    pub url: String,
    /// How many connections the pool keeps open at most.
    pub pool_size: u32,
    /// How long to wait for a new connection or for a free pooled one before giving up with
    /// `Unavailable`, in seconds.
    pub connect_timeout_secs: u64,
    /// SQLite only: `full` (default) fsyncs every commit, so an acknowledged change survives a power
    /// loss; `normal` survives a process crash only, and is several times faster.
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite only: how long a writer waits for another writer's lock before `Unavailable`, in
    /// milliseconds.
    pub busy_timeout_ms: u64,
    /// SQLite only: group commit. Writes that arrive while another is being committed share the
    /// next transaction, so `synchronous = full` costs one fsync per batch instead of one per
    /// request; each caller is answered only after its batch is durable. This caps a batch's
    /// size; `1` turns group commit off (one transaction per write).
    pub write_batch_max: usize,
    /// SQLite only: the page cache of each connection (the pool's and the writer's), in MiB. A
    /// lookup whose pages are not in it reads them from the file through the kernel; with
    /// 100,000 users the default 2 MiB cost a fifth of the filter lookups' throughput.
    pub sqlite_cache_mb: u32,
    /// PostgreSQL only: the server's `statement_timeout` for the store's connections, in
    /// milliseconds (`0`: none). It also bounds how long a request waits for the store: a server
    /// that accepted the connection and stopped answering costs a 503 after this plus
    /// `connect_timeout_secs`, instead of a request that never ends.
    pub statement_timeout_ms: u64,
    /// PostgreSQL only: TCP keepalives on the store's connections: the first probe after this many
    /// idle seconds, then every third of it, three unanswered probes end the connection; unsent data
    /// unacknowledged for twice this long ends it too (`tcp_user_timeout`). A URL that sets
    /// `keepalives*` or `tcp_user_timeout` itself keeps its own. `0`: the kernel's defaults
    /// (hours).
    pub tcp_keepalive_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/scimgw.db".into(),
            pool_size: 8,
            connect_timeout_secs: 5,
            sqlite_synchronous: SqliteSynchronous::Full,
            busy_timeout_ms: 5000,
            write_batch_max: 256,
            sqlite_cache_mb: 8,
            statement_timeout_ms: 30_000,
            tcp_keepalive_secs: 30,
        }
    }
}

impl StoreConfig {
    /// How long an async caller waits for the store's answer on PostgreSQL before `Unavailable`:
    /// the statement timeout plus the time to get a connection. `None` without a statement
    /// timeout, and on SQLite (a local file does not stop answering).
    pub(crate) fn answer_deadline(&self) -> Option<std::time::Duration> {
        (self.statement_timeout_ms > 0).then(|| {
            std::time::Duration::from_millis(self.statement_timeout_ms)
                + std::time::Duration::from_secs(self.connect_timeout_secs.max(1))
        })
    }

    /// The SQLite file `url` names, as written (a relative path stays relative); `None` for a
    /// PostgreSQL URL or one the store would refuse.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        match Target::parse(&self.url, self.connect_timeout_secs) {
            Ok(Target::Sqlite(path)) => Some(path),
            _ => None,
        }
    }

    /// Makes a relative SQLite path absolute against `base`; an absolute path and a PostgreSQL URL
    /// are left as they are.
    pub fn resolve_sqlite_path(&mut self, base: &Path) {
        if let Some(path) = self.sqlite_path().filter(|p| p.is_relative()) {
            self.url = format!("sqlite://{}", base.join(path).display());
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    /// The URL's password is redacted: configurations get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("write_batch_max", &self.write_batch_max)
            .field("sqlite_cache_mb", &self.sqlite_cache_mb)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("tcp_keepalive_secs", &self.tcp_keepalive_secs)
            .finish()
    }
}

/// SQLite's `synchronous` pragma, as far as the store offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// fsync on every commit: durable across power loss ("ack means durable").
    #[default]
    Full,
    /// fsync at WAL checkpoints only: survives a process crash, may lose the last commits on power loss.
    Normal,
}

impl SqliteSynchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_sqlite_path_is_made_absolute_and_others_are_left_alone() {
        let resolved = |url: &str| {
            let mut c = StoreConfig { url: url.into(), ..StoreConfig::default() };
            c.resolve_sqlite_path(Path::new("/etc/scimgw"));
            c.url
        };
        assert_eq!(resolved("sqlite://data/scimgw.db"), "sqlite:///etc/scimgw/data/scimgw.db");
        assert_eq!(resolved("sqlite:data/scimgw.db"), "sqlite:///etc/scimgw/data/scimgw.db");
        assert_eq!(resolved("sqlite:///var/lib/scimgw.db"), "sqlite:///var/lib/scimgw.db");
        assert_eq!(resolved("postgres://app:pw@db/scim"), "postgres://app:pw@db/scim");
        let pg = StoreConfig { url: "postgres://db/scim".into(), ..StoreConfig::default() };
        assert_eq!(pg.sqlite_path(), None);
    }

    #[test]
    fn an_empty_section_gives_the_defaults_and_synchronous_is_lowercase() {
        let cfg: StoreConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, StoreConfig::default());
        assert_eq!(cfg.pool_size, 8);
        let cfg: StoreConfig = serde_json::from_str(r#"{"sqlite_synchronous": "normal"}"#).unwrap();
        assert_eq!(cfg.sqlite_synchronous, SqliteSynchronous::Normal);
        assert!(serde_json::from_str::<StoreConfig>(r#"{"pool_sise": 3}"#).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = StoreConfig { url: "postgres://scim:hunter2@db/scim".into(), ..StoreConfig::default() };
        let text = format!("{cfg:?}");
        assert!(!text.contains("hunter2") && text.contains("scim:***@db"), "{text}");
    }
}
