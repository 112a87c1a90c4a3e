//! JSON batching: up to 20 requests per `POST /$batch`, each with its own status.
//!
//! Batching cuts HTTP requests (the bench goal is ≤ 1/18 request per create) but not
//! throttling: Graph evaluates every inner request against the budgets, and inner
//! requests can be 429 or 424 (failed `dependsOn`) on their own. An inner 429 pauses the
//! whole client like an outer one.

use super::GraphClient;
use super::error::{GraphError, is_transient_status, parse_error_body};
use super::http::{GraphRequest, RetryMode, Stop, retry_after_from};
use super::throttle::{Cost, Limit, ThrottleHeaders, request_cost};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Graph's limit on requests per batch.
pub const MAX_BATCH: usize = 20;

/// One request inside a batch. `Debug` masks the secrets in the body.
#[derive(Clone, PartialEq)]
pub struct BatchItem {
    /// Unique within the batch.
    pub id: String,
    pub method: Method,
    /// Relative URL (`/users/{id}`), as Graph wants inside a batch.
    pub url: String,
    pub body: Option<Value>,
    pub depends_on: Vec<String>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for BatchItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchItem")
            .field("id", &self.id)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("body", &crate::secrets::redacted_body(&self.body))
            .field("depends_on", &self.depends_on)
            .field("headers", &self.headers)
            .finish()
    }
}

impl BatchItem {
    /// A GET.
    pub fn get(id: impl Into<String>, url: impl Into<String>) -> Self {
        BatchItem {
            id: id.into(),
            method: Method::GET,
            url: url.into(),
            body: None,
            depends_on: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A write.
    pub fn write(
        id: impl Into<String>,
        method: Method,
        url: impl Into<String>,
        body: Option<Value>,
    ) -> Self {
        BatchItem {
            id: id.into(),
            method,
            url: url.into(),
            body,
            depends_on: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// Whether it counts against the write budget.
    pub fn is_write(&self) -> bool {
        self.cost().writes > 0
    }

    /// What it costs against the budgets (Graph evaluates each inner request).
    pub fn cost(&self) -> Cost {
        request_cost(self.method.as_str(), &self.url)
    }
}

/// The `$batch` request body (pure).
pub fn batch_body(items: &[BatchItem]) -> Value {
    let requests: Vec<Value> = items
        .iter()
        .map(|it| {
            let mut r = Map::new();
            r.insert("id".into(), json!(it.id));
            r.insert("method".into(), json!(it.method.as_str()));
            r.insert("url".into(), json!(it.url));
            let mut headers = Map::new();
            for (k, v) in &it.headers {
                headers.insert(k.clone(), json!(v));
            }
            if let Some(b) = &it.body {
                headers.insert("Content-Type".into(), json!("application/json"));
                r.insert("body".into(), b.clone());
            }
            if !headers.is_empty() {
                r.insert("headers".into(), Value::Object(headers));
            }
            if !it.depends_on.is_empty() {
                r.insert("dependsOn".into(), json!(it.depends_on));
            }
            Value::Object(r)
        })
        .collect();
    json!({ "requests": requests })
}

/// One inner response.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchItemResponse {
    pub id: String,
    pub status: u16,
    pub headers: Map<String, Value>,
    pub body: Value,
}

impl BatchItemResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// An inner header by name, any case.
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    }

    /// Retry-After (or Retry-After-Ms) from the inner headers.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after_from(|k| self.header(k))
    }

    /// The inner `x-ms-throttle-*` and `x-ms-resource-unit` headers.
    pub fn throttle_headers(&self) -> ThrottleHeaders {
        ThrottleHeaders::from_headers(|k| self.header(k))
    }

    /// Graph's (code, message) for an error status.
    pub fn error(&self) -> (String, String) {
        parse_error_body(self.status, &self.body)
    }

    /// Transient inner failure (429, 5xx).
    pub fn is_transient(&self) -> bool {
        is_transient_status(self.status)
    }
}

/// Parses `{"responses":[…]}` into a map by id (pure).
pub fn parse_batch_response(v: &Value) -> Result<HashMap<String, BatchItemResponse>, String> {
    let arr = v
        .get("responses")
        .and_then(Value::as_array)
        .ok_or("batch response without responses[]")?;
    let mut out = HashMap::with_capacity(arr.len());
    for r in arr {
        let id = match r.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err("batch response item without id".into()),
        };
        let status = r
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or("batch response item without status")?;
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let body = r.get("body").cloned().unwrap_or(Value::Null);
        out.insert(
            id.clone(),
            BatchItemResponse {
                id,
                status,
                headers,
                body,
            },
        );
    }
    Ok(out)
}

