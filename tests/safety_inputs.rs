//! Fail closed: a safety input Graph refused to read is never taken as "none". Each rule
//! has a test that fails without it (and a control showing the same plan with the input
//! readable does what the rule would otherwise prevent). The planner tests are pure; the
//! last ones read a Graph emulator whose app lacks a permission.

mod graph_support;
mod support;

use ad2entra::entra::graph::{ReadOptions, read_snapshot};
use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::{ForeignAnchor, Readable, SafetyInput, Unreadable};
use ad2entra::plan::{Operation, Plan, PlanError, plan};
use chrono::{DateTime, TimeZone, Utc};
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig};
use serde_json::json;
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

fn diag<'a>(p: &'a Plan, code: &str) -> Option<&'a ad2entra::diagnostics::Diagnostic> {
    p.diagnostics.iter().find(|d| d.code == code)
}

fn refused(input: SafetyInput) -> Unreadable {
    Unreadable::refused(input, 403, "Authorization_RequestDenied")
}

const ADOPT: &str = "adopt: {by: userPrincipalName}\n";

// ---------------------------------------------------------------- directory roles

/// A cloud Global Administrator whose UPN matches an AD user.
fn admin_tenant() -> (Ad, TargetSnapshot) {
    let mut ad = Ad::new();
    ad.user(1, "gadmin", &[]);
    let t = tenant(vec![cloud_user("ga", "gadmin@corp.example.com", json!({}))]);
    (ad, t)
}

#[test]
fn adoption_adopts_nothing_when_role_holders_cannot_be_read() {
    let (ad, mut t) = admin_tenant();
    // Control: with the roles read (and the admin not among them, as the old reader
    // reported a refused read), the account is taken over.
    t.directory_role_members = Readable::Read(vec![]);
    let p = plan(&policy(ADOPT), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(
        ops(&p),
        vec![(Operation::Adopt, "gadmin@corp.example.com".into())]
    );

    t.directory_role_members = Readable::Unreadable(refused(SafetyInput::DirectoryRoles));
    let p = plan(&policy(ADOPT), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    assert!(p.blocked.is_empty());
    let d = diag(&p, "adoption-disabled-roles-unreadable").expect("the plan says why");
    assert!(d.is_error());
    assert!(
        d.message.contains("gadmin@corp.example.com"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains("RoleManagement.Read.Directory")
            && d.message.contains("403 Authorization_RequestDenied"),
        "{}",
        d.message
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap_or_default()
            .contains("RoleManagement.Read.Directory")
    );
}

#[test]
fn role_holders_missing_from_a_snapshot_file_count_as_not_read() {
    let (ad, t) = admin_tenant();
    let mut v = serde_json::to_value(&t).unwrap();
    v.as_object_mut().unwrap().remove("directoryRoleMembers");
    let t: TargetSnapshot = serde_json::from_value(v).unwrap();
    assert!(t.directory_role_members.unreadable().is_some());
    let p = plan(&policy(ADOPT), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty());
    let d = diag(&p, "adoption-disabled-roles-unreadable").unwrap();
    assert!(d.message.contains("was not read"), "{}", d.message);
}

#[test]
fn without_adoption_unreadable_roles_change_nothing() {
    let (ad, mut t) = admin_tenant();
    t.directory_role_members = Readable::Unreadable(refused(SafetyInput::DirectoryRoles));
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    assert!(diag(&p, "upn-held-by-unowned-object").is_some());
    assert!(diag(&p, "adoption-disabled-roles-unreadable").is_none());
}

// ---------------------------------------------------------------- deleted users

/// An owned, soft-deleted `u1` (anchor 1) and a group that wants it back.
fn deleted_tenant() -> (Ad, TargetSnapshot) {
    let mut ad = Ad::new();
    ad.user(1, "u1", &[])
        .user(2, "u2", &[])
        .group(100, "Team", &["u1", "u2"], &[]);
    let mut t = tenant(vec![]);
    let ext = ext_anchor(&t);
    t.deleted_users = Readable::Read(vec![obj(cloud_user(
        "d1",
        "u1@corp.example.com",
        json!({ext: anchor(1), "onPremisesImmutableId": anchor(1)}),
    ))]);
    (ad, t)
}

#[test]
fn no_user_is_restored_or_created_when_deleted_users_cannot_be_read() {
    let (ad, mut t) = deleted_tenant();
    // Control: readable, u1 is restored (not created twice).
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    let mut o = ops(&p);
    o.sort();
    assert!(
        o.contains(&(Operation::Restore, "u1@corp.example.com".into())),
        "{o:?}"
    );
    assert!(
        o.contains(&(Operation::Create, "u2@corp.example.com".into())),
        "{o:?}"
    );

    t.deleted_users = Readable::Unreadable(refused(SafetyInput::DeletedUsers));
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.restore, 0);
    assert!(
        p.actions
            .iter()
            .all(|a| a.object.object_type == ad2entra::plan::ObjectType::Group),
        "only the group is planned: {:?}",
        ops(&p)
    );
    // The group is created, without the users that will not exist.
    assert_eq!(ops(&p), vec![(Operation::Create, "Team".into())]);
    let mut blocked: Vec<(Operation, &str, &str)> = p
        .blocked
        .iter()
        .map(|b| (b.action.op, b.action.object.name.as_str(), b.code.as_str()))
        .collect();
    blocked.sort();
    assert_eq!(
        blocked,
        vec![
            (
                Operation::Create,
                "u1@corp.example.com",
                "deleted-users-unreadable"
            ),
            (
                Operation::Create,
                "u2@corp.example.com",
                "deleted-users-unreadable"
            ),
        ]
    );
    let d = diag(&p, "deleted-users-unreadable").unwrap();
    assert!(
        d.message
            .starts_with("2 user creates and adoptions are blocked"),
        "{}",
        d.message
    );
    assert!(d.message.contains("User.Read.All"), "{}", d.message);
}

// ---------------------------------------------------------------- SKUs

fn licensed_ad() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "a", &[])
        .user(2, "b", &[])
        .group(100, "E3", &["a", "b"], &[]);
    ad
}

