//! Answering-machine detection: builds a labelled set of call openings at run time and runs
//! [`AmdDetector`] over it with the real models (Silero VAD at 8 kHz for the speech
//! probability, whisper tiny.en for the `Transcribe` action).
//!
//! The set (nothing generated is written to disk):
//! - machines: real 8 kHz recordings from `shared/data/speech/asterisk-prompts-8k` (voicemail
//!   prompts, Asterisk's own "The person at extension … is unavailable" greeting assembled from
//!   its parts, network and IVR announcements) and voicemail greetings synthesised with the
//!   Piper voice at two speaking rates; each with a beep or not (70%): a synthetic sine of
//!   400–2000 Hz lasting 150–1000 ms, or the real descending double beep
//!   `confbridge-leave.wav`, 0.15–1.0 s after the greeting; one greeting per split opens like a
//!   person ("Hello?" or "Hi!") and pauses 1.2 s before going on (a known hard case);
//! - humans: real short utterances (`hello.wav`, pocketsphinx `cards/*`) and synthesised
//!   answers ("Hello?", "Yes?", "Hello, this is Sam speaking", and one long answer per split),
//!   then 1–2.5 s of silence and, half of the time, a second "hello?";
//! - every opening: 0.1–1.5 s of silence after the answer, a random level, white noise at
//!   −65…−45 dBFS, then G.711 µ-law.
//!
//! Each greeting text or recording belongs to one split (dev or test, fixed lists below), so no
//! text appears in both. The defaults of `AmdConfig` were tuned on dev only; errors are listed
//! for dev only.
//!
//! Transcription is asynchronous in a call: each transcript is handed back to the detector once
//! the audio has moved on by the time Whisper took for it here (`-- --asr-latency-ms N` fixes
//! that delay instead), so decision times include the recogniser's latency.
//!
//! Run: `cargo bench -p bot-runtime --bench amd` (`-- --split dev` or `-- --split test` for one).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use asr::{TranscribeOptions, Transcriber, TranscriberOptions, Vad, VadRate};
use bot_runtime::amd::{AmdAction, AmdConfig, AmdDetector, AmdVerdict, FRAME_SAMPLES};
use callbot_models::ModelsDir;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tts::{OutputRate, SynthesisParams, Voice, VoiceOptions};

const SPEECH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/speech");
const RATE: usize = 8000;
const SEED: u64 = 0x00A3_D5E7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Human,
    Machine,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    Dev,
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

/// Machine greetings of real recordings: parts played back to back.
const REAL_MACHINES: &[(Split, &[&str])] = &[
    (Split::Dev, &["vm-intro.wav"]),
    (Split::Dev, &["vm-nobodyavail.wav"]),
    (Split::Dev, &["vm-rec-busy.wav"]),
    (Split::Dev, &["vm-rec-temp.wav"]),
    (Split::Dev, &["ss-noservice.wav"]),
    (Split::Dev, &["followme/sorry.wav"]),
    (Split::Dev, &["tt-allbusy.wav"]),
    (Split::Dev, &["vm-mailboxfull.wav"]),
    // Asterisk's default voicemail greeting: "The person at extension 2 3 4 5 is unavailable".
    (
        Split::Test,
        &[
            "vm-theperson.wav",
            "digits/2.wav",
            "digits/3.wav",
            "digits/4.wav",
            "digits/5.wav",
            "vm-isunavail.wav",
        ],
    ),
    (Split::Test, &["vm-whichbox.wav"]),
    (Split::Test, &["cannot-complete-as-dialed.wav"]),
    (Split::Test, &["please-try-call-later.wav"]),
    (Split::Test, &["queue-youarenext.wav"]),
    (Split::Test, &["dir-intro.wav"]),
    (Split::Test, &["pbx-invalid.wav"]),
    (Split::Test, &["basic-pbx-ivr-main.wav"]),
];

