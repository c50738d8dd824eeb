//! Lead claims per second (`Store::claim_leads`) with concurrent dialer nodes, each on a
//! connection pool of its own: PostgreSQL with 2 nodes, SQLite with 1 and 2, for claim batch
//! sizes 1, 10 and 50.
//!
//! `cargo bench -p bot-runtime --bench lead_claims [-- LEADS [MAX_SECS]]`: a campaign of LEADS
//! leads (default 200 000) per run; each node loops `claim_leads(…, Order::Sequential, now,
//! now + 10 min, batch)` until it gets nothing back or the run has lasted MAX_SECS seconds
//! (default 20; 0: no limit). The leads are assigned to a fresh campaign for every run (the
//! previous run's campaign rows are deleted first, and PostgreSQL's table is vacuumed and
//! analysed, as autovacuum would), so every run starts from the same unleased campaign.
//!
//! Checked after every run, failing loudly otherwise: no lead was handed to two claims, the
//! store holds exactly the claimed leads as leased, and, when the run was not cut by MAX_SECS,
//! every lead was claimed.
//!
//! `claim_leads` releases the campaign's expired leases (through `campaign_leads_leased`), then
//! takes unleased due leads in `seq` order through the partial index `campaign_leads_claimable`
//! (migration `0002_dialer.sql`), stopping after `batch` rows, so a call's cost should not grow
//! with the campaign: compare the ms/call figures across LEADS.
//!
//! PostgreSQL: a fresh database `callbot_bench_<uuid>` on `$CALLBOT_BENCH_POSTGRES_URL` (else
//! `$CALLBOT_TEST_POSTGRES_URL`, else `postgres://postgres@127.0.0.1:5432/test`), dropped at the
//! end; `LEAD_BENCH_SKIP_POSTGRES=1` skips it. SQLite: a file in a temporary directory.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_runtime::dialer::db::{CampaignKind, NewCampaign, NewLead, Order};
use bot_runtime::store::{Backend, Store};
use chrono::{DateTime, Utc};
use sqlx::Connection;

const TENANT: &str = "bench-bank";
const FLOW: &str = "name: reminder\nversion: 1\n";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const BATCHES: [u32; 3] = [1, 10, 50];

/// LEADS and MAX_SECS: the arguments that are not flags (`cargo bench` adds `--bench`).
fn args() -> (usize, Option<Duration>) {
    let nums: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.replace('_', ""))
        .collect();
    let leads = nums.first().map_or(200_000, |a| {
        a.parse()
            .unwrap_or_else(|_| panic!("LEADS must be a number, got {a:?}"))
    });
    let secs: u64 = nums.get(1).map_or(20, |a| {
        a.parse()
            .unwrap_or_else(|_| panic!("MAX_SECS must be a number, got {a:?}"))
    });
    (leads, (secs > 0).then(|| Duration::from_secs(secs)))
}

fn main() {
    let (n, cap) = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "lead_claims: {n} leads per campaign, runs capped at {}, tokio worker threads: {}",
        cap.map_or("nothing".to_string(), |c| format!("{} s", c.as_secs())),
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    if !std::env::var("LEAD_BENCH_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        let pg = PgDb::create(&runtime);
        runtime.block_on(bench_backend("postgres", &pg.url, n, cap, &[2]));
    }
    let dir = tempfile::tempdir().expect("temp dir for SQLite");
    let url = format!("sqlite://{}", dir.path().join("claims.db").display());
    runtime.block_on(bench_backend("sqlite", &url, n, cap, &[1, 2]));
}

fn lead(i: usize) -> NewLead {
    let mut fields = serde_json::Map::new();
    fields.insert(
        "balance".into(),
        serde_json::json!(format!("{}.50", i % 5000)),
    );
    NewLead {
        external_id: Some(format!("ext-{i}")),
        // Unique NANP-shaped numbers.
        phone: format!("+1{}", 2_002_000_000 + i as u64),
        name: Some(format!("Customer {i}")),
        timezones: vec!["America/New_York".into()],
        tz_source: "number".into(),
        debt_id: Some(format!("debt-{i}")),
        fields,
        source_row: Some(i as u64 + 2),
    }
}

