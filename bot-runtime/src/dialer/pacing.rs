//! The pacer: how many calls to place now, and the per-trunk calls-per-second cap.
//!
//! [`Pacer`] is sans-IO: the dialer feeds it what happened ([`PacingEvent`]) and asks it, with
//! a snapshot of the agents and lines ([`PacingState`]), how many calls to place now
//! ([`Pacer::calls_to_place`]). Time is a monotonic [`Duration`] given by the caller; the pacer
//! never reads a clock, so a whole working day is simulated in milliseconds ([`sim`]).
//!
//! # Modes
//! - **Preview**: never dials by itself; an agent asks for the next lead.
//! - **Progressive** `{ ratio }`: keeps `ratio` lines ringing or waiting per ready agent
//!   (1.0 = one call per free agent: no call is ever answered without an agent for it).
//! - **Predictive** `{ max_ratio, target_abandon }`: dials ahead of agents who are about to be
//!   free, so that they find a customer on the line instead of waiting through unanswered rings.
//! - **Robot** `{ max_concurrent }`: capacity-paced; keeps `max_concurrent` robot calls up.
//!
//! # The predictive algorithm
//! In the spirit of the adaptive "dial level" of VICIdial and of Erlang-style staffing models,
//! but computed per decision rather than tuned by hand:
//! 1. From recent history, with estimates that decay with a half-life of 30 minutes of campaign
//!    time (answer rates change through the day) and start from cautious priors, it estimates
//!    the probability `p` that a dial is answered by a person, the ring time of such answers, and
//!    the distribution of an agent's handle time (talk and wrap-up, fitted as a lognormal).
//! 2. The horizon is the expected ring time of an answered call plus the 2 s safe harbour. Each
//!    busy agent is free within the horizon with the probability that a call already lasting
//!    that long ends within it (the lognormal's conditional probability; an agent whose
//!    remaining time is known counts 0 or 1). Ready agents count 1; calls already waiting for an
//!    agent take agents first. That gives the distribution of agents free for new connects.
//! 3. With `r` calls ringing, placing `n` more gives `Binomial(r + n, p)` live answers. The
//!    pacer takes the largest `n` for which the expected share of those answers that find no
//!    agent (that is, would be abandoned) stays under an **effective target**.
//! 4. The effective target is `target_abandon` scaled down by the headroom left in the
//!    campaign's measured abandon rate over its 30-day window: at a measured rate of zero it is
//!    the target, at the target it is zero. While fewer than 100 live answers are on the ledger
//!    it is at most half the target. The feedback settles the measured rate below the target
//!    even when the model's estimate is off by a factor of two.
//! 5. It never places fewer calls than progressive 1:1 would, and never keeps more than
//!    `max_ratio` lines per agent expected free.
//!
//! # Abandon accounting
//! The abandon rate is abandoned calls over calls answered by a person (the FCC/Ofcom
//! definition; answering machines are excluded). A live answer that finds no agent within 2 s
//! gets the safe-harbour message from the agent queue and counts as abandoned. The 30-day window
//! is kept by the caller: [`Pacer::new`] takes the counts of the window's earlier days from
//! storage, [`Pacer::session`] gives the counts since then to persist.
//!
//! # Invariants
//! - Preview never returns a call to place; progressive 1:1 never places a call beyond the
//!   ready agents; robot never exceeds `max_concurrent` lines.
//! - A campaign at or above its abandon target paces exactly as progressive 1:1.
//! - [`CpsLimiter`] never lets more than `burst + cps × t` calls through in any span `t`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a live answer may wait for an agent before it is abandoned (the safe harbour).
pub const SAFE_HARBOUR: Duration = Duration::from_secs(2);

/// Live answers needed on the ledger before the measured abandon rate is trusted fully.
const WARM_UP_ANSWERS: u64 = 100;

/// Half-life of the estimates, in campaign time.
const HALF_LIFE: Duration = Duration::from_secs(30 * 60);

/// The pacing mode of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum PacingMode {
    Preview,
    Progressive { ratio: f64 },
    Predictive { max_ratio: f64, target_abandon: f64 },
    Robot { max_concurrent: u32 },
}

impl PacingMode {
    /// Progressive 1:1.
    pub fn progressive() -> Self {
        PacingMode::Progressive { ratio: 1.0 }
    }

    /// Predictive with at most 3 lines per agent and a 3 % abandon target.
    pub fn predictive() -> Self {
        PacingMode::Predictive {
            max_ratio: 3.0,
            target_abandon: 0.03,
        }
    }
}

/// What happened on the lines and in the agent queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PacingEvent {
    /// A call was placed.
    Dialed,
    /// A placed call was answered after ringing `ring`, by a person or by a machine (AMD).
    Answered { machine: bool, ring: Duration },
    /// A placed call ended without an answer (busy, no answer, failed, invalid) after `ring`.
    NotAnswered { ring: Duration },
    /// A live answer was connected to an agent after waiting `waited`.
    Connected { waited: Duration },
    /// A live answer found no agent within the safe harbour and got the safe-harbour message.
    /// Always follows `Answered { machine: false, .. }` for the same call.
    Abandoned,
    /// An agent finished a call: `handle` is talk plus wrap-up.
    Handled { handle: Duration },
}

