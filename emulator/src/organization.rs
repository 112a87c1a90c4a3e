//! The tenant (`/organization`) and its directory synchronization, as Microsoft documents
//! turning it off to leave Entra Connect:
//!
//! - `organization.onPremisesSyncEnabled` is "`true` if this object is synced from an
//!   on-premises directory; `false` if this object was originally synced from an
//!   on-premises directory but is no longer synced; `null` if this object has never been
//!   synced" (organization resource). Seeding synced users or groups into a tenant that never
//!   synced turns it on, as only a synced tenant holds them.
//! - `PATCH /organization/{id}` (organization-update: application permission
//!   `Organization.ReadWrite.All`, `204 No Content`) with `onPremisesSyncEnabled: false`
//!   turns synchronization off ("Turn off directory synchronization", Microsoft 365
//!   Enterprise). The synced users and groups become cloud-managed: writable through Graph,
//!   `onPremisesSyncEnabled` false (the group resource: "false if this group was originally
//!   synced from an on-premises directory but is no longer synced"), and the process "will
//!   clear the following on-premises properties: DnsDomainName, NetBiosName,
//!   OnPremisesDistinguishedName, OnPremisesSamAccountName, OnpremisesUserPrincipalName" —
//!   `onPremisesImmutableId` and `onPremisesSecurityIdentifier` stay.
//! - "Deactivating DirSync may take up to 72 hours … Once disabled, the process cannot be
//!   canceled and must complete before you can take further action, including re-enabling
//!   DirSync" (Set-EntraDirSyncEnabled). [`EmulatorConfig::dirsync_deactivation_secs`]
//!   models that wait (0 by default: at once); until it passes the objects stay synced and
//!   read-only, and turning synchronization back on is refused (the refusal's wording is the
//!   emulator's: Microsoft documents the rule, not the error).
//! - The request body may carry the documented updatable properties
//!   (`marketingNotificationEmails`, `privacyProfile`, `securityComplianceNotificationMails`,
//!   `securityComplianceNotificationPhones`, `technicalNotificationMails`) and
//!   `onPremisesSyncEnabled`; the organization's other properties are read-only and an
//!   unknown one is the OData error of any resource.
//!
//! [`EmulatorConfig::dirsync_deactivation_secs`]: crate::config::EmulatorConfig::dirsync_deactivation_secs

use crate::errors::{GraphError, GraphResult};
use crate::graph::{Ctx, GraphRequest, GraphResponse};
use crate::store::Directory;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// Properties `PATCH /organization/{id}` may set besides `onPremisesSyncEnabled`
/// (organization-update, request body).
const UPDATABLE: &[&str] = &[
    "marketingNotificationEmails",
    "privacyProfile",
    "securityComplianceNotificationMails",
    "securityComplianceNotificationPhones",
    "technicalNotificationMails",
];

/// The organization's other properties (organization resource): read-only.
const READ_ONLY: &[&str] = &[
    "id",
    "deletedDateTime",
    "assignedPlans",
    "businessPhones",
    "city",
    "country",
    "countryLetterCode",
    "createdDateTime",
    "defaultUsageLocation",
    "displayName",
    "isMultipleDataLocationsForServicesEnabled",
    "onPremisesLastSyncDateTime",
    "partnerTenantType",
    "postalCode",
    "preferredLanguage",
    "provisionedPlans",
    "state",
    "street",
    "tenantType",
    "verifiedDomains",
];

/// On-premises properties turning synchronization off clears on users and groups (the
/// documented list, by its Graph names).
pub const CLEARED_ON_CONVERSION: &[&str] = &[
    "onPremisesDomainName",
    "onPremisesNetBiosName",
    "onPremisesDistinguishedName",
    "onPremisesSamAccountName",
    "onPremisesUserPrincipalName",
];

/// The tenant's state behind `/organization`.
#[derive(Debug, Clone, Default)]
pub struct Organization {
    /// `onPremisesSyncEnabled`: None until the tenant ever synced.
    pub on_premises_sync_enabled: Option<bool>,
    /// `onPremisesLastSyncDateTime`.
    pub on_premises_last_sync: Option<String>,
    /// When synchronization was turned off and its objects are not all converted yet: when
    /// they will be.
    pub converting_until: Option<Instant>,
    /// The updatable notification settings, as last set.
    pub settings: Map<String, Value>,
}

impl Directory {
    /// Turns directory synchronization off: the organization shows `false` at once; the
    /// synced users and groups become cloud-managed after `delay`.
    pub fn turn_off_directory_sync(&mut self, delay: Duration) {
        if self.organization.on_premises_sync_enabled != Some(true) {
            return;
        }
        self.organization.on_premises_sync_enabled = Some(false);
        self.organization.converting_until = Some(Instant::now() + delay);
        self.finish_dirsync_conversion(Instant::now());
    }

