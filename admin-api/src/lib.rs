//! The HTTP face of callbot: admin API, agent console and dashboard pages.
//!
//! Not built yet (issue 8). This crate is an empty placeholder in the workspace.
