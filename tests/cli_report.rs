//! `callbot report` as a user runs it, over a SQLite file whose attempts and calls the test
//! writes with `bot_runtime::store::Store` (the dialer's own store functions): the CSV output
//! is checked figure by figure, an XLSX file is written, and bad arguments fail with a clear
//! `error: …` and exit code 1. No model is loaded.

use std::process::Command;

use bot_runtime::dialer::db::{
    CampaignKind, DialStart, LeadUpdate, NewAttempt, NewCampaign, NewLead, Order,
};
use bot_runtime::store::Store;
use bot_runtime::{CallLeg, CallRecord, Direction};
use chrono::{DateTime, Duration, TimeZone, Utc};

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, m, 0)
        .single()
        .expect("a valid time")
}

/// (attempt start, attempt disposition, answered → ended seconds, amd, outcome)
type Dial = (
    DateTime<Utc>,
    &'static str,
    Option<i64>,
    Option<&'static str>,
    Option<&'static str>,
);

/// Campaign `c1` (tenant `default`): busy at 03-09 13:00 UTC; a promise to pay (60 s) at 14:00; a
/// machine (20 s) at 03-10 02:30 UTC, which is still 03-09 in New York.
fn dials() -> [Dial; 3] {
    [
        (utc(9, 13, 0), "busy", None, None, None),
        (
            utc(9, 14, 0),
            "completed",
            Some(60),
            Some("human"),
            Some("promise_to_pay"),
        ),
        (
            utc(10, 2, 30),
            "machine",
            Some(20),
            Some("machine"),
            Some("voicemail_left"),
        ),
    ]
}

