//! The reconciler's edges, each behind a small trait so the loop does not care whether
//! AD is a live DC or an LDIF file, Entra is Graph or a snapshot, and the policy is a
//! file or a git commit. The loop only sees snapshots, deltas, plans and reports.

use super::errors::CycleError;
use super::status::AttemptedRevision;
use crate::ad::ldap::{DeltaRead, LdapConfig, ReadRequest, Watermark};
use crate::apply::{ApplyOptions, ApplyReport};
use crate::entra::graph::{DeltaLinks, GraphClient, ReadOptions, StatsSnapshot};
use crate::model::{SourceSnapshot, TargetSnapshot};
use crate::plan::Plan;
use crate::policy::LoadedPolicy;
use crate::state::{GraphDeltaState, State};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed, sendable future: the traits stay object-safe.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// AD as a full read returns it.
pub struct AdFull {
    pub snapshot: SourceSnapshot,
    /// Where a delta read can resume; `None` when the source has no change tracking.
    pub watermark: Option<Watermark>,
}

/// Active Directory, as the loop reads it: one edge per source (domain or forest) of
/// the policy, or one LDIF file for all of them.
pub trait AdEdge: Send + Sync {
    /// The server (for logs, status and the watermark key): the DC picked by
    /// [`AdEdge::connect`], or the file.
    fn server(&self) -> String;
    /// The policy's name of the source this edge reads (for logs, errors and the
    /// watermark key).
    fn source_name(&self) -> String {
        self.server()
    }
    /// The index of that source in the policy (`SourceObject::origin` of what it reads).
    fn origin(&self) -> u16 {
        0
    }
    /// Picks the DC this cycle reads from (the first of the source's DCs that connects
    /// and binds) and returns its URL. Everything until the next call reads that DC.
    fn connect(&self) -> BoxFut<'_, Result<String, CycleError>> {
        let server = self.server();
        Box::pin(async move { Ok(server) })
    }
    /// Resolves the OUs and groups the policy names, following renames by objectGUID
    /// (remembered in `state`). Runs before every read.
    fn prepare<'a>(
        &'a self,
        policy: &'a mut LoadedPolicy,
        state: &'a mut State,
    ) -> BoxFut<'a, Result<(), CycleError>>;
    /// Everything in scope of the policy's base DN.
    fn read_full<'a>(&'a self, policy: &'a LoadedPolicy) -> BoxFut<'a, Result<AdFull, CycleError>>;
    /// What changed since `since`; `Ok(None)` when this source cannot do deltas.
    fn read_delta<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _since: &'a Watermark,
    ) -> BoxFut<'a, Result<Option<DeltaRead>, CycleError>> {
        Box::pin(async { Ok(None) })
    }
    /// The LDAP connection, when there is one (the change watcher uses it).
    fn ldap_config(&self) -> Option<&LdapConfig> {
        None
    }
    /// The forest's tombstone lifetime: a delta watermark older than it cannot see
    /// every deletion. `None` when the source has no tombstones.
    fn tombstone_lifetime(&self) -> BoxFut<'_, Result<Option<std::time::Duration>, CycleError>> {
        Box::pin(async { Ok(None) })
    }
}

/// Entra, as the loop reads and writes it.
pub trait EntraEdge: Send + Sync {
    fn describe(&self) -> String;
    /// Everything the planner needs, and where a delta can resume (if supported).
    fn read_full<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
    ) -> BoxFut<'a, Result<(TargetSnapshot, Option<GraphDeltaState>), CycleError>>;
    /// Folds the changes since `links` into `snapshot`; `Ok(None)` when deltas are not
    /// supported (the loop then reads in full).
    fn read_delta<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _snapshot: &'a mut TargetSnapshot,
        _links: &'a GraphDeltaState,
    ) -> BoxFut<'a, Result<Option<GraphDeltaState>, CycleError>> {
        Box::pin(async { Ok(None) })
    }
    /// Applies a plan made from `policy`; `None` when this edge cannot write (a
    /// snapshot file).
    fn apply<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        plan: &'a Plan,
        opts: ApplyOptions,
    ) -> Option<BoxFut<'a, Result<ApplyReport, CycleError>>>;
    /// Request counters (for per-cycle figures).
    fn stats(&self) -> StatsSnapshot;
}

