//! A git server that accepts the connection and never answers does not hold a fetch
//! forever: libgit2's network timeout (AD2ENTRA_GIT_TIMEOUT) ends it with a transient
//! error. One test in this file: the timeout is process-wide and read once.

use ad2entra::gitops::{ENV_GIT_TIMEOUT, GitAuth, GitConfig, GitError, GitPolicySource};
use std::time::{Duration, Instant};

#[test]
fn a_silent_server_times_out_with_a_transient_error() {
    // SAFETY: the only test of this binary, before any thread of ours or libgit2's
    // reads the environment.
    unsafe { std::env::set_var(ENV_GIT_TIMEOUT, "2s") };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // accept and hold every connection, never answer
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cfg = GitConfig::new(
        &format!("http://127.0.0.1:{port}/policy.git"),
        "main",
        ".",
        tmp.path(),
        GitAuth::default(),
    )
    .unwrap();
    let mut src = GitPolicySource::open(cfg).unwrap();
    let started = Instant::now();
    let e = src.fetch().unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "took {took:?}: {e}");
    assert!(matches!(&e, GitError::Fetch { .. }), "{e:?}");
    assert!(e.is_transient(), "{e:?}");
}
