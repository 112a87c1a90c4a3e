//! apply under faults: time-scaled write budget, 10 % 5xx, 5 % dropped connections
//! (before and after commit) and 2 s replication lag. It must converge with no duplicate
//! object, no lost write, and no 429 after the first.

mod graph_support;

use ad2entra::apply::{ActionStatus, ApplyOptions, apply_plan};
use ad2entra::entra::graph::{ReadOptions, WriteBudget, read_snapshot};
use ad2entra::plan::Action;
use graph_emulator::{Emulator, EmulatorConfig};
use graph_support::*;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_faults_without_duplicates_or_repeated_429() {
    let mut cfg = EmulatorConfig::default();
    cfg.throttling.time_scale = 100.0;
    cfg.throttling.writes_per_150s = 200; // 200 writes / 1.5 s
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (setup, _) = client(&emu, &cfg);
    ad2entra::init::run_init(
        &setup,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            domains: vec![],
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .unwrap();
    emu.set_faults(graph_emulator::config::FaultConfig {
        error_rate: 0.10,
        drop_rate: 0.05,
        drop_after_commit_rate: 0.05,
        replication_lag_ms: 2000,
        rng_seed: Some(7),
        ..Default::default()
    })
    .unwrap();
    // The client knows the (scaled) budget the emulator enforces.
    let budget = WriteBudget {
        writes: 200,
        window: Duration::from_secs(150),
    }
    .time_scaled(100.0);
    let (client, log) = client_budget(&emu, &cfg, budget);
    let users = 400u32;
    let mut actions: Vec<Action> = (0..users)
        .map(|n| create_user(n, &format!("f{n}@corp.example.com")))
        .collect();
    for g in 0..8u32 {
        actions.push(create_group(10_000 + g, &format!("Group {g}")));
    }
    for g in 0..8u32 {
        let members: Vec<u32> = (0..users).filter(|u| u % 8 == g).collect();
        actions.push(add_members(10_000 + g, &format!("Group {g}"), &members));
    }
    let opts = ApplyOptions {
        extension_app_id: app_id(),
        lookup_delay: Duration::from_millis(2500),
        replication_wait: Duration::from_secs(30),
        max_attempts: 30,
        ..Default::default()
    };
    let report = apply_plan(&test_plan(actions), &client, &opts)
        .await
        .unwrap();
    let bad: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status != ActionStatus::Ok)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(report.throttled <= 1, "429s: {}", report.throttled);
    let stats = emu.stats();
    assert!(
        stats.faults.errors + stats.faults.dropped + stats.faults.dropped_after_commit > 0,
        "faults were injected"
    );
    assert!(
        stats.throttled <= 1,
        "emulator saw {} 429s",
        stats.throttled
    );

    emu.set_faults(Default::default()).unwrap();
    // Objects created in the last 2 s may still be replicating: wait out the lag.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let snap = read_snapshot(
        &client,
        &ReadOptions {
            extension_app_id: app_id(),
            skip_directory_roles: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for o in snap.users.iter().chain(&snap.groups) {
        let a = o
            .str(&ext().anchor)
            .expect("every object carries the anchor")
            .to_string();
        *seen.entry(a).or_default() += 1;
    }
    let missing: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.anchor.as_ref().is_some_and(|a| !seen.contains_key(a)))
        .take(3)
        .collect();
    assert!(
        missing.is_empty(),
        "reported but absent ({} users): {missing:#?}",
        snap.users.len()
    );
    assert_eq!(
        snap.users.len(),
        users as usize,
        "no duplicate or missing user"
    );
    assert_eq!(snap.groups.len(), 8, "no duplicate or missing group");
    assert!(seen.values().all(|c| *c == 1));
    for g in &snap.groups {
        assert_eq!(
            g.members.len(),
            (users / 8) as usize,
            "no lost membership in {}",
            g.label()
        );
    }
    assert_conformant(&log);
}
