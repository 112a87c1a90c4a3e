//! Distinguished names (RFC 4514), compared the way AD compares them: attribute types and
//! values case-insensitively, escapes decoded, spaces around separators ignored.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

/// A DN as AD printed it, plus its normalised form for comparison.
///
/// One allocation holds both (the printed DN, then the key): a directory of 100,000
/// users holds 100,000 DNs, and a parsed list of components per DN cost about 500 bytes
/// each. The components are decoded again when asked for ([`Dn::rdns`]), which only
/// scope checks of named DNs and templates reading a DN component do.
#[derive(Clone)]
pub struct Dn {
    /// `raw` then `key`.
    buf: Box<str>,
    raw_len: u32,
}

/// Why a string is not a DN.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid distinguished name {dn:?}: {reason}")]
pub struct DnError {
    pub dn: String,
    pub reason: &'static str,
}

impl Dn {
    /// Parses an RFC 4514 string. The empty string is the root DN.
    pub fn parse(s: &str) -> Result<Self, DnError> {
        if !s.contains('\\') {
            return Self::parse_plain(s);
        }
        Self::parse_escaped(s)
    }

    fn from_parts(raw: &str, key: &str) -> Result<Self, DnError> {
        let raw_len = u32::try_from(raw.len()).map_err(|_| DnError {
            dn: raw.chars().take(64).collect(),
            reason: "longer than 4 GB",
        })?;
        let mut buf = String::with_capacity(raw.len() + key.len());
        buf.push_str(raw);
        buf.push_str(key);
        Ok(Self {
            buf: buf.into_boxed_str(),
            raw_len,
        })
    }

    /// The common case, no escapes: split on separators, trim, lowercase the key.
    fn parse_plain(s: &str) -> Result<Self, DnError> {
        if s.trim().is_empty() {
            return Self::from_parts("", "");
        }
        let err = |reason| DnError {
            dn: s.to_string(),
            reason,
        };
        let mut key = String::with_capacity(s.len());
        for (attr, value) in plain_rdns(s) {
            let attr = attr.ok_or_else(|| err("missing '=' in a relative name"))?;
            if attr.is_empty() {
                return Err(err("empty attribute type"));
            }
            if !key.is_empty() {
                key.push(',');
            }
            key.extend(attr.chars().map(|c| c.to_ascii_lowercase()));
            key.push('=');
            key.push_str(&escape_value(&value.to_lowercase()));
        }
        Self::from_parts(s, &key)
    }

    fn parse_escaped(s: &str) -> Result<Self, DnError> {
        let rdns = decode_escaped(s)?;
        let key = rdns
            .iter()
            .map(|(a, v)| format!("{a}={}", escape_value(&v.to_lowercase())))
            .collect::<Vec<_>>()
            .join(",");
        Self::from_parts(s, &key)
    }
}

/// (attribute type as written, value trimmed) of a DN without escapes; the type is
/// `None` for a component without `=`.
fn plain_rdns(s: &str) -> impl Iterator<Item = (Option<&str>, &str)> {
    s.split([',', ';', '+'])
        .map(|part| match part.split_once('=') {
            Some((attr, value)) => (
                Some(attr.trim()),
                value.trim_start_matches(' ').trim_end_matches(' '),
            ),
            None => (None, part),
        })
}

