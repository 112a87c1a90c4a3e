//! Reading a [`TargetSnapshot`] from Graph: users, groups with member ids, domains,
//! SKUs, soft-deleted users and directory-role holders.
//!
//! A read either returns the whole snapshot or an error: a partial snapshot would look
//! like "objects vanished" to the planner and turn into deletes.

use super::GraphClient;
use super::batch::{BatchItem, MAX_BATCH};
use super::error::GraphError;
use super::http::{GraphRequest, RetryMode, with_query};
use crate::model::target::{
    ExtensionNames, SubscribedSku, TargetObject, TargetSnapshot, TenantDomain,
};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What to read: the managed properties (from the policy's mappings) and the app
/// whose extension attributes mark ownership.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// User properties to `$select` (the reader adds what ownership and licences need).
    pub user_select: Vec<String>,
    /// Group properties to `$select`.
    pub group_select: Vec<String>,
    /// App id naming the extension attributes (default: the snapshot default app id).
    pub extension_app_id: Option<String>,
    /// Do not read directory role members (they need RoleManagement.Read.Directory;
    /// without them adoption cannot exclude role holders).
    pub skip_directory_roles: bool,
}

impl ReadOptions {
    /// What the planner compares for this policy: every mapped property, and the SMTP
    /// addresses Graph keeps unique across users and groups (`graph_rules::unique`);
    /// directory roles only when adoption is on (role holders are never adopted).
    pub fn for_policy(
        policy: &crate::policy::LoadedPolicy,
        extension_app_id: Option<String>,
    ) -> Self {
        let with = |mapped: &[crate::policy::MappingRule], extra: &[&str]| {
            let mut v: Vec<String> = mapped.iter().map(|m| m.property.clone()).collect();
            for e in extra {
                push_unique(&mut v, e);
            }
            v
        };
        ReadOptions {
            user_select: with(
                &policy.user_mappings,
                &["userPrincipalName", "mail", "proxyAddresses"],
            ),
            group_select: with(&policy.group_mappings, &["mail", "proxyAddresses"]),
            extension_app_id,
            skip_directory_roles: policy.policy.adopt.is_none(),
        }
    }
}

/// Page size Graph allows at most for directory objects.
pub const PAGE_SIZE: u32 = 999;

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// The `$select` list for users: id and the ownership/licence properties first, then
/// the asked ones (pure).
pub fn user_select(opts: &ReadOptions, ext: &ExtensionNames) -> Vec<String> {
    let mut v = Vec::new();
    for s in [
        "id",
        "onPremisesSyncEnabled",
        "onPremisesImmutableId",
        ext.anchor.as_str(),
        ext.orphaned_at.as_str(),
        "assignedLicenses",
    ] {
        push_unique(&mut v, s);
    }
    for s in &opts.user_select {
        push_unique(&mut v, s);
    }
    v
}

/// The `$select` list for groups (pure).
pub fn group_select(opts: &ReadOptions, ext: &ExtensionNames) -> Vec<String> {
    let mut v = Vec::new();
    for s in [
        "id",
        "onPremisesSyncEnabled",
        ext.anchor.as_str(),
        ext.orphaned_at.as_str(),
    ] {
        push_unique(&mut v, s);
    }
    for s in &opts.group_select {
        push_unique(&mut v, s);
    }
    v
}

/// First-page path for a collection with `$select` and `$top` (pure).
pub fn list_path(collection: &str, select: &[String], top: u32) -> String {
    let mut q = Vec::new();
    if !select.is_empty() {
        q.push(("$select", select.join(",")));
    }
    q.push(("$top", top.to_string()));
    with_query(collection, &q)
}

fn to_object(v: Value) -> Result<TargetObject, String> {
    let Value::Object(mut m) = v else {
        return Err("collection item is not an object".into());
    };
    let id = match m.remove("id") {
        Some(Value::String(s)) => s,
        _ => return Err("object without id".into()),
    };
    m.retain(|k, _| !k.starts_with("@odata"));
    Ok(TargetObject {
        id,
        members: Vec::new(),
        props: m.into(),
    })
}

fn decode_err(path: &str, m: impl Into<String>) -> GraphError {
    GraphError::Decode {
        method: "GET".into(),
        path: path.split('?').next().unwrap_or(path).to_string(),
        message: m.into(),
    }
}

