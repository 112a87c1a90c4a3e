//! JSON batching (`POST /v1.0/$batch`, notes/02-batch.md): at most 20 requests, unique ids
//! (case-insensitive), `dependsOn` ordering with 424 for dependents of failed requests, each inner
//! request throttled and answered individually; the batch itself answers 200.

use crate::errors::GraphError;
use crate::graph::{Body, GraphRequest, GraphResponse};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// One parsed inner request.
#[derive(Debug, Clone)]
pub struct InnerRequest {
    /// Batch-local id.
    pub id: String,
    /// The request.
    pub request: GraphRequest,
    /// Ids it depends on.
    pub depends_on: Vec<String>,
}

/// Parses and validates a batch body; errors are answered as a 400 for the whole batch.
pub fn parse(body: Option<&Result<Value, String>>) -> Result<Vec<InnerRequest>, GraphError> {
    let invalid = |m: &str| GraphError::odata_bad_request(m.to_string());
    let body = match body {
        Some(Ok(v)) => v,
        _ => return Err(invalid("Invalid batch payload format.")),
    };
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("Invalid batch payload format."))?;
    if requests.is_empty() {
        return Err(invalid("Invalid batch payload format: no requests."));
    }
    if requests.len() > 20 {
        return Err(invalid(
            "The number of requests in the batch exceeds the maximum of 20.",
        ));
    }
    let mut out: Vec<InnerRequest> = Vec::new();
    for r in requests {
        let id = match r.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(invalid("Every batch request needs an 'id'.")),
        };
        if out.iter().any(|o| o.id.eq_ignore_ascii_case(&id)) {
            return Err(invalid(&format!(
                "Batch request ids must be unique; '{id}' is repeated."
            )));
        }
        let method = r
            .get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("Batch request '{id}' needs a 'method'.")))?
            .to_ascii_uppercase();
        let url = r
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(&format!("Batch request '{id}' needs a 'url'.")))?;
        if url.contains("://") {
            return Err(invalid(&format!(
                "Batch request '{id}': the url must be relative to the version root."
            )));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(h) = r.get("headers") {
            let h = h.as_object().ok_or_else(|| {
                invalid(&format!("Batch request '{id}': headers must be an object."))
            })?;
            for (k, v) in h {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                headers.push((k.to_ascii_lowercase(), v));
            }
        }
        let inner_body = match r.get("body") {
            None | Some(Value::Null) => None,
            Some(b) => {
                if !headers.iter().any(|(k, _)| k == "content-type") {
                    return Err(invalid(&format!(
                        "Batch request '{id}' has a body but no Content-Type header."
                    )));
                }
                Some(Ok(b.clone()))
            }
        };
        let depends_on = match r.get("dependsOn") {
            None => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| invalid("dependsOn entries must be strings."))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("dependsOn must be an array.")),
        };
        let rel = url.trim_start_matches('/');
        let rel = rel.strip_prefix("v1.0/").unwrap_or(rel);
        let (path, q) = rel.split_once('?').unwrap_or((rel, ""));
        let query = form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        out.push(InnerRequest {
            id,
            request: GraphRequest {
                method,
                path: format!("/{path}"),
                query,
                headers,
                body: inner_body,
            },
            depends_on,
        });
    }
    for r in &out {
        for d in &r.depends_on {
            if !out.iter().any(|o| o.id.eq_ignore_ascii_case(d)) {
                return Err(invalid(&format!(
                    "Batch request '{}' depends on unknown request '{d}'.",
                    r.id
                )));
            }
        }
    }
    execution_order(&out).map(|order| order.into_iter().map(|i| out[i].clone()).collect())
}

/// Orders requests so that dependencies run first (array order otherwise); cycles are a 400.
fn execution_order(reqs: &[InnerRequest]) -> Result<Vec<usize>, GraphError> {
    let index: HashMap<String, usize> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.to_ascii_lowercase(), i))
        .collect();
    let mut state = vec![0u8; reqs.len()];
    let mut order = Vec::new();
    fn visit(
        i: usize,
        reqs: &[InnerRequest],
        index: &HashMap<String, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) -> Result<(), GraphError> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                return Err(GraphError::odata_bad_request(
                    "The dependsOn graph of the batch has a cycle.",
                ));
            }
            _ => {}
        }
        state[i] = 1;
        for d in &reqs[i].depends_on {
            if let Some(&j) = index.get(&d.to_ascii_lowercase()) {
                visit(j, reqs, index, state, order)?;
            }
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..reqs.len() {
        visit(i, reqs, &index, &mut state, &mut order)?;
    }
    Ok(order)
}

/// The 424 answer for a request whose dependency failed.
pub fn failed_dependency() -> GraphError {
    GraphError::new(
        424,
        "FailedDependency",
        "The request could not be executed because a request it depends on failed.",
    )
}

/// Renders one inner response.
pub fn render(id: &str, resp: &GraphResponse) -> Value {
    let mut headers = Map::new();
    for (k, v) in &resp.headers {
        headers.insert(k.clone(), Value::String(v.clone()));
    }
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("status".into(), json!(resp.status));
    match &resp.body {
        Body::Json(_) => {
            headers
                .entry("Content-Type")
                .or_insert(Value::String(crate::graph::JSON_CONTENT_TYPE.into()));
        }
        Body::Text(_) => {
            headers
                .entry("Content-Type")
                .or_insert(Value::String("text/plain".into()));
        }
        Body::Empty => {}
    }
    out.insert("headers".into(), Value::Object(headers));
    match &resp.body {
        Body::Json(v) => {
            out.insert("body".into(), v.clone());
        }
        Body::Text(t) => {
            out.insert("body".into(), Value::String(t.clone()));
        }
        Body::Empty => {}
    }
    Value::Object(out)
}
