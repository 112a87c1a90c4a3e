//! The Graph v1.0 surface: routing of a request (method, path after `/v1.0`, query, headers,
//! JSON body) to reads and writes of the [`Directory`]. Used for plain HTTP requests and for the
//! inner requests of `$batch` alike, so both behave identically.

use crate::config::EmulatorConfig;
use crate::delta::{DeltaRequest, DeltaStore};
use crate::errors::{GraphError, GraphResult};
use crate::filter::{CmpOp, Filter};
use crate::model::{self, DirObject, Kind};
use crate::query::{self, Query};
use crate::store::{Directory, id_from_url};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// Content-Type Graph uses for JSON responses.
pub const JSON_CONTENT_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// One Graph request, independent of transport.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    /// Upper-case method.
    pub method: String,
    /// Path after `/v1.0`, starting with `/`.
    pub path: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body; `Some(Err)` when the body is not JSON.
    pub body: Option<Result<Value, String>>,
}

impl GraphRequest {
    /// A header value by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request writes: by its method, except the actions that only read
    /// (`getAvailableExtensionProperties` is a POST that changes nothing).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
            && !self
                .path
                .trim_end_matches('/')
                .ends_with("getAvailableExtensionProperties")
    }

    fn eventual(&self) -> bool {
        self.header("consistencylevel")
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
    }

    pub(crate) fn json_object(&self) -> GraphResult<&Map<String, Value>> {
        match &self.body {
            None => Err(GraphError::odata_bad_request(
                "Empty Payload. JSON content expected.",
            )),
            Some(Err(_)) => Err(GraphError::odata_bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            )),
            Some(Ok(Value::Object(m))) => Ok(m),
            Some(Ok(_)) => Err(GraphError::odata_bad_request(
                "Invalid request body: a JSON object is expected.",
            )),
        }
    }
}

/// Body of a Graph response.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No content (204).
    Empty,
    /// JSON.
    Json(Value),
    /// text/plain (`$count`).
    Text(String),
}

/// One Graph response, independent of transport.
#[derive(Debug, Clone)]
pub struct GraphResponse {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

impl GraphResponse {
    pub(crate) fn json(status: u16, v: Value) -> Self {
        GraphResponse {
            status,
            headers: vec![],
            body: Body::Json(v),
        }
    }
    pub(crate) fn no_content() -> Self {
        GraphResponse {
            status: 204,
            headers: vec![],
            body: Body::Empty,
        }
    }
}

/// Everything a handler may touch.
pub struct Ctx<'a> {
    /// The directory.
    pub dir: &'a mut Directory,
    /// Delta state.
    pub delta: &'a mut DeltaStore,
    /// Configuration in force.
    pub cfg: &'a EmulatorConfig,
    /// Graph root URL (`http://127.0.0.1:PORT/v1.0`).
    pub root: &'a str,
    /// Incremented when replication lag hid an object.
    pub lagged: &'a mut u64,
}

impl Ctx<'_> {
    fn lag(&self) -> Duration {
        Duration::from_millis(self.cfg.faults.replication_lag_ms)
    }
    fn visible(&self, o: &DirObject) -> bool {
        let lag = self.lag();
        lag.is_zero() || Instant::now().saturating_duration_since(o.created) >= lag
    }
}

