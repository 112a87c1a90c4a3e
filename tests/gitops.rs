//! The policy from git, against real repositories made by the git CLI in a temporary
//! directory: clone, fetch, force push, a policy in a subdirectory, invalid and fixing
//! commits, SSH-signed commits (keys made by ssh-keygen), a broken cache, and no
//! credential in any error or Debug output.

use ad2entra::gitops::{
    GitAuth, GitConfig, GitError, GitPolicySource, PolicyAtCommitError, SignaturePolicy,
    SignatureProblem,
};
use std::path::{Path, PathBuf};

mod git_support;
use git_support::{Remote, git, keygen, public};

const POLICY: &str = "apiVersion: ad2entra/v1\nscope:\n  users:\n    includeOUs: [\"OU=Staff,DC=corp,DC=example,DC=com\"]\nupn:\n  fallbackDomain: corpexample.onmicrosoft.com\n";

#[test]
fn the_branch_head_is_cloned_and_loaded_with_its_commit() {
    let r = Remote::new();
    let sha = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let mut src = r.source(".");
    assert_eq!(src.cached_head(), None, "nothing fetched yet");
    assert_eq!(src.fetch().unwrap(), sha);
    let loaded = src.load(&sha).unwrap();
    assert_eq!(loaded.commit.as_deref(), Some(sha.as_str()));
    assert_eq!(loaded.path, ".");
    // the content hash is the one of the same files read from disk: it does not
    // depend on the cache location, so a plan made from a checkout matches
    let from_disk = ad2entra::policy::load_path(&r.work.join("policy.yaml")).unwrap();
    assert_eq!(loaded.content_hash, from_disk.content_hash);
    // a short SHA resolves to the full one
    assert_eq!(
        src.load(&sha[..10]).unwrap().commit.as_deref(),
        Some(sha.as_str())
    );
    // file:// URLs work the same
    let cfg = GitConfig::new(
        &format!("file://{}", r.url()),
        "main",
        ".",
        r.root.join("cache2"),
        GitAuth::default(),
    )
    .unwrap();
    assert_eq!(GitPolicySource::open(cfg).unwrap().fetch().unwrap(), sha);
}

#[test]
fn a_new_commit_is_picked_up_by_the_next_fetch_and_the_cache_is_reused() {
    let r = Remote::new();
    let first = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let mut src = r.source(".");
    assert_eq!(src.fetch().unwrap(), first);
    assert_eq!(src.fetch().unwrap(), first, "no change, same head");
    let second = r.commit(&[("policy.yaml", &format!("{POLICY}protect: [\"admin@*\"]\n"))]);
    r.push();
    assert_eq!(src.fetch().unwrap(), second);
    assert_eq!(src.load(&second).unwrap().policy.protect, vec!["admin@*"]);
    let cache = src.cache_path().to_path_buf();
    drop(src);
    // a restart reuses the clone: the head is known before any network access
    let src = r.source(".");
    assert_eq!(src.cache_path(), cache);
    assert_eq!(src.cached_head().as_deref(), Some(second.as_str()));
    assert!(src.load(&first).is_ok(), "history is in the cache");
}

#[test]
fn a_force_push_is_followed() {
    let r = Remote::new();
    let a = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let b = r.commit(&[("policy.yaml", &format!("{POLICY}protect: [\"b@*\"]\n"))]);
    r.push();
    let mut src = r.source(".");
    assert_eq!(src.fetch().unwrap(), b);
    git(&r.work, &["reset", "-q", "--hard", &a]);
    let c = r.commit(&[("policy.yaml", &format!("{POLICY}protect: [\"c@*\"]\n"))]);
    r.push();
    assert_eq!(src.fetch().unwrap(), c, "the rewritten branch wins");
    assert_eq!(src.load(&c).unwrap().policy.protect, vec!["c@*"]);
    // and back to an older commit (a revert by force push)
    git(&r.work, &["reset", "-q", "--hard", &a]);
    r.push();
    assert_eq!(src.fetch().unwrap(), a);
}

