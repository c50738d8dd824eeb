//! Streaming CSV lead import: parsing and per-row validation (storage is elsewhere).
//!
//! Banks hand over lead lists as spreadsheet exports of every flavour: UTF-8 with or without a
//! BOM, UTF-16 from Excel's "Unicode text", Windows-1252 from older systems, `,` or `;` or tab
//! separated, CRLF line endings, quoted fields with embedded delimiters and newlines. A
//! [`LeadReader`] reads such a file as a stream of [`Lead`]s and per-row [`RowError`]s: one bad row
//! never stops the import, every good row comes out, and each error names the row (the line the
//! record *starts* on, header = row 1, so a user can find it in a text editor or spreadsheet),
//! the column, the offending value and the reason. [`Report`] collects the outcome and writes a
//! row-numbered error report as CSV.
//!
//! Problems with the file as a whole ([`ImportError`]: empty file, no header, no phone column,
//! duplicate or ambiguous columns, an unreadable header, I/O errors) stop the import.
//!
//! # Choices
//!
//! - **Parsing** is the `csv` crate's, reading `ByteRecord`s so that bad bytes are a problem of
//!   their row, not of the file. Records are read `flexible`, and field counts are checked here
//!   to give a clear message. Records end at `\n` (LF and CRLF files; the `\r` is trimmed off
//!   the last cell), which keeps csv's record start line exact; classic-Mac CR-only files are not
//!   supported. Blank lines and rows whose every cell is empty (spreadsheet
//!   padding) are skipped and not counted.
//! - **Encoding**: [`Encoding::Auto`] reads UTF-8 (a UTF-8 BOM is stripped) unless the file starts
//!   with a UTF-16 BOM, in which case the stream is decoded from UTF-16 LE/BE on the fly
//!   (`encoding_rs`, streaming, constant memory; unpaired surrogates become U+FFFD and make their
//!   row fail). Latin-1 is never guessed: a row with invalid UTF-8 fails with the byte's position
//!   and a hint, and the user re-runs with [`Encoding::Latin1`]/[`Encoding::Windows1252`] (both
//!   decode as Windows-1252, the WHATWG reading of "latin1": identical for printable Latin-1,
//!   plus `€`, `“`, `”` etc. in 0x80–0x9F where ISO-8859-1 has unprintable controls).
//! - **Delimiter**: given, or detected from the header line: the most frequent of `,` `;` tab
//!   outside quotes (`,` when none occurs).
//! - **Header mapping** is case-insensitive, ignores surrounding spaces and treats spaces and
//!   dashes as `_`. Known columns (aliases in [`COLUMN_ALIASES`]): phone (required, exactly one),
//!   name, external id, timezone, debt id. `id`, `customer_id`, `client_id` are the external id
//!   (who the person is); `account_id`, `account_number`, `loan_id` are the debt id (what the call
//!   is about), since in a bank an account is what is owed on, and one customer may have several.
//!   Two columns mapping to the same role are an error rather than a silent pick.
//! - **Other columns** go into [`Lead::fields`] by their header name as written (trimmed), as
//!   JSON strings, never converted to numbers: account numbers keep leading zeros, 20-digit ids
//!   keep their digits, and `1.234,50` is not misread; flows convert with the locale they know.
//!   Empty cells are left out of the map.
//! - **Values** are trimmed of surrounding whitespace.
//! - **Timezones**: a non-empty timezone cell wins ([`TzSource::Column`], must be an IANA name,
//!   case-insensitive); else the number's zones ([`super::phone::timezones`], `Number`); else
//!   [`ImportOptions::default_timezone`] (`Default`); else the row fails (the dialer may not call
//!   someone whose local time it cannot know).
//! - **Duplicates**: a phone number already imported from an earlier row fails with "duplicate of
//!   row N" and the first row is kept. The only state that grows with the file is this map of
//!   phone key → row (18 to 36 bytes an entry with the table's growth; 1 M rows ≤ 40 MB).
//! - **Check order** for a row (only the first problem is reported): encoding, field count,
//!   phone, timezone, duplicate.

use std::collections::HashMap;
use std::io::{self, Chain, Cursor, Read, Write};

use chrono_tz::Tz;
use phonenumber::country::Id;
use serde_json::{Map, Value};

use super::phone::{self, PhoneNumber};

/// How the bytes of the file are to be read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 (BOM stripped), or UTF-16 LE/BE when the file starts with a UTF-16 BOM.
    #[default]
    Auto,
    /// UTF-8; a UTF-8 BOM is stripped.
    Utf8,
    /// Latin-1, decoded as Windows-1252 (see the module docs).
    Latin1,
    /// Windows-1252.
    Windows1252,
}

