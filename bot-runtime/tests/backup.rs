//! Backup and restore of the SQLite store (`bot_runtime::backup`): a backup taken while calls
//! keep being saved is one consistent snapshot, restores into a new file and reads back the
//! same; damaged backups and existing or busy targets are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bot_runtime::backup::{BackupError, backup_sqlite, manifest_path, restore_sqlite};
use bot_runtime::dialer::db::{CampaignKind, NewCampaign, NewLead, Order};
use bot_runtime::store::{CallFilter, Store};
use bot_runtime::vault::{Vault, default_keys_file};
use bot_runtime::{CallRecord, Direction, Speaker, StageLatency, TurnRecord};
use chrono::{DateTime, Duration, TimeZone, Utc};
use tempfile::TempDir;

const TENANT: &str = "bank-a";
const CAMPAIGN: &str = "reminders";
const LEADS: usize = 50;
/// Calls saved before the backup starts (enough that the copy takes a while).
const SEEDED: u64 = 400;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + secs, 0)
        .single()
        .expect("a valid time")
}

/// Call number `i`: `1 + i % 9` turns, the count also kept in its slots so that a reader can
/// tell a whole call from a torn one.
fn call(i: u64, writer: &str) -> CallRecord {
    let started = t(i as i64 * 60) + Duration::microseconds(i as i64 % 1_000_000);
    let mut call = CallRecord::new(
        Direction::Outbound,
        &format!("+1212555{:04}", i % 10_000),
        started,
    );
    call.id = format!("{writer}-{i:06}");
    call.campaign = Some(CAMPAIGN.into());
    call.lead_id = Some(format!("lead-{}", i % LEADS as u64));
    call.flow = "reminder".into();
    call.flow_version = 1;
    call.answered_at = Some(started + Duration::milliseconds(4_000));
    call.ended_at = started + Duration::milliseconds(30_000 + i as i64);
    call.disposition = "answered".into();
    let outcome = if i.is_multiple_of(2) {
        "paid"
    } else {
        "promise"
    };
    call.outcome = Some(outcome.into());
    call.path = vec!["greet".into(), "verify".into(), "ask".into()];
    let turns = 1 + i % 9;
    call.slots = serde_json::json!({ "turns": turns, "writer": writer, "i": i });
    call.turns = (0..turns)
        .map(|seq| TurnRecord {
            seq: seq as u32,
            speaker: if seq.is_multiple_of(2) {
                Speaker::Bot
            } else {
                Speaker::Customer
            },
            text: format!("turn {seq} of call {i}: {}", "words ".repeat(20)),
            start_ms: seq * 2_000,
            end_ms: seq * 2_000 + 1_500,
            step: Some("ask".into()),
            intent: (seq % 2 == 1).then(|| "affirm".into()),
            confidence: (seq % 2 == 1).then_some(0.75),
            sentiment: None,
            interrupted: false,
            latency: (seq % 2 == 1).then_some(StageLatency {
                endpoint_ms: 300,
                asr_ms: 150,
                nlu_ms: 8,
                flow_ms: 1,
                tts_ms: 60,
                total_ms: 519,
            }),
        })
        .collect();
    call
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// A store at `dir/live/callbot.db` with a tenant, a campaign, leads assigned to it and
/// `SEEDED` calls.
async fn seeded_store(dir: &Path) -> (Store, String, Vec<CallRecord>) {
    let url = sqlite_url(&dir.join("live").join("callbot.db"));
    let store = Store::open(&url).await.expect("opening the live store");
    store.ensure_tenant(TENANT, "Bank A").await.expect("tenant");
    store
        .save_flow(TENANT, "reminder", 1, "name: reminder\nversion: 1\n")
        .await
        .expect("flow");
    store
        .create_campaign(
            TENANT,
            &NewCampaign {
                id: CAMPAIGN.into(),
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
    let leads: Vec<NewLead> = (0..LEADS)
        .map(|i| NewLead {
            external_id: Some(format!("ext-{i}")),
            phone: format!("+1212555{i:04}"),
            name: Some(format!("Customer {i}")),
            timezones: vec!["America/New_York".into()],
            tz_source: "number".into(),
            debt_id: None,
            fields: serde_json::Map::new(),
            source_row: Some(i as u64 + 2),
        })
        .collect();
    let report = store
        .insert_leads(TENANT, "leads.csv", &leads)
        .await
        .expect("leads");
    assert_eq!(report.inserted, LEADS as u64);
    let ids: Vec<String> = store
        .list_leads(TENANT, 1_000, 0)
        .await
        .expect("list leads")
        .into_iter()
        .map(|l| l.id)
        .collect();
    store
        .assign_leads(TENANT, CAMPAIGN, &ids, Order::Sequential, t(0))
        .await
        .expect("assign");
    let mut calls = Vec::new();
    for i in 0..SEEDED {
        let c = call(i, "seed");
        store.save_call(&c).await.expect("seeding a call");
        calls.push(c);
    }
    (store, url, calls)
}

/// Every call in `store` is whole: as many turns as its slots say, numbered 0.. in order.
async fn assert_all_calls_whole(store: &Store) -> usize {
    let list = store
        .list_calls(&CallFilter::default())
        .await
        .expect("listing calls");
    for summary in &list {
        let call = store
            .call(&summary.id)
            .await
            .expect("reading a call")
            .expect("a listed call exists");
        let want = call.slots["turns"].as_u64().expect("turns in slots");
        assert_eq!(call.turns.len() as u64, want, "call {} is torn", call.id);
        assert_eq!(summary.turns as u64, want, "call {} summary", call.id);
        for (k, turn) in call.turns.iter().enumerate() {
            assert_eq!(turn.seq as usize, k, "call {} turn order", call.id);
        }
    }
    list.len()
}

/// The keyring of the database at `url` (its default keys file, beside it).
fn keys_of(url: &str) -> Vault {
    Vault::load(&default_keys_file(url).expect("a keys file")).expect("reading the keys")
}

async fn open_restored(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join("restored").join(name);
    let url = sqlite_url(&path);
    (path, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_backup_is_consistent_and_restores() {
    let dir = TempDir::new().expect("temporary directory");
    let (store, url, seeded) = seeded_store(dir.path()).await;

    // A writer that keeps saving calls (new ones, and rewrites of seeded ones with the same
    // number of turns) for as long as the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, written) = (store.clone(), stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                store.save_call(&call(i, "live")).await.expect("live save");
                written.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            i
        })
    };
    // Let it get going, then back up while it writes.
    while written.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let dest = dir.path().join("backups").join("callbot-1.db");
    let before = written.load(Ordering::SeqCst);
    let info = backup_sqlite(&url, &dest, false).await.expect("backup");
    let after = written.load(Ordering::SeqCst);
    // Keep writing a little after the backup, then stop.
    while written.load(Ordering::SeqCst) < after + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let total_live = writer.await.expect("writer task");
    eprintln!(
        "live calls saved: {before} before the backup, {after} after it, {total_live} in all"
    );
    assert!(
        after > before,
        "the writer saved no call while the backup ran ({before} before, {after} after): the \
         test did not exercise an online backup"
    );

    // The backup file and its manifest.
    assert_eq!(info.path, dest);
    assert!(dest.is_file());
    assert_eq!(info.manifest_path, manifest_path(&dest));
    let manifest: bot_runtime::backup::Manifest =
        serde_json::from_slice(&std::fs::read(&info.manifest_path).expect("reading the manifest"))
            .expect("parsing the manifest");
    assert_eq!(manifest, info.manifest);
    assert_eq!(
        manifest.bytes,
        std::fs::metadata(&dest).expect("backup metadata").len()
    );
    // Every migration in the source tree, by the version in its file name.
    let mut shipped: Vec<i64> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .expect("migrations folder")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.split('_').next()?.parse().ok()
            })
            .collect();
    shipped.sort_unstable();
    assert!(shipped.len() >= 9, "{shipped:?}");
    assert_eq!(manifest.migrations, shipped);
    let calls_in_backup = manifest.tables["calls"];
    assert!(
        (SEEDED + before..=SEEDED + after).contains(&calls_in_backup),
        "the backup has {calls_in_backup} calls; a snapshot taken during the backup has between \
         {} and {}",
        SEEDED + before,
        SEEDED + after
    );
    assert_eq!(manifest.tables["leads"], LEADS as u64);
    assert_eq!(manifest.tables["campaigns"], 1);

    // Restore into a new file and read everything back.
    let (restored_path, restored_url) = open_restored(dir.path(), "callbot.db").await;
    // A keyring without the backup's keys is refused before anything is written.
    let err = restore_sqlite(&dest, &restored_url, false, &Vault::generate("wrong"))
        .await
        .expect_err("the wrong keys");
    assert!(matches!(err, BackupError::Keys { .. }), "{err}");
    assert!(err.to_string().contains("index key"), "{err}");
    assert!(!restored_path.exists());
    let restored = restore_sqlite(&dest, &restored_url, false, &keys_of(&url))
        .await
        .expect("restore");
    // callbot finds the keys beside the restored database.
    assert_eq!(
        restored.keys_file.as_deref(),
        default_keys_file(&restored_url).as_deref()
    );
    assert!(restored.manifest_checked);
    assert!(!restored.replaced);
    assert_eq!(restored.target, restored_path);
    assert_eq!(restored.sha256, manifest.sha256);
    assert_eq!(restored.backup_tables, manifest.tables);
    assert_eq!(restored.tables, manifest.tables);
    assert!(restored.applied_migrations.is_empty());

    let back = Store::open(&restored_url)
        .await
        .expect("opening the restore");
    for want in &seeded {
        let got = back
            .call(&want.id)
            .await
            .expect("reading a restored call")
            .unwrap_or_else(|| panic!("seeded call {} missing from the restore", want.id));
        assert_eq!(&got, want, "seeded call {} differs", want.id);
    }
    let live_in_backup = calls_in_backup - SEEDED;
    for i in 0..live_in_backup {
        let want = call(i, "live");
        let got = back
            .call(&want.id)
            .await
            .expect("reading a restored call")
            .unwrap_or_else(|| panic!("live call {} missing from the restore", want.id));
        assert_eq!(got, want, "live call {} differs", want.id);
    }
    // The snapshot is a prefix of the writer's calls: nothing saved later is in it.
    assert!(
        back.call(&call(live_in_backup, "live").id)
            .await
            .expect("reading")
            .is_none()
    );
    assert_eq!(assert_all_calls_whole(&back).await as u64, calls_in_backup);
    let campaign = back
        .campaign(TENANT, CAMPAIGN)
        .await
        .expect("reading the campaign")
        .expect("the campaign is restored");
    assert_eq!(campaign.flow, "reminder");
    let leads = back.list_leads(TENANT, 1_000, 0).await.expect("leads");
    assert_eq!(leads.len(), LEADS);
    back.close().await;

    // The live store has everything the writer wrote.
    let live_calls = store
        .list_calls(&CallFilter::default())
        .await
        .expect("listing live calls");
    assert_eq!(live_calls.len() as u64, SEEDED + total_live);
    store.close().await;
}

