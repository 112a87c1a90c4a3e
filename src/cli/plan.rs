//! `ad2entra plan` and `ad2entra apply`.

use super::Inputs;
use super::common::{now, runtime, stdout_color};
use super::inputs::{Loaded, load_inputs};
use ad2entra::plan::Plan;
use ad2entra::render::{Format, render};
use anyhow::{Context, bail};
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Reads both sides and computes the plan; with a state file, the writes Graph refused
/// before (and unchanged since) are held back.
pub fn compute(inputs: &Inputs) -> anyhow::Result<(ad2entra::policy::LoadedPolicy, Plan)> {
    let Loaded {
        policy,
        source,
        target,
    } = load_inputs(inputs)?;
    let refused = match &inputs.state {
        Some(path) => ad2entra::state::State::load(path)?.refused_writes,
        None => Default::default(),
    };
    let plan = ad2entra::plan::plan_with(&policy, &source, &target, now(), &refused)?;
    Ok((policy, plan))
}

/// Records in the state file the writes Graph refused, and forgets those that went
/// through, so that the next `plan --state` shows a refusal instead of proposing the
/// same write again.
fn remember_refusals(
    path: &Path,
    plan: &Plan,
    report: &ad2entra::apply::ApplyReport,
) -> anyhow::Result<()> {
    use ad2entra::apply::ActionStatus;
    use ad2entra::plan::refused::{Outcome, OutcomeStatus};
    let mut state = ad2entra::state::State::load(path)?;
    let outcomes = report.results.iter().map(|r| Outcome {
        index: r.index,
        status: match r.status {
            ActionStatus::Ok => OutcomeStatus::Ok,
            ActionStatus::Failed => OutcomeStatus::Failed,
            _ => OutcomeStatus::Other,
        },
        code: r.code.as_deref(),
        message: r.message.as_deref(),
    });
    state.refused_writes.record(plan, outcomes, now());
    state.save(path)?;
    Ok(())
}

pub fn run_plan(
    inputs: &Inputs,
    format: Format,
    out: Option<&Path>,
    detailed: bool,
) -> anyhow::Result<ExitCode> {
    let (_, plan) = compute(inputs)?;
    let shown = render(&plan, format, stdout_color());
    print!("{shown}");
    if let Some(path) = out {
        // At 100,000 objects the JSON is hundreds of MB: render it once.
        let json = if format == Format::Json {
            shown
        } else {
            ad2entra::render::json(&plan)
        };
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("plan saved to {}", path.display());
    }
    Ok(if detailed && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`. Without it, plan first (needs --policy).
    pub plan: Option<PathBuf>,
    #[arg(long, env = "AD2ENTRA_POLICY")]
    pub policy: Option<PathBuf>,
    #[arg(long)]
    pub source_ldif: Option<PathBuf>,
    #[arg(long)]
    pub target_snapshot: Option<PathBuf>,
    /// State file (see `plan --state`).
    #[arg(long, env = "AD2ENTRA_STATE")]
    pub state: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply a saved plan even though the policy changed since it was made.
    #[arg(long)]
    pub allow_policy_change: bool,
    /// Write the per-action results as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let (plan, expected_hash) = match (&args.plan, &args.policy) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let plan: Plan = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a plan", file.display()))?;
            // The policy the plan came from, as it is now: apply refuses if it changed.
            let policy_path = args
                .policy
                .clone()
                .unwrap_or_else(|| PathBuf::from(&plan.policy.path));
            let hash = ad2entra::policy::load_path(&policy_path)
                .ok()
                .map(|p| p.content_hash);
            if hash.is_none() && !args.allow_policy_change {
                bail!(
                    "cannot load the policy {} to check the plan against it (pass --policy, or --allow-policy-change)",
                    policy_path.display()
                );
            }
            (plan, hash)
        }
        (None, Some(policy)) => {
            let inputs = Inputs {
                policy: policy.clone(),
                source_ldif: args.source_ldif.clone(),
                target_snapshot: None,
                state: args.state.clone(),
            };
            if args.target_snapshot.is_some() {
                bail!("apply writes to Entra: --target-snapshot is for offline planning only");
            }
            let (loaded, plan) = compute(&inputs)?;
            print!("{}", render(&plan, Format::Human, stdout_color()));
            (plan, Some(loaded.content_hash))
        }
        (None, None) => bail!("give a saved plan (apply plan.json) or --policy PATH"),
    };
    if plan.is_empty() {
        println!("Nothing to apply.");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!("not a terminal: pass --auto-approve to apply without confirmation");
        }
        print!(
            "Apply {} actions? Only 'yes' is accepted: ",
            plan.actions.len()
        );
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            println!("Apply cancelled.");
            return Ok(ExitCode::from(1));
        }
    }
    let client = super::graph::client_from_env()?;
    let opts = ad2entra::apply::ApplyOptions {
        expected_policy_hash: expected_hash,
        allow_policy_change: args.allow_policy_change,
        progress: std::io::stderr().is_terminal(),
        extension_app_id: super::graph::extension_app_id(),
        ..Default::default()
    };
    let report = runtime()?.block_on(ad2entra::apply::apply_plan(&plan, &client, &opts))?;
    super::graph::print_report(&report);
    if let Some(path) = &args.state {
        remember_refusals(path, &plan, &report)?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