#[test]
fn a_policy_directory_gives_repo_relative_diagnostics_and_a_fixing_commit_recovers() {
    let r = Remote::new();
    let scope = "scope:\n  users:\n    includeOUs: [\"OU=Staff,DC=corp,DC=example,DC=com\"]\n";
    let good = r.commit(&[
        ("README.md", "# policy\n"),
        (
            "policy/00-base.yaml",
            "apiVersion: ad2entra/v1\nupn:\n  fallbackDomain: corpexample.onmicrosoft.com\n",
        ),
        ("policy/scope.yaml", scope),
        // policy tests live beside the policy and are not part of it
        ("policy/tests/case.yaml", "not: [a policy\n"),
    ]);
    r.push();
    let mut src = r.source("./policy/");
    assert_eq!(src.fetch().unwrap(), good);
    let loaded = src.load(&good).unwrap();
    assert_eq!(loaded.path, "policy");
    assert_eq!(loaded.commit.as_deref(), Some(good.as_str()));

    // a typo on line 3, column 5 of policy/scope.yaml
    let bad = r.commit(&[(
        "policy/scope.yaml",
        "scope:\n  users:\n    includeOU: [\"OU=Staff,DC=corp,DC=example,DC=com\"]\n",
    )]);
    r.push();
    assert_eq!(src.fetch().unwrap(), bad);
    let err = src.load(&bad).unwrap_err();
    assert_eq!(err.commit(), Some(bad.as_str()));
    let PolicyAtCommitError::Invalid {
        commit,
        diagnostics,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(commit, &bad);
    let d = diagnostics
        .iter()
        .find(|d| d.code == "unknown-field")
        .unwrap_or_else(|| panic!("{diagnostics:?}"));
    assert_eq!(
        d.location.as_ref().unwrap().to_string(),
        "policy/scope.yaml:3:5"
    );
    assert_eq!(err.diagnostics(), *diagnostics);
    assert!(err.to_string().contains(&bad), "{err}");

    // invalid YAML is reported the same way
    let broken = r.commit(&[("policy/scope.yaml", "scope: [\n")]);
    r.push();
    assert_eq!(src.fetch().unwrap(), broken);
    let err = src.load(&broken).unwrap_err();
    assert!(
        err.diagnostics()
            .iter()
            .any(|d| d.code == "yaml-syntax"
                && d.location.as_ref().unwrap().file == "policy/scope.yaml"),
        "{err:?}"
    );

    // the fix loads again
    let fixed = r.commit(&[("policy/scope.yaml", scope)]);
    r.push();
    assert_eq!(src.fetch().unwrap(), fixed);
    let loaded = src.load(&fixed).unwrap();
    assert_eq!(loaded.commit.as_deref(), Some(fixed.as_str()));
    assert_eq!(loaded.user_include_ous.len(), 1);

    // a policy path that is gone at some commit is a diagnostic of that commit
    let gone = r.commit(&[("policy/00-base.yaml", ""), ("policy/scope.yaml", "")]);
    r.push();
    assert_eq!(src.fetch().unwrap(), gone);
    let err = src.load(&gone).unwrap_err();
    assert_eq!(err.diagnostics()[0].code, "policy-unreadable", "{err:?}");
    assert_eq!(err.commit(), Some(gone.as_str()));
}

#[test]
fn a_single_policy_file_in_a_subdirectory_is_named_by_its_repo_path() {
    let r = Remote::new();
    let sha = r.commit(&[(
        "deploy/ad2entra.yaml",
        "apiVersion: ad2entra/v1\nbogus: 1\n",
    )]);
    r.push();
    let mut src = r.source("deploy/ad2entra.yaml");
    src.fetch().unwrap();
    let diags = src.load(&sha).unwrap_err().diagnostics();
    let d = diags.iter().find(|d| d.code == "unknown-field").unwrap();
    assert_eq!(
        d.location.as_ref().unwrap().to_string(),
        "deploy/ad2entra.yaml:2:1"
    );
}

#[test]
fn a_missing_branch_is_a_clear_error_and_a_deleted_branch_is_not_served() {
    let r = Remote::new();
    r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let cfg = GitConfig::new(&r.url(), "nope", ".", &r.cache, GitAuth::default()).unwrap();
    let e = GitPolicySource::open(cfg).unwrap().fetch().unwrap_err();
    assert!(matches!(e, GitError::BranchNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("branch nope does not exist"), "{e}");
    assert!(!e.is_transient());

    git(
        &r.work,
        &["push", "-q", "origin", "HEAD:refs/heads/staging"],
    );
    let cfg = GitConfig::new(&r.url(), "staging", ".", &r.cache, GitAuth::default()).unwrap();
    let mut src = GitPolicySource::open(cfg).unwrap();
    assert!(src.fetch().is_ok());
    git(&r.work, &["push", "-q", "origin", ":refs/heads/staging"]);
    assert!(matches!(
        src.fetch().unwrap_err(),
        GitError::BranchNotFound { .. }
    ));
    assert_eq!(
        src.cached_head(),
        None,
        "the deleted branch's head is forgotten"
    );
}

#[test]
fn an_unreachable_repository_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GitConfig::new(
        tmp.path().join("no-such-repo").to_str().unwrap(),
        "main",
        ".",
        tmp.path().join("cache"),
        GitAuth::default(),
    )
    .unwrap();
    let mut src = GitPolicySource::open(cfg).unwrap();
    let e = src.fetch().unwrap_err();
    assert!(matches!(e, GitError::Fetch { .. }), "{e:?}");
    // the cache survived the failed fetch and still opens
    assert!(src.cache_path().is_dir());
}

#[test]
fn a_corrupt_or_foreign_cache_is_set_aside_and_cloned_again() {
    let r = Remote::new();
    let sha = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let mut src = r.source(".");
    src.fetch().unwrap();
    let dir = src.cache_path().to_path_buf();
    drop(src);

    // objects lost: the cached head no longer reads
    for sub in std::fs::read_dir(dir.join("objects")).unwrap() {
        let p = sub.unwrap().path();
        if p.file_name().unwrap() != "info" && p.file_name().unwrap() != "pack" {
            std::fs::remove_dir_all(&p).unwrap();
        }
    }
    for pack in std::fs::read_dir(dir.join("objects/pack")).unwrap() {
        std::fs::remove_file(pack.unwrap().path()).unwrap();
    }
    let mut src = r.source(".");
    assert!(dir.with_extension("git.set-aside").exists());
    assert_eq!(src.cached_head(), None);
    assert_eq!(src.fetch().unwrap(), sha);
    assert!(src.load(&sha).is_ok());
    drop(src);

    // garbage where the cache should be
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "not a repository").unwrap();
    let mut src = r.source(".");
    assert_eq!(src.fetch().unwrap(), sha);
    drop(src);

    // a repository that is not ours (a plain clone someone put there)
    std::fs::remove_dir_all(&dir).unwrap();
    git(
        &r.root,
        &["clone", "-q", "--bare", &r.url(), dir.to_str().unwrap()],
    );
    let mut src = r.source(".");
    assert_eq!(src.cached_head(), None, "a foreign cache is not trusted");
    assert_eq!(src.fetch().unwrap(), sha);
}

