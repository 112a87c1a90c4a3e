//! apply against the emulator: creates, updates, deletes, memberships, licences; stale
//! plans; objects ad2entra does not own are never written.

mod graph_support;

use ad2entra::apply::{ActionStatus, ApplyError, ApplyOptions, apply_plan};
use ad2entra::entra::graph::http::{GraphRequest, RetryMode};
use ad2entra::entra::graph::{GraphClient, ReadOptions, read_snapshot};
use ad2entra::model::TargetSnapshot;
use ad2entra::plan::*;
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig};
use graph_support::*;
use serde_json::{Value, json};

fn opts() -> ApplyOptions {
    ApplyOptions {
        extension_app_id: app_id(),
        lookup_delay: std::time::Duration::from_millis(200),
        ..Default::default()
    }
}

async fn snapshot(client: &GraphClient) -> TargetSnapshot {
    read_snapshot(
        client,
        &ReadOptions {
            user_select: vec![
                "displayName".into(),
                "userPrincipalName".into(),
                "department".into(),
                "accountEnabled".into(),
            ],
            group_select: vec!["displayName".into()],
            extension_app_id: app_id(),
            skip_directory_roles: true,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

async fn started() -> (Emulator, EmulatorConfig) {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    // The anchor extension must exist before objects carry it (what `init` does).
    let (client, _) = client(&emu, &cfg);
    ad2entra::init::run_init(
        &client,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            domains: vec![],
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .unwrap();
    (emu, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_updates_deletes_members_and_licences() {
    let (emu, cfg) = started().await;
    let (client, log) = client(&emu, &cfg);
    let mut actions: Vec<Action> = (0..30)
        .map(|n| create_user(n, &format!("user{n}@corp.example.com")))
        .collect();
    actions.push(create_group(1000, "Staff All"));
    actions.push(create_group(1001, "Pilot"));
    actions.push(add_members(1000, "Staff All", &(0..25).collect::<Vec<_>>()));
    actions.push(add_members(1001, "Pilot", &[3, 4]));
    actions.push(Action {
        op: Operation::AssignLicense,
        object: obj(ObjectType::User, Some(anchor(3)), "user3", None),
        before: None,
        patch: json_patch::Patch(vec![]),
        members: vec![],
        skus: vec![SkuRef {
            sku_part_number: "ENTERPRISEPACK".into(),
            sku_id: None,
        }],
        reason: "licence rule".into(),
    });
    let report = apply_plan(&test_plan(actions), &client, &opts())
        .await
        .unwrap();
    assert!(
        report.is_success(),
        "{:#?}",
        report
            .results
            .iter()
            .filter(|r| r.status != ActionStatus::Ok)
            .collect::<Vec<_>>()
    );
    assert_eq!(report.counts.ok, 35);
    // 32 creates + 3 member chunks + 1 licence = 36 writes in 2 batches + 1 phase batch.
    assert!(report.requests <= 6, "requests {}", report.requests);
    serde_json::to_string(&report).unwrap();

    let snap = snapshot(&client).await;
    let by_anchor = |n: u32| {
        snap.users
            .iter()
            .find(|u| u.str("onPremisesImmutableId") == Some(anchor(n).as_str()))
            .unwrap_or_else(|| panic!("user {n} missing"))
            .clone()
    };
    assert_eq!(snap.users.len(), 30);
    let staff = snap
        .groups
        .iter()
        .find(|g| g.str("displayName") == Some("Staff All"))
        .unwrap();
    assert_eq!(staff.members.len(), 25);
    let u3 = by_anchor(3);
    assert_eq!(
        u3.props.value("assignedLicenses").unwrap()[0]["skuId"],
        json!(graph_emulator::config::SKU_ENTERPRISEPACK)
    );

    // Second plan: update, remove member, remove licence, delete.
    let u0 = by_anchor(0);
    let u1 = by_anchor(1);
    let actions2 = vec![
        Action {
            op: Operation::Update,
            object: obj(
                ObjectType::User,
                Some(anchor(0)),
                "user0",
                Some(u0.id.clone()),
            ),
            before: Some(json!({"displayName": "User 0"})),
            patch: replace_patch(&json!({"displayName": "User Zero"})),
            members: vec![],
            skus: vec![],
            reason: "mapping".into(),
        },
        Action {
            op: Operation::RemoveMembers,
            object: obj(
                ObjectType::Group,
                Some(anchor(1000)),
                "Staff All",
                Some(staff.id.clone()),
            ),
            before: None,
            patch: json_patch::Patch(vec![]),
            members: vec![MemberRef {
                object_type: ObjectType::User,
                anchor: Some(anchor(2)),
                id: Some(by_anchor(2).id),
                name: "user2".into(),
            }],
            skus: vec![],
            reason: "left group".into(),
        },
        Action {
            op: Operation::RemoveLicense,
            object: obj(
                ObjectType::User,
                Some(anchor(3)),
                "user3",
                Some(u3.id.clone()),
            ),
            before: None,
            patch: json_patch::Patch(vec![]),
            members: vec![],
            skus: vec![SkuRef {
                sku_part_number: "ENTERPRISEPACK".into(),
                sku_id: Some(graph_emulator::config::SKU_ENTERPRISEPACK.into()),
            }],
            reason: "licence rule".into(),
        },
        Action {
            op: Operation::Delete,
            object: obj(
                ObjectType::User,
                Some(anchor(1)),
                "user1",
                Some(u1.id.clone()),
            ),
            before: Some(json!({"displayName": "User 1"})),
            patch: json_patch::Patch(vec![]),
            members: vec![],
            skus: vec![],
            reason: "left scope".into(),
        },
    ];
    let report = apply_plan(&test_plan(actions2), &client, &opts())
        .await
        .unwrap();
    assert!(report.is_success(), "{:#?}", report.results);
    let snap = snapshot(&client).await;
    assert_eq!(snap.users.len(), 29);
    assert!(
        snap.deleted_users
            .read()
            .unwrap()
            .iter()
            .any(|u| u.id == u1.id)
    );
    assert!(
        snap.users
            .iter()
            .any(|u| u.id == u0.id && u.str("displayName") == Some("User Zero"))
    );
    let staff = snap.groups.iter().find(|g| g.id == staff.id).unwrap();
    // 25 − user2 removed − user1 deleted (a deleted user leaves its groups).
    assert_eq!(staff.members.len(), 23);
    let u3 = snap.users.iter().find(|u| u.id == u3.id).unwrap();
    assert_eq!(u3.props.value("assignedLicenses").unwrap(), json!([]));
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_plan_action_is_refused_and_not_written() {
    let (emu, cfg) = started().await;
    let (client, log) = client(&emu, &cfg);
    let r = apply_plan(
        &test_plan(vec![create_user(7, "seven@corp.example.com")]),
        &client,
        &opts(),
    )
    .await
    .unwrap();
    let id = r.results[0].id.clone().unwrap();
    // Someone edits the user after the plan was made.
    client
        .execute(
            &GraphRequest::write(
                reqwest::Method::PATCH,
                format!("/users/{id}"),
                Some(json!({"displayName":"Edited"})),
            ),
            RetryMode::Idempotent,
        )
        .await
        .unwrap();
    let stale = Action {
        op: Operation::Update,
        object: obj(ObjectType::User, Some(anchor(7)), "seven", Some(id.clone())),
        before: Some(json!({"displayName": "User 7"})),
        patch: replace_patch(&json!({"displayName": "Planned"})),
        members: vec![],
        skus: vec![],
        reason: "mapping".into(),
    };
    let report = apply_plan(&test_plan(vec![stale]), &client, &opts())
        .await
        .unwrap();
    assert_eq!(
        report.results[0].status,
        ActionStatus::Stale,
        "{:?}",
        report.results
    );
    let snap = snapshot(&client).await;
    assert_eq!(snap.users[0].str("displayName"), Some("Edited"));
    assert_conformant(&log);
}

/// A user deleted (soft) and back in scope is restored, then patched, keeping its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_user_is_restored_and_updated() {
    let (emu, cfg) = started().await;
    let (client, log) = client(&emu, &cfg);
    let first = apply_plan(
        &test_plan(vec![create_user(5, "five@corp.example.com")]),
        &client,
        &opts(),
    )
    .await
    .unwrap();
    let id = first.results[0].id.clone().unwrap();
    let delete = Action {
        op: Operation::Delete,
        object: obj(ObjectType::User, Some(anchor(5)), "five", Some(id.clone())),
        before: None,
        patch: json_patch::Patch(vec![]),
        members: vec![],
        skus: vec![],
        reason: "left scope".into(),
    };
    let r = apply_plan(&test_plan(vec![delete]), &client, &opts())
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.results);
    let snap = snapshot(&client).await;
    assert!(snap.users.is_empty());
    assert_eq!(
        snap.deleted_users.read().unwrap().len(),
        1,
        "soft-deleted, restorable"
    );
    let restore = Action {
        op: Operation::Restore,
        object: obj(ObjectType::User, Some(anchor(5)), "five", Some(id.clone())),
        before: Some(json!({"displayName": "User 5"})),
        patch: replace_patch(&json!({"displayName": "Five Again"})),
        members: vec![],
        skus: vec![],
        reason: "back in scope".into(),
    };
    let r = apply_plan(&test_plan(vec![restore]), &client, &opts())
        .await
        .unwrap();
    assert!(r.is_success(), "{:?}", r.results);
    let snap = snapshot(&client).await;
    assert_eq!(snap.users.len(), 1);
    assert_eq!(snap.users[0].id, id, "the same object, not a new one");
    assert_eq!(snap.users[0].str("displayName"), Some("Five Again"));
    assert!(snap.deleted_users.read().unwrap().is_empty());
    assert_conformant(&log);
}

/// A saved plan applied twice: the second time its creates are stale (the objects exist
/// with their anchors since), nothing is created twice, and no lookup delay is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_plan_creates_are_stale_not_duplicated() {
    let (emu, cfg) = started().await;
    let (client, log) = client(&emu, &cfg);
    let plan = test_plan(vec![create_user(8, "eight@corp.example.com")]);
    let first = apply_plan(&plan, &client, &opts()).await.unwrap();
    assert_eq!(
        first.results[0].status,
        ActionStatus::Ok,
        "{:?}",
        first.results
    );
    let again = apply_plan(&plan, &client, &opts()).await.unwrap();
    assert_eq!(
        again.results[0].status,
        ActionStatus::Stale,
        "{:?}",
        again.results
    );
    assert!(
        again.duration_ms < 5_000,
        "no lookup delay for a conflict on a first attempt"
    );
    let snap = snapshot(&client).await;
    assert_eq!(snap.users.len(), 1);
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unowned_and_dirsynced_users_are_never_written() {
    let (emu, cfg) = started().await;
    let seed = Seed {
        users: vec![
            json!({"userPrincipalName":"cloud@corp.example.com","displayName":"Cloud","mailNickname":"cloud","accountEnabled":true})
                .as_object().unwrap().clone(),
            json!({"userPrincipalName":"synced@corp.example.com","displayName":"Synced","mailNickname":"synced","accountEnabled":true,
                   "onPremisesSyncEnabled":true, "onPremisesImmutableId": anchor(9).as_str()})
                .as_object().unwrap().clone(),
        ],
        ..Default::default()
    };
    emu.seed(&seed).unwrap();
    let (client, log) = client(&emu, &cfg);
    let snap = snapshot(&client).await;
    let id_of = |upn: &str| {
        snap.users
            .iter()
            .find(|u| u.str("userPrincipalName") == Some(upn))
            .unwrap()
            .id
            .clone()
    };
    let mk = |op, upn: &str, n| Action {
        op,
        object: obj(ObjectType::User, Some(anchor(n)), upn, Some(id_of(upn))),
        before: Some(json!({"displayName": if upn.starts_with("cloud") {"Cloud"} else {"Synced"}})),
        patch: if op == Operation::Delete {
            json_patch::Patch(vec![])
        } else {
            replace_patch(&json!({"displayName": "Hijacked"}))
        },
        members: vec![],
        skus: vec![],
        reason: "test".into(),
    };
    let p = test_plan(vec![
        mk(Operation::Update, "cloud@corp.example.com", 8),
        mk(Operation::Update, "synced@corp.example.com", 9),
        mk(Operation::Delete, "cloud@corp.example.com", 8),
        mk(Operation::Delete, "synced@corp.example.com", 9),
    ]);
    let writes_before = emu.stats().writes;
    let report = apply_plan(&p, &client, &opts()).await.unwrap();
    let codes: Vec<_> = report
        .results
        .iter()
        .map(|r| (r.status, r.code.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (ActionStatus::Failed, "not-owned".to_string()),
            (ActionStatus::Failed, "dirsynced-object".to_string()),
            (ActionStatus::Failed, "not-owned".to_string()),
            (ActionStatus::Failed, "dirsynced-object".to_string()),
        ]
    );
    assert_eq!(emu.stats().writes, writes_before, "no write reached Graph");
    let after = snapshot(&client).await;
    assert_eq!(after.users.len(), 2);
    assert!(
        after
            .users
            .iter()
            .all(|u| u.str("displayName") != Some("Hijacked"))
    );
    // And Graph itself refuses a write to the synced user.
    let err = client
        .execute(
            &GraphRequest::write(
                reqwest::Method::PATCH,
                format!("/users/{}", id_of("synced@corp.example.com")),
                Some(json!({"displayName":"X"})),
            ),
            RetryMode::Idempotent,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_format_or_policy_is_refused_before_any_request() {
    let (emu, cfg) = started().await;
    let (client, log) = client(&emu, &cfg);
    let n0 = log.lock().unwrap().len();
    let mut p = test_plan(vec![create_user(1, "a@corp.example.com")]);
    p.format_version = FORMAT_VERSION + 1;
    assert!(matches!(
        apply_plan(&p, &client, &opts()).await,
        Err(ApplyError::FormatVersion { .. })
    ));
    p.format_version = FORMAT_VERSION;
    let o = ApplyOptions {
        expected_policy_hash: Some("other".into()),
        ..opts()
    };
    let e = apply_plan(&p, &client, &o).await.unwrap_err();
    assert!(matches!(e, ApplyError::PolicyChanged { .. }) && !e.is_transient());
    assert_eq!(log.lock().unwrap().len(), n0, "no request sent");
    let o = ApplyOptions {
        allow_policy_change: true,
        ..o
    };
    assert!(apply_plan(&p, &client, &o).await.unwrap().is_success());
    let _ = Value::Null;
}
