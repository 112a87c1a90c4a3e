//! Delta reads of users and groups for the reconciler: a full read that also hands out delta
//! links, and delta rounds that bring a kept [`TargetSnapshot`] up to date.
//!
//! What Graph documents, and what this module does about it (delta query overview, user:
//! delta, group: delta, delta-query-groups):
//! - `$deltatoken=latest` returns a delta link and no data. [`read_full_with_links`] asks for
//!   it *before* the full list read, so a change racing with the read comes back in the next
//!   round (a replay at worst) instead of being lost. The full read stays the `$top=999`
//!   list read with members in `$batch`, the fastest way to read everything.
//! - Query parameters live in the tokens: `$select` is given once, when taking the links.
//!   Groups select `members` too, so membership changes arrive as `members@delta`.
//! - Changed objects carry the selected properties that have a value (with
//!   `Prefer: return=minimal`, only the changed ones); a property cleared since comes as
//!   `null`; one never set is left out. So the merge overwrites what is present and keeps
//!   what is absent; a new object gets the `null`s a list read would show.
//! - `@removed` (`changed`: soft-deleted; `deleted`: gone) removes the object. Member lists
//!   drop it too: a list of a group's members shows live objects only. Soft-deleted users are
//!   in the deleted-items list, which every delta cycle reads again with the other small
//!   parts (domains, SKUs, directory roles).
//! - The same object may come several times in a round (replays, or a large group split over
//!   pages with a chunk of `members@delta` each): items are applied in order and applying one
//!   twice changes nothing.
//! - A token Graph no longer honours answers 410 Gone or a 4xx `syncStateNotFound` /
//!   `resyncRequired` ([`GraphError::is_delta_expired`]): the caller reads everything again.
//!
//! A delta read is all or nothing: every page of both rounds is fetched and checked before
//! the snapshot is touched, and a round that stops without a delta link fails the read
//! ([`GraphError::IncompleteRead`]).

use super::GraphClient;
use super::error::GraphError;
use super::http::with_query;
use super::read::{
    ReadOptions, collection_of, extension_app, group_select, malformed, read_snapshot,
    read_tenant_facts, user_select,
};
use crate::model::ObjectId;
use crate::model::target::{ExtensionNames, Props, TargetObject, TargetSnapshot};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// Where the next delta round starts: Graph's `@odata.deltaLink`s for users and groups,
/// opaque, and a fingerprint of the properties they were taken for. Serialisable for the
/// reconciler's state file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeltaLinks {
    pub users: String,
    pub groups: String,
    /// Fingerprint of the `$select` lists the links encode. Links taken for another
    /// selection (the policy maps other properties) cannot be continued: their rounds would
    /// bring other properties than a full read shows.
    #[serde(default)]
    pub selection: String,
}

/// What one delta read changed in the snapshot. Counts are of effects: a replayed item
/// counts once as updated and adds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetDeltaSummary {
    /// Users new to the snapshot.
    pub users_added: usize,
    /// Users already known whose properties were merged.
    pub users_updated: usize,
    /// Users removed (deleted, soft or for good).
    pub users_removed: usize,
    pub groups_added: usize,
    pub groups_updated: usize,
    pub groups_removed: usize,
    /// Member ids added to groups.
    pub members_added: usize,
    /// Member ids removed from groups (by `members@delta` or because the member was removed).
    pub members_removed: usize,
    /// Delta pages read (both rounds).
    pub pages: usize,
}

/// The `$select` lists of a delta read: the full read's, plus `members` for groups.
#[derive(Clone, Debug)]
pub struct DeltaSelection {
    /// As the full read selects users.
    pub users: Vec<String>,
    /// As the full read selects groups (without `members`).
    pub groups: Vec<String>,
}

impl DeltaSelection {
    /// The selection for these read options.
    pub fn new(opts: &ReadOptions) -> Self {
        let ext = ExtensionNames::for_app(&extension_app(opts));
        DeltaSelection {
            users: user_select(opts, &ext),
            groups: group_select(opts, &ext),
        }
    }

    /// `/users/delta?$select=…&$deltatoken=latest` (pure).
    pub fn users_latest_path(&self) -> String {
        latest_path("/users/delta", &self.users)
    }

