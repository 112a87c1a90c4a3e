//! When a cycle must read everything (full) instead of only what changed (delta).
//!
//! Delta cycles are cheap; full cycles are the ground truth. Like Entra Connect's
//! "full import" after a configuration change and its periodic full sync, a full cycle
//! runs at start, on a policy change, every `schedule.fullEvery`, after Graph says a
//! delta link expired, when the AD watermark belongs to another DC database (restore,
//! rebuild, failover) or is older than the tombstone lifetime (deletions may have been
//! purged), and when asked (`POST /sync?full=true`).

use chrono::{DateTime, Utc};
use std::time::Duration;

/// Everything the decision depends on (no IO: the caller gathers it).
#[derive(Clone, Debug)]
pub struct KindInputs {
    /// A trigger asked for a full cycle (startup, policy change, `?full=true`).
    pub forced_full: bool,
    /// The AD snapshot and watermark of the last cycle are in memory.
    pub have_ad: bool,
    /// The Entra snapshot and delta links of the last cycle are in memory.
    pub have_entra: bool,
    pub last_full_at: Option<DateTime<Utc>>,
    pub full_every: Duration,
    /// When the AD watermark was taken.
    pub ad_watermark_at: Option<DateTime<Utc>>,
    /// The forest's tombstone lifetime, when known.
    pub tombstone_lifetime: Option<Duration>,
    pub now: DateTime<Utc>,
}

/// Why a cycle is full, or `None` for a delta cycle.
pub fn full_reason(i: &KindInputs) -> Option<&'static str> {
    if i.forced_full {
        return Some("requested");
    }
    if !i.have_ad || !i.have_entra {
        return Some("no previous snapshot in memory");
    }
    let age = |t: DateTime<Utc>| (i.now - t).to_std().unwrap_or(Duration::ZERO);
    match i.last_full_at {
        None => return Some("no full cycle yet"),
        Some(t) if age(t) >= i.full_every => return Some("fullEvery elapsed"),
        Some(_) => {}
    }
    if let (Some(t), Some(life)) = (i.ad_watermark_at, i.tombstone_lifetime)
        && age(t) >= life
    {
        return Some("AD watermark older than the tombstone lifetime");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> KindInputs {
        let now = Utc::now();
        KindInputs {
            forced_full: false,
            have_ad: true,
            have_entra: true,
            last_full_at: Some(now - chrono::Duration::hours(1)),
            full_every: Duration::from_secs(24 * 3600),
            ad_watermark_at: Some(now - chrono::Duration::minutes(5)),
            tombstone_lifetime: Some(Duration::from_secs(180 * 86400)),
            now,
        }
    }

    #[test]
    fn delta_unless_a_rule_says_full() {
        assert_eq!(full_reason(&base()), None);
        let mut i = base();
        i.forced_full = true;
        assert_eq!(full_reason(&i), Some("requested"));
        let mut i = base();
        i.have_entra = false;
        assert!(full_reason(&i).is_some());
        let mut i = base();
        i.last_full_at = Some(i.now - chrono::Duration::hours(25));
        assert_eq!(full_reason(&i), Some("fullEvery elapsed"));
        let mut i = base();
        i.tombstone_lifetime = Some(Duration::from_secs(60));
        assert_eq!(
            full_reason(&i),
            Some("AD watermark older than the tombstone lifetime")
        );
        let mut i = base();
        i.last_full_at = None;
        assert!(full_reason(&i).is_some());
    }
}
