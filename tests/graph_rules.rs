//! Graph's documented rules at plan time (`ad2entra::graph_rules`), the same rules in the
//! emulator, and the memory of writes Graph still refuses (`plan::refused`).
//!
//! The planner tests are pure (AD fixture × tenant snapshot → plan); the end-to-end ones
//! run the `ad2entra` binary on an LDIF file against an in-process emulator.

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod support;

use ad2entra::graph_rules;
use ad2entra::plan::{Operation, Plan, plan};
use e2e_support::Tenant;
use graph_emulator::model::Kind;
use graph_emulator::rules::UndocumentedRule;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use support::fixtures::*;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 26, 12, 0, 0).unwrap()
}

fn creates(p: &Plan) -> Vec<String> {
    let mut v: Vec<String> = p
        .actions
        .iter()
        .filter(|a| a.op == Operation::Create)
        .map(|a| a.object.name.clone())
        .collect();
    v.sort();
    v
}

/// The one diagnostic with `code` about user `sam`, which must name `property`.
fn diag<'a>(
    p: &'a Plan,
    code: &str,
    sam: &str,
    property: &str,
) -> &'a ad2entra::diagnostics::Diagnostic {
    let dn = user_dn(sam);
    let found: Vec<_> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == code && d.object.as_deref() == Some(dn.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "{code} on {sam}: {:#?}", p.diagnostics);
    let d = found[0];
    assert_eq!(d.attribute.as_deref(), Some(property), "{code}");
    assert!(d.is_error());
    assert!(d.hint.is_some(), "{code} has a hint");
    d
}

// ---------------------------------------------------------------- the planner

const PHONES: &str = "mappings:\n  user:\n    businessPhones: |-\n      {{ telephoneNumber }}\n      {{ otherTelephone | join('\\n') }}\n";
/// Users breaking a rule each: an accented mail (jurgen), a usageLocation that is not a
/// country code (gerd), two businessPhones with [`PHONES`] (phil).
fn with_bad_values(ad: &mut Ad) -> &mut Ad {
    ad.user(2, "jurgen", &[("mail", "jürgen.müller@corp.example.com")])
        .user(3, "gerd", &[("c", "Germany")])
        .user(
            4,
            "phil",
            &[
                ("telephoneNumber", "+1 206 555 0100"),
                ("otherTelephone", "+1 206 555 0101"),
            ],
        )
}

/// mailNickname taken from AD as it is (without the `mail_nickname` filter), and
/// preferredLanguage mapped.
const RAW_NICKNAME: &str = "    mailNickname: \"{{ mailNickname or sAMAccountName }}\"\n    preferredLanguage: \"{{ preferredLanguage }}\"\n";

#[test]
fn each_rule_is_a_per_object_error_naming_dn_property_value_and_mapping() {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[]);
    with_bad_values(&mut ad)
        .user(5, "nick", &[("mailNickname", "nick (ops)")])
        .user(7, "nomail", &[("mail", "n/a")])
        .user(8, "lang", &[("preferredLanguage", "English")])
        .user(
            6,
            "upn",
            &[("userPrincipalName", "first..last@corp.example.com")],
        )
        .group(100, "Staff", &["alice", "jurgen", "phil"], &[]);
    let p = plan(
        &policy(&format!("{PHONES}{RAW_NICKNAME}")),
        &ad.snapshot(),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    assert_eq!(
        creates(&p),
        vec!["Staff", "alice@corp.example.com"],
        "only the valid objects are created"
    );
    // Memberships that need a left-out user are dropped with it.
    let add = p
        .actions
        .iter()
        .find(|a| a.op == Operation::AddMembers)
        .unwrap();
    let members: Vec<&str> = add.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(members, vec!["alice@corp.example.com"]);

    let d = diag(&p, "graph-rule-accented-mail", "jurgen", "mail");
    assert!(
        d.message.contains("jürgen.müller@corp.example.com"),
        "{}",
        d.message
    );
    assert!(
        d.message
            .contains("{{ mail or (proxyAddresses | smtp_primary) }}"),
        "{}",
        d.message
    );
    assert!(d.hint.as_deref().unwrap().contains("normalize_diacritics"));
    let d = diag(&p, "graph-rule-usage-location", "gerd", "usageLocation");
    assert!(d.message.contains("`Germany`"));
    assert!(d.hint.as_deref().unwrap().contains("{{ c | upper }}"));
    let d = diag(&p, "graph-rule-single-valued", "phil", "businessPhones");
    assert!(d.message.contains("+1 206 555 0101"));
    diag(&p, "graph-rule-mail-nickname", "nick", "mailNickname");
    diag(&p, "graph-rule-upn", "upn", "userPrincipalName");
    diag(&p, "graph-rule-mail-format", "nomail", "mail");
    diag(
        &p,
        "graph-rule-preferred-language",
        "lang",
        "preferredLanguage",
    );
}

