//! Pairing AD objects with Entra objects that the anchor extension's current value does
//! not tie them to: re-anchoring, when the policy's `anchor:` changed, and the hard match
//! of `adopt: {by: immutableId}`, which takes over the objects Entra Connect synced.
//!
//! - **Re-anchoring.** An owned object carries the anchor it was created with. When
//!   `anchor:` switches between `objectGUID` and `mS-DS-ConsistencyGuid`, a user whose two
//!   values differ gets a new anchor; its Entra object is found by the old one and planned
//!   as an `update` of the anchor extension and `onPremisesImmutableId`, never as a delete
//!   and a create. The action names the object by its old anchor, which apply checks the
//!   object still carries. When the old anchor is another AD object's anchor too, or two
//!   AD objects (or two Entra objects) claim one, nothing is guessed: the AD object is left
//!   out with `reanchor-ambiguous` and the Entra objects are left as they are.
//! - **Hard match.** A user whose `onPremisesImmutableId` is the AD object's anchor, or a
//!   group whose `onPremisesSecurityIdentifier` is its objectSid, is the object Entra
//!   Connect made for it; it is adopted with the safety of any adoption: never a synced,
//!   protected or role-holding object, nor one owned for another anchor.

use super::{
    Action, ObjectType, Operation, Planner, TargetIndex, action, anchor_of, managed_subset,
};
use crate::desired::{DesiredObject, DesiredState};
use crate::diagnostics::Diagnostic;
use crate::model::anchor::{object_sid, previous_anchor};
use crate::model::{Anchor, TargetObject, TargetSnapshot};
use crate::policy::LoadedPolicy;
use crate::policy::model::AdoptBy;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Code of an AD object whose Entra object cannot be told unambiguously after `anchor:`
/// changed.
const REANCHOR_AMBIGUOUS: &str = "reanchor-ambiguous";
const REANCHOR_HINT: &str = "nothing is changed for it or for those Entra objects; make the AD objects' mS-DS-ConsistencyGuid unique, or delete the duplicate Entra object, then plan again";
/// Code of an AD object that more than one Entra object hard-matches, or that shares its
/// hard match with another AD object.
const HARD_MATCH_AMBIGUOUS: &str = "hard-match-ambiguous";
/// Warning summing up the re-anchored objects.
const REANCHORED: &str = "reanchored";

/// What the planner knows beyond the anchor extension: which Entra object each AD object
/// stands for.
#[derive(Default)]
pub(super) struct Pairing<'a> {
    /// Entra object id → the anchor of the AD object it is paired with (re-anchored or
    /// hard-matched), so that uniqueness checks do not see the object clash with itself.
    pub by_id: HashMap<&'a str, Anchor>,
    /// New anchor → the old anchor the owned object carries.
    pub reanchored: BTreeMap<Anchor, Anchor>,
    /// Hard-match candidates by the AD object's anchor.
    pub hard: HashMap<Anchor, &'a TargetObject>,
}

/// Pairs what the anchor extension alone does not: owned objects found by their old
/// anchor are re-keyed under the new one in `t`; hard-match candidates are listed. AD
/// objects that cannot be paired unambiguously are taken out of `desired` (errored, with
/// a diagnostic), and so are the anchors of the Entra objects they could stand for, so
/// that nothing is deprovisioned for it.
pub(super) fn pair<'a>(
    policy: &LoadedPolicy,
    desired: &mut DesiredState,
    t: &mut TargetIndex<'a>,
    target: &'a TargetSnapshot,
) -> Pairing<'a> {
    let mut p = Pairing::default();
    reanchor(policy, desired, t, &mut p);
    if policy.policy.adopt.as_ref().map(|a| a.by) == Some(AdoptBy::ImmutableId) {
        hard_match(desired, t, target, &mut p);
    }
    p
}

/// Leaves the AD object with `anchor` out of the plan with an error, and keeps every
/// anchor in `keep` out of deprovisioning.
fn leave_out(desired: &mut DesiredState, anchor: &Anchor, keep: &[&Anchor], diag: Diagnostic) {
    desired.users.remove(anchor);
    desired.groups.remove(anchor);
    desired.errored.insert(anchor.clone());
    for k in keep {
        desired.errored.insert((*k).clone());
    }
    desired.diagnostics.push(diag);
}

