//! Stamp files: how a second `callbot models fetch` knows a model folder is complete and current.
//!
//! A stamp (`<model dir>/.callbot-stamp.json`) is written last, inside the staging folder, so it
//! moves into place together with the files it describes. It records a fingerprint of everything
//! that decided the folder's content (the manifest entry, its wheel and checksum, the conversion
//! script and the Python requirements) and the size of every output.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FetchError;
use crate::manifest::{ModelEntry, Wheel};

pub const STAMP_FILE: &str = ".callbot-stamp.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub fingerprint: String,
    /// Output file (relative to the model folder) -> size in bytes.
    pub files: BTreeMap<String, u64>,
}

/// Whether a model folder can be left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampState {
    Current,
    /// Never fetched (or fetched by hand, without a stamp).
    Missing,
    /// Present but not trustworthy; the reason is shown to the user.
    Stale(String),
}

/// SHA-256 over the manifest entry, its wheel and any extra inputs (script sources, requirements).
pub fn fingerprint(entry: &ModelEntry, wheel: &Wheel, extra: &[&str]) -> String {
    let mut h = Sha256::new();
    // serde_json of these plain structs is deterministic (field order is declaration order).
    h.update(serde_json::to_vec(entry).unwrap_or_default());
    h.update([0]);
    h.update(serde_json::to_vec(wheel).unwrap_or_default());
    for e in extra {
        h.update([0]);
        h.update(e.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Stamp {
    /// Measures `outputs` in `dir` and writes the stamp there.
    pub fn write(dir: &Path, fingerprint: &str, outputs: &[String]) -> Result<Stamp, FetchError> {
        let mut files = BTreeMap::new();
        for o in outputs {
            let path = dir.join(o);
            let meta = std::fs::metadata(&path).map_err(|e| FetchError::io(&path, e))?;
            files.insert(o.clone(), meta.len());
        }
        let stamp = Stamp {
            fingerprint: fingerprint.to_string(),
            files,
        };
        let path = dir.join(STAMP_FILE);
        let text = serde_json::to_string_pretty(&stamp).unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(|e| FetchError::io(&path, e))?;
        Ok(stamp)
    }

    pub fn check(dir: &Path, fingerprint: &str, outputs: &[String]) -> StampState {
        let path = dir.join(STAMP_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return StampState::Missing,
        };
        let stamp: Stamp = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => {
                return StampState::Stale(format!("{}: unreadable stamp: {e}", path.display()));
            }
        };
        if stamp.fingerprint != fingerprint {
            return StampState::Stale("the manifest entry or its conversion changed".into());
        }
        for o in outputs {
            let Some(&want) = stamp.files.get(o) else {
                return StampState::Stale(format!("{o} is not recorded in the stamp"));
            };
            match std::fs::metadata(dir.join(o)) {
                Ok(m) if m.is_file() && m.len() == want => {}
                Ok(m) => {
                    return StampState::Stale(format!("{o} is {} bytes, expected {want}", m.len()));
                }
                Err(_) => return StampState::Stale(format!("{o} is missing")),
            }
        }
        StampState::Current
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::manifest::Manifest;

    fn entry() -> (ModelEntry, Wheel) {
        let m = Manifest::builtin().unwrap();
        let e = m
            .models
            .iter()
            .find(|e| e.name == "silero")
            .unwrap()
            .clone();
        let w = m.wheel(&e.wheel).unwrap().clone();
        (e, w)
    }

    #[test]
    fn fresh_stamp_is_current_until_an_output_changes() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = vec!["a.onnx".to_string(), "sub/b.json".to_string()];
        std::fs::write(dir.path().join("a.onnx"), b"12345").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.json"), b"{}").unwrap();
        assert_eq!(
            Stamp::check(dir.path(), "f1", &outputs),
            StampState::Missing
        );

        let stamp = Stamp::write(dir.path(), "f1", &outputs).unwrap();
        assert_eq!(stamp.files["a.onnx"], 5);
        assert_eq!(
            Stamp::check(dir.path(), "f1", &outputs),
            StampState::Current
        );

        // A different fingerprint (manifest edited) makes it stale.
        assert!(matches!(
            Stamp::check(dir.path(), "f2", &outputs),
            StampState::Stale(_)
        ));
        // A truncated output makes it stale.
        std::fs::write(dir.path().join("a.onnx"), b"123").unwrap();
        let StampState::Stale(why) = Stamp::check(dir.path(), "f1", &outputs) else {
            panic!("truncated file not noticed");
        };
        assert!(why.contains("a.onnx is 3 bytes, expected 5"), "{why}");
        // A deleted output makes it stale.
        std::fs::remove_file(dir.path().join("a.onnx")).unwrap();
        assert!(matches!(
            Stamp::check(dir.path(), "f1", &outputs),
            StampState::Stale(_)
        ));
    }

    #[test]
    fn an_output_not_in_the_stamp_or_a_corrupt_stamp_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        Stamp::write(dir.path(), "f", &["a".to_string()]).unwrap();
        let more = ["a".to_string(), "b".to_string()];
        assert!(matches!(
            Stamp::check(dir.path(), "f", &more),
            StampState::Stale(_)
        ));
        std::fs::write(dir.path().join(STAMP_FILE), b"{not json").unwrap();
        assert!(matches!(
            Stamp::check(dir.path(), "f", &more[..1]),
            StampState::Stale(_)
        ));
    }

    #[test]
    fn fingerprint_follows_the_entry_the_checksum_and_the_script() {
        let (e, w) = entry();
        let base = fingerprint(&e, &w, &["script v1"]);
        assert_eq!(base, fingerprint(&e, &w, &["script v1"]));
        assert_ne!(base, fingerprint(&e, &w, &["script v2"]));
        let mut w2 = w.clone();
        w2.sha256 = "1".repeat(64);
        assert_ne!(base, fingerprint(&e, &w2, &["script v1"]));
        let mut e2 = e.clone();
        e2.outputs.push("extra".into());
        assert_ne!(base, fingerprint(&e2, &w, &["script v1"]));
    }
}
