//! What starts a cycle, and how triggers that arrive while a cycle runs coalesce.
//!
//! One cycle runs at a time. Triggers that arrive during a cycle are remembered as one
//! pending cycle (full if any of them asked for full), so a burst of triggers costs one
//! more cycle, never a queue of them. AD change events are debounced: a bulk change in
//! AD (a script touching 500 users) becomes one delta cycle after a quiet period.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Why a cycle runs. Reported in logs, status and the run history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerReason {
    /// The process started (always a full cycle).
    Startup,
    /// `schedule.interval` elapsed: the safety net.
    Interval,
    /// A new valid policy revision (always a full cycle).
    PolicyChange,
    /// The AD change watcher saw changes (debounced).
    AdChange,
    /// `POST /sync` or `ad2entra sync-now`.
    Api,
    /// SIGHUP.
    Signal,
    /// A retry after a transient failure.
    Retry,
}

impl TriggerReason {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerReason::Startup => "startup",
            TriggerReason::Interval => "interval",
            TriggerReason::PolicyChange => "policy-change",
            TriggerReason::AdChange => "ad-change",
            TriggerReason::Api => "api",
            TriggerReason::Signal => "sighup",
            TriggerReason::Retry => "retry",
        }
    }

    /// Manual triggers release a stalled reconciler; automatic ones do not (a stall
    /// waits for a person or a new commit).
    pub fn is_manual(self) -> bool {
        matches!(
            self,
            TriggerReason::Api | TriggerReason::Signal | TriggerReason::PolicyChange
        )
    }
}

/// One request for a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub reason: TriggerReason,
    /// Ask for a full cycle (re-read everything) instead of a delta.
    pub full: bool,
}

impl Trigger {
    pub fn new(reason: TriggerReason) -> Self {
        Trigger {
            reason,
            full: matches!(reason, TriggerReason::Startup | TriggerReason::PolicyChange),
        }
    }

    pub fn full(reason: TriggerReason) -> Self {
        Trigger { reason, full: true }
    }
}

/// The cycle that triggers asked for: why, and whether full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    pub reasons: BTreeSet<TriggerReason>,
    pub full: bool,
}

impl Wanted {
    /// `api+interval`: the reasons for logs and the run history.
    pub fn label(&self) -> String {
        self.reasons
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }

    pub fn is_manual(&self) -> bool {
        self.reasons.iter().any(|r| r.is_manual())
    }
}

/// Triggers collected since the last cycle started: at most one pending cycle.
#[derive(Clone, Debug, Default)]
pub struct Pending(Option<Wanted>);

impl Pending {
    pub fn push(&mut self, t: Trigger) {
        let w = self.0.get_or_insert_with(Wanted::default);
        w.reasons.insert(t.reason);
        w.full |= t.full;
    }

    /// Takes the pending cycle, leaving none.
    pub fn take(&mut self) -> Option<Wanted> {
        self.0.take()
    }

    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Drops automatic triggers (used while stalled); keeps the manual ones.
    pub fn retain_manual(&mut self) {
        if let Some(w) = &mut self.0 {
            w.reasons.retain(|r| r.is_manual());
            if w.reasons.is_empty() {
                self.0 = None;
            }
        }
    }
}

/// Turns a stream of AD change events into one trigger after a quiet period, or after
/// `max_delay` at the latest when changes never stop.
#[derive(Clone, Debug)]
pub struct Debouncer {
    quiet: Duration,
    max_delay: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    events: u64,
}

impl Debouncer {
    pub fn new(quiet: Duration, max_delay: Duration) -> Self {
        Debouncer {
            quiet,
            max_delay: max_delay.max(quiet),
            first: None,
            last: None,
            events: 0,
        }
    }

    /// Records one change event.
    pub fn note(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.events += 1;
    }

    /// When the trigger is due, if any event is waiting.
    pub fn due_at(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + self.quiet).min(first + self.max_delay))
    }

    /// If due at `now`, resets and returns how many events it covers.
    pub fn fire(&mut self, now: Instant) -> Option<u64> {
        if self.due_at()? <= now {
            let n = self.events;
            *self = Debouncer::new(self.quiet, self.max_delay);
            Some(n)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_during_a_cycle_coalesce_into_one_cycle() {
        let mut p = Pending::default();
        assert!(p.take().is_none());
        p.push(Trigger::new(TriggerReason::Api));
        p.push(Trigger::new(TriggerReason::Interval));
        p.push(Trigger::new(TriggerReason::Api));
        let w = p.take().unwrap();
        assert_eq!(w.label(), "interval+api");
        assert!(!w.full);
        assert!(p.take().is_none(), "exactly one more cycle");
        p.push(Trigger::new(TriggerReason::AdChange));
        p.push(Trigger::full(TriggerReason::Api));
        assert!(p.take().unwrap().full, "full if any asked for full");
    }

    #[test]
    fn stalled_keeps_only_manual_triggers() {
        let mut p = Pending::default();
        p.push(Trigger::new(TriggerReason::Interval));
        p.push(Trigger::new(TriggerReason::AdChange));
        p.retain_manual();
        assert!(!p.is_some());
        p.push(Trigger::new(TriggerReason::Interval));
        p.push(Trigger::new(TriggerReason::Signal));
        p.retain_manual();
        assert_eq!(p.take().unwrap().label(), "sighup");
        assert!(Trigger::new(TriggerReason::PolicyChange).full);
        assert!(Trigger::new(TriggerReason::Startup).full);
        assert!(!Trigger::new(TriggerReason::AdChange).full);
    }

    #[test]
    fn debouncer_waits_for_quiet_but_not_forever() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut d = Debouncer::new(5 * s, 30 * s);
        assert_eq!(d.due_at(), None);
        assert_eq!(d.fire(t0 + 100 * s), None);
        d.note(t0);
        d.note(t0 + 2 * s);
        assert_eq!(d.due_at(), Some(t0 + 7 * s));
        assert_eq!(d.fire(t0 + 6 * s), None);
        assert_eq!(d.fire(t0 + 7 * s), Some(2));
        assert_eq!(d.due_at(), None, "reset after firing");
        // A change every 4 s never leaves 5 s of quiet: fires at first + 30 s.
        for i in 0..20 {
            d.note(t0 + 4 * i * s);
        }
        assert_eq!(d.due_at(), Some(t0 + 30 * s));
    }
}
