//! Composes the leaf crates per call; dialer, campaigns, DNC, agent queue and storage.
//!
//! Not built yet (issues 5–7). This crate is an empty placeholder in the workspace.
