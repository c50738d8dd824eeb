//! Synthesis on the real Piper voice: audible, plausible length, pauses at commas, streaming and
//! 8 kHz output.
#![allow(clippy::unwrap_used)]

mod common;

use tts::{Audio, OutputRate, TELEPHONY_RATE};

fn peak(a: &Audio) -> f32 {
    a.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()))
}

#[test]
fn a_sentence_is_audible_and_of_plausible_length() {
    let voice = common::voice();
    let audio = voice.synthesize("Your payment is due on Friday.").unwrap();
    assert_eq!(audio.sample_rate, 22_050);
    let secs = audio.duration_secs();
    // Six words at a normal speaking rate (2–4 words/s) plus the 0.2 s sentence pause.
    assert!((1.2..4.0).contains(&secs), "duration {secs:.2} s");
    assert!(audio.rms() > 0.02, "rms {}", audio.rms());
    assert!(
        peak(&audio) > 0.2 && peak(&audio) <= 1.0,
        "peak {}",
        peak(&audio)
    );
    // Speech, not one long silence: no gap longer than the trailing pause.
    let gap = common::longest_silence(&audio.samples, audio.sample_rate);
    assert!(gap < 0.5, "longest silence {gap:.2} s");
}

#[test]
fn longer_text_takes_longer() {
    let voice = common::voice();
    let short = voice.synthesize("Thank you.").unwrap();
    let long = voice
        .synthesize("Thank you for your time today. We will send a confirmation by text message.")
        .unwrap();
    assert!(long.duration_secs() > 2.0 * short.duration_secs());
}

#[test]
fn nothing_speakable_gives_no_audio() {
    let voice = common::voice();
    assert!(voice.synthesize("").unwrap().samples.is_empty());
    assert!(voice.synthesize(" ... ").unwrap().samples.is_empty());
}

#[test]
fn telephony_output_has_the_native_duration() {
    let voice = common::voice();
    let native = voice
        .synthesize("Please hold while I transfer you to an agent.")
        .unwrap();
    let phone = native.resample(TELEPHONY_RATE).unwrap();
    assert_eq!(phone.sample_rate, 8_000);
    let expected = (native.samples.len() as f64 * 8_000.0 / 22_050.0).round() as usize;
    assert_eq!(phone.samples.len(), expected);
    assert!((phone.duration_secs() - native.duration_secs()).abs() < 0.001);
    // Speech energy lies mostly below 4 kHz: the level survives the band limit.
    let ratio = phone.rms() / native.rms();
    assert!((0.8..1.1).contains(&ratio), "rms ratio {ratio}");

    let direct = voice
        .synthesize_at(
            "Please hold while I transfer you to an agent.",
            OutputRate::TELEPHONY,
        )
        .unwrap();
    assert_eq!(direct.sample_rate, 8_000);
    assert!((direct.duration_secs() - native.duration_secs()).abs() < 0.6);
}

/// Mean duration over a few renders: the voice samples noise, so single renders vary a little.
fn mean_duration(text: &str) -> f64 {
    let voice = common::voice();
    let n = 3;
    (0..n)
        .map(|_| voice.synthesize(text).unwrap().duration_secs())
        .sum::<f64>()
        / f64::from(n)
}

#[test]
fn commas_make_pauses() {
    let plain = mean_duration("Yes I can pay today but not the full amount");
    let commas = mean_duration("Yes, I can pay today, but not the full amount");
    assert!(
        commas > plain + 0.15,
        "with commas {commas:.2} s, without {plain:.2} s"
    );

    // And the pause is silence at the clause boundary, not just slower speech.
    let voice = common::voice();
    let audio = voice
        .synthesize("Yes, I can pay today, but not the full amount")
        .unwrap();
    let rate = audio.sample_rate;
    let body = &audio.samples[..audio.samples.len() - (0.25 * f64::from(rate)) as usize];
    let gap = common::longest_silence(body, rate);
    assert!(gap > 0.08, "longest inner silence {gap:.3} s");
}

#[test]
fn stream_yields_sentences_and_the_first_before_the_rest() {
    let voice = common::voice();
    let text = "Hello, this is your bank calling about your account. Is now a good time to talk? \
                It will only take a minute.";
    let chunks: Vec<Audio> = voice
        .synthesize_stream(text, OutputRate::Native)
        .collect::<Result<_, _>>()
        .unwrap();
    // The long first sentence is split at its comma, then one chunk per sentence.
    assert_eq!(chunks.len(), 4);
    let total: f64 = chunks.iter().map(Audio::duration_secs).sum();
    let whole = voice.synthesize(text).unwrap().duration_secs();
    assert!(
        (total - whole).abs() < 0.25 * whole,
        "stream {total:.2} s, whole {whole:.2} s"
    );
    assert!(chunks[0].duration_secs() < 0.35 * total);
    assert!(chunks.iter().all(|c| c.rms() > 0.01));

    let phone: Vec<Audio> = voice
        .synthesize_stream(text, OutputRate::TELEPHONY)
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(phone.iter().all(|c| c.sample_rate == 8_000));
}

#[test]
fn wav_round_trip() {
    let voice = common::voice();
    let audio = voice
        .synthesize_at("Goodbye.", OutputRate::TELEPHONY)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("goodbye.wav");
    audio.write_wav(&path).unwrap();
    let back = Audio::read_wav(&path).unwrap();
    assert_eq!(back.sample_rate, 8_000);
    assert_eq!(back.samples.len(), audio.samples.len());
    let max_err = audio
        .samples
        .iter()
        .zip(&back.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_err < 1.0 / 16_000.0,
        "16-bit quantisation error {max_err}"
    );
}