/// Routes one request.
pub fn dispatch(ctx: &mut Ctx<'_>, req: &GraphRequest) -> GraphResult<GraphResponse> {
    ctx.dir.housekeeping(Instant::now());
    let owned = split_segments(&req.path);
    let segs: Vec<&str> = owned.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let not_allowed = || Err(GraphError::method_not_allowed());
    match segs.as_slice() {
        [] => Err(GraphError::unknown_segment("")),
        [set @ ("users" | "groups")] => object_collection(ctx, req, set_kind(set)),
        [set @ ("users" | "groups"), "$count"] => {
            only(m, "GET")?;
            if !req.eventual() {
                return Err(GraphError::bad_request(
                    "$count is not currently supported.",
                ));
            }
            let kind = set_kind(set);
            let n = matching(ctx, req, kind, true)?.len();
            Ok(GraphResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "text/plain;charset=utf-8".into())],
                body: Body::Text(n.to_string()),
            })
        }
        [
            set @ ("users" | "groups"),
            "delta" | "microsoft.graph.delta()" | "microsoft.graph.delta",
        ] => {
            only(m, "GET")?;
            let kind = set_kind(set);
            delta(ctx, req, kind)
        }
        ["users", key] => {
            let id = user_key(ctx, key)?;
            object_item(ctx, req, Kind::User, &id)
        }
        ["users", key, "manager"] => {
            only(m, "GET")?;
            let id = user_key(ctx, key)?;
            let mid = manager_id(ctx, &id)?;
            let mgr = ctx
                .dir
                .users
                .get(&mid)
                .ok_or_else(|| GraphError::not_found("manager"))?;
            let q = parse_query(ctx, req, Some(Kind::User), false)?;
            Ok(entity(
                200,
                ctx.root,
                "directoryObjects",
                Some(Kind::User),
                mgr.render(q.select.as_deref()),
            ))
        }
        ["users", key, "manager", "$ref"] => {
            let id = user_key(ctx, key)?;
            match m {
                "PUT" => {
                    let url = odata_id(req.json_object()?)?;
                    let mid = id_from_url(url)?;
                    ctx.dir.set_manager(&id, &mid)?;
                    Ok(GraphResponse::no_content())
                }
                "DELETE" => {
                    ctx.dir.remove_manager(&id)?;
                    Ok(GraphResponse::no_content())
                }
                "GET" => {
                    let mid = manager_id(ctx, &id)?;
                    Ok(GraphResponse::json(
                        200,
                        json!({"@odata.context": format!("{}/$metadata#$ref", ctx.root), "@odata.id": format!("{}/directoryObjects/{mid}", ctx.root)}),
                    ))
                }
                _ => not_allowed(),
            }
        }
        ["users", key, "memberOf"] => {
            only(m, "GET")?;
            let id = user_key(ctx, key)?;
            let groups: Vec<DirObject> = ctx
                .dir
                .groups
                .values()
                .filter(|g| g.members.contains(&id))
                .cloned()
                .collect();
            list_typed(
                ctx,
                req,
                groups,
                &format!("users/{key}/memberOf"),
                "directoryObjects",
            )
        }
        [
            "users",
            key,
            "assignLicense" | "microsoft.graph.assignLicense",
        ] => {
            only(m, "POST")?;
            let id = user_key(ctx, key)?;
            ctx.dir.assign_license(&id, req.json_object()?)?;
            let u = ctx
                .dir
                .users
                .get(&id)
                .ok_or_else(|| GraphError::not_found(&id))?;
            Ok(entity(200, ctx.root, "users", None, u.render(None)))
        }
        ["groups", id] => {
            let id = group_key(ctx, id)?;
            object_item(ctx, req, Kind::Group, &id)
        }
        ["groups", id, rel @ ("members" | "owners")] => {
            only(m, "GET")?;
            let id = group_key(ctx, id)?;
            let g = ctx
                .dir
                .groups
                .get(&id)
                .ok_or_else(|| GraphError::not_found(&id))?;
            let list = if *rel == "members" {
                &g.members
            } else {
                &g.owners
            };
            let objs: Vec<DirObject> = list
                .iter()
                .filter_map(|mid| ctx.dir.object(mid))
                .cloned()
                .collect();
            list_typed(
                ctx,
                req,
                objs,
                &format!("groups/{id}/{rel}"),
                "directoryObjects",
            )
        }
        ["groups", id, "members", "$ref"] => {
            only(m, "POST")?;
            let id = group_key(ctx, id)?;
            let body = req.json_object()?;
            let url = odata_id(body)?;
            for k in body.keys() {
                if k != "@odata.id" {
                    return Err(GraphError::odata_bad_request(format!(
                        "The property '{k}' does not exist on type 'ReferenceCreate'."
                    )));
                }
            }
            let mid = id_from_url(url)?;
            ctx.dir.add_member(&id, &mid)?;
            Ok(GraphResponse::no_content())
        }
        ["groups", id, "members", mid, "$ref"] => {
            only(m, "DELETE")?;
            let id = group_key(ctx, id)?;
            ctx.dir.remove_member(&id, mid)?;
            Ok(GraphResponse::no_content())
        }
        ["domains"] => {
            only(m, "GET")?;
            let value: Vec<Value> = ctx.dir.domains.iter().map(domain_json).collect();
            Ok(collection(ctx, "domains", value, None))
        }
        ["domains", name] => {
            only(m, "GET")?;
            let d = ctx
                .dir
                .domains
                .iter()
                .find(|d| d.id.eq_ignore_ascii_case(name))
                .ok_or_else(|| GraphError::not_found(name))?;
            let mut v = domain_json(d);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "@odata.context".into(),
                    Value::String(format!("{}/$metadata#domains/$entity", ctx.root)),
                );
            }
            Ok(GraphResponse::json(200, v))
        }
        ["domains", name, "federationConfiguration"] => {
            crate::federation::collection(ctx, req, name)
        }
        ["domains", name, "federationConfiguration", id] => {
            crate::federation::item(ctx, req, name, id)
        }
        ["organization"] => {
            only(m, "GET")?;
            let org = crate::organization::organization_json(ctx.dir);
            Ok(collection(ctx, "organization", vec![org], None))
        }
        ["organization", oid] => crate::organization::item(ctx, req, oid),
        ["subscribedSkus"] => {
            only(m, "GET")?;
            let value: Vec<Value> = ctx.dir.skus.iter().map(|s| sku_json(ctx.dir, s)).collect();
            Ok(collection(ctx, "subscribedSkus", value, None))
        }
        ["subscribedSkus", sid] => {
            only(m, "GET")?;
            let s = ctx
                .dir
                .skus
                .iter()
                .find(|s| sid.ends_with(&s.sku_id) || s.sku_id.eq_ignore_ascii_case(sid))
                .ok_or_else(|| GraphError::not_found(sid))?;
            Ok(GraphResponse::json(200, sku_json(ctx.dir, s)))
        }
        ["applications"] => {
            only(m, "GET")?;
            let (select, filter) =
                simple_query(req, APPLICATION_PROPERTIES, "microsoft.graph.application")?;
            let value: Vec<Value> = ctx
                .dir
                .applications
                .iter()
                .map(application_json)
                .filter(|a| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&|p: &str| property_of(a, p)))
                })
                .map(|a| Value::Object(select_props(a, select.as_deref())))
                .collect();
            let set = context_with_select("applications", select.as_deref());
            Ok(collection(ctx, &set, value, None))
        }
        ["applications", key] => {
            only(m, "GET")?;
            let (select, _) =
                simple_query(req, APPLICATION_PROPERTIES, "microsoft.graph.application")?;
            let i = ctx
                .dir
                .application_index(key)
                .ok_or_else(|| GraphError::not_found(key))?;
            let a = application_json(&ctx.dir.applications[i]);
            Ok(entity(
                200,
                ctx.root,
                &context_with_select("applications", select.as_deref()),
                None,
                select_props(a, select.as_deref()),
            ))
        }
        ["directoryRoles"] => {
            only(m, "GET")?;
            let (select, filter) = simple_query(
                req,
                crate::roles::PROPERTIES,
                "microsoft.graph.directoryRole",
            )?;
            let value: Vec<Value> = ctx
                .dir
                .activated_roles()
                .iter()
                .filter(|r| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&|p: &str| r.value_of(p)))
                })
                .map(|r| Value::Object(r.render(select.as_deref())))
                .collect();
            let set = context_with_select("directoryRoles", select.as_deref());
            Ok(collection(ctx, &set, value, None))
        }
        ["directoryRoles", key] => {
            only(m, "GET")?;
            let (select, _) = simple_query(
                req,
                crate::roles::PROPERTIES,
                "microsoft.graph.directoryRole",
            )?;
            let r = ctx
                .dir
                .directory_role(key)
                .ok_or_else(|| GraphError::not_found(key))?;
            Ok(entity(
                200,
                ctx.root,
                &context_with_select("directoryRoles", select.as_deref()),
                None,
                r.render(select.as_deref()),
            ))
        }
        ["directoryRoles", key, "members"] => {
            only(m, "GET")?;
            let r = ctx
                .dir
                .directory_role(key)
                .ok_or_else(|| GraphError::not_found(key))?;
            let mut q = parse_query(ctx, req, None, true)?;
            if q.top.is_none() {
                q.top = Some(ROLE_MEMBERS_DEFAULT_PAGE);
            }
            // Member ids come from a sorted set: id order, as the id cursor of `page` expects.
            let objs: Vec<DirObject> = ctx
                .dir
                .directory_role_members(&r)
                .iter()
                .filter_map(|id| ctx.dir.object(id))
                .filter(|o| matches_query(o, &q))
                .cloned()
                .collect();
            let objs: Vec<DirObject> = objs.into_iter().filter(|o| ctx.visible(o)).collect();
            page(
                ctx,
                req,
                &q,
                objs,
                &format!("directoryRoles/{}/members", r.id),
                "directoryObjects",
                true,
                None,
            )
        }
        ["applications", key, "extensionProperties"] => {
            let i = ctx
                .dir
                .application_index(key)
                .ok_or_else(|| GraphError::not_found(key))?;
            match m {
                "GET" => {
                    let value: Vec<Value> = ctx.dir.applications[i]
                        .extensions
                        .iter()
                        .map(|e| e.to_json())
                        .collect();
                    Ok(collection(
                        ctx,
                        &format!(
                            "applications('{}')/extensionProperties",
                            ctx.dir.applications[i].id
                        ),
                        value,
                        None,
                    ))
                }
                "POST" => {
                    let e = ctx.dir.register_extension(i, req.json_object()?)?;
                    let mut v = e.to_json();
                    if let Some(o) = v.as_object_mut() {
                        o.insert(
                            "@odata.context".into(),
                            Value::String(format!(
                                "{}/$metadata#applications('{}')/extensionProperties/$entity",
                                ctx.root, ctx.dir.applications[i].id
                            )),
                        );
                    }
                    Ok(GraphResponse::json(201, v))
                }
                _ => not_allowed(),
            }
        }
        ["applications", key, "extensionProperties", eid] => {
            let i = ctx
                .dir
                .application_index(key)
                .ok_or_else(|| GraphError::not_found(key))?;
            let pos = ctx.dir.applications[i]
                .extensions
                .iter()
                .position(|e| e.id == *eid)
                .ok_or_else(|| GraphError::not_found(eid))?;
            match m {
                "GET" => Ok(GraphResponse::json(
                    200,
                    ctx.dir.applications[i].extensions[pos].to_json(),
                )),
                "DELETE" => {
                    ctx.dir.applications[i].extensions.remove(pos);
                    Ok(GraphResponse::no_content())
                }
                _ => not_allowed(),
            }
        }
        [
            "directory",
            "deletedItems",
            cast @ ("microsoft.graph.user" | "microsoft.graph.group"),
        ] => {
            only(m, "GET")?;
            if *cast == "microsoft.graph.group" {
                // Security groups are never soft-deleted.
                return Ok(collection(
                    ctx,
                    "directory/deletedItems/microsoft.graph.group",
                    vec![],
                    None,
                ));
            }
            let objs: Vec<DirObject> = ctx.dir.deleted_users.values().cloned().collect();
            list_typed(
                ctx,
                req,
                objs,
                "directory/deletedItems/microsoft.graph.user",
                "users",
            )
        }
        ["directory", "deletedItems", id] => {
            let u = ctx
                .dir
                .deleted_users
                .get(*id)
                .cloned()
                .ok_or_else(|| GraphError::not_found(id))?;
            match m {
                "GET" => {
                    let q = parse_query(ctx, req, Some(Kind::User), false)?;
                    Ok(entity(
                        200,
                        ctx.root,
                        "directoryObjects",
                        Some(Kind::User),
                        render_deleted(&u, q.select.as_deref()),
                    ))
                }
                "DELETE" => {
                    ctx.dir.purge_deleted_user(id);
                    Ok(GraphResponse::no_content())
                }
                _ => not_allowed(),
            }
        }
        [
            "directory",
            "deletedItems",
            id,
            "restore" | "microsoft.graph.restore",
        ] => {
            only(m, "POST")?;
            ctx.dir.restore_user(id)?;
            let u = ctx
                .dir
                .users
                .get(*id)
                .ok_or_else(|| GraphError::not_found(id))?;
            Ok(entity(
                200,
                ctx.root,
                "directoryObjects",
                Some(Kind::User),
                u.render(None),
            ))
        }
        [
            "directoryObjects",
            "getAvailableExtensionProperties" | "microsoft.graph.getAvailableExtensionProperties",
        ] => {
            only(m, "POST")?;
            available_extension_properties(ctx, req)
        }
        ["directoryObjects", id] => {
            only(m, "GET")?;
            let o = ctx
                .dir
                .object(id)
                .cloned()
                .ok_or_else(|| GraphError::not_found(id))?;
            ensure_visible(ctx, &o, id)?;
            Ok(entity(
                200,
                ctx.root,
                "directoryObjects",
                Some(o.kind),
                o.render(None),
            ))
        }
        [first, ..] => {
            let known = [
                "users",
                "groups",
                "domains",
                "organization",
                "subscribedSkus",
                "applications",
                "directory",
                "directoryObjects",
                "directoryRoles",
            ];
            if known.contains(first) {
                let unknown = segs
                    .iter()
                    .skip(1)
                    .find(|s| !is_routable_segment(s))
                    .copied()
                    .unwrap_or(segs[segs.len() - 1]);
                Err(GraphError::unknown_segment(unknown))
            } else {
                Err(GraphError::unknown_segment(first))
            }
        }
    }
}

