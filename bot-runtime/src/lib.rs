//! Composes callbot's leaf crates for a call.
//!
//! - [`flow_nlu`]: the NLU (`nlu`) in front of the flow interpreter (`dialog-flows`): a flow's
//!   intents are learnt from the example utterances declared in the flow, and each caller turn is
//!   understood in the context of the step that is listening.
//! - [`record`]: the call record (transcript with timings, path, outcome, latencies, recording).
//! - [`dialer`]: campaigns' dialing policy: rules, pacing, lead import, phone numbers, DNC.
//! - [`store`]: call records in SQLite or PostgreSQL through sqlx, with migrations.
//! - [`agents`]: human agents and queues for warm transfers (the sans-IO queue engine).
//! - [`amd`]: answering-machine detection on the first seconds after answer.
//! - [`turn`]: turn-taking (endpointing, speculative recognition, barge-in), sans-IO.
//! - [`playout`]: the robot's speech queue fed to the media session, sans-IO.

pub mod agents;
pub mod amd;
pub mod analytics;
pub mod api_access;
pub mod backup;
pub mod call;
pub mod demo;
pub mod dialer;
pub mod durable;
pub mod engines;
pub mod flow_nlu;
pub mod metrics;
pub mod playout;
pub mod prompts;
pub mod record;
pub mod recorder;
pub mod retention;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod turn;
pub mod vault;

pub use flow_nlu::FlowNlu;
pub use record::{CallLeg, CallRecord, Direction, RecordingRef, Speaker, StageLatency, TurnRecord};
