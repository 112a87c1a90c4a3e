//! Graph properties of one object in a lean, typed form: what Entra holds (a
//! [`super::TargetObject`]) and what AD wants it to hold (a desired object).
//!
//! A tenant of 100,000 users holds about twenty properties per user. As JSON values
//! (`serde_json::Value`, 32 bytes, plus a heap string each, plus a name) they cost about
//! 1.6 KB a user, and the desired values as much again. Here an object's values sit in
//! one string buffer and each property costs 8 bytes: the number of its name in a
//! process-wide table, its type and where its value ends. Strings are stored as they
//! are, `true`/`false`/`null` as a type alone, and anything else (numbers, arrays,
//! objects) as compact JSON text, decoded only when asked for.
//!
//! Behaves like a `serde_json::Map` with `preserve_order`: `insert` keeps an existing
//! name's place, `remove` keeps the others in order, equality ignores order, and the
//! JSON form is the same map.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{OnceLock, RwLock};

/// Above this many distinct property names (Graph has a few hundred, plus directory
/// extensions), names are kept with the object instead of shared, so hostile input
/// cannot grow the table without bound.
const INTERN_LIMIT: usize = 10_000;

/// The name slot of a property whose name is not shared: the slot before it holds it.
const INLINE: u16 = u16::MAX;

fn names_by_id() -> &'static [OnceLock<&'static str>] {
    static NAMES: OnceLock<Box<[OnceLock<&'static str>]>> = OnceLock::new();
    NAMES.get_or_init(|| (0..INTERN_LIMIT).map(|_| OnceLock::new()).collect())
}

/// The number of `name` in the shared table, adding it while there is room. The
/// table's strings live as long as the process: at most [`INTERN_LIMIT`] short names.
fn intern(name: &str) -> Option<u16> {
    static IDS: OnceLock<RwLock<HashMap<&'static str, u16>>> = OnceLock::new();
    let ids = IDS.get_or_init(Default::default);
    if let Ok(t) = ids.read()
        && let Some(&id) = t.get(name)
    {
        return Some(id);
    }
    let mut t = ids.write().ok()?;
    if let Some(&id) = t.get(name) {
        return Some(id);
    }
    let id = t.len();
    if id >= INTERN_LIMIT {
        return None;
    }
    let leaked: &'static str = Box::leak(name.into());
    // Set before the id is published, so whoever finds the id finds the name.
    let _ = names_by_id()[id].set(leaked);
    t.insert(leaked, id as u16);
    Some(id as u16)
}

fn shared_name(id: u16) -> &'static str {
    names_by_id()
        .get(usize::from(id))
        .and_then(|n| n.get().copied())
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Null,
    False,
    True,
    Str,
    /// Compact JSON text of a number, array or object.
    Json,
    /// Not a property: the name of the next one (see [`INLINE`]).
    Name,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    name: u16,
    kind: Kind,
    /// End of the value in `data`; it starts where the previous slot ends.
    end: u32,
}

/// A property value, borrowed from a [`Props`].
#[derive(Clone, Copy, Debug)]
pub enum PropRef<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    /// A number, array or object, as compact JSON text.
    Json(&'a str),
}

impl<'a> PropRef<'a> {
    /// The value as a `serde_json::Value` (allocates).
    pub fn to_value(self) -> Value {
        match self {
            PropRef::Null => Value::Null,
            PropRef::Bool(b) => Value::Bool(b),
            PropRef::Str(s) => Value::String(s.to_string()),
            PropRef::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self {
            PropRef::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            PropRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// Null, `""` or `[]`: what counts as "not set".
    pub fn is_unset(self) -> bool {
        match self {
            PropRef::Null => true,
            PropRef::Str(s) => s.is_empty(),
            PropRef::Json(j) => j == "[]",
            PropRef::Bool(_) => false,
        }
    }

    /// Equal to a JSON value, as `serde_json::Value` compares (objects in any order).
    pub fn eq_value(self, v: &Value) -> bool {
        match (self, v) {
            (PropRef::Null, Value::Null) => true,
            (PropRef::Bool(a), Value::Bool(b)) => a == *b,
            (PropRef::Str(a), Value::String(b)) => a == b,
            (PropRef::Json(j), Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
                serde_json::from_str::<Value>(j).is_ok_and(|x| x == *v)
            }
            _ => false,
        }
    }
}

impl PartialEq for PropRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (*self, *other) {
            (PropRef::Null, PropRef::Null) => true,
            (PropRef::Bool(a), PropRef::Bool(b)) => a == b,
            (PropRef::Str(a), PropRef::Str(b)) => a == b,
            // Both are serde_json's compact text: equal values print alike, except for
            // objects with their keys in another order.
            (PropRef::Json(a), PropRef::Json(b)) => {
                a == b
                    || serde_json::from_str::<Value>(a)
                        .ok()
                        .zip(serde_json::from_str::<Value>(b).ok())
                        .is_some_and(|(x, y)| x == y)
            }
            _ => false,
        }
    }
}

/// As JSON (strings quoted), like `serde_json::Value`'s `Display`.
impl fmt::Display for PropRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PropRef::Json(j) => f.write_str(j),
            other => match serde_json::to_string(&other) {
                Ok(s) => f.write_str(&s),
                Err(_) => Err(fmt::Error),
            },
        }
    }
}

