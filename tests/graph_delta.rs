//! Delta reads against the emulator: a snapshot kept up to date by delta rounds equals a
//! fresh full read, after random creates, updates, deletes, restores and membership changes,
//! and with a change made while the full read ran; expired links ask for a full read.

mod graph_support;

use ad2entra::entra::graph::http::{GraphRequest, RetryMode};
use ad2entra::entra::graph::{
    DeltaLinks, GraphClient, GraphConfig, GraphError, ObservedRequest, ReadOptions,
    TargetDeltaSummary, read_delta, read_full_with_links, read_snapshot,
};
use ad2entra::model::TargetSnapshot;
use graph_emulator::seed::Seed;
use graph_emulator::{Emulator, EmulatorConfig};
use graph_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn opts() -> ReadOptions {
    ReadOptions {
        user_select: vec![
            "displayName".into(),
            "userPrincipalName".into(),
            "jobTitle".into(),
            "department".into(),
            "accountEnabled".into(),
        ],
        group_select: vec![
            "displayName".into(),
            "description".into(),
            "mailNickname".into(),
        ],
        extension_app_id: app_id(),
        skip_directory_roles: true,
        ..Default::default()
    }
}

/// An emulator with small delta pages and member chunks (so rounds page and large groups
/// split) and the anchor extensions registered.
fn config() -> EmulatorConfig {
    let mut cfg = EmulatorConfig::default();
    cfg.throttling.time_scale = 100.0;
    cfg.delta_page_size = 7;
    cfg.delta_members_per_item = 3;
    cfg
}

