//! Ownership must not depend on which app registration runs: a second, read-only app that
//! plans in CI sees the same owned objects as the app that converged the tenant once the
//! policy pins the anchor's app, refuses to plan without the pin (instead of proposing to
//! create everything again), and `init` run as that app never registers a second anchor.
//! Also: `init` registers exactly one extension when connections drop after the server
//! committed it.

mod graph_support;
mod support;

use ad2entra::entra::graph::auth::{AuthConfig, Credential, Secret};
use ad2entra::entra::graph::{GraphClient, ReadOptions, read_snapshot};
use ad2entra::init::{InitOptions, InitReport, run_init};
use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::Readable;
use ad2entra::plan::{PlanError, plan};
use ad2entra::policy::LoadedPolicy;
use graph_emulator::config::FaultConfig;
use graph_emulator::{ApplicationConfig, ClientConfig, Emulator, EmulatorConfig};
use serde_json::json;
use std::time::Duration;
use support::fixtures::*;

/// The read-only app registration that plans in CI.
const CI_APP: &str = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CI_SECRET: &str = "ci-secret";
const CI_OBJECT_ID: &str = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

fn tenant_config() -> EmulatorConfig {
    let mut cfg = EmulatorConfig::default();
    cfg.additional_clients.push(ClientConfig {
        client_id: CI_APP.into(),
        client_secret: CI_SECRET.into(),
        // Reads everything; may register extensions on its own app (as an `init` run as
        // it would).
        permissions: vec![
            "Directory.Read.All".into(),
            "Application.ReadWrite.OwnedBy".into(),
        ],
    });
    cfg.applications.push(ApplicationConfig {
        id: CI_OBJECT_ID.into(),
        app_id: CI_APP.into(),
        display_name: "ad2entra-ci".into(),
        extension_properties: vec![],
    });
    cfg
}

/// A client for the CI app, recording its requests.
fn ci_client_logged(emu: &Emulator, cfg: &EmulatorConfig) -> (GraphClient, graph_support::Log) {
    let mut auth = AuthConfig::for_emulator(emu, cfg);
    auth.client_id = CI_APP.into();
    auth.credential = Credential::ClientSecret(Secret::new(CI_SECRET));
    graph_support::client_with(emu, auth, 1.0)
}

fn ci_client(emu: &Emulator, cfg: &EmulatorConfig) -> GraphClient {
    ci_client_logged(emu, cfg).0
}

