//! End to end: the real Samba AD DC started by `scripts/test-dc.sh` → ad2entra → the
//! in-process Graph emulator. Each test makes its own OU subtree on the DC (deleted
//! afterwards, also when the test fails), renders tests/data/e2e/policy.yaml for it, and
//! starts its own emulator, so the tests run in parallel and re-run on one DC.
//!
//!     scripts/test-dc.sh
//!     AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env cargo test --test e2e_samba
//!
//! Without AD2ENTRA_TEST_DC_ENV the tests fail; AD2ENTRA_SKIP_DC_TESTS=1 skips them.

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;

use ad2entra::ad::ldap::LdapError;
use ad2entra::model::target::ExtensionNames;
use ad2entra::plan::{Operation, Plan};
use dc::Dc;
use e2e_support::*;
use serde_json::{Value, json};

/// Lab + fixture + tenant, converged with a policy whose delete gate is `pct` percent.
async fn converged(dc: &Dc, pct: u32) -> (Lab, Staff, Tenant, E2ePolicy) {
    let mut lab = Lab::new(dc).await;
    let staff = staff(&mut lab).await;
    let tenant = Tenant::start().await;
    let policy = E2ePolicy::write(&lab.policy_text(pct));
    converge(&policy, dc, &tenant).await;
    (lab, staff, tenant, policy)
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The only action of `plan`, which must be `op` on `name`.
fn only_action<'a>(plan: &'a Plan, op: Operation, name: &str) -> &'a ad2entra::plan::Action {
    assert_eq!(
        ops(plan),
        expect_ops(&[(op.as_str(), name)]),
        "{}",
        show(plan)
    );
    &plan.actions[0]
}

fn patch_json(a: &ad2entra::plan::Action) -> Value {
    serde_json::to_value(&a.patch).expect("patch as JSON")
}

fn member_names(a: &ad2entra::plan::Action) -> Vec<String> {
    let mut v: Vec<String> = a.members.iter().map(|m| m.name.clone()).collect();
    v.sort();
    v
}

