//! The report's arithmetic, sans-IO: one [`CallFacts`] per attempt in, a [`Report`] out.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;

use crate::dialer::human::ABANDONED_OUTCOME;

use super::{AgentRow, FlowFunnel, FunnelStep, GroupBy, GroupRow, Report, ReportOptions, Side};

/// What a report needs to know of one dial attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    /// When the attempt started (time buckets and the report's range use it).
    pub attempt_started_at: DateTime<Utc>,
    pub campaign: String,
    /// The call's flow, else the campaign's.
    pub flow: String,
    /// The attempt's disposition (`None` while in progress).
    pub disposition: Option<String>,
    /// The answered call, if it was answered.
    pub connect: Option<ConnectFacts>,
}

/// What a report needs to know of an answered call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectFacts {
    /// Answered → ended.
    pub handle_ms: u64,
    /// The AMD verdict (`human`, `machine`, `unknown`), if AMD ran.
    pub amd: Option<String>,
    /// The flow's outcome.
    pub outcome: Option<String>,
    /// The flow steps visited, in order.
    pub path: Vec<String>,
    /// The robot's legs' time (`None`: the record has no legs).
    pub robot_ms: Option<u64>,
    /// The agent leg, if the call reached an agent.
    pub agent: Option<AgentFacts>,
    /// The latest disposition an agent saved for the call.
    pub agent_disposition: Option<String>,
    /// The mean sentiment of the customer's scored turns, if any were scored.
    pub sentiment: Option<f64>,
}

/// The agent side of a call.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFacts {
    pub agent: String,
    /// The agent legs' time.
    pub talk_ms: u64,
    /// Time in the queue before the agent took the call.
    pub wait_ms: u64,
}

/// What one connect counts as.
struct Class {
    machine: bool,
    right_party: bool,
    converted: bool,
    abandoned: bool,
    outcome: String,
}

impl ConnectFacts {
    /// The final outcome: the agent's disposition, else the flow's outcome (a cold transfer's
    /// target dropped), else `(none)`.
    pub fn final_outcome(&self) -> String {
        if let Some(d) = &self.agent_disposition {
            return d.clone();
        }
        match self.outcome.as_deref() {
            Some(o) => match o.split_once(':') {
                Some((kind, _)) => kind.to_string(),
                None => o.to_string(),
            },
            None => "(none)".to_string(),
        }
    }

    fn classify(&self, options: &ReportOptions, attempt_disposition: Option<&str>) -> Class {
        let machine = self.amd.as_deref() == Some("machine");
        let outcome = self.final_outcome();
        let right_party = !machine
            && (self.agent.is_some()
                || self.path.iter().any(|s| options.identity_steps.contains(s))
                || !options.not_right_party.contains(&outcome));
        let queued_in_vain = self.agent.is_none()
            && !machine
            && matches!(
                self.outcome.as_deref(),
                None | Some("no_agent") | Some(ABANDONED_OUTCOME)
            );
        Class {
            machine,
            right_party,
            converted: options.success_outcomes.contains(&outcome),
            abandoned: queued_in_vain || attempt_disposition == Some("abandoned"),
            outcome,
        }
    }
}

#[derive(Default)]
struct StepAcc {
    reached: u64,
    ended: u64,
    /// The earliest position at which a call first reached the step.
    first: usize,
}

#[derive(Default)]
struct FunnelAcc {
    calls: u64,
    steps: HashMap<String, StepAcc>,
}

/// Folds attempts into a report.
pub struct Aggregator {
    group_by: GroupBy,
    tz: Tz,
    options: ReportOptions,
    /// (sort key, label) → row.
    groups: BTreeMap<(i64, String), GroupRow>,
    total: GroupRow,
    funnels: BTreeMap<String, FunnelAcc>,
    robot: AgentRow,
    agents: BTreeMap<String, AgentRow>,
}

const NOT_CONNECTED: &str = "(not connected)";

