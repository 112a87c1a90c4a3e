//! The planner: desired state × Entra snapshot → ordered actions, blocked actions and
//! diagnostics. Ownership, protection, adoption, deletion modes and gates live here.
//!
//! Pure: `plan(policy, source, target, now)` is one call a unit test can make.

use super::refused::RefusedWrites;
use super::types::*;
use crate::desired::{DesiredObject, DesiredState, TenantFacts, desired_state, is_protected};
use crate::diagnostics::Diagnostic;
use crate::graph_rules::unique::lower;
use crate::model::target::{ExtensionNames, PropRef, Readable, SubscribedSku, Unreadable};
use crate::model::{Anchor, ObjectId, SourceSnapshot, TargetObject, TargetSnapshot};
use crate::policy::LoadedPolicy;
use crate::policy::model::{AdoptBy, DeletionMode};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod matching;
mod safety;

use safety::{ROLES_UNKNOWN, ROLES_UNKNOWN_HINT};

/// At most this many diagnostics are kept in a plan; the summary still counts all.
pub const DIAGNOSTIC_CAP: usize = 1000;

/// Why no plan could be made. Each of these aborts the cycle: nothing is written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("the AD read returned no objects at all; refusing to plan (source-failure guard)")]
    EmptySource,
    #[error(
        "the AD read of source {0} returned no objects at all; refusing to plan rather than treat \
         everything in it as out of scope (source-failure guard)"
    )]
    EmptySourcePart(String),
    #[error(
        "the policy names {0} but the AD read does not contain it (renamed, moved or deleted?); refusing to plan \
         rather than treat its objects as out of scope (source-failure guard)"
    )]
    ScopeDnMissing(String),
    #[error(
        "no user or group is in scope, but Entra holds {owned} objects owned by ad2entra; refusing to plan \
         a mass deprovisioning (source-failure guard). If this is intended, set deletion.mode: delete and \
         remove the objects deliberately."
    )]
    EmptyDesired { owned: usize },
    #[error(
        "the anchor extension {name} is not registered in the tenant: ownership cannot be \
         established and every owned object would look absent. Run `ad2entra init` as app {app_id} \
         (or pin the app that registered it: target.extensionAppId)"
    )]
    AnchorExtensionMissing { name: String, app_id: String },
    #[error(
        "cannot tell whether the anchor extension {name} is registered ({reason}): ownership \
         cannot be established; refusing to plan"
    )]
    AnchorExtensionUnreadable { name: String, reason: String },
    #[error("{0}")]
    OtherAnchorExtensions(String),
}

/// Properties sent on create and never compared afterwards.
const CREATE_ONLY: &[&str] = &["securityEnabled", "mailEnabled"];

/// Owned, unowned and lookup indexes over the target snapshot.
struct TargetIndex<'a> {
    ext: ExtensionNames,
    owned_users: BTreeMap<Anchor, &'a TargetObject>,
    owned_groups: BTreeMap<Anchor, &'a TargetObject>,
    deleted_users: BTreeMap<Anchor, &'a TargetObject>,
    /// By lower-case UPN and mail; borrowed when already lower case (the usual case).
    users_by_upn: HashMap<Cow<'a, str>, &'a TargetObject>,
    users_by_mail: HashMap<Cow<'a, str>, &'a TargetObject>,
    /// Owned objects' anchors by object id, in the form member lists hold ids.
    id_to_anchor: HashMap<ObjectId, Anchor>,
    /// Directory-role holders, or why they are unknown.
    role_members: Result<BTreeSet<&'a str>, &'a Unreadable>,
    /// Why soft-deleted users are unknown (no restore, no user create), if they are.
    deleted_unreadable: Option<&'a Unreadable>,
    /// Why the SKUs are unknown (no licence change), if they are.
    skus_unreadable: Option<&'a Unreadable>,
    /// Why other ad2entra anchors are unknown (no create, no adoption), if they are.
    others_unreadable: Option<&'a Unreadable>,
    sku_ids: HashMap<String, String>,
    sku_names: HashMap<String, String>,
    /// Free seats per part number, counted down as assignments are planned.
    seats_left: HashMap<String, i64>,
}

fn anchor_of(o: &TargetObject, ext: &ExtensionNames) -> Option<Anchor> {
    o.str(&ext.anchor)
        .filter(|s| !s.is_empty())
        .map(Anchor::from)
}

