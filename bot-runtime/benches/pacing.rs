//! Pacing simulation: progressive 1:1 against predictive (3 % abandon target) on simulated
//! campaign days, and the cost of one predictive decision.
//!
//! `cargo bench -p bot-runtime --bench pacing`. The simulator is `dialer::pacing::sim` (the same
//! code the unit test runs): agents take the caller who has waited longest, a live answer finds
//! an agent within the 2 s safe harbour or is abandoned, talk time is lognormal (median 120 s,
//! σ 0.7), wrap-up 5–25 s, live answers ring 2–25 s, machines 3 s more (AMD), 30 % of the other
//! dials fail in 0.5–3 s and 70 % ring out at 30 s. The pacer is asked once a second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bot_runtime::dialer::pacing::sim::{SimConfig, simulate};
use bot_runtime::dialer::pacing::{
    AbandonLedger, BusyAgent, Pacer, PacingEvent, PacingMode, PacingState,
};

fn main() {
    let hours = 8.0;
    println!("Simulated {hours} h campaign days (seed 7), pacer asked every second\n");
    println!(
        "| agents | live answer rate | mode | placed | live answered | abandoned | abandon rate | occupancy (talk) | mean agent wait |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let started = Instant::now();
    for agents in [10, 20] {
        for answer_rate in [0.25, 0.4] {
            let config = SimConfig {
                agents,
                answer_rate,
                hours,
                ..SimConfig::default()
            };
            for (name, mode) in [
                ("progressive 1:1", PacingMode::progressive()),
                ("predictive", PacingMode::predictive()),
            ] {
                let r = simulate(&config, mode);
                println!(
                    "| {agents} | {:.0} % | {name} | {} | {} | {} | {:.2} % | {:.1} % | {:.1} s |",
                    answer_rate * 100.0,
                    r.placed,
                    r.live_answered,
                    r.abandoned,
                    r.abandon_rate * 100.0,
                    r.occupancy * 100.0,
                    r.mean_agent_wait_s
                );
            }
        }
    }
    println!(
        "\n8 simulated days in {:.2} s of wall time",
        started.elapsed().as_secs_f64()
    );

    // One predictive decision for a 100-agent floor: 20 ready, 80 busy, 40 lines ringing.
    let mut pacer = Pacer::new(
        PacingMode::predictive(),
        AbandonLedger {
            live_answered: 5000,
            abandoned: 50,
        },
    );
    for i in 0..1000u64 {
        let now = Duration::from_secs(i);
        if i % 4 == 0 {
            pacer.on_event(
                now,
                PacingEvent::Answered {
                    machine: false,
                    ring: Duration::from_secs(7),
                },
            );
            pacer.on_event(
                now,
                PacingEvent::Handled {
                    handle: Duration::from_secs(100 + i % 200),
                },
            );
        } else {
            pacer.on_event(
                now,
                PacingEvent::NotAnswered {
                    ring: Duration::from_secs(30),
                },
            );
        }
    }
    let busy: Vec<BusyAgent> = (0..80u64)
        .map(|i| BusyAgent {
            busy_for: Duration::from_secs(i * 4),
            expected_remaining: None,
        })
        .collect();
    let state = PacingState {
        agents_ready: 20,
        agents_busy: &busy,
        calls_ringing: 40,
        calls_waiting: 0,
        calls_in_progress: 0,
    };
    let now = Duration::from_secs(1000);
    let rounds = 2000;
    let started = Instant::now();
    let mut total = 0u64;
    for _ in 0..rounds {
        total += u64::from(pacer.calls_to_place(black_box(now), black_box(&state)));
    }
    let per = started.elapsed() / rounds;
    println!(
        "predictive decision, 100 agents (20 ready, 80 busy, 40 ringing): {:.1} µs ({} calls to place)",
        per.as_secs_f64() * 1e6,
        total / u64::from(rounds)
    );
}
