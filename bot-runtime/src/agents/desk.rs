//! The desk: the tokio shell around the [queue engine](super::queue). It owns the engine and
//! its timer, keeps each logged-in agent's notice channel (the console's WebSocket, or nothing
//! but the log for an agent who only has a SIP phone), takes the calls the robot transfers, and
//! brings up the agent's audio leg when an offer is accepted:
//!
//! - **SIP phone agents** (registered at callbot's SIP agent, which is their registrar): an offer
//!   rings the phone; the phone answering *is* the acceptance, a busy/decline answer is a
//!   rejection, and a withdrawn offer cancels the ringing.
//! - **Console agents** (the browser softphone): the offer goes to the console; the console
//!   accepts with its WebRTC offer and gets the answer back ([`Desk::accept`]).
//!
//! A connected call is a pair of channels ([`AgentAudio`]) between the customer's call task and
//! a small pump task per agent leg: 20 ms frames of 8 kHz PCM each way. Closing either side ends
//! the other: the customer hanging up ends the agent's leg, the agent hanging up ends the call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialog_flows::interp::TransferSummary;
use serde::Serialize;
use telephony::media::MediaSession;
use telephony::sip::ua::CallEvent;
use tokio::sync::{mpsc, oneshot};

use super::queue::{
    AgentId, AgentProfile, AgentStatus, CallKey, Input, Output, QueueConfig, QueueEngine,
    QueueError, Snapshot, WithdrawReason,
};

/// How an agent takes calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// The browser console's WebRTC softphone.
    Console,
    /// A SIP phone registered to callbot under this user name.
    SipPhone { user: String },
}

/// Who the customer is, for the agent's customer panel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CustomerInfo {
    pub phone: String,
    pub lead_id: Option<String>,
    pub campaign: Option<String>,
    /// The lead's data as the campaign loaded it.
    pub lead: serde_json::Map<String, serde_json::Value>,
}

/// A call the flow hands over to a queue.
pub struct TransferRequest {
    pub call: CallKey,
    pub summary: TransferSummary,
    pub customer: CustomerInfo,
    /// Where the desk reports what happens to the call.
    pub updates: mpsc::UnboundedSender<TransferUpdate>,
}

/// What happens to a transferred call, as the call task hears it.
pub enum TransferUpdate {
    /// Waiting in `queue` at `position`, with an estimated wait.
    Queued {
        queue: String,
        position: usize,
        estimated_wait: Option<Duration>,
    },
    /// An agent took the call: bridge the customer to this audio.
    Connected { agent: AgentInfo, audio: AgentAudio },
    /// No agent took it (the flow's fallback runs).
    Failed { reason: String },
}

/// The agent who took a call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentInfo {
    pub id: AgentId,
    pub name: String,
    pub queue: String,
    /// From the transfer to the agent's audio being connected.
    pub wait_ms: u64,
}

/// The agent's side of a bridged call: 8 kHz PCM, 20 ms frames. Dropping `to_agent` ends the
/// agent's leg; `from_agent` returning `None` means the agent's leg ended.
pub struct AgentAudio {
    pub to_agent: mpsc::Sender<Vec<i16>>,
    pub from_agent: mpsc::Receiver<Vec<i16>>,
}

/// What a console is told, as JSON (`type` names the message).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentNotice {
    Status {
        status: AgentStatus,
    },
    Offer {
        call: CallKey,
        expires_in_ms: u64,
        summary: Box<TransferSummary>,
        customer: Box<CustomerInfo>,
    },
    OfferWithdrawn {
        call: CallKey,
        reason: WithdrawReason,
    },
    Connected {
        call: CallKey,
    },
    CallEnded {
        call: CallKey,
    },
}

/// Why a desk request was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the desk has stopped")]
    Stopped,
    #[error("{0}")]
    Refused(String),
}

/// The legs the desk can open to agents. [`crate::runtime::Runtime`] implements it for SIP
/// phones over its SIP agent; WebRTC legs for consoles come from [`Desk::accept`].
pub trait AgentLines: Send + Sync + 'static {
    /// Ring a registered SIP user; resolves when the phone answers (its media running) or fails.
    fn ring(&self, user: String, caller: String, cancel: oneshot::Receiver<()>) -> Ring;
}

/// A SIP phone's answered leg.
pub struct PhoneLeg {
    pub media: MediaSession,
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    /// Hangs the leg up (BYE).
    pub hangup: Box<dyn FnOnce() + Send>,
}

/// The result of ringing a phone: the answered leg, or why not (SIP status — 0 when the user
/// is not registered — and reason).
pub type RingResult = Result<PhoneLeg, (u16, String)>;
/// Ringing a phone, as a boxed future.
pub type Ring = std::pin::Pin<Box<dyn std::future::Future<Output = RingResult> + Send>>;

