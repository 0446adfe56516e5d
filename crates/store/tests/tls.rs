//! PostgreSQL over TLS: libpq is built with OpenSSL, so `sslmode=require`, `verify-ca` and
//! `verify-full` (with `sslrootcert`) work with nothing installed. Run against the test server
//! (`SCIMGW_TEST_DATABASE_URL`, which CI's `ssl = on` serves with Debian's snakeoil certificate,
//! issued to `localhost`); the certificate to verify against is `SCIMGW_TEST_PG_ROOT_CERT`
//! (default `/etc/ssl/certs/ssl-cert-snakeoil.pem`). `.ci/run` also runs this crate's whole suite
//! once more over `verify-full`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use scimgw_store::testing::{TestDb, postgres_url};
use scimgw_store::{Store, StoreConfig, StoreError};

/// The test server's URL without its query, on host `localhost` (the name the certificate
/// carries), and the certificate's path; `None` (after a loud SKIPPED) when either is missing.
fn server() -> Option<(String, String)> {
    let Some(url) = postgres_url() else {
        eprintln!("SKIPPED (set SCIMGW_TEST_DATABASE_URL to run against PostgreSQL): the TLS tests");
        return None;
    };
    let cert =
        std::env::var("SCIMGW_TEST_PG_ROOT_CERT").unwrap_or_else(|_| "/etc/ssl/certs/ssl-cert-snakeoil.pem".into());
    if !std::path::Path::new(&cert).exists() {
        eprintln!("SKIPPED: no server certificate at {cert} (set SCIMGW_TEST_PG_ROOT_CERT): the TLS tests");
        return None;
    }
    let base = url.split('?').next().unwrap_or(&url).replacen("127.0.0.1", "localhost", 1);
    Some((base, cert))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    tls: i64,
    #[diesel(sql_type = BigInt)]
    all: i64,
}

/// How many of the server's sessions named `app` use TLS, of how many.
fn sessions(base: &str, app: &str) -> (i64, i64) {
    let mut admin = PgConnection::establish(base).unwrap_or_else(|e| panic!("{e}"));
    let c: Count = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE s.ssl) AS tls, count(*) AS all FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
    )
    .bind::<Text, _>(app)
    .get_result(&mut admin)
    .unwrap_or_else(|e| panic!("{e}"));
    (c.tls, c.all)
}

#[test]
fn the_store_speaks_tls_with_require_verify_ca_and_verify_full() {
    let Some((base, cert)) = server() else { return };
    for mode in ["require", "verify-ca", "verify-full"] {
        let app = format!("scimgw-tls-{}", uuid::Uuid::new_v4().simple());
        let query = match mode {
            "require" => format!("sslmode=require&application_name={app}"),
            _ => format!("sslmode={mode}&sslrootcert={cert}&application_name={app}"),
        };
        // The test's own schema (TestDb's `options=`) kept; the host and TLS parameters changed.
        let db = TestDb::postgres_with(|c| c.url = format!("{}&{query}", c.url.replacen("127.0.0.1", "localhost", 1)))
            .unwrap_or_else(|| unreachable!());
        // Migrated over it; now a write and a read.
        let tenant = db.store().create_tenant("acme").unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(db.store().tenant_by_name("acme").unwrap_or_else(|e| panic!("{e}")).map(|t| t.id), Some(tenant.id));
        let (tls, all) = sessions(&base, &app);
        assert!(all > 0, "{mode}: the store's sessions are found");
        assert_eq!(tls, all, "{mode}: every session of the store uses TLS");
    }
}

fn open_fails(url: String) -> String {
    let config = StoreConfig { url, connect_timeout_secs: 3, ..StoreConfig::default() };
    match Store::open(&config) {
        Err(StoreError::Unavailable(why)) => why,
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("the store opened"),
    }
}

#[test]
fn verification_refuses_a_certificate_it_cannot_trust_and_a_host_it_does_not_name() {
    let Some((base, cert)) = server() else { return };
    // Another CA: the gateway's own self-signed test certificate.
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/../cli/tests/fixtures/tls/cert.pem");
    let why = open_fails(format!("{base}?sslmode=verify-ca&sslrootcert={other}"));
    assert!(why.contains("certificate verify failed"), "{why}");
    // The certificate names `localhost`, not the address.
    let by_address = base.replacen("localhost", "127.0.0.1", 1);
    let why = open_fails(format!("{by_address}?sslmode=verify-full&sslrootcert={cert}"));
    assert!(why.contains("does not match host name"), "{why}");
    // No root certificate to verify with.
    let why = open_fails(format!("{base}?sslmode=verify-full&sslrootcert=/nonexistent/root.crt"));
    assert!(why.contains("root certificate file") || why.contains("/nonexistent/root.crt"), "{why}");
}
