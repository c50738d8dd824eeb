//! The call store's test suite, run unchanged against both backends:
//!
//! - `sqlite::*`: a SQLite file in a fresh temporary directory per test;
//! - `postgres::*`: a fresh PostgreSQL database per test (`callbot_test_<uuid>`), created on the
//!   server named by `$CALLBOT_TEST_POSTGRES_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`) and dropped when the test ends, pass or fail.
//!   If that server cannot be reached these tests FAIL, saying so: they are never skipped.

use std::collections::{BTreeMap, BTreeSet};

use bot_runtime::store::{Backend, CallFilter, CallSummary, Store, StoreError};
use bot_runtime::{
    CallLeg, CallRecord, Direction, RecordingRef, Speaker, StageLatency, TurnRecord,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::Connection;

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

fn at(secs: i64, micros: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, micros * 1000)
        .single()
        .expect("a valid time")
}

/// A call with every field filled in: turns both ways, latencies, a recording.
fn full_call() -> CallRecord {
    let started = at(1_767_225_600, 123_456); // 2026-01-01T00:00:00.123456Z
    let mut call = CallRecord::new(Direction::Outbound, "+15551230001", started);
    call.campaign = Some("card-activation-q1".into());
    call.lead_id = Some("lead-42".into());
    call.flow = "card_activation".into();
    call.flow_version = 3;
    call.sip_call_id = Some("a84b4c76e66710@pc33.callbot.local".into());
    call.answered_at = Some(started + Duration::microseconds(4_500_001));
    call.ended_at = started + Duration::microseconds(61_250_999);
    call.disposition = "answered".into();
    call.outcome = Some("activated".into());
    call.amd = Some("human".into());
    call.ended_by = Some("agent".into());
    call.legs = vec![
        CallLeg {
            kind: "robot".into(),
            agent_id: None,
            queue: None,
            wait_ms: None,
            started_at: started + Duration::microseconds(4_500_001),
            ended_at: started + Duration::microseconds(30_000_002),
        },
        CallLeg {
            kind: "agent".into(),
            agent_id: Some("agent-7".into()),
            queue: Some("disputes".into()),
            wait_ms: Some(2_250),
            started_at: started + Duration::microseconds(30_000_002),
            ended_at: started + Duration::microseconds(61_250_999),
        },
    ];
    call.path = vec![
        "greet".into(),
        "verify".into(),
        "verify/no".into(),
        "activate".into(),
    ];
    call.slots = serde_json::json!({
        "dob": "1980-02-29",
        "amount": {"value": 1250.75, "currency": "USD"},
        "last4": "0042",
        "confirmed": true,
        "tries": [1, 2, null],
    });
    call.turns = vec![
        TurnRecord {
            seq: 0,
            speaker: Speaker::Bot,
            text: "Hello, this is Example Bank calling about your new card.".into(),
            start_ms: 120,
            end_ms: 3_400,
            step: Some("greet".into()),
            intent: None,
            confidence: None,
            sentiment: None,
            interrupted: true,
            latency: None,
        },
        TurnRecord {
            seq: 1,
            speaker: Speaker::Customer,
            text: "yes that's me".into(),
            start_ms: 3_100,
            end_ms: 4_050,
            step: Some("greet".into()),
            intent: Some("affirm".into()),
            confidence: Some(0.934_215_5),
            sentiment: Some(-0.125),
            interrupted: false,
            latency: Some(StageLatency {
                endpoint_ms: 310,
                asr_ms: 182,
                nlu_ms: 9,
                flow_ms: 1,
                tts_ms: 64,
                total_ms: 402,
            }),
        },
        TurnRecord {
            seq: 2,
            speaker: Speaker::Bot,
            text: "Thanks. Your card is now active.".into(),
            start_ms: 4_452,
            end_ms: 6_900,
            step: Some("activate".into()),
            intent: None,
            confidence: None,
            sentiment: None,
            interrupted: false,
            latency: None,
        },
    ];
    call.recording = Some(RecordingRef {
        path: "recordings/2026/01/01/call.wav".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        duration_ms: 56_750,
        bytes: 1_816_044,
    });
    call
}