/// A busy agent, as the agent queue sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BusyAgent {
    /// How long the agent has been on the current call (talk and wrap-up so far).
    pub busy_for: Duration,
    /// The remaining time, when the agent or the flow has said it.
    pub expected_remaining: Option<Duration>,
}

/// The lines and agents now.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacingState<'a> {
    pub agents_ready: u32,
    pub agents_busy: &'a [BusyAgent],
    /// Calls placed and not yet answered or failed.
    pub calls_ringing: u32,
    /// Live answers waiting for an agent (inside the safe harbour).
    pub calls_waiting: u32,
    /// Answered calls up (robot mode: calls the robots are holding).
    pub calls_in_progress: u32,
}

/// Live answers and abandons, for the abandon rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbandonLedger {
    pub live_answered: u64,
    pub abandoned: u64,
}

impl AbandonLedger {
    /// Abandoned over live answered; 0 with no answers.
    pub fn rate(&self) -> f64 {
        if self.live_answered == 0 {
            0.0
        } else {
            self.abandoned as f64 / self.live_answered as f64
        }
    }

    fn plus(self, other: AbandonLedger) -> AbandonLedger {
        AbandonLedger {
            live_answered: self.live_answered + other.live_answered,
            abandoned: self.abandoned + other.abandoned,
        }
    }
}

/// A mean (and second moment) whose weight halves every [`HALF_LIFE`], blended with a prior.
#[derive(Debug, Clone, Copy)]
struct Estimate {
    weight: f64,
    sum: f64,
    sum_sq: f64,
    last: Duration,
    prior_mean: f64,
    prior_var: f64,
    prior_weight: f64,
}

impl Estimate {
    fn new(prior_mean: f64, prior_var: f64, prior_weight: f64) -> Self {
        Estimate {
            weight: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            last: Duration::ZERO,
            prior_mean,
            prior_var,
            prior_weight,
        }
    }

    fn decay(&self, now: Duration) -> f64 {
        let age = now.saturating_sub(self.last).as_secs_f64();
        0.5f64.powf(age / HALF_LIFE.as_secs_f64())
    }

    fn add(&mut self, now: Duration, x: f64) {
        let d = self.decay(now);
        self.weight = self.weight * d + 1.0;
        self.sum = self.sum * d + x;
        self.sum_sq = self.sum_sq * d + x * x;
        self.last = self.last.max(now);
    }

    fn mean(&self, now: Duration) -> f64 {
        let d = self.decay(now);
        (self.sum * d + self.prior_mean * self.prior_weight) / (self.weight * d + self.prior_weight)
    }

    fn variance(&self, now: Duration) -> f64 {
        let d = self.decay(now);
        let prior_sq = self.prior_var + self.prior_mean * self.prior_mean;
        let second = (self.sum_sq * d + prior_sq * self.prior_weight)
            / (self.weight * d + self.prior_weight);
        let mean = self.mean(now);
        (second - mean * mean).max(0.0)
    }
}

/// The pacer of one campaign.
///
/// ```
/// use bot_runtime::dialer::pacing::{AbandonLedger, PacingEvent, PacingMode, PacingState, Pacer};
/// use std::time::Duration;
///
/// // Counts of the campaign's 30-day window before today, from storage.
/// let earlier = AbandonLedger { live_answered: 2_000, abandoned: 20 };
/// let mut pacer = Pacer::new(PacingMode::predictive(), earlier);
/// let now = Duration::from_secs(60);
/// pacer.on_event(now, PacingEvent::NotAnswered { ring: Duration::from_secs(30) });
/// let state = PacingState { agents_ready: 4, ..PacingState::default() };
/// // Never fewer than progressive 1:1 would place.
/// assert!(pacer.calls_to_place(now, &state) >= 4);
/// ```
#[derive(Debug, Clone)]
pub struct Pacer {
    mode: PacingMode,
    earlier: AbandonLedger,
    session: AbandonLedger,
    /// 1 for a live answer, 0 for anything else: the live answer probability.
    answer: Estimate,
    /// Ring time of live answers, seconds.
    ring: Estimate,
    /// Agent handle time (talk + wrap-up), seconds.
    handle: Estimate,
}

impl Pacer {
    /// A pacer for `mode`; `earlier` holds the live answers and abandons of the campaign's
    /// 30-day window before this session, from storage.
    ///
    /// The priors are cautious: a 50 % answer rate (fewer calls than the usual 20–40 %), 5 s to
    /// answer (a short horizon) and 5 minutes of handle time (agents free later).
    pub fn new(mode: PacingMode, earlier: AbandonLedger) -> Self {
        Pacer {
            mode,
            earlier,
            session: AbandonLedger::default(),
            answer: Estimate::new(0.5, 0.0, 20.0),
            ring: Estimate::new(5.0, 4.0, 5.0),
            handle: Estimate::new(300.0, 180.0 * 180.0, 5.0),
        }
    }

    pub fn mode(&self) -> PacingMode {
        self.mode
    }

    pub fn set_mode(&mut self, mode: PacingMode) {
        self.mode = mode;
    }

