//! What can go wrong getting the policy from git, split the way the reconciler needs
//! it: a [`GitError`] is about reaching the repository (retry, or stall on a
//! configuration problem); a [`PolicyAtCommitError`] is about one commit (it is
//! reported with the commit and the last good policy keeps running).
//!
//! No message ever holds a credential: the token and passphrase are not in any
//! variant, and URLs with passwords are refused before they get here.

use super::known_hosts::HostKeyProblem;
use super::signature::SignatureProblem;
use crate::diagnostics::Diagnostic;
use std::path::PathBuf;

/// Reaching or reading the policy repository failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("policy repository URL {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the git cache {}: {message}", path.display())]
    Cache { path: PathBuf, message: String },
    #[error("fetching branch {branch} from {url}: {message}")]
    Fetch {
        url: String,
        branch: String,
        message: String,
        /// A network-level failure (retry later) rather than a refusal.
        transient: bool,
    },
    #[error("branch {branch} does not exist in {url}")]
    BranchNotFound { url: String, branch: String },
    #[error("authentication to {url} failed: {hint}")]
    Auth { url: String, hint: String },
    #[error("ssh host key of {host} refused: {problem}")]
    HostKey {
        host: String,
        problem: HostKeyProblem,
    },
    #[error("commit {commit} is not in the cache: {message}")]
    CommitNotFound { commit: String, message: String },
    #[error("allowed signers file {}: {reason}", path.display())]
    AllowedSigners { path: PathBuf, reason: String },
}

impl GitError {
    /// Whether waiting and retrying may help (the network, the server), as opposed to
    /// a problem that needs a person: a bad URL, credentials, a host key, a branch.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            GitError::Fetch {
                transient: true,
                ..
            } | GitError::Io { .. }
                | GitError::Cache { .. }
        )
    }
}

/// The policy at one commit cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyAtCommitError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("commit {commit} is not signed, and signed commits are required")]
    Unsigned { commit: String },
    #[error("commit {commit}: signature refused: {reason}")]
    BadSignature {
        commit: String,
        reason: SignatureProblem,
    },
    #[error(
        "the policy at commit {commit} is invalid ({} error(s))",
        count_errors(diagnostics)
    )]
    Invalid {
        commit: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn count_errors(diagnostics: &[Diagnostic]) -> usize {
    diagnostics
        .iter()
        .filter(|d| d.severity == crate::diagnostics::Severity::Error)
        .count()
}

impl PolicyAtCommitError {
    /// The commit the error is about (none when the repository itself failed).
    pub fn commit(&self) -> Option<&str> {
        match self {
            PolicyAtCommitError::Git(_) => None,
            PolicyAtCommitError::Unsigned { commit }
            | PolicyAtCommitError::BadSignature { commit, .. }
            | PolicyAtCommitError::Invalid { commit, .. } => Some(commit),
        }
    }

    /// The error as diagnostics, for status output next to `lastAttemptedRevision`:
    /// a policy's own diagnostics, or one diagnostic with a stable code.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            PolicyAtCommitError::Invalid { diagnostics, .. } => diagnostics.clone(),
            PolicyAtCommitError::Unsigned { .. } => vec![
                Diagnostic::error("commit-unsigned", self.to_string())
                    .hint("sign commits with an SSH key listed in the allowed signers file (git -c gpg.format=ssh commit -S)"),
            ],
            PolicyAtCommitError::BadSignature { .. } => vec![
                Diagnostic::error("commit-signature-refused", self.to_string()).hint(
                    "sign with an SSH key listed in the allowed signers file, for namespace `git`",
                ),
            ],
            PolicyAtCommitError::Git(e) => vec![Diagnostic::error("policy-unreadable", e.to_string())],
        }
    }
}
