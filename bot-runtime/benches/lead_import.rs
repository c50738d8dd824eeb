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
//! apart (`insert_leads`: 500 rows per multi-row INSERT; `assign_leads`: one INSERT per lead),
//! plus the same assignment done as 500-row multi-row INSERTs through a pool of its own: the
//! change suggested for `assign_leads` (BENCHMARKS.md, "Lead import"). On SQLite it also times
//! `insert_leads`' statements written with anonymous `?` placeholders instead of `$N` (into a
//! second tenant), the change suggested for `insert_leads` there. The breakdown covers the first
//! 200 000 rows (`LEAD_BENCH_BREAKDOWN_ROWS`; 0 skips it); `LEAD_BENCH_ONLY=sqlite|postgres`
//! runs one backend.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use bot_runtime::dialer::db::{CampaignKind, NewCampaign, NewLead, Order};
use bot_runtime::dialer::import::{Assign, Filter, import_leads};
use bot_runtime::dialer::leads::{
    ImportOptions, Lead, LeadReader, Report, TzSource, import, write_sample_csv,
};
use bot_runtime::store::{Backend, Store};
use chrono::{DateTime, Utc};
use sqlx::Connection;

const TENANT: &str = "bench-bank";
/// The SQLite breakdown's second tenant, for the `?` placeholder variant of `insert_leads`.
const ANON_TENANT: &str = "bench-bank-q";
const CAMPAIGN: &str = "reminders";
const FLOW: &str = "name: reminder\nversion: 1\n";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// What `import_leads` hands the store at a time (its `CHUNK`).
const CHUNK: usize = 2_000;
/// Rows per multi-row INSERT in the store (its `BATCH`), used by the batched assignment.
const BATCH: usize = 500;

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
/// has it on. Without statistics the duplicate check's cached generic plan scans all the
/// tenant's leads through `leads_by_debt` for every 500-row batch, and the import goes quadratic
/// (BENCHMARKS.md, "Lead import").
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

/// `import::to_new`, which is private.
fn to_new(lead: &Lead) -> NewLead {
    NewLead {
        external_id: lead.external_id.clone(),
        phone: lead.phone.e164.clone(),
        name: lead.name.clone(),
        timezones: lead
            .timezones
            .iter()
            .map(|z| z.name().to_string())
            .collect(),
        tz_source: match lead.timezone_source {
            TzSource::Column => "column",
            TzSource::Number => "number",
            TzSource::Default => "default",
        }
        .into(),
        debt_id: lead.debt_id.clone(),
        fields: lead.fields.clone(),
        source_row: Some(lead.row),
    }
}

/// `insert_leads`' three statements per 500 leads, with SQLite's anonymous `?` placeholders:
/// sqlx-sqlite looks every `$N` up with `sqlite3_bind_parameter_name`, a linear scan of the
/// statement's parameter list, so binding a 6 000-parameter `$N` INSERT is quadratic.
async fn insert_anonymous(pool: &sqlx::AnyPool, tenant: &str, leads: &[NewLead]) -> u64 {
    let mut inserted = 0;
    for batch in leads.chunks(BATCH) {
        let mut tx = pool.begin().await.expect("beginning");
        sqlx::query("UPDATE tenants SET name = name WHERE id = ?")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .expect("the tenant lock");
        let sql = format!(
            "SELECT phone FROM leads WHERE tenant = ? AND phone IN ({})",
            vec!["?"; batch.len()].join(", ")
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(tenant.to_string());
        for l in batch {
            q = q.bind(l.phone.clone());
        }
        let known = q.fetch_all(&mut *tx).await.expect("the duplicate check");
        assert!(known.is_empty(), "a fresh tenant has no leads");
        let sql = format!(
            "INSERT INTO leads (tenant, id, phone, external_id, name, timezones, tz_source, \
             debt_id, fields_json, source, source_row, created_at_us) VALUES {}",
            vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; batch.len()].join(", ")
        );
        let now = Utc::now().timestamp_micros();
        let mut q = sqlx::query(&sql);
        for l in batch {
            q = q
                .bind(tenant.to_string())
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(l.phone.clone())
                .bind(l.external_id.clone())
                .bind(l.name.clone())
                .bind(l.timezones.join(" "))
                .bind(l.tz_source.clone())
                .bind(l.debt_id.clone())
                .bind(serde_json::Value::Object(l.fields.clone()).to_string())
                .bind("leads.csv")
                .bind(l.source_row.and_then(|r| i64::try_from(r).ok()))
                .bind(now);
        }
        inserted += q
            .execute(&mut *tx)
            .await
            .expect("inserting")
            .rows_affected();
        tx.commit().await.expect("committing");
    }
    inserted
}