/// `value[]` and `@odata.nextLink` of one page.
fn page_parts(path: &str, body: &Value) -> Result<(Vec<Value>, Option<String>), GraphError> {
    let items = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| decode_err(path, "page without value[]"))?
        .clone();
    let next = body
        .get("@odata.nextLink")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((items, next))
}

impl GraphClient {
    /// GETs `path` and every `@odata.nextLink` after it; all items in order.
    pub async fn get_all_pages(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let mut out = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(p) = next {
            let resp = self
                .execute(&GraphRequest::get(p.clone()), RetryMode::Idempotent)
                .await?;
            let (items, n) = page_parts(&p, &resp.body)?;
            out.extend(items);
            next = n;
        }
        Ok(out)
    }

    /// A next link relative to the base URL, for use inside `$batch`.
    fn batch_relative(&self, link: &str) -> String {
        match link.strip_prefix(self.base_url()) {
            Some(rest) => rest.to_string(),
            None => {
                // Another host (Graph returns absolute links with its own host):
                // keep path and query after the version segment.
                let after_scheme = link.split_once("://").map_or(link, |(_, r)| r);
                let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
                match path.get(1..).and_then(|p| p.find('/')) {
                    Some(i) => path[i + 1..].to_string(),
                    None => path.to_string(),
                }
            }
        }
    }

