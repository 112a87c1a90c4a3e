//! Reading a [`TargetSnapshot`] from Graph: users, groups with member ids, domains, and
//! the safety inputs ([`super::safety`]: SKUs, soft-deleted users, directory-role holders,
//! anchor extensions).
//!
//! A read either returns the whole snapshot or an error: a partial snapshot would look
//! like "objects vanished" to the planner and turn into deletes.

use super::GraphClient;
use super::batch::{BatchItem, MAX_BATCH};
use super::error::GraphError;
use super::http::{GraphRequest, RetryMode, with_query};
use super::safety;
use crate::model::target::{
    ExtensionNames, Readable, SafetyInput, TargetObject, TargetSnapshot, TenantDomain, Unreadable,
};
use serde_json::Value;
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
    /// Domains whose federation configuration to read (the policy's `federation:`).
    pub federation_domains: Vec<String>,
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
            group_select: with(
                &policy.group_mappings,
                // A group's hard match (`adopt: {by: immutableId}`) is by objectSid.
                if policy.policy.adopt.as_ref().map(|a| a.by)
                    == Some(crate::policy::model::AdoptBy::ImmutableId)
                {
                    &["mail", "proxyAddresses", "onPremisesSecurityIdentifier"]
                } else {
                    &["mail", "proxyAddresses"]
                },
            ),
            extension_app_id,
            skip_directory_roles: policy.policy.adopt.is_none(),
            federation_domains: policy.federation.iter().map(|f| f.domain.clone()).collect(),
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
        path: collection_of(path),
        message: m.into(),
    }
}

/// The collection a request path reads, without query (which may hold personal data in a
/// `$filter`) and without the Graph host of an absolute next link.
pub(crate) fn collection_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match path.split_once("://") {
        Some((_, rest)) => {
            let p = rest.find('/').map_or("", |i| &rest[i..]);
            // Drop the version segment (`/v1.0`, `/beta`) of an absolute link.
            match p.get(1..).and_then(|x| x.find('/')) {
                Some(i) => p[i + 1..].to_string(),
                None => p.to_string(),
            }
        }
        None => path.to_string(),
    }
}

/// One page of a collection: its items and the link it ends with, if any.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub next: Option<String>,
    pub delta: Option<String>,
}

/// Splits a page body into its parts (pure; takes the body to move its items out). A body
/// that is not an object with a `value` array is not a page.
pub(crate) fn parse_page(body: Value) -> Result<Page, String> {
    let Value::Object(mut m) = body else {
        return Err("the page is not a JSON object".into());
    };
    let items = match m.remove("value") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err("the page's value is not an array".into()),
        None => return Err("the page has no value[]".into()),
    };
    let mut link = |k: &str| match m.remove(k) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(format!("the page's {k} is not a string")),
    };
    Ok(Page {
        items,
        next: link("@odata.nextLink")?,
        delta: link("@odata.deltaLink")?,
    })
}

/// The error of a paged read that stopped after `pages` whole pages because `err` happened.
/// A first request that failed is reported as is (nothing was read yet, and callers look
/// at its status); anything later, or a page that could not be parsed, is an
/// [`GraphError::IncompleteRead`] naming the collection.
pub(crate) fn cut_short(collection: &str, pages: usize, err: GraphError) -> GraphError {
    if pages == 0 && !matches!(err, GraphError::Decode { .. }) {
        return err;
    }
    let reason = match &err {
        GraphError::Decode { message, .. } => {
            format!("page {} could not be read: {message}", pages + 1)
        }
        other => format!("page {} failed: {other}", pages + 1),
    };
    GraphError::IncompleteRead {
        collection: collection.to_string(),
        pages,
        reason,
        source: Some(Box::new(err)),
    }
}

/// An [`GraphError::IncompleteRead`] for a page that was not a page.
pub(crate) fn malformed(collection: &str, pages: usize, what: String) -> GraphError {
    GraphError::IncompleteRead {
        collection: collection.to_string(),
        pages,
        reason: format!("page {}: {what}", pages + 1),
        source: None,
    }
}