/// Options of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Region national-format numbers belong to.
    pub default_region: Id,
    /// Zone for rows whose timezone neither a column nor the number tells.
    pub default_timezone: Option<Tz>,
    /// Text encoding of the file.
    pub encoding: Encoding,
    /// Field delimiter; `None` detects `,` `;` or tab from the header.
    pub delimiter: Option<u8>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            default_region: Id::US,
            default_timezone: None,
            encoding: Encoding::Auto,
            delimiter: None,
        }
    }
}

/// Where a lead's timezones came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TzSource {
    /// The file's timezone column.
    Column,
    /// The phone number (country, area code).
    Number,
    /// [`ImportOptions::default_timezone`].
    Default,
}

/// One valid row of the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Lead {
    /// Line the record starts on (the header is row 1).
    pub row: u64,
    /// The bank's id for the person.
    pub external_id: Option<String>,
    /// The validated number.
    pub phone: PhoneNumber,
    /// The person's name as given.
    pub name: Option<String>,
    /// Candidate zones, never empty: the dialer calls only when the window holds in all.
    pub timezones: Vec<Tz>,
    /// Where `timezones` came from.
    pub timezone_source: TzSource,
    /// The bank's id for the debt/account/loan the call is about.
    pub debt_id: Option<String>,
    /// Every other non-empty cell, by header name, as a JSON string.
    pub fields: Map<String, Value>,
}

/// A row that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// Line the record starts on (the header is row 1).
    pub row: u64,
    /// Header name of the offending column, when one column is at fault.
    pub column: Option<String>,
    /// The offending value (lossily decoded if its bytes were bad).
    pub value: Option<String>,
    /// The reason, in words.
    pub message: String,
    /// The kind of problem, for programs (counting duplicates, grouping a report).
    pub kind: RowErrorKind,
}

/// What kind of problem a [`RowError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RowErrorKind {
    /// Bytes not valid in the file's encoding.
    Encoding,
    /// Fewer fields than the header (or extra non-empty ones).
    FieldCount,
    /// The phone cell is empty.
    EmptyPhone,
    /// The phone number is not valid.
    Phone,
    /// The timezone cell is not a zone name, or no zone can be told.
    Timezone,
    /// Same number as an earlier row, which was kept.
    Duplicate {
        /// Row of the first occurrence.
        first_row: u64,
    },
    /// Reading the file failed here; nothing after it was read ([`LeadReader::fatal`]).
    Read,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        f.write_str(": ")?;
        if let Some(value) = &self.value {
            write!(f, "'{value}' ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RowError {}

/// A problem with the file as a whole: nothing (more) can be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file has no bytes at all.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// The file has bytes but no header line (only a BOM, blank lines).
    #[error("the file has no header line")]
    NoHeader,
    /// No column maps to a required role.
    #[error("no {role} column; the header has: {}", found.join(", "))]
    MissingColumn {
        /// The role (`phone`).
        role: &'static str,
        /// The header names found.
        found: Vec<String>,
    },
    /// Two columns with the same name.
    #[error("column '{name}' appears more than once in the header")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
    /// Two columns map to the same role (`phone` and `mobile`).
    #[error("columns {} are all {role} columns; keep one or rename the others", columns.join(" and "))]
    AmbiguousColumn {
        /// The role.
        role: &'static str,
        /// The competing header names.
        columns: Vec<String>,
    },
    /// A header cell is empty.
    #[error("column {index} has no name in the header")]
    EmptyColumnName {
        /// 1-based position of the column.
        index: usize,
    },
    /// The header is not valid in the chosen encoding.
    #[error("the header is not valid {encoding}: {detail}")]
    HeaderEncoding {
        /// Encoding in use.
        encoding: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Reading failed.
    #[error("reading the file failed: {0}")]
    Io(#[from] io::Error),
}

/// Roles of known columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Phone,
    Name,
    ExternalId,
    Timezone,
    DebtId,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Phone => "phone",
            Role::Name => "name",
            Role::ExternalId => "external id",
            Role::Timezone => "timezone",
            Role::DebtId => "debt id",
        }
    }
}

