//! YAML into a tree that remembers where every node came from, so that every later error can name
//! a line and column. Built on `yaml-rust2`'s event parser (a maintained YAML 1.2 parser that
//! reports positions); duplicate keys and malformed YAML are reported here.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Diagnostic, Pos};

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar; `quoted` is true for quoted and block scalars (always strings).
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// A plain (unquoted) scalar read as a YAML 1.2 boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A plain scalar read as a number.
    pub fn as_f64(&self) -> Option<f64> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => text.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// Look a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Parse one YAML document. An empty document is `Null`.
pub fn parse(src: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        return Err(Diagnostic::new(
            pos(m),
            "yaml",
            format!("this is not valid YAML: {}", e.info()),
        ));
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos::new(1, 1),
        value: Value::Null,
    }))
}

fn pos(m: &Marker) -> Pos {
    // yaml-rust2 reports 1-based lines and 0-based columns.
    Pos::new(m.line().max(1), m.col() + 1)
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    error: Option<Diagnostic>,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(seq, _)) => {
                if let Value::Seq(items) = &mut seq.value {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, key)) => match key.take() {
                None => {
                    // A key: keys must be scalars, and unique.
                    if !matches!(node.value, Value::Scalar { .. }) && self.error.is_none() {
                        self.error = Some(Diagnostic::new(
                            node.pos,
                            "yaml",
                            format!("a mapping key must be a single value, not {}", node.kind()),
                        ));
                    }
                    if let (Value::Map(entries), Some(name)) = (&map.value, node.as_str())
                        && let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.as_str() == Some(name))
                        && self.error.is_none()
                    {
                        self.error = Some(Diagnostic::new(
                            node.pos,
                            "duplicate-key",
                            format!(
                                "`{name}` appears twice in the same mapping (first at line {})",
                                first.pos.line
                            ),
                        ));
                    }
                    // A block mapping is reported where its first key starts (the parser marks
                    // it at the first `:`).
                    if let Value::Map(entries) = &map.value
                        && entries.is_empty()
                        && node.pos < map.pos
                    {
                        map.pos = node.pos;
                    }
                    *key = Some(node);
                }
                Some(k) => {
                    if let Value::Map(entries) = &mut map.value {
                        entries.push((k, node));
                    }
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let p = pos(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain) || tag.is_some();
                let value =
                    if !quoted && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL") {
                        Value::Null
                    } else {
                        Value::Scalar { text, quoted }
                    };
                self.push_value(Node { pos: p, value }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(
                Node {
                    pos: p,
                    value: Value::Seq(Vec::new()),
                },
                anchor,
            )),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map(
                Node {
                    pos: p,
                    value: Value::Map(Vec::new()),
                },
                anchor,
                None,
            )),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (node, anchor) = match frame {
                        Frame::Seq(n, a) | Frame::Map(n, a, _) => (n, a),
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => {
                let node = match self.anchors.get(&id) {
                    Some(n) => Node {
                        pos: p,
                        value: n.value.clone(),
                    },
                    None => Node {
                        pos: p,
                        value: Value::Null,
                    },
                };
                self.push_value(node, 0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  c: [x, 'y']\n").expect("parses");
        let b = n.get("b").expect("b");
        assert_eq!(b.get("c").map(|c| c.pos), Some(Pos::new(3, 6)));
        let items = b.get("c").and_then(Node::as_seq).expect("seq");
        assert_eq!(items[1].pos, Pos::new(3, 10));
        assert_eq!(n.get("a").map(|a| a.pos), Some(Pos::new(1, 4)));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let e = parse("a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert_eq!(e.pos, Pos::new(3, 1));
        assert!(e.message.contains("first at line 1"), "{}", e.message);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").expect_err("bad");
        assert_eq!(e.code, "yaml");
        assert!(e.pos.line >= 1);
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let n = parse("a: &x {k: v}\nb: *x\n").expect("parses");
        assert_eq!(
            n.get("b").and_then(|b| b.get("k")).and_then(Node::as_str),
            Some("v")
        );
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let n = parse("a: 'true'\nb: true\nc: ~\n").expect("parses");
        assert_eq!(n.get("a").and_then(Node::as_bool), None);
        assert_eq!(n.get("b").and_then(Node::as_bool), Some(true));
        assert!(n.get("c").is_some_and(Node::is_null));
    }
}
