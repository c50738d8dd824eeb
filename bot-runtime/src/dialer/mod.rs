//! The dialer: who to call, when, how fast, and why.
//!
//! - [`rules`]: the sans-IO rule engine (calling windows in the lead's local time, schedules and
//!   holidays, retries per disposition, callbacks, attempt and frequency caps); every verdict
//!   carries the rule that decided it.
//! - [`pacing`]: the sans-IO pacer (preview, progressive, predictive, capacity-paced robot
//!   dialing) and the per-trunk calls-per-second cap.
//! - [`phone`]: E.164 normalisation and the timezones a number may be in.
//! - [`leads`]: streaming CSV lead import with per-row validation and a row-numbered report.
//! - [`db`]: the dialer's tables in the store (campaigns, leads, leases, attempts, DNC, audit).
//! - [`dnc`]: the compact in-memory do-not-call set for fast lookups at scale.

pub mod db;
pub mod dnc;
pub mod leads;
pub mod pacing;
pub mod phone;
pub mod rules;
