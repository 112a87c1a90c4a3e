//! The reconciler's HTTP endpoints: `/healthz`, `/readyz`, `/metrics`, `/status`, and
//! `POST /sync` (Entra Connect's "forced sync").
//!
//! The listener binds to loopback by default. When it does not, `POST /sync` requires
//! `Authorization: Bearer $AD2ENTRA_TRIGGER_TOKEN` (compared in constant time): anyone
//! who can reach the port could otherwise make the reconciler hammer AD and Graph.
//! Read-only endpoints stay open for probes and scrapers; they hold no secret.

use super::metrics::{CONTENT_TYPE, Metrics};
use super::status::Status;
use super::triggers::{Trigger, TriggerReason};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the handlers share with the loop.
pub struct HttpContext {
    pub status: Arc<RwLock<Status>>,
    pub metrics: Arc<Metrics>,
    pub triggers: mpsc::UnboundedSender<Trigger>,
    /// The trigger token; `None` disables `POST /sync` on a non-loopback listener.
    pub trigger_token: Option<crate::secrets::Secret>,
    /// True when the listener is reachable from other hosts.
    pub require_token: bool,
}

impl std::fmt::Debug for HttpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpContext")
            .field("trigger_token", &self.trigger_token)
            .field("require_token", &self.require_token)
            .finish_non_exhaustive()
    }
}

/// The routes.
pub fn router(ctx: Arc<HttpContext>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/sync", post(sync))
        .with_state(ctx)
}

/// Serves until `cancel` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<HttpContext>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(ctx))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
}

/// True when `addr` can only be reached from this host.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

fn read_status(ctx: &HttpContext) -> Status {
    match ctx.status.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

async fn readyz(State(ctx): State<Arc<HttpContext>>) -> Response {
    let s = read_status(&ctx);
    if s.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = s
            .condition("Ready")
            .map(|c| format!("not ready: {} {}\n", c.reason, c.message))
            .unwrap_or_else(|| "not ready: starting\n".into());
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
    }
}

async fn metrics(State(ctx): State<Arc<HttpContext>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], ctx.metrics.encode()).into_response()
}

async fn status(State(ctx): State<Arc<HttpContext>>) -> Response {
    axum::Json(read_status(&ctx)).into_response()
}

#[derive(Debug, Deserialize)]
struct SyncQuery {
    #[serde(default)]
    full: Option<String>,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorized(ctx: &HttpContext, headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&ctx.trigger_token, presented) {
        (Some(t), Some(p)) if constant_time_eq(t.expose().as_bytes(), p.as_bytes()) => Ok(()),
        (Some(_), _) => Err((StatusCode::UNAUTHORIZED, "bearer token required\n")),
        (None, _) if ctx.require_token => Err((
            StatusCode::FORBIDDEN,
            "POST /sync is disabled on a non-loopback listener without AD2ENTRA_TRIGGER_TOKEN\n",
        )),
        (None, _) => Ok(()),
    }
}

async fn sync(
    State(ctx): State<Arc<HttpContext>>,
    headers: HeaderMap,
    Query(q): Query<SyncQuery>,
) -> Response {
    if let Err((code, msg)) = authorized(&ctx, &headers) {
        return (code, msg).into_response();
    }
    let full = matches!(q.full.as_deref(), Some("true" | "1" | "yes" | ""));
    let t = if full {
        Trigger::full(TriggerReason::Api)
    } else {
        Trigger::new(TriggerReason::Api)
    };
    if ctx.triggers.send(t).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"accepted": true, "full": full})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(
        token: Option<&str>,
        require: bool,
    ) -> (Arc<HttpContext>, mpsc::UnboundedReceiver<Trigger>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(HttpContext {
                status: Arc::default(),
                metrics: Arc::new(Metrics::new()),
                triggers: tx,
                trigger_token: token.map(crate::secrets::Secret::new),
                require_token: require,
            }),
            rx,
        )
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn sync_needs_the_token_off_loopback() {
        let (c, _rx) = ctx(None, false);
        assert!(
            authorized(&c, &HeaderMap::new()).is_ok(),
            "loopback, no token"
        );
        let (c, _rx) = ctx(None, true);
        assert_eq!(
            authorized(&c, &HeaderMap::new()).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        let (c, _rx) = ctx(Some("s3cret"), true);
        assert_eq!(
            authorized(&c, &HeaderMap::new()).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
        assert!(authorized(&c, &bearer("wrong!")).is_err());
        assert!(authorized(&c, &bearer("s3cret")).is_ok());
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(is_loopback(&"127.0.0.1:8080".parse().unwrap()));
        assert!(is_loopback(&"[::1]:8080".parse().unwrap()));
        assert!(!is_loopback(&"0.0.0.0:8080".parse().unwrap()));
    }
}
