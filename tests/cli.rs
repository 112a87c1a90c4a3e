//! The command line as scripts use it: exit codes, output formats, diagnostics.

mod support;

use ad2entra::plan::simulate::apply_to_snapshot;
use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("AZURE_TENANT_ID").env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const DEMO: [&str; 4] = [
    "--policy",
    "examples/demo/policy.yaml",
    "--source-ldif",
    "examples/demo/corp.ldif",
];

fn empty_snapshot(dir: &Path) -> String {
    let p = dir.join("empty.json");
    std::fs::write(&p, r#"{"users": [], "groups": []}"#).unwrap();
    p.display().to_string()
}

#[test]
fn validate_exit_codes_and_five_located_mistakes() {
    let ok = run(&["validate", "--policy", "examples/demo/policy.yaml"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let bad = run(&[
        "validate",
        "--policy",
        "tests/data/policies/five-mistakes.yaml",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let out = text(&bad);
    insta::assert_snapshot!("five_mistakes", out);
    for needle in [
        "five-mistakes.yaml:5:17: error[literal-secret]",
        "five-mistakes.yaml:9:5: error[unknown-field]",
        "five-mistakes.yaml:10:17: error[invalid-ldap-filter]",
        "five-mistakes.yaml:13:18: error[invalid-template]",
        "five-mistakes.yaml:15:9: error[invalid-value]",
    ] {
        assert!(out.contains(needle), "missing {needle} in:\n{out}");
    }
    assert!(out.contains("hint: "));
}

#[test]
fn every_shipped_policy_validates() {
    let mut n = 0;
    for dir in ["policies", "examples"] {
        for entry in walk(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).as_path()) {
            if entry.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && !entry.components().any(|c| c.as_os_str() == "tests")
            {
                let text = std::fs::read_to_string(&entry).unwrap();
                if !text.contains("apiVersion: ad2entra/") {
                    continue; // Kubernetes manifests and CI workflows are YAML too
                }
                let o = run(&["validate", "--policy", entry.to_str().unwrap()]);
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{}: {}",
                    entry.display(),
                    self::text(&o)
                );
                n += 1;
            }
        }
    }
    assert!(n >= 2);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn plan_detailed_exitcode_two_with_changes_zero_without() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_snapshot(tmp.path());
    let out_file = tmp.path().join("plan.json");
    let mut args = vec!["plan"];
    args.extend(DEMO);
    args.extend([
        "--target-snapshot",
        &empty,
        "--detailed-exitcode",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("+ create user juergen.mueller@corp.example.com")
    );
    // Without --detailed-exitcode, changes still exit 0.
    let o2 = run(&args[..args.len() - 3]);
    assert_eq!(o2.status.code(), Some(0));
    // Apply the saved plan to the snapshot in memory: planning again gives exit 0.
    let plan: ad2entra::plan::Plan =
        serde_json::from_str(&std::fs::read_to_string(&out_file).unwrap()).unwrap();
    let before: ad2entra::model::TargetSnapshot =
        serde_json::from_str(r#"{"users": [], "groups": []}"#).unwrap();
    let after = apply_to_snapshot(&plan, &before).unwrap();
    let converged = tmp.path().join("converged.json");
    std::fs::write(&converged, serde_json::to_string(&after).unwrap()).unwrap();
    let mut args = vec!["plan"];
    args.extend(DEMO);
    args.extend([
        "--target-snapshot",
        converged.to_str().unwrap(),
        "--detailed-exitcode",
    ]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Plan: no changes."));
}

#[test]
fn plan_on_demo_creates_exactly_the_in_scope_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_snapshot(tmp.path());
    let mut args = vec!["plan"];
    args.extend(DEMO);
    args.extend(["--target-snapshot", &empty, "--format", "json"]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let plan: ad2entra::plan::Plan = serde_json::from_slice(&o.stdout).unwrap();
    let creates = plan
        .actions
        .iter()
        .filter(|a| a.op == ad2entra::plan::Operation::Create)
        .count();
    assert_eq!(
        creates,
        plan.summary.in_scope_users + plan.summary.in_scope_groups
    );
    assert!(plan.summary.in_scope_users >= 200);
    let names: Vec<&str> = plan
        .actions
        .iter()
        .map(|a| a.object.name.as_str())
        .collect();
    for never in [
        "svc_backup",
        "MSOL_0a1b2c3d4e5f",
        "krbtgt",
        "Administrator",
        "Domain Admins",
        "Company Newsletter",
    ] {
        assert!(
            !names.iter().any(|n| n.starts_with(never)),
            "{never} must not be planned"
        );
    }
}

#[test]
fn plan_markdown_format() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_snapshot(tmp.path());
    let mut args = vec!["plan"];
    args.extend(DEMO);
    args.extend(["--target-snapshot", &empty, "--format", "markdown"]);
    let o = run(&args);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.starts_with("### ad2entra plan:"));
    assert!(md.contains("<details><summary>"));
}

#[test]
fn plan_errors_exit_one() {
    let o = run(&[
        "plan",
        "--policy",
        "tests/data/policies/five-mistakes.yaml",
        "--source-ldif",
        "examples/demo/corp.ldif",
        "--target-snapshot",
        "/nonexistent.json",
        "--detailed-exitcode",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&[
        "plan",
        "--policy",
        "examples/demo/policy.yaml",
        "--source-ldif",
        "/nonexistent.ldif",
        "--target-snapshot",
        "/x.json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("/nonexistent.ldif"));
    // No target and no credentials: a clear error, not a plan against nothing.
    let mut args = vec!["plan"];
    args.extend(DEMO);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("--target-snapshot"));
}

#[test]
fn explain_shows_decision_values_and_action() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = empty_snapshot(tmp.path());
    let mut args = vec!["explain"];
    args.extend(DEMO);
    args.extend(["--target-snapshot", &empty, "svc_backup"]);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("Scope: OUT — scope.users.when is false"),
        "{out}"
    );
    let mut args = vec!["explain"];
    args.extend(DEMO);
    args.extend([
        "--target-snapshot",
        &empty,
        "juergen.mueller@corp.example.com",
    ]);
    let out = text(&run(&args));
    assert!(out.contains("Scope: IN"));
    assert!(out.contains("displayName        = \"Jürgen Müller\""));
    assert!(out.contains("create — in scope in AD, absent in Entra"));
}

/// `ad2entra test` of the demo policy with the test files in `dir`.
fn run_demo_policy_tests(dir: &Path) -> Output {
    run(&[
        "test",
        "--policy",
        "examples/demo/policy.yaml",
        "--tests",
        dir.to_str().unwrap(),
    ])
}

#[test]
fn policy_tests_pass_and_fail() {
    let o = run(&["test", "--policy", "examples/demo/policy.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 failed"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wrong.yaml"),
        "ldif: ../../../examples/demo/corp.ldif\ncases:\n  - name: wrong on purpose\n    object: svc_backup\n    expect: {inScope: true}\n",
    )
    .unwrap();
    let o = run_demo_policy_tests(tmp.path());
    // The relative fixture path does not resolve from a temp dir: that is a failure too.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let tests_dir = tmp.path().join("t");
    std::fs::create_dir(&tests_dir).unwrap();
    let ldif = std::fs::canonicalize("examples/demo/corp.ldif").unwrap();
    std::fs::write(
        tests_dir.join("wrong.yaml"),
        format!("ldif: {}\ncases:\n  - name: wrong on purpose\n    object: svc_backup\n    expect: {{inScope: true}}\n", ldif.display()),
    )
    .unwrap();
    let o = run_demo_policy_tests(&tests_dir);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o);
    assert!(out.contains("FAIL  wrong.yaml: wrong on purpose"), "{out}");
    assert!(out.contains("expected in scope, but it is out of scope"));
    assert!(out.contains("0 passed, 1 failed"));
}

#[test]
fn schema_is_json_schema_of_the_policy() {
    let o = run(&["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["properties"]["scope"].is_object());
    assert!(
        v["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "apiVersion")
    );
}

#[test]
fn demo_converges_against_the_emulator() {
    let o = run(&["demo"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("Converged:"));
    assert!(out.contains("== 4. plan again: must be empty"));
}

#[test]
fn unreadable_policy_and_broken_test_file() {
    let o = run(&["validate", "--policy", "/nonexistent/policy.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("error[policy-unreadable]"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("broken.yaml"),
        "cases:\n  - name: x\n    objekt: y\n",
    )
    .unwrap();
    let o = run_demo_policy_tests(tmp.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("broken.yaml:3:5: error[invalid-test-file]"),
        "{}",
        text(&o)
    );
}

/// Every code documented in docs/diagnostics.md appears in some test: a new code
/// cannot be added without a test that produces it.
#[test]
fn every_documented_diagnostic_code_is_tested() {
    let doc = std::fs::read_to_string("docs/diagnostics.md").unwrap();
    let mut codes = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for part in first.split('`').skip(1).step_by(2) {
            codes.push(part.to_string());
        }
    }
    assert!(codes.len() > 40, "{codes:?}");
    let mut corpus = String::new();
    for f in walk(Path::new("tests"))
        .into_iter()
        .chain(walk(Path::new("src")))
    {
        if f.extension().is_some_and(|e| e == "rs") {
            let t = std::fs::read_to_string(&f).unwrap();
            // only test code counts: integration tests, and unit-test modules in src
            if f.starts_with("tests") || f.to_string_lossy().contains("tests") {
                corpus.push_str(&t);
            } else if let Some(i) = t.find("#[cfg(test)]") {
                corpus.push_str(&t[i..]);
            }
        }
    }
    let untested: Vec<&String> = codes
        .iter()
        .filter(|c| !corpus.contains(&format!("\"{c}\"")) && !corpus.contains(&format!("[{c}]")))
        .collect();
    assert!(
        untested.is_empty(),
        "documented codes no test produces: {untested:?}"
    );
}
