//! The queue engine: routes calls transferred by the robot to human agents, sans-IO.
//!
//! [`QueueEngine`] is a pure state machine in the style of str0m: [`Input`]s and the current
//! time go in ([`QueueEngine::handle`], [`QueueEngine::on_timer`]), [`Output`]s come out, and
//! [`QueueEngine::next_deadline`] says when to call `on_timer` next. It never reads a clock, does
//! no I/O and holds no locks; the tokio service around it moves events and timers.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//! use bot_runtime::agents::queue::{AgentProfile, Input, Output, QueueConfig, QueueEngine};
//!
//! let cards = QueueConfig {
//!     name: "cards".into(),
//!     required_skills: BTreeMap::from([("cards".to_string(), 3)]),
//!     priority: 5,
//!     offer_timeout: Duration::from_secs(15),
//!     max_wait: Duration::from_secs(300),
//!     overflow: None,
//!     wrap_up: Some(Duration::from_secs(30)),
//! };
//! let mut engine = QueueEngine::new(vec![cards])?;
//! let t0 = Instant::now();
//! let skills = BTreeMap::from([("cards".to_string(), 5)]);
//! let anna = AgentProfile { id: "anna".into(), name: "Anna".into(), skills };
//! engine.handle(Input::Login { agent: anna }, t0)?;
//! engine.handle(Input::Ready { agent: "anna".into() }, t0)?;
//! let call = Input::Enqueue { call: "c1".into(), queue: "cards".into(), priority: 0 };
//! let out = engine.handle(call, t0)?;
//! assert!(matches!(&out[0], Output::Offer { agent, .. } if agent == "anna"));
//! let accept = Input::Accept { agent: "anna".into(), call: "c1".into() };
//! let out = engine.handle(accept, t0 + Duration::from_secs(3))?;
//! assert!(matches!(&out[0], Output::Connect { .. }));
//! # Ok::<(), bot_runtime::agents::queue::QueueError>(())
//! ```
//!
//! # Routing
//! - An agent *qualifies* for a queue when it has every required skill of the queue at or above
//!   the level. A call is *eligible* for the agents of its queue and, once overflowed, for the
//!   agents of the overflow queue too.
//! - A waiting call goes to the *longest-idle* Ready agent eligible for it (idle since the agent
//!   last became Ready: from a pause, at the end of wrap-up, or after rejecting an offer, which
//!   puts it at the back). Ties: the order in which agents became Ready.
//! - An agent that becomes Ready gets the best eligible waiting call: highest queue priority (for
//!   an overflowed call, the priority of the queue through which the agent qualifies), then
//!   highest call priority, then longest waiting (an overflowed call keeps its enqueue time),
//!   then enqueue order.
//! - One offer per call and one per agent at a time. An agent that rejected or missed a call is
//!   offered that call again only when no other eligible agent is Ready.
//! - The engine keeps the invariant "no Ready agent and unoffered call are eligible for each
//!   other" after every `handle`/`on_timer`, so each event only routes what it changed.
//!
//! # Offers
//! - [`Input::Accept`] → [`Output::Connect`], the agent is OnCall.
//! - [`Input::Reject`] → `OfferWithdrawn { Rejected }`; the agent stays Ready (at the back of the
//!   idle order) and the call goes to the next agent.
//! - No answer within the queue's `offer_timeout` → `OfferWithdrawn { Timeout }`, the agent is
//!   `Paused { reason: "missed offer" }` and the call is re-offered.
//! - Disconnected, Logout or Pause during an offer → `OfferWithdrawn { AgentGone }`, re-offer.
//! - Abandon during an offer → `OfferWithdrawn { Abandoned }`; `max_wait` reached during an offer
//!   → `OfferWithdrawn { GaveUp }`. In both the agent is Ready again at its old place.
//! - The offer timeout, max wait, overflow and wrap-up that apply are those of the call's own
//!   queue, even when an overflow agent takes it; its statistics also count in its own queue.
//!
//! # Waiting
//! - Enqueue works whether or not an agent can serve the queue: the call waits and `max_wait`
//!   applies (then [`Output::GiveUp`]). A service that prefers to fall back at once checks
//!   [`QueueEngine::estimated_wait`] first, which is `None` when no qualified agent is logged in.
//! - [`QueueEngine::limit_wait`] shortens one call's wait below its queue's `max_wait` (the
//!   dialer's safe harbour for human campaigns).
//! - After `overflow.after` the call is also eligible for the overflow queue's agents
//!   ([`Output::Overflowed`]); one hop only (the overflow queue's own overflow is not followed).
//!
//! # Agents
//! - Login → `Paused { reason: "logged in" }`; Ready must follow. Ready from WrapUp ends the
//!   wrap-up (and cancels a pending logout). Ready while Ready or Offered changes nothing.
//! - CallEnded → WrapUp, ended by the queue's `wrap_up` timer or [`Input::WrapUpDone`]
//!   (`Some(ZERO)`: at once) → Ready, or Offline when a Logout came during the call/wrap-up.
//! - Disconnected → Offline at once, whatever the state; a bridged call stays known until its
//!   CallEnded (counted in the agent's figures, no wrap-up). Disconnected while Offline is a
//!   no-op, so repeated notices are harmless.
//! - [`Output::AgentChanged`] is emitted on every status change.
//!
//! # Estimated wait
//! For a call joining queue `q` now: `ahead` = calls waiting in `q` (offered or not, its own and
//! those overflowed into it), `free` = Ready qualified agents, `n` = qualified agents logged in
//! (Paused included: they are expected back), `aht` = the queue's average handle time (talk +
//! wrap-up, exponentially weighted, α = 0.2, [`DEFAULT_HANDLE_TIME`] before the first call).
//! EWT = 0 when `free > ahead`, else `(ahead − free + 1) × aht / n`; `None` when `n = 0`.
//!
//! # Determinism
//! Every choice is a strict order over (time, sequence number): the same inputs at the same
//! instants give the same outputs, which the tests and the bench rely on.

