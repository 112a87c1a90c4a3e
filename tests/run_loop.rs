//! `ad2entra run` as a process against the Graph emulator, with the demo company from
//! LDIF: convergence, status and metrics, trigger coalescing, invalid policy revisions,
//! SIGTERM and SIGKILL in the middle of an apply, a lost state file, the deletion gate,
//! plan-only. (Against the Samba DC: tests/run_samba.rs.)

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod run_support;

use e2e_support::Tenant;
use graph_emulator::{EmulatorConfig, FaultConfig};
use run_support::{DemoCopy, Run, condition, last_outcome, metric, runs};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// A tenant with enough E3 seats for the demo company.
async fn tenant() -> Tenant {
    let mut config = EmulatorConfig::default();
    for sku in &mut config.skus {
        sku.enabled_units = sku.enabled_units.max(500);
    }
    Tenant::start_with(config).await
}

/// Users and groups in the emulator, by anchor: each anchor must appear once.
fn owned_counts(t: &Tenant) -> (usize, usize) {
    let state = t.emu.state();
    let ext = format!("extension_{}_ad2entraAnchor", t.app_id.replace('-', ""));
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut count = |list: &Value| {
        let mut n = 0;
        for o in list.as_array().cloned().unwrap_or_default() {
            if let Some(a) = o[ext.as_str()].as_str() {
                *seen.entry(a.to_string()).or_default() += 1;
                n += 1;
            }
        }
        n
    };
    let users = count(&state["users"]);
    let groups = count(&state["groups"]);
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicate objects by anchor: {dupes:?}");
    (users, groups)
}

