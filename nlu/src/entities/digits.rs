//! Digit strings as read out on the phone: "four two one seven", "card ending 4217",
//! "oh", "double five", "triple seven", "forty two seventeen".

use serde::Serialize;

use crate::words::{Token, digit_word, tens_word, tokenize, unit_word};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigitString {
    pub digits: String,
    pub start: usize,
    pub end: usize,
}

fn word(toks: &[Token], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.text.as_str())
}

/// Digits said by one group of tokens at `toks[0]`, and how many tokens were used.
fn group(toks: &[Token]) -> Option<(String, usize)> {
    let w = word(toks, 0);
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '-') {
        return Some((w.replace('-', ""), 1));
    }
    let repeat = match w {
        "double" => 2,
        "triple" => 3,
        _ => 0,
    };
    if repeat > 0 {
        let d = digit_word(word(toks, 1))?;
        return Some((d.to_string().repeat(repeat), 2));
    }
    if let Some(t) = tens_word(w) {
        // "forty two" -> 42, "forty" -> 40
        if let Some(u) = unit_word(word(toks, 1)).filter(|u| (1..10).contains(u)) {
            return Some(((t + u).to_string(), 2));
        }
        return Some((t.to_string(), 1));
    }
    if let Some(u) = unit_word(w).filter(|u| (10..20).contains(u)) {
        return Some((u.to_string(), 1));
    }
    // "o" alone is too often a letter; accept it only next to other digits (checked by caller).
    digit_word(w).map(|d| (d.to_string(), 1))
}

/// Every run of spoken or written digits, in order. A lone "o"/"oh" is not a digit string.
pub fn extract_digit_strings(text: &str) -> Vec<DigitString> {
    let toks = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let mut digits = String::new();
        let mut j = i;
        let mut groups = 0;
        while j < toks.len() {
            // "hundred" after a digit word means an amount, not a digit string.
            if let Some((g, n)) = group(&toks[j..]) {
                digits.push_str(&g);
                j += n;
                groups += 1;
            } else if groups > 0
                && matches!(toks[j].text.as_str(), "and" | "dash")
                && group(&toks[j + 1..]).is_some()
            {
                j += 1;
            } else {
                break;
            }
        }
        let lone_oh = groups == 1 && matches!(toks[i].text.as_str(), "oh" | "o");
        // "two hundred", "five thousand": an amount, not digits read out.
        let amount = toks.get(j).is_some_and(|t| {
            matches!(
                t.text.as_str(),
                "hundred" | "thousand" | "million" | "grand"
            )
        });
        if amount {
            i = j + 1;
            continue;
        }
        if groups > 0 && !lone_oh {
            out.push(DigitString {
                digits,
                start: toks[i].start,
                end: toks[j - 1].end,
            });
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// The longest digit string in `text` (the card or account number the caller read out).
pub fn extract_digits(text: &str) -> Option<DigitString> {
    let all = extract_digit_strings(text);
    let best = all.iter().map(|d| d.digits.len()).max()?;
    all.into_iter().find(|d| d.digits.len() == best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrasings() {
        let cases = [
            ("four two one seven", "4217"),
            ("card ending 4217", "4217"),
            ("it ends in four two one seven", "4217"),
            ("double five one two", "5512"),
            ("oh four one", "041"),
            ("one oh one", "101"),
            ("triple seven", "777"),
            ("forty two seventeen", "4217"),
            ("nine eight seven six five four three two", "98765432"),
            ("my account number is 12345678", "12345678"),
            ("zero zero seven", "007"),
            ("five five five dash one two three four", "5551234"),
            ("uh it's 4 2 1 7", "4217"),
        ];
        for (text, want) in cases {
            assert_eq!(
                extract_digits(text).map(|d| d.digits),
                Some(want.to_string()),
                "{text}"
            );
        }
        assert_eq!(extract_digits("oh I see"), None);
        assert_eq!(extract_digits("hello there"), None);
        assert_eq!(extract_digits("two hundred"), None);
    }
}
