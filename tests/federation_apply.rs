//! End to end against the emulator: a committed `federation:` section plans the create,
//! apply makes the domain federated (its users are created with their immutable id), the
//! next plan is empty; a changed sign-in URI is an update, then empty again. Apply's
//! guarantees for domains: a create whose configuration exists is looked up, not
//! repeated; an update whose configuration changed since the plan is stale.

mod graph_support;
mod support;

use ad2entra::apply::{ActionStatus, ApplyOptions, ApplyReport, apply_plan};
use ad2entra::entra::graph::http::{GraphRequest, RetryMode};
use ad2entra::entra::graph::{GraphClient, ReadOptions, read_snapshot};
use ad2entra::plan::{ObjectType, Operation, Plan, plan};
use ad2entra::policy::LoadedPolicy;
use graph_emulator::{Emulator, EmulatorConfig};
use graph_support::{app_id, assert_conformant, client, init_extension};
use reqwest::Method;
use serde_json::{Value, json};
use support::fixtures::{Ad, policy};

const CERT: &str = include_str!("data/federation/signing-2027.b64");
const LIST: &str = "/domains/corp.example.com/federationConfiguration";

fn section(passive: &str) -> String {
    format!(
        "federation:
  corp.example.com:
    issuerUri: http://sts.corp.example.com/adfs/services/trust
    passiveSignInUri: {passive}
    activeSignInUri: https://sts.corp.example.com/adfs/services/trust/2005/usernamemixed
    metadataExchangeUri: https://sts.corp.example.com/adfs/services/trust/mex
    signingCertificate: {}
    preferredAuthenticationProtocol: wsFed
    federatedIdpMfaBehavior: rejectMfaByFederatedIdp
    isSignedAuthenticationRequestRequired: false
",
        CERT.trim()
    )
}

async fn started() -> (Emulator, GraphClient, graph_support::Log) {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, log) = client(&emu, &cfg);
    init_extension(&client, &cfg).await;
    (emu, client, log)
}

fn people() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[]).user(2, "bob", &[]);
    ad
}

async fn plan_now(client: &GraphClient, pol: &LoadedPolicy) -> Plan {
    let opts = ReadOptions::for_policy(pol, app_id());
    let mut snap = read_snapshot(client, &opts).await.unwrap();
    snap.extension_app_id = app_id();
    plan(pol, &people().snapshot(), &snap, chrono::Utc::now()).unwrap()
}

fn opts(pol: &LoadedPolicy) -> ApplyOptions {
    ApplyOptions {
        expected_policy_hash: Some(pol.content_hash.clone()),
        extension_app_id: app_id(),
        lookup_delay: std::time::Duration::from_millis(100),
        ..Default::default()
    }
}

fn domain_result(report: &ApplyReport) -> &ad2entra::apply::ActionResult {
    report
        .results
        .iter()
        .find(|r| r.object_type == ObjectType::Domain)
        .expect("a domain action")
}

