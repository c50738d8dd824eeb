//! Dates and times said on a call, resolved against a reference time the caller passes in
//! (no clock is read here). "next Friday", "tomorrow afternoon", "the 15th", "on March 3rd",
//! "in two weeks", "end of the month", "Tuesday at 3 pm", "half past two".
//!
//! Conventions (documented because speakers disagree): a bare weekday is the next such day after
//! today; "this Friday" may be today; "next Friday" is the Friday of next week (weeks start on
//! Monday); a day of the month or a date already past this month/year rolls forward; an hour of
//! 1–7 with no am/pm or part of day is taken as afternoon (bank calling hours).

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use serde::Serialize;

use crate::words::{
    Token, digits_value, ordinal_word, parse_cardinal, tens_word, tokenize, unit_word,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
    Night,
}

impl PartOfDay {
    /// The time used when only the part of day was said.
    pub fn default_time(self) -> NaiveTime {
        let h = match self {
            PartOfDay::Morning => 9,
            PartOfDay::Afternoon => 14,
            PartOfDay::Evening => 18,
            PartOfDay::Night => 20,
        };
        NaiveTime::from_hms_opt(h, 0, 0).unwrap_or_default()
    }
}

/// A date and/or time found in an utterance. `date` is `None` when only a time was said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct When {
    #[serde(serialize_with = "super::display_serde::opt")]
    pub date: Option<NaiveDate>,
    #[serde(serialize_with = "super::display_serde::opt")]
    pub time: Option<NaiveTime>,
    pub part_of_day: Option<PartOfDay>,
    /// Byte span of the whole expression in the text.
    pub start: usize,
    pub end: usize,
}

impl When {
    /// One point in time: a missing date is today if the time is still ahead, else tomorrow;
    /// a missing time is the part of day's default, else the start of the day.
    pub fn resolve(&self, now: NaiveDateTime) -> NaiveDateTime {
        let time = self
            .time
            .or(self.part_of_day.map(PartOfDay::default_time))
            .unwrap_or(NaiveTime::MIN);
        let date = self.date.unwrap_or_else(|| {
            if time > now.time() {
                now.date()
            } else {
                now.date() + Duration::days(1)
            }
        });
        date.and_time(time)
    }
}

/// Finds the first date and the first time in `text` and combines them.
pub fn extract_when(text: &str, now: NaiveDateTime) -> Option<When> {
    let toks = tokenize(text);
    let today = now.date();
    let mut date: Option<(NaiveDate, usize, usize)> = None;
    let mut time: Option<(NaiveTime, usize, usize, bool)> = None;
    let mut part: Option<(PartOfDay, usize)> = None;
    let mut i = 0;
    while i < toks.len() {
        if date.is_none() {
            if let Some((d, t, n)) = relative_offset(&toks[i..], now) {
                date = Some((d, i, i + n));
                if let Some(t) = t {
                    time = Some((t, i, i + n, true));
                }
                i += n;
                continue;
            }
            if let Some((d, n)) = parse_date(&toks[i..], today) {
                date = Some((d, i, i + n));
                i += n;
                continue;
            }
        }
        if time.is_none()
            && let Some((t, n, explicit)) = parse_time(&toks, i)
        {
            time = Some((t, i, i + n, explicit));
            i += n;
            continue;
        }
        if part.is_none()
            && let Some(p) = part_of_day(&toks[i].text)
        {
            part = Some((p, i));
            if toks[i].text == "tonight" && date.is_none() {
                date = Some((today, i, i + 1));
            }
        }
        i += 1;
    }
    if date.is_none() && time.is_none() && part.is_none() {
        return None;
    }
    let pod = part.map(|p| p.0);
    let time = time.map(|(t, s, e, explicit)| {
        let t = if explicit {
            t
        } else {
            apply_part_of_day(t, pod)
        };
        (t, s, e)
    });
    let idx: Vec<usize> = [
        date.map(|d| d.1),
        date.map(|d| d.2 - 1),
        time.map(|t| t.1),
        time.map(|t| t.2 - 1),
        part.map(|p| p.1),
    ]
    .into_iter()
    .flatten()
    .collect();
    let first = idx.iter().min().copied().unwrap_or(0);
    let last = idx.iter().max().copied().unwrap_or(0);
    Some(When {
        date: date.map(|d| d.0),
        time: time.map(|t| t.0),
        part_of_day: pod,
        start: toks[first].start,
        end: toks[last].end,
    })
}

