//! Executes a [`Plan`] against Graph.
//!
//! Apply never decides *what* to change (the planner did); it checks that the plan still
//! holds (format, policy, each object's `before`, ownership), then turns actions into
//! `$batch` requests in the plan's phase order (objects, then memberships and licences,
//! then disables, then deletes), and records what happened to each action.
//!
//! Every write is idempotent by anchor: a create whose outcome is unknown is looked up
//! by anchor before it is retried, so retries never make duplicates.
//!
//! An apply may have a deadline and a cancellation token ([`ApplyOptions`]). When either
//! comes, no new request is started, requests in flight get a short grace to finish, and
//! every action not done is reported [`ActionStatus::Pending`] — not failed: the next plan
//! recomputes what is left, and a pending create that did reach Graph is found there by
//! its anchor, so nothing is made twice. Throttling alone never fails an action: a 429 is
//! waited out (the client's gate pauses every request until its Retry-After) without
//! using up the action's attempts.

use crate::entra::graph::batch::{BatchItem, BatchItemResponse};
use crate::entra::graph::http::{RetryMode, backoff, with_query};
use crate::entra::graph::{GraphClient, GraphError, StatsSnapshot, Stop};
use crate::model::target::{DEFAULT_EXTENSION_APP_ID, ExtensionNames};
use crate::plan::{Action, FORMAT_VERSION, ObjectType, Operation, Plan};
use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

mod federation;
mod journal;

pub use journal::CreateJournal;

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// The policy hash the caller expects the plan to come from (the current policy).
    pub expected_policy_hash: Option<String>,
    /// Apply a plan made from another policy anyway.
    pub allow_policy_change: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// App id naming the anchor extension (default: the snapshot default app id).
    pub extension_app_id: Option<String>,
    /// How long a 404 on an object created in this apply is retried (replication lag).
    pub replication_wait: Duration,
    /// How long after an unknown-outcome create to look it up by anchor (must exceed
    /// the directory's replication lag, or the lookup may miss a create that happened).
    pub lookup_delay: Duration,
    /// Attempts per request before an action is reported failed (429s do not count).
    pub max_attempts: u32,
    /// When to stop starting requests; what is not done then is reported pending.
    pub deadline: Option<tokio::time::Instant>,
    /// Cancels the apply like a deadline that has come (the reconciler's shutdown).
    pub cancel: Option<tokio_util::sync::CancellationToken>,
    /// How long requests in flight at the stop may take to answer before they are
    /// abandoned (their actions reported pending, outcome unknown).
    pub in_flight_grace: Duration,
    /// Remembers creates sent across processes, so that a create whose process died
    /// before its answer is looked up, not sent again (see [`CreateJournal`]).
    pub journal: Option<std::sync::Arc<CreateJournal>>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            expected_policy_hash: None,
            allow_policy_change: false,
            progress: false,
            extension_app_id: None,
            replication_wait: Duration::from_secs(60),
            lookup_delay: Duration::from_secs(10),
            max_attempts: 10,
            deadline: None,
            cancel: None,
            in_flight_grace: Duration::from_secs(10),
            journal: None,
        }
    }
}

/// Why apply refused to start (no write was made).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan's JSON shape is another version. Terminal.
    #[error("plan formatVersion {found} is not supported (expected {expected})")]
    FormatVersion { found: u32, expected: u32 },
    /// The plan was made from another policy. Terminal unless `allow_policy_change`.
    #[error(
        "plan was computed from policy {plan} but the current policy is {expected}; re-plan or allow the policy change"
    )]
    PolicyChanged { plan: String, expected: String },
    /// Reading the objects for the stale check failed. Transient when the read was.
    #[error("re-reading objects before apply: {0}")]
    Graph(#[from] GraphError),
}

impl ApplyError {
    /// True when running the same apply later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            ApplyError::Graph(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// What happened to one action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    Ok,
    Failed,
    /// The object changed since the plan (`before` no longer holds): not written.
    Stale,
    /// Not attempted, because something it depends on failed.
    Skipped,
    /// Not done when the apply's deadline passed or it was cancelled: not started, or
    /// sent without an answer. The next plan recomputes it.
    Pending,
}

/// One action's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// Index in `plan.actions`.
    pub index: usize,
    pub op: Operation,
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// Graph id (for creates: the new id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub status: ActionStatus,
    /// Graph's error code, or ours (`not-owned`, `dirsynced-object`, `stale`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Counts of results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyCounts {
    pub ok: usize,
    pub failed: usize,
    pub stale: usize,
    pub skipped: usize,
    pub pending: usize,
}

/// What apply did, for `apply --report FILE` and the reconciler's status.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub started_at: String,
    pub duration_ms: u64,
    pub counts: ApplyCounts,
    /// HTTP requests sent to Graph during this apply (a `$batch` counts once).
    pub requests: u64,
    /// Writes sent (inner requests included; retries counted).
    pub writes: u64,
    /// 429 responses seen (outer and inner).
    pub throttled: u64,
    pub retries: u64,
    pub transport_errors: u64,
    pub results: Vec<ActionResult>,
}

impl ApplyReport {
    /// The outcomes the planner's memory of refused writes learns from
    /// ([`crate::plan::refused::RefusedWrites::record`]).
    pub fn outcomes(&self) -> impl Iterator<Item = crate::plan::refused::Outcome<'_>> {
        use crate::plan::refused::{Outcome, OutcomeStatus};
        self.results.iter().map(|r| Outcome {
            index: r.index,
            status: match r.status {
                ActionStatus::Ok => OutcomeStatus::Ok,
                ActionStatus::Failed => OutcomeStatus::Failed,
                _ => OutcomeStatus::Other,
            },
            code: r.code.as_deref(),
            message: r.message.as_deref(),
        })
    }

    /// True when every action succeeded.
    pub fn is_success(&self) -> bool {
        self.is_complete()
            && self.counts.failed == 0
            && self.counts.stale == 0
            && self.counts.skipped == 0
    }

    /// True when the apply ran to its end: no action is pending because of a deadline or
    /// a cancellation.
    pub fn is_complete(&self) -> bool {
        self.counts.pending == 0
    }

    /// True when some action failed, went stale or was skipped (it needs a look, unlike
    /// pending actions, which the next run finishes).
    pub fn has_failures(&self) -> bool {
        self.counts.failed + self.counts.stale + self.counts.skipped > 0
    }
}

