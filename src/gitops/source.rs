//! [`GitPolicySource`]: a bare clone in a cache directory, fetched on demand, from
//! which the policy at a commit is read straight out of the commit's tree.
//!
//! The cache is only an optimisation: a cache that is corrupt or belongs to another
//! repository is set aside and cloned again, so the source never fails forever
//! because of its own files. The branch is followed as the remote has it, force
//! pushes included: the reconciler applies whatever the branch says.

use super::config::GitConfig;
use super::error::{GitError, PolicyAtCommitError};
use super::known_hosts::KnownHosts;
use super::transport::{Refusals, callbacks};
use super::tree::policy_files;
use super::url::{RemoteUrl, Transport};
use crate::policy::{self, LoadedPolicy};
use git2::{AutotagOption, ErrorClass, FetchOptions, Repository, RepositoryInitOptions};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const REMOTE: &str = "origin";

/// The policy repository, cloned into the cache directory.
pub struct GitPolicySource {
    cfg: GitConfig,
    remote: RemoteUrl,
    dir: PathBuf,
    repo: Repository,
}

impl std::fmt::Debug for GitPolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitPolicySource")
            .field("cfg", &self.cfg)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl GitPolicySource {
    /// Opens the cached clone for `cfg.url`, or creates an empty one (no network: the
    /// first [`fetch`](Self::fetch) downloads). A corrupt or foreign cache is set aside.
    pub fn open(cfg: GitConfig) -> Result<Self, GitError> {
        super::timeouts::ensure_network_timeouts();
        let remote = RemoteUrl::parse(&cfg.url)?;
        std::fs::create_dir_all(&cfg.cache_dir).map_err(|source| GitError::Io {
            path: cfg.cache_dir.clone(),
            source,
        })?;
        let dir = cfg.cache_dir.join(cache_name(&cfg.url));
        let repo = match open_cache(&dir, &cfg) {
            Ok(repo) => repo,
            Err(reason) => recreate(&dir, &cfg, &reason)?,
        };
        Ok(Self {
            cfg,
            remote,
            dir,
            repo,
        })
    }

    /// The configuration this source was opened with.
    pub fn config(&self) -> &GitConfig {
        &self.cfg
    }

    /// Where the bare clone lives.
    pub fn cache_path(&self) -> &Path {
        &self.dir
    }

    /// The branch head as of the last successful fetch (kept in the cache across
    /// restarts), without touching the network.
    pub fn cached_head(&self) -> Option<String> {
        self.repo
            .refname_to_id(&self.tracking_ref())
            .ok()
            .map(|o| o.to_string())
    }

    /// Fetches the branch and returns its head commit. The remote-tracking ref is
    /// force-updated to whatever the remote has (a force push is followed). A cache
    /// found broken while fetching is set aside and the fetch retried once.
    pub fn fetch(&mut self) -> Result<String, GitError> {
        match self.fetch_once() {
            Err(e) if !e.is_remote_side() && open_cache(&self.dir, &self.cfg).is_err() => {
                self.repo = recreate(&self.dir, &self.cfg, "the cache broke while fetching")?;
                self.fetch_once().map_err(|f| f.into_error(&self.dir))
            }
            other => other.map_err(|f| f.into_error(&self.dir)),
        }
    }

    /// The policy at `commit` (a SHA, full or abbreviated): the signature is checked first (when signed commits are
    /// required), then the files at the policy path are loaded from the commit's tree.
    /// The result carries the full commit SHA in [`LoadedPolicy::commit`].
    pub fn load(&self, commit: &str) -> Result<LoadedPolicy, PolicyAtCommitError> {
        let not_found = |message: String| GitError::CommitNotFound {
            commit: commit.to_string(),
            message,
        };
        let found = self
            .repo
            .revparse_single(commit)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| not_found(e.message().to_string()))?;
        let sha = found.id().to_string();
        if let Some(signatures) = &self.cfg.signatures {
            let signer = signatures.verify_commit(&self.repo, found.id())?;
            tracing::info!(
                commit = %sha,
                principals = %signer.principals,
                key = %signer.fingerprint,
                "policy commit signature verified"
            );
        }
        let tree = found
            .tree()
            .map_err(|e| not_found(e.message().to_string()))?;
        let invalid = |diagnostics| PolicyAtCommitError::Invalid {
            commit: sha.clone(),
            diagnostics,
        };
        let files = policy_files(&self.repo, &tree, &self.cfg.policy_path, &sha)
            .map_err(|d| invalid(vec![*d]))?;
        let mut loaded = policy::load(&self.cfg.policy_path, &files).map_err(invalid)?;
        loaded.commit = Some(sha);
        Ok(loaded)
    }

    fn tracking_ref(&self) -> String {
        tracking_ref(&self.cfg.branch)
    }

    fn fetch_once(&mut self) -> Result<String, FetchFailure> {
        let known_hosts = match &self.remote.transport {
            Transport::Ssh { .. } => {
                let file = self.cfg.auth.known_hosts.as_deref().ok_or_else(|| {
                    FetchFailure::Refused(GitError::Config(
                        "an ssh URL needs a known-hosts file: set AD2ENTRA_GIT_KNOWN_HOSTS".into(),
                    ))
                })?;
                Some(KnownHosts::read(file).map_err(|problem| {
                    FetchFailure::Refused(GitError::HostKey {
                        host: String::new(),
                        problem,
                    })
                })?)
            }
            _ => None,
        };
        let refusals = Refusals::default();
        let branch_ref = format!("refs/heads/{}", self.cfg.branch);
        let refspec = format!("+{branch_ref}:{}", self.tracking_ref());
        let mut remote = self
            .repo
            .remote_anonymous(&self.cfg.url)
            .map_err(|e| self.failure(e, &refusals))?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks(
            &self.remote.transport,
            &self.cfg.auth,
            known_hosts.as_ref(),
            &refusals,
        ));
        opts.download_tags(AutotagOption::None);
        remote
            .fetch(&[&refspec], Some(&mut opts), None)
            .map_err(|e| self.failure(e, &refusals))?;
        // The advertised head, not whatever the tracking ref held before: a branch
        // deleted on the remote must not keep serving its last commit.
        let head = remote
            .list()
            .map_err(|e| self.failure(e, &refusals))?
            .iter()
            .find(|h| h.name() == branch_ref)
            .map(|h| h.oid());
        let Some(head) = head else {
            if let Ok(mut stale) = self.repo.find_reference(&self.tracking_ref()) {
                let _ = stale.delete();
            }
            return Err(FetchFailure::Refused(GitError::BranchNotFound {
                url: self.cfg.url.clone(),
                branch: self.cfg.branch.clone(),
            }));
        };
        self.repo
            .reference(&self.tracking_ref(), head, true, "ad2entra: fetch")
            .map_err(|e| FetchFailure::Local(e.message().to_string()))?;
        tracing::debug!(url = %self.cfg.url, branch = %self.cfg.branch, commit = %head, "policy repository fetched");
        Ok(head.to_string())
    }

    /// Turns a libgit2 error into our error, preferring the reason a callback recorded.
    fn failure(&self, e: git2::Error, refusals: &Refusals) -> FetchFailure {
        if let Some((host, problem)) = refusals.host_key.borrow_mut().take() {
            return FetchFailure::Refused(GitError::HostKey { host, problem });
        }
        if let Some(hint) = refusals.auth.borrow_mut().take() {
            return FetchFailure::Refused(GitError::Auth {
                url: self.cfg.url.clone(),
                hint,
            });
        }
        let remote_side = matches!(
            e.class(),
            ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssl | ErrorClass::Ssh
        );
        // An untrusted certificate or refused credentials need a person, not a retry.
        // libgit2's OpenSSL stream reports a failed verification as a generic error of
        // class Ssl ("the SSL certificate is invalid", "hostname does not match
        // certificate"), so the message tells it from a handshake cut short.
        let refusal = matches!(
            e.code(),
            git2::ErrorCode::Auth | git2::ErrorCode::Certificate
        ) || (e.class() == ErrorClass::Ssl && e.message().contains("certificate"));
        let err = GitError::Fetch {
            url: self.cfg.url.clone(),
            branch: self.cfg.branch.clone(),
            message: e.message().to_string(),
            transient: remote_side && !refusal,
        };
        if remote_side || refusal {
            FetchFailure::Refused(err)
        } else {
            FetchFailure::Other(err)
        }
    }
}

