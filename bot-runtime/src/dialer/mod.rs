//! The dialer: who to call, when, how fast, and why.
//!
//! - [`rules`]: the sans-IO rule engine (calling windows in the lead's local time, schedules and
//!   holidays, retries per disposition, callbacks, attempt and frequency caps); every verdict
//!   carries the rule that decided it.
//! - [`pacing`]: the sans-IO pacer (preview, progressive, predictive, capacity-paced robot
//!   dialing) and the per-trunk calls-per-second cap.
//! - [`phone`]: E.164 normalisation and the timezones a number may be in.
//! - [`leads`]: streaming CSV lead import with per-row validation and a row-numbered report.
//! - [`campaign`]: a campaign's settings (rules, order, pacing, trunk).
//! - [`human`]: human and blended campaigns: the built-in flow of human calls (straight to the
//!   agent queue, the safe-harbour message after 2 s), the agents the pacer sees, the abandon
//!   ledger's rules.
//! - [`service`]: the dialer node: claims due leads, applies the rules, dials, records.
//! - [`db`]: the dialer's tables in the store (campaigns, leads, leases, attempts, DNC, audit).
//! - [`import`]: lead files into the store, with the row report and campaign assignment.
//! - [`dnc`]: the compact in-memory do-not-call set for fast lookups at scale.

pub mod campaign;
pub mod db;
pub mod dnc;
pub mod dnc_file;
pub mod human;
pub mod import;
pub mod leads;
pub mod pacing;
pub mod phone;
pub mod rules;
pub mod service;
pub mod trunk;
