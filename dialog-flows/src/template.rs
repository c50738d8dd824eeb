//! Spoken text with `{{ name | filter }}` placeholders.
//!
//! Deliberately small — names and filters, no logic — so that every template can be checked
//! against the lead schema and the slots before a flow goes live, and so that what reaches the
//! voice is always speakable. Filters turn values into words a voice reads correctly:
//!
//! | filter | input | spoken |
//! | --- | --- | --- |
//! | `money` | 1234.5 | one thousand two hundred and thirty-four dollars and fifty cents |
//! | `date` | 2026-12-01 | Tuesday, December first |
//! | `time` | 14:30 | two thirty p.m. |
//! | `digits` | "4217" | four two one seven |
//! | `card` | "4111111111114217" | card ending in four two one seven |
//! | `number` | 12 | twelve |
//! | `ordinal` | 3 | third |

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use num2words::Num2Words;

use crate::error::{Diagnostic, Pos};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Money,
    Date,
    Time,
    Digits,
    Card,
    Number,
    Ordinal,
}

impl Filter {
    pub const ALL: [(&'static str, Filter); 7] = [
        ("money", Filter::Money),
        ("date", Filter::Date),
        ("time", Filter::Time),
        ("digits", Filter::Digits),
        ("card", Filter::Card),
        ("number", Filter::Number),
        ("ordinal", Filter::Ordinal),
    ];
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Var {
        path: Vec<String>,
        filters: Vec<Filter>,
        pos: Pos,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub source: String,
    pub pos: Pos,
    pub parts: Vec<Part>,
}

impl Template {
    /// A template with no placeholders.
    pub fn plain(text: &str) -> Template {
        Template {
            source: text.to_string(),
            pos: Pos::default(),
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// Parse `source` found at `pos`; `col_offset` is where the text starts after `pos` (1 for a
    /// quoted scalar). Positions inside multi-line text are given at the start of the text.
    pub fn parse(source: &str, pos: Pos, col_offset: usize) -> Result<Template, Diagnostic> {
        let one_line = !source.contains('\n');
        let at = |byte: usize| {
            if one_line {
                Pos::new(
                    pos.line,
                    pos.col + col_offset + source[..byte].chars().count(),
                )
            } else {
                pos
            }
        };
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(open) = source[rest..].find("{{").map(|i| i + rest) {
            if open > rest {
                parts.push(Part::Text(source[rest..open].to_string()));
            }
            let Some(close) = source[open..].find("}}").map(|i| i + open) else {
                return Err(Diagnostic::new(
                    at(open),
                    "template",
                    "`{{` is never closed with `}}`",
                ));
            };
            let inner = &source[open + 2..close];
            let mut pieces = inner.split('|');
            let name = pieces.next().unwrap_or("").trim();
            let name_at = at(open + 2 + (inner.len() - inner.trim_start().len()));
            if name.is_empty() {
                return Err(Diagnostic::new(
                    at(open),
                    "template",
                    "empty placeholder `{{ }}`: write a name such as `{{lead.first_name}}`",
                ));
            }
            if !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                || name.split('.').any(str::is_empty)
            {
                return Err(Diagnostic::new(
                    name_at,
                    "template",
                    format!(
                        "`{name}` is not a name: placeholders hold a dotted name and filters only, e.g. `{{{{slots.amount | money}}}}`"
                    ),
                ));
            }
            let mut filters = Vec::new();
            for f in pieces {
                let f = f.trim();
                match Filter::ALL.iter().find(|(n, _)| *n == f) {
                    Some((_, filter)) => filters.push(*filter),
                    None => {
                        let known: Vec<&str> = Filter::ALL.iter().map(|(n, _)| *n).collect();
                        return Err(Diagnostic::new(
                            name_at,
                            "unknown-filter",
                            format!("unknown filter `{f}`; filters are {}", known.join(", ")),
                        ));
                    }
                }
            }
            parts.push(Part::Var {
                path: name.split('.').map(str::to_string).collect(),
                filters,
                pos: name_at,
            });
            rest = close + 2;
        }
        if rest < source.len() {
            if source[rest..].contains("}}") {
                let i = rest + source[rest..].find("}}").unwrap_or(0);
                return Err(Diagnostic::new(
                    at(i),
                    "template",
                    "`}}` without a matching `{{`",
                ));
            }
            parts.push(Part::Text(source[rest..].to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            pos,
            parts,
        })
    }

    /// The names used, with their positions.
    pub fn names(&self) -> impl Iterator<Item = (&[String], Pos)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { path, pos, .. } => Some((path.as_slice(), *pos)),
            Part::Text(_) => None,
        })
    }

    /// Render with values from `lookup`; `currency` names the money unit (ISO code).
    pub fn render(&self, lookup: &dyn Fn(&[String]) -> Value, currency: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var { path, filters, .. } => {
                    let v = lookup(path);
                    if filters.is_empty() {
                        out.push_str(&v.to_string());
                    } else {
                        let mut text = v.to_string();
                        let mut cur = v;
                        for f in filters {
                            text = apply(*f, &cur, currency);
                            cur = Value::Text(text.clone());
                        }
                        out.push_str(&text);
                    }
                }
            }
        }
        collapse_spaces(&out)
    }
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c == ' ' {
            if !space {
                out.push(c);
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out.trim().to_string()
}

fn words(n: i64) -> String {
    Num2Words::new(n)
        .to_words()
        .unwrap_or_else(|_| n.to_string())
}

fn ordinal(n: i64) -> String {
    Num2Words::new(n)
        .ordinal()
        .to_words()
        .unwrap_or_else(|_| n.to_string())
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Text(s) => s.replace([',', '$', '€', '£'], "").trim().parse().ok(),
        _ => None,
    }
}

fn digit_word(c: char) -> Option<&'static str> {
    Some(match c {
        '0' => "zero",
        '1' => "one",
        '2' => "two",
        '3' => "three",
        '4' => "four",
        '5' => "five",
        '6' => "six",
        '7' => "seven",
        '8' => "eight",
        '9' => "nine",
        _ => return None,
    })
}