/// A fetch failure, by whether the cache could be to blame.
enum FetchFailure {
    /// The remote side (network, server, credentials, host key): the cache is fine.
    Refused(GitError),
    /// Something else: check the cache.
    Other(GitError),
    /// Writing to the cache failed.
    Local(String),
}

impl FetchFailure {
    fn is_remote_side(&self) -> bool {
        matches!(self, FetchFailure::Refused(_))
    }

    fn into_error(self, cache: &Path) -> GitError {
        match self {
            FetchFailure::Refused(e) | FetchFailure::Other(e) => e,
            FetchFailure::Local(message) => GitError::Cache {
                path: cache.to_path_buf(),
                message,
            },
        }
    }
}

fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/{REMOTE}/{branch}")
}

/// One cache directory per URL, named by a hash (the URL may name a user).
fn cache_name(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("policy-{hex}.git")
}

/// Opens the cache if it is a bare repository of this URL whose tracking ref (if
/// any) leads to a readable commit and tree; says why not otherwise.
fn open_cache(dir: &Path, cfg: &GitConfig) -> Result<Repository, String> {
    if !dir.exists() {
        return Err("no cache yet".into());
    }
    let repo = Repository::open_bare(dir).map_err(|e| format!("not a git repository: {e}"))?;
    if !repo.is_bare() {
        return Err("not a bare repository".into());
    }
    let url = repo
        .config()
        .and_then(|c| c.get_string("ad2entra.url"))
        .map_err(|_| "not made by ad2entra".to_string())?;
    if url != cfg.url {
        return Err("a cache of another repository".into());
    }
    if let Ok(id) = repo.refname_to_id(&tracking_ref(&cfg.branch)) {
        let commit = repo
            .find_commit(id)
            .map_err(|e| format!("the cached head {id} is unreadable: {e}"))?;
        check_tree(&repo, &commit.tree().map_err(|e| e.to_string())?)?;
    }
    Ok(repo)
}

