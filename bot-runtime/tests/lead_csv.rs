//! Lead CSV import over the fixture files in `tests/data/leads/`: every good row comes out, every
//! bad row gives an error at the exact line its record starts on.

use std::fs::File;
use std::path::PathBuf;

use bot_runtime::dialer::leads::{
    Encoding, ImportError, ImportOptions, Lead, LeadReader, Report, RowError, RowErrorKind,
    TzSource, import,
};
use chrono_tz::{America, Asia, Europe};
use serde_json::Value;

fn fixture(name: &str) -> File {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "leads", name]
        .iter()
        .collect();
    File::open(&path).expect("fixture exists")
}

fn open(name: &str, opts: ImportOptions) -> Result<LeadReader<File>, ImportError> {
    LeadReader::new(fixture(name), opts)
}

fn read_all(name: &str, opts: ImportOptions) -> (Vec<Lead>, Vec<RowError>) {
    let mut leads = Vec::new();
    let mut errors = Vec::new();
    for outcome in open(name, opts).expect("file opens") {
        match outcome {
            Ok(lead) => leads.push(lead),
            Err(e) => errors.push(e),
        }
    }
    (leads, errors)
}

fn rows(leads: &[Lead]) -> Vec<u64> {
    leads.iter().map(|l| l.row).collect()
}

fn error_rows(errors: &[RowError]) -> Vec<u64> {
    errors.iter().map(|e| e.row).collect()
}

#[test]
fn good_file_with_crlf_and_quoted_comma() {
    let reader = open("good.csv", ImportOptions::default()).expect("opens");
    assert_eq!(
        reader.headers(),
        ["id", "name", "phone", "timezone", "debt_id", "balance"]
    );
    assert_eq!(reader.delimiter(), b',');
    let (leads, errors) = read_all("good.csv", ImportOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows(&leads), [2, 3, 4, 5, 6]);
    let e164: Vec<&str> = leads.iter().map(|l| l.phone.e164.as_str()).collect();
    assert_eq!(
        e164,
        [
            "+12125550101",
            "+12135550102",
            "+861065529988",
            "+442079460958",
            "+16025550105"
        ]
    );
    assert_eq!(leads[0].external_id.as_deref(), Some("C001"));
    assert_eq!(leads[0].debt_id.as_deref(), Some("L-1"));
    assert_eq!(leads[0].timezones, [America::New_York]);
    assert_eq!(leads[0].timezone_source, TzSource::Number);
    assert_eq!(
        leads[0].fields.get("balance"),
        Some(&Value::String("120.50".into()))
    );
    assert_eq!(leads[1].name.as_deref(), Some("Smith, John"));
    assert_eq!(leads[1].timezones, [America::Los_Angeles]);
    assert_eq!(leads[2].timezones, [Asia::Shanghai]);
    assert_eq!(leads[2].timezone_source, TzSource::Column);
    assert!(leads[2].fields.is_empty(), "empty cells are left out");
    assert_eq!(leads[3].timezones, [Europe::London]);
    assert_eq!(
        leads[3].fields.get("balance"),
        Some(&Value::String("0012.00".into()))
    );
    assert_eq!(leads[4].timezones, [America::Phoenix]);
    assert_eq!(leads[4].debt_id, None);
}

#[test]
fn empty_file_is_a_file_error() {
    let e = open("empty.csv", ImportOptions::default())
        .err()
        .expect("0-byte file is an error");
    assert!(matches!(e, ImportError::Empty), "{e}");
    assert_eq!(e.to_string(), "the file is empty (0 bytes)");
}

#[test]
fn header_only_file_has_no_rows() {
    let reader = open("header_only.csv", ImportOptions::default()).expect("opens");
    let report = import(reader, |_| {}).expect("import");
    assert_eq!(report, Report::default());
}