async fn must_get(store: &Store, id: &str) -> CallRecord {
    store
        .call(id)
        .await
        .unwrap_or_else(|e| panic!("reading {id}: {e}"))
        .unwrap_or_else(|| panic!("call {id} not found"))
}

async fn list(store: &Store, filter: &CallFilter) -> Vec<CallSummary> {
    store
        .list_calls(filter)
        .await
        .unwrap_or_else(|e| panic!("listing {filter:?}: {e}"))
}

/// The rows of `_sqlx_migrations`, read outside the store: (version, description, checksum,
/// installed_on as text).
async fn applied_migrations(url: &str) -> Vec<(i64, String, Vec<u8>, String)> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    let rows: Vec<(i64, String, Vec<u8>, String)> = sqlx::query_as(
        "SELECT version, description, checksum, CAST(installed_on AS TEXT) \
         FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .expect("reading _sqlx_migrations");
    conn.close().await.expect("closing");
    rows
}

mod cases {
    use super::*;

    /// Which calls a filter should return, decided in memory.
    type Keep = Box<dyn Fn(&CallRecord) -> bool>;

    pub async fn round_trip(db: TestDb) {
        let store = open(&db).await;
        let call = full_call();
        store.save_call(&call).await.expect("saving");
        assert_eq!(must_get(&store, &call.id).await, call);

        // The bare minimum: no optional field, no turns, no recording, before 1970.
        let mut bare = CallRecord::new(Direction::Inbound, "", at(-86_400 * 365, 999_999));
        bare.disposition = "busy".into();
        store.save_call(&bare).await.expect("saving the bare call");
        assert_eq!(must_get(&store, &bare.id).await, bare);

        assert_eq!(store.call("no-such-call").await.expect("reading"), None);

        let listed = list(&store, &CallFilter::default()).await;
        assert_eq!(
            listed,
            vec![
                CallSummary {
                    id: call.id.clone(),
                    direction: Direction::Outbound,
                    campaign: Some("card-activation-q1".into()),
                    phone: "+15551230001".into(),
                    flow: "card_activation".into(),
                    started_at: call.started_at,
                    duration_ms: 61_250,
                    disposition: "answered".into(),
                    outcome: Some("activated".into()),
                    amd: Some("human".into()),
                    turns: 3,
                },
                CallSummary {
                    id: bare.id.clone(),
                    direction: Direction::Inbound,
                    campaign: None,
                    phone: String::new(),
                    flow: String::new(),
                    started_at: bare.started_at,
                    duration_ms: 0,
                    disposition: "busy".into(),
                    outcome: None,
                    amd: None,
                    turns: 0,
                },
            ]
        );
        store.close().await;
    }

    pub async fn non_finite_scores_and_bad_records(db: TestDb) {
        let store = open(&db).await;
        let mut call = full_call();
        call.turns[1].confidence = Some(f64::NAN);
        call.turns[1].sentiment = Some(f64::INFINITY);
        store.save_call(&call).await.expect("saving");
        let back = must_get(&store, &call.id).await;
        assert_eq!(back.turns[1].confidence, None);
        assert_eq!(back.turns[1].sentiment, None);

        // Refused before anything is written, on both backends alike.
        let mut nul = full_call();
        nul.turns[2].text = "card\0active".into();
        let mut huge = full_call();
        if let Some(rec) = huge.recording.as_mut() {
            rec.bytes = u64::MAX;
        }
        let mut dup = full_call();
        dup.turns[2].seq = 1;
        let mut empty = full_call();
        empty.id = String::new();
        for (bad, needle) in [
            (&nul, "turns[seq 2].text contains a NUL"),
            (&huge, "recording.bytes 18446744073709551615 is too large"),
            (&dup, "two turns have seq 1"),
            (&empty, "the id is empty"),
        ] {
            match store.save_call(bad).await {
                Err(e @ StoreError::InvalidRecord { .. }) => {
                    assert!(e.to_string().contains(needle), "{e}")
                }
                other => panic!("expected InvalidRecord ({needle}), got {other:?}"),
            }
            if !bad.id.is_empty() {
                assert_eq!(store.call(&bad.id).await.expect("reading"), None);
            }
        }
        assert_eq!(list(&store, &CallFilter::default()).await.len(), 1);
        store.close().await;
    }

