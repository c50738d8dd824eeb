//! Recordings with reference transcripts: a folder holding `transcripts.tsv` with a header row
//! and the columns `path` (relative to the folder), `duration_s`, `transcript`.

use std::path::{Path, PathBuf};

use crate::AsrError;

/// One recording and what is said in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechItem {
    pub path: PathBuf,
    pub duration_s: f32,
    pub transcript: String,
    /// Line in `transcripts.tsv` (1-based), for error messages.
    pub line: usize,
}

/// A folder of recordings with transcripts.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechSet {
    pub dir: PathBuf,
    pub items: Vec<SpeechItem>,
}

impl SpeechSet {
    /// Reads `dir/transcripts.tsv`. Every bad row is reported with its line number.
    pub fn load(dir: &Path) -> Result<Self, AsrError> {
        let manifest = dir.join("transcripts.tsv");
        let text = std::fs::read_to_string(&manifest).map_err(|e| AsrError::Manifest {
            path: manifest.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        let bad = |line: usize, reason: String| AsrError::Manifest {
            path: manifest.clone(),
            line,
            reason,
        };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header))
                if header.split('\t').collect::<Vec<_>>()
                    == ["path", "duration_s", "transcript"] => {}
            Some((_, header)) => {
                return Err(bad(
                    1,
                    format!(
                        "expected header `path<TAB>duration_s<TAB>transcript`, found {header:?}"
                    ),
                ));
            }
            None => return Err(bad(1, "empty file".into())),
        }
        let mut items = Vec::new();
        for (i, row) in lines {
            let line = i + 1;
            if row.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = row.splitn(3, '\t').collect();
            let [path, duration, transcript] = cols[..] else {
                return Err(bad(
                    line,
                    format!("expected 3 tab-separated columns, found {}", cols.len()),
                ));
            };
            let duration_s = duration
                .trim()
                .parse::<f32>()
                .map_err(|e| bad(line, format!("duration_s {duration:?}: {e}")))?;
            items.push(SpeechItem {
                path: dir.join(path),
                duration_s,
                transcript: transcript.trim().to_string(),
                line,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            items,
        })
    }

    /// Total audio, in seconds.
    pub fn duration_s(&self) -> f32 {
        self.items.iter().map(|i| i.duration_s).sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(text: &str) -> Result<SpeechSet, AsrError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("transcripts.tsv"), text).unwrap();
        SpeechSet::load(dir.path())
    }

    #[test]
    fn reads_rows_relative_to_the_folder() {
        let set =
            load("path\tduration_s\ttranscript\na.wav\t1.5\tHello, \"world\"\n\nb/c.wav\t2\tBye\n")
                .unwrap();
        assert_eq!(set.items.len(), 2);
        assert!(set.items[1].path.ends_with("b/c.wav"));
        assert_eq!(set.items[0].transcript, "Hello, \"world\"");
        assert_eq!(set.items[1].line, 4);
        assert!((set.duration_s() - 3.5).abs() < 1e-6);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let err = load("path\tduration_s\ttranscript\na.wav\t1.5\tok\nb.wav\tlong\tbad\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("transcripts.tsv:3: duration_s \"long\""),
            "{err}"
        );
        let err = load("path\tduration_s\ttranscript\nonly-a-path\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("transcripts.tsv:2: expected 3 tab-separated columns, found 1"),
            "{err}"
        );
        let err = load("file,text\n").unwrap_err().to_string();
        assert!(err.contains("transcripts.tsv:1: expected header"), "{err}");
    }
}