mod inputs;
mod report;
mod routing;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use report::{AgentView, QueueView, Snapshot};

use state::{Agent, Bridged, Call, CallId, QueueState, Timer};

/// An agent's id (as the agent console knows it).
pub type AgentId = String;
/// A call's id.
pub type CallKey = String;

/// Average handle time assumed for a queue before any of its calls has been handled.
pub const DEFAULT_HANDLE_TIME: Duration = Duration::from_secs(180);
/// Default service-level threshold: a call answered within it counts as "in service level".
pub const DEFAULT_SERVICE_LEVEL_THRESHOLD: Duration = Duration::from_secs(20);
/// Pause reason after Login.
pub const REASON_LOGGED_IN: &str = "logged in";
/// Pause reason after an offer timed out.
pub const REASON_MISSED_OFFER: &str = "missed offer";

/// A queue of the contact centre.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Unique name, as the flows' transfers name it.
    pub name: String,
    /// skill -> minimum level (1..=10) an agent needs; empty = anyone.
    pub required_skills: BTreeMap<String, u8>,
    /// Weight of this queue when one agent qualifies for several queues with waiting calls
    /// (higher first).
    pub priority: u8,
    /// How long an agent has to accept an offer.
    pub offer_timeout: Duration,
    /// After this long waiting, the call leaves the queue (GiveUp → the flow's fallback).
    pub max_wait: Duration,
    /// After `after` waiting, also offer the call to the agents of queue `to`.
    pub overflow: Option<Overflow>,
    /// Wrap-up time after a call before the agent is ready again (None: the agent ends wrap-up
    /// themself).
    pub wrap_up: Option<Duration>,
}

/// Overflow of a queue's waiting calls to another queue's agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overflow {
    /// How long a call waits before it overflows (non-zero, below the queue's `max_wait`).
    pub after: Duration,
    /// The queue whose agents then also get the call.
    pub to: String,
}

/// Who an agent is and what they can handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// The agent's id.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// skill -> level (1..=10).
    pub skills: BTreeMap<String, u8>,
}