/// The suggested `assign_leads`: one multi-row `INSERT … SELECT … FROM (VALUES …)` per 500
/// leads (portable: SQLite and PostgreSQL both name VALUES columns `column1`, `column2`).
async fn assign_batched(
    pool: &sqlx::AnyPool,
    tenant: &str,
    campaign: &str,
    ids: &[String],
    first_seq: i64,
    next_at: DateTime<Utc>,
) -> u64 {
    let mut added = 0;
    for (b, batch) in ids.chunks(BATCH).enumerate() {
        let values: Vec<String> = (0..batch.len())
            .map(|i| format!("(${}, ${})", 4 + 2 * i, 5 + 2 * i))
            .collect();
        let sql = format!(
            "INSERT INTO campaign_leads (tenant, campaign, lead, seq, state, next_at_us, attempts) \
             SELECT $1, $2, v.column1, v.column2, 'ready', $3, 0 FROM (VALUES {}) AS v \
             WHERE EXISTS (SELECT 1 FROM leads WHERE tenant = $1 AND id = v.column1) \
             ON CONFLICT (tenant, campaign, lead) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(tenant.to_string())
            .bind(campaign.to_string())
            .bind(next_at.timestamp_micros());
        for (i, id) in batch.iter().enumerate() {
            q = q.bind(id.clone()).bind(first_seq + (b * BATCH + i) as i64);
        }
        let mut tx = pool
            .begin()
            .await
            .expect("beginning the batched assignment");
        added += q
            .execute(&mut *tx)
            .await
            .expect("batched assignment")
            .rows_affected();
        tx.commit()
            .await
            .expect("committing the batched assignment");
    }
    added
}

/// The import's store work with its calls timed apart: `insert_leads`, `assign_leads` (one
/// INSERT per lead), and the batched assignment into a second campaign.
async fn breakdown(label: &str, url: &str, csv: &Path, limit: u64) {
    let store = Store::open(url).await.expect("opening the store");
    setup(&store, &[CAMPAIGN, "batched"]).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("a pool for the batched assignment");
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
    let (mut t_insert, mut t_assign, mut t_batched) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let (mut inserted, mut assigned, mut batched, mut seq) = (0u64, 0u64, 0u64, 1i64);
    let (mut taken, mut good) = (0u64, 0u64);
    let sqlite = store.backend() == Backend::Sqlite;
    if sqlite {
        store
            .ensure_tenant(ANON_TENANT, "Bench bank, ? placeholders")
            .await
            .expect("creating the second tenant");
    }
    let (mut anonymous, mut t_anonymous) = (0u64, Duration::ZERO);
    while taken < limit
        && let Some(chunk) = rx.recv().await
    {
        // Rows of the file this chunk covers: up to its last lead's row (the header is row 1).
        taken = chunk.last().map_or(taken, |l| l.row - 1);
        good += chunk.len() as u64;
        let new: Vec<NewLead> = chunk.iter().map(to_new).collect();
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
        let t = Instant::now();
        batched += assign_batched(&pool, TENANT, "batched", &ids, seq, due).await;
        t_batched += t.elapsed();
        seq += ids.len() as i64;
        if sqlite {
            let t = Instant::now();
            anonymous += insert_anonymous(&pool, ANON_TENANT, &new).await;
            t_anonymous += t.elapsed();
        }
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
         {:.2} s ({:.0} rows/s, overlapped, blocked whenever the store lags); insert_leads {:.2} s ({:.0} rows/s); assign_leads \
         (1 row/INSERT) {:.2} s ({:.0} rows/s); batched assignment (500 rows/INSERT) {:.2} s \
         ({:.0} rows/s); wall {:.2} s",
        t_parse.as_secs_f64(),
        rate(t_parse),
        t_insert.as_secs_f64(),
        rate(t_insert),
        t_assign.as_secs_f64(),
        rate(t_assign),
        t_batched.as_secs_f64(),
        rate(t_batched),
        total.as_secs_f64(),
    );
    println!(
        "lead_import: {label} breakdown: end to end with the batched assignment would be about \
         {:.0} rows/s (insert_leads + batched assignment; parsing runs alongside and is far \
         faster)",
        rows / (t_insert + t_batched).as_secs_f64()
    );
    assert!(
        inserted == good && assigned == good && batched == good,
        "lead_import: {label} breakdown: MISMATCH: {good} good rows, {inserted} inserted, \
         {assigned} assigned one by one, {batched} assigned in batches"
    );
    let both = store
        .campaign_stats(TENANT, "batched", due)
        .await
        .expect("campaign stats")
        .leads;
    assert_eq!(both, good, "lead_import: {label}: batched campaign leads");
    if sqlite {
        println!(
            "lead_import: {label} breakdown: insert_leads' statements with anonymous `?` \
             placeholders instead of `$N` (same 500-row batches, same binds, another tenant): \
             {:.2} s ({:.0} rows/s) against insert_leads' {:.2} s",
            t_anonymous.as_secs_f64(),
            rate(t_anonymous),
            t_insert.as_secs_f64()
        );
        assert_eq!(
            anonymous, good,
            "lead_import: {label}: leads inserted with `?`"
        );
    }
    pool.close().await;
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