/// A strong random password for a new user (never logged; the user must change it,
/// and with cloud-only auth an admin resets it or SSPR is used).
pub fn generate_password() -> String {
    use rand::Rng;
    use rand::seq::SliceRandom;
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYM: &[u8] = b"!#%+-.:=?@^_~";
    let mut rng = rand::rng();
    let mut chars: Vec<u8> = Vec::with_capacity(32);
    for set in [LOWER, UPPER, DIGIT, SYM] {
        for _ in 0..2 {
            chars.push(set[rng.random_range(0..set.len())]);
        }
    }
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYM].concat();
    while chars.len() < 24 {
        chars.push(all[rng.random_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    String::from_utf8(chars).unwrap_or_default()
}

/// The PATCH body taking `before` to `after`: changed and added top-level properties,
/// removed ones as `null` (pure).
pub fn patch_body(before: Option<&Value>, after: &Value) -> Map<String, Value> {
    let empty = Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    for (k, v) in a {
        if b.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

/// The create body: the desired properties, plus a generated initial password for users.
pub fn create_body(object_type: ObjectType, after: &Value) -> Value {
    let mut body = after.as_object().cloned().unwrap_or_default();
    if object_type == ObjectType::User {
        body.insert(
            "passwordProfile".into(),
            json!({"password": generate_password(), "forceChangePasswordNextSignIn": true}),
        );
    }
    Value::Object(body)
}

fn collection(t: ObjectType) -> &'static str {
    match t {
        ObjectType::User => "/users",
        ObjectType::Group => "/groups",
        ObjectType::Domain => "/domains",
    }
}

/// `$filter` lookup of an object by anchor: `onPremisesImmutableId` for users, the
/// anchor extension for groups (pure).
pub fn anchor_lookup_path(t: ObjectType, anchor: &str, ext: &ExtensionNames) -> String {
    let prop = match t {
        ObjectType::User => "onPremisesImmutableId",
        ObjectType::Group | ObjectType::Domain => ext.anchor.as_str(),
    };
    let quoted = anchor.replace('\'', "''");
    with_query(
        collection(t),
        &[
            ("$filter", format!("{prop} eq '{quoted}'")),
            ("$select", format!("id,{prop}")),
        ],
    )
}

/// The id of the object in a lookup page that really carries `anchor` (a server that
/// ignored the filter must not make us adopt another object's id).
fn lookup_match(
    body: &Value,
    object_type: ObjectType,
    anchor: &str,
    ext: &ExtensionNames,
) -> Option<String> {
    let prop = match object_type {
        ObjectType::User => "onPremisesImmutableId",
        ObjectType::Group | ObjectType::Domain => ext.anchor.as_str(),
    };
    body.get("value")?
        .as_array()?
        .iter()
        .find(|o| o.get(prop).and_then(Value::as_str) == Some(anchor))
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// JSON equality where a missing value equals `null` and arrays compare as multisets
/// (Graph does not promise an order for `assignedLicenses`, `businessPhones`…).
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    let a = a.unwrap_or(&Value::Null);
    let b = b.unwrap_or(&Value::Null);
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut xs: Vec<String> = x.iter().map(Value::to_string).collect();
            let mut ys: Vec<String> = y.iter().map(Value::to_string).collect();
            xs.sort();
            ys.sort();
            xs == ys
        }
        _ => a == b,
    }
}

/// Keys of `before` that can be `$select`ed and compared (skips relationships).
fn comparable_keys(before: &Value) -> Vec<String> {
    before
        .as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !k.contains('@') && *k != "members" && *k != "id")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Why an existing object may not be written by this action (pure). `current` is the
/// object as just read.
pub fn check_current(
    action: &Action,
    current: &Map<String, Value>,
    ext: &ExtensionNames,
) -> Result<(), (ActionStatus, &'static str, String)> {
    if current.get("onPremisesSyncEnabled") == Some(&Value::Bool(true)) {
        return Err((
            ActionStatus::Failed,
            "dirsynced-object",
            "object is synced by Entra Connect or Cloud Sync (onPremisesSyncEnabled); not written"
                .into(),
        ));
    }
    let marker = current.get(&ext.anchor).and_then(Value::as_str);
    if action.op != Operation::Adopt {
        match (marker, action.object.anchor.as_ref()) {
            (None, _) => {
                return Err((
                    ActionStatus::Failed,
                    "not-owned",
                    format!(
                        "object carries no {} marker; ad2entra does not own it",
                        ext.anchor
                    ),
                ));
            }
            (Some(m), Some(a)) if m != a.as_str() => {
                return Err((
                    ActionStatus::Stale,
                    "stale",
                    "object now carries another anchor".into(),
                ));
            }
            _ => {}
        }
    } else if let (Some(m), Some(a)) = (marker, action.object.anchor.as_ref())
        && m != a.as_str()
    {
        return Err((
            ActionStatus::Failed,
            "not-owned",
            "object is owned by another anchor; refusing to adopt it".into(),
        ));
    }
    if let Some(before) = &action.before {
        for k in comparable_keys(before) {
            if !same_value(before.get(&k), current.get(&k)) {
                return Err((
                    ActionStatus::Stale,
                    "stale",
                    format!("{k} changed since the plan was made"),
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Execution machinery

/// Which errors on a request count as done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tolerate {
    None,
    /// 404: delete of something already gone, removal of a non-member.
    NotFound,
    /// 400 "…already exist…": member already there.
    AlreadyMember,
}

/// One request of a unit; `Debug` masks the secrets in the body (a create's password).
#[derive(Clone)]
struct Req {
    method: Method,
    url: String,
    body: Option<Value>,
    tolerate: Tolerate,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Req")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &crate::secrets::redacted_body(&self.body))
            .field("tolerate", &self.tolerate)
            .finish()
    }
}

#[derive(Clone, Debug)]
enum UnitKind {
    Create {
        object_type: ObjectType,
        anchor: String,
    },
    /// A members@odata.bind chunk: on "already exist" it is split into single adds.
    BindChunk {
        group: String,
        members: Vec<String>,
    },
    Other,
}

#[derive(Clone, Debug)]
struct Unit {
    action: usize,
    reqs: Vec<Req>,
    kind: UnitKind,
    attempts: u32,
    ready_at: Instant,
    /// 404s before this instant are replication lag: retry.
    lag_until: Option<Instant>,
    /// A create whose "conflict" already triggered one anchor lookup.
    conflict_checked: bool,
    /// Set while a conflict is being looked up: the error to report if not ours.
    conflict: Option<(String, String)>,
    /// An earlier attempt of this unit may have been executed (5xx, timeout, dropped
    /// connection): a later conflict may be our own write.
    maybe_landed: bool,
}

impl Unit {
    fn new(action: usize, reqs: Vec<Req>, kind: UnitKind) -> Self {
        Unit {
            action,
            reqs,
            kind,
            attempts: 0,
            ready_at: Instant::now(),
            lag_until: None,
            conflict_checked: false,
            conflict: None,
            maybe_landed: false,
        }
    }
}

#[derive(Debug)]
struct ActionState {
    pending_units: usize,
    status: Option<ActionStatus>,
    code: Option<String>,
    message: Option<String>,
    id: Option<String>,
    notes: Vec<String>,
    /// A request of it may have reached Graph without our knowing the outcome.
    maybe_sent: bool,
}

enum TaskOut {
    Batch(
        Vec<Unit>,
        Result<HashMap<String, BatchItemResponse>, GraphError>,
    ),
    Lookup(
        Vec<Unit>,
        Result<HashMap<String, BatchItemResponse>, GraphError>,
    ),
}

struct Runner<'a> {
    plan: &'a Plan,
    client: &'a GraphClient,
    opts: &'a ApplyOptions,
    ext: ExtensionNames,
    states: Vec<ActionState>,
    /// anchor → Graph id, for objects created or restored by this apply.
    created: HashMap<String, String>,
    /// anchors whose create failed.
    failed_creates: HashMap<String, String>,
    progress: Option<indicatif::ProgressBar>,
    graph_root: String,
    /// skuPartNumber → skuId from `/subscribedSkus`, when an action names only the part.
    sku_ids: HashMap<String, String>,
    /// The apply's deadline and cancellation.
    stop: Stop,
    /// Set once the stop came: nothing new starts.
    stopped: bool,
}

fn phase(op: Operation) -> usize {
    match op {
        Operation::Create | Operation::Restore | Operation::Adopt | Operation::Update => 0,
        Operation::AddMembers
        | Operation::RemoveMembers
        | Operation::AssignLicense
        | Operation::RemoveLicense => 1,
        Operation::Disable => 2,
        Operation::Delete => 3,
    }
}

/// Graph's error code of a 429.
const THROTTLED: &str = "TooManyRequests";

fn is_already_exists(r: &BatchItemResponse) -> bool {
    r.status == 400 && r.error().1.contains("already exist")
}

impl<'a> Runner<'a> {
    fn finish(
        &mut self,
        i: usize,
        status: ActionStatus,
        code: Option<String>,
        msg: Option<String>,
    ) {
        let s = &mut self.states[i];
        if s.status.is_none() {
            s.status = Some(status);
            s.code = code;
            s.message = msg;
            if let Some(p) = &self.progress {
                p.inc(1);
            }
        }
    }

    /// A unit of action `i` completed (ok or failed).
    fn unit_done(&mut self, i: usize, failure: Option<(String, String)>) {
        let s = &mut self.states[i];
        s.pending_units = s.pending_units.saturating_sub(1);
        if let Some((c, m)) = failure
            && s.code.is_none()
        {
            s.code = Some(c);
            s.message = Some(m);
        }
        if s.pending_units == 0 && s.status.is_none() {
            let (status, code, msg) = match (&s.code, s.notes.is_empty()) {
                (Some(_), _) => (ActionStatus::Failed, s.code.clone(), s.message.clone()),
                (None, true) => (ActionStatus::Ok, None, None),
                (None, false) => (ActionStatus::Ok, None, Some(s.notes.join("; "))),
            };
            self.finish(i, status, code, msg);
        }
    }

    fn resolve(
        &self,
        id: Option<&String>,
        anchor: Option<&crate::model::Anchor>,
    ) -> Option<String> {
        id.cloned()
            .or_else(|| anchor.and_then(|a| self.created.get(a.as_str()).cloned()))
    }

    fn object_url(&self, i: usize) -> Result<String, String> {
        let a = &self.plan.actions[i];
        match self.resolve(a.object.id.as_ref(), a.object.anchor.as_ref()) {
            Some(id) => Ok(format!("{}/{id}", collection(a.object.object_type))),
            None => Err(a
                .object
                .anchor
                .as_ref()
                .and_then(|an| self.failed_creates.get(an.as_str()).cloned())
                .unwrap_or_else(|| "object has no Graph id".into())),
        }
    }

    /// Marks action `i` skipped because something it needs was not created.
    fn skip_dependency_failed(&mut self, i: usize, msg: String) {
        self.finish(
            i,
            ActionStatus::Skipped,
            Some("dependency-failed".into()),
            Some(msg),
        );
    }

    /// The Graph id of action `i`'s own object; `None`, with the action marked skipped, when
    /// the object has none (its create failed or never ran).
    fn own_id_or_skip(&mut self, i: usize) -> Option<String> {
        let a = &self.plan.actions[i];
        let id = self.resolve(a.object.id.as_ref(), a.object.anchor.as_ref());
        if id.is_none() {
            let m = self.object_url(i).err().unwrap_or_default();
            self.skip_dependency_failed(i, m);
        }
        id
    }

    /// Builds the units of action `i` (pure apart from the created-id map).
    fn units_for(&mut self, i: usize) -> Vec<Unit> {
        let a = &self.plan.actions[i];
        let t = a.object.object_type;
        let after = match a.after() {
            Ok(v) => v,
            Err(e) => {
                self.finish(
                    i,
                    ActionStatus::Failed,
                    Some("invalid-patch".into()),
                    Some(e.to_string()),
                );
                return Vec::new();
            }
        };
        let lag = Some(Instant::now() + self.opts.replication_wait);
        let req = |method: Method, url: String, body: Option<Value>| Req {
            method,
            url,
            body,
            tolerate: Tolerate::None,
        };
        match a.op {
            Operation::Create => {
                let Some(anchor) = a.object.anchor.clone() else {
                    self.finish(
                        i,
                        ActionStatus::Failed,
                        Some("no-anchor".into()),
                        Some("create without an anchor cannot be made idempotent".into()),
                    );
                    return Vec::new();
                };
                vec![Unit::new(
                    i,
                    vec![req(
                        Method::POST,
                        collection(t).into(),
                        Some(create_body(t, &after)),
                    )],
                    UnitKind::Create {
                        object_type: t,
                        anchor: anchor.0.to_string(),
                    },
                )]
            }
            Operation::Update | Operation::Adopt | Operation::Disable | Operation::Restore => {
                let Some(id) = a.object.id.clone() else {
                    self.finish(
                        i,
                        ActionStatus::Failed,
                        Some("no-id".into()),
                        Some("object has no Graph id".into()),
                    );
                    return Vec::new();
                };
                let url = format!("{}/{id}", collection(t));
                let body = patch_body(a.before.as_ref(), &after);
                let mut reqs = Vec::new();
                if a.op == Operation::Restore {
                    reqs.push(req(
                        Method::POST,
                        format!("/directory/deletedItems/{id}/restore"),
                        None,
                    ));
                    if let Some(an) = &a.object.anchor {
                        self.created.insert(an.0.to_string(), id.clone());
                    }
                }
                if !body.is_empty() {
                    reqs.push(req(Method::PATCH, url, Some(Value::Object(body))));
                }
                if reqs.is_empty() {
                    return Vec::new();
                }
                let mut u = Unit::new(i, reqs, UnitKind::Other);
                if a.op == Operation::Restore {
                    u.lag_until = lag;
                }
                vec![u]
            }
            Operation::Delete => match self.object_url(i) {
                Ok(url) => vec![Unit::new(
                    i,
                    vec![Req {
                        method: Method::DELETE,
                        url,
                        body: None,
                        tolerate: Tolerate::NotFound,
                    }],
                    UnitKind::Other,
                )],
                Err(m) => {
                    self.skip_dependency_failed(i, m);
                    Vec::new()
                }
            },
            Operation::AddMembers | Operation::RemoveMembers => {
                let Some(gid) = self.own_id_or_skip(i) else {
                    return Vec::new();
                };
                let group_created = a
                    .object
                    .anchor
                    .as_ref()
                    .is_some_and(|an| self.created.contains_key(an.as_str()));
                let mut ids = Vec::new();
                let mut missing = Vec::new();
                let mut any_created = group_created;
                for m in &a.members {
                    match self.resolve(m.id.as_ref(), m.anchor.as_ref()) {
                        Some(id) => {
                            any_created |= m.id.is_none();
                            ids.push(id)
                        }
                        None => missing.push(m.name.clone()),
                    }
                }
                if ids.is_empty() && !missing.is_empty() {
                    self.skip_dependency_failed(
                        i,
                        format!("members not created: {}", missing.join(", ")),
                    );
                    return Vec::new();
                }
                if !missing.is_empty() {
                    let s = &mut self.states[i];
                    s.code = Some("dependency-failed".into());
                    s.message = Some(format!(
                        "members not created, skipped: {}",
                        missing.join(", ")
                    ));
                }
                let mut units = Vec::new();
                if a.op == Operation::AddMembers {
                    for chunk in ids.chunks(20) {
                        let binds: Vec<String> = chunk
                            .iter()
                            .map(|m| format!("{}/directoryObjects/{m}", self.graph_root))
                            .collect();
                        let mut u = Unit::new(
                            i,
                            vec![Req {
                                method: Method::PATCH,
                                url: format!("/groups/{gid}"),
                                body: Some(json!({ "members@odata.bind": binds })),
                                tolerate: Tolerate::None,
                            }],
                            UnitKind::BindChunk {
                                group: gid.clone(),
                                members: chunk.to_vec(),
                            },
                        );
                        if any_created {
                            u.lag_until = lag;
                        }
                        units.push(u);
                    }
                } else {
                    for m in ids {
                        units.push(Unit::new(
                            i,
                            vec![Req {
                                method: Method::DELETE,
                                url: format!("/groups/{gid}/members/{m}/$ref"),
                                body: None,
                                tolerate: Tolerate::NotFound,
                            }],
                            UnitKind::Other,
                        ));
                    }
                }
                units
            }
            Operation::AssignLicense | Operation::RemoveLicense => {
                let Some(uid) = self.own_id_or_skip(i) else {
                    return Vec::new();
                };
                let created = a.object.id.is_none();
                let mut sku_ids = Vec::new();
                for s in &a.skus {
                    let id = s
                        .sku_id
                        .clone()
                        .or_else(|| self.sku_ids.get(&s.sku_part_number).cloned());
                    match id {
                        Some(id) => sku_ids.push(id),
                        None => {
                            self.finish(
                                i,
                                ActionStatus::Failed,
                                Some("unknown-sku".into()),
                                Some(format!(
                                    "tenant has no subscribed SKU {}",
                                    s.sku_part_number
                                )),
                            );
                            return Vec::new();
                        }
                    }
                }
                let body = if a.op == Operation::AssignLicense {
                    json!({
                        "addLicenses": sku_ids.iter().map(|s| json!({"skuId": s, "disabledPlans": []})).collect::<Vec<_>>(),
                        "removeLicenses": []
                    })
                } else {
                    json!({"addLicenses": [], "removeLicenses": sku_ids})
                };
                let mut u = Unit::new(
                    i,
                    vec![req(
                        Method::POST,
                        format!("/users/{uid}/assignLicense"),
                        Some(body),
                    )],
                    UnitKind::Other,
                );
                if created {
                    u.lag_until = lag;
                }
                vec![u]
            }
        }
    }
}

impl<'a> Runner<'a> {
    /// Re-reads every existing object the plan touches (batched GETs with `$select` of
    /// the keys in `before` plus the ownership markers) and marks actions that no longer
    /// hold as stale, or refused when the object is not ours.
    async fn stale_check(&mut self) -> Result<(), GraphError> {
        // (deleted?, type, id) → select keys
        let mut wanted: HashMap<(bool, ObjectType, String), BTreeSet<String>> = HashMap::new();
        for a in &self.plan.actions {
            let Some(id) = &a.object.id else { continue };
            if a.op == Operation::Create {
                continue;
            }
            let key = (a.op == Operation::Restore, a.object.object_type, id.clone());
            let sel = wanted.entry(key).or_default();
            sel.insert("id".into());
            sel.insert("onPremisesSyncEnabled".into());
            sel.insert(self.ext.anchor.clone());
            if a.object.object_type == ObjectType::User {
                sel.insert("onPremisesImmutableId".into());
            }
            if let Some(b) = &a.before {
                sel.extend(comparable_keys(b));
            }
        }
        let keys: Vec<(bool, ObjectType, String)> = {
            let mut k: Vec<_> = wanted.keys().cloned().collect();
            k.sort();
            k
        };
        let items: Vec<BatchItem> = keys
            .iter()
            .enumerate()
            .map(|(n, k)| {
                let base = if k.0 {
                    format!("/directory/deletedItems/{}", k.2)
                } else {
                    format!("{}/{}", collection(k.1), k.2)
                };
                let sel: Vec<String> = wanted[k].iter().cloned().collect();
                BatchItem::get(
                    n.to_string(),
                    with_query(&base, &[("$select", sel.join(","))]),
                )
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let responses = self.client.batch_get_all_until(items, &self.stop).await?;
        let by_key: HashMap<&(bool, ObjectType, String), &BatchItemResponse> = keys
            .iter()
            .enumerate()
            .filter_map(|(n, k)| responses.get(&n.to_string()).map(|r| (k, r)))
            .collect();
        for i in 0..self.plan.actions.len() {
            let a = &self.plan.actions[i];
            let Some(id) = &a.object.id else { continue };
            if a.op == Operation::Create {
                continue;
            }
            let key = (a.op == Operation::Restore, a.object.object_type, id.clone());
            let Some(r) = by_key.get(&key) else { continue };
            let verdict = if r.status == 404 {
                Err((
                    ActionStatus::Stale,
                    "stale",
                    if key.0 {
                        "deleted object is no longer restorable".to_string()
                    } else {
                        "object no longer exists".to_string()
                    },
                ))
            } else if !r.is_success() {
                let (c, m) = r.error();
                self.finish(
                    i,
                    ActionStatus::Failed,
                    Some(c),
                    Some(format!("re-read failed: {m}")),
                );
                continue;
            } else {
                let empty = Map::new();
                check_current(a, r.body.as_object().unwrap_or(&empty), &self.ext)
            };
            if let Err((status, code, msg)) = verdict {
                self.finish(i, status, Some(code.into()), Some(msg));
            }
        }
        Ok(())
    }

    async fn load_skus(&mut self) -> Result<(), GraphError> {
        let needed = self.plan.actions.iter().any(|a| {
            matches!(a.op, Operation::AssignLicense | Operation::RemoveLicense)
                && a.skus.iter().any(|s| s.sku_id.is_none())
        });
        if !needed {
            return Ok(());
        }
        for s in self.client.get_all_pages("/subscribedSkus").await? {
            if let (Some(id), Some(part)) = (
                s.get("skuId").and_then(Value::as_str),
                s.get("skuPartNumber").and_then(Value::as_str),
            ) {
                self.sku_ids.insert(part.to_string(), id.to_string());
            }
        }
        Ok(())
    }

    fn fail_unit(&mut self, u: &Unit, code: String, msg: String) {
        if let UnitKind::Create { anchor, .. } = &u.kind {
            let name = &self.plan.actions[u.action].object.name;
            self.failed_creates.insert(
                anchor.clone(),
                format!("create of {name} failed: {code}: {msg}"),
            );
        }
        self.unit_done(u.action, Some((code, msg)));
    }

    /// A transient failure: retry later, or look the create up first when its outcome
    /// is unknown (`executed_maybe`).
    // The two queues are the scheduler's; bundling them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn retry_later(
        &mut self,
        mut u: Unit,
        code: String,
        msg: String,
        retry_after: Option<Duration>,
        executed_maybe: bool,
        waiting: &mut Vec<Unit>,
        unknown: &mut Vec<(Unit, Instant)>,
    ) {
        // A 429 was not executed and says nothing about the action: it never uses up an
        // attempt (the gate waits out its Retry-After).
        if code != THROTTLED {
            u.attempts += 1;
        }
        if u.attempts >= self.opts.max_attempts {
            self.fail_unit(&u, code, format!("{msg} (after {} attempts)", u.attempts));
            return;
        }
        let now = Instant::now();
        u.maybe_landed |= executed_maybe;
        if executed_maybe && matches!(u.kind, UnitKind::Create { .. }) {
            unknown.push((u, now + self.opts.lookup_delay));
            return;
        }
        let wait = retry_after.unwrap_or_else(|| backoff(u.attempts, Duration::from_millis(250)));
        u.ready_at = now + wait;
        waiting.push(u);
    }

    fn unit_succeeded(&mut self, u: &Unit, first: Option<&BatchItemResponse>) {
        if let UnitKind::Create { anchor, .. } = &u.kind {
            match first.and_then(|r| r.body.get("id")).and_then(Value::as_str) {
                Some(id) => {
                    self.created.insert(anchor.clone(), id.to_string());
                    self.states[u.action].id = Some(id.to_string());
                }
                None => {
                    self.fail_unit(
                        u,
                        "invalid-response".into(),
                        "create response without id".into(),
                    );
                    return;
                }
            }
        }
        self.unit_done(u.action, None);
    }

    fn handle_batch(
        &mut self,
        units: Vec<Unit>,
        result: Result<HashMap<String, BatchItemResponse>, GraphError>,
        queue: &mut VecDeque<Unit>,
        waiting: &mut Vec<Unit>,
        unknown: &mut Vec<(Unit, Instant)>,
    ) {
        let map = match result {
            Ok(m) => m,
            Err(GraphError::Stopped) => {
                // Not sent: they stay not done (pending, if an earlier attempt may
                // have landed: maybe sent).
                waiting.extend(units);
                return;
            }
            Err(e) => {
                let transient = e.is_transient();
                let ra = match &e {
                    GraphError::Api { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let code = e.code().unwrap_or("transport").to_string();
                for u in units {
                    if transient {
                        self.retry_later(
                            u,
                            code.clone(),
                            e.to_string(),
                            ra,
                            true,
                            waiting,
                            unknown,
                        );
                    } else {
                        self.fail_unit(&u, code.clone(), e.to_string());
                    }
                }
                return;
            }
        };
        let now = Instant::now();
        for (k, mut u) in units.into_iter().enumerate() {
            let mut first_resp = None;
            let mut failed_at = None;
            for (j, req) in u.reqs.iter().enumerate() {
                let Some(r) = map.get(&item_id(k, j)) else {
                    failed_at = Some((j, None));
                    break;
                };
                if j == 0 {
                    first_resp = Some(r.clone());
                }
                let tolerated = match req.tolerate {
                    Tolerate::NotFound => r.status == 404,
                    Tolerate::AlreadyMember => is_already_exists(r),
                    Tolerate::None => {
                        r.status == 404 && u.attempts > 0 && req.url.ends_with("/restore")
                    }
                };
                if !r.is_success() && !tolerated {
                    failed_at = Some((j, Some(r.clone())));
                    break;
                }
            }
            let Some((j, resp)) = failed_at else {
                self.unit_succeeded(&u, first_resp.as_ref());
                continue;
            };
            let Some(r) = resp else {
                u.reqs.drain(..j);
                self.retry_later(
                    u,
                    "missing".into(),
                    "no inner response".into(),
                    None,
                    true,
                    waiting,
                    unknown,
                );
                continue;
            };
            let (mut code, msg) = r.error();
            if r.status == 429 {
                code = THROTTLED.into();
            }
            if r.status == 424 || r.is_transient() {
                // 429 and 424 were not executed; 5xx may have been.
                let maybe = r.status >= 500;
                u.reqs.drain(..j);
                self.retry_later(u, code, msg, r.retry_after(), maybe, waiting, unknown);
            } else if r.status == 404 && u.lag_until.is_some_and(|t| t > now) {
                u.reqs.drain(..j);
                self.retry_later(u, code, msg, None, false, waiting, unknown);
            } else if matches!(u.kind, UnitKind::Create { .. })
                && is_already_exists(&r)
                && !u.conflict_checked
            {
                // Perhaps our own earlier attempt: look it up by anchor before failing.
                // With no earlier attempt that may have landed, the object existed
                // before this apply: look now, and a match means the plan is stale.
                u.conflict_checked = true;
                u.conflict = Some((code, msg));
                let delay = if u.maybe_landed {
                    self.opts.lookup_delay
                } else {
                    Duration::ZERO
                };
                unknown.push((u, now + delay));
            } else if let (UnitKind::BindChunk { group, members }, true) =
                (&u.kind, is_already_exists(&r))
            {
                // All-or-nothing bind refused because some are members already (an
                // earlier attempt may have landed): add one by one, tolerating those.
                let group = group.clone();
                let members = members.clone();
                self.states[u.action].pending_units += members.len().saturating_sub(1);
                for m in members {
                    let mut single = Unit::new(
                        u.action,
                        vec![Req {
                            method: Method::POST,
                            url: format!("/groups/{group}/members/$ref"),
                            body: Some(json!({
                                "@odata.id": format!("{}/directoryObjects/{m}", self.graph_root)
                            })),
                            tolerate: Tolerate::AlreadyMember,
                        }],
                        UnitKind::Other,
                    );
                    single.lag_until = u.lag_until;
                    queue.push_back(single);
                }
            } else {
                self.fail_unit(&u, code, msg);
            }
        }
    }

    fn handle_lookup(
        &mut self,
        units: Vec<Unit>,
        result: Result<HashMap<String, BatchItemResponse>, GraphError>,
        queue: &mut VecDeque<Unit>,
        unknown: &mut Vec<(Unit, Instant)>,
    ) {
        let now = Instant::now();
        let map = match result {
            Ok(m) => m,
            Err(GraphError::Stopped) => {
                unknown.extend(units.into_iter().map(|u| (u, now)));
                return;
            }
            Err(e) => {
                for mut u in units {
                    u.attempts += 1;
                    if !e.is_transient() || u.attempts >= self.opts.max_attempts {
                        self.fail_unit(&u, "lookup-failed".into(), e.to_string());
                    } else {
                        unknown.push((u, now + backoff(1, Duration::from_secs(1))));
                    }
                }
                return;
            }
        };
        for (k, mut u) in units.into_iter().enumerate() {
            let r = map.get(&k.to_string());
            let found = r.filter(|r| r.is_success()).map(|r| match &u.kind {
                UnitKind::Create {
                    object_type,
                    anchor,
                } => lookup_match(&r.body, *object_type, anchor, &self.ext),
                _ => None,
            });
            match found {
                Some(Some(id)) if !u.maybe_landed && u.conflict.is_some() => {
                    // It existed before this apply started: the plan predates it.
                    self.states[u.action].id = Some(id);
                    self.finish(
                        u.action,
                        ActionStatus::Stale,
                        Some("stale".into()),
                        Some("already exists in Entra with this anchor; the plan is older than the object".into()),
                    );
                    self.unit_done(u.action, None);
                }
                Some(Some(id)) => {
                    if let UnitKind::Create { anchor, .. } = &u.kind {
                        self.created.insert(anchor.clone(), id.clone());
                    }
                    self.states[u.action].id = Some(id);
                    self.states[u.action]
                        .notes
                        .push("found by anchor after an unknown outcome; not created twice".into());
                    self.unit_done(u.action, None);
                }
                Some(None) => match u.conflict.take() {
                    // The unique value is held by an object that is not ours.
                    Some((code, msg)) => self.fail_unit(&u, code, msg),
                    None => queue.push_back(u),
                },
                None => unknown.push((u, now + backoff(1, Duration::from_secs(1)))),
            }
        }
    }

    /// When a create sent by an earlier process (the journal) is due for its lookup:
    /// the replication lag counted from that send.
    fn sent_earlier(&self, u: &Unit) -> Option<Instant> {
        let UnitKind::Create { anchor, .. } = &u.kind else {
            return None;
        };
        let sent = self.opts.journal.as_ref()?.sent_earlier(anchor)?;
        let since = std::time::SystemTime::now()
            .duration_since(sent)
            .unwrap_or_default();
        Some(Instant::now() + self.opts.lookup_delay.saturating_sub(since))
    }

    /// Journals the creates of a batch before it is sent. A journal that cannot be
    /// written is reported, not fatal: it only narrows a crash window.
    fn journal_creates(&self, batch: &[Unit]) {
        let Some(journal) = &self.opts.journal else {
            return;
        };
        let anchors: Vec<&str> = batch
            .iter()
            .filter_map(|u| match &u.kind {
                UnitKind::Create { anchor, .. } => Some(anchor.as_str()),
                _ => None,
            })
            .collect();
        if let Err(e) = journal.record(anchors) {
            tracing::warn!(error = %e, "cannot journal the creates about to be sent; a crash now could leave a create unknown to the next run");
        }
    }

    async fn run_phase(&mut self, units: Vec<Unit>) {
        let mut queue: VecDeque<Unit> = VecDeque::new();
        let mut waiting: Vec<Unit> = Vec::new();
        let mut unknown: Vec<(Unit, Instant)> = Vec::new();
        // A create an earlier process sent without learning the outcome is looked up first.
        for mut u in units {
            match self.sent_earlier(&u) {
                Some(due) => {
                    u.maybe_landed = true;
                    unknown.push((u, due));
                }
                None => queue.push_back(u),
            }
        }
        let mut tasks: JoinSet<TaskOut> = JoinSet::new();
        // The actions each task carries, to report them if it must be abandoned.
        let mut carried: HashMap<tokio::task::Id, Vec<usize>> = HashMap::new();
        let max = self.client.max_in_flight();
        let stop = self.stop.clone();
        let mut grace_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if !self.stopped && stop.is_stopped() {
                self.stopped = true;
            }
            if self.stopped {
                // Nothing new starts; what is in flight gets a short grace to answer.
                if tasks.is_empty() {
                    break;
                }
                let until = *grace_until.get_or_insert(now + self.opts.in_flight_grace);
                let joined = tokio::select! {
                    j = tasks.join_next_with_id() => j,
                    _ = tokio::time::sleep_until(until.into()) => None,
                };
                match joined {
                    Some(j) => {
                        self.handle_joined(j, &mut carried, &mut queue, &mut waiting, &mut unknown)
                    }
                    None => {
                        tasks.abort_all();
                        for i in carried.drain().flat_map(|(_, a)| a) {
                            self.states[i].maybe_sent = true;
                        }
                        break;
                    }
                }
                continue;
            }
            if waiting.iter().any(|u| u.ready_at <= now) {
                let mut ready: Vec<Unit> = waiting.extract_if(.., |u| u.ready_at <= now).collect();
                ready.sort_by_key(|u| u.action);
                queue.extend(ready);
            }
            let due: Vec<Unit> = unknown
                .extract_if(.., |(_, t)| *t <= now)
                .map(|(u, _)| u)
                .collect();
            if !due.is_empty() {
                let items: Vec<BatchItem> = due
                    .iter()
                    .enumerate()
                    .filter_map(|(k, u)| match &u.kind {
                        UnitKind::Create {
                            object_type,
                            anchor,
                        } => Some(BatchItem::get(
                            k.to_string(),
                            anchor_lookup_path(*object_type, anchor, &self.ext),
                        )),
                        _ => None,
                    })
                    .collect();
                let client = self.client.clone();
                let actions = due.iter().map(|u| u.action).collect();
                let stop = stop.clone();
                let handle = tasks.spawn(async move {
                    let r = client.batch_get_all_until(items, &stop).await;
                    TaskOut::Lookup(due, r)
                });
                carried.insert(handle.id(), actions);
            }
            // Fewer writes per batch when throttling cut the rate, so that one batch
            // never overdraws Graph's bucket by much.
            let limit = self.client.throttle().write_batch_limit();
            while tasks.len() < max && !queue.is_empty() {
                let mut batch = Vec::new();
                let mut n = 0;
                while let Some(u) = queue.front() {
                    if n + u.reqs.len() > limit && !batch.is_empty() {
                        break;
                    }
                    n += u.reqs.len();
                    batch.extend(queue.pop_front());
                }
                self.journal_creates(&batch);
                let items = batch_items(&batch);
                let client = self.client.clone();
                let actions = batch.iter().map(|u| u.action).collect();
                let stop = stop.clone();
                let handle = tasks.spawn(async move {
                    let r = client
                        .batch_until(&items, RetryMode::ThrottleOnly, &stop)
                        .await;
                    TaskOut::Batch(batch, r)
                });
                carried.insert(handle.id(), actions);
            }
            let next_wake = waiting
                .iter()
                .map(|u| u.ready_at)
                .chain(unknown.iter().map(|(_, t)| *t))
                .min();
            if tasks.is_empty() {
                match next_wake {
                    None if queue.is_empty() => break,
                    None => continue,
                    Some(t) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(t.into()) => {}
                            _ = stop.stopped() => {}
                        }
                        continue;
                    }
                }
            }
            let wake = async {
                match next_wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let joined = tokio::select! {
                j = tasks.join_next_with_id() => j,
                _ = wake => None,
                _ = stop.stopped() => None,
            };
            if let Some(j) = joined {
                self.handle_joined(j, &mut carried, &mut queue, &mut waiting, &mut unknown);
            }
        }
        // What is left was not done: record which of it may have reached Graph.
        for u in queue.iter().chain(&waiting) {
            if u.maybe_landed {
                self.states[u.action].maybe_sent = true;
            }
        }
        for (u, _) in &unknown {
            self.states[u.action].maybe_sent = true;
        }
    }

    /// Handles one finished task.
    fn handle_joined(
        &mut self,
        joined: Result<(tokio::task::Id, TaskOut), tokio::task::JoinError>,
        carried: &mut HashMap<tokio::task::Id, Vec<usize>>,
        queue: &mut VecDeque<Unit>,
        waiting: &mut Vec<Unit>,
        unknown: &mut Vec<(Unit, Instant)>,
    ) {
        match joined {
            Ok((id, out)) => {
                carried.remove(&id);
                match out {
                    TaskOut::Batch(units, r) => {
                        self.handle_batch(units, r, queue, waiting, unknown)
                    }
                    TaskOut::Lookup(units, r) => self.handle_lookup(units, r, queue, unknown),
                }
            }
            Err(e) => {
                // A panicked task loses its units; report them rather than hang.
                tracing::error!(error = %e, "apply task failed");
                for i in carried.remove(&e.id()).unwrap_or_default() {
                    self.finish(
                        i,
                        ActionStatus::Failed,
                        Some("internal-error".into()),
                        Some("an apply task failed; outcome unknown".into()),
                    );
                }
            }
        }
    }
}

/// Why an action is pending, for the report.
fn pending_message(
    maybe_sent: bool,
    cancel: Option<&tokio_util::sync::CancellationToken>,
) -> String {
    let why = if cancel.is_some_and(|c| c.is_cancelled()) {
        "the apply was cancelled"
    } else {
        "the apply's deadline passed"
    };
    if maybe_sent {
        format!(
            "{why} with a request of it sent and unanswered; the next plan re-reads the object (a create that happened is found by its anchor)"
        )
    } else {
        format!("{why} before it was done; the next run does it")
    }
}

fn item_id(unit: usize, req: usize) -> String {
    format!("{unit}.{req}")
}

/// The `$batch` items for units: each unit's requests chained with `dependsOn`.
fn batch_items(units: &[Unit]) -> Vec<BatchItem> {
    let mut items = Vec::new();
    for (k, u) in units.iter().enumerate() {
        for (j, r) in u.reqs.iter().enumerate() {
            let mut it = BatchItem::write(
                item_id(k, j),
                r.method.clone(),
                r.url.clone(),
                r.body.clone(),
            );
            if j > 0 {
                it.depends_on = vec![item_id(k, j - 1)];
            }
            items.push(it);
        }
    }
    items
}

/// Applies `plan` through `client`: refuses other format versions and (unless allowed)
/// other policies, re-reads what it touches and skips stale actions, then writes in
/// phase order. Per-action failures are in the report; `Err` only when nothing was
/// written.
pub async fn apply_plan(
    plan: &Plan,
    client: &GraphClient,
    opts: &ApplyOptions,
) -> Result<ApplyReport, ApplyError> {
    if plan.format_version != FORMAT_VERSION {
        return Err(ApplyError::FormatVersion {
            found: plan.format_version,
            expected: FORMAT_VERSION,
        });
    }
    if let Some(expected) = &opts.expected_policy_hash
        && *expected != plan.policy.content_hash
        && !opts.allow_policy_change
    {
        return Err(ApplyError::PolicyChanged {
            plan: plan.policy.content_hash.clone(),
            expected: expected.clone(),
        });
    }
    let started_at = chrono::Utc::now().to_rfc3339();
    let start = Instant::now();
    let before = client.stats().snapshot();
    let app = opts
        .extension_app_id
        .clone()
        .unwrap_or_else(|| DEFAULT_EXTENSION_APP_ID.to_string());
    let progress = if opts.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let pb = indicatif::ProgressBar::new(plan.actions.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} applying [{bar:40}] {pos}/{len} actions ({per_sec}, eta {eta})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        Some(pb)
    } else {
        None
    };
    let mut runner = Runner {
        plan,
        client,
        opts,
        ext: ExtensionNames::for_app(&app),
        states: plan
            .actions
            .iter()
            .map(|a| ActionState {
                pending_units: 0,
                status: None,
                code: None,
                message: None,
                id: a.object.id.clone(),
                notes: Vec::new(),
                maybe_sent: false,
            })
            .collect(),
        created: HashMap::new(),
        failed_creates: HashMap::new(),
        progress,
        graph_root: client.base_url().to_string(),
        sku_ids: HashMap::new(),
        stop: Stop {
            deadline: opts.deadline,
            cancel: opts.cancel.clone(),
        },
        stopped: false,
    };
    // The resource-unit quota grows with the tenant (the plan read it).
    client.throttle().set_tenant_users(plan.target.users);
    // Domain federation first (see apply/federation.rs): the phases skip finished actions.
    for r in federation::apply_domain_actions(plan, client, opts).await {
        runner.states[r.index].id = r.id;
        runner.finish(r.index, r.status, r.code, r.message);
    }
    let prepared = match runner.stale_check().await {
        Ok(()) => runner.load_skus().await,
        Err(e) => Err(e),
    };
    match prepared {
        Ok(()) => {}
        Err(GraphError::Stopped) => runner.stopped = true,
        Err(e) => return Err(e.into()),
    }
    for ph in 0..4 {
        if runner.stopped {
            break;
        }
        let mut units = Vec::new();
        for i in 0..plan.actions.len() {
            if phase(plan.actions[i].op) != ph || runner.states[i].status.is_some() {
                continue;
            }
            let us = runner.units_for(i);
            if runner.states[i].status.is_some() {
                continue;
            }
            runner.states[i].pending_units = us.len();
            if us.is_empty() {
                runner.finish(i, ActionStatus::Ok, None, Some("nothing to change".into()));
            }
            units.extend(us);
        }
        if !units.is_empty() {
            runner.run_phase(units).await;
        }
    }
    if let Some(p) = &runner.progress {
        p.finish_and_clear();
    }
    let mut counts = ApplyCounts::default();
    let results: Vec<ActionResult> = plan
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let s = &runner.states[i];
            let (status, code, message) = match (s.status, runner.stopped) {
                (Some(st), _) => (st, s.code.clone(), s.message.clone()),
                // A unit of it failed for real before the stop: that needs a look.
                (None, true) if s.code.is_some() => {
                    (ActionStatus::Failed, s.code.clone(), s.message.clone())
                }
                (None, true) => (
                    ActionStatus::Pending,
                    Some("pending".into()),
                    Some(pending_message(s.maybe_sent, runner.stop.cancel.as_ref())),
                ),
                (None, false) => (
                    ActionStatus::Failed,
                    Some("not-executed".into()),
                    s.message.clone(),
                ),
            };
            match status {
                ActionStatus::Ok => counts.ok += 1,
                ActionStatus::Failed => counts.failed += 1,
                ActionStatus::Stale => counts.stale += 1,
                ActionStatus::Skipped => counts.skipped += 1,
                ActionStatus::Pending => counts.pending += 1,
            }
            ActionResult {
                index: i,
                op: a.op,
                object_type: a.object.object_type,
                name: a.object.name.clone(),
                anchor: a.object.anchor.as_ref().map(|x| x.0.to_string()),
                id: s.id.clone(),
                status,
                code,
                message,
            }
        })
        .collect();
    if let Some(journal) = &opts.journal {
        // Creates still without a known outcome stay journaled for the next apply.
        let unknown = plan
            .actions
            .iter()
            .zip(&runner.states)
            .filter_map(|(a, s)| {
                let anchor = a.object.anchor.as_ref()?;
                let undecided = s.status.is_none()
                    && (s.maybe_sent || journal.sent_earlier(&anchor.0).is_some());
                (a.op == Operation::Create && undecided).then_some(anchor.as_str())
            });
        if let Err(e) = journal.settle(unknown) {
            tracing::warn!(error = %e, "cannot rewrite the journal of creates sent");
        }
    }
    let after: StatsSnapshot = client.stats().snapshot();
    Ok(ApplyReport {
        started_at,
        duration_ms: start.elapsed().as_millis() as u64,
        counts,
        requests: after.requests - before.requests,
        writes: after.writes - before.writes,
        throttled: after.throttled - before.throttled,
        retries: after.retries - before.retries,
        transport_errors: after.transport_errors - before.transport_errors,
        results,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ObjectRef;

    fn action(op: Operation, before: Option<Value>, patch: Value) -> Action {
        Action {
            op,
            object: ObjectRef {
                object_type: ObjectType::User,
                anchor: Some(crate::model::Anchor::from("KtN+mrQKRk2qSC19JzM09g==")),
                dn: None,
                name: "a@corp.example.com".into(),
                id: Some("u1".into()),
                source: None,
            },
            before,
            patch: serde_json::from_value(patch).unwrap(),
            members: vec![],
            skus: vec![],
            reason: "test".into(),
        }
    }

    #[test]
    fn patch_body_sends_only_changes_and_nulls_removed() {
        let b = json!({"displayName":"A","department":"X","jobTitle":"T"});
        let a = json!({"displayName":"A","department":"Y"});
        let p = patch_body(Some(&b), &a);
        assert_eq!(Value::Object(p), json!({"department":"Y","jobTitle":null}));
    }

    #[test]
    fn passwords_are_strong_and_differ() {
        let p = generate_password();
        assert_eq!(p.len(), 24);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_ne!(p, generate_password());
        let body = create_body(ObjectType::User, &json!({"displayName":"A"}));
        assert_eq!(
            body["passwordProfile"]["forceChangePasswordNextSignIn"],
            json!(true)
        );
        assert!(
            create_body(ObjectType::Group, &json!({}))
                .get("passwordProfile")
                .is_none()
        );
    }

    #[test]
    fn the_debug_of_a_create_shows_no_password() {
        let body = create_body(ObjectType::User, &json!({"displayName":"A"}));
        let password = body["passwordProfile"]["password"]
            .as_str()
            .unwrap()
            .to_string();
        let create = Unit::new(
            0,
            vec![Req {
                method: Method::POST,
                url: "/users".into(),
                body: Some(body.clone()),
                tolerate: Tolerate::None,
            }],
            UnitKind::Other,
        );
        let sent =
            crate::entra::graph::GraphRequest::write(Method::POST, "/users", Some(body.clone()));
        let batched = BatchItem::write("1", Method::POST, "/users", Some(body));
        let shown = format!("{create:?} {sent:?} {batched:#?}");
        assert!(!shown.contains(&password), "{shown}");
        assert!(shown.contains("forceChangePasswordNextSignIn"), "{shown}");
    }

    #[test]
    fn anchor_lookup_filters() {
        let ext = ExtensionNames::for_app("abc");
        assert_eq!(
            anchor_lookup_path(ObjectType::User, "a+b/c==", &ext),
            "/users?$filter=onPremisesImmutableId%20eq%20%27a%2Bb/c%3D%3D%27&$select=id,onPremisesImmutableId"
        );
        assert!(
            anchor_lookup_path(ObjectType::Group, "x", &ext)
                .starts_with("/groups?$filter=extension_abc_ad2entraAnchor%20eq")
        );
    }

    #[test]
    fn current_state_checks() {
        let ext = ExtensionNames::for_app("abc");
        let a = action(
            Operation::Update,
            Some(json!({"department":"X","businessPhones":["1","2"]})),
            json!([{"op":"replace","path":"/department","value":"Y"}]),
        );
        let owned = |extra: Value| {
            let mut m = json!({"extension_abc_ad2entraAnchor":"KtN+mrQKRk2qSC19JzM09g==","department":"X","businessPhones":["2","1"]});
            for (k, v) in extra.as_object().unwrap() {
                m[k] = v.clone();
            }
            m.as_object().unwrap().clone()
        };
        assert!(check_current(&a, &owned(json!({})), &ext).is_ok());
        let e = check_current(&a, &owned(json!({"department":"Z"})), &ext).unwrap_err();
        assert_eq!((e.0, e.1), (ActionStatus::Stale, "stale"));
        let e = check_current(&a, &owned(json!({"onPremisesSyncEnabled":true})), &ext).unwrap_err();
        assert_eq!(e.1, "dirsynced-object");
        let e = check_current(
            &a,
            &json!({"department":"X"}).as_object().unwrap().clone(),
            &ext,
        )
        .unwrap_err();
        assert_eq!(e.1, "not-owned");
        let adopt = action(Operation::Adopt, Some(json!({"department":"X"})), json!([]));
        assert!(
            check_current(
                &adopt,
                &json!({"department":"X"}).as_object().unwrap().clone(),
                &ext
            )
            .is_ok()
        );
    }

    #[test]
    fn batch_items_chain_units() {
        let u = Unit::new(
            0,
            vec![
                Req {
                    method: Method::POST,
                    url: "/directory/deletedItems/u/restore".into(),
                    body: None,
                    tolerate: Tolerate::None,
                },
                Req {
                    method: Method::PATCH,
                    url: "/users/u".into(),
                    body: Some(json!({})),
                    tolerate: Tolerate::None,
                },
            ],
            UnitKind::Other,
        );
        let items = batch_items(&[u.clone(), u]);
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].depends_on, vec!["0.0"]);
        assert_eq!(items[3].depends_on, vec!["1.0"]);
        assert!(items[2].depends_on.is_empty());
    }
}
