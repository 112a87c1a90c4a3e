//! Shared helpers for the Graph client and apply tests: an emulator, a client whose every
//! request is recorded (and later checked against the OpenAPI description), and Plan
//! builders.
#![allow(dead_code)]

use ad2entra::entra::graph::auth::AuthConfig;
use ad2entra::entra::graph::{GraphClient, GraphConfig, ObservedRequest, WriteBudget};
use ad2entra::model::Anchor;
use ad2entra::model::target::ExtensionNames;
use ad2entra::plan::*;
use graph_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub type Log = Arc<Mutex<Vec<ObservedRequest>>>;

pub fn secret_auth(emu: &Emulator, cfg: &EmulatorConfig) -> AuthConfig {
    AuthConfig::for_emulator(emu, cfg)
}

/// A client for `emu` recording every request; `time_scale` scales the write budget.
pub fn client_with(emu: &Emulator, auth: AuthConfig, time_scale: f64) -> (GraphClient, Log) {
    let mut cfg = GraphConfig::new(emu.base_url(), auth);
    cfg.write_budget = WriteBudget::default().time_scaled(time_scale);
    cfg.resource_unit_budget =
        ad2entra::entra::graph::ResourceUnitBudget::default().time_scaled(time_scale);
    cfg.retry_base = std::time::Duration::from_millis(20);
    cfg.timeout = std::time::Duration::from_secs(20);
    let log: Log = Arc::default();
    let l = log.clone();
    let client = GraphClient::new(cfg)
        .expect("client")
        .with_observer(Arc::new(move |r: &ObservedRequest| {
            l.lock().unwrap().push(r.clone())
        }));
    (client, log)
}

/// A client with an explicit write budget.
pub fn client_budget(
    emu: &Emulator,
    cfg: &EmulatorConfig,
    budget: WriteBudget,
) -> (GraphClient, Log) {
    let mut gc = GraphConfig::new(emu.base_url(), secret_auth(emu, cfg));
    gc.write_budget = budget;
    gc.retry_base = std::time::Duration::from_millis(20);
    gc.timeout = std::time::Duration::from_secs(20);
    let log: Log = Arc::default();
    let l = log.clone();
    let client = GraphClient::new(gc)
        .expect("client")
        .with_observer(Arc::new(move |r: &ObservedRequest| {
            l.lock().unwrap().push(r.clone())
        }));
    (client, log)
}

pub fn client(emu: &Emulator, cfg: &EmulatorConfig) -> (GraphClient, Log) {
    client_with(emu, secret_auth(emu, cfg), cfg.throttling.time_scale)
}

/// Every recorded request passes the emulator's OpenAPI conformance check.
pub fn assert_conformant(log: &Log) {
    let log = log.lock().unwrap();
    assert!(!log.is_empty(), "no request recorded");
    let mut errors = Vec::new();
    for r in log.iter() {
        if let Err(e) =
            graph_emulator::conformance::check_request(&r.method, &r.path, r.body.as_ref())
        {
            // Known divergence: the description types deletedItems as directoryObject,
            // so its $select enum lists only id/deletedDateTime; Graph returns the
            // deleted user itself and accepts its properties in $select, which the
            // restore path needs (the list cast when reading, the item when
            // re-checking a restore before writing).
            let deleted_items_select = |l: &str| {
                l.contains("$select value")
                    && (r.path.starts_with("/directory/deletedItems/")
                        || l.contains("GET /directory/deletedItems/"))
            };
            let rest: Vec<&str> = e.lines().filter(|l| !deleted_items_select(l)).collect();
            if !rest.is_empty() {
                errors.push(format!("{} {}: {}", r.method, r.path, rest.join("\n")));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "non-conformant requests:\n{}",
        errors.join("\n")
    );
}

pub fn ext() -> ExtensionNames {
    ExtensionNames::for_app(graph_emulator::config::DEFAULT_CLIENT_ID)
}

pub fn app_id() -> Option<String> {
    Some(graph_emulator::config::DEFAULT_CLIENT_ID.to_string())
}

pub fn anchor(n: u32) -> Anchor {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&n.to_le_bytes());
    b[15] = 0xad;
    use base64::Engine;
    Anchor::from(base64::engine::general_purpose::STANDARD.encode(b))
}

pub fn test_plan(actions: Vec<Action>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        generator: "test".into(),
        policy: PolicyProvenance {
            path: "policy".into(),
            content_hash: "h1".into(),
            commit: None,
        },
        source: SourceProvenance::default(),
        target: TargetProvenance::default(),
        now: "2025-01-01T00:00:00Z".into(),
        summary: Summary::default(),
        actions,
        blocked: vec![],
        diagnostics: vec![],
    }
}

