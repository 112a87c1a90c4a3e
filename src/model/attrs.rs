//! Attribute values of one directory object, stored compactly.
//!
//! At 100,000 users a map of strings to vectors of vectors cost about 5 KB per user in
//! allocations and headers. Here every value of an object sits in one buffer, and each
//! attribute costs 8 bytes: the number of its name in a process-wide table (names are
//! shared by all objects) and the index of its first value.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

/// Above this many distinct names (AD's schema has about 1,500 attributes), names are
/// no longer shared but kept with the object, so hostile input cannot grow the table
/// without bound.
const INTERN_LIMIT: usize = 20_000;

/// Marks an entry whose name is not in the table: its first value slot holds the name.
const INLINE: u32 = 1 << 31;

/// Every shared name by number; written once per slot, read without a lock.
fn names_by_id() -> &'static [OnceLock<&'static str>] {
    static NAMES: OnceLock<Box<[OnceLock<&'static str>]>> = OnceLock::new();
    NAMES.get_or_init(|| (0..INTERN_LIMIT).map(|_| OnceLock::new()).collect())
}

/// The number of a lowercased name in the shared table, adding it while there is room.
/// The table's strings live as long as the process: at most [`INTERN_LIMIT`] names.
fn intern(lower: &str) -> Option<u32> {
    static IDS: OnceLock<RwLock<HashMap<&'static str, u32>>> = OnceLock::new();
    let ids = IDS.get_or_init(Default::default);
    if let Ok(t) = ids.read()
        && let Some(&id) = t.get(lower)
    {
        return Some(id);
    }
    let mut t = ids.write().ok()?;
    if let Some(&id) = t.get(lower) {
        return Some(id);
    }
    let id = t.len();
    if id >= INTERN_LIMIT {
        return None;
    }
    let name: &'static str = Box::leak(lower.into());
    // Set before the id is published, so a reader that finds the id finds the name.
    let _ = names_by_id()[id].set(name);
    t.insert(name, id as u32);
    Some(id as u32)
}

fn shared_name(id: u32) -> &'static str {
    names_by_id()
        .get(id as usize)
        .and_then(|n| n.get().copied())
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    /// Number in the shared table, or [`INLINE`].
    name: u32,
    /// Index of the first value (of the name, when inline).
    first: u32,
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
        let mut grouped: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
        for (name, values) in pairs {
            let name = name.as_ref().to_ascii_lowercase();
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.extend(values),
                None => grouped.push((name, values)),
            }
        }
        grouped.sort_by(|a, b| a.0.cmp(&b.0));
        let total: usize = grouped
            .iter()
            .map(|(n, v)| n.len() + v.iter().map(Vec::len).sum::<usize>())
            .sum();
        let n_values: usize = grouped.iter().map(|(_, v)| v.len() + 1).sum();
        let mut data = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(n_values);
        let mut entries = Vec::with_capacity(grouped.len());
        for (name, values) in grouped {
            let first = ends.len() as u32;
            match intern(&name) {
                Some(id) => entries.push(Entry { name: id, first }),
                None => {
                    entries.push(Entry {
                        name: INLINE,
                        first,
                    });
                    data.extend_from_slice(name.as_bytes());
                    ends.push(data.len() as u32);
                }
            }
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

    /// The lowercased name of entry `i`.
    fn name(&self, i: usize) -> &str {
        let e = self.entries[i];
        if e.name == INLINE {
            std::str::from_utf8(self.value(e.first)).unwrap_or_default()
        } else {
            shared_name(e.name)
        }
    }

    /// The values of entry `i`.
    fn values_at(&self, i: usize) -> Values<'_> {
        let e = self.entries[i];
        let first = if e.name == INLINE {
            e.first + 1
        } else {
            e.first
        };
        let end = self
            .entries
            .get(i + 1)
            .map_or(self.ends.len() as u32, |n| n.first);
        Values {
            attrs: self,
            first,
            count: end - first,
        }
    }

    /// The values of `name` (any case); empty when absent.
    pub fn get(&self, name: &str) -> Values<'_> {
        let mut lo = 0;
        let mut hi = self.entries.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            match cmp_name(self.name(mid), name) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.values_at(mid),
            }
        }
        Values {
            attrs: self,
            first: 0,
            count: 0,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// (lowercased name, values) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Values<'_>)> {
        (0..self.entries.len()).map(move |i| (self.name(i), self.values_at(i)))
    }

    /// Attribute names (lowercased) in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        (0..self.entries.len()).map(move |i| self.name(i))
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
        assert_eq!(a.entries[0].name, b.entries[0].name);
        assert_ne!(a.entries[0].name, INLINE);
    }

    #[test]
    fn names_beyond_the_table_stay_with_the_object() {
        // What from_pairs builds once the table is full: "mmm" is not shared, its name
        // sits in its first value slot. It reads back like a shared name.
        let shared = Attributes::from_pairs([
            ("aaa", vec![b"1".to_vec()]),
            ("zzz", vec![b"2".to_vec(), b"3".to_vec()]),
        ]);
        let attrs = Attributes {
            entries: vec![
                shared.entries[0],
                Entry {
                    name: INLINE,
                    first: 1,
                },
                Entry {
                    name: shared.entries[1].name,
                    first: 3,
                },
            ]
            .into_boxed_slice(),
            // "1" | "mmm" "x" | "2" "3"
            ends: vec![1, 4, 5, 6, 7].into_boxed_slice(),
            data: b"1mmmx23".to_vec().into_boxed_slice(),
        };
        assert_eq!(attrs.names().collect::<Vec<_>>(), vec!["aaa", "mmm", "zzz"]);
        assert_eq!(attrs.get("MMM").to_vec(), vec![b"x".to_vec()]);
        assert_eq!(
            attrs.get("zzz").to_vec(),
            vec![b"2".to_vec(), b"3".to_vec()]
        );
        assert_eq!(attrs.get("aaa").to_vec(), vec![b"1".to_vec()]);
        assert!(attrs.get("nnn").is_empty());
    }
}
