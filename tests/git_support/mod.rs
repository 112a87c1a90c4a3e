//! Git repositories for tests, made with the git CLI: a bare "remote" and a working
//! clone that commits (optionally SSH-signed, keys from ssh-keygen) and pushes to it.

#![allow(dead_code)]

pub mod https;

use ad2entra::gitops::{GitAuth, GitConfig, GitPolicySource};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The smallest valid policy.
pub const MINIMAL_POLICY: &str =
    "apiVersion: ad2entra/v1\nupn:\n  fallbackDomain: corpexample.onmicrosoft.com\n";

/// A child process (a test server) killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A bare "remote" repository and a working clone that commits and pushes to it.
pub struct Remote {
    _tmp: tempfile::TempDir,
    pub bare: PathBuf,
    pub work: PathBuf,
    pub cache: PathBuf,
    pub root: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args([
            "-c",
            "user.name=Policy Author",
            "-c",
            "user.email=author@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Remote {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let bare = root.join("policy.git");
        git(&root, &["init", "-q", "--bare", bare.to_str().unwrap()]);
        git(&root, &["clone", "-q", bare.to_str().unwrap(), "work"]);
        let work = root.join("work");
        git(&work, &["checkout", "-q", "-b", "main"]);
        Self {
            cache: root.join("cache"),
            _tmp: tmp,
            bare,
            work,
            root,
        }
    }

    /// Writes `files` (path, content; empty content deletes) and commits them, with
    /// `git_options` (e.g. `-c gpg.format=ssh`) before `commit` and `-S` when `sign`;
    /// returns the commit SHA.
    fn commit_files(&self, files: &[(&str, &str)], git_options: &[String], sign: bool) -> String {
        for (path, text) in files {
            let p = self.work.join(path);
            if text.is_empty() {
                let _ = std::fs::remove_file(&p);
            } else {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, text).unwrap();
            }
        }
        git(&self.work, &["add", "-A"]);
        let mut args: Vec<&str> = git_options.iter().map(String::as_str).collect();
        args.extend(["commit", "-q", "--allow-empty", "-m", "policy change"]);
        if sign {
            args.push("-S");
        }
        git(&self.work, &args);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    pub fn commit(&self, files: &[(&str, &str)]) -> String {
        self.commit_files(files, &[], false)
    }

    /// As [`Remote::commit`], SSH-signed with `key` (git's `gpg.format=ssh`).
    pub fn commit_signed(&self, key: &Path, files: &[(&str, &str)]) -> String {
        self.commit_files(files, &signing_args(key), true)
    }

    pub fn push(&self) {
        git(
            &self.work,
            &["push", "-q", "--force", "origin", "HEAD:main"],
        );
    }

    pub fn url(&self) -> String {
        self.bare.display().to_string()
    }

    pub fn config(&self, policy_path: &str) -> GitConfig {
        GitConfig::new(
            &self.url(),
            "main",
            policy_path,
            &self.cache,
            GitAuth::default(),
        )
        .unwrap()
    }

    pub fn source(&self, policy_path: &str) -> GitPolicySource {
        GitPolicySource::open(self.config(policy_path)).unwrap()
    }
}

pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    key
}

pub fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

pub fn signing_args(key: &Path) -> Vec<String> {
    vec![
        "-c".into(),
        "gpg.format=ssh".into(),
        "-c".into(),
        format!("user.signingkey={}", key.display()),
    ]
}

impl Remote {
    /// Writes a raw commit object (for tampered and foreign-format signatures) and
    /// makes it the head of main.
    pub fn raw_commit(&self, raw: &str) -> String {
        let path = self.root.join("raw-commit");
        std::fs::write(&path, raw).unwrap();
        let sha = git(
            &self.work,
            &["hash-object", "-t", "commit", "-w", path.to_str().unwrap()],
        );
        git(&self.work, &["reset", "-q", "--hard", &sha]);
        sha
    }
}