async fn fill(url: &str) {
    let store = Store::open(url).await.expect("open the store");
    let tenant = "default";
    store
        .save_flow(tenant, "collections", 1, "flow: collections\nversion: 1\n")
        .await
        .expect("flow");
    store
        .create_campaign(
            tenant,
            &NewCampaign {
                id: "c1".into(),
                kind: CampaignKind::Robot,
                flow: "collections".into(),
                flow_version: 1,
                caller_id: None,
                max_concurrent: 5,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
    let dials = dials();
    let leads: Vec<NewLead> = (0..dials.len())
        .map(|i| NewLead {
            external_id: None,
            phone: format!("+1212555{i:04}"),
            name: None,
            timezones: vec!["America/New_York".into()],
            tz_source: "number".into(),
            debt_id: None,
            fields: serde_json::Map::new(),
            source_row: None,
        })
        .collect();
    let inserted = store
        .insert_leads(tenant, "t.csv", &leads)
        .await
        .expect("leads");
    let ids: Vec<String> = leads
        .iter()
        .map(|l| inserted.ids.get(&l.phone).expect("lead id").clone())
        .collect();
    let start = utc(1, 0, 0);
    store
        .assign_leads(tenant, "c1", &ids, Order::Sequential, start)
        .await
        .expect("assign");
    store
        .claim_leads(
            tenant,
            "c1",
            "n1",
            Order::Sequential,
            start,
            utc(31, 0, 0),
            10,
        )
        .await
        .expect("claim");
    for ((dial, lead), l) in dials.iter().zip(&ids).zip(&leads) {
        let (at, disposition, handle_s, amd, outcome) = *dial;
        let attempt = uuid::Uuid::new_v4().to_string();
        let DialStart::Dial(tx) = store
            .begin_dial(
                tenant,
                &NewAttempt {
                    id: attempt.clone(),
                    campaign: "c1".into(),
                    lead: lead.clone(),
                    debt_id: None,
                    phone: l.phone.clone(),
                    node: "n1".into(),
                    started_at: at,
                    rule: "ok".into(),
                    detail: "test".into(),
                },
            )
            .await
            .expect("begin dial")
        else {
            panic!("dial refused");
        };
        tx.commit().await.expect("commit");
        let mut r = CallRecord::new(Direction::Outbound, &l.phone, at);
        r.campaign = Some("c1".into());
        r.lead_id = Some(lead.clone());
        r.disposition = disposition.into();
        r.ended_at = at + Duration::seconds(30);
        if let Some(s) = handle_s {
            let answered = at + Duration::seconds(5);
            r.answered_at = Some(answered);
            r.ended_at = answered + Duration::seconds(s);
            r.flow = "collections".into();
            r.flow_version = 1;
            r.amd = amd.map(str::to_string);
            r.outcome = outcome.map(str::to_string);
            r.path = vec!["greet".into(), "verify".into()];
            r.legs.push(CallLeg {
                kind: "robot".into(),
                agent_id: None,
                queue: None,
                wait_ms: None,
                started_at: answered,
                ended_at: r.ended_at,
            });
        }
        store.save_call(&r).await.expect("save call");
        store
            .finish_attempt(
                tenant,
                "c1",
                lead,
                &attempt,
                "n1",
                disposition,
                r.ended_at,
                Some(&r.id),
                &LeadUpdate {
                    done: true,
                    next_at: r.ended_at,
                    reason: "test".into(),
                    callback_at: None,
                },
            )
            .await
            .expect("finish");
    }
    store.close().await;
}

struct Env {
    dir: tempfile::TempDir,
    url: String,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("callbot.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(fill(&url));
    Env { dir, url }
}

impl Env {
    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_callbot"))
            .current_dir(self.dir.path())
            .arg("report")
            .args(args)
            .args(["--database-url", &self.url])
            .env_remove("CALLBOT_DATABASE_URL")
            .output()
            .expect("running callbot");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The CSV's rows as (header → value) maps.
fn parse(csv_text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().expect("a header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("a record");
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn csv_by_campaign_and_by_day_in_a_zone() {
    let e = env();
    let r = e.run(&["--by", "campaign", "--format", "csv"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let rows = parse(&r.stdout);
    assert_eq!(rows.len(), 2, "{}", r.stdout);
    let c1 = &rows[0];
    let want = [
        ("campaign", "c1"),
        ("attempts", "3"),
        ("connects", "2"),
        ("connect_rate", "0.6667"),
        ("right_party_contacts", "1"),
        ("conversions", "1"),
        ("conversion_rate", "0.5000"),
        ("mean_handle_s", "40.0"),
        ("machines", "1"),
        ("amd_rate", "0.5000"),
        ("transfers", "0"),
        ("abandons", "0"),
        ("mean_sentiment", ""),
        ("outcome:promise_to_pay", "1"),
        ("outcome:voicemail_left", "1"),
        ("attempts:busy", "1"),
    ];
    for (k, v) in want {
        assert_eq!(c1.get(k).map(String::as_str), Some(v), "{k} in {c1:?}");
    }
    assert_eq!(rows[1].get("campaign").map(String::as_str), Some("total"));

    let r = e.run(&["--by", "day", "--tz", "America/New_York", "--format", "csv"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let days: Vec<(String, String)> = parse(&r.stdout)
        .into_iter()
        .map(|m| (m["day"].clone(), m["attempts"].clone()))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-03-09".to_string(), "3".to_string()),
            ("total".to_string(), "3".to_string())
        ]
    );
    let r = e.run(&["--by", "day", "--format", "csv"]);
    let days: Vec<String> = parse(&r.stdout)
        .into_iter()
        .map(|m| m["day"].clone())
        .collect();
    assert_eq!(days, ["2026-03-09", "2026-03-10", "total"]);

    // A range in the zone: from 03-09 10:00 New York (14:00 UTC) on.
    let r = e.run(&[
        "--from",
        "2026-03-09 10:00",
        "--tz",
        "America/New_York",
        "--by",
        "campaign",
        "--format",
        "csv",
    ]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(parse(&r.stdout)[0]["attempts"], "2");

    // The funnel as CSV.
    let r = e.run(&["--format", "csv", "--table", "funnel"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let steps: Vec<(String, String)> = parse(&r.stdout)
        .into_iter()
        .map(|m| (m["step"].clone(), m["reached"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("greet".to_string(), "2".to_string()),
            ("verify".to_string(), "2".to_string())
        ]
    );
}

#[test]
fn table_and_xlsx() {
    let e = env();
    let r = e.run(&["--by", "flow"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.starts_with("Report by flow (UTC)"), "{}", r.stdout);
    for part in [
        "Summary",
        "Funnel",
        "Agents",
        "collections",
        "66.7%",
        "robot",
    ] {
        assert!(r.stdout.contains(part), "{part} missing in\n{}", r.stdout);
    }
    let path = e.dir.path().join("out.xlsx");
    let path_text = path.display().to_string();
    let r = e.run(&["-o", &path_text]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let bytes = std::fs::read(&path).expect("the XLSX file");
    assert!(bytes.starts_with(b"PK"), "an XLSX file is a zip archive");
}

#[test]
fn bad_arguments_are_clear_errors() {
    let e = env();
    for (args, want) in [
        (
            &["--by", "week"][..],
            "error: unknown --by \"week\": expected one of hour, day, campaign, flow, agent, side",
        ),
        (
            &["--tz", "Mars/Olympus"][..],
            "error: --tz: unknown time zone \"Mars/Olympus\"",
        ),
        (
            &["--format", "xlsx"][..],
            "error: --format xlsx needs an output file",
        ),
        (&["--format", "pdf"][..], "error: unknown --format \"pdf\""),
        (
            &["--from", "yesterday"][..],
            "error: --from \"yesterday\" is not a time",
        ),
    ] {
        let r = e.run(args);
        assert_eq!(r.code, Some(1), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
}
