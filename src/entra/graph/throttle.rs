//! Client-side write limiter: stays under Graph's per-app write budget (3,000 writes per
//! 150 s for the app+tenant pair) so that a long apply runs at the allowed rate instead of
//! bouncing off 429s. Graph documents this limit as a token bucket (notes/01-throttling.md),
//! and the limiter is one too, a little smaller than the server's: it starts full and refills
//! continuously, so after the first bucketful writes go out evenly spread rather than in
//! window-sized bursts. After a 429 it pauses for Retry-After, empties its bucket (the
//! server's is empty) and shrinks its own budget to what evidently fits, so one 429 is not
//! followed by more.

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
    /// Writes that may go now.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
    /// Bucket size, and writes per window it refills (shrinks after a 429).
    limit: u32,
    /// (time, writes) of grants within the last window, oldest first (sizes the budget
    /// after a 429).
    log: VecDeque<(Instant, u32)>,
    in_window: u32,
    paused_until: Option<Instant>,
    throttled: u64,
}

/// Token bucket over write requests (each inner request of a `$batch` counts).
#[derive(Debug)]
pub struct WriteLimiter {
    window: Duration,
    state: Mutex<State>,
}

/// Share of the budget used, for bucket size and refill rate alike. The server counts a
/// write when it arrives, not when we grant it: with a bucket 4 % smaller than the server's,
/// grants may reach it up to window/24 late or bunched (6 s at 3,000/150 s) and still fit.
const HEADROOM: f64 = 0.96;

impl WriteLimiter {
    /// A limiter for `budget`, with a safety margin on bucket size and refill rate.
    pub fn new(budget: WriteBudget) -> Self {
        let limit = ((budget.writes as f64) * HEADROOM).floor().max(1.0) as u32;
        WriteLimiter {
            window: budget.window.max(Duration::from_micros(1)),
            state: Mutex::new(State {
                tokens: f64::from(limit),
                last: Instant::now(),
                limit,
                log: VecDeque::new(),
                in_window: 0,
                paused_until: None,
                throttled: 0,
            }),
        }
    }

    /// Current bucket size (writes per window).
    pub fn limit(&self) -> u32 {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another task panicked mid-update of counters;
        // the counters stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refills the bucket and forgets grants older than a window.
    fn advance(&self, s: &mut State, now: Instant) {
        let rate = f64::from(s.limit) / self.window.as_secs_f64();
        let elapsed = now.saturating_duration_since(s.last).as_secs_f64();
        s.tokens = (s.tokens + elapsed * rate).min(f64::from(s.limit));
        s.last = s.last.max(now);
        while let Some(&(t, k)) = s.log.front() {
            if now.saturating_duration_since(t) >= self.window {
                s.log.pop_front();
                s.in_window -= k;
            } else {
                break;
            }
        }
    }

    /// How long to wait before `n` writes may go (zero: granted and recorded now).
    fn try_acquire(&self, n: u32, now: Instant) -> Duration {
        let mut s = self.lock();
        self.advance(&mut s, now);
        if let Some(p) = s.paused_until {
            if p > now {
                return p - now;
            }
            s.paused_until = None;
        }
        let n = n.min(s.limit);
        // A hair of tolerance for float rounding of the refill.
        if s.tokens + 1e-9 >= f64::from(n) {
            s.tokens = (s.tokens - f64::from(n)).max(0.0);
            s.log.push_back((now, n));
            s.in_window += n;
            return Duration::ZERO;
        }
        let rate = f64::from(s.limit) / self.window.as_secs_f64();
        let wait = (f64::from(n) - s.tokens) / rate;
        Duration::from_secs_f64(wait).max(Duration::from_micros(100))
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

    /// Records a 429 on a write: pause everyone for `retry_after`, empty the bucket (the
    /// server's is empty) and shrink the budget to 90 % of what was sent in the last
    /// window, so that what follows stays under the server's real limit (which other apps
    /// may share).
    pub fn on_throttled(&self, retry_after: Duration, write: bool) {
        let mut s = self.lock();
        let now = Instant::now();
        self.advance(&mut s, now);
        s.throttled += 1;
        let until = now + retry_after;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        if write {
            let shrunk = ((s.in_window as f64) * 0.9).floor() as u32;
            s.limit = s.limit.min(shrunk.max(20)).max(1);
            s.tokens = 0.0;
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

    /// Grants of `n` writes on a simulated clock (advanced to when the limiter says).
    fn grants(l: &WriteLimiter, n: u32, count: usize) -> Vec<Instant> {
        let mut granted = Vec::new();
        let mut now = Instant::now();
        while granted.len() < count {
            let w = l.try_acquire(n, now);
            if w.is_zero() {
                granted.push(now);
            } else {
                now += w;
            }
        }
        granted
    }

    #[test]
    fn stays_inside_the_servers_token_bucket() {
        let budget = WriteBudget {
            writes: 100,
            window: Duration::from_secs(10),
        };
        let l = WriteLimiter::new(budget);
        assert_eq!(l.limit(), 96);
        let g = grants(&l, 20, 40);
        // In any span, at most a bucketful plus the refill: limit + limit/window · span.
        for i in 0..g.len() {
            for j in i..g.len() {
                let span = g[j].duration_since(g[i]).as_secs_f64();
                let sent = 20.0 * (j - i + 1) as f64;
                assert!(
                    sent <= 96.0 + 9.6 * span + 1e-6,
                    "grants {i}..={j}: {sent} in {span}s"
                );
            }
        }
        // The server's bucket (100, refilled 10/s, starting full) never runs dry, even when
        // grants reach it up to window/25 late, bunching them: the tight case is the first
        // bucketful arriving late while later grants arrive at once (without the 4 %
        // headroom it would be overdrawn).
        let t0 = g[0];
        let late = |k: usize| {
            if k < 5 || k.is_multiple_of(3) {
                0.4
            } else {
                0.0
            }
        };
        let mut arrivals: Vec<f64> = g
            .iter()
            .enumerate()
            .map(|(k, t)| t.duration_since(t0).as_secs_f64() + late(k))
            .collect();
        arrivals.sort_by(f64::total_cmp);
        let (mut tokens, mut last) = (100.0f64, 0.0f64);
        for a in arrivals {
            tokens = (tokens + (a - last) * 10.0).min(100.0);
            last = a;
            tokens -= 20.0;
            assert!(tokens >= -1e-6, "server bucket overdrawn at {a}s: {tokens}");
        }
    }

    #[test]
    fn spreads_writes_after_the_first_bucketful() {
        let l = WriteLimiter::new(WriteBudget::default().time_scaled(100.0));
        // 2,880 at once (the bucket), then one batch of 20 every 20/1,920 s, not
        // window-sized bursts: 11,000 writes take ~4.2 s, not 4.6+ s.
        let g = grants(&l, 20, 550);
        let t0 = g[0];
        let burst = g.iter().filter(|t| **t == t0).count();
        assert_eq!(burst, 144);
        let step = Duration::from_secs_f64(20.0 / 1920.0);
        for w in g[burst..].windows(2) {
            let gap = w[1].duration_since(w[0]);
            assert!(
                gap + Duration::from_micros(200) >= step
                    && gap <= step + Duration::from_micros(200),
                "{gap:?}"
            );
        }
        let total = g[549].duration_since(t0).as_secs_f64();
        assert!((4.1..4.3).contains(&total), "{total}");
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
        // After the pause the bucket refills from empty, not all at once.
        let later = Instant::now() + Duration::from_secs(3);
        assert!(l.try_acquire(200, later) > Duration::from_secs(1));
        assert!(l.try_acquire(100, later).is_zero());
    }
}