// ---- signed commits -------------------------------------------------------------

struct Keys {
    alice: PathBuf,
    mallory: PathBuf,
}

/// A source that requires commits signed by a key in `allowed` (allowed-signers text).
fn signed_source(r: &Remote, allowed: &str) -> GitPolicySource {
    let file = r.root.join("allowed_signers");
    std::fs::write(&file, allowed).unwrap();
    let mut cfg = r.config(".");
    cfg.signatures = Some(SignaturePolicy::from_file(&file).unwrap());
    GitPolicySource::open(cfg).unwrap()
}

/// The reason of a refused signature (anything else fails the test).
fn refusal(e: &PolicyAtCommitError) -> &SignatureProblem {
    match e {
        PolicyAtCommitError::BadSignature { reason, .. } => reason,
        other => panic!("expected a refused signature, got {other:?}"),
    }
}

fn keys(r: &Remote) -> Keys {
    Keys {
        alice: keygen(&r.root, "alice"),
        mallory: keygen(&r.root, "mallory"),
    }
}

#[test]
fn signed_commits_by_an_allowed_key_load_and_others_are_refused() {
    let r = Remote::new();
    let k = keys(&r);
    let mut src = signed_source(&r, &format!("alice@example.com {}\n", public(&k.alice)));

    let signed = r.commit_signed(&k.alice, &[("policy.yaml", POLICY)]);
    r.push();
    assert_eq!(src.fetch().unwrap(), signed);
    let loaded = src.load(&signed).unwrap();
    assert_eq!(loaded.commit.as_deref(), Some(signed.as_str()));
    // git itself agrees the commit is signed (sanity of the fixture)
    assert!(
        git(&r.work, &["cat-file", "commit", &signed]).contains("-----BEGIN SSH SIGNATURE-----")
    );

    // unsigned
    let unsigned = r.commit(&[("policy.yaml", &format!("{POLICY}protect: [\"x@*\"]\n"))]);
    r.push();
    assert_eq!(src.fetch().unwrap(), unsigned);
    let e = src.load(&unsigned).unwrap_err();
    assert!(
        matches!(&e, PolicyAtCommitError::Unsigned { commit } if commit == &unsigned),
        "{e:?}"
    );
    assert_eq!(e.diagnostics()[0].code, "commit-unsigned");

    // signed by a key that is not allowed
    let foreign = r.commit_signed(&k.mallory, &[("policy.yaml", POLICY)]);
    r.push();
    assert_eq!(src.fetch().unwrap(), foreign);
    let e = src.load(&foreign).unwrap_err();
    assert_eq!(e.commit(), Some(foreign.as_str()));
    assert!(
        matches!(refusal(&e), SignatureProblem::KeyNotAllowed { .. }),
        "{e}"
    );
    assert_eq!(e.diagnostics()[0].code, "commit-signature-refused");
    assert!(e.to_string().contains("not an allowed signer"), "{e}");

    // an allowed signature copied onto other content: the commit was altered
    let raw = git(&r.work, &["cat-file", "commit", &signed]);
    let tampered = raw.replace("policy change", "policy change, then altered");
    let altered = r.raw_commit(&format!("{tampered}\n"));
    r.push();
    assert_eq!(src.fetch().unwrap(), altered);
    let e = src.load(&altered).unwrap_err();
    assert!(
        matches!(refusal(&e), SignatureProblem::Invalid { .. }),
        "{e:?}"
    );

    // a GPG-signed commit is refused as unsupported, with the way out
    let unsigned_raw = git(&r.work, &["cat-file", "commit", &unsigned]);
    let (headers, message) = unsigned_raw.split_once("\n\n").unwrap();
    let gpg = format!(
        "{headers}\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----\n\n{message}\n"
    );
    let gpg_commit = r.raw_commit(&gpg);
    r.push();
    assert_eq!(src.fetch().unwrap(), gpg_commit);
    let e = src.load(&gpg_commit).unwrap_err();
    assert!(e.to_string().contains("use SSH signing"), "{e}");

    // a new allowed signature recovers
    let again = r.commit_signed(&k.alice, &[("policy.yaml", POLICY)]);
    r.push();
    assert_eq!(src.fetch().unwrap(), again);
    assert!(src.load(&again).is_ok());
}

