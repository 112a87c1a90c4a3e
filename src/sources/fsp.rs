//! Group members from another forest: foreign security principals.
//!
//! A group can hold a principal of a trusted forest only through a stand-in object in
//! its own domain, `CN=<SID>,CN=ForeignSecurityPrincipals,DC=…`, whose name (and
//! `objectSid`) is the foreign principal's SID. When that forest is a source too, the
//! principal is the user or group of that source with the same `objectSid`, and the
//! membership is synced like any other; when it is not, the member is left out with a
//! `foreign-member-unresolved` warning. Well-known SIDs (Authenticated Users, Interactive
//! …) are no one's account and are left out silently.

use crate::desired::SourceIndex;
use crate::diagnostics::Diagnostic;
use crate::model::{Anchor, Dn, ObjectKind, SourceObject};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// `S-1-5-21-…` from a binary `objectSid` (revision, sub-authority count, 48-bit
/// big-endian authority, little-endian 32-bit sub-authorities).
pub fn sid_to_string(b: &[u8]) -> Option<String> {
    let (&rev, rest) = b.split_first()?;
    let (&count, rest) = rest.split_first()?;
    if rest.len() != 6 + 4 * usize::from(count) {
        return None;
    }
    let auth = rest[..6].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut s = format!("S-{rev}-{auth}");
    for c in rest[6..].chunks_exact(4) {
        s.push_str(&format!(
            "-{}",
            u32::from_le_bytes([c[0], c[1], c[2], c[3]])
        ));
    }
    Some(s)
}

/// The binary `objectSid` of `S-1-5-21-…`; None when it is not a SID.
pub fn sid_to_bytes(s: &str) -> Option<Vec<u8>> {
    let mut parts = s
        .strip_prefix("S-")
        .or_else(|| s.strip_prefix("s-"))?
        .split('-');
    let rev: u8 = parts.next()?.parse().ok()?;
    let auth: u64 = parts.next()?.parse().ok()?;
    if auth >= 1 << 48 {
        return None;
    }
    let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if subs.is_empty() || subs.len() > 15 {
        return None;
    }
    let mut b = vec![rev, subs.len() as u8];
    b.extend_from_slice(&auth.to_be_bytes()[2..]);
    for sub in subs {
        b.extend_from_slice(&sub.to_le_bytes());
    }
    Some(b)
}

/// The SID a foreign security principal's DN names, or None for any other DN.
pub fn fsp_sid(dn: &Dn) -> Option<&str> {
    let rdns = dn.rdns();
    let [(a, _), (b, container), ..] = rdns.as_slice() else {
        return None;
    };
    if a != "cn" || b != "cn" || !container.eq_ignore_ascii_case("ForeignSecurityPrincipals") {
        return None;
    }
    // A SID has no character a DN escapes: the leaf value is borrowed from the DN.
    match dn.leaf_value()? {
        std::borrow::Cow::Borrowed(sid) if sid_to_bytes(sid).is_some() => Some(sid),
        _ => None,
    }
}

/// A domain account's SID (`S-1-5-21-…`), as opposed to a well-known one.
fn is_domain_sid(sid: &str) -> bool {
    sid.starts_with("S-1-5-21-")
}

/// What [`ForeignMembers::resolve`] found: (group, member) positions; and (group, SID)
/// of the domain principals no source holds.
pub type Resolved = (Vec<(u32, u32)>, Vec<(u32, String)>);

/// Foreign security principals met among group members while indexing a snapshot.
#[derive(Debug, Default)]
pub struct ForeignMembers {
    /// (group position, SID).
    pending: Vec<(u32, String)>,
}

impl ForeignMembers {
    /// Remembers `dn` when it is a foreign security principal (then true: the caller does
    /// not resolve it by DN, which would find only the stand-in).
    pub fn note(&mut self, group: u32, dn: &Dn) -> bool {
        match fsp_sid(dn) {
            Some(sid) => {
                self.pending.push((group, sid.to_string()));
                true
            }
            None => false,
        }
    }

