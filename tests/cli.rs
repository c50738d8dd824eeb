//! The `callbot` binary as a user runs it, on the real models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn callbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callbot"))
        .args(args)
        .output()
        .expect("run callbot")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}

#[test]
fn models_fetch_is_idempotent() {
    // .ci/setup fetched everything; a second run must not touch the registry.
    let out = callbot(&["models", "fetch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("nothing to do"), "{all}");
}

#[test]
fn asr_transcribe_prints_path_tab_text_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.wav");
    std::fs::write(&bogus, "this is not audio").unwrap();
    let jfk = shared("speech/whisper.cpp/jfk.wav");
    let out = callbot(&[
        "asr",
        "transcribe",
        jfk.to_str().unwrap(),
        bogus.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a bad file must fail the run");
    let line = stdout.lines().next().expect("one line for jfk.wav");
    let (path, transcript) = line.split_once('\t').expect("path<TAB>transcript");
    assert_eq!(path, jfk.to_str().unwrap());
    assert!(
        transcript
            .to_lowercase()
            .contains("ask not what your country"),
        "{transcript}"
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "nothing printed for the bad file"
    );
    assert!(
        stderr.contains("notes.wav") && stderr.contains("not a WAV"),
        "{stderr}"
    );
}

#[test]
fn tts_say_writes_an_8khz_wav() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("reminder.wav");
    let out = callbot(&[
        "tts",
        "say",
        "Your payment of $120.50 is due on the 15th.",
        "-o",
        wav.to_str().unwrap(),
        "--rate",
        "8000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reader = hound::WavReader::open(&wav).unwrap();
    assert_eq!(reader.spec().sample_rate, 8000);
    let seconds = reader.duration() as f64 / 8000.0;
    assert!((2.0..10.0).contains(&seconds), "{seconds} s");
}

#[test]
fn nlu_eval_prints_accuracy_and_names_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    std::fs::write(
        &train,
        "text,category\n\
         I want to pay my bill,pay\nhow do I make a payment,pay\npay the card balance,pay\n\
         \"I'd like to settle\nwhat I owe\",pay\nI can pay today,pay\n\
         my card was stolen,lost_card\nI lost my card,lost_card\nI can't find my card,lost_card\n\
         someone took my wallet with the card,lost_card\nmy card is missing,lost_card\n",
    )
    .unwrap();
    std::fs::write(
        &test,
        "text,category\nI would like to pay what I owe,pay\nmy credit card got stolen,lost_card\n",
    )
    .unwrap();
    let eval = || {
        callbot(&[
            "nlu",
            "eval",
            "--train",
            train.to_str().unwrap(),
            "--test",
            test.to_str().unwrap(),
        ])
    };
    let out = eval();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("accuracy 100.00%"), "{stdout}");
    assert!(stdout.contains("macro_f1"), "{stdout}");

    std::fs::write(&test, "text,category\nfine row,pay\nbroken row\n").unwrap();
    let out = eval();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("test.csv") && stderr.contains("row 2"),
        "{stderr}"
    );
}
