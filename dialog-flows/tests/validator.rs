//! The validator, one broken flow at a time: each flow below is a minimal valid flow with one thing
//! broken, and must be rejected with the right code, at the line:column of the offending token,
//! with a message that says what is wrong. A few valid flows check that the validator does not
//! simply reject everything, and every shipped flow must load.

use std::path::Path;

use dialog_flows::{Flow, FlowErrors, Pos};

/// A minimal valid flow. Line numbers, for reading the positions in the tests below:
///
/// ```text
///  1 flow: demo                  20 start: greet
///  2 version: 1                  21 steps:
///  3 currency: USD               22   greet:
///  4 bank:                       23     disclose: [identity]
///  5   name: Acme Bank           24     ask: "Can you pay ... ?"
///  6 lead:                       25     expect:
///  7   first_name: text          26       yes: thanks
///  8   amount_due: amount        27       pay_now: thanks
///  9 compliance:                 28       no: bye
/// 10   disclosures:              29   thanks:
/// 11     identity: "..."         30     say: "Thank you."
/// 12 settings:                   31     end: paid
/// 13   no_match: {..}            32   bye:
/// 14   no_input: {..}            33     say: "Goodbye."
/// 15 intents:                    34     end: done
/// 16   pay_now:                  35   opt_out:
/// 17     - I'll pay now          36     dnc: { reason: "Customer opted out" }
/// 18 handlers:                   37     say: "You will not be called again."
/// 19   stop_calling: opt_out     38     next: { end: opted_out }
/// ```
const BASE: &str = r#"flow: demo
version: 1
currency: USD
bank:
  name: Acme Bank
lead:
  first_name: text
  amount_due: amount
compliance:
  disclosures:
    identity: "This is {{bank.name}}."
settings:
  no_match: { max: 1, then: bye }
  no_input: { max: 1, then: bye }
intents:
  pay_now:
    - I'll pay now
handlers:
  stop_calling: opt_out
start: greet
steps:
  greet:
    disclose: [identity]
    ask: "Can you pay {{lead.amount_due | money}} today, {{lead.first_name}}?"
    expect:
      yes: thanks
      pay_now: thanks
      no: bye
  thanks:
    say: "Thank you."
    end: paid
  bye:
    say: "Goodbye."
    end: done
  opt_out:
    dnc: { reason: "Customer opted out" }
    say: "You will not be called again."
    next: { end: opted_out }
"#;

/// The header of `BASE` (lines 1-21, up to and including `steps:`) with `start: greet`.
const HEADER: &str = r#"flow: demo
version: 1
currency: USD
bank:
  name: Acme Bank
lead:
  first_name: text
  amount_due: amount
compliance:
  disclosures:
    identity: "This is {{bank.name}}."
settings:
  no_match: { max: 1, then: bye }
  no_input: { max: 1, then: bye }
intents:
  pay_now:
    - I'll pay now
handlers:
  stop_calling: opt_out
start: greet
steps:
"#;

/// The last steps of `BASE`, for flows that replace `greet`.
const TAIL: &str = r#"  thanks:
    say: "Thank you."
    end: paid
  bye:
    say: "Goodbye."
    end: done
  opt_out:
    dnc: { reason: "Customer opted out" }
    say: "You will not be called again."
    next: { end: opted_out }
"#;

/// `BASE` with one piece of text replaced (which must occur exactly once).
fn base_with(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replacen(from, to, 1)
}

fn load(src: &str) -> Result<Flow, FlowErrors> {
    dialog_flows::load_str(src, Path::new("broken.yaml"))
}

#[track_caller]
fn rejected(src: &str) -> FlowErrors {
    match load(src) {
        Ok(_) => panic!("this flow was accepted but must be rejected:\n{src}"),
        Err(e) => e,
    }
}

#[track_caller]
fn accepted(src: &str) -> Flow {
    match load(src) {
        Ok(f) => f,
        Err(e) => panic!("this flow must be accepted, but:\n{e}\n--- flow ---\n{src}"),
    }
}

/// The flow is rejected with (at least) a diagnostic of this code, at this position, whose message
/// contains `phrase`.
#[track_caller]
fn has(src: &str, code: &str, line: usize, col: usize, phrase: &str) -> FlowErrors {
    let e = rejected(src);
    let hit = e
        .diagnostics
        .iter()
        .any(|d| d.code == code && d.pos == Pos::new(line, col) && d.message.contains(phrase));
    assert!(
        hit,
        "expected error[{code}] at {line}:{col} with `{phrase}`; got:\n{e}\n--- flow ---\n{src}"
    );
    e
}