enum Cmd {
    Login(
        AgentProfile,
        Endpoint,
        oneshot::Sender<Result<AgentSession, DeskError>>,
    ),
    Engine(Input, oneshot::Sender<Result<(), DeskError>>),
    Accept {
        agent: AgentId,
        call: CallKey,
        leg: Option<ConnectedLeg>,
        reply: oneshot::Sender<Result<(), DeskError>>,
    },
    Hangup(AgentId, CallKey),
    /// A transfer, with a shorter wait than the queue's `max_wait` when given.
    Transfer(Box<TransferRequest>, Option<Duration>),
    Abandon(CallKey),
    Snapshot(oneshot::Sender<Snapshot>),
    SetQueue(QueueConfig, oneshot::Sender<Result<(), DeskError>>),
    SetSkills(
        AgentId,
        BTreeMap<String, u8>,
        oneshot::Sender<Result<(), DeskError>>,
    ),
    Listen {
        call: CallKey,
        leg: ConnectedLeg,
        reply: oneshot::Sender<Result<(), DeskError>>,
    },
    Rung {
        agent: AgentId,
        call: CallKey,
        result: RingResult,
    },
    LegEnded(CallKey),
}

/// A logged-in agent's channel of notices (the console reads it).
pub struct AgentSession {
    pub notices: mpsc::UnboundedReceiver<AgentNotice>,
}

/// An audio leg to an agent once it is up: frames in and out, and how to end it.
pub struct ConnectedLeg {
    /// 20 ms frames of 8 kHz PCM from the agent (`None`: the leg ended).
    pub from_agent: mpsc::Receiver<Vec<i16>>,
    /// Frames for the agent (dropping it ends the leg).
    pub to_agent: mpsc::Sender<Vec<i16>>,
}

/// See the module docs. Cloneable; every clone talks to the same desk task.
#[derive(Clone)]
pub struct Desk {
    tx: mpsc::UnboundedSender<Cmd>,
}

struct AgentEntry {
    profile: AgentProfile,
    endpoint: Endpoint,
    notices: mpsc::UnboundedSender<AgentNotice>,
}

struct CallEntry {
    req: TransferRequest,
    queue: String,
    since: Instant,
    /// The agent's leg while it is being set up or connected.
    leg: Option<ConnectedLeg>,
    /// Cancels a ringing SIP phone.
    ringing: Option<(AgentId, oneshot::Sender<()>)>,
    connected: Option<AgentId>,
    /// Ends the agent's leg (the agent hangs up from the console).
    stop: Option<oneshot::Sender<()>>,
    /// Adds a listener to the connected call (see [`super::listen`]).
    listen: Option<mpsc::UnboundedSender<ConnectedLeg>>,
}

struct DeskTask {
    engine: QueueEngine,
    lines: Arc<dyn AgentLines>,
    agents: HashMap<AgentId, AgentEntry>,
    calls: HashMap<CallKey, CallEntry>,
    tx: mpsc::UnboundedSender<Cmd>,
}

/// The desk's clock: tokio's (the same as the system's monotonic clock, except in tests that
/// pause tokio's time, where the desk's timers then run on simulated time).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Frames buffered each way between a leg and the call (2 s).
const LEG_BUFFER: usize = 100;