/// A new policy revision, as a [`PolicyEdge`] reports it.
pub enum PolicyUpdate {
    Unchanged,
    Valid(Box<LoadedPolicy>),
    Invalid(AttemptedRevision),
}

/// Where the policy comes from: files on disk, or a git branch.
pub trait PolicyEdge: Send {
    /// `git URL@branch:path`, or the file path.
    fn describe(&self) -> String;
    /// Looks for a new revision (a new commit, or changed files). The first call
    /// reports the current revision. An error means the source could not be read at all
    /// (the running policy stays).
    fn poll(&mut self) -> BoxFut<'_, Result<PolicyUpdate, String>>;
}

/// The revision a loaded policy reports: its commit, else its content hash.
pub fn revision_of(policy: &LoadedPolicy) -> String {
    policy
        .commit
        .clone()
        .unwrap_or_else(|| policy.content_hash.clone())
}

// ---------------------------------------------------------------------------------
// AD: live LDAP

/// One source of the policy, read from its domain controllers over LDAP.
pub struct LdapAd {
    /// The policy's name of the source.
    pub name: String,
    /// Its index in the policy's sources.
    pub origin: u16,
    /// Its first DC as `url`, the others as `fallback_urls`.
    pub cfg: LdapConfig,
    /// The DC [`AdEdge::connect`] picked, which the cycle's reads use.
    picked: std::sync::Mutex<Option<LdapConfig>>,
}

impl LdapAd {
    pub fn new(name: impl Into<String>, origin: u16, cfg: LdapConfig) -> Self {
        LdapAd {
            name: name.into(),
            origin,
            cfg,
            picked: std::sync::Mutex::new(None),
        }
    }

    /// The DC to read: the one picked, else the first.
    fn dc(&self) -> LdapConfig {
        let picked = match self.picked.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        picked.unwrap_or_else(|| {
            let mut c = self.cfg.clone();
            c.fallback_urls.clear();
            c
        })
    }
}

/// One LDAP edge per source of the policy, in policy order.
pub fn ldap_edges(policy: &LoadedPolicy) -> Result<Vec<Box<dyn AdEdge>>, CycleError> {
    if policy.sources.is_empty() {
        return Err(crate::ad::ldap::SourceConfigError::Missing.into());
    }
    policy
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| -> Result<Box<dyn AdEdge>, CycleError> {
            let cfg = LdapConfig::for_source(s)?;
            let origin =
                u16::try_from(i).map_err(|_| CycleError::Config("too many sources".into()))?;
            Ok(Box::new(LdapAd::new(s.name.clone(), origin, cfg)))
        })
        .collect()
}

impl AdEdge for LdapAd {
    fn server(&self) -> String {
        self.dc().url
    }

    fn source_name(&self) -> String {
        self.name.clone()
    }

    fn origin(&self) -> u16 {
        self.origin
    }

    fn connect(&self) -> BoxFut<'_, Result<String, CycleError>> {
        Box::pin(async move {
            let dc = crate::ad::ldap::pick_dc(&self.cfg).await?;
            let url = dc.url.clone();
            match self.picked.lock() {
                Ok(mut p) => *p = Some(dc),
                Err(poisoned) => *poisoned.into_inner() = Some(dc),
            }
            Ok(url)
        })
    }

    fn prepare<'a>(
        &'a self,
        policy: &'a mut LoadedPolicy,
        state: &'a mut State,
    ) -> BoxFut<'a, Result<(), CycleError>> {
        Box::pin(async move {
            let dc = self.dc();
            crate::ad::scope_follow::follow_named_dns_of(policy, self.origin, &dc, state).await?;
            Ok(())
        })
    }

    fn read_full<'a>(&'a self, policy: &'a LoadedPolicy) -> BoxFut<'a, Result<AdFull, CycleError>> {
        Box::pin(async move {
            let dc = self.dc();
            // The watermark is taken before the objects: a change racing with the read
            // is seen again by the next delta, never lost.
            let watermark = crate::ad::ldap::read_watermark(&dc).await?;
            let req = ReadRequest {
                attributes: policy.source_attributes(),
            };
            let mut snapshot = crate::ad::ldap::read_full(&dc, &req).await?;
            crate::sources::tag(&mut snapshot, self.origin, &self.name);
            Ok(AdFull {
                snapshot,
                watermark: Some(watermark),
            })
        })
    }

    fn read_delta<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        since: &'a Watermark,
    ) -> BoxFut<'a, Result<Option<DeltaRead>, CycleError>> {
        Box::pin(async move {
            let req = ReadRequest {
                attributes: policy.source_attributes(),
            };
            let mut delta = crate::ad::ldap::read_delta(&self.dc(), &req, since).await?;
            for o in &mut delta.changed {
                o.origin = self.origin;
            }
            Ok(Some(delta))
        })
    }

    fn ldap_config(&self) -> Option<&LdapConfig> {
        Some(&self.cfg)
    }

    fn tombstone_lifetime(&self) -> BoxFut<'_, Result<Option<std::time::Duration>, CycleError>> {
        Box::pin(async move {
            Ok(Some(
                crate::ad::ldap::read_tombstone_lifetime(&self.dc()).await?,
            ))
        })
    }
}

