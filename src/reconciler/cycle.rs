//! One reconcile cycle: read AD and Entra (in full or as deltas folded into the last
//! snapshots kept in memory), plan with the whole desired state, log the plan, apply it,
//! and remember what happened.
//!
//! Level-triggered like a Kubernetes controller: every cycle recomputes the complete
//! plan from complete snapshots; a delta only makes the *reads* cheaper. So a missed or
//! duplicated change notification can cost a cycle, never correctness.

use super::ad_sources::AdSources;
use super::edges::{AdEdge, EntraEdge, revision_of};
use super::errors::CycleError;
use super::schedule::{KindInputs, full_reason};
use super::status::ObjectError;
use super::triggers::Wanted;
use crate::apply::{ActionStatus, ApplyOptions, ApplyReport};
use crate::diagnostics::Severity;
use crate::entra::graph::StatsSnapshot;
use crate::model::TargetSnapshot;
use crate::plan::{Plan, Summary};
use crate::policy::LoadedPolicy;
use crate::state::{AppliedCounts, CycleKind, GraphDeltaState, RunOutcome, RunRecord, State};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The Entra side of the last successful read (with what apply wrote since folded in).
struct EntraMemory {
    snapshot: TargetSnapshot,
    links: Option<GraphDeltaState>,
}

/// Builds the AD edges for a policy: one per source (its `source`/`sources` sections
/// name the DCs), or one LDIF file for all.
pub type AdFactory =
    Box<dyn Fn(&LoadedPolicy) -> Result<Vec<Box<dyn AdEdge>>, CycleError> + Send + Sync>;

/// What a cycle needs from the loop.
pub struct CycleInput {
    pub id: String,
    pub wanted: Wanted,
    pub now: DateTime<Utc>,
    /// Fires on shutdown: apply stops starting new work.
    pub cancel: CancellationToken,
    /// When apply must stop starting new work (the next scheduled cycle).
    pub deadline: Option<tokio::time::Instant>,
    /// How long requests in flight at a stop may take before they are abandoned.
    pub in_flight_grace: Duration,
}

/// What one action became, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionTally {
    pub operation: &'static str,
    pub result: &'static str,
    pub count: u64,
}

/// Everything the loop needs to know about a finished cycle.
pub struct CycleResult {
    pub record: RunRecord,
    pub error: Option<CycleError>,
    pub plan: Option<Summary>,
    pub object_errors: Vec<ObjectError>,
    pub blocked_deprovisions: usize,
    pub tallies: Vec<ActionTally>,
    /// Graph counters of this cycle (responses by class, 429s, retries).
    pub graph: StatsSnapshot,
}

/// Reports the phase of the running cycle (for `/status`).
pub type PhaseSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// The reconciler's working memory and edges.
pub struct Engine {
    policy: LoadedPolicy,
    /// Every AD source, and what each read last.
    ad: AdSources,
    ad_factory: AdFactory,
    entra: Box<dyn EntraEdge>,
    entra_mem: Option<EntraMemory>,
    pub state: State,
    state_path: Option<PathBuf>,
    plan_only: bool,
}

/// Successful part of a cycle, before it is turned into a record.
struct Converged {
    kind: CycleKind,
    outcome: RunOutcome,
    plan: Plan,
    report: Option<ApplyReport>,
    ldap_entries: u64,
}

impl Engine {
    pub fn new(
        policy: LoadedPolicy,
        ad_factory: AdFactory,
        entra: Box<dyn EntraEdge>,
        state: State,
        state_path: Option<PathBuf>,
        plan_only: bool,
    ) -> Result<Self, CycleError> {
        let ad = AdSources::new(ad_factory(&policy)?);
        Ok(Engine {
            policy,
            ad,
            ad_factory,
            entra,
            entra_mem: None,
            state,
            state_path,
            plan_only,
        })
    }

    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    /// The AD edges, one per source.
    pub fn ad_edges(&self) -> impl Iterator<Item = &dyn AdEdge> {
        self.ad.edges()
    }

    /// Switches to a new policy revision: the next cycle is full (the attributes read
    /// and the scope may differ), and the AD edges follow the policy's sources.
    pub fn set_policy(&mut self, policy: LoadedPolicy) -> Result<(), CycleError> {
        self.ad = AdSources::new((self.ad_factory)(&policy)?);
        self.policy = policy;
        self.entra_mem = None;
        Ok(())
    }