fn map(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A started emulator (see [`config`]) seeded with `users` users and `groups` groups.
async fn seeded(users: usize, groups: usize) -> (Emulator, EmulatorConfig) {
    let cfg = config();
    let emu = Emulator::start(cfg.clone()).await.unwrap();
    seed(&emu, &cfg, users, groups);
    (emu, cfg)
}

fn seed(emu: &Emulator, cfg: &EmulatorConfig, users: usize, groups: usize) {
    let users: Vec<Map<String, Value>> = (0..users)
        .map(|n| {
            map(json!({
                "userPrincipalName": format!("s{n}@corp.example.com"),
                "displayName": format!("Seeded {n}"),
                "mailNickname": format!("s{n}"),
                "accountEnabled": true,
                "jobTitle": if n.is_multiple_of(3) { Value::Null } else { json!("Clerk") },
            }))
        })
        .collect();
    let groups: Vec<Map<String, Value>> = (0..groups)
        .map(|g| {
            let members: Vec<String> = (0..users.len())
                .filter(|n| (n + g) % 4 == 0)
                .map(|n| format!("s{n}@corp.example.com"))
                .collect();
            map(json!({
                "displayName": format!("Group {g}"),
                "mailNickname": format!("g{g}"),
                "securityEnabled": true,
                "mailEnabled": false,
                "members": members,
            }))
        })
        .collect();
    emu.seed(&Seed {
        applications: vec![app_with_anchor_extensions(cfg)],
        users,
        groups,
        ..Default::default()
    })
    .unwrap();
}

/// Users, groups and deleted users in id order, members sorted: what must match.
fn canonical(mut s: TargetSnapshot) -> TargetSnapshot {
    s.users.sort_by(|a, b| a.id.cmp(&b.id));
    s.groups.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(d) = s.deleted_users.read_mut() {
        d.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for g in &mut s.groups {
        g.members.sort();
    }
    s
}

async fn write(client: &GraphClient, method: Method, path: String, body: Option<Value>) {
    client
        .execute(
            &GraphRequest::write(method.clone(), path.clone(), body),
            RetryMode::ThrottleOnly,
        )
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
}

fn ids(state: &Value, key: &str) -> Vec<String> {
    state[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn pick<'a>(rng: &mut StdRng, v: &'a [String]) -> Option<&'a String> {
    (!v.is_empty()).then(|| &v[rng.random_range(0..v.len())])
}

fn member_ref(id: &str) -> Value {
    json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")})
}

/// Member ids of group `g` in the emulator's state.
fn members_of(state: &Value, g: &str) -> Vec<String> {
    state["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == json!(g))
        .and_then(|x| x["members"].as_array())
        .map(|m| {
            m.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Change number `n` through Graph, like other admins and apps make them: the kinds of
/// change take turns (so every kind happens), their targets are random.
async fn random_change(client: &GraphClient, emu: &Emulator, rng: &mut StdRng, n: usize) {
    let state = emu.state();
    let users = ids(&state, "users");
    let deleted = ids(&state, "deletedUsers");
    let groups = ids(&state, "groups");
    let ext = ext();
    match n % 13 {
        0 => {
            let body = json!({
                "accountEnabled": true,
                "displayName": format!("New {n}"),
                "mailNickname": format!("new{n}"),
                "userPrincipalName": format!("new{n}@corp.example.com"),
                "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"},
            });
            write(client, Method::POST, "/users".into(), Some(body)).await;
        }
        1 | 12 => {
            if let Some(u) = pick(rng, &users) {
                let body = match rng.random_range(0..4) {
                    0 => json!({"jobTitle": null}),
                    1 => json!({"jobTitle": format!("Title {n}"), "department": "Sales"}),
                    2 => json!({ext.anchor.clone(): format!("anchor-{n}")}),
                    _ => json!({"displayName": format!("Renamed {n}"), "department": null}),
                };
                write(client, Method::PATCH, format!("/users/{u}"), Some(body)).await;
            }
        }
        2 | 3 => {
            if let Some(u) = pick(rng, &users) {
                write(client, Method::DELETE, format!("/users/{u}"), None).await;
            }
        }
        4 => {
            if let Some(u) = pick(rng, &deleted) {
                let path = format!("/directory/deletedItems/{u}/restore");
                write(client, Method::POST, path, None).await;
            }
        }
        5 => {
            if let Some(u) = pick(rng, &deleted) {
                let path = format!("/directory/deletedItems/{u}");
                write(client, Method::DELETE, path, None).await;
            }
        }
        6 => {
            let body = json!({"displayName": format!("Made {n}"), "mailNickname": format!("made{n}"),
                              "securityEnabled": true, "mailEnabled": false});
            write(client, Method::POST, "/groups".into(), Some(body)).await;
        }
        7 => {
            if let Some(g) = pick(rng, &groups) {
                let description = match rng.random_bool(0.5) {
                    true => json!(format!("About {n}")),
                    false => Value::Null,
                };
                let body = json!({ "description": description });
                write(client, Method::PATCH, format!("/groups/{g}"), Some(body)).await;
            }
        }
        8 => {
            if groups.len() > 2
                && let Some(g) = pick(rng, &groups)
            {
                write(client, Method::DELETE, format!("/groups/{g}"), None).await;
            }
        }
        9 => {
            if let Some(g) = pick(rng, &groups) {
                let current = members_of(&state, g);
                let outside: Vec<String> = users
                    .iter()
                    .filter(|u| !current.contains(u))
                    .cloned()
                    .collect();
                if let Some(u) = pick(rng, &outside) {
                    let path = format!("/groups/{g}/members/$ref");
                    write(client, Method::POST, path, Some(member_ref(u))).await;
                }
            }
        }
        10 => {
            let with_members: Vec<(String, Vec<String>)> = groups
                .iter()
                .map(|g| {
                    let live = members_of(&state, g)
                        .into_iter()
                        .filter(|m| users.contains(m))
                        .collect();
                    (g.clone(), live)
                })
                .filter(|(_, m): &(String, Vec<String>)| !m.is_empty())
                .collect();
            if !with_members.is_empty() {
                let (g, members) = &with_members[rng.random_range(0..with_members.len())];
                if let Some(m) = pick(rng, members) {
                    let path = format!("/groups/{g}/members/{m}/$ref");
                    write(client, Method::DELETE, path, None).await;
                }
            }
        }
        _ => {
            // A group nested in another.
            if let (Some(outer), Some(inner)) = (pick(rng, &groups), pick(rng, &groups))
                && outer != inner
                && !members_of(&state, outer).contains(inner)
            {
                let path = format!("/groups/{outer}/members/$ref");
                write(client, Method::POST, path, Some(member_ref(inner))).await;
            }
        }
    }
}

fn listing_requests(emu: &Emulator) -> (u64, u64) {
    let s = emu.stats().requests;
    let get = |k: &str| s.get(k).copied().unwrap_or(0);
    (
        get("GET /users") + get("GET /groups") + get("GET /groups/{id}/members"),
        get("GET /users/delta") + get("GET /groups/delta"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_rounds_after_random_changes_equal_a_full_read() {
    let (emu, cfg) = seeded(40, 6).await;
    let (client, log) = client(&emu, &cfg);
    let opts = opts();
    let (mut snap, mut links) = read_full_with_links(&client, &opts).await.unwrap();
    assert_eq!(snap.users.len(), 40);
    let mut rng = StdRng::seed_from_u64(7);
    let mut total = TargetDeltaSummary::default();
    let mut n = 0;
    for round in 0..8 {
        for _ in 0..rng.random_range(3..15) {
            n += 1;
            random_change(&client, &emu, &mut rng, n).await;
        }
        let (lists_before, deltas_before) = listing_requests(&emu);
        let (next, summary) = read_delta(&client, &opts, &mut snap, &links).await.unwrap();
        let (lists_after, deltas_after) = listing_requests(&emu);
        assert_eq!(
            lists_after, lists_before,
            "a delta read lists nothing whole"
        );
        assert!(deltas_after >= deltas_before + 2);
        links = next;
        let fresh = read_snapshot(&client, &opts).await.unwrap();
        assert_eq!(
            canonical(snap.clone()),
            canonical(fresh),
            "round {round}: {summary:?}"
        );
        for (t, s) in [
            (&mut total.users_added, summary.users_added),
            (&mut total.users_updated, summary.users_updated),
            (&mut total.users_removed, summary.users_removed),
            (&mut total.groups_added, summary.groups_added),
            (&mut total.groups_removed, summary.groups_removed),
            (&mut total.members_added, summary.members_added),
            (&mut total.members_removed, summary.members_removed),
        ] {
            *t += s;
        }
    }
    // The random walk exercised every kind of change.
    for (what, count) in [
        ("users added", total.users_added),
        ("users updated", total.users_updated),
        ("users removed", total.users_removed),
        ("groups added", total.groups_added),
        ("groups removed", total.groups_removed),
        ("members added", total.members_added),
        ("members removed", total.members_removed),
    ] {
        assert!(count > 0, "no {what}: {total:?}");
    }
    let requests = emu.stats().requests;
    for class in [
        "POST /directory/deletedItems/{id}/restore",
        "DELETE /directory/deletedItems/{id}",
        "DELETE /groups/{id}/members/{id}/$ref",
    ] {
        assert!(
            requests.get(class).is_some_and(|n| *n > 0),
            "no {class}: {requests:?}"
        );
    }
    // No change since the last round: nothing moves.
    let before = snap.clone();
    let (_, summary) = read_delta(&client, &opts, &mut snap, &links).await.unwrap();
    assert_eq!(
        (summary.users_updated, summary.groups_updated, summary.pages),
        (0, 0, 2)
    );
    assert_eq!(snap, before);
    assert_conformant(&log);
}

/// A client whose observer runs `hook` before every request attempt.
fn hooked_client(
    emu: &Emulator,
    cfg: &EmulatorConfig,
    hook: impl Fn(&ObservedRequest) + Send + Sync + 'static,
) -> GraphClient {
    let mut gc = GraphConfig::new(emu.base_url(), secret_auth(emu, cfg));
    gc.retry_base = std::time::Duration::from_millis(20);
    GraphClient::new(gc).unwrap().with_observer(Arc::new(hook))
}

/// Changes made while the full read runs: one before the user list is read (the read sees
/// it, the next round replays it), one after every list was read (the read misses it, the
/// next round brings it). Neither is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_during_the_full_read_are_replayed_not_lost() {
    let (emu, cfg) = seeded(12, 2).await;
    let emu = Arc::new(emu);
    let seen = Arc::new(AtomicUsize::new(0));
    let (e, s) = (emu.clone(), seen.clone());
    let client = hooked_client(&emu, &cfg, move |r| {
        let racing = |nick: &str| Seed {
            users: vec![map(json!({
                "userPrincipalName": format!("{nick}@corp.example.com"),
                "displayName": nick, "mailNickname": nick, "accountEnabled": true,
            }))],
            groups: vec![map(json!({
                "displayName": format!("{nick} group"), "mailNickname": format!("{nick}g"),
                "securityEnabled": true, "mailEnabled": false,
                "members": [format!("{nick}@corp.example.com")],
            }))],
            ..Default::default()
        };
        if r.path.starts_with("/users?") && s.fetch_add(1, Ordering::SeqCst) == 0 {
            e.seed(&racing("early")).unwrap();
        }
        if r.path == "/$batch" && s.fetch_add(1, Ordering::SeqCst) < 2 {
            e.seed(&racing("late")).unwrap();
        }
    });
    let opts = opts();
    let (mut snap, links) = read_full_with_links(&client, &opts).await.unwrap();
    let has =
        |s: &TargetSnapshot, name: &str| s.users.iter().any(|u| u.str("displayName") == Some(name));
    assert!(has(&snap, "early"));
    assert!(!has(&snap, "late"), "the late change raced past the read");
    let (_, summary) = read_delta(&client, &opts, &mut snap, &links).await.unwrap();
    assert!(has(&snap, "late"));
    assert!(
        summary.users_updated >= 1,
        "the early change is replayed: {summary:?}"
    );
    let late_group = snap
        .groups
        .iter()
        .find(|g| g.str("displayName") == Some("late group"))
        .unwrap();
    assert_eq!(late_group.members.len(), 1);
    let fresh = read_snapshot(&client, &opts).await.unwrap();
    assert_eq!(canonical(snap), canonical(fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_reset_or_foreign_links_ask_for_a_full_read() {
    let (emu, cfg) = seeded(5, 1).await;
    let (client, _log) = client(&emu, &cfg);
    let opts = opts();
    let (mut snap, links) = read_full_with_links(&client, &opts).await.unwrap();
    let kept = snap.clone();
    let expect_full_read = |e: GraphError, status: Option<u16>| {
        assert!(e.is_delta_expired(), "{e}");
        assert_eq!(e.status(), status, "{e}");
    };
    emu.expire_delta_tokens();
    let e = read_delta(&client, &opts, &mut snap, &links)
        .await
        .unwrap_err();
    expect_full_read(e, Some(400));
    assert_eq!(
        snap, kept,
        "a failed delta read leaves the snapshot as it was"
    );
    let (_, links) = read_full_with_links(&client, &opts).await.unwrap();
    emu.reset_delta_sync();
    let e = read_delta(&client, &opts, &mut snap, &links)
        .await
        .unwrap_err();
    expect_full_read(e, Some(410));
    let (_, links) = read_full_with_links(&client, &opts).await.unwrap();
    let mut other = opts.clone();
    other.user_select.push("city".into());
    let e = read_delta(&client, &other, &mut snap, &links)
        .await
        .unwrap_err();
    expect_full_read(e, None);
    let stale = DeltaLinks {
        selection: String::new(),
        ..links.clone()
    };
    let e = read_delta(&client, &opts, &mut snap, &stale)
        .await
        .unwrap_err();
    assert!(matches!(e, GraphError::DeltaLinksUnusable(_)), "{e}");
    assert_eq!(snap, kept);
    // The links that matched still work.
    read_delta(&client, &opts, &mut snap, &links).await.unwrap();
}
