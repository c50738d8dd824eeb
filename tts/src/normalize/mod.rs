//! Bank-speech text normalisation: turns what a prompt author writes ("$1,250.50 is due on
//! 03/15/2026 for the card ending 4217") into words the voice reads correctly ("one thousand two
//! hundred fifty dollars and fifty cents is due on March fifteenth, twenty twenty-six for the card
//! ending four two one seven") before phonemisation.
//!
//! Rules, applied in this order (each pass leaves only words, so later passes cannot re-read them):
//! 1. abbreviations (`Mr.`, `Dr.`, `approx.`, `No. 5`, `APR`, …) — also removes periods that would
//!    otherwise end a sentence;
//! 2. identifiers read digit by digit: numbers after "ending (in)", "last four", "account", "card",
//!    "PIN", "code", "reference", "number", `#`; card numbers (4 groups of 4, masked or not);
//!    phone numbers; letter+digit codes (`AB12345`);
//! 3. dates: ISO `2026-03-15`; slashed dates are **en-US month/day/year** (`03/15/2026`), unless the
//!    first field cannot be a month and the second can (`15/03/2026` is then day/month); month-name
//!    dates (`March 15`, `15 March 2026`, `Mar. 15th`);
//! 4. times (`3:30 pm`, `3 p.m.`, `15:30`);
//! 5. money (`$1,250.50`, `€20`, `£5.99`, `$2.5 million`, `20 USD`);
//! 6. percentages, ordinals (`15th`), decimals, numbers with thousands separators;
//! 7. remaining bare numbers: up to four digits as a cardinal, five or more (or a leading zero)
//!    digit by digit, since in bank speech those are identifiers, not quantities;
//! 8. symbols (`&`, `@`, `+`, `#`), then whitespace is collapsed.

mod words;

use std::sync::LazyLock;

use regex::{Captures, Regex};

pub use words::{
    Currency, cardinal, decimal, ordinal, speak_date, speak_digits, speak_money, speak_money_cents,
    speak_time, speak_year,
};

/// Compiles a pattern written in this file; a typo is a bug caught by every test.
fn re(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(r) => r,
        Err(e) => panic!("invalid built-in pattern {pattern:?}: {e}"),
    }
}

/// Abbreviations common in bank speech. Case-sensitive where the lowercase form is a word.
const ABBREVIATIONS: &[(&str, &str)] = &[
    (r"\bMr\.", "Mister"),
    (r"\bMrs\.", "Missus"),
    (r"\bMs\.", "Miz"),
    (r"\bDr\.", "Doctor"),
    (r"\bProf\.", "Professor"),
    (r"\bJr\.", "Junior"),
    (r"\bSr\.", "Senior"),
    // "Main St." after a word is a street; "St. Louis" at the start of a name is a saint.
    (r"(\w\s+)St\.", "${1}Street"),
    (r"\bSt\.", "Saint"),
    (r"\bAve\.", "Avenue"),
    (r"\bRd\.", "Road"),
    (r"\bBlvd\.", "Boulevard"),
    (r"\bInc\.", "Incorporated"),
    (r"\bLtd\.", "Limited"),
    (r"\bCo\.", "Company"),
    (r"\bCorp\.", "Corporation"),
    (r"\bDept\.", "Department"),
    (r"(?i)\bapprox\.", "approximately"),
    (r"(?i)\bacct\.?(\s)", "account$1"),
    (r"(?i)\bref\.(\s)", "reference$1"),
    (r"(?i)\btel\.(\s)", "telephone$1"),
    (r"(?i)\bext\.(\s)", "extension$1"),
    (r"(?i)\bmin\.(\s)", "minimum$1"),
    (r"(?i)\bmax\.(\s)", "maximum$1"),
    (r"(?i)\bamt\.?(\s)", "amount$1"),
    (r"(?i)\bbal\.(\s)", "balance$1"),
    (r"(?i)\betc\.", "et cetera"),
    (r"(?i)\be\.g\.", "for example"),
    (r"(?i)\bi\.e\.", "that is"),
    (r"(?i)\bvs\.", "versus"),
    (r"(?i)\bp\.a\.", "per annum"),
    (r"\b(?:No|no|Nr)\.\s*(\d)", "number $1"),
    (r"\bAPR\b", "A P R"),
    (r"\bAPY\b", "A P Y"),
    (r"\bATM\b", "A T M"),
    (r"\bSSN\b", "S S N"),
    (r"\bACH\b", "A C H"),
    (r"\bFDIC\b", "F D I C"),
    (r"\bIBAN\b", "I ban"),
    (r"\bID\b", "I D"),
    (r"\bCVV\b", "C V V"),
    (r"\bOTP\b", "O T P"),
    (r"/mo\b", " per month"),
    (r"/yr\b", " per year"),
    (
        r"\b(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.",
        "$1",
    ),
];

