//! Directory roles (`/directoryRoles`, members, `(roleTemplateId='…')`) and applications
//! addressed by `(appId='…')`, including their extensionProperties and `$filter=appId eq`.

mod common;

use common::*;
use graph_emulator::Seed;
use serde_json::{Value, json};

const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const UA: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";

fn role_seed() -> Seed {
    serde_json::from_value(json!({
        "users": [
            {"userPrincipalName": "admin1@corp.example.com", "displayName": "Admin 1", "mailNickname": "admin1"},
            {"userPrincipalName": "admin2@corp.example.com", "displayName": "Admin 2", "mailNickname": "admin2"},
            {"userPrincipalName": "helpdesk@corp.example.com", "displayName": "Helpdesk", "mailNickname": "helpdesk"}
        ],
        "directoryRoleMembers": {
            "Global Administrator": ["admin1@corp.example.com", "admin2@corp.example.com"],
            "user administrator": ["helpdesk@corp.example.com"],
            "Privileged Role Administrator": []
        }
    }))
    .unwrap()
}

fn values(r: &Resp) -> Vec<Value> {
    r.json()["value"].as_array().expect("value").clone()
}

fn role_id(list: &[Value], template: &str) -> String {
    list.iter()
        .find(|r| r["roleTemplateId"] == json!(template))
        .and_then(|r| r["id"].as_str())
        .unwrap_or_else(|| panic!("role {template} not listed"))
        .to_string()
}

#[tokio::test]
async fn global_administrator_is_activated_in_an_empty_tenant() {
    let c = start().await;
    let r = c.call("GET", "/directoryRoles", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = values(&r);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["displayName"], json!("Global Administrator"));
    assert_eq!(list[0]["roleTemplateId"], json!(GA));
    let id = list[0]["id"].as_str().unwrap();
    let m = c
        .call("GET", &format!("/directoryRoles/{id}/members"), None)
        .await;
    assert_eq!(m.status, 200);
    assert!(values(&m).is_empty());
}

#[tokio::test]
async fn directory_roles_list_get_and_select() {
    let c = start().await;
    c.emu.seed(&role_seed()).unwrap();
    let r = c.call("GET", "/directoryRoles", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/$metadata#directoryRoles")
    );
    let list = values(&r);
    let names: Vec<&str> = list
        .iter()
        .map(|r| r["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Global Administrator",
            "Privileged Role Administrator",
            "User Administrator"
        ]
    );
    for role in &list {
        assert_eq!(
            keys(role),
            [
                "deletedDateTime",
                "description",
                "displayName",
                "id",
                "roleTemplateId"
            ]
        );
        assert!(role["deletedDateTime"].is_null());
        assert!(!role["description"].as_str().unwrap().is_empty());
        assert_ne!(role["id"], role["roleTemplateId"]);
        assert!(graph_emulator::conformance::is_guid(
            role["id"].as_str().unwrap()
        ));
    }
    let (ga, ua) = (role_id(&list, GA), role_id(&list, UA));
    role_id(&list, PRA);

    // $select, with id always present, and the context naming the selection.
    let r = c
        .call("GET", "/directoryRoles?$select=roleTemplateId", None)
        .await;
    assert!(
        r.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#directoryRoles(roleTemplateId)")
    );
    for role in values(&r) {
        assert_eq!(keys(&role), ["id", "roleTemplateId"]);
    }
    let r = c
        .invalid("GET", "/directoryRoles?$select=displayNam", None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("displayNam"), "{}", r.text);

    // $filter eq.
    let r = c
        .call(
            "GET",
            &format!("/directoryRoles?$filter=roleTemplateId eq '{UA}'"),
            None,
        )
        .await;
    let list = values(&r);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], json!(ua));

    // GET by id, by (roleTemplateId='…') and by the older roleTemplateId=… spelling.
    let by_id = c.call("GET", &format!("/directoryRoles/{ga}"), None).await;
    assert_eq!(by_id.status, 200);
    assert_eq!(by_id.json()["roleTemplateId"], json!(GA));
    assert!(
        by_id.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#directoryRoles/$entity")
    );
    let by_template = c
        .call(
            "GET",
            &format!("/directoryRoles(roleTemplateId='{GA}')?$select=displayName"),
            None,
        )
        .await;
    assert_eq!(by_template.status, 200, "{}", by_template.text);
    assert_eq!(
        keys(by_template.json()),
        ["@odata.context", "displayName", "id"]
    );
    assert_eq!(by_template.json()["id"], json!(ga));
    let old_form = c
        .call("GET", &format!("/directoryRoles/roleTemplateId={GA}"), None)
        .await;
    assert_eq!(old_form.json()["id"], json!(ga));

    // Not activated / unknown: 404 in Graph's shape.
    let exchange = "29232cdf-9323-42fd-ade2-1d097af3e4de";
    let r = c
        .call(
            "GET",
            &format!("/directoryRoles(roleTemplateId='{exchange}')"),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "Request_ResourceNotFound");
    let r = c
        .call(
            "GET",
            "/directoryRoles/00000000-0000-0000-0000-000000000000/members",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // Writes are not modelled.
    let r = c
        .invalid(
            "POST",
            "/directoryRoles",
            Some(json!({"roleTemplateId": UA})),
        )
        .await;
    assert_eq!(r.status, 405);
    // Reads cost 1 resource unit (the documented default).
    assert_eq!(by_id.header("x-ms-resource-unit"), Some("1"));
}