/// Normalised header names recognised for each role.
pub const COLUMN_ALIASES: &[(&str, &[&str])] = &[
    (
        "phone",
        &[
            "phone",
            "phone_number",
            "phonenumber",
            "phone_no",
            "mobile",
            "mobile_number",
            "mobile_phone",
            "msisdn",
            "telephone",
            "telephone_number",
            "tel",
            "cell",
            "cell_phone",
        ],
    ),
    (
        "name",
        &[
            "name",
            "full_name",
            "fullname",
            "customer_name",
            "client_name",
            "contact_name",
        ],
    ),
    (
        "external_id",
        &[
            "id",
            "external_id",
            "customer_id",
            "client_id",
            "lead_id",
            "customer_number",
        ],
    ),
    ("timezone", &["timezone", "tz", "time_zone"]),
    (
        "debt_id",
        &[
            "debt_id",
            "loan_id",
            "loan_number",
            "account_id",
            "account_number",
            "account_no",
            "contract_id",
            "contract_number",
        ],
    ),
];

fn role_of(normalized: &str) -> Option<Role> {
    let roles = [
        Role::Phone,
        Role::Name,
        Role::ExternalId,
        Role::Timezone,
        Role::DebtId,
    ];
    COLUMN_ALIASES
        .iter()
        .zip(roles)
        .find(|((_, aliases), _)| aliases.contains(&normalized))
        .map(|(_, role)| role)
}

fn normalize_header(h: &str) -> String {
    h.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Maximum row errors a [`Report`] stores (all are counted).
pub const MAX_STORED_ERRORS: usize = 10_000;

/// Bytes read ahead to find BOMs and the delimiter.
const SNIFF_BYTES: u64 = 64 * 1024;

/// Bytes already read (to sniff BOM and delimiter), then the rest of the stream.
type Replay<R> = Chain<Cursor<Vec<u8>>, R>;

/// The byte source after BOM handling: plain bytes, or UTF-16 decoded to UTF-8.
enum Source<R: Read> {
    Plain(Replay<R>),
    Utf16(Replay<Utf16Reader<Replay<R>>>),
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Utf16(r) => r.read(buf),
        }
    }
}

/// Streams UTF-16 (BOM already consumed) as UTF-8.
struct Utf16Reader<R: Read> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    input_len: usize,
    output: Vec<u8>,
    output_pos: usize,
    output_len: usize,
    eof: bool,
}

impl<R: Read> Utf16Reader<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 16 * 1024],
            input_len: 0,
            output: vec![0; 3 * 8 * 1024 + 16],
            output_pos: 0,
            output_len: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for Utf16Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.output_pos < self.output_len {
                let n = buf.len().min(self.output_len - self.output_pos);
                buf[..n].copy_from_slice(&self.output[self.output_pos..self.output_pos + n]);
                self.output_pos += n;
                return Ok(n);
            }
            if self.eof && self.input_len == 0 {
                return Ok(0);
            }
            if !self.eof && self.input_len < self.input.len() {
                let n = self.inner.read(&mut self.input[self.input_len..])?;
                if n == 0 {
                    self.eof = true;
                }
                self.input_len += n;
            }
            let (_, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[..self.input_len],
                &mut self.output,
                self.eof,
            );
            self.input.copy_within(read..self.input_len, 0);
            self.input_len -= read;
            self.output_pos = 0;
            self.output_len = written;
            if self.eof && read == 0 && written == 0 {
                // The decoder flushed everything it had.
                self.input_len = 0;
            }
        }
    }
}

/// Streaming reader of leads. See the module docs.
pub struct LeadReader<R: Read> {
    csv: csv::Reader<Source<R>>,
    headers: Vec<String>,
    roles: Vec<Option<Role>>,
    phone_col: usize,
    delimiter: u8,
    opts: ImportOptions,
    text: TextKind,
    seen: HashMap<u64, u64>,
    record: csv::ByteRecord,
    fatal: Option<ImportError>,
    done: bool,
}

/// How field bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Utf8,
    /// UTF-8 transcoded from UTF-16: U+FFFD marks undecodable input.
    FromUtf16,
    Windows1252,
}

