//! The agent queue engine (`bot_runtime::agents::queue`) driven with simulated time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bot_runtime::agents::queue::{
    AgentProfile, AgentStatus, DEFAULT_HANDLE_TIME, Input, Output, Overflow, QueueConfig,
    QueueEngine, QueueError, WithdrawReason,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn skills(list: &[(&str, u8)]) -> BTreeMap<String, u8> {
    list.iter().map(|(s, l)| (s.to_string(), *l)).collect()
}

fn queue(name: &str, required: &[(&str, u8)], priority: u8) -> QueueConfig {
    QueueConfig {
        name: name.into(),
        required_skills: skills(required),
        priority,
        offer_timeout: secs(15),
        max_wait: secs(300),
        overflow: None,
        wrap_up: Some(secs(10)),
    }
}

fn profile(id: &str, list: &[(&str, u8)]) -> AgentProfile {
    AgentProfile {
        id: id.into(),
        name: id.to_uppercase(),
        skills: skills(list),
    }
}

/// An engine with a clock in whole seconds since `t0`.
struct Desk {
    engine: QueueEngine,
    t0: Instant,
}

impl Desk {
    fn new(queues: Vec<QueueConfig>) -> Self {
        Self {
            engine: QueueEngine::new(queues).expect("valid queues"),
            t0: Instant::now(),
        }
    }

    fn at(&self, s: u64) -> Instant {
        self.t0 + secs(s)
    }

    fn send(&mut self, s: u64, input: Input) -> Vec<Output> {
        let at = self.at(s);
        self.engine.handle(input, at).expect("input accepted")
    }

    fn try_send(&mut self, s: u64, input: Input) -> Result<Vec<Output>, QueueError> {
        let at = self.at(s);
        self.engine.handle(input, at)
    }

    fn tick(&mut self, s: u64) -> Vec<Output> {
        let at = self.at(s);
        self.engine.on_timer(at)
    }

    fn ready_agent(&mut self, s: u64, id: &str, list: &[(&str, u8)]) -> Vec<Output> {
        self.send(
            s,
            Input::Login {
                agent: profile(id, list),
            },
        );
        self.send(s, Input::Ready { agent: id.into() })
    }

    fn enqueue(&mut self, s: u64, call: &str, queue: &str, priority: u8) -> Vec<Output> {
        self.send(
            s,
            Input::Enqueue {
                call: call.into(),
                queue: queue.into(),
                priority,
            },
        )
    }

    fn accept(&mut self, s: u64, agent: &str, call: &str) -> Vec<Output> {
        self.send(
            s,
            Input::Accept {
                agent: agent.into(),
                call: call.into(),
            },
        )
    }

    fn reject(&mut self, s: u64, agent: &str, call: &str) -> Vec<Output> {
        self.send(
            s,
            Input::Reject {
                agent: agent.into(),
                call: call.into(),
            },
        )
    }

    fn end(&mut self, s: u64, call: &str) -> Vec<Output> {
        self.send(s, Input::CallEnded { call: call.into() })
    }

    fn status(&self, agent: &str) -> AgentStatus {
        self.engine
            .agent_status(agent)
            .cloned()
            .expect("known agent")
    }

    /// Everything observable, to check that a failed input changed nothing.
    fn observe(&self) -> String {
        let snap = serde_json::to_string(&self.engine.snapshot(self.at(1000))).expect("json");
        format!("{snap} {:?}", self.engine.next_deadline())
    }
}

/// The (call, agent) pairs offered.
fn offers(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Offer { call, agent, .. } => Some((call.clone(), agent.clone())),
            _ => None,
        })
        .collect()
}

fn offer(call: &str, agent: &str) -> Vec<(String, String)> {
    vec![(call.to_string(), agent.to_string())]
}

