//! A YAML document as a tree that remembers where every node came from, so validation
//! can point at `file:line:column` for any value, not just the first syntax error.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::fmt;

/// Line and column (1-based) of a node in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// A YAML value with its position; mapping keys keep their own positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: NodeValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// One step of a path into the tree: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(k) => f.write_str(k),
            Step::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a path as `scope.users.includeOUs[0]`.
pub fn path_string(path: &[Step]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

impl Node {
    /// Parses one YAML document. The error keeps the parser's location.
    pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
        let spanned: Spanned<Node> = serde_saphyr::from_str(text)?;
        Ok(with_pos(spanned))
    }

    /// The node at `path`, if every step exists.
    pub fn get(&self, path: &[Step]) -> Option<&Node> {
        let mut node = self;
        for step in path {
            node = match (step, &node.value) {
                (Step::Key(k), NodeValue::Map(entries)) => {
                    &entries.iter().find(|(key, _)| &key.name == k)?.1
                }
                (Step::Index(i), NodeValue::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The deepest position along `path`: the node itself when it exists, else its
    /// nearest existing ancestor. For a missing key, that is where the key belongs.
    pub fn pos_of(&self, path: &[Step]) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for step in path {
            match (step, &node.value) {
                (Step::Key(k), NodeValue::Map(entries)) => {
                    match entries.iter().find(|(key, _)| &key.name == k) {
                        Some((_, v)) => {
                            node = v;
                            pos = v.pos;
                        }
                        None => return pos,
                    }
                }
                (Step::Index(i), NodeValue::Seq(items)) => match items.get(*i) {
                    Some(v) => {
                        node = v;
                        pos = v.pos;
                    }
                    None => return pos,
                },
                _ => return pos,
            }
        }
        pos
    }

    /// Position of the key `name` in this mapping (for "unknown field" errors).
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == name)
                .map(|(k, _)| k.pos),
            _ => None,
        }
    }

    /// Converts to JSON for typed deserialisation. Keys keep document order.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A name for the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Int(_) | NodeValue::Float(_) => "number",
            NodeValue::Str(_) => "string",
            NodeValue::Seq(_) => "list",
            NodeValue::Map(_) => "mapping",
        }
    }
}

fn with_pos(s: Spanned<Node>) -> Node {
    let mut node = s.value;
    node.pos = Pos {
        line: s.referenced.line(),
        column: s.referenced.column(),
    };
    node
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn plain(value: NodeValue) -> Node {
    Node {
        pos: Pos::default(),
        value,
    }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(plain(NodeValue::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(plain(NodeValue::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(plain(NodeValue::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(plain(NodeValue::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(plain(NodeValue::Int(i))),
            Err(_) => Ok(plain(NodeValue::Float(v as f64))),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(plain(NodeValue::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(plain(NodeValue::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(plain(NodeValue::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(with_pos(item));
        }
        Ok(plain(NodeValue::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyString>>()? {
            let value: Spanned<Node> = map.next_value()?;
            entries.push((
                Key {
                    name: key.value.0,
                    pos: Pos {
                        line: key.referenced.line(),
                        column: key.referenced.column(),
                    },
                },
                with_pos(value),
            ));
        }
        Ok(plain(NodeValue::Map(entries)))
    }
}

/// Mapping keys as strings, whatever scalar type YAML gave them.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = Node::deserialize(d)?;
        Ok(KeyString(match n.value {
            NodeValue::Str(s) => s,
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Null => "null".into(),
            _ => "<complex key>".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_positions_of_values_and_keys() {
        let text = "a: 1\nb:\n  c: [x, y]\n  d: hello\n";
        let n = Node::parse(text).unwrap();
        let d = n
            .get(&[Step::Key("b".into()), Step::Key("d".into())])
            .unwrap();
        assert_eq!(d.value, NodeValue::Str("hello".into()));
        assert_eq!((d.pos.line, d.pos.column), (4, 6));
        let y = n
            .get(&[Step::Key("b".into()), Step::Key("c".into()), Step::Index(1)])
            .unwrap();
        assert_eq!(y.pos.line, 3);
        let b = n.key_pos("b").unwrap();
        assert_eq!((b.line, b.column), (2, 1));
    }

    #[test]
    fn pos_of_missing_key_is_parent() {
        let n = Node::parse("a:\n  b: 1\n").unwrap();
        let p = n.pos_of(&[Step::Key("a".into()), Step::Key("zzz".into())]);
        assert_eq!(p.line, 2);
    }
}
