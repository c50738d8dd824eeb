//! Backup and restore of the SQLite store (`callbot backup` / `callbot restore`).
//!
//! # Backup: online and consistent
//!
//! [`backup_sqlite`] runs SQLite's `VACUUM INTO` on a connection of its own to the live database.
//! `VACUUM INTO` reads the whole database inside one read transaction, so the copy is one
//! snapshot: every transaction committed before it began is in, none committed after it is, and a
//! call (saved in one transaction with its turns) is either whole or absent. In WAL mode (which
//! [`Store::open`] sets) readers do not block the writer, so callbot keeps saving calls while the
//! copy is made. The copy is written to a temporary file next to the destination, fsynced,
//! checked (`PRAGMA integrity_check`, row counts, the applied migrations) and only then renamed
//! into place, so a failed backup never leaves a half-written file under the destination's name.
//! A manifest, `DEST.json` ([`Manifest`]), records when and from where the copy was taken, its
//! size, its SHA-256, the row count of every table and the applied migrations.
//!
//! # Restore: verified, atomic
//!
//! [`restore_sqlite`] checks the backup first: the SQLite header, the SHA-256 and size against
//! the manifest when there is one (a bit flipped anywhere in the file is caught here),
//! `PRAGMA integrity_check`, and that every migration it records is one this binary knows
//! (the same version and checksum), so a backup from a newer callbot is refused before anything
//! is touched. It refuses to replace an existing database unless forced, and refuses one that
//! another connection holds open (see [`restore_sqlite`] for how far that detection goes: callbot
//! should be stopped). The file is copied to a temporary file in the target's directory, fsynced,
//! the target's stale `-wal`, `-shm` and `-journal` files are removed (SQLite would otherwise
//! replay them onto the restored file), and the copy is renamed over the target. Opening it with
//! [`Store::open`] then applies any migrations newer than the backup.
//!
//! # PostgreSQL
//!
//! Not handled here, on purpose: PostgreSQL's own tools do it better ([`POSTGRES_PRACTICE`]).
//! Both functions refuse a `postgres://` URL with [`BackupError::Postgres`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteLockingMode};
use sqlx::{Connection, Row};

use crate::store::{Store, StoreError, redact_url};
use crate::vault::{KEYS_ENV, KEYS_FILE_ENV, Vault, default_keys_file};

/// The migrations this binary knows (the same files [`Store::open`] applies).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The manifest format written by this version.
pub const MANIFEST_FORMAT: u32 = 1;

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How long the backup's connection waits for SQLite's lock (a writer checkpointing).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What to do for PostgreSQL, printed when a `postgres://` URL is given.
pub const POSTGRES_PRACTICE: &str = "callbot backup/restore copy the SQLite database only; \
back up PostgreSQL with its own tools: `pg_dump --format=custom --file=callbot.dump URL` \
(online, one consistent snapshot) and, with callbot stopped, `pg_restore --clean --if-exists \
--dbname=URL callbot.dump`; for point-in-time recovery use continuous WAL archiving \
(archive_command plus a pg_basebackup base backup). See README, \"Backup and restore\"";

