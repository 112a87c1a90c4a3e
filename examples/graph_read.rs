//! Bench: reading Entra through Graph from the in-process emulator seeded with 10,000
//! users, 500 groups and 50,000 memberships. Prints wall time and requests of the full read
//! (`read_snapshot`, and `read_full_with_links` which also takes delta links), then of a
//! delta read after 10 user changes and 10 membership changes, and checks that the snapshot
//! it leaves equals a fresh full read.
//!
//! ```text
//! cargo run --release --example graph_read -- [--users 10000] [--groups 500]
//!     [--memberships 50000] [--runs 3]
//! ```

use ad2entra::entra::graph::auth::AuthConfig;
use ad2entra::entra::graph::{
    GraphClient, GraphConfig, GraphRequest, ReadOptions, RetryMode, read_delta,
    read_full_with_links, read_snapshot,
};
use ad2entra::model::TargetSnapshot;
use ad2entra::model::target::ExtensionNames;
use graph_emulator::config::{ApplicationConfig, ExtensionPropertyConfig};
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// Users, groups of `per_group` members each, and the anchor extensions registered.
fn seed(cfg: &EmulatorConfig, users: usize, groups: usize, memberships: usize) -> Seed {
    let ext = ExtensionNames::for_app(&cfg.client_id);
    let per_group = memberships.checked_div(groups).unwrap_or(0).min(users);
    let extension = |name: &str| ExtensionPropertyConfig {
        name: name.into(),
        data_type: "String".into(),
        target_objects: vec!["User".into(), "Group".into()],
        is_multi_valued: false,
    };
    Seed {
        applications: vec![ApplicationConfig {
            extension_properties: vec![
                extension("ad2entraAnchor"),
                extension("ad2entraOrphanedAt"),
            ],
            ..cfg.applications[0].clone()
        }],
        users: (0..users)
            .map(|n| {
                object(json!({
                    "userPrincipalName": format!("user{n}@corp.example.com"),
                    "displayName": format!("User {n}"),
                    "givenName": "User",
                    "surname": format!("Number {n}"),
                    "mailNickname": format!("user{n}"),
                    "jobTitle": "Clerk",
                    "department": format!("Dept {}", n % 40),
                    "usageLocation": "US",
                    "accountEnabled": true,
                    ext.anchor.clone(): format!("anchor-{n}"),
                }))
            })
            .collect(),
        groups: (0..groups)
            .map(|g| {
                let members: Vec<String> = (0..per_group)
                    .map(|k| format!("user{}@corp.example.com", (g * 20 + k) % users))
                    .collect();
                object(json!({
                    "displayName": format!("Group {g}"),
                    "mailNickname": format!("group{g}"),
                    "securityEnabled": true,
                    "mailEnabled": false,
                    "members": members,
                    ext.anchor.clone(): format!("group-anchor-{g}"),
                }))
            })
            .collect(),
        ..Default::default()
    }
}

fn opts(cfg: &EmulatorConfig) -> ReadOptions {
    ReadOptions {
        user_select: [
            "displayName",
            "userPrincipalName",
            "givenName",
            "surname",
            "mail",
            "jobTitle",
            "department",
            "usageLocation",
            "accountEnabled",
        ]
        .map(String::from)
        .to_vec(),
        group_select: ["displayName", "description", "mailNickname"]
            .map(String::from)
            .to_vec(),
        extension_app_id: Some(cfg.client_id.clone()),
        skip_directory_roles: true,
        ..Default::default()
    }
}

/// Wall time and requests of one measured step.
struct Measure {
    ms: f64,
    http: u64,
    graph: u64,
}

