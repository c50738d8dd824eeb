//! Phone numbers: E.164 normalisation, the compact numeric key, and the timezones a number may be
//! in.
//!
//! # Normalisation
//!
//! [`normalize`] takes what people type into spreadsheets — national or international formats with
//! spaces, dashes, dots, slashes and brackets, a leading `+` or `00` — and returns the number in
//! E.164 (`+12125550123`) together with its ISO 3166 region. Parsing and validation are the
//! `phonenumber` crate's (Google's libphonenumber metadata); this module adds a strict character
//! check in front of it, because libphonenumber is deliberately lenient (it reads `1-800-FLOWERS`
//! as digits and skips stray text), and a bank must not dial a number that is not exactly the one
//! in its records. Every rejection carries a short reason in words ([`PhoneError`]).
//!
//! Extensions (`x123`, `ext. 4`) are rejected as "letters in number": the dialer cannot key them.
//!
//! # Keys
//!
//! [`key`] turns an E.164 string into its digits as a `u64` (E.164 allows at most 15 digits, and
//! 10^15 < 2^50). The do-not-call index ([`super::dnc`]) and the import's duplicate check use it.
//! Distinct E.164 numbers have distinct keys because the country code is part of the digits and
//! country codes are prefix-free.
//!
//! # Timezones
//!
//! [`timezones`] returns the candidate IANA zones of a number, conservatively: the dialer only
//! calls when the calling window holds in every candidate.
//! - Countries with one zone: that zone (table: `data/country_zones.txt`, taken from tzdata's
//!   `zone.tab`, public domain; see the file's header for version and date).
//! - US and Canada (+1): by area code (`data/nanp_area_codes.txt`, compiled by hand; an area code
//!   straddling a zone line lists both zones). Unknown area codes fall back to all the country's
//!   zones.
//! - Australia (+61): by the first digit of the national number (2 NSW/ACT, 3 VIC/TAS, 7 QLD,
//!   8 SA/WA/NT → all three, 4 mobiles → every mainland zone); anything else → all AU zones.
//! - China (+86): one legal time (Beijing). Xinjiang area codes (99x) and mobiles also list
//!   Asia/Urumqi, because much of Xinjiang keeps local time in daily life.
//! - Other multi-zone countries (RU, BR, MX, ID, KZ, ...): all of the country's zones.
//! - Region unknown (non-geographic numbers such as +800, +882): an empty `Vec`; the caller then
//!   needs an explicit zone or a campaign default.
//!
//! The tables are compiled in with `include_str!` and parsed once; nothing reads system files at
//! run time. Unit tests check that every zone name in them parses and that no area code repeats.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono_tz::Tz;
use phonenumber::country::Id;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, ParseError};

/// A validated phone number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PhoneNumber {
    /// The number in E.164: `+` then country code and national significant number, no spaces.
    pub e164: String,
    /// ISO 3166-1 alpha-2 region the number belongs to (`"US"`, `"CA"`, `"GB"`, `"JE"`), `None`
    /// for non-geographic numbers (global services such as +800).
    pub region: Option<String>,
    /// The country calling code (`1`, `44`, `61`).
    pub country_code: u16,
    /// The national significant number, digits only, leading zeros kept (Italian fixed lines).
    pub national: String,
}

impl PhoneNumber {
    /// The number's [`key`]: its E.164 digits as a `u64`.
    pub fn key(&self) -> u64 {
        // `normalize` only builds numbers of at most 15 digits, so this cannot fail; 0 is never the
        // key of a real number.
        key(&self.e164).unwrap_or(0)
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.e164)
    }
}

/// Why a string is not a usable phone number. `Display` gives the reason in words, suitable for an
/// import report read by operations staff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but whitespace.
    #[error("empty phone number")]
    Empty,
    /// Letters (including extensions such as `x12` and vanity numbers).
    #[error("letters in number")]
    Letters,
    /// A character that has no place in a phone number.
    #[error("unexpected character '{0}' in number")]
    BadCharacter(char),
    /// `+` anywhere but at the start, or more than one.
    #[error("misplaced '+'")]
    MisplacedPlus,
    /// Too few digits to be a phone number of that country (or any).
    #[error("too short")]
    TooShort,
    /// More digits than any number of that country (or E.164's 15).
    #[error("too long")]
    TooLong,
    /// The country calling code does not exist.
    #[error("unknown country code")]
    UnknownCountryCode,
    /// Parses, but is not a number that can exist in its region (wrong area code, wrong length
    /// for the range, unassigned range).
    #[error("not a valid {region} number")]
    Invalid {
        /// The region (`US`) or, when the region could not be told, the country code (`+1`).
        region: String,
    },
}

