//! Reports over robot and human calls: attempts, connects, right-party contacts, outcomes and
//! conversion, handle time, transfers, abandons, answering machines and sentiment, grouped by
//! hour, day, campaign, flow, agent or side (robot / human); a drop-off funnel per flow; robot
//! and agents side by side; CSV and XLSX export.
//!
//! # How a report is made
//!
//! [`Store::report`](crate::store::Store::report) streams one row per **dial attempt** of the
//! tenant (the dialer's `attempts` table, filtered on the tenant, the attempt's start time, the
//! campaign and the flow), joined to the call the attempt produced (`calls`, by the attempt's
//! `call_id`), with per-call figures read by correlated subqueries on the call's legs
//! (`call_legs`), its customer turns' sentiment (`call_turns`) and the agent's disposition
//! (`agent_dispositions`, the tenant's only). Each row becomes a [`CallFacts`]; the sans-IO
//! [`Aggregator`] folds them into a [`Report`]. Memory is bounded by the number of groups,
//! funnel steps and agents, not by the number of calls.
//!
//! The attempt is the unit because it is what carries the tenant: call records have no tenant of
//! their own, so **calls that no attempt of the tenant refers to (inbound calls, `callbot demo`)
//! are in no tenant's report**. Time buckets and the `from`/`to` range use the attempt's start.
//!
//! # Metric definitions
//!
//! - **attempts**: dial attempts (in progress and interrupted ones included).
//! - **connects**: attempts whose call was answered (`calls.answered_at_us` set; answering
//!   machines included). *Connect rate* = connects / attempts.
//! - **machines**: connects whose AMD verdict is `machine`. *AMD rate* = machines / connects.
//! - **right-party contacts** (RPC): connects answered by a person (AMD verdict not `machine`)
//!   for which the record shows the flow got past identity: the call reached an agent, or its
//!   path contains one of [`ReportOptions::identity_steps`] (none by default: step names are the
//!   flows' own), or its final outcome is present and not in
//!   [`ReportOptions::not_right_party`] (wrong party, unknown caller, failed verification,
//!   voicemail, hang-up, no response, opt-out, callback request, errors — outcomes that do not
//!   show the right person was confirmed). So a customer who confirmed identity and then hung up
//!   counts only when the flow's confirmation step is named in `identity_steps`. *RPC rate* =
//!   RPC / connects.
//! - **final outcome** of a connect: the agent's disposition when an agent saved one (the latest),
//!   else the flow's outcome (`cold_transferred:<target>` is counted as `cold_transferred`, so no
//!   number appears in a report), else `(none)`.
//! - **conversions**: connects whose final outcome is in [`ReportOptions::success_outcomes`]
//!   (default [`DEFAULT_SUCCESS_OUTCOMES`]). *Conversion rate* = conversions / connects.
//! - **handle time**: answered → ended of each connect (robot and agent parts together). Also
//!   reported apart: the robot's time (its legs; the whole handle time when a record has no legs)
//!   and the agents' talk time (agent legs).
//! - **transfers**: connects with an agent leg (warm transfers that reached an agent; cold
//!   transfers show as the `cold_transferred` outcome). *Transfer rate* = transfers / connects.
//! - **abandons**: connects answered by a person that were handed to an agent queue and never
//!   reached an agent — no agent leg, and the flow's outcome is none (the customer hung up while
//!   queued: the interpreter keeps no outcome for a hang-up in the queue), `no_agent` (no agent
//!   within the queue's wait and no `on_no_agent` fallback) or `abandoned` (a human campaign's
//!   call that no agent took within the safe harbour, `crate::dialer::human`) — plus connects
//!   whose attempt the dialer closed as `abandoned`. A transfer whose `on_no_agent` fallback continued the flow is
//!   not an abandon. *Abandon rate* = abandons / connects (the regulators' measure: abandoned
//!   share of live answers).
//! - **sentiment**: per call, the mean of its customer turns' sentiment scores (in [-1, 1]);
//!   per group, the mean over the calls that have at least one score.
//! - **funnel** (per flow, connects with a path): for each step, the calls whose path reached it
//!   (counted once per call) and the calls whose path ended there; steps in path order (the
//!   earliest position at which any call first reached them, ties by reach).
//! - **agents**: one `robot` row (every connect; the robot's time; conversions of calls that
//!   ended with the robot; calls it handed to agents) and one row per agent (calls connected to
//!   them, talk time, queue wait, conversions, their saved dispositions).

mod aggregate;
mod export;
mod query;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use chrono_tz::Tz;

pub use aggregate::{AgentFacts, Aggregator, CallFacts, ConnectFacts};
pub use export::{Cell, ExportError, Table};

