//! Time to first audio of a 12-word sentence and real-time factor of a paragraph, at 1 and 2
//! ONNX Runtime intra-op threads, on the real Piper voice.
//!
//! Run: `cargo bench -p tts --bench tts`. Prints medians; it asserts nothing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use callbot_models::ModelsDir;
use tts::{OutputRate, Voice, VoiceOptions};

/// Twelve words, no comma: the stream has to cut the sentence itself.
const PLAIN: &str = "We are calling to remind you that your card payment is due.";
/// Twelve words with a comma after the first.
const COMMA: &str = "Hello, this is First National Bank calling about your card payment today.";
const PARAGRAPH: &str = "Hello, this is First National Bank calling for Mister Smith. This call \
    may be recorded for quality and training purposes. Our records show that your payment of \
    $1,250.50 for the card ending 4217 was due on 03/15/2026. If you have already paid, thank you, \
    and please disregard this message. Otherwise, you can pay today by phone, online, or at any \
    branch. Would you like to make a payment now?";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn first_audio(voice: &Voice, text: &str, runs: usize) -> (Duration, f64) {
    let mut times = Vec::new();
    let mut first_secs = 0.0;
    for _ in 0..runs {
        let t = Instant::now();
        let first = voice
            .synthesize_stream(text, OutputRate::TELEPHONY)
            .next()
            .unwrap()
            .unwrap();
        times.push(t.elapsed());
        first_secs = first.duration_secs();
    }
    (median(times), first_secs)
}

fn whole(voice: &Voice, text: &str, runs: usize) -> (Duration, f64) {
    let mut times = Vec::new();
    let mut secs = 0.0;
    for _ in 0..runs {
        let t = Instant::now();
        let audio = voice.synthesize_at(text, OutputRate::TELEPHONY).unwrap();
        times.push(t.elapsed());
        secs = audio.duration_secs();
    }
    (median(times), secs)
}

fn main() {
    let models = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models).unwrap();
    let espeak = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("espeak-ng-data");
    tts::install_espeak_ng_data(&espeak).unwrap();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("tts bench: Piper en_US-joe-medium, output 8 kHz, {cores} CPU cores visible");
    for threads in [1, 2] {
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
        .unwrap();
        let (ttfa_plain, first_plain) = first_audio(&voice, PLAIN, 7);
        let (ttfa_comma, first_comma) = first_audio(&voice, COMMA, 7);
        let (whole_plain, secs_plain) = whole(&voice, PLAIN, 5);
        let (para, para_secs) = whole(&voice, PARAGRAPH, 3);
        println!("intra-op threads: {threads}");
        println!(
            "  12 words, no comma: first audio {:>4.0} ms (first chunk {first_plain:.2} s); \
             whole sentence {:.0} ms for {secs_plain:.2} s",
            ttfa_plain.as_secs_f64() * 1e3,
            whole_plain.as_secs_f64() * 1e3,
        );
        println!(
            "  12 words, comma:    first audio {:>4.0} ms (first chunk {first_comma:.2} s)",
            ttfa_comma.as_secs_f64() * 1e3,
        );
        println!(
            "  paragraph: {para_secs:.1} s of audio in {:.0} ms, real-time factor {:.3}",
            para.as_secs_f64() * 1e3,
            para.as_secs_f64() / para_secs,
        );
    }
}
