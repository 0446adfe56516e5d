//! Test databases (feature `testing`): a migrated store on a temp SQLite file or in a fresh PostgreSQL schema, removed on drop.
//!
//! ```ignore
//! use scimgw_store::testing::TestDb;
//!
//! #[test]
//! fn something_on_sqlite() {
//!     let db = TestDb::sqlite();
//!     db.store().create_tenant("acme").unwrap();
//! }
//!
//! #[test]
//! fn something_on_postgres() {
//!     let Some(db) = TestDb::postgres() else { return }; // prints SKIPPED when not configured
//!     db.store().create_tenant("acme").unwrap();
//! }
//! ```
//!
//! Or write the test once as `fn name(store: &Store)` and let [`both_engines!`](crate::both_engines)
//! make `name::sqlite` and `name::postgres` of it.
//!
//! PostgreSQL runs when [`DATABASE_URL_VAR`] is set; each [`TestDb`] creates its own schema
//! `t_<random>` and connects with `options=-csearch_path=t_<random>` in the URL, so tests run in
//! parallel without seeing each other, and the schema is dropped when the `TestDb` is. A set
//! variable with an unreachable server fails the test: silence would hide a broken CI.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::{Backend, SqliteSynchronous, Store, StoreConfig};

/// The environment variable naming the PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`.
pub const DATABASE_URL_VAR: &str = "SCIMGW_TEST_DATABASE_URL";

/// A migrated store on a database of its own, removed on drop.
pub struct TestDb {
    store: Option<Store>,
    config: StoreConfig,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[expect(dead_code, reason = "held for its Drop, which removes the directory")] tempfile::TempDir),
    Postgres { base_url: String, schema: String },
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory, migrated.
    ///
    /// `synchronous` is `normal`: a test has no power loss to survive, and fsync per commit
    /// would make the suite several times slower without testing anything more.
    pub fn sqlite() -> TestDb {
        Self::sqlite_with(|_| {})
    }

    /// As [`TestDb::sqlite`], with the configuration adjusted by `adjust` before opening.
    pub fn sqlite_with(adjust: impl FnOnce(&mut StoreConfig)) -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let mut config = StoreConfig {
            url: format!("sqlite://{}", dir.path().join("store.db").display()),
            sqlite_synchronous: SqliteSynchronous::Normal,
            ..StoreConfig::default()
        };
        adjust(&mut config);
        let store = open_migrated(&config);
        TestDb { store: Some(store), config, cleanup: Cleanup::Sqlite(dir) }
    }

    /// A fresh schema on the PostgreSQL server named by [`DATABASE_URL_VAR`], migrated; `None`
    /// (after a loud `SKIPPED` line on stderr) when the variable is unset.
    pub fn postgres() -> Option<TestDb> {
        Self::postgres_with(|_| {})
    }

    /// As [`TestDb::postgres`], with the configuration adjusted by `adjust` before opening.
    pub fn postgres_with(adjust: impl FnOnce(&mut StoreConfig)) -> Option<TestDb> {
        let Some(base_url) = postgres_url() else {
            eprintln!(
                "SKIPPED (set {DATABASE_URL_VAR} to run against PostgreSQL): {}",
                std::thread::current().name().unwrap_or("a PostgreSQL test")
            );
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&base_url)
            .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is set but PostgreSQL cannot be reached: {e}"));
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("cannot create the test schema {schema}: {e}"));
        let sep = if base_url.contains('?') { '&' } else { '?' };
        let mut config = StoreConfig {
            url: format!("{base_url}{sep}options=-csearch_path%3D{schema}"),
            pool_size: 4,
            ..StoreConfig::default()
        };
        adjust(&mut config);
        // From here on, Drop removes the schema even if opening fails.
        let mut db = TestDb { store: None, config, cleanup: Cleanup::Postgres { base_url, schema } };
        db.store = Some(open_migrated(&db.config));
        Some(db)
    }

    /// A test database on `backend`; `None` for PostgreSQL when it is not configured.
    pub fn on(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres(),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        match &self.store {
            Some(store) => store,
            None => unreachable!("a TestDb always holds its store until dropped"),
        }
    }

    /// The configuration the store was opened with (its URL points at this test's database), for
    /// opening a second store on the same database, e.g. inside a gateway under test.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.store().backend()
    }

    /// Everything this database holds, as text, for tests that look for what must never be
    /// stored (a token's secret): on SQLite the raw bytes of the database file and its WAL (read
    /// lossily, so free pages and old row versions are searched too); on PostgreSQL every row of
    /// every table of the test's schema.
    pub fn everything_stored(&self) -> String {
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let path = self.config.url.trim_start_matches("sqlite://");
                let mut out = String::new();
                for suffix in ["", "-wal", "-journal"] {
                    if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                out
            }
            Cleanup::Postgres { base_url, schema } => {
                #[derive(diesel::QueryableByName)]
                struct Row {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    t: String,
                }
                let mut conn =
                    PgConnection::establish(base_url).unwrap_or_else(|e| panic!("PostgreSQL cannot be reached: {e}"));
                let tables: Vec<Row> = diesel::sql_query(format!(
                    "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = '{schema}'"
                ))
                .load(&mut conn)
                .unwrap_or_else(|e| panic!("listing the tables: {e}"));
                let mut out = String::new();
                for table in tables {
                    let rows: Vec<Row> =
                        diesel::sql_query(format!("SELECT x::text AS t FROM {schema}.\"{}\" x", table.t))
                            .load(&mut conn)
                            .unwrap_or_else(|e| panic!("reading {}: {e}", table.t));
                    for row in rows {
                        out.push_str(&row.t);
                        out.push('\n');
                    }
                }
                out
            }
        }
    }
}

/// The PostgreSQL test server's URL, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR).ok().filter(|u| !u.trim().is_empty())
}

fn open_migrated(config: &StoreConfig) -> Store {
    let store = Store::open(config).unwrap_or_else(|e| panic!("cannot open the test store: {e}"));
    store.migrate().unwrap_or_else(|e| panic!("cannot migrate the test store: {e}"));
    store
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool first: its connections sit in the schema about to go.
        self.store = None;
        if let Cleanup::Postgres { base_url, schema } = &self.cleanup {
            let dropped = PgConnection::establish(base_url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).map_err(|e| e.to_string()));
            if let Err(e) = dropped {
                eprintln!("warning: could not drop the test schema {schema}: {e}");
            }
        }
    }
}

/// Turns `fn name(store: &Store)` test bodies into `name::sqlite` and `name::postgres` tests.
///
/// ```ignore
/// fn user_names_are_unique(store: &Store) { /* … */ }
/// scimgw_store::both_engines!(user_names_are_unique);
/// ```
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    let db = $crate::testing::TestDb::sqlite();
                    super::$name(db.store());
                }

                #[test]
                fn postgres() {
                    if let Some(db) = $crate::testing::TestDb::postgres() {
                        super::$name(db.store());
                    }
                }
            }
        )*
    };
}
