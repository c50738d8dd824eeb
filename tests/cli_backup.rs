//! `callbot backup` and `callbot restore` as an operator runs them, on the SQLite default (the
//! database a store in the test process wrote, read back after the restore with
//! `bot_runtime::store::Store`), and the clear refusal for PostgreSQL URLs.

use std::path::Path;
use std::process::Command;

use bot_runtime::store::{CallFilter, Store};
use bot_runtime::{CallRecord, Direction, Speaker, TurnRecord};
use chrono::{Duration, TimeZone, Utc};
use tempfile::TempDir;

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs callbot in `dir` (so the default database is `dir/callbot-data/callbot.db`).
fn callbot(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_callbot"))
        .current_dir(dir)
        .env_remove("CALLBOT_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env_remove("CALLBOT_KEYS")
        .env_remove("CALLBOT_KEYS_FILE")
        .args(args)
        .output()
        .expect("running callbot");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let r = callbot(dir, args);
    assert_eq!(r.code, Some(0), "callbot {args:?} should succeed:\n{r}");
    r.stdout
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let r = callbot(dir, args);
    assert_eq!(r.code, Some(1), "callbot {args:?} should fail:\n{r}");
    assert!(r.stderr.contains("error: "), "callbot {args:?}:\n{r}");
    r.stderr
}

fn call(i: i64) -> CallRecord {
    let started = Utc
        .timestamp_opt(1_780_000_000 + i * 60, 0)
        .single()
        .expect("a valid time");
    let mut call = CallRecord::new(Direction::Outbound, &format!("+1212555{i:04}"), started);
    call.id = format!("call-{i:04}");
    call.flow = "reminder".into();
    call.ended_at = started + Duration::seconds(40);
    call.disposition = "answered".into();
    call.outcome = Some("paid".into());
    call.turns = (0..3)
        .map(|seq| TurnRecord {
            seq,
            speaker: if seq.is_multiple_of(2) {
                Speaker::Bot
            } else {
                Speaker::Customer
            },
            text: format!("turn {seq} of call {i}"),
            start_ms: u64::from(seq) * 1_000,
            end_ms: u64::from(seq) * 1_000 + 800,
            step: None,
            intent: None,
            confidence: None,
            sentiment: None,
            interrupted: false,
            latency: None,
        })
        .collect();
    call
}

/// A multi-threaded runtime: sqlx finishes closing a pool's connections on tasks of its own,
/// which a current-thread runtime would leave pending between `block_on`s (the closed store
/// would then still hold the file when the next command runs).
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn sqlite_backup_then_restore() {
    let dir = TempDir::new().expect("temporary directory");
    let rt = rt();
    let live_url = format!(
        "sqlite://{}",
        dir.path().join("callbot-data").join("callbot.db").display()
    );
    let calls: Vec<CallRecord> = (0..25).map(call).collect();
    let live = rt.block_on(async {
        let store = Store::open(&live_url)
            .await
            .expect("opening the live store");
        for c in &calls {
            store.save_call(c).await.expect("saving a call");
        }
        store
    });

    // The default database, while the store above still holds it open.
    let out = ok(dir.path(), &["backup", "backups/one.db"]);
    assert!(out.contains("integrity:  ok"), "{out}");
    assert!(out.contains("sha256:"), "{out}");
    let calls_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("calls "))
        .unwrap_or_else(|| panic!("no calls row count:\n{out}"));
    assert!(calls_line.trim_end().ends_with(" 25"), "{calls_line}");
    let backup = dir.path().join("backups").join("one.db");
    assert!(backup.is_file());
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("backups").join("one.db.json")).expect("the manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["tables"]["calls"], 25, "{manifest}");
    assert_eq!(
        manifest["bytes"].as_u64(),
        Some(std::fs::metadata(&backup).expect("metadata").len())
    );

    // An existing destination needs --force.
    let err = fails(dir.path(), &["backup", "backups/one.db"]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    ok(dir.path(), &["backup", "backups/one.db", "--force"]);

    // Restore into a new database and read it back. It needs the keys the backed-up data was
    // sealed with: the live database's keys file, which is copied beside the restore.
    let restored_url = "sqlite://restored/callbot.db";
    let err = fails(
        dir.path(),
        &["restore", "backups/one.db", "--database-url", restored_url],
    );
    assert!(err.contains("--keys-file"), "{err}");
    assert!(!dir.path().join("restored").join("callbot.db").exists());
    let live_keys = "callbot-data/callbot.db.keys";
    let out = ok(
        dir.path(),
        &[
            "restore",
            "backups/one.db",
            "--database-url",
            restored_url,
            "--keys-file",
            live_keys,
        ],
    );
    assert!(out.contains("matches the manifest"), "{out}");
    assert!(out.contains("restored/callbot.db.keys (written)"), "{out}");
    let restored_abs = format!(
        "sqlite://{}",
        dir.path().join("restored").join("callbot.db").display()
    );
    rt.block_on(async {
        let store = Store::open(&restored_abs)
            .await
            .expect("opening the restore");
        let listed = store
            .list_calls(&CallFilter::default())
            .await
            .expect("listing");
        assert_eq!(listed.len(), calls.len());
        for want in &calls {
            let got = store
                .call(&want.id)
                .await
                .expect("reading")
                .unwrap_or_else(|| panic!("call {} missing after restore", want.id));
            assert_eq!(&got, want);
        }
        store.close().await;
    });

    // An existing target needs --force; one in use is refused even then.
    let err = fails(
        dir.path(),
        &["restore", "backups/one.db", "--database-url", restored_url],
    );
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    ok(
        dir.path(),
        &[
            "restore",
            "backups/one.db",
            "--database-url",
            restored_url,
            "--force",
        ],
    );
    let err = fails(dir.path(), &["restore", "backups/one.db", "--force"]);
    assert!(err.contains("in use"), "{err}");
    rt.block_on(live.close());

    // A damaged backup is refused and the target left alone.
    let mut bytes = std::fs::read(&backup).expect("reading the backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x04;
    std::fs::write(&backup, bytes).expect("damaging the backup");
    let err = fails(
        dir.path(),
        &[
            "restore",
            "backups/one.db",
            "--database-url",
            "sqlite://other/callbot.db",
            "--keys-file",
            live_keys,
        ],
    );
    assert!(err.contains("damaged") && err.contains("SHA-256"), "{err}");
    assert!(!dir.path().join("other").join("callbot.db").exists());
}

#[test]
fn postgres_is_refused_with_the_documented_practice() {
    let dir = TempDir::new().expect("temporary directory");
    let url = "postgres://bot:hunter2@127.0.0.1:1/callbot";
    for args in [
        ["backup", "x.dump", "--database-url", url],
        ["restore", "x.dump", "--database-url", url],
    ] {
        let err = fails(dir.path(), &args);
        assert!(
            err.contains("pg_dump") && err.contains("pg_restore") && err.contains("WAL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "password shown: {err}");
    }
    assert!(!dir.path().join("x.dump").exists());
}

/// `callbot keys`: a keys file made by `generate` is private and never replaced; on the default
/// SQLite database, `status` names the key in use and `rotate` re-seals everything with a new key
/// and drops the old one, after which the data reads back and the old keys file is refused.
#[test]
fn keys_generate_status_and_rotate() {
    let dir = TempDir::new().expect("temporary directory");
    let out = ok(dir.path(), &["keys", "generate", "secrets/callbot.keys"]);
    assert!(out.contains("wrote secrets/callbot.keys"), "{out}");
    let generated = dir.path().join("secrets").join("callbot.keys");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&generated)
            .expect("keys file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = fails(dir.path(), &["keys", "generate", "secrets/callbot.keys"]);
    assert!(err.contains("exists"), "{err}");

    // The default database and its default keys file, made on first use.
    ok(dir.path(), &["dnc", "add", "+12125550100"]);
    let keys = dir.path().join("callbot-data").join("callbot.db.keys");
    let old = std::fs::read_to_string(&keys).expect("the default keys file");
    let status = ok(dir.path(), &["keys", "status"]);
    let first = old
        .lines()
        .find_map(|l| l.strip_prefix("key "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a data key line")
        .to_string();
    assert!(
        status.contains(&format!("sealing with: {first}")),
        "{status}"
    );

    let out = ok(dir.path(), &["keys", "rotate"]);
    assert!(out.contains("re-sealed"), "{out}");
    let new = std::fs::read_to_string(&keys).expect("the rotated keys file");
    assert!(!new.contains(&first), "the old key left the file:\n{new}");
    let status = ok(dir.path(), &["keys", "status"]);
    assert!(!status.contains(&first), "{status}");
    let check = ok(dir.path(), &["dnc", "check", "+12125550100"]);
    assert!(check.contains("+12125550100"), "{check}");

    // The keys file from before the rotation no longer opens the database.
    std::fs::write(dir.path().join("old.keys"), &old).expect("old keys");
    let r = Command::new(env!("CARGO_BIN_EXE_callbot"))
        .current_dir(dir.path())
        .env_remove("CALLBOT_DATABASE_URL")
        .env("CALLBOT_KEYS_FILE", "old.keys")
        .args(["dnc", "check", "+12125550100"])
        .output()
        .expect("running callbot");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not have"), "{stderr}");
}

/// `callbot retention`: the policy is shown, set (bad periods refused with the reason) and
/// applied, on the default SQLite database; the purge itself is covered by
/// bot-runtime/tests/retention.rs.
#[test]
fn retention_show_set_apply() {
    let dir = TempDir::new().expect("temporary directory");
    let out = ok(dir.path(), &["retention", "show"]);
    assert!(out.contains("recordings:  kept"), "{out}");
    // A usage error (clap's exit status 2), with the reason.
    let r = callbot(dir.path(), &["retention", "set", "--recordings-days", "0"]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(r.stderr.contains("1 to 36500"), "{r}");
    let out = ok(
        dir.path(),
        &[
            "retention",
            "set",
            "--recordings-days",
            "30",
            "--transcripts-days",
            "365",
        ],
    );
    assert!(out.contains("recordings:  30 days"), "{out}");
    ok(
        dir.path(),
        &["retention", "set", "--transcripts-days", "none"],
    );
    let out = ok(dir.path(), &["retention", "show"]);
    assert!(
        out.contains("recordings:  30 days") && out.contains("transcripts: kept"),
        "{out}"
    );
    let out = ok(dir.path(), &["retention", "apply"]);
    assert!(out.contains("purged 0 recordings"), "{out}");
}

/// `callbot recording`: a recording callbot sealed (as the runtime writes it, with the store's
/// keys) is exported as the plain WAV it was made from; the export is audited; a call without a
/// recording is a clear error.
#[test]
fn recording_export_opens_the_sealed_file() {
    let dir = TempDir::new().expect("temporary directory");
    let url = format!(
        "sqlite://{}",
        dir.path().join("callbot-data").join("callbot.db").display()
    );
    let tone: Vec<i16> = (0..8000)
        .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
        .collect();
    let rt = rt();
    rt.block_on(async {
        let store = Store::open(&url).await.expect("store");
        let mut rec = bot_runtime::recorder::Recorder::new();
        rec.customer(0, &tone);
        rec.robot(500, &tone);
        let mut with = call(1);
        with.recording = Some(
            rec.write(
                &dir.path().join("call-0001.wav.sealed"),
                Some(store.vault()),
            )
            .expect("writing the recording"),
        );
        store.save_call(&with).await.expect("save");
        store.save_call(&call(2)).await.expect("save");
        store.close().await;
    });
    let stored = std::fs::read(dir.path().join("call-0001.wav.sealed")).expect("stored");
    assert!(!stored.starts_with(b"RIFF"));

    let out = ok(
        dir.path(),
        &["recording", "call-0001", "-o", "out.wav", "--actor", "qa"],
    );
    assert!(out.contains("wrote out.wav (1500 ms"), "{out}");
    let reader = hound::WavReader::open(dir.path().join("out.wav")).expect("a WAV");
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader
        .into_samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    assert_eq!(&left[..tone.len()], &tone[..]);

    let err = fails(dir.path(), &["recording", "call-0002", "-o", "none.wav"]);
    assert!(err.contains("has no recording"), "{err}");
    let events = rt.block_on(async {
        let store = Store::open(&url).await.expect("store");
        let e = store.audit_events("default", None, 10).await.expect("log");
        store.close().await;
        e
    });
    assert!(
        events
            .iter()
            .any(|e| e.action == "recording.export" && e.actor == "qa" && e.subject == "call-0001"),
        "{events:?}"
    );
}
