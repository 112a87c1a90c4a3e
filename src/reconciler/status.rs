//! What the reconciler tells the world: `/status` (JSON), `ad2entra status`, `/readyz`.
//!
//! Kubernetes-style conditions, as Flux and Argo CD show them, because administrators
//! and their alerting already read that shape: `Ready` (the tenant matches AD and the
//! policy as of the last cycle), `Reconciling` (a cycle is running or a retry is
//! scheduled), `Stalled` (a terminal error: waiting for a person or a new commit).
//! `lastAppliedRevision` is the policy revision the tenant was last converged to;
//! `lastAttemptedRevision` the newest revision seen, with its diagnostics when invalid.

use crate::diagnostics::Diagnostic;
use crate::state::{AppliedCounts, RunRecord};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// How many per-object errors status lists (the count is always complete).
pub const MAX_OBJECT_ERRORS: usize = 200;

/// `True` / `False` / `Unknown`, as Kubernetes spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// A per-object error: from the plan's diagnostics or from apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectError {
    /// The AD DN (or the Entra name when the object has no AD counterpart).
    pub object: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    pub code: String,
    pub message: String,
    /// `plan` (found before any write) or `apply` (Graph refused).
    pub stage: String,
}

impl ObjectError {
    pub fn from_diagnostic(d: &Diagnostic) -> Option<Self> {
        Some(ObjectError {
            object: d.object.clone()?,
            attribute: d.attribute.clone(),
            code: d.code.clone(),
            message: d.message.clone(),
            stage: "plan".into(),
        })
    }
}

/// The revision last tried, with why it was refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptedRevision {
    pub revision: String,
    pub valid: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

/// The cycle running now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentCycle {
    pub id: String,
    pub kind: String,
    pub trigger: String,
    pub started_at: String,
    /// `reading`, `planning`, `applying`.
    pub phase: String,
}

/// The last plan's summary (counts), as the plan renders it.
pub type PlanSummary = crate::plan::Summary;

