//! The reconciler (`ad2entra run`): a long-running loop that keeps Entra converged to
//! AD plus the policy, the way Flux or Argo CD keep a cluster converged to git.
//!
//! ```text
//!  triggers ──► Pending (coalesced) ──► Engine::run_cycle ──► status, metrics, state
//!  interval, policy commit, AD change (debounced), POST /sync, SIGHUP
//! ```
//!
//! One cycle at a time; triggers arriving meanwhile coalesce into one more cycle.
//! Transient errors retry with backoff and jitter; terminal ones stall until a new
//! policy revision or a manual trigger. An invalid policy revision never runs: the last
//! good one keeps running and status names the bad revision and its diagnostics.
//! This module uses the pure core (policy → desired → plan); the core never uses it.

pub mod ad_sources;
pub mod cycle;
pub mod edges;
pub mod errors;
pub mod http;
pub mod metrics;
pub mod schedule;
pub mod status;
pub mod triggers;
pub mod watch;

use cycle::{AdFactory, CycleInput, CycleResult, Engine};
use edges::{EntraEdge, PolicyEdge, PolicyUpdate, revision_of};
use errors::{CycleError, ErrorClass, retry_delay};
use metrics::Metrics;
use status::{AttemptedRevision, ConditionStatus, CurrentCycle, Status, WatchStatus, rfc3339};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use triggers::{Debouncer, Pending, Trigger, TriggerReason, Wanted};

/// How the loop runs (from the command line).
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Plan and log, never write (Entra Connect's staging mode).
    pub plan_only: bool,
    pub state_path: Option<PathBuf>,
    /// Where `/healthz`, `/readyz`, `/metrics`, `/status` and `POST /sync` listen.
    pub listen: Option<SocketAddr>,
    /// How often the policy source is checked for a new revision.
    pub policy_poll: Duration,
    /// Quiet time after the last AD change before a delta cycle runs.
    pub debounce: Duration,
    /// Longest wait for quiet when AD changes never stop.
    pub debounce_max: Duration,
    /// How long shutdown waits for the cycle in flight.
    pub shutdown_grace: Duration,
    /// Bearer token for `POST /sync` (required off loopback); `Debug` masks it.
    pub trigger_token: Option<crate::secrets::Secret>,
    /// Open AD change-notification searches when the DC supports them.
    pub watch_ad: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            plan_only: false,
            state_path: None,
            listen: None,
            policy_poll: Duration::from_secs(60),
            debounce: Duration::from_secs(5),
            debounce_max: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            trigger_token: None,
            watch_ad: true,
        }
    }
}

/// Why the reconciler could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("{0}")]
    Setup(#[from] CycleError),
}

/// Handles to a running reconciler: send triggers, stop it, read its status.
#[derive(Clone)]
pub struct Handle {
    pub triggers: mpsc::UnboundedSender<Trigger>,
    pub shutdown: CancellationToken,
    pub status: Arc<RwLock<Status>>,
    pub metrics: Arc<Metrics>,
}

/// The reconciler before it runs.
pub struct Reconciler {
    cfg: RunConfig,
    policy: Box<dyn PolicyEdge>,
    ad_factory: Option<AdFactory>,
    entra: Option<Box<dyn EntraEdge>>,
    handle: Handle,
    rx: mpsc::UnboundedReceiver<Trigger>,
}

