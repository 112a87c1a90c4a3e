//! A domain's federation configuration (`internalDomainFederation`): create only on a
//! verified custom domain, one per domain, get, list (404 when none), update (200 with the
//! object), delete; the domain's authenticationType follows, and users created in the
//! federated domain need onPremisesImmutableId.

mod common;
use common::*;
use graph_emulator::Seed;
use serde_json::{Value, json};

const CERT: &str = include_str!("../../tests/data/federation/signing-2027.b64");
const LIST: &str = "/domains/corp.example.com/federationConfiguration";

fn config() -> Value {
    json!({
        "displayName": "Corp AD FS",
        "issuerUri": "http://sts.corp.example.com/adfs/services/trust",
        "passiveSignInUri": "https://sts.corp.example.com/adfs/ls/",
        "activeSignInUri": "https://sts.corp.example.com/adfs/services/trust/2005/usernamemixed",
        "signOutUri": "https://sts.corp.example.com/adfs/ls/",
        "metadataExchangeUri": "https://sts.corp.example.com/adfs/services/trust/mex",
        "signingCertificate": CERT.trim(),
        "preferredAuthenticationProtocol": "wsFed",
        "federatedIdpMfaBehavior": "rejectMfaByFederatedIdp",
        "promptLoginBehavior": "nativeSupport",
        "isSignedAuthenticationRequestRequired": true
    })
}

async fn authentication_type(c: &Client, domain: &str) -> String {
    let r = c.call("GET", &format!("/domains/{domain}"), None).await;
    r.json()["authenticationType"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn create_get_list_update_delete_and_the_domain_follows() {
    let c = start().await;
    let r = c.call("GET", LIST, None).await;
    assert_eq!(r.status, 404, "none yet: {}", r.text);
    assert_eq!(authentication_type(&c, "corp.example.com").await, "Managed");

    let r = c.call("POST", LIST, Some(config())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.json()["@odata.context"],
        json!(format!(
            "{}/$metadata#domains('corp.example.com')/federationConfiguration/$entity",
            c.emu.base_url()
        ))
    );
    assert_eq!(
        r.json()["@odata.type"],
        json!("#microsoft.graph.internalDomainFederation")
    );
    assert_eq!(r.json()["passiveSignInUri"], config()["passiveSignInUri"]);
    assert_eq!(
        r.json()["signingCertificateUpdateStatus"]["certificateUpdateResult"],
        json!("Success")
    );
    assert_eq!(
        authentication_type(&c, "corp.example.com").await,
        "Federated"
    );
    let org = c.call("GET", "/organization", None).await;
    let verified = &org.json()["value"][0]["verifiedDomains"];
    assert!(
        verified
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == json!("corp.example.com") && d["type"] == json!("Federated")),
        "{verified}"
    );

    // One per domain: a second create conflicts.
    let r = c.call("POST", LIST, Some(config())).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json()["error"]["details"][0]["code"],
        json!("ObjectConflict")
    );

    let r = c.call("GET", LIST, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["value"][0]["id"], json!(id));
    let item = format!("{LIST}/{id}");
    let r = c.call("GET", &item, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["issuerUri"], config()["issuerUri"]);

    let r = c
        .call(
            "PATCH",
            &item,
            Some(json!({"displayName": "Contoso name change", "federatedIdpMfaBehavior": "acceptIfMfaDoneByFederatedIdp"})),
        )
        .await;
    assert_eq!(r.status, 200, "update answers the object: {}", r.text);
    assert_eq!(r.json()["displayName"], json!("Contoso name change"));
    assert_eq!(r.json()["signOutUri"], config()["signOutUri"]);
    assert_eq!(
        c.call("GET", &item, None).await.json()["federatedIdpMfaBehavior"],
        json!("acceptIfMfaDoneByFederatedIdp")
    );

    let r = c.call("GET", &format!("{LIST}/not-this-one"), None).await;
    assert_eq!(r.status, 404);
    let r = c.call("DELETE", &item, None).await;
    assert_eq!(r.status, 204);
    assert_eq!(c.call("GET", LIST, None).await.status, 404);
    assert_eq!(authentication_type(&c, "corp.example.com").await, "Managed");
}

