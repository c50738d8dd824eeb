//! Diagnostics: every problem in a flow carries the file, line and column it was found at.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a flow file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub fn new(line: usize, col: usize) -> Self {
        Self { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One problem found in a flow, with where it is and a plain-English reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub pos: Pos,
    /// A stable short code (e.g. `unknown-step`) tests and tools can match on.
    pub code: &'static str,
    pub message: String,
}

impl Diagnostic {
    pub fn new(pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            pos,
            code,
            message: message.into(),
        }
    }
}

/// All the problems found in one flow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowErrors {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl FlowErrors {
    pub fn new(file: &Path, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by(|a, b| a.pos.cmp(&b.pos).then(a.code.cmp(b.code)));
        diagnostics.dedup();
        Self {
            file: file.to_path_buf(),
            diagnostics,
        }
    }

    /// Whether any diagnostic has the given code.
    pub fn has(&self, code: &str) -> bool {
        self.diagnostics.iter().any(|d| d.code == code)
    }
}

impl fmt::Display for FlowErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error[{}]: {}",
                self.file.display(),
                d.pos.line,
                d.pos.col,
                d.code,
                d.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for FlowErrors {}