/// Like [`has`], and it is the only diagnostic: one mistake gives one error.
#[track_caller]
fn only(src: &str, code: &str, line: usize, col: usize, phrase: &str) -> FlowErrors {
    let e = has(src, code, line, col, phrase);
    assert_eq!(e.diagnostics.len(), 1, "expected one error, got:\n{e}");
    e
}

// ---------------------------------------------------------------------------------------------
// The base flows are valid (so every rejection below comes from the one thing broken).

#[test]
fn base_flow_is_accepted() {
    let f = accepted(BASE);
    assert_eq!(f.name, "demo");
    assert_eq!(f.steps.iter().filter(|s| !s.inline).count(), 4);
    accepted(&format!("{HEADER}{}{TAIL}", GREET));
}

const GREET: &str = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: thanks
      no: bye
"#;

// ---------------------------------------------------------------------------------------------
// Targets and the shape of the conversation graph.

#[test]
fn unknown_step_suggests_the_closest_name() {
    let e = only(
        &base_with("      yes: thanks\n", "      yes: thanx\n"),
        "unknown-step",
        26,
        12,
        "there is no step named `thanx` (did you mean `thanks`?)",
    );
    assert!(
        e.to_string()
            .starts_with("broken.yaml:26:12: error[unknown-step]:")
    );
}

#[test]
fn unknown_start_step_suggests_the_closest_name() {
    only(
        &base_with("start: greet\n", "start: gret\n"),
        "unknown-step",
        20,
        8,
        "there is no step named `gret` (did you mean `greet`?)",
    );
}

#[test]
fn unknown_step_far_from_any_name_has_no_suggestion() {
    let e = only(
        &base_with("      no: bye\n", "      no: somewhere_else\n"),
        "unknown-step",
        28,
        11,
        "there is no step named `somewhere_else`",
    );
    assert!(!e.to_string().contains("did you mean"), "{e}");
}

#[test]
fn unknown_step_in_a_retry_policy() {
    only(
        &base_with(
            "  no_input: { max: 1, then: bye }\n",
            "  no_input: { max: 1, then: byee }\n",
        ),
        "unknown-step",
        14,
        29,
        "no step named `byee` (did you mean `bye`?)",
    );
}

#[test]
fn step_nothing_leads_to_is_unreachable() {
    let src = format!("{BASE}  orphan:\n    say: \"Nobody gets here.\"\n    end: done\n");
    only(
        &src,
        "unreachable",
        39,
        3,
        "step `orphan` can never run: no path from `start` or a handler leads to it",
    );
}

#[test]
fn handler_in_a_flow_that_never_listens_is_unreachable() {
    let src = r#"flow: demo
version: 1
compliance:
  disclosures:
    identity: "This is Acme Bank."
handlers:
  stop_calling: opt_out
start: hello
steps:
  hello:
    disclose: [identity]
    say: "Your card has been sent."
    end: informed
  opt_out:
    dnc: { reason: "opted out" }
    next: { end: opted_out }
"#;
    has(
        src,
        "unreachable",
        7,
        17,
        "handler `stop_calling` can never run",
    );
}

#[test]
fn cycle_of_questions_with_no_exit_is_a_dead_end() {
    let src = r#"flow: demo
version: 1
compliance:
  disclosures:
    identity: "This is Acme Bank."
handlers:
  stop_calling: opt_out
start: first
steps:
  first:
    disclose: [identity]
    ask: "Ready?"
    expect:
      yes: second
      no: second
    no_match: { max: 1, then: second }
    no_input: { max: 1, then: second }
  second:
    ask: "Still there?"
    expect:
      yes: first
      no: first
    no_match: { max: 1, then: first }
    no_input: { max: 1, then: first }
  opt_out:
    dnc: { reason: "opted out" }
    next: { end: opted_out }
"#;
    let e = has(
        src,
        "dead-end",
        10,
        3,
        "from step `first` no path ends the call",
    );
    has(
        src,
        "dead-end",
        18,
        3,
        "from step `second` no path ends the call",
    );
    assert_eq!(e.diagnostics.len(), 2, "{e}");
}

#[test]
fn say_step_without_next_is_a_dead_end() {
    only(
        &base_with(
            "    say: \"Goodbye.\"\n    end: done\n",
            "    say: \"Goodbye.\"\n",
        ),
        "dead-end",
        32,
        3,
        "step `bye` has no `next`",
    );
}