/// Why a backup or restore failed. Nothing is left under the destination's (or target's) name
/// when one fails before the final rename.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A PostgreSQL URL: use PostgreSQL's tools ([`POSTGRES_PRACTICE`]).
    #[error("{url} is a PostgreSQL database: {POSTGRES_PRACTICE}")]
    Postgres {
        /// The URL, password redacted.
        url: String,
    },
    /// A URL that names no SQLite file.
    #[error("cannot back up or restore {url}: {reason}")]
    UnsupportedUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database or backup file to read does not exist.
    #[error("{what} {path} does not exist")]
    Missing {
        /// `"database"` or `"backup"`.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file to write exists and the caller did not ask to replace it.
    #[error("{what} {path} already exists: {hint}")]
    Exists {
        /// `"backup destination"` or `"target database"`.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// What to do about it.
        hint: &'static str,
    },
    /// Source and destination are the same file.
    #[error("{path} is both the database and the backup")]
    SameFile {
        /// The path.
        path: PathBuf,
    },
    /// Another connection holds the target database open.
    #[error(
        "target database {path} is in use by another connection: stop callbot (every dialer \
         node and the admin API on this file) before restoring"
    )]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// The backup (or the copy just taken) fails a check; nothing was restored.
    #[error("backup {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which check failed.
        reason: String,
    },
    /// The backup is a sound SQLite file that this callbot cannot restore.
    #[error("backup {path} cannot be restored by this callbot: {reason}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. `writing`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A SQLite operation failed.
    #[error("{action} {path}: {source}")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The keyring given for the restore does not hold the keys the backup's personal data
    /// was sealed with (see [`crate::vault`]); nothing was restored.
    #[error("backup {path}: {reason}")]
    Keys {
        /// The backup file.
        path: PathBuf,
        /// Which key is missing or different.
        reason: String,
    },
    /// Opening the restored database with [`Store::open`] failed.
    #[error("the backup was restored but opening it failed: {0}")]
    Store(#[from] StoreError),
}

/// What a backup holds, written next to it as `DEST.json` and read back by [`restore_sqlite`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The backup file's name (the manifest sits beside it).
    pub file: String,
    /// The database it was taken from (URL, password redacted).
    pub source: String,
    /// When the copy was taken (its snapshot is from about then).
    pub created_at: DateTime<Utc>,
    /// The backup file's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the backup file, lowercase hex.
    pub sha256: String,
    /// The SQLite library that wrote it.
    pub sqlite_version: String,
    /// Row count of every table (`sqlite_*` internals left out).
    pub tables: BTreeMap<String, u64>,
    /// Versions of the applied migrations (`_sqlx_migrations`), ascending.
    pub migrations: Vec<i64>,
}

/// The result of [`backup_sqlite`].
#[derive(Debug, Clone, PartialEq)]
pub struct BackupInfo {
    /// The backup file.
    pub path: PathBuf,
    /// Its manifest (`path` + `.json`).
    pub manifest_path: PathBuf,
    /// What the manifest says (checked on the copy: integrity, counts, migrations).
    pub manifest: Manifest,
    /// Whether an existing file was replaced.
    pub replaced: bool,
}

/// The result of [`restore_sqlite`].
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreInfo {
    /// The backup restored.
    pub backup: PathBuf,
    /// The database file written.
    pub target: PathBuf,
    /// The backup's size in bytes.
    pub bytes: u64,
    /// The backup's SHA-256, lowercase hex.
    pub sha256: String,
    /// Whether a manifest was found and the file matched it (size and SHA-256).
    pub manifest_checked: bool,
    /// Whether an existing database was replaced.
    pub replaced: bool,
    /// Row counts in the backup.
    pub backup_tables: BTreeMap<String, u64>,
    /// Row counts of the restored database after opening it (migrations applied).
    pub tables: BTreeMap<String, u64>,
    /// Migrations recorded in the backup.
    pub backup_migrations: Vec<i64>,
    /// Migrations applied on opening the restored database (newer than the backup).
    pub applied_migrations: Vec<i64>,
    /// The keys file written beside the restored database, if one was (see
    /// [`restore_sqlite`]).
    pub keys_file: Option<PathBuf>,
}

/// The manifest path of a backup: `DEST.json`.
pub fn manifest_path(backup: &Path) -> PathBuf {
    let mut name = OsString::from(backup.as_os_str());
    name.push(".json");
    PathBuf::from(name)
}

