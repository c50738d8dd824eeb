//! The calling window across timezones, with a simulated clock.
//!
//! Leads in New York, Los Angeles, London, Shanghai, Sydney and Perth, and one number that may be
//! in New York or Los Angeles, are driven minute by minute (and by events: each dial gets a
//! scripted disposition) through ten days that span the European and Australian DST changes,
//! and through a week that spans the US one. The checks are made against local wall-clock time
//! computed here, independently of the engine.

use bot_runtime::dialer::rules::{
    Attempt, DialRules, FrequencyCap, LeadState, Retry, Rule, Verdict, Window, decide,
};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test instant")
        .with_timezone(&Utc)
}

fn zones() -> Vec<(&'static str, Vec<Tz>)> {
    use chrono_tz::{America, Asia, Australia, Europe};
    vec![
        ("new_york", vec![America::New_York]),
        ("los_angeles", vec![America::Los_Angeles]),
        ("london", vec![Europe::London]),
        ("shanghai", vec![Asia::Shanghai]),
        ("sydney", vec![Australia::Sydney]),
        ("perth", vec![Australia::Perth]),
        ("us_either", vec![America::New_York, America::Los_Angeles]),
    ]
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

/// Inside 08:00–21:00 local in every zone, and not on a holiday there.
fn lawful(at: DateTime<Utc>, zones: &[Tz], holidays: &[NaiveDate]) -> bool {
    zones.iter().all(|tz| {
        let local = at.with_timezone(tz);
        local.time() >= hm(8, 0)
            && local.time() < hm(21, 0)
            && !holidays.contains(&local.date_naive())
    })
}

/// The first instant at or after `from` (minute resolution) lawful in every zone, found by
/// stepping minutes: the slow, obvious oracle for the engine's window arithmetic.
fn oracle_opening(from: DateTime<Utc>, zones: &[Tz], holidays: &[NaiveDate]) -> DateTime<Utc> {
    let mut t = from;
    while !lawful(t, zones, holidays) {
        t += Duration::minutes(1);
    }
    t
}

struct Sim {
    name: &'static str,
    zones: Vec<Tz>,
    attempts: Vec<Attempt>,
    dials: BTreeSet<DateTime<Utc>>,
}

/// Minute by minute from `start` for `days`: every lead is asked at every minute; a Dial is an
/// attempt with the next scripted disposition. Returns the leads with their attempt history.
fn run(rules: &DialRules, start: DateTime<Utc>, days: i64, script: &[&str]) -> Vec<Sim> {
    let mut sims: Vec<Sim> = zones()
        .into_iter()
        .map(|(name, zones)| Sim {
            name,
            zones,
            attempts: Vec::new(),
            dials: BTreeSet::new(),
        })
        .collect();
    let holidays = rules.holidays.clone();
    for sim in &mut sims {
        let mut now = start;
        let mut waiting_until: Option<DateTime<Utc>> = None;
        let mut checked_opening: Option<DateTime<Utc>> = None;
        while now < start + Duration::days(days) {
            let lead = LeadState {
                timezones: &sim.zones,
                attempts: &sim.attempts,
                debt_attempts: &[],
                callback: None,
            };
            let verdict = decide(rules, &lead, now);
            if let Some(until) = waiting_until.take() {
                // A wait announced earlier ends exactly when it said, not a minute before.
                if now < until {
                    assert!(
                        !verdict.is_dial(),
                        "{}: dial at {now} before announced {until}",
                        sim.name
                    );
                    waiting_until = Some(until);
                }
            }
            match verdict {
                Verdict::Dial(reason) => {
                    assert!(
                        lawful(now, &sim.zones, &holidays),
                        "{}: dialed at {now} outside 08:00–21:00 local: {reason}",
                        sim.name
                    );
                    let disposition = script[sim.attempts.len() % script.len()];
                    sim.attempts.push(Attempt {
                        at: now,
                        disposition: disposition.to_owned(),
                    });
                    sim.dials.insert(now);
                }
                Verdict::Wait { until, reason } => {
                    assert!(until > now, "{}: {reason}", sim.name);
                    if matches!(
                        reason.rule,
                        Rule::CallingWindow | Rule::Holiday | Rule::Weekday
                    ) {
                        assert!(
                            !lawful(now, &sim.zones, &holidays),
                            "{}: {reason} at a lawful {now}",
                            sim.name
                        );
                        // Checked once per announced opening: the oracle walks minute by minute.
                        if checked_opening != Some(until) {
                            assert_eq!(
                                until,
                                oracle_opening(now, &sim.zones, &holidays),
                                "{}: the wait at {now} must end at the window opening ({reason})",
                                sim.name
                            );
                            checked_opening = Some(until);
                        }
                    }
                    waiting_until = Some(until);
                }
                Verdict::Stop(reason) => panic!("{}: unexpected stop at {now}: {reason}", sim.name),
            }
            now += Duration::minutes(1);
        }
    }
    sims
}

fn window_rules() -> DialRules {
    DialRules {
        max_attempts: 10_000,
        max_attempts_per_day: 1_000,
        min_gap_secs: 60,
        debt_cap: None,
        retries: BTreeMap::from([(
            "no_answer".to_owned(),
            Retry {
                delay_secs: 60,
                max: 100_000,
            },
        )]),
        ..DialRules::default()
    }
}

/// With a one-minute retry every lead is dialed every other minute the window allows: the dials
/// are all lawful, every window opening is dialed at its first minute, and no lawful minute is
/// missed for more than the retry delay.
fn check_coverage(sims: &[Sim], start: DateTime<Utc>, days: i64, holidays: &[NaiveDate]) {
    for sim in sims {
        assert!(!sim.dials.is_empty(), "{}: never dialed", sim.name);
        let mut t = start;
        let mut was_open = false;
        while t < start + Duration::days(days) {
            let open = lawful(t, &sim.zones, holidays);
            if open && !was_open && t > start {
                assert!(
                    sim.dials.contains(&t),
                    "{}: not dialed at the opening {t}",
                    sim.name
                );
            }
            if open && was_open {
                let prev = t - Duration::minutes(1);
                assert!(
                    sim.dials.contains(&t) || sim.dials.contains(&prev),
                    "{}: lawful minutes {prev} and {t} both idle",
                    sim.name
                );
            }
            was_open = open;
            t += Duration::minutes(1);
        }
    }
}

#[test]
fn ten_days_across_european_and_australian_dst_changes() {
    // Europe/London moves forward on 2026-03-29, Australia/Sydney back on 2026-04-05.
    let start = utc("2026-03-27T00:00:00Z");
    let rules = window_rules();
    let sims = run(&rules, start, 10, &["no_answer"]);
    check_coverage(&sims, start, 10, &[]);
    let london = sims.iter().find(|s| s.name == "london").expect("london");
    // Before the change 08:00 GMT is 08:00 UTC; after it 08:00 BST is 07:00 UTC.
    assert!(london.dials.contains(&utc("2026-03-28T08:00:00Z")));
    assert!(london.dials.contains(&utc("2026-03-30T07:00:00Z")));
    assert!(!london.dials.contains(&utc("2026-03-30T06:59:00Z")));
    let sydney = sims.iter().find(|s| s.name == "sydney").expect("sydney");
    // 08:00 AEDT (UTC+11) before 2026-04-05, 08:00 AEST (UTC+10) after.
    assert!(sydney.dials.contains(&utc("2026-04-03T21:00:00Z")));
    assert!(sydney.dials.contains(&utc("2026-04-05T22:00:00Z")));
    let perth = sims.iter().find(|s| s.name == "perth").expect("perth");
    assert!(
        perth.dials.contains(&utc("2026-04-05T00:00:00Z")),
        "Perth has no DST"
    );
}

#[test]
fn a_week_across_the_us_dst_change_with_a_holiday() {
    // The US moves forward on Sunday 2026-03-08; Wednesday 2026-03-11 is a holiday.
    let start = utc("2026-03-05T00:00:00Z");
    let holiday = NaiveDate::from_ymd_opt(2026, 3, 11).expect("date");
    let rules = DialRules {
        holidays: vec![holiday],
        ..window_rules()
    };
    let sims = run(&rules, start, 7, &["no_answer"]);
    check_coverage(&sims, start, 7, &[holiday]);
    for sim in &sims {
        for at in &sim.dials {
            for tz in &sim.zones {
                assert_ne!(
                    at.with_timezone(tz).date_naive(),
                    holiday,
                    "{}: dialed on the holiday",
                    sim.name
                );
            }
        }
    }
    let either = sims
        .iter()
        .find(|s| s.name == "us_either")
        .expect("us_either");
    // The New York/Los Angeles number opens at 08:00 Pacific and closes at 21:00 Eastern.
    assert!(
        either.dials.contains(&utc("2026-03-06T16:00:00Z")),
        "08:00 PST"
    );
    assert!(
        either.dials.contains(&utc("2026-03-09T15:00:00Z")),
        "08:00 PDT"
    );
    assert!(either.dials.iter().all(|at| {
        let ny = at.with_timezone(&chrono_tz::America::New_York).time();
        let la = at.with_timezone(&chrono_tz::America::Los_Angeles).time();
        ny < hm(21, 0) && la >= hm(8, 0)
    }));
}

#[test]
fn per_day_cap_resets_at_local_midnight_in_every_zone() {
    let rules = DialRules {
        max_attempts_per_day: 3,
        max_attempts: 1_000,
        debt_cap: None,
        retries: BTreeMap::from([(
            "busy".to_owned(),
            Retry {
                delay_secs: 600,
                max: 1_000,
            },
        )]),
        ..DialRules::default()
    };
    let start = utc("2026-03-27T00:00:00Z");
    let sims = run(&rules, start, 10, &["busy"]);
    for sim in &sims {
        for tz in &sim.zones {
            let mut per_day: BTreeMap<NaiveDate, Vec<DateTime<Utc>>> = BTreeMap::new();
            for at in &sim.dials {
                per_day
                    .entry(at.with_timezone(tz).date_naive())
                    .or_default()
                    .push(*at);
            }
            for (day, dials) in &per_day {
                assert!(
                    dials.len() <= 3,
                    "{}: {} dials on {day} in {tz}",
                    sim.name,
                    dials.len()
                );
                if sim.zones.len() == 1
                    && *day > start.date_naive() + Duration::days(1)
                    && *day < NaiveDate::from_ymd_opt(2026, 4, 5).expect("date")
                {
                    // The cap is spent by 08:20; the next day starts again at 08:00, 10 min apart.
                    let local: Vec<String> = dials
                        .iter()
                        .map(|t| t.with_timezone(tz).format("%H:%M").to_string())
                        .collect();
                    assert_eq!(local, ["08:00", "08:10", "08:20"], "{} on {day}", sim.name);
                }
            }
        }
    }
}

#[test]
fn per_day_cap_lifts_exactly_at_midnight_when_the_window_spans_it() {
    let all = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    let rules = DialRules {
        windows: vec![
            Window {
                days: all.to_vec(),
                start: hm(0, 0),
                end: hm(2, 0),
            },
            Window {
                days: all.to_vec(),
                start: hm(20, 0),
                end: NaiveTime::from_hms_opt(23, 59, 59).expect("time"),
            },
        ],
        max_attempts_per_day: 2,
        ..DialRules::default()
    };
    for (tz, evening) in [
        (chrono_tz::Asia::Shanghai, "2026-06-02T14:00:00Z"),
        (chrono_tz::Australia::Sydney, "2026-06-02T12:00:00Z"),
        (chrono_tz::Europe::London, "2026-06-02T21:00:00Z"),
    ] {
        let zones = [tz];
        let first = utc(evening);
        let attempts = vec![
            Attempt {
                at: first,
                disposition: "busy".into(),
            },
            Attempt {
                at: first + Duration::minutes(10),
                disposition: "busy".into(),
            },
        ];
        let lead = LeadState {
            timezones: &zones,
            attempts: &attempts,
            debt_attempts: &[],
            callback: None,
        };
        let v = decide(&rules, &lead, first + Duration::minutes(30));
        let midnight = tz
            .from_local_datetime(
                &(first.with_timezone(&tz).date_naive() + Duration::days(1))
                    .and_time(NaiveTime::MIN),
            )
            .single()
            .expect("midnight")
            .with_timezone(&Utc);
        match v {
            Verdict::Wait { until, reason } => {
                assert_eq!(
                    (until, reason.rule),
                    (midnight, Rule::MaxAttemptsPerDay),
                    "{tz}"
                );
            }
            other => panic!("{tz}: {other:?}"),
        }
        assert!(decide(&rules, &lead, midnight).is_dial(), "{tz}");
        assert_eq!(midnight.with_timezone(&tz).hour(), 0);
    }
}

#[test]
fn debt_cap_of_seven_in_seven_days_across_campaigns() {
    let rules = DialRules {
        max_attempts_per_day: 10,
        debt_cap: Some(FrequencyCap { max: 7, days: 7 }),
        ..DialRules::default()
    };
    let zones = [chrono_tz::Europe::London];
    // Two leads of the same debt (two numbers, two campaigns) called alternately, 14:00 daily.
    let mut debt: Vec<DateTime<Utc>> = Vec::new();
    let mut dialed_on = Vec::new();
    let mut now = utc("2026-06-01T13:00:00Z");
    while now < utc("2026-06-29T00:00:00Z") {
        let lead = LeadState {
            timezones: &zones,
            attempts: &[],
            debt_attempts: &debt,
            callback: None,
        };
        match decide(&rules, &lead, now) {
            Verdict::Dial(_) => {
                debt.push(now);
                dialed_on.push(now);
                now += Duration::hours(4);
            }
            Verdict::Wait { until, reason } => {
                if reason.rule == Rule::DebtCap {
                    assert_eq!(
                        debt.iter()
                            .filter(|&&at| at > now - Duration::days(7))
                            .count(),
                        7
                    );
                }
                now = until.max(now + Duration::minutes(1));
            }
            Verdict::Stop(r) => panic!("{r}"),
        }
    }
    for (i, at) in dialed_on.iter().enumerate() {
        let in_window = dialed_on[..=i]
            .iter()
            .filter(|&&b| b > *at - Duration::days(7))
            .count();
        assert!(in_window <= 7, "{in_window} calls in the 7 days up to {at}");
    }
    // Every 4 h inside 08:00–21:00 would be 3 a day; the cap holds it to 7 a week.
    let week = dialed_on
        .iter()
        .filter(|&&at| at >= utc("2026-06-15T00:00:00Z") && at < utc("2026-06-22T00:00:00Z"))
        .count();
    assert_eq!(week, 7);
}

#[test]
fn retries_callbacks_and_final_dispositions_in_a_campaign() {
    let rules = DialRules::default();
    let zones = [chrono_tz::America::Los_Angeles];
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut callback = None;
    // busy, no_answer, callback (customer: "tomorrow at 10"), then completed.
    let script = ["busy", "no_answer", "callback", "completed"];
    let mut now = utc("2026-06-01T15:00:00Z"); // 08:00 PDT
    let mut dials = Vec::new();
    let stop = loop {
        let lead = LeadState {
            timezones: &zones,
            attempts: &attempts,
            debt_attempts: &[],
            callback,
        };
        match decide(&rules, &lead, now) {
            Verdict::Dial(reason) => {
                let disposition = script[attempts.len()];
                if disposition == "callback" {
                    callback = Some(utc("2026-06-02T17:00:00Z")); // 10:00 PDT next day
                }
                dials.push((now, reason.rule));
                attempts.push(Attempt {
                    at: now,
                    disposition: disposition.into(),
                });
            }
            Verdict::Wait { until, .. } => now = until,
            Verdict::Stop(reason) => break reason,
        }
    };
    assert_eq!(
        dials,
        vec![
            (utc("2026-06-01T15:00:00Z"), Rule::Ok),
            (utc("2026-06-01T15:10:00Z"), Rule::Ok), // busy: 10 min
            (utc("2026-06-01T16:10:00Z"), Rule::Ok), // no answer: 1 h
            (utc("2026-06-02T17:00:00Z"), Rule::Callback), // the precise callback
        ]
    );
    assert_eq!(stop.rule, Rule::Final);
    assert_eq!(
        stop.to_string(),
        "final: last attempt ended 'completed', which is final"
    );
}
