//! PostgreSQL for tests: each test gets a database of its own, dropped afterwards. Without a
//! reachable server a test skips with one line saying why ([`skip_or_fail`]: a failure under
//! `CI=true`). The server is `HOOKVAULT_TEST_PG_URL` (default: the local one, user postgres).

use std::sync::atomic::{AtomicU32, Ordering};

use super::tools::skip_or_fail;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database made for one test; dropped (with its connections) when this is dropped, so
/// declare it before the servers that use it.
pub struct PgDb {
    pub url: String,
    pub name: String,
    admin_url: String,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl PgDb {
    /// A fresh, empty database; `None` (after saying why) when no server is reachable.
    pub fn create() -> Option<PgDb> {
        let admin_url =
            std::env::var("HOOKVAULT_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
        let mut admin = match postgres::Client::connect(&admin_url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                skip_or_fail(&format!("PostgreSQL not reachable at {admin_url} ({e})"));
                return None;
            }
        };
        let name = format!(
            "hv_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_micros())
                .unwrap_or(0)
        );
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("HOOKVAULT_TEST_PG_URL names a database");
        Some(PgDb {
            url: format!("{server}/{name}"),
            name,
            admin_url,
        })
    }

    /// A connection of the test's own, to look at or change the database directly.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).expect("connect to the test database")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Gets a test database or returns from the test (it was skipped with a reason).
macro_rules! pg_or_skip {
    () => {
        match $crate::harness::PgDb::create() {
            Some(db) => db,
            None => return,
        }
    };
}
pub(crate) use pg_or_skip;