#[tokio::test]
async fn only_verified_custom_domains_can_be_federated() {
    let c = start().await;
    let r = c
        .call(
            "POST",
            "/domains/corpexample.onmicrosoft.com/federationConfiguration",
            Some(config()),
        )
        .await;
    assert_eq!(r.status, 400, "the initial domain: {}", r.text);
    assert!(r.error_message().contains("initial"), "{}", r.text);
    c.emu
        .seed(
            &serde_json::from_value::<Seed>(
                json!({"domains": [{"id": "new.example.com", "isVerified": false}]}),
            )
            .unwrap(),
        )
        .unwrap();
    let r = c
        .call(
            "POST",
            "/domains/new.example.com/federationConfiguration",
            Some(config()),
        )
        .await;
    assert_eq!(r.status, 400, "unverified: {}", r.text);
    let r = c
        .call(
            "POST",
            "/domains/nosuch.example.com/federationConfiguration",
            Some(config()),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(authentication_type(&c, "new.example.com").await, "Managed");
}

#[tokio::test]
async fn bodies_are_checked_like_graph() {
    let c = start().await;
    let mut bad = config();
    bad["passiveSignInUrl"] = json!("https://typo.example.com/");
    let r = c.invalid("POST", LIST, Some(bad)).await;
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("passiveSignInUrl"), "{}", r.text);
    let mut bad = config();
    bad["preferredAuthenticationProtocol"] = json!("oidc");
    let r = c.invalid("POST", LIST, Some(bad)).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["details"][0]["target"],
        json!("preferredAuthenticationProtocol")
    );
    let mut bad = config();
    bad["signingCertificate"] = json!("bm90IGEgY2VydGlmaWNhdGU=");
    let r = c.call("POST", LIST, Some(bad)).await;
    assert_eq!(r.status, 400, "not an X.509 certificate: {}", r.text);
    assert_eq!(c.call("GET", LIST, None).await.status, 404);
    let r = c.invalid("PUT", LIST, Some(config())).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn users_of_a_federated_domain_need_an_immutable_id() {
    let c = start().await;
    assert_eq!(c.call("POST", LIST, Some(config())).await.status, 201);
    let r = c.call("POST", "/users", Some(user_body("fed1"))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let mut b = user_body("fed1");
    b["onPremisesImmutableId"] = json!("KtN+mrQKRk2qSC19JzM09g==");
    assert_eq!(c.call("POST", "/users", Some(b)).await.status, 201);
    // Deleting the configuration makes the domain managed again.
    let id = c.call("GET", LIST, None).await.json()["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.call("DELETE", &format!("{LIST}/{id}"), None).await.status,
        204
    );
    assert_eq!(
        c.call("POST", "/users", Some(user_body("cloud1")))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn the_configuration_is_in_the_state_dump_and_batches() {
    let c = start().await;
    let r = c
        .call(
            "POST",
            "/$batch",
            Some(json!({"requests": [
                {"id": "1", "method": "POST", "url": LIST, "headers": {"Content-Type": "application/json"}, "body": config()},
                {"id": "2", "method": "GET", "url": LIST, "dependsOn": ["1"]}
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let statuses: Vec<Value> = r.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].clone())
        .collect();
    assert!(
        statuses.contains(&json!(201)) && statuses.contains(&json!(200)),
        "{statuses:?}"
    );
    let state = c.emu.state();
    let d = state["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == json!("corp.example.com"))
        .unwrap();
    assert_eq!(d["authenticationType"], json!("Federated"));
    assert_eq!(
        d["federationConfiguration"]["passiveSignInUri"],
        config()["passiveSignInUri"]
    );
}