fn withdrawn(out: &[Output]) -> Vec<(String, String, WithdrawReason)> {
    out.iter()
        .filter_map(|o| match o {
            Output::OfferWithdrawn {
                call,
                agent,
                reason,
            } => Some((call.clone(), agent.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn paused(reason: &str) -> AgentStatus {
    AgentStatus::Paused {
        reason: reason.into(),
    }
}

#[test]
fn routes_by_skill_level_and_skips_agents_missing_a_skill() {
    let mut d = Desk::new(vec![queue("loans", &[("loans", 5), ("fr", 2)], 1)]);
    d.ready_agent(0, "low", &[("loans", 4), ("fr", 9)]);
    d.ready_agent(1, "nofr", &[("loans", 9)]);
    d.ready_agent(2, "cards", &[("cards", 10)]);
    assert!(
        d.enqueue(3, "c1", "loans", 0).is_empty(),
        "nobody qualifies"
    );
    let out = d.ready_agent(4, "ok", &[("loans", 5), ("fr", 2), ("cards", 1)]);
    assert_eq!(offers(&out), offer("c1", "ok"));
    assert_eq!(d.status("ok"), AgentStatus::Offered { call: "c1".into() });
}

#[test]
fn queue_without_required_skills_takes_anyone() {
    let mut d = Desk::new(vec![queue("general", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    assert_eq!(offers(&d.enqueue(1, "c1", "general", 0)), offer("c1", "a"));
}

#[test]
fn longest_idle_agent_gets_the_call() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(5, "b", &[]);
    d.ready_agent(9, "c", &[]);
    assert_eq!(offers(&d.enqueue(10, "c1", "q", 0)), offer("c1", "a"));
    assert_eq!(offers(&d.enqueue(11, "c2", "q", 0)), offer("c2", "b"));
    // b rejects: b goes to the back, c2 goes to c.
    let out = d.reject(12, "b", "c2");
    assert_eq!(
        withdrawn(&out),
        vec![("c2".into(), "b".into(), WithdrawReason::Rejected)]
    );
    assert_eq!(offers(&out), offer("c2", "c"));
    assert_eq!(d.status("b"), AgentStatus::Ready);
    // Agent idle since a wrap-up ends goes behind those who were already ready.
    d.accept(13, "a", "c1");
    d.accept(13, "c", "c2");
    d.end(20, "c1");
    d.tick(30);
    d.ready_agent(32, "e", &[]);
    // b (ready since 12) before a (since 30) before e (since 32).
    assert_eq!(offers(&d.enqueue(40, "c3", "q", 0)), offer("c3", "b"));
    assert_eq!(offers(&d.enqueue(41, "c4", "q", 0)), offer("c4", "a"));
    assert_eq!(offers(&d.enqueue(42, "c5", "q", 0)), offer("c5", "e"));
}

#[test]
fn call_priority_then_wait_time_within_a_queue() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.enqueue(0, "old-low", "q", 1);
    d.enqueue(1, "high", "q", 5);
    d.enqueue(2, "new-low", "q", 1);
    d.enqueue(3, "high2", "q", 5);
    assert_eq!(d.engine.position("high"), Some(("q".into(), 1)));
    assert_eq!(d.engine.position("high2"), Some(("q".into(), 2)));
    assert_eq!(d.engine.position("old-low"), Some(("q".into(), 3)));
    assert_eq!(d.engine.position("new-low"), Some(("q".into(), 4)));
    let mut order = Vec::new();
    for (i, agent) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let out = d.ready_agent(10 + i as u64, agent, &[]);
        order.extend(offers(&out).into_iter().map(|(c, _)| c));
    }
    assert_eq!(order, ["high", "high2", "old-low", "new-low"]);
}

#[test]
fn agent_in_several_queues_takes_the_higher_priority_queue_first() {
    let mut d = Desk::new(vec![
        queue("cards", &[("cards", 1)], 1),
        queue("fraud", &[("fraud", 1)], 9),
    ]);
    d.enqueue(0, "card-call", "cards", 9);
    d.enqueue(5, "fraud-call", "fraud", 0);
    let out = d.ready_agent(10, "both", &[("cards", 3), ("fraud", 3)]);
    assert_eq!(offers(&out), offer("fraud-call", "both"));
    // A cards-only agent still gets the cards call.
    let out = d.ready_agent(11, "cardsonly", &[("cards", 3)]);
    assert_eq!(offers(&out), offer("card-call", "cardsonly"));
}

#[test]
fn overflow_makes_the_call_reachable_by_the_other_queues_agents() {
    let mut cards = queue("cards", &[("cards", 1)], 1);
    cards.overflow = Some(Overflow {
        after: secs(30),
        to: "general".into(),
    });
    let mut d = Desk::new(vec![cards, queue("general", &[("general", 1)], 1)]);
    d.ready_agent(0, "g", &[("general", 1)]);
    assert!(d.enqueue(0, "c1", "cards", 0).is_empty());
    assert_eq!(d.engine.next_deadline(), Some(d.at(30)));
    assert!(d.tick(29).is_empty());
    let out = d.tick(30);
    assert_eq!(
        out[0],
        Output::Overflowed {
            call: "c1".into(),
            from: "cards".into(),
            to: "general".into()
        }
    );
    assert_eq!(offers(&out), offer("c1", "g"));
    assert_eq!(d.engine.position("c1"), Some(("cards".into(), 1)));
    let snap = d.engine.snapshot(d.at(31));
    assert_eq!(snap.queues[0].overflowed, 1);
    assert_eq!(snap.queues[1].overflowed_in, 1);
}

#[test]
fn overflowed_call_keeps_its_enqueue_time() {
    let mut cards = queue("cards", &[("cards", 1)], 1);
    cards.overflow = Some(Overflow {
        after: secs(30),
        to: "general".into(),
    });
    let mut d = Desk::new(vec![cards, queue("general", &[("general", 1)], 1)]);
    d.enqueue(0, "card-call", "cards", 0);
    d.enqueue(10, "general-call", "general", 0);
    d.tick(30);
    let out = d.ready_agent(40, "g", &[("general", 1)]);
    assert_eq!(offers(&out), offer("card-call", "g"));
    // The cards agent who arrives later may still get it once g rejects it.
    let out = d.ready_agent(41, "c", &[("cards", 1)]);
    assert!(offers(&out).is_empty());
    let out = d.reject(42, "g", "card-call");
    // g gets the general call; the card call goes to c.
    let mut got = offers(&out);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("card-call".to_string(), "c".to_string()),
            ("general-call".to_string(), "g".to_string())
        ]
    );
}

#[test]
fn max_wait_gives_up_and_withdraws_an_offer() {
    let mut q = queue("q", &[], 1);
    q.max_wait = secs(60);
    let mut d = Desk::new(vec![q]);
    d.enqueue(0, "c1", "q", 0);
    assert_eq!(d.engine.next_deadline(), Some(d.at(60)));
    let out = d.tick(60);
    assert_eq!(
        out,
        vec![Output::GiveUp {
            call: "c1".into(),
            queue: "q".into(),
            waited: secs(60)
        }]
    );
    assert_eq!(d.engine.position("c1"), None);
    // During an offer: the agent is not penalized.
    d.enqueue(100, "c2", "q", 0);
    d.ready_agent(150, "a", &[]);
    let out = d.tick(160);
    assert_eq!(
        withdrawn(&out),
        vec![("c2".into(), "a".into(), WithdrawReason::GaveUp)]
    );
    assert!(out.contains(&Output::GiveUp {
        call: "c2".into(),
        queue: "q".into(),
        waited: secs(60)
    }));
    assert_eq!(d.status("a"), AgentStatus::Ready);
    assert_eq!(d.engine.snapshot(d.at(161)).queues[0].given_up, 2);
    assert_eq!(d.engine.next_deadline(), None);
}

#[test]
fn rejected_call_goes_to_the_next_agent_and_back_only_when_nobody_else_is_ready() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(1, "b", &[]);
    d.enqueue(2, "c1", "q", 0);
    let out = d.reject(3, "a", "c1");
    assert_eq!(offers(&out), offer("c1", "b"));
    // Both refused it: the longest idle of them (a, since 3) gets it again.
    let out = d.reject(4, "b", "c1");
    assert_eq!(offers(&out), offer("c1", "a"));
    // A fresh agent is preferred over those who refused.
    let out = d.reject(5, "a", "c1");
    assert_eq!(offers(&out), offer("c1", "b"));
    d.send(
        6,
        Input::Pause {
            agent: "a".into(),
            reason: "x".into(),
        },
    );
    let out = d.ready_agent(7, "c", &[]);
    assert!(offers(&out).is_empty(), "c1 is offered to b");
    let out = d.reject(8, "b", "c1");
    assert_eq!(offers(&out), offer("c1", "c"));
    assert_eq!(d.engine.snapshot(d.at(9)).agents[0].offers_rejected, 2);
}

#[test]
fn rejecting_agent_takes_another_waiting_call_first() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.enqueue(0, "c1", "q", 0);
    d.enqueue(1, "c2", "q", 0);
    d.ready_agent(2, "a", &[]);
    let out = d.reject(3, "a", "c1");
    assert_eq!(offers(&out), offer("c2", "a"));
}

#[test]
fn offer_timeout_pauses_the_agent_and_reoffers() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(1, "b", &[]);
    let out = d.enqueue(2, "c1", "q", 0);
    assert!(matches!(&out[0], Output::Offer { expires, .. } if *expires == d.at(17)));
    assert_eq!(d.engine.next_deadline(), Some(d.at(17)));
    assert!(d.tick(16).is_empty());
    let out = d.tick(17);
    assert_eq!(
        withdrawn(&out),
        vec![("c1".into(), "a".into(), WithdrawReason::Timeout)]
    );
    assert_eq!(offers(&out), offer("c1", "b"));
    assert_eq!(d.status("a"), paused("missed offer"));
    assert!(out.contains(&Output::AgentChanged {
        agent: "a".into(),
        status: paused("missed offer")
    }));
    assert_eq!(d.engine.snapshot(d.at(18)).agents[0].offers_missed, 1);
    // b misses too; a comes back: a missed it, but nobody else is Ready.
    d.tick(32);
    let out = d.send(40, Input::Ready { agent: "a".into() });
    assert_eq!(offers(&out), offer("c1", "a"));
}

