//! Reading the inputs safety rules depend on: directory-role holders (never adopted),
//! soft-deleted users (restored, not created twice), subscribed SKUs (licences), the anchor
//! extension's registration and other apps' ad2entra anchors (ownership).
//!
//! Each read ends in one of three ways. Success: [`Readable::Read`]. A documented answer that
//! the app may not read it (403 `Authorization_RequestDenied`) or that it does not exist
//! (404 for an app registration not in the tenant): [`Readable::Unreadable`] with Graph's
//! status and code, or "not registered". Anything else — 5xx after retries, a dropped
//! connection, an unexpected body — fails the whole read, as for users and groups: a
//! transient failure must never pass for "none".

use super::GraphClient;
use super::batch::BatchItem;
use super::error::GraphError;
use super::http::{GraphRequest, RetryMode, with_query};
use super::read::{PAGE_SIZE, list_path};
use crate::model::target::{
    ExtensionNames, ForeignAnchor, Readable, SafetyInput, SubscribedSku, TargetObject, Unreadable,
    anchor_extension_app, same_app,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A 403 becomes "not readable" for `input`; every other error fails the read.
fn refused_or_fail<T>(input: SafetyInput, e: GraphError) -> Result<Readable<T>, GraphError> {
    match e.status() {
        Some(403) => {
            tracing::warn!(error = %e, read = input.read(), "a safety input is not readable; what depends on it is disabled");
            Ok(Readable::Unreadable(Unreadable::refused(
                input,
                403,
                e.code().unwrap_or_default(),
            )))
        }
        _ => Err(e),
    }
}

fn ids(values: &[Value]) -> impl Iterator<Item = String> + '_ {
    values
        .iter()
        .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
}

fn api_error(path: &str, status: u16, code: String, message: String) -> GraphError {
    GraphError::Api {
        method: "GET".into(),
        path: path.split('?').next().unwrap_or(path).to_string(),
        status,
        code,
        message,
        retry_after: None,
    }
}

fn decode(method: &str, path: &str, message: impl Into<String>) -> GraphError {
    GraphError::Decode {
        method: method.into(),
        path: path.into(),
        message: message.into(),
    }
}

/// GETs each of `urls` through `$batch` (20 at a time) and every next page after it: per
/// URL, in order, all its items or its own error (`label` names the path in errors).
async fn batch_collections(
    client: &GraphClient,
    urls: Vec<String>,
    label: &str,
) -> Result<Vec<Result<Vec<Value>, GraphError>>, GraphError> {
    let items: Vec<BatchItem> = urls
        .iter()
        .enumerate()
        .map(|(i, u)| BatchItem::get(i.to_string(), u.clone()))
        .collect();
    let resp = client.batch_get_all(items).await?;
    let mut out = Vec::with_capacity(urls.len());
    for i in 0..urls.len() {
        let r = resp
            .get(&i.to_string())
            .ok_or_else(|| decode("GET", label, "missing batch response"))?;
        if !r.is_success() {
            let (code, message) = r.error();
            out.push(Err(api_error(label, r.status, code, message)));
            continue;
        }
        let mut values = r
            .body
            .get("value")
            .and_then(Value::as_array)
            .ok_or_else(|| decode("GET", label, "page without value[]"))?
            .clone();
        match r.body.get("@odata.nextLink").and_then(Value::as_str) {
            Some(next) => match client.get_all_pages(next).await {
                Ok(rest) => {
                    values.extend(rest);
                    out.push(Ok(values));
                }
                Err(e) => out.push(Err(e)),
            },
            None => out.push(Ok(values)),
        }
    }
    Ok(out)
}

/// Ids of the members of every activated directory role, sorted.
pub async fn directory_role_members(
    client: &GraphClient,
) -> Result<Readable<Vec<String>>, GraphError> {
    let input = SafetyInput::DirectoryRoles;
    let roles = match client.get_all_pages("/directoryRoles?$select=id").await {
        Ok(r) => r,
        Err(e) => return refused_or_fail(input, e),
    };
    let urls = ids(&roles)
        .map(|r| {
            list_path(
                &format!("/directoryRoles/{r}/members"),
                &["id".into()],
                PAGE_SIZE,
            )
        })
        .collect();
    let mut out = Vec::new();
    for members in batch_collections(client, urls, "/directoryRoles/{id}/members").await? {
        match members {
            Ok(m) => out.extend(ids(&m)),
            Err(e) => return refused_or_fail(input, e),
        }
    }
    out.sort();
    out.dedup();
    Ok(Readable::Read(out))
}

/// Soft-deleted users (`path` holds the `$select`).
pub async fn deleted_users(
    client: &GraphClient,
    path: &str,
) -> Result<Readable<Vec<TargetObject>>, GraphError> {
    match client.get_all_pages(path).await {
        Ok(v) => Ok(Readable::Read(super::read::objects(
            "/directory/deletedItems",
            v,
        )?)),
        Err(e) => refused_or_fail(SafetyInput::DeletedUsers, e),
    }
}