/// Real short utterances as a person's first words (paths under `shared/data/speech`).
const REAL_HUMANS: &[(Split, &str)] = &[
    (Split::Dev, "asterisk-prompts-8k/wav/hello.wav"),
    (Split::Dev, "pocketsphinx-testdata/cards/001.wav"),
    (Split::Dev, "pocketsphinx-testdata/cards/003.wav"),
    (Split::Test, "pocketsphinx-testdata/cards/002.wav"),
    (Split::Test, "pocketsphinx-testdata/cards/004.wav"),
];

const SYNTH_MACHINES: &[(Split, &str)] = &[
    (
        Split::Dev,
        "Hi, you've reached Sam. I can't take your call right now, please leave a message after the beep.",
    ),
    (
        Split::Dev,
        "The person you are calling is not available. Please leave a message after the tone.",
    ),
    (
        Split::Dev,
        "Hello, this is Maria. Sorry I missed your call. Leave your name and number and I'll get back to you.",
    ),
    (Split::Dev, "Hi, it's Dave. Leave a message."),
    (
        Split::Dev,
        "You have reached the voicemail of John Smith. Please leave a message.",
    ),
    (
        Split::Dev,
        "Hi, this is Anna. I'm away from my desk until Monday. I will call you back as soon as I can.",
    ),
    (
        Split::Dev,
        "Thanks for calling. We are closed right now. Our office hours are nine to five, Monday to Friday.",
    ),
    (
        Split::Dev,
        "Hello! Nobody's home right now, so speak after the beep.",
    ),
    (Split::Dev, "Hey, this is Chris. You know what to do."),
    // Greetings that open like a person and pause (`|` is 1.2 s of silence).
    (
        Split::Dev,
        "Hello? | Just kidding, I'm not here. Leave a message.",
    ),
    (
        Split::Test,
        "Hi, this is Tom. I'm not available right now. Please leave your message after the tone.",
    ),
    (
        Split::Test,
        "Hello, you've reached the Johnson family. We can't come to the phone, leave us a message.",
    ),
    (
        Split::Test,
        "The number you are trying to reach is unavailable. Please try again later.",
    ),
    (
        Split::Test,
        "Hey, it's Lisa. Leave a message and I'll call you back.",
    ),
    (
        Split::Test,
        "Your call has been forwarded to an automated voice messaging system. Please record your message after the tone.",
    ),
    (
        Split::Test,
        "Hi, you've got Mark at Acme. I'm out of the office today. For urgent matters, please call the front desk.",
    ),
    (Split::Test, "This is Karen. Talk to me after the beep."),
    (
        Split::Test,
        "Hello, this is Paul. I'm probably on the other line. Say something after the beep.",
    ),
    (
        Split::Test,
        "Good day, this is the office of Doctor Brown. We're unable to answer your call.",
    ),
    (
        Split::Test,
        "Hi! | Sorry, I can't pick up right now. Call me later.",
    ),
];

const SYNTH_HUMANS: &[(Split, &str)] = &[
    (Split::Dev, "Hello?"),
    (Split::Dev, "Yes?"),
    (Split::Dev, "Hello, this is Sam speaking."),
    (Split::Dev, "Hi, who's calling?"),
    (Split::Dev, "Good morning."),
    (Split::Dev, "Yeah, hello?"),
    (Split::Dev, "Speaking."),
    (Split::Dev, "Hello, Jones residence."),
    (Split::Dev, "Hi there."),
    (Split::Dev, "Hello, Maria speaking."),
    (Split::Dev, "Hello, Sam speaking, how can I help you?"),
    (Split::Test, "Hello."),
    (Split::Test, "Yeah?"),
    (Split::Test, "Hi, this is Anna."),
    (Split::Test, "Hello, who is this?"),
    (Split::Test, "Good afternoon."),
    (Split::Test, "Yes, hello?"),
    (Split::Test, "Mike here."),
    (Split::Test, "Hello, Smith household."),
    (Split::Test, "Hey."),
    (Split::Test, "Hello, can I help you?"),
    (Split::Test, "Good morning, this is Anna Jones speaking."),
];

