//! `callbot demo`: the speech stack end to end, with the time each stage takes.
//!
//! Until the bot runtime exists this is a scripted exchange, not a phone call: the customer's
//! turns are spoken by the same Piper voice, carried over a simulated telephone line (8 kHz
//! G.711 µ-law), transcribed by whisper and understood by the NLU; the bank's reply is chosen from
//! the recognised intent and spoken back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callbot_models::ModelsDir;
use clap::Args;

/// Example utterances for the demo's intents, as a flow author would write them.
const INTENTS_CSV: &str = include_str!("../../examples/intents/payment_reminder.csv");

const GREETING: &str = "Hello, this is Harbor Bank calling about your credit card. \
    This call is recorded, and I am an automated assistant. \
    Your payment of $250.00 was due on March 15th. Can you pay today?";

/// What the simulated customer says, turn by turn.
const CUSTOMER_TURNS: &[&str] = &[
    "I can't pay today, but I can pay two hundred and fifty dollars next Friday.",
    "I already paid that bill last week, this is ridiculous.",
    "I would like to speak to a person please.",
];

#[derive(Args)]
pub struct DemoArgs {
    /// CPU threads for speech recognition.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Also write the whole exchange (both sides, 8 kHz) to this WAV file.
    #[arg(long)]
    wav: Option<PathBuf>,
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

struct Stack {
    voice: tts::Voice,
    whisper: asr::Transcriber,
    vad: asr::Vad,
    nlu: nlu::Nlu,
}

fn load(models: &ModelsDir, threads: usize) -> anyhow::Result<Stack> {
    let t = Instant::now();
    let env = callbot_models::onnxruntime_environment(models)?;
    let voice = tts::Voice::load(
        &env,
        &models.piper_voice(),
        &models.piper_voice_config(),
        &models.espeak_ng_data(),
    )?;
    println!("  load  voice (Piper)            {}", ms(t.elapsed()));
    let t = Instant::now();
    let whisper = asr::Transcriber::new(
        &models.whisper_ggml(),
        asr::TranscriberOptions {
            threads,
            ..Default::default()
        },
    )?;
    let vad = asr::Vad::new(&env, &models.silero_vad(), asr::VadRate::Hz16000)?;
    println!("  load  recogniser (whisper+VAD) {}", ms(t.elapsed()));
    let t = Instant::now();
    let embedder = Arc::new(nlu::Embedder::new(
        &env,
        &models.minilm_onnx(),
        &models.minilm_tokenizer(),
        Default::default(),
    )?);
    let pairs: Vec<(String, String)> = csv::Reader::from_reader(INTENTS_CSV.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .context("examples/intents/payment_reminder.csv")?;
    let classifier = nlu::IntentClassifier::train(embedder, &pairs, nlu::TrainOptions::few_shot())?;
    println!(
        "  load  NLU (MiniLM + {} examples) {}",
        pairs.len(),
        ms(t.elapsed())
    );
    Ok(Stack {
        voice,
        whisper,
        vad,
        nlu: nlu::Nlu::new(Some(classifier)),
    })
}

/// Speaks `text` at 8 kHz, streaming, and reports time to first audio and the whole render.
fn speak(
    voice: &tts::Voice,
    who: &str,
    text: &str,
    tape: &mut Vec<f32>,
) -> anyhow::Result<Vec<f32>> {
    let t = Instant::now();
    let mut first = None;
    let mut audio = Vec::new();
    for chunk in voice.synthesize_stream(text, tts::OutputRate::TELEPHONY) {
        let chunk = chunk?;
        first.get_or_insert_with(|| t.elapsed());
        audio.extend_from_slice(&chunk.samples);
    }
    let total = t.elapsed();
    let seconds = audio.len() as f64 / f64::from(tts::TELEPHONY_RATE);
    println!("{who}: {text}");
    println!(
        "        tts   first audio {}, {:.1} s of speech rendered in {} (RTF {:.2})",
        first.map_or_else(|| "-".into(), ms),
        seconds,
        ms(total),
        total.as_secs_f64() / seconds.max(1e-9)
    );
    tape.extend_from_slice(&audio);
    tape.extend(std::iter::repeat_n(0.0, 4000));
    Ok(audio)
}

/// A phone line: 8 kHz µ-law there and back, then up to whisper's 16 kHz.
fn telephone_line(audio_8k: &[f32]) -> anyhow::Result<Vec<f32>> {
    let bytes: Vec<u8> = audio_8k
        .iter()
        .map(|&s| asr::encode_ulaw((s.clamp(-1.0, 1.0) * 32767.0) as i16))
        .collect();
    Ok(asr::resample(&asr::ulaw_to_f32(&bytes), 8000, 16000)?)
}

fn reply_for(u: &nlu::Understanding) -> &'static str {
    if u.sentiment.escalate {
        return "I am sorry for the trouble. Let me transfer you to a colleague who can help.";
    }
    match u.intent.as_deref() {
        Some("will_pay") => "Thank you. I have noted your payment for today.",
        Some("pay_later") => "Thank you. I have noted your promise to pay on that date.",
        Some("dispute") => "I understand. I will pass this to our disputes team.",
        Some("agent") => "Of course. Please hold while I transfer you to an agent.",
        Some("stop_calling") => "Understood. We will not call this number again. Goodbye.",
        _ => "Sorry, I did not catch that. Could you say it again?",
    }
}

pub fn run(args: DemoArgs, models: &ModelsDir) -> anyhow::Result<()> {
    println!(
        "callbot demo — speech stack end to end (models: {})",
        models.root().display()
    );
    let mut s = load(models, args.threads)?;
    let now = chrono::Local::now().naive_local();
    let mut tape = Vec::new();
    let mut turn_latency = Vec::new();
    println!();
    speak(&s.voice, "BANK    ", GREETING, &mut tape)?;
    for said in CUSTOMER_TURNS {
        let spoken = speak(&s.voice, "CUSTOMER", said, &mut tape)?;
        let line = telephone_line(&spoken)?;
        let t = Instant::now();
        let heard = s.whisper.transcribe_utterance(
            &line,
            &mut s.vad,
            &asr::TranscribeOptions::default(),
        )?;
        let asr_time = t.elapsed();
        let window = match heard.timings.passes.as_slice() {
            [only] => format!("encoder window {}", only.audio_ctx),
            passes => format!("{} passes, fell back to the full window", passes.len()),
        };
        println!(
            "        asr   heard {:?} in {} ({:.1} s of audio, {window})",
            heard.text,
            ms(asr_time),
            line.len() as f64 / 16000.0
        );
        let t = Instant::now();
        let u = s.nlu.parse(&heard.text, &nlu::Context::at(now))?;
        let nlu_time = t.elapsed();
        println!(
            "        nlu   intent {} ({:.2}), sentiment {:?}{}, in {}",
            u.intent.as_deref().unwrap_or("out-of-scope"),
            u.confidence,
            u.sentiment.label,
            if u.sentiment.escalate {
                " → escalate"
            } else {
                ""
            },
            ms(nlu_time)
        );
        println!(
            "        nlu   entities {}",
            serde_json::to_string(&u.entities)?
        );
        let t = Instant::now();
        let reply = reply_for(&u);
        let mut first = None;
        for chunk in s.voice.synthesize_stream(reply, tts::OutputRate::TELEPHONY) {
            chunk?;
            first.get_or_insert_with(|| t.elapsed());
        }
        let to_first_audio = asr_time + nlu_time + first.unwrap_or_default();
        turn_latency.push(to_first_audio);
        speak(&s.voice, "BANK    ", reply, &mut tape)?;
        println!(
            "        turn  end of speech → first reply audio: {} (asr + nlu + tts first audio)",
            ms(to_first_audio)
        );
    }
    let worst = turn_latency.iter().max().copied().unwrap_or_default();
    println!();
    println!(
        "summary: {} customer turns, worst turn latency {} (on this machine, {} ASR threads)",
        turn_latency.len(),
        ms(worst),
        args.threads
    );
    if let Some(path) = args.wav {
        tts::Audio {
            samples: tape,
            sample_rate: tts::TELEPHONY_RATE,
        }
        .write_wav(&path)?;
        println!("conversation written to {}", path.display());
    }
    Ok(())
}