/// The SQLite file a URL names (`sqlite://path`, `sqlite:///abs/path`, query ignored).
/// PostgreSQL URLs give [`BackupError::Postgres`]; in-memory databases and other schemes are
/// refused.
pub fn sqlite_path(url: &str) -> Result<PathBuf, BackupError> {
    let shown = redact_url(url);
    let unsupported = |reason: &str| BackupError::UnsupportedUrl {
        url: shown.clone(),
        reason: reason.to_string(),
    };
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err(unsupported("no scheme; expected sqlite://PATH"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Err(BackupError::Postgres { url: shown }),
        "sqlite" => {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, params) = match rest.split_once('?') {
                Some((path, params)) => (path, Some(params)),
                None => (rest, None),
            };
            let memory = path == ":memory:"
                || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
            if memory {
                return Err(unsupported(
                    "an in-memory database has nothing on disk to copy",
                ));
            }
            if path.is_empty() {
                return Err(unsupported("no file path after sqlite://"));
            }
            Ok(PathBuf::from(path))
        }
        other => Err(unsupported(&format!(
            "unknown scheme {other:?}; expected sqlite://PATH (or postgres://, see the docs)"
        ))),
    }
}

/// Takes an online, consistent copy of the SQLite database at `url` into `dest` (see the module
/// docs), verifies it and writes `DEST.json`. Refuses an existing `dest` unless `overwrite`.
/// Safe while callbot is running and writing: the copy is one read transaction.
pub async fn backup_sqlite(
    url: &str,
    dest: &Path,
    overwrite: bool,
) -> Result<BackupInfo, BackupError> {
    let source = sqlite_path(url)?;
    if !source.is_file() {
        return Err(BackupError::Missing {
            what: "database",
            path: source,
        });
    }
    let replaced = dest.exists();
    if replaced && !overwrite {
        return Err(BackupError::Exists {
            what: "backup destination",
            path: dest.to_path_buf(),
            hint: "choose another path, or pass --force to replace it",
        });
    }
    if replaced && same_file(&source, dest) {
        return Err(BackupError::SameFile {
            path: dest.to_path_buf(),
        });
    }
    let dir = parent_dir(dest);
    std::fs::create_dir_all(&dir).map_err(|source| BackupError::Io {
        action: "creating directory",
        path: dir.clone(),
        source,
    })?;
    let temp = TempPath::new(&dir, dest, "backup")?;
    let temp_str = temp
        .path
        .to_str()
        .ok_or_else(|| BackupError::UnsupportedUrl {
            url: dest.display().to_string(),
            reason: "the backup path is not valid UTF-8".into(),
        })?;

    // The copy: one read transaction on a connection of our own.
    let options = SqliteConnectOptions::new()
        .filename(&source)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| sqlite_error("opening database", &source, e))?;
    let created_at = Utc::now();
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(temp_str)
        .execute(&mut conn)
        .await
        .map_err(|e| sqlite_error("copying (VACUUM INTO) database", &source, e));
    // Best effort: the copy is complete (or failed) whether or not the close is clean.
    let _ = conn.close().await;
    copied?;
    sync_file(&temp.path)?;

    // Check the copy before it gets the destination's name.
    let inspected = inspect(&temp.path, true).await?;
    if let Err(reason) = inspected.integrity {
        return Err(BackupError::Corrupt {
            path: dest.to_path_buf(),
            reason: format!("the fresh copy fails integrity_check: {reason}"),
        });
    }
    let (bytes, sha256) = hash_file(&temp.path)?;
    if replaced {
        remove_sidecars(dest)?;
    }
    temp.persist(dest)?;

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        file: dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source: redact_url(url),
        created_at,
        bytes,
        sha256,
        sqlite_version: inspected.sqlite_version,
        tables: inspected.tables,
        migrations: inspected.migrations.iter().map(|(v, _)| *v).collect(),
    };
    let manifest_path = manifest_path(dest);
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io {
        action: "encoding manifest",
        path: manifest_path.clone(),
        source: e.into(),
    })?;
    let temp = TempPath::new(&dir, &manifest_path, "manifest")?;
    write_synced(&temp.path, &json)?;
    temp.persist(&manifest_path)?;
    Ok(BackupInfo {
        path: dest.to_path_buf(),
        manifest_path,
        manifest,
        replaced,
    })
}