/// Runs `step`, counting HTTP requests the client sent (a `$batch` once) and Graph requests
/// the emulator served (inner requests of a `$batch` each).
async fn measure<T, F: std::future::Future<Output = T>>(
    client: &GraphClient,
    emu: &Emulator,
    step: F,
) -> (T, Measure) {
    let http = client.stats().snapshot().requests;
    let graph = emu.stats().total_requests;
    let t = Instant::now();
    let out = step.await;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    (
        out,
        Measure {
            ms,
            http: client.stats().snapshot().requests - http,
            graph: emu.stats().total_requests - graph,
        },
    )
}

fn row(what: &str, m: &Measure) {
    println!(
        "{what:<44} {:>9.1} ms {:>6} HTTP requests {:>7} Graph requests",
        m.ms, m.http, m.graph
    );
}

fn canonical(mut s: TargetSnapshot) -> TargetSnapshot {
    s.users.sort_by(|a, b| a.id.cmp(&b.id));
    s.groups.sort_by(|a, b| a.id.cmp(&b.id));
    s
}

async fn write(client: &GraphClient, method: Method, path: String, body: Option<Value>) {
    if let Err(e) = client
        .execute(
            &GraphRequest::write(method, path, body),
            RetryMode::Idempotent,
        )
        .await
    {
        eprintln!("change failed: {e}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let users = arg("--users", 10_000);
    let groups = arg("--groups", 500);
    let memberships = arg("--memberships", 50_000);
    let runs = arg("--runs", 3).max(1);
    let cfg = EmulatorConfig::default();
    let emu = Emulator::start(cfg.clone()).await?;
    let report = emu.seed(&seed(&cfg, users, groups, memberships))?;
    let client = GraphClient::new(GraphConfig::new(
        emu.base_url(),
        AuthConfig::for_emulator(&emu, &cfg),
    ))?;
    let opts = opts(&cfg);
    println!(
        "{users} users, {groups} groups, {memberships} memberships; {runs} run(s) of each full read"
    );
    for run in 1..=runs {
        let (snap, m) = measure(&client, &emu, read_snapshot(&client, &opts)).await;
        let snap = snap?;
        row(&format!("full read, read_snapshot (run {run})"), &m);
        assert_eq!(snap.users.len(), users);
    }
    let mut kept = None;
    for run in 1..=runs {
        let (read, m) = measure(&client, &emu, read_full_with_links(&client, &opts)).await;
        row(&format!("full read, read_full_with_links (run {run})"), &m);
        kept = Some(read?);
    }
    let Some((mut snap, links)) = kept else {
        return Ok(());
    };
    // 10 user changes and 10 membership changes (5 added, 5 removed).
    for n in 0..10 {
        let id = &report.user_ids[n * 97 % users];
        let body = json!({"jobTitle": format!("Changed {n}")});
        write(&client, Method::PATCH, format!("/users/{id}"), Some(body)).await;
    }
    let state = emu.state();
    for n in 0..5 {
        let group = &state["groups"][n * 31 % groups];
        let gid = group["id"].as_str().unwrap_or_default();
        let members: Vec<&str> = group["members"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(m) = members.first() {
            let path = format!("/groups/{gid}/members/{m}/$ref");
            write(&client, Method::DELETE, path, None).await;
        }
        let outsider = report
            .user_ids
            .iter()
            .find(|u| !members.contains(&u.as_str()));
        if let Some(u) = outsider {
            let body = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{u}")});
            write(
                &client,
                Method::POST,
                format!("/groups/{gid}/members/$ref"),
                Some(body),
            )
            .await;
        }
    }
    let (delta, m) = measure(&client, &emu, read_delta(&client, &opts, &mut snap, &links)).await;
    let (links, summary) = delta?;
    row("delta read after 10 user + 10 member changes", &m);
    println!("  {summary:?}");
    let (_, m) = measure(&client, &emu, read_delta(&client, &opts, &mut snap, &links)).await;
    row("delta read, nothing changed", &m);
    let fresh = read_snapshot(&client, &opts).await?;
    println!(
        "snapshot after delta equals a fresh full read: {}",
        canonical(snap) == canonical(fresh)
    );
    Ok(())
}
