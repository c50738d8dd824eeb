//! The dialer's operator commands as a user runs them (`callbot campaign|leads|dnc|audit`), each
//! scenario on both backends: SQLite (a file in a temporary directory) and PostgreSQL (a fresh
//! database per test, `callbot_cli_<uuid>`, created on the server named by
//! `$CALLBOT_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`,
//! and dropped when the test ends, pass or fail). If that server cannot be reached the PostgreSQL
//! tests FAIL, saying so: they are never skipped.
//!
//! What the commands wrote is read back with `bot_runtime::store::Store`. None of these commands
//! loads a model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bot_runtime::dialer::campaign::CampaignSettings;
use bot_runtime::dialer::db::{CampaignKind, CampaignStatus, DncEntry, Lead, Order};
use bot_runtime::store::{Backend, Store};
use chrono::{DateTime, Utc};
use tempfile::TempDir;

// ----- PostgreSQL: a database per test -----------------------------------------------------

mod pg {
    use std::sync::Mutex;
    use std::time::Duration;

    use sqlx::Connection as _;

    const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// SQLSTATE `object_in_use`: CREATE DATABASE while another session is copying template1.
    const OBJECT_IN_USE: &str = "55006";

    pub fn admin_url() -> String {
        std::env::var("CALLBOT_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
    }

    /// `url` with its database name replaced.
    pub fn with_database(url: &str, name: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let host = before_query.split('/').next().unwrap_or(before_query);
        match query {
            Some(q) => format!("{scheme}://{host}/{name}?{q}"),
            None => format!("{scheme}://{host}/{name}"),
        }
    }

    /// A database that is dropped when this is.
    pub struct Database {
        pub admin_url: String,
        pub name: String,
    }

    impl Database {
        /// Creates `callbot_cli_<uuid>` on the server named by `$CALLBOT_TEST_POSTGRES_URL`,
        /// panicking (never skipping) if that server cannot be reached.
        pub fn create(rt: &tokio::runtime::Runtime) -> Database {
            // CREATE DATABASE copies template1 and fails while another CREATE DATABASE is
            // copying it: one at a time here, and retried for other processes' copies.
            static CREATING: Mutex<()> = Mutex::new(());
            let _guard = CREATING.lock().unwrap_or_else(|e| e.into_inner());
            let admin_url = admin_url();
            let name = format!("callbot_cli_{}", uuid::Uuid::new_v4().simple());
            rt.block_on(async {
                let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
                    Ok(conn) => conn,
                    Err(e) => panic!(
                        "PostgreSQL is required for the postgres::* CLI tests and is unreachable \
                         at {admin_url} ({e}). Start PostgreSQL there or point \
                         CALLBOT_TEST_POSTGRES_URL at one (CI provides it)."
                    ),
                };
                let sql = format!("CREATE DATABASE \"{name}\"");
                let mut tries = 0;
                loop {
                    match sqlx::query(&sql).execute(&mut conn).await {
                        Ok(_) => break,
                        Err(sqlx::Error::Database(e))
                            if e.code().as_deref() == Some(OBJECT_IN_USE) && tries < 50 =>
                        {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("creating test database {name} on {admin_url}: {e}"),
                    }
                }
                conn.close().await.expect("closing the admin connection");
            });
            Database { admin_url, name }
        }
    }

    impl Drop for Database {
        fn drop(&mut self) {
            let admin_url = self.admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            // This may run inside a runtime (a test panicking in `block_on`): drop the database
            // from a thread and runtime of its own.
            let dropped = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                    sqlx::query(&sql).execute(&mut conn).await?;
                    conn.close().await?;
                    anyhow::Ok(())
                })
            })
            .join();
            match dropped {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("could not drop test database {}: {e:#}", self.name),
                Err(_) => eprintln!(
                    "could not drop test database {}: the dropping thread panicked",
                    self.name
                ),
            }
        }
    }
}

// ----- the test environment ----------------------------------------------------------------

/// One test's database, working directory and runtime (for reading back with the store).
struct Env {
    url: String,
    backend: Backend,
    dir: TempDir,
    rt: tokio::runtime::Runtime,
    /// Dropped last of all: the database goes when the test ends, pass or fail.
    _pg: Option<pg::Database>,
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Env {
    /// A fresh directory with a keys file (as an operator makes with `callbot keys generate`).
    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temporary directory");
        bot_runtime::vault::Vault::create_file(&dir.path().join("callbot.keys"))
            .expect("a keys file");
        dir
    }

    fn sqlite() -> Env {
        let dir = Env::dir();
        let url = format!("sqlite://{}", dir.path().join("callbot.db").display());
        Env {
            url,
            backend: Backend::Sqlite,
            dir,
            rt: runtime(),
            _pg: None,
        }
    }

    fn postgres() -> Env {
        let rt = runtime();
        let db = pg::Database::create(&rt);
        Env {
            url: pg::with_database(&db.admin_url, &db.name),
            backend: Backend::Postgres,
            dir: Env::dir(),
            rt,
            _pg: Some(db),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).expect("writing a test file");
        p.display().to_string()
    }

    /// Runs `callbot ARGS --database-url URL` in the test's directory.
    fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args).args(["--database-url", &self.url]);
        finish(&mut cmd)
    }

    /// Runs `callbot ARGS --database-url URL` with `input` on stdin.
    fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut cmd = self.command();
        cmd.args(args)
            .args(["--database-url", &self.url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running callbot");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing stdin");
        let out = child.wait_with_output().expect("callbot output");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `callbot ARGS` with the database given by `$CALLBOT_DATABASE_URL`.
    fn run_with_env_url(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args).env("CALLBOT_DATABASE_URL", &self.url);
        finish(&mut cmd)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callbot"));
        cmd.current_dir(self.dir.path())
            .env_remove("CALLBOT_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove(bot_runtime::vault::KEYS_ENV)
            .env(bot_runtime::vault::KEYS_FILE_ENV, self.keys_file());
        cmd
    }

    /// The keys file the commands and the test's own store share.
    fn keys_file(&self) -> PathBuf {
        self.path("callbot.keys")
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, Some(0), "callbot {args:?} should succeed:\n{r}");
        r.stdout
    }

    /// Runs and expects exit status 1 with an `error: ` line; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, Some(1), "callbot {args:?} should fail:\n{r}");
        assert!(r.stderr.contains("error: "), "callbot {args:?}:\n{r}");
        r.stderr
    }

    /// Opens the database, runs `f` on it, closes it.
    fn with_store<T>(&self, f: impl for<'a> AsyncFnOnce(&'a Store) -> T) -> T {
        self.rt.block_on(async {
            let keys = bot_runtime::vault::Vault::load(&self.keys_file()).expect("the keys file");
            let store = Store::open_with_keys(&self.url, keys)
                .await
                .unwrap_or_else(|e| panic!("opening the store: {e}"));
            assert_eq!(store.backend(), self.backend);
            let out = f(&store).await;
            store.close().await;
            out
        })
    }

    fn leads(&self, tenant: &str) -> Vec<Lead> {
        self.with_store(async |s| s.list_leads(tenant, 1000, 0).await.expect("listing leads"))
    }

    fn dnc(&self, list: &str) -> Vec<DncEntry> {
        self.with_store(async |s| s.list_dnc(list).await.expect("listing DNC entries"))
    }

    /// The numbers assigned to a campaign, by reading them with a claim whose lease is already
    /// over (so nothing about the leads' state changes).
    fn campaign_phones(&self, tenant: &str, campaign: &str) -> Vec<String> {
        self.with_store(async |s| {
            let now = Utc::now();
            // Claims with a lease that ends at once, under a node id of its own each time: the
            // next read's claim releases them (a node never releases its own leases).
            let reader = format!("cli-test-{}", uuid::Uuid::new_v4().simple());
            let mut phones: Vec<String> = s
                .claim_leads(tenant, campaign, &reader, Order::Sequential, now, now, 1000)
                .await
                .expect("reading the campaign's leads")
                .into_iter()
                .map(|c| c.lead.phone)
                .collect();
            phones.sort();
            phones
        })
    }
}