impl<R: Read> LeadReader<R> {
    /// Opens `input`: detects the encoding and delimiter and reads and checks the header.
    pub fn new(mut input: R, opts: ImportOptions) -> Result<Self, ImportError> {
        let mut head = Vec::new();
        (&mut input).take(SNIFF_BYTES).read_to_end(&mut head)?;
        if head.is_empty() {
            return Err(ImportError::Empty);
        }
        if opts.encoding != Encoding::Latin1
            && opts.encoding != Encoding::Windows1252
            && !head.starts_with(&[0xFF, 0xFE])
            && !head.starts_with(&[0xFE, 0xFF])
            && head.iter().take(256).any(|&b| b == 0)
        {
            return Err(ImportError::HeaderEncoding {
                encoding: "UTF-8",
                detail: "it holds NUL bytes: the file looks like UTF-16 without a byte-order \
                         mark; save it as UTF-8 or as UTF-16 with a BOM"
                    .into(),
            });
        }
        let utf16 = match opts.encoding {
            Encoding::Auto if head.starts_with(&[0xFF, 0xFE]) => Some(encoding_rs::UTF_16LE),
            Encoding::Auto if head.starts_with(&[0xFE, 0xFF]) => Some(encoding_rs::UTF_16BE),
            _ => None,
        };
        let (source, sample, text) = if let Some(enc) = utf16 {
            let raw = Cursor::new(head.split_off(2)).chain(input);
            let mut decoder = Utf16Reader::new(raw, enc);
            let mut sample = Vec::new();
            (&mut decoder).take(SNIFF_BYTES).read_to_end(&mut sample)?;
            let source = Source::Utf16(Cursor::new(sample.clone()).chain(decoder));
            (source, sample, TextKind::FromUtf16)
        } else {
            let (bom, text) = match opts.encoding {
                Encoding::Auto | Encoding::Utf8 if head.starts_with(&[0xEF, 0xBB, 0xBF]) => {
                    (3, TextKind::Utf8)
                }
                Encoding::Auto | Encoding::Utf8 => (0, TextKind::Utf8),
                Encoding::Latin1 | Encoding::Windows1252 => (0, TextKind::Windows1252),
            };
            let body = head.split_off(bom);
            let sample = body.clone();
            (Source::Plain(Cursor::new(body).chain(input)), sample, text)
        };
        let delimiter = opts.delimiter.unwrap_or_else(|| detect_delimiter(&sample));

        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            // Records end at `\n` only: with csv's default CRLF terminator a record's Position
            // points at the `\n` of the previous line ending in CRLF files, one line early. A `\r`
            // before the `\n` stays in the last cell, which is trimmed like every cell.
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(source);
        let mut record = csv::ByteRecord::new();
        // The header is the first line with any text (blank lines before it are skipped).
        loop {
            if !csv.read_byte_record(&mut record).map_err(csv_to_io)? {
                return Err(ImportError::NoHeader);
            }
            if !is_blank(&record) {
                break;
            }
        }
        let mut headers = Vec::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            let h = decode(raw, text).map_err(|e| ImportError::HeaderEncoding {
                encoding: text.name(),
                detail: format!("column {}: {}", i + 1, e.describe()),
            })?;
            let h = h.trim().to_owned();
            if h.is_empty() {
                return Err(ImportError::EmptyColumnName { index: i + 1 });
            }
            headers.push(h);
        }
        let normalized: Vec<String> = headers.iter().map(|h| normalize_header(h)).collect();
        for (i, n) in normalized.iter().enumerate() {
            if normalized[..i].contains(n) {
                return Err(ImportError::DuplicateColumn {
                    name: headers[i].clone(),
                });
            }
        }
        let roles: Vec<Option<Role>> = normalized.iter().map(|n| role_of(n)).collect();
        for role in [
            Role::Phone,
            Role::Name,
            Role::ExternalId,
            Role::Timezone,
            Role::DebtId,
        ] {
            let columns: Vec<String> = roles
                .iter()
                .zip(&headers)
                .filter(|(r, _)| **r == Some(role))
                .map(|(_, h)| h.clone())
                .collect();
            if columns.len() > 1 {
                return Err(ImportError::AmbiguousColumn {
                    role: role.name(),
                    columns,
                });
            }
        }
        let Some(phone_col) = roles.iter().position(|r| *r == Some(Role::Phone)) else {
            return Err(ImportError::MissingColumn {
                role: "phone",
                found: headers,
            });
        };
        Ok(Self {
            csv,
            headers,
            roles,
            phone_col,
            delimiter,
            opts,
            text,
            seen: HashMap::new(),
            record,
            fatal: None,
            done: false,
        })
    }

    /// The header names as written (trimmed), in file order.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The delimiter in use.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The error that ended the stream early (an I/O error mid-file), if any. Check after the
    /// iterator returns `None`: the rows before it were delivered, the rest were not read.
    pub fn fatal(&self) -> Option<&ImportError> {
        self.fatal.as_ref()
    }

    /// Takes the error that ended the stream early, if any.
    pub fn take_fatal(&mut self) -> Option<ImportError> {
        self.fatal.take()
    }

    fn process(&mut self, row: u64) -> Result<Lead, RowError> {
        let width = self.headers.len();
        let err = |kind: RowErrorKind,
                   column: Option<&String>,
                   value: Option<String>,
                   message: String| RowError {
            row,
            column: column.cloned(),
            value,
            message,
            kind,
        };
        // Encoding first: every later message quotes decoded text.
        let mut cells: Vec<String> = Vec::with_capacity(self.record.len());
        for (i, raw) in self.record.iter().enumerate() {
            match decode(raw, self.text) {
                Ok(s) => cells.push(s.trim().to_owned()),
                Err(e) => {
                    return Err(err(
                        RowErrorKind::Encoding,
                        self.headers.get(i),
                        Some(String::from_utf8_lossy(raw).into_owned()),
                        e.describe(),
                    ));
                }
            }
        }
        if cells.len() < width || cells[width..].iter().any(|c| !c.is_empty()) {
            return Err(err(
                RowErrorKind::FieldCount,
                None,
                None,
                format!("row has {} fields, header has {width}", cells.len()),
            ));
        }
        let phone_raw = cells[self.phone_col].clone();
        let phone_header = &self.headers[self.phone_col];
        let phone = match phone::normalize(&phone_raw, self.opts.default_region) {
            Ok(p) => p,
            Err(phone::PhoneError::Empty) => {
                return Err(err(
                    RowErrorKind::EmptyPhone,
                    Some(phone_header),
                    None,
                    "phone number is empty".into(),
                ));
            }
            Err(e) => {
                return Err(err(
                    RowErrorKind::Phone,
                    Some(phone_header),
                    Some(phone_raw.clone()),
                    format!("is not a valid phone number ({e})"),
                ));
            }
        };

        let mut lead = Lead {
            row,
            external_id: None,
            phone,
            name: None,
            timezones: Vec::new(),
            timezone_source: TzSource::Number,
            debt_id: None,
            fields: Map::new(),
        };
        let mut tz_cell: Option<(usize, String)> = None;
        for (i, cell) in cells.into_iter().take(width).enumerate() {
            if cell.is_empty() {
                continue;
            }
            match self.roles[i] {
                Some(Role::Phone) => {}
                Some(Role::Name) => lead.name = Some(cell),
                Some(Role::ExternalId) => lead.external_id = Some(cell),
                Some(Role::DebtId) => lead.debt_id = Some(cell),
                Some(Role::Timezone) => tz_cell = Some((i, cell)),
                None => {
                    lead.fields
                        .insert(self.headers[i].clone(), Value::String(cell));
                }
            }
        }
        if let Some((i, name)) = tz_cell {
            let Some(tz) = phone::parse_timezone(&name) else {
                return Err(err(
                    RowErrorKind::Timezone,
                    self.headers.get(i),
                    Some(name),
                    "is not a known IANA timezone name (like America/New_York)".into(),
                ));
            };
            lead.timezones = vec![tz];
            lead.timezone_source = TzSource::Column;
        } else {
            lead.timezones = phone::timezones(&lead.phone);
            if lead.timezones.is_empty() {
                let Some(tz) = self.opts.default_timezone else {
                    return Err(err(
                        RowErrorKind::Timezone,
                        Some(phone_header),
                        Some(phone_raw.clone()),
                        "has no known timezone: fill the timezone column or set a default \
                         timezone for the import"
                            .into(),
                    ));
                };
                lead.timezones = vec![tz];
                lead.timezone_source = TzSource::Default;
            }
        }
        let key = lead.phone.key();
        if let Some(first) = self.seen.get(&key) {
            return Err(err(
                RowErrorKind::Duplicate { first_row: *first },
                Some(phone_header),
                Some(phone_raw.clone()),
                format!("duplicate of row {first}"),
            ));
        }
        self.seen.insert(key, row);
        Ok(lead)
    }
}