    /// Converts the synced objects once the deactivation's wait is over (called before
    /// every request).
    pub fn finish_dirsync_conversion(&mut self, now: Instant) {
        let Some(due) = self.organization.converting_until else {
            return;
        };
        if now < due {
            return;
        }
        self.organization.converting_until = None;
        let synced: Vec<(bool, String)> = self
            .users
            .values()
            .map(|o| (true, o))
            .chain(self.groups.values().map(|o| (false, o)))
            .filter(|(_, o)| o.is_synced())
            .map(|(user, o)| (user, o.id.clone()))
            .collect();
        for (user, id) in synced {
            let seq = self.bump();
            let pool = if user {
                &mut self.users
            } else {
                &mut self.groups
            };
            if let Some(o) = pool.get_mut(&id) {
                o.patch_prop("onPremisesSyncEnabled".into(), Value::Bool(false));
                for p in CLEARED_ON_CONVERSION {
                    o.patch_prop((*p).into(), Value::Null);
                }
                o.version = seq;
            }
        }
        self.rebuild_index();
    }

    /// Whether synchronization was turned off and its objects are still being converted.
    pub fn dirsync_converting(&self) -> bool {
        self.organization.converting_until.is_some()
    }
}

/// The organization resource.
pub fn organization_json(dir: &Directory) -> Value {
    let verified: Vec<Value> = dir
        .domains
        .iter()
        .filter(|d| d.is_verified)
        .map(|d| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": d.is_default,
                "isInitial": d.is_initial,
                "name": d.id,
                "type": d.authentication_type,
            })
        })
        .collect();
    let org = &dir.organization;
    let mut v = json!({
        "id": dir.tenant_id,
        "deletedDateTime": null,
        "displayName": dir.tenant_display_name,
        "onPremisesSyncEnabled": org.on_premises_sync_enabled,
        "onPremisesLastSyncDateTime": org.on_premises_last_sync,
        "tenantType": "AAD",
        "verifiedDomains": verified,
        "marketingNotificationEmails": [],
        "privacyProfile": null,
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "technicalNotificationMails": [],
    });
    if let Some(o) = v.as_object_mut() {
        for (k, val) in &org.settings {
            o.insert(k.clone(), val.clone());
        }
    }
    v
}

fn invalid(property: &str) -> GraphError {
    GraphError::invalid_value(property, "organization")
}

/// Checks an update body (pure): the properties it may set, with their types.
fn check_update(body: &Map<String, Value>) -> GraphResult<()> {
    for (k, v) in body {
        let ok = match k.as_str() {
            "onPremisesSyncEnabled" => v.is_boolean(),
            "privacyProfile" => v.is_object() || v.is_null(),
            k if UPDATABLE.contains(&k) => {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
            }
            k if READ_ONLY.contains(&k) => {
                return Err(GraphError::bad_request(format!(
                    "Property '{k}' is read-only and cannot be set."
                )));
            }
            _ => {
                return Err(GraphError::odata_bad_request(format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.organization'. Make sure to only use property names that are defined by the type or mark the type as open type."
                )));
            }
        };
        if !ok {
            return Err(invalid(k));
        }
    }
    Ok(())
}

/// `GET` and `PATCH /organization/{id}`.
pub fn item(ctx: &mut Ctx<'_>, req: &GraphRequest, oid: &str) -> GraphResult<GraphResponse> {
    if !oid.eq_ignore_ascii_case(&ctx.dir.tenant_id) {
        return Err(GraphError::not_found(oid));
    }
    match req.method.as_str() {
        "GET" => Ok(GraphResponse::json(200, organization_json(ctx.dir))),
        "PATCH" => {
            let body = req.json_object()?;
            check_update(body)?;
            if let Some(on) = body.get("onPremisesSyncEnabled").and_then(Value::as_bool) {
                if on && ctx.dir.dirsync_converting() {
                    return Err(GraphError::bad_request(
                        "Directory synchronization is being turned off for this tenant; it cannot be turned on again before that completes.",
                    ));
                }
                if on {
                    ctx.dir.organization.on_premises_sync_enabled = Some(true);
                } else {
                    let delay = Duration::from_secs_f64(ctx.cfg.dirsync_deactivation_secs);
                    ctx.dir.turn_off_directory_sync(delay);
                }
            }
            for (k, v) in body {
                if UPDATABLE.contains(&k.as_str()) {
                    ctx.dir.organization.settings.insert(k.clone(), v.clone());
                }
            }
            Ok(GraphResponse::no_content())
        }
        _ => Err(GraphError::method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_bodies() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        assert!(check_update(&body(json!({"onPremisesSyncEnabled": false}))).is_ok());
        assert!(
            check_update(&body(
                json!({"technicalNotificationMails": ["it@corp.example.com"]})
            ))
            .is_ok()
        );
        let e = check_update(&body(json!({"onPremisesSyncEnabled": "no"}))).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "Request_BadRequest"));
        let e = check_update(&body(json!({"displayName": "X"}))).unwrap_err();
        assert!(e.message.contains("read-only"), "{}", e.message);
        let e = check_update(&body(json!({"dirSyncEnabled": false}))).unwrap_err();
        assert_eq!(e.code, "BadRequest");
    }
}
