//! Writes Graph refused, remembered so the next plans do not propose them again as if
//! they were new.
//!
//! The planner knows Graph's documented rules (`graph_rules`); a write Graph still
//! refuses with a 400 is a rule nobody documented (or a conflict with an object the
//! planner cannot see). Without a memory, every cycle would propose the same write and
//! fail it the same way. With one, the next plans show the refusal — Graph's code and
//! message — as a per-object error and hold the write back, until what was attempted
//! changes: the desired properties or members (an AD change), or the policy. A refusal
//! is also forgotten after [`RETRY_AFTER_HOURS`], as Entra may have changed around it
//! (a conflicting object deleted).
//!
//! Only refusals are remembered: throttling (429), server errors (5xx), network failures
//! and objects missing (404) say nothing about the write itself.
//!
//! Pure: the caller passes the time and the apply outcomes.

use super::types::{Action, BlockedAction, ObjectType, Operation, Plan};
use crate::diagnostics::Diagnostic;
use crate::model::Anchor;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// Diagnostic and blocked-action code of a write held back because Graph refused it.
pub const CODE: &str = "graph-refused";

/// A refusal is forgotten, and the write tried again, after this many hours.
pub const RETRY_AFTER_HOURS: i64 = 24;

/// Graph's error codes for a request refused for its content (HTTP 400): the directory's
/// `Request_BadRequest` (invalid values, conflicts) and the OData layer's `BadRequest`.
const REFUSAL_CODES: &[&str] = &["Request_BadRequest", "BadRequest"];

/// One remembered refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    pub op: Operation,
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    pub anchor: Anchor,
    /// UPN or display name, for people reading the state.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// [`fingerprint`] of the refused action.
    pub fingerprint: String,
    /// Graph's error code and message.
    pub code: String,
    pub message: String,
    /// When it was refused (RFC 3339).
    pub at: String,
}

/// The refusals remembered, by operation and anchor (serialisable into the state file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefusedWrites {
    entries: BTreeMap<String, Refusal>,
}

/// What happened to one action of an applied plan, as far as this memory cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeStatus {
    /// Written: any refusal of it is forgotten.
    Ok,
    /// Failed, with the code and message of the failure.
    Failed,
    /// Not attempted, stale, or anything else: nothing is learnt.
    Other,
}

/// One action's outcome, as apply reports it (`ActionResult` maps onto it).
#[derive(Clone, Copy, Debug)]
pub struct Outcome<'a> {
    /// Index in `plan.actions`.
    pub index: usize,
    pub status: OutcomeStatus,
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// Actions with the refused ones taken out.
#[derive(Clone, Debug, Default)]
pub struct Withheld {
    /// The actions still to propose, in the order given.
    pub actions: Vec<Action>,
    /// The refused writes, shown as blocked with code [`CODE`].
    pub blocked: Vec<BlockedAction>,
    /// One error per refused write, with Graph's code and message.
    pub diagnostics: Vec<Diagnostic>,
}

fn key(op: Operation, anchor: &Anchor) -> String {
    format!("{} {}", op.as_str(), anchor.0)
}

/// A JSON value with every object's keys sorted, so equal content hashes equally.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// What an action attempts, hashed: its operation, the properties it sends, its members
/// and licences, and the policy content hash. An AD change of the object, or a policy
/// change, gives another fingerprint.
pub fn fingerprint(a: &Action, policy_hash: &str) -> String {
    let mut members: Vec<String> = a
        .members
        .iter()
        .map(|m| {
            m.anchor
                .as_ref()
                .map(|x| x.0.to_string())
                .or_else(|| m.id.clone())
                .unwrap_or_else(|| m.name.clone())
        })
        .collect();
    members.sort();
    let mut skus: Vec<String> = a
        .skus
        .iter()
        .map(|s| s.sku_part_number.to_ascii_uppercase())
        .collect();
    skus.sort();
    let after = a.after().map(|v| canonical(&v)).unwrap_or(Value::Null);
    let doc = json!({
        "op": a.op,
        "type": a.object.object_type,
        "after": after,
        "members": members,
        "skus": skus,
        "policy": policy_hash,
    });
    let mut h = Sha256::new();
    h.update(doc.to_string().as_bytes());
    format!("sha256:{:x}", h.finalize())
}

/// Creating, restoring or adopting: when held back, the object will not be there for
/// the memberships and licences that name it.
fn brings_object(op: Operation) -> bool {
    matches!(
        op,
        Operation::Create | Operation::Restore | Operation::Adopt
    )
}

fn is_dependent(op: Operation) -> bool {
    matches!(
        op,
        Operation::AddMembers
            | Operation::RemoveMembers
            | Operation::AssignLicense
            | Operation::RemoveLicense
    )
}