/// Restores `backup` into the SQLite database at `target_url` (see the module docs): verifies
/// the backup, checks that `keys` holds the keys its personal data was sealed with, refuses an
/// existing target unless `force`, copies it atomically and opens it with
/// [`Store::open_with_keys`] (applying newer migrations).
///
/// **Stop callbot first.** With `force`, a target held open by another connection is refused
/// ([`BackupError::InUse`]): an exclusive lock on the file cannot be had while any connection of
/// any process has it open in WAL mode. The check and the rename are not one atomic step, so a
/// process that opens the file in between would keep writing to the replaced file.
pub async fn restore_sqlite(
    backup: &Path,
    target_url: &str,
    force: bool,
    keys: &Vault,
) -> Result<RestoreInfo, BackupError> {
    let target = sqlite_path(target_url)?;
    if !backup.is_file() {
        return Err(BackupError::Missing {
            what: "backup",
            path: backup.to_path_buf(),
        });
    }
    let corrupt = |reason: String| BackupError::Corrupt {
        path: backup.to_path_buf(),
        reason,
    };

    // 1. The file against its manifest.
    check_magic(backup)?;
    let (bytes, sha256) = hash_file(backup)?;
    let manifest_file = manifest_path(backup);
    let manifest_checked = match std::fs::read(&manifest_file) {
        Ok(json) => {
            let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| {
                corrupt(format!(
                    "its manifest {} is unreadable: {e}",
                    manifest_file.display()
                ))
            })?;
            if manifest.bytes != bytes {
                return Err(corrupt(format!(
                    "it is {bytes} bytes, its manifest says {} (truncated or changed since the \
                     backup)",
                    manifest.bytes
                )));
            }
            if manifest.sha256 != sha256 {
                return Err(corrupt(format!(
                    "its SHA-256 is {sha256}, its manifest says {} (changed since the backup)",
                    manifest.sha256
                )));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => {
            return Err(BackupError::Io {
                action: "reading manifest",
                path: manifest_file,
                source,
            });
        }
    };

    // 2. The database inside.
    let inspected = inspect(backup, true).await?;
    if let Err(reason) = inspected.integrity {
        return Err(corrupt(format!("integrity_check: {reason}")));
    }
    check_migrations(backup, &inspected)?;
    check_keys(backup, &inspected, keys)?;

    // 3. The target.
    let exists = target.exists() || sidecar(&target, "-wal").exists();
    if exists && !force {
        return Err(BackupError::Exists {
            what: "target database",
            path: target.clone(),
            hint: "stop callbot and pass --force to replace it",
        });
    }
    if target.exists() {
        if same_file(backup, &target) {
            return Err(BackupError::SameFile { path: target });
        }
        check_not_in_use(&target).await?;
    }

    // 4. Copy next to the target, then swap it in.
    let dir = parent_dir(&target);
    std::fs::create_dir_all(&dir).map_err(|source| BackupError::Io {
        action: "creating directory",
        path: dir.clone(),
        source,
    })?;
    let temp = TempPath::new(&dir, &target, "restore")?;
    let copied_sha = copy_hashed(backup, &temp.path)?;
    if copied_sha != sha256 {
        return Err(corrupt(
            "it changed while being copied; nothing was restored".into(),
        ));
    }
    remove_sidecars(&target)?;
    temp.persist(&target)?;

    // 5. Open it as callbot does (newer migrations applied), then count.
    let store = Store::open_with_keys(target_url, keys.clone()).await?;
    store.close().await;
    let keys_file = install_keys(target_url, keys)?;
    let after = inspect(&target, false).await?;
    if let Err(reason) = after.integrity {
        return Err(BackupError::Corrupt {
            path: target,
            reason: format!("the restored database fails integrity_check: {reason}"),
        });
    }
    let backup_migrations: Vec<i64> = inspected.migrations.iter().map(|(v, _)| *v).collect();
    let applied_migrations = after
        .migrations
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !backup_migrations.contains(v))
        .collect();
    Ok(RestoreInfo {
        backup: backup.to_path_buf(),
        target,
        bytes,
        sha256,
        manifest_checked,
        replaced: exists,
        backup_tables: inspected.tables,
        tables: after.tables,
        backup_migrations,
        applied_migrations,
        keys_file,
    })
}

