//! The dialer's tables (`bot_runtime::dialer::db`), one suite run unchanged on SQLite and on
//! PostgreSQL (see `support/db.rs` for how the test databases are made).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use bot_runtime::dialer::db::{
    CampaignKind, CampaignStatus, DialStart, DncEntry, LeadUpdate, NewAttempt, NewCampaign,
    NewLead, Order,
};
use bot_runtime::dialer::pacing::AbandonLedger;
use bot_runtime::store::Store;
use chrono::{DateTime, TimeZone, Utc};

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

const FLOW: &str = "name: reminder\nversion: 1\n";

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0)
        .single()
        .expect("a valid time")
}

fn lead(phone: &str, row: u64) -> NewLead {
    let mut fields = serde_json::Map::new();
    fields.insert("balance".into(), serde_json::json!("120.50"));
    NewLead {
        external_id: Some(format!("ext-{row}")),
        phone: phone.to_string(),
        name: Some(format!("Customer {row}")),
        timezones: vec!["America/New_York".into()],
        tz_source: "number".into(),
        debt_id: Some(format!("debt-{}", row % 3)),
        fields,
        source_row: Some(row),
    }
}

fn phone(i: usize) -> String {
    format!("+1212555{i:04}")
}

async fn campaign(store: &Store, tenant: &str, id: &str) {
    store.ensure_tenant(tenant, tenant).await.expect("tenant");
    store
        .save_flow(tenant, "reminder", 1, FLOW)
        .await
        .expect("flow");
    store
        .create_campaign(
            tenant,
            &NewCampaign {
                id: id.into(),
                kind: CampaignKind::Robot,
                flow: "reminder".into(),
                flow_version: 1,
                caller_id: Some("+12125550000".into()),
                max_concurrent: 10,
                settings: serde_json::json!({}),
            },
        )
        .await
        .expect("campaign");
}

/// Imports `n` leads into `tenant` and assigns them all to `campaign`, due at t(0).
async fn leads(store: &Store, tenant: &str, campaign: &str, n: usize) -> Vec<String> {
    let new: Vec<NewLead> = (0..n).map(|i| lead(&phone(i), i as u64 + 2)).collect();
    let report = store
        .insert_leads(tenant, "test.csv", &new)
        .await
        .expect("insert");
    assert_eq!(report.inserted, n as u64);
    let all = store
        .list_leads(tenant, 1_000_000, 0)
        .await
        .expect("list leads");
    let ids: Vec<String> = all.iter().map(|l| l.id.clone()).collect();
    let added = store
        .assign_leads(tenant, campaign, &ids, Order::Sequential, t(0))
        .await
        .expect("assign");
    assert_eq!(added, n as u64);
    ids
}

fn attempt(campaign: &str, lead: &str, phone: &str, node: &str, at: DateTime<Utc>) -> NewAttempt {
    NewAttempt {
        id: uuid::Uuid::new_v4().to_string(),
        campaign: campaign.into(),
        lead: lead.into(),
        debt_id: None,
        phone: phone.into(),
        node: node.into(),
        started_at: at,
        rule: "ok".into(),
        detail: "inside the calling window".into(),
    }
}

fn dnc(list: &str, phone: &str, expires: Option<DateTime<Utc>>) -> DncEntry {
    DncEntry {
        tenant: list.into(),
        phone: phone.into(),
        reason: "customer asked".into(),
        source: "test".into(),
        added_by: "tester".into(),
        added_at: t(0),
        expires_at: expires,
    }
}

mod cases {
    use super::*;