impl RefusedWrites {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The refusal remembered for this operation on this object, if any.
    pub fn get(&self, op: Operation, anchor: &Anchor) -> Option<&Refusal> {
        self.entries.get(&key(op, anchor))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Refusal> {
        self.entries.values()
    }

    fn expired(r: &Refusal, now: DateTime<Utc>) -> bool {
        DateTime::parse_from_rfc3339(&r.at).map_or(true, |at| {
            now >= at.with_timezone(&Utc) + chrono::Duration::hours(RETRY_AFTER_HOURS)
        })
    }

    /// Learns from an applied plan: a write Graph refused (400) is remembered with the
    /// fingerprint of what was attempted; a write that succeeded is forgotten; anything
    /// else (throttled, server error, network, stale, skipped, not found) teaches
    /// nothing. Refusals past their time are dropped.
    pub fn record<'a>(
        &mut self,
        plan: &Plan,
        outcomes: impl IntoIterator<Item = Outcome<'a>>,
        now: DateTime<Utc>,
    ) {
        self.entries.retain(|_, r| !Self::expired(r, now));
        for o in outcomes {
            let Some(a) = plan.actions.get(o.index) else {
                continue;
            };
            let Some(anchor) = &a.object.anchor else {
                continue;
            };
            let k = key(a.op, anchor);
            match o.status {
                OutcomeStatus::Ok => {
                    self.entries.remove(&k);
                }
                OutcomeStatus::Failed if o.code.is_some_and(|c| REFUSAL_CODES.contains(&c)) => {
                    self.entries.insert(
                        k,
                        Refusal {
                            op: a.op,
                            object_type: a.object.object_type,
                            anchor: anchor.clone(),
                            name: a.object.name.clone(),
                            dn: a.object.dn.clone(),
                            fingerprint: fingerprint(a, &plan.policy.content_hash),
                            code: o.code.unwrap_or_default().to_string(),
                            message: o.message.unwrap_or_default().to_string(),
                            at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// The refusal that still applies to `a`: same operation and object, same
    /// fingerprint, not expired.
    fn applies(&self, a: &Action, policy_hash: &str, now: DateTime<Utc>) -> Option<&Refusal> {
        let r = self.get(a.op, a.object.anchor.as_ref()?)?;
        (!Self::expired(r, now) && r.fingerprint == fingerprint(a, policy_hash)).then_some(r)
    }

    /// Takes out of `actions` the writes Graph refused before, unchanged since. When a
    /// create, restore or adoption is held back, the memberships and licences that need
    /// that object drop it (an action left with nothing to do is dropped).
    pub fn withhold(
        &self,
        actions: Vec<Action>,
        policy_hash: &str,
        now: DateTime<Utc>,
    ) -> Withheld {
        let mut w = Withheld::default();
        if self.entries.is_empty() {
            w.actions = actions;
            return w;
        }
        let mut gone: HashSet<Anchor> = HashSet::new();
        let mut kept = Vec::with_capacity(actions.len());
        // Objects first: their fingerprints do not depend on the others.
        for a in actions {
            match self.applies(&a, policy_hash, now) {
                Some(r) if !is_dependent(a.op) => {
                    if brings_object(a.op)
                        && let Some(anchor) = &a.object.anchor
                    {
                        gone.insert(anchor.clone());
                    }
                    w.hold(a, r);
                }
                _ => kept.push(a),
            }
        }
        for mut a in kept {
            if is_dependent(a.op) && !gone.is_empty() {
                let missing = |x: &Option<Anchor>| x.as_ref().is_some_and(|x| gone.contains(x));
                if a.object.id.is_none() && missing(&a.object.anchor) {
                    continue;
                }
                a.members.retain(|m| m.id.is_some() || !missing(&m.anchor));
                if matches!(a.op, Operation::AddMembers | Operation::RemoveMembers)
                    && a.members.is_empty()
                {
                    continue;
                }
            }
            match self.applies(&a, policy_hash, now) {
                Some(r) => w.hold(a, r),
                None => w.actions.push(a),
            }
        }
        w
    }
}

impl Withheld {
    fn hold(&mut self, a: Action, r: &Refusal) {
        let reason = format!(
            "Graph refused this {} on {}: {}: {}",
            a.op.as_str(),
            r.at,
            r.code,
            r.message
        );
        self.diagnostics.push(
            Diagnostic::error(CODE, reason.clone())
                .object(a.object.dn.clone().unwrap_or_else(|| a.object.name.clone()))
                .hint(format!(
                    "not proposed again until the AD object or the policy changes (or after {RETRY_AFTER_HOURS} h); fix the value Graph names in AD or in the mapping"
                )),
        );
        self.blocked.push(BlockedAction {
            action: a,
            code: CODE.to_string(),
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::types::{MemberRef, ObjectRef};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn create(n: u8, title: &str) -> Action {
        let after: Map<String, Value> = [
            ("displayName".to_string(), json!(format!("U{n}"))),
            ("jobTitle".to_string(), json!(title)),
        ]
        .into_iter()
        .collect();
        Action {
            op: Operation::Create,
            object: ObjectRef {
                object_type: ObjectType::User,
                anchor: Some(Anchor::from(format!("A{n}"))),
                dn: Some(format!("CN=U{n},DC=x")),
                name: format!("u{n}@x.com"),
                id: None,
                source: None,
            },
            before: None,
            patch: json_patch::diff(&json!({}), &Value::Object(after)),
            members: vec![],
            skus: vec![],
            reason: String::new(),
        }
    }

    fn add_members(members: &[u8]) -> Action {
        Action {
            op: Operation::AddMembers,
            object: ObjectRef {
                object_type: ObjectType::Group,
                anchor: Some(Anchor::from("G")),
                dn: Some("CN=G,DC=x".into()),
                name: "G".into(),
                id: Some("gid".into()),
                source: None,
            },
            before: None,
            patch: json_patch::Patch(vec![]),
            members: members
                .iter()
                .map(|n| MemberRef {
                    object_type: ObjectType::User,
                    anchor: Some(Anchor::from(format!("A{n}"))),
                    id: None,
                    name: format!("u{n}@x.com"),
                })
                .collect(),
            skus: vec![],
            reason: String::new(),
        }
    }

    fn plan_of(actions: Vec<Action>) -> Plan {
        Plan {
            format_version: crate::plan::FORMAT_VERSION,
            generator: "test".into(),
            policy: crate::plan::PolicyProvenance {
                content_hash: "h1".into(),
                ..Default::default()
            },
            source: Default::default(),
            target: Default::default(),
            now: "2026-03-01T12:00:00Z".into(),
            summary: Default::default(),
            actions,
            blocked: vec![],
            diagnostics: vec![],
        }
    }

    fn failed(index: usize, code: &'static str) -> Outcome<'static> {
        Outcome {
            index,
            status: OutcomeStatus::Failed,
            code: Some(code),
            message: Some("Invalid value specified for property 'jobTitle' of resource 'User'."),
        }
    }

    #[test]
    fn a_refused_create_is_held_back_with_its_memberships_until_it_changes() {
        let applied = plan_of(vec![
            create(1, "Ninja"),
            create(2, "Clerk"),
            add_members(&[1, 2]),
        ]);
        let mut r = RefusedWrites::default();
        r.record(&applied, [failed(0, "Request_BadRequest")], now());
        assert_eq!(r.len(), 1);

        let w = r.withhold(applied.actions.clone(), "h1", now());
        assert_eq!(w.blocked.len(), 1);
        assert_eq!(w.blocked[0].code, CODE);
        assert!(
            w.diagnostics[0]
                .message
                .contains("Request_BadRequest: Invalid value")
        );
        assert_eq!(w.diagnostics[0].object.as_deref(), Some("CN=U1,DC=x"));
        // The membership still adds U2, not the user that will not exist.
        assert_eq!(w.actions.len(), 2);
        assert_eq!(w.actions[1].members.len(), 1);

        // The AD value changed: planned again.
        let w = r.withhold(vec![create(1, "Engineer")], "h1", now());
        assert_eq!((w.actions.len(), w.blocked.len()), (1, 0));
        // The policy changed: planned again.
        let w = r.withhold(vec![create(1, "Ninja")], "h2", now());
        assert_eq!(w.actions.len(), 1);
        // A day later: planned again.
        let later = now() + chrono::Duration::hours(RETRY_AFTER_HOURS);
        assert_eq!(
            r.withhold(vec![create(1, "Ninja")], "h1", later)
                .actions
                .len(),
            1
        );
    }

    #[test]
    fn transient_failures_teach_nothing_and_success_forgets() {
        let applied = plan_of(vec![create(1, "Ninja")]);
        let mut r = RefusedWrites::default();
        for code in [
            "TooManyRequests",
            "serviceNotAvailable",
            "transport",
            "Request_ResourceNotFound",
            "Authorization_RequestDenied",
        ] {
            r.record(&applied, [failed(0, code)], now());
        }
        let skipped = Outcome {
            index: 0,
            status: OutcomeStatus::Other,
            code: Some("dependency-failed"),
            message: None,
        };
        r.record(&applied, [skipped], now());
        assert!(r.is_empty());
        r.record(&applied, [failed(0, "BadRequest")], now());
        assert_eq!(r.len(), 1);
        let ok = Outcome {
            index: 0,
            status: OutcomeStatus::Ok,
            code: None,
            message: None,
        };
        r.record(&applied, [ok], now());
        assert!(r.is_empty());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_serialise_round_trip() {
        let a = create(1, "Ninja");
        let mut b = a.clone();
        b.patch.0.reverse();
        assert_eq!(fingerprint(&a, "h"), fingerprint(&b, "h"));
        let mut r = RefusedWrites::default();
        r.record(&plan_of(vec![a]), [failed(0, "Request_BadRequest")], now());
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"create A1\""), "{text}");
        assert_eq!(serde_json::from_str::<RefusedWrites>(&text).unwrap(), r);
    }
}