/// An IANA time zone by name (`America/New_York`, `UTC`), for [`ReportQuery::timezone`].
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {name:?}: expected an IANA name such as UTC or America/New_York")
    })
}

/// Outcomes (flow outcomes and agent dispositions) that count as a conversion by default: a
/// promise or plan to pay, a payment, a product taken, a transaction confirmed, a survey done,
/// an agent's `resolved`.
pub const DEFAULT_SUCCESS_OUTCOMES: &[&str] = &[
    "promise_to_pay",
    "promise_today",
    "payment_plan",
    "paid",
    "activated",
    "lead_credit_card",
    "lead_deposit",
    "transaction_confirmed",
    "survey_completed",
    "survey_completed_detractor",
    "resolved",
];

/// Final outcomes that do not show the right party was reached (see the module docs).
pub const DEFAULT_NOT_RIGHT_PARTY: &[&str] = &[
    "wrong_party",
    "unknown_caller",
    "verification_failed",
    "voicemail_left",
    "machine",
    "abandoned",
    "hung_up",
    "no_response",
    "opted_out",
    "callback_requested",
    "flow_error",
    "runtime_error",
    "lead_error",
    "(none)",
];

/// How a report groups its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Local hour of the attempt's start, in the report's time zone.
    Hour,
    /// Local day of the attempt's start, in the report's time zone.
    #[default]
    Day,
    /// The campaign.
    Campaign,
    /// The flow (the call's, else the campaign's).
    Flow,
    /// The agent the call reached; `(robot only)` and `(not connected)` for the others.
    Agent,
    /// `robot` (the call ended with the robot), `human` (it reached an agent), `(not connected)`.
    Side,
}

impl GroupBy {
    /// All of them, in the order the CLI lists them.
    pub const ALL: [GroupBy; 6] = [
        GroupBy::Hour,
        GroupBy::Day,
        GroupBy::Campaign,
        GroupBy::Flow,
        GroupBy::Agent,
        GroupBy::Side,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Hour => "hour",
            GroupBy::Day => "day",
            GroupBy::Campaign => "campaign",
            GroupBy::Flow => "flow",
            GroupBy::Agent => "agent",
            GroupBy::Side => "side",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// What counts as success and as a right-party contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Final outcomes that are conversions.
    pub success_outcomes: BTreeSet<String>,
    /// Final outcomes that do not by themselves show a right-party contact.
    pub not_right_party: BTreeSet<String>,
    /// Flow steps whose reach proves the right party was confirmed (e.g. the step after a
    /// successful identity check), whatever the outcome.
    pub identity_steps: BTreeSet<String>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        ReportOptions {
            success_outcomes: set(DEFAULT_SUCCESS_OUTCOMES),
            not_right_party: set(DEFAULT_NOT_RIGHT_PARTY),
            identity_steps: BTreeSet::new(),
        }
    }
}

/// Which calls a report covers and how it groups them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// Only this tenant's attempts (and their calls) are read.
    pub tenant: String,
    /// Attempts started at or after this instant (`None`: from the first).
    pub from: Option<DateTime<Utc>>,
    /// Attempts started before this instant (`None`: to the last).
    pub to: Option<DateTime<Utc>>,
    /// Only this campaign.
    pub campaign: Option<String>,
    /// Only calls of this flow (the call's flow, else its campaign's).
    pub flow: Option<String>,
    pub group_by: GroupBy,
    /// The zone hours and days are counted in.
    pub timezone: Tz,
    pub options: ReportOptions,
}

impl ReportQuery {
    /// Everything of `tenant`, by day in UTC, with the default options.
    pub fn new(tenant: &str) -> Self {
        ReportQuery {
            tenant: tenant.to_string(),
            from: None,
            to: None,
            campaign: None,
            flow: None,
            group_by: GroupBy::Day,
            timezone: Tz::UTC,
            options: ReportOptions::default(),
        }
    }
}

