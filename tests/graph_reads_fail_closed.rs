//! Reads that end early fail the read: a next link that keeps failing, a page that is not
//! JSON or has no `value`, a delta round cut short. No snapshot comes back — a partial one
//! would look like "create all of these again" — and `ad2entra plan` exits 1 without a plan.

mod graph_support;

use ad2entra::entra::graph::{
    GraphClient, GraphConfig, GraphError, ReadOptions, read_delta, read_full_with_links,
    read_snapshot,
};
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig, FaultConfig};
use graph_support::*;
use serde_json::json;

/// An emulator with `users` users (more than 999 make the user list two pages) and one
/// group holding the first `members` of them.
async fn tenant(users: usize, members: usize) -> (Emulator, EmulatorConfig) {
    let mut cfg = EmulatorConfig::default();
    cfg.throttling.time_scale = 100.0;
    cfg.delta_page_size = 3;
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    let group = json!({
        "displayName": "Big", "mailNickname": "big", "securityEnabled": true, "mailEnabled": false,
        "members": (0..members).map(|n| format!("u{n}@corp.example.com")).collect::<Vec<_>>(),
    });
    emu.seed(&Seed {
        users: (0..users).map(seed_user).collect(),
        groups: vec![group.as_object().unwrap().clone()],
        applications: vec![app_with_anchor_extensions(&cfg)],
        ..Default::default()
    })
    .unwrap();
    (emu, cfg)
}

/// A client that gives up after two retries, so a page that fails for good fails fast.
fn impatient(emu: &Emulator, cfg: &EmulatorConfig) -> GraphClient {
    let mut gc = GraphConfig::new(emu.base_url(), secret_auth(emu, cfg));
    gc.max_retries = 2;
    gc.retry_base = std::time::Duration::from_millis(10);
    GraphClient::new(gc).unwrap()
}

fn opts() -> ReadOptions {
    ReadOptions {
        user_select: vec!["displayName".into()],
        group_select: vec!["displayName".into()],
        extension_app_id: app_id(),
        skip_directory_roles: true,
        ..Default::default()
    }
}

fn faults(f: impl FnOnce(&mut FaultConfig)) -> FaultConfig {
    let mut c = FaultConfig::default();
    f(&mut c);
    c
}

/// The read failed part-way through `collection`, after `pages` whole pages.
fn assert_incomplete(e: &GraphError, collection: &str, pages: usize, needle: &str) {
    match e {
        GraphError::IncompleteRead {
            collection: c,
            pages: p,
            reason,
            ..
        } => {
            assert!(c.starts_with(collection), "{e}");
            assert_eq!(*p, pages, "{e}");
            assert!(reason.contains(needle), "{e}");
        }
        other => panic!("expected an incomplete read of {collection}, got {other:?}"),
    }
    let text = e.to_string();
    assert!(text.contains(collection), "{text}");
}

/// The user list has two pages; its second one fails for good, is not JSON, or has no
/// `value`: the read fails naming /users and the page, after one whole page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_page_that_fails_fails_the_read() {
    let (emu, cfg) = tenant(1003, 0).await;
    let client = impatient(&emu, &cfg);
    let cases: [(FaultConfig, &str); 3] = [
        (faults(|f| f.broken_next_link_rate = 1.0), "page 2 failed"),
        (
            faults(|f| f.non_json_page_rate = 1.0),
            "page 2 could not be read",
        ),
        (faults(|f| f.page_without_value_rate = 1.0), "no value"),
    ];
    for (fault, needle) in cases {
        emu.set_faults(fault).unwrap();
        let e = read_snapshot(&client, &opts()).await.unwrap_err();
        assert_incomplete(&e, "/users", 1, needle);
    }
    let f = emu.stats().faults;
    // A 500 is worth another cycle: the broken link was tried once and retried twice.
    assert_eq!(f.broken_link_requests, 3);
    assert_eq!((f.non_json_pages, f.pages_without_value), (1, 1));
}

