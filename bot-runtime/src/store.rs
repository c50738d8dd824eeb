//! Call-record storage: finished calls ([`CallRecord`]) in SQLite (the default, one file) or
//! PostgreSQL, through sqlx, with embedded migrations.
//!
//! # One code path for both engines: sqlx's `Any` driver
//!
//! [`Store`] holds an [`AnyPool`]: the backend is chosen at run time from the URL
//! (`sqlite://callbot.db`, `sqlite::memory:`, `postgres://…`), and every query, the migrations
//! included, is the same text on both engines. This is sound here because the schema keeps to what
//! both engines and the `Any` driver agree on, which is what keeps the two backends from drifting
//! apart (one query per operation, one test suite run against both):
//!
//! - **Types**: only `TEXT`, `BIGINT` and `DOUBLE PRECISION`. The `Any` driver has no date/time,
//!   JSON, UUID or (on SQLite) boolean types, so wall-clock times are `BIGINT` microseconds since
//!   the Unix epoch, UTC (columns `*_at_us`; microseconds are PostgreSQL's own timestamp
//!   precision), booleans are `0`/`1`, lists and slot values are JSON text. Ordering and range
//!   filters are then integer comparisons, identical on both engines, and every integer column is
//!   read as `i64` on both.
//! - **SQL**: numbered placeholders (`$1`; SQLite accepts them), `INSERT … ON CONFLICT (id) DO
//!   UPDATE SET … = excluded.…` (SQLite ≥ 3.24, PostgreSQL ≥ 9.5), `LIMIT … OFFSET …`, plain
//!   `CREATE TABLE`/`CREATE INDEX`. No `RETURNING`, no engine-specific functions.
//! - **Migrations**: `bot-runtime/migrations/*.sql`, embedded with [`sqlx::migrate!`] and applied
//!   by [`Store::open`]; sqlx records them in `_sqlx_migrations` (each in a transaction, under an
//!   advisory lock on PostgreSQL), so opening an up-to-date database applies nothing, and a
//!   database changed behind sqlx's back (a modified or unknown migration) is refused.
//!
//! The alternatives were an enum over `Pool<Sqlite>`/`Pool<Postgres>` with every query written
//! (or macro-expanded) twice, and compile-time checked `query!` macros, which need a live database
//! or an offline cache per engine at build time. The price of `Any` is the narrow type set above
//! and conversions done by hand ([`CallRecord`] ⇄ columns), all in this module.
//!
//! # Engine details handled here
//!
//! - A SQLite file is created if missing (with its parent directory) and switched to WAL
//!   journaling, so readers do not block the writer; writers queue on SQLite's lock (sqlx's
//!   default 5 s busy timeout). `sqlite::memory:` lives in one connection that the pool never
//!   closes (each new connection would be a new, empty database).
//! - Values both engines would not store alike are normalised or refused the same way on both: a
//!   non-finite `confidence`/`sentiment` is stored as NULL (SQLite turns NaN into NULL; PostgreSQL
//!   would keep it), and text with a NUL character is refused (PostgreSQL cannot store it).
//! - Saving a call is one transaction: upsert the `calls` row, delete its turns, insert the new
//!   turns. On PostgreSQL the upsert takes the row lock first, so concurrent saves of the same id
//!   serialise; on SQLite the database write lock does. Reading a call is one `LEFT JOIN`
//!   statement, so it sees one snapshot even under PostgreSQL's READ COMMITTED.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Row};

use crate::record::{
    CallLeg, CallRecord, Direction, RecordingRef, Speaker, StageLatency, TurnRecord,
};
use crate::vault::{SEALED_PREFIX, Vault};

/// The migrations in `bot-runtime/migrations/`, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long to wait for a connection (including the first one, in [`Store::open`]).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database engine a [`Store`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// SQLite: a file, or `sqlite::memory:`.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a store operation failed. URLs in errors have their password replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the store can open.
    #[error("unsupported database URL {url}: {reason}")]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open database {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The directory for a SQLite file could not be created.
    #[error("cannot open database {url}: creating directory {dir}: {source}")]
    CreateDir {
        /// The URL.
        url: String,
        /// The directory.
        dir: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Bringing the schema up to date failed.
    #[error("migrating database {url} failed{migration}: {source}")]
    Migrate {
        /// The URL, password redacted.
        url: String,
        /// ` at migration N (description)` when one migration failed, else empty.
        migration: String,
        /// sqlx's migration error.
        #[source]
        source: MigrateError,
    },
    /// A query failed.
    #[error("{action} in {url} failed: {source}")]
    Query {
        /// The URL, password redacted.
        url: String,
        /// What was being done, e.g. `saving call 1b4e…`.
        action: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A call record that cannot be stored as it is (nothing was written).
    #[error("cannot save call {id:?}: {reason}")]
    InvalidRecord {
        /// The call's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A request the data refuses (a duplicate name, a move a campaign cannot make…); nothing
    /// was written. `what` names the thing, e.g. `campaign "reminders"`.
    #[error("{what}: {reason}")]
    Refused {
        /// What was acted on.
        what: String,
        /// Why not.
        reason: String,
    },
    /// The keyring does not fit the database (see [`crate::vault`]): nothing was read or written.
    #[error("personal-data keys for {url}: {reason}")]
    Keys {
        /// The URL, password redacted.
        url: String,
        /// What does not fit, and what to do.
        reason: String,
    },
    /// A stored row that does not read back as a call record.
    #[error("call {id:?} in {url}: bad stored row: {reason}")]
    BadRow {
        /// The URL, password redacted.
        url: String,
        /// The call's id (empty if it could not be read).
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// Whether the database could not be reached — connection refused or dropped, the pool
    /// timed out, the server is shutting down or refusing connections (SQLSTATE classes 08 and
    /// 57P), SQLite busy or locked — so that the same write may succeed later
    /// ([`crate::durable::persist`]). Errors the data causes are not.
    pub fn is_unavailable(&self) -> bool {
        let source = match self {
            StoreError::Query { source, .. } | StoreError::Connect { source, .. } => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("57P")
                    || c == "53300"
                    // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes (PostgreSQL's
                    // codes have five characters, these fewer).
                    || ["5", "6", "261", "262", "517", "518", "773"].contains(&c.as_ref())
            }),
            _ => false,
        }
    }
}

/// Which calls [`Store::list_calls`] returns. Every filter is optional (`None` = any); the
/// default lists every call, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// Calls of this campaign (of any tenant unless `tenant` is set).
    pub campaign: Option<String>,
    /// Calls to this lead.
    pub lead_id: Option<String>,
    /// Calls with this phone number (exact match).
    pub phone: Option<String>,
    /// Calls that ran this flow.
    pub flow: Option<String>,
    /// Calls in this direction.
    pub direction: Option<Direction>,
    /// Calls with this flow outcome.
    pub outcome: Option<String>,
    /// Calls with this call-progress disposition.
    pub disposition: Option<String>,
    /// Calls started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Calls started before this time (exclusive).
    pub until: Option<DateTime<Utc>>,
    /// At most this many calls (`None` = no limit).
    pub limit: Option<u32>,
    /// Skip this many calls of the ordered result first (paging).
    pub offset: u64,
    /// Only calls of this tenant: calls dialed by one of its attempts, and for the `default`
    /// tenant also calls of no campaign (calls carry no tenant column of their own).
    pub tenant: Option<String>,
}