/// The figures of one group (or of the whole report).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupRow {
    /// The group's label: `2026-03-09`, `2026-03-09 23:00 -04:00`, a campaign, a flow, an
    /// agent, `robot`/`human`; `total` for the total row.
    pub group: String,
    pub attempts: u64,
    pub connects: u64,
    pub right_party: u64,
    pub conversions: u64,
    pub transfers: u64,
    pub abandons: u64,
    pub machines: u64,
    /// Sum of the connects' handle times (answered → ended).
    pub handle_ms: u64,
    /// Sum of the robot's time on the connects.
    pub robot_ms: u64,
    /// Sum of the agents' talk time on the transfers.
    pub agent_ms: u64,
    /// Sum of the per-call mean sentiment, over `sentiment_calls` calls.
    pub sentiment_sum: f64,
    pub sentiment_calls: u64,
    /// Final outcome → connects.
    pub outcomes: BTreeMap<String, u64>,
    /// Attempt disposition → attempts (`in_progress` while open).
    pub dispositions: BTreeMap<String, u64>,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl GroupRow {
    pub fn connect_rate(&self) -> Option<f64> {
        ratio(self.connects, self.attempts)
    }
    pub fn right_party_rate(&self) -> Option<f64> {
        ratio(self.right_party, self.connects)
    }
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.conversions, self.connects)
    }
    pub fn transfer_rate(&self) -> Option<f64> {
        ratio(self.transfers, self.connects)
    }
    pub fn abandon_rate(&self) -> Option<f64> {
        ratio(self.abandons, self.connects)
    }
    pub fn amd_rate(&self) -> Option<f64> {
        ratio(self.machines, self.connects)
    }
    /// Mean handle time of the connects, in milliseconds.
    pub fn mean_handle_ms(&self) -> Option<f64> {
        ratio(self.handle_ms, self.connects)
    }
    /// Mean robot time per connect, in milliseconds.
    pub fn mean_robot_ms(&self) -> Option<f64> {
        ratio(self.robot_ms, self.connects)
    }
    /// Mean agent talk time per transfer, in milliseconds.
    pub fn mean_agent_ms(&self) -> Option<f64> {
        ratio(self.agent_ms, self.transfers)
    }
    /// Mean of the per-call mean customer sentiment.
    pub fn mean_sentiment(&self) -> Option<f64> {
        (self.sentiment_calls > 0).then(|| self.sentiment_sum / self.sentiment_calls as f64)
    }
}

/// One step of a flow's funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelStep {
    pub step: String,
    /// Calls whose path reached the step (once per call).
    pub reached: u64,
    /// Calls whose path ended at the step.
    pub ended_here: u64,
}

impl FunnelStep {
    /// The share of the calls that reached the step and ended there.
    pub fn drop_off_rate(&self) -> Option<f64> {
        ratio(self.ended_here, self.reached)
    }
}

/// A flow's drop-off funnel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowFunnel {
    pub flow: String,
    /// Connects of this flow with a path.
    pub calls: u64,
    /// In path order.
    pub steps: Vec<FunnelStep>,
}

/// Which side of the call a row of the agents table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Robot,
    Human,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Robot => "robot",
            Side::Human => "human",
        }
    }
}

/// The robot, or one agent, in the side-by-side table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRow {
    pub side: Side,
    /// `robot`, or the agent's id.
    pub agent: String,
    /// Robot: every connect. Agent: the calls connected to them.
    pub calls: u64,
    /// Robot: its time on those calls; agent: talk time.
    pub handle_ms: u64,
    /// Agents: their calls' time in the queue before they took them.
    pub wait_ms: u64,
    /// Robot: conversions of calls that ended with the robot; agent: of their calls.
    pub conversions: u64,
    /// Robot: calls handed to agents.
    pub transfers: u64,
    /// Agents: their saved dispositions → calls.
    pub dispositions: BTreeMap<String, u64>,
}

impl AgentRow {
    pub fn mean_handle_ms(&self) -> Option<f64> {
        ratio(self.handle_ms, self.calls)
    }
    pub fn mean_wait_ms(&self) -> Option<f64> {
        match self.side {
            Side::Robot => None,
            Side::Human => ratio(self.wait_ms, self.calls),
        }
    }
    pub fn conversion_rate(&self) -> Option<f64> {
        ratio(self.conversions, self.calls)
    }
}

/// A finished report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub group_by: GroupBy,
    /// The zone's IANA name.
    pub timezone: String,
    /// One row per non-empty group, in order (time order for hours and days, else by name).
    pub rows: Vec<GroupRow>,
    /// All groups together.
    pub total: GroupRow,
    /// One per flow, by flow name.
    pub funnels: Vec<FlowFunnel>,
    /// The robot first, then the agents by id.
    pub agents: Vec<AgentRow>,
}

impl Report {
    /// Every outcome that appears in the report, sorted (the outcome columns of exports).
    pub fn outcome_names(&self) -> Vec<String> {
        self.total.outcomes.keys().cloned().collect()
    }

    /// Every attempt disposition that appears in the report, sorted.
    pub fn disposition_names(&self) -> Vec<String> {
        self.total.dispositions.keys().cloned().collect()
    }

    /// Every agent disposition that appears in the agents table, sorted.
    pub fn agent_disposition_names(&self) -> Vec<String> {
        let mut names: BTreeSet<&String> = BTreeSet::new();
        for a in &self.agents {
            names.extend(a.dispositions.keys());
        }
        names.into_iter().cloned().collect()
    }
}
