//! A small checker of requests and responses against Microsoft's OpenAPI description of the
//! Graph v1.0 subset the project uses (`tests/data/graph-v1.0-subset.openapi.yaml`, MIT, see
//! `tests/data/SUBSET_NOTE.txt`).
//!
//! Why: the project's Graph client must only send requests Graph understands. Tests of that
//! client call [`check_request`] for every request it sends; the emulator's own tests call
//! [`check_response`] on what the emulator answers.
//!
//! What is checked:
//! - the path (after `/v1.0`, query ignored) matches a path of the description, with Graph's
//!   shortcuts mapped (`/users/delta` → `/users/microsoft.graph.delta()`, `/users/{id}/assignLicense`
//!   → `.../microsoft.graph.assignLicense`, `.../restore` → `.../microsoft.graph.restore`);
//! - the method exists for that path;
//! - the JSON body: every property is declared by the schema (instance annotations such as
//!   `members@odata.bind` and directory extensions `extension_{appId}_{name}` are allowed), values
//!   have the declared types (string, boolean, integer, array, object, GUID/date-time patterns),
//!   and create requests carry the properties the descriptions call required (user: accountEnabled,
//!   displayName, mailNickname, passwordProfile.password, userPrincipalName; group: displayName,
//!   mailEnabled, mailNickname, securityEnabled) — the description itself has no `required` lists;
//! - `$select`, `$orderby` and `$expand` values against the enumerations of the description;
//! - `$batch` envelopes (not in the description: JSON batching is a protocol feature): at most
//!   20 requests, unique ids, method and url present, headers present with a body, and each inner
//!   request checked as above.
//!
//! Endpoints Microsoft documents for Graph v1.0 but that are missing from the subset (directory
//! roles, applications and their `extensionProperties`, including the `(appId='…')` and
//! `(roleTemplateId='…')` alternate keys) are checked against [`DOCUMENTED_NOT_IN_SUBSET`], a
//! small hand-written allow-list naming, per endpoint, the Microsoft reference page, the
//! `$select` values, the request body properties and the response properties. Only paths the
//! OpenAPI description lacks are looked up there, and its errors say so.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// The OpenAPI description, embedded so that tests of other crates need no file paths.
pub const OPENAPI_YAML: &str = include_str!("../tests/data/graph-v1.0-subset.openapi.yaml");

/// Properties added to Graph after the 2023 description (csdl-vs-openapi-diff.txt) that Graph
/// returns in responses (e.g. samples/create-security-group-response-201.json).
const NEWER_RESPONSE_PROPERTIES: &[(&str, &str)] = &[
    ("microsoft.graph.group", "resourceBehaviorOptions"),
    ("microsoft.graph.group", "resourceProvisioningOptions"),
    ("microsoft.graph.group", "uniqueName"),
    ("microsoft.graph.group", "onPremisesExtensionAttributes"),
    ("microsoft.graph.user", "isManagementRestricted"),
];

/// The parsed description.
pub struct OpenApi {
    doc: Value,
    paths: Vec<(Vec<String>, String)>,
    /// `properties(name)` per schema name, computed once (every create/update validates
    /// its body against the entity schema).
    props_cache: Mutex<HashMap<String, Arc<BTreeMap<String, Value>>>>,
}

/// The shared parsed description (parsed once, on first use).
pub fn openapi() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc: Value = match serde_saphyr::from_str(OPENAPI_YAML) {
            Ok(v) => v,
            Err(e) => panic!("embedded OpenAPI description does not parse: {e}"),
        };
        let mut paths = Vec::new();
        if let Some(p) = doc.get("paths").and_then(Value::as_object) {
            for key in p.keys() {
                let segs = key
                    .trim_start_matches('/')
                    .split('/')
                    .map(str::to_string)
                    .collect();
                paths.push((segs, key.clone()));
            }
        }
        OpenApi {
            doc,
            paths,
            props_cache: Mutex::new(HashMap::new()),
        }
    })
}

