//! Sending one Graph request: token, the throttle gate, retries with exponential backoff
//! and jitter, Retry-After, the caller's stop (deadline or cancellation), and the request
//! observer tests use to check conformance.

use super::GraphClient;
use super::error::{GraphError, is_transient_status, parse_error_body};
use super::throttle::{Cost, Limit, ThrottleHeaders, request_cost};
use crate::secrets::redacted_body;
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// When a caller stops: a deadline, a cancellation, or neither. Requests not yet sent
/// when it comes are not sent ([`GraphError::Stopped`]); requests in flight finish.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    pub deadline: Option<tokio::time::Instant>,
    pub cancel: Option<tokio_util::sync::CancellationToken>,
}

impl Stop {
    /// True once the deadline has passed or the token is cancelled.
    pub fn is_stopped(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
            || self
                .deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
    }

    /// Completes when the stop comes (never, without deadline and token).
    pub async fn stopped(&self) {
        let deadline = async {
            match self.deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cancel = async {
            match &self.cancel {
                Some(c) => c.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = deadline => {}
            _ = cancel => {}
        }
    }
}

/// What a request may be retried on, because of what a retry could do twice. A 429 is
/// always waited out and sent again (Graph did not execute it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryMode {
    /// GET, PATCH, DELETE: retry on transport errors, 5xx and 429.
    Idempotent,
    /// POST that creates or a `$batch` holding one: retry only on 429 (the request was
    /// not executed); any other failure's outcome is unknown and goes to the caller.
    ThrottleOnly,
}

/// One request to Graph, as data (built by pure functions, sent by [`GraphClient::execute`]).
/// `Debug` masks the secrets in the body (a new user's initial password).
#[derive(Clone, PartialEq)]
pub struct GraphRequest {
    pub method: Method,
    /// Relative to the Graph base URL (`/users?$top=999`), or an absolute
    /// `@odata.nextLink` Graph returned.
    pub path: String,
    pub body: Option<Value>,
    /// Extra headers (`ConsistencyLevel: eventual`).
    pub headers: Vec<(String, String)>,
    /// Writes this request costs against the budget (inner writes for a `$batch`).
    pub writes: u32,
    /// Resource units it costs by Graph's documented table (inner requests' sum for a
    /// `$batch`).
    pub resource_units: u32,
}

impl std::fmt::Debug for GraphRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &redacted_body(&self.body))
            .field("headers", &self.headers)
            .field("writes", &self.writes)
            .field("resource_units", &self.resource_units)
            .finish()
    }
}

impl GraphRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        let path = path.into();
        GraphRequest {
            method: Method::GET,
            resource_units: request_cost("GET", &path).resource_units,
            path,
            body: None,
            headers: Vec::new(),
            writes: 0,
        }
    }

    /// A write (`POST`, `PATCH`, `DELETE`) of `path`, costing one write.
    pub fn write(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        let path = path.into();
        let cost = request_cost(method.as_str(), &path);
        GraphRequest {
            method,
            path,
            body,
            headers: Vec::new(),
            writes: cost.writes,
            resource_units: cost.resource_units,
        }
    }

    /// What it costs against the budgets.
    pub fn cost(&self) -> Cost {
        Cost {
            writes: self.writes,
            resource_units: self.resource_units,
        }
    }
}

/// A 2xx answer.
#[derive(Clone, Debug)]
pub struct GraphResponse {
    pub status: u16,
    /// `Value::Null` for 204 and empty bodies.
    pub body: Value,
    /// When the throttle gate let the answered attempt go (throttling signals in the
    /// answer are about requests sent up to then).
    pub sent_at: Instant,
}

/// What the observer sees of each attempt (no headers: the token stays out; `Debug`
/// masks the secrets in the body).
#[derive(Clone)]
pub struct ObservedRequest {
    pub method: String,
    /// Path and query relative to the Graph base URL, e.g. `/users?$top=999`.
    pub path: String,
    pub body: Option<Value>,
}

impl std::fmt::Debug for ObservedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body", &redacted_body(&self.body))
            .finish()
    }
}

/// A hook called before every attempt, so tests can check each request against the
/// OpenAPI description and count them.
pub type RequestObserver = std::sync::Arc<dyn Fn(&ObservedRequest) + Send + Sync>;

/// Exponential backoff with full jitter: uniform in [base·2^(attempt-1)/2, base·2^(attempt-1)],
/// capped at 30 s.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(10));
    let cap = exp.min(Duration::from_secs(30));
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    cap.mul_f64(jitter)
}

