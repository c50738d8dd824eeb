//! Test databases for the store's suites, run unchanged against both backends:
//!
//! - SQLite: a file in a fresh temporary directory per test;
//! - PostgreSQL: a fresh database per test (`callbot_test_<uuid>`), created on the server named by
//!   `$CALLBOT_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and dropped
//!   when the test ends, pass or fail. If that server cannot be reached the tests FAIL, saying so:
//!   they are never skipped.

#![allow(dead_code)]

use std::sync::OnceLock;

use bot_runtime::store::{Backend, Store};
use sqlx::Connection;
use tempfile::TempDir;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    /// The SQLite file's directory.
    _dir: Option<TempDir>,
    /// PostgreSQL: the server URL to connect to for dropping, and the database name.
    pg_drop: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_drop.take() else {
            return;
        };
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database: {e:#}"),
            Err(_) => eprintln!("could not drop test database: the dropping thread panicked"),
        }
    }
}

pub async fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    // A subdirectory that does not exist yet: the store creates it.
    let path = dir.path().join("data").join("callbot.db");
    TestDb {
        url: format!("sqlite://{}", path.display()),
        backend: Backend::Sqlite,
        _dir: Some(dir),
        pg_drop: None,
    }
}

pub fn postgres_url() -> String {
    std::env::var("CALLBOT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let host = before_query.split('/').next().unwrap_or(before_query);
    match query {
        Some(q) => format!("{scheme}://{host}/{name}?{q}"),
        None => format!("{scheme}://{host}/{name}"),
    }
}

pub async fn fresh_postgres() -> TestDb {
    // CREATE DATABASE copies template1 and fails if another CREATE DATABASE is copying it at
    // the same time: create one at a time.
    static CREATING: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    let _guard = CREATING
        .get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await;
    let admin_url = postgres_url();
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "PostgreSQL is required for the postgres::* store tests and is unreachable at \
             {admin_url} ({e}). Start PostgreSQL there or point CALLBOT_TEST_POSTGRES_URL at one \
             (CI provides it)."
        ),
    };
    let name = format!("callbot_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name} on {admin_url}: {e}"));
    conn.close().await.expect("closing the admin connection");
    TestDb {
        url: with_database(&admin_url, &name),
        backend: Backend::Postgres,
        _dir: None,
        pg_drop: Some((admin_url, name)),
    }
}

pub async fn open(db: &TestDb) -> Store {
    let store = Store::open(&db.url)
        .await
        .unwrap_or_else(|e| panic!("opening the store: {e}"));
    assert_eq!(store.backend(), db.backend);
    store
}
