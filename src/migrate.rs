//! `ad2entra migrate-check`: what a cut-over from Entra Connect would do, without doing
//! anything. Pure: the policy, an AD read, an Entra read and the tenant's directory
//! synchronization state in, a [`MigrationReport`] out.
//!
//! It answers the questions of `docs/migrate-from-entra-connect.md` before the first step:
//! which objects Entra Connect still syncs, which AD objects would be hard-matched (users by
//! `onPremisesImmutableId` = the policy's anchor, groups by `onPremisesSecurityIdentifier` =
//! objectSid), which synced objects have no AD object in the policy's scope, which immutable
//! ids are not objectGUIDs (an `mS-DS-ConsistencyGuid` that differs, or a custom anchor),
//! whose userPrincipalName would change, and what would be created.

use crate::desired::{DesiredObject, desired_state};
use crate::model::anchor::{consistency_anchor, object_sid};
use crate::model::{Anchor, ObjectKind, SourceObject, SourceSnapshot, TargetObject};
use crate::model::{TargetSnapshot, anchor::AnchorAttribute};
use crate::plan::ObjectType;
use crate::plan::compute::tenant_facts;
use crate::policy::LoadedPolicy;
use crate::policy::model::AdoptBy;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// How many examples each finding lists by default.
pub const DEFAULT_EXAMPLES: usize = 5;

/// The tenant's directory synchronization (`organization.onPremisesSyncEnabled`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum TenantSync {
    /// Entra Connect (or Cloud Sync) may still write; objects stay read-only through Graph.
    #[serde(rename_all = "camelCase")]
    On { last_sync: Option<String> },
    /// Turned off: synced objects become cloud-managed (within up to 72 hours).
    #[serde(rename_all = "camelCase")]
    Off { last_sync: Option<String> },
    /// The tenant never synced from an on-premises directory.
    NeverSynced,
    /// Not read (a snapshot file), or refused: why.
    Unknown { reason: String },
}

/// One object a finding names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Example {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    /// The Entra object: UPN or display name, and id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entra: Option<String>,
    /// The AD object's DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<String>,
    pub detail: String,
}

/// A count of users and groups, and the first examples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub users: usize,
    pub groups: usize,
    pub examples: Vec<Example>,
}

impl Finding {
    fn add(&mut self, max: usize, e: Example) {
        match e.object_type {
            ObjectType::User => self.users += 1,
            _ => self.groups += 1,
        }
        if self.examples.len() < max {
            self.examples.push(e);
        }
    }

    pub fn total(&self) -> usize {
        self.users + self.groups
    }
}

/// What a cut-over would do.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationReport {
    /// The policy's `anchor:`.
    pub anchor: &'static str,
    /// Whether the policy adopts by hard match (`adopt: {by: immutableId}`).
    pub adopt_by_immutable_id: bool,
    pub tenant_sync: TenantSync,
    /// AD objects in the policy's scope (without per-object errors).
    pub in_scope_users: usize,
    pub in_scope_groups: usize,
    /// Entra objects synced now (`onPremisesSyncEnabled: true`): read-only until
    /// synchronization is off and they are converted.
    pub still_synced: Finding,
    /// In-scope AD objects whose Entra object the hard match finds.
    pub hard_matched: Finding,
    /// Objects from on-premises (an immutable id or SID, or synced) that no in-scope AD
    /// object hard-matches: after the cut-over they stay, not owned by ad2entra.
    pub no_ad_counterpart: Finding,
    /// Immutable ids that are not the objectGUID of an AD object: an
    /// `mS-DS-ConsistencyGuid` that differs from it, or a custom anchor.
    pub immutable_id_not_object_guid: Finding,
    /// Hard-matched users whose userPrincipalName the policy would change.
    pub upn_changes: Finding,
    /// In-scope AD objects with no hard match: the plan would create them (or, when an
    /// unowned user holds the UPN, leave them out with an error).
    pub to_create: Finding,
    /// Objects ad2entra owns already (they carry its anchor extension).
    pub already_owned: usize,
    /// What to do next, in order.
    pub advice: Vec<String>,
}

fn entra_label(o: &TargetObject) -> String {
    format!("{} ({})", o.label(), o.id)
}

/// An example naming an Entra object only.
fn entra_example(ty: ObjectType, o: &TargetObject, detail: String) -> Example {
    Example {
        object_type: ty,
        entra: Some(entra_label(o)),
        ad: None,
        detail,
    }
}

