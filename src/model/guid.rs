//! objectGUID and the source anchor derived from it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An AD objectGUID exactly as LDAP returns it: 16 raw bytes, the first three fields
/// little-endian. Keeping the raw bytes (not the printed string) is what makes the
/// anchor compatible with Entra Connect's `ms-DS-ConsistencyGuid`/objectGUID anchor.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectGuid(pub [u8; 16]);

/// Why a value is not a GUID.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuidError {
    #[error("objectGUID must be 16 bytes, got {0}")]
    Length(usize),
    #[error("not a GUID string: {0:?}")]
    Syntax(String),
}

impl ObjectGuid {
    /// From the raw 16 bytes of the LDAP attribute value.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, GuidError> {
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| GuidError::Length(bytes.len()))?;
        Ok(Self(arr))
    }

    /// Parses the printed form `9a7ed32a-0ab4-4d46-aa48-2d7d273334f6` (as AD tools show
    /// it) back into the LDAP byte order.
    pub fn parse(s: &str) -> Result<Self, GuidError> {
        let hex: String = s
            .trim_matches(|c| c == '{' || c == '}')
            .chars()
            .filter(|c| *c != '-')
            .collect();
        if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(GuidError::Syntax(s.to_string()));
        }
        let mut printed = [0u8; 16];
        for (i, b) in printed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16)
                .map_err(|_| GuidError::Syntax(s.to_string()))?;
        }
        let mut raw = printed;
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        Ok(Self(raw))
    }

    /// The source anchor: base64 of the raw bytes (never of the printed string).
    pub fn anchor(&self) -> Anchor {
        Anchor::from(STANDARD.encode(self.0))
    }
}

impl fmt::Display for ObjectGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[3],
            b[2],
            b[1],
            b[0],
            b[5],
            b[4],
            b[7],
            b[6],
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for ObjectGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectGuid({self})")
    }
}

impl Serialize for ObjectGuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectGuid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectGuid::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The value ad2entra writes to `onPremisesImmutableId` and to its anchor extension
/// attribute: the identity that ties an Entra object to its AD object.
///
/// Shared, not copied: a plan of 100,000 users holds each anchor in the desired state,
/// in every group's member list and in the planner's indexes; a clone is a reference
/// count.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Anchor(pub std::sync::Arc<str>);

impl Anchor {
    pub fn new(s: impl Into<std::sync::Arc<str>>) -> Self {
        Anchor(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for Anchor {
    fn from(s: String) -> Self {
        Anchor(s.into())
    }
}

impl From<&str> for Anchor {
    fn from(s: &str) -> Self {
        Anchor(s.into())
    }
}

impl std::borrow::Borrow<str> for Anchor {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Serialize for Anchor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Anchor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Anchor::from)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DESIGN.md §1: the anchor is base64 of the raw LDAP bytes, not of the printed GUID.
    #[test]
    fn anchor_of_design_example_guid() {
        let g = ObjectGuid::parse("9a7ed32a-0ab4-4d46-aa48-2d7d273334f6").unwrap();
        assert_eq!(g.anchor().as_str(), "KtN+mrQKRk2qSC19JzM09g==");
        assert_eq!(g.to_string(), "9a7ed32a-0ab4-4d46-aa48-2d7d273334f6");
    }

    #[test]
    fn raw_bytes_round_trip() {
        let raw = [
            0x2a, 0xd3, 0x7e, 0x9a, 0xb4, 0x0a, 0x46, 0x4d, 0xaa, 0x48, 0x2d, 0x7d, 0x27, 0x33,
            0x34, 0xf6,
        ];
        let g = ObjectGuid::from_bytes(&raw).unwrap();
        assert_eq!(g.to_string(), "9a7ed32a-0ab4-4d46-aa48-2d7d273334f6");
        assert_eq!(
            ObjectGuid::from_bytes(&raw[..15]),
            Err(GuidError::Length(15))
        );
    }

    #[test]
    fn rejects_bad_strings() {
        assert!(ObjectGuid::parse("not-a-guid").is_err());
    }
}