impl<'a> TargetIndex<'a> {
    fn new(t: &'a TargetSnapshot) -> Self {
        let ext = t.extension_names();
        let skus: &[SubscribedSku] = t.subscribed_skus.read().map_or(&[], Vec::as_slice);
        let mut idx = TargetIndex {
            owned_users: BTreeMap::new(),
            owned_groups: BTreeMap::new(),
            deleted_users: BTreeMap::new(),
            users_by_upn: HashMap::new(),
            users_by_mail: HashMap::new(),
            id_to_anchor: HashMap::new(),
            role_members: match &t.directory_role_members {
                Readable::Read(ids) => Ok(ids.iter().map(String::as_str).collect()),
                Readable::Unreadable(u) => Err(u),
            },
            deleted_unreadable: t.deleted_users.unreadable(),
            skus_unreadable: t.subscribed_skus.unreadable(),
            others_unreadable: t.other_anchors.unreadable(),
            sku_ids: skus
                .iter()
                .map(|s| (s.sku_part_number.to_ascii_uppercase(), s.sku_id.clone()))
                .collect(),
            sku_names: skus
                .iter()
                .map(|s| (s.sku_id.to_ascii_lowercase(), s.sku_part_number.clone()))
                .collect(),
            seats_left: skus
                .iter()
                .filter_map(|s| Some((s.sku_part_number.to_ascii_uppercase(), s.seats_left()?)))
                .collect(),
            ext,
        };
        for u in &t.users {
            if let Some(upn) = u.str("userPrincipalName") {
                idx.users_by_upn.insert(lower(upn), u);
            }
            if let Some(mail) = u.str("mail") {
                idx.users_by_mail.insert(lower(mail), u);
            }
            // Synced objects are never ours, whatever they carry.
            if u.is_dirsynced() {
                continue;
            }
            if let Some(a) = anchor_of(u, &idx.ext) {
                idx.id_to_anchor.insert(ObjectId::new(&u.id), a.clone());
                idx.owned_users.insert(a, u);
            }
        }
        for g in &t.groups {
            if g.is_dirsynced() {
                continue;
            }
            if let Some(a) = anchor_of(g, &idx.ext) {
                idx.id_to_anchor.insert(ObjectId::new(&g.id), a.clone());
                idx.owned_groups.insert(a, g);
            }
        }
        for u in t.deleted_users.read().into_iter().flatten() {
            if let Some(a) = anchor_of(u, &idx.ext) {
                idx.deleted_users.insert(a, u);
            }
        }
        idx
    }
}

/// The managed properties of a target object, unset ones left out.
fn managed_subset(o: &TargetObject, keys: &BTreeSet<String>) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| {
            o.props
                .get(k)
                .filter(|v| !v.is_unset())
                .map(|v| (k.clone(), v.to_value()))
        })
        .collect()
}

fn object_ref(d: &DesiredObject, id: Option<&str>) -> ObjectRef {
    ObjectRef {
        object_type: d.object_type,
        anchor: Some(d.anchor.clone()),
        dn: Some(d.dn().to_string()),
        name: d.name.clone(),
        id: id.map(str::to_string),
        source: None,
    }
}

fn target_ref(t: &TargetObject, ty: ObjectType, anchor: Option<Anchor>) -> ObjectRef {
    ObjectRef {
        object_type: ty,
        anchor,
        dn: None,
        name: t.label().to_string(),
        id: Some(t.id.clone()),
        source: None,
    }
}

fn action(
    op: Operation,
    object: ObjectRef,
    before: Option<Map<String, Value>>,
    after: &Map<String, Value>,
    reason: String,
) -> Action {
    let before_v = Value::Object(before.clone().unwrap_or_default());
    let after_v = Value::Object(after.clone());
    Action {
        op,
        object,
        before: before.map(Value::Object),
        patch: json_patch::diff(&before_v, &after_v),
        members: vec![],
        skus: vec![],
        reason,
    }
}

struct Planner<'a> {
    policy: &'a LoadedPolicy,
    t: TargetIndex<'a>,
    now: DateTime<Utc>,
    actions: Vec<Action>,
    blocked: Vec<BlockedAction>,
    diags: Vec<Diagnostic>,
    /// Anchors whose object will exist after apply (for membership and licences).
    will_exist: BTreeSet<Anchor>,
    user_keys: BTreeSet<String>,
    group_keys: BTreeSet<String>,
    /// Users whose licences were left alone because the SKUs could not be read.
    licences_withheld: usize,
    /// Re-anchored objects: new anchor → the old anchor the Entra object carries.
    reanchored: BTreeMap<Anchor, Anchor>,
    /// Hard-match candidates (`adopt: {by: immutableId}`) by anchor.
    hard: HashMap<Anchor, &'a TargetObject>,
}