/// One line of a call list: the call without its transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// The call's id.
    pub id: String,
    /// Which way the call went.
    pub direction: Direction,
    /// The campaign, if any.
    pub campaign: Option<String>,
    /// The customer's number.
    pub phone: String,
    /// The flow that ran (empty if none).
    pub flow: String,
    /// When the call started (dialling, or the inbound INVITE).
    pub started_at: DateTime<Utc>,
    /// From `started_at` to `ended_at` (ringing included), in milliseconds.
    pub duration_ms: u64,
    /// Call-progress disposition.
    pub disposition: String,
    /// The flow's outcome, if it reached one.
    pub outcome: Option<String>,
    /// Answering-machine detection verdict, if run.
    pub amd: Option<String>,
    /// Number of transcript lines.
    pub turns: u32,
}

/// Call records in SQLite or PostgreSQL. Cheap to clone (the clones share one connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The URL it was opened with, password redacted (for error messages).
    url: String,
    /// Seals personal data on its way in and opens it on its way out.
    vault: Arc<Vault>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date: `sqlite://path/to/callbot.db`
    /// (relative, or `sqlite:///absolute/path`; the file and its directory are created if
    /// missing), `sqlite::memory:`, or `postgres://user:password@host:port/database` (the
    /// database must exist).
    ///
    /// Personal data is sealed with the keyring [`Vault::for_database`] finds for `url`
    /// (`$CALLBOT_KEYS`, `$CALLBOT_KEYS_FILE`, or a default keys file created on first use).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_inner(url, None).await
    }

    /// [`Store::open`] with this keyring. The database must not hold data sealed with keys
    /// the keyring lacks; see [`crate::vault`].
    pub async fn open_with_keys(url: &str, vault: Vault) -> Result<Store, StoreError> {
        Store::open_inner(url, Some(vault)).await
    }

    async fn open_inner(url: &str, vault: Option<Vault>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let (backend, connect_url, sqlite_file) = resolve_url(url)?;

        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        options = match (backend, &sqlite_file) {
            // One connection for the life of the pool: a second one would be another database.
            (Backend::Sqlite, None) => options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            (Backend::Sqlite, Some(_)) => options.max_connections(4),
            (Backend::Postgres, _) => options.max_connections(10),
        };
        if let Some(file) = &sqlite_file
            && let Some(dir) = Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                url: shown.clone(),
                dir: dir.display().to_string(),
                source,
            })?;
        }
        // One direct connection first: the pool would retry a refused connection until its
        // acquire timeout and then report only "timed out", hiding the cause.
        let probe = AnyConnection::connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        // Best effort: the probe's work is done whether or not it closes cleanly.
        let _ = probe.close().await;
        let pool = options
            .connect(&connect_url)
            .await
            .map_err(|source| StoreError::Connect {
                url: shown.clone(),
                source,
            })?;
        if sqlite_file.is_some() {
            // Persistent in the file: later connections open it in WAL mode too.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                migration: failed_migration(&source),
                source,
            })?;
        // The keyring is looked for once the database is reachable and up to date, so that a
        // wrong URL creates no keys file.
        let vault = match vault {
            Some(v) => v,
            None => Vault::for_database(url).map_err(|e| StoreError::Keys {
                url: shown.clone(),
                reason: e.to_string(),
            })?,
        };
        let store = Store {
            pool,
            backend,
            url: shown,
            vault: Arc::new(vault),
        };
        if store.register_keys().await? {
            // The first open with a keyring: rows written before sealing existed are sealed now.
            store.reseal().await?;
        }
        store.run_store_tasks().await?;
        Ok(store)
    }

    /// Runs the one-off work migrations leave in `store_tasks` (work that needs the keys), and
    /// removes each task once done. Idempotent: nodes opening together may both run a task.
    async fn run_store_tasks(&self) -> Result<(), StoreError> {
        let err = |e| self.query_error("running store tasks".into(), e);
        let tasks: Vec<String> = sqlx::query_scalar("SELECT name FROM store_tasks ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        for task in tasks {
            match task.as_str() {
                "seal_debt_ids" => {
                    let current = format!("{SEALED_PREFIX}{}:%", self.vault.active_key());
                    let n = self.reseal_debt_ids(&current).await?;
                    if n > 0 {
                        tracing::info!(rows = n, "debt identifiers sealed");
                    }
                }
                other => {
                    return Err(StoreError::Refused {
                        what: format!("store task {other:?}"),
                        reason: "unknown to this version of callbot (a newer one wrote it)".into(),
                    });
                }
            }
            sqlx::query("DELETE FROM store_tasks WHERE name = $1")
                .bind(task)
                .execute(&self.pool)
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    /// The keyring.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The keyring, shared.
    pub fn vault_arc(&self) -> Arc<Vault> {
        self.vault.clone()
    }

    /// A call's recording as a WAV file's bytes: the stored file, checked against the record's
    /// SHA-256, and opened when sealed.
    pub fn read_recording(&self, r: &RecordingRef) -> Result<Vec<u8>, StoreError> {
        let refuse = |reason: String| StoreError::Refused {
            what: format!("recording {}", r.path),
            reason,
        };
        let stored = std::fs::read(&r.path).map_err(|e| refuse(e.to_string()))?;
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored));
        if sha != r.sha256 {
            return Err(refuse(format!(
                "its SHA-256 is {sha}, the call record says {} (changed since the call)",
                r.sha256
            )));
        }
        if stored.starts_with(crate::vault::SEALED_FILE_MAGIC) {
            self.vault
                .open_bytes(crate::recorder::RECORDING_FIELD, &stored)
                .map_err(|e| refuse(e.to_string()))
        } else {
            Ok(stored)
        }
    }

    /// Checks the keyring against the keys recorded in the database and records the ones it
    /// adds. Returns whether the database had no keys recorded (a new database, or one from
    /// before sealing).
    async fn register_keys(&self) -> Result<bool, StoreError> {
        let keys_err = |reason: String| StoreError::Keys {
            url: self.url.clone(),
            reason,
        };
        let read = || async {
            let rows = sqlx::query("SELECT kind, id, check_value FROM vault_keys")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error("reading the recorded keys".into(), e))?;
            rows.iter()
                .map(|r| {
                    Ok((
                        self.get::<String>(r, "kind", "vault_keys")?,
                        self.get::<String>(r, "id", "vault_keys")?,
                        self.get::<String>(r, "check_value", "vault_keys")?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let check = |recorded: &[(String, String, String)]| -> Result<(), StoreError> {
            let origin = self.vault.origin();
            // The index key first: another database's keyring fails on it.
            let mut recorded: Vec<_> = recorded.iter().collect();
            recorded.sort_by_key(|(kind, _, _)| kind != "index");
            for (kind, id, check) in recorded {
                match kind.as_str() {
                    "index" if *check != self.vault.index_check() => {
                        return Err(keys_err(format!(
                            "the database's phone numbers are indexed with another index key \
                             than the one in {origin}; use the keys file this database was \
                             created with ($CALLBOT_KEYS_FILE)"
                        )));
                    }
                    "data" => match self.vault.key_check(id) {
                        None => {
                            return Err(keys_err(format!(
                                "the database holds data sealed with key {id:?}, which {origin} \
                                 does not have; use the keys file this database was written \
                                 with ($CALLBOT_KEYS_FILE)"
                            )));
                        }
                        Some(c) if c != *check => {
                            return Err(keys_err(format!(
                                "key {id:?} in {origin} is not the key {id:?} this database was \
                                 sealed with"
                            )));
                        }
                        Some(_) => {}
                    },
                    _ => {}
                }
            }
            Ok(())
        };
        // Checked before anything is recorded: a refused keyring leaves no trace.
        let before = read().await?;
        check(&before)?;
        let first = before.is_empty();
        if !first && !before.iter().any(|(kind, _, _)| kind == "index") {
            return Err(keys_err(
                "the database records data keys but no index key; restore vault_keys from a \
                 backup"
                    .into(),
            ));
        }
        let now = Utc::now().timestamp_micros();
        let active = self.vault.active_key().to_string();
        let mut records = vec![("data", active.clone(), self.vault.key_check(&active))];
        if first {
            records.push(("index", "index".into(), Some(self.vault.index_check())));
        }
        // An open that changes nothing writes nothing (a write would make every open of a
        // SQLite file take the write lock, and its close checkpoint).
        records.retain(|(kind, id, _)| !before.iter().any(|(k, i, _)| k == kind && i == id));
        if records.is_empty() {
            return Ok(first);
        }
        for (kind, id, check_value) in records {
            // Concurrent first opens: one row wins, and the check below compares with it.
            sqlx::query(
                "INSERT INTO vault_keys (kind, id, check_value, added_at_us) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (kind, id) DO NOTHING",
            )
            .bind(kind)
            .bind(id)
            .bind(check_value.unwrap_or_default())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error("recording the data keys".into(), e))?;
        }
        check(&read().await?)?;
        Ok(first)
    }

    /// The data keys the database records as in use (oldest first).
    pub async fn recorded_keys(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM vault_keys WHERE kind = 'data' ORDER BY added_at_us, id")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.query_error("reading the recorded keys".into(), e))?;
        rows.iter()
            .map(|r| self.get(r, "id", "vault_keys"))
            .collect()
    }

    /// Seals `value` of personal-data field `field`.
    pub(crate) fn seal(&self, field: &str, value: &str) -> String {
        self.vault.seal(field, value)
    }

    /// Seals an optional value.
    pub(crate) fn seal_opt(&self, field: &str, value: Option<&str>) -> Option<String> {
        value.map(|v| self.vault.seal(field, v))
    }

    /// The blind index of a phone number (what `phone` columns hold).
    pub(crate) fn phone_index(&self, phone: &str) -> String {
        self.vault.index("phone", phone)
    }

    /// The blind index of a debt (account) identifier (what `debt_id` columns hold).
    pub(crate) fn debt_index(&self, debt_id: &str) -> String {
        self.vault.index("debt_id", debt_id)
    }

    /// Opens sealed column `column` (field `field`) of a row.
    pub(crate) fn open_col(
        &self,
        row: &AnyRow,
        column: &str,
        field: &str,
        id: &str,
    ) -> Result<String, StoreError> {
        let sealed: String = self.get(row, column, id)?;
        self.vault
            .open(field, &sealed)
            .map_err(|e| self.bad_row(id, format!("column {column}: {e}")))
    }

    /// Opens a nullable sealed column.
    pub(crate) fn open_opt_col(
        &self,
        row: &AnyRow,
        column: &str,
        field: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        let sealed: Option<String> = self.get(row, column, id)?;
        sealed
            .map(|s| {
                self.vault
                    .open(field, &s)
                    .map_err(|e| self.bad_row(id, format!("column {column}: {e}")))
            })
            .transpose()
    }

    /// Re-seals every sealed value that is not sealed with the keyring's active key (values
    /// sealed with older keys, and plaintext left by a database from before sealing), then
    /// forgets the recorded data keys nothing uses any more. Returns how many rows changed.
    /// Batches of a few hundred rows, each in its own transaction: an interrupted run is
    /// resumed by running it again.
    pub async fn reseal(&self) -> Result<u64, StoreError> {
        let active = self.vault.active_key().to_string();
        let current = format!("{SEALED_PREFIX}{active}:%");
        let mut changed = 0u64;
        for spec in SEALED_TABLES {
            let mut stale: Vec<String> = spec
                .sealed
                .iter()
                .map(|(c, _)| format!("({c} IS NOT NULL AND {c} NOT LIKE $1)"))
                .collect();
            if spec.phone {
                stale.push("(phone_enc IS NULL OR phone_enc NOT LIKE $1)".into());
            }
            let mut cols: Vec<&str> = spec.key.to_vec();
            cols.extend(spec.sealed.iter().map(|(c, _)| *c));
            if spec.phone {
                cols.extend(["phone", "phone_enc"]);
            }
            let select = format!(
                "SELECT {} FROM {} WHERE {} LIMIT 200",
                cols.join(", "),
                spec.table,
                stale.join(" OR ")
            );
            let mut sets: Vec<String> = Vec::new();
            for (c, _) in spec.sealed {
                sets.push(format!("{c} = ${}", sets.len() + 1));
            }
            if spec.phone {
                sets.push(format!("phone = ${}", sets.len() + 1));
                sets.push(format!("phone_enc = ${}", sets.len() + 1));
            }
            let wheres: Vec<String> = spec
                .key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = ${}", sets.len() + i + 1))
                .collect();
            let update = format!(
                "UPDATE {} SET {} WHERE {}",
                spec.table,
                sets.join(", "),
                wheres.join(" AND ")
            );
            loop {
                let rows = sqlx::query(&select)
                    .bind(current.clone())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| self.query_error(format!("resealing {}", spec.table), e))?;
                if rows.is_empty() {
                    break;
                }
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(|e| self.query_error(format!("resealing {}", spec.table), e))?;
                for row in &rows {
                    let mut q = sqlx::query(&update);
                    let what = spec.table;
                    for (c, field) in spec.sealed {
                        let v: Option<String> = self.get(row, c, what)?;
                        q = q.bind(
                            v.map(|v| self.reseal_value(field, &v, c, what))
                                .transpose()?,
                        );
                    }
                    if spec.phone {
                        let enc: Option<String> = self.get(row, "phone_enc", what)?;
                        let (index, enc) = match enc {
                            Some(enc) => {
                                let phone = self
                                    .vault
                                    .open("phone", &enc)
                                    .map_err(|e| self.bad_row(what, format!("phone_enc: {e}")))?;
                                (self.phone_index(&phone), self.seal("phone", &phone))
                            }
                            None => {
                                // Written before sealing: `phone` holds the number itself.
                                let phone: String = self.get(row, "phone", what)?;
                                (self.phone_index(&phone), self.seal("phone", &phone))
                            }
                        };
                        q = q.bind(index).bind(enc);
                    }
                    for k in spec.key {
                        q = match self.get::<String>(row, k, what) {
                            Ok(v) => q.bind(v),
                            Err(_) => q.bind(self.get::<i64>(row, k, what)?),
                        };
                    }
                    q.execute(&mut *tx)
                        .await
                        .map_err(|e| self.query_error(format!("resealing {}", spec.table), e))?;
                    changed += 1;
                }
                tx.commit()
                    .await
                    .map_err(|e| self.query_error(format!("resealing {}", spec.table), e))?;
            }
        }
        changed += self.reseal_debt_ids(&current).await?;
        sqlx::query("DELETE FROM vault_keys WHERE kind = 'data' AND id <> $1")
            .bind(active)
            .execute(&self.pool)
            .await
            .map_err(|e| self.query_error("forgetting retired keys".into(), e))?;
        Ok(changed)
    }

    /// Debt identifiers: `leads.debt_id` and `attempts.debt_id` become blind indexes and
    /// `leads.debt_id_enc` the sealed identifier (plain identifiers from before migration 0009,
    /// and values sealed with an older key). Returns how many rows changed.
    async fn reseal_debt_ids(&self, current: &str) -> Result<u64, StoreError> {
        let index_like = format!("{}%", crate::vault::INDEX_PREFIX);
        let err = |e| self.query_error("resealing debt identifiers".into(), e);
        let mut changed = 0u64;
        loop {
            let rows = sqlx::query(
                "SELECT tenant, id, debt_id, debt_id_enc FROM leads WHERE \
                 (debt_id IS NOT NULL AND debt_id NOT LIKE $1) \
                 OR (debt_id_enc IS NOT NULL AND debt_id_enc NOT LIKE $2) LIMIT 200",
            )
            .bind(index_like.clone())
            .bind(current.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
            if rows.is_empty() {
                break;
            }
            let mut tx = self.pool.begin().await.map_err(err)?;
            for row in &rows {
                let id: String = self.get(row, "id", "leads")?;
                let debt = match self.get::<Option<String>>(row, "debt_id_enc", &id)? {
                    Some(enc) => self
                        .vault
                        .open("debt_id", &enc)
                        .map_err(|e| self.bad_row(&id, format!("debt_id_enc: {e}")))?,
                    // From before sealing: `debt_id` holds the identifier itself.
                    None => self.get(row, "debt_id", &id)?,
                };
                sqlx::query(
                    "UPDATE leads SET debt_id = $1, debt_id_enc = $2 WHERE tenant = $3 AND id = $4",
                )
                .bind(self.debt_index(&debt))
                .bind(self.seal("debt_id", &debt))
                .bind(self.get::<String>(row, "tenant", &id)?)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
                changed += 1;
            }
            tx.commit().await.map_err(err)?;
        }
        loop {
            let rows = sqlx::query(
                "SELECT tenant, id, debt_id FROM attempts WHERE debt_id IS NOT NULL \
                 AND debt_id NOT LIKE $1 LIMIT 200",
            )
            .bind(index_like.clone())
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
            if rows.is_empty() {
                break;
            }
            let mut tx = self.pool.begin().await.map_err(err)?;
            for row in &rows {
                let id: String = self.get(row, "id", "attempts")?;
                let debt: String = self.get(row, "debt_id", &id)?;
                sqlx::query("UPDATE attempts SET debt_id = $1 WHERE tenant = $2 AND id = $3")
                    .bind(self.debt_index(&debt))
                    .bind(self.get::<String>(row, "tenant", &id)?)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                changed += 1;
            }
            tx.commit().await.map_err(err)?;
        }
        Ok(changed)
    }

    /// A value re-sealed with the active key: a sealed one is opened first, anything else is
    /// plaintext from before sealing.
    fn reseal_value(
        &self,
        field: &str,
        value: &str,
        column: &str,
        what: &str,
    ) -> Result<String, StoreError> {
        let plain = if value.starts_with(SEALED_PREFIX) {
            self.vault
                .open(field, value)
                .map_err(|e| self.bad_row(what, format!("column {column}: {e}")))?
        } else {
            value.to_string()
        };
        Ok(self.seal(field, &plain))
    }

    /// The engine this store is on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL the store was opened with, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Saves a finished call with its turns, in one transaction. Idempotent on `call.id`: saving
    /// the same id again replaces the call and all its turns.
    pub async fn save_call(&self, call: &CallRecord) -> Result<(), StoreError> {
        let row = CallColumns::new(call)?;
        let action = || format!("saving call {}", call.id);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| self.query_error(action(), e))?;

        let mut upsert = sqlx::query(UPSERT_CALL)
            .bind(call.id.clone())
            .bind(call.direction.as_str())
            .bind(call.campaign.clone())
            .bind(call.lead_id.clone())
            .bind(self.phone_index(&call.phone))
            .bind(self.seal("phone", &call.phone))
            .bind(call.flow.clone())
            .bind(i64::from(call.flow_version))
            .bind(call.sip_call_id.clone())
            .bind(row.started_at_us)
            .bind(row.answered_at_us)
            .bind(row.ended_at_us)
            .bind(call.disposition.clone())
            .bind(call.outcome.clone())
            .bind(call.amd.clone())
            .bind(call.ended_by.clone())
            .bind(row.path_json)
            .bind(self.seal("slots", &row.slots_json));
        upsert = match (&call.recording, row.recording) {
            (Some(rec), Some((duration_ms, bytes))) => upsert
                .bind(Some(rec.path.clone()))
                .bind(Some(rec.sha256.clone()))
                .bind(Some(duration_ms))
                .bind(Some(bytes)),
            _ => upsert
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<i64>)
                .bind(None::<i64>),
        };
        upsert
            .bind(Utc::now().timestamp_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(action(), e))?;

        sqlx::query("DELETE FROM call_turns WHERE call_id = $1")
            .bind(call.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(action(), e))?;

        for (turn, cols) in call.turns.iter().zip(row.turns) {
            let latency = turn.latency.map(|l| {
                [
                    l.endpoint_ms,
                    l.asr_ms,
                    l.nlu_ms,
                    l.flow_ms,
                    l.tts_ms,
                    l.total_ms,
                ]
                .map(i64::from)
            });
            // Not a cached prepared statement: sqlx 0.8's Any driver sends a NULL
            // `Option<f64>` to PostgreSQL typed FLOAT4 (its NULL Real/Double mapping is swapped,
            // transact-rs/sqlx#4284), and a statement prepared with a NULL confidence then
            // rejects the next turn's FLOAT8 ("incorrect binary data format"). Prepared per
            // execution, the parameter takes the type of the value at hand.
            let mut insert = sqlx::query(INSERT_TURN)
                .persistent(false)
                .bind(call.id.clone())
                .bind(i64::from(turn.seq))
                .bind(turn.speaker.as_str())
                .bind(self.seal("turn", &turn.text))
                .bind(cols.start_ms)
                .bind(cols.end_ms)
                .bind(turn.step.clone())
                .bind(turn.intent.clone())
                .bind(turn.confidence.filter(|v| v.is_finite()))
                .bind(turn.sentiment.filter(|v| v.is_finite()))
                .bind(i64::from(turn.interrupted));
            for i in 0..6 {
                insert = insert.bind(latency.map(|l| l[i]));
            }
            insert.execute(&mut *tx).await.map_err(|e| {
                self.query_error(format!("saving turn {} of call {}", turn.seq, call.id), e)
            })?;
        }
        sqlx::query("DELETE FROM call_legs WHERE call_id = $1")
            .bind(call.id.clone())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(action(), e))?;
        for (seq, leg) in call.legs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO call_legs (call_id, seq, kind, agent_id, queue, wait_ms, \
                 started_at_us, ended_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(call.id.clone())
            .bind(seq as i64)
            .bind(leg.kind.clone())
            .bind(leg.agent_id.clone())
            .bind(leg.queue.clone())
            .bind(leg.wait_ms.map(|w| w.min(i64::MAX as u64) as i64))
            .bind(leg.started_at.timestamp_micros())
            .bind(leg.ended_at.timestamp_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_error(format!("saving leg {seq} of call {}", call.id), e))?;
        }
        tx.commit().await.map_err(|e| self.query_error(action(), e))
    }

    /// The legs of a call, in order.
    async fn legs(&self, id: &str) -> Result<Vec<CallLeg>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, agent_id, queue, wait_ms, started_at_us, ended_at_us FROM call_legs \
             WHERE call_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_error(format!("reading the legs of call {id}"), e))?;
        rows.iter()
            .map(|row| {
                Ok(CallLeg {
                    kind: self.get(row, "kind", id)?,
                    agent_id: self.get(row, "agent_id", id)?,
                    queue: self.get(row, "queue", id)?,
                    wait_ms: self
                        .get::<Option<i64>>(row, "wait_ms", id)?
                        .map(|w| w.max(0) as u64),
                    started_at: self.time(row, "started_at_us", id)?,
                    ended_at: self.time(row, "ended_at_us", id)?,
                })
            })
            .collect()
    }

    /// The call with this id, with its turns in `seq` order; `None` if there is none.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let rows = sqlx::query(SELECT_CALL)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error(format!("reading call {id}"), e))?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut call = self.call_from_row(first, id)?;
        for row in &rows {
            // A call without turns comes back as one row with NULL turn columns.
            if self.get::<Option<i64>>(row, "seq", id)?.is_some() {
                call.turns.push(self.turn_from_row(row, id)?);
            }
        }
        call.legs = self.legs(id).await?;
        Ok(Some(call))
    }

    /// Calls matching `filter`, newest first (by `started_at`, then by id descending, so that
    /// pages are stable), without their transcripts.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallSummary>, StoreError> {
        let mut sql = String::from(
            "SELECT c.id, c.direction, c.campaign, c.phone_enc, c.flow, c.started_at_us, \
             c.ended_at_us, c.disposition, c.outcome, c.amd, \
             (SELECT COUNT(*) FROM call_turns t WHERE t.call_id = c.id) AS turn_count \
             FROM calls c WHERE 1 = 1",
        );
        let mut params: Vec<Param> = Vec::new();
        let mut condition = |column: &str, op: &str, value: Param| {
            params.push(value);
            sql.push_str(&format!(" AND c.{column} {op} ${}", params.len()));
        };
        let texts = [
            ("campaign", &filter.campaign),
            ("lead_id", &filter.lead_id),
            (
                "phone",
                &filter.phone.as_deref().map(|p| self.phone_index(p)),
            ),
            ("flow", &filter.flow),
            ("outcome", &filter.outcome),
            ("disposition", &filter.disposition),
        ];
        for (column, value) in texts {
            if let Some(value) = value {
                condition(column, "=", Param::Text(value.clone()));
            }
        }
        if let Some(direction) = filter.direction {
            condition("direction", "=", Param::Text(direction.as_str().into()));
        }
        if let Some(since) = filter.since {
            condition("started_at_us", ">=", Param::Int(since.timestamp_micros()));
        }
        if let Some(until) = filter.until {
            condition("started_at_us", "<", Param::Int(until.timestamp_micros()));
        }
        if let Some(tenant) = &filter.tenant {
            params.push(Param::Text(tenant.clone()));
            let n = params.len();
            sql.push_str(&format!(
                " AND (EXISTS (SELECT 1 FROM attempts a WHERE a.call_id = c.id AND a.tenant = ${n}) \
                 OR (c.campaign IS NULL AND ${n} = 'default'))"
            ));
        }
        let limit = filter.limit.map_or(i64::MAX, i64::from);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        params.push(Param::Int(limit));
        params.push(Param::Int(offset));
        sql.push_str(&format!(
            " ORDER BY c.started_at_us DESC, c.id DESC LIMIT ${} OFFSET ${}",
            params.len() - 1,
            params.len()
        ));

        let mut query = sqlx::query(&sql);
        for param in params {
            query = match param {
                Param::Text(s) => query.bind(s),
                Param::Int(i) => query.bind(i),
            };
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.query_error("listing calls".to_string(), e))?;
        rows.iter().map(|row| self.summary_from_row(row)).collect()
    }

    /// Closes the connection pool, waiting for connections in use to be returned.
    pub async fn close(self) {
        self.pool.close().await;
    }

    pub(crate) fn query_error(&self, action: String, source: sqlx::Error) -> StoreError {
        StoreError::Query {
            url: self.url.clone(),
            action,
            source,
        }
    }

    pub(crate) fn bad_row(&self, id: &str, reason: String) -> StoreError {
        StoreError::BadRow {
            url: self.url.clone(),
            id: id.to_string(),
            reason,
        }
    }

    pub(crate) fn get<'r, T>(
        &self,
        row: &'r AnyRow,
        column: &str,
        id: &str,
    ) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    {
        row.try_get(column)
            .map_err(|e| self.bad_row(id, format!("column {column}: {e}")))
    }

    pub(crate) fn time(
        &self,
        row: &AnyRow,
        column: &str,
        id: &str,
    ) -> Result<DateTime<Utc>, StoreError> {
        let us: i64 = self.get(row, column, id)?;
        from_micros(us).ok_or_else(|| self.bad_row(id, format!("{column} {us} out of range")))
    }

    fn unsigned<T: TryFrom<i64>>(
        &self,
        row: &AnyRow,
        column: &str,
        id: &str,
    ) -> Result<T, StoreError> {
        let v: i64 = self.get(row, column, id)?;
        T::try_from(v).map_err(|_| self.bad_row(id, format!("{column} {v} out of range")))
    }

    fn direction(&self, row: &AnyRow, id: &str) -> Result<Direction, StoreError> {
        let name: String = self.get(row, "direction", id)?;
        Direction::from_name(&name)
            .ok_or_else(|| self.bad_row(id, format!("unknown direction {name:?}")))
    }

    fn call_from_row(&self, row: &AnyRow, id: &str) -> Result<CallRecord, StoreError> {
        let path_json: String = self.get(row, "path_json", id)?;
        let path = serde_json::from_str(&path_json)
            .map_err(|e| self.bad_row(id, format!("path_json: {e}")))?;
        let slots_json = self.open_col(row, "slots_json", "slots", id)?;
        let slots = serde_json::from_str(&slots_json)
            .map_err(|e| self.bad_row(id, format!("slots_json: {e}")))?;
        let answered_at = match self.get::<Option<i64>>(row, "answered_at_us", id)? {
            Some(us) => Some(
                from_micros(us)
                    .ok_or_else(|| self.bad_row(id, format!("answered_at_us {us} out of range")))?,
            ),
            None => None,
        };
        let recording = match self.get::<Option<String>>(row, "recording_path", id)? {
            Some(path) => Some(RecordingRef {
                path,
                sha256: self.get(row, "recording_sha256", id)?,
                duration_ms: self.unsigned(row, "recording_duration_ms", id)?,
                bytes: self.unsigned(row, "recording_bytes", id)?,
            }),
            None => None,
        };
        Ok(CallRecord {
            id: self.get(row, "id", id)?,
            direction: self.direction(row, id)?,
            campaign: self.get(row, "campaign", id)?,
            lead_id: self.get(row, "lead_id", id)?,
            phone: self.open_col(row, "phone_enc", "phone", id)?,
            flow: self.get(row, "flow", id)?,
            flow_version: self.unsigned(row, "flow_version", id)?,
            sip_call_id: self.get(row, "sip_call_id", id)?,
            started_at: self.time(row, "started_at_us", id)?,
            answered_at,
            ended_at: self.time(row, "ended_at_us", id)?,
            disposition: self.get(row, "disposition", id)?,
            outcome: self.get(row, "outcome", id)?,
            amd: self.get(row, "amd", id)?,
            ended_by: self.get(row, "ended_by", id)?,
            path,
            slots,
            turns: Vec::new(),
            recording,
            legs: Vec::new(),
        })
    }

    fn turn_from_row(&self, row: &AnyRow, id: &str) -> Result<TurnRecord, StoreError> {
        let speaker: String = self.get(row, "speaker", id)?;
        let speaker = Speaker::from_name(&speaker)
            .ok_or_else(|| self.bad_row(id, format!("unknown speaker {speaker:?}")))?;
        let interrupted: i64 = self.get(row, "interrupted", id)?;
        let latency = match self.get::<Option<i64>>(row, "latency_total_ms", id)? {
            Some(_) => Some(StageLatency {
                endpoint_ms: self.unsigned(row, "latency_endpoint_ms", id)?,
                asr_ms: self.unsigned(row, "latency_asr_ms", id)?,
                nlu_ms: self.unsigned(row, "latency_nlu_ms", id)?,
                flow_ms: self.unsigned(row, "latency_flow_ms", id)?,
                tts_ms: self.unsigned(row, "latency_tts_ms", id)?,
                total_ms: self.unsigned(row, "latency_total_ms", id)?,
            }),
            None => None,
        };
        Ok(TurnRecord {
            seq: self.unsigned(row, "seq", id)?,
            speaker,
            text: self.open_col(row, "text", "turn", id)?,
            start_ms: self.unsigned(row, "start_ms", id)?,
            end_ms: self.unsigned(row, "end_ms", id)?,
            step: self.get(row, "step", id)?,
            intent: self.get(row, "intent", id)?,
            confidence: self.get(row, "confidence", id)?,
            sentiment: self.get(row, "sentiment", id)?,
            interrupted: interrupted != 0,
            latency,
        })
    }

    fn summary_from_row(&self, row: &AnyRow) -> Result<CallSummary, StoreError> {
        let id: String = self.get(row, "id", "")?;
        let started_at = self.time(row, "started_at_us", &id)?;
        let ended_at = self.time(row, "ended_at_us", &id)?;
        let duration_ms = u64::try_from((ended_at - started_at).num_milliseconds()).unwrap_or(0);
        Ok(CallSummary {
            direction: self.direction(row, &id)?,
            campaign: self.get(row, "campaign", &id)?,
            phone: self.open_col(row, "phone_enc", "phone", &id)?,
            flow: self.get(row, "flow", &id)?,
            started_at,
            duration_ms,
            disposition: self.get(row, "disposition", &id)?,
            outcome: self.get(row, "outcome", &id)?,
            amd: self.get(row, "amd", &id)?,
            turns: self.unsigned(row, "turn_count", &id)?,
            id,
        })
    }
}

