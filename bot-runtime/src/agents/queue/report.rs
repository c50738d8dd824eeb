//! What a supervisor's wallboard shows: per-queue and per-agent figures, and the estimated wait.

use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

use super::{AgentId, AgentStatus, DEFAULT_HANDLE_TIME, QueueEngine};

/// The engine's state at one instant. Durations serialize as whole milliseconds (`*_ms`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The service-level threshold the queues' `service_level` refers to.
    #[serde(rename = "service_level_threshold_ms", serialize_with = "ms")]
    pub service_level_threshold: Duration,
    /// Per queue, in the order they were added.
    pub queues: Vec<QueueView>,
    /// Per agent that ever logged in, in first-login order.
    pub agents: Vec<AgentView>,
}

/// One queue on the wallboard. Counters are cumulative since the engine started and count the
/// queue's own calls (an overflowed call counts in its original queue).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueView {
    /// The queue's name.
    pub name: String,
    /// Its priority.
    pub priority: u8,
    /// Its calls waiting now (offered or not).
    pub waiting: usize,
    /// Calls of other queues overflowed into this one, waiting now.
    pub overflowed_in: usize,
    /// How long its longest-waiting call has waited.
    #[serde(rename = "longest_wait_ms", serialize_with = "ms")]
    pub longest_wait: Duration,
    /// [`QueueEngine::estimated_wait`] now.
    #[serde(rename = "estimated_wait_ms", serialize_with = "opt_ms")]
    pub estimated_wait: Option<Duration>,
    /// Its average handle time (talk + wrap-up), None before its first handled call.
    #[serde(rename = "average_handle_time_ms", serialize_with = "opt_ms")]
    pub average_handle_time: Option<Duration>,
    /// Logged-in agents that qualify for it.
    pub agents_qualified: usize,
    /// Of those, Ready.
    pub agents_ready: usize,
    /// Of those, offered a call, on a call or in wrap-up.
    pub agents_busy: usize,
    /// Of those, paused.
    pub agents_paused: usize,
    /// Calls enqueued.
    pub enqueued: u64,
    /// Offers made (a call offered three times counts three).
    pub offered: u64,
    /// Calls connected to an agent.
    pub answered: u64,
    /// Of those, within the service-level threshold.
    pub answered_within_threshold: u64,
    /// Calls the customer hung up while waiting.
    pub abandoned: u64,
    /// Calls that reached max_wait.
    pub given_up: u64,
    /// Calls that overflowed to another queue.
    pub overflowed: u64,
    /// % of finished calls (answered + abandoned + given up) answered within the threshold;
    /// None before the first.
    pub service_level: Option<f64>,
}

/// One agent on the wallboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// The agent's id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Status now.
    pub status: AgentStatus,
    /// How long the agent has been in this status.
    #[serde(rename = "in_status_ms", serialize_with = "ms")]
    pub in_status: Duration,
    /// Calls handled (ended after being connected).
    pub calls_handled: u64,
    /// Total talk time of those calls.
    #[serde(rename = "talk_time_ms", serialize_with = "ms")]
    pub talk_time: Duration,
    /// Offers rejected.
    pub offers_rejected: u64,
    /// Offers that timed out.
    pub offers_missed: u64,
    /// The queues the agent qualifies for, in queue order.
    pub queues: Vec<String>,
}

fn millis(d: &Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(millis(d))
}

fn opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&millis(d)),
        None => s.serialize_none(),
    }
}

impl QueueEngine {
    /// Estimated wait for a call joining `queue` now (formula in the [module docs](super));
    /// None for an unknown queue or when no qualified agent is logged in. The estimate does not
    /// depend on `now` today; the parameter keeps room for time-based corrections.
    pub fn estimated_wait(&self, queue: &str, now: Instant) -> Option<Duration> {
        let _ = now;
        let q = *self.queue_ix.get(queue)?;
        let logged_in = self
            .agents
            .iter()
            .filter(|a| a.status != AgentStatus::Offline && a.qualified.contains(&q))
            .count();
        if logged_in == 0 {
            return None;
        }
        let queue = &self.queues[q];
        let ahead = queue.members.len() + queue.overflowed_in;
        let free = queue.ready_count();
        if free > ahead {
            return Some(Duration::ZERO);
        }
        let aht = queue
            .stats
            .aht
            .map_or(DEFAULT_HANDLE_TIME, Duration::from_secs_f64);
        let calls = u32::try_from(ahead - free + 1).unwrap_or(u32::MAX);
        let agents = u32::try_from(logged_in).unwrap_or(u32::MAX);
        Some(aht.saturating_mul(calls) / agents)
    }

    /// The wallboard's figures at `now`.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let queues = self
            .queues
            .iter()
            .enumerate()
            .map(|(q, queue)| {
                let (mut qualified, mut ready, mut busy, mut paused) = (0, 0, 0, 0);
                for agent in self.agents.iter().filter(|a| a.qualified.contains(&q)) {
                    match agent.status {
                        AgentStatus::Offline => continue,
                        AgentStatus::Ready => ready += 1,
                        AgentStatus::Paused { .. } => paused += 1,
                        _ => busy += 1,
                    }
                    qualified += 1;
                }
                let s = &queue.stats;
                let finished = s.answered + s.abandoned + s.given_up;
                let longest_wait = queue
                    .members
                    .iter()
                    .map(|r| r.enqueued)
                    .min()
                    .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
                QueueView {
                    name: queue.config.name.clone(),
                    priority: queue.config.priority,
                    waiting: queue.members.len(),
                    overflowed_in: queue.overflowed_in,
                    longest_wait,
                    estimated_wait: self.estimated_wait(&queue.config.name, now),
                    average_handle_time: s.aht.map(Duration::from_secs_f64),
                    agents_qualified: qualified,
                    agents_ready: ready,
                    agents_busy: busy,
                    agents_paused: paused,
                    enqueued: s.enqueued,
                    offered: s.offered,
                    answered: s.answered,
                    answered_within_threshold: s.answered_in_sl,
                    abandoned: s.abandoned,
                    given_up: s.given_up,
                    overflowed: s.overflowed,
                    service_level: (finished > 0)
                        .then(|| s.answered_in_sl as f64 * 100.0 / finished as f64),
                }
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .map(|a| AgentView {
                id: a.profile.id.clone(),
                name: a.profile.name.clone(),
                status: a.status.clone(),
                in_status: now.saturating_duration_since(a.since),
                calls_handled: a.calls_handled,
                talk_time: a.talk_time,
                offers_rejected: a.rejected,
                offers_missed: a.missed,
                queues: self
                    .queues
                    .iter()
                    .enumerate()
                    .filter(|(q, _)| a.qualified.contains(q))
                    .map(|(_, queue)| queue.config.name.clone())
                    .collect(),
            })
            .collect();
        Snapshot {
            service_level_threshold: self.service_level,
            queues,
            agents,
        }
    }
}
