//! Robustness: whatever text comes in, loading never panics, and any flow that loads can be run
//! with random events without panicking and always finishes when the caller hangs up.
//!
//! (a) arbitrary strings; (b) structure-aware random YAML built from the flow language's real keys,
//! step names, targets, templates and expressions; (c) mutations of the shipped flow files.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{NaiveDate, NaiveDateTime};
use dialog_flows::ast::{Action, FieldType};
use dialog_flows::{Call, CallAction, Entities, Event, Flow, Utterance};
use proptest::prelude::*;

/// `cases` per property; `FUZZ_CASES=N` runs N instead (for a longer hunt).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn load(src: &str) -> Option<Flow> {
    dialog_flows::load_str(src, Path::new("fuzz.yaml")).ok()
}

// ---------------------------------------------------------------------------------------------
// Running a flow that loaded.

fn t0() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, 25)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .expect("a valid time")
}

/// A lead that satisfies the flow's lead schema: a typed dummy value per field.
fn dummy_lead(flow: &Flow) -> serde_json::Map<String, serde_json::Value> {
    flow.lead
        .iter()
        .map(|(name, decl)| {
            let v = match decl.ty {
                FieldType::Text => serde_json::json!("Ana"),
                FieldType::Number => serde_json::json!(42),
                FieldType::Amount => serde_json::json!(1234.5),
                FieldType::Date => serde_json::json!("2026-12-01"),
                FieldType::DateTime => serde_json::json!("2026-12-01T14:30"),
                FieldType::Digits => serde_json::json!("4111111111114217"),
                FieldType::Bool => serde_json::json!(true),
            };
            (name.clone(), v)
        })
        .collect()
}

/// An event, with indexes that are resolved against the flow being run.
#[derive(Debug, Clone)]
enum Ev {
    Utterance {
        intent: Option<usize>,
        confidence: f32,
        yes_no: Option<bool>,
        days: Option<i64>,
        minutes: Option<i64>,
        amount: Option<f64>,
        number: Option<f64>,
        digits: Option<String>,
        choice: Option<usize>,
        sentiment: f32,
        escalate: bool,
        text: String,
    },
    NoInput,
    Dtmf(String),
    BargeIn(Vec<u64>),
    /// Answer the pending webhook (or a made-up id when `stale`).
    Webhook {
        ok: Option<serde_json::Value>,
        stale: bool,
    },
    TransferFailed,
    ColdTransferFailed,
    HangUp,
}

fn ev() -> impl Strategy<Value = Ev> {
    let json = prop_oneof![
        Just(serde_json::json!(null)),
        Just(serde_json::json!(12.5)),
        Just(serde_json::json!("ok")),
        Just(serde_json::json!({"balance": 10, "status": "open", "nested": {"a": [1, 2]}})),
        Just(serde_json::json!([1, "two", false])),
    ];
    let utterance = (
        (
            proptest::option::of(0usize..64),
            0.0f32..1.0,
            proptest::option::of(any::<bool>()),
            proptest::option::of(-400i64..400),
            proptest::option::of(-3000i64..3000),
        ),
        (
            proptest::option::of(prop_oneof![-1e6f64..1e6, Just(0.0), Just(f64::MAX)]),
            proptest::option::of(-100f64..1e4),
            proptest::option::of("[0-9]{0,20}"),
            proptest::option::of(0usize..32),
            -1.0f32..1.0,
            any::<bool>(),
            "[a-z ]{0,20}",
        ),
    )
        .prop_map(
            |(
                (intent, confidence, yes_no, days, minutes),
                (amount, number, digits, choice, sentiment, escalate, text),
            )| Ev::Utterance {
                intent,
                confidence,
                yes_no,
                days,
                minutes,
                amount,
                number,
                digits,
                choice,
                sentiment,
                escalate,
                text,
            },
        );
    prop_oneof![
        6 => utterance,
        2 => Just(Ev::NoInput),
        2 => "[0-9*#A-D]{0,12}".prop_map(Ev::Dtmf),
        1 => proptest::collection::vec(0u64..40, 0..4).prop_map(Ev::BargeIn),
        2 => (proptest::option::of(json), any::<bool>())
            .prop_map(|(ok, stale)| Ev::Webhook { ok, stale }),
        1 => Just(Ev::TransferFailed),
        1 => Just(Ev::ColdTransferFailed),
        1 => Just(Ev::HangUp),
    ]
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    proptest::collection::vec(ev(), 0..30)
}