const E3: &str = "licenses: [{whenMemberOf: 'CN=E3,OU=Groups,DC=corp,DC=example,DC=com', sku: ENTERPRISEPACK}]\n";

#[test]
fn no_licence_changes_when_skus_cannot_be_read() {
    let ad = licensed_ad();
    let mut t = tenant(vec![]);
    let p = plan(&policy(E3), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.assign_license, 2, "control: {:?}", ops(&p));

    t.subscribed_skus = Readable::Unreadable(refused(SafetyInput::SubscribedSkus));
    let p = plan(&policy(E3), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.assign_license + p.summary.remove_license, 0);
    assert_eq!(p.summary.create, 3, "users and the group still sync");
    let d = diag(&p, "licenses-skus-unreadable").unwrap();
    assert!(d.message.contains("licences of 2 users"), "{}", d.message);
    assert!(
        d.message.contains("LicenseAssignment.Read.All"),
        "{}",
        d.message
    );
}

#[test]
fn an_owned_users_licences_are_not_removed_when_skus_cannot_be_read() {
    let ad = {
        let mut ad = Ad::new();
        ad.user(1, "a", &[]).group(100, "E3", &[], &[]);
        ad
    };
    let mut t = tenant(vec![]);
    let pol = policy(E3);
    let t = {
        // Converge with a as a member, then a leaves the group.
        let mut with = Ad::new();
        with.user(1, "a", &[]).group(100, "E3", &["a"], &[]);
        let p = plan(&pol, &with.snapshot(), &t, now()).unwrap();
        t = ad2entra::plan::simulate::apply_to_snapshot(&p, &t).unwrap();
        t
    };
    let p = plan(&pol, &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.remove_license, 1, "control");
    let mut t2 = t.clone();
    t2.subscribed_skus = Readable::Unreadable(refused(SafetyInput::SubscribedSkus));
    let p = plan(&pol, &ad.snapshot(), &t2, now()).unwrap();
    assert_eq!(p.summary.remove_license, 0, "{:?}", ops(&p));
    assert!(diag(&p, "licenses-skus-unreadable").is_some());
}

#[test]
fn a_tenant_without_the_sku_gets_unknown_sku_at_plan_time() {
    let ad = licensed_ad();
    let mut t = tenant(vec![]);
    t.subscribed_skus = Readable::Read(vec![]);
    let p = plan(&policy(E3), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.assign_license, 0);
    assert!(diag(&p, "unknown-sku").is_some());
}

// ---------------------------------------------------------------- anchor extensions

fn foreign(users: u64, groups: u64) -> ForeignAnchor {
    ForeignAnchor {
        name: "extension_7a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d_ad2entraAnchor".into(),
        app_id: "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
        app_display_name: Some("ad2entra-old".into()),
        users,
        groups,
        examples: vec!["alice@corp.example.com".into()],
    }
}

