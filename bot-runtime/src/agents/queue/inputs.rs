//! The inputs' and timers' transitions of agents and calls.

use std::time::{Duration, Instant};

use super::state::{Agent, Bridged, Call, CallId, Timer, qualifies, transition};
use super::{
    AgentProfile, AgentStatus, CallKey, Output, QueueEngine, QueueError, REASON_LOGGED_IN,
    REASON_MISSED_OFFER, WithdrawReason, check_levels,
};

impl QueueEngine {
    pub(super) fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    pub(super) fn agent_ix(&self, id: &str) -> Result<usize, QueueError> {
        self.agent_ix
            .get(id)
            .copied()
            .ok_or_else(|| QueueError::UnknownAgent(id.to_string()))
    }

    /// A logged-in agent.
    pub(super) fn online(&self, id: &str) -> Result<usize, QueueError> {
        let a = self.agent_ix(id)?;
        if self.agents[a].status == AgentStatus::Offline {
            return Err(QueueError::NotLoggedIn(id.to_string()));
        }
        Ok(a)
    }

    /// Sets an agent's status, keeping the queues' Ready sets in step, and reports it.
    pub(super) fn set_status(
        &mut self,
        a: usize,
        status: AgentStatus,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
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
    pub(super) fn make_ready(&mut self, a: usize, now: Instant, out: &mut Vec<Output>) {
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
            wait_limit: None,
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
    pub(super) fn offered_to(&self, agent: &str, key: &str) -> Result<(usize, CallId), QueueError> {
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

    pub(super) fn finish_wrap_up(&mut self, a: usize, now: Instant, out: &mut Vec<Output>) {
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

    pub(super) fn overflow(&mut self, id: CallId, out: &mut Vec<Output>) {
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
    pub(super) fn leave(
        &mut self,
        id: CallId,
        reason: WithdrawReason,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if let Some(a) = self.withdraw(id, reason, out) {
            self.set_status(a, AgentStatus::Ready, now, out);
        }
    }

    pub(super) fn withdraw_from(
        &mut self,
        key: &str,
        reason: WithdrawReason,
        out: &mut Vec<Output>,
    ) {
        if let Some(&id) = self.call_ix.get(key) {
            self.withdraw(id, reason, out);
        }
    }
}
