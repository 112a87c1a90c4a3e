//! HTTP server: the axum router (token endpoint, `/v1.0/...`, `/_emulator/...`), the request
//! pipeline (faults, authentication, throttling, dispatch), and a hyper accept loop that can
//! really drop a TCP connection without answering.

use crate::auth::{Caller, Form, TokenIssuer};
use crate::batch;
use crate::config::{EmulatorConfig, FaultConfig, ThrottleConfig};
use crate::delta::DeltaStore;
use crate::errors::{EmulatorError, GraphError};
use crate::faults::Faults;
use crate::graph::{self, Body as GBody, Ctx, GraphRequest, GraphResponse};
use crate::seed::{self, Seed, SeedReport};
use crate::stats::{self, Stats};
use crate::store::Directory;
use crate::throttle::{self, Throttle};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;

/// Marker extension: close the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Mutable state of an instance.
pub struct Inner {
    /// Configuration in force (faults/throttling can change at runtime).
    pub config: EmulatorConfig,
    /// Directory.
    pub dir: Directory,
    /// Delta tokens.
    pub delta: DeltaStore,
    /// Throttling buckets.
    pub throttle: Throttle,
    /// Counters.
    pub stats: Stats,
    /// Token issuer.
    pub tokens: TokenIssuer,
    /// Fault dice.
    pub faults: Faults,
}

impl Inner {
    fn new(config: EmulatorConfig) -> Self {
        Inner {
            dir: Directory::new(&config),
            delta: DeltaStore::default(),
            throttle: Throttle::new(
                config.throttling.clone(),
                &config.client_id,
                &config.tenant_id,
            ),
            stats: Stats::default(),
            tokens: TokenIssuer::default(),
            faults: Faults::new(config.faults.clone()),
            config,
        }
    }
}

/// State shared by all connections.
pub struct Shared {
    /// The lock around everything mutable.
    pub inner: Mutex<Inner>,
    /// `http://127.0.0.1:PORT/v1.0`.
    pub root: String,
    /// `http://127.0.0.1:PORT`.
    pub authority: String,
    initial: EmulatorConfig,
}

impl Shared {
    /// Locks the state (a poisoned lock is recovered: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Back to the configuration given at start: empty directory, fresh buckets and counters
    /// (issued access tokens stay valid).
    pub fn reset(&self) {
        let mut g = self.lock();
        let tokens = g.tokens.clone();
        *g = Inner::new(self.initial.clone());
        g.tokens = tokens;
    }

    /// Applies a seed.
    pub fn seed(&self, s: &Seed) -> Result<SeedReport, EmulatorError> {
        let mut g = self.lock();
        seed::apply(&mut g.dir, s).map_err(EmulatorError::Seed)
    }

    /// Replaces fault injection settings.
    pub fn set_faults(&self, f: FaultConfig) {
        let mut g = self.lock();
        g.config.faults = f.clone();
        g.faults = Faults::new(f);
    }

    /// Replaces throttling settings (buckets restart full).
    pub fn set_throttling(&self, t: ThrottleConfig) {
        let mut g = self.lock();
        g.config.throttling = t.clone();
        g.throttle.reconfigure(t);
    }

    /// Full state dump.
    pub fn state(&self) -> Value {
        let g = self.lock();
        state_json(&g.dir)
    }
}

