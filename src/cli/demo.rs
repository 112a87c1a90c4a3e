//! `ad2entra demo`: the example company (examples/demo) synced into a built-in Graph
//! emulator: init → plan → apply → plan, printing each step. Exit 0 only when the final
//! plan is empty — the demo is also a smoke test of the whole product.

use super::common::{load_policy, now};
use super::graph::{print_report, read_target};
use ad2entra::entra::graph::{AuthConfig, GraphClient, GraphConfig};
use ad2entra::render::{Format, render};
use anyhow::Context;
use clap::Args;
use graph_emulator::{Emulator, EmulatorConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// The demo directory (corp.ldif + policy.yaml).
    #[arg(long, default_value = "examples/demo")]
    pub dir: PathBuf,
}

/// How many plan lines to print before eliding (the full plan is in the saved JSON).
const SHOWN_LINES: usize = 60;

/// Prints a plan: the first actions in full, then every diagnostic and the summary.
fn show(plan: &ad2entra::plan::Plan) {
    let text = render(plan, Format::Human, false);
    let actions_end = text
        .find("\nBlocked by")
        .or_else(|| text.find("\nDiagnostics:"))
        .or_else(|| text.find("\nPlan:"))
        .unwrap_or(text.len());
    let lines: Vec<&str> = text[..actions_end].lines().collect();
    for l in lines.iter().take(SHOWN_LINES) {
        println!("   {l}");
    }
    if lines.len() > SHOWN_LINES {
        println!(
            "   … {} more lines (ad2entra plan --format json shows everything) …",
            lines.len() - SHOWN_LINES
        );
    }
    for l in text[actions_end..].lines() {
        println!("   {l}");
    }
}

/// Reads the emulator's tenant with the demo app's extension names.
async fn read(
    client: &GraphClient,
    policy: &ad2entra::policy::LoadedPolicy,
    app_id: &str,
) -> anyhow::Result<ad2entra::model::TargetSnapshot> {
    read_target(client, policy, Some(app_id.to_string())).await
}

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let policy_path = args.dir.join("policy.yaml");
    let ldif_path = args.dir.join("corp.ldif");
    println!(
        "== ad2entra demo: {} + {} → built-in Graph emulator\n",
        policy_path.display(),
        ldif_path.display()
    );
    let policy = load_policy(&policy_path)?;
    let source = ad2entra::ad::ldif::read_ldif_file(&ldif_path)
        .with_context(|| format!("cannot read {}", ldif_path.display()))?;
    println!("AD (LDIF): {} objects", source.objects.len());
    let rt = super::common::runtime()?;
    rt.block_on(async {
        let mut config = EmulatorConfig::default();
        // Enough E3 seats for the demo company's licence group.
        for sku in &mut config.skus {
            sku.enabled_units = sku.enabled_units.max(500);
        }
        let emu = Emulator::start(config.clone())
            .await
            .context("cannot start the Graph emulator")?;
        println!(
            "Graph emulator: {} (tenant {})\n",
            emu.base_url(),
            config.tenant_id
        );
        let auth = AuthConfig::for_emulator(&emu, &config);
        let client = GraphClient::new(GraphConfig::new(emu.base_url(), auth))?;
        // The demo app registers the anchor extension, so its id names the properties.
        let app_id = config.client_id.clone();

        println!("== 1. init: register the anchor extension, check domains and permissions");
        let domains = policy.upn_domains();
        let init = ad2entra::init::run_init(
            &client,
            &ad2entra::init::InitOptions {
                app_object_id: config.applications.first().map(|a| a.id.clone()),
                domains,
                ..ad2entra::init::InitOptions::new(app_id.clone())
            },
        )
        .await?;
        println!("   ready: {}\n", init.ok);

        let target = read(&client, &policy, &app_id).await?;
        let first = ad2entra::plan::plan(&policy, &source, &target, now())?;
        println!("== 2. plan against the empty tenant");
        show(&first);
        println!();

        println!("== 3. apply");
        let opts = ad2entra::apply::ApplyOptions {
            expected_policy_hash: Some(policy.content_hash.clone()),
            extension_app_id: Some(app_id.clone()),
            ..Default::default()
        };
        let report = ad2entra::apply::apply_plan(&first, &client, &opts).await?;
        print_report(&report);
        println!();

        println!("== 4. plan again: must be empty");
        let target = read(&client, &policy, &app_id).await?;
        let second = ad2entra::plan::plan(&policy, &source, &target, now())?;
        show(&second);
        emu.shutdown().await;
        if second.is_empty() && report.is_success() {
            println!(
                "\nConverged: {} users and {} groups in Entra, second plan empty.",
                second.summary.in_scope_users, second.summary.in_scope_groups
            );
            Ok(ExitCode::SUCCESS)
        } else {
            println!(
                "\nNOT converged: the second plan still has {} actions.",
                second.actions.len()
            );
            Ok(ExitCode::from(1))
        }
    })
}
