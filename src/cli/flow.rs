//! `callbot flow validate|simulate|test|schema`: the flow author's tools.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bot_runtime::FlowNlu;
use callbot_models::{ModelsDir, onnxruntime_environment};
use clap::Subcommand;
use dialog_flows::testing::{load_tests, run_case};
use dialog_flows::{Call, CallAction, Event, Flow, FlowErrors, Listen};
use nlu::{Embedder, EmbedderOptions};

#[derive(Subcommand)]
pub enum FlowCommand {
    /// Check flow files (or every flow in a directory): schema, steps, slots, compliance.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Chat with a flow in the terminal, with the real NLU. Type what the customer says;
    /// `/dtmf 1234#`, `/silence`, `/bargein`, `/hangup`, `/ok {json}` and `/fail` (webhook
    /// results), `/noagent` and `/quit` drive the rest.
    Simulate {
        file: PathBuf,
        /// The lead record (JSON object) the call is made for.
        #[arg(long)]
        lead: Option<PathBuf>,
        /// The call's local time, e.g. 2026-11-25T10:00 (default: now).
        #[arg(long)]
        now: Option<String>,
    },
    /// Run the conversation tests (`*.test.yaml`) in a directory or file, with the real NLU.
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the flow language (for editors).
    Schema,
}

fn embedder(models: &ModelsDir) -> anyhow::Result<Arc<Embedder>> {
    let env = onnxruntime_environment(models)?;
    Ok(Arc::new(
        Embedder::new(
            &env,
            &models.minilm_onnx(),
            &models.minilm_tokenizer(),
            EmbedderOptions::default(),
        )
        .context("loading the sentence-embedding model (run `callbot models fetch`)")?,
    ))
}

fn expand(paths: &[PathBuf], tests: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            if tests {
                let mut found: Vec<PathBuf> = walk(p)?
                    .into_iter()
                    .filter(|f| f.to_string_lossy().ends_with(".test.yaml"))
                    .collect();
                found.sort();
                out.extend(found);
            } else {
                out.extend(
                    dialog_flows::flow_files(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                );
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn run(cmd: FlowCommand, models: &ModelsDir) -> anyhow::Result<()> {
    match cmd {
        FlowCommand::Validate { paths } => validate(&paths),
        FlowCommand::Simulate { file, lead, now } => {
            simulate(models, &file, lead.as_deref(), now.as_deref())
        }
        FlowCommand::Test { paths } => test(models, &paths),
        FlowCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&dialog_flows::schema::json_schema())?
            );
            Ok(())
        }
    }
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<()> {
    let files = expand(paths, false)?;
    if files.is_empty() {
        bail!("no flow files (*.yaml) found");
    }
    let mut bad = 0;
    for f in &files {
        match dialog_flows::load(f) {
            Ok(flow) => println!(
                "{}: ok — flow `{}` version {}, {} steps",
                f.display(),
                flow.name,
                flow.version,
                flow.steps.len()
            ),
            Err(e) => {
                bad += 1;
                println!("{e}");
            }
        }
    }
    if bad > 0 {
        bail!("{bad} of {} flow files have errors", files.len());
    }
    Ok(())
}

fn load_flow(path: &Path) -> anyhow::Result<Arc<Flow>> {
    dialog_flows::load(path)
        .map(Arc::new)
        .map_err(|e: FlowErrors| anyhow::anyhow!("{e}"))
}

fn test(models: &ModelsDir, paths: &[PathBuf]) -> anyhow::Result<()> {
    let files = expand(paths, true)?;
    if files.is_empty() {
        bail!("no conversation tests (*.test.yaml) found");
    }
    let embedder = embedder(models)?;
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        let tf = load_tests(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        let flow = load_flow(&tf.flow_path)?;
        let mut nlu = FlowNlu::new(Arc::clone(&embedder), &flow)?;
        for case in &tf.cases {
            let r = run_case(&flow, case, &mut nlu);
            match &r.failure {
                None => {
                    passed += 1;
                    println!("ok    {}:{}: {}", f.display(), r.pos.line, r.name);
                }
                Some(why) => {
                    failed += 1;
                    println!("FAIL  {}:{}: {}", f.display(), r.pos.line, r.name);
                    for line in why.lines() {
                        println!("      {line}");
                    }
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} conversation tests failed");
    }
    Ok(())
}

fn simulate(
    models: &ModelsDir,
    file: &Path,
    lead: Option<&Path>,
    now: Option<&str>,
) -> anyhow::Result<()> {
    let flow = load_flow(file)?;
    let lead: serde_json::Map<String, serde_json::Value> = match lead {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            match serde_json::from_str(&text) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) => bail!("{}: the lead must be a JSON object", p.display()),
                Err(e) => bail!("{}:{}:{}: {e}", p.display(), e.line(), e.column()),
            }
        }
        None => serde_json::Map::new(),
    };
    let now = match now {
        Some(s) => dialog_flows::Value::parse_datetime(s)
            .with_context(|| format!("`{s}` is not a date and time like 2026-11-25T10:00"))?,
        None => chrono::Local::now().naive_local(),
    };
    let embedder = embedder(models)?;
    let nlu = FlowNlu::new(embedder, &flow)?;
    let (mut call, actions) = Call::start(Arc::clone(&flow), &lead, now)
        .map_err(|e| anyhow::anyhow!("the lead does not fit flow `{}`: {e}", flow.name))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "flow `{}` version {} — type what the customer says (/help for commands)",
        flow.name, flow.version
    )?;
    let mut state = SimState::default();
    show(&mut out, &actions, &mut state)?;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        if call.is_finished() && !call.is_transferred() {
            break;
        }
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let event = match line
            .split_once(' ')
            .map_or((line, ""), |(a, b)| (a, b.trim()))
        {
            ("/quit", _) => break,
            ("/help", _) => {
                writeln!(
                    out,
                    "  /dtmf KEYS  /silence  /bargein  /hangup  /ok JSON  /fail REASON  /noagent  /quit"
                )?;
                continue;
            }
            ("/dtmf", keys) => Event::Dtmf(keys.to_string()),
            ("/silence", _) => Event::NoInput,
            ("/bargein", _) => Event::BargeIn {
                unheard: state.last_speech.clone(),
            },
            ("/hangup", _) => Event::HangUp,
            ("/noagent", _) => Event::TransferFailed {
                reason: "no agent answered".into(),
            },
            ("/ok", json) => {
                let v = if json.is_empty() {
                    Ok(serde_json::Value::Null)
                } else {
                    serde_json::from_str(json)
                };
                match (v, state.webhook) {
                    (Ok(v), Some(id)) => Event::WebhookResult { id, result: Ok(v) },
                    (Err(e), _) => {
                        writeln!(out, "  (not JSON: {e})")?;
                        continue;
                    }
                    (_, None) => {
                        writeln!(out, "  (the flow is not waiting for a webhook)")?;
                        continue;
                    }
                }
            }
            ("/fail", reason) => match state.webhook {
                Some(id) => Event::WebhookResult {
                    id,
                    result: Err(if reason.is_empty() {
                        "failed".into()
                    } else {
                        reason.into()
                    }),
                },
                None => {
                    writeln!(out, "  (the flow is not waiting for a webhook)")?;
                    continue;
                }
            },
            (cmd, _) if cmd.starts_with('/') => {
                writeln!(out, "  (unknown command {cmd}; /help lists them)")?;
                continue;
            }
            _ => {
                let u = nlu.parse(state.listen.as_ref(), line, now)?;
                writeln!(
                    out,
                    "  [intent {} {:.2} | entities {} | sentiment {:.2}{}]",
                    u.intent.as_deref().unwrap_or("none"),
                    u.confidence,
                    serde_json::to_string(&u.entities)?,
                    u.sentiment,
                    if u.escalate { " escalate" } else { "" }
                )?;
                Event::Utterance(u)
            }
        };
        let actions = call.handle(event, now);
        show(&mut out, &actions, &mut state)?;
        if let Some(step) = call.current_step() {
            writeln!(out, "  [at step {step}]")?;
        }
    }
    writeln!(out, "outcome: {}", call.outcome().unwrap_or("(unfinished)"))?;
    writeln!(out, "path: {}", call.path().join(" → "))?;
    if !call.slots().is_empty() {
        writeln!(out, "slots: {}", serde_json::to_string(call.slots())?)?;
    }
    Ok(())
}

