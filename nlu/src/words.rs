//! Word-level tokenisation and words-to-numbers parsing shared by every entity extractor.
//!
//! Tokens are lower-cased, keep their byte span in the original text, and keep digit groups such
//! as `1,250.50`, `3:30` and `15th` whole so the extractors see what the caller said.

/// One lower-cased word, number or currency sign with its byte span in the source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Splits `text` into lower-case tokens. Currency signs are tokens of their own; hyphens and
/// punctuation separate words; apostrophes inside words are kept (`don't`, `o'clock`).
pub fn tokenize(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let end_of = |k: usize| chars.get(k).map_or(text.len(), |c| c.0);
    while i < chars.len() {
        let (pos, c) = chars[i];
        if matches!(c, '$' | '£' | '€') {
            out.push(Token {
                text: c.to_string(),
                start: pos,
                end: end_of(i + 1),
            });
            i += 1;
        } else if c.is_ascii_digit() {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                let next_digit = chars.get(j + 1).is_some_and(|n| n.1.is_ascii_digit());
                if d.is_ascii_digit() || (matches!(d, ',' | '.' | ':') && next_digit) {
                    j += 1;
                } else {
                    break;
                }
            }
            // Keep ordinal suffixes (15th, 3rd) attached; split other letters off (3pm).
            let rest: String = chars[j..]
                .iter()
                .take(2)
                .map(|c| c.1.to_ascii_lowercase())
                .collect();
            let after = chars.get(j + 2).is_none_or(|c| !c.1.is_alphanumeric());
            if ["st", "nd", "rd", "th"].contains(&rest.as_str()) && after {
                j += 2;
            }
            let (s, e) = (pos, end_of(j));
            out.push(Token {
                text: text[s..e].to_lowercase(),
                start: s,
                end: e,
            });
            i = j;
        } else if c.is_alphabetic() {
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j].1;
                let apostrophe = matches!(d, '\'' | '’')
                    && chars.get(j + 1).is_some_and(|n| n.1.is_alphabetic());
                if d.is_alphabetic() || apostrophe {
                    j += 1;
                } else {
                    break;
                }
            }
            let (s, e) = (pos, end_of(j));
            out.push(Token {
                text: text[s..e].to_lowercase().replace('’', "'"),
                start: s,
                end: e,
            });
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// 0–19 as words. "oh"/"o" are digits only inside digit strings, see [`digit_word`].
pub fn unit_word(w: &str) -> Option<u64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS.iter().position(|u| *u == w).map(|p| p as u64)
}

pub fn tens_word(w: &str) -> Option<u64> {
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    TENS.iter()
        .position(|t| *t == w)
        .map(|p| 20 + 10 * p as u64)
}

/// Ordinal words ("third", "twenty" + "first" is handled by the caller) and digit ordinals ("15th").
pub fn ordinal_word(w: &str) -> Option<u64> {
    const ORD: [&str; 20] = [
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
    ];
    if let Some(p) = ORD.iter().position(|o| *o == w) {
        return Some(p as u64);
    }
    match w {
        "twentieth" => return Some(20),
        "thirtieth" => return Some(30),
        _ => {}
    }
    let digits = w
        .strip_suffix("st")
        .or(w.strip_suffix("nd"))
        .or(w.strip_suffix("rd"));
    let digits = digits.or(w.strip_suffix("th"))?;
    digits.parse().ok()
}

/// A single spoken digit, including the telephone "oh".
pub fn digit_word(w: &str) -> Option<u8> {
    match w {
        "oh" | "o" | "zero" | "nought" => Some(0),
        _ => unit_word(w).filter(|v| *v < 10).map(|v| v as u8),
    }
}

/// Parses a plain number written with digits: `42`, `1,250.50`.
pub fn digits_value(w: &str) -> Option<f64> {
    if !w.starts_with(|c: char| c.is_ascii_digit()) || w.contains(':') {
        return None;
    }
    let plain = w.replace(',', "");
    plain.parse::<f64>().ok()
}