fn env(t: &Tenant) -> Vec<(String, String)> {
    t.env()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_reports_status_and_metrics_and_stays_in_sync() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let run = Run::start(&demo.args(&[]), &env(&t));
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "applied", "{s:#}");
    assert_eq!(condition(&s, "Ready").0, "True");
    assert_eq!(condition(&s, "Stalled").0, "False");
    let applied_rev = s["lastAppliedRevision"].as_str().unwrap().to_string();
    assert!(applied_rev.starts_with("sha256:"), "{applied_rev}");
    assert_eq!(s["runningRevision"], applied_rev);
    assert!(
        s["objectErrorCount"].as_u64().unwrap() > 0,
        "the demo has bad objects"
    );
    assert!(
        s["objectErrors"][0]["object"]
            .as_str()
            .unwrap()
            .contains("DC=corp")
    );
    let (users, groups) = owned_counts(&t);
    assert!(users > 200 && groups > 10, "{users} users, {groups} groups");
    assert_eq!(run.get("/readyz").await.0, 200);
    assert_eq!(run.get("/healthz").await.0, 200);

    // The plan was logged before the writes, inside the cycle's span (cycle id, commit).
    let plan_logs = run.log_events("plan");
    assert_eq!(plan_logs.len(), 1);
    let cycle_id = s["lastCycle"]["id"].as_str().unwrap();
    assert_eq!(plan_logs[0]["span"]["cycle"], cycle_id);
    assert_eq!(plan_logs[0]["span"]["commit"], applied_rev);
    let actions = run.log_events("planned action");
    assert!(actions.len() > 250, "{} actions logged", actions.len());
    let logs = run.logs();
    let plan_at = logs.find("\"plan\"").unwrap();
    let applied_at = logs.find("\"applied\"").unwrap();
    assert!(
        plan_at < applied_at,
        "the plan is logged before apply reports"
    );

    let m1 = run.metrics().await;
    assert_eq!(
        metric(
            &m1,
            "ad2entra_cycles_total",
            &[("kind", "full"), ("result", "applied")]
        ),
        Some(1.0)
    );
    let ok_responses = metric(&m1, "ad2entra_graph_requests_total", &[("status", "2xx")]).unwrap();
    assert!(ok_responses > 5.0, "{m1}");
    let created = metric(
        &m1,
        "ad2entra_actions_total",
        &[("operation", "create"), ("result", "ok")],
    )
    .unwrap();
    assert!(created > 250.0);

    // A manual sync: nothing left to do.
    let writes = t.writes();
    assert_eq!(run.sync(false, None).await, 202);
    let s = run.wait_cycles(2, LONG).await;
    assert_eq!(last_outcome(&s), "in-sync", "{s:#}");
    assert_eq!(t.writes(), writes, "an in-sync cycle writes nothing");
    let m2 = run.metrics().await;
    assert_eq!(
        metric(&m2, "ad2entra_cycles_total", &[("result", "in-sync")]),
        Some(1.0)
    );
    assert_eq!(
        metric(&m2, "ad2entra_triggers_total", &[("reason", "api")]),
        Some(1.0)
    );
    assert!(metric(&m2, "ad2entra_last_success_timestamp_seconds", &[]).unwrap() > 1.7e9);
    assert!(m2.contains(&format!("revision=\"{applied_rev}\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_triggers_during_a_cycle_cause_exactly_one_more_cycle() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let run = Run::start(&demo.args(&[]), &env(&t));
    run.wait_cycles(1, LONG).await;
    // Slow Graph down so a cycle lasts long enough to trigger twice inside it.
    t.emu
        .set_faults(FaultConfig {
            latency_ms: 400,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(run.sync(false, None).await, 202);
    run.wait_for("a cycle running", LONG, |s| !s["currentCycle"].is_null())
        .await;
    assert_eq!(run.sync(false, None).await, 202);
    assert_eq!(run.sync(true, None).await, 202);
    // Two more cycles complete (the running one and one coalesced), then nothing.
    let s = run.wait_cycles(3, LONG).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s2 = run.status().await;
    assert!(s2["currentCycle"].is_null(), "no further cycle: {s2:#}");
    assert_eq!(runs(&s2).len(), 3, "{s:#}");
    assert!(
        runs(&s2)[0]["trigger"].as_str().unwrap().contains("api"),
        "{s2:#}"
    );
    assert_eq!(
        runs(&s2)[0]["kind"],
        "full",
        "the coalesced cycle kept ?full=true"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_revision_applies_nothing_and_a_fix_recovers() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let run = Run::start(&demo.args(&["--git-poll", "1s"]), &env(&t));
    let s = run.wait_cycles(1, LONG).await;
    let good = s["lastAppliedRevision"].as_str().unwrap().to_string();
    let original = std::fs::read_to_string(demo.policy_file()).unwrap();

    // A typo in a key: the schema check names file:line:col and the code.
    let broken = original.replace("  users:\n    includeOUs:", "  users:\n    includeOUz:");
    assert_ne!(broken, original);
    std::fs::write(demo.policy_file(), &broken).unwrap();
    let s = run
        .wait_for("the invalid revision in status", LONG, |s| {
            s["lastAttemptedRevision"]["valid"] == false
        })
        .await;
    let d = &s["lastAttemptedRevision"]["diagnostics"][0];
    assert!(
        d["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with("policy.yaml"),
        "{d}"
    );
    assert!(d["location"]["line"].as_u64().unwrap() > 1, "{d}");
    assert!(!d["code"].as_str().unwrap().is_empty(), "{d}");
    assert_eq!(s["lastAppliedRevision"], good);
    assert_eq!(s["runningRevision"], good);
    let (ready, reason) = condition(&s, "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "PolicyInvalid")
    );
    assert_eq!(run.get("/readyz").await.0, 503);
    // The last good policy keeps running.
    let before = runs(&s).len();
    run.sync(false, None).await;
    let s = run.wait_cycles(before + 1, LONG).await;
    assert_eq!(last_outcome(&s), "in-sync");
    assert_eq!(s["lastCycle"]["policyHash"], good);

    // A fixing revision (a real change: a protected pattern) recovers on the next poll.
    let fixed = original.replace(
        "protect: [\"admin@*\", \"breakglass-*\"]",
        "protect: [\"admin@*\", \"breakglass-*\", \"ceo@*\"]",
    );
    assert_ne!(fixed, original);
    std::fs::write(demo.policy_file(), &fixed).unwrap();
    let s = run
        .wait_for("the fixed revision applied", LONG, |s| {
            s["lastAttemptedRevision"]["valid"] == true
                && s["lastAppliedRevision"] != good
                && s["currentCycle"].is_null()
        })
        .await;
    assert_eq!(condition(&s, "Ready").0, "True", "{s:#}");
    assert_eq!(runs(&s)[0]["trigger"], "policy-change");
    assert_eq!(runs(&s)[0]["kind"], "full");
    assert_eq!(
        metric(
            &run.metrics().await,
            "ad2entra_policy_invalid_revisions_total",
            &[]
        ),
        Some(1.0)
    );
}

/// Starts a reconciler on a fresh tenant with slow writes and waits until it is applying.
async fn start_applying(t: &Tenant, demo: &DemoCopy, extra: &[&str]) -> Run {
    t.emu
        .set_faults(FaultConfig {
            latency_ms: 150,
            ..Default::default()
        })
        .unwrap();
    let run = Run::start(&demo.args(extra), &env(t));
    run.wait_for("the first apply under way", LONG, |s| {
        s["currentCycle"]["phase"] == "applying"
    })
    .await;
    // Let some batches land.
    tokio::time::sleep(Duration::from_millis(600)).await;
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_apply_exits_0_and_the_next_start_converges() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let mut run = start_applying(&t, &demo, &["--shutdown-grace", "10s"]).await;
    let writes_before = t.writes();
    run.signal("TERM");
    let status = run.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}\n{}", run.logs());
    assert!(run.logs().contains("SIGTERM"));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.state()).unwrap()).unwrap();
    let last = state["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "interrupted", "{last:#}");
    assert!(t.writes() > writes_before || t.writes() > 0);

    t.emu.set_faults(FaultConfig::default()).unwrap();
    let run = Run::start(&demo.args(&[]), &env(&t));
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(condition(&s, "Ready").0, "True", "{s:#}");
    run.sync(false, None).await;
    let s = run.wait_cycles(2, LONG).await;
    assert_eq!(last_outcome(&s), "in-sync", "{s:#}");
    owned_counts(&t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_apply_then_restart_converges_without_duplicates() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let mut run = start_applying(&t, &demo, &[]).await;
    run.signal("KILL");
    run.wait_exit(Duration::from_secs(10));
    let (users_mid, _) = owned_counts(&t);
    assert!(users_mid > 0, "some writes landed before the kill");

    t.emu.set_faults(FaultConfig::default()).unwrap();
    let run = Run::start(&demo.args(&[]), &env(&t));
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(condition(&s, "Ready").0, "True", "{s:#}");
    run.sync(true, None).await;
    let s = run.wait_cycles(2, LONG).await;
    assert_eq!(last_outcome(&s), "in-sync", "no lost write: {s:#}");
    let (users, groups) = owned_counts(&t);
    let plan = &s["lastPlan"];
    assert_eq!(users as u64, plan["inScopeUsers"].as_u64().unwrap());
    assert_eq!(groups as u64, plan["inScopeGroups"].as_u64().unwrap());
}

/// Groups have no unique property: a group created just before a `kill -9` and still
/// hidden by Graph's replication lag when the next process reads Entra would be created
/// again. The journal of creates sent (next to the state file) makes the next apply
/// look it up once the lag has passed instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_replication_lag_makes_no_duplicate_group() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let lagged = FaultConfig {
        latency_ms: 150,
        replication_lag_ms: 6_000,
        ..Default::default()
    };
    t.emu.set_faults(lagged.clone()).unwrap();
    let mut run = Run::start(&demo.args(&[]), &env(&t));
    let groups_created = || {
        let ext = format!("extension_{}_ad2entraAnchor", t.app_id.replace('-', ""));
        let state = t.emu.state();
        let groups = state["groups"].as_array().cloned().unwrap_or_default();
        groups
            .iter()
            .filter(|g| g[ext.as_str()].is_string())
            .count()
    };
    let deadline = std::time::Instant::now() + LONG;
    while groups_created() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no group created\n{}",
            run.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.signal("KILL");
    run.wait_exit(Duration::from_secs(10));
    assert!(groups_created() > 0);
    let journal = demo.state().with_file_name("state.json.creates");
    assert!(
        journal.exists(),
        "creates were journaled before they were sent"
    );

    // Restart at once: the new groups are still invisible to reads.
    let lagged_before = t.emu.stats().faults.lagged_reads;
    let run = Run::start(&demo.args(&[]), &env(&t));
    run.wait_cycles(1, LONG).await;
    assert!(
        t.emu.stats().faults.lagged_reads > lagged_before,
        "the restarted cycle read while objects were hidden by the lag\n{}",
        run.logs()
    );
    t.emu.set_faults(FaultConfig::default()).unwrap();
    run.sync(true, None).await;
    let s = run.wait_cycles(2, LONG).await;
    assert_eq!(last_outcome(&s), "in-sync", "{s:#}\n{}", run.logs());
    let (_, groups) = owned_counts(&t);
    assert_eq!(
        groups as u64,
        s["lastPlan"]["inScopeGroups"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_corrupt_state_file_costs_one_full_cycle_and_no_write() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let mut run = Run::start(&demo.args(&[]), &env(&t));
    run.wait_cycles(1, LONG).await;
    run.signal("TERM");
    assert!(run.wait_exit(Duration::from_secs(20)).success());
    let writes = t.writes();

    for damage in ["corrupt", "delete"] {
        match damage {
            "corrupt" => {
                std::fs::write(demo.state(), "{\"formatVersion\": 2, \"runs\": [").unwrap()
            }
            _ => std::fs::remove_file(demo.state()).unwrap(),
        }
        let mut run = Run::start(&demo.args(&[]), &env(&t));
        let s = run.wait_cycles(1, LONG).await;
        assert_eq!(s["lastCycle"]["kind"], "full", "{damage}: {s:#}");
        assert_eq!(last_outcome(&s), "in-sync", "{damage}: {s:#}");
        assert_eq!(t.writes(), writes, "{damage}: nothing written");
        if damage == "corrupt" {
            assert!(run.logs().contains("set aside"), "{}", run.logs());
            let aside = std::fs::read_dir(demo.dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
            assert!(aside, "the corrupt file is kept for a person to look at");
        }
        run.signal("TERM");
        assert!(run.wait_exit(Duration::from_secs(20)).success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_gate_stalls_without_writing() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let run = Run::start(&demo.args(&[]), &env(&t));
    run.wait_cycles(1, LONG).await;
    let writes = t.writes();

    // 60 users vanish from the export: far over the default gate.
    let ldif = std::fs::read_to_string(demo.ldif()).unwrap();
    let mut kept = Vec::new();
    let mut dropped = 0;
    for record in ldif.split("\n\n") {
        if dropped < 60 && record.contains("OU=Staff") && record.contains("objectClass: user") {
            dropped += 1;
            continue;
        }
        kept.push(record);
    }
    assert_eq!(dropped, 60);
    std::fs::write(demo.ldif(), kept.join("\n\n")).unwrap();
    run.sync(false, None).await;
    let s = run.wait_cycles(2, LONG).await;
    assert_eq!(last_outcome(&s), "stalled", "{s:#}");
    let (stalled, reason) = condition(&s, "Stalled");
    assert_eq!(
        (stalled.as_str(), reason.as_str()),
        ("True", "DeletionGate")
    );
    assert_eq!(t.writes(), writes, "nothing written when the gate trips");
    let m = run.metrics().await;
    let blocked = metric(&m, "ad2entra_blocked_deprovisions", &[]).unwrap();
    assert!(blocked >= 30.0, "{blocked} blocked\n{s:#}");
    // A manual trigger runs again (and stalls again: the cause is still there).
    run.sync(false, None).await;
    let s = run.wait_cycles(3, LONG).await;
    assert_eq!(last_outcome(&s), "stalled");
    assert_eq!(t.writes(), writes);
    assert_eq!(run.get("/readyz").await.0, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_only_plans_and_logs_but_never_writes() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let writes = t.writes();
    let run = Run::start(&demo.args(&["--plan-only"]), &env(&t));
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "planned", "{s:#}");
    assert_eq!(s["planOnly"], true);
    assert!(s["lastPlan"]["create"].as_u64().unwrap() > 200);
    assert_eq!(t.writes(), writes);
    assert!(run.log_events("planned action").len() > 200);
    assert!(
        s["lastAppliedRevision"].is_null(),
        "plan-only applies nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_needs_the_trigger_token_off_loopback_and_never_shows_it() {
    let t = tenant().await;
    let demo = DemoCopy::new();
    let mut e = env(&t);
    let token = "trigger-token-0123456789";
    e.push(("AD2ENTRA_TRIGGER_TOKEN".into(), token.into()));
    let mut args = demo.args(&["--plan-only"]);
    args.extend(["--listen".to_string(), "0.0.0.0:0".to_string()]);
    let run = Run::start(&args, &e);
    run.wait_cycles(1, LONG).await;
    assert_eq!(run.sync(false, None).await, 401);
    assert_eq!(run.sync(false, Some("wrong")).await, 401);
    assert_eq!(run.sync(false, Some(token)).await, 202);
    run.wait_cycles(2, LONG).await;
    let status = run.get("/status").await.1;
    assert!(!status.contains(token));
    assert!(!run.logs().contains(token));
    assert!(!run.metrics().await.contains(token));
}
