//! Applies a plan to a target snapshot in memory, as Graph would. Tests use it to prove
//! convergence: `plan(apply(plan))` must be empty. It is also how `demo --offline` could
//! show a result without a tenant.

use super::types::{Action, ObjectType, Operation, Plan};
use crate::model::target::Props;
use crate::model::{Anchor, ObjectId, TargetObject, TargetSnapshot};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Why a plan could not be simulated (it refers to an object that is not there).
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{op} {name}: no such object in the snapshot")]
    Missing { op: &'static str, name: String },
    #[error("{0}: invalid patch: {1}")]
    Patch(String, String),
}

/// Where each object sits in the snapshot's lists, so folding 100,000 actions stays
/// linear. Deleted entries are marked and removed once at the end.
struct Positions {
    users: HashMap<String, usize>,
    groups: HashMap<String, usize>,
    removed_users: HashSet<usize>,
    removed_groups: HashSet<usize>,
}

impl Positions {
    fn new(s: &TargetSnapshot) -> Self {
        Positions {
            users: s
                .users
                .iter()
                .enumerate()
                .map(|(i, o)| (o.id.clone(), i))
                .collect(),
            groups: s
                .groups
                .iter()
                .enumerate()
                .map(|(i, o)| (o.id.clone(), i))
                .collect(),
            removed_users: HashSet::new(),
            removed_groups: HashSet::new(),
        }
    }
}

/// Returns the snapshot after the plan's actions.
pub fn apply_to_snapshot(
    plan: &Plan,
    snapshot: &TargetSnapshot,
) -> Result<TargetSnapshot, SimulateError> {
    let mut s = snapshot.clone();
    apply_in_place(plan, &mut s)?;
    Ok(s)
}

