//! Silero VAD and the endpointer on real recordings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use asr::{
    EndpointEvent, Endpointer, EndpointerConfig, VAD_FRAME_MS, Vad, VadModel, VadRate, read_wav,
};
use common::{speech_dir, vad};

fn tone(freq: f32, rate: u32, seconds: f32) -> Vec<f32> {
    (0..(rate as f32 * seconds) as usize)
        .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.3)
        .collect()
}

#[test]
fn speech_is_found_inside_real_recordings() {
    for (file, rate) in [
        ("whisper.cpp/jfk.wav", VadRate::Hz16000),
        (
            "asterisk-prompts-8k/wav/conf-getchannel.wav",
            VadRate::Hz8000,
        ),
        ("pocketsphinx-testdata/goforward.wav", VadRate::Hz16000),
    ] {
        let audio = read_wav(&speech_dir().join(file)).unwrap();
        assert_eq!(audio.sample_rate, rate.hz(), "{file}");
        let mut v = vad(rate);
        let probs = v.probabilities(&audio.samples).unwrap();
        let speech = probs.iter().filter(|&&p| p >= 0.5).count() as f32 / probs.len() as f32;
        assert!(
            (0.3..0.98).contains(&speech),
            "{file}: speech in {speech:.2} of frames"
        );
        let total_ms = (audio.duration_s() * 1000.0) as u64;
        let segments = v
            .speech_segments(&audio.samples, EndpointerConfig::default())
            .unwrap();
        assert!(!segments.is_empty(), "{file}: no speech found");
        for &(s, e) in &segments {
            assert!(
                s < e && e <= total_ms,
                "{file}: segment {s}..{e} of {total_ms} ms"
            );
        }
        let covered: u64 = segments.iter().map(|(s, e)| e - s).sum();
        assert!(
            covered * 2 > total_ms,
            "{file}: only {covered} of {total_ms} ms is speech"
        );
    }
}

#[test]
fn silence_and_tones_are_not_speech() {
    let silence = read_wav(&speech_dir().join("asterisk-prompts-8k/wav/silence/3.wav")).unwrap();
    let mut v8 = vad(VadRate::Hz8000);
    let segments = v8
        .speech_segments(&silence.samples, EndpointerConfig::default())
        .unwrap();
    assert!(segments.is_empty(), "recorded silence: {segments:?}");
    for freq in [440.0, 1000.0, 2100.0] {
        let probs = v8.probabilities(&tone(freq, 8000, 3.0)).unwrap();
        let max = probs.iter().copied().fold(0.0f32, f32::max);
        assert!(max < 0.5, "{freq} Hz tone scored {max}");
    }
    let mut v16 = vad(VadRate::Hz16000);
    let zeros = vec![0.0f32; 32000];
    assert!(v16.probabilities(&zeros).unwrap().iter().all(|&p| p < 0.1));
}

#[test]
fn streaming_20ms_frames_matches_whole_windows() {
    let audio =
        read_wav(&speech_dir().join("asterisk-prompts-8k/wav/conf-getchannel.wav")).unwrap();
    let mut whole = vad(VadRate::Hz8000);
    let expected = whole.probabilities(&audio.samples).unwrap();
    let mut streaming = vad(VadRate::Hz8000);
    let mut got = Vec::new();
    for frame in audio.samples.chunks(160) {
        got.extend(streaming.push(frame).unwrap());
    }
    // Only the zero-padded final partial window differs.
    assert_eq!(got.len(), audio.samples.len() / 256);
    for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
        assert!((a - b).abs() < 1e-5, "window {i}: {a} vs {b}");
    }
    assert!(
        streaming.process(&[0.0; 100]).is_err(),
        "a short window is rejected"
    );
}

