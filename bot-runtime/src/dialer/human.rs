//! Human and blended campaigns in the live dialer: the pure parts (the built-in flow of human
//! calls, the agents the pacer sees, where each call stands, what goes on the abandon ledger).
//! [`super::service::Dialer`] wires them to the agent desk, the pacer and the store.
//!
//! # Human campaigns
//! Every answered call (a person, after answering-machine detection when the campaign runs it)
//! goes straight to the campaign's agent queue: the call runs [`human_flow`], a built-in flow
//! whose only step transfers to the queue, with no robot conversation. The transfer waits at
//! most [`HUMAN_MAX_WAIT`] for an agent (the desk's per-call limit,
//! [`crate::agents::desk::Desk::transfer_within`]); then the flow's fallback plays the
//! safe-harbour message ([`safe_harbour_message`], synthesised by the TTS and rendered when the
//! campaign starts, so it starts within [`SAFE_HARBOUR`] of the transfer) and the call ends with
//! the outcome [`ABANDONED_OUTCOME`], the attempt's disposition `abandoned` (retried under the
//! dial rules: 1 h, twice). The 2 s count from the moment the call is handed to the queue: the
//! answer, or the end of the customer's greeting (the AMD verdict) when AMD runs, as the FCC
//! rule counts it.
//!
//! # What goes on the abandon ledger
//! A *live answer* is an answered call that answering-machine detection did not call a
//! machine. Of those, a human campaign's call is *abandoned* when it was never connected to an
//! agent: the safe-harbour message, or the customer hanging up while waiting (counting that
//! too keeps the measured rate on the safe side). A blended campaign's call is abandoned when
//! its flow transferred it and no agent took it (the queue's own `max_wait`, then the flow's
//! `on_no_agent` fallback, or a hang-up while waiting); robot conversations that never
//! transfer are live answers that no agent was needed for. Robot campaigns keep no ledger.
//!
//! # Invariants
//! - A human campaign dials only while a desk runs on the node and its queue exists there;
//!   never without agents to take the calls.
//! - Every call of a paced campaign is counted, from its claim to its end, in exactly one of
//!   [`LiveCounts`]' `ringing`, `waiting` or `in_progress`: a [`CallTrack`] moves it and takes it
//!   out when dropped, so an error path cannot leak a count that would stop the pacing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dialog_flows::Flow;

use crate::agents::queue::{AgentStatus, Snapshot};
use crate::dialer::db::CampaignKind;
use crate::dialer::pacing::{AbandonLedger, BusyAgent, PacingEvent, SAFE_HARBOUR};
use crate::record::CallRecord;

/// The longest a human campaign's live answer waits for an agent: the safe harbour less the
/// time to start the (pre-rendered) message.
pub const HUMAN_MAX_WAIT: Duration = SAFE_HARBOUR.saturating_sub(Duration::from_millis(250));

/// The outcome of a human campaign's call that no agent took in time (and its disposition).
pub const ABANDONED_OUTCOME: &str = "abandoned";

/// The name of the built-in flow human campaigns' calls run.
pub const HUMAN_FLOW: &str = "human_campaign";

/// What a customer hears when no agent is free within the safe harbour.
pub fn safe_harbour_message(bank: &str) -> String {
    format!("Hello, this is {bank}. We're sorry we missed you; we will call you back. Goodbye.")
}