// ------------------------------------------------------------------ 1. converge

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_plan_apply_then_plan_is_empty() {
    let Some(dc) = dc::dc() else { return };
    let mut lab = Lab::new(&dc).await;
    let s = staff(&mut lab).await;
    let tenant = Tenant::start().await;
    let policy = E2ePolicy::write(&lab.policy_text(5));

    // The first plan creates exactly the in-scope objects and Team's membership.
    let first = plan_now(&policy, &dc, &tenant).await;
    assert_eq!(
        ops(&first),
        expect_ops(&[
            ("create", &s.ann.upn),
            ("create", &s.bob.upn),
            ("create", &s.cai.upn),
            ("create", "Team"),
            ("add-members", "Team"),
        ]),
        "{}",
        show(&first)
    );
    assert!(first.blocked.is_empty(), "{}", show(&first));
    let add = first
        .actions
        .iter()
        .find(|a| a.op == Operation::AddMembers)
        .unwrap();
    assert_eq!(member_names(add), sorted(&[&s.ann.upn, &s.cai.upn]));
    assert_eq!(first.summary.in_scope_users, 3);
    assert_eq!(first.summary.in_scope_groups, 1);
    assert!(
        first.actions.iter().all(|a| a.object.name != s.olga.upn),
        "Olga is not in an included OU"
    );

    // Through the binary: changes pending → exit 2; apply; then no changes → exit 0.
    let env = tenant.env();
    let p = policy.path_str();
    let r = run_bin(&dc, &["plan", "--policy", p, "--detailed-exitcode"], &env).await;
    assert_eq!(r.code, Some(2), "{}", r.text());
    assert!(r.stdout.contains(&s.ann.upn), "{}", r.text());
    let r = run_bin(&dc, &["apply", "--policy", p, "--auto-approve"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());

    let second = plan_now(&policy, &dc, &tenant).await;
    assert!(second.is_empty(), "{}", show(&second));
    let r = run_bin(&dc, &["plan", "--policy", p, "--detailed-exitcode"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());

    // Entra holds what AD says, anchored on the objectGUID.
    let source = read_source(&policy.loaded, &dc).await;
    let ann_src = source
        .objects
        .iter()
        .find(|o| o.dn.as_str().eq_ignore_ascii_case(&s.ann.dn))
        .expect("Ann in the LDAP read");
    let ann = entra_user(&tenant, &s.ann.upn);
    assert_eq!(
        ann["onPremisesImmutableId"].as_str(),
        Some(ann_src.guid.anchor().as_str())
    );
    assert_eq!(ann["department"], json!("Sales"));
    assert_eq!(ann["displayName"], json!("Ann Archer"));
    assert_eq!(ann["accountEnabled"], json!(true));
    assert_eq!(
        entra_members(&tenant, "Team"),
        sorted(&[&s.ann.upn, &s.cai.upn])
    );
}

// ------------------------------------------------------------------ 2. changes in AD

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_change_updates_exactly_that_attribute() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;
    lab.replace(&s.ann.dn, "department", "Finance").await;

    let plan = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&plan, Operation::Update, &s.ann.upn);
    assert_eq!(
        patch_json(a),
        json!([{"op": "replace", "path": "/department", "value": "Finance"}])
    );
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(
        entra_user(&tenant, &s.ann.upn)["department"],
        json!("Finance")
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
}

/// Graph's documented rules on real AD data (docs/graph-rules.md): a new user with an
/// accented mail, and an owned user given a usageLocation that is not a country code, are
/// left out with their diagnostics; the owned one keeps its state and membership; the
/// rest converges against the emulator, which enforces the same rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_graph_refuses_are_left_out_and_the_rest_converges() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;
    let dora = lab.add_user("Sales", "dor", "Dora", "Dürr", "Sales").await;
    lab.replace(&dora.dn, "mail", "dora.dürr@corp.example.com")
        .await;
    lab.replace(&s.ann.dn, "c", "UK").await;
    lab.replace(&s.bob.dn, "department", "Finance").await;

    let plan = plan_now(&policy, &dc, &tenant).await;
    assert_eq!(
        ops(&plan),
        expect_ops(&[("update", &s.bob.upn)]),
        "{}",
        show(&plan)
    );
    let about = |code: &str, dn: &str| {
        plan.diagnostics.iter().any(|d| {
            d.code == code
                && d.object
                    .as_deref()
                    .is_some_and(|o| o.eq_ignore_ascii_case(dn))
        })
    };
    assert!(
        about("graph-rule-accented-mail", &dora.dn),
        "{}",
        show(&plan)
    );
    assert!(
        about("graph-rule-usage-location", &s.ann.dn),
        "{}",
        show(&plan)
    );

    tenant.apply(&policy.loaded, &plan).await;
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
    assert_eq!(again.summary.errors, 2, "{}", show(&again));
    let ann = entra_user(&tenant, &s.ann.upn);
    assert_eq!(ann["usageLocation"], json!("US"));
    assert_eq!(ann["accountEnabled"], json!(true));
    assert_eq!(
        entra_members(&tenant, "Team"),
        sorted(&[&s.ann.upn, &s.cai.upn])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_between_included_ous_plans_nothing() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;
    let writes = tenant.writes();
    let moved = lab.move_to(&s.bob.dn, "Engineering").await;

    let source = read_source(&policy.loaded, &dc).await;
    assert!(
        source
            .objects
            .iter()
            .any(|o| o.dn.as_str().eq_ignore_ascii_case(&moved)),
        "Bob is at {moved} in the LDAP read"
    );
    // No mapping reads the DN: the move changes nothing in Entra.
    let plan = plan_now(&policy, &dc, &tenant).await;
    assert!(plan.is_empty(), "{}", show(&plan));
    assert!(plan.blocked.is_empty(), "{}", show(&plan));
    assert_eq!(tenant.writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_an_included_ou_deletes_nothing() {
    let Some(dc) = dc::dc() else { return };
    // Gate at 100%: only the source-failure guard stands between the rename and
    // disabling everyone in the renamed OU.
    let (mut lab, s, tenant, policy) = converged(&dc, 100).await;
    let writes = tenant.writes();
    let state = tenant.emu.state();
    let old_dn = lab.dn("OU=Sales");
    let new_dn = lab.rename_ou("Sales", "Sales Renamed").await;

    // The CLI refuses to plan from a policy whose include OU no longer resolves…
    let env = tenant.env();
    let p = policy.path_str();
    let r = run_bin(&dc, &["plan", "--policy", p, "--detailed-exitcode"], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("no longer resolve") && r.stderr.contains(&old_dn),
        "{}",
        r.text()
    );
    assert!(!r.stdout.contains("disable"), "{}", r.text());
    // …and so never applies a disable or delete.
    let r = run_bin(&dc, &["apply", "--policy", p, "--auto-approve"], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert_eq!(tenant.writes(), writes, "apply wrote after a failed read");
    assert_eq!(tenant.emu.state(), state);
    for u in [&s.ann, &s.bob] {
        assert_eq!(entra_user(&tenant, &u.upn)["accountEnabled"], json!(true));
    }

    // The policy following the rename (new DN) plans nothing: same objects, same anchors.
    let renamed = E2ePolicy::write(
        &lab.policy_text(100)
            .replace(&format!("OU=Sales,{}", lab.root), &new_dn),
    );
    let plan = plan_now(&renamed, &dc, &tenant).await;
    assert!(plan.is_empty(), "{}", show(&plan));
    assert!(plan.blocked.is_empty(), "{}", show(&plan));
    assert_eq!(plan.summary.in_scope_users, 3);
    let r = run_bin(
        &dc,
        &[
            "plan",
            "--policy",
            renamed.path_str(),
            "--detailed-exitcode",
        ],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert_eq!(tenant.writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_in_ad_disables_in_entra() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;
    lab.replace(&s.ann.dn, "userAccountControl", "514").await;

    let plan = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&plan, Operation::Update, &s.ann.upn);
    assert_eq!(
        patch_json(a),
        json!([{"op": "replace", "path": "/accountEnabled", "value": false}])
    );
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(
        entra_user(&tenant, &s.ann.upn)["accountEnabled"],
        json!(false)
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_disables_it_behind_the_delete_gate() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;
    lab.delete(&s.bob.dn).await;

    // Default gate (5%): 1 of 4 owned objects is 25%: blocked, with the numbers.
    let gated = plan_now(&policy, &dc, &tenant).await;
    assert!(gated.is_empty(), "{}", show(&gated));
    assert_eq!(gated.summary.owned, 4);
    let blocked: Vec<(String, String, String)> = gated
        .blocked
        .iter()
        .map(|b| {
            (
                b.action.op.as_str().to_string(),
                b.action.object.name.clone(),
                b.code.clone(),
            )
        })
        .collect();
    assert_eq!(
        blocked,
        vec![(
            "disable".to_string(),
            s.bob.upn.clone(),
            "delete-gate-percent".to_string()
        )],
        "{}",
        show(&gated)
    );
    assert!(
        gated.blocked[0]
            .reason
            .contains("1 disables/deletes are 25.0% of 4 owned objects"),
        "{}",
        gated.blocked[0].reason
    );

    // Gate at 100%: disable now (disable-then-delete), marked with the orphan time.
    let open = E2ePolicy::write(&lab.policy_text(100));
    let plan = plan_now(&open, &dc, &tenant).await;
    let a = only_action(&plan, Operation::Disable, &s.bob.upn);
    let ext = ExtensionNames::for_app(&tenant.app_id);
    let patch = patch_json(a);
    let ops: Vec<(&str, &str)> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["op"].as_str().unwrap(), p["path"].as_str().unwrap()))
        .collect();
    let orphaned_path = format!("/{}", ext.orphaned_at);
    assert_eq!(
        ops,
        vec![
            ("replace", "/accountEnabled"),
            ("add", orphaned_path.as_str())
        ],
        "{patch}"
    );
    assert_eq!(patch[0]["value"], json!(false));
    assert!(
        chrono::DateTime::parse_from_rfc3339(patch[1]["value"].as_str().unwrap()).is_ok(),
        "{patch}"
    );
    tenant.apply(&open.loaded, &plan).await;
    let bob = entra_user(&tenant, &s.bob.upn);
    assert_eq!(bob["accountEnabled"], json!(false), "disabled, not deleted");
    // Within the grace period nothing more happens.
    let again = plan_now(&open, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
    assert!(again.blocked.is_empty(), "{}", show(&again));

    // After the grace period (7 days) the user is deleted.
    let later = chrono::Utc::now() + chrono::Duration::days(8);
    let source = read_source(&open.loaded, &dc).await;
    let target = tenant.read(&open.loaded).await;
    let plan = ad2entra::plan::plan(&open.loaded, &source, &target, later).expect("plan");
    only_action(&plan, Operation::Delete, &s.bob.upn);
    tenant.apply(&open.loaded, &plan).await;
    let state = tenant.emu.state();
    let upns = |key: &str| -> Vec<String> {
        state[key]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["userPrincipalName"].as_str().map(str::to_string))
            .collect()
    };
    assert!(!upns("users").contains(&s.bob.upn), "{state:#}");
    assert!(
        upns("deletedUsers").contains(&s.bob.upn),
        "soft-deleted: {state:#}"
    );
    let target = tenant.read(&open.loaded).await;
    let after = ad2entra::plan::plan(&open.loaded, &source, &target, later).expect("plan");
    assert!(after.is_empty(), "{}", show(&after));
    assert!(after.blocked.is_empty(), "{}", show(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_member_added_then_removed() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 5).await;

    lab.add_member(&s.team, &s.bob.dn).await;
    let plan = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&plan, Operation::AddMembers, "Team");
    assert_eq!(member_names(a), vec![s.bob.upn.clone()]);
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(
        entra_members(&tenant, "Team"),
        sorted(&[&s.ann.upn, &s.bob.upn, &s.cai.upn])
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));

    lab.remove_member(&s.team, &s.ann.dn).await;
    let plan = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&plan, Operation::RemoveMembers, "Team");
    assert_eq!(member_names(a), vec![s.ann.upn.clone()]);
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(
        entra_members(&tenant, "Team"),
        sorted(&[&s.bob.upn, &s.cai.upn])
    );
    // Ann herself is untouched.
    assert_eq!(
        entra_user(&tenant, &s.ann.upn)["accountEnabled"],
        json!(true)
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_moved_out_of_scope_is_disabled() {
    let Some(dc) = dc::dc() else { return };
    let (mut lab, s, tenant, policy) = converged(&dc, 100).await;
    // Bob is in no group: the move out of scope is exactly one disable.
    lab.move_to(&s.bob.dn, "Out").await;
    let plan = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&plan, Operation::Disable, &s.bob.upn);
    assert_eq!(
        patch_json(a)[0],
        json!({"op": "replace", "path": "/accountEnabled", "value": false})
    );
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(
        entra_user(&tenant, &s.bob.upn)["accountEnabled"],
        json!(false)
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));

    // Back in scope: enabled again and the orphan mark cleared, nothing else.
    let out_dn = lab.dn(&format!("CN={},OU=Out", s.bob.cn));
    lab.move_to(&out_dn, "Sales").await;
    let back = plan_now(&policy, &dc, &tenant).await;
    let a = only_action(&back, Operation::Update, &s.bob.upn);
    let orphaned = ExtensionNames::for_app(&tenant.app_id).orphaned_at;
    assert_eq!(
        patch_json(a),
        json!([
            {"op": "replace", "path": "/accountEnabled", "value": true},
            {"op": "remove", "path": format!("/{orphaned}")}
        ])
    );
    tenant.apply(&policy.loaded, &back).await;
    assert_eq!(
        entra_user(&tenant, &s.bob.upn)["accountEnabled"],
        json!(true)
    );
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));

    // Cai is in Team: leaving scope also leaves the synced group.
    lab.move_to(&s.cai.dn, "Out").await;
    let plan = plan_now(&policy, &dc, &tenant).await;
    assert_eq!(
        ops(&plan),
        expect_ops(&[("disable", &s.cai.upn), ("remove-members", "Team")]),
        "{}",
        show(&plan)
    );
    let rm = plan
        .actions
        .iter()
        .find(|a| a.op == Operation::RemoveMembers)
        .unwrap();
    assert_eq!(member_names(rm), vec![s.cai.upn.clone()]);
    tenant.apply(&policy.loaded, &plan).await;
    assert_eq!(entra_members(&tenant, "Team"), vec![s.ann.upn.clone()]);
    let again = plan_now(&policy, &dc, &tenant).await;
    assert!(again.is_empty(), "{}", show(&again));
}