/// `POST /directoryObjects/getAvailableExtensionProperties`: every directory extension
/// registered in the tenant, on any application (directoryobject-getavailableextensionproperties).
/// The optional `isSyncedFromOnPremises` keeps only synced (`true`) or only cloud (`false`)
/// ones; the emulator registers cloud extensions only. Above
/// [`EmulatorConfig::available_extensions_limit`] app registrations the list is empty, as
/// Microsoft documents for tenants with more than 1,000 service principals.
fn available_extension_properties(ctx: &Ctx<'_>, req: &GraphRequest) -> GraphResult<GraphResponse> {
    let synced = match &req.body {
        None => None,
        Some(_) => {
            let body = req.json_object()?;
            for k in body.keys() {
                if k != "isSyncedFromOnPremises" {
                    return Err(GraphError::odata_bad_request(format!(
                        "The parameter '{k}' in the request payload is not a valid parameter for the operation 'getAvailableExtensionProperties'."
                    )));
                }
            }
            match body.get("isSyncedFromOnPremises") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => {
                    return Err(GraphError::odata_bad_request(
                        "Cannot convert the literal to the expected type 'Edm.Boolean'.",
                    ));
                }
            }
        }
    };
    let apps = &ctx.dir.applications;
    let known_issue = ctx
        .cfg
        .available_extensions_limit
        .is_some_and(|limit| apps.len() > limit);
    let value: Vec<Value> = apps
        .iter()
        .flat_map(|a| &a.extensions)
        .filter(|_| synced != Some(true) && !known_issue)
        .map(|e| {
            let mut v = e.to_json();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "@odata.type".into(),
                    Value::String("#microsoft.graph.extensionProperty".into()),
                );
            }
            v
        })
        .collect();
    Ok(GraphResponse::json(
        200,
        json!({
            "@odata.context": format!("{}/$metadata#Collection(extensionProperty)", ctx.root),
            "value": value,
        }),
    ))
}

