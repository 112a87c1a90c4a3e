//! `plan --policy-repo` and `apply PLAN.json` with a policy from git: the commit SHA is
//! in the plan's provenance and header, and a saved plan from another commit is refused
//! unless `--allow-policy-change`.

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod git_support;
mod run_support;

use e2e_support::Tenant;
use git_support::Remote;
use run_support::DemoCopy;
use std::process::{Command, Output};

fn demo_policy() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/demo/policy.yaml"
    ))
    .unwrap()
}

fn ad2entra(t: &Tenant, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    cmd.args(args)
        .env_remove("AD2ENTRA_POLICY")
        .env_remove("AD2ENTRA_POLICY_REPO");
    for (k, v) in t.env() {
        cmd.env(k, v);
    }
    cmd.output().expect("run ad2entra")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_carries_its_commit_and_apply_refuses_a_plan_from_another_commit() {
    let t = Tenant::start().await;
    let demo = DemoCopy::new();
    let remote = Remote::new();
    let policy = demo_policy();
    let first = remote.commit(&[("policy/policy.yaml", &policy)]);
    remote.push();
    let url = remote.url();
    let cache = remote.cache.to_str().unwrap().to_string();
    let ldif = demo.ldif().display().to_string();
    let plan_path = demo.dir.path().join("plan.json");
    let plan_file = plan_path.to_str().unwrap();
    let repo = [
        "--policy-repo",
        url.as_str(),
        "--policy-path",
        "policy",
        "--git-cache",
        cache.as_str(),
    ];

    let mut args = vec!["plan"];
    args.extend(repo);
    args.extend(["--source-ldif", ldif.as_str(), "--out", plan_file]);
    let o = ad2entra(&t, &args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("commit {}", &first[..12])),
        "the human header names the commit:\n{}",
        text(&o)
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_path).unwrap()).unwrap();
    assert_eq!(plan["policy"]["commit"], first.as_str());
    assert_eq!(plan["policy"]["path"], "policy");

    // Without the repository, apply cannot check the plan's commit: refused.
    let o = ad2entra(&t, &["apply", plan_file, "--auto-approve"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--policy-repo"), "{}", text(&o));

    // A new commit on the branch: the saved plan is stale.
    let changed = policy.replace(
        "protect: [\"admin@*\", \"breakglass-*\"]",
        "protect: [\"admin@*\", \"breakglass-*\", \"ceo@*\"]",
    );
    assert_ne!(changed, policy);
    let second = remote.commit(&[("policy/policy.yaml", &changed)]);
    remote.push();
    let writes = t.writes();
    let mut args = vec!["apply", plan_file, "--auto-approve"];
    args.extend(repo);
    let o = ad2entra(&t, &args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&first) && text(&o).contains(&second),
        "{}",
        text(&o)
    );
    assert_eq!(t.writes(), writes, "nothing written");

    // Told to, it applies the plan anyway.
    args.push("--allow-policy-change");
    let o = ad2entra(&t, &args);
    assert!(t.writes() > writes, "{}", text(&o));
}
