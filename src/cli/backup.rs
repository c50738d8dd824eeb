//! `callbot backup DEST` and `callbot restore BACKUP`: an online, consistent copy of the SQLite
//! database and its verified, atomic restore (`bot_runtime::backup`). PostgreSQL is refused with
//! the documented practice (pg_dump / pg_restore, WAL archiving).

use std::collections::BTreeMap;
use std::path::PathBuf;

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

pub fn run_restore(a: RestoreArgs) -> anyhow::Result<()> {
    let url = a.db.url();
    let info = rt()?.block_on(restore_sqlite(&a.backup, &url, a.force))?;
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