    /// Member ids of many groups: `GET /groups/{id}/members?$select=id&$top=999`
    /// packed 20 per `$batch` (250 requests for 5,000 groups), following next links.
    pub async fn group_member_ids(
        &self,
        group_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, GraphError> {
        let mut members: HashMap<String, Vec<String>> =
            group_ids.iter().map(|g| (g.clone(), Vec::new())).collect();
        // (group index, url)
        let mut pending: Vec<(usize, String)> = group_ids
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    i,
                    list_path(&format!("/groups/{g}/members"), &["id".into()], PAGE_SIZE),
                )
            })
            .collect();
        while !pending.is_empty() {
            let items: Vec<BatchItem> = pending
                .iter()
                .map(|(i, url)| BatchItem::get(i.to_string(), url.clone()))
                .collect();
            let responses = self.batch_get_all(items).await?;
            let mut next_round = Vec::new();
            for (i, url) in &pending {
                let r = responses
                    .get(&i.to_string())
                    .ok_or_else(|| decode_err(url, "missing batch response"))?;
                if !r.is_success() {
                    let (code, message) = r.error();
                    return Err(GraphError::Api {
                        method: "GET".into(),
                        path: url.split('?').next().unwrap_or(url).to_string(),
                        status: r.status,
                        code,
                        message,
                        retry_after: None,
                    });
                }
                let (vals, next) = page_parts(url, &r.body)?;
                let list = members.entry(group_ids[*i].clone()).or_default();
                for v in vals {
                    if let Some(id) = v.get("id").and_then(Value::as_str) {
                        list.push(id.to_string());
                    }
                }
                if let Some(n) = next {
                    next_round.push((*i, self.batch_relative(&n)));
                }
            }
            pending = next_round;
        }
        Ok(members)
    }

    async fn directory_role_members(&self) -> Result<Option<Vec<String>>, GraphError> {
        let roles = match self.get_all_pages("/directoryRoles?$select=id").await {
            Ok(r) => r,
            Err(e) if matches!(e.status(), Some(403) | Some(404)) => {
                tracing::warn!(error = %e, "cannot read directory roles; adoption will not exclude role holders");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let ids: Vec<String> = roles
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let items: Vec<BatchItem> = ids
            .iter()
            .enumerate()
            .map(|(i, r)| {
                BatchItem::get(
                    i.to_string(),
                    list_path(
                        &format!("/directoryRoles/{r}/members"),
                        &["id".into()],
                        PAGE_SIZE,
                    ),
                )
            })
            .collect();
        let resp = self.batch_get_all(items).await?;
        let mut out = Vec::new();
        for i in 0..ids.len() {
            let Some(r) = resp.get(&i.to_string()) else {
                continue;
            };
            if r.status == 403 {
                tracing::warn!("cannot read directory role members (403); skipping");
                return Ok(None);
            }
            if !r.is_success() {
                let (code, message) = r.error();
                return Err(GraphError::Api {
                    method: "GET".into(),
                    path: "/directoryRoles/{id}/members".into(),
                    status: r.status,
                    code,
                    message,
                    retry_after: None,
                });
            }
            let (vals, next) = page_parts("/directoryRoles/members", &r.body)?;
            for v in vals {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    out.push(id.to_string());
                }
            }
            if let Some(n) = next {
                for v in self.get_all_pages(&n).await? {
                    if let Some(id) = v.get("id").and_then(Value::as_str) {
                        out.push(id.to_string());
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(Some(out))
    }
}

fn objects(path: &str, vals: Vec<Value>) -> Result<Vec<TargetObject>, GraphError> {
    vals.into_iter()
        .map(|v| to_object(v).map_err(|m| decode_err(path, m)))
        .collect()
}

/// Reads everything the planner needs from Entra. Any failed read fails the whole
/// snapshot (directory roles excepted: a 403 there only logs a warning).
pub async fn read_snapshot(
    client: &GraphClient,
    opts: &ReadOptions,
) -> Result<TargetSnapshot, GraphError> {
    let app = opts
        .extension_app_id
        .clone()
        .unwrap_or_else(|| crate::model::target::DEFAULT_EXTENSION_APP_ID.to_string());
    let ext = ExtensionNames::for_app(&app);
    let users_path = list_path("/users", &user_select(opts, &ext), PAGE_SIZE);
    let groups_path = list_path("/groups", &group_select(opts, &ext), PAGE_SIZE);
    let deleted_path = list_path(
        "/directory/deletedItems/microsoft.graph.user",
        &user_select(opts, &ext),
        PAGE_SIZE,
    );
    let (users, groups, domains, skus, deleted) = tokio::try_join!(
        client.get_all_pages(&users_path),
        client.get_all_pages(&groups_path),
        client.get_all_pages("/domains"),
        client.get_all_pages("/subscribedSkus"),
        client.get_all_pages(&deleted_path),
    )?;
    let users = objects("/users", users)?;
    let mut groups = objects("/groups", groups)?;
    let deleted_users = objects("/directory/deletedItems", deleted)?;
    let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let (mut members, roles) = tokio::try_join!(client.group_member_ids(&group_ids), async {
        if opts.skip_directory_roles {
            Ok(None)
        } else {
            client.directory_role_members().await
        }
    })?;
    for g in &mut groups {
        g.members = members.remove(&g.id).unwrap_or_default();
        g.members.sort();
    }
    let domains = domains
        .into_iter()
        .map(|d| {
            serde_json::from_value::<TenantDomain>(d)
                .map_err(|e| decode_err("/domains", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let subscribed_skus = skus
        .into_iter()
        .map(|s| {
            let m: Map<String, Value> = s.as_object().cloned().unwrap_or_default();
            serde_json::from_value::<SubscribedSku>(Value::Object(m))
                .map_err(|e| decode_err("/subscribedSkus", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TargetSnapshot {
        tenant: Some(client.tenant_id().to_string()),
        extension_app_id: Some(app),
        domains: Some(domains),
        subscribed_skus,
        users,
        groups,
        deleted_users,
        directory_role_members: roles.unwrap_or_default(),
    })
}

/// Chunk helper shared with apply: how many `$batch` requests `n` items need.
pub fn batches_needed(n: usize) -> usize {
    n.div_ceil(MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_lists_include_ownership_props_once() {
        let ext = ExtensionNames::for_app("11111111-2222-3333-4444-555555555555");
        let o = ReadOptions {
            user_select: vec![
                "displayName".into(),
                "id".into(),
                "onPremisesImmutableId".into(),
            ],
            group_select: vec!["displayName".into()],
            ..Default::default()
        };
        let u = user_select(&o, &ext);
        assert_eq!(
            u,
            vec![
                "id",
                "onPremisesSyncEnabled",
                "onPremisesImmutableId",
                "extension_11111111222233334444555555555555_ad2entraAnchor",
                "extension_11111111222233334444555555555555_ad2entraOrphanedAt",
                "assignedLicenses",
                "displayName"
            ]
        );
        assert_eq!(group_select(&o, &ext).last().unwrap(), "displayName");
        assert_eq!(
            list_path("/users", &["id".into(), "mail".into()], 999),
            "/users?$select=id,mail&$top=999"
        );
        assert_eq!(batches_needed(41), 3);
    }

    #[test]
    fn object_conversion_drops_odata_keys() {
        let o = to_object(
            serde_json::json!({"@odata.type":"#microsoft.graph.user","id":"u","displayName":"A"}),
        )
        .unwrap();
        assert_eq!(o.id, "u");
        assert_eq!(o.props.len(), 1);
        assert!(to_object(serde_json::json!({"displayName":"A"})).is_err());
    }
}
