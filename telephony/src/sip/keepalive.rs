//! Trunk health by OPTIONS keep-alives (sans-IO): when to ping, and whether the trunk is up.
//!
//! The monitor asks for a ping every `interval`; each ping's result (a final status, or `None`
//! for a timeout) is reported back. Any final response means the trunk is alive (a 404 or 405 to
//! OPTIONS still proves a SIP server answers); `down_after` consecutive timeouts or 5xx mark it
//! down, and one good answer marks it up again. The dialer stops placing calls on a trunk that is
//! down.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    Unknown,
    Up,
    Down,
}

#[derive(Debug, Clone)]
pub struct TrunkMonitor {
    interval: Duration,
    down_after: u32,
    state: TrunkState,
    failures: u32,
    next_ping: Instant,
    in_flight: bool,
}

impl TrunkMonitor {
    pub fn new(interval: Duration, down_after: u32, now: Instant) -> Self {
        Self {
            interval,
            down_after: down_after.max(1),
            state: TrunkState::Unknown,
            failures: 0,
            next_ping: now,
            in_flight: false,
        }
    }

    pub fn state(&self) -> TrunkState {
        self.state
    }

    /// Whether a ping should be sent now (at most one is in flight).
    pub fn poll(&mut self, now: Instant) -> bool {
        if self.in_flight || now < self.next_ping {
            return false;
        }
        self.in_flight = true;
        self.next_ping = now + self.interval;
        true
    }

    /// When [`TrunkMonitor::poll`] will next say yes.
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.in_flight).then_some(self.next_ping)
    }

    /// The result of the ping: a final status, or `None` for no answer. Returns the new state
    /// when it changed.
    pub fn on_result(&mut self, status: Option<u16>) -> Option<TrunkState> {
        self.in_flight = false;
        let before = self.state;
        match status {
            Some(s) if !(500..600).contains(&s) => {
                self.failures = 0;
                self.state = TrunkState::Up;
            }
            _ => {
                self.failures += 1;
                if self.failures >= self.down_after {
                    self.state = TrunkState::Down;
                }
            }
        }
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_on_schedule_and_tracks_health() {
        let t0 = Instant::now();
        let mut m = TrunkMonitor::new(Duration::from_secs(30), 3, t0);
        assert!(m.poll(t0));
        assert!(!m.poll(t0), "one ping in flight at a time");
        assert_eq!(m.on_result(Some(200)), Some(TrunkState::Up));
        assert!(!m.poll(t0 + Duration::from_secs(29)));
        assert!(m.poll(t0 + Duration::from_secs(30)));
        assert_eq!(m.on_result(None), None, "one timeout is not enough");
        assert!(m.poll(t0 + Duration::from_secs(60)));
        assert_eq!(m.on_result(Some(503)), None);
        assert!(m.poll(t0 + Duration::from_secs(90)));
        assert_eq!(m.on_result(None), Some(TrunkState::Down));
        assert!(m.poll(t0 + Duration::from_secs(120)));
        assert_eq!(
            m.on_result(Some(405)),
            Some(TrunkState::Up),
            "any SIP answer proves it is alive"
        );
        assert_eq!(m.next_deadline(), Some(t0 + Duration::from_secs(150)));
    }
}