fn state_json(dir: &Directory) -> Value {
    let obj = |o: &crate::model::DirObject| {
        let mut m = o.props.clone();
        m.insert("id".into(), Value::String(o.id.clone()));
        if o.kind == crate::model::Kind::Group {
            m.insert("members".into(), json!(o.members));
            m.insert("owners".into(), json!(o.owners));
        } else {
            m.insert("manager".into(), json!(o.manager));
        }
        if o.deleted.is_some() {
            m.insert("deletedDateTime".into(), o.value_of("deletedDateTime"));
        }
        Value::Object(m)
    };
    json!({
        "tenantId": dir.tenant_id,
        "domains": dir.domains,
        "skus": dir.skus.iter().map(|s| json!({"skuId": s.sku_id, "skuPartNumber": s.sku_part_number, "enabledUnits": s.enabled_units, "consumedUnits": dir.consumed_units(&s.sku_id)})).collect::<Vec<_>>(),
        "applications": dir.applications.iter().map(|a| json!({"id": a.id, "appId": a.app_id, "displayName": a.display_name, "extensionProperties": a.extensions.iter().map(|e| e.to_json()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "users": dir.users.values().map(obj).collect::<Vec<_>>(),
        "deletedUsers": dir.deleted_users.values().map(obj).collect::<Vec<_>>(),
        "groups": dir.groups.values().map(obj).collect::<Vec<_>>(),
        "directoryRoleMembers": dir.role_members,
        "sequence": dir.seq,
    })
}

/// Builds the router for an instance.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/_emulator/seed", post(admin_seed))
        .route("/_emulator/state", get(admin_state))
        .route("/_emulator/stats", get(admin_stats))
        .route("/_emulator/reset", post(admin_reset))
        .route("/_emulator/delta/expire", post(admin_delta_expire))
        .route("/_emulator/delta/reset", post(admin_delta_reset))
        .route(
            "/_emulator/config",
            get(admin_get_config).post(admin_config),
        )
        .route("/v1.0", any(graph_entry))
        .route("/v1.0/", any(graph_entry))
        .route("/v1.0/{*rest}", any(graph_entry))
        .fallback(unknown_route)
        .with_state(shared)
}

async fn unknown_route(uri: Uri) -> Response {
    let e =
        GraphError::odata_bad_request(format!("Invalid version or unknown path: {}", uri.path()));
    let rid = uuid::Uuid::new_v4().to_string();
    (
        StatusCode::BAD_REQUEST,
        [("request-id", rid.clone())],
        axum::Json(e.body(&rid, &rid)),
    )
        .into_response()
}

async fn token(
    State(s): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: Form = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let basic = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (decode_pct(a), decode_pct(b)))
        });
    let mut g = s.lock();
    let Inner {
        tokens,
        config,
        stats,
        ..
    } = &mut *g;
    match tokens.token(config, &s.authority, &tenant, &form, basic) {
        Ok(v) => {
            stats.tokens_issued += 1;
            (
                StatusCode::OK,
                [("Cache-Control", "no-store, no-cache")],
                axum::Json(v),
            )
                .into_response()
        }
        Err(e) => {
            stats.token_errors += 1;
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, axum::Json(e.body())).into_response()
        }
    }
}

fn decode_pct(s: &str) -> String {
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// 400 with `{"error": message}`, the error body of the `/_emulator` endpoints.
fn admin_error(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

/// The JSON body of an `/_emulator` write (`what`: `seed`, `config`); the message of the 400
/// when it is not valid JSON of that shape.
fn parse_admin_body<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid {what} JSON: {e}"))
}

async fn admin_seed(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let seed: Seed = match parse_admin_body(&body, "seed") {
        Ok(v) => v,
        Err(msg) => return admin_error(msg),
    };
    match s.seed(&seed) {
        Ok(r) => (StatusCode::OK, axum::Json(r)).into_response(),
        Err(e) => admin_error(e.to_string()),
    }
}

async fn admin_state(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.state()).into_response()
}

async fn admin_stats(State(s): State<Arc<Shared>>) -> Response {
    let stats = s.lock().stats.clone();
    axum::Json(stats).into_response()
}

async fn admin_reset(State(s): State<Arc<Shared>>) -> Response {
    s.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_delta_expire(State(s): State<Arc<Shared>>) -> Response {
    s.lock().delta.expire_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_delta_reset(State(s): State<Arc<Shared>>) -> Response {
    s.lock().delta.reset_all();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_get_config(State(s): State<Arc<Shared>>) -> Response {
    let g = s.lock();
    axum::Json(json!({"faults": g.config.faults, "throttling": g.config.throttling}))
        .into_response()
}

/// Body of `POST /_emulator/config`: any of `faults`, `throttling`, `timeScale`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigChange {
    faults: Option<FaultConfig>,
    throttling: Option<ThrottleConfig>,
    time_scale: Option<f64>,
}

async fn admin_config(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let change: ConfigChange = match parse_admin_body(&body, "config") {
        Ok(v) => v,
        Err(msg) => return admin_error(msg),
    };
    let mut candidate = s.lock().config.clone();
    if let Some(f) = change.faults {
        candidate.faults = f;
    }
    if let Some(t) = change.throttling {
        candidate.throttling = t;
    }
    if let Some(ts) = change.time_scale {
        candidate.throttling.time_scale = ts;
    }
    if let Err(e) = candidate.validate() {
        return admin_error(e.to_string());
    }
    s.set_faults(candidate.faults.clone());
    s.set_throttling(candidate.throttling.clone());
    admin_get_config(State(s)).await
}

fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
        })
        .collect()
}

fn parse_body(bytes: &Bytes) -> Option<Result<Value, String>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice(bytes).map_err(|e| e.to_string()))
}

