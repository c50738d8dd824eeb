//! Dialer nodes (`callbot dialer run`) as operations run them, against SIPp as the customers'
//! phones (`tests/sipp/uas_answer_hangup.xml`: logs every INVITE's number with its wall-clock
//! time, answers, hangs up 1.5 s later), with the real models:
//!
//! - a node killed with SIGKILL in the middle of a 500-lead campaign on SQLite, then restarted:
//!   the campaign completes, every INVITE SIPp saw has its attempt row, no lead is dialed again
//!   except an interrupted attempt retried after its retry delay, no lead or attempt is lost;
//! - two nodes on one PostgreSQL database running one campaign: no duplicate dial; one is
//!   killed, the other finishes its leads;
//! - the same behind Kamailio (Debian's, `examples/kamailio/kamailio.cfg` as written) as the
//!   nodes' SIP proxy to the carrier: every INVITE through it from a listed node, a stranger
//!   refused, a gateway answering 503 skipped for the other, the killed node reported down by the proxy's pings, the carrier's BYEs back along
//!   the recorded route;
//! - opt-outs committed while a campaign runs (SQLite and PostgreSQL): no INVITE for an
//!   opted-out number reaches SIPp after the opt-out's commit;
//! - the PostgreSQL database going away mid-campaign (a relay the test cuts: the listener
//!   closes, every connection drops) and coming back after the leases ran out: no call record or
//!   attempt lost, no number dialed twice, the outage logged, dialing resumed by itself;
//! - the trunk stopping answering (SIPp killed: INVITEs time out), then refusing with 503s, then
//!   answering again: the node stops dialing it after `trip_after` failures but for one probe
//!   call every `probe_secs`, resumes when a probe is answered, and the campaign completes with
//!   every attempt and call record kept and no number dialed twice at once.
//!
//! Leads are given the timezone of a place where it is daytime now, so the default calling window
//! (08:00–21:00 local) is the one in force. The tests in this file run one at a time.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bot_runtime::dialer::db::{AttemptRow, CampaignStatus, DEFAULT_TENANT, DncEntry};
use bot_runtime::store::Store;
use chrono::Utc;
use sqlx::Connection;

mod support;
use support::{
    Killed, callbot, daytime_zone, free_tcp_port, sipp_phones, sipp_phones_args, sipp_phones_on,
};

/// One test at a time: each runs a node with up to 20 calls and SIPp.
static SERIAL: Mutex<()> = Mutex::new(());

const FLOW: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/dialog-flows/flows/card_payment_reminder.yaml"
);
const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/sipp/uas_answer_hangup.xml"
);
/// An interrupted attempt is retried after this long; nothing else is retried.
const INTERRUPTED_RETRY_S: i64 = 2;

/// The caller ID the campaigns present.
const CALLER_ID: &str = "+18005550100";

/// Each number's INVITEs as SIPp received them (Unix seconds); every INVITE must present the
/// campaign's caller ID.
fn invites(log: &Path) -> HashMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out: HashMap<String, Vec<f64>> = HashMap::new();
    for line in text.lines().filter(|l| l.starts_with("INVITE ")) {
        let number = line.split_whitespace().nth(1).expect("a number");
        assert_eq!(
            line.split_whitespace().nth(3),
            Some(CALLER_ID),
            "the caller ID presented: {line}"
        );
        let at: f64 = line
            .split_whitespace()
            .last()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("a timestamp in {line:?}"));
        out.entry(format!("+{number}")).or_default().push(at);
    }
    out
}

/// Every lead's first name and card number: personal data that must never be stored readable.
const FIRST_NAME: &str = "Zebulon";
const CARD: &str = "4111111111111111";

fn phone(i: usize) -> String {
    format!("+1212{:07}", 2_000_000 + i)
}

/// Creates campaign `c` with `n` leads dialing `trunk` at most `cps` calls a second, and starts
/// it.
fn campaign(dir: &Path, db: &str, n: usize, trunk: SocketAddr, cps: u32) {
    campaign_with(dir, db, n, trunk, cps, serde_json::json!({}));
}

/// [`campaign`] with `more` merged into its settings (objects merged key by key).
fn campaign_with(
    dir: &Path,
    db: &str,
    n: usize,
    trunk: SocketAddr,
    cps: u32,
    more: serde_json::Value,
) {
    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }
    let zone = daytime_zone();
    let settings = dir.join("settings.json");
    let mut json = serde_json::json!({
        "trunk": {"address": trunk.to_string(), "cps": cps, "burst": 5},
        "rules": {
            "retries": {"interrupted": {"delay_secs": INTERRUPTED_RETRY_S, "max": 3}},
            "min_gap_secs": 1,
            "max_attempts_per_day": 5,
        },
    });
    merge(&mut json, more);
    std::fs::write(&settings, json.to_string()).expect("settings");
    let leads = dir.join("leads.csv");
    let mut f = std::fs::File::create(&leads).expect("leads file");
    writeln!(
        f,
        "phone,first_name,amount_due,due_date,card_number,timezone"
    )
    .expect("write");
    for i in 0..n {
        writeln!(
            f,
            "{},{FIRST_NAME},120.50,2030-01-15,{CARD},{zone}",
            phone(i)
        )
        .expect("write");
    }
    drop(f);
    let flow = FLOW;
    let settings = settings.to_str().expect("path");
    callbot(
        &[
            "campaign",
            "create",
            "c",
            "--flow",
            flow,
            "--max-concurrent",
            "20",
            "--caller-id",
            CALLER_ID,
            "--settings",
            settings,
        ],
        db,
    );
    let out = callbot(
        &[
            "leads",
            "import",
            leads.to_str().expect("path"),
            "--campaign",
            "c",
        ],
        db,
    );
    assert!(out.contains(&format!("{n} leads assigned")), "{out}");
    callbot(&["campaign", "start", "c"], db);
}