    pub async fn replace_on_same_id(db: TestDb) {
        let store = open(&db).await;
        let first = full_call();
        store.save_call(&first).await.expect("first save");
        store.save_call(&first).await.expect("same record again");
        assert_eq!(must_get(&store, &first.id).await, first);

        let mut second = first.clone();
        second.outcome = Some("callback".into());
        second.campaign = None;
        second.recording = None;
        second.turns.truncate(1);
        second.turns[0].text = "Replaced.".into();
        second.path = vec!["greet".into()];
        second.slots = serde_json::json!({});
        store.save_call(&second).await.expect("replacing");
        assert_eq!(must_get(&store, &second.id).await, second);

        let listed = list(&store, &CallFilter::default()).await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].turns, 1);
        assert_eq!(listed[0].outcome.as_deref(), Some("callback"));

        // And back to more turns than before.
        let mut third = first.clone();
        third.turns.push(TurnRecord {
            seq: 3,
            text: "Goodbye.".into(),
            ..first.turns[2].clone()
        });
        store.save_call(&third).await.expect("replacing again");
        assert_eq!(must_get(&store, &third.id).await, third);
        assert_eq!(list(&store, &CallFilter::default()).await[0].turns, 4);
        store.close().await;
    }

    /// 40 calls across campaigns, phones, outcomes, dispositions and directions; some share a
    /// start time. Every filter is checked against the same selection done in memory.
    pub async fn filters_ordering_paging(db: TestDb) {
        let store = open(&db).await;
        let base = at(1_767_225_600, 0);
        let mut calls = Vec::new();
        for i in 0..40i64 {
            // i / 2: pairs of calls start at the same microsecond (ties broken by id).
            let started =
                base + Duration::seconds(37 * ((i * 7) % 20)) + Duration::microseconds(i / 2);
            let direction = if i % 5 == 0 {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            let mut call = CallRecord::new(direction, &format!("+1555000{:04}", i % 6), started);
            call.campaign = match i % 3 {
                0 => None,
                1 => Some("collections".into()),
                _ => Some("card-activation".into()),
            };
            call.lead_id = Some(format!("lead-{}", i % 4));
            call.flow = if i % 2 == 0 { "a".into() } else { "b".into() };
            call.disposition =
                ["answered", "busy", "no_answer", "machine"][(i % 4) as usize].into();
            call.outcome = (call.disposition == "answered").then(|| {
                if i % 8 == 0 {
                    "paid".into()
                } else {
                    "promise_to_pay".into()
                }
            });
            call.ended_at = started + Duration::milliseconds(1000 * i);
            call.turns = (0..(i % 3) as u32)
                .map(|seq| TurnRecord {
                    seq,
                    speaker: Speaker::Bot,
                    text: format!("line {seq}"),
                    start_ms: 0,
                    end_ms: 1,
                    step: None,
                    intent: None,
                    confidence: None,
                    sentiment: None,
                    interrupted: false,
                    latency: None,
                })
                .collect();
            store.save_call(&call).await.expect("saving");
            calls.push(call);
        }

        // Newest first, ties by id descending.
        let mut expected_order = calls.clone();
        expected_order.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        let all = list(&store, &CallFilter::default()).await;
        let ids = |v: &[CallSummary]| v.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&all),
            expected_order
                .iter()
                .map(|c| c.id.clone())
                .collect::<Vec<_>>()
        );
        for (summary, call) in all.iter().zip(&expected_order) {
            assert_eq!(summary.turns as usize, call.turns.len());
            assert_eq!(
                summary.duration_ms as i64,
                (call.ended_at - call.started_at).num_milliseconds()
            );
            assert_eq!(summary.campaign, call.campaign);
            assert_eq!(summary.disposition, call.disposition);
        }

        let since = base + Duration::seconds(37 * 5);
        let until = base + Duration::seconds(37 * 12) + Duration::microseconds(1);
        let filters: Vec<(CallFilter, Keep)> = vec![
            (
                CallFilter {
                    campaign: Some("collections".into()),
                    ..Default::default()
                },
                Box::new(|c| c.campaign.as_deref() == Some("collections")),
            ),
            (
                CallFilter {
                    phone: Some("+15550000003".into()),
                    ..Default::default()
                },
                Box::new(|c| c.phone == "+15550000003"),
            ),
            (
                CallFilter {
                    outcome: Some("paid".into()),
                    ..Default::default()
                },
                Box::new(|c| c.outcome.as_deref() == Some("paid")),
            ),
            (
                CallFilter {
                    disposition: Some("busy".into()),
                    ..Default::default()
                },
                Box::new(|c| c.disposition == "busy"),
            ),
            (
                CallFilter {
                    direction: Some(Direction::Inbound),
                    ..Default::default()
                },
                Box::new(|c| c.direction == Direction::Inbound),
            ),
            (
                CallFilter {
                    lead_id: Some("lead-1".into()),
                    flow: Some("b".into()),
                    ..Default::default()
                },
                Box::new(|c| c.lead_id.as_deref() == Some("lead-1") && c.flow == "b"),
            ),
            (
                CallFilter {
                    since: Some(since),
                    until: Some(until),
                    ..Default::default()
                },
                Box::new(move |c| c.started_at >= since && c.started_at < until),
            ),
            (
                CallFilter {
                    campaign: Some("card-activation".into()),
                    disposition: Some("answered".into()),
                    since: Some(since),
                    ..Default::default()
                },
                Box::new(move |c| {
                    c.campaign.as_deref() == Some("card-activation")
                        && c.disposition == "answered"
                        && c.started_at >= since
                }),
            ),
            (
                CallFilter {
                    campaign: Some("nonexistent".into()),
                    ..Default::default()
                },
                Box::new(|_| false),
            ),
        ];
        for (filter, keep) in &filters {
            let want: Vec<String> = expected_order
                .iter()
                .filter(|c| keep(c))
                .map(|c| c.id.clone())
                .collect();
            let got = ids(&list(&store, filter).await);
            assert_eq!(got, want, "{filter:?}");
            if filter.campaign.as_deref() != Some("nonexistent") {
                assert!(!want.is_empty(), "the data should exercise {filter:?}");
            }
        }
        // The time range boundaries: `since` is inclusive, `until` exclusive.
        let boundary = expected_order[10].started_at;
        let from_boundary = list(
            &store,
            &CallFilter {
                since: Some(boundary),
                ..Default::default()
            },
        )
        .await;
        assert!(from_boundary.iter().any(|s| s.started_at == boundary));
        let to_boundary = list(
            &store,
            &CallFilter {
                until: Some(boundary),
                ..Default::default()
            },
        )
        .await;
        assert!(to_boundary.iter().all(|s| s.started_at < boundary));
        assert_eq!(from_boundary.len() + to_boundary.len(), calls.len());

        // Pages of 7 put back together are the whole list, in order, with nothing repeated.
        let mut paged = Vec::new();
        for page in 0.. {
            let got = list(
                &store,
                &CallFilter {
                    limit: Some(7),
                    offset: page * 7,
                    ..Default::default()
                },
            )
            .await;
            assert!(got.len() <= 7);
            if got.is_empty() {
                break;
            }
            paged.extend(got);
        }
        assert_eq!(ids(&paged), ids(&all));
        assert_eq!(
            list(
                &store,
                &CallFilter {
                    limit: Some(0),
                    ..Default::default()
                }
            )
            .await,
            vec![]
        );
        let filtered_page = list(
            &store,
            &CallFilter {
                campaign: Some("collections".into()),
                limit: Some(3),
                offset: 2,
                ..Default::default()
            },
        )
        .await;
        let collections: Vec<String> = expected_order
            .iter()
            .filter(|c| c.campaign.as_deref() == Some("collections"))
            .map(|c| c.id.clone())
            .collect();
        assert_eq!(ids(&filtered_page), collections[2..5].to_vec());
        store.close().await;
    }

    pub async fn unicode_text(db: TestDb) {
        let store = open(&db).await;
        let mut call = full_call();
        call.campaign = Some("Кампания «весна» 🌸".into());
        call.phone = "+٩٧١٥٠١٢٣٤٥٦٧".into();
        call.flow = "récupération_créances".into();
        call.turns[0].text = "Здравствуйте! 您好，我是银行的语音助手。مرحبا 👋🏽 👩‍👩‍👧".into();
        call.turns[1].text =
            "e\u{301} vs é, ﬁ ligature, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, 'quotes' \"and\" \\back\\slash;".into();
        call.turns[1].intent = Some("подтвердить".into());
        call.path = vec!["приветствие".into(), "確認".into()];
        call.slots =
            serde_json::json!({"имя": "Zoë Ångström", "emoji": "🏦", "nul_escaped": "a\u{0}b"});
        store.save_call(&call).await.expect("saving");
        assert_eq!(must_get(&store, &call.id).await, call);
        let found = list(
            &store,
            &CallFilter {
                campaign: Some("Кампания «весна» 🌸".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].phone, "+٩٧١٥٠١٢٣٤٥٦٧");
        // A different normalisation is a different string: no accidental folding.
        let nfd = list(
            &store,
            &CallFilter {
                flow: Some("re\u{301}cupe\u{301}ration_cre\u{301}ances".into()),
                ..Default::default()
            },
        )
        .await;
        assert!(nfd.is_empty());
        store.close().await;
    }

    /// 8 tasks save 30 distinct calls each while 4 more tasks keep replacing the same 5 calls:
    /// afterwards every call is there once, with exactly the turns of one whole save.
    pub async fn concurrent_saves(db: TestDb) {
        let store = open(&db).await;
        let base = at(1_767_225_600, 0);
        let mut tasks = Vec::new();
        for task in 0..8u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut saved = Vec::new();
                for n in 0..30u32 {
                    let mut call = full_call();
                    call.id = uuid::Uuid::new_v4().to_string();
                    call.started_at = base + Duration::milliseconds(i64::from(task * 1000 + n));
                    call.campaign = Some(format!("task-{task}"));
                    call.turns.truncate((n % 4) as usize);
                    store.save_call(&call).await.map_err(|e| e.to_string())?;
                    saved.push(call);
                }
                Ok::<_, String>(saved)
            }));
        }
        let contended: Vec<String> = (0..5).map(|i| format!("contended-{i}")).collect();
        for task in 0..4u32 {
            let store = store.clone();
            let contended = contended.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..10u32 {
                    for id in &contended {
                        let mut call = full_call();
                        call.id = id.clone();
                        let version = task * 10 + round;
                        // The version is in the outcome and decides the number of turns.
                        call.outcome = Some(format!("v{version}"));
                        call.turns.truncate((version % 4) as usize);
                        store.save_call(&call).await.map_err(|e| e.to_string())?;
                    }
                }
                Ok(Vec::new())
            }));
        }
        let mut expected = BTreeMap::new();
        for task in tasks {
            for call in task.await.expect("task").expect("saving") {
                expected.insert(call.id.clone(), call);
            }
        }
        assert_eq!(expected.len(), 240);

        let all = list(&store, &CallFilter::default()).await;
        let ids: BTreeSet<String> = all.iter().map(|s| s.id.clone()).collect();
        assert_eq!(all.len(), 245, "no lost or duplicated calls");
        assert_eq!(ids.len(), 245);
        for (id, call) in &expected {
            assert_eq!(&must_get(&store, id).await, call);
        }
        for id in &contended {
            let got = must_get(&store, id).await;
            let version: usize = got
                .outcome
                .as_deref()
                .and_then(|o| o.strip_prefix('v'))
                .and_then(|v| v.parse().ok())
                .expect("a version outcome");
            assert_eq!(
                got.turns.len(),
                version % 4,
                "{id}: turns of one whole save"
            );
            let listed = all.iter().find(|s| &s.id == id).expect("listed");
            assert_eq!(listed.turns as usize, version % 4);
        }
        store.close().await;
    }

    pub async fn reopen_keeps_data_without_rerunning_migrations(db: TestDb) {
        let store = open(&db).await;
        let call = full_call();
        store.save_call(&call).await.expect("saving");
        store.close().await;
        let before = applied_migrations(&db.url).await;
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .expect("migrations directory")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count();
        assert_eq!(
            before.len(),
            files,
            "every migration applied once: {before:?}"
        );

        // A second run of the first migration would fail outright (its CREATE TABLEs have no
        // IF NOT EXISTS), so opening at all shows it was not re-run; the bookkeeping must be
        // unchanged too.
        let store = open(&db).await;
        assert_eq!(must_get(&store, &call.id).await, call);
        store.close().await;
        assert_eq!(applied_migrations(&db.url).await, before);
    }

    /// A database where the first migration cannot run (a `calls` table of another shape
    /// already exists): a clear error naming the database and the migration, no panic.
    pub async fn failing_migration(db: TestDb) {
        sqlx::any::install_default_drivers();
        let create_url = match db.backend {
            Backend::Sqlite => {
                let file = db.url.trim_start_matches("sqlite://");
                std::fs::create_dir_all(std::path::Path::new(file).parent().expect("parent"))
                    .expect("mkdir");
                format!("{}?mode=rwc", db.url)
            }
            Backend::Postgres => db.url.clone(),
        };
        let mut conn = sqlx::AnyConnection::connect(&create_url)
            .await
            .expect("connecting");
        sqlx::query("CREATE TABLE calls (something TEXT)")
            .execute(&mut conn)
            .await
            .expect("creating a conflicting table");
        conn.close().await.expect("closing");
        match Store::open(&db.url).await {
            Err(e @ StoreError::Migrate { .. }) => {
                let text = e.to_string();
                eprintln!("{text}");
                assert!(text.contains(&db.url), "{text}");
                assert!(text.contains("at migration 1 (call records)"), "{text}");
                assert!(text.contains("calls"), "{text}");
            }
            other => panic!("expected a migration error, got {other:?}"),
        }
    }
}