impl<R: Read> Iterator for LeadReader<R> {
    type Item = Result<Lead, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    let row = self.csv.position().line();
                    let message = format!("reading stopped here: {e}");
                    self.fatal = Some(ImportError::Io(csv_to_io(e)));
                    return Some(Err(RowError {
                        row,
                        column: None,
                        value: None,
                        message,
                        kind: RowErrorKind::Read,
                    }));
                }
            }
            // Spreadsheet padding: a row of empty cells.
            if is_blank(&self.record) {
                continue;
            }
            let row = self.record.position().map_or(0, csv::Position::line);
            return Some(self.process(row));
        }
        None
    }
}

/// Whether every cell of a record is empty or whitespace.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Why a field's bytes are not text.
enum DecodeError {
    /// Invalid UTF-8 at this byte offset within the field.
    Utf8 { offset: usize, byte: u8 },
    /// U+FFFD from undecodable UTF-16.
    Utf16,
}

impl DecodeError {
    fn describe(&self) -> String {
        match self {
            DecodeError::Utf8 { offset, byte } => format!(
                "is not valid UTF-8 (byte 0x{byte:02X} at position {}); if the file is \
                 Latin-1/Windows-1252, import it with that encoding",
                offset + 1
            ),
            DecodeError::Utf16 => "has bytes that are not valid UTF-16".into(),
        }
    }
}

