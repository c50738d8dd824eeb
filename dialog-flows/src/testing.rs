//! Conversation tests: YAML files of scripted calls with expected bot replies, slots, outcome and
//! transfer, run against a flow with a real NLU (anything implementing [`Understand`]).
//!
//! ```yaml
//! flow: card_payment_reminder.yaml     # relative to this file
//! now: 2026-11-25T10:00:00             # the call's local time
//! lead: {first_name: Ana, amount_due: 120.50, due_date: 2026-12-01}
//! tests:
//!   - name: promises to pay today
//!     turns:
//!       - bot: this call is recorded     # said since the last caller turn (case-insensitive part)
//!       - user: yes that's me
//!       - user: I can pay today
//!       - dtmf: "4217#"
//!       - silence                        # no input before the timeout
//!       - barge_in                       # the caller cut off the last thing the bot said
//!       - webhook: {ok: {blocked: true}} # the result of the webhook the flow just called
//!       - webhook: {fail: timeout}
//!       - no_agent                       # nobody took the transfer
//!       - transfer_failed                # the cold transfer (`transfer: {to: ...}`) failed
//!       - hangup
//!     expect:
//!       outcome: promise_today
//!       slots: {pay_date: 2026-11-25}
//!       transfer: disputes               # the queue, or the number/URI of a cold transfer
//!       dnc: true
//!       callback: true
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDateTime;

use crate::ast::Flow;
use crate::error::{Diagnostic, FlowErrors, Pos};
use crate::interp::{Call, CallAction, Event, Listen, Utterance};
use crate::value::Value;
use crate::yaml::{self, Node, Value as Y};

/// Turns the caller's text into an [`Utterance`] for the step that is listening.
pub trait Understand {
    fn understand(
        &mut self,
        flow: &Flow,
        listen: Option<&Listen>,
        text: &str,
        now: NaiveDateTime,
    ) -> Result<Utterance, String>;
}

#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    Bot(String),
    User(String),
    Dtmf(String),
    Silence,
    BargeIn,
    WebhookOk(serde_json::Value),
    WebhookFail(String),
    NoAgent,
    /// The outside number of a cold transfer could not be reached (the REFER was refused).
    TransferFailed,
    HangUp,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    pub outcome: Option<String>,
    pub slots: BTreeMap<String, String>,
    /// The queue of a transfer to agents, or the destination of a cold transfer.
    pub transfer: Option<String>,
    pub dnc: Option<bool>,
    pub callback: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub pos: Pos,
    pub lead: serde_json::Map<String, serde_json::Value>,
    pub now: NaiveDateTime,
    pub turns: Vec<(Turn, Pos)>,
    pub expect: Expectations,
}

#[derive(Debug, Clone)]
pub struct TestFile {
    pub path: PathBuf,
    pub flow_path: PathBuf,
    pub cases: Vec<TestCase>,
}

fn json_of(n: &Node) -> serde_json::Value {
    match &n.value {
        Y::Null => serde_json::Value::Null,
        Y::Scalar { text, quoted } => {
            if !quoted {
                if let Some(b) = n.as_bool() {
                    return serde_json::Value::Bool(b);
                }
                if let Ok(i) = text.parse::<i64>() {
                    return serde_json::Value::from(i);
                }
                if let Ok(f) = text.parse::<f64>()
                    && f.is_finite()
                {
                    return serde_json::Value::from(f);
                }
            }
            serde_json::Value::String(text.clone())
        }
        Y::Seq(items) => serde_json::Value::Array(items.iter().map(json_of).collect()),
        Y::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), json_of(v)))
                .collect(),
        ),
    }
}