/// Digits allowed in E.164 (country code included).
const MAX_E164_DIGITS: usize = 15;

/// Normalises `raw` to E.164, reading national formats as numbers of `default_region`.
///
/// Accepts digits, spaces (including tabs and no-break spaces), `-`, `.`, `/`, `(`, `)`, one
/// leading `+`, and a leading `00` international prefix (also the region's own international
/// prefix, such as `011` in the US, which libphonenumber knows).
pub fn normalize(raw: &str, default_region: Id) -> Result<PhoneNumber, PhoneError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    let mut cleaned = String::with_capacity(trimmed.len());
    let mut digits = 0usize;
    for (i, c) in trimmed.char_indices() {
        match c {
            '0'..='9' => {
                digits += 1;
                cleaned.push(c);
            }
            '+' if i == 0 => cleaned.push('+'),
            '+' => return Err(PhoneError::MisplacedPlus),
            ' ' | '\t' | '\u{a0}' | '\u{202f}' | '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_alphabetic() => return Err(PhoneError::Letters),
            c => return Err(PhoneError::BadCharacter(c)),
        }
    }
    if let Some(rest) = cleaned.strip_prefix("00") {
        cleaned = format!("+{rest}");
        digits -= 2;
    }
    if digits < 4 {
        return Err(PhoneError::TooShort);
    }
    if digits > MAX_E164_DIGITS + 3 {
        // Leave room for national trunk prefixes and IDDs; libphonenumber judges the exact length.
        return Err(PhoneError::TooLong);
    }

    let parsed = parse(&cleaned, default_region)?;
    let code = parsed.country().code();
    // One metadata lookup serves both the region and validity (`is_valid` and `country().id()`
    // would each repeat it, and for +1 it runs patterns of every NANP region).
    let meta = parsed.metadata(&DATABASE);
    let region = meta.map(|m| m.id().to_owned());
    if !meta.is_some_and(|m| is_valid_in(m, &parsed.national().to_string())) {
        let region = match region {
            Some(id) if id.len() == 2 => id,
            _ if code == default_region_code(default_region) => default_region.as_ref().to_owned(),
            _ => format!("+{code}"),
        };
        return Err(PhoneError::Invalid { region });
    }
    let e164 = parsed.format().mode(Mode::E164).to_string();
    if e164.len() > MAX_E164_DIGITS + 1 {
        return Err(PhoneError::TooLong);
    }
    let national = e164
        .get(1 + code.to_string().len()..)
        .unwrap_or_default()
        .to_owned();
    // `001` is libphonenumber's id for non-geographic entities.
    let region = region.filter(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
    Ok(PhoneNumber {
        e164,
        region,
        country_code: code,
        national,
    })
}

/// Parses cleaned input (digits, optional leading `+`).
///
/// phonenumber 0.3.10 mis-parses international numbers when a default region is given: it strips
/// the default region's national prefix from the foreign number (`+86 10 6552 9988` with default
/// US loses the `1` of Beijing's area code). So numbers that carry their country code are parsed
/// without a default region: `+` numbers directly, and numbers dialled with the region's own
/// international prefix (`011 86 ...` from the US) are re-parsed from the country code on.
fn parse(cleaned: &str, default_region: Id) -> Result<phonenumber::PhoneNumber, PhoneError> {
    let map = |e| match e {
        ParseError::NoNumber | ParseError::TooShortAfterIdd | ParseError::TooShortNsn => {
            PhoneError::TooShort
        }
        ParseError::TooLong | ParseError::MalformedInteger(_) => PhoneError::TooLong,
        ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
    };
    if cleaned.starts_with('+') {
        return phonenumber::parse(None, cleaned).map_err(map);
    }
    let parsed = phonenumber::parse(Some(default_region), cleaned).map_err(map)?;
    let code = parsed.country().code();
    if code == default_region_code(default_region) {
        return Ok(parsed);
    }
    // Dialled with an international prefix: find where the country code starts (IDDs are at most
    // four digits) and parse from there.
    let code_digits = code.to_string();
    (1..=4)
        .find(|&i| {
            cleaned
                .get(i..)
                .is_some_and(|rest| rest.starts_with(&code_digits))
        })
        .map(|i| phonenumber::parse(None, format!("+{}", &cleaned[i..])).map_err(map))
        .unwrap_or(Ok(parsed))
}