/// A cardinal number read from the start of `tokens`: the value and how many tokens it used.
/// Handles "two hundred and fifty", "a hundred and twenty", "one thousand two hundred",
/// "twenty-five" (already split by [`tokenize`]) and digit tokens ("1,250.50").
/// Stops before a second bare unit ("four two" is a digit string, not a number).
pub fn parse_cardinal(tokens: &[Token]) -> Option<(f64, usize)> {
    let first = tokens.first()?;
    if let Some(v) = digits_value(&first.text) {
        // "5 hundred", "2 thousand"
        if let Some(m) = tokens.get(1).and_then(|t| multiplier(&t.text)) {
            return Some((v * m as f64, 2));
        }
        return Some((v, 1));
    }
    let (mut total, mut current) = (0u64, 0u64);
    let mut used = 0;
    let mut last: Option<Kind> = None;
    let mut i = 0;
    while let Some(tok) = tokens.get(i) {
        let w = tok.text.as_str();
        let next = tokens.get(i + 1).map(|t| t.text.as_str());
        if let Some(u) = unit_word(w) {
            match last {
                None | Some(Kind::Scale) => current += u,
                Some(Kind::Tens) if u < 10 && u > 0 => current += u,
                Some(Kind::And) => current += u,
                _ => break,
            }
            last = Some(if u < 10 { Kind::Unit } else { Kind::Teen });
        } else if let Some(t) = tens_word(w) {
            if !matches!(last, None | Some(Kind::Scale) | Some(Kind::And)) {
                break;
            }
            current += t;
            last = Some(Kind::Tens);
        } else if w == "hundred" && !matches!(last, Some(Kind::And)) {
            if current % 100 == 0 && current >= 100 {
                break;
            }
            let below = current % 100;
            current = current - below + below.max(1) * 100;
            last = Some(Kind::Scale);
        } else if let Some(m) = multiplier(w).filter(|m| *m >= 1000) {
            if matches!(last, Some(Kind::And)) {
                break;
            }
            total += current.max(1) * m;
            current = 0;
            last = Some(Kind::Scale);
        } else if matches!(w, "a" | "an")
            && last.is_none()
            && next.is_some_and(|n| multiplier(n).is_some())
        {
            current = 1;
            last = Some(Kind::Unit);
            // "a" then "hundred": let the scale word see a leading unit of one.
            i += 1;
            used = i;
            continue;
        } else if w == "and"
            && matches!(last, Some(Kind::Scale))
            && next.is_some_and(|n| unit_word(n).is_some() || tens_word(n).is_some())
        {
            last = Some(Kind::And);
        } else {
            break;
        }
        i += 1;
        if !matches!(last, Some(Kind::And)) {
            used = i;
        }
    }
    (used > 0).then_some(((total + current) as f64, used))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Unit,
    Teen,
    Tens,
    Scale,
    And,
}

fn multiplier(w: &str) -> Option<u64> {
    match w {
        "hundred" => Some(100),
        "thousand" | "grand" => Some(1000),
        "million" => Some(1_000_000),
        _ => None,
    }
}

/// Converts every number written in words inside `text` to digits ("two hundred and fifty
/// dollars" -> "250 dollars"); useful for logs and for matching.
pub fn numbers_to_digits(text: &str) -> String {
    let toks = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some((v, n)) = parse_cardinal(&toks[i..]) {
            out.push(format_number(v));
            i += n;
        } else {
            out.push(toks[i].text.clone());
            i += 1;
        }
    }
    out.join(" ")
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Option<(f64, usize)> {
        parse_cardinal(&tokenize(s))
    }

    #[test]
    fn cardinals() {
        let cases = [
            ("two hundred and fifty", 250.0, 4),
            ("a hundred and twenty", 120.0, 4),
            ("one thousand two hundred and fifty", 1250.0, 6),
            ("twenty-five", 25.0, 2),
            ("fifteen", 15.0, 1),
            ("1,250.50", 1250.5, 1),
            ("three thousand", 3000.0, 2),
            ("ninety nine", 99.0, 2),
            ("two grand", 2000.0, 2),
            ("5 hundred", 500.0, 2),
            ("one million", 1_000_000.0, 2),
        ];
        for (text, v, n) in cases {
            assert_eq!(num(text), Some((v, n)), "{text}");
        }
        assert_eq!(num("four two"), Some((4.0, 1)));
        assert_eq!(num("hello"), None);
        assert_eq!(num("and"), None);
    }

    #[test]
    fn tokens_keep_spans_and_groups() {
        let t = tokenize("Pay $1,250.50 at 3pm on the 15th, don't");
        let words: Vec<&str> = t.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            words,
            [
                "pay", "$", "1,250.50", "at", "3", "pm", "on", "the", "15th", "don't"
            ]
        );
        assert_eq!(&"Pay $1,250.50"[t[2].start..t[2].end], "1,250.50");
        assert_eq!(
            numbers_to_digits("two hundred and fifty dollars"),
            "250 dollars"
        );
    }
}
