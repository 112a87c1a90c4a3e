//! The client's throttle: one gate every Graph request passes, so that the app stays inside
//! Graph's identity budgets (notes/01-throttling.md) as Graph asks, even when the budget
//! is tighter than documented because other apps of the tenant share it.
//!
//! - **Pause.** A 429 (outer, or inner in a `$batch`) pauses *every* request of the client
//!   until its `Retry-After` instant: the budget is the app's, not the request's. Only
//!   requests already in flight may reach Graph before that instant.
//! - **Rates (AIMD).** Writes and resource units each have a token bucket that starts at the
//!   documented budget (less a small headroom) and never goes above it. A 429 cuts the rate
//!   multiplicatively, to at most what Graph accepted over the last window; an
//!   `x-ms-throttle-limit-percentage` that our own use does not explain (Graph's bucket is
//!   fuller than we emptied it) cuts it before any 429, to what that percentage implies.
//!   While no such signal comes, the rate grows back additively to the documented budget.
//! - **Costs.** Each request is charged its documented resource units ([`request_cost`]);
//!   `x-ms-resource-unit`, where Graph sends it, corrects the estimate.
//!
//! The limiter never uses a clock of its own for decisions: every method that changes
//! state takes `now`, so the control loop is tested on a simulated clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A write budget: `writes` per `window` (a bucket of `writes` refilled over `window`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WriteBudget {
    pub writes: u32,
    pub window: Duration,
}

impl Default for WriteBudget {
    /// Graph's documented identity write quota per app and tenant.
    fn default() -> Self {
        WriteBudget {
            writes: 3000,
            window: Duration::from_secs(150),
        }
    }
}

impl WriteBudget {
    /// The same budget with time running `factor` times faster (the emulator's scaled
    /// throttling): same writes, window divided by `factor`.
    pub fn time_scaled(self, factor: f64) -> Self {
        WriteBudget {
            writes: self.writes,
            window: self.window.div_f64(factor.max(1e-6)),
        }
    }

    /// Parses `WRITES/SECONDS`, e.g. `3000/150` or `3000/1.5` (env `AD2ENTRA_GRAPH_WRITE_BUDGET`).
    pub fn parse(s: &str) -> Option<Self> {
        let (writes, window) = parse_budget(s)?;
        Some(WriteBudget { writes, window })
    }
}

/// A resource-unit budget: `units` per `window` for the app+tenant pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResourceUnitBudget {
    pub units: u32,
    pub window: Duration,
}

impl Default for ResourceUnitBudget {
    /// The smallest documented quota (tenants under 50 users): right for any tenant until
    /// its size is known ([`ResourceUnitBudget::for_tenant_users`]).
    fn default() -> Self {
        Self::for_tenant_users(0)
    }
}

impl ResourceUnitBudget {
    /// The documented quota for a tenant of `users` users: 3,500 (S, < 50 users), 5,000
    /// (M, 50–500) or 8,000 (L, > 500) resource units per 10 s.
    pub fn for_tenant_users(users: usize) -> Self {
        let units = match users {
            0..50 => 3500,
            50..=500 => 5000,
            _ => 8000,
        };
        ResourceUnitBudget {
            units,
            window: Duration::from_secs(10),
        }
    }

    /// The same budget with time running `factor` times faster.
    pub fn time_scaled(self, factor: f64) -> Self {
        ResourceUnitBudget {
            units: self.units,
            window: self.window.div_f64(factor.max(1e-6)),
        }
    }

    /// Parses `UNITS/SECONDS`, e.g. `8000/10` (env `AD2ENTRA_GRAPH_RU_BUDGET`).
    pub fn parse(s: &str) -> Option<Self> {
        let (units, window) = parse_budget(s)?;
        Some(ResourceUnitBudget { units, window })
    }
}

fn parse_budget(s: &str) -> Option<(u32, Duration)> {
    let (n, secs) = s.split_once('/')?;
    let n: u32 = n.trim().parse().ok()?;
    let secs: f64 = secs.trim().trim_end_matches('s').parse().ok()?;
    if n == 0 || !(secs > 0.0 && secs.is_finite()) {
        return None;
    }
    Some((n, Duration::from_secs_f64(secs)))
}

