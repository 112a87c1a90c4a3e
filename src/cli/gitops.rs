//! `--policy-repo`: the policy from a git branch (`ad2entra::gitops`), for `run`, `plan`,
//! `explain` and `apply`.

use ad2entra::gitops::{GitConfig, GitPolicy, GitPolicySource, SignaturePolicy};
use ad2entra::policy::LoadedPolicy;
use ad2entra::reconciler::edges::PolicyEdge;
use anyhow::{Context, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the policy lives in git.
#[derive(Args, Debug, Clone)]
pub struct RepoArgs {
    /// Git repository holding the policy: a path, file://, https:// (token in
    /// AD2ENTRA_GIT_TOKEN), ssh:// or git@host:path (key in AD2ENTRA_GIT_SSH_KEY).
    #[arg(long, env = "AD2ENTRA_POLICY_REPO")]
    pub policy_repo: Option<String>,
    /// Branch of --policy-repo.
    #[arg(long, env = "AD2ENTRA_POLICY_BRANCH", default_value = "main")]
    pub branch: String,
    /// File or directory of the policy inside --policy-repo.
    #[arg(long, env = "AD2ENTRA_POLICY_PATH", default_value = ".")]
    pub policy_path: String,
    /// Where the clone of --policy-repo is kept (default: beside --state, else the user's
    /// cache directory).
    #[arg(long, env = "AD2ENTRA_GIT_CACHE")]
    pub git_cache: Option<PathBuf>,
    /// Refuse commits that are not signed by a key in --allowed-signers (SSH signatures).
    #[arg(long, requires = "allowed_signers")]
    pub require_signed_commits: bool,
    /// git's allowed-signers file (gpg.ssh.allowedSignersFile format).
    #[arg(long, env = "AD2ENTRA_ALLOWED_SIGNERS")]
    pub allowed_signers: Option<PathBuf>,
}

impl RepoArgs {
    fn source(&self, state: Option<&Path>) -> anyhow::Result<GitPolicySource> {
        let url = self.policy_repo.as_deref().context("--policy-repo")?;
        let mut cfg = GitConfig::from_env(url, &self.branch, &self.policy_path, self.cache(state))?;
        match (&self.allowed_signers, self.require_signed_commits) {
            (Some(file), true) => cfg.signatures = Some(SignaturePolicy::from_file(file)?),
            (Some(_), false) => tracing::warn!(
                "--allowed-signers is ignored without --require-signed-commits: unsigned commits load"
            ),
            (None, _) => {}
        }
        GitPolicySource::open(cfg).with_context(|| format!("cannot open the git cache for {url}"))
    }

    /// `--git-cache`, else beside the state file, else the user's cache directory.
    fn cache(&self, state: Option<&Path>) -> PathBuf {
        if let Some(dir) = &self.git_cache {
            return dir.clone();
        }
        if let Some(parent) = state.and_then(|s| s.parent()) {
            return parent.join("git-cache");
        }
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("ad2entra")
            .join("git")
    }

    /// The reconciler's policy edge: fetches every poll.
    pub fn policy_edge(&self, state: Option<&Path>) -> anyhow::Result<Box<dyn PolicyEdge>> {
        Ok(Box::new(GitPolicy::new(self.source(state)?)))
    }

    /// Fetches the branch and returns its head commit.
    pub fn head(&self, state: Option<&Path>) -> anyhow::Result<(GitPolicySource, String)> {
        let mut source = self.source(state)?;
        let head = source.fetch().with_context(|| {
            format!(
                "cannot fetch {} of {}",
                self.branch,
                self.policy_repo.as_deref().unwrap_or_default()
            )
        })?;
        Ok((source, head))
    }

    /// The policy at the head of the branch, or every diagnostic printed and an error.
    pub fn load_head(&self, state: Option<&Path>) -> anyhow::Result<LoadedPolicy> {
        let (source, head) = self.head(state)?;
        match source.load(&head) {
            Ok(p) => {
                for w in &p.warnings {
                    eprintln!("{w}");
                }
                Ok(p)
            }
            Err(e) => {
                for d in e.diagnostics() {
                    eprintln!("{d}");
                }
                bail!("the policy at commit {head} is not usable: {e}")
            }
        }
    }
}

/// The policy from `--policy PATH` or `--policy-repo URL`.
pub fn load(
    policy: Option<&Path>,
    repo: &RepoArgs,
    state: Option<&Path>,
) -> anyhow::Result<LoadedPolicy> {
    match (policy, &repo.policy_repo) {
        (Some(p), None) => super::common::load_policy(p),
        (None, Some(_)) => repo.load_head(state),
        (Some(_), Some(_)) => bail!("give --policy PATH or --policy-repo URL, not both"),
        (None, None) => bail!("give --policy PATH or --policy-repo URL"),
    }
}
