//! Snapshot tests of the three renderers over one plan that holds every kind of entry:
//! creates, an update, member changes, a licence, a blocked delete and diagnostics.

mod support;

use ad2entra::plan::{Plan, plan};
use ad2entra::render;
use chrono::{TimeZone, Utc};
use serde_json::json;
use support::fixtures::*;

fn sample_plan() -> Plan {
    let pol = policy(
        "deletion: {mode: delete, maxDeletes: 0}\nlicenses: [{whenMemberOf: 'CN=Sales,OU=Groups,DC=corp,DC=example,DC=com', sku: ENTERPRISEPACK}]\n",
    );
    let ext = ext_anchor(&tenant(vec![]));
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("department", "Sales"), ("title", "Rep")])
        .user(2, "bob", &[("department", "Marketing")])
        .user(3, "dup1", &[("userPrincipalName", "same@corp.example.com")])
        .user(4, "dup2", &[("userPrincipalName", "same@corp.example.com")])
        .group(100, "Sales", &["alice", "bob"], &[]);
    let t = tenant(vec![
        cloud_user(
            "b0b",
            "bob@corp.example.com",
            json!({ ext.clone(): anchor(2), "onPremisesImmutableId": anchor(2), "displayName": "bob Tester", "givenName": "bob", "surname": "Tester", "mailNickname": "bob", "department": "Sales", "usageLocation": "US" }),
        ),
        cloud_user("g0ne", "gone@corp.example.com", json!({ ext: anchor(9) })),
    ]);
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    plan(&pol, &ad.snapshot(), &t, now).unwrap()
}

#[test]
fn human_plain() {
    insta::assert_snapshot!(render::human(&sample_plan(), false));
}

#[test]
fn human_color_only_when_asked() {
    let colored = render::human(&sample_plan(), true);
    assert!(colored.contains("\u{1b}["));
    assert!(!render::human(&sample_plan(), false).contains("\u{1b}["));
}

#[test]
fn markdown() {
    insta::assert_snapshot!(render::markdown(&sample_plan()));
}

#[test]
fn markdown_collapses_long_plans() {
    let mut ad = Ad::new();
    for i in 1..=30 {
        ad.user(i, &format!("user{i}"), &[]);
    }
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now).unwrap();
    let md = render::markdown(&p);
    assert!(md.contains("<details><summary>30 actions</summary>"));
    assert!(!render::markdown(&sample_plan()).contains("actions</summary>"));
}

#[test]
fn json() {
    let mut v: serde_json::Value = serde_json::from_str(&render::json(&sample_plan())).unwrap();
    // The generator version changes with releases; the rest is stable.
    v["generator"] = json!("ad2entra");
    insta::assert_json_snapshot!(v);
}

/// A terminal gets at most `LIST_LIMIT` actions of one operation and members of one
/// action, then how many more there are; what is written as it goes is the same text.
#[test]
fn human_collapses_long_lists_and_streams_the_same_text() {
    let n = render::LIST_LIMIT as u32 + 5;
    let mut ad = Ad::new();
    let names: Vec<String> = (1..=n).map(|i| format!("user{i}")).collect();
    for (i, name) in (1..=n).zip(&names) {
        ad.user(i, name, &[]);
    }
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    ad.group(100_000, "Everyone", &members, &[]);
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now).unwrap();
    assert_eq!(p.summary.create as u32, n + 1);
    let text = render::human(&p, false);
    // The group is created first, then the users: 1,006 creates, 1,000 listed.
    assert_eq!(text.matches("  + create ").count(), render::LIST_LIMIT);
    assert!(
        text.contains("  … and 6 more actions, not listed (6 create): `--format json --out FILE` has every one"),
        "{}",
        &text[text.len().saturating_sub(600)..]
    );
    assert_eq!(text.matches("    + member ").count(), render::LIST_LIMIT);
    assert!(text.contains("    + … and 5 more members"));
    assert!(text.ends_with(&format!("Plan: {} to create, 1 member additions.\n", n + 1)));
    let mut streamed = Vec::new();
    render::write_human(&mut streamed, &p, false).unwrap();
    assert_eq!(String::from_utf8(streamed).unwrap(), text);
    let mut json = Vec::new();
    render::write_json(&mut json, &p).unwrap();
    assert_eq!(String::from_utf8(json).unwrap(), render::json(&p));
}