fn write_status(status: &RwLock<Status>, f: impl FnOnce(&mut Status)) {
    match status.write() {
        Ok(mut s) => f(&mut s),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

fn new_cycle_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn duration_of(s: &str, default: Duration) -> Duration {
    crate::policy::load::parse_duration(s)
        .map(Duration::from_secs)
        .unwrap_or(default)
}

impl Reconciler {
    pub fn new(
        cfg: RunConfig,
        policy: Box<dyn PolicyEdge>,
        ad_factory: AdFactory,
        entra: Box<dyn EntraEdge>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Status {
            policy_source: policy.describe(),
            plan_only: cfg.plan_only,
            ad_watch: WatchStatus {
                state: "disabled".into(),
                message: String::new(),
            },
            ..Status::default()
        };
        let handle = Handle {
            triggers: tx,
            shutdown: CancellationToken::new(),
            status: Arc::new(RwLock::new(status)),
            metrics: Arc::new(Metrics::new()),
        };
        Reconciler {
            cfg,
            policy,
            ad_factory: Some(ad_factory),
            entra: Some(entra),
            handle,
            rx,
        }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Binds the HTTP listener (when configured) and returns its address, so callers
    /// can listen on port 0 and learn the port.
    pub async fn bind(&self) -> Result<Option<tokio::net::TcpListener>, RunError> {
        match self.cfg.listen {
            None => Ok(None),
            Some(addr) => tokio::net::TcpListener::bind(addr)
                .await
                .map(Some)
                .map_err(|source| RunError::Listen { addr, source }),
        }
    }

    /// Runs until the shutdown token fires. Returns `Ok` on a clean shutdown.
    pub async fn run(mut self, listener: Option<tokio::net::TcpListener>) -> Result<(), RunError> {
        let h = self.handle.clone();
        let now = chrono::Utc::now();
        write_status(&h.status, |s| {
            s.set_condition("Ready", ConditionStatus::Unknown, "Starting", "", now);
            s.set_condition("Reconciling", ConditionStatus::True, "Starting", "", now);
            s.set_condition("Stalled", ConditionStatus::False, "Healthy", "", now);
        });

        // The HTTP endpoints come up first, so probes and `status` work while the first
        // (possibly long) full cycle runs.
        let server_cancel = h.shutdown.child_token();
        let server = match listener {
            Some(l) => {
                let addr = l.local_addr().ok();
                let require_token = addr.is_some_and(|a| !http::is_loopback(&a));
                if require_token && self.cfg.trigger_token.is_none() {
                    tracing::warn!(
                        "the listener is not on loopback and AD2ENTRA_TRIGGER_TOKEN is not set: POST /sync is disabled"
                    );
                }
                let ctx = Arc::new(http::HttpContext {
                    status: h.status.clone(),
                    metrics: h.metrics.clone(),
                    triggers: h.triggers.clone(),
                    trigger_token: self.cfg.trigger_token.clone(),
                    require_token,
                });
                tracing::info!(listen = ?addr, "serving /healthz /readyz /metrics /status /sync");
                Some(tokio::spawn(http::serve(l, ctx, server_cancel.clone())))
            }
            None => None,
        };

        let loaded = match &self.cfg.state_path {
            Some(p) => crate::state::State::load_or_recover(p)?,
            None => crate::state::LoadedState {
                state: crate::state::State::default(),
                fresh: true,
                set_aside: None,
                problem: None,
            },
        };
        if let (Some(aside), Some(problem)) = (&loaded.set_aside, &loaded.problem) {
            tracing::warn!(problem = %problem, set_aside = %aside.display(), "the state file was not usable; it was set aside and the first cycle is full");
        }
        let result = self.main_loop(loaded.state).await;
        server_cancel.cancel();
        if let Some(s) = server {
            let _ = s.await;
        }
        result
    }

    /// Waits for the first valid policy revision (or shutdown).
    async fn first_policy(&mut self) -> Option<crate::policy::LoadedPolicy> {
        let h = self.handle.clone();
        loop {
            match self.policy.poll().await {
                Ok(PolicyUpdate::Valid(p)) => return Some(*p),
                Ok(PolicyUpdate::Invalid(a)) => self.policy_invalid(a, None),
                Ok(PolicyUpdate::Unchanged) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the policy source");
                    let now = chrono::Utc::now();
                    write_status(&h.status, |s| {
                        s.set_condition(
                            "Ready",
                            ConditionStatus::False,
                            "PolicyUnavailable",
                            e.clone(),
                            now,
                        );
                    });
                }
            }
            tokio::select! {
                _ = h.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(self.cfg.policy_poll) => {}
            }
        }
    }

    fn policy_invalid(&self, a: AttemptedRevision, running: Option<&str>) {
        let h = &self.handle;
        h.metrics.invalid_revisions.inc();
        for d in &a.diagnostics {
            tracing::error!(revision = %a.revision, diagnostic = %d, "invalid policy revision");
        }
        let n = a.diagnostics.iter().filter(|d| d.is_error()).count();
        let msg = match running {
            Some(r) => format!(
                "revision {} is invalid ({n} error(s)); still running on {r}",
                a.revision
            ),
            None => format!(
                "revision {} is invalid ({n} error(s)); no valid policy yet",
                a.revision
            ),
        };
        let now = chrono::Utc::now();
        write_status(&h.status, |s| {
            s.last_attempted_revision = Some(a);
            s.set_condition(
                "Ready",
                ConditionStatus::False,
                "PolicyInvalid",
                msg.clone(),
                now,
            );
            if running.is_none() {
                s.set_condition("Stalled", ConditionStatus::True, "PolicyInvalid", msg, now);
            }
        });
    }

    async fn main_loop(&mut self, state: crate::state::State) -> Result<(), RunError> {
        let h = self.handle.clone();
        let Some(policy) = self.first_policy().await else {
            return Ok(());
        };
        let (Some(ad_factory), Some(entra)) = (self.ad_factory.take(), self.entra.take()) else {
            return Err(RunError::Setup(CycleError::Internal(
                "the reconciler can run only once".into(),
            )));
        };
        let mut engine = Engine::new(
            policy,
            ad_factory,
            entra,
            state,
            self.cfg.state_path.clone(),
            self.cfg.plan_only,
        )?;
        self.accepted(&engine);

        let (ad_tx, mut ad_rx) = mpsc::channel::<()>(1024);
        let mut watch_cancel = h.shutdown.child_token();
        self.start_watch(&engine, &ad_tx, &watch_cancel);

        let mut pending = Pending::default();
        pending.push(Trigger::new(TriggerReason::Startup));
        let mut debouncer = Debouncer::new(self.cfg.debounce, self.cfg.debounce_max);
        let mut stalled = false;
        let mut failures: u32 = 0;
        let mut retry_at: Option<Instant> = None;
        let mut next_poll = Instant::now() + self.cfg.policy_poll;
        let mut next_interval = Instant::now();

        loop {
            if h.shutdown.is_cancelled() {
                break;
            }
            if stalled {
                pending.retain_manual();
            }
            let interval = duration_of(
                &engine.policy().policy.schedule.interval,
                Duration::from_secs(1800),
            );
            if let Some(wanted) = pending.take() {
                let result = self
                    .cycle(
                        &mut engine,
                        wanted,
                        interval,
                        &mut pending,
                        &mut debouncer,
                        &mut ad_rx,
                    )
                    .await;
                next_interval = Instant::now() + interval;
                let Some(result) = result else {
                    break; // abandoned at shutdown
                };
                match result.error.as_ref().map(CycleError::class) {
                    None => {
                        failures = 0;
                        retry_at = None;
                        stalled = false;
                    }
                    Some(ErrorClass::Transient) => {
                        failures += 1;
                        let d = retry_delay(
                            failures,
                            interval.min(Duration::from_secs(300)),
                            rand::random::<f64>(),
                        );
                        retry_at = Some(Instant::now() + d);
                        stalled = false;
                    }
                    Some(ErrorClass::Terminal) => {
                        stalled = true;
                        retry_at = None;
                    }
                }
                self.after_cycle(&engine, result, retry_at, failures);
                continue;
            }
            let mut wake = next_poll;
            if !stalled {
                wake = wake.min(next_interval);
                if let Some(r) = retry_at {
                    wake = wake.min(r);
                }
            }
            if let Some(d) = debouncer.due_at() {
                wake = wake.min(Instant::from_std(d));
            }
            let next_run = if stalled {
                None
            } else {
                Some(retry_at.map_or(next_interval, |r| r.min(next_interval)))
            };
            write_status(&h.status, |s| {
                s.next_run_at = next_run.map(|t| {
                    rfc3339(
                        chrono::Utc::now()
                            + chrono::Duration::from_std(
                                t.saturating_duration_since(Instant::now()),
                            )
                            .unwrap_or_default(),
                    )
                });
            });
            tokio::select! {
                _ = h.shutdown.cancelled() => break,
                Some(t) = self.rx.recv() => self.on_trigger(t, &mut pending),
                Some(()) = ad_rx.recv() => self.on_ad_change(&mut debouncer),
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= next_poll {
                        next_poll = now + self.cfg.policy_poll;
                        if self.poll_policy(&mut engine).await {
                            stalled = false;
                            retry_at = None;
                            failures = 0;
                            watch_cancel.cancel();
                            watch_cancel = h.shutdown.child_token();
                            self.start_watch(&engine, &ad_tx, &watch_cancel);
                            pending.push(Trigger::new(TriggerReason::PolicyChange));
                        }
                    }
                    if !stalled && retry_at.is_some_and(|r| now >= r) {
                        retry_at = None;
                        pending.push(Trigger::new(TriggerReason::Retry));
                    }
                    if !stalled && now >= next_interval {
                        next_interval = now + interval;
                        self.note_trigger(TriggerReason::Interval);
                        pending.push(Trigger::new(TriggerReason::Interval));
                    }
                    if debouncer.fire(std::time::Instant::now()).is_some() {
                        self.note_trigger(TriggerReason::AdChange);
                        pending.push(Trigger::new(TriggerReason::AdChange));
                    }
                }
            }
        }
        watch_cancel.cancel();
        tracing::info!("reconciler stopped");
        Ok(())
    }

    fn on_trigger(&self, t: Trigger, pending: &mut Pending) {
        self.note_trigger(t.reason);
        pending.push(t);
    }

    fn on_ad_change(&self, debouncer: &mut Debouncer) {
        self.handle.metrics.ad_changes.inc();
        debouncer.note(std::time::Instant::now());
    }

    fn note_trigger(&self, reason: TriggerReason) {
        self.handle
            .metrics
            .triggers
            .get_or_create(&metrics::ReasonLabel {
                reason: reason.as_str().into(),
            })
            .inc();
    }

    fn start_watch(&self, engine: &Engine, tx: &mpsc::Sender<()>, cancel: &CancellationToken) {
        if !self.cfg.watch_ad {
            return;
        }
        watch::start(
            engine.ad_edges(),
            engine.policy(),
            tx.clone(),
            &self.handle,
            cancel.clone(),
        );
    }

    /// Records that a policy revision is running.
    fn accepted(&self, engine: &Engine) {
        let p = engine.policy();
        let rev = revision_of(p);
        tracing::info!(revision = %rev, content_hash = %p.content_hash, "policy revision accepted");
        for w in &p.warnings {
            tracing::warn!(diagnostic = %w, "policy warning");
        }
        self.handle.metrics.set_revision(&rev, &p.content_hash);
        write_status(&self.handle.status, |s| {
            s.running_revision = Some(rev.clone());
            s.last_attempted_revision = Some(AttemptedRevision {
                revision: rev,
                valid: true,
                diagnostics: vec![],
            });
            s.last_applied_revision = engine.state.last_applied_revision.clone();
        });
    }

    /// Checks the policy source; true when a new valid revision replaced the running one.
    async fn poll_policy(&mut self, engine: &mut Engine) -> bool {
        match self.policy.poll().await {
            Ok(PolicyUpdate::Unchanged) => false,
            Ok(PolicyUpdate::Valid(p)) => {
                let rev = revision_of(&p);
                match engine.set_policy(*p) {
                    Ok(()) => {
                        self.accepted(engine);
                        true
                    }
                    Err(e) => {
                        tracing::error!(revision = %rev, error = %e, "cannot use the new policy revision");
                        false
                    }
                }
            }
            Ok(PolicyUpdate::Invalid(a)) => {
                let running = revision_of(engine.policy());
                self.policy_invalid(a, Some(&running));
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the policy source; keeping the running revision");
                false
            }
        }
    }

    /// Runs one cycle while still taking triggers (they coalesce into `pending`).
    /// Returns `None` when shutdown abandoned the cycle after the grace period.
    async fn cycle(
        &mut self,
        engine: &mut Engine,
        wanted: Wanted,
        interval: Duration,
        pending: &mut Pending,
        debouncer: &mut Debouncer,
        ad_rx: &mut mpsc::Receiver<()>,
    ) -> Option<CycleResult> {
        let h = self.handle.clone();
        let id = new_cycle_id();
        let revision = revision_of(engine.policy());
        let now = chrono::Utc::now();
        let trigger = wanted.label();
        write_status(&h.status, |s| {
            s.current_cycle = Some(CurrentCycle {
                id: id.clone(),
                kind: if wanted.full { "full" } else { "delta" }.into(),
                trigger: trigger.clone(),
                started_at: rfc3339(now),
                phase: "starting".into(),
            });
            s.set_condition(
                "Reconciling",
                ConditionStatus::True,
                "Progressing",
                format!("cycle {id} ({trigger})"),
                now,
            );
        });
        let span =
            tracing::info_span!("cycle", cycle = %id, commit = %revision, trigger = %trigger);
        let status = h.status.clone();
        let phase = move |p: &str| {
            write_status(&status, |s| {
                if let Some(c) = &mut s.current_cycle {
                    c.phase = p.to_string();
                }
            });
        };
        let input = CycleInput {
            id,
            wanted,
            now,
            cancel: h.shutdown.clone(),
            deadline: Some(Instant::now() + interval),
            in_flight_grace: self.cfg.shutdown_grace.mul_f64(0.8),
        };
        let (id, trigger) = (input.id.clone(), input.wanted.label());
        let result = {
            let fut = engine.run_cycle(input, &phase).instrument(span);
            tokio::pin!(fut);
            let mut grace: Option<Instant> = None;
            loop {
                tokio::select! {
                    r = &mut fut => break Some(r),
                    Some(t) = self.rx.recv() => self.on_trigger(t, pending),
                    Some(()) = ad_rx.recv() => self.on_ad_change(debouncer),
                    _ = h.shutdown.cancelled(), if grace.is_none() => {
                        tracing::info!(grace_s = self.cfg.shutdown_grace.as_secs(), "shutdown: no new work; waiting for the batch in flight");
                        grace = Some(Instant::now() + self.cfg.shutdown_grace);
                    }
                    _ = tokio::time::sleep_until(grace.unwrap_or_else(Instant::now)), if grace.is_some() => {
                        tracing::warn!("shutdown grace period over: the cycle in flight is abandoned; the next start runs a full cycle");
                        break None;
                    }
                }
            }
        };
        if result.is_none() {
            engine.record_abandoned(id, trigger, now);
        }
        write_status(&h.status, |s| s.current_cycle = None);
        result
    }

    fn after_cycle(
        &self,
        engine: &Engine,
        r: CycleResult,
        retry_at: Option<Instant>,
        failures: u32,
    ) {
        let h = &self.handle;
        let m = &h.metrics;
        let rec = &r.record;
        let kind = rec.kind.as_str().to_string();
        let secs = (rec.ended_at - rec.started_at).num_milliseconds().max(0) as f64 / 1000.0;
        m.cycle_duration
            .get_or_create(&metrics::KindLabel { kind: kind.clone() })
            .observe(secs);
        m.cycles
            .get_or_create(&metrics::CycleLabels {
                kind: kind.clone(),
                result: rec.outcome.as_str().into(),
            })
            .inc();
        for t in &r.tallies {
            m.actions
                .get_or_create(&metrics::ActionLabels {
                    operation: t.operation.into(),
                    result: t.result.into(),
                })
                .inc_by(t.count);
        }
        for (status, n) in [
            ("2xx", r.graph.responses_2xx),
            ("4xx", r.graph.responses_4xx),
            ("5xx", r.graph.responses_5xx),
            ("transport-error", r.graph.transport_errors),
        ] {
            m.graph_requests
                .get_or_create(&metrics::StatusLabel {
                    status: status.into(),
                })
                .inc_by(n);
        }
        m.graph_throttled.inc_by(r.graph.throttled);
        m.graph_retries.inc_by(r.graph.retries);
        m.ldap_entries
            .get_or_create(&metrics::KindLabel { kind: kind.clone() })
            .inc_by(rec.ldap_entries);
        if let Some(p) = &r.plan {
            for (t, n) in [("user", p.in_scope_users), ("group", p.in_scope_groups)] {
                m.objects_in_scope
                    .get_or_create(&metrics::ObjectTypeLabel {
                        object_type: t.into(),
                    })
                    .set(n as i64);
            }
        }
        m.object_errors.set(r.object_errors.len() as i64);
        m.blocked_deletes.set(r.blocked_deprovisions as i64);

        let now = chrono::Utc::now();
        let outcome = rec.outcome;
        let error = r.error.as_ref();
        let ok = error.is_none() && outcome != crate::state::RunOutcome::Interrupted;
        if ok {
            m.last_success.set(now.timestamp() as f64);
        }
        m.ready.set(i64::from(ok));
        match error {
            None => tracing::info!(outcome = outcome.as_str(), cycle = %rec.id, "cycle done"),
            Some(e) => {
                tracing::error!(outcome = outcome.as_str(), cycle = %rec.id, reason = e.reason(), error = %e, "cycle failed")
            }
        }
        write_status(&h.status, |s| {
            s.last_cycle = Some(rec.clone());
            if r.plan.is_some() {
                s.last_plan = r.plan.clone();
            }
            s.last_applied = rec.applied;
            s.object_error_count = r.object_errors.len();
            s.object_errors = r
                .object_errors
                .iter()
                .take(status::MAX_OBJECT_ERRORS)
                .cloned()
                .collect();
            s.recent_runs = engine.state.runs.iter().rev().take(10).cloned().collect();
            s.last_applied_revision = engine.state.last_applied_revision.clone();
            match error {
                None => {
                    if ok {
                        s.ready = true;
                        s.last_success_at = Some(rfc3339(now));
                    }
                    let (reason, msg) = match outcome {
                        crate::state::RunOutcome::InSync => {
                            ("InSync", "Entra matches AD and the policy".to_string())
                        }
                        crate::state::RunOutcome::Applied => (
                            "Applied",
                            format!("applied {} action(s)", rec.applied.map_or(0, |a| a.ok)),
                        ),
                        crate::state::RunOutcome::Planned => (
                            "PlanOnly",
                            "planned and logged; nothing written (plan-only)".to_string(),
                        ),
                        _ => (
                            "ApplyIncomplete",
                            format!(
                                "{} action(s) pending; the next cycle continues",
                                rec.applied.map_or(0, |a| a.pending + a.skipped)
                            ),
                        ),
                    };
                    let status = if ok {
                        ConditionStatus::True
                    } else {
                        ConditionStatus::False
                    };
                    let msg = if r.object_errors.is_empty() {
                        msg
                    } else {
                        format!("{msg}; {} object error(s)", r.object_errors.len())
                    };
                    s.set_condition("Ready", status, reason, msg, now);
                    s.set_condition("Stalled", ConditionStatus::False, "Healthy", "", now);
                    s.set_condition("Reconciling", ConditionStatus::False, "Idle", "", now);
                }
                Some(e) => {
                    let msg = e.to_string();
                    s.set_condition(
                        "Ready",
                        ConditionStatus::False,
                        e.reason(),
                        msg.clone(),
                        now,
                    );
                    match e.class() {
                        ErrorClass::Transient => {
                            let when = retry_at.map(|t| {
                                rfc3339(
                                    now + chrono::Duration::from_std(
                                        t.saturating_duration_since(Instant::now()),
                                    )
                                    .unwrap_or_default(),
                                )
                            });
                            s.set_condition(
                                "Reconciling",
                                ConditionStatus::True,
                                "RetryScheduled",
                                format!(
                                    "attempt {failures} failed; retry at {}",
                                    when.unwrap_or_default()
                                ),
                                now,
                            );
                            s.set_condition("Stalled", ConditionStatus::False, "Retrying", "", now);
                        }
                        ErrorClass::Terminal => {
                            s.set_condition("Stalled", ConditionStatus::True, e.reason(), msg, now);
                            s.set_condition(
                                "Reconciling",
                                ConditionStatus::False,
                                "Stalled",
                                "waiting for a new policy revision or a manual trigger (ad2entra sync-now)",
                                now,
                            );
                        }
                    }
                }
            }
            // An invalid newer revision stays visible until a valid one replaces it.
            if let Some(a) = &s.last_attempted_revision
                && !a.valid
            {
                let msg = format!(
                    "revision {} is invalid; running on {}",
                    a.revision,
                    s.running_revision.clone().unwrap_or_default()
                );
                s.set_condition("Ready", ConditionStatus::False, "PolicyInvalid", msg, now);
            }
        });
    }
}