#[test]
fn missing_phone_column_lists_the_headers() {
    let e = open("missing_phone_column.csv", ImportOptions::default())
        .err()
        .expect("no phone column");
    assert!(
        matches!(e, ImportError::MissingColumn { role: "phone", .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "no phone column; the header has: id, name, email"
    );
}

#[test]
fn latin1_rows_fail_in_utf8_and_import_as_latin1() {
    let (leads, errors) = read_all("latin1.csv", ImportOptions::default());
    assert_eq!(rows(&leads), [3]);
    assert_eq!(error_rows(&errors), [2, 4]);
    assert_eq!(errors[0].column.as_deref(), Some("name"));
    assert_eq!(errors[0].kind, RowErrorKind::Encoding);
    assert!(
        errors[0]
            .message
            .starts_with("is not valid UTF-8 (byte 0xE9 at position 4)"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].message.contains("byte 0xFC at position 2"),
        "{}",
        errors[1]
    );

    for encoding in [Encoding::Latin1, Encoding::Windows1252] {
        let opts = ImportOptions {
            encoding,
            ..ImportOptions::default()
        };
        let (leads, errors) = read_all("latin1.csv", opts);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = leads
            .iter()
            .map(|l| l.name.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(names, ["José García", "Ann Lee", "Jürgen Müller"]);
    }
}

#[test]
fn utf16_with_bom_is_decoded() {
    let (leads, errors) = read_all("utf16.csv", ImportOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows(&leads), [2, 3, 4]);
    let names: Vec<_> = leads
        .iter()
        .map(|l| l.name.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(names, ["Zoë Adams", "Łukasz, Nowak", "北京 Li"]);
    assert_eq!(leads[1].phone.e164, "+442079460958");
    let reader = open("utf16.csv", ImportOptions::default()).expect("opens");
    assert_eq!(reader.headers(), ["id", "name", "phone"]);
}

#[test]
fn bad_numbers_and_timezones_fail_alone() {
    let (leads, errors) = read_all("bad_numbers.csv", ImportOptions::default());
    assert_eq!(rows(&leads), [2, 9]);
    assert_eq!(leads[1].timezones, [America::Chicago]);
    assert_eq!(leads[1].timezone_source, TzSource::Column);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "row 3, column phone: '12ab' is not a valid phone number (letters in number)",
            "row 4, column phone: '555' is not a valid phone number (too short)",
            "row 5, column phone: phone number is empty",
            "row 6, column phone: '(123) 456-7890' is not a valid phone number (not a valid US number)",
            "row 7, column timezone: 'Mars/Olympus' is not a known IANA timezone name (like America/New_York)",
            "row 8, column phone: '+999 1234 5678' is not a valid phone number (unknown country code)",
        ]
    );
    let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            RowErrorKind::Phone,
            RowErrorKind::Phone,
            RowErrorKind::EmptyPhone,
            RowErrorKind::Phone,
            RowErrorKind::Timezone,
            RowErrorKind::Phone,
        ]
    );
}

#[test]
fn duplicates_keep_the_first_row() {
    let reader = open("duplicates.csv", ImportOptions::default()).expect("opens");
    let mut leads = Vec::new();
    let report = import(reader, |l| leads.push(l)).expect("import");
    assert_eq!(rows(&leads), [2, 3, 7]);
    assert_eq!(error_rows(&report.errors), [4, 5, 6]);
    let messages: Vec<_> = report.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "duplicate of row 2",
            "duplicate of row 2",
            "duplicate of row 3"
        ]
    );
    assert_eq!(report.errors[0].value.as_deref(), Some("(212) 555-0101"));
    assert_eq!(
        report.errors[2].kind,
        RowErrorKind::Duplicate { first_row: 3 }
    );
    assert_eq!(
        (
            report.rows,
            report.imported,
            report.error_count,
            report.duplicates
        ),
        (6, 3, 3, 3)
    );
    let mut csv = Vec::new();
    report.write_csv(&mut csv).expect("report");
    assert_eq!(
        String::from_utf8(csv).expect("utf8"),
        "row,column,value,message\n\
         4,phone,(212) 555-0101,duplicate of row 2\n\
         5,phone,001 212 555 0101,duplicate of row 2\n\
         6,phone,212.555.0102,duplicate of row 3\n"
    );
}

#[test]
fn ragged_rows_say_how_many_fields() {
    let (leads, errors) = read_all("ragged.csv", ImportOptions::default());
    // Row 5 has an extra but empty trailing field (spreadsheet export): accepted.
    assert_eq!(rows(&leads), [2, 5, 6]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "row 3: row has 5 fields, header has 6",
            "row 4: row has 7 fields, header has 6",
        ]
    );
    assert!(errors.iter().all(|e| e.kind == RowErrorKind::FieldCount));
}

#[test]
fn quoted_multiline_rows_keep_their_starting_line() {
    let (leads, errors) = read_all("quoted_multiline.csv", ImportOptions::default());
    assert_eq!(rows(&leads), [2, 4, 9]);
    assert_eq!(
        leads[0].fields.get("notes"),
        Some(&Value::String(
            "called twice, no answer\r\nleft message".into()
        ))
    );
    assert_eq!(leads[1].name.as_deref(), Some("Bob \"Bobby\" Jones"));
    assert_eq!(error_rows(&errors), [7]);
    assert_eq!(errors[0].value.as_deref(), Some("12ab"));
}

#[test]
fn semicolons_are_detected() {
    let reader = open("semicolons.csv", ImportOptions::default()).expect("opens");
    assert_eq!(reader.delimiter(), b';');
    assert_eq!(
        reader.headers(),
        ["ID", "Name", "Telefon", "Phone Number", "Balance"]
    );
    let (leads, errors) = read_all("semicolons.csv", ImportOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rows(&leads), [2, 3]);
    assert_eq!(leads[0].external_id.as_deref(), Some("1"));
    assert_eq!(
        leads[0].fields.get("Balance"),
        Some(&Value::String("1.234,50".into()))
    );
    assert_eq!(leads[1].name.as_deref(), Some("Bob; Jr"));
    assert_eq!(leads[1].phone.e164, "+442079460958");
}

#[test]
fn explicit_delimiter_overrides_detection() {
    let opts = ImportOptions {
        delimiter: Some(b','),
        ..ImportOptions::default()
    };
    // Read as comma-separated, the semicolon header is one column that is not a phone column.
    let e = open("semicolons.csv", opts).err().expect("no phone column");
    assert!(matches!(e, ImportError::MissingColumn { .. }), "{e}");
}