/// Executes one Graph request (outer or inner) under the lock: throttling, dispatch, counters.
/// Returns the response and whether a write was committed.
fn execute(
    g: &mut Inner,
    root: &str,
    req: &GraphRequest,
    caller: &Caller,
    request_id: &str,
    client_request_id: &str,
) -> (GraphResponse, bool) {
    let class = stats::path_class(&req.method, &req.path);
    *g.stats.requests.entry(class).or_default() += 1;
    g.stats.total_requests += 1;
    let segs = graph::split_segments(&req.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let app_id_of = |key: &str| {
        g.dir
            .application_index(key)
            .map(|i| g.dir.applications[i].app_id.clone())
    };
    if let Err(e) = crate::permissions::check(caller, &req.method, &segs, app_id_of) {
        *g.stats.statuses.entry(e.status).or_default() += 1;
        return (error_response(&e, request_id, client_request_id), false);
    }
    let has = |name: &str| req.query.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let top = req
        .query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$top"))
        .and_then(|(_, v)| v.parse().ok());
    let cost = throttle::cost(&req.method, &req.path, has("$select"), has("$expand"), top);
    let user_count = g.dir.user_count();
    let charged = g.throttle.charge(cost, user_count);
    if let Err(t) = &charged {
        g.stats.throttled += 1;
        *g.stats.statuses.entry(429).or_default() += 1;
        let mut e = GraphError::new(429, "TooManyRequests", "Please retry again later.");
        let mut inner = serde_json::Map::new();
        inner.insert("code".into(), json!("429"));
        inner.insert("message".into(), json!("Please retry after"));
        inner.insert("status".into(), json!("429"));
        e.inner_override = Some(Box::new(inner));
        e.headers = t.headers();
        return (error_response(&e, request_id, client_request_id), false);
    }
    if let Some(e) = g.faults.broken_link(req, &mut g.stats.faults) {
        *g.stats.statuses.entry(e.status).or_default() += 1;
        return (error_response(&e, request_id, client_request_id), false);
    }
    let Inner {
        dir,
        delta,
        config,
        stats,
        faults,
        ..
    } = g;
    let mut lagged = 0;
    let result = {
        let mut ctx = Ctx {
            dir,
            delta,
            cfg: config,
            root,
            lagged: &mut lagged,
        };
        graph::dispatch(&mut ctx, req)
    };
    stats.faults.lagged_reads += lagged;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, request_id, client_request_id),
    };
    faults.mangle_page(req, &mut resp, &mut stats.faults);
    resp.headers
        .push(("x-ms-resource-unit".into(), cost.resource_units.to_string()));
    if let Ok(c) = charged {
        resp.headers.extend(c.headers());
    }
    *stats.statuses.entry(resp.status).or_default() += 1;
    let committed = req.is_write() && resp.status < 400;
    if committed {
        stats.writes += 1;
    }
    (resp, committed)
}

fn error_response(e: &GraphError, request_id: &str, client_request_id: &str) -> GraphResponse {
    GraphResponse {
        status: e.status,
        headers: e.headers.clone(),
        body: GBody::Json(e.body(request_id, client_request_id)),
    }
}

