//! `callbot`: the one binary that wires callbot's crates together.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "callbot",
    version,
    about = "Offline outbound voicebot and dialer for banks"
)]
struct Cli {
    /// Models directory (default: $CALLBOT_MODELS, else models/store in the source tree).
    #[arg(long, global = true, env = "CALLBOT_MODELS")]
    models: Option<PathBuf>,

    /// Log filter, e.g. `info`, `debug`, `asr=debug` (also RUST_LOG).
    #[arg(long, global = true, default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch, verify and convert the speech and language models.
    #[command(subcommand)]
    Models(cli::models::ModelsCommand),
    /// Speech recognition.
    #[command(subcommand)]
    Asr(cli::asr::AsrCommand),
    /// Intents, sentiment and entities.
    #[command(subcommand)]
    Nlu(cli::nlu::NluCommand),
    /// Speech synthesis.
    #[command(subcommand)]
    Tts(cli::tts::TtsCommand),
    /// Dialog flows: validate, simulate (chat), run conversation tests, print the JSON Schema.
    #[command(subcommand)]
    Flow(cli::flow::FlowCommand),
    /// A small campaign over real SIP on loopback: simulated customer phones, live transcripts.
    Demo(cli::demo::DemoArgs),
    /// Campaigns: create, start, pause, resume, stop, list, status.
    #[command(subcommand)]
    Campaign(cli::campaign::CampaignCommand),
    /// Leads: import CSV files (row-numbered error report), assign to campaigns.
    #[command(subcommand)]
    Leads(cli::campaign::LeadsCommand),
    /// Do-not-call lists: add, remove, check, import, export.
    #[command(subcommand)]
    Dnc(cli::dnc::DncCommand),
    /// Audit: why a number was dialed (or not) at a given time.
    #[command(subcommand)]
    Audit(cli::dnc::AuditCommand),
    /// Run a dialer node.
    #[command(subcommand)]
    Dialer(cli::dialer::DialerCommand),
    /// Human agents: add, list, disable (console login, skills, SIP phone).
    #[command(subcommand)]
    Agents(cli::agents::AgentsCommand),
    /// Agent queues: set, list (skills, priority, timeouts, overflow, wrap-up).
    #[command(subcommand)]
    Queues(cli::agents::QueuesCommand),
    /// Admin API tokens: create (printed once), list, revoke.
    #[command(subcommand)]
    Tokens(cli::agents::TokensCommand),
    /// Reports: connect, right-party, conversion, handle time, transfers, abandons, AMD,
    /// sentiment by hour/day/campaign/flow/agent/side; funnel; agents; table, CSV or XLSX.
    Report(cli::report::ReportArgs),
    /// Back up the SQLite database while callbot runs (online, consistent, verified; DEST.json
    /// manifest). For PostgreSQL use pg_dump (see README).
    Backup(cli::backup::BackupArgs),
    /// Restore a backup into the SQLite database (verified, atomic; stop callbot first).
    Restore(cli::backup::RestoreArgs),
    /// The keys that seal personal data in the database: generate, status, rotate.
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// How long recordings and transcripts are kept: show, set, apply now.
    #[command(subcommand)]
    Retention(cli::retention::RetentionCommand),
    /// Export a call's recording as a plain WAV (opened with the keys that sealed it; audited).
    Recording(cli::recording::RecordingArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let models = callbot_models::ModelsDir::resolve(cli.models.as_deref());
    let result = match cli.command {
        Command::Models(c) => cli::models::run(c, &models),
        Command::Asr(c) => cli::asr::run(c, &models),
        Command::Nlu(c) => cli::nlu::run(c, &models),
        Command::Tts(c) => cli::tts::run(c, &models),
        Command::Flow(c) => cli::flow::run(c, &models),
        Command::Demo(a) => cli::demo::run(a, &models),
        Command::Campaign(c) => cli::campaign::run(c),
        Command::Leads(c) => cli::campaign::run_leads(c),
        Command::Dnc(c) => cli::dnc::run(c),
        Command::Audit(c) => cli::dnc::run_audit(c),
        Command::Dialer(c) => cli::dialer::run(c, &models),
        Command::Agents(c) => cli::agents::run(c),
        Command::Queues(c) => cli::agents::run_queues(c),
        Command::Report(a) => cli::report::run(a),
        Command::Tokens(c) => cli::agents::run_tokens(c),
        Command::Backup(a) => cli::backup::run_backup(a),
        Command::Restore(a) => cli::backup::run_restore(a),
        Command::Keys(c) => cli::keys::run(c),
        Command::Retention(c) => cli::retention::run(c),
        Command::Recording(a) => cli::recording::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // What was printed on stdout comes first (a terminal interleaves the two streams).
            let _ = std::io::Write::flush(&mut std::io::stdout());
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