impl Aggregator {
    pub fn new(group_by: GroupBy, tz: Tz, options: ReportOptions) -> Self {
        Aggregator {
            group_by,
            tz,
            options,
            groups: BTreeMap::new(),
            total: GroupRow {
                group: "total".into(),
                ..Default::default()
            },
            funnels: BTreeMap::new(),
            robot: AgentRow {
                side: Side::Robot,
                agent: "robot".into(),
                calls: 0,
                handle_ms: 0,
                wait_ms: 0,
                conversions: 0,
                transfers: 0,
                dispositions: BTreeMap::new(),
            },
            agents: BTreeMap::new(),
        }
    }

    /// The group an attempt falls in: (sort key, label).
    fn key(&self, f: &CallFacts) -> (i64, String) {
        let t = f.attempt_started_at;
        match self.group_by {
            GroupBy::Hour => {
                let local = t.with_timezone(&self.tz);
                // The local hour's first instant: minutes and seconds are local ones, so this
                // holds for half- and quarter-hour offsets, and the two 01:00 hours of a
                // fall-back night stay apart (their offsets differ).
                let into = i64::from(local.minute()) * 60 + i64::from(local.second());
                let start = t.timestamp() - into;
                let label = DateTime::from_timestamp(start, 0)
                    .map(|s| {
                        s.with_timezone(&self.tz)
                            .format("%Y-%m-%d %H:00 %:z")
                            .to_string()
                    })
                    .unwrap_or_default();
                (start, label)
            }
            GroupBy::Day => {
                let day = t.with_timezone(&self.tz).date_naive();
                (
                    i64::from(day.num_days_from_ce()),
                    day.format("%Y-%m-%d").to_string(),
                )
            }
            GroupBy::Campaign => (0, f.campaign.clone()),
            GroupBy::Flow => (0, f.flow.clone()),
            GroupBy::Agent => (
                0,
                match &f.connect {
                    None => NOT_CONNECTED.into(),
                    Some(c) => match &c.agent {
                        Some(a) => a.agent.clone(),
                        None => "(robot only)".into(),
                    },
                },
            ),
            GroupBy::Side => (
                0,
                match &f.connect {
                    None => NOT_CONNECTED.into(),
                    Some(c) if c.agent.is_some() => Side::Human.as_str().into(),
                    Some(_) => Side::Robot.as_str().into(),
                },
            ),
        }
    }

    /// Counts one attempt.
    pub fn add(&mut self, f: &CallFacts) {
        let key = self.key(f);
        let class = f
            .connect
            .as_ref()
            .map(|c| c.classify(&self.options, f.disposition.as_deref()));
        let label = key.1.clone();
        let row = self.groups.entry(key).or_insert_with(|| GroupRow {
            group: label,
            ..Default::default()
        });
        count(row, f, class.as_ref());
        count(&mut self.total, f, class.as_ref());

        let (Some(c), Some(class)) = (&f.connect, class) else {
            return;
        };
        // The robot talks to every connect; agents to the calls transferred to them.
        let robot_ms = c.robot_ms.unwrap_or(c.handle_ms);
        self.robot.calls += 1;
        self.robot.handle_ms += robot_ms;
        match &c.agent {
            None => self.robot.conversions += u64::from(class.converted),
            Some(a) => {
                self.robot.transfers += 1;
                let row = self
                    .agents
                    .entry(a.agent.clone())
                    .or_insert_with(|| AgentRow {
                        side: Side::Human,
                        agent: a.agent.clone(),
                        calls: 0,
                        handle_ms: 0,
                        wait_ms: 0,
                        conversions: 0,
                        transfers: 0,
                        dispositions: BTreeMap::new(),
                    });
                row.calls += 1;
                row.handle_ms += a.talk_ms;
                row.wait_ms += a.wait_ms;
                row.conversions += u64::from(class.converted);
                if let Some(d) = &c.agent_disposition {
                    *row.dispositions.entry(d.clone()).or_default() += 1;
                }
            }
        }

        if !c.path.is_empty() {
            let funnel = self.funnels.entry(f.flow.clone()).or_default();
            funnel.calls += 1;
            let mut seen = std::collections::HashSet::new();
            for (i, step) in c.path.iter().enumerate() {
                if !seen.insert(step.as_str()) {
                    continue;
                }
                match funnel.steps.get_mut(step) {
                    Some(acc) => {
                        acc.reached += 1;
                        acc.first = acc.first.min(i);
                    }
                    None => {
                        funnel.steps.insert(
                            step.clone(),
                            StepAcc {
                                reached: 1,
                                ended: 0,
                                first: i,
                            },
                        );
                    }
                }
            }
            if let Some(last) = c.path.last()
                && let Some(acc) = funnel.steps.get_mut(last)
            {
                acc.ended += 1;
            }
        }
    }

