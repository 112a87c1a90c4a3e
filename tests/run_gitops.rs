//! `ad2entra run --policy-repo` as a process against the Graph emulator, the demo
//! company from LDIF and a local bare git repository holding the demo policy: a commit
//! is applied within one poll and its SHA is in the status and the logged plan; an
//! invalid commit applies nothing and is named with its diagnostics; a fixing commit
//! recovers; with signed commits required, an unsigned commit is refused the same way.

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod git_support;
mod run_support;

use e2e_support::Tenant;
use git_support::{Remote, keygen, public};
use run_support::{DemoCopy, Run, condition, runs};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn demo_policy() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/demo/policy.yaml"
    ))
    .unwrap()
}

fn args(remote: &Remote, demo: &DemoCopy, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--policy-repo",
        &remote.url(),
        "--branch",
        "main",
        "--policy-path",
        "policy",
        "--git-poll",
        "1s",
        "--git-cache",
        remote.cache.to_str().unwrap(),
        "--source-ldif",
        demo.ldif().to_str().unwrap(),
        "--state",
        demo.state().to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_by_sha_an_invalid_one_applies_nothing_and_a_fix_recovers() {
    let t = Tenant::start().await;
    let demo = DemoCopy::new();
    let original = demo_policy();
    let remote = Remote::new();
    let first = remote.commit(&[("policy/policy.yaml", &original), ("README.md", "policy\n")]);
    remote.push();

    let run = Run::start(&args(&remote, &demo, &[]), &t.env());
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(s["lastAppliedRevision"], first.as_str(), "{s:#}");
    assert_eq!(s["runningRevision"], first.as_str());
    // the plan logged before the writes carries the commit
    let plans = run.log_events("plan");
    assert_eq!(plans[0]["span"]["commit"], first.as_str());

    // a new commit is applied within one poll
    let protect_more = original.replace(
        "protect: [\"admin@*\", \"breakglass-*\"]",
        "protect: [\"admin@*\", \"breakglass-*\", \"ceo@*\"]",
    );
    assert_ne!(protect_more, original);
    let second = remote.commit(&[("policy/policy.yaml", &protect_more)]);
    remote.push();
    let s = run
        .wait_for("the second commit applied", LONG, |s| {
            s["lastAppliedRevision"] == second.as_str() && s["currentCycle"].is_null()
        })
        .await;
    assert_eq!(runs(&s)[0]["trigger"], "policy-change", "{s:#}");

    // an invalid commit: nothing applied, the commit and its diagnostic in status
    let broken = protect_more.replace("  users:\n    includeOUs:", "  users:\n    includeOUz:");
    assert_ne!(broken, protect_more);
    let bad = remote.commit(&[("policy/policy.yaml", &broken)]);
    remote.push();
    let s = run
        .wait_for("the invalid commit in status", LONG, |s| {
            s["lastAttemptedRevision"]["revision"] == bad.as_str()
        })
        .await;
    assert_eq!(s["lastAttemptedRevision"]["valid"], false);
    let d = &s["lastAttemptedRevision"]["diagnostics"][0];
    assert_eq!(d["code"], "unknown-field", "{d}");
    assert_eq!(d["location"]["file"], "policy/policy.yaml", "{d}");
    assert!(d["location"]["line"].as_u64().unwrap() > 1, "{d}");
    assert_eq!(s["lastAppliedRevision"], second.as_str());
    assert_eq!(s["runningRevision"], second.as_str());
    assert_eq!(condition(&s, "Ready").1, "PolicyInvalid");

    // the fix recovers on the next poll
    let fixed = protect_more.replace("breakglass-*\", \"ceo@*\"", "breakglass-*\", \"cfo@*\"");
    let fix = remote.commit(&[("policy/policy.yaml", &fixed)]);
    remote.push();
    let s = run
        .wait_for("the fixing commit applied", LONG, |s| {
            s["lastAppliedRevision"] == fix.as_str() && s["currentCycle"].is_null()
        })
        .await;
    assert_eq!(s["lastAttemptedRevision"]["valid"], true);
    assert_eq!(condition(&s, "Ready").0, "True", "{s:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_signed_commits_required_an_unsigned_commit_is_an_invalid_revision() {
    let t = Tenant::start().await;
    let demo = DemoCopy::new();
    let original = demo_policy();
    let remote = Remote::new();
    let key = keygen(&remote.root, "admin");
    let allowed = remote.root.join("allowed_signers");
    std::fs::write(&allowed, format!("admin@example.com {}\n", public(&key))).unwrap();
    let signed = remote.commit_signed(&key, &[("policy/policy.yaml", &original)]);
    remote.push();

    let run = Run::start(
        &args(
            &remote,
            &demo,
            &[
                "--require-signed-commits",
                "--allowed-signers",
                allowed.to_str().unwrap(),
                "--plan-only",
            ],
        ),
        &t.env(),
    );
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(s["runningRevision"], signed.as_str(), "{s:#}");

    let unsigned = remote.commit(&[(
        "policy/policy.yaml",
        &original.replace("breakglass-*\"", "breakglass-*\", \"x@*\""),
    )]);
    remote.push();
    let s = run
        .wait_for("the unsigned commit refused", LONG, |s| {
            s["lastAttemptedRevision"]["revision"] == unsigned.as_str()
        })
        .await;
    assert_eq!(s["lastAttemptedRevision"]["valid"], false);
    assert_eq!(
        s["lastAttemptedRevision"]["diagnostics"][0]["code"],
        "commit-unsigned"
    );
    assert_eq!(s["runningRevision"], signed.as_str());
}
