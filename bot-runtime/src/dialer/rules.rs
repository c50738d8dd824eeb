//! The dial rule engine: may this lead be dialed now, and if not, when and why not.
//!
//! [`decide`] is a pure function of a campaign's [`DialRules`], one lead's [`LeadState`] and the
//! instant `now` (it never reads a clock and does no I/O). Its [`Verdict`] always names the
//! [`Rule`] that decided and a human-readable detail, because the verdict is stored as the audit
//! trail that answers "why was this number dialed, or not dialed, at this time":
//!
//! ```text
//! calling_window: 07:42 (Tue) in America/Chicago is before 08:00 (window 08:00–21:00)
//! ```
//!
//! # Order of the checks
//! The first rule that blocks decides; the order is fixed so the same inputs always give the same
//! reason:
//! 1. **Stop** rules: the last disposition is final ([`Rule::Final`]), the last disposition has
//!    been seen its maximum number of times ([`Rule::RetryLimit`]), the lead has had
//!    `max_attempts` ([`Rule::MaxAttempts`]), the campaign's end date has passed in one of the
//!    lead's timezones ([`Rule::Schedule`]).
//! 2. A customer **callback** ([`Rule::Callback`]): before its time the lead waits for it; once
//!    due it replaces the retry delay of the last disposition (and only that).
//! 3. **Retry delay** of the last disposition ([`Rule::RetryDelay`]), then the **minimum gap**
//!    between any two attempts ([`Rule::MinGap`]), which a callback does not lift.
//! 4. **Attempts per local day** ([`Rule::MaxAttemptsPerDay`]) and the **debt frequency cap**
//!    ([`Rule::DebtCap`]), which a callback does not lift either (a bank that treats a
//!    consented callback as outside the Reg F count leaves it out of `debt_attempts`).
//! 5. The **calendar**, in every candidate timezone: campaign dates ([`Rule::Schedule`]),
//!    holidays ([`Rule::Holiday`]), weekdays without a window ([`Rule::Weekday`]) and the local
//!    time windows ([`Rule::CallingWindow`]).
//!
//! # Invariants
//! - A number whose timezone is uncertain (several candidate zones) is dialed only at instants
//!   that are lawful in **all** of them.
//! - `Wait { until, .. }` is exact: every instant in `[now, until)` is blocked by the rule named,
//!   and at `until` that rule no longer blocks (another rule may). [`next_dial`] chains the waits
//!   to the first instant at which the lead can be dialed.
//! - Searches are bounded: the calendar is scanned window by window for at most
//!   [`HORIZON_DAYS`] days; a combination that never opens (two zones twelve hours apart with a
//!   two-hour window) is a `Stop`, never a loop.
//! - Windows are wall-clock times. On a spring-forward day a window edge that falls in the gap
//!   moves to the first instant after the gap; on a fall-back day a start in the repeated hour
//!   takes its earlier instant and an end its later one (the window is never shortened).
//!
//! # Configuration
//! [`DialRules`] deserializes from YAML or JSON; every field has a bank default:
//! ```yaml
//! windows:                      # local time of the lead; start inclusive, end exclusive
//!   - { days: [mon, tue, wed, thu, fri], start: "08:00", end: "21:00" }
//!   - { days: [sat], start: "09:00", end: "13:00" }
//! start_date: 2026-03-01        # local dates of the lead, both inclusive
//! end_date: 2026-03-31
//! holidays: [2026-03-17]
//! retries:                      # disposition -> delay (seconds) and the most attempts that may end so
//!   busy: { delay_secs: 600, max: 5 }
//! max_attempts: 10
//! max_attempts_per_day: 3
//! debt_cap: { max: 7, days: 7 } # rolling 7 × 24 h, across campaigns; null to disable
//! min_gap_secs: 60
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The longest delay or gap [`DialRules::validate`] accepts: a year.
const MAX_DELAY_SECS: u64 = 366 * 24 * 3600;

/// How far ahead the calendar is searched for an open window before the lead is stopped.
pub const HORIZON_DAYS: i64 = 400;

/// A campaign's dial rules. `Default` gives a bank's conservative defaults: every day
/// 08:00–21:00 local time (the US TCPA hours), the retries of [`default_retries`], 10 attempts
/// per lead, 3 per local day, 7 calls in 7 days per debt and at least 60 s between attempts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DialRules {
    /// Local-time windows in the lead's timezone(s); the lead may be dialed inside any of them.
    pub windows: Vec<Window>,
    /// First local date of the campaign (inclusive).
    pub start_date: Option<NaiveDate>,
    /// Last local date of the campaign (inclusive).
    pub end_date: Option<NaiveDate>,
    /// Local dates without calls.
    pub holidays: Vec<NaiveDate>,
    /// Retry policy per disposition name; a disposition without an entry is final.
    pub retries: BTreeMap<String, Retry>,
    /// Most attempts per lead in this campaign.
    pub max_attempts: u32,
    /// Most attempts per lead per local calendar day (in every candidate zone).
    pub max_attempts_per_day: u32,
    /// Most attempts per debt in a rolling window, across leads and campaigns (Reg F "7 in 7").
    pub debt_cap: Option<FrequencyCap>,
    /// Never two attempts on the lead closer than this, whatever the disposition.
    pub min_gap_secs: u64,
}

impl Default for DialRules {
    fn default() -> Self {
        DialRules {
            windows: vec![Window {
                days: ALL_DAYS.to_vec(),
                start: hm(8, 0),
                end: hm(21, 0),
            }],
            start_date: None,
            end_date: None,
            holidays: Vec::new(),
            retries: default_retries(),
            max_attempts: 10,
            max_attempts_per_day: 3,
            debt_cap: Some(FrequencyCap { max: 7, days: 7 }),
            min_gap_secs: 60,
        }
    }
}

const ALL_DAYS: [Weekday; 7] = [
    Weekday::Mon,
    Weekday::Tue,
    Weekday::Wed,
    Weekday::Thu,
    Weekday::Fri,
    Weekday::Sat,
    Weekday::Sun,
];

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// The default retry policy. Dispositions without an entry are final:
/// - `completed`, `transferred`: the call reached its purpose.
/// - `opted_out`: the customer asked not to be called (the DNC list takes it from there).
/// - `wrong_party`: the number is not the debtor's; calling again would disclose the debt.
/// - `invalid_number`, `fax`: the number cannot reach a person.
/// - `rejected` (SIP 603 Decline): the person actively refused the call; calling again the same
///   day is what a compliance officer calls harassment. A campaign that wants it retried adds
///   an entry.
///
/// Retried: `busy` 10 min ×5, `no_answer` 1 h ×5, `machine` 2 h ×3, `unreachable` 1 h ×3,
/// `network_error` 5 min ×5 (our side or the trunk failed), `interrupted` 2 min ×3 (our node
/// died during the call), `answered` 1 h ×2 (hung up before an outcome), `abandoned` 1 h ×2 (the
/// customer answered and no agent was free: the bank owes them a proper call), `callback` 1 h ×3
/// (only used when the customer gave no precise time; a precise time in
/// [`LeadState::callback`] replaces the delay).
pub fn default_retries() -> BTreeMap<String, Retry> {
    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    [
        ("busy", 10 * MIN, 5),
        ("no_answer", HOUR, 5),
        ("machine", 2 * HOUR, 3),
        ("unreachable", HOUR, 3),
        ("network_error", 5 * MIN, 5),
        ("interrupted", 2 * MIN, 3),
        ("answered", HOUR, 2),
        ("abandoned", HOUR, 2),
        ("callback", HOUR, 3),
    ]
    .into_iter()
    .map(|(name, delay_secs, max)| (name.to_owned(), Retry { delay_secs, max }))
    .collect()
}