impl PartialEq<Value> for PropRef<'_> {
    fn eq(&self, other: &Value) -> bool {
        self.eq_value(other)
    }
}

impl Serialize for PropRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            PropRef::Null => s.serialize_unit(),
            PropRef::Bool(b) => s.serialize_bool(b),
            PropRef::Str(v) => s.serialize_str(v),
            PropRef::Json(j) => match serde_json::from_str::<&serde_json::value::RawValue>(j) {
                Ok(raw) => raw.serialize(s),
                Err(e) => Err(serde::ser::Error::custom(e)),
            },
        }
    }
}

/// The properties of one object: see the module documentation.
#[derive(Clone, Default)]
pub struct Props {
    slots: Box<[Slot]>,
    data: Box<str>,
}

/// Builds a [`Props`] one property at a time (no check for repeated names).
#[derive(Default)]
struct Builder {
    slots: Vec<Slot>,
    data: String,
}

/// A property name as read: its number in the shared table, or the text itself.
pub(crate) enum Name<'a> {
    Shared(u16),
    Text(&'a str),
}

impl Builder {
    fn push_name(&mut self, name: &str) -> u16 {
        self.push_name_of(match intern(name) {
            Some(id) => Name::Shared(id),
            None => Name::Text(name),
        })
    }

    fn push_name_of(&mut self, name: Name<'_>) -> u16 {
        match name {
            Name::Shared(id) => id,
            Name::Text(name) => {
                self.data.push_str(name);
                self.slots.push(Slot {
                    name: INLINE,
                    kind: Kind::Name,
                    end: self.data.len() as u32,
                });
                INLINE
            }
        }
    }

    fn push(&mut self, name: &str, v: PropRef<'_>) {
        let name = self.push_name(name);
        self.push_at(name, v);
    }

    fn push_at(&mut self, name: u16, v: PropRef<'_>) {
        let kind = match v {
            PropRef::Null => Kind::Null,
            PropRef::Bool(false) => Kind::False,
            PropRef::Bool(true) => Kind::True,
            PropRef::Str(s) => {
                self.data.push_str(s);
                Kind::Str
            }
            PropRef::Json(j) => {
                self.data.push_str(j);
                Kind::Json
            }
        };
        self.slots.push(Slot {
            name,
            kind,
            end: self.data.len() as u32,
        });
    }

    fn push_value(&mut self, name: &str, v: &Value) {
        let name = self.push_name(name);
        self.push_value_at(name, v);
    }

    fn push_value_at(&mut self, name: u16, v: &Value) {
        match v {
            Value::Null => self.push_at(name, PropRef::Null),
            Value::Bool(b) => self.push_at(name, PropRef::Bool(*b)),
            Value::String(s) => self.push_at(name, PropRef::Str(s)),
            other => {
                let json = serde_json::to_string(other).unwrap_or_else(|_| "null".into());
                self.push_at(name, PropRef::Json(&json));
            }
        }
    }

    fn finish(self) -> Props {
        Props {
            slots: self.slots.into_boxed_slice(),
            data: self.data.into_boxed_str(),
        }
    }
}

