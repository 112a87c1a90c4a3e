//! What every subcommand shares and that depends on no other subcommand: loading the
//! policy (printing its diagnostics), the async runtime, colour and the clock.

use ad2entra::policy::LoadedPolicy;
use anyhow::{Context, bail};
use std::io::IsTerminal;
use std::path::Path;

/// Loads the policy or prints every diagnostic and fails.
pub fn load_policy(path: &Path) -> anyhow::Result<LoadedPolicy> {
    match ad2entra::policy::load_path(path) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("{w}");
            }
            Ok(p)
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let n = diags.iter().filter(|d| d.is_error()).count();
            bail!("the policy has {n} error(s)")
        }
    }
}

/// A tokio runtime for the IO edges.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
