//! The interpreter on the sample flows, without NLU: scripted turns with the intents and entities
//! an NLU would produce, and a thousand random calls per flow checked against the invariants.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use dialog_flows::ast::{Action, FieldType, SlotType};
use dialog_flows::{Call, CallAction, Entities, Event, Flow, FlowRegistry, Listen, Utterance};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn flows_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("flows")
}

fn load(name: &str) -> Arc<Flow> {
    let p = flows_dir().join(name);
    Arc::new(dialog_flows::load(&p).unwrap_or_else(|e| panic!("{e}")))
}

fn now() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 25)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("valid time")
}

fn lead(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("lead must be an object"),
    }
}

fn reminder_lead() -> serde_json::Map<String, serde_json::Value> {
    lead(serde_json::json!({
        "first_name": "Ana", "amount_due": 120.5, "due_date": "2026-12-01",
        "card_number": "4111111111114217"
    }))
}

fn said(actions: &[CallAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Speak(s) => Some(s.text.clone()),
            _ => None,
        })
        .collect()
}

fn intent(name: &str) -> Event {
    Event::Utterance(Utterance {
        text: name.replace('_', " "),
        intent: Some(name.to_string()),
        confidence: 0.9,
        ..Utterance::default()
    })
}

fn yes_no(yes: bool) -> Event {
    Event::Utterance(Utterance {
        text: if yes { "yes" } else { "no" }.into(),
        entities: Entities {
            yes_no: Some(yes),
            ..Entities::default()
        },
        ..Utterance::default()
    })
}

fn date(d: NaiveDate) -> Event {
    Event::Utterance(Utterance {
        text: d.to_string(),
        entities: Entities {
            date: Some(d),
            ..Entities::default()
        },
        ..Utterance::default()
    })
}

#[test]
fn disclosures_come_first_then_the_question() {
    let flow = load("card_payment_reminder.yaml");
    let (call, actions) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    let texts = said(&actions);
    assert_eq!(texts[0], "Hello, this is Northwind Bank.");
    assert_eq!(texts[1], "I'm an automated assistant.");
    assert_eq!(texts[2], "This call is recorded.");
    assert_eq!(texts[3], "This message is for Ana.");
    assert_eq!(texts[4], "Am I speaking with Ana?");
    assert!(matches!(actions.last(), Some(CallAction::Listen(l)) if l.step == "confirm_identity"));
    assert_eq!(call.current_step(), Some("confirm_identity"));
}

#[test]
fn promise_with_a_confirmed_date() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    let a = call.handle(yes_no(true), now());
    let texts = said(&a);
    assert_eq!(
        texts,
        vec![
            "Your card ending in four two one seven has a payment of one hundred twenty dollars and fifty cents due on Tuesday, December first. Can you pay it today?"
        ]
    );
    call.handle(intent("pay_later"), now());
    assert_eq!(call.current_step(), Some("ask_date"));
    // Too far away: rejected with the flow's message and asked again.
    let far = NaiveDate::from_ymd_opt(2027, 1, 30).expect("date");
    let a = call.handle(date(far), now());
    assert_eq!(
        said(&a)[0],
        "I can only note a date within the next two weeks."
    );
    assert_eq!(call.current_step(), Some("ask_date"));
    let d = NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
    let a = call.handle(date(d), now());
    assert_eq!(
        said(&a),
        vec!["So you'll pay on Friday, November twenty-seventh. Is that right?"]
    );
    assert!(matches!(a.last(), Some(CallAction::Listen(l)) if l.confirming));
    // Not yet stored: the confirmation is pending.
    assert!(call.slots().get("pay_date").is_none());
    call.handle(yes_no(true), now());
    assert_eq!(call.outcome(), Some("promise_to_pay"));
    assert_eq!(
        call.slots()
            .get("pay_date")
            .map(ToString::to_string)
            .as_deref(),
        Some("2026-11-27")
    );
    assert_eq!(
        call.path(),
        [
            "greet",
            "confirm_identity",
            "remind",
            "ask_date",
            "promise_later"
        ]
    );
}