/// A greeting or an answer before it is placed in a call opening.
struct Source {
    key: String,
    truth: Truth,
    split: Split,
    real: bool,
    /// 8 kHz, peak-normalised to 1.
    audio: Vec<f32>,
    /// A person's second try ("hello?") when nobody answers.
    again: Option<Vec<f32>>,
    variants: usize,
}

/// One call opening of the set.
struct Item {
    id: String,
    key: String,
    truth: Truth,
    split: Split,
    real: bool,
    pcm: Vec<i16>,
    /// End of the last speech of the greeting (ms from the answer).
    greeting_end_ms: u64,
    /// End of a person's first words (ms from the answer).
    first_end_ms: u64,
    /// End of the beep, when there is one.
    beep_end_ms: Option<u64>,
    beep_desc: String,
}

#[derive(Default)]
struct Outcome {
    verdict: Option<AmdVerdict>,
    ready: Option<(u64, bool)>,
    transcriptions: usize,
    whisper_time: Duration,
}

fn peak_normalise(mut v: Vec<f32>) -> Vec<f32> {
    let peak = v.iter().fold(0.0_f32, |m, s| m.max(s.abs()));
    if peak > 0.0 {
        v.iter_mut().for_each(|s| *s /= peak);
    }
    v
}

fn read_8k(path: &Path) -> Result<Vec<f32>> {
    let audio = asr::read_wav(path).with_context(|| path.display().to_string())?;
    let samples = if audio.sample_rate as usize == RATE {
        audio.samples
    } else {
        asr::resample(&audio.samples, audio.sample_rate, RATE as u32)?
    };
    Ok(peak_normalise(samples))
}

/// Index just past the last sample louder than 2% of the peak.
fn content_end(v: &[f32]) -> usize {
    v.iter().rposition(|s| s.abs() > 0.02).map_or(0, |i| i + 1)
}

fn ms(samples: usize) -> u64 {
    (samples * 1000 / RATE) as u64
}

fn silence(rng: &mut StdRng, lo: f32, hi: f32) -> Vec<f32> {
    vec![0.0; (rng.random_range(lo..hi) * RATE as f32) as usize]
}

fn sine_beep(hz: f32, secs: f32, amp: f32) -> Vec<f32> {
    let n = (secs * RATE as f32) as usize;
    let ramp = RATE / 200; // 5 ms
    (0..n)
        .map(|i| {
            let edge = i.min(n - 1 - i).min(ramp) as f32 / ramp as f32;
            let env = 0.5 - 0.5 * (std::f32::consts::PI * edge).cos();
            amp * env * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin()
        })
        .collect()
}

