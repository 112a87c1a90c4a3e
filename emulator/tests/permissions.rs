//! Application permissions: a token carries the permissions consented for its app, and each
//! route answers 403 `Authorization_RequestDenied` without one it documents; a second app
//! registration gets its own tokens; `getAvailableExtensionProperties` lists the tenant's
//! directory extensions.

mod common;

use common::*;
use graph_emulator::{ApplicationConfig, ClientConfig, EmulatorConfig};
use serde_json::{Value, json};

const CI_APP: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CI_SECRET: &str = "ci-secret";

/// The default tenant plus a read-only CI app registration.
fn two_apps(ci_permissions: &[&str]) -> EmulatorConfig {
    let mut cfg = test_config();
    cfg.additional_clients.push(ClientConfig {
        client_id: CI_APP.into(),
        client_secret: CI_SECRET.into(),
        permissions: ci_permissions.iter().map(|p| p.to_string()).collect(),
    });
    cfg.applications.push(ApplicationConfig {
        id: "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f".into(),
        app_id: CI_APP.into(),
        display_name: "ad2entra-ci".into(),
        extension_properties: vec![],
    });
    cfg
}

/// A client for the CI app (same emulator, its own token).
async fn as_ci(main: &Client) -> Client {
    let http = reqwest::Client::new();
    let mut cfg = main.emu.config();
    cfg.client_id = CI_APP.into();
    cfg.client_secret = Some(CI_SECRET.into());
    let token = get_token(&http, &main.emu, &cfg).await;
    Client {
        emu: main.emu.clone(),
        http,
        token,
    }
}

/// `POST /applications(appId='…')/extensionProperties` of a String extension on users.
async fn register(client: &Client, app: &str, name: &str) -> Resp {
    client
        .call(
            "POST",
            &format!("/applications(appId='{app}')/extensionProperties"),
            Some(json!({"name": name, "dataType": "String", "targetObjects": ["User"]})),
        )
        .await
}

/// `POST /directoryObjects/getAvailableExtensionProperties` with `body`.
async fn available(client: &Client, body: serde_json::Value) -> Resp {
    client
        .call(
            "POST",
            "/directoryObjects/getAvailableExtensionProperties",
            Some(body),
        )
        .await
}

fn assert_forbidden(r: &Resp) {
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "Authorization_RequestDenied");
    assert_eq!(
        r.error_message(),
        "Insufficient privileges to complete the operation."
    );
    let inner = &r.json()["error"]["innerError"];
    assert!(inner["request-id"].is_string() && inner["date"].is_string());
}