/// Where an agent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentStatus {
    /// Not logged in (or connection lost).
    Offline,
    /// Waiting for a call.
    Ready,
    /// A call is being offered, waiting for Accept/Reject.
    Offered {
        /// The call offered.
        call: CallKey,
    },
    /// Talking to a customer.
    OnCall {
        /// The bridged call.
        call: CallKey,
    },
    /// After-call work.
    WrapUp {
        /// The call just ended.
        call: CallKey,
    },
    /// Logged in, not taking calls.
    Paused {
        /// Why ([`REASON_LOGGED_IN`], [`REASON_MISSED_OFFER`] or the agent's own).
        reason: String,
    },
}

/// An event for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The agent logs in → `Paused { reason: "logged in" }` (the agent must go Ready explicitly).
    Login {
        /// Who.
        agent: AgentProfile,
    },
    /// The agent logs out; while on a call or in wrap-up it takes effect after it.
    Logout {
        /// Who.
        agent: AgentId,
    },
    /// The agent is ready for calls.
    Ready {
        /// Who.
        agent: AgentId,
    },
    /// The agent stops taking calls.
    Pause {
        /// Who.
        agent: AgentId,
        /// Shown on the wallboard.
        reason: String,
    },
    /// The agent's console or phone was lost: any offer is withdrawn, the agent is Offline.
    Disconnected {
        /// Who.
        agent: AgentId,
    },
    /// A call joins a queue.
    Enqueue {
        /// The call.
        call: CallKey,
        /// The queue's name.
        queue: String,
        /// Higher first within a queue.
        priority: u8,
    },
    /// The agent takes the call offered to them.
    Accept {
        /// Who.
        agent: AgentId,
        /// The call offered.
        call: CallKey,
    },
    /// The agent declines the call offered to them.
    Reject {
        /// Who.
        agent: AgentId,
        /// The call offered.
        call: CallKey,
    },
    /// The customer hung up while waiting or being offered.
    Abandon {
        /// The call.
        call: CallKey,
    },
    /// The bridged call is over → the agent goes to wrap-up.
    CallEnded {
        /// The call.
        call: CallKey,
    },
    /// The agent ends their wrap-up.
    WrapUpDone {
        /// Who.
        agent: AgentId,
    },
}

/// Why an offer was taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawReason {
    /// The agent did not answer within `offer_timeout`.
    Timeout,
    /// The agent rejected it.
    Rejected,
    /// The customer hung up.
    Abandoned,
    /// The agent disconnected, logged out or paused.
    AgentGone,
    /// The call reached its queue's `max_wait` (a [`Output::GiveUp`] follows).
    GaveUp,
}

/// What the service must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Ring the agent's console with the call until `expires`.
    Offer {
        /// The call.
        call: CallKey,
        /// The agent.
        agent: AgentId,
        /// When the offer times out.
        expires: Instant,
    },
    /// Stop ringing the agent's console.
    OfferWithdrawn {
        /// The call.
        call: CallKey,
        /// The agent.
        agent: AgentId,
        /// Why.
        reason: WithdrawReason,
    },
    /// The offer was accepted: bridge the customer to the agent.
    Connect {
        /// The call.
        call: CallKey,
        /// The agent.
        agent: AgentId,
    },
    /// The call is now also offered to the agents of queue `to`.
    Overflowed {
        /// The call.
        call: CallKey,
        /// Its queue.
        from: String,
        /// The overflow queue.
        to: String,
    },
    /// Nobody took the call within `max_wait`: it left the queue (the flow's fallback runs).
    GiveUp {
        /// The call.
        call: CallKey,
        /// Its queue.
        queue: String,
        /// How long it waited.
        waited: Duration,
    },
    /// The agent's status changed.
    AgentChanged {
        /// Who.
        agent: AgentId,
        /// The new status.
        status: AgentStatus,
    },
}

