//! Text → Piper phoneme ids, the way the reference piper-tts does it.
//!
//! espeak-rs's `text_to_phonemes` drops clause punctuation, and Piper voices were trained with it
//! (a comma is a symbol the model turns into a pause). So we split the text into clauses ourselves
//! on `.,!?;:`, phonemise each clause, and re-append its punctuation (`, ` / `: ` / `; ` after a
//! sub-clause, a bare `.`/`?`/`!` at the end of a sentence), as piper-phonemize does.
//!
//! espeak-ng is process-global and not thread-safe: every call goes through [`ESPEAK`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::TtsError;

/// Serialises all espeak-ng calls (it keeps its state in C globals).
static ESPEAK: Mutex<()> = Mutex::new(());
/// The data directory espeak-ng was pointed at; it cannot change once initialised.
static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// What espeak-rs reads to find the folder that *contains* `espeak-ng-data`.
const DATA_ENV: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";

/// One clause of a sentence and the punctuation that closed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Clause {
    pub text: String,
    pub punct: Option<char>,
}

/// Splits normalised text into sentences of clauses. Punctuation only splits when followed by
/// whitespace or the end (so "bank.com" stays whole); text after the last mark is a clause too.
pub(crate) fn split_sentences(text: &str) -> Vec<Vec<Clause>> {
    let mut sentences = Vec::new();
    let mut sentence = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let is_mark = |c: char| matches!(c, '.' | ',' | '!' | '?' | ';' | ':');
    while let Some(c) = chars.next() {
        if !is_mark(c) {
            current.push(c);
            continue;
        }
        // A run of marks ("!!", "?!", "...") counts as its first mark.
        let mut run = String::from(c);
        while let Some(&n) = chars.peek().filter(|n| is_mark(**n)) {
            run.push(n);
            chars.next();
        }
        let at_break = chars.peek().is_none_or(|n| n.is_whitespace());
        if at_break {
            let text = current.trim().to_string();
            current.clear();
            if text.is_empty() {
                // "Hello!!" or " , ": attach the mark to the previous clause if there is one.
                continue;
            }
            sentence.push(Clause {
                text,
                punct: Some(c),
            });
            if matches!(c, '.' | '!' | '?') {
                sentences.push(std::mem::take(&mut sentence));
            }
        } else {
            current.push_str(&run);
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        sentence.push(Clause {
            text: rest.to_string(),
            punct: None,
        });
    }
    if !sentence.is_empty() {
        sentences.push(sentence);
    }
    sentences
}

/// Points espeak-ng at `data_dir` (a folder named `espeak-ng-data`) before its first use.
pub(crate) fn use_espeak_data(data_dir: &Path) -> Result<(), TtsError> {
    if !data_dir.join("phontab").is_file() || !data_dir.join("en_dict").is_file() {
        return Err(TtsError::EspeakDataMissing(data_dir.to_path_buf()));
    }
    let data_dir = data_dir
        .canonicalize()
        .map_err(|e| TtsError::io(data_dir, e))?;
    let parent = match (data_dir.file_name(), data_dir.parent()) {
        (Some(name), Some(parent)) if name == "espeak-ng-data" => parent.to_path_buf(),
        _ => return Err(TtsError::EspeakDataName(data_dir)),
    };
    let _guard = ESPEAK.lock().map_err(|_| TtsError::Poisoned)?;
    let chosen = DATA_DIR.get_or_init(|| {
        if std::env::var_os(DATA_ENV).is_none_or(|v| Path::new(&v) != parent) {
            set_data_env(&parent);
        }
        data_dir.clone()
    });
    if *chosen != data_dir {
        return Err(TtsError::EspeakDataConflict {
            first: chosen.clone(),
            requested: data_dir,
        });
    }
    Ok(())
}

/// The one unsafe operation in this crate, and why it is needed: espeak-rs 0.2 offers no API to
/// pass espeak-ng's data path; it reads `PIPER_ESPEAKNG_DATA_DIRECTORY` (or looks in the current
/// and executable directories) on its first call. `std::env::set_var` is unsafe in edition 2024
/// because another thread reading the environment through libc at the same moment is a data race.
/// It runs once per process, under the espeak lock, before espeak-ng is initialised; callers load
/// their first `Voice` at start-up, before worker threads exist (documented on `Voice::load`).
/// Setting `PIPER_ESPEAKNG_DATA_DIRECTORY` to the models directory before start skips this call.
#[allow(unsafe_code)]
fn set_data_env(parent: &Path) {
    // SAFETY: see above — called once (inside `OnceLock::get_or_init`), before espeak-ng starts,
    // with no other code of this crate running; Rust's own env readers take std's env lock.
    unsafe { std::env::set_var(DATA_ENV, parent) };
}

/// IPA phonemes of one clause, with its punctuation re-appended as Piper expects.
pub(crate) fn clause_phonemes(clause: &Clause, espeak_voice: &str) -> Result<String, TtsError> {
    if DATA_DIR.get().is_none() {
        return Err(TtsError::EspeakNotInitialised);
    }
    let parts = {
        let _guard = ESPEAK.lock().map_err(|_| TtsError::Poisoned)?;
        espeak_rs::text_to_phonemes(&clause.text, espeak_voice, None)
            .map_err(|e| TtsError::Phonemize(e.to_string()))?
    };
    let mut phonemes = parts.join(" ");
    // espeak may close a clause with its own period; the real mark is added below.
    while phonemes.ends_with(['.', ',', '?', '!', ';', ':', ' ']) {
        phonemes.pop();
    }
    match clause.punct {
        Some(p @ ('.' | '!' | '?')) => phonemes.push(p),
        Some(p) => {
            phonemes.push(p);
            phonemes.push(' ');
        }
        None => {}
    }
    Ok(phonemes)
}

/// `^`, pad, then every known phoneme followed by a pad, then `$` (piper-phonemize's
/// `phonemes_to_ids` with BOS/EOS and interspersed padding). Unknown phonemes are skipped, as in
/// Piper; the count of skipped ones is returned for logging.
pub(crate) fn phoneme_ids(phonemes: &str, map: &HashMap<char, Vec<i64>>) -> (Vec<i64>, usize) {
    let mut ids = Vec::with_capacity(phonemes.chars().count() * 2 + 3);
    let mut skipped = 0;
    let get = |c: char| map.get(&c).cloned().unwrap_or_default();
    let pad = get('_');
    ids.extend(get('^'));
    ids.extend(&pad);
    for c in phonemes.chars() {
        match map.get(&c) {
            Some(id) => {
                ids.extend(id);
                ids.extend(&pad);
            }
            None => skipped += 1,
        }
    }
    ids.extend(get('$'));
    (ids, skipped)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn clause(text: &str, punct: Option<char>) -> Clause {
        Clause {
            text: text.into(),
            punct,
        }
    }

    #[test]
    fn splits_sentences_and_clauses_on_punctuation_before_spaces() {
        let got = split_sentences(
            "Hello Mister Smith, this is First Bank. Pay at bank.com today? Yes: ok; maybe",
        );
        assert_eq!(
            got,
            vec![
                vec![
                    clause("Hello Mister Smith", Some(',')),
                    clause("this is First Bank", Some('.'))
                ],
                vec![clause("Pay at bank.com today", Some('?'))],
                vec![
                    clause("Yes", Some(':')),
                    clause("ok", Some(';')),
                    clause("maybe", None)
                ],
            ]
        );
        assert!(split_sentences("  ").is_empty());
        assert_eq!(
            split_sentences("Wait!! Now."),
            vec![
                vec![clause("Wait", Some('!'))],
                vec![clause("Now", Some('.'))]
            ]
        );
    }

    #[test]
    fn ids_are_bos_pad_phonemes_with_pads_eos() {
        let map: HashMap<char, Vec<i64>> = [('_', 0), ('^', 1), ('$', 2), ('a', 14), (',', 8)]
            .into_iter()
            .map(|(c, id)| (c, vec![id]))
            .collect();
        let (ids, skipped) = phoneme_ids("a,ǃa", &map);
        assert_eq!(ids, [1, 0, 14, 0, 8, 0, 14, 0, 2]);
        assert_eq!(skipped, 1);
    }
}
