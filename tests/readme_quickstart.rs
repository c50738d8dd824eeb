//! The README's admin API quick start, run as written: the `quickstart: node` block starts a
//! dialer node serving the API, the `quickstart: client` block (bash, `set -euo pipefail`,
//! curl) creates a token, uploads the flow, creates a campaign, uploads its customers, starts
//! it, watches it until every customer has been called and exports the report. SIPp plays the
//! customers' phones (`tests/sipp/uas_answer_hangup.xml`), with the real models.
//!
//! What is changed before running, and only that: the ports (8080, 5070 and the trunk's 5080)
//! become free loopback ports, and the customers' time zone becomes one where it is daytime now,
//! so the default calling window is open. The blocks run in a temporary directory (with
//! `dialog-flows/` linked in) on the default SQLite database there, with `callbot` on the PATH.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{Killed, daytime_zone, free_tcp_port, free_udp_port, sipp_phones};

const README: &str = include_str!("../README.md");
const SCENARIO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/sipp/uas_answer_hangup.xml"
);

/// The first ```sh block after the line starting with `<!-- quickstart: NAME`.
fn block(name: &str) -> String {
    let marker = format!("<!-- quickstart: {name}");
    let from = README
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let rest = &README[from..];
    let start = rest.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the block's end");
    rest[start..start + len].to_string()
}

fn bash(script: &str, cwd: &Path, path_env: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(cwd)
        .env("PATH", path_env)
        .env_remove("CALLBOT_DATABASE_URL")
        .env_remove("CALLBOT_KEYS")
        .env_remove("CALLBOT_KEYS_FILE");
    cmd
}

#[test]
fn the_readme_api_quick_start_works_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dialog-flows"),
        work.join("dialog-flows"),
    )
    .expect("link dialog-flows");
    let sipp_log = work.join("sipp.log");
    let (_sipp, trunk) = sipp_phones(SCENARIO, &sipp_log);
    let api = format!("127.0.0.1:{}", free_tcp_port());
    let sip = format!("127.0.0.1:{}", free_udp_port());
    let bin = Path::new(env!("CARGO_BIN_EXE_callbot"))
        .parent()
        .expect("the binary's folder")
        .display()
        .to_string();
    let path_env = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());

    let node = block("node");
    assert_eq!(node.trim().lines().count(), 1, "one command: {node}");
    let node = node
        .trim()
        .replace("127.0.0.1:8080", &api)
        .replace("127.0.0.1:5070", &sip);
    let log = std::fs::File::create(work.join("node.log")).expect("log");
    let _node = Killed(
        bash(&format!("exec {node}"), work, &path_env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the node"),
    );
    let node_log = || std::fs::read_to_string(work.join("node.log")).unwrap_or_default();
    // The node is up when its API answers (it loads the models first).
    let ready = format!("http://{api}/api/v1/ready");
    let t0 = Instant::now();
    while !Command::new("curl")
        .args(["-sf", "-o", "/dev/null", &ready])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the node did not answer on {ready}:\n{}",
            node_log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let client = block("client")
        .replace("127.0.0.1:8080", &api)
        .replace("127.0.0.1:5080", &trunk.to_string())
        .replace("America/New_York", daytime_zone());
    let mut child = bash(&client, work, &path_env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the client block");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = reader.join().expect("reader");
            panic!(
                "the client block ran over 300 s\nstdout: {o}\nstderr: {e}\nnode:\n{}",
                node_log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = reader.join().expect("reader");
    assert!(
        status.success(),
        "the client block failed ({status}):\nstdout: {stdout}\nstderr: {stderr}\nnode:\n{}",
        node_log()
    );

    // What each curl printed, in order: the token is not among them (it went to $TOKEN).
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("JSON answers: {e}\n{stdout}"));
    assert_eq!(docs.len(), 6, "{stdout}");
    let (flow, campaign, leads, started, watched, calls) =
        (&docs[0], &docs[1], &docs[2], &docs[3], &docs[4], &docs[5]);
    assert_eq!(flow["stored"], "new", "{flow}");
    assert_eq!(flow["flow"]["name"], "card_payment_reminder");
    assert_eq!(campaign["campaign"]["id"], "reminders", "{campaign}");
    assert_eq!(campaign["campaign"]["status"], "draft");
    assert_eq!(leads["report"]["inserted"], 2, "{leads}");
    assert_eq!(leads["report"]["file"]["errors"][0]["row"], 4, "{leads}");
    assert_eq!(started["status"], "running", "{started}");
    let stats = &watched["stats"];
    assert_eq!(watched["campaign"]["status"], "running", "{watched}");
    assert_eq!(stats["attempts"], 2, "{watched}");
    assert_eq!(stats["due"], 0, "{watched}");
    assert_eq!(stats["in_progress"], 0, "{watched}");
    assert_eq!(
        stats["dispositions"],
        serde_json::json!([["answered", 2]]),
        "{watched}"
    );
    let numbers: Vec<&str> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["phone"].as_str())
        .collect();
    let mut numbers = numbers;
    numbers.sort_unstable();
    assert_eq!(numbers, ["+12125550101", "+12125550102"], "{calls}");

    // SIPp saw both customers called, with the campaign's caller ID.
    let sipp = std::fs::read_to_string(&sipp_log).unwrap_or_default();
    for n in ["12125550101", "12125550102"] {
        assert!(
            sipp.lines()
                .any(|l| l.starts_with(&format!("INVITE {n} from +18005550100"))),
            "{n} in the SIPp log:\n{sipp}"
        );
    }

    // The node's metrics counted the campaign's dials and their dispositions.
    let metrics = Command::new("curl")
        .args(["-sf", &format!("http://{api}/metrics")])
        .output()
        .expect("curl /metrics");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    for line in [
        "callbot_dialer_dials_total{campaign=\"reminders\"} 2",
        "callbot_dialer_attempts_finished_total{campaign=\"reminders\",result=\"answered\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }

    // The export is a spreadsheet with the campaign's row.
    let xlsx = work.join("reminders.xlsx");
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).expect("an XLSX file");
    let names = calamine::Reader::sheet_names(&book);
    let first = names.first().expect("a sheet").clone();
    let range = calamine::Reader::worksheet_range(&mut book, &first).expect("the sheet");
    let cells: Vec<String> = range.cells().map(|(_, _, c)| c.to_string()).collect();
    assert!(
        cells.iter().any(|c| c == "reminders"),
        "the campaign's row in {cells:?}"
    );
}
