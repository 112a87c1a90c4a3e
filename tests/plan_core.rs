//! The pure core end to end: policy × AD fixture × tenant snapshot → plan, and the
//! convergence property plan(apply(plan)) = ∅. Each safety rule has a test here that
//! fails without it.

mod support;

use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::Readable;
use ad2entra::plan::simulate::apply_to_snapshot;
use ad2entra::plan::{Operation, Plan, PlanError, plan};
use chrono::{DateTime, Duration, TimeZone, Utc};
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

fn names(p: &Plan, op: Operation) -> Vec<String> {
    p.actions
        .iter()
        .filter(|a| a.op == op)
        .map(|a| a.object.name.clone())
        .collect()
}

fn codes(p: &Plan) -> Vec<String> {
    p.diagnostics.iter().map(|d| d.code.clone()).collect()
}

/// Applies the plan in memory and plans again: must be empty.
fn converge(pol: &ad2entra::policy::LoadedPolicy, ad: &Ad, t: &TargetSnapshot) -> TargetSnapshot {
    let src = ad.snapshot();
    let p1 = plan(pol, &src, t, now()).unwrap();
    let t2 = apply_to_snapshot(&p1, t).unwrap();
    let p2 = plan(pol, &src, &t2, now()).unwrap();
    assert!(
        p2.actions.is_empty(),
        "second plan not empty: {:?}",
        ops(&p2)
    );
    t2
}

fn small_ad() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("department", "Sales")])
        .user(2, "bob", &[])
        .user(3, "carol", &[("userAccountControl", "514")])
        .group(100, "Sales", &["alice", "bob"], &[])
        .group(101, "All Staff", &["grp:Sales", "carol"], &[]);
    ad
}