#[test]
fn an_owned_user_with_a_bad_new_value_keeps_its_state_membership_and_ownership() {
    let pol = policy("deletion: {mode: delete}\n");
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("mail", "alice@corp.example.com")])
        .user(2, "bob", &[])
        .group(100, "Staff", &["alice", "bob"], &[]);
    let first = plan(&pol, &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    let converged = ad2entra::plan::simulate::apply_to_snapshot(&first, &tenant(vec![])).unwrap();
    // AD now gives Alice an address Graph refuses.
    let mut ad2 = Ad::new();
    ad2.user(1, "alice", &[("mail", "alïce@corp.example.com")])
        .user(2, "bob", &[])
        .group(100, "Staff", &["alice", "bob"], &[]);
    let p = plan(&pol, &ad2.snapshot(), &converged, now()).unwrap();
    assert!(
        p.actions.is_empty(),
        "no update, no delete, no membership removal: {:#?}",
        p.actions
    );
    assert!(p.blocked.is_empty());
    diag(&p, "graph-rule-accented-mail", "alice", "mail");
}

#[test]
fn mail_must_not_be_held_by_another_object_in_entra() {
    let mut ad = Ad::new();
    ad.user(1, "vera", &[("mail", "Vertrieb@corp.example.com")])
        .user(2, "sam", &[("mail", "sam@corp.example.com")])
        .user(3, "own", &[("mail", "own@corp.example.com")]);
    let mut t = tenant(vec![cloud_user(
        "cloud-sam",
        "sam.cloud@corp.example.com",
        json!({"mail": "sam.cloud@corp.example.com", "proxyAddresses": ["SMTP:sam.cloud@corp.example.com", "smtp:sam@corp.example.com"]}),
    )]);
    t.groups.push(obj(
        json!({"id": "m365", "displayName": "Sales", "mail": "sales@corp.example.com",
        "proxyAddresses": ["SMTP:sales@corp.example.com", "smtp:vertrieb@corp.example.com"]}),
    ));
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(creates(&p), vec!["own@corp.example.com"]);
    let d = diag(&p, "graph-rule-unique-address", "vera", "mail");
    assert!(
        d.message
            .contains("a proxy address of Entra group Sales (m365)"),
        "{}",
        d.message
    );
    let d = diag(&p, "graph-rule-unique-address", "sam", "mail");
    assert!(
        d.message
            .contains("a proxy address of Entra user sam.cloud@corp.example.com (cloud-sam)"),
        "{}",
        d.message
    );
}

#[test]
fn the_adoption_candidate_and_the_user_itself_do_not_clash() {
    // Adopting by UPN a cloud user that holds the mail already: its own address.
    let mut ad = Ad::new();
    ad.user(1, "ann", &[("mail", "ann@corp.example.com")]);
    let t = tenant(vec![cloud_user(
        "cloud-ann",
        "ann@corp.example.com",
        json!({"mail": "ann@corp.example.com", "proxyAddresses": ["SMTP:ann@corp.example.com"]}),
    )]);
    let p = plan(
        &policy("adopt: {by: userPrincipalName}\n"),
        &ad.snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(p.actions.len(), 1, "{:#?}", p.diagnostics);
    assert_eq!(p.actions[0].op, Operation::Adopt);
    // An owned user whose old address stays as a secondary proxy address: its own.
    let ext = ext_anchor(&t);
    let owned = tenant(vec![cloud_user(
        "ann-id",
        "ann@corp.example.com",
        json!({ext.clone(): anchor(1), "onPremisesImmutableId": anchor(1), "mail": "ann.old@corp.example.com",
               "proxyAddresses": ["SMTP:ann.old@corp.example.com", "smtp:ann@corp.example.com"]}),
    )]);
    let p = plan(&policy(""), &ad.snapshot(), &owned, now()).unwrap();
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].op, Operation::Update);
}