/// A table with sealed columns, for [`Store::reseal`].
struct SealedTable {
    table: &'static str,
    /// The primary key's columns.
    key: &'static [&'static str],
    /// Sealed columns and their field names (the associated data they are sealed with).
    sealed: &'static [(&'static str, &'static str)],
    /// Whether the table has `phone` (blind index) and `phone_enc` (sealed number).
    phone: bool,
}

/// Every column of personal data the store seals.
const SEALED_TABLES: &[SealedTable] = &[
    SealedTable {
        table: "calls",
        key: &["id"],
        sealed: &[("slots_json", "slots")],
        phone: true,
    },
    SealedTable {
        table: "call_turns",
        key: &["call_id", "seq"],
        sealed: &[("text", "turn")],
        phone: false,
    },
    SealedTable {
        table: "leads",
        key: &["tenant", "id"],
        sealed: &[
            ("name", "name"),
            ("external_id", "external_id"),
            ("fields_json", "fields"),
        ],
        phone: true,
    },
    SealedTable {
        table: "attempts",
        key: &["tenant", "id"],
        sealed: &[],
        phone: true,
    },
    SealedTable {
        table: "dnc",
        key: &["tenant", "phone"],
        sealed: &[],
        phone: true,
    },
    SealedTable {
        table: "dial_decisions",
        key: &["tenant", "id"],
        sealed: &[],
        phone: true,
    },
    SealedTable {
        table: "audit_events",
        key: &["tenant", "id"],
        sealed: &[
            ("subject", "audit_subject"),
            ("detail_json", "audit_detail"),
        ],
        phone: false,
    },
    SealedTable {
        table: "agents",
        key: &["tenant", "id"],
        sealed: &[("sip_password", "sip_password")],
        phone: false,
    },
    SealedTable {
        table: "agent_dispositions",
        key: &["call_id", "agent_id"],
        sealed: &[("notes", "notes")],
        phone: false,
    },
];

