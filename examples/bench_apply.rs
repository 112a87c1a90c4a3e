//! Bench: initial apply of 10,000 users and 500 groups (with memberships) into the
//! in-process emulator, time-scaled ×100, twice: with Graph's documented write budget
//! (3,000 writes / 150 s) and with a tenth of it (burst and rate), the client knowing only
//! the documented one. Prints achieved ÷ allowed writes per second, HTTP requests per
//! create, 429s per 1,000 writes and requests that arrived before a Retry-After instant
//! (goal 0). Run via scripts/bench-apply.sh.

use ad2entra::apply::{ActionStatus, ApplyOptions, apply_plan};
use ad2entra::entra::graph::auth::AuthConfig;
use ad2entra::entra::graph::{GraphClient, GraphConfig, ResourceUnitBudget, WriteBudget};
use ad2entra::model::Anchor;
use ad2entra::model::target::ExtensionNames;
use ad2entra::plan::*;
use base64::Engine;
use graph_emulator::{BucketConfig, Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::time::Duration;

fn anchor(n: u32) -> Anchor {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_le_bytes());
    b[15] = 0xbe;
    Anchor::from(base64::engine::general_purpose::STANDARD.encode(b))
}

fn add_patch(props: &Value) -> json_patch::Patch {
    let ops: Vec<Value> = props
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| json!({"op":"add","path":format!("/{k}"),"value":v}))
                .collect()
        })
        .unwrap_or_default();
    serde_json::from_value(Value::Array(ops)).expect("patch")
}

