//! Sending one Graph request: token, write budget, retries with exponential backoff and
//! jitter, Retry-After, and the request observer tests use to check conformance.

use super::GraphClient;
use super::error::{GraphError, is_transient_status, parse_error_body};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// What a request may be retried on, because of what a retry could do twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryMode {
    /// GET, PATCH, DELETE: retry on transport errors, 5xx and 429.
    Idempotent,
    /// POST that creates or a `$batch` holding one: retry only on 429 (the request was
    /// not executed); any other failure's outcome is unknown and goes to the caller.
    ThrottleOnly,
}

/// One request to Graph, as data (built by pure functions, sent by [`GraphClient::execute`]).
#[derive(Clone, Debug, PartialEq)]
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
}

impl GraphRequest {
    /// A GET of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        GraphRequest {
            method: Method::GET,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            writes: 0,
        }
    }

    /// A write (`POST`, `PATCH`, `DELETE`) of `path`, costing one write.
    pub fn write(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        GraphRequest {
            method,
            path: path.into(),
            body,
            headers: Vec::new(),
            writes: 1,
        }
    }
}

/// A 2xx answer.
#[derive(Clone, Debug)]
pub struct GraphResponse {
    pub status: u16,
    /// `Value::Null` for 204 and empty bodies.
    pub body: Value,
}

/// What the observer sees of each attempt (no headers: the token stays out).
#[derive(Clone, Debug)]
pub struct ObservedRequest {
    pub method: String,
    /// Path and query relative to the Graph base URL, e.g. `/users?$top=999`.
    pub path: String,
    pub body: Option<Value>,
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
        let inner = &self.inner;
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            attempt += 1;
            if req.writes > 0 {
                inner.limiter.acquire(req.writes).await;
            } else {
                inner.limiter.wait_pause().await;
            }
            let result = self.send_once(req).await;
            let err = match result {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let retry_after = match &err {
                GraphError::Api {
                    status: 429,
                    retry_after,
                    ..
                } => {
                    let ra = retry_after.unwrap_or_else(|| backoff(attempt, inner.retry_base));
                    inner.limiter.on_throttled(ra, req.writes > 0);
                    self.stats().throttled.fetch_add(1, ORD);
                    Some(ra)
                }
                GraphError::Api { status: 401, .. } if !reauthed => {
                    reauthed = true;
                    inner.tokens.invalidate().await;
                    attempt -= 1;
                    continue;
                }
                _ => None,
            };
            let retryable = match mode {
                RetryMode::Idempotent => err.is_transient(),
                RetryMode::ThrottleOnly => err.status() == Some(429),
            };
            if !retryable || attempt > inner.max_retries {
                return Err(err);
            }
            self.stats().retries.fetch_add(1, ORD);
            let wait = match retry_after {
                Some(ra) => ra,
                None => match &err {
                    GraphError::Api {
                        retry_after: Some(ra),
                        ..
                    } => *ra,
                    _ => backoff(attempt, inner.retry_base),
                },
            };
            tracing::debug!(method = %req.method, path = self.relative(&req.path), attempt, ?wait, error = %err, "retrying graph request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
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
        let token = inner.tokens.token().await?;
        let mut rb = inner
            .http
            .request(req.method.clone(), &url)
            .bearer_auth(token.expose());
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
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) if !(200..300).contains(&status) => Value::Null,
                Err(e) => {
                    return Err(GraphError::Decode {
                        method: req.method.to_string(),
                        path: strip_query(&rel),
                        message: e.to_string(),
                    });
                }
            }
        };
        if (200..300).contains(&status) {
            return Ok(GraphResponse { status, body });
        }
        let (code, message) = parse_error_body(status, &body);
        let retry_after = retry_after_from(|k| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        Err(GraphError::Api {
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
        })
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
