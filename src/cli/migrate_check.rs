//! `ad2entra migrate-check`: reads AD and Entra as `plan` does, and the tenant's directory
//! synchronization, then prints [`ad2entra::migrate::MigrationReport`]. Writes nothing.

use super::Inputs;
use super::common::runtime;
use ad2entra::entra::graph::ReadOptions;
use ad2entra::migrate::{TenantSync, migrate_check, render_human};
use ad2entra::model::TargetSnapshot;
use ad2entra::policy::LoadedPolicy;
use anyhow::Context;
use clap::{Args, ValueEnum};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct MigrateCheckArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    /// Examples listed per finding.
    #[arg(long, default_value_t = ad2entra::migrate::DEFAULT_EXAMPLES)]
    pub examples: usize,
}

/// Entra as the hard match needs it (groups' `onPremisesSecurityIdentifier` whatever
/// `adopt:` says), and the tenant's synchronization state.
fn read_entra(
    policy: &LoadedPolicy,
    inputs: &Inputs,
) -> anyhow::Result<(TargetSnapshot, TenantSync)> {
    if inputs.target_snapshot.is_some() {
        let target = super::inputs::load_target(policy, inputs.target_snapshot.as_deref())?;
        let sync = TenantSync::Unknown {
            reason: "read from a snapshot file, which holds no organization".into(),
        };
        return Ok((target, sync));
    }
    let client = super::graph::client_from_env()?;
    let app = super::graph::extension_app_id(Some(policy))?;
    let mut opts = ReadOptions::for_policy(policy, Some(app.clone()));
    let sid = "onPremisesSecurityIdentifier".to_string();
    if !opts.group_select.contains(&sid) {
        opts.group_select.push(sid);
    }
    runtime()?.block_on(async {
        let (snap, sync) = tokio::try_join!(
            ad2entra::entra::graph::read_snapshot(&client, &opts),
            ad2entra::entra::graph::organization::read_tenant_sync(&client),
        )
        .context("reading Entra through Graph failed")?;
        let mut snap = snap;
        snap.extension_app_id = Some(app);
        Ok((snap, sync))
    })
}

pub fn run(args: &MigrateCheckArgs) -> anyhow::Result<ExitCode> {
    let inputs = &args.inputs;
    let mut policy = super::gitops::load(
        inputs.policy.as_deref(),
        &inputs.repo,
        inputs.state.as_deref(),
    )?;
    let source = super::inputs::load_source(
        &mut policy,
        inputs.source_ldif.as_deref(),
        inputs.state.as_deref(),
    )?;
    let (target, sync) = read_entra(&policy, inputs)?;
    let report = migrate_check(&policy, &source, &target, sync, args.examples);
    match args.format {
        ReportFormat::Human => print!("{}", render_human(&report)),
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}
