//! One module per subcommand group; each owns its clap arguments and its `run`.

pub mod agents;
pub mod asr;
pub mod backup;
pub mod campaign;
pub mod demo;
pub mod dialer;
pub mod dnc;
pub mod flow;
pub mod keys;
pub mod models;
pub mod nlu;
pub mod recording;
pub mod report;
pub mod retention;
pub mod tts;