impl OpenApi {
    /// The schema object `components.schemas.{name}`.
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc.get("components")?.get("schemas")?.get(name)
    }

    /// All properties of a schema, following `allOf` (inherited properties included).
    pub fn properties(&self, name: &str) -> BTreeMap<String, Value> {
        (*self.properties_shared(name)).clone()
    }

    /// [`OpenApi::properties`], computed once per schema and shared.
    fn properties_shared(&self, name: &str) -> Arc<BTreeMap<String, Value>> {
        let mut cache = self.props_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.get(name) {
            return p.clone();
        }
        let mut out = BTreeMap::new();
        if let Some(s) = self.schema(name) {
            self.collect_properties(s, &mut out, 0);
        }
        let out = Arc::new(out);
        cache.insert(name.to_string(), out.clone());
        out
    }

    fn collect_properties(&self, schema: &Value, out: &mut BTreeMap<String, Value>, depth: usize) {
        if depth > 16 {
            return;
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(s) = self.resolve(r) {
                self.collect_properties(s, out, depth + 1);
            }
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.collect_properties(s, out, depth + 1);
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                out.insert(k.clone(), v.clone());
            }
        }
    }

    fn resolve(&self, reference: &str) -> Option<&Value> {
        let mut cur = &self.doc;
        for part in reference.trim_start_matches("#/").split('/') {
            cur = cur.get(part)?;
        }
        Some(cur)
    }

    /// Whether a property of an entity type is a collection (`type: array`).
    pub fn is_collection(&self, schema: &str, property: &str) -> bool {
        self.properties_shared(schema)
            .get(property)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            == Some("array")
    }

    /// The description's path template matching a concrete path, e.g. `/users/{user-id}`.
    pub fn match_path(&self, path: &str) -> Option<&str> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &str)> = None;
        for (tpl, key) in &self.paths {
            if tpl.len() != segs.len() {
                continue;
            }
            let mut literal = 0;
            let ok = tpl.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else if t.eq_ignore_ascii_case(s) {
                    literal += 1;
                    true
                } else {
                    false
                }
            });
            if ok && best.is_none_or(|(l, _)| literal > l) {
                best = Some((literal, key.as_str()));
            }
        }
        best.map(|(_, k)| k)
    }

    fn operation(&self, template: &str, method: &str) -> Option<&Value> {
        self.doc
            .get("paths")?
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// The schema a JSON request body of an operation must follow.
    fn request_schema(&self, op: &Value) -> Option<Value> {
        let mut rb = op.get("requestBody")?;
        if let Some(r) = rb.get("$ref").and_then(Value::as_str) {
            rb = self.resolve(r)?;
        }
        rb.get("content")?
            .get("application/json")?
            .get("schema")
            .cloned()
    }

    /// The schema of a successful JSON response of an operation.
    fn response_schema(&self, op: &Value) -> Option<Value> {
        let responses = op.get("responses")?;
        let mut r = responses
            .get("2XX")
            .or_else(|| responses.get("200"))
            .or_else(|| responses.get("201"))?;
        if let Some(reference) = r.get("$ref").and_then(Value::as_str) {
            r = self.resolve(reference)?;
        }
        r.get("content")?
            .get("application/json")?
            .get("schema")
            .cloned()
    }

    fn parameter_enum(&self, op: &Value, name: &str) -> Option<Vec<String>> {
        for p in op.get("parameters")?.as_array()? {
            let p = match p.get("$ref").and_then(Value::as_str) {
                Some(r) => self.resolve(r)?,
                None => p,
            };
            if p.get("name").and_then(Value::as_str) == Some(name) {
                let items = p.get("schema")?.get("items")?.get("enum")?.as_array()?;
                return Some(
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                );
            }
        }
        None
    }

    /// Validates a value against a schema; `strict` refuses undeclared properties.
    fn validate(
        &self,
        value: &Value,
        schema: &Value,
        at: &str,
        strict: bool,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 24 {
            return;
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            if value.is_null() {
                return;
            }
            let mut name = r.rsplit('/').next().unwrap_or(r).to_string();
            let mut r = r.to_string();
            if let Some(t) = value.get("@odata.type").and_then(Value::as_str) {
                let t = t.trim_start_matches('#').to_string();
                if self.schema(&t).is_some() {
                    r = format!("#/components/schemas/{t}");
                    name = t;
                }
            }
            if let Some(s) = self.resolve(&r) {
                if s.get("enum").is_some() && s.get("properties").is_none() {
                    self.validate(value, s, at, strict, errors, depth + 1);
                } else {
                    self.validate_object(value, &name, at, strict, errors, depth + 1);
                }
            }
            return;
        }
        if schema.get("allOf").is_some() {
            let mut props = BTreeMap::new();
            self.collect_properties(schema, &mut props, 0);
            self.validate_props(value, &props, "", at, strict, errors, depth + 1);
            return;
        }
        let nullable = schema
            .get("nullable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if value.is_null() {
            if !nullable && schema.get("type").and_then(Value::as_str) != Some("object") {
                errors.push(format!("{at}: null is not allowed"));
            }
            return;
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("string") => match value.as_str() {
                None => errors.push(format!("{at}: expected a string, got {value}")),
                Some(s) => {
                    if let Some(values) = schema.get("enum").and_then(Value::as_array)
                        && !values.iter().any(|v| v.as_str() == Some(s))
                    {
                        errors.push(format!("{at}: '{s}' is not one of the enumerated values"));
                    }
                    match schema.get("format").and_then(Value::as_str) {
                        Some("uuid") if !is_guid(s) => {
                            errors.push(format!("{at}: '{s}' is not a GUID"))
                        }
                        Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                            errors.push(format!("{at}: '{s}' is not an RFC 3339 date-time"))
                        }
                        _ => {}
                    }
                }
            },
            Some("boolean") if !value.is_boolean() => {
                errors.push(format!("{at}: expected a boolean, got {value}"))
            }
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                errors.push(format!("{at}: expected an integer, got {value}"))
            }
            Some("number") if !value.is_number() => {
                errors.push(format!("{at}: expected a number, got {value}"))
            }
            Some("array") => match value.as_array() {
                None => errors.push(format!("{at}: expected an array, got {value}")),
                Some(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (i, item) in items.iter().enumerate() {
                            self.validate(
                                item,
                                item_schema,
                                &format!("{at}[{i}]"),
                                strict,
                                errors,
                                depth + 1,
                            );
                        }
                    }
                }
            },
            Some("object") => {
                if !value.is_object() {
                    errors.push(format!("{at}: expected an object, got {value}"));
                } else if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    let props: BTreeMap<String, Value> = props.clone().into_iter().collect();
                    self.validate_props(value, &props, "", at, strict, errors, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn validate_object(
        &self,
        value: &Value,
        schema_name: &str,
        at: &str,
        strict: bool,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        let props = self.properties_shared(schema_name);
        if props.is_empty() {
            // No declared properties: a service-specific object (e.g. ODataErrors.InnerError).
            if !value.is_object() {
                errors.push(format!("{at}: expected an object, got {value}"));
            }
            return;
        }
        self.validate_props(value, &props, schema_name, at, strict, errors, depth);
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_props(
        &self,
        value: &Value,
        props: &BTreeMap<String, Value>,
        schema_name: &str,
        at: &str,
        strict: bool,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        let Some(obj) = value.as_object() else {
            errors.push(format!("{at}: expected an object, got {value}"));
            return;
        };
        for (k, v) in obj {
            if k.contains('@') || k.starts_with("extension_") {
                continue;
            }
            if k == "value"
                && !props.contains_key("value")
                && let Some(entity) = schema_name.strip_suffix("CollectionResponse")
            {
                // The subset's extraction dropped `value` from some collection responses
                // (x-subset-omittedNavigationProperties); check the items against the entity.
                let item = serde_json::json!({"type": "array", "items": {"$ref": format!("#/components/schemas/{entity}")}});
                self.validate(v, &item, &format!("{at}.{k}"), strict, errors, depth + 1);
                continue;
            }
            match props.get(k) {
                Some(s) => self.validate(v, s, &format!("{at}.{k}"), strict, errors, depth + 1),
                None => {
                    let newer = !strict
                        && NEWER_RESPONSE_PROPERTIES
                            .iter()
                            .any(|(s, p)| *s == schema_name && p == k);
                    if !newer {
                        let owner = if schema_name.is_empty() {
                            "the schema"
                        } else {
                            schema_name
                        };
                        errors.push(format!("{at}.{k}: property not declared by {owner}"));
                    }
                }
            }
        }
    }
}

/// Whether `s` is a GUID in the 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

/// Splits `https://host/v1.0/users?$x` or `/users?$x` or `users` into the path after the version
/// and the query string.
fn split_url(url: &str) -> (String, String) {
    let mut rest = url;
    if let Some(i) = rest.find("://") {
        let after = &rest[i + 3..];
        rest = after.find('/').map(|j| &after[j..]).unwrap_or("/");
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let mut path = path.to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    for prefix in ["/v1.0", "/beta"] {
        if path == prefix {
            path = "/".into();
        } else if let Some(p) = path.strip_prefix(&format!("{prefix}/")) {
            path = format!("/{p}");
        }
    }
    (path, query.to_string())
}

/// Maps Graph's URL shortcuts to the description's path spelling.
fn canonical_path(path: &str) -> String {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| match s {
            "delta" => "microsoft.graph.delta()".to_string(),
            "assignLicense" => "microsoft.graph.assignLicense".to_string(),
            "restore" => "microsoft.graph.restore".to_string(),
            "getByIds" => "microsoft.graph.getByIds".to_string(),
            other => other.to_string(),
        })
        .collect();
    format!("/{}", segs.join("/"))
}

/// Checks a request the Graph client is about to send: `method`, `url` (absolute, or relative
/// to the Graph root, with or without `/v1.0`), and the JSON body if any.
///
/// Returns `Err` with every problem found, one per line.
pub fn check_request(method: &str, url: &str, body: Option<&Value>) -> Result<(), String> {
    let mut errors = Vec::new();
    check_request_into(method, url, body, &mut errors, 0);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn check_request_into(
    method: &str,
    url: &str,
    body: Option<&Value>,
    errors: &mut Vec<String>,
    depth: usize,
) {
    let (path, query) = split_url(url);
    let method_up = method.to_ascii_uppercase();
    if path == "/$batch" {
        if depth > 0 {
            errors.push("$batch: nested batches are not allowed".into());
        } else if method_up != "POST" {
            errors.push(format!(
                "$batch: method {method_up} not allowed (POST only)"
            ));
        } else {
            check_batch(body, errors);
        }
        return;
    }
    let api = openapi();
    let canonical = canonical_path(&path);
    let Some(template) = api.match_path(&canonical) else {
        if let Some(ep) = documented_endpoint(&method_up, &path) {
            check_documented_request(ep, &query, body, errors);
        } else if documented_path(&path) {
            errors.push(format!(
                "{method_up} {path}: method not documented for this path {}",
                allow_list_note(None)
            ));
        } else {
            errors.push(format!(
                "{method_up} {path}: path not in the OpenAPI description"
            ));
        }
        return;
    };
    let Some(op) = api.operation(template, &method_up) else {
        errors.push(format!(
            "{method_up} {path}: method not described for {template}"
        ));
        return;
    };
    check_query(api, op, &query, &format!("{method_up} {path}"), errors);
    let schema = api.request_schema(op);
    match (schema, body) {
        (Some(_), None) if method_up != "DELETE" => {
            errors.push(format!("{method_up} {path}: request body required"))
        }
        (None, Some(b)) if !b.is_null() => {
            errors.push(format!("{method_up} {path}: no request body is described"))
        }
        (Some(schema), Some(b)) => {
            api.validate(b, &schema, "body", true, errors, 0);
            if method_up == "POST" {
                check_documented_required(template, b, errors);
            }
        }
        _ => {}
    }
}

fn check_query(api: &OpenApi, op: &Value, query: &str, at: &str, errors: &mut Vec<String>) {
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let key = k.to_ascii_lowercase();
        let param = match key.as_str() {
            "$select" => "$select",
            "$orderby" => "$orderby",
            "$expand" => "$expand",
            _ => continue,
        };
        let Some(allowed) = api.parameter_enum(op, param) else {
            if param == "$select" || param == "$expand" {
                continue;
            }
            errors.push(format!("{at}: {param} is not supported by this operation"));
            continue;
        };
        for item in v.split(',') {
            let item = item.trim();
            let base = item.split('(').next().unwrap_or(item).trim();
            if base.starts_with("extension_") || base == "*" {
                continue;
            }
            if !allowed
                .iter()
                .any(|a| a == base || a.eq_ignore_ascii_case(item))
            {
                errors.push(format!(
                    "{at}: {param} value '{item}' is not in the described enumeration"
                ));
            }
        }
    }
}

fn check_documented_required(template: &str, body: &Value, errors: &mut Vec<String>) {
    let required: &[&str] = match template {
        "/users" => &[
            "accountEnabled",
            "displayName",
            "mailNickname",
            "passwordProfile",
            "userPrincipalName",
        ],
        "/groups" => &[
            "displayName",
            "mailEnabled",
            "mailNickname",
            "securityEnabled",
        ],
        _ => &[],
    };
    for r in required {
        if body.get(r).is_none_or(Value::is_null) {
            errors.push(format!("body.{r}: required on create"));
        }
    }
    if template == "/users"
        && body
            .get("passwordProfile")
            .and_then(|p| p.get("password"))
            .is_none_or(Value::is_null)
    {
        errors.push("body.passwordProfile.password: required on create".into());
    }
    if template.ends_with("/$ref") && body.get("@odata.id").and_then(Value::as_str).is_none() {
        errors.push("body.@odata.id: required".into());
    }
}

fn check_batch(body: Option<&Value>, errors: &mut Vec<String>) {
    let Some(requests) = body
        .and_then(|b| b.get("requests"))
        .and_then(Value::as_array)
    else {
        errors.push("$batch: body must be an object with a 'requests' array".into());
        return;
    };
    if let Some(obj) = body.and_then(Value::as_object) {
        for k in obj.keys().filter(|k| *k != "requests") {
            errors.push(format!("$batch: unknown property '{k}'"));
        }
    }
    if requests.is_empty() || requests.len() > 20 {
        errors.push(format!(
            "$batch: {} requests (must be 1..=20)",
            requests.len()
        ));
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let at = format!("$batch.requests[{i}]");
        let Some(obj) = r.as_object() else {
            errors.push(format!("{at}: not an object"));
            continue;
        };
        for k in obj.keys() {
            if !["id", "method", "url", "headers", "body", "dependsOn"].contains(&k.as_str()) {
                errors.push(format!("{at}: unknown property '{k}'"));
            }
        }
        let id = obj.get("id").and_then(Value::as_str);
        match id {
            None => errors.push(format!("{at}: id (string) required")),
            Some(id) if ids.iter().any(|x| x.eq_ignore_ascii_case(id)) => {
                errors.push(format!("{at}: duplicate id '{id}'"))
            }
            Some(id) => ids.push(id.to_string()),
        }
        let method = obj.get("method").and_then(Value::as_str);
        let url = obj.get("url").and_then(Value::as_str);
        if method.is_none() {
            errors.push(format!("{at}: method required"));
        }
        if url.is_none() {
            errors.push(format!("{at}: url required"));
        }
        let inner_body = obj.get("body");
        if inner_body.is_some() {
            let has_ct = obj
                .get("headers")
                .and_then(Value::as_object)
                .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")));
            if !has_ct {
                errors.push(format!(
                    "{at}: headers with Content-Type required when a body is given"
                ));
            }
        }
        if let Some(deps) = obj.get("dependsOn") {
            match deps.as_array() {
                Some(list) => {
                    for d in list {
                        let known = d.as_str().is_some_and(|d| {
                            requests
                                .iter()
                                .any(|o| o.get("id").and_then(Value::as_str) == Some(d))
                        });
                        if !known {
                            errors
                                .push(format!("{at}: dependsOn {d} names no request of the batch"));
                        }
                    }
                }
                None => errors.push(format!("{at}: dependsOn must be an array")),
            }
        }
        if let (Some(m), Some(u)) = (method, url) {
            let mut inner = Vec::new();
            check_request_into(m, u, inner_body, &mut inner, 1);
            errors.extend(inner.into_iter().map(|e| format!("{at}: {e}")));
        }
    }
}

// ------------------------------------------------------------------ documented, not in subset

/// The JSON type of a property of a [`DocumentedEndpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropType {
    /// A string.
    String,
    /// A string or null.
    NullableString,
    /// A GUID string.
    Guid,
    /// An RFC 3339 date-time string or null.
    NullableDateTime,
    /// A boolean.
    Boolean,
    /// An array of strings.
    StringArray,
    /// One of the listed strings (an enumeration), or null.
    NullableOneOf(&'static [&'static str]),
    /// A JSON object (a complex type) or null.
    NullableObject,
}

