//! The flow interpreter: a sans-IO state machine, one per call.
//!
//! Events and the current time go in ([`Call::handle`]); actions come out (speak, listen, call a
//! webhook, transfer, schedule a callback, add to DNC, end). No I/O, no clock, no async inside: the
//! bot runtime performs the actions and reports back what happened. A call holds the `Arc<Flow>` it
//! started with, so activating a new version never changes a call in progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use crate::ast::*;
use crate::value::Value;

/// What the caller said, as understood by the NLU.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Utterance {
    pub text: String,
    pub intent: Option<String>,
    pub confidence: f32,
    pub entities: Entities,
    /// Sentiment score in [-1, 1] (negative is upset).
    pub sentiment: f32,
    /// The NLU's escalation signal (angry or upset caller).
    pub escalate: bool,
}

impl Utterance {
    pub fn text(text: &str) -> Self {
        Self {
            text: text.to_string(),
            ..Self::default()
        }
    }
}

/// Entities the NLU found in a turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Entities {
    pub yes_no: Option<bool>,
    pub date: Option<NaiveDate>,
    pub time: Option<NaiveTime>,
    pub datetime: Option<NaiveDateTime>,
    pub amount: Option<f64>,
    pub number: Option<f64>,
    pub digits: Option<String>,
    /// The option name of a choice slot.
    pub choice: Option<String>,
}

/// An event from the outside world.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Utterance(Utterance),
    /// Keys pressed (a complete entry, terminator included if pressed).
    Dtmf(String),
    /// The caller said nothing before the listen timeout.
    NoInput,
    /// The caller spoke over the robot; these speeches were not (fully) heard.
    BargeIn {
        unheard: Vec<u64>,
    },
    WebhookResult {
        id: u64,
        result: Result<serde_json::Value, String>,
    },
    /// No agent took the transferred call in time.
    TransferFailed {
        reason: String,
    },
    /// The cold transfer ([`CallAction::ColdTransfer`]) was refused, failed or went
    /// unanswered: the call is still with the robot.
    ColdTransferFailed {
        reason: String,
    },
    HangUp,
}

/// One thing the bot says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Speech {
    pub id: u64,
    pub text: String,
    pub step: String,
    /// The disclosure this speech delivers, if it is one.
    pub disclosure: Option<String>,
}

/// What the runtime should listen for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listen {
    pub step: String,
    /// Intents that mean something here (the step's own and the handlers').
    pub intents: Vec<String>,
    pub slot: Option<SlotType>,
    /// For choice slots: option name and the phrases that pick it.
    pub choices: Vec<(String, Vec<String>)>,
    pub dtmf: Option<(usize, Option<char>)>,
    pub timeout_ms: u64,
    /// Phrases to bias recognition towards.
    pub hints: Vec<String>,
    /// True while confirming a value (a yes/no answer is expected).
    pub confirming: bool,
    /// The step branches on `yes`/`no` (a plain yes or no answers it).
    pub yes_no: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRequest {
    pub id: u64,
    pub method: String,
    pub url: String,
    pub body: serde_json::Value,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Bot,
    Customer,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    pub text: String,
    pub at: NaiveDateTime,
    pub step: String,
    pub intent: Option<String>,
}

/// Everything an agent needs on screen when a call is handed over.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferSummary {
    pub queue: String,
    pub priority: u8,
    pub reason: String,
    pub flow: String,
    pub version: u32,
    pub step: String,
    pub slots: BTreeMap<String, String>,
    pub intents: Vec<String>,
    pub sentiment: Option<f32>,
    pub path: Vec<String>,
    pub transcript: Vec<TranscriptLine>,
    /// The flow's prompts for the agent (`transfer: {script: [...]}`), rendered.
    pub script: Vec<String>,
}

/// An instruction for the runtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CallAction {
    Speak(Speech),
    Listen(Listen),
    Webhook(WebhookRequest),
    SendDtmf {
        digits: String,
    },
    Transfer(Box<TransferSummary>),
    /// Hand the call to an outside number (SIP REFER) and leave it. `to` is an E.164 number
    /// (`+442071234567`) or a `sip:`/`sips:` URI, already checked. The flow waits: an
    /// [`Event::ColdTransferFailed`] brings the call back to it.
    ColdTransfer {
        to: String,
        reason: String,
        step: String,
    },
    ScheduleCallback {
        at: Option<NaiveDateTime>,
        note: Option<String>,
    },
    AddDnc {
        reason: String,
    },
    End {
        outcome: String,
    },
    Log {
        step: String,
        message: String,
    },
}

/// Lead data that does not match the flow's lead schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct LeadError {
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Listening {
        step: usize,
        confirming: Option<Value>,
    },
    Webhook {
        step: usize,
        id: u64,
    },
    Transferred {
        step: usize,
    },
    /// Waiting for the outcome of a cold transfer.
    ColdTransferring {
        step: usize,
    },
    Ended,
}

