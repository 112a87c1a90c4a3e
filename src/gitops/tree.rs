//! The policy files of a commit, read from its tree (no checkout): the same files
//! `policy::read_policy_files` reads from disk — one file, or the `*.yaml`/`*.yml`
//! files directly in a directory, sorted by name (its `tests/` subdirectory holds
//! policy tests, not policy) — named by their path in the repository, so diagnostics
//! read `policy/users.yaml:12:3` wherever the cache lives.

use crate::diagnostics::Diagnostic;
use crate::policy::PolicyFile;
use git2::{ObjectType, Repository, Tree};
use std::path::Path;

/// Regular files (executable or not); links and submodules are not policy.
fn is_regular_file(mode: i32) -> bool {
    mode == 0o100644 || mode == 0o100755
}

fn is_policy_name(name: &str) -> bool {
    matches!(
        Path::new(name).extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

/// Reads the policy at `policy_path` (`.` for the root) in `tree` of commit `commit`.
pub(super) fn policy_files(
    repo: &Repository,
    tree: &Tree<'_>,
    policy_path: &str,
    commit: &str,
) -> Result<Vec<PolicyFile>, Box<Diagnostic>> {
    let unreadable = |msg: String| {
        Box::new(Diagnostic::error("policy-unreadable", msg).hint("check --policy-path"))
    };
    let short = &commit[..commit.len().min(12)];
    let blob_text = |oid: git2::Oid, name: &str| -> Result<PolicyFile, Box<Diagnostic>> {
        let blob = repo
            .find_blob(oid)
            .map_err(|e| unreadable(format!("cannot read {name} at commit {short}: {e}")))?;
        let text = std::str::from_utf8(blob.content())
            .map_err(|_| unreadable(format!("{name} at commit {short} is not UTF-8 text")))?;
        Ok(PolicyFile {
            name: name.to_string(),
            text: text.to_string(),
        })
    };
    let dir = if policy_path == "." {
        tree.clone()
    } else {
        let entry = tree
            .get_path(Path::new(policy_path))
            .map_err(|_| unreadable(format!("{policy_path} does not exist at commit {short}")))?;
        match entry.kind() {
            Some(ObjectType::Blob) if is_regular_file(entry.filemode()) => {
                return Ok(vec![blob_text(entry.id(), policy_path)?]);
            }
            Some(ObjectType::Tree) => repo.find_tree(entry.id()).map_err(|e| {
                unreadable(format!("cannot read {policy_path} at commit {short}: {e}"))
            })?,
            _ => {
                return Err(unreadable(format!(
                    "{policy_path} at commit {short} is neither a file nor a directory"
                )));
            }
        }
    };
    let mut names: Vec<(String, git2::Oid)> = dir
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Blob) && is_regular_file(e.filemode()))
        .filter_map(|e| e.name().ok().map(|n| (n.to_string(), e.id())))
        .filter(|(n, _)| is_policy_name(n))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(unreadable(format!(
            "{policy_path} at commit {short} holds no .yaml or .yml file"
        )));
    }
    names
        .iter()
        .map(|(name, oid)| {
            let full = if policy_path == "." {
                name.clone()
            } else {
                format!("{policy_path}/{name}")
            };
            blob_text(*oid, &full)
        })
        .collect()
}