fn part_of_day(w: &str) -> Option<PartOfDay> {
    match w {
        "morning" => Some(PartOfDay::Morning),
        "afternoon" | "lunchtime" => Some(PartOfDay::Afternoon),
        "evening" => Some(PartOfDay::Evening),
        "night" | "tonight" => Some(PartOfDay::Night),
        _ => None,
    }
}

fn apply_part_of_day(t: NaiveTime, pod: Option<PartOfDay>) -> NaiveTime {
    let h = t.hour();
    let pm = match pod {
        Some(PartOfDay::Morning) => false,
        Some(_) => h < 12,
        None => (1..=7).contains(&h),
    };
    if pm { t + Duration::hours(12) } else { t }
}

fn weekday(w: &str) -> Option<Weekday> {
    let d = match w {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tues" | "tue" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thurs" | "thu" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        _ => return None,
    };
    Some(d)
}

fn month(w: &str) -> Option<u32> {
    const M: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if let Some(p) = M.iter().position(|m| *m == w) {
        return Some(p as u32 + 1);
    }
    const SHORT: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sept", "oct", "nov", "dec",
    ];
    SHORT.iter().position(|m| *m == w).map(|p| p as u32 + 1)
}

fn word(toks: &[Token], i: usize) -> &str {
    toks.get(i).map_or("", |t| t.text.as_str())
}

/// A day of the month said as an ordinal ("15th", "the twenty first", "third") or, when
/// `allow_cardinal`, a plain number ("March 3").
fn day_number(toks: &[Token], allow_cardinal: bool) -> Option<(u32, usize)> {
    let w = word(toks, 0);
    if let Some(t) = tens_word(w) {
        // "twenty first", "thirty first"
        if let Some(o) = ordinal_word(word(toks, 1)).filter(|o| (1..10).contains(o)) {
            return Some(((t + o) as u32, 2));
        }
    }
    if let Some(o) = ordinal_word(w) {
        return (1..=31).contains(&o).then_some((o as u32, 1));
    }
    if allow_cardinal {
        let (v, n) = parse_cardinal(toks)?;
        return (v.fract() == 0.0 && (1.0..=31.0).contains(&v)).then_some((v as u32, n));
    }
    None
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn last_day_of_month(d: NaiveDate) -> NaiveDate {
    let first = d.with_day(1).unwrap_or(d);
    first
        .checked_add_months(Months::new(1))
        .and_then(|n| n.pred_opt())
        .unwrap_or(d)
}

fn next_month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1)
        .and_then(|f| f.checked_add_months(Months::new(1)))
        .unwrap_or(d)
}

/// Rolls a month/day forward to the next year when it has already passed.
fn upcoming_month_day(today: NaiveDate, m: u32, d: u32, year: Option<i32>) -> Option<NaiveDate> {
    if let Some(y) = year {
        return ymd(y, m, d);
    }
    let this = ymd(today.year(), m, d)?;
    if this >= today {
        Some(this)
    } else {
        ymd(today.year() + 1, m, d)
    }
}

fn parse_year(toks: &[Token]) -> Option<i32> {
    let w = word(toks, 0);
    let v = digits_value(w)?;
    (w.len() == 4 && (1900.0..2200.0).contains(&v)).then_some(v as i32)
}