#[test]
fn collecting_ask_without_next_is_a_dead_end() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "How much can you pay?"
    collect: amount
    type: amount
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "dead-end",
        22,
        3,
        "step `greet` collects a slot but has no `next`",
    );
}

#[test]
fn ask_with_neither_collect_nor_expect_is_a_dead_end() {
    let greet = "  greet:\n    disclose: [identity]\n    ask: \"Hello?\"\n";
    has(
        &format!("{HEADER}{greet}{TAIL}"),
        "dead-end",
        22,
        3,
        "neither `collect`s a slot nor lists what it `expect`s",
    );
}

#[test]
fn branch_without_else_is_a_dead_end() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: route
      no: bye
  route:
    branch:
      - if: lead.amount_due > 100
        then: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "dead-end",
        30,
        7,
        "the `branch` of step `route` has no final `- else: STEP`",
    );
}

#[test]
fn loop_that_never_asks_is_reported() {
    let src = base_with(
        "    say: \"Goodbye.\"\n    end: done\n",
        r#"    say: "Goodbye."
    next: check
  check:
    branch:
      - if: lead.amount_due > 0
        then: bye
      - else: { end: done }
"#,
    );
    only(
        &src,
        "loop",
        32,
        3,
        "steps `bye` → `check` loop without ever asking the caller anything",
    );
}

#[test]
fn retry_that_loops_back_to_the_same_question_is_fine() {
    // `no` asks again, and so do both retry policies: the loop goes through a question.
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: thanks
      no: greet
    no_match: { max: 2, reprompt: "Sorry, can you pay today?", then: greet }
    no_input: { max: 2, then: bye }
"#;
    let f = accepted(&format!("{HEADER}{greet}{TAIL}"));
    let greet = f.step("greet").expect("greet");
    assert_eq!(greet.action.kind(), "ask");
}

#[test]
fn resume_in_the_main_conversation_is_rejected() {
    only(
        &base_with(
            "    say: \"Goodbye.\"\n    end: done\n",
            "    say: \"Goodbye.\"\n    next: resume\n",
        ),
        "resume-outside-handler",
        34,
        11,
        "step `bye` is part of the main conversation, so there is no interrupted question to `resume`",
    );
}

#[test]
fn start_cannot_be_resume() {
    has(
        &base_with("start: greet\n", "start: resume\n"),
        "schema",
        20,
        8,
        "`start` cannot be `resume`",
    );
}

#[test]
fn resume_in_a_who_is_this_handler_is_fine() {
    let src = base_with(
        "  stop_calling: opt_out\n",
        "  stop_calling: opt_out\n  who_is_this:\n    say: \"This is {{bank.name}}'s assistant.\"\n    next: resume\n",
    );
    let f = accepted(&src);
    assert!(
        f.handlers
            .contains_key(&dialog_flows::ast::Handler::WhoIsThis)
    );
}

// ---------------------------------------------------------------------------------------------
// Names: slots and variables set before use, lead fields declared, intents and disclosures known.

#[test]
fn slot_collected_on_one_branch_only_is_used_before_set() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: route
      no: bye
  route:
    branch:
      - if: lead.amount_due > 100
        then: ask_amount
      - else: confirm
  ask_amount:
    ask: "How much can you pay?"
    collect: amount
    type: amount
    next: confirm
  confirm:
    say: "Noted {{slots.amount | money}}."
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "use-before-set",
        39,
        19,
        "`slots.amount` may be used before it is set: on some path to step `confirm`",
    );
}

#[test]
fn slot_collected_on_both_branches_is_fine() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: ask_amount
      no: ask_other
  ask_amount:
    ask: "How much can you pay?"
    collect: amount
    type: amount
    confirm: "So {{slots.amount | money}}, right?"
    next: confirm
  ask_other:
    ask: "How much could you pay next week?"
    collect: amount
    type: amount
    next: confirm
  confirm:
    say: "Noted {{slots.amount | money}}."
    next: thanks
"#;
    accepted(&format!("{HEADER}{greet}{TAIL}"));
}

#[test]
fn webhook_result_used_on_the_failure_path_is_used_before_set() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Shall I look up your balance?"
    expect:
      yes: lookup
      no: bye
  lookup:
    webhook: { url: "https://bank.example/balance", save_as: balance }
    next: tell
    on_failure: sorry
  tell:
    say: "Your balance is {{vars.balance | money}}."
    next: thanks
  sorry:
    say: "I could not get {{vars.balance | money}} right now."
    end: failed