impl Desk {
    /// Starts the desk task with these queues; `lines` rings SIP phone agents.
    pub fn start(queues: Vec<QueueConfig>, lines: Arc<dyn AgentLines>) -> Result<Desk, DeskError> {
        let engine = QueueEngine::new(queues)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = DeskTask {
            engine,
            lines,
            agents: HashMap::new(),
            calls: HashMap::new(),
            tx: tx.clone(),
        };
        tokio::spawn(task.run(rx));
        Ok(Desk { tx })
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, DeskError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| DeskError::Stopped)?;
        rx.await.map_err(|_| DeskError::Stopped)
    }

    async fn engine(&self, input: Input) -> Result<(), DeskError> {
        self.ask(|r| Cmd::Engine(input, r)).await?
    }

    /// Logs an agent in (paused until [`Desk::ready`]). Logging in again while logged in takes
    /// the session over as it stands (a reloaded console): the old notice channel closes and
    /// the new one starts with the current status.
    pub async fn login(
        &self,
        profile: AgentProfile,
        endpoint: Endpoint,
    ) -> Result<AgentSession, DeskError> {
        self.ask(|r| Cmd::Login(profile, endpoint, r)).await?
    }

    pub async fn ready(&self, agent: &str) -> Result<(), DeskError> {
        self.engine(Input::Ready {
            agent: agent.to_string(),
        })
        .await
    }

    pub async fn pause(&self, agent: &str, reason: &str) -> Result<(), DeskError> {
        self.engine(Input::Pause {
            agent: agent.to_string(),
            reason: reason.to_string(),
        })
        .await
    }

    pub async fn logout(&self, agent: &str) -> Result<(), DeskError> {
        self.engine(Input::Logout {
            agent: agent.to_string(),
        })
        .await
    }

    /// The agent's console or phone is gone (an offer to them goes to the next agent).
    pub async fn disconnected(&self, agent: &str) -> Result<(), DeskError> {
        self.engine(Input::Disconnected {
            agent: agent.to_string(),
        })
        .await
    }

    pub async fn reject(&self, agent: &str, call: &str) -> Result<(), DeskError> {
        self.engine(Input::Reject {
            agent: agent.to_string(),
            call: call.to_string(),
        })
        .await
    }

    pub async fn wrap_up_done(&self, agent: &str) -> Result<(), DeskError> {
        self.engine(Input::WrapUpDone {
            agent: agent.to_string(),
        })
        .await
    }

    /// A console agent accepts an offer with the audio leg it has set up (the WebRTC leg).
    pub async fn accept(
        &self,
        agent: &str,
        call: &str,
        leg: ConnectedLeg,
    ) -> Result<(), DeskError> {
        self.ask(|reply| Cmd::Accept {
            agent: agent.to_string(),
            call: call.to_string(),
            leg: Some(leg),
            reply,
        })
        .await?
    }

    /// The agent ends a connected call.
    pub fn hangup(&self, agent: &str, call: &str) {
        let _ = self
            .tx
            .send(Cmd::Hangup(agent.to_string(), call.to_string()));
    }

    /// A flow transfers a call (see [`TransferUpdate`] for what the call then hears).
    pub fn transfer(&self, req: TransferRequest) {
        self.send_transfer(req, None);
    }

    /// A transfer that waits at most `max_wait` for an agent (or the queue's own `max_wait` if
    /// that is shorter), then fails like one that reached the queue's limit
    /// ([`super::queue::QueueEngine::limit_wait`]): the dialer's human campaigns give live
    /// answers the 2 s safe harbour this way.
    pub fn transfer_within(&self, req: TransferRequest, max_wait: Duration) {
        self.send_transfer(req, Some(max_wait));
    }

    fn send_transfer(&self, req: TransferRequest, max_wait: Option<Duration>) {
        if let Err(mpsc::error::SendError(Cmd::Transfer(req, _))) =
            self.tx.send(Cmd::Transfer(Box::new(req), max_wait))
        {
            let _ = req.updates.send(TransferUpdate::Failed {
                reason: "the agent desk has stopped".into(),
            });
        }
    }

    /// The customer hung up before an agent took the call.
    pub fn abandon(&self, call: &str) {
        let _ = self.tx.send(Cmd::Abandon(call.to_string()));
    }

    /// A supervisor listens in on a connected call through `leg` (what the leg sends is
    /// discarded; it ends when the call does).
    pub async fn listen(&self, call: &str, leg: ConnectedLeg) -> Result<(), DeskError> {
        self.ask(|reply| Cmd::Listen {
            call: call.to_string(),
            leg,
            reply,
        })
        .await?
    }

    /// Queues and agents now (the supervisor's wallboard).
    pub async fn snapshot(&self) -> Result<Snapshot, DeskError> {
        self.ask(Cmd::Snapshot).await
    }

    /// Adds a queue, or changes the one of that name, while the desk runs: calls waiting in it
    /// get the new limits (counted from when they joined) and the agents logged in are
    /// requalified against its skills. Refused (nothing changes): an invalid configuration.
    pub async fn set_queue(&self, q: QueueConfig) -> Result<(), DeskError> {
        self.ask(|r| Cmd::SetQueue(q, r)).await?
    }

    /// Gives a logged-in agent new skills (the account changed): the agent is requalified for
    /// the queues at once. Refused: the agent is not logged in here, or a level is out of range.
    pub async fn set_skills(
        &self,
        agent: &str,
        skills: BTreeMap<String, u8>,
    ) -> Result<(), DeskError> {
        let agent = agent.to_string();
        self.ask(|r| Cmd::SetSkills(agent, skills, r)).await?
    }
}