fn node(db: &str, name: &str, until_idle: bool, log: &Path) -> Killed {
    node_with(db, name, until_idle, log, &[])
}

/// [`node`] with more arguments.
fn node_with(db: &str, name: &str, until_idle: bool, log: &Path, more: &[&str]) -> Killed {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callbot"));
    cmd.args(["dialer", "run", "--node", name]);
    if !more.contains(&"--sip") {
        cmd.args(["--sip", "127.0.0.1:0"]);
    }
    cmd.args([
        "--lease-secs",
        "5",
        "--max-calls",
        "20",
        "--database-url",
        db,
    ])
    // SIPp's phones send no RTP: a call whose phone is killed ends 10 s later.
    .args(["--media-timeout-secs", "10"])
    .args(more);
    if until_idle {
        cmd.arg("--until-idle");
    }
    let out = std::fs::File::create(log).expect("node log");
    let err = out.try_clone().expect("node log");
    Killed(
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start a dialer node"),
    )
}

async fn attempts(store: &Store) -> Vec<AttemptRow> {
    store
        .campaign_attempts(DEFAULT_TENANT, "c")
        .await
        .expect("attempts")
}

async fn wait_for_attempts(store: &Store, n: usize, limit: Duration) {
    let t0 = Instant::now();
    while attempts(store).await.len() < n {
        assert!(
            t0.elapsed() < limit,
            "fewer than {n} attempts after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for a node started with `--until-idle` to exit by itself.
fn wait_exit(node: &mut Killed, limit: Duration, log: &Path) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = node.0.try_wait().expect("node status") {
            assert!(
                status.success(),
                "the node failed: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "the node did not finish the campaign in {limit:?}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What every finished campaign must show, whatever happened to its nodes: every lead done, no
/// attempt left open, every INVITE SIPp saw has an attempt, each lead answered exactly once, and
/// a lead dialed twice only after an interrupted attempt and its retry delay.
async fn check_complete(store: &Store, n: usize, sipp_log: &Path) -> Vec<AttemptRow> {
    let c = store
        .campaign(DEFAULT_TENANT, "c")
        .await
        .expect("read")
        .expect("campaign");
    assert_eq!(c.status, CampaignStatus::Finished);
    let stats = store
        .campaign_stats(DEFAULT_TENANT, "c", Utc::now())
        .await
        .expect("stats");
    assert_eq!(
        (stats.leads, stats.done, stats.ready),
        (n as u64, n as u64, 0)
    );
    assert_eq!(stats.in_progress, 0, "no attempt left open");
    let all = attempts(store).await;
    let seen = invites(sipp_log);
    let mut by_phone: HashMap<&str, Vec<&AttemptRow>> = HashMap::new();
    for a in &all {
        by_phone.entry(a.phone.as_str()).or_default().push(a);
    }
    assert_eq!(by_phone.len(), n, "every lead was dialed");
    for i in 0..n {
        let p = phone(i);
        let rows = &by_phone[p.as_str()];
        let sent = seen.get(&p).map(Vec::len).unwrap_or(0);
        assert!(
            sent <= rows.len(),
            "{p}: SIPp saw {sent} INVITEs but only {} attempts are recorded",
            rows.len()
        );
        let finals: Vec<_> = rows
            .iter()
            .filter(|a| a.disposition.as_deref() != Some("interrupted"))
            .collect();
        assert_eq!(finals.len(), 1, "{p}: one attempt to the end: {rows:?}");
        assert!(sent >= 1, "{p}: its final attempt reached SIPp");
        for w in rows.windows(2) {
            assert_eq!(
                w[0].disposition.as_deref(),
                Some("interrupted"),
                "{p}: {rows:?}"
            );
            let gap = w[1].started_at - w[0].started_at;
            assert!(
                gap >= chrono::Duration::seconds(INTERRUPTED_RETRY_S),
                "{p}: dialed again {gap} after an interrupted attempt"
            );
        }
        if let Some(times) = seen.get(&p) {
            for w in times.windows(2) {
                assert!(
                    w[1] - w[0] >= INTERRUPTED_RETRY_S as f64 - 0.2,
                    "{p}: SIPp saw two INVITEs {:.3} s apart",
                    w[1] - w[0]
                );
            }
        }
    }
    all
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio")
}

/// A fresh PostgreSQL database, dropped at the end.
struct PgDb {
    url: String,
    admin: String,
    name: String,
}

impl PgDb {
    async fn create() -> PgDb {
        let admin = std::env::var("CALLBOT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required for this test and unreachable at {admin}: {e}")
            });
        let name = format!("callbot_nodes_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .expect("a database URL");
        PgDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            rt().block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                }
            })
        })
        .join();
    }
}

