//! The NLU for a flow: intents from the flow's own example utterances (few-shot, no separate
//! training step), entities and sentiment from `nlu`, mapped into the interpreter's
//! [`dialog_flows::Utterance`].
//!
//! Intents are matched in context: only the intents the listening step can act on (its own
//! `expect` intents and the global handlers') are candidates. The classifier still scores every
//! intent of the flow, so an utterance that belongs to an intent the step does not expect is not
//! forced onto one that it does: a candidate wins only if it is the flow-wide best, or close to it.

use std::sync::Arc;

use chrono::NaiveDateTime;
use dialog_flows::testing::Understand;
use dialog_flows::{Flow, Listen, Utterance};
use nlu::entities::YesNo;
use nlu::{Context, Embedder, IntentClassifier, Nlu, NluError, TrainOptions};

/// How close (in probability) a candidate intent must be to the flow-wide best to be chosen.
const CONTEXT_MARGIN: f32 = 0.15;

/// Below this cosine similarity to the closest example of any intent, a turn has no intent: it is
/// an answer (a date, an amount, "yes") or out of scope, and slots and yes/no take over.
const MIN_SIMILARITY: f32 = 0.45;

/// A built-in class for plain answers, learnt beside the flow's intents so that "yes", "okay",
/// "next Monday" or "zero four two" are not pushed onto the nearest intent. Never reported.
const ANSWER: &str = "__answer__";
const ANSWER_EXAMPLES: &[&str] = &[
    "yes",
    "yeah",
    "yes please",
    "sure",
    "okay",
    "ok go ahead",
    "that's right",
    "correct",
    "no",
    "nope",
    "not really",
    "I don't know",
    "hmm",
    "uh",
    "what",
    "sorry",
    "five hundred dollars",
    "two hundred and fifty",
    "nine",
    "seven out of ten",
    "zero zero four two",
    "1234",
    "next Monday",
    "tomorrow",
    "on the thirtieth",
    "December 4th",
    "at three pm",
    "Friday afternoon",
    "the first one",
    "the second option",
];

pub struct FlowNlu {
    nlu: Nlu,
}

impl FlowNlu {
    /// Learn the flow's intents (its own and the built-in handler intents) from their examples.
    pub fn new(embedder: Arc<Embedder>, flow: &Flow) -> Result<Self, NluError> {
        let mut examples: Vec<(String, String)> = Vec::new();
        for (name, decl) in &flow.intents {
            for e in &decl.examples {
                examples.push((e.clone(), name.clone()));
            }
        }
        for e in ANSWER_EXAMPLES {
            examples.push(((*e).to_string(), ANSWER.to_string()));
        }
        let n_intents = flow.intents.len() + 1;
        let classifier = IntentClassifier::train(
            embedder,
            &examples,
            TrainOptions::for_data(examples.len(), n_intents),
        )?;
        Ok(Self {
            nlu: Nlu::new(Some(classifier)),
        })
    }

    /// Understand `text` in the context of `listen` (all intents are candidates without one).
    pub fn parse(
        &self,
        listen: Option<&Listen>,
        text: &str,
        now: NaiveDateTime,
    ) -> Result<Utterance, NluError> {
        let mut ctx = Context::at(now);
        let mut choice_owner: Vec<String> = Vec::new();
        if let Some(l) = listen {
            for (name, phrases) in &l.choices {
                for p in phrases {
                    ctx.expected_choices.push(p.clone());
                    choice_owner.push(name.clone());
                }
            }
        }
        let u = self.nlu.parse(text, &ctx)?;
        let (intent, confidence) = match &u.intent_detail {
            Some(detail) if detail.nearest_similarity >= MIN_SIMILARITY => {
                let best = detail.ranking.first().map_or(0.0, |r| r.1);
                let candidate = |name: &String| {
                    name != ANSWER && listen.is_none_or(|l| l.intents.contains(name))
                };
                detail
                    .ranking
                    .iter()
                    .find(|(name, p)| candidate(name) && *p >= best - CONTEXT_MARGIN)
                    .map_or((None, 0.0), |(n, p)| (Some(n.clone()), *p))
            }
            _ => (None, 0.0),
        };
        let e = &u.entities;
        let when = e.when.as_ref();
        let number = e
            .digits
            .as_ref()
            .filter(|d| d.digits.len() <= 6)
            .and_then(|d| d.digits.parse::<f64>().ok())
            .or_else(|| first_number(text));
        let entities = dialog_flows::Entities {
            yes_no: e.yes_no.map(|y| y == YesNo::Yes),
            date: when
                .and_then(|w| w.date)
                .or(e.when_resolved.map(|d| d.date())),
            time: when.and_then(|w| w.time),
            datetime: e.when_resolved,
            amount: e.money.first().map(|m| m.minor_units as f64 / 100.0),
            number,
            digits: e.digits.as_ref().map(|d| d.digits.clone()),
            choice: e
                .choice
                .as_ref()
                .and_then(|c| choice_owner.get(c.index).cloned()),
        };
        Ok(Utterance {
            text: text.to_string(),
            intent,
            confidence,
            entities,
            sentiment: u.sentiment.score,
            escalate: u.sentiment.escalate,
        })
    }
}

/// The first number in the text, written in digits or words ("nine", "seventy five").
fn first_number(text: &str) -> Option<f64> {
    let digits = nlu::words::numbers_to_digits(text);
    let re = regex::Regex::new(r"-?\d+(?:\.\d+)?").ok()?;
    re.find(&digits).and_then(|m| m.as_str().parse().ok())
}

impl Understand for FlowNlu {
    fn understand(
        &mut self,
        _flow: &Flow,
        listen: Option<&Listen>,
        text: &str,
        now: NaiveDateTime,
    ) -> Result<Utterance, String> {
        self.parse(listen, text, now).map_err(|e| e.to_string())
    }
}