static ABBREV_RES: LazyLock<Vec<(Regex, &'static str)>> =
    LazyLock::new(|| ABBREVIATIONS.iter().map(|(p, r)| (re(p), *r)).collect());

static CONTEXT_DIGITS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(ending(?:\s+(?:in|with))?|last\s+(?:four|4)(?:\s+digits)?(?:\s+(?:are|of))?|account(?:\s+number)?|card(?:\s+number)?|pin|code|reference(?:\s+number)?|number|routing(?:\s+number)?)(\s*[:#]?\s*)(\d[\d -]*\d|\d)\b([.,]\d)?",
    )
});
static HASH_DIGITS: LazyLock<Regex> = LazyLock::new(|| re(r"#\s?(\d+)\b"));
static CARD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b\d{4}|[*xX•]{4})(?:[ -](?:\d{4}|[*xX•]{4})){2,3}\b|\b\d{4}(?:[ -]\d{4}){1,2}[ -]\d{1,4}\b",
    )
});
static MASKED: LazyLock<Regex> = LazyLock::new(|| re(r"[*xX•]{2,}[ -]?(\d{2,})\b"));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\+1[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b"));
static CODE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:[A-Z]+[-]?\d[A-Z\d-]*|\d+[-]?[A-Z][A-Z\d-]*)\b"));
static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"));
static SLASH_DATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"));
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?",
    )
});
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(of\s+)?(January|February|March|April|May|June|July|August|September|October|November|December)\b(?:,?\s+(\d{4})\b)?",
    )
});
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?|\b(\d{1,2}):(\d{2})\b")
});
static MERIDIEM_MID_SENTENCE: LazyLock<Regex> = LazyLock::new(|| re(r"\b([AP] M)\.(\s+[a-z])"));
static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(-)?([$€£])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?:\s+(thousand|million|billion)\b)?|\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(USD|EUR|GBP)\b",
    )
});
static PERCENT: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s?(%|percent\b)"));
static ORDINAL: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,9})(?:st|nd|rd|th)\b"));
static DECIMAL: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)\b"));
static GROUPED: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d{1,3}(?:,\d{3})+\b"));
static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\b\d+\b"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| re(r"\s+"));
static SPACE_BEFORE_PUNCT: LazyLock<Regex> = LazyLock::new(|| re(r"\s+([.,!?;:])"));

