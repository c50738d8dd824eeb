//! The prompts of a flow that are the same on every call — texts that use no names, or only
//! `bank.*` constants — rendered so they can be synthesised once when a campaign starts.

use dialog_flows::template::Template;
use dialog_flows::{Flow, Value};

fn static_text(flow: &Flow, t: &Template) -> Option<String> {
    if t.names()
        .any(|(path, _)| path.first().map(String::as_str) != Some("bank"))
    {
        return None;
    }
    let lookup = |p: &[String]| match (p.first().map(String::as_str), p.get(1)) {
        (Some("bank"), Some(f)) => flow
            .bank
            .get(f)
            .map_or(Value::Null, |s| Value::Text(s.clone())),
        _ => Value::Null,
    };
    let text = t.render(&lookup, &flow.currency);
    (!text.trim().is_empty()).then_some(text)
}

/// Every static prompt of `flow`, without duplicates, in flow order.
pub fn static_prompts(flow: &Flow) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in flow.prompt_templates() {
        if let Some(text) = static_text(flow, t)
            && !out.contains(&text)
        {
            out.push(text);
        }
    }
    out
}
