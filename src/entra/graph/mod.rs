//! Microsoft Graph v1.0 client: auth, HTTP with retries, the throttle gate every request
//! passes (Retry-After pauses, adaptive write and resource-unit rates), `$batch`, the
//! snapshot reader and delta reads of it.
//!
//! Requests are built as data ([`GraphRequest`], [`batch::BatchItem`]) by pure functions and
//! sent by one [`GraphClient`], so request shapes are unit-testable and every request
//! passes the same retry, throttle and observer path.

pub mod auth;
pub mod batch;
pub mod delta;
pub mod error;
pub mod federation;
pub mod http;
pub mod organization;
pub mod read;
pub mod safety;
pub mod throttle;

pub use auth::{AuthConfig, Credential, Secret, TokenProvider};
pub use batch::{BatchItem, BatchItemResponse};
pub use delta::{DeltaLinks, TargetDeltaSummary, read_delta, read_full_with_links};
pub use error::GraphError;
pub use http::{GraphRequest, GraphResponse, ObservedRequest, RequestObserver, RetryMode, Stop};
pub use read::{ReadOptions, read_snapshot};
pub use throttle::{ResourceUnitBudget, Throttle, WriteBudget};

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// Public-cloud Graph v1.0.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";

/// Everything needed to build a [`GraphClient`].
#[derive(Debug)]
pub struct GraphConfig {
    /// Graph base URL including the version (`AD2ENTRA_GRAPH_URL`).
    pub base_url: String,
    pub auth: AuthConfig,
    /// Documented write budget the gate starts from and never exceeds
    /// (`AD2ENTRA_GRAPH_WRITE_BUDGET`, `WRITES/SECONDS`).
    pub write_budget: WriteBudget,
    /// Documented resource-unit budget (`AD2ENTRA_GRAPH_RU_BUDGET`, `UNITS/SECONDS`;
    /// default the smallest tenant's, raised by apply once the tenant's size is known).
    pub resource_unit_budget: ResourceUnitBudget,
    /// Whole-request timeout.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries per request for transient failures.
    pub max_retries: u32,
    /// First backoff step (doubles per attempt, with jitter).
    pub retry_base: Duration,
    /// `$batch` requests in flight at once during apply.
    pub max_in_flight: usize,
}

/// The `.default` scope for a Graph base URL: `https://{host}/.default` for https
/// (national clouds), Graph's public scope otherwise (a local emulator).
pub fn default_scope(base_url: &str) -> String {
    if let Some(rest) = base_url.strip_prefix("https://") {
        let host = rest.split('/').next().unwrap_or("graph.microsoft.com");
        format!("https://{host}/.default")
    } else {
        "https://graph.microsoft.com/.default".to_string()
    }
}

impl GraphConfig {
    /// Configuration from the environment: the Azure SDK variables (see [`auth`]),
    /// `AD2ENTRA_GRAPH_URL`, `AD2ENTRA_GRAPH_SCOPE`, `AD2ENTRA_GRAPH_WRITE_BUDGET` and
    /// `AD2ENTRA_GRAPH_RU_BUDGET`.
    pub fn from_env() -> Result<Self, GraphError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let base_url = get("AD2ENTRA_GRAPH_URL").unwrap_or_else(|| DEFAULT_GRAPH_URL.to_string());
        let scope = get("AD2ENTRA_GRAPH_SCOPE").unwrap_or_else(|| default_scope(&base_url));
        let auth = AuthConfig::from_lookup(scope, get)?;
        let mut cfg = Self::new(base_url, auth);
        if let Some(b) = get("AD2ENTRA_GRAPH_WRITE_BUDGET") {
            cfg.write_budget = WriteBudget::parse(&b).ok_or_else(|| {
                GraphError::Config(format!(
                    "AD2ENTRA_GRAPH_WRITE_BUDGET={b:?}: expected WRITES/SECONDS"
                ))
            })?;
        }
        if let Some(b) = get("AD2ENTRA_GRAPH_RU_BUDGET") {
            cfg.resource_unit_budget = ResourceUnitBudget::parse(&b).ok_or_else(|| {
                GraphError::Config(format!(
                    "AD2ENTRA_GRAPH_RU_BUDGET={b:?}: expected UNITS/SECONDS"
                ))
            })?;
        }
        Ok(cfg)
    }

    /// Defaults for everything but the URL and credentials.
    pub fn new(base_url: impl Into<String>, auth: AuthConfig) -> Self {
        GraphConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            auth,
            write_budget: WriteBudget::default(),
            resource_unit_budget: ResourceUnitBudget::default(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 8,
            retry_base: Duration::from_millis(500),
            max_in_flight: 4,
        }
    }
}