"#;
    // `tell` (on the `next` path) may use it; `sorry` (on `on_failure`) may not.
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "use-before-set",
        36,
        29,
        "`vars.balance` may be used before it is set: on some path to step `sorry`",
    );
}

#[test]
fn disclosure_text_cannot_use_slots_or_vars() {
    let src = base_with(
        "    identity: \"This is {{bank.name}}.\"\n",
        "    identity: \"This is {{bank.name}} for {{vars.who}}.\"\n",
    )
    .replace(
        "  thanks:\n    say: \"Thank you.\"\n    end: paid\n",
        "  thanks:\n    set: { who: \"'you'\" }\n    next: { end: paid }\n",
    );
    has(
        &src,
        "use-before-set",
        11,
        44,
        "disclosure `identity` uses `vars.who`, which is not known when disclosures are spoken",
    );
}

#[test]
fn lead_field_missing_from_the_schema() {
    only(
        &base_with(
            "    end: paid\n",
            "    end: paid\n    say: \"Thanks {{lead.phone}}.\"\n",
        )
        .replace("    say: \"Thank you.\"\n", ""),
        "unknown-lead-field",
        31,
        20,
        "the lead schema has no field `phone`: declare it under `lead:` so campaigns must provide it",
    );
}

#[test]
fn misspelt_lead_field_suggests_the_declared_one() {
    only(
        &base_with("{{lead.first_name}}?", "{{lead.firstname}}?"),
        "unknown-lead-field",
        24,
        60,
        "no field `firstname` (did you mean `first_name`?)",
    );
}

#[test]
fn lead_field_in_a_condition_is_checked_too() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: route
      no: bye
  route:
    branch:
      - if: lead.days_overdue > 30
        then: thanks
      - else: bye
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "unknown-lead-field",
        30,
        13,
        "the lead schema has no field `days_overdue`",
    );
}

#[test]
fn slot_no_step_collects() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you for {{slots.amount | money}}.\"\n",
        ),
        "unknown-slot",
        30,
        27,
        "no step collects slot `amount`",
    );
}

#[test]
fn variable_no_step_sets() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you, {{vars.total}}.\"\n",
        ),
        "unknown-var",
        30,
        24,
        "no step sets variable `total`",
    );
}

#[test]
fn name_outside_the_known_roots() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you, {{customer.name}}.\"\n",
        ),
        "unknown-name",
        30,
        24,
        "`customer.name` is not a name a flow can use",
    );
}

#[test]
fn bank_field_that_is_not_declared() {
    only(
        &base_with(
            "    say: \"Goodbye.\"\n",
            "    say: \"Goodbye from {{bank.nam}}.\"\n",
        ),
        "unknown-name",
        33,
        26,
        "`bank` has no field `nam` (did you mean `name`?)",
    );
}

#[test]
fn intent_not_declared() {
    only(
        &base_with("      pay_now: thanks\n", "      paynow: thanks\n"),
        "unknown-intent",
        27,
        7,
        "intent `paynow` is not declared under `intents:` (did you mean `pay_now`?)",
    );
}

#[test]
fn disclosure_not_declared() {
    has(
        &base_with("    disclose: [identity]\n", "    disclose: [identiy]\n"),
        "unknown-disclosure",
        23,
        16,
        "disclosure `identiy` is not declared under `compliance.disclosures` (did you mean `identity`?)",
    );
}

#[test]
fn same_slot_with_two_types() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "When can you pay?"
    collect: when
    type: date
    next: again
  again:
    ask: "And at what time exactly?"
    collect: when
    type: datetime
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "slot-type",
        30,
        14,
        "slot `when` is collected as `datetime` here and as `date` elsewhere",
    );
}

// ---------------------------------------------------------------------------------------------
// Compliance: every disclosure before any other content, on every path; opt-out leads to DNC.

#[test]
fn disclosure_skipped_on_one_branch_only() {
    let steps = r#"  route:
    branch:
      - if: lead.amount_due > 100
        then: formal
      - else: casual
  formal:
    disclose: [identity]
    say: "Good afternoon."
    next: greet
  casual:
    say: "Hi there."
    next: greet
  greet:
    ask: "Can you pay today?"
    expect:
      yes: thanks
      no: bye
"#;
    let src = format!(
        "{}{steps}{TAIL}",
        HEADER.replace("start: greet", "start: route")
    );
    let e = has(
        &src,
        "compliance",
        31,
        3,
        "step `casual` speaks before the mandatory `identity` disclosure on the path route → casual",
    );
    // The question after the join is unproven too; the disclosing branch itself is fine.
    has(
        &src,
        "compliance",
        34,
        3,
        "step `greet` speaks before the mandatory `identity`",
    );
    assert!(
        !e.diagnostics.iter().any(|d| d.pos == Pos::new(27, 3)),
        "the disclosing branch must not be blamed:\n{e}"
    );
}