/// A rejected configuration or input. An `Err` from the engine changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// Two queues with one name.
    #[error("duplicate queue {0:?}")]
    DuplicateQueue(String),
    /// A queue without a name.
    #[error("a queue has an empty name")]
    EmptyQueueName,
    /// The overflow target does not exist.
    #[error("queue {queue:?} overflows to unknown queue {to:?}")]
    UnknownOverflowTarget {
        /// The queue.
        queue: String,
        /// Its overflow target.
        to: String,
    },
    /// A queue overflows to itself.
    #[error("queue {0:?} overflows to itself")]
    OverflowToItself(String),
    /// The overflow would never happen before the give-up.
    #[error("queue {0:?}: overflow.after must be below max_wait")]
    OverflowAfterMaxWait(String),
    /// A duration that must be positive is zero.
    #[error("queue {queue:?}: {field} must not be zero")]
    ZeroDuration {
        /// The queue.
        queue: String,
        /// The field.
        field: &'static str,
    },
    /// A skill level outside 1..=10.
    #[error("skill {skill:?} has level {level}, outside 1..=10")]
    SkillLevelOutOfRange {
        /// The skill.
        skill: String,
        /// The level given.
        level: u8,
    },
    /// No queue of that name.
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    /// No agent of that id ever logged in.
    #[error("unknown agent {0:?}")]
    UnknownAgent(AgentId),
    /// No call of that id is waiting or bridged.
    #[error("unknown call {0:?}")]
    UnknownCall(CallKey),
    /// The agent is already logged in.
    #[error("agent {0:?} is already logged in")]
    AlreadyLoggedIn(AgentId),
    /// The agent is Offline.
    #[error("agent {0:?} is not logged in")]
    NotLoggedIn(AgentId),
    /// The call is already waiting or bridged.
    #[error("call {0:?} is already queued or connected")]
    CallAlreadyQueued(CallKey),
    /// Accept/Reject of a call not offered to that agent.
    #[error("call {call:?} is not offered to agent {agent:?}")]
    NotOffered {
        /// The call.
        call: CallKey,
        /// The agent.
        agent: AgentId,
    },
    /// CallEnded of a call that is waiting, not bridged.
    #[error("call {0:?} is not connected")]
    NotConnected(CallKey),
    /// Abandon of a call already bridged (that is a CallEnded).
    #[error("call {0:?} is connected, not waiting")]
    NotWaiting(CallKey),
    /// The input does not apply in the agent's status.
    #[error("agent {agent:?} cannot {input} while {status}")]
    InvalidTransition {
        /// The agent.
        agent: AgentId,
        /// The input's name.
        input: &'static str,
        /// The status's name.
        status: &'static str,
    },
}

/// The queue engine: queues, agents and waiting calls. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct QueueEngine {
    queues: Vec<QueueState>,
    queue_ix: HashMap<String, usize>,
    /// In first-login order; never removed (an Offline agent keeps its figures).
    agents: Vec<Agent>,
    agent_ix: HashMap<AgentId, usize>,
    /// Waiting calls (offered or not), by internal id (= enqueue order).
    calls: HashMap<CallId, Call>,
    call_ix: HashMap<CallKey, CallId>,
    bridged: HashMap<CallKey, Bridged>,
    timers: BTreeSet<(Instant, Timer)>,
    /// Agents that became Ready and calls that became unoffered or newly eligible: the only
    /// ones the next dispatch has to route.
    dirty_agents: Vec<usize>,
    dirty_calls: Vec<CallId>,
    next_call: CallId,
    next_seq: u64,
    last_now: Option<Instant>,
    service_level: Duration,
}

impl QueueEngine {
    /// An engine with these queues and no agents; validates them (see [`QueueError`]).
    pub fn new(queues: Vec<QueueConfig>) -> Result<Self, QueueError> {
        let mut names = BTreeSet::new();
        for q in &queues {
            if !names.insert(q.name.as_str()) {
                return Err(QueueError::DuplicateQueue(q.name.clone()));
            }
        }
        for q in &queues {
            validate(q, |name| names.contains(name))?;
        }
        let mut engine = Self {
            queues: Vec::with_capacity(queues.len()),
            queue_ix: HashMap::new(),
            agents: Vec::new(),
            agent_ix: HashMap::new(),
            calls: HashMap::new(),
            call_ix: HashMap::new(),
            bridged: HashMap::new(),
            timers: BTreeSet::new(),
            dirty_agents: Vec::new(),
            dirty_calls: Vec::new(),
            next_call: 0,
            next_seq: 0,
            last_now: None,
            service_level: DEFAULT_SERVICE_LEVEL_THRESHOLD,
        };
        for q in queues {
            engine.queue_ix.insert(q.name.clone(), engine.queues.len());
            engine.queues.push(QueueState::new(q));
        }
        for i in 0..engine.queues.len() {
            engine.link_overflow(i);
        }
        Ok(engine)
    }

