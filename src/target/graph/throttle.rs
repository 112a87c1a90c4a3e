//! Client-side write limiter: stays under Graph's per-app write budget (3,000 writes per
//! 150 s for the app+tenant pair) so that a long apply runs at the allowed rate instead of
//! bouncing off 429s. After a 429 it pauses for Retry-After and shrinks its own budget to
//! what evidently fits, so one 429 is not followed by more.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A write budget: `writes` per sliding `window`.
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
        let (w, secs) = s.split_once('/')?;
        let writes: u32 = w.trim().parse().ok()?;
        let secs: f64 = secs.trim().trim_end_matches('s').parse().ok()?;
        if writes == 0 || !(secs > 0.0 && secs.is_finite()) {
            return None;
        }
        Some(WriteBudget {
            writes,
            window: Duration::from_secs_f64(secs),
        })
    }
}

#[derive(Debug)]
struct State {
    /// (time, writes) of recent grants, oldest first.
    log: VecDeque<(Instant, u32)>,
    in_window: u32,
    /// Writes allowed per window now (shrinks after a 429).
    limit: u32,
    paused_until: Option<Instant>,
    throttled: u64,
}

/// Sliding-window limiter over write requests (each inner request of a `$batch` counts).
#[derive(Debug)]
pub struct WriteLimiter {
    window: Duration,
    state: Mutex<State>,
}

/// Share of the budget used: server and client clocks count a request at slightly
/// different instants, so keep a margin.
const HEADROOM: f64 = 0.96;

impl WriteLimiter {
    /// A limiter for `budget`, with a small safety margin on count and window.
    pub fn new(budget: WriteBudget) -> Self {
        let limit = ((budget.writes as f64) * HEADROOM).floor().max(1.0) as u32;
        // Pad the window for request latency between our grant and the server's count.
        let pad = budget.window.mul_f64(0.02).max(Duration::from_millis(30));
        WriteLimiter {
            window: budget.window + pad,
            state: Mutex::new(State {
                log: VecDeque::new(),
                in_window: 0,
                limit,
                paused_until: None,
                throttled: 0,
            }),
        }
    }

    /// Current writes-per-window limit.
    pub fn limit(&self) -> u32 {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update of counters;
        // the counters stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long to wait before `n` writes may go (zero: granted and recorded now).
    fn try_acquire(&self, n: u32, now: Instant) -> Duration {
        let mut s = self.lock();
        while let Some(&(t, k)) = s.log.front() {
            if now.duration_since(t) >= self.window {
                s.log.pop_front();
                s.in_window -= k;
            } else {
                break;
            }
        }
        if let Some(p) = s.paused_until {
            if p > now {
                return p - now;
            }
            s.paused_until = None;
        }
        let n = n.min(s.limit);
        if s.in_window + n <= s.limit {
            s.log.push_back((now, n));
            s.in_window += n;
            return Duration::ZERO;
        }
        // Wait until enough old grants leave the window.
        let mut excess = s.in_window + n - s.limit;
        for &(t, k) in &s.log {
            if k >= excess {
                return (t + self.window).saturating_duration_since(now);
            }
            excess -= k;
        }
        self.window
    }

    /// Waits until `n` writes fit in the budget, then records them.
    pub async fn acquire(&self, n: u32) {
        if n == 0 {
            return;
        }
        loop {
            let wait = self.try_acquire(n, Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits while a Retry-After pause is in force (reads call this too).
    pub async fn wait_pause(&self) {
        loop {
            let until = self.lock().paused_until;
            match until {
                Some(p) if p > Instant::now() => tokio::time::sleep_until(p.into()).await,
                _ => return,
            }
        }
    }

    /// Records a 429 on a write: pause everyone for `retry_after` and shrink the budget
    /// to 90 % of what was sent in the window, so the next window stays under the
    /// server's real limit (which other apps may share).
    pub fn on_throttled(&self, retry_after: Duration, write: bool) {
        let mut s = self.lock();
        s.throttled += 1;
        let until = Instant::now() + retry_after;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        if write {
            let shrunk = ((s.in_window as f64) * 0.9).floor() as u32;
            s.limit = s.limit.min(shrunk.max(20)).max(1);
        }
    }

    /// 429s recorded so far.
    pub fn throttled(&self) -> u64 {
        self.lock().throttled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_budget() {
        let b = WriteBudget::parse("3000/1.5").unwrap();
        assert_eq!(b.writes, 3000);
        assert_eq!(b.window, Duration::from_millis(1500));
        assert!(WriteBudget::parse("0/5").is_none());
        assert!(WriteBudget::parse("x").is_none());
        assert_eq!(
            WriteBudget::default().time_scaled(100.0).window,
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn never_exceeds_budget_in_any_window() {
        let l = WriteLimiter::new(WriteBudget {
            writes: 100,
            window: Duration::from_secs(10),
        });
        let t0 = Instant::now();
        let mut granted = Vec::new();
        let mut now = t0;
        // Simulated clock: ask for 20 at a time, advance to when we are told.
        while granted.len() < 20 {
            let w = l.try_acquire(20, now);
            if w.is_zero() {
                granted.push(now);
            } else {
                now += w;
            }
        }
        let limit = l.limit();
        assert_eq!(limit, 96);
        for (i, t) in granted.iter().enumerate() {
            let in_win = granted[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(10))
                .count() as u32
                * 20;
            assert!(in_win <= 100, "window starting at grant {i} holds {in_win}");
        }
        // It also does not idle: 20 grants of 20 need about 4 windows, not 20.
        assert!(now.duration_since(t0) < Duration::from_secs(50));
    }

    #[test]
    fn throttle_pauses_and_shrinks() {
        let l = WriteLimiter::new(WriteBudget {
            writes: 1000,
            window: Duration::from_secs(10),
        });
        let now = Instant::now();
        assert!(l.try_acquire(500, now).is_zero());
        l.on_throttled(Duration::from_secs(2), true);
        assert_eq!(l.limit(), 450);
        assert!(l.try_acquire(1, Instant::now()) > Duration::from_secs(1));
        assert_eq!(l.throttled(), 1);
    }
}