/// A bind parameter of a dynamically built query.
enum Param {
    Text(String),
    Int(i64),
}

const UPSERT_CALL: &str = "INSERT INTO calls (id, direction, campaign, lead_id, phone, \
    phone_enc, flow, flow_version, sip_call_id, started_at_us, answered_at_us, ended_at_us, disposition, outcome, \
    amd, ended_by, path_json, slots_json, recording_path, recording_sha256, \
    recording_duration_ms, recording_bytes, saved_at_us) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
    $20, $21, $22, $23) \
    ON CONFLICT (id) DO UPDATE SET direction = excluded.direction, \
    campaign = excluded.campaign, lead_id = excluded.lead_id, phone = excluded.phone, \
    phone_enc = excluded.phone_enc, \
    flow = excluded.flow, flow_version = excluded.flow_version, \
    sip_call_id = excluded.sip_call_id, started_at_us = excluded.started_at_us, \
    answered_at_us = excluded.answered_at_us, ended_at_us = excluded.ended_at_us, \
    disposition = excluded.disposition, outcome = excluded.outcome, amd = excluded.amd, \
    ended_by = excluded.ended_by, path_json = excluded.path_json, \
    slots_json = excluded.slots_json, recording_path = excluded.recording_path, \
    recording_sha256 = excluded.recording_sha256, \
    recording_duration_ms = excluded.recording_duration_ms, \
    recording_bytes = excluded.recording_bytes, saved_at_us = excluded.saved_at_us";