#[test]
fn disclosure_only_after_the_first_question() {
    let greet = r#"  greet:
    ask: "Can you pay today?"
    expect:
      yes: thanks
      no: bye
"#;
    let tail = TAIL.replace("  thanks:\n", "  thanks:\n    disclose: [identity]\n");
    let e = has(
        &format!("{HEADER}{greet}{tail}"),
        "compliance",
        22,
        3,
        "step `greet` speaks before the mandatory `identity` disclosure on the path greet",
    );
    // `bye` is reached without the disclosure as well.
    assert!(
        e.diagnostics
            .iter()
            .any(|d| d.code == "compliance" && d.message.contains("step `bye`")),
        "{e}"
    );
}

#[test]
fn handler_after_an_undisclosed_question_is_blamed_with_its_path() {
    let src = base_with("    disclose: [identity]\n", "").replace(
        "  stop_calling: opt_out\n",
        "  stop_calling: opt_out\n  who_is_this: explain\n",
    ) + "  explain:\n    say: \"I am Acme's assistant.\"\n    next: resume\n";
    // One handler line added above `greet` and its `disclose` line removed: `greet` is at 23:3
    // and speaks first; the handler step is entered from it.
    has(
        &src,
        "compliance",
        23,
        3,
        "step `greet` speaks before the mandatory `identity`",
    );
    has(
        &src,
        "compliance",
        39,
        3,
        "step `explain` speaks before the mandatory `identity` disclosure on the path greet → explain",
    );
}

#[test]
fn handler_that_speaks_after_the_disclosed_question_is_fine() {
    // Handlers can only interrupt a question, and the only question comes after the disclosure,
    // so a handler speaking before the disclosure is impossible and must not be reported.
    let src = base_with(
        "  stop_calling: opt_out\n",
        "  stop_calling: opt_out\n  agent_request: agent\n",
    ) + "  agent:\n    say: \"Let me connect you.\"\n    transfer: { queue: support }\n";
    accepted(&src);
}

#[test]
fn transfer_before_the_disclosure() {
    let steps = r#"  route:
    branch:
      - if: lead.amount_due > 10000
        then: handoff
      - else: greet
  handoff:
    transfer: { queue: vip }
"#;
    let src = format!(
        "{}{steps}{GREET}{TAIL}",
        HEADER.replace("start: greet", "start: route")
    );
    only(
        &src,
        "compliance",
        27,
        3,
        "step `handoff` hands the call to an agent before the mandatory `identity` disclosure on the path route → handoff",
    );
}

#[test]
fn stop_calling_handler_missing() {
    only(
        &base_with("  stop_calling: opt_out\n", "  agent_request: opt_out\n"),
        "opt-out",
        1,
        1,
        "the flow does not handle `stop_calling`",
    );
}

#[test]
fn a_flow_that_never_listens_needs_no_stop_calling_handler() {
    // An announcement (e.g. the generic inbound flow) cannot hear an opt-out.
    let flow = accepted(
        r#"flow: announce
version: 1
compliance:
  disclosures:
    identity: "This is Acme Bank."
start: hello
steps:
  hello:
    disclose: [identity]
    say: "Your card has been sent."
    end: informed
"#,
    );
    assert_eq!(flow.steps.len(), 1);
}

#[test]
fn stop_calling_handler_that_ends_without_dnc() {
    has(
        &base_with("  stop_calling: opt_out\n", "  stop_calling: bye\n"),
        "opt-out",
        19,
        17,
        "the `stop_calling` handler can reach step `bye` without adding the number to the do-not-call list",
    );
}

#[test]
fn stop_calling_handler_with_a_branch_that_skips_dnc() {
    let src = base_with(
        "  stop_calling: opt_out\n",
        "  stop_calling: check_opt_out\n",
    ) + "  check_opt_out:\n    branch:\n      - if: lead.amount_due > 0\n        then: opt_out\n      - else: bye\n";
    only(
        &src,
        "opt-out",
        19,
        17,
        "the `stop_calling` handler can reach step `bye` without adding",
    );
}