fn finish(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("running callbot");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn flow_file() -> String {
    repo("dialog-flows/flows/card_payment_reminder.yaml")
}

fn fixture(name: &str) -> String {
    repo(&format!("bot-runtime/tests/data/leads/{name}"))
}

/// Whether `text` holds `FILE:LINE:COLUMN: ` for `file`.
fn names_position(text: &str, file: &str) -> bool {
    text.match_indices(&format!("{file}:")).any(|(i, m)| {
        let rest = &text[i + m.len()..];
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().unwrap_or("");
        let col = parts.next().unwrap_or("");
        !line.is_empty()
            && !col.is_empty()
            && line.chars().all(|c| c.is_ascii_digit())
            && col.chars().all(|c| c.is_ascii_digit())
            && parts.next().is_some()
    })
}

/// The rows of a CSV text (header included), every cell as written.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn phones(leads: &[Lead]) -> Vec<&str> {
    leads.iter().map(|l| l.phone.as_str()).collect()
}

fn field<'a>(lead: &'a Lead, name: &str) -> Option<&'a str> {
    lead.fields.get(name).and_then(|v| v.as_str())
}

fn by_phone<'a>(leads: &'a [Lead], phone: &str) -> &'a Lead {
    leads
        .iter()
        .find(|l| l.phone == phone)
        .unwrap_or_else(|| panic!("no lead {phone} in {:?}", phones(leads)))
}

/// Runs each scenario on both backends: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] $(#[$attr])* fn $name() { super::$name(&super::Env::sqlite()); } )*
        }
        mod postgres {
            $( #[test] $(#[$attr])* fn $name() { super::$name(&super::Env::postgres()); } )*
        }
    };
}

on_both!(
    campaign_lifecycle,
    campaign_create_errors,
    lead_import_fixtures,
    lead_import_twice_and_encoding_fix,
    lead_segmentation,
    tenant_isolation,
    dnc_add_check_remove,
    dnc_import_export_round_trip,
    audit_why_without_decisions,
    dnc_check_prefers_the_tenant_list,
    dnc_import_row_numbers_are_lines,
    campaign_errors_do_not_mention_calls,
    agents_and_queues,
);

// ----- 1. campaigns ------------------------------------------------------------------------

fn campaign_lifecycle(env: &Env) {
    let flow = flow_file();
    let out = env.ok(&[
        "campaign",
        "create",
        "reminders",
        "--flow",
        &flow,
        "--max-concurrent",
        "5",
        "--caller-id",
        "+12125550100",
    ]);
    assert_eq!(
        out,
        "campaign reminders created (draft): flow card_payment_reminder v1, robot at most 5 at \
         once\n"
    );
    let source = std::fs::read_to_string(&flow).expect("the sample flow");
    let (campaign, stored_flow) = env.with_store(async |s| {
        (
            s.campaign("default", "reminders")
                .await
                .expect("reading the campaign"),
            s.flow_source("default", "card_payment_reminder", 1)
                .await
                .expect("reading the flow"),
        )
    });
    let c = campaign.expect("the campaign is stored");
    assert_eq!(
        (c.kind, c.status, c.flow.as_str(), c.flow_version),
        (
            CampaignKind::Robot,
            CampaignStatus::Draft,
            "card_payment_reminder",
            1
        )
    );
    assert_eq!(c.caller_id.as_deref(), Some("+12125550100"));
    assert_eq!(c.max_concurrent, 5);
    assert_eq!(
        CampaignSettings::from_value(&c.settings).expect("stored settings"),
        CampaignSettings::default()
    );
    assert_eq!(
        stored_flow.as_deref(),
        Some(source.as_str()),
        "the flow is stored with the campaign"
    );

    let header = "name\tkind\tstatus\tflow\tmax_concurrent\n";
    let list =
        |status: &str| format!("{header}reminders\trobot\t{status}\tcard_payment_reminder v1\t5\n");
    assert_eq!(env.ok(&["campaign", "list"]), list("draft"));
    assert_eq!(
        env.ok(&["campaign", "status", "reminders"]),
        "campaign reminders (robot, draft)\n\
         leads 0: ready 0 (due now 0), in progress 0, done 0\n\
         attempts 0\n"
    );

    // A draft campaign has not started: it cannot be paused.
    let err = env.fails(&["campaign", "pause", "reminders"]);
    assert!(
        err.contains("reminders") && err.contains("a draft campaign cannot become paused"),
        "{err}"
    );

    assert_eq!(
        env.ok(&["campaign", "start", "reminders"]),
        "campaign reminders started (was draft)\n"
    );
    assert_eq!(env.ok(&["campaign", "list"]), list("running"));
    assert_eq!(
        env.ok(&["campaign", "pause", "reminders"]),
        "campaign reminders paused (was running)\n"
    );
    assert_eq!(env.ok(&["campaign", "list"]), list("paused"));
    assert!(
        env.ok(&["campaign", "status", "reminders"])
            .starts_with("campaign reminders (robot, paused)\n")
    );
    assert_eq!(
        env.ok(&["campaign", "resume", "reminders"]),
        "campaign reminders resumed (was paused)\n"
    );
    assert_eq!(
        env.ok(&["campaign", "stop", "reminders"]),
        "campaign reminders stopped (was running)\n"
    );
    assert_eq!(env.ok(&["campaign", "list"]), list("stopped"));

    // Stopped is for good.
    for verb in ["start", "resume"] {
        let err = env.fails(&["campaign", verb, "reminders"]);
        assert!(
            err.contains("reminders") && err.contains("a stopped campaign cannot become running"),
            "{verb}: {err}"
        );
    }
    let err = env.fails(&["campaign", "pause", "reminders"]);
    assert!(
        err.contains("a stopped campaign cannot become paused"),
        "{err}"
    );
    let status = env.with_store(async |s| {
        s.campaign("default", "reminders")
            .await
            .expect("reading the campaign")
            .map(|c| c.status)
    });
    assert_eq!(status, Some(CampaignStatus::Stopped));
    assert_eq!(
        env.ok(&["campaign", "status", "reminders"]),
        "campaign reminders (robot, stopped)\n\
         leads 0: ready 0 (due now 0), in progress 0, done 0\n\
         attempts 0\n"
    );

    // A second campaign on the same (already stored) flow, with settings; listed by name.
    let settings = env.write(
        "settings.json",
        r#"{"order": "loop", "trunk": {"address": "127.0.0.1:5080", "cps": 2.5},
            "amd": false, "default_region": "GB"}"#,
    );
    assert_eq!(
        env.ok(&[
            "campaign",
            "create",
            "agents",
            "--flow",
            &flow,
            "--kind",
            "human",
            "--settings",
            &settings,
        ]),
        "campaign agents created (draft): flow card_payment_reminder v1, human at most 10 at \
         once\n"
    );
    assert_eq!(
        env.ok(&["campaign", "list"]),
        format!(
            "{header}agents\thuman\tdraft\tcard_payment_reminder v1\t10\n\
             reminders\trobot\tstopped\tcard_payment_reminder v1\t5\n"
        )
    );
    let agents = env
        .with_store(async |s| s.campaign("default", "agents").await.expect("reading"))
        .expect("the second campaign");
    let s = CampaignSettings::from_value(&agents.settings).expect("stored settings");
    assert_eq!(s.order, Order::Loop);
    assert_eq!(s.trunk.address, "127.0.0.1:5080");
    assert_eq!(s.trunk.cps, 2.5);
    assert!(!s.amd);
    assert_eq!(s.default_region, "GB");
    assert_eq!(agents.caller_id, None);

    // Unknown campaigns.
    let err = env.fails(&["campaign", "status", "nope"]);
    assert!(
        err.contains(r#"no campaign "nope" for tenant "default""#),
        "{err}"
    );
    let err = env.fails(&["campaign", "start", "nope"]);
    assert!(
        err.contains("nope") && err.contains("no such campaign"),
        "{err}"
    );
}

