//! Answering-machine detection on real recordings with the real models: Silero VAD (8 kHz) for
//! the speech probability, whisper tiny.en for the transcripts the detector asks for.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use asr::{TranscribeOptions, Transcriber, TranscriberOptions, Vad, VadRate};
use bot_runtime::amd::{AmdAction, AmdConfig, AmdDetector, AmdVerdict, FRAME_SAMPLES};
use callbot_models::ModelsDir;

const PROMPTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/speech/asterisk-prompts-8k/wav"
);

struct Models {
    vad: Vad,
    whisper: Transcriber,
}

fn models() -> Result<Models> {
    let dir = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&dir)?;
    Ok(Models {
        vad: Vad::new(&env, &dir.silero_vad(), VadRate::Hz8000)?,
        whisper: Transcriber::new(&dir.whisper_ggml(), TranscriberOptions::default())?,
    })
}

/// 8 kHz 16-bit samples of an Asterisk prompt.
fn prompt(name: &str) -> Result<Vec<i16>> {
    let path = PathBuf::from(PROMPTS).join(name);
    let audio = asr::read_wav(&path).with_context(|| path.display().to_string())?;
    assert_eq!(audio.sample_rate, 8000, "{name}");
    Ok(audio
        .samples
        .iter()
        .map(|s| (s * 32767.0).clamp(-32768.0, 32767.0) as i16)
        .collect())
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 8]
}

/// Index just past the last sample above 1% of full scale.
fn content_end(pcm: &[i16]) -> usize {
    pcm.iter()
        .rposition(|s| s.unsigned_abs() > 327)
        .map_or(0, |i| i + 1)
}

#[derive(Debug, Default)]
struct Outcome {
    verdict: Option<AmdVerdict>,
    ready: Option<(u64, bool)>,
    transcripts: Vec<String>,
}

/// Feeds `pcm` frame by frame, transcribing whatever the detector hands out.
fn detect(models: &mut Models, pcm: &[i16]) -> Result<Outcome> {
    let mut detector = AmdDetector::new(AmdConfig::default());
    let mut out = Outcome::default();
    models.vad.reset();
    let mut prob = 0.0;
    for frame in pcm.chunks_exact(FRAME_SAMPLES) {
        if let Some(&p) = models.vad.push(&asr::i16_to_f32(frame))?.last() {
            prob = p;
        }
        let mut actions = detector.push_frame(frame, prob);
        while !actions.is_empty() {
            let mut next = Vec::new();
            for action in actions {
                match action {
                    AmdAction::Transcribe { pcm } => {
                        let audio = asr::resample(&asr::i16_to_f32(&pcm), 8000, 16_000)?;
                        let text = models
                            .whisper
                            .transcribe(&audio, &TranscribeOptions::default())?
                            .text;
                        next.extend(detector.transcript(&text));
                        out.transcripts.push(text);
                    }
                    AmdAction::Verdict(v) => {
                        assert!(out.verdict.is_none(), "second verdict {v:?}");
                        out.verdict = Some(v);
                    }
                    AmdAction::ReadyForMessage { at_ms, after_beep } => {
                        assert!(out.ready.is_none(), "second ReadyForMessage");
                        out.ready = Some((at_ms, after_beep));
                    }
                }
            }
            actions = next;
        }
        if detector.is_done() {
            break;
        }
    }
    assert_eq!(detector.verdict(), out.verdict.as_ref());
    Ok(out)
}

fn ms(samples: usize) -> u64 {
    (samples / 8) as u64
}

#[test]
fn real_recordings() -> Result<()> {
    let mut models = models()?;
    assert!(
        Path::new(PROMPTS).is_dir(),
        "shared data missing at {PROMPTS}"
    );

    // "Please leave your message after the tone. When done, hang up or press the pound key."
    // then Asterisk's own beep (a real recording: 520 Hz then 440 Hz, ~270 ms).
    let mut pcm = silence(400);
    pcm.extend(prompt("vm-intro.wav")?);
    pcm.extend(silence(500));
    let beep = prompt("confbridge-leave.wav")?;
    let beep_end = ms(pcm.len() + content_end(&beep));
    pcm.extend(beep);
    pcm.extend(silence(3000));
    let out = detect(&mut models, &pcm)?;
    match &out.verdict {
        Some(AmdVerdict::Machine { at_ms, reason }) => {
            assert!(*at_ms < 3500, "decided at {at_ms} ms: {reason}");
        }
        other => panic!("vm-intro: {other:?} ({:?})", out.transcripts),
    }
    let (at, after_beep) = out.ready.context("no ReadyForMessage after vm-intro")?;
    assert!(after_beep, "the beep was not heard: ready at {at} ms");
    assert!(
        at.abs_diff(beep_end) <= 60,
        "message at {at} ms, beep ends at {beep_end} ms"
    );

    // "Hello." and nothing more: a person waiting for an answer.
    let mut pcm = silence(600);
    pcm.extend(prompt("hello.wav")?);
    pcm.extend(silence(4000));
    let out = detect(&mut models, &pcm)?;
    match &out.verdict {
        Some(AmdVerdict::Human { at_ms, .. }) => assert!(*at_ms <= 2600, "human at {at_ms} ms"),
        other => panic!("hello.wav: {other:?} ({:?})", out.transcripts),
    }
    assert_eq!(out.ready, None);

    // "Nobody is available to take your call at the moment", no beep: a machine, and the
    // message starts after the greeting has ended.
    let mut pcm = silence(300);
    let greeting = prompt("vm-nobodyavail.wav")?;
    let greeting_end = ms(pcm.len() + content_end(&greeting));
    pcm.extend(greeting);
    pcm.extend(silence(4000));
    let out = detect(&mut models, &pcm)?;
    assert!(
        matches!(out.verdict, Some(AmdVerdict::Machine { .. })),
        "vm-nobodyavail: {:?} ({:?})",
        out.verdict,
        out.transcripts
    );
    let (at, after_beep) = out
        .ready
        .context("no ReadyForMessage after vm-nobodyavail")?;
    assert!(!after_beep);
    assert!(
        at > greeting_end,
        "message at {at} ms, greeting ends at {greeting_end} ms"
    );

    // Five seconds of nothing: no verdict either way.
    let out = detect(&mut models, &prompt("silence/5.wav")?)?;
    assert!(
        matches!(out.verdict, Some(AmdVerdict::Unknown { .. })),
        "{:?}",
        out.verdict
    );
    assert!(out.transcripts.is_empty());
    Ok(())
}
