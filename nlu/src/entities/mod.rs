//! Rule-based entities for bank calls; no model involved, every extractor is a pure function
//! of the text (and, for dates, of the reference time passed in).

mod choice;
mod datetime;
mod digits;
mod display_serde;
mod money;
mod yesno;

pub use choice::{ChoiceMatch, match_choice};
pub use datetime::{PartOfDay, When, extract_when};
pub use digits::{DigitString, extract_digit_strings, extract_digits};
pub use money::{Money, extract_money};
pub use yesno::{YesNo, extract_yes_no};

use chrono::NaiveDateTime;
use serde::Serialize;

/// Everything the extractors found in one utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entities {
    pub yes_no: Option<YesNo>,
    pub when: Option<When>,
    /// `when` resolved to one point in time against the reference time.
    #[serde(serialize_with = "display_serde::opt")]
    pub when_resolved: Option<NaiveDateTime>,
    pub money: Vec<Money>,
    pub digits: Option<DigitString>,
    pub choice: Option<ChoiceMatch>,
}

/// Runs every extractor. `choices` are the options just offered (may be empty).
pub fn extract_all<S: AsRef<str>>(text: &str, now: NaiveDateTime, choices: &[S]) -> Entities {
    let when = extract_when(text, now);
    let money = extract_money(text);
    // Digits inside an amount or a date/time belong to those, not to a read-out number.
    let taken: Vec<(usize, usize)> = money
        .iter()
        .map(|m| (m.start, m.end))
        .chain(when.iter().map(|w| (w.start, w.end)))
        .collect();
    let digits = extract_digit_strings(text)
        .into_iter()
        .filter(|d| !taken.iter().any(|&(s, e)| d.start < e && s < d.end))
        .fold(None::<DigitString>, |best, d| match best {
            Some(b) if b.digits.len() >= d.digits.len() => Some(b),
            _ => Some(d),
        });
    Entities {
        yes_no: extract_yes_no(text),
        when_resolved: when.as_ref().map(|w| w.resolve(now)),
        when,
        money,
        digits,
        choice: match_choice(text, choices),
    }
}