fn campaign_create_errors(env: &Env) {
    let flow = flow_file();
    let source = std::fs::read_to_string(&flow).expect("the sample flow");

    // Not YAML.
    let bad_yaml = env.write("broken.yaml", "flow: broken\nversion: [1\n");
    let err = env.fails(&["campaign", "create", "c", "--flow", &bad_yaml]);
    assert!(names_position(&err, &bad_yaml), "{err}");
    assert!(err.contains("error[yaml]"), "{err}");

    // Valid YAML, bad flow: an unknown key on line 5.
    let unknown_key = env.write(
        "unknown_key.yaml",
        &source.replacen("version: 1\n", "version: 1\nvoice_speed: fast\n", 1),
    );
    let err = env.fails(&["campaign", "create", "c", "--flow", &unknown_key]);
    assert!(
        err.contains(&format!("{unknown_key}:5:1: error[unknown-key]")),
        "{err}"
    );
    assert!(err.contains("voice_speed"), "{err}");

    // No such file.
    let missing = env.path("missing.yaml").display().to_string();
    let err = env.fails(&["campaign", "create", "c", "--flow", &missing]);
    assert!(err.contains(&missing), "{err}");

    // Settings: every problem names its field (or the line and column of a syntax error).
    for (name, text, expected) in [
        (
            "unknown.json",
            r#"{"ordr": "loop"}"#,
            "unknown field `ordr`",
        ),
        (
            "nested.json",
            r#"{"trunk": {"adress": "127.0.0.1:5060"}}"#,
            "unknown field `adress`",
        ),
        (
            "trunk.json",
            r#"{"trunk": {"address": "nowhere"}}"#,
            r#"trunk.address "nowhere""#,
        ),
        ("cps.json", r#"{"trunk": {"cps": 0}}"#, "trunk.cps"),
        (
            "region.json",
            r#"{"default_region": "XX"}"#,
            r#"default_region "XX""#,
        ),
        ("syntax.json", "{\n  \"order\": }", "line 2, column"),
    ] {
        let path = env.write(name, text);
        let err = env.fails(&[
            "campaign",
            "create",
            "c",
            "--flow",
            &flow,
            "--settings",
            &path,
        ]);
        assert!(
            err.contains(&path) && err.contains(expected),
            "{name}: expected {expected:?} in\n{err}"
        );
    }

    let err = env.fails(&[
        "campaign", "create", "c", "--flow", &flow, "--kind", "robotic",
    ]);
    assert!(
        err.contains(r#"--kind "robotic": expected robot, human or blended"#),
        "{err}"
    );

    // None of these created anything.
    assert_eq!(
        env.ok(&["campaign", "list"]),
        "name\tkind\tstatus\tflow\tmax_concurrent\n"
    );

    // A duplicate name is refused and the first campaign is left as it was.
    env.ok(&["campaign", "create", "c", "--flow", &flow]);
    let err = env.fails(&[
        "campaign",
        "create",
        "c",
        "--flow",
        &flow,
        "--max-concurrent",
        "99",
    ]);
    assert!(
        err.contains("\"c\"") && err.contains("a campaign with this name already exists"),
        "{err}"
    );
    let c = env
        .with_store(async |s| s.campaign("default", "c").await.expect("reading"))
        .expect("the first campaign");
    assert_eq!(c.max_concurrent, 10);

    // Different text under a stored flow version is refused.
    let edited = env.write(
        "edited.yaml",
        &source.replacen(
            "description: Remind a cardholder",
            "description: Gently remind a cardholder",
            1,
        ),
    );
    let err = env.fails(&["campaign", "create", "d", "--flow", &edited]);
    assert!(
        err.contains("card_payment_reminder v1")
            && err.contains("already stored with different text"),
        "{err}"
    );
    let names: Vec<String> = env.with_store(async |s| {
        s.list_campaigns("default", None)
            .await
            .expect("listing")
            .into_iter()
            .map(|c| c.id)
            .collect()
    });
    assert_eq!(names, ["c"]);
}

// ----- 2. leads ----------------------------------------------------------------------------

/// One lead fixture imported through the CLI into a tenant of its own.
struct Fixture {
    file: &'static str,
    args: &'static [&'static str],
    /// rows, imported, refused in the file, already known; `None`: the file is refused whole.
    counts: Option<(u64, u64, u64, u64)>,
    /// Rows in the `--errors` report, in order.
    report_rows: &'static [u64],
    /// Stored leads: (phone, source row), in file order.
    stored: &'static [(&'static str, u64)],
    /// For a refused file: the message.
    error: &'static str,
}

const FIXTURES: &[Fixture] = &[
    Fixture {
        file: "good.csv",
        args: &[],
        counts: Some((5, 5, 0, 0)),
        report_rows: &[],
        stored: &[
            ("+12125550101", 2),
            ("+12135550102", 3),
            ("+861065529988", 4),
            ("+442079460958", 5),
            ("+16025550105", 6),
        ],
        error: "",
    },
    Fixture {
        file: "bad_numbers.csv",
        args: &[],
        counts: Some((8, 2, 6, 0)),
        report_rows: &[3, 4, 5, 6, 7, 8],
        stored: &[("+12125550101", 2), ("+12125550108", 9)],
        error: "",
    },
    Fixture {
        file: "duplicates.csv",
        args: &[],
        counts: Some((6, 3, 3, 0)),
        report_rows: &[4, 5, 6],
        stored: &[
            ("+12125550101", 2),
            ("+12125550102", 3),
            ("+12125550103", 7),
        ],
        error: "",
    },
    Fixture {
        file: "ragged.csv",
        args: &[],
        counts: Some((5, 3, 2, 0)),
        report_rows: &[3, 4],
        stored: &[
            ("+12125550101", 2),
            ("+12125550104", 5),
            ("+12125550105", 6),
        ],
        error: "",
    },
    Fixture {
        file: "empty.csv",
        args: &[],
        counts: None,
        report_rows: &[],
        stored: &[],
        error: "the file is empty (0 bytes)",
    },
    Fixture {
        file: "missing_phone_column.csv",
        args: &[],
        counts: None,
        report_rows: &[],
        stored: &[],
        error: "no phone column; the header has: id, name, email",
    },
    Fixture {
        file: "header_only.csv",
        args: &[],
        counts: Some((0, 0, 0, 0)),
        report_rows: &[],
        stored: &[],
        error: "",
    },
    Fixture {
        file: "quoted_multiline.csv",
        args: &[],
        counts: Some((4, 3, 1, 0)),
        report_rows: &[7],
        stored: &[
            ("+12125550101", 2),
            ("+12125550102", 4),
            ("+12125550104", 9),
        ],
        error: "",
    },
    Fixture {
        file: "semicolons.csv",
        args: &[],
        counts: Some((2, 2, 0, 0)),
        report_rows: &[],
        stored: &[("+12125550101", 2), ("+442079460958", 3)],
        error: "",
    },
    Fixture {
        file: "utf16.csv",
        args: &[],
        counts: Some((3, 3, 0, 0)),
        report_rows: &[],
        stored: &[
            ("+12125550101", 2),
            ("+442079460958", 3),
            ("+861065529988", 4),
        ],
        error: "",
    },
    // Latin-1 read as UTF-8 (the default): the rows with é and ü fail, by row.
    Fixture {
        file: "latin1.csv",
        args: &[],
        counts: Some((3, 1, 2, 0)),
        report_rows: &[2, 4],
        stored: &[("+12125550102", 3)],
        error: "",
    },
    Fixture {
        file: "latin1.csv",
        args: &["--encoding", "latin1"],
        counts: Some((3, 3, 0, 0)),
        report_rows: &[],
        stored: &[
            ("+12125550101", 2),
            ("+12125550102", 3),
            ("+12125550103", 4),
        ],
        error: "",
    },
];