const INSERT_TURN: &str = "INSERT INTO call_turns (call_id, seq, speaker, text, start_ms, \
    end_ms, step, intent, confidence, sentiment, interrupted, latency_endpoint_ms, \
    latency_asr_ms, latency_nlu_ms, latency_flow_ms, latency_tts_ms, latency_total_ms) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

const SELECT_CALL: &str = "SELECT c.id, c.direction, c.campaign, c.lead_id, c.phone_enc, c.flow, \
    c.flow_version, c.sip_call_id, c.started_at_us, c.answered_at_us, c.ended_at_us, \
    c.disposition, c.outcome, c.amd, c.ended_by, c.path_json, c.slots_json, c.recording_path, \
    c.recording_sha256, c.recording_duration_ms, c.recording_bytes, \
    t.seq, t.speaker, t.text, t.start_ms, t.end_ms, t.step, t.intent, t.confidence, t.sentiment, \
    t.interrupted, t.latency_endpoint_ms, t.latency_asr_ms, t.latency_nlu_ms, t.latency_flow_ms, \
    t.latency_tts_ms, t.latency_total_ms \
    FROM calls c LEFT JOIN call_turns t ON t.call_id = c.id \
    WHERE c.id = $1 ORDER BY t.seq";

/// The columns of a call that need converting or checking before they are written.
struct CallColumns {
    started_at_us: i64,
    answered_at_us: Option<i64>,
    ended_at_us: i64,
    path_json: String,
    slots_json: String,
    /// `(duration_ms, bytes)` of the recording.
    recording: Option<(i64, i64)>,
    turns: Vec<TurnColumns>,
}