/// One property a documented endpoint accepts (request body) or returns (response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocProp {
    /// Property name.
    pub name: &'static str,
    /// Its JSON type.
    pub ty: PropType,
    /// Required in a request body.
    pub required: bool,
}

const fn prop(name: &'static str, ty: PropType) -> DocProp {
    DocProp {
        name,
        ty,
        required: false,
    }
}

const fn required(name: &'static str, ty: PropType) -> DocProp {
    DocProp {
        name,
        ty,
        required: true,
    }
}

/// Which `$select` values an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// `$select` is not documented for the endpoint.
    None,
    /// Names of the response properties.
    Response,
    /// Properties of a schema of the OpenAPI description (e.g. role members are users).
    Schema(&'static str),
}

/// The shape of a successful response of a documented endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocResponse {
    /// One entity with (a subset of) these properties.
    Entity(&'static [DocProp]),
    /// `{"value": [...]}` of entities with (a subset of) these properties.
    Collection(&'static [DocProp]),
    /// `{"value": [...]}` of directory objects, each checked against the OpenAPI schema its
    /// `@odata.type` names.
    DirectoryObjects,
    /// 204 without a body.
    NoContent,
}

/// An endpoint documented by Microsoft for Graph v1.0 but missing from the OpenAPI subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentedEndpoint {
    /// Upper-case method.
    pub method: &'static str,
    /// Path template after `/v1.0`: `{name}` stands for one key, also inside a segment
    /// (`/applications(appId='{appId}')`).
    pub path: &'static str,
    /// The Microsoft Graph v1.0 reference page that documents it.
    pub doc: &'static str,
    /// Accepted `$select` values.
    pub select: Select,
    /// Whether `$filter` is documented.
    pub filter: bool,
    /// Request body properties (empty: no body).
    pub body: &'static [DocProp],
    /// Successful response.
    pub response: DocResponse,
}

