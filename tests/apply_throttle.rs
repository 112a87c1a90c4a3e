//! Apply against budgets tighter than documented, deadlines and cancellation: the client
//! waits out every Retry-After (the emulator counts requests that arrive before one has
//! passed), finds the real rate without hammering, never fails an action because of
//! throttling, and reports what a deadline or a cancellation left as pending.

mod graph_support;

use ad2entra::apply::{ActionStatus, ApplyOptions, ApplyReport, apply_plan};
use ad2entra::entra::graph::batch::BatchItem;
use ad2entra::entra::graph::{GraphClient, GraphRequest, ReadOptions, RetryMode, read_snapshot};
use ad2entra::plan::Action;
use graph_emulator::{BucketConfig, Emulator, EmulatorConfig, ThrottleConfig};
use graph_support::*;
use std::collections::HashMap;
use std::time::Duration;

/// An emulator whose app write bucket is `size` writes refilled over `window_secs`
/// (virtual seconds, time running `scale` times faster), and a client that knows only the
/// documented budget (time-scaled alike), with the anchor extension registered.
async fn tenant(size: u32, window_secs: f64, scale: f64) -> (Emulator, GraphClient, Log) {
    let cfg = EmulatorConfig {
        throttling: ThrottleConfig {
            time_scale: scale,
            app_write_bucket: Some(BucketConfig { size, window_secs }),
            ..ThrottleConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, log) = client(&emu, &cfg);
    ad2entra::init::run_init(
        &client,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .unwrap();
    (emu, client, log)
}

fn users(range: std::ops::Range<u32>) -> Vec<Action> {
    range
        .map(|n| create_user(n, &format!("t{n}@corp.example.com")))
        .collect()
}

/// Objects in the tenant per anchor (a duplicate shows as a count of 2).
async fn anchors(client: &GraphClient) -> HashMap<String, usize> {
    let snap = read_snapshot(
        client,
        &ReadOptions {
            extension_app_id: app_id(),
            skip_directory_roles: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut seen = HashMap::new();
    for o in snap.users.iter().chain(&snap.groups) {
        if let Some(a) = o.str(&ext().anchor) {
            *seen.entry(a.to_string()).or_default() += 1;
        }
    }
    seen
}

fn with_status(report: &ApplyReport, status: ActionStatus) -> Vec<&ad2entra::apply::ActionResult> {
    report
        .results
        .iter()
        .filter(|r| r.status == status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenth_of_the_write_budget_converges_without_early_requests() {
    // Burst and rate both a tenth of the documented 3,000 per 150 s, time ×100.
    let (emu, client, log) = tenant(300, 150.0, 100.0).await;
    let before = emu.stats();
    let opts = ApplyOptions {
        extension_app_id: app_id(),
        // One attempt per request: a 429 that used up an attempt would fail the action.
        max_attempts: 1,
        ..Default::default()
    };
    let report = apply_plan(&test_plan(users(0..3000)), &client, &opts)
        .await
        .unwrap();
    let not_ok: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status != ActionStatus::Ok)
        .take(5)
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    let stats = emu.stats();
    let throttled = stats.throttled - before.throttled;
    let writes = stats.writes - before.writes;
    let in_flight = client.stats().snapshot().throttled_in_flight;
    eprintln!(
        "3,000 users at 1/10 budget: {} ms, {writes} writes, {throttled} 429s, {} early requests ({in_flight} requests in flight at 429s)",
        report.duration_ms, stats.early_requests
    );
    // The client found the tighter budget: its write rate (time ×100) is near the
    // emulator's 200/s, not the documented 2,000/s.
    let rate = client.throttle().write_rate();
    assert!(rate < 250.0, "write rate {rate}/s");
    assert!(
        throttled * 100 < writes,
        "{throttled} 429s for {writes} writes"
    );
    // Nothing was sent inside a Retry-After, but what was already on its way.
    assert!(
        stats.early_requests <= in_flight,
        "{} requests arrived before a Retry-After instant; {in_flight} were in flight at 429s",
        stats.early_requests
    );
    let seen = anchors(&client).await;
    assert_eq!(seen.len(), 3000);
    assert!(seen.values().all(|c| *c == 1), "no duplicate");
    assert_conformant(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_429_holds_back_reads_until_retry_after() {
    // 5 writes per 50 s, time ×10: what init leaves lets two writes here through at
    // once, and the third waits a Retry-After of about 1 s.
    let (emu, client, _) = tenant(5, 50.0, 10.0).await;
    let before = emu.stats();
    let reader = client.clone();
    let reads = tokio::spawn(async move {
        for _ in 0..40 {
            let r = reader
                .execute(&GraphRequest::get("/domains"), RetryMode::Idempotent)
                .await;
            assert!(r.is_ok());
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let started = std::time::Instant::now();
    for n in 0..3u32 {
        let a = create_user(n, &format!("r{n}@corp.example.com"));
        let body = ad2entra::apply::create_body(a.object.object_type, &a.after().unwrap());
        let req = GraphRequest::write(reqwest::Method::POST, "/users", Some(body));
        // A 429 is waited out and sent again, whatever the retry budget.
        client.execute(&req, RetryMode::ThrottleOnly).await.unwrap();
    }
    reads.await.unwrap();
    let stats = emu.stats();
    assert_eq!(stats.throttled - before.throttled, 1);
    assert!(started.elapsed() >= Duration::from_millis(900));
    let in_flight = client.stats().snapshot().throttled_in_flight;
    assert!(
        stats.early_requests <= in_flight,
        "{} reads arrived inside the Retry-After; {in_flight} were in flight",
        stats.early_requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_on_reads_pauses_the_client_too() {
    // 60 resource units per (virtual) 10 s, time ×10: a batch of 20 reads costs 20.
    let cfg = EmulatorConfig {
        throttling: ThrottleConfig {
            time_scale: 10.0,
            resource_unit_bucket: Some(BucketConfig {
                size: 60,
                window_secs: 10.0,
            }),
            ..ThrottleConfig::default()
        },
        ..EmulatorConfig::default()
    };
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (client, _) = client(&emu, &cfg);
    let items: Vec<BatchItem> = (0..120)
        .map(|k| BatchItem::get(k.to_string(), "/domains?$select=id"))
        .collect();
    let answers = client.batch_get_all(items).await.unwrap();
    assert_eq!(answers.len(), 120);
    assert!(answers.values().all(|r| r.status == 200));
    let stats = emu.stats();
    let in_flight = client.stats().snapshot().throttled_in_flight;
    assert!(stats.throttled > 0, "reads were throttled");
    assert!(
        stats.early_requests <= in_flight,
        "{} early, {in_flight} in flight",
        stats.early_requests
    );
    // Throttled reads slowed the resource-unit rate below its documented 3,500/10 s.
    assert!(client.throttle().resource_unit_rate() < 3360.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_leaves_pending_actions_that_the_next_apply_finishes() {
    // 20 writes, then 2 per second: 120 creates cannot be done in 1.5 s.
    let (emu, client, _) = tenant(20, 10.0, 1.0).await;
    let plan = test_plan(users(0..120));
    let opts = ApplyOptions {
        extension_app_id: app_id(),
        deadline: Some(tokio::time::Instant::now() + Duration::from_millis(1500)),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let report = apply_plan(&plan, &client, &opts).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped at the deadline, not at the end of the work"
    );
    assert!(!report.is_complete());
    assert!(!report.has_failures(), "{:#?}", report.counts);
    let pending = with_status(&report, ActionStatus::Pending);
    assert_eq!(pending.len(), report.counts.pending);
    assert!(
        report.counts.ok >= 10 && report.counts.pending >= 50,
        "{:?}",
        report.counts
    );
    assert!(pending.iter().all(|r| r.code.as_deref() == Some("pending")
        && r.message.as_deref().is_some_and(|m| m.contains("deadline"))));
    // The next run, with the budget back to the documented one, does what was left (the
    // next plan would hold only the pending actions: the done ones are in Entra).
    emu.set_throttling(ThrottleConfig::default()).unwrap();
    let left: Vec<Action> = pending
        .iter()
        .map(|r| plan.actions[r.index].clone())
        .collect();
    // A new process: a fresh client, as `ad2entra apply` run again would have.
    let cfg = EmulatorConfig::default();
    let (fresh, _) = graph_support::client(&emu, &cfg);
    let next = apply_plan(
        &test_plan(left),
        &fresh,
        &ApplyOptions {
            extension_app_id: app_id(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(next.is_success(), "{:?}", next.counts);
    let seen = anchors(&client).await;
    assert_eq!(seen.len(), 120);
    assert!(seen.values().all(|c| *c == 1), "no duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_new_requests_and_in_flight_ones_finish() {
    let (emu, client, _) = tenant(20, 10.0, 1.0).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = ApplyOptions {
        extension_app_id: app_id(),
        cancel: Some(cancel.clone()),
        ..Default::default()
    };
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        trigger.cancel();
    });
    let report = apply_plan(&test_plan(users(0..100)), &client, &opts)
        .await
        .unwrap();
    assert!(
        report.counts.pending > 0 && report.counts.failed == 0,
        "{:?}",
        report.counts
    );
    assert!(with_status(&report, ActionStatus::Pending).iter().all(|r| {
        r.message
            .as_deref()
            .is_some_and(|m| m.contains("cancelled"))
    }));
    // What the report says is done is in Entra; nothing else was written after the stop.
    let writes_at_end = emu.stats().writes;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        emu.stats().writes,
        writes_at_end,
        "no write after the apply returned"
    );
    let seen = anchors(&client).await;
    assert_eq!(seen.len(), report.counts.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_abandoned_in_flight_are_pending_and_never_duplicated() {
    let (emu, client, _) = tenant(3000, 150.0, 1.0).await;
    // Every request takes 1.5 s to be answered: at the deadline the first batches are in
    // flight, and the grace is too short for them.
    emu.set_faults(graph_emulator::FaultConfig {
        latency_ms: 1500,
        ..Default::default()
    })
    .unwrap();
    let plan = test_plan(users(0..40));
    let opts = ApplyOptions {
        extension_app_id: app_id(),
        deadline: Some(tokio::time::Instant::now() + Duration::from_millis(300)),
        in_flight_grace: Duration::from_millis(200),
        ..Default::default()
    };
    let report = apply_plan(&plan, &client, &opts).await.unwrap();
    let pending = with_status(&report, ActionStatus::Pending);
    assert_eq!(pending.len(), 40, "{:?}", report.counts);
    assert!(pending.iter().all(|r| {
        r.message
            .as_deref()
            .is_some_and(|m| m.contains("sent and unanswered"))
    }));
    // Whether or not those creates happened, applying them again makes each user once:
    // a create that did happen is found by its anchor.
    emu.set_faults(Default::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let again = apply_plan(
        &plan,
        &client,
        &ApplyOptions {
            extension_app_id: app_id(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !again.has_failures() || again.counts.failed == 0,
        "{:?}",
        again.counts
    );
    assert_eq!(
        again.counts.ok + again.counts.stale,
        40,
        "{:?}",
        again.counts
    );
    let seen = anchors(&client).await;
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|c| *c == 1), "no duplicate");
}

/// Runs the `ad2entra` binary against `emu` (its default app's credentials).
async fn cli(emu: &Emulator, cfg: &EmulatorConfig, args: &[&str]) -> (Option<i32>, String) {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    c.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("AZURE_TENANT_ID", &cfg.tenant_id)
        .env("AZURE_CLIENT_ID", &cfg.client_id)
        .env("AZURE_CLIENT_SECRET", cfg.client_secret.clone().unwrap())
        .env("AZURE_AUTHORITY_HOST", emu.authority_url())
        .env("AD2ENTRA_GRAPH_URL", emu.base_url())
        .env("NO_COLOR", "1");
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_apply_timeout_exits_3_and_the_next_apply_finishes() {
    let mut cfg = EmulatorConfig::default();
    for sku in &mut cfg.skus {
        sku.enabled_units = sku.enabled_units.max(500);
    }
    // 30 writes, then 2 per second: the demo company's few hundred writes take minutes.
    cfg.throttling.app_write_bucket = Some(BucketConfig {
        size: 30,
        window_secs: 15.0,
    });
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let (code, out) = cli(
        &emu,
        &cfg,
        &["init", "--policy", "examples/demo/policy.yaml"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let tmp = tempfile::tempdir().unwrap();
    let report_path = tmp.path().join("report.json");
    let report = report_path.to_str().unwrap();
    let apply = [
        "apply",
        "--policy",
        "examples/demo/policy.yaml",
        "--source-ldif",
        "examples/demo/corp.ldif",
        "--auto-approve",
        "--report",
        report,
    ];
    let mut timed = apply.to_vec();
    timed.extend(["--timeout", "3s"]);
    let started = std::time::Instant::now();
    let (code, out) = cli(&emu, &cfg, &timed).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(out.contains("pending"), "{out}");
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let pending = first["counts"]["pending"].as_u64().unwrap();
    assert!(
        pending > 0 && first["counts"]["failed"] == 0,
        "{}",
        first["counts"]
    );
    let listed = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "pending")
        .count();
    assert_eq!(
        listed as u64, pending,
        "the report lists every pending action"
    );
    // The next apply, with the budget back to the documented one, finishes the work.
    emu.set_throttling(ThrottleConfig::default()).unwrap();
    let (code, out) = cli(&emu, &cfg, &apply).await;
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = cli(
        &emu,
        &cfg,
        &[
            "plan",
            "--policy",
            "examples/demo/policy.yaml",
            "--source-ldif",
            "examples/demo/corp.ldif",
            "--detailed-exitcode",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "converged: {out}");
    // No object was made twice.
    let state = emu.state();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for kind in ["users", "groups"] {
        for o in state[kind].as_array().unwrap() {
            let name = o["userPrincipalName"]
                .as_str()
                .or(o["displayName"].as_str())
                .unwrap_or_default();
            *seen.entry(format!("{kind}:{name}")).or_default() += 1;
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "{dups:?}");
}
