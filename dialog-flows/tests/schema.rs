//! The JSON Schema of the flow language (`flow.schema.json`) against the loader: the schema is a
//! valid draft 2020-12 schema, it names exactly the keys and enum values the decoder knows, every
//! sample flow passes it, and flows the loader rejects for schema reasons are rejected by the
//! schema too.

use std::path::Path;

use dialog_flows::ast::{FieldType, Handler, SlotType};
use dialog_flows::schema::json_schema;
use dialog_flows::yaml::{self, Node, Value as Y};
use serde_json::{Map, Number, Value};

const TOP_KEYS: &[&str] = &[
    "flow",
    "version",
    "language",
    "description",
    "currency",
    "bank",
    "lead",
    "compliance",
    "settings",
    "voicemail",
    "intents",
    "handlers",
    "start",
    "steps",
];

const STEP_KEYS: &[&str] = &[
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
];

/// The YAML tree as JSON, the way an editor sees it: quoted scalars are strings, plain scalars
/// that read as booleans or numbers become booleans or numbers, empty plain scalars are null.
fn to_json(n: &Node) -> Value {
    match &n.value {
        Y::Null => Value::Null,
        Y::Scalar { text, quoted: true } => Value::String(text.clone()),
        Y::Scalar {
            text,
            quoted: false,
        } => {
            if let Some(b) = n.as_bool() {
                Value::Bool(b)
            } else if let Ok(i) = text.parse::<i64>() {
                Value::from(i)
            } else if let Ok(u) = text.parse::<u64>() {
                Value::from(u)
            } else if let Some(f) = n.as_f64().and_then(Number::from_f64) {
                Value::Number(f)
            } else {
                Value::String(text.clone())
            }
        }
        Y::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Y::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.as_str().unwrap_or("").to_string(), to_json(v));
            }
            Value::Object(m)
        }
    }
}

fn yaml_json(src: &str) -> Value {
    to_json(&yaml::parse(src).expect("the test YAML parses"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft202012::new(&json_schema()).expect("the schema compiles")
}

/// The schema's complaints about a flow, one line each (empty: valid).
fn schema_errors(v: &jsonschema::Validator, src: &str) -> Vec<String> {
    let json = yaml_json(src);
    v.iter_errors(&json)
        .map(|e| format!("{} at `{}`", e, e.instance_path))
        .collect()
}

/// The schema a `$ref` points at, or the schema itself.
fn resolve<'a>(schema: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("local $ref");
            &schema["$defs"][name]
        }
        None => s,
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = v.iter().map(|s| (*s).to_string()).collect();
    k.sort();
    k
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = json_schema();
    assert!(schema.is_object(), "flow.schema.json did not parse");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!(
            "the schema breaks the meta-schema: {e} at {}",
            e.instance_path
        );
    }
    // The embedded copy is the file on disk.
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("flow.schema.json"))
            .expect("read flow.schema.json"),
    )
    .expect("flow.schema.json is JSON");
    assert_eq!(schema, on_disk);
    validator();
}

#[test]
fn the_schema_names_exactly_the_keys_and_enums_of_the_language() {
    let schema = json_schema();
    assert_eq!(keys(&schema["properties"]), sorted(TOP_KEYS));
    assert_eq!(schema["additionalProperties"], false);
    let step = &schema["$defs"]["step"];
    assert_eq!(keys(&step["properties"]), sorted(STEP_KEYS));
    assert_eq!(step["additionalProperties"], false);

    let handlers: Vec<&str> = Handler::ALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        keys(&schema["properties"]["handlers"]["properties"]),
        sorted(&handlers)
    );
    assert_eq!(
        schema["properties"]["handlers"]["additionalProperties"],
        false
    );

    let slot_types: Vec<&str> = SlotType::ALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        schema["$defs"]["slotType"]["enum"],
        serde_json::json!(slot_types)
    );
    let field_types: Vec<&str> = FieldType::ALL.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        schema["$defs"]["fieldType"]["enum"],
        serde_json::json!(field_types)
    );

    // Every key an author types has a description (on the property or on its definition).
    let props = schema["properties"]
        .as_object()
        .into_iter()
        .chain(step["properties"].as_object())
        .flat_map(|m| m.iter());
    for (k, p) in props {
        let described = p
            .get("description")
            .or(resolve(&schema, p).get("description"));
        assert!(
            described
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty()),
            "`{k}` has no description"
        );
    }
}

