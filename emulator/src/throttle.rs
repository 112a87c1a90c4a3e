//! Graph's throttling model for identity and access (notes/01-throttling.md): token buckets per
//! application+tenant (resource units per 10 s by tenant size, 3,000 writes per 150 s) and per
//! tenant (18,000 writes per 5 min), with the documented request costs. Tests may make the
//! application's buckets tighter than documented, size and window apart
//! ([`crate::config::BucketConfig`]), as when other apps spend a shared budget.
//!
//! Answers carry the documented headers: `x-ms-resource-unit` (the request's cost) and, once
//! the app has used more than 0.8 of a limit, `x-ms-throttle-limit-percentage` (the share of
//! the fullest bucket in use). The throttle also remembers the Retry-After instants it gave,
//! so the server can count requests that arrive before one has passed
//! ([`Throttle::arrived_early`]).
//!
//! `time_scale` divides every window: with 100.0 the 150 s write window refills in 1.5 s and
//! Retry-After values are 100× shorter. Unscaled (1.0) Retry-After is an integer ≥ 1 (seconds);
//! scaled, Retry-After carries fractional seconds with millisecond precision (e.g. `0.153`)
//! and `Retry-After-Ms` carries the same delay as an integer number of milliseconds ≥ 1.

use crate::config::{TenantSize, ThrottleConfig};
use std::time::{Duration, Instant};

/// A refilling bucket.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    /// Virtual seconds for a full refill.
    window_secs: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(capacity: f64, window_secs: f64, now: Instant) -> Self {
        Bucket {
            capacity,
            window_secs,
            tokens: capacity,
            last: now,
        }
    }
    fn refill(&mut self, now: Instant, scale: f64) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64() * scale;
        self.tokens = (self.tokens + elapsed * self.capacity / self.window_secs).min(self.capacity);
        self.last = now;
    }
    /// Share of the bucket in use.
    fn usage(&self) -> f64 {
        1.0 - self.tokens / self.capacity
    }
    /// Virtual seconds until `cost` tokens are available.
    fn wait_for(&self, cost: f64) -> f64 {
        if self.tokens >= cost {
            0.0
        } else {
            (cost.min(self.capacity) - self.tokens) * self.window_secs / self.capacity
        }
    }
}

/// The cost of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Resource units.
    pub resource_units: u32,
    /// Writes (0 or 1).
    pub writes: u32,
}

/// Computes the documented cost of a request (method, path after /v1.0, and query modifiers).
pub fn cost(
    method: &str,
    path: &str,
    has_select: bool,
    has_expand: bool,
    top: Option<usize>,
) -> Cost {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if method != "GET" {
        return Cost {
            resource_units: 1,
            writes: 1,
        };
    }
    let base: i64 = match segs.as_slice() {
        ["users"] | ["users", _] => 2,
        ["users", _, "memberOf"] => 2,
        ["users", _, "licenseDetails"] => 2,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitiveMembers"] => 5,
        ["subscribedSkus"] => 3,
        _ => 1,
    };
    let mut c = base;
    if has_select {
        c -= 1;
    }
    if has_expand {
        c += 1;
    }
    if top.is_some_and(|t| t < 20) {
        c -= 1;
    }
    Cost {
        resource_units: u32::try_from(c.max(1)).unwrap_or(1),
        writes: 0,
    }
}

/// Why a request was throttled, with the delay to send back.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    /// Real-time delay in seconds.
    pub retry_after_secs: f64,
    /// `x-ms-throttle-scope` value.
    pub scope: String,
    /// `x-ms-throttle-information` value.
    pub information: &'static str,
    /// Whether time is scaled (decides the Retry-After format).
    pub scaled: bool,
}

impl Throttled {
    /// The delay the headers say, in seconds: whole seconds ≥ 1 unscaled, milliseconds ≥ 1
    /// scaled (always rounded up, so a client that waits it out is never early).
    pub fn retry_after_header_secs(&self) -> f64 {
        if self.scaled {
            (self.retry_after_secs * 1000.0).ceil().max(1.0) / 1000.0
        } else {
            self.retry_after_secs.ceil().max(1.0)
        }
    }