/// Where keys are not given by `$CALLBOT_KEYS`/`$CALLBOT_KEYS_FILE`, callbot reads them from the
/// file beside the database: put the restore's keyring there, so that callbot opens the
/// restored database with it. A different keys file already there (the replaced database's)
/// is kept as `FILE.replaced-TIMESTAMP`. Returns the file written, if any.
fn install_keys(target_url: &str, keys: &Vault) -> Result<Option<PathBuf>, BackupError> {
    let from_env = [KEYS_ENV, KEYS_FILE_ENV]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()));
    let Some(path) = default_keys_file(target_url).filter(|_| !from_env) else {
        return Ok(None);
    };
    let io = |action: &'static str, source: std::io::Error| BackupError::Io {
        action,
        path: path.clone(),
        source,
    };
    if let Ok(existing) = Vault::load(&path) {
        if existing.to_text() == keys.to_text() {
            return Ok(None);
        }
        let kept = PathBuf::from(format!(
            "{}.replaced-{}",
            path.display(),
            Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(&path, &kept).map_err(|e| io("keeping the replaced keys file", e))?;
    }
    keys.save(&path).map_err(|e| BackupError::Keys {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(path))
}

/// What [`inspect`] found in a database file.
struct Inspection {
    /// `Ok` or the first lines `PRAGMA integrity_check` reported.
    integrity: Result<(), String>,
    sqlite_version: String,
    tables: BTreeMap<String, u64>,
    /// `(version, checksum)` of each successful migration.
    migrations: Vec<(i64, Vec<u8>)>,
    /// `(kind, id, check value)` of the keys its personal data was sealed with.
    keys: Vec<(String, String, String)>,
}

/// Opens a database file (read-only and `immutable` for a backup nobody writes) and reads its
/// integrity, row counts and migrations. A file SQLite cannot read is [`BackupError::Corrupt`].
async fn inspect(path: &Path, immutable: bool) -> Result<Inspection, BackupError> {
    let corrupt = |e: sqlx::Error| BackupError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(immutable)
        .immutable(immutable)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(corrupt)?;
    let result = inspect_conn(&mut conn, path).await;
    let _ = conn.close().await;
    result
}

async fn inspect_conn(conn: &mut SqliteConnection, path: &Path) -> Result<Inspection, BackupError> {
    let corrupt = |e: sqlx::Error| BackupError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let lines: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(20)")
        .fetch_all(&mut *conn)
        .await
        .map_err(corrupt)?;
    let integrity = if lines.len() == 1 && lines[0] == "ok" {
        Ok(())
    } else if lines.is_empty() {
        Err("no result".to_string())
    } else {
        Err(lines.join("; "))
    };
    let sqlite_version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut *conn)
        .await
        .map_err(corrupt)?;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
         ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(corrupt)?;
    let mut tables = BTreeMap::new();
    for name in names {
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let count: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(corrupt)?;
        tables.insert(name, u64::try_from(count).unwrap_or(0));
    }
    let migrations = if tables.contains_key("_sqlx_migrations") {
        sqlx::query("SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(corrupt)?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(i64, Vec<u8>)>, sqlx::Error>>()
            .map_err(corrupt)?
    } else {
        Vec::new()
    };
    let keys = if tables.contains_key("vault_keys") {
        sqlx::query("SELECT kind, id, check_value FROM vault_keys")
            .fetch_all(&mut *conn)
            .await
            .map_err(corrupt)?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<Result<Vec<(String, String, String)>, sqlx::Error>>()
            .map_err(corrupt)?
    } else {
        Vec::new()
    };
    Ok(Inspection {
        integrity,
        sqlite_version,
        tables,
        migrations,
        keys,
    })
}

/// Refuses a restore whose keyring cannot open the backup's sealed data.
fn check_keys(backup: &Path, inspected: &Inspection, keys: &Vault) -> Result<(), BackupError> {
    let refuse = |reason: String| BackupError::Keys {
        path: backup.to_path_buf(),
        reason,
    };
    // The index key first: a keyring of another database fails on it, whatever its data keys.
    let mut recorded: Vec<_> = inspected.keys.iter().collect();
    recorded.sort_by_key(|(kind, _, _)| kind != "index");
    for (kind, id, check) in recorded {
        match kind.as_str() {
            "index" if *check != keys.index_check() => {
                return Err(refuse(format!(
                    "its phone numbers are indexed with another index key than the one in {}; \
                     restore with the keys file the backed-up database used",
                    keys.origin()
                )));
            }
            "data" if keys.key_check(id).as_ref() != Some(check) => {
                return Err(refuse(format!(
                    "its personal data is sealed with key {id:?}, which {} does not hold; \
                     restore with the keys file the backed-up database used",
                    keys.origin()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a backup that is not a callbot database or has migrations this binary lacks.
fn check_migrations(backup: &Path, inspected: &Inspection) -> Result<(), BackupError> {
    let incompatible = |reason: String| BackupError::Incompatible {
        path: backup.to_path_buf(),
        reason,
    };
    if !inspected.tables.contains_key("_sqlx_migrations") {
        return Err(incompatible(
            "it is not a callbot database (no _sqlx_migrations table)".into(),
        ));
    }
    for (version, checksum) in &inspected.migrations {
        match MIGRATOR.iter().find(|m| m.version == *version) {
            None => {
                return Err(incompatible(format!(
                    "it has migration {version}, which this callbot does not know (a backup of \
                     a newer callbot: restore it with that version)"
                )));
            }
            Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                return Err(incompatible(format!(
                    "its migration {version} ({}) differs from this callbot's",
                    m.description
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Fails with [`BackupError::InUse`] if another connection holds `target` open. In WAL mode
/// every open connection keeps a shared lock on the database file, so an exclusive lock taken
/// without waiting fails while any is open (in this process or another).
async fn check_not_in_use(target: &Path) -> Result<(), BackupError> {
    let options = SqliteConnectOptions::new()
        .filename(target)
        .create_if_missing(false)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    let mut conn = match SqliteConnection::connect_with(&options).await {
        Ok(conn) => conn,
        Err(e) if is_busy(&e) => {
            return Err(BackupError::InUse {
                path: target.to_path_buf(),
            });
        }
        // Not a database SQLite can open: nobody is using it as one, and it is being replaced.
        Err(_) => return Ok(()),
    };
    let locked = match sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await {
        Ok(_) => sqlx::query("SELECT COUNT(*) FROM sqlite_master")
            .execute(&mut conn)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
    let _ = conn.close().await;
    match locked {
        Err(e) if is_busy(&e) => Err(BackupError::InUse {
            path: target.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// SQLITE_BUSY or SQLITE_LOCKED (any extended code).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

fn check_magic(path: &Path) -> Result<(), BackupError> {
    let mut head = [0u8; 16];
    let mut file = File::open(path).map_err(|source| BackupError::Io {
        action: "opening",
        path: path.to_path_buf(),
        source,
    })?;
    let read = file.read(&mut head).map_err(|source| BackupError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    if read < head.len() || &head != SQLITE_MAGIC {
        return Err(BackupError::Corrupt {
            path: path.to_path_buf(),
            reason: "it is not a SQLite database (bad header)".into(),
        });
    }
    Ok(())
}

/// Size and SHA-256 (hex) of a file.
fn hash_file(path: &Path) -> Result<(u64, String), BackupError> {
    let io = |action, source| BackupError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(|e| io("opening", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io("reading", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Copies `from` to the new file `to`, fsynced; returns the SHA-256 of what was written.
fn copy_hashed(from: &Path, to: &Path) -> Result<String, BackupError> {
    let mut input = File::open(from).map_err(|source| BackupError::Io {
        action: "opening",
        path: from.to_path_buf(),
        source,
    })?;
    let out_err = |action, source| BackupError::Io {
        action,
        path: to.to_path_buf(),
        source,
    };
    let mut output = File::create_new(to).map_err(|e| out_err("creating", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = input.read(&mut buf).map_err(|source| BackupError::Io {
            action: "reading",
            path: from.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(|e| out_err("writing", e))?;
    }
    output.sync_all().map_err(|e| out_err("syncing", e))?;
    Ok(hex::encode(hasher.finalize()))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), BackupError> {
    let err = |action, source| BackupError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::create_new(path).map_err(|e| err("creating", e))?;
    file.write_all(data).map_err(|e| err("writing", e))?;
    file.sync_all().map_err(|e| err("syncing", e))
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| BackupError::Io {
            action: "syncing",
            path: path.to_path_buf(),
            source,
        })
}

/// `path` with `suffix` appended to its name (SQLite's `-wal`, `-shm`, `-journal`).
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database's `-wal`, `-shm` and `-journal` files, which SQLite would otherwise apply
/// to the file put in its place.
fn remove_sidecars(path: &Path) -> Result<(), BackupError> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let file = sidecar(path, suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BackupError::Io {
                    action: "removing stale",
                    path: file,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn sqlite_error(action: &'static str, path: &Path, source: sqlx::Error) -> BackupError {
    BackupError::Sqlite {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A temporary file in the final file's directory, removed on drop unless persisted (renamed
/// over the final path, then the directory fsynced so the rename survives a crash).
struct TempPath {
    path: PathBuf,
    dir: PathBuf,
    persisted: bool,
}

impl TempPath {
    fn new(dir: &Path, final_path: &Path, what: &str) -> Result<TempPath, BackupError> {
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "callbot".into());
        let nonce = uuid::Uuid::new_v4().simple();
        let path = dir.join(format!(".{name}.{what}-{nonce}.tmp"));
        Ok(TempPath {
            path,
            dir: dir.to_path_buf(),
            persisted: false,
        })
    }

    fn persist(mut self, to: &Path) -> Result<(), BackupError> {
        std::fs::rename(&self.path, to).map_err(|source| BackupError::Io {
            action: "renaming into place",
            path: to.to_path_buf(),
            source,
        })?;
        self.persisted = true;
        // Best effort where directories cannot be opened for syncing.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_sqlite_files() {
        assert_eq!(
            sqlite_path("sqlite://data/callbot.db").expect("relative"),
            PathBuf::from("data/callbot.db")
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/callbot.db?mode=rwc").expect("absolute"),
            PathBuf::from("/var/lib/callbot.db")
        );
        let err = sqlite_path("postgres://bot:pw@db/callbot").expect_err("pg");
        assert!(matches!(err, BackupError::Postgres { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("pg_dump") && !text.contains("pw@"), "{text}");
        for bad in ["sqlite::memory:", "sqlite://", "mysql://h/db", "callbot.db"] {
            let err = sqlite_path(bad).expect_err(bad);
            assert!(matches!(err, BackupError::UnsupportedUrl { .. }), "{bad}");
        }
        assert_eq!(
            manifest_path(Path::new("/b/x.db")),
            PathBuf::from("/b/x.db.json")
        );
    }
}