/// A JSON Patch adding every property of `props`.
pub fn add_patch(props: &Value) -> json_patch::Patch {
    let ops: Vec<Value> = props
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| json!({"op":"add","path":format!("/{k}"),"value":v}))
        .collect();
    serde_json::from_value(Value::Array(ops)).unwrap()
}

pub fn replace_patch(props: &Value) -> json_patch::Patch {
    let ops: Vec<Value> = props
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| json!({"op":"replace","path":format!("/{k}"),"value":v}))
        .collect();
    serde_json::from_value(Value::Array(ops)).unwrap()
}

pub fn obj(t: ObjectType, anchor: Option<Anchor>, name: &str, id: Option<String>) -> ObjectRef {
    ObjectRef {
        object_type: t,
        anchor,
        dn: None,
        name: name.into(),
        id,
        source: None,
    }
}

pub fn create_user(n: u32, upn: &str) -> Action {
    let a = anchor(n);
    let nick = upn.split('@').next().unwrap();
    let props = json!({
        "accountEnabled": true,
        "displayName": format!("User {n}"),
        "mailNickname": nick,
        "userPrincipalName": upn,
        "usageLocation": "US",
        "onPremisesImmutableId": a.as_str(),
        ext().anchor: a.as_str(),
    });
    Action {
        op: Operation::Create,
        object: obj(ObjectType::User, Some(a), upn, None),
        before: None,
        patch: add_patch(&props),
        members: vec![],
        skus: vec![],
        reason: "in scope".into(),
    }
}

pub fn create_group(n: u32, name: &str) -> Action {
    let a = anchor(n);
    let props = json!({
        "displayName": name,
        "mailNickname": name.replace(' ', "-").to_lowercase(),
        "securityEnabled": true,
        "mailEnabled": false,
        ext().anchor: a.as_str(),
    });
    Action {
        op: Operation::Create,
        object: obj(ObjectType::Group, Some(a), name, None),
        before: None,
        patch: add_patch(&props),
        members: vec![],
        skus: vec![],
        reason: "in scope".into(),
    }
}

/// add-members of users (by anchor, created in the same plan) to a group (by anchor).
pub fn add_members(group_n: u32, group_name: &str, user_ns: &[u32]) -> Action {
    Action {
        op: Operation::AddMembers,
        object: obj(ObjectType::Group, Some(anchor(group_n)), group_name, None),
        before: None,
        patch: json_patch::Patch(vec![]),
        members: user_ns
            .iter()
            .map(|n| MemberRef {
                object_type: ObjectType::User,
                anchor: Some(anchor(*n)),
                id: None,
                name: format!("user{n}"),
            })
            .collect(),
        skus: vec![],
        reason: "membership".into(),
    }
}

/// The default app of `cfg` with the anchor extensions registered, as `init` leaves it: seed
/// it so reads may select them without running `init`.
pub fn app_with_anchor_extensions(
    cfg: &EmulatorConfig,
) -> graph_emulator::config::ApplicationConfig {
    let ext = |name: &str| graph_emulator::config::ExtensionPropertyConfig {
        name: name.into(),
        data_type: "String".into(),
        target_objects: vec!["User".into(), "Group".into()],
        is_multi_valued: false,
    };
    graph_emulator::config::ApplicationConfig {
        extension_properties: vec![ext("ad2entraAnchor"), ext("ad2entraOrphanedAt")],
        ..cfg.applications[0].clone()
    }
}

/// Seed properties of user `n`: `u{n}@corp.example.com`, displayName `U {n}`.
pub fn seed_user(n: usize) -> serde_json::Map<String, Value> {
    let v = json!({
        "userPrincipalName": format!("u{n}@corp.example.com"),
        "displayName": format!("U {n}"),
        "mailNickname": format!("u{n}"),
        "accountEnabled": true,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// Registers the anchor extension as `ad2entra init` does: objects can only carry it once
/// it exists.
pub async fn init_extension(client: &GraphClient, cfg: &EmulatorConfig) {
    ad2entra::init::run_init(
        client,
        &ad2entra::init::InitOptions {
            app_object_id: Some(cfg.applications[0].id.clone()),
            ..ad2entra::init::InitOptions::new(cfg.client_id.clone())
        },
    )
    .await
    .expect("init");
}
