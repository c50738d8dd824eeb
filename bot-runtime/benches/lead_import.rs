//! Lead CSV import throughput over a generated 1 M-row file: the parser alone, then the whole
//! import into the store (`dialer::import::import_leads`, assigning every lead to a campaign) on
//! SQLite and on PostgreSQL, then a breakdown of where the store's time goes.
//!
//! `cargo bench -p bot-runtime --bench lead_import [-- ROWS]` (default 1 000 000 rows; the
//! `LEAD_BENCH_ROWS` variable is read when no count is given). PostgreSQL: a fresh database
//! `callbot_bench_<uuid>` is created on `$CALLBOT_BENCH_POSTGRES_URL` (else
//! `$CALLBOT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`) for each run and
//! dropped afterwards; set `LEAD_BENCH_SKIP_POSTGRES=1` to run without a server.
//!
//! Columns id, name, phone (US/UK, mixed formats), timezone (~20% of rows), debt_id, balance,
//! due_date; ~0.5% bad rows. Every figure is rows of the file per second of wall time, end to end
//! (the file read, parsed and validated on a blocking thread while the async side writes).
//! After each import the stored leads are counted and must equal the file's good rows, and the
//! campaign must hold all of them; the bench fails loudly otherwise.
//!
//! The breakdown re-runs the import into another fresh database with the two store calls timed
//! apart, fed the same 2 000-lead chunks `import_leads` hands the store: `insert_leads` (one
//! `INSERT … ON CONFLICT (tenant, phone) DO NOTHING RETURNING` per 500 leads) and `assign_leads`
//! (500 rows per INSERT). It covers the first 200 000 rows (`LEAD_BENCH_BREAKDOWN_ROWS`; 0 skips
//! it) and checks that every good row was inserted and assigned. `LEAD_BENCH_ONLY=sqlite|postgres`
//! runs one backend; on PostgreSQL `LEAD_BENCH_PG_ANALYZE_SECS` sets how often the tables are
//! analysed while an import runs (see `analyze_ticker`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use bot_runtime::dialer::db::{CampaignKind, NewCampaign, NewLead, Order};
use bot_runtime::dialer::import::{Assign, Filter, import_leads};
use bot_runtime::dialer::leads::{
    ImportOptions, Lead, LeadReader, Report, import, write_sample_csv,
};
use bot_runtime::store::{Backend, Store};
use chrono::Utc;
use sqlx::Connection;

const TENANT: &str = "bench-bank";
const CAMPAIGN: &str = "reminders";
const FLOW: &str = "name: reminder\nversion: 1\n";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// What `import_leads` hands the store at a time (its `CHUNK`).
const CHUNK: usize = 2_000;

/// The row count: the first argument that is not a flag (`cargo bench` adds `--bench`), else
/// `LEAD_BENCH_ROWS`, else 1 M.
fn rows_arg() -> u64 {
    if let Some(arg) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        let arg = arg.replace('_', "");
        return arg
            .parse()
            .unwrap_or_else(|_| panic!("the row count must be a number, got {arg:?}"));
    }
    std::env::var("LEAD_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn main() {
    let rows = rows_arg();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leads.csv");
    let start = Instant::now();
    write_sample_csv(File::create(&path).expect("create"), rows, 42).expect("write");
    let size = std::fs::metadata(&path).expect("metadata").len();
    println!(
        "lead_import: generated {rows} rows, {:.1} MB in {:.2} s",
        size as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );

    let mut parse_rate = 0.0f64;
    for round in 0..2 {
        let file = BufReader::with_capacity(1 << 16, File::open(&path).expect("open"));
        let start = Instant::now();
        let reader = LeadReader::new(file, ImportOptions::default()).expect("header");
        let mut zones = 0usize;
        let report = import(reader, |lead| zones += lead.timezones.len()).expect("import");
        let secs = start.elapsed().as_secs_f64();
        parse_rate = parse_rate.max(report.rows as f64 / secs);
        println!(
            "lead_import: parse round {round}: {} rows in {secs:.2} s = {:.0} rows/s ({:.1} MB/s); \
             imported {}, errors {} (duplicates {}), {:.2} zones/lead",
            report.rows,
            report.rows as f64 / secs,
            size as f64 / 1e6 / secs,
            report.imported,
            report.error_count,
            report.duplicates,
            zones as f64 / report.imported.max(1) as f64
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let only = std::env::var("LEAD_BENCH_ONLY").unwrap_or_default();
    let skip_pg =
        std::env::var("LEAD_BENCH_SKIP_POSTGRES").is_ok_and(|v| v == "1") || only == "sqlite";
    let skip_sqlite = only == "postgres";
    let breakdown_rows: u64 = std::env::var("LEAD_BENCH_BREAKDOWN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
        .min(rows);

    // End to end.
    if !skip_sqlite {
        let db_dir = tempfile::tempdir().expect("temp dir for SQLite");
        let url = sqlite_url(&db_dir.path().join("import.db"));
        let rate = runtime.block_on(import_end_to_end("sqlite", &url, &path));
        println!(
            "lead_import: sqlite: import is {:.1}x slower than the parser",
            parse_rate / rate
        );
    }
    if !skip_pg {
        let pg = PgDb::create(&runtime);
        let rate = runtime.block_on(import_end_to_end("postgres", &pg.url, &path));
        println!(
            "lead_import: postgres: import is {:.1}x slower than the parser",
            parse_rate / rate
        );
    }

    // Where the store's time goes.
    if breakdown_rows == 0 {
        return;
    }
    if !skip_sqlite {
        let db_dir = tempfile::tempdir().expect("temp dir for SQLite");
        let url = sqlite_url(&db_dir.path().join("breakdown.db"));
        runtime.block_on(breakdown("sqlite", &url, &path, breakdown_rows));
    }
    if !skip_pg {
        let pg = PgDb::create(&runtime);
        runtime.block_on(breakdown("postgres", &pg.url, &path, breakdown_rows));
    }
}

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}", file.display())
}

/// Tenant, flow and campaign.
async fn setup(store: &Store, campaigns: &[&str]) {
    store
        .ensure_tenant(TENANT, "Bench bank")
        .await
        .expect("creating the tenant");
    store
        .save_flow(TENANT, "reminder", 1, FLOW)
        .await
        .expect("saving the flow");
    for id in campaigns {
        store
            .create_campaign(
                TENANT,
                &NewCampaign {
                    id: (*id).to_string(),
                    kind: CampaignKind::Robot,
                    flow: "reminder".into(),
                    flow_version: 1,
                    caller_id: Some("+12125550100".into()),
                    max_concurrent: 100,
                    settings: serde_json::json!({}),
                },
            )
            .await
            .expect("creating the campaign");
    }
}

/// Leads of `tenant` in the database, counted on a connection of its own.
async fn stored_leads(url: &str, tenant: &str) -> u64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("connecting to count the leads");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE tenant = $1")
        .bind(tenant.to_string())
        .fetch_one(&mut conn)
        .await
        .expect("counting the leads");
    let _ = conn.close().await;
    u64::try_from(n).expect("a count is not negative")
}