/// Parses a date starting at `toks[0]`: the date and the number of tokens used.
fn parse_date(toks: &[Token], today: NaiveDate) -> Option<(NaiveDate, usize)> {
    let w0 = word(toks, 0);
    let w1 = word(toks, 1);
    let w2 = word(toks, 2);
    match w0 {
        "today" => return Some((today, 1)),
        "tomorrow" | "tmrw" => return Some((today + Duration::days(1), 1)),
        "yesterday" => return Some((today - Duration::days(1), 1)),
        "day" if w1 == "after" && w2 == "tomorrow" => return Some((today + Duration::days(2), 3)),
        _ => {}
    }
    if w0 == "day" && w1 == "before" && w2 == "yesterday" {
        return Some((today - Duration::days(2), 3));
    }
    // "last <weekday|week|month>": the most recent past one (a week's or month's first day).
    if w0 == "last" {
        if let Some(wd) = weekday(w1) {
            let back = (today.weekday().num_days_from_monday() as i64
                - wd.num_days_from_monday() as i64)
                .rem_euclid(7);
            let back = if back == 0 { 7 } else { back };
            return Some((today - Duration::days(back), 2));
        }
        if w1 == "week" {
            let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64 + 7);
            return Some((monday, 2));
        }
        if w1 == "month" {
            let first = today.with_day(1).unwrap_or(today);
            return first.checked_sub_months(Months::new(1)).map(|d| (d, 2));
        }
    }
    // "next/this/coming <weekday|week|month>"
    if matches!(w0, "next" | "this" | "coming") {
        if let Some(wd) = weekday(w1) {
            let ahead = (wd.num_days_from_monday() as i64
                - today.weekday().num_days_from_monday() as i64)
                .rem_euclid(7);
            let days = match w0 {
                "this" => ahead,
                "coming" => {
                    if ahead == 0 {
                        7
                    } else {
                        ahead
                    }
                }
                _ => {
                    7 - today.weekday().num_days_from_monday() as i64
                        + wd.num_days_from_monday() as i64
                }
            };
            return Some((today + Duration::days(days), 2));
        }
        if w0 == "next" && w1 == "week" {
            let monday = today + Duration::days(7 - today.weekday().num_days_from_monday() as i64);
            return Some((monday, 2));
        }
        if w0 == "next" && w1 == "month" {
            return Some((next_month_start(today), 2));
        }
    }
    if let Some(wd) = weekday(w0) {
        let ahead = (wd.num_days_from_monday() as i64
            - today.weekday().num_days_from_monday() as i64)
            .rem_euclid(7);
        let ahead = if ahead == 0 { 7 } else { ahead };
        return Some((today + Duration::days(ahead), 1));
    }
    // "end/start/beginning/middle of the/this/next month|week"
    if matches!(w0, "end" | "start" | "beginning" | "middle" | "mid") {
        let mut k = 1;
        if word(toks, k) == "of" {
            k += 1;
        }
        let next = match word(toks, k) {
            "the" | "this" => {
                k += 1;
                false
            }
            "next" => {
                k += 1;
                true
            }
            _ => false,
        };
        match word(toks, k) {
            "month" => {
                let base = if next { next_month_start(today) } else { today };
                let d = match w0 {
                    "end" => last_day_of_month(base),
                    "middle" | "mid" => base.with_day(15).unwrap_or(base),
                    _ => {
                        if next {
                            base
                        } else {
                            next_month_start(today)
                        }
                    }
                };
                return Some((d, k + 1));
            }
            "week" => {
                let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64)
                    + Duration::days(if next { 7 } else { 0 });
                let d = match w0 {
                    "end" => monday + Duration::days(4),
                    "middle" | "mid" => monday + Duration::days(2),
                    _ => {
                        if next {
                            monday
                        } else {
                            monday + Duration::days(7)
                        }
                    }
                };
                return Some((d, k + 1));
            }
            _ => {}
        }
    }
    // "March 3rd [2025]", "march third"
    if let Some(m) = month(w0)
        && let Some((d, n)) = day_number(&toks[1..], true)
    {
        let year = parse_year(&toks[1 + n..]);
        let used = 1 + n + usize::from(year.is_some());
        return upcoming_month_day(today, m, d, year).map(|date| (date, used));
    }
    // "[the] 15th [of March|of next month]", "3 March"
    let skip = usize::from(w0 == "the");
    let rest = &toks[skip.min(toks.len())..];
    let allow_cardinal =
        month(word(rest, 1)).is_some() || (word(rest, 1) == "of" && month(word(rest, 2)).is_some());
    if let Some((d, n)) = day_number(rest, allow_cardinal) {
        let mut k = skip + n;
        let of = usize::from(word(toks, k) == "of");
        if let Some(m) = month(word(toks, k + of)) {
            k += of + 1;
            let year = parse_year(&toks[k..]);
            k += usize::from(year.is_some());
            return upcoming_month_day(today, m, d, year).map(|date| (date, k));
        }
        if of == 1 && word(toks, k + 1) == "next" && word(toks, k + 2) == "month" {
            let base = next_month_start(today);
            return base.with_day(d).map(|date| (date, k + 3));
        }
        // A bare ordinal: only with "the" or an ordinal suffix, so "first" alone is not a date.
        let is_pick = matches!(
            word(toks, k),
            "one" | "option" | "choice" | "time" | "thing"
        );
        if is_pick {
            return None;
        }
        if skip == 1
            || word(toks, 0).ends_with(|c: char| c.is_alphabetic())
                && word(toks, 0).starts_with(|c: char| c.is_ascii_digit())
        {
            let this = today.with_day(d).filter(|x| *x >= today);
            let date = this.or_else(|| next_month_start(today).with_day(d))?;
            return Some((date, k));
        }
    }
    None
}

