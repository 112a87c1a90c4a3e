//! The reconciler's edges, each behind a small trait so the loop does not care whether
//! AD is a live DC or an LDIF file, Entra is Graph or a snapshot, and the policy is a
//! file or a git commit. The loop only sees snapshots, deltas, plans and reports.

use super::errors::CycleError;
use super::status::AttemptedRevision;
use crate::ad::ldap::{DeltaRead, LdapConfig, ReadRequest, Watermark};
use crate::apply::{ApplyOptions, ApplyReport};
use crate::entra::graph::{GraphClient, ReadOptions, StatsSnapshot};
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

/// Active Directory, as the loop reads it.
pub trait AdEdge: Send + Sync {
    /// The server (for logs, status and the watermark key).
    fn server(&self) -> String;
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
        policy: &'a LoadedPolicy,
        since: &'a Watermark,
    ) -> BoxFut<'a, Result<Option<DeltaRead>, CycleError>>;
    /// The LDAP connection, when there is one (the change watcher uses it).
    fn ldap_config(&self) -> Option<&LdapConfig> {
        None
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
        policy: &'a LoadedPolicy,
        snapshot: &'a mut TargetSnapshot,
        links: &'a GraphDeltaState,
    ) -> BoxFut<'a, Result<Option<GraphDeltaState>, CycleError>>;
    /// Applies a plan; `None` when this edge cannot write (a snapshot file).
    fn apply<'a>(
        &'a self,
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

/// A live domain controller.
pub struct LdapAd {
    pub cfg: LdapConfig,
}

impl AdEdge for LdapAd {
    fn server(&self) -> String {
        self.cfg.url.clone()
    }

    fn prepare<'a>(
        &'a self,
        policy: &'a mut LoadedPolicy,
        state: &'a mut State,
    ) -> BoxFut<'a, Result<(), CycleError>> {
        Box::pin(async move {
            // Warnings from the last follow are replaced, not accumulated.
            policy.warnings.retain(|w| w.code != "scope-dn-renamed");
            crate::ad::scope_follow::follow_named_dns(policy, &self.cfg, state).await?;
            Ok(())
        })
    }

    fn read_full<'a>(&'a self, policy: &'a LoadedPolicy) -> BoxFut<'a, Result<AdFull, CycleError>> {
        Box::pin(async move {
            // The watermark is taken before the objects: a change racing with the read
            // is seen again by the next delta, never lost.
            let watermark = crate::ad::ldap::read_watermark(&self.cfg).await?;
            let req = ReadRequest {
                attributes: policy.source_attributes(),
            };
            let snapshot = crate::ad::ldap::read_full(&self.cfg, &req).await?;
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
            Ok(Some(
                crate::ad::ldap::read_delta(&self.cfg, &req, since).await?,
            ))
        })
    }

    fn ldap_config(&self) -> Option<&LdapConfig> {
        Some(&self.cfg)
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

    fn read_full<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
    ) -> BoxFut<'a, Result<AdFull, CycleError>> {
        Box::pin(async move {
            let path = self.path.clone();
            let snapshot = tokio::task::spawn_blocking(move || {
                crate::ad::ldif::read_ldif_file(&path).map_err(|e| CycleError::Ldif {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })
            })
            .await
            .map_err(|e| CycleError::Internal(format!("LDIF reader task: {e}")))??;
            Ok(AdFull {
                snapshot,
                watermark: None,
            })
        })
    }

    fn read_delta<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _since: &'a Watermark,
    ) -> BoxFut<'a, Result<Option<DeltaRead>, CycleError>> {
        Box::pin(async { Ok(None) })
    }
}

// ---------------------------------------------------------------------------------
// Entra: Microsoft Graph

/// The tenant, through Graph.
pub struct GraphEntra {
    pub client: GraphClient,
    /// The app whose directory extension carries the anchor.
    pub extension_app_id: Option<String>,
}

impl GraphEntra {
    fn read_options(&self, policy: &LoadedPolicy) -> ReadOptions {
        ReadOptions::for_policy(policy, self.extension_app_id.clone())
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
            let opts = self.read_options(policy);
            let mut snap = crate::entra::graph::read_snapshot(&self.client, &opts).await?;
            snap.extension_app_id = opts.extension_app_id.or(snap.extension_app_id);
            Ok((snap, None))
        })
    }

    fn read_delta<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _snapshot: &'a mut TargetSnapshot,
        _links: &'a GraphDeltaState,
    ) -> BoxFut<'a, Result<Option<GraphDeltaState>, CycleError>> {
        Box::pin(async { Ok(None) })
    }

    fn apply<'a>(
        &'a self,
        plan: &'a Plan,
        opts: ApplyOptions,
    ) -> Option<BoxFut<'a, Result<ApplyReport, CycleError>>> {
        Some(Box::pin(async move {
            Ok(crate::apply::apply_plan(plan, &self.client, &opts).await?)
        }))
    }

    fn stats(&self) -> StatsSnapshot {
        self.client.stats().snapshot()
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

    fn read_delta<'a>(
        &'a self,
        _policy: &'a LoadedPolicy,
        _snapshot: &'a mut TargetSnapshot,
        _links: &'a GraphDeltaState,
    ) -> BoxFut<'a, Result<Option<GraphDeltaState>, CycleError>> {
        Box::pin(async { Ok(None) })
    }

    fn apply<'a>(
        &'a self,
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