impl Props {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.kind != Kind::Name).count()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.slots[i - 1].end as usize
        }
    }

    fn text(&self, i: usize) -> &str {
        self.data
            .get(self.start(i)..self.slots[i].end as usize)
            .unwrap_or_default()
    }

    fn name_at(&self, i: usize) -> &str {
        match self.slots[i].name {
            INLINE if i > 0 => self.text(i - 1),
            INLINE => "",
            id => shared_name(id),
        }
    }

    fn value_at(&self, i: usize) -> PropRef<'_> {
        match self.slots[i].kind {
            Kind::Null | Kind::Name => PropRef::Null,
            Kind::False => PropRef::Bool(false),
            Kind::True => PropRef::Bool(true),
            Kind::Str => PropRef::Str(self.text(i)),
            Kind::Json => PropRef::Json(self.text(i)),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        (0..self.slots.len()).find(|&i| self.slots[i].kind != Kind::Name && self.name_at(i) == name)
    }

    /// The value of `name`, if set (`null` included).
    pub fn get(&self, name: &str) -> Option<PropRef<'_>> {
        self.position(name).map(|i| self.value_at(i))
    }

    /// The value of `name` as a string, if it is one.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(PropRef::as_str)
    }

    /// The value of `name` as a JSON value (allocates).
    pub fn value(&self, name: &str) -> Option<Value> {
        self.get(name).map(PropRef::to_value)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// (name, value) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PropRef<'_>)> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].kind != Kind::Name)
            .map(|i| (self.name_at(i), self.value_at(i)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// Rebuilds with `name` set to `value` (in its place, or last) or, with `None`,
    /// removed. Changes are rare (a delta, an applied action): a rebuild keeps the
    /// buffer exact.
    fn rebuilt(&self, name: &str, value: Option<PropRef<'_>>) -> Props {
        let mut b = Builder::default();
        let mut done = false;
        for (k, v) in self.iter() {
            if k == name {
                if let Some(nv) = value.filter(|_| !done) {
                    b.push(k, nv);
                }
                done = true;
            } else {
                b.push(k, v);
            }
        }
        if let Some(nv) = value.filter(|_| !done) {
            b.push(name, nv);
        }
        b.finish()
    }

    /// Sets a property, returning the value it replaces.
    pub fn insert(&mut self, name: &str, value: Value) -> Option<Value> {
        let old = self.value(name);
        let json;
        let v = match &value {
            Value::Null => PropRef::Null,
            Value::Bool(b) => PropRef::Bool(*b),
            Value::String(s) => PropRef::Str(s),
            other => {
                json = serde_json::to_string(other).unwrap_or_else(|_| "null".into());
                PropRef::Json(&json)
            }
        };
        *self = self.rebuilt(name, Some(v));
        old
    }

    /// Sets a property from a borrowed value of another object.
    pub fn insert_ref(&mut self, name: &str, value: PropRef<'_>) {
        *self = self.rebuilt(name, Some(value));
    }

    /// Removes a property, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let old = self.value(name)?;
        *self = self.rebuilt(name, None);
        Some(old)
    }

    /// The properties as a JSON object (allocates).
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_value()))
            .collect()
    }
}

impl fmt::Debug for Props {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl From<Map<String, Value>> for Props {
    /// A map's names are distinct already: no check for repeats.
    fn from(m: Map<String, Value>) -> Self {
        let mut b = Builder::default();
        for (k, v) in &m {
            b.push_value(k, v);
        }
        b.finish()
    }
}

/// Builds from (name, value) pairs; a repeated name's later value replaces the earlier
/// one, in the first one's place.
fn from_values<K: AsRef<str>, V: std::borrow::Borrow<Value>>(
    iter: impl IntoIterator<Item = (K, V)>,
) -> Props {
    let mut pairs: Vec<(K, V)> = Vec::new();
    for (k, v) in iter {
        match pairs.iter_mut().find(|(x, _)| x.as_ref() == k.as_ref()) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    }
    let mut b = Builder::default();
    for (k, v) in &pairs {
        b.push_value(k.as_ref(), v.borrow());
    }
    b.finish()
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Props {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        from_values(iter)
    }
}

impl<'v, K: AsRef<str>> FromIterator<(K, &'v Value)> for Props {
    fn from_iter<I: IntoIterator<Item = (K, &'v Value)>>(iter: I) -> Self {
        from_values(iter)
    }
}