/// The decoder's source, to read the key lists it accepts.
fn decode_source() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/decode.rs"))
        .expect("read src/decode.rs")
}

/// The quoted strings in `text`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The strings of `const NAME: &[&str] = &[...];` in the decoder.
fn const_list(src: &str, name: &str) -> Vec<String> {
    let start = src
        .find(&format!("const {name}: &[&str] = &["))
        .unwrap_or_else(|| panic!("decode.rs has no `{name}`"));
    let body = &src[start..];
    let body = &body[body.find("= &[").expect("list") + 4..body.find("];").expect("end")];
    let mut v = quoted(body);
    v.sort();
    v
}

/// Every literal key list the decoder checks mappings against (`keys(m, &["a", "b"], ..)`).
fn literal_key_lists(src: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in src.match_indices("keys(") {
        if src[..i].ends_with("fn ") {
            continue; // the definition
        }
        let rest = &src[i + "keys(".len()..];
        let (Some(open), Some(close)) = (rest.find("&["), rest.find(')')) else {
            continue;
        };
        if open > close {
            continue; // `keys(m, STEP_KEYS, ..)`
        }
        let list = &rest[open + 2..open + rest[open..].find(']').expect("]")];
        let mut keys = quoted(list);
        keys.sort();
        out.push(keys);
    }
    out
}