#[tokio::test]
async fn directory_role_ids_are_stable() {
    let mut a = start().await;
    a.emu.seed(&role_seed()).unwrap();
    let first = values(&a.call("GET", "/directoryRoles", None).await);
    // Another emulator of the same tenant.
    let b = start().await;
    b.emu.seed(&role_seed()).unwrap();
    assert_eq!(first, values(&b.call("GET", "/directoryRoles", None).await));
    // The same emulator after a reset (tokens are reset too).
    a.emu.reset();
    a.emu.seed(&role_seed()).unwrap();
    a.token = get_token(&a.http, &a.emu, &a.emu.config()).await;
    assert_eq!(first, values(&a.call("GET", "/directoryRoles", None).await));
    // Another tenant: other ids, same template ids.
    let other = start_with(graph_emulator::EmulatorConfig {
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        ..test_config()
    })
    .await;
    let theirs = values(&other.call("GET", "/directoryRoles", None).await);
    assert_eq!(theirs[0]["roleTemplateId"], json!(GA));
    assert_ne!(theirs[0]["id"], json!(role_id(&first, GA)));
}

#[tokio::test]
async fn directory_role_members_select_paging_and_template_key() {
    let c = start().await;
    let report = c.emu.seed(&role_seed()).unwrap();
    let list = values(
        &c.call("GET", "/directoryRoles?$select=id,roleTemplateId", None)
            .await,
    );
    let ga = role_id(&list, GA);
    let mut admins = vec![report.user_ids[0].clone(), report.user_ids[1].clone()];
    admins.sort();

    let r = c
        .call(
            "GET",
            &format!("/directoryRoles/{ga}/members?$select=id,userPrincipalName"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let members = values(&r);
    assert_eq!(members.len(), 2);
    for m in &members {
        assert_eq!(m["@odata.type"], json!("#microsoft.graph.user"));
        assert_eq!(keys(m), ["@odata.type", "id", "userPrincipalName"]);
    }
    let ids: Vec<&str> = members.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, admins);

    // Paged with $top and @odata.nextLink.
    let r = c
        .call(
            "GET",
            &format!("/directoryRoles/{ga}/members?$select=id&$top=1"),
            None,
        )
        .await;
    assert_eq!(values(&r).len(), 1);
    let next = r.json()["@odata.nextLink"].as_str().expect("nextLink");
    let r2 = c.call("GET", next, None).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    assert_eq!(values(&r2).len(), 1);
    assert_ne!(values(&r)[0]["id"], values(&r2)[0]["id"]);
    assert!(r2.json().get("@odata.nextLink").is_none());

    // Addressed by template id.
    let r = c
        .call(
            "GET",
            &format!("/directoryRoles(roleTemplateId='{UA}')/members?$select=id"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(values(&r)[0]["id"], json!(report.user_ids[2]));

    // Inside $batch, as the ad2entra reader asks for them.
    let batch = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/directoryRoles/{ga}/members?$select=id&$top=999")},
        {"id": "2", "method": "GET", "url": format!("/directoryRoles(roleTemplateId='{PRA}')/members?$select=id&$top=999")}
    ]});
    let r = c.call("POST", "/$batch", Some(batch)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for resp in r.json()["responses"].as_array().unwrap() {
        assert_eq!(resp["status"], json!(200), "{resp}");
        let n = resp["body"]["value"].as_array().unwrap().len();
        assert_eq!(n, if resp["id"] == json!("1") { 2 } else { 0 });
    }

    // Role holders stay protected from deletion.
    let r = c
        .call("DELETE", &format!("/users/{}", report.user_ids[0]), None)
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn seed_refuses_unknown_roles_and_accepts_template_ids() {
    let c = start().await;
    let bad: Seed =
        serde_json::from_value(json!({"directoryRoleMembers": {"Global Admin": []}})).unwrap();
    let e = c.emu.seed(&bad).expect_err("unknown role name");
    assert!(e.to_string().contains("Global Admin"), "{e}");
    let by_template: Seed = serde_json::from_value(
        json!({"directoryRoleMembers": {"4a5d8f65-41da-4de4-8968-e035b65339cf": []}}),
    )
    .unwrap();
    c.emu.seed(&by_template).unwrap();
    let list = values(&c.call("GET", "/directoryRoles", None).await);
    assert!(
        list.iter()
            .any(|r| r["displayName"] == json!("Reports Reader"))
    );
    assert!(
        c.emu.state()["directoryRoleMembers"]
            .get("Reports Reader")
            .is_some()
    );
}

#[tokio::test]
async fn applications_by_app_id_and_filter() {
    let c = start().await;
    let app = c.emu.config().applications[0].clone();
    let key = format!("/applications(appId='{}')", app.app_id);

    let r = c.call("GET", &key, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["id"], json!(app.id));
    assert_eq!(r.json()["appId"], json!(app.app_id));
    let r = c
        .call("GET", &format!("{key}?$select=displayName"), None)
        .await;
    assert_eq!(keys(r.json()), ["@odata.context", "displayName", "id"]);
    let r = c
        .call(
            "GET",
            "/applications(appId='00000000-0000-0000-0000-000000000000')/extensionProperties",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "Request_ResourceNotFound");

    // extensionProperties through the appId key and through the object id are the same set.
    let body =
        json!({"name": "costCenter", "dataType": "String", "targetObjects": ["User", "Group"]});
    let r = c
        .call("POST", &format!("{key}/extensionProperties"), Some(body))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ext_id = r.json()["id"].as_str().unwrap().to_string();
    let expected = format!("extension_{}_costCenter", app.app_id.replace('-', ""));
    assert_eq!(r.json()["name"], json!(expected));
    for path in [
        format!("{key}/extensionProperties"),
        format!("/applications/{}/extensionProperties", app.id),
    ] {
        let r = c.call("GET", &path, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let names: Vec<&str> = r.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert!(names.contains(&expected.as_str()), "{path}: {names:?}");
    }
    // Percent-encoded key spelling.
    let encoded = format!(
        "/applications%28appId%3D%27{}%27%29/extensionProperties",
        app.app_id
    );
    assert_eq!(c.call("GET", &encoded, None).await.status, 200);
    let r = c
        .call("GET", &format!("{key}/extensionProperties/{ext_id}"), None)
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .call(
            "DELETE",
            &format!("{key}/extensionProperties/{ext_id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);

    // $filter=appId eq '…'.
    let r = c
        .call(
            "GET",
            &format!(
                "/applications?$filter=appId eq '{}'&$select=id,appId",
                app.app_id
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = values(&r);
    assert_eq!(list.len(), 1);
    assert_eq!(keys(&list[0]), ["appId", "id"]);
    assert_eq!(list[0]["id"], json!(app.id));
    let r = c
        .call(
            "GET",
            "/applications?$filter=appId eq '00000000-0000-0000-0000-000000000000'",
            None,
        )
        .await;
    assert!(values(&r).is_empty());
}
