//! Uploaded lead files and DNC files: `bot_runtime::dialer::leads::{LeadReader, import}` (the
//! streaming CSV import with its row-numbered report) and `dialer::dnc_file::read_dnc_csv`.
//! The first byte picks the import options (encoding, delimiter, default region and zone); the
//! rest is the file.
//!
//! Properties: nothing panics; every data row is counted once (`rows = imported + errors`);
//! errors point at a data row (≥ 2: the header is row 1) in increasing order; every lead has a
//! validated E.164 number and at least one zone; the error report writes as CSV with no cell a
//! spreadsheet would run as a formula; a DNC file never yields more entries than rows.
#![no_main]

use std::io::Cursor;

use bot_runtime::dialer::dnc_file::{DncSource, read_dnc_csv};
use bot_runtime::dialer::leads::{Encoding, ImportOptions, LeadReader, import};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use phonenumber::country::Id;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    let opts = ImportOptions {
        default_region: if sel & 0x01 == 0 { Id::US } else { Id::GB },
        default_timezone: (sel & 0x02 != 0).then_some(chrono_tz::Europe::London),
        encoding: match (sel >> 2) & 0x03 {
            0 => Encoding::Auto,
            1 => Encoding::Utf8,
            2 => Encoding::Latin1,
            _ => Encoding::Windows1252,
        },
        delimiter: match (sel >> 4) & 0x03 {
            0 => None,
            1 => Some(b','),
            2 => Some(b';'),
            _ => Some(b'\t'),
        },
    };
    if let Ok(reader) = LeadReader::new(Cursor::new(file), opts) {
        let mut leads = Vec::new();
        if let Ok(report) = import(reader, |lead| leads.push(lead)) {
            assert_eq!(report.rows, report.imported + report.error_count);
            assert_eq!(report.imported, leads.len() as u64);
            assert!(report.duplicates <= report.error_count);
            assert!(report.errors.len() as u64 <= report.error_count);
            let mut last = 1;
            for e in &report.errors {
                assert!(e.row > last, "error rows out of order or on the header");
                last = e.row;
                assert!(!e.message.is_empty());
            }
            for lead in &leads {
                assert!(lead.row >= 2);
                assert!(!lead.timezones.is_empty(), "a lead without a zone");
            }
            let mut out = Vec::new();
            report.write_csv(&mut out).expect("the report writes");
            let mut rd = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(&out[..]);
            let mut n = 0;
            for rec in rd.records() {
                let rec = rec.expect("the report reads back as CSV");
                for cell in rec.iter().skip(1) {
                    assert!(
                        !cell.starts_with(['=', '@', '\t', '\r']),
                        "a formula cell in the report: {cell:?}"
                    );
                }
                n += 1;
            }
            assert_eq!(n, report.errors.len());
        }
    }

    let src = DncSource {
        list: "bank-a".into(),
        source: "import:fuzz.csv".into(),
        added_by: "fuzz".into(),
        region: if sel & 0x01 == 0 { Id::US } else { Id::GB },
        now: Utc
            .timestamp_opt(1_750_000_000, 0)
            .single()
            .expect("a valid instant"),
    };
    if let Ok(dnc) = read_dnc_csv(Cursor::new(file), &src) {
        assert!(dnc.entries.len() as u64 <= dnc.rows);
        assert!(dnc.errors.len() as u64 <= dnc.rows);
        for e in &dnc.errors {
            assert!(e.row >= 2, "a DNC error on row {}: {e:?}", e.row);
            assert!(!e.message.is_empty());
        }
        for e in &dnc.entries {
            assert!(
                e.phone.starts_with('+'),
                "a DNC entry not in E.164: {}",
                e.phone
            );
        }
    }
});
