//! Structural checks of the YAML tree against the policy's JSON Schema (the same schema
//! `ad2entra schema` prints), collecting every unknown key, wrong type and bad enum value
//! at once, each with its position. Offending entries are pruned so typed
//! deserialisation of the rest can go on and semantic checks still run.

use super::yaml_tree::{Node, NodeValue, Pos, Step};
use serde_json::Value;

/// A structural problem found by the walk.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    pub code: &'static str,
    pub message: String,
    pub pos: Pos,
    pub path: Vec<Step>,
    pub hint: Option<String>,
}

/// Walks `node` against `schema`, pushing issues and removing the offending entries
/// from `node`.
pub fn check(
    node: &mut Node,
    schema: &Value,
    root: &Value,
    path: &mut Vec<Step>,
    out: &mut Vec<SchemaIssue>,
) -> bool {
    let schema = resolve(schema, root);
    // Option<T> and documented enums come as anyOf/oneOf.
    if let Some(alts) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let consts: Vec<&str> = alts
            .iter()
            .filter_map(|a| resolve(a, root).get("const").and_then(Value::as_str))
            .collect();
        if !consts.is_empty() {
            return check_enum(node, &consts, path, out);
        }
        if matches!(node.value, NodeValue::Null) {
            return true;
        }
        let non_null: Vec<&Value> = alts
            .iter()
            .map(|a| resolve(a, root))
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if let [only] = non_null.as_slice() {
            return check(node, only, root, path, out);
        }
        return true;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let consts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        return check_enum(node, &consts, path, out);
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    let actual = match node.value {
        NodeValue::Null => "null",
        NodeValue::Bool(_) => "boolean",
        NodeValue::Int(_) => "integer",
        NodeValue::Float(_) => "number",
        NodeValue::Str(_) => "string",
        NodeValue::Seq(_) => "array",
        NodeValue::Map(_) => "object",
    };
    let ok = types.contains(&actual) || (actual == "integer" && types.contains(&"number"));
    if !ok {
        let expected = types
            .iter()
            .filter(|t| **t != "null")
            .map(|t| match *t {
                "object" => "a mapping",
                "array" => "a list",
                "string" => "a string",
                "integer" => "a whole number",
                "number" => "a number",
                "boolean" => "true or false",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(" or ");
        out.push(SchemaIssue {
            code: "wrong-type",
            message: format!("expected {expected}, found {}", node.type_name()),
            pos: node.pos,
            path: path.clone(),
            hint: None,
        });
        return false;
    }
    if let (NodeValue::Int(i), Some(min)) =
        (&node.value, schema.get("minimum").and_then(Value::as_f64))
        && (*i as f64) < min
    {
        out.push(SchemaIssue {
            code: "out-of-range",
            message: format!("{i} is below the minimum {min}"),
            pos: node.pos,
            path: path.clone(),
            hint: None,
        });
        return false;
    }
    match &mut node.value {
        NodeValue::Map(entries) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
            let extra = schema.get("additionalProperties").filter(|v| v.is_object());
            let known: Vec<&str> = props
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut pruned: Vec<String> = Vec::new();
            entries.retain_mut(|(key, value)| {
                path.push(Step::Key(key.name.clone()));
                let keep = if let Some(sub) = props.and_then(|p| p.get(&key.name)) {
                    check(value, sub, root, path, out)
                } else if let Some(sub) = extra {
                    check(value, sub, root, path, out)
                } else if closed {
                    out.push(SchemaIssue {
                        code: "unknown-field",
                        message: format!("unknown field `{}`", key.name),
                        pos: key.pos,
                        path: path.clone(),
                        hint: Some(suggest(&key.name, &known)),
                    });
                    false
                } else {
                    true
                };
                path.pop();
                if !keep {
                    pruned.push(key.name.clone());
                }
                keep
            });
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !entries.iter().any(|(k, _)| k.name == r) && !pruned.iter().any(|p| p == r) {
                        out.push(SchemaIssue {
                            code: "missing-field",
                            message: format!("missing required field `{r}`"),
                            pos: node.pos,
                            path: path.clone(),
                            hint: None,
                        });
                    }
                }
            }
            true
        }
        NodeValue::Seq(items) => {
            if let Some(item_schema) = schema.get("items") {
                let mut i = 0;
                items.retain_mut(|item| {
                    path.push(Step::Index(i));
                    i += 1;
                    let keep = check(item, item_schema, root, path, out);
                    path.pop();
                    keep
                });
            }
            true
        }
        _ => true,
    }
}

fn check_enum(node: &Node, allowed: &[&str], path: &[Step], out: &mut Vec<SchemaIssue>) -> bool {
    let NodeValue::Str(s) = &node.value else {
        out.push(SchemaIssue {
            code: "wrong-type",
            message: format!(
                "expected one of {}, found {}",
                allowed.join(", "),
                node.type_name()
            ),
            pos: node.pos,
            path: path.to_vec(),
            hint: None,
        });
        return false;
    };
    if allowed.contains(&s.as_str()) {
        return true;
    }
    out.push(SchemaIssue {
        code: "invalid-value",
        message: format!("`{s}` is not one of {}", allowed.join(", ")),
        pos: node.pos,
        path: path.to_vec(),
        hint: Some(suggest(s, allowed)),
    });
    false
}

fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap_or_default();
                match root.get("$defs").and_then(|d| d.get(name)) {
                    Some(t) => s = t,
                    None => return s,
                }
            }
            None => return s,
        }
    }
    s
}

/// "did you mean `x`?" by edit distance, else the list of valid names.
fn suggest(word: &str, candidates: &[&str]) -> String {
    let best = candidates
        .iter()
        .map(|c| (levenshtein(&word.to_lowercase(), &c.to_lowercase()), *c))
        .min();
    match best {
        Some((d, c)) if d <= 3 => format!("did you mean `{c}`?"),
        _ if !candidates.is_empty() => format!("expected one of: {}", candidates.join(", ")),
        _ => "remove it".into(),
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