#[test]
fn an_unregistered_or_unreadable_anchor_extension_stops_the_plan() {
    let (ad, _) = admin_tenant();
    let mut t = tenant(vec![]);
    assert!(plan(&policy(""), &ad.snapshot(), &t, now()).is_ok());
    t.anchor_registered = Readable::Read(false);
    let e = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap_err();
    assert!(
        matches!(e, PlanError::AnchorExtensionMissing { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("ad2entra init"), "{e}");
    t.anchor_registered = Readable::Unreadable(refused(SafetyInput::AnchorExtension));
    let e = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap_err();
    assert!(
        matches!(e, PlanError::AnchorExtensionUnreadable { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("Application.Read.All"), "{e}");
}

#[test]
fn objects_stamped_by_another_apps_anchor_stop_the_plan_with_the_line_to_commit() {
    let (ad, _) = admin_tenant();
    let mut t = tenant(vec![]);
    t.other_anchors = Readable::Read(vec![foreign(303, 15)]);
    let e = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap_err();
    let PlanError::OtherAnchorExtensions(msg) = &e else {
        panic!("{e:?}")
    };
    for part in [
        "extension_7a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d_ad2entraAnchor",
        "303 users and 15 groups",
        "alice@corp.example.com",
        &ext_anchor(&t),
        "target:\n  extensionAppId: \"7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"",
    ] {
        assert!(msg.contains(part), "missing {part:?} in {msg}");
    }
}

#[test]
fn another_apps_anchor_that_stamps_nothing_is_a_warning() {
    let (ad, _) = admin_tenant();
    let mut t = tenant(vec![]);
    t.other_anchors = Readable::Read(vec![foreign(0, 0)]);
    let p = plan(&policy(""), &ad.snapshot(), &t, now()).unwrap();
    let d = diag(&p, "other-anchor-extension").unwrap();
    assert!(!d.is_error());
    assert_eq!(p.summary.create, 1);
}

#[test]
fn nothing_new_is_taken_over_when_other_anchors_cannot_be_listed() {
    let mut ad = Ad::new();
    ad.user(1, "new", &[])
        .user(2, "pat", &[])
        .group(100, "G", &[], &[]);
    let mut t = tenant(vec![cloud_user("p1", "pat@corp.example.com", json!({}))]);
    let p = plan(&policy(ADOPT), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.create, 2, "control: {:?}", ops(&p));
    assert_eq!(p.summary.adopt, 1);

    t.other_anchors = Readable::Unreadable(refused(SafetyInput::OtherAnchorExtensions));
    let p = plan(&policy(ADOPT), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    let mut blocked: Vec<(Operation, &str)> = p
        .blocked
        .iter()
        .map(|b| {
            assert_eq!(b.code, "other-anchors-unreadable");
            (b.action.op, b.action.object.name.as_str())
        })
        .collect();
    blocked.sort();
    assert_eq!(
        blocked,
        vec![
            (Operation::Create, "G"),
            (Operation::Create, "new@corp.example.com"),
            (Operation::Adopt, "pat@corp.example.com"),
        ]
    );
    let d = diag(&p, "other-anchors-unreadable").unwrap();
    assert!(
        d.message.starts_with("3 creates and adoptions are blocked"),
        "{}",
        d.message
    );
}

#[test]
fn safety_inputs_round_trip_through_snapshot_files() {
    let mut t = tenant(vec![]);
    t.directory_role_members = Readable::Unreadable(refused(SafetyInput::DirectoryRoles));
    t.other_anchors = Readable::Read(vec![foreign(1, 0)]);
    t.anchor_registered = Readable::Read(false);
    let v = serde_json::to_value(&t).unwrap();
    assert_eq!(
        v["directoryRoleMembers"],
        json!({"unreadable": {"input": "directoryRoles", "status": 403, "code": "Authorization_RequestDenied"}})
    );
    assert_eq!(v["anchorExtensionRegistered"], json!(false));
    let back: TargetSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(back, t);
    // Older files: no safety keys at all.
    let old: TargetSnapshot = serde_json::from_str(r#"{"users": [], "groups": []}"#).unwrap();
    assert_eq!(old.deleted_users, Readable::Read(vec![]));
    assert_eq!(old.anchor_registered, Readable::Read(true));
    assert!(old.directory_role_members.unreadable().is_some());
    assert!(
        serde_json::from_str::<TargetSnapshot>(r#"{"deletedUsers": {"unreadable": 3}}"#).is_err()
    );
    // An error inside a read value keeps its own message.
    let e = serde_json::from_str::<TargetSnapshot>(r#"{"deletedUsers": [{"displayName": "x"}]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("missing field `id`"), "{e}");
}

// ---------------------------------------------------------------- through Graph

/// A tenant whose app may not read directory roles: every permission ad2entra needs but
/// RoleManagement.Read.Directory and Directory.Read.All (which include it).
fn no_roles_config() -> EmulatorConfig {
    with_permissions(&[
        "User.ReadWrite.All",
        "Group.ReadWrite.All",
        "Domain.Read.All",
        "LicenseAssignment.ReadWrite.All",
        "Application.ReadWrite.OwnedBy",
    ])
}

/// The default tenant whose app has only `permissions`.
fn with_permissions(permissions: &[&str]) -> EmulatorConfig {
    EmulatorConfig {
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        ..EmulatorConfig::default()
    }
}

async fn init(client: &ad2entra::entra::graph::GraphClient, cfg: &EmulatorConfig) {
    let report = ad2entra::init::run_init(
        client,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .unwrap();
    assert!(
        report
            .extensions
            .iter()
            .all(|e| e.status == "created" || e.status == "exists"),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_administrator_is_not_adopted_when_roles_cannot_be_read() {
    let cfg = no_roles_config();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let seed: Seed = serde_json::from_value(json!({
        "users": [
            {"userPrincipalName": "gadmin@corp.example.com", "displayName": "Admin", "mailNickname": "gadmin"},
            {"userPrincipalName": "pat@corp.example.com", "displayName": "Pat", "mailNickname": "pat"}
        ],
        "directoryRoleMembers": {"Global Administrator": ["gadmin@corp.example.com"]}
    }))
    .unwrap();
    emu.seed(&seed).unwrap();
    let (client, log) = graph_support::client(&emu, &cfg);
    init(&client, &cfg).await;
    let mut ad = Ad::new();
    ad.user(1, "gadmin", &[]).user(2, "pat", &[]);
    let pol = policy(ADOPT);
    let t = read_snapshot(
        &client,
        &ReadOptions::for_policy(&pol, Some(cfg.client_id.clone())),
    )
    .await
    .unwrap();
    let u = t
        .directory_role_members
        .unreadable()
        .expect("roles refused");
    assert_eq!(
        (u.status, u.code.as_deref()),
        (Some(403), Some("Authorization_RequestDenied"))
    );
    assert_eq!(
        t.other_anchors,
        Readable::Read(vec![]),
        "listed through the app registrations"
    );
    let p = plan(&pol, &ad.snapshot(), &t, now()).unwrap();
    assert!(
        p.actions.iter().all(|a| a.op != Operation::Adopt),
        "{:?}",
        ops(&p)
    );
    assert!(
        p.actions.is_empty(),
        "nothing is created either: {:?}",
        ops(&p)
    );
    let d = diag(&p, "adoption-disabled-roles-unreadable").expect("the plan says why");
    assert!(
        d.message.contains("gadmin@corp.example.com"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains("RoleManagement.Read.Directory"),
        "{}",
        d.message
    );
    graph_support::assert_conformant(&log);

    // Control: the same tenant with the permission: the administrator is recognised and
    // only the ordinary user is adopted.
    let mut full = cfg.clone();
    full.permissions
        .push("RoleManagement.Read.Directory".into());
    let emu2 = Emulator::start(full.clone()).await.unwrap();
    emu2.seed(&seed).unwrap();
    let (client2, _) = graph_support::client(&emu2, &full);
    init(&client2, &full).await;
    let t = read_snapshot(
        &client2,
        &ReadOptions::for_policy(&pol, Some(full.client_id.clone())),
    )
    .await
    .unwrap();
    let p = plan(&pol, &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(
        ops(&p),
        vec![(Operation::Adopt, "pat@corp.example.com".into())]
    );
    assert!(diag(&p, "held-by-role-holder").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licences_are_left_alone_when_the_app_may_not_read_skus() {
    let cfg = with_permissions(&[
        "User.ReadWrite.All",
        "Group.ReadWrite.All",
        "Domain.Read.All",
        "Application.ReadWrite.OwnedBy",
        "RoleManagement.Read.Directory",
    ]);
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, _) = graph_support::client(&emu, &cfg);
    init(&client, &cfg).await;
    let pol = policy(E3);
    let t = read_snapshot(
        &client,
        &ReadOptions::for_policy(&pol, Some(cfg.client_id.clone())),
    )
    .await
    .unwrap();
    assert!(t.subscribed_skus.unreadable().is_some());
    let p = plan(&pol, &licensed_ad().snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.assign_license, 0);
    assert_eq!(p.summary.create, 3);
    assert!(diag(&p, "licenses-skus-unreadable").is_some());
}