/// A connection of the bench's own, for housekeeping the Store has no call for.
async fn admin_exec(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url)
        .await
        .expect("a housekeeping connection");
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn bench_backend(
    label: &str,
    url: &str,
    n: usize,
    cap: Option<Duration>,
    node_counts: &[usize],
) {
    let store = Store::open(url).await.expect("opening the store");
    store
        .ensure_tenant(TENANT, "Bench bank")
        .await
        .expect("creating the tenant");
    store
        .save_flow(TENANT, "reminder", 1, FLOW)
        .await
        .expect("saving the flow");
    let start = Instant::now();
    let new: Vec<NewLead> = (0..n).map(lead).collect();
    let inserted = store
        .insert_leads(TENANT, "bench", &new)
        .await
        .expect("inserting the leads")
        .inserted;
    assert_eq!(inserted, n as u64, "lead_claims: {label}: leads inserted");
    drop(new);
    let ids: Vec<String> = store
        .list_leads(TENANT, u32::try_from(n).expect("LEADS fits u32"), 0)
        .await
        .expect("listing the leads")
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids.len(), n, "lead_claims: {label}: leads listed");
    println!(
        "lead_claims: {label}: {n} leads inserted in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut previous: Option<String> = None;
    for &node_count in node_counts {
        for batch in BATCHES {
            if let Some(old) = previous.take() {
                admin_exec(
                    url,
                    &format!(
                        "DELETE FROM campaign_leads WHERE tenant = '{TENANT}' AND campaign = '{old}'"
                    ),
                )
                .await;
            }
            let campaign = format!("claims-{node_count}n-b{batch}");
            let start = Instant::now();
            store
                .create_campaign(
                    TENANT,
                    &NewCampaign {
                        id: campaign.clone(),
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
            let due = Utc::now() - chrono::Duration::hours(1);
            let added = store
                .assign_leads(TENANT, &campaign, &ids, Order::Sequential, due)
                .await
                .expect("assigning the leads");
            assert_eq!(added, n as u64, "lead_claims: {label}: leads assigned");
            if store.backend() == Backend::Postgres {
                // What autovacuum does after this much churn (simple protocol: VACUUM cannot
                // run in the implicit transaction of a prepared statement).
                for sql in ["VACUUM ANALYZE campaign_leads", "ANALYZE leads"] {
                    let mut conn = sqlx::AnyConnection::connect(url)
                        .await
                        .expect("a housekeeping connection");
                    sqlx::raw_sql(sql)
                        .execute(&mut conn)
                        .await
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    let _ = conn.close().await;
                }
            }
            let setup = start.elapsed();
            run(
                label, url, &store, &campaign, n, node_count, batch, cap, setup,
            )
            .await;
            previous = Some(campaign);
        }
    }
    store.close().await;
}

/// What one node did.
struct NodeResult {
    name: String,
    leads: Vec<String>,
    claimed: usize,
    calls: u64,
    elapsed: Duration,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    label: &str,
    url: &str,
    store: &Store,
    campaign: &str,
    n: usize,
    node_count: usize,
    batch: u32,
    cap: Option<Duration>,
    setup: Duration,
) {
    let now: DateTime<Utc> = Utc::now();
    let lease_until = now + chrono::Duration::minutes(10);
    let barrier = Arc::new(tokio::sync::Barrier::new(node_count + 1));
    let mut tasks = Vec::new();
    for i in 0..node_count {
        // A pool of its own, as a separate dialer process would have.
        let node_store = Store::open(url).await.expect("opening a node's store");
        let barrier = Arc::clone(&barrier);
        let campaign = campaign.to_string();
        let name = format!("node-{}", i + 1);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let mut leads = Vec::new();
            let mut claimed = 0usize;
            let mut calls = 0u64;
            loop {
                if cap.is_some_and(|c| start.elapsed() >= c) {
                    break;
                }
                let batch_got = node_store
                    .claim_leads(
                        TENANT,
                        &campaign,
                        &name,
                        Order::Sequential,
                        now,
                        lease_until,
                        batch,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{name}: claiming: {e}"));
                let got = batch_got.len();
                leads.extend(batch_got.into_iter().map(|c| c.lead.id));
                calls += 1;
                if got == 0 {
                    break;
                }
                assert!(got <= batch as usize, "{name}: more than asked for");
                claimed += got;
            }
            let elapsed = start.elapsed();
            node_store.close().await;
            NodeResult {
                name,
                leads,
                claimed,
                calls,
                elapsed,
            }
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("a node panicked"));
    }
    let wall = start.elapsed().as_secs_f64();

    let claimed: usize = results.iter().map(|r| r.claimed).sum();
    let mut seen = HashSet::with_capacity(claimed);
    let mut twice = 0usize;
    for r in &results {
        for id in &r.leads {
            if !seen.insert(id.as_str()) {
                twice += 1;
            }
        }
    }
    let leased = store
        .campaign_stats(TENANT, campaign, now)
        .await
        .expect("campaign stats")
        .leased;
    let capped = claimed < n;
    let per_node: Vec<String> = results
        .iter()
        .map(|r| {
            let secs = r.elapsed.as_secs_f64();
            format!(
                "{} {} leads in {} calls, {secs:.2} s = {:.0} claims/s ({:.2} ms/call)",
                r.name,
                r.claimed,
                r.calls,
                r.claimed as f64 / secs,
                secs * 1e3 / r.calls.max(1) as f64
            )
        })
        .collect();
    println!(
        "lead_claims: {label}: claim_leads, {node_count} node(s), batch {batch:>2}: {claimed} of \
         {n} leads claimed in {wall:.2} s = {:.0} claims/s total{}; {}; setup {:.1} s",
        claimed as f64 / wall,
        if capped { " (cut at the time cap)" } else { "" },
        per_node.join("; "),
        setup.as_secs_f64()
    );
    assert_eq!(
        twice, 0,
        "lead_claims: {label}: {twice} leads were claimed twice"
    );
    assert_eq!(
        leased, claimed as u64,
        "lead_claims: {label}: the store has {leased} leads leased, the nodes claimed {claimed}"
    );
    if cap.is_none_or(|c| results.iter().all(|r| r.elapsed < c)) {
        assert_eq!(
            claimed,
            n,
            "lead_claims: {label}: the nodes stopped with {} leads unclaimed",
            n - claimed
        );
    }
}

/// A fresh PostgreSQL database, dropped when this goes away (even on a panic).
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
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
        let admin_url = std::env::var("CALLBOT_BENCH_POSTGRES_URL")
            .or_else(|_| std::env::var("CALLBOT_TEST_POSTGRES_URL"))
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
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
