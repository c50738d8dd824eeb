//! The English espeak-ng data embedded in this library (see `build.rs`) and its installation into
//! the models directory.
//!
//! Embedding, rather than copying from a build-time path, means the data always matches the
//! espeak-ng linked into this very binary (espeak-ng rejects data of another version) and the
//! installed binary needs no build tree: `callbot models fetch` writes it out on any machine.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::TtsError;

include!(concat!(env!("OUT_DIR"), "/espeak_ng_files.rs"));

/// Relative paths of the embedded files (for diagnostics and tests).
pub fn embedded_espeak_ng_files() -> impl Iterator<Item = &'static str> {
    ESPEAK_NG_FILES.iter().map(|(name, _)| *name)
}

fn is_complete(dest: &Path) -> bool {
    ESPEAK_NG_FILES
        .iter()
        .all(|(rel, bytes)| fs::read(dest.join(rel)).is_ok_and(|on_disk| on_disk == *bytes))
}

/// Writes the embedded espeak-ng data (en-US) to `dest`, normally `ModelsDir::espeak_ng_data()`
/// (its last component must be `espeak-ng-data`, which is how espeak-rs finds it).
///
/// Returns `Ok(false)` when `dest` already holds every file byte for byte, `Ok(true)` after
/// installing. Atomic: the files are written to a staging folder beside `dest` and renamed into
/// place, so a crash leaves either the old folder or the new one, never a half-written one.
pub fn install_espeak_ng_data(dest: &Path) -> Result<bool, TtsError> {
    if dest.file_name().is_none_or(|n| n != "espeak-ng-data") {
        return Err(TtsError::EspeakDataName(dest.to_path_buf()));
    }
    if is_complete(dest) {
        return Ok(false);
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| TtsError::io(parent, e))?;
    let pid = std::process::id();
    let staging = parent.join(format!(".espeak-ng-data.staging-{pid}"));
    let old = parent.join(format!(".espeak-ng-data.old-{pid}"));
    let _ = fs::remove_dir_all(&staging);
    for (rel, bytes) in ESPEAK_NG_FILES {
        write_file(&staging.join(rel), bytes)?;
    }
    let had_old = dest.exists();
    if had_old {
        fs::rename(dest, &old).map_err(|e| TtsError::io(dest, e))?;
    }
    if let Err(e) = fs::rename(&staging, dest) {
        if had_old {
            // Put the previous folder back rather than leave nothing.
            let _ = fs::rename(&old, dest);
        }
        return Err(TtsError::io(dest, e));
    }
    if had_old {
        fs::remove_dir_all(&old).map_err(|e| TtsError::io(&old, e))?;
    }
    Ok(true)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TtsError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| TtsError::io(dir, e))?;
    }
    let mut f = fs::File::create(path).map_err(|e| TtsError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TtsError::io(path, e))?;
    f.sync_all().map_err(|e| TtsError::io(path, e))
}