/// The components of a DN with escapes: (type lowercased, decoded value), leaf first.
fn decode_escaped(s: &str) -> Result<Vec<(String, String)>, DnError> {
    {
        let err = |reason| DnError {
            dn: s.to_string(),
            reason,
        };
        let mut rdns = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        if s.trim().is_empty() {
            return Ok(rdns);
        }
        while i < chars.len() {
            // attribute type
            let mut attr = String::new();
            while i < chars.len() && chars[i] != '=' {
                if chars[i] == ',' || chars[i] == '+' {
                    return Err(err("missing '=' in a relative name"));
                }
                attr.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(err("missing '=' in a relative name"));
            }
            i += 1; // '='
            let attr = attr.trim().to_ascii_lowercase();
            if attr.is_empty() {
                return Err(err("empty attribute type"));
            }
            let mut value = String::new();
            let mut pending_spaces = String::new();
            let mut started = false;
            let mut bytes: Vec<u8> = Vec::new();
            let flush_bytes = |bytes: &mut Vec<u8>, value: &mut String| -> Result<(), DnError> {
                if !bytes.is_empty() {
                    let s = std::str::from_utf8(bytes).map_err(|_| DnError {
                        dn: s.to_string(),
                        reason: "hex escape is not UTF-8",
                    })?;
                    value.push_str(s);
                    bytes.clear();
                }
                Ok(())
            };
            while i < chars.len() && chars[i] != ',' && chars[i] != ';' && chars[i] != '+' {
                let c = chars[i];
                if c == '\\' {
                    let next = chars
                        .get(i + 1)
                        .copied()
                        .ok_or_else(|| err("dangling '\\'"))?;
                    if next.is_ascii_hexdigit() {
                        let h2 = chars
                            .get(i + 2)
                            .copied()
                            .ok_or_else(|| err("bad hex escape"))?;
                        let hex: String = [next, h2].iter().collect();
                        let b = u8::from_str_radix(&hex, 16).map_err(|_| err("bad hex escape"))?;
                        value.push_str(&pending_spaces);
                        pending_spaces.clear();
                        bytes.push(b);
                        i += 3;
                    } else {
                        flush_bytes(&mut bytes, &mut value)?;
                        value.push_str(&pending_spaces);
                        pending_spaces.clear();
                        value.push(next);
                        i += 2;
                    }
                    started = true;
                    continue;
                }
                flush_bytes(&mut bytes, &mut value)?;
                if c == ' ' {
                    if started {
                        pending_spaces.push(c);
                    }
                } else {
                    value.push_str(&pending_spaces);
                    pending_spaces.clear();
                    value.push(c);
                    started = true;
                }
                i += 1;
            }
            flush_bytes(&mut bytes, &mut value)?;
            rdns.push((attr, value));
            if i < chars.len() {
                i += 1; // separator; multi-valued RDNs ('+') are folded into the list
            }
        }
        Ok(rdns)
    }
}

impl Dn {
    /// The DN as AD printed it.
    pub fn as_str(&self) -> &str {
        &self.buf[..self.raw_len as usize]
    }

    /// A normalised form: equal for DNs that AD considers equal.
    pub fn key(&self) -> &str {
        &self.buf[self.raw_len as usize..]
    }

    /// (attribute type lowercased, decoded value) pairs, leaf first; decoded on each call.
    pub fn rdns(&self) -> Vec<(String, String)> {
        let raw = self.as_str();
        if raw.contains('\\') {
            // Parsed once already: the escapes are valid.
            return decode_escaped(raw).unwrap_or_default();
        }
        if raw.trim().is_empty() {
            return Vec::new();
        }
        plain_rdns(raw)
            .map(|(a, v)| (a.unwrap_or_default().to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    /// How many components the DN has (0 for the root DN).
    pub fn rdn_count(&self) -> usize {
        let key = self.key();
        if key.is_empty() {
            return 0;
        }
        1 + separators(key).count()
    }

    /// The decoded value of the leaf RDN (`CN=Smith\, John,...` → `Smith, John`).
    pub fn leaf_value(&self) -> Option<Cow<'_, str>> {
        let raw = self.as_str();
        if raw.contains('\\') {
            return self.rdns().into_iter().next().map(|(_, v)| Cow::Owned(v));
        }
        plain_rdns(raw)
            .next()
            .filter(|(a, _)| a.is_some())
            .map(|(_, v)| Cow::Borrowed(v))
    }

    /// The DN one level up.
    pub fn parent(&self) -> Option<Dn> {
        let rdns = self.rdns();
        if rdns.len() <= 1 {
            return None;
        }
        let raw = rdns[1..]
            .iter()
            .map(|(a, v)| format!("{}={}", a.to_ascii_uppercase(), escape_value(v)))
            .collect::<Vec<_>>()
            .join(",");
        Dn::parse(&raw).ok()
    }

    /// True when `self` equals `ancestor` or sits anywhere below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        key_within(self.key(), ancestor.key())
    }
}

/// Byte positions of the separators between components in a key (commas not escaped).
fn separators(key: &str) -> impl Iterator<Item = usize> + '_ {
    let b = key.as_bytes();
    b.iter().enumerate().filter_map(move |(i, &c)| {
        (c == b',' && b[..i].iter().rev().take_while(|&&x| x == b'\\').count() % 2 == 0)
            .then_some(i)
    })
}