/// The step name recorded for a voicemail left on an answering machine.
pub const VOICEMAIL_STEP: &str = "voicemail";

/// One call running one flow version.
#[derive(Debug, Clone)]
pub struct Call {
    flow: Arc<Flow>,
    lead: BTreeMap<String, Value>,
    slots: BTreeMap<String, Value>,
    vars: BTreeMap<String, Value>,
    state: State,
    no_match: u32,
    no_input: u32,
    turns: u32,
    next_id: u64,
    /// Disclosures spoken and not reported unheard.
    delivered: BTreeSet<String>,
    disclosure_ids: HashMap<u64, String>,
    interrupted: Option<usize>,
    path: Vec<String>,
    transcript: Vec<TranscriptLine>,
    intents: Vec<String>,
    sentiment: Option<f32>,
    outcome: Option<String>,
    now: NaiveDateTime,
}

/// The default texts when a flow gives none.
const SORRY_NO_MATCH: &str = "Sorry, I didn't understand.";
const SORRY_NO_INPUT: &str = "Sorry, I didn't hear anything.";
const SORRY_INVALID: &str = "Sorry, that doesn't look right.";
/// Steps run in one go without listening before the call is stopped as a flow error.
const STEP_BUDGET: usize = 1000;

fn coerce(ty: FieldType, v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    Ok(match (ty, v) {
        (_, J::Null) => Value::Null,
        (FieldType::Text, J::String(s)) => Value::Text(s.clone()),
        (FieldType::Text, J::Number(n)) => Value::Text(n.to_string()),
        (FieldType::Number | FieldType::Amount, J::Number(n)) => {
            Value::Number(n.as_f64().unwrap_or(0.0))
        }
        (FieldType::Number | FieldType::Amount, J::String(s)) => Value::Number(
            s.replace([',', '$', '€', '£'], "")
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("`{s}` is not a number"))?,
        ),
        (FieldType::Date, J::String(s)) => Value::Date(
            Value::parse_date(s).ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))?,
        ),
        (FieldType::DateTime, J::String(s)) => Value::DateTime(
            Value::parse_datetime(s)
                .ok_or_else(|| format!("`{s}` is not a date and time (YYYY-MM-DDTHH:MM)"))?,
        ),
        (FieldType::Digits, J::String(s)) => {
            let d: String = s
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            if !d.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("`{s}` is not a string of digits"));
            }
            Value::Text(d)
        }
        (FieldType::Digits, J::Number(n)) if n.is_u64() => Value::Text(n.to_string()),
        (FieldType::Bool, J::Bool(b)) => Value::Bool(*b),
        (_, other) => return Err(format!("`{other}` is not a {ty:?}").to_lowercase()),
    })
}

impl Call {
    /// Start a call: check the lead against the flow's schema and run up to the first question.
    pub fn start(
        flow: Arc<Flow>,
        lead: &serde_json::Map<String, serde_json::Value>,
        now: NaiveDateTime,
    ) -> Result<(Call, Vec<CallAction>), LeadError> {
        let mut problems = Vec::new();
        let mut values = BTreeMap::new();
        for (name, decl) in &flow.lead {
            match lead.get(name) {
                None | Some(serde_json::Value::Null) if decl.required => {
                    problems.push(format!("lead field `{name}` is required"));
                }
                None => {
                    values.insert(name.clone(), Value::Null);
                }
                Some(v) => match coerce(decl.ty, v) {
                    Ok(v) => {
                        values.insert(name.clone(), v);
                    }
                    Err(e) => problems.push(format!("lead field `{name}`: {e}")),
                },
            }
        }
        if !problems.is_empty() {
            return Err(LeadError { problems });
        }
        let mut call = Call {
            flow,
            lead: values,
            slots: BTreeMap::new(),
            vars: BTreeMap::new(),
            state: State::Ended,
            no_match: 0,
            no_input: 0,
            turns: 0,
            next_id: 1,
            delivered: BTreeSet::new(),
            disclosure_ids: HashMap::new(),
            interrupted: None,
            path: Vec::new(),
            transcript: Vec::new(),
            intents: Vec::new(),
            sentiment: None,
            outcome: None,
            now,
        };
        let mut out = Vec::new();
        match call.flow.start.step {
            Some(s) => call.run(s, &mut out),
            None => call.end("flow_error", "", &mut out),
        }
        Ok((call, out))
    }