const DIRECTORY_ROLE: &[DocProp] = &[
    prop("id", PropType::String),
    prop("deletedDateTime", PropType::NullableDateTime),
    prop("description", PropType::NullableString),
    prop("displayName", PropType::NullableString),
    prop("roleTemplateId", PropType::Guid),
];

/// The application properties the project reads (the documented type has many more).
const APPLICATION: &[DocProp] = &[
    prop("id", PropType::String),
    prop("appId", PropType::Guid),
    prop("deletedDateTime", PropType::NullableDateTime),
    prop("displayName", PropType::NullableString),
];

const EXTENSION_PROPERTY: &[DocProp] = &[
    prop("id", PropType::String),
    prop("deletedDateTime", PropType::NullableDateTime),
    prop("appDisplayName", PropType::NullableString),
    prop("dataType", PropType::String),
    prop("isMultiValued", PropType::Boolean),
    prop("isSyncedFromOnPremises", PropType::Boolean),
    prop("name", PropType::String),
    prop("targetObjects", PropType::StringArray),
];

const EXTENSION_PROPERTY_CREATE: &[DocProp] = &[
    required("name", PropType::String),
    required("dataType", PropType::String),
    required("targetObjects", PropType::StringArray),
    prop("isMultiValued", PropType::Boolean),
];