#[test]
fn disconnect_during_an_offer_reoffers() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(1, "b", &[]);
    d.enqueue(2, "c1", "q", 0);
    let out = d.send(3, Input::Disconnected { agent: "a".into() });
    assert_eq!(
        withdrawn(&out),
        vec![("c1".into(), "a".into(), WithdrawReason::AgentGone)]
    );
    assert_eq!(offers(&out), offer("c1", "b"));
    assert_eq!(d.status("a"), AgentStatus::Offline);
    // Repeated notices are harmless; Ready needs a login.
    assert!(
        d.send(4, Input::Disconnected { agent: "a".into() })
            .is_empty()
    );
    assert_eq!(
        d.try_send(5, Input::Ready { agent: "a".into() }),
        Err(QueueError::NotLoggedIn("a".into()))
    );
}

#[test]
fn logout_and_pause_during_an_offer_reoffer() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(1, "b", &[]);
    d.ready_agent(2, "c", &[]);
    d.enqueue(3, "c1", "q", 0);
    let out = d.send(4, Input::Logout { agent: "a".into() });
    assert_eq!(offers(&out), offer("c1", "b"));
    assert_eq!(d.status("a"), AgentStatus::Offline);
    let out = d.send(
        5,
        Input::Pause {
            agent: "b".into(),
            reason: "break".into(),
        },
    );
    assert_eq!(
        withdrawn(&out),
        vec![("c1".into(), "b".into(), WithdrawReason::AgentGone)]
    );
    assert_eq!(offers(&out), offer("c1", "c"));
    assert_eq!(d.status("b"), paused("break"));
}

