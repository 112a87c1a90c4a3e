//! Several AD sources planned together, from LDIF fixtures of three domains: the forest
//! corp.example.com with its child domain emea.corp.example.com, and a second forest
//! branch.example.net. Each object's source is named in the plan; a universal group of
//! corp holds members of emea (by DN) and of branch (a foreign security principal,
//! resolved by objectSid); one UPN check spans every source; an objectGUID in two forests
//! and a source that returns nothing are refused.

mod support;

use ad2entra::model::{SourceSnapshot, TargetSnapshot};
use ad2entra::plan::{Operation, Plan, PlanError, plan};
use ad2entra::policy::LoadedPolicy;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::process::Command;
use support::fixtures::{anchor, cloud_user, ext_anchor, guid, policy};

const CORP: &str = "DC=corp,DC=example,DC=com";
const EMEA: &str = "DC=emea,DC=corp,DC=example,DC=com";
const BRANCH: &str = "DC=branch,DC=example,DC=net";
/// The branch forest's domain SID.
const BRANCH_SID: &str = "S-1-5-21-100-200-300";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

/// An LDIF builder whose values may be binary (objectSid).
#[derive(Default, Clone)]
struct Ldif(String);

impl Ldif {
    fn entry(&mut self, dn: &str, n: u32, attrs: &[(&str, &[u8])]) -> &mut Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        self.0.push_str(&format!("dn:: {}\n", b64.encode(dn)));
        self.0
            .push_str(&format!("objectGUID:: {}\n", b64.encode(guid(n).0)));
        for (k, v) in attrs {
            self.0.push_str(&format!("{k}:: {}\n", b64.encode(v)));
        }
        self.0.push('\n');
        self
    }

    fn ou(&mut self, dn: &str, n: u32) -> &mut Self {
        self.entry(dn, n, &[("objectClass", b"organizationalUnit")])
    }

    fn user(&mut self, dn: &str, n: u32, sam: &str, upn: &str, sid: Option<&str>) -> &mut Self {
        let sid = sid.map(|s| ad2entra::sources::fsp::sid_to_bytes(s).expect("a SID"));
        let mut attrs: Vec<(&str, &[u8])> = vec![
            ("objectClass", b"top"),
            ("objectClass", b"person"),
            ("objectClass", b"user"),
            ("sAMAccountName", sam.as_bytes()),
            ("givenName", sam.as_bytes()),
            ("sn", b"Tester"),
            ("userAccountControl", b"512"),
            ("userPrincipalName", upn.as_bytes()),
        ];
        if let Some(s) = &sid {
            attrs.push(("objectSid", s));
        }
        self.entry(dn, n, &attrs)
    }

    fn group(&mut self, dn: &str, n: u32, cn: &str, members: &[String]) -> &mut Self {
        let mut attrs: Vec<(&str, &[u8])> = vec![
            ("objectClass", b"top"),
            ("objectClass", b"group"),
            ("cn", cn.as_bytes()),
            ("sAMAccountName", cn.as_bytes()),
            // A universal security group.
            ("groupType", b"-2147483640"),
        ];
        for m in members {
            attrs.push(("member", m.as_bytes()));
        }
        self.entry(dn, n, &attrs)
    }

    /// The stand-in `CN=<sid>,CN=ForeignSecurityPrincipals,<base>` a domain holds for a
    /// principal of another forest; returns its DN.
    fn fsp(&mut self, base: &str, n: u32, sid: &str) -> String {
        let dn = format!("CN={sid},CN=ForeignSecurityPrincipals,{base}");
        let bytes = ad2entra::sources::fsp::sid_to_bytes(sid).expect("a SID");
        self.entry(
            &dn,
            n,
            &[
                ("objectClass", b"top"),
                ("objectClass", b"foreignSecurityPrincipal"),
                ("objectSid", &bytes),
            ],
        );
        dn
    }

    fn and(&self, other: &Ldif) -> Ldif {
        Ldif(format!("{}{}", self.0, other.0))
    }

    fn read(&self, policy: &LoadedPolicy) -> SourceSnapshot {
        let mut s = ad2entra::ad::ldif::read_ldif(&self.0, "forests.ldif").expect("LDIF");
        ad2entra::sources::tag_by_base_dn(&mut s, policy);
        s
    }
}

fn bob_sid() -> String {
    format!("{BRANCH_SID}-1105")
}

