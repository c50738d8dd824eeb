//! The engine's inner state and its transitions: agents, waiting calls, timers and dispatch.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{
    AgentProfile, AgentStatus, CallKey, Output, QueueConfig, QueueEngine, QueueError,
    REASON_LOGGED_IN, REASON_MISSED_OFFER, WithdrawReason, check_levels, status_name,
};

/// Internal id of a waiting call: its enqueue order.
pub(super) type CallId = u64;

/// Weight of a new handle time in a queue's average.
const AHT_ALPHA: f64 = 0.2;

/// A waiting call's place in its queue: higher priority, then longest waiting, then enqueue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct CallRank {
    priority: Reverse<u8>,
    pub(super) enqueued: Instant,
    id: CallId,
}

/// A Ready agent's place: longest idle first, then the order in which agents became Ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct IdleRank {
    since: Instant,
    seq: u64,
    agent: usize,
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
    waiting: BTreeSet<CallRank>,
    /// Unoffered calls of other queues overflowed into this one.
    overflow_in: BTreeSet<CallRank>,
    /// Every call of this queue still waiting, offered or not.
    pub(super) members: BTreeSet<CallRank>,
    /// Calls of other queues overflowed into this one, offered or not.
    pub(super) overflowed_in: usize,
    /// Ready agents qualified for this queue.
    ready: BTreeSet<IdleRank>,
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

    fn record_handle(&mut self, d: Duration) {
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
    idle: (Instant, u64),
    /// Queues the agent qualifies for.
    pub(super) qualified: Vec<usize>,
    logout_pending: bool,
    wrap_deadline: Option<Instant>,
    /// During wrap-up: the call's queue and when the call was connected.
    wrapping: Option<(usize, Instant)>,
    pub(super) calls_handled: u64,
    pub(super) talk_time: Duration,
    pub(super) rejected: u64,
    pub(super) missed: u64,
}

