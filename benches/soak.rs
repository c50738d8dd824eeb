//! Load and soak: a dialer node (`callbot dialer run`, the release binary, as operations run it)
//! holds CALLS concurrent robot calls for MINUTES against SIPp as the customers' phones
//! (`tests/sipp/uas_answer_hold.xml`: answers after 300 ms and stays silent until the caller
//! hangs up), on loopback. Every call runs the card-payment-reminder flow with the real models:
//! the greeting is played, the customer says nothing, the robot asks again and ends the call as
//! `no_answer` (about 20 s a call), and the dialer replaces it with the next lead.
//!
//! Every 10 s it samples the node's resident memory and CPU time (/proc) and the campaign's calls
//! in progress and done (the database); it prints one row a minute. At the end it pauses the
//! campaign, lets the calls in progress finish, stops the node with SIGINT and checks that
//! nothing was lost: every INVITE SIPp saw has its attempt, every attempt is closed with a
//! disposition and its call record, and no number was dialed twice.
//!
//! Usage: `cargo bench --bench soak -- [CALLS] [MINUTES] [CPS] [DATABASE_URL]`
//! (defaults 500, 30, 40 and a SQLite file in a temporary directory).

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bot_runtime::dialer::db::{CampaignStatus, DEFAULT_TENANT};
use bot_runtime::store::Store;

#[path = "../tests/support/mod.rs"]
mod support;
use support::{Killed, callbot};

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/dialog-flows/flows/card_payment_reminder.yaml"
);
const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/sipp/uas_answer_hold.xml"
);

fn phone(i: usize) -> String {
    format!("+1212{:07}", 2_000_000 + i)
}

/// Resident memory (MiB) and CPU time (s) of a process.
fn proc_usage(pid: u32, tick: f64) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((rss_kb / 1024.0, (utime + stime) / tick))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Sample {
    at: f64,
    rss_mb: f64,
    in_progress: u64,
}