/// Normalises bank text for speech. See the module documentation for the rules.
///
/// ```
/// assert_eq!(
///     tts::normalize("Pay $20.05 by 3:30 pm."),
///     "Pay twenty dollars and five cents by three thirty P M."
/// );
/// ```
pub fn normalize(text: &str) -> String {
    let mut s = text.replace(['\u{2019}', '\u{2018}'], "'");
    for (pattern, replacement) in ABBREV_RES.iter() {
        s = pattern.replace_all(&s, *replacement).into_owned();
    }
    s = CONTEXT_DIGITS
        .replace_all(&s, |c: &Captures| {
            if c.get(4).is_some() {
                // "number 1,250" or "account 3.5": a quantity, left to the number passes.
                return c[0].to_string();
            }
            format!("{}{}{}", &c[1], space_of(&c[2]), speak_digits(&c[3]))
        })
        .into_owned();
    s = HASH_DIGITS
        .replace_all(&s, |c: &Captures| format!("number {}", speak_digits(&c[1])))
        .into_owned();
    s = CARD
        .replace_all(&s, |c: &Captures| speak_card(&c[0]))
        .into_owned();
    s = MASKED
        .replace_all(&s, |c: &Captures| {
            format!("ending in {}", speak_digits(&c[1]))
        })
        .into_owned();
    s = PHONE
        .replace_all(&s, |c: &Captures| speak_digits(&c[0]))
        .into_owned();
    s = ISO_DATE.replace_all(&s, iso_date).into_owned();
    s = SLASH_DATE.replace_all(&s, slash_date).into_owned();
    s = MONTH_DAY.replace_all(&s, month_day).into_owned();
    s = DAY_MONTH.replace_all(&s, day_month).into_owned();
    s = TIME.replace_all(&s, time).into_owned();
    // "5 p.m. today": that period abbreviated "p.m.", it did not end the sentence.
    s = MERIDIEM_MID_SENTENCE.replace_all(&s, "$1$2").into_owned();
    s = MONEY.replace_all(&s, money).into_owned();
    s = PERCENT.replace_all(&s, percent).into_owned();
    s = ORDINAL
        .replace_all(&s, |c: &Captures| match c[1].parse::<u64>() {
            Ok(n) => ordinal(n),
            Err(_) => c[0].to_string(),
        })
        .into_owned();
    s = CODE
        .replace_all(&s, |c: &Captures| speak_digits(&c[0]))
        .into_owned();
    s = DECIMAL
        .replace_all(&s, |c: &Captures| match parse_grouped(&c[1]) {
            Some(n) => decimal(n, &c[2]),
            None => speak_digits(&c[0]),
        })
        .into_owned();
    s = GROUPED
        .replace_all(&s, |c: &Captures| match parse_grouped(&c[0]) {
            Some(n) => cardinal(n),
            None => speak_digits(&c[0]),
        })
        .into_owned();
    s = NUMBER.replace_all(&s, bare_number).into_owned();
    s = s
        .replace('&', " and ")
        .replace('@', " at ")
        .replace('+', " plus ")
        .replace('#', " number ");
    let s = SPACES.replace_all(s.trim(), " ");
    SPACE_BEFORE_PUNCT.replace_all(&s, "$1").into_owned()
}

/// The separator between a keyword and its digits, normalised: "Account: 12" keeps its colon.
fn space_of(sep: &str) -> &'static str {
    if sep.contains(':') {
        ": "
    } else if sep.contains('#') {
        " number "
    } else if sep.is_empty() {
        ""
    } else {
        " "
    }
}

/// "1,250" → 1250; `None` for overflow.
fn parse_grouped(s: &str) -> Option<u64> {
    s.replace(',', "").parse().ok()
}

fn speak_card(card: &str) -> String {
    let groups: Vec<&str> = card.split([' ', '-']).collect();
    let masked = groups
        .iter()
        .take_while(|g| !g.chars().any(|c| c.is_ascii_digit()))
        .count();
    let visible = groups[masked..].join(" ");
    if masked > 0 {
        format!("ending in {}", speak_digits(&visible))
    } else {
        speak_digits(&visible)
    }
}

fn date_words(year: i32, month: u32, day: u32) -> Option<String> {
    chrono::NaiveDate::from_ymd_opt(year, month, day).map(speak_date)
}

fn iso_date(c: &Captures) -> String {
    let parsed = (c[1].parse(), c[2].parse(), c[3].parse());
    match parsed {
        (Ok(y), Ok(m), Ok(d)) => date_words(y, m, d),
        _ => None,
    }
    .unwrap_or_else(|| speak_digits(&c[0]))
}

fn slash_date(c: &Captures) -> String {
    let (Ok(a), Ok(b), Ok(y)) = (
        c[1].parse::<u32>(),
        c[2].parse::<u32>(),
        c[3].parse::<i32>(),
    ) else {
        return speak_digits(&c[0]);
    };
    // Two-digit years are this century: bank letters do not mention 1926.
    let year = if c[3].len() == 2 { 2000 + y } else { y };
    let (month, day) = if a > 12 && b <= 12 { (b, a) } else { (a, b) };
    date_words(year, month, day).unwrap_or_else(|| speak_digits(&c[0]))
}

fn month_number(name: &str) -> Option<u32> {
    let prefix: String = name.chars().take(3).collect();
    (1..=12).find(|&m| words::month_name(m).is_some_and(|full| full.starts_with(&prefix)))
}

