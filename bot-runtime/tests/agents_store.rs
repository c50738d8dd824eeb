//! Agents' tables (`bot_runtime::agents::store`): accounts, queues and dispositions, one suite
//! run unchanged on SQLite and on PostgreSQL (see `support/db.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use bot_runtime::agents::queue::{Overflow, QueueConfig};
use bot_runtime::agents::store::{AgentAccount, AgentDisposition};
use bot_runtime::dialer::db::{CampaignKind, NewCampaign, NewLead, Order};
use bot_runtime::record::{CallLeg, CallRecord, Direction};
use bot_runtime::store::StoreError;
use chrono::{TimeZone, Utc};

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

fn account(id: &str, sip: Option<&str>) -> AgentAccount {
    AgentAccount {
        id: id.into(),
        name: format!("Agent {id}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        skills: BTreeMap::from([("collections".to_string(), 3), ("spanish".to_string(), 7)]),
        role: "agent".into(),
        sip_user: sip.map(str::to_string),
        sip_password: sip.map(|_| "s3cret".to_string()),
        disabled: false,
    }
}

fn queue(name: &str, overflow: Option<&str>) -> QueueConfig {
    QueueConfig {
        name: name.into(),
        required_skills: BTreeMap::from([("collections".to_string(), 2)]),
        priority: 2,
        offer_timeout: Duration::from_secs(15),
        max_wait: Duration::from_secs(120),
        overflow: overflow.map(|to| Overflow {
            after: Duration::from_secs(30),
            to: to.into(),
        }),
        wrap_up: Some(Duration::from_secs(20)),
    }
}

fn refused(r: Result<(), StoreError>) -> String {
    match r {
        Err(StoreError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn accounts_queues_and_dispositions(db: TestDb) {
    let store = open(&db).await;
    for t in ["bank-a", "bank-b"] {
        store.ensure_tenant(t, t).await.expect("tenant");
    }
    // Accounts round-trip, per tenant; saving again replaces.
    let a7 = account("a7", Some("agent7"));
    store.save_agent("bank-a", &a7).await.expect("save");
    store
        .save_agent("bank-a", &account("a8", None))
        .await
        .expect("save");
    assert_eq!(
        store.agent("bank-a", "a7").await.expect("read"),
        Some(a7.clone())
    );
    assert_eq!(store.agent("bank-b", "a7").await.expect("read"), None);
    let mut renamed = a7.clone();
    renamed.name = "Alex".into();
    store.save_agent("bank-a", &renamed).await.expect("resave");
    let all = store.agents("bank-a").await.expect("list");
    assert_eq!(
        all.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["Alex", "Agent a8"]
    );
    // The registrar's view: SIP users across tenants, one owner each.
    let (tenant, owner) = store
        .agent_by_sip_user("agent7")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((tenant.as_str(), owner.id.as_str()), ("bank-a", "a7"));
    assert!(
        refused(
            store
                .save_agent("bank-b", &account("b1", Some("agent7")))
                .await
        )
        .contains("another agent")
    );
    let accounts = store.sip_accounts().await.expect("accounts");
    assert_eq!(accounts.get("agent7").map(String::as_str), Some("s3cret"));
    assert_eq!(accounts.len(), 1);
    // Bad accounts are refused, nothing written.
    let mut bad = account("a9", None);
    bad.skills.insert("fraud".into(), 11);
    assert!(refused(store.save_agent("bank-a", &bad).await).contains("levels are 1 to 10"));
    let mut bad = account("a9", None);
    bad.role = "boss".into();
    assert!(refused(store.save_agent("bank-a", &bad).await).contains("unknown role"));
    let mut bad = account("a9", Some("agent9"));
    bad.sip_password = None;
    assert!(refused(store.save_agent("bank-a", &bad).await).contains("password"));
    assert_eq!(store.agent("bank-a", "a9").await.expect("read"), None);

    // Queues: validated together (an overflow must name a queue of the tenant).
    assert!(
        refused(
            store
                .save_queue("bank-a", &queue("collections", Some("disputes")))
                .await
        )
        .contains("disputes")
    );
    store
        .save_queue("bank-a", &queue("disputes", None))
        .await
        .expect("save");
    let collections = queue("collections", Some("disputes"));
    store
        .save_queue("bank-a", &collections)
        .await
        .expect("save");
    let queues = store.queues("bank-a").await.expect("queues");
    assert_eq!(queues.len(), 2);
    assert_eq!(queues[0], collections);
    assert!(store.queues("bank-b").await.expect("queues").is_empty());

    // Dispositions: saved, replaced, refused when incomplete.
    let d = AgentDisposition {
        call_id: "call-1".into(),
        agent_id: "a7".into(),
        disposition: "callback".into(),
        notes: "Call back after payday — «ok» 👍".into(),
        callback_at: Utc.timestamp_opt(1_790_000_000, 123_000).single(),
        saved_at: Utc
            .timestamp_opt(1_789_000_000, 456_000)
            .single()
            .expect("t"),
    };
    store.save_disposition("bank-a", &d).await.expect("save");
    assert_eq!(
        store.dispositions("bank-a", "call-1").await.expect("read"),
        std::slice::from_ref(&d)
    );
    assert!(
        store
            .dispositions("bank-b", "call-1")
            .await
            .expect("read")
            .is_empty()
    );
    let resolved = AgentDisposition {
        disposition: "resolved".into(),
        callback_at: None,
        ..d.clone()
    };
    store
        .save_disposition("bank-a", &resolved)
        .await
        .expect("replace");
    assert_eq!(
        store.dispositions("bank-a", "call-1").await.expect("read"),
        [resolved]
    );
    let unknown = AgentDisposition {
        disposition: "happy".into(),
        ..d.clone()
    };
    assert!(refused(store.save_disposition("bank-a", &unknown).await).contains("unknown"));
    let no_time = AgentDisposition {
        callback_at: None,
        ..d
    };
    assert!(refused(store.save_disposition("bank-a", &no_time).await).contains("time"));
}

/// An agent's figures for the console's "My day", and an agent's callback rescheduling a
/// campaign's lead.
async fn day_stats_and_callbacks(db: TestDb) {
    let store = open(&db).await;
    store.ensure_tenant("bank-a", "A").await.expect("tenant");
    let t0 = Utc
        .with_ymd_and_hms(2026, 6, 2, 9, 0, 0)
        .single()
        .expect("time");
    let secs = |s: i64| t0 + chrono::Duration::seconds(s);
    // Two calls the agent took (30 s and 90 s of talk, waits 1 s and 3 s), one of another
    // agent's.
    for (i, (agent, start, talk, wait)) in [
        ("a7", 0, 30, 1_000),
        ("a7", 600, 90, 3_000),
        ("a8", 0, 50, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut call = CallRecord::new(Direction::Outbound, "+12125550100", secs(start));
        call.id = format!("call-{i}");
        call.ended_at = secs(start + 20 + talk);
        call.disposition = "transferred".into();
        call.legs = vec![
            CallLeg {
                kind: "robot".into(),
                agent_id: None,
                queue: None,
                wait_ms: None,
                started_at: secs(start),
                ended_at: secs(start + 20),
            },
            CallLeg {
                kind: "agent".into(),
                agent_id: Some(agent.into()),
                queue: Some("collections".into()),
                wait_ms: Some(wait),
                started_at: secs(start + 20),
                ended_at: secs(start + 20 + talk),
            },
        ];
        store.save_call(&call).await.expect("save call");
        store
            .save_disposition(
                "bank-a",
                &AgentDisposition {
                    call_id: call.id.clone(),
                    agent_id: agent.into(),
                    disposition: if i == 1 { "resolved" } else { "promise_to_pay" }.into(),
                    notes: String::new(),
                    callback_at: None,
                    saved_at: call.ended_at,
                },
            )
            .await
            .expect("disposition");
    }
    let day = store
        .agent_stats("bank-a", "a7", secs(-60))
        .await
        .expect("stats");
    assert_eq!(day.calls, 2);
    assert_eq!(day.talk_ms, 120_000);
    assert_eq!(day.mean_talk_ms, 60_000);
    assert_eq!(day.mean_wait_ms, 2_000);
    assert_eq!(
        day.dispositions,
        BTreeMap::from([
            ("promise_to_pay".to_string(), 1),
            ("resolved".to_string(), 1)
        ])
    );
    let later = store
        .agent_stats("bank-a", "a7", secs(300))
        .await
        .expect("stats");
    assert_eq!(
        (later.calls, later.talk_ms),
        (1, 90_000),
        "only calls since then"
    );
    let other_tenant = store
        .agent_stats("bank-b", "a7", secs(-60))
        .await
        .expect("stats");
    assert!(other_tenant.dispositions.is_empty());

    // A callback reopens a finished lead for its time; a leased lead waits; no such lead is
    // refused.
    store
        .save_flow("bank-a", "reminder", 1, "name: reminder\nversion: 1\n")
        .await
        .expect("flow");
    store
        .create_campaign(
            "bank-a",
            &NewCampaign {
                id: "c1".into(),
                kind: CampaignKind::Robot,
                flow: "reminder".into(),
                flow_version: 1,
                caller_id: None,
                max_concurrent: 1,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
    let report = store
        .insert_leads(
            "bank-a",
            "test.csv",
            &[NewLead {
                external_id: None,
                phone: "+12125550100".into(),
                name: None,
                timezones: vec!["America/New_York".into()],
                tz_source: "number".into(),
                debt_id: None,
                fields: serde_json::Map::new(),
                source_row: Some(2),
            }],
        )
        .await
        .expect("lead");
    assert_eq!(report.inserted, 1);
    let lead = store.list_leads("bank-a", 10, 0).await.expect("leads")[0]
        .id
        .clone();
    store
        .assign_leads(
            "bank-a",
            "c1",
            std::slice::from_ref(&lead),
            Order::Sequential,
            t0,
        )
        .await
        .expect("assign");
    let claimed = store
        .claim_leads(
            "bank-a",
            "c1",
            "node-1",
            Order::Sequential,
            secs(1),
            secs(31),
            1,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let at = secs(86_400);
    assert!(
        !store
            .schedule_callback("bank-a", "c1", &lead, at)
            .await
            .expect("leased"),
        "a leased lead is not touched"
    );
    store
        .recover_node("node-1", secs(2))
        .await
        .expect("release the lease");
    assert!(
        store
            .schedule_callback("bank-a", "c1", &lead, at)
            .await
            .expect("scheduled")
    );
    let early = store
        .claim_leads(
            "bank-a",
            "c1",
            "node-2",
            Order::Sequential,
            secs(100),
            secs(130),
            1,
        )
        .await
        .expect("claim before the callback");
    assert!(early.is_empty(), "the lead waits for its callback");
    let state = store
        .claim_leads(
            "bank-a",
            "c1",
            "node-2",
            Order::Sequential,
            at,
            at + chrono::Duration::seconds(30),
            1,
        )
        .await
        .expect("claim at the callback");
    assert_eq!(state.len(), 1, "due at the callback time");
    assert_eq!(state[0].callback_at, Some(at));
    let err = store
        .schedule_callback("bank-a", "c1", "no-such-lead", at)
        .await;
    assert!(matches!(err, Err(StoreError::Refused { .. })), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    accounts_queues_and_dispositions(fresh_sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    accounts_queues_and_dispositions(fresh_postgres().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_stats_and_callbacks_sqlite() {
    day_stats_and_callbacks(fresh_sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn day_stats_and_callbacks_postgres() {
    day_stats_and_callbacks(fresh_postgres().await).await
}