/// 405 unless the request's method is `allowed`, the only one the route serves.
fn only(method: &str, allowed: &str) -> GraphResult<()> {
    if method == allowed {
        Ok(())
    } else {
        Err(GraphError::method_not_allowed())
    }
}

fn is_routable_segment(s: &str) -> bool {
    crate::conformance::is_guid(s)
        || s.contains('@')
        || matches!(s, "members" | "$ref" | "manager" | "deletedItems")
}

/// Page size of `/directoryRoles/{id}/members` without `$top`: Graph documents that it
/// "returns a default of 1,000 objects" (and no `$top` paging); the emulator still honours
/// `$top` (≤ 999) with `@odata.nextLink`, and pages beyond 1,000 members the same way.
const ROLE_MEMBERS_DEFAULT_PAGE: usize = 1000;

/// Properties of `microsoft.graph.application` the emulator models.
const APPLICATION_PROPERTIES: &[&str] = &["id", "appId", "deletedDateTime", "displayName"];

/// Splits a path into segments; an alternate-key segment such as `applications(appId='x')` or
/// `directoryRoles(roleTemplateId='x')` becomes two (`applications`, `(appId='x')`), with
/// percent-encoded quotes, parentheses and `=` in the key decoded.
pub fn split_segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for s in path.trim_matches('/').split('/').filter(|s| !s.is_empty()) {
        let decoded = decode_key_chars(s);
        let split = ["applications", "directoryRoles"].iter().find_map(|set| {
            let rest = decoded.strip_prefix(set)?;
            (rest.starts_with('(') && rest.ends_with(')')).then(|| (set.to_string(), rest))
        });
        match split {
            Some((set, key)) => {
                let key = key.to_string();
                out.push(set);
                out.push(key);
            }
            None if decoded.starts_with('(') => out.push(decoded),
            None => out.push(s.to_string()),
        }
    }
    out
}

