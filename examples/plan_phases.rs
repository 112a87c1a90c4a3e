//! Times each phase of planning (read LDIF, read snapshot, desired state, plan, render)
//! on one input, to see where a large plan spends its time.
//!
//! ```text
//! cargo run --release --example plan_phases -- POLICY LDIF SNAPSHOT.json
//! ```

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, ldif, snapshot] = args.as_slice() else {
        eprintln!("usage: plan_phases POLICY LDIF SNAPSHOT.json");
        std::process::exit(2);
    };
    let t = Instant::now();
    let lap = |what: &str| {
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(str::to_string)
            })
            .unwrap_or_default();
        eprintln!("{what:<16} {:>8.2} s   {rss}", t.elapsed().as_secs_f64());
    };
    let policy = ad2entra::policy::load_path(policy.as_ref()).expect("policy");
    let source = ad2entra::ad::ldif::read_ldif_file(ldif).expect("ldif");
    lap("read ldif");
    let target: ad2entra::model::TargetSnapshot = serde_json::from_reader(std::io::BufReader::new(
        std::fs::File::open(snapshot).expect("snapshot"),
    ))
    .expect("snapshot json");
    lap("read snapshot");
    let facts = ad2entra::plan::compute::tenant_facts(&target);
    let desired = ad2entra::desired::desired_state(&policy, &source, &facts);
    lap("desired state");
    drop(desired);
    let plan = ad2entra::plan::plan(&policy, &source, &target, chrono::Utc::now()).expect("plan");
    lap("plan (again)");
    let json = ad2entra::render::json(&plan);
    lap("render json");
    let human = ad2entra::render::human(&plan, false);
    lap("render human");
    eprintln!(
        "{} actions, {} bytes json, {} bytes human",
        plan.actions.len(),
        json.len(),
        human.len()
    );
}
