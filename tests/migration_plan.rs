//! Migrating from Entra Connect, in the pure core: the hard match of
//! `adopt: {by: immutableId}` (users by `onPremisesImmutableId`, groups by
//! `onPremisesSecurityIdentifier`) with the safety of any adoption, and `anchor:` changes
//! planned as re-anchoring, never as deletes and creates.

mod support;

use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::{Readable, SafetyInput, Unreadable};
use ad2entra::plan::simulate::apply_to_snapshot;
use ad2entra::plan::{Operation, Plan, plan};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use support::fixtures::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn ops(p: &Plan) -> Vec<(Operation, String)> {
    p.actions
        .iter()
        .map(|a| (a.op, a.object.name.clone()))
        .collect()
}

fn codes(p: &Plan) -> Vec<String> {
    p.diagnostics.iter().map(|d| d.code.clone()).collect()
}

fn diag_objects(p: &Plan, code: &str) -> Vec<String> {
    let mut v: Vec<String> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .filter_map(|d| d.object.clone())
        .collect();
    v.sort();
    v
}

const HARD: &str = "adopt: {by: immutableId}\n";

/// alice, bob and carol; Sales (alice, bob) and All Staff (Sales, carol), with objectSids.
fn company() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("department", "Sales")])
        .user(2, "bob", &[])
        .user(3, "carol", &[]);
    ad.group(100, "Sales", &["alice", "bob"], &[])
        .binary("objectSid", &sid(1100).0);
    ad.group(101, "All Staff", &["grp:Sales", "carol"], &[])
        .binary("objectSid", &sid(1101).0);
    ad
}

/// The tenant Entra Connect left: the company's users and groups with Connect's
/// immutable ids (objectGUID) and security identifiers, `onPremisesSyncEnabled` as
/// given (true while Connect syncs, false once directory synchronization is off).
fn connect_tenant(sync: bool) -> TargetSnapshot {
    let user = |id: &str, sam: &str, n: u32, extra: Value| {
        let mut v = cloud_user(
            id,
            &format!("{sam}@corp.example.com"),
            json!({
                "displayName": format!("{sam} Tester"),
                "givenName": sam,
                "surname": "Tester",
                "mailNickname": sam,
                "usageLocation": "US",
                "onPremisesImmutableId": anchor(n),
                "onPremisesSyncEnabled": sync,
            }),
        );
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        v
    };
    let mut t = tenant(vec![
        user("u-alice", "alice", 1, json!({"department": "Sales"})),
        user("u-bob", "bob", 2, json!({})),
        user("u-carol", "carol", 3, json!({})),
    ]);
    let group = |id: &str, name: &str, rid: u32, members: &[&str]| {
        obj(json!({
            "id": id, "displayName": name, "mailNickname": name.replace(' ', ""),
            "securityEnabled": true, "mailEnabled": false,
            "onPremisesSecurityIdentifier": sid(rid).1,
            "onPremisesSyncEnabled": sync,
            "members": members,
        }))
    };
    t.groups = vec![
        group("g-sales", "Sales", 1100, &["u-alice", "u-bob"]),
        group("g-all", "All Staff", 1101, &["g-sales", "u-carol"]),
    ];
    t
}

/// Applies the plan in memory and plans again: must be empty.
fn converge(yaml: &str, ad: &Ad, t: &TargetSnapshot) -> TargetSnapshot {
    let pol = policy(yaml);
    let src = ad.snapshot();
    let p1 = plan(&pol, &src, t, now()).unwrap();
    let t2 = apply_to_snapshot(&p1, t).unwrap();
    let p2 = plan(&pol, &src, &t2, now()).unwrap();
    assert!(p2.actions.is_empty(), "second plan: {:?}", ops(&p2));
    assert!(p2.blocked.is_empty(), "second plan: {:?}", p2.blocked);
    t2
}

