//! Retention (`bot_runtime::retention`) on SQLite and PostgreSQL: recordings and transcripts
//! older than the policy are purged — files deleted, text emptied — and nothing else: newer
//! calls, and what reports count in older ones, stay as they were.

use std::path::Path;

use bot_runtime::retention::{RetentionPolicy, RetentionReport};
use bot_runtime::store::{Store, StoreError};
use bot_runtime::{CallRecord, Direction, RecordingRef, Speaker, TurnRecord};
use chrono::{DateTime, Duration, Utc};

mod support;
use support::db::{TestDb, fresh_postgres, fresh_sqlite, open};

/// A call that ended `days_ago` days before `now`, with a recording file in `dir`.
fn call(id: &str, now: DateTime<Utc>, days_ago: i64, dir: &Path) -> CallRecord {
    let ended = now - Duration::days(days_ago);
    let mut call = CallRecord::new(Direction::Outbound, "+442079460123", ended);
    call.id = id.into();
    call.flow = "reminder".into();
    call.flow_version = 1;
    call.started_at = ended - Duration::seconds(60);
    call.ended_at = ended;
    call.disposition = "answered".into();
    call.outcome = Some("promise_to_pay".into());
    call.path = vec!["greet".into(), "ask".into()];
    call.slots = serde_json::json!({ "date": "2030-01-15", "amount": 120.5 });
    call.turns = (0..4)
        .map(|seq| TurnRecord {
            seq,
            speaker: if seq % 2 == 0 {
                Speaker::Bot
            } else {
                Speaker::Customer
            },
            text: format!("line {seq} of {id}: I can pay on the fifteenth"),
            start_ms: u64::from(seq) * 2000,
            end_ms: u64::from(seq) * 2000 + 1500,
            step: Some("ask".into()),
            intent: (seq % 2 == 1).then(|| "promise".to_string()),
            confidence: Some(0.9),
            sentiment: Some(0.25),
            interrupted: false,
            latency: None,
        })
        .collect();
    let path = dir.join(format!("{id}.wav"));
    let bytes = vec![7u8; 1000 + days_ago as usize];
    std::fs::write(&path, &bytes).expect("recording file");
    call.recording = Some(RecordingRef {
        path: path.display().to_string(),
        sha256: "0".repeat(64),
        duration_ms: 60_000,
        bytes: bytes.len() as u64,
    });
    call
}

async fn run(db: TestDb) {
    let store: Store = open(&db).await;
    let files = tempfile::tempdir().expect("tempdir");
    let now = Utc::now();
    let calls = [
        call("old", now, 100, files.path()),
        call("mid", now, 40, files.path()),
        call("new", now, 1, files.path()),
        call("gone", now, 95, files.path()),
    ];
    for c in &calls {
        store.save_call(c).await.expect("save");
    }
    // One old recording was already deleted by hand.
    let gone_path = calls[3].recording.as_ref().expect("rec").path.clone();
    std::fs::remove_file(&gone_path).expect("remove");

    // No policy: everything is kept.
    assert_eq!(
        store.retention_policy().await.expect("policy"),
        RetentionPolicy::default()
    );
    assert_eq!(
        store.apply_retention(now, "test").await.expect("apply"),
        RetentionReport::default()
    );

    let bad = RetentionPolicy {
        recordings_days: Some(0),
        transcripts_days: None,
    };
    match store.set_retention_policy(&bad, "test").await {
        Err(StoreError::Refused { reason, .. }) => assert!(reason.contains("1 to 36500")),
        other => panic!("0 days accepted: {other:?}"),
    }
    let policy = RetentionPolicy {
        recordings_days: Some(30),
        transcripts_days: Some(60),
    };
    store
        .set_retention_policy(&policy, "test")
        .await
        .expect("set");
    assert_eq!(store.retention_policy().await.expect("policy"), policy);

    let report = store.apply_retention(now, "test").await.expect("apply");
    assert_eq!(
        report,
        RetentionReport {
            recordings: 3,
            recording_bytes: 1100 + 1040,
            missing_files: 1,
            transcripts: 2,
        }
    );
    // Nothing left to do.
    assert_eq!(
        store.apply_retention(now, "test").await.expect("again"),
        RetentionReport::default()
    );

    for c in &calls {
        let back = store.call(&c.id).await.expect("read").expect("kept");
        let file = &c.recording.as_ref().expect("rec").path;
        let recording_kept = c.id == "new";
        assert_eq!(back.recording.is_some(), recording_kept, "{}", c.id);
        assert_eq!(Path::new(file).exists(), recording_kept, "{}", c.id);
        let transcript_kept = c.id == "new" || c.id == "mid";
        if transcript_kept {
            assert_eq!(back.turns, c.turns, "{}", c.id);
            assert_eq!(back.slots, c.slots, "{}", c.id);
        } else {
            assert!(back.turns.iter().all(|t| t.text.is_empty()), "{}", c.id);
            assert_eq!(back.slots, serde_json::json!({}));
            // What reports count stays.
            assert_eq!(back.turns.len(), c.turns.len());
            for (b, t) in back.turns.iter().zip(&c.turns) {
                assert_eq!(
                    (b.speaker, b.intent.as_ref(), b.sentiment, b.start_ms),
                    (t.speaker, t.intent.as_ref(), t.sentiment, t.start_ms)
                );
            }
            assert_eq!(back.outcome, c.outcome);
            assert_eq!(back.path, c.path);
        }
    }
    let log = store
        .audit_events("default", None, 10)
        .await
        .expect("audit log");
    let applied = log
        .iter()
        .find(|e| e.action == "retention.apply")
        .expect("the purge is audited");
    assert_eq!(applied.detail["report"]["recordings"], 3);
    assert!(log.iter().any(|e| e.action == "retention.set"));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite() {
    run(fresh_sqlite().await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres() {
    run(fresh_postgres().await).await
}
