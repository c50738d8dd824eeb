//! Table-driven checks of the rule-based entity extractors, many phrasings each.
#![allow(clippy::unwrap_used)]

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use nlu::entities::{PartOfDay, extract_all, extract_when, extract_whens};

/// Wednesday 12 March 2025, 10:30.
fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 3, 12)
        .unwrap()
        .and_hms_opt(10, 30, 0)
        .unwrap()
}

fn d(m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, m, day).unwrap()
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

#[test]
fn dates() {
    let cases = [
        ("next Friday", d(3, 21)),
        ("can I pay next friday?", d(3, 21)),
        ("this Friday", d(3, 14)),
        ("on Friday", d(3, 14)),
        ("friday", d(3, 14)),
        ("Wednesday", d(3, 19)),
        ("this wednesday", d(3, 12)),
        ("tomorrow", d(3, 13)),
        ("today", d(3, 12)),
        ("the day after tomorrow", d(3, 14)),
        ("the 15th", d(3, 15)),
        ("on the 15th", d(3, 15)),
        ("the 3rd", d(4, 3)),
        ("the fifteenth", d(3, 15)),
        ("the twenty first", d(3, 21)),
        ("on March 3rd", d(3, 3).with_year_plus(1)),
        ("March 20th", d(3, 20)),
        ("april third", d(4, 3)),
        ("the 5th of April", d(4, 5)),
        ("5 April", d(4, 5)),
        ("May 1st 2026", NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()),
        ("in two weeks", d(3, 26)),
        // The past, for questions such as "when did you last visit a branch?".
        ("two weeks ago", d(2, 26)),
        ("I went there about two weeks ago", d(2, 26)),
        ("a week ago", d(3, 5)),
        ("a couple of days ago", d(3, 10)),
        ("3 days ago", d(3, 9)),
        ("a few days ago", d(3, 9)),
        ("a month ago", d(2, 12)),
        ("last Tuesday", d(3, 11)),
        ("last wednesday", d(3, 5)),
        ("it was last Friday", d(3, 7)),
        ("last week", d(3, 3)),
        ("last month", d(2, 1)),
        ("the day before yesterday", d(3, 10)),
        ("in 3 days", d(3, 15)),
        ("in a week", d(3, 19)),
        ("a week from today", d(3, 19)),
        ("in a couple of days", d(3, 14)),
        ("in a month", d(4, 12)),
        ("end of the month", d(3, 31)),
        ("by the end of this month", d(3, 31)),
        ("end of next month", d(4, 30)),
        ("beginning of next month", d(4, 1)),
        ("next week", d(3, 17)),
        ("next month", d(4, 1)),
        ("the 10th of next month", d(4, 10)),
        ("I get paid on the 28th", d(3, 28)),
    ];
    for (text, want) in cases {
        let w = extract_when(text, now()).unwrap_or_else(|| panic!("no date in {text:?}"));
        assert_eq!(w.date, Some(want), "{text:?} -> {w:?}");
    }
}

trait PlusYear {
    fn with_year_plus(self, n: i32) -> NaiveDate;
}
impl PlusYear for NaiveDate {
    fn with_year_plus(self, n: i32) -> NaiveDate {
        use chrono::Datelike;
        self.with_year(self.year() + n).unwrap()
    }
}

#[test]
fn times_and_date_times() {
    let cases: &[(&str, Option<NaiveDate>, NaiveTime)] = &[
        ("Tuesday at 3 pm", Some(d(3, 18)), t(15, 0)),
        ("tomorrow at 10am", Some(d(3, 13)), t(10, 0)),
        ("half past two", None, t(14, 30)),
        ("quarter to four", None, t(15, 45)),
        ("quarter past nine in the morning", None, t(9, 15)),
        ("ten past five", None, t(17, 10)),
        ("at 3:30 pm", None, t(15, 30)),
        ("at 15:00", None, t(15, 0)),
        ("around three o'clock", None, t(15, 0)),
        ("at three thirty", None, t(15, 30)),
        ("at 11", None, t(11, 0)),
        ("at noon tomorrow", Some(d(3, 13)), t(12, 0)),
        ("friday at 9 in the morning", Some(d(3, 14)), t(9, 0)),
        ("8 p.m. on Monday", Some(d(3, 17)), t(20, 0)),
        ("at 12 am", None, t(0, 0)),
        ("in two hours", Some(d(3, 12)), t(12, 30)),
        ("in 20 minutes", Some(d(3, 12)), t(10, 50)),
        ("next friday at half past two", Some(d(3, 21)), t(14, 30)),
    ];
    for (text, date, time) in cases {
        let w = extract_when(text, now()).unwrap_or_else(|| panic!("nothing in {text:?}"));
        assert_eq!(w.time, Some(*time), "{text:?} -> {w:?}");
        assert_eq!(w.date, *date, "{text:?} -> {w:?}");
    }
}