/// Start a call on `flow` and feed it `events`, then hang up. Checks that nothing panics, that a
/// finished call stays silent, and that after a hang-up the call is finished.
fn run(flow: Flow, events: &[Ev]) {
    let intents: Vec<String> = flow
        .intents
        .keys()
        .cloned()
        .chain(["yes".to_string(), "no".to_string(), "nonsense".to_string()])
        .collect();
    let choices: Vec<String> = flow
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Ask(a) => a.slot.as_ref(),
            _ => None,
        })
        .flat_map(|sl| sl.options.iter().map(|o| o.name.clone()))
        .chain(["not_an_option".to_string()])
        .collect();
    let lead = dummy_lead(&flow);
    let mut now = t0();
    let (mut call, out) = match Call::start(Arc::new(flow), &lead, now) {
        Ok(started) => started,
        Err(e) => panic!("a lead with a dummy value for every field was refused: {e}"),
    };
    let mut webhook = pending_webhook(&out, None);
    for e in events {
        now += chrono::Duration::seconds(7);
        let was_ended = call.is_finished() && !call.is_transferred();
        let event = match e {
            Ev::Utterance {
                intent,
                confidence,
                yes_no,
                days,
                minutes,
                amount,
                number,
                digits,
                choice,
                sentiment,
                escalate,
                text,
            } => Event::Utterance(Utterance {
                text: text.clone(),
                intent: intent.map(|i| intents[i % intents.len()].clone()),
                confidence: *confidence,
                entities: Entities {
                    yes_no: *yes_no,
                    date: days.map(|d| now.date() + chrono::Duration::days(d)),
                    time: minutes.map(|m| (now + chrono::Duration::minutes(m)).time()),
                    datetime: minutes.map(|m| now + chrono::Duration::minutes(m * 60)),
                    amount: *amount,
                    number: *number,
                    digits: digits.clone(),
                    choice: choice.map(|c| choices[c % choices.len()].clone()),
                },
                sentiment: *sentiment,
                escalate: *escalate,
            }),
            Ev::NoInput => Event::NoInput,
            Ev::Dtmf(keys) => Event::Dtmf(keys.clone()),
            Ev::BargeIn(ids) => Event::BargeIn {
                unheard: ids.clone(),
            },
            Ev::Webhook { ok, stale } => Event::WebhookResult {
                id: match (webhook, stale) {
                    (Some(id), false) => id,
                    (Some(id), true) => id + 1000,
                    (None, _) => 1,
                },
                result: ok.clone().ok_or_else(|| "timed out".to_string()),
            },
            Ev::TransferFailed => Event::TransferFailed {
                reason: "no agent".into(),
            },
            Ev::ColdTransferFailed => Event::ColdTransferFailed {
                reason: "603 Decline".into(),
            },
            Ev::HangUp => Event::HangUp,
        };
        let hang_up = matches!(event, Event::HangUp);
        let out = call.handle(event, now);
        if was_ended {
            assert!(out.is_empty(), "an ended call still acted: {out:?}");
        }
        if hang_up {
            assert!(call.is_finished(), "not finished after a hang-up");
        }
        webhook = pending_webhook(&out, webhook);
    }
    call.handle(Event::HangUp, now + chrono::Duration::seconds(1));
    assert!(call.is_finished(), "not finished after a hang-up");
    assert!(call.current_step().is_none() || call.is_transferred());
}

fn pending_webhook(out: &[CallAction], prev: Option<u64>) -> Option<u64> {
    out.iter()
        .rev()
        .find_map(|a| match a {
            CallAction::Webhook(w) => Some(w.id),
            _ => None,
        })
        .or(prev)
}