#[test]
fn a_no_at_confirmation_asks_again() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    call.handle(yes_no(true), now());
    call.handle(yes_no(false), now());
    assert_eq!(call.current_step(), Some("ask_date"));
    call.handle(
        date(NaiveDate::from_ymd_opt(2026, 11, 30).expect("date")),
        now(),
    );
    let a = call.handle(yes_no(false), now());
    assert_eq!(said(&a), vec!["When will you be able to pay?"]);
    assert!(call.slots().is_empty());
}

#[test]
fn barge_in_over_a_disclosure_repeats_it_before_anything_else() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, actions) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    let recording_id = actions
        .iter()
        .find_map(|a| match a {
            CallAction::Speak(s) if s.disclosure.as_deref() == Some("recording") => Some(s.id),
            _ => None,
        })
        .expect("recording notice spoken");
    call.handle(
        Event::BargeIn {
            unheard: vec![recording_id],
        },
        now(),
    );
    assert!(!call.delivered_disclosures().contains("recording"));
    let a = call.handle(yes_no(true), now());
    let texts = said(&a);
    assert_eq!(texts[0], "This call is recorded.");
    assert!(texts[1].starts_with("Your card ending in"));
    assert!(call.delivered_disclosures().contains("recording"));
}

#[test]
fn who_is_this_answers_and_resumes_the_question() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    let a = call.handle(intent("who_is_this"), now());
    assert_eq!(
        said(&a),
        vec![
            "This is Northwind Bank's automated assistant calling about your credit card.",
            "Am I speaking with Ana?"
        ]
    );
    assert_eq!(call.current_step(), Some("confirm_identity"));
}

#[test]
fn stop_calling_adds_to_dnc_on_any_step() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    call.handle(yes_no(true), now());
    let a = call.handle(intent("stop_calling"), now());
    assert!(a.iter().any(|x| matches!(x, CallAction::AddDnc { .. })));
    assert_eq!(call.outcome(), Some("opted_out"));
}

#[test]
fn no_input_reprompts_then_escalates() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    let a = call.handle(Event::NoInput, now());
    assert_eq!(
        said(&a),
        vec!["Sorry, I didn't hear anything.", "Am I speaking with Ana?"]
    );
    let a = call.handle(Event::NoInput, now());
    assert_eq!(said(&a), vec!["We'll try again later. Goodbye."]);
    assert_eq!(call.outcome(), Some("no_response"));
}

#[test]
fn transfer_carries_the_conversation_and_falls_back_when_no_agent() {
    let flow = load("collections.yaml");
    let l = lead(serde_json::json!({
        "first_name": "Ben", "balance": 950, "minimum_payment": 50, "days_overdue": 75,
        "account_last4": "0042"
    }));
    let (mut call, _) = Call::start(flow, &l, now()).expect("lead fits");
    call.handle(yes_no(true), now());
    call.handle(Event::Dtmf("0042#".into()), now());
    assert_eq!(
        call.current_step(),
        Some("firm_notice"),
        "75 days overdue is the firm stage"
    );
    let a = call.handle(intent("hardship"), now());
    let summary = a
        .iter()
        .find_map(|x| match x {
            CallAction::Transfer(t) => Some(t.clone()),
            _ => None,
        })
        .expect("transferred");
    assert_eq!(summary.queue, "hardship");
    assert_eq!(summary.priority, 2);
    assert!(
        summary.reason.contains("nine hundred fifty dollars"),
        "{}",
        summary.reason
    );
    assert_eq!(summary.slots.get("last4").map(String::as_str), Some("0042"));
    assert!(summary.intents.contains(&"hardship".to_string()));
    assert!(summary.transcript.iter().any(|l| l.text == "[keys 0042#]"));
    assert!(call.is_transferred());
    let a = call.handle(
        Event::TransferFailed {
            reason: "queue timeout".into(),
        },
        now(),
    );
    assert_eq!(
        said(&a),
        vec!["When would be a better time to call you back?"]
    );
    assert!(!call.is_finished());
}