impl DeskTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            let deadline = self.engine.next_deadline();
            let cmd = match deadline {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    tokio::select! {
                        c = rx.recv() => c,
                        _ = tokio::time::sleep_until(at) => {
                            let out = self.engine.on_timer(now());
                            self.apply(out);
                            continue;
                        }
                    }
                }
                None => rx.recv().await,
            };
            let Some(cmd) = cmd else { break };
            self.command(cmd);
        }
    }

    fn command(&mut self, cmd: Cmd) {
        let now = now();
        match cmd {
            Cmd::Login(profile, endpoint, reply) => {
                let id = profile.id.clone();
                // A reconnecting console (page reload) takes over the session as it stands.
                if let (Some(status), Some(entry)) = (
                    self.engine.agent_status(&id).cloned(),
                    self.agents.get_mut(&id),
                ) && status != AgentStatus::Offline
                {
                    let (ntx, nrx) = mpsc::unbounded_channel();
                    let _ = ntx.send(AgentNotice::Status { status });
                    entry.notices = ntx;
                    entry.endpoint = endpoint;
                    let _ = reply.send(Ok(AgentSession { notices: nrx }));
                    return;
                }
                match self.engine.handle(
                    Input::Login {
                        agent: profile.clone(),
                    },
                    now,
                ) {
                    Ok(out) => {
                        let (ntx, nrx) = mpsc::unbounded_channel();
                        self.agents.insert(
                            id,
                            AgentEntry {
                                profile,
                                endpoint,
                                notices: ntx,
                            },
                        );
                        self.apply(out);
                        let _ = reply.send(Ok(AgentSession { notices: nrx }));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Cmd::Engine(input, reply) => {
                let r = self.engine.handle(input, now).map(|out| self.apply(out));
                let _ = reply.send(r.map_err(DeskError::from));
            }
            Cmd::Accept {
                agent,
                call,
                leg,
                reply,
            } => {
                // A console's leg: pumped like a phone's, so that its end reaches the desk.
                let (leg, stop) = match leg {
                    Some(leg) => {
                        let (leg, stop) = spawn_console_pump(leg, call.clone(), self.tx.clone());
                        (Some(leg), Some(stop))
                    }
                    None => (None, None),
                };
                let r = self.accept(&agent, &call, leg, stop, now);
                let _ = reply.send(r);
            }
            Cmd::Hangup(agent, call) => {
                if let Some(c) = self.calls.get_mut(&call)
                    && c.connected.as_deref() == Some(agent.as_str())
                    && let Some(stop) = c.stop.take()
                {
                    let _ = stop.send(());
                }
            }
            Cmd::Transfer(req, max_wait) => self.transfer(*req, max_wait, now),
            Cmd::Abandon(call) => {
                if let Some(c) = self.calls.get_mut(&call)
                    && c.connected.is_none()
                {
                    if let Some((_, cancel)) = c.ringing.take() {
                        let _ = cancel.send(());
                    }
                    self.calls.remove(&call);
                    match self.engine.handle(Input::Abandon { call }, now) {
                        Ok(out) => self.apply(out),
                        Err(e) => {
                            tracing::debug!(error = %e, "abandon of a call the engine no longer has")
                        }
                    }
                }
            }
            Cmd::Snapshot(reply) => {
                let _ = reply.send(self.engine.snapshot(now));
            }
            Cmd::SetQueue(q, reply) => {
                // Routing the change allows happens on the loop's next turn: the engine's
                // deadline is then due.
                let _ = reply.send(self.engine.set_queue(q).map_err(DeskError::from));
            }
            Cmd::SetSkills(agent, skills, reply) => {
                let _ = reply.send(
                    self.engine
                        .set_skills(&agent, skills)
                        .map_err(DeskError::from),
                );
            }
            Cmd::Listen { call, leg, reply } => {
                let r = match self.calls.get(&call).and_then(|c| c.listen.as_ref()) {
                    Some(add) => add
                        .send(leg)
                        .map_err(|_| DeskError::Refused(format!("call `{call}` has just ended"))),
                    None => Err(DeskError::Refused(format!(
                        "call `{call}` is not connected to an agent"
                    ))),
                };
                let _ = reply.send(r);
            }
            Cmd::Rung {
                agent,
                call,
                result,
            } => self.rung(agent, call, result, now),
            Cmd::LegEnded(call) => {
                // Only a connected call's end counts: a leg dropped before (a failed accept, a
                // withdrawn offer) leaves the call waiting.
                if self.calls.get(&call).is_some_and(|c| c.connected.is_some())
                    && let Some(c) = self.calls.remove(&call)
                    && let Some(agent) = c.connected
                {
                    self.notify(&agent, AgentNotice::CallEnded { call: call.clone() });
                    match self.engine.handle(Input::CallEnded { call }, now) {
                        Ok(out) => self.apply(out),
                        Err(e) => tracing::warn!(error = %e, "call end the engine did not expect"),
                    }
                }
            }
        }
    }

    fn notify(&self, agent: &str, notice: AgentNotice) {
        if let Some(a) = self.agents.get(agent) {
            let _ = a.notices.send(notice);
        }
    }

    fn transfer(&mut self, req: TransferRequest, max_wait: Option<Duration>, now: Instant) {
        let queue = req.summary.queue.clone();
        let input = Input::Enqueue {
            call: req.call.clone(),
            queue: queue.clone(),
            priority: req.summary.priority,
        };
        match self.engine.handle(input, now) {
            Ok(out) => {
                let call = req.call.clone();
                if let Some(limit) = max_wait
                    && let Err(e) = self.engine.limit_wait(&call, limit)
                {
                    tracing::warn!(%call, error = %e, "could not shorten the call's wait");
                }
                let position = self.engine.position(&call).map(|(_, p)| p).unwrap_or(0);
                let _ = req.updates.send(TransferUpdate::Queued {
                    queue: queue.clone(),
                    position,
                    estimated_wait: self.engine.estimated_wait(&queue, now),
                });
                self.calls.insert(
                    call,
                    CallEntry {
                        req,
                        queue,
                        since: now,
                        leg: None,
                        ringing: None,
                        connected: None,
                        stop: None,
                        listen: None,
                    },
                );
                self.apply(out);
            }
            Err(e) => {
                let _ = req.updates.send(TransferUpdate::Failed {
                    reason: e.to_string(),
                });
            }
        }
    }

    fn accept(
        &mut self,
        agent: &str,
        call: &str,
        leg: Option<ConnectedLeg>,
        stop: Option<oneshot::Sender<()>>,
        now: Instant,
    ) -> Result<(), DeskError> {
        let Some(entry) = self.calls.get_mut(call) else {
            return Err(DeskError::Refused(format!(
                "call `{call}` is no longer waiting"
            )));
        };
        if entry.connected.is_some() {
            return Err(DeskError::Refused(format!(
                "call `{call}` is already connected"
            )));
        }
        let previous = std::mem::replace(&mut entry.leg, leg);
        let previous_stop = std::mem::replace(&mut entry.stop, stop);
        match self.engine.handle(
            Input::Accept {
                agent: agent.to_string(),
                call: call.to_string(),
            },
            now,
        ) {
            Ok(out) => {
                self.apply(out);
                Ok(())
            }
            Err(e) => {
                if let Some(entry) = self.calls.get_mut(call) {
                    entry.leg = previous;
                    entry.stop = previous_stop;
                }
                Err(e.into())
            }
        }
    }

    fn rung(&mut self, agent: AgentId, call: CallKey, result: RingResult, now: Instant) {
        let still_offered = self
            .calls
            .get(&call)
            .and_then(|c| c.ringing.as_ref())
            .is_some_and(|(a, _)| *a == agent);
        match result {
            Ok(phone) => {
                if !still_offered {
                    (phone.hangup)();
                    return;
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ringing = None;
                }
                let (leg, stop) = spawn_phone_pump(phone, call.clone(), self.tx.clone());
                if let Err(e) = self.accept(&agent, &call, Some(leg), Some(stop), now) {
                    tracing::warn!(%agent, %call, error = %e, "the phone answered an offer that is gone");
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.leg = None;
                        c.stop = None;
                    }
                }
            }
            Err((status, reason)) => {
                if !still_offered {
                    return;
                }
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ringing = None;
                }
                tracing::info!(%agent, %call, status, %reason, "the agent's phone did not take the call");
                let input = if status == 0 || status == 408 || status == 480 {
                    // Not reachable: the phone is gone, not a choice of the agent.
                    Input::Disconnected {
                        agent: agent.clone(),
                    }
                } else {
                    Input::Reject {
                        agent: agent.clone(),
                        call: call.clone(),
                    }
                };
                match self.engine.handle(input, now) {
                    Ok(out) => self.apply(out),
                    Err(e) => tracing::warn!(error = %e, "ring failure the engine did not expect"),
                }
            }
        }
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        let now = now();
        for o in outputs {
            match o {
                Output::Offer {
                    call,
                    agent,
                    expires,
                } => self.offer(call, agent, expires, now),
                Output::OfferWithdrawn {
                    call,
                    agent,
                    reason,
                } => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        if let Some((a, cancel)) = c.ringing.take() {
                            if a == agent {
                                let _ = cancel.send(());
                            } else {
                                c.ringing = Some((a, cancel));
                            }
                        }
                        // A console's leg prepared for this offer is dropped.
                        if c.connected.is_none() {
                            c.leg = None;
                        }
                    }
                    self.notify(&agent, AgentNotice::OfferWithdrawn { call, reason });
                }
                Output::Connect { call, agent } => self.connect(call, agent, now),
                Output::Overflowed { call, from, to } => {
                    tracing::info!(%call, %from, %to, "call overflowed to another queue");
                    if let Some(c) = self.calls.get(&call) {
                        let position = self.engine.position(&call).map(|(_, p)| p).unwrap_or(0);
                        let _ = c.req.updates.send(TransferUpdate::Queued {
                            queue: to.clone(),
                            position,
                            estimated_wait: self.engine.estimated_wait(&to, now),
                        });
                    }
                }
                Output::GiveUp {
                    call,
                    queue,
                    waited,
                } => {
                    if let Some(c) = self.calls.remove(&call) {
                        if let Some((_, cancel)) = c.ringing {
                            let _ = cancel.send(());
                        }
                        let _ = c.req.updates.send(TransferUpdate::Failed {
                            reason: format!(
                                "no agent of queue `{queue}` took the call in {} s",
                                waited.as_secs()
                            ),
                        });
                    }
                }
                Output::AgentChanged { agent, status } => {
                    self.notify(&agent, AgentNotice::Status { status });
                }
            }
        }
    }

    fn offer(&mut self, call: CallKey, agent: AgentId, expires: Instant, now: Instant) {
        let (Some(a), Some(c)) = (self.agents.get(&agent), self.calls.get_mut(&call)) else {
            return;
        };
        let _ = a.notices.send(AgentNotice::Offer {
            call: call.clone(),
            expires_in_ms: expires.saturating_duration_since(now).as_millis() as u64,
            summary: Box::new(c.req.summary.clone()),
            customer: Box::new(c.req.customer.clone()),
        });
        if let Endpoint::SipPhone { user } = &a.endpoint {
            let (cancel_tx, cancel_rx) = oneshot::channel();
            c.ringing = Some((agent.clone(), cancel_tx));
            let ring = self
                .lines
                .ring(user.clone(), c.req.customer.phone.clone(), cancel_rx);
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let result = ring.await;
                let _ = tx.send(Cmd::Rung {
                    agent,
                    call,
                    result,
                });
            });
        }
    }

    fn connect(&mut self, call: CallKey, agent: AgentId, now: Instant) {
        let name = self
            .agents
            .get(&agent)
            .map(|a| a.profile.name.clone())
            .unwrap_or_default();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Some(leg) = c.leg.take() else {
            tracing::error!(%call, %agent, "accepted without an audio leg");
            return;
        };
        c.connected = Some(agent.clone());
        let (leg, listen) = super::listen::tap(leg);
        c.listen = Some(listen);
        let info = AgentInfo {
            id: agent.clone(),
            name,
            queue: c.queue.clone(),
            wait_ms: now.saturating_duration_since(c.since).as_millis() as u64,
        };
        let audio = AgentAudio {
            to_agent: leg.to_agent,
            from_agent: leg.from_agent,
        };
        if c.req
            .updates
            .send(TransferUpdate::Connected { agent: info, audio })
            .is_err()
        {
            // The call task is gone (the customer hung up at that instant): its end ends the
            // agent's leg, which reports LegEnded.
            tracing::info!(%call, "the customer left as the agent connected");
        }
        self.notify(&agent, AgentNotice::Connected { call });
    }
}

