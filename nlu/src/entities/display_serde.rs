//! Serialises chrono values through `Display` (ISO 8601) without turning on chrono's `serde`
//! feature for the whole workspace.

use serde::Serializer;

pub fn opt<T: std::fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}