#[test]
fn converted_connect_objects_are_hard_matched_only_adopts_then_nothing() {
    let ad = company();
    let t = connect_tenant(false);
    let p = plan(&policy(HARD), &ad.snapshot(), &t, now()).unwrap();
    let mut adopted: Vec<(Operation, String)> = ops(&p);
    adopted.sort();
    assert_eq!(
        adopted,
        vec![
            (Operation::Adopt, "All Staff".into()),
            (Operation::Adopt, "Sales".into()),
            (Operation::Adopt, "alice@corp.example.com".into()),
            (Operation::Adopt, "bob@corp.example.com".into()),
            (Operation::Adopt, "carol@corp.example.com".into()),
        ],
        "only adopts: no create, no delete, no membership change ({:?})",
        p.diagnostics
    );
    // Each adoption names the Entra object it takes over and stamps the anchor.
    let ext = ext_anchor(&t);
    let sales = p.actions.iter().find(|a| a.object.name == "Sales").unwrap();
    assert_eq!(sales.object.id.as_deref(), Some("g-sales"));
    assert!(sales.reason.contains("onPremisesSecurityIdentifier"));
    assert_eq!(sales.after().unwrap()[&ext], json!(anchor(100)));
    let alice = p
        .actions
        .iter()
        .find(|a| a.object.name == "alice@corp.example.com")
        .unwrap();
    assert_eq!(alice.object.id.as_deref(), Some("u-alice"));
    assert_eq!(alice.after().unwrap()[&ext], json!(anchor(1)));
    let t2 = converge(HARD, &ad, &t);
    assert_eq!(t2.users.len(), 3, "adopted, not duplicated");
    assert_eq!(t2.groups.len(), 2);
}

#[test]
fn without_immutable_id_adoption_connect_objects_are_not_taken_over() {
    // Groups: a second "Sales" would be created beside Connect's (what migrate-check warns
    // of); users: the UPN is held by an unowned user.
    let p = plan(
        &policy(""),
        &company().snapshot(),
        &connect_tenant(false),
        now(),
    )
    .unwrap();
    assert!(p.actions.iter().all(|a| a.op != Operation::Adopt));
    assert_eq!(
        diag_objects(&p, "upn-held-by-unowned-object").len(),
        3,
        "{:?}",
        codes(&p)
    );
}

#[test]
fn objects_still_synced_are_never_adopted_nor_created_again() {
    let ad = company();
    let p = plan(&policy(HARD), &ad.snapshot(), &connect_tenant(true), now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    assert_eq!(diag_objects(&p, "held-by-synced-object").len(), 5);
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "held-by-synced-object")
        .unwrap();
    assert!(d.message.starts_with("hard match by "), "{}", d.message);
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("turn off directory synchronization"),
        "{d:?}"
    );
}

#[test]
fn hard_match_never_takes_role_holders_protected_or_other_owned_objects() {
    let ad = company();
    let mut t = connect_tenant(false);
    t.directory_role_members = Readable::Read(vec!["u-alice".into()]);
    let ext = ext_anchor(&t);
    // carol's Entra user is owned by ad2entra for another AD object.
    if let Some(c) = t.users.iter_mut().find(|u| u.id == "u-carol") {
        c.props.insert(&ext, json!(anchor(77)));
    }
    let p = plan(
        &policy(&format!("{HARD}protect: ['bob@*']\n")),
        &ad.snapshot(),
        &t,
        now(),
    )
    .unwrap();
    let touched: Vec<&str> = p
        .actions
        .iter()
        .filter_map(|a| a.object.id.as_deref())
        .collect();
    for id in ["u-alice", "u-bob", "u-carol"] {
        assert!(!touched.contains(&id), "{id} touched: {:?}", ops(&p));
    }
    assert!(ops(&p).iter().all(|(op, _)| *op != Operation::Create));
    assert_eq!(
        diag_objects(&p, "held-by-role-holder"),
        vec![user_dn("alice")]
    );
    assert_eq!(
        diag_objects(&p, "held-by-other-anchor"),
        vec![user_dn("carol")]
    );
    // bob matches a protect pattern in AD too: left alone before any matching.
    assert!(codes(&p).contains(&"protected".to_string()));
}