/// Pumps a SIP phone's media to and from the bridge channels until either side ends; then the
/// desk hears `LegEnded`.
fn spawn_phone_pump(
    phone: PhoneLeg,
    call: CallKey,
    desk: mpsc::UnboundedSender<Cmd>,
) -> (ConnectedLeg, oneshot::Sender<()>) {
    let (to_tx, mut to_rx) = mpsc::channel::<Vec<i16>>(LEG_BUFFER);
    let (from_tx, from_rx) = mpsc::channel::<Vec<i16>>(LEG_BUFFER);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let PhoneLeg {
            mut media,
            mut events,
            hangup,
        } = phone;
        let mut agent_hung_up = false;
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                pcm = to_rx.recv() => match pcm {
                    Some(pcm) => {
                        if let Err(e) = media.handle.try_send_audio(pcm) {
                            tracing::debug!(error = %e, "frame to the agent's phone dropped");
                        }
                    }
                    None => break,
                },
                frame = media.frames.recv() => match frame {
                    Some(f) => {
                        if from_tx.try_send(f.samples).is_err() && from_tx.is_closed() {
                            break;
                        }
                    }
                    None => { agent_hung_up = true; break }
                },
                ev = events.recv() => match ev {
                    Some(CallEvent::Ended { .. }) | None => { agent_hung_up = true; break }
                    Some(_) => {}
                },
            }
        }
        if !agent_hung_up {
            hangup();
        }
        let _ = media.stop().await;
        drop(from_tx);
        let _ = desk.send(Cmd::LegEnded(call));
    });
    (
        ConnectedLeg {
            from_agent: from_rx,
            to_agent: to_tx,
        },
        stop_tx,
    )
}

