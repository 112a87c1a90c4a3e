//! Several sources against two real Samba AD DCs: two realms, each its own forest
//! (CORP.EXAMPLE.COM and BRANCH.EXAMPLE.NET, started by `scripts/test.sh`), and the Graph
//! emulator. A corp group holds a branch user through a foreign security principal
//! (Samba makes it when the member is added by SID, as AD does across a trust),
//! resolved by objectSid; the plan names each object's source; a dead DC URL fails over
//! to the next; a failover is a full read of that source, with watermarks per source and
//! DC; both sources are watched for changes; and a whole source down stops the cycle for
//! everything, with nothing written.
//!
//!     scripts/test-dc.sh -d .test-dc
//!     scripts/test-dc.sh -d .test-dc2 -p 3589 --realm BRANCH.EXAMPLE.NET
//!     AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env \
//!     AD2ENTRA_TEST_DC2_ENV=$PWD/.test-dc2/connection.env cargo test --test multisource_samba

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod run_support;

use dc::Dc;
use e2e_support::*;
use ldap3::{Scope, SearchEntry};
use run_support::{Relay, Run, condition, last_outcome, runs};
use serde_json::Value;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);
/// The variable branch's `passwordFrom` names (corp's is `PASSWORD_ENV`).
const BRANCH_PASSWORD_ENV: &str = "AD2ENTRA_E2E_LDAP_PASSWORD_BRANCH";

/// One `sources:` entry for a lab on a DC: its Sales OU (users) and Groups OU.
fn source_entry(name: &str, urls: &[&str], dc: &Dc, lab: &Lab, password_env: &str) -> String {
    format!(
        "  - name: {name}
    urls: [{urls}]
    bindDn: '{bind}'
    passwordFrom: env:{password_env}
    baseDn: '{base}'
    caFile: '{ca}'
    timeout: 20s
    scope:
      users:
        includeOUs: ['OU=Sales,{root}']
        ldapFilter: '(&(objectCategory=person)(objectClass=user))'
      groups:
        includeOUs: ['OU=Groups,{root}']
",
        urls = urls.join(", "),
        bind = dc.bind_dn,
        base = dc.base_dn,
        ca = dc.ca_file.display(),
        root = lab.root,
    )
}

fn policy_of(entries: &[String], extra: &str) -> E2ePolicy {
    E2ePolicy::write(&format!(
        "apiVersion: ad2entra/v1\nsources:\n{}upn: {{fallbackDomain: corpexample.onmicrosoft.com}}\nmappings: {{user: {{usageLocation: \"{{{{ c or 'US' }}}}\"}}}}\n{extra}",
        entries.concat()
    ))
}

fn env(tenant: &Tenant, dc2: &Dc) -> Vec<(String, String)> {
    let mut e = tenant.env();
    e.push((BRANCH_PASSWORD_ENV.to_string(), dc2.password.clone()));
    e
}

/// One attribute of the object `dn`, as the DC returns it.
async fn read_attr(dc: &Dc, dn: &str, attr: &str) -> SearchEntry {
    let mut ldap = admin_connect(dc).await;
    let (rs, _) = ldap
        .search(dn, Scope::Base, "(objectClass=*)", vec![attr])
        .await
        .expect("search")
        .success()
        .unwrap_or_else(|e| panic!("{attr} of {dn}: {e}"));
    SearchEntry::construct(rs.into_iter().next().expect("the object"))
}

/// The objectSid of `dn`, as `S-1-5-21-…`.
async fn object_sid(dc: &Dc, dn: &str) -> String {
    let e = read_attr(dc, dn, "objectSid").await;
    ad2entra::sources::fsp::sid_to_string(&e.bin_attrs["objectSid"][0]).expect("a SID")
}

/// The `member` values of a group, as the DC returns them.
async fn group_members(dc: &Dc, dn: &str) -> Vec<String> {
    let e = read_attr(dc, dn, "member").await;
    e.attrs.get("member").cloned().unwrap_or_default()
}

