//! `--policy-repo`: the policy from a git branch (`ad2entra::gitops`).

use super::run::RunArgs;
use ad2entra::gitops::{GitConfig, GitPolicy, GitPolicySource, SignaturePolicy};
use ad2entra::reconciler::edges::PolicyEdge;
use anyhow::Context;
use std::path::PathBuf;

pub fn policy_edge(args: &RunArgs) -> anyhow::Result<Box<dyn PolicyEdge>> {
    let url = args.policy_repo.as_deref().context("--policy-repo")?;
    let mut cfg = GitConfig::from_env(url, &args.branch, &args.policy_path, git_cache(args))?;
    match (&args.allowed_signers, args.require_signed_commits) {
        (Some(file), true) => cfg.signatures = Some(SignaturePolicy::from_file(file)?),
        (Some(_), false) => tracing::warn!(
            "--allowed-signers is ignored without --require-signed-commits: unsigned commits load"
        ),
        (None, _) => {}
    }
    let source = GitPolicySource::open(cfg)
        .with_context(|| format!("cannot open the git cache for {url}"))?;
    Ok(Box::new(GitPolicy::new(source)))
}

/// `--git-cache`, else beside the state file, else the user's cache directory.
fn git_cache(args: &RunArgs) -> PathBuf {
    if let Some(dir) = &args.git_cache {
        return dir.clone();
    }
    if let Some(parent) = args.state.as_ref().and_then(|s| s.parent()) {
        return parent.join("git-cache");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("ad2entra")
        .join("git")
}
