//! `ad2entra init`: one-time tenant preparation and a preflight check.
//!
//! It registers the directory extension properties that carry the ownership marker
//! (`ad2entraAnchor`) and the orphan timestamp (`ad2entraOrphanedAt`) on users and groups,
//! checks that the domains the policy needs are verified, and tries each read the
//! reconciler needs so a missing permission shows up here rather than at 3 a.m.
//!
//! Ownership must not depend on which app registration runs, so init never registers a
//! second anchor silently: it registers only on the app the policy pins (or, without a pin,
//! the app it runs as) and only when running as that app; without a pin it refuses when the
//! tenant already holds another app's ad2entra anchor. It reports the policy line that pins
//! the anchor's app.
//!
//! Registration is a create: when the answer is lost (connection closed after the server
//! committed it, a 5xx), init looks the extension up by name before trying again, as apply
//! does for creates, so exactly one exists.

use crate::entra::graph::http::{GraphRequest, RetryMode};
use crate::entra::graph::safety::anchor_extensions;
use crate::entra::graph::{GraphClient, GraphError};
use crate::model::target::{ExtensionNames, ForeignAnchor, Readable, policy_pin_line, same_app};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Which app registration to prepare.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The app whose extensions carry the anchor (`target.extensionAppId`, else
    /// `AD2ENTRA_EXTENSION_APP_ID`, else the client id).
    pub app_id: String,
    /// Whether the policy pins `app_id`.
    pub pinned: bool,
    /// The app init runs as (`AZURE_CLIENT_ID`): it registers extensions only on itself.
    pub client_id: String,
    /// The application's object id (`/applications/{id}`); when None it is addressed as
    /// `/applications(appId='…')`.
    pub app_object_id: Option<String>,
    /// Domains the policy puts in UPNs (rewrite targets, fallback domain).
    pub domains: Vec<String>,
    /// Whether the policy adopts cloud users (then directory roles must be readable).
    pub needs_directory_roles: bool,
    /// How long after a registration with an unknown outcome to look it up.
    pub lookup_delay: Duration,
    /// Registration attempts before giving up.
    pub max_attempts: u32,
}

impl InitOptions {
    /// Init of `app_id`'s anchor, run as that app, without a policy pin.
    pub fn new(app_id: impl Into<String>) -> Self {
        let app_id = app_id.into();
        InitOptions {
            client_id: app_id.clone(),
            app_id,
            pinned: false,
            app_object_id: None,
            domains: Vec::new(),
            needs_directory_roles: false,
            lookup_delay: Duration::from_secs(5),
            max_attempts: 5,
        }
    }
}

/// The short names registered on the app.
pub const EXTENSION_SHORT_NAMES: [&str; 2] = ["ad2entraAnchor", "ad2entraOrphanedAt"];

/// One extension property's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionStatus {
    pub name: String,
    /// `created`, `exists`, `missing` (not registered, and init may not register it),
    /// `refused` (another app's anchor exists and the policy pins none) or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One needed domain's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainCheck {
    pub domain: String,
    /// `verified`, `unverified` or `missing`.
    pub status: String,
}

/// One read tried with the app's permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionCheck {
    /// What was read (`GET /users`).
    pub read: String,
    pub ok: bool,
    /// The application permission that grants it, when missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permission: Option<String>,
}

/// What init found and did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// The app whose anchor extension marks ownership.
    pub extension_app_id: String,
    /// The policy line that pins it (commit it, so every app registration that plans or
    /// applies reads the same anchor).
    pub policy_line: String,
    pub extensions: Vec<ExtensionStatus>,
    /// ad2entra anchor extensions of other app registrations in the tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_anchor_extensions: Vec<ForeignAnchor>,
    pub domains: Vec<DomainCheck>,
    pub permissions: Vec<PermissionCheck>,
    /// Everything in place: the reconciler can run.
    pub ok: bool,
}