#[test]
fn abandon_while_waiting_and_while_offered() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.enqueue(0, "c1", "q", 0);
    d.enqueue(1, "c2", "q", 0);
    assert!(d.send(2, Input::Abandon { call: "c1".into() }).is_empty());
    assert_eq!(d.engine.position("c2"), Some(("q".into(), 1)));
    d.ready_agent(3, "a", &[]);
    d.ready_agent(4, "b", &[]);
    let out = d.send(5, Input::Abandon { call: "c2".into() });
    assert_eq!(
        withdrawn(&out),
        vec![("c2".into(), "a".into(), WithdrawReason::Abandoned)]
    );
    assert_eq!(d.status("a"), AgentStatus::Ready);
    // a keeps its place: still the longest idle.
    assert_eq!(offers(&d.enqueue(6, "c3", "q", 0)), offer("c3", "a"));
    let snap = d.engine.snapshot(d.at(7));
    assert_eq!(snap.queues[0].abandoned, 2);
    assert_eq!(
        d.try_send(8, Input::Abandon { call: "c1".into() }),
        Err(QueueError::UnknownCall("c1".into()))
    );
    // The key can be used again once the call left.
    d.enqueue(9, "c1", "q", 0);
}

#[test]
fn wrap_up_timer_then_ready() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.enqueue(1, "c1", "q", 0);
    let out = d.accept(2, "a", "c1");
    assert_eq!(
        out[0],
        Output::Connect {
            call: "c1".into(),
            agent: "a".into()
        }
    );
    assert_eq!(d.status("a"), AgentStatus::OnCall { call: "c1".into() });
    d.enqueue(3, "c2", "q", 0);
    d.end(62, "c1");
    assert_eq!(d.status("a"), AgentStatus::WrapUp { call: "c1".into() });
    assert_eq!(d.engine.next_deadline(), Some(d.at(72)));
    let out = d.tick(72);
    assert_eq!(
        out[0],
        Output::AgentChanged {
            agent: "a".into(),
            status: AgentStatus::Ready
        }
    );
    assert_eq!(offers(&out), offer("c2", "a"));
    let snap = d.engine.snapshot(d.at(73));
    assert_eq!(snap.agents[0].calls_handled, 1);
    assert_eq!(snap.agents[0].talk_time, secs(60));
    assert_eq!(snap.queues[0].average_handle_time, Some(secs(70)));
}

#[test]
fn manual_wrap_up_and_zero_wrap_up() {
    let mut manual = queue("manual", &[("m", 1)], 1);
    manual.wrap_up = None;
    let mut none = queue("none", &[("n", 1)], 1);
    none.wrap_up = Some(Duration::ZERO);
    let mut d = Desk::new(vec![manual, none]);
    d.ready_agent(0, "m", &[("m", 1)]);
    d.ready_agent(0, "n", &[("n", 1)]);
    d.enqueue(1, "c1", "manual", 0);
    d.enqueue(1, "c2", "none", 0);
    d.accept(2, "m", "c1");
    d.accept(2, "n", "c2");
    d.end(10, "c1");
    d.end(10, "c2");
    assert_eq!(d.status("n"), AgentStatus::Ready);
    assert_eq!(d.status("m"), AgentStatus::WrapUp { call: "c1".into() });
    assert_eq!(d.engine.next_deadline(), None);
    assert!(d.tick(1000).is_empty());
    d.send(1001, Input::WrapUpDone { agent: "m".into() });
    assert_eq!(d.status("m"), AgentStatus::Ready);
    assert!(matches!(
        d.try_send(1002, Input::WrapUpDone { agent: "m".into() }),
        Err(QueueError::InvalidTransition { .. })
    ));
}

#[test]
fn logout_during_a_call_takes_effect_after_wrap_up() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.enqueue(1, "c1", "q", 0);
    d.accept(2, "a", "c1");
    assert!(d.send(3, Input::Logout { agent: "a".into() }).is_empty());
    assert_eq!(d.status("a"), AgentStatus::OnCall { call: "c1".into() });
    d.enqueue(4, "c2", "q", 0);
    d.end(30, "c1");
    assert_eq!(d.status("a"), AgentStatus::WrapUp { call: "c1".into() });
    let out = d.tick(40);
    assert_eq!(d.status("a"), AgentStatus::Offline);
    assert!(offers(&out).is_empty());
    // Logged in again: Paused until Ready.
    let out = d.send(
        50,
        Input::Login {
            agent: profile("a", &[]),
        },
    );
    assert_eq!(
        out,
        vec![Output::AgentChanged {
            agent: "a".into(),
            status: paused("logged in")
        }]
    );
    let out = d.send(51, Input::Ready { agent: "a".into() });
    assert_eq!(offers(&out), offer("c2", "a"));
}