/// What one request costs against the budgets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub writes: u32,
    pub resource_units: u32,
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            writes: self.writes + o.writes,
            resource_units: self.resource_units + o.resource_units,
        }
    }
}

/// The documented cost of one request (identity and access service limits): writes cost
/// one write and one resource unit; reads cost by resource (2 for users, 3 for group
/// members and subscribed SKUs, 5 for transitive members and `getByIds`, 1 otherwise),
/// one less with `$select` or `$top` under 20, one more with `$expand`, never below 1.
/// `url` is relative to the Graph root or absolute; the query is read for the modifiers.
pub fn request_cost(method: &str, url: &str) -> Cost {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = match path.find("://") {
        // Absolute (`@odata.nextLink`): drop scheme, host and version.
        Some(i) => {
            let rest = &path[i + 3..];
            let after_host = rest.find('/').map_or("", |j| &rest[j..]);
            after_host
                .trim_start_matches('/')
                .split_once('/')
                .map_or("", |(_, p)| p)
        }
        None => path,
    };
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_get = method.eq_ignore_ascii_case("GET");
    if !is_get && !matches!(segs.as_slice(), ["directoryObjects", "getByIds"]) {
        return Cost {
            writes: 1,
            resource_units: 1,
        };
    }
    let base: i64 = match segs.as_slice() {
        ["directoryObjects", "getByIds"] => 5,
        ["users"] | ["users", _] | ["me"] => 2,
        ["users" | "me", .., "memberOf"] | ["users" | "me", .., "licenseDetails"] => 2,
        ["groups", _, "members"] => 3,
        ["groups", _, "transitiveMembers"] => 5,
        ["subscribedSkus"] => 3,
        _ => 1,
    };
    let mut select = false;
    let mut expand = false;
    let mut small_top = false;
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let k = k.replace("%24", "$").to_ascii_lowercase();
        match k.as_str() {
            "$select" => select = true,
            "$expand" => expand = true,
            "$top" => small_top = v.parse::<u32>().is_ok_and(|t| t < 20),
            _ => {}
        }
    }
    let cost = base - i64::from(select) + i64::from(expand) - i64::from(small_top);
    Cost {
        writes: 0,
        resource_units: u32::try_from(cost.max(1)).unwrap_or(1),
    }
}

/// Which budget a throttling signal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Writes,
    ResourceUnits,
}

/// The throttling headers of one response (outer, or inner in a `$batch`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThrottleHeaders {
    /// `x-ms-throttle-limit-percentage`: how much of the limit the app used (0.8–1.8; Graph
    /// sends it only above 0.8).
    pub limit_percentage: Option<f64>,
    /// `x-ms-resource-unit`: what the request really cost.
    pub resource_units: Option<u32>,
    /// The limit a 429 is about, from `x-ms-throttle-scope` (`<Scope>/<Limit>/…`) or
    /// `x-ms-throttle-information`.
    pub limit: Option<Limit>,
}

impl ThrottleHeaders {
    /// Reads the headers through `get` (lower-case names).
    pub fn from_headers(get: impl Fn(&str) -> Option<String>) -> Self {
        let limit_percentage = get("x-ms-throttle-limit-percentage")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p >= 0.0);
        let resource_units = get("x-ms-resource-unit").and_then(|v| v.trim().parse().ok());
        let from_scope = get("x-ms-throttle-scope").and_then(|s| {
            match s.split('/').nth(1).map(str::to_ascii_lowercase).as_deref() {
                Some("write") => Some(Limit::Writes),
                Some("read" | "readwrite") => Some(Limit::ResourceUnits),
                _ => None,
            }
        });
        let from_info = get("x-ms-throttle-information").and_then(|s| {
            let s = s.to_ascii_lowercase();
            if s.contains("write") {
                Some(Limit::Writes)
            } else if s.contains("resourceunit") {
                Some(Limit::ResourceUnits)
            } else {
                None
            }
        });
        ThrottleHeaders {
            limit_percentage,
            resource_units,
            limit: from_scope.or(from_info),
        }
    }
}