#[test]
fn a_node_killed_mid_campaign_loses_nothing_after_restart() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("callbot.db").display());
    let sipp_log = dir.path().join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    const N: usize = 500;
    campaign(dir.path(), &db, N, trunk, 50);
    let rt = rt();
    let store = rt.block_on(Store::open(&db)).expect("open");
    let log1 = dir.path().join("node-1.log");
    let mut first = node(&db, "node-1", false, &log1);
    rt.block_on(wait_for_attempts(&store, 150, Duration::from_secs(120)));
    first.0.kill().expect("SIGKILL");
    first.0.wait().expect("reaped");
    let open = rt
        .block_on(attempts(&store))
        .iter()
        .filter(|a| a.disposition.is_none())
        .count();
    println!("killed with {open} attempts in progress");
    assert!(open > 0, "the kill hit calls in progress");
    let log2 = dir.path().join("node-1-again.log");
    let mut again = node(&db, "node-1", true, &log2);
    wait_exit(&mut again, Duration::from_secs(300), &log2);
    let all = rt.block_on(check_complete(&store, N, &sipp_log));
    let interrupted = all
        .iter()
        .filter(|a| a.disposition.as_deref() == Some("interrupted"))
        .count();
    assert_eq!(
        interrupted, open,
        "the calls cut by the kill, and only they, are interrupted"
    );
}