/// The tenant's subscriptions.
pub async fn subscribed_skus(
    client: &GraphClient,
) -> Result<Readable<Vec<SubscribedSku>>, GraphError> {
    let values = match client.get_all_pages("/subscribedSkus").await {
        Ok(v) => v,
        Err(e) => return refused_or_fail(SafetyInput::SubscribedSkus, e),
    };
    let skus = values
        .into_iter()
        .map(|s| {
            serde_json::from_value::<SubscribedSku>(s)
                .map_err(|e| decode("GET", "/subscribedSkus", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Readable::Read(skus))
}

/// One registered directory extension: its name, owning app's display name, and the object
/// types it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Extension {
    name: String,
    app_display_name: Option<String>,
    target_objects: Vec<String>,
}

impl Extension {
    fn targets(&self, object_type: &str) -> bool {
        self.target_objects
            .iter()
            .any(|t| t.eq_ignore_ascii_case(object_type))
    }
}

fn extensions(values: &[Value]) -> Vec<Extension> {
    values
        .iter()
        .filter_map(|e| {
            Some(Extension {
                name: e.get("name")?.as_str()?.to_string(),
                app_display_name: e
                    .get("appDisplayName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                target_objects: e
                    .get("targetObjects")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Every directory extension of the tenant (`getAvailableExtensionProperties`).
async fn available_extensions(
    client: &GraphClient,
) -> Result<Readable<Vec<Extension>>, GraphError> {
    // An action that only reads: retrying it cannot do anything twice.
    let req = GraphRequest {
        writes: 0,
        ..GraphRequest::write(
            Method::POST,
            "/directoryObjects/getAvailableExtensionProperties",
            Some(json!({})),
        )
    };
    let body = match client.execute(&req, RetryMode::Idempotent).await {
        Ok(r) => r.body,
        Err(e) => return refused_or_fail(SafetyInput::OtherAnchorExtensions, e),
    };
    let path = "/directoryObjects/getAvailableExtensionProperties";
    let mut values = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| decode("POST", path, "answer without value[]"))?
        .clone();
    if let Some(next) = body.get("@odata.nextLink").and_then(Value::as_str) {
        values.extend(client.get_all_pages(next).await?);
    }
    Ok(Readable::Read(extensions(&values)))
}

/// The extensions registered on one app, `None` when the app is not in the tenant (404).
async fn app_extensions(
    client: &GraphClient,
    app_id: &str,
) -> Result<Option<Vec<Extension>>, GraphError> {
    match client
        .get_all_pages(&format!(
            "/applications(appId='{app_id}')/extensionProperties"
        ))
        .await
    {
        Ok(v) => Ok(Some(extensions(&v))),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every app registration's extensions, one request per app packed 20 per `$batch`: the
/// fallback when `getAvailableExtensionProperties` is not allowed or answered an incomplete
/// list. It misses extensions of multi-tenant apps registered in another tenant, which
/// ad2entra's own app registration is not.
async fn all_app_extensions(client: &GraphClient) -> Result<Vec<Extension>, GraphError> {
    let apps = client
        .get_all_pages("/applications?$select=id,appId,displayName")
        .await?;
    let urls = ids(&apps)
        .map(|id| format!("/applications/{id}/extensionProperties"))
        .collect();
    let mut out = Vec::new();
    for list in batch_collections(client, urls, "/applications/{id}/extensionProperties").await? {
        match list {
            Ok(l) => out.extend(extensions(&l)),
            // Deleted between the two reads.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

async fn every_app(client: &GraphClient) -> Result<Readable<Vec<Extension>>, GraphError> {
    match all_app_extensions(client).await {
        Ok(all) => Ok(Readable::Read(all)),
        Err(e) => refused_or_fail(SafetyInput::OtherAnchorExtensions, e),
    }
}

/// How many users and groups carry `name`, and a few of them. Directory extensions support
/// `$filter` with `ne null` as an advanced query (`ConsistencyLevel: eventual`, `$count`).
/// Only the object types the extension applies to are asked (Graph refuses a `$filter` on a
/// property the type does not have).
async fn stamped(
    client: &GraphClient,
    ext: &Extension,
) -> Result<(u64, u64, Vec<String>), GraphError> {
    let name = &ext.name;
    let mut counts = [0u64; 2];
    let mut examples = Vec::new();
    for (i, (set, label, ty)) in [
        ("/users", "userPrincipalName", "User"),
        ("/groups", "displayName", "Group"),
    ]
    .into_iter()
    .enumerate()
    {
        if !ext.targets(ty) {
            continue;
        }
        let path = with_query(
            set,
            &[
                ("$filter", format!("{name} ne null")),
                ("$count", "true".into()),
                ("$select", format!("id,{label}")),
                ("$top", "3".into()),
            ],
        );
        let mut req = GraphRequest::get(path);
        req.headers
            .push(("ConsistencyLevel".into(), "eventual".into()));
        let body = client.execute(&req, RetryMode::Idempotent).await?.body;
        let count = body
            .get("@odata.count")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode("GET", set, "$count answer without @odata.count"))?;
        counts[i] = count;
        if let Some(items) = body.get("value").and_then(Value::as_array) {
            examples.extend(items.iter().filter_map(|o| {
                o.get(label)
                    .or_else(|| o.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }));
        }
    }
    examples.truncate(3);
    Ok((counts[0], counts[1], examples))
}

/// Whether `app_id`'s anchor extension is registered, and the other ad2entra anchors in the
/// tenant with the objects carrying them.
pub async fn anchor_extensions(
    client: &GraphClient,
    app_id: &str,
) -> Result<(Readable<bool>, Readable<Vec<ForeignAnchor>>), GraphError> {
    // ad2entra's extension set: the anchor and the orphan mark, registered together by
    // `init`. Both must exist: Graph refuses a `$select` of an unregistered one.
    let names = ExtensionNames::for_app(app_id);
    let has_ours = |list: &[Extension]| {
        [&names.anchor, &names.orphaned_at]
            .iter()
            .all(|n| list.iter().any(|e| e.name.eq_ignore_ascii_case(n)))
    };
    let available = available_extensions(client).await?;
    let registered = match available.read() {
        Some(list) if has_ours(list) => Readable::Read(true),
        // Not in the tenant-wide list, or no list: ask the app itself.
        _ => match app_extensions(client, app_id).await {
            Ok(Some(own)) => Readable::Read(has_ours(&own)),
            Ok(None) => Readable::Read(false),
            Err(e) => refused_or_fail(SafetyInput::AnchorExtension, e)?,
        },
    };
    let tenant = match (available, &registered) {
        // The tenant-wide list is empty, or lacks an extension that exists: it may be
        // incomplete (Microsoft documents an empty answer in tenants with more than 1,000
        // service principals). Or the app may not use it. Either way, read every app
        // registration's extensions (Application.Read.All, or Application.ReadWrite.OwnedBy,
        // may list them all).
        (Readable::Read(list), registered)
            if list.is_empty() || (*registered == Readable::Read(true) && !has_ours(&list)) =>
        {
            tracing::info!(
                "getAvailableExtensionProperties answered an empty or incomplete list; listing every app registration's extensions instead"
            );
            every_app(client).await?
        }
        (Readable::Read(list), _) => Readable::Read(list),
        (Readable::Unreadable(_), _) => every_app(client).await?,
    };
    let list = match tenant {
        Readable::Read(list) => list,
        Readable::Unreadable(u) => return Ok((registered, Readable::Unreadable(u))),
    };
    // One entry per other app (a name can be listed once per target object type).
    let mut others: BTreeMap<String, Extension> = BTreeMap::new();
    for e in list {
        if let Some(app) = anchor_extension_app(&e.name)
            && !same_app(&app, app_id)
        {
            others.entry(app).or_insert(e);
        }
    }
    let mut foreign = Vec::new();
    for (app, e) in others {
        let (users, groups, examples) = stamped(client, &e).await?;
        foreign.push(ForeignAnchor {
            name: e.name,
            app_id: app,
            app_display_name: e.app_display_name,
            users,
            groups,
            examples,
        });
    }
    Ok((registered, Readable::Read(foreign)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> GraphError {
        api_error("/directoryRoles", status, code.into(), String::new())
    }

    #[test]
    fn only_a_refusal_is_not_readable_and_every_other_failure_fails_the_read() {
        let r: Readable<Vec<String>> = refused_or_fail(
            SafetyInput::DirectoryRoles,
            api(403, "Authorization_RequestDenied"),
        )
        .unwrap();
        assert_eq!(
            r.unreadable(),
            Some(&Unreadable::refused(
                SafetyInput::DirectoryRoles,
                403,
                "Authorization_RequestDenied"
            ))
        );
        for e in [
            api(503, "serviceUnavailable"),
            api(500, "generalException"),
            api(429, "TooManyRequests"),
            api(404, "Request_ResourceNotFound"),
            GraphError::Transport {
                method: "GET".into(),
                path: "/directoryRoles".into(),
                message: "connection closed before message completed".into(),
            },
            decode("GET", "/directoryRoles", "page without value[]"),
        ] {
            let shown = e.to_string();
            assert!(
                refused_or_fail::<Vec<String>>(SafetyInput::DirectoryRoles, e).is_err(),
                "{shown} must fail the read"
            );
        }
    }
}