/// Whether the DN with key `child` equals or sits below the one with key `ancestor`
/// (keys as [`Dn::key`] gives them: a comma in a value is escaped).
pub fn key_within(child: &str, ancestor: &str) -> bool {
    if ancestor.is_empty() {
        return true;
    }
    let Some(head) = child.strip_suffix(ancestor) else {
        return false;
    };
    if head.is_empty() {
        return true;
    }
    match head.strip_suffix(',') {
        Some(h) => h.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0,
        None => false,
    }
}

/// Escapes a value for a DN string (RFC 4514 §2.4).
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Dn {}
impl Hash for Dn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}
impl PartialOrd for Dn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dn({:?})", self.as_str())
    }
}

impl Serialize for Dn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
impl<'de> Deserialize<'de> for Dn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dn::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_case_and_space_insensitively() {
        let a = Dn::parse("CN=John Smith,OU=Staff,DC=corp,DC=example,DC=com").unwrap();
        let b = Dn::parse("cn=john smith, ou=STAFF ,dc=Corp,dc=example,dc=com").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn decodes_escapes() {
        let a = Dn::parse(r"CN=Smith\, John,OU=Staff,DC=corp").unwrap();
        assert_eq!(a.leaf_value().as_deref(), Some("Smith, John"));
        assert_eq!(a.rdns().len(), 3);
        assert_eq!(a.rdn_count(), 3);
        assert_eq!(Dn::parse("").unwrap().rdn_count(), 0);
        let b = Dn::parse(r"CN=Smith\2C John,OU=Staff,DC=corp").unwrap();
        assert_eq!(a, b);
        let u = Dn::parse(r"CN=J\C3\BCrgen,DC=corp").unwrap();
        assert_eq!(u.leaf_value().as_deref(), Some("Jürgen"));
        assert_eq!(
            Dn::parse("CN=Plain ,DC=corp")
                .unwrap()
                .leaf_value()
                .as_deref(),
            Some("Plain")
        );
    }

    #[test]
    fn within_and_parent() {
        let ou = Dn::parse("OU=Staff,DC=corp,DC=example,DC=com").unwrap();
        let u = Dn::parse("CN=A,OU=Sales,OU=Staff,DC=corp,DC=example,DC=com").unwrap();
        assert!(u.is_within(&ou));
        assert!(ou.is_within(&ou));
        assert!(!ou.is_within(&u));
        let other = Dn::parse("OU=Staff2,DC=corp,DC=example,DC=com").unwrap();
        assert!(!u.is_within(&other));
        assert_eq!(
            u.parent().unwrap(),
            Dn::parse("OU=Sales,OU=Staff,DC=corp,DC=example,DC=com").unwrap()
        );
    }

    proptest::proptest! {
        /// The fast path for DNs without escapes agrees with the general parser.
        #[test]
        fn plain_and_escaped_parsers_agree(parts in proptest::collection::vec(("(CN|OU|DC|cn|ou)", "[A-Za-z0-9 ._-]{1,12}"), 1..6)) {
            let dn: String = parts.iter().map(|(a, v)| format!("{a}={v}")).collect::<Vec<_>>().join(",");
            let fast = Dn::parse_plain(&dn);
            let slow = Dn::parse_escaped(&dn);
            proptest::prop_assert_eq!(fast.is_ok(), slow.is_ok());
            if let (Ok(f), Ok(s)) = (fast, slow) {
                proptest::prop_assert_eq!(f.key(), s.key());
                proptest::prop_assert_eq!(f.rdns(), decode_escaped(&dn).unwrap());
                proptest::prop_assert_eq!(f.rdn_count(), parts.len());
            }
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(Dn::parse("no equals sign").is_err());
        assert!(Dn::parse("CN=a,=b").is_err());
        assert!(Dn::parse("CN=a\\").is_err());
    }
}