    pub async fn campaigns_and_flows(db: TestDb) {
        let store = open(&db).await;
        campaign(&store, "bank-a", "reminders").await;
        let c = store
            .campaign("bank-a", "reminders")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(c.status, CampaignStatus::Draft);
        assert_eq!(c.kind, CampaignKind::Robot);
        assert_eq!(c.max_concurrent, 10);
        // Another tenant sees nothing.
        store.ensure_tenant("bank-b", "B").await.expect("tenant");
        assert!(
            store
                .campaign("bank-b", "reminders")
                .await
                .expect("read")
                .is_none()
        );
        assert!(
            store
                .list_campaigns("bank-b", None)
                .await
                .expect("list")
                .is_empty()
        );
        // A campaign on a flow that is not stored is refused, with the reason.
        let err = store
            .create_campaign(
                "bank-b",
                &NewCampaign {
                    id: "x".into(),
                    kind: CampaignKind::Robot,
                    flow: "reminder".into(),
                    flow_version: 1,
                    caller_id: None,
                    max_concurrent: 1,
                    settings: serde_json::json!({}),
                },
            )
            .await
            .expect_err("no such flow for bank-b");
        assert!(err.to_string().contains("not stored"), "{err}");
        // Flow versions are immutable.
        let err = store
            .save_flow(
                "bank-a",
                "reminder",
                1,
                "name: reminder\nversion: 1\n# changed\n",
            )
            .await
            .expect_err("changed text under the same version");
        assert!(err.to_string().contains("raise `version`"), "{err}");
        store
            .save_flow("bank-a", "reminder", 1, FLOW)
            .await
            .expect("same text again is fine");
        // Status moves.
        let prev = store
            .set_campaign_status("bank-a", "reminders", CampaignStatus::Running, "ops")
            .await
            .expect("start");
        assert_eq!(prev, CampaignStatus::Draft);
        store
            .set_campaign_status("bank-a", "reminders", CampaignStatus::Paused, "ops")
            .await
            .expect("pause");
        assert!(store.running_campaigns().await.expect("running").is_empty());
        store
            .set_campaign_status("bank-a", "reminders", CampaignStatus::Running, "ops")
            .await
            .expect("resume");
        assert_eq!(store.running_campaigns().await.expect("running").len(), 1);
        store
            .set_campaign_status("bank-a", "reminders", CampaignStatus::Stopped, "ops")
            .await
            .expect("stop");
        let err = store
            .set_campaign_status("bank-a", "reminders", CampaignStatus::Running, "ops")
            .await
            .expect_err("a stopped campaign stays stopped");
        assert!(err.to_string().contains("cannot become running"), "{err}");
    }

    pub async fn lead_import_dedupes_per_tenant(db: TestDb) {
        let store = open(&db).await;
        store.ensure_tenant("bank-a", "A").await.expect("tenant");
        store.ensure_tenant("bank-b", "B").await.expect("tenant");
        // 1200 leads (three batches), with a duplicate inside the batch and one across batches.
        let mut new: Vec<NewLead> = (0..1200).map(|i| lead(&phone(i), i as u64 + 2)).collect();
        new.push(lead(&phone(7), 9999));
        new.insert(10, lead(&phone(1100), 12));
        let report = store
            .insert_leads("bank-a", "a.csv", &new)
            .await
            .expect("insert");
        assert_eq!(report.inserted, 1200);
        let dup_rows: HashSet<Option<u64>> = report.duplicates.iter().map(|d| d.0).collect();
        assert_eq!(report.duplicates.len(), 2, "{:?}", report.duplicates);
        assert!(dup_rows.contains(&Some(9999)));
        // Importing again adds nothing and reports everything.
        let again = store
            .insert_leads("bank-a", "a.csv", &new[..50])
            .await
            .expect("insert");
        assert_eq!(again.inserted, 0);
        assert_eq!(again.duplicates.len(), 50);
        // The same number in another tenant is another lead.
        let other = store
            .insert_leads("bank-b", "b.csv", &new[..5])
            .await
            .expect("insert");
        assert_eq!(other.inserted, 5);
        let a = store
            .lead_by_phone("bank-a", &phone(3))
            .await
            .expect("read")
            .expect("lead");
        let b = store
            .lead_by_phone("bank-b", &phone(3))
            .await
            .expect("read")
            .expect("lead");
        assert_ne!(a.id, b.id);
        assert_eq!(a.fields.get("balance"), Some(&serde_json::json!("120.50")));
        assert_eq!(a.timezones, vec!["America/New_York".to_string()]);
        // Tenant B cannot read tenant A's lead by id.
        assert!(store.lead("bank-b", &a.id).await.expect("read").is_none());
        assert_eq!(
            store
                .list_leads("bank-b", 100, 0)
                .await
                .expect("list")
                .len(),
            5
        );
    }