    /// The same engine with another service-level threshold (default 20 s).
    #[must_use]
    pub fn with_service_level_threshold(mut self, threshold: Duration) -> Self {
        self.service_level = threshold;
        self
    }

    /// Adds a queue or replaces the one of that name. Waiting calls of a replaced queue get its
    /// new max wait and (if not yet overflowed) overflow, counted from their enqueue time; the
    /// agents are requalified. Routing this may cause happens at the next `handle`/`on_timer`:
    /// [`next_deadline`](Self::next_deadline) then returns the last instant seen.
    pub fn set_queue(&mut self, q: QueueConfig) -> Result<(), QueueError> {
        validate(&q, |name| {
            name == q.name || self.queue_ix.contains_key(name)
        })?;
        let ix = match self.queue_ix.get(&q.name) {
            Some(&ix) => {
                self.queues[ix].config = q;
                self.reschedule_queue(ix);
                ix
            }
            None => {
                let ix = self.queues.len();
                self.queue_ix.insert(q.name.clone(), ix);
                self.queues.push(QueueState::new(q));
                ix
            }
        };
        self.link_overflow(ix);
        self.requalify_all();
        Ok(())
    }

    /// Gives a logged-in agent new skills (an account changed while the agent works): the
    /// queues the agent qualifies for are recomputed, so a Ready agent is offered the calls the
    /// new skills qualify for at the next `handle`/`on_timer` (see
    /// [`next_deadline`](Self::next_deadline)) and no longer those they don't; a call already
    /// offered or bridged stays. `Err` (nothing changed): the agent is not logged in, or a level
    /// is outside 1..=10.
    pub fn set_skills(
        &mut self,
        agent: &str,
        skills: BTreeMap<String, u8>,
    ) -> Result<(), QueueError> {
        let a = self.online(agent)?;
        check_levels(&skills)?;
        self.agents[a].profile.skills = skills;
        self.requalify_all();
        Ok(())
    }

    /// Applies one event at `now`. On `Err` nothing changed.
    pub fn handle(&mut self, input: Input, now: Instant) -> Result<Vec<Output>, QueueError> {
        let mut out = Vec::new();
        match input {
            Input::Login { agent } => self.login(agent, now, &mut out)?,
            Input::Logout { agent } => self.logout(&agent, now, &mut out)?,
            Input::Ready { agent } => self.ready(&agent, now, &mut out)?,
            Input::Pause { agent, reason } => self.pause(&agent, reason, now, &mut out)?,
            Input::Disconnected { agent } => self.disconnected(&agent, now, &mut out)?,
            Input::Enqueue {
                call,
                queue,
                priority,
            } => self.enqueue(call, &queue, priority, now)?,
            Input::Accept { agent, call } => self.accept(&agent, &call, now, &mut out)?,
            Input::Reject { agent, call } => self.reject(&agent, &call, now, &mut out)?,
            Input::Abandon { call } => self.abandon(&call, now, &mut out)?,
            Input::CallEnded { call } => self.call_ended(&call, now, &mut out)?,
            Input::WrapUpDone { agent } => self.wrap_up_done(&agent, now, &mut out)?,
        }
        self.saw(now);
        self.dispatch(now, &mut out);
        Ok(out)
    }

