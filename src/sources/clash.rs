//! One objectGUID in two sources. objectGUIDs are unique within a forest, so two
//! sources of one forest never share one; two forests can (a lab cloned from another, a
//! restore into a second forest). The anchor would then name two AD objects: neither is
//! planned, each is named in an `anchor-conflict` error with the other, and the Entra
//! object that carries the anchor is left alone (never deprovisioned for it).

use crate::diagnostics::Diagnostic;
use crate::model::{Anchor, ObjectGuid, ObjectKind, SourceSnapshot};
use std::collections::{HashMap, HashSet};

/// The objects that share an anchor with an object of another source.
#[derive(Debug, Default)]
pub struct Clashes {
    /// Their positions in the snapshot.
    pub positions: HashSet<usize>,
    /// The anchors they share.
    pub anchors: Vec<Anchor>,
    /// One error per object, naming the others.
    pub diagnostics: Vec<Diagnostic>,
}

/// Finds the users and groups whose objectGUID another source's object has too. Only
/// snapshots of several sources are searched: within one source GUIDs are unique.
pub fn anchor_clashes(s: &SourceSnapshot) -> Clashes {
    let mut out = Clashes::default();
    if s.parts.len() < 2 {
        return out;
    }
    let mut by_guid: HashMap<ObjectGuid, Vec<usize>> = HashMap::new();
    for (i, o) in s.objects.iter().enumerate() {
        if matches!(o.kind, ObjectKind::User | ObjectKind::Group) {
            by_guid.entry(o.guid).or_default().push(i);
        }
    }
    let mut groups: Vec<(ObjectGuid, Vec<usize>)> =
        by_guid.into_iter().filter(|(_, v)| v.len() > 1).collect();
    groups.sort_by_key(|(_, v)| v[0]);
    let name = |i: usize| {
        let o = &s.objects[i];
        match s.source_name(o) {
            Some(n) => format!("{} (source {n})", o.dn),
            None => o.dn.to_string(),
        }
    };
    for (guid, positions) in groups {
        for &i in &positions {
            let others: Vec<String> = positions
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| name(j))
                .collect();
            out.diagnostics.push(
                Diagnostic::error(
                    "anchor-conflict",
                    format!(
                        "objectGUID {guid} (anchor {}) of {} is also the objectGUID of {}; neither is synced",
                        guid.anchor(),
                        name(i),
                        others.join("; ")
                    ),
                )
                .object(s.objects[i].dn.as_str())
                .hint("objectGUIDs are unique within a forest: one of the forests is a copy of the other; sync one of them"),
            );
            out.positions.insert(i);
        }
        out.anchors.push(guid.anchor());
    }
    out
}
