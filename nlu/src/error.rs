use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("model file {path} could not be loaded: {message}")]
    Model { path: PathBuf, message: String },
    #[error("tokenizer {path} could not be loaded: {message}")]
    TokenizerLoad { path: PathBuf, message: String },
    #[error("tokenising failed: {0}")]
    Tokenize(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("{path}: row {row}: {message}")]
    BadRow {
        path: PathBuf,
        row: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    #[error("training set is unusable: {0}")]
    Training(String),
}