    /// Response headers for a 429: Retry-After (and Retry-After-Ms when scaled), scope, info.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut h = Vec::new();
        let secs = self.retry_after_header_secs();
        if self.scaled {
            h.push(("Retry-After".into(), format!("{secs:.3}")));
            h.push(("Retry-After-Ms".into(), format!("{:.0}", secs * 1000.0)));
        } else {
            h.push(("Retry-After".into(), format!("{secs:.0}")));
        }
        h.push(("x-ms-throttle-scope".into(), self.scope.clone()));
        h.push(("x-ms-throttle-information".into(), self.information.into()));
        h
    }
}

/// A request let through, and how full the buckets it was charged to are now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Charged {
    /// The highest share in use of the buckets charged, when above 0.8 (Graph sends
    /// `x-ms-throttle-limit-percentage` only then).
    pub limit_percentage: Option<f64>,
}

impl Charged {
    /// `x-ms-throttle-limit-percentage`, when due.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.limit_percentage
            .map(|p| {
                (
                    "x-ms-throttle-limit-percentage".to_string(),
                    format!("{p:.3}"),
                )
            })
            .into_iter()
            .collect()
    }
}

/// Usage above which Graph reports the limit percentage.
const REPORTED_USAGE: f64 = 0.8;

/// The buckets of one tenant and application.
#[derive(Debug, Clone)]
pub struct Throttle {
    config: ThrottleConfig,
    app_id: String,
    tenant_id: String,
    ru: Option<(u32, Bucket)>,
    app_writes: Bucket,
    tenant_writes: Bucket,
    /// The latest Retry-After given: (when it was given, the instant it ends).
    retry_after: Option<(Instant, Instant)>,
}

impl Throttle {
    /// New full buckets.
    pub fn new(config: ThrottleConfig, app_id: &str, tenant_id: &str) -> Self {
        let now = Instant::now();
        let (size, window) = match config.app_write_bucket {
            Some(b) => (f64::from(b.size.max(1)), b.window_secs),
            None => (f64::from(config.writes_per_150s.max(1)), 150.0),
        };
        Throttle {
            app_writes: Bucket::new(size, window, now),
            retry_after: None,
            tenant_writes: Bucket::new(f64::from(config.tenant_writes_per_5min.max(1)), 300.0, now),
            ru: None,
            config,
            app_id: app_id.into(),
            tenant_id: tenant_id.into(),
        }
    }

    /// Current configuration.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Replaces the configuration; buckets are rebuilt full.
    pub fn reconfigure(&mut self, config: ThrottleConfig) {
        *self = Throttle::new(config, &self.app_id.clone(), &self.tenant_id.clone());
    }

    fn ru_quota(&self, user_count: usize) -> u32 {
        if let Some(q) = self.config.resource_units_per_10s {
            return q.max(1);
        }
        match self.config.tenant_size {
            TenantSize::Small => 3500,
            TenantSize::Medium => 5000,
            TenantSize::Large => 8000,
            TenantSize::Auto if user_count < 50 => 3500,
            TenantSize::Auto if user_count <= 500 => 5000,
            TenantSize::Auto => 8000,
        }
    }

    /// Whether a request that arrived at `arrived` came before the end of a Retry-After
    /// this throttle gave earlier (requests that arrived before it was given were already
    /// on their way, and do not count).
    pub fn arrived_early(&self, arrived: Instant) -> bool {
        self.retry_after
            .is_some_and(|(given, until)| arrived >= given && arrived < until)
    }

    /// The Retry-After in force, if any: (when it was given, the instant it ends).
    pub fn retry_after(&self) -> Option<(Instant, Instant)> {
        self.retry_after
    }

