//! SHA-256 of downloaded files, and the check that deletes a file whose digest is wrong.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::FetchError;

/// Lower-case hex SHA-256 of a file; `progress` is told how many bytes were read after each block.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(|e| FetchError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| FetchError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Lower-case hex SHA-256 of a string (fingerprints of embedded files).
pub fn sha256_str(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Checks `path` against `expected`; on a mismatch the file is deleted so a bad download is never
/// unpacked or reused.
pub fn verify_sha256(
    path: &Path,
    expected: &str,
    progress: impl FnMut(u64),
) -> Result<(), FetchError> {
    let got = sha256_file(path, progress)?;
    if got.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    std::fs::remove_file(path).map_err(|e| FetchError::io(path, e))?;
    Err(FetchError::ChecksumMismatch {
        file: path.to_path_buf(),
        expected: expected.to_string(),
        got,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // SHA-256 of the three bytes "abc" (FIPS 180-2, appendix B.1).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn matching_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("fake-1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"abc").unwrap();
        let mut seen = 0;
        verify_sha256(&wheel, ABC, |n| seen += n).unwrap();
        assert_eq!(seen, 3);
        assert!(wheel.exists());
    }

    #[test]
    fn mismatch_names_file_expected_and_got_and_deletes_it() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("fake-1.0-py3-none-any.whl");
        std::fs::write(&wheel, b"abd").unwrap();
        let err = verify_sha256(&wheel, ABC, |_| {}).unwrap_err();
        let FetchError::ChecksumMismatch {
            file,
            expected,
            got,
        } = &err
        else {
            panic!("unexpected error {err}");
        };
        assert_eq!(file, &wheel);
        assert_eq!(expected, ABC);
        assert_eq!(got.len(), 64);
        assert_ne!(got, ABC);
        let text = err.to_string();
        assert!(text.contains("fake-1.0-py3-none-any.whl"), "{text}");
        assert!(text.contains(ABC) && text.contains(got.as_str()), "{text}");
        assert!(
            !wheel.exists(),
            "a file with a wrong checksum must be deleted"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = verify_sha256(Path::new("/nonexistent/x.whl"), ABC, |_| {}).unwrap_err();
        assert!(matches!(err, FetchError::Io { .. }), "{err}");
    }
}
