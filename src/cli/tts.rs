//! `callbot tts …`: speech synthesis from the command line.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use callbot_models::ModelsDir;
use clap::Subcommand;
use tts::{Audio, OutputRate, Voice, VoiceOptions};

#[derive(Subcommand)]
pub enum TtsCommand {
    /// Speak TEXT into a WAV file (16-bit mono); prints time to first audio and real-time factor.
    Say {
        /// The text, as a flow would say it ("$1,250.50 is due on 03/15/2026").
        text: String,
        /// Output WAV file.
        #[arg(short, long)]
        output: PathBuf,
        /// Output sample rate: `native` (the voice's, 22050) or a rate in Hz such as 8000.
        #[arg(long, default_value = "native", value_parser = parse_rate)]
        rate: OutputRate,
        /// ONNX Runtime intra-op threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Print the normalised text that is spoken.
        #[arg(long)]
        show_text: bool,
    },
}

fn parse_rate(s: &str) -> Result<OutputRate, String> {
    if s.eq_ignore_ascii_case("native") {
        return Ok(OutputRate::Native);
    }
    match s.parse::<u32>() {
        Ok(hz) if (4_000..=192_000).contains(&hz) => Ok(OutputRate::Hz(hz)),
        _ => Err(format!(
            "`{s}`: expected `native` or a rate in Hz between 4000 and 192000"
        )),
    }
}

pub fn run(cmd: TtsCommand, models: &ModelsDir) -> anyhow::Result<()> {
    match cmd {
        TtsCommand::Say {
            text,
            output,
            rate,
            threads,
            show_text,
        } => say(models, &text, &output, rate, threads, show_text),
    }
}

fn say(
    models: &ModelsDir,
    text: &str,
    output: &std::path::Path,
    rate: OutputRate,
    threads: usize,
    show_text: bool,
) -> anyhow::Result<()> {
    let env = callbot_models::onnxruntime_environment(models)?;
    // The espeak-ng data must match the espeak-ng linked into this binary; it carries its own
    // copy and writes it if the models folder lacks it (a no-op otherwise).
    let espeak = models.espeak_ng_data();
    if tts::install_espeak_ng_data(&espeak)? {
        eprintln!("installed espeak-ng data into {}", espeak.display());
    }
    let started = Instant::now();
    let options = VoiceOptions {
        intra_threads: threads,
        ..VoiceOptions::default()
    };
    let voice = Voice::load_with(
        &env,
        &models.piper_voice(),
        &models.piper_voice_config(),
        &espeak,
        options,
    )
    .context("loading the Piper voice")?;
    let load = started.elapsed();
    if show_text {
        eprintln!("text: {}", tts::normalize(text));
    }

    let started = Instant::now();
    let mut first_audio = None;
    let mut audio = Audio {
        samples: Vec::new(),
        sample_rate: rate.resolve(voice.sample_rate()),
    };
    for chunk in voice.synthesize_stream(text, rate) {
        let chunk = chunk?;
        first_audio.get_or_insert_with(|| started.elapsed());
        audio.append(&chunk)?;
    }
    let total = started.elapsed();
    if audio.samples.is_empty() {
        anyhow::bail!("nothing to say: {text:?} has no speakable words");
    }
    audio
        .write_wav(output)
        .with_context(|| format!("writing {}", output.display()))?;
    let secs = audio.duration_secs();
    eprintln!(
        "{}: {secs:.2} s at {} Hz; load {:.0} ms, time to first audio {:.0} ms, \
         total {:.0} ms, real-time factor {:.3} ({threads} threads)",
        output.display(),
        audio.sample_rate,
        load.as_secs_f64() * 1e3,
        first_audio.unwrap_or(total).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        total.as_secs_f64() / secs,
    );
    Ok(())
}