fn lead_import_fixtures(env: &Env) {
    for (i, fx) in FIXTURES.iter().enumerate() {
        let tenant = format!("fixture-{i}");
        let file = fixture(fx.file);
        let report = env.path(&format!("report-{i}.csv"));
        let report_arg = report.display().to_string();
        let mut args = vec![
            "leads",
            "import",
            &file,
            "--tenant",
            &tenant,
            "--errors",
            &report_arg,
        ];
        args.extend(fx.args);
        let r = env.run(&args);
        let what = format!("{} {:?}", fx.file, fx.args);
        let leads = env.leads(&tenant);
        let stored: Vec<(&str, u64)> = leads
            .iter()
            .map(|l| (l.phone.as_str(), l.source_row.unwrap_or(0)))
            .collect();
        assert_eq!(stored, fx.stored, "{what}: stored leads");
        assert!(leads.iter().all(|l| l.source == fx.file), "{what}: source");
        let Some((rows, imported, refused, known)) = fx.counts else {
            assert_eq!(r.code, Some(1), "{what} must be refused:\n{r}");
            assert!(
                r.stderr.contains(&format!("error: {file}: {}", fx.error)),
                "{what}:\n{r}"
            );
            assert!(!report.exists(), "{what}: no report for a refused file");
            continue;
        };
        assert_eq!(r.code, Some(0), "{what}:\n{r}");
        let mut lines = r.stdout.lines();
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "{file}: {rows} rows, {imported} imported, {refused} refused in the file, \
                     {known} already known"
                )
                .as_str()
            ),
            "{what}:\n{r}"
        );
        // Every bad row is printed by its number.
        let printed: Vec<u64> = lines
            .filter_map(|l| l.strip_prefix("  row "))
            .map(|l| {
                l.split([',', ':'])
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a row number")
            })
            .collect();
        assert_eq!(printed, fx.report_rows, "{what}: printed rows\n{r}");
        assert!(
            r.stdout
                .ends_with(&format!("error report: {}\n", report.display())),
            "{what}:\n{r}"
        );
        let text = std::fs::read_to_string(&report).expect("the error report");
        let csv = csv_rows(&text);
        assert_eq!(
            csv.first().map(Vec::as_slice),
            Some(
                ["row", "column", "value", "message"]
                    .map(String::from)
                    .as_slice()
            ),
            "{what}: report header"
        );
        let reported: Vec<u64> = csv[1..]
            .iter()
            .map(|rec| rec[0].parse().expect("a row number"))
            .collect();
        assert_eq!(reported, fx.report_rows, "{what}: report rows\n{text}");
    }

    // What the rows carry, spot-checked per file.
    let good = env.leads("fixture-0");
    let ann = by_phone(&good, "+12125550101");
    assert_eq!(ann.external_id.as_deref(), Some("C001"));
    assert_eq!(ann.name.as_deref(), Some("Ann Lee"));
    assert_eq!(ann.debt_id.as_deref(), Some("L-1"));
    assert_eq!(ann.timezones, ["America/New_York"]);
    assert_eq!(ann.tz_source, "number");
    assert_eq!(field(ann, "balance"), Some("120.50"));
    assert_eq!(
        by_phone(&good, "+12135550102").name.as_deref(),
        Some("Smith, John")
    );
    let wei = by_phone(&good, "+861065529988");
    assert_eq!(
        (wei.timezones.as_slice(), wei.tz_source.as_str()),
        (["Asia/Shanghai".to_string()].as_slice(), "column")
    );
    assert_eq!(
        field(by_phone(&good, "+442079460958"), "balance"),
        Some("0012.00")
    );

    let bad = env.leads("fixture-1");
    let chicago = by_phone(&bad, "+12125550108");
    assert_eq!(chicago.timezones, ["America/Chicago"]);

    let report = std::fs::read_to_string(env.path("report-1.csv")).expect("report");
    let csv = csv_rows(&report);
    assert_eq!(
        csv[1],
        [
            "3",
            "phone",
            "12ab",
            "is not a valid phone number (letters in number)"
        ]
    );
    assert_eq!(csv[5][1], "timezone");
    assert_eq!(csv[5][2], "Mars/Olympus");

    let report = std::fs::read_to_string(env.path("report-2.csv")).expect("report");
    assert_eq!(
        report,
        "row,column,value,message\n\
         4,phone,(212) 555-0101,duplicate of row 2\n\
         5,phone,001 212 555 0101,duplicate of row 2\n\
         6,phone,212.555.0102,duplicate of row 3\n"
    );
    let report = std::fs::read_to_string(env.path("report-3.csv")).expect("report");
    assert_eq!(
        report,
        "row,column,value,message\n\
         3,,,\"row has 5 fields, header has 6\"\n\
         4,,,\"row has 7 fields, header has 6\"\n"
    );

    let multiline = env.leads("fixture-7");
    assert_eq!(
        field(by_phone(&multiline, "+12125550101"), "notes"),
        Some("called twice, no answer\r\nleft message")
    );
    assert_eq!(
        by_phone(&multiline, "+12125550102").name.as_deref(),
        Some("Bob \"Bobby\" Jones")
    );

    let semicolons = env.leads("fixture-8");
    let first = by_phone(&semicolons, "+12125550101");
    assert_eq!(first.external_id.as_deref(), Some("1"));
    assert_eq!(field(first, "Balance"), Some("1.234,50"));
    assert_eq!(
        by_phone(&semicolons, "+442079460958").name.as_deref(),
        Some("Bob; Jr")
    );

    let utf16 = env.leads("fixture-9");
    let names: Vec<_> = utf16
        .iter()
        .map(|l| l.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["Zoë Adams", "Łukasz, Nowak", "北京 Li"]);

    let report = std::fs::read_to_string(env.path("report-10.csv")).expect("report");
    let csv = csv_rows(&report);
    assert!(
        csv[1..].iter().all(|r| r[1] == "name"
            && r[3].starts_with("is not valid UTF-8")
            && r[3].contains("Latin-1")),
        "{report}"
    );
    let latin1 = env.leads("fixture-11");
    let names: Vec<_> = latin1
        .iter()
        .map(|l| l.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["José García", "Ann Lee", "Jürgen Müller"]);
}

