//! Users, groups, members, manager, licences, extensions, deleted items and validation.

mod common;
use common::*;
use graph_emulator::Seed;
use serde_json::{Value, json};

#[tokio::test]
async fn create_get_patch_delete_restore_user() {
    let c = start().await;
    let r = c
        .call(
            "POST",
            "/users",
            Some(
                sample("create-user-request.json")
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert(
                            "userPrincipalName".into(),
                            json!("AdeleV@corpexample.onmicrosoft.com"),
                        );
                        Value::Object(o)
                    })
                    .unwrap(),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Same property names as Graph's create response.
    assert_eq!(
        keys(r.json()),
        keys(&sample("create-user-response-201.json"))
    );
    // By UPN, case-insensitive.
    let r = c
        .call("GET", "/users/adelev@corpexample.onmicrosoft.com", None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], json!(id));
    // Returned only on $select.
    assert!(r.json().get("accountEnabled").is_none());
    let r = c
        .call(
            "GET",
            &format!("/users/{id}?$select=accountEnabled,usageLocation,onPremisesImmutableId"),
            None,
        )
        .await;
    assert_eq!(r.json()["accountEnabled"], json!(true));
    assert_eq!(r.json()["usageLocation"], Value::Null);
    assert_eq!(keys(r.json()).len(), 5); // 3 + id + @odata.context

    let r = c
        .call(
            "PATCH",
            &format!("/users/{id}"),
            Some(json!({"jobTitle": "Engineer", "mail": "adele@corp.example.com"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let r = c
        .call(
            "GET",
            &format!("/users/{id}?$select=jobTitle,mail,proxyAddresses"),
            None,
        )
        .await;
    assert_eq!(r.json()["jobTitle"], json!("Engineer"));
    assert_eq!(
        r.json()["proxyAddresses"],
        json!(["SMTP:adele@corp.example.com"])
    );

    let r = c.call("DELETE", &format!("/users/{id}"), None).await;
    assert_eq!(r.status, 204);
    let r = c.call("GET", &format!("/users/{id}"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "Request_ResourceNotFound");
    assert_eq!(keys(r.json()), keys(&sample("not-found-404.json")));
    assert_eq!(
        keys(&r.json()["error"]["innerError"]),
        keys(&sample("not-found-404.json")["error"]["innerError"])
    );

    let r = c
        .call("GET", "/directory/deletedItems/microsoft.graph.user", None)
        .await;
    let deleted = r.json()["value"].as_array().unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0]["deletedDateTime"].is_string());
    let r = c
        .call(
            "POST",
            &format!("/directory/deletedItems/{id}/restore"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        c.call("GET", &format!("/users/{id}"), None).await.status,
        200
    );
    assert_eq!(
        c.call("GET", "/directory/deletedItems/microsoft.graph.user", None)
            .await
            .json()["value"],
        json!([])
    );
    // Purge.
    c.call("DELETE", &format!("/users/{id}"), None).await;
    assert_eq!(
        c.call("DELETE", &format!("/directory/deletedItems/{id}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        c.call(
            "POST",
            &format!("/directory/deletedItems/{id}/restore"),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn user_validation_like_graph() {
    let c = start().await;
    // Missing required property.
    let mut b = user_body("a1");
    b.as_object_mut().unwrap().remove("mailNickname");
    let r = c.invalid("POST", "/users", Some(b)).await;
    assert_eq!((r.status, r.error_code()), (400, "Request_BadRequest"));
    // Missing password.
    let mut b = user_body("a2");
    b["passwordProfile"] = json!({"forceChangePasswordNextSignIn": true});
    assert_eq!(c.invalid("POST", "/users", Some(b)).await.status, 400);
    // Read-only.
    for (prop, val) in [
        ("proxyAddresses", json!(["SMTP:x@corp.example.com"])),
        ("onPremisesSyncEnabled", json!(true)),
        ("onPremisesSamAccountName", json!("x")),
        ("onPremisesUserPrincipalName", json!("x@y")),
        ("onPremisesDistinguishedName", json!("CN=x")),
        ("onPremisesSecurityIdentifier", json!("S-1-5")),
    ] {
        let mut b = user_body("a3");
        b[prop] = val;
        let r = c.invalid("POST", "/users", Some(b)).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.error_message(),
            format!("Property '{prop}' is read-only and cannot be set.")
        );
    }
    // Unknown property.
    let mut b = user_body("a4");
    b["favouriteColour"] = json!("blue");
    let r = c.invalid("POST", "/users", Some(b)).await;
    assert_eq!((r.status, r.error_code()), (400, "BadRequest"));
    assert!(r.error_message().contains("favouriteColour"));
    // Unverified domain.
    let mut b = user_body("a5");
    b["userPrincipalName"] = json!("a5@contoso.local");
    let r = c.call("POST", "/users", Some(b)).await;
    assert_eq!(r.status, 400);
    assert!(
        r.error_message()
            .starts_with("The domain portion of the userPrincipalName property is invalid")
    );
    // Lengths.
    for (prop, len) in [
        ("displayName", 257),
        ("mailNickname", 65),
        ("employeeId", 17),
    ] {
        let mut b = user_body("a6");
        b[prop] = json!("x".repeat(len));
        let r = c.call("POST", "/users", Some(b)).await;
        assert_eq!(r.status, 400, "{prop}");
        assert_eq!(r.json()["error"]["details"][0]["target"], json!(prop));
        let mut b = user_body("a6");
        b[prop] = json!("x".repeat(len - 1));
        if prop == "mailNickname" {
            b["mailNickname"] = json!("y".repeat(len - 1));
        }
        let r = c.call("POST", "/users", Some(b)).await;
        assert_eq!(r.status, 201, "{prop} at the limit: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        c.call("DELETE", &format!("/users/{id}"), None).await;
        c.call("DELETE", &format!("/directory/deletedItems/{id}"), None)
            .await;
    }
    // Wrong type.
    let mut b = user_body("a7");
    b["accountEnabled"] = json!("yes");
    assert_eq!(c.invalid("POST", "/users", Some(b)).await.status, 400);
    // Non-JSON body.
    let r = c
        .http
        .post(format!("{}/users", c.emu.base_url()))
        .bearer_auth(&c.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // displayName cannot be cleared.
    let id = c.create_user("a8").await;
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/users/{id}"),
            Some(json!({"displayName": ""}))
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn uniqueness_conflicts() {
    let c = start().await;
    let a = c.create_user("dup").await;
    let mut b = user_body("dup2");
    b["userPrincipalName"] = json!("DUP@corp.example.com");
    let r = c.call("POST", "/users", Some(b)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_message(),
        "Another object with the same value for property userPrincipalName already exists."
    );
    let sample = sample("conflict-domain-id-400-batch-item.json");
    assert_eq!(keys(&r.json()["error"]), keys(&sample["error"]));
    assert_eq!(
        keys(&r.json()["error"]["details"][0]),
        keys(&sample["error"]["details"][0])
    );
    assert_eq!(
        r.json()["error"]["details"][0]["code"],
        json!("ObjectConflict")
    );

    let r = c.call("POST", "/users", Some(user_body("dup"))).await; // same UPN and nickname
    assert_eq!(r.status, 400);
    // mailNickname is "unique for Microsoft 365 groups in the organization" only: users,
    // and security groups, may share one.
    let mut b = user_body("other");
    b["mailNickname"] = json!("dup");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
    let sg = |n: &str| json!({"displayName": n, "mailEnabled": false, "mailNickname": "samenick", "securityEnabled": true});
    assert_eq!(
        c.call("POST", "/groups", Some(sg("SG 1"))).await.status,
        201
    );
    assert_eq!(
        c.call("POST", "/groups", Some(sg("SG 2"))).await.status,
        201
    );
    let m365 = |n: &str, nick: &str| json!({"displayName": n, "mailNickname": nick, "mailEnabled": true, "securityEnabled": false, "groupTypes": ["Unified"]});
    let seeded = c
        .emu
        .seed(
            &serde_json::from_value::<Seed>(
                json!({"groups": [m365("M1", "m365one"), m365("M2", "m365two")]}),
            )
            .unwrap(),
        )
        .unwrap();
    let r = c
        .call(
            "PATCH",
            &format!("/groups/{}", seeded.group_ids[1]),
            Some(json!({"mailNickname": "M365ONE"})),
        )
        .await;
    assert_eq!(
        r.error_message(),
        "Another object with the same value for property mailNickname already exists."
    );

    c.call(
        "PATCH",
        &format!("/users/{a}"),
        Some(json!({"mail": "shared@corp.example.com"})),
    )
    .await;
    let mut b = user_body("m2");
    b["mail"] = json!("Shared@corp.example.com");
    let r = c.call("POST", "/users", Some(b)).await;
    assert_eq!(
        r.json()["error"]["details"][0]["target"],
        json!("proxyAddresses")
    );
    assert_eq!(
        r.error_message(),
        sample_message("conflict-proxyaddresses-400.json")
    );

    let mut b = user_body("i1");
    b["onPremisesImmutableId"] = json!("KtN+mrQKRk2qSC19JzM09g==");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
    let mut b = user_body("i2");
    b["onPremisesImmutableId"] = json!("KtN+mrQKRk2qSC19JzM09g==");
    let r = c.call("POST", "/users", Some(b)).await;
    assert_eq!(
        r.json()["error"]["details"][0]["target"],
        json!("onPremisesImmutableId")
    );
    let mut b = user_body("i3");
    b["onPremisesImmutableId"] = json!("has_underscore");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 400);
}

fn sample_message(name: &str) -> String {
    sample(name)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn synced_objects_refuse_writes_and_privileged_users_are_protected() {
    let c = start().await;
    let report = c
        .emu
        .seed(&serde_json::from_value::<Seed>(json!({
            "users": [
                {"userPrincipalName": "synced@corp.example.com", "displayName": "Synced", "mailNickname": "synced", "onPremisesSyncEnabled": true, "onPremisesImmutableId": "AAAA"},
                {"userPrincipalName": "admin@corp.example.com", "displayName": "Admin", "mailNickname": "admin"}
            ],
            "groups": [{"displayName": "Synced group", "mailNickname": "sg", "securityEnabled": true, "mailEnabled": false, "onPremisesSyncEnabled": true, "members": ["synced@corp.example.com"]}],
            "directoryRoleMembers": {"Global Administrator": ["admin@corp.example.com"]}
        })).unwrap())
        .unwrap();
    let (synced, admin) = (&report.user_ids[0], &report.user_ids[1]);
    let group = &report.group_ids[0];
    let r = c
        .call(
            "PATCH",
            &format!("/users/{synced}"),
            Some(json!({"displayName": "x"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().starts_with(
        "Unable to update the specified properties for on-premises mastered Directory Sync objects"
    ));
    // Cloud-mastered usageLocation still writable.
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/users/{synced}"),
            Some(json!({"usageLocation": "FR"}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call("DELETE", &format!("/users/{synced}"), None)
            .await
            .status,
        400
    );
    let r = c
        .call(
            "PATCH",
            &format!("/groups/{group}"),
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(r.status, 400);
    let u = c.create_user("joiner").await;
    let r = c.call("POST", &format!("/groups/{group}/members/$ref"), Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")}))).await;
    assert!(r.error_message().starts_with("Unable to update"));
    let r = c
        .call(
            "PATCH",
            &format!("/users/{admin}"),
            Some(json!({"jobTitle": "x"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(keys(r.json()), keys(&sample("forbidden-403.json")));
    assert_eq!(
        r.error_code(),
        sample("forbidden-403.json")["error"]["code"]
            .as_str()
            .unwrap()
    );
    let r = c
        .call(
            "GET",
            &format!("/users/{synced}?$select=onPremisesSyncEnabled,onPremisesImmutableId"),
            None,
        )
        .await;
    assert_eq!(r.json()["onPremisesSyncEnabled"], json!(true));
}

#[tokio::test]
async fn security_groups_and_membership() {
    let c = start().await;
    let users: Vec<String> = futures_ids(&c, "mem", 22).await;
    let owner = &users[0];
    // Create with members and owners bound (sample request shape).
    let mut body = sample("create-security-group-request.json");
    body["owners@odata.bind"] = json!([format!("https://graph.microsoft.com/v1.0/users/{owner}")]);
    body["members@odata.bind"] = json!([
        format!("https://graph.microsoft.com/v1.0/users/{}", users[1]),
        format!("https://graph.microsoft.com/v1.0/users/{}", users[2])
    ]);
    let r = c.call("POST", "/groups", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(keys(r.json()), {
        let mut k = keys(&sample("create-security-group-response-201.json"));
        k.retain(|x| x != "@odata.id");
        k
    });
    let gid = r.json()["id"].as_str().unwrap().to_string();
    let r = c.call("GET", &format!("/groups/{gid}/members"), None).await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 2);
    assert_eq!(
        r.json()["value"][0]["@odata.type"],
        json!("#microsoft.graph.user")
    );

    // Mail-enabled refused.
    let r = c.call("POST", "/groups", Some(json!({"displayName": "DL", "mailEnabled": true, "mailNickname": "dl", "securityEnabled": false}))).await;
    assert_eq!(
        r.error_message(),
        "Cannot Create a mail-enabled security groups and or distribution list."
    );
    let r = c.call("POST", "/groups", Some(json!({"displayName": "M365", "mailEnabled": true, "mailNickname": "m365", "securityEnabled": false, "groupTypes": ["Unified"]}))).await;
    assert_eq!(r.status, 400);
    let r = c
        .invalid(
            "POST",
            "/groups",
            Some(json!({"displayName": "x", "mailNickname": "x"})),
        )
        .await;
    assert_eq!(r.status, 400);
    // The group resource's forbidden characters (a dot is no longer among them).
    let r = c.call("POST", "/groups", Some(json!({"displayName": "Bad nick", "mailEnabled": false, "mailNickname": "a/b", "securityEnabled": true}))).await;
    assert_eq!(r.status, 400);
    let r = c.call("POST", "/groups", Some(json!({"displayName": "Dotted nick", "mailEnabled": false, "mailNickname": "a.b", "securityEnabled": true}))).await;
    assert_eq!(r.status, 201);

    // $ref add, duplicate, missing object, remove, remove non-member.
    let add = |u: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
    assert_eq!(
        c.call(
            "POST",
            &format!("/groups/{gid}/members/$ref"),
            Some(add(&users[3]))
        )
        .await
        .status,
        204
    );
    let r = c
        .call(
            "POST",
            &format!("/groups/{gid}/members/$ref"),
            Some(add(&users[3])),
        )
        .await;
    assert_eq!(
        r.error_message(),
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let r = c
        .call(
            "POST",
            &format!("/groups/{gid}/members/$ref"),
            Some(add("00000000-0000-0000-0000-000000000001")),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        c.call(
            "DELETE",
            &format!("/groups/{gid}/members/{}/$ref", users[3]),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call(
            "DELETE",
            &format!("/groups/{gid}/members/{}/$ref", users[3]),
            None
        )
        .await
        .status,
        404
    );

    // members@odata.bind: > 20 refused, one bad reference refuses all.
    let binds: Vec<String> = users[1..22]
        .iter()
        .map(|u| format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}"))
        .collect();
    assert_eq!(binds.len(), 21);
    let r = c
        .call(
            "PATCH",
            &format!("/groups/{gid}"),
            Some(json!({"members@odata.bind": binds})),
        )
        .await;
    assert_eq!(r.status, 400);
    let mut some: Vec<String> = users[3..8]
        .iter()
        .map(|u| format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}"))
        .collect();
    some.push(
        "https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-000000000002"
            .into(),
    );
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/groups/{gid}"),
            Some(json!({"members@odata.bind": some}))
        )
        .await
        .status,
        404
    );
    assert_eq!(
        c.call("GET", &format!("/groups/{gid}/members"), None)
            .await
            .json()["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    some.pop();
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/groups/{gid}"),
            Some(json!({"members@odata.bind": some}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call("GET", &format!("/groups/{gid}/members?$top=3"), None)
            .await
            .json()["value"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let r = c
        .call("GET", &format!("/users/{}/memberOf", users[4]), None)
        .await;
    assert_eq!(r.json()["value"][0]["id"], json!(gid));

    // Soft-deleted users keep memberships but are hidden; restored they come back.
    c.call("DELETE", &format!("/users/{}", users[4]), None)
        .await;
    assert_eq!(
        c.call("GET", &format!("/groups/{gid}/members"), None)
            .await
            .json()["value"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    c.call(
        "POST",
        &format!("/directory/deletedItems/{}/restore", users[4]),
        None,
    )
    .await;
    assert_eq!(
        c.call("GET", &format!("/groups/{gid}/members"), None)
            .await
            .json()["value"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    // Groups are deleted permanently.
    assert_eq!(
        c.call("DELETE", &format!("/groups/{gid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        c.call("GET", &format!("/groups/{gid}"), None).await.status,
        404
    );
    assert_eq!(
        c.call("GET", "/directory/deletedItems/microsoft.graph.group", None)
            .await
            .json()["value"],
        json!([])
    );
}

async fn futures_ids(c: &Client, prefix: &str, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(c.create_user(&format!("{prefix}{i}")).await);
    }
    v
}

#[tokio::test]
async fn manager_licenses_skus_domains_organization() {
    let c = start().await;
    let boss = c.create_user("boss").await;
    let u = c.create_user("worker").await;
    let r = c
        .call(
            "PUT",
            &format!("/users/{u}/manager/$ref"),
            Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{boss}")})),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        c.call("GET", &format!("/users/{u}/manager"), None)
            .await
            .json()["id"],
        json!(boss)
    );
    assert_eq!(
        c.call("DELETE", &format!("/users/{u}/manager/$ref"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        c.call("GET", &format!("/users/{u}/manager"), None)
            .await
            .status,
        404
    );

    let sku = graph_emulator::config::SKU_ENTERPRISEPACK;
    let body = json!({"addLicenses": [{"disabledPlans": [], "skuId": sku}], "removeLicenses": []});
    let r = c
        .call(
            "POST",
            &format!("/users/{u}/assignLicense"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_message(),
        "License assignment cannot be done for user with invalid usage location."
    );
    c.call(
        "PATCH",
        &format!("/users/{u}"),
        Some(json!({"usageLocation": "US"})),
    )
    .await;
    let r = c
        .call("POST", &format!("/users/{u}/assignLicense"), Some(body))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let skus = c.call("GET", "/subscribedSkus", None).await;
    let e3 = skus.json()["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["skuId"] == json!(sku))
        .unwrap()
        .clone();
    assert_eq!(e3["consumedUnits"], json!(1));
    assert_eq!(e3["prepaidUnits"]["enabled"], json!(25));
    let r = c
        .call("GET", &format!("/users/{u}?$select=assignedLicenses"), None)
        .await;
    assert_eq!(r.json()["assignedLicenses"][0]["skuId"], json!(sku));
    let r = c
        .call(
            "POST",
            &format!("/users/{u}/assignLicense"),
            Some(json!({"addLicenses": [], "removeLicenses": [sku]})),
        )
        .await;
    assert_eq!(r.status, 200);
    let skus = c.call("GET", "/subscribedSkus", None).await;
    assert!(
        skus.json()["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["consumedUnits"] == json!(0))
    );
    let r = c.call("POST", &format!("/users/{u}/assignLicense"), Some(json!({"addLicenses": [{"disabledPlans": [], "skuId": "45715bb8-13f9-4bf6-927f-ef96c102d394"}], "removeLicenses": []}))).await;
    assert_eq!(r.status, 400);

    let domains = c.call("GET", "/domains", None).await;
    let d = domains.json()["value"].as_array().unwrap();
    assert!(d.iter().any(|d| d["id"] == json!("corp.example.com")
        && d["isVerified"] == json!(true)
        && d["authenticationType"] == json!("Managed")));
    let org = c.call("GET", "/organization", None).await;
    assert_eq!(
        org.json()["value"][0]["verifiedDomains"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn federated_domain_requires_immutable_id() {
    let c = start().await;
    c.emu
        .seed(
            &serde_json::from_value(
                json!({"domains": [{"id": "fed.example.com", "authenticationType": "Federated"}]}),
            )
            .unwrap(),
        )
        .unwrap();
    let mut b = user_body("f1");
    b["userPrincipalName"] = json!("f1@fed.example.com");
    assert_eq!(c.call("POST", "/users", Some(b.clone())).await.status, 400);
    b["onPremisesImmutableId"] = json!("KtN+mrQKRk2qSC19JzM09g==");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
}

#[tokio::test]
async fn directory_extensions() {
    let c = start().await;
    let app_id = c.emu.config().applications[0].id.clone();
    let client = c.emu.config().client_id.replace('-', "");
    let name = format!("extension_{client}_employeeNumber");
    let u = c.create_user("ext").await;
    // Before registration the property is refused.
    let r = c
        .call(
            "PATCH",
            &format!("/users/{u}"),
            Some(json!({name.clone(): "42"})),
        )
        .await;
    assert_eq!(
        r.error_message(),
        format!("The following extension properties are not available: {name}.")
    );
    let r = c
        .call(
            "POST",
            &format!("/applications/{app_id}/extensionProperties"),
            Some(
                json!({"name": "employeeNumber", "dataType": "String", "targetObjects": ["User"]}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["name"], json!(name));
    assert_eq!(
        c.call(
            "GET",
            &format!("/applications/{app_id}/extensionProperties"),
            None
        )
        .await
        .json()["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        c.call(
            "POST",
            &format!("/applications/{app_id}/extensionProperties"),
            Some(
                json!({"name": "employeeNumber", "dataType": "String", "targetObjects": ["User"]})
            )
        )
        .await
        .status,
        400
    );
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/users/{u}"),
            Some(json!({name.clone(): "42"}))
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.call(
            "PATCH",
            &format!("/users/{u}"),
            Some(json!({name.clone(): 42}))
        )
        .await
        .status,
        400
    );
    // Only when named in $select.
    assert!(
        c.call("GET", &format!("/users/{u}"), None)
            .await
            .json()
            .get(&name)
            .is_none()
    );
    let r = c
        .call("GET", &format!("/users/{u}?$select=id,{name}"), None)
        .await;
    assert_eq!(r.json()[&name], json!("42"));
    let r = c
        .call(
            "GET",
            &format!("/users?$filter={name} eq '42'&$select=id"),
            None,
        )
        .await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 1);
    // Not registered for groups.
    let g = c.create_group("extg").await;
    assert_eq!(
        c.call("PATCH", &format!("/groups/{g}"), Some(json!({name: "1"})))
            .await
            .status,
        400
    );
}