    /// Charges a request, or says how long to wait. A throttled request consumes nothing.
    pub fn charge(&mut self, cost: Cost, user_count: usize) -> Result<Charged, Throttled> {
        if !self.config.enabled {
            return Ok(Charged {
                limit_percentage: None,
            });
        }
        let now = Instant::now();
        let scale = self.config.time_scale;
        let (quota, window) = match self.config.resource_unit_bucket {
            Some(b) => (b.size.max(1), b.window_secs),
            None => (self.ru_quota(user_count), 10.0),
        };
        match &mut self.ru {
            Some((q, b)) if *q == quota => b.refill(now, scale),
            _ => self.ru = Some((quota, Bucket::new(f64::from(quota), window, now))),
        }
        self.app_writes.refill(now, scale);
        self.tenant_writes.refill(now, scale);
        let scaled = (scale - 1.0).abs() > f64::EPSILON;
        let ru_cost = f64::from(cost.resource_units);
        let w = f64::from(cost.writes);
        let mut worst: Option<(f64, String, &'static str)> = None;
        let mut consider = |wait: f64, scope: String, info: &'static str| {
            if wait > 0.0 && worst.as_ref().is_none_or(|(x, _, _)| wait > *x) {
                worst = Some((wait, scope, info));
            }
        };
        if let Some((_, b)) = &self.ru {
            consider(
                b.wait_for(ru_cost),
                format!(
                    "Tenant_Application/ReadWrite/{}/{}",
                    self.app_id, self.tenant_id
                ),
                "ResourceUnitLimitExceeded",
            );
        }
        if w > 0.0 {
            consider(
                self.app_writes.wait_for(w),
                format!(
                    "Tenant_Application/Write/{}/{}",
                    self.app_id, self.tenant_id
                ),
                "WriteLimitExceeded",
            );
            consider(
                self.tenant_writes.wait_for(w),
                format!("Tenant/Write/{}/{}", self.app_id, self.tenant_id),
                "WriteLimitExceeded",
            );
        }
        if let Some((wait, scope, information)) = worst {
            let t = Throttled {
                retry_after_secs: wait / scale,
                scope,
                information,
                scaled,
            };
            // The instant the client is told, as it will read the header.
            let until = now + Duration::from_secs_f64(t.retry_after_header_secs());
            self.retry_after = Some(match self.retry_after {
                Some((given, end)) if now < end => (given, end.max(until)),
                _ => (now, until),
            });
            return Err(t);
        }
        let mut usage: f64 = 0.0;
        if let Some((_, b)) = &mut self.ru {
            b.tokens -= ru_cost;
            usage = usage.max(b.usage());
        }
        if w > 0.0 {
            self.app_writes.tokens -= w;
            self.tenant_writes.tokens -= w;
            usage = usage
                .max(self.app_writes.usage())
                .max(self.tenant_writes.usage());
        }
        Ok(Charged {
            limit_percentage: (usage > REPORTED_USAGE).then_some(usage),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_costs() {
        assert_eq!(cost("GET", "/users", false, false, None).resource_units, 2);
        assert_eq!(cost("GET", "/users", true, false, None).resource_units, 1);
        assert_eq!(
            cost("GET", "/users", true, false, Some(5)).resource_units,
            1
        );
        assert_eq!(
            cost("GET", "/groups/x/members", false, false, None).resource_units,
            3
        );
        assert_eq!(
            cost("GET", "/subscribedSkus", false, true, None).resource_units,
            4
        );
        assert_eq!(
            cost("GET", "/domains", false, false, None).resource_units,
            1
        );
        assert_eq!(
            cost("PATCH", "/users/x", false, false, None),
            Cost {
                resource_units: 1,
                writes: 1
            }
        );
    }

    #[test]
    fn write_bucket_throttles_and_refills_with_time_scale() {
        let cfg = ThrottleConfig {
            writes_per_150s: 3,
            time_scale: 1000.0,
            ..ThrottleConfig::default()
        };
        let mut t = Throttle::new(cfg, "app", "tenant");
        let w = Cost {
            resource_units: 1,
            writes: 1,
        };
        for _ in 0..3 {
            t.charge(w, 0).unwrap();
        }
        let e = t.charge(w, 0).unwrap_err();
        assert_eq!(e.information, "WriteLimitExceeded");
        // one write refills in 50 virtual seconds = 50 ms real at scale 1000
        assert!(
            e.retry_after_secs > 0.0 && e.retry_after_secs <= 0.051,
            "{}",
            e.retry_after_secs
        );
        let h = e.headers();
        assert!(h.iter().any(|(k, _)| k == "Retry-After-Ms"));
        std::thread::sleep(std::time::Duration::from_millis(60));
        t.charge(w, 0).unwrap();
    }

    #[test]
    fn unscaled_retry_after_is_integer() {
        let th = Throttled {
            retry_after_secs: 0.2,
            scope: "s".into(),
            information: "x",
            scaled: false,
        };
        assert_eq!(
            th.headers()[0],
            ("Retry-After".to_string(), "1".to_string())
        );
        assert_eq!(th.headers().len(), 3);
    }
}