    /// Saves the state file, if there is one.
    pub fn save_state(&self) -> Result<(), crate::state::StateError> {
        match &self.state_path {
            Some(p) => self.state.save(p),
            None => Ok(()),
        }
    }

    /// The journal of creates sent, next to the state file (none without one). A
    /// journal that cannot be read is reported and the apply goes on without it.
    fn create_journal(&self) -> Option<std::sync::Arc<crate::apply::CreateJournal>> {
        let path = crate::apply::CreateJournal::path_for_state(self.state_path.as_ref()?);
        match crate::apply::CreateJournal::open(&path) {
            Ok(j) => Some(std::sync::Arc::new(j)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the journal of creates sent");
                None
            }
        }
    }

    fn kind_inputs(&self, wanted: &Wanted, now: DateTime<Utc>) -> KindInputs {
        let interval = |s: &str| {
            crate::policy::load::parse_duration(s)
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(24 * 3600))
        };
        KindInputs {
            forced_full: wanted.full,
            have_ad: self.ad.have_all(),
            have_entra: self.entra_mem.is_some(),
            last_full_at: self.state.last_full_cycle_at,
            full_every: interval(&self.policy.policy.schedule.full_every),
            ad_watermark_at: self.ad.oldest_read_at(),
            tombstone_lifetime: self.ad.tombstone_lifetime(),
            now,
        }
    }

    /// Runs one cycle. Never panics on remote input; every failure is in the result.
    pub async fn run_cycle(&mut self, input: CycleInput, phase: PhaseSink<'_>) -> CycleResult {
        let started_at = input.now;
        let stats_before = self.entra.stats();
        let mut kind = match full_reason(&self.kind_inputs(&input.wanted, input.now)) {
            Some(why) => {
                tracing::info!(why, "full cycle");
                CycleKind::Full
            }
            None => CycleKind::Delta,
        };
        let result = self.converge(&input, &mut kind, phase).await;
        let stats_after = self.entra.stats();
        let graph = stats_delta(&stats_before, &stats_after);
        let ended_at = Utc::now();
        let mut record = RunRecord {
            id: input.id.clone(),
            kind,
            trigger: input.wanted.label(),
            started_at,
            ended_at,
            commit: self.policy.commit.clone(),
            policy_hash: self.policy.content_hash.clone(),
            outcome: RunOutcome::Failed,
            plan: None,
            applied: None,
            ldap_entries: 0,
            graph_requests: graph.requests,
            errors: Vec::new(),
        };
        match result {
            Ok(c) => {
                record.kind = c.kind;
                record.outcome = c.outcome;
                record.ldap_entries = c.ldap_entries;
                record.plan = Some(c.plan.summary.clone());
                let mut object_errors: Vec<ObjectError> = c
                    .plan
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Error)
                    .filter_map(ObjectError::from_diagnostic)
                    .collect();
                let mut tallies = Vec::new();
                if let Some(report) = &c.report {
                    let k = &report.counts;
                    record.applied = Some(AppliedCounts {
                        ok: k.ok,
                        failed: k.failed,
                        stale: k.stale,
                        skipped: k.skipped,
                        pending: report.counts.pending,
                    });
                    for r in &report.results {
                        if matches!(r.status, ActionStatus::Failed | ActionStatus::Stale) {
                            let a = c.plan.actions.get(r.index);
                            object_errors.push(ObjectError {
                                object: a
                                    .and_then(|a| a.object.dn.clone())
                                    .unwrap_or_else(|| r.name.clone()),
                                attribute: None,
                                code: r.code.clone().unwrap_or_else(|| "apply-failed".into()),
                                message: r.message.clone().unwrap_or_default(),
                                stage: "apply".into(),
                            });
                        }
                    }
                    tallies = tally(&c.plan, Some(report));
                } else if c.outcome == RunOutcome::Planned {
                    tallies = tally(&c.plan, None);
                }
                for e in object_errors.iter().take(10) {
                    record
                        .errors
                        .push(format!("{} [{}] {}", e.object, e.code, e.message));
                }
                if c.kind == CycleKind::Full {
                    self.state.last_full_cycle_at = Some(ended_at);
                }
                if matches!(c.outcome, RunOutcome::InSync | RunOutcome::Applied) && !self.plan_only
                {
                    self.state.last_applied_revision = Some(revision_of(&self.policy));
                }
                let blocked = c
                    .plan
                    .blocked
                    .iter()
                    .filter(|b| b.action.op.is_deprovision())
                    .count();
                self.finish(record.clone());
                CycleResult {
                    record,
                    error: None,
                    plan: Some(c.plan.summary),
                    object_errors,
                    blocked_deprovisions: blocked,
                    tallies,
                    graph,
                }
            }
            Err((e, partial)) => {
                record.outcome = match e.class() {
                    super::errors::ErrorClass::Transient => RunOutcome::Failed,
                    super::errors::ErrorClass::Terminal => RunOutcome::Stalled,
                };
                record.errors.push(e.to_string());
                let mut blocked = 0;
                let mut summary = None;
                let mut object_errors = Vec::new();
                if let Some(plan) = partial {
                    blocked = plan
                        .blocked
                        .iter()
                        .filter(|b| b.action.op.is_deprovision())
                        .count();
                    record.plan = Some(plan.summary.clone());
                    summary = Some(plan.summary.clone());
                    object_errors = plan
                        .diagnostics
                        .iter()
                        .filter(|d| d.severity == Severity::Error)
                        .filter_map(ObjectError::from_diagnostic)
                        .collect();
                }
                self.finish(record.clone());
                CycleResult {
                    record,
                    error: Some(e),
                    plan: summary,
                    object_errors,
                    blocked_deprovisions: blocked,
                    tallies: Vec::new(),
                    graph,
                }
            }
        }
    }

    /// Records a cycle that shutdown abandoned after its grace period (its writes, if
    /// any, are found by the next start's full cycle: ownership is in Entra).
    pub fn record_abandoned(&mut self, id: String, trigger: String, started_at: DateTime<Utc>) {
        self.finish(RunRecord {
            id,
            kind: CycleKind::Full,
            trigger,
            started_at,
            ended_at: Utc::now(),
            commit: self.policy.commit.clone(),
            policy_hash: self.policy.content_hash.clone(),
            outcome: RunOutcome::Interrupted,
            plan: None,
            applied: None,
            ldap_entries: 0,
            graph_requests: 0,
            errors: vec!["abandoned at shutdown after the grace period".into()],
        });
    }

    /// Records the run and writes the state once.
    fn finish(&mut self, record: RunRecord) {
        self.state.push_run(record);
        if let Err(e) = self.save_state() {
            tracing::error!(error = %e, "cannot write the state file; the next start runs a full cycle");
        }
    }

    /// Reads AD and Entra at the same time (a full cycle waits for the slower of the
    /// two, not for both in turn). The cycle is full when every AD source had to be read
    /// in full; then Entra is read in full too (again, if it was read as a delta).
    async fn read_both(
        &mut self,
        kind: &mut CycleKind,
        now: DateTime<Utc>,
    ) -> Result<u64, CycleError> {
        // Following renamed DNs changes the policy: done before both reads borrow it.
        self.ad.prepare(&mut self.policy, &mut self.state).await?;
        let started = *kind;
        let (ad_read, entra_read) = tokio::join!(
            self.ad
                .read_prepared(&self.policy, &mut self.state, started, now),
            read_entra(
                self.entra.as_ref(),
                &self.policy,
                &mut self.entra_mem,
                started
            ),
        );
        let links = entra_read?;
        let read = ad_read?;
        if read.all_full {
            *kind = CycleKind::Full;
        }
        let links = if started == CycleKind::Delta && *kind == CycleKind::Full {
            read_entra(
                self.entra.as_ref(),
                &self.policy,
                &mut self.entra_mem,
                CycleKind::Full,
            )
            .await?
        } else {
            links
        };
        if let Some(l) = links {
            self.state.graph_delta = Some(l);
        }
        Ok(read.entries)
    }

    async fn converge(
        &mut self,
        input: &CycleInput,
        kind: &mut CycleKind,
        phase: PhaseSink<'_>,
    ) -> Result<Converged, (CycleError, Option<Plan>)> {
        phase("reading");
        let ldap_entries = self
            .read_both(kind, input.now)
            .await
            .map_err(|e| (e, None))?;
        phase("planning");
        let (Some(ad), Some(entra)) = (self.ad.snapshot(), &self.entra_mem) else {
            return Err((
                CycleError::Internal("snapshots missing after a successful read".into()),
                None,
            ));
        };
        // Writes Graph refused before are held back (shown as errors) until the object
        // or the policy changes.
        let plan = crate::plan::plan_with(
            &self.policy,
            &ad,
            &entra.snapshot,
            input.now,
            &self.state.refused_writes,
        )
        .map_err(|e| (CycleError::from(e), None))?;
        log_plan(&plan);
        let gated: Vec<_> = plan
            .blocked
            .iter()
            .filter(|b| b.code.starts_with("delete-gate"))
            .collect();
        if let Some(first) = gated.first() {
            let e = CycleError::DeletionGate {
                blocked: gated.len(),
                reason: first.reason.clone(),
            };
            return Err((e, Some(plan)));
        }
        let outcome_without_apply = if plan.is_empty() {
            Some(RunOutcome::InSync)
        } else if self.plan_only {
            Some(RunOutcome::Planned)
        } else {
            None
        };
        if let Some(outcome) = outcome_without_apply {
            return Ok(Converged {
                kind: *kind,
                outcome,
                plan,
                report: None,
                ldap_entries,
            });
        }
        phase("applying");
        // Shutdown (cancel) and the next scheduled cycle (deadline) stop apply from
        // starting new work; what is not done is reported pending, and the next cycle
        // plans it again (creates are idempotent by anchor).
        let opts = ApplyOptions {
            expected_policy_hash: Some(self.policy.content_hash.clone()),
            deadline: input.deadline,
            cancel: Some(input.cancel.clone()),
            in_flight_grace: input.in_flight_grace,
            journal: self.create_journal(),
            ..Default::default()
        };
        let Some(apply) = self.entra.apply(&self.policy, &plan, opts) else {
            return Ok(Converged {
                kind: *kind,
                outcome: RunOutcome::Planned,
                plan,
                report: None,
                ldap_entries,
            });
        };
        let report = apply.await.map_err(|e| (e, None))?;
        log_report(&report);
        self.state
            .refused_writes
            .record(&plan, report.outcomes(), Utc::now());
        self.fold(&plan, &report);
        if !report.is_complete() {
            // Some writes may have landed unseen: the next cycle reads Entra in full.
            self.entra_mem = None;
        }
        let outcome = if report.counts.skipped > 0 || report.counts.pending > 0 {
            RunOutcome::Interrupted
        } else {
            RunOutcome::Applied
        };
        Ok(Converged {
            kind: *kind,
            outcome,
            plan,
            report: Some(report),
            ldap_entries,
        })
    }

    /// Folds what apply wrote into the Entra snapshot in memory, so the next delta
    /// cycle does not plan the same writes again before Graph's delta returns them.
    fn fold(&mut self, plan: &Plan, report: &ApplyReport) {
        let Some(mem) = &mut self.entra_mem else {
            return;
        };
        let mut done = plan.clone();
        let ok: std::collections::HashMap<usize, Option<String>> = report
            .results
            .iter()
            .filter(|r| r.status == ActionStatus::Ok)
            .map(|r| (r.index, r.id.clone()))
            .collect();
        done.actions = plan
            .actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let id = ok.get(&i)?;
                let mut a = a.clone();
                if a.object.id.is_none() {
                    a.object.id = id.clone();
                }
                Some(a)
            })
            .collect();
        if let Err(e) = crate::plan::simulate::apply_in_place(&done, &mut mem.snapshot) {
            tracing::warn!(error = %e, "cannot fold the applied actions into the Entra snapshot; the next cycle reads Entra in full");
            self.entra_mem = None;
        }
    }
}

