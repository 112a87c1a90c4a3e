//! Planning the `federation:` section against a snapshot: create (a sign-in change shown
//! first in every renderer), update of the changed properties, nothing when equal, domains
//! the policy does not name left alone, certificate expiry and rollover, and domains that
//! cannot be planned.

mod support;

use ad2entra::model::{TargetObject, TargetSnapshot};
use ad2entra::plan::{ObjectType, Operation, Plan, plan, simulate::apply_to_snapshot};
use ad2entra::render;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use support::fixtures::*;

const CERT_2027: &str = include_str!("data/federation/signing-2027.b64");
const CERT_2028: &str = include_str!("data/federation/signing-2028.b64");
const CERT_EXPIRED: &str = include_str!("data/federation/signing-expired-2021.b64");
const DOMAIN: &str = "corp.example.com";

fn section(passive: &str) -> String {
    format!(
        "federation:
  corp.example.com:
    displayName: Corp AD FS
    issuerUri: http://sts.corp.example.com/adfs/services/trust
    passiveSignInUri: {passive}
    signOutUri: https://sts.corp.example.com/adfs/ls/?wa=wsignout1.0
    signingCertificate: {}
    preferredAuthenticationProtocol: wsFed
    federatedIdpMfaBehavior: rejectMfaByFederatedIdp
",
        CERT_2027.trim()
    )
}

const PASSIVE: &str = "https://sts.corp.example.com/adfs/ls/";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// What Graph holds for the policy's settings, plus the read-only status it adds.
fn held(passive: &str, cert: &str) -> TargetObject {
    obj(json!({
        "id": "6601d14b-d113-8f64-fda2-9b5ddda18ecc",
        "displayName": "Corp AD FS",
        "issuerUri": "http://sts.corp.example.com/adfs/services/trust",
        "passiveSignInUri": passive,
        "signOutUri": "https://sts.corp.example.com/adfs/ls/?wa=wsignout1.0",
        "signingCertificate": cert.trim(),
        "preferredAuthenticationProtocol": "wsFed",
        "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
        "activeSignInUri": null,
        "isSignedAuthenticationRequestRequired": false,
        "signingCertificateUpdateStatus": {"certificateUpdateResult": "Success", "lastRunDateTime": "2026-01-01T00:00:00Z"}
    }))
}

fn with_federation(mut t: TargetSnapshot, config: Option<TargetObject>) -> TargetSnapshot {
    t.federation = Some(BTreeMap::from([(DOMAIN.to_string(), config)]));
    t
}

/// alice and bob are in AD; bob is already synced by ad2entra (immutable id), and the
/// tenant has a hand-made admin in the domain without one.
fn setting() -> (support::fixtures::Ad, TargetSnapshot) {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[]).user(2, "bob", &[]);
    let t0 = tenant(vec![]);
    let ext = ext_anchor(&t0);
    let t = tenant(vec![
        cloud_user(
            "b0b",
            "bob@corp.example.com",
            json!({ ext: anchor(2), "onPremisesImmutableId": anchor(2), "displayName": "bob Tester",
                    "givenName": "bob", "surname": "Tester", "mailNickname": "bob", "usageLocation": "US" }),
        ),
        cloud_user("adm1n", "admin@corp.example.com", json!({})),
    ]);
    (ad, t)
}

fn federation_plan(yaml: &str, t: &TargetSnapshot, now: DateTime<Utc>) -> Plan {
    let (ad, _) = setting();
    plan(&policy(yaml), &ad.snapshot(), t, now).unwrap()
}

fn domain_actions(p: &Plan) -> Vec<&ad2entra::plan::Action> {
    p.actions
        .iter()
        .filter(|a| a.object.object_type == ObjectType::Domain)
        .collect()
}

fn codes(p: &Plan) -> Vec<&str> {
    p.diagnostics.iter().map(|d| d.code.as_str()).collect()
}

fn switching_plan() -> Plan {
    let (_, t) = setting();
    federation_plan(&section(PASSIVE), &with_federation(t, None), now())
}

#[test]
fn switching_a_domain_is_a_create_and_a_sign_in_change() {
    let p = switching_plan();
    let d = domain_actions(&p);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].op, Operation::Create);
    assert_eq!(d[0].object.name, DOMAIN);
    let after = d[0].after().unwrap();
    assert_eq!(after["passiveSignInUri"], json!(PASSIVE));
    assert_eq!(after["signingCertificate"], json!(CERT_2027.trim()));
    assert_eq!(after.as_object().unwrap().len(), 7);
    // The federation is created before the users who will sign in through it.
    assert_eq!(p.actions[0].object.object_type, ObjectType::Domain);
    let change = &p.summary.sign_in_changes;
    assert_eq!(change.len(), 1);
    assert_eq!(
        (change[0].users, change[0].users_without_immutable_id),
        (3, 1),
        "bob and admin in Entra, alice created by the plan"
    );
    let warning = p
        .diagnostics
        .iter()
        .find(|d| d.code == "federation-domain-has-cloud-users")
        .expect("warning");
    assert!(
        warning.message.contains("admin@corp.example.com"),
        "{warning}"
    );
    assert!(!warning.message.contains("bob@"), "{warning}");
    assert_eq!(warning.location.as_ref().map(|l| l.line), Some(3));
}