/// The AD change watcher's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStatus {
    /// `disabled`, `unsupported`, `connecting`, `watching`, `reconnecting`.
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Everything `/status` shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub conditions: Vec<Condition>,
    /// Where the policy comes from (`git URL@branch:path` or a file path).
    pub policy_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<AttemptedRevision>,
    /// The policy revision the reconciler runs on now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_revision: Option<String>,
    pub plan_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_cycle: Option<CurrentCycle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cycle: Option<RunRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan: Option<PlanSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<AppliedCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    pub object_error_count: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_errors: Vec<ObjectError>,
    pub ad_watch: WatchStatus,
    /// The most recent runs, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_runs: Vec<RunRecord>,
    /// A successful cycle has completed since start (readiness).
    pub ready: bool,
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Status {
    /// Sets a condition, keeping its transition time when the status did not change.
    pub fn set_condition(
        &mut self,
        kind: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        now: DateTime<Utc>,
    ) {
        let message = message.into();
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = rfc3339(now);
                }
                c.status = status;
                c.reason = reason.to_string();
                c.message = message;
            }
            None => self.conditions.push(Condition {
                kind: kind.to_string(),
                status,
                reason: reason.to_string(),
                message,
                last_transition_time: rfc3339(now),
            }),
        }
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Ready for `/readyz`: a cycle succeeded since start and the last one did not fail.
    pub fn is_ready(&self) -> bool {
        self.ready
            && self
                .condition("Ready")
                .is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// Renders status for a person, like `flux get`: one line per fact that matters.
    pub fn render_human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let cond = |k: &str| {
            self.condition(k)
                .map(|c| {
                    let st = match c.status {
                        ConditionStatus::True => "True",
                        ConditionStatus::False => "False",
                        ConditionStatus::Unknown => "Unknown",
                    };
                    if c.message.is_empty() {
                        format!("{st} ({})", c.reason)
                    } else {
                        format!("{st} ({}): {}", c.reason, c.message)
                    }
                })
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(out, "Policy:     {}", self.policy_source);
        let _ = writeln!(
            out,
            "Applied:    {}",
            self.last_applied_revision.as_deref().unwrap_or("-")
        );
        if let Some(a) = &self.last_attempted_revision {
            let _ = writeln!(
                out,
                "Attempted:  {} ({})",
                a.revision,
                if a.valid { "valid" } else { "INVALID" }
            );
            for d in &a.diagnostics {
                let _ = writeln!(out, "  {d}");
            }
        }
        let _ = writeln!(out, "Ready:      {}", cond("Ready"));
        let _ = writeln!(out, "Reconciling: {}", cond("Reconciling"));
        let _ = writeln!(out, "Stalled:    {}", cond("Stalled"));
        if self.plan_only {
            let _ = writeln!(out, "Mode:       plan-only (no writes)");
        }
        let _ = writeln!(
            out,
            "AD watch:   {}{}",
            self.ad_watch.state,
            if self.ad_watch.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.ad_watch.message)
            }
        );
        if let Some(c) = &self.current_cycle {
            let _ = writeln!(
                out,
                "Running:    {} cycle {} ({}), {} since {}",
                c.kind, c.id, c.trigger, c.phase, c.started_at
            );
        }
        if let Some(r) = &self.last_cycle {
            let _ = writeln!(
                out,
                "Last cycle: {} {} ({}) {} at {}, {} ms, {} LDAP entries, {} Graph requests",
                r.kind.as_str(),
                r.id,
                r.trigger,
                r.outcome.as_str(),
                rfc3339(r.ended_at),
                (r.ended_at - r.started_at).num_milliseconds().max(0),
                r.ldap_entries,
                r.graph_requests
            );
            for e in &r.errors {
                let _ = writeln!(out, "  error: {e}");
            }
        }
        if let Some(p) = &self.last_plan {
            let _ = writeln!(
                out,
                "Last plan:  {} create, {} update, {} adopt, {} restore, {} member changes, {} licence changes, {} disable, {} delete, {} blocked; {} users and {} groups in scope",
                p.create,
                p.update,
                p.adopt,
                p.restore,
                p.add_members + p.remove_members,
                p.assign_license + p.remove_license,
                p.disable,
                p.delete,
                p.blocked,
                p.in_scope_users,
                p.in_scope_groups
            );
        }
        if let Some(t) = &self.last_success_at {
            let _ = writeln!(out, "Last success: {t}");
        }
        if let Some(t) = &self.next_run_at {
            let _ = writeln!(out, "Next run:   {t}");
        }
        let _ = writeln!(out, "Object errors: {}", self.object_error_count);
        for e in self.object_errors.iter().take(20) {
            let _ = writeln!(
                out,
                "  {} [{}] {}{}: {}",
                e.stage,
                e.code,
                e.object,
                e.attribute
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default(),
                e.message
            );
        }
        if self.object_error_count > 20 {
            let _ = writeln!(
                out,
                "  … {} more (ad2entra status --json)",
                self.object_error_count - 20
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_transition_time_until_status_changes() {
        let t0 = Utc::now();
        let t1 = t0 + chrono::Duration::seconds(10);
        let mut s = Status::default();
        s.set_condition("Ready", ConditionStatus::False, "Starting", "", t0);
        s.set_condition("Ready", ConditionStatus::False, "LdapUnavailable", "x", t1);
        let c = s.condition("Ready").unwrap();
        assert_eq!(c.last_transition_time, rfc3339(t0));
        assert_eq!(c.reason, "LdapUnavailable");
        s.set_condition("Ready", ConditionStatus::True, "InSync", "", t1);
        assert_eq!(
            s.condition("Ready").unwrap().last_transition_time,
            rfc3339(t1)
        );
        assert!(!s.is_ready(), "not ready before a successful cycle");
        s.ready = true;
        assert!(s.is_ready());
        assert!(s.render_human().contains("Ready:      True (InSync)"));
    }
}