impl<'a> FromIterator<(&'a str, PropRef<'a>)> for Props {
    /// Later values of a repeated name replace earlier ones, in the first one's place.
    fn from_iter<I: IntoIterator<Item = (&'a str, PropRef<'a>)>>(iter: I) -> Self {
        let mut pairs: Vec<(&str, PropRef<'_>)> = Vec::new();
        for (k, v) in iter {
            match pairs.iter_mut().find(|(x, _)| *x == k) {
                Some(slot) => slot.1 = v,
                None => pairs.push((k, v)),
            }
        }
        let mut b = Builder::default();
        for (k, v) in pairs {
            b.push(k, v);
        }
        b.finish()
    }
}

impl Serialize for Props {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// One property value read straight into a [`Builder`]: strings, booleans and null
/// without a `Value` in between.
struct ValueInto<'b> {
    builder: &'b mut Builder,
    name: u16,
}

impl<'de> DeserializeSeed<'de> for ValueInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.builder.push_at(self.name, PropRef::Null);
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.builder.push_at(self.name, PropRef::Bool(b));
        Ok(())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.builder.push_at(self.name, PropRef::Str(s));
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.builder.push_value_at(self.name, &Value::from(n));
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.builder.push_value_at(self.name, &Value::from(n));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        self.builder.push_value_at(self.name, &Value::from(n));
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        self.builder.push_value_at(self.name, &v);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.builder.push_value_at(self.name, &v);
        Ok(())
    }
}

/// Reads a property name straight into a [`Name`], without a `String` per key.
struct NameSeed;

/// A key as read: shared, or owned when the table is full.
pub(crate) enum KeyName {
    Shared(u16),
    Own(String),
}

impl KeyName {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            KeyName::Shared(id) => shared_name(*id),
            KeyName::Own(s) => s,
        }
    }

    fn name(&self) -> Name<'_> {
        match self {
            KeyName::Shared(id) => Name::Shared(*id),
            KeyName::Own(s) => Name::Text(s),
        }
    }
}

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = KeyName;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<KeyName, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed {
    type Value = KeyName;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a property name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<KeyName, E> {
        Ok(match intern(s) {
            Some(id) => KeyName::Shared(id),
            None => KeyName::Own(s.to_string()),
        })
    }
}

