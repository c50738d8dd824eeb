//! ASR speed and accuracy: `cargo bench -p asr --bench asr`.
//!
//! 1. Latency and real-time factor of one 2–4 s utterance at 1 and 2 threads, full 30 s window
//!    versus the window cut to the utterance (median of 5 runs after a warm-up).
//! 2. WER per shared speech set for: the full window (plain whisper.cpp), the cut window, and
//!    VAD trimming + cut window (what `callbot asr transcribe` and the bot do), with how often
//!    the cut was rejected and per-prompt latency.
//!
//! Both parts run on the Q8_0 model callbot uses; `ASR_BENCH_MODEL=f16` runs them on the f16
//! conversion instead, for comparison.
//! `ASR_BENCH=latency` or `ASR_BENCH=wer` runs one part; `ASR_BENCH_SETS=asterisk` filters sets,
//! `ASR_BENCH_MODES=cut,vad+cut` modes; `ASR_BENCH_VERBOSE=1` prints each error to stderr.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use asr::wer::{WordErrors, word_errors};
use asr::{
    SpeechSet, TranscribeOptions, Transcriber, TranscriberOptions, Vad, VadRate, WindowPolicy,
};

fn speech_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/speech"
    ))
}

fn main() {
    let models = callbot_models::ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models).expect("ONNX Runtime");
    let part = std::env::var("ASR_BENCH").unwrap_or_default();
    let (kind, model) = match std::env::var("ASR_BENCH_MODEL").as_deref() {
        Ok("f16") => ("f16", models.whisper_ggml_f16()),
        Ok("q8_0") | Err(_) => ("q8_0", models.whisper_ggml()),
        Ok(other) => panic!("ASR_BENCH_MODEL={other}: expected f16 or q8_0"),
    };
    println!(
        "machine: {} CPU threads available; whisper tiny.en ggml {kind}, whisper.cpp {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        whisper_rs::WHISPER_CPP_VERSION
    );
    if part.is_empty() || part == "latency" {
        latency(&model);
    }
    if part.is_empty() || part == "wer" {
        let mut vad = Vad::new(&env, &models.silero_vad(), VadRate::Hz16000).unwrap();
        accuracy(&model, &mut vad);
    }
}

fn latency(model: &Path) {
    let dir = speech_dir();
    let clips = [
        dir.join("pocketsphinx-testdata/goforward.wav"),
        dir.join("asterisk-prompts-8k/wav/conf-getchannel.wav"),
    ];
    println!("\n== latency (median of 5 after a warm-up) ==");
    println!("clip\taudio_s\tthreads\twindow\tms\tRTF\tpasses\ttext");
    for threads in [1, 2] {
        let t = Transcriber::new(
            model,
            TranscriberOptions {
                threads,
                ..Default::default()
            },
        )
        .unwrap();
        for clip in &clips {
            let audio = asr::read_wav_16k(clip).unwrap();
            let secs = audio.len() as f32 / 16000.0;
            for full_window in [true, false] {
                let opts = TranscribeOptions {
                    full_window,
                    ..Default::default()
                };
                let _ = t.transcribe(&audio, &opts).unwrap();
                let mut times = Vec::new();
                let mut last = None;
                for _ in 0..5 {
                    let start = Instant::now();
                    let tr = t.transcribe(&audio, &opts).unwrap();
                    times.push(start.elapsed());
                    last = Some(tr);
                }
                times.sort();
                let med = times[2];
                let tr = last.unwrap();
                println!(
                    "{}\t{secs:.2}\t{threads}\t{}\t{}\t{:.3}\t{}\t{}",
                    clip.file_name().unwrap().to_string_lossy(),
                    if full_window { "full" } else { "cut" },
                    med.as_millis(),
                    med.as_secs_f32() / secs,
                    tr.timings
                        .passes
                        .iter()
                        .map(|p| p.audio_ctx.to_string())
                        .collect::<Vec<_>>()
                        .join("+"),
                    tr.text
                );
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Full,
    Cut,
    VadCut,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Cut => "cut",
            Mode::VadCut => "vad+cut",
        }
    }
}

fn accuracy(model: &Path, vad: &mut Vad) {
    // ASR_BENCH_FLOOR: the cut window's floor in encoder positions (default: the library's).
    let mut window = WindowPolicy::default();
    if let Some(floor) = std::env::var("ASR_BENCH_FLOOR")
        .ok()
        .and_then(|f| f.parse().ok())
    {
        window.floor = floor;
    }
    let t = Transcriber::new(
        model,
        TranscriberOptions {
            window,
            ..Default::default()
        },
    )
    .unwrap();
    println!(
        "\ncut window floor {} positions, margin {}",
        window.floor, window.margin
    );
    let filter = std::env::var("ASR_BENCH_SETS").unwrap_or_default();
    let verbose = std::env::var("ASR_BENCH_VERBOSE").is_ok();
    println!("\n== WER per set (2 threads) ==");
    println!("set\tmode\tprompts\twords\tWER%\tfallbacks\tmean_ms\tp50_ms\tp90_ms\tmax_ms");
    for name in [
        "asterisk-prompts-8k",
        "pocketsphinx-testdata",
        "whisper.cpp",
    ] {
        if !filter.is_empty() && !name.contains(&filter) {
            continue;
        }
        let set = SpeechSet::load(&speech_dir().join(name)).unwrap();
        let audio: Vec<Vec<f32>> = set
            .items
            .iter()
            .map(|i| asr::read_wav_16k(&i.path).unwrap())
            .collect();
        let modes = std::env::var("ASR_BENCH_MODES").unwrap_or_default();
        for mode in [Mode::Full, Mode::Cut, Mode::VadCut] {
            if !modes.is_empty() && !modes.split(',').any(|m| m == mode.name()) {
                continue;
            }
            let mut errors = WordErrors::default();
            let mut times: Vec<Duration> = Vec::new();
            let mut fallbacks = 0;
            for (item, samples) in set.items.iter().zip(&audio) {
                let opts = TranscribeOptions {
                    full_window: mode == Mode::Full,
                    ..Default::default()
                };
                let start = Instant::now();
                let tr = match mode {
                    Mode::VadCut => t.transcribe_utterance(samples, vad, &opts).unwrap(),
                    _ => t.transcribe(samples, &opts).unwrap(),
                };
                times.push(start.elapsed());
                fallbacks += usize::from(tr.timings.fell_back());
                let e = word_errors(&item.transcript, &tr.text);
                if verbose && e.errors() > 0 {
                    eprintln!(
                        "{}\t{}\t{:?}\t{}\t| {}",
                        item.path.display(),
                        e.errors(),
                        tr.timings
                            .passes
                            .iter()
                            .map(|p| (p.audio_ctx, p.rejected))
                            .collect::<Vec<_>>(),
                        item.transcript,
                        tr.text
                    );
                }
                errors += e;
            }
            times.sort();
            let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
            let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
            println!(
                "{name}\t{}\t{}\t{}\t{:.2}\t{fallbacks}\t{}\t{}\t{}\t{}",
                mode.name(),
                set.items.len(),
                errors.reference_words,
                errors.wer() * 100.0,
                mean.as_millis(),
                pct(50).as_millis(),
                pct(90).as_millis(),
                times.last().map_or(0, |d| d.as_millis()),
            );
        }
    }
}