    /// Learns from what happened at `now`.
    pub fn on_event(&mut self, now: Duration, event: PacingEvent) {
        match event {
            PacingEvent::Dialed | PacingEvent::Connected { .. } => {}
            PacingEvent::Answered { machine, ring } => {
                self.answer.add(now, if machine { 0.0 } else { 1.0 });
                if !machine {
                    self.session.live_answered += 1;
                    self.ring.add(now, ring.as_secs_f64());
                }
            }
            PacingEvent::NotAnswered { .. } => self.answer.add(now, 0.0),
            PacingEvent::Abandoned => self.session.abandoned += 1,
            PacingEvent::Handled { handle } => self.handle.add(now, handle.as_secs_f64()),
        }
    }

    /// The abandon rate over the 30-day window (earlier days and this session).
    pub fn abandon_rate(&self) -> f64 {
        self.window().rate()
    }

    /// The counts of this session, to persist.
    pub fn session(&self) -> AbandonLedger {
        self.session
    }

    /// Starts a new session on a new `earlier` window (the persisted counts, re-read): the
    /// session's counts are zeroed, the learnt estimates kept. A caller that persists every
    /// live answer and abandon as it happens re-reads the window now and then with this, so
    /// that days leave the window and other nodes' counts come in.
    pub fn rebase(&mut self, earlier: AbandonLedger) {
        self.earlier = earlier;
        self.session = AbandonLedger::default();
    }

    /// The counts of the whole 30-day window.
    pub fn window(&self) -> AbandonLedger {
        self.earlier.plus(self.session)
    }

    /// The estimated probability that a dial is answered by a person.
    pub fn answer_rate(&self, now: Duration) -> f64 {
        self.answer.mean(now)
    }

    /// The estimated mean handle time (talk + wrap-up).
    pub fn mean_handle(&self, now: Duration) -> Duration {
        Duration::from_secs_f64(self.handle.mean(now).max(0.0))
    }

    /// How many calls to place now.
    pub fn calls_to_place(&self, now: Duration, state: &PacingState) -> u32 {
        match self.mode {
            PacingMode::Preview => 0,
            PacingMode::Progressive { ratio } => progressive(ratio, state),
            PacingMode::Robot { max_concurrent } => {
                max_concurrent.saturating_sub(state.calls_ringing + state.calls_in_progress)
            }
            PacingMode::Predictive {
                max_ratio,
                target_abandon,
            } => self.predictive(now, state, max_ratio, target_abandon),
        }
    }

    /// The share of live answers the pacer may risk abandoning on this decision.
    fn effective_target(&self, target: f64) -> f64 {
        let window = self.window();
        let headroom = ((target - window.rate()) / target).clamp(0.0, 1.0);
        let warm_up = if window.live_answered < WARM_UP_ANSWERS {
            0.5
        } else {
            1.0
        };
        target * headroom.min(warm_up)
    }