/// Places a source in a call opening: answer delay, level, beep, noise, µ-law.
fn make_item(source: &Source, variant: usize, real_beep: &[f32], rng: &mut StdRng) -> Item {
    let gain = rng.random_range(0.25..0.9_f32);
    let mut audio = silence(rng, 0.1, 1.5);
    let greeting_start = audio.len();
    audio.extend(source.audio.iter().map(|s| s * gain));
    let mut greeting_end = greeting_start + content_end(&source.audio);
    let first_end = greeting_end;
    let mut beep_end = None;
    let mut beep_desc = String::from("none");
    match source.truth {
        Truth::Machine => {
            if rng.random_bool(0.7) {
                audio.truncate(greeting_end);
                audio.extend(silence(rng, 0.15, 1.0));
                let beep = if rng.random_bool(0.2) {
                    beep_desc = "real double 520/440 Hz".into();
                    real_beep.iter().map(|s| s * 0.6).collect()
                } else {
                    let hz = rng.random_range(400.0..2000.0_f32);
                    let secs = rng.random_range(0.15..1.0_f32);
                    beep_desc = format!("{hz:.0} Hz {:.0} ms", secs * 1000.0);
                    sine_beep(hz, secs, rng.random_range(0.15..0.5))
                };
                let end = audio.len() + content_end(&beep);
                audio.extend(beep);
                beep_end = Some(ms(end));
            }
            audio.extend(silence(rng, 3.0, 4.0));
        }
        Truth::Human => {
            audio.extend(silence(rng, 1.0, 2.5));
            if let Some(again) = source.again.as_ref().filter(|_| rng.random_bool(0.5)) {
                let start = audio.len();
                audio.extend(again.iter().map(|s| s * gain));
                greeting_end = start + content_end(again);
            }
            audio.extend(silence(rng, 3.0, 4.0));
        }
    }
    // White noise (sum of uniforms) at -65..-45 dBFS.
    let noise_rms = 10f32.powf(-rng.random_range(45.0..65.0_f32) / 20.0);
    let pcm = audio
        .iter()
        .map(|s| {
            let n: f32 = (0..4).map(|_| rng.random_range(-1.0..1.0_f32)).sum::<f32>() * 0.866;
            let v = ((s + n * noise_rms) * 32767.0).clamp(-32768.0, 32767.0) as i16;
            asr::decode_ulaw(asr::encode_ulaw(v))
        })
        .collect();
    Item {
        id: format!("{}#{variant}", source.key),
        key: source.key.clone(),
        truth: source.truth,
        split: source.split,
        real: source.real,
        pcm,
        greeting_end_ms: ms(greeting_end),
        first_end_ms: ms(first_end),
        beep_end_ms: beep_end,
        beep_desc,
    }
}

struct Models {
    vad: Vad,
    whisper: Transcriber,
    voices: Vec<Voice>,
}

fn load_models() -> Result<Models> {
    let models = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models)?;
    let voice = |length_scale: f32| {
        Voice::load_with(
            &env,
            &models.piper_voice(),
            &models.piper_voice_config(),
            &models.espeak_ng_data(),
            VoiceOptions {
                intra_threads: 2,
                params: Some(SynthesisParams {
                    noise_scale: 0.667,
                    length_scale,
                    noise_w: 0.8,
                    sentence_pause: 0.3,
                }),
                fast_first_chunk: false,
            },
        )
    };
    let voices = vec![voice(1.0)?, voice(1.2)?];
    let vad = Vad::new(&env, &models.silero_vad(), VadRate::Hz8000)?;
    let whisper = Transcriber::new(&models.whisper_ggml(), TranscriberOptions::default())?;
    Ok(Models {
        vad,
        whisper,
        voices,
    })
}

fn sources(models: &Models) -> Result<Vec<Source>> {
    let speech = PathBuf::from(SPEECH);
    let prompts = speech.join("asterisk-prompts-8k/wav");
    let mut out = Vec::new();
    for (split, parts) in REAL_MACHINES {
        let mut audio = Vec::new();
        for part in *parts {
            let mut a = read_8k(&prompts.join(part))?;
            a.truncate(content_end(&a));
            audio.extend(a);
            audio.extend(vec![0.0; RATE / 10]);
        }
        out.push(Source {
            key: parts.join("+"),
            truth: Truth::Machine,
            split: *split,
            real: true,
            audio,
            again: None,
            variants: 4,
        });
    }
    for (split, path) in REAL_HUMANS {
        let audio = read_8k(&speech.join(path))?;
        out.push(Source {
            key: (*path).to_string(),
            truth: Truth::Human,
            split: *split,
            real: true,
            again: Some(audio.clone()),
            audio,
            variants: 4,
        });
    }
    let synth = |voice: &Voice, text: &str| -> Result<Vec<f32>> {
        let mut audio = Vec::new();
        for (i, part) in text.split('|').enumerate() {
            if i > 0 {
                audio.extend(vec![0.0; RATE * 6 / 5]);
            }
            let a = voice.synthesize_at(part.trim(), OutputRate::TELEPHONY)?;
            audio.extend(a.samples);
        }
        Ok(peak_normalise(audio))
    };
    for (i, (split, text)) in SYNTH_MACHINES.iter().enumerate() {
        out.push(Source {
            key: (*text).to_string(),
            truth: Truth::Machine,
            split: *split,
            real: false,
            audio: synth(&models.voices[i % 2], text)?,
            again: None,
            variants: 3,
        });
    }
    for (i, (split, text)) in SYNTH_HUMANS.iter().enumerate() {
        let voice = &models.voices[i % 2];
        out.push(Source {
            key: (*text).to_string(),
            truth: Truth::Human,
            split: *split,
            real: false,
            audio: synth(voice, text)?,
            again: Some(synth(voice, "Hello?")?),
            variants: 3,
        });
    }
    Ok(out)
}

