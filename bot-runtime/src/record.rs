//! What callbot keeps about each call: the call record the pipeline fills in while the call runs
//! and hands to the [`store`](crate::store) when it ends.
//!
//! Times inside a call (`start_ms`, `end_ms`) are milliseconds from the moment the call was
//! answered; wall-clock times are UTC.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// The current time at the precision the store keeps (microseconds), so that a record reads
/// back exactly as it was written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Which way the call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "outbound" => Some(Direction::Outbound),
            "inbound" => Some(Direction::Inbound),
            _ => None,
        }
    }
}

/// Who spoke a line of the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Bot,
    Customer,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Bot => "bot",
            Speaker::Customer => "customer",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "bot" => Some(Speaker::Bot),
            "customer" => Some(Speaker::Customer),
            _ => None,
        }
    }
}

/// How long each stage of one customer turn took, in milliseconds. `total_ms` runs from the end
/// of the customer's speech (as the VAD saw it) to the first robot audio frame handed to the media
/// session; the stages overlap (recognition starts before the turn is declared over), so they
/// need not add up to the total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageLatency {
    /// End of speech → end of turn declared (silence hangover, or earlier when the words already
    /// answer what the flow asked).
    pub endpoint_ms: u32,
    /// Speech recognition of the utterance (the decode that produced the final text).
    pub asr_ms: u32,
    /// Intent, sentiment and entities.
    pub nlu_ms: u32,
    /// The flow interpreter.
    pub flow_ms: u32,
    /// Speech synthesis to the first audio frame (0 for a cached prompt).
    pub tts_ms: u32,
    /// End of speech → first robot audio frame queued for sending.
    pub total_ms: u32,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// 0, 1, 2… in the order the lines started.
    pub seq: u32,
    pub speaker: Speaker,
    pub text: String,
    /// When the line started and ended, ms from answer. For the robot: when its audio started
    /// and stopped being sent (earlier than planned if interrupted).
    pub start_ms: u64,
    pub end_ms: u64,
    /// The flow step that spoke or was listening.
    pub step: Option<String>,
    /// Customer lines: the intent the flow received, with its confidence.
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    /// Customer lines: sentiment score in [-1, 1].
    pub sentiment: Option<f64>,
    /// Robot lines: cut off by the customer speaking over it.
    pub interrupted: bool,
    /// Customer lines: the latency of the robot's answer to this line.
    pub latency: Option<StageLatency>,
}

/// The recording of a call: one WAV file, 8 kHz 16-bit, two channels (left the customer, right
/// the robot or agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingRef {
    pub path: String,
    pub sha256: String,
    pub duration_ms: u64,
    pub bytes: u64,
}

/// Everything kept about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// A UUID (v4), unique across nodes.
    pub id: String,
    pub direction: Direction,
    pub campaign: Option<String>,
    pub lead_id: Option<String>,
    /// The customer's number (E.164 where known).
    pub phone: String,
    /// The flow and version the call ran (empty when no flow ran, e.g. busy).
    pub flow: String,
    pub flow_version: u32,
    /// The SIP Call-ID of the customer leg.
    pub sip_call_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: DateTime<Utc>,
    /// Call-progress disposition: answered, busy, no_answer, invalid_number, unreachable,
    /// rejected, fax, network_error, machine.
    pub disposition: String,
    /// The flow's outcome (from its `end` step), if it reached one.
    pub outcome: Option<String>,
    /// Answering-machine detection verdict: human, machine, unknown; `None` when not run.
    pub amd: Option<String>,
    /// Who ended the call: customer, bot, agent, system.
    pub ended_by: Option<String>,
    /// The flow steps visited, in order.
    pub path: Vec<String>,
    /// Slot values collected, as JSON.
    pub slots: serde_json::Value,
    pub turns: Vec<TurnRecord>,
    pub recording: Option<RecordingRef>,
    /// Who was on callbot's side of the call, in order: the robot, then (after a warm transfer)
    /// the agent. Empty for a call that was never answered.
    pub legs: Vec<CallLeg>,
}

/// One party that talked with the customer on callbot's side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallLeg {
    /// `robot` or `agent`.
    pub kind: String,
    /// The agent (agent legs).
    pub agent_id: Option<String>,
    /// The queue the call was transferred through (agent legs).
    pub queue: Option<String>,
    /// From the transfer to the agent's audio connected (agent legs).
    pub wait_ms: Option<u64>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

impl CallRecord {
    /// A record with only the identity filled in; the pipeline completes it.
    pub fn new(direction: Direction, phone: &str, started_at: DateTime<Utc>) -> Self {
        CallRecord {
            id: uuid::Uuid::new_v4().to_string(),
            direction,
            campaign: None,
            lead_id: None,
            phone: phone.to_string(),
            flow: String::new(),
            flow_version: 0,
            sip_call_id: None,
            started_at,
            answered_at: None,
            ended_at: started_at,
            disposition: String::new(),
            outcome: None,
            amd: None,
            ended_by: None,
            path: Vec::new(),
            slots: serde_json::Value::Object(Default::default()),
            turns: Vec::new(),
            recording: None,
            legs: Vec::new(),
        }
    }
}
