//! Throughput of the agent queue engine (`agents::queue::QueueEngine`) on a simulated floor.
//!
//! `cargo bench -p bot-runtime --bench queue_engine [-- AGENTS QUEUES CALLS LOAD]` (defaults
//! 1 000 agents, 20 queues, 100 000 calls, LOAD 95: arrivals at 95 % of the floor's capacity;
//! above 100 the queues grow and calls overflow, give up and are abandoned). Each queue needs one or two of 8 skills at levels 1–5 and
//! overflows to the next queue after 60 s; agents have 4 skills at levels 1–10. Calls arrive as a
//! Poisson stream (talk 30–210 s; wrap-up 10 s by timer in even queues, 5 s ended by the agent
//! in odd ones); agents answer offers after 2 s, rejecting 5 % and missing 1 % (then
//! coming back Ready after 30 s); 5 % of callers hang up after 20–120 s if still waiting.
//!
//! Only the time inside `handle`/`on_timer` is counted; the driver (an event heap in simulated
//! time) is not. Checked at the end: every call ended exactly once (connected, abandoned or
//! given up).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bot_runtime::agents::queue::{
    AgentProfile, AgentStatus, Input, Output, Overflow, QueueConfig, QueueEngine,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SKILLS: usize = 8;

/// Sizes: the arguments that are not flags (`cargo bench` adds `--bench`).
fn args() -> (usize, usize, usize, f64) {
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let get = |i: usize, default| nums.get(i).copied().unwrap_or(default);
    let load = get(3, 95).max(1) as f64 / 100.0;
    (
        get(0, 1000).max(1),
        get(1, 20).max(1),
        get(2, 100_000),
        load,
    )
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Arrive(usize),
    /// The agent answers the `n`th offer of a call.
    Answer {
        agent: String,
        call: String,
        n: u32,
    },
    Hangup(String),
    CallerGivesUp(String),
    WrapUpDone(String),
    BackFromMiss(String),
}

#[derive(Default)]
struct Cost {
    count: u64,
    time: Duration,
}

fn label(input: &Input) -> &'static str {
    match input {
        Input::Login { .. } => "Login",
        Input::Logout { .. } => "Logout",
        Input::Ready { .. } => "Ready",
        Input::Pause { .. } => "Pause",
        Input::Disconnected { .. } => "Disconnected",
        Input::Enqueue { .. } => "Enqueue",
        Input::Accept { .. } => "Accept",
        Input::Reject { .. } => "Reject",
        Input::Abandon { .. } => "Abandon",
        Input::CallEnded { .. } => "CallEnded",
        Input::WrapUpDone { .. } => "WrapUpDone",
    }
}

struct Floor {
    engine: QueueEngine,
    rng: StdRng,
    events: BinaryHeap<Reverse<(Instant, u64, Event)>>,
    seq: u64,
    costs: BTreeMap<&'static str, Cost>,
    outputs: u64,
    /// The current offer number of each offered call.
    offer_no: HashMap<String, u32>,
    ended: HashMap<String, &'static str>,
    /// The queue of call `c{i}`.
    queue_of: Vec<usize>,
}

impl Floor {
    fn at(&mut self, at: Instant, e: Event) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, e)));
    }

    fn send(&mut self, input: Input, now: Instant) {
        let name = label(&input);
        let started = Instant::now();
        let out = self.engine.handle(input, now);
        let took = started.elapsed();
        let cost = self.costs.entry(name).or_default();
        cost.count += 1;
        cost.time += took;
        match out {
            Ok(out) => self.react(out, now),
            Err(e) => panic!("{name} refused: {e}"),
        }
    }

    fn timers(&mut self, now: Instant) {
        let started = Instant::now();
        let out = self.engine.on_timer(now);
        let took = started.elapsed();
        let cost = self.costs.entry("on_timer").or_default();
        cost.count += 1;
        cost.time += took;
        self.react(out, now);
    }

    fn manual_wrap_up(&self, call: &str) -> bool {
        call.strip_prefix('c')
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| self.queue_of.get(i))
            .is_some_and(|&q| q % 2 == 1)
    }

    fn end(&mut self, call: &str, how: &'static str) {
        if let Some(prev) = self.ended.insert(call.to_string(), how) {
            panic!("{call} ended twice: {prev} then {how}");
        }
    }

    fn react(&mut self, out: Vec<Output>, now: Instant) {
        self.outputs += out.len() as u64;
        for o in out {
            match o {
                Output::Offer { call, agent, .. } => {
                    let n = self.offer_no.entry(call.clone()).or_default();
                    *n += 1;
                    let n = *n;
                    if self.rng.random_bool(0.99) {
                        self.at(
                            now + Duration::from_secs(2),
                            Event::Answer { agent, call, n },
                        );
                    }
                }
                Output::OfferWithdrawn { call, .. } => {
                    if let Some(n) = self.offer_no.get_mut(&call) {
                        *n += 1;
                    }
                }
                Output::Connect { call, .. } => {
                    self.offer_no.remove(&call);
                    self.end(&call, "connected");
                    let talk = Duration::from_secs(self.rng.random_range(30..=210));
                    self.at(now + talk, Event::Hangup(call));
                }
                Output::GiveUp { call, .. } => {
                    self.offer_no.remove(&call);
                    self.end(&call, "given up");
                }
                Output::Overflowed { .. } => {}
                Output::AgentChanged { agent, status } => match status {
                    AgentStatus::WrapUp { call } if self.manual_wrap_up(&call) => {
                        self.at(now + Duration::from_secs(5), Event::WrapUpDone(agent));
                    }
                    AgentStatus::Paused { reason } if reason == "missed offer" => {
                        self.at(now + Duration::from_secs(30), Event::BackFromMiss(agent));
                    }
                    _ => {}
                },
            }
        }
    }
}