fn action<'a>(plan: &'a Value, op: &str, name: &str) -> &'a Value {
    plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["op"] == op && a["object"]["name"] == name)
        .unwrap_or_else(|| panic!("no {op} of {name}: {plan:#}"))
}

/// A dead local port: bound, then released.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("ldaps://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_in_one_forest_holds_a_user_of_the_other_by_sid_and_the_plan_names_sources() {
    let (Some(dc1), Some(dc2)) = (dc::dc(), dc::dc2()) else {
        return;
    };
    assert_ne!(
        dc1.base_dn, dc2.base_dn,
        "the two test DCs must be two domains"
    );
    let mut corp = Lab::new(&dc1).await;
    let mut branch = Lab::new(&dc2).await;
    let ann = corp
        .add_user("Sales", "ann", "Ann", "Archer", "Sales")
        .await;
    let bob = branch
        .add_user("Sales", "bob", "Bob", "Baker", "Sales")
        .await;
    // Bob joins corp's Team by his SID, as across a trust: corp's DC makes the foreign
    // security principal CN=<sid>,CN=ForeignSecurityPrincipals itself and lists that.
    // (Samba refuses to delete it again: each run leaves one behind, in no scope.)
    let sid = object_sid(&dc2, &bob.dn).await;
    let team = corp
        .add_group("Team", &[&ann.dn, &format!("<SID={sid}>")])
        .await;
    let fsp = format!("CN={sid},CN=ForeignSecurityPrincipals,{}", dc1.base_dn);
    let listed = group_members(&dc1, &team).await;
    assert!(
        listed.iter().any(|m| m.eq_ignore_ascii_case(&fsp)),
        "{listed:?}"
    );
    let tenant = Tenant::start().await;
    let policy = policy_of(
        &[
            source_entry("corp", &[&dc1.ldaps_url], &dc1, &corp, PASSWORD_ENV),
            source_entry(
                "branch",
                &[&dc2.ldaps_url],
                &dc2,
                &branch,
                BRANCH_PASSWORD_ENV,
            ),
        ],
        "",
    );
    let p = policy.path_str();
    let env = env(&tenant, &dc2);

    // validate --online resolves each source's OUs in that source.
    let r = run_bin(&dc1, &["validate", "--policy", p, "--online"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    for (name, lab) in [("corp", &corp), ("branch", &branch)] {
        assert!(
            r.stdout.contains(&format!(
                "ok: sources[{name}].scope.users.includeOUs: OU=Sales,{} → objectGUID",
                lab.root
            )),
            "{}",
            r.text()
        );
    }

    let r = run_bin(&dc1, &["plan", "--policy", p, "--format", "json"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    let plan: Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(
        action(&plan, "create", &ann.upn)["object"]["source"],
        "corp"
    );
    assert_eq!(
        action(&plan, "create", &bob.upn)["object"]["source"],
        "branch"
    );
    assert_eq!(action(&plan, "create", "Team")["object"]["source"], "corp");
    let mut members: Vec<&str> = action(&plan, "add-members", "Team")["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    members.sort();
    let mut want = vec![ann.upn.as_str(), bob.upn.as_str()];
    want.sort();
    assert_eq!(members, want, "Bob is a member through his FSP: {plan:#}");
    let sources: Vec<(&str, &str)> = plan["source"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["server"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sources,
        [
            ("corp", dc1.ldaps_url.as_str()),
            ("branch", dc2.ldaps_url.as_str())
        ]
    );
    // The human plan names them too.
    let r = run_bin(&dc1, &["plan", "--policy", p], &env).await;
    assert!(
        r.stdout.contains(&format!(
            "create user {}  ({}, source branch)",
            bob.upn, bob.dn
        )),
        "{}",
        r.text()
    );

    // Applied, Entra's Team holds both; then nothing is left to do.
    let r = run_bin(&dc1, &["apply", "--policy", p, "--auto-approve"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert_eq!(entra_members(&tenant, "Team"), {
        let mut v = vec![ann.upn.clone(), bob.upn.clone()];
        v.sort();
        v
    });
    let r = run_bin(&dc1, &["plan", "--policy", p, "--detailed-exitcode"], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    // explain names Bob's source.
    let r = run_bin(&dc1, &["explain", "--policy", p, &bob.sam], &env).await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    assert!(
        r.stdout
            .contains(&format!("source      branch (read from {})", dc2.ldaps_url)),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_dc_url_fails_over_to_the_next_and_all_dead_fails_naming_each() {
    let Some(dc1) = dc::dc() else { return };
    let mut corp = Lab::new(&dc1).await;
    let ann = corp
        .add_user("Sales", "ann", "Ann", "Archer", "Sales")
        .await;
    let tenant = Tenant::start().await;
    let dead = dead_url();
    let policy = policy_of(
        &[source_entry(
            "corp",
            &[&dead, &dc1.ldaps_url],
            &dc1,
            &corp,
            PASSWORD_ENV,
        )],
        "",
    );
    let env = tenant.env();
    let r = run_bin(
        &dc1,
        &["plan", "--policy", policy.path_str(), "--format", "json"],
        &env,
    )
    .await;
    assert_eq!(r.code, Some(0), "{}", r.text());
    let plan: Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    assert_eq!(
        plan["source"]["sources"][0]["server"],
        dc1.ldaps_url.as_str()
    );
    assert_eq!(
        action(&plan, "create", &ann.upn)["object"]["source"],
        "corp"
    );

    // Every DC dead: no plan, and the error names each one tried.
    let dead2 = dead_url();
    let policy = policy_of(
        &[source_entry(
            "corp",
            &[&dead, &dead2],
            &dc1,
            &corp,
            PASSWORD_ENV,
        )],
        "",
    );
    let r = run_bin(&dc1, &["plan", "--policy", policy.path_str()], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("no domain controller answered")
            && r.stderr.contains(&dead)
            && r.stderr.contains(&dead2),
        "{}",
        r.text()
    );
    assert!(r.stdout.is_empty(), "{}", r.text());

    // A DC that connects and binds but drops the read half-way fails the source: the
    // read is not retried on the next DC (that would mix two DCs' views).
    let upstream = dc1.ldaps_url.trim_start_matches("ldaps://").to_string();
    let (cutting, served) = cutting_relay(upstream).await;
    let cutting = format!("ldaps://{cutting}");
    let policy = policy_of(
        &[source_entry(
            "corp",
            &[&cutting, &dc1.ldaps_url],
            &dc1,
            &corp,
            PASSWORD_ENV,
        )],
        "",
    );
    let r = run_bin(&dc1, &["plan", "--policy", policy.path_str()], &env).await;
    assert_eq!(r.code, Some(1), "{}", r.text());
    assert!(r.stderr.contains(&cutting), "{}", r.text());
    assert!(!r.stderr.contains("failed over"), "{}", r.text());
    assert!(r.stdout.is_empty(), "{}", r.text());
    let served = served.lock().unwrap().clone();
    assert!(
        served.len() >= 2 && served[1..].iter().any(|c| c.cut),
        "the probe passed and a later connection was cut: {served:?}"
    );
}

/// What a [`cutting_relay`] passed down one connection.
#[derive(Clone, Debug)]
struct Served {
    bytes: u64,
    cut: bool,
}

/// A TCP relay to a DC that lets the first connection through whole (the failover
/// probe: TLS handshake, bind, unbind) and cuts every later one once it has passed as
/// many bytes from the DC as that probe did. The same handshake and bind come first on
/// each connection (a resumed TLS session is shorter still), so the cut falls after the
/// bind, in the middle of the read's replies.
async fn cutting_relay(
    upstream: String,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Served>>>,
) {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served: Arc<Mutex<Vec<Served>>> = Arc::default();
    let log = served.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(out) = tokio::net::TcpStream::connect(&upstream).await else {
                continue;
            };
            // Serially: the probe's count is known before the read's connection opens.
            let limit = log.lock().unwrap().first().map(|p: &Served| p.bytes);
            let (mut in_r, mut in_w) = inbound.into_split();
            let (mut out_r, mut out_w) = out.into_split();
            let up = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut in_r, &mut out_w).await;
                let _ = out_w.shutdown().await;
            });
            let (mut bytes, mut cut, mut buf) = (0u64, false, vec![0u8; 4096]);
            loop {
                let n = match out_r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let room = limit.map_or(n as u64, |l| (l - bytes).min(n as u64)) as usize;
                if in_w.write_all(&buf[..room]).await.is_err() {
                    break;
                }
                bytes += room as u64;
                if room < n || limit == Some(bytes) {
                    cut = true;
                    break;
                }
            }
            up.abort();
            drop(in_w);
            log.lock().unwrap().push(Served { bytes, cut });
        }
    });
    (addr, served)
}

/// Asks for a delta cycle, the `n`th, and checks it ran as one with nothing to change;
/// returns the LDAP entries it read.
async fn delta_cycle(run: &Run, n: usize) -> u64 {
    run.sync(false, None).await;
    let s = run.wait_cycles(n, LONG).await;
    let r = &runs(&s)[0];
    assert_eq!(
        (r["kind"].as_str(), r["outcome"].as_str()),
        (Some("delta"), Some("in-sync")),
        "{s:#}"
    );
    r["ldapEntries"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_reconciler_a_failover_is_a_full_read_of_that_source_with_watermarks_per_dc() {
    let (Some(dc1), Some(dc2)) = (dc::dc(), dc::dc2()) else {
        return;
    };
    let upstream = dc1.ldaps_url.trim_start_matches("ldaps://").to_string();
    let (first, second) = (
        Relay::start(upstream.clone()).await,
        Relay::start(upstream).await,
    );
    let (url1, url2) = (
        format!("ldaps://{}", first.addr),
        format!("ldaps://{}", second.addr),
    );
    let mut corp = Lab::new(&dc1).await;
    let mut branch = Lab::new(&dc2).await;
    corp.add_user("Sales", "ann", "Ann", "Archer", "Sales")
        .await;
    branch
        .add_user("Sales", "bob", "Bob", "Baker", "Sales")
        .await;
    let tenant = Tenant::start().await;
    let policy = policy_of(
        &[
            source_entry("corp", &[&url1, &url2], &dc1, &corp, PASSWORD_ENV),
            source_entry(
                "branch",
                &[&dc2.ldaps_url],
                &dc2,
                &branch,
                BRANCH_PASSWORD_ENV,
            ),
        ],
        "schedule: {interval: 1h}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut e = env(&tenant, &dc2);
    e.push((PASSWORD_ENV.to_string(), dc1.password.clone()));
    let run = Run::start(
        &[
            "--policy".to_string(),
            policy.path_str().to_string(),
            "--state".to_string(),
            state.display().to_string(),
            "--no-watch".to_string(),
        ],
        &e,
    );
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "applied", "{s:#}");
    let keys = || -> Vec<String> {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        let mut k: Vec<String> = v["adWatermarks"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    };
    let mut want = vec![format!("branch@{}", dc2.ldaps_url), format!("corp@{url1}")];
    want.sort();
    assert_eq!(keys(), want);

    // A delta cycle reads next to nothing…
    let delta_entries = delta_cycle(&run, 2).await;
    // …but with corp's first DC gone, corp is read from its second, in full; branch
    // stays a delta (so the cycle is not a full one).
    first.down();
    let entries = delta_cycle(&run, 3).await;
    eprintln!("LDAP entries: delta cycle {delta_entries}, after the failover {entries}");
    assert!(
        entries > delta_entries + 50,
        "corp was not read in full: {entries} entries (a delta read {delta_entries})"
    );
    let failovers = run.log_events(
        "another domain controller serves the source now: reading it in full (USNs are per DC)",
    );
    assert_eq!(failovers.len(), 1, "{}", run.logs());
    assert_eq!(failovers[0]["fields"]["to"], url2.as_str());
    assert!(keys().contains(&format!("corp@{url2}")), "{:?}", keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_source_down_stops_the_cycle_for_everything_and_writes_nothing() {
    let (Some(dc1), Some(dc2)) = (dc::dc(), dc::dc2()) else {
        return;
    };
    let relay = Relay::start(dc2.ldaps_url.trim_start_matches("ldaps://").to_string()).await;
    let mut corp = Lab::new(&dc1).await;
    let mut branch = Lab::new(&dc2).await;
    let ann = corp
        .add_user("Sales", "ann", "Ann", "Archer", "Sales")
        .await;
    let bob = branch
        .add_user("Sales", "bob", "Bob", "Baker", "Sales")
        .await;
    let tenant = Tenant::start().await;
    let policy = policy_of(
        &[
            source_entry("corp", &[&dc1.ldaps_url], &dc1, &corp, PASSWORD_ENV),
            source_entry(
                "branch",
                &[&format!("ldaps://{}", relay.addr)],
                &dc2,
                &branch,
                BRANCH_PASSWORD_ENV,
            ),
        ],
        "schedule: {interval: 1h}\ndeletion: {mode: delete, maxDeletePercent: 100}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut e = env(&tenant, &dc2);
    e.push((PASSWORD_ENV.to_string(), dc1.password.clone()));
    let run = Run::start(
        &[
            "--policy".to_string(),
            policy.path_str().to_string(),
            "--state".to_string(),
            dir.path().join("state.json").display().to_string(),
            "--debounce".to_string(),
            "1s".to_string(),
        ],
        &e,
    );
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(last_outcome(&s), "applied", "{s:#}");
    entra_user(&tenant, &bob.upn);
    // Both sources are watched for changes…
    run.wait_for("both sources watched", LONG, |s| {
        s["adWatch"]["state"] == "watching"
            && s["adWatch"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("corp: watching") && m.contains("branch: watching"))
    })
    .await;
    // …so a change in branch reaches Entra by a notification, not the interval.
    branch.replace(&bob.dn, "department", "Marketing").await;
    run.wait_for("the change in branch", LONG, |s| {
        runs(s)
            .iter()
            .any(|r| r["trigger"] == "ad-change" && r["outcome"] == "applied")
    })
    .await;
    assert_eq!(entra_user(&tenant, &bob.upn)["department"], "Marketing");
    let writes = tenant.writes();

    // branch's only DC goes away: no cycle goes on with corp alone, so nothing of
    // branch looks deleted, and nothing at all is written.
    relay.down();
    let cycles = runs(&run.status().await).len();
    run.sync(true, None).await;
    let s = run
        .wait_for("a failed cycle", LONG, |s| {
            runs(s).len() > cycles && last_outcome(s) == "failed"
        })
        .await;
    let (ready, reason) = condition(&s, "Ready");
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "LdapUnavailable"),
        "{s:#}"
    );
    let errors = runs(&s)[0]["errors"].to_string();
    assert!(errors.contains("AD source branch"), "{s:#}");
    assert!(runs(&s)[0]["plan"].is_null(), "no plan was made: {s:#}");
    assert_eq!(run.get("/readyz").await.0, 503);
    assert_eq!(
        tenant.writes(),
        writes,
        "nothing written while a source is down"
    );
    assert_eq!(entra_user(&tenant, &bob.upn)["accountEnabled"], true);
    assert_eq!(entra_user(&tenant, &ann.upn)["accountEnabled"], true);

    relay.up();
    let s = run
        .wait_for("recovery", LONG, |s| condition(s, "Ready").0 == "True")
        .await;
    assert_eq!(last_outcome(&s), "in-sync", "{s:#}");
    assert_eq!(tenant.writes(), writes);
}