#[test]
fn an_allowed_key_restricted_to_other_namespaces_or_times_is_refused() {
    let r = Remote::new();
    let k = keys(&r);
    let signed = r.commit_signed(&k.alice, &[("policy.yaml", POLICY)]);
    r.push();
    let key = public(&k.alice);
    for (options, what) in [
        ("namespaces=\"file\"", "namespace"),
        ("valid-before=\"20000101Z\"", "not valid after"),
        ("valid-after=\"29990101Z\"", "not valid before"),
    ] {
        let mut src = signed_source(&r, &format!("alice@example.com {options} {key}\n"));
        src.fetch().unwrap();
        let e = src.load(&signed).unwrap_err();
        assert!(
            matches!(refusal(&e), SignatureProblem::KeyNotValid { .. }),
            "{options}: {e:?}"
        );
        assert!(e.to_string().contains(what), "{e}");
    }
    let mut src = signed_source(
        &r,
        &format!("alice@example.com namespaces=\"git\",valid-after=\"20000101Z\" {key}\n"),
    );
    src.fetch().unwrap();
    assert!(src.load(&signed).is_ok());
}

// ---- credentials never leak -----------------------------------------------------

const TOKEN: &str = "tok-SECRET-7f3a9c";
const PASSPHRASE: &str = "pass-SECRET-b21e";

fn secret_auth(dir: &Path) -> GitAuth {
    let key = keygen(dir, "deploy");
    let known = dir.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    GitAuth::from_lookup(|name| match name {
        "AD2ENTRA_GIT_TOKEN" => Some(TOKEN.into()),
        "AD2ENTRA_GIT_SSH_KEY" => Some(key.display().to_string()),
        "AD2ENTRA_GIT_SSH_KEY_PASSPHRASE" => Some(PASSPHRASE.into()),
        "AD2ENTRA_GIT_KNOWN_HOSTS" => Some(known.display().to_string()),
        _ => None,
    })
}