#[test]
fn wrong_account_digits_twice_fail_verification() {
    let flow = load("collections.yaml");
    let l = lead(serde_json::json!({
        "first_name": "Ben", "balance": 950, "minimum_payment": 50, "days_overdue": 10,
        "account_last4": "0042"
    }));
    let (mut call, _) = Call::start(flow, &l, now()).expect("lead fits");
    call.handle(yes_no(true), now());
    let a = call.handle(Event::Dtmf("1111#".into()), now());
    assert_eq!(
        said(&a)[0],
        "That doesn't match our records. Let's try once more."
    );
    // Three digits: not a valid entry at all.
    let a = call.handle(Event::Dtmf("123#".into()), now());
    assert_eq!(said(&a)[0], "That should be four digits.");
    call.handle(Event::Dtmf("9999#".into()), now());
    assert_eq!(call.outcome(), Some("verification_failed"));
}

#[test]
fn webhook_result_or_failure_picks_the_path() {
    let flow = load("fraud_verification.yaml");
    let l = lead(serde_json::json!({
        "first_name": "Cara", "card_number": "5500000000000004", "merchant": "Acme Electronics",
        "amount": 899.99, "transaction_time": "2026-11-24T21:15", "card_id": "c-77"
    }));
    for ok in [true, false] {
        let (mut call, _) = Call::start(Arc::clone(&flow), &l, now()).expect("lead fits");
        call.handle(yes_no(true), now());
        let a = call.handle(intent("deny_transaction"), now());
        let req = a
            .iter()
            .find_map(|x| match x {
                CallAction::Webhook(w) => Some(w.clone()),
                _ => None,
            })
            .expect("webhook called");
        assert_eq!(req.url, "http://127.0.0.1:8089/cards/c-77/block");
        assert_eq!(req.method, "POST");
        assert_eq!(req.timeout_ms, 3000);
        let result = if ok {
            Ok(serde_json::json!({"blocked": true}))
        } else {
            Err("timeout".to_string())
        };
        let a = call.handle(Event::WebhookResult { id: req.id, result }, now());
        let t = a
            .iter()
            .find_map(|x| match x {
                CallAction::Transfer(t) => Some(t.clone()),
                _ => None,
            })
            .expect("transferred");
        assert_eq!(t.priority, if ok { 1 } else { 0 });
        assert_eq!(t.reason.contains("FAILED"), !ok);
        if ok {
            assert_eq!(
                call.vars()
                    .get("block")
                    .and_then(|b| b.field("blocked"))
                    .map(ToString::to_string)
                    .as_deref(),
                Some("yes")
            );
        }
    }
}

#[test]
fn a_lead_that_does_not_fit_is_rejected_with_every_problem() {
    let flow = load("card_payment_reminder.yaml");
    let bad =
        lead(serde_json::json!({"first_name": "Ana", "amount_due": "lots", "due_date": "1st Dec"}));
    let e = Call::start(flow, &bad, now()).expect_err("bad lead");
    let msg = e.to_string();
    assert!(msg.contains("`amount_due`"), "{msg}");
    assert!(msg.contains("`due_date`"), "{msg}");
    assert!(msg.contains("`card_number` is required"), "{msg}");
}

#[test]
fn a_call_keeps_the_version_it_started_with() {
    let path = flows_dir().join("card_payment_reminder.yaml");
    let src = std::fs::read_to_string(&path).expect("read");
    let v1 = dialog_flows::load_str(&src, &path).expect("v1");
    let v2_src = src.replace("version: 1", "version: 2").replace(
        "Am I speaking with {{lead.first_name}}?",
        "Is this {{lead.first_name}}?",
    );
    let v2 = dialog_flows::load_str(&v2_src, &path).expect("v2");
    let mut reg = FlowRegistry::default();
    reg.add(v1).expect("add v1");
    reg.add(v2).expect("add v2");
    assert!(
        reg.add(dialog_flows::load_str(&src, &path).expect("again"))
            .is_err(),
        "a version is immutable"
    );
    let old = reg.active("card_payment_reminder").expect("active");
    assert_eq!(old.version, 1);
    let (mut call, _) = Call::start(old, &reminder_lead(), now()).expect("lead fits");
    reg.activate("card_payment_reminder", 2).expect("activate");
    let (_, fresh) = Call::start(
        reg.active("card_payment_reminder").expect("v2"),
        &reminder_lead(),
        now(),
    )
    .expect("fits");
    assert!(said(&fresh).contains(&"Is this Ana?".to_string()));
    // The call in progress still runs version 1.
    let a = call.handle(Event::NoInput, now());
    assert!(said(&a).contains(&"Am I speaking with Ana?".to_string()));
    assert_eq!(call.flow().version, 1);
}

