//! Audio input: telephony encodings transcribe like the original, bad files give clear errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use asr::wer::word_errors;
use asr::{G711Law, TranscribeOptions, read_wav, read_wav_16k, resample, write_g711_wav};
use common::{speech_dir, transcriber};

const PROMPT: &str = "asterisk-prompts-8k/wav/conf-getchannel.wav";
const PROMPT_TEXT: &str = "Please enter the channel number followed by the pound key.";

fn transcribe(path: &Path) -> String {
    let audio = read_wav_16k(path).unwrap();
    transcriber()
        .transcribe(&audio, &TranscribeOptions::default())
        .unwrap()
        .text
}

#[test]
fn ulaw_and_alaw_8k_transcribe_like_linear() {
    let dir = tempfile::tempdir().unwrap();
    let linear = speech_dir().join(PROMPT);
    let original = read_wav(&linear).unwrap();
    assert_eq!(original.sample_rate, 8000);
    let text = transcribe(&linear);
    assert_eq!(
        word_errors(PROMPT_TEXT, &text).errors(),
        0,
        "linear 8 kHz: {text}"
    );
    for law in [G711Law::Ulaw, G711Law::Alaw] {
        let path = dir.path().join(format!("{law:?}.wav"));
        write_g711_wav(&path, &original.samples, 8000, law).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let tag = u16::from_le_bytes([bytes[20], bytes[21]]);
        assert_eq!(tag, if law == G711Law::Ulaw { 7 } else { 6 });
        let text = transcribe(&path);
        assert_eq!(
            word_errors(PROMPT_TEXT, &text).errors(),
            0,
            "{law:?}: {text}"
        );
    }
}

#[test]
fn wideband_speech_through_8k_ulaw_still_transcribes() {
    // A 16 kHz recording squeezed through a phone line: downsample to 8 kHz, µ-law encode.
    let dir = tempfile::tempdir().unwrap();
    let src = speech_dir().join("pocketsphinx-testdata/goforward.wav");
    let wide = read_wav(&src).unwrap();
    assert_eq!(wide.sample_rate, 16000);
    let narrow = resample(&wide.samples, 16000, 8000).unwrap();
    let path = dir.path().join("goforward-ulaw.wav");
    write_g711_wav(&path, &narrow, 8000, G711Law::Ulaw).unwrap();
    let text = transcribe(&path);
    assert_eq!(
        word_errors("go forward ten meters", &text).errors(),
        0,
        "{text}"
    );
}

#[test]
fn other_pcm_layouts_read_the_same_audio() {
    let dir = tempfile::tempdir().unwrap();
    let original = read_wav(&speech_dir().join(PROMPT)).unwrap();
    let write = |name: &str, spec: hound::WavSpec| {
        let path = dir.path().join(name);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for &s in &original.samples {
            for _ in 0..spec.channels {
                match (spec.sample_format, spec.bits_per_sample) {
                    (hound::SampleFormat::Float, _) => w.write_sample(s).unwrap(),
                    (_, 8) => w
                        .write_sample((s * 128.0).round().clamp(-128.0, 127.0) as i8)
                        .unwrap(),
                    (_, bits) => w
                        .write_sample((f64::from(s) * f64::from(1u32 << (bits - 1))) as i32)
                        .unwrap(),
                }
            }
        }
        w.finalize().unwrap();
        read_wav(&path).unwrap()
    };
    let spec = |channels, bits, sample_format| hound::WavSpec {
        channels,
        sample_rate: 8000,
        bits_per_sample: bits,
        sample_format,
    };
    use hound::SampleFormat::{Float, Int};
    for (name, s, tolerance) in [
        ("stereo16.wav", spec(2, 16, Int), 1e-6),
        ("pcm24.wav", spec(1, 24, Int), 1e-6),
        ("pcm32.wav", spec(1, 32, Int), 1e-6),
        ("float.wav", spec(1, 32, Float), 1e-6),
        ("pcm8.wav", spec(1, 8, Int), 1.0 / 128.0),
    ] {
        let audio = write(name, s);
        assert_eq!(audio.sample_rate, 8000, "{name}");
        assert_eq!(audio.samples.len(), original.samples.len(), "{name}");
        let worst = audio
            .samples
            .iter()
            .zip(&original.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= tolerance, "{name}: differs by {worst}");
    }
}

#[test]
fn bad_files_name_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(speech_dir().join(PROMPT)).unwrap();
    let mut four_channels = good.clone();
    four_channels[22] = 4;
    let mut adpcm = good.clone();
    adpcm[20] = 0x11;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wav", Vec::new(), "file is empty"),
        (
            "notes.wav",
            b"this is a text file\n".to_vec(),
            "not a WAV file",
        ),
        ("header.wav", good[..24].to_vec(), "truncated"),
        (
            "cut.wav",
            good[..good.len() / 2].to_vec(),
            "truncated: data chunk declares",
        ),
        ("quad.wav", four_channels, "unsupported channel count 4"),
        (
            "adpcm.wav",
            adpcm,
            "unsupported encoding IMA ADPCM (format tag 0x0011)",
        ),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let message = read_wav(&path).unwrap_err().to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        assert!(message.contains(reason), "{name}: {message}");
    }
    let missing = dir.path().join("missing.wav");
    let message = read_wav(&missing).unwrap_err().to_string();
    assert!(
        message.contains("missing.wav: cannot read file"),
        "{message}"
    );
}