fn reanchor<'a>(
    policy: &LoadedPolicy,
    desired: &mut DesiredState,
    t: &mut TargetIndex<'a>,
    p: &mut Pairing<'a>,
) {
    let attr = policy.policy.anchor;
    // Old anchor → the AD objects (new anchor, DN, type) whose previous anchor it is.
    let mut wanted: BTreeMap<Anchor, Vec<(Anchor, String, ObjectType)>> = BTreeMap::new();
    for d in desired.users.values().chain(desired.groups.values()) {
        let Some(old) = previous_anchor(&d.source, attr) else {
            continue;
        };
        if t.existing(d.object_type, &old).is_none() {
            continue;
        }
        wanted
            .entry(old)
            .or_default()
            .push((d.anchor.clone(), d.dn().to_string(), d.object_type));
    }
    for (old, claims) in wanted {
        let old_label = t
            .existing(claims[0].2, &old)
            .map(|o| format!("{} ({})", o.label(), o.id))
            .unwrap_or_default();
        // The old anchor is the current anchor of another AD object too: the Entra object
        // could be either, so it is neither's.
        let claimer: Option<String> = desired
            .users
            .get(&old)
            .or_else(|| desired.groups.get(&old))
            .map(|o| o.dn().to_string());
        if let Some(claimer) = &claimer {
            let dns: Vec<&str> = claims.iter().map(|c| c.1.as_str()).collect();
            leave_out(
                desired,
                &old,
                &[],
                Diagnostic::error(
                    REANCHOR_AMBIGUOUS,
                    format!(
                        "Entra {old_label} carries this object's anchor `{old}`, and it is the previous anchor of {} too",
                        dns.join("; ")
                    ),
                )
                .object(claimer.clone())
                .hint(REANCHOR_HINT),
            );
        }
        let claimed_by = claimer.or_else(|| {
            desired
                .errored
                .contains(&old)
                .then(|| "another AD object left out for an error".to_string())
        });
        let why = match (&claimed_by, claims.as_slice()) {
            (Some(other), _) => Some(format!(
                "its previous anchor `{old}` is the anchor of {other}, which Entra {old_label} stands for"
            )),
            (None, [_]) => None,
            (None, many) => Some(format!(
                "Entra {old_label} (anchor `{old}`) could be any of {}",
                many.iter()
                    .map(|c| c.1.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
        for (new, dn, ty) in &claims {
            // Both anchors owned: two Entra objects stand for one AD object.
            let both = t
                .existing(*ty, new)
                .map(|o| format!("{} ({})", o.label(), o.id));
            let why = match (&why, both) {
                (Some(w), _) => w.clone(),
                (None, Some(current)) => format!(
                    "Entra {current} carries its anchor `{new}` and Entra {old_label} its previous anchor `{old}`"
                ),
                (None, None) => {
                    t.rekey(*ty, &old, new);
                    if let Some(o) = t.existing(*ty, new) {
                        p.by_id.insert(o.id.as_str(), new.clone());
                    }
                    p.reanchored.insert(new.clone(), old.clone());
                    continue;
                }
            };
            leave_out(
                desired,
                new,
                &[&old],
                Diagnostic::error(
                    REANCHOR_AMBIGUOUS,
                    format!(
                        "anchor: {} cannot re-anchor this object: {why}",
                        attr.as_str()
                    ),
                )
                .object(dn.clone())
                .hint(REANCHOR_HINT),
            );
        }
    }
}

/// The key a hard match compares: the anchor for users, the objectSid for groups.
fn hard_key(d: &DesiredObject) -> Option<String> {
    match d.object_type {
        ObjectType::User => Some(d.anchor.0.clone()),
        _ => object_sid(&d.source),
    }
}

fn hard_match<'a>(
    desired: &mut DesiredState,
    t: &TargetIndex<'a>,
    target: &'a TargetSnapshot,
    p: &mut Pairing<'a>,
) {
    let index = |objects: &'a [TargetObject], prop: &str| {
        let mut m: HashMap<&'a str, Vec<&'a TargetObject>> = HashMap::new();
        for o in objects {
            if let Some(v) = o.str(prop).filter(|v| !v.is_empty()) {
                m.entry(v).or_default().push(o);
            }
        }
        m
    };
    let users = index(&target.users, "onPremisesImmutableId");
    let groups = index(&target.groups, "onPremisesSecurityIdentifier");
    // Entra object id → the AD objects (anchor, DN) that hard-match it.
    let mut claims: BTreeMap<&'a str, Vec<(Anchor, String)>> = BTreeMap::new();
    let mut ambiguous: Vec<(Anchor, String, String)> = Vec::new();
    for d in desired.users.values().chain(desired.groups.values()) {
        if t.existing(d.object_type, &d.anchor).is_some() {
            continue;
        }
        let (Some(key), pool, prop) = (match d.object_type {
            ObjectType::User => (hard_key(d), &users, "onPremisesImmutableId"),
            _ => (hard_key(d), &groups, "onPremisesSecurityIdentifier"),
        }) else {
            continue;
        };
        match pool.get(key.as_str()).map(Vec::as_slice) {
            None | Some([]) => {}
            Some([o]) => claims
                .entry(o.id.as_str())
                .or_default()
                .push((d.anchor.clone(), d.dn().to_string())),
            Some(many) => ambiguous.push((
                d.anchor.clone(),
                d.dn().to_string(),
                format!(
                    "{} Entra objects have {prop} `{key}`: {}",
                    many.len(),
                    many.iter()
                        .map(|o| format!("{} ({})", o.label(), o.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
    let by_id: HashMap<&str, &'a TargetObject> = target
        .users
        .iter()
        .chain(&target.groups)
        .map(|o| (o.id.as_str(), o))
        .collect();
    for (id, ads) in claims {
        let Some(&o) = by_id.get(id) else { continue };
        if let [(anchor, _)] = ads.as_slice() {
            p.hard.insert(anchor.clone(), o);
            p.by_id.insert(id, anchor.clone());
            continue;
        }
        for (anchor, dn) in &ads {
            let others: Vec<&str> = ads
                .iter()
                .filter(|(a, _)| a != anchor)
                .map(|(_, d)| d.as_str())
                .collect();
            ambiguous.push((
                anchor.clone(),
                dn.clone(),
                format!(
                    "Entra {} ({id}) is also the hard match of {}",
                    o.label(),
                    others.join("; ")
                ),
            ));
        }
    }
    for (anchor, dn, why) in ambiguous {
        leave_out(
            desired,
            &anchor,
            &[],
            Diagnostic::error(HARD_MATCH_AMBIGUOUS, format!("no hard match is taken: {why}"))
                .object(dn)
                .hint("nothing is adopted or created for this object until one Entra object matches it; remove the duplicate in Entra"),
        );
    }
}

impl<'a> TargetIndex<'a> {
    /// The owned (or, for users, soft-deleted owned) object with this anchor.
    pub(super) fn existing(&self, ty: ObjectType, anchor: &Anchor) -> Option<&'a TargetObject> {
        match ty {
            ObjectType::User => self
                .owned_users
                .get(anchor)
                .or_else(|| self.deleted_users.get(anchor))
                .copied(),
            _ => self.owned_groups.get(anchor).copied(),
        }
    }

    /// Files the owned (or soft-deleted) object with anchor `old` under `new`.
    fn rekey(&mut self, ty: ObjectType, old: &Anchor, new: &Anchor) {
        let maps: Vec<&mut BTreeMap<Anchor, &'a TargetObject>> = match ty {
            ObjectType::User => vec![&mut self.owned_users, &mut self.deleted_users],
            _ => vec![&mut self.owned_groups],
        };
        for map in maps {
            if let Some(o) = map.remove(old) {
                self.id_to_anchor.insert(o.id.as_str(), new.clone());
                map.insert(new.clone(), o);
            }
        }
    }

    /// Files an object taken over by this plan as owned, so that memberships and
    /// licences see its id and its current members.
    pub(super) fn take_over(&mut self, ty: ObjectType, anchor: &Anchor, o: &'a TargetObject) {
        let map = match ty {
            ObjectType::User => &mut self.owned_users,
            _ => &mut self.owned_groups,
        };
        map.insert(anchor.clone(), o);
        self.id_to_anchor.insert(o.id.as_str(), anchor.clone());
    }
}

impl<'a> Planner<'a> {
    /// The old anchor of a re-anchored object, and the reason's prefix.
    pub(super) fn reanchored_from(&self, d: &DesiredObject) -> Option<(Anchor, String)> {
        let old = self.reanchored.get(&d.anchor)?;
        Some((
            old.clone(),
            format!(
                "re-anchor from `{old}` to `{}` (anchor: {})",
                d.anchor,
                self.policy.policy.anchor.as_str()
            ),
        ))
    }

    /// One warning for all re-anchored objects: their `onPremisesImmutableId` changes,
    /// which an identity provider's ImmutableID claim must follow.
    pub(super) fn summarize_reanchored(&mut self) {
        let n = self.reanchored.len();
        if n == 0 {
            return;
        }
        self.diags.push(
            Diagnostic::warning(
                REANCHORED,
                format!(
                    "{n} objects change their anchor to {} (an update of the anchor extension and onPremisesImmutableId each; none is deleted or created)",
                    self.policy.policy.anchor.as_str()
                ),
            )
            .hint("users of a federated domain sign in with the ImmutableID claim: change the identity provider's claim rule to the same attribute when this plan is applied (docs/sign-in.md)"),
        );
    }

    /// Plans the hard match of `d` with `t`: an `adopt`, or an error naming why not.
    pub(super) fn plan_hard_match(
        &mut self,
        d: &DesiredObject,
        t: &'a TargetObject,
        mut after: Map<String, Value>,
    ) {
        let ty = d.object_type;
        let (prop, value) = match ty {
            ObjectType::User => ("onPremisesImmutableId", d.anchor.0.clone()),
            _ => (
                "onPremisesSecurityIdentifier",
                t.str("onPremisesSecurityIdentifier")
                    .unwrap_or_default()
                    .to_string(),
            ),
        };
        let why_not = if t.is_dirsynced() {
            Some((
                "held-by-synced-object",
                "is still synced by Entra Connect or Cloud Sync (onPremisesSyncEnabled); Graph refuses every write to it".to_string(),
            ))
        } else {
            self.takeover_refused(t)
                .or_else(|| self.adoption_refused_roles_unknown())
        };
        if let Some((code, why)) = why_not {
            let kind = if ty == ObjectType::User {
                "user"
            } else {
                "group"
            };
            self.diags.push(
                Diagnostic::error(
                    code,
                    format!(
                        "hard match by {prop} `{value}`: Entra {kind} {} ({}) {why}",
                        t.label(),
                        t.id
                    ),
                )
                .object(d.dn().to_string())
                .hint(match code {
                    "held-by-synced-object" => "uninstall Entra Connect and turn off directory synchronization for the tenant (docs/migrate-from-entra-connect.md); the object is left as it is until it is cloud-managed",
                    super::ROLES_UNKNOWN => super::ROLES_UNKNOWN_HINT,
                    _ => "this AD object is left out; resolve it in AD or Entra",
                }),
            );
            return;
        }
        let keys = self.managed_keys(ty);
        let before = managed_subset(t, keys);
        for k in super::CREATE_ONLY {
            after.remove(*k);
        }
        let adopt = action(
            Operation::Adopt,
            super::object_ref(d, Some(&t.id)),
            Some(before),
            &after,
            format!(
                "hard match by {prop}: take over the {} Entra Connect synced",
                if ty == ObjectType::User {
                    "user"
                } else {
                    "group"
                }
            ),
        );
        self.push_adoption(d, t, adopt);
    }

    /// Plans an adoption of `t` for `d`, unless taking objects over is withheld; once
    /// planned, `t` counts as owned for the rest of the plan.
    pub(super) fn push_adoption(&mut self, d: &DesiredObject, t: &'a TargetObject, adopt: Action) {
        let ty = d.object_type;
        if let Some((code, why)) = self.takeover_withheld(ty) {
            self.block(adopt, code, why);
            return;
        }
        self.actions.push(adopt);
        self.will_exist.insert(d.anchor.clone());
        self.t.take_over(ty, &d.anchor, t);
    }

    /// Why an existing cloud object may not be taken over whatever matched it: protected,
    /// holding a directory role, or owned for another anchor.
    pub(super) fn takeover_refused(&self, t: &TargetObject) -> Option<(&'static str, String)> {
        if self.protected_target(t) {
            Some((
                "held-by-protected-object",
                "is protected by a protect pattern".to_string(),
            ))
        } else if self
            .t
            .role_members
            .as_ref()
            .is_ok_and(|r| r.contains(t.id.as_str()))
        {
            Some((
                "held-by-role-holder",
                "holds a directory role; role holders are never adopted".to_string(),
            ))
        } else if anchor_of(t, &self.t.ext).is_some() {
            Some((
                "held-by-other-anchor",
                "is owned by ad2entra for another AD object".to_string(),
            ))
        } else {
            None
        }
    }
}
