//! The tenant's directory synchronization: objects Entra Connect synced are read-only
//! through Graph; `PATCH /organization/{id}` with `onPremisesSyncEnabled: false` (the
//! documented way to leave Connect) makes them cloud-managed, keeping their immutable id and
//! security identifier and clearing the documented on-premises properties.

mod common;

use common::*;
use graph_emulator::config::EmulatorConfig;
use serde_json::{Value, json};

const IMMUTABLE_ID: &str = "KtN+mrQKRk2qSC19JzM09g==";
const SID: &str = "S-1-5-21-1004336348-1177238915-682003330-1103";

fn with_org_write(mut cfg: EmulatorConfig) -> EmulatorConfig {
    cfg.permissions.push("Organization.ReadWrite.All".into());
    cfg
}

/// A user and a group as Entra Connect leaves them.
fn seed_connect(c: &Client) {
    c.emu
        .seed(
            &serde_json::from_value(json!({
                "users": [{
                    "id": "11111111-1111-1111-1111-111111111111",
                    "userPrincipalName": "pat@corp.example.com",
                    "displayName": "Pat", "mailNickname": "pat", "accountEnabled": true,
                    "onPremisesSyncEnabled": true,
                    "onPremisesImmutableId": IMMUTABLE_ID,
                    "onPremisesDistinguishedName": "CN=Pat,OU=Staff,DC=corp,DC=example,DC=com",
                    "onPremisesDomainName": "corp.example.com",
                    "onPremisesSamAccountName": "pat",
                    "onPremisesUserPrincipalName": "pat@corp.example.com",
                    "onPremisesSecurityIdentifier": "S-1-5-21-1004336348-1177238915-682003330-1104",
                }],
                "groups": [{
                    "id": "22222222-2222-2222-2222-222222222222",
                    "displayName": "Sales", "mailNickname": "sales",
                    "securityEnabled": true, "mailEnabled": false,
                    "onPremisesSyncEnabled": true,
                    "onPremisesSecurityIdentifier": SID,
                    "onPremisesSamAccountName": "Sales",
                    "onPremisesDomainName": "corp.example.com",
                    "onPremisesNetBiosName": "CORP",
                    "members": ["pat@corp.example.com"],
                }],
            }))
            .unwrap(),
        )
        .unwrap();
}

const USER: &str = "/users/11111111-1111-1111-1111-111111111111";
const GROUP: &str = "/groups/22222222-2222-2222-2222-222222222222";
const USER_SELECT: &str = "?$select=onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSecurityIdentifier,onPremisesDistinguishedName,onPremisesDomainName,onPremisesSamAccountName,onPremisesUserPrincipalName";
const GROUP_SELECT: &str = "?$select=onPremisesSyncEnabled,onPremisesSecurityIdentifier,onPremisesSamAccountName,onPremisesDomainName,onPremisesNetBiosName";

async fn org(c: &Client) -> Value {
    let r = c.call("GET", "/organization", None).await;
    assert_eq!(r.status, 200);
    r.json()["value"][0].clone()
}

async fn turn_off(c: &Client) -> u16 {
    let id = c.emu.config().tenant_id.clone();
    c.call(
        "PATCH",
        &format!("/organization/{id}"),
        Some(json!({"onPremisesSyncEnabled": false})),
    )
    .await
    .status
}