#[test]
fn disconnect_during_a_call_keeps_the_call_until_it_ends() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.enqueue(1, "c1", "q", 0);
    d.accept(2, "a", "c1");
    d.send(3, Input::Disconnected { agent: "a".into() });
    assert_eq!(d.status("a"), AgentStatus::Offline);
    assert!(d.end(12, "c1").is_empty());
    let snap = d.engine.snapshot(d.at(13));
    assert_eq!(snap.agents[0].calls_handled, 1);
    assert_eq!(snap.agents[0].talk_time, secs(10));
}

#[test]
fn estimated_wait_is_none_without_agents_and_grows_with_the_queue() {
    let mut d = Desk::new(vec![queue("q", &[("q", 1)], 1)]);
    let now = d.at(0);
    assert_eq!(d.engine.estimated_wait("q", now), None);
    assert_eq!(d.engine.estimated_wait("nope", now), None);
    d.ready_agent(0, "wrong", &[("other", 1)]);
    assert_eq!(d.engine.estimated_wait("q", now), None);
    d.ready_agent(0, "a", &[("q", 1)]);
    assert_eq!(d.engine.estimated_wait("q", now), Some(Duration::ZERO));
    d.send(
        0,
        Input::Pause {
            agent: "a".into(),
            reason: "x".into(),
        },
    );
    let mut last = d.engine.estimated_wait("q", now).expect("agent logged in");
    assert_eq!(last, DEFAULT_HANDLE_TIME);
    for i in 0..5 {
        d.enqueue(1, &format!("c{i}"), "q", 0);
        let ewt = d
            .engine
            .estimated_wait("q", d.at(1))
            .expect("agent logged in");
        assert!(ewt > last, "{ewt:?} after {last:?}");
        last = ewt;
    }
    // More agents, shorter wait.
    d.send(
        2,
        Input::Login {
            agent: profile("b", &[("q", 1)]),
        },
    );
    assert!(d.engine.estimated_wait("q", d.at(2)).expect("agents") < last);
    d.send(3, Input::Logout { agent: "a".into() });
    d.send(3, Input::Logout { agent: "b".into() });
    assert_eq!(d.engine.estimated_wait("q", d.at(3)), None);
}

#[test]
fn invalid_configurations_are_rejected() {
    let base = || queue("q", &[("x", 1)], 1);
    let with = |f: &dyn Fn(&mut QueueConfig)| {
        let mut q = base();
        f(&mut q);
        QueueEngine::new(vec![q, queue("other", &[], 1)]).map(|_| ())
    };
    assert!(matches!(
        QueueEngine::new(vec![base(), base()]),
        Err(QueueError::DuplicateQueue(_))
    ));
    assert!(matches!(
        with(&|q| q.offer_timeout = Duration::ZERO),
        Err(QueueError::ZeroDuration {
            field: "offer_timeout",
            ..
        })
    ));
    assert!(matches!(
        with(&|q| q.max_wait = Duration::ZERO),
        Err(QueueError::ZeroDuration {
            field: "max_wait",
            ..
        })
    ));
    assert!(matches!(
        with(&|q| {
            q.required_skills.insert("y".into(), 11);
        }),
        Err(QueueError::SkillLevelOutOfRange { level: 11, .. })
    ));
    assert!(matches!(
        with(&|q| {
            q.required_skills.insert("y".into(), 0);
        }),
        Err(QueueError::SkillLevelOutOfRange { level: 0, .. })
    ));
    let overflow = |after, to: &str| {
        Some(Overflow {
            after: secs(after),
            to: to.into(),
        })
    };
    assert!(matches!(
        with(&|q| q.overflow = overflow(10, "missing")),
        Err(QueueError::UnknownOverflowTarget { .. })
    ));
    assert!(matches!(
        with(&|q| q.overflow = overflow(10, "q")),
        Err(QueueError::OverflowToItself(_))
    ));
    assert!(matches!(
        with(&|q| q.overflow = overflow(0, "other")),
        Err(QueueError::ZeroDuration {
            field: "overflow.after",
            ..
        })
    ));
    assert!(matches!(
        with(&|q| q.overflow = overflow(300, "other")),
        Err(QueueError::OverflowAfterMaxWait(_))
    ));
    assert!(with(&|q| q.overflow = overflow(299, "other")).is_ok());
    let mut d = Desk::new(vec![base()]);
    let mut bad = queue("new", &[], 1);
    bad.overflow = overflow(10, "nowhere");
    assert!(d.engine.set_queue(bad).is_err());
    assert_eq!(d.engine.queues().count(), 1);
    assert!(matches!(
        d.try_send(
            0,
            Input::Login {
                agent: profile("a", &[("x", 12)])
            }
        ),
        Err(QueueError::SkillLevelOutOfRange { .. })
    ));
}