/// What the client counted between two snapshots.
/// Reads Entra into `mem`: a delta folded into the snapshot in memory when `kind` is a
/// delta and the links allow, else in full (the last snapshot let go first, so two are
/// never held). Returns the delta links to remember, when there are new ones.
async fn read_entra(
    entra: &dyn EntraEdge,
    policy: &LoadedPolicy,
    mem: &mut Option<EntraMemory>,
    kind: CycleKind,
) -> Result<Option<GraphDeltaState>, CycleError> {
    if kind == CycleKind::Delta
        && let Some(m) = mem
        && let Some(links) = m.links.clone()
    {
        match entra.read_delta(policy, &mut m.snapshot, &links).await {
            Ok(Some(new_links)) => {
                m.links = Some(new_links.clone());
                return Ok(Some(new_links));
            }
            Ok(None) => {}
            Err(CycleError::Graph(e)) if e.is_delta_expired() => {
                tracing::warn!(error = %e, "Graph delta links unusable (expired, reset or another selection); reading in full");
            }
            Err(e) => {
                // The snapshot may hold part of a delta round: never plan from it.
                *mem = None;
                return Err(e);
            }
        }
    }
    *mem = None;
    let (snapshot, links) = entra.read_full(policy).await?;
    *mem = Some(EntraMemory {
        snapshot,
        links: links.clone(),
    });
    Ok(links)
}