    /// When [`on_timer`](Self::on_timer) must be called next: the earliest offer timeout,
    /// overflow, give-up or wrap-up end (or the last instant seen, when routing is pending after
    /// [`set_queue`](Self::set_queue)).
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|(at, _)| *at);
        let pending = if self.dirty_agents.is_empty() && self.dirty_calls.is_empty() {
            None
        } else {
            self.last_now
        };
        match (timer, pending) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires every timer due at `now`, then routes what they freed.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, timer));
            self.fire(timer, now, &mut out);
        }
        self.saw(now);
        self.dispatch(now, &mut out);
        out
    }

    /// The agent's status, if the agent ever logged in.
    pub fn agent_status(&self, agent: &str) -> Option<&AgentStatus> {
        let ix = *self.agent_ix.get(agent)?;
        Some(&self.agents[ix].status)
    }

    /// The call's queue and 1-based position in it (routing order: call priority, then enqueue
    /// time; offered calls count), while it waits.
    pub fn position(&self, call: &str) -> Option<(String, usize)> {
        let id = *self.call_ix.get(call)?;
        let c = self.calls.get(&id)?;
        let q = &self.queues[c.queue];
        let ahead = q.members.range(..c.rank()).count();
        Some((q.config.name.clone(), ahead + 1))
    }

    /// Gives a waiting call a shorter wait than its queue's `max_wait`: it gives up
    /// ([`Output::GiveUp`], after `OfferWithdrawn { GaveUp }` when offered) `max_wait` after it
    /// was enqueued, or at the queue's own `max_wait` if that is sooner (also after the queue's
    /// configuration changes). The dialer's human campaigns use it for the safe harbour: a live
    /// answer that no agent takes within 2 s hears a message instead of hold music. A limit
    /// already past fires on the next [`on_timer`](Self::on_timer) (see
    /// [`next_deadline`](Self::next_deadline)). `Err(UnknownCall)` when the call is not waiting.
    pub fn limit_wait(&mut self, call: &str, max_wait: Duration) -> Result<(), QueueError> {
        let id = *self
            .call_ix
            .get(call)
            .ok_or_else(|| QueueError::UnknownCall(call.to_string()))?;
        let Some(c) = self.calls.get_mut(&id) else {
            return Err(QueueError::UnknownCall(call.to_string()));
        };
        let queue_max = self.queues[c.queue].config.max_wait;
        self.timers.remove(&(c.max_wait_at, Timer::MaxWait(id)));
        c.wait_limit = Some(max_wait);
        c.max_wait_at = c.enqueued + max_wait.min(queue_max);
        self.timers.insert((c.max_wait_at, Timer::MaxWait(id)));
        Ok(())
    }

    /// The queues' configurations, in the order they were added.
    pub fn queues(&self) -> impl Iterator<Item = &QueueConfig> {
        self.queues.iter().map(|q| &q.config)
    }

    fn saw(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
    }

    fn link_overflow(&mut self, ix: usize) {
        let to = self.queues[ix]
            .config
            .overflow
            .as_ref()
            .and_then(|o| self.queue_ix.get(&o.to).copied());
        self.queues[ix].overflow_to = to;
    }
}

fn validate(q: &QueueConfig, exists: impl Fn(&str) -> bool) -> Result<(), QueueError> {
    if q.name.is_empty() {
        return Err(QueueError::EmptyQueueName);
    }
    let zero = |field| QueueError::ZeroDuration {
        queue: q.name.clone(),
        field,
    };
    if q.offer_timeout.is_zero() {
        return Err(zero("offer_timeout"));
    }
    if q.max_wait.is_zero() {
        return Err(zero("max_wait"));
    }
    check_levels(&q.required_skills)?;
    if let Some(o) = &q.overflow {
        if o.to == q.name {
            return Err(QueueError::OverflowToItself(q.name.clone()));
        }
        if !exists(&o.to) {
            return Err(QueueError::UnknownOverflowTarget {
                queue: q.name.clone(),
                to: o.to.clone(),
            });
        }
        if o.after.is_zero() {
            return Err(zero("overflow.after"));
        }
        if o.after >= q.max_wait {
            return Err(QueueError::OverflowAfterMaxWait(q.name.clone()));
        }
    }
    Ok(())
}

fn check_levels(skills: &BTreeMap<String, u8>) -> Result<(), QueueError> {
    match skills.iter().find(|(_, l)| !(1..=10).contains(*l)) {
        Some((skill, &level)) => Err(QueueError::SkillLevelOutOfRange {
            skill: skill.clone(),
            level,
        }),
        None => Ok(()),
    }
}