/// AD objects by their objectGUID anchor, their mS-DS-ConsistencyGuid anchor and their SID.
struct AdIndex<'s> {
    by_guid: HashMap<Anchor, &'s SourceObject>,
    by_consistency: HashMap<Anchor, &'s SourceObject>,
    by_sid: HashMap<String, &'s SourceObject>,
}

impl<'s> AdIndex<'s> {
    fn new(source: &'s SourceSnapshot) -> Self {
        let mut ix = AdIndex {
            by_guid: HashMap::new(),
            by_consistency: HashMap::new(),
            by_sid: HashMap::new(),
        };
        for o in source
            .objects
            .iter()
            .filter(|o| matches!(o.kind, ObjectKind::User | ObjectKind::Group))
        {
            ix.by_guid.insert(o.guid.anchor(), o);
            if let Some(c) = consistency_anchor(o) {
                ix.by_consistency.insert(c, o);
            }
            if let Some(s) = object_sid(o) {
                ix.by_sid.insert(s, o);
            }
        }
        ix
    }
}

/// Whether an immutable id is base64 of 16 bytes, as a GUID anchor is.
fn is_guid_anchor(v: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .is_ok_and(|b| b.len() == 16)
}

/// Computes the report. `examples` bounds the examples per finding.
pub fn migrate_check(
    policy: &LoadedPolicy,
    source: &SourceSnapshot,
    target: &TargetSnapshot,
    tenant_sync: TenantSync,
    examples: usize,
) -> MigrationReport {
    let desired = desired_state(policy, source, &tenant_facts(target));
    let ext = target.extension_names();
    let owned =
        |o: &TargetObject| !o.is_dirsynced() && o.str(&ext.anchor).is_some_and(|a| !a.is_empty());
    let ad = AdIndex::new(source);
    let mut r = MigrationReport {
        anchor: policy.policy.anchor.as_str(),
        adopt_by_immutable_id: policy.policy.adopt.as_ref().map(|a| a.by)
            == Some(AdoptBy::ImmutableId),
        tenant_sync,
        in_scope_users: desired.users.len(),
        in_scope_groups: desired.groups.len(),
        still_synced: Finding::default(),
        hard_matched: Finding::default(),
        no_ad_counterpart: Finding::default(),
        immutable_id_not_object_guid: Finding::default(),
        upn_changes: Finding::default(),
        to_create: Finding::default(),
        already_owned: 0,
        advice: Vec::new(),
    };
    let objects = target
        .users
        .iter()
        .map(|o| (ObjectType::User, o))
        .chain(target.groups.iter().map(|o| (ObjectType::Group, o)));
    for (ty, o) in objects.clone() {
        if o.is_dirsynced() {
            let detail = match (ty, o.str("onPremisesImmutableId")) {
                (ObjectType::User, Some(id)) => format!("onPremisesImmutableId {id}"),
                _ => o
                    .str("onPremisesSecurityIdentifier")
                    .map(|s| format!("onPremisesSecurityIdentifier {s}"))
                    .unwrap_or_else(|| "synced".into()),
            };
            r.still_synced.add(examples, entra_example(ty, o, detail));
        }
        if owned(o) {
            r.already_owned += 1;
        }
    }
    // The hard match, as `adopt: {by: immutableId}` makes it.
    fn key(o: &TargetObject, ty: ObjectType) -> Option<&str> {
        match ty {
            ObjectType::User => o.str("onPremisesImmutableId"),
            _ => o.str("onPremisesSecurityIdentifier"),
        }
    }
    let mut by_key: HashMap<(ObjectType, &str), &TargetObject> = HashMap::new();
    for (ty, o) in objects.clone() {
        if let Some(k) = key(o, ty).filter(|k| !k.is_empty())
            && !owned(o)
        {
            by_key.insert((ty, k), o);
        }
    }
    let owned_anchors: BTreeSet<&str> = objects
        .clone()
        .filter(|(_, o)| owned(o))
        .filter_map(|(_, o)| o.str(&ext.anchor))
        .collect();
    let users_by_upn: HashMap<String, &TargetObject> = target
        .users
        .iter()
        .filter_map(|u| Some((u.str("userPrincipalName")?.to_lowercase(), u)))
        .collect();
    let in_scope: BTreeSet<&str> = desired
        .users
        .values()
        .chain(desired.groups.values())
        .map(|d| d.dn().key())
        .collect();
    let mut matched: BTreeSet<&str> = BTreeSet::new();
    for d in desired.users.values().chain(desired.groups.values()) {
        if owned_anchors.contains(d.anchor.as_str()) {
            continue;
        }
        let k = match d.object_type {
            ObjectType::User => Some(d.anchor.0.clone()),
            _ => object_sid(&d.source),
        };
        let hit = k.as_deref().and_then(|k| by_key.get(&(d.object_type, k)));
        match hit {
            Some(&o) => {
                matched.insert(o.id.as_str());
                hard_matched(&mut r, examples, d, o, k.as_deref().unwrap_or_default());
            }
            None => r.to_create.add(examples, to_create(d, &users_by_upn)),
        }
    }
    for (ty, o) in objects {
        if matched.contains(o.id.as_str()) || owned(o) {
            continue;
        }
        let k = key(o, ty).filter(|k| !k.is_empty());
        if ty == ObjectType::User
            && let Some(id) = k
        {
            immutable_id_kind(&mut r, examples, &ad, policy.policy.anchor, o, id);
        }
        if k.is_none() && !o.is_dirsynced() {
            continue;
        }
        // An AD object in scope that the anchor does not match is reported above.
        let Some(detail) = no_counterpart_detail(&ad, &in_scope, ty, k) else {
            continue;
        };
        r.no_ad_counterpart
            .add(examples, entra_example(ty, o, detail));
    }
    r.advice = advice(&r);
    r
}