/// Waits until nodes a and b have each placed at least 40 calls; `context()` is added to the
/// failure message.
async fn wait_both_dial(store: &Store, context: impl Fn() -> String) {
    let t0 = Instant::now();
    loop {
        let all = attempts(store).await;
        let by_b = all.iter().filter(|x| x.node == "node-b").count();
        let by_a = all.len() - by_b;
        if by_a >= 40 && by_b >= 40 {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "both nodes dial: a {by_a}, b {by_b}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After node b was killed: every interrupted attempt is one of node b's, and node a finished
/// more than half of the `n` leads. Returns node a's finished attempts.
fn a_took_over_from_b(all: &[AttemptRow], n: usize) -> Vec<&AttemptRow> {
    for x in all
        .iter()
        .filter(|x| x.disposition.as_deref() == Some("interrupted"))
    {
        assert_eq!(x.node, "node-b", "{x:?}");
    }
    let finished_by_a: Vec<&AttemptRow> = all
        .iter()
        .filter(|x| x.node == "node-a" && x.disposition.as_deref() != Some("interrupted"))
        .collect();
    assert!(
        finished_by_a.len() > n / 2,
        "node a finished the campaign ({})",
        finished_by_a.len()
    );
    finished_by_a
}

#[test]
fn two_nodes_share_a_campaign_on_postgres_and_one_finishes_the_others_work() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let pg = rt.block_on(PgDb::create());
    let sipp_log = dir.path().join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    const N: usize = 300;
    campaign(dir.path(), &pg.url, N, trunk, 50);
    let store = rt.block_on(Store::open(&pg.url)).expect("open");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let mut a = node(&pg.url, "node-a", true, &log_a);
    let mut b = node(&pg.url, "node-b", false, &log_b);
    rt.block_on(wait_both_dial(&store, String::new));
    b.0.kill().expect("SIGKILL node b");
    b.0.wait().expect("reaped");
    wait_exit(&mut a, Duration::from_secs(300), &log_a);
    let all = rt.block_on(check_complete(&store, N, &sipp_log));
    a_took_over_from_b(&all, N);
    drop(store);
}

/// Kamailio (Debian's package) run with `examples/kamailio/kamailio.cfg` as written, on a free
/// loopback port, with the nodes' addresses as dispatcher set 1 and the carrier's
/// gateways as set 2. Its log (stderr) goes to `log`.
struct Kamailio {
    child: std::process::Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

const KAMAILIO_CFG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/kamailio/kamailio.cfg"
);

impl Kamailio {
    fn start(dir: &Path, nodes: &[SocketAddr], gateways: &[SocketAddr]) -> Kamailio {
        let list = dir.join("dispatcher.list");
        let mut text = String::new();
        for n in nodes {
            text.push_str(&format!("1 sip:{n} 0 0\n"));
        }
        for g in gateways {
            text.push_str(&format!("2 sip:{g} 0 0\n"));
        }
        std::fs::write(&list, text).expect("dispatcher list");
        let run = dir.join("kamailio-run");
        std::fs::create_dir_all(&run).expect("run dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], support::free_udp_port()));
        let log = dir.join("kamailio.log");
        let out = std::fs::File::create(&log).expect("kamailio log");
        let child = Command::new("kamailio")
            .args(["-f", KAMAILIO_CFG, "-l", &format!("udp:{addr}")])
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-Y"])
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("kamailio is installed (Debian package kamailio; .ci/setup installs it)");
        let k = Kamailio { child, addr, log };
        // Ready when it answers an OPTIONS ping.
        let t0 = Instant::now();
        let uri = format!("sip:{addr}");
        while !sip_request(addr, &uri, "OPTIONS", Duration::from_millis(200))
            .is_some_and(|status| status.starts_with("SIP/2.0 200"))
        {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "kamailio did not start: {}",
                k.log_text()
            );
        }
        k
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM: the main process stops its worker processes (SIGKILL would leave them).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIP request for `uri` sent to `to` from a fresh loopback socket; the first final
/// response's status line, or `None` if none came within `wait` of a datagram.
fn sip_request(to: SocketAddr, uri: &str, method: &str, wait: Duration) -> Option<String> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
    sock.set_read_timeout(Some(wait)).expect("timeout");
    let local = sock.local_addr().expect("addr");
    let msg = format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\n\
         From: <sip:stranger@{local}>;tag=1\r\nTo: <{uri}>\r\nCall-ID: {}\r\n\
         CSeq: 1 {method}\r\nContact: <sip:stranger@{local}>\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    sock.send_to(msg.as_bytes(), to).expect("send");
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let status = text.lines().next().unwrap_or_default();
        if !status.starts_with("SIP/2.0 1") {
            return Some(status.to_string());
        }
    }
}

/// Scale-out behind a SIP proxy: two nodes on one PostgreSQL place a campaign's calls through
/// Kamailio (the campaign's trunk is the proxy, which forwards to the carrier's two gateways —
/// SIPp, one refusing everything with 503 — and record-routes), node b is killed mid-campaign, Kamailio's pings report it down, and node a
/// finishes the campaign with nothing lost and no number dialed twice. Every INVITE the carrier
/// saw came through the proxy from one of the two nodes, and the carrier's BYEs reached node a
/// back through the proxy along the recorded route.
#[test]
fn nodes_behind_kamailio_share_a_campaign_and_one_finishes_the_others_work() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let pg = rt.block_on(PgDb::create());
    let sipp_log = dir.path().join("sipp.log");
    let routed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sipp/uas_answer_hangup_routed.xml"
    );
    // -aa: the gateway answers the proxy's OPTIONS pings.
    let (_sipp, gateway) = sipp_phones_args(routed, &sipp_log, support::free_udp_port(), &["-aa"]);
    // A second gateway that refuses every call with 503: the proxy's failover sends those calls
    // on to the good one, and the nodes never see the refusals.
    let refusing_log = dir.path().join("sipp-503.log");
    let (_refusing, refusing) = sipp_phones_args(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/uas_503.xml"),
        &refusing_log,
        support::free_udp_port(),
        &["-aa"],
    );
    let ports = support::free_sip_ports(2);
    let node_a = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    let node_b = SocketAddr::from(([127, 0, 0, 1], ports[1]));
    let proxy = Kamailio::start(dir.path(), &[node_a, node_b], &[refusing, gateway]);
    // Only the listed nodes may place calls through the proxy.
    let stranger = format!("sip:+12125550123@{}", proxy.addr);
    let refused = sip_request(proxy.addr, &stranger, "INVITE", Duration::from_secs(3))
        .expect("an answer to the stranger");
    assert!(refused.starts_with("SIP/2.0 403"), "{refused}");

    const N: usize = 300;
    campaign(dir.path(), &pg.url, N, proxy.addr, 50);
    let store = rt.block_on(Store::open(&pg.url)).expect("open");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let (sip_a, sip_b) = (node_a.to_string(), node_b.to_string());
    let mut a = node_with(&pg.url, "node-a", true, &log_a, &["--sip", &sip_a]);
    let mut b = node_with(&pg.url, "node-b", false, &log_b, &["--sip", &sip_b]);
    rt.block_on(wait_both_dial(&store, || {
        let tail = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "kamailio:\n{}\nnode a:\n{}\nnode b:\n{}",
            proxy.log_text(),
            tail(&log_a),
            tail(&log_b)
        )
    }));
    b.0.kill().expect("SIGKILL node b");
    b.0.wait().expect("reaped");
    // The proxy's pings find node b gone (and only b).
    let down = format!("callbot node or gateway sip:{node_b} down");
    let t0 = Instant::now();
    while !proxy.log_text().contains(&down) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "Kamailio did not report node b down: {}",
            proxy.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_exit(&mut a, Duration::from_secs(300), &log_a);
    let all = rt.block_on(check_complete(&store, N, &sipp_log));
    let finished_by_a = a_took_over_from_b(&all, N);
    // Every INVITE came through the proxy, from one of the nodes; both nodes' calls did.
    let sipp_text = std::fs::read_to_string(&sipp_log).expect("sipp log");
    let mut from_nodes: HashMap<String, usize> = HashMap::new();
    for line in sipp_text.lines().filter(|l| l.starts_with("INVITE ")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(w.get(4), Some(&"via"), "{line}");
        assert_eq!(
            w[5],
            proxy.addr.to_string(),
            "the proxy's Via on top: {line}"
        );
        assert!(
            w[6] == sip_a || w[6] == sip_b,
            "the INVITE was placed by a node: {line}"
        );
        assert_eq!(
            (w[7], w[8]),
            ("record-route", proxy.addr.to_string().as_str()),
            "the proxy stays on the route: {line}"
        );
        *from_nodes.entry(w[6].to_string()).or_default() += 1;
    }
    assert!(
        from_nodes.get(&sip_a).copied().unwrap_or(0) > N / 2 && from_nodes.contains_key(&sip_b),
        "{from_nodes:?}"
    );
    // Round robin sent about half the first tries to the refusing gateway.
    let refused_there = invites(&refusing_log).values().map(Vec::len).sum::<usize>();
    assert!(
        refused_there > N / 4,
        "the refusing gateway got {refused_there} INVITEs"
    );
    // The carrier hung up every call node a finished, its BYE answered through the proxy.
    let byes: std::collections::HashSet<String> = sipp_text
        .lines()
        .filter_map(|l| l.strip_prefix("BYE answered "))
        .map(|n| format!("+{}", n.split_whitespace().next().unwrap_or_default()))
        .collect();
    for x in &finished_by_a {
        assert!(byes.contains(&x.phone), "no BYE answered for {x:?}");
    }
    assert_eq!(
        proxy.log_text().matches("not a callbot node").count(),
        1,
        "only the stranger was refused: {}",
        proxy.log_text()
    );
    drop(store);
}