fn decode_key_chars(s: &str) -> String {
    let mut out = s.to_string();
    for (enc, dec) in [("%27", "'"), ("%28", "("), ("%29", ")"), ("%3D", "=")] {
        out = out
            .replace(enc, dec)
            .replace(&enc.to_ascii_lowercase(), dec);
    }
    out
}

/// `$select` (validated against `properties`) and `$filter` of the small collections that are
/// not directory objects of the store (applications, directory roles). Other options are
/// ignored, as Graph documents no paging for these.
fn simple_query(
    req: &GraphRequest,
    properties: &[&str],
    type_name: &str,
) -> GraphResult<(Option<Vec<String>>, Option<Filter>)> {
    let mut select = None;
    let mut filter = None;
    for (k, v) in &req.query {
        match k.to_ascii_lowercase().as_str() {
            "$select" => {
                let mut items = Vec::new();
                for i in query::select_items(v) {
                    let p = properties
                        .iter()
                        .find(|p| p.eq_ignore_ascii_case(&i))
                        .ok_or_else(|| query::unknown_property(&i, type_name))?;
                    items.push((*p).to_string());
                }
                select = Some(items);
            }
            "$filter" => {
                filter = Some(query::parse_filter(v)?);
            }
            _ => {}
        }
    }
    Ok((select, filter))
}

fn context_with_select(set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(s) => format!("{set}({})", s.join(",")),
        None => set.to_string(),
    }
}

fn application_json(a: &crate::store::Application) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(a.id.clone()));
    m.insert("appId".into(), Value::String(a.app_id.clone()));
    m.insert("deletedDateTime".into(), Value::Null);
    m.insert("displayName".into(), Value::String(a.display_name.clone()));
    m
}

fn property_of(m: &Map<String, Value>, p: &str) -> Value {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(p))
        .map(|(_, v)| v.clone())
        .unwrap_or(Value::Null)
}

/// Keeps the selected properties (and `id`, which Graph always returns).
fn select_props(m: Map<String, Value>, select: Option<&[String]>) -> Map<String, Value> {
    match select {
        None => m,
        Some(sel) => m
            .into_iter()
            .filter(|(k, _)| k == "id" || sel.iter().any(|s| s == k))
            .collect(),
    }
}

fn user_key(ctx: &mut Ctx<'_>, key: &str) -> GraphResult<String> {
    let id = ctx
        .dir
        .user_id(key)
        .ok_or_else(|| GraphError::not_found(key))?;
    Ok(id)
}

fn group_key(ctx: &mut Ctx<'_>, key: &str) -> GraphResult<String> {
    if ctx.dir.groups.contains_key(key) {
        Ok(key.to_string())
    } else {
        Err(GraphError::not_found(key))
    }
}

