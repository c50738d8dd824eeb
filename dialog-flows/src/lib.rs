//! The YAML dialog-flow language: parser, validator, sans-IO interpreter and conversation tests.
//!
//! - [`load`] / [`load_str`]: YAML → [`Flow`], with every schema and validation problem reported as
//!   `file:line:column` ([`FlowErrors`]).
//! - [`validate`]: reachability, dead ends, loops, use-before-set, lead-schema names, and the
//!   compliance proof (disclosures before any content on every path; opt-out leads to DNC).
//! - [`Call`]: the interpreter, events and time in, [`CallAction`]s out.
//! - [`testing`]: conversation tests in YAML, run against any [`testing::Understand`] (the real NLU
//!   in the `callbot` binary).
//! - [`schema::json_schema`]: a JSON Schema for editors.

pub mod ast;
mod builtin;
mod decode;
pub mod error;
pub mod expr;
pub mod interp;
pub mod registry;
pub mod schema;
pub mod template;
pub mod testing;
mod validate;
pub mod value;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use ast::Flow;
pub use error::{Diagnostic, FlowErrors, Pos};
pub use interp::{
    Call, CallAction, Entities, Event, LeadError, Listen, Speaker, Speech, TranscriptLine,
    TransferSummary, Utterance, VOICEMAIL_STEP, WebhookRequest,
};
pub use registry::{FlowRegistry, RegistryError};
pub use validate::validate;
pub use value::Value;

/// Parse, decode and validate flow text; `file` names it in errors.
pub fn load_str(src: &str, file: &Path) -> Result<Flow, FlowErrors> {
    let root = yaml::parse(src).map_err(|d| FlowErrors::new(file, vec![d]))?;
    let flow = decode::decode(&root, file).map_err(|d| FlowErrors::new(file, d))?;
    let diags = validate(&flow);
    if diags.is_empty() {
        Ok(flow)
    } else {
        Err(FlowErrors::new(file, diags))
    }
}

/// Read and load a flow file.
pub fn load(path: &Path) -> Result<Flow, FlowErrors> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        FlowErrors::new(
            path,
            vec![Diagnostic::new(
                Pos::new(1, 1),
                "io",
                format!("cannot read the file: {e}"),
            )],
        )
    })?;
    load_str(&src, path)
}

/// Flow files in a directory (`*.yaml`/`*.yml`, not conversation tests `*.test.yaml`), sorted.
pub fn flow_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_file()
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !name.contains(".test.")
        {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
