//! The speech stack as a whole, on the real models: bank sentences spoken by the Piper voice,
//! carried over the telephone path (8 kHz G.711 µ-law), transcribed by whisper and understood by
//! the NLU must come back as they were said.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use callbot_models::ModelsDir;

/// Sentences a bank's robot and its customers say, with the numbers, dates and names that make
/// speech hard. The voice speaks them after text normalisation; the scorer normalises numbers too.
const BANK_SENTENCES: &[&str] = &[
    "Hello, this is your bank calling about your credit card account.",
    "This call is recorded for quality and training purposes.",
    "Your minimum payment was due on the fifteenth of March.",
    "Can you make a payment today?",
    "I can pay two hundred dollars on Friday.",
    "I already paid that bill last week.",
    "That charge is not mine, I never bought anything there.",
    "Please hold while I transfer you to an agent.",
    "I would like to speak to a person please.",
    "Please stop calling me.",
    "Could you call me back tomorrow afternoon?",
    "Your account balance is one thousand two hundred dollars.",
    "We noticed an unusual transaction on your debit card.",
    "Did you make a purchase in Chicago yesterday?",
    "Yes, that was me.",
    "No, I did not make that purchase.",
    "Your card has been blocked to protect your account.",
    "A new card will arrive within five business days.",
    "Thank you for your time, goodbye.",
    "How would you rate our service today?",
    "My salary comes in at the end of the month.",
    "I lost my job and I cannot pay right now.",
];

struct Stack {
    voice: tts::Voice,
    whisper: asr::Transcriber,
}

fn stack() -> Stack {
    let models = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models).expect("ONNX Runtime");
    let load = |options| {
        tts::Voice::load_with(
            &env,
            &models.piper_voice(),
            &models.piper_voice_config(),
            &models.espeak_ng_data(),
            options,
        )
        .expect("Piper voice (run `callbot models fetch`)")
    };
    // The voice's own pitch and timing, without the random variation VITS draws on each
    // rendering (noise_scale, noise_w): with it, the same sentence comes out differently every
    // run and whisper tiny.en now and then repeats or mishears one (a single run's WER ranged
    // 0–8.4% over these sentences), so a run would test the dice rather than the stack.
    let defaults = load(tts::VoiceOptions::default()).params();
    let voice = load(tts::VoiceOptions {
        params: Some(tts::SynthesisParams {
            noise_scale: 0.0,
            noise_w: 0.0,
            ..defaults
        }),
        ..tts::VoiceOptions::default()
    });
    let whisper = asr::Transcriber::new(&models.whisper_ggml(), Default::default())
        .expect("whisper model (run `callbot models fetch`)");
    Stack { voice, whisper }
}

/// Speaks `text` at 8 kHz, squeezes it through G.711 µ-law as a phone line would, and brings it
/// back to the 16 kHz that whisper wants.
fn over_the_phone(voice: &tts::Voice, text: &str) -> Vec<f32> {
    let audio = voice
        .synthesize_at(text, tts::OutputRate::TELEPHONY)
        .expect("synthesis");
    assert_eq!(audio.sample_rate, 8000);
    let line: Vec<u8> = audio.to_i16().into_iter().map(asr::encode_ulaw).collect();
    let decoded = asr::ulaw_to_f32(&line);
    asr::resample(&decoded, 8000, 16000).expect("resample")
}

#[test]
fn bank_sentences_survive_tts_telephone_line_and_asr() {
    let s = stack();
    let mut errors = 0usize;
    let mut words = 0usize;
    let mut report = String::new();
    for sentence in BANK_SENTENCES {
        let audio = over_the_phone(&s.voice, sentence);
        let heard = s
            .whisper
            .transcribe(&audio, &asr::TranscribeOptions::default())
            .expect("transcription")
            .text;
        let e = asr::wer::word_errors(sentence, &heard);
        errors += e.errors();
        words += e.reference_words;
        report.push_str(&format!("{:>2} err | {sentence} | {heard}\n", e.errors()));
    }
    let wer = errors as f64 / words as f64;
    eprintln!(
        "{report}round-trip WER {:.2}% over {words} words",
        wer * 100.0
    );
    assert!(BANK_SENTENCES.len() >= 20);
    assert!(
        wer <= 0.05,
        "round-trip WER {:.2}% > 5%:\n{report}",
        wer * 100.0
    );
}

#[test]
fn spoken_customer_replies_are_understood() {
    let s = stack();
    let models = ModelsDir::resolve(None);
    let env = callbot_models::onnxruntime_environment(&models).unwrap();
    let embedder = std::sync::Arc::new(
        nlu::Embedder::new(
            &env,
            &models.minilm_onnx(),
            &models.minilm_tokenizer(),
            Default::default(),
        )
        .expect("MiniLM"),
    );
    // A flow's intents, a handful of examples each, as a flow author would write them.
    let examples: &[(&str, &str)] = &[
        ("yes I'll pay today", "will_pay"),
        ("I can pay now", "will_pay"),
        ("sure, I'll make the payment right away", "will_pay"),
        ("I'll pay it this afternoon", "will_pay"),
        ("ok I will pay the full amount today", "will_pay"),
        ("can I pay next Friday", "pay_later"),
        ("I get paid next week", "pay_later"),
        ("I need a few more days", "pay_later"),
        ("can I pay at the end of the month", "pay_later"),
        ("I can't pay until my salary comes in", "pay_later"),
        ("I already paid that", "dispute"),
        ("that charge is not mine", "dispute"),
        ("I never made that purchase", "dispute"),
        ("the amount is wrong", "dispute"),
        ("I paid it last week already", "dispute"),
        ("I want to talk to a person", "agent"),
        ("let me speak to a human", "agent"),
        ("can I talk to an agent", "agent"),
        ("put me through to someone real", "agent"),
        ("representative please", "agent"),
    ];
    let classifier =
        nlu::IntentClassifier::train(embedder, examples, nlu::TrainOptions::few_shot())
            .expect("training from examples");
    let cases = [
        ("I can pay two hundred dollars today.", "will_pay"),
        ("I will pay you next Friday when I get paid.", "pay_later"),
        ("I already paid that bill last week.", "dispute"),
        ("I would like to speak to a person please.", "agent"),
    ];
    for (said, expected) in cases {
        let heard = s
            .whisper
            .transcribe(
                &over_the_phone(&s.voice, said),
                &asr::TranscribeOptions::default(),
            )
            .unwrap()
            .text;
        let result = classifier.classify(&heard).expect("classify");
        assert_eq!(
            result.intent.as_deref(),
            Some(expected),
            "said {said:?}, heard {heard:?}, got {result:?}"
        );
    }
}
