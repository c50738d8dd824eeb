//! Checks the ct2 -> ggml conversion and its Q8_0 quantization by transcribing real speech with
//! whisper.cpp (whisper-rs). Fails (does not skip) when a converted model is missing: run
//! `callbot models fetch`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use callbot_models::ModelsDir;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

const SPEECH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/speech");

/// The reference transcript of `wav` (a path relative to `set`) from the set's transcripts.tsv.
fn reference(set: &str, wav: &str) -> String {
    rows(set)
        .into_iter()
        .find_map(|(path, text)| (path == wav).then_some(text))
        .unwrap_or_else(|| panic!("{wav} not in {set}/transcripts.tsv"))
}

/// 16-bit mono PCM as f32 in [-1, 1], with its sample rate.
fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut reader =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.channels, 1, "{}: expected mono", path.display());
    assert_eq!(
        spec.bits_per_sample,
        16,
        "{}: expected 16-bit",
        path.display()
    );
    let samples = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    (samples, spec.sample_rate)
}

/// Linear interpolation 8 kHz -> 16 kHz: enough to check the model, not the ASR crate's resampler.
fn upsample_2x(x: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() * 2);
    for (i, &s) in x.iter().enumerate() {
        out.push(s);
        out.push(match x.get(i + 1) {
            Some(&next) => (s + next) / 2.0,
            None => s,
        });
    }
    out
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word error rate: Levenshtein distance over words divided by the reference length.
fn wer(reference: &[String], hypothesis: &[String]) -> f64 {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()] as f64 / reference.len().max(1) as f64
}

fn load(model: &Path) -> WhisperContext {
    WhisperContext::new_with_params(model.to_str().unwrap(), WhisperContextParameters::default())
        .unwrap_or_else(|e| panic!("whisper.cpp could not load {}: {e}", model.display()))
}

fn transcribe(ctx: &WhisperContext, audio16k: &[f32]) -> String {
    let mut state = ctx.create_state().unwrap();
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(2);
    params.set_print_special(false);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    state.full(params, audio16k).unwrap();
    state
        .as_iter()
        .map(|seg| seg.to_str_lossy().unwrap().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn present(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run `callbot models fetch`",
        path.display()
    );
    path
}

/// Both converted files: the f16 reference and the Q8_0 model callbot transcribes with.
fn models() -> [(&'static str, PathBuf); 2] {
    let dir = ModelsDir::resolve(None);
    [
        ("f16", present(dir.whisper_ggml_f16())),
        ("q8_0", present(dir.whisper_ggml())),
    ]
}

/// The transcripts.tsv rows of a speech set: (wav path, reference transcript).
fn rows(set: &str) -> Vec<(String, String)> {
    let tsv = Path::new(SPEECH).join(set).join("transcripts.tsv");
    let text = std::fs::read_to_string(&tsv).unwrap_or_else(|e| panic!("{}: {e}", tsv.display()));
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let path = cols.next()?;
            let _duration = cols.next()?;
            Some((path.to_string(), cols.next()?.to_string()))
        })
        .collect()
}

#[test]
fn converted_tiny_en_transcribes_jfk_exactly() {
    let (audio, rate) = read_wav(&Path::new(SPEECH).join("whisper.cpp/jfk.wav"));
    assert_eq!(rate, 16_000);
    let want = reference("whisper.cpp", "jfk.wav");
    for (kind, model) in models() {
        let got = transcribe(&load(&model), &audio);
        assert_eq!(words(&got), words(&want), "{kind} transcript: {got}");
    }
}

#[test]
fn converted_tiny_en_transcribes_an_8k_ivr_prompt() {
    let wav = "wav/agent-alreadyon.wav";
    let (audio, rate) = read_wav(&Path::new(SPEECH).join("asterisk-prompts-8k").join(wav));
    assert_eq!(rate, 8_000);
    let want = reference("asterisk-prompts-8k", wav);
    for (kind, model) in models() {
        let got = transcribe(&load(&model), &upsample_2x(&audio));
        let error = wer(&words(&want), &words(&got));
        // A broken conversion yields garbage or nothing; tiny.en itself makes at most a slip here.
        assert!(
            error <= 0.15,
            "{kind}: WER {error:.2}: got {got:?}, want {want:?}"
        );
    }
}

/// Quantization must not cost accuracy: over the 16 kHz read-speech set and every twelfth 8 kHz
/// telephone prompt, the Q8_0 model's word error rate stays within one point of the f16 model's.
#[test]
fn q8_0_model_transcribes_as_well_as_f16() {
    let mut clips: Vec<(Vec<f32>, String)> = Vec::new();
    for (set, step) in [("pocketsphinx-testdata", 1), ("asterisk-prompts-8k", 12)] {
        for (wav, text) in rows(set).into_iter().step_by(step) {
            let (audio, rate) = read_wav(&Path::new(SPEECH).join(set).join(&wav));
            let audio = match rate {
                16_000 => audio,
                8_000 => upsample_2x(&audio),
                r => panic!("{set}/{wav}: unexpected rate {r}"),
            };
            clips.push((audio, text));
        }
    }
    assert!(clips.len() >= 30, "only {} clips", clips.len());
    let reference_words: usize = clips.iter().map(|(_, t)| words(t).len()).sum();
    let mut rates = Vec::new();
    for (kind, model) in models() {
        let ctx = load(&model);
        let mut errors = 0.0;
        for (audio, text) in &clips {
            let want = words(text);
            errors += wer(&want, &words(&transcribe(&ctx, audio))) * want.len() as f64;
        }
        let rate = errors / reference_words as f64;
        eprintln!(
            "{kind}: WER {:.2}% over {} clips",
            rate * 100.0,
            clips.len()
        );
        rates.push(rate);
    }
    let (f16, q8) = (rates[0], rates[1]);
    assert!(f16 < 0.15, "f16 WER {:.2}% is not tiny.en's", f16 * 100.0);
    assert!(
        q8 <= f16 + 0.01,
        "Q8_0 WER {:.2}% vs f16 {:.2}%",
        q8 * 100.0,
        f16 * 100.0
    );
}