    fn predictive(&self, now: Duration, state: &PacingState, max_ratio: f64, target: f64) -> u32 {
        let floor = progressive(1.0, state);
        if target.is_nan() || target <= 0.0 {
            return floor;
        }
        let target = self.effective_target(target.min(1.0));
        if target <= 0.0 {
            return floor;
        }
        let p = self.answer.mean(now).clamp(0.01, 0.99);
        let horizon = self.ring.mean(now).max(0.0) + SAFE_HARBOUR.as_secs_f64();
        let (mean, var) = (
            self.handle.mean(now).max(1.0),
            self.handle.variance(now).max(1.0),
        );
        let sigma2 = (1.0 + var / (mean * mean)).ln();
        let mu = mean.ln() - sigma2 / 2.0;
        let sigma = sigma2.sqrt();
        let cdf = |t: f64| {
            if t <= 0.0 {
                0.0
            } else {
                normal_cdf((t.ln() - mu) / sigma)
            }
        };
        let free_soon: Vec<f64> = state
            .agents_busy
            .iter()
            .map(|a| match a.expected_remaining {
                Some(r) => f64::from(u8::from(r.as_secs_f64() <= horizon)),
                None => {
                    let e = a.busy_for.as_secs_f64();
                    let survive = 1.0 - cdf(e);
                    if survive < 1e-6 {
                        horizon / (horizon + mean)
                    } else {
                        ((cdf(e + horizon) - cdf(e)) / survive).clamp(0.0, 1.0)
                    }
                }
            })
            .collect();
        // Agents free for new connects: ready ones, busy ones freeing within the horizon, less
        // the calls already waiting.
        let busy_free = poisson_binomial(&free_soon);
        let offset = i64::from(state.agents_ready) - i64::from(state.calls_waiting);
        let expected_free = (offset as f64 + free_soon.iter().sum::<f64>()).max(0.0);
        let ringing = state.calls_ringing;
        let max_lines = (max_ratio.max(1.0) * expected_free).floor() as u32;
        let ceiling = max_lines.saturating_sub(ringing);
        if ceiling <= floor {
            return floor;
        }
        let risk = |n: u32| expected_abandon_share(ringing + n, p, &busy_free, offset);
        // The share grows with n: the largest n within the target, by bisection.
        let (mut lo, mut hi) = (floor, ceiling);
        if risk(hi) <= target {
            return hi;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if risk(mid) <= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

fn progressive(ratio: f64, state: &PacingState) -> u32 {
    let lines = (ratio.max(0.0) * f64::from(state.agents_ready)).floor() as u32;
    lines.saturating_sub(state.calls_ringing + state.calls_waiting)
}

/// The distribution of the number of successes of independent trials with probabilities `qs`.
fn poisson_binomial(qs: &[f64]) -> Vec<f64> {
    let mut dist = vec![1.0];
    for &q in qs {
        let mut next = vec![0.0; dist.len() + 1];
        for (k, &pk) in dist.iter().enumerate() {
            next[k] += pk * (1.0 - q);
            next[k + 1] += pk * q;
        }
        dist = next;
    }
    dist
}

/// With `lines` calls each answered live with probability `p`, and `offset + B` agents free
/// (`B` distributed as `busy_free`), the expected share of live answers that find no agent.
fn expected_abandon_share(lines: u32, p: f64, busy_free: &[f64], offset: i64) -> f64 {
    if lines == 0 {
        return 0.0;
    }
    let m = lines as usize;
    let binomial = binomial_pmf(m, p);
    let mut overflow = 0.0;
    for (b, &pb) in busy_free.iter().enumerate() {
        if pb < 1e-12 {
            continue;
        }
        let free = (offset + b as i64).max(0) as usize;
        let excess: f64 = binomial
            .iter()
            .enumerate()
            .skip(free + 1)
            .map(|(x, &px)| (x - free) as f64 * px)
            .sum();
        overflow += pb * excess;
    }
    overflow / (m as f64 * p)
}

fn binomial_pmf(m: usize, p: f64) -> Vec<f64> {
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log = m as f64 * lq;
    let mut out = Vec::with_capacity(m + 1);
    for k in 0..=m {
        out.push(log.exp());
        if k < m {
            log += ((m - k) as f64 / (k + 1) as f64).ln() + lp - lq;
        }
    }
    out
}

/// The standard normal CDF (Abramowitz & Stegun 7.1.26, error under 1.5e-7).
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// A per-trunk calls-per-second cap: a token bucket of `burst` calls refilled at `cps`
/// (implemented as GCRA, in integer time, so `next_free` is exact).
///
/// ```
/// use bot_runtime::dialer::pacing::CpsLimiter;
/// use std::time::Duration;
///
/// let mut trunk = CpsLimiter::new(10.0, 1);
/// assert!(trunk.try_take(Duration::ZERO));
/// assert!(!trunk.try_take(Duration::from_millis(40)));
/// assert_eq!(trunk.next_free(Duration::from_millis(40)), Duration::from_millis(60));
/// ```
#[derive(Debug, Clone)]
pub struct CpsLimiter {
    interval: Duration,
    tolerance: Duration,
    /// The theoretical arrival time of the next call.
    tat: Duration,
}

impl CpsLimiter {
    /// `cps` calls per second on average (fractions allowed; at least one call per 1000 s),
    /// at most `burst` (at least 1) at once.
    pub fn new(cps: f64, burst: u32) -> Self {
        let cps = if cps.is_finite() { cps.max(0.001) } else { 1e9 };
        let interval = Duration::from_secs_f64(1.0 / cps).max(Duration::from_nanos(1));
        CpsLimiter {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: Duration::ZERO,
        }
    }

    /// Takes a token if one is free at `now`.
    pub fn try_take(&mut self, now: Duration) -> bool {
        if now < self.tat.saturating_sub(self.tolerance) {
            return false;
        }
        self.tat = self.tat.max(now) + self.interval;
        true
    }

    /// How long from `now` until a token is free (zero if one is).
    pub fn next_free(&self, now: Duration) -> Duration {
        self.tat.saturating_sub(self.tolerance).saturating_sub(now)
    }
}

/// A discrete-event simulation of a human campaign, shared by the pacing bench and tests.
#[doc(hidden)]
pub mod sim {
    use super::{BusyAgent, Pacer, PacingEvent, PacingMode, PacingState, SAFE_HARBOUR};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};
    use std::time::Duration;

    /// A campaign to simulate.
    #[derive(Debug, Clone, Copy)]
    pub struct SimConfig {
        pub agents: u32,
        /// Probability that a dial is answered by a person.
        pub answer_rate: f64,
        /// Of the dials not answered by a person, the share answered by a machine (AMD takes
        /// 3 s more); of the rest, 30 % fail fast (busy, unreachable) and 70 % ring out.
        pub machine_share: f64,
        /// Median talk time, seconds (lognormal, σ = 0.7).
        pub talk_median_s: f64,
        /// Wrap-up, uniform between these, seconds.
        pub wrap_s: (f64, f64),
        /// Ring-out timeout for unanswered calls, seconds.
        pub no_answer_timeout_s: f64,
        pub hours: f64,
        pub seed: u64,
    }

    impl Default for SimConfig {
        fn default() -> Self {
            SimConfig {
                agents: 10,
                answer_rate: 0.25,
                machine_share: 0.2,
                talk_median_s: 120.0,
                wrap_s: (5.0, 25.0),
                no_answer_timeout_s: 30.0,
                hours: 8.0,
                seed: 7,
            }
        }
    }

    /// What a simulated day gave.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SimReport {
        pub placed: u64,
        pub live_answered: u64,
        pub machines: u64,
        pub abandoned: u64,
        /// Abandoned over live answered.
        pub abandon_rate: f64,
        /// Talk time over logged-in agent time.
        pub occupancy: f64,
        /// Mean time an agent waits between the end of one call (with wrap-up) and the next.
        pub mean_agent_wait_s: f64,
        pub connected: u64,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Event {
        Tick,
        /// A call's outcome: 0 live, 1 machine, 2 not answered; ring in ms.
        Outcome {
            kind: u8,
            ring_ms: u64,
        },
        /// The safe harbour of a waiting call ends.
        Harbour {
            call: u64,
        },
        AgentFree {
            agent: usize,
        },
    }

    #[derive(Debug, Clone, Copy)]
    enum Agent {
        Ready { since: u64 },
        Busy { since: u64 },
    }

    fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }

    fn ms(s: f64) -> u64 {
        (s * 1000.0).round().max(0.0) as u64
    }

    /// The simulated campaign: the event queue, agents, lines and tallies.
    struct World<'c> {
        config: &'c SimConfig,
        rng: StdRng,
        pacer: Pacer,
        end: u64,
        queue: BinaryHeap<Reverse<(u64, u64, Event)>>,
        seq: u64,
        agents: Vec<Agent>,
        /// Live answers waiting for an agent: (call, answered at).
        waiting: VecDeque<(u64, u64)>,
        next_call: u64,
        ringing: u32,
        report: SimReport,
        talk_ms: u64,
        idle_ms: u64,
        idle_spells: u64,
    }