struct TurnColumns {
    start_ms: i64,
    end_ms: i64,
}

impl CallColumns {
    fn new(call: &CallRecord) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidRecord {
            id: call.id.clone(),
            reason,
        };
        if call.id.is_empty() {
            return Err(invalid("the id is empty".into()));
        }
        let mut texts: Vec<(String, &str)> = vec![
            ("id".into(), &call.id),
            ("phone".into(), &call.phone),
            ("flow".into(), &call.flow),
            ("disposition".into(), &call.disposition),
        ];
        let optional = [
            ("campaign", &call.campaign),
            ("lead_id", &call.lead_id),
            ("sip_call_id", &call.sip_call_id),
            ("outcome", &call.outcome),
            ("amd", &call.amd),
            ("ended_by", &call.ended_by),
        ];
        texts.extend(
            optional
                .iter()
                .filter_map(|(name, v)| v.as_deref().map(|v| (name.to_string(), v))),
        );
        if let Some(rec) = &call.recording {
            texts.push(("recording.path".into(), &rec.path));
            texts.push(("recording.sha256".into(), &rec.sha256));
        }
        for turn in &call.turns {
            texts.push((format!("turns[seq {}].text", turn.seq), &turn.text));
            for (name, v) in [("step", &turn.step), ("intent", &turn.intent)] {
                if let Some(v) = v {
                    texts.push((format!("turns[seq {}].{name}", turn.seq), v));
                }
            }
        }
        if let Some((name, _)) = texts.iter().find(|(_, v)| v.contains('\0')) {
            return Err(invalid(format!(
                "{name} contains a NUL character, which PostgreSQL cannot store"
            )));
        }
        let mut seqs: Vec<u32> = call.turns.iter().map(|t| t.seq).collect();
        seqs.sort_unstable();
        if let Some(w) = seqs.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("two turns have seq {}", w[0])));
        }
        let int = |name: String, v: u64| {
            i64::try_from(v).map_err(|_| invalid(format!("{name} {v} is too large to store")))
        };
        let recording = match &call.recording {
            Some(rec) => Some((
                int("recording.duration_ms".into(), rec.duration_ms)?,
                int("recording.bytes".into(), rec.bytes)?,
            )),
            None => None,
        };
        let turns = call
            .turns
            .iter()
            .map(|t| {
                Ok(TurnColumns {
                    start_ms: int(format!("turns[seq {}].start_ms", t.seq), t.start_ms)?,
                    end_ms: int(format!("turns[seq {}].end_ms", t.seq), t.end_ms)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let path_json = serde_json::to_string(&call.path)
            .map_err(|e| invalid(format!("path cannot be written as JSON: {e}")))?;
        let slots_json = serde_json::to_string(&call.slots)
            .map_err(|e| invalid(format!("slots cannot be written as JSON: {e}")))?;
        Ok(CallColumns {
            started_at_us: call.started_at.timestamp_micros(),
            answered_at_us: call.answered_at.map(|t| t.timestamp_micros()),
            ended_at_us: call.ended_at.timestamp_micros(),
            path_json,
            slots_json,
            recording,
            turns,
        })
    }
}

/// ` at migration N (description)` for an error in one migration, else empty.
fn failed_migration(error: &MigrateError) -> String {
    let MigrateError::ExecuteMigration(_, version) = error else {
        return String::new();
    };
    match MIGRATOR.iter().find(|m| m.version == *version) {
        Some(m) => format!(" at migration {version} ({})", m.description),
        None => format!(" at migration {version}"),
    }
}

pub(crate) fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// Checks the scheme and returns the backend, the URL to hand to sqlx, and for a SQLite file,
/// its path.
fn resolve_url(url: &str) -> Result<(Backend, String, Option<String>), StoreError> {
    let unsupported = |reason: &str| StoreError::UnsupportedUrl {
        url: redact_url(url),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(unsupported(
            "no scheme; expected sqlite://PATH, sqlite::memory: or postgres://…",
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Ok((Backend::Postgres, url.to_string(), None)),
        "sqlite" => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, params) = match rest.split_once('?') {
                Some((path, params)) => (path, Some(params)),
                None => (rest, None),
            };
            let memory = path == ":memory:"
                || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
            if path.is_empty() {
                return Err(unsupported("no file path after sqlite://"));
            }
            if memory {
                return Ok((Backend::Sqlite, url.to_string(), None));
            }
            let has_mode = params.is_some_and(|p| p.split('&').any(|kv| kv.starts_with("mode=")));
            let connect_url = match (params, has_mode) {
                (_, true) => url.to_string(),
                (Some(_), false) => format!("{url}&mode=rwc"),
                (None, false) => format!("{url}?mode=rwc"),
            };
            Ok((Backend::Sqlite, connect_url, Some(path.to_string())))
        }
        _ => Err(unsupported(&format!(
            "unknown scheme {scheme:?}; expected sqlite or postgres"
        ))),
    }
}

/// `url` with any password (`user:PASSWORD@host`, `?password=…`) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    // The last `@` before the query ends the user info (a password may contain `/`).
    let mut out = format!("{scheme}://");
    match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***{host}")),
                None => out.push_str(before_query),
            }
        }
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bot:s3cr/et@db.example:5432/callbot?sslmode=require"),
            "postgres://bot:***@db.example:5432/callbot?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/callbot?user=bot&password=hunter2"),
            "postgres://db/callbot?user=bot&password=***"
        );
        assert_eq!(
            redact_url("postgres://bot@db/callbot"),
            "postgres://bot@db/callbot"
        );
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn urls_resolve_to_backends() {
        let (b, u, f) = resolve_url("sqlite://data/callbot.db").expect("sqlite file");
        assert_eq!(b, Backend::Sqlite);
        assert_eq!(u, "sqlite://data/callbot.db?mode=rwc");
        assert_eq!(f.as_deref(), Some("data/callbot.db"));
        let (_, u, f) = resolve_url("sqlite:///var/x.db?mode=ro").expect("sqlite ro");
        assert_eq!(u, "sqlite:///var/x.db?mode=ro");
        assert_eq!(f.as_deref(), Some("/var/x.db"));
        let (_, _, f) = resolve_url("sqlite::memory:").expect("memory");
        assert_eq!(f, None);
        let (b, _, _) = resolve_url("postgresql://h/db").expect("pg");
        assert_eq!(b, Backend::Postgres);
        for bad in ["mysql://u:pw@h/db", "callbot.db", "sqlite://", "http://x"] {
            let err = resolve_url(bad).expect_err(bad);
            assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{bad}");
        }
        let err = resolve_url("mysql://u:pw@h/db").expect_err("mysql");
        let text = err.to_string();
        assert!(text.contains("mysql://u:***@h/db"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
}