/// The property names of every object schema that allows no other keys.
fn closed_objects(v: &Value, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            if m.get("additionalProperties") == Some(&Value::Bool(false))
                && let Some(p) = m.get("properties")
            {
                out.push(keys(p));
            }
            for (k, child) in m {
                if k == "properties" {
                    for prop in child.as_object().into_iter().flat_map(|p| p.values()) {
                        closed_objects(prop, out);
                    }
                } else {
                    closed_objects(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| closed_objects(i, out)),
        _ => {}
    }
}

#[test]
fn the_schema_follows_the_key_lists_of_the_decoder() {
    let src = decode_source();
    let schema = json_schema();
    assert_eq!(
        const_list(&src, "TOP_KEYS"),
        sorted(TOP_KEYS),
        "decode.rs TOP_KEYS changed"
    );
    assert_eq!(
        const_list(&src, "STEP_KEYS"),
        sorted(STEP_KEYS),
        "decode.rs STEP_KEYS changed"
    );
    // A step must have `say`, `disclose` or one action: the actions are the decoder's.
    let mut actions: Vec<String> = schema["$defs"]["step"]["anyOf"]
        .as_array()
        .expect("step anyOf")
        .iter()
        .map(|r| r["required"][0].as_str().expect("required").to_string())
        .filter(|k| k != "say" && k != "disclose")
        .collect();
    actions.sort();
    assert_eq!(actions, const_list(&src, "ACTION_KEYS"));

    let mut objects = Vec::new();
    closed_objects(&schema, &mut objects);
    let lists = literal_key_lists(&src);
    assert!(
        lists.len() >= 10,
        "found only {} key lists in decode.rs",
        lists.len()
    );
    for list in lists {
        assert!(
            objects.contains(&list),
            "the decoder accepts exactly {list:?} somewhere, but no closed object in the schema has those keys"
        );
    }
}

#[test]
fn every_sample_flow_passes_the_schema() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
    let files = dialog_flows::flow_files(&dir).expect("list flows/");
    assert!(!files.is_empty(), "no sample flows in {}", dir.display());
    let v = validator();
    let mut failures = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read the flow");
        let errs = schema_errors(&v, &src);
        if !errs.is_empty() {
            failures.push(format!("{}:\n  {}", f.display(), errs.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Uses every form the language offers; the loader accepts it, so the schema must.
const KITCHEN_SINK: &str = r#"
flow: kitchen_sink
version: 3
language: en-GB
description: Every construct of the language.
currency: GBP
bank:
  name: Northwind Bank
  phone: 18005550100
lead:
  first_name: text
  amount_due: { type: amount }
  due_date: { type: date, required: false }
  account: digits
  vip: bool
  limit: number
  since: datetime
compliance:
  disclosures:
    identity: "Hello, this is {{bank.name}}."
    recording: This call is recorded.
settings:
  no_input_timeout: 4.5
  min_confidence: 0.5
  max_turns: 30
  no_match: { reprompt: "Sorry?", max: 2, then: agent }
  no_input: { reprompt: ["Are you there?", "Hello?"], max: 1, then: { end: no_response } }
intents:
  pay_now: [I'll pay now, "pay it today"]
  agent_request: [a real person please]
handlers:
  agent_request: agent
  stop_calling: opt_out
  who_is_this: { disclose: identity, say: "We are {{bank.name}}.", next: resume }
  call_me_later: ask_callback
  negative_sentiment: { transfer: complaints }
start: greet
steps:
  greet:
    disclose: [identity, recording]
    say: "Hi {{lead.first_name}}."
    next: route
  route:
    branch:
      - if: lead.vip
        then: vip_hello
      - if: lead.amount_due > 1000
        then: { say: "That's a large balance.", next: ask_menu }
      - else: ask_menu
  vip_hello:
    say: Thank you for being a valued customer.
    next: ask_menu
  ask_menu:
    ask: "Say pay, dispute or help, or press 1, 2 or 3."
    collect: menu
    type: choice
    options:
      pay: [make a payment, pay now]
      dispute: { phrases: [wrong charge], dtmf: 2 }
      help: { dtmf: "3" }
      other:
      card_lost: lost card
    dtmf: { max_digits: 1, terminator: null }
    timeout: 8s
    hints: [pay, dispute, 42]
    no_match: { then: agent }
    no_input: { max: 0, then: agent }
    next: menu_route
  menu_route:
    branch:
      - if: "slots.menu == 'pay'"
        then: ask_ready
      - if: "slots.menu == 'dispute'"
        then: { transfer: { queue: disputes, priority: 9 } }
      - else: ask_account
  ask_ready:
    ask: Are you ready to pay now?
    expect:
      yes: ask_amount
      pay_now: ask_amount
      no: bye
  ask_amount:
    ask: How much will you pay?
    collect: amount
    type: amount
    min: 1
    max: lead.amount_due
    invalid: That is more than you owe.
    confirm: "So {{slots.amount | money}}?"
    next: ask_date
  ask_date:
    ask: When?
    collect: pay_date
    type: date
    min: today
    max: today + 14
    next: record
  record:
    set:
      promised: true
      twice: slots.amount * 2
      note: "'promise'"
      count: 1
      cleared:
    next: notify
  notify:
    webhook:
      url: "https://api.example.com/promises/{{lead.account}}"
      method: put
      body: { amount: "{{slots.amount}}", date: "{{slots.pay_date}}", n: 5 }
      timeout: 500ms
      save_as: receipt
    next: tones
    on_failure: { say: "Our system is slow; your promise is noted.", next: bye }
  tones:
    send_dtmf: "12#,*"
    next: more_tones
  more_tones:
    send_dtmf: 1234
    next: bye
  bye:
    say: Goodbye.
    end: { outcome: promise_to_pay }
  ask_account:
    ask: What is your account number?
    collect: account_no
    type: digits
    length: [6, 8]
    dtmf: true
    next: ask_pin
  ask_pin:
    ask: And your PIN?
    collect: pin
    type: digits
    length: 4
    dtmf: false
    next: { end: account_given }
  ask_callback:
    ask: When should we call you back?
    collect: callback_time
    type: datetime
    timeout: 1m
    next: schedule
  schedule:
    callback: { at: slots.callback_time, note: "Requested by the customer" }
    say: We will call you then.
    next: { end: callback_requested }
  opt_out:
    dnc:
    next: { dnc: { reason: "asked twice" }, next: { dnc: third time, next: { dnc: {}, next: { end: opted_out } } } }
  agent:
    say: Connecting you.
    transfer: { queue: collections, priority: 0, reason: "needs help", on_no_agent: { end: no_agent } }
  complaints_done:
    say: Sorry to hear that.
    end: paid
"#;

#[test]
fn a_flow_using_every_form_passes_the_loader_and_the_schema() {
    // `complaints_done` would be unreachable; reach it from the menu.
    let src = KITCHEN_SINK.replace("      - else: ask_account", "      - if: \"slots.menu == 'other'\"\n        then: complaints_done\n      - else: ask_account");
    if let Err(e) = dialog_flows::load_str(&src, Path::new("kitchen_sink.yaml")) {
        panic!("the loader rejects the kitchen-sink flow:\n{e}");
    }
    let errs = schema_errors(&validator(), &src);
    assert!(
        errs.is_empty(),
        "the schema rejects the kitchen-sink flow:\n{}",
        errs.join("\n")
    );
}

/// A small valid flow; each broken flow below changes one thing in it.
const BASE: &str = r#"flow: base
version: 1
lead:
  first_name: text
handlers:
  stop_calling: opt_out
start: greet
steps:
  greet:
    say: "Hello {{lead.first_name}}."
    next: ask_pay
  ask_pay:
    ask: Can you pay today?
    expect:
      yes: ask_amount
      no: agent
    no_match: { then: agent }
    no_input: { then: agent }
  ask_amount:
    ask: How much?
    collect: amount
    type: amount
    min: 1
    next: record
    no_match: { then: agent }
    no_input: { max: 1, then: agent }
  record:
    webhook: { url: "https://bank.example/pay", method: POST, timeout: 3s }
    next: { end: paid }
    on_failure: agent
  agent:
    transfer: { queue: collections, priority: 5 }
  opt_out:
    dnc: { reason: asked }
    next: { end: opted_out }
"#;

/// `BASE` with `from` (which must occur exactly once) replaced by `to`.
fn broken(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replace(from, to)
}

/// `BASE` with one more step, `extra` (its keys, indented by four), reached from `ask_pay`.
fn extra_step(keys: &str) -> String {
    format!(
        "{}  extra:\n{keys}",
        broken("      no: agent", "      no: extra")
    )
}

/// `BASE` with `ask_pay` turned into a `branch` step with these items.
fn branch_step(items: &str) -> String {
    broken(
        "    ask: Can you pay today?\n    expect:\n      yes: ask_amount\n      no: agent\n    no_match: { then: agent }\n    no_input: { then: agent }\n",
        &format!("    branch:\n{items}"),
    )
}

#[test]
fn the_base_flow_passes_the_loader_and_the_schema() {
    if let Err(e) = dialog_flows::load_str(BASE, Path::new("base.yaml")) {
        panic!("the loader rejects BASE:\n{e}");
    }
    let errs = schema_errors(&validator(), BASE);
    assert!(
        errs.is_empty(),
        "the schema rejects BASE:\n{}",
        errs.join("\n")
    );
}

#[test]
fn broken_flows_are_rejected_by_the_schema_and_the_loader() {
    let cases: Vec<(&str, String)> = vec![
        (
            "unknown top-level key",
            broken("start: greet", "start: greet\nstrat: greet"),
        ),
        (
            "unknown step key",
            broken("    next: ask_pay", "    nxt: ask_pay"),
        ),
        ("unknown slot type", broken("type: amount", "type: money")),
        (
            "version is not a number",
            broken("version: 1", "version: two"),
        ),
        ("version is quoted", broken("version: 1", "version: \"1\"")),
        ("version 0", broken("version: 1", "version: 0")),
        ("priority above 9", broken("priority: 5", "priority: 12")),
        (
            "handler name typo",
            broken(
                "  stop_calling: opt_out",
                "  stop_calling: opt_out\n  agent_requests: agent",
            ),
        ),
        (
            "target is a number",
            broken("      no: agent", "      no: 5"),
        ),
        (
            "target is a list",
            broken("    on_failure: agent", "    on_failure: [agent]"),
        ),
        ("missing start", broken("start: greet\n", "")),
        ("missing steps", broken("steps:\n", "stepz:\n")),
        (
            "unknown lead field type",
            broken("first_name: text", "first_name: string"),
        ),
        (
            "lead field object without type",
            broken("first_name: text", "first_name: { required: true }"),
        ),
        (
            "transfer without queue",
            broken("{ queue: collections, priority: 5 }", "{ priority: 5 }"),
        ),
        (
            "unknown webhook method",
            broken("method: POST", "method: FETCH"),
        ),
        (
            "webhook url is not http",
            broken("https://bank.example/pay", "ftp://bank.example/pay"),
        ),
        (
            "webhook without on_failure",
            broken("    on_failure: agent\n", ""),
        ),
        (
            "retry without then",
            broken("no_input: { max: 1, then: agent }", "no_input: { max: 1 }"),
        ),
        (
            "retry max above 10",
            broken(
                "no_input: { max: 1, then: agent }",
                "no_input: { max: 11, then: agent }",
            ),
        ),
        (
            "end outcome is not a name",
            broken("{ end: paid }", "{ end: Paid Off }"),
        ),
        (
            "duration without a number",
            broken("timeout: 3s", "timeout: 3 sec"),
        ),
        ("zero duration", broken("timeout: 3s", "timeout: 0s")),
        (
            "two actions in one step",
            broken(
                "    dnc: { reason: asked }",
                "    dnc: { reason: asked }\n    end: opted_out",
            ),
        ),
        (
            "step without an action, say or disclose",
            broken("    say: \"Hello {{lead.first_name}}.\"\n", ""),
        ),
        (
            "disclosure-only step without next",
            broken(
                "    say: \"Hello {{lead.first_name}}.\"\n    next: ask_pay\n",
                "    disclose: []\n",
            ),
        ),
        (
            "say-only step without next",
            broken("    next: ask_pay\n", ""),
        ),
        (
            "ask step that says",
            broken(
                "    ask: Can you pay today?",
                "    say: Hi.\n    ask: Can you pay today?",
            ),
        ),
        ("collect without type", broken("    type: amount\n", "")),
        (
            "slot key on a say step",
            broken("    next: ask_pay", "    next: ask_pay\n    hints: [x]"),
        ),
        ("min on a text slot", broken("type: amount", "type: text")),
        (
            "choice without options",
            broken("type: amount\n    min: 1", "type: choice"),
        ),
        (
            "choice with one option",
            broken(
                "type: amount\n    min: 1",
                "type: choice\n    options: [card]",
            ),
        ),
        (
            "length on an amount slot",
            broken("    min: 1", "    length: 4"),
        ),
        (
            "expect is empty",
            broken(
                "    expect:\n      yes: ask_amount\n      no: agent\n",
                "    expect: {}\n",
            ),
        ),
        (
            "next on a transfer step",
            broken(
                "{ queue: collections, priority: 5 }",
                "{ queue: collections }\n    next: opt_out",
            ),
        ),
        (
            "currency in lower case",
            broken("version: 1", "version: 1\ncurrency: usd"),
        ),
        (
            "min_confidence above 1",
            broken(
                "version: 1",
                "version: 1\nsettings: { min_confidence: 1.5 }",
            ),
        ),
        (
            "unknown settings key",
            broken("version: 1", "version: 1\nsettings: { timeout: 5s }"),
        ),
        (
            "compliance unknown key",
            broken("version: 1", "version: 1\ncompliance: { disclosure: {} }"),
        ),
        (
            "intent named yes",
            broken("version: 1", "version: 1\nintents: { \"yes\": [yep] }"),
        ),
        (
            "intent without examples",
            broken("version: 1", "version: 1\nintents: { pay: [] }"),
        ),
        (
            "step named resume",
            broken("  agent:\n", "  resume:\n    end: x\n  agent:\n"),
        ),
        ("start is resume", broken("start: greet", "start: resume")),
        (
            "flow name with capitals",
            broken("flow: base", "flow: Base"),
        ),
        (
            "dnc as a list",
            broken("dnc: { reason: asked }", "dnc: [asked]"),
        ),
        (
            "dnc with an unknown key",
            broken("dnc: { reason: asked }", "dnc: { why: asked }"),
        ),
        (
            "callback without at",
            broken(
                "    dnc: { reason: asked }",
                "    callback: { note: later }",
            ),
        ),
        (
            "branch without else",
            branch_step("      - if: lead.first_name\n        then: ask_amount\n"),
        ),
        (
            "branch item with if and no then",
            branch_step("      - if: lead.first_name\n      - else: ask_amount\n"),
        ),
        (
            "branch item with else and then",
            branch_step(
                "      - if: lead.first_name\n        then: agent\n      - else: ask_amount\n        then: agent\n",
            ),
        ),
        ("empty branch", branch_step("      []\n")),
        (
            "set value is a list",
            extra_step("    set: { x: [1] }\n    next: agent\n"),
        ),
        (
            "send_dtmf with letters",
            extra_step("    send_dtmf: 12xy\n    next: agent\n"),
        ),
        (
            "on_failure on a say step",
            extra_step("    say: Hi.\n    next: agent\n    on_failure: agent\n"),
        ),
        (
            "option phrases not a list",
            extra_step(
                "    ask: Card or cash?\n    collect: how\n    type: choice\n    options: { card: { phrases: plastic }, cash: }\n    next: agent\n    no_match: { then: agent }\n    no_input: { then: agent }\n",
            ),
        ),
        (
            "ask with next but no collect",
            extra_step(
                "    ask: Really?\n    expect: { yes: agent }\n    next: agent\n    no_match: { then: agent }\n    no_input: { then: agent }\n",
            ),
        ),
        (
            "ask without collect or expect",
            extra_step(
                "    ask: Really?\n    no_match: { then: agent }\n    no_input: { then: agent }\n",
            ),
        ),
        (
            "option dtmf of two keys",
            broken(
                "type: amount\n    min: 1",
                "type: choice\n    options: { card: { dtmf: \"12\" }, cash: }",
            ),
        ),
        (
            "dtmf terminator",
            broken("    min: 1", "    min: 1\n    dtmf: { terminator: \"0\" }"),
        ),
        (
            "empty target name",
            broken("      no: agent", "      no: \"\""),
        ),
        ("empty start", broken("start: greet", "start: \"\"")),
        ("not a mapping", "- flow: base\n".to_string()),
    ];
    assert!(cases.len() >= 10);
    let v = validator();
    let mut disagreements = Vec::new();
    for (name, src) in &cases {
        let schema_ok = schema_errors(&v, src).is_empty();
        let loader_ok = dialog_flows::load_str(src, Path::new("broken.yaml")).is_ok();
        if schema_ok || loader_ok {
            disagreements.push(format!(
                "{name}: schema {}, loader {}",
                if schema_ok { "accepts" } else { "rejects" },
                if loader_ok { "accepts" } else { "rejects" }
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "broken flows that are not rejected by both:\n{}",
        disagreements.join("\n")
    );
}

#[test]
fn yaml_scalars_become_json_the_way_editors_read_them() {
    let j = yaml_json("a: 1\nb: '1'\nc: true\nd: 'true'\ne: 0.5\nf:\ng: 5s\nh: [x, 2]\n");
    assert_eq!(
        j,
        serde_json::json!({"a": 1, "b": "1", "c": true, "d": "true", "e": 0.5, "f": null, "g": "5s", "h": ["x", 2]})
    );
}