fn object(t: ObjectType, a: Anchor, name: String) -> ObjectRef {
    ObjectRef {
        object_type: t,
        anchor: Some(a),
        dn: None,
        name,
        id: None,
        source: None,
    }
}

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One apply of `users` users and `groups` groups (with memberships) into a fresh emulator
/// whose app write bucket is `server` (writes, virtual seconds), time ×`scale`; the client
/// knows only the documented budget.
async fn run(
    label: &str,
    server: (u32, f64),
    users: u32,
    groups: u32,
    scale: f64,
    in_flight: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut cfg = EmulatorConfig::default();
    cfg.throttling.time_scale = scale;
    cfg.throttling.app_write_bucket = Some(BucketConfig {
        size: server.0,
        window_secs: server.1,
    });
    let emu = Emulator::start(cfg.clone()).await?;
    let ext = ExtensionNames::for_app(&cfg.client_id);
    let auth = AuthConfig::for_emulator(&emu, &cfg);
    let mut gc = GraphConfig::new(emu.base_url(), auth);
    gc.write_budget = WriteBudget::default().time_scaled(scale);
    gc.resource_unit_budget = ResourceUnitBudget::default().time_scaled(scale);
    gc.max_in_flight = in_flight;
    let client = GraphClient::new(gc)?;
    ad2entra::init::run_init(
        &client,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            domains: vec![],
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await?;
    let mut actions = Vec::new();
    for n in 0..users {
        let a = anchor(n);
        let props = json!({
            "accountEnabled": true, "displayName": format!("Bench User {n}"),
            "mailNickname": format!("bench{n}"), "userPrincipalName": format!("bench{n}@corp.example.com"),
            "usageLocation": "US", "onPremisesImmutableId": a.as_str(), ext.anchor.clone(): a.as_str(),
        });
        actions.push(Action {
            op: Operation::Create,
            object: object(ObjectType::User, a, format!("bench{n}@corp.example.com")),
            before: None,
            patch: add_patch(&props),
            members: vec![],
            skus: vec![],
            reason: "bench".into(),
        });
    }
    for g in 0..groups {
        let a = anchor(1_000_000 + g);
        let props = json!({"displayName": format!("Bench Group {g}"), "mailNickname": format!("bench-group-{g}"),
            "securityEnabled": true, "mailEnabled": false, ext.anchor.clone(): a.as_str()});
        actions.push(Action {
            op: Operation::Create,
            object: object(ObjectType::Group, a, format!("Bench Group {g}")),
            before: None,
            patch: add_patch(&props),
            members: vec![],
            skus: vec![],
            reason: "bench".into(),
        });
    }
    for g in 0..groups {
        let members: Vec<MemberRef> = (0..users)
            .filter(|u| u % groups == g)
            .map(|u| MemberRef {
                object_type: ObjectType::User,
                anchor: Some(anchor(u)),
                id: None,
                name: format!("bench{u}"),
            })
            .collect();
        actions.push(Action {
            op: Operation::AddMembers,
            object: object(
                ObjectType::Group,
                anchor(1_000_000 + g),
                format!("Bench Group {g}"),
            ),
            before: None,
            patch: json_patch::Patch(vec![]),
            members,
            skus: vec![],
            reason: "bench".into(),
        });
    }
    let creates = (users + groups) as f64;
    let plan = Plan {
        format_version: FORMAT_VERSION,
        generator: "bench".into(),
        policy: PolicyProvenance::default(),
        source: SourceProvenance::default(),
        target: TargetProvenance::default(),
        now: "2025-01-01T00:00:00Z".into(),
        summary: Summary::default(),
        actions,
        blocked: vec![],
        diagnostics: vec![],
    };
    let opts = ApplyOptions {
        extension_app_id: Some(cfg.client_id.clone()),
        lookup_delay: Duration::from_millis(500),
        ..Default::default()
    };
    let before = emu.stats();
    let report = apply_plan(&plan, &client, &opts).await?;
    let stats = emu.stats();
    let secs = report.duration_ms as f64 / 1000.0;
    // What the emulator allows, in real seconds: its refill rate, and over the run its
    // initial bucket plus the refill.
    let allowed_rate = f64::from(server.0) / server.1 * scale;
    let allowed_with_burst = (f64::from(server.0) + secs * allowed_rate) / secs;
    let writes = (stats.writes - before.writes) as f64;
    let achieved = writes / secs;
    let throttled = stats.throttled - before.throttled;
    let not_ok = report
        .results
        .iter()
        .filter(|r| r.status != ActionStatus::Ok)
        .count();
    println!(
        "== {label}: bucket {} writes per {} s, time x{scale}",
        server.0, server.1
    );
    println!(
        "actions            {} ({} not ok)",
        report.results.len(),
        not_ok
    );
    println!("duration           {secs:.2} s");
    println!(
        "writes             {writes} committed, {} sent",
        report.writes
    );
    println!(
        "achieved/allowed   {:.3} (achieved {achieved:.0} w/s, allowed refill {allowed_rate:.0} w/s)",
        achieved / allowed_rate
    );
    println!(
        "achieved/(allowed incl. initial bucket) {:.3}",
        achieved / allowed_with_burst
    );
    println!(
        "requests/create    {:.4} ({} HTTP requests, {} creates; goal <= {:.4})",
        report.requests as f64 / creates,
        report.requests,
        creates,
        1.0 / 18.0
    );
    println!(
        "429s per 1,000 writes {:.2} ({throttled} 429s)",
        throttled as f64 * 1000.0 / writes
    );
    println!(
        "early requests     {} (goal 0; {} requests were in flight at 429s)",
        stats.early_requests,
        client.stats().snapshot().throttled_in_flight
    );
    println!(
        "final write rate   {:.0} w/s ({:.3} of the documented)",
        client.throttle().write_rate(),
        client.throttle().write_rate() / (3000.0 / 150.0 * scale)
    );
    // Objects created twice: more than one object in the tenant carrying one anchor.
    let state = emu.state();
    let mut anchors: std::collections::HashMap<String, usize> = Default::default();
    for kind in ["users", "groups"] {
        for o in state[kind].as_array().into_iter().flatten() {
            if let Some(a) = o.get(&ext.anchor).and_then(Value::as_str) {
                *anchors.entry(a.to_string()).or_default() += 1;
            }
        }
    }
    let duplicates: usize = anchors.values().map(|n| n - 1).sum();
    println!("duplicates         {duplicates} (objects created twice; goal 0)");
    emu.shutdown().await;
    Ok(json!({
        "write_rate_ratio": achieved / allowed_rate,
        "requests_per_write": report.requests as f64 / writes,
        "requests_per_create": report.requests as f64 / creates,
        "throttled_after_first": throttled.saturating_sub(1),
        "duplicates": duplicates,
        "duration_s": secs,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = arg("--users", 10_000);
    let groups = arg("--groups", 500);
    let scale = arg("--time-scale", 100) as f64;
    let in_flight = arg("--in-flight", 6) as usize;
    let documented = run(
        "documented budget",
        (3000, 150.0),
        users,
        groups,
        scale,
        in_flight,
    )
    .await?;
    println!();
    run(
        "a tenth of the budget (burst and rate)",
        (300, 150.0),
        users,
        groups,
        scale,
        in_flight,
    )
    .await?;
    // The documented-budget figures, for scripts/bench.sh.
    println!("\nBENCH_JSON {documented}");
    Ok(())
}