/// corp: Ann (corp.example.com), Cas (UPN in branch.local: corp has no rewrite for it),
/// and the universal group All Staff = Ann, Eve of emea (by DN), Bob of branch (by his
/// foreign security principal), a principal of a forest that is no source, and
/// Authenticated Users (well-known).
fn corp() -> Ldif {
    let mut l = Ldif::default();
    l.ou(&format!("OU=Staff,{CORP}"), 9000)
        .ou(&format!("OU=Groups,{CORP}"), 9001)
        .entry(
            &format!("CN=ForeignSecurityPrincipals,{CORP}"),
            9002,
            &[("objectClass", b"container")],
        )
        .user(
            &format!("CN=Ann,OU=Staff,{CORP}"),
            1,
            "ann",
            "ann@corp.example.com",
            None,
        )
        .user(
            &format!("CN=Cas,OU=Staff,{CORP}"),
            2,
            "cas",
            "cas@branch.local",
            None,
        );
    let bob = l.fsp(CORP, 9003, &bob_sid());
    let stranger = l.fsp(CORP, 9004, "S-1-5-21-9-9-9-1234");
    let authenticated_users = l.fsp(CORP, 9005, "S-1-5-11");
    l.group(
        &format!("CN=All Staff,OU=Groups,{CORP}"),
        100,
        "All Staff",
        &[
            format!("CN=Ann,OU=Staff,{CORP}"),
            format!("CN=Eve,OU=Staff,{EMEA}"),
            bob,
            stranger,
            authenticated_users,
        ],
    );
    l
}

fn emea() -> Ldif {
    let mut l = Ldif::default();
    l.ou(&format!("OU=Staff,{EMEA}"), 9100).user(
        &format!("CN=Eve,OU=Staff,{EMEA}"),
        10,
        "eve",
        "eve@corp.example.com",
        None,
    );
    l
}

/// branch: Bob (UPN in branch.local, rewritten by branch's own rules) and Out, outside
/// branch's own scope.
fn branch() -> Ldif {
    let mut l = Ldif::default();
    l.ou(&format!("OU=Staff,{BRANCH}"), 9200)
        .ou(&format!("OU=Out,{BRANCH}"), 9201)
        .user(
            &format!("CN=Bob,OU=Staff,{BRANCH}"),
            20,
            "bob",
            "bob@branch.local",
            Some(&bob_sid()),
        )
        .user(
            &format!("CN=Out,OU=Out,{BRANCH}"),
            21,
            "out",
            "out@branch.example.net",
            None,
        );
    l
}

fn source_yaml(name: &str, base: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    urls: [ldaps://dc1.{name}.test]\n    bindDn: 'CN=svc,{base}'\n    passwordFrom: env:AD2ENTRA_TEST_UNUSED\n    baseDn: '{base}'\n{extra}"
    )
}

const BRANCH_OWN: &str = "    scope:\n      users: {includeOUs: ['OU=Staff,DC=branch,DC=example,DC=net']}\n    upn:\n      rewriteSuffixes: {branch.local: branch.example.net}\n";

fn policy_text(extra: &str) -> String {
    format!(
        "sources:\n{}{}{}{extra}",
        source_yaml("corp", CORP, ""),
        source_yaml("emea", EMEA, ""),
        source_yaml("branch", BRANCH, BRANCH_OWN),
    )
}

fn three_sources(extra: &str) -> LoadedPolicy {
    policy(&policy_text(extra))
}

/// A tenant where corp.example.com and branch.example.net are verified.
fn tenant(users: Vec<Value>) -> TargetSnapshot {
    let mut t = support::fixtures::tenant(users);
    let mut v = serde_json::to_value(&t).unwrap();
    v["domains"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "branch.example.net", "isVerified": true}));
    t = serde_json::from_value(v).unwrap();
    t
}

fn action<'a>(p: &'a Plan, op: Operation, name: &str) -> &'a ad2entra::plan::Action {
    p.actions
        .iter()
        .find(|a| a.op == op && a.object.name == name)
        .unwrap_or_else(|| panic!("no {op:?} of {name}: {}", ad2entra::render::human(p, false)))
}

fn member_names(a: &ad2entra::plan::Action) -> Vec<&str> {
    let mut v: Vec<&str> = a.members.iter().map(|m| m.name.as_str()).collect();
    v.sort();
    v
}

fn all_three() -> Plan {
    let pol = three_sources("");
    let src = corp().and(&emea()).and(&branch()).read(&pol);
    plan(&pol, &src, &tenant(vec![]), now()).unwrap()
}