impl Planner<'_> {
    fn block(&mut self, action: Action, code: &str, reason: String) {
        self.blocked.push(BlockedAction {
            action,
            code: code.to_string(),
            reason,
        });
    }

    fn protected_target(&self, t: &TargetObject) -> bool {
        let names: Vec<&str> = ["userPrincipalName", "mail", "displayName", "mailNickname"]
            .iter()
            .filter_map(|k| t.str(k))
            .collect();
        is_protected(self.policy, &names)
    }

    /// The properties ad2entra manages on an existing object of this type (every
    /// mapped property, the anchor marker, and the immutable id for users).
    fn managed_keys(&self, ty: ObjectType) -> &BTreeSet<String> {
        if ty == ObjectType::User {
            &self.user_keys
        } else {
            &self.group_keys
        }
    }

    fn desired_props(&self, d: &DesiredObject) -> Map<String, Value> {
        let mut after: Map<String, Value> = d
            .props
            .iter()
            .filter(|(_, v)| !v.is_unset())
            .map(|(k, v)| (k.to_string(), v.to_value()))
            .collect();
        after.insert(
            self.t.ext.anchor.clone(),
            Value::String(d.anchor.0.to_string()),
        );
        after
    }

    /// Whether the owned object `t` already holds what AD wants: the comparison
    /// `plan_object` makes between `managed_subset` (with the orphan mark) and
    /// `desired_props` (without the create-only properties), on borrowed values. In a
    /// converged tenant nearly every object ends here, and building both maps copied
    /// every value of 100,000 users twice.
    fn unchanged(&self, t: &TargetObject, d: &DesiredObject) -> bool {
        let set = |k: &str| t.props.get(k).filter(|v| !v.is_unset());
        let after: Vec<(&str, PropRef<'_>)> = d
            .props
            .iter()
            .filter(|(k, v)| !v.is_unset() && !CREATE_ONLY.contains(k))
            .chain([(self.t.ext.anchor.as_str(), PropRef::Str(d.anchor.as_str()))])
            .collect();
        let keys = self.managed_keys(d.object_type);
        let orphan = &self.t.ext.orphaned_at;
        let mut before = keys
            .iter()
            .filter_map(|k| set(k).map(|v| (k.as_str(), v)))
            .chain(
                set(orphan)
                    .filter(|_| !keys.contains(orphan))
                    .map(|v| (orphan.as_str(), v)),
            );
        let mut n = 0;
        before.all(|(k, v)| {
            n += 1;
            after.iter().any(|(a, w)| *a == k && *w == v)
        }) && n == after.len()
    }

    fn plan_object(&mut self, d: &DesiredObject) {
        let ty = d.object_type;
        let owned = if ty == ObjectType::User {
            self.t.owned_users.get(&d.anchor).copied()
        } else {
            self.t.owned_groups.get(&d.anchor).copied()
        };
        if owned.is_some_and(|t| self.unchanged(t, d)) {
            self.will_exist.insert(d.anchor.clone());
            return;
        }
        let keys = self.managed_keys(ty);
        let mut after = self.desired_props(d);
        if let Some(t) = owned {
            // Set at creation only: a security group stays one.
            for k in CREATE_ONLY {
                after.remove(*k);
            }
            let mut before = managed_subset(t, keys);
            // Coming back into scope clears the orphan mark.
            if let Some(mark) = t
                .props
                .get(&self.t.ext.orphaned_at)
                .filter(|v| !v.is_unset())
            {
                before.insert(self.t.ext.orphaned_at.clone(), mark.to_value());
            }
            // `unchanged` said they differ; list what differs for the reason.
            self.will_exist.insert(d.anchor.clone());
            let mut changed: Vec<&str> = before
                .keys()
                .chain(after.keys())
                .filter(|k| before.get(*k) != after.get(*k))
                .map(String::as_str)
                .collect();
            changed.sort_unstable();
            changed.dedup();
            let mut a = action(
                Operation::Update,
                object_ref(d, Some(&t.id)),
                Some(before.clone()),
                &after,
                format!("AD differs in {}", changed.join(", ")),
            );
            if let Some((old, why)) = self.reanchored_from(d) {
                // Found, and checked at apply, by the anchor it carries now.
                a.object.anchor = Some(old);
                a.reason = format!("{why}; {}", a.reason);
            }
            if self.protected_target(t) {
                self.block(
                    a,
                    "protected",
                    format!("{} matches a protect pattern", t.label()),
                );
                return;
            }
            self.actions.push(a);
            return;
        }
        if ty == ObjectType::User
            && let Some(t) = self.t.deleted_users.get(&d.anchor).copied()
        {
            let before = managed_subset(t, keys);
            let mut a = action(
                Operation::Restore,
                object_ref(d, Some(&t.id)),
                Some(before),
                &after,
                "back in scope: restore the soft-deleted user".into(),
            );
            if let Some((old, why)) = self.reanchored_from(d) {
                a.object.anchor = Some(old);
                a.reason = format!("{why}; {}", a.reason);
            }
            self.actions.push(a);
            self.will_exist.insert(d.anchor.clone());
            return;
        }
        if let Some(t) = self.hard.get(&d.anchor).copied() {
            self.plan_hard_match(d, t, after);
            return;
        }
        if ty == ObjectType::User {
            let upn = d
                .props
                .str("userPrincipalName")
                .unwrap_or_default()
                .to_lowercase();
            let mail = d.props.str("mail").map(str::to_lowercase);
            let by_upn = self.t.users_by_upn.get(upn.as_str()).copied();
            let by_mail = mail
                .as_ref()
                .and_then(|m| self.t.users_by_mail.get(m.as_str()).copied());
            let adopt_by = self.policy.policy.adopt.as_ref().map(|a| a.by);
            let candidate = match adopt_by {
                Some(AdoptBy::Mail) => by_mail.or(by_upn),
                _ => by_upn,
            };
            if let Some(t) = candidate {
                let matched_by_policy = match adopt_by {
                    Some(AdoptBy::UserPrincipalName) => by_upn.is_some_and(|u| u.id == t.id),
                    Some(AdoptBy::Mail) => by_mail.is_some_and(|u| u.id == t.id),
                    Some(AdoptBy::ImmutableId) | None => false,
                };
                let why_not = if t.is_dirsynced() {
                    Some((
                        "held-by-synced-object",
                        "is synced by Entra Connect/Cloud Sync (onPremisesSyncEnabled) and cannot be managed through Graph".to_string(),
                    ))
                } else if let Some(refused) = self.takeover_refused(t) {
                    Some(refused)
                } else if !matched_by_policy {
                    Some((
                        "upn-held-by-unowned-object",
                        if adopt_by == Some(AdoptBy::ImmutableId) {
                            "exists in Entra and is not owned by ad2entra; its onPremisesImmutableId is not this object's anchor, so it is no hard match"
                        } else {
                            "exists in Entra and is not owned by ad2entra (adoption is off)"
                        }
                        .to_string(),
                    ))
                } else {
                    self.adoption_refused_roles_unknown()
                };
                if let Some((code, why)) = why_not {
                    self.diags.push(
                        Diagnostic::error(code, format!("wanted {} `{}`, but Entra user {} ({}) {why}", if by_upn.is_some_and(|u| u.id == t.id) { "userPrincipalName" } else { "mail" }, if by_upn.is_some_and(|u| u.id == t.id) { upn.clone() } else { mail.clone().unwrap_or_default() }, t.label(), t.id))
                            .object(d.dn().to_string())
                            .hint(match code {
                                "upn-held-by-unowned-object" if adopt_by == Some(AdoptBy::ImmutableId) => "`ad2entra migrate-check` lists the immutable ids that are not this policy's anchors (is `anchor: mS-DS-ConsistencyGuid` what Entra Connect used?); or change the UPN in AD",
                                "upn-held-by-unowned-object" => "set `adopt: {by: userPrincipalName}` to take it over, or change the UPN in AD",
                                ROLES_UNKNOWN => ROLES_UNKNOWN_HINT,
                                _ => "this AD object is left out; resolve the clash in AD or Entra",
                            }),
                    );
                    return;
                }
                let before = managed_subset(t, keys);
                let adopt = action(
                    Operation::Adopt,
                    object_ref(d, Some(&t.id)),
                    Some(before),
                    &after,
                    format!(
                        "soft match by {}: take over the existing cloud user",
                        if adopt_by == Some(AdoptBy::Mail) {
                            "mail"
                        } else {
                            "userPrincipalName"
                        }
                    ),
                );
                self.push_adoption(d, t, adopt);
                return;
            }
        }
        let create = action(
            Operation::Create,
            object_ref(d, None),
            None,
            &after,
            "in scope in AD, absent in Entra".into(),
        );
        if let Some((code, why)) = self.takeover_withheld(ty) {
            self.block(create, code, why);
            return;
        }
        self.actions.push(create);
        self.will_exist.insert(d.anchor.clone());
    }

    fn member_ref(&self, a: &Anchor, desired: &DesiredState) -> Option<MemberRef> {
        if let Some(u) = desired.users.get(a) {
            let id = self
                .t
                .owned_users
                .get(a)
                .map(|t| t.id.clone())
                .or_else(|| self.t.deleted_users.get(a).map(|t| t.id.clone()));
            return Some(MemberRef {
                object_type: ObjectType::User,
                anchor: Some(a.clone()),
                id,
                name: u.name.clone(),
            });
        }
        let g = desired.groups.get(a)?;
        Some(MemberRef {
            object_type: ObjectType::Group,
            anchor: Some(a.clone()),
            id: self.t.owned_groups.get(a).map(|t| t.id.clone()),
            name: g.name.clone(),
        })
    }

    fn plan_members(&mut self, g: &DesiredObject, desired: &DesiredState) {
        if !self.will_exist.contains(&g.anchor) {
            return;
        }
        let target = self.t.owned_groups.get(&g.anchor).copied();
        let current: BTreeMap<Anchor, &ObjectId> = target
            .map(|t| {
                t.members
                    .iter()
                    .filter_map(|id| self.t.id_to_anchor.get(id).map(|a| (a.clone(), id)))
                    .collect()
            })
            .unwrap_or_default();
        let add: Vec<MemberRef> = g
            .members
            .iter()
            .filter(|a| !current.contains_key(*a) && self.will_exist.contains(*a))
            .filter_map(|a| self.member_ref(a, desired))
            .collect();
        // Only members we own are removed; members added in the cloud by hand stay, and
        // so do members left out for an error (their membership is kept as it is).
        let remove: Vec<MemberRef> = current
            .iter()
            .filter(|(a, _)| !g.members.contains(*a) && !desired.errored.contains(*a))
            .map(|(a, id)| {
                let (ty, name) = match (self.t.owned_users.get(a), self.t.owned_groups.get(a)) {
                    (Some(u), _) => (ObjectType::User, u.label().to_string()),
                    (_, Some(gr)) => (ObjectType::Group, gr.label().to_string()),
                    _ => (ObjectType::User, id.to_string()),
                };
                MemberRef {
                    object_type: ty,
                    anchor: Some(a.clone()),
                    id: Some(id.to_string()),
                    name,
                }
            })
            .collect();
        let protected = target.is_some_and(|t| self.protected_target(t));
        for (op, members, why) in [
            (Operation::AddMembers, add, "members in AD and in scope"),
            (
                Operation::RemoveMembers,
                remove,
                "no longer members in AD (or out of scope)",
            ),
        ] {
            if members.is_empty() {
                continue;
            }
            let a = Action {
                op,
                object: object_ref(g, target.map(|t| t.id.as_str())),
                before: None,
                patch: json_patch::Patch(vec![]),
                reason: format!("{} {why}", members.len()),
                members,
                skus: vec![],
            };
            if protected {
                self.block(
                    a,
                    "protected",
                    format!("{} matches a protect pattern", g.name),
                );
            } else {
                self.actions.push(a);
            }
        }
    }

    fn plan_licenses(&mut self, u: &DesiredObject) {
        if self.policy.licenses.is_empty() || !self.will_exist.contains(&u.anchor) {
            return;
        }
        if self.t.skus_unreadable.is_some() {
            self.licences_withheld += 1;
            return;
        }
        let governed: BTreeSet<String> = self
            .policy
            .licenses
            .iter()
            .map(|l| l.sku.to_ascii_uppercase())
            .collect();
        let current: BTreeSet<String> = self
            .t
            .owned_users
            .get(&u.anchor)
            .and_then(|t| t.props.value("assignedLicenses"))
            .as_ref()
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.get("skuId").and_then(Value::as_str))
                    .map(|id| {
                        self.t
                            .sku_names
                            .get(&id.to_ascii_lowercase())
                            .cloned()
                            .unwrap_or_else(|| id.to_string())
                            .to_ascii_uppercase()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wanted: BTreeSet<String> = u.skus.iter().map(|s| s.to_ascii_uppercase()).collect();
        let sku = |p: &String| SkuRef {
            sku_part_number: p.clone(),
            sku_id: self.t.sku_ids.get(p).cloned(),
        };
        let assign: Vec<SkuRef> = wanted.difference(&current).map(sku).collect();
        let remove: Vec<SkuRef> = current
            .intersection(&governed)
            .filter(|s| !wanted.contains(*s))
            .map(sku)
            .collect();
        if !assign.is_empty() && !u.props.contains_key("usageLocation") {
            self.diags.push(
                Diagnostic::error(
                    "usage-location-required",
                    "a licence is due but usageLocation is not set; Graph refuses the assignment",
                )
                .object(u.dn().to_string())
                .attribute("usageLocation")
                .hint("set `c` in AD or map usageLocation in the policy"),
            );
            return;
        }
        if let Some(missing) = assign.iter().find(|s| s.sku_id.is_none()) {
            self.diags.push(
                Diagnostic::error(
                    "unknown-sku",
                    format!("the tenant has no subscription {}", missing.sku_part_number),
                )
                .object(u.dn().to_string())
                .hint("check the part numbers in GET /subscribedSkus"),
            );
            return;
        }
        let id = self.t.owned_users.get(&u.anchor).map(|t| t.id.as_str());
        // Seats: an assignment beyond what the tenant bought would fail at apply; it is
        // blocked here with the numbers instead.
        let (assign, no_seat): (Vec<SkuRef>, Vec<SkuRef>) =
            assign
                .into_iter()
                .partition(|s| match self.t.seats_left.get_mut(&s.sku_part_number) {
                    Some(left) if *left <= 0 => false,
                    Some(left) => {
                        *left -= 1;
                        true
                    }
                    None => true,
                });
        if !no_seat.is_empty() {
            let names: Vec<&str> = no_seat.iter().map(|s| s.sku_part_number.as_str()).collect();
            let reason = format!("no free seat left in {}", names.join(", "));
            self.blocked.push(BlockedAction {
                action: Action {
                    op: Operation::AssignLicense,
                    object: object_ref(u, id),
                    before: None,
                    patch: json_patch::Patch(vec![]),
                    members: vec![],
                    reason: "licence rule matches".into(),
                    skus: no_seat,
                },
                code: "license-seats-exhausted".into(),
                reason,
            });
        }
        for (op, skus, why) in [
            (Operation::AssignLicense, assign, "licence rule matches"),
            (
                Operation::RemoveLicense,
                remove,
                "no licence rule matches any more",
            ),
        ] {
            if skus.is_empty() {
                continue;
            }
            self.actions.push(Action {
                op,
                object: object_ref(u, id),
                before: None,
                patch: json_patch::Patch(vec![]),
                members: vec![],
                reason: why.to_string(),
                skus,
            });
        }
    }

    fn plan_deprovision(&mut self, desired: &DesiredState) {
        let mode = self.policy.policy.deletion.mode;
        let grace = chrono::Duration::days(i64::from(self.policy.policy.deletion.grace_days));
        let now_s = self.now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut candidates: Vec<(ObjectType, Anchor, &TargetObject)> = Vec::new();
        for (a, t) in &self.t.owned_users {
            if !desired.users.contains_key(a) && !desired.errored.contains(a) {
                candidates.push((ObjectType::User, a.clone(), *t));
            }
        }
        for (a, t) in &self.t.owned_groups {
            if !desired.groups.contains_key(a) && !desired.errored.contains(a) {
                candidates.push((ObjectType::Group, a.clone(), *t));
            }
        }
        for (ty, anchor, t) in candidates {
            let oref = target_ref(t, ty, Some(anchor));
            let enabled = t.props.get("accountEnabled").and_then(PropRef::as_bool) != Some(false);
            let orphaned_at = t
                .str(&self.t.ext.orphaned_at)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.with_timezone(&Utc));
            let delete = || Action {
                op: Operation::Delete,
                object: oref.clone(),
                before: None,
                patch: json_patch::Patch(vec![]),
                members: vec![],
                skus: vec![],
                reason: String::new(),
            };
            let planned: Option<Action> = match (mode, ty) {
                (DeletionMode::Ignore, _) => None,
                (DeletionMode::Delete, _) => Some(Action {
                    reason: "left scope in AD (deletion.mode: delete)".into(),
                    ..delete()
                }),
                (DeletionMode::Disable, ObjectType::User) if enabled => {
                    let before: Map<String, Value> =
                        [("accountEnabled".to_string(), Value::Bool(true))]
                            .into_iter()
                            .collect();
                    let after: Map<String, Value> =
                        [("accountEnabled".to_string(), Value::Bool(false))]
                            .into_iter()
                            .collect();
                    Some(action(
                        Operation::Disable,
                        oref.clone(),
                        Some(before),
                        &after,
                        "left scope in AD (deletion.mode: disable)".into(),
                    ))
                }
                (DeletionMode::Disable, _) => None,
                (DeletionMode::DisableThenDelete, _) => match orphaned_at {
                    Some(at) if self.now >= at + grace => Some(Action {
                        reason: format!(
                            "left scope on {}; grace of {} days is over",
                            at.to_rfc3339_opts(SecondsFormat::Secs, true),
                            grace.num_days()
                        ),
                        ..delete()
                    }),
                    Some(_) => None,
                    None => {
                        let mut before = Map::new();
                        let mut after = Map::new();
                        if ty == ObjectType::User {
                            before.insert("accountEnabled".into(), Value::Bool(enabled));
                            after.insert("accountEnabled".into(), Value::Bool(false));
                        }
                        after.insert(self.t.ext.orphaned_at.clone(), Value::String(now_s.clone()));
                        Some(action(
                            Operation::Disable,
                            oref.clone(),
                            Some(before),
                            &after,
                            format!(
                                "left scope in AD: {} now, delete after {} days",
                                if ty == ObjectType::User {
                                    "disable"
                                } else {
                                    "mark"
                                },
                                grace.num_days()
                            ),
                        ))
                    }
                },
            };
            let Some(a) = planned else { continue };
            if self.protected_target(t) {
                self.block(
                    a,
                    "protected",
                    format!("{} matches a protect pattern", t.label()),
                );
            } else {
                self.actions.push(a);
            }
        }
    }

    fn gate_deprovisioning(&mut self, owned: usize) {
        let d = &self.policy.policy.deletion;
        let n = self
            .actions
            .iter()
            .filter(|a| a.op.is_deprovision())
            .count();
        if n == 0 {
            return;
        }
        let pct = if owned == 0 {
            100.0
        } else {
            n as f64 * 100.0 / owned as f64
        };
        let verdict = if n as u64 > u64::from(d.max_deletes) {
            Some((
                "delete-gate-count",
                format!(
                    "{n} disables/deletes exceed deletion.maxDeletes = {}",
                    d.max_deletes
                ),
            ))
        } else if pct > d.max_delete_percent {
            Some((
                "delete-gate-percent",
                format!(
                    "{n} disables/deletes are {pct:.1}% of {owned} owned objects, over deletion.maxDeletePercent = {}%",
                    d.max_delete_percent
                ),
            ))
        } else {
            None
        };
        if let Some((code, reason)) = verdict {
            let (gated, kept): (Vec<Action>, Vec<Action>) = std::mem::take(&mut self.actions)
                .into_iter()
                .partition(|a| a.op.is_deprovision());
            self.actions = kept;
            self.diags
                .push(Diagnostic::error(code, reason.clone()).hint(
                "check the AD read and the scope change; if intended, raise the gate for one run",
            ));
            for a in gated {
                self.block(a, code, reason.clone());
            }
        }
    }
}