/// Opt-outs race the dialer: each is committed for a lead a few places ahead of the dialer (many
/// of them already claimed and waiting for the trunk), and the time its commit returned is
/// compared with SIPp's INVITE times.
fn opt_outs_race_the_dialer(db: &str, dir: &Path) {
    let sipp_log = dir.join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    const N: usize = 200;
    // A slow trunk: claimed leads queue for it, so some opt-outs land on leads a node already
    // holds (caught by the check in the dial transaction, not by the node's in-memory index).
    campaign(dir, db, N, trunk, 10);
    let rt = rt();
    let store = rt.block_on(Store::open(db)).expect("open");
    let log = dir.join("node.log");
    let mut n1 = node(db, "node-1", true, &log);
    let mut committed: Vec<(String, f64)> = Vec::new();
    rt.block_on(async {
        let mut next = 0usize;
        while committed.len() < 30 {
            let dialed = attempts(&store).await.len();
            // A lead just ahead of the dialer (sequential order: the file's order).
            let target = (dialed + committed.len() % 3).max(next);
            if target >= N - 10 {
                break;
            }
            next = target + 1;
            let p = phone(target);
            store
                .add_dnc(&[DncEntry {
                    tenant: DEFAULT_TENANT.into(),
                    phone: p.clone(),
                    reason: "asked during the campaign".into(),
                    source: "test".into(),
                    added_by: "tester".into(),
                    added_at: Utc::now(),
                    expires_at: None,
                }])
                .await
                .expect("opt-out");
            let at = Utc::now().timestamp_micros() as f64 / 1e6;
            committed.push((p, at));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    wait_exit(&mut n1, Duration::from_secs(300), &log);
    let seen = invites(&sipp_log);
    let mut blocked = 0;
    for (p, at) in &committed {
        if let Some(times) = seen.get(p) {
            for t in times {
                assert!(
                    t <= at,
                    "{p} was dialed {:.3} s after its opt-out committed",
                    t - at
                );
            }
        }
        let why = rt
            .block_on(store.decisions_for_phone(DEFAULT_TENANT, p, None))
            .expect("decisions");
        if why
            .iter()
            .any(|d| d.verdict == "blocked" && d.rule == "dnc")
        {
            blocked += 1;
            assert!(!seen.contains_key(p), "{p} was blocked yet SIPp saw it");
        }
    }
    println!(
        "{} opt-outs, {blocked} blocked before dialing",
        committed.len()
    );
    rt.block_on(store.close());
    assert_no_plaintext(db, N);
    assert!(
        committed.len() >= 20,
        "the race ran ({} opt-outs)",
        committed.len()
    );
    assert!(
        blocked >= 5,
        "opt-outs beat the dialer to some leads ({blocked})"
    );
}

/// Personal data at rest, after a campaign (leads imported, calls placed and recorded with their
/// transcripts, opt-outs added): no lead's number — E.164 or national digits — first name or
/// card number is readable anywhere in the database: not in the SQLite file nor its WAL, not in
/// any row of any PostgreSQL table (each row read as text).
fn assert_no_plaintext(db: &str, n: usize) {
    let mut stored: Vec<u8> = Vec::new();
    if let Some(path) = db.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-journal"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                stored.extend(bytes);
            }
        }
    } else {
        rt().block_on(async {
            let mut conn = sqlx::PgConnection::connect(db).await.expect("connect");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&mut conn)
            .await
            .expect("tables");
            assert!(tables.len() >= 10, "{tables:?}");
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t"))
                        .fetch_all(&mut conn)
                        .await
                        .expect("rows as text");
                for r in rows {
                    stored.extend(r.into_bytes());
                    stored.push(b'\n');
                }
            }
        });
    }
    let has = |needle: &str| stored.windows(needle.len()).any(|w| w == needle.as_bytes());
    // The data is there, sealed and indexed: what follows is not vacuous.
    assert!(has("enc:") && has("bi:"), "no sealed values in {db}");
    assert!(
        stored.len() > 10_000,
        "{} bytes read from {db}",
        stored.len()
    );
    for needle in [FIRST_NAME, CARD] {
        assert!(!has(needle), "{needle:?} is stored readable in {db}");
    }
    for i in 0..n {
        let e164 = phone(i);
        // "+12122000000" → "2122000000": the national digits, also inside the E.164 form.
        let national = &e164[2..];
        assert!(!has(national), "{e164} is stored readable in {db}");
    }
}

