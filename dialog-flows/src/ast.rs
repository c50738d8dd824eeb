//! The flow, as the validator and interpreter see it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::error::Pos;
use crate::expr::Expression;
use crate::template::Template;

/// A parsed flow. Cheap to share: calls hold an `Arc<Flow>` of the version they started with.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub version: u32,
    pub language: String,
    pub description: Option<String>,
    pub file: PathBuf,
    /// Constants available as `{{bank.*}}`.
    pub bank: BTreeMap<String, String>,
    /// ISO currency code for the `money` filter.
    pub currency: String,
    /// The lead fields a campaign must provide, available as `{{lead.*}}`.
    pub lead: BTreeMap<String, FieldDecl>,
    /// Mandatory disclosures, all of which must be spoken before any other content.
    pub disclosures: Vec<Disclosure>,
    pub settings: Settings,
    /// The message left on an answering machine; `None` hangs up instead (see
    /// [`crate::Call::answering_machine`]).
    pub voicemail: Option<Template>,
    /// Intents by example utterances (flow-declared ones plus the built-in handler intents).
    pub intents: BTreeMap<String, IntentDecl>,
    pub handlers: BTreeMap<Handler, TargetRef>,
    pub start: TargetRef,
    pub steps: Vec<Step>,
    pub index: HashMap<String, usize>,
}

impl Flow {
    /// Every template the robot may speak: disclosures, reprompts, each step's text, questions,
    /// confirmations and invalid-answer messages, and the voicemail message, in flow order.
    pub fn prompt_templates(&self) -> Vec<&Template> {
        let mut out: Vec<&Template> = self.disclosures.iter().map(|d| &d.text).collect();
        for r in [&self.settings.no_match, &self.settings.no_input]
            .into_iter()
            .flatten()
        {
            out.extend(&r.reprompts);
        }
        for step in &self.steps {
            out.extend(&step.say);
            if let Action::Ask(ask) = &step.action {
                out.push(&ask.prompt);
                out.extend(&ask.confirm);
                out.extend(&ask.invalid);
                for r in [&ask.no_match, &ask.no_input] {
                    out.extend(&r.reprompts);
                }
            }
        }
        out.extend(&self.voicemail);
        out
    }

    pub fn step(&self, name: &str) -> Option<&Step> {
        self.index.get(name).map(|&i| &self.steps[i])
    }

    /// Every slot some step collects, with its type.
    pub fn slots(&self) -> BTreeMap<&str, SlotType> {
        self.steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Ask(a) => a.slot.as_ref().map(|sl| (sl.name.as_str(), sl.ty)),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Number,
    Amount,
    Date,
    DateTime,
    Digits,
    Bool,
}

impl FieldType {
    pub const ALL: [(&'static str, FieldType); 7] = [
        ("text", FieldType::Text),
        ("number", FieldType::Number),
        ("amount", FieldType::Amount),
        ("date", FieldType::Date),
        ("datetime", FieldType::DateTime),
        ("digits", FieldType::Digits),
        ("bool", FieldType::Bool),
    ];
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    pub ty: FieldType,
    pub required: bool,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    pub name: String,
    pub text: Template,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntentDecl {
    pub examples: Vec<String>,
    pub pos: Pos,
    /// True for the built-in handler intents when the flow did not declare them.
    pub builtin: bool,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub no_input_timeout_ms: u64,
    pub min_confidence: f32,
    pub no_match: Option<Retry>,
    pub no_input: Option<Retry>,
    /// Most caller turns in one call before the flow gives up (`too_many_turns`).
    pub max_turns: u32,
}

/// Global handlers, active on every listening step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Handler {
    AgentRequest,
    StopCalling,
    WhoIsThis,
    CallMeLater,
    NegativeSentiment,
}

impl Handler {
    pub const ALL: [(&'static str, Handler); 5] = [
        ("agent_request", Handler::AgentRequest),
        ("stop_calling", Handler::StopCalling),
        ("who_is_this", Handler::WhoIsThis),
        ("call_me_later", Handler::CallMeLater),
        ("negative_sentiment", Handler::NegativeSentiment),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, h)| *h == self)
            .map_or("", |(n, _)| n)
    }

    /// The intent that triggers this handler (none for negative sentiment).
    pub fn intent(self) -> Option<&'static str> {
        match self {
            Handler::NegativeSentiment => None,
            h => Some(h.name()),
        }
    }
}

/// Where control goes next: a step, or back to the question a handler interrupted.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRef {
    pub name: String,
    pub pos: Pos,
    /// Resolved step index; `None` for `resume`.
    pub step: Option<usize>,
}