#[test]
fn set_queue_requalifies_agents_and_routes_on_the_next_timer() {
    let mut d = Desk::new(vec![queue("q", &[("loans", 8)], 1)]);
    d.ready_agent(0, "a", &[("loans", 5)]);
    d.enqueue(1, "c1", "q", 0);
    assert_eq!(d.engine.next_deadline(), Some(d.at(301)));
    let mut easier = queue("q", &[("loans", 5)], 1);
    easier.max_wait = secs(100);
    d.engine.set_queue(easier).expect("valid");
    assert_eq!(d.engine.next_deadline(), Some(d.at(1)), "routing pending");
    let out = d.tick(2);
    assert_eq!(offers(&out), offer("c1", "a"));
    d.reject(3, "a", "c1");
    d.send(
        3,
        Input::Pause {
            agent: "a".into(),
            reason: "x".into(),
        },
    );
    assert_eq!(d.engine.next_deadline(), Some(d.at(101)), "new max wait");
    // A new queue.
    d.engine.set_queue(queue("new", &[], 2)).expect("valid");
    assert_eq!(d.engine.queues().count(), 2);
    d.enqueue(4, "c2", "new", 0);
    assert_eq!(d.engine.position("c2"), Some(("new".into(), 1)));
}

#[test]
fn errors_change_nothing() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.ready_agent(0, "b", &[]);
    d.send(
        0,
        Input::Login {
            agent: profile("p", &[]),
        },
    );
    d.enqueue(1, "c1", "q", 0);
    d.enqueue(1, "c2", "q", 0);
    d.accept(2, "b", "c2");
    d.enqueue(3, "c3", "q", 0);
    let before = d.observe();
    let bad = [
        Input::Login {
            agent: profile("a", &[]),
        },
        Input::Logout {
            agent: "ghost".into(),
        },
        Input::Ready {
            agent: "ghost".into(),
        },
        Input::Ready { agent: "b".into() },
        Input::Pause {
            agent: "b".into(),
            reason: "x".into(),
        },
        Input::Disconnected {
            agent: "ghost".into(),
        },
        Input::Enqueue {
            call: "c1".into(),
            queue: "q".into(),
            priority: 0,
        },
        Input::Enqueue {
            call: "c2".into(),
            queue: "q".into(),
            priority: 0,
        },
        Input::Enqueue {
            call: "c9".into(),
            queue: "nope".into(),
            priority: 0,
        },
        Input::Accept {
            agent: "p".into(),
            call: "c1".into(),
        },
        Input::Accept {
            agent: "a".into(),
            call: "c3".into(),
        },
        Input::Accept {
            agent: "a".into(),
            call: "c2".into(),
        },
        Input::Accept {
            agent: "a".into(),
            call: "c9".into(),
        },
        Input::Reject {
            agent: "b".into(),
            call: "c1".into(),
        },
        Input::Abandon { call: "c2".into() },
        Input::Abandon { call: "c9".into() },
        Input::CallEnded { call: "c1".into() },
        Input::CallEnded { call: "c9".into() },
        Input::WrapUpDone { agent: "a".into() },
        Input::WrapUpDone {
            agent: "ghost".into(),
        },
    ];
    for input in bad {
        let shown = format!("{input:?}");
        assert!(d.try_send(4, input).is_err(), "{shown} should fail");
        assert_eq!(d.observe(), before, "{shown} changed the state");
    }
    assert_eq!(
        d.try_send(
            4,
            Input::Accept {
                agent: "a".into(),
                call: "c2".into()
            }
        ),
        Err(QueueError::NotOffered {
            call: "c2".into(),
            agent: "a".into()
        })
    );
}

#[test]
fn snapshot_counts_and_serializes_milliseconds() {
    let mut d = Desk::new(vec![queue("q", &[], 1)]);
    d.ready_agent(0, "a", &[]);
    d.enqueue(0, "fast", "q", 0);
    d.accept(5, "a", "fast");
    d.enqueue(6, "slow", "q", 0);
    d.enqueue(7, "gone", "q", 0);
    d.enqueue(8, "waiting", "q", 0);
    d.send(
        9,
        Input::Abandon {
            call: "gone".into(),
        },
    );
    d.end(35, "fast");
    d.tick(45);
    d.accept(70, "a", "slow");
    let snap = d.engine.snapshot(d.at(100));
    let q = &snap.queues[0];
    assert_eq!(
        (
            q.enqueued,
            q.offered,
            q.answered,
            q.answered_within_threshold
        ),
        (4, 2, 2, 1)
    );
    assert_eq!((q.abandoned, q.given_up, q.waiting), (1, 0, 1));
    assert_eq!(q.longest_wait, secs(92));
    assert_eq!(q.service_level, Some(100.0 / 3.0));
    assert_eq!(
        (q.agents_qualified, q.agents_busy, q.agents_ready),
        (1, 1, 0)
    );
    let a = &snap.agents[0];
    assert_eq!((a.id.as_str(), a.name.as_str()), ("a", "A"));
    assert_eq!(a.in_status, secs(30));
    assert_eq!(a.talk_time, secs(30));
    let json = serde_json::to_value(&snap).expect("json");
    assert_eq!(json["service_level_threshold_ms"], 20_000);
    assert_eq!(json["queues"][0]["longest_wait_ms"], 92_000);
    assert_eq!(json["queues"][0]["average_handle_time_ms"], 40_000);
    assert_eq!(json["agents"][0]["talk_time_ms"], 30_000);
    assert_eq!(json["agents"][0]["status"]["state"], "on_call");
    assert_eq!(json["agents"][0]["status"]["call"], "slow");
}