/// The built-in flow of a human campaign's calls: transfer to `queue`; when no agent takes the
/// call in time, the safe-harbour message and the outcome [`ABANDONED_OUTCOME`]. `bank` is the
/// name the message gives (the campaign's own flow's `bank.name`). It never listens, so it needs
/// no opt-out handler, and it declares no disclosures: the agent gives them.
pub fn human_flow(campaign: &str, queue: &str, bank: &str) -> Result<Flow, String> {
    // JSON strings are YAML double-quoted scalars: names cannot break out of them.
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let yaml = format!(
        "flow: {HUMAN_FLOW}\n\
         version: 1\n\
         language: en-US\n\
         description: Built-in flow of human campaigns; every answered call goes to an agent.\n\
         bank:\n  name: {bank}\n  campaign: {campaign}\n\
         start: connect\n\
         steps:\n\
         \x20 connect:\n\
         \x20   transfer: {{ queue: {queue}, reason: \"Outbound call of campaign {{{{bank.campaign}}}}\", on_no_agent: sorry }}\n\
         \x20 sorry:\n\
         \x20   say: {message}\n\
         \x20   end: {ABANDONED_OUTCOME}\n",
        bank = q(bank),
        campaign = q(campaign),
        queue = q(queue),
        message = q(&safe_harbour_message("{{bank.name}}")),
    );
    dialog_flows::load_str(&yaml, std::path::Path::new("human_campaign.yaml"))
        .map_err(|e| format!("the built-in flow of human campaigns does not load: {e}"))
}

/// The bank's name for the safe-harbour message: the flow's `bank.name`, else "your bank".
pub fn bank_name(flow: Option<&Flow>) -> String {
    flow.and_then(|f| f.bank.get("name"))
        .filter(|n| !n.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "your bank".into())
}

/// The agents of `queue` as the pacer sees them: how many are ready, and the busy ones
/// (offered a call, on a call or in wrap-up) with how long they have been so. `None` when the
/// desk has no such queue.
pub fn queue_agents(snapshot: &Snapshot, queue: &str) -> Option<(u32, Vec<BusyAgent>)> {
    snapshot.queues.iter().find(|q| q.name == queue)?;
    let mut ready = 0u32;
    let mut busy = Vec::new();
    for a in snapshot
        .agents
        .iter()
        .filter(|a| a.queues.iter().any(|q| q == queue))
    {
        match a.status {
            AgentStatus::Ready => ready += 1,
            AgentStatus::Offered { .. }
            | AgentStatus::OnCall { .. }
            | AgentStatus::WrapUp { .. } => busy.push(BusyAgent {
                busy_for: a.in_status,
                expected_remaining: None,
            }),
            AgentStatus::Paused { .. } | AgentStatus::Offline => {}
        }
    }
    Some((ready, busy))
}

/// The calls of one paced campaign on this node, by where they stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    /// Claimed and not yet answered (being checked, dialled, ringing, or in AMD).
    pub ringing: u32,
    /// Answered live and waiting in the queue for an agent.
    pub waiting: u32,
    /// Connected to an agent, talking to the robot, or past the wait (the message).
    pub in_progress: u32,
}

/// Where one call stands, as its [`CallTrack`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Ringing,
    Waiting,
    InProgress,
}

impl LiveCounts {
    fn slot(&mut self, phase: Phase) -> &mut u32 {
        match phase {
            Phase::Ringing => &mut self.ringing,
            Phase::Waiting => &mut self.waiting,
            Phase::InProgress => &mut self.in_progress,
        }
    }
}

/// One call of a paced campaign, counted in the campaign's [`LiveCounts`] from its claim until
/// it is dropped. Also remembers what the ledger needs: whether the call was queued for an
/// agent and whether one took it.
#[derive(Debug)]
pub struct CallTrack {
    counts: Arc<Mutex<LiveCounts>>,
    phase: Phase,
    pub queued: bool,
    pub connected: bool,
}