const AUTHENTICATION_PROTOCOL: PropType =
    PropType::NullableOneOf(&["wsFed", "saml", "unknownFutureValue"]);
const PROMPT_LOGIN_BEHAVIOR: PropType = PropType::NullableOneOf(&[
    "translateToFreshPasswordAuthentication",
    "nativeSupport",
    "disabled",
    "unknownFutureValue",
]);
const FEDERATED_IDP_MFA_BEHAVIOR: PropType = PropType::NullableOneOf(&[
    "acceptIfMfaDoneByFederatedIdp",
    "enforceMfaByFederatedIdp",
    "rejectMfaByFederatedIdp",
    "unknownFutureValue",
]);

/// `internalDomainFederation` as returned (the resource page's JSON representation); the
/// same properties can be given on create and update (domain-post-federationconfiguration,
/// internaldomainfederation-update), `id` included (the SDKs' create has an `-Id`).
const DOMAIN_FEDERATION: &[DocProp] = &[
    prop("id", PropType::String),
    prop("displayName", PropType::NullableString),
    prop("issuerUri", PropType::NullableString),
    prop("metadataExchangeUri", PropType::NullableString),
    prop("signingCertificate", PropType::NullableString),
    prop("passiveSignInUri", PropType::NullableString),
    prop("preferredAuthenticationProtocol", AUTHENTICATION_PROTOCOL),
    prop("activeSignInUri", PropType::NullableString),
    prop("signOutUri", PropType::NullableString),
    prop("promptLoginBehavior", PROMPT_LOGIN_BEHAVIOR),
    prop("isSignedAuthenticationRequestRequired", PropType::Boolean),
    prop("nextSigningCertificate", PropType::NullableString),
    prop("signingCertificateUpdateStatus", PropType::NullableObject),
    prop("federatedIdpMfaBehavior", FEDERATED_IDP_MFA_BEHAVIOR),
];

const fn get(
    path: &'static str,
    doc: &'static str,
    select: Select,
    filter: bool,
    response: DocResponse,
) -> DocumentedEndpoint {
    DocumentedEndpoint {
        method: "GET",
        path,
        doc,
        select,
        filter,
        body: &[],
        response,
    }
}

const DOC_ROLE_LIST: &str =
    "https://learn.microsoft.com/graph/api/directoryrole-list?view=graph-rest-1.0";
const DOC_ROLE_GET: &str =
    "https://learn.microsoft.com/graph/api/directoryrole-get?view=graph-rest-1.0";
const DOC_ROLE_MEMBERS: &str =
    "https://learn.microsoft.com/graph/api/directoryrole-list-members?view=graph-rest-1.0";
const DOC_APP_LIST: &str =
    "https://learn.microsoft.com/graph/api/application-list?view=graph-rest-1.0";
const DOC_APP_GET: &str =
    "https://learn.microsoft.com/graph/api/application-get?view=graph-rest-1.0";
const DOC_EXT_LIST: &str =
    "https://learn.microsoft.com/graph/api/application-list-extensionproperty?view=graph-rest-1.0";
const DOC_EXT_POST: &str =
    "https://learn.microsoft.com/graph/api/application-post-extensionproperty?view=graph-rest-1.0";
const DOC_EXT_GET: &str =
    "https://learn.microsoft.com/graph/api/extensionproperty-get?view=graph-rest-1.0";
const DOC_EXT_DELETE: &str =
    "https://learn.microsoft.com/graph/api/extensionproperty-delete?view=graph-rest-1.0";