#[test]
fn a_user_adopted_by_the_same_plan_is_not_left_without_an_immutable_id() {
    let mut ad = Ad::new();
    ad.user(3, "admin", &[]);
    let t = with_federation(
        tenant(vec![cloud_user(
            "adm1n",
            "admin@corp.example.com",
            json!({}),
        )]),
        None,
    );
    let yaml = format!("adopt: {{by: userPrincipalName}}\n{}", section(PASSIVE));
    let p = plan(&policy(&yaml), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.iter().any(|a| a.op == Operation::Adopt));
    assert_eq!(p.summary.sign_in_changes[0].users_without_immutable_id, 0);
    assert!(!codes(&p).contains(&"federation-domain-has-cloud-users"));
}

#[test]
fn the_sign_in_change_comes_first_in_every_renderer() {
    let p = switching_plan();
    insta::assert_snapshot!("federation_human", render::human(&p, false));
    insta::assert_snapshot!("federation_markdown", render::markdown(&p));
    let mut v: Value = serde_json::from_str(&render::json(&p)).unwrap();
    v["generator"] = json!("ad2entra");
    insta::assert_json_snapshot!("federation_json", v);
    let human = render::human(&p, false);
    let banner = human.find("Sign-in changes").unwrap();
    assert!(banner < human.find("+ create").unwrap());
    let md = render::markdown(&p);
    assert!(md.find("[!CAUTION]").unwrap() < md.find("```diff").unwrap());
}

#[test]
fn an_equal_configuration_plans_nothing() {
    let (_, t) = setting();
    let p = federation_plan(
        &section(PASSIVE),
        &with_federation(t, Some(held(PASSIVE, CERT_2027))),
        now(),
    );
    assert!(domain_actions(&p).is_empty(), "{:#?}", p.actions);
    assert!(p.summary.sign_in_changes.is_empty());
}

#[test]
fn a_changed_sign_in_uri_is_an_update_of_that_property() {
    let (_, t) = setting();
    let p = federation_plan(
        &section("https://login.corp.example.com/adfs/ls/"),
        &with_federation(t, Some(held(PASSIVE, CERT_2027))),
        now(),
    );
    let d = domain_actions(&p);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].op, Operation::Update);
    assert_eq!(
        serde_json::to_value(&d[0].patch).unwrap(),
        json!([{"op": "replace", "path": "/passiveSignInUri", "value": "https://login.corp.example.com/adfs/ls/"}])
    );
    // `before` holds the managed properties only, as apply re-checks them.
    let before = d[0].before.as_ref().unwrap().as_object().unwrap();
    assert_eq!(before.len(), 7);
    assert!(!before.contains_key("signingCertificateUpdateStatus"));
    assert_eq!(d[0].reason, "the policy differs in passiveSignInUri");
    assert!(p.summary.sign_in_changes.is_empty());
}