#[tokio::test]
async fn turning_directory_sync_off_makes_connect_objects_cloud_managed() {
    let c = start_with(with_org_write(test_config())).await;
    assert_eq!(
        org(&c).await["onPremisesSyncEnabled"],
        Value::Null,
        "never synced"
    );
    seed_connect(&c);
    let o = org(&c).await;
    assert_eq!(o["onPremisesSyncEnabled"], json!(true), "{o}");
    assert!(o["onPremisesLastSyncDateTime"].is_string());
    // Synced: Graph refuses the write.
    let r = c
        .call("PATCH", USER, Some(json!({"department": "Ops"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("on-premises mastered"));
    let r = c
        .call("PATCH", GROUP, Some(json!({"description": "x"})))
        .await;
    assert_eq!(r.status, 400);

    assert_eq!(turn_off(&c).await, 204);
    assert_eq!(org(&c).await["onPremisesSyncEnabled"], json!(false));
    let u = c
        .call("GET", &format!("{USER}{USER_SELECT}"), None)
        .await
        .json()
        .clone();
    assert_eq!(u["onPremisesSyncEnabled"], json!(false), "{u}");
    assert_eq!(u["onPremisesImmutableId"], json!(IMMUTABLE_ID), "kept");
    assert!(u["onPremisesSecurityIdentifier"].is_string(), "kept: {u}");
    for cleared in [
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesSamAccountName",
        "onPremisesUserPrincipalName",
    ] {
        assert_eq!(u[cleared], Value::Null, "{cleared} cleared: {u}");
    }
    let g = c
        .call("GET", &format!("{GROUP}{GROUP_SELECT}"), None)
        .await
        .json()
        .clone();
    assert_eq!(g["onPremisesSyncEnabled"], json!(false), "{g}");
    assert_eq!(g["onPremisesSecurityIdentifier"], json!(SID), "kept");
    assert_eq!(g["onPremisesNetBiosName"], Value::Null);
    assert_eq!(g["onPremisesSamAccountName"], Value::Null);
    // Now cloud-managed: writable, members too.
    assert_eq!(
        c.call("PATCH", USER, Some(json!({"department": "Ops"})))
            .await
            .status,
        204
    );
    assert_eq!(
        c.call("PATCH", GROUP, Some(json!({"description": "Sales team"})))
            .await
            .status,
        204
    );
    // A second turn-off changes nothing.
    assert_eq!(turn_off(&c).await, 204);
}

#[tokio::test]
async fn turning_sync_off_needs_organization_readwrite_all() {
    let c = start().await;
    seed_connect(&c);
    let id = c.emu.config().tenant_id.clone();
    let r = c
        .invalid(
            "PATCH",
            &format!("/organization/{id}"),
            Some(json!({"onPremisesSyncEnabled": false})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code(), "Authorization_RequestDenied");
    assert_eq!(org(&c).await["onPremisesSyncEnabled"], json!(true));
}

#[tokio::test]
async fn organization_updates_are_checked() {
    let c = start_with(with_org_write(test_config())).await;
    let id = c.emu.config().tenant_id.clone();
    let url = format!("/organization/{id}");
    let r = c
        .invalid("PATCH", &url, Some(json!({"onPremisesSyncEnabled": "off"})))
        .await;
    assert_eq!(r.status, 400);
    let r = c
        .invalid("PATCH", &url, Some(json!({"displayName": "Other"})))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("read-only"));
    let r = c
        .call(
            "PATCH",
            &url,
            Some(json!({"technicalNotificationMails": ["it@corp.example.com"]})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        org(&c).await["technicalNotificationMails"],
        json!(["it@corp.example.com"])
    );
    let r = c
        .invalid(
            "PATCH",
            "/organization/00000000-0000-0000-0000-000000000000",
            Some(json!({"onPremisesSyncEnabled": false})),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn until_the_deactivation_completes_objects_stay_synced() {
    let mut cfg = with_org_write(test_config());
    cfg.dirsync_deactivation_secs = 1.0;
    let c = start_with(cfg).await;
    seed_connect(&c);
    let id = c.emu.config().tenant_id.clone();
    assert_eq!(turn_off(&c).await, 204);
    assert_eq!(org(&c).await["onPremisesSyncEnabled"], json!(false));
    let r = c
        .call("PATCH", USER, Some(json!({"department": "Ops"})))
        .await;
    assert_eq!(r.status, 400, "still being converted");
    // Turning it back on must wait for the deactivation to complete.
    let r = c
        .invalid(
            "PATCH",
            &format!("/organization/{id}"),
            Some(json!({"onPremisesSyncEnabled": true})),
        )
        .await;
    assert_eq!(r.status, 400);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(
        c.call("PATCH", USER, Some(json!({"department": "Ops"})))
            .await
            .status,
        204
    );
    let r = c
        .call(
            "PATCH",
            &format!("/organization/{id}"),
            Some(json!({"onPremisesSyncEnabled": true})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(org(&c).await["onPremisesSyncEnabled"], json!(true));
}

#[tokio::test]
async fn converted_objects_come_back_in_delta() {
    let c = start_with(with_org_write(test_config())).await;
    seed_connect(&c);
    let first = c
        .call("GET", "/users/delta?$select=onPremisesSyncEnabled", None)
        .await;
    let link = first.json()["@odata.deltaLink"]
        .as_str()
        .expect("one page")
        .to_string();
    assert_eq!(turn_off(&c).await, 204);
    let next = c.call("GET", &link, None).await;
    let items = next.json()["value"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["onPremisesSyncEnabled"], json!(false));
}