#[test]
fn hard_match_adopts_nothing_when_role_holders_are_unknown() {
    let mut t = connect_tenant(false);
    t.directory_role_members = Readable::Unreadable(Unreadable::refused(
        SafetyInput::DirectoryRoles,
        403,
        "Authorization_RequestDenied",
    ));
    let p = plan(&policy(HARD), &company().snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    assert_eq!(
        diag_objects(&p, "adoption-disabled-roles-unreadable").len(),
        5
    );
}

#[test]
fn two_entra_objects_with_one_immutable_id_are_no_hard_match() {
    let ad = company();
    let mut t = connect_tenant(false);
    t.users.push(obj(cloud_user(
        "u-alice2",
        "alice2@corp.example.com",
        json!({"onPremisesImmutableId": anchor(1)}),
    )));
    let p = plan(&policy(HARD), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(
        diag_objects(&p, "hard-match-ambiguous"),
        vec![user_dn("alice")]
    );
    assert!(
        p.actions
            .iter()
            .all(|a| a.object.name != "alice@corp.example.com"),
        "{:?}",
        ops(&p)
    );
    // Nothing else is held back.
    assert_eq!(p.summary.adopt, 4);
}

/// alice's mS-DS-ConsistencyGuid differs from her objectGUID (she moved from another
/// forest), carol's holds her objectGUID (Connect's write-back), bob has none.
fn moved_company() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(501).0);
    ad.user(2, "bob", &[]);
    ad.user(3, "carol", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(3).0);
    ad.group(100, "Sales", &["alice", "bob"], &[]);
    ad
}

const CONSISTENCY: &str = "anchor: mS-DS-ConsistencyGuid\n";

#[test]
fn consistency_guid_anchors_users_when_set() {
    let t = converge(CONSISTENCY, &moved_company(), &tenant(vec![]));
    let ext = ext_anchor(&t);
    let anchors = |upn: &str| {
        let u = t
            .users
            .iter()
            .find(|u| u.str("userPrincipalName") == Some(upn))
            .unwrap();
        (
            u.str(&ext).unwrap().to_string(),
            u.str("onPremisesImmutableId").unwrap().to_string(),
        )
    };
    assert_eq!(
        anchors("alice@corp.example.com"),
        (anchor(501), anchor(501))
    );
    assert_eq!(anchors("bob@corp.example.com"), (anchor(2), anchor(2)));
    assert_eq!(anchors("carol@corp.example.com"), (anchor(3), anchor(3)));
    // Groups keep their objectGUID, as Entra Connect does.
    assert_eq!(t.groups[0].str(&ext), Some(anchor(100).as_str()));
}

#[test]
fn changing_the_anchor_re_anchors_owned_objects_and_never_deletes_or_creates() {
    let ad = moved_company();
    // Owned under objectGUID, with nothing else to do.
    let t = converge("", &ad, &tenant(vec![]));
    let ext = ext_anchor(&t);
    for (from, to, old, new) in [
        ("", CONSISTENCY, anchor(1), anchor(501)),
        (CONSISTENCY, "", anchor(501), anchor(1)),
    ] {
        let t = if from.is_empty() {
            t.clone()
        } else {
            converge(from, &ad, &t)
        };
        let p = plan(&policy(to), &ad.snapshot(), &t, now()).unwrap();
        assert_eq!(
            ops(&p),
            vec![(Operation::Update, "alice@corp.example.com".to_string())],
            "{to:?}: only alice's anchor changes ({:?})",
            p.diagnostics
        );
        let a = &p.actions[0];
        assert_eq!(
            a.object.anchor.as_ref().map(|x| x.0.clone()),
            Some(old.clone()),
            "the action names the object by the anchor it carries"
        );
        assert!(a.reason.starts_with("re-anchor from"), "{}", a.reason);
        let before = a.before.as_ref().unwrap();
        let after = a.after().unwrap();
        assert_eq!(before[&ext], json!(old));
        assert_eq!(before["onPremisesImmutableId"], json!(old));
        assert_eq!(after[&ext], json!(new));
        assert_eq!(after["onPremisesImmutableId"], json!(new));
        assert!(codes(&p).contains(&"reanchored".to_string()));
        assert_eq!(p.summary.owned, 4);
        converge(to, &ad, &t);
    }
}

