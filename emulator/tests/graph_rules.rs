//! Graph's documented value rules (`graph_emulator::rules`): each refused on create and
//! on update with 400 `Request_BadRequest` and an `InvalidValue` detail naming the
//! property, and its valid counterpart accepted. ad2entra's planner checks the same
//! rules (its tests/graph_rules.rs runs the same values through both).

mod common;
use common::*;
use graph_emulator::Seed;
use graph_emulator::rules::UndocumentedRule;
use serde_json::{Value, json};

/// (property, refused value, accepted value) on users.
fn user_cases() -> Vec<(&'static str, Value, Value)> {
    #[rustfmt::skip]
    let cases = vec![
        ("mail", json!("jürgen.müller@corp.example.com"), json!("jurgen.muller@corp.example.com")),
        ("mail", json!("not-an-address"), json!("a@corp.example.com")),
        ("otherMails", json!(["zoë@example.org"]), json!(["zoe@example.org"])),
        ("otherMails", json!((0..251).map(|i| format!("o{i}@example.org")).collect::<Vec<_>>()), json!((0..250).map(|i| format!("o{i}@example.org")).collect::<Vec<_>>())),
        ("usageLocation", json!("Germany"), json!("DE")),
        ("usageLocation", json!("UK"), json!("GB")),
        ("usageLocation", json!("us"), json!("US")),
        ("preferredLanguage", json!("English"), json!("en-US")),
        ("businessPhones", json!(["+1 206 555 0100", "+1 206 555 0101"]), json!(["+1 206 555 0100"])),
        ("jobTitle", json!("x".repeat(129)), json!("x".repeat(128))),
        ("officeLocation", json!("x".repeat(129)), json!("x".repeat(128))),
        ("mobilePhone", json!("1".repeat(65)), json!("1".repeat(64))),
        ("mailNickname", json!("o'brien"), json!("o.brien")),
        ("userPrincipalName", json!("josé@corp.example.com"), json!("jose@corp.example.com")),
        ("userPrincipalName", json!("a..b@corp.example.com"), json!("a.b@corp.example.com")),
        ("userPrincipalName", json!(".ab@corp.example.com"), json!("ab@corp.example.com")),
        ("userPrincipalName", json!(format!("{}@corp.example.com", "a".repeat(65))), json!(format!("{}@corp.example.com", "a".repeat(64)))),
    ];
    cases
}

fn assert_invalid_value(r: &Resp, prop: &str) {
    assert_eq!(r.status, 400, "{prop}: {}", r.text);
    assert_eq!(r.error_code(), "Request_BadRequest", "{prop}");
    let detail = &r.json()["error"]["details"][0];
    assert_eq!(detail["code"], json!("InvalidValue"), "{prop}");
    assert_eq!(detail["target"], json!(prop));
    assert_eq!(
        r.error_message(),
        format!("Invalid value specified for property '{prop}' of resource 'User'.")
    );
}

#[tokio::test]
async fn each_user_rule_refuses_on_create_and_update_and_accepts_the_valid_value() {
    let c = start().await;
    let target = c.create_user("target").await;
    for (n, (prop, bad, good)) in user_cases().into_iter().enumerate() {
        let mut b = user_body(&format!("u{n}"));
        b[prop] = bad.clone();
        assert_invalid_value(&c.call("POST", "/users", Some(b)).await, prop);
        let r = c
            .call(
                "PATCH",
                &format!("/users/{target}"),
                Some(json!({ prop: bad })),
            )
            .await;
        assert_invalid_value(&r, prop);
        let mut b = user_body(&format!("u{n}"));
        b[prop] = good.clone();
        let r = c.call("POST", "/users", Some(b)).await;
        assert_eq!(r.status, 201, "{prop} {good}: {}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_string();
        c.call("DELETE", &format!("/users/{id}"), None).await;
        c.call("DELETE", &format!("/directory/deletedItems/{id}"), None)
            .await;
    }
}

#[tokio::test]
async fn group_rules_follow_the_group_resource() {
    let c = start().await;
    let body = |nick: &str, name: String| json!({"displayName": name, "mailEnabled": false, "mailNickname": nick, "securityEnabled": true});
    for bad in ["sales team", "sales/team", "sales;team", "ventes-équipe"] {
        let r = c.call("POST", "/groups", Some(body(bad, "G".into()))).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.json()["error"]["details"][0]["target"],
            json!("mailNickname")
        );
    }
    let r = c
        .call("POST", "/groups", Some(body("g", "x".repeat(257))))
        .await;
    assert_eq!(
        r.json()["error"]["details"][0]["target"],
        json!("displayName")
    );
    let r = c
        .call("POST", "/groups", Some(body("sales.team", "x".repeat(256))))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn mail_is_unique_against_every_proxy_address_of_users_and_groups() {
    let c = start().await;
    let seed = json!({"groups": [{"displayName": "Sales (M365)", "mailNickname": "sales", "mailEnabled": true,
        "securityEnabled": false, "groupTypes": ["Unified"], "mail": "sales@corp.example.com",
        "proxyAddresses": ["SMTP:sales@corp.example.com", "smtp:vertrieb@corp.example.com"]}]});
    c.emu
        .seed(&serde_json::from_value::<Seed>(seed).unwrap())
        .unwrap();
    for taken in ["Vertrieb@corp.example.com", "sales@corp.example.com"] {
        let mut b = user_body("clash");
        b["mail"] = json!(taken);
        let r = c.call("POST", "/users", Some(b)).await;
        assert_eq!(r.status, 400, "{taken}");
        assert_eq!(
            r.error_message(),
            "Another object with the same value for property proxyAddresses already exists."
        );
    }
    let mut b = user_body("free");
    b["mail"] = json!("free@corp.example.com");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
}

#[tokio::test]
async fn an_undocumented_rule_refuses_like_graph_until_reset() {
    let c = start().await;
    c.emu.add_undocumented_rule(UndocumentedRule {
        resource: "User".into(),
        property: "jobTitle".into(),
        contains: "ninja".into(),
    });
    let mut b = user_body("n1");
    b["jobTitle"] = json!("Code Ninja");
    assert_invalid_value(&c.call("POST", "/users", Some(b.clone())).await, "jobTitle");
    b["jobTitle"] = json!("Engineer");
    assert_eq!(c.call("POST", "/users", Some(b.clone())).await.status, 201);
    c.emu.reset();
    b["jobTitle"] = json!("Code Ninja");
    b["mailNickname"] = json!("n2");
    b["userPrincipalName"] = json!("n2@corp.example.com");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
}