impl GraphClient {
    /// GETs one page of a paged read; `pages` were read before it.
    pub(crate) async fn get_page(
        &self,
        collection: &str,
        url: &str,
        pages: usize,
    ) -> Result<Page, GraphError> {
        let resp = self
            .execute(&GraphRequest::get(url), RetryMode::Idempotent)
            .await
            .map_err(|e| cut_short(collection, pages, e))?;
        parse_page(resp.body).map_err(|m| malformed(collection, pages, m))
    }

    /// GETs `path` and every `@odata.nextLink` after it; all items in order. Fails whole
    /// when any page fails ([`GraphError::IncompleteRead`] after the first): never returns
    /// the items of part of the pages.
    pub async fn get_all_pages(&self, path: &str) -> Result<Vec<Value>, GraphError> {
        let collection = collection_of(path);
        let mut out = Vec::new();
        let mut url = path.to_string();
        let mut pages = 0;
        loop {
            let page = self.get_page(&collection, &url, pages).await?;
            pages += 1;
            out.extend(page.items);
            match page.next {
                Some(n) if n == url => {
                    return Err(malformed(
                        &collection,
                        pages,
                        "the next link repeats the page it came with".into(),
                    ));
                }
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
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
    /// Fails whole when any group's members cannot be read to the end.
    pub async fn group_member_ids(
        &self,
        group_ids: &[String],
    ) -> Result<HashMap<String, Vec<String>>, GraphError> {
        let mut members: HashMap<String, Vec<String>> =
            group_ids.iter().map(|g| (g.clone(), Vec::new())).collect();
        // (group index, pages read, url)
        let mut pending: Vec<(usize, usize, String)> = group_ids
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    i,
                    0,
                    list_path(&format!("/groups/{g}/members"), &["id".into()], PAGE_SIZE),
                )
            })
            .collect();
        while !pending.is_empty() {
            let items: Vec<BatchItem> = pending
                .iter()
                .map(|(i, _, url)| BatchItem::get(i.to_string(), url.clone()))
                .collect();
            let mut responses = self.batch_get_all(items).await?;
            let mut next_round = Vec::new();
            for (i, pages, url) in pending {
                let collection = collection_of(url.as_str());
                let r = responses
                    .remove(&i.to_string())
                    .ok_or_else(|| malformed(&collection, pages, "no batch response".into()))?;
                if !r.is_success() {
                    let (code, message) = r.error();
                    let err = GraphError::Api {
                        method: "GET".into(),
                        path: collection.clone(),
                        status: r.status,
                        code,
                        message,
                        retry_after: None,
                    };
                    return Err(cut_short(&collection, pages, err));
                }
                let page = parse_page(r.body).map_err(|m| malformed(&collection, pages, m))?;
                let list = members.entry(group_ids[i].clone()).or_default();
                for v in page.items {
                    match v.get("id").and_then(Value::as_str) {
                        Some(id) => list.push(id.to_string()),
                        None => {
                            return Err(malformed(
                                &collection,
                                pages,
                                "a member without id".into(),
                            ));
                        }
                    }
                }
                if let Some(n) = page.next {
                    next_round.push((i, pages + 1, self.batch_relative(&n)));
                }
            }
            pending = next_round;
        }
        Ok(members)
    }
}

pub(crate) fn objects(path: &str, vals: Vec<Value>) -> Result<Vec<TargetObject>, GraphError> {
    vals.into_iter()
        .map(|v| to_object(v).map_err(|m| decode_err(path, m)))
        .collect()
}

/// The app id naming the extension attributes a read selects.
pub(crate) fn extension_app(opts: &ReadOptions) -> String {
    opts.extension_app_id
        .clone()
        .unwrap_or_else(|| crate::model::target::DEFAULT_EXTENSION_APP_ID.to_string())
}

/// The `$select` lists of users and groups. Without the anchor extension registered they
/// leave it out: Graph refuses a `$select` of an unregistered extension (and the planner
/// then refuses to plan, since nothing can be recognised as owned).
fn selects(
    opts: &ReadOptions,
    ext: &ExtensionNames,
    anchor_registered: &Readable<bool>,
) -> (Vec<String>, Vec<String>) {
    let mut users = user_select(opts, ext);
    let mut groups = group_select(opts, ext);
    if *anchor_registered != Readable::Read(true) {
        for select in [&mut users, &mut groups] {
            select.retain(|p| *p != ext.anchor && *p != ext.orphaned_at);
        }
    }
    (users, groups)
}

