//! The Graph edge of the CLI: the client from the environment, live reads, the apply
//! report, and `init`.

use super::common::{load_policy, runtime};
use ad2entra::entra::graph::{GraphClient, GraphConfig, ReadOptions, read_snapshot};
use ad2entra::model::TargetSnapshot;
use ad2entra::policy::LoadedPolicy;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

/// The app whose directory extensions carry the anchor: AD2ENTRA_EXTENSION_APP_ID, else
/// the client id (the app ad2entra runs as registers them in `init`).
pub fn extension_app_id() -> Option<String> {
    std::env::var("AD2ENTRA_EXTENSION_APP_ID")
        .ok()
        .or_else(|| std::env::var("AZURE_CLIENT_ID").ok())
        .filter(|s| !s.is_empty())
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
    let mut domains = Vec::new();
    if let Some(p) = policy {
        let loaded = load_policy(p)?;
        domains.extend(loaded.policy.upn.rewrite_suffixes.values().cloned());
        domains.extend(loaded.policy.upn.fallback_domain.clone());
    }
    let client = client_from_env()?;
    let opts = ad2entra::init::InitOptions {
        app_id: extension_app_id().context("AZURE_CLIENT_ID is not set")?,
        app_object_id,
        domains,
    };
    let report = runtime()?.block_on(ad2entra::init::run_init(&client, &opts))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