fn hard_matched(r: &mut MigrationReport, max: usize, d: &DesiredObject, o: &TargetObject, k: &str) {
    let by = match d.object_type {
        ObjectType::User => "onPremisesImmutableId",
        _ => "onPremisesSecurityIdentifier",
    };
    let state = if o.is_dirsynced() {
        "still synced"
    } else {
        "cloud-managed"
    };
    r.hard_matched.add(
        max,
        Example {
            object_type: d.object_type,
            entra: Some(entra_label(o)),
            ad: Some(d.dn().to_string()),
            detail: format!("{by} {k} ({state})"),
        },
    );
    if d.object_type == ObjectType::User {
        let now = o.str("userPrincipalName").unwrap_or_default();
        let wanted = d
            .props
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if now != wanted {
            r.upn_changes.add(
                max,
                Example {
                    object_type: ObjectType::User,
                    entra: Some(entra_label(o)),
                    ad: Some(d.dn().to_string()),
                    detail: format!("{now} → {wanted}"),
                },
            );
        }
    }
}

fn to_create(d: &DesiredObject, users_by_upn: &HashMap<String, &TargetObject>) -> Example {
    let upn = d.props.get("userPrincipalName").and_then(Value::as_str);
    let held = upn.and_then(|u| users_by_upn.get(&u.to_lowercase()));
    Example {
        object_type: d.object_type,
        entra: None,
        ad: Some(d.dn().to_string()),
        detail: match held {
            Some(o) => format!(
                "no hard match for anchor {}; its UPN is held by Entra user {} (no plan creates a second one: it is left out with upn-held-by-unowned-object)",
                d.anchor,
                entra_label(o)
            ),
            None => format!("no hard match for anchor {}: the plan creates it", d.anchor),
        },
    }
}

/// Files an unmatched Entra user's immutable id when it is not an AD objectGUID.
fn immutable_id_kind(
    r: &mut MigrationReport,
    max: usize,
    ad: &AdIndex,
    anchor: AnchorAttribute,
    o: &TargetObject,
    id: &str,
) {
    let a = Anchor(id.to_string());
    if ad.by_guid.contains_key(&a) {
        return;
    }
    let detail = match ad.by_consistency.get(&a) {
        Some(_) => format!(
            "its mS-DS-ConsistencyGuid, which differs from its objectGUID{}",
            if anchor == AnchorAttribute::ObjectGuid {
                "; `anchor: mS-DS-ConsistencyGuid` would hard-match it"
            } else {
                ""
            }
        ),
        None if !is_guid_anchor(id) => format!(
            "`{id}` is not base64 of a GUID: a custom anchor ad2entra cannot derive from AD"
        ),
        None => return,
    };
    r.immutable_id_not_object_guid.add(
        max,
        Example {
            object_type: ObjectType::User,
            entra: Some(entra_label(o)),
            ad: ad.by_consistency.get(&a).map(|s| s.dn.to_string()),
            detail,
        },
    );
}

