//! The Graph edge of the CLI: the client from the environment, live reads, the apply
//! report, and `init`.

use super::common::{load_policy, runtime};
use ad2entra::entra::graph::{GraphClient, GraphConfig, ReadOptions, read_snapshot};
use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::{ExtensionAppSource, resolve_extension_app};
use ad2entra::policy::LoadedPolicy;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

/// The app whose directory extensions carry the anchor: the policy's
/// `target.extensionAppId`, else AD2ENTRA_EXTENSION_APP_ID, else the client id; a
/// policy pin and a different AD2ENTRA_EXTENSION_APP_ID are an error.
pub fn extension_app(
    policy: Option<&LoadedPolicy>,
) -> anyhow::Result<(String, ExtensionAppSource)> {
    let pin = policy.and_then(|p| p.policy.target.extension_app_id.as_deref());
    let env = std::env::var("AD2ENTRA_EXTENSION_APP_ID").ok();
    let client = std::env::var("AZURE_CLIENT_ID").ok();
    Ok(resolve_extension_app(
        pin,
        env.as_deref(),
        client.as_deref(),
    )?)
}

/// [`extension_app`]'s app id.
pub fn extension_app_id(policy: Option<&LoadedPolicy>) -> anyhow::Result<String> {
    Ok(extension_app(policy)?.0)
}

pub fn client_from_env() -> anyhow::Result<GraphClient> {
    let cfg = GraphConfig::from_env().context("Graph credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret, certificate or federated token)")?;
    GraphClient::new(cfg).context("cannot build the Graph client")
}

pub async fn read_target(
    client: &GraphClient,
    policy: &LoadedPolicy,
    app: Option<String>,
) -> anyhow::Result<TargetSnapshot> {
    let mut snap = read_snapshot(client, &ReadOptions::for_policy(policy, app.clone()))
        .await
        .context("reading Entra through Graph failed; no plan was made")?;
    snap.extension_app_id = app.or(snap.extension_app_id);
    Ok(snap)
}

pub fn print_report(report: &ad2entra::apply::ApplyReport) {
    let c = &report.counts;
    println!(
        "Apply: {} ok, {} failed, {} stale, {} skipped, {} pending in {} ms ({} requests, {} writes, {} throttled)",
        c.ok,
        c.failed,
        c.stale,
        c.skipped,
        c.pending,
        report.duration_ms,
        report.requests,
        report.writes,
        report.throttled
    );
    for r in report
        .results
        .iter()
        .filter(|r| !matches!(r.status, ad2entra::apply::ActionStatus::Ok))
    {
        println!("  {}", serde_json::to_string(r).unwrap_or_default());
    }
}

pub fn run_init(policy: Option<&Path>, app_object_id: Option<String>) -> anyhow::Result<ExitCode> {
    let loaded = policy.map(load_policy).transpose()?;
    let domains = loaded.as_ref().map(|p| p.upn_domains()).unwrap_or_default();
    let client = client_from_env()?;
    let (app_id, source) = extension_app(loaded.as_ref())?;
    let opts = ad2entra::init::InitOptions {
        pinned: source == ExtensionAppSource::Policy,
        client_id: client.client_id().to_string(),
        app_object_id,
        domains,
        needs_directory_roles: loaded.as_ref().is_some_and(|p| p.policy.adopt.is_some()),
        ..ad2entra::init::InitOptions::new(app_id)
    };
    let report = runtime()?.block_on(ad2entra::init::run_init(&client, &opts))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    for e in report.extensions.iter().filter(|e| e.status == "refused") {
        if let Some(m) = &e.message {
            eprintln!("init refused to register {}: {m}", e.name);
        }
    }
    if !opts.pinned && report.extensions.iter().all(|e| e.status != "refused") {
        eprintln!(
            "\nCommit this to the policy, so every app registration that plans or applies reads the same anchor:\n\n{}\n",
            report.policy_line
        );
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