fn company() -> Ad {
    let mut ad = Ad::new();
    ad.user(1, "alice", &[])
        .user(2, "bob", &[])
        .group(100, "Sales", &["alice", "bob"], &[]);
    ad
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

async fn read(client: &GraphClient, pol: &LoadedPolicy, app: &str) -> TargetSnapshot {
    read_snapshot(client, &ReadOptions::for_policy(pol, Some(app.to_string())))
        .await
        .expect("Graph read")
}

async fn init_as(client: &GraphClient, app_id: &str, pinned: bool) -> InitReport {
    run_init(
        client,
        &InitOptions {
            pinned,
            client_id: client.client_id().to_string(),
            lookup_delay: Duration::from_millis(50),
            ..InitOptions::new(app_id)
        },
    )
    .await
    .expect("init")
}

/// The names registered on an app (by appId), as the emulator holds them.
fn registered(emu: &Emulator, app_id: &str) -> Vec<String> {
    let state = emu.state();
    let apps = state["applications"].as_array().expect("applications");
    let app = apps
        .iter()
        .find(|a| a["appId"] == json!(app_id))
        .expect("app");
    app["extensionProperties"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The tenant converged by the main app (init, plan, apply, plan = ∅).
async fn converged() -> (Emulator, EmulatorConfig, GraphClient) {
    converged_with(tenant_config()).await
}

async fn converged_with(cfg: EmulatorConfig) -> (Emulator, EmulatorConfig, GraphClient) {
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (main, _) = graph_support::client(&emu, &cfg);
    assert!(init_as(&main, &cfg.client_id, false).await.ok);
    let pol = policy("");
    let src = company().snapshot();
    let p = plan(&pol, &src, &read(&main, &pol, &cfg.client_id).await, now()).unwrap();
    assert_eq!(p.summary.create, 3);
    let opts = ad2entra::apply::ApplyOptions {
        extension_app_id: Some(cfg.client_id.clone()),
        lookup_delay: Duration::from_millis(200),
        ..Default::default()
    };
    let report = ad2entra::apply::apply_plan(&p, &main, &opts).await.unwrap();
    assert!(report.is_success(), "{:?}", report.results);
    let again = plan(&pol, &src, &read(&main, &pol, &cfg.client_id).await, now()).unwrap();
    assert!(again.is_empty(), "{:?}", again.actions);
    (emu, cfg, main)
}

fn assert_refuses_naming_both_apps(err: PlanError, main_app: &str) {
    let PlanError::OtherAnchorExtensions(msg) = &err else {
        panic!("expected a refusal, got {err:?}")
    };
    for part in [
        format!("extension_{}_ad2entraAnchor", main_app.replace('-', "")),
        format!("extension_{}_ad2entraAnchor", CI_APP.replace('-', "")),
        "2 users and 1 groups".to_string(),
        format!("target:\n  extensionAppId: \"{main_app}\""),
    ] {
        assert!(msg.contains(&part), "missing {part:?} in: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_app_registration_never_plans_to_create_owned_objects_again() {
    let (emu, cfg, _main) = converged().await;
    let (ci, log) = ci_client_logged(&emu, &cfg);
    let src = company().snapshot();
    let unpinned = policy("");

    // Before init as the CI app: its own anchor does not exist, the main app's stamps
    // every object: refuse, naming both apps and the line to commit.
    let t = read(&ci, &unpinned, CI_APP).await;
    assert_eq!(t.anchor_registered, Readable::Read(false));
    let err = plan(&unpinned, &src, &t, now()).unwrap_err();
    assert_refuses_naming_both_apps(err, &cfg.client_id);

    // init as the CI app without a pin refuses to register a second anchor.
    let report = init_as(&ci, CI_APP, false).await;
    assert!(!report.ok, "{report:?}");
    assert!(
        report.extensions.iter().all(|e| e.status == "refused"),
        "{report:?}"
    );
    let why = report.extensions[0].message.as_deref().unwrap_or_default();
    assert!(
        why.contains(&format!("target:\n  extensionAppId: \"{}\"", cfg.client_id)),
        "{why}"
    );
    assert_eq!(report.other_anchor_extensions[0].users, 2);
    assert!(registered(&emu, CI_APP).is_empty(), "no second anchor");

    // After an init as the CI app that did register (an older version, or by hand): the
    // plan still refuses instead of proposing creates.
    for name in ad2entra::init::EXTENSION_SHORT_NAMES {
        let r = ci
            .execute(
                &ad2entra::entra::graph::http::GraphRequest::write(
                    reqwest::Method::POST,
                    format!("/applications(appId='{CI_APP}')/extensionProperties"),
                    Some(json!({"name": name, "dataType": "String", "targetObjects": ["User", "Group"]})),
                ),
                ad2entra::entra::graph::http::RetryMode::ThrottleOnly,
            )
            .await;
        assert!(r.is_ok(), "{r:?}");
    }
    let t = read(&ci, &unpinned, CI_APP).await;
    assert_eq!(t.anchor_registered, Readable::Read(true));
    let err = plan(&unpinned, &src, &t, now()).unwrap_err();
    assert_refuses_naming_both_apps(err, &cfg.client_id);

    // With the pin, the CI app sees the converged tenant: nothing to do. The CI app's
    // stray anchor stamps nothing: a warning.
    let pinned = policy(&format!(
        "target: {{extensionAppId: '{}'}}\n",
        cfg.client_id
    ));
    let t = read(&ci, &pinned, &cfg.client_id).await;
    let p = plan(&pinned, &src, &t, now()).unwrap();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.code == "other-anchor-extension" && d.message.contains(CI_APP)),
        "{:?}",
        p.diagnostics
    );

    // init as the CI app with the pin checks the pinned app's extensions and registers
    // nothing on either app.
    let before = registered(&emu, &cfg.client_id);
    let report = init_as(&ci, &cfg.client_id, true).await;
    assert!(
        report.extensions.iter().all(|e| e.status == "exists"),
        "{report:?}"
    );
    assert_eq!(registered(&emu, &cfg.client_id), before);
    assert_eq!(registered(&emu, CI_APP).len(), 2);
    // Every request (getAvailableExtensionProperties, the $count of stamped objects…)
    // is one Microsoft documents.
    graph_support::assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_run_as_another_app_does_not_register_the_pinned_apps_extensions() {
    let cfg = tenant_config();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let ci = ci_client(&emu, &cfg);
    let report = init_as(&ci, &cfg.client_id, true).await;
    assert!(!report.ok);
    assert!(
        report.extensions.iter().all(|e| e.status == "missing"
            && e.message
                .as_deref()
                .unwrap_or_default()
                .contains("run `ad2entra init` as that app")),
        "{report:?}"
    );
    assert!(registered(&emu, &cfg.client_id).is_empty());
    assert!(registered(&emu, CI_APP).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_anchors_are_found_when_the_tenant_wide_list_comes_back_empty() {
    // The documented known issue: getAvailableExtensionProperties answers an empty list
    // (here: more than one app registration).
    let mut cfg = tenant_config();
    cfg.available_extensions_limit = Some(1);
    let (emu, cfg, _main) = converged_with(cfg).await;
    let ci = ci_client(&emu, &cfg);
    let src = company().snapshot();
    let t = read(&ci, &policy(""), CI_APP).await;
    let err = plan(&policy(""), &src, &t, now()).unwrap_err();
    assert_refuses_naming_both_apps(err, &cfg.client_id);
    let report = init_as(&ci, CI_APP, false).await;
    assert!(
        report.extensions.iter().all(|e| e.status == "refused"),
        "{report:?}"
    );
    assert!(registered(&emu, CI_APP).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_registers_each_extension_once_when_answers_are_lost_after_commit() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, log) = graph_support::client(&emu, &cfg);
    emu.set_faults(FaultConfig {
        drop_after_commit_rate: 1.0,
        rng_seed: Some(7),
        ..FaultConfig::default()
    })
    .unwrap();
    let report = init_as(&client, &cfg.client_id, false).await;
    assert!(report.ok, "{report:?}");
    for e in &report.extensions {
        assert_eq!(e.status, "created", "{report:?}");
        assert!(
            e.message
                .as_deref()
                .unwrap_or_default()
                .contains("not created twice"),
            "{report:?}"
        );
    }
    assert_eq!(emu.stats().faults.dropped_after_commit, 2);
    let mut names = registered(&emu, &cfg.client_id);
    names.sort();
    let hex = cfg.client_id.replace('-', "");
    assert_eq!(
        names,
        vec![
            format!("extension_{hex}_ad2entraAnchor"),
            format!("extension_{hex}_ad2entraOrphanedAt"),
        ]
    );
    graph_support::assert_conformant(&log);

    // A second init finds them.
    emu.set_faults(FaultConfig::default()).unwrap();
    let again = init_as(&client, &cfg.client_id, false).await;
    assert!(again.extensions.iter().all(|e| e.status == "exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_converges_under_dropped_connections_and_server_errors() {
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, _) = graph_support::client(&emu, &cfg);
    emu.set_faults(FaultConfig {
        error_rate: 0.2,
        drop_rate: 0.2,
        drop_after_commit_rate: 0.5,
        rng_seed: Some(11),
        ..FaultConfig::default()
    })
    .unwrap();
    let report = init_as(&client, &cfg.client_id, false).await;
    assert!(report.ok, "{report:?}");
    let names = registered(&emu, &cfg.client_id);
    assert_eq!(names.len(), 2, "{names:?}");
    let s = emu.stats();
    assert!(
        s.faults.errors + s.faults.dropped + s.faults.dropped_after_commit > 0,
        "the faults fired: {:?}",
        s.faults
    );
}

// ---------------------------------------------------------------- the binary

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `ad2entra` as `client_id` against `emu`, with only the given environment.
async fn run_as(
    emu: &Emulator,
    cfg: &EmulatorConfig,
    client_id: &str,
    secret: &str,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    cmd.args(args).env_clear().env("NO_COLOR", "1");
    for (k, v) in [
        ("AZURE_TENANT_ID", cfg.tenant_id.as_str()),
        ("AZURE_CLIENT_ID", client_id),
        ("AZURE_CLIENT_SECRET", secret),
        ("AZURE_AUTHORITY_HOST", &emu.authority_url()),
        ("AD2ENTRA_GRAPH_URL", &emu.base_url()),
    ] {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("ad2entra finished")
        .expect("run ad2entra");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_the_anchor_app_from_the_policy_and_init_prints_the_line() {
    let (emu, cfg, _main) = converged().await;
    let dir = tempfile::tempdir().unwrap();
    let ldif = dir.path().join("corp.ldif");
    std::fs::write(&ldif, company().ldif()).unwrap();
    let unpinned = dir.path().join("unpinned.yaml");
    std::fs::write(&unpinned, "apiVersion: ad2entra/v1\n").unwrap();
    let pinned = dir.path().join("pinned.yaml");
    std::fs::write(
        &pinned,
        format!(
            "apiVersion: ad2entra/v1\ntarget:\n  extensionAppId: \"{}\"\n",
            cfg.client_id
        ),
    )
    .unwrap();
    let (ldif_s, pinned_s, unpinned_s) = (
        ldif.display().to_string(),
        pinned.display().to_string(),
        unpinned.display().to_string(),
    );
    let plan_args = |policy: &str| {
        [
            "plan",
            "--policy",
            policy,
            "--source-ldif",
            &ldif_s,
            "--detailed-exitcode",
        ]
        .map(str::to_string)
    };
    let as_ci = |args: Vec<String>, env: &'static [(&'static str, &'static str)]| {
        let (emu, cfg) = (&emu, &cfg);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_as(emu, cfg, CI_APP, CI_SECRET, &args, env).await
        }
    };

    // The CI app without the pin: refused, with the line to commit.
    let r = as_ci(plan_args(&unpinned_s).to_vec(), &[]).await;
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("another ad2entra anchor extension")
            && r.stderr
                .contains(&format!("extensionAppId: \"{}\"", cfg.client_id)),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("+ create"), "{}", r.stdout);

    // With the pin: the converged tenant, nothing to do (exit 0 with --detailed-exitcode).
    let r = as_ci(plan_args(&pinned_s).to_vec(), &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);

    // A different AD2ENTRA_EXTENSION_APP_ID than the pin is an error.
    let r = as_ci(
        plan_args(&pinned_s).to_vec(),
        &[("AD2ENTRA_EXTENSION_APP_ID", CI_APP)],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("AD2ENTRA_EXTENSION_APP_ID") && r.stderr.contains(CI_APP),
        "{}",
        r.stderr
    );

    // init as the CI app with the pin: checks, registers nothing, succeeds.
    let r = as_ci(
        ["init", "--policy", &pinned_s].map(str::to_string).to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["extensionAppId"], json!(cfg.client_id));
    assert!(registered(&emu, CI_APP).is_empty());

    // init as the CI app without the pin: refused (exit 1), the line to add on stderr.
    let r = as_ci(
        ["init", "--policy", &unpinned_s]
            .map(str::to_string)
            .to_vec(),
        &[],
    )
    .await;
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("init refused")
            && r.stderr
                .contains(&format!("extensionAppId: \"{}\"", cfg.client_id)),
        "{}",
        r.stderr
    );
    assert!(registered(&emu, CI_APP).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_on_a_fresh_tenant_prints_the_policy_line_to_commit() {
    let cfg = tenant_config();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let secret = cfg.client_secret.clone().unwrap();
    let r = run_as(&emu, &cfg, &cfg.client_id, &secret, &["init"], &[]).await;
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let line = format!("target:\n  extensionAppId: \"{}\"", cfg.client_id);
    assert!(r.stderr.contains(&line), "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["policyLine"], json!(line));
    assert_eq!(registered(&emu, &cfg.client_id).len(), 2);
}