#[test]
fn re_anchoring_a_soft_deleted_user_restores_it() {
    let ad = moved_company();
    let mut t = converge("", &ad, &tenant(vec![]));
    let i = t
        .users
        .iter()
        .position(|u| u.str("userPrincipalName") == Some("alice@corp.example.com"))
        .unwrap();
    let alice = t.users.remove(i);
    t.deleted_users = Readable::Read(vec![alice.clone()]);
    if let Some(g) = t.groups.first_mut() {
        g.members.retain(|m| *m != alice.id);
    }
    let p = plan(&policy(CONSISTENCY), &ad.snapshot(), &t, now()).unwrap();
    let restore = p
        .actions
        .iter()
        .find(|a| a.op == Operation::Restore)
        .expect("restored, not created");
    assert_eq!(restore.object.anchor.as_ref().unwrap().0, anchor(1));
    assert!(p.actions.iter().all(|a| a.op != Operation::Create));
}

#[test]
fn one_consistency_guid_on_two_users_leaves_both_out() {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(501).0);
    ad.user(2, "bob", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(501).0);
    ad.user(3, "carol", &[]);
    let owned = converge("", &ad, &tenant(vec![]));
    let p = plan(&policy(CONSISTENCY), &ad.snapshot(), &owned, now()).unwrap();
    assert_eq!(
        diag_objects(&p, "anchor-conflict"),
        vec![user_dn("alice"), user_dn("bob")]
    );
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
}

#[test]
fn a_previous_anchor_that_is_another_objects_anchor_is_ambiguous() {
    // dave's mS-DS-ConsistencyGuid is alice's objectGUID: under the new anchor, alice's
    // Entra object could be alice (by her old anchor) or dave (by his new one).
    let mut ad = Ad::new();
    ad.user(1, "alice", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(501).0);
    ad.user(2, "bob", &[]);
    ad.user(4, "dave", &[]);
    let owned = converge("", &ad, &tenant(vec![]));
    let mut ad2 = Ad::new();
    ad2.user(1, "alice", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(501).0);
    ad2.user(2, "bob", &[]);
    ad2.user(4, "dave", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(1).0);
    let p = plan(&policy(CONSISTENCY), &ad2.snapshot(), &owned, now()).unwrap();
    let mut left_out = diag_objects(&p, "reanchor-ambiguous");
    left_out.dedup();
    assert_eq!(
        left_out,
        vec![user_dn("alice"), user_dn("dave")],
        "{:?}",
        p.diagnostics
    );
    // Nothing is written for them, and nothing is deprovisioned.
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
}

#[test]
fn without_consistency_guids_changing_the_anchor_changes_nothing() {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[]).user(2, "bob", &[]);
    let t = converge("", &ad, &tenant(vec![]));
    let p = plan(&policy(CONSISTENCY), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
}

#[test]
fn the_anchor_is_one_of_connects_two_names() {
    let load = |yaml: &str| {
        ad2entra::policy::load(
            "policy.yaml",
            &[ad2entra::policy::PolicyFile {
                name: "policy.yaml".into(),
                text: format!("apiVersion: ad2entra/v1\n{yaml}"),
            }],
        )
    };
    for ok in [
        "anchor: objectGUID\n",
        "anchor: mS-DS-ConsistencyGuid\nadopt: {by: immutableId}\n",
    ] {
        assert!(load(ok).is_ok(), "{ok}");
    }
    let errs = load("anchor: employeeID\n").unwrap_err();
    assert!(
        errs.iter()
            .any(|d| d.code == "invalid-value" && d.message.contains("mS-DS-ConsistencyGuid")),
        "{errs:?}"
    );
}

#[test]
fn an_adopted_user_joins_groups_by_its_id_in_the_same_plan() {
    // Soft match as much as hard match: the adopted object counts as owned for the rest of
    // the plan, so apply gets the member's Graph id (a member without one is only resolved
    // when the same plan creates it).
    let mut ad = Ad::new();
    ad.user(1, "pat", &[]).group(100, "Ops", &["pat"], &[]);
    let t = tenant(vec![cloud_user("p1", "pat@corp.example.com", json!({}))]);
    let p = plan(
        &policy("adopt: {by: userPrincipalName}\n"),
        &ad.snapshot(),
        &t,
        now(),
    )
    .unwrap();
    let add = p
        .actions
        .iter()
        .find(|a| a.op == Operation::AddMembers)
        .expect("pat joins Ops");
    assert_eq!(add.members[0].id.as_deref(), Some("p1"), "{add:?}");
}