/// "in two weeks", "in 3 days", "in an hour", "a week from today", "in twenty minutes".
fn relative_offset(
    toks: &[Token],
    now: NaiveDateTime,
) -> Option<(NaiveDate, Option<NaiveTime>, usize)> {
    if let Some(past) = past_offset(toks, now) {
        return Some(past);
    }
    let (amount, mut k) = if word(toks, 0) == "in" {
        let rest = &toks[1..];
        match word(rest, 0) {
            "a" | "an" | "one" if word(rest, 1) == "couple" => (2.0, 4),
            "a" | "an" => (1.0, 2),
            "couple" => (2.0, 3),
            "few" => (3.0, 3),
            _ => parse_cardinal(rest).map(|(v, n)| (v, n + 1))?,
        }
    } else if matches!(word(toks, 0), "a" | "one")
        && word(toks, 1) == "week"
        && word(toks, 2) == "from"
    {
        (1.0, 1)
    } else {
        return None;
    };
    if word(toks, k) == "of" {
        k += 1;
    }
    let unit = word(toks, k).trim_end_matches('s');
    let n = amount.round() as i64;
    let target = match unit {
        "minute" | "min" => now + Duration::minutes(n),
        "hour" => now + Duration::hours(n),
        "day" => now + Duration::days(n),
        "week" => now + Duration::weeks(n),
        "month" => now.checked_add_months(Months::new(n as u32))?,
        "year" => now.checked_add_months(Months::new(12 * n as u32))?,
        _ => return None,
    };
    k += 1;
    if word(toks, k) == "from" && matches!(word(toks, k + 1), "today" | "now") {
        k += 2;
    }
    let time = matches!(unit, "minute" | "min" | "hour").then_some(target.time());
    Some((target.date(), time, k))
}

/// An amount of time words: "a", "a couple of", "a few", "two", "3"; (value, tokens used).
fn time_amount(toks: &[Token]) -> Option<(f64, usize)> {
    match word(toks, 0) {
        "a" | "an" | "one" if word(toks, 1) == "couple" => {
            Some((2.0, if word(toks, 2) == "of" { 3 } else { 2 }))
        }
        "a" if word(toks, 1) == "few" => Some((3.0, 2)),
        "a" | "an" => Some((1.0, 1)),
        "couple" => Some((2.0, if word(toks, 1) == "of" { 2 } else { 1 })),
        "few" => Some((3.0, 1)),
        _ => parse_cardinal(toks),
    }
}

/// "two weeks ago", "a couple of days ago", "3 months ago", "an hour ago".
fn past_offset(
    toks: &[Token],
    now: NaiveDateTime,
) -> Option<(NaiveDate, Option<NaiveTime>, usize)> {
    let (amount, k) = time_amount(toks)?;
    if amount < 0.0 || amount.fract() != 0.0 || word(toks, k + 1) != "ago" {
        return None;
    }
    let n = amount as i64;
    let unit = word(toks, k).trim_end_matches('s');
    let target = match unit {
        "minute" | "min" => now - Duration::minutes(n),
        "hour" => now - Duration::hours(n),
        "day" => now - Duration::days(n),
        "week" => now - Duration::weeks(n),
        "month" => now.checked_sub_months(Months::new(u32::try_from(n).ok()?))?,
        "year" => now.checked_sub_months(Months::new(u32::try_from(n).ok()?.checked_mul(12)?))?,
        _ => return None,
    };
    let time = matches!(unit, "minute" | "min" | "hour").then_some(target.time());
    Some((target.date(), time, k + 2))
}

fn hour_word(w: &str) -> Option<u32> {
    let v = unit_word(w).or_else(|| {
        digits_value(w)
            .filter(|v| v.fract() == 0.0)
            .map(|v| v as u64)
    })?;
    (v <= 24).then_some(v as u32)
}