#[test]
fn applying_the_plan_in_memory_converges() {
    let (ad, t) = setting();
    let t = with_federation(t, None);
    let pol = policy(&section(PASSIVE));
    let first = plan(&pol, &ad.snapshot(), &t, now()).unwrap();
    let after = apply_to_snapshot(&first, &t).unwrap();
    assert_eq!(
        after
            .domains
            .as_ref()
            .unwrap()
            .iter()
            .find(|d| d.id == DOMAIN)
            .unwrap()
            .authentication_type
            .as_deref(),
        Some("Federated")
    );
    let second = plan(&pol, &ad.snapshot(), &after, now()).unwrap();
    assert!(second.is_empty(), "{:#?}", second.actions);
    let changed = policy(&section("https://login.corp.example.com/adfs/ls/"));
    let third = plan(&changed, &ad.snapshot(), &after, now()).unwrap();
    let after = apply_to_snapshot(&third, &after).unwrap();
    assert!(
        plan(&changed, &ad.snapshot(), &after, now())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_domain_the_policy_does_not_name_is_left_alone() {
    let (_, t) = setting();
    let mut t = with_federation(t, None);
    t.domains.as_mut().unwrap().push(
        serde_json::from_value(
            json!({"id": "legacy.example.com", "isVerified": true, "authenticationType": "Federated"}),
        )
        .unwrap(),
    );
    let p = federation_plan(&section(PASSIVE), &t, now());
    assert!(
        domain_actions(&p)
            .iter()
            .all(|a| a.object.name == DOMAIN && a.op == Operation::Create)
    );
    let w = p
        .diagnostics
        .iter()
        .find(|d| d.code == "federation-domain-not-managed")
        .expect("warning");
    assert!(w.message.contains("legacy.example.com"));
    assert!(
        w.hint
            .as_deref()
            .unwrap()
            .contains("Remove-MgDomainFederationConfiguration")
    );
    // Removing the domain from `federation:` (keeping the section) plans nothing for it.
    let mut t2 = t.clone();
    t2.domains.as_mut().unwrap()[0].authentication_type = Some("Federated".into());
    let p = federation_plan("federation: {}\n", &t2, now());
    assert!(domain_actions(&p).is_empty());
    assert_eq!(
        codes(&p)
            .iter()
            .filter(|c| **c == "federation-domain-not-managed")
            .count(),
        2
    );
    // Without a section, federation is not managed at all: no action, no warning.
    let p = federation_plan("", &t2, now());
    assert!(domain_actions(&p).is_empty());
    assert!(!codes(&p).contains(&"federation-domain-not-managed"));
}

#[test]
fn a_certificate_expiring_within_30_days_is_warned_about() {
    let (_, t) = setting();
    let t = with_federation(t, Some(held(PASSIVE, CERT_2027)));
    let p = federation_plan(&section(PASSIVE), &t, now());
    assert!(!codes(&p).contains(&"signing-certificate-expiring"));
    let soon = Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap();
    let p = federation_plan(&section(PASSIVE), &t, soon);
    let w = p
        .diagnostics
        .iter()
        .find(|d| d.code == "signing-certificate-expiring")
        .expect("warning");
    assert!(w.message.contains("in 17 days"), "{w}");
    assert_eq!(w.location.as_ref().map(|l| l.line), Some(8));
    let late = Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap();
    let p = federation_plan(&section(PASSIVE), &t, late);
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.code == "signing-certificate-expiring" && d.message.contains("expired"))
    );
}

#[test]
fn a_newer_certificate_entra_rolled_over_to_is_not_replaced_by_an_older_one() {
    let (_, t) = setting();
    let t = with_federation(t, Some(held(PASSIVE, CERT_2028)));
    let p = federation_plan(&section(PASSIVE), &t, now());
    assert!(domain_actions(&p).is_empty(), "{:#?}", p.actions);
    assert!(codes(&p).contains(&"federation-certificate-rolled-over"));
    // Other changes still go through, with the newer certificate kept.
    let p = federation_plan(
        &section("https://login.corp.example.com/adfs/ls/"),
        &t,
        now(),
    );
    let d = domain_actions(&p);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].after().unwrap()["signingCertificate"],
        json!(CERT_2028.trim())
    );
    // An older certificate in Entra is replaced by the policy's.
    let older = with_federation(setting().1, Some(held(PASSIVE, CERT_2027)));
    let newer_policy = section(PASSIVE).replace(CERT_2027.trim(), CERT_2028.trim());
    let p = federation_plan(&newer_policy, &older, now());
    assert_eq!(
        domain_actions(&p)[0].after().unwrap()["signingCertificate"],
        json!(CERT_2028.trim())
    );
    assert!(!codes(&p).contains(&"federation-certificate-rolled-over"));
}

#[test]
fn domains_that_cannot_be_planned_say_why() {
    let (_, t) = setting();
    let p = federation_plan(&section(PASSIVE), &t, now());
    assert!(domain_actions(&p).is_empty());
    assert!(codes(&p).contains(&"federation-not-read"));
    let mut unverified = with_federation(t.clone(), None);
    unverified.domains.as_mut().unwrap().push(
        serde_json::from_value(json!({"id": "new.example.com", "isVerified": false})).unwrap(),
    );
    let new_domain = section(PASSIVE).replace("  corp.example.com:", "  new.example.com:");
    let unknown = section(PASSIVE).replace("  corp.example.com:", "  other.example.com:");
    for yaml in [new_domain, unknown] {
        let p = federation_plan(&yaml, &unverified, now());
        assert!(domain_actions(&p).is_empty());
        let e = p
            .diagnostics
            .iter()
            .find(|d| d.code == "federation-domain-unverified")
            .expect("error");
        assert!(e.is_error());
        assert_eq!(p.summary.errors, 1);
    }
}

#[test]
fn validate_warns_about_an_expired_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    let yaml = section(PASSIVE).replace(CERT_2027.trim(), CERT_EXPIRED.trim());
    std::fs::write(&path, format!("apiVersion: ad2entra/v1\n{yaml}")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"))
        .args(["validate", "--policy"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "a warning, not an error: {err}");
    assert!(
        err.contains("policy.yaml:8:25: warning[signing-certificate-expiring]")
            && err.contains("expired on 2021-01-01T00:00:00Z"),
        "{err}"
    );
}
