//! Attribute values of one directory object, stored compactly.
//!
//! At 100,000 users a map of strings to vectors of vectors cost about 5 KB per user in
//! allocations and headers; this layout keeps every value of an object in one buffer and
//! shares attribute names between objects, about a fifth of that.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// Above this many distinct names (AD's schema has about 1,500 attributes), names are
/// no longer shared, so hostile input cannot grow the table without bound.
const INTERN_LIMIT: usize = 20_000;

/// Shares one lowercased copy of each attribute name among all objects.
fn intern(name: &str) -> Arc<str> {
    static TABLE: OnceLock<RwLock<HashMap<Box<str>, Arc<str>>>> = OnceLock::new();
    let table = TABLE.get_or_init(Default::default);
    let lower;
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        lower = name.to_ascii_lowercase();
        lower.as_str()
    } else {
        name
    };
    if let Ok(t) = table.read()
        && let Some(a) = t.get(name)
    {
        return Arc::clone(a);
    }
    let arc: Arc<str> = Arc::from(name);
    if let Ok(mut t) = table.write()
        && t.len() < INTERN_LIMIT
    {
        return Arc::clone(t.entry(name.into()).or_insert(arc));
    }
    arc
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Arc<str>,
    first: u32,
    count: u32,
}

/// All attributes of one object: names lowercased and sorted, values in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    entries: Box<[Entry]>,
    /// End offset in `data` of each value.
    ends: Box<[u32]>,
    data: Box<[u8]>,
}

/// Compares a stored (lowercase) name with a query in any case, without allocating.
fn cmp_name(stored: &str, query: &str) -> std::cmp::Ordering {
    stored
        .bytes()
        .cmp(query.bytes().map(|b| b.to_ascii_lowercase()))
}

impl Attributes {
    /// Builds from (name, values) pairs; names in any case, repeated names merged.
    pub fn from_pairs<N: AsRef<str>>(pairs: impl IntoIterator<Item = (N, Vec<Vec<u8>>)>) -> Self {
        let mut grouped: Vec<(Arc<str>, Vec<Vec<u8>>)> = Vec::new();
        for (name, values) in pairs {
            let name = intern(name.as_ref());
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.extend(values),
                None => grouped.push((name, values)),
            }
        }
        grouped.sort_by(|a, b| a.0.cmp(&b.0));
        let total: usize = grouped.iter().flat_map(|(_, v)| v).map(Vec::len).sum();
        let n_values: usize = grouped.iter().map(|(_, v)| v.len()).sum();
        let mut data = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(n_values);
        let mut entries = Vec::with_capacity(grouped.len());
        for (name, values) in grouped {
            entries.push(Entry {
                name,
                first: ends.len() as u32,
                count: values.len() as u32,
            });
            for v in values {
                data.extend_from_slice(&v);
                ends.push(data.len() as u32);
            }
        }
        Self {
            entries: entries.into_boxed_slice(),
            ends: ends.into_boxed_slice(),
            data: data.into_boxed_slice(),
        }
    }

    /// The values of `name` (any case); empty when absent.
    pub fn get(&self, name: &str) -> Values<'_> {
        match self.entries.binary_search_by(|e| cmp_name(&e.name, name)) {
            Ok(i) => Values {
                attrs: self,
                first: self.entries[i].first,
                count: self.entries[i].count,
            },
            Err(_) => Values {
                attrs: self,
                first: 0,
                count: 0,
            },
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// (lowercased name, values) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Values<'_>)> {
        self.entries.iter().map(move |e| {
            (
                &*e.name,
                Values {
                    attrs: self,
                    first: e.first,
                    count: e.count,
                },
            )
        })
    }

    /// Attribute names (lowercased) in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &*e.name)
    }

    fn value(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }
}

/// The values of one attribute: a cheap view into [`Attributes`].
#[derive(Clone, Copy)]
pub struct Values<'a> {
    attrs: &'a Attributes,
    first: u32,
    count: u32,
}

impl<'a> Values<'a> {
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        (i < self.len()).then(|| self.attrs.value(self.first + i as u32))
    }

    pub fn first(&self) -> Option<&'a [u8]> {
        self.get(0)
    }

    pub fn iter(self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let attrs = self.attrs;
        (self.first..self.first + self.count).map(move |i| attrs.value(i))
    }

    /// Owned copies, for tests and callers that keep values.
    pub fn to_vec(self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl<'a> IntoIterator for Values<'a> {
    type Item = &'a [u8];
    type IntoIter = Box<dyn ExactSizeIterator<Item = &'a [u8]> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl std::ops::Index<usize> for Values<'_> {
    type Output = [u8];
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(v) => v,
            None => panic!("value index {i} out of range ({} values)", self.len()),
        }
    }
}

/// Compares with owned values (`values("x") == &[b"a".to_vec()]`), mainly for tests.
impl<T: AsRef<[Vec<u8>]>> PartialEq<T> for Values<'_> {
    fn eq(&self, other: &T) -> bool {
        let other = other.as_ref();
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_slice())
    }
}

impl std::fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_sorts_and_finds_case_insensitively() {
        let a = Attributes::from_pairs([
            ("sn", vec![b"Smith".to_vec()]),
            ("objectClass", vec![b"top".to_vec(), b"user".to_vec()]),
            ("OBJECTCLASS", vec![b"person".to_vec()]),
            ("empty", vec![Vec::new()]),
        ]);
        assert_eq!(
            a.names().collect::<Vec<_>>(),
            vec!["empty", "objectclass", "sn"]
        );
        assert_eq!(
            a.get("ObjectClass").to_vec(),
            vec![b"top".to_vec(), b"user".to_vec(), b"person".to_vec()]
        );
        assert_eq!(a.get("SN")[0], *b"Smith");
        assert_eq!(a.get("empty").len(), 1);
        assert_eq!(a.get("empty").first(), Some(&b""[..]));
        assert!(a.get("missing").is_empty());
        assert!(a.get("zzz").first().is_none());
    }

    #[test]
    fn names_are_shared() {
        let a = Attributes::from_pairs([("givenName", vec![b"A".to_vec()])]);
        let b = Attributes::from_pairs([("GIVENNAME", vec![b"B".to_vec()])]);
        assert!(Arc::ptr_eq(&a.entries[0].name, &b.entries[0].name));
    }
}