    impl World<'_> {
        fn push(&mut self, at: u64, event: Event) {
            self.seq += 1;
            self.queue.push(Reverse((at, self.seq, event)));
        }

        fn connect(&mut self, agent: usize, now: u64, answered: u64) {
            if let Agent::Ready { since } = self.agents[agent] {
                self.idle_ms += now - since;
                self.idle_spells += 1;
            }
            self.report.connected += 1;
            let waited = Duration::from_millis(now - answered);
            self.pacer.on_event(
                Duration::from_millis(now),
                PacingEvent::Connected { waited },
            );
            let talk =
                ms(lognormal(&mut self.rng, self.config.talk_median_s, 0.7).clamp(10.0, 3600.0));
            let (lo, hi) = self.config.wrap_s;
            let wrap = ms(self.rng.random_range(lo..=hi.max(lo)));
            self.talk_ms += talk.min(self.end.saturating_sub(now));
            self.agents[agent] = Agent::Busy { since: now };
            self.push(now + talk + wrap, Event::AgentFree { agent });
        }

        fn tick(&mut self, now: u64) {
            let at = Duration::from_millis(now);
            // The queue knows how long each agent has been busy, not when the call will end.
            let busy: Vec<BusyAgent> = self
                .agents
                .iter()
                .filter_map(|a| match a {
                    Agent::Busy { since } => Some(BusyAgent {
                        busy_for: Duration::from_millis(now - since),
                        expected_remaining: None,
                    }),
                    Agent::Ready { .. } => None,
                })
                .collect();
            let ready = self.agents.len() - busy.len();
            let state = PacingState {
                agents_ready: u32::try_from(ready).unwrap_or(u32::MAX),
                agents_busy: &busy,
                calls_ringing: self.ringing,
                calls_waiting: u32::try_from(self.waiting.len()).unwrap_or(u32::MAX),
                calls_in_progress: 0,
            };
            for _ in 0..self.pacer.calls_to_place(at, &state) {
                self.report.placed += 1;
                self.ringing += 1;
                self.pacer.on_event(at, PacingEvent::Dialed);
                let config = self.config;
                let rng = &mut self.rng;
                let (kind, ring) = if rng.random_bool(config.answer_rate.clamp(0.0, 1.0)) {
                    (0, lognormal(rng, 7.0, 0.5).clamp(2.0, 25.0))
                } else if rng.random_bool(config.machine_share.clamp(0.0, 1.0)) {
                    (1, lognormal(rng, 7.0, 0.5).clamp(2.0, 25.0) + 3.0)
                } else if rng.random_bool(0.3) {
                    (2, rng.random_range(0.5..3.0))
                } else {
                    (2, config.no_answer_timeout_s)
                };
                let ring_ms = ms(ring);
                self.push(now + ring_ms, Event::Outcome { kind, ring_ms });
            }
            self.push(now + 1000, Event::Tick);
        }