    pub fn flow(&self) -> &Arc<Flow> {
        &self.flow
    }
    pub fn outcome(&self) -> Option<&str> {
        self.outcome.as_deref()
    }
    /// Ended, or handed to an agent or an outside number.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            State::Ended | State::Transferred { .. } | State::ColdTransferring { .. }
        )
    }
    /// Handed over (to an agent's queue, or to an outside number by a cold transfer); a
    /// failure event may still bring the call back to the flow.
    pub fn is_transferred(&self) -> bool {
        matches!(
            self.state,
            State::Transferred { .. } | State::ColdTransferring { .. }
        )
    }
    /// Waiting for the outcome of a cold transfer.
    pub fn is_cold_transferring(&self) -> bool {
        matches!(self.state, State::ColdTransferring { .. })
    }
    pub fn slots(&self) -> &BTreeMap<String, Value> {
        &self.slots
    }
    pub fn vars(&self) -> &BTreeMap<String, Value> {
        &self.vars
    }
    pub fn path(&self) -> &[String] {
        &self.path
    }
    pub fn transcript(&self) -> &[TranscriptLine] {
        &self.transcript
    }
    pub fn turns(&self) -> u32 {
        self.turns
    }
    /// The disclosures the caller has heard (spoken and not cut off).
    pub fn delivered_disclosures(&self) -> &BTreeSet<String> {
        &self.delivered
    }
    /// The step the call is waiting in.
    pub fn current_step(&self) -> Option<&str> {
        match &self.state {
            State::Listening { step, .. }
            | State::Webhook { step, .. }
            | State::Transferred { step }
            | State::ColdTransferring { step } => Some(self.flow.steps[*step].name.as_str()),
            State::Ended => None,
        }
    }

    /// The call reached an answering machine (the runtime's detector decided, and the greeting
    /// and beep are over). With a `voicemail` message in the flow, every mandatory disclosure
    /// and then the message are spoken, outcome `voicemail_left`; without one, the call ends
    /// with outcome `machine` (the dialer retries later). Whatever the flow had started saying
    /// is dropped by the runtime; nothing else happens in the call afterwards.
    pub fn answering_machine(&mut self, now: NaiveDateTime) -> Vec<CallAction> {
        self.now = now;
        let mut out = Vec::new();
        if self.state == State::Ended && self.outcome.is_some() {
            return out;
        }
        self.path.push(VOICEMAIL_STEP.to_string());
        let flow = Arc::clone(&self.flow);
        match &flow.voicemail {
            Some(message) => {
                self.delivered.clear();
                for d in &flow.disclosures {
                    let text = self.render(&d.text);
                    self.speak_as(VOICEMAIL_STEP.into(), text, Some(d.name.clone()), &mut out);
                }
                let text = self.render(message);
                self.speak_as(VOICEMAIL_STEP.into(), text, None, &mut out);
                self.end("voicemail_left", VOICEMAIL_STEP, &mut out);
            }
            None => self.end("machine", VOICEMAIL_STEP, &mut out),
        }
        out
    }

    /// The prompts of this call that depend on nothing but the lead and the bank, rendered:
    /// known from the start, so a runtime can synthesise them while the phone rings or the
    /// greeting plays. No duplicates, in flow order.
    pub fn lead_prompts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.flow.prompt_templates() {
            let fixed = t
                .names()
                .all(|(path, _)| matches!(path.first().map(String::as_str), Some("lead" | "bank")));
            if !fixed {
                continue;
            }
            let text = self.render(t);
            if !text.trim().is_empty() && !out.contains(&text) {
                out.push(text);
            }
        }
        out
    }

    /// Feed one event at time `now`; returns what to do.
    pub fn handle(&mut self, event: Event, now: NaiveDateTime) -> Vec<CallAction> {
        self.now = now;
        let mut out = Vec::new();
        match (self.state.clone(), event) {
            (State::Ended, _) => {}
            (State::Transferred { .. } | State::ColdTransferring { .. }, Event::HangUp) => {}
            (_, Event::HangUp) => {
                let step = self.current_step().unwrap_or("").to_string();
                self.end("hung_up", &step, &mut out);
            }
            (_, Event::BargeIn { unheard }) => {
                for id in unheard {
                    if let Some(name) = self.disclosure_ids.get(&id) {
                        self.delivered.remove(name);
                        out.push(CallAction::Log {
                            step: self.current_step().unwrap_or("").to_string(),
                            message: format!("disclosure `{name}` was cut off; it will be repeated before anything else is said"),
                        });
                    }
                }
            }
            (State::Listening { step, confirming }, Event::Utterance(u)) => {
                self.utterance(step, confirming, u, &mut out)
            }
            (State::Listening { step, confirming }, Event::Dtmf(keys)) => {
                self.dtmf(step, confirming, &keys, &mut out)
            }
            (State::Listening { step, .. }, Event::NoInput) => self.no_input(step, &mut out),
            (State::Webhook { step, id }, Event::WebhookResult { id: got, result })
                if got == id =>
            {
                let Action::Webhook(w) = &self.flow.steps[step].action else {
                    return out;
                };
                let w = w.clone();
                match result {
                    Ok(json) => {
                        if let Some(name) = &w.save_as {
                            self.vars.insert(name.clone(), Value::from_json(&json));
                        }
                        self.follow(&w.next, &mut out);
                    }
                    Err(e) => {
                        out.push(CallAction::Log {
                            step: self.flow.steps[step].name.clone(),
                            message: format!("webhook failed: {e}"),
                        });
                        self.follow(&w.on_failure, &mut out);
                    }
                }
            }
            (State::Transferred { step }, Event::TransferFailed { reason }) => {
                let Action::Transfer(t) = &self.flow.steps[step].action else {
                    return out;
                };
                let t = t.clone();
                out.push(CallAction::Log {
                    step: self.flow.steps[step].name.clone(),
                    message: format!("transfer failed: {reason}"),
                });
                self.outcome = None;
                match &t.on_no_agent {
                    Some(target) => {
                        self.state = State::Ended;
                        self.follow(target, &mut out);
                    }
                    None => {
                        let name = self.flow.steps[step].name.clone();
                        self.end("no_agent", &name, &mut out);
                    }
                }
            }
            (State::ColdTransferring { step }, Event::ColdTransferFailed { reason }) => {
                let Action::ColdTransfer(t) = &self.flow.steps[step].action else {
                    return out;
                };
                let t = t.clone();
                self.cold_transfer_failed(step, &t, &reason, &mut out);
            }
            (state, ev) => out.push(CallAction::Log {
                step: self.current_step().unwrap_or("").to_string(),
                message: format!("ignored {} while {}", event_name(&ev), state_name(&state)),
            }),
        }
        out
    }

    /// A cold transfer did not happen: log why and go to its `on_failure` step, or end the call
    /// with `transfer_failed`.
    fn cold_transfer_failed(
        &mut self,
        step: usize,
        t: &ColdTransfer,
        reason: &str,
        out: &mut Vec<CallAction>,
    ) {
        let name = self.flow.steps[step].name.clone();
        out.push(CallAction::Log {
            step: name.clone(),
            message: format!("cold transfer failed: {reason}"),
        });
        self.outcome = None;
        match &t.on_failure {
            Some(target) => {
                self.state = State::Ended;
                self.follow(target, out);
            }
            None => self.end("transfer_failed", &name, out),
        }
    }

    fn lookup(&self, path: &[String]) -> Value {
        let root = path.first().map(String::as_str).unwrap_or("");
        let base = match (root, path.get(1)) {
            ("today", None) => return Value::Date(self.now.date()),
            ("now", None) => return Value::DateTime(self.now),
            ("lead", Some(f)) => self.lead.get(f).cloned(),
            ("bank", Some(f)) => self.flow.bank.get(f).map(|s| Value::Text(s.clone())),
            ("slots", Some(f)) => self.slots.get(f).cloned(),
            ("vars", Some(f)) => self.vars.get(f).cloned(),
            _ => None,
        };
        let mut v = base.unwrap_or(Value::Null);
        for part in path.iter().skip(2) {
            v = v.field(part).cloned().unwrap_or(Value::Null);
        }
        v
    }

    fn render(&self, t: &crate::template::Template) -> String {
        t.render(&|p| self.lookup(p), &self.flow.currency)
    }

    fn speak_raw(
        &mut self,
        step: usize,
        text: String,
        disclosure: Option<String>,
        out: &mut Vec<CallAction>,
    ) {
        let step_name = self.flow.steps[step].name.clone();
        self.speak_as(step_name, text, disclosure, out);
    }

    fn speak_as(
        &mut self,
        step_name: String,
        text: String,
        disclosure: Option<String>,
        out: &mut Vec<CallAction>,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        if let Some(d) = &disclosure {
            self.disclosure_ids.insert(id, d.clone());
            self.delivered.insert(d.clone());
        }
        self.transcript.push(TranscriptLine {
            speaker: Speaker::Bot,
            text: text.clone(),
            at: self.now,
            step: step_name.clone(),
            intent: None,
        });
        out.push(CallAction::Speak(Speech {
            id,
            text,
            step: step_name,
            disclosure,
        }));
    }

    fn disclose(&mut self, step: usize, name: &str, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        if let Some(d) = flow.disclosures.iter().find(|d| d.name == name) {
            let text = self.render(&d.text);
            self.speak_raw(step, text, Some(name.to_string()), out);
        }
    }

    /// Speak business content, first repeating any mandatory disclosure the caller has not heard.
    fn say(&mut self, step: usize, text: String, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        for d in &flow.disclosures {
            if !self.delivered.contains(&d.name) {
                self.disclose(step, &d.name, out);
            }
        }
        if !text.is_empty() {
            self.speak_raw(step, text, None, out);
        }
    }

    fn end(&mut self, outcome: &str, step: &str, out: &mut Vec<CallAction>) {
        self.state = State::Ended;
        self.outcome = Some(outcome.to_string());
        let _ = step;
        out.push(CallAction::End {
            outcome: outcome.to_string(),
        });
    }

    fn follow(&mut self, t: &TargetRef, out: &mut Vec<CallAction>) {
        if t.is_resume() {
            match self.interrupted.take() {
                Some(step) => self.ask(step, false, out),
                None => {
                    out.push(CallAction::Log {
                        step: String::new(),
                        message: "`resume` with no interrupted question".into(),
                    });
                    self.end("flow_error", "", out);
                }
            }
            return;
        }
        match t.step {
            Some(s) => self.run(s, out),
            None => self.end("flow_error", "", out),
        }
    }

    /// Run steps from `start` until the call must wait for something.
    fn run(&mut self, start: usize, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        let mut step = start;
        for _ in 0..STEP_BUDGET {
            let s = &flow.steps[step];
            self.path.push(s.name.clone());
            for (d, _) in &s.disclose {
                self.disclose(step, d, out);
            }
            if let Some(t) = &s.say {
                let text = self.render(t);
                self.say(step, text, out);
            }
            let target: &TargetRef = match &s.action {
                Action::Say { next } => next,
                Action::Ask(_) => {
                    self.no_match = 0;
                    self.no_input = 0;
                    self.ask(step, true, out);
                    return;
                }
                Action::Branch { arms, otherwise } => arms
                    .iter()
                    .find(|(cond, _)| cond.eval(&|p| self.lookup(p)).truthy())
                    .map_or(otherwise, |(_, t)| t),
                Action::Set { assign, next } => {
                    for (name, e, _) in assign {
                        let v = e.eval(&|p| self.lookup(p));
                        self.vars.insert(name.clone(), v);
                    }
                    next
                }
                Action::Webhook(w) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let body: serde_json::Map<String, serde_json::Value> = w
                        .body
                        .iter()
                        .map(|(k, t)| (k.clone(), serde_json::Value::String(self.render(t))))
                        .collect();
                    out.push(CallAction::Webhook(WebhookRequest {
                        id,
                        method: w.method.clone(),
                        url: self.render(&w.url),
                        body: serde_json::Value::Object(body),
                        timeout_ms: w.timeout_ms,
                    }));
                    self.state = State::Webhook { step, id };
                    return;
                }
                Action::SendDtmf { digits, next } => {
                    out.push(CallAction::SendDtmf {
                        digits: self.render(digits),
                    });
                    next
                }
                Action::Transfer(t) => {
                    let reason = self.render(&t.reason);
                    self.outcome = Some(format!("transferred:{}", t.queue));
                    out.push(CallAction::Transfer(Box::new(TransferSummary {
                        queue: t.queue.clone(),
                        priority: t.priority,
                        reason,
                        flow: flow.name.clone(),
                        version: flow.version,
                        step: s.name.clone(),
                        slots: self
                            .slots
                            .iter()
                            .map(|(k, v)| (k.clone(), v.to_string()))
                            .collect(),
                        intents: self.intents.clone(),
                        sentiment: self.sentiment,
                        path: self.path.clone(),
                        transcript: self.transcript.clone(),
                        script: t.script.iter().map(|l| self.render(l)).collect(),
                    })));
                    self.state = State::Transferred { step };
                    return;
                }
                Action::ColdTransfer(t) => {
                    let rendered = self.render(&t.to);
                    self.state = State::ColdTransferring { step };
                    match crate::ast::transfer_destination(&rendered) {
                        Some(to) => {
                            self.outcome = Some(format!("cold_transferred:{to}"));
                            out.push(CallAction::ColdTransfer {
                                to,
                                reason: self.render(&t.reason),
                                step: s.name.clone(),
                            });
                        }
                        None => {
                            let why = format!("`{rendered}` is not an E.164 number or a sip: URI");
                            self.cold_transfer_failed(step, t, &why, out);
                        }
                    }
                    return;
                }
                Action::Callback { at, note, next } => {
                    let at = match at.eval(&|p| self.lookup(p)) {
                        Value::DateTime(d) => Some(d),
                        Value::Date(d) => d.and_hms_opt(10, 0, 0),
                        Value::Time(t) => {
                            let today = self.now.date().and_time(t);
                            Some(if today > self.now {
                                today
                            } else {
                                today + chrono::Duration::days(1)
                            })
                        }
                        _ => None,
                    };
                    if at.is_none() {
                        out.push(CallAction::Log {
                            step: s.name.clone(),
                            message: "callback time unknown; the dialer's retry rules decide"
                                .into(),
                        });
                    }
                    let note = note.as_ref().map(|n| self.render(n));
                    out.push(CallAction::ScheduleCallback { at, note });
                    next
                }
                Action::Dnc { reason, next } => {
                    out.push(CallAction::AddDnc {
                        reason: self.render(reason),
                    });
                    next
                }
                Action::End { outcome } => {
                    let name = s.name.clone();
                    self.end(outcome, &name, out);
                    return;
                }
            };
            if target.is_resume() {
                self.follow(target, out);
                return;
            }
            match target.step {
                Some(n) => step = n,
                None => {
                    self.end("flow_error", "", out);
                    return;
                }
            }
        }
        out.push(CallAction::Log {
            step: flow.steps[step].name.clone(),
            message: format!("more than {STEP_BUDGET} steps without listening; stopping the call"),
        });
        self.end("flow_error", "", out);
    }

    /// Speak the question (or a reprompt preamble first) and listen.
    fn ask(&mut self, step: usize, fresh: bool, out: &mut Vec<CallAction>) {
        self.ask_with(step, fresh, None, out);
    }

    fn ask_with(
        &mut self,
        step: usize,
        _fresh: bool,
        preamble: Option<String>,
        out: &mut Vec<CallAction>,
    ) {
        let flow = Arc::clone(&self.flow);
        let Action::Ask(a) = &flow.steps[step].action else {
            return;
        };
        if let Some(p) = preamble {
            self.say(step, p, out);
        }
        let prompt = self.render(&a.prompt);
        self.say(step, prompt, out);
        self.listen(step, None, out);
    }

    fn listen(&mut self, step: usize, confirming: Option<Value>, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        let Action::Ask(a) = &flow.steps[step].action else {
            return;
        };
        let mut intents: Vec<String> = a
            .expect
            .iter()
            .filter_map(|(k, _, _)| match k {
                ExpectKey::Intent(i) => Some(i.clone()),
                _ => None,
            })
            .collect();
        for h in flow.handlers.keys() {
            if let Some(i) = h.intent()
                && !intents.iter().any(|x| x == i)
            {
                intents.push(i.to_string());
            }
        }
        let is_confirming = confirming.is_some();
        let yes_no = a
            .expect
            .iter()
            .any(|(k, _, _)| matches!(k, ExpectKey::Yes | ExpectKey::No));
        out.push(CallAction::Listen(Listen {
            yes_no,
            step: flow.steps[step].name.clone(),
            intents,
            slot: if is_confirming {
                Some(SlotType::YesNo)
            } else {
                a.slot.as_ref().map(|s| s.ty)
            },
            choices: a
                .slot
                .as_ref()
                .map(|s| {
                    s.options
                        .iter()
                        .map(|o| (o.name.clone(), o.phrases.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            dtmf: a.dtmf.as_ref().map(|d| (d.max_digits, d.terminator)),
            timeout_ms: if a.timeout_ms > 0 {
                a.timeout_ms
            } else {
                flow.settings.no_input_timeout_ms
            },
            hints: a.hints.clone(),
            confirming: is_confirming,
        }));
        self.state = State::Listening { step, confirming };
    }

    fn fire_handler(&mut self, step: usize, h: Handler, out: &mut Vec<CallAction>) -> bool {
        let flow = Arc::clone(&self.flow);
        let Some(t) = flow.handlers.get(&h) else {
            return false;
        };
        out.push(CallAction::Log {
            step: flow.steps[step].name.clone(),
            message: format!("handler `{}`", h.name()),
        });
        self.interrupted = Some(step);
        self.follow(t, out);
        true
    }

    fn utterance(
        &mut self,
        step: usize,
        confirming: Option<Value>,
        u: Utterance,
        out: &mut Vec<CallAction>,
    ) {
        let flow = Arc::clone(&self.flow);
        let s = &flow.steps[step];
        let Action::Ask(a) = &s.action else { return };
        self.turns += 1;
        self.transcript.push(TranscriptLine {
            speaker: Speaker::Customer,
            text: u.text.clone(),
            at: self.now,
            step: s.name.clone(),
            intent: u.intent.clone(),
        });
        self.sentiment = Some(u.sentiment);
        let confident_intent = u
            .intent
            .clone()
            .filter(|_| u.confidence >= flow.settings.min_confidence);
        if let Some(i) = &confident_intent {
            self.intents.push(i.clone());
        }
        if self.turns > flow.settings.max_turns {
            out.push(CallAction::Log {
                step: s.name.clone(),
                message: format!("more than {} caller turns", flow.settings.max_turns),
            });
            self.end("too_many_turns", &s.name.clone(), out);
            return;
        }
        // Global handlers come first, unless this step expects that intent itself. Precedence:
        // an opt-out (compliance), then a request for a person, then an upset caller, then the
        // rest ("who is this?", "call me later").
        let handler_intent = confident_intent.as_ref().and_then(|i| {
            let local = a
                .expect
                .iter()
                .any(|(k, _, _)| *k == ExpectKey::Intent(i.clone()));
            Handler::ALL
                .iter()
                .map(|(_, h)| *h)
                .find(|h| !local && h.intent() == Some(i.as_str()))
        });
        let order = [
            Handler::StopCalling,
            Handler::AgentRequest,
            Handler::NegativeSentiment,
            Handler::WhoIsThis,
            Handler::CallMeLater,
        ];
        for h in order {
            let fires = if h == Handler::NegativeSentiment {
                u.escalate
            } else {
                handler_intent == Some(h)
            };
            if fires && self.fire_handler(step, h, out) {
                return;
            }
        }
        if let Some(value) = confirming {
            match u.entities.yes_no {
                Some(true) => {
                    if let Some(slot) = &a.slot {
                        self.slots.insert(slot.name.clone(), value);
                    }
                    if let Some(next) = &a.next {
                        self.follow(next, out);
                    }
                }
                Some(false) => {
                    self.ask(step, false, out);
                }
                None => self.fail(step, true, out),
            }
            return;
        }
        if let Some(i) = &confident_intent
            && let Some((_, _, t)) = a
                .expect
                .iter()
                .find(|(k, _, _)| *k == ExpectKey::Intent(i.clone()))
        {
            self.follow(t, out);
            return;
        }
        if let Some(slot) = &a.slot
            && let Some(v) = self.extract(slot, &u)
        {
            self.accept(step, v, out);
            return;
        }
        if let Some(yes) = u.entities.yes_no {
            let key = if yes { ExpectKey::Yes } else { ExpectKey::No };
            if let Some((_, _, t)) = a.expect.iter().find(|(k, _, _)| *k == key) {
                self.follow(t, out);
                return;
            }
        }
        self.fail(step, true, out);
    }

    fn dtmf(
        &mut self,
        step: usize,
        confirming: Option<Value>,
        keys: &str,
        out: &mut Vec<CallAction>,
    ) {
        let flow = Arc::clone(&self.flow);
        let s = &flow.steps[step];
        let Action::Ask(a) = &s.action else { return };
        self.turns += 1;
        self.transcript.push(TranscriptLine {
            speaker: Speaker::Customer,
            text: format!("[keys {keys}]"),
            at: self.now,
            step: s.name.clone(),
            intent: None,
        });
        let entry: String = keys
            .chars()
            .filter(|c| Some(*c) != a.dtmf.as_ref().and_then(|d| d.terminator))
            .collect();
        if let Some(value) = confirming {
            match entry.as_str() {
                "1" => {
                    if let Some(slot) = &a.slot {
                        self.slots.insert(slot.name.clone(), value);
                    }
                    if let Some(next) = &a.next {
                        self.follow(next, out);
                    }
                }
                "2" => self.ask(step, false, out),
                _ => self.fail(step, true, out),
            }
            return;
        }
        let value = match (a.slot.as_ref(), a.dtmf.is_some()) {
            (Some(slot), true) => match slot.ty {
                SlotType::Digits => Some(Value::Text(entry.clone()))
                    .filter(|_| !entry.is_empty() && entry.chars().all(|c| c.is_ascii_digit())),
                SlotType::Number | SlotType::Amount => entry.parse::<f64>().ok().map(Value::Number),
                SlotType::YesNo => match entry.as_str() {
                    "1" => Some(Value::Bool(true)),
                    "2" => Some(Value::Bool(false)),
                    _ => None,
                },
                SlotType::Choice => slot
                    .options
                    .iter()
                    .find(|o| o.dtmf.as_deref() == Some(entry.as_str()))
                    .map(|o| Value::Text(o.name.clone())),
                _ => None,
            },
            _ => None,
        };
        match value {
            Some(v) => self.accept(step, v, out),
            None => self.fail(step, true, out),
        }
    }

    /// Check a heard value against the slot's rules; confirm it or store it and move on.
    fn accept(&mut self, step: usize, v: Value, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        let Action::Ask(a) = &flow.steps[step].action else {
            return;
        };
        let Some(slot) = &a.slot else { return };
        if !self.valid(slot, &v) {
            out.push(CallAction::Log {
                step: flow.steps[step].name.clone(),
                message: format!("`{v}` is not a valid {}", slot.name),
            });
            let msg = a
                .invalid
                .as_ref()
                .map_or_else(|| SORRY_INVALID.to_string(), |t| self.render(t));
            self.no_match += 1;
            if self.no_match > a.no_match.max {
                self.escalate(&a.no_match.then, out);
            } else {
                self.ask_with(step, false, Some(msg), out);
            }
            return;
        }
        if let Some(c) = &a.confirm {
            // Render the confirmation with the candidate value visible as the slot.
            let previous = self.slots.insert(slot.name.clone(), v.clone());
            let text = self.render(c);
            match previous {
                Some(p) => self.slots.insert(slot.name.clone(), p),
                None => self.slots.remove(&slot.name),
            };
            self.say(step, text, out);
            self.listen(step, Some(v), out);
            return;
        }
        self.slots.insert(slot.name.clone(), v);
        if let Some(next) = &a.next {
            self.follow(next, out);
        }
    }

    fn valid(&self, slot: &Slot, v: &Value) -> bool {
        let cmp = |bound: &Option<crate::expr::Expression>, want_le: bool| -> bool {
            let Some(e) = bound else { return true };
            let b = e.eval(&|p| self.lookup(p));
            let ord = match (v, &b) {
                (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
                (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
                (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
                (Value::DateTime(x), Value::Date(y)) => Some(x.date().cmp(y)),
                (Value::Date(x), Value::DateTime(y)) => Some(x.cmp(&y.date())),
                _ => None,
            };
            match ord {
                Some(o) => {
                    if want_le {
                        o != std::cmp::Ordering::Greater
                    } else {
                        o != std::cmp::Ordering::Less
                    }
                }
                // A bound that cannot be evaluated (missing lead data) does not reject the value.
                None => true,
            }
        };
        if !cmp(&slot.min, false) || !cmp(&slot.max, true) {
            return false;
        }
        if let (Some((lo, hi)), Value::Text(d)) = (slot.length, v) {
            let n = d.chars().count();
            if n < lo || n > hi {
                return false;
            }
        }
        true
    }

    fn extract(&self, slot: &Slot, u: &Utterance) -> Option<Value> {
        let e = &u.entities;
        match slot.ty {
            SlotType::YesNo => e.yes_no.map(Value::Bool),
            SlotType::Date => e.date.or(e.datetime.map(|d| d.date())).map(Value::Date),
            SlotType::Time => e.time.or(e.datetime.map(|d| d.time())).map(Value::Time),
            SlotType::DateTime => e
                .datetime
                .or_else(|| e.date.and_then(|d| d.and_hms_opt(10, 0, 0)))
                .map(Value::DateTime),
            SlotType::Amount => e.amount.or(e.number).map(Value::Number),
            SlotType::Number => e.number.or(e.amount).map(Value::Number),
            SlotType::Digits => e.digits.clone().map(Value::Text),
            SlotType::Choice => e
                .choice
                .clone()
                .filter(|c| slot.options.iter().any(|o| o.name == *c))
                .or_else(|| match_choice(&slot.options, &u.text))
                .map(Value::Text),
            SlotType::Text => Some(u.text.trim().to_string())
                .filter(|t| !t.is_empty())
                .map(Value::Text),
        }
    }

    fn fail(&mut self, step: usize, no_match: bool, out: &mut Vec<CallAction>) {
        let flow = Arc::clone(&self.flow);
        let Action::Ask(a) = &flow.steps[step].action else {
            return;
        };
        let (count, retry, default) = if no_match {
            self.no_match += 1;
            (self.no_match, &a.no_match, SORRY_NO_MATCH)
        } else {
            self.no_input += 1;
            (self.no_input, &a.no_input, SORRY_NO_INPUT)
        };
        if count > retry.max {
            out.push(CallAction::Log {
                step: flow.steps[step].name.clone(),
                message: format!(
                    "{} after {} reprompts",
                    if no_match { "no match" } else { "no input" },
                    retry.max
                ),
            });
            self.escalate(&retry.then, out);
            return;
        }
        if retry.reprompts.is_empty() {
            self.ask_with(step, false, Some(default.to_string()), out);
        } else {
            let t = &retry.reprompts[(count as usize - 1) % retry.reprompts.len()];
            let text = self.render(t);
            self.say(step, text, out);
            self.listen(step, None, out);
        }
    }

    fn escalate(&mut self, t: &TargetRef, out: &mut Vec<CallAction>) {
        self.no_match = 0;
        self.no_input = 0;
        self.follow(t, out);
    }

    fn no_input(&mut self, step: usize, out: &mut Vec<CallAction>) {
        self.fail(step, false, out);
    }
}

/// Pick a choice option by its phrases in the text (longest phrase wins).
pub fn match_choice(options: &[ChoiceOption], text: &str) -> Option<String> {
    let norm = |s: &str| -> String {
        s.to_lowercase()
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let t = format!(" {} ", norm(text));
    options
        .iter()
        .flat_map(|o| o.phrases.iter().map(move |p| (o, norm(p))))
        .filter(|(_, p)| !p.is_empty() && t.contains(&format!(" {p} ")))
        .max_by_key(|(_, p)| p.len())
        .map(|(o, _)| o.name.clone())
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Utterance(_) => "an utterance",
        Event::Dtmf(_) => "keys",
        Event::NoInput => "a no-input timeout",
        Event::BargeIn { .. } => "a barge-in",
        Event::WebhookResult { .. } => "a webhook result",
        Event::TransferFailed { .. } => "a failed transfer",
        Event::ColdTransferFailed { .. } => "a failed cold transfer",
        Event::HangUp => "a hang-up",
    }
}

fn state_name(s: &State) -> &'static str {
    match s {
        State::Listening { .. } => "listening",
        State::Webhook { .. } => "waiting for a webhook",
        State::Transferred { .. } => "transferred",
        State::ColdTransferring { .. } => "cold-transferring",
        State::Ended => "ended",
    }
}