/// Every OU and group the policy names must be in the read: a vanished include OU would
/// otherwise look like "everything under it left scope", a vanished exclude OU like
/// "everything under it entered scope".
fn check_named_dns(policy: &LoadedPolicy, source: &SourceSnapshot) -> Result<(), PlanError> {
    let present: std::collections::HashSet<&str> =
        source.objects.iter().map(|o| o.dn.key()).collect();
    for (_, dn) in policy.named_dns() {
        if !present.contains(dn.key()) {
            return Err(PlanError::ScopeDnMissing(dn.to_string()));
        }
    }
    Ok(())
}

/// sha256 over the source objects in DN order.
pub fn source_fingerprint(s: &SourceSnapshot) -> String {
    let mut order: Vec<usize> = (0..s.objects.len()).collect();
    order.sort_by(|a, b| s.objects[*a].dn.key().cmp(s.objects[*b].dn.key()));
    let mut h = Sha256::new();
    for i in order {
        let o = &s.objects[i];
        h.update(o.dn.key().as_bytes());
        h.update(o.guid.0);
        for (k, vs) in o.attrs.iter() {
            h.update(k.as_bytes());
            for v in vs {
                h.update((v.len() as u64).to_le_bytes());
                h.update(v);
            }
        }
    }
    format!("sha256:{:x}", h.finalize())
}