#[test]
fn an_owned_user_cannot_take_a_upn_another_entra_user_holds() {
    let mut ad = Ad::new();
    ad.user(1, "ann", &[("userPrincipalName", "boss@corp.example.com")]);
    let t = tenant(vec![]);
    let ext = ext_anchor(&t);
    let t = tenant(vec![
        cloud_user(
            "ann-id",
            "ann@corp.example.com",
            json!({ext: anchor(1), "onPremisesImmutableId": anchor(1)}),
        ),
        cloud_user("boss-id", "boss@corp.example.com", json!({})),
    ]);
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    let d = diag(&p, "graph-rule-unique-upn", "ann", "userPrincipalName");
    assert!(d.message.contains("boss-id"));
}

/// Every rule code is listed in docs/graph-rules.md (with its source) and in
/// docs/diagnostics.md.
#[test]
fn every_rule_code_is_documented() {
    let rules = std::fs::read_to_string("docs/graph-rules.md").unwrap();
    let diagnostics = std::fs::read_to_string("docs/diagnostics.md").unwrap();
    for code in graph_rules::CODES
        .iter()
        .chain([&ad2entra::plan::refused::CODE])
    {
        let quoted = format!("`{code}`");
        assert!(
            rules.contains(&quoted),
            "{code} missing from docs/graph-rules.md"
        );
        assert!(
            diagnostics.contains(&quoted),
            "{code} missing from docs/diagnostics.md"
        );
    }
}

// ---------------------------------------------------------------- planner = emulator

/// Values on both sides of every rule: the planner flags exactly the values the emulator
/// refuses, so "converges against the emulator" means "converges against Graph".
#[test]
fn the_planner_and_the_emulator_agree_on_every_value() {
    let s = |x: &str| json!(x);
    #[rustfmt::skip]
    let cases: Vec<(&'static str, Value)> = vec![
        ("mail", s("jürgen@corp.example.com")),
        ("mail", s("jurgen@corp.example.com")),
        ("mail", s("plain")),
        ("mail", s("a@b")),
        ("mail", s("a b@corp.example.com")),
        ("mail", s("@corp.example.com")),
        ("otherMails", json!(["ok@example.org", "naïve@example.org"])),
        ("otherMails", json!(["ok@example.org"])),
        (
            "otherMails",
            json!((0..251).map(|i| format!("a{i}@x.org")).collect::<Vec<_>>()),
        ),
        ("otherMails", json!([format!("{}@x.org", "a".repeat(244))])),
        ("otherMails", json!([format!("{}@x.org", "a".repeat(245))])),
        ("usageLocation", s("US")),
        ("usageLocation", s("us")),
        ("usageLocation", s("UK")),
        ("usageLocation", s("XK")),
        ("usageLocation", s("Deutschland")),
        ("preferredLanguage", s("en-US")),
        ("preferredLanguage", s("EN-us")),
        ("preferredLanguage", s("en")),
        ("preferredLanguage", s("xx-US")),
        ("businessPhones", json!(["1"])),
        ("businessPhones", json!(["1", "2"])),
        ("businessPhones", json!([])),
        ("mailNickname", s("john.smith")),
        ("mailNickname", s("john smith")),
        ("mailNickname", s("o'brien")),
        ("mailNickname", s("a/b")),
        ("mailNickname", s("jürgen")),
        ("mailNickname", s(&"n".repeat(64))),
        ("mailNickname", s(&"n".repeat(65))),
        ("userPrincipalName", s("a.b@corp.example.com")),
        ("userPrincipalName", s("a..b@corp.example.com")),
        ("userPrincipalName", s(".a@corp.example.com")),
        ("userPrincipalName", s("a.@corp.example.com")),
        ("userPrincipalName", s("o'neil#1^~!@corp.example.com")),
        ("userPrincipalName", s("josé@corp.example.com")),
        ("userPrincipalName", s("a&b@corp.example.com")),
        ("userPrincipalName", s("nodomain")),
        (
            "userPrincipalName",
            s(&format!("{}@corp.example.com", "u".repeat(64))),
        ),
        (
            "userPrincipalName",
            s(&format!("{}@corp.example.com", "u".repeat(65))),
        ),
        (
            "userPrincipalName",
            s(&format!("u@{}.example.com", "d".repeat(36))),
        ),
        (
            "userPrincipalName",
            s(&format!("u@{}.example.com", "d".repeat(37))),
        ),
        ("displayName", s(&"d".repeat(256))),
        ("displayName", s(&"d".repeat(257))),
        ("givenName", s(&"g".repeat(65))),
        ("surname", s(&"s".repeat(65))),
        ("jobTitle", s(&"j".repeat(129))),
        ("department", s(&"d".repeat(65))),
        ("companyName", s(&"c".repeat(65))),
        ("officeLocation", s(&"o".repeat(129))),
        ("city", s(&"c".repeat(129))),
        ("state", s(&"s".repeat(129))),
        ("country", s(&"c".repeat(129))),
        ("postalCode", s(&"p".repeat(41))),
        ("streetAddress", s(&"s".repeat(1025))),
        ("mobilePhone", s(&"1".repeat(65))),
        ("employeeId", s(&"e".repeat(16))),
        ("employeeId", s(&"e".repeat(17))),
        ("faxNumber", s(&"1".repeat(200))),
        ("employeeType", s(&"t".repeat(200))),
    ];
    let mut flagged = 0;
    for (prop, v) in &cases {
        let name = ad2entra::policy::graph_props::user_prop(prop).unwrap().name;
        let planner =
            !graph_rules::check_props(ad2entra::plan::ObjectType::User, [(name, v)]).is_empty();
        let body: Map<String, Value> = [(prop.to_string(), v.clone())].into_iter().collect();
        let emulator = graph_emulator::rules::check(Kind::User, &body).is_err();
        assert_eq!(
            planner, emulator,
            "{prop} = {v}: planner refuses {planner}, emulator {emulator}"
        );
        flagged += usize::from(planner);
    }
    assert!(
        flagged > 30 && flagged < cases.len() - 10,
        "both kinds of value: {flagged}"
    );
    for (nick, refused) in [
        ("sales.team", false),
        ("sales team", true),
        ("sales;team", true),
    ] {
        let v = json!(nick);
        let planner =
            !graph_rules::check_props(ad2entra::plan::ObjectType::Group, [("mailNickname", &v)])
                .is_empty();
        let body: Map<String, Value> = [("mailNickname".to_string(), v)].into_iter().collect();
        assert_eq!(planner, refused, "{nick}");
        assert_eq!(
            graph_emulator::rules::check(Kind::Group, &body).is_err(),
            refused,
            "{nick}"
        );
    }
}

