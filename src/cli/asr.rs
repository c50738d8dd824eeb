//! `callbot asr …`: speech recognition from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use asr::{TranscribeOptions, Transcriber, TranscriberOptions, Vad, VadRate};
use callbot_models::ModelsDir;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AsrCommand {
    /// Transcribe WAV files (PCM, float, µ-law or A-law; any rate; mono or stereo). Prints one
    /// `path<TAB>transcript` line per file; files that cannot be read are reported on stderr
    /// and the exit status is non-zero, but the other files are still transcribed.
    Transcribe {
        /// WAV files, transcribed in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// CPU threads for Whisper.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: u16,
        /// Words or phrases to expect (biases recognition towards them).
        #[arg(long)]
        prompt: Option<String>,
        /// Always decode with Whisper's full 30 s window (slower; the reference behaviour).
        #[arg(long)]
        full_window: bool,
    },
}

pub fn run(cmd: AsrCommand, models: &ModelsDir) -> anyhow::Result<()> {
    match cmd {
        AsrCommand::Transcribe {
            files,
            threads,
            prompt,
            full_window,
        } => transcribe(models, &files, usize::from(threads), prompt, full_window),
    }
}

fn transcribe(
    models: &ModelsDir,
    files: &[PathBuf],
    threads: usize,
    prompt: Option<String>,
    full_window: bool,
) -> anyhow::Result<()> {
    let options = TranscriberOptions {
        threads,
        ..Default::default()
    };
    let whisper = Transcriber::new(&models.whisper_ggml(), options)
        .context("loading Whisper (run `callbot models fetch`?)")?;
    let env = callbot_models::onnxruntime_environment(models)?;
    let mut vad = Vad::new(&env, &models.silero_vad(), VadRate::Hz16000)
        .context("loading the VAD (run `callbot models fetch`?)")?;
    let opts = TranscribeOptions {
        prompt,
        full_window,
        ..Default::default()
    };
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    for path in files {
        let result = asr::read_wav_16k(path)
            .and_then(|audio| whisper.transcribe_utterance(&audio, &mut vad, &opts));
        match result {
            Ok(t) => {
                tracing::debug!(file = %path.display(), timings = ?t.timings, "transcribed");
                let mut out = stdout.lock();
                writeln!(out, "{}\t{}", path.display(), one_line(&t.text))?;
                out.flush()?;
            }
            Err(e) => {
                failed += 1;
                // AsrError::Audio already starts with the path.
                match e {
                    asr::AsrError::Audio { .. } => eprintln!("error: {e}"),
                    e => eprintln!("error: {}: {e}", path.display()),
                }
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files could not be transcribed", files.len());
    }
    Ok(())
}

/// Keeps the one-line-per-file contract even if a transcript had a tab or a newline.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
