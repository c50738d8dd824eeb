//! `callbot demo`: a small campaign over real SIP/RTP on loopback (see `bot_runtime::demo`):
//! callbot on SQLite dials four simulated customer phones, runs the card payment reminder flow
//! with each, prints the live transcripts with turn latencies and ends with a summary table.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use bot_runtime::demo::{self, DemoOptions};
use bot_runtime::engines::{EngineConfig, Engines};
use callbot_models::ModelsDir;
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database and recordings.
    #[arg(long, default_value = "callbot-data")]
    data: PathBuf,
    /// Database URL (default: SQLite in the data directory).
    #[arg(long, env = "CALLBOT_DATABASE_URL")]
    database_url: Option<String>,
    /// Call the customers one after the other instead of all at once.
    #[arg(long)]
    sequential: bool,
}

pub fn run(args: DemoArgs, models: &ModelsDir) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.data.join("callbot.db").display()));
    println!(
        "callbot demo — models {}, database {url}",
        models.root().display()
    );
    let started = std::time::Instant::now();
    let engines =
        Arc::new(Engines::load(models, &EngineConfig::default()).context("loading the models")?);
    println!("models loaded in {:.1} s", started.elapsed().as_secs_f64());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let opts = DemoOptions {
        database_url: url,
        recording_dir: Some(args.data.join("recordings")),
        sequential: args.sequential,
    };
    let results = runtime.block_on(demo::run(engines, &opts, |line| println!("{line}")))?;
    println!();
    println!("summary");
    print!("{}", demo::summary(&results));
    let ok = results
        .iter()
        .filter(|r| r.record.outcome.as_deref() == Some(r.customer.expect_outcome))
        .count();
    println!(
        "{ok}/{} calls reached the expected outcome; records in {}, recordings in {}",
        results.len(),
        opts.database_url,
        args.data.join("recordings").display()
    );
    Ok(())
}