    /// `/groups/delta?$select=…,members&$deltatoken=latest` (pure).
    pub fn groups_latest_path(&self) -> String {
        let mut select = self.groups.clone();
        select.push("members".into());
        latest_path("/groups/delta", &select)
    }

    /// A short fingerprint of both lists (pure).
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(format!(
            "users:{}\ngroups:{}",
            self.users.join(","),
            self.groups.join(",")
        ));
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn latest_path(collection: &str, select: &[String]) -> String {
    with_query(
        collection,
        &[
            ("$select", select.join(",")),
            ("$deltatoken", "latest".into()),
        ],
    )
}

/// One member entry of `members@delta`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDelta {
    pub id: String,
    /// `@removed` present: the member left the group (or was deleted).
    pub removed: bool,
}

/// One checked item of a delta page.
#[derive(Clone, Debug, PartialEq)]
pub enum DeltaItem {
    /// Created, updated or restored: the properties it came with (annotations dropped) and
    /// its `members@delta` entries.
    Changed {
        id: String,
        props: Map<String, Value>,
        members: Vec<MemberDelta>,
    },
    /// `@removed`; `permanently` when the reason is `deleted` rather than `changed`.
    Removed { id: String, permanently: bool },
}

impl DeltaItem {
    /// The object's id.
    pub fn id(&self) -> &str {
        match self {
            DeltaItem::Changed { id, .. } | DeltaItem::Removed { id, .. } => id,
        }
    }
}

fn item_id(m: &Map<String, Value>) -> Result<String, String> {
    match m.get("id") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err("an item without id".into()),
    }
}

/// Checks one delta item (pure).
pub fn parse_item(v: Value) -> Result<DeltaItem, String> {
    let Value::Object(mut m) = v else {
        return Err("an item that is not an object".into());
    };
    let id = item_id(&m)?;
    if let Some(removed) = m.get("@removed") {
        let permanently = removed.get("reason").and_then(Value::as_str) == Some("deleted");
        return Ok(DeltaItem::Removed { id, permanently });
    }
    let members = match m.remove("members@delta") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|e| match e {
                Value::Object(e) => Ok(MemberDelta {
                    id: item_id(&e).map_err(|_| "a members@delta entry without id")?,
                    removed: e.contains_key("@removed"),
                }),
                _ => Err("a members@delta entry that is not an object"),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("members@delta is not an array".into()),
    };
    m.remove("id");
    m.retain(|k, _| !k.starts_with('@') && !k.contains("@odata.") && !k.ends_with("@delta"));
    Ok(DeltaItem::Changed {
        id,
        props: m,
        members,
    })
}

fn parse_items(collection: &str, items: Vec<Value>) -> Result<Vec<DeltaItem>, GraphError> {
    items
        .into_iter()
        .map(parse_item)
        .collect::<Result<_, _>>()
        .map_err(|m| GraphError::Decode {
            method: "GET".into(),
            path: collection.to_string(),
            message: m,
        })
}

/// Directory extension attributes are left out of list reads when unset, where other
/// selected properties come as `null`.
fn is_extension(name: &str) -> bool {
    name.starts_with("extension_")
}

/// Merges changed properties: present ones overwrite, absent ones stay; an extension
/// attribute set to `null` is dropped, as a list read would not show it.
fn merge_props(props: &mut Props, changed: &Map<String, Value>) {
    for (k, v) in changed {
        if v.is_null() && is_extension(k) {
            props.remove(k);
        } else {
            props.insert(k, v.clone());
        }
    }
}

/// An object first seen in a delta round, with the `null`s a list read shows for selected
/// properties without a value.
fn new_object(id: &str, changed: &Map<String, Value>, select: &[String]) -> TargetObject {
    let mut props = Props::new();
    merge_props(&mut props, changed);
    for s in select {
        if s != "id" && !is_extension(s) && !props.contains_key(s) {
            props.insert(s, Value::Null);
        }
    }
    TargetObject {
        id: id.to_string(),
        members: Vec::new(),
        props,
    }
}

