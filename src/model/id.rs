//! Graph object ids as group member lists hold them.
//!
//! A tenant of 100,000 users in 5,000 groups holds 500,000 member ids. Graph's ids are
//! GUIDs printed in lower case (`9a7ed32a-0ab4-4d46-aa48-2d7d273334f6`): kept as their 16
//! bytes they cost 24 bytes each instead of a 72-byte string. Any other id is kept as
//! text, and every id prints back exactly as it was read.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One object id: see the module documentation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectId {
    /// A GUID that was printed in canonical lower case, 8-4-4-4-12.
    Guid([u8; 16]),
    /// Anything else, as read.
    Other(Box<str>),
}

/// The 16 bytes of `s` when it is a GUID in canonical lower-case form (so that printing
/// them gives `s` back, byte for byte).
fn canonical_guid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    let mut hex = b.iter().copied().filter(|&c| c != b'-');
    for byte in &mut out {
        let hi = nibble(hex.next()?)?;
        let lo = nibble(hex.next()?)?;
        *byte = hi << 4 | lo;
    }
    Some(out)
}

impl ObjectId {
    pub fn new(s: &str) -> Self {
        match canonical_guid(s) {
            Some(g) => ObjectId::Guid(g),
            None => ObjectId::Other(s.into()),
        }
    }
}

impl From<&str> for ObjectId {
    fn from(s: &str) -> Self {
        ObjectId::new(s)
    }
}

impl From<String> for ObjectId {
    fn from(s: String) -> Self {
        ObjectId::new(&s)
    }
}

impl From<&String> for ObjectId {
    fn from(s: &String) -> Self {
        ObjectId::new(s)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectId::Other(s) => f.write_str(s),
            ObjectId::Guid(g) => {
                for (i, b) in g.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq<str> for ObjectId {
    fn eq(&self, other: &str) -> bool {
        match self {
            ObjectId::Other(s) => &**s == other,
            ObjectId::Guid(g) => canonical_guid(other).as_ref() == Some(g),
        }
    }
}

impl PartialEq<&str> for ObjectId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for ObjectId {
    fn eq(&self, other: &String) -> bool {
        *self == **other
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ObjectId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object id")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ObjectId, E> {
                Ok(ObjectId::new(s))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_packed_and_print_back_exactly() {
        let s = "9a7ed32a-0ab4-4d46-aa48-2d7d273334f6";
        let id = ObjectId::new(s);
        assert!(matches!(id, ObjectId::Guid(_)));
        assert_eq!(id.to_string(), s);
        assert_eq!(id, s);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
        assert_eq!(
            serde_json::from_str::<ObjectId>(&format!("\"{s}\"")).unwrap(),
            id
        );
    }

    #[test]
    fn anything_else_is_kept_as_text() {
        for s in [
            "u1",
            "9A7ED32A-0AB4-4D46-AA48-2D7D273334F6",
            "{9a7ed32a-0ab4-4d46-aa48-2d7d273334f6}",
            "9a7ed32a0ab44d46aa482d7d273334f6",
            "9a7ed32a-0ab4-4d46-aa48-2d7d273334fg",
            "",
        ] {
            let id = ObjectId::new(s);
            assert!(matches!(id, ObjectId::Other(_)), "{s}");
            assert_eq!(id.to_string(), s);
            assert_eq!(id, s);
        }
        assert_ne!(
            ObjectId::new("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6"),
            "9A7ED32A-0AB4-4D46-AA48-2D7D273334F6"
        );
    }

    #[test]
    fn guid_order_is_the_order_of_their_text() {
        let mut ids: Vec<String> = (0..50u32)
            .map(|i| format!("{:08x}-0000-4000-8000-{:012x}", i * 7919 % 50, i * 104_729))
            .collect();
        let mut packed: Vec<ObjectId> = ids.iter().map(ObjectId::from).collect();
        ids.sort();
        packed.sort();
        assert_eq!(
            packed.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ids
        );
    }
}