// ---------------------------------------------------------------------------------
// AD: an LDIF file (smoke runs, demos)

/// An LDIF export read in full every cycle (no change tracking).
pub struct LdifAd {
    pub path: PathBuf,
}

impl AdEdge for LdifAd {
    fn server(&self) -> String {
        self.path.display().to_string()
    }

    fn prepare<'a>(
        &'a self,
        _policy: &'a mut LoadedPolicy,
        _state: &'a mut State,
    ) -> BoxFut<'a, Result<(), CycleError>> {
        Box::pin(async { Ok(()) })
    }

    fn read_full<'a>(&'a self, policy: &'a LoadedPolicy) -> BoxFut<'a, Result<AdFull, CycleError>> {
        Box::pin(async move {
            let path = self.path.clone();
            let mut snapshot = tokio::task::spawn_blocking(move || {
                crate::ad::ldif::read_ldif_file(&path).map_err(|e| CycleError::Ldif {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            })
            .await
            .map_err(|e| CycleError::Internal(format!("LDIF reader task: {e}")))??;
            // One file may hold every source's objects: each goes to the source whose
            // base DN holds it.
            crate::sources::tag_by_base_dn(&mut snapshot, policy);
            Ok(AdFull {
                snapshot,
                watermark: None,
            })
        })
    }
}

// ---------------------------------------------------------------------------------
// Entra: Microsoft Graph

/// The tenant, through Graph.
pub struct GraphEntra {
    pub client: GraphClient,
    /// `AD2ENTRA_EXTENSION_APP_ID`, when set: the policy's `target.extensionAppId` wins,
    /// and a different value is an error.
    pub env_extension_app_id: Option<String>,
}

impl GraphEntra {
    /// The app whose directory extension carries the anchor, for this policy.
    fn extension_app(&self, policy: &LoadedPolicy) -> Result<String, CycleError> {
        crate::model::target::resolve_extension_app(
            policy.policy.target.extension_app_id.as_deref(),
            self.env_extension_app_id.as_deref(),
            Some(self.client.client_id()),
        )
        .map(|(app, _)| app)
        .map_err(|e| CycleError::Config(e.to_string()))
    }

    fn read_options(&self, policy: &LoadedPolicy) -> Result<ReadOptions, CycleError> {
        Ok(ReadOptions::for_policy(
            policy,
            Some(self.extension_app(policy)?),
        ))
    }
}

impl EntraEdge for GraphEntra {
    fn describe(&self) -> String {
        format!(
            "{} (tenant {})",
            self.client.base_url(),
            self.client.tenant_id()
        )
    }

    fn read_full<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
    ) -> BoxFut<'a, Result<(TargetSnapshot, Option<GraphDeltaState>), CycleError>> {
        Box::pin(async move {
            let opts = self.read_options(policy)?;
            let (mut snap, links) =
                crate::entra::graph::read_full_with_links(&self.client, &opts).await?;
            snap.extension_app_id = opts.extension_app_id.or(snap.extension_app_id);
            Ok((snap, Some(to_state(links))))
        })
    }

    fn read_delta<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        snapshot: &'a mut TargetSnapshot,
        links: &'a GraphDeltaState,
    ) -> BoxFut<'a, Result<Option<GraphDeltaState>, CycleError>> {
        Box::pin(async move {
            let opts = self.read_options(policy)?;
            let links = DeltaLinks {
                users: links.users.clone(),
                groups: links.groups.clone(),
                selection: links.selection.clone(),
            };
            let (new, summary) =
                crate::entra::graph::read_delta(&self.client, &opts, snapshot, &links).await?;
            tracing::info!(
                users_added = summary.users_added,
                users_updated = summary.users_updated,
                users_removed = summary.users_removed,
                groups_added = summary.groups_added,
                groups_updated = summary.groups_updated,
                groups_removed = summary.groups_removed,
                members_added = summary.members_added,
                members_removed = summary.members_removed,
                "Graph delta folded into the last snapshot"
            );
            Ok(Some(to_state(new)))
        })
    }

    fn apply<'a>(
        &'a self,
        policy: &'a LoadedPolicy,
        plan: &'a Plan,
        mut opts: ApplyOptions,
    ) -> Option<BoxFut<'a, Result<ApplyReport, CycleError>>> {
        Some(Box::pin(async move {
            opts.extension_app_id = Some(self.extension_app(policy)?);
            Ok(crate::apply::apply_plan(plan, &self.client, &opts).await?)
        }))
    }

    fn stats(&self) -> StatsSnapshot {
        self.client.stats().snapshot()
    }
}

