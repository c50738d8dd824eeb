//! Numbers, money, dates and times spelled out as en-US words: the building blocks that the text
//! normaliser and flow templates share, so a flow's `{{amount | money}}` and a literal "$12.50" in a
//! prompt sound the same.

use chrono::{Datelike, NaiveDate};
use num2words::{Num2Err, Num2Words};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A currency the normaliser knows how to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    Usd,
    Eur,
    Gbp,
}

impl Currency {
    /// `$`, `€`, `£` or an ISO code (`USD`, `eur`, …).
    pub fn parse(symbol_or_code: &str) -> Option<Currency> {
        match symbol_or_code.to_ascii_uppercase().as_str() {
            "$" | "USD" => Some(Currency::Usd),
            "€" | "EUR" => Some(Currency::Eur),
            "£" | "GBP" => Some(Currency::Gbp),
            _ => None,
        }
    }

    /// (major singular, major plural, minor singular, minor plural).
    pub(crate) fn units(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Currency::Usd => ("dollar", "dollars", "cent", "cents"),
            Currency::Eur => ("euro", "euros", "cent", "cents"),
            Currency::Gbp => ("pound", "pounds", "penny", "pence"),
        }
    }
}

/// num2words' English in en-US style: it says "one thousand and five", the British way; an en-US
/// prompt drops the "and" ("one thousand five"). Hyphens ("forty-two") stay, as written English
/// has them. `Err` only for numbers beyond num2words' range, which a `u64` never
/// reaches; the digits are then left for espeak to read.
fn en_us(spelled: Result<String, Num2Err>, n: u64) -> String {
    match spelled {
        Ok(words) => words
            .split(' ')
            .filter(|w| *w != "and")
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => n.to_string(),
    }
}

/// "1250" → "one thousand two hundred fifty" (American style: no "and", no commas, so no pauses).
pub fn cardinal(n: u64) -> String {
    en_us(Num2Words::new(n).to_words(), n)
}

/// 15 → "fifteenth", 21 → "twenty-first", 100 → "one hundredth".
pub fn ordinal(n: u64) -> String {
    en_us(Num2Words::new(n).ordinal().to_words(), n)
}

/// One word per digit; other characters are ignored. "4217" → "four two one seven".
fn digit_words(s: &str) -> Vec<String> {
    s.chars()
        .filter_map(|c| c.to_digit(10).map(|d| cardinal(u64::from(d))))
        .collect()
}

/// Reads a number or code character by character, in groups, for card numbers, account numbers,
/// references and phone numbers: "4217" → "four two one seven"; "4111 1111 1111 1111" and
/// "4111-1111-…" keep their groups, separated by commas (a short pause); an ungrouped run longer
/// than four digits is grouped by fours from the left, a lone trailing digit joining the group
/// before it ("123456789" → "one two three four, five six seven eight nine"). Letters are spelled
/// as capitals ("AB12" → "A B one two"); other characters separate groups.
pub fn speak_digits(code: &str) -> String {
    let groups: Vec<&str> = code
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|g| !g.is_empty())
        .collect();
    let mut spoken: Vec<String> = Vec::new();
    for group in groups {
        let chars: Vec<char> = group.chars().collect();
        let mut chunks: Vec<&[char]> = chars.chunks(4).collect();
        if chars.len() > 4 && chars.len() % 4 == 1 {
            // Fold the lone trailing character into the previous group.
            let n = chunks.len();
            chunks.truncate(n - 2);
            chunks.push(&chars[(n - 2) * 4..]);
        }
        for chunk in chunks {
            let words: Vec<String> = chunk.iter().map(|&c| char_word(c)).collect();
            spoken.push(words.join(" "));
        }
    }
    spoken.join(", ")
}

fn char_word(c: char) -> String {
    match c.to_digit(10) {
        Some(d) => cardinal(u64::from(d)),
        None => c.to_ascii_uppercase().to_string(),
    }
}

