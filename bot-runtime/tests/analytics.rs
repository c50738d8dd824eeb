//! Reports (`bot_runtime::analytics`) checked against campaigns whose outcomes are known, one
//! suite run unchanged on SQLite and on PostgreSQL (`support/db.rs`). The attempts go through
//! the dialer's own store functions (claim, `begin_dial`, `finish_attempt`) and the calls through
//! `Store::save_call`, so the report reads what a dialer node writes. Every expected figure below
//! is computed by hand from the scenario table in `bank_scenario`.

use std::collections::BTreeMap;

use bot_runtime::agents::store::AgentDisposition;
use bot_runtime::analytics::{GroupBy, GroupRow, Report, ReportQuery, Side};
use bot_runtime::dialer::db::{
    CampaignKind, DialStart, LeadUpdate, NewAttempt, NewCampaign, NewLead, Order,
};
use bot_runtime::store::Store;
use bot_runtime::{CallLeg, CallRecord, Direction, Speaker, TurnRecord};
use chrono::{DateTime, Duration, TimeZone, Utc};

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

const NODE: &str = "node-1";

fn utc(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, m, 0)
        .single()
        .expect("a valid time")
}

/// One attempt of the scenario and the call it produced.
struct Dial {
    at: DateTime<Utc>,
    /// The attempt's disposition (`None`: still in progress, no call).
    attempt: Option<&'static str>,
    /// The call record's disposition.
    call: &'static str,
    /// Answered → ended, seconds (`None`: not answered).
    handle_s: Option<i64>,
    amd: Option<&'static str>,
    outcome: Option<&'static str>,
    path: &'static [&'static str],
    /// Customer turns' sentiment.
    sentiment: &'static [f64],
    /// (agent, robot seconds, agent seconds, queue wait ms): the call reached an agent.
    agent: Option<(&'static str, i64, i64, u64)>,
    /// What the agent saved.
    agent_disposition: Option<&'static str>,
}

fn unanswered(at_d: u32, h: u32, m: u32, disposition: &'static str) -> (u32, u32, u32, Dial) {
    (
        at_d,
        h,
        m,
        Dial {
            at: DateTime::UNIX_EPOCH,
            attempt: Some(disposition),
            call: disposition,
            handle_s: None,
            amd: None,
            outcome: None,
            path: &[],
            sentiment: &[],
            agent: None,
            agent_disposition: None,
        },
    )
}

fn answered(
    at: DateTime<Utc>,
    attempt: &'static str,
    handle_s: i64,
    amd: Option<&'static str>,
    outcome: Option<&'static str>,
    path: &'static [&'static str],
) -> Dial {
    Dial {
        at,
        attempt: Some(attempt),
        call: if amd == Some("machine") {
            "machine"
        } else {
            "answered"
        },
        handle_s: Some(handle_s),
        amd,
        outcome,
        path,
        sentiment: &[],
        agent: None,
        agent_disposition: None,
    }
}