impl TextKind {
    fn name(self) -> &'static str {
        match self {
            TextKind::Utf8 => "UTF-8",
            TextKind::FromUtf16 => "UTF-16",
            TextKind::Windows1252 => "Windows-1252",
        }
    }
}

fn decode(raw: &[u8], text: TextKind) -> Result<String, DecodeError> {
    match text {
        TextKind::Utf8 => std::str::from_utf8(raw).map(str::to_owned).map_err(|e| {
            let offset = e.valid_up_to();
            DecodeError::Utf8 {
                offset,
                byte: raw.get(offset).copied().unwrap_or(0),
            }
        }),
        TextKind::FromUtf16 => {
            let s = String::from_utf8_lossy(raw);
            if s.contains('\u{FFFD}') {
                Err(DecodeError::Utf16)
            } else {
                Ok(s.into_owned())
            }
        }
        TextKind::Windows1252 => Ok(encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(raw)
            .0
            .into_owned()),
    }
}

/// The most frequent of `,` `;` tab in the first line, outside double quotes; `,` if none.
fn detect_delimiter(sample: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in sample {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let (best, &n) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, usize::MAX - i))
        .unwrap_or((0, &0));
    if n == 0 { b',' } else { candidates[best] }
}

/// Outcome of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Data rows read (blank rows not counted).
    pub rows: u64,
    /// Rows imported.
    pub imported: u64,
    /// The first [`MAX_STORED_ERRORS`] row errors.
    pub errors: Vec<RowError>,
    /// All row errors, duplicates included.
    pub error_count: u64,
    /// Rows rejected as duplicates of an earlier row (also in `error_count`).
    pub duplicates: u64,
}

impl Report {
    /// Counts one row's outcome.
    pub fn record(&mut self, outcome: &Result<Lead, RowError>) {
        self.rows += 1;
        match outcome {
            Ok(_) => self.imported += 1,
            Err(e) => self.record_error(e.clone()),
        }
    }

    fn record_error(&mut self, e: RowError) {
        self.error_count += 1;
        if matches!(e.kind, RowErrorKind::Duplicate { .. }) {
            self.duplicates += 1;
        }
        if self.errors.len() < MAX_STORED_ERRORS {
            self.errors.push(e);
        }
    }

    /// Writes the stored errors as CSV: `row,column,value,message`. Cells that a spreadsheet
    /// would run as a formula (`=`, `@`, `+`/`-` not followed by a digit, tab, CR) get a leading
    /// `'`, because these reports are opened in Excel by operations staff.
    pub fn write_csv<W: Write>(&self, w: W) -> io::Result<()> {
        let mut out = csv::Writer::from_writer(w);
        let err = |e: csv::Error| csv_to_io(e);
        out.write_record(["row", "column", "value", "message"])
            .map_err(err)?;
        for e in &self.errors {
            let row = e.row.to_string();
            out.write_record([
                row.as_str(),
                &defuse(e.column.as_deref().unwrap_or("")),
                &defuse(e.value.as_deref().unwrap_or("")),
                &defuse(&e.message),
            ])
            .map_err(err)?;
        }
        out.flush()
    }
}