#[test]
fn parts_of_day_and_resolution() {
    let w = extract_when("tomorrow afternoon", now()).unwrap();
    assert_eq!(
        (w.date, w.part_of_day),
        (Some(d(3, 13)), Some(PartOfDay::Afternoon))
    );
    assert_eq!(w.resolve(now()), d(3, 13).and_time(t(14, 0)));
    let w = extract_when("call me back in the evening", now()).unwrap();
    assert_eq!(w.resolve(now()), d(3, 12).and_time(t(18, 0)));
    let w = extract_when("tonight", now()).unwrap();
    assert_eq!(w.date, Some(d(3, 12)));
    let w = extract_when("at 3 in the afternoon", now()).unwrap();
    assert_eq!(w.time, Some(t(15, 0)));
    // A time already past today resolves to tomorrow.
    let w = extract_when("at 9 am", now()).unwrap();
    assert_eq!(w.resolve(now()), d(3, 13).and_time(t(9, 0)));
    let text = "ok so next Friday at 3 pm works";
    let w = extract_when(text, now()).unwrap();
    assert_eq!(&text[w.start..w.end], "next Friday at 3 pm");
}

#[test]
fn no_false_dates() {
    for text in [
        "yes",
        "I want to pay 200 dollars",
        "my card ends in 4217",
        "the first one",
        "no thanks",
        "I already paid",
        "the last four digits are 4217",
        "it takes a few weeks",
        "I paid a week",
        "the last time I called",
    ] {
        assert_eq!(extract_when(text, now()), None, "{text:?}");
    }
}

#[test]
fn all_at_once() {
    let e = extract_all(
        "yeah I can pay two hundred and fifty dollars next Friday",
        now(),
        &[] as &[&str],
    );
    assert_eq!(e.yes_no, Some(nlu::entities::YesNo::Yes));
    assert_eq!(e.money[0].minor_units, 25_000);
    assert_eq!(e.when.unwrap().date, Some(d(3, 21)));
    let e = extract_all(
        "the card ending four two one seven",
        now(),
        &["debit card", "credit card"],
    );
    assert_eq!(e.digits.unwrap().digits, "4217");
    let json = serde_json::to_value(extract_all("tomorrow at 3pm", now(), &[] as &[&str])).unwrap();
    assert_eq!(json["when_resolved"], "2025-03-13 15:00:00");
}

#[test]
fn committed_date_among_several() {
    // (utterance, dates said in order, the one committed to)
    let cases: [(&str, &[NaiveDate], NaiveDate); 6] = [
        (
            "I can't pay today, but I can pay two hundred and fifty dollars next Friday",
            &[d(3, 12), d(3, 21)],
            d(3, 21),
        ),
        (
            "I won't manage it on Friday. Monday works",
            &[d(3, 14), d(3, 17)],
            d(3, 17),
        ),
        (
            "I can pay tomorrow but not on Friday",
            &[d(3, 13), d(3, 14)],
            d(3, 13),
        ),
        ("I can't pay until next Friday", &[d(3, 21)], d(3, 21)),
        (
            "maybe Friday or Monday instead",
            &[d(3, 14), d(3, 17)],
            d(3, 17),
        ),
        ("the 3rd of April, 2025", &[d(4, 3)], d(4, 3)),
    ];
    for (text, all, want) in cases {
        let got: Vec<Option<NaiveDate>> =
            extract_whens(text, now()).iter().map(|w| w.date).collect();
        let all: Vec<Option<NaiveDate>> = all.iter().copied().map(Some).collect();
        assert_eq!(got, all, "{text:?}");
        let e = extract_all::<&str>(text, now(), &[]);
        assert_eq!(e.when.as_ref().and_then(|w| w.date), Some(want), "{text:?}");
        assert_eq!(e.when_resolved.map(|r| r.date()), Some(want), "{text:?}");
        assert_eq!(e.whens.len(), all.len(), "{text:?}");
    }
}
