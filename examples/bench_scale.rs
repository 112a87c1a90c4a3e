//! Helpers of `scripts/bench.sh` (the scale benchmark), one subcommand each:
//!
//! ```text
//! bench_scale seed POLICY LDIF APP_ID OUT.json
//!     The emulator seed of a converged tenant: what applying the plan of POLICY × LDIF
//!     to an empty tenant leaves (users and groups with their ids, properties, anchors
//!     and members), for `POST /_emulator/seed`.
//! bench_scale query POLICY APP_ID
//!     One JSON line: the filter and attributes of the policy's full AD read and the
//!     `$select` of its Graph reads, so the baselines (`ldapsearch`, a plain HTTP
//!     client) read the same entries and properties.
//! bench_scale pure POLICY
//!     Reads AD (the policy's source) and Entra (Graph, from the environment as
//!     `ad2entra plan` does), then plans from the snapshots in memory, as the reconciler
//!     does every cycle, and prints one JSON line: the wall time and peak RSS of the
//!     planning alone (the peak is reset after the reads), the RSS the snapshots hold,
//!     and the plan's size.
//! ```

use ad2entra::model::TargetSnapshot;
use ad2entra::plan::simulate::apply_to_snapshot;
use serde_json::{Map, Value, json};
use std::process::ExitCode;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A line of /proc/self/status, in MB.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn seed(policy: &str, ldif: &str, app_id: &str, out: &str) -> Result<(), String> {
    let policy = ad2entra::policy::load_path(policy.as_ref()).map_err(|d| format!("{d:?}"))?;
    let source = ad2entra::ad::ldif::read_ldif_file(ldif).map_err(|e| e.to_string())?;
    let empty = TargetSnapshot {
        extension_app_id: Some(app_id.to_string()),
        ..TargetSnapshot::default()
    };
    let plan = ad2entra::plan::plan(&policy, &source, &empty, chrono::Utc::now())
        .map_err(|e| e.to_string())?;
    let converged = apply_to_snapshot(&plan, &empty).map_err(|e| e.to_string())?;
    let object = |o: &ad2entra::model::TargetObject| -> Map<String, Value> {
        let mut m = o.props.to_map();
        m.insert("id".into(), Value::String(o.id.clone()));
        m
    };
    let users: Vec<Value> = converged
        .users
        .iter()
        .map(|u| Value::Object(object(u)))
        .collect();
    let groups: Vec<Value> = converged
        .groups
        .iter()
        .map(|g| {
            let mut m = object(g);
            m.insert("members".into(), json!(g.members));
            Value::Object(m)
        })
        .collect();
    let seed = json!({"users": users, "groups": groups});
    let file = std::fs::File::create(out).map_err(|e| format!("{out}: {e}"))?;
    serde_json::to_writer(std::io::BufWriter::new(file), &seed).map_err(|e| e.to_string())?;
    eprintln!(
        "{out}: {} users, {} groups, {} memberships ({} actions planned into an empty tenant)",
        converged.users.len(),
        converged.groups.len(),
        converged
            .groups
            .iter()
            .map(|g| g.members.len())
            .sum::<usize>(),
        plan.actions.len()
    );
    Ok(())
}

fn pure(policy_path: &str) -> Result<(), String> {
    let policy = ad2entra::policy::load_path(policy_path.as_ref()).map_err(|d| format!("{d:?}"))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let t_read = Instant::now();
    let (source, target) = rt.block_on(async {
        let ldap =
            ad2entra::ad::ldap::LdapConfig::for_policy(&policy).map_err(|e| e.to_string())?;
        let req = ad2entra::ad::ldap::ReadRequest {
            attributes: policy.source_attributes(),
        };
        let cfg = ad2entra::entra::graph::GraphConfig::from_env().map_err(|e| e.to_string())?;
        let client = ad2entra::entra::graph::GraphClient::new(cfg).map_err(|e| e.to_string())?;
        let app = std::env::var("AZURE_CLIENT_ID").ok();
        let opts = ad2entra::entra::graph::ReadOptions::for_policy(&policy, app.clone());
        let (source, target) = tokio::join!(
            ad2entra::ad::ldap::read_full(&ldap, &req),
            ad2entra::entra::graph::read_snapshot(&client, &opts)
        );
        let mut target = target.map_err(|e| e.to_string())?;
        target.extension_app_id = app.or(target.extension_app_id);
        Ok::<_, String>((source.map_err(|e| e.to_string())?, target))
    })?;
    let read_s = t_read.elapsed().as_secs_f64();
    drop(rt);
    let held_mb = status_mb("VmRSS:");
    // Peak RSS from here on: writing 5 to clear_refs resets VmHWM to the current RSS.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let t = Instant::now();
    let plan = ad2entra::plan::plan(&policy, &source, &target, chrono::Utc::now())
        .map_err(|e| e.to_string())?;
    let wall_s = t.elapsed().as_secs_f64();
    let peak_mb = status_mb("VmHWM:");
    println!(
        "{}",
        json!({
            "wall_s": wall_s,
            "peak_rss_mb": peak_mb,
            "peak_reset": reset,
            "snapshots_rss_mb": held_mb,
            "read_s": read_s,
            "source_objects": source.objects.len(),
            "target_users": target.users.len(),
            "target_groups": target.groups.len(),
            "actions": plan.actions.len(),
            "in_scope_users": plan.summary.in_scope_users,
            "in_scope_groups": plan.summary.in_scope_groups,
            "errors": plan.summary.errors,
        })
    );
    Ok(())
}

fn query(policy: &str, app_id: &str) -> Result<(), String> {
    use ad2entra::entra::graph::read;
    let policy = ad2entra::policy::load_path(policy.as_ref()).map_err(|d| format!("{d:?}"))?;
    let (filter, attrs) = ad2entra::ad::ldap::full_read_query(&ad2entra::ad::ldap::ReadRequest {
        attributes: policy.source_attributes(),
    });
    let opts = read::ReadOptions::for_policy(&policy, Some(app_id.to_string()));
    let ext = ad2entra::model::target::ExtensionNames::for_app(app_id);
    println!(
        "{}",
        json!({
            "ldap_filter": filter,
            "ldap_attributes": attrs,
            "user_select": read::user_select(&opts, &ext),
            "group_select": read::group_select(&opts, &ext),
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["seed", policy, ldif, app, out] => seed(policy, ldif, app, out),
        ["pure", policy] => pure(policy),
        ["query", policy, app] => query(policy, app),
        _ => {
            eprintln!(
                "usage: bench_scale seed POLICY LDIF APP_ID OUT.json | pure POLICY | query POLICY APP_ID"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