/// What the test knows from the outputs alone.
#[derive(Default)]
struct Ledger {
    offered: HashMap<String, String>,
    offer_of_agent: HashMap<String, String>,
    bridged: HashMap<String, String>,
    call_of_agent: HashMap<String, String>,
    waiting: BTreeSet<String>,
    overflowed: BTreeSet<String>,
    queue_of: HashMap<String, usize>,
    finished: HashMap<String, &'static str>,
    status: HashMap<String, AgentStatus>,
}

impl Ledger {
    fn finish(&mut self, call: &str, how: &'static str) {
        self.waiting.remove(call);
        if let Some(prev) = self.finished.insert(call.to_string(), how) {
            panic!("{call} ended twice: {prev} then {how}");
        }
    }

    fn apply(&mut self, out: &[Output]) {
        for o in out {
            match o {
                Output::Offer { call, agent, .. } => {
                    assert!(self.waiting.contains(call), "offer of {call} not waiting");
                    assert!(
                        self.offered.insert(call.clone(), agent.clone()).is_none(),
                        "{call} offered twice"
                    );
                    assert!(
                        self.offer_of_agent
                            .insert(agent.clone(), call.clone())
                            .is_none(),
                        "{agent} has two offers"
                    );
                    assert!(
                        !self.call_of_agent.contains_key(agent),
                        "{agent} is on a call"
                    );
                }
                Output::OfferWithdrawn { call, agent, .. } => {
                    assert_eq!(self.offered.remove(call).as_ref(), Some(agent));
                    assert_eq!(self.offer_of_agent.remove(agent).as_ref(), Some(call));
                }
                Output::Connect { call, agent } => {
                    assert_eq!(self.offered.remove(call).as_ref(), Some(agent));
                    assert_eq!(self.offer_of_agent.remove(agent).as_ref(), Some(call));
                    assert!(
                        self.call_of_agent
                            .insert(agent.clone(), call.clone())
                            .is_none(),
                        "{agent} has two calls"
                    );
                    self.bridged.insert(call.clone(), agent.clone());
                    self.finish(call, "connect");
                }
                Output::GiveUp { call, .. } => {
                    assert!(
                        !self.offered.contains_key(call),
                        "{call} gave up while offered"
                    );
                    self.finish(call, "give up");
                }
                Output::Overflowed { call, .. } => {
                    self.overflowed.insert(call.clone());
                }
                Output::AgentChanged { agent, status } => {
                    if !matches!(status, AgentStatus::OnCall { .. }) {
                        self.call_of_agent.remove(agent);
                    }
                    self.status.insert(agent.clone(), status.clone());
                }
            }
        }
    }
}

fn qualifies(agent: &AgentProfile, q: &QueueConfig) -> bool {
    q.required_skills
        .iter()
        .all(|(s, l)| agent.skills.get(s).is_some_and(|have| have >= l))
}