fn month_day(c: &Captures) -> String {
    say_month_day(&c[1], &c[2], c.get(3).map(|m| m.as_str()), &c[0])
}

fn day_month(c: &Captures) -> String {
    let spoken = say_month_day(&c[3], &c[1], c.get(4).map(|m| m.as_str()), &c[0]);
    if c.get(2).is_none() || spoken == c[0] {
        return spoken;
    }
    // "the 1st of June" keeps its order: "the first of June".
    match spoken.split_once(' ') {
        Some((month, rest)) => match rest.split_once(',') {
            Some((day, year)) => format!("{day} of {month},{year}"),
            None => format!("{rest} of {month}"),
        },
        None => spoken,
    }
}

fn say_month_day(month: &str, day: &str, year: Option<&str>, whole: &str) -> String {
    let (Some(m), Ok(d)) = (month_number(month), day.parse::<u32>()) else {
        return whole.to_string();
    };
    let Some(name) = words::month_name(m) else {
        return whole.to_string();
    };
    if !(1..=31).contains(&d) {
        return whole.to_string();
    }
    match year.map(str::parse::<i32>) {
        Some(Ok(y)) => format!("{name} {}, {}", ordinal(u64::from(d)), speak_year(y)),
        _ => format!("{name} {}", ordinal(u64::from(d))),
    }
}

fn time(c: &Captures) -> String {
    let spoken = if let Some(h) = c.get(1) {
        let minute = c.get(2).map_or(Ok(0), |m| m.as_str().parse());
        let pm = c[3].eq_ignore_ascii_case("p");
        match (h.as_str().parse(), minute) {
            (Ok(h), Ok(m)) => speak_time(h, m, Some(pm)),
            _ => None,
        }
    } else {
        match (c[4].parse(), c[5].parse()) {
            (Ok(h), Ok(m)) => speak_time(h, m, None),
            _ => None,
        }
    };
    // A trailing period of "p.m." may also end the sentence; keep one.
    let period = if c[0].ends_with("m.") { "." } else { "" };
    spoken.map_or_else(|| c[0].to_string(), |s| format!("{s}{period}"))
}

fn money(c: &Captures) -> String {
    let (currency, int, frac, scale, negative) = if let Some(sym) = c.get(2) {
        (sym.as_str(), &c[3], c.get(4), c.get(5), c.get(1).is_some())
    } else {
        (&c[8], &c[6], c.get(7), None, false)
    };
    let (Some(currency), Some(units)) = (Currency::parse(currency), parse_grouped(int)) else {
        return c[0].to_string();
    };
    let (_, many, _, _) = currency.units();
    if let Some(scale) = scale {
        // "$2.5 million" → "two point five million dollars": cents make no sense here.
        let number = frac.map_or_else(|| cardinal(units), |f| decimal(units, f.as_str()));
        let sign = if negative { "minus " } else { "" };
        return format!("{sign}{number} {} {many}", scale.as_str().to_lowercase());
    }
    let cents = match frac.map(|f| f.as_str()) {
        None => 0,
        Some(f) if f.len() == 1 => f.parse::<u64>().unwrap_or(0) * 10,
        Some(f) => f.parse::<u64>().unwrap_or(0),
    };
    let total = units.checked_mul(100).and_then(|u| u.checked_add(cents));
    match total.and_then(|t| i64::try_from(t).ok()) {
        Some(t) => speak_money_cents(if negative { -t } else { t }, currency),
        None => c[0].to_string(),
    }
}

fn percent(c: &Captures) -> String {
    let Some(int) = parse_grouped(&c[1]) else {
        return c[0].to_string();
    };
    let number = c
        .get(2)
        .map_or_else(|| cardinal(int), |f| decimal(int, f.as_str()));
    format!("{number} percent")
}

fn bare_number(c: &Captures) -> String {
    let digits = &c[0];
    if digits.len() >= 5 || (digits.len() > 1 && digits.starts_with('0')) {
        return speak_digits(digits);
    }
    match digits.parse::<u64>() {
        Ok(n) => cardinal(n),
        Err(_) => speak_digits(digits),
    }
}
