//! Several AD sources (domains of a forest, or forests) planned as one directory.
//!
//! Readers read each source on its own (its own DCs, watermarks and failover) and tag
//! every object with its source ([`SourceObject::origin`](crate::model::SourceObject));
//! [`merge`] puts the reads side by side so that the planner sees one snapshot: one
//! UPN/mail uniqueness check over all, group members of another domain of the forest
//! resolved by DN through the merged index, members of another forest resolved by SID
//! ([`fsp`]), and an objectGUID found in two sources refused ([`clash`]).
//!
//! Pure: no IO.

pub mod clash;
pub mod fsp;

use crate::desired::DesiredState;
use crate::model::{SourcePart, SourceSnapshot};
use crate::plan::{Action, SourcePartProvenance};
use crate::policy::LoadedPolicy;
use std::sync::Arc;

/// Tags a read of one source: every object's origin, and the snapshot's one part.
pub fn tag(snapshot: &mut SourceSnapshot, origin: u16, name: &str) {
    for o in &mut snapshot.objects {
        if o.origin != origin {
            // A fresh read holds the only reference: no copy is made.
            Arc::make_mut(o).origin = origin;
        }
    }
    snapshot.parts = vec![SourcePart {
        origin,
        name: name.to_string(),
        server: snapshot.server.clone(),
        base_dn: snapshot.base_dn.clone(),
        highest_usn: snapshot.highest_usn,
    }];
}

/// Tags a read that may hold several sources' objects (an LDIF file, e.g. the exports
/// of two forests one after the other): each object belongs to the source whose base DN
/// holds it (the deepest, for a child domain); objects under none keep origin 0 and are
/// out of scope by that source's base DN. One part per source of the policy, so a
/// source with no object at all is seen (and refused by the planner). A policy without
/// sources leaves the snapshot untagged.
pub fn tag_by_base_dn(snapshot: &mut SourceSnapshot, policy: &LoadedPolicy) {
    if policy.sources.is_empty() {
        return;
    }
    for o in &mut snapshot.objects {
        let origin = policy.source_of(&o.dn).unwrap_or(0);
        if o.origin != origin {
            Arc::make_mut(o).origin = origin;
        }
    }
    snapshot.parts = policy
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| SourcePart {
            origin: i as u16,
            name: s.name.clone(),
            server: snapshot.server.clone(),
            base_dn: Some(s.base_dn.clone()),
            highest_usn: None,
        })
        .collect();
    if let [only] = policy.sources.as_slice() {
        snapshot.base_dn.get_or_insert_with(|| only.base_dn.clone());
    }
}

/// The tagged reads of several sources side by side, as the planner reads them. Objects
/// are shared, not copied. With one read, a copy of it.
pub fn merge<'a>(reads: impl IntoIterator<Item = &'a SourceSnapshot>) -> SourceSnapshot {
    let reads: Vec<&SourceSnapshot> = reads.into_iter().collect();
    if let [one] = reads.as_slice() {
        return (*one).clone();
    }
    let mut out = SourceSnapshot {
        objects: Vec::with_capacity(reads.iter().map(|r| r.objects.len()).sum()),
        ..Default::default()
    };
    for r in &reads {
        out.objects.extend(r.objects.iter().cloned());
        out.parts.extend(r.parts.iter().cloned());
    }
    out.server = out
        .parts
        .iter()
        .map(|p| format!("{}: {}", p.name, p.server))
        .collect::<Vec<_>>()
        .join(", ");
    out
}

/// The sources of a snapshot that returned no object at all. A whole domain turning up
/// empty is a failed read, never "everybody in it left" (the source-failure guard).
pub fn empty_parts(s: &SourceSnapshot) -> Vec<&str> {
    if s.parts.is_empty() {
        return Vec::new();
    }
    let mut counts = vec![0usize; s.parts.len()];
    for o in &s.objects {
        if let Some(i) = s.parts.iter().position(|p| p.origin == o.origin) {
            counts[i] += 1;
        }
    }
    s.parts
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n == 0)
        .map(|(p, _)| p.name.as_str())
        .collect()
}

/// Where each source of the plan was read from, and how many objects it gave.
pub fn provenance(s: &SourceSnapshot) -> Vec<SourcePartProvenance> {
    s.parts
        .iter()
        .map(|p| SourcePartProvenance {
            name: p.name.clone(),
            server: p.server.clone(),
            base_dn: p.base_dn.as_ref().map(ToString::to_string),
            highest_usn: p.highest_usn,
            objects: s.objects.iter().filter(|o| o.origin == p.origin).count(),
        })
        .collect()
}

/// Names on each action the source its object comes from (`object.source`), for the
/// objects that are in AD.
pub fn label<'a>(
    actions: impl IntoIterator<Item = &'a mut Action>,
    desired: &DesiredState,
    s: &SourceSnapshot,
) {
    if s.parts.is_empty() {
        return;
    }
    for a in actions {
        let Some(anchor) = &a.object.anchor else {
            continue;
        };
        let d = desired
            .users
            .get(anchor)
            .or_else(|| desired.groups.get(anchor));
        if let Some(d) = d {
            a.object.source = s.source_name(&d.source).map(str::to_string);
        }
    }
}