/// Counts of one collection's merge.
#[derive(Default)]
struct Counts {
    added: usize,
    updated: usize,
    removed: usize,
    members_added: usize,
    members_removed: usize,
}

/// Adds and removes member ids in a sorted member list; returns (added, removed).
fn merge_members(members: &mut Vec<ObjectId>, changes: &[MemberDelta]) -> (usize, usize) {
    if changes.is_empty() {
        return (0, 0);
    }
    if !members.is_sorted() {
        members.sort();
        members.dedup();
    }
    let (mut added, mut removed) = (0, 0);
    for m in changes {
        let id = ObjectId::new(&m.id);
        match (m.removed, members.binary_search(&id)) {
            (false, Err(pos)) => {
                members.insert(pos, id);
                added += 1;
            }
            (true, Ok(pos)) => {
                members.remove(pos);
                removed += 1;
            }
            _ => {}
        }
    }
    (added, removed)
}

/// Applies the items of one round to `objects` in order; returns the counts and the ids
/// that are gone at the end.
fn merge_collection(
    objects: &mut Vec<TargetObject>,
    items: &[DeltaItem],
    select: &[String],
) -> (Counts, HashSet<String>) {
    let mut c = Counts::default();
    let mut gone: HashSet<String> = HashSet::new();
    if items.is_empty() {
        return (c, gone);
    }
    // Where each item's object is now (ids borrowed, so no copy of 100,000 ids).
    let known: Vec<Option<usize>> = {
        let index: HashMap<&str, usize> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.id.as_str(), i))
            .collect();
        items.iter().map(|it| index.get(it.id()).copied()).collect()
    };
    let mut dead: HashSet<usize> = HashSet::new();
    let mut new_ids: HashMap<&str, usize> = HashMap::new();
    let mut updated: HashSet<usize> = HashSet::new();
    for (item, was) in items.iter().zip(known) {
        let id = item.id();
        let at = new_ids
            .get(id)
            .copied()
            .or(was)
            .filter(|i| !dead.contains(i));
        match item {
            DeltaItem::Changed { props, members, .. } => {
                let i = match at {
                    Some(i) => {
                        merge_props(&mut objects[i].props, props);
                        if !new_ids.contains_key(id) {
                            updated.insert(i);
                        }
                        i
                    }
                    None => {
                        objects.push(new_object(id, props, select));
                        gone.remove(id);
                        new_ids.insert(id, objects.len() - 1);
                        objects.len() - 1
                    }
                };
                let (a, r) = merge_members(&mut objects[i].members, members);
                c.members_added += a;
                c.members_removed += r;
            }
            DeltaItem::Removed { .. } => {
                if let Some(i) = at {
                    dead.insert(i);
                    if !new_ids.contains_key(id) {
                        c.removed += 1;
                    }
                }
                new_ids.remove(id);
                gone.insert(id.to_string());
            }
        }
    }
    c.added = new_ids.len();
    c.updated = updated.difference(&dead).count();
    if !dead.is_empty() {
        let mut i = 0;
        objects.retain(|_| {
            let keep = !dead.contains(&i);
            i += 1;
            keep
        });
    }
    (c, gone)
}

/// Applies one delta read to `snapshot` (pure): users, then groups with their member
/// changes, then removed users and groups leave every member list. Applying the same items
/// again changes nothing.
pub fn apply_delta(
    snapshot: &mut TargetSnapshot,
    users: &[DeltaItem],
    groups: &[DeltaItem],
    select: &DeltaSelection,
) -> TargetDeltaSummary {
    let (u, gone_users) = merge_collection(&mut snapshot.users, users, &select.users);
    let (g, gone_groups) = merge_collection(&mut snapshot.groups, groups, &select.groups);
    let mut members_removed = g.members_removed;
    if !gone_users.is_empty() || !gone_groups.is_empty() {
        let gone: HashSet<ObjectId> = gone_users
            .iter()
            .chain(&gone_groups)
            .map(ObjectId::from)
            .collect();
        for grp in &mut snapshot.groups {
            let before = grp.members.len();
            grp.members.retain(|m| !gone.contains(m));
            members_removed += before - grp.members.len();
        }
    }
    TargetDeltaSummary {
        users_added: u.added,
        users_updated: u.updated,
        users_removed: u.removed,
        groups_added: g.added,
        groups_updated: g.updated,
        groups_removed: g.removed,
        members_added: g.members_added,
        members_removed,
        pages: 0,
    }
}