#[test]
fn the_plan_names_each_objects_source() {
    let p = all_three();
    let source_of = |op, name| action(&p, op, name).object.source.clone();
    assert_eq!(
        source_of(Operation::Create, "ann@corp.example.com").as_deref(),
        Some("corp")
    );
    assert_eq!(
        source_of(Operation::Create, "eve@corp.example.com").as_deref(),
        Some("emea")
    );
    assert_eq!(
        source_of(Operation::Create, "bob@branch.example.net").as_deref(),
        Some("branch")
    );
    assert_eq!(
        source_of(Operation::Create, "All Staff").as_deref(),
        Some("corp")
    );
    // Provenance: every source with its share of the read.
    let names: Vec<(&str, usize)> = p
        .source
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.objects))
        .collect();
    assert_eq!(names, [("corp", 9), ("emea", 2), ("branch", 4)]);
    // JSON: object.source on every action from AD.
    let v: Value = serde_json::from_str(&ad2entra::render::json(&p)).unwrap();
    for a in v["actions"].as_array().unwrap() {
        assert!(a["object"]["source"].is_string(), "{a:#}");
    }
    // Human and Markdown name them too (a plan of one source does not).
    let human = ad2entra::render::human(&p, false);
    assert!(
        human.contains(&format!(
            "create user bob@branch.example.net  (CN=Bob,OU=Staff,{BRANCH}, source branch)"
        )),
        "{human}"
    );
    insta::assert_snapshot!("three_sources_human", human);
    insta::assert_snapshot!("three_sources_markdown", ad2entra::render::markdown(&p));
}

#[test]
fn a_universal_group_holds_members_of_another_domain_and_of_another_forest() {
    let p = all_three();
    let add = action(&p, Operation::AddMembers, "All Staff");
    // Ann (corp), Eve (emea, by DN), Bob (branch, by his foreign security principal);
    // neither the stranger's principal nor Authenticated Users.
    assert_eq!(
        member_names(add),
        [
            "ann@corp.example.com",
            "bob@branch.example.net",
            "eve@corp.example.com"
        ]
    );
    // The stranger's forest is no source: a warning on the group, once; the well-known
    // SID is no account and goes silently.
    let warnings: Vec<&ad2entra::diagnostics::Diagnostic> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "foreign-member-unresolved")
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", p.diagnostics);
    assert!(warnings[0].message.contains("S-1-5-21-9-9-9-1234"));
    assert!(!warnings[0].is_error());
    assert_eq!(
        warnings[0].object.as_deref(),
        Some(format!("CN=All Staff,OU=Groups,{CORP}").as_str())
    );
}

#[test]
fn without_its_forest_as_a_source_a_foreign_member_is_left_out_with_a_warning() {
    let pol = policy(&format!(
        "sources:\n{}{}",
        source_yaml("corp", CORP, ""),
        source_yaml("emea", EMEA, "")
    ));
    let p = plan(
        &pol,
        &corp().and(&emea()).read(&pol),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    let add = action(&p, Operation::AddMembers, "All Staff");
    assert_eq!(
        member_names(add),
        ["ann@corp.example.com", "eve@corp.example.com"]
    );
    let sids: Vec<&str> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "foreign-member-unresolved")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(sids.len(), 2, "{sids:?}");
    assert!(sids.iter().any(|m| m.contains(&bob_sid())));
}

