//! `callbot dnc …` (the do-not-call lists) and `callbot audit why` (why a number was dialed, or
//! not, at a given time).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bot_runtime::dialer::db::{DncEntry, GLOBAL};
use bot_runtime::dialer::dnc_file::{DncSource, read_dnc_csv};
use bot_runtime::dialer::phone;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::campaign::{DbArgs, rt};

#[derive(Subcommand)]
pub enum DncCommand {
    /// Put a number on the tenant's list (or the global one).
    Add(AddArgs),
    /// Take a number off a list.
    Remove(PhoneArgs),
    /// Is this number blocked for the tenant now, and by which entry?
    Check(PhoneArgs),
    /// Import a CSV of numbers (columns: phone, and optionally reason, expires_at).
    Import(FileArgs),
    /// Export a list as CSV on stdout.
    Export(ListArgs),
}

#[derive(Args)]
pub struct AddArgs {
    phone: String,
    /// Why (e.g. "customer asked", "bereavement").
    #[arg(long, default_value = "customer asked")]
    reason: String,
    /// When the entry stops blocking (RFC 3339, e.g. 2027-01-31T00:00:00Z); default never.
    #[arg(long)]
    expires: Option<DateTime<Utc>>,
    /// Put it on the global list (every tenant).
    #[arg(long)]
    global: bool,
    /// Who asked for it (for the audit log).
    #[arg(long, default_value = "cli")]
    by: String,
    /// Region of a national-format number.
    #[arg(long, default_value = "US")]
    region: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct PhoneArgs {
    phone: String,
    /// The global list instead of the tenant's (remove only).
    #[arg(long)]
    global: bool,
    #[arg(long, default_value = "US")]
    region: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct FileArgs {
    file: PathBuf,
    #[arg(long)]
    global: bool,
    #[arg(long, default_value = "US")]
    region: String,
    #[arg(long, default_value = "cli")]
    by: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    global: bool,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Why was this number dialed (or not) — every dial decision up to a time, with its rule.
    Why(WhyArgs),
}

#[derive(Args)]
pub struct WhyArgs {
    phone: String,
    /// Only decisions up to this time (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    #[arg(long, default_value = "US")]
    region: String,
    #[command(flatten)]
    db: DbArgs,
}

fn e164(raw: &str, region: &str) -> anyhow::Result<String> {
    let region = region
        .parse()
        .map_err(|_| anyhow::anyhow!("--region {region:?} is not an ISO 3166 region code"))?;
    Ok(phone::normalize(raw, region)
        .map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))?
        .e164)
}

fn list_of(db: &DbArgs, global: bool) -> String {
    if global {
        GLOBAL.to_string()
    } else {
        db.tenant.clone()
    }
}