fn main() {
    let (agents, queues, calls, load) = args();
    let mut rng = StdRng::seed_from_u64(7);
    let configs: Vec<QueueConfig> = (0..queues)
        .map(|i| {
            let mut required = BTreeMap::new();
            required.insert(format!("s{}", i % SKILLS), rng.random_range(1..=5));
            if i % 3 == 0 {
                required.insert(format!("s{}", (i + 3) % SKILLS), rng.random_range(1..=3));
            }
            QueueConfig {
                name: format!("q{i}"),
                required_skills: required,
                priority: rng.random_range(0..3),
                offer_timeout: Duration::from_secs(20),
                max_wait: Duration::from_secs(600),
                overflow: (queues > 1).then(|| Overflow {
                    after: Duration::from_secs(60),
                    to: format!("q{}", (i + 1) % queues),
                }),
                wrap_up: (i % 2 == 0).then_some(Duration::from_secs(10)),
            }
        })
        .collect();
    let engine = QueueEngine::new(configs.clone()).expect("valid queues");
    let t0 = Instant::now();
    let mut floor = Floor {
        engine,
        rng: StdRng::seed_from_u64(11),
        events: BinaryHeap::new(),
        seq: 0,
        costs: BTreeMap::new(),
        outputs: 0,
        offer_no: HashMap::new(),
        ended: HashMap::new(),
        queue_of: Vec::with_capacity(calls),
    };
    for i in 0..agents {
        let mut skills = BTreeMap::new();
        // Skill i % 8 for sure, so every queue has agents; three more at random.
        skills.insert(format!("s{}", i % SKILLS), rng.random_range(5..=10));
        while skills.len() < 4 {
            let s = rng.random_range(0..SKILLS);
            skills.insert(format!("s{s}"), rng.random_range(1..=10));
        }
        let id = format!("a{i}");
        let profile = AgentProfile {
            id: id.clone(),
            name: format!("Agent {i}"),
            skills,
        };
        floor.send(Input::Login { agent: profile }, t0);
        floor.send(Input::Ready { agent: id }, t0);
    }
    // Mean handle ≈ 120 s talk + 2 s offer + 7.5 s wrap-up.
    let rate = load * agents as f64 / 129.5;
    let mut at = t0;
    for i in 0..calls {
        let u: f64 = floor.rng.random_range(f64::EPSILON..1.0);
        at += Duration::from_secs_f64(-u.ln() / rate);
        floor.at(at, Event::Arrive(i));
    }
    let started = Instant::now();
    let mut waiting_seen = 0usize;
    while let Some(Reverse((now, _, event))) = floor.events.pop() {
        while let Some(deadline) = floor.engine.next_deadline().filter(|d| *d <= now) {
            floor.timers(deadline);
        }
        match event {
            Event::Arrive(i) => {
                let call = format!("c{i}");
                let q = floor.rng.random_range(0..queues);
                floor.queue_of.push(q);
                let queue = format!("q{q}");
                if floor.rng.random_bool(0.05) {
                    let patience = Duration::from_secs(floor.rng.random_range(20..=120));
                    floor.at(now + patience, Event::CallerGivesUp(call.clone()));
                }
                let priority = floor.rng.random_range(0..3);
                floor.send(
                    Input::Enqueue {
                        call,
                        queue,
                        priority,
                    },
                    now,
                );
                if i % 1000 == 0 {
                    let snap = floor.engine.snapshot(now);
                    waiting_seen = waiting_seen.max(snap.queues.iter().map(|q| q.waiting).sum());
                }
            }
            Event::Answer { agent, call, n } => {
                if floor.offer_no.get(&call) == Some(&n) {
                    let input = if floor.rng.random_bool(0.95) {
                        Input::Accept { agent, call }
                    } else {
                        Input::Reject { agent, call }
                    };
                    floor.send(input, now);
                }
            }
            Event::Hangup(call) => floor.send(Input::CallEnded { call }, now),
            Event::CallerGivesUp(call) => {
                if floor.engine.position(&call).is_some() {
                    floor.end(&call, "abandoned");
                    floor.offer_no.remove(&call);
                    floor.send(Input::Abandon { call }, now);
                }
            }
            Event::WrapUpDone(agent) => {
                if matches!(
                    floor.engine.agent_status(&agent),
                    Some(AgentStatus::WrapUp { .. })
                ) {
                    floor.send(Input::WrapUpDone { agent }, now);
                }
            }
            Event::BackFromMiss(agent) => floor.send(Input::Ready { agent }, now),
        }
    }
    while let Some(deadline) = floor.engine.next_deadline() {
        floor.timers(deadline);
    }
    let wall = started.elapsed();
    let simulated = floor.costs.values().map(|c| c.count).sum::<u64>();
    assert_eq!(floor.ended.len(), calls, "every call ends exactly once");

    let engine_time: Duration = floor.costs.values().map(|c| c.time).sum();
    let count = |how| floor.ended.values().filter(|h| **h == how).count();
    println!(
        "{agents} agents, {queues} queues, {calls} calls at {:.0} % load: {} connected, {} abandoned, {} given up; \
         at most {waiting_seen} waiting at once (sampled)\n",
        load * 100.0,
        count("connected"),
        count("abandoned"),
        count("given up"),
    );
    println!("| operation | calls | total ms | ns/call |");
    println!("|---|---|---|---|");
    for (name, c) in &floor.costs {
        println!(
            "| {name} | {} | {:.1} | {:.0} |",
            c.count,
            c.time.as_secs_f64() * 1e3,
            c.time.as_nanos() as f64 / c.count.max(1) as f64
        );
    }
    println!(
        "\n{simulated} engine calls ({} outputs) in {:.1} ms of engine time: {:.0} events/s, \
         {:.0} ns/event; {:.0} ns of engine time per call routed. Driver included: {:.2} s wall.",
        floor.outputs,
        engine_time.as_secs_f64() * 1e3,
        simulated as f64 / engine_time.as_secs_f64(),
        engine_time.as_nanos() as f64 / simulated as f64,
        engine_time.as_nanos() as f64 / calls.max(1) as f64,
        wall.as_secs_f64(),
    );

    // Read-side costs on a loaded floor: every agent busy, a deep backlog.
    let mut busy = QueueEngine::new(configs).expect("valid queues");
    let backlog = 10_000;
    for i in 0..backlog {
        let call = format!("b{i}");
        let queue = format!("q{}", i % queues);
        busy.handle(
            Input::Enqueue {
                call,
                queue,
                priority: (i % 3) as u8,
            },
            t0,
        )
        .expect("enqueue");
    }
    for i in 0..agents {
        let mut skills = BTreeMap::new();
        skills.insert(format!("s{}", i % SKILLS), 10);
        let profile = AgentProfile {
            id: format!("a{i}"),
            name: String::new(),
            skills,
        };
        busy.handle(Input::Login { agent: profile }, t0)
            .expect("login");
    }
    let reps = 200;
    let started = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(busy.snapshot(t0));
    }
    let snapshot = started.elapsed() / reps;
    let started = Instant::now();
    for i in 0..reps {
        std::hint::black_box(busy.estimated_wait(&format!("q{}", i as usize % queues), t0));
        std::hint::black_box(busy.position(&format!("b{}", i * 37)));
    }
    let reads = started.elapsed() / reps;
    println!(
        "\nWith {backlog} calls waiting and {agents} agents paused: snapshot {:.2} ms, \
         estimated_wait + position {:.1} µs.",
        snapshot.as_secs_f64() * 1e3,
        reads.as_secs_f64() * 1e6
    );
}