#[test]
fn streams_sharing_one_graph_keep_their_own_state_from_threads() {
    let models = common::models();
    let env = callbot_models::onnxruntime_environment(&models).expect("ONNX Runtime");
    let model = VadModel::load(&env, &models.silero_vad()).expect("Silero VAD");
    let files = [
        "asterisk-prompts-8k/wav/conf-getchannel.wav",
        "asterisk-prompts-8k/wav/agent-alreadyon.wav",
        "asterisk-prompts-8k/wav/silence/3.wav",
    ];
    // Each recording alone, on a VAD of its own.
    let alone: Vec<Vec<f32>> = files
        .iter()
        .map(|f| {
            let audio = read_wav(&speech_dir().join(f)).unwrap();
            let mut v = vad(VadRate::Hz8000);
            audio
                .samples
                .chunks(160)
                .flat_map(|frame| v.push(frame).unwrap())
                .collect()
        })
        .collect();
    // The same recordings as interleaved streams on one shared graph, six at once on threads.
    let shared: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .chain(files.iter())
            .map(|f| {
                let model = model.clone();
                s.spawn(move || {
                    let audio = read_wav(&speech_dir().join(f)).unwrap();
                    let mut v = Vad::with_model(model, VadRate::Hz8000);
                    let mut out = Vec::new();
                    for frame in audio.samples.chunks(160) {
                        out.extend(v.push(frame).unwrap());
                        std::thread::yield_now();
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, got) in shared.iter().enumerate() {
        let want = &alone[i % files.len()];
        assert_eq!(got.len(), want.len(), "{}", files[i % files.len()]);
        for (k, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() < 1e-5,
                "{} window {k}: {a} vs {b}",
                files[i % 3]
            );
        }
    }
    // No more sessions than streams ran at once, and all of them idle again.
    assert!(
        (1..=6).contains(&model.idle_sessions()),
        "{}",
        model.idle_sessions()
    );
}

#[test]
fn endpointer_on_a_live_stream_reports_one_turn() {
    // Speech, then 2 s of silence, as a caller would produce it frame by frame.
    let mut audio = read_wav(&speech_dir().join("asterisk-prompts-8k/wav/conf-getchannel.wav"))
        .unwrap()
        .samples;
    let speech_ms = audio.len() as u64 / 8;
    audio.extend(std::iter::repeat_n(0.0, 16000));
    let mut v = vad(VadRate::Hz8000);
    let mut ep = Endpointer::new(EndpointerConfig::default(), VAD_FRAME_MS);
    let mut events = Vec::new();
    for frame in audio.chunks(160) {
        for p in v.push(frame).unwrap() {
            events.extend(ep.push(p));
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");
    let EndpointEvent::SpeechStart { start_ms } = events[0] else {
        panic!("{events:?}")
    };
    let EndpointEvent::SpeechEnd {
        start_ms: s,
        end_ms,
    } = events[1]
    else {
        panic!("{events:?}")
    };
    assert_eq!(s, start_ms);
    assert!(
        start_ms < 600,
        "speech starts early in the prompt: {start_ms} ms"
    );
    assert!(
        end_ms > speech_ms - 600 && end_ms <= speech_ms + 300,
        "end {end_ms} ms of {speech_ms}"
    );
}

#[test]
fn turn_detector_cuts_utterances_out_of_a_call() {
    // Two prompts in one 8 kHz stream with silence around them, fed as 20 ms RTP-sized frames.
    let first =
        read_wav(&speech_dir().join("asterisk-prompts-8k/wav/conf-getchannel.wav")).unwrap();
    let second = read_wav(&speech_dir().join("asterisk-prompts-8k/wav/vm-helpexit.wav")).unwrap();
    let silence = |s: f32| vec![0.0f32; (8000.0 * s) as usize];
    let stream = [
        silence(1.0),
        first.samples.clone(),
        silence(2.0),
        second.samples.clone(),
        silence(0.3),
    ]
    .concat();
    let mut turns = asr::TurnDetector::new(vad(VadRate::Hz8000), EndpointerConfig::default());
    let mut events = Vec::new();
    for frame in stream.chunks(160) {
        events.extend(turns.push(frame).unwrap());
    }
    events.extend(turns.finish().unwrap());
    let utterances: Vec<&Vec<f32>> = events
        .iter()
        .filter_map(|e| match e {
            asr::TurnEvent::Utterance { audio, .. } => Some(audio),
            asr::TurnEvent::SpeechStarted { .. } => None,
        })
        .collect();
    let starts = events
        .iter()
        .filter(|e| matches!(e, asr::TurnEvent::SpeechStarted { .. }))
        .count();
    assert_eq!(
        (starts, utterances.len()),
        (2, 2),
        "{:?}",
        events
            .iter()
            .map(|e| match e {
                asr::TurnEvent::Utterance {
                    start_ms, end_ms, ..
                } => format!("utt {start_ms}..{end_ms}"),
                asr::TurnEvent::SpeechStarted { start_ms } => format!("start {start_ms}"),
            })
            .collect::<Vec<_>>()
    );
    let opts = asr::TranscribeOptions::default();
    for (audio, text) in utterances.iter().zip([
        "Please enter the channel number followed by the pound key.",
        "Press star for help or pound to exit.",
    ]) {
        let got = common::transcriber().transcribe(audio, &opts).unwrap().text;
        assert_eq!(asr::wer::word_errors(text, &got).errors(), 0, "{got}");
    }
}
