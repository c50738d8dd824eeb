//! The engine's inner state: queues, agents, waiting and bridged calls, their orderings.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{AgentProfile, AgentStatus, CallKey, QueueConfig, QueueError, status_name};

pub(super) type CallId = u64;

/// Weight of a new handle time in a queue's average.
const AHT_ALPHA: f64 = 0.2;

/// A waiting call's place in its queue: higher priority, then longest waiting, then enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CallRank {
    pub(super) priority: Reverse<u8>,
    pub(super) enqueued: Instant,
    pub(super) id: CallId,
}

/// A Ready agent's place: longest idle first, then the order in which agents became Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct IdleRank {
    pub(super) since: Instant,
    pub(super) seq: u64,
    pub(super) agent: usize,
}

/// Timers fire in (instant, kind) order: at one instant a give-up comes before an offer timeout,
/// so the agent is not paused for a call that is leaving anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    MaxWait(CallId),
    OfferExpiry(CallId),
    Overflow(CallId),
    WrapUp(usize),
}

#[derive(Debug, Clone)]
pub(super) struct QueueState {
    pub(super) config: QueueConfig,
    pub(super) overflow_to: Option<usize>,
    /// Unoffered calls of this queue.
    pub(super) waiting: BTreeSet<CallRank>,
    /// Unoffered calls of other queues overflowed into this one.
    pub(super) overflow_in: BTreeSet<CallRank>,
    /// Every call of this queue still waiting, offered or not.
    pub(super) members: BTreeSet<CallRank>,
    /// Calls of other queues overflowed into this one, offered or not.
    pub(super) overflowed_in: usize,
    /// Ready agents qualified for this queue.
    pub(super) ready: BTreeSet<IdleRank>,
    pub(super) stats: QueueStats,
}

/// Cumulative figures of a queue (for its own calls).
#[derive(Debug, Clone, Default)]
pub(super) struct QueueStats {
    pub(super) enqueued: u64,
    pub(super) offered: u64,
    pub(super) answered: u64,
    pub(super) answered_in_sl: u64,
    pub(super) abandoned: u64,
    pub(super) given_up: u64,
    pub(super) overflowed: u64,
    /// Average handle time in seconds (talk + wrap-up), None before the first call.
    pub(super) aht: Option<f64>,
}

impl QueueState {
    pub(super) fn new(config: QueueConfig) -> Self {
        Self {
            config,
            overflow_to: None,
            waiting: BTreeSet::new(),
            overflow_in: BTreeSet::new(),
            members: BTreeSet::new(),
            overflowed_in: 0,
            ready: BTreeSet::new(),
            stats: QueueStats::default(),
        }
    }

    pub(super) fn ready_count(&self) -> usize {
        self.ready.len()
    }

    pub(super) fn record_handle(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        self.stats.aht = Some(match self.stats.aht {
            None => s,
            Some(a) => a + AHT_ALPHA * (s - a),
        });
    }
}

#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub(super) profile: AgentProfile,
    pub(super) status: AgentStatus,
    pub(super) since: Instant,
    /// When and in which order the agent last became idle (meaningful while Ready or Offered).
    pub(super) idle: (Instant, u64),
    /// Queues the agent qualifies for.
    pub(super) qualified: Vec<usize>,
    pub(super) logout_pending: bool,
    pub(super) wrap_deadline: Option<Instant>,
    /// During wrap-up: the call's queue and when the call was connected.
    pub(super) wrapping: Option<(usize, Instant)>,
    pub(super) calls_handled: u64,
    pub(super) talk_time: Duration,
    pub(super) rejected: u64,
    pub(super) missed: u64,
}

impl Agent {
    pub(super) fn rank(&self, ix: usize) -> IdleRank {
        IdleRank {
            since: self.idle.0,
            seq: self.idle.1,
            agent: ix,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) key: CallKey,
    pub(super) queue: usize,
    pub(super) priority: u8,
    pub(super) enqueued: Instant,
    pub(super) id: CallId,
    pub(super) max_wait_at: Instant,
    /// A shorter wait than the queue's `max_wait` for this call ([`super::QueueEngine::limit_wait`]).
    pub(super) wait_limit: Option<Duration>,
    pub(super) overflow_at: Option<Instant>,
    /// The queue it overflowed into.
    pub(super) overflowed_to: Option<usize>,
    pub(super) offer: Option<(usize, Instant)>,
    /// Agents that rejected or missed it.
    pub(super) refused: Vec<usize>,
}

impl Call {
    pub(super) fn rank(&self) -> CallRank {
        CallRank {
            priority: Reverse(self.priority),
            enqueued: self.enqueued,
            id: self.id,
        }
    }
}

/// A call bridged to an agent, until CallEnded.
#[derive(Debug, Clone)]
pub(super) struct Bridged {
    pub(super) agent: usize,
    pub(super) queue: usize,
    pub(super) connected_at: Instant,
}

pub(super) fn qualifies(profile: &AgentProfile, q: &QueueConfig) -> bool {
    q.required_skills
        .iter()
        .all(|(skill, min)| profile.skills.get(skill).is_some_and(|l| l >= min))
}

pub(super) fn transition(agent: &Agent, input: &'static str) -> QueueError {
    QueueError::InvalidTransition {
        agent: agent.profile.id.clone(),
        input,
        status: status_name(&agent.status),
    }
}