/// Share of the documented budget used, for bucket size and refill rate alike. Graph counts
/// a write when it arrives, not when we grant it: with a bucket 4 % smaller, grants may
/// reach it up to window/24 late or bunched (6 s at 3,000/150 s) and still fit.
const HEADROOM: f64 = 0.96;
/// Multiplicative decrease on a 429, applied to the lower of our rate and the rate Graph
/// accepted over the last window.
const BACKOFF: f64 = 0.7;
/// Multiplicative decrease when the limit percentage rises with no 429 yet.
const SOFT_BACKOFF: f64 = 0.85;
/// Graph's bucket is this much fuller than our own use explains: not ours alone.
const UNEXPLAINED: f64 = 0.1;
/// A limit percentage this much above the last one it was acted on is a rise.
const RISE: f64 = 0.05;
/// Signals hold the additive increase for this share of the window.
const QUIET: f64 = 1.0 / 30.0;
/// Additive increase: from nothing to the documented rate in this share of the window.
const RECOVERY: f64 = 1.0 / 3.0;
/// Graph's batches hold at most 20 requests.
const MAX_BATCH: f64 = 20.0;

/// One budget (writes or resource units) under additive-increase, multiplicative-decrease.
#[derive(Debug)]
struct Aimd {
    /// Documented bucket size and refill rate (per second).
    doc_size: f64,
    doc_rate: f64,
    /// Documented window, seconds.
    window: f64,
    /// Current bucket size and refill rate (≤ documented × headroom).
    size: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
    /// The documented bucket as if only we used it: what Graph's usage would be.
    mirror: f64,
    /// Units granted (and not refused) within the last window, oldest first.
    log: VecDeque<(Instant, f64)>,
    accepted: f64,
    last_decrease: Option<Instant>,
    /// The limit percentage the last decrease acted on (1.0 after a 429), following the
    /// percentage down as Graph's bucket refills.
    base_percentage: f64,
    /// No additive increase before this instant.
    hold_until: Instant,
    min_size: f64,
}

impl Aimd {
    fn new(units: u32, window: Duration, min_size: f64, now: Instant) -> Self {
        let window = window.as_secs_f64().max(1e-6);
        let doc_size = f64::from(units.max(1));
        let size = (doc_size * HEADROOM).floor().max(1.0);
        Aimd {
            doc_size,
            doc_rate: doc_size / window,
            window,
            size,
            rate: size / window,
            tokens: size,
            last: now,
            mirror: doc_size,
            log: VecDeque::new(),
            accepted: 0.0,
            last_decrease: None,
            base_percentage: 0.0,
            hold_until: now,
            min_size: min_size.min(size),
        }
    }

    fn ceil_size(&self) -> f64 {
        (self.doc_size * HEADROOM).floor().max(1.0)
    }

    fn ceil_rate(&self) -> f64 {
        self.ceil_size() / self.window
    }

