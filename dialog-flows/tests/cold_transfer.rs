//! Cold transfers (`transfer: {to: ...}`) and agent script prompts (`transfer: {script: [...]}`):
//! the decoder's errors with their positions, the validator's view of `on_failure`, the
//! interpreter's two outcomes, the conversation-test harness and the JSON Schema.

use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use dialog_flows::testing::{self, Understand};
use dialog_flows::{Call, CallAction, Event, Flow, FlowErrors, Listen, Pos, Utterance};

/// A flow whose first step speaks and cold-transfers. Lines, for the positions below:
///
/// ```text
///  1 flow: cold                     9   handover:
///  2 version: 1                    10     say: "Connecting you to our partner."
///  3 lead:                         11     transfer:
///  4   first_name: text            12       to: "+44 20 7123 4567"
///  5   branch_phone: { type: text, 13       reason: "Mortgage question from {{lead.first_name}}"
///        required: false }         14       on_failure: sorry
///  6 start: handover               15   sorry:
///  7 steps:                        16     say: "Sorry, I could not connect you."
///  8                               17     end: not_connected
/// ```
const COLD: &str = r#"flow: cold
version: 1
lead:
  first_name: text
  branch_phone: { type: text, required: false }
start: handover
steps:

  handover:
    say: "Connecting you to our partner."
    transfer:
      to: "+44 20 7123 4567"
      reason: "Mortgage question from {{lead.first_name}}"
      on_failure: sorry
  sorry:
    say: "Sorry, I could not connect you."
    end: not_connected
"#;

/// `COLD` with `from` (which must occur once) replaced by `to`.
fn cold_with(from: &str, to: &str) -> String {
    assert_eq!(COLD.matches(from).count(), 1, "`{from}` must occur once");
    COLD.replacen(from, to, 1)
}

fn load(src: &str) -> Result<Flow, FlowErrors> {
    dialog_flows::load_str(src, Path::new("cold.yaml"))
}

#[track_caller]
fn accepted(src: &str) -> Arc<Flow> {
    match load(src) {
        Ok(f) => Arc::new(f),
        Err(e) => panic!("must be accepted, but:\n{e}\n--- flow ---\n{src}"),
    }
}

