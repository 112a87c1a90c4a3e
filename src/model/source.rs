//! What AD returned: objects with raw attribute values, as LDAP or an LDIF file gives them.

use super::{Attributes, Dn, ObjectGuid, Values};
use serde::{Deserialize, Serialize};

/// The kind of directory object, derived from `objectClass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    User,
    Group,
    OrganizationalUnit,
    Container,
    Computer,
    Other,
}

impl ObjectKind {
    /// Classifies by `objectClass` values. Computers are users in AD's schema; they are
    /// told apart so they never enter user scope.
    pub fn from_object_classes<'a>(classes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut kind = ObjectKind::Other;
        for c in classes {
            let c = c.to_ascii_lowercase();
            kind = match (kind, c.as_str()) {
                (_, "computer") => return ObjectKind::Computer,
                (_, "group") => ObjectKind::Group,
                (ObjectKind::Other | ObjectKind::Container, "user" | "inetorgperson") => {
                    ObjectKind::User
                }
                (ObjectKind::Other, "organizationalunit") => ObjectKind::OrganizationalUnit,
                (ObjectKind::Other, "container" | "domaindns" | "builtindomain") => {
                    ObjectKind::Container
                }
                (k, _) => k,
            };
        }
        kind
    }
}

/// One directory entry. Attribute names are stored lowercased (LDAP names are
/// case-insensitive); values are raw bytes because AD has binary attributes
/// (objectGUID, objectSid) beside UTF-8 strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceObject {
    pub dn: Dn,
    pub guid: ObjectGuid,
    pub kind: ObjectKind,
    /// Which source (domain or forest) it was read from: the index of that source in
    /// the policy (`sources:` order, 0 for a single `source:`), so scope, UPN rules and
    /// plans know it. Set by the reader; 0 until then.
    pub origin: u16,
    pub usn_changed: Option<u64>,
    pub attrs: Attributes,
}

impl SourceObject {
    /// Builds an object from an attribute map (names in any case). Fails when objectGUID
    /// is missing or malformed: without it there is no anchor.
    pub fn from_attrs<N: AsRef<str>>(
        dn: Dn,
        attrs: impl IntoIterator<Item = (N, Vec<Vec<u8>>)>,
    ) -> Result<Self, String> {
        Self::from_attributes(dn, Attributes::from_pairs(attrs))
    }

    /// Builds an object from compact attributes, deriving GUID, kind and uSNChanged.
    pub fn from_attributes(dn: Dn, attrs: Attributes) -> Result<Self, String> {
        let guid_bytes = attrs
            .get("objectguid")
            .first()
            .ok_or_else(|| format!("{dn}: objectGUID is missing"))?;
        let guid = ObjectGuid::from_bytes(guid_bytes).map_err(|e| format!("{dn}: {e}"))?;
        let kind = ObjectKind::from_object_classes(
            attrs
                .get("objectclass")
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok()),
        );
        let usn_changed = attrs
            .get("usnchanged")
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse().ok());
        Ok(Self {
            dn,
            guid,
            kind,
            origin: 0,
            usn_changed,
            attrs,
        })
    }

    /// All values of an attribute (name in any case).
    pub fn values(&self, name: &str) -> Values<'_> {
        self.attrs.get(name)
    }

    /// The first value as UTF-8 text, if present and valid.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values(name)
            .first()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value that is valid UTF-8.
    pub fn texts(&self, name: &str) -> impl Iterator<Item = &str> {
        self.values(name)
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    /// The first value parsed as an integer (userAccountControl, adminCount…).
    pub fn int(&self, name: &str) -> Option<i64> {
        self.text(name).and_then(|s| s.trim().parse().ok())
    }

    /// True for `TRUE` (AD's boolean syntax).
    pub fn flag(&self, name: &str) -> bool {
        self.text(name)
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }

    /// userAccountControl bit 2 (ACCOUNTDISABLE).
    pub fn is_disabled(&self) -> bool {
        self.int("userAccountControl").is_some_and(|u| u & 2 != 0)
    }
}

/// A whole read of AD: every object the reader returned, plus where it came from.
#[derive(Clone, Debug, Default)]
pub struct SourceSnapshot {
    /// The server (URL or file path) the snapshot was read from.
    pub server: String,
    pub base_dn: Option<Dn>,
    /// highestCommittedUSN at the start of the read (delta watermark); None for LDIF.
    pub highest_usn: Option<u64>,
    /// Shared so templates can hold an object without copying it.
    pub objects: Vec<std::sync::Arc<SourceObject>>,
    /// The named sources the objects come from (by [`SourceObject::origin`]); empty when
    /// the policy names no source (an LDIF read for a policy without `source:`).
    pub parts: Vec<SourcePart>,
}

impl SourceSnapshot {
    /// The part objects of `origin` come from.
    pub fn part(&self, origin: u16) -> Option<&SourcePart> {
        self.parts.iter().find(|p| p.origin == origin)
    }

    /// The name of the source `o` comes from, when the snapshot has named sources.
    pub fn source_name(&self, o: &SourceObject) -> Option<&str> {
        self.part(o.origin).map(|p| p.name.as_str())
    }
}

/// One source's share of a snapshot: the policy's name for it and where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePart {
    /// [`SourceObject::origin`] of its objects.
    pub origin: u16,
    /// The policy's name for the source (`sources[].name`, or the single source's host).
    pub name: String,
    /// The DC (URL) or file it was read from.
    pub server: String,
    pub base_dn: Option<Dn>,
    /// That DC's highestCommittedUSN at the read (USNs are per DC); None for LDIF.
    pub highest_usn: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_object_classes() {
        let k = |v: &[&str]| ObjectKind::from_object_classes(v.iter().copied());
        assert_eq!(
            k(&["top", "person", "organizationalPerson", "user"]),
            ObjectKind::User
        );
        assert_eq!(
            k(&["top", "person", "organizationalPerson", "user", "computer"]),
            ObjectKind::Computer
        );
        assert_eq!(k(&["top", "group"]), ObjectKind::Group);
        assert_eq!(
            k(&["top", "organizationalUnit"]),
            ObjectKind::OrganizationalUnit
        );
        assert_eq!(k(&["top", "container"]), ObjectKind::Container);
    }
}