const DOC_FED_LIST: &str =
    "https://learn.microsoft.com/graph/api/domain-list-federationconfiguration?view=graph-rest-1.0";
const DOC_FED_POST: &str =
    "https://learn.microsoft.com/graph/api/domain-post-federationconfiguration?view=graph-rest-1.0";
const DOC_FED_GET: &str =
    "https://learn.microsoft.com/graph/api/internaldomainfederation-get?view=graph-rest-1.0";
const DOC_FED_UPDATE: &str =
    "https://learn.microsoft.com/graph/api/internaldomainfederation-update?view=graph-rest-1.0";
const DOC_FED_DELETE: &str =
    "https://learn.microsoft.com/graph/api/internaldomainfederation-delete?view=graph-rest-1.0";
const FED_COLLECTION: &str = "/domains/{domain-id}/federationConfiguration";
const FED_ITEM: &str = "/domains/{domain-id}/federationConfiguration/{internalDomainFederation-id}";
const DOC_AVAILABLE_EXT: &str = "https://learn.microsoft.com/graph/api/directoryobject-getavailableextensionproperties?view=graph-rest-1.0";

/// Endpoints documented by Microsoft but missing from the OpenAPI subset, with the properties
/// they accept and return. Each application endpoint is listed for both the object id and the
/// `appId` alternate key, each role endpoint for both the object id and `roleTemplateId`.
///
/// Keep it small and sourced: add an entry only with the reference page that documents it.
pub const DOCUMENTED_NOT_IN_SUBSET: &[DocumentedEndpoint] = &[
    get(
        "/directoryRoles",
        DOC_ROLE_LIST,
        Select::Response,
        true,
        DocResponse::Collection(DIRECTORY_ROLE),
    ),
    get(
        "/directoryRoles/{directoryRole-id}",
        DOC_ROLE_GET,
        Select::Response,
        false,
        DocResponse::Entity(DIRECTORY_ROLE),
    ),
    get(
        "/directoryRoles(roleTemplateId='{roleTemplateId}')",
        DOC_ROLE_GET,
        Select::Response,
        false,
        DocResponse::Entity(DIRECTORY_ROLE),
    ),
    get(
        "/directoryRoles/{directoryRole-id}/members",
        DOC_ROLE_MEMBERS,
        Select::Schema("microsoft.graph.user"),
        false,
        DocResponse::DirectoryObjects,
    ),
    get(
        "/directoryRoles(roleTemplateId='{roleTemplateId}')/members",
        DOC_ROLE_MEMBERS,
        Select::Schema("microsoft.graph.user"),
        false,
        DocResponse::DirectoryObjects,
    ),
    get(
        "/applications",
        DOC_APP_LIST,
        Select::Response,
        true,
        DocResponse::Collection(APPLICATION),
    ),
    get(
        "/applications/{application-id}",
        DOC_APP_GET,
        Select::Response,
        false,
        DocResponse::Entity(APPLICATION),
    ),
    get(
        "/applications(appId='{appId}')",
        DOC_APP_GET,
        Select::Response,
        false,
        DocResponse::Entity(APPLICATION),
    ),
    get(
        "/applications/{application-id}/extensionProperties",
        DOC_EXT_LIST,
        Select::None,
        false,
        DocResponse::Collection(EXTENSION_PROPERTY),
    ),
    get(
        "/applications(appId='{appId}')/extensionProperties",
        DOC_EXT_LIST,
        Select::None,
        false,
        DocResponse::Collection(EXTENSION_PROPERTY),
    ),
    DocumentedEndpoint {
        method: "POST",
        path: "/applications/{application-id}/extensionProperties",
        doc: DOC_EXT_POST,
        select: Select::None,
        filter: false,
        body: EXTENSION_PROPERTY_CREATE,
        response: DocResponse::Entity(EXTENSION_PROPERTY),
    },
    DocumentedEndpoint {
        method: "POST",
        path: "/applications(appId='{appId}')/extensionProperties",
        doc: DOC_EXT_POST,
        select: Select::None,
        filter: false,
        body: EXTENSION_PROPERTY_CREATE,
        response: DocResponse::Entity(EXTENSION_PROPERTY),
    },
    get(
        "/applications/{application-id}/extensionProperties/{extensionProperty-id}",
        DOC_EXT_GET,
        Select::None,
        false,
        DocResponse::Entity(EXTENSION_PROPERTY),
    ),
    get(
        "/applications(appId='{appId}')/extensionProperties/{extensionProperty-id}",
        DOC_EXT_GET,
        Select::None,
        false,
        DocResponse::Entity(EXTENSION_PROPERTY),
    ),
    DocumentedEndpoint {
        method: "DELETE",
        path: "/applications/{application-id}/extensionProperties/{extensionProperty-id}",
        doc: DOC_EXT_DELETE,
        select: Select::None,
        filter: false,
        body: &[],
        response: DocResponse::NoContent,
    },
    DocumentedEndpoint {
        method: "DELETE",
        path: "/applications(appId='{appId}')/extensionProperties/{extensionProperty-id}",
        doc: DOC_EXT_DELETE,
        select: Select::None,
        filter: false,
        body: &[],
        response: DocResponse::NoContent,
    },
    // A domain's federation (the subset lists `federationConfiguration` only as an omitted
    // navigation property of domain). "This method does not support OData query
    // parameters" for list and get.
    get(
        FED_COLLECTION,
        DOC_FED_LIST,
        Select::None,
        false,
        DocResponse::Collection(DOMAIN_FEDERATION),
    ),
    DocumentedEndpoint {
        method: "POST",
        path: FED_COLLECTION,
        doc: DOC_FED_POST,
        select: Select::None,
        filter: false,
        body: DOMAIN_FEDERATION,
        response: DocResponse::Entity(DOMAIN_FEDERATION),
    },
    get(
        FED_ITEM,
        DOC_FED_GET,
        Select::None,
        false,
        DocResponse::Entity(DOMAIN_FEDERATION),
    ),
    DocumentedEndpoint {
        method: "PATCH",
        path: FED_ITEM,
        doc: DOC_FED_UPDATE,
        select: Select::None,
        filter: false,
        body: DOMAIN_FEDERATION,
        response: DocResponse::Entity(DOMAIN_FEDERATION),
    },
    DocumentedEndpoint {
        method: "DELETE",
        path: FED_ITEM,
        doc: DOC_FED_DELETE,
        select: Select::None,
        filter: false,
        body: &[],
        response: DocResponse::NoContent,
    },
    DocumentedEndpoint {
        method: "POST",
        path: "/directoryObjects/getAvailableExtensionProperties",
        doc: DOC_AVAILABLE_EXT,
        select: Select::None,
        filter: false,
        body: &[prop("isSyncedFromOnPremises", PropType::Boolean)],
        response: DocResponse::Collection(EXTENSION_PROPERTY),
    },
];