// ---- A thousand random calls per flow -------------------------------------------------------

fn dummy_lead(flow: &Flow, rng: &mut StdRng) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for (name, decl) in &flow.lead {
        let v = match decl.ty {
            FieldType::Text => serde_json::json!(format!("text {}", rng.random_range(0..100))),
            FieldType::Number => serde_json::json!(rng.random_range(0..120)),
            FieldType::Amount => serde_json::json!(rng.random_range(1..5000) as f64 + 0.25),
            FieldType::Date => serde_json::json!(format!("2026-12-{:02}", rng.random_range(1..29))),
            FieldType::DateTime => serde_json::json!("2026-11-24T21:15"),
            FieldType::Digits => serde_json::json!(format!("{:04}", rng.random_range(0..10000))),
            FieldType::Bool => serde_json::json!(rng.random_bool(0.5)),
        };
        if decl.required || rng.random_bool(0.5) {
            m.insert(name.clone(), v);
        }
    }
    m
}

fn random_answer(
    flow: &Flow,
    listen: &Listen,
    rng: &mut StdRng,
    lead: &serde_json::Map<String, serde_json::Value>,
) -> Event {
    let today = now().date();
    let mut e = Entities::default();
    let mut intent = None;
    match rng.random_range(0..10) {
        0 => return Event::NoInput,
        1 => {
            // Garbage: no intent, no entities (a no-match).
        }
        2 | 3 if !listen.intents.is_empty() => {
            intent = Some(listen.intents[rng.random_range(0..listen.intents.len())].clone());
        }
        4 => {
            let names: Vec<&String> = flow.intents.keys().collect();
            intent = Some(names[rng.random_range(0..names.len())].clone());
        }
        5 => return Event::Dtmf(format!("{}#", rng.random_range(0..10000))),
        _ => {
            e.yes_no = Some(rng.random_bool(0.6));
            match listen.slot {
                Some(SlotType::Date) => {
                    e.date =
                        today.checked_add_signed(chrono::Duration::days(rng.random_range(-3..20)))
                }
                Some(SlotType::DateTime) => {
                    e.datetime = today.and_hms_opt(rng.random_range(8..20), 0, 0)
                }
                Some(SlotType::Amount) => e.amount = Some(rng.random_range(0..3000) as f64),
                Some(SlotType::Number) => e.number = Some(rng.random_range(-2..14) as f64),
                Some(SlotType::Digits) => {
                    // Often the right answer (from the lead), sometimes not.
                    e.digits = if rng.random_bool(0.5) {
                        lead.values().find_map(|v| {
                            v.as_str()
                                .filter(|s| s.len() == 4 && s.chars().all(|c| c.is_ascii_digit()))
                                .map(str::to_string)
                        })
                    } else {
                        Some(format!("{}", rng.random_range(0..100000)))
                    }
                }
                Some(SlotType::Choice) if !listen.choices.is_empty() => {
                    e.choice = Some(
                        listen.choices[rng.random_range(0..listen.choices.len())]
                            .0
                            .clone(),
                    );
                }
                _ => {}
            }
        }
    }
    Event::Utterance(Utterance {
        text: format!("random {}", rng.random_range(0..1000)),
        confidence: if intent.is_some() {
            rng.random_range(0.3..1.0)
        } else {
            0.1
        },
        intent,
        entities: e,
        sentiment: rng.random_range(-1.0..1.0),
        escalate: rng.random_bool(0.03),
    })
}

