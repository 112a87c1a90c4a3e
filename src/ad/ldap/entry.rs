//! Decoding a SearchResultEntry into raw bytes per attribute.
//!
//! ldap3's `SearchEntry::construct` panics on malformed input and splits values into text
//! and binary maps; the model wants every value as bytes, and a malformed reply from the
//! network must be an error, not a panic.

use ldap3::asn1::{PL, StructureTag};

/// One directory entry exactly as the server sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RawEntry {
    pub dn: String,
    /// Attribute descriptions as returned (options such as `;range=0-1499` included).
    pub attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl RawEntry {
    /// The values of an attribute (description compared case-insensitively, exactly).
    pub fn get(&self, name: &str) -> Option<&[Vec<u8>]> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| v.first())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

fn constructed(tag: StructureTag, what: &str) -> Result<Vec<StructureTag>, String> {
    match tag.payload {
        PL::C(inner) => Ok(inner),
        PL::P(_) => Err(format!("{what}: expected a constructed element")),
    }
}

fn primitive(tag: StructureTag, what: &str) -> Result<Vec<u8>, String> {
    match tag.payload {
        PL::P(bytes) => Ok(bytes),
        PL::C(_) => Err(format!("{what}: expected a primitive element")),
    }
}

/// Decodes `[APPLICATION 4] SEQUENCE { objectName, SEQUENCE OF SEQUENCE { type, SET OF value } }`.
pub(super) fn parse_entry(tag: StructureTag) -> Result<RawEntry, String> {
    if tag.id != 4 {
        return Err(format!(
            "expected a search result entry, got tag {}",
            tag.id
        ));
    }
    let mut parts = constructed(tag, "entry")?.into_iter();
    let dn = parts.next().ok_or("entry without a DN")?;
    let dn = String::from_utf8(primitive(dn, "entry DN")?).map_err(|_| "entry DN is not UTF-8")?;
    let list = parts
        .next()
        .ok_or_else(|| format!("{dn}: entry without attributes"))?;
    let mut attrs = Vec::new();
    for pa in constructed(list, "attribute list")? {
        let mut pa = constructed(pa, "attribute")?.into_iter();
        let name = pa
            .next()
            .ok_or_else(|| format!("{dn}: attribute without a type"))?;
        let name = String::from_utf8(primitive(name, "attribute type")?)
            .map_err(|_| format!("{dn}: attribute type is not UTF-8"))?;
        let vals = pa
            .next()
            .ok_or_else(|| format!("{dn}: {name} without values"))?;
        let values = constructed(vals, "attribute values")?
            .into_iter()
            .map(|v| primitive(v, "attribute value"))
            .collect::<Result<Vec<_>, _>>()?;
        attrs.push((name, values));
    }
    Ok(RawEntry { dn, attrs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldap3::asn1::TagClass;

    fn p(id: u64, bytes: &[u8]) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id,
            payload: PL::P(bytes.to_vec()),
        }
    }
    fn c(class: TagClass, id: u64, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(inner),
        }
    }

    #[test]
    fn decodes_binary_and_text_values() {
        let guid = [0u8, 0xff, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        let tag = c(
            TagClass::Application,
            4,
            vec![
                p(4, "CN=Zoë,DC=x".as_bytes()),
                c(
                    TagClass::Universal,
                    16,
                    vec![
                        c(
                            TagClass::Universal,
                            16,
                            vec![
                                p(4, b"objectGUID"),
                                c(TagClass::Universal, 17, vec![p(4, &guid)]),
                            ],
                        ),
                        c(
                            TagClass::Universal,
                            16,
                            vec![
                                p(4, b"member;range=0-1"),
                                c(TagClass::Universal, 17, vec![p(4, b"CN=a"), p(4, b"CN=b")]),
                            ],
                        ),
                    ],
                ),
            ],
        );
        let e = parse_entry(tag).unwrap();
        assert_eq!(e.dn, "CN=Zoë,DC=x");
        assert_eq!(e.get("objectguid").unwrap()[0], guid.to_vec());
        assert_eq!(e.get("MEMBER;RANGE=0-1").unwrap().len(), 2);
        assert_eq!(e.text("member;range=0-1"), Some("CN=a"));
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        assert!(parse_entry(p(4, b"x")).is_err());
        assert!(parse_entry(c(TagClass::Application, 4, vec![])).is_err());
        assert!(parse_entry(c(TagClass::Application, 4, vec![p(4, b"CN=x")])).is_err());
        assert!(
            parse_entry(c(
                TagClass::Application,
                4,
                vec![p(4, &[0xff, 0xfe]), c(TagClass::Universal, 16, vec![])]
            ))
            .is_err()
        );
    }
}
