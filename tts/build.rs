//! Embeds the English part of espeak-ng's compiled data into the `tts` library.
//!
//! Why: espeak-ng refuses data from another version ("Wrong version of espeak-ng-data"; Debian ships
//! 1.51, espeak-rs-sys vendors 1.52), so the only data known to match the linked library is the
//! data compiled by espeak-rs-sys's own build. Embedding it (~0.8 MB: phoneme tables, `en_dict`, the
//! `en`/`en-US` language files) lets `tts::install_espeak_ng_data` write a matching copy into the
//! models directory on any machine, with no build tree around.
//!
//! espeak-rs-sys has no `links` key, so Cargo passes us no `DEP_*` path: we look for its output
//! beside ours in `target/<profile>/build/`. It is a build-dependency of this crate so that its build
//! script has run before ours on a clean build. `CALLBOT_ESPEAK_NG_DATA` overrides the search.
//!
//! It also links libsonic (see `main`).

use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Files espeak-ng opens to phonemise en-US (checked with `espeak-ng --path=<subset> -v en-us`).
const FILES: &[&str] = &[
    "phontab",
    "phonindex",
    "phondata",
    "intonations",
    "en_dict",
    "lang/gmw/en",
    "lang/gmw/en-US",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    // espeak-rs-sys's CMake build finds Debian's libsonic-dev and compiles espeak-ng against it
    // but does not link it; linking the static archive keeps the binary free of libsonic.so.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH")?;
    for dir in [
        format!("/usr/lib/{arch}-linux-gnu"),
        "/usr/lib".into(),
        "/usr/local/lib".into(),
    ] {
        if Path::new(&dir).join("libsonic.a").is_file() {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }
    println!("cargo:rustc-link-lib=static=sonic");
    println!("cargo:rerun-if-env-changed=CALLBOT_ESPEAK_NG_DATA");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let data = match std::env::var_os("CALLBOT_ESPEAK_NG_DATA") {
        Some(p) => PathBuf::from(p),
        None => find_built_data(&out_dir)?,
    };
    let mut code =
        String::from("/// (relative path, bytes) of every embedded espeak-ng data file.\n");
    code.push_str("pub(crate) const ESPEAK_NG_FILES: &[(&str, &[u8])] = &[\n");
    for rel in FILES {
        let path = data.join(rel);
        if !path.is_file() {
            return Err(format!("espeak-ng data file missing: {}", path.display()).into());
        }
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )?;
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("espeak_ng_files.rs"), code)?;
    Ok(())
}

/// The newest `espeak-rs-sys-*/out/share/espeak-ng-data` under `target/<profile>/build/`.
fn find_built_data(out_dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    // OUT_DIR is target/<profile>/build/tts-<hash>/out.
    let build_dir = out_dir
        .parent()
        .and_then(Path::parent)
        .ok_or("OUT_DIR has no build/ ancestor")?;
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(build_dir)? {
        let entry = entry?;
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("espeak-rs-sys-")
        {
            continue;
        }
        let data = entry.path().join("out/share/espeak-ng-data");
        let Ok(meta) = std::fs::metadata(data.join("phondata")) else {
            continue;
        };
        let modified = meta.modified()?;
        if best.as_ref().is_none_or(|(t, _)| modified > *t) {
            best = Some((modified, data));
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| {
        format!(
            "no espeak-rs-sys build output with espeak-ng-data under {}; \
             set CALLBOT_ESPEAK_NG_DATA to a compiled espeak-ng-data folder (espeak-ng 1.52)",
            build_dir.display()
        )
        .into()
    })
}