// ---------------------------------------------------------------------------------------------
// Schema: keys, types, values.

#[test]
fn duplicate_key_names_both_lines() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you.\"\n    say: \"Thanks again.\"\n",
        ),
        "duplicate-key",
        31,
        5,
        "`say` appears twice in the same mapping (first at line 30)",
    );
}

#[test]
fn a_step_named_settings_does_not_collide_with_the_default_retry() {
    // Inline steps get derived names (`parent/key`); the settings' default retry must not clash
    // with the inline retry of a step that happens to be called `settings`.
    let src = base_with(
        "  no_match: { max: 1, then: bye }\n",
        "  no_match: { max: 1, then: { end: no_match } }\n",
    )
    .replace("      no: bye\n", "      no: settings\n")
        + "  settings:\n    ask: \"Anything else?\"\n    expect:\n      yes: thanks\n      no: bye\n    no_match: { max: 1, then: { end: no_match } }\n";
    let flow =
        dialog_flows::load_str(&src, Path::new("broken.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(flow.step("settings/no_match.then").is_some());
    assert!(flow.step("settings.defaults/no_match.then").is_some());
}

#[test]
fn misspelt_step_key_suggests_the_right_one() {
    only(
        &base_with("    say: \"Goodbye.\"\n", "    sey: \"Goodbye.\"\n"),
        "unknown-key",
        33,
        5,
        "unknown key `sey` in step `bye` (did you mean `say`?)",
    );
}

#[test]
fn misspelt_handler_suggests_the_right_one() {
    has(
        &base_with(
            "  stop_calling: opt_out\n",
            "  stop_calling: opt_out\n  agent_requst: bye\n",
        ),
        "unknown-key",
        20,
        3,
        "unknown handler `agent_requst` (did you mean `agent_request`?)",
    );
}

#[test]
fn missing_version() {
    only(
        &base_with("version: 1\n", ""),
        "missing-key",
        1,
        1,
        "the flow needs `version`",
    );
}

#[test]
fn webhook_without_on_failure() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Shall I look up your balance?"
    expect:
      yes: lookup
      no: bye
  lookup:
    webhook: { url: "https://bank.example/balance" }
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "missing-key",
        28,
        3,
        "webhook step `lookup` needs `on_failure`",
    );
}

#[test]
fn choice_slot_without_options() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Card or bank transfer?"
    collect: method
    type: choice
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "missing-key",
        25,
        14,
        "choice slot `method` needs `options`",
    );
}

#[test]
fn choice_slot_with_one_option() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Card or bank transfer?"
    collect: method
    type: choice
    options: [card]
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "schema",
        25,
        14,
        "choice slot `method` offers",
    );
}

#[test]
fn version_zero() {
    only(
        &base_with("version: 1\n", "version: 0\n"),
        "schema",
        2,
        10,
        "`version` starts at 1",
    );
}

#[test]
fn version_not_a_number() {
    only(
        &base_with("version: 1\n", "version: one\n"),
        "schema",
        2,
        10,
        "`version` must be a whole number",
    );
}

#[test]
fn currency_not_an_iso_code() {
    only(
        &base_with("currency: USD\n", "currency: dollars\n"),
        "schema",
        3,
        11,
        "`currency` is a three-letter ISO code",
    );
}

#[test]
fn lowercase_currency_is_rejected() {
    only(
        &base_with("currency: USD\n", "currency: usd\n"),
        "schema",
        3,
        11,
        "three-letter ISO code",
    );
}

#[test]
fn duration_with_words() {
    only(
        &base_with("settings:\n", "settings:\n  no_input_timeout: 5 minutes\n"),
        "schema",
        13,
        21,
        "`no_input_timeout` must be a duration such as `5s` or `500ms`",
    );
}

#[test]
fn duration_of_zero_and_too_long() {
    let greet = GREET.replace("      no: bye\n", "      no: bye\n    timeout: 0s\n");
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "schema",
        28,
        14,
        "`timeout` must be a duration",
    );
    let greet = GREET.replace("      no: bye\n", "      no: bye\n    timeout: 11m\n");
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "schema",
        28,
        14,
        "(at most 10m)",
    );
}

#[test]
fn unknown_slot_type_suggests_the_closest() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "When can you pay?"
    collect: pay_date
    type: dat
    next: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "schema",
        26,
        11,
        "unknown slot type `dat` (did you mean `date`?)",
    );
}

