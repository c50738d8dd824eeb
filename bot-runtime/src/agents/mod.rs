//! Human agents: the queue engine (sans-IO routing of transferred calls to agents).

pub mod queue;