#[test]
fn randomized_floor_keeps_the_invariants() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let skill_names = ["cards", "loans", "fraud", "fr", "de"];
    let mut queues = Vec::new();
    for i in 0..6 {
        let required = skill_names
            .iter()
            .filter(|_| rng.random_bool(0.35))
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
            .map(|s| (s, rng.random_range(1..=6)))
            .collect();
        queues.push(QueueConfig {
            name: format!("q{i}"),
            required_skills: required,
            priority: rng.random_range(0..4),
            offer_timeout: secs(rng.random_range(5..20)),
            max_wait: secs(rng.random_range(60..400)),
            overflow: None,
            wrap_up: [None, Some(Duration::ZERO), Some(secs(15))][i % 3],
        });
    }
    for (i, q) in queues.iter_mut().take(3).enumerate() {
        q.overflow = Some(Overflow {
            after: secs(30),
            to: format!("q{}", i + 3),
        });
    }
    let profiles: Vec<AgentProfile> = (0..40)
        .map(|i| AgentProfile {
            id: format!("a{i}"),
            name: format!("Agent {i}"),
            skills: skill_names
                .iter()
                .filter(|_| rng.random_bool(0.6))
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .into_iter()
                .map(|s| (s, rng.random_range(1..=10)))
                .collect(),
        })
        .collect();
    let mut engine = QueueEngine::new(queues.clone()).expect("valid");
    let t0 = Instant::now();
    let mut now = t0;
    let mut ledger = Ledger::default();
    let mut next_call = 0;
    let mut errors = 0;
    let mut enqueued_ok = 0;
    for step in 0..20_000 {
        now += Duration::from_millis(rng.random_range(0..3000));
        let agent = &profiles[rng.random_range(0..profiles.len())];
        let id = agent.id.clone();
        let input = match rng.random_range(0..100) {
            0..30 => {
                next_call += 1;
                let q = rng.random_range(0..queues.len());
                Input::Enqueue {
                    call: format!("c{next_call}"),
                    queue: queues[q].name.clone(),
                    priority: rng.random_range(0..3),
                }
            }
            30..35 => Input::Login {
                agent: agent.clone(),
            },
            35..45 => Input::Ready { agent: id },
            45..47 => Input::Pause {
                agent: id,
                reason: "break".into(),
            },
            47..48 => Input::Logout { agent: id },
            48..49 => Input::Disconnected { agent: id },
            49..65 => match ledger.offer_of_agent.iter().next() {
                Some((a, c)) if rng.random_bool(0.85) => Input::Accept {
                    agent: a.clone(),
                    call: c.clone(),
                },
                Some((a, c)) => Input::Reject {
                    agent: a.clone(),
                    call: c.clone(),
                },
                None => Input::Ready { agent: id },
            },
            65..70 => {
                let waiting: Vec<&String> = ledger.waiting.iter().collect();
                match waiting.get(rng.random_range(0..waiting.len().max(1))) {
                    Some(c) => Input::Abandon { call: (*c).clone() },
                    None => Input::Abandon {
                        call: "none".into(),
                    },
                }
            }
            70..85 => {
                let mut bridged: Vec<&String> = ledger.bridged.keys().collect();
                bridged.sort();
                match bridged.get(rng.random_range(0..bridged.len().max(1))) {
                    Some(c) => Input::CallEnded { call: (*c).clone() },
                    None => Input::CallEnded {
                        call: "none".into(),
                    },
                }
            }
            85..90 => Input::WrapUpDone { agent: id },
            _ => {
                let out = engine.on_timer(now);
                ledger.apply(&out);
                check(&engine, &ledger, &queues, &profiles, step);
                continue;
            }
        };
        let (abandon, ended, enqueued) = match &input {
            Input::Abandon { call } => (Some(call.clone()), None, None),
            Input::CallEnded { call } => (None, Some(call.clone()), None),
            Input::Enqueue { call, queue, .. } => (None, None, Some((call.clone(), queue.clone()))),
            _ => (None, None, None),
        };
        match engine.handle(input, now) {
            Ok(out) => {
                if let Some((call, queue)) = enqueued {
                    enqueued_ok += 1;
                    ledger.waiting.insert(call.clone());
                    let q = queues.iter().position(|c| c.name == queue).expect("queue");
                    ledger.queue_of.insert(call, q);
                }
                ledger.apply(&out);
                if let Some(call) = abandon {
                    assert!(!ledger.offered.contains_key(&call), "{call} still offered");
                    ledger.finish(&call, "abandon");
                }
                if let Some(call) = ended {
                    ledger.bridged.remove(&call).expect("bridged");
                }
            }
            Err(_) => errors += 1,
        }
        // Timers due are fired by the service before anything else happens.
        if engine.next_deadline().is_some_and(|d| d <= now) {
            let out = engine.on_timer(now);
            ledger.apply(&out);
        }
        check(&engine, &ledger, &queues, &profiles, step);
    }
    // Let every waiting call run out its max wait.
    let out = engine.on_timer(now + secs(3600));
    ledger.apply(&out);
    assert!(
        ledger.waiting.is_empty(),
        "{:?} still waiting",
        ledger.waiting
    );
    assert_eq!(ledger.finished.len(), enqueued_ok);
    let answered = ledger
        .finished
        .values()
        .filter(|h| **h == "connect")
        .count();
    assert!(answered > 1000, "only {answered} answered");
    assert!(errors < 20_000 / 2, "{errors} errors");
}

/// The ledger agrees with the engine, and no Ready agent could take an unoffered waiting call.
fn check(
    engine: &QueueEngine,
    ledger: &Ledger,
    queues: &[QueueConfig],
    profiles: &[AgentProfile],
    step: usize,
) {
    for p in profiles {
        let status = engine.agent_status(&p.id);
        assert_eq!(status, ledger.status.get(&p.id), "step {step}: {}", p.id);
        if let Some(AgentStatus::Offered { call }) = status {
            assert_eq!(ledger.offered.get(call), Some(&p.id), "step {step}");
        }
    }
    for call in &ledger.waiting {
        assert!(engine.position(call).is_some(), "step {step}: {call} lost");
        if ledger.offered.contains_key(call) {
            continue;
        }
        let q = ledger.queue_of[call];
        let mut eligible = vec![&queues[q]];
        if ledger.overflowed.contains(call)
            && let Some(o) = &queues[q].overflow
        {
            eligible.extend(queues.iter().find(|c| c.name == o.to));
        }
        for p in profiles {
            if engine.agent_status(&p.id) == Some(&AgentStatus::Ready) {
                assert!(
                    !eligible.iter().any(|q| qualifies(p, q)),
                    "step {step}: {} is Ready and {call} waits",
                    p.id
                );
            }
        }
    }
}