/// The pages of one delta round, followed to its delta link.
struct Round {
    items: Vec<Value>,
    delta_link: String,
    pages: usize,
}

/// Follows `link` through every `@odata.nextLink` to the `@odata.deltaLink`. A page with
/// neither, or both, or a link that fails, fails the round.
async fn delta_round(client: &GraphClient, link: &str) -> Result<Round, GraphError> {
    let collection = collection_of(link);
    let mut url = link.to_string();
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.get_page(&collection, &url, pages).await?;
        pages += 1;
        items.extend(page.items);
        match (page.next, page.delta) {
            (Some(n), None) if n == url => {
                return Err(malformed(
                    &collection,
                    pages - 1,
                    "the next link repeats the page it came with".into(),
                ));
            }
            (Some(n), None) => url = n,
            (None, Some(delta_link)) => {
                return Ok(Round {
                    items,
                    delta_link,
                    pages,
                });
            }
            (None, None) => {
                return Err(malformed(
                    &collection,
                    pages - 1,
                    "delta round cut short: neither @odata.nextLink nor @odata.deltaLink".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(malformed(
                    &collection,
                    pages - 1,
                    "both @odata.nextLink and @odata.deltaLink".into(),
                ));
            }
        }
    }
}

/// Reads everything the planner needs, as [`read_snapshot`] does, plus delta links taken
/// just before the read: the next [`read_delta`] returns every change made since, including
/// one made while the read ran.
pub async fn read_full_with_links(
    client: &GraphClient,
    opts: &ReadOptions,
) -> Result<(TargetSnapshot, DeltaLinks), GraphError> {
    let select = DeltaSelection::new(opts);
    let (users_latest, groups_latest) = (select.users_latest_path(), select.groups_latest_path());
    let (users, groups) = tokio::try_join!(
        delta_round(client, &users_latest),
        delta_round(client, &groups_latest),
    )?;
    let snapshot = read_snapshot(client, opts).await?;
    Ok((
        snapshot,
        DeltaLinks {
            users: users.delta_link,
            groups: groups.delta_link,
            selection: select.fingerprint(),
        },
    ))
}

/// Brings `snapshot` (from [`read_full_with_links`] or an earlier [`read_delta`]) up to date
/// with the changes since `links`: users and groups with their members from delta rounds;
/// domains, SKUs, deleted users and directory roles read again whole. Returns the links to
/// continue from and what changed. On any error `snapshot` is left as it was; when
/// [`GraphError::is_delta_expired`] says so, a full read is needed.
pub async fn read_delta(
    client: &GraphClient,
    opts: &ReadOptions,
    snapshot: &mut TargetSnapshot,
    links: &DeltaLinks,
) -> Result<(DeltaLinks, TargetDeltaSummary), GraphError> {
    let select = DeltaSelection::new(opts);
    let selection = select.fingerprint();
    if links.selection != selection {
        return Err(GraphError::DeltaLinksUnusable(
            "they were taken for other properties than the policy now reads".into(),
        ));
    }
    let (users, groups, facts) = tokio::try_join!(
        delta_round(client, &links.users),
        delta_round(client, &links.groups),
        read_tenant_facts(client, opts),
    )?;
    let user_items = parse_items(&collection_of(&links.users), users.items)?;
    let group_items = parse_items(&collection_of(&links.groups), groups.items)?;
    let mut next = facts;
    next.users = std::mem::take(&mut snapshot.users);
    next.groups = std::mem::take(&mut snapshot.groups);
    let mut summary = apply_delta(&mut next, &user_items, &group_items, &select);
    summary.pages = users.pages + groups.pages;
    *snapshot = next;
    Ok((
        DeltaLinks {
            users: users.delta_link,
            groups: groups.delta_link,
            selection,
        },
        summary,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let path = format!(
            "{}/emulator/tests/data/samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn items(v: Value) -> Vec<DeltaItem> {
        v.as_array()
            .unwrap()
            .iter()
            .cloned()
            .map(|i| parse_item(i).unwrap())
            .collect()
    }

    fn obj(v: Value) -> TargetObject {
        serde_json::from_value(v).unwrap()
    }

    fn selection() -> DeltaSelection {
        DeltaSelection {
            users: vec![
                "id".into(),
                "displayName".into(),
                "jobTitle".into(),
                "extension_abc_ad2entraAnchor".into(),
            ],
            groups: vec!["id".into(), "displayName".into()],
        }
    }

    fn snapshot() -> TargetSnapshot {
        TargetSnapshot {
            users: vec![
                obj(
                    json!({"id": "u1", "displayName": "One", "jobTitle": "Clerk",
                           "extension_abc_ad2entraAnchor": "A1"}),
                ),
                obj(json!({"id": "u2", "displayName": "Two", "jobTitle": null})),
            ],
            groups: vec![obj(
                json!({"id": "g1", "displayName": "G", "members": ["u1", "u2"]}),
            )],
            ..Default::default()
        }
    }

    #[test]
    fn parses_the_documented_samples() {
        let page = sample("users-delta-initial-page.json");
        let got = items(page["value"].clone());
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[2],
            DeltaItem::Removed {
                id: "86462606-fde0-4fc4-9e0c-a20eb73e54c6".into(),
                permanently: true
            }
        );
        let DeltaItem::Changed { props, members, .. } = &got[3] else {
            panic!("{:?}", got[3]);
        };
        assert_eq!(props.len(), 1);
        assert!(members.is_empty());
        let page = sample("groups-delta-changes-members-removed.json");
        let got = items(page["value"].clone());
        let DeltaItem::Changed { id, props, members } = &got[0] else {
            panic!("{:?}", got[0]);
        };
        assert_eq!(id, "2e5807ce-58f3-4a94-9b37-ffff2e085957");
        assert!(!props.contains_key("members@delta") && props.contains_key("description"));
        assert_eq!(
            members,
            &vec![
                MemberDelta {
                    id: "632f6bb2-3ec8-4c1f-9073-0027a8c6859".into(),
                    removed: true
                },
                MemberDelta {
                    id: "37de1ae3-408f-4702-8636-20824abda004".into(),
                    removed: false
                },
            ]
        );
    }

    #[test]
    fn malformed_items_are_errors() {
        assert!(parse_item(json!({"displayName": "no id"})).is_err());
        assert!(parse_item(json!("text")).is_err());
        assert!(parse_item(json!({"id": "g", "members@delta": {"id": "u"}})).is_err());
        assert!(parse_item(json!({"id": "g", "members@delta": [{"x": 1}]})).is_err());
        assert!(parse_item(json!({"id": ""})).is_err());
    }

    #[test]
    fn updates_merge_properties_and_absent_ones_stay() {
        let mut s = snapshot();
        let u = items(json!([
            {"id": "u1", "displayName": "Uno", "jobTitle": null},
            {"id": "u2", "extension_abc_ad2entraAnchor": "A2"},
        ]));
        let sum = apply_delta(&mut s, &u, &[], &selection());
        assert_eq!(
            s.users[0],
            obj(json!({"id": "u1", "displayName": "Uno", "jobTitle": null,
                       "extension_abc_ad2entraAnchor": "A1"}))
        );
        assert_eq!(s.users[1].str("extension_abc_ad2entraAnchor"), Some("A2"));
        assert_eq!(s.users[1].str("displayName"), Some("Two"));
        assert_eq!((sum.users_updated, sum.users_added), (2, 0));
        // An extension attribute cleared is dropped, as a list read leaves it out.
        let u = items(json!([{"id": "u1", "extension_abc_ad2entraAnchor": null}]));
        apply_delta(&mut s, &u, &[], &selection());
        assert!(
            !s.users[0]
                .props
                .contains_key("extension_abc_ad2entraAnchor")
        );
    }

    #[test]
    fn new_objects_get_the_nulls_of_a_list_read() {
        let mut s = snapshot();
        let u = items(
            json!([{"id": "u3", "displayName": "Three", "@odata.type": "#microsoft.graph.user"}]),
        );
        let sum = apply_delta(&mut s, &u, &[], &selection());
        assert_eq!(sum.users_added, 1);
        assert_eq!(
            s.users[2],
            obj(json!({"id": "u3", "displayName": "Three", "jobTitle": null}))
        );
        let g = items(json!([{"id": "g2", "displayName": "New",
            "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": "u2"}]}]));
        let sum = apply_delta(&mut s, &[], &g, &selection());
        assert_eq!((sum.groups_added, sum.members_added), (1, 1));
        assert_eq!(s.groups[1].members, vec!["u2"]);
    }

    #[test]
    fn removed_objects_leave_the_snapshot_and_every_member_list() {
        let mut s = snapshot();
        s.groups.push(obj(
            json!({"id": "g2", "displayName": "Outer", "members": ["g1", "u1"]}),
        ));
        let u = items(json!([{"id": "u1", "@removed": {"reason": "changed"}}]));
        let g = items(json!([{"id": "g1", "@removed": {"reason": "deleted"}}]));
        let sum = apply_delta(&mut s, &u, &g, &selection());
        assert_eq!(
            s.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["u2"]
        );
        assert_eq!(s.groups.len(), 1);
        assert!(s.groups[0].members.is_empty());
        assert_eq!(
            (sum.users_removed, sum.groups_removed, sum.members_removed),
            (1, 1, 2)
        );
        // An object we never saw, removed: nothing to do.
        let u = items(json!([{"id": "nobody", "@removed": {"reason": "deleted"}}]));
        let before = s.clone();
        assert_eq!(apply_delta(&mut s, &u, &[], &selection()).users_removed, 0);
        assert_eq!(s, before);
    }

    #[test]
    fn member_changes_and_replays_are_idempotent() {
        let mut s = snapshot();
        let g = items(json!([
            {"id": "g1", "displayName": "G", "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.user", "id": "u3"}]},
            // A large group comes back with its next chunk of members.
            {"id": "g1", "displayName": "G", "members@delta": [
                {"@odata.type": "#microsoft.graph.group", "id": "g9"}]},
        ]));
        let sum = apply_delta(&mut s, &[], &g, &selection());
        assert_eq!(s.groups[0].members, vec!["g9", "u2", "u3"]);
        assert_eq!((sum.members_added, sum.members_removed), (2, 1));
        assert_eq!(sum.groups_updated, 1);
        let once = s.clone();
        let again = apply_delta(&mut s, &[], &g, &selection());
        assert_eq!(s, once);
        assert_eq!((again.members_added, again.members_removed), (0, 0));
    }

    #[test]
    fn removal_then_restore_in_one_round_keeps_the_object() {
        let mut s = snapshot();
        let u = items(json!([
            {"id": "u2", "@removed": {"reason": "changed"}},
            {"id": "u2", "displayName": "Two again"},
        ]));
        let sum = apply_delta(&mut s, &u, &[], &selection());
        let u2 = s.users.iter().find(|u| u.id == "u2").unwrap();
        assert_eq!(u2.str("displayName"), Some("Two again"));
        assert_eq!(s.groups[0].members, vec!["u1", "u2"]);
        assert_eq!((sum.users_removed, sum.users_added), (1, 1));
    }

    #[test]
    fn links_paths_and_fingerprint() {
        let sel = selection();
        assert_eq!(
            sel.users_latest_path(),
            "/users/delta?$select=id,displayName,jobTitle,extension_abc_ad2entraAnchor&$deltatoken=latest"
        );
        assert_eq!(
            sel.groups_latest_path(),
            "/groups/delta?$select=id,displayName,members&$deltatoken=latest"
        );
        let mut other = selection();
        other.users.push("department".into());
        assert_ne!(sel.fingerprint(), other.fingerprint());
        assert_eq!(sel.fingerprint(), selection().fingerprint());
        let links = DeltaLinks {
            users: "u".into(),
            groups: "g".into(),
            selection: sel.fingerprint(),
        };
        let back: DeltaLinks =
            serde_json::from_str(&serde_json::to_string(&links).unwrap()).unwrap();
        assert_eq!(back, links);
    }
}