fn minute_words(toks: &[Token]) -> Option<(u32, usize)> {
    let w = word(toks, 0);
    if w == "oh" || w == "o" {
        let d = unit_word(word(toks, 1)).filter(|d| *d < 10)?;
        return Some((d as u32, 2));
    }
    if let Some(v) = digits_value(w).filter(|_| w.len() == 2) {
        return (v < 60.0).then_some((v as u32, 1));
    }
    let (v, n) = parse_cardinal(toks)?;
    (v.fract() == 0.0 && (1.0..60.0).contains(&v)).then_some((v as u32, n))
}

/// am/pm after a time: "pm", "p.m." (tokenised "p", "m"), "in the afternoon" is a part of day.
fn meridiem(toks: &[Token]) -> Option<(bool, usize)> {
    match (word(toks, 0), word(toks, 1)) {
        ("am", _) => Some((false, 1)),
        ("pm", _) => Some((true, 1)),
        ("a", "m") => Some((false, 2)),
        ("p", "m") => Some((true, 2)),
        _ => None,
    }
}

fn with_meridiem(h: u32, m: u32, toks: &[Token]) -> Option<(NaiveTime, usize, bool)> {
    let mut h = h;
    let (explicit, n) = match meridiem(toks) {
        Some((pm, n)) => {
            if h > 12 {
                return None;
            }
            h = match (pm, h) {
                (true, 12) => 12,
                (true, h) => h + 12,
                (false, 12) => 0,
                (false, h) => h,
            };
            (true, n)
        }
        None => (h == 0 || h > 12, 0),
    };
    NaiveTime::from_hms_opt(h % 24, m, 0).map(|t| (t, n, explicit))
}

/// Parses a time at `toks[i]`; `toks[i-1]` is looked at for "at"/"around" cues.
/// Returns the time, tokens used, and whether am/pm was explicit.
fn parse_time(all: &[Token], i: usize) -> Option<(NaiveTime, usize, bool)> {
    let toks = &all[i..];
    let w0 = word(toks, 0);
    match w0 {
        "noon" | "midday" => return NaiveTime::from_hms_opt(12, 0, 0).map(|t| (t, 1, true)),
        "midnight" => return Some((NaiveTime::MIN, 1, true)),
        _ => {}
    }
    // "half past two", "quarter to four", "ten past five", "twenty minutes past three"
    let (mins, mut k) = match w0 {
        "half" => (Some(30i64), 1),
        "quarter" => (Some(15), 1),
        "a" if word(toks, 1) == "quarter" => (Some(15), 2),
        _ => match minute_words(toks) {
            Some((m, n)) => (Some(m as i64), n),
            None => (None, 0),
        },
    };
    if let Some(m) = mins {
        if matches!(word(toks, k), "minute" | "minutes") {
            k += 1;
        }
        let dir = word(toks, k);
        if matches!(dir, "past" | "after" | "to" | "before" | "til" | "till")
            && let Some(h) = hour_word(word(toks, k + 1)).filter(|h| (1..=12).contains(h))
        {
            let (base, n, explicit) = with_meridiem(h, 0, &toks[k + 2..])?;
            let delta = if matches!(dir, "to" | "before" | "til" | "till") {
                -m
            } else {
                m
            };
            return Some((base + Duration::minutes(delta), k + 2 + n, explicit));
        }
    }
    // "3:30 [pm]"
    if let Some((h, m)) = w0.split_once(':') {
        let (h, m) = (h.parse().ok()?, m.parse().ok()?);
        let (t, n, explicit) = with_meridiem(h, m, &toks[1..])?;
        return Some((t, 1 + n, explicit));
    }
    // "3 [o'clock] [pm]", "three thirty [pm]", needs a cue so that amounts are not read as times.
    let h = hour_word(w0)?;
    let cue_before = i > 0
        && matches!(
            all[i - 1].text.as_str(),
            "at" | "around" | "about" | "by" | "after" | "before" | "until"
        );
    let mut k = 1;
    let mut m = 0;
    if word(toks, 1) == "o'clock" {
        k = 2;
    } else if let Some((mm, n)) = minute_words(&toks[1..]).filter(|_| h <= 12) {
        m = mm;
        k = 1 + n;
    }
    let has_meridiem = meridiem(&toks[k..]).is_some();
    if !(cue_before || has_meridiem || word(toks, 1) == "o'clock") {
        return None;
    }
    let (t, n, explicit) = with_meridiem(h, m, &toks[k..])?;
    Some((t, k + n, explicit))
}