#[tokio::test]
async fn existing_destinations_and_targets_need_force() {
    let dir = TempDir::new().expect("temporary directory");
    let (store, url, _) = seeded_store(dir.path()).await;
    let dest = dir.path().join("b.db");
    backup_sqlite(&url, &dest, false)
        .await
        .expect("first backup");
    let err = backup_sqlite(&url, &dest, false)
        .await
        .expect_err("an existing destination is refused");
    assert!(matches!(err, BackupError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    store
        .save_call(&call(9_999, "late"))
        .await
        .expect("one more call");
    let info = backup_sqlite(&url, &dest, true).await.expect("overwrite");
    assert!(info.replaced);
    assert_eq!(info.manifest.tables["calls"], SEEDED + 1);

    // The live database is an existing target, and it is in use.
    let keys = keys_of(&url);
    let err = restore_sqlite(&dest, &url, false, &keys)
        .await
        .expect_err("an existing target is refused");
    assert!(matches!(err, BackupError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    let err = restore_sqlite(&dest, &url, true, &keys)
        .await
        .expect_err("a target in use is refused, even with force");
    assert!(matches!(err, BackupError::InUse { .. }), "{err}");
    store.close().await;

    // Stopped: force replaces it (and its stale WAL files) with the backup.
    let (target, target_url) = open_restored(dir.path(), "x.db").await;
    let other = Store::open(&target_url).await.expect("another database");
    other
        .save_call(&call(1, "other"))
        .await
        .expect("a call only in the old target");
    other.close().await;
    std::fs::write(PathBuf::from(format!("{}-wal", target.display())), b"stale")
        .expect("a stale WAL file");
    let restored = restore_sqlite(&dest, &target_url, true, &keys)
        .await
        .expect("forced restore");
    assert!(restored.replaced);
    let back = Store::open(&target_url).await.expect("opening the restore");
    assert!(back.call("other-000001").await.expect("reading").is_none());
    assert!(back.call("late-009999").await.expect("reading").is_some());
    assert_eq!(assert_all_calls_whole(&back).await as u64, SEEDED + 1);
    back.close().await;
}

/// Copies `from` (and its manifest, if `with_manifest`) into `dir` under `name` and changes the
/// copy with `damage`.
fn damaged_copy(
    from: &Path,
    dir: &Path,
    name: &str,
    with_manifest: bool,
    damage: impl FnOnce(&mut Vec<u8>),
) -> PathBuf {
    let to = dir.join(name);
    let mut bytes = std::fs::read(from).expect("reading the backup");
    damage(&mut bytes);
    std::fs::write(&to, bytes).expect("writing the damaged copy");
    if with_manifest {
        std::fs::copy(manifest_path(from), manifest_path(&to)).expect("copying the manifest");
    }
    to
}

#[tokio::test]
async fn damaged_backups_are_refused() {
    let dir = TempDir::new().expect("temporary directory");
    let (store, url, _) = seeded_store(dir.path()).await;
    store.close().await;
    let keys = keys_of(&url);
    let dest = dir.path().join("good.db");
    let info = backup_sqlite(&url, &dest, false).await.expect("backup");
    let len = info.manifest.bytes as usize;
    assert!(len > 64 * 1024, "backup is only {len} bytes");
    let target_url = |name: &str| sqlite_url(&dir.path().join("targets").join(name));

    let mut cases: BTreeMap<&str, (PathBuf, &[&str])> = BTreeMap::new();
    // Truncated, with and without its manifest: the size check, then SQLite's own checks.
    cases.insert(
        "truncated",
        (
            damaged_copy(&dest, dir.path(), "trunc.db", true, |b| b.truncate(len / 2)),
            &["bytes, its manifest says"],
        ),
    );
    cases.insert(
        "truncated, no manifest",
        (
            damaged_copy(&dest, dir.path(), "trunc-nm.db", false, |b| {
                b.truncate(len / 2)
            }),
            // Where the file is cut decides which of SQLite's checks sees it first.
            &["malformed", "integrity_check"],
        ),
    );
    // One bit flipped in the middle of the data: only the checksum can see it.
    cases.insert(
        "bit flip",
        (
            damaged_copy(&dest, dir.path(), "flip.db", true, |b| {
                b[len / 2 + 100] ^= 0x10
            }),
            &["SHA-256"],
        ),
    );
    // A flipped bit in the file's SQLite header, no manifest: refused before SQLite opens it.
    cases.insert(
        "header flip, no manifest",
        (
            damaged_copy(&dest, dir.path(), "hdr.db", false, |b| b[0] ^= 0x01),
            &["not a SQLite database"],
        ),
    );
    // A manifest that is not JSON.
    let bad_manifest = damaged_copy(&dest, dir.path(), "badman.db", false, |_| {});
    std::fs::write(manifest_path(&bad_manifest), b"{not json").expect("bad manifest");
    cases.insert("bad manifest", (bad_manifest, &["manifest"]));

    for (i, (case, (file, expect))) in cases.iter().enumerate() {
        let url = target_url(&format!("t{i}.db"));
        let err = restore_sqlite(file, &url, false, &keys)
            .await
            .expect_err(&format!("{case}: a damaged backup is refused"));
        assert!(matches!(err, BackupError::Corrupt { .. }), "{case}: {err}");
        let text = err.to_string();
        eprintln!("{case}: {text}");
        assert!(expect.iter().any(|e| text.contains(e)), "{case}: {text}");
        assert!(
            !dir.path().join("targets").join(format!("t{i}.db")).exists(),
            "{case}: a target was written"
        );
    }

    // The good one restores.
    let restored = restore_sqlite(&dest, &target_url("ok.db"), false, &keys)
        .await
        .expect("the intact backup restores");
    assert_eq!(restored.tables["calls"], SEEDED);

    // A SQLite file that is not a callbot database.
    let plain = dir.path().join("plain.db");
    {
        use sqlx::Connection;
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", plain.display()))
                .await
                .expect("a plain database");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut conn)
            .await
            .expect("a table");
        conn.close().await.expect("closing");
    }
    let err = restore_sqlite(&plain, &target_url("plain.db"), false, &keys)
        .await
        .expect_err("not a callbot database");
    assert!(matches!(err, BackupError::Incompatible { .. }), "{err}");
}

#[tokio::test]
async fn postgres_and_missing_sources_are_refused_clearly() {
    let dir = TempDir::new().expect("temporary directory");
    let err = backup_sqlite(
        "postgres://bot:secret@db.example/callbot",
        &dir.path().join("x.db"),
        false,
    )
    .await
    .expect_err("postgres");
    let text = err.to_string();
    assert!(matches!(err, BackupError::Postgres { .. }), "{text}");
    assert!(
        text.contains("pg_dump") && text.contains("pg_restore"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    assert!(!dir.path().join("x.db").exists());

    let missing = sqlite_url(&dir.path().join("nothing.db"));
    let err = backup_sqlite(&missing, &dir.path().join("x.db"), false)
        .await
        .expect_err("no database");
    assert!(matches!(err, BackupError::Missing { .. }), "{err}");
    assert!(
        !dir.path().join("nothing.db").exists(),
        "backup created an empty database"
    );
}
