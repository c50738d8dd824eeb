//! Routing: matching Ready agents and waiting calls, offers, and the queues' waiting sets.

use std::cmp::Reverse;
use std::time::Instant;

use super::state::{Call, CallId, CallRank, IdleRank, Timer, qualifies};
use super::{AgentStatus, Output, QueueEngine, WithdrawReason};

impl QueueEngine {
    /// Takes back the call's offer (the call waits again); returns the agent, whose status the
    /// caller sets.
    pub(super) fn withdraw(
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
    pub(super) fn list_call(&mut self, id: CallId) {
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

    pub(super) fn unlist_call(&mut self, id: CallId) {
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
    pub(super) fn remove_call(&mut self, id: CallId) -> Option<Call> {
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

    pub(super) fn offer(&mut self, id: CallId, a: usize, now: Instant, out: &mut Vec<Output>) {
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

    pub(super) fn best_call_for(&self, a: usize, allow_refused: bool) -> Option<CallId> {
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

    pub(super) fn best_agent_for(&self, id: CallId) -> Option<usize> {
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
            call.max_wait_at = call.enqueued
                + call
                    .wait_limit
                    .map_or(config.max_wait, |l| l.min(config.max_wait));
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
