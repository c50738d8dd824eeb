//! The JSON Schema (draft 2020-12) of the flow language, for editors.

/// The JSON Schema (draft 2020-12) of flow files, from `dialog-flows/flow.schema.json`.
///
/// It mirrors the decoder: the keys allowed at each level, their types and enum values (slot
/// types, lead field types, handler names), the required keys, and the step rules that can be
/// said without reading other steps (one action per step, which keys belong to `ask`/`webhook`,
/// where `next` is needed or forbidden). Templates, expressions and cross-references (step,
/// intent, slot and disclosure names) are checked only by [`crate::load`]. Point an editor at the
/// file, e.g. `# yaml-language-server: $schema=../flow.schema.json` at the top of a flow.
///
/// The file is embedded at build time and known to parse; should it not, this is
/// `serde_json::Value::Null`.
pub fn json_schema() -> serde_json::Value {
    serde_json::from_str(include_str!("../flow.schema.json")).unwrap_or(serde_json::Value::Null)
}