fn parse_now(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<NaiveDateTime> {
    let s = n.as_str().unwrap_or("");
    let v = Value::parse_datetime(s);
    if v.is_none() {
        diags.push(Diagnostic::new(
            n.pos,
            "schema",
            "`now` must be a local date and time such as 2026-11-25T10:00:00",
        ));
    }
    v
}

/// Read a conversation test file.
pub fn load_tests(path: &Path) -> Result<TestFile, FlowErrors> {
    let src = std::fs::read_to_string(path).map_err(|e| {
        FlowErrors::new(
            path,
            vec![Diagnostic::new(
                Pos::new(1, 1),
                "io",
                format!("cannot read the file: {e}"),
            )],
        )
    })?;
    parse_tests(&src, path)
}

pub fn parse_tests(src: &str, path: &Path) -> Result<TestFile, FlowErrors> {
    let root = yaml::parse(src).map_err(|d| FlowErrors::new(path, vec![d]))?;
    let mut diags = Vec::new();
    let err = |diags: &mut Vec<Diagnostic>, pos: Pos, msg: String| {
        diags.push(Diagnostic::new(pos, "test", msg))
    };
    if root.as_map().is_none() {
        return Err(FlowErrors::new(
            path,
            vec![Diagnostic::new(
                root.pos,
                "test",
                "a test file is a mapping with `flow`, `tests` and optional `lead`, `now`",
            )],
        ));
    }
    for (k, _) in root.as_map().unwrap_or(&[]) {
        let key = k.as_str().unwrap_or("");
        if !["flow", "lead", "now", "tests"].contains(&key) {
            err(
                &mut diags,
                k.pos,
                format!("unknown key `{key}` in a test file (keys: flow, lead, now, tests)"),
            );
        }
    }
    let flow_path = match root.get("flow").and_then(Node::as_str) {
        Some(f) => path.parent().unwrap_or(Path::new(".")).join(f),
        None => {
            err(
                &mut diags,
                root.pos,
                "the test file needs `flow: FILE` (relative to the test file)".into(),
            );
            PathBuf::new()
        }
    };
    let base_lead = match root.get("lead").map(json_of) {
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => {
            err(
                &mut diags,
                root.get("lead").map_or(root.pos, |n| n.pos),
                "`lead` must be a mapping of field to value".into(),
            );
            serde_json::Map::new()
        }
        None => serde_json::Map::new(),
    };
    let default_now = chrono::NaiveDate::from_ymd_opt(2026, 1, 5)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .unwrap_or_default();
    let base_now = root
        .get("now")
        .and_then(|n| parse_now(n, &mut diags))
        .unwrap_or(default_now);
    let mut cases = Vec::new();
    match root.get("tests").and_then(Node::as_seq) {
        None => err(
            &mut diags,
            root.pos,
            "the test file needs `tests:`, a list of conversations".into(),
        ),
        Some(items) => {
            for it in items {
                let Some(m) = it.as_map() else {
                    err(
                        &mut diags,
                        it.pos,
                        "each test is a mapping with `name`, `turns` and `expect`".into(),
                    );
                    continue;
                };
                for (k, _) in m {
                    let key = k.as_str().unwrap_or("");
                    if !["name", "lead", "now", "turns", "expect"].contains(&key) {
                        err(
                            &mut diags,
                            k.pos,
                            format!(
                                "unknown key `{key}` in a test (keys: name, lead, now, turns, expect)"
                            ),
                        );
                    }
                }
                let name = it
                    .get("name")
                    .and_then(Node::as_str)
                    .unwrap_or("(unnamed)")
                    .to_string();
                let mut lead = base_lead.clone();
                if let Some(serde_json::Value::Object(m)) = it.get("lead").map(json_of) {
                    lead.extend(m);
                }
                let now = it
                    .get("now")
                    .and_then(|n| parse_now(n, &mut diags))
                    .unwrap_or(base_now);
                let mut turns = Vec::new();
                for t in it.get("turns").and_then(Node::as_seq).unwrap_or(&[]) {
                    let turn = match (&t.value, t.as_map()) {
                        (Y::Scalar { text, .. }, _) => match text.as_str() {
                            "silence" => Some(Turn::Silence),
                            "barge_in" => Some(Turn::BargeIn),
                            "hangup" => Some(Turn::HangUp),
                            "no_agent" => Some(Turn::NoAgent),
                            "transfer_failed" => Some(Turn::TransferFailed),
                            other => {
                                err(
                                    &mut diags,
                                    t.pos,
                                    format!(
                                        "unknown turn `{other}` (bare turns: silence, barge_in, hangup, no_agent, transfer_failed)"
                                    ),
                                );
                                None
                            }
                        },
                        (_, Some([(k, v)])) => {
                            let text = v.as_str().unwrap_or("").to_string();
                            match k.as_str().unwrap_or("") {
                                "bot" => Some(Turn::Bot(text)),
                                "user" => Some(Turn::User(text)),
                                "dtmf" => Some(Turn::Dtmf(text)),
                                "webhook" => {
                                    match (v.get("ok"), v.get("fail")) {
                                        (Some(ok), None) => Some(Turn::WebhookOk(json_of(ok))),
                                        (None, Some(f)) => Some(Turn::WebhookFail(
                                            f.as_str().unwrap_or("failed").to_string(),
                                        )),
                                        _ => {
                                            err(&mut diags, v.pos, "`webhook` takes `{ok: RESULT}` or `{fail: REASON}`".into());
                                            None
                                        }
                                    }
                                }
                                other => {
                                    err(
                                        &mut diags,
                                        k.pos,
                                        format!(
                                            "unknown turn `{other}` (turns: bot, user, dtmf, webhook, silence, barge_in, no_agent, transfer_failed, hangup)"
                                        ),
                                    );
                                    None
                                }
                            }
                        }
                        _ => {
                            err(&mut diags, t.pos, "a turn is `bot: TEXT`, `user: TEXT`, `dtmf: KEYS`, `webhook: {...}` or one of silence, barge_in, no_agent, transfer_failed, hangup".into());
                            None
                        }
                    };
                    if let Some(turn) = turn {
                        turns.push((turn, t.pos));
                    }
                }
                let mut expect = Expectations::default();
                if let Some(e) = it.get("expect") {
                    for (k, v) in e.as_map().unwrap_or(&[]) {
                        match k.as_str().unwrap_or("") {
                            "outcome" => expect.outcome = v.as_str().map(str::to_string),
                            "transfer" => {
                                expect.transfer = v.as_str().map(str::to_string).or_else(|| {
                                    v.get("queue")
                                        .or_else(|| v.get("to"))
                                        .and_then(Node::as_str)
                                        .map(str::to_string)
                                })
                            }
                            "dnc" => expect.dnc = v.as_bool(),
                            "callback" => expect.callback = v.as_bool(),
                            "slots" => {
                                for (sk, sv) in v.as_map().unwrap_or(&[]) {
                                    let val = match json_of(sv) {
                                        serde_json::Value::String(s) => s,
                                        other => other.to_string(),
                                    };
                                    expect
                                        .slots
                                        .insert(sk.as_str().unwrap_or("").to_string(), val);
                                }
                            }
                            other => err(
                                &mut diags,
                                k.pos,
                                format!(
                                    "unknown expectation `{other}` (outcome, slots, transfer, dnc, callback)"
                                ),
                            ),
                        }
                    }
                }
                cases.push(TestCase {
                    name,
                    pos: it.pos,
                    lead,
                    now,
                    turns,
                    expect,
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(TestFile {
            path: path.to_path_buf(),
            flow_path,
            cases,
        })
    } else {
        Err(FlowErrors::new(path, diags))
    }
}

/// The result of one conversation test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub name: String,
    pub pos: Pos,
    /// `None` when the test passed; otherwise a readable account of the conversation and what
    /// differed.
    pub failure: Option<String>,
}

fn norm(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run one test case against a loaded flow.
pub fn run_case(flow: &Arc<Flow>, case: &TestCase, nlu: &mut dyn Understand) -> TestResult {
    let mut log = String::new();
    let mut failure: Option<String> = None;
    let now = case.now;
    let (mut call, first) = match Call::start(Arc::clone(flow), &case.lead, now) {
        Ok(x) => x,
        Err(e) => {
            return TestResult {
                name: case.name.clone(),
                pos: case.pos,
                failure: Some(format!("the lead does not fit the flow: {e}")),
            };
        }
    };
    let mut pending: Vec<CallAction> = first;
    // Bot speech since the last caller event, not yet matched by `bot:` lines.
    let mut heard: Vec<(u64, String)> = Vec::new();
    let mut listen: Option<Listen> = None;
    let mut webhook: Option<u64> = None;
    let mut dnc = false;
    let mut callback = false;
    let mut transfer: Option<String> = None;
    let mut last_speech_ids: Vec<u64> = Vec::new();
    let mut absorb = |actions: Vec<CallAction>,
                      log: &mut String,
                      heard: &mut Vec<(u64, String)>,
                      listen: &mut Option<Listen>,
                      webhook: &mut Option<u64>,
                      last: &mut Vec<u64>| {
        let mut fresh = true;
        for a in actions {
            match a {
                CallAction::Speak(s) => {
                    if fresh {
                        last.clear();
                        fresh = false;
                    }
                    last.push(s.id);
                    let _ = writeln!(log, "  bot:  {}", s.text);
                    heard.push((s.id, s.text));
                }
                CallAction::Listen(l) => *listen = Some(l),
                CallAction::Webhook(w) => {
                    let _ = writeln!(log, "  [webhook {} {}]", w.method, w.url);
                    *webhook = Some(w.id);
                }
                CallAction::SendDtmf { digits } => {
                    let _ = writeln!(log, "  [bot sends keys {digits}]");
                }
                CallAction::Transfer(t) => {
                    let _ = writeln!(
                        log,
                        "  [transfer to queue {} (priority {}): {}]",
                        t.queue, t.priority, t.reason
                    );
                    for line in &t.script {
                        let _ = writeln!(log, "    [for the agent: {line}]");
                    }
                    transfer = Some(t.queue.clone());
                }
                CallAction::ColdTransfer { to, reason, .. } => {
                    let _ = writeln!(log, "  [cold transfer to {to}: {reason}]");
                    transfer = Some(to);
                }
                CallAction::ScheduleCallback { at, .. } => {
                    let _ = writeln!(
                        log,
                        "  [callback {}]",
                        at.map_or("by retry rules".to_string(), |a| a.to_string())
                    );
                    callback = true;
                }
                CallAction::AddDnc { reason } => {
                    let _ = writeln!(log, "  [added to do-not-call: {reason}]");
                    dnc = true;
                }
                CallAction::End { outcome } => {
                    let _ = writeln!(log, "  [end: {outcome}]");
                }
                CallAction::Log { .. } => {}
            }
        }
    };
    absorb(
        std::mem::take(&mut pending),
        &mut log,
        &mut heard,
        &mut listen,
        &mut webhook,
        &mut last_speech_ids,
    );
    for (turn, pos) in &case.turns {
        if failure.is_some() {
            break;
        }
        let event = match turn {
            Turn::Bot(want) => {
                let w = norm(want);
                match heard.iter().position(|(_, h)| norm(h).contains(&w)) {
                    Some(i) => {
                        heard.drain(..=i);
                    }
                    None => {
                        let said: Vec<String> =
                            heard.iter().map(|(_, h)| format!("    \"{h}\"")).collect();
                        failure = Some(format!(
                            "line {}: expected the bot to say \"{want}\", but since the last caller turn it said:\n{}",
                            pos.line,
                            if said.is_empty() {
                                "    (nothing)".to_string()
                            } else {
                                said.join("\n")
                            }
                        ));
                    }
                }
                continue;
            }
            Turn::User(text) => {
                let u = match nlu.understand(flow, listen.as_ref(), text, now) {
                    Ok(u) => u,
                    Err(e) => {
                        failure = Some(format!("line {}: the NLU failed: {e}", pos.line));
                        break;
                    }
                };
                let _ = writeln!(
                    log,
                    "  user: {text}    [{} {:.2}{}{}]",
                    u.intent.as_deref().unwrap_or("no intent"),
                    u.confidence,
                    entity_note(&u),
                    if u.escalate { ", upset" } else { "" }
                );
                Event::Utterance(u)
            }
            Turn::Dtmf(keys) => {
                let _ = writeln!(log, "  user: [keys {keys}]");
                Event::Dtmf(keys.clone())
            }
            Turn::Silence => {
                let _ = writeln!(log, "  user: (silence)");
                Event::NoInput
            }
            Turn::BargeIn => {
                let _ = writeln!(log, "  user: (speaks over the bot)");
                Event::BargeIn {
                    unheard: last_speech_ids.clone(),
                }
            }
            Turn::HangUp => {
                let _ = writeln!(log, "  user: (hangs up)");
                Event::HangUp
            }
            Turn::NoAgent => Event::TransferFailed {
                reason: "no agent answered".into(),
            },
            Turn::TransferFailed => {
                let _ = writeln!(log, "  (the cold transfer failed)");
                Event::ColdTransferFailed {
                    reason: "the transfer was refused".into(),
                }
            }
            Turn::WebhookOk(v) => match webhook.take() {
                Some(id) => Event::WebhookResult {
                    id,
                    result: Ok(v.clone()),
                },
                None => {
                    failure = Some(format!(
                        "line {}: the test gives a webhook result, but the flow is not waiting for a webhook",
                        pos.line
                    ));
                    break;
                }
            },
            Turn::WebhookFail(e) => match webhook.take() {
                Some(id) => Event::WebhookResult {
                    id,
                    result: Err(e.clone()),
                },
                None => {
                    failure = Some(format!(
                        "line {}: the test gives a webhook result, but the flow is not waiting for a webhook",
                        pos.line
                    ));
                    break;
                }
            },
        };
        if call.is_finished()
            && !matches!(turn, Turn::NoAgent | Turn::TransferFailed | Turn::HangUp)
        {
            failure = Some(format!(
                "line {}: the test goes on, but the call already finished ({})",
                pos.line,
                call.outcome().unwrap_or("?")
            ));
            break;
        }
        if webhook.is_some()
            && !matches!(
                turn,
                Turn::WebhookOk(_) | Turn::WebhookFail(_) | Turn::HangUp
            )
        {
            failure = Some(format!(
                "line {}: the flow is waiting for its webhook; give the result first with `- webhook: {{ok: ...}}` or `{{fail: ...}}`",
                pos.line
            ));
            break;
        }
        heard.clear();
        let actions = call.handle(event, now);
        absorb(
            actions,
            &mut log,
            &mut heard,
            &mut listen,
            &mut webhook,
            &mut last_speech_ids,
        );
    }
    let mut diffs = Vec::new();
    if failure.is_none() {
        let e = &case.expect;
        if let Some(want) = &e.outcome {
            let got = call.outcome().unwrap_or("(still in progress)");
            if got != want {
                diffs.push(format!("outcome: expected `{want}`, got `{got}`"));
            }
        }
        if let Some(want) = &e.transfer {
            match &transfer {
                Some(q) if q == want => {}
                Some(q) => diffs.push(format!("transfer: expected `{want}`, got `{q}`")),
                None => diffs.push(format!(
                    "transfer: expected a transfer to `{want}`, there was none"
                )),
            }
        }
        if let Some(want) = e.dnc
            && want != dnc
        {
            diffs.push(format!("dnc: expected {want}, got {dnc}"));
        }
        if let Some(want) = e.callback
            && want != callback
        {
            diffs.push(format!("callback: expected {want}, got {callback}"));
        }
        for (k, want) in &e.slots {
            let got = call.slots().get(k).map(Value::to_string);
            if got.as_deref() != Some(want.as_str()) {
                diffs.push(format!(
                    "slot `{k}`: expected `{want}`, got {}",
                    got.map_or("nothing".to_string(), |g| format!("`{g}`"))
                ));
            }
        }
        if !diffs.is_empty() {
            failure = Some(diffs.join("\n"));
        }
    }
    TestResult {
        name: case.name.clone(),
        pos: case.pos,
        failure: failure.map(|f| {
            format!(
                "{f}\n  conversation:\n{log}  path: {}",
                call.path().join(" → ")
            )
        }),
    }
}

fn entity_note(u: &Utterance) -> String {
    let e = &u.entities;
    let mut parts = Vec::new();
    if let Some(y) = e.yes_no {
        parts.push(if y {
            "yes".to_string()
        } else {
            "no".to_string()
        });
    }
    if let Some(d) = e.date {
        parts.push(format!("date {d}"));
    }
    if let Some(d) = e.datetime {
        parts.push(format!("datetime {d}"));
    }
    if let Some(a) = e.amount {
        parts.push(format!("amount {a}"));
    }
    if let Some(n) = e.number {
        parts.push(format!("number {n}"));
    }
    if let Some(d) = &e.digits {
        parts.push(format!("digits {d}"));
    }
    if let Some(c) = &e.choice {
        parts.push(format!("choice {c}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    }
}
