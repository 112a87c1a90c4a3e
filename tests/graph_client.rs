//! The Graph client against the in-process emulator: auth (secret, certificate
//! assertion), snapshot paging, init. Every request is checked against the OpenAPI
//! description.

mod graph_support;

use ad2entra::entra::graph::auth::{
    AssertionAlg, AuthConfig, CertificateCredential, Credential, Secret,
};
use ad2entra::entra::graph::{GraphError, ReadOptions, read_snapshot};
use ad2entra::init::{InitOptions, run_init};
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig};
use graph_support::*;
use serde_json::{Map, Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_snapshot_pages_over_999_users_and_reads_members() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let mut users: Vec<Map<String, Value>> = (0..1203).map(seed_user).collect();
    users[5].insert("onPremisesSyncEnabled".into(), json!(true));
    let seed = Seed {
        users,
        groups: vec![
            json!({"displayName":"Sales","mailNickname":"sales","securityEnabled":true,"mailEnabled":false,
                   "members":["u1@corp.example.com","u2@corp.example.com"]})
            .as_object()
            .unwrap()
            .clone(),
            json!({"displayName":"Empty","mailNickname":"empty","securityEnabled":true,"mailEnabled":false})
                .as_object()
                .unwrap()
                .clone(),
        ],
        ..Default::default()
    };
    emu.seed(&seed).unwrap();
    let (client, log) = client(&emu, &cfg);
    // Selecting the anchor extension needs it registered (as on real Graph): init first.
    run_init(
        &client,
        &InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            domains: vec![],
            ..InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .unwrap();
    let snap = read_snapshot(
        &client,
        &ReadOptions {
            user_select: vec![
                "displayName".into(),
                "userPrincipalName".into(),
                "accountEnabled".into(),
            ],
            group_select: vec!["displayName".into(), "mailNickname".into()],
            extension_app_id: app_id(),
            skip_directory_roles: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(snap.users.len(), 1203);
    assert_eq!(snap.users.iter().filter(|u| u.is_dirsynced()).count(), 1);
    let sales = snap
        .groups
        .iter()
        .find(|g| g.str("displayName") == Some("Sales"))
        .unwrap();
    assert_eq!(sales.members.len(), 2);
    assert!(
        snap.domains
            .as_ref()
            .unwrap()
            .iter()
            .any(|d| d.id == "corp.example.com" && d.is_verified)
    );
    assert!(
        snap.subscribed_skus
            .read()
            .unwrap()
            .iter()
            .any(|s| s.sku_part_number == "ENTERPRISEPACK")
    );
    let user_pages = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/users"))
        .count();
    assert!(
        user_pages >= 2,
        "expected paging, saw {user_pages} user requests"
    );
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertion_authenticates() {
    let pem = include_str!("data/test-client-cert.pem");
    let cfg = EmulatorConfig {
        client_secret: None,
        client_certificate_pem: Some(pem.to_string()),
        ..Default::default()
    };
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    for alg in [AssertionAlg::Ps256, AssertionAlg::Rs256] {
        let auth = AuthConfig {
            tenant_id: cfg.tenant_id.clone(),
            client_id: cfg.client_id.clone(),
            credential: Credential::Certificate(Box::new(
                CertificateCredential::from_pem(pem.as_bytes(), alg).unwrap(),
            )),
            authority_host: emu.authority_url().trim_end_matches('/').to_string(),
            scope: "https://graph.microsoft.com/.default".into(),
        };
        let (client, log) = client_with(&emu, auth, 1.0);
        let got = client.get_all_pages("/domains").await.unwrap();
        assert!(!got.is_empty());
        assert_conformant(&log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_a_terminal_auth_error_without_the_secret() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let mut auth = secret_auth(&emu, &cfg);
    auth.credential = Credential::ClientSecret(Secret::new("not-the-secret-xyz"));
    let (client, _log) = client_with(&emu, auth, 1.0);
    let err = client.get_all_pages("/domains").await.unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::Auth {
                status: 401 | 400,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(!format!("{err} {err:?}").contains("not-the-secret-xyz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_registers_extensions_once_and_checks_domains() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, log) = client(&emu, &cfg);
    let opts = InitOptions {
        app_object_id: Some(cfg.applications[0].id.clone()),
        domains: vec!["corp.example.com".into(), "nope.example.org".into()],
        ..InitOptions::new(cfg.client_id.clone())
    };
    let first = run_init(&client, &opts).await.unwrap();
    assert!(
        first.extensions.iter().all(|e| e.status == "created"),
        "{first:?}"
    );
    assert_eq!(first.extensions[0].name, ext().anchor);
    assert_eq!(first.domains[0].status, "verified");
    assert_eq!(first.domains[1].status, "missing");
    assert!(first.permissions.iter().all(|p| p.ok));
    assert!(!first.ok, "a missing domain makes init not ok");
    let second = run_init(&client, &opts).await.unwrap();
    assert!(
        second.extensions.iter().all(|e| e.status == "exists"),
        "{second:?}"
    );
    assert_conformant(&log);
}
