//! `callbot backup DEST` and `callbot restore BACKUP`: an online, consistent copy of the SQLite
//! database and its verified, atomic restore (`bot_runtime::backup`). PostgreSQL is refused with
//! the documented practice (pg_dump / pg_restore, WAL archiving).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use bot_runtime::vault::{KEYS_ENV, KEYS_FILE_ENV, Vault, default_keys_file};

use bot_runtime::backup::{backup_sqlite, restore_sqlite};
use clap::Args;

use super::campaign::{DbArgs, rt};

#[derive(Args)]
pub struct BackupArgs {
    /// The backup file to write (a manifest, DEST.json, is written beside it).
    dest: PathBuf,
    /// Replace DEST if it exists.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file (checked against BACKUP.json when present).
    backup: PathBuf,
    /// Replace an existing database (stop callbot first; a database in use is refused).
    #[arg(long)]
    force: bool,
    /// The keys file the backed-up database used (default: $CALLBOT_KEYS, $CALLBOT_KEYS_FILE,
    /// or the keys file beside the target database). Without $CALLBOT_KEYS/$CALLBOT_KEYS_FILE,
    /// it is copied beside the restored database, where callbot looks for it.
    #[arg(long)]
    keys_file: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

pub fn run_backup(a: BackupArgs) -> anyhow::Result<()> {
    let url = a.db.url();
    let info = rt()?.block_on(backup_sqlite(&url, &a.dest, a.force))?;
    let m = &info.manifest;
    println!(
        "backup of {} written to {}{}",
        m.source,
        info.path.display(),
        if info.replaced { " (replaced)" } else { "" }
    );
    println!("  manifest:   {}", info.manifest_path.display());
    println!("  bytes:      {}", m.bytes);
    println!("  sha256:     {}", m.sha256);
    println!("  integrity:  ok");
    println!("  migrations: {}", versions(&m.migrations));
    print_tables(&m.tables);
    Ok(())
}

/// The keyring to restore with: `--keys-file`, else the environment's, else the keys file
/// beside the target, which must exist (a new one could not open the backup).
fn restore_keys(url: &str, file: Option<&Path>) -> anyhow::Result<Vault> {
    if let Some(f) = file {
        return Ok(Vault::load(f)?);
    }
    if url.starts_with("postgres") {
        // Refused by restore_sqlite with PostgreSQL's own practice; no keys are read.
        return Ok(Vault::generate("unused"));
    }
    let from_env = [KEYS_ENV, KEYS_FILE_ENV]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.trim().is_empty()));
    if from_env {
        return Ok(Vault::for_database(url)?);
    }
    match default_keys_file(url) {
        Some(f) if f.exists() => Ok(Vault::load(&f)?),
        _ => bail!(
            "restoring needs the keys the backup's personal data was sealed with: pass \
             --keys-file FILE (the keys file of the backed-up database) or set \
             ${KEYS_FILE_ENV}"
        ),
    }
}

pub fn run_restore(a: RestoreArgs) -> anyhow::Result<()> {
    let url = a.db.url();
    let keys = restore_keys(&url, a.keys_file.as_deref())?;
    let info = rt()?.block_on(restore_sqlite(&a.backup, &url, a.force, &keys))?;
    println!(
        "restored {} into {}{}",
        info.backup.display(),
        info.target.display(),
        if info.replaced {
            " (replaced the existing database)"
        } else {
            ""
        }
    );
    println!("  bytes:      {}", info.bytes);
    println!(
        "  sha256:     {} ({})",
        info.sha256,
        if info.manifest_checked {
            "matches the manifest"
        } else {
            "no manifest to check against"
        }
    );
    println!("  integrity:  ok");
    println!("  keys:       {}", keys.origin());
    if let Some(f) = &info.keys_file {
        println!("  keys file:  {} (written)", f.display());
    }
    println!("  migrations: {}", versions(&info.backup_migrations));
    if !info.applied_migrations.is_empty() {
        println!(
            "  applied:    {} (newer than the backup)",
            versions(&info.applied_migrations)
        );
    }
    print_tables(&info.tables);
    Ok(())
}

fn versions(v: &[i64]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    let v: Vec<String> = v.iter().map(i64::to_string).collect();
    v.join(", ")
}

fn print_tables(tables: &BTreeMap<String, u64>) {
    println!("  rows:");
    let width = tables.keys().map(String::len).max().unwrap_or(0);
    for (name, count) in tables {
        println!("    {name:<width$}  {count}");
    }
}
