//! The policy over https with a token, against `git http-backend` behind Basic auth and
//! TLS (tests/git_support/https_git_server.py, a self-signed certificate made by the
//! openssl CLI): an untrusted certificate is refused; once trusted, the token from
//! AD2ENTRA_GIT_TOKEN is sent as the password of `x-access-token` and the policy is
//! fetched (with the URL's user name when it has one); no token, or a token the server
//! refuses, is an authentication error that never repeats the token.
//!
//! One test in this file: trusting the certificate is process-wide.

mod git_support;

use ad2entra::gitops::{GitAuth, GitConfig, GitError, GitPolicySource};
use git_support::https::{HttpsGitServer, self_signed};
use git_support::{MINIMAL_POLICY, Remote};
use std::path::Path;

const TOKEN: &str = "ghs_SECRET_token_1c9e";

fn serve(dir: &Path, project_root: &Path, user: &str) -> HttpsGitServer {
    HttpsGitServer::start(dir, project_root, user, TOKEN)
}

fn fetch(url: &str, cache: &Path, token: Option<&str>) -> Result<String, GitError> {
    let auth = GitAuth::from_lookup(|name| {
        (name == "AD2ENTRA_GIT_TOKEN")
            .then(|| token.map(str::to_string))
            .flatten()
    });
    let cfg = GitConfig::new(url, "main", ".", cache, auth)?;
    GitPolicySource::open(cfg)?.fetch()
}

#[test]
fn a_token_fetches_over_verified_tls_and_is_never_repeated() {
    let remote = Remote::new();
    let sha = remote.commit(&[("policy.yaml", MINIMAL_POLICY)]);
    remote.push();
    self_signed(&remote.root);
    let server = serve(&remote.root, &remote.root, "x-access-token");
    let url = format!("https://127.0.0.1:{}/policy.git", server.port);
    let cache = remote.root.join("cache");
    let mut messages = Vec::new();

    // the certificate is checked: not trusted yet, refused before any credential is sent
    let e = fetch(&url, &cache, Some(TOKEN)).unwrap_err();
    messages.push(format!("{e} {e:?}"));
    assert!(
        matches!(
            &e,
            GitError::Fetch {
                transient: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        server.seen.lock().unwrap().is_empty(),
        "no request got through"
    );

    // trusted: the token is sent as the password of x-access-token
    unsafe { git2::opts::set_ssl_cert_file(remote.root.join("cert.pem")) }.unwrap();
    assert_eq!(fetch(&url, &cache, Some(TOKEN)).unwrap(), sha);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("auth missing"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|s| s == "auth ok"), "{seen:?}");

    // no token: the server's challenge is answered with the way out
    let e = fetch(&url, &remote.root.join("cache2"), None).unwrap_err();
    assert!(
        matches!(&e, GitError::Auth { hint, .. } if hint.contains("AD2ENTRA_GIT_TOKEN")),
        "{e:?}"
    );
    // a token the server refuses: one attempt, then an authentication error
    server.seen.lock().unwrap().clear();
    let e = fetch(
        &url,
        &remote.root.join("cache3"),
        Some("ghs_SECRET_expired"),
    )
    .unwrap_err();
    messages.push(format!("{e} {e:?}"));
    assert!(
        matches!(&e, GitError::Auth { hint, .. } if hint.contains("refused the token")),
        "{e:?}"
    );
    assert!(!e.is_transient());
    let wrong = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| *s == "auth wrong")
        .count();
    assert_eq!(wrong, 1, "the refused token is not retried");

    // a user name in the URL (a GitLab deploy token's) is sent with the token
    let deploy = serve(&remote.root, &remote.root, "gitlab+deploy-token-12");
    let url = format!(
        "https://gitlab+deploy-token-12@127.0.0.1:{}/policy.git",
        deploy.port
    );
    assert_eq!(
        fetch(&url, &remote.root.join("cache4"), Some(TOKEN)).unwrap(),
        sha
    );
    assert!(deploy.seen.lock().unwrap().iter().any(|s| s == "auth ok"));

    let all = messages.join("\n");
    assert!(
        !all.contains(TOKEN) && !all.contains("ghs_SECRET_expired"),
        "{all}"
    );
}