#[tokio::test]
async fn token_roles_follow_the_consented_permissions() {
    let c = start_with(two_apps(&["User.Read.All"])).await;
    let ci = as_ci(&c).await;
    let claims = |t: &str| -> Value {
        use base64::Engine;
        let part = t.split('.').nth(1).unwrap();
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    assert_eq!(claims(&ci.token)["appid"], json!(CI_APP));
    assert_eq!(claims(&ci.token)["roles"], json!(["User.Read.All"]));
    let main_roles = claims(&c.token)["roles"].clone();
    assert!(
        main_roles
            .as_array()
            .unwrap()
            .contains(&json!("Directory.ReadWrite.All")),
        "{main_roles}"
    );
    // A wrong secret for the second app is refused like the first app's.
    let r = c
        .http
        .post(c.emu.token_url())
        .form(&[
            ("client_id", CI_APP),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_secret", "wrong"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn reads_without_a_documented_permission_are_403() {
    let c = start_with(two_apps(&["User.Read.All", "GroupMember.Read.All"])).await;
    let ci = as_ci(&c).await;
    assert_eq!(ci.call("GET", "/users?$select=id", None).await.status, 200);
    assert_eq!(ci.call("GET", "/groups?$select=id", None).await.status, 200);
    assert_eq!(
        ci.call(
            "GET",
            "/directory/deletedItems/microsoft.graph.user?$select=id",
            None
        )
        .await
        .status,
        200
    );
    for path in ["/directoryRoles", "/subscribedSkus", "/domains"] {
        assert_forbidden(&ci.call("GET", path, None).await);
    }
    assert_forbidden(
        &ci.call(
            "POST",
            "/directoryObjects/getAvailableExtensionProperties",
            Some(json!({})),
        )
        .await,
    );
    // Writes need write permissions.
    assert_forbidden(&ci.call("POST", "/users", Some(user_body("ci1"))).await);
    // The main app still reads everything.
    assert_eq!(c.call("GET", "/directoryRoles", None).await.status, 200);
}

#[tokio::test]
async fn inner_batch_requests_are_checked_one_by_one() {
    let c = start_with(two_apps(&["User.Read.All"])).await;
    let ci = as_ci(&c).await;
    let r = ci
        .call(
            "POST",
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "GET", "url": "/users?$select=id"},
                {"id": "2", "method": "GET", "url": "/directoryRoles"}
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let responses = r.json()["responses"].as_array().unwrap();
    let status = |id: &str| {
        responses
            .iter()
            .find(|x| x["id"] == json!(id))
            .map(|x| x["status"].as_u64().unwrap())
    };
    assert_eq!(status("1"), Some(200));
    assert_eq!(status("2"), Some(403));
}

#[tokio::test]
async fn directory_readwrite_cannot_delete_users() {
    let mut cfg = test_config();
    cfg.permissions = vec!["Directory.ReadWrite.All".into()];
    let c = start_with(cfg).await;
    let id = c.create_user("keep").await;
    assert_forbidden(&c.call("DELETE", &format!("/users/{id}"), None).await);
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/users/{id}"),
            Some(json!({"jobTitle": "x"}))
        )
        .await
        .status,
        204
    );
}

#[tokio::test]
async fn owned_by_registers_extensions_only_on_the_callers_own_app() {
    let c = start_with(two_apps(&[
        "Application.ReadWrite.OwnedBy",
        "Directory.Read.All",
    ]))
    .await;
    let ci = as_ci(&c).await;
    let body =
        json!({"name": "ad2entraAnchor", "dataType": "String", "targetObjects": ["User", "Group"]});
    let main_app = c.emu.config().client_id;
    assert_forbidden(
        &ci.call(
            "POST",
            &format!("/applications(appId='{main_app}')/extensionProperties"),
            Some(body.clone()),
        )
        .await,
    );
    let r = ci
        .call(
            "POST",
            &format!("/applications(appId='{CI_APP}')/extensionProperties"),
            Some(body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Reading another app's extensions is allowed with OwnedBy.
    let r = ci
        .call(
            "GET",
            &format!("/applications(appId='{main_app}')/extensionProperties"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn available_extension_properties_span_every_application() {
    let c = start_with(two_apps(&["Application.ReadWrite.OwnedBy"])).await;
    let ci = as_ci(&c).await;
    let main_app = c.emu.config().client_id;
    for (client, app, name) in [(&c, main_app.as_str(), "skypeId"), (&ci, CI_APP, "badge")] {
        let r = register(client, app, name).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = available(&c, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/$metadata#Collection(extensionProperty)")
    );
    let mut names: Vec<String> = r.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(
                e["@odata.type"],
                json!("#microsoft.graph.extensionProperty")
            );
            assert_eq!(e["isSyncedFromOnPremises"], json!(false));
            e["name"].as_str().unwrap().to_string()
        })
        .collect();
    names.sort();
    let hex = |a: &str| a.replace('-', "");
    let mut expected = vec![
        format!("extension_{}_skypeId", hex(&main_app)),
        format!("extension_{}_badge", hex(CI_APP)),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let apps: Vec<&str> = r.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["appDisplayName"].as_str().unwrap())
        .collect();
    assert!(apps.contains(&"ad2entra-ci"), "{apps:?}");
    // Only on-premises synced ones: none here.
    let r = available(&c, json!({"isSyncedFromOnPremises": true})).await;
    assert_eq!(r.json()["value"], json!([]));
    // An unknown parameter is refused; GET is not the method.
    let r = c
        .invalid(
            "POST",
            "/directoryObjects/getAvailableExtensionProperties",
            Some(json!({"all": true})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = c
        .invalid(
            "GET",
            "/directoryObjects/getAvailableExtensionProperties",
            None,
        )
        .await;
    assert_eq!(r.status, 405, "{}", r.text);
}

#[tokio::test]
async fn available_extension_properties_are_empty_in_tenants_over_the_documented_limit() {
    let mut cfg = two_apps(&[]);
    cfg.available_extensions_limit = Some(1);
    let c = start_with(cfg).await;
    let main_app = c.emu.config().client_id;
    let r = register(&c, &main_app, "skypeId").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = available(&c, json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["value"],
        json!([]),
        "two apps > limit 1: the known issue"
    );
    // The app's own list still has it.
    let r = c
        .call(
            "GET",
            &format!("/applications(appId='{main_app}')/extensionProperties"),
            None,
        )
        .await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 1);
}
