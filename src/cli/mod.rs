//! Subcommands. Each returns an exit code; errors become exit 1 in `main`.

mod common;
mod demo;
mod explain;
mod gitops;
mod graph;
mod inputs;
mod migrate_check;
mod plan;
mod policy_test;
mod run;
mod validate;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Keeps Microsoft Entra ID in step with Active Directory, from a policy in git.
#[derive(Parser, Debug)]
#[command(name = "ad2entra", version, about, long_about = None)]
pub struct Cli {
    /// Log as JSON lines (for log collectors).
    #[arg(long, global = true, env = "AD2ENTRA_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the source and target come from.
#[derive(Args, Debug, Clone)]
pub struct Inputs {
    /// Policy file or directory.
    #[arg(long, env = "AD2ENTRA_POLICY", conflicts_with = "policy_repo")]
    pub policy: Option<PathBuf>,
    /// The policy at the head of a git branch instead (see `run --help`).
    #[command(flatten)]
    pub repo: gitops::RepoArgs,
    /// Read AD from an LDIF file instead of the policy's LDAP source.
    #[arg(long)]
    pub source_ldif: Option<PathBuf>,
    /// Read Entra from a JSON snapshot instead of Graph.
    #[arg(long)]
    pub target_snapshot: Option<PathBuf>,
    /// State file (JSON): remembers the objectGUIDs of the OUs and groups the policy
    /// names, so a renamed or moved OU is followed instead of stopping the sync, and the
    /// writes Graph refused, held back until they change.
    #[arg(long, env = "AD2ENTRA_STATE")]
    pub state: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a policy offline (exit 0 valid, 1 invalid); --online also resolves OUs and groups in AD.
    Validate {
        #[arg(long, env = "AD2ENTRA_POLICY")]
        policy: PathBuf,
        /// Resolve the policy's OUs and groups in AD.
        #[arg(long)]
        online: bool,
    },
    /// Read, compute and show the plan.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
        #[arg(long, value_enum, default_value = "human")]
        format: ad2entra::render::Format,
        /// Also write the plan as JSON to this file (for `apply`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Apply a saved plan, or plan and apply.
    Apply(plan::ApplyArgs),
    /// Explain one object: scope decision, mapped values, match and planned action.
    Explain {
        #[command(flatten)]
        inputs: Inputs,
        /// DN, userPrincipalName or sAMAccountName.
        who: String,
    },
    /// Run the policy's unit tests (AD fixtures → expected results).
    Test {
        #[arg(long, env = "AD2ENTRA_POLICY")]
        policy: PathBuf,
        /// Test directory (default: `tests/` beside or inside the policy).
        #[arg(long)]
        tests: Option<PathBuf>,
    },
    /// Print the policy's JSON Schema.
    Schema,
    /// Register the anchor extension, check permissions and verified domains.
    Init {
        #[arg(long, env = "AD2ENTRA_POLICY")]
        policy: Option<PathBuf>,
        /// Object id of the app registration (default: addressed by its appId).
        #[arg(long, env = "AD2ENTRA_APP_OBJECT_ID")]
        app_object_id: Option<String>,
    },
    /// Plan → apply → plan against a built-in Graph emulator with the example company.
    Demo(demo::DemoArgs),
    /// The reconciler: keeps Entra converged to AD and the policy (from files or git).
    Run(Box<run::RunArgs>),
    /// Ask a running reconciler for a sync now (like Entra Connect's forced sync).
    SyncNow {
        #[command(flatten)]
        remote: run::RemoteArgs,
        /// Re-read everything instead of a delta cycle.
        #[arg(long)]
        full: bool,
    },
    /// Read-only: what a cut-over from Entra Connect would do (synced objects, hard
    /// matches, objects without an AD counterpart, immutable ids, UPN changes).
    MigrateCheck(migrate_check::MigrateCheckArgs),
    /// Show a running reconciler's status (conditions, revisions, last cycle, errors).
    Status {
        #[command(flatten)]
        remote: run::RemoteArgs,
        /// Print the raw /status JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Logging to stderr: `AD2ENTRA_LOG` (an env-filter) or `default_level`; JSON lines
/// with `--log-json` (span fields such as the cycle id and commit on every line).
pub fn init_logging(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AD2ENTRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { policy, online } => validate::run(&policy, online),
        Command::Plan {
            inputs,
            format,
            out,
            detailed_exitcode,
        } => plan::run_plan(&inputs, format, out.as_deref(), detailed_exitcode),
        Command::Apply(args) => plan::run_apply(&args),
        Command::Explain { inputs, who } => explain::run(&inputs, &who),
        Command::MigrateCheck(args) => migrate_check::run(&args),
        Command::Test { policy, tests } => policy_test::run(&policy, tests.as_deref()),
        Command::Schema => {
            let schema = schemars::schema_for!(ad2entra::policy::Policy);
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Init {
            policy,
            app_object_id,
        } => graph::run_init(policy.as_deref(), app_object_id),
        Command::Demo(args) => demo::run(&args),
        Command::Run(args) => run::run(&args),
        Command::SyncNow { remote, full } => run::sync_now(&remote, full),
        Command::Status { remote, json } => run::status(&remote, json),
    }
}
