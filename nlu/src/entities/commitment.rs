//! Several dates in one answer ("I can't pay today, but I can pay next Friday"): every clause's
//! date is kept, and the one the customer commits to is picked — the last one not said under a
//! negation, since a correction or a counter-offer comes after what it replaces.

use chrono::NaiveDateTime;

use super::datetime::{When, extract_when};

/// Words that open a new clause; a comma alone does not ("March 3, 2025" is one date).
const CLAUSE_WORDS: [&str; 4] = ["but", "instead", "or", "though"];
const NEGATIONS: [&str; 10] = [
    "not", "can't", "cant", "cannot", "won't", "wont", "don't", "dont", "unable", "never",
];

/// Byte ranges of the clauses of `text`: split at `;`, `.`/`!`/`?` followed by a space, and
/// before the words of `CLAUSE_WORDS`.
fn clauses(text: &str) -> Vec<(usize, usize)> {
    let mut cuts = vec![0];
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let next_space = bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
        if b == b';' || (matches!(b, b'.' | b'!' | b'?') && next_space) {
            cuts.push(i + 1);
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    for word in lower.split(|c: char| !c.is_ascii_alphanumeric() && c != '\'') {
        let start = at;
        at += word.len() + 1;
        if CLAUSE_WORDS.contains(&word) {
            cuts.push(start);
        }
    }
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

fn negated(clause: &str) -> bool {
    let lower = clause.to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .collect();
    // "not until Friday" / "can't pay until Friday" name the date they can pay.
    words
        .iter()
        .any(|w| NEGATIONS.contains(w) || w.ends_with("n't"))
        && !words.iter().any(|w| matches!(*w, "until" | "till" | "til"))
}

/// Every date/time said, one per clause, in the order said (spans index `text`).
pub fn extract_whens(text: &str, now: NaiveDateTime) -> Vec<When> {
    clauses(text)
        .into_iter()
        .filter_map(|(s, e)| {
            let mut w = extract_when(text.get(s..e)?, now)?;
            w.start += s;
            w.end += s;
            Some(w)
        })
        .collect()
}

/// The date the customer commits to among `whens` (from [`extract_whens`] on `text`): the last
/// one outside a negated clause, else the last one.
pub fn committed_when(text: &str, whens: &[When]) -> Option<When> {
    let spans = clauses(text);
    let in_negated = |w: &When| {
        spans
            .iter()
            .find(|(s, e)| *s <= w.start && w.start < *e)
            .and_then(|(s, e)| text.get(*s..*e))
            .is_some_and(negated)
    };
    whens
        .iter()
        .rev()
        .find(|w| !in_negated(w))
        .or(whens.last())
        .cloned()
}