        fn outcome(&mut self, now: u64, kind: u8, ring_ms: u64) {
            let at = Duration::from_millis(now);
            self.ringing -= 1;
            let ring = Duration::from_millis(ring_ms);
            match kind {
                0 => {
                    self.report.live_answered += 1;
                    self.pacer.on_event(
                        at,
                        PacingEvent::Answered {
                            machine: false,
                            ring,
                        },
                    );
                    // The agent idle longest takes the call.
                    let free = self
                        .agents
                        .iter()
                        .enumerate()
                        .filter_map(|(i, a)| match a {
                            Agent::Ready { since } => Some((*since, i)),
                            Agent::Busy { .. } => None,
                        })
                        .min();
                    match free {
                        Some((_, agent)) => self.connect(agent, now, now),
                        None => {
                            self.next_call += 1;
                            self.waiting.push_back((self.next_call, now));
                            let call = self.next_call;
                            self.push(
                                now + ms(SAFE_HARBOUR.as_secs_f64()),
                                Event::Harbour { call },
                            );
                        }
                    }
                }
                1 => {
                    self.report.machines += 1;
                    self.pacer.on_event(
                        at,
                        PacingEvent::Answered {
                            machine: true,
                            ring,
                        },
                    );
                }
                _ => self.pacer.on_event(at, PacingEvent::NotAnswered { ring }),
            }
        }
    }

    /// Runs one campaign day under `mode`; the pacer is asked once a second.
    pub fn simulate(config: &SimConfig, mode: PacingMode) -> SimReport {
        let mut world = World {
            config,
            rng: StdRng::seed_from_u64(config.seed),
            pacer: Pacer::new(mode, super::AbandonLedger::default()),
            end: ms(config.hours * 3600.0),
            queue: BinaryHeap::new(),
            seq: 0,
            agents: vec![Agent::Ready { since: 0 }; config.agents as usize],
            waiting: VecDeque::new(),
            next_call: 0,
            ringing: 0,
            report: SimReport::default(),
            talk_ms: 0,
            idle_ms: 0,
            idle_spells: 0,
        };
        world.push(0, Event::Tick);
        while let Some(Reverse((now, _, event))) = world.queue.pop() {
            if now >= world.end {
                break;
            }
            match event {
                Event::Tick => world.tick(now),
                Event::Outcome { kind, ring_ms } => world.outcome(now, kind, ring_ms),
                Event::Harbour { call } => {
                    if let Some(pos) = world.waiting.iter().position(|(c, _)| *c == call) {
                        world.waiting.remove(pos);
                        world.report.abandoned += 1;
                        world
                            .pacer
                            .on_event(Duration::from_millis(now), PacingEvent::Abandoned);
                    }
                }
                Event::AgentFree { agent } => {
                    if let Agent::Busy { since } = world.agents[agent] {
                        let handle = Duration::from_millis(now - since);
                        world
                            .pacer
                            .on_event(Duration::from_millis(now), PacingEvent::Handled { handle });
                    }
                    world.agents[agent] = Agent::Ready { since: now };
                    if let Some((_, answered)) = world.waiting.pop_front() {
                        world.connect(agent, now, answered);
                    }
                }
            }
        }
        let mut report = world.report;
        report.abandon_rate = if report.live_answered == 0 {
            0.0
        } else {
            report.abandoned as f64 / report.live_answered as f64
        };
        report.occupancy =
            world.talk_ms as f64 / (world.end.max(1) as f64 * f64::from(config.agents.max(1)));
        report.mean_agent_wait_s = if world.idle_spells == 0 {
            0.0
        } else {
            world.idle_ms as f64 / world.idle_spells as f64 / 1000.0
        };
        report
    }
}