#[test]
fn an_opt_out_is_never_dialed_after_its_commit_sqlite() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("callbot.db").display());
    opt_outs_race_the_dialer(&db, dir.path());
}

#[test]
fn an_opt_out_is_never_dialed_after_its_commit_postgres() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = rt().block_on(PgDb::create());
    opt_outs_race_the_dialer(&pg.url, dir.path());
}

/// A TCP relay in front of PostgreSQL that the test can cut — its listener closes (new
/// connections are refused) and every open connection drops, as when the database host goes
/// away — and restore on the same port.
struct DbRelay {
    rt: tokio::runtime::Runtime,
    port: u16,
    target: SocketAddr,
    tasks: std::sync::Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

/// Where `url`'s `host:port` sits in it (a PostgreSQL URL with a user and a database).
fn host_port(url: &str) -> std::ops::Range<usize> {
    let at = url.find('@').expect("a user in the URL") + 1;
    at..at + url[at..].find('/').expect("a database in the URL")
}

impl DbRelay {
    /// A relay to the server of PostgreSQL URL `url`.
    fn start(url: &str) -> DbRelay {
        use std::net::ToSocketAddrs as _;
        let target = url[host_port(url)]
            .to_socket_addrs()
            .expect("PostgreSQL's address")
            .next()
            .expect("an address");
        let relay = DbRelay {
            rt: rt(),
            port: free_tcp_port(),
            target,
            tasks: Default::default(),
        };
        relay.restore();
        relay
    }