#[test]
fn empty_tenant_gets_creates_then_converges() {
    let pol = policy("");
    let ad = small_ad();
    let p = plan(&pol, &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(p.summary.create, 5);
    assert_eq!(p.summary.add_members, 2);
    let carol = p
        .actions
        .iter()
        .find(|a| a.object.name == "carol@corp.example.com")
        .unwrap();
    let after = carol.after().unwrap();
    assert_eq!(
        after["accountEnabled"],
        json!(false),
        "disabled AD users are disabled in Entra"
    );
    assert_eq!(after["onPremisesImmutableId"], json!(anchor(3)));
    // A create's patch adds every property it sets, immutable id and anchor marker included.
    let paths: Vec<String> = carol
        .patch
        .0
        .iter()
        .map(|op| {
            serde_json::to_value(op).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(paths.contains(&"/onPremisesImmutableId".to_string()));
    assert!(paths.iter().any(|p| p.contains("ad2entraAnchor")));
    let t2 = converge(&pol, &ad, &tenant(vec![]));
    let all_staff = t2
        .groups
        .iter()
        .find(|g| g.str("displayName") == Some("All Staff"))
        .unwrap();
    assert_eq!(all_staff.members.len(), 2, "nested group and carol");
}

#[test]
fn ordering_groups_users_members_licences_deletes_last() {
    let pol = policy(
        "deletion: {mode: delete, maxDeletePercent: 100}\nlicenses: [{whenMemberOf: 'CN=Sales,OU=Groups,DC=corp,DC=example,DC=com', sku: ENTERPRISEPACK}]\n",
    );
    let ad = small_ad();
    let ext = ext_anchor(&tenant(vec![]));
    let gone = cloud_user(
        "gone-1",
        "gone@corp.example.com",
        json!({ ext.clone(): anchor(77) }),
    );
    let p = plan(&pol, &ad.snapshot(), &tenant(vec![gone]), now()).unwrap();
    let ranks: Vec<u8> = p.actions.iter().map(|a| a.op.rank()).collect();
    let mut sorted = ranks.clone();
    sorted.sort();
    assert_eq!(ranks, sorted);
    assert_eq!(p.actions.last().unwrap().op, Operation::Delete);
    let first_user_create = p
        .actions
        .iter()
        .position(|a| {
            a.op == Operation::Create && a.object.object_type == ad2entra::plan::ObjectType::User
        })
        .unwrap();
    let last_group_create = p
        .actions
        .iter()
        .rposition(|a| {
            a.op == Operation::Create && a.object.object_type == ad2entra::plan::ObjectType::Group
        })
        .unwrap();
    assert!(last_group_create < first_user_create);
    assert_eq!(
        names(&p, Operation::AssignLicense),
        vec!["alice@corp.example.com", "bob@corp.example.com"]
    );
}

#[test]
fn scope_rules() {
    let mut ad = small_ad();
    ad.entry(
        &format!("OU=Service Accounts,{BASE}"),
        9002,
        &[("objectClass", "organizationalUnit")],
    );
    ad.entry(
        &format!("CN=svc_backup,OU=Service Accounts,{BASE}"),
        20,
        &[
            ("objectClass", "user"),
            ("cn", "svc_backup"),
            ("sAMAccountName", "svc_backup"),
            ("userPrincipalName", "svc_backup@corp.example.com"),
            ("userAccountControl", "512"),
        ],
    );
    ad.user(21, "MSOL_0a1b2c3d4e5f", &[])
        .user(22, "AAD_1234", &[])
        .user(23, "krbtgt", &[]);
    ad.user(24, "critical", &[("isCriticalSystemObject", "TRUE")]);
    ad.group(102, "Helpdesk Admins", &["bob"], &[("adminCount", "1")]);
    ad.group(103, "Domain Admins", &["bob"], &[]);
    ad.group(104, "Newsletter", &["bob"], &[("groupType", "2")]);
    let src = ad.snapshot();
    let t = tenant(vec![]);
    let in_scope = |yaml: &str| -> Vec<String> {
        let mut n = names(
            &plan(&policy(yaml), &src, &t, now()).unwrap(),
            Operation::Create,
        );
        n.sort();
        n
    };
    let all = in_scope("");
    assert!(all.contains(&"svc_backup@corp.example.com".to_string()));
    for excluded in [
        "MSOL_0a1b2c3d4e5f",
        "AAD_1234",
        "krbtgt",
        "critical",
        "Helpdesk Admins",
        "Domain Admins",
        "Newsletter",
    ] {
        assert!(
            !all.iter().any(|n| n.starts_with(excluded)),
            "{excluded} must be excluded: {all:?}"
        );
    }
    let with_admin = in_scope("scope: {groups: {excludeAdminGroups: false}}\n");
    assert!(with_admin.contains(&"Helpdesk Admins".to_string()));
    let staff_only = in_scope(&format!(
        "scope: {{users: {{includeOUs: ['OU=Staff,{BASE}']}}, groups: {{enabled: false}}}}\n"
    ));
    assert_eq!(
        staff_only,
        vec![
            "alice@corp.example.com",
            "bob@corp.example.com",
            "carol@corp.example.com"
        ],
        "OU=Staff only; default exclusions still apply there"
    );
    let excl = in_scope(&format!(
        "scope: {{users: {{excludeOUs: ['OU=Service Accounts,{BASE}']}}, groups: {{enabled: false}}}}\n"
    ));
    assert!(!excl.contains(&"svc_backup@corp.example.com".to_string()));
    let filt = in_scope(
        "scope: {users: {ldapFilter: '(!(userAccountControl:1.2.840.113556.1.4.803:=2))'}, groups: {enabled: false}}\n",
    );
    assert!(!filt.contains(&"carol@corp.example.com".to_string()));
    assert!(filt.contains(&"alice@corp.example.com".to_string()));
    let nested = in_scope(&format!(
        "scope: {{users: {{memberOf: ['CN=All Staff,OU=Groups,{BASE}']}}, groups: {{enabled: false}}}}\n"
    ));
    assert_eq!(
        nested,
        vec![
            "alice@corp.example.com",
            "bob@corp.example.com",
            "carol@corp.example.com"
        ],
        "alice and bob through nested Sales"
    );
    let when = in_scope(
        "scope: {users: {when: \"not sAMAccountName.startswith('svc_')\"}, groups: {enabled: false}}\n",
    );
    assert!(!when.contains(&"svc_backup@corp.example.com".to_string()));
    let no_disabled =
        in_scope("scope: {users: {includeDisabled: false}, groups: {enabled: false}}\n");
    assert!(!no_disabled.contains(&"carol@corp.example.com".to_string()));
}

#[test]
fn upn_rewrite_fallback_and_non_routable() {
    let mut ad = Ad::new();
    ad.user(1, "lu", &[("userPrincipalName", "lu@corp.local")])
        .user(
            2,
            "uv",
            &[("userPrincipalName", "uv@unverified.example.org")],
        )
        .user(3, "nu", &[("userPrincipalName", "")]);
    let src = ad.snapshot();
    let t = tenant(vec![]);
    let p = plan(
        &policy("upn: {rewriteSuffixes: {corp.local: corp.example.com}}\n"),
        &src,
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(names(&p, Operation::Create), vec!["lu@corp.example.com"]);
    assert!(codes(&p).contains(&"unverified-upn-suffix".into()));
    assert!(codes(&p).contains(&"missing-required-attribute".into()));
    let p = plan(
        &policy("upn: {fallbackDomain: corpexample.onmicrosoft.com}\n"),
        &src,
        &t,
        now(),
    )
    .unwrap();
    let mut n = names(&p, Operation::Create);
    n.sort();
    assert_eq!(
        n,
        vec![
            "lu@corpexample.onmicrosoft.com",
            "nu@corpexample.onmicrosoft.com",
            "uv@corpexample.onmicrosoft.com"
        ]
    );
    assert!(codes(&p).contains(&"upn-generated".into()));
}

#[test]
fn bad_object_data_is_a_per_object_error_and_the_rest_proceeds() {
    let mut ad = Ad::new();
    let long = "x".repeat(300);
    ad.user(1, "ok", &[])
        .user(2, "jürgen", &[])
        .user(3, "longname", &[("displayName", &long)])
        .user(4, "emp", &[("employeeID", "12345678901234567")]);
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(names(&p, Operation::Create), vec!["ok@corp.example.com"]);
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "graph-rule-upn")
        .unwrap();
    assert!(d.object.as_deref().unwrap().contains("jürgen"));
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "graph-rule-length" && d.attribute.as_deref() == Some("displayName"))
        .unwrap();
    assert!(d.message.contains("300"));
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.code == "graph-rule-length" && d.attribute.as_deref() == Some("employeeId"))
    );
}

