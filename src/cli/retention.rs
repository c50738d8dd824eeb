//! `callbot retention …`: how long recordings and transcripts are kept
//! (`bot_runtime::retention`). Dialer nodes apply the policy every hour; `apply` runs it now.

use bot_runtime::retention::RetentionPolicy;
use clap::{Args, Subcommand};

use super::campaign::{DbArgs, rt};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Show the policy.
    Show(DbOnly),
    /// Set the policy: keep recordings and transcripts N days after the call (`none`: keep).
    Set(SetArgs),
    /// Purge now what the policy no longer keeps.
    Apply(DbOnly),
}

#[derive(Args)]
pub struct DbOnly {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct SetArgs {
    /// Days to keep call recordings, or `none`.
    #[arg(long, value_parser = parse_days)]
    recordings_days: Option<Days>,
    /// Days to keep transcripts and collected values, or `none`.
    #[arg(long, value_parser = parse_days)]
    transcripts_days: Option<Days>,
    #[command(flatten)]
    db: DbArgs,
}

/// A period in days, or none.
#[derive(Clone, Copy)]
struct Days(Option<u32>);

fn parse_days(s: &str) -> Result<Days, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Days(None));
    }
    match s.parse::<u32>() {
        Ok(d) if (1..=36_500).contains(&d) => Ok(Days(Some(d))),
        _ => Err(format!(
            "{s:?}: a number of days from 1 to 36500, or `none`"
        )),
    }
}

fn show(p: &RetentionPolicy) -> String {
    let days = |d: Option<u32>| d.map_or("kept".to_string(), |d| format!("{d} days"));
    format!(
        "recordings:  {}\ntranscripts: {}",
        days(p.recordings_days),
        days(p.transcripts_days)
    )
}

pub fn run(c: RetentionCommand) -> anyhow::Result<()> {
    rt()?.block_on(async {
        match c {
            RetentionCommand::Show(a) => {
                let store = a.db.open().await?;
                println!("{}", show(&store.retention_policy().await?));
            }
            RetentionCommand::Set(a) => {
                let store = a.db.open().await?;
                let mut p = store.retention_policy().await?;
                if let Some(Days(d)) = a.recordings_days {
                    p.recordings_days = d;
                }
                if let Some(Days(d)) = a.transcripts_days {
                    p.transcripts_days = d;
                }
                store.set_retention_policy(&p, "cli").await?;
                println!("{}", show(&p));
            }
            RetentionCommand::Apply(a) => {
                let store = a.db.open().await?;
                let r = store.apply_retention(chrono::Utc::now(), "cli").await?;
                println!(
                    "purged {} recordings ({} bytes; {} files were already gone) and {} transcripts",
                    r.recordings, r.recording_bytes, r.missing_files, r.transcripts
                );
            }
        }
        Ok(())
    })
}