fn to_state(l: DeltaLinks) -> GraphDeltaState {
    GraphDeltaState {
        users: l.users,
        groups: l.groups,
        selection: l.selection,
        taken_at: chrono::Utc::now(),
    }
}

// ---------------------------------------------------------------------------------
// Entra: a snapshot file (smoke runs; never writes)

/// A JSON target snapshot, re-read every cycle. It cannot be written: the loop runs
/// plan-only against it.
pub struct SnapshotEntra {
    pub path: PathBuf,
}

impl EntraEdge for SnapshotEntra {
    fn describe(&self) -> String {
        format!("snapshot {}", self.path.display())
    }

    fn read_full<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
    ) -> BoxFut<'a, Result<(TargetSnapshot, Option<GraphDeltaState>), CycleError>> {
        Box::pin(async move {
            let path = self.path.clone();
            let snap = tokio::task::spawn_blocking(move || {
                let err = |message: String| CycleError::Snapshot {
                    path: path.display().to_string(),
                    message,
                };
                let file = std::fs::File::open(&path).map_err(|e| err(e.to_string()))?;
                serde_json::from_reader::<_, TargetSnapshot>(std::io::BufReader::with_capacity(
                    1 << 20,
                    file,
                ))
                .map_err(|e| err(e.to_string()))
            })
            .await
            .map_err(|e| CycleError::Internal(format!("snapshot reader task: {e}")))??;
            Ok((snap, None))
        })
    }

    fn apply<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _plan: &'a Plan,
        _opts: ApplyOptions,
    ) -> Option<BoxFut<'a, Result<ApplyReport, CycleError>>> {
        None
    }

    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::default()
    }
}

// ---------------------------------------------------------------------------------
// Policy: files on disk

/// A policy file or directory, re-read at every poll: a changed content hash is a new
/// revision (a ConfigMap update, a `git pull` by another tool, an edit).
pub struct FilePolicy {
    pub path: PathBuf,
    last: Option<String>,
}

impl FilePolicy {
    pub fn new(path: PathBuf) -> Self {
        FilePolicy { path, last: None }
    }
}

/// The revision of an invalid policy read from files: a hash of the bytes, so the same
/// broken content is reported once.
fn files_revision(path: &std::path::Path) -> Option<String> {
    use sha2::{Digest, Sha256};
    let files = crate::policy::load::read_policy_files(path).ok()?;
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    Some(format!("sha256:{:x}", h.finalize()))
}

impl PolicyEdge for FilePolicy {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn poll(&mut self) -> BoxFut<'_, Result<PolicyUpdate, String>> {
        Box::pin(async move {
            let path = self.path.clone();
            let (raw, loaded) = tokio::task::spawn_blocking(move || {
                (files_revision(&path), crate::policy::load_path(&path))
            })
            .await
            .map_err(|e| format!("policy loader task: {e}"))?;
            let raw = raw.unwrap_or_default();
            if self.last.as_deref() == Some(raw.as_str()) {
                return Ok(PolicyUpdate::Unchanged);
            }
            self.last = Some(raw.clone());
            Ok(match loaded {
                Ok(p) => PolicyUpdate::Valid(Box::new(p)),
                Err(diagnostics) => PolicyUpdate::Invalid(AttemptedRevision {
                    revision: raw,
                    valid: false,
                    diagnostics,
                }),
            })
        })
    }
}