/// Counters over the client's life, for reports and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// HTTP requests sent to Graph (not the token endpoint); a `$batch` counts once.
    pub requests: AtomicU64,
    /// Writes sent (inner writes of batches included).
    pub writes: AtomicU64,
    /// 429s seen, outer and inner.
    pub throttled: AtomicU64,
    /// Other requests in flight when a 429 came, summed: only these may reach Graph
    /// before its Retry-After instant (the gate holds back everything else).
    pub throttled_in_flight: AtomicU64,
    /// Retries of whole requests.
    pub retries: AtomicU64,
    /// Timeouts, refused and dropped connections.
    pub transport_errors: AtomicU64,
    /// HTTP responses by class (outer responses; a `$batch` counts once).
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub requests: u64,
    pub writes: u64,
    pub throttled: u64,
    pub throttled_in_flight: u64,
    pub retries: u64,
    pub transport_errors: u64,
    pub responses_2xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
}

impl Stats {
    /// Reads all counters.
    pub fn snapshot(&self) -> StatsSnapshot {
        let o = std::sync::atomic::Ordering::Relaxed;
        StatsSnapshot {
            requests: self.requests.load(o),
            writes: self.writes.load(o),
            throttled: self.throttled.load(o),
            throttled_in_flight: self.throttled_in_flight.load(o),
            retries: self.retries.load(o),
            transport_errors: self.transport_errors.load(o),
            responses_2xx: self.responses_2xx.load(o),
            responses_4xx: self.responses_4xx.load(o),
            responses_5xx: self.responses_5xx.load(o),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) tokens: TokenProvider,
    pub(crate) throttle: Throttle,
    pub(crate) stats: Stats,
    pub(crate) observer: Option<RequestObserver>,
    pub(crate) max_retries: u32,
    pub(crate) retry_base: Duration,
    pub(crate) max_in_flight: usize,
}

/// The one Graph client: a pooled rustls HTTP client, a token cache, the throttle gate
/// and counters. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base_url", &self.inner.base_url)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// Builds the client (no network yet: the first request fetches a token).
    pub fn new(config: GraphConfig) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ad2entra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Config(format!("building HTTP client: {e}")))?;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                tokens: TokenProvider::new(http.clone(), config.auth),
                http,
                base_url: config.base_url.trim_end_matches('/').to_string(),
                throttle: Throttle::new(config.write_budget, config.resource_unit_budget),
                stats: Stats::default(),
                observer: None,
                max_retries: config.max_retries,
                retry_base: config.retry_base,
                max_in_flight: config.max_in_flight.max(1),
            }),
        })
    }

    /// The same client with `observer` called before every request attempt. Call it
    /// right after [`GraphClient::new`]; clones made earlier keep no observer.
    pub fn with_observer(self, observer: RequestObserver) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.observer = Some(observer);
                GraphClient {
                    inner: Arc::new(inner),
                }
            }
            Err(shared) => {
                tracing::warn!("observer not installed: GraphClient already shared");
                GraphClient { inner: shared }
            }
        }
    }

    /// The Graph base URL (`https://graph.microsoft.com/v1.0`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The app's client id (for `init` and the extension names).
    pub fn client_id(&self) -> &str {
        &self.inner.tokens.config().client_id
    }

    /// The tenant id from the credentials.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tokens.config().tenant_id
    }

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The throttle gate every request of this client passes.
    pub fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// `$batch` requests apply keeps in flight.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_cloud() {
        assert_eq!(
            default_scope("https://graph.microsoft.us/v1.0"),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            default_scope("http://127.0.0.1:4000/v1.0"),
            "https://graph.microsoft.com/.default"
        );
    }
}