/// A console's leg (two frame channels, e.g. over a WebRTC leg) behind a pump of its own, so
/// that its end — either side closing, or a hang-up from the console — reaches the desk.
fn spawn_console_pump(
    leg: ConnectedLeg,
    call: CallKey,
    desk: mpsc::UnboundedSender<Cmd>,
) -> (ConnectedLeg, oneshot::Sender<()>) {
    let ConnectedLeg {
        mut from_agent,
        to_agent,
    } = leg;
    let (to_tx, mut to_rx) = mpsc::channel::<Vec<i16>>(LEG_BUFFER);
    let (from_tx, from_rx) = mpsc::channel::<Vec<i16>>(LEG_BUFFER);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                pcm = to_rx.recv() => match pcm {
                    Some(pcm) => { let _ = to_agent.try_send(pcm); }
                    None => break,
                },
                f = from_agent.recv() => match f {
                    Some(f) => {
                        if from_tx.try_send(f).is_err() && from_tx.is_closed() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        drop(to_agent);
        drop(from_tx);
        let _ = desk.send(Cmd::LegEnded(call));
    });
    (
        ConnectedLeg {
            from_agent: from_rx,
            to_agent: to_tx,
        },
        stop_tx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// Phones that answer each ring with the next scripted failure, and record who was rung.
    struct ScriptedPhones {
        answers: Mutex<Vec<(u16, String)>>,
        rung: Mutex<Vec<String>>,
    }

    impl AgentLines for ScriptedPhones {
        fn ring(&self, user: String, _caller: String, cancel: oneshot::Receiver<()>) -> Ring {
            self.rung.lock().expect("lock").push(user);
            let next = self.answers.lock().expect("lock").pop();
            Box::pin(async move {
                match next {
                    Some(failure) => Err(failure),
                    // Rings until the offer is withdrawn.
                    None => {
                        let _ = cancel.await;
                        Err((487, "cancelled".into()))
                    }
                }
            })
        }
    }

    fn queue(offer_s: u64, max_wait_s: u64) -> QueueConfig {
        QueueConfig {
            name: "q".into(),
            required_skills: BTreeMap::new(),
            priority: 1,
            offer_timeout: Duration::from_secs(offer_s),
            max_wait: Duration::from_secs(max_wait_s),
            overflow: None,
            wrap_up: Some(Duration::ZERO),
        }
    }

    fn profile(id: &str) -> AgentProfile {
        AgentProfile {
            id: id.into(),
            name: id.to_uppercase(),
            skills: BTreeMap::new(),
        }
    }

    fn summary() -> TransferSummary {
        TransferSummary {
            queue: "q".into(),
            priority: 0,
            reason: "test".into(),
            flow: "f".into(),
            version: 1,
            step: "agent".into(),
            slots: BTreeMap::new(),
            intents: Vec::new(),
            sentiment: None,
            path: Vec::new(),
            transcript: Vec::new(),
            script: Vec::new(),
        }
    }

    fn transfer(desk: &Desk, call: &str) -> mpsc::UnboundedReceiver<TransferUpdate> {
        let (tx, rx) = mpsc::unbounded_channel();
        desk.transfer(TransferRequest {
            call: call.into(),
            summary: summary(),
            customer: CustomerInfo {
                phone: "+15550100001".into(),
                ..CustomerInfo::default()
            },
            updates: tx,
        });
        rx
    }

    async fn next_update(rx: &mut mpsc::UnboundedReceiver<TransferUpdate>) -> TransferUpdate {
        loop {
            match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
                Ok(Some(TransferUpdate::Queued { .. })) => continue,
                Ok(Some(u)) => return u,
                Ok(None) => panic!("the desk dropped the call"),
                Err(_) => panic!("no update"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_changed_while_the_desk_runs_routes_its_waiting_call() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(Vec::new()),
            rung: Mutex::new(Vec::new()),
        });
        // The queue wants French, which the ready agent lacks: the call waits.
        let mut french = queue(10, 600);
        french.required_skills.insert("fr".into(), 5);
        let desk = Desk::start(vec![french], phones).expect("desk");
        let mut a = desk
            .login(profile("a"), Endpoint::Console)
            .await
            .expect("login a");
        desk.ready("a").await.expect("ready a");
        let _updates = transfer(&desk, "c1");
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(AgentNotice::Offer { .. }) = a.notices.recv().await {
                    break;
                }
            }
        })
        .await;
        assert!(waited.is_err(), "no offer to an agent without the skill");
        // An invalid change is refused and changes nothing.
        let mut bad = queue(10, 600);
        bad.overflow = Some(super::super::queue::Overflow {
            after: Duration::from_secs(5),
            to: "nowhere".into(),
        });
        assert!(desk.set_queue(bad).await.is_err());
        // The supervisor drops the skill requirement: the waiting call is offered at once.
        desk.set_queue(queue(10, 600)).await.expect("set queue");
        let offered = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Some(AgentNotice::Offer { call, .. }) = a.notices.recv().await {
                    break call;
                }
            }
        })
        .await
        .expect("an offer after the change");
        assert_eq!(offered, "c1");
        let snap = desk.snapshot().await.expect("snapshot");
        assert_eq!(snap.queues.len(), 1, "the queue was changed, not added");
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_phone_passes_the_call_on_and_a_console_agent_takes_it() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(vec![(486, "Busy Here".into())]),
            rung: Mutex::new(Vec::new()),
        });
        let desk = Desk::start(vec![queue(10, 60)], phones.clone()).expect("desk");
        let _a = desk
            .login(
                profile("a"),
                Endpoint::SipPhone {
                    user: "phone-a".into(),
                },
            )
            .await
            .expect("login a");
        desk.ready("a").await.expect("ready a");
        let mut b = desk
            .login(profile("b"), Endpoint::Console)
            .await
            .expect("login b");
        desk.ready("b").await.expect("ready b");
        let mut updates = transfer(&desk, "c1");
        // a (longest idle) is rung and busy: the offer goes to b's console.
        let offered = loop {
            match b.notices.recv().await.expect("notice") {
                AgentNotice::Offer { call, customer, .. } => break (call, customer),
                _ => continue,
            }
        };
        assert_eq!(offered.0, "c1");
        assert_eq!(offered.1.phone, "+15550100001");
        assert_eq!(*phones.rung.lock().expect("lock"), ["phone-a"]);
        // b accepts with their leg: the call gets the agent's audio, and the customer's.
        let (to_agent_tx, mut to_agent_rx) = mpsc::channel(10);
        let (from_agent_tx, from_agent_rx) = mpsc::channel(10);
        desk.accept(
            "b",
            "c1",
            ConnectedLeg {
                from_agent: from_agent_rx,
                to_agent: to_agent_tx,
            },
        )
        .await
        .expect("accept");
        let TransferUpdate::Connected { agent, mut audio } = next_update(&mut updates).await else {
            panic!("expected Connected")
        };
        assert_eq!(agent.id, "b");
        assert_eq!(agent.queue, "q");
        from_agent_tx
            .send(vec![7; 160])
            .await
            .expect("agent speaks");
        assert_eq!(audio.from_agent.recv().await, Some(vec![7; 160]));
        audio
            .to_agent
            .send(vec![9; 160])
            .await
            .expect("customer speaks");
        assert_eq!(to_agent_rx.recv().await, Some(vec![9; 160]));
        // A second accept of the same call is refused.
        let (t, _r) = mpsc::channel(1);
        let (_f, r) = mpsc::channel(1);
        assert!(
            desk.accept(
                "b",
                "c1",
                ConnectedLeg {
                    from_agent: r,
                    to_agent: t
                }
            )
            .await
            .is_err()
        );
        // The agent hangs up from the console: the customer's side and the console's leg end,
        // and the agent (no wrap-up here) is told the call ended.
        desk.hangup("b", "c1");
        assert_eq!(audio.from_agent.recv().await, None);
        assert_eq!(to_agent_rx.recv().await, None);
        loop {
            match b.notices.recv().await.expect("notice") {
                AgentNotice::CallEnded { call } => {
                    assert_eq!(call, "c1");
                    break;
                }
                _ => continue,
            }
        }
        drop(from_agent_tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transfer_within_a_limit_gives_up_at_the_limit_and_withdraws_the_offer() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(Vec::new()),
            rung: Mutex::new(Vec::new()),
        });
        let desk = Desk::start(vec![queue(10, 30)], phones).expect("desk");
        let mut a = desk
            .login(profile("a"), Endpoint::Console)
            .await
            .expect("login");
        desk.ready("a").await.expect("ready");
        let (tx, mut updates) = mpsc::unbounded_channel();
        let t0 = tokio::time::Instant::now();
        desk.transfer_within(
            TransferRequest {
                call: "c1".into(),
                summary: summary(),
                customer: CustomerInfo::default(),
                updates: tx,
            },
            Duration::from_millis(1750),
        );
        // Offered to the console, which does not answer: the call gives up at 1.75 s (not
        // at the offer timeout, nor at the queue's 30 s), and the offer is withdrawn.
        let TransferUpdate::Failed { .. } = next_update(&mut updates).await else {
            panic!("expected Failed")
        };
        assert_eq!(t0.elapsed(), Duration::from_millis(1750));
        let mut saw = (false, false);
        while let Ok(n) = a.notices.try_recv() {
            match n {
                AgentNotice::Offer { call, .. } => saw.0 |= call == "c1",
                AgentNotice::OfferWithdrawn { call, reason } => {
                    saw.1 |= call == "c1" && reason == WithdrawReason::GaveUp
                }
                _ => {}
            }
        }
        assert_eq!(saw, (true, true));
        // A plain transfer keeps the queue's wait.
        desk.pause("a", "break").await.expect("pause");
        let mut plain = transfer(&desk, "c2");
        let t1 = tokio::time::Instant::now();
        let TransferUpdate::Failed { .. } = next_update(&mut plain).await else {
            panic!("expected Failed")
        };
        assert_eq!(t1.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_login_takes_the_session_over() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(Vec::new()),
            rung: Mutex::new(Vec::new()),
        });
        let desk = Desk::start(vec![queue(5, 60)], phones).expect("desk");
        let mut first = desk
            .login(profile("a"), Endpoint::Console)
            .await
            .expect("login");
        desk.ready("a").await.expect("ready");
        let mut second = desk
            .login(profile("a"), Endpoint::Console)
            .await
            .expect("login again");
        assert_eq!(
            second.notices.recv().await,
            Some(AgentNotice::Status {
                status: AgentStatus::Ready
            })
        );
        // The first session saw its notices, then its channel closed.
        let mut last = None;
        while let Some(n) = first.notices.recv().await {
            last = Some(n);
        }
        assert_eq!(
            last,
            Some(AgentNotice::Status {
                status: AgentStatus::Ready
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_phone_is_cancelled_and_the_call_falls_back_after_max_wait() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(Vec::new()),
            rung: Mutex::new(Vec::new()),
        });
        let desk = Desk::start(vec![queue(5, 12)], phones.clone()).expect("desk");
        let mut a = desk
            .login(
                profile("a"),
                Endpoint::SipPhone {
                    user: "phone-a".into(),
                },
            )
            .await
            .expect("login");
        desk.ready("a").await.expect("ready");
        let mut updates = transfer(&desk, "c1");
        let TransferUpdate::Failed { reason } = next_update(&mut updates).await else {
            panic!("expected Failed")
        };
        assert!(reason.contains("queue `q`"), "{reason}");
        let mut seen = Vec::new();
        while let Ok(n) = a.notices.try_recv() {
            seen.push(n);
        }
        assert!(seen.iter().any(|n| matches!(
            n,
            AgentNotice::OfferWithdrawn {
                reason: WithdrawReason::Timeout,
                ..
            }
        )));
        assert_eq!(
            desk.snapshot()
                .await
                .expect("snapshot")
                .agents
                .first()
                .map(|a| a.status.clone()),
            Some(AgentStatus::Paused {
                reason: super::super::queue::REASON_MISSED_OFFER.into()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unregistered_phone_takes_its_agent_out_and_abandon_clears_the_call() {
        let phones = Arc::new(ScriptedPhones {
            answers: Mutex::new(vec![(0, "not registered".into())]),
            rung: Mutex::new(Vec::new()),
        });
        let desk = Desk::start(vec![queue(5, 60)], phones).expect("desk");
        let _a = desk
            .login(
                profile("a"),
                Endpoint::SipPhone {
                    user: "phone-a".into(),
                },
            )
            .await
            .expect("login");
        desk.ready("a").await.expect("ready");
        let _updates = transfer(&desk, "c1");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let snap = desk.snapshot().await.expect("snapshot");
        assert_eq!(
            snap.agents.first().map(|a| a.status.clone()),
            Some(AgentStatus::Offline)
        );
        desk.abandon("c1");
        let snap = desk.snapshot().await.expect("snapshot");
        assert_eq!(snap.queues.first().map(|q| q.waiting), Some(0));
    }
}