fn allow_list_note(ep: Option<&DocumentedEndpoint>) -> String {
    match ep {
        Some(ep) => format!(
            "(documented by Microsoft, not in the OpenAPI subset: {} {}; see {})",
            ep.method, ep.path, ep.doc
        ),
        None => "(documented by Microsoft, not in the OpenAPI subset)".into(),
    }
}

/// Whether one concrete segment matches a template segment (`{x}` = any non-empty text).
fn segment_matches(template: &str, concrete: &str) -> bool {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            let (prefix, suffix) = (&template[..open], &template[close + 1..]);
            concrete.len() > prefix.len() + suffix.len()
                && concrete.starts_with(prefix)
                && concrete.ends_with(suffix)
        }
        _ => template.eq_ignore_ascii_case(concrete),
    }
}

fn documented_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let c: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    t.len() == c.len() && t.iter().zip(&c).all(|(t, c)| segment_matches(t, c))
}

fn documented_path(path: &str) -> bool {
    let path = decode_key(path);
    DOCUMENTED_NOT_IN_SUBSET
        .iter()
        .any(|e| documented_matches(e.path, &path))
}

fn decode_key(path: &str) -> String {
    let mut out = path.to_string();
    for (enc, dec) in [("%27", "'"), ("%28", "("), ("%29", ")"), ("%3D", "=")] {
        out = out
            .replace(enc, dec)
            .replace(&enc.to_ascii_lowercase(), dec);
    }
    out
}

/// The allow-list entry for `method path` (path after `/v1.0`, without query), if any.
pub fn documented_endpoint(method: &str, path: &str) -> Option<&'static DocumentedEndpoint> {
    let path = decode_key(path);
    DOCUMENTED_NOT_IN_SUBSET
        .iter()
        .find(|e| e.method.eq_ignore_ascii_case(method) && documented_matches(e.path, &path))
}

fn response_props(ep: &DocumentedEndpoint) -> &'static [DocProp] {
    match ep.response {
        DocResponse::Entity(p) | DocResponse::Collection(p) => p,
        DocResponse::DirectoryObjects | DocResponse::NoContent => &[],
    }
}

fn check_documented_request(
    ep: &DocumentedEndpoint,
    query: &str,
    body: Option<&Value>,
    errors: &mut Vec<String>,
) {
    let at = format!("{} {}", ep.method, ep.path);
    let note = allow_list_note(Some(ep));
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.to_ascii_lowercase().as_str() {
            "$select" => {
                let allowed: Vec<String> = match ep.select {
                    Select::None => {
                        errors.push(format!("{at}: $select is not supported {note}"));
                        continue;
                    }
                    Select::Response => response_props(ep)
                        .iter()
                        .map(|p| p.name.to_string())
                        .collect(),
                    Select::Schema(s) => entity_property_names(s),
                };
                for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let ext =
                        item.starts_with("extension_") && matches!(ep.select, Select::Schema(_));
                    if !ext && !allowed.iter().any(|a| a.eq_ignore_ascii_case(item)) {
                        errors.push(format!(
                            "{at}: $select value '{item}' is not a documented property {note}"
                        ));
                    }
                }
            }
            "$filter" if !ep.filter => {
                errors.push(format!("{at}: $filter is not supported {note}"))
            }
            "$orderby" | "$expand" | "$search" => {
                errors.push(format!("{at}: {k} is not supported {note}"))
            }
            _ => {}
        }
    }
    if ep.body.is_empty() {
        if body.is_some_and(|b| !b.is_null()) {
            errors.push(format!("{at}: no request body is documented {note}"));
        }
        return;
    }
    let Some(obj) = body.and_then(Value::as_object) else {
        errors.push(format!("{at}: JSON object body required {note}"));
        return;
    };
    check_doc_props(obj, ep.body, "body", &note, errors);
    for p in ep.body.iter().filter(|p| p.required) {
        if obj.get(p.name).is_none_or(Value::is_null) {
            errors.push(format!("body.{}: required {note}", p.name));
        }
    }
}