impl TargetRef {
    pub const RESUME: &'static str = "resume";
    pub fn is_resume(&self) -> bool {
        self.name == Self::RESUME
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub pos: Pos,
    /// Declared inline inside another step (its name is derived from the parent's).
    pub inline: bool,
    /// Disclosures spoken at the start of this step, before its own text.
    pub disclose: Vec<(String, Pos)>,
    /// Text spoken when the step runs (before its action).
    pub say: Option<Template>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    Say {
        next: TargetRef,
    },
    Ask(Box<Ask>),
    Branch {
        arms: Vec<(Expression, TargetRef)>,
        otherwise: TargetRef,
    },
    Set {
        assign: Vec<(String, Expression, Pos)>,
        next: TargetRef,
    },
    Webhook(Box<Webhook>),
    SendDtmf {
        digits: Template,
        next: TargetRef,
    },
    Transfer(Box<Transfer>),
    /// Cold transfer: the call is handed to an outside number (SIP REFER) and the robot leaves.
    ColdTransfer(Box<ColdTransfer>),
    Callback {
        at: Expression,
        note: Option<Template>,
        next: TargetRef,
    },
    Dnc {
        reason: Template,
        next: TargetRef,
    },
    End {
        outcome: String,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Say { .. } => "say",
            Action::Ask(_) => "ask",
            Action::Branch { .. } => "branch",
            Action::Set { .. } => "set",
            Action::Webhook(_) => "webhook",
            Action::SendDtmf { .. } => "send_dtmf",
            Action::Transfer(_) | Action::ColdTransfer(_) => "transfer",
            Action::Callback { .. } => "callback",
            Action::Dnc { .. } => "dnc",
            Action::End { .. } => "end",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotType {
    YesNo,
    Date,
    Time,
    DateTime,
    Amount,
    Number,
    Digits,
    Choice,
    Text,
}

impl SlotType {
    pub const ALL: [(&'static str, SlotType); 9] = [
        ("yes_no", SlotType::YesNo),
        ("date", SlotType::Date),
        ("time", SlotType::Time),
        ("datetime", SlotType::DateTime),
        ("amount", SlotType::Amount),
        ("number", SlotType::Number),
        ("digits", SlotType::Digits),
        ("choice", SlotType::Choice),
        ("text", SlotType::Text),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("", |(n, _)| n)
    }
}

#[derive(Debug, Clone)]
pub struct ChoiceOption {
    pub name: String,
    /// Words and phrases that pick this option (the name itself always does).
    pub phrases: Vec<String>,
    pub dtmf: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub ty: SlotType,
    pub pos: Pos,
    pub min: Option<Expression>,
    pub max: Option<Expression>,
    /// Digit count bounds for `digits`.
    pub length: Option<(usize, usize)>,
    pub options: Vec<ChoiceOption>,
}

#[derive(Debug, Clone)]
pub struct Retry {
    pub reprompts: Vec<Template>,
    pub max: u32,
    pub then: TargetRef,
}

#[derive(Debug, Clone)]
pub struct DtmfSpec {
    pub max_digits: usize,
    pub terminator: Option<char>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectKey {
    Yes,
    No,
    Intent(String),
}

#[derive(Debug, Clone)]
pub struct Ask {
    pub prompt: Template,
    pub slot: Option<Slot>,
    pub confirm: Option<Template>,
    /// Said when a value was heard but failed the slot's checks; the prompt follows.
    pub invalid: Option<Template>,
    pub expect: Vec<(ExpectKey, Pos, TargetRef)>,
    pub next: Option<TargetRef>,
    pub dtmf: Option<DtmfSpec>,
    pub no_match: Retry,
    pub no_input: Retry,
    pub timeout_ms: u64,
    /// Phrases to bias speech recognition towards (the runtime passes them to ASR).
    pub hints: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: Template,
    pub method: String,
    pub body: Vec<(String, Template)>,
    pub timeout_ms: u64,
    pub save_as: Option<String>,
    pub next: TargetRef,
    pub on_failure: TargetRef,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub queue: String,
    pub priority: u8,
    pub reason: Template,
    /// Where the flow goes when no agent takes the call in time (absent: end `no_agent`).
    pub on_no_agent: Option<TargetRef>,
    /// Prompts for the agent (what to check, what to offer), rendered at transfer time.
    pub script: Vec<Template>,
}

/// A cold transfer to an outside number: `transfer: {to: "+442071234567", on_failure: STEP}`.
#[derive(Debug, Clone)]
pub struct ColdTransfer {
    /// An E.164 number (`+` and 8–15 digits) or a `sip:`/`sips:` URI; a template when it
    /// names lead or slot data (checked when rendered).
    pub to: Template,
    pub reason: Template,
    /// Where the flow goes when the transfer is refused or fails (absent: end
    /// `transfer_failed`).
    pub on_failure: Option<TargetRef>,
}

/// A cold-transfer destination as the flow author may write it, normalised: an E.164 number
/// (`+` then 8 to 15 digits; spaces, dashes, dots and parentheses between digits are dropped)
/// or a `sip:`/`sips:` URI with no spaces or angle brackets. `None` when it is neither.
pub fn transfer_destination(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('+') {
        let digits: String = rest
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let ok = (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
        return ok.then(|| format!("+{digits}"));
    }
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))?;
    let ok = !rest.is_empty()
        && !rest.starts_with('@')
        && s.chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | ','));
    ok.then(|| s.to_string())
}