#[test]
fn two_ad_objects_wanting_one_upn_are_both_named_and_left_out() {
    let mut ad = Ad::new();
    ad.user(1, "dup1", &[("userPrincipalName", "same@corp.example.com")])
        .user(2, "dup2", &[("userPrincipalName", "same@corp.example.com")])
        .user(3, "fine", &[]);
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(names(&p, Operation::Create), vec!["fine@corp.example.com"]);
    let conflicts: Vec<_> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "upn-conflict")
        .collect();
    assert_eq!(conflicts.len(), 2);
    assert!(conflicts[0].message.contains("dup2") || conflicts[1].message.contains("dup2"));
    assert!(
        conflicts
            .iter()
            .any(|d| d.object.as_deref().unwrap().contains("dup1"))
    );
}

#[test]
fn unowned_protected_and_synced_objects_are_never_touched() {
    let mut ad = Ad::new();
    ad.user(1, "breakglass-admin", &[])
        .user(2, "synced", &[])
        .user(3, "cloudonly", &[])
        .user(4, "fine", &[]);
    let t = tenant(vec![
        cloud_user("bg", "breakglass-admin@corp.example.com", json!({})),
        cloud_user(
            "sy",
            "synced@corp.example.com",
            json!({"onPremisesSyncEnabled": true, "onPremisesImmutableId": anchor(2)}),
        ),
        cloud_user("co", "cloudonly@corp.example.com", json!({})),
        cloud_user("other", "unrelated@corp.example.com", json!({})),
    ]);
    for yaml in [
        "protect: ['breakglass-*']\n",
        "protect: ['breakglass-*']\nadopt: {by: userPrincipalName}\n",
        "protect: ['breakglass-*']\ndeletion: {mode: delete, maxDeletePercent: 100}\n",
    ] {
        let p = plan(&policy(yaml), &ad.snapshot(), &t, now()).unwrap();
        for a in p.actions.iter() {
            let id = a.object.id.as_deref().unwrap_or("");
            assert!(
                !["bg", "sy", "other"].contains(&id),
                "{yaml}: touched {id}: {:?}",
                a.op
            );
            if yaml.contains("adopt") {
                continue;
            }
            assert_ne!(id, "co", "unowned cloud user touched without adoption");
        }
        assert!(
            codes(&p).iter().any(|c| c == "held-by-synced-object"),
            "{yaml}: {:?}",
            codes(&p)
        );
        if yaml.contains("adopt") {
            assert_eq!(
                names(&p, Operation::Adopt),
                vec!["cloudonly@corp.example.com"]
            );
        } else {
            assert!(codes(&p).contains(&"upn-held-by-unowned-object".into()));
        }
    }
}