/// Rejected with exactly one diagnostic, of this code, at this position, containing `phrase`;
/// the rendered error starts with `cold.yaml:LINE:COL`.
#[track_caller]
fn only(src: &str, code: &str, line: usize, col: usize, phrase: &str) {
    let e = match load(src) {
        Ok(_) => panic!("must be rejected:\n{src}"),
        Err(e) => e,
    };
    assert_eq!(e.diagnostics.len(), 1, "expected one error, got:\n{e}");
    let d = &e.diagnostics[0];
    assert!(
        d.code == code && d.pos == Pos::new(line, col) && d.message.contains(phrase),
        "expected error[{code}] at {line}:{col} with `{phrase}`; got:\n{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("cold.yaml:{line}:{col}: error[{code}]")),
        "{e}"
    );
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

fn said(actions: &[CallAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            CallAction::Speak(s) => Some(s.text.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding.

#[test]
fn the_cold_transfer_flow_is_accepted() {
    let f = accepted(COLD);
    let step = f.step("handover").expect("step");
    let dialog_flows::ast::Action::ColdTransfer(t) = &step.action else {
        panic!("a cold transfer, got {:?}", step.action.kind())
    };
    assert_eq!(
        t.on_failure.as_ref().map(|x| x.name.as_str()),
        Some("sorry")
    );
    assert_eq!(step.action.kind(), "transfer");
}

#[test]
fn queue_and_to_together_are_an_error_at_to() {
    only(
        &cold_with("      reason:", "      queue: support\n      reason:"),
        "schema",
        12,
        11,
        "either `queue`",
    );
}

#[test]
fn neither_queue_nor_to_is_an_error_at_the_transfer() {
    only(
        &cold_with("      to: \"+44 20 7123 4567\"\n", ""),
        "missing-key",
        12,
        7,
        "needs a `queue` (an agent queue) or `to`",
    );
}

#[test]
fn a_number_without_plus_or_of_the_wrong_length_is_rejected() {
    for bad in [
        "02071234567",
        "+4420",
        "+44207123456789012",
        "+44 20 71x3 4567",
    ] {
        only(
            &cold_with("\"+44 20 7123 4567\"", &format!("\"{bad}\"")),
            "schema",
            12,
            11,
            "E.164 number",
        );
    }
}

#[test]
fn an_unsupported_uri_is_rejected() {
    for bad in [
        "tel:+442071234567",
        "sip:",
        "sip:@host",
        "sip:agent@host>;x",
        "sip:a b@host",
    ] {
        only(
            &cold_with("\"+44 20 7123 4567\"", &format!("\"{bad}\"")),
            "schema",
            12,
            11,
            "sip:",
        );
    }
}

#[test]
fn sip_uris_and_numbers_of_8_to_15_digits_are_accepted() {
    for good in [
        "sip:mortgages@partner.example",
        "sips:+442071234567@trunk.example:5061;transport=tls",
        "+12345678",
        "+123456789012345",
        "+1 (415) 555-0100",
    ] {
        accepted(&cold_with("\"+44 20 7123 4567\"", &format!("\"{good}\"")));
    }
}

#[test]
fn queue_options_on_a_cold_transfer_are_errors() {
    only(
        &cold_with(
            "      on_failure: sorry\n",
            "      on_failure: sorry\n      priority: 2\n",
        ),
        "schema",
        15,
        7,
        "`priority` belongs to a transfer to an agent `queue`",
    );
    only(
        &cold_with(
            "      on_failure: sorry\n",
            "      on_failure: sorry\n      script: [\"Check the id\"]\n",
        ),
        "schema",
        15,
        7,
        "`script` belongs",
    );
}

#[test]
fn on_failure_on_a_queue_transfer_is_an_error() {
    only(
        &cold_with("to: \"+44 20 7123 4567\"", "queue: mortgages"),
        "schema",
        14,
        7,
        "`on_failure` belongs to a cold transfer",
    );
}

#[test]
fn an_unknown_on_failure_step_is_named_with_a_hint() {
    only(
        &cold_with("on_failure: sorry", "on_failure: sory"),
        "unknown-step",
        14,
        19,
        "(did you mean `sorry`?)",
    );
}

#[test]
fn a_template_destination_is_checked_against_the_lead() {
    accepted(&cold_with(
        "\"+44 20 7123 4567\"",
        "\"{{lead.branch_phone}}\"",
    ));
    let e = load(&cold_with(
        "\"+44 20 7123 4567\"",
        "\"{{lead.branch_phone_number}}\"",
    ))
    .expect_err("an unknown lead field");
    assert!(
        e.diagnostics.iter().any(|d| d.pos.line == 12),
        "the error points at `to`:\n{e}"
    );
}

#[test]
fn a_script_that_is_not_a_list_is_an_error() {
    only(
        &cold_with(
            "to: \"+44 20 7123 4567\"",
            "queue: mortgages\n      script: Check the id",
        )
        .replace("      on_failure: sorry\n", "      on_no_agent: sorry\n"),
        "schema",
        13,
        15,
        "`script` must be a list",
    );
}

#[test]
fn a_script_line_naming_an_unknown_slot_is_rejected() {
    let src = cold_with(
        "to: \"+44 20 7123 4567\"",
        "queue: mortgages\n      script: [\"Ask about {{slots.reason}}\"]",
    )
    .replace("      on_failure: sorry\n", "");
    let e = load(&src).expect_err("slots.reason is never collected");
    assert!(
        e.diagnostics
            .iter()
            .any(|d| d.pos.line == 13 && d.message.contains("reason")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation: `on_failure` is an edge of the graph.

#[test]
fn the_on_failure_step_is_reachable_and_a_cold_transfer_finishes_the_call() {
    // Without `on_failure`, `sorry` is unreachable.
    let e = load(&cold_with("      on_failure: sorry\n", "")).expect_err("unreachable");
    assert!(
        e.diagnostics
            .iter()
            .any(|d| d.code == "unreachable" && d.message.contains("`sorry`")),
        "{e}"
    );
    // A cold transfer ends a path: a step leading only to it is no dead end.
    accepted(&cold_with(
        "      on_failure: sorry\n",
        "      on_failure: { transfer: { to: \"sip:desk@bank.example\", on_failure: sorry } }\n",
    ));
}

#[test]
fn a_cold_transfer_before_a_disclosure_breaks_the_compliance_proof() {
    let src = cold_with(
        "start: handover",
        "compliance:\n  disclosures:\n    recorded: \"This call is recorded.\"\nstart: handover",
    );
    let e = load(&src.replace("    say: \"Connecting you to our partner.\"\n", ""))
        .expect_err("no disclosure before the handover");
    assert!(
        e.diagnostics.iter().any(|d| d.code == "compliance"
            && d.message
                .contains("hands the call to an outside number before the mandatory `recorded`")),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// The interpreter.

fn start_cold(src: &str) -> (Call, Vec<CallAction>) {
    Call::start(
        accepted(src),
        &lead(serde_json::json!({"first_name": "Ana"})),
        now(),
    )
    .expect("lead fits")
}

#[test]
fn a_cold_transfer_speaks_then_hands_over_and_waits() {
    let (call, a) = start_cold(COLD);
    assert_eq!(said(&a), vec!["Connecting you to our partner."]);
    let cold: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            CallAction::ColdTransfer { to, reason, step } => Some((to, reason, step)),
            _ => None,
        })
        .collect();
    assert_eq!(
        cold,
        vec![(
            &"+442071234567".to_string(),
            &"Mortgage question from Ana".to_string(),
            &"handover".to_string()
        )]
    );
    assert!(
        matches!(a.last(), Some(CallAction::ColdTransfer { .. })),
        "nothing after the transfer: {a:?}"
    );
    assert_eq!(call.outcome(), Some("cold_transferred:+442071234567"));
    assert!(call.is_cold_transferring());
    assert!(call.is_transferred() && call.is_finished());
    assert_eq!(call.current_step(), Some("handover"));
}

#[test]
fn a_successful_cold_transfer_keeps_its_outcome_when_the_line_drops() {
    let (mut call, _) = start_cold(COLD);
    assert_eq!(call.handle(Event::HangUp, now()), Vec::new());
    assert_eq!(call.outcome(), Some("cold_transferred:+442071234567"));
    assert_eq!(call.path(), ["handover"]);
}

#[test]
fn a_failed_cold_transfer_runs_on_failure() {
    let (mut call, _) = start_cold(COLD);
    let a = call.handle(
        Event::ColdTransferFailed {
            reason: "603 Decline".into(),
        },
        now(),
    );
    assert!(
        a.iter().any(
            |x| matches!(x, CallAction::Log { message, .. } if message.contains("603 Decline"))
        ),
        "{a:?}"
    );
    assert_eq!(said(&a), vec!["Sorry, I could not connect you."]);
    assert_eq!(call.outcome(), Some("not_connected"));
    assert_eq!(call.path(), ["handover", "sorry"]);
    assert!(!call.is_transferred());
}

#[test]
fn a_failed_cold_transfer_without_on_failure_ends_transfer_failed() {
    let src = cold_with("      on_failure: sorry\n", "").replace(
        "  sorry:\n    say: \"Sorry, I could not connect you.\"\n    end: not_connected\n",
        "",
    );
    let (mut call, _) = start_cold(&src);
    let a = call.handle(
        Event::ColdTransferFailed {
            reason: "405 Method Not Allowed".into(),
        },
        now(),
    );
    assert!(
        matches!(a.last(), Some(CallAction::End { outcome }) if outcome == "transfer_failed"),
        "{a:?}"
    );
    assert_eq!(call.outcome(), Some("transfer_failed"));
    assert!(call.is_finished() && !call.is_transferred());
}

#[test]
fn other_failure_events_do_not_bring_a_cold_transfer_back() {
    let (mut call, _) = start_cold(COLD);
    let a = call.handle(
        Event::TransferFailed {
            reason: "no agent".into(),
        },
        now(),
    );
    assert!(said(&a).is_empty(), "{a:?}");
    assert!(call.is_cold_transferring());
    assert_eq!(call.outcome(), Some("cold_transferred:+442071234567"));
}

#[test]
fn a_rendered_destination_that_is_no_number_fails_at_once() {
    let src = cold_with("\"+44 20 7123 4567\"", "\"{{lead.branch_phone}}\"");
    let flow = accepted(&src);
    let (call, a) = Call::start(
        flow.clone(),
        &lead(serde_json::json!({"first_name": "Ana", "branch_phone": "ask at the desk"})),
        now(),
    )
    .expect("lead fits");
    assert!(
        !a.iter()
            .any(|x| matches!(x, CallAction::ColdTransfer { .. })),
        "{a:?}"
    );
    assert_eq!(
        said(&a),
        vec![
            "Connecting you to our partner.",
            "Sorry, I could not connect you."
        ]
    );
    assert_eq!(call.outcome(), Some("not_connected"));
    let (call, a) = Call::start(
        flow,
        &lead(serde_json::json!({"first_name": "Ana", "branch_phone": "+1 415 555 0100"})),
        now(),
    )
    .expect("lead fits");
    assert!(
        a.iter()
            .any(|x| matches!(x, CallAction::ColdTransfer { to, .. } if to == "+14155550100")),
        "{a:?}"
    );
    assert_eq!(call.outcome(), Some("cold_transferred:+14155550100"));
}

#[test]
fn the_cold_transfer_action_serialises_with_its_tag() {
    let (_, a) = start_cold(COLD);
    let json = serde_json::to_value(a.last().expect("an action")).expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "action": "cold_transfer",
            "to": "+442071234567",
            "reason": "Mortgage question from Ana",
            "step": "handover"
        })
    );
}

/// A queue transfer with a script for the agent.
const SCRIPTED: &str = r#"flow: scripted
version: 1
lead:
  first_name: text
handlers:
  stop_calling: opt_out
start: why
steps:
  why:
    ask: "Why can't you pay?"
    collect: reason
    type: choice
    options: [job_loss, illness, other]
    next: agent
    no_match: { then: fallback }
    no_input: { max: 0, then: fallback }
  fallback:
    transfer: hardship
  agent:
    say: "Let me connect you."
    transfer:
      queue: hardship
      script:
        - "Confirm {{lead.first_name}}'s identity with the date of birth"
        - "Offer the hardship plan if {{slots.reason}} is job loss"
  opt_out:
    dnc:
    next: { end: opted_out }
"#;

#[test]
fn the_agent_script_is_rendered_into_the_transfer_summary() {
    let (mut call, _) = Call::start(
        accepted(SCRIPTED),
        &lead(serde_json::json!({"first_name": "Ana"})),
        now(),
    )
    .expect("lead fits");
    let a = call.handle(
        Event::Utterance(Utterance {
            text: "I lost my job".into(),
            entities: dialog_flows::Entities {
                choice: Some("job_loss".into()),
                ..Default::default()
            },
            ..Utterance::default()
        }),
        now(),
    );
    let summary = a
        .iter()
        .find_map(|x| match x {
            CallAction::Transfer(t) => Some(t.clone()),
            _ => None,
        })
        .expect("transferred");
    assert_eq!(
        summary.script,
        vec![
            "Confirm Ana's identity with the date of birth".to_string(),
            "Offer the hardship plan if job_loss is job loss".to_string(),
        ]
    );
    let json = serde_json::to_value(&*summary).expect("json");
    assert_eq!(
        json["script"][0],
        "Confirm Ana's identity with the date of birth"
    );
    assert_eq!(call.outcome(), Some("transferred:hardship"));
}

#[test]
fn a_transfer_without_a_script_has_an_empty_one() {
    let (mut call, _) = Call::start(
        accepted(SCRIPTED),
        &lead(serde_json::json!({"first_name": "Ana"})),
        now(),
    )
    .expect("lead fits");
    let a = call.handle(Event::NoInput, now());
    let summary = a
        .iter()
        .find_map(|x| match x {
            CallAction::Transfer(t) => Some(t.clone()),
            _ => None,
        })
        .expect("transferred");
    assert!(summary.script.is_empty());
}

// ---------------------------------------------------------------------------------------------
// The conversation-test harness.

struct NoNlu;

impl Understand for NoNlu {
    fn understand(
        &mut self,
        _: &Flow,
        _: Option<&Listen>,
        text: &str,
        _: NaiveDateTime,
    ) -> Result<Utterance, String> {
        Ok(Utterance::text(text))
    }
}

#[test]
fn conversation_tests_expect_cold_transfers_and_their_failure() {
    let tests = r#"flow: cold.yaml
lead: {first_name: Ana}
tests:
  - name: handed over
    turns:
      - bot: connecting you
    expect:
      outcome: "cold_transferred:+442071234567"
      transfer: "+442071234567"
  - name: refused
    turns:
      - transfer_failed
      - bot: could not connect you
    expect:
      outcome: not_connected
      transfer: { to: "+442071234567" }
  - name: wrong expectation
    turns: []
    expect:
      transfer: "+15550000000"
"#;
    let file =
        testing::parse_tests(tests, Path::new("cold.test.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let flow = accepted(COLD);
    let results: Vec<_> = file
        .cases
        .iter()
        .map(|c| testing::run_case(&flow, c, &mut NoNlu))
        .collect();
    assert!(results[0].failure.is_none(), "{:?}", results[0].failure);
    assert!(results[1].failure.is_none(), "{:?}", results[1].failure);
    let f = results[2].failure.as_deref().expect("must fail");
    assert!(
        f.contains("transfer: expected `+15550000000`, got `+442071234567`"),
        "{f}"
    );
    assert!(f.contains("[cold transfer to +442071234567"), "{f}");
}

// ---------------------------------------------------------------------------------------------
// The JSON Schema agrees.

fn schema_errors(src: &str) -> Vec<String> {
    let schema = dialog_flows::schema::json_schema();
    let v = jsonschema::draft202012::new(&schema).expect("schema compiles");
    let root = dialog_flows::yaml::parse(src).expect("yaml");
    let json = to_json(&root);
    v.iter_errors(&json).map(|e| e.to_string()).collect()
}

fn to_json(n: &dialog_flows::yaml::Node) -> serde_json::Value {
    use dialog_flows::yaml::Value as Y;
    match &n.value {
        Y::Null => serde_json::Value::Null,
        Y::Scalar { text, quoted } => {
            if !quoted {
                if let Some(b) = n.as_bool() {
                    return serde_json::Value::Bool(b);
                }
                if let Ok(i) = text.parse::<i64>() {
                    return serde_json::Value::from(i);
                }
            }
            serde_json::Value::String(text.clone())
        }
        Y::Seq(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Y::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap_or("").to_string(), to_json(v)))
                .collect(),
        ),
    }
}

#[test]
fn the_schema_accepts_both_forms_and_rejects_what_the_decoder_rejects() {
    assert_eq!(schema_errors(COLD), Vec::<String>::new());
    assert_eq!(schema_errors(SCRIPTED), Vec::<String>::new());
    let broken = [
        (
            "queue and to",
            cold_with("      reason:", "      queue: support\n      reason:"),
        ),
        ("neither", cold_with("      to: \"+44 20 7123 4567\"\n", "")),
        (
            "priority on a cold transfer",
            cold_with("      on_failure: sorry\n", "      on_failure: sorry\n      priority: 2\n"),
        ),
        (
            "on_failure on a queue transfer",
            cold_with("to: \"+44 20 7123 4567\"", "queue: mortgages"),
        ),
        (
            "script is not a list",
            SCRIPTED.replace(
                "      script:\n        - \"Confirm {{lead.first_name}}'s identity with the date of birth\"\n        - \"Offer the hardship plan if {{slots.reason}} is job loss\"\n",
                "      script: Check the id\n",
            ),
        ),
    ];
    for (what, src) in broken {
        assert!(load(&src).is_err(), "{what}: the loader accepts it");
        assert!(
            !schema_errors(&src).is_empty(),
            "{what}: the schema accepts it"
        );
    }
}
