//! Lead CSV import throughput: a generated 1 M-row file read through `LeadReader`.
//!
//! `cargo bench -p bot-runtime --bench lead_import` (set `LEAD_BENCH_ROWS` for another size).
//! Columns id, name, phone (US/UK, mixed formats), timezone (~20% of rows), debt_id, balance,
//! due_date; ~0.5% bad rows. Measures parsing and validation only (no database).

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use bot_runtime::dialer::leads::{ImportOptions, LeadReader, import, write_sample_csv};

fn main() {
    let rows: u64 = std::env::var("LEAD_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
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

    for round in 0..2 {
        let file = BufReader::with_capacity(1 << 16, File::open(&path).expect("open"));
        let start = Instant::now();
        let reader = LeadReader::new(file, ImportOptions::default()).expect("header");
        let mut zones = 0usize;
        let report = import(reader, |lead| zones += lead.timezones.len()).expect("import");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "lead_import: round {round}: {} rows in {secs:.2} s = {:.0} rows/s ({:.1} MB/s); \
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
}