pub fn run(cmd: DncCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            DncCommand::Add(a) => {
                let number = e164(&a.phone, &a.region)?;
                let store = a.db.open().await?;
                let list = list_of(&a.db, a.global);
                store
                    .add_dnc(&[DncEntry {
                        tenant: list.clone(),
                        phone: number.clone(),
                        reason: a.reason.clone(),
                        source: "cli".into(),
                        added_by: a.by.clone(),
                        added_at: Utc::now(),
                        expires_at: a.expires,
                    }])
                    .await?;
                store
                    .audit(
                        &a.db.tenant,
                        &a.by,
                        "dnc.add",
                        &number,
                        serde_json::json!({"list": list, "reason": a.reason, "expires": a.expires}),
                    )
                    .await?;
                println!("{number} added to the {} do-not-call list", shown(&list));
                Ok(())
            }
            DncCommand::Remove(a) => {
                let number = e164(&a.phone, &a.region)?;
                let store = a.db.open().await?;
                let list = list_of(&a.db, a.global);
                if !store.remove_dnc(&list, &number).await? {
                    bail!("{number} is not on the {} list", shown(&list));
                }
                store
                    .audit(
                        &a.db.tenant,
                        "cli",
                        "dnc.remove",
                        &number,
                        serde_json::json!({"list": list}),
                    )
                    .await?;
                println!(
                    "{number} removed from the {} do-not-call list",
                    shown(&list)
                );
                Ok(())
            }
            DncCommand::Check(a) => {
                let number = e164(&a.phone, &a.region)?;
                let store = a.db.open().await?;
                match store.dnc_check(&a.db.tenant, &number, Utc::now()).await? {
                    Some(e) => println!(
                        "{number}: BLOCKED by the {} list since {} ({}, source {}, by {}){}",
                        shown(&e.tenant),
                        e.added_at.to_rfc3339(),
                        e.reason,
                        e.source,
                        e.added_by,
                        e.expires_at
                            .map(|t| format!(", until {}", t.to_rfc3339()))
                            .unwrap_or_default()
                    ),
                    None => println!("{number}: not on any do-not-call list"),
                }
                Ok(())
            }
            DncCommand::Import(a) => {
                let store = a.db.open().await?;
                let list = list_of(&a.db, a.global);
                let region = a.region.parse().map_err(|_| {
                    anyhow::anyhow!("--region {:?} is not an ISO 3166 region code", a.region)
                })?;
                let file = std::fs::File::open(&a.file)
                    .with_context(|| format!("opening {}", a.file.display()))?;
                let src = DncSource {
                    list: list.clone(),
                    source: format!("import:{}", a.file.display()),
                    added_by: a.by.clone(),
                    region,
                    now: Utc::now(),
                };
                let read = read_dnc_csv(std::io::BufReader::new(file), &src)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
                for e in &read.errors {
                    match &e.column {
                        Some(c) => eprintln!("row {}, column {c}: {}", e.row, e.message),
                        None => eprintln!("row {}: {}", e.row, e.message),
                    }
                }
                store.add_dnc(&read.entries).await?;
                let errors = read.errors.len();
                store
                    .audit(
                        &a.db.tenant,
                        &a.by,
                        "dnc.import",
                        &a.file.display().to_string(),
                        serde_json::json!({"list": list, "added": read.entries.len(), "errors": errors}),
                    )
                    .await?;
                println!(
                    "{}: {} numbers added to the {} list, {errors} rows refused",
                    a.file.display(),
                    read.entries.len(),
                    shown(&list)
                );
                Ok(())
            }
            DncCommand::Export(a) => {
                let store = a.db.open().await?;
                let list = list_of(&a.db, a.global);
                let mut w = csv::Writer::from_writer(std::io::stdout());
                w.write_record([
                    "phone",
                    "reason",
                    "source",
                    "added_by",
                    "added_at",
                    "expires_at",
                ])?;
                for e in store.list_dnc(&list).await? {
                    w.write_record([
                        e.phone,
                        e.reason,
                        e.source,
                        e.added_by,
                        e.added_at.to_rfc3339(),
                        e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    ])?;
                }
                w.flush()?;
                Ok(())
            }
        }
    })
}

fn shown(list: &str) -> &str {
    if list == GLOBAL { "global" } else { list }
}

pub fn run_audit(cmd: AuditCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            AuditCommand::Why(a) => {
                let number = e164(&a.phone, &a.region)?;
                let store = a.db.open().await?;
                let decisions = store
                    .decisions_for_phone(&a.db.tenant, &number, a.at)
                    .await?;
                if decisions.is_empty() {
                    println!(
                        "{number}: no dial decision recorded for tenant {}",
                        a.db.tenant
                    );
                    return Ok(());
                }
                for d in &decisions {
                    println!(
                        "{}  {:<7} campaign {}  {}: {}{}{}",
                        d.at.to_rfc3339(),
                        d.verdict,
                        d.campaign,
                        d.rule,
                        d.detail,
                        d.until
                            .map(|t| format!(" (until {})", t.to_rfc3339()))
                            .unwrap_or_default(),
                        d.attempt
                            .as_ref()
                            .map(|id| format!(" [attempt {id}, node {}]", d.node))
                            .unwrap_or_default()
                    );
                }
                Ok(())
            }
        }
    })
}
