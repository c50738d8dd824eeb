//! The one call a bot runtime makes per caller turn: [`Nlu::parse`].

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::entities::{Entities, extract_all};
use crate::error::NluError;
use crate::intent::{IntentClassifier, IntentResult};
use crate::sentiment::{Sentiment, analyze_sentiment};

/// What the caller's turn is understood against.
#[derive(Debug, Clone)]
pub struct Context {
    /// The call's current local time; relative dates resolve against it.
    pub now: NaiveDateTime,
    /// Options the bot just offered, for choice matching (may be empty).
    pub expected_choices: Vec<String>,
}

impl Context {
    pub fn at(now: NaiveDateTime) -> Self {
        Self {
            now,
            expected_choices: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Understanding {
    pub text: String,
    /// `None` when no intents are loaded or the turn is out of scope.
    pub intent: Option<String>,
    pub confidence: f32,
    /// Full intent result (ranking, similarity) when intents are loaded.
    pub intent_detail: Option<IntentResult>,
    pub entities: Entities,
    pub sentiment: Sentiment,
}

/// Intents (optional: a flow may only collect entities), entities and sentiment in one call.
#[derive(Debug, Clone, Default)]
pub struct Nlu {
    intents: Option<IntentClassifier>,
}

impl Nlu {
    pub fn new(intents: Option<IntentClassifier>) -> Self {
        Self { intents }
    }

    pub fn intents(&self) -> Option<&IntentClassifier> {
        self.intents.as_ref()
    }

    pub fn parse(&self, text: &str, ctx: &Context) -> Result<Understanding, NluError> {
        let detail = self
            .intents
            .as_ref()
            .map(|c| c.classify(text))
            .transpose()?;
        Ok(Understanding {
            text: text.to_string(),
            intent: detail.as_ref().and_then(|d| d.intent.clone()),
            confidence: detail.as_ref().map_or(0.0, |d| d.confidence),
            intent_detail: detail,
            entities: extract_all(text, ctx.now, &ctx.expected_choices),
            sentiment: analyze_sentiment(text),
        })
    }
}
