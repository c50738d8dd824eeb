//! `callbot flow …` as a flow author runs it: the sample bank flows validate, their conversation
//! tests pass with the real NLU, broken flows are reported by file:line:column, and a simulated
//! chat works over a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn callbot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callbot"))
        .args(args)
        .output()
        .expect("run callbot")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn flows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dialog-flows/flows")
}

#[test]
fn sample_flows_validate() {
    let out = callbot(&["flow", "validate", flows().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for name in [
        "card_payment_reminder",
        "collections",
        "fraud_verification",
        "satisfaction_survey",
        "marketing_offer",
    ] {
        assert!(
            stdout.contains(&format!("flow `{name}` version")),
            "{stdout}"
        );
    }
}

#[test]
fn sample_conversation_tests_pass_with_the_real_nlu() {
    let out = callbot(&["flow", "test", flows().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let summary = stdout.lines().last().unwrap_or("");
    let passed: usize = summary
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 35, "{stdout}");
    assert!(summary.ends_with("0 failed"), "{stdout}");
    for f in [
        "card_payment_reminder",
        "collections",
        "fraud_verification",
        "satisfaction_survey",
        "marketing_offer",
    ] {
        assert!(
            stdout.contains(&format!("{f}.test.yaml")),
            "no tests for {f}"
        );
    }
}

#[test]
fn a_failing_conversation_test_shows_a_readable_diff() {
    let dir = tempfile::tempdir().unwrap();
    let flow = flows().join("card_payment_reminder.yaml");
    let test = dir.path().join("wrong.test.yaml");
    std::fs::write(
        &test,
        format!(
            "flow: {}\nnow: 2026-11-25T10:00:00\nlead: {{first_name: Ana, amount_due: 10, due_date: 2026-12-01, card_number: \"4217\"}}\ntests:\n  - name: expects the wrong reply\n    turns:\n      - user: yes\n      - bot: Good morning sunshine\n  - name: expects the wrong outcome\n    turns:\n      - user: no, wrong number\n    expect:\n      outcome: promise_today\n",
            flow.display()
        ),
    )
    .unwrap();
    let out = callbot(&["flow", "test", test.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("FAIL") && stdout.contains("wrong.test.yaml:5: expects the wrong reply"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 8: expected the bot to say \"Good morning sunshine\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("Can you pay it today?"),
        "the diff shows what the bot did say: {stdout}"
    );
    assert!(
        stdout.contains("outcome: expected `promise_today`, got `wrong_party`"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 2 failed"), "{stdout}");
}

#[test]
fn a_broken_flow_is_reported_by_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(flows().join("card_payment_reminder.yaml")).unwrap();
    let bad = good.replace("yes: remind", "yes: remindd");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, &bad).unwrap();
    let line = bad.lines().position(|l| l.contains("remindd")).unwrap() + 1;
    let col = bad.lines().nth(line - 1).unwrap().find("remindd").unwrap() + 1;
    let out = callbot(&["flow", "validate", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains(&format!("bad.yaml:{line}:{col}: error[unknown-step]: there is no step named `remindd` (did you mean `remind`?)")),
        "{stdout}"
    );
}

#[test]
fn simulate_chats_over_a_pipe() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callbot"))
        .args([
            "flow",
            "simulate",
            flows().join("card_payment_reminder.yaml").to_str().unwrap(),
            "--lead",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("dialog-flows/flows/tests/ana.lead.json")
                .to_str()
                .unwrap(),
            "--now",
            "2026-11-25T10:00",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"yes it's me\nI already paid that last week\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("bot: Am I speaking with Ana?"), "{stdout}");
    assert!(stdout.contains("[intent already_paid"), "{stdout}");
    assert!(stdout.contains("outcome: already_paid"), "{stdout}");
    assert!(
        stdout.contains("path: greet → confirm_identity → remind → thank_paid"),
        "{stdout}"
    );
}

#[test]
fn schema_prints_the_json_schema() {
    let out = callbot(&["flow", "schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        v.get("properties").and_then(|p| p.get("steps")).is_some(),
        "{v}"
    );
}

/// The code block that follows `<!-- quick-start: NAME -->` in README.md.
fn readme_block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- quick-start: {name} -->");
    let after = &readme[readme.find(&marker).expect("marker in README") + marker.len()..];
    let start = after.find("```yaml\n").expect("yaml block") + "```yaml\n".len();
    let len = after[start..].find("```").expect("block end");
    after[start..start + len].to_string()
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("my_flow.yaml");
    let test = dir.path().join("my_flow.test.yaml");
    std::fs::write(&flow, readme_block(&readme, "my_flow.yaml")).unwrap();
    std::fs::write(&test, readme_block(&readme, "my_flow.test.yaml")).unwrap();
    let out = callbot(&["flow", "validate", flow.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    let out = callbot(&["flow", "test", test.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}