async fn authentication_type(client: &GraphClient) -> String {
    let r = client
        .execute(
            &GraphRequest::get("/domains/corp.example.com"),
            RetryMode::Idempotent,
        )
        .await
        .unwrap();
    r.body["authenticationType"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_federation_section_converges_and_updates() {
    let (_emu, client, log) = started().await;
    let pol = policy(&section("https://sts.corp.example.com/adfs/ls/"));

    let first = plan_now(&client, &pol).await;
    assert_eq!(first.summary.sign_in_changes.len(), 1);
    let create = &first.actions[0];
    assert_eq!(
        (create.object.object_type, create.op),
        (ObjectType::Domain, Operation::Create)
    );
    assert_eq!(first.summary.create, 3, "the federation and two users");
    let report = apply_plan(&first, &client, &opts(&pol)).await.unwrap();
    assert!(report.is_success(), "{:#?}", report.results);
    assert!(domain_result(&report).id.is_some());
    assert_eq!(authentication_type(&client).await, "Federated");
    // The users were created in the federated domain: with their immutable id.
    let users = client
        .get_all_pages("/users?$select=userPrincipalName,onPremisesImmutableId")
        .await
        .unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().all(|u| u["onPremisesImmutableId"].is_string()));

    let second = plan_now(&client, &pol).await;
    assert!(second.is_empty(), "{:#?}", second.actions);

    let moved = policy(&section("https://login.corp.example.com/adfs/ls/"));
    let third = plan_now(&client, &moved).await;
    assert_eq!(third.actions.len(), 1, "{:#?}", third.actions);
    assert_eq!(third.actions[0].op, Operation::Update);
    assert!(third.summary.sign_in_changes.is_empty());
    let report = apply_plan(&third, &client, &opts(&moved)).await.unwrap();
    assert!(report.is_success(), "{:#?}", report.results);
    let now = client.get_all_pages(LIST).await.unwrap();
    assert_eq!(
        now[0]["passiveSignInUri"],
        json!("https://login.corp.example.com/adfs/ls/")
    );
    assert_eq!(
        now[0]["activeSignInUri"],
        json!("https://sts.corp.example.com/adfs/services/trust/2005/usernamemixed")
    );
    assert!(plan_now(&client, &moved).await.is_empty());
    assert_conformant(&log);
}

/// The federation part of a plan, alone.
fn federation_only(p: &Plan) -> Plan {
    let mut p = p.clone();
    p.actions
        .retain(|a| a.object.object_type == ObjectType::Domain);
    p
}

async fn create_directly(client: &GraphClient, passive: &str) {
    let pol = policy(&section(passive));
    let body = Value::Object(pol.federation[0].properties.clone());
    client
        .execute(
            &GraphRequest::write(Method::POST, LIST, Some(body)),
            RetryMode::ThrottleOnly,
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_configuration_exists_is_looked_up_not_repeated() {
    let (_emu, client, log) = started().await;
    let pol = policy(&section("https://sts.corp.example.com/adfs/ls/"));
    let p = federation_only(&plan_now(&client, &pol).await);
    // The create landed already (a retry after a lost answer): apply finds it.
    create_directly(&client, "https://sts.corp.example.com/adfs/ls/").await;
    let report = apply_plan(&p, &client, &opts(&pol)).await.unwrap();
    let r = domain_result(&report);
    assert_eq!(r.status, ActionStatus::Ok, "{r:?}");
    assert!(r.message.as_deref().unwrap().contains("already existed"));
    let posts = log
        .lock()
        .unwrap()
        .iter()
        .filter(|q| q.method == "POST" && q.path == LIST)
        .count();
    assert_eq!(
        posts, 2,
        "one direct create, one refused by Graph; never more"
    );
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_made_elsewhere_makes_the_create_stale() {
    let (_emu, client, _log) = started().await;
    let pol = policy(&section("https://sts.corp.example.com/adfs/ls/"));
    let p = federation_only(&plan_now(&client, &pol).await);
    create_directly(&client, "https://other.corp.example.com/adfs/ls/").await;
    let report = apply_plan(&p, &client, &opts(&pol)).await.unwrap();
    let r = domain_result(&report);
    assert_eq!(r.status, ActionStatus::Stale, "{r:?}");
    // Nothing was overwritten; the next plan updates it.
    let now = client.get_all_pages(LIST).await.unwrap();
    assert_eq!(
        now[0]["passiveSignInUri"],
        json!("https://other.corp.example.com/adfs/ls/")
    );
    let next = federation_only(&plan_now(&client, &pol).await);
    assert_eq!(next.actions[0].op, Operation::Update);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_of_a_configuration_changed_since_the_plan_is_stale() {
    let (_emu, client, _log) = started().await;
    create_directly(&client, "https://sts.corp.example.com/adfs/ls/").await;
    let moved = policy(&section("https://login.corp.example.com/adfs/ls/"));
    let p = federation_only(&plan_now(&client, &moved).await);
    assert_eq!(p.actions[0].op, Operation::Update);
    let id = client.get_all_pages(LIST).await.unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    client
        .execute(
            &GraphRequest::write(
                Method::PATCH,
                format!("{LIST}/{id}"),
                Some(json!({"issuerUri": "http://changed.example.com/adfs/services/trust"})),
            ),
            RetryMode::Idempotent,
        )
        .await
        .unwrap();
    let report = apply_plan(&p, &client, &opts(&moved)).await.unwrap();
    let r = domain_result(&report);
    assert_eq!(r.status, ActionStatus::Stale, "{r:?}");
    assert!(r.message.as_deref().unwrap().contains("issuerUri"), "{r:?}");
    let now = client.get_all_pages(LIST).await.unwrap();
    assert_eq!(
        now[0]["passiveSignInUri"],
        json!("https://sts.corp.example.com/adfs/ls/")
    );
}