#[test]
fn nested_membership_counts_across_forests_for_member_of_scope() {
    // corp's scope: members of All Staff only. Bob (branch) is one through his FSP, Out
    // is not; branch keeps its own scope (whole Staff OU) and is not affected.
    let pol = policy(&format!(
        "sources:\n{}{}{}",
        source_yaml(
            "corp",
            CORP,
            &format!("    scope: {{users: {{memberOf: ['CN=All Staff,OU=Groups,{CORP}']}}}}\n")
        ),
        source_yaml("emea", EMEA, ""),
        source_yaml(
            "branch",
            BRANCH,
            &format!(
                "    scope: {{users: {{memberOf: ['CN=All Staff,OU=Groups,{CORP}']}}}}\n    upn: {{rewriteSuffixes: {{branch.local: branch.example.net}}}}\n"
            )
        ),
    ));
    let p = plan(
        &pol,
        &corp().and(&emea()).and(&branch()).read(&pol),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    let mut created: Vec<&str> = p
        .actions
        .iter()
        .filter(|a| {
            a.op == Operation::Create && a.object.object_type == ad2entra::plan::ObjectType::User
        })
        .map(|a| a.object.name.as_str())
        .collect();
    created.sort();
    // Cas is in corp but not a member; Out is in branch but not a member.
    assert_eq!(
        created,
        [
            "ann@corp.example.com",
            "bob@branch.example.net",
            "eve@corp.example.com"
        ]
    );
}

#[test]
fn each_source_has_its_own_scope_and_upn_rules() {
    let p = all_three();
    // branch's own scope: Out is outside it.
    assert!(
        !p.actions.iter().any(|a| a.object.name.starts_with("out@")),
        "{}",
        ad2entra::render::human(&p, false)
    );
    // branch rewrites branch.local; corp does not, so Cas (corp) has no usable UPN.
    action(&p, Operation::Create, "bob@branch.example.net");
    let cas = p
        .diagnostics
        .iter()
        .find(|d| d.object.as_deref() == Some(format!("CN=Cas,OU=Staff,{CORP}").as_str()))
        .expect("a diagnostic for Cas");
    assert_eq!(cas.code, "unverified-upn-suffix");
}

#[test]
fn one_upn_check_spans_every_source() {
    let pol = three_sources("");
    let mut b = branch();
    b.user(
        &format!("CN=Ann Twin,OU=Staff,{BRANCH}"),
        22,
        "ann2",
        "ann@corp.example.com",
        None,
    );
    let p = plan(
        &pol,
        &corp().and(&emea()).and(&b).read(&pol),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    let conflicts: Vec<&ad2entra::diagnostics::Diagnostic> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "upn-conflict")
        .collect();
    assert_eq!(conflicts.len(), 2, "{:#?}", p.diagnostics);
    assert!(conflicts.iter().any(|d| {
        d.message
            .contains(&format!("CN=Ann Twin,OU=Staff,{BRANCH}"))
    }));
    assert!(
        conflicts
            .iter()
            .any(|d| d.message.contains(&format!("CN=Ann,OU=Staff,{CORP}")))
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| a.object.name == "ann@corp.example.com" && a.op == Operation::Create)
    );
}

#[test]
fn one_objectguid_in_two_forests_is_an_error_naming_both_and_deletes_nothing() {
    // Bob's twin in branch has Ann's objectGUID (a forest copied from another). Entra
    // holds Ann already (owned, by that anchor), and deletions are immediate.
    let pol = three_sources("deletion: {mode: delete}\n");
    let mut b = branch();
    b.user(
        &format!("CN=Copy,OU=Staff,{BRANCH}"),
        1,
        "copy",
        "copy@branch.example.net",
        None,
    );
    let t0 = tenant(vec![]);
    let ext = ext_anchor(&t0);
    let t = tenant(vec![cloud_user(
        "ann-id",
        "ann@corp.example.com",
        json!({ ext.clone(): anchor(1), "onPremisesImmutableId": anchor(1) }),
    )]);
    // Read source by source, as the reconciler does (one LDIF file refuses a GUID twice).
    let read = |l: &Ldif, origin: u16, name: &str| {
        let mut s = ad2entra::ad::ldif::read_ldif(&l.0, name).expect("LDIF");
        ad2entra::sources::tag(&mut s, origin, name);
        s
    };
    let (c, e, br) = (
        read(&corp(), 0, "corp"),
        read(&emea(), 1, "emea"),
        read(&b, 2, "branch"),
    );
    let p = plan(&pol, &ad2entra::sources::merge([&c, &e, &br]), &t, now()).unwrap();
    let clash: Vec<&ad2entra::diagnostics::Diagnostic> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "anchor-conflict")
        .collect();
    assert_eq!(clash.len(), 2, "{:#?}", p.diagnostics);
    for d in &clash {
        assert!(d.is_error());
        assert!(
            d.message.contains("(source corp)") && d.message.contains("(source branch)"),
            "{}",
            d.message
        );
    }
    // Neither is planned, and the owned user is neither changed nor deprovisioned.
    assert!(
        !p.actions.iter().any(|a| a
            .object
            .anchor
            .as_ref()
            .is_some_and(|x| x.as_str() == anchor(1))),
        "{}",
        ad2entra::render::human(&p, false)
    );
    assert!(p.blocked.is_empty());
}

