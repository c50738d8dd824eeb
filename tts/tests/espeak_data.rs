//! Installing the embedded espeak-ng data: idempotent, repairs damage, atomic.
#![allow(clippy::unwrap_used)]

use tts::{TtsError, embedded_espeak_ng_files, install_espeak_ng_data};

#[test]
fn install_is_idempotent_and_repairs() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("models").join("espeak-ng-data");
    assert!(install_espeak_ng_data(&dest).unwrap());
    for rel in embedded_espeak_ng_files() {
        assert!(dest.join(rel).is_file(), "{rel} missing");
    }
    assert!(
        !install_espeak_ng_data(&dest).unwrap(),
        "second install must be a no-op"
    );

    std::fs::write(dest.join("en_dict"), b"truncated").unwrap();
    assert!(
        install_espeak_ng_data(&dest).unwrap(),
        "damaged data must be reinstalled"
    );
    assert!(!install_espeak_ng_data(&dest).unwrap());

    // Nothing staged or left over beside the folder.
    let names: Vec<String> = std::fs::read_dir(dest.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["espeak-ng-data"]);
}

#[test]
fn embedded_data_is_english_espeak_ng() {
    let files: Vec<&str> = embedded_espeak_ng_files().collect();
    for needed in [
        "phontab",
        "phonindex",
        "phondata",
        "intonations",
        "en_dict",
        "lang/gmw/en-US",
    ] {
        assert!(files.contains(&needed), "{needed} not embedded");
    }
}

#[test]
fn folder_must_be_named_espeak_ng_data() {
    let root = tempfile::tempdir().unwrap();
    let err = install_espeak_ng_data(&root.path().join("data")).unwrap_err();
    assert!(matches!(err, TtsError::EspeakDataName(_)), "{err}");
}