/// An HTTP server on loopback that asks for credentials (401) to every request; its
/// thread is left to end with the test process.
fn auth_wall() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

#[test]
fn no_credential_appears_in_any_error_or_debug_output() {
    let tmp = tempfile::tempdir().unwrap();
    let auth = secret_auth(tmp.path());
    let mut seen = Vec::new();

    // https to a closed port, ssh to a closed port, http to a server wanting credentials
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let wall = auth_wall();
    for url in [
        format!("https://127.0.0.1:{closed_port}/org/policy.git"),
        format!("ssh://git@127.0.0.1:{closed_port}/org/policy.git"),
        format!("http://127.0.0.1:{wall}/org/policy.git"),
    ] {
        let cfg =
            GitConfig::new(&url, "main", ".", tmp.path().join("cache"), auth.clone()).unwrap();
        seen.push(format!("{cfg:?}"));
        let mut src = GitPolicySource::open(cfg).unwrap();
        seen.push(format!("{src:?}"));
        let e = src.fetch().unwrap_err();
        seen.push(format!("{e} | {e:?}"));
        let p = PolicyAtCommitError::from(e);
        seen.push(format!("{p} | {p:?} | {:?}", p.diagnostics()));
        if url.starts_with("http://") {
            assert!(
                matches!(&p, PolicyAtCommitError::Git(GitError::Auth { hint, .. }) if hint.contains("only sent over https")),
                "{p:?}"
            );
        }
    }
    // a URL with a password is refused without repeating it
    let e = GitConfig::new(
        &format!("https://bot:{TOKEN}@git.example.com/p.git"),
        "main",
        ".",
        tmp.path(),
        auth.clone(),
    )
    .unwrap_err();
    seen.push(format!("{e} | {e:?}"));
    seen.push(format!("{auth:?}"));

    let all = seen.join("\n");
    assert!(all.contains("[redacted]"), "{all}");
    assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
    assert!(!all.contains(PASSPHRASE), "the passphrase leaked:\n{all}");
}

// ---- the reconciler's policy edge -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_edge_reports_each_new_commit_once_and_starts_from_the_cache_when_offline() {
    use ad2entra::gitops::GitPolicy;
    use ad2entra::reconciler::edges::{PolicyEdge, PolicyUpdate};

    let r = Remote::new();
    let first = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    let mut src = r.source(".");
    src.fetch().unwrap();
    drop(src);

    // the server is gone at start: the cached head is served
    let moved = r.root.join("moved.git");
    std::fs::rename(&r.bare, &moved).unwrap();
    let mut edge = GitPolicy::new(r.source("."));
    assert!(edge.describe().starts_with("git "), "{}", edge.describe());
    match edge.poll().await.unwrap() {
        PolicyUpdate::Valid(p) => assert_eq!(p.commit.as_deref(), Some(first.as_str())),
        _ => panic!("expected the cached commit"),
    }
    // once running, an unreachable repository is an error of the poll, nothing more
    assert!(edge.poll().await.is_err());
    std::fs::rename(&moved, &r.bare).unwrap();
    assert!(matches!(
        edge.poll().await.unwrap(),
        PolicyUpdate::Unchanged
    ));

    // an invalid commit is reported once, by its SHA, with its diagnostics
    let bad = r.commit(&[("policy.yaml", "apiVersion: ad2entra/v1\nbogus: 1\n")]);
    r.push();
    match edge.poll().await.unwrap() {
        PolicyUpdate::Invalid(a) => {
            assert_eq!(a.revision, bad);
            assert!(!a.valid);
            assert_eq!(a.diagnostics[0].code, "unknown-field");
        }
        _ => panic!("expected an invalid revision"),
    }
    assert!(matches!(
        edge.poll().await.unwrap(),
        PolicyUpdate::Unchanged
    ));
    let fix = r.commit(&[("policy.yaml", POLICY)]);
    r.push();
    match edge.poll().await.unwrap() {
        PolicyUpdate::Valid(p) => assert_eq!(p.commit.as_deref(), Some(fix.as_str())),
        _ => panic!("expected the fixing commit"),
    }
}