#[cfg(test)]
mod tests {
    use super::sim::{SimConfig, simulate};
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn state(ready: u32, busy: &[BusyAgent], ringing: u32, waiting: u32) -> PacingState<'_> {
        PacingState {
            agents_ready: ready,
            agents_busy: busy,
            calls_ringing: ringing,
            calls_waiting: waiting,
            calls_in_progress: 0,
        }
    }

    /// A pacer that has seen `dials` dials, a share `p` of them answered live, over an hour.
    fn learned(mode: PacingMode, earlier: AbandonLedger, p: f64, dials: u32) -> Pacer {
        let mut pacer = Pacer::new(mode, earlier);
        let mut rng = StdRng::seed_from_u64(1);
        for i in 0..dials {
            let now = S(u64::from(i) * 3600 / u64::from(dials));
            if rng.random_bool(p) {
                pacer.on_event(
                    now,
                    PacingEvent::Answered {
                        machine: false,
                        ring: S(7),
                    },
                );
                pacer.on_event(
                    now,
                    PacingEvent::Handled {
                        handle: S(rng.random_range(90..240)),
                    },
                );
            } else {
                pacer.on_event(now, PacingEvent::NotAnswered { ring: S(30) });
            }
        }
        pacer
    }

    fn healthy() -> AbandonLedger {
        AbandonLedger {
            live_answered: 5000,
            abandoned: 0,
        }
    }

    #[test]
    fn rebase_replaces_the_window_and_keeps_what_was_learnt() {
        let mut p = learned(PacingMode::predictive(), healthy(), 0.3, 400);
        p.on_event(
            Duration::from_secs(10),
            PacingEvent::Answered {
                machine: false,
                ring: Duration::from_secs(4),
            },
        );
        p.on_event(Duration::from_secs(10), PacingEvent::Abandoned);
        let rate = p.answer_rate(Duration::from_secs(10));
        assert!(p.session().abandoned >= 1);
        let persisted = AbandonLedger {
            live_answered: 1_000,
            abandoned: 40,
        };
        p.rebase(persisted);
        assert_eq!(p.session(), AbandonLedger::default());
        assert_eq!(p.window(), persisted);
        assert!((p.abandon_rate() - 0.04).abs() < 1e-12);
        assert_eq!(p.answer_rate(Duration::from_secs(10)), rate);
        // Over the target after the rebase: progressive 1:1 exactly.
        let s = state(3, &[], 0, 0);
        assert_eq!(p.calls_to_place(Duration::from_secs(10), &s), 3);
    }

    #[test]
    fn preview_never_dials_and_robot_fills_its_capacity() {
        let preview = Pacer::new(PacingMode::Preview, healthy());
        assert_eq!(preview.calls_to_place(S(0), &state(10, &[], 0, 0)), 0);
        let robot = Pacer::new(PacingMode::Robot { max_concurrent: 30 }, healthy());
        let up = PacingState {
            calls_in_progress: 18,
            ..state(0, &[], 5, 0)
        };
        assert_eq!(robot.calls_to_place(S(0), &up), 7);
        let full = PacingState {
            calls_in_progress: 40,
            ..state(0, &[], 0, 0)
        };
        assert_eq!(robot.calls_to_place(S(0), &full), 0);
    }

    #[test]
    fn modes_read_from_config() {
        let mode: PacingMode =
            serde_json::from_str(r#"{"mode":"predictive","max_ratio":2.5,"target_abandon":0.02}"#)
                .expect("predictive");
        assert_eq!(
            mode,
            PacingMode::Predictive {
                max_ratio: 2.5,
                target_abandon: 0.02
            }
        );
        let robot: PacingMode =
            serde_json::from_str(r#"{"mode":"robot","max_concurrent":40}"#).expect("robot");
        assert_eq!(robot, PacingMode::Robot { max_concurrent: 40 });
        assert!(
            serde_json::from_str::<PacingMode>(r#"{"mode":"progressive","ratio":1.0,"ratoi":2.0}"#)
                .is_err()
        );
    }

    #[test]
    fn progressive_keeps_ratio_lines_per_ready_agent() {
        let one = Pacer::new(PacingMode::progressive(), healthy());
        assert_eq!(one.calls_to_place(S(0), &state(5, &[], 2, 1)), 2);
        assert_eq!(one.calls_to_place(S(0), &state(1, &[], 3, 0)), 0);
        let two = Pacer::new(PacingMode::Progressive { ratio: 2.0 }, healthy());
        assert_eq!(two.calls_to_place(S(0), &state(5, &[], 2, 1)), 7);
    }

    #[test]
    fn abandon_rate_is_abandons_over_live_answers_across_the_window() {
        let mut pacer = Pacer::new(
            PacingMode::predictive(),
            AbandonLedger {
                live_answered: 900,
                abandoned: 20,
            },
        );
        for _ in 0..100 {
            pacer.on_event(
                S(1),
                PacingEvent::Answered {
                    machine: false,
                    ring: S(5),
                },
            );
            pacer.on_event(
                S(1),
                PacingEvent::Answered {
                    machine: true,
                    ring: S(5),
                },
            );
        }
        for _ in 0..10 {
            pacer.on_event(S(2), PacingEvent::Abandoned);
        }
        assert_eq!(
            pacer.session(),
            AbandonLedger {
                live_answered: 100,
                abandoned: 10
            }
        );
        assert_eq!(
            pacer.window(),
            AbandonLedger {
                live_answered: 1000,
                abandoned: 30
            }
        );
        assert!((pacer.abandon_rate() - 0.03).abs() < 1e-12);
        assert_eq!(AbandonLedger::default().rate(), 0.0);
    }

    #[test]
    fn estimates_learn_and_forget() {
        let pacer = learned(PacingMode::predictive(), healthy(), 0.2, 2000);
        let p = pacer.answer_rate(S(3600));
        assert!((p - 0.2).abs() < 0.05, "answer rate {p}");
        let handle = pacer.mean_handle(S(3600)).as_secs_f64();
        assert!((140.0..200.0).contains(&handle), "handle {handle}");
        // Ten idle hours later the history has lost its weight: back near the cautious prior.
        let stale = pacer.answer_rate(S(11 * 3600));
        assert!(stale > 0.45, "stale answer rate {stale}");
    }

    #[test]
    fn predictive_dials_ahead_when_few_calls_are_answered() {
        let pacer = learned(PacingMode::predictive(), healthy(), 0.2, 2000);
        let now = S(3600);
        let n = pacer.calls_to_place(now, &state(20, &[], 0, 0));
        assert!(n > 20 && n <= 60, "20 ready agents at p = 0.2: {n} calls");
        // Agents deep into long calls are not expected free; agents with a known end soon are.
        let long = [BusyAgent {
            busy_for: S(30),
            expected_remaining: None,
        }; 10];
        let soon = [BusyAgent {
            busy_for: S(200),
            expected_remaining: Some(S(3)),
        }; 10];
        let with_long = pacer.calls_to_place(now, &state(10, &long, 0, 0));
        let with_soon = pacer.calls_to_place(now, &state(10, &soon, 0, 0));
        assert!(with_soon > with_long, "{with_soon} vs {with_long}");
        // Calls already ringing count against the dial-ahead.
        let ringing = pacer.calls_to_place(now, &state(20, &[], n, 0));
        assert!(ringing <= 2, "{ringing}");
    }

    #[test]
    fn predictive_falls_back_to_progressive_at_the_abandon_target() {
        let over = AbandonLedger {
            live_answered: 1000,
            abandoned: 45,
        };
        let pacer = learned(PacingMode::predictive(), over, 0.2, 2000);
        // The session's ~400 live answers without an abandon dilute it, to about 3.2 %.
        assert!(pacer.abandon_rate() >= 0.03, "{}", pacer.abandon_rate());
        let busy = [BusyAgent {
            busy_for: S(170),
            expected_remaining: Some(S(1)),
        }; 5];
        for (ready, ringing, waiting) in [(20, 0, 0), (5, 2, 1), (0, 0, 0), (3, 10, 0)] {
            let st = state(ready, &busy, ringing, waiting);
            let progressive =
                Pacer::new(PacingMode::progressive(), over).calls_to_place(S(3600), &st);
            assert_eq!(
                pacer.calls_to_place(S(3600), &st),
                progressive,
                "{ready} {ringing} {waiting}"
            );
        }
        // A healthy ledger with the same history dials ahead.
        let ok = learned(PacingMode::predictive(), healthy(), 0.2, 2000);
        assert!(ok.calls_to_place(S(3600), &state(20, &[], 0, 0)) > 20);
    }

    #[test]
    fn predictive_stays_between_progressive_and_its_max_ratio() {
        let mut rng = StdRng::seed_from_u64(42);
        for case in 0..500 {
            let p = rng.random_range(0.05..0.9);
            let max_ratio = rng.random_range(1.0..5.0);
            let mode = PacingMode::Predictive {
                max_ratio,
                target_abandon: 0.03,
            };
            let earlier = AbandonLedger {
                live_answered: 1000,
                abandoned: rng.random_range(0..40),
            };
            let pacer = learned(mode, earlier, p, 300);
            let busy: Vec<BusyAgent> = (0..rng.random_range(0..30))
                .map(|_| BusyAgent {
                    busy_for: S(rng.random_range(0..600)),
                    expected_remaining: rng.random_bool(0.3).then(|| S(rng.random_range(0..120))),
                })
                .collect();
            let st = state(
                rng.random_range(0..30),
                &busy,
                rng.random_range(0..40),
                rng.random_range(0..3),
            );
            let n = pacer.calls_to_place(S(3600), &st);
            let floor = progressive(1.0, &st);
            assert!(n >= floor, "case {case}: {n} < progressive {floor}");
            let agents = f64::from(st.agents_ready) + busy.len() as f64;
            assert!(
                n == floor || f64::from(n + st.calls_ringing) <= max_ratio * agents,
                "case {case}: {n} + {} ringing over {max_ratio} × {agents}",
                st.calls_ringing
            );
        }
    }

    #[test]
    fn cps_limiter_is_exact() {
        let mut cps = CpsLimiter::new(10.0, 1);
        assert!(cps.try_take(S(0)));
        assert!(!cps.try_take(Duration::from_millis(50)));
        assert_eq!(
            cps.next_free(Duration::from_millis(50)),
            Duration::from_millis(50)
        );
        assert!(cps.try_take(Duration::from_millis(100)));
        let mut burst = CpsLimiter::new(2.0, 3);
        assert!((0..3).all(|_| burst.try_take(S(10))));
        assert!(!burst.try_take(S(10)));
        assert_eq!(burst.next_free(S(10)), Duration::from_millis(500));
    }

    #[test]
    fn cps_limiter_never_exceeds_burst_plus_rate() {
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..50 {
            let rate = rng.random_range(0.5..50.0);
            let burst = rng.random_range(1..10);
            let mut cps = CpsLimiter::new(rate, burst);
            let mut now = Duration::ZERO;
            let mut taken = Vec::new();
            for _ in 0..2000 {
                now += Duration::from_micros(rng.random_range(0..200_000));
                let wait = cps.next_free(now);
                if wait > Duration::ZERO {
                    assert!(!cps.try_take(now + wait - Duration::from_nanos(1)));
                    assert!(cps.try_take(now + wait), "free after next_free");
                    now += wait;
                    taken.push(now);
                } else if cps.try_take(now) {
                    taken.push(now);
                }
            }
            for (i, &t) in taken.iter().enumerate() {
                for (j, &u) in taken.iter().enumerate().skip(i) {
                    let span = (u - t).as_secs_f64();
                    let allowed = f64::from(burst) + rate * span + 1e-6;
                    assert!(
                        ((j - i + 1) as f64) <= allowed,
                        "{} calls in {span} s at {rate}/s burst {burst}",
                        j - i + 1
                    );
                    if span > 2.0 {
                        break;
                    }
                }
            }
        }
    }

    /// The same simulator as the bench, shorter: predictive keeps agents busier than
    /// progressive and its abandon rate under 3 %.
    #[test]
    fn simulated_predictive_beats_progressive_within_three_percent() {
        for (agents, answer_rate, seed) in [(10, 0.25, 1), (20, 0.4, 2)] {
            let config = SimConfig {
                agents,
                answer_rate,
                hours: 3.0,
                seed,
                ..SimConfig::default()
            };
            let progressive = simulate(&config, PacingMode::progressive());
            let predictive = simulate(&config, PacingMode::predictive());
            assert_eq!(progressive.abandoned, 0, "{progressive:?}");
            assert!(predictive.abandon_rate <= 0.03, "{predictive:?}");
            assert!(predictive.live_answered > 300, "{predictive:?}");
            assert!(
                predictive.occupancy > progressive.occupancy + 0.02,
                "{agents} agents at {answer_rate}: predictive {predictive:?} vs progressive {progressive:?}"
            );
            assert!(predictive.mean_agent_wait_s < progressive.mean_agent_wait_s);
        }
    }
}
