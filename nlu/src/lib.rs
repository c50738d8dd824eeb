//! nlu: what a caller meant. Intents from example utterances (sentence embeddings from
//! all-MiniLM-L6-v2 through `ort` + `tokenizers`; a logistic-regression head over the embedding and
//! TF-IDF features blended with a nearest-neighbour vote; a calibrated out-of-scope threshold), sentiment with an escalation signal,
//! and rule-based entities for bank calls (yes/no, dates and times, money, digit strings, choices).
//!
//! Main types: [`Nlu`] (one call: [`Nlu::parse`] -> [`Understanding`]), [`Embedder`],
//! [`IntentClassifier`], [`Sentiment`], [`Entities`].
//!
//! Invariants: no clock is read (dates resolve against `Context::now`); nothing is downloaded;
//! model files are passed in as explicit paths.

/// Re-exported so callers build `Context::now` with the same chrono version.
pub use chrono;

pub mod data;
mod embed;
pub mod entities;
mod error;
pub mod intent;
pub mod sentiment;
mod understand;
pub mod words;

pub use embed::{Embedder, EmbedderOptions, FeatureSpec, cosine};
pub use entities::Entities;
pub use error::NluError;
pub use intent::{IntentClassifier, IntentModel, IntentResult, TrainOptions};
pub use sentiment::{Sentiment, SentimentLabel, analyze_sentiment};
pub use understand::{Context, Nlu, Understanding};
