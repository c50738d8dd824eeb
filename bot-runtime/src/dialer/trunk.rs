//! Trunk health: the dialer stops dialing a trunk that stops answering (sans-IO).
//!
//! A trunk that is down fails every call the same way — `503 Service Unavailable`, or no answer
//! at all until the INVITE times out (`408` before ringing) — which call progress reports as
//! `network_error`. Dialing on regardless would burn each lead's attempts (and the day's cap)
//! in seconds. So each trunk has a breaker: after `trip_after` calls in a row end in
//! `network_error` it is **down**; no lead is claimed for it except one **probe** call at a
//! time, every `probe_secs`; the first call that reaches the far end (any other disposition:
//! answered, busy, no answer after ringing, invalid number…) brings it back **up**, and the
//! campaign's leads are dialed again at the campaign's pace. The failed attempts stay as they
//! are, and their leads are retried by the campaign's rules (`retries.network_error`).
//!
//! Time is the caller's monotonic clock, as a [`Duration`] since any fixed instant.

use std::time::Duration;

/// How a trunk's calls ended, as far as the trunk's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// The far end answered the INVITE in a way that shows the trunk works.
    Reached,
    /// The trunk failed the call (`network_error`: 503, 408 before ringing, 5xx…).
    Failed,
}

impl CallResult {
    /// The result of an attempt that ended with `disposition`.
    pub fn of(disposition: &str) -> CallResult {
        if disposition == "network_error" {
            CallResult::Failed
        } else {
            CallResult::Reached
        }
    }
}

/// What the breaker allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Dial as many as the campaign's pace allows.
    Dial,
    /// Down: dial one probe call (the caller reports its result with [`TrunkHealth::on_result`]).
    Probe,
    /// Down: dial nothing for this long (a probe is in progress, or the next is not due).
    Wait(Duration),
}

/// A change worth an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The trunk went down after this many failures in a row.
    Down { failures: u32 },
    /// The trunk answers again after being down this long.
    Up { down_for: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Down {
        since: Duration,
        next_probe: Duration,
        probing: bool,
    },
}

/// One trunk's breaker. See the module docs.
#[derive(Debug, Clone)]
pub struct TrunkHealth {
    trip_after: u32,
    probe_every: Duration,
    failures: u32,
    state: State,
}

impl TrunkHealth {
    /// A healthy trunk that goes down after `trip_after` failures in a row (at least 1) and is
    /// probed every `probe_every` while down.
    pub fn new(trip_after: u32, probe_every: Duration) -> TrunkHealth {
        TrunkHealth {
            trip_after: trip_after.max(1),
            probe_every,
            failures: 0,
            state: State::Up,
        }
    }

    /// Whether the trunk is down.
    pub fn is_down(&self) -> bool {
        matches!(self.state, State::Down { .. })
    }

    /// What may be dialed at `now`. A [`Admit::Probe`] answer counts the probe as started.
    pub fn admit(&mut self, now: Duration) -> Admit {
        match &mut self.state {
            State::Up => Admit::Dial,
            State::Down { probing: true, .. } => Admit::Wait(self.probe_every),
            State::Down {
                next_probe,
                probing,
                ..
            } => {
                if now >= *next_probe {
                    *probing = true;
                    Admit::Probe
                } else {
                    Admit::Wait(*next_probe - now)
                }
            }
        }
    }

    /// A call on the trunk ended at `now` with `result`. Calls placed before the trunk went down
    /// may end after it did; only a call that reached the far end changes a down trunk.
    pub fn on_result(&mut self, now: Duration, result: CallResult) -> Option<Change> {
        match (result, self.state) {
            (CallResult::Reached, State::Up) => {
                self.failures = 0;
                None
            }
            (CallResult::Reached, State::Down { since, .. }) => {
                self.failures = 0;
                self.state = State::Up;
                Some(Change::Up {
                    down_for: now.saturating_sub(since),
                })
            }
            (CallResult::Failed, State::Up) => {
                self.failures += 1;
                if self.failures >= self.trip_after {
                    self.state = State::Down {
                        since: now,
                        next_probe: now + self.probe_every,
                        probing: false,
                    };
                    Some(Change::Down {
                        failures: self.failures,
                    })
                } else {
                    None
                }
            }
            (CallResult::Failed, State::Down { since, .. }) => {
                // A failed probe (or a straggler placed before the trip): wait a full interval.
                self.failures += 1;
                self.state = State::Down {
                    since,
                    next_probe: now + self.probe_every,
                    probing: false,
                };
                None
            }
        }
    }