/// Runs `calls` random calls and checks: every call finishes on its own with an outcome or a
/// transfer; every non-disclosure speech is preceded by all disclosures, heard; no step reprompts
/// more often than its retry limit allows.
fn simulate(file: &str, calls: usize, seed: u64) {
    let flow = load(file);
    let required: Vec<String> = flow.disclosures.iter().map(|d| d.name.clone()).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for c in 0..calls {
        let lead_map = dummy_lead(&flow, &mut rng);
        let (mut call, mut actions) =
            Call::start(Arc::clone(&flow), &lead_map, now()).expect("dummy lead fits");
        let mut heard: std::collections::BTreeSet<String> = Default::default();
        let mut disclosure_of: std::collections::HashMap<u64, String> = Default::default();
        let mut last_spoken: Vec<u64> = Vec::new();
        let mut listen: Option<Listen> = None;
        let mut webhook = None;
        // Consecutive failed turns (no-input / no-match) at the same step.
        let mut fails_at: (String, u32) = (String::new(), 0);
        let mut events = 0;
        loop {
            let mut fresh = true;
            for a in &actions {
                match a {
                    CallAction::Speak(s) => {
                        if fresh {
                            last_spoken.clear();
                            fresh = false;
                        }
                        last_spoken.push(s.id);
                        match &s.disclosure {
                            Some(d) => {
                                heard.insert(d.clone());
                                disclosure_of.insert(s.id, d.clone());
                            }
                            None => {
                                for r in &required {
                                    assert!(
                                        heard.contains(r),
                                        "call {c}: `{}` said before disclosure `{r}` (path {:?})",
                                        s.text,
                                        call.path()
                                    );
                                }
                            }
                        }
                    }
                    CallAction::Listen(l) => listen = Some(l.clone()),
                    CallAction::Webhook(w) => webhook = Some(w.id),
                    CallAction::Transfer(_) => {
                        for r in &required {
                            assert!(
                                heard.contains(r),
                                "call {c}: transfer before disclosure `{r}`"
                            );
                        }
                    }
                    _ => {}
                }
            }
            if call.is_finished() && !(call.is_transferred() && rng.random_bool(0.3)) {
                break;
            }
            events += 1;
            assert!(
                events < 400,
                "call {c} never finished: path {:?}",
                call.path()
            );
            let before = call.current_step().unwrap_or("").to_string();
            let event = if call.is_transferred() {
                Event::TransferFailed {
                    reason: "no agent".into(),
                }
            } else if let Some(id) = webhook.take() {
                if rng.random_bool(0.5) {
                    Event::WebhookResult {
                        id,
                        result: Ok(serde_json::json!({"ok": true})),
                    }
                } else {
                    Event::WebhookResult {
                        id,
                        result: Err("timeout".into()),
                    }
                }
            } else if rng.random_bool(0.08) && !last_spoken.is_empty() {
                let unheard: Vec<u64> = last_spoken
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.7))
                    .collect();
                for id in &unheard {
                    if let Some(d) = disclosure_of.get(id) {
                        heard.remove(d);
                    }
                }
                Event::BargeIn { unheard }
            } else {
                let l = listen.clone().expect("a waiting call has listened");
                random_answer(&flow, &l, &mut rng, &lead_map)
            };
            let is_fail_candidate = matches!(event, Event::NoInput);
            actions = call.handle(event, now());
            // Retry limits: consecutive no-inputs at one step never exceed max + 1.
            let after = call.current_step().unwrap_or("").to_string();
            if is_fail_candidate && after == before {
                if fails_at.0 == before {
                    fails_at.1 += 1;
                } else {
                    fails_at = (before.clone(), 1);
                }
                if let Some(step) = flow.step(&before)
                    && let Action::Ask(a) = &step.action
                {
                    assert!(
                        fails_at.1 <= a.no_input.max,
                        "call {c}: {} no-inputs at `{before}` (max {})",
                        fails_at.1,
                        a.no_input.max
                    );
                }
            } else if after != before || !is_fail_candidate {
                fails_at = (String::new(), 0);
            }
        }
        let outcome = call
            .outcome()
            .expect("a finished call has an outcome")
            .to_string();
        *outcomes.entry(outcome).or_default() += 1;
    }
    // The random callers reach several different outcomes, not one (all of them in a flow with
    // fewer than three, such as the generic inbound flow).
    let possible: std::collections::BTreeSet<&str> = flow
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::End { outcome } => Some(outcome.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        outcomes.len() >= possible.len().min(3),
        "{file}: outcomes {outcomes:?} of {possible:?}"
    );
    println!("{file}: {outcomes:?}");
}