    fn floor_rate(&self) -> f64 {
        self.ceil_rate() / 100.0
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    /// Refills, grows the rate back when no signal came lately, forgets old grants.
    fn advance(&mut self, now: Instant) {
        if now > self.hold_until {
            let from = self.last.max(self.hold_until);
            let g = Self::secs(now.saturating_duration_since(from)) / (self.window * RECOVERY);
            self.rate = (self.rate + self.ceil_rate() * g).min(self.ceil_rate());
            self.size = (self.size + self.ceil_size() * g).min(self.ceil_size());
        }
        let dt = Self::secs(now.saturating_duration_since(self.last));
        self.tokens = (self.tokens + self.rate * dt).min(self.size);
        self.mirror = (self.mirror + self.doc_rate * dt).min(self.doc_size);
        self.last = self.last.max(now);
        let window = Duration::from_secs_f64(self.window);
        while let Some(&(t, k)) = self.log.front() {
            if now.saturating_duration_since(t) >= window {
                self.log.pop_front();
                self.accepted -= k;
            } else {
                break;
            }
        }
        self.accepted = self.accepted.max(0.0);
    }

    /// Seconds until `n` units may go (0: they may go now).
    fn wait_for(&self, n: f64) -> f64 {
        let n = n.min(self.size);
        if n <= 0.0 || self.tokens + 1e-9 >= n {
            0.0
        } else {
            (n - self.tokens) / self.rate
        }
    }

    fn take(&mut self, n: f64, now: Instant) {
        if n <= 0.0 {
            return;
        }
        self.tokens = (self.tokens - n.min(self.size)).max(0.0);
        self.mirror -= n;
        self.log.push_back((now, n));
        self.accepted += n;
    }

    /// Units that Graph did not count after all (refused, or cheaper than estimated).
    fn give_back(&mut self, n: f64) {
        let mut left = n;
        while left > 0.0 {
            let Some(last) = self.log.back_mut() else {
                break;
            };
            let k = last.1.min(left);
            last.1 -= k;
            left -= k;
            if last.1 <= 0.0 {
                self.log.pop_back();
            }
        }
        self.accepted = (self.accepted - (n - left)).max(0.0);
        self.mirror = (self.mirror + n).min(self.doc_size);
    }

    /// Units granted after `t` (requests still in flight when a response sent at `t` came).
    fn granted_since(&self, t: Instant) -> f64 {
        self.log
            .iter()
            .rev()
            .take_while(|(g, _)| *g > t)
            .map(|(_, k)| k)
            .sum()
    }

    fn hold(&mut self, until: Instant) {
        let quiet = Duration::from_secs_f64(self.window * QUIET);
        self.hold_until = self.hold_until.max(until + quiet);
    }

    /// A decrease may follow from a request sent after the last one: the responses to
    /// requests sent before it still describe the old rate.
    fn may_decrease(&self, sent_at: Instant) -> bool {
        self.last_decrease.is_none_or(|d| sent_at >= d)
    }

    /// A 429 on this budget: Graph's bucket is empty.
    fn throttled(&mut self, now: Instant, refused: f64, sent_at: Instant, pause_end: Instant) {
        self.advance(now);
        self.give_back(refused);
        self.tokens = 0.0;
        self.hold(pause_end);
        if self.may_decrease(sent_at) {
            let accepted_rate = self.accepted / self.window;
            self.rate = (self.rate.min(accepted_rate) * BACKOFF).max(self.floor_rate());
            self.size = (self.size.min(self.accepted * HEADROOM)).max(self.min_size);
            self.last_decrease = Some(now);
            self.base_percentage = 1.0;
        }
    }

    /// Graph said how full its bucket is (`p`, share of the limit used).
    fn usage(&mut self, now: Instant, p: f64, sent_at: Instant) {
        self.advance(now);
        self.hold(now);
        let expected = 1.0 - self.mirror / self.doc_size;
        if p > expected + UNEXPLAINED
            && p > self.base_percentage + RISE
            && self.may_decrease(sent_at)
        {
            // What we got through in the window is `p` of Graph's real limit.
            let limit = self.accepted / p.max(0.05);
            self.rate = (self.rate * SOFT_BACKOFF)
                .min(limit / self.window * HEADROOM)
                .max(self.floor_rate());
            self.size = (self.size.min(limit * HEADROOM)).max(self.min_size);
            self.last_decrease = Some(now);
            self.base_percentage = p;
        } else {
            self.base_percentage = self.base_percentage.min(p);
        }
        // Never hold more than Graph has left, less what is already on its way.
        let left = (1.0 - p).max(0.0) * self.size - self.granted_since(sent_at);
        self.tokens = self.tokens.min(left.max(0.0));
    }

    /// A response without a limit percentage: Graph's bucket is less than 80 % used.
    fn calm(&mut self) {
        self.base_percentage = self.base_percentage.min(0.8);
    }
}

#[derive(Debug)]
struct State {
    writes: Aimd,
    units: Aimd,
    /// No request may start before this instant (the latest Retry-After).
    paused_until: Option<Instant>,
    in_flight: u64,
}

/// The gate every Graph request of a client passes (see the module doc).
#[derive(Debug)]
pub struct Throttle {
    state: Mutex<State>,
}

/// A granted request: counts as in flight until dropped (when its response has come).
#[derive(Debug)]
pub struct Admission<'a> {
    throttle: &'a Throttle,
    /// When the gate let it go.
    pub sent_at: Instant,
    /// What it was charged.
    pub cost: Cost,
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut s = self.throttle.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// Smallest bucket of writes: one full `$batch`.
const MIN_WRITE_BUCKET: f64 = 20.0;
/// Smallest bucket of resource units: a `$batch` of the costliest reads.
const MIN_UNIT_BUCKET: f64 = 100.0;

impl Throttle {
    /// A gate for the given documented budgets.
    pub fn new(writes: WriteBudget, units: ResourceUnitBudget) -> Self {
        let now = Instant::now();
        Throttle {
            state: Mutex::new(State {
                writes: Aimd::new(writes.writes, writes.window, MIN_WRITE_BUCKET, now),
                units: Aimd::new(units.units, units.window, MIN_UNIT_BUCKET, now),
                paused_until: None,
                in_flight: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update of numbers; they
        // stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Grants `cost` now, or says how long to wait (a pause, or tokens to refill).
    pub fn try_admit(&self, cost: Cost, now: Instant) -> Result<Admission<'_>, Duration> {
        let mut s = self.lock();
        if let Some(p) = s.paused_until {
            if p > now {
                return Err(p - now);
            }
            s.paused_until = None;
        }
        s.writes.advance(now);
        s.units.advance(now);
        let w = f64::from(cost.writes);
        let u = f64::from(cost.resource_units);
        let wait = s.writes.wait_for(w).max(s.units.wait_for(u));
        if wait > 0.0 {
            return Err(Duration::from_secs_f64(wait).max(Duration::from_micros(100)));
        }
        s.writes.take(w, now);
        s.units.take(u, now);
        s.in_flight += 1;
        drop(s);
        Ok(Admission {
            throttle: self,
            sent_at: now,
            cost,
        })
    }

    /// Waits until `cost` may go, unless `stop` comes first (then nothing is charged).
    pub async fn admit(
        &self,
        cost: Cost,
        stop: &super::http::Stop,
    ) -> Result<Admission<'_>, super::GraphError> {
        loop {
            if stop.is_stopped() {
                return Err(super::GraphError::Stopped);
            }
            let wait = match self.try_admit(cost, Instant::now()) {
                Ok(a) => return Ok(a),
                Err(w) => w,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.stopped() => return Err(super::GraphError::Stopped),
            }
        }
    }

    /// A 429 on `limit`: pause everyone for `retry_after`, and slow down. `refused` is what
    /// Graph did not count, `sent_at` when the refused request went. Returns how many other
    /// requests were in flight (they may reach Graph inside the pause).
    pub fn on_throttled(
        &self,
        limit: Limit,
        retry_after: Duration,
        refused: Cost,
        sent_at: Instant,
        now: Instant,
    ) -> u64 {
        let mut s = self.lock();
        let until = now + retry_after;
        let until = s.paused_until.map_or(until, |p| p.max(until));
        s.paused_until = Some(until);
        let (w, u) = (f64::from(refused.writes), f64::from(refused.resource_units));
        match limit {
            Limit::Writes => {
                s.writes.throttled(now, w, sent_at, until);
                s.units.give_back(u);
            }
            Limit::ResourceUnits => {
                s.units.throttled(now, u, sent_at, until);
                s.writes.give_back(w);
            }
        }
        s.in_flight
    }

    /// `x-ms-throttle-limit-percentage` (or its absence) on a response to a request sent
    /// at `sent_at`.
    pub fn on_usage(&self, limit: Limit, percentage: Option<f64>, sent_at: Instant, now: Instant) {
        let mut s = self.lock();
        let b = match limit {
            Limit::Writes => &mut s.writes,
            Limit::ResourceUnits => &mut s.units,
        };
        match percentage {
            Some(p) => b.usage(now, p, sent_at),
            None => b.calm(),
        }
    }

    /// `x-ms-resource-unit`: a request estimated at `estimated` units really cost `actual`.
    pub fn on_resource_units(&self, estimated: u32, actual: u32) {
        let mut s = self.lock();
        let diff = f64::from(estimated) - f64::from(actual);
        if diff > 0.0 {
            s.units.give_back(diff);
        } else if diff < 0.0 {
            let now = s.units.last;
            s.units.take(-diff, now);
        }
    }

    /// Raises the documented resource-unit quota to the size class of a tenant of `users`
    /// users (per window as configured, so a time-scaled window stays scaled). A quota
    /// already higher is kept; so is a rate cut by throttling.
    pub fn set_tenant_users(&self, users: usize) {
        let units = f64::from(ResourceUnitBudget::for_tenant_users(users).units);
        let mut s = self.lock();
        let now = Instant::now();
        s.units.advance(now);
        let old = &s.units;
        if units <= old.doc_size {
            return;
        }
        let window = Duration::from_secs_f64(old.window);
        let mut new = Aimd::new(units as u32, window, MIN_UNIT_BUCKET, now);
        new.tokens = old.tokens;
        if old.last_decrease.is_some() {
            new.rate = old.rate;
            new.size = old.size;
            new.last_decrease = old.last_decrease;
            new.base_percentage = old.base_percentage;
        }
        new.hold_until = old.hold_until;
        new.log = old.log.clone();
        new.accepted = old.accepted;
        s.units = new;
    }

    /// The instant before which nothing may be sent, while a pause is in force.
    pub fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|p| *p > Instant::now())
    }