/// Member lists read through `$batch` page too; a member page without `value` or behind a
/// broken link fails the members read, never returns the first 999 members as all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_pages_fail_the_read_too() {
    let (emu, cfg) = tenant(1002, 1001).await;
    let client = impatient(&emu, &cfg);
    let group = emu.state()["groups"][0]["id"].as_str().unwrap().to_string();
    let whole = client
        .group_member_ids(std::slice::from_ref(&group))
        .await
        .unwrap();
    assert_eq!(whole[&group].len(), 1001);
    emu.set_faults(faults(|f| f.page_without_value_rate = 1.0))
        .unwrap();
    let e = client
        .group_member_ids(std::slice::from_ref(&group))
        .await
        .unwrap_err();
    assert_incomplete(&e, &format!("/groups/{group}/members"), 1, "no value");
    emu.set_faults(faults(|f| f.broken_next_link_rate = 1.0))
        .unwrap();
    let e = client.group_member_ids(&[group]).await.unwrap_err();
    assert!(e.to_string().contains("/groups/"), "{e}");
    assert!(emu.stats().faults.broken_link_requests >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_round_cut_short_fails_and_keeps_the_snapshot() {
    let (emu, cfg) = tenant(5, 2).await;
    let client = impatient(&emu, &cfg);
    let (mut snap, links) = read_full_with_links(&client, &opts()).await.unwrap();
    let kept = snap.clone();
    emu.seed(&Seed {
        users: (100..110).map(seed_user).collect(),
        ..Default::default()
    })
    .unwrap();
    emu.set_faults(faults(|f| f.truncated_delta_rate = 1.0))
        .unwrap();
    let e = read_delta(&client, &opts(), &mut snap, &links)
        .await
        .unwrap_err();
    // Both rounds run at once; whichever is cut first fails the read.
    assert_incomplete(&e, "/", 0, "delta round cut short");
    assert!(e.to_string().contains("/delta stopped"), "{e}");
    assert!(
        !e.is_delta_expired(),
        "the links still hold: retry, no full read"
    );
    assert_eq!(snap, kept);
    // A next link of the round that fails for good: the same.
    emu.set_faults(faults(|f| f.broken_next_link_rate = 1.0))
        .unwrap();
    let e = read_delta(&client, &opts(), &mut snap, &links)
        .await
        .unwrap_err();
    assert_incomplete(&e, "/users/delta", 1, "page 2 failed");
    assert_eq!(snap, kept);
    // Taking links checks its one page too.
    emu.set_faults(faults(|f| f.truncated_delta_rate = 1.0))
        .unwrap();
    let e = read_full_with_links(&client, &opts()).await.unwrap_err();
    assert!(matches!(e, GraphError::IncompleteRead { .. }), "{e}");
    // Faults off: the same links bring all ten users.
    emu.set_faults(FaultConfig::default()).unwrap();
    let (_, summary) = read_delta(&client, &opts(), &mut snap, &links)
        .await
        .unwrap();
    assert_eq!(summary.users_added, 10);
}

/// `ad2entra plan` against a tenant whose second user page is broken: exit 1, the reason,
/// and no plan (none printed, none saved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_exits_1_without_a_plan_when_a_read_ends_early() {
    let (emu, cfg) = tenant(1003, 0).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, fault) in [
        ("not-json", faults(|f| f.non_json_page_rate = 1.0)),
        ("no-value", faults(|f| f.page_without_value_rate = 1.0)),
    ] {
        emu.set_faults(fault).unwrap();
        let out = dir.path().join(format!("{name}.json"));
        let env = [
            ("AZURE_TENANT_ID", cfg.tenant_id.clone()),
            ("AZURE_CLIENT_ID", cfg.client_id.clone()),
            (
                "AZURE_CLIENT_SECRET",
                cfg.client_secret.clone().unwrap_or_default(),
            ),
            ("AZURE_AUTHORITY_HOST", emu.authority_url()),
            ("AD2ENTRA_GRAPH_URL", emu.base_url()),
        ];
        let args = vec![
            "plan".to_string(),
            "--policy".into(),
            "examples/demo/policy.yaml".into(),
            "--source-ldif".into(),
            "examples/demo/corp.ldif".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        let o = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .args(&args)
                .envs(env)
                .env_remove("AD2ENTRA_EXTENSION_APP_ID")
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{name}: {stdout}{stderr}");
        assert!(
            stderr.contains("no plan was made")
                && stderr.contains("reading /users stopped after 1 page(s)"),
            "{name}: {stderr}"
        );
        assert!(stdout.trim().is_empty(), "{name}: printed {stdout}");
        assert!(!out.exists(), "{name}: a plan was saved");
    }
}