// ---------------------------------------------------------------- end to end

/// An LDIF file and a policy in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(policy_yaml: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("policy.yaml"),
            format!("apiVersion: ad2entra/v1\n{policy_yaml}"),
        )
        .unwrap();
        Files { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write_ldif(&self, ad: &Ad) {
        std::fs::write(self.path("ad.ldif"), ad.ldif()).unwrap();
    }
}

/// Runs `ad2entra` against the tenant; returns (exit code, stdout + stderr).
async fn run(tenant: &Tenant, files: &Files, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    let policy = files.path("policy.yaml");
    let ldif = files.path("ad.ldif");
    let state = files.path("state.json");
    cmd.args(args)
        .args([
            "--policy",
            path(&policy),
            "--source-ldif",
            path(&ldif),
            "--state",
            path(&state),
        ])
        .env("NO_COLOR", "1")
        .env_remove("AD2ENTRA_EXTENSION_APP_ID")
        .env_remove("AD2ENTRA_POLICY")
        .stdin(std::process::Stdio::null());
    for (k, v) in tenant.env() {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const SCOPE: &str = "scope:\n  users: {includeOUs: [\"OU=Staff,DC=corp,DC=example,DC=com\"]}\n  groups: {includeOUs: [\"OU=Groups,DC=corp,DC=example,DC=com\"]}\n";

/// The test: an accented mail, a usageLocation that is not a country code, two
/// businessPhones, a mail equal to another object's proxy address. Each gets its
/// diagnostic and is left out; the rest converges against the emulator (which enforces
/// the same rules: a refused write would fail the apply); the next plan is empty and
/// still lists the diagnostics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_are_left_out_and_the_rest_converges() {
    let tenant = Tenant::start().await;
    tenant
        .emu
        .seed(&serde_json::from_value(json!({"groups": [{"displayName": "Sales (M365)", "mailNickname": "sales",
            "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"], "mail": "sales@corp.example.com",
            "proxyAddresses": ["SMTP:sales@corp.example.com", "smtp:vertrieb@corp.example.com"]}]}))
        .unwrap())
        .unwrap();
    let files = Files::new(&format!("{SCOPE}{PHONES}"));
    let mut ad = Ad::new();
    ad.user(
        1,
        "alice",
        &[
            ("mail", "alice@corp.example.com"),
            ("telephoneNumber", "+1 206 555 0100"),
        ],
    )
    .user(8, "bob", &[]);
    with_bad_values(&mut ad)
        .user(6, "vera", &[("mail", "vertrieb@corp.example.com")])
        .group(
            100,
            "Staff",
            &["alice", "bob", "jurgen", "gerd", "phil", "vera"],
            &[],
        );
    files.write_ldif(&ad);
    let codes = [
        "error[graph-rule-accented-mail]: CN=jurgen,",
        "error[graph-rule-usage-location]: CN=gerd,",
        "error[graph-rule-single-valued]: CN=phil,",
        "error[graph-rule-unique-address]: CN=vera,",
    ];

    let (code, out) = run(
        &tenant,
        &files,
        &[
            "plan",
            "--detailed-exitcode",
            "--format",
            "json",
            "--out",
            path(&files.path("plan.json")),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{out}");
    let p: Plan =
        serde_json::from_str(&std::fs::read_to_string(files.path("plan.json")).unwrap()).unwrap();
    assert_eq!(
        creates(&p),
        vec!["Staff", "alice@corp.example.com", "bob@corp.example.com"]
    );
    for bad in ["jurgen", "gerd", "phil", "vera"] {
        let named = |a: &ad2entra::plan::Action| {
            a.object.name.starts_with(bad) || a.members.iter().any(|m| m.name.starts_with(bad))
        };
        assert!(!p.actions.iter().any(named), "{bad} is in no action");
    }

    let (code, out) = run(&tenant, &files, &["apply", "--auto-approve"]).await;
    assert_eq!(
        code,
        Some(0),
        "every planned write is accepted by the emulator:\n{out}"
    );
    assert!(out.contains("4 ok, 0 failed"), "{out}");

    let (code, out) = run(&tenant, &files, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Plan: no changes."), "{out}");
    for c in codes {
        assert!(out.contains(c), "{c} still listed:\n{out}");
    }
}

/// A write Graph refuses for a rule nobody documented (an emulator-only rule here): the
/// refusal is remembered in the state, the next plan shows it instead of the write, and
/// once the AD value changes the write is planned (and made) again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_remembered_until_the_ad_value_changes() {
    let tenant = Tenant::start().await;
    tenant.emu.add_undocumented_rule(UndocumentedRule {
        resource: "User".into(),
        property: "jobTitle".into(),
        contains: "ninja".into(),
    });
    let files = Files::new(SCOPE);
    let staff = |title: &str| {
        let mut ad = Ad::new();
        ad.user(1, "alice", &[])
            .user(2, "nina", &[("title", title)])
            .group(100, "Staff", &["alice", "nina"], &[]);
        ad
    };
    files.write_ldif(&staff("Code Ninja"));

    let (code, out) = run(&tenant, &files, &["apply", "--auto-approve"]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("Invalid value specified for property 'jobTitle' of resource 'User'."),
        "{out}"
    );
    let state = std::fs::read_to_string(files.path("state.json")).unwrap();
    assert!(state.contains("\"create "), "{state}");

    let (code, out) = run(&tenant, &files, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(
        code,
        Some(0),
        "the refused create is not proposed again:\n{out}"
    );
    assert!(
        out.contains("error[graph-refused]: CN=nina,OU=Staff,DC=corp,DC=example,DC=com: Graph refused this create on ")
            && out.contains("Request_BadRequest: Invalid value specified for property 'jobTitle' of resource 'User'."),
        "{out}"
    );
    assert!(
        out.contains("[graph-refused]"),
        "shown as held back:\n{out}"
    );

    // The AD value changes: the write is planned again, and goes through.
    files.write_ldif(&staff("Engineer"));
    let (code, out) = run(&tenant, &files, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("+ create user nina@corp.example.com"), "{out}");
    assert!(!out.contains("graph-refused"), "{out}");
    let (code, out) = run(&tenant, &files, &["apply", "--auto-approve"]).await;
    assert_eq!(code, Some(0), "{out}");
    let state = std::fs::read_to_string(files.path("state.json")).unwrap();
    assert!(
        !state.contains("refusedWrites"),
        "a write that went through is forgotten: {state}"
    );
    let (code, out) = run(&tenant, &files, &["plan", "--detailed-exitcode"]).await;
    assert_eq!(code, Some(0), "{out}");
}