#[test]
fn unknown_lead_field_type() {
    only(
        &base_with("  amount_due: amount\n", "  amount_due: money\n"),
        "schema",
        8,
        15,
        "unknown field type `money`",
    );
}

#[test]
fn else_that_is_not_last() {
    let greet = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: route
      no: bye
  route:
    branch:
      - else: bye
      - if: lead.amount_due > 100
        then: thanks
"#;
    only(
        &format!("{HEADER}{greet}{TAIL}"),
        "schema",
        30,
        9,
        "`else` must be the last item of a `branch`",
    );
}

#[test]
fn two_actions_in_one_step() {
    only(
        &base_with("      no: bye\n", "      no: bye\n    end: done\n"),
        "schema",
        29,
        5,
        "step `greet` has more than one action (ask, end); split it into steps",
    );
}

#[test]
fn ask_keys_on_a_say_step() {
    only(
        &base_with(
            "    say: \"Goodbye.\"\n",
            "    say: \"Goodbye.\"\n    collect: reason\n",
        ),
        "schema",
        34,
        5,
        "`collect` belongs to an `ask` step; step `bye` is a",
    );
}

#[test]
fn ask_step_cannot_also_say() {
    only(
        &base_with(
            "    disclose: [identity]\n",
            "    disclose: [identity]\n    say: \"Hello.\"\n",
        ),
        "schema",
        24,
        10,
        "step cannot also `say`",
    );
}

#[test]
fn step_that_does_nothing() {
    let src = base_with(
        "    say: \"Goodbye.\"\n    end: done\n",
        "    next: thanks\n",
    );
    has(&src, "schema", 32, 3, "step `bye` does nothing");
}

#[test]
fn send_dtmf_with_letters() {
    let src = base_with(
        "    say: \"Thank you.\"\n    end: paid\n",
        "    send_dtmf: \"12x\"\n    next: { end: paid }\n",
    );
    only(&src, "schema", 30, 16, "`send_dtmf` may hold only 0-9");
}

// ---------------------------------------------------------------------------------------------
// Expressions and templates.

const ROUTE: &str = r#"  greet:
    disclose: [identity]
    ask: "Can you pay today?"
    expect:
      yes: route
      no: bye
  route:
    branch:
      - if: COND
        then: thanks
      - else: bye
"#;

fn with_condition(cond: &str) -> String {
    format!("{HEADER}{}{TAIL}", ROUTE.replace("COND", cond))
}

#[test]
fn condition_is_valid_in_the_route_template() {
    accepted(&with_condition(
        "lead.amount_due > 100 and (lead.first_name != 'x')",
    ));
}

#[test]
fn single_equals_in_a_condition() {
    only(
        &with_condition("lead.amount_due = 100"),
        "expression",
        30,
        29,
        "use `==` to compare, not `=`",
    );
}

#[test]
fn single_equals_in_a_quoted_condition() {
    // The quote shifts the text by one column.
    only(
        &with_condition("\"lead.amount_due = 100\""),
        "expression",
        30,
        30,
        "use `==` to compare",
    );
}

#[test]
fn unclosed_parenthesis() {
    only(
        &with_condition("(lead.amount_due > 100"),
        "expression",
        30,
        35,
        "a `(` is never closed",
    );
}

#[test]
fn condition_ending_in_an_operator() {
    only(
        &with_condition("lead.amount_due >"),
        "expression",
        30,
        30,
        "the condition ends where a value was expected",
    );
}

#[test]
fn two_values_without_an_operator() {
    only(
        &with_condition("lead.amount_due 100"),
        "expression",
        30,
        29,
        "unexpected text after the end of the condition",
    );
}

#[test]
fn unknown_filter() {
    only(
        &base_with(
            "{{lead.amount_due | money}}",
            "{{lead.amount_due | dollars}}",
        ),
        "unknown-filter",
        24,
        25,
        "unknown filter `dollars`; filters are money, date",
    );
}

#[test]
fn unclosed_placeholder() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you {{lead.first_name.\"\n",
        ),
        "template",
        30,
        21,
        "`{{` is never closed with `}}`",
    );
}

#[test]
fn placeholder_with_logic_in_it() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you {{ lead.amount_due * 2 }}.\"\n",
        ),
        "template",
        30,
        24,
        "`lead.amount_due * 2` is not a name",
    );
}

#[test]
fn closing_braces_without_opening() {
    only(
        &base_with(
            "    say: \"Thank you.\"\n",
            "    say: \"Thank you lead.first_name}}.\"\n",
        ),
        "template",
        30,
        36,
        "`}}` without a matching `{{`",
    );
}

