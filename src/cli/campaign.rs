//! `callbot campaign …` and `callbot leads …`: campaigns and their leads in the database
//! (SQLite by default, PostgreSQL with `--database-url`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use bot_runtime::dialer::campaign::CampaignSettings;
use bot_runtime::dialer::db::{CampaignKind, CampaignStatus, DEFAULT_TENANT, NewCampaign};
use bot_runtime::dialer::import::{Assign, Filter, import_leads};
use bot_runtime::dialer::leads::{Encoding, ImportOptions};
use bot_runtime::dialer::phone;
use bot_runtime::store::Store;
use clap::{Args, Subcommand};

/// Where the data lives: shared by every database command.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// Database URL: sqlite://FILE or postgres://… (default: SQLite in callbot-data/).
    #[arg(long, global = true, env = "CALLBOT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The tenant (bank or business unit) the command acts for.
    #[arg(long, global = true, default_value = DEFAULT_TENANT)]
    pub tenant: String,
}

impl DbArgs {
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| "sqlite://callbot-data/callbot.db".into())
    }

    pub async fn open(&self) -> anyhow::Result<Store> {
        let store = Store::open(&self.url()).await?;
        store.ensure_tenant(&self.tenant, &self.tenant).await?;
        Ok(store)
    }
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a campaign from a flow file (the flow is stored, versioned, with it).
    Create(CreateArgs),
    /// Start dialing (a `callbot dialer run` node does the dialing).
    Start(NameArgs),
    /// Pause: no new calls; calls in progress end normally.
    Pause(NameArgs),
    /// Resume a paused campaign.
    Resume(NameArgs),
    /// Stop for good.
    Stop(NameArgs),
    /// List the tenant's campaigns.
    List(DbOnly),
    /// A campaign's progress: leads by state, attempts by disposition.
    Status(NameArgs),
}

#[derive(Args)]
pub struct DbOnly {
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct NameArgs {
    /// The campaign's name.
    name: String,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Args)]