    fn restore(&self) {
        let t0 = Instant::now();
        let listener = loop {
            match self
                .rt
                .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        t0.elapsed() < Duration::from_secs(5),
                        "rebinding the relay: {e}"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        let (tasks, target) = (self.tasks.clone(), self.target);
        let accept = self.rt.spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(pipe.abort_handle());
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(accept.abort_handle());
    }

    fn cut(&self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// `url` (a PostgreSQL URL on `self.target`) through the relay.
    fn url(&self, url: &str) -> String {
        let hp = host_port(url);
        format!(
            "{}127.0.0.1:{}{}",
            &url[..hp.start],
            self.port,
            &url[hp.end..]
        )
    }
}

#[test]
fn a_database_outage_mid_campaign_loses_nothing_postgres() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = rt();
    let pg = rt.block_on(PgDb::create());
    let relay = DbRelay::start(&pg.url);
    let via_relay = relay.url(&pg.url);
    let sipp_log = dir.path().join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    const N: usize = 150;
    campaign(dir.path(), &pg.url, N, trunk, 20);
    let store = rt.block_on(Store::open(&pg.url)).expect("open");
    let log = dir.path().join("node.log");
    let mut n1 = node(&via_relay, "node-1", true, &log);
    rt.block_on(wait_for_attempts(&store, 40, Duration::from_secs(120)));
    // Away for longer than the node's 5 s leases and the pool's 10 s wait for a connection,
    // with calls in progress that end meanwhile.
    relay.cut();
    let cut_at = Utc::now().timestamp_micros() as f64 / 1e6;
    let open = rt
        .block_on(attempts(&store))
        .iter()
        .filter(|a| a.disposition.is_none())
        .count();
    println!("database cut with {open} attempts in progress");
    std::thread::sleep(Duration::from_secs(25));
    let restored_at = Utc::now().timestamp_micros() as f64 / 1e6;
    relay.restore();
    wait_exit(&mut n1, Duration::from_secs(300), &log);
    let all = rt.block_on(check_complete(&store, N, &sipp_log));
    // Nothing dialed twice: the node never died, so every number rang once. (An attempt opened
    // by a dial transaction the outage broke before its INVITE is closed `interrupted`.)
    let seen = invites(&sipp_log);
    for i in 0..N {
        let p = phone(i);
        assert_eq!(seen.get(&p).map(Vec::len), Some(1), "{p} rang once");
    }
    // No dial without its attempt stored: nothing left while the database was away (bar an
    // INVITE whose dial transaction committed as the relay was cut).
    let dialed_away: Vec<_> = seen
        .iter()
        .flat_map(|(p, times)| times.iter().map(move |t| (p, *t)))
        .filter(|(_, t)| *t > cut_at + 0.5 && *t < restored_at)
        .collect();
    assert!(
        dialed_away.is_empty(),
        "dialed while the database was away: {dialed_away:?}"
    );
    // Every attempt that rang has its call record, the ones that ended during the outage too.
    for a in all
        .iter()
        .filter(|a| a.disposition.as_deref() != Some("interrupted"))
    {
        let id = a
            .call_id
            .as_deref()
            .unwrap_or_else(|| panic!("{a:?} has a call"));
        let call = rt.block_on(store.call(id)).expect("read the call");
        assert!(call.is_some(), "the call record of {a:?}");
    }
    let text = std::fs::read_to_string(&log).expect("node log");
    for alert in [
        "could not renew leases: no new dials until the database answers",
        "the database is unavailable: holding this write and retrying until it is back",
        "the database is back: a held write is stored",
        "the database is back: leases renewed, dialing resumes",
    ] {
        assert!(text.contains(alert), "the node logs {alert:?}:\n{text}");
    }
    assert!(open > 0, "the outage hit calls in progress");
    drop(store);
}

/// When `needle` first shows in the node's log, within `limit`.
fn wait_for_log(log: &Path, needle: &str, limit: Duration) {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "{needle:?} not logged within {limit:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_trunk_that_stops_answering_is_probed_and_nothing_is_lost() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("callbot.db").display());
    let logs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("sipp-{i}.log")))
        .collect();
    let (sipp, trunk) = sipp_phones(SCENARIO, &logs[0]);
    const N: usize = 80;
    const PROBE_S: u64 = 2;
    campaign_with(
        dir.path(),
        &db,
        N,
        trunk,
        20,
        serde_json::json!({
            "trunk": {"trip_after": 5, "probe_secs": PROBE_S},
            "rules": {
                "retries": {"network_error": {"delay_secs": 2, "max": 10}},
                "max_attempts_per_day": 12,
            },
        }),
    );
    let rt = rt();
    let store = rt.block_on(Store::open(&db)).expect("open");
    let log = dir.path().join("node.log");
    let mut n1 = node(&db, "node-1", true, &log);
    rt.block_on(wait_for_attempts(&store, 20, Duration::from_secs(120)));
    // The trunk stops answering: INVITEs go unanswered until the 30 s no-response limit.
    drop(sipp);
    wait_for_log(&log, "the trunk is not answering", Duration::from_secs(120));
    let down_seen = Utc::now();
    // Up again but refusing every call with 503: only probes reach it.
    let (refusing, _) = sipp_phones_on(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/uas_503.xml"),
        &logs[1],
        trunk.port(),
    );
    std::thread::sleep(Duration::from_secs(10));
    drop(refusing);
    let back_at = Utc::now();
    let (_answering, _) = sipp_phones_on(SCENARIO, &logs[2], trunk.port());
    wait_exit(&mut n1, Duration::from_secs(300), &log);

    let all = rt.block_on(attempts(&store));
    // While down: probes only, one every PROBE_S at most (+1 for the edges).
    let window = (back_at - down_seen).num_milliseconds() as f64 / 1000.0;
    let started_down = all
        .iter()
        .filter(|a| a.started_at > down_seen && a.started_at < back_at)
        .count();
    println!("{started_down} attempts in {window:.1} s while the trunk was down");
    assert!(
        started_down >= 2,
        "the down trunk was probed ({started_down})"
    );
    assert!(
        started_down as f64 <= window / PROBE_S as f64 + 1.0,
        "{started_down} attempts in {window:.1} s on a down trunk"
    );
    let refused = invites(&logs[1]).values().map(Vec::len).sum::<usize>();
    assert!(refused >= 1, "the 503s were met");
    // Every lead completed once; its earlier attempts failed on the trunk; none overlapped.
    let c = rt
        .block_on(store.campaign(DEFAULT_TENANT, "c"))
        .expect("read")
        .expect("campaign");
    assert_eq!(c.status, CampaignStatus::Finished);
    let mut by_phone: HashMap<&str, Vec<&AttemptRow>> = HashMap::new();
    for a in &all {
        by_phone.entry(a.phone.as_str()).or_default().push(a);
    }
    assert_eq!(by_phone.len(), N, "every lead was dialed");
    let mut failed = 0;
    for (p, rows) in &mut by_phone {
        rows.sort_by_key(|a| a.started_at);
        let (last, earlier) = rows.split_last().expect("an attempt");
        for a in earlier {
            assert_eq!(
                a.disposition.as_deref(),
                Some("network_error"),
                "{p}: {rows:?}"
            );
            failed += 1;
        }
        // Reached in the end (a call answered before the trunk died ends as its flow does).
        let d = last.disposition.as_deref();
        assert!(
            d.is_some_and(|d| d != "network_error" && d != "interrupted"),
            "{p}: reached in the end: {rows:?}"
        );
        for w in rows.windows(2) {
            let ended = w[0].ended_at.expect("ended");
            assert!(
                ended <= w[1].started_at,
                "{p}: two attempts at once: {rows:?}"
            );
        }
        for a in rows.iter() {
            let id = a
                .call_id
                .as_deref()
                .unwrap_or_else(|| panic!("{a:?} has a call"));
            assert!(
                rt.block_on(store.call(id)).expect("read").is_some(),
                "the call record of {a:?}"
            );
        }
    }
    assert!(failed >= 5, "the outage failed calls ({failed})");
    let text = std::fs::read_to_string(&log).expect("node log");
    assert!(
        text.contains("the trunk answers again: dialing on it resumes"),
        "{text}"
    );
}