impl GraphClient {
    /// Sends one `$batch` (≤ 20 items). Inner 429s pause the client and slow it down; the
    /// caller decides what to retry. `mode` is [`RetryMode::ThrottleOnly`] when the
    /// batch holds a create, so an unknown outcome is never blindly resent.
    pub async fn batch(
        &self,
        items: &[BatchItem],
        mode: RetryMode,
    ) -> Result<HashMap<String, BatchItemResponse>, GraphError> {
        self.batch_until(items, mode, &Stop::default()).await
    }

    /// [`GraphClient::batch`] that sends nothing once `stop` has come.
    pub async fn batch_until(
        &self,
        items: &[BatchItem],
        mode: RetryMode,
        stop: &Stop,
    ) -> Result<HashMap<String, BatchItemResponse>, GraphError> {
        debug_assert!(items.len() <= MAX_BATCH);
        let cost = items
            .iter()
            .map(BatchItem::cost)
            .fold(Cost::default(), |a, b| a + b);
        let req = GraphRequest {
            method: Method::POST,
            path: "/$batch".into(),
            body: Some(batch_body(items)),
            headers: Vec::new(),
            writes: cost.writes,
            resource_units: cost.resource_units,
        };
        let resp = self.execute_until(&req, mode, stop).await?;
        let map = parse_batch_response(&resp.body).map_err(|m| GraphError::Decode {
            method: "POST".into(),
            path: "/$batch".into(),
            message: m,
        })?;
        let mut signals = InnerSignals::default();
        for it in items {
            match map.get(&it.id) {
                Some(r) => signals.add(it, r),
                None => {
                    return Err(GraphError::Decode {
                        method: "POST".into(),
                        path: "/$batch".into(),
                        message: format!("no response for batch item {}", it.id),
                    });
                }
            }
        }
        signals.report(self, resp.sent_at);
        Ok(map)
    }

    /// Runs GETs through `$batch` (20 at a time, `max_in_flight` batches at once),
    /// retrying inner 429/5xx and whole-batch transient failures, and returns every
    /// final inner response (success or terminal error such as 404) by item id.
    pub async fn batch_get_all(
        &self,
        items: Vec<BatchItem>,
    ) -> Result<HashMap<String, BatchItemResponse>, GraphError> {
        self.batch_get_all_until(items, &Stop::default()).await
    }

    /// [`GraphClient::batch_get_all`] that sends nothing once `stop` has come. Inner 429s
    /// are sent again after the pause without using up the retry rounds, which only
    /// other transient failures count.
    pub async fn batch_get_all_until(
        &self,
        items: Vec<BatchItem>,
        stop: &Stop,
    ) -> Result<HashMap<String, BatchItemResponse>, GraphError> {
        let mut done = HashMap::with_capacity(items.len());
        let mut pending = items;
        let mut failed_rounds = 0u32;
        while !pending.is_empty() {
            let chunks: Vec<Vec<BatchItem>> = pending
                .chunks(MAX_BATCH)
                .map(<[BatchItem]>::to_vec)
                .collect();
            let mut retry = Vec::new();
            let mut failed = false;
            let mut wait = Duration::ZERO;
            for group in chunks.chunks(self.max_in_flight()) {
                let futs = group.iter().map(|c| async move {
                    (c, self.batch_until(c, RetryMode::Idempotent, stop).await)
                });
                for (chunk, res) in futures_join_all(futs).await {
                    let map = res?;
                    for it in chunk {
                        match map.get(&it.id) {
                            // The gate already waits out the pause a 429 set.
                            Some(r) if r.status == 429 => retry.push(it.clone()),
                            Some(r) if r.is_transient() => {
                                if let Some(ra) = r.retry_after() {
                                    wait = wait.max(ra);
                                }
                                failed = true;
                                retry.push(it.clone());
                            }
                            Some(r) => {
                                done.insert(it.id.clone(), r.clone());
                            }
                            None => {
                                failed = true;
                                retry.push(it.clone());
                            }
                        }
                    }
                }
            }
            if failed {
                failed_rounds += 1;
                if failed_rounds > self.inner.max_retries {
                    let it = &retry[0];
                    return Err(GraphError::Api {
                        method: "GET".into(),
                        path: it.url.split('?').next().unwrap_or("").to_string(),
                        status: 503,
                        code: "retriesExhausted".into(),
                        message: "inner batch request kept failing".into(),
                        retry_after: None,
                    });
                }
                let w = wait.max(super::http::backoff(failed_rounds, self.inner.retry_base));
                tokio::select! {
                    _ = tokio::time::sleep(w) => {}
                    _ = stop.stopped() => return Err(GraphError::Stopped),
                }
            }
            pending = retry;
        }
        Ok(done)
    }
}