fn parse_query(
    ctx: &Ctx<'_>,
    req: &GraphRequest,
    kind: Option<Kind>,
    is_collection: bool,
) -> GraphResult<Query> {
    let dir = &*ctx.dir;
    let known = |p: &str| match kind {
        Some(k) => {
            (model::is_declared(k, p) && !model::is_navigation(p)) || dir.extension_applies(p, k)
        }
        None => {
            model::is_declared(Kind::User, p)
                || model::is_declared(Kind::Group, p)
                || dir.extension(p).is_some()
        }
    };
    Query::parse(&req.query, req.eventual(), kind, is_collection, &known)
}

fn get_object(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    kind: Kind,
    id: &str,
) -> GraphResult<GraphResponse> {
    let q = parse_query(ctx, req, Some(kind), false)?;
    let pool = ctx.dir.pool(kind);
    let o = pool
        .get(id)
        .cloned()
        .ok_or_else(|| GraphError::not_found(id))?;
    ensure_visible(ctx, &o, id)?;
    Ok(entity(
        200,
        ctx.root,
        &context_with_select(kind.set(), q.select.as_deref()),
        None,
        o.render(q.select.as_deref()),
    ))
}

/// One entity: its `@odata.context` (`{root}/$metadata#{context}/$entity`), its `@odata.type`
/// when `odata_type` is given, then `props`.
fn entity(
    status: u16,
    root: &str,
    context: &str,
    odata_type: Option<Kind>,
    props: Map<String, Value>,
) -> GraphResponse {
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Value::String(format!("{root}/$metadata#{context}/$entity")),
    );
    if let Some(kind) = odata_type {
        out.insert(
            "@odata.type".into(),
            Value::String(kind.odata_type().into()),
        );
    }
    out.extend(props);
    GraphResponse::json(status, Value::Object(out))
}

/// GET (list) or POST (create) of the users or groups.
fn object_collection(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    kind: Kind,
) -> GraphResult<GraphResponse> {
    match req.method.as_str() {
        "GET" => list_objects(ctx, req, kind),
        "POST" => {
            let body = req.json_object()?;
            let id = match kind {
                Kind::User => ctx.dir.create_user(body)?,
                Kind::Group => ctx.dir.create_group(body)?,
            };
            created(ctx, kind, &id)
        }
        _ => Err(GraphError::method_not_allowed()),
    }
}

/// GET, PATCH or DELETE of the user or group `id`.
fn object_item(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    kind: Kind,
    id: &str,
) -> GraphResult<GraphResponse> {
    match (req.method.as_str(), kind) {
        ("GET", _) => return get_object(ctx, req, kind, id),
        ("PATCH", Kind::User) => ctx.dir.update_user(id, req.json_object()?)?,
        ("PATCH", Kind::Group) => ctx.dir.update_group(id, req.json_object()?)?,
        ("DELETE", Kind::User) => ctx.dir.delete_user(id)?,
        ("DELETE", Kind::Group) => ctx.dir.delete_group(id)?,
        _ => return Err(GraphError::method_not_allowed()),
    }
    Ok(GraphResponse::no_content())
}

/// Under replication lag an object not yet visible is "not found" (and counted).
fn ensure_visible(ctx: &mut Ctx<'_>, o: &DirObject, id: &str) -> GraphResult<()> {
    if !ctx.visible(o) {
        *ctx.lagged += 1;
        return Err(GraphError::not_found(id));
    }
    Ok(())
}

/// The id of the manager of user `id`.
fn manager_id(ctx: &Ctx<'_>, id: &str) -> GraphResult<String> {
    ctx.dir
        .users
        .get(id)
        .and_then(|u| u.manager.clone())
        .ok_or_else(|| GraphError::not_found("manager"))
}

/// The `@odata.id` URL of a reference body.
fn odata_id(body: &Map<String, Value>) -> GraphResult<&str> {
    body.get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("The request body must contain '@odata.id'."))
}

/// The kind of the `users` or `groups` collection.
fn set_kind(set: &str) -> Kind {
    if set == "users" {
        Kind::User
    } else {
        Kind::Group
    }
}

fn created(ctx: &mut Ctx<'_>, kind: Kind, id: &str) -> GraphResult<GraphResponse> {
    let pool = ctx.dir.pool(kind);
    let o = pool.get(id).ok_or_else(|| GraphError::not_found(id))?;
    let mut r = entity(201, ctx.root, kind.set(), None, o.render(None));
    r.headers.push((
        "Location".into(),
        format!("{}/{}/{id}", ctx.root, kind.set()),
    ));
    Ok(r)
}

