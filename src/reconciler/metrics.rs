//! Prometheus metrics of the reconciler (`/metrics`, OpenMetrics text).
//!
//! One explicit registry per reconciler (no globals), so tests can scrape a fresh one.
//! The names follow Prometheus conventions: `ad2entra_` prefix, `_total` counters,
//! `_seconds` durations, labels with few values (kind, result, operation).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CycleLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub operation: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectTypeLabel {
    pub object_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RevisionLabels {
    pub revision: String,
    pub content_hash: String,
}

/// Every metric the reconciler exports.
pub struct Metrics {
    registry: Registry,
    pub cycle_duration: Family<KindLabel, Histogram>,
    pub cycles: Family<CycleLabels, Counter>,
    pub actions: Family<ActionLabels, Counter>,
    pub graph_requests: Family<StatusLabel, Counter>,
    pub graph_throttled: Counter,
    pub graph_retries: Counter,
    pub ldap_entries: Family<KindLabel, Counter>,
    pub triggers: Family<ReasonLabel, Counter>,
    pub ad_changes: Counter,
    pub objects_in_scope: Family<ObjectTypeLabel, Gauge>,
    pub object_errors: Gauge,
    pub blocked_deletes: Gauge,
    pub last_success: Gauge<f64, AtomicU64>,
    pub policy_revision: Family<RevisionLabels, Gauge>,
    pub invalid_revisions: Counter,
    pub ready: Gauge,
    pub ad_watch_connected: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("ad2entra");
        let cycle_duration = Family::<KindLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 16))
        });
        r.register(
            "cycle_duration_seconds",
            "Duration of reconcile cycles by kind (full, delta)",
            cycle_duration.clone(),
        );
        let cycles = Family::<CycleLabels, Counter>::default();
        r.register(
            "cycles",
            "Reconcile cycles by kind and result (in-sync, applied, planned, interrupted, failed, stalled)",
            cycles.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        r.register(
            "actions",
            "Plan actions applied, by operation and result (ok, failed, stale, skipped, pending, planned)",
            actions.clone(),
        );
        let graph_requests = Family::<StatusLabel, Counter>::default();
        r.register(
            "graph_requests",
            "HTTP responses from Microsoft Graph ($batch counts once), by status class (2xx, 4xx incl. 429, 5xx, transport-error)",
            graph_requests.clone(),
        );
        let graph_throttled = Counter::default();
        r.register(
            "graph_throttled",
            "Graph 429 responses (outer and inner)",
            graph_throttled.clone(),
        );
        let graph_retries = Counter::default();
        r.register(
            "graph_retries",
            "Graph requests retried",
            graph_retries.clone(),
        );
        let ldap_entries = Family::<KindLabel, Counter>::default();
        r.register(
            "ldap_entries_read",
            "AD entries read over LDAP, by cycle kind",
            ldap_entries.clone(),
        );
        let triggers = Family::<ReasonLabel, Counter>::default();
        r.register(
            "triggers",
            "Cycle triggers received, by reason",
            triggers.clone(),
        );
        let ad_changes = Counter::default();
        r.register(
            "ad_change_notifications",
            "AD change notifications received",
            ad_changes.clone(),
        );
        let objects_in_scope = Family::<ObjectTypeLabel, Gauge>::default();
        r.register(
            "objects_in_scope",
            "AD objects in scope after the last plan",
            objects_in_scope.clone(),
        );
        let object_errors = Gauge::default();
        r.register(
            "object_errors",
            "Per-object errors of the last cycle (plan diagnostics and apply failures)",
            object_errors.clone(),
        );
        let blocked_deletes = Gauge::default();
        r.register(
            "blocked_deprovisions",
            "Disable/delete actions held back by the deletion gates in the last plan",
            blocked_deletes.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        r.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful cycle",
            last_success.clone(),
        );
        let policy_revision = Family::<RevisionLabels, Gauge>::default();
        r.register(
            "policy_revision",
            "The policy revision the reconciler runs on (value 1)",
            policy_revision.clone(),
        );
        let invalid_revisions = Counter::default();
        r.register(
            "policy_invalid_revisions",
            "Policy revisions refused (invalid YAML, schema, semantics or signature)",
            invalid_revisions.clone(),
        );
        let ready = Gauge::default();
        r.register("ready", "1 when the last cycle converged", ready.clone());
        let ad_watch_connected = Gauge::default();
        r.register(
            "ad_watch_connected",
            "1 while the AD change notification searches are open",
            ad_watch_connected.clone(),
        );
        Metrics {
            registry: r,
            cycle_duration,
            cycles,
            actions,
            graph_requests,
            graph_throttled,
            graph_retries,
            ldap_entries,
            triggers,
            ad_changes,
            objects_in_scope,
            object_errors,
            blocked_deletes,
            last_success,
            policy_revision,
            invalid_revisions,
            ready,
            ad_watch_connected,
        }
    }

    /// Sets the info-style revision metric to the revision in use.
    pub fn set_revision(&self, revision: &str, content_hash: &str) {
        self.policy_revision.clear();
        self.policy_revision
            .get_or_create(&RevisionLabels {
                revision: revision.to_string(),
                content_hash: content_hash.to_string(),
            })
            .set(1);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters_and_the_revision() {
        let m = Metrics::new();
        m.cycles
            .get_or_create(&CycleLabels {
                kind: "full".into(),
                result: "applied".into(),
            })
            .inc();
        m.set_revision("abc123", "sha256:ff");
        m.set_revision("def456", "sha256:ee");
        let text = m.encode();
        assert!(text.contains("ad2entra_cycles_total{kind=\"full\",result=\"applied\"} 1"));
        assert!(text.contains("ad2entra_policy_revision{revision=\"def456\""));
        assert!(!text.contains("abc123"), "old revision removed");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
