//! The walk-through of docs/migrate-from-entra-connect.md, with the binary against the
//! Graph emulator and an AD read from LDIF: a tenant Entra Connect syncs (users with
//! immutable ids, groups with SIDs, matching the AD objects) → `migrate-check` reports
//! them synced → `plan` leaves them alone → the administrator turns directory
//! synchronization off → `plan` shows only `adopt` actions, no create and no delete →
//! `apply` → the next `plan` is empty, and nothing was duplicated.

mod support;

use ad2entra::entra::graph::{AuthConfig, GraphClient, GraphConfig, GraphRequest, RetryMode};
use graph_emulator::config::ClientConfig;
use graph_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use support::fixtures::*;

/// The administrator's own app: it may turn directory synchronization off; ad2entra's app
/// needs no such permission.
const ADMIN_APP: &str = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b";
const ADMIN_SECRET: &str = "admin-secret";

fn company() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[("department", "Sales")])
        .user(2, "bob", &[("department", "Sales")])
        .user(3, "carol", &[]);
    ad.group(100, "Sales", &["alice", "bob"], &[])
        .binary("objectSid", &sid(1100).0);
    ad.group(101, "All Staff", &["grp:Sales", "carol"], &[])
        .binary("objectSid", &sid(1101).0);
    ad
}