/// Runs one opening through VAD + detector as a call would: frame by frame, each transcript
/// handed back once the audio has moved on by the time Whisper took (or `asr_latency_ms`).
fn run_item(
    item: &Item,
    models: &mut Models,
    config: &AmdConfig,
    asr_latency_ms: Option<u64>,
) -> Result<Outcome> {
    let mut detector = AmdDetector::new(config.clone());
    let mut outcome = Outcome::default();
    models.vad.reset();
    let mut prob = 0.0;
    let mut pending: Option<(u64, String)> = None;
    for frame in item.pcm.chunks_exact(FRAME_SAMPLES) {
        if let Some(&p) = models.vad.push(&asr::i16_to_f32(frame))?.last() {
            prob = p;
        }
        let mut actions: VecDeque<AmdAction> = detector.push_frame(frame, prob).into();
        if pending
            .as_ref()
            .is_some_and(|(due, _)| *due <= detector.now_ms())
            && let Some((_, text)) = pending.take()
        {
            actions.extend(detector.transcript(&text));
        }
        while let Some(action) = actions.pop_front() {
            match action {
                AmdAction::Transcribe { pcm } => {
                    let t = Instant::now();
                    let audio = asr::resample(&asr::i16_to_f32(&pcm), RATE as u32, 16_000)?;
                    let text = models
                        .whisper
                        .transcribe(&audio, &TranscribeOptions::default())?
                        .text;
                    let took = t.elapsed();
                    outcome.whisper_time += took;
                    outcome.transcriptions += 1;
                    let latency = asr_latency_ms.unwrap_or(took.as_millis() as u64);
                    pending = Some((detector.now_ms() + latency, text));
                }
                AmdAction::Verdict(v) => outcome.verdict = Some(v),
                AmdAction::ReadyForMessage { at_ms, after_beep } => {
                    outcome.ready = Some((at_ms, after_beep));
                }
            }
        }
        if detector.is_done() {
            break;
        }
    }
    Ok(outcome)
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / d as f64)
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn report(split: Split, results: &[(&Item, Outcome)]) {
    let n = results.len();
    let machines = results
        .iter()
        .filter(|(i, _)| i.truth == Truth::Machine)
        .count();
    let beeped = results
        .iter()
        .filter(|(i, _)| i.beep_end_ms.is_some())
        .count();
    let real = results.iter().filter(|(i, _)| i.real).count();
    let mut keys: Vec<&str> = results.iter().map(|(i, _)| i.key.as_str()).collect();
    keys.dedup();
    println!(
        "\n== {}: {n} openings from {} greetings ({real} from real recordings): {machines} machines ({beeped} with a beep), {} humans",
        split.name(),
        keys.len(),
        n - machines
    );
    let label = |o: &Outcome| o.verdict.as_ref().map_or("none", AmdVerdict::label);
    let correct = results
        .iter()
        .filter(|(i, o)| {
            matches!(
                (i.truth, &o.verdict),
                (Truth::Human, Some(AmdVerdict::Human { .. }))
                    | (Truth::Machine, Some(AmdVerdict::Machine { .. }))
            )
        })
        .count();
    println!("accuracy {} ({correct}/{n})", pct(correct, n));
    println!("confusion (rows: truth, columns: verdict)  human  machine  unknown");
    for (truth, name) in [(Truth::Human, "human"), (Truth::Machine, "machine")] {
        let row: Vec<usize> = ["human", "machine", "unknown"]
            .iter()
            .map(|l| {
                results
                    .iter()
                    .filter(|(i, o)| i.truth == truth && label(o) == *l)
                    .count()
            })
            .collect();
        println!(
            "  {name:<8}                                {:>5}  {:>7}  {:>7}",
            row[0], row[1], row[2]
        );
    }
    for (truth, name) in [(Truth::Human, "humans"), (Truth::Machine, "machines")] {
        let times: Vec<f64> = results
            .iter()
            .filter(|(i, _)| i.truth == truth)
            .filter_map(|(_, o)| o.verdict.as_ref().map(|v| v.at_ms() as f64))
            .collect();
        println!(
            "mean decision time, {name}: {:.0} ms after answer",
            mean(&times)
        );
    }
    let after: Vec<f64> = results
        .iter()
        .filter(|(i, _)| i.truth == Truth::Human)
        .filter_map(|(i, o)| match &o.verdict {
            Some(AmdVerdict::Human { at_ms, .. }) => Some(*at_ms as f64 - i.first_end_ms as f64),
            _ => None,
        })
        .collect();
    println!(
        "mean time from the end of a person's first words to the human verdict: {:.0} ms",
        mean(&after)
    );
    let all: Vec<f64> = results
        .iter()
        .filter_map(|(_, o)| o.verdict.as_ref().map(|v| v.at_ms() as f64))
        .collect();
    println!("mean decision time, all: {:.0} ms", mean(&all));
    let by = |prefix: &str| {
        results
            .iter()
            .filter(|(_, o)| {
                matches!(&o.verdict, Some(AmdVerdict::Machine { reason, .. }) if reason.starts_with(prefix))
            })
            .count()
    };
    println!(
        "machine verdicts by cue: beep {}, words {}, greeting length {}",
        by("beep"),
        by("greeting says"),
        by("greeting of")
    );
    // Beeps: detected when the message is started after the beep.
    let mut detected = 0;
    let mut errors = Vec::new();
    for (item, o) in results {
        if let (Some(end), Some((at, true))) = (item.beep_end_ms, o.ready) {
            detected += 1;
            errors.push(at as f64 - end as f64);
        }
    }
    let abs: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    println!(
        "beep detection: {detected}/{beeped} ({}); timing error of the message start: mean {:+.0} ms, mean |error| {:.0} ms, max |error| {:.0} ms",
        pct(detected, beeped),
        mean(&errors),
        mean(&abs),
        abs.iter().fold(0.0_f64, |m, &e| m.max(e))
    );
    let false_beeps = results
        .iter()
        .filter(|(i, o)| i.beep_end_ms.is_none() && matches!(o.ready, Some((_, true))))
        .count();
    let beepless: Vec<&(&Item, Outcome)> = results
        .iter()
        .filter(|(i, o)| {
            i.truth == Truth::Machine
                && i.beep_end_ms.is_none()
                && matches!(o.verdict, Some(AmdVerdict::Machine { .. }))
        })
        .collect();
    let delays: Vec<f64> = beepless
        .iter()
        .filter_map(|(i, o)| o.ready.map(|(at, _)| at as f64 - i.greeting_end_ms as f64))
        .collect();
    let early = delays.iter().filter(|&&d| d < 0.0).count();
    println!(
        "beepless machines: false beeps {false_beeps}; message started {:.0} ms after the greeting's end on average, before its end in {early}/{}",
        mean(&delays),
        delays.len()
    );
    let early_beeped = results
        .iter()
        .filter(|(i, o)| {
            matches!((i.beep_end_ms, o.ready), (Some(end), Some((at, _))) if at + 100 < end)
        })
        .count();
    println!("beeped machines: message started before the beep's end in {early_beeped}/{beeped}");
    let calls: usize = results.iter().map(|(_, o)| o.transcriptions).sum();
    let time: Duration = results.iter().map(|(_, o)| o.whisper_time).sum();
    println!(
        "whisper: {calls} transcriptions ({:.2} per opening), {:.0} ms each on average",
        calls as f64 / n.max(1) as f64,
        time.as_secs_f64() * 1000.0 / calls.max(1) as f64
    );
    if split == Split::Dev {
        for (item, o) in results {
            let wrong = !matches!(
                (item.truth, &o.verdict),
                (Truth::Human, Some(AmdVerdict::Human { .. }))
                    | (Truth::Machine, Some(AmdVerdict::Machine { .. }))
            );
            let beep_missed = item.beep_end_ms.is_some()
                && matches!(o.verdict, Some(AmdVerdict::Machine { .. }))
                && !matches!(o.ready, Some((_, true)));
            if wrong || beep_missed {
                println!(
                    "  dev {}: {:?} -> {:?}, ready {:?}, beep {} ending {:?}, greeting end {} ms",
                    item.id,
                    item.truth,
                    o.verdict,
                    o.ready,
                    item.beep_desc,
                    item.beep_end_ms,
                    item.greeting_end_ms
                );
            }
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let only = match args.iter().position(|a| a == "--split") {
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some("dev") => Some(Split::Dev),
            Some("test") => Some(Split::Test),
            other => bail!("--split takes dev or test, not {other:?}"),
        },
        None => None,
    };
    let asr_latency_ms = match args.iter().position(|a| a == "--asr-latency-ms") {
        Some(i) => Some(
            args.get(i + 1)
                .and_then(|v| v.parse::<u64>().ok())
                .context("--asr-latency-ms takes a number of milliseconds")?,
        ),
        None => None,
    };
    match asr_latency_ms {
        Some(ms) => println!("transcripts come back {ms} ms of audio after they are asked for"),
        None => println!(
            "transcripts come back after the time Whisper took on this machine (as in a live call)"
        ),
    }
    let t = Instant::now();
    let mut models = load_models()?;
    println!("models loaded in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let real_beep = {
        let b =
            read_8k(&PathBuf::from(SPEECH).join("asterisk-prompts-8k/wav/confbridge-leave.wav"))?;
        b[..content_end(&b)].to_vec()
    };
    let sources = sources(&models)?;
    let mut items = Vec::new();
    for source in &sources {
        for v in 0..source.variants {
            // One generator per opening, so that its draws do not depend on the length of
            // the synthesised audio before it (Piper samples noise, lengths vary run to run).
            let key = source.key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            let mut rng = StdRng::seed_from_u64(SEED ^ key ^ v as u64);
            items.push(make_item(source, v, &real_beep, &mut rng));
        }
    }
    println!(
        "set built in {:.1} s: {} openings, {:.0} s of audio",
        t.elapsed().as_secs_f64(),
        items.len(),
        items.iter().map(|i| i.pcm.len()).sum::<usize>() as f64 / RATE as f64
    );
    let config = AmdConfig::default();
    println!("{config:?}");
    for split in [Split::Dev, Split::Test] {
        if only.is_some_and(|o| o != split) {
            continue;
        }
        let t = Instant::now();
        let mut results = Vec::new();
        for item in items.iter().filter(|i| i.split == split) {
            results.push((item, run_item(item, &mut models, &config, asr_latency_ms)?));
        }
        report(split, &results);
        println!("({:.1} s)", t.elapsed().as_secs_f64());
    }
    Ok(())
}