impl CallTrack {
    /// A claimed call: counted as ringing.
    pub fn new(counts: Arc<Mutex<LiveCounts>>) -> Self {
        lock(&counts).ringing += 1;
        CallTrack {
            counts,
            phase: Phase::Ringing,
            queued: false,
            connected: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    fn move_to(&mut self, phase: Phase) {
        if phase == self.phase {
            return;
        }
        let mut c = lock(&self.counts);
        let from = c.slot(self.phase);
        *from = from.saturating_sub(1);
        *c.slot(phase) += 1;
        self.phase = phase;
    }

    /// The call joined the queue (it was answered live).
    pub fn on_queued(&mut self) {
        self.queued = true;
        if !self.connected {
            self.move_to(Phase::Waiting);
        }
    }

    /// An agent took it.
    pub fn on_connected(&mut self) {
        self.connected = true;
        self.move_to(Phase::InProgress);
    }

    /// Anything else that says the call is answered and not waiting (the robot speaks, the
    /// machine verdict).
    pub fn on_answered(&mut self) {
        self.move_to(Phase::InProgress);
    }
}

impl Drop for CallTrack {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        let slot = c.slot(self.phase);
        *slot = slot.saturating_sub(1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a finished call was a live answer, and whether it was abandoned, for a campaign of
/// `kind` (see the module docs); `queued`/`connected` as its [`CallTrack`] saw them (connected
/// is also read from the record's agent leg).
pub fn ledger_entry(
    kind: CampaignKind,
    record: &CallRecord,
    queued: bool,
    connected: bool,
) -> AbandonLedger {
    let live = record.disposition == "answered"
        && record.amd.as_deref() != Some("machine")
        && record.outcome.as_deref() != Some("voicemail_left");
    let connected = connected || record.legs.iter().any(|l| l.kind == "agent");
    let abandoned = live
        && match kind {
            CampaignKind::Human => !connected,
            CampaignKind::Blended => queued && !connected,
            CampaignKind::Robot => false,
        };
    match kind {
        CampaignKind::Robot => AbandonLedger::default(),
        _ => AbandonLedger {
            live_answered: u64::from(live),
            abandoned: u64::from(abandoned),
        },
    }
}

/// What the pacer learns from a finished call, in order.
pub fn pacing_events(record: &CallRecord, ledger: AbandonLedger) -> Vec<PacingEvent> {
    let ring = record
        .answered_at
        .unwrap_or(record.ended_at)
        .signed_duration_since(record.started_at)
        .to_std()
        .unwrap_or_default();
    let mut out = Vec::new();
    if record.disposition != "answered" {
        out.push(PacingEvent::NotAnswered { ring });
        return out;
    }
    out.push(PacingEvent::Answered {
        machine: ledger.live_answered == 0,
        ring,
    });
    if let Some(leg) = record.legs.iter().find(|l| l.kind == "agent") {
        out.push(PacingEvent::Connected {
            waited: Duration::from_millis(leg.wait_ms.unwrap_or(0)),
        });
        out.push(PacingEvent::Handled {
            handle: leg
                .ended_at
                .signed_duration_since(leg.started_at)
                .to_std()
                .unwrap_or_default(),
        });
    }
    if ledger.abandoned > 0 {
        out.push(PacingEvent::Abandoned);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::queue::{AgentView, QueueView};
    use crate::record::{CallLeg, Direction};
    use chrono::Utc;
    use dialog_flows::{CallAction, Event};

    #[test]
    fn the_built_in_flow_transfers_then_gives_the_safe_harbour_message() {
        let flow = Arc::new(
            human_flow("spring \"promo\"", "collections", "Northwind: Bank").expect("loads"),
        );
        let now = chrono::NaiveDate::from_ymd_opt(2030, 1, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("a time");
        let (mut call, first) =
            dialog_flows::Call::start(flow.clone(), &serde_json::Map::new(), now).expect("start");
        let [CallAction::Transfer(summary)] = first.as_slice() else {
            panic!("the first action is the transfer: {first:?}");
        };
        assert_eq!(summary.queue, "collections");
        assert!(
            summary.reason.contains("spring \"promo\""),
            "{}",
            summary.reason
        );
        let then = call.handle(
            Event::TransferFailed {
                reason: "no agent".into(),
            },
            now,
        );
        let said: Vec<&str> = then
            .iter()
            .filter_map(|a| match a {
                CallAction::Speak(s) => Some(s.text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(said, [safe_harbour_message("Northwind: Bank").as_str()]);
        assert!(
            then.iter()
                .any(|a| matches!(a, CallAction::End { outcome } if outcome == ABANDONED_OUTCOME)),
            "{then:?}"
        );
        // The message is a static prompt: rendered when the campaign starts.
        assert!(
            crate::prompts::static_prompts(&flow)
                .contains(&safe_harbour_message("Northwind: Bank")),
            "{:?}",
            crate::prompts::static_prompts(&flow)
        );
        assert_eq!(bank_name(Some(&flow)), "Northwind: Bank");
        assert_eq!(bank_name(None), "your bank");
    }

    fn agent(id: &str, status: AgentStatus, secs: u64, queues: &[&str]) -> AgentView {
        AgentView {
            id: id.into(),
            name: id.into(),
            status,
            in_status: Duration::from_secs(secs),
            calls_handled: 0,
            talk_time: Duration::ZERO,
            offers_rejected: 0,
            offers_missed: 0,
            queues: queues.iter().map(|q| q.to_string()).collect(),
        }
    }

    fn queue(name: &str) -> QueueView {
        QueueView {
            name: name.into(),
            priority: 0,
            waiting: 0,
            overflowed_in: 0,
            longest_wait: Duration::ZERO,
            estimated_wait: None,
            average_handle_time: None,
            agents_qualified: 0,
            agents_ready: 0,
            agents_busy: 0,
            agents_paused: 0,
            enqueued: 0,
            offered: 0,
            answered: 0,
            answered_within_threshold: 0,
            abandoned: 0,
            given_up: 0,
            overflowed: 0,
            service_level: None,
        }
    }

    #[test]
    fn the_pacer_sees_the_queues_agents() {
        let snap = Snapshot {
            service_level_threshold: Duration::from_secs(20),
            queues: vec![queue("cards"), queue("loans")],
            agents: vec![
                agent("a", AgentStatus::Ready, 5, &["cards", "loans"]),
                agent("b", AgentStatus::Ready, 5, &["loans"]),
                agent(
                    "c",
                    AgentStatus::OnCall { call: "x".into() },
                    90,
                    &["cards"],
                ),
                agent("d", AgentStatus::WrapUp { call: "y".into() }, 7, &["cards"]),
                agent(
                    "e",
                    AgentStatus::Offered { call: "z".into() },
                    1,
                    &["cards"],
                ),
                agent(
                    "f",
                    AgentStatus::Paused {
                        reason: "lunch".into(),
                    },
                    60,
                    &["cards"],
                ),
                agent("g", AgentStatus::Offline, 60, &["cards"]),
            ],
        };
        let (ready, busy) = queue_agents(&snap, "cards").expect("a queue");
        assert_eq!(ready, 1);
        let mut secs: Vec<u64> = busy.iter().map(|b| b.busy_for.as_secs()).collect();
        secs.sort_unstable();
        assert_eq!(secs, [1, 7, 90]);
        assert_eq!(
            queue_agents(&snap, "loans").map(|(r, b)| (r, b.len())),
            Some((2, 0))
        );
        assert!(queue_agents(&snap, "mortgages").is_none());
    }

    #[test]
    fn every_call_is_counted_once_until_dropped() {
        let counts = Arc::new(Mutex::new(LiveCounts::default()));
        let snapshot = || *counts.lock().expect("lock");
        let mut a = CallTrack::new(counts.clone());
        let mut b = CallTrack::new(counts.clone());
        let c = CallTrack::new(counts.clone());
        assert_eq!(snapshot().ringing, 3);
        a.on_queued();
        b.on_queued();
        b.on_connected();
        b.on_queued(); // late or repeated events do not move a connected call back
        assert_eq!(
            snapshot(),
            LiveCounts {
                ringing: 1,
                waiting: 1,
                in_progress: 1
            }
        );
        a.on_answered();
        assert_eq!(a.phase(), Phase::InProgress);
        assert!(a.queued && !a.connected && b.connected);
        drop(a);
        drop(b);
        drop(c);
        assert_eq!(snapshot(), LiveCounts::default());
    }

    fn answered(amd: Option<&str>, agent: bool) -> CallRecord {
        let t0 = Utc::now();
        let mut r = CallRecord::new(Direction::Outbound, "+15551234567", t0);
        r.disposition = "answered".into();
        r.answered_at = Some(t0 + chrono::Duration::seconds(6));
        r.ended_at = t0 + chrono::Duration::seconds(60);
        r.amd = amd.map(str::to_string);
        if agent {
            r.legs.push(CallLeg {
                kind: "agent".into(),
                agent_id: Some("a".into()),
                queue: Some("cards".into()),
                wait_ms: Some(800),
                started_at: t0 + chrono::Duration::seconds(7),
                ended_at: t0 + chrono::Duration::seconds(60),
            });
        }
        r
    }

    #[test]
    fn what_counts_as_live_and_abandoned() {
        let human = CampaignKind::Human;
        let blended = CampaignKind::Blended;
        let one = |l, a| AbandonLedger {
            live_answered: l,
            abandoned: a,
        };
        // Human: connected or not.
        assert_eq!(
            ledger_entry(human, &answered(None, true), true, true),
            one(1, 0)
        );
        assert_eq!(
            ledger_entry(human, &answered(None, false), true, false),
            one(1, 1)
        );
        // Hung up before the queue (still counted: never connected).
        assert_eq!(
            ledger_entry(human, &answered(None, false), false, false),
            one(1, 1)
        );
        // A machine is not a live answer; nor is an unanswered call.
        assert_eq!(
            ledger_entry(human, &answered(Some("machine"), false), false, false),
            one(0, 0)
        );
        let mut busy = answered(None, false);
        busy.disposition = "busy".into();
        assert_eq!(ledger_entry(human, &busy, false, false), one(0, 0));
        // Blended: only transfers no agent took.
        assert_eq!(
            ledger_entry(blended, &answered(None, false), false, false),
            one(1, 0)
        );
        assert_eq!(
            ledger_entry(blended, &answered(None, false), true, false),
            one(1, 1)
        );
        assert_eq!(
            ledger_entry(blended, &answered(None, true), true, false),
            one(1, 0)
        );
        // Robot campaigns keep no ledger.
        assert_eq!(
            ledger_entry(CampaignKind::Robot, &answered(None, false), true, false),
            one(0, 0)
        );
    }

    #[test]
    fn the_pacer_learns_ring_handle_and_abandons() {
        let r = answered(None, true);
        let ev = pacing_events(&r, ledger_entry(CampaignKind::Human, &r, true, true));
        assert_eq!(
            ev,
            [
                PacingEvent::Answered {
                    machine: false,
                    ring: Duration::from_secs(6)
                },
                PacingEvent::Connected {
                    waited: Duration::from_millis(800)
                },
                PacingEvent::Handled {
                    handle: Duration::from_secs(53)
                },
            ]
        );
        let r = answered(None, false);
        let ev = pacing_events(&r, ledger_entry(CampaignKind::Human, &r, true, false));
        assert_eq!(ev.last(), Some(&PacingEvent::Abandoned));
        let r = answered(Some("machine"), false);
        let ev = pacing_events(&r, ledger_entry(CampaignKind::Human, &r, false, false));
        assert!(matches!(ev[0], PacingEvent::Answered { machine: true, .. }));
        let mut r = answered(None, false);
        r.disposition = "no_answer".into();
        r.answered_at = None;
        let ev = pacing_events(&r, ledger_entry(CampaignKind::Human, &r, false, false));
        assert_eq!(
            ev,
            [PacingEvent::NotAnswered {
                ring: Duration::from_secs(60)
            }]
        );
    }
}
