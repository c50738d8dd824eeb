//! Dialog-flow YAML as uploaded through the admin API or read from disk:
//! `dialog_flows::load_str` (YAML parse → decode → validation with the compliance proof).
//!
//! Properties: nothing panics or hangs; a refused flow has at least one diagnostic, each with a
//! code, a message and a 1-based line:column inside the text (one past the end at most); an
//! accepted flow validates again without diagnostics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The API takes JSON strings and the CLI reads files as UTF-8: flow text is always UTF-8.
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // Large flows are legal but slow the search down without exercising anything new.
    if src.len() > 64 * 1024 {
        return;
    }
    // YAML breaks lines at LF, CRLF and a lone CR.
    let lines = src
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .split('\n')
        .count();
    match dialog_flows::load_str(src, Path::new("fuzz.yaml")) {
        Ok(flow) => {
            assert!(dialog_flows::validate(&flow).is_empty());
        }
        Err(errors) => {
            assert!(
                !errors.diagnostics.is_empty(),
                "a refusal without a diagnostic"
            );
            for d in &errors.diagnostics {
                assert!(!d.code.is_empty());
                assert!(!d.message.is_empty(), "an empty message for {}", d.code);
                assert!(d.pos.line >= 1 && d.pos.col >= 1, "position {:?}", d.pos);
                assert!(
                    d.pos.line <= lines + 1,
                    "line {} past the end ({lines} lines): {}",
                    d.pos.line,
                    d.message
                );
            }
            let _ = errors.to_string();
        }
    }
});