/// Campaign `reminders` (flow `collections`) of tenant `bank`, attempts A1–A9; campaign
/// `winback` (flow `marketing_offer`), B1–B2. Times in UTC; New York is on EDT (−4) from
/// 2026-03-08.
///
/// | id | attempt (UTC)  | EDT          | attempt dispo | handle | amd     | outcome (final)        | agent           | sentiment |
/// |----|----------------|--------------|---------------|--------|---------|------------------------|-----------------|-----------|
/// | A1 | 03-09 13:10    | 03-09 09:10  | busy          | —      |         |                        |                 |           |
/// | A2 | 03-09 13:40    | 03-09 09:40  | no_answer     | —      |         |                        |                 |           |
/// | A3 | 03-09 14:00    | 03-09 10:00  | completed     | 120 s  | human   | promise_to_pay         |                 | .5, .3    |
/// | A4 | 03-10 02:30    | 03-09 22:30  | wrong_party   | 30 s   | human   | wrong_party            |                 | -.2       |
/// | A5 | 03-10 03:15    | 03-09 23:15  | machine       | 20 s   | machine | voicemail_left         |                 |           |
/// | A6 | 03-10 04:30    | 03-10 00:30  | transferred   | 220 s  | human   | payment_plan (agent)   | alice 40+180 s, wait 15 s | -.6 |
/// | A7 | 03-10 15:00    | 03-10 11:00  | answered      | 50 s   | human   | (none): queued, hung up|                 |           |
/// | A8 | 03-10 15:30    | 03-10 11:30  | transferred   | 120 s  | human   | refused (agent)        | bob 30+90 s, wait 5 s |     |
/// | A9 | 03-10 16:00    | 03-10 12:00  | answered      | 25 s   | unknown | hung_up after `stage`  |                 |           |
/// | B1 | 03-10 17:00    | 03-10 13:00  | completed     | 90 s   | (none)  | lead_credit_card       |                 | .8        |
/// | B2 | 03-10 17:30    | 03-10 13:30  | (in progress) | —      |         |                        |                 |           |
fn bank_scenario() -> (Vec<Dial>, Vec<Dial>) {
    let at = |(d, h, m, mut dial): (u32, u32, u32, Dial)| {
        dial.at = utc(d, h, m);
        dial
    };
    let reminders = vec![
        at(unanswered(9, 13, 10, "busy")),
        at(unanswered(9, 13, 40, "no_answer")),
        Dial {
            sentiment: &[0.5, 0.3],
            ..answered(
                utc(9, 14, 0),
                "completed",
                120,
                Some("human"),
                Some("promise_to_pay"),
                &[
                    "greet",
                    "verify",
                    "verify_account",
                    "check_last4",
                    "stage",
                    "friendly_notice",
                    "ask_amount",
                    "ask_date",
                    "promise_recorded",
                ],
            )
        },
        Dial {
            sentiment: &[-0.2],
            ..answered(
                utc(10, 2, 30),
                "wrong_party",
                30,
                Some("human"),
                Some("wrong_party"),
                &["greet", "verify", "wrong_person"],
            )
        },
        answered(
            utc(10, 3, 15),
            "machine",
            20,
            Some("machine"),
            Some("voicemail_left"),
            &["greet", "voicemail"],
        ),
        Dial {
            sentiment: &[-0.6],
            agent: Some(("alice", 40, 180, 15_000)),
            agent_disposition: Some("payment_plan"),
            ..answered(
                utc(10, 4, 30),
                "transferred",
                220,
                Some("human"),
                Some("transferred"),
                &[
                    "greet",
                    "verify",
                    "verify_account",
                    "check_last4",
                    "stage",
                    "firm_notice",
                    "hardship_check",
                    "hardship",
                ],
            )
        },
        answered(
            utc(10, 15, 0),
            "answered",
            50,
            Some("human"),
            None,
            &[
                "greet",
                "verify",
                "verify_account",
                "check_last4",
                "stage",
                "friendly_notice",
                "agent",
            ],
        ),
        Dial {
            agent: Some(("bob", 30, 90, 5_000)),
            agent_disposition: Some("refused"),
            ..answered(
                utc(10, 15, 30),
                "transferred",
                120,
                Some("human"),
                Some("transferred"),
                &["greet", "verify", "agent"],
            )
        },
        answered(
            utc(10, 16, 0),
            "answered",
            25,
            Some("unknown"),
            Some("hung_up"),
            &[
                "greet",
                "verify",
                "verify_account",
                "check_last4",
                "stage",
                "friendly_notice",
            ],
        ),
    ];
    let winback = vec![
        Dial {
            sentiment: &[0.8],
            ..answered(
                utc(10, 17, 0),
                "completed",
                90,
                None,
                Some("lead_credit_card"),
                &[
                    "greet",
                    "consent",
                    "choose_product",
                    "pitch_card",
                    "card_lead",
                ],
            )
        },
        Dial {
            attempt: None,
            ..at(unanswered(10, 17, 30, "busy"))
        },
    ];
    (reminders, winback)
}

/// Tenant `other`: a campaign with the same id and flow, an agent with the same id; every
/// call converts. None of it may appear in `bank`'s reports.
fn other_scenario() -> Vec<Dial> {
    (0..2)
        .map(|i| Dial {
            sentiment: &[1.0],
            agent: Some(("alice", 10, 500, 1_000)),
            agent_disposition: Some("promise_to_pay"),
            ..answered(
                utc(10, 14, 10 + i),
                "transferred",
                510,
                Some("human"),
                Some("transferred"),
                &["greet", "verify", "agent"],
            )
        })
        .collect()
}