/// libphonenumber's validity rule (what `PhoneNumber::is_valid` does after finding the metadata):
/// the general pattern matches and so does the pattern of at least one number type.
fn is_valid_in(meta: &phonenumber::Metadata, national: &str) -> bool {
    let d = meta.descriptors();
    d.general().is_match(national)
        && [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .any(|desc| desc.is_match(national))
}

/// The calling code of a region, or 0 when the metadata does not know it.
fn default_region_code(id: Id) -> u16 {
    DATABASE
        .by_id(id.as_ref())
        .map(|m| m.country_code())
        .unwrap_or(0)
}

/// The digits of an E.164 number (`+` optional) as a `u64`; `None` if it is empty, longer than
/// 15 digits, or holds anything but digits after the `+`.
pub fn key(e164: &str) -> Option<u64> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if digits.is_empty()
        || digits.len() > MAX_E164_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// The candidate timezones of `number` (see the module docs for the rules). Empty when unknown.
pub fn timezones(number: &PhoneNumber) -> Vec<Tz> {
    let Some(region) = number.region.as_deref() else {
        return Vec::new();
    };
    let national = number.national.as_str();
    match region {
        "US" | "CA" => {
            if let Some(zones) = national
                .get(..3)
                .and_then(|ac| ac.parse::<u16>().ok())
                .and_then(|ac| NANP.get(&ac))
            {
                return zones.clone();
            }
        }
        "AU" => {
            use chrono_tz::Australia::*;
            let zones: &[Tz] = match national.as_bytes().first() {
                Some(b'2') => &[Sydney],
                Some(b'3') => &[Melbourne, Hobart],
                Some(b'7') => &[Brisbane],
                Some(b'8') => &[Adelaide, Perth, Darwin],
                Some(b'4') => &[Sydney, Melbourne, Brisbane, Adelaide, Darwin, Perth],
                _ => &[],
            };
            if !zones.is_empty() {
                return zones.to_vec();
            }
        }
        "CN" => {
            let xinjiang_or_mobile = national.starts_with("99")
                || (national.starts_with('1') && !national.starts_with("10"));
            return if xinjiang_or_mobile {
                vec![chrono_tz::Asia::Shanghai, chrono_tz::Asia::Urumqi]
            } else {
                vec![chrono_tz::Asia::Shanghai]
            };
        }
        _ => {}
    }
    country_zones(region).to_vec()
}

/// All the IANA zones of a region per tzdata's `zone.tab` (empty if the region has none there).
pub fn country_zones(region: &str) -> &'static [Tz] {
    COUNTRY_ZONES.get(region).map(Vec::as_slice).unwrap_or(&[])
}

/// Parses a zone name leniently as to case (`america/new_york`), strictly as to spelling.
pub fn parse_timezone(name: &str) -> Option<Tz> {
    let name = name.trim();
    if let Ok(tz) = Tz::from_str(name) {
        return Some(tz);
    }
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .find(|tz| tz.name().eq_ignore_ascii_case(name))
}

const COUNTRY_ZONES_TXT: &str = include_str!("data/country_zones.txt");
const NANP_TXT: &str = include_str!("data/nanp_area_codes.txt");

static COUNTRY_ZONES: LazyLock<HashMap<&'static str, Vec<Tz>>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for line in data_lines(COUNTRY_ZONES_TXT) {
        let mut parts = line.split_whitespace();
        if let Some(cc) = parts.next() {
            // Names the compiled-in chrono-tz does not know are skipped (a test checks there are
            // none).
            let zones: Vec<Tz> = parts.filter_map(|z| Tz::from_str(z).ok()).collect();
            map.insert(cc, zones);
        }
    }
    map
});

