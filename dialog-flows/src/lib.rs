//! The YAML dialog-flow language: schema, validator, interpreter and conversation tests.
//!
//! Not built yet (issue 3). This crate is an empty placeholder in the workspace.