    /// The report.
    pub fn finish(self) -> Report {
        let funnels = self
            .funnels
            .into_iter()
            .map(|(flow, acc)| {
                let mut steps: Vec<(String, StepAcc)> = acc.steps.into_iter().collect();
                steps.sort_by(|(an, a), (bn, b)| {
                    a.first
                        .cmp(&b.first)
                        .then(b.reached.cmp(&a.reached))
                        .then(an.cmp(bn))
                });
                FlowFunnel {
                    flow,
                    calls: acc.calls,
                    steps: steps
                        .into_iter()
                        .map(|(step, a)| FunnelStep {
                            step,
                            reached: a.reached,
                            ended_here: a.ended,
                        })
                        .collect(),
                }
            })
            .collect();
        let mut agents = vec![self.robot];
        agents.extend(self.agents.into_values());
        Report {
            group_by: self.group_by,
            timezone: self.tz.name().to_string(),
            rows: self.groups.into_values().collect(),
            total: self.total,
            funnels,
            agents,
        }
    }
}

fn count(row: &mut GroupRow, f: &CallFacts, class: Option<&Class>) {
    row.attempts += 1;
    let disposition = f.disposition.as_deref().unwrap_or("in_progress");
    *row.dispositions.entry(disposition.to_string()).or_default() += 1;
    let (Some(c), Some(class)) = (&f.connect, class) else {
        return;
    };
    row.connects += 1;
    row.machines += u64::from(class.machine);
    row.right_party += u64::from(class.right_party);
    row.conversions += u64::from(class.converted);
    row.abandons += u64::from(class.abandoned);
    row.handle_ms += c.handle_ms;
    row.robot_ms += c.robot_ms.unwrap_or(c.handle_ms);
    if let Some(a) = &c.agent {
        row.transfers += 1;
        row.agent_ms += a.talk_ms;
    }
    if let Some(s) = c.sentiment.filter(|s| s.is_finite()) {
        row.sentiment_sum += s;
        row.sentiment_calls += 1;
    }
    *row.outcomes.entry(class.outcome.clone()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("a valid time")
    }

    fn attempt(t: DateTime<Utc>, disposition: &str, connect: Option<ConnectFacts>) -> CallFacts {
        CallFacts {
            attempt_started_at: t,
            campaign: "c1".into(),
            flow: "collections".into(),
            disposition: Some(disposition.into()),
            connect,
        }
    }

    fn human(outcome: Option<&str>, path: &[&str], handle_ms: u64) -> ConnectFacts {
        ConnectFacts {
            handle_ms,
            amd: Some("human".into()),
            outcome: outcome.map(str::to_string),
            path: path.iter().map(|s| s.to_string()).collect(),
            robot_ms: Some(handle_ms),
            ..Default::default()
        }
    }

    #[test]
    fn counts_rates_and_outcomes() {
        let t = at(2026, 3, 9, 12, 0);
        let mut agg = Aggregator::new(GroupBy::Campaign, Tz::UTC, ReportOptions::default());
        agg.add(&attempt(t, "busy", None));
        agg.add(&attempt(
            t,
            "completed",
            Some(ConnectFacts {
                sentiment: Some(0.5),
                ..human(Some("promise_to_pay"), &["greet", "verify", "pay"], 60_000)
            }),
        ));
        agg.add(&attempt(
            t,
            "wrong_party",
            Some(ConnectFacts {
                sentiment: Some(-0.25),
                ..human(Some("wrong_party"), &["greet", "verify", "wrong"], 20_000)
            }),
        ));
        agg.add(&attempt(
            t,
            "machine",
            Some(ConnectFacts {
                amd: Some("machine".into()),
                ..human(Some("voicemail_left"), &["greet", "voicemail"], 10_000)
            }),
        ));
        // Queued for an agent, hung up before one came: no outcome, no agent leg.
        agg.add(&attempt(
            t,
            "answered",
            Some(human(None, &["greet", "verify", "agent"], 30_000)),
        ));
        let r = agg.finish();
        assert_eq!(r.rows.len(), 1);
        let row = &r.rows[0];
        assert_eq!(row.group, "c1");
        assert_eq!(
            row,
            &GroupRow {
                group: "c1".into(),
                ..r.total.clone()
            }
        );
        assert_eq!((row.attempts, row.connects), (5, 4));
        assert_eq!(row.connect_rate(), Some(0.8));
        assert_eq!(row.machines, 1);
        assert_eq!(row.amd_rate(), Some(0.25));
        // promise_to_pay only: wrong party, the machine and the abandon's `(none)` are not.
        assert_eq!(row.right_party, 1);
        assert_eq!(row.conversions, 1);
        assert_eq!(row.abandons, 1);
        assert_eq!(row.transfers, 0);
        assert_eq!(row.mean_handle_ms(), Some(30_000.0));
        assert_eq!(row.mean_sentiment(), Some(0.125));
        assert_eq!(row.outcomes.get("(none)"), Some(&1));
        assert_eq!(row.dispositions.get("busy"), Some(&1));
        let f = &r.funnels[0];
        assert_eq!(f.calls, 4);
        let names: Vec<&str> = f.steps.iter().map(|s| s.step.as_str()).collect();
        assert_eq!(
            names,
            ["greet", "verify", "voicemail", "agent", "pay", "wrong"]
        );
        assert_eq!((f.steps[0].reached, f.steps[0].ended_here), (4, 0));
        assert_eq!((f.steps[1].reached, f.steps[1].ended_here), (3, 0));
        assert_eq!(f.steps[2].drop_off_rate(), Some(1.0));
    }

    #[test]
    fn agents_identity_steps_and_cold_transfers() {
        let t = at(2026, 3, 9, 12, 0);
        let mut options = ReportOptions::default();
        options.identity_steps.insert("stage".into());
        let mut agg = Aggregator::new(GroupBy::Side, Tz::UTC, options);
        // Confirmed identity, then hung up: a right-party contact through `stage`.
        agg.add(&attempt(
            t,
            "answered",
            Some(human(Some("hung_up"), &["greet", "stage"], 5_000)),
        ));
        // Reached an agent, who saved a promise to pay.
        agg.add(&attempt(
            t,
            "transferred",
            Some(ConnectFacts {
                robot_ms: Some(20_000),
                agent: Some(AgentFacts {
                    agent: "alice".into(),
                    talk_ms: 100_000,
                    wait_ms: 4_000,
                }),
                agent_disposition: Some("promise_to_pay".into()),
                ..human(None, &["greet", "agent"], 124_000)
            }),
        ));
        agg.add(&attempt(
            t,
            "transferred",
            Some(human(
                Some("cold_transferred:+15550001111"),
                &["greet", "out"],
                9_000,
            )),
        ));
        // A human campaign's call that no agent took within the safe harbour: the built-in
        // flow's `abandoned` outcome.
        agg.add(&attempt(
            t,
            "abandoned",
            Some(human(Some("abandoned"), &["to_agent"], 3_000)),
        ));
        let r = agg.finish();
        let names: Vec<&str> = r.rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(names, ["human", "robot"]);
        assert_eq!(r.rows[1].abandons, 1);
        assert_eq!(r.total.right_party, 3);
        assert_eq!(r.total.outcomes.get("cold_transferred"), Some(&1));
        assert!(r.total.outcomes.keys().all(|k| !k.contains("+1555")));
        assert_eq!(r.total.transfers, 1);
        assert_eq!(r.total.abandons, 1);
        assert_eq!(r.rows[0].conversions, 1);
        assert_eq!(r.rows[0].mean_agent_ms(), Some(100_000.0));
        assert_eq!(r.agents.len(), 2);
        let robot = &r.agents[0];
        assert_eq!((robot.calls, robot.handle_ms), (4, 37_000));
        assert_eq!((robot.transfers, robot.conversions), (1, 0));
        let alice = &r.agents[1];
        assert_eq!(alice.agent, "alice");
        assert_eq!(
            (alice.calls, alice.handle_ms, alice.wait_ms),
            (1, 100_000, 4_000)
        );
        assert_eq!(alice.conversion_rate(), Some(1.0));
        assert_eq!(alice.dispositions.get("promise_to_pay"), Some(&1));
    }

    #[test]
    fn hours_and_days_in_a_zone() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        // 2026-11-01: New York falls back at 06:00 UTC (02:00 EDT → 01:00 EST).
        let times = [
            at(2026, 11, 1, 3, 30), // Oct 31 23:30 EDT
            at(2026, 11, 1, 4, 10), // Nov 1 00:10 EDT
            at(2026, 11, 1, 5, 20), // 01:20 EDT
            at(2026, 11, 1, 6, 20), // 01:20 EST, the second 01:00 hour
            at(2026, 11, 1, 6, 50), // 01:50 EST
        ];
        let mut hours = Aggregator::new(GroupBy::Hour, ny, ReportOptions::default());
        let mut days = Aggregator::new(GroupBy::Day, ny, ReportOptions::default());
        for t in times {
            hours.add(&attempt(t, "busy", None));
            days.add(&attempt(t, "busy", None));
        }
        let hours: Vec<(String, u64)> = hours
            .finish()
            .rows
            .into_iter()
            .map(|r| (r.group, r.attempts))
            .collect();
        assert_eq!(
            hours,
            [
                ("2026-10-31 23:00 -04:00".to_string(), 1),
                ("2026-11-01 00:00 -04:00".to_string(), 1),
                ("2026-11-01 01:00 -04:00".to_string(), 1),
                ("2026-11-01 01:00 -05:00".to_string(), 2),
            ]
        );
        let days: Vec<(String, u64)> = days
            .finish()
            .rows
            .into_iter()
            .map(|r| (r.group, r.attempts))
            .collect();
        assert_eq!(
            days,
            [("2026-10-31".to_string(), 1), ("2026-11-01".to_string(), 4)]
        );
        // A half-hour zone: 12:40 UTC is 18:10 in Kolkata, in the 18:00 hour.
        let kolkata: Tz = "Asia/Kolkata".parse().expect("zone");
        let mut agg = Aggregator::new(GroupBy::Hour, kolkata, ReportOptions::default());
        agg.add(&attempt(at(2026, 3, 9, 12, 40), "busy", None));
        assert_eq!(agg.finish().rows[0].group, "2026-03-09 18:00 +05:30");
    }

    #[test]
    fn empty_report_has_no_rates() {
        let r = Aggregator::new(GroupBy::Day, Tz::UTC, ReportOptions::default()).finish();
        assert!(r.rows.is_empty());
        assert_eq!(r.total.attempts, 0);
        assert_eq!(r.total.connect_rate(), None);
        assert_eq!(r.total.mean_sentiment(), None);
        assert_eq!(r.agents.len(), 1);
        assert_eq!(r.agents[0].mean_handle_ms(), None);
    }
}