static NANP: LazyLock<HashMap<u16, Vec<Tz>>> = LazyLock::new(|| {
    let mut map = HashMap::new();
    for line in data_lines(NANP_TXT) {
        let Some((zones, codes)) = line.split_once(':') else {
            continue;
        };
        let zones: Vec<Tz> = zones
            .split(',')
            .filter_map(|z| Tz::from_str(z.trim()).ok())
            .collect();
        for code in codes
            .split_whitespace()
            .filter_map(|c| c.parse::<u16>().ok())
        {
            map.insert(code, zones.clone());
        }
    }
    map
});

fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Australia, Europe, Pacific};

    fn us(raw: &str) -> PhoneNumber {
        normalize(raw, Id::US).expect("valid number")
    }

    #[test]
    fn formats_normalise_to_the_same_e164() {
        for raw in [
            "(212) 555-0123",
            "212-555-0123",
            "212.555.0123",
            "2125550123",
            "+1 212 555 0123",
            "1 (212) 555 0123",
            "001 212 555 0123",
            "011 1 212 555 0123",
            " +1\u{a0}212/555/0123 ",
        ] {
            let n = us(raw);
            assert_eq!(n.e164, "+12125550123", "{raw}");
            assert_eq!(n.region.as_deref(), Some("US"), "{raw}");
            assert_eq!(n.country_code, 1);
            assert_eq!(n.national, "2125550123");
            assert_eq!(n.key(), 12_125_550_123);
        }
    }

    #[test]
    fn international_numbers_with_another_default_region() {
        let uk = normalize("+44 20 7946 0958", Id::US).expect("uk");
        assert_eq!(uk.e164, "+442079460958");
        assert_eq!(uk.region.as_deref(), Some("GB"));
        let uk_national = normalize("020 7946 0958", Id::GB).expect("uk national");
        assert_eq!(uk_national.e164, "+442079460958");
        let cn = normalize("0086 10 6552 9988", Id::US).expect("cn");
        assert_eq!(cn.e164, "+861065529988");
        let cn_idd = normalize("011 86 138 0013 8000", Id::US).expect("cn via 011");
        assert_eq!(cn_idd.e164, "+8613800138000");
        assert_eq!(cn.region.as_deref(), Some("CN"));
        let au = normalize("(02) 9374 4000", Id::AU).expect("au");
        assert_eq!(au.e164, "+61293744000");
        let ca = normalize("+1 416 555 0199", Id::US).expect("ca");
        assert_eq!(ca.region.as_deref(), Some("CA"));
    }

    #[test]
    fn errors_say_why() {
        assert_eq!(normalize("", Id::US), Err(PhoneError::Empty));
        assert_eq!(normalize("   ", Id::US), Err(PhoneError::Empty));
        assert_eq!(normalize("12ab", Id::US), Err(PhoneError::Letters));
        assert_eq!(
            normalize("212 555 0123 x12", Id::US),
            Err(PhoneError::Letters)
        );
        assert_eq!(normalize("1-800-FLOWERS", Id::US), Err(PhoneError::Letters));
        assert_eq!(
            normalize("212#5550123", Id::US),
            Err(PhoneError::BadCharacter('#'))
        );
        assert_eq!(
            normalize("212+5550123", Id::US),
            Err(PhoneError::MisplacedPlus)
        );
        assert_eq!(normalize("555", Id::US), Err(PhoneError::TooShort));
        assert_eq!(
            normalize("12345678901234567890", Id::US),
            Err(PhoneError::TooLong)
        );
        // 123 is not an area code.
        let err = normalize("(123) 456-7890", Id::US).expect_err("invalid");
        assert_eq!(err.to_string(), "not a valid US number");
        let err = normalize("+44 20 1234", Id::US).expect_err("invalid");
        assert!(
            matches!(err, PhoneError::Invalid { .. } | PhoneError::TooShort),
            "{err:?}"
        );
        let err = normalize("+999 1234 5678", Id::US).expect_err("invalid cc");
        assert_eq!(err, PhoneError::UnknownCountryCode);
    }

    #[test]
    fn keys() {
        assert_eq!(key("+12125550123"), Some(12_125_550_123));
        assert_eq!(key("12125550123"), Some(12_125_550_123));
        assert_eq!(key("+999999999999999"), Some(999_999_999_999_999));
        assert_eq!(key("+1234567890123456"), None);
        assert_eq!(key("+"), None);
        assert_eq!(key("+1 212"), None);
    }

    #[test]
    fn us_area_codes() {
        assert_eq!(timezones(&us("212 555 0123")), [America::New_York]);
        assert_eq!(timezones(&us("213 555 0123")), [America::Los_Angeles]);
        assert_eq!(timezones(&us("312 555 0123")), [America::Chicago]);
        assert_eq!(timezones(&us("602 555 0123")), [America::Phoenix]);
        assert_eq!(timezones(&us("808 555 0123")), [Pacific::Honolulu]);
        assert_eq!(
            timezones(&us("850 555 0123")),
            [America::New_York, America::Chicago]
        );
        let toronto = normalize("+1 416 555 0199", Id::US).expect("ca");
        assert_eq!(timezones(&toronto), [America::Toronto]);
    }

    #[test]
    fn other_countries() {
        let uk = normalize("+44 20 7946 0958", Id::US).expect("uk");
        assert_eq!(timezones(&uk), [Europe::London]);
        let beijing = normalize("+86 10 6552 9988", Id::US).expect("cn");
        assert_eq!(timezones(&beijing), [Asia::Shanghai]);
        let sydney = normalize("+61 2 9374 4000", Id::US).expect("au");
        assert_eq!(timezones(&sydney), [Australia::Sydney]);
        let perth = normalize("+61 8 9222 1234", Id::US).expect("au 8");
        assert_eq!(
            timezones(&perth),
            [Australia::Adelaide, Australia::Perth, Australia::Darwin]
        );
        let au_mobile = normalize("+61 412 345 678", Id::US).expect("au mobile");
        assert_eq!(timezones(&au_mobile).len(), 6);
        let moscow = normalize("+7 495 123 4567", Id::US).expect("ru");
        let zones = timezones(&moscow);
        assert!(zones.contains(&Europe::Moscow) && zones.contains(&Asia::Vladivostok));
        let paris = normalize("+33 1 42 68 53 00", Id::US).expect("fr");
        assert_eq!(timezones(&paris), [Europe::Paris]);
    }

    #[test]
    fn unknown_region_gives_no_zone() {
        let n = PhoneNumber {
            e164: "+80012345678".into(),
            region: None,
            country_code: 800,
            national: "12345678".into(),
        };
        assert!(timezones(&n).is_empty());
    }

    #[test]
    fn tables_are_complete_and_consistent() {
        for line in data_lines(COUNTRY_ZONES_TXT) {
            for z in line.split_whitespace().skip(1) {
                assert!(
                    Tz::from_str(z).is_ok(),
                    "unknown zone {z} in country_zones.txt"
                );
            }
        }
        let mut seen = std::collections::HashSet::new();
        for line in data_lines(NANP_TXT) {
            let (zones, codes) = line.split_once(':').expect("ZONES: CODES");
            for z in zones.split(',') {
                assert!(Tz::from_str(z.trim()).is_ok(), "unknown zone {z}");
            }
            for c in codes.split_whitespace() {
                let c: u16 = c.parse().expect("numeric area code");
                assert!((200..1000).contains(&c), "area code {c}");
                assert!(seen.insert(c), "area code {c} listed twice");
            }
        }
        assert!(seen.len() > 350);
        assert!(country_zones("US").len() > 20);
        assert_eq!(country_zones("GB"), [Europe::London]);
    }

    #[test]
    fn timezone_names_parse_case_insensitively() {
        assert_eq!(parse_timezone("America/New_York"), Some(America::New_York));
        assert_eq!(
            parse_timezone(" america/new_york "),
            Some(America::New_York)
        );
        assert_eq!(parse_timezone("UTC"), Some(chrono_tz::UTC));
        assert_eq!(parse_timezone("Mars/Olympus"), None);
        assert_eq!(parse_timezone("EST5"), None);
    }
}