/// Users, and groups with their member ids: the bulk of a read, replaced by delta rounds
/// between full reads.
async fn read_users_and_groups(
    client: &GraphClient,
    users_select: &[String],
    groups_select: &[String],
) -> Result<(Vec<TargetObject>, Vec<TargetObject>), GraphError> {
    let users_path = list_path("/users", users_select, PAGE_SIZE);
    let groups_path = list_path("/groups", groups_select, PAGE_SIZE);
    let (users, groups) = tokio::try_join!(
        client.get_all_pages(&users_path),
        client.get_all_pages(&groups_path),
    )?;
    let users = objects("/users", users)?;
    let mut groups = objects("/groups", groups)?;
    let group_ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let mut members = client.group_member_ids(&group_ids).await?;
    for g in &mut groups {
        g.members = members.remove(&g.id).unwrap_or_default();
        g.members.sort();
    }
    Ok((users, groups))
}

/// Whether our anchor extension is registered, and other apps' ad2entra anchors.
type AnchorCheck = (
    Readable<bool>,
    Readable<Vec<crate::model::target::ForeignAnchor>>,
);

/// Everything but users and groups: the anchor extensions, domains, SKUs, soft-deleted
/// users, directory-role holders and federation, in a snapshot whose `users` and `groups`
/// are empty. Small, so a delta cycle reads them again whole.
pub(crate) async fn read_tenant_facts(
    client: &GraphClient,
    opts: &ReadOptions,
) -> Result<TargetSnapshot, GraphError> {
    let anchors = safety::anchor_extensions(client, &extension_app(opts)).await?;
    facts_with(client, opts, anchors).await
}

async fn facts_with(
    client: &GraphClient,
    opts: &ReadOptions,
    (anchor_registered, other_anchors): AnchorCheck,
) -> Result<TargetSnapshot, GraphError> {
    let app = extension_app(opts);
    let ext = ExtensionNames::for_app(&app);
    let (users_select, _) = selects(opts, &ext, &anchor_registered);
    let deleted_path = list_path(
        "/directory/deletedItems/microsoft.graph.user",
        &users_select,
        PAGE_SIZE,
    );
    let (domains, subscribed_skus, deleted_users, directory_role_members, federation) = tokio::try_join!(
        client.get_all_pages("/domains"),
        safety::subscribed_skus(client),
        safety::deleted_users(client, &deleted_path),
        async {
            if opts.skip_directory_roles {
                Ok(Readable::Unreadable(Unreadable::not_read(
                    SafetyInput::DirectoryRoles,
                )))
            } else {
                safety::directory_role_members(client).await
            }
        },
        super::federation::read_federation(client, &opts.federation_domains),
    )?;
    let domains = domains
        .into_iter()
        .map(|d| {
            serde_json::from_value::<TenantDomain>(d)
                .map_err(|e| decode_err("/domains", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TargetSnapshot {
        tenant: Some(client.tenant_id().to_string()),
        extension_app_id: Some(app),
        domains: Some(domains),
        subscribed_skus,
        users: Vec::new(),
        groups: Vec::new(),
        deleted_users,
        directory_role_members,
        anchor_registered,
        other_anchors,
        federation,
    })
}

/// Reads everything the planner needs from Entra. Any failed read fails the whole
/// snapshot; only a safety input Graph documents as refused (403) or absent is recorded as
/// not readable ([`super::safety`]), and the planner disables what depends on it.
pub async fn read_snapshot(
    client: &GraphClient,
    opts: &ReadOptions,
) -> Result<TargetSnapshot, GraphError> {
    // First the anchor extension: it decides what the user and group reads may select.
    let app = extension_app(opts);
    let anchors = safety::anchor_extensions(client, &app).await?;
    let (users_select, groups_select) = selects(opts, &ExtensionNames::for_app(&app), &anchors.0);
    let (mut snap, (users, groups)) = tokio::try_join!(
        facts_with(client, opts, anchors),
        read_users_and_groups(client, &users_select, &groups_select)
    )?;
    snap.users = users;
    snap.groups = groups;
    Ok(snap)
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