/// Reads the rest of a JSON object's entries into properties, handing the keys `other`
/// takes (a Graph object's `id` and `members`) to it: it reads their value and returns
/// true. A repeated property keeps its last value, as `serde_json::Map` does.
pub(crate) fn read_map<'de, A: MapAccess<'de>>(
    mut map: A,
    mut other: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<Props, A::Error> {
    let mut b = Builder::default();
    let mut repeated = false;
    while let Some(key) = map.next_key_seed(NameSeed)? {
        if other(key.as_str(), &mut map)? {
            continue;
        }
        repeated = repeated
            || match &key {
                KeyName::Shared(id) => b
                    .slots
                    .iter()
                    .any(|s| s.kind != Kind::Name && s.name == *id),
                KeyName::Own(t) => {
                    (0..b.slots.len()).any(|i| b.slots[i].kind != Kind::Name && b.name_at(i) == t)
                }
            };
        let name = b.push_name_of(key.name());
        map.next_value_seed(ValueInto {
            builder: &mut b,
            name,
        })?;
    }
    let props = b.finish();
    if !repeated {
        return Ok(props);
    }
    // Rare: keep the last value of each name, in the first one's place.
    let pairs: Vec<(&str, PropRef<'_>)> = props.iter().collect();
    Ok(pairs.into_iter().collect())
}

impl Builder {
    fn name_at(&self, i: usize) -> &str {
        match self.slots[i].name {
            INLINE if i > 0 => {
                let start = if i < 2 {
                    0
                } else {
                    self.slots[i - 2].end as usize
                };
                self.data
                    .get(start..self.slots[i - 1].end as usize)
                    .unwrap_or_default()
            }
            INLINE => "",
            id => shared_name(id),
        }
    }
}

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PropsVisitor;
        impl<'de> Visitor<'de> for PropsVisitor {
            type Value = Props;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Props, A::Error> {
                read_map(map, |_, _| Ok(false))
            }
        }
        d.deserialize_map(PropsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Props {
        serde_json::from_value(json!({
            "displayName": "Zoë",
            "accountEnabled": true,
            "mail": null,
            "assignedLicenses": [{"skuId": "a", "disabledPlans": []}],
            "employeeOrgData": {"division": "x", "costCenter": "y"},
            "age": 42
        }))
        .unwrap()
    }

    #[test]
    fn reads_back_what_json_gave() {
        let p = sample();
        assert_eq!(p.len(), 6);
        assert_eq!(p.str("displayName"), Some("Zoë"));
        assert_eq!(
            p.get("accountEnabled").and_then(PropRef::as_bool),
            Some(true)
        );
        assert!(p.get("mail").is_some_and(PropRef::is_unset));
        assert_eq!(
            p.value("assignedLicenses"),
            Some(json!([{"skuId": "a", "disabledPlans": []}]))
        );
        assert_eq!(p.value("age"), Some(json!(42)));
        assert!(p.get("missing").is_none());
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({
                "displayName": "Zoë",
                "accountEnabled": true,
                "mail": null,
                "assignedLicenses": [{"skuId": "a", "disabledPlans": []}],
                "employeeOrgData": {"division": "x", "costCenter": "y"},
                "age": 42
            })
        );
        assert_eq!(
            p.keys().collect::<Vec<_>>(),
            vec![
                "displayName",
                "accountEnabled",
                "mail",
                "assignedLicenses",
                "employeeOrgData",
                "age"
            ]
        );
    }

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut p = sample();
        assert_eq!(p.insert("displayName", json!("Zoe")), Some(json!("Zoë")));
        assert_eq!(p.keys().next(), Some("displayName"));
        assert_eq!(p.insert("new", json!(["a"])), None);
        assert_eq!(p.keys().last(), Some("new"));
        assert_eq!(p.remove("accountEnabled"), Some(json!(true)));
        assert_eq!(p.remove("accountEnabled"), None);
        assert_eq!(p.len(), 6);
        let m: Map<String, Value> =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(Props::from(m), p);
    }

    #[test]
    fn equality_ignores_order_and_key_order_inside_objects() {
        let a: Props = serde_json::from_str(r#"{"x":{"a":1,"b":2},"y":"s"}"#).unwrap();
        let b: Props = serde_json::from_str(r#"{"y":"s","x":{"b":2,"a":1}}"#).unwrap();
        assert_eq!(a, b);
        let c: Props = serde_json::from_str(r#"{"y":"s","x":{"b":2,"a":2}}"#).unwrap();
        assert_ne!(a, c);
        assert!(a.get("x").unwrap().eq_value(&json!({"b": 2, "a": 1})));
        assert!(!a.get("y").unwrap().eq_value(&json!(["s"])));
    }

    #[test]
    fn a_repeated_name_keeps_the_last_value_in_the_first_place() {
        let p: Props = serde_json::from_str(r#"{"a":1,"b":2,"a":"three"}"#).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(p.str("a"), Some("three"));
    }

    #[test]
    fn unset_values() {
        let p: Props = serde_json::from_str(r#"{"a":null,"b":"","c":[],"d":false}"#).unwrap();
        assert!(p.get("a").unwrap().is_unset());
        assert!(p.get("b").unwrap().is_unset());
        assert!(p.get("c").unwrap().is_unset());
        assert!(!p.get("d").unwrap().is_unset());
    }

    #[test]
    fn names_beyond_the_table_stay_with_the_object() {
        // What the builder does once the table is full, forced for one name.
        let mut b = Builder::default();
        b.push("shared", PropRef::Str("1"));
        b.data.push_str("private");
        b.slots.push(Slot {
            name: INLINE,
            kind: Kind::Name,
            end: b.data.len() as u32,
        });
        b.data.push('2');
        b.slots.push(Slot {
            name: INLINE,
            kind: Kind::Str,
            end: b.data.len() as u32,
        });
        assert_eq!(b.name_at(2), "private");
        let p = b.finish();
        assert_eq!(p.len(), 2);
        assert_eq!(p.keys().collect::<Vec<_>>(), vec!["shared", "private"]);
        assert_eq!(p.str("private"), Some("2"));
        let mut q = p.clone();
        q.insert("private", json!("3"));
        assert_eq!(q.str("private"), Some("3"));
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"shared":"1","private":"3"}"#
        );
    }
}
