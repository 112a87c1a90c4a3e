//! Which AD attribute anchors an object, as Entra Connect chooses it, and the string form
//! of objectSid (how Graph shows it in `onPremisesSecurityIdentifier`).
//!
//! The anchor is what ad2entra writes to `onPremisesImmutableId` and to its anchor
//! extension; Entra Connect calls it the sourceAnchor. Connect anchors users on
//! `objectGUID` or on `mS-DS-ConsistencyGuid` (its default since 1.1.524: the attribute
//! when set, and it writes the objectGUID there when it is empty), and anchors every other
//! object type on `objectGUID`. Either way the anchor is base64 of the raw bytes.

use super::{Anchor, ObjectKind, SourceObject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The LDAP name of the attribute Entra Connect anchors users on by default.
pub const CONSISTENCY_GUID: &str = "mS-DS-ConsistencyGuid";

/// The AD attribute whose bytes, base64-encoded, are a user's source anchor.
///
/// With `mS-DS-ConsistencyGuid` a user without the attribute is anchored on its objectGUID,
/// and groups always are: "Use ms-DS-ConsistencyGuid as the sourceAnchor attribute for User
/// objects. ObjectGUID is used for other object types" (Entra Connect: design concepts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AnchorAttribute {
    #[default]
    #[serde(rename = "objectGUID")]
    ObjectGuid,
    #[serde(rename = "mS-DS-ConsistencyGuid")]
    ConsistencyGuid,
}

impl AnchorAttribute {
    pub fn is_default(&self) -> bool {
        *self == AnchorAttribute::ObjectGuid
    }

    /// The LDAP name, as a policy writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnchorAttribute::ObjectGuid => "objectGUID",
            AnchorAttribute::ConsistencyGuid => CONSISTENCY_GUID,
        }
    }

    /// The other choice: the anchor a policy had before it switched to this one.
    pub fn other(self) -> Self {
        match self {
            AnchorAttribute::ObjectGuid => AnchorAttribute::ConsistencyGuid,
            AnchorAttribute::ConsistencyGuid => AnchorAttribute::ObjectGuid,
        }
    }
}

/// The base64 of an object's `mS-DS-ConsistencyGuid`, when it holds a value. Connect
/// base64-encodes any binary sourceAnchor, so a value of another length than a GUID's is
/// taken as it is.
pub fn consistency_anchor(o: &SourceObject) -> Option<Anchor> {
    o.values(CONSISTENCY_GUID)
        .first()
        .filter(|v| !v.is_empty())
        .map(|v| Anchor(STANDARD.encode(v)))
}

/// The object's anchor under `attr`: users take the attribute's value when set and their
/// objectGUID otherwise; every other kind takes its objectGUID.
pub fn anchor_for(o: &SourceObject, attr: AnchorAttribute) -> Anchor {
    match attr {
        AnchorAttribute::ConsistencyGuid if o.kind == ObjectKind::User => {
            consistency_anchor(o).unwrap_or_else(|| o.guid.anchor())
        }
        _ => o.guid.anchor(),
    }
}

/// The object's anchor under the other choice, when it differs from the one under `attr`:
/// what an owned object carries when the policy's `anchor:` was changed.
pub fn previous_anchor(o: &SourceObject, attr: AnchorAttribute) -> Option<Anchor> {
    let now = anchor_for(o, attr);
    Some(anchor_for(o, attr.other())).filter(|a| *a != now)
}

/// The string form of a binary SID (`S-1-5-21-…`), as Graph shows a synced group's
/// `onPremisesSecurityIdentifier`: revision, the 48-bit identifier authority (big-endian),
/// then each 32-bit sub-authority (little-endian). None when the bytes are not a SID.
pub fn sid_string(b: &[u8]) -> Option<String> {
    let (&revision, rest) = b.split_first()?;
    let (&count, rest) = rest.split_first()?;
    if rest.len() != 6 + 4 * usize::from(count) {
        return None;
    }
    let authority = rest[..6]
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let mut s = if authority < (1 << 32) {
        format!("S-{revision}-{authority}")
    } else {
        format!("S-{revision}-0x{authority:012X}")
    };
    for sub in rest[6..].chunks_exact(4) {
        let v = u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]]);
        s.push_str(&format!("-{v}"));
    }
    Some(s)
}

/// The string form of an object's objectSid, when it has a valid one.
pub fn object_sid(o: &SourceObject) -> Option<String> {
    o.values("objectSid").first().and_then(sid_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Dn, ObjectGuid};

    fn user(guid: u8, consistency: Option<&[u8]>, kind: &str) -> SourceObject {
        let mut attrs: Vec<(&str, Vec<Vec<u8>>)> = vec![
            ("objectGUID", vec![vec![guid; 16]]),
            ("objectClass", vec![kind.as_bytes().to_vec()]),
        ];
        if let Some(c) = consistency {
            attrs.push(("mS-DS-ConsistencyGuid", vec![c.to_vec()]));
        }
        SourceObject::from_attrs(Dn::parse("CN=x,DC=corp").unwrap(), attrs).unwrap()
    }

    #[test]
    fn consistency_guid_anchors_users_when_set_and_objectguid_otherwise() {
        let g = ObjectGuid([1; 16]).anchor();
        let c = ObjectGuid([2; 16]).anchor();
        let with = user(1, Some(&[2; 16]), "user");
        let without = user(1, None, "user");
        let group = user(1, Some(&[2; 16]), "group");
        assert_eq!(anchor_for(&with, AnchorAttribute::ObjectGuid), g);
        assert_eq!(anchor_for(&with, AnchorAttribute::ConsistencyGuid), c);
        assert_eq!(anchor_for(&without, AnchorAttribute::ConsistencyGuid), g);
        assert_eq!(anchor_for(&group, AnchorAttribute::ConsistencyGuid), g);
        assert_eq!(
            previous_anchor(&with, AnchorAttribute::ConsistencyGuid),
            Some(g.clone())
        );
        assert_eq!(
            previous_anchor(&with, AnchorAttribute::ObjectGuid),
            Some(c.clone())
        );
        assert_eq!(
            previous_anchor(&without, AnchorAttribute::ConsistencyGuid),
            None
        );
        assert_eq!(previous_anchor(&group, AnchorAttribute::ObjectGuid), None);
        // Connect's write-back: the attribute holds the objectGUID, nothing changes.
        let same = user(1, Some(&[1; 16]), "user");
        assert_eq!(
            previous_anchor(&same, AnchorAttribute::ConsistencyGuid),
            None
        );
    }

    #[test]
    fn sid_strings() {
        // S-1-5-21-1004336348-1177238915-682003330-512 (Domain Admins of a domain).
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for v in [21u32, 1004336348, 1177238915, 682003330, 512] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            sid_string(&b).as_deref(),
            Some("S-1-5-21-1004336348-1177238915-682003330-512")
        );
        // Well-known S-1-1-0 (Everyone).
        assert_eq!(
            sid_string(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).as_deref(),
            Some("S-1-1-0")
        );
        assert_eq!(sid_string(&[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0]), None);
        assert_eq!(sid_string(&[]), None);
    }
}