/// What Entra Connect synced of `company()` (and a cloud-only help-desk account).
fn connect_seed() -> Value {
    let user = |sam: &str, n: u32| {
        json!({
            "id": format!("00000000-0000-4000-8000-00000000000{n}"),
            "userPrincipalName": format!("{sam}@corp.example.com"),
            "displayName": format!("{sam} Tester"),
            "givenName": sam, "surname": "Tester", "mailNickname": sam,
            "accountEnabled": true, "usageLocation": "US",
            "onPremisesSyncEnabled": true,
            "onPremisesImmutableId": anchor(n),
            "onPremisesDistinguishedName": user_dn(sam),
            "onPremisesSamAccountName": sam,
            "onPremisesUserPrincipalName": format!("{sam}@corp.example.com"),
            "onPremisesDomainName": "corp.example.com",
        })
    };
    let group = |name: &str, rid: u32, members: &[&str]| {
        json!({
            "displayName": name, "mailNickname": name.replace(' ', ""),
            "securityEnabled": true, "mailEnabled": false,
            "onPremisesSyncEnabled": true,
            "onPremisesSecurityIdentifier": sid(rid).1,
            "onPremisesSamAccountName": name,
            "members": members,
        })
    };
    json!({
        "users": [
            user("alice", 1), user("bob", 2), user("carol", 3),
            {"userPrincipalName": "helpdesk@corp.example.com", "displayName": "Help desk",
             "mailNickname": "helpdesk", "accountEnabled": true},
        ],
        "groups": [
            group("Sales", 1100, &["alice@corp.example.com", "bob@corp.example.com"]),
            group("All Staff", 1101, &["Sales", "carol@corp.example.com"]),
        ],
    })
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with only the environment that reaches `emu` as ad2entra's app.
async fn ad2entra(emu: &Emulator, cfg: &EmulatorConfig, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    cmd.args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("AZURE_TENANT_ID", &cfg.tenant_id)
        .env("AZURE_CLIENT_ID", &cfg.client_id)
        .env(
            "AZURE_CLIENT_SECRET",
            cfg.client_secret.clone().unwrap_or_default(),
        )
        .env("AZURE_AUTHORITY_HOST", emu.authority_url())
        .env("AD2ENTRA_GRAPH_URL", emu.base_url());
    let out = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("ad2entra finished in time")
        .expect("run ad2entra");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `PATCH /organization/{id}` `{"onPremisesSyncEnabled": false}` as the administrator.
async fn turn_off_directory_sync(emu: &Emulator, cfg: &EmulatorConfig) {
    let admin = EmulatorConfig {
        client_id: ADMIN_APP.into(),
        client_secret: Some(ADMIN_SECRET.into()),
        ..cfg.clone()
    };
    let client = GraphClient::new(GraphConfig::new(
        emu.base_url(),
        AuthConfig::for_emulator(emu, &admin),
    ))
    .expect("admin client");
    let req = GraphRequest::write(
        reqwest::Method::PATCH,
        format!("/organization/{}", cfg.tenant_id),
        Some(json!({"onPremisesSyncEnabled": false})),
    );
    let r = client
        .execute(&req, RetryMode::Idempotent)
        .await
        .expect("turned off");
    assert_eq!(r.status, 204);
}

async fn migrate_check(emu: &Emulator, cfg: &EmulatorConfig, policy: &str, ldif: &str) -> Value {
    let out = ad2entra(
        emu,
        cfg,
        &[
            "migrate-check",
            "--policy",
            policy,
            "--source-ldif",
            ldif,
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    serde_json::from_str(&out.stdout).expect("a JSON report")
}

/// `ad2entra plan --policy POLICY --source-ldif LDIF EXTRA…`.
async fn plan_cmd(
    emu: &Emulator,
    cfg: &EmulatorConfig,
    policy: &str,
    ldif: &str,
    extra: &[&str],
) -> Out {
    let mut args = vec!["plan", "--policy", policy, "--source-ldif", ldif];
    args.extend_from_slice(extra);
    ad2entra(emu, cfg, &args).await
}

fn plan_file(path: &Path) -> ad2entra::plan::Plan {
    serde_json::from_str(&std::fs::read_to_string(path).expect("plan saved")).expect("a plan")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_entra_connect_to_ad2entra_with_only_adoptions() {
    let mut cfg = EmulatorConfig::default();
    cfg.additional_clients.push(ClientConfig {
        client_id: ADMIN_APP.into(),
        client_secret: ADMIN_SECRET.into(),
        permissions: vec!["Organization.ReadWrite.All".into()],
    });
    let emu = Emulator::start(cfg.clone()).await.expect("emulator");
    emu.seed(&serde_json::from_value(connect_seed()).unwrap())
        .expect("seed");
    let dir = tempfile::tempdir().unwrap();
    let ldif = dir.path().join("corp.ldif");
    std::fs::write(&ldif, company().ldif()).unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: ad2entra/v1\ntarget:\n  extensionAppId: \"{}\"\nadopt: {{by: immutableId}}\n",
            cfg.client_id
        ),
    )
    .unwrap();
    let (policy, ldif) = (policy.to_str().unwrap(), ldif.to_str().unwrap());
    let out = ad2entra(&emu, &cfg, &["init", "--policy", policy]).await;
    assert_eq!(out.code, Some(0), "init: {}{}", out.stdout, out.stderr);

    // 1. Inventory: everything is still synced, and would be hard-matched.
    let r = migrate_check(&emu, &cfg, policy, ldif).await;
    assert_eq!(r["tenantSync"]["state"], json!("on"), "{r:#}");
    assert_eq!(
        (&r["stillSynced"]["users"], &r["stillSynced"]["groups"]),
        (&json!(3), &json!(2))
    );
    assert_eq!(
        (&r["hardMatched"]["users"], &r["hardMatched"]["groups"]),
        (&json!(3), &json!(2))
    );
    assert_eq!(r["toCreate"]["users"], json!(0));
    assert_eq!(r["noAdCounterpart"]["users"], json!(0));

    // 2. While Connect's objects are synced, a plan leaves them alone (and creates none).
    let out = plan_cmd(&emu, &cfg, policy, ldif, &["--detailed-exitcode"]).await;
    assert_eq!(out.code, Some(0), "no change: {}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.matches("held-by-synced-object").count(),
        5,
        "{}",
        out.stdout
    );

    // 3. The administrator turns directory synchronization off.
    turn_off_directory_sync(&emu, &cfg).await;
    let r = migrate_check(&emu, &cfg, policy, ldif).await;
    assert_eq!(r["tenantSync"]["state"], json!("off"), "{r:#}");
    assert_eq!(r["stillSynced"]["users"], json!(0));
    assert_eq!(r["hardMatched"]["users"], json!(3));

    // 4. The plan: only adoptions — no create, no delete, no membership change.
    let saved = dir.path().join("plan.json");
    let out = plan_cmd(
        &emu,
        &cfg,
        policy,
        ldif,
        &["--out", saved.to_str().unwrap(), "--detailed-exitcode"],
    )
    .await;
    assert_eq!(out.code, Some(2), "changes: {}{}", out.stdout, out.stderr);
    let plan = plan_file(&saved);
    let ops: Vec<&str> = plan.actions.iter().map(|a| a.op.as_str()).collect();
    assert_eq!(ops, vec!["adopt"; 5], "{}", out.stdout);
    assert!(plan.blocked.is_empty(), "{:?}", plan.blocked);

    // 5. Apply it; the next plan is empty.
    let out = ad2entra(
        &emu,
        &cfg,
        &["apply", saved.to_str().unwrap(), "--auto-approve"],
    )
    .await;
    assert_eq!(out.code, Some(0), "apply: {}{}", out.stdout, out.stderr);
    let out = plan_cmd(&emu, &cfg, policy, ldif, &["--detailed-exitcode"]).await;
    assert_eq!(out.code, Some(0), "converged: {}{}", out.stdout, out.stderr);

    // Nothing was duplicated: the same objects, now carrying ad2entra's anchor.
    let state = emu.state();
    let users = state["users"].as_array().unwrap();
    let groups = state["groups"].as_array().unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(groups.len(), 2);
    let ext = format!(
        "extension_{}_ad2entraAnchor",
        cfg.client_id.replace('-', "")
    );
    for u in users {
        let upn = u["userPrincipalName"].as_str().unwrap_or_default();
        if upn.starts_with("helpdesk") {
            assert!(u.get(&ext).is_none(), "the cloud-only account is untouched");
        } else {
            assert_eq!(u[&ext], u["onPremisesImmutableId"], "{u:#}");
        }
    }
    let r = migrate_check(&emu, &cfg, policy, ldif).await;
    assert_eq!(r["alreadyOwned"], json!(5));
}

/// `plan --out` then `apply` of the saved plan, as the administrator would; the plan.
async fn plan_and_apply(
    emu: &Emulator,
    cfg: &EmulatorConfig,
    policy: &str,
    ldif: &str,
    saved: &Path,
) -> ad2entra::plan::Plan {
    let out = plan_cmd(emu, cfg, policy, ldif, &["--out", saved.to_str().unwrap()]).await;
    assert_eq!(out.code, Some(0), "plan: {}{}", out.stdout, out.stderr);
    let plan = plan_file(saved);
    if !plan.actions.is_empty() {
        let out = ad2entra(
            emu,
            cfg,
            &["apply", saved.to_str().unwrap(), "--auto-approve"],
        )
        .await;
        assert_eq!(out.code, Some(0), "apply: {}{}", out.stdout, out.stderr);
    }
    plan
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_anchor_is_applied_as_updates_of_the_same_objects() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    let mut ad = company();
    ad.user(4, "dave", &[])
        .binary("mS-DS-ConsistencyGuid", &guid(504).0);
    let ldif = dir.path().join("corp.ldif");
    std::fs::write(&ldif, ad.ldif()).unwrap();
    let policy = dir.path().join("policy.yaml");
    let write = |anchor: &str| {
        std::fs::write(
            &policy,
            format!(
                "apiVersion: ad2entra/v1\ntarget:\n  extensionAppId: \"{}\"\nanchor: {anchor}\n",
                cfg.client_id
            ),
        )
        .unwrap()
    };
    write("objectGUID");
    let (p, l) = (policy.to_str().unwrap(), ldif.to_str().unwrap());
    assert_eq!(
        ad2entra(&emu, &cfg, &["init", "--policy", p]).await.code,
        Some(0)
    );
    let saved = dir.path().join("plan.json");
    let created = plan_and_apply(&emu, &cfg, p, l, &saved).await;
    assert_eq!(created.summary.create, 6);
    let dave_id = |emu: &Emulator| {
        let state = emu.state();
        let d = state["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["userPrincipalName"] == json!("dave@corp.example.com"))
            .cloned()
            .unwrap();
        (d["id"].clone(), d["onPremisesImmutableId"].clone())
    };
    let (id, before) = dave_id(&emu);
    assert_eq!(before, json!(anchor(4)));

    write("mS-DS-ConsistencyGuid");
    let p2 = plan_and_apply(&emu, &cfg, p, l, &saved).await;
    let ops: Vec<&str> = p2.actions.iter().map(|a| a.op.as_str()).collect();
    assert_eq!(ops, vec!["update"], "{:?}", p2.actions);
    assert_eq!(p2.actions[0].object.anchor.as_ref().unwrap().0, anchor(4));
    assert_eq!(
        dave_id(&emu),
        (id, json!(anchor(504))),
        "the same object, re-anchored"
    );
    let again = plan_and_apply(&emu, &cfg, p, l, &saved).await;
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}
