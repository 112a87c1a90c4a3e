//! `migrate-check`'s report, in the pure core: each finding with the tenant it describes,
//! the advice, and the human rendering (snapshot).

mod support;

use ad2entra::migrate::{MigrationReport, TenantSync, migrate_check, render_human};
use ad2entra::model::TargetSnapshot;
use serde_json::{Value, json};
use support::fixtures::*;

/// alice (consistencyGuid = objectGUID), bob (moved: consistencyGuid differs), carol,
/// dan (no Entra object), and eve outside the scope; Sales with objectSid.
fn company() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(1).0);
    ad.user(2, "bob", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(502).0);
    ad.user(3, "carol", &[("userPrincipalName", "carol@corp.local")]);
    ad.user(4, "dan", &[]);
    ad.entry(
        &format!("CN=eve,OU=Contractors,{BASE}"),
        5,
        &[
            ("objectClass", "user"),
            ("sAMAccountName", "eve"),
            ("userPrincipalName", "eve@corp.example.com"),
            ("userAccountControl", "512"),
        ],
    );
    ad.group(100, "Sales", &["alice", "bob"], &[])
        .binary("objectSid", &sid(1100).0);
    ad
}

fn connect_user(id: &str, upn: &str, immutable: &str, sync: bool) -> Value {
    cloud_user(
        id,
        upn,
        json!({"onPremisesImmutableId": immutable, "onPremisesSyncEnabled": sync}),
    )
}

fn connect_tenant(sync: bool) -> TargetSnapshot {
    let mut t = tenant(vec![
        connect_user("u-alice", "alice@corp.example.com", &anchor(1), sync),
        connect_user("u-bob", "bob@corp.example.com", &anchor(502), sync),
        connect_user("u-carol", "carol@corp.example.com", &anchor(3), sync),
        connect_user("u-eve", "eve@corp.example.com", &anchor(5), sync),
        connect_user("u-emp", "frank@corp.example.com", "EMP00042", sync),
        cloud_user("u-cloud", "helpdesk@corp.example.com", json!({})),
    ]);
    t.groups = vec![obj(json!({
        "id": "g-sales", "displayName": "Sales", "mailNickname": "Sales",
        "securityEnabled": true, "mailEnabled": false,
        "onPremisesSecurityIdentifier": sid(1100).1, "onPremisesSyncEnabled": sync,
        "members": ["u-alice", "u-bob"],
    }))];
    t
}

const POLICY: &str = "scope: {users: {includeOUs: ['OU=Staff,DC=corp,DC=example,DC=com']}}\nupn: {rewriteSuffixes: {corp.local: corp.example.org}}\n";

fn report(extra: &str, sync: bool) -> MigrationReport {
    let mut t = connect_tenant(sync);
    if let Some(d) = t.domains.as_mut() {
        d.push(
            serde_json::from_value(json!({"id": "corp.example.org", "isVerified": true})).unwrap(),
        );
    }
    migrate_check(
        &policy(&format!("{POLICY}{extra}")),
        &company().snapshot(),
        &t,
        if sync {
            TenantSync::On {
                last_sync: Some("2026-11-26T11:30:00Z".into()),
            }
        } else {
            TenantSync::Off { last_sync: None }
        },
        5,
    )
}

fn names(f: &ad2entra::migrate::Finding) -> Vec<String> {
    let mut v: Vec<String> = f
        .examples
        .iter()
        .map(|e| e.entra.clone().or(e.ad.clone()).unwrap_or_default())
        .collect();
    v.sort();
    v
}

#[test]
fn a_tenant_still_synced_by_connect() {
    let r = report("", true);
    assert_eq!((r.still_synced.users, r.still_synced.groups), (5, 1));
    // alice and carol by objectGUID, Sales by SID; bob's immutable id is his
    // mS-DS-ConsistencyGuid, which differs.
    assert_eq!((r.hard_matched.users, r.hard_matched.groups), (2, 1));
    assert_eq!(
        names(&r.immutable_id_not_object_guid),
        vec![
            "bob@corp.example.com (u-bob)",
            "frank@corp.example.com (u-emp)"
        ]
    );
    let bob = &r.immutable_id_not_object_guid.examples[0];
    assert!(bob.detail.contains("would hard-match"), "{}", bob.detail);
    // bob's AD object is in scope (under another anchor): reported above, not here.
    assert_eq!(
        names(&r.no_ad_counterpart),
        vec![
            "eve@corp.example.com (u-eve)",
            "frank@corp.example.com (u-emp)"
        ]
    );
    let eve = r
        .no_ad_counterpart
        .examples
        .iter()
        .find(|e| e.entra.as_deref() == Some("eve@corp.example.com (u-eve)"))
        .unwrap();
    assert!(
        eve.detail.contains("outside the policy's scope"),
        "{}",
        eve.detail
    );
    assert_eq!(
        r.upn_changes.examples[0].detail,
        "carol@corp.example.com → carol@corp.example.org"
    );
    // bob has no hard match under objectGUID, and dan none at all.
    assert_eq!(r.to_create.users, 2);
    assert!(
        r.advice[0].starts_with("Directory synchronization is on"),
        "{:?}",
        r.advice
    );
    assert!(
        r.advice
            .iter()
            .any(|a| a.contains("adopt: {by: immutableId}"))
    );
    assert!(
        r.advice
            .iter()
            .any(|a| a.contains("anchor: mS-DS-ConsistencyGuid"))
    );
}

#[test]
fn the_consistency_guid_anchor_hard_matches_moved_users() {
    let r = report(
        "anchor: mS-DS-ConsistencyGuid\nadopt: {by: immutableId}\n",
        false,
    );
    assert_eq!(r.still_synced.total(), 0);
    assert_eq!((r.hard_matched.users, r.hard_matched.groups), (3, 1));
    assert_eq!(
        names(&r.immutable_id_not_object_guid),
        vec!["frank@corp.example.com (u-emp)"],
        "bob's consistencyGuid is the anchor now; frank's is custom"
    );
    assert!(!r.advice.iter().any(|a| a.contains("adopt:")));
    assert_eq!(r.to_create.users, 1, "dan");
}

#[test]
fn objects_ad2entra_owns_already_are_not_matches() {
    let mut t = connect_tenant(false);
    let ext = t.extension_names().anchor;
    t.users[0].props.insert(&ext, json!(anchor(1)));
    let r = migrate_check(
        &policy(POLICY),
        &company().snapshot(),
        &t,
        TenantSync::Off { last_sync: None },
        5,
    );
    assert_eq!(r.already_owned, 1);
    assert!(!names(&r.hard_matched).contains(&"alice@corp.example.com (u-alice)".to_string()));
}

#[test]
fn examples_are_bounded_and_counts_are_not() {
    let mut t = connect_tenant(true);
    for i in 0..20 {
        t.users.push(obj(connect_user(
            &format!("u-x{i}"),
            &format!("x{i}@corp.example.com"),
            &anchor(1000 + i),
            true,
        )));
    }
    let r = migrate_check(
        &policy(POLICY),
        &company().snapshot(),
        &t,
        TenantSync::Unknown {
            reason: "snapshot".into(),
        },
        3,
    );
    assert_eq!(r.still_synced.users, 25);
    assert_eq!(r.still_synced.examples.len(), 3);
    assert!(render_human(&r).contains("… and 23 more"));
}

#[test]
fn human_report() {
    insta::assert_snapshot!(render_human(&report("", true)));
}