/// A local-time window on some weekdays: `start` inclusive, `end` exclusive, `start < end`
/// (a window never spans midnight; split it in two). Times are written `"08:00"` or
/// `"08:00:30"`, days `"mon"` … `"sun"` (full names and any case are accepted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(with = "serde_days")]
    pub days: Vec<Weekday>,
    #[serde(with = "serde_time")]
    pub start: NaiveTime,
    #[serde(with = "serde_time")]
    pub end: NaiveTime,
}

/// Retry policy of one disposition.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Wait at least this long after an attempt that ended with this disposition.
    pub delay_secs: u64,
    /// The most attempts that may end with this disposition; when the last attempt makes it
    /// `max`, the lead stops.
    pub max: u32,
}

/// At most `max` attempts in any rolling window of `days` × 24 h.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub max: u32,
    pub days: u32,
}

/// One finished attempt on a lead.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub disposition: String,
}

/// What the engine needs to know about one lead.
#[derive(Debug, Clone, Copy)]
pub struct LeadState<'a> {
    /// Candidate timezones of the number; the calendar must allow the call in all of them.
    /// Never empty (the caller guarantees it); an empty slice is treated as UTC and the reason
    /// says so.
    pub timezones: &'a [Tz],
    /// This lead's finished attempts in this campaign, oldest first.
    pub attempts: &'a [Attempt],
    /// Every attempt on the same debt (any lead, any campaign, this lead's included).
    pub debt_attempts: &'a [DateTime<Utc>],
    /// A precise time the customer asked to be called back. A callback at or before the last
    /// attempt is taken as already served and ignored.
    pub callback: Option<DateTime<Utc>>,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Dial now.
    Dial(Reason),
    /// Not now; `until` is the first instant the blocking rule lets go.
    Wait {
        until: DateTime<Utc>,
        reason: Reason,
    },
    /// Never again in this campaign (unless the rules or the lead change).
    Stop(Reason),
}

impl Verdict {
    pub fn reason(&self) -> &Reason {
        match self {
            Verdict::Dial(r) | Verdict::Stop(r) | Verdict::Wait { reason: r, .. } => r,
        }
    }

    pub fn is_dial(&self) -> bool {
        matches!(self, Verdict::Dial(_))
    }
}

/// The rule that decided a verdict and why, e.g. `holiday: 2026-12-25 is a holiday in
/// Europe/London`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.as_str(), self.detail)
    }
}

/// The rules of the engine, named as they are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Every rule allows the call.
    Ok,
    /// A customer callback: waiting for it, or dialing because it is due.
    Callback,
    /// Outside the local-time windows.
    CallingWindow,
    /// Outside the campaign's dates.
    Schedule,
    /// A weekday without any window.
    Weekday,
    /// A holiday.
    Holiday,
    /// The last disposition's retry delay has not passed.
    RetryDelay,
    /// The last disposition has reached its maximum count.
    RetryLimit,
    /// The lead has had `max_attempts`.
    MaxAttempts,
    /// The lead has had `max_attempts_per_day` today (local date).
    MaxAttemptsPerDay,
    /// The debt's rolling frequency cap is reached.
    DebtCap,
    /// The minimum gap between two attempts has not passed.
    MinGap,
    /// The last disposition is final.
    Final,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Ok => "ok",
            Rule::Callback => "callback",
            Rule::CallingWindow => "calling_window",
            Rule::Schedule => "schedule",
            Rule::Weekday => "weekday",
            Rule::Holiday => "holiday",
            Rule::RetryDelay => "retry_delay",
            Rule::RetryLimit => "retry_limit",
            Rule::MaxAttempts => "max_attempts",
            Rule::MaxAttemptsPerDay => "max_attempts_per_day",
            Rule::DebtCap => "debt_cap",
            Rule::MinGap => "min_gap",
            Rule::Final => "final",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn reason(rule: Rule, detail: impl Into<String>) -> Reason {
    Reason {
        rule,
        detail: detail.into(),
    }
}