fn main() {
    // `cargo bench` passes `--bench`; the figures are the other arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let calls: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(500);
    let minutes: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30.0);
    let cps: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(40.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("callbot.db").display()));
    // Calls last about 20 s: the dialer places about CALLS/20 a second (at most CPS); import
    // more leads than the run can dial.
    let rate = cps.min(calls as f64 / 15.0);
    let leads = (rate * minutes * 60.0 * 1.2) as usize + calls;
    println!(
        "soak: {calls} concurrent calls for {minutes} min at up to {cps} calls/s, {leads} leads, {db}"
    );
    println!("machine: {} cores, load {}", num_cpus(), load_average());

    // The campaign.
    let sipp_log = dir.path().join("sipp.log");
    let (mut sipp, trunk) = support::sipp_phones(SCENARIO, &sipp_log);
    assert!(
        matches!(sipp.0.try_wait(), Ok(None)),
        "SIPp did not start: run `sipp -sf {SCENARIO}` to see why"
    );
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "trunk": {"address": trunk.to_string(), "cps": cps, "burst": 10},
            "amd": false,
            "rules": {"max_attempts_per_day": 5},
        })
        .to_string(),
    )
    .expect("settings");
    let zone = support::daytime_zone();
    let csv = dir.path().join("leads.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).expect("leads"));
    writeln!(
        f,
        "phone,first_name,amount_due,due_date,card_number,timezone"
    )
    .expect("write");
    for i in 0..leads {
        writeln!(
            f,
            "{},Ana,120.50,2030-01-15,4111111111111111,{zone}",
            phone(i)
        )
        .expect("write");
    }
    drop(f);
    let max = calls.to_string();
    callbot(
        &[
            "campaign",
            "create",
            "c",
            "--flow",
            FLOW,
            "--max-concurrent",
            &max,
            "--settings",
            settings.to_str().expect("path"),
        ],
        &db,
    );
    let out = callbot(
        &[
            "leads",
            "import",
            csv.to_str().expect("path"),
            "--campaign",
            "c",
        ],
        &db,
    );
    assert!(out.contains(&format!("{leads} leads assigned")), "{out}");
    callbot(&["campaign", "start", "c"], &db);

    // The node.
    let node_log = dir.path().join("node.log");
    let log = std::fs::File::create(&node_log).expect("log");
    let node = Killed(
        Command::new(env!("CARGO_BIN_EXE_callbot"))
            .args(["dialer", "run", "--node", "soak", "--sip", "127.0.0.1:0"])
            .args(["--max-calls", &max, "--lease-secs", "30"])
            // SIPp's phones send no audio.
            .args(["--media-timeout-secs", "0", "--database-url", &db])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the dialer node"),
    );
    let pid = node.0.id();
    let sipp_pid = sipp.0.id();
    let tick = clock_ticks();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let store = rt.block_on(Store::open(&db)).expect("open the database");

    println!();
    println!(
        "| minute | calls in progress | calls done | calls/s (last min) | node RSS | node CPU (last min) | SIPp CPU | load |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let t0 = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut peak = 0u64;
    let mut last_row = (0.0f64, 0.0f64, 0u64, 0.0f64);
    let mut sipp_cpu0 = proc_usage(sipp_pid, tick).map(|u| u.1).unwrap_or(0.0);
    let run = Duration::from_secs_f64(minutes * 60.0);
    while t0.elapsed() < run {
        std::thread::sleep(Duration::from_secs(10));
        let Some((rss_mb, cpu_s)) = proc_usage(pid, tick) else {
            panic!(
                "the node exited: {}",
                std::fs::read_to_string(&node_log).unwrap_or_default()
            );
        };
        let stats = rt
            .block_on(store.campaign_stats(DEFAULT_TENANT, "c", chrono::Utc::now()))
            .expect("stats");
        let at = t0.elapsed().as_secs_f64();
        peak = peak.max(stats.in_progress);
        samples.push(Sample {
            at,
            rss_mb,
            in_progress: stats.in_progress,
        });
        if (at / 60.0).floor() > (last_row.0 / 60.0).floor() {
            let dt = at - last_row.0;
            let done = stats.attempts - stats.in_progress;
            let sipp_cpu = proc_usage(sipp_pid, tick).map(|u| u.1).unwrap_or(0.0);
            println!(
                "| {:.0} | {} | {} | {:.1} | {:.0} MiB | {:.0}% | {:.0}% | {} |",
                at / 60.0,
                stats.in_progress,
                done,
                (done - last_row.2) as f64 / dt,
                rss_mb,
                100.0 * (cpu_s - last_row.1) / dt,
                100.0 * (sipp_cpu - sipp_cpu0) / dt,
                load_average()
            );
            sipp_cpu0 = sipp_cpu;
            last_row = (at, cpu_s, done, rss_mb);
        }
    }

    // Wind down: no new calls, the ones in progress end, the node stops on SIGINT.
    callbot(&["campaign", "pause", "c"], &db);
    let drain = Instant::now();
    loop {
        let s = rt
            .block_on(store.campaign_stats(DEFAULT_TENANT, "c", chrono::Utc::now()))
            .expect("stats");
        if s.in_progress == 0 {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(180),
            "{} calls still in progress 3 minutes after the pause",
            s.in_progress
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (rss_end, cpu_end) = proc_usage(pid, tick).expect("node alive");
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let mut node = node;
    let status = node.0.wait().expect("node exit");
    let elapsed = t0.elapsed().as_secs_f64();
    drop(sipp);

    // Nothing lost.
    let campaign = rt
        .block_on(store.campaign(DEFAULT_TENANT, "c"))
        .expect("read")
        .expect("campaign");
    assert_eq!(campaign.status, CampaignStatus::Paused);
    let attempts = rt
        .block_on(store.campaign_attempts(DEFAULT_TENANT, "c"))
        .expect("attempts");
    let sipp_text = std::fs::read_to_string(&sipp_log).unwrap_or_default();
    let mut invites: HashMap<String, usize> = HashMap::new();
    for line in sipp_text.lines().filter(|l| l.starts_with("INVITE ")) {
        if let Some(n) = line.split_whitespace().nth(1) {
            *invites.entry(format!("+{n}")).or_default() += 1;
        }
    }
    let mut by_phone: HashMap<&str, usize> = HashMap::new();
    let mut dispositions: HashMap<String, usize> = HashMap::new();
    let mut missing_records = 0usize;
    for a in &attempts {
        *by_phone.entry(a.phone.as_str()).or_default() += 1;
        *dispositions
            .entry(a.disposition.clone().unwrap_or_else(|| "OPEN".into()))
            .or_default() += 1;
        let has_record = match &a.call_id {
            Some(id) => rt.block_on(store.call(id)).ok().flatten().is_some(),
            None => false,
        };
        if !has_record {
            missing_records += 1;
        }
    }
    let twice = by_phone.values().filter(|&&n| n > 1).count();
    let unrecorded = invites
        .iter()
        .filter(|(p, n)| by_phone.get(p.as_str()).copied().unwrap_or(0) < **n)
        .count();
    let node_text = std::fs::read_to_string(&node_log).unwrap_or_default();
    let warnings = node_text.lines().filter(|l| l.contains("WARN")).count();
    let errors = node_text.lines().filter(|l| l.contains("ERROR")).count();

    // Memory over time: the first minutes grow caches (pre-rendered prompts, the allocator's
    // arenas, the database's page cache); flat means no growth after the warm-up.
    let warm = samples
        .iter()
        .find(|s| s.at >= 300.0_f64.min(minutes * 30.0))
        .map(|s| s.rss_mb);
    let rss_max = samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max);
    let total_calls = attempts.len();
    let cpu_total = cpu_end;
    let mean_in_progress =
        samples.iter().map(|s| s.in_progress as f64).sum::<f64>() / samples.len().max(1) as f64;
    println!();
    println!(
        "{total_calls} calls in {:.1} min ({:.1} calls/s), {mean_in_progress:.0} in progress on average, peak {peak}",
        elapsed / 60.0,
        total_calls as f64 / elapsed
    );
    println!("dispositions: {dispositions:?}");
    println!(
        "node CPU {:.0} s in all: {:.1} ms per call, {:.0}% of a core on average",
        cpu_total,
        1000.0 * cpu_total / total_calls.max(1) as f64,
        100.0 * cpu_total / elapsed,
    );
    println!(
        "node RSS: {:.0} MiB after warm-up, {:.0} MiB max, {:.0} MiB with no call left (after the drain); (max - drained) / peak calls = {:.2} MiB a call",
        warm.unwrap_or(0.0),
        rss_max,
        rss_end,
        (rss_max - rss_end).max(0.0) / peak.max(1) as f64
    );
    println!(
        "node log: {warnings} warnings, {errors} errors; node {status}; SIPp saw {} INVITEs",
        invites.values().sum::<usize>()
    );
    println!(
        "lost: {missing_records} attempts without a call record, {} left open, {unrecorded} numbers with more INVITEs than attempts, {twice} numbers dialed twice",
        dispositions.get("OPEN").copied().unwrap_or(0)
    );
    assert!(status.success(), "the node exited with {status}");
    assert_eq!(missing_records, 0, "every attempt has its call record");
    assert_eq!(dispositions.get("OPEN"), None, "every attempt closed");
    assert_eq!(unrecorded, 0, "every INVITE has its attempt");
    assert_eq!(twice, 0, "no number dialed twice");
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