#[test]
fn a_thousand_random_calls_per_sample_flow_keep_the_invariants() {
    for (i, f) in dialog_flows::flow_files(&flows_dir())
        .expect("flows dir")
        .iter()
        .enumerate()
    {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        simulate(&name, 1000, 7 + i as u64);
    }
}

#[test]
fn an_opt_out_wins_over_an_angry_tone_and_over_the_step() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    call.handle(yes_no(true), now());
    let a = call.handle(
        Event::Utterance(Utterance {
            text: "stop calling me you idiots".into(),
            intent: Some("stop_calling".into()),
            confidence: 0.8,
            sentiment: -0.9,
            escalate: true,
            ..Utterance::default()
        }),
        now(),
    );
    assert!(
        a.iter().any(|x| matches!(x, CallAction::AddDnc { .. })),
        "{a:?}"
    );
    assert!(!a.iter().any(|x| matches!(x, CallAction::Transfer(_))));
    assert_eq!(call.outcome(), Some("opted_out"));
}

#[test]
fn an_upset_caller_is_handed_to_a_person() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    call.handle(yes_no(true), now());
    let a = call.handle(
        Event::Utterance(Utterance {
            text: "this is outrageous".into(),
            sentiment: -0.8,
            escalate: true,
            ..Utterance::default()
        }),
        now(),
    );
    assert!(
        a.iter()
            .any(|x| matches!(x, CallAction::Transfer(t) if t.queue == "collections"))
    );
    assert!(call.is_transferred());
    assert_eq!(call.outcome(), Some("transferred:collections"));
}

#[test]
fn a_low_confidence_intent_is_a_no_match() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, _) = Call::start(flow, &reminder_lead(), now()).expect("lead fits");
    call.handle(yes_no(true), now());
    let a = call.handle(
        Event::Utterance(Utterance {
            text: "maybe I'll pay".into(),
            intent: Some("will_pay_today".into()),
            confidence: 0.2,
            ..Utterance::default()
        }),
        now(),
    );
    assert_eq!(said(&a)[0], "Sorry, I didn't understand.");
    assert_eq!(call.current_step(), Some("remind"));
}

#[test]
fn an_answering_machine_gets_the_disclosures_and_the_voicemail_message() {
    let flow = load("card_payment_reminder.yaml");
    let (mut call, greeting) = Call::start(flow, &reminder_lead(), now()).expect("lead is valid");
    assert!(!greeting.is_empty());
    let actions = call.answering_machine(now());
    let texts = said(&actions);
    assert_eq!(
        texts.len(),
        4,
        "three disclosures and the message: {texts:?}"
    );
    assert!(texts[0].contains("Northwind Bank"), "{texts:?}");
    assert!(texts[3].contains("This message is for Ana"), "{texts:?}");
    assert!(texts[3].contains("one eight zero zero"), "{texts:?}");
    assert!(
        matches!(actions.last(), Some(CallAction::End { outcome }) if outcome == "voicemail_left")
    );
    assert_eq!(call.outcome(), Some("voicemail_left"));
    assert_eq!(
        call.path().last().map(String::as_str),
        Some(dialog_flows::VOICEMAIL_STEP)
    );
    assert!(
        call.answering_machine(now()).is_empty(),
        "a finished call does nothing more"
    );
}

#[test]
fn without_a_voicemail_message_a_machine_ends_the_call() {
    let flow = load("collections.yaml");
    assert!(flow.voicemail.is_none());
    let lead = lead(serde_json::json!({
        "first_name": "Ben", "balance": 950, "minimum_payment": 50, "days_overdue": 20,
        "account_last4": "0042"
    }));
    let (mut call, _) = Call::start(flow, &lead, now()).expect("lead is valid");
    let actions = call.answering_machine(now());
    assert_eq!(
        actions,
        vec![CallAction::End {
            outcome: "machine".into()
        }]
    );
}
