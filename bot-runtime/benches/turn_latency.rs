//! Turn latency of robot conversations over real SIP/RTP on loopback.
//!
//! `cargo bench -p bot-runtime --bench turn_latency [-- CONCURRENT TURNS [SPREAD_MS]]` (defaults:
//! 1 call at a time and 8 at once, at least 50 turns each). SPREAD_MS spreads the starts of each
//! round's calls evenly over that many milliseconds, as a dialer's pacing does; the default 0
//! starts them all at once, so that every call asks its questions in lock-step with the others
//! and all customers answer within the same few hundred milliseconds (the worst case for a
//! shared recogniser). Simulated customer phones (real SIP user agents
//! with their own RTP) answer callbot's calls and answer a looping questionnaire
//! (benches/flows/latency_bench.yaml: yes/no, date and amount questions) with speech rendered in
//! a different voice. The phone measures each turn from the last voiced sample it sent to the
//! first voiced robot frame it received; callbot's records give the per-stage breakdown. Prints
//! p50/p95/p99 and the stage medians.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bot_runtime::demo::customer_voice;
use bot_runtime::engines::{EngineConfig, Engines};
use bot_runtime::record::{CallRecord, Speaker, StageLatency};
use bot_runtime::runtime::{Dial, Runtime, RuntimeConfig};
use bot_runtime::sim::{Line, Phone, PhoneReport, Script};
use callbot_models::ModelsDir;

const FLOW: &str = include_str!("flows/latency_bench.yaml");

