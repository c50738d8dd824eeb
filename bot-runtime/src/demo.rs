//! The demo campaign: callbot dials four simulated customer phones over real SIP/RTP on
//! loopback and runs the card payment reminder flow with each — one who promises to pay, one who
//! interrupts the robot, one who asks for a person, and an answering machine — printing the live
//! transcript with turn latencies, saving every call record to the store, and ending with a
//! summary. Used by `callbot demo`, its CI test and the latency benchmark.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use dialog_flows::Flow;
use tokio::sync::mpsc;

use crate::call::LiveEvent;
use crate::engines::Engines;
use crate::record::CallRecord;
use crate::runtime::{Dial, Runtime, RuntimeConfig};
use crate::sim::{Line, Phone, PhoneReport, Script, trim};
use crate::store::Store;

/// The sample flow the demo runs.
pub const FLOW_YAML: &str = include_str!("../../dialog-flows/flows/card_payment_reminder.yaml");

/// One demo customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub name: String,
    pub phone: String,
    pub lead: serde_json::Value,
    pub lines: Vec<ScriptLine>,
    pub expect_outcome: &'static str,
}

/// A line of a customer's script, as text (rendered to audio before the campaign).
#[derive(Debug, Clone)]
pub enum ScriptLine {
    Greet(&'static str),
    Answer(&'static str),
    Interrupt(&'static str, u64),
    /// An answering machine's greeting, followed by a beep.
    Machine(&'static str),
}

fn lead(first_name: &str, amount: f64, card: &str) -> serde_json::Value {
    let due = chrono::Local::now().date_naive() + chrono::Days::new(6);
    serde_json::json!({
        "first_name": first_name,
        "amount_due": amount,
        "due_date": due.format("%Y-%m-%d").to_string(),
        "card_number": card,
    })
}

/// The four customers of the demo.
pub fn customers() -> Vec<Customer> {
    use ScriptLine::*;
    vec![
        Customer {
            name: "Ana".into(),
            phone: "+15550100001".into(),
            lead: lead("Ana", 120.5, "4111111111114217"),
            lines: vec![
                Greet("Hello?"),
                Answer("Yes, speaking."),
                Answer("No, not today."),
                Answer("I can pay it next Friday."),
                Answer("Yes, that's right."),
            ],
            expect_outcome: "promise_to_pay",
        },
        Customer {
            name: "Ben".into(),
            phone: "+15550100002".into(),
            lead: lead("Ben", 89.99, "5500000000000004"),
            lines: vec![
                Greet("Hello?"),
                Answer("Yes, it's me."),
                Interrupt("Sorry, I already paid that last week.", 2500),
            ],
            expect_outcome: "already_paid",
        },
        Customer {
            name: "Chloe".into(),
            phone: "+15550100003".into(),
            lead: lead("Chloe", 310.0, "340000000000009"),
            lines: vec![
                Greet("Hello?"),
                Answer("Yes."),
                Answer("I want to speak to a real person, please."),
            ],
            expect_outcome: "no_agent",
        },
        Customer {
            name: "Dan".into(),
            phone: "+15550100004".into(),
            lead: lead("Dan", 45.0, "6011000000000004"),
            lines: vec![Machine(
                "Hi, you've reached Dan. I can't take your call right now. Please leave a message after the tone.",
            )],
            expect_outcome: "voicemail_left",
        },
    ]
}

/// Renders a customer's words in a voice different from the robot's: the same model, rendered
/// lower and slower (played back at 87% of its rate: 22.05 kHz audio read as 19.2 kHz, a ratio
/// to 8 kHz of 12:5 that the resampler handles exactly).
pub fn customer_voice(engines: &Engines, text: &str) -> Result<Vec<i16>, tts::TtsError> {
    let audio = engines.voice.synthesize(text)?;
    let slowed = (f64::from(audio.sample_rate) * 0.87 / 400.0).round() as u32 * 400;
    let shifted = tts::Audio {
        samples: audio.samples,
        sample_rate: slowed,
    }
    .resample(tts::TELEPHONY_RATE)?;
    let pcm: Vec<i16> = shifted
        .samples
        .iter()
        .map(|&s| (s.clamp(-1.0, 1.0) * 32767.0) as i16)
        .collect();
    Ok(trim(&pcm, 60))
}

/// An answering machine's beep: 1000 Hz for 400 ms, then 300 ms of silence.
pub fn beep() -> Vec<i16> {
    let mut b: Vec<i16> = (0..3200)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16
        })
        .collect();
    b.extend(std::iter::repeat_n(0, 2400));
    b
}

/// A customer's script rendered to audio.
pub fn render_script(engines: &Engines, c: &Customer) -> Result<Script, tts::TtsError> {
    let mut lines = Vec::new();
    for l in &c.lines {
        lines.push(match l {
            ScriptLine::Greet(t) => Line::Greet {
                text: (*t).into(),
                audio: customer_voice(engines, t)?,
            },
            ScriptLine::Answer(t) => Line::Answer {
                text: (*t).into(),
                audio: customer_voice(engines, t)?,
            },
            ScriptLine::Interrupt(t, after) => Line::Interrupt {
                text: (*t).into(),
                audio: customer_voice(engines, t)?,
                after_ms: *after,
            },
            ScriptLine::Machine(t) => {
                let mut audio = customer_voice(engines, t)?;
                audio.extend(std::iter::repeat_n(0, 4000));
                audio.extend(beep());
                Line::Machine { audio }
            }
        });
    }
    Ok(Script {
        name: c.name.clone(),
        lines,
        answer_gap_ms: 900,
        linger_ms: 30_000,
    })
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Database URL (e.g. `sqlite://callbot-data/callbot.db`).
    pub database_url: String,
    pub recording_dir: Option<PathBuf>,
    /// Run the customers one after the other instead of all at once.
    pub sequential: bool,
}

/// One row of the summary.
#[derive(Debug, Clone)]
pub struct DemoResult {
    pub customer: Customer,
    pub record: CallRecord,
    pub phone: PhoneReport,
}

/// Errors that stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("flow: {0}")]
    Flow(String),
    #[error("store: {0}")]
    Store(String),
    #[error("speech synthesis: {0}")]
    Tts(#[from] tts::TtsError),
    #[error(transparent)]
    Engine(#[from] crate::engines::EngineError),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
}

/// Loads the demo's flow.
pub fn flow() -> Result<Arc<Flow>, DemoError> {
    dialog_flows::load_str(
        FLOW_YAML,
        std::path::Path::new("dialog-flows/flows/card_payment_reminder.yaml"),
    )
    .map(Arc::new)
    .map_err(|e| DemoError::Flow(e.to_string()))
}

/// Runs the demo campaign; `print` receives each live line.
pub async fn run(
    engines: Arc<Engines>,
    opts: &DemoOptions,
    print: impl Fn(String) + Send + 'static,
) -> Result<Vec<DemoResult>, DemoError> {
    let flow = flow()?;
    let store = Arc::new(
        Store::open(&opts.database_url)
            .await
            .map_err(|e| DemoError::Store(e.to_string()))?,
    );
    // Campaign start: the flow's NLU and its static prompts.
    let e2 = engines.clone();
    let f2 = flow.clone();
    let prerendered = tokio::task::spawn_blocking(move || {
        e2.flow_nlu(&f2)?;
        e2.prerender_flow(&f2)
    })
    .await
    .map_err(|e| DemoError::Io(std::io::Error::other(e)))??;
    print(format!(
        "campaign `demo`: flow {} v{}, {} static prompts pre-rendered",
        flow.name, flow.version, prerendered
    ));
    let mut cfg = RuntimeConfig::loopback();
    cfg.recording_dir = opts.recording_dir.clone();
    if let Some(dir) = &opts.recording_dir {
        std::fs::create_dir_all(dir)?;
    }
    let (rt, _) = Runtime::start(engines.clone(), cfg, Some(store.clone())).await?;
    let (live_tx, mut live_rx) = mpsc::unbounded_channel::<LiveEvent>();
    let customers = customers();
    let mut jobs = Vec::new();
    for c in customers {
        let script = {
            let e = engines.clone();
            let c2 = c.clone();
            tokio::task::spawn_blocking(move || render_script(&e, &c2))
                .await
                .map_err(|e| DemoError::Io(std::io::Error::other(e)))??
        };
        let phone = Phone::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &c.name.to_lowercase(),
        )
        .await?;
        let addr = phone.local_addr();
        let lead = match &c.lead {
            serde_json::Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        let dial = Dial {
            target: telephony::sip::Uri::parse(&format!("sip:{}@{}", c.phone, addr))
                .map_err(|e| DemoError::Io(std::io::Error::other(format!("{e:?}"))))?,
            next_hop: addr,
            flow: flow.clone(),
            lead,
            lead_id: Some(format!("lead-{}", c.name.to_lowercase())),
            campaign: Some("demo".into()),
            phone: c.phone.clone(),
            caller_id: None,
            amd: true,
            live: Some(live_tx.clone()),
        };
        let rt = rt.clone();
        let job = async move {
            let phone_task = tokio::spawn(phone.answer(script, 800));
            let record = rt.dial(dial).await;
            let report = match tokio::time::timeout(Duration::from_secs(30), phone_task).await {
                Ok(Ok(Ok(r))) => r,
                _ => PhoneReport::default(),
            };
            (c, record, report)
        };
        if opts.sequential {
            jobs.push(tokio::spawn(job));
            // Wait for it before the next one, printing as it goes.
            while let Some(j) = jobs.last() {
                if j.is_finished() {
                    break;
                }
                tokio::select! {
                    Some(ev) = live_rx.recv() => print_live(&ev, &print),
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        } else {
            jobs.push(tokio::spawn(job));
        }
    }
    let mut results = Vec::new();
    for j in jobs {
        let mut j = j;
        let (c, record, phone) = loop {
            tokio::select! {
                r = &mut j => break r.map_err(|e| DemoError::Io(std::io::Error::other(e)))?,
                Some(ev) = live_rx.recv() => print_live(&ev, &print),
            }
        };
        results.push(DemoResult {
            customer: c,
            record,
            phone,
        });
    }
    while let Ok(ev) = live_rx.try_recv() {
        print_live(&ev, &print);
    }
    drop(rt);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await;
    }
    Ok(results)
}

fn print_live(ev: &LiveEvent, print: &impl Fn(String)) {
    let short = |id: &str| id.chars().take(8).collect::<String>();
    match ev {
        LiveEvent::Bot {
            call,
            text,
            at_ms,
            interrupted,
        } => print(format!(
            "[{}] {:>6.1}s BOT      {}{}",
            short(call),
            *at_ms as f64 / 1000.0,
            text,
            if *interrupted { "  [interrupted]" } else { "" }
        )),
        LiveEvent::Customer {
            call,
            text,
            at_ms,
            intent,
        } => print(format!(
            "[{}] {:>6.1}s CUSTOMER {}  ({})",
            short(call),
            *at_ms as f64 / 1000.0,
            text,
            intent.as_deref().unwrap_or("no intent")
        )),
        LiveEvent::Latency { call, latency: l } => print(format!(
            "[{}]         turn latency {} ms (endpoint {}, asr {}, nlu {}, tts {})",
            short(call),
            l.total_ms,
            l.endpoint_ms,
            l.asr_ms,
            l.nlu_ms,
            l.tts_ms
        )),
        LiveEvent::BargeIn { call, at_ms, .. } => print(format!(
            "[{}] {:>6.1}s barge-in: the customer spoke over the robot; robot audio stopped",
            short(call),
            *at_ms as f64 / 1000.0,
        )),
        LiveEvent::Amd { call, verdict } => print(format!(
            "[{}]         answering-machine detection: {verdict}",
            short(call)
        )),
        LiveEvent::Queued {
            call,
            queue,
            position,
            estimated_wait_ms,
        } => print(format!(
            "[{}]         transferred: waiting in queue {queue} at position {position}{}",
            short(call),
            estimated_wait_ms
                .map(|ms| format!(", estimated wait {} s", ms / 1000))
                .unwrap_or_default()
        )),
        LiveEvent::AgentConnected {
            call,
            agent,
            wait_ms,
        } => print(format!(
            "[{}]         agent {agent} took the call after {:.1} s",
            short(call),
            *wait_ms as f64 / 1000.0
        )),
        LiveEvent::Ended { call, outcome } => print(format!(
            "[{}]         call ended: {}",
            short(call),
            outcome.as_deref().unwrap_or("-")
        )),
        LiveEvent::DncRequested { call, reason } => {
            print(format!("[{}]         do-not-call: {reason}", short(call)))
        }
        LiveEvent::CallbackRequested { call, at, .. } => print(format!(
            "[{}]         callback requested: {}",
            short(call),
            at.map(|t| t.to_string()).unwrap_or_else(|| "-".into())
        )),
    }
}

/// The summary table.
pub fn summary(results: &[DemoResult]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<6} {:<13} {:<9} {:<8} {:<16} {:>5} {:>9} {:>9} {:<5}\n",
        "name", "phone", "dispo", "amd", "outcome", "turns", "p50 ms", "max ms", "ok"
    ));
    for r in results {
        let mut lat: Vec<u32> = r
            .record
            .turns
            .iter()
            .filter_map(|t| t.latency.map(|l| l.total_ms))
            .collect();
        lat.sort_unstable();
        let p50 = lat.get(lat.len().saturating_sub(1) / 2).copied();
        let max = lat.last().copied();
        let outcome = r.record.outcome.as_deref().unwrap_or("-");
        out.push_str(&format!(
            "{:<6} {:<13} {:<9} {:<8} {:<16} {:>5} {:>9} {:>9} {:<5}\n",
            r.customer.name,
            r.record.phone,
            r.record.disposition,
            r.record.amd.as_deref().unwrap_or("-"),
            outcome,
            r.record.turns.len(),
            p50.map_or("-".into(), |v| v.to_string()),
            max.map_or("-".into(), |v| v.to_string()),
            if outcome == r.customer.expect_outcome {
                "yes"
            } else {
                "NO"
            },
        ));
    }
    out
}
