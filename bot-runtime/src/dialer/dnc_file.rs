//! Do-not-call files: a CSV of numbers (column `phone`, optional `reason` and `expires_at`),
//! read into entries with a row-numbered report of the rows refused, the good rows kept. Used
//! by `callbot dnc import` and `POST /api/v1/dnc/bulk`.

use std::io::Read;

use chrono::{DateTime, Utc};
use phonenumber::country::Id;
use serde::Serialize;

use super::db::DncEntry;
use super::phone;

/// A refused row: its line in the file (the header is line 1), the column and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DncRowError {
    pub row: u64,
    pub column: Option<String>,
    pub message: String,
}

/// What a DNC file held.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DncFile {
    pub rows: u64,
    /// The good rows' entries (a number given twice is kept once, the later row winning).
    #[serde(skip)]
    pub entries: Vec<DncEntry>,
    pub errors: Vec<DncRowError>,
}

/// Who adds the entries of a file, and how to read national numbers.
#[derive(Debug, Clone)]
pub struct DncSource {
    /// The list: a tenant, or `*` for the global list.
    pub list: String,
    /// `import:FILE`, `api`…
    pub source: String,
    pub added_by: String,
    pub region: Id,
    /// Expiries at or before this are refused (an entry that would never block).
    pub now: DateTime<Utc>,
}

/// Reads a DNC CSV. A file that cannot be read at all (no header, no `phone` column, not
/// UTF-8 in its header) is an error; a bad row is reported and skipped.
///
/// # Errors
/// The reason the file as a whole is unusable.
pub fn read_dnc_csv<R: Read>(input: R, src: &DncSource) -> Result<DncFile, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        // Records end at `\n` only: with csv's default CRLF terminator a record's position points
        // at the `\n` of the previous line in CRLF files, one line early (as in `leads`). A `\r`
        // before the `\n` stays in the last cell, which is trimmed.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("reading the header: {e}"))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err("the file is empty (a header with a `phone` column is needed)".into());
    }
    let col = |name: &str| headers.iter().position(|h| h == name);
    let Some(phone_col) = col("phone") else {
        return Err(format!("no `phone` column (found: {})", headers.join(", ")));
    };
    let (reason_col, expires_col) = (col("reason"), col("expires_at"));
    let mut out = DncFile::default();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for rec in reader.records() {
        out.rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map(|p| p.line()).unwrap_or(0);
                out.errors.push(DncRowError {
                    row,
                    column: None,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let row = rec.position().map(|p| p.line()).unwrap_or(0);
        let refuse = |column: &str, message: String| DncRowError {
            row,
            column: Some(column.to_string()),
            message,
        };
        let raw = rec.get(phone_col).unwrap_or("").trim();
        let number = match phone::normalize(raw, src.region) {
            Ok(n) => n.e164,
            Err(e) => {
                out.errors.push(refuse("phone", format!("{raw:?}: {e}")));
                continue;
            }
        };
        let expires_at = match expires_col.and_then(|c| rec.get(c)).map(str::trim) {
            None | Some("") => None,
            Some(t) => match t.parse::<DateTime<Utc>>() {
                Ok(t) if t <= src.now => {
                    out.errors
                        .push(refuse("expires_at", format!("{t} is in the past")));
                    continue;
                }
                Ok(t) => Some(t),
                Err(e) => {
                    out.errors.push(refuse(
                        "expires_at",
                        format!("{t:?}: {e} (expected RFC 3339)"),
                    ));
                    continue;
                }
            },
        };
        let entry = DncEntry {
            tenant: src.list.clone(),
            phone: number.clone(),
            reason: reason_col
                .and_then(|c| rec.get(c))
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("imported")
                .to_string(),
            source: src.source.clone(),
            added_by: src.added_by.clone(),
            added_at: src.now,
            expires_at,
        };
        match at.get(&number) {
            Some(&i) => out.entries[i] = entry,
            None => {
                at.insert(number, out.entries.len());
                out.entries.push(entry);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> DncSource {
        DncSource {
            list: "bank".into(),
            source: "api".into(),
            added_by: "test".into(),
            region: Id::US,
            now: "2026-01-01T00:00:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn good_rows_kept_bad_rows_reported_by_line() {
        let csv = "phone,reason,expires_at\n\
                   +12125550100,asked,\n\
                   not a number,x,\n\
                   (212) 555-0101,,2027-01-01T00:00:00Z\n\
                   +12125550102,x,2001-01-01T00:00:00Z\n\
                   +12125550103,x,next week\n\
                   +12125550100,asked again,\n";
        let f = read_dnc_csv(csv.as_bytes(), &src()).expect("file");
        assert_eq!(f.rows, 6);
        let phones: Vec<&str> = f.entries.iter().map(|e| e.phone.as_str()).collect();
        assert_eq!(phones, ["+12125550100", "+12125550101"]);
        assert_eq!(f.entries[0].reason, "asked again", "the later row wins");
        assert_eq!(f.entries[1].reason, "imported");
        assert!(f.entries[1].expires_at.is_some());
        let rows: Vec<(u64, Option<&str>)> = f
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                (3, Some("phone")),
                (5, Some("expires_at")),
                (6, Some("expires_at"))
            ]
        );
    }

    /// Found by fuzzing (`fuzz/seeds/lead_csv/dnc_crlf`): in a CRLF file every row was reported
    /// one line early (the first data row as line 1, the header's).
    #[test]
    fn crlf_files_report_the_right_lines() {
        let csv = "phone,reason\r\n+12125550100,asked\r\nnot a number,x\r\n\
                   +12125550101,x\r\nnope\r\n+12125550102\r\n";
        let f = read_dnc_csv(csv.as_bytes(), &src()).expect("file");
        assert_eq!(f.rows, 5);
        let phones: Vec<&str> = f.entries.iter().map(|e| e.phone.as_str()).collect();
        assert_eq!(phones, ["+12125550100", "+12125550101", "+12125550102"]);
        assert_eq!(f.entries[0].reason, "asked", "no CR left in the last cell");
        let rows: Vec<u64> = f.errors.iter().map(|e| e.row).collect();
        assert_eq!(rows, [3, 5]);
    }

    #[test]
    fn unusable_files_are_refused_whole() {
        assert!(read_dnc_csv("".as_bytes(), &src()).is_err());
        let e = read_dnc_csv("number,reason\n+12125550100,x\n".as_bytes(), &src())
            .expect_err("no phone column");
        assert!(e.contains("no `phone` column"), "{e}");
    }
}