fn check_doc_props(
    obj: &Map<String, Value>,
    props: &[DocProp],
    at: &str,
    note: &str,
    errors: &mut Vec<String>,
) {
    for (k, v) in obj {
        if k.contains('@') {
            continue;
        }
        let Some(p) = props.iter().find(|p| p.name == k) else {
            errors.push(format!("{at}.{k}: property not declared {note}"));
            continue;
        };
        let ok = match p.ty {
            PropType::String => v.is_string(),
            PropType::NullableString => v.is_string() || v.is_null(),
            PropType::Guid => v.as_str().is_some_and(is_guid),
            PropType::NullableDateTime => {
                v.is_null()
                    || v.as_str()
                        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok())
            }
            PropType::Boolean => v.is_boolean(),
            PropType::StringArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            PropType::NullableOneOf(values) => {
                v.is_null() || v.as_str().is_some_and(|s| values.contains(&s))
            }
            PropType::NullableObject => v.is_null() || v.is_object(),
        };
        if !ok {
            errors.push(format!("{at}.{k}: expected {:?}, got {v} {note}", p.ty));
        }
    }
}

fn check_documented_response(ep: &DocumentedEndpoint, body: &Value, errors: &mut Vec<String>) {
    let note = allow_list_note(Some(ep));
    let Some(obj) = body.as_object() else {
        errors.push(format!("body: expected an object {note}"));
        return;
    };
    match ep.response {
        DocResponse::NoContent => errors.push(format!("body: no response body documented {note}")),
        DocResponse::Entity(props) => check_doc_props(obj, props, "body", &note, errors),
        DocResponse::Collection(_) | DocResponse::DirectoryObjects => {
            for k in obj.keys() {
                if !k.starts_with("@odata.") && k != "value" {
                    errors.push(format!("body.{k}: property not declared {note}"));
                }
            }
            let Some(items) = obj.get("value").and_then(Value::as_array) else {
                errors.push(format!("body.value: array required {note}"));
                return;
            };
            for (i, item) in items.iter().enumerate() {
                let at = format!("body.value[{i}]");
                match (ep.response, item.as_object()) {
                    (_, None) => errors.push(format!("{at}: expected an object {note}")),
                    (DocResponse::Collection(props), Some(o)) => {
                        check_doc_props(o, props, &at, &note, errors)
                    }
                    (_, Some(_)) => {
                        let schema = serde_json::json!({"$ref": "#/components/schemas/microsoft.graph.directoryObject"});
                        openapi().validate(item, &schema, &at, false, errors, 0);
                    }
                }
            }
        }
    }
}

/// Checks a response the emulator (or Graph) returned for `method url` with `status`.
///
/// Errors must have the ODataError shape; successful JSON bodies are checked for property
/// names and types against the operation's response schema (collections item by item).
pub fn check_response(
    method: &str,
    url: &str,
    status: u16,
    body: Option<&Value>,
) -> Result<(), String> {
    let mut errors = Vec::new();
    let api = openapi();
    let (path, _) = split_url(url);
    let method_up = method.to_ascii_uppercase();
    if status >= 400 {
        match body {
            None => errors.push("error response without body".into()),
            Some(b) => {
                if let Some(schema) = api
                    .schema("microsoft.graph.ODataErrors.ODataError")
                    .cloned()
                {
                    api.validate(b, &schema, "body", false, &mut errors, 0);
                }
                let e = b.get("error");
                if e.and_then(|e| e.get("code"))
                    .and_then(Value::as_str)
                    .is_none()
                {
                    errors.push("body.error.code missing".into());
                }
                if e.and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .is_none()
                {
                    errors.push("body.error.message missing".into());
                }
                let inner = e.and_then(|e| e.get("innerError"));
                for k in ["date", "request-id"] {
                    if inner.and_then(|i| i.get(k)).is_none() {
                        errors.push(format!("body.error.innerError.{k} missing"));
                    }
                }
            }
        }
    } else if let Some(b) = body {
        if path.ends_with("/$count") {
            if !(b.is_u64() || b.is_i64()) {
                errors.push(format!(
                    "{method_up} {path}: a count must be an integer, got {b}"
                ));
            }
        } else if path == "/$batch" {
            for (i, r) in b
                .get("responses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                for k in ["id", "status"] {
                    if r.get(k).is_none() {
                        errors.push(format!("responses[{i}].{k} missing"));
                    }
                }
            }
        } else {
            let canonical = canonical_path(&path);
            let template = api.match_path(&canonical);
            let schema = template
                .and_then(|t| api.operation(t, &method_up))
                .and_then(|op| api.response_schema(op));
            let documented = if template.is_none() {
                documented_endpoint(&method_up, &path)
            } else {
                None
            };
            match (schema, documented) {
                (Some(s), _) => api.validate(b, &s, "body", false, &mut errors, 0),
                (None, Some(ep)) => check_documented_response(ep, b, &mut errors),
                (None, None) => {
                    errors.push(format!("{method_up} {path}: no response schema described"))
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Validates an entity body (e.g. the properties of a POST /users) against an entity schema,
/// refusing undeclared properties; annotations and directory extensions are skipped.
pub fn check_entity_value(schema: &str, value: &Value) -> Result<(), String> {
    let api = openapi();
    let mut errors = Vec::new();
    api.validate_object(value, schema, "body", true, &mut errors, 0);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Property names of an entity type of the description (`microsoft.graph.user`, ...).
pub fn entity_property_names(schema: &str) -> Vec<String> {
    openapi().properties(schema).into_keys().collect()
}

/// Helper for callers holding a JSON object map.
pub fn object_keys(v: &Map<String, Value>) -> Vec<&str> {
    v.keys().map(String::as_str).collect()
}
