//! Folding a delta read into the last full snapshot, so a reconciler can plan from
//! `uSNChanged` deltas instead of re-reading the whole directory.
//!
//! Two things a delta does not say must be derived here: AD (and Samba) store group
//! membership as links, so when a member is deleted, renamed or moved, the group's
//! `member` values change without the group's `uSNChanged` moving — the group is not in
//! the delta. The snapshot's copies of those values are fixed from the tombstones and the
//! renamed objects.

use super::ldap::DeltaRead;
use crate::model::{Attributes, Dn, ObjectGuid, ObjectKind, SourceObject, SourceSnapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What [`apply_delta`] did, for logs and status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeSummary {
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    /// Groups whose `member` values were rewritten (members deleted, renamed or moved).
    pub groups_relinked: usize,
}

/// Member DNs that moved (normalised key → the new DN) or left (→ None) in one source's
/// delta. Groups of *other* sources can list them too (a universal group with members
/// in another domain of the forest), and their DCs change those values without moving
/// the group's `uSNChanged` either: [`relink_groups`] fixes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Relinks(HashMap<String, Option<Dn>>);

impl Relinks {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Applies `delta` to `snapshot` in place: changed objects replace (or join) the
/// snapshot by objectGUID, deleted and moved-out objects leave it, and group `member`
/// values follow deletions and renames. `highest_usn` becomes the delta's watermark.
pub fn apply_delta(snapshot: &mut SourceSnapshot, delta: DeltaRead) -> MergeSummary {
    apply_delta_with_relinks(snapshot, delta).0
}

/// [`apply_delta`], also returning the member DNs that moved or left, for the groups of
/// the other sources ([`relink_groups`]).
pub fn apply_delta_with_relinks(
    snapshot: &mut SourceSnapshot,
    delta: DeltaRead,
) -> (MergeSummary, Relinks) {
    let mut summary = MergeSummary::default();
    let mut by_guid: HashMap<ObjectGuid, usize> = snapshot
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| (o.guid, i))
        .collect();
    // Member DN (normalised key) → its new DN, or None when it left.
    let mut relink: HashMap<String, Option<Dn>> = HashMap::new();
    let mut fresh_groups: HashSet<ObjectGuid> = HashSet::new();
    let mut gone: HashSet<ObjectGuid> = HashSet::new();

    for t in &delta.deleted {
        if let Some(&i) = by_guid.get(&t.guid) {
            relink.insert(snapshot.objects[i].dn.key().to_string(), None);
            gone.insert(t.guid);
        } else if let Some(dn) = &t.former_dn {
            relink.insert(dn.key().to_string(), None);
        }
    }
    for (guid, _) in &delta.moved_out {
        if let Some(&i) = by_guid.get(guid) {
            relink.insert(snapshot.objects[i].dn.key().to_string(), None);
            gone.insert(*guid);
        }
    }
    for o in delta.changed {
        if o.kind == ObjectKind::Group {
            fresh_groups.insert(o.guid);
        }
        match by_guid.get(&o.guid) {
            Some(&i) => {
                let old = &snapshot.objects[i].dn;
                if old != &o.dn {
                    relink.insert(old.key().to_string(), Some(o.dn.clone()));
                }
                snapshot.objects[i] = Arc::new(o);
                summary.changed += 1;
            }
            None => {
                by_guid.insert(o.guid, snapshot.objects.len());
                snapshot.objects.push(Arc::new(o));
                summary.added += 1;
            }
        }
    }
    if !gone.is_empty() {
        let before = snapshot.objects.len();
        snapshot.objects.retain(|o| !gone.contains(&o.guid));
        summary.removed = before - snapshot.objects.len();
    }
    let relink = Relinks(relink);
    summary.groups_relinked = relink_except(snapshot, &relink, &fresh_groups);
    snapshot.highest_usn = Some(delta.new_watermark.highest_usn);
    (summary, relink)
}

/// Rewrites the `member` values of `snapshot`'s groups that list a moved or deleted
/// object of another source; returns how many groups changed.
pub fn relink_groups(snapshot: &mut SourceSnapshot, relinks: &Relinks) -> usize {
    relink_except(snapshot, relinks, &HashSet::new())
}

/// The relinks between two reads of one source: objects (by objectGUID) whose DN
/// changed or that are gone, e.g. when a failover to another DC forced a full read.
pub fn relinks_between(before: &SourceSnapshot, after: &SourceSnapshot) -> Relinks {
    let now: HashMap<ObjectGuid, &Dn> = after.objects.iter().map(|o| (o.guid, &o.dn)).collect();
    let mut map = HashMap::new();
    for o in &before.objects {
        match now.get(&o.guid) {
            Some(dn) if **dn == o.dn => {}
            Some(dn) => {
                map.insert(o.dn.key().to_string(), Some((*dn).clone()));
            }
            None => {
                map.insert(o.dn.key().to_string(), None);
            }
        }
    }
    Relinks(map)
}

fn relink_except(
    snapshot: &mut SourceSnapshot,
    relinks: &Relinks,
    fresh_groups: &HashSet<ObjectGuid>,
) -> usize {
    if relinks.0.is_empty() {
        return 0;
    }
    let mut n = 0;
    for o in snapshot.objects.iter_mut() {
        if o.kind != ObjectKind::Group || fresh_groups.contains(&o.guid) {
            continue;
        }
        if let Some(fixed) = relinked(o, &relinks.0) {
            *o = Arc::new(fixed);
            n += 1;
        }
    }
    n
}

/// The group with its `member` values fixed, or None when none of them moved.
fn relinked(group: &SourceObject, relink: &HashMap<String, Option<Dn>>) -> Option<SourceObject> {
    let mut touched = false;
    let mut members: Vec<Vec<u8>> = Vec::new();
    for v in group.values("member").iter() {
        let key = std::str::from_utf8(v).ok().and_then(|s| Dn::parse(s).ok());
        match key.as_ref().and_then(|dn| relink.get(dn.key())) {
            Some(None) => touched = true,
            Some(Some(new)) => {
                touched = true;
                members.push(new.as_str().as_bytes().to_vec());
            }
            None => members.push(v.to_vec()),
        }
    }
    if !touched {
        return None;
    }
    let pairs = group
        .attrs
        .iter()
        .filter(|(name, _)| *name != "member")
        .map(|(name, values)| (name.to_string(), values.to_vec()))
        .chain([("member".to_string(), members)]);
    let mut fixed =
        SourceObject::from_attributes(group.dn.clone(), Attributes::from_pairs(pairs)).ok()?;
    fixed.origin = group.origin;
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::ldap::{Tombstone, Watermark};

    fn guid(n: u8) -> ObjectGuid {
        ObjectGuid([n; 16])
    }

    fn obj(n: u8, dn: &str, class: &str, members: &[&str]) -> SourceObject {
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> = vec![
            ("objectGUID".into(), vec![guid(n).0.to_vec()]),
            ("objectClass".into(), vec![class.as_bytes().to_vec()]),
        ];
        if !members.is_empty() {
            attrs.push((
                "member".into(),
                members.iter().map(|m| m.as_bytes().to_vec()).collect(),
            ));
        }
        SourceObject::from_attrs(Dn::parse(dn).unwrap(), attrs).unwrap()
    }

    fn members(s: &SourceSnapshot, g: u8) -> Vec<String> {
        let o = s.objects.iter().find(|o| o.guid == guid(g)).unwrap();
        o.texts("member").map(str::to_string).collect()
    }

    #[test]
    fn deletions_and_renames_of_members_reach_their_groups() {
        let (a, b, c) = ("CN=A,OU=X,DC=c", "CN=B,OU=X,DC=c", "CN=C,OU=X,DC=c");
        let mut snap = SourceSnapshot {
            objects: vec![
                Arc::new(obj(1, a, "user", &[])),
                Arc::new(obj(2, b, "user", &[])),
                Arc::new(obj(3, c, "user", &[])),
                Arc::new(obj(9, "CN=G,OU=X,DC=c", "group", &[a, b, c])),
            ],
            ..Default::default()
        };
        let delta = DeltaRead {
            changed: vec![
                obj(2, "CN=B2,OU=Y,DC=c", "user", &[]),
                obj(4, "CN=D,OU=X,DC=c", "user", &[]),
            ],
            deleted: vec![Tombstone {
                guid: guid(1),
                last_known_parent: Dn::parse("OU=X,DC=c").ok(),
                former_dn: Dn::parse(a).ok(),
                kind: ObjectKind::User,
                usn: Some(10),
            }],
            moved_out: vec![(guid(3), Dn::parse("CN=C,OU=Elsewhere,DC=other").unwrap())],
            new_watermark: Watermark {
                invocation_id: guid(0),
                highest_usn: 42,
            },
        };
        let s = apply_delta(&mut snap, delta);
        assert_eq!(
            s,
            MergeSummary {
                changed: 1,
                added: 1,
                removed: 2,
                groups_relinked: 1
            }
        );
        assert_eq!(members(&snap, 9), vec!["CN=B2,OU=Y,DC=c".to_string()]);
        assert_eq!(snap.objects.len(), 3);
        assert_eq!(snap.highest_usn, Some(42));
    }

    #[test]
    fn a_group_in_the_delta_keeps_its_fresh_members() {
        let a = "CN=A,OU=X,DC=c";
        let mut snap = SourceSnapshot {
            objects: vec![
                Arc::new(obj(1, a, "user", &[])),
                Arc::new(obj(9, "CN=G,DC=c", "group", &[a])),
            ],
            ..Default::default()
        };
        let delta = DeltaRead {
            changed: vec![
                obj(1, "CN=A2,OU=X,DC=c", "user", &[]),
                obj(9, "CN=G,DC=c", "group", &["CN=A2,OU=X,DC=c"]),
            ],
            deleted: vec![],
            moved_out: vec![],
            new_watermark: Watermark {
                invocation_id: guid(0),
                highest_usn: 5,
            },
        };
        apply_delta(&mut snap, delta);
        assert_eq!(members(&snap, 9), vec!["CN=A2,OU=X,DC=c".to_string()]);
    }

    /// A universal group of one domain lists members of another domain of the forest:
    /// a rename or deletion there reaches it (its uSNChanged does not move either).
    #[test]
    fn a_rename_or_deletion_in_one_source_reaches_the_groups_of_another() {
        let (a, b) = ("CN=A,OU=X,DC=emea,DC=c", "CN=B,OU=X,DC=emea,DC=c");
        let mut emea = SourceSnapshot {
            objects: vec![
                Arc::new(obj(1, a, "user", &[])),
                Arc::new(obj(2, b, "user", &[])),
            ],
            ..Default::default()
        };
        let mut group = obj(9, "CN=G,DC=c", "group", &[a, b, "CN=Z,DC=c"]);
        group.origin = 3;
        let mut corp = SourceSnapshot {
            objects: vec![Arc::new(group)],
            ..Default::default()
        };
        let before = emea.clone();
        let delta = DeltaRead {
            changed: vec![obj(1, "CN=A2,OU=X,DC=emea,DC=c", "user", &[])],
            deleted: vec![Tombstone {
                guid: guid(2),
                last_known_parent: Dn::parse("OU=X,DC=emea,DC=c").ok(),
                former_dn: Dn::parse(b).ok(),
                kind: ObjectKind::User,
                usn: Some(10),
            }],
            moved_out: vec![],
            new_watermark: Watermark {
                invocation_id: guid(0),
                highest_usn: 42,
            },
        };
        let (_, relinks) = apply_delta_with_relinks(&mut emea, delta);
        assert_eq!(relink_groups(&mut corp, &relinks), 1);
        assert_eq!(
            members(&corp, 9),
            vec![
                "CN=A2,OU=X,DC=emea,DC=c".to_string(),
                "CN=Z,DC=c".to_string()
            ]
        );
        // The fixed group is still of its own source.
        assert_eq!(corp.objects[0].origin, 3);
        // The same relinks, derived from two full reads (a failover to another DC).
        assert_eq!(relinks_between(&before, &emea), relinks);
        assert_eq!(relink_groups(&mut corp, &relinks), 0);
    }
}