fn status_name(s: &AgentStatus) -> &'static str {
    match s {
        AgentStatus::Offline => "offline",
        AgentStatus::Ready => "ready",
        AgentStatus::Offered { .. } => "offered a call",
        AgentStatus::OnCall { .. } => "on a call",
        AgentStatus::WrapUp { .. } => "in wrap-up",
        AgentStatus::Paused { .. } => "paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(max_wait_s: u64) -> QueueConfig {
        QueueConfig {
            name: "q".into(),
            required_skills: BTreeMap::new(),
            priority: 1,
            offer_timeout: Duration::from_secs(15),
            max_wait: Duration::from_secs(max_wait_s),
            overflow: None,
            wrap_up: None,
        }
    }

    fn enqueue(e: &mut QueueEngine, call: &str, now: Instant) {
        e.handle(
            Input::Enqueue {
                call: call.into(),
                queue: "q".into(),
                priority: 0,
            },
            now,
        )
        .expect("enqueue");
    }

    #[test]
    fn new_skills_take_effect_while_logged_in() {
        let t0 = Instant::now();
        let mut cards = queue(600);
        cards.required_skills = BTreeMap::from([("cards".to_string(), 3)]);
        let mut e = QueueEngine::new(vec![cards]).expect("engine");
        // Not logged in: refused.
        assert_eq!(
            e.set_skills("anna", BTreeMap::new()),
            Err(QueueError::UnknownAgent("anna".into()))
        );
        let anna = AgentProfile {
            id: "anna".into(),
            name: "Anna".into(),
            skills: BTreeMap::from([("cards".to_string(), 2)]),
        };
        e.handle(Input::Login { agent: anna }, t0).expect("login");
        e.handle(
            Input::Ready {
                agent: "anna".into(),
            },
            t0,
        )
        .expect("ready");
        enqueue(&mut e, "c1", t0);
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(600)));
        // A level out of range changes nothing.
        assert!(
            e.set_skills("anna", BTreeMap::from([("cards".to_string(), 11)]))
                .is_err()
        );
        assert!(e.on_timer(t0).is_empty());
        // Level 2 → 4: the waiting call is offered at once.
        e.set_skills("anna", BTreeMap::from([("cards".to_string(), 4)]))
            .expect("skills");
        assert_eq!(e.next_deadline(), Some(t0));
        let out = e.on_timer(t0);
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Offer { agent, call, .. } if agent == "anna" && call == "c1")),
            "{out:?}"
        );
        // Taken off the skill while offered: the offer stands; rejected, the call is not
        // offered to her again.
        e.set_skills("anna", BTreeMap::new()).expect("skills");
        let out = e
            .handle(
                Input::Reject {
                    agent: "anna".into(),
                    call: "c1".into(),
                },
                t0,
            )
            .expect("reject");
        assert!(
            !out.iter().any(|o| matches!(o, Output::Offer { .. })),
            "{out:?}"
        );
        assert!(
            !e.on_timer(t0)
                .iter()
                .any(|o| matches!(o, Output::Offer { .. }))
        );
    }

    #[test]
    fn a_limited_wait_gives_up_first_and_survives_a_queue_change() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut e = QueueEngine::new(vec![queue(60)]).expect("engine");
        enqueue(&mut e, "short", t0);
        enqueue(&mut e, "plain", t0);
        e.limit_wait("short", ms(1750)).expect("limit");
        assert_eq!(e.next_deadline(), Some(t0 + ms(1750)));
        assert!(e.on_timer(t0 + ms(1749)).is_empty());
        // The queue's configuration changes: the call keeps its shorter limit.
        e.set_queue(queue(30)).expect("set");
        assert!(e.on_timer(t0 + ms(1749)).is_empty());
        assert_eq!(e.next_deadline(), Some(t0 + ms(1750)));
        let out = e.on_timer(t0 + ms(1750));
        assert!(
            matches!(out.as_slice(), [Output::GiveUp { call, waited, .. }]
                if call == "short" && *waited == ms(1750)),
            "{out:?}"
        );
        // The other call waits for the queue's (new) max wait.
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(30)));
        // A limit longer than the queue's max wait does not extend it.
        e.limit_wait("plain", Duration::from_secs(90))
            .expect("limit");
        assert_eq!(e.next_deadline(), Some(t0 + Duration::from_secs(30)));
        // Only waiting calls can be limited.
        assert_eq!(
            e.limit_wait("short", ms(10)),
            Err(QueueError::UnknownCall("short".into()))
        );
    }
}