/// Neutralises spreadsheet formula injection in a report cell.
fn defuse(cell: &str) -> String {
    let mut chars = cell.chars();
    let dangerous = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !chars
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == ' ' || c == '('),
        _ => false,
    };
    if dangerous {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// Reads every row, handing good leads to `sink`, and returns the report; an I/O error mid-file
/// is returned after the rows before it were delivered.
pub fn import<R: Read>(
    mut reader: LeadReader<R>,
    mut sink: impl FnMut(Lead),
) -> Result<Report, ImportError> {
    let mut report = Report::default();
    while let Some(outcome) = reader.next() {
        if reader.fatal().is_some() {
            break;
        }
        report.record(&outcome);
        if let Ok(lead) = outcome {
            sink(lead);
        }
    }
    match reader.take_fatal() {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Writes a realistic sample lead file (for benchmarks): `rows` data rows with columns
/// `id,name,phone,timezone,debt_id,balance,due_date`, US and UK numbers in mixed formats
/// (national, `+1`, `001`, dotted, bracketed), a timezone on ~20% of rows, and ~0.5% bad rows
/// (invalid or empty numbers, unknown timezones, missing fields). Deterministic for a seed.
/// Phone numbers are unique per row, so the only row errors are the deliberate ones.
#[doc(hidden)]
pub fn write_sample_csv<W: Write>(w: W, rows: u64, seed: u64) -> io::Result<()> {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    const AREA: [u16; 10] = [212, 213, 312, 415, 602, 713, 808, 917, 305, 206];
    const FIRST: [&str; 8] = [
        "Maria", "John", "Wei", "Aisha", "José", "Olga", "Liam", "Priya",
    ];
    const LAST: [&str; 8] = [
        "García", "Smith", "Chen", "Khan", "O'Brien", "Müller", "Nguyen", "Patel",
    ];
    const TZ: [&str; 4] = [
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "Europe/London",
    ];
    // NANP exchange codes without N11 service codes and 555.
    let exchanges: Vec<u64> = (200..1000).filter(|e| e % 100 != 11 && *e != 555).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut w = io::BufWriter::with_capacity(1 << 16, w);
    writeln!(w, "id,name,phone,timezone,debt_id,balance,due_date")?;
    for i in 0..rows {
        // Unique subscriber part per row: exchange 200-999 without N11 and 555, line 0000-9999.
        let exchange = exchanges[(i / 10_000) as usize % exchanges.len()];
        let line = i % 10_000;
        let area = AREA[(i as usize / 8_000_000 + rng.random_range(0..AREA.len())) % AREA.len()];
        let phone = if rng.random_bool(0.15) {
            // UK: London fixed lines or mobiles, unique by i.
            if rng.random_bool(0.5) {
                format!("+44 20 7{:03} {:04}", (i / 10_000) % 1000, line)
            } else {
                format!("0044 7400 {:06}", i % 1_000_000)
            }
        } else {
            match rng.random_range(0..5) {
                0 => format!("({area}) {exchange}-{line:04}"),
                1 => format!("+1 {area} {exchange} {line:04}"),
                2 => format!("{area}.{exchange}.{line:04}"),
                3 => format!("001{area}{exchange}{line:04}"),
                _ => format!("1-{area}-{exchange}-{line:04}"),
            }
        };
        let tz = if rng.random_bool(0.2) {
            TZ[rng.random_range(0..TZ.len())]
        } else {
            ""
        };
        let name = format!(
            "\"{} {}\"",
            FIRST[rng.random_range(0..FIRST.len())],
            LAST[rng.random_range(0..LAST.len())]
        );
        let balance = format!(
            "{}.{:02}",
            rng.random_range(50..250_000),
            rng.random_range(0..100)
        );
        let due = format!(
            "2026-{:02}-{:02}",
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        );
        let id = format!("C{:08}", i + 1);
        let debt = format!("LN-{:010}", rng.random_range(0..10_000_000_000u64));
        if rng.random_bool(0.005) {
            match rng.random_range(0..4) {
                0 => writeln!(w, "{id},{name},12ab,{tz},{debt},{balance},{due}")?,
                1 => writeln!(w, "{id},{name},,{tz},{debt},{balance},{due}")?,
                2 => writeln!(w, "{id},{name},{phone},Mars/Olympus,{debt},{balance},{due}")?,
                _ => writeln!(w, "{id},{name},{phone},{tz},{debt}")?,
            }
        } else {
            writeln!(w, "{id},{name},{phone},{tz},{debt},{balance},{due}")?;
        }
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8], opts: ImportOptions) -> Vec<Result<Lead, RowError>> {
        LeadReader::new(data, opts).expect("header").collect()
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"id;phone;name\n1,2;3"), b';');
        assert_eq!(detect_delimiter(b"id\tphone\n"), b'\t');
        assert_eq!(detect_delimiter(b"\"a;b\",c\n"), b',');
        assert_eq!(detect_delimiter(b"phone\n"), b',');
    }

    #[test]
    fn aliases_and_fields() {
        let rows = read(
            b"Customer ID,Full Name,Mobile,TZ,Loan-ID,Balance\nC1,Ann,(212) 555-0123,,L9,0012.50\n",
            ImportOptions::default(),
        );
        let lead = rows[0].as_ref().expect("lead");
        assert_eq!(lead.row, 2);
        assert_eq!(lead.external_id.as_deref(), Some("C1"));
        assert_eq!(lead.name.as_deref(), Some("Ann"));
        assert_eq!(lead.debt_id.as_deref(), Some("L9"));
        assert_eq!(lead.phone.e164, "+12125550123");
        assert_eq!(lead.timezone_source, TzSource::Number);
        assert_eq!(
            lead.fields.get("Balance"),
            Some(&Value::String("0012.50".into()))
        );
        assert_eq!(lead.fields.len(), 1);
    }

    #[test]
    fn ambiguous_and_duplicate_columns() {
        let e = LeadReader::new(&b"phone,mobile\n"[..], ImportOptions::default())
            .err()
            .expect("ambiguous");
        assert!(
            matches!(e, ImportError::AmbiguousColumn { role: "phone", .. }),
            "{e}"
        );
        let e = LeadReader::new(&b"phone,Phone\n"[..], ImportOptions::default())
            .err()
            .expect("dup");
        assert!(matches!(e, ImportError::DuplicateColumn { .. }), "{e}");
        let e = LeadReader::new(&b"phone,,x\n"[..], ImportOptions::default())
            .err()
            .expect("empty name");
        assert!(
            matches!(e, ImportError::EmptyColumnName { index: 2 }),
            "{e}"
        );
        let e = LeadReader::new(&b"p\0h\0o\0n\0e\0"[..], ImportOptions::default())
            .err()
            .expect("utf-16 without bom");
        assert!(
            e.to_string().contains("UTF-16 without a byte-order mark"),
            "{e}"
        );
        for blank in [&b"\xEF\xBB\xBF"[..], b"\r\n\r\n", b" \n,,\n"] {
            let e = LeadReader::new(blank, ImportOptions::default())
                .err()
                .expect("no header");
            assert!(matches!(e, ImportError::NoHeader), "{e}");
        }
        let late = read(
            b"\r\n\r\nphone\r\n212 555 0101\r\n",
            ImportOptions::default(),
        );
        assert_eq!(late[0].as_ref().map(|l| l.row).ok(), Some(4));
    }

    #[test]
    fn timezone_sources() {
        let opts = ImportOptions {
            default_timezone: Some(chrono_tz::Europe::Berlin),
            ..ImportOptions::default()
        };
        let rows = read(
            b"phone,timezone\n+1 212 555 0123,america/chicago\n+80012345678,\n+1 312 555 0123,\n",
            opts,
        );
        let a = rows[0].as_ref().expect("a");
        assert_eq!(
            (a.timezones.as_slice(), a.timezone_source),
            (&[chrono_tz::America::Chicago][..], TzSource::Column)
        );
        let b = rows[1].as_ref().expect("b");
        assert_eq!(b.timezone_source, TzSource::Default);
        let c = rows[2].as_ref().expect("c");
        assert_eq!(c.timezone_source, TzSource::Number);
        let no_default = read(b"phone\n+80012345678\n", ImportOptions::default());
        let e = no_default[0].as_ref().expect_err("no tz");
        assert!(e.message.contains("no known timezone"), "{e}");
    }

    #[test]
    fn row_error_display() {
        let e = RowError {
            row: 17,
            column: Some("phone".into()),
            value: Some("12ab".into()),
            message: "is not a valid phone number".into(),
            kind: RowErrorKind::Phone,
        };
        assert_eq!(
            e.to_string(),
            "row 17, column phone: '12ab' is not a valid phone number"
        );
    }

    #[test]
    fn report_csv_defuses_formulas() {
        let mut report = Report::default();
        report.record(&Err(RowError {
            row: 3,
            column: Some("phone".into()),
            value: Some("=HYPERLINK(\"x\")".into()),
            message: "is not a valid phone number (letters in number)".into(),
            kind: RowErrorKind::Phone,
        }));
        report.record(&Err(RowError {
            row: 4,
            column: Some("phone".into()),
            value: Some("+1 212 555 0123".into()),
            message: "duplicate of row 2".into(),
            kind: RowErrorKind::Duplicate { first_row: 2 },
        }));
        let mut out = Vec::new();
        report.write_csv(&mut out).expect("csv");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "row,column,value,message\n3,phone,\"'=HYPERLINK(\"\"x\"\")\",is not a valid phone number (letters in number)\n4,phone,+1 212 555 0123,duplicate of row 2\n"
        );
        assert_eq!(
            (report.rows, report.error_count, report.duplicates),
            (2, 2, 1)
        );
    }

    #[test]
    fn sample_generator_round_trips() {
        let mut buf = Vec::new();
        write_sample_csv(&mut buf, 20_000, 7).expect("write");
        let reader = LeadReader::new(&buf[..], ImportOptions::default()).expect("header");
        let report = import(reader, |_| {}).expect("import");
        assert_eq!(report.rows, 20_000);
        assert_eq!(report.duplicates, 0);
        // ~0.5% bad rows.
        assert!((50..=160).contains(&report.error_count), "{report:?}");
    }
}