    pub async fn concurrent_claims_are_disjoint(db: TestDb) {
        let store = open(&db).await;
        campaign(&store, "default", "c1").await;
        leads(&store, "default", "c1", 300).await;
        // Four nodes, each with its own pool, claiming 7 at a time until nothing is due.
        let mut tasks = Vec::new();
        for n in 0..4 {
            let node_store = Store::open(&db.url).await.expect("open");
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = node_store
                        .claim_leads(
                            "default",
                            "c1",
                            &format!("node-{n}"),
                            Order::Sequential,
                            t(10),
                            t(70),
                            7,
                        )
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        break;
                    }
                    mine.extend(got.into_iter().map(|c| c.lead.id));
                }
                mine
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("claimer"));
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 300, "every lead claimed once");
        assert_eq!(unique.len(), 300, "no lead claimed twice");
        // Leases block others until they run out; then the leads are anyone's.
        let none = store
            .claim_leads(
                "default",
                "c1",
                "node-9",
                Order::Sequential,
                t(69),
                t(130),
                500,
            )
            .await
            .expect("claim");
        assert!(none.is_empty());
        let later = store
            .claim_leads(
                "default",
                "c1",
                "node-9",
                Order::Sequential,
                t(70),
                t(130),
                500,
            )
            .await
            .expect("claim");
        assert_eq!(later.len(), 300);
        // Sequential order: the file's order.
        let rows: Vec<u64> = later.iter().filter_map(|c| c.lead.source_row).collect();
        let mut sorted = rows.clone();
        sorted.sort_unstable();
        assert_eq!(rows, sorted);
    }

    pub async fn dial_checks_lease_and_dnc(db: TestDb) {
        let store = open(&db).await;
        campaign(&store, "default", "c1").await;
        leads(&store, "default", "c1", 4).await;
        let claimed = store
            .claim_leads("default", "c1", "n1", Order::Sequential, t(0), t(60), 4)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 4);
        // Lead 0: tenant list; lead 1: global list; lead 2: expired entry; lead 3: clean.
        store
            .add_dnc(&[
                dnc("default", &phone(0), None),
                dnc("*", &phone(1), None),
                dnc("default", &phone(2), Some(t(5))),
                dnc("other-bank", &phone(3), None),
            ])
            .await
            .expect("dnc");
        let lead_of = |p: &str| {
            claimed
                .iter()
                .find(|c| c.lead.phone == p)
                .expect("claimed")
                .lead
                .id
                .clone()
        };
        for (i, blocked_by) in [(0, Some("default")), (1, Some("*")), (2, None), (3, None)] {
            let a = attempt("c1", &lead_of(&phone(i)), &phone(i), "n1", t(10));
            match store.begin_dial("default", &a).await.expect("begin") {
                DialStart::Blocked(e) => {
                    assert_eq!(Some(e.tenant.as_str()), blocked_by, "lead {i}")
                }
                DialStart::Dial(tx) => {
                    assert_eq!(blocked_by, None, "lead {i} must be blocked");
                    tx.commit().await.expect("commit");
                }
                DialStart::LeaseLost => panic!("lease lost for lead {i}"),
            }
        }
        // Blocked dials wrote nothing; the two dials wrote an attempt and a decision each.
        let attempts = store
            .campaign_attempts("default", "c1")
            .await
            .expect("attempts");
        assert_eq!(attempts.len(), 2);
        assert!(attempts.iter().all(|a| a.disposition.is_none()));
        let why = store
            .decisions_for_phone("default", &phone(3), None)
            .await
            .expect("decisions");
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].verdict, "dialed");
        let dialed = attempts
            .iter()
            .find(|a| a.phone == phone(3))
            .expect("an attempt to lead 3");
        assert_eq!(why[0].attempt.as_deref(), Some(dialed.id.as_str()));
        // A lease that ran out, or another node's lease, is refused.
        let a = attempt("c1", &lead_of(&phone(3)), &phone(3), "n1", t(61));
        assert!(matches!(
            store.begin_dial("default", &a).await.expect("begin"),
            DialStart::LeaseLost
        ));
        let a = attempt("c1", &lead_of(&phone(3)), &phone(3), "n2", t(30));
        assert!(matches!(
            store.begin_dial("default", &a).await.expect("begin"),
            DialStart::LeaseLost
        ));
        // DNC housekeeping: the expired entry is swept, the others stay.
        let swept = store.sweep_dnc(t(6)).await.expect("sweep");
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].phone, phone(2));
        assert_eq!(store.list_dnc("default").await.expect("list").len(), 1);
        assert!(
            store
                .remove_dnc("default", &phone(0))
                .await
                .expect("remove")
        );
        assert!(
            store
                .dnc_check("default", &phone(0), t(7))
                .await
                .expect("check")
                .is_none()
        );
        assert!(
            store
                .dnc_check("default", &phone(1), t(7))
                .await
                .expect("check")
                .is_some()
        );
    }

    /// An opt-out committed while a dial's transaction is open waits until the dial commits
    /// (the INVITE is out by then); one committed before the dial's check blocks the dial.
    pub async fn opt_out_orders_against_dial(db: TestDb) {
        let store = Arc::new(open(&db).await);
        campaign(&store, "default", "c1").await;
        leads(&store, "default", "c1", 2).await;
        let claimed = store
            .claim_leads("default", "c1", "n1", Order::Sequential, t(0), t(600), 2)
            .await
            .expect("claim");
        let first = claimed[0].lead.clone();
        let a = attempt("c1", &first.id, &first.phone, "n1", t(1));
        let DialStart::Dial(tx) = store.begin_dial("default", &a).await.expect("begin") else {
            panic!("the first dial goes ahead");
        };
        let s2 = store.clone();
        let number = first.phone.clone();
        let opt_out = tokio::spawn(async move {
            s2.add_dnc(&[dnc("default", &number, None)])
                .await
                .expect("dnc");
            Instant::now()
        });
        tokio::time::sleep(StdDuration::from_millis(400)).await;
        assert!(
            !opt_out.is_finished(),
            "the opt-out waits for the open dial"
        );
        let committed = Instant::now();
        tx.commit().await.expect("commit");
        let opted_out = opt_out.await.expect("opt-out task");
        assert!(
            opted_out >= committed,
            "the opt-out committed after the dial"
        );
        // Any later dial of that number is blocked.
        let second = attempt("c1", &first.id, &first.phone, "n1", t(2));
        assert!(matches!(
            store.begin_dial("default", &second).await.expect("begin"),
            DialStart::Blocked(_)
        ));
    }

    pub async fn finish_recover_and_interrupt(db: TestDb) {
        let store = open(&db).await;
        campaign(&store, "default", "c1").await;
        leads(&store, "default", "c1", 3).await;
        let claimed = store
            .claim_leads("default", "c1", "n1", Order::Sequential, t(0), t(60), 3)
            .await
            .expect("claim");
        let mut attempt_ids = Vec::new();
        for c in &claimed {
            let a = attempt("c1", &c.lead.id, &c.lead.phone, "n1", t(1));
            attempt_ids.push(a.id.clone());
            let DialStart::Dial(tx) = store.begin_dial("default", &a).await.expect("begin") else {
                panic!("dial");
            };
            tx.commit().await.expect("commit");
        }
        // Lead 0 finishes: busy, retry in 10 minutes.
        let held = store
            .finish_attempt(
                "default",
                "c1",
                &claimed[0].lead.id,
                &attempt_ids[0],
                "n1",
                "busy",
                t(20),
                Some("call-1"),
                &LeadUpdate {
                    done: false,
                    next_at: t(620),
                    reason: "retry_delay: busy, again in 10 min".into(),
                    callback_at: None,
                },
            )
            .await
            .expect("finish");
        assert!(held);
        // The node dies; a new process with the same node id recovers: leases released, the two
        // open attempts closed as interrupted.
        let (released, closed) = store.recover_node("n1", t(30)).await.expect("recover");
        assert_eq!((released, closed), (2, 2));
        let again = store
            .claim_leads("default", "c1", "n2", Order::Sequential, t(31), t(90), 10)
            .await
            .expect("claim");
        assert_eq!(again.len(), 2, "the busy lead is not due yet");
        assert!(again.iter().all(|c| c.attempts == 1));
        // The old node comes back and tries to finish an interrupted attempt: the attempt stays
        // interrupted, and the lead (now n2's) is untouched.
        let held = store
            .finish_attempt(
                "default",
                "c1",
                &claimed[1].lead.id,
                &attempt_ids[1],
                "n1",
                "completed",
                t(40),
                None,
                &LeadUpdate {
                    done: true,
                    next_at: t(40),
                    reason: "final".into(),
                    callback_at: None,
                },
            )
            .await
            .expect("finish");
        assert!(!held);
        let history = store
            .lead_attempts("default", "c1", &claimed[1].lead.id)
            .await
            .expect("attempts");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].disposition.as_deref(), Some("interrupted"));
        let stats = store
            .campaign_stats("default", "c1", t(41))
            .await
            .expect("stats");
        assert_eq!(stats.leads, 3);
        assert_eq!(stats.attempts, 3);
        assert_eq!(stats.in_progress, 0);
        assert_eq!(stats.leased, 2);
        let load = store
            .campaign_load("default", "c1", t(41))
            .await
            .expect("load");
        assert_eq!(
            (load.has_leads, load.has_ready, load.leased),
            (true, true, 2)
        );
        // close_interrupted: an attempt left open under an expired lease is closed by the taker.
        let c = &again[0];
        let a = attempt("c1", &c.lead.id, &c.lead.phone, "n2", t(50));
        let DialStart::Dial(tx) = store.begin_dial("default", &a).await.expect("begin") else {
            panic!("dial");
        };
        tx.commit().await.expect("commit");
        let taken = store
            .claim_leads("default", "c1", "n3", Order::Sequential, t(91), t(150), 10)
            .await
            .expect("claim");
        assert_eq!(taken.len(), 2);
        let closed = store
            .close_interrupted("default", "c1", &c.lead.id, t(91))
            .await
            .expect("close");
        assert_eq!(closed, 1);
    }

    /// The abandon ledger: per-day rows added to by several writers at once, the 30-day window
    /// (today and the 29 days before, UTC), tenant and campaign scoping, and the campaign stats.
    pub async fn abandon_ledger_window(db: TestDb) {
        let store = Arc::new(open(&db).await);
        campaign(&store, "default", "c1").await;
        campaign(&store, "default", "c2").await;
        campaign(&store, "other", "c1").await;
        let now = t(0);
        let day = chrono::Duration::days(1);
        let one = |answered: u64, abandoned: u64| AbandonLedger {
            live_answered: answered,
            abandoned,
        };
        // 20 concurrent writers on today's row: no lost update.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.record_abandons("default", "c1", now, one(5, 1))
                    .await
                    .expect("record")
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
        // Earlier days: 29 days ago is in the window, 30 days ago is not; nothing counts twice.
        store
            .record_abandons("default", "c1", now - day * 29, one(10, 2))
            .await
            .expect("record");
        store
            .record_abandons("default", "c1", now - day * 30, one(1000, 900))
            .await
            .expect("record");
        // A zero delta writes nothing; other campaigns and tenants are apart.
        store
            .record_abandons("default", "c1", now, AbandonLedger::default())
            .await
            .expect("record");
        store
            .record_abandons("default", "c2", now, one(7, 7))
            .await
            .expect("record");
        store
            .record_abandons("other", "c1", now, one(3, 3))
            .await
            .expect("record");
        let window = store
            .abandon_window("default", "c1", now)
            .await
            .expect("window");
        assert_eq!(window, one(110, 22));
        assert!((window.rate() - 0.2).abs() < 1e-12);
        // A day later the oldest day has left the window; a future row is not counted.
        store
            .record_abandons("default", "c1", now + day * 5, one(1, 1))
            .await
            .expect("record");
        assert_eq!(
            store
                .abandon_window("default", "c1", now + day)
                .await
                .expect("window"),
            one(100, 20)
        );
        assert_eq!(
            store
                .abandon_window("other", "c1", now)
                .await
                .expect("window"),
            one(3, 3)
        );
        assert_eq!(
            store
                .abandon_window("default", "none", now)
                .await
                .expect("window"),
            AbandonLedger::default()
        );
        let stats = store
            .campaign_stats("default", "c1", now)
            .await
            .expect("stats");
        assert_eq!(stats.abandons_30d, one(110, 22));
        assert!((stats.abandon_rate_30d - 0.2).abs() < 1e-12);
    }
}

macro_rules! suite {
    ($backend:ident, $fresh:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn campaigns_and_flows() {
                cases::campaigns_and_flows($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn lead_import_dedupes_per_tenant() {
                cases::lead_import_dedupes_per_tenant($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claims_are_disjoint() {
                cases::concurrent_claims_are_disjoint($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dial_checks_lease_and_dnc() {
                cases::dial_checks_lease_and_dnc($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn opt_out_orders_against_dial() {
                cases::opt_out_orders_against_dial($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn finish_recover_and_interrupt() {
                cases::finish_recover_and_interrupt($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn abandon_ledger_window() {
                cases::abandon_ledger_window($fresh().await).await
            }
        }
    };
}

suite!(sqlite, fresh_sqlite);
suite!(postgres, fresh_postgres);
