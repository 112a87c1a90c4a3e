//! The policy from a git repository: the reconciler (`ad2entra run --policy-repo`) and
//! `plan --policy-repo` read the policy as it is at the head of a branch, with the
//! commit SHA that then travels into the plan's provenance and the status.
//!
//! [`GitPolicySource`] keeps a bare clone in a cache directory; [`fetch`] follows the
//! branch (force pushes included) and [`load`] reads the policy files straight out of
//! a commit's tree, after checking its SSH signature when `requireSignedCommits` is
//! on. git2 is blocking: call it from `spawn_blocking`; every type here is `Send`.
//!
//! Credentials come from the environment (`AD2ENTRA_GIT_TOKEN` for https,
//! `AD2ENTRA_GIT_SSH_KEY` and `AD2ENTRA_GIT_KNOWN_HOSTS` for ssh) and never appear in
//! an error, a log line or `Debug` output. See `docs/gitops.md`.
//!
//! [`fetch`]: GitPolicySource::fetch
//! [`load`]: GitPolicySource::load

mod config;
mod edge;
mod error;
mod known_hosts;
mod signature;
mod source;
mod timeouts;
mod transport;
mod tree;
mod url;

pub use config::{
    ENV_KNOWN_HOSTS, ENV_SSH_KEY, ENV_SSH_KEY_PASSPHRASE, ENV_TOKEN, GitAuth, GitConfig, Secret,
    TOKEN_USER,
};
pub use edge::GitPolicy;
pub use error::{GitError, PolicyAtCommitError};
pub use known_hosts::{HostKeyProblem, KnownHosts};
pub use signature::{GIT_NAMESPACE, SignaturePolicy, SignatureProblem, Signer};
pub use source::GitPolicySource;
pub use timeouts::ENV_GIT_TIMEOUT;
pub use url::{RemoteUrl, Transport};
