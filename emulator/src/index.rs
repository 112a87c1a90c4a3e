//! A secondary index of the directory for the lookups that would otherwise scan every object:
//! the uniqueness checks on create/update (userPrincipalName, mailNickname,
//! onPremisesImmutableId, mail/proxyAddresses) and `$filter=prop eq '…'` on those properties
//! and on directory extensions (how ad2entra finds an object by its anchor).
//!
//! It maps the lowercased string values of indexed properties (and the string items of
//! collection-valued ones) to object ids. It only yields *candidates*: every caller re-checks
//! each candidate against the object itself with the exact rule it used before, so answers
//! equal those of a full scan. Because `eq_ignore_ascii_case` equality implies equality of
//! `to_lowercase`, and `$filter`'s `eq` compares `to_lowercase` values, no match can be missed.

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// Whether a property's values are indexed.
pub fn is_indexed(prop: &str) -> bool {
    matches!(
        prop,
        "userPrincipalName" | "mailNickname" | "onPremisesImmutableId" | "mail" | "proxyAddresses"
    ) || prop.starts_with("extension_")
}

/// Lowercased property values → ids (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct PropIndex {
    /// property → lowercased value → ids (sorted, so candidates come in id order).
    by_prop: HashMap<String, HashMap<String, BTreeSet<String>>>,
    /// id → the (property, lowercased value) keys it is filed under.
    keys_of: HashMap<String, Vec<(String, String)>>,
}

impl PropIndex {
    /// Files object `id` under its current `props` (replacing what it was filed under);
    /// `None` removes it.
    pub fn set(&mut self, id: &str, props: Option<&Map<String, Value>>) {
        if let Some(old) = self.keys_of.remove(id) {
            for (p, v) in old {
                if let Some(values) = self.by_prop.get_mut(&p)
                    && let Some(ids) = values.get_mut(&v)
                {
                    ids.remove(id);
                    if ids.is_empty() {
                        values.remove(&v);
                    }
                }
            }
        }
        let Some(props) = props else {
            return;
        };
        let mut keys = Vec::new();
        for (k, v) in props {
            if !is_indexed(k) {
                continue;
            }
            match v {
                Value::String(s) => keys.push((k.clone(), s.to_lowercase())),
                Value::Array(items) => {
                    for i in items {
                        if let Value::String(s) = i {
                            keys.push((k.clone(), s.to_lowercase()));
                        }
                    }
                }
                _ => {}
            }
        }
        if keys.is_empty() {
            return;
        }
        for (p, v) in &keys {
            self.by_prop
                .entry(p.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(id.to_string());
        }
        self.keys_of.insert(id.to_string(), keys);
    }

    /// Ids, in id order, of objects whose `prop` holds a string (or a collection item) whose
    /// `to_lowercase()` is `lowered`. Candidates only: callers re-check the object.
    pub fn candidates<'a>(&'a self, prop: &str, lowered: &str) -> impl Iterator<Item = &'a str> {
        self.by_prop
            .get(prop)
            .and_then(|m| m.get(lowered))
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// The raw map, for tests comparing two indexes.
    #[cfg(test)]
    pub(crate) fn by_prop_for_tests(&self) -> &HashMap<String, HashMap<String, BTreeSet<String>>> {
        &self.by_prop
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.by_prop.clear();
        self.keys_of.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn files_refiles_and_removes() {
        let mut ix = PropIndex::default();
        ix.set(
            "b",
            Some(&m(
                json!({"userPrincipalName":"A@X.com","proxyAddresses":["SMTP:a@x.com"],"displayName":"A"}),
            )),
        );
        ix.set("a", Some(&m(json!({"userPrincipalName":"a@x.com"}))));
        let c: Vec<&str> = ix.candidates("userPrincipalName", "a@x.com").collect();
        assert_eq!(c, ["a", "b"]);
        assert_eq!(ix.candidates("proxyAddresses", "smtp:a@x.com").count(), 1);
        assert_eq!(ix.candidates("displayName", "a").count(), 0);
        ix.set("b", Some(&m(json!({"userPrincipalName":"b@x.com"}))));
        let c: Vec<&str> = ix.candidates("userPrincipalName", "a@x.com").collect();
        assert_eq!(c, ["a"]);
        assert_eq!(ix.candidates("proxyAddresses", "smtp:a@x.com").count(), 0);
        ix.set("a", None);
        assert_eq!(ix.candidates("userPrincipalName", "a@x.com").count(), 0);
        assert!(!ix.by_prop["userPrincipalName"].contains_key("a@x.com"));
    }
}
