//! From the positioned YAML tree to a [`Flow`], collecting every schema error with its position.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::ast::*;
use crate::builtin;
use crate::error::{Diagnostic, Pos};
use crate::expr::Expression;
use crate::template::Template;
use crate::yaml::{Node, Value as Y};

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

const ACTION_KEYS: &[&str] = &[
    "ask",
    "branch",
    "set",
    "webhook",
    "send_dtmf",
    "transfer",
    "callback",
    "dnc",
    "end",
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

/// Closest known word, for "did you mean" hints.
pub(crate) fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let best = known
        .into_iter()
        .map(|k| (strsim_distance(word, k), k))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, k)) if d <= 2.max(word.len() / 3) => format!(" (did you mean `{k}`?)"),
        _ => String::new(),
    }
}

fn strsim_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// "a" or "an" before a step kind.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

struct Decoder {
    diags: Vec<Diagnostic>,
    steps: Vec<Step>,
    /// Step names in declaration order with their positions (for duplicate detection).
    names: HashMap<String, Pos>,
}

impl Decoder {
    fn err(&mut self, pos: Pos, code: &'static str, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(pos, code, msg));
    }

    fn map<'n>(&mut self, n: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match n.as_map() {
            Some(m) => Some(m),
            None => {
                self.err(
                    n.pos,
                    "schema",
                    format!(
                        "{what} must be a mapping (`key: value` lines), not {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    }

    fn keys(&mut self, m: &[(Node, Node)], allowed: &[&str], what: &str) {
        for (k, _) in m {
            let name = k.as_str().unwrap_or("");
            if !allowed.contains(&name) {
                let hint = suggest(name, allowed.iter().copied());
                self.err(
                    k.pos,
                    "unknown-key",
                    format!("unknown key `{name}` in {what}{hint}"),
                );
            }
        }
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.value {
            Y::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.err(
                    n.pos,
                    "schema",
                    format!("{what} must be text, not {}", n.kind()),
                );
                None
            }
        }
    }

    fn ident(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = self.string(n, what)?;
        if is_identifier(&s) {
            Some(s)
        } else {
            self.err(
                n.pos,
                "schema",
                format!("{what} `{s}` must be lower_snake_case (letters, digits, `_`)"),
            );
            None
        }
    }

    fn template(&mut self, n: &Node, what: &str) -> Option<Template> {
        let text = self.string(n, what)?;
        if text.trim().is_empty() {
            self.err(n.pos, "schema", format!("{what} is empty"));
            return None;
        }
        let offset =
            usize::from(matches!(&n.value, Y::Scalar { quoted: true, .. }) && !text.contains('\n'));
        match Template::parse(&text, n.pos, offset) {
            Ok(t) => Some(t),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn expression(&mut self, n: &Node, what: &str) -> Option<Expression> {
        let src = match &n.value {
            Y::Scalar { text, .. } => text.clone(),
            _ => {
                self.err(
                    n.pos,
                    "schema",
                    format!(
                        "{what} must be a condition such as `lead.days_overdue > 30`, not {}",
                        n.kind()
                    ),
                );
                return None;
            }
        };
        let offset = usize::from(matches!(&n.value, Y::Scalar { quoted: true, .. }));
        match Expression::parse(&src, n.pos, offset) {
            Ok(e) => Some(e),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn uint(&mut self, n: &Node, what: &str, max: u64) -> Option<u64> {
        match n.as_f64() {
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= max as f64 => Some(v as u64),
            _ => {
                self.err(
                    n.pos,
                    "schema",
                    format!("{what} must be a whole number from 0 to {max}"),
                );
                None
            }
        }
    }

    /// `5s`, `500ms`, `2m`, or a number of seconds.
    fn duration_ms(&mut self, n: &Node, what: &str) -> Option<u64> {
        let text = n.as_str().unwrap_or("").trim().to_string();
        let parsed = if let Some(v) = text.strip_suffix("ms") {
            v.trim().parse::<f64>().ok()
        } else if let Some(v) = text.strip_suffix('s') {
            v.trim().parse::<f64>().ok().map(|s| s * 1000.0)
        } else if let Some(v) = text.strip_suffix('m') {
            v.trim().parse::<f64>().ok().map(|m| m * 60_000.0)
        } else {
            text.parse::<f64>().ok().map(|s| s * 1000.0)
        };
        match parsed {
            Some(ms) if ms > 0.0 && ms <= 600_000.0 => Some(ms as u64),
            _ => {
                self.err(
                    n.pos,
                    "schema",
                    format!("{what} must be a duration such as `5s` or `500ms` (at most 10m)"),
                );
                None
            }
        }
    }

    /// A target: a step name, `resume`, or an inline step.
    fn target(&mut self, n: &Node, parent: &str, key: &str) -> Option<TargetRef> {
        match &n.value {
            Y::Scalar { text, .. } if text.trim().is_empty() => {
                self.err(n.pos, "schema", format!("`{key}` names no step"));
                None
            }
            Y::Scalar { text, .. } => Some(TargetRef {
                name: text.clone(),
                pos: n.pos,
                step: None,
            }),
            Y::Map(_) => {
                let name = format!("{parent}/{key}");
                self.step(&name, n, true);
                Some(TargetRef {
                    name,
                    pos: n.pos,
                    step: None,
                })
            }
            _ => {
                self.err(
                    n.pos,
                    "schema",
                    format!(
                        "`{key}` must name a step or hold an inline step such as `{{end: paid}}`, not {}",
                        n.kind()
                    ),
                );
                None
            }
        }
    }

    fn retry(&mut self, n: &Node, parent: &str, key: &str) -> Option<Retry> {
        let m = self.map(n, &format!("`{key}`"))?;
        self.keys(m, &["reprompt", "max", "then"], &format!("`{key}`"));
        let mut reprompts = Vec::new();
        if let Some(r) = n.get("reprompt") {
            match &r.value {
                Y::Seq(items) => {
                    for it in items {
                        if let Some(t) = self.template(it, "a reprompt") {
                            reprompts.push(t);
                        }
                    }
                }
                _ => {
                    if let Some(t) = self.template(r, "`reprompt`") {
                        reprompts.push(t);
                    }
                }
            }
        }
        let max = match n.get("max") {
            Some(v) => self.uint(v, "`max`", 10).map_or(2, |v| v as u32),
            None => 2,
        };
        let then = match n.get("then") {
            Some(t) => self.target(t, parent, &format!("{key}.then"))?,
            None => {
                self.err(
                    n.pos,
                    "missing-key",
                    format!("`{key}` needs `then`: where the call goes after {max} failed tries"),
                );
                return None;
            }
        };
        Some(Retry {
            reprompts,
            max,
            then,
        })
    }

    fn step(&mut self, name: &str, n: &Node, inline: bool) {
        if let Some(first) = self.names.get(name) {
            let first = *first;
            self.err(
                n.pos,
                "duplicate-step",
                format!(
                    "step `{name}` is defined twice (first at line {})",
                    first.line
                ),
            );
            return;
        }
        self.names.insert(name.to_string(), n.pos);
        let Some(m) = self.map(n, &format!("step `{name}`")) else {
            return;
        };
        self.keys(m, STEP_KEYS, &format!("step `{name}`"));
        let actions: Vec<&Node> = m
            .iter()
            .filter(|(k, _)| k.as_str().is_some_and(|k| ACTION_KEYS.contains(&k)))
            .map(|(k, _)| k)
            .collect();
        if actions.len() > 1 {
            let names: Vec<&str> = actions.iter().filter_map(|k| k.as_str()).collect();
            self.err(
                actions[1].pos,
                "schema",
                format!(
                    "step `{name}` has more than one action ({}); split it into steps",
                    names.join(", ")
                ),
            );
            return;
        }
        let action_key = actions.first().and_then(|k| k.as_str()).unwrap_or("say");
        let say = n.get("say").and_then(|s| self.template(s, "`say`"));
        if matches!(action_key, "ask" | "branch") && n.get("say").is_some() {
            let p = n.get("say").map_or(n.pos, |s| s.pos);
            self.err(
                p,
                "schema",
                format!("{} `{action_key}` step cannot also `say`: put the text in the question or in a step before it", article(action_key)),
            );
        }
        if action_key == "say" && n.get("say").is_none() && n.get("disclose").is_none() {
            self.err(
                n.pos,
                "schema",
                format!(
                    "step `{name}` does nothing: give it one of `say`, {}",
                    ACTION_KEYS
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            return;
        }
        // Keys that only make sense for `ask`.
        if action_key != "ask" {
            for k in [
                "collect", "type", "min", "max", "length", "options", "confirm", "invalid",
                "expect", "dtmf", "no_match", "no_input", "timeout", "hints",
            ] {
                if let Some((kn, _)) = m.iter().find(|(kk, _)| kk.as_str() == Some(k)) {
                    self.err(
                        kn.pos,
                        "schema",
                        format!(
                            "`{k}` belongs to an `ask` step; step `{name}` is {} `{action_key}` step", article(action_key)
                        ),
                    );
                }
            }
        }
        if action_key != "webhook"
            && let Some((kn, _)) = m.iter().find(|(kk, _)| kk.as_str() == Some("on_failure"))
        {
            self.err(kn.pos, "schema", "`on_failure` belongs to a `webhook` step");
        }
        let mut disclose = Vec::new();
        if let Some(d) = n.get("disclose") {
            let items: Vec<&Node> = match &d.value {
                Y::Seq(items) => items.iter().collect(),
                _ => vec![d],
            };
            for it in items {
                if let Some(s) = self.ident(it, "a disclosure name") {
                    disclose.push((s, it.pos));
                }
            }
        }
        let needs_next = matches!(
            action_key,
            "say" | "set" | "webhook" | "send_dtmf" | "callback" | "dnc"
        );
        let next = if needs_next {
            match n.get("next") {
                Some(t) => self.target(t, name, "next"),
                None => {
                    self.err(
                        n.pos,
                        "dead-end",
                        format!("step `{name}` has no `next`: say where the call goes after it (or end it with `end: OUTCOME`)"),
                    );
                    None
                }
            }
        } else {
            if action_key != "ask"
                && let Some((kn, _)) = m.iter().find(|(kk, _)| kk.as_str() == Some("next"))
            {
                self.err(
                    kn.pos,
                    "schema",
                    format!(
                        "{} `{action_key}` step does not continue with `next`",
                        article(action_key)
                    ),
                );
            }
            None
        };
        let body = n.get(action_key);
        let action = match action_key {
            "say" => next.map(|next| Action::Say { next }),
            "ask" => body
                .and_then(|b| self.ask(name, n, b))
                .map(|a| Action::Ask(Box::new(a))),
            "branch" => body.and_then(|b| self.branch(name, b)),
            "set" => match (body, next) {
                (Some(b), Some(next)) => self.set(b).map(|assign| Action::Set { assign, next }),
                _ => None,
            },
            "webhook" => match (body, next) {
                (Some(b), Some(next)) => self
                    .webhook(name, n, b, next)
                    .map(|w| Action::Webhook(Box::new(w))),
                _ => None,
            },
            "send_dtmf" => match (body, next) {
                (Some(b), Some(next)) => {
                    let digits = self.template(b, "`send_dtmf`");
                    if let Some(s) = b.as_str()
                        && !s.contains("{{")
                        && !s
                            .chars()
                            .all(|c| c.is_ascii_digit() || "*#ABCD,".contains(c))
                    {
                        self.err(
                            b.pos,
                            "schema",
                            "`send_dtmf` may hold only 0-9, *, #, A-D and `,` (a pause)",
                        );
                    }
                    digits.map(|digits| Action::SendDtmf { digits, next })
                }
                _ => None,
            },
            "transfer" => body.and_then(|b| self.transfer(name, b)),
            "callback" => match (body, next) {
                (Some(b), Some(next)) => self.callback(b, next),
                _ => None,
            },
            "dnc" => match (body, next) {
                (Some(b), Some(next)) => {
                    let reason = match &b.value {
                        Y::Map(m) => {
                            self.keys(m, &["reason"], "`dnc`");
                            match b.get("reason") {
                                Some(r) => self.template(r, "`dnc.reason`"),
                                None => Some(Template::plain("customer asked not to be called")),
                            }
                        }
                        Y::Null => Some(Template::plain("customer asked not to be called")),
                        _ => self.template(b, "`dnc`"),
                    };
                    reason.map(|reason| Action::Dnc { reason, next })
                }
                _ => None,
            },
            "end" => body.and_then(|b| {
                let outcome_node = match &b.value {
                    Y::Map(m) => {
                        self.keys(m, &["outcome"], "`end`");
                        b.get("outcome")
                    }
                    _ => Some(b),
                };
                match outcome_node {
                    Some(o) => self
                        .ident(o, "the outcome")
                        .map(|outcome| Action::End { outcome }),
                    None => {
                        self.err(b.pos, "missing-key", "`end` needs an `outcome`");
                        None
                    }
                }
            }),
            _ => None,
        };
        if let Some(action) = action {
            self.steps.push(Step {
                name: name.to_string(),
                pos: n.pos,
                inline,
                disclose,
                say,
                action,
            });
        }
    }

    fn ask(&mut self, name: &str, n: &Node, body: &Node) -> Option<Ask> {
        let prompt = self.template(body, "the question (`ask`)");
        let slot = match n.get("collect") {
            Some(c) => self.slot(n, c),
            None => {
                for k in [
                    "type", "min", "max", "length", "options", "confirm", "invalid",
                ] {
                    if let Some(v) = n.get(k) {
                        self.err(
                            v.pos,
                            "schema",
                            format!("`{k}` describes a slot, but step `{name}` has no `collect: SLOT_NAME`"),
                        );
                    }
                }
                None
            }
        };
        let confirm = n.get("confirm").and_then(|c| self.template(c, "`confirm`"));
        let invalid = n.get("invalid").and_then(|c| self.template(c, "`invalid`"));
        let mut expect = Vec::new();
        if let Some(e) = n.get("expect")
            && let Some(m) = self.map(e, "`expect`")
        {
            for (k, v) in m {
                let key_name = k.as_str().unwrap_or("").to_string();
                let key = match key_name.as_str() {
                    "yes" => ExpectKey::Yes,
                    "no" => ExpectKey::No,
                    other => ExpectKey::Intent(other.to_string()),
                };
                if let Some(t) = self.target(v, name, &format!("expect.{key_name}")) {
                    expect.push((key, k.pos, t));
                }
            }
            if m.is_empty() {
                self.err(e.pos, "schema", "`expect` is empty");
            }
        }
        let next = n.get("next").and_then(|t| self.target(t, name, "next"));
        if slot.is_some() && next.is_none() && n.get("next").is_none() {
            self.err(
                n.pos,
                "dead-end",
                format!("step `{name}` collects a slot but has no `next` for when it is filled"),
            );
        }
        if slot.is_none()
            && n.get("collect").is_none()
            && expect.is_empty()
            && n.get("expect").is_none()
        {
            self.err(
                n.pos,
                "dead-end",
                format!("step `{name}` asks a question but neither `collect`s a slot nor lists what it `expect`s"),
            );
        }
        if slot.is_none() && n.get("next").is_some() && n.get("collect").is_none() {
            let p = n.get("next").map_or(n.pos, |x| x.pos);
            self.err(p, "schema", "`next` on an `ask` step without `collect` is never taken: list answers under `expect`");
        }
        let dtmf = match n.get("dtmf") {
            None => None,
            Some(d) => match &d.value {
                Y::Scalar { .. } if d.as_bool() == Some(true) => Some(DtmfSpec {
                    max_digits: 20,
                    terminator: Some('#'),
                }),
                Y::Scalar { .. } if d.as_bool() == Some(false) => None,
                Y::Map(m) => {
                    self.keys(m, &["max_digits", "terminator"], "`dtmf`");
                    let max_digits = d
                        .get("max_digits")
                        .and_then(|v| self.uint(v, "`max_digits`", 32))
                        .unwrap_or(20) as usize;
                    let terminator = match d.get("terminator") {
                        None => Some('#'),
                        Some(t) if t.is_null() => None,
                        Some(t) => {
                            let s = t.as_str().unwrap_or("");
                            match s {
                                "#" | "*" => s.chars().next(),
                                _ => {
                                    self.err(
                                        t.pos,
                                        "schema",
                                        "`terminator` must be \"#\" or \"*\"",
                                    );
                                    None
                                }
                            }
                        }
                    };
                    Some(DtmfSpec {
                        max_digits: max_digits.max(1),
                        terminator,
                    })
                }
                _ => {
                    self.err(
                        d.pos,
                        "schema",
                        "`dtmf` must be `true` or `{max_digits: N, terminator: \"#\"}`",
                    );
                    None
                }
            },
        };
        let retry = |this: &mut Self, key: &str| -> Option<Option<Retry>> {
            match n.get(key) {
                Some(r) => this.retry(r, name, key).map(Some),
                None => Some(None),
            }
        };
        let no_match = retry(self, "no_match")?;
        let no_input = retry(self, "no_input")?;
        let timeout_ms = match n.get("timeout") {
            Some(t) => self.duration_ms(t, "`timeout`")?,
            None => 0,
        };
        let mut hints = Vec::new();
        if let Some(h) = n.get("hints") {
            match h.as_seq() {
                Some(items) => {
                    for it in items {
                        if let Some(s) = self.string(it, "a hint") {
                            hints.push(s);
                        }
                    }
                }
                None => self.err(h.pos, "schema", "`hints` must be a list of phrases"),
            }
        }
        let prompt = prompt?;
        // Retry defaults are filled in from `settings` after all steps are read.
        let placeholder = |pos: Pos| Retry {
            reprompts: Vec::new(),
            max: u32::MAX,
            then: TargetRef {
                name: String::new(),
                pos,
                step: None,
            },
        };
        Some(Ask {
            prompt,
            slot,
            confirm,
            invalid,
            expect,
            next,
            dtmf,
            no_match: no_match.unwrap_or_else(|| placeholder(n.pos)),
            no_input: no_input.unwrap_or_else(|| placeholder(n.pos)),
            timeout_ms,
            hints,
        })
    }

    fn slot(&mut self, n: &Node, c: &Node) -> Option<Slot> {
        let name = self.ident(c, "the slot name (`collect`)")?;
        let ty = match n.get("type") {
            None => {
                self.err(
                    c.pos,
                    "missing-key",
                    format!(
                        "slot `{name}` needs a `type`: one of {}",
                        SlotType::ALL
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return None;
            }
            Some(t) => {
                let s = t.as_str().unwrap_or("");
                match SlotType::ALL.iter().find(|(n, _)| *n == s) {
                    Some((_, ty)) => *ty,
                    None => {
                        let hint = suggest(s, SlotType::ALL.iter().map(|(n, _)| *n));
                        self.err(
                            t.pos,
                            "schema",
                            format!(
                                "unknown slot type `{s}`{hint}; types are {}",
                                SlotType::ALL
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let bound = |this: &mut Self, key: &str| -> Option<Expression> {
            let v = n.get(key)?;
            if !matches!(
                ty,
                SlotType::Amount | SlotType::Number | SlotType::Date | SlotType::DateTime
            ) {
                this.err(
                    v.pos,
                    "schema",
                    format!(
                        "`{key}` applies to amount, number and date slots, not `{}`",
                        ty.name()
                    ),
                );
                return None;
            }
            this.expression(v, &format!("`{key}`"))
        };
        let min = bound(self, "min");
        let max = bound(self, "max");
        let length = match n.get("length") {
            None => None,
            Some(l) => {
                if ty != SlotType::Digits {
                    self.err(l.pos, "schema", "`length` applies to `digits` slots");
                    None
                } else if let Some(v) = l.as_f64() {
                    let v = self.uint(l, "`length`", 64).unwrap_or(v as u64) as usize;
                    Some((v, v))
                } else if let Some(items) = l.as_seq() {
                    let a = items
                        .first()
                        .and_then(|i| self.uint(i, "`length` minimum", 64));
                    let b = items
                        .get(1)
                        .and_then(|i| self.uint(i, "`length` maximum", 64));
                    match (a, b, items.len()) {
                        (Some(a), Some(b), 2) if a <= b => Some((a as usize, b as usize)),
                        _ => {
                            self.err(l.pos, "schema", "`length` must be a number or `[min, max]`");
                            None
                        }
                    }
                } else {
                    self.err(l.pos, "schema", "`length` must be a number or `[min, max]`");
                    None
                }
            }
        };
        let mut options = Vec::new();
        match (n.get("options"), ty) {
            (Some(o), SlotType::Choice) => match &o.value {
                Y::Seq(items) => {
                    for it in items {
                        if let Some(name) = self.ident(it, "an option") {
                            options.push(ChoiceOption {
                                phrases: vec![name.replace('_', " ")],
                                name,
                                dtmf: None,
                            });
                        }
                    }
                }
                Y::Map(m) => {
                    for (k, v) in m {
                        let Some(oname) = self.ident(k, "an option") else {
                            continue;
                        };
                        let mut phrases = vec![oname.replace('_', " ")];
                        let mut dtmf = None;
                        match &v.value {
                            Y::Seq(items) => {
                                for it in items {
                                    if let Some(s) = self.string(it, "an option phrase") {
                                        phrases.push(s);
                                    }
                                }
                            }
                            Y::Map(om) => {
                                self.keys(om, &["phrases", "dtmf"], &format!("option `{oname}`"));
                                if let Some(p) = v.get("phrases").filter(|p| p.as_seq().is_none()) {
                                    self.err(
                                        p.pos,
                                        "schema",
                                        "an option's `phrases` must be a list",
                                    );
                                }
                                if let Some(items) = v.get("phrases").and_then(Node::as_seq) {
                                    for it in items {
                                        if let Some(s) = self.string(it, "an option phrase") {
                                            phrases.push(s);
                                        }
                                    }
                                }
                                if let Some(d) = v.get("dtmf") {
                                    let s = d.as_str().unwrap_or("").to_string();
                                    if s.len() == 1
                                        && s.chars()
                                            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                                    {
                                        dtmf = Some(s);
                                    } else {
                                        self.err(
                                            d.pos,
                                            "schema",
                                            "an option's `dtmf` is one key: 0-9, * or #",
                                        );
                                    }
                                }
                            }
                            Y::Null => {}
                            _ => {
                                if let Some(s) = self.string(v, "an option phrase") {
                                    phrases.push(s);
                                }
                            }
                        }
                        options.push(ChoiceOption {
                            name: oname,
                            phrases,
                            dtmf,
                        });
                    }
                }
                _ => self.err(
                    o.pos,
                    "schema",
                    "`options` must be a list of names or a mapping of name to phrases",
                ),
            },
            (Some(o), _) => self.err(o.pos, "schema", "`options` applies to `choice` slots"),
            (None, SlotType::Choice) => self.err(
                c.pos,
                "missing-key",
                format!("choice slot `{name}` needs `options`"),
            ),
            (None, _) => {}
        }
        if ty == SlotType::Choice && n.get("options").is_some() && options.len() < 2 {
            self.err(
                c.pos,
                "schema",
                format!("choice slot `{name}` offers fewer than two options"),
            );
        }
        Some(Slot {
            name,
            ty,
            pos: c.pos,
            min,
            max,
            length,
            options,
        })
    }

    fn branch(&mut self, name: &str, b: &Node) -> Option<Action> {
        let Some(items) = b.as_seq() else {
            self.err(b.pos, "schema", "`branch` must be a list of `- if: CONDITION` / `then: STEP` items ending with `- else: STEP`");
            return None;
        };
        let mut arms = Vec::new();
        let mut otherwise = None;
        for (i, it) in items.iter().enumerate() {
            let Some(m) = self.map(it, "a branch item") else {
                continue;
            };
            if let Some(e) = it.get("else") {
                self.keys(m, &["else"], "an `else` item");
                if i + 1 != items.len() {
                    self.err(it.pos, "schema", "`else` must be the last item of a `branch`; the items after it can never run");
                }
                otherwise = self.target(e, name, "else");
                continue;
            }
            self.keys(m, &["if", "then"], "a branch item");
            let cond = match it.get("if") {
                Some(c) => self.expression(c, "`if`"),
                None => {
                    self.err(it.pos, "missing-key", "a branch item needs `if: CONDITION` and `then: STEP` (or is the final `else: STEP`)");
                    None
                }
            };
            let then = match it.get("then") {
                Some(t) => self.target(t, name, &format!("branch.{i}")),
                None => {
                    self.err(it.pos, "missing-key", "a branch item needs `then: STEP`");
                    None
                }
            };
            if let (Some(c), Some(t)) = (cond, then) {
                arms.push((c, t));
            }
        }
        match otherwise {
            Some(otherwise) => Some(Action::Branch { arms, otherwise }),
            None => {
                if items.last().is_none_or(|l| l.get("else").is_none()) {
                    self.err(b.pos, "dead-end", format!("the `branch` of step `{name}` has no final `- else: STEP`, so a call matching no condition would stop here"));
                }
                None
            }
        }
    }

    fn set(&mut self, b: &Node) -> Option<Vec<(String, Expression, Pos)>> {
        let m = self.map(b, "`set`")?;
        let mut out = Vec::new();
        for (k, v) in m {
            let Some(name) = self.ident(k, "a variable name") else {
                continue;
            };
            let expr = match &v.value {
                Y::Scalar { quoted: false, .. } | Y::Scalar { quoted: true, .. } => {
                    self.expression(v, &format!("the value of `{name}`"))
                }
                Y::Null => Some(Expression {
                    source: "null".into(),
                    pos: v.pos,
                    expr: crate::expr::Expr::Lit(crate::value::Value::Null),
                }),
                _ => {
                    self.err(v.pos, "schema", format!("the value of `{name}` must be an expression such as `slots.amount * 2` or `'text'`"));
                    None
                }
            };
            if let Some(e) = expr {
                out.push((name, e, k.pos));
            }
        }
        if out.is_empty() && !m.is_empty() {
            return None;
        }
        Some(out)
    }

    fn webhook(&mut self, name: &str, n: &Node, b: &Node, next: TargetRef) -> Option<Webhook> {
        let m = self.map(b, "`webhook`")?;
        self.keys(
            m,
            &["url", "method", "body", "timeout", "save_as"],
            "`webhook`",
        );
        let url = match b.get("url") {
            Some(u) => self.template(u, "`url`"),
            None => {
                self.err(b.pos, "missing-key", "`webhook` needs a `url`");
                None
            }
        };
        if let Some(u) = b.get("url").and_then(Node::as_str)
            && !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("{{"))
        {
            self.err(
                b.get("url").map_or(b.pos, |x| x.pos),
                "schema",
                "the webhook `url` must start with http:// or https://",
            );
        }
        let method = match b.get("method") {
            Some(v) => {
                let s = self
                    .string(v, "`method`")
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&s.as_str()) {
                    self.err(
                        v.pos,
                        "schema",
                        "`method` must be GET, POST, PUT, PATCH or DELETE",
                    );
                }
                s
            }
            None => "POST".to_string(),
        };
        let mut body = Vec::new();
        if let Some(bd) = b.get("body")
            && let Some(bm) = self.map(bd, "`body`")
        {
            for (k, v) in bm {
                let key = k.as_str().unwrap_or("").to_string();
                if let Some(t) = self.template(v, &format!("body field `{key}`")) {
                    body.push((key, t));
                }
            }
        }
        let timeout_ms = match b.get("timeout") {
            Some(t) => self.duration_ms(t, "`timeout`")?,
            None => 3000,
        };
        let save_as = match b.get("save_as") {
            Some(s) => Some(self.ident(s, "`save_as`")?),
            None => None,
        };
        let on_failure = match n.get("on_failure") {
            Some(t) => self.target(t, name, "on_failure")?,
            None => {
                self.err(n.pos, "missing-key", format!("webhook step `{name}` needs `on_failure`: where the call goes when the bank's system does not answer in time"));
                return None;
            }
        };
        Some(Webhook {
            url: url?,
            method,
            body,
            timeout_ms,
            save_as,
            next,
            on_failure,
        })
    }

    fn transfer(&mut self, name: &str, b: &Node) -> Option<Action> {
        if let Y::Scalar { .. } = &b.value {
            let queue = self.ident(b, "the queue")?;
            return Some(Action::Transfer(Box::new(Transfer {
                queue,
                priority: 5,
                reason: Template::plain("transferred by the flow"),
                on_no_agent: None,
                script: Vec::new(),
            })));
        }
        let m = self.map(b, "`transfer`")?;
        self.keys(
            m,
            &[
                "queue",
                "to",
                "priority",
                "reason",
                "on_no_agent",
                "script",
                "on_failure",
            ],
            "`transfer`",
        );
        let reason = match b.get("reason") {
            Some(r) => Some(self.template(r, "`reason`")?),
            None => None,
        };
        match (b.get("queue"), b.get("to")) {
            (Some(_), Some(to)) => {
                self.err(
                    to.pos,
                    "schema",
                    "`transfer` takes either `queue` (an agent queue) or `to` (an outside number for a cold transfer), not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    b.pos,
                    "missing-key",
                    "`transfer` needs a `queue` (an agent queue) or `to` (an outside number for a cold transfer)",
                );
                None
            }
            (None, Some(to)) => {
                for key in ["priority", "on_no_agent", "script"] {
                    if let Some((k, _)) = m.iter().find(|(k, _)| k.as_str() == Some(key)) {
                        self.err(
                            k.pos,
                            "schema",
                            format!("`{key}` belongs to a transfer to an agent `queue`, not to a cold transfer with `to`"),
                        );
                    }
                }
                let to_pos = to.pos;
                let to = self.template(to, "`to`")?;
                if to.names().next().is_none() {
                    let text = to.render(&|_| crate::value::Value::Null, "USD");
                    if transfer_destination(&text).is_none() {
                        self.err(
                            to_pos,
                            "schema",
                            format!("`to` must be an E.164 number (`+` and 8 to 15 digits, e.g. `+442071234567`) or a `sip:`/`sips:` URI, not `{text}`"),
                        );
                        return None;
                    }
                }
                let on_failure = match b.get("on_failure") {
                    Some(t) => Some(self.target(t, name, "on_failure")?),
                    None => None,
                };
                Some(Action::ColdTransfer(Box::new(ColdTransfer {
                    to,
                    reason: reason.unwrap_or_else(|| Template::plain("transferred by the flow")),
                    on_failure,
                })))
            }
            (Some(q), None) => {
                if let Some((k, _)) = m.iter().find(|(k, _)| k.as_str() == Some("on_failure")) {
                    self.err(
                        k.pos,
                        "schema",
                        "`on_failure` belongs to a cold transfer with `to`; a transfer to a `queue` falls back with `on_no_agent`",
                    );
                }
                let queue = self.ident(q, "the queue")?;
                let priority = match b.get("priority") {
                    Some(p) => self.uint(p, "`priority`", 9)? as u8,
                    None => 5,
                };
                let mut script = Vec::new();
                if let Some(sc) = b.get("script") {
                    match &sc.value {
                        Y::Seq(items) => {
                            for it in items {
                                script.push(self.template(it, "a `script` line")?);
                            }
                        }
                        _ => {
                            self.err(
                                sc.pos,
                                "schema",
                                format!(
                                    "`script` must be a list of lines for the agent (`- Confirm the date of birth`), not {}",
                                    sc.kind()
                                ),
                            );
                            return None;
                        }
                    }
                }
                let on_no_agent = match b.get("on_no_agent") {
                    Some(t) => Some(self.target(t, name, "on_no_agent")?),
                    None => None,
                };
                Some(Action::Transfer(Box::new(Transfer {
                    queue,
                    priority,
                    reason: reason.unwrap_or_else(|| Template::plain("transferred by the flow")),
                    on_no_agent,
                    script,
                })))
            }
        }
    }

    fn callback(&mut self, b: &Node, next: TargetRef) -> Option<Action> {
        let m = self.map(b, "`callback`")?;
        self.keys(m, &["at", "note"], "`callback`");
        let at = match b.get("at") {
            Some(a) => self.expression(a, "`at`")?,
            None => {
                self.err(b.pos, "missing-key", "`callback` needs `at`: a slot or expression giving the date/time, e.g. `slots.callback_time`");
                return None;
            }
        };
        let note = b.get("note").and_then(|t| self.template(t, "`note`"));
        Some(Action::Callback { at, note, next })
    }
}

/// Read a flow from its YAML tree. Returns the flow when there were no schema errors.
pub fn decode(root: &Node, file: &Path) -> Result<Flow, Vec<Diagnostic>> {
    let mut d = Decoder {
        diags: Vec::new(),
        steps: Vec::new(),
        names: HashMap::new(),
    };
    let Some(top) = d.map(root, "a flow file") else {
        return Err(d.diags);
    };
    d.keys(top, TOP_KEYS, "the flow");
    let req = |d: &mut Decoder, key: &str, what: &str| -> Option<&Node> {
        let v = root.get(key);
        if v.is_none() {
            d.err(
                root.pos,
                "missing-key",
                format!("the flow needs `{key}`: {what}"),
            );
        }
        v
    };
    let name = req(
        &mut d,
        "flow",
        "its name, e.g. `flow: card_payment_reminder`",
    )
    .and_then(|n| d.ident(n, "the flow name"));
    let version = req(&mut d, "version", "a whole number, raised on every change")
        .and_then(|v| d.uint(v, "`version`", 1_000_000))
        .map(|v| v as u32);
    if version == Some(0) {
        d.err(
            root.get("version").map_or(root.pos, |v| v.pos),
            "schema",
            "`version` starts at 1",
        );
    }
    let language = root
        .get("language")
        .and_then(|l| d.string(l, "`language`"))
        .unwrap_or_else(|| "en-US".into());
    let description = root
        .get("description")
        .and_then(|l| d.string(l, "`description`"));
    let currency = match root.get("currency") {
        Some(c) => {
            let s = d.string(c, "`currency`").unwrap_or_default();
            if s.len() != 3 || !s.chars().all(|c| c.is_ascii_uppercase()) {
                d.err(
                    c.pos,
                    "schema",
                    "`currency` is a three-letter ISO code such as USD, EUR or GBP",
                );
            }
            s
        }
        None => "USD".into(),
    };
    let mut bank = BTreeMap::new();
    if let Some(b) = root.get("bank")
        && let Some(m) = d.map(b, "`bank`")
    {
        for (k, v) in m {
            if let (Some(key), Some(val)) = (
                d.ident(k, "a bank field"),
                d.string(v, "a bank field's value"),
            ) {
                bank.insert(key, val);
            }
        }
    }
    let mut lead = BTreeMap::new();
    if let Some(l) = root.get("lead")
        && let Some(m) = d.map(l, "`lead`")
    {
        for (k, v) in m {
            let Some(field) = d.ident(k, "a lead field") else {
                continue;
            };
            let (tyn, required) = match &v.value {
                Y::Map(fm) => {
                    d.keys(fm, &["type", "required"], &format!("lead field `{field}`"));
                    let req = v.get("required").map(|r| match r.as_bool() {
                        Some(b) => b,
                        None => {
                            d.err(r.pos, "schema", "`required` is true or false");
                            true
                        }
                    });
                    (v.get("type"), req.unwrap_or(true))
                }
                _ => (Some(v), true),
            };
            let Some(tyn) = tyn else {
                d.err(
                    v.pos,
                    "missing-key",
                    format!("lead field `{field}` needs a `type`"),
                );
                continue;
            };
            let s = tyn.as_str().unwrap_or("");
            match FieldType::ALL.iter().find(|(n, _)| *n == s) {
                Some((_, ty)) => {
                    lead.insert(
                        field,
                        FieldDecl {
                            ty: *ty,
                            required,
                            pos: k.pos,
                        },
                    );
                }
                None => {
                    let hint = suggest(s, FieldType::ALL.iter().map(|(n, _)| *n));
                    d.err(
                        tyn.pos,
                        "schema",
                        format!(
                            "unknown field type `{s}`{hint}; types are {}",
                            FieldType::ALL
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }
    let mut disclosures = Vec::new();
    if let Some(c) = root.get("compliance")
        && let Some(m) = d.map(c, "`compliance`")
    {
        d.keys(m, &["disclosures"], "`compliance`");
        if let Some(ds) = c.get("disclosures")
            && let Some(dm) = d.map(ds, "`disclosures`")
        {
            for (k, v) in dm {
                if let (Some(name), Some(text)) = (
                    d.ident(k, "a disclosure name"),
                    d.template(v, "a disclosure"),
                ) {
                    disclosures.push(Disclosure {
                        name,
                        text,
                        pos: k.pos,
                    });
                }
            }
        }
    }
    let mut settings = Settings {
        no_input_timeout_ms: 6000,
        min_confidence: 0.45,
        no_match: None,
        no_input: None,
        max_turns: 40,
    };
    if let Some(s) = root.get("settings")
        && let Some(m) = d.map(s, "`settings`")
    {
        d.keys(
            m,
            &[
                "no_input_timeout",
                "min_confidence",
                "no_match",
                "no_input",
                "max_turns",
            ],
            "`settings`",
        );
        if let Some(t) = s.get("no_input_timeout")
            && let Some(ms) = d.duration_ms(t, "`no_input_timeout`")
        {
            settings.no_input_timeout_ms = ms;
        }
        if let Some(c) = s.get("min_confidence") {
            match c.as_f64() {
                Some(v) if (0.0..=1.0).contains(&v) => settings.min_confidence = v as f32,
                _ => d.err(c.pos, "schema", "`min_confidence` is a number from 0 to 1"),
            }
        }
        if let Some(t) = s.get("max_turns")
            && let Some(v) = d.uint(t, "`max_turns`", 1000)
        {
            settings.max_turns = v as u32;
        }
        settings.no_match = s
            .get("no_match")
            .and_then(|r| d.retry(r, "settings.defaults", "no_match"));
        settings.no_input = s
            .get("no_input")
            .and_then(|r| d.retry(r, "settings.defaults", "no_input"));
    }
    let voicemail = root.get("voicemail").and_then(|v| {
        let m = d.map(v, "`voicemail` (e.g. `voicemail: { message: \"…\" }`)")?;
        d.keys(m, &["message"], "`voicemail`");
        let message = v.get("message");
        if message.is_none() {
            d.err(
                v.pos,
                "missing-key",
                "`voicemail` needs `message`: what to leave on an answering machine (leave out `voicemail` to hang up instead)",
            );
        }
        message.and_then(|t| d.template(t, "the voicemail message"))
    });
    let mut intents: BTreeMap<String, IntentDecl> = BTreeMap::new();
    if let Some(i) = root.get("intents")
        && let Some(m) = d.map(i, "`intents`")
    {
        for (k, v) in m {
            let Some(name) = d.ident(k, "an intent name") else {
                continue;
            };
            if matches!(name.as_str(), "yes" | "no") {
                d.err(k.pos, "schema", "`yes` and `no` are built in (from the yes/no recogniser); do not declare them as intents");
                continue;
            }
            let mut examples = Vec::new();
            match v.as_seq() {
                Some(items) => {
                    for it in items {
                        if let Some(s) = d.string(it, "an example") {
                            if s.trim().is_empty() {
                                d.err(it.pos, "schema", "an empty example");
                            } else {
                                examples.push(s);
                            }
                        }
                    }
                }
                None => d.err(
                    v.pos,
                    "schema",
                    format!("intent `{name}` must list example utterances"),
                ),
            }
            if examples.is_empty() && v.as_seq().is_some() {
                d.err(v.pos, "schema", format!("intent `{name}` has no examples"));
            }
            intents.insert(
                name,
                IntentDecl {
                    examples,
                    pos: k.pos,
                    builtin: false,
                },
            );
        }
    }
    for (name, examples) in [
        ("agent_request", builtin::AGENT_REQUEST),
        ("stop_calling", builtin::STOP_CALLING),
        ("who_is_this", builtin::WHO_IS_THIS),
        ("call_me_later", builtin::CALL_ME_LATER),
    ] {
        let entry = intents.entry(name.to_string()).or_insert(IntentDecl {
            examples: Vec::new(),
            pos: Pos::default(),
            builtin: true,
        });
        for e in examples {
            if !entry.examples.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                entry.examples.push((*e).to_string());
            }
        }
    }
    let mut handlers = BTreeMap::new();
    if let Some(h) = root.get("handlers")
        && let Some(m) = d.map(h, "`handlers`")
    {
        for (k, v) in m {
            let key = k.as_str().unwrap_or("");
            match Handler::ALL.iter().find(|(n, _)| *n == key) {
                Some((_, handler)) => {
                    if let Some(t) = d.target(v, "handlers", key) {
                        handlers.insert(*handler, t);
                    }
                }
                None => {
                    let hint = suggest(key, Handler::ALL.iter().map(|(n, _)| *n));
                    d.err(
                        k.pos,
                        "unknown-key",
                        format!(
                            "unknown handler `{key}`{hint}; handlers are {}",
                            Handler::ALL
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }
    let start = req(&mut d, "start", "the first step's name").and_then(|s| {
        d.string(s, "`start`").map(|name| TargetRef {
            name,
            pos: s.pos,
            step: None,
        })
    });
    if let Some(steps) = req(&mut d, "steps", "the steps of the conversation")
        && let Some(m) = d.map(steps, "`steps`")
    {
        if m.is_empty() {
            d.err(steps.pos, "schema", "`steps` is empty");
        }
        for (k, v) in m {
            let Some(name) = d.ident(k, "a step name") else {
                continue;
            };
            if name == TargetRef::RESUME {
                d.err(
                    k.pos,
                    "schema",
                    "`resume` is reserved (it returns from a handler to the interrupted question)",
                );
                continue;
            }
            // Use the key's position for the step.
            let node = Node {
                pos: k.pos,
                value: v.value.clone(),
            };
            d.step(&name, &node, false);
        }
    }
    // Fill each ask's retry policy from the settings when it has none.
    let mut steps = std::mem::take(&mut d.steps);
    for s in &mut steps {
        if let Action::Ask(a) = &mut s.action {
            for (which, r, def) in [
                ("no_match", &mut a.no_match, &settings.no_match),
                ("no_input", &mut a.no_input, &settings.no_input),
            ] {
                if r.max == u32::MAX {
                    match def {
                        Some(def) => *r = def.clone(),
                        None => d.diags.push(Diagnostic::new(
                            s.pos,
                            "no-escalation",
                            format!("step `{}` has no `{which}` handling and `settings` has no default: say what happens after repeated failures (e.g. `{which}: {{max: 2, then: agent}}`)", s.name),
                        )),
                    }
                }
            }
        }
    }
    if let Some(s) = &start {
        if s.is_resume() {
            d.err(s.pos, "schema", "`start` cannot be `resume`");
        } else if s.name.trim().is_empty() {
            d.err(s.pos, "schema", "`start` names no step");
        }
    }
    let index: HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    // Resolve every target.
    let all_names: Vec<String> = steps
        .iter()
        .filter(|s| !s.inline)
        .map(|s| s.name.clone())
        .collect();
    let resolve = |t: &mut TargetRef, diags: &mut Vec<Diagnostic>| {
        if t.is_resume() {
            return;
        }
        match index.get(&t.name) {
            Some(&i) => t.step = Some(i),
            None => {
                if !t.name.is_empty() && !d.names.contains_key(&t.name) {
                    let hint = suggest(&t.name, all_names.iter().map(String::as_str));
                    diags.push(Diagnostic::new(
                        t.pos,
                        "unknown-step",
                        format!("there is no step named `{}`{hint}", t.name),
                    ));
                }
            }
        }
    };
    for s in &mut steps {
        for t in targets_mut(&mut s.action) {
            resolve(t, &mut d.diags);
        }
    }
    for t in handlers.values_mut() {
        resolve(t, &mut d.diags);
    }
    let mut start = start;
    if let Some(s) = &mut start {
        resolve(s, &mut d.diags);
    }
    if !d.diags.is_empty() {
        return Err(d.diags);
    }
    let (Some(name), Some(version), Some(start)) = (name, version, start) else {
        return Err(d.diags);
    };
    Ok(Flow {
        name,
        version,
        language,
        description,
        file: file.to_path_buf(),
        bank,
        currency,
        lead,
        disclosures,
        settings,
        voicemail,
        intents,
        handlers,
        start,
        steps,
        index,
    })
}

/// Every target of an action, in a fixed order.
pub fn targets(a: &Action) -> Vec<&TargetRef> {
    match a {
        Action::Say { next }
        | Action::Set { next, .. }
        | Action::SendDtmf { next, .. }
        | Action::Callback { next, .. }
        | Action::Dnc { next, .. } => vec![next],
        Action::Ask(a) => {
            let mut v: Vec<&TargetRef> = a.expect.iter().map(|(_, _, t)| t).collect();
            v.extend(a.next.iter());
            v.push(&a.no_match.then);
            v.push(&a.no_input.then);
            v
        }
        Action::Branch { arms, otherwise } => {
            let mut v: Vec<&TargetRef> = arms.iter().map(|(_, t)| t).collect();
            v.push(otherwise);
            v
        }
        Action::Webhook(w) => vec![&w.next, &w.on_failure],
        Action::Transfer(t) => t.on_no_agent.iter().collect(),
        Action::ColdTransfer(t) => t.on_failure.iter().collect(),
        Action::End { .. } => vec![],
    }
}

fn targets_mut(a: &mut Action) -> Vec<&mut TargetRef> {
    match a {
        Action::Say { next }
        | Action::Set { next, .. }
        | Action::SendDtmf { next, .. }
        | Action::Callback { next, .. }
        | Action::Dnc { next, .. } => vec![next],
        Action::Ask(a) => {
            let a = a.as_mut();
            let mut v: Vec<&mut TargetRef> = a.expect.iter_mut().map(|(_, _, t)| t).collect();
            v.extend(a.next.iter_mut());
            v.push(&mut a.no_match.then);
            v.push(&mut a.no_input.then);
            v
        }
        Action::Branch { arms, otherwise } => {
            let mut v: Vec<&mut TargetRef> = arms.iter_mut().map(|(_, t)| t).collect();
            v.push(otherwise);
            v
        }
        Action::Webhook(w) => vec![&mut w.next, &mut w.on_failure],
        Action::Transfer(t) => t.on_no_agent.iter_mut().collect(),
        Action::ColdTransfer(t) => t.on_failure.iter_mut().collect(),
        Action::End { .. } => vec![],
    }
}
