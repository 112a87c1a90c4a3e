//! Where the policy repository is and how to reach it: the URL, branch, path inside
//! the repository, cache directory, and credentials read from the environment.
//!
//! Credentials never appear in `Debug` output: [`Secret`] prints `[redacted]`.

use super::error::GitError;
use super::signature::SignaturePolicy;
use super::url::{RemoteUrl, Transport};
use std::path::{Path, PathBuf};

/// Environment variable holding the https token (sent as the password).
pub const ENV_TOKEN: &str = "AD2ENTRA_GIT_TOKEN";
/// Environment variable naming the ssh private key file.
pub const ENV_SSH_KEY: &str = "AD2ENTRA_GIT_SSH_KEY";
/// Environment variable holding the ssh key's passphrase, if it has one.
pub const ENV_SSH_KEY_PASSPHRASE: &str = "AD2ENTRA_GIT_SSH_KEY_PASSPHRASE";
/// Environment variable naming the known-hosts file (default `~/.ssh/known_hosts`).
pub const ENV_KNOWN_HOSTS: &str = "AD2ENTRA_GIT_KNOWN_HOSTS";
/// The user sent with a token when the URL names none; GitHub, GitLab and Azure DevOps
/// accept any user name with a token as the password, and this one is GitHub's.
pub const TOKEN_USER: &str = "x-access-token";

/// A credential: usable by the transport, invisible to `Debug` and `Display`.
pub use crate::secrets::Secret;

/// Credentials for the policy repository, from the environment.
#[derive(Clone, Debug, Default)]
pub struct GitAuth {
    /// https token (`AD2ENTRA_GIT_TOKEN`).
    pub token: Option<Secret>,
    /// ssh private key file (`AD2ENTRA_GIT_SSH_KEY`).
    pub ssh_key: Option<PathBuf>,
    /// Its passphrase (`AD2ENTRA_GIT_SSH_KEY_PASSPHRASE`).
    pub ssh_key_passphrase: Option<Secret>,
    /// The known-hosts file ssh host keys are checked against (no trust on first use).
    pub known_hosts: Option<PathBuf>,
}

impl GitAuth {
    /// Reads the `AD2ENTRA_GIT_*` variables.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (tests pass a map instead of the process
    /// environment). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let known_hosts = get(ENV_KNOWN_HOSTS)
            .map(PathBuf::from)
            .or_else(|| get("HOME").map(|home| Path::new(&home).join(".ssh").join("known_hosts")));
        Self {
            token: get(ENV_TOKEN).map(Secret::new),
            ssh_key: get(ENV_SSH_KEY).map(PathBuf::from),
            ssh_key_passphrase: get(ENV_SSH_KEY_PASSPHRASE).map(Secret::new),
            known_hosts,
        }
    }
}

/// Where and how to fetch the policy.
#[derive(Clone, Debug)]
pub struct GitConfig {
    /// Local path, `file://`, `https://`, `ssh://` or `user@host:path`.
    pub url: String,
    /// The branch whose head is the policy (default `main`).
    pub branch: String,
    /// File or directory inside the repository (`.` is the repository root).
    pub policy_path: String,
    /// Directory the bare clone lives in (a subdirectory per URL).
    pub cache_dir: PathBuf,
    pub auth: GitAuth,
    /// `requireSignedCommits`: only commits signed by an allowed key load.
    pub signatures: Option<SignaturePolicy>,
}

impl GitConfig {
    /// Builds a configuration with credentials from the environment, checking what can
    /// be checked without the network: the URL's form, the branch name, the policy path,
    /// and that an ssh URL has a key and a known-hosts file.
    pub fn from_env(
        url: &str,
        branch: &str,
        policy_path: &str,
        cache_dir: impl Into<PathBuf>,
    ) -> Result<Self, GitError> {
        Self::new(url, branch, policy_path, cache_dir, GitAuth::from_env())
    }

    /// As [`GitConfig::from_env`], with the credentials given.
    pub fn new(
        url: &str,
        branch: &str,
        policy_path: &str,
        cache_dir: impl Into<PathBuf>,
        auth: GitAuth,
    ) -> Result<Self, GitError> {
        let remote = RemoteUrl::parse(url)?;
        let branch = if branch.is_empty() { "main" } else { branch };
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(GitError::Config(format!(
                "{branch:?} is not a valid branch name"
            )));
        }
        let policy_path = normalize_policy_path(policy_path)?;
        if let Transport::Ssh { .. } = remote.transport {
            check_ssh_files(&auth)?;
        }
        Ok(Self {
            url: remote.url,
            branch: branch.to_string(),
            policy_path,
            cache_dir: cache_dir.into(),
            auth,
            signatures: None,
        })
    }
}

/// `./policy/` → `policy`; `` and `./` → `.`. Absolute paths and `..` are refused: the
/// policy must come from inside the repository.
fn normalize_policy_path(path: &str) -> Result<String, GitError> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if path.starts_with('/') || parts.contains(&"..") {
        return Err(GitError::Config(format!(
            "the policy path {path:?} must be relative to the repository root, without `..`"
        )));
    }
    Ok(if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    })
}

fn check_ssh_files(auth: &GitAuth) -> Result<(), GitError> {
    let key = auth.ssh_key.as_ref().ok_or_else(|| {
        GitError::Config(format!(
            "an ssh URL needs a private key file: set {ENV_SSH_KEY}"
        ))
    })?;
    let known = auth.known_hosts.as_ref().ok_or_else(|| {
        GitError::Config(format!(
            "an ssh URL needs a known-hosts file: set {ENV_KNOWN_HOSTS}"
        ))
    })?;
    for (what, path) in [("ssh key", key), ("known-hosts file", known)] {
        if !path.is_file() {
            return Err(GitError::Config(format!(
                "the {what} {} does not exist",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_path_is_normalised_and_kept_inside_the_repo() {
        assert_eq!(normalize_policy_path("").unwrap(), ".");
        assert_eq!(normalize_policy_path("./").unwrap(), ".");
        assert_eq!(normalize_policy_path("./policy/").unwrap(), "policy");
        assert_eq!(normalize_policy_path("a//b.yaml").unwrap(), "a/b.yaml");
        assert!(normalize_policy_path("/etc").is_err());
        assert!(normalize_policy_path("policy/../../x").is_err());
    }

    #[test]
    fn ssh_urls_need_a_key_and_known_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let none = GitAuth::default();
        let e = GitConfig::new("git@host:p.git", "main", ".", dir.path(), none).unwrap_err();
        assert!(e.to_string().contains(ENV_SSH_KEY), "{e}");
        let key = dir.path().join("id");
        std::fs::write(&key, "k").unwrap();
        let auth = GitAuth::from_lookup(|n| match n {
            ENV_SSH_KEY => Some(key.display().to_string()),
            ENV_KNOWN_HOSTS => Some("/nonexistent/known_hosts".into()),
            _ => None,
        });
        let e = GitConfig::new("ssh://host/p.git", "main", ".", dir.path(), auth).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/known_hosts"), "{e}");
        let e = GitConfig::new("/x", "bad..name", ".", dir.path(), GitAuth::default());
        assert!(e.is_err());
    }

    #[test]
    fn known_hosts_defaults_to_the_home_directory() {
        let auth = GitAuth::from_lookup(|n| (n == "HOME").then(|| "/home/ad2entra".into()));
        assert_eq!(
            auth.known_hosts.as_deref(),
            Some(Path::new("/home/ad2entra/.ssh/known_hosts"))
        );
        assert!(auth.token.is_none());
    }
}