macro_rules! suite {
    ($backend:ident, $fresh:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn round_trip() {
                cases::round_trip($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn non_finite_scores_and_bad_records() {
                cases::non_finite_scores_and_bad_records($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn replace_on_same_id() {
                cases::replace_on_same_id($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn filters_ordering_paging() {
                cases::filters_ordering_paging($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn unicode_text() {
                cases::unicode_text($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_saves() {
                cases::concurrent_saves($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn reopen_keeps_data_without_rerunning_migrations() {
                cases::reopen_keeps_data_without_rerunning_migrations($fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn failing_migration() {
                cases::failing_migration($fresh().await).await
            }
        }
    };
}

suite!(sqlite, fresh_sqlite);
suite!(postgres, fresh_postgres);

/// Bad URLs: errors that name the URL with the password hidden, never a panic.
#[tokio::test]
async fn bad_urls_are_clear_errors() {
    for (url, kind) in [
        ("mysql://bot:hunter2@127.0.0.1/callbot", "unsupported"),
        ("callbot.db", "unsupported"),
        ("sqlite://", "unsupported"),
        // Nothing listens on port 1.
        ("postgres://bot:hunter2@127.0.0.1:1/callbot", "connect"),
        ("sqlite:///proc/no/such/dir/callbot.db", "dir"),
    ] {
        let err = match Store::open(url).await {
            Ok(_) => panic!("{url} opened"),
            Err(e) => e,
        };
        let text = err.to_string();
        eprintln!("{text}");
        match (kind, &err) {
            ("unsupported", StoreError::UnsupportedUrl { .. })
            | ("connect", StoreError::Connect { .. })
            | ("dir", StoreError::CreateDir { .. }) => {}
            _ => panic!("{url}: expected a {kind} error, got {err:?}"),
        }
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains(&url.replace("hunter2", "***")), "{text}");
    }
}

/// `sqlite::memory:` keeps its data across operations (it lives in one connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory() {
    let store = Store::open("sqlite::memory:").await.expect("opening");
    assert_eq!(store.backend(), Backend::Sqlite);
    let call = full_call();
    let other = full_call();
    let (a, b) = tokio::join!(store.save_call(&call), store.save_call(&other));
    a.expect("saving");
    b.expect("saving");
    assert_eq!(must_get(&store, &call.id).await, call);
    assert_eq!(list(&store, &CallFilter::default()).await.len(), 2);
    store.close().await;
}