/// Objects of a kind matching `$filter`/`$search`, visible under replication lag, in id order.
fn matching(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    kind: Kind,
    is_collection: bool,
) -> GraphResult<Vec<DirObject>> {
    let q = parse_query(ctx, req, Some(kind), is_collection)?;
    // `prop eq 'text'` on an indexed property: evaluate the filter on the index's
    // candidates only (a superset of the matches, in id order) instead of on every object.
    let candidates = q
        .filter
        .as_ref()
        .and_then(indexed_eq)
        .and_then(|(p, v)| ctx.dir.eq_candidates(kind, p, v));
    let all: Vec<DirObject> = match candidates {
        Some(c) => c
            .into_iter()
            .filter(|o| matches_query(o, &q))
            .cloned()
            .collect(),
        None => {
            let pool = ctx.dir.pool(kind);
            pool.values()
                .filter(|o| matches_query(o, &q))
                .cloned()
                .collect()
        }
    };
    let before = all.len();
    let visible: Vec<DirObject> = all.into_iter().filter(|o| ctx.visible(o)).collect();
    if visible.len() != before {
        *ctx.lagged += 1;
    }
    Ok(visible)
}

/// A `prop eq 'text'` term the whole filter requires (itself or an `and` operand), on a
/// property the directory indexes.
fn indexed_eq(f: &Filter) -> Option<(&str, &str)> {
    match f {
        Filter::And(a, b) => indexed_eq(a).or_else(|| indexed_eq(b)),
        Filter::Compare(p, CmpOp::Eq, Value::String(s)) if crate::index::is_indexed(p) => {
            Some((p.as_str(), s.as_str()))
        }
        _ => None,
    }
}

fn matches_query(o: &DirObject, q: &Query) -> bool {
    let get = |p: &str| o.value_of(p);
    if let Some(f) = &q.filter
        && !f.matches(&get)
    {
        return false;
    }
    if let Some(terms) = &q.search {
        let hit = terms.iter().any(|(p, v)| {
            o.value_of(p)
                .as_str()
                .is_some_and(|s| s.to_lowercase().contains(v))
        });
        if !hit {
            return false;
        }
    }
    true
}

fn list_objects(ctx: &mut Ctx<'_>, req: &GraphRequest, kind: Kind) -> GraphResult<GraphResponse> {
    let q = parse_query(ctx, req, Some(kind), true)?;
    let objs = matching(ctx, req, kind, true)?;
    page(ctx, req, &q, objs, kind.set(), kind.set(), false, None)
}

/// Lists mixed directory objects (members, memberOf, deleted items) with `@odata.type`.
fn list_typed(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    objs: Vec<DirObject>,
    path: &str,
    context_set: &str,
) -> GraphResult<GraphResponse> {
    let deleted = path.starts_with("directory/deletedItems");
    let kind = if deleted { Some(Kind::User) } else { None };
    let q = parse_query(ctx, req, kind, true)?;
    let objs: Vec<DirObject> = objs
        .into_iter()
        .filter(|o| matches_query(o, &q))
        .filter(|o| ctx.visible(o))
        .collect();
    page(ctx, req, &q, objs, path, context_set, true, Some(deleted))
}

#[allow(clippy::too_many_arguments)]
fn page(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    q: &Query,
    mut objs: Vec<DirObject>,
    path: &str,
    context_set: &str,
    typed: bool,
    deleted: Option<bool>,
) -> GraphResult<GraphResponse> {
    if q.orderby.is_none() {
        // The `id:` cursor below resumes after the last id served: it needs id order (member
        // lists are kept in insertion order).
        objs.sort_by(|a, b| a.id.cmp(&b.id));
    }
    if let Some((prop, desc)) = &q.orderby {
        objs.sort_by(|a, b| {
            let ka = a
                .value_of(prop)
                .as_str()
                .map(str::to_lowercase)
                .unwrap_or_default();
            let kb = b
                .value_of(prop)
                .as_str()
                .map(str::to_lowercase)
                .unwrap_or_default();
            let o = ka.cmp(&kb).then_with(|| a.id.cmp(&b.id));
            if *desc { o.reverse() } else { o }
        });
    }
    let total = objs.len();
    let start = match &q.skiptoken {
        None => 0,
        Some(t) => {
            let cursor = query::decode_skiptoken(t)?;
            if let Some(off) = cursor.strip_prefix("off:") {
                off.parse::<usize>()
                    .map_err(|_| GraphError::bad_request("Invalid paging token."))?
            } else {
                let last = cursor.strip_prefix("id:").unwrap_or(&cursor);
                objs.iter()
                    .position(|o| o.id.as_str() > last)
                    .unwrap_or(objs.len())
            }
        }
    };
    let size = q.top.unwrap_or(100);
    let end = (start + size).min(objs.len());
    let slice = objs.get(start..end).unwrap_or_default();
    let value: Vec<Value> = slice
        .iter()
        .map(|o| {
            let mut m = Map::new();
            if typed {
                m.insert(
                    "@odata.type".into(),
                    Value::String(o.kind.odata_type().into()),
                );
            }
            if deleted == Some(true) {
                m.extend(render_deleted(o, q.select.as_deref()));
            } else {
                m.extend(o.render(q.select.as_deref()));
            }
            Value::Object(m)
        })
        .collect();
    let next = if end < objs.len() {
        let cursor = if q.orderby.is_some() {
            format!("off:{end}")
        } else {
            format!("id:{}", objs[end - 1].id)
        };
        let token = query::encode_skiptoken(&cursor);
        Some(format!(
            "{}/{}?{}",
            ctx.root,
            path,
            query::with_skiptoken(&req.query, &token)
        ))
    } else {
        None
    };
    let context = match &q.select {
        Some(s) => format!("{}({})", context_set, s.join(",")),
        None => context_set.to_string(),
    };
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Value::String(format!("{}/$metadata#{}", ctx.root, context)),
    );
    if q.count {
        out.insert("@odata.count".into(), json!(total));
    }
    if let Some(n) = next {
        out.insert("@odata.nextLink".into(), Value::String(n));
    }
    out.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::json(200, Value::Object(out)))
}