/// Why an unmatched Entra object has no AD counterpart; None when it has one in scope
/// (whose anchor differs: [`immutable_id_kind`] reports it).
fn no_counterpart_detail(
    ad: &AdIndex,
    in_scope: &BTreeSet<&str>,
    ty: ObjectType,
    key: Option<&str>,
) -> Option<String> {
    let Some(k) = key else {
        return Some("synced, with no immutable id or security identifier".into());
    };
    let src = match ty {
        ObjectType::User => {
            let a = Anchor(k.to_string());
            ad.by_guid.get(&a).or_else(|| ad.by_consistency.get(&a))
        }
        _ => ad.by_sid.get(k),
    };
    match src {
        Some(s) if in_scope.contains(s.dn.key()) => None,
        Some(s) => Some(format!(
            "{k} is {} in AD, outside the policy's scope (or left out for an error)",
            s.dn
        )),
        None => Some(format!("no AD object in the read has {k}")),
    }
}

fn advice(r: &MigrationReport) -> Vec<String> {
    let mut a = Vec::new();
    let synced = r.still_synced.total();
    match &r.tenant_sync {
        TenantSync::On { .. } => a.push(format!(
            "Directory synchronization is on ({synced} objects synced): uninstall Entra Connect, then turn synchronization off for the tenant (docs/migrate-from-entra-connect.md, steps 2–3)."
        )),
        TenantSync::Off { .. } if synced > 0 => a.push(format!(
            "Directory synchronization is off, and {synced} objects are still being converted (up to 72 hours): plan again when none is synced."
        )),
        TenantSync::Unknown { reason } if synced > 0 => a.push(format!(
            "{synced} objects are synced; the tenant's synchronization state is unknown ({reason})."
        )),
        _ => {}
    }
    if r.hard_matched.total() > 0 && !r.adopt_by_immutable_id {
        a.push(format!(
            "{} objects would be hard-matched: add `adopt: {{by: immutableId}}` to the policy, or they are left out (users) or created a second time (groups).",
            r.hard_matched.total()
        ));
    }
    let differs = r
        .immutable_id_not_object_guid
        .examples
        .iter()
        .any(|e| e.detail.contains("would hard-match"));
    if differs {
        a.push("Some immutable ids are mS-DS-ConsistencyGuid values that differ from the objectGUID: set `anchor: mS-DS-ConsistencyGuid`, as Entra Connect did.".to_string());
    }
    if r.no_ad_counterpart.total() > 0 {
        a.push(format!(
            "{} objects from on-premises have no AD object in the policy's scope: after the cut-over they stay as cloud objects ad2entra does not own; widen the scope if they should be managed.",
            r.no_ad_counterpart.total()
        ));
    }
    if r.upn_changes.total() > 0 {
        a.push(format!(
            "{} users' sign-in names (userPrincipalName) would change at adoption: check upn.rewriteSuffixes and tell them.",
            r.upn_changes.total()
        ));
    }
    a
}

/// The report for people.
pub fn render_human(r: &MigrationReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let sync = match &r.tenant_sync {
        TenantSync::On { last_sync } => format!(
            "on{}",
            last_sync
                .as_ref()
                .map(|l| format!(" (last sync {l})"))
                .unwrap_or_default()
        ),
        TenantSync::Off { .. } => "off".into(),
        TenantSync::NeverSynced => "never synced".into(),
        TenantSync::Unknown { reason } => format!("unknown ({reason})"),
    };
    let _ = writeln!(
        s,
        "Migration check: anchor {}, adopt by immutableId {}",
        r.anchor,
        if r.adopt_by_immutable_id { "on" } else { "off" }
    );
    let _ = writeln!(s, "Tenant directory synchronization: {sync}");
    let _ = writeln!(
        s,
        "In scope in AD: {} users, {} groups; already owned by ad2entra: {}",
        r.in_scope_users, r.in_scope_groups, r.already_owned
    );
    for (title, f) in [
        ("Still synced (onPremisesSyncEnabled)", &r.still_synced),
        ("Would be hard-matched (adopt)", &r.hard_matched),
        ("No AD counterpart in scope", &r.no_ad_counterpart),
        (
            "Immutable id is not an objectGUID",
            &r.immutable_id_not_object_guid,
        ),
        ("userPrincipalName would change", &r.upn_changes),
        ("No hard match in Entra (create)", &r.to_create),
    ] {
        let _ = writeln!(s, "\n{title}: {} users, {} groups", f.users, f.groups);
        for e in &f.examples {
            let who: Vec<&str> = [e.ad.as_deref(), e.entra.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            let _ = writeln!(s, "  {} — {}", who.join(" ↔ "), e.detail);
        }
        if f.total() > f.examples.len() {
            let _ = writeln!(s, "  … and {} more", f.total() - f.examples.len());
        }
    }
    if !r.advice.is_empty() {
        let _ = writeln!(s, "\nNext:");
        for a in &r.advice {
            let _ = writeln!(s, "  - {a}");
        }
    }
    s
}