#[test]
fn adoption_never_takes_role_holders() {
    let mut ad = Ad::new();
    ad.user(1, "gadmin", &[]);
    let mut t = tenant(vec![cloud_user("ga", "gadmin@corp.example.com", json!({}))]);
    t.directory_role_members = Readable::Read(vec!["ga".into()]);
    let p = plan(
        &policy("adopt: {by: userPrincipalName}\n"),
        &ad.snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert!(p.actions.is_empty());
    assert!(codes(&p).contains(&"held-by-role-holder".into()));
}

#[test]
fn adopted_user_converges() {
    let mut ad = Ad::new();
    ad.user(1, "pat", &[("department", "Ops")]);
    let t = tenant(vec![cloud_user(
        "p1",
        "pat@corp.example.com",
        json!({"department": "Old"}),
    )]);
    let pol = policy("adopt: {by: userPrincipalName}\n");
    let t2 = converge(&pol, &ad, &t);
    assert_eq!(t2.users.len(), 1, "adopted, not duplicated");
    assert_eq!(t2.users[0].str("department"), Some("Ops"));
}

fn owned_tenant(n: u32) -> TargetSnapshot {
    let ext = ext_anchor(&tenant(vec![]));
    tenant(
        (1..=n)
            .map(|i| {
                cloud_user(
                    &format!("id{i}"),
                    &format!("u{i}@corp.example.com"),
                    json!({ ext.clone(): anchor(i), "onPremisesImmutableId": anchor(i) }),
                )
            })
            .collect(),
    )
}

/// AD with users 1..=keep (the rest of the owned ones have left).
fn ad_keeping(keep: u32) -> Ad {
    let mut ad = Ad::new();
    for i in 1..=keep {
        ad.user(i, &format!("u{i}"), &[]);
    }
    ad
}

#[test]
fn deletion_modes() {
    let t = owned_tenant(40);
    let ad = ad_keeping(39); // u40 left scope
    let plan_with = |yaml: &str, t: &TargetSnapshot, at: DateTime<Utc>| {
        plan(&policy(yaml), &ad.snapshot(), t, at).unwrap()
    };
    let only = |p: &Plan| {
        p.actions
            .iter()
            .filter(|a| a.object.name == "u40@corp.example.com")
            .map(|a| a.op)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(&plan_with("deletion: {mode: ignore}\n", &t, now())),
        vec![]
    );
    assert_eq!(
        only(&plan_with("deletion: {mode: delete}\n", &t, now())),
        vec![Operation::Delete]
    );
    assert_eq!(
        only(&plan_with("deletion: {mode: disable}\n", &t, now())),
        vec![Operation::Disable]
    );
    let pol = "deletion: {mode: disable-then-delete, graceDays: 7}\n";
    let p1 = plan_with(pol, &t, now());
    assert_eq!(only(&p1), vec![Operation::Disable]);
    let t2 = apply_to_snapshot(&p1, &t).unwrap();
    let u40 = t2.users.iter().find(|u| u.id == "id40").unwrap();
    assert_eq!(u40.props.value("accountEnabled").unwrap(), json!(false));
    assert_eq!(
        only(&plan_with(pol, &t2, now() + Duration::days(6))),
        vec![],
        "inside the grace period"
    );
    assert_eq!(
        only(&plan_with(pol, &t2, now() + Duration::days(7))),
        vec![Operation::Delete]
    );
    // Back in scope before the grace ends: re-enabled and the orphan mark cleared.
    let back = ad_keeping(40);
    let p = plan(
        &policy(pol),
        &back.snapshot(),
        &t2,
        now() + Duration::days(3),
    )
    .unwrap();
    assert_eq!(only(&p), vec![Operation::Update]);
    let t3 = apply_to_snapshot(&p, &t2).unwrap();
    let u40 = t3.users.iter().find(|u| u.id == "id40").unwrap();
    assert_eq!(u40.props.value("accountEnabled").unwrap(), json!(true));
    assert!(u40.props.get(&t.extension_names().orphaned_at).is_none());
}

#[test]
fn deleted_user_back_in_scope_is_restored() {
    let t = owned_tenant(40);
    let p = plan(
        &policy("deletion: {mode: delete}\n"),
        &ad_keeping(39).snapshot(),
        &t,
        now(),
    )
    .unwrap();
    let t2 = apply_to_snapshot(&p, &t).unwrap();
    assert_eq!(t2.deleted_users.read().unwrap().len(), 1);
    let p = plan(
        &policy("deletion: {mode: delete}\n"),
        &ad_keeping(40).snapshot(),
        &t2,
        now(),
    )
    .unwrap();
    assert_eq!(names(&p, Operation::Restore), vec!["u40@corp.example.com"]);
    assert_eq!(p.summary.create, 0);
}

#[test]
fn deletion_gates_block_every_deprovision_with_the_numbers() {
    let t = owned_tenant(40);
    // 3 of 40 = 7.5% > 5%
    let p = plan(
        &policy("deletion: {mode: delete}\n"),
        &ad_keeping(37).snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(p.summary.delete, 0);
    assert_eq!(p.blocked.len(), 3);
    assert_eq!(p.blocked[0].code, "delete-gate-percent");
    assert!(
        p.blocked[0].reason.contains("7.5%"),
        "{}",
        p.blocked[0].reason
    );
    // count gate
    let p = plan(
        &policy("deletion: {mode: delete, maxDeletes: 2, maxDeletePercent: 100}\n"),
        &ad_keeping(37).snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(p.blocked.len(), 3);
    assert_eq!(p.blocked[0].code, "delete-gate-count");
    assert!(p.blocked[0].reason.contains("maxDeletes = 2"));
    // under both gates: allowed
    let p = plan(
        &policy("deletion: {mode: delete, maxDeletes: 3, maxDeletePercent: 10}\n"),
        &ad_keeping(37).snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(p.summary.delete, 3);
    assert!(p.blocked.is_empty());
}

#[test]
fn objects_with_errors_are_never_deprovisioned() {
    let t = owned_tenant(40);
    let mut ad = ad_keeping(39);
    ad.user(40, "u40", &[("displayName", &"y".repeat(300))]);
    let p = plan(
        &policy("deletion: {mode: delete, maxDeletePercent: 100}\n"),
        &ad.snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert!(
        p.actions
            .iter()
            .all(|a| a.object.id.as_deref() != Some("id40"))
    );
}

#[test]
fn protected_owned_objects_are_blocked_not_changed() {
    let t = owned_tenant(40);
    let p = plan(
        &policy("deletion: {mode: delete, maxDeletePercent: 100}\nprotect: ['u40@*']\n"),
        &ad_keeping(39).snapshot(),
        &t,
        now(),
    )
    .unwrap();
    assert_eq!(p.summary.delete, 0);
    assert_eq!(p.blocked[0].code, "protected");
}

#[test]
fn empty_source_guard() {
    let t = owned_tenant(3);
    let empty = ad2entra::model::SourceSnapshot::default();
    assert_eq!(
        plan(&policy(""), &empty, &t, now()).unwrap_err(),
        PlanError::EmptySource
    );
    // Only OUs, nothing in scope, while Entra holds owned objects: refuse.
    let ad = Ad::new();
    assert_eq!(
        plan(&policy(""), &ad.snapshot(), &t, now()).unwrap_err(),
        PlanError::EmptyDesired { owned: 3 }
    );
    // A brand-new tenant with nothing in scope is fine (no owned objects).
    assert!(
        plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now())
            .unwrap()
            .actions
            .is_empty()
    );
}

#[test]
fn attribute_change_is_one_update_with_a_patch() {
    let pol = policy("");
    let mut ad = small_ad();
    let t = converge(&pol, &ad, &tenant(vec![]));
    ad.user(1, "alice", &[("department", "Marketing")]);
    // The builder appends a second alice entry; rebuild instead.
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("department", "Marketing")])
        .user(2, "bob", &[])
        .user(3, "carol", &[("userAccountControl", "514")])
        .group(100, "Sales", &["alice", "bob"], &[])
        .group(101, "All Staff", &["grp:Sales", "carol"], &[]);
    let p = plan(&pol, &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(
        ops(&p),
        vec![(Operation::Update, "alice@corp.example.com".to_string())]
    );
    let patch = serde_json::to_value(&p.actions[0].patch).unwrap();
    assert_eq!(
        patch,
        json!([{"op": "replace", "path": "/department", "value": "Marketing"}])
    );
    assert_eq!(
        p.actions[0].before.as_ref().unwrap()["department"],
        json!("Sales")
    );
}

#[test]
fn membership_changes_only_touch_owned_members() {
    let pol = policy("");
    let ad = small_ad();
    let mut t = converge(&pol, &ad, &tenant(vec![]));
    // Someone added an unowned cloud user to our group by hand: it stays.
    t.users
        .push(obj(cloud_user("hand", "hand@corp.example.com", json!({}))));
    let sales = t
        .groups
        .iter_mut()
        .find(|g| g.str("displayName") == Some("Sales"))
        .unwrap();
    sales.members.push("hand".into());
    let mut ad2 = Ad::new();
    ad2.user(1, "alice", &[("department", "Sales")])
        .user(2, "bob", &[])
        .user(3, "carol", &[("userAccountControl", "514")])
        .group(100, "Sales", &["alice"], &[])
        .group(101, "All Staff", &["grp:Sales", "carol"], &[]);
    let p = plan(&pol, &ad2.snapshot(), &t, now()).unwrap();
    assert_eq!(
        ops(&p),
        vec![(Operation::RemoveMembers, "Sales".to_string())]
    );
    assert_eq!(p.actions[0].members.len(), 1);
    assert_eq!(p.actions[0].members[0].name, "bob@corp.example.com");
}

#[test]
fn licence_needs_usage_location() {
    let mut ad = Ad::new();
    ad.user(1, "nolocation", &[("c", "")])
        .group(100, "E3", &["nolocation"], &[]);
    let p = plan(&policy("licenses: [{whenMemberOf: 'CN=E3,OU=Groups,DC=corp,DC=example,DC=com', sku: ENTERPRISEPACK}]\n"), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(p.summary.assign_license, 0);
    assert!(codes(&p).contains(&"usage-location-required".into()));
}

#[test]
fn plan_json_round_trips_and_is_versioned() {
    let p = plan(&policy(""), &small_ad().snapshot(), &tenant(vec![]), now()).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["formatVersion"], json!(1));
    assert!(
        v["policy"]["contentHash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        v["source"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(v["actions"][0]["op"], json!("create"));
    let back: Plan = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn runtime_template_and_expression_failures_are_per_object() {
    let mut ad = Ad::new();
    ad.user(1, "a", &[]).user(2, "b", &[]);
    let p = plan(
        &policy("mappings: {user: {jobTitle: '{{ sn | guid }}'}}\n"),
        &ad.snapshot(),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    assert_eq!(p.summary.create, 0);
    assert_eq!(
        p.diagnostics
            .iter()
            .filter(|d| d.code == "template-failed")
            .count(),
        2
    );
    let p = plan(
        &policy("scope: {users: {when: 'sn | guid'}}\n"),
        &ad.snapshot(),
        &tenant(vec![]),
        now(),
    )
    .unwrap();
    assert!(codes(&p).contains(&"expression-failed".into()));
}

#[test]
fn mail_and_mail_nickname_conflicts() {
    let mut ad = Ad::new();
    ad.user(1, "m1", &[("mail", "shared@corp.example.com")])
        .user(2, "m2", &[("mail", "shared@corp.example.com")])
        .user(3, "n1", &[("mailNickname", "samenick")])
        .user(4, "n2", &[("mailNickname", "samenick")]);
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(p.summary.create, 0);
    assert_eq!(
        p.diagnostics
            .iter()
            .filter(|d| d.code == "mail-conflict")
            .count(),
        2
    );
    assert_eq!(
        p.diagnostics
            .iter()
            .filter(|d| d.code == "mail-nickname-conflict")
            .count(),
        2
    );
}

#[test]
fn protected_source_objects_and_protected_or_foreign_targets() {
    let mut ad = Ad::new();
    ad.user(1, "admin", &[])
        .user(2, "bg", &[])
        .user(3, "taken", &[]);
    let ext = ext_anchor(&tenant(vec![]));
    let t = tenant(vec![
        cloud_user(
            "bgid",
            "bg@corp.example.com",
            json!({"displayName": "Break Glass"}),
        ),
        cloud_user(
            "other",
            "taken@corp.example.com",
            json!({ ext: anchor(99) }),
        ),
    ]);
    let p = plan(&policy("protect: ['admin@*', 'break glass*']\nadopt: {by: userPrincipalName}\ndeletion: {mode: ignore}\n"), &ad.snapshot(), &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", ops(&p));
    let c = codes(&p);
    assert!(c.contains(&"protected".into()), "{c:?}");
    assert!(c.contains(&"held-by-protected-object".into()));
    assert!(c.contains(&"held-by-other-anchor".into()));
}

#[test]
fn unknown_sku_is_reported() {
    let mut ad = Ad::new();
    ad.user(1, "a", &[]).group(100, "E5", &["a"], &[]);
    let p = plan(&policy("licenses: [{whenMemberOf: 'CN=E5,OU=Groups,DC=corp,DC=example,DC=com', sku: SPE_E5}]\n"), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(p.summary.assign_license, 0);
    assert!(codes(&p).contains(&"unknown-sku".into()));
}

#[test]
fn diagnostics_are_capped_but_counted() {
    let mut ad = Ad::new();
    for i in 1..=1005 {
        ad.user(
            i,
            &format!("u{i}"),
            &[("userPrincipalName", &format!("u{i}@corp.local"))],
        );
    }
    let p = plan(&policy(""), &ad.snapshot(), &tenant(vec![]), now()).unwrap();
    assert_eq!(p.summary.errors, 1005);
    assert_eq!(p.diagnostics.len(), 1001);
    assert_eq!(p.diagnostics.last().unwrap().code, "too-many-diagnostics");
}

#[test]
fn a_named_ou_or_group_missing_from_the_read_aborts_the_plan() {
    let t = owned_tenant(3);
    let ad = ad_keeping(3);
    for yaml in [
        format!("scope: {{users: {{includeOUs: ['OU=Staff,{BASE}', 'OU=Renamed,{BASE}']}}}}\n"),
        format!("scope: {{users: {{excludeOUs: ['OU=Gone,{BASE}']}}}}\n"),
        format!("scope: {{users: {{memberOf: ['CN=Deleted Group,OU=Groups,{BASE}']}}}}\n"),
        format!(
            "licenses: [{{whenMemberOf: 'CN=Old E3,OU=Groups,{BASE}', sku: ENTERPRISEPACK}}]\n"
        ),
    ] {
        let err = plan(&policy(&yaml), &ad.snapshot(), &t, now()).unwrap_err();
        assert!(
            matches!(err, PlanError::ScopeDnMissing(_)),
            "{yaml}: {err:?}"
        );
    }
}

#[test]
fn licence_assignments_beyond_free_seats_are_blocked_with_the_numbers() {
    let mut ad = Ad::new();
    ad.user(1, "a", &[])
        .user(2, "b", &[])
        .user(3, "c", &[])
        .group(100, "E3", &["a", "b", "c"], &[]);
    let mut t = tenant(vec![]);
    let skus = t.subscribed_skus.read_mut().unwrap();
    skus[0].prepaid_units = Some(ad2entra::model::target::PrepaidUnits { enabled: 2 });
    skus[0].consumed_units = Some(1);
    let p = plan(&policy("licenses: [{whenMemberOf: 'CN=E3,OU=Groups,DC=corp,DC=example,DC=com', sku: ENTERPRISEPACK}]\n"), &ad.snapshot(), &t, now()).unwrap();
    assert_eq!(p.summary.assign_license, 1);
    assert_eq!(p.blocked.len(), 2);
    assert!(
        p.blocked
            .iter()
            .all(|b| b.code == "license-seats-exhausted")
    );
    let d = p
        .diagnostics
        .iter()
        .find(|d| d.code == "license-seats-exhausted")
        .unwrap();
    assert!(
        d.message.contains("2 assignments of ENTERPRISEPACK"),
        "{}",
        d.message
    );
}