async fn campaign(store: &Store, tenant: &str, id: &str, flow: &str) {
    store.ensure_tenant(tenant, tenant).await.expect("tenant");
    let source = format!("flow: {flow}\nversion: 1\n");
    store
        .save_flow(tenant, flow, 1, &source)
        .await
        .expect("flow");
    store
        .create_campaign(
            tenant,
            &NewCampaign {
                id: id.into(),
                kind: CampaignKind::Blended,
                flow: flow.into(),
                flow_version: 1,
                caller_id: None,
                max_concurrent: 10,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
}

fn record(dial: &Dial, campaign: &str, flow: &str, lead: &str, phone: &str) -> CallRecord {
    let mut r = CallRecord::new(Direction::Outbound, phone, dial.at);
    r.campaign = Some(campaign.into());
    r.lead_id = Some(lead.into());
    r.disposition = dial.call.into();
    let Some(handle_s) = dial.handle_s else {
        r.ended_at = dial.at + Duration::seconds(30);
        return r;
    };
    let answered = dial.at + Duration::seconds(5);
    let ended = answered + Duration::seconds(handle_s);
    r.flow = flow.into();
    r.flow_version = 1;
    r.answered_at = Some(answered);
    r.ended_at = ended;
    r.amd = dial.amd.map(str::to_string);
    r.outcome = dial.outcome.map(str::to_string);
    r.path = dial.path.iter().map(|s| s.to_string()).collect();
    r.ended_by = Some("customer".into());
    r.turns.push(TurnRecord {
        seq: 0,
        speaker: Speaker::Bot,
        text: "Hello".into(),
        start_ms: 0,
        end_ms: 1000,
        step: Some("greet".into()),
        intent: None,
        confidence: None,
        sentiment: None,
        interrupted: false,
        latency: None,
    });
    for (i, s) in dial.sentiment.iter().enumerate() {
        r.turns.push(TurnRecord {
            seq: i as u32 + 1,
            speaker: Speaker::Customer,
            text: "words".into(),
            start_ms: 2000 * (i as u64 + 1),
            end_ms: 2000 * (i as u64 + 1) + 500,
            step: None,
            intent: None,
            confidence: Some(0.9),
            sentiment: Some(*s),
            interrupted: false,
            latency: None,
        });
    }
    // A customer turn without a score does not count in the mean.
    r.turns.push(TurnRecord {
        seq: 99,
        speaker: Speaker::Customer,
        text: "mm".into(),
        start_ms: 60_000,
        end_ms: 60_500,
        step: None,
        intent: None,
        confidence: None,
        sentiment: None,
        interrupted: false,
        latency: None,
    });
    match dial.agent {
        None => r.legs.push(CallLeg {
            kind: "robot".into(),
            agent_id: None,
            queue: None,
            wait_ms: None,
            started_at: answered,
            ended_at: ended,
        }),
        Some((agent, robot_s, agent_s, wait_ms)) => {
            let bridged = answered + Duration::seconds(robot_s);
            r.legs.push(CallLeg {
                kind: "robot".into(),
                agent_id: None,
                queue: None,
                wait_ms: None,
                started_at: answered,
                ended_at: bridged,
            });
            r.legs.push(CallLeg {
                kind: "agent".into(),
                agent_id: Some(agent.into()),
                queue: Some("collections".into()),
                wait_ms: Some(wait_ms),
                started_at: bridged,
                ended_at: bridged + Duration::seconds(agent_s),
            });
        }
    }
    r
}

/// Imports one lead per dial, claims them all, and runs each dial through the dialer's store
/// functions; returns the call ids, in order (`None`: no call).
async fn run_campaign(
    store: &Store,
    tenant: &str,
    id: &str,
    flow: &str,
    first_phone: usize,
    dials: &[Dial],
) -> Vec<Option<String>> {
    campaign(store, tenant, id, flow).await;
    let phones: Vec<String> = (0..dials.len())
        .map(|i| format!("+1212555{:04}", first_phone + i))
        .collect();
    let leads: Vec<NewLead> = phones
        .iter()
        .enumerate()
        .map(|(i, p)| NewLead {
            external_id: None,
            phone: p.clone(),
            name: Some(format!("Customer {i}")),
            timezones: vec!["America/New_York".into()],
            tz_source: "number".into(),
            debt_id: None,
            fields: serde_json::Map::new(),
            source_row: Some(i as u64 + 2),
        })
        .collect();
    let report = store
        .insert_leads(tenant, "test.csv", &leads)
        .await
        .expect("insert leads");
    let ids: Vec<String> = phones
        .iter()
        .map(|p| report.ids.get(p).expect("lead id").clone())
        .collect();
    let start = utc(1, 0, 0);
    store
        .assign_leads(tenant, id, &ids, Order::Sequential, start)
        .await
        .expect("assign");
    let claimed = store
        .claim_leads(
            tenant,
            id,
            NODE,
            Order::Sequential,
            start,
            utc(31, 0, 0),
            dials.len() as u32,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), dials.len());
    let mut calls = Vec::new();
    for ((dial, lead), phone) in dials.iter().zip(&ids).zip(&phones) {
        let attempt = uuid::Uuid::new_v4().to_string();
        let started = store
            .begin_dial(
                tenant,
                &NewAttempt {
                    id: attempt.clone(),
                    campaign: id.into(),
                    lead: lead.clone(),
                    debt_id: None,
                    phone: phone.clone(),
                    node: NODE.into(),
                    started_at: dial.at,
                    rule: "ok".into(),
                    detail: "test".into(),
                },
            )
            .await
            .expect("begin dial");
        let DialStart::Dial(tx) = started else {
            panic!("the dial was refused");
        };
        tx.commit().await.expect("commit the dial");
        let Some(disposition) = dial.attempt else {
            calls.push(None);
            continue;
        };
        let rec = record(dial, id, flow, lead, phone);
        store.save_call(&rec).await.expect("save call");
        if let (Some((agent, ..)), Some(d)) = (dial.agent, dial.agent_disposition) {
            store
                .save_disposition(
                    tenant,
                    &AgentDisposition {
                        call_id: rec.id.clone(),
                        agent_id: agent.into(),
                        disposition: d.into(),
                        notes: String::new(),
                        callback_at: None,
                        saved_at: rec.ended_at,
                    },
                )
                .await
                .expect("save disposition");
        }
        let held = store
            .finish_attempt(
                tenant,
                id,
                lead,
                &attempt,
                NODE,
                disposition,
                rec.ended_at,
                Some(&rec.id),
                &LeadUpdate {
                    done: true,
                    next_at: rec.ended_at,
                    reason: "test: done".into(),
                    callback_at: None,
                },
            )
            .await
            .expect("finish attempt");
        assert!(held);
        calls.push(Some(rec.id));
    }
    calls
}

/// Both tenants' data, plus an inbound call that no attempt refers to.
async fn scenario(store: &Store) -> Vec<Option<String>> {
    let (reminders, winback) = bank_scenario();
    let calls = run_campaign(store, "bank", "reminders", "collections", 0, &reminders).await;
    run_campaign(store, "bank", "winback", "marketing_offer", 100, &winback).await;
    run_campaign(
        store,
        "other",
        "reminders",
        "collections",
        200,
        &other_scenario(),
    )
    .await;
    // Tenant `other` saves a disposition for one of bank's calls (A7): bank's report must not
    // take it.
    let a7 = calls[6].clone().expect("A7 has a call");
    store
        .save_disposition(
            "other",
            &AgentDisposition {
                call_id: a7,
                agent_id: "mallory".into(),
                disposition: "resolved".into(),
                notes: String::new(),
                callback_at: None,
                saved_at: utc(11, 0, 0),
            },
        )
        .await
        .expect("other tenant's disposition");
    let inbound = answered(
        utc(10, 12, 0),
        "completed",
        60,
        Some("human"),
        Some("promise_to_pay"),
        &["greet"],
    );
    let mut r = record(&inbound, "reminders", "collections", "x", "+12125559999");
    r.direction = Direction::Inbound;
    store.save_call(&r).await.expect("save inbound call");
    calls
}

fn query(group_by: GroupBy) -> ReportQuery {
    ReportQuery {
        group_by,
        ..ReportQuery::new("bank")
    }
}

fn close(got: Option<f64>, want: f64) -> bool {
    got.is_some_and(|g| (g - want).abs() < 1e-9)
}

#[track_caller]
fn assert_close(got: Option<f64>, want: f64, what: &str) {
    assert!(close(got, want), "{what}: got {got:?}, want {want}");
}

fn row<'a>(r: &'a Report, group: &str) -> &'a GroupRow {
    r.rows
        .iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| panic!("no group {group:?} in {:?}", groups(r)))
}