fn stats_delta(a: &StatsSnapshot, b: &StatsSnapshot) -> StatsSnapshot {
    StatsSnapshot {
        requests: b.requests.saturating_sub(a.requests),
        writes: b.writes.saturating_sub(a.writes),
        throttled: b.throttled.saturating_sub(a.throttled),
        throttled_in_flight: b.throttled_in_flight.saturating_sub(a.throttled_in_flight),
        retries: b.retries.saturating_sub(a.retries),
        transport_errors: b.transport_errors.saturating_sub(a.transport_errors),
        responses_2xx: b.responses_2xx.saturating_sub(a.responses_2xx),
        responses_4xx: b.responses_4xx.saturating_sub(a.responses_4xx),
        responses_5xx: b.responses_5xx.saturating_sub(a.responses_5xx),
    }
}

fn tally(plan: &Plan, report: Option<&ApplyReport>) -> Vec<ActionTally> {
    let mut map: std::collections::BTreeMap<(&'static str, &'static str), u64> = Default::default();
    match report {
        Some(r) => {
            for res in &r.results {
                let result = match res.status {
                    ActionStatus::Ok => "ok",
                    ActionStatus::Failed => "failed",
                    ActionStatus::Stale => "stale",
                    ActionStatus::Skipped => "skipped",
                    ActionStatus::Pending => "pending",
                };
                *map.entry((res.op.as_str(), result)).or_default() += 1;
            }
        }
        None => {
            for a in &plan.actions {
                *map.entry((a.op.as_str(), "planned")).or_default() += 1;
            }
        }
    }
    map.into_iter()
        .map(|((operation, result), count)| ActionTally {
            operation,
            result,
            count,
        })
        .collect()
}

