//! Fault injection decisions (random errors, latency, dropped connections, pages that end a
//! read early). Replication lag is applied where objects are read (graph.rs); these are the
//! per-request dice.

use crate::config::FaultConfig;
use crate::errors::GraphError;
use crate::graph::{Body, GraphRequest, GraphResponse, JSON_CONTENT_TYPE};
use crate::stats::FaultStats;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// The fault RNG and its configuration.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Configuration in force.
    pub config: FaultConfig,
    rng: StdRng,
    /// `$skiptoken`s of next links handed out broken.
    broken_links: HashSet<String>,
}

/// The `$skiptoken` of a request.
fn skiptoken(req: &GraphRequest) -> Option<&str> {
    req.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(_, v)| v.as_str())
}

/// The `$skiptoken` of a next link URL.
fn link_skiptoken(link: &str) -> Option<String> {
    let (_, query) = link.split_once('?')?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(_, v)| v.into_owned())
}

fn is_delta(req: &GraphRequest) -> bool {
    req.path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|s| s.starts_with("delta") || s.starts_with("microsoft.graph.delta"))
}

impl Faults {
    /// New dice, seeded from the configuration when it names a seed.
    pub fn new(config: FaultConfig) -> Self {
        let rng = match config.rng_seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Faults {
            config,
            rng,
            broken_links: HashSet::new(),
        }
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

    /// The 500 a request to a broken next link gets, every time.
    pub fn broken_link(&self, req: &GraphRequest, stats: &mut FaultStats) -> Option<GraphError> {
        let token = skiptoken(req)?;
        if !self.broken_links.contains(token) {
            return None;
        }
        stats.broken_link_requests += 1;
        Some(GraphError::new(
            500,
            "generalException",
            "General exception while processing.",
        ))
    }

    /// Spoils a successful collection page as configured: a delta page loses both links, a
    /// continuation page loses `value`, a next link is handed out broken. Applies to outer and
    /// `$batch` inner requests alike.
    pub fn mangle_page(
        &mut self,
        req: &GraphRequest,
        resp: &mut GraphResponse,
        stats: &mut FaultStats,
    ) {
        if req.method != "GET" || resp.status != 200 {
            return;
        }
        let Body::Json(Value::Object(page)) = &mut resp.body else {
            return;
        };
        if !page.contains_key("value") {
            return;
        }
        let has_link =
            page.contains_key("@odata.nextLink") || page.contains_key("@odata.deltaLink");
        if is_delta(req) && has_link && self.roll(self.config.truncated_delta_rate) {
            page.remove("@odata.nextLink");
            page.remove("@odata.deltaLink");
            stats.truncated_delta_pages += 1;
        }
        if skiptoken(req).is_some() && self.roll(self.config.page_without_value_rate) {
            page.remove("value");
            stats.pages_without_value += 1;
        }
        if let Some(token) = page
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .and_then(link_skiptoken)
            && self.roll(self.config.broken_next_link_rate)
        {
            self.broken_links.insert(token);
            stats.broken_next_links += 1;
        }
    }

    /// A continuation page (outside `$batch`) answered 200 with the first half of its JSON.
    pub fn garble_page(
        &mut self,
        req: &GraphRequest,
        resp: GraphResponse,
        stats: &mut FaultStats,
    ) -> GraphResponse {
        if req.method != "GET" || resp.status != 200 || skiptoken(req).is_none() {
            return resp;
        }
        let Body::Json(v) = &resp.body else {
            return resp;
        };
        if !self.roll(self.config.non_json_page_rate) {
            return resp;
        }
        stats.non_json_pages += 1;
        let text = v.to_string();
        let cut = text.len() / 2;
        let half = text
            .char_indices()
            .map(|(i, _)| i)
            .take_while(|i| *i <= cut)
            .last()
            .unwrap_or(0);
        let mut headers = resp.headers;
        headers.push(("Content-Type".into(), JSON_CONTENT_TYPE.into()));
        GraphResponse {
            status: 200,
            headers,
            body: Body::Text(text[..half].to_string()),
        }
    }
}