fn groups(r: &Report) -> Vec<(String, u64)> {
    r.rows
        .iter()
        .map(|g| (g.group.clone(), g.attempts))
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

mod cases {
    use super::*;

    pub async fn by_campaign_every_metric(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let r = store
            .report(&query(GroupBy::Campaign))
            .await
            .expect("report");
        assert_eq!(
            groups(&r),
            [("reminders".to_string(), 9), ("winback".to_string(), 2)]
        );

        let g = row(&r, "reminders");
        assert_eq!(g.connects, 7, "A3–A9");
        assert_close(g.connect_rate(), 7.0 / 9.0, "connect rate");
        assert_eq!(g.machines, 1, "A5");
        assert_close(g.amd_rate(), 1.0 / 7.0, "AMD rate");
        assert_eq!(g.right_party, 3, "A3 promise, A6 and A8 reached agents");
        assert_close(g.right_party_rate(), 3.0 / 7.0, "RPC rate");
        assert_eq!(g.conversions, 2, "A3 promise_to_pay, A6 payment_plan");
        assert_close(g.conversion_rate(), 2.0 / 7.0, "conversion rate");
        assert_eq!(g.transfers, 2, "A6, A8");
        assert_close(g.transfer_rate(), 2.0 / 7.0, "transfer rate");
        assert_eq!(g.abandons, 1, "A7");
        assert_close(g.abandon_rate(), 1.0 / 7.0, "abandon rate");
        // 120 + 30 + 20 + 220 + 50 + 120 + 25 = 585 s over 7 connects.
        assert_eq!(g.handle_ms, 585_000);
        assert_close(g.mean_handle_ms(), 585_000.0 / 7.0, "mean handle");
        // Robot: 120 + 30 + 20 + 40 + 50 + 30 + 25 = 315 s; agents: 180 + 90 s over 2.
        assert_close(g.mean_robot_ms(), 45_000.0, "mean robot time");
        assert_close(g.mean_agent_ms(), 135_000.0, "mean agent talk");
        // A3 (0.5 + 0.3) / 2 = 0.4, A4 -0.2, A6 -0.6.
        assert_eq!(g.sentiment_calls, 3);
        assert_close(g.mean_sentiment(), (0.4 - 0.2 - 0.6) / 3.0, "sentiment");
        assert_eq!(
            g.outcomes,
            counts(&[
                ("(none)", 1),
                ("hung_up", 1),
                ("payment_plan", 1),
                ("promise_to_pay", 1),
                ("refused", 1),
                ("voicemail_left", 1),
                ("wrong_party", 1),
            ])
        );
        assert_eq!(
            g.dispositions,
            counts(&[
                ("answered", 2),
                ("busy", 1),
                ("completed", 1),
                ("machine", 1),
                ("no_answer", 1),
                ("transferred", 2),
                ("wrong_party", 1),
            ])
        );

        let w = row(&r, "winback");
        assert_eq!((w.attempts, w.connects, w.right_party), (2, 1, 1));
        assert_eq!((w.conversions, w.transfers, w.machines), (1, 0, 0));
        assert_close(w.mean_handle_ms(), 90_000.0, "winback handle");
        assert_close(w.mean_sentiment(), 0.8, "winback sentiment");
        assert_eq!(
            w.dispositions,
            counts(&[("completed", 1), ("in_progress", 1)])
        );

        let t = &r.total;
        assert_eq!(t.group, "total");
        assert_eq!((t.attempts, t.connects, t.right_party), (11, 8, 4));
        assert_eq!((t.conversions, t.transfers, t.abandons), (3, 2, 1));
        assert_eq!(t.handle_ms, 675_000);
        assert_close(
            t.mean_sentiment(),
            (0.4 - 0.2 - 0.6 + 0.8) / 4.0,
            "total sentiment",
        );
    }

    pub async fn by_day_and_hour_across_midnight(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let ny = "America/New_York".parse().expect("zone");
        let days = store
            .report(&ReportQuery {
                timezone: ny,
                ..query(GroupBy::Day)
            })
            .await
            .expect("report");
        assert_eq!(days.timezone, "America/New_York");
        // A4 and A5 are on 03-10 in UTC but 03-09 in New York; A6 is 00:30 on 03-10.
        assert_eq!(
            groups(&days),
            [("2026-03-09".to_string(), 5), ("2026-03-10".to_string(), 6)]
        );
        let d9 = row(&days, "2026-03-09");
        assert_eq!((d9.connects, d9.machines, d9.conversions), (3, 1, 1));
        assert_close(
            d9.mean_handle_ms(),
            (120_000.0 + 30_000.0 + 20_000.0) / 3.0,
            "d9",
        );
        let d10 = row(&days, "2026-03-10");
        assert_eq!((d10.connects, d10.transfers, d10.abandons), (5, 2, 1));

        let utc_days = store.report(&query(GroupBy::Day)).await.expect("report");
        assert_eq!(
            groups(&utc_days),
            [("2026-03-09".to_string(), 3), ("2026-03-10".to_string(), 8)]
        );

        let hours = store
            .report(&ReportQuery {
                timezone: ny,
                ..query(GroupBy::Hour)
            })
            .await
            .expect("report");
        let want: Vec<(String, u64)> = [
            ("2026-03-09 09:00 -04:00", 2),
            ("2026-03-09 10:00 -04:00", 1),
            ("2026-03-09 22:00 -04:00", 1),
            ("2026-03-09 23:00 -04:00", 1),
            ("2026-03-10 00:00 -04:00", 1),
            ("2026-03-10 11:00 -04:00", 2),
            ("2026-03-10 12:00 -04:00", 1),
            ("2026-03-10 13:00 -04:00", 2),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
        assert_eq!(groups(&hours), want);
        assert_eq!(row(&hours, "2026-03-10 00:00 -04:00").transfers, 1);
        assert_eq!(hours.total, days.total);
    }

    pub async fn by_agent_side_and_agents_table(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let r = store.report(&query(GroupBy::Agent)).await.expect("report");
        assert_eq!(
            groups(&r),
            [
                ("(not connected)".to_string(), 3),
                ("(robot only)".to_string(), 6),
                ("alice".to_string(), 1),
                ("bob".to_string(), 1),
            ]
        );
        let alice = row(&r, "alice");
        assert_eq!((alice.conversions, alice.transfers), (1, 1));
        assert_close(alice.mean_agent_ms(), 180_000.0, "alice's talk time");
        assert_eq!(alice.outcomes, counts(&[("payment_plan", 1)]));
        let robot_only = row(&r, "(robot only)");
        // A3, A4, A5, A7, A9, B1.
        assert_eq!((robot_only.connects, robot_only.conversions), (6, 2));

        // The side-by-side table: the robot first, then the agents; `other`'s alice (500 s
        // calls) is not bank's alice.
        let agents: Vec<(Side, &str, u64)> = r
            .agents
            .iter()
            .map(|a| (a.side, a.agent.as_str(), a.calls))
            .collect();
        assert_eq!(
            agents,
            [
                (Side::Robot, "robot", 8),
                (Side::Human, "alice", 1),
                (Side::Human, "bob", 1),
            ]
        );
        let robot = &r.agents[0];
        assert_eq!(robot.handle_ms, 405_000, "315 s + B1's 90 s");
        assert_eq!((robot.transfers, robot.conversions), (2, 2));
        assert_eq!(robot.mean_wait_ms(), None);
        let alice = &r.agents[1];
        assert_eq!((alice.handle_ms, alice.wait_ms), (180_000, 15_000));
        assert_close(alice.conversion_rate(), 1.0, "alice converts");
        assert_eq!(alice.dispositions, counts(&[("payment_plan", 1)]));
        let bob = &r.agents[2];
        assert_eq!(
            (bob.handle_ms, bob.wait_ms, bob.conversions),
            (90_000, 5_000, 0)
        );
        assert_close(bob.mean_wait_ms(), 5_000.0, "bob's wait");
        assert_eq!(bob.dispositions, counts(&[("refused", 1)]));

        let sides = store.report(&query(GroupBy::Side)).await.expect("report");
        assert_eq!(
            groups(&sides),
            [
                ("(not connected)".to_string(), 3),
                ("human".to_string(), 2),
                ("robot".to_string(), 6),
            ]
        );
        let human = row(&sides, "human");
        assert_close(human.mean_handle_ms(), 170_000.0, "(220 + 120) / 2");
        assert_close(human.mean_robot_ms(), 35_000.0, "(40 + 30) / 2");
        assert_close(human.mean_agent_ms(), 135_000.0, "(180 + 90) / 2");
        let robot = row(&sides, "robot");
        // A3 120, A4 30, A5 20, A7 50, A9 25, B1 90.
        assert_close(robot.mean_handle_ms(), 335_000.0 / 6.0, "robot-only handle");
        assert_eq!(robot.abandons, 1);
    }

    pub async fn funnel(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let r = store.report(&query(GroupBy::Flow)).await.expect("report");
        assert_eq!(
            groups(&r),
            [
                ("collections".to_string(), 9),
                ("marketing_offer".to_string(), 2)
            ]
        );
        let flows: Vec<(&str, u64)> = r
            .funnels
            .iter()
            .map(|f| (f.flow.as_str(), f.calls))
            .collect();
        assert_eq!(flows, [("collections", 7), ("marketing_offer", 1)]);
        let steps: Vec<(&str, u64, u64)> = r.funnels[0]
            .steps
            .iter()
            .map(|s| (s.step.as_str(), s.reached, s.ended_here))
            .collect();
        assert_eq!(
            steps,
            [
                ("greet", 7, 0),
                ("verify", 6, 0),
                ("voicemail", 1, 1),
                ("verify_account", 4, 0),
                ("agent", 2, 2),
                ("wrong_person", 1, 1),
                ("check_last4", 4, 0),
                ("stage", 4, 0),
                ("friendly_notice", 3, 1),
                ("firm_notice", 1, 0),
                ("ask_amount", 1, 0),
                ("hardship_check", 1, 0),
                ("ask_date", 1, 0),
                ("hardship", 1, 1),
                ("promise_recorded", 1, 1),
            ]
        );
        assert_close(
            r.funnels[0].steps[8].drop_off_rate(),
            1.0 / 3.0,
            "friendly_notice",
        );
        let marketing: Vec<&str> = r.funnels[1].steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            marketing,
            [
                "greet",
                "consent",
                "choose_product",
                "pitch_card",
                "card_lead"
            ]
        );
    }

    pub async fn filters_and_options(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let only = |mut q: ReportQuery| {
            q.group_by = GroupBy::Campaign;
            q
        };
        let r = store
            .report(&only(ReportQuery {
                campaign: Some("winback".into()),
                ..ReportQuery::new("bank")
            }))
            .await
            .expect("report");
        assert_eq!(groups(&r), [("winback".to_string(), 2)]);
        // B2 has no call: its flow is its campaign's.
        let r = store
            .report(&only(ReportQuery {
                flow: Some("marketing_offer".into()),
                ..ReportQuery::new("bank")
            }))
            .await
            .expect("report");
        assert_eq!(groups(&r), [("winback".to_string(), 2)]);
        // From 03-10 00:00 UTC (inclusive) to 16:00 (exclusive): A4–A8.
        let r = store
            .report(&only(ReportQuery {
                from: Some(utc(10, 0, 0)),
                to: Some(utc(10, 16, 0)),
                ..ReportQuery::new("bank")
            }))
            .await
            .expect("report");
        assert_eq!(groups(&r), [("reminders".to_string(), 5)]);
        assert_eq!(r.total.connects, 5);
        // Naming the step after the identity check adds A7 and A9 (both reached `stage`).
        let mut q = query(GroupBy::Campaign);
        q.options.identity_steps.insert("stage".into());
        let r = store.report(&q).await.expect("report");
        assert_eq!(row(&r, "reminders").right_party, 5);
        // Another success set: only `lead_credit_card`.
        let mut q = query(GroupBy::Campaign);
        q.options.success_outcomes = ["lead_credit_card".to_string()].into();
        let r = store.report(&q).await.expect("report");
        assert_eq!(row(&r, "reminders").conversions, 0);
        assert_eq!(row(&r, "winback").conversions, 1);
        // A range with nothing in it.
        let r = store
            .report(&ReportQuery {
                from: Some(utc(20, 0, 0)),
                ..ReportQuery::new("bank")
            })
            .await
            .expect("report");
        assert!(r.rows.is_empty());
        assert_eq!(r.total.attempts, 0);
        assert_eq!(r.agents.len(), 1);
    }

    pub async fn tenant_isolation(db: TestDb) {
        let store = open(&db).await;
        scenario(&store).await;
        let other = store
            .report(&ReportQuery {
                group_by: GroupBy::Campaign,
                ..ReportQuery::new("other")
            })
            .await
            .expect("report");
        assert_eq!(groups(&other), [("reminders".to_string(), 2)]);
        assert_eq!((other.total.connects, other.total.conversions), (2, 2));
        assert_close(other.total.mean_sentiment(), 1.0, "other's sentiment");
        let agents: Vec<(&str, u64, u64)> = other
            .agents
            .iter()
            .map(|a| (a.agent.as_str(), a.calls, a.handle_ms))
            .collect();
        assert_eq!(agents, [("robot", 2, 20_000), ("alice", 2, 1_000_000)]);
        // Bank's A7 keeps no outcome although `other` saved one for its id, and the inbound
        // call (no attempt) is in no report.
        let bank = store
            .report(&query(GroupBy::Campaign))
            .await
            .expect("report");
        assert_eq!(bank.total.attempts, 11);
        assert_eq!(bank.total.outcomes.get("resolved"), None);
        assert_eq!(bank.total.outcomes.get("(none)"), Some(&1));
        assert_eq!(bank.total.conversions, 3);
        let nobody = store
            .report(&ReportQuery::new("nobody"))
            .await
            .expect("report");
        assert_eq!(nobody.total.attempts, 0);
    }

    pub async fn csv_and_xlsx_exports(db: TestDb) {
        use calamine::{Data, Reader, Xlsx, open_workbook};

        let store = open(&db).await;
        scenario(&store).await;
        let r = store
            .report(&query(GroupBy::Campaign))
            .await
            .expect("report");

        let mut csv_out = Vec::new();
        r.to_csv(&mut csv_out).expect("csv");
        let mut reader = csv::Reader::from_reader(csv_out.as_slice());
        let headers = reader.headers().expect("headers").clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name} in {headers:?}"))
        };
        let records: Vec<csv::StringRecord> =
            reader.records().map(|r| r.expect("a record")).collect();
        assert_eq!(records.len(), 3, "two campaigns and the total");
        assert_eq!(&records[0][0], "reminders");
        assert_eq!(&records[2][0], "total");
        assert_eq!(&records[0][col("attempts")], "9");
        assert_eq!(&records[0][col("connect_rate")], "0.7778");
        assert_eq!(&records[0][col("mean_handle_s")], "83.6");
        assert_eq!(&records[0][col("outcome:payment_plan")], "1");
        assert_eq!(&records[1][col("outcome:payment_plan")], "0");
        assert_eq!(&records[1][col("attempts:in_progress")], "1");
        // winback has no transfers: mean agent talk is empty, not 0.
        assert_eq!(&records[1][col("mean_agent_talk_s")], "");

        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("report.xlsx");
        r.to_xlsx(&path).expect("xlsx");
        let mut book: Xlsx<_> = open_workbook(&path).expect("opening the XLSX file");
        assert_eq!(book.sheet_names(), ["Summary", "Funnel", "Agents"]);

        let summary = book.worksheet_range("Summary").expect("Summary sheet");
        let header: Vec<String> = summary
            .rows()
            .next()
            .expect("a header row")
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            &header[..4],
            ["campaign", "attempts", "connects", "connect_rate"]
        );
        let hcol = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
        };
        let cell = |row: usize, name: &str| summary.get((row, hcol(name))).cloned();
        assert_eq!(cell(1, "campaign"), Some(Data::String("reminders".into())));
        assert_eq!(cell(1, "attempts"), Some(Data::Float(9.0)));
        assert_eq!(cell(1, "connects"), Some(Data::Float(7.0)));
        let Some(Data::Float(rate)) = cell(1, "connect_rate") else {
            panic!(
                "connect_rate is not a number: {:?}",
                cell(1, "connect_rate")
            );
        };
        assert!((rate - 7.0 / 9.0).abs() < 1e-12, "{rate}");
        let Some(Data::Float(handle)) = cell(1, "mean_handle_s") else {
            panic!("mean_handle_s is not a number");
        };
        assert!((handle - 585.0 / 7.0).abs() < 1e-9, "{handle}");
        assert_eq!(cell(3, "campaign"), Some(Data::String("total".into())));
        assert_eq!(cell(3, "attempts"), Some(Data::Float(11.0)));
        assert_eq!(
            cell(2, "mean_agent_talk_s").unwrap_or(Data::Empty),
            Data::Empty,
            "no transfers in winback"
        );
        // Rates carry a percentage format, the header is bold.
        let styles = book.worksheet_style("Summary").expect("Summary styles");
        let format = |row: u32, col: usize| {
            styles
                .get((row, col as u32))
                .and_then(|s| s.number_format.as_ref())
                .map(|f| f.format_code.clone())
        };
        assert_eq!(format(1, hcol("connect_rate")).as_deref(), Some("0.0%"));
        assert_eq!(format(1, hcol("mean_handle_s")).as_deref(), Some("0.0"));
        assert!(
            styles
                .get((0, 0))
                .and_then(|s| s.font.as_ref())
                .is_some_and(|f| f.is_bold()),
            "bold header"
        );

        let funnel = book.worksheet_range("Funnel").expect("Funnel sheet");
        let first: Vec<String> = funnel
            .rows()
            .take(2)
            .flat_map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>())
            .collect();
        assert_eq!(
            first,
            [
                "flow",
                "position",
                "step",
                "reached",
                "reach_rate",
                "ended_here",
                "drop_off_rate",
                "collections",
                "1",
                "greet",
                "7",
                "1",
                "0",
                "0",
            ]
        );

        let agents = book.worksheet_range("Agents").expect("Agents sheet");
        assert_eq!(agents.get((1, 1)), Some(&Data::String("robot".into())));
        assert_eq!(agents.get((2, 1)), Some(&Data::String("alice".into())));
        assert_eq!(agents.get((2, 2)), Some(&Data::Float(1.0)));
        assert_eq!(agents.get((2, 3)), Some(&Data::Float(180.0)));
    }
}

macro_rules! suite {
    ($name:ident, $fresh:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn by_campaign_every_metric() {
                cases::by_campaign_every_metric($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn by_day_and_hour_across_midnight() {
                cases::by_day_and_hour_across_midnight($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn by_agent_side_and_agents_table() {
                cases::by_agent_side_and_agents_table($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn funnel() {
                cases::funnel($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn filters_and_options() {
                cases::filters_and_options($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tenant_isolation() {
                cases::tenant_isolation($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn csv_and_xlsx_exports() {
                cases::csv_and_xlsx_exports($fresh().await).await
            }
        }
    };
}

suite!(sqlite, fresh_sqlite);
suite!(postgres, fresh_postgres);