/// Retry-After from headers: `Retry-After-Ms` (milliseconds) when present, else
/// `Retry-After` in (possibly fractional) seconds or as an HTTP date.
pub fn retry_after_from(get: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = get("retry-after")?;
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(3600.0)));
        }
        return None;
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// A transport error described without the URL's query (which could hold anything).
pub fn describe_reqwest_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the body"
    } else if e.is_request() {
        "request error"
    } else {
        "error"
    };
    let mut src = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Percent-encodes an OData query value (`$filter=onPremisesImmutableId eq 'a+b=='`).
/// Keeps `$ , ( ) = /` readable, which Graph accepts unencoded.
pub fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'('
            | b')'
            | b'/'
            | b':'
            | b'@' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `path?k=v&…` with encoded values.
pub fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_query_value(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

impl GraphClient {
    fn absolute(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.inner.base_url, path)
        }
    }

    fn relative<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(self.inner.base_url.as_str())
            .unwrap_or(path)
    }

    /// Sends `req`, retrying per `mode`; returns the 2xx response or the last error.
    pub async fn execute(
        &self,
        req: &GraphRequest,
        mode: RetryMode,
    ) -> Result<GraphResponse, GraphError> {
        self.execute_until(req, mode, &Stop::default()).await
    }

    /// [`GraphClient::execute`] that sends nothing once `stop` has come
    /// ([`GraphError::Stopped`]). Every attempt passes the throttle gate; a 429 is waited
    /// out there (its Retry-After pauses the whole client) and never counts against
    /// `max_retries`, which only real failures use up.
    pub async fn execute_until(
        &self,
        req: &GraphRequest,
        mode: RetryMode,
        stop: &Stop,
    ) -> Result<GraphResponse, GraphError> {
        let inner = &self.inner;
        let cost = req.cost();
        let mut failures = 0u32;
        let mut throttles = 0u32;
        let mut reauthed = false;
        loop {
            let token = inner.tokens.token().await?;
            let admission = inner.throttle.admit(cost, stop).await?;
            let sent_at = admission.sent_at;
            let (result, headers) = self.send_once(req, token.expose()).await;
            drop(admission);
            let err = match result {
                Ok(mut r) => {
                    r.sent_at = sent_at;
                    self.observe_throttle_headers(req, &headers, sent_at);
                    return Ok(r);
                }
                Err(e) => e,
            };
            match &err {
                GraphError::Api {
                    status: 429,
                    retry_after,
                    ..
                } => {
                    throttles += 1;
                    let ra = retry_after.unwrap_or_else(|| backoff(throttles, inner.retry_base));
                    let limit = headers.limit.unwrap_or(if req.writes > 0 {
                        Limit::Writes
                    } else {
                        Limit::ResourceUnits
                    });
                    self.record_throttled(limit, ra, cost, sent_at);
                    self.stats().retries.fetch_add(1, ORD);
                    tracing::debug!(method = %req.method, path = self.relative(&req.path), ?ra, "throttled; waiting out Retry-After");
                    continue;
                }
                GraphError::Api { status: 401, .. } if !reauthed => {
                    reauthed = true;
                    inner.tokens.invalidate().await;
                    continue;
                }
                _ => {}
            }
            failures += 1;
            let retryable = mode == RetryMode::Idempotent && err.is_transient();
            if !retryable || failures > inner.max_retries {
                return Err(err);
            }
            self.stats().retries.fetch_add(1, ORD);
            let wait = match &err {
                GraphError::Api {
                    retry_after: Some(ra),
                    ..
                } => *ra,
                _ => backoff(failures, inner.retry_base),
            };
            tracing::debug!(method = %req.method, path = self.relative(&req.path), attempt = failures, ?wait, error = %err, "retrying graph request");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.stopped() => return Err(GraphError::Stopped),
            }
        }
    }

    /// Tells the gate about a 429 and counts it (and the requests it caught in flight).
    pub(crate) fn record_throttled(
        &self,
        limit: Limit,
        retry_after: Duration,
        refused: Cost,
        sent_at: Instant,
    ) {
        let in_flight =
            self.inner
                .throttle
                .on_throttled(limit, retry_after, refused, sent_at, Instant::now());
        self.stats().throttled.fetch_add(1, ORD);
        self.stats().throttled_in_flight.fetch_add(in_flight, ORD);
    }

    /// `x-ms-throttle-limit-percentage` and `x-ms-resource-unit` of a single request's
    /// answer (a `$batch` is read per inner response instead).
    fn observe_throttle_headers(&self, req: &GraphRequest, h: &ThrottleHeaders, sent_at: Instant) {
        if req.path.ends_with("/$batch") {
            return;
        }
        let limit = if req.writes > 0 {
            Limit::Writes
        } else {
            Limit::ResourceUnits
        };
        let gate = &self.inner.throttle;
        gate.on_usage(limit, h.limit_percentage, sent_at, Instant::now());
        if let Some(actual) = h.resource_units {
            gate.on_resource_units(req.resource_units, actual);
        }
    }

    async fn send_once(
        &self,
        req: &GraphRequest,
        token: &str,
    ) -> (Result<GraphResponse, GraphError>, ThrottleHeaders) {
        let inner = &self.inner;
        let url = self.absolute(&req.path);
        let rel = self.relative(&req.path).to_string();
        if let Some(obs) = &inner.observer {
            obs(&ObservedRequest {
                method: req.method.to_string(),
                path: rel.clone(),
                body: req.body.clone(),
            });
        }
        let mut rb = inner
            .http
            .request(req.method.clone(), &url)
            .bearer_auth(token);
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        if let Some(b) = &req.body {
            rb = rb.json(b);
        }
        self.stats().requests.fetch_add(1, ORD);
        self.stats().writes.fetch_add(req.writes as u64, ORD);
        let transport = |e: reqwest::Error| {
            self.stats().transport_errors.fetch_add(1, ORD);
            GraphError::Transport {
                method: req.method.to_string(),
                path: strip_query(&rel),
                message: describe_reqwest_error(&e),
            }
        };
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return (Err(transport(e)), ThrottleHeaders::default()),
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => &self.stats().responses_2xx,
            400..=499 => &self.stats().responses_4xx,
            _ => &self.stats().responses_5xx,
        }
        .fetch_add(1, ORD);
        let headers = resp.headers().clone();
        let header = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let throttle = ThrottleHeaders::from_headers(header);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return (Err(transport(e)), throttle),
        };
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if !(200..300).contains(&status) => Value::Null,
                Err(e) => {
                    let err = GraphError::Decode {
                        method: req.method.to_string(),
                        path: strip_query(&rel),
                        message: e.to_string(),
                    };
                    return (Err(err), throttle);
                }
            }
        };
        if (200..300).contains(&status) {
            let ok = GraphResponse {
                status,
                body,
                sent_at: Instant::now(),
            };
            return (Ok(ok), throttle);
        }
        let (code, message) = parse_error_body(status, &body);
        let retry_after = retry_after_from(header);
        let err = GraphError::Api {
            method: req.method.to_string(),
            path: strip_query(&rel),
            status,
            code,
            message,
            retry_after: if is_transient_status(status) {
                retry_after
            } else {
                None
            },
        };
        (Err(err), throttle)
    }
}