/// The reads the reconciler makes, with the permission each needs.
fn reads(opts: &InitOptions) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = vec![
        ("GET /users", "/users?$select=id&$top=1", "User.Read.All"),
        (
            "GET /groups",
            "/groups?$select=id&$top=1",
            "GroupMember.Read.All",
        ),
        ("GET /domains", "/domains", "Domain.Read.All"),
        (
            "GET /subscribedSkus",
            "/subscribedSkus",
            "LicenseAssignment.Read.All",
        ),
        (
            "GET /directory/deletedItems/microsoft.graph.user",
            "/directory/deletedItems/microsoft.graph.user?$select=id&$top=1",
            "User.Read.All",
        ),
    ];
    if opts.needs_directory_roles {
        v.push((
            "GET /directoryRoles",
            "/directoryRoles?$select=id",
            "RoleManagement.Read.Directory",
        ));
    }
    v
}

fn status(name: &str, status: &str, message: Option<String>) -> ExtensionStatus {
    ExtensionStatus {
        name: name.to_string(),
        status: status.into(),
        message,
    }
}

/// The names registered on the app at `app_path`; `None` when the app is not in the tenant.
async fn registered_names(
    client: &GraphClient,
    app_path: &str,
) -> Result<Option<Vec<String>>, GraphError> {
    match client
        .get_all_pages(&format!("{app_path}/extensionProperties"))
        .await
    {
        Ok(v) => Ok(Some(
            v.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_string))
                .collect(),
        )),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

fn has(names: &[String], full: &str) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(full))
}

/// Whether a failed create may have happened: no answer, or a server error.
fn outcome_unknown(e: &GraphError) -> bool {
    matches!(e, GraphError::Transport { .. }) || e.status().is_some_and(|s| s >= 500)
}

/// Registers one extension; an unknown outcome is looked up by name before any retry.
async fn register(
    client: &GraphClient,
    app_path: &str,
    short: &str,
    full: &str,
    opts: &InitOptions,
    permissions: &mut Vec<PermissionCheck>,
) -> Result<ExtensionStatus, GraphError> {
    let req = GraphRequest::write(
        Method::POST,
        format!("{app_path}/extensionProperties"),
        Some(json!({
            "name": short,
            "dataType": "String",
            "targetObjects": ["User", "Group"],
        })),
    );
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match client.execute(&req, RetryMode::ThrottleOnly).await {
            Ok(_) => return Ok(status(full, "created", None)),
            Err(e) => e,
        };
        // Created concurrently, or by an attempt whose answer was lost.
        if err.status() == Some(400) && err.to_string().contains("already exist") {
            return Ok(status(full, "exists", None));
        }
        if err.status() == Some(403) {
            permissions.push(PermissionCheck {
                read: "POST /applications/{id}/extensionProperties".into(),
                ok: false,
                missing_permission: Some("Application.ReadWrite.OwnedBy".into()),
            });
            return Ok(status(full, "failed", Some(err.to_string())));
        }
        if !outcome_unknown(&err) || attempt >= opts.max_attempts {
            return Err(err);
        }
        tracing::info!(error = %err, extension = full, "registration outcome unknown; looking it up before retrying");
        tokio::time::sleep(opts.lookup_delay).await;
        if registered_names(client, app_path)
            .await?
            .is_some_and(|names| has(&names, full))
        {
            return Ok(status(
                full,
                "created",
                Some("the answer was lost; found registered, not created twice".into()),
            ));
        }
    }
}

/// Why init must not register on its own: another app's anchor exists and nothing pins one.
fn refusal(others: &Readable<Vec<ForeignAnchor>>) -> Option<String> {
    match others {
        Readable::Read(list) if list.is_empty() => None,
        Readable::Read(list) => {
            let apps: Vec<String> = list
                .iter()
                .map(|f| {
                    format!(
                        "{} (app {}, {} users and {} groups carry it)",
                        f.name, f.app_id, f.users, f.groups
                    )
                })
                .collect();
            let pick = list
                .iter()
                .max_by_key(|f| f.users + f.groups)
                .map(|f| policy_pin_line(&f.app_id))
                .unwrap_or_default();
            Some(format!(
                "the tenant already has an ad2entra anchor extension of another app: {}. A second anchor would split ownership; init registers none. Pin the app whose objects these are in the policy:\n\n{pick}\n\nthen run init again",
                apps.join("; ")
            ))
        }
        Readable::Unreadable(u) => Some(format!(
            "cannot make sure no other app's ad2entra anchor exists ({u}); init registers none. Grant the permission, or pin the anchor's app in the policy (target.extensionAppId)"
        )),
    }
}

