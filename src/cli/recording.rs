//! `callbot recording CALL_ID -o FILE.wav`: a call's recording as a plain WAV, opened with the
//! keys that sealed it and checked against the call record's SHA-256. Every export is written to
//! the audit log (a recording is personal data).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use super::campaign::{DbArgs, rt};

#[derive(Args)]
pub struct RecordingArgs {
    /// The call's id.
    call: String,
    /// The WAV file to write (8 kHz, two channels: customer left, callbot right).
    #[arg(short, long)]
    output: PathBuf,
    /// Who asks, for the audit log.
    #[arg(long, default_value = "cli")]
    actor: String,
    #[command(flatten)]
    db: DbArgs,
}

pub fn run(a: RecordingArgs) -> anyhow::Result<()> {
    rt()?.block_on(async {
        let store = a.db.open().await?;
        let Some(call) = store.call(&a.call).await? else {
            bail!("no call {}", a.call);
        };
        let Some(recording) = &call.recording else {
            bail!(
                "call {} has no recording (not recorded, or purged by the retention policy)",
                a.call
            );
        };
        let wav = store.read_recording(recording)?;
        store
            .audit(
                &a.db.tenant,
                &a.actor,
                "recording.export",
                &a.call,
                serde_json::json!({ "output": a.output.display().to_string() }),
            )
            .await?;
        std::fs::write(&a.output, &wav)
            .with_context(|| format!("writing {}", a.output.display()))?;
        println!(
            "wrote {} ({} ms, {} bytes)",
            a.output.display(),
            recording.duration_ms,
            wav.len()
        );
        Ok(())
    })
}
