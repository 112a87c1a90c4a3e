//! Fault injection decisions (random errors, latency, dropped connections). Replication lag is
//! applied where objects are read (graph.rs); these are the per-request dice.

use crate::config::FaultConfig;
use crate::errors::GraphError;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Duration;

/// The fault RNG and its configuration.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Configuration in force.
    pub config: FaultConfig,
    rng: StdRng,
}

impl Faults {
    /// New dice, seeded from the configuration when it names a seed.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.rng_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Faults { config, rng }
    }

    fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random_bool(rate.clamp(0.0, 1.0))
    }

    /// Whether to close this connection before processing.
    pub fn drop_before(&mut self) -> bool {
        let r = self.config.drop_rate;
        self.roll(r)
    }

    /// Whether to close this connection after a committed write.
    pub fn drop_after_commit(&mut self) -> bool {
        let r = self.config.drop_after_commit_rate;
        self.roll(r)
    }

    /// Added latency for this request.
    pub fn latency(&mut self) -> Duration {
        let jitter = if self.config.latency_jitter_ms > 0 {
            self.rng.random_range(0..=self.config.latency_jitter_ms)
        } else {
            0
        };
        Duration::from_millis(self.config.latency_ms + jitter)
    }

    /// A random 500 or 503 Graph error, or nothing.
    pub fn server_error(&mut self) -> Option<GraphError> {
        let r = self.config.error_rate;
        if !self.roll(r) {
            return None;
        }
        Some(if self.rng.random_bool(0.5) {
            GraphError::new(
                500,
                "generalException",
                "General exception while processing.",
            )
        } else {
            GraphError::new(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
            .with_header("Retry-After", "1")
        })
    }
}