/// On PostgreSQL, `ANALYZE leads, campaign_leads` every `LEAD_BENCH_PG_ANALYZE_SECS` seconds
/// (default 10; 0: never) while an import runs: what autovacuum's analyze does on a server that
/// has it on, so the figures are those of a server with fresh statistics. Set it to 0 to see
/// the import on tables that were never analysed.
fn analyze_ticker(store: &Store, url: &str) -> Option<tokio::task::JoinHandle<()>> {
    let secs: u64 = std::env::var("LEAD_BENCH_PG_ANALYZE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    if store.backend() != Backend::Postgres || secs == 0 {
        return None;
    }
    let url = url.to_string();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        tick.tick().await;
        loop {
            tick.tick().await;
            let analysed = async {
                let mut conn = sqlx::AnyConnection::connect(&url).await?;
                sqlx::query("ANALYZE leads, campaign_leads")
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            };
            if let Err(e) = analysed.await {
                eprintln!("lead_import: ANALYZE failed: {e}");
            }
        }
    }))
}

/// Imports the file with `import_leads`, checks the result; returns rows/s.
async fn import_end_to_end(label: &str, url: &str, csv: &Path) -> f64 {
    let store = Store::open(url).await.expect("opening the store");
    setup(&store, &[CAMPAIGN]).await;
    let due = Utc::now();
    let file = BufReader::with_capacity(1 << 16, File::open(csv).expect("open"));
    let ticker = analyze_ticker(&store, url);
    let start = Instant::now();
    let summary = import_leads(
        &store,
        TENANT,
        "leads.csv",
        file,
        ImportOptions::default(),
        Some(Assign {
            campaign: CAMPAIGN.into(),
            filter: Filter::default(),
            order: Order::Sequential,
            due,
        }),
    )
    .await
    .expect("importing the leads");
    let secs = start.elapsed().as_secs_f64();
    if let Some(t) = ticker {
        t.abort();
    }
    let rate = summary.file.rows as f64 / secs;
    let stored = stored_leads(url, TENANT).await;
    let in_campaign = store
        .campaign_stats(TENANT, CAMPAIGN, due)
        .await
        .expect("campaign stats")
        .leads;
    println!(
        "lead_import: {label}: {} rows in {secs:.2} s = {rate:.0} rows/s end to end; \
         row errors {} (duplicates {}), inserted {}, already known {}, assigned {}; \
         stored leads {stored}, in the campaign {in_campaign}",
        summary.file.rows,
        summary.file.error_count,
        summary.file.duplicates,
        summary.inserted,
        summary.already_known.len(),
        summary.assigned,
    );
    let good = summary.file.imported;
    assert!(
        stored == good
            && summary.inserted == good
            && summary.assigned == good
            && in_campaign == good
            && summary.file.rows == good + summary.file.error_count,
        "lead_import: {label}: MISMATCH: {good} good rows of {} ({} errors), but {stored} leads \
         stored, {} inserted, {} assigned, {in_campaign} in the campaign",
        summary.file.rows,
        summary.file.error_count,
        summary.inserted,
        summary.assigned,
    );
    store.close().await;
    rate
}