#[derive(Default)]
struct SimState {
    listen: Option<Listen>,
    webhook: Option<u64>,
    last_speech: Vec<u64>,
}

fn show(out: &mut impl Write, actions: &[CallAction], st: &mut SimState) -> std::io::Result<()> {
    let mut fresh = true;
    for a in actions {
        match a {
            CallAction::Speak(s) => {
                if fresh {
                    st.last_speech.clear();
                    fresh = false;
                }
                st.last_speech.push(s.id);
                writeln!(out, "bot: {}", s.text)?;
            }
            CallAction::Listen(l) => st.listen = Some(l.clone()),
            CallAction::Webhook(w) => {
                st.webhook = Some(w.id);
                writeln!(
                    out,
                    "  [webhook {} {} {} — answer with /ok JSON or /fail]",
                    w.method, w.url, w.body
                )?;
            }
            CallAction::SendDtmf { digits } => writeln!(out, "  [sends keys {digits}]")?,
            CallAction::Transfer(t) => writeln!(
                out,
                "  [transfer to queue `{}` priority {}: {} — /noagent to simulate no agent]",
                t.queue, t.priority, t.reason
            )?,
            CallAction::ScheduleCallback { at, note } => writeln!(
                out,
                "  [callback at {} {}]",
                at.map_or("(retry rules)".to_string(), |a| a.to_string()),
                note.as_deref().unwrap_or("")
            )?,
            CallAction::AddDnc { reason } => writeln!(out, "  [added to do-not-call: {reason}]")?,
            CallAction::ColdTransfer { to, .. } => writeln!(out, "  [cold transfer to {to}]")?,
            CallAction::End { outcome } => writeln!(out, "  [end: {outcome}]")?,
            CallAction::Log { message, .. } => writeln!(out, "  [log: {message}]")?,
        }
    }
    Ok(())
}
