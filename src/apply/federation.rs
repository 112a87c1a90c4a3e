//! Applying the plan's domain actions: creating and updating a domain's
//! `internalDomainFederation` through the Graph client (its retries and write limiter).
//!
//! They run before the user and group phases, one domain at a time (a tenant has a few),
//! with the same guarantees as the rest of apply:
//! - **stale check**: an update re-reads the configuration and is not written when a
//!   property it manages changed since the plan (`before` no longer holds), or when the
//!   configuration is gone;
//! - **idempotent create**: a create that fails or whose outcome is unknown is not repeated
//!   blindly — the domain is looked up; a configuration equal to the plan's counts as done,
//!   another one makes the action stale (re-plan to update it).

use super::{ActionStatus, ApplyOptions, patch_body};
use crate::entra::graph::federation::{collection_path, get_federation, item_path};
use crate::entra::graph::http::{GraphRequest, RetryMode, backoff};
use crate::entra::graph::{GraphClient, GraphError};
use crate::model::TargetObject;
use crate::model::target::PropRef;
use crate::plan::{Action, ObjectType, Operation, Plan};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// The outcome of one domain action, for `apply_plan` to record.
#[derive(Debug)]
pub(super) struct DomainResult {
    pub index: usize,
    pub status: ActionStatus,
    pub code: Option<String>,
    pub message: Option<String>,
    /// The federation configuration's id.
    pub id: Option<String>,
}

impl DomainResult {
    fn ok(index: usize, id: Option<String>, message: Option<String>) -> Self {
        DomainResult {
            index,
            status: ActionStatus::Ok,
            code: None,
            message,
            id,
        }
    }

    fn not_ok(index: usize, status: ActionStatus, code: &str, message: String) -> Self {
        DomainResult {
            index,
            status,
            code: Some(code.to_string()),
            message: Some(message),
            id: None,
        }
    }

    fn failed(index: usize, e: &GraphError) -> Self {
        let code = e.code().unwrap_or("graph-error").to_string();
        DomainResult {
            index,
            status: ActionStatus::Failed,
            code: Some(code),
            message: Some(e.to_string()),
            id: None,
        }
    }
}

/// Missing and `null` are the same; everything else compares as JSON.
fn same(a: Option<&Value>, b: Option<PropRef<'_>>) -> bool {
    b.unwrap_or(PropRef::Null)
        .eq_value(a.unwrap_or(&Value::Null))
}

/// Whether the configuration holds every property of `wanted`.
fn holds(current: &TargetObject, wanted: &Value) -> bool {
    wanted
        .as_object()
        .is_none_or(|w| w.iter().all(|(k, v)| same(Some(v), current.props.get(k))))
}

/// Runs every domain action of the plan; other actions are left to the phases.
pub(super) async fn apply_domain_actions(
    plan: &Plan,
    client: &GraphClient,
    opts: &ApplyOptions,
) -> Vec<DomainResult> {
    let mut out = Vec::new();
    for (i, a) in plan.actions.iter().enumerate() {
        if a.object.object_type != ObjectType::Domain {
            continue;
        }
        let result = match (a.op, a.after()) {
            (_, Err(e)) => {
                DomainResult::not_ok(i, ActionStatus::Failed, "invalid-patch", e.to_string())
            }
            (Operation::Create, Ok(after)) => create(i, a, &after, client, opts).await,
            (Operation::Update, Ok(after)) => update(i, a, &after, client).await,
            (op, _) => DomainResult::not_ok(
                i,
                ActionStatus::Failed,
                "unsupported-operation",
                format!(
                    "{} is not an operation on a domain's federation",
                    op.as_str()
                ),
            ),
        };
        if result.status == ActionStatus::Ok {
            tracing::info!(domain = %a.object.name, op = a.op.as_str(), "domain federation written");
        }
        out.push(result);
    }
    out
}

async fn create(
    i: usize,
    a: &Action,
    after: &Value,
    client: &GraphClient,
    opts: &ApplyOptions,
) -> DomainResult {
    let domain = &a.object.name;
    let req = GraphRequest::write(Method::POST, collection_path(domain), Some(after.clone()));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let err = match client.execute(&req, RetryMode::ThrottleOnly).await {
            Ok(r) => {
                let id = r.body.get("id").and_then(Value::as_str).map(str::to_string);
                return DomainResult::ok(i, id, None);
            }
            Err(e) => e,
        };
        // A create that may have landed is looked up after the replication delay;
        // a refused one (e.g. "already exists") at once.
        if err.is_transient() {
            tokio::time::sleep(opts.lookup_delay).await;
        }
        match get_federation(client, domain).await {
            Ok(Some(cur)) if holds(&cur, after) => {
                return DomainResult::ok(
                    i,
                    Some(cur.id),
                    Some("the configuration already existed as planned".into()),
                );
            }
            Ok(Some(_)) => {
                return DomainResult::not_ok(
                    i,
                    ActionStatus::Stale,
                    "stale",
                    format!(
                        "{domain} has a federation configuration the plan did not see; re-plan to update it"
                    ),
                );
            }
            Ok(None) if err.is_transient() && attempt < opts.max_attempts => {
                tokio::time::sleep(backoff(attempt, Duration::from_millis(500))).await;
            }
            Ok(None) => return DomainResult::failed(i, &err),
            Err(lookup) => return DomainResult::failed(i, &lookup),
        }
    }
}

async fn update(i: usize, a: &Action, after: &Value, client: &GraphClient) -> DomainResult {
    let domain = &a.object.name;
    let cur = match get_federation(client, domain).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return DomainResult::not_ok(
                i,
                ActionStatus::Stale,
                "stale",
                format!("{domain} has no federation configuration any more"),
            );
        }
        Err(e) => return DomainResult::failed(i, &e),
    };
    let empty = serde_json::Map::new();
    let before = a
        .before
        .as_ref()
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let managed = before
        .keys()
        .chain(after.as_object().into_iter().flat_map(|m| m.keys()));
    for k in managed {
        if !same(before.get(k), cur.props.get(k)) {
            return DomainResult::not_ok(
                i,
                ActionStatus::Stale,
                "stale",
                format!("{k} of {domain}'s federation changed since the plan was made"),
            );
        }
    }
    let body = patch_body(a.before.as_ref(), after);
    if body.is_empty() {
        return DomainResult::ok(i, Some(cur.id), Some("nothing to change".into()));
    }
    let req = GraphRequest::write(
        Method::PATCH,
        item_path(domain, &cur.id),
        Some(Value::Object(body)),
    );
    match client.execute(&req, RetryMode::Idempotent).await {
        Ok(_) => DomainResult::ok(i, Some(cur.id), None),
        Err(e) => DomainResult::failed(i, &e),
    }
}