/// The import's store work with its two calls timed apart: `insert_leads` and `assign_leads`.
async fn breakdown(label: &str, url: &str, csv: &Path, limit: u64) {
    let store = Store::open(url).await.expect("opening the store");
    setup(&store, &[CAMPAIGN]).await;
    let due = Utc::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Lead>>(4);
    let csv = csv.to_path_buf();
    let ticker = analyze_ticker(&store, url);
    let start = Instant::now();
    let reader = tokio::task::spawn_blocking(move || -> (Report, Duration) {
        let start = Instant::now();
        let file = BufReader::with_capacity(1 << 16, File::open(csv).expect("open"));
        let reader = LeadReader::new(file, ImportOptions::default()).expect("header");
        let mut chunk = Vec::with_capacity(CHUNK);
        let report = import(reader, |lead| {
            chunk.push(lead);
            if chunk.len() >= CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                // Closed once the store side has `limit` rows; the rest is only parsed.
                let _ = tx.blocking_send(full);
            }
        })
        .expect("parsing");
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        (report, start.elapsed())
    });
    let (mut t_insert, mut t_assign) = (Duration::ZERO, Duration::ZERO);
    let (mut inserted, mut assigned) = (0u64, 0u64);
    let (mut taken, mut good) = (0u64, 0u64);
    while taken < limit
        && let Some(chunk) = rx.recv().await
    {
        // Rows of the file this chunk covers: up to its last lead's row (the header is row 1).
        taken = chunk.last().map_or(taken, |l| l.row - 1);
        good += chunk.len() as u64;
        let new: Vec<NewLead> = chunk.iter().map(NewLead::from).collect();
        let t = Instant::now();
        let report = store
            .insert_leads(TENANT, "leads.csv", &new)
            .await
            .expect("insert_leads");
        t_insert += t.elapsed();
        inserted += report.inserted;
        let ids: Vec<String> = chunk
            .iter()
            .filter_map(|l| report.ids.get(&l.phone.e164).cloned())
            .collect();
        let t = Instant::now();
        assigned += store
            .assign_leads(TENANT, CAMPAIGN, &ids, Order::Sequential, due)
            .await
            .expect("assign_leads");
        t_assign += t.elapsed();
    }
    let total = start.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }
    drop(rx);
    let (report, t_parse) = reader.await.expect("the parsing thread");
    let t_parse = t_parse.mul_f64(taken as f64 / report.rows.max(1) as f64);
    let rows = taken as f64;
    let rate = |d: Duration| rows / d.as_secs_f64();
    println!(
        "lead_import: {label} breakdown over the first {taken} rows ({good} good): parse thread \
         {:.2} s ({:.0} rows/s, overlapped, blocked whenever the store lags); insert_leads {:.2} s \
         ({:.0} rows/s); assign_leads {:.2} s ({:.0} rows/s); store calls together {:.0} rows/s; \
         wall {:.2} s",
        t_parse.as_secs_f64(),
        rate(t_parse),
        t_insert.as_secs_f64(),
        rate(t_insert),
        t_assign.as_secs_f64(),
        rate(t_assign),
        rate(t_insert + t_assign),
        total.as_secs_f64(),
    );
    let in_campaign = store
        .campaign_stats(TENANT, CAMPAIGN, due)
        .await
        .expect("campaign stats")
        .leads;
    assert!(
        inserted == good && assigned == good && in_campaign == good,
        "lead_import: {label} breakdown: MISMATCH: {good} good rows, {inserted} inserted, \
         {assigned} assigned, {in_campaign} in the campaign"
    );
    store.close().await;
}

/// A fresh PostgreSQL database, dropped when this goes away (even on a panic).
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("CALLBOT_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("CALLBOT_TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
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

impl PgDb {
    fn create(runtime: &tokio::runtime::Runtime) -> PgDb {
        let admin_url = admin_url();
        let name = format!("callbot_bench_{}", uuid::Uuid::new_v4().simple());
        runtime.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is unreachable at {admin_url} ({e}); start it, point \
                         CALLBOT_BENCH_POSTGRES_URL at one, or set LEAD_BENCH_SKIP_POSTGRES=1"
                    )
                });
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
            let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| format!("unknown ({e})"));
            println!(
                "lead_import: postgres: fresh database {name}; server autovacuum {autovacuum}"
            );
            let _ = conn.close().await;
        });
        PgDb {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // A runtime of its own, on a thread of its own: this may run inside another runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop database {}: {e:#}", self.name),
            Err(_) => eprintln!("could not drop database {}: the thread panicked", self.name),
        }
    }
}
