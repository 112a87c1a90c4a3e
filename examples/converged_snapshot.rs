//! Writes the Entra snapshot that results from applying the plan of POLICY × LDIF to an
//! empty tenant: the "nothing to do" input for `scripts/bench-plan.sh`.
//!
//! ```text
//! cargo run --release --example converged_snapshot -- POLICY LDIF OUT.json
//! ```

use ad2entra::model::TargetSnapshot;
use ad2entra::plan::simulate::apply_to_snapshot;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, ldif, out] = args.as_slice() else {
        eprintln!("usage: converged_snapshot POLICY LDIF OUT.json");
        return ExitCode::from(2);
    };
    let run = || -> Result<(), String> {
        let policy = ad2entra::policy::load_path(policy.as_ref()).map_err(|d| format!("{d:?}"))?;
        let source = ad2entra::ad::ldif::read_ldif_file(ldif).map_err(|e| e.to_string())?;
        let empty = TargetSnapshot::default();
        let plan = ad2entra::plan::plan(&policy, &source, &empty, chrono::Utc::now())
            .map_err(|e| e.to_string())?;
        let converged = apply_to_snapshot(&plan, &empty).map_err(|e| e.to_string())?;
        let json = serde_json::to_vec(&converged).map_err(|e| e.to_string())?;
        std::fs::write(out, json).map_err(|e| e.to_string())?;
        eprintln!(
            "{}: {} users, {} groups",
            out,
            converged.users.len(),
            converged.groups.len()
        );
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