/// The customer's answers, in the order the flow asks (the loop repeats from the second).
const ANSWERS: &[&str] = &[
    "Yes, it's fine.",
    "No, I haven't.",
    "Last Tuesday.",
    "About eighty dollars.",
    "Yes, please.",
    "Yes, I have.",
    "Two weeks ago.",
    "A hundred and twenty dollars.",
    "No, thank you.",
];

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<u32>) -> u32 {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

struct Round {
    phone: Vec<u64>,
    stages: Vec<StageLatency>,
    unanswered: usize,
    wall_s: f64,
}

async fn round(
    rt: &Runtime,
    flow: &Arc<dialog_flows::Flow>,
    rendered: &[(String, Vec<i16>)],
    concurrent: usize,
    turns_per_call: usize,
    spread: std::time::Duration,
) -> Round {
    let started = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..concurrent {
        let phone = Phone::bind(SocketAddr::from(([127, 0, 0, 1], 0)), "customer")
            .await
            .expect("phone");
        let addr = phone.local_addr();
        let mut lines = Vec::new();
        for k in 0..turns_per_call {
            // The greeting question, then the loop of four, alternating between two sets of
            // answers (calls start on different sets).
            let idx = if k == 0 {
                0
            } else {
                1 + (k - 1) % 4 + 4 * (((k - 1) / 4 + i) % 2)
            };
            let (text, audio) = &rendered[idx.min(rendered.len() - 1)];
            lines.push(Line::Answer {
                text: text.clone(),
                audio: audio.clone(),
            });
        }
        let script = Script {
            name: format!("customer {i}"),
            lines,
            answer_gap_ms: 700,
            linger_ms: 3000,
        };
        let dial = Dial {
            target: telephony::sip::Uri::parse(&format!("sip:+1555010{i:04}@{addr}")).expect("uri"),
            next_hop: addr,
            flow: flow.clone(),
            lead: serde_json::json!({"first_name": "Sam"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            lead_id: None,
            campaign: Some("bench".into()),
            phone: format!("+1555010{i:04}"),
            caller_id: None,
            amd: false,
            live: None,
        };
        let rt = rt.clone();
        let delay = spread * i as u32 / concurrent as u32;
        jobs.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let phone_task = tokio::spawn(phone.answer(script, 200));
            let record: CallRecord = rt.dial(dial).await;
            let report: PhoneReport = match phone_task.await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    eprintln!("phone failed: {e}");
                    PhoneReport::default()
                }
                Err(e) => {
                    eprintln!("phone task failed: {e}");
                    PhoneReport::default()
                }
            };
            (record, report)
        }));
    }
    let mut out = Round {
        phone: Vec::new(),
        stages: Vec::new(),
        unanswered: 0,
        wall_s: 0.0,
    };
    for j in jobs {
        let Ok((record, report)) = j.await else {
            continue;
        };
        for m in &report.answers {
            match m.latency_ms {
                Some(ms) => out.phone.push(ms),
                None => out.unanswered += 1,
            }
        }
        if std::env::var_os("TURN_LATENCY_VERBOSE").is_some() {
            for t in record
                .turns
                .iter()
                .filter(|t| t.speaker == Speaker::Customer)
            {
                eprintln!("{:?} {:?} {:?}", t.text, t.step, t.latency);
            }
            for m in &report.answers {
                eprintln!("phone: {:?} {:?}", m.text, m.latency_ms);
            }
        }
        out.stages.extend(
            record
                .turns
                .iter()
                .filter(|t| t.speaker == Speaker::Customer)
                .filter_map(|t| t.latency),
        );
    }
    out.wall_s = started.elapsed().as_secs_f64();
    out
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let configs: Vec<usize> = match args.first().and_then(|a| a.parse().ok()) {
        Some(n) => vec![n],
        None => vec![1, 8],
    };
    let min_turns: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let spread_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let spread = std::time::Duration::from_millis(spread_ms);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let engines = Arc::new(
        Engines::load(&ModelsDir::resolve(None), &EngineConfig::default())
            .expect("models (run `callbot models fetch`)"),
    );
    let flow = Arc::new(
        dialog_flows::load_str(
            FLOW,
            std::path::Path::new("benches/flows/latency_bench.yaml"),
        )
        .expect("bench flow"),
    );
    engines.flow_nlu(&flow).expect("nlu");
    let prerendered = engines.prerender_flow(&flow).expect("prerender");
    let rendered: Vec<(String, Vec<i16>)> = ANSWERS
        .iter()
        .map(|t| ((*t).to_string(), customer_voice(&engines, t).expect("tts")))
        .collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "turn latency over SIP/RTP on loopback; {} static prompts pre-rendered; call starts spread \
         over {spread_ms} ms; load {}",
        prerendered,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:>10} {:>6} {:>8} {:>8} {:>8} | stage medians (runtime): {:>8} {:>6} {:>5} {:>5} {:>7}",
        "concurrent",
        "turns",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "endpoint",
        "asr",
        "nlu",
        "tts",
        "total"
    );
    rt.block_on(async {
        let (runtime, _records) = Runtime::start(engines.clone(), RuntimeConfig::loopback(), None)
            .await
            .expect("runtime");
        for concurrent in configs {
            let mut phone = Vec::new();
            let mut stages = Vec::new();
            let mut unanswered = 0;
            let mut wall = 0.0;
            while phone.len() < min_turns {
                let per_call = (min_turns - phone.len()).div_ceil(concurrent).clamp(4, 14);
                let r = round(&runtime, &flow, &rendered, concurrent, per_call, spread).await;
                if r.phone.is_empty() {
                    eprintln!("a round produced no measured turns; stopping");
                    break;
                }
                phone.extend(r.phone);
                stages.extend(r.stages);
                unanswered += r.unanswered;
                wall += r.wall_s;
            }
            phone.sort_unstable();
            println!(
                "{:>10} {:>6} {:>8} {:>8} {:>8} | {:>33} {:>6} {:>5} {:>5} {:>7}",
                concurrent,
                phone.len(),
                percentile(&phone, 0.5),
                percentile(&phone, 0.95),
                percentile(&phone, 0.99),
                median(stages.iter().map(|s| s.endpoint_ms).collect()),
                median(stages.iter().map(|s| s.asr_ms).collect()),
                median(stages.iter().map(|s| s.nlu_ms).collect()),
                median(stages.iter().map(|s| s.tts_ms).collect()),
                median(stages.iter().map(|s| s.total_ms).collect()),
            );
            println!(
                "{:>10} turns without a robot answer: {unanswered}; {:.0} s of calls",
                "", wall
            );
        }
    });
}