async fn graph_entry(
    State(s): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let path = uri.path().strip_prefix("/v1.0").unwrap_or("/").to_string();
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let req = GraphRequest {
        method: method.as_str().to_ascii_uppercase(),
        path,
        query,
        headers: header_pairs(&headers),
        body: parse_body(&body),
    };
    // Faults that happen before anything is processed.
    let (drop, latency) = {
        let mut g = s.lock();
        if g.throttle.arrived_early(arrived) {
            g.stats.early_requests += 1;
        }
        let drop = g.faults.drop_before();
        if drop {
            g.stats.faults.dropped += 1;
        }
        let latency = g.faults.latency();
        if !latency.is_zero() {
            g.stats.faults.delayed += 1;
        }
        (drop, latency)
    };
    if drop {
        return dropped();
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (resp, committed, drop_after) = {
        let mut g = s.lock();
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        match g.tokens.validate(auth) {
            Err(e) => {
                g.stats.unauthorized += 1;
                *g.stats.statuses.entry(401).or_default() += 1;
                (
                    error_response(&e, &request_id, &client_request_id),
                    false,
                    false,
                )
            }
            Ok(caller) => authenticated(
                &mut g,
                &s.root,
                &req,
                &caller,
                &request_id,
                &client_request_id,
            ),
        }
    };
    if drop_after {
        s.lock().stats.faults.dropped_after_commit += 1;
        return dropped();
    }
    let _ = committed;
    to_http(resp, &request_id, &client_request_id)
}

/// The rest of the pipeline once the token is valid: injected server errors, `$batch` or one
/// request. Returns the response, whether a write was committed and whether to drop the
/// connection after it.
fn authenticated(
    g: &mut Inner,
    root: &str,
    req: &GraphRequest,
    caller: &Caller,
    request_id: &str,
    client_request_id: &str,
) -> (GraphResponse, bool, bool) {
    if let Some(e) = g.faults.server_error() {
        g.stats.faults.errors += 1;
        *g.stats.statuses.entry(e.status).or_default() += 1;
        return (
            error_response(&e, request_id, client_request_id),
            false,
            false,
        );
    }
    let (r, committed) = if req.path == "/$batch" {
        if req.method != "POST" {
            let e = GraphError::method_not_allowed();
            return (
                error_response(&e, request_id, client_request_id),
                false,
                false,
            );
        }
        run_batch(g, root, req, caller, request_id, client_request_id)
    } else {
        let (r, committed) = execute(g, root, req, caller, request_id, client_request_id);
        let Inner { faults, stats, .. } = &mut *g;
        (faults.garble_page(req, r, &mut stats.faults), committed)
    };
    let drop_after = committed && g.faults.drop_after_commit();
    (r, committed, drop_after)
}

fn dropped() -> Response {
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut().insert(DropConnection);
    r
}

fn run_batch(
    g: &mut Inner,
    root: &str,
    req: &GraphRequest,
    caller: &Caller,
    request_id: &str,
    client_request_id: &str,
) -> (GraphResponse, bool) {
    g.stats.batches += 1;
    *g.stats.requests.entry("POST /$batch".into()).or_default() += 1;
    let inner = match batch::parse(req.body.as_ref()) {
        Ok(v) => v,
        Err(e) => {
            *g.stats.statuses.entry(e.status).or_default() += 1;
            return (error_response(&e, request_id, client_request_id), false);
        }
    };
    g.stats.batch_requests += inner.len() as u64;
    let mut statuses: Vec<(String, u16)> = Vec::new();
    let mut rendered: Vec<(usize, Value)> = Vec::new();
    let mut any_commit = false;
    for r in inner.iter() {
        let failed_dep = r.depends_on.iter().any(|d| {
            statuses
                .iter()
                .any(|(id, st)| id.eq_ignore_ascii_case(d) && *st >= 400)
        });
        let inner_rid = uuid::Uuid::new_v4().to_string();
        let resp = if failed_dep {
            *g.stats.statuses.entry(424).or_default() += 1;
            error_response(&batch::failed_dependency(), &inner_rid, client_request_id)
        } else if let Some(e) = g.faults.server_error() {
            g.stats.faults.errors += 1;
            *g.stats.statuses.entry(e.status).or_default() += 1;
            error_response(&e, &inner_rid, client_request_id)
        } else {
            let (resp, committed) =
                execute(g, root, &r.request, caller, &inner_rid, client_request_id);
            any_commit |= committed;
            resp
        };
        statuses.push((r.id.clone(), resp.status));
        let original_pos = match &req.body {
            Some(Ok(b)) => b
                .get("requests")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter().position(|x| {
                        x.get("id")
                            .map(|v| {
                                v.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| v.to_string())
                            })
                            .as_deref()
                            == Some(r.id.as_str())
                    })
                })
                .unwrap_or(0),
            _ => 0,
        };
        rendered.push((original_pos, batch::render(&r.id, &resp)));
    }
    rendered.sort_by_key(|(i, _)| *i);
    *g.stats.statuses.entry(200).or_default() += 1;
    let body = json!({"responses": rendered.into_iter().map(|(_, v)| v).collect::<Vec<_>>()});
    (
        GraphResponse {
            status: 200,
            headers: vec![],
            body: GBody::Json(body),
        },
        any_commit,
    )
}

fn to_http(resp: GraphResponse, request_id: &str, client_request_id: &str) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder()
        .status(status)
        .header("request-id", request_id)
        .header("client-request-id", client_request_id)
        .header("Cache-Control", "no-cache")
        .header("x-ms-ags-diagnostic", r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"graph-emulator"}}"#);
    let mut has_ct = false;
    for (k, v) in &resp.headers {
        has_ct |= k.eq_ignore_ascii_case("content-type");
        builder = builder.header(k.as_str(), v.as_str());
    }
    let body = match resp.body {
        GBody::Empty => Body::empty(),
        GBody::Json(v) => {
            if !has_ct {
                builder = builder
                    .header("Content-Type", graph::JSON_CONTENT_TYPE)
                    .header("OData-Version", "4.0");
            }
            Body::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        GBody::Text(t) => Body::from(t),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Serves `router` on `listener` until `shutdown` fires; connections whose response carries
/// [`DropConnection`] are closed without a response.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt;
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let router = router.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        async move {
                            let resp = match router.oneshot(req.map(Body::new)).await {
                                Ok(r) => r,
                                Err(never) => match never {},
                            };
                            if resp.extensions().get::<DropConnection>().is_some() {
                                Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "fault injection: connection dropped"))
                            } else {
                                Ok(resp)
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        }
    }
    conns.abort_all();
}

/// Creates the shared state for a bound address.
pub fn shared(config: EmulatorConfig, addr: SocketAddr) -> Arc<Shared> {
    let authority = format!("http://{addr}");
    Arc::new(Shared {
        inner: Mutex::new(Inner::new(config.clone())),
        root: format!("{authority}/v1.0"),
        authority,
        initial: config,
    })
}