/// sha256 over the target snapshot's JSON, hashed as it is written: the JSON of
/// 100,000 users is ~100 MB that need never be held.
pub fn target_fingerprint(t: &TargetSnapshot) -> String {
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = std::io::BufWriter::new(HashWriter(Sha256::new()));
    let h = match serde_json::to_writer(&mut w, t)
        .map_err(std::io::Error::from)
        .and_then(|()| w.into_inner().map_err(|e| e.into_error()))
    {
        Ok(HashWriter(h)) => h,
        // As before: a snapshot that cannot be serialized hashes as nothing.
        Err(_) => Sha256::new(),
    };
    format!("sha256:{:x}", h.finalize())
}

/// Tenant facts the desired state needs, from the snapshot.
pub fn tenant_facts(target: &TargetSnapshot) -> TenantFacts {
    TenantFacts {
        verified_domains: target.domains.as_ref().map(|ds| {
            ds.iter()
                .filter(|d| d.is_verified)
                .map(|d| d.id.to_ascii_lowercase())
                .collect()
        }),
    }
}

/// Computes the plan. The one entry point of the pure core.
pub fn plan(
    policy: &LoadedPolicy,
    source: &SourceSnapshot,
    target: &TargetSnapshot,
    now: DateTime<Utc>,
) -> Result<Plan, PlanError> {
    plan_with(policy, source, target, now, &RefusedWrites::default())
}