// ---------------------------------------------------------------------------------------------
// (a) Arbitrary text.

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_strings_never_panic(src in any::<String>()) {
        let _ = load(&src);
    }

    #[test]
    fn yaml_punctuation_soup_never_panics(src in "[a-z_:{}\\[\\],\\-|>'\" \n\t#&*!0-9.%@`]{0,300}") {
        let _ = load(&src);
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Structure-aware random YAML.

/// A YAML value to render.
#[derive(Debug, Clone)]
enum Y {
    /// Rendered plain when that is safe, quoted otherwise.
    S(String),
    L(Vec<Y>),
    M(Vec<(String, Y)>),
}

const KEYS: &[&str] = &[
    // top level
    "flow",
    "version",
    "language",
    "description",
    "currency",
    "bank",
    "lead",
    "compliance",
    "settings",
    "intents",
    "handlers",
    "start",
    "steps", // steps
    "say",
    "disclose",
    "ask",
    "collect",
    "type",
    "min",
    "max",
    "length",
    "options",
    "confirm",
    "invalid",
    "expect",
    "dtmf",
    "no_match",
    "no_input",
    "timeout",
    "hints",
    "next",
    "branch",
    "set",
    "webhook",
    "on_failure",
    "send_dtmf",
    "transfer",
    "callback",
    "dnc",
    "end",
    // inside actions and settings
    "reprompt",
    "then",
    "if",
    "else",
    "url",
    "method",
    "body",
    "save_as",
    "queue",
    "priority",
    "reason",
    "on_no_agent",
    "to",
    "script",
    "at",
    "note",
    "outcome",
    "disclosures",
    "required",
    "phrases",
    "max_digits",
    "terminator",
    "no_input_timeout",
    "min_confidence",
    "max_turns",
    "yes",
    "no",
    // handlers
    "agent_request",
    "stop_calling",
    "who_is_this",
    "call_me_later",
    "negative_sentiment",
    // names
    "greet",
    "ask_amount",
    "confirm_date",
    "bye",
    "opt_out",
    "agent",
    "route",
    "identity",
    "first_name",
    "amount_due",
    "pay_now",
    "resume",
    "x",
];

const STEPS: &[&str] = &[
    "greet",
    "ask_amount",
    "confirm_date",
    "bye",
    "opt_out",
    "agent",
    "route",
    "resume",
    "nowhere",
];

fn render(y: &Y, indent: usize, out: &mut String) {
    match y {
        Y::S(s) => {
            out.push(' ');
            out.push_str(&scalar(s));
            out.push('\n');
        }
        Y::L(items) if items.is_empty() => out.push_str(" []\n"),
        Y::M(items) if items.is_empty() => out.push_str(" {}\n"),
        Y::L(items) => {
            out.push('\n');
            for it in items {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                render(it, indent + 2, out);
            }
        }
        Y::M(items) => {
            out.push('\n');
            for (k, v) in items {
                out.push_str(&" ".repeat(indent));
                out.push_str(&scalar(k));
                out.push(':');
                render(v, indent + 2, out);
            }
        }
    }
}

fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_. +-<>=/*()".contains(c))
        && !s.starts_with(['-', ' '])
        && !s.ends_with(' ');
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serialises")
    }
}

fn document(y: &Y) -> String {
    let mut out = String::new();
    match y {
        Y::M(items) => {
            for (k, v) in items {
                out.push_str(&scalar(k));
                out.push(':');
                render(v, 2, &mut out);
            }
        }
        other => render(other, 0, &mut out),
    }
    out
}

/// Names a template or condition may use: the ones the flow-shaped documents declare.
fn good_name() -> impl Strategy<Value = String> {
    proptest::sample::select(
        &[
            "lead.first_name",
            "lead.amount_due",
            "lead.due_date",
            "bank.name",
            "today",
            "now",
        ][..],
    )
    .prop_map(str::to_string)
}

/// Any name: declared, undeclared, malformed.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => good_name(),
        2 => proptest::sample::select(&[
            "slots.amount",
            "slots.pay_date",
            "vars.total",
            "lead.missing",
            "customer.name",
            "lead",
            "slots.amount.x",
            "bank.name.x",
        ][..])
        .prop_map(str::to_string),
        1 => "[a-z.]{0,12}",
    ]
}

const FILTERS: &[&str] = &[
    "money", "date", "time", "digits", "card", "number", "ordinal",
];

fn placeholders(
    name: impl Strategy<Value = String>,
    filter: impl Strategy<Value = String>,
    close: impl Strategy<Value = &'static str>,
) -> impl Strategy<Value = String> {
    let placeholder =
        (name, proptest::collection::vec(filter, 0..3), close).prop_map(|(n, fs, close)| {
            let mut s = format!("{{{{{n}");
            for f in fs {
                s.push_str(" | ");
                s.push_str(&f);
            }
            s.push_str(close);
            s
        });
    proptest::collection::vec(prop_oneof!["[A-Za-z ,.?']{1,12}", placeholder], 1..4)
        .prop_map(|parts| parts.concat())
}

/// Spoken text with random `{{...}}` placeholders: mostly well formed, sometimes not.
fn template() -> impl Strategy<Value = String> {
    let good = placeholders(
        good_name(),
        proptest::sample::select(FILTERS).prop_map(str::to_string),
        Just("}}"),
    );
    let wild = placeholders(
        name(),
        prop_oneof![
            3 => proptest::sample::select(FILTERS).prop_map(str::to_string),
            1 => prop_oneof![Just("dollars".to_string()), Just(String::new()), "[a-z]{1,5}"],
        ],
        prop_oneof![4 => Just("}}"), 1 => Just(""), 1 => Just("}")],
    );
    prop_oneof![12 => good, 1 => wild]
}

fn expression_from(
    leaf: BoxedStrategy<String>,
    ops: &'static [&'static str],
) -> impl Strategy<Value = String> {
    leaf.prop_recursive(3, 12, 2, move |inner| {
        prop_oneof![
            4 => (inner.clone(), proptest::sample::select(ops), inner.clone())
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            1 => inner.clone().prop_map(|a| format!("not ({a})")),
            1 => inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// A condition or computed value: mostly well formed, sometimes broken (`=`, unclosed `(`, ...).
fn expression() -> impl Strategy<Value = String> {
    const OPS: &[&str] = &[
        "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "and", "or",
    ];
    const WILD_OPS: &[&str] = &["==", "<", "+", "and", "or", "=", "", "&&", "!", "(", ")"];
    let good_leaf = prop_oneof![
        3 => good_name(),
        1 => "-?[0-9]{1,4}(\\.[0-9])?",
        1 => Just("'text'".to_string()),
        1 => Just("true".to_string()),
        1 => Just("null".to_string()),
    ]
    .boxed();
    let wild_leaf = prop_oneof![
        name(),
        "-?[0-9]{1,4}(\\.[0-9]{0,2}){0,2}",
        Just("'unclosed".to_string()),
        Just("(".to_string()),
        Just("=".to_string()),
        Just("and".to_string()),
    ]
    .boxed();
    prop_oneof![
        12 => expression_from(good_leaf, OPS),
        1 => expression_from(wild_leaf, WILD_OPS),
    ]
}

fn leaf() -> impl Strategy<Value = Y> {
    prop_oneof![
        3 => proptest::sample::select(STEPS).prop_map(|s| Y::S(s.to_string())),
        2 => template().prop_map(Y::S),
        2 => expression().prop_map(Y::S),
        1 => prop_oneof![
            Just("0"), Just("1"), Just("-3"), Just("2.5"), Just("1e9"), Just("5s"), Just("500ms"),
            Just("2m"), Just("11m"), Just("true"), Just("false"), Just("~"), Just("USD"),
            Just("usd"), Just("yes_no"), Just("date"), Just("choice"), Just("amount"),
            Just("digits"), Just("text"), Just("https://bank.example/x"), Just("ftp://x"),
            Just("#"), Just("12*#"), Just("identity"), Just("resume"),
        ]
        .prop_map(|s| Y::S(s.to_string())),
        1 => "[ -~]{0,10}".prop_map(Y::S),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ]
}

/// Random nested YAML with the language's key names.
fn random_yaml() -> impl Strategy<Value = Y> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Y::L),
            proptest::collection::vec((key(), inner), 0..6).prop_map(|kv| {
                // Unique keys (repeats are tested separately), so the tree is not a YAML error.
                let mut seen = std::collections::HashSet::new();
                Y::M(
                    kv.into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

fn s(v: &str) -> Y {
    Y::S(v.to_string())
}

/// The step names flow-shaped documents use (a prefix of this list is defined in each), besides
/// the fixed `opt_out`.
const NAMES: &[&str] = &[
    "greet",
    "ask_amount",
    "confirm_date",
    "bye",
    "agent",
    "route",
];

/// Where step `at` goes: mostly a later step (so that most steps are reachable and the
/// conversation moves on), sometimes an earlier one, an inline step, `resume` or a typo.
fn target(names: &'static [&'static str], at: usize) -> BoxedStrategy<Y> {
    let later = if at + 1 < names.len() {
        &names[at + 1..]
    } else {
        names
    };
    prop_oneof![
        10 => proptest::sample::select(later).prop_map(s),
        3 => proptest::sample::select(names).prop_map(s),
        2 => Just(s("opt_out")),
        3 => "[a-z_]{1,6}".prop_map(|o| Y::M(vec![("end".into(), Y::S(o))])),
        1 => proptest::sample::select(&["resume", "nowhere", "gret"][..]).prop_map(s),
        1 => (template(), proptest::sample::select(names)).prop_map(|(t, n)| Y::M(vec![
            ("say".into(), Y::S(t)),
            ("next".into(), s(n)),
        ])),
    ]
    .boxed()
}

/// A step: optional `disclose` and `say`, then one action with its keys, rarely an extra key.
fn step(names: &'static [&'static str], at: usize) -> impl Strategy<Value = Y> {
    let ask = (
        template(),
        proptest::collection::vec(
            (
                prop_oneof![
                    4 => Just("yes"),
                    4 => Just("no"),
                    2 => Just("pay_now"),
                    1 => Just("paynow"),
                ],
                target(names, at),
            ),
            0..5,
        ),
        proptest::option::weighted(
            0.4,
            (
                prop_oneof![
                    3 => Just(("amount", "amount")),
                    3 => Just(("pay_date", "date")),
                    3 => Just(("plan", "choice")),
                    1 => Just(("amount", "dat")),
                    1 => Just(("pay_date", "number")),
                ],
                target(names, at),
            ),
        ),
        proptest::option::of(target(names, at)),
        proptest::option::weighted(
            0.15,
            prop_oneof![4 => Just("5s"), 1 => Just("0s"), 1 => Just("fast")],
        ),
    )
        .prop_map(|(q, expect, slot, retry, timeout)| {
            let mut m = vec![("ask".to_string(), Y::S(q))];
            let mut seen = std::collections::HashSet::new();
            let expect: Vec<(String, Y)> = expect
                .into_iter()
                .filter(|(k, _)| seen.insert(*k))
                .map(|(k, t)| (k.to_string(), t))
                .collect();
            if !expect.is_empty() {
                m.push(("expect".into(), Y::M(expect)));
            }
            if let Some(((name, ty), next)) = slot {
                m.push(("collect".into(), s(name)));
                m.push(("type".into(), s(ty)));
                if ty == "choice" {
                    m.push(("options".into(), Y::L(vec![s("card"), s("transfer")])));
                }
                m.push(("next".into(), next));
            }
            if let Some(t) = retry {
                m.push((
                    "no_match".into(),
                    Y::M(vec![("max".into(), s("1")), ("then".into(), t)]),
                ));
            }
            if let Some(t) = timeout {
                m.push(("timeout".into(), s(t)));
            }
            m
        });
    let branch = (
        proptest::collection::vec((expression(), target(names, at)), 0..3),
        proptest::option::weighted(0.9, target(names, at)),
    )
        .prop_map(|(arms, otherwise)| {
            let mut items: Vec<Y> = arms
                .into_iter()
                .map(|(c, t)| Y::M(vec![("if".into(), Y::S(c)), ("then".into(), t)]))
                .collect();
            items.extend(otherwise.map(|t| Y::M(vec![("else".into(), t)])));
            vec![("branch".to_string(), Y::L(items))]
        });
    let set = (expression(), target(names, at)).prop_map(|(e, t)| {
        vec![
            ("set".to_string(), Y::M(vec![("total".into(), Y::S(e))])),
            ("next".into(), t),
        ]
    });
    let webhook =
        (any::<bool>(), target(names, at), target(names, at)).prop_map(|(save, next, fail)| {
            let mut w = vec![("url".to_string(), s("https://bank.example/api"))];
            if save {
                w.push(("save_as".into(), s("total")));
            }
            vec![
                ("webhook".to_string(), Y::M(w)),
                ("next".into(), next),
                ("on_failure".into(), fail),
            ]
        });
    let transfer = (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(target(names, at)),
    )
        .prop_map(|(cold, script, fallback)| {
            let mut t = if cold {
                vec![("to".to_string(), s("+442071234567"))]
            } else {
                vec![("queue".to_string(), s("support"))]
            };
            if script && !cold {
                t.push(("script".into(), Y::L(vec![s("Confirm the date of birth")])));
            }
            let key = if cold { "on_failure" } else { "on_no_agent" };
            t.extend(fallback.map(|n| (key.to_string(), n)));
            vec![("transfer".to_string(), Y::M(t))]
        });
    let other = (
        prop_oneof![
            Just(("dnc", Y::M(vec![("reason".into(), s("opted out"))]))),
            Just(("callback", Y::M(vec![("at".into(), s("now"))]))),
            Just(("send_dtmf", s("12#"))),
        ],
        target(names, at),
    )
        .prop_map(|((k, v), t)| vec![(k.to_string(), v), ("next".into(), t)]);
    let end = "[a-z_]{1,6}".prop_map(|o| vec![("end".to_string(), Y::S(o))]);
    let say_only = (template(), target(names, at))
        .prop_map(|(t, n)| vec![("say".to_string(), Y::S(t)), ("next".into(), n)]);
    // The first step mostly asks, so that most flows listen and their handlers can run.
    let action = prop_oneof![
        if at == 0 { 30 } else { 5 } => ask,
        2 => branch,
        1 => set,
        1 => webhook,
        1 => transfer,
        1 => other,
        2 => end,
        2 => say_only,
    ];
    (
        proptest::option::weighted(
            0.3,
            prop_oneof![4 => Just("identity"), 1 => Just("recording")],
        ),
        proptest::option::weighted(0.3, template()),
        action,
        proptest::option::weighted(0.05, (key(), leaf())),
    )
        .prop_map(|(disclose, say, action, extra)| {
            let mut m = Vec::new();
            if let Some(d) = disclose {
                m.push(("disclose".to_string(), Y::L(vec![s(d)])));
            }
            let listens = action.iter().any(|(k, _)| k == "ask" || k == "branch");
            let has_say = action.iter().any(|(k, _)| k == "say");
            if let (Some(t), false, false) = (say, has_say, listens) {
                m.push(("say".into(), Y::S(t)));
            }
            m.extend(action);
            if let Some((k, v)) = extra
                && !m.iter().any(|(x, _)| *x == k)
            {
                m.push((k, v));
            }
            Y::M(m)
        })
}

/// A flow-shaped document: the real top-level layout with random steps, so that a good share of
/// the documents get past the schema into the validator and the interpreter.
fn flowish() -> impl Strategy<Value = Y> {
    (1..=NAMES.len()).prop_flat_map(|k| {
        let names: &'static [&'static str] = &NAMES[..k];
        (
            (0..k).map(|at| step(names, at)).collect::<Vec<_>>(),
            proptest::option::weighted(0.9, Just("greet")),
            proptest::sample::select(names),
            proptest::option::weighted(0.9, Just("opt_out")),
            proptest::option::of(proptest::sample::select(names)),
            any::<bool>(),
            proptest::option::weighted(0.05, (key(), leaf())),
        )
            .prop_map(
                move |(steps, start, other_start, stop, agent, disclose_first, extra)| {
                    let mut steps: Vec<(String, Y)> =
                        names.iter().map(|n| n.to_string()).zip(steps).collect();
                    if disclose_first && let Some((_, Y::M(m))) = steps.first_mut() {
                        m.retain(|(k, _)| k != "disclose");
                        m.insert(0, ("disclose".into(), Y::L(vec![s("identity")])));
                    }
                    steps.push((
                        "opt_out".into(),
                        Y::M(vec![
                            ("dnc".into(), Y::M(vec![("reason".into(), s("opted out"))])),
                            ("say".into(), s("You will not be called again.")),
                            ("next".into(), Y::M(vec![("end".into(), s("opted_out"))])),
                        ]),
                    ));
                    let mut handlers = Vec::new();
                    handlers.extend(stop.map(|t| ("stop_calling".to_string(), s(t))));
                    handlers.extend(agent.map(|t| ("agent_request".to_string(), s(t))));
                    let mut top = vec![
                        ("flow".to_string(), s("fuzz")),
                        ("version".into(), s("1")),
                        ("currency".into(), s("EUR")),
                        ("bank".into(), Y::M(vec![("name".into(), s("Acme"))])),
                        (
                            "lead".into(),
                            Y::M(vec![
                                ("first_name".into(), s("text")),
                                ("amount_due".into(), s("amount")),
                                ("due_date".into(), s("date")),
                            ]),
                        ),
                        (
                            "compliance".into(),
                            Y::M(vec![(
                                "disclosures".into(),
                                Y::M(vec![("identity".into(), s("This is {{bank.name}}."))]),
                            )]),
                        ),
                        (
                            "settings".into(),
                            Y::M(vec![
                                (
                                    "no_match".into(),
                                    Y::M(vec![
                                        ("max".into(), s("1")),
                                        ("then".into(), Y::M(vec![("end".into(), s("no_match"))])),
                                    ]),
                                ),
                                (
                                    "no_input".into(),
                                    Y::M(vec![
                                        ("max".into(), s("1")),
                                        ("then".into(), Y::M(vec![("end".into(), s("silent"))])),
                                    ]),
                                ),
                            ]),
                        ),
                        (
                            "intents".into(),
                            Y::M(vec![("pay_now".into(), Y::L(vec![s("I'll pay now")]))]),
                        ),
                        ("handlers".into(), Y::M(handlers)),
                        ("start".into(), s(start.unwrap_or(other_start))),
                        ("steps".into(), Y::M(steps)),
                    ];
                    if let Some((k, v)) = extra
                        && let Some(slot) = top.iter_mut().find(|(x, _)| *x == k)
                    {
                        slot.1 = v;
                    }
                    Y::M(top)
                },
            )
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn random_yaml_with_real_keys_never_panics(y in random_yaml()) {
        let _ = load(&document(&y));
    }

    #[test]
    fn random_flow_shaped_documents_never_panic_and_run(y in flowish(), evs in events()) {
        if let Some(flow) = load(&document(&y)) {
            run(flow, &evs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Mutations of the shipped flows.

fn shipped() -> &'static [String] {
    static FLOWS: OnceLock<Vec<String>> = OnceLock::new();
    FLOWS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
        let files = dialog_flows::flow_files(&dir).expect("the flows directory is readable");
        let texts: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("a flow file is readable"))
            .collect();
        assert!(!texts.is_empty(), "no flow files in {}", dir.display());
        texts
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the character at this index (of all characters) with another.
    FlipChar(usize, char),
    /// Insert text at the start of a line.
    Insert(usize, &'static str),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<usize>().prop_map(Mutation::DeleteLine),
        2 => any::<usize>().prop_map(Mutation::DuplicateLine),
        2 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        3 => (
            any::<usize>(),
            prop_oneof![
                Just(' '), Just(':'), Just('-'), Just('{'), Just('}'), Just('|'), Just('x'),
                Just('_'), Just('"'), Just('\''), Just('#'), Just('\n'), Just('1'), Just('é'),
                any::<char>(),
            ]
        )
            .prop_map(|(i, c)| Mutation::FlipChar(i, c)),
        1 => (
            any::<usize>(),
            prop_oneof![
                Just("  "), Just("- "), Just("next: resume\n"), Just("    next: nowhere\n"),
                Just("    end: done\n"), Just("{{"), Just("&a "), Just("*a "),
            ]
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

fn mutate(src: &str, muts: &[Mutation]) -> String {
    let mut lines: Vec<String> = src.lines().map(str::to_string).collect();
    for m in muts {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
            Mutation::FlipChar(i, c) => {
                let text = lines.join("\n");
                let mut chars: Vec<char> = text.chars().collect();
                if !chars.is_empty() {
                    let at = i % chars.len();
                    chars[at] = *c;
                }
                lines = chars
                    .into_iter()
                    .collect::<String>()
                    .lines()
                    .map(str::to_string)
                    .collect();
            }
            Mutation::Insert(i, s) => {
                let at = i % n;
                lines[at] = format!("{s}{}", lines[at]);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn mutated_shipped_flows_never_panic_and_run(
        which in any::<usize>(),
        muts in proptest::collection::vec(mutation(), 1..4),
        evs in events(),
    ) {
        let flows = shipped();
        let src = mutate(&flows[which % flows.len()], &muts);
        if let Some(flow) = load(&src) {
            run(flow, &evs);
        }
    }

    #[test]
    fn unmutated_shipped_flows_run_with_random_events(which in any::<usize>(), evs in events()) {
        let flows = shipped();
        let flow = load(&flows[which % flows.len()]);
        prop_assert!(flow.is_some(), "a shipped flow does not load");
        if let Some(flow) = flow {
            run(flow, &evs);
        }
    }
}

/// The generators reach the validator and the interpreter, not only the YAML parser: enough
/// random flow-shaped documents and mutated flows load for the "run" half of the properties to
/// mean something.
#[test]
fn generators_produce_loadable_flows() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut loaded, mut decoded_but_invalid) = (0, 0);
    for _ in 0..400 {
        let y = flowish().new_tree(&mut runner).expect("a value").current();
        match dialog_flows::load_str(&document(&y), Path::new("fuzz.yaml")) {
            Ok(_) => loaded += 1,
            Err(e)
                if e.diagnostics.iter().all(|d| {
                    !matches!(d.code, "yaml" | "schema" | "unknown-key" | "missing-key")
                }) =>
            {
                decoded_but_invalid += 1;
            }
            Err(_) => {}
        }
    }
    assert!(loaded > 0, "no random flow-shaped document loaded");
    assert!(
        decoded_but_invalid > 0,
        "no random flow-shaped document reached the validator"
    );
    let flows = shipped();
    let mut mutated_ok = 0;
    for _ in 0..200 {
        let which = any::<usize>()
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        let muts = proptest::collection::vec(mutation(), 1..3)
            .new_tree(&mut runner)
            .expect("a value")
            .current();
        if load(&mutate(&flows[which % flows.len()], &muts)).is_some() {
            mutated_ok += 1;
        }
    }
    assert!(mutated_ok > 0, "no mutated flow loaded");
    eprintln!(
        "flow-shaped: {loaded} loaded, {decoded_but_invalid} reached the validator; mutated: {mutated_ok}/200 loaded"
    );
}
