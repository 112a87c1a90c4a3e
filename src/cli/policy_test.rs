//! `ad2entra test`: policy unit tests kept beside the policy. Each test file names AD
//! fixtures (an LDIF file and/or inline objects) and cases: an object and what the
//! policy must decide for it (scope, rule, mapped values, diagnostics).

use super::common::load_policy;
use ad2entra::desired::{SourceIndex, TenantFacts, evaluate};
use ad2entra::model::{Dn, ObjectGuid, SourceObject, SourceSnapshot};
use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One test file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// LDIF fixtures, relative to the test file.
    #[serde(default)]
    ldif: Option<String>,
    /// Inline fixtures.
    #[serde(default)]
    objects: Vec<InlineObject>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InlineObject {
    dn: String,
    /// Printed GUID; derived from the DN when absent.
    #[serde(default, rename = "objectGUID")]
    object_guid: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// DN, userPrincipalName or sAMAccountName of a fixture.
    object: String,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expect {
    #[serde(default)]
    in_scope: Option<bool>,
    /// A substring of the scope rule.
    #[serde(default)]
    rule: Option<String>,
    /// Graph property → expected value (null: unset).
    #[serde(default)]
    values: BTreeMap<String, Value>,
    /// Diagnostic codes the object must get (exactly these, in any order).
    #[serde(default)]
    diagnostics: Option<Vec<String>>,
}

fn tests_dir(policy: &Path) -> PathBuf {
    if policy.is_dir() {
        policy.join("tests")
    } else {
        policy.parent().unwrap_or(Path::new(".")).join("tests")
    }
}

fn fixtures(file: &Path, tf: &TestFile) -> anyhow::Result<SourceSnapshot> {
    let mut snap = match &tf.ldif {
        Some(rel) => {
            let p = file.parent().unwrap_or(Path::new(".")).join(rel);
            ad2entra::ad::ldif::read_ldif_file(&p)
                .with_context(|| format!("{}: fixture {}", file.display(), p.display()))?
        }
        None => SourceSnapshot {
            server: file.display().to_string(),
            ..Default::default()
        },
    };
    for o in &tf.objects {
        let dn = Dn::parse(&o.dn).with_context(|| format!("{}: fixture DN", file.display()))?;
        let guid = match &o.object_guid {
            Some(g) => ObjectGuid::parse(g)?,
            None => {
                let h = Sha256::digest(dn.key().as_bytes());
                ObjectGuid::from_bytes(&h[..16])?
            }
        };
        let mut attrs: Vec<(String, Vec<Vec<u8>>)> =
            vec![("objectGUID".into(), vec![guid.0.to_vec()])];
        for (k, v) in &o.attributes {
            let vals = match v {
                OneOrMany::One(s) => vec![s.as_bytes().to_vec()],
                OneOrMany::Many(list) => list.iter().map(|s| s.as_bytes().to_vec()).collect(),
            };
            attrs.push((k.clone(), vals));
        }
        snap.objects.push(
            SourceObject::from_attrs(dn, attrs)
                .map_err(anyhow::Error::msg)?
                .into(),
        );
    }
    Ok(snap)
}

fn find<'a>(snap: &'a SourceSnapshot, who: &str) -> Option<&'a std::sync::Arc<SourceObject>> {
    let dn = Dn::parse(who).ok().filter(|_| who.contains('='));
    let w = who.to_lowercase();
    snap.objects.iter().find(|o| {
        dn.as_ref().is_some_and(|d| o.dn == *d)
            || o.text("userPrincipalName")
                .is_some_and(|u| u.to_lowercase() == w)
            || o.text("sAMAccountName")
                .is_some_and(|s| s.to_lowercase() == w)
    })
}

/// Runs one case; returns the failures.
fn check(
    case: &Case,
    policy: &ad2entra::policy::LoadedPolicy,
    snap: &SourceSnapshot,
    index: &SourceIndex,
) -> Vec<String> {
    let Some(o) = find(snap, &case.object) else {
        return vec![format!("no fixture object `{}`", case.object)];
    };
    let ev = evaluate(policy, &TenantFacts::default(), index, o);
    let mut fails = Vec::new();
    if let Some(want) = case.expect.in_scope
        && want != ev.decision.in_scope
    {
        fails.push(format!(
            "expected {}, but it is {} ({})",
            if want { "in scope" } else { "out of scope" },
            if ev.decision.in_scope {
                "in scope"
            } else {
                "out of scope"
            },
            ev.decision.rule
        ));
    }
    if let Some(rule) = &case.expect.rule
        && !ev.decision.rule.contains(rule.as_str())
    {
        fails.push(format!(
            "expected the rule to mention `{rule}`, got `{}`",
            ev.decision.rule
        ));
    }
    for (prop, want) in &case.expect.values {
        let got = ev
            .object
            .as_ref()
            .and_then(|d| d.props.value(prop))
            .unwrap_or(Value::Null);
        let same = match (want, &got) {
            (Value::String(w), Value::Array(a)) => {
                a.len() == 1 && a[0].as_str() == Some(w.as_str())
            }
            (Value::String(w), Value::Bool(b)) => w == &b.to_string(),
            _ => *want == got,
        };
        if !same {
            fails.push(format!("{prop}: expected {want}, got {got}"));
        }
    }
    if let Some(want) = &case.expect.diagnostics {
        let mut got: Vec<&str> = ev.diagnostics.iter().map(|d| d.code.as_str()).collect();
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        got.sort();
        want.sort();
        if got != want {
            fails.push(format!("diagnostics: expected {want:?}, got {got:?}"));
        }
    }
    fails
}

pub fn run(policy_path: &Path, tests: Option<&Path>) -> anyhow::Result<ExitCode> {
    let policy = load_policy(policy_path)?;
    let dir = tests
        .map(Path::to_path_buf)
        .unwrap_or_else(|| tests_dir(policy_path));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no policy tests at {} (give --tests DIR)", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.yaml test files in {}", dir.display());
    }
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        let tf: TestFile = match serde_saphyr::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                let (l, c) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((1, 1));
                eprintln!(
                    "{}:{l}:{c}: error[invalid-test-file]: {}",
                    file.display(),
                    e.without_snippet().to_string().lines().next().unwrap_or("")
                );
                failed += 1;
                continue;
            }
        };
        let mut snap = fixtures(file, &tf)?;
        // Fixtures of several domains: each object goes to the source that holds it.
        ad2entra::sources::tag_by_base_dn(&mut snap, &policy);
        let index = SourceIndex::new(&snap);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for case in &tf.cases {
            let fails = check(case, &policy, &snap, &index);
            if fails.is_empty() {
                passed += 1;
                println!("ok    {name}: {}", case.name);
            } else {
                failed += 1;
                println!("FAIL  {name}: {}", case.name);
                for f in fails {
                    println!("        {f}");
                }
            }
        }
    }
    println!("\npolicy tests: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
