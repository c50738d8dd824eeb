//! Shared helpers of bot-runtime's integration tests (each test file uses what it needs).

pub mod baresip;
pub mod db;
pub mod sipp;