pub struct CreateArgs {
    /// The campaign's name (unique per tenant).
    name: String,
    /// The flow file (YAML).
    #[arg(long)]
    flow: PathBuf,
    /// robot, human or blended.
    #[arg(long, default_value = "robot")]
    kind: String,
    /// Most calls at once, across all dialer nodes.
    #[arg(long, default_value_t = 10)]
    max_concurrent: u32,
    /// Caller ID presented on outbound calls.
    #[arg(long)]
    caller_id: Option<String>,
    /// Settings file (JSON: rules, order, pacing, trunk, amd, default_region).
    #[arg(long)]
    settings: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Import a CSV lead file: good rows are stored, every bad row is reported by row number.
    Import(ImportArgs),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file (a header row with a phone column; other columns become lead fields).
    file: PathBuf,
    /// Assign the imported leads (new or already known) to this campaign.
    #[arg(long)]
    campaign: Option<String>,
    /// Segmentation: only assign leads where FIELD OP VALUE (= != < <= > >= ~), repeatable.
    #[arg(long = "where", value_name = "COND")]
    conditions: Vec<String>,
    /// Region of national-format numbers (default: the campaign's, else US).
    #[arg(long)]
    region: Option<String>,
    /// Timezone for rows whose zone neither a column nor the number tells.
    #[arg(long)]
    timezone: Option<String>,
    /// auto (UTF-8 or UTF-16 by BOM), utf8, latin1 or windows1252.
    #[arg(long, default_value = "auto")]
    encoding: String,
    /// Write the row-numbered error report here (CSV).
    #[arg(long)]
    errors: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

/// The async runtime of the database commands.
pub(super) fn rt() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(cmd: CampaignCommand) -> anyhow::Result<()> {
    rt()?.block_on(async move {
        match cmd {
            CampaignCommand::Create(a) => create(a).await,
            CampaignCommand::Start(a) => status_to(a, CampaignStatus::Running, "started").await,
            CampaignCommand::Pause(a) => status_to(a, CampaignStatus::Paused, "paused").await,
            CampaignCommand::Resume(a) => status_to(a, CampaignStatus::Running, "resumed").await,
            CampaignCommand::Stop(a) => status_to(a, CampaignStatus::Stopped, "stopped").await,
            CampaignCommand::List(a) => {
                let store = a.db.open().await?;
                println!("name\tkind\tstatus\tflow\tmax_concurrent");
                for c in store.list_campaigns(&a.db.tenant, None).await? {
                    println!(
                        "{}\t{}\t{}\t{} v{}\t{}",
                        c.id,
                        c.kind.as_str(),
                        c.status.as_str(),
                        c.flow,
                        c.flow_version,
                        c.max_concurrent
                    );
                }
                Ok(())
            }
            CampaignCommand::Status(a) => {
                let store = a.db.open().await?;
                let Some(c) = store.campaign(&a.db.tenant, &a.name).await? else {
                    bail!("no campaign {:?} for tenant {:?}", a.name, a.db.tenant);
                };
                let s = store
                    .campaign_stats(&a.db.tenant, &a.name, chrono::Utc::now())
                    .await?;
                println!(
                    "campaign {} ({}, {})",
                    c.id,
                    c.kind.as_str(),
                    c.status.as_str()
                );
                println!(
                    "leads {}: ready {} (due now {}), in progress {}, done {}",
                    s.leads, s.ready, s.due, s.leased, s.done
                );
                println!("attempts {}", s.attempts);
                for (d, n) in s.dispositions {
                    println!("  {d}\t{n}");
                }
                Ok(())
            }
        }
    })
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let kind = CampaignKind::from_name(&a.kind)
        .with_context(|| format!("--kind {:?}: expected robot, human or blended", a.kind))?;
    let source = std::fs::read_to_string(&a.flow)
        .with_context(|| format!("reading {}", a.flow.display()))?;
    let flow = dialog_flows::load_str(&source, &a.flow).map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = match &a.settings {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            CampaignSettings::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => CampaignSettings::default(),
    };
    let store = a.db.open().await?;
    store
        .save_flow(&a.db.tenant, &flow.name, flow.version, &source)
        .await?;
    store
        .create_campaign(
            &a.db.tenant,
            &NewCampaign {
                id: a.name.clone(),
                kind,
                flow: flow.name.clone(),
                flow_version: flow.version,
                caller_id: a.caller_id.clone(),
                max_concurrent: a.max_concurrent,
                settings: serde_json::to_value(&settings)?,
            },
        )
        .await?;
    store
        .audit(
            &a.db.tenant,
            "cli",
            "campaign.create",
            &a.name,
            serde_json::json!({"flow": flow.name, "version": flow.version}),
        )
        .await?;
    println!(
        "campaign {} created (draft): flow {} v{}, {} at most {} at once",
        a.name,
        flow.name,
        flow.version,
        kind.as_str(),
        a.max_concurrent
    );
    Ok(())
}

async fn status_to(a: NameArgs, to: CampaignStatus, verb: &str) -> anyhow::Result<()> {
    let store = a.db.open().await?;
    let from = store
        .set_campaign_status(&a.db.tenant, &a.name, to, "cli")
        .await?;
    println!("campaign {} {verb} (was {})", a.name, from.as_str());
    Ok(())
}

pub fn run_leads(cmd: LeadsCommand) -> anyhow::Result<()> {
    match cmd {
        LeadsCommand::Import(a) => rt()?.block_on(import(a)),
    }
}

async fn import(a: ImportArgs) -> anyhow::Result<()> {
    let store = a.db.open().await?;
    let campaign = match &a.campaign {
        Some(name) => Some(
            store
                .campaign(&a.db.tenant, name)
                .await?
                .with_context(|| format!("no campaign {name:?} for tenant {:?}", a.db.tenant))?,
        ),
        None => None,
    };
    let settings = campaign
        .as_ref()
        .map(|c| CampaignSettings::from_value(&c.settings).map_err(anyhow::Error::msg))
        .transpose()?;
    let region = a
        .region
        .clone()
        .or_else(|| settings.as_ref().map(|s| s.default_region.clone()))
        .unwrap_or_else(|| "US".into());
    let opts = ImportOptions {
        default_region: region
            .parse()
            .map_err(|_| anyhow::anyhow!("--region {region:?} is not an ISO 3166 region code"))?,
        default_timezone: match &a.timezone {
            Some(z) => Some(
                phone::parse_timezone(z)
                    .with_context(|| format!("--timezone {z:?} is not an IANA timezone"))?,
            ),
            None => None,
        },
        encoding: match a.encoding.as_str() {
            "auto" => Encoding::Auto,
            "utf8" | "utf-8" => Encoding::Utf8,
            "latin1" | "iso-8859-1" => Encoding::Latin1,
            "windows1252" | "cp1252" => Encoding::Windows1252,
            other => bail!("--encoding {other:?}: expected auto, utf8, latin1 or windows1252"),
        },
        delimiter: None,
    };
    let assign = match &campaign {
        Some(c) => Some(Assign {
            campaign: c.id.clone(),
            filter: Filter::parse(&a.conditions).map_err(anyhow::Error::msg)?,
            order: settings.as_ref().map(|s| s.order).unwrap_or_default(),
            due: chrono::Utc::now(),
        }),
        None if !a.conditions.is_empty() => bail!("--where needs --campaign"),
        None => None,
    };
    let file =
        std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
    let source = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let summary = import_leads(
        &store,
        &a.db.tenant,
        &source,
        std::io::BufReader::new(file),
        opts,
        assign,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
    let f = &summary.file;
    println!(
        "{}: {} rows, {} imported, {} refused in the file, {} already known",
        a.file.display(),
        f.rows,
        summary.inserted,
        f.error_count,
        summary.already_known.len()
    );
    if let Some(c) = &a.campaign {
        println!("{} leads assigned to campaign {c}", summary.assigned);
    }
    for e in f.errors.iter().take(20) {
        println!("  {e}");
    }
    if f.error_count > 20 {
        println!("  … {} more", f.error_count - 20);
    }
    for (row, phone) in summary.already_known.iter().take(5) {
        match row {
            Some(r) => println!("  row {r}: {phone} is already a lead of this tenant"),
            None => println!("  {phone} is already a lead of this tenant"),
        }
    }
    if let Some(path) = &a.errors {
        write_report(path, &summary)?;
        println!("error report: {}", path.display());
    }
    Ok(())
}

fn write_report(
    path: &Path,
    summary: &bot_runtime::dialer::import::ImportSummary,
) -> anyhow::Result<()> {
    let mut out = Vec::new();
    summary.file.write_csv(&mut out)?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for (row, phone) in &summary.already_known {
        w.write_record([
            row.map(|r| r.to_string()).unwrap_or_default(),
            "phone".to_string(),
            phone.clone(),
            "already a lead of this tenant".to_string(),
        ])?;
    }
    out.extend(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?);
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}
