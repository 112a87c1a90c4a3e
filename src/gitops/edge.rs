//! The reconciler's policy edge for a git branch: each poll fetches the branch and, when
//! its head moved, loads the policy at the new commit. The revision is the commit SHA.
//!
//! A commit that does not load (invalid policy, refused signature) is reported as an
//! invalid revision with its diagnostics, once; the loop keeps the last good policy.
//! A repository that cannot be reached is an error of the poll (nothing changes),
//! except at start, where the cached clone's head is used so a restart does not wait
//! for the git server.

use super::error::PolicyAtCommitError;
use super::source::GitPolicySource;
use crate::policy::LoadedPolicy;
use crate::reconciler::edges::{BoxFut, PolicyEdge, PolicyUpdate};
use crate::reconciler::status::AttemptedRevision;
use std::sync::{Arc, Mutex, PoisonError};

/// A policy that lives on a git branch.
pub struct GitPolicy {
    source: Arc<Mutex<GitPolicySource>>,
    describe: String,
    /// The last commit reported (valid or not).
    last: Option<String>,
}

impl GitPolicy {
    pub fn new(source: GitPolicySource) -> Self {
        let cfg = source.config();
        let describe = format!("git {}@{}:{}", cfg.url, cfg.branch, cfg.policy_path);
        Self {
            source: Arc::new(Mutex::new(source)),
            describe,
            last: None,
        }
    }
}

/// What one poll found: nothing new, or a new head and the policy at it.
type Found = Option<(String, Result<LoadedPolicy, PolicyAtCommitError>)>;

fn poll_blocking(source: &mut GitPolicySource, last: Option<&str>) -> Result<Found, String> {
    let head = match source.fetch() {
        Ok(head) => head,
        Err(e) => match (last, source.cached_head()) {
            (None, Some(cached)) => {
                tracing::warn!(error = %e, commit = %cached, "policy repository unreachable at start; using the cached commit");
                cached
            }
            _ => return Err(e.to_string()),
        },
    };
    if last == Some(head.as_str()) {
        return Ok(None);
    }
    let loaded = source.load(&head);
    Ok(Some((head, loaded)))
}

impl PolicyEdge for GitPolicy {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn poll(&mut self) -> BoxFut<'_, Result<PolicyUpdate, String>> {
        Box::pin(async move {
            let source = self.source.clone();
            let last = self.last.clone();
            let found = tokio::task::spawn_blocking(move || {
                let mut source = source.lock().unwrap_or_else(PoisonError::into_inner);
                poll_blocking(&mut source, last.as_deref())
            })
            .await
            .map_err(|e| format!("policy fetch task: {e}"))??;
            let Some((commit, loaded)) = found else {
                return Ok(PolicyUpdate::Unchanged);
            };
            let update = match loaded {
                Ok(policy) => PolicyUpdate::Valid(Box::new(policy)),
                // the commit could not be read from the cache: try again next poll
                Err(PolicyAtCommitError::Git(e)) => return Err(e.to_string()),
                Err(e) => {
                    tracing::warn!(commit = %commit, error = %e, "policy commit refused");
                    PolicyUpdate::Invalid(AttemptedRevision {
                        revision: commit.clone(),
                        valid: false,
                        diagnostics: e.diagnostics(),
                    })
                }
            };
            self.last = Some(commit);
            Ok(update)
        })
    }
}