const ORD: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

/// Errors name the path, not the query: `$filter` values may be personal data.
fn strip_query(p: &str) -> String {
    p.split('?').next().unwrap_or(p).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            retry_after_from(h(&[("retry-after", "10")])),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after_from(h(&[("retry-after", "2.128")])),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(
            retry_after_from(h(&[("retry-after", "3"), ("retry-after-ms", "40")])),
            Some(Duration::from_millis(40))
        );
        assert_eq!(retry_after_from(h(&[])), None);
        assert_eq!(
            retry_after_from(h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let b = Duration::from_millis(100);
        for _ in 0..50 {
            let d1 = backoff(1, b);
            assert!(d1 >= Duration::from_millis(50) && d1 <= b);
            let d4 = backoff(4, b);
            assert!(d4 >= Duration::from_millis(400) && d4 <= Duration::from_millis(800));
            assert!(backoff(30, b) <= Duration::from_secs(30));
        }
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            with_query(
                "/users",
                &[(
                    "$filter",
                    "onPremisesImmutableId eq 'KtN+mrQK/Rk2qSC19JzM09g=='".into()
                )]
            ),
            "/users?$filter=onPremisesImmutableId%20eq%20%27KtN%2BmrQK/Rk2qSC19JzM09g%3D%3D%27"
        );
        assert_eq!(
            with_query(
                "/users",
                &[("$select", "id,mail".into()), ("$top", "999".into())]
            ),
            "/users?$select=id,mail&$top=999"
        );
    }
}