fn render_deleted(o: &DirObject, select: Option<&[String]>) -> Map<String, Value> {
    let mut m = o.render(select);
    if select.is_none() {
        m.insert("deletedDateTime".into(), o.value_of("deletedDateTime"));
    }
    m
}

fn collection(ctx: &Ctx<'_>, set: &str, value: Vec<Value>, next: Option<String>) -> GraphResponse {
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Value::String(format!("{}/$metadata#{set}", ctx.root)),
    );
    if let Some(n) = next {
        out.insert("@odata.nextLink".into(), Value::String(n));
    }
    out.insert("value".into(), Value::Array(value));
    GraphResponse::json(200, Value::Object(out))
}

fn delta(ctx: &mut Ctx<'_>, req: &GraphRequest, kind: Kind) -> GraphResult<GraphResponse> {
    let mut select = None;
    let mut ids = None;
    let mut skiptoken = None;
    let mut deltatoken = None;
    for (k, v) in &req.query {
        match k.to_ascii_lowercase().as_str() {
            "$select" => {
                let items = query::select_items(v);
                for i in &items {
                    let ok = model::is_declared(kind, i) || ctx.dir.extension_applies(i, kind);
                    if !ok {
                        return Err(query::unknown_property(i, kind.schema()));
                    }
                }
                select = Some(items);
            }
            "$filter" => {
                let f = query::parse_filter(v)?;
                let list = f.id_list().ok_or_else(|| {
                    GraphError::new(
                        400,
                        "Request_UnsupportedQuery",
                        "Delta queries only support filtering by object id ('id eq ...').",
                    )
                })?;
                if list.len() > 50 {
                    return Err(GraphError::new(
                        400,
                        "Request_UnsupportedQuery",
                        "A delta $filter may name at most 50 objects.",
                    ));
                }
                ids = Some(list);
            }
            "$skiptoken" => skiptoken = Some(v.as_str()),
            "$deltatoken" => deltatoken = Some(v.as_str()),
            "$top" | "$orderby" | "$expand" => {
                return Err(GraphError::new(
                    400,
                    "Request_UnsupportedQuery",
                    format!("{k} is not supported with delta queries."),
                ));
            }
            _ => {}
        }
    }
    let r = DeltaRequest {
        kind,
        select,
        ids,
        skiptoken,
        deltatoken,
        root: ctx.root,
        lifetime: Duration::from_secs_f64(ctx.cfg.delta_token_lifetime_secs),
        page_size: ctx.cfg.delta_page_size,
        members_per_item: ctx.cfg.delta_members_per_item,
    };
    let body = ctx.delta.serve(ctx.dir, r)?;
    Ok(GraphResponse::json(200, body))
}

fn domain_json(d: &crate::config::DomainConfig) -> Value {
    json!({
        "authenticationType": d.authentication_type,
        "availabilityStatus": null,
        "id": d.id,
        "isAdminManaged": true,
        "isDefault": d.is_default,
        "isInitial": d.is_initial,
        "isRoot": true,
        "isVerified": d.is_verified,
        "passwordNotificationWindowInDays": null,
        "passwordValidityPeriodInDays": null,
        "supportedServices": if d.is_verified { json!(["Email", "OfficeCommunicationsOnline"]) } else { json!([]) },
        "state": null,
    })
}

fn sku_json(dir: &Directory, s: &crate::config::SkuConfig) -> Value {
    json!({
        "accountId": dir.tenant_id,
        "accountName": dir.tenant_display_name,
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "consumedUnits": dir.consumed_units(&s.sku_id),
        "id": format!("{}_{}", dir.tenant_id, s.sku_id),
        "skuId": s.sku_id,
        "skuPartNumber": s.sku_part_number,
        "subscriptionIds": [],
        "prepaidUnits": {"enabled": s.enabled_units, "suspended": 0, "warning": 0, "lockedOut": 0},
        "servicePlans": s.service_plans.iter().map(|p| json!({
            "servicePlanId": p.service_plan_id,
            "servicePlanName": p.service_plan_name,
            "provisioningStatus": "Success",
            "appliesTo": "User",
        })).collect::<Vec<_>>(),
    })
}
