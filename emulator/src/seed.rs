//! Seed data for `POST /_emulator/seed` and [`crate::Emulator::seed`]: domains, SKUs, users
//! (including `onPremisesSyncEnabled` ones and read-only properties real tenants have), groups
//! with members, app registrations with extension properties, and directory role members.
//!
//! Seeding is additive and bypasses Graph's write validation (it models what already exists in a
//! tenant), except that ids and userPrincipalNames must be unique and references must resolve.
//!
//! ```json
//! {
//!   "domains": [{"id": "fed.example.com", "isVerified": true, "authenticationType": "Federated"}],
//!   "skus": [{"skuId": "...", "skuPartNumber": "EMSPREMIUM", "enabledUnits": 5}],
//!   "applications": [{"id": "...", "appId": "...", "displayName": "HR",
//!                     "extensionProperties": [{"name": "employeeNumber", "dataType": "String", "targetObjects": ["User"]}]}],
//!   "users": [{"userPrincipalName": "synced@corp.example.com", "displayName": "Synced", "onPremisesSyncEnabled": true,
//!              "manager": "boss@corp.example.com", "assignedLicenses": [{"skuId": "...", "disabledPlans": []}]}],
//!   "groups": [{"displayName": "Sales", "mailNickname": "sales", "securityEnabled": true, "mailEnabled": false,
//!               "members": ["synced@corp.example.com"]}],
//!   "directoryRoleMembers": {"Global Administrator": ["admin@corp.example.com"]},
//!   "organization": {"onPremisesSyncEnabled": true}
//! }
//! ```
//! A seed with synced users or groups turns the tenant's directory synchronization on
//! (`organization.onPremisesSyncEnabled`) unless it says otherwise or the tenant synced
//! before: only a synced tenant holds synced objects ([`crate::organization`]).
//! `manager` and `members` entries are ids, userPrincipalNames, or group mailNicknames/displayNames.
//! `directoryRoleMembers` keys are built-in role display names (case-insensitive) or role
//! template ids ([`crate::roles::BUILT_IN_ROLES`]); naming a role activates it (see
//! [`crate::roles`]), an unknown name fails the seed.

use crate::config::{ApplicationConfig, DomainConfig, SkuConfig};
use crate::model::Kind;
use crate::store::{Directory, MemberChange};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Seed document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Seed {
    /// Domains to add (or replace by id).
    pub domains: Vec<DomainConfig>,
    /// SKUs to add (or replace by skuId).
    pub skus: Vec<SkuConfig>,
    /// Applications (merged by appId).
    pub applications: Vec<ApplicationConfig>,
    /// Users: Graph properties plus `manager` (reference).
    pub users: Vec<Map<String, Value>>,
    /// Groups: Graph properties plus `members` (references).
    pub groups: Vec<Map<String, Value>>,
    /// Built-in role display name (or template id) → member references.
    pub directory_role_members: BTreeMap<String, Vec<String>>,
    /// The tenant's directory synchronization.
    pub organization: Option<OrganizationSeed>,
}

/// The `/organization` state a seed sets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrganizationSeed {
    /// `onPremisesSyncEnabled` (null: never synced).
    pub on_premises_sync_enabled: Option<bool>,
    /// `onPremisesLastSyncDateTime`.
    pub on_premises_last_sync_date_time: Option<String>,
}

/// What a seed created.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SeedReport {
    /// Ids of the created users, in seed order.
    pub user_ids: Vec<String>,
    /// Ids of the created groups, in seed order.
    pub group_ids: Vec<String>,
}

/// Applies a seed; on error the directory is left unchanged.
pub fn apply(dir: &mut Directory, seed: &Seed) -> Result<SeedReport, String> {
    let mut work = dir.clone();
    for d in &seed.domains {
        work.domains.retain(|x| !x.id.eq_ignore_ascii_case(&d.id));
        work.domains.push(d.clone());
    }
    for s in &seed.skus {
        work.skus
            .retain(|x| !x.sku_id.eq_ignore_ascii_case(&s.sku_id));
        work.skus.push(s.clone());
    }
    for a in &seed.applications {
        work.add_application(a);
    }
    let mut report = SeedReport::default();
    let mut managers = Vec::new();
    for u in &seed.users {
        let mut props = u.clone();
        let manager = props.remove("manager");
        let id = work.insert_seeded(Kind::User, props)?;
        if let Some(m) = manager {
            managers.push((id.clone(), m));
        }
        report.user_ids.push(id);
    }
    let mut memberships = Vec::new();
    for g in &seed.groups {
        let mut props = g.clone();
        let members = props.remove("members");
        let id = work.insert_seeded(Kind::Group, props)?;
        if let Some(m) = members {
            memberships.push((id.clone(), m));
        }
        report.group_ids.push(id);
    }
    for (uid, m) in managers {
        let r = m.as_str().ok_or("manager must be a string")?;
        let mid = work
            .resolve_ref(r)
            .ok_or_else(|| format!("manager '{r}' not found"))?;
        if let Some(u) = work.users.get_mut(&uid) {
            u.manager = Some(mid);
        }
    }
    for (gid, list) in memberships {
        let list = list.as_array().ok_or("members must be an array")?.clone();
        for m in list {
            let r = m.as_str().ok_or("member references must be strings")?;
            let mid = work
                .resolve_ref(r)
                .ok_or_else(|| format!("member '{r}' not found"))?;
            let kind = if work.groups.contains_key(&mid) {
                Kind::Group
            } else {
                Kind::User
            };
            let seq = work.bump();
            if let Some(g) = work.groups.get_mut(&gid)
                && !g.members.contains(&mid)
            {
                g.members.push(mid.clone());
                g.version = seq;
                work.member_log.push(MemberChange {
                    seq,
                    group: gid.clone(),
                    member: mid,
                    member_kind: kind,
                    added: true,
                });
            }
        }
    }
    for (role, members) in &seed.directory_role_members {
        let built_in = crate::roles::lookup(role).ok_or_else(|| {
            format!(
                "directory role '{role}' is not a built-in role the emulator knows (use a display name such as 'Global Administrator' or a role template id)"
            )
        })?;
        let mut ids = Vec::new();
        for r in members {
            ids.push(
                work.resolve_ref(r)
                    .ok_or_else(|| format!("role member '{r}' not found"))?,
            );
        }
        // Naming a role activates it, even with no members.
        work.role_members
            .entry(built_in.display_name.to_string())
            .or_default()
            .extend(ids);
    }
    let synced = seed
        .users
        .iter()
        .chain(&seed.groups)
        .any(|o| o.get("onPremisesSyncEnabled") == Some(&Value::Bool(true)));
    let org = &mut work.organization;
    match &seed.organization {
        Some(o) => {
            org.on_premises_sync_enabled = o.on_premises_sync_enabled;
            org.on_premises_last_sync = o.on_premises_last_sync_date_time.clone();
        }
        None if synced && org.on_premises_sync_enabled.is_none() => {
            org.on_premises_sync_enabled = Some(true);
            org.on_premises_last_sync =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        None => {}
    }
    *dir = work;
    Ok(report)
}
