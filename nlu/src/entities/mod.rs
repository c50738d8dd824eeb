//! Rule-based entities for bank calls; no model involved, every extractor is a pure function
//! of the text (and, for dates, of the reference time passed in).

mod choice;
mod commitment;
mod datetime;
mod digits;
mod display_serde;
mod money;
mod yesno;

pub use choice::{ChoiceMatch, match_choice};
pub use commitment::{committed_when, extract_whens};
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
    /// The date/time the customer commits to ([`committed_when`]): in "I can't pay today, but I
    /// can pay next Friday" it is next Friday.
    pub when: Option<When>,
    /// Every date/time said, in order.
    pub whens: Vec<When>,
    /// `when` resolved to one point in time against the reference time.
    #[serde(serialize_with = "display_serde::opt")]
    pub when_resolved: Option<NaiveDateTime>,
    pub money: Vec<Money>,
    pub digits: Option<DigitString>,
    pub choice: Option<ChoiceMatch>,
}

/// Runs every extractor. `choices` are the options just offered (may be empty).
pub fn extract_all<S: AsRef<str>>(text: &str, now: NaiveDateTime, choices: &[S]) -> Entities {
    let whens = extract_whens(text, now);
    let when = committed_when(text, &whens);
    let money = extract_money(text);
    // Digits inside an amount or a date/time belong to those, not to a read-out number.
    let taken: Vec<(usize, usize)> = money
        .iter()
        .map(|m| (m.start, m.end))
        .chain(whens.iter().map(|w| (w.start, w.end)))
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
        whens,
        money,
        digits,
        choice: match_choice(text, choices),
    }
}