fn spell_digits(s: &str) -> String {
    s.chars()
        .filter_map(digit_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn currency_names(code: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match code.to_ascii_uppercase().as_str() {
        "EUR" => ("euro", "euros", "cent", "cents"),
        "GBP" => ("pound", "pounds", "penny", "pence"),
        _ => ("dollar", "dollars", "cent", "cents"),
    }
}

/// Apply one speakable filter. Values a filter cannot read are spoken as they are.
pub fn apply(f: Filter, v: &Value, currency: &str) -> String {
    match f {
        Filter::Money => match number_of(v) {
            Some(n) if n.is_finite() && n.abs() < 1e13 => {
                let cents_total = (n.abs() * 100.0).round() as i64;
                let (major, minor) = (cents_total / 100, cents_total % 100);
                let (one, many, sub_one, sub_many) = currency_names(currency);
                let mut s = String::new();
                if n < 0.0 {
                    s.push_str("minus ");
                }
                s.push_str(&words(major));
                s.push(' ');
                s.push_str(if major == 1 { one } else { many });
                if minor > 0 {
                    s.push_str(" and ");
                    s.push_str(&words(minor));
                    s.push(' ');
                    s.push_str(if minor == 1 { sub_one } else { sub_many });
                }
                s
            }
            _ => v.to_string(),
        },
        Filter::Date => {
            let d: Option<NaiveDate> = match v {
                Value::Date(d) => Some(*d),
                Value::DateTime(d) => Some(d.date()),
                Value::Text(s) => Value::parse_date(s),
                _ => None,
            };
            match d {
                Some(d) => format!(
                    "{}, {} {}",
                    d.format("%A"),
                    d.format("%B"),
                    ordinal(i64::from(d.day()))
                ),
                None => v.to_string(),
            }
        }
        Filter::Time => {
            let t: Option<NaiveTime> = match v {
                Value::Time(t) => Some(*t),
                Value::DateTime(d) => Some(d.time()),
                Value::Text(s) => Value::parse_time(s),
                _ => None,
            };
            match t {
                Some(t) => {
                    let (pm, h12) = t.hour12();
                    let h = words(i64::from(h12));
                    let m = t.minute();
                    let mins = match m {
                        0 => String::new(),
                        1..=9 => format!(" oh {}", words(i64::from(m))),
                        _ => format!(" {}", words(i64::from(m))),
                    };
                    format!("{h}{mins} {}", if pm { "p.m." } else { "a.m." })
                }
                None => v.to_string(),
            }
        }
        Filter::Digits => {
            let s = v.to_string();
            if s.chars().any(|c| c.is_ascii_digit()) {
                spell_digits(&s)
            } else {
                s
            }
        }
        Filter::Card => {
            let s: String = v.to_string().chars().filter(char::is_ascii_digit).collect();
            if s.is_empty() {
                return v.to_string();
            }
            let last4: String = s.chars().skip(s.len().saturating_sub(4)).collect();
            format!("card ending in {}", spell_digits(&last4))
        }
        Filter::Number => match number_of(v) {
            Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => words(n as i64),
            Some(n) if n.is_finite() => Num2Words::new(n)
                .to_words()
                .unwrap_or_else(|_| n.to_string()),
            _ => v.to_string(),
        },
        Filter::Ordinal => match number_of(v) {
            Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => ordinal(n as i64),
            _ => v.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, v: Value) -> String {
        Template::parse(src, Pos::new(1, 1), 0)
            .expect("parses")
            .render(&|_p: &[String]| v.clone(), "USD")
    }

    #[test]
    fn filters_make_values_speakable() {
        assert_eq!(
            render("{{x | money}}", Value::Number(1234.5)),
            "one thousand two hundred and thirty-four dollars and fifty cents"
        );
        assert_eq!(render("{{x|money}}", Value::Number(1.0)), "one dollar");
        assert_eq!(
            render("due {{x | date}}.", Value::Text("2026-12-01".into())),
            "due Tuesday, December first."
        );
        assert_eq!(
            render("{{x | time}}", Value::Text("14:05".into())),
            "two oh five p.m."
        );
        assert_eq!(
            render("{{x | digits}}", Value::Text("4217".into())),
            "four two one seven"
        );
        assert_eq!(
            render(
                "your {{x | card}}",
                Value::Text("4111 1111 1111 4217".into())
            ),
            "your card ending in four two one seven"
        );
        assert_eq!(render("{{x | number}}", Value::Number(12.0)), "twelve");
        assert_eq!(render("{{x | ordinal}}", Value::Number(3.0)), "third");
    }

    #[test]
    fn errors_have_columns() {
        let e = Template::parse("Hi {{lead.name | shout}}", Pos::new(3, 10), 1).expect_err("bad");
        assert_eq!(e.code, "unknown-filter");
        assert_eq!(e.pos, Pos::new(3, 16));
        let e = Template::parse("Hi {{lead.name", Pos::new(1, 1), 0).expect_err("bad");
        assert!(e.message.contains("never closed"));
        let e = Template::parse("Hi {{ lead name }}", Pos::new(1, 1), 0).expect_err("bad");
        assert!(e.message.contains("not a name"));
    }
}