impl Agent {
    fn rank(&self, ix: usize) -> IdleRank {
        IdleRank {
            since: self.idle.0,
            seq: self.idle.1,
            agent: ix,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    key: CallKey,
    pub(super) queue: usize,
    priority: u8,
    enqueued: Instant,
    id: CallId,
    max_wait_at: Instant,
    overflow_at: Option<Instant>,
    /// The queue it overflowed into.
    overflowed_to: Option<usize>,
    offer: Option<(usize, Instant)>,
    /// Agents that rejected or missed it.
    refused: Vec<usize>,
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
    agent: usize,
    queue: usize,
    connected_at: Instant,
}

fn qualifies(profile: &AgentProfile, q: &QueueConfig) -> bool {
    q.required_skills
        .iter()
        .all(|(skill, min)| profile.skills.get(skill).is_some_and(|l| l >= min))
}

fn transition(agent: &Agent, input: &'static str) -> QueueError {
    QueueError::InvalidTransition {
        agent: agent.profile.id.clone(),
        input,
        status: status_name(&agent.status),
    }
}

impl QueueEngine {
    fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn agent_ix(&self, id: &str) -> Result<usize, QueueError> {
        self.agent_ix
            .get(id)
            .copied()
            .ok_or_else(|| QueueError::UnknownAgent(id.to_string()))
    }

    /// A logged-in agent.
    fn online(&self, id: &str) -> Result<usize, QueueError> {
        let a = self.agent_ix(id)?;
        if self.agents[a].status == AgentStatus::Offline {
            return Err(QueueError::NotLoggedIn(id.to_string()));
        }
        Ok(a)
    }

    /// Sets an agent's status, keeping the queues' Ready sets in step, and reports it.
    fn set_status(&mut self, a: usize, status: AgentStatus, now: Instant, out: &mut Vec<Output>) {
        let agent = &mut self.agents[a];
        let rank = agent.rank(a);
        if agent.status == AgentStatus::Ready {
            for &q in &agent.qualified {
                self.queues[q].ready.remove(&rank);
            }
        }
        if status == AgentStatus::Ready {
            for &q in &agent.qualified {
                self.queues[q].ready.insert(rank);
            }
            self.dirty_agents.push(a);
        }
        agent.status = status.clone();
        agent.since = now;
        out.push(Output::AgentChanged {
            agent: agent.profile.id.clone(),
            status,
        });
    }

    /// Ready at the back of the idle order.
    fn make_ready(&mut self, a: usize, now: Instant, out: &mut Vec<Output>) {
        let seq = self.seq();
        self.agents[a].idle = (now, seq);
        self.set_status(a, AgentStatus::Ready, now, out);
    }

    pub(super) fn login(
        &mut self,
        profile: AgentProfile,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        check_levels(&profile.skills)?;
        let qualified = (0..self.queues.len())
            .filter(|&q| qualifies(&profile, &self.queues[q].config))
            .collect();
        let a = match self.agent_ix.get(&profile.id) {
            Some(&a) => {
                let agent = &mut self.agents[a];
                if agent.status != AgentStatus::Offline {
                    return Err(QueueError::AlreadyLoggedIn(profile.id));
                }
                agent.profile = profile;
                agent.qualified = qualified;
                a
            }
            None => {
                let a = self.agents.len();
                self.agent_ix.insert(profile.id.clone(), a);
                self.agents.push(Agent {
                    profile,
                    status: AgentStatus::Offline,
                    since: now,
                    idle: (now, 0),
                    qualified,
                    logout_pending: false,
                    wrap_deadline: None,
                    wrapping: None,
                    calls_handled: 0,
                    talk_time: Duration::ZERO,
                    rejected: 0,
                    missed: 0,
                });
                a
            }
        };
        let reason = REASON_LOGGED_IN.to_string();
        self.set_status(a, AgentStatus::Paused { reason }, now, out);
        Ok(())
    }

    pub(super) fn logout(
        &mut self,
        id: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let a = self.online(id)?;
        match &self.agents[a].status {
            AgentStatus::OnCall { .. } | AgentStatus::WrapUp { .. } => {
                self.agents[a].logout_pending = true;
            }
            AgentStatus::Offered { call } => {
                let call = call.clone();
                self.withdraw_from(&call, WithdrawReason::AgentGone, out);
                self.set_status(a, AgentStatus::Offline, now, out);
            }
            _ => self.set_status(a, AgentStatus::Offline, now, out),
        }
        Ok(())
    }

    pub(super) fn ready(
        &mut self,
        id: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let a = self.online(id)?;
        match self.agents[a].status {
            AgentStatus::Ready | AgentStatus::Offered { .. } => {}
            AgentStatus::Paused { .. } => self.make_ready(a, now, out),
            AgentStatus::WrapUp { .. } => {
                self.agents[a].logout_pending = false;
                self.finish_wrap_up(a, now, out);
            }
            _ => return Err(transition(&self.agents[a], "go ready")),
        }
        Ok(())
    }

    pub(super) fn pause(
        &mut self,
        id: &str,
        reason: String,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let a = self.online(id)?;
        match &self.agents[a].status {
            AgentStatus::Ready | AgentStatus::Paused { .. } => {}
            AgentStatus::Offered { call } => {
                let call = call.clone();
                self.withdraw_from(&call, WithdrawReason::AgentGone, out);
            }
            _ => return Err(transition(&self.agents[a], "pause")),
        }
        self.set_status(a, AgentStatus::Paused { reason }, now, out);
        Ok(())
    }

    pub(super) fn disconnected(
        &mut self,
        id: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let a = self.agent_ix(id)?;
        match &self.agents[a].status {
            AgentStatus::Offline => return Ok(()),
            AgentStatus::Offered { call } => {
                let call = call.clone();
                self.withdraw_from(&call, WithdrawReason::AgentGone, out);
            }
            AgentStatus::WrapUp { .. } => {
                self.agents[a].logout_pending = true;
                self.finish_wrap_up(a, now, out);
                return Ok(());
            }
            _ => {}
        }
        self.agents[a].logout_pending = false;
        self.set_status(a, AgentStatus::Offline, now, out);
        Ok(())
    }

    pub(super) fn enqueue(
        &mut self,
        key: CallKey,
        queue: &str,
        priority: u8,
        now: Instant,
    ) -> Result<(), QueueError> {
        let q = *self
            .queue_ix
            .get(queue)
            .ok_or_else(|| QueueError::UnknownQueue(queue.to_string()))?;
        if self.call_ix.contains_key(&key) || self.bridged.contains_key(&key) {
            return Err(QueueError::CallAlreadyQueued(key));
        }
        let id = self.next_call;
        self.next_call += 1;
        let config = &self.queues[q].config;
        let call = Call {
            key: key.clone(),
            queue: q,
            priority,
            enqueued: now,
            id,
            max_wait_at: now + config.max_wait,
            overflow_at: config.overflow.as_ref().map(|o| now + o.after),
            overflowed_to: None,
            offer: None,
            refused: Vec::new(),
        };
        self.timers.insert((call.max_wait_at, Timer::MaxWait(id)));
        if let Some(at) = call.overflow_at {
            self.timers.insert((at, Timer::Overflow(id)));
        }
        let queue = &mut self.queues[q];
        queue.members.insert(call.rank());
        queue.stats.enqueued += 1;
        self.call_ix.insert(key, id);
        self.calls.insert(id, call);
        self.list_call(id);
        Ok(())
    }

    /// The waiting call `key` if it is offered to agent `a`.
    fn offered_to(&self, agent: &str, key: &str) -> Result<(usize, CallId), QueueError> {
        let a = self.agent_ix(agent)?;
        let not_offered = || QueueError::NotOffered {
            call: key.to_string(),
            agent: agent.to_string(),
        };
        let Some(&id) = self.call_ix.get(key) else {
            return Err(if self.bridged.contains_key(key) {
                not_offered()
            } else {
                QueueError::UnknownCall(key.to_string())
            });
        };
        match self.calls.get(&id).and_then(|c| c.offer) {
            Some((offered, _)) if offered == a => Ok((a, id)),
            _ => Err(not_offered()),
        }
    }

    pub(super) fn accept(
        &mut self,
        agent: &str,
        key: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let (a, id) = self.offered_to(agent, key)?;
        let Some(call) = self.remove_call(id) else {
            return Ok(());
        };
        let waited = now.saturating_duration_since(call.enqueued);
        let stats = &mut self.queues[call.queue].stats;
        stats.answered += 1;
        if waited <= self.service_level {
            stats.answered_in_sl += 1;
        }
        self.bridged.insert(
            call.key.clone(),
            Bridged {
                agent: a,
                queue: call.queue,
                connected_at: now,
            },
        );
        out.push(Output::Connect {
            call: call.key.clone(),
            agent: agent.to_string(),
        });
        self.set_status(a, AgentStatus::OnCall { call: call.key }, now, out);
        Ok(())
    }

    pub(super) fn reject(
        &mut self,
        agent: &str,
        key: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let (a, id) = self.offered_to(agent, key)?;
        self.withdraw(id, WithdrawReason::Rejected, out);
        self.agents[a].rejected += 1;
        self.make_ready(a, now, out);
        Ok(())
    }

    pub(super) fn abandon(
        &mut self,
        key: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let Some(&id) = self.call_ix.get(key) else {
            return Err(if self.bridged.contains_key(key) {
                QueueError::NotWaiting(key.to_string())
            } else {
                QueueError::UnknownCall(key.to_string())
            });
        };
        self.leave(id, WithdrawReason::Abandoned, now, out);
        if let Some(call) = self.remove_call(id) {
            self.queues[call.queue].stats.abandoned += 1;
        }
        Ok(())
    }

    pub(super) fn call_ended(
        &mut self,
        key: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let Some(b) = self.bridged.remove(key) else {
            return Err(if self.call_ix.contains_key(key) {
                QueueError::NotConnected(key.to_string())
            } else {
                QueueError::UnknownCall(key.to_string())
            });
        };
        let talk = now.saturating_duration_since(b.connected_at);
        let agent = &mut self.agents[b.agent];
        agent.calls_handled += 1;
        agent.talk_time += talk;
        let on_this_call = matches!(&agent.status, AgentStatus::OnCall { call } if call == key);
        if !on_this_call {
            // The agent disconnected during the call: no wrap-up to wait for.
            self.queues[b.queue].record_handle(talk);
            return Ok(());
        }
        agent.wrapping = Some((b.queue, b.connected_at));
        let wrap_up = self.queues[b.queue].config.wrap_up;
        let status = AgentStatus::WrapUp {
            call: key.to_string(),
        };
        self.set_status(b.agent, status, now, out);
        match wrap_up {
            Some(d) if d.is_zero() => self.finish_wrap_up(b.agent, now, out),
            Some(d) => {
                self.agents[b.agent].wrap_deadline = Some(now + d);
                self.timers.insert((now + d, Timer::WrapUp(b.agent)));
            }
            None => {}
        }
        Ok(())
    }

    pub(super) fn wrap_up_done(
        &mut self,
        id: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), QueueError> {
        let a = self.online(id)?;
        if !matches!(self.agents[a].status, AgentStatus::WrapUp { .. }) {
            return Err(transition(&self.agents[a], "end wrap-up"));
        }
        self.finish_wrap_up(a, now, out);
        Ok(())
    }

    fn finish_wrap_up(&mut self, a: usize, now: Instant, out: &mut Vec<Output>) {
        let agent = &mut self.agents[a];
        if let Some(at) = agent.wrap_deadline.take() {
            self.timers.remove(&(at, Timer::WrapUp(a)));
        }
        if let Some((q, connected)) = agent.wrapping.take() {
            self.queues[q].record_handle(now.saturating_duration_since(connected));
        }
        if std::mem::take(&mut agent.logout_pending) {
            self.set_status(a, AgentStatus::Offline, now, out);
        } else {
            self.make_ready(a, now, out);
        }
    }

    pub(super) fn fire(&mut self, timer: Timer, now: Instant, out: &mut Vec<Output>) {
        match timer {
            Timer::MaxWait(id) => {
                self.leave(id, WithdrawReason::GaveUp, now, out);
                if let Some(call) = self.remove_call(id) {
                    let queue = &mut self.queues[call.queue];
                    queue.stats.given_up += 1;
                    out.push(Output::GiveUp {
                        call: call.key,
                        queue: queue.config.name.clone(),
                        waited: now.saturating_duration_since(call.enqueued),
                    });
                }
            }
            Timer::OfferExpiry(id) => {
                if let Some(a) = self.withdraw(id, WithdrawReason::Timeout, out) {
                    self.agents[a].missed += 1;
                    let reason = REASON_MISSED_OFFER.to_string();
                    self.set_status(a, AgentStatus::Paused { reason }, now, out);
                }
            }
            Timer::Overflow(id) => self.overflow(id, out),
            Timer::WrapUp(a) => {
                self.agents[a].wrap_deadline = None;
                if matches!(self.agents[a].status, AgentStatus::WrapUp { .. }) {
                    self.finish_wrap_up(a, now, out);
                }
            }
        }
    }

    fn overflow(&mut self, id: CallId, out: &mut Vec<Output>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.overflow_at = None;
        let from = call.queue;
        let Some(to) = self.queues[from].overflow_to else {
            return;
        };
        let offered = call.offer.is_some();
        call.overflowed_to = Some(to);
        let (rank, key) = (call.rank(), call.key.clone());
        if !offered {
            self.queues[to].overflow_in.insert(rank);
            self.dirty_calls.push(id);
        }
        self.queues[to].overflowed_in += 1;
        self.queues[from].stats.overflowed += 1;
        out.push(Output::Overflowed {
            call: key,
            from: self.queues[from].config.name.clone(),
            to: self.queues[to].config.name.clone(),
        });
    }

    /// A call leaving the queue (abandon, give-up): its offer is withdrawn and the agent is Ready
    /// again at its old place in the idle order.
    fn leave(&mut self, id: CallId, reason: WithdrawReason, now: Instant, out: &mut Vec<Output>) {
        if let Some(a) = self.withdraw(id, reason, out) {
            self.set_status(a, AgentStatus::Ready, now, out);
        }
    }

    fn withdraw_from(&mut self, key: &str, reason: WithdrawReason, out: &mut Vec<Output>) {
        if let Some(&id) = self.call_ix.get(key) {
            self.withdraw(id, reason, out);
        }
    }

    /// Takes back the call's offer (the call waits again); returns the agent, whose status the
    /// caller sets.
    fn withdraw(
        &mut self,
        id: CallId,
        reason: WithdrawReason,
        out: &mut Vec<Output>,
    ) -> Option<usize> {
        let call = self.calls.get_mut(&id)?;
        let (a, expires) = call.offer.take()?;
        self.timers.remove(&(expires, Timer::OfferExpiry(id)));
        if matches!(reason, WithdrawReason::Rejected | WithdrawReason::Timeout)
            && !call.refused.contains(&a)
        {
            call.refused.push(a);
        }
        out.push(Output::OfferWithdrawn {
            call: call.key.clone(),
            agent: self.agents[a].profile.id.clone(),
            reason,
        });
        self.list_call(id);
        self.dirty_calls.push(id);
        Some(a)
    }

    /// Puts an unoffered call in its queues' waiting sets.
    fn list_call(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let rank = call.rank();
        self.queues[call.queue].waiting.insert(rank);
        if let Some(to) = call.overflowed_to {
            self.queues[to].overflow_in.insert(rank);
        }
        self.dirty_calls.push(id);
    }

    fn unlist_call(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let rank = call.rank();
        self.queues[call.queue].waiting.remove(&rank);
        if let Some(to) = call.overflowed_to {
            self.queues[to].overflow_in.remove(&rank);
        }
    }

    /// Forgets a waiting call (its offer, if any, must have been withdrawn or accepted).
    fn remove_call(&mut self, id: CallId) -> Option<Call> {
        self.unlist_call(id);
        let call = self.calls.remove(&id)?;
        self.call_ix.remove(&call.key);
        let queue = &mut self.queues[call.queue];
        queue.members.remove(&call.rank());
        if let Some(to) = call.overflowed_to {
            self.queues[to].overflowed_in -= 1;
        }
        self.timers.remove(&(call.max_wait_at, Timer::MaxWait(id)));
        if let Some(at) = call.overflow_at {
            self.timers.remove(&(at, Timer::Overflow(id)));
        }
        if let Some((_, expires)) = call.offer {
            self.timers.remove(&(expires, Timer::OfferExpiry(id)));
        }
        Some(call)
    }

    fn offer(&mut self, id: CallId, a: usize, now: Instant, out: &mut Vec<Output>) {
        self.unlist_call(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let queue = &mut self.queues[call.queue];
        let expires = now + queue.config.offer_timeout;
        queue.stats.offered += 1;
        call.offer = Some((a, expires));
        self.timers.insert((expires, Timer::OfferExpiry(id)));
        let key = call.key.clone();
        out.push(Output::Offer {
            call: key.clone(),
            agent: self.agents[a].profile.id.clone(),
            expires,
        });
        self.set_status(a, AgentStatus::Offered { call: key }, now, out);
    }

    /// Routes what changed since the last dispatch (see the invariant in the module docs):
    /// 1. agents that became Ready, longest idle first, take their best call not refused by them;
    /// 2. calls that became offerable, best first, go to the longest-idle eligible agent that
    ///    did not refuse them, else to one that did;
    /// 3. agents still Ready take their best call even if they refused it (no other eligible
    ///    agent is Ready for it, or step 2 would have offered it).
    pub(super) fn dispatch(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut agents = std::mem::take(&mut self.dirty_agents);
        agents.retain(|&a| self.agents[a].status == AgentStatus::Ready);
        agents.sort_by_key(|&a| self.agents[a].rank(a));
        agents.dedup();
        for &a in &agents {
            if self.agents[a].status == AgentStatus::Ready
                && let Some(id) = self.best_call_for(a, false)
            {
                self.offer(id, a, now, out);
            }
        }

        let mut calls = std::mem::take(&mut self.dirty_calls);
        calls.retain(|id| self.calls.get(id).is_some_and(|c| c.offer.is_none()));
        calls.sort_by_key(|id| {
            self.calls
                .get(id)
                .map(|c| (Reverse(self.queues[c.queue].config.priority), c.rank()))
        });
        calls.dedup();
        for id in calls {
            if let Some(a) = self.best_agent_for(id) {
                self.offer(id, a, now, out);
            }
        }

        for &a in &agents {
            if self.agents[a].status == AgentStatus::Ready
                && let Some(id) = self.best_call_for(a, true)
            {
                self.offer(id, a, now, out);
            }
        }
        // Offers made above only removed agents and calls: nothing new to route.
        self.dirty_agents.clear();
        self.dirty_calls.clear();
    }

    fn best_call_for(&self, a: usize, allow_refused: bool) -> Option<CallId> {
        let acceptable = |r: &&CallRank| {
            allow_refused
                || self
                    .calls
                    .get(&r.id)
                    .is_some_and(|c| !c.refused.contains(&a))
        };
        let mut best: Option<(Reverse<u8>, CallRank)> = None;
        for &q in &self.agents[a].qualified {
            let queue = &self.queues[q];
            for set in [&queue.waiting, &queue.overflow_in] {
                if let Some(r) = set.iter().find(acceptable) {
                    let key = (Reverse(queue.config.priority), *r);
                    if best.is_none_or(|b| key < b) {
                        best = Some(key);
                    }
                }
            }
        }
        best.map(|(_, r)| r.id)
    }

    fn best_agent_for(&self, id: CallId) -> Option<usize> {
        let call = self.calls.get(&id)?;
        let mut preferred: Option<IdleRank> = None;
        let mut any: Option<IdleRank> = None;
        for q in std::iter::once(call.queue).chain(call.overflowed_to) {
            let ready = &self.queues[q].ready;
            if let Some(&first) = ready.first() {
                any = Some(any.map_or(first, |r| r.min(first)));
            }
            if let Some(&r) = ready.iter().find(|r| !call.refused.contains(&r.agent)) {
                preferred = Some(preferred.map_or(r, |p| p.min(r)));
            }
        }
        preferred.or(any).map(|r| r.agent)
    }

    /// After a queue's configuration changed: its waiting calls' give-up and overflow timers.
    pub(super) fn reschedule_queue(&mut self, q: usize) {
        let config = &self.queues[q].config;
        for (&id, call) in self.calls.iter_mut().filter(|(_, c)| c.queue == q) {
            self.timers.remove(&(call.max_wait_at, Timer::MaxWait(id)));
            call.max_wait_at = call.enqueued + config.max_wait;
            self.timers.insert((call.max_wait_at, Timer::MaxWait(id)));
            if let Some(at) = call.overflow_at.take() {
                self.timers.remove(&(at, Timer::Overflow(id)));
            }
            if call.overflowed_to.is_none()
                && let Some(o) = &config.overflow
            {
                let at = call.enqueued + o.after;
                call.overflow_at = Some(at);
                self.timers.insert((at, Timer::Overflow(id)));
            }
        }
    }

    /// Recomputes which queues each agent qualifies for and marks everything for routing.
    pub(super) fn requalify_all(&mut self) {
        for queue in &mut self.queues {
            queue.ready.clear();
        }
        for (a, agent) in self.agents.iter_mut().enumerate() {
            agent.qualified = (0..self.queues.len())
                .filter(|&q| qualifies(&agent.profile, &self.queues[q].config))
                .collect();
            if agent.status == AgentStatus::Ready {
                for &q in &agent.qualified {
                    self.queues[q].ready.insert(agent.rank(a));
                }
                self.dirty_agents.push(a);
            }
        }
        let mut unoffered: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| c.offer.is_none())
            .map(|c| c.id)
            .collect();
        unoffered.sort_unstable();
        self.dirty_calls.extend(unoffered);
    }
}