/// Logs the plan before anything is written: the summary, then every action (one
/// event each; with `--log-json` one JSON object per line), inside the cycle's span so
/// every line carries the cycle id and the policy commit.
fn log_plan(plan: &Plan) {
    let s = &plan.summary;
    tracing::info!(
        create = s.create,
        update = s.update,
        adopt = s.adopt,
        restore = s.restore,
        add_members = s.add_members,
        remove_members = s.remove_members,
        assign_license = s.assign_license,
        remove_license = s.remove_license,
        disable = s.disable,
        delete = s.delete,
        blocked = s.blocked,
        errors = s.errors,
        warnings = s.warnings,
        in_scope_users = s.in_scope_users,
        in_scope_groups = s.in_scope_groups,
        source_usn = plan.source.highest_usn,
        "plan"
    );
    for a in &plan.actions {
        tracing::info!(
            op = a.op.as_str(),
            object_type = ?a.object.object_type,
            name = %a.object.name,
            dn = a.object.dn.as_deref().unwrap_or(""),
            anchor = a.object.anchor.as_ref().map(|x| x.as_str()).unwrap_or(""),
            id = a.object.id.as_deref().unwrap_or(""),
            changes = %serde_json::to_string(&a.patch).unwrap_or_default(),
            members = a.members.len(),
            reason = %a.reason,
            "planned action"
        );
    }
    for b in &plan.blocked {
        tracing::warn!(
            op = b.action.op.as_str(),
            name = %b.action.object.name,
            code = %b.code,
            reason = %b.reason,
            "blocked action"
        );
    }
    for d in &plan.diagnostics {
        if d.severity == Severity::Error {
            tracing::warn!(code = %d.code, object = d.object.as_deref().unwrap_or(""), attribute = d.attribute.as_deref().unwrap_or(""), message = %d.message, "object error");
        }
    }
}

fn log_report(report: &ApplyReport) {
    let c = &report.counts;
    tracing::info!(
        ok = c.ok,
        failed = c.failed,
        stale = c.stale,
        skipped = c.skipped,
        pending = c.pending,
        requests = report.requests,
        writes = report.writes,
        throttled = report.throttled,
        duration_ms = report.duration_ms,
        "applied"
    );
    for r in &report.results {
        if r.status != ActionStatus::Ok {
            tracing::warn!(
                op = r.op.as_str(),
                name = %r.name,
                status = ?r.status,
                code = r.code.as_deref().unwrap_or(""),
                message = r.message.as_deref().unwrap_or(""),
                "action not applied"
            );
        }
    }
}
