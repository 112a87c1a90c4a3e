//! `ad2entra plan` and `ad2entra apply`.

use super::Inputs;
use super::common::{now, runtime, stdout_color};
use super::inputs::{Loaded, load_inputs};
use ad2entra::plan::Plan;
use ad2entra::render::Format;
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
    let mut state = ad2entra::state::State::load(path)?;
    state.refused_writes.record(plan, report.outcomes(), now());
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
    // Written as rendered: at 100,000 objects the JSON is hundreds of MB, never held.
    let stdout = std::io::stdout();
    let mut shown = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut file = match out {
        Some(path) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    match (&mut file, format) {
        // The JSON goes to both at once: rendered once.
        (Some(f), Format::Json) => {
            ad2entra::render::write_json(&mut Tee(&mut shown, f), &plan)?;
        }
        (Some(f), _) => {
            ad2entra::render::write(&mut shown, &plan, format, stdout_color())?;
            ad2entra::render::write_json(f, &plan)?;
        }
        (None, _) => ad2entra::render::write(&mut shown, &plan, format, stdout_color())?,
    }
    shown.flush()?;
    if let (Some(mut f), Some(path)) = (file, out) {
        f.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("plan saved to {}", path.display());
    }
    Ok(if detailed && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes to two writers at once (the JSON plan to stdout and to `--out`).
struct Tee<'a, A: Write, B: Write>(&'a mut A, &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out`. Without it, plan first (needs --policy).
    pub plan: Option<PathBuf>,
    #[arg(long, env = "AD2ENTRA_POLICY", conflicts_with = "policy_repo")]
    pub policy: Option<PathBuf>,
    /// The policy from git: a saved plan is checked against the branch's head commit.
    #[command(flatten)]
    pub repo: super::gitops::RepoArgs,
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
    /// Stop starting requests after this long (e.g. `90s`, `15m`, `1h30m`): what is not
    /// done is reported pending and the exit code is 3; the next apply finishes it.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

/// Exit code of an apply that stopped at its deadline with actions pending.
pub const EXIT_PENDING: u8 = 3;

/// Parses `90s`, `15m`, `2h`, `1h30m`, `500ms` (humantime's syntax); a number alone is
/// seconds. Zero is refused: a timeout or interval of nothing is a mistake.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => {
            humantime::parse_duration(t).map_err(|e| format!("invalid duration {s:?}: {e}"))?
        }
    };
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be more than zero"));
    }
    Ok(d)
}

/// The policy a saved plan came from, as it is now, so apply can refuse a plan made from
/// another revision: with `--policy-repo`, the branch's head commit must be the plan's
/// commit; otherwise the files at `--policy` (or the plan's path) are read. `None` only
/// with `--allow-policy-change`.
fn current_policy_of(
    plan: &Plan,
    args: &ApplyArgs,
) -> anyhow::Result<Option<ad2entra::policy::LoadedPolicy>> {
    let allow = args.allow_policy_change;
    if args.repo.policy_repo.is_some() {
        let (source, head) = args.repo.head(args.state.as_deref())?;
        if let Some(commit) = &plan.policy.commit
            && *commit != head
            && !allow
        {
            bail!(
                "the plan was computed from commit {commit}, but {} is now at {head}; \
                 plan again, or pass --allow-policy-change",
                args.repo.branch
            );
        }
        return match source.load(&head) {
            Ok(p) => Ok(Some(p)),
            Err(_) if allow => Ok(None),
            Err(e) => bail!("the policy at commit {head} is not usable: {e}"),
        };
    }
    if let Some(commit) = &plan.policy.commit
        && args.policy.is_none()
    {
        if allow {
            return Ok(None);
        }
        bail!(
            "the plan was computed from the policy at git commit {commit}: pass --policy-repo URL \
             (and --branch) so apply can check the branch still points there, or --allow-policy-change"
        );
    }
    let policy_path = args
        .policy
        .clone()
        .unwrap_or_else(|| PathBuf::from(&plan.policy.path));
    let policy = ad2entra::policy::load_path(&policy_path).ok();
    if policy.is_none() && !allow {
        bail!(
            "cannot load the policy {} to check the plan against it (pass --policy, or --allow-policy-change)",
            policy_path.display()
        );
    }
    Ok(policy)
}

pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let from_git = args.repo.policy_repo.is_some();
    let (plan, expected_hash, policy) = match (&args.plan, args.policy.is_some() || from_git) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let plan: Plan = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a plan", file.display()))?;
            let policy = current_policy_of(&plan, args)?;
            let hash = policy.as_ref().map(|p| p.content_hash.clone());
            (plan, hash, policy)
        }
        (None, true) => {
            let inputs = Inputs {
                policy: args.policy.clone(),
                repo: args.repo.clone(),
                source_ldif: args.source_ldif.clone(),
                target_snapshot: None,
                state: args.state.clone(),
            };
            if args.target_snapshot.is_some() {
                bail!("apply writes to Entra: --target-snapshot is for offline planning only");
            }
            let (loaded, plan) = compute(&inputs)?;
            let mut shown = std::io::BufWriter::new(std::io::stdout().lock());
            ad2entra::render::write_human(&mut shown, &plan, stdout_color())?;
            shown.flush()?;
            (plan, Some(loaded.content_hash.clone()), Some(loaded))
        }
        (None, false) => {
            bail!("give a saved plan (apply plan.json), or --policy PATH or --policy-repo URL")
        }
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
    let rt = runtime()?;
    let opts = ad2entra::apply::ApplyOptions {
        expected_policy_hash: expected_hash,
        allow_policy_change: args.allow_policy_change,
        progress: std::io::stderr().is_terminal(),
        extension_app_id: Some(super::graph::extension_app_id(policy.as_ref())?),
        // The deadline counts from the first request, not from the confirmation prompt.
        deadline: args.timeout.map(|t| tokio::time::Instant::now() + t),
        journal: match &args.state {
            Some(state) => {
                let path = ad2entra::apply::CreateJournal::path_for_state(state);
                let journal = ad2entra::apply::CreateJournal::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                Some(std::sync::Arc::new(journal))
            }
            None => None,
        },
        ..Default::default()
    };
    let report = rt.block_on(ad2entra::apply::apply_plan(&plan, &client, &opts))?;
    super::graph::print_report(&report);
    if let Some(path) = &args.state {
        remember_refusals(path, &plan, &report)?;
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if report.has_failures() {
        ExitCode::from(1)
    } else if !report.is_complete() {
        eprintln!(
            "{} actions pending: the deadline passed before they were done; apply again to finish them",
            report.counts.pending
        );
        ExitCode::from(EXIT_PENDING)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
    }
}