/// Digits after a decimal point, one by one: "4.05" → "four point zero five".
pub fn decimal(int_part: u64, frac_digits: &str) -> String {
    let frac = digit_words(frac_digits);
    if frac.is_empty() {
        return cardinal(int_part);
    }
    format!("{} point {}", cardinal(int_part), frac.join(" "))
}

/// An amount of money: `speak_money(1250.5, Currency::Usd)` → "one thousand two hundred fifty
/// dollars and fifty cents". Rounded to the cent; whole amounts drop the cents; amounts under one
/// unit say only the cents; negative amounts start with "minus".
pub fn speak_money(amount: f64, currency: Currency) -> String {
    let cents = (amount * 100.0).round();
    // Beyond i64 cents a bank prompt is wrong anyway; saturate rather than wrap.
    speak_money_cents(
        cents.clamp(i64::MIN as f64, i64::MAX as f64) as i64,
        currency,
    )
}

/// Like [`speak_money`] from an exact number of minor units (cents, pence).
pub fn speak_money_cents(cents: i64, currency: Currency) -> String {
    let (major_one, major_many, minor_one, minor_many) = currency.units();
    let sign = if cents < 0 { "minus " } else { "" };
    let cents = cents.unsigned_abs();
    let (major, minor) = (cents / 100, cents % 100);
    let major_words = format!(
        "{} {}",
        cardinal(major),
        if major == 1 { major_one } else { major_many }
    );
    let minor_words = format!(
        "{} {}",
        cardinal(minor),
        if minor == 1 { minor_one } else { minor_many }
    );
    match (major, minor) {
        (_, 0) => format!("{sign}{major_words}"),
        (0, _) => format!("{sign}{minor_words}"),
        _ => format!("{sign}{major_words} and {minor_words}"),
    }
}

/// Years the American way: 2026 → "twenty twenty-six", 2005 → "two thousand five",
/// 1984 → "nineteen eighty-four", 1900 → "nineteen hundred", 1905 → "nineteen oh five". The sign
/// is ignored (a bank never says "BC").
pub fn speak_year(year: i32) -> String {
    let y = u64::from(year.unsigned_abs());
    // num2words writes "nineteen oh-five"; spelled like a clock time's "nine oh five" instead.
    en_us(Num2Words::new(y).year().to_words(), y).replace("oh-", "oh ")
}

/// en-US long date: 2026-03-15 → "March fifteenth, twenty twenty-six".
pub fn speak_date(date: NaiveDate) -> String {
    format!(
        "{} {}, {}",
        MONTHS[date.month0() as usize],
        ordinal(u64::from(date.day())),
        speak_year(date.year())
    )
}

/// Month name from 1-based number.
pub(crate) fn month_name(month: u32) -> Option<&'static str> {
    MONTHS.get((month as usize).checked_sub(1)?).copied()
}

/// A clock time: (15, 30) → "three thirty P M"; (9, 5, am) → "nine oh five A M"; (12, 0) → "twelve
/// P M"; (0, 0) → "twelve A M". `meridiem` is `Some(true)` for p.m., `Some(false)` for a.m. and
/// `None` for a 24-hour time, which is converted to a.m./p.m. because that is how en-US speaks.
pub fn speak_time(hour: u32, minute: u32, meridiem: Option<bool>) -> Option<String> {
    if minute > 59 {
        return None;
    }
    let (h12, pm) = match meridiem {
        Some(pm) if (1..=12).contains(&hour) => (hour, pm),
        Some(_) => return None,
        None if hour < 24 => (
            if hour.is_multiple_of(12) {
                12
            } else {
                hour % 12
            },
            hour >= 12,
        ),
        None => return None,
    };
    let minutes = match minute {
        0 => String::new(),
        1..=9 => format!(" oh {}", cardinal(u64::from(minute))),
        _ => format!(" {}", cardinal(u64::from(minute))),
    };
    let suffix = if pm { "P M" } else { "A M" };
    Some(format!("{}{minutes} {suffix}", cardinal(u64::from(h12))))
}