    /// A probe admitted by [`TrunkHealth::admit`] that was not dialed after all (the lead was
    /// skipped by its rules or the DNC lists): the next call may probe at once.
    pub fn probe_not_dialed(&mut self) {
        if let State::Down { probing, .. } = &mut self.state {
            *probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn failures_in_a_row_take_the_trunk_down_and_a_success_resets_the_count() {
        let mut t = TrunkHealth::new(3, 30 * S);
        assert_eq!(t.on_result(S, CallResult::Failed), None);
        assert_eq!(t.on_result(2 * S, CallResult::Failed), None);
        // One call that reached the far end: the trunk works, the count starts over.
        assert_eq!(t.on_result(3 * S, CallResult::Reached), None);
        assert_eq!(t.on_result(4 * S, CallResult::Failed), None);
        assert_eq!(t.on_result(5 * S, CallResult::Failed), None);
        assert_eq!(t.admit(5 * S), Admit::Dial);
        assert_eq!(
            t.on_result(6 * S, CallResult::Failed),
            Some(Change::Down { failures: 3 })
        );
        assert!(t.is_down());
    }

    #[test]
    fn a_down_trunk_is_probed_one_call_at_a_time() {
        let mut t = TrunkHealth::new(2, 30 * S);
        t.on_result(S, CallResult::Failed);
        t.on_result(2 * S, CallResult::Failed);
        assert_eq!(t.admit(2 * S), Admit::Wait(30 * S));
        assert_eq!(t.admit(20 * S), Admit::Wait(12 * S));
        assert_eq!(t.admit(32 * S), Admit::Probe);
        // While the probe rings, nothing else.
        assert!(matches!(t.admit(33 * S), Admit::Wait(_)));
        assert!(matches!(t.admit(100 * S), Admit::Wait(_)));
        // The probe times out: the next one a full interval after its end.
        assert_eq!(t.on_result(64 * S, CallResult::Failed), None);
        assert_eq!(t.admit(64 * S), Admit::Wait(30 * S));
        assert_eq!(t.admit(94 * S), Admit::Probe);
        assert_eq!(
            t.on_result(95 * S, CallResult::Reached),
            Some(Change::Up { down_for: 93 * S })
        );
        assert_eq!(t.admit(95 * S), Admit::Dial);
        assert!(!t.is_down());
    }

    #[test]
    fn stragglers_of_a_down_trunk_do_not_probe_nor_trip_again() {
        let mut t = TrunkHealth::new(1, 10 * S);
        assert_eq!(
            t.on_result(S, CallResult::Failed),
            Some(Change::Down { failures: 1 })
        );
        // Calls placed before the trip keep failing: no second alert, the probe waits.
        assert_eq!(t.on_result(5 * S, CallResult::Failed), None);
        assert_eq!(t.admit(11 * S), Admit::Wait(4 * S));
        assert_eq!(t.admit(15 * S), Admit::Probe);
        // The probe's lead was skipped by its rules: another lead may probe at once.
        t.probe_not_dialed();
        assert_eq!(t.admit(15 * S), Admit::Probe);
    }

    #[test]
    fn only_network_errors_count_as_trunk_failures() {
        assert_eq!(CallResult::of("network_error"), CallResult::Failed);
        for d in [
            "answered",
            "completed",
            "busy",
            "no_answer",
            "invalid_number",
            "unreachable",
            "machine",
            "rejected",
        ] {
            assert_eq!(CallResult::of(d), CallResult::Reached, "{d}");
        }
    }
}