/// Every object under `tree` is readable (the policy is small: this is cheap).
fn check_tree(repo: &Repository, tree: &git2::Tree<'_>) -> Result<(), String> {
    let mut bad = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |_, entry| {
        match repo.find_object(entry.id(), None) {
            Ok(_) => git2::TreeWalkResult::Ok,
            Err(e) => {
                bad = Some(format!("object {} is unreadable: {e}", entry.id()));
                git2::TreeWalkResult::Abort
            }
        }
    })
    .map_err(|e| bad.clone().unwrap_or_else(|| e.to_string()))?;
    bad.map_or(Ok(()), Err)
}

/// Sets `dir` aside (one previous copy is kept, for inspection) and makes an empty
/// bare repository in its place.
fn recreate(dir: &Path, cfg: &GitConfig, reason: &str) -> Result<Repository, GitError> {
    let cache_err = |message: String| GitError::Cache {
        path: dir.to_path_buf(),
        message,
    };
    if dir.symlink_metadata().is_ok() {
        let aside = dir.with_extension("git.set-aside");
        tracing::warn!(cache = %dir.display(), aside = %aside.display(), reason, "policy cache set aside; cloning again");
        remove_any(&aside);
        if std::fs::rename(dir, &aside).is_err() {
            remove_any(dir);
        }
        if dir.symlink_metadata().is_ok() {
            return Err(cache_err(format!(
                "cannot set aside the broken cache ({reason})"
            )));
        }
    }
    let mut opts = RepositoryInitOptions::new();
    opts.bare(true).mkpath(true);
    let repo = Repository::init_opts(dir, &opts).map_err(|e| cache_err(e.to_string()))?;
    repo.config()
        .and_then(|mut c| c.set_str("ad2entra.url", &cfg.url))
        .map_err(|e| cache_err(e.to_string()))?;
    Ok(repo)
}

fn remove_any(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_can_move_to_a_blocking_thread() {
        fn send<T: Send>() {}
        send::<GitPolicySource>();
        send::<GitConfig>();
        send::<GitError>();
        send::<PolicyAtCommitError>();
    }

    #[test]
    fn cache_names_depend_on_the_url_only() {
        assert_eq!(cache_name("/a"), cache_name("/a"));
        assert_ne!(cache_name("/a"), cache_name("/b"));
        assert!(cache_name("https://u@h/x").starts_with("policy-"));
    }
}