fn lead_import_twice_and_encoding_fix(env: &Env) {
    let good = fixture("good.csv");
    let first = env.ok(&["leads", "import", &good]);
    assert!(
        first.starts_with(&format!(
            "{good}: 5 rows, 5 imported, 0 refused in the file, 0 already known\n"
        )),
        "{first}"
    );
    let before = env.leads("default");
    let report = env.path("again.csv").display().to_string();
    let again = env.ok(&["leads", "import", &good, "--errors", &report]);
    assert_eq!(
        again,
        format!(
            "{good}: 5 rows, 0 imported, 0 refused in the file, 5 already known\n  \
             row 2: +12125550101 is already a lead of this tenant\n  \
             row 3: +12135550102 is already a lead of this tenant\n  \
             row 4: +861065529988 is already a lead of this tenant\n  \
             row 5: +442079460958 is already a lead of this tenant\n  \
             row 6: +16025550105 is already a lead of this tenant\n\
             error report: {report}\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(&report).expect("report"),
        "row,column,value,message\n\
         2,phone,+12125550101,already a lead of this tenant\n\
         3,phone,+12135550102,already a lead of this tenant\n\
         4,phone,+861065529988,already a lead of this tenant\n\
         5,phone,+442079460958,already a lead of this tenant\n\
         6,phone,+16025550105,already a lead of this tenant\n"
    );
    assert_eq!(
        env.leads("default"),
        before,
        "a second import changes nothing"
    );

    // A file with bad rows, twice: the file's own errors and the known numbers, both by row.
    let dups = fixture("duplicates.csv");
    env.ok(&["leads", "import", &dups, "--tenant", "dups"]);
    let report = env.path("dups.csv").display().to_string();
    let out = env.ok(&[
        "leads", "import", &dups, "--tenant", "dups", "--errors", &report,
    ]);
    assert!(
        out.starts_with(&format!(
            "{dups}: 6 rows, 0 imported, 3 refused in the file, 3 already known\n"
        )),
        "{out}"
    );
    let rows: Vec<(String, String)> = csv_rows(&std::fs::read_to_string(&report).expect("report"))
        [1..]
        .iter()
        .map(|r| (r[0].clone(), r[3].clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("4", "duplicate of row 2"),
            ("5", "duplicate of row 2"),
            ("6", "duplicate of row 3"),
            ("2", "already a lead of this tenant"),
            ("3", "already a lead of this tenant"),
            ("7", "already a lead of this tenant"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(env.leads("dups").len(), 3);

    // Latin-1 read as UTF-8 first, then again with the right encoding: the rows that failed
    // come in, the one that got through is reported as known and left as it was.
    let latin1 = fixture("latin1.csv");
    let out = env.ok(&["leads", "import", &latin1, "--tenant", "l1"]);
    assert!(
        out.contains("3 rows, 1 imported, 2 refused in the file"),
        "{out}"
    );
    let kept = by_phone(&env.leads("l1"), "+12125550102").clone();
    let report = env.path("latin1.csv").display().to_string();
    let out = env.ok(&[
        "leads",
        "import",
        &latin1,
        "--tenant",
        "l1",
        "--encoding",
        "latin1",
        "--errors",
        &report,
    ]);
    assert!(
        out.starts_with(&format!(
            "{latin1}: 3 rows, 2 imported, 0 refused in the file, 1 already known\n  \
             row 3: +12125550102 is already a lead of this tenant\n"
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&report).expect("report"),
        "row,column,value,message\n3,phone,+12125550102,already a lead of this tenant\n"
    );
    let leads = env.leads("l1");
    assert_eq!(leads.len(), 3);
    assert_eq!(
        by_phone(&leads, "+12125550101").name.as_deref(),
        Some("José García")
    );
    assert_eq!(
        by_phone(&leads, "+12125550103").name.as_deref(),
        Some("Jürgen Müller")
    );
    assert_eq!(by_phone(&leads, "+12125550102"), &kept);

    let err = env.fails(&[
        "leads",
        "import",
        &latin1,
        "--encoding",
        "ebcdic",
        "--tenant",
        "x",
    ]);
    assert!(
        err.contains(r#"--encoding "ebcdic": expected auto, utf8, latin1 or windows1252"#),
        "{err}"
    );
    assert!(env.leads("x").is_empty());
}

const SEGMENT_CSV: &str = "phone,first_name,amount_due,due_date,card_number\n\
    212 555 0201,Ann,50,2026-12-01,4111\n\
    212 555 0202,Bob,100,2026-12-02,4222\n\
    212 555 0203,Cy,250.75,2026-12-03,4333\n\
    212 555 0204,Di,99.99,2026-12-04,4444\n\
    212 555 0205,Ed,,2026-12-05,4555\n";

fn lead_segmentation(env: &Env) {
    let flow = flow_file();
    env.ok(&["campaign", "create", "reminders", "--flow", &flow]);
    let file = env.write("segment.csv", SEGMENT_CSV);

    let out = env.ok(&[
        "leads",
        "import",
        &file,
        "--campaign",
        "reminders",
        "--where",
        "amount_due>=100",
    ]);
    assert_eq!(
        out,
        format!(
            "{file}: 5 rows, 5 imported, 0 refused in the file, 0 already known\n\
             2 leads assigned to campaign reminders\n"
        )
    );
    assert_eq!(env.leads("default").len(), 5, "every good row is a lead");
    let stats = env.with_store(async |s| {
        s.campaign_stats("default", "reminders", Utc::now())
            .await
            .expect("stats")
    });
    assert_eq!(
        (
            stats.leads,
            stats.ready,
            stats.due,
            stats.done,
            stats.attempts
        ),
        (2, 2, 2, 0, 0)
    );
    assert_eq!(
        env.ok(&["campaign", "status", "reminders"]),
        "campaign reminders (robot, draft)\n\
         leads 2: ready 2 (due now 2), in progress 0, done 0\n\
         attempts 0\n"
    );
    assert_eq!(
        env.campaign_phones("default", "reminders"),
        ["+12125550202", "+12125550203"]
    );

    // Known leads are assigned too; several conditions must all hold (`~`: contains, any case).
    let out = env.ok(&[
        "leads",
        "import",
        &file,
        "--campaign",
        "reminders",
        "--where",
        "amount_due<100",
        "--where",
        "first_name~A",
    ]);
    assert!(
        out.starts_with(&format!(
            "{file}: 5 rows, 0 imported, 0 refused in the file, 5 already known\n\
             1 leads assigned to campaign reminders\n"
        )),
        "{out}"
    );
    assert_eq!(
        env.campaign_phones("default", "reminders"),
        ["+12125550201", "+12125550202", "+12125550203"]
    );
    // Leads already in the campaign are not counted again; a lead without the field never
    // matches a comparison.
    let out = env.ok(&[
        "leads",
        "import",
        &file,
        "--campaign",
        "reminders",
        "--where",
        "amount_due < 100",
    ]);
    assert!(
        out.contains("\n1 leads assigned to campaign reminders\n"),
        "{out}"
    );
    assert_eq!(
        env.campaign_phones("default", "reminders"),
        [
            "+12125550201",
            "+12125550202",
            "+12125550203",
            "+12125550204"
        ]
    );
    assert_eq!(env.leads("default").len(), 5);

    // Without a filter, every imported lead is assigned.
    env.ok(&["campaign", "create", "all", "--flow", &flow]);
    let out = env.ok(&["leads", "import", &file, "--campaign", "all"]);
    assert!(
        out.contains("\n5 leads assigned to campaign all\n"),
        "{out}"
    );

    // The campaign's default_region reads national numbers.
    let settings = env.write("gb.json", r#"{"default_region": "GB"}"#);
    env.ok(&[
        "campaign",
        "create",
        "uk",
        "--flow",
        &flow,
        "--settings",
        &settings,
        "--tenant",
        "uk",
    ]);
    let uk = env.write("uk.csv", "phone,first_name\n020 7946 0958,Olivia\n");
    let out = env.ok(&["leads", "import", &uk, "--campaign", "uk", "--tenant", "uk"]);
    assert!(out.contains("1 leads assigned to campaign uk"), "{out}");
    assert_eq!(phones(&env.leads("uk")), ["+442079460958"]);

    // Refused before anything is read: nothing imported.
    env.ok(&[
        "campaign",
        "create",
        "reminders",
        "--flow",
        &flow,
        "--tenant",
        "seg-errors",
    ]);
    for (args, expected) in [
        (
            vec!["--where", "amount_due>=100"],
            "--where needs --campaign",
        ),
        (
            vec!["--campaign", "reminders", "--where", "amount_due"],
            "filter \"amount_due\": expected FIELD OP VALUE",
        ),
        (
            vec!["--campaign", "nope"],
            r#"no campaign "nope" for tenant "seg-errors""#,
        ),
        (
            vec!["--region", "Narnia"],
            r#"--region "Narnia" is not an ISO 3166 region code"#,
        ),
        (
            vec!["--timezone", "Mars/Olympus"],
            r#"--timezone "Mars/Olympus" is not an IANA timezone"#,
        ),
    ] {
        let mut all = vec!["leads", "import", file.as_str(), "--tenant", "seg-errors"];
        all.extend(args);
        let err = env.fails(&all);
        assert!(err.contains(expected), "{all:?}: {err}");
    }
    assert!(env.leads("seg-errors").is_empty());
}

fn tenant_isolation(env: &Env) {
    let good = fixture("good.csv");
    for tenant in ["a", "b"] {
        let out = env.ok(&["leads", "import", &good, "--tenant", tenant]);
        assert!(
            out.starts_with(&format!(
                "{good}: 5 rows, 5 imported, 0 refused in the file, 0 already known\n"
            )),
            "{tenant}: {out}"
        );
    }
    let (a, b) = (env.leads("a"), env.leads("b"));
    assert_eq!(phones(&a), phones(&b));
    assert_eq!(a.len(), 5);
    assert!(
        a.iter().all(|l| b.iter().all(|m| m.id != l.id)),
        "each tenant has leads of its own"
    );
    assert!(env.leads("default").is_empty());

    let flow = flow_file();
    env.ok(&[
        "campaign",
        "create",
        "reminders",
        "--flow",
        &flow,
        "--tenant",
        "a",
    ]);
    let header = "name\tkind\tstatus\tflow\tmax_concurrent\n";
    assert_eq!(env.ok(&["campaign", "list", "--tenant", "b"]), header);
    assert_eq!(
        env.ok(&["campaign", "list", "--tenant", "a"]),
        format!("{header}reminders\trobot\tdraft\tcard_payment_reminder v1\t10\n")
    );
    let err = env.fails(&["campaign", "status", "reminders", "--tenant", "b"]);
    assert!(
        err.contains(r#"no campaign "reminders" for tenant "b""#),
        "{err}"
    );
    let err = env.fails(&["campaign", "start", "reminders", "--tenant", "b"]);
    assert!(err.contains("no such campaign"), "{err}");
    let err = env.fails(&[
        "leads",
        "import",
        &good,
        "--tenant",
        "b",
        "--campaign",
        "reminders",
    ]);
    assert!(
        err.contains(r#"no campaign "reminders" for tenant "b""#),
        "{err}"
    );

    // Tenant b may use the same name; its campaign and a's move independently.
    env.ok(&[
        "campaign",
        "create",
        "reminders",
        "--flow",
        &flow,
        "--tenant",
        "b",
    ]);
    env.ok(&["campaign", "start", "reminders", "--tenant", "b"]);
    let out = env.ok(&[
        "leads",
        "import",
        &good,
        "--tenant",
        "b",
        "--campaign",
        "reminders",
    ]);
    assert!(
        out.contains("5 leads assigned to campaign reminders"),
        "{out}"
    );
    assert!(
        env.ok(&["campaign", "status", "reminders", "--tenant", "a"])
            .starts_with("campaign reminders (robot, draft)\nleads 0:"),
    );
    assert!(
        env.ok(&["campaign", "status", "reminders", "--tenant", "b"])
            .starts_with("campaign reminders (robot, running)\nleads 5:"),
    );
    assert!(env.campaign_phones("a", "reminders").is_empty());
    assert_eq!(env.campaign_phones("b", "reminders").len(), 5);
}

// ----- 3. DNC ------------------------------------------------------------------------------

/// The time in `…since TIME (…` of a `dnc check` line.
fn since(line: &str) -> DateTime<Utc> {
    let rest = line.split(" since ").nth(1).expect("a since time");
    rest.split(' ')
        .next()
        .and_then(|t| t.parse().ok())
        .expect("an RFC 3339 time")
}

fn dnc_add_check_remove(env: &Env) {
    assert_eq!(
        env.ok(&[
            "dnc",
            "add",
            "(212) 555-0101",
            "--reason",
            "customer asked",
            "--by",
            "agent7"
        ]),
        "+12125550101 added to the default do-not-call list\n"
    );
    let check = env.ok(&["dnc", "check", "212 555 0101"]);
    assert!(
        check.starts_with("+12125550101: BLOCKED by the default list since ")
            && check.ends_with(" (customer asked, source cli, by agent7)\n"),
        "{check}"
    );
    let entries = env.dnc("default");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (
            e.tenant.as_str(),
            e.phone.as_str(),
            e.reason.as_str(),
            e.source.as_str(),
            e.added_by.as_str(),
            e.expires_at
        ),
        (
            "default",
            "+12125550101",
            "customer asked",
            "cli",
            "agent7",
            None
        )
    );
    assert_eq!(since(&check), e.added_at);
    assert!((Utc::now() - e.added_at).num_seconds() < 120);

    // The tenant's list is its own.
    assert_eq!(
        env.ok(&["dnc", "check", "2125550101", "--tenant", "b"]),
        "+12125550101: not on any do-not-call list\n"
    );

    // The global list blocks every tenant.
    assert_eq!(
        env.ok(&[
            "dnc",
            "add",
            "+1 212 555 0102",
            "--global",
            "--reason",
            "regulator list"
        ]),
        "+12125550102 added to the global do-not-call list\n"
    );
    for tenant in ["default", "b"] {
        let check = env.ok(&["dnc", "check", "2125550102", "--tenant", tenant]);
        assert!(
            check.starts_with("+12125550102: BLOCKED by the global list since ")
                && check.ends_with(" (regulator list, source cli, by cli)\n"),
            "{tenant}: {check}"
        );
    }
    assert_eq!(phones_of(&env.dnc("*")), ["+12125550102"]);
    assert_eq!(phones_of(&env.dnc("default")), ["+12125550101"]);

    // An entry that expired no longer blocks; one that will expire says until when.
    env.ok(&[
        "dnc",
        "add",
        "2125550103",
        "--expires",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(
        env.ok(&["dnc", "check", "2125550103"]),
        "+12125550103: not on any do-not-call list\n"
    );
    env.ok(&[
        "dnc",
        "add",
        "2125550104",
        "--expires",
        "2099-01-31T00:00:00Z",
    ]);
    let check = env.ok(&["dnc", "check", "2125550104"]);
    assert!(
        check.starts_with("+12125550104: BLOCKED by the default list")
            && check.ends_with(", until 2099-01-31T00:00:00+00:00\n"),
        "{check}"
    );
    let expiries: BTreeMap<String, Option<DateTime<Utc>>> = env
        .dnc("default")
        .into_iter()
        .map(|e| (e.phone, e.expires_at))
        .collect();
    let t = |s: &str| Some(s.parse::<DateTime<Utc>>().expect("a time"));
    assert_eq!(
        expiries,
        BTreeMap::from([
            ("+12125550101".to_string(), None),
            ("+12125550103".to_string(), t("2020-01-01T00:00:00Z")),
            ("+12125550104".to_string(), t("2099-01-31T00:00:00Z")),
        ])
    );

    // Adding again replaces the entry.
    env.ok(&["dnc", "add", "2125550104", "--reason", "bereavement"]);
    let check = env.ok(&["dnc", "check", "2125550104"]);
    assert!(
        check.contains("(bereavement, source cli, by cli)\n") && !check.contains("until"),
        "{check}"
    );

    // Remove.
    assert_eq!(
        env.ok(&["dnc", "remove", "212-555-0101"]),
        "+12125550101 removed from the default do-not-call list\n"
    );
    assert_eq!(
        env.ok(&["dnc", "check", "2125550101"]),
        "+12125550101: not on any do-not-call list\n"
    );
    let err = env.fails(&["dnc", "remove", "2125550101"]);
    assert!(
        err.contains("+12125550101 is not on the default list"),
        "{err}"
    );
    // A global entry is removed from the global list only.
    let err = env.fails(&["dnc", "remove", "2125550102"]);
    assert!(
        err.contains("+12125550102 is not on the default list"),
        "{err}"
    );
    assert_eq!(
        env.ok(&["dnc", "remove", "2125550102", "--global"]),
        "+12125550102 removed from the global do-not-call list\n"
    );
    assert_eq!(
        env.ok(&["dnc", "check", "2125550102", "--tenant", "b"]),
        "+12125550102: not on any do-not-call list\n"
    );
    assert!(env.dnc("*").is_empty());

    // Bad input changes nothing.
    let err = env.fails(&["dnc", "add", "12ab"]);
    assert!(err.contains("\"12ab\""), "{err}");
    let err = env.fails(&["dnc", "check", "555"]);
    assert!(err.contains("\"555\""), "{err}");
    let r = env.run(&["dnc", "add", "2125550109", "--expires", "next tuesday"]);
    assert_eq!(r.code, Some(2), "clap refuses a bad time:\n{r}");
    assert!(r.stderr.contains("--expires"), "{r}");
    assert_eq!(
        phones_of(&env.dnc("default")),
        ["+12125550103", "+12125550104"]
    );
}

fn phones_of(entries: &[DncEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.phone.as_str()).collect()
}

fn dnc_import_export_round_trip(env: &Env) {
    let file = env.write(
        "dnc.csv",
        "phone,reason,expires_at\n\
         212 555 0111,asked,\n\
         12ab,bad,\n\
         212 555 0113,,2099-01-01T00:00:00Z\n\
         212 555 0114,x,not-a-date\n\
         +44 20 7946 0958,\"bereavement, family\",\n",
    );
    let r = env.run(&["dnc", "import", &file]);
    assert_eq!(r.code, Some(0), "{r}");
    assert_eq!(
        r.stdout,
        format!("{file}: 3 numbers added to the default list, 2 rows refused\n")
    );
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{r}");
    assert!(
        errors[0].starts_with("row 3, column phone: \"12ab\""),
        "{r}"
    );
    assert!(
        errors[1].starts_with("row 5, column expires_at: \"not-a-date\"")
            && errors[1].contains("RFC 3339"),
        "{r}"
    );
    let stored = env.dnc("default");
    let summary: Vec<(&str, &str, Option<DateTime<Utc>>)> = stored
        .iter()
        .map(|e| (e.phone.as_str(), e.reason.as_str(), e.expires_at))
        .collect();
    assert_eq!(
        summary,
        [
            ("+12125550111", "asked", None),
            (
                "+12125550113",
                "imported",
                Some("2099-01-01T00:00:00Z".parse().expect("a time"))
            ),
            ("+442079460958", "bereavement, family", None),
        ]
    );
    let source = format!("import:{file}");
    assert!(
        stored
            .iter()
            .all(|e| e.source == source && e.added_by == "cli")
    );
    let check = env.ok(&["dnc", "check", "+442079460958"]);
    assert!(check.contains("BLOCKED by the default list"), "{check}");

    env.ok(&[
        "dnc",
        "add",
        "2125550120",
        "--global",
        "--reason",
        "regulator",
    ]);

    // Export: CSV that parses back to exactly the stored entries.
    let exported = env.ok(&["dnc", "export"]);
    let rows = csv_rows(&exported);
    assert_eq!(
        rows[0],
        [
            "phone",
            "reason",
            "source",
            "added_by",
            "added_at",
            "expires_at"
        ]
    );
    let parsed: Vec<DncEntry> = rows[1..]
        .iter()
        .map(|r| DncEntry {
            tenant: "default".into(),
            phone: r[0].clone(),
            reason: r[1].clone(),
            source: r[2].clone(),
            added_by: r[3].clone(),
            added_at: r[4].parse().expect("added_at"),
            expires_at: (!r[5].is_empty()).then(|| r[5].parse().expect("expires_at")),
        })
        .collect();
    assert_eq!(parsed, stored);
    let global = csv_rows(&env.ok(&["dnc", "export", "--global"]));
    assert_eq!(global.len(), 2, "{global:?}");
    assert_eq!(
        (global[1][0].as_str(), global[1][1].as_str()),
        ("+12125550120", "regulator")
    );

    // Round trip: the export imports into another tenant's list as the same entries.
    let copy = env.write("exported.csv", &exported);
    let out = env.ok(&["dnc", "import", &copy, "--tenant", "copy", "--by", "ops"]);
    assert_eq!(
        out,
        format!("{copy}: 3 numbers added to the copy list, 0 rows refused\n")
    );
    let copied: Vec<(String, String, Option<DateTime<Utc>>)> = env
        .dnc("copy")
        .into_iter()
        .map(|e| (e.phone, e.reason, e.expires_at))
        .collect();
    let original: Vec<(String, String, Option<DateTime<Utc>>)> = stored
        .into_iter()
        .map(|e| (e.phone, e.reason, e.expires_at))
        .collect();
    assert_eq!(copied, original);
    assert!(env.dnc("copy").iter().all(|e| e.added_by == "ops"));

    // Into the global list.
    let g = env.write("global.csv", "Phone\n212 555 0130\n");
    let out = env.ok(&["dnc", "import", &g, "--global"]);
    assert_eq!(
        out,
        format!("{g}: 1 numbers added to the global list, 0 rows refused\n")
    );
    assert_eq!(phones_of(&env.dnc("*")), ["+12125550120", "+12125550130"]);

    // A file without a phone column is refused whole.
    let bad = env.write("nophone.csv", "number,reason\n2125550140,x\n");
    let err = env.fails(&["dnc", "import", &bad]);
    assert!(
        err.contains("no `phone` column (found: number, reason)"),
        "{err}"
    );
    let missing = env.path("missing.csv").display().to_string();
    let err = env.fails(&["dnc", "import", &missing]);
    assert!(err.contains(&missing), "{err}");
    assert_eq!(env.dnc("default").len(), 3);
}

fn dnc_check_prefers_the_tenant_list(env: &Env) {
    env.ok(&["dnc", "add", "2125550301", "--reason", "tenant reason"]);
    env.ok(&[
        "dnc",
        "add",
        "2125550301",
        "--global",
        "--reason",
        "global reason",
    ]);
    let check = env.ok(&["dnc", "check", "2125550301"]);
    assert!(
        check.contains("BLOCKED by the default list") && check.contains("(tenant reason,"),
        "Store::dnc_check: \"its own list, then the global one\"; got {check}"
    );
}

fn dnc_import_row_numbers_are_lines(env: &Env) {
    // Line 1 header, 2 blank, 3 good, 4 bad, 5–6 a quoted two-line reason, 7 bad.
    let file = env.write(
        "rows.csv",
        "phone,reason\n\n212 555 0401,a\n12ab,b\n212 555 0402,\"two\nlines\"\n12cd,c\n",
    );
    let r = env.run(&["dnc", "import", &file]);
    assert_eq!(r.code, Some(0), "{r}");
    let rows: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.split(',').next())
        .collect();
    assert_eq!(rows, ["row 4", "row 7"], "{r}");
}

fn campaign_errors_do_not_mention_calls(env: &Env) {
    let flow = flow_file();
    env.ok(&["campaign", "create", "c", "--flow", &flow]);
    for args in [
        vec!["campaign", "create", "c", "--flow", flow.as_str()],
        vec!["campaign", "pause", "c"],
        vec!["campaign", "start", "nope"],
    ] {
        let err = env.fails(&args);
        assert!(!err.contains("cannot save call"), "{args:?}: {err}");
    }
}

// ----- 4. audit ----------------------------------------------------------------------------

fn audit_why_without_decisions(env: &Env) {
    assert_eq!(
        env.ok(&["audit", "why", "(212) 555-0101"]),
        "+12125550101: no dial decision recorded for tenant default\n"
    );
    // A DNC entry is not a dial decision.
    env.ok(&["dnc", "add", "2125550101"]);
    assert_eq!(
        env.ok(&[
            "audit",
            "why",
            "2125550101",
            "--at",
            "2026-01-01T09:30:00Z",
            "--tenant",
            "acme"
        ]),
        "+12125550101: no dial decision recorded for tenant acme\n"
    );
    // The database from $CALLBOT_DATABASE_URL.
    let r = env.run_with_env_url(&["audit", "why", "+44 20 7946 0958"]);
    assert_eq!(r.code, Some(0), "{r}");
    assert_eq!(
        r.stdout,
        "+442079460958: no dial decision recorded for tenant default\n"
    );
    let err = env.fails(&["audit", "why", "12ab"]);
    assert!(err.contains("\"12ab\""), "{err}");
    let decisions = env.with_store(async |s| {
        s.decisions_for_phone("default", "+12125550101", None)
            .await
            .expect("reading decisions")
    });
    assert!(decisions.is_empty());
    // Nothing was written next to the test: every command used the test's database.
    assert!(!env.path("callbot-data").exists());
}

// ----- agents and queues -------------------------------------------------------------------

fn agents_and_queues(env: &Env) {
    // An agent with a SIP phone: console password, then SIP password, on stdin.
    let r = env.run_stdin(
        &[
            "agents",
            "add",
            "--id",
            "ann",
            "--name",
            "Ann Agent",
            "--skills",
            "collections=3,disputes=5",
            "--sip-user",
            "ann-phone",
        ],
        "correct horse\nphone-secret\n",
    );
    assert_eq!(r.code, Some(0), "{r}");
    // No password on stdin, a bad skill level: refused with the reason, nothing saved.
    let r = env.run_stdin(&["agents", "add", "--id", "bob", "--name", "Bob"], "");
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("no console password on stdin"), "{r}");
    let r = env.run_stdin(
        &[
            "agents",
            "add",
            "--id",
            "bob",
            "--name",
            "Bob",
            "--skills",
            "collections=11",
        ],
        "pw\n",
    );
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("1 to 10"), "{r}");
    let listed = env.ok(&["agents", "list"]);
    assert!(
        listed.contains("ann\tAnn Agent\tagent\tcollections=3,disputes=5\tann-phone\tfalse"),
        "{listed}"
    );
    assert!(!listed.contains("bob"), "{listed}");
    let (hash, sip) = env.with_store(async |s| {
        let a = s
            .agent("default", "ann")
            .await
            .expect("read")
            .expect("saved");
        (
            a.password_hash,
            s.sip_accounts().await.expect("sip accounts"),
        )
    });
    assert!(
        admin_api::auth::verify_password("correct horse", &hash),
        "{hash}"
    );
    assert_eq!(
        sip.get("ann-phone").map(String::as_str),
        Some("phone-secret")
    );

    // Queues: an overflow must name a queue that exists.
    let err = env.fails(&[
        "queues",
        "set",
        "collections",
        "--skills",
        "collections=2",
        "--overflow-to",
        "general",
        "--overflow-after",
        "30",
    ]);
    assert!(err.contains("general"), "{err}");
    env.ok(&["queues", "set", "general", "--priority", "9"]);
    env.ok(&[
        "queues",
        "set",
        "collections",
        "--skills",
        "collections=2",
        "--priority",
        "1",
        "--overflow-to",
        "general",
        "--overflow-after",
        "30",
        "--wrap-up",
        "20",
    ]);
    let queues = env.ok(&["queues", "list"]);
    assert_eq!(queues.lines().count(), 2, "{queues}");
    assert!(queues.contains("\"name\":\"collections\""), "{queues}");

    // Admin API tokens: printed once, listed without the token, revoked.
    let token = env.ok(&["tokens", "create", "--name", "ops", "--role", "auditor"]);
    let token = token.trim();
    assert!(token.starts_with("cb_"), "{token}");
    let err = env.fails(&["tokens", "create", "--name", "ops", "--role", "root"]);
    assert!(err.contains("unknown role"), "{err}");
    let listed = env.ok(&["tokens", "list"]);
    assert!(listed.contains("\tops\tauditor\t"), "{listed}");
    assert!(
        !listed.contains(token),
        "the token itself is never shown again"
    );
    let id = listed
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .expect("a token id")
        .to_string();
    env.ok(&["tokens", "revoke", &id]);
    let err = env.fails(&["tokens", "revoke", &id]);
    assert!(err.contains("no live token"), "{err}");
    // The deployment operator's token: the role platform, in the tenant `*` only.
    let platform = env.ok(&[
        "tokens", "create", "--tenant", "*", "--role", "platform", "--name", "ops",
    ]);
    assert!(platform.trim().starts_with("cb_"), "{platform}");
    let err = env.fails(&["tokens", "create", "--role", "platform", "--name", "ops"]);
    assert!(err.contains("platform"), "{err}");

    env.ok(&["agents", "disable", "ann"]);
    let sip = env.with_store(async |s| s.sip_accounts().await.expect("sip accounts"));
    assert!(
        sip.is_empty(),
        "a disabled agent's phone cannot register: {sip:?}"
    );
}
