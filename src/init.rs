//! `ad2entra init`: one-time tenant preparation and a preflight check.
//!
//! It registers the directory extension properties that carry the ownership marker
//! (`ad2entraAnchor`) and the orphan timestamp (`ad2entraOrphanedAt`) on users and groups,
//! checks that the domains the policy needs are verified, and tries each read the
//! reconciler needs so a missing permission shows up here rather than at 3 a.m.

use crate::entra::graph::http::{GraphRequest, RetryMode};
use crate::entra::graph::{GraphClient, GraphError};
use crate::model::target::ExtensionNames;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

/// Which app registration to prepare.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The application's appId (client id): names the extension attributes.
    pub app_id: String,
    /// The application's object id (`/applications/{id}`); when None it is addressed as
    /// `/applications(appId='…')`.
    pub app_object_id: Option<String>,
    /// Domains the policy puts in UPNs (rewrite targets, fallback domain).
    pub domains: Vec<String>,
}

/// The short names registered on the app.
pub const EXTENSION_SHORT_NAMES: [&str; 2] = ["ad2entraAnchor", "ad2entraOrphanedAt"];

/// One extension property's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionStatus {
    pub name: String,
    /// `created`, `exists` or `failed`.
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
    pub extensions: Vec<ExtensionStatus>,
    pub domains: Vec<DomainCheck>,
    pub permissions: Vec<PermissionCheck>,
    /// Everything in place: the reconciler can run.
    pub ok: bool,
}

/// Registers the extensions, checks domains and permissions. `Err` only when Graph
/// cannot be reached at all or answers something other than success or 403.
pub async fn run_init(client: &GraphClient, opts: &InitOptions) -> Result<InitReport, GraphError> {
    // 1. Permissions: try the reads the reconciler makes.
    let reads: [(&str, &str, &str); 4] = [
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
    ];
    let mut permissions = Vec::new();
    let mut domains_body = None;
    for (label, path, perm) in reads {
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

    // 3. Extension properties: list first, create what is missing.
    let app_path = match &opts.app_object_id {
        Some(id) => format!("/applications/{id}"),
        None => format!("/applications(appId='{}')", opts.app_id),
    };
    let names = ExtensionNames::for_app(&opts.app_id);
    let full_names = [names.anchor.clone(), names.orphaned_at.clone()];
    let mut extensions = Vec::new();
    let existing: Result<Vec<String>, GraphError> = client
        .get_all_pages(&format!("{app_path}/extensionProperties"))
        .await
        .map(|v| {
            v.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        });
    match existing {
        Err(e) if e.status() == Some(403) => {
            permissions.push(PermissionCheck {
                read: "GET /applications/{id}/extensionProperties".into(),
                ok: false,
                missing_permission: Some("Application.ReadWrite.OwnedBy".into()),
            });
            for full in &full_names {
                extensions.push(ExtensionStatus {
                    name: full.clone(),
                    status: "failed".into(),
                    message: Some("cannot read the app's extension properties (403)".into()),
                });
            }
        }
        Err(e) => return Err(e),
        Ok(existing) => {
            for (short, full) in EXTENSION_SHORT_NAMES.iter().zip(&full_names) {
                if existing.iter().any(|n| n.eq_ignore_ascii_case(full)) {
                    extensions.push(ExtensionStatus {
                        name: full.clone(),
                        status: "exists".into(),
                        message: None,
                    });
                    continue;
                }
                let req = GraphRequest::write(
                    Method::POST,
                    format!("{app_path}/extensionProperties"),
                    Some(json!({
                        "name": short,
                        "dataType": "String",
                        "targetObjects": ["User", "Group"],
                    })),
                );
                let status = match client.execute(&req, RetryMode::ThrottleOnly).await {
                    Ok(_) => ExtensionStatus {
                        name: full.clone(),
                        status: "created".into(),
                        message: None,
                    },
                    // Created concurrently (or by an earlier attempt): that is fine.
                    Err(e)
                        if e.status() == Some(400) && e.to_string().contains("already exist") =>
                    {
                        ExtensionStatus {
                            name: full.clone(),
                            status: "exists".into(),
                            message: None,
                        }
                    }
                    Err(e) if e.status() == Some(403) => {
                        permissions.push(PermissionCheck {
                            read: "POST /applications/{id}/extensionProperties".into(),
                            ok: false,
                            missing_permission: Some("Application.ReadWrite.OwnedBy".into()),
                        });
                        ExtensionStatus {
                            name: full.clone(),
                            status: "failed".into(),
                            message: Some(e.to_string()),
                        }
                    }
                    Err(e) => return Err(e),
                };
                extensions.push(status);
            }
        }
    }
    let ok = permissions.iter().all(|p| p.ok)
        && domains.iter().all(|d| d.status == "verified")
        && extensions.iter().all(|e| e.status != "failed");
    Ok(InitReport {
        extensions,
        domains,
        permissions,
        ok,
    })
}