/// A tmpfs of `size` mounted at `path` (needs root, as in CI), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs at {} (this test needs root): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(path.to_path_buf())
    }

    /// Writes `path` until the filesystem is full; returns the bytes written.
    fn fill(&self, path: &Path) -> u64 {
        let mut f = std::fs::File::create(path).expect("ballast");
        let chunk = vec![0x55u8; 16 << 10];
        let mut n = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        n
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_recordings_disk_holds_dialing_and_loses_no_recording() {
    use sha2::Digest as _;
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("callbot.db").display());
    let sipp_log = dir.path().join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    // Each call's recording is about 60 KB (1.5 s of two 8 kHz 16-bit channels, sealed).
    let rec_dir = dir.path().join("recordings");
    let disk = Tmpfs::mount(&rec_dir, "8m");
    const N: usize = 80;
    campaign(dir.path(), &db, N, trunk, 20);
    let rt = rt();
    let store = rt.block_on(Store::open(&db)).expect("open");
    let log = dir.path().join("node.log");
    let recordings = rec_dir.display().to_string();
    let mut n1 = node_with(
        &db,
        "node-1",
        true,
        &log,
        &["--recordings", &recordings, "--recordings-min-free-mb", "1"],
    );
    rt.block_on(wait_for_attempts(&store, 20, Duration::from_secs(120)));
    // The disk fills up while calls are in progress.
    let ballast = rec_dir.join("ballast");
    let filled = disk.fill(&ballast);
    let full_at = Utc::now();
    wait_for_log(
        &log,
        "the recordings disk is full: no new dials",
        Duration::from_secs(10),
    );
    wait_for_log(
        &log,
        "holding this recording and retrying",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(8));
    let freed_at = Utc::now();
    std::fs::remove_file(&ballast).expect("free the disk");
    wait_exit(&mut n1, Duration::from_secs(300), &log);
    println!("filled {filled} bytes at {full_at}, freed at {freed_at}");

    let all = rt.block_on(check_complete(&store, N, &sipp_log));
    // Nothing dialed while the disk was full (a claim already under way when it filled may
    // still start in the next second).
    let during: Vec<_> = all
        .iter()
        .filter(|a| {
            a.started_at > full_at + chrono::Duration::seconds(1) && a.started_at < freed_at
        })
        .collect();
    assert!(during.is_empty(), "dialed with a full disk: {during:?}");
    assert!(
        all.iter().any(|a| a.started_at > freed_at),
        "dialing resumed after the disk was freed"
    );
    // Every answered call has its recording, whole; no partial file is left.
    let mut recorded = 0;
    for a in &all {
        let id = a
            .call_id
            .as_deref()
            .unwrap_or_else(|| panic!("{a:?} has a call"));
        let call = rt
            .block_on(store.call(id))
            .expect("read")
            .unwrap_or_else(|| panic!("the call record of {a:?}"));
        if call.answered_at.is_none() {
            continue;
        }
        let rec = call
            .recording
            .as_ref()
            .unwrap_or_else(|| panic!("answered call {id} has its recording: {call:?}"));
        let bytes = std::fs::read(&rec.path).expect("the recording file");
        assert_eq!(bytes.len() as u64, rec.bytes, "{id}: size");
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            rec.sha256,
            "{id}"
        );
        recorded += 1;
    }
    assert!(recorded >= N, "{recorded} recordings for {N} leads");
    let parts: Vec<_> = std::fs::read_dir(&rec_dir)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .map(|e| e.path())
        .collect();
    assert!(parts.is_empty(), "partial files left: {parts:?}");
    let text = std::fs::read_to_string(&log).expect("node log");
    for line in [
        "the recordings disk has space again: a held recording is stored",
        "the recordings disk has space again: dialing resumes",
    ] {
        assert!(text.contains(line), "{line:?} logged:\n{text}");
    }
    drop(disk);
}