/// [`plan`], holding back the writes Graph refused before and unchanged since
/// (`refused`, remembered from earlier applies).
pub fn plan_with(
    policy: &LoadedPolicy,
    source: &SourceSnapshot,
    target: &TargetSnapshot,
    now: DateTime<Utc>,
    refused: &RefusedWrites,
) -> Result<Plan, PlanError> {
    if source.objects.is_empty() {
        return Err(PlanError::EmptySource);
    }
    if let Some(name) = crate::sources::empty_parts(source).first() {
        return Err(PlanError::EmptySourcePart(name.to_string()));
    }
    check_named_dns(policy, source)?;
    let ownership_warnings = safety::ownership_gate(target)?;
    let mut desired = desired_state(policy, source, &tenant_facts(target));
    let mut t = TargetIndex::new(target);
    let owned = t.owned_users.len() + t.owned_groups.len();
    if desired.users.is_empty() && desired.groups.is_empty() && owned > 0 {
        return Err(PlanError::EmptyDesired { owned });
    }
    let pairing = matching::pair(policy, &mut desired, &mut t, target);
    let adopt_by_mail = policy.policy.adopt.as_ref().map(|a| a.by) == Some(AdoptBy::Mail);
    crate::graph_rules::unique::check_paired(&mut desired, target, adopt_by_mail, &pairing.by_id);
    let keys = |rules: &[crate::policy::MappingRule], extra: &[&str]| -> BTreeSet<String> {
        rules
            .iter()
            .map(|r| r.property.clone())
            .chain(extra.iter().map(|s| s.to_string()))
            .chain([t.ext.anchor.clone()])
            .collect()
    };
    let user_keys = keys(&policy.user_mappings, &["onPremisesImmutableId"]);
    let group_keys = keys(&policy.group_mappings, &[]);
    let mut p = Planner {
        policy,
        user_keys,
        group_keys,
        t,
        now,
        actions: Vec::new(),
        blocked: Vec::new(),
        diags: Vec::new(),
        will_exist: BTreeSet::new(),
        licences_withheld: 0,
        reanchored: pairing.reanchored,
        hard: pairing.hard,
    };
    p.diags.extend(ownership_warnings);
    for g in desired.groups.values() {
        p.plan_object(g);
    }
    for u in desired.users.values() {
        p.plan_object(u);
    }
    for g in desired.groups.values() {
        p.plan_members(g, &desired);
    }
    for u in desired.users.values() {
        p.plan_licenses(u);
    }
    let mut exhausted: BTreeMap<&str, usize> = BTreeMap::new();
    for b in p
        .blocked
        .iter()
        .filter(|b| b.code == "license-seats-exhausted")
    {
        for s in &b.action.skus {
            *exhausted.entry(s.sku_part_number.as_str()).or_default() += 1;
        }
    }
    let seat_diags: Vec<Diagnostic> = exhausted
        .into_iter()
        .map(|(sku, n)| {
            Diagnostic::error(
                "license-seats-exhausted",
                format!("{n} assignments of {sku} are blocked: the tenant has no free seat left"),
            )
            .hint("buy seats, or narrow the licence rule's group")
        })
        .collect();
    p.diags.extend(seat_diags);
    p.summarize_withheld();
    p.summarize_reanchored();
    p.plan_deprovision(&desired);
    p.gate_deprovisioning(owned);
    let federation = super::federation::plan_federation(policy, target, &p.actions, now);
    p.actions.extend(federation.actions);
    p.diags.extend(federation.diagnostics);

    let mut actions = p.actions;
    actions.sort_by(|a, b| {
        a.op.rank()
            .cmp(&b.op.rank())
            .then(b.object.object_type.cmp(&a.object.object_type))
            .then(a.object.name.cmp(&b.object.name))
    });
    crate::sources::label(
        actions
            .iter_mut()
            .chain(p.blocked.iter_mut().map(|b| &mut b.action)),
        &desired,
        source,
    );
    let withheld = refused.withhold(actions, &policy.content_hash, now);
    let actions = withheld.actions;
    p.blocked.extend(withheld.blocked);
    let mut diagnostics: Vec<Diagnostic> = policy.warnings.clone();
    diagnostics.extend(desired.diagnostics);
    diagnostics.extend(p.diags);
    diagnostics.extend(withheld.diagnostics);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if diagnostics.len() > DIAGNOSTIC_CAP {
        let total = diagnostics.len();
        diagnostics.truncate(DIAGNOSTIC_CAP);
        diagnostics.push(Diagnostic::warning(
            "too-many-diagnostics",
            format!("{total} diagnostics; the first {DIAGNOSTIC_CAP} are shown"),
        ));
    }
    let mut summary = Summary {
        blocked: p.blocked.len(),
        errors,
        warnings,
        owned,
        in_scope_users: desired.users.len(),
        in_scope_groups: desired.groups.len(),
        sign_in_changes: federation.sign_in_changes,
        ..Summary::default()
    };
    for a in &actions {
        let c = match a.op {
            Operation::Create => &mut summary.create,
            Operation::Restore => &mut summary.restore,
            Operation::Adopt => &mut summary.adopt,
            Operation::Update => &mut summary.update,
            Operation::AddMembers => &mut summary.add_members,
            Operation::RemoveMembers => &mut summary.remove_members,
            Operation::AssignLicense => &mut summary.assign_license,
            Operation::RemoveLicense => &mut summary.remove_license,
            Operation::Disable => &mut summary.disable,
            Operation::Delete => &mut summary.delete,
        };
        *c += 1;
    }
    Ok(Plan {
        format_version: FORMAT_VERSION,
        generator: format!("ad2entra {}", env!("CARGO_PKG_VERSION")),
        policy: PolicyProvenance {
            path: policy.path.clone(),
            content_hash: policy.content_hash.clone(),
            commit: policy.commit.clone(),
        },
        source: SourceProvenance {
            server: source.server.clone(),
            base_dn: source.base_dn.as_ref().map(|d| d.to_string()),
            highest_usn: source.highest_usn,
            objects: source.objects.len(),
            fingerprint: source_fingerprint(source),
            sources: crate::sources::provenance(source),
        },
        target: TargetProvenance {
            tenant: target.tenant.clone(),
            users: target.users.len(),
            groups: target.groups.len(),
            fingerprint: target_fingerprint(target),
        },
        now: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        summary,
        actions,
        blocked: p.blocked,
        diagnostics,
    })
}
