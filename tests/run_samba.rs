//! `ad2entra run` against the real Samba AD DC (scripts/test-dc.sh) and the Graph
//! emulator: an AD change reaches Entra through a change notification without waiting
//! for the interval, a delta cycle reads only what changed, and LDAP going away stops
//! the cycles (nothing deleted or disabled) until it comes back by itself.
//!
//!     scripts/test-dc.sh
//!     AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env cargo test --test run_samba

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod run_support;

use e2e_support::*;
use run_support::{Relay, Run, condition, last_outcome, runs};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(90);

/// A lab with the standard staff, a tenant, and the e2e policy (1 h interval, so only
/// notifications and manual triggers start cycles), optionally through a relay.
async fn setup(dc: &dc::Dc, relay: Option<&Relay>) -> (Lab, Staff, Tenant, E2ePolicy) {
    let mut lab = Lab::new(dc).await;
    let staff = staff(&mut lab).await;
    let tenant = Tenant::start().await;
    let mut text = lab.policy_text(50);
    if let Some(r) = relay {
        text = text.replace(&dc.ldaps_url, &format!("ldaps://{}", r.addr));
    }
    text.push_str("\nschedule:\n  interval: 1h\n");
    let policy = E2ePolicy::write(&text);
    (lab, staff, tenant, policy)
}

fn env(tenant: &Tenant, dc: &dc::Dc) -> Vec<(String, String)> {
    let mut e = tenant.env();
    e.push((PASSWORD_ENV.to_string(), dc.password.clone()));
    e
}

fn args(policy: &E2ePolicy, state: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "--policy".to_string(),
        policy.path_str().to_string(),
        "--state".to_string(),
        state.display().to_string(),
        "--debounce".to_string(),
        "1s".to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ad_change_reaches_entra_through_a_notification_and_a_delta_cycle() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, staff, tenant, policy) = setup(&dc, None).await;
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(
        &args(&policy, &dir.path().join("state.json"), &[]),
        &env(&tenant, &dc),
    );
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "applied", "{s:#}");
    run.wait_for("the AD watcher", LONG, |s| {
        s["adWatch"]["state"] == "watching"
    })
    .await;
    assert_eq!(entra_user(&tenant, &staff.ann.upn)["department"], "Sales");

    // One attribute change and one membership change; the interval is an hour away.
    let before = tenant.emu.stats().requests;
    let t0 = Instant::now();
    lab.replace(&staff.ann.dn, "department", "Marketing").await;
    lab.add_member(&staff.team, &staff.bob.dn).await;
    let s = run
        .wait_for("the delta cycle after the notification", LONG, |s| {
            runs(s).len() >= 2 && s["currentCycle"].is_null()
        })
        .await;
    let latency = t0.elapsed();
    let r = &runs(&s)[0];
    assert_eq!(r["trigger"], "ad-change", "{s:#}");
    assert_eq!(r["kind"], "delta", "{s:#}");
    assert_eq!(r["outcome"], "applied", "{s:#}");
    // Only the changed entries were read: Ann and the group (not the 10+ objects of the lab).
    let entries = r["ldapEntries"].as_u64().unwrap();
    assert!(
        (1..=4).contains(&entries),
        "{entries} LDAP entries read: {s:#}"
    );
    assert_eq!(
        entra_user(&tenant, &staff.ann.upn)["department"],
        "Marketing"
    );
    assert!(entra_members(&tenant, "Team").contains(&staff.bob.upn));
    assert!(
        latency < Duration::from_secs(20),
        "AD → Entra took {latency:?}"
    );
    eprintln!("AD change → Entra write: {latency:?}");
    // Entra was read by Graph delta query, not by listing users, groups and members.
    let after = tenant.emu.stats().requests;
    let grew = |k: &str| after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0);
    assert_eq!(grew("GET /users"), 0, "no full user listing: {after:#?}");
    assert_eq!(grew("GET /groups"), 0, "no full group listing");
    assert_eq!(grew("GET /groups/{id}/members"), 0, "no member listing");
    assert!(
        grew("GET /users/delta") >= 1 && grew("GET /groups/delta") >= 1,
        "{after:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_unavailable_fails_cycles_deletes_nothing_and_recovers_by_itself() {
    let Some(dc) = dc::dc() else { return };
    let upstream = dc.ldaps_url.trim_start_matches("ldaps://").to_string();
    let relay = Relay::start(upstream).await;
    let (_lab, _staff, tenant, policy) = setup(&dc, Some(&relay)).await;
    let dir = tempfile::tempdir().unwrap();
    let run = Run::start(
        &args(&policy, &dir.path().join("state.json"), &["--no-watch"]),
        &env(&tenant, &dc),
    );
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "applied", "{s:#}");
    let writes = tenant.writes();

    relay.down();
    run.sync(true, None).await;
    let s = run
        .wait_for("a failed cycle", LONG, |s| last_outcome(s) == "failed")
        .await;
    let (ready, reason) = condition(&s, "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "LdapUnavailable"),
        "{s:#}"
    );
    assert_eq!(condition(&s, "Reconciling").1, "RetryScheduled");
    assert_eq!(run.get("/readyz").await.0, 503);
    // It retries by itself (backoff), still failing, and never writes.
    let s = run
        .wait_for("a retry", LONG, |s| {
            runs(s).iter().filter(|r| r["outcome"] == "failed").count() >= 2
        })
        .await;
    assert!(runs(&s).iter().any(|r| r["trigger"] == "retry"), "{s:#}");
    assert_eq!(
        tenant.writes(),
        writes,
        "nothing deleted or disabled while LDAP is down"
    );

    relay.up();
    let s = run
        .wait_for("recovery", LONG, |s| condition(s, "Ready").0 == "True")
        .await;
    assert_eq!(last_outcome(&s), "in-sync", "{s:#}");
    assert_eq!(tenant.writes(), writes);
    assert_eq!(run.get("/readyz").await.0, 200);
}
