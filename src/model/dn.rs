//! Distinguished names (RFC 4514), compared the way AD compares them: attribute types and
//! values case-insensitively, escapes decoded, spaces around separators ignored.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A DN as AD printed it, plus its parsed, normalised components for comparison.
#[derive(Clone)]
pub struct Dn {
    raw: String,
    /// (attribute type lowercased, decoded value) from leaf to root.
    rdns: Vec<(String, String)>,
    key: String,
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

    /// The common case, no escapes: split on separators, trim, lowercase the key.
    fn parse_plain(s: &str) -> Result<Self, DnError> {
        if s.trim().is_empty() {
            return Ok(Self {
                raw: String::new(),
                rdns: Vec::new(),
                key: String::new(),
            });
        }
        let err = |reason| DnError {
            dn: s.to_string(),
            reason,
        };
        let mut rdns = Vec::with_capacity(8);
        let mut key = String::with_capacity(s.len());
        for part in s.split([',', ';', '+']) {
            let (attr, value) = part
                .split_once('=')
                .ok_or_else(|| err("missing '=' in a relative name"))?;
            let attr = attr.trim().to_ascii_lowercase();
            if attr.is_empty() {
                return Err(err("empty attribute type"));
            }
            let value = value.trim_start_matches(' ').trim_end_matches(' ');
            if !key.is_empty() {
                key.push(',');
            }
            key.push_str(&attr);
            key.push('=');
            key.push_str(&escape_value(&value.to_lowercase()));
            rdns.push((attr, value.to_string()));
        }
        Ok(Self {
            raw: s.to_string(),
            rdns,
            key,
        })
    }

    fn parse_escaped(s: &str) -> Result<Self, DnError> {
        let err = |reason| DnError {
            dn: s.to_string(),
            reason,
        };
        let mut rdns = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        if s.trim().is_empty() {
            return Ok(Self {
                raw: String::new(),
                rdns,
                key: String::new(),
            });
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
        let key = rdns
            .iter()
            .map(|(a, v)| format!("{a}={}", escape_value(&v.to_lowercase())))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            raw: s.to_string(),
            rdns,
            key,
        })
    }

    /// The DN as AD printed it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// A normalised form: equal for DNs that AD considers equal.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// (attribute type, decoded value) pairs, leaf first.
    pub fn rdns(&self) -> &[(String, String)] {
        &self.rdns
    }

    /// The decoded value of the leaf RDN (`CN=Smith\, John,...` → `Smith, John`).
    pub fn leaf_value(&self) -> Option<&str> {
        self.rdns.first().map(|(_, v)| v.as_str())
    }

    /// The DN one level up.
    pub fn parent(&self) -> Option<Dn> {
        if self.rdns.len() <= 1 {
            return None;
        }
        let rdns = self.rdns[1..].to_vec();
        let raw = rdns
            .iter()
            .map(|(a, v)| format!("{}={}", a.to_ascii_uppercase(), escape_value(v)))
            .collect::<Vec<_>>()
            .join(",");
        Dn::parse(&raw).ok()
    }

    /// True when `self` equals `ancestor` or sits anywhere below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        let n = ancestor.rdns.len();
        if n > self.rdns.len() {
            return false;
        }
        let tail = &self.rdns[self.rdns.len() - n..];
        tail.iter()
            .zip(&ancestor.rdns)
            .all(|((a1, v1), (a2, v2))| a1 == a2 && v1.to_lowercase() == v2.to_lowercase())
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
        self.key == other.key
    }
}
impl Eq for Dn {}
impl Hash for Dn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl PartialOrd for Dn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
impl fmt::Debug for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dn({:?})", self.raw)
    }
}

impl Serialize for Dn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
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
        assert_eq!(a.leaf_value(), Some("Smith, John"));
        assert_eq!(a.rdns().len(), 3);
        let b = Dn::parse(r"CN=Smith\2C John,OU=Staff,DC=corp").unwrap();
        assert_eq!(a, b);
        let u = Dn::parse(r"CN=J\C3\BCrgen,DC=corp").unwrap();
        assert_eq!(u.leaf_value(), Some("Jürgen"));
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
                proptest::prop_assert_eq!(f.rdns(), s.rdns());
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