/// Registers the extensions, checks domains and permissions. `Err` only when Graph
/// cannot be reached at all or answers something other than success or 403.
pub async fn run_init(client: &GraphClient, opts: &InitOptions) -> Result<InitReport, GraphError> {
    // 1. Permissions: try the reads the reconciler makes.
    let mut permissions = Vec::new();
    let mut domains_body = None;
    for (label, path, perm) in reads(opts) {
        match client
            .execute(&GraphRequest::get(path), RetryMode::Idempotent)
            .await
        {
            Ok(r) => {
                if path == "/domains" {
                    domains_body = Some(r.body);
                }
                permissions.push(PermissionCheck {
                    read: label.into(),
                    ok: true,
                    missing_permission: None,
                });
            }
            Err(e) if e.status() == Some(403) => permissions.push(PermissionCheck {
                read: label.into(),
                ok: false,
                missing_permission: Some(perm.into()),
            }),
            Err(e) => return Err(e),
        }
    }

    // 2. Domains.
    let tenant_domains: Vec<(String, bool)> = domains_body
        .as_ref()
        .and_then(|b| b.get("value"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    Some((
                        d.get("id")?.as_str()?.to_ascii_lowercase(),
                        d.get("isVerified")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let domains: Vec<DomainCheck> = opts
        .domains
        .iter()
        .map(|d| {
            let status = match tenant_domains
                .iter()
                .find(|(id, _)| *id == d.to_ascii_lowercase())
            {
                Some((_, true)) => "verified",
                Some((_, false)) => "unverified",
                None => "missing",
            };
            DomainCheck {
                domain: d.clone(),
                status: status.into(),
            }
        })
        .collect();

    // 3. Other apps' anchors: without a pin, never register a second anchor.
    let (_, others) = anchor_extensions(client, &opts.app_id).await?;
    if let Readable::Unreadable(_) = &others {
        permissions.push(PermissionCheck {
            read: "the tenant's directory extensions (getAvailableExtensionProperties, GET /applications)".into(),
            ok: false,
            missing_permission: Some("Directory.Read.All or Application.Read.All".into()),
        });
    }
    let refused = if opts.pinned { None } else { refusal(&others) };

    // 4. Extension properties: list first, create what is missing (on our own app only).
    let app_path = match &opts.app_object_id {
        Some(id) => format!("/applications/{id}"),
        None => format!("/applications(appId='{}')", opts.app_id),
    };
    let names = ExtensionNames::for_app(&opts.app_id);
    let full_names = [names.anchor.clone(), names.orphaned_at.clone()];
    let runs_as_app = same_app(&opts.app_id, &opts.client_id);
    let mut extensions = Vec::new();
    let existing = match registered_names(client, &app_path).await {
        Ok(v) => Ok(v.unwrap_or_default()),
        Err(e) if e.status() == Some(403) => Err(e),
        Err(e) => return Err(e),
    };
    match existing {
        Err(_) => {
            permissions.push(PermissionCheck {
                read: "GET /applications/{id}/extensionProperties".into(),
                ok: false,
                missing_permission: Some("Application.Read.All".into()),
            });
            for full in &full_names {
                extensions.push(status(
                    full,
                    "failed",
                    Some("cannot read the app's extension properties (403)".into()),
                ));
            }
        }
        Ok(existing) => {
            for (short, full) in EXTENSION_SHORT_NAMES.iter().zip(&full_names) {
                let s = if has(&existing, full) {
                    status(full, "exists", None)
                } else if let Some(why) = &refused {
                    status(full, "refused", Some(why.clone()))
                } else if !runs_as_app {
                    status(
                        full,
                        "missing",
                        Some(format!(
                            "not registered; only app {} itself registers it: run `ad2entra init` as that app",
                            opts.app_id
                        )),
                    )
                } else {
                    register(client, &app_path, short, full, opts, &mut permissions).await?
                };
                extensions.push(s);
            }
        }
    }
    let ok = refused.is_none()
        && permissions.iter().all(|p| p.ok)
        && domains.iter().all(|d| d.status == "verified")
        && extensions
            .iter()
            .all(|e| e.status == "created" || e.status == "exists");
    Ok(InitReport {
        policy_line: policy_pin_line(&opts.app_id),
        extension_app_id: opts.app_id.clone(),
        extensions,
        other_anchor_extensions: others.read().cloned().unwrap_or_default(),
        domains,
        permissions,
        ok,
    })
}