impl DialRules {
    /// Checks the rules; the error lists every problem, each naming its field.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        if self.windows.is_empty() {
            errors.push(
                "windows: at least one window is needed (the campaign could never dial)".to_owned(),
            );
        }
        for (i, w) in self.windows.iter().enumerate() {
            if w.days.is_empty() {
                errors.push(format!("windows[{i}].days: no weekday given"));
            }
            if w.start >= w.end {
                errors.push(format!(
                    "windows[{i}]: start {} is not before end {} (a window cannot span midnight; split it in two)",
                    fmt_time(w.start),
                    fmt_time(w.end)
                ));
            }
        }
        if let (Some(start), Some(end)) = (self.start_date, self.end_date)
            && start > end
        {
            errors.push(format!("start_date {start} is after end_date {end}"));
        }
        for (name, retry) in &self.retries {
            if retry.delay_secs == 0 {
                errors.push(format!("retries.{name}.delay_secs: must be more than 0"));
            }
            if retry.delay_secs > MAX_DELAY_SECS {
                errors.push(format!(
                    "retries.{name}.delay_secs: {} is more than a year",
                    retry.delay_secs
                ));
            }
            if retry.max == 0 {
                errors.push(format!(
                    "retries.{name}.max: must be at least 1 (remove the entry to make {name} final)"
                ));
            }
        }
        if self.min_gap_secs > MAX_DELAY_SECS {
            errors.push(format!(
                "min_gap_secs: {} is more than a year",
                self.min_gap_secs
            ));
        }
        if self.max_attempts == 0 {
            errors.push("max_attempts: must be at least 1".to_owned());
        }
        if self.max_attempts_per_day == 0 {
            errors.push("max_attempts_per_day: must be at least 1".to_owned());
        }
        if let Some(cap) = self.debt_cap {
            if cap.max == 0 {
                errors.push("debt_cap.max: must be at least 1".to_owned());
            }
            if cap.days == 0 || cap.days > 366 {
                errors.push(format!(
                    "debt_cap.days: {} is not between 1 and 366",
                    cap.days
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// A disposition with no retry entry is final.
pub fn is_final(rules: &DialRules, disposition: &str) -> bool {
    !rules.retries.contains_key(disposition)
}

/// Decides whether the lead may be dialed at `now` (see the module docs for the order).
///
/// ```
/// use bot_runtime::dialer::rules::{DialRules, LeadState, Verdict, decide};
/// use chrono::{TimeZone, Utc};
///
/// let zones = [chrono_tz::America::Chicago];
/// let lead = LeadState { timezones: &zones, attempts: &[], debt_attempts: &[], callback: None };
/// let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 42, 0).single().expect("valid instant");
/// let Verdict::Wait { until, reason } = decide(&DialRules::default(), &lead, now) else {
///     panic!("07:42 in Chicago is too early");
/// };
/// assert_eq!(until, Utc.with_ymd_and_hms(2026, 3, 10, 13, 0, 0).single().expect("valid"));
/// assert_eq!(
///     reason.to_string(),
///     "calling_window: 07:42 (Tue) in America/Chicago is before 08:00 (window 08:00–21:00)"
/// );
/// ```
pub fn decide(rules: &DialRules, lead: &LeadState, now: DateTime<Utc>) -> Verdict {
    let (zones, zone_note) = if lead.timezones.is_empty() {
        (
            &[Tz::UTC][..],
            " (no timezone known for the number: UTC assumed)",
        )
    } else {
        (lead.timezones, "")
    };
    let with_note = |r: Reason| Reason {
        rule: r.rule,
        detail: format!("{}{zone_note}", r.detail),
    };
    match decide_in(rules, lead, zones, now) {
        Verdict::Dial(r) => Verdict::Dial(with_note(r)),
        Verdict::Wait { until, reason } => Verdict::Wait {
            until,
            reason: with_note(reason),
        },
        Verdict::Stop(r) => Verdict::Stop(with_note(r)),
    }
}

/// Like [`decide`], but a `Wait` carries the first instant at which the lead can actually be
/// dialed (the waits of successive rules chained, at most 64 of them), with the reason that
/// blocks it at `now`.
pub fn next_dial(rules: &DialRules, lead: &LeadState, now: DateTime<Utc>) -> Verdict {
    let first = decide(rules, lead, now);
    let Verdict::Wait { mut until, reason } = first else {
        return first;
    };
    for _ in 0..64 {
        match decide(rules, lead, until) {
            Verdict::Dial(_) => break,
            Verdict::Wait { until: next, .. } => until = next,
            Verdict::Stop(stop) => return Verdict::Stop(stop),
        }
    }
    Verdict::Wait { until, reason }
}

fn decide_in(rules: &DialRules, lead: &LeadState, zones: &[Tz], now: DateTime<Utc>) -> Verdict {
    let last = lead.attempts.last();

    // 1. Stops.
    if let Some(last) = last {
        let Some(retry) = rules.retries.get(&last.disposition) else {
            return Verdict::Stop(reason(
                Rule::Final,
                format!("last attempt ended '{}', which is final", last.disposition),
            ));
        };
        let seen = lead
            .attempts
            .iter()
            .filter(|a| a.disposition == last.disposition)
            .count();
        if seen >= retry.max as usize {
            return Verdict::Stop(reason(
                Rule::RetryLimit,
                format!(
                    "{seen} attempts ended '{}' (at most {})",
                    last.disposition, retry.max
                ),
            ));
        }
    }
    let made = lead.attempts.len();
    if made >= rules.max_attempts as usize {
        return Verdict::Stop(reason(
            Rule::MaxAttempts,
            format!("{made} attempts made (at most {})", rules.max_attempts),
        ));
    }
    if let Some(end) = rules.end_date {
        for &tz in zones {
            let today = now.with_timezone(&tz).date_naive();
            if today > end {
                return Verdict::Stop(reason(
                    Rule::Schedule,
                    format!("the campaign ended on {end}; it is {today} in {tz}"),
                ));
            }
        }
    }

    // 2. Callback.
    let callback = lead
        .callback
        .filter(|cb| last.is_none_or(|last| *cb > last.at));
    if let Some(cb) = callback
        && now < cb
    {
        return Verdict::Wait {
            until: cb,
            reason: reason(
                Rule::Callback,
                format!(
                    "the customer asked to be called back at {}",
                    fmt_instant(cb, zones)
                ),
            ),
        };
    }

    // 3. Retry delay, minimum gap.
    if let Some(last) = last {
        if callback.is_none()
            && let Some(retry) = rules.retries.get(&last.disposition)
        {
            let until = after(last.at, retry.delay_secs);
            if now < until {
                return Verdict::Wait {
                    until,
                    reason: reason(
                        Rule::RetryDelay,
                        format!(
                            "last attempt ended '{}' at {}; retry after {}",
                            last.disposition,
                            fmt_instant(last.at, zones),
                            fmt_secs(retry.delay_secs)
                        ),
                    ),
                };
            }
        }
        let until = after(last.at, rules.min_gap_secs);
        if now < until {
            return Verdict::Wait {
                until,
                reason: reason(
                    Rule::MinGap,
                    format!(
                        "last attempt at {}; attempts are at least {} apart",
                        fmt_instant(last.at, zones),
                        fmt_secs(rules.min_gap_secs)
                    ),
                ),
            };
        }
    }

    // 4. Per-day cap, debt cap.
    if let Some(wait) = per_day_cap(rules, lead, zones, now) {
        return wait;
    }
    if let Some(wait) = debt_cap(rules, lead, now) {
        return wait;
    }

    // 5. Calendar.
    let calendar = Calendar { rules, zones };
    match calendar.next_open(now) {
        Some(open) if open == now => {}
        Some(open) => {
            return Verdict::Wait {
                until: open,
                reason: calendar.why_closed(now),
            };
        }
        None => return Verdict::Stop(calendar.never_opens(now)),
    }

    let places = zones
        .iter()
        .map(|tz| {
            let local = now.with_timezone(tz);
            format!(
                "{} ({}) in {tz}",
                fmt_time(local.time()),
                fmt_weekday(local.weekday())
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let detail = format!(
        "{places} inside the calling window; attempt {} of at most {}",
        made + 1,
        rules.max_attempts
    );
    match callback {
        Some(cb) => Verdict::Dial(reason(
            Rule::Callback,
            format!(
                "callback requested for {} is due; {detail}",
                fmt_instant(cb, zones)
            ),
        )),
        None => Verdict::Dial(reason(Rule::Ok, detail)),
    }
}

fn per_day_cap(
    rules: &DialRules,
    lead: &LeadState,
    zones: &[Tz],
    now: DateTime<Utc>,
) -> Option<Verdict> {
    let max = rules.max_attempts_per_day as usize;
    let mut until: Option<DateTime<Utc>> = None;
    let mut first_blocked = None;
    for &tz in zones {
        let today = now.with_timezone(&tz).date_naive();
        let day_start = resolve(tz, today.and_time(NaiveTime::MIN), Edge::Start);
        // Attempts lie in the past, so the count drops to zero at the next local midnight.
        let next_midnight = today.succ_opt().map_or(now, |d| {
            resolve(tz, d.and_time(NaiveTime::MIN), Edge::Start)
        });
        let count = lead
            .attempts
            .iter()
            .filter(|a| a.at >= day_start && a.at < next_midnight)
            .count();
        if count >= max {
            until = Some(until.map_or(next_midnight, |u| u.max(next_midnight)));
            first_blocked.get_or_insert((tz, today, count));
        }
    }
    let (tz, today, count) = first_blocked?;
    Some(Verdict::Wait {
        until: until.unwrap_or(now),
        reason: reason(
            Rule::MaxAttemptsPerDay,
            format!("{count} attempts on {today} in {tz} (at most {max} per local day)"),
        ),
    })
}

fn debt_cap(rules: &DialRules, lead: &LeadState, now: DateTime<Utc>) -> Option<Verdict> {
    let cap = rules.debt_cap?;
    let window = Duration::days(i64::from(cap.days));
    let mut recent: Vec<DateTime<Utc>> = lead
        .debt_attempts
        .iter()
        .copied()
        .filter(|&at| now.checked_sub_signed(window).is_none_or(|from| at > from))
        .collect();
    let max = cap.max as usize;
    if recent.len() < max {
        return None;
    }
    recent.sort_unstable();
    // The cap lifts when enough of the oldest attempts have left the rolling window.
    let until = recent[recent.len() - max]
        .checked_add_signed(window)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Some(Verdict::Wait {
        until,
        reason: reason(
            Rule::DebtCap,
            format!(
                "{} attempts on this debt in the last {} days (at most {}); the oldest leaves the window at {}",
                recent.len(),
                cap.days,
                cap.max,
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    Start,
    End,
}

/// The instant a local wall-clock time names: in a spring-forward gap, the first instant after
/// the gap; in a fall-back overlap, the earlier instant for a window start and the later for an
/// end.
fn resolve(tz: Tz, local: NaiveDateTime, edge: Edge) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(early, late) => match edge {
            Edge::Start => early.with_timezone(&Utc),
            Edge::End => late.with_timezone(&Utc),
        },
        LocalResult::None => {
            // Gaps end on a whole minute in every current zone; the first valid minute after
            // `local` is the end of the gap. A day-long gap (Samoa, 2011) is the longest known.
            let mut probe = local
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local);
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&local)
        }
    }
}

/// The calendar of one campaign for one lead: the instants allowed by dates, holidays, weekdays
/// and windows, in every candidate zone at once.
struct Calendar<'a> {
    rules: &'a DialRules,
    zones: &'a [Tz],
}

/// Half-open `[start, end)` intervals of one zone's allowed instants, in order, overlaps merged.
struct ZoneIntervals<'a> {
    rules: &'a DialRules,
    tz: Tz,
    next_day: NaiveDate,
    last_day: NaiveDate,
    pending: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    peeked: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl<'a> ZoneIntervals<'a> {
    fn new(rules: &'a DialRules, tz: Tz, now: DateTime<Utc>) -> Self {
        let today = now.with_timezone(&tz).date_naive();
        ZoneIntervals {
            rules,
            tz,
            next_day: today.pred_opt().unwrap_or(today),
            last_day: today
                .checked_add_signed(Duration::days(HORIZON_DAYS))
                .unwrap_or(NaiveDate::MAX),
            pending: Vec::new(),
            peeked: None,
        }
    }

    /// The next raw (unmerged) interval, day by day.
    fn raw(&mut self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        while self.pending.is_empty() {
            if self.next_day > self.last_day {
                return None;
            }
            let day = self.next_day;
            self.next_day = day.succ_opt()?;
            if !day_allowed(self.rules, day) {
                continue;
            }
            for w in &self.rules.windows {
                if w.days.contains(&day.weekday()) {
                    let s = resolve(self.tz, day.and_time(w.start), Edge::Start);
                    let e = resolve(self.tz, day.and_time(w.end), Edge::End);
                    if s < e {
                        self.pending.push((s, e));
                    }
                }
            }
            // Popped from the back: latest first in the vector.
            self.pending.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.pending.pop()
    }

    fn next_interval(&mut self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, mut end) = match self.peeked.take() {
            Some(i) => i,
            None => self.raw()?,
        };
        while let Some((s, e)) = self.raw() {
            if s <= end {
                end = end.max(e);
            } else {
                self.peeked = Some((s, e));
                break;
            }
        }
        Some((start, end))
    }
}

fn day_allowed(rules: &DialRules, day: NaiveDate) -> bool {
    rules.start_date.is_none_or(|s| day >= s)
        && rules.end_date.is_none_or(|e| day <= e)
        && !rules.holidays.contains(&day)
}

impl Calendar<'_> {
    /// The first instant at or after `now` inside the calendar in every zone.
    fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut iters: Vec<ZoneIntervals> = self
            .zones
            .iter()
            .map(|&tz| ZoneIntervals::new(self.rules, tz, now))
            .collect();
        let mut current = Vec::with_capacity(iters.len());
        for it in &mut iters {
            current.push(it.next_interval()?);
        }
        let mut t = now;
        loop {
            let mut moved = false;
            for (it, cur) in iters.iter_mut().zip(current.iter_mut()) {
                while cur.1 <= t {
                    *cur = it.next_interval()?;
                }
                if cur.0 > t {
                    t = cur.0;
                    moved = true;
                }
            }
            if !moved {
                return Some(t);
            }
        }
    }

    /// Why the calendar is closed at `now`: the highest-priority closed rule of any zone
    /// (dates, then holidays, then weekdays, then windows), zones in the caller's order.
    fn why_closed(&self, now: DateTime<Utc>) -> Reason {
        let mut best: Option<(u8, Reason)> = None;
        for &tz in self.zones {
            if self.next_open_in(tz, now) == Some(now) {
                continue;
            }
            let (rank, r) = self.why_closed_in(tz, now);
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, r));
            }
        }
        best.map(|(_, r)| r).unwrap_or_else(|| {
            reason(
                Rule::CallingWindow,
                format!(
                    "no instant is inside the calling window in all of {} at once",
                    zone_list(self.zones)
                ),
            )
        })
    }

    fn next_open_in(&self, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Calendar {
            rules: self.rules,
            zones: &[tz],
        }
        .next_open(now)
    }

    fn why_closed_in(&self, tz: Tz, now: DateTime<Utc>) -> (u8, Reason) {
        let local = now.with_timezone(&tz);
        let (day, time) = (local.date_naive(), local.time());
        if let Some(start) = self.rules.start_date
            && day < start
        {
            return (
                0,
                reason(
                    Rule::Schedule,
                    format!("the campaign starts on {start}; it is {day} in {tz}"),
                ),
            );
        }
        if self.rules.holidays.contains(&day) {
            return (
                1,
                reason(Rule::Holiday, format!("{day} is a holiday in {tz}")),
            );
        }
        let windows: Vec<&Window> = self
            .rules
            .windows
            .iter()
            .filter(|w| w.days.contains(&day.weekday()))
            .collect();
        if windows.is_empty() {
            return (
                2,
                reason(
                    Rule::Weekday,
                    format!(
                        "no calling window on {} ({day} in {tz})",
                        fmt_weekday(day.weekday())
                    ),
                ),
            );
        }
        let spans = windows
            .iter()
            .map(|w| format!("{}–{}", fmt_time(w.start), fmt_time(w.end)))
            .collect::<Vec<_>>()
            .join(", ");
        let first = windows
            .iter()
            .map(|w| w.start)
            .min()
            .unwrap_or(NaiveTime::MIN);
        let last = windows
            .iter()
            .map(|w| w.end)
            .max()
            .unwrap_or(NaiveTime::MIN);
        let position = if time < first {
            format!("is before {}", fmt_time(first))
        } else if time >= last {
            format!("is at or after {}", fmt_time(last))
        } else {
            // Inside the span of the windows by wall clock: between two windows, or at a DST
            // edge where the wall-clock time does not name the instant.
            "is outside every window".to_owned()
        };
        let s = if windows.len() > 1 { "s" } else { "" };
        (
            3,
            reason(
                Rule::CallingWindow,
                format!(
                    "{} ({}) in {tz} {position} (window{s} {spans})",
                    fmt_time(time),
                    fmt_weekday(day.weekday())
                ),
            ),
        )
    }

    fn never_opens(&self, now: DateTime<Utc>) -> Reason {
        let horizon = now + Duration::days(HORIZON_DAYS);
        if let Some(end) = self.rules.end_date
            && end < horizon.date_naive()
        {
            return reason(
                Rule::Schedule,
                format!(
                    "no calling window opens in all of {} before the campaign ends on {end}",
                    zone_list(self.zones)
                ),
            );
        }
        reason(
            Rule::CallingWindow,
            format!(
                "no calling window opens in all of {} at once within {HORIZON_DAYS} days",
                zone_list(self.zones)
            ),
        )
    }
}

/// `t` plus `secs` seconds, saturating at the end of time.
fn after(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(Duration::try_seconds)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn fmt_time(t: NaiveTime) -> String {
    if t.second() == 0 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%H:%M:%S").to_string()
    }
}

fn fmt_weekday(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

/// An instant in the lead's first zone, e.g. `2026-03-10 14:30 America/New_York`.
fn fmt_instant(t: DateTime<Utc>, zones: &[Tz]) -> String {
    let tz = zones.first().copied().unwrap_or(Tz::UTC);
    format!("{} {tz}", t.with_timezone(&tz).format("%Y-%m-%d %H:%M"))
}

fn fmt_secs(s: u64) -> String {
    match s {
        s if s % 3600 == 0 && s > 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn zone_list(zones: &[Tz]) -> String {
    zones
        .iter()
        .map(|z| z.name())
        .collect::<Vec<_>>()
        .join(", ")
}

mod serde_time {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::fmt_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(&text, "%H:%M"))
            .map_err(|_| {
                D::Error::custom(format!(
                    "'{text}' is not a time like \"08:00\" or \"08:00:30\""
                ))
            })
    }
}

mod serde_days {
    use chrono::Weekday;
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    pub fn serialize<S: Serializer>(days: &[Weekday], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(days.len()))?;
        for d in days {
            seq.serialize_element(&super::fmt_weekday(*d).to_ascii_lowercase())?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                text.parse::<Weekday>().map_err(|_| {
                    D::Error::custom(format!("'{text}' is not a weekday like \"mon\""))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Los_Angeles, New_York};
    use chrono_tz::Asia::Shanghai;
    use chrono_tz::Australia::Sydney;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test instant")
            .with_timezone(&Utc)
    }

    fn attempt(at: &str, disposition: &str) -> Attempt {
        Attempt {
            at: utc(at),
            disposition: disposition.to_owned(),
        }
    }

    fn lead<'a>(zones: &'a [Tz], attempts: &'a [Attempt]) -> LeadState<'a> {
        LeadState {
            timezones: zones,
            attempts,
            debt_attempts: &[],
            callback: None,
        }
    }

    fn window(days: &[Weekday], start: &str, end: &str) -> Window {
        Window {
            days: days.to_vec(),
            start: NaiveTime::parse_from_str(start, "%H:%M").expect("time"),
            end: NaiveTime::parse_from_str(end, "%H:%M").expect("time"),
        }
    }

    fn wait(v: &Verdict) -> (DateTime<Utc>, Rule) {
        match v {
            Verdict::Wait { until, reason } => (*until, reason.rule),
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let rules = DialRules::default();
        assert_eq!(rules.validate(), Ok(()));
        let json = serde_json::to_value(&rules).expect("serialize");
        assert_eq!(json["windows"][0]["start"], "08:00");
        assert_eq!(json["windows"][0]["end"], "21:00");
        assert_eq!(json["windows"][0]["days"][0], "mon");
        let back: DialRules = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, rules);
        let verdict = Verdict::Wait {
            until: utc("2026-06-02T12:00:00Z"),
            reason: reason(Rule::MaxAttemptsPerDay, "3 attempts"),
        };
        let stored = serde_json::to_value(&verdict).expect("serialize verdict");
        assert_eq!(stored["verdict"], "wait");
        assert_eq!(stored["reason"]["rule"], "max_attempts_per_day");
        assert_eq!(
            serde_json::from_value::<Verdict>(stored).expect("verdict"),
            verdict
        );
        let dial = serde_json::to_value(Verdict::Dial(reason(Rule::Ok, "fine"))).expect("dial");
        assert_eq!(
            dial,
            serde_json::json!({"verdict": "dial", "rule": "ok", "detail": "fine"})
        );
        for final_one in [
            "completed",
            "transferred",
            "invalid_number",
            "fax",
            "rejected",
            "opted_out",
            "wrong_party",
        ] {
            assert!(is_final(&rules, final_one), "{final_one}");
        }
        for retried in [
            "busy",
            "no_answer",
            "machine",
            "unreachable",
            "network_error",
            "interrupted",
            "answered",
            "abandoned",
            "callback",
        ] {
            assert!(!is_final(&rules, retried), "{retried}");
        }
    }

    #[test]
    fn config_reads_short_forms_and_rejects_unknown_fields() {
        let rules: DialRules = serde_json::from_str(
            r#"{"windows":[{"days":["Mon","tuesday","sat"],"start":"09:30","end":"17:00:30"}],
                "holidays":["2026-12-25"],"max_attempts":4}"#,
        )
        .expect("parse");
        assert_eq!(
            rules.windows[0].days,
            vec![Weekday::Mon, Weekday::Tue, Weekday::Sat]
        );
        assert_eq!(
            rules.windows[0].end,
            NaiveTime::from_hms_opt(17, 0, 30).expect("time")
        );
        assert_eq!(rules.max_attempts, 4);
        assert_eq!(
            rules.max_attempts_per_day, 3,
            "unspecified fields keep their default"
        );
        let unknown = serde_json::from_str::<DialRules>(r#"{"max_attempt":4}"#);
        assert!(unknown.is_err());
        let bad_time = serde_json::from_str::<DialRules>(
            r#"{"windows":[{"days":["mon"],"start":"8am","end":"21:00"}]}"#,
        )
        .expect_err("bad time");
        assert!(
            bad_time.to_string().contains("'8am' is not a time"),
            "{bad_time}"
        );
    }

    #[test]
    fn validate_names_each_bad_field() {
        let mut rules = DialRules {
            windows: vec![window(&[], "21:00", "08:00")],
            max_attempts: 0,
            start_date: NaiveDate::from_ymd_opt(2026, 5, 2),
            end_date: NaiveDate::from_ymd_opt(2026, 5, 1),
            debt_cap: Some(FrequencyCap { max: 0, days: 7 }),
            min_gap_secs: 400 * 24 * 3600,
            ..DialRules::default()
        };
        rules.retries.insert(
            "busy".into(),
            Retry {
                delay_secs: 0,
                max: 0,
            },
        );
        let err = rules.validate().expect_err("invalid");
        for needle in [
            "windows[0].days",
            "windows[0]: start 21:00 is not before end 08:00",
            "start_date 2026-05-02 is after end_date 2026-05-01",
            "retries.busy.delay_secs",
            "retries.busy.max",
            "max_attempts: must be at least 1",
            "debt_cap.max",
            "min_gap_secs: 34560000 is more than a year",
        ] {
            assert!(err.contains(needle), "{needle} missing from {err}");
        }
        let none = DialRules {
            windows: vec![],
            ..DialRules::default()
        };
        assert!(
            none.validate()
                .expect_err("no window")
                .starts_with("windows:")
        );
    }

    #[test]
    fn before_the_window_waits_for_its_opening_with_a_readable_reason() {
        let rules = DialRules::default();
        let zones = [chrono_tz::America::Chicago];
        // 2026-03-10 is a Tuesday; 13:42 UTC is 07:42 CDT... no, CST until 03-08: CDT (UTC-5).
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-03-10T12:42:00Z"));
        assert_eq!(
            v,
            Verdict::Wait {
                until: utc("2026-03-10T13:00:00Z"),
                reason: reason(
                    Rule::CallingWindow,
                    "07:42 (Tue) in America/Chicago is before 08:00 (window 08:00–21:00)"
                ),
            }
        );
        assert_eq!(
            v.reason().to_string(),
            "calling_window: 07:42 (Tue) in America/Chicago is before 08:00 (window 08:00–21:00)"
        );
        let at_end = decide(&rules, &lead(&zones, &[]), utc("2026-03-11T02:00:00Z"));
        assert_eq!(
            wait(&at_end),
            (utc("2026-03-11T13:00:00Z"), Rule::CallingWindow)
        );
        assert!(
            at_end
                .reason()
                .detail
                .contains("21:00 (Tue) in America/Chicago is at or after 21:00")
        );
        let inside = decide(&rules, &lead(&zones, &[]), utc("2026-03-10T13:00:00Z"));
        assert_eq!(inside.reason().rule, Rule::Ok);
        assert!(inside.is_dial());
    }

    #[test]
    fn spring_forward_gap_opens_at_the_first_instant_after_it() {
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "02:30", "05:00")],
            ..DialRules::default()
        };
        let zones = [New_York];
        // 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC): 02:30 does not exist.
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-03-08T06:00:00Z"));
        assert_eq!(wait(&v).0, utc("2026-03-08T07:00:00Z"));
        assert!(decide(&rules, &lead(&zones, &[]), utc("2026-03-08T07:00:00Z")).is_dial());
        // Sydney: 2026-10-04 02:00 AEST jumps to 03:00 AEDT (16:00 UTC the day before).
        let zones = [Sydney];
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-10-03T15:00:00Z"));
        assert_eq!(wait(&v).0, utc("2026-10-03T16:00:00Z"));
        // A window ending inside the gap ends at the transition.
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "01:00", "02:30")],
            ..DialRules::default()
        };
        let zones = [New_York];
        assert!(decide(&rules, &lead(&zones, &[]), utc("2026-03-08T06:59:00Z")).is_dial());
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-03-08T07:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-03-09T05:00:00Z"), Rule::CallingWindow));
    }

    #[test]
    fn fall_back_overlap_takes_the_earlier_start_and_the_later_end() {
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "01:30", "01:45")],
            ..DialRules::default()
        };
        // New York 2026-11-01: 01:00–02:00 happens twice (EDT 05:00–06:00 UTC, EST 06:00–07:00).
        let zones = [New_York];
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-11-01T05:00:00Z"));
        assert_eq!(wait(&v).0, utc("2026-11-01T05:30:00Z"));
        for inside in [
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:44:59Z",
        ] {
            assert!(
                decide(&rules, &lead(&zones, &[]), utc(inside)).is_dial(),
                "{inside}"
            );
        }
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-11-01T06:45:00Z"));
        assert_eq!(wait(&v).0, utc("2026-11-02T06:30:00Z"));
        // Sydney 2026-04-05: 03:00 AEDT goes back to 02:00 AEST; 02:00–03:00 happens twice.
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "02:15", "02:30")],
            ..DialRules::default()
        };
        let zones = [Sydney];
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-04-04T15:00:00Z"));
        assert_eq!(
            wait(&v).0,
            utc("2026-04-04T15:15:00Z"),
            "earlier 02:15 (AEDT)"
        );
        assert!(decide(&rules, &lead(&zones, &[]), utc("2026-04-04T16:29:00Z")).is_dial());
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-04-04T16:30:00Z"));
        assert_eq!(
            wait(&v).1,
            Rule::CallingWindow,
            "later 02:30 (AEST) ends it"
        );
    }

    #[test]
    fn several_zones_need_the_window_in_all_of_them() {
        let rules = DialRules::default();
        let zones = [New_York, Los_Angeles];
        // 10:00 EDT = 07:00 PDT: Los Angeles opens at 08:00 PDT = 15:00 UTC.
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-06-02T14:00:00Z"));
        let (until, rule) = wait(&v);
        assert_eq!(
            (until, rule),
            (utc("2026-06-02T15:00:00Z"), Rule::CallingWindow)
        );
        assert!(
            v.reason()
                .detail
                .contains("in America/Los_Angeles is before 08:00"),
            "{v:?}"
        );
        assert_eq!(
            decide(&rules, &lead(&zones, &[]), until),
            Verdict::Dial(reason(
                Rule::Ok,
                "11:00 (Tue) in America/New_York and 08:00 (Tue) in America/Los_Angeles inside \
                 the calling window; attempt 1 of at most 10"
            ))
        );
        // 21:00 EDT = 01:00 UTC closes New York while Los Angeles is still open.
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-06-03T01:00:00Z"));
        assert_eq!(wait(&v).0, utc("2026-06-03T15:00:00Z"));
        assert!(v.reason().detail.contains("America/New_York"));
    }

    #[test]
    fn zones_that_never_share_a_window_stop_instead_of_looping() {
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "08:00", "10:00")],
            ..DialRules::default()
        };
        let zones = [New_York, Shanghai];
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-06-02T14:00:00Z"));
        let Verdict::Stop(r) = v else {
            panic!("expected stop, got {v:?}")
        };
        assert_eq!(r.rule, Rule::CallingWindow);
        assert!(r.detail.contains("America/New_York, Asia/Shanghai"), "{r}");
    }

    #[test]
    fn empty_zone_list_is_utc_and_says_so() {
        let v = decide(
            &DialRules::default(),
            &lead(&[], &[]),
            utc("2026-06-02T07:00:00Z"),
        );
        assert_eq!(wait(&v).0, utc("2026-06-02T08:00:00Z"));
        assert!(
            v.reason()
                .detail
                .ends_with("(no timezone known for the number: UTC assumed)")
        );
    }

    #[test]
    fn retries_follow_the_disposition_and_stop_at_its_limit() {
        let rules = DialRules {
            max_attempts_per_day: 10,
            ..DialRules::default()
        };
        let zones = [New_York];
        let busy = [attempt("2026-06-02T14:00:00Z", "busy")];
        let v = decide(&rules, &lead(&zones, &busy), utc("2026-06-02T14:05:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-02T14:10:00Z"), Rule::RetryDelay));
        assert!(v.reason().detail.contains("'busy'") && v.reason().detail.contains("10 min"));
        assert!(decide(&rules, &lead(&zones, &busy), utc("2026-06-02T14:10:00Z")).is_dial());

        let five_busy: Vec<Attempt> = (0..5)
            .map(|i| attempt(&format!("2026-06-02T1{i}:00:00Z"), "busy"))
            .collect();
        let v = decide(
            &rules,
            &lead(&zones, &five_busy),
            utc("2026-06-02T20:00:00Z"),
        );
        assert_eq!(v.reason().rule, Rule::RetryLimit);
        assert!(matches!(v, Verdict::Stop(_)));
        // The limit counts the last disposition only: a no_answer after five busies retries.
        let mut mixed = five_busy.clone();
        mixed.push(attempt("2026-06-02T16:00:00Z", "no_answer"));
        let v = decide(&rules, &lead(&zones, &mixed), utc("2026-06-02T16:30:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-02T17:00:00Z"), Rule::RetryDelay));

        let abandoned = [attempt("2026-06-02T14:00:00Z", "abandoned")];
        let v = decide(
            &rules,
            &lead(&zones, &abandoned),
            utc("2026-06-02T14:30:00Z"),
        );
        assert_eq!(wait(&v), (utc("2026-06-02T15:00:00Z"), Rule::RetryDelay));

        for final_one in ["completed", "opted_out", "wrong_party", "something_new"] {
            let done = [attempt("2026-06-02T14:00:00Z", final_one)];
            let v = decide(&rules, &lead(&zones, &done), utc("2026-06-03T14:00:00Z"));
            assert_eq!(
                v,
                Verdict::Stop(reason(
                    Rule::Final,
                    format!("last attempt ended '{final_one}', which is final")
                ))
            );
        }
    }

    #[test]
    fn max_attempts_stops_the_lead() {
        let rules = DialRules {
            max_attempts: 3,
            max_attempts_per_day: 10,
            ..DialRules::default()
        };
        let zones = [New_York];
        let attempts = [
            attempt("2026-06-01T14:00:00Z", "no_answer"),
            attempt("2026-06-01T16:00:00Z", "busy"),
            attempt("2026-06-01T18:00:00Z", "machine"),
        ];
        let v = decide(
            &rules,
            &lead(&zones, &attempts),
            utc("2026-06-03T14:00:00Z"),
        );
        assert_eq!(
            v,
            Verdict::Stop(reason(Rule::MaxAttempts, "3 attempts made (at most 3)"))
        );
    }

    #[test]
    fn min_gap_holds_even_for_a_due_callback() {
        let rules = DialRules {
            min_gap_secs: 300,
            ..DialRules::default()
        };
        let zones = [New_York];
        let attempts = [attempt("2026-06-02T14:00:00Z", "callback")];
        let state = LeadState {
            callback: Some(utc("2026-06-02T14:01:00Z")),
            ..lead(&zones, &attempts)
        };
        let v = decide(&rules, &state, utc("2026-06-02T14:02:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-02T14:05:00Z"), Rule::MinGap));
        let v = decide(&rules, &state, utc("2026-06-02T14:05:00Z"));
        assert_eq!(v.reason().rule, Rule::Callback);
        assert!(
            v.is_dial(),
            "the callback overrides the 1 h retry delay of 'callback'"
        );
    }

    #[test]
    fn callbacks_wait_for_their_time_but_not_past_the_calendar() {
        let rules = DialRules::default();
        let zones = [New_York];
        let attempts = [attempt("2026-06-02T14:00:00Z", "callback")];
        let mut state = LeadState {
            callback: Some(utc("2026-06-02T18:30:00Z")),
            ..lead(&zones, &attempts)
        };
        let v = decide(&rules, &state, utc("2026-06-02T15:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-02T18:30:00Z"), Rule::Callback));
        assert!(
            v.reason()
                .detail
                .contains("2026-06-02 14:30 America/New_York"),
            "{v:?}"
        );
        // A callback asked for 22:00 local waits for the window (08:00 next day).
        state.callback = Some(utc("2026-06-03T02:00:00Z"));
        let v = decide(&rules, &state, utc("2026-06-03T02:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-03T12:00:00Z"), Rule::CallingWindow));
        // A callback at or before the last attempt was served already: the retry delay applies.
        state.callback = Some(utc("2026-06-02T13:00:00Z"));
        let v = decide(&rules, &state, utc("2026-06-02T14:30:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-02T15:00:00Z"), Rule::RetryDelay));
    }

    #[test]
    fn per_day_cap_lifts_at_the_latest_local_midnight() {
        let rules = DialRules {
            windows: vec![window(&ALL_DAYS, "00:00", "23:59")],
            max_attempts_per_day: 2,
            ..DialRules::default()
        };
        let zones = [New_York];
        let attempts = [
            attempt("2026-06-02T14:00:00Z", "busy"),
            attempt("2026-06-02T15:00:00Z", "busy"),
        ];
        let v = decide(
            &rules,
            &lead(&zones, &attempts),
            utc("2026-06-02T20:00:00Z"),
        );
        assert_eq!(
            wait(&v),
            (utc("2026-06-03T04:00:00Z"), Rule::MaxAttemptsPerDay)
        );
        assert_eq!(
            v.reason().detail,
            "2 attempts on 2026-06-02 in America/New_York (at most 2 per local day)"
        );
        assert!(
            decide(
                &rules,
                &lead(&zones, &attempts),
                utc("2026-06-03T04:00:00Z")
            )
            .is_dial()
        );
        // Both zones must have passed midnight: Los Angeles is 3 h later.
        let zones = [New_York, Los_Angeles];
        let v = decide(
            &rules,
            &lead(&zones, &attempts),
            utc("2026-06-02T20:00:00Z"),
        );
        assert_eq!(
            wait(&v),
            (utc("2026-06-03T07:00:00Z"), Rule::MaxAttemptsPerDay)
        );
        // An attempt at 23:30 in New York is on the next day in Shanghai, not in New York.
        let late = [
            attempt("2026-06-03T03:00:00Z", "busy"),
            attempt("2026-06-03T03:30:00Z", "busy"),
        ];
        let zones = [Shanghai];
        let v = decide(&rules, &lead(&zones, &late), utc("2026-06-03T04:00:00Z"));
        assert_eq!(
            wait(&v),
            (utc("2026-06-03T16:00:00Z"), Rule::MaxAttemptsPerDay)
        );
    }

    #[test]
    fn debt_cap_is_seven_in_seven_days_rolling() {
        let rules = DialRules::default();
        let zones = [New_York];
        let debt: Vec<DateTime<Utc>> = (1..=7)
            .map(|d| utc(&format!("2026-06-0{d}T15:00:00Z")))
            .collect();
        let state = LeadState {
            debt_attempts: &debt,
            ..lead(&zones, &[])
        };
        let v = decide(&rules, &state, utc("2026-06-07T16:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-06-08T15:00:00Z"), Rule::DebtCap));
        assert!(decide(&rules, &state, utc("2026-06-08T15:00:00Z")).is_dial());
        let six = LeadState {
            debt_attempts: &debt[1..],
            ..state
        };
        assert!(decide(&rules, &six, utc("2026-06-07T16:00:00Z")).is_dial());
        let off = DialRules {
            debt_cap: None,
            ..DialRules::default()
        };
        assert!(decide(&off, &state, utc("2026-06-07T16:00:00Z")).is_dial());
    }

    #[test]
    fn dates_holidays_and_weekdays() {
        let rules = DialRules {
            windows: vec![window(
                &[
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
                "09:00",
                "17:00",
            )],
            start_date: NaiveDate::from_ymd_opt(2026, 12, 21),
            end_date: NaiveDate::from_ymd_opt(2026, 12, 31),
            holidays: vec![NaiveDate::from_ymd_opt(2026, 12, 25).expect("date")],
            ..DialRules::default()
        };
        let zones = [chrono_tz::Europe::London];
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-12-01T10:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-12-21T09:00:00Z"), Rule::Schedule));
        // Friday 25th is a holiday; the next opening is Monday 28th.
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-12-25T10:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-12-28T09:00:00Z"), Rule::Holiday));
        assert_eq!(
            v.reason().detail,
            "2026-12-25 is a holiday in Europe/London"
        );
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-12-26T10:00:00Z"));
        assert_eq!(wait(&v), (utc("2026-12-28T09:00:00Z"), Rule::Weekday));
        assert_eq!(
            v.reason().detail,
            "no calling window on Sat (2026-12-26 in Europe/London)"
        );
        // After the end date in any zone: stop. 2027-01-01 00:30 in London, still 2026 in New York.
        let v = decide(
            &rules,
            &lead(&[New_York, chrono_tz::Europe::London], &[]),
            utc("2027-01-01T00:30:00Z"),
        );
        assert_eq!(
            v,
            Verdict::Stop(reason(
                Rule::Schedule,
                "the campaign ended on 2026-12-31; it is 2027-01-01 in Europe/London"
            ))
        );
        // 31st 17:00 London: closed for good within the dates.
        let v = decide(&rules, &lead(&zones, &[]), utc("2026-12-31T17:00:00Z"));
        assert!(
            matches!(&v, Verdict::Stop(r) if r.rule == Rule::Schedule),
            "{v:?}"
        );
    }

    #[test]
    fn next_dial_chains_the_waits() {
        let rules = DialRules::default();
        let zones = [New_York];
        let attempts = [attempt("2026-06-03T00:30:00Z", "no_answer")];
        // 20:30 EDT no answer: retry in 1 h lands at 21:30, outside the window: next 08:00.
        let v = next_dial(
            &rules,
            &lead(&zones, &attempts),
            utc("2026-06-03T00:40:00Z"),
        );
        assert_eq!(wait(&v), (utc("2026-06-03T12:00:00Z"), Rule::RetryDelay));
    }

    /// The calendar rules are one rule for exactness: as time passes a holiday gives way to the
    /// hours before the next window, with the same opening instant.
    fn group(rule: Rule) -> Rule {
        match rule {
            Rule::Schedule | Rule::Holiday | Rule::Weekday => Rule::CallingWindow,
            other => other,
        }
    }

    /// Random rules, leads and instants: every wait is exact (the rule holds just before
    /// `until` and no longer at `until`), and every dial is inside a window in all zones.
    #[test]
    fn randomized_waits_are_exact_and_dials_are_lawful() {
        let mut rng = StdRng::seed_from_u64(0x5EED_0006);
        let pool = [
            New_York,
            Los_Angeles,
            chrono_tz::Europe::London,
            Shanghai,
            Sydney,
            chrono_tz::Australia::Perth,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Kolkata,
        ];
        let dispositions = [
            "busy",
            "no_answer",
            "machine",
            "callback",
            "abandoned",
            "interrupted",
            "completed",
        ];
        let base = utc("2026-01-01T00:00:00Z");
        let (mut dials, mut waits) = (0, 0);
        for case in 0..3000 {
            let mut windows = Vec::new();
            for _ in 0..rng.random_range(1..=2) {
                // Windows start from 04:00 so that the wall-clock check below is exact.
                let start = rng.random_range(4 * 60..20 * 60);
                let end = rng.random_range(start + 30..=23 * 60 + 59);
                let days: Vec<Weekday> = ALL_DAYS
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.8))
                    .collect();
                if days.is_empty() {
                    continue;
                }
                windows.push(Window {
                    days,
                    start: hm(start / 60, start % 60),
                    end: hm(end / 60, end % 60),
                });
            }
            if windows.is_empty() {
                windows.push(window(&ALL_DAYS, "08:00", "21:00"));
            }
            let now = base + Duration::minutes(rng.random_range(0..365 * 24 * 60));
            let rules = DialRules {
                windows,
                holidays: (0..rng.random_range(0..4))
                    .map(|_| (now + Duration::days(rng.random_range(-1..5))).date_naive())
                    .collect(),
                start_date: rng
                    .random_bool(0.2)
                    .then(|| (now + Duration::days(rng.random_range(-3..10))).date_naive()),
                end_date: rng
                    .random_bool(0.2)
                    .then(|| (now + Duration::days(rng.random_range(0..30))).date_naive()),
                max_attempts_per_day: rng.random_range(1..4),
                min_gap_secs: rng.random_range(0..600),
                ..DialRules::default()
            };
            let zones: Vec<Tz> = (0..rng.random_range(1..=2))
                .map(|_| pool[rng.random_range(0..pool.len())])
                .collect();
            let mut attempts = Vec::new();
            let mut at = now - Duration::minutes(rng.random_range(1..3 * 24 * 60));
            for _ in 0..rng.random_range(0..5) {
                attempts.push(Attempt {
                    at,
                    disposition: dispositions[rng.random_range(0..dispositions.len())].to_owned(),
                });
                at += Duration::minutes(rng.random_range(1..600));
            }
            attempts.retain(|a| a.at <= now);
            let debt: Vec<DateTime<Utc>> = (0..rng.random_range(0..9))
                .map(|_| now - Duration::minutes(rng.random_range(0..8 * 24 * 60)))
                .collect();
            let callback = rng
                .random_bool(0.3)
                .then(|| now + Duration::minutes(rng.random_range(-60..600)));
            let state = LeadState {
                timezones: &zones,
                attempts: &attempts,
                debt_attempts: &debt,
                callback,
            };
            match decide(&rules, &state, now) {
                Verdict::Dial(_) => {
                    dials += 1;
                    for &tz in &zones {
                        let local = now.with_timezone(&tz);
                        let inside = rules.windows.iter().any(|w| {
                            w.days.contains(&local.weekday())
                                && w.start <= local.time()
                                && local.time() < w.end
                        });
                        assert!(
                            inside,
                            "case {case}: dial at {local} outside {:?}",
                            rules.windows
                        );
                        assert!(!rules.holidays.contains(&local.date_naive()), "case {case}");
                    }
                }
                Verdict::Wait { until, reason } => {
                    waits += 1;
                    assert!(until > now, "case {case}");
                    let before = decide(&rules, &state, until - Duration::seconds(1));
                    match before {
                        Verdict::Wait {
                            until: u,
                            reason: r,
                        } => {
                            assert_eq!(
                                (u, group(r.rule)),
                                (until, group(reason.rule)),
                                "case {case}: just before until"
                            );
                        }
                        Verdict::Stop(r) => assert_eq!(r.rule, Rule::Schedule, "case {case}"),
                        Verdict::Dial(_) => {
                            panic!("case {case}: dial before until {until}: {reason}")
                        }
                    }
                    let after = decide(&rules, &state, until);
                    let still = matches!(&after, Verdict::Wait { reason: r, .. } if group(r.rule) == group(reason.rule));
                    assert!(
                        !still,
                        "case {case}: {reason} still blocks at {until}: {after:?}"
                    );
                    if let Verdict::Wait { until: next, .. } = next_dial(&rules, &state, now) {
                        assert!(
                            decide(&rules, &state, next).is_dial(),
                            "case {case}: next_dial {next}"
                        );
                    }
                }
                Verdict::Stop(_) => {}
            }
        }
        assert!(dials > 100 && waits > 1000, "dials {dials} waits {waits}");
    }
}