    /// Current write rate (writes per second) the gate allows.
    pub fn write_rate(&self) -> f64 {
        self.lock().writes.rate
    }

    /// Current write bucket size.
    pub fn write_bucket(&self) -> f64 {
        self.lock().writes.size
    }

    /// Current resource-unit rate (units per second).
    pub fn resource_unit_rate(&self) -> f64 {
        self.lock().units.rate
    }

    /// How many writes one `$batch` should hold now: 20 at the documented rate, fewer in
    /// proportion when the rate is cut, so that a batch never costs more than a second or
    /// so of the budget (an overdrawn batch turns each of its writes into a 429).
    pub fn write_batch_limit(&self) -> usize {
        let s = self.lock();
        let share = s.writes.rate / s.writes.ceil_rate();
        (MAX_BATCH * share).ceil().clamp(1.0, MAX_BATCH) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_budgets() {
        let b = WriteBudget::parse("3000/1.5").unwrap();
        assert_eq!(b.writes, 3000);
        assert_eq!(b.window, Duration::from_millis(1500));
        assert!(WriteBudget::parse("0/5").is_none());
        assert!(WriteBudget::parse("x").is_none());
        assert_eq!(
            WriteBudget::default().time_scaled(100.0).window,
            Duration::from_millis(1500)
        );
        assert_eq!(ResourceUnitBudget::parse("8000/10s").unwrap().units, 8000);
        assert_eq!(ResourceUnitBudget::for_tenant_users(49).units, 3500);
        assert_eq!(ResourceUnitBudget::for_tenant_users(50).units, 5000);
        assert_eq!(ResourceUnitBudget::for_tenant_users(501).units, 8000);
    }

    #[test]
    fn documented_costs() {
        let ru = |m, u| request_cost(m, u).resource_units;
        assert_eq!(ru("GET", "/users"), 2);
        assert_eq!(ru("GET", "/users?$select=id,mail&$top=999"), 1);
        assert_eq!(ru("GET", "/users/abc?$select=id"), 1);
        assert_eq!(ru("GET", "/groups/g/members"), 3);
        assert_eq!(ru("GET", "/groups/g/transitiveMembers?$top=5"), 4);
        assert_eq!(ru("GET", "/subscribedSkus?$expand=x"), 4);
        assert_eq!(ru("GET", "/domains"), 1);
        assert_eq!(ru("GET", "/domains?$select=id"), 1, "never below 1");
        assert_eq!(
            ru(
                "GET",
                "https://graph.microsoft.com/v1.0/users?$skiptoken=x&%24select=id"
            ),
            1
        );
        assert_eq!(
            request_cost("POST", "/directoryObjects/getByIds"),
            Cost {
                writes: 0,
                resource_units: 5
            }
        );
        assert_eq!(
            request_cost("PATCH", "/users/u"),
            Cost {
                writes: 1,
                resource_units: 1
            }
        );
    }

    #[test]
    fn reads_throttle_headers() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            ThrottleHeaders::from_headers(move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let t = h(&[
            ("x-ms-throttle-limit-percentage", "0.92"),
            ("x-ms-resource-unit", "3"),
            (
                "x-ms-throttle-scope",
                "Tenant_Application/Write/9a3d526c/0785ef7c",
            ),
        ]);
        assert_eq!(t.limit_percentage, Some(0.92));
        assert_eq!(t.resource_units, Some(3));
        assert_eq!(t.limit, Some(Limit::Writes));
        let t = h(&[("x-ms-throttle-information", "ResourceUnitLimitExceeded")]);
        assert_eq!(t.limit, Some(Limit::ResourceUnits));
        let t = h(&[("x-ms-throttle-scope", "Tenant_Application/ReadWrite/a/b")]);
        assert_eq!(t.limit, Some(Limit::ResourceUnits));
        assert_eq!(h(&[]), ThrottleHeaders::default());
    }

    fn write(n: u32) -> Cost {
        Cost {
            writes: n,
            resource_units: n,
        }
    }

    #[test]
    fn a_429_pauses_every_request_until_retry_after() {
        let t = Throttle::new(WriteBudget::default(), ResourceUnitBudget::default());
        let now = Instant::now();
        let a = t.try_admit(write(20), now).unwrap();
        let sent = a.sent_at;
        drop(a);
        let in_flight = t.on_throttled(Limit::Writes, Duration::from_secs(3), write(20), sent, now);
        assert_eq!(in_flight, 0);
        // A read waits too: the budget is the app's, not the request's.
        let read = request_cost("GET", "/users?$select=id");
        let wait = t.try_admit(read, now + Duration::from_secs(1)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        assert!(t.try_admit(read, now + Duration::from_secs(3)).is_ok());
        // A shorter Retry-After never shortens a pause in force.
        t.on_throttled(
            Limit::ResourceUnits,
            Duration::from_secs(5),
            read,
            now,
            now + Duration::from_secs(3),
        );
        t.on_throttled(
            Limit::ResourceUnits,
            Duration::from_secs(1),
            read,
            now,
            now + Duration::from_secs(3),
        );
        assert_eq!(
            t.try_admit(read, now + Duration::from_secs(4)).unwrap_err(),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn in_flight_requests_are_counted_until_their_response() {
        let t = Throttle::new(WriteBudget::default(), ResourceUnitBudget::default());
        let now = Instant::now();
        let a = t.try_admit(write(1), now).unwrap();
        let b = t.try_admit(write(1), now).unwrap();
        drop(a);
        assert_eq!(
            t.on_throttled(Limit::Writes, Duration::ZERO, write(1), b.sent_at, now),
            1
        );
        drop(b);
        assert_eq!(
            t.on_throttled(Limit::Writes, Duration::ZERO, write(1), now, now),
            0
        );
    }

    /// Graph's write bucket on a simulated clock, as the emulator models it.
    struct Server {
        size: f64,
        rate: f64,
        tokens: f64,
        last: f64,
        accepted: u64,
        refused: u64,
    }

    impl Server {
        fn new(size: f64, rate: f64) -> Self {
            Server {
                size,
                rate,
                tokens: size,
                last: 0.0,
                accepted: 0,
                refused: 0,
            }
        }
        /// Charges `n` writes at time `t`: (accepted, usage after, retry-after of the first
        /// refused write).
        fn charge(&mut self, n: u32, t: f64) -> (u32, f64, f64) {
            self.tokens = (self.tokens + (t - self.last) * self.rate).min(self.size);
            self.last = t;
            let mut ok = 0;
            for _ in 0..n {
                if self.tokens >= 1.0 {
                    self.tokens -= 1.0;
                    ok += 1;
                }
            }
            self.accepted += u64::from(ok);
            self.refused += u64::from(n - ok);
            let ra = (1.0 - self.tokens).max(0.0) / self.rate;
            (ok, 1.0 - self.tokens / self.size, ra)
        }
    }

    /// Runs `total` writes through the gate against `server` with batches answered after
    /// `latency` seconds and up to `in_flight` batches at once (like apply), refused
    /// writes sent again. Returns the seconds it took.
    fn simulate(server: &mut Server, total: u64, in_flight: usize, latency: f64) -> f64 {
        let t = Throttle::new(WriteBudget::default(), ResourceUnitBudget::default());
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut now = 0.0f64;
        let mut left = total;
        // (answer time, sent at, writes)
        let mut flying: Vec<(f64, Instant, u32)> = Vec::new();
        let mut done = 0u64;
        while done < total {
            flying.sort_by(|a, b| a.0.total_cmp(&b.0));
            // Answers due now.
            while flying.first().is_some_and(|f| f.0 <= now) {
                let (_, sent, n) = flying.remove(0);
                let sent_secs = sent.duration_since(t0).as_secs_f64();
                let (ok, usage, ra) = server.charge(n, sent_secs + latency / 2.0);
                done += u64::from(ok);
                left += u64::from(n - ok);
                if ok < n {
                    t.on_throttled(
                        Limit::Writes,
                        Duration::from_secs_f64(ra + latency / 2.0),
                        write(n - ok),
                        sent,
                        at(now),
                    );
                }
                let p = (usage > 0.8).then_some(usage);
                t.on_usage(Limit::Writes, p, sent, at(now));
            }
            if left > 0 && flying.len() < in_flight {
                let n = (t.write_batch_limit() as u64).min(left) as u32;
                match t.try_admit(write(n), at(now)) {
                    Ok(a) => {
                        flying.push((now + latency, a.sent_at, n));
                        left -= u64::from(n);
                        continue;
                    }
                    Err(w) => {
                        let next = flying.first().map_or(f64::MAX, |f| f.0);
                        now = (now + w.as_secs_f64()).min(next);
                        continue;
                    }
                }
            }
            now = flying.first().map_or(now + 0.001, |f| f.0.max(now));
        }
        now
    }

    #[test]
    fn documented_budget_runs_at_the_allowed_rate_without_429() {
        let mut server = Server::new(3000.0, 20.0);
        let secs = simulate(&mut server, 10_000, 4, 0.05);
        assert_eq!(server.refused, 0);
        // The initial bucket plus the refill: 10,000 writes in (10,000 - 3,000) / 20 s at best.
        let best = 7000.0 / 20.0;
        assert!(secs < best * 1.1, "{secs} s, best {best} s");
    }

    #[test]
    fn a_tenth_of_the_budget_converges_with_few_429s() {
        // Bucket and rate both a tenth of the documented ones.
        let mut server = Server::new(300.0, 2.0);
        let secs = simulate(&mut server, 3000, 4, 0.05);
        let refused = server.refused;
        assert!(refused * 100 < 3000, "{refused} refused writes");
        let best = 2700.0 / 2.0;
        assert!(secs < best / 0.9, "{secs} s for {best} s of budget");
    }

    #[test]
    fn a_smaller_bucket_at_the_documented_rate_recovers_the_rate() {
        // 300 writes per 15 s: the documented rate with a tenth of the burst.
        let mut server = Server::new(300.0, 20.0);
        let secs = simulate(&mut server, 10_000, 4, 0.05);
        assert!(server.refused * 100 < 10_000, "{} refused", server.refused);
        let best = 9700.0 / 20.0;
        assert!(secs < best / 0.85, "{secs} s for {best} s of budget");
    }

    #[test]
    fn additive_increase_never_passes_the_documented_budget() {
        let t = Throttle::new(
            WriteBudget {
                writes: 100,
                window: Duration::from_secs(10),
            },
            ResourceUnitBudget::default(),
        );
        let now = Instant::now();
        let a = t.try_admit(write(20), now).unwrap();
        let sent = a.sent_at;
        drop(a);
        t.on_throttled(Limit::Writes, Duration::ZERO, Cost::default(), sent, now);
        let low = t.write_rate();
        assert!(low < 9.6 * BACKOFF, "{low}");
        // A minute later with no signal: back to 96 % of 10/s, not above.
        let later = now + Duration::from_secs(60);
        let _ = t.try_admit(write(1), later);
        assert!((t.write_rate() - 9.6).abs() < 1e-9, "{}", t.write_rate());
        assert!((t.write_bucket() - 96.0).abs() < 1e-9);
    }

    #[test]
    fn tenant_size_raises_the_resource_unit_quota_only() {
        let t = Throttle::new(WriteBudget::default(), ResourceUnitBudget::default());
        assert!((t.resource_unit_rate() - 336.0).abs() < 1e-9);
        t.set_tenant_users(10_000);
        assert!((t.resource_unit_rate() - 768.0).abs() < 1e-9);
        t.set_tenant_users(10);
        assert!((t.resource_unit_rate() - 768.0).abs() < 1e-9);
    }
}