#[test]
fn malformed_yaml() {
    only(
        &base_with("    say: \"Goodbye.\"\n", "    say: \"Goodbye.\n"),
        "yaml",
        33,
        10,
        "this is not valid YAML: invalid indentation in quoted scalar",
    );
}

#[test]
fn tab_indentation_is_malformed_yaml() {
    let e = rejected(&base_with("    end: done\n", "\tend: done\n"));
    assert_eq!(e.diagnostics.len(), 1, "{e}");
    assert_eq!(e.diagnostics[0].code, "yaml", "{e}");
    assert_eq!(e.diagnostics[0].pos.line, 34, "{e}");
}

#[test]
fn ask_without_escalation_and_no_default() {
    let src = base_with("  no_match: { max: 1, then: bye }\n", "");
    only(
        &src,
        "no-escalation",
        21,
        3,
        "step `greet` has no `no_match` handling and `settings` has no default",
    );
}

// ---------------------------------------------------------------------------------------------
// Reporting.

#[test]
fn display_is_file_line_column_code_message() {
    let e = rejected(&base_with("version: 1\n", "version: 0\n"));
    assert_eq!(
        e.to_string(),
        "broken.yaml:2:10: error[schema]: `version` starts at 1"
    );
}

#[test]
fn every_schema_error_in_a_file_is_reported_in_order() {
    let src = base_with("version: 1\n", "version: 0\n")
        .replace("currency: USD\n", "currency: usd\n")
        .replace(
            "    say: \"Goodbye.\"\n",
            "    sey: \"Goodbye.\"\n    say: \"Goodbye.\"\n",
        )
        .replace("      yes: thanks\n", "      yes: thanx\n");
    let e = rejected(&src);
    let got: Vec<(usize, usize, &str)> = e
        .diagnostics
        .iter()
        .map(|d| (d.pos.line, d.pos.col, d.code))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, 10, "schema"),
            (3, 11, "schema"),
            (26, 12, "unknown-step"),
            (33, 5, "unknown-key"),
        ],
        "{e}"
    );
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(
        lines[0],
        "broken.yaml:2:10: error[schema]: `version` starts at 1"
    );
    assert!(
        lines[2]
            .starts_with("broken.yaml:26:12: error[unknown-step]: there is no step named `thanx`"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("broken.yaml:33:5: error[unknown-key]: unknown key `sey`"),
        "{text}"
    );
}

#[test]
fn every_validation_error_in_a_file_is_reported() {
    let src = base_with("{{lead.first_name}}?", "{{lead.firstname}}?").replace(
        "    say: \"Thank you.\"\n",
        "    say: \"Thank you, {{vars.total}}.\"\n",
    ) + "  orphan:\n    say: \"Nobody gets here.\"\n    end: done\n";
    let e = rejected(&src);
    let got: Vec<(usize, usize, &str)> = e
        .diagnostics
        .iter()
        .map(|d| (d.pos.line, d.pos.col, d.code))
        .collect();
    assert_eq!(
        got,
        vec![
            (24, 60, "unknown-lead-field"),
            (30, 24, "unknown-var"),
            (39, 3, "unreachable")
        ],
        "{e}"
    );
    assert_eq!(e.to_string().lines().count(), 3);
}

// ---------------------------------------------------------------------------------------------
// The shipped flows.

#[test]
fn every_shipped_flow_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
    let files = dialog_flows::flow_files(&dir).expect("the flows directory is readable");
    assert!(!files.is_empty(), "no flow files in {}", dir.display());
    for f in &files {
        if let Err(e) = dialog_flows::load(f) {
            panic!("{} does not load:\n{e}", f.display());
        }
    }
}

#[test]
fn voicemail_message_is_checked_like_a_disclosure() {
    let ok = accepted(&base_with(
        "settings:\n",
        "voicemail:\n  message: \"A message for {{lead.first_name}} from {{bank.name}}.\"\nsettings:\n",
    ));
    assert!(ok.voicemail.is_some());
    // A slot is never known when a machine answers.
    only(
        &base_with(
            "settings:\n",
            "voicemail:\n  message: \"You owe {{slots.amount}}.\"\nsettings:\n",
        ),
        "unknown-slot",
        13,
        23,
        "no step collects slot `amount`",
    );
    has(
        &base_with("settings:\n", "voicemail:\n  text: \"Hi\"\nsettings:\n"),
        "unknown-key",
        13,
        3,
        "unknown key `text`",
    );
}