// ------------------------------------------------------------------ 3. source failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_down_makes_no_plan_and_writes_nothing() {
    let Some(dc) = dc::dc() else { return };
    let (lab, _s, tenant, _policy) = converged(&dc, 100).await;
    let writes = tenant.writes();
    let state = tenant.emu.state();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down_url = format!("ldaps://127.0.0.1:{port}");
    let down = E2ePolicy::write(&lab.policy_text(100).replace(&dc.ldaps_url, &down_url));

    let env = tenant.env();
    let p = down.path_str();
    let r = run_bin(&dc, &["plan", "--policy", p, "--detailed-exitcode"], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains(&down_url), "{}", r.text());
    assert!(r.stdout.trim().is_empty(), "no plan printed: {}", r.text());
    let r = run_bin(&dc, &["apply", "--policy", p, "--auto-approve"], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert_eq!(tenant.writes(), writes);
    assert_eq!(tenant.emu.state(), state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_mid_read_makes_no_plan_and_writes_nothing() {
    let Some(dc) = dc::dc() else { return };
    let (lab, _s, tenant, _policy) = converged(&dc, 100).await;
    let upstream = dc
        .ldaps_url
        .trim_start_matches("ldaps://")
        .trim_end_matches('/')
        .to_string();
    let env = tenant.env();

    // Through an uncut relay (LDAPS end to end: the DC's certificate names 127.0.0.1)
    // the plan is empty; measure what each connection receives.
    let (addr, counts) = relay(upstream.clone(), None).await;
    let via = |addr: std::net::SocketAddr| {
        E2ePolicy::write(
            &lab.policy_text(100)
                .replace(&dc.ldaps_url, &format!("ldaps://{addr}")),
        )
    };
    let whole = via(addr);
    let r = run_bin(
        &dc,
        &["plan", "--policy", whole.path_str(), "--detailed-exitcode"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    let counts = counts.lock().unwrap().clone();
    let biggest = *counts.iter().max().expect("connections through the relay");
    let cut_at = biggest / 2;
    assert!(
        counts.iter().filter(|c| **c > cut_at).count() == 1,
        "only the full read is cut: {counts:?}"
    );

    // Cut the full read halfway: no plan, exit 1, nothing written.
    let writes = tenant.writes();
    let state = tenant.emu.state();
    let (addr, _) = relay(upstream, Some(cut_at)).await;
    let cut = via(addr);
    let started = std::time::Instant::now();
    let r = run_bin(
        &dc,
        &["plan", "--policy", cut.path_str(), "--detailed-exitcode"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("no plan was made") && r.stderr.contains(&format!("ldaps://{addr}")),
        "{}",
        r.text()
    );
    assert!(r.stdout.trim().is_empty(), "no plan printed: {}", r.text());
    let r = run_bin(
        &dc,
        &["apply", "--policy", cut.path_str(), "--auto-approve"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "a cut connection is an error, not a long wait ({:?})",
        started.elapsed()
    );
    assert_eq!(tenant.writes(), writes);
    assert_eq!(tenant.emu.state(), state);

    // The library read fails as a whole too (no partial snapshot).
    let err = try_read_source(&cut.loaded, &dc)
        .await
        .expect_err("a cut read must fail");
    assert!(
        matches!(
            err,
            LdapError::ConnectionLost { .. } | LdapError::Protocol { .. } | LdapError::Tls { .. }
        ),
        "{err:?}"
    );
}

// ------------------------------------------------------------------ 4. TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_by_default_and_a_wrong_ca_is_refused() {
    let Some(dc) = dc::dc() else { return };
    let mut lab = Lab::new(&dc).await;
    staff(&mut lab).await;
    let tenant = Tenant::start().await;
    let writes = tenant.writes();
    let env = tenant.env();
    let text = lab.policy_text(5);
    let ca_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("caFile:"))
        .expect("caFile in the template")
        .to_string();

    // No caFile: the system roots, which do not know the test CA.
    let no_ca = E2ePolicy::write(&text.replace(&format!("{ca_line}\n"), ""));
    assert!(
        no_ca
            .loaded
            .policy
            .source
            .as_ref()
            .unwrap()
            .ca_file
            .is_none()
    );
    let r = run_bin(&dc, &["plan", "--policy", no_ca.path_str()], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    let untrusted = format!("TLS certificate verification failed for {}", dc.ldaps_url);
    assert!(
        (r.stderr.contains(&untrusted) && r.stderr.contains("trusted: system roots"))
            // A host without any system roots refuses before connecting.
            || r.stderr.contains("no system root certificates found"),
        "{}",
        r.text()
    );

    // A CA file that did not issue the DC's certificate: the self-signed test client
    // certificate, alone in a PEM file.
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test-client-cert.pem"),
    )
    .unwrap();
    let end = "-----END CERTIFICATE-----";
    let cert =
        &pem[pem.find("-----BEGIN CERTIFICATE-----").unwrap()..pem.find(end).unwrap() + end.len()];
    let wrong_path = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_path, format!("{cert}\n")).unwrap();
    let wrong = wrong_path.to_str().unwrap();
    let wrong_ca = E2ePolicy::write(&text.replace(&ca_line, &format!("  caFile: '{wrong}'")));
    let r = run_bin(&dc, &["plan", "--policy", wrong_ca.path_str()], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains(&untrusted) && r.stderr.contains(&format!("trusted: CA file {wrong}")),
        "{}",
        r.text()
    );
    assert!(!r.stderr.contains(&dc.password), "{}", r.text());
    let r = run_bin(
        &dc,
        &["apply", "--policy", wrong_ca.path_str(), "--auto-approve"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert_eq!(tenant.writes(), writes);

    // The right CA works (the same policy otherwise).
    let right = E2ePolicy::write(&text);
    let r = run_bin(
        &dc,
        &["plan", "--policy", right.path_str(), "--detailed-exitcode"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(2), "{}", r.text());
}

// ------------------------------------------------------------------ 5. explain

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_scope_and_mapped_values_of_a_real_ad_object() {
    let Some(dc) = dc::dc() else { return };
    let mut lab = Lab::new(&dc).await;
    let s = staff(&mut lab).await;
    let policy = E2ePolicy::write(&lab.policy_text(5));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"users": [], "groups": []}"#).unwrap();
    let empty = empty.to_str().unwrap();

    let r = run_bin(
        &dc,
        &[
            "explain",
            "--policy",
            policy.path_str(),
            "--target-snapshot",
            empty,
            &s.ann.sam,
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    let out = &r.stdout;
    let anchor = dc::guid_b64_via_ldapsearch(&dc, &format!("(sAMAccountName={})", s.ann.sam));
    let line = |needle: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting with {needle:?} in:\n{out}"))
            .to_string()
    };
    assert!(out.starts_with(&s.ann.dn), "{out}");
    assert!(
        line("objectGUID").contains(&format!("anchor {anchor}")),
        "{out}"
    );
    assert!(
        line("Scope:").starts_with("Scope: IN — under scope.users.includeOUs OU=Sales,"),
        "{out}"
    );
    for (prop, value, template) in [
        ("department", "\"Sales\"", "{{ department }}"),
        ("usageLocation", "\"US\"", "{{ c or 'US' }}"),
        ("givenName", "\"Ann\"", "{{ givenName }}"),
        (
            "accountEnabled",
            "true",
            "{{ userAccountControl | account_enabled }}",
        ),
    ] {
        let l = line(&format!("{prop} "));
        assert!(
            l.contains(&format!("= {value}")) && l.contains(&format!("← {template}")),
            "{prop}: {l}\n{out}"
        );
    }
    assert!(line("userPrincipalName").contains(&s.ann.upn), "{out}");
    assert!(out.contains("none (would be created)"), "{out}");
    let planned = out.split("Planned actions:").nth(1).unwrap_or_default();
    assert!(planned.trim_start().starts_with("create"), "{out}");

    // Olga sits in an OU the policy does not include.
    let r = run_bin(
        &dc,
        &[
            "explain",
            "--policy",
            policy.path_str(),
            "--target-snapshot",
            empty,
            &s.olga.dn,
        ],
        &[],
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert!(
        r.stdout
            .contains("Scope: OUT — not under any scope.users.includeOUs"),
        "{}",
        r.text()
    );
    assert!(!r.stdout.contains("Mapped values"), "{}", r.text());
}
