//! Composes callbot's leaf crates for a call.
//!
//! Built so far: [`flow_nlu`], which puts the NLU (`nlu`) in front of the flow interpreter
//! (`dialog-flows`): a flow's intents are learnt from the example utterances declared in the flow,
//! and each caller turn is understood in the context of the step that is listening. The per-call
//! voice pipeline, dialer, queues and storage are not built yet (issues 5–7).

pub mod flow_nlu;

pub use flow_nlu::FlowNlu;