    /// Each remembered principal resolved to the user or group (of any source) whose
    /// `objectSid` it names.
    pub fn resolve(self, objects: &[Arc<SourceObject>]) -> Resolved {
        if self.pending.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let mut wanted: HashMap<Vec<u8>, Option<u32>> = self
            .pending
            .iter()
            .filter_map(|(_, sid)| Some((sid_to_bytes(sid)?, None)))
            .collect();
        for (i, o) in objects.iter().enumerate() {
            if !matches!(o.kind, ObjectKind::User | ObjectKind::Group) {
                continue;
            }
            if let Some(sid) = o.values("objectSid").first()
                && let Some(slot) = wanted.get_mut(sid)
            {
                *slot = Some(i as u32);
            }
        }
        let mut resolved = Vec::new();
        let mut unresolved = Vec::new();
        for (g, sid) in self.pending {
            match sid_to_bytes(&sid).and_then(|b| wanted.get(&b).copied().flatten()) {
                Some(i) => resolved.push((g, i)),
                None if is_domain_sid(&sid) => unresolved.push((g, sid)),
                None => {}
            }
        }
        (resolved, unresolved)
    }
}

/// One warning per in-scope group and foreign member that no source holds.
pub fn unresolved_warnings(index: &SourceIndex, in_scope: &[Option<Anchor>]) -> Vec<Diagnostic> {
    let pairs: BTreeSet<(u32, &str)> = index
        .unresolved_foreign
        .iter()
        .filter(|(g, _)| in_scope.get(*g as usize).is_some_and(Option::is_some))
        .map(|(g, sid)| (*g, sid.as_str()))
        .collect();
    pairs
        .into_iter()
        .map(|(g, sid)| {
            Diagnostic::warning(
                "foreign-member-unresolved",
                format!(
                    "member {sid} is a principal of another forest (a foreign security principal) \
                     that no source holds; it is left out of the group"
                ),
            )
            .object(index.objects[g as usize].dn.as_str())
            .attribute("member")
            .hint("add that forest to `sources:` to sync this membership")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_round_trip_as_ad_stores_them() {
        // Samba's objectSid of BRANCH\Administrator, base64 AQUAAAAAAAUVAAAAn1a1TpWUdwBzM8+F9AEAAA==
        let b = [
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x9f, 0x56, 0xb5, 0x4e, 0x95, 0x94, 0x77, 0x00,
            0x73, 0x33, 0xcf, 0x85, 0xf4, 0x01, 0, 0,
        ];
        let s = sid_to_string(&b).unwrap();
        assert_eq!(s, "S-1-5-21-1320507039-7836821-2244948851-500");
        assert_eq!(sid_to_bytes(&s).unwrap(), b);
        assert_eq!(
            sid_to_string(&[1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0]).unwrap(),
            "S-1-5-11"
        );
        assert!(sid_to_string(&b[..10]).is_none());
        assert!(sid_to_bytes("S-1-5").is_none());
        assert!(sid_to_bytes("S-1-x-2").is_none());
        assert!(sid_to_bytes("CN=x").is_none());
    }

    #[test]
    fn only_foreign_security_principal_dns_name_a_sid() {
        let dn = |s: &str| Dn::parse(s).unwrap();
        assert_eq!(
            fsp_sid(&dn(
                "CN=S-1-5-21-1-2-3-1105,CN=ForeignSecurityPrincipals,DC=corp,DC=example,DC=com"
            )),
            Some("S-1-5-21-1-2-3-1105")
        );
        assert_eq!(
            fsp_sid(&dn("CN=S-1-5-21-1-2-3-1105,OU=Staff,DC=corp")),
            None
        );
        assert_eq!(
            fsp_sid(&dn("CN=Ann,CN=ForeignSecurityPrincipals,DC=corp")),
            None
        );
        assert!(is_domain_sid("S-1-5-21-1-2-3-1105"));
        assert!(!is_domain_sid("S-1-5-11"));
    }
}