/// Applies the plan's actions to `s` in place. A create whose `object.id` is set (the
/// reconciler fills in the id Graph returned) keeps that id; otherwise a made-up one.
pub fn apply_in_place(plan: &Plan, s: &mut TargetSnapshot) -> Result<(), SimulateError> {
    let ext = s.extension_names();
    let mut ids: HashMap<Anchor, String> = HashMap::new();
    for o in s.users.iter().chain(&s.groups) {
        if let Some(a) = o.str(&ext.anchor) {
            ids.insert(Anchor::from(a), o.id.clone());
        }
    }
    let mut pos = Positions::new(s);
    let mut next_id = s.users.len() + s.groups.len() + s.deleted_users.read().map_or(0, Vec::len);
    let missing = |a: &Action| SimulateError::Missing {
        op: a.op.as_str(),
        name: a.object.name.clone(),
    };
    for a in &plan.actions {
        if a.object.object_type == ObjectType::Domain {
            super::federation::simulate(a, s)?;
            continue;
        }
        let id = a
            .object
            .id
            .clone()
            .or_else(|| a.object.anchor.as_ref().and_then(|an| ids.get(an).cloned()));
        let is_user = a.object.object_type == ObjectType::User;
        let after = || -> Result<Map<String, Value>, SimulateError> {
            match a.after() {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Ok(Map::new()),
                Err(e) => Err(SimulateError::Patch(a.object.name.clone(), e.to_string())),
            }
        };
        let user_at = |pos: &Positions, id: &str| {
            pos.users
                .get(id)
                .copied()
                .filter(|i| !pos.removed_users.contains(i))
        };
        let group_at = |pos: &Positions, id: &str| {
            pos.groups
                .get(id)
                .copied()
                .filter(|i| !pos.removed_groups.contains(i))
        };
        match a.op {
            Operation::Create => {
                let new_id = match &a.object.id {
                    Some(id) => id.clone(),
                    None => {
                        next_id += 1;
                        format!("00000000-0000-4000-8000-{next_id:012}")
                    }
                };
                let obj = TargetObject {
                    id: new_id.clone(),
                    members: vec![],
                    props: after()?.into(),
                };
                if let Some(an) = &a.object.anchor {
                    ids.insert(an.clone(), new_id.clone());
                }
                if is_user {
                    pos.users.insert(new_id, s.users.len());
                    s.users.push(obj)
                } else {
                    pos.groups.insert(new_id, s.groups.len());
                    s.groups.push(obj)
                }
            }
            Operation::Restore => {
                let id = id.ok_or_else(|| missing(a))?;
                let deleted = s.deleted_users.read_mut().ok_or_else(|| missing(a))?;
                let at = deleted
                    .iter()
                    .position(|o| o.id == id)
                    .ok_or_else(|| missing(a))?;
                let mut obj = deleted.remove(at);
                merge(&mut obj.props, after()?, a.before.as_ref());
                pos.users.insert(obj.id.clone(), s.users.len());
                s.users.push(obj);
            }
            Operation::Update | Operation::Adopt | Operation::Disable => {
                let id = id.ok_or_else(|| missing(a))?;
                let obj = if is_user {
                    let i = user_at(&pos, &id).ok_or_else(|| missing(a))?;
                    &mut s.users[i]
                } else {
                    let i = group_at(&pos, &id).ok_or_else(|| missing(a))?;
                    &mut s.groups[i]
                };
                merge(&mut obj.props, after()?, a.before.as_ref());
                if let Some(an) = &a.object.anchor {
                    ids.insert(an.clone(), id.clone());
                }
            }
            Operation::Delete => {
                let id = id.ok_or_else(|| missing(a))?;
                if is_user {
                    let i = user_at(&pos, &id).ok_or_else(|| missing(a))?;
                    pos.removed_users.insert(i);
                    if let Some(deleted) = s.deleted_users.read_mut() {
                        deleted.push(s.users[i].clone());
                    }
                } else if let Some(i) = group_at(&pos, &id) {
                    pos.removed_groups.insert(i);
                }
                for g in &mut s.groups {
                    g.members.retain(|m| *m != id);
                }
            }
            Operation::AddMembers | Operation::RemoveMembers => {
                let id = id.ok_or_else(|| missing(a))?;
                let member_ids: Vec<ObjectId> = a
                    .members
                    .iter()
                    .filter_map(|m| {
                        m.id.clone()
                            .or_else(|| m.anchor.as_ref().and_then(|an| ids.get(an).cloned()))
                    })
                    .map(ObjectId::from)
                    .collect();
                let gi = group_at(&pos, &id).ok_or_else(|| missing(a))?;
                let g = &mut s.groups[gi];
                for m in member_ids {
                    if a.op == Operation::AddMembers {
                        if !g.members.contains(&m) {
                            g.members.push(m);
                        }
                    } else {
                        g.members.retain(|x| *x != m);
                    }
                }
            }
            Operation::AssignLicense | Operation::RemoveLicense => {
                let id = id.ok_or_else(|| missing(a))?;
                let sku_ids: HashMap<String, String> = s
                    .subscribed_skus
                    .read()
                    .into_iter()
                    .flatten()
                    .map(|k| (k.sku_part_number.to_ascii_uppercase(), k.sku_id.clone()))
                    .collect();
                let ui = user_at(&pos, &id).ok_or_else(|| missing(a))?;
                let u = &mut s.users[ui];
                let mut current: Vec<Value> = match u.props.value("assignedLicenses") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                for sku in &a.skus {
                    let sid = sku
                        .sku_id
                        .clone()
                        .or_else(|| {
                            sku_ids
                                .get(&sku.sku_part_number.to_ascii_uppercase())
                                .cloned()
                        })
                        .unwrap_or_else(|| sku.sku_part_number.clone());
                    current
                        .retain(|l| l.get("skuId").and_then(Value::as_str) != Some(sid.as_str()));
                    if a.op == Operation::AssignLicense {
                        current.push(serde_json::json!({ "skuId": sid, "disabledPlans": [] }));
                    }
                }
                u.props.insert("assignedLicenses", Value::Array(current));
            }
        }
    }
    if !pos.removed_users.is_empty() {
        let mut i = 0;
        s.users.retain(|_| {
            i += 1;
            !pos.removed_users.contains(&(i - 1))
        });
    }
    if !pos.removed_groups.is_empty() {
        let mut i = 0;
        s.groups.retain(|_| {
            i += 1;
            !pos.removed_groups.contains(&(i - 1))
        });
    }
    Ok(())
}

/// Sets every desired property; properties in `before` but not in `after` are cleared.
fn merge(props: &mut Props, after: Map<String, Value>, before: Option<&Value>) {
    if let Some(Value::Object(b)) = before {
        for k in b.keys() {
            if !after.contains_key(k) {
                props.remove(k);
            }
        }
    }
    for (k, v) in after {
        props.insert(&k, v);
    }
}