#[test]
fn a_source_that_returns_nothing_refuses_the_plan() {
    // Entra holds branch's Bob; the read has corp and emea but no object of branch at
    // all (a failed export, a wrong base DN): that is no reason to delete Bob.
    let pol = three_sources("deletion: {mode: delete}\n");
    let t0 = tenant(vec![]);
    let ext = ext_anchor(&t0);
    let t = tenant(vec![cloud_user(
        "bob-id",
        "bob@branch.example.net",
        json!({ ext.clone(): anchor(20), "onPremisesImmutableId": anchor(20) }),
    )]);
    let err = plan(&pol, &corp().and(&emea()).read(&pol), &t, now()).unwrap_err();
    assert_eq!(err, PlanError::EmptySourcePart("branch".into()));
    assert!(err.to_string().contains("source-failure guard"));
    // With branch read, Bob stays.
    let p = plan(
        &pol,
        &corp().and(&emea()).and(&branch()).read(&pol),
        &t,
        now(),
    )
    .unwrap();
    assert!(
        !p.actions.iter().any(|a| a.op == Operation::Delete),
        "{}",
        ad2entra::render::human(&p, false)
    );
}

#[test]
fn one_source_plans_as_before_without_source_names_in_the_text() {
    let pol = policy(&format!(
        "source: {{url: 'ldaps://dc1.corp.example.com', bindDn: 'CN=svc,{CORP}', passwordFrom: 'env:X', baseDn: '{CORP}'}}\n"
    ));
    let p = plan(&pol, &corp().read(&pol), &tenant(vec![]), now()).unwrap();
    assert_eq!(
        action(&p, Operation::Create, "ann@corp.example.com")
            .object
            .source
            .as_deref(),
        Some("dc1.corp.example.com")
    );
    let human = ad2entra::render::human(&p, false);
    assert!(!human.contains("source dc1"), "{human}");
    assert!(!ad2entra::render::markdown(&p).contains("(source "));
    // A policy without sources (LDIF only) names none.
    let p = plan(
        &policy(""),
        &corp().read(&policy("")),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    assert!(p.actions.iter().all(|a| a.object.source.is_none()));
    assert!(p.source.sources.is_empty());
}

/// The command line: `plan` and `explain` from one LDIF file holding every forest.
#[test]
fn the_cli_reads_one_ldif_of_every_source_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policy.yaml");
    std::fs::write(
        &pol,
        format!("apiVersion: ad2entra/v1\n{}", policy_text("")),
    )
    .unwrap();
    let ldif = dir.path().join("forests.ldif");
    std::fs::write(&ldif, corp().and(&emea()).and(&branch()).0).unwrap();
    let snap = dir.path().join("tenant.json");
    std::fs::write(&snap, serde_json::to_string(&tenant(vec![])).unwrap()).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ad2entra"))
            .args(args)
            .args([
                "--policy",
                pol.to_str().unwrap(),
                "--source-ldif",
                ldif.to_str().unwrap(),
                "--target-snapshot",
                snap.to_str().unwrap(),
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["plan", "--format", "json"])).unwrap();
    let bob = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["object"]["name"] == "bob@branch.example.net")
        .unwrap();
    assert_eq!(bob["object"]["source"], "branch");
    assert_eq!(json["source"]["sources"][2]["name"], "branch");
    let explain = run(&["explain", "bob"]);
    assert!(explain.contains("source      branch"), "{explain}");
    assert!(
        explain.contains("under sources[branch].scope.users.includeOUs"),
        "{explain}"
    );
}

/// `ad2entra test` with fixtures of every forest: each object is judged by the scope and
/// UPN rules of the source that holds it (branch's own, not the first source's).
#[test]
fn policy_tests_judge_each_fixture_by_its_own_sources_rules() {
    let dir = tempfile::tempdir().unwrap();
    let pol = dir.path().join("policy.yaml");
    std::fs::write(
        &pol,
        format!("apiVersion: ad2entra/v1\n{}", policy_text("")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("forests.ldif"),
        corp().and(&emea()).and(&branch()).0,
    )
    .unwrap();
    let tests = dir.path().join("tests");
    std::fs::create_dir(&tests).unwrap();
    std::fs::write(
        tests.join("sources.yaml"),
        "ldif: ../forests.ldif
cases:
  - name: branch's scope and UPN rewrite apply to Bob
    object: bob
    expect:
      inScope: true
      rule: sources[branch]
      values: {userPrincipalName: bob@branch.example.net}
  - name: outside branch's own scope
    object: out
    expect: {inScope: false}
  - name: corp's user under corp's (top-level) rules
    object: ann
    expect:
      inScope: true
      values: {userPrincipalName: ann@corp.example.com}
",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ad2entra"))
        .args(["test", "--policy", pol.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("3 passed, 0 failed"), "{text}");
}
