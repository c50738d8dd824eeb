//! `callbot report`: attempts, connects, right-party contacts, outcomes and conversion, handle
//! time, transfers, abandons, AMD and sentiment by hour, day, campaign, flow, agent or side, with
//! each flow's drop-off funnel and the robot and agents side by side (`bot_runtime::analytics`),
//! as a text table, CSV or an XLSX workbook.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bot_runtime::analytics::{GroupBy, ReportQuery, Tz, parse_timezone};
use bot_runtime::store::Store;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use clap::Args;

use super::campaign::{DbArgs, rt};

#[derive(Args)]
pub struct ReportArgs {
    /// Only this campaign.
    #[arg(long)]
    campaign: Option<String>,
    /// Only calls of this flow.
    #[arg(long)]
    flow: Option<String>,
    /// Attempts started at or after this time: RFC 3339 (`2026-03-09T00:00:00Z`), or
    /// `YYYY-MM-DD[ HH:MM]` in the --tz zone.
    #[arg(long)]
    from: Option<String>,
    /// Attempts started before this time (same forms as --from).
    #[arg(long)]
    to: Option<String>,
    /// Rows per hour, day, campaign, flow, agent or side (robot / human).
    #[arg(long, default_value = "day")]
    by: String,
    /// The time zone hours and days are counted in (an IANA name).
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// table, csv or xlsx (default: from the -o file's extension, else table).
    #[arg(long)]
    format: Option<String>,
    /// Write to this file instead of stdout (required for xlsx).
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Which table a CSV holds: summary, funnel or agents (an XLSX file and the text output
    /// have all three).
    #[arg(long, default_value = "summary")]
    table: String,
    /// Outcomes that count as conversions, comma-separated (default: promise_to_pay,
    /// promise_today, payment_plan, paid, activated, lead_credit_card, lead_deposit,
    /// transaction_confirmed, survey_completed, survey_completed_detractor, resolved).
    #[arg(long, value_delimiter = ',')]
    success: Option<Vec<String>>,
    /// A flow step whose reach proves the right party was confirmed (repeatable).
    #[arg(long = "identity-step")]
    identity_steps: Vec<String>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Table,
    Csv,
    Xlsx,
}

/// A time given on the command line: RFC 3339, or a local date (and time) in `tz`.
fn parse_time(flag: &str, text: &str, tz: Tz) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    let Some(local) = local else {
        bail!(
            "{flag} {text:?} is not a time: expected RFC 3339 (2026-03-09T00:00:00Z) or \
             YYYY-MM-DD[ HH:MM] in the --tz zone"
        );
    };
    match tz.from_local_datetime(&local).earliest() {
        Some(t) => Ok(t.with_timezone(&Utc)),
        None => bail!(
            "{flag} {text:?} does not exist in {} (a clock change)",
            tz.name()
        ),
    }
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let group_by = GroupBy::from_name(&a.by).with_context(|| {
        let names: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
        format!(
            "unknown --by {:?}: expected one of {}",
            a.by,
            names.join(", ")
        )
    })?;
    let timezone = parse_timezone(&a.tz).map_err(|e| anyhow::anyhow!("--tz: {e}"))?;
    let extension = a
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match (a.format.as_deref(), extension.as_deref()) {
        (Some("table"), _) => Format::Table,
        (Some("csv"), _) => Format::Csv,
        (Some("xlsx"), _) => Format::Xlsx,
        (Some(other), _) => bail!("unknown --format {other:?}: expected table, csv or xlsx"),
        (None, Some("xlsx")) => Format::Xlsx,
        (None, Some("csv")) => Format::Csv,
        (None, _) => Format::Table,
    };
    if format == Format::Xlsx && a.output.is_none() {
        bail!("--format xlsx needs an output file: -o FILE.xlsx");
    }
    if !["summary", "funnel", "agents"].contains(&a.table.as_str()) {
        bail!(
            "unknown --table {:?}: expected summary, funnel or agents",
            a.table
        );
    }
    let from = a
        .from
        .as_deref()
        .map(|t| parse_time("--from", t, timezone))
        .transpose()?;
    let to =
        a.to.as_deref()
            .map(|t| parse_time("--to", t, timezone))
            .transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        bail!("--from must be before --to");
    }
    let mut query = ReportQuery {
        from,
        to,
        campaign: a.campaign.clone(),
        flow: a.flow.clone(),
        group_by,
        timezone,
        ..ReportQuery::new(&a.db.tenant)
    };
    if let Some(success) = &a.success {
        query.options.success_outcomes = success
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    query
        .options
        .identity_steps
        .extend(a.identity_steps.iter().cloned());

    let report = rt()?.block_on(async {
        // Reading only: the store is opened without creating the tenant.
        let store = Store::open(&a.db.url()).await?;
        let report = store.report(&query).await;
        store.close().await;
        anyhow::Ok(report?)
    })?;

    let table = match a.table.as_str() {
        "funnel" => report.funnel_table(),
        "agents" => report.agents_table(),
        _ => report.summary_table(),
    };
    match (format, &a.output) {
        (Format::Xlsx, path) => {
            let Some(path) = path else {
                bail!("--format xlsx needs an output file: -o FILE.xlsx");
            };
            report.to_xlsx(path)?;
            eprintln!("wrote {}", path.display());
        }
        (Format::Csv, Some(path)) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            table.write_csv(std::io::BufWriter::new(file))?;
        }
        (Format::Csv, None) => table.write_csv(std::io::stdout().lock())?,
        (Format::Table, Some(path)) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            );
            report.write_text(&mut file)?;
            file.flush()?;
        }
        (Format::Table, None) => report.write_text(std::io::stdout().lock())?,
    }
    Ok(())
}