/// Throttling signals of the inner responses of one `$batch`, gathered per budget so the
/// gate hears one 429 (the longest Retry-After) and one limit percentage (the highest)
/// per batch.
#[derive(Default)]
struct InnerSignals {
    /// Per budget (writes, resource units): longest Retry-After and what was refused.
    throttled: [Option<(Duration, Cost)>; 2],
    /// Per budget: whether any item spoke for it, and the highest limit percentage.
    usage: [(bool, Option<f64>); 2],
    /// Resource units estimated vs reported, over items that reported them.
    units: (u32, u32),
}

impl InnerSignals {
    fn slot(limit: Limit) -> usize {
        match limit {
            Limit::Writes => 0,
            Limit::ResourceUnits => 1,
        }
    }

    fn add(&mut self, item: &BatchItem, r: &BatchItemResponse) {
        let h = r.throttle_headers();
        let cost = item.cost();
        let own = if item.is_write() {
            Limit::Writes
        } else {
            Limit::ResourceUnits
        };
        if r.status == 429 {
            let slot = Self::slot(h.limit.unwrap_or(own));
            let ra = r.retry_after().unwrap_or(Duration::from_secs(1));
            let t = self.throttled[slot].get_or_insert((Duration::ZERO, Cost::default()));
            t.0 = t.0.max(ra);
            t.1 = t.1 + cost;
            return;
        }
        let u = &mut self.usage[Self::slot(own)];
        u.0 = true;
        if let Some(p) = h.limit_percentage {
            u.1 = Some(u.1.map_or(p, |q: f64| q.max(p)));
        }
        if let Some(actual) = h.resource_units {
            self.units.0 += cost.resource_units;
            self.units.1 += actual;
        }
    }

    fn report(self, client: &GraphClient, sent_at: std::time::Instant) {
        let gate = client.throttle();
        let now = std::time::Instant::now();
        for (slot, limit) in [(0, Limit::Writes), (1, Limit::ResourceUnits)] {
            if let Some((ra, refused)) = self.throttled[slot] {
                client.record_throttled(limit, ra, refused, sent_at);
            }
            let (spoke, p) = self.usage[slot];
            if spoke {
                gate.on_usage(limit, p, sent_at, now);
            }
        }
        if self.units.0 != self.units.1 {
            gate.on_resource_units(self.units.0, self.units.1);
        }
    }
}

/// Awaits all futures concurrently (a tiny join_all without the `futures` crate).
pub(crate) async fn futures_join_all<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let futs: Vec<F> = futs.into_iter().collect();
    let mut set: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_batch_body_with_depends_on() {
        let mut b = BatchItem::write("2", Method::PATCH, "/users/u1", Some(json!({"a":1})));
        b.depends_on = vec!["1".into()];
        let v = batch_body(&[
            BatchItem::write(
                "1",
                Method::POST,
                "/directory/deletedItems/u1/restore",
                None,
            ),
            b,
        ]);
        assert_eq!(
            v,
            json!({"requests":[
                {"id":"1","method":"POST","url":"/directory/deletedItems/u1/restore"},
                {"id":"2","method":"PATCH","url":"/users/u1","body":{"a":1},
                 "headers":{"Content-Type":"application/json"},"dependsOn":["1"]}
            ]})
        );
    }

    #[test]
    fn parses_sample_batch_response() {
        let sample = include_str!("../../../tests/data/batch-response.json");
        let v: Value = serde_json::from_str(sample).unwrap();
        let m = parse_batch_response(&v).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m["3"].status, 403);
        assert_eq!(m["3"].error().0, "Authorization_RequestDenied");
        assert!(m["1"].is_success());
    }

    #[test]
    fn inner_retry_after() {
        let r = BatchItemResponse {
            id: "1".into(),
            status: 429,
            headers: serde_json::from_value(json!({"Retry-After":"7"})).unwrap(),
            body: Value::Null,
        };
        assert_eq!(r.retry_after(), Some(Duration::from_secs(7)));
        assert!(r.is_transient());
    }
}
