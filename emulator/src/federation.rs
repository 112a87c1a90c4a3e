//! Domains' federation configurations: Graph's `internalDomainFederation` under
//! `/domains/{id}/federationConfiguration`, as Microsoft documents it
//! (<https://learn.microsoft.com/graph/api/resources/internaldomainfederation>):
//!
//! - `GET` (list) answers a collection of the one configuration, or `404 Not Found` when
//!   the domain has none (domain-list-federationconfiguration);
//! - `POST` creates it: `201 Created` with the object (domain-post-federationconfiguration).
//!   Only a verified custom domain can be federated — "You can't federate the default
//!   domain that is provided by Microsoft" (how-to-connect-fed-saml-idp) — and a domain has
//!   one configuration: a second create is a conflict;
//! - `GET`/`PATCH`/`DELETE` of `/{id}`: `200` with the object, `200 OK` with the updated
//!   object (internaldomainfederation-update), `204 No Content`.
//!
//! The domain's `authenticationType` follows: `Federated` while a configuration exists,
//! `Managed` after it is deleted — and creating a user in a federated domain without
//! `onPremisesImmutableId` is refused by the user checks in `store.rs`, which read it.
//! Signing certificates must be base64 of an X.509 certificate ("must be compatible with
//! the X509Certificate2 class").

use crate::config::DomainConfig;
use crate::errors::{GraphError, GraphResult};
use crate::graph::{Body, Ctx, GraphRequest, GraphResponse};
use base64::Engine;
use serde_json::{Map, Value, json};

/// The resource type, for errors and `@odata.type`.
const RESOURCE: &str = "internalDomainFederation";

/// String properties of the resource (nullable).
const STRINGS: &[&str] = &[
    "displayName",
    "issuerUri",
    "metadataExchangeUri",
    "signingCertificate",
    "passiveSignInUri",
    "activeSignInUri",
    "signOutUri",
    "nextSigningCertificate",
];

/// Enumerated properties and their documented values.
const ENUMS: &[(&str, &[&str])] = &[
    (
        "preferredAuthenticationProtocol",
        &["wsFed", "saml", "unknownFutureValue"],
    ),
    (
        "promptLoginBehavior",
        &[
            "translateToFreshPasswordAuthentication",
            "nativeSupport",
            "disabled",
            "unknownFutureValue",
        ],
    ),
    (
        "federatedIdpMfaBehavior",
        &[
            "acceptIfMfaDoneByFederatedIdp",
            "enforceMfaByFederatedIdp",
            "rejectMfaByFederatedIdp",
            "unknownFutureValue",
        ],
    ),
];

const BOOLEAN: &str = "isSignedAuthenticationRequestRequired";
const UPDATE_STATUS: &str = "signingCertificateUpdateStatus";

fn json(status: u16, v: Value) -> GraphResponse {
    GraphResponse {
        status,
        headers: vec![],
        body: Body::Json(v),
    }
}

fn only(method: &str, allowed: &[&str]) -> GraphResult<()> {
    if allowed.contains(&method) {
        Ok(())
    } else {
        Err(GraphError::method_not_allowed())
    }
}

fn domain_index(ctx: &Ctx<'_>, name: &str) -> GraphResult<usize> {
    ctx.dir
        .domains
        .iter()
        .position(|d| d.id.eq_ignore_ascii_case(name))
        .ok_or_else(|| GraphError::not_found(name))
}

fn body_object(req: &GraphRequest) -> GraphResult<&Map<String, Value>> {
    match &req.body {
        None => Err(GraphError::odata_bad_request(
            "Empty Payload. JSON content expected.",
        )),
        Some(Ok(Value::Object(m))) => Ok(m),
        Some(_) => Err(GraphError::odata_bad_request(
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

fn is_certificate(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .is_some_and(|der| {
            x509_parser::parse_x509_certificate(&der).is_ok_and(|(rest, _)| rest.is_empty())
        })
}

/// Checks a create or update body: known properties, their types and values.
fn check_body(body: &Map<String, Value>) -> GraphResult<()> {
    for (k, v) in body {
        if k == "@odata.type" {
            if v.as_str() != Some("#microsoft.graph.internalDomainFederation") {
                return Err(GraphError::odata_bad_request(format!(
                    "A type named '{}' could not be resolved by the model.",
                    v.as_str().unwrap_or_default().trim_start_matches('#')
                )));
            }
            continue;
        }
        let valid = if STRINGS.contains(&k.as_str()) {
            match v {
                Value::Null => true,
                Value::String(s) if k.ends_with("igningCertificate") => is_certificate(s),
                Value::String(_) => true,
                _ => false,
            }
        } else if let Some((_, values)) = ENUMS.iter().find(|(n, _)| *n == k) {
            v.is_null() || v.as_str().is_some_and(|s| values.contains(&s))
        } else if k == "id" {
            v.is_string()
        } else if k == BOOLEAN {
            v.is_boolean()
        } else if k == UPDATE_STATUS {
            v.is_object() || v.is_null()
        } else {
            return Err(GraphError::odata_bad_request(format!(
                "The property '{k}' does not exist on type 'microsoft.graph.{RESOURCE}'. Make sure to only use property names that are defined by the type or mark the type as open type."
            )));
        };
        if !valid {
            return Err(GraphError::invalid_value(k, RESOURCE));
        }
    }
    Ok(())
}

/// The stored configuration as Graph renders it: every property, `null` when unset.
fn render(ctx: &Ctx<'_>, domain: &str, config: &Map<String, Value>, entity: bool) -> Value {
    let mut out = Map::new();
    if entity {
        out.insert(
            "@odata.context".into(),
            Value::String(format!(
                "{}/$metadata#domains('{domain}')/federationConfiguration/$entity",
                ctx.root
            )),
        );
    }
    out.insert(
        "@odata.type".into(),
        Value::String(format!("#microsoft.graph.{RESOURCE}")),
    );
    out.insert(
        "id".into(),
        config.get("id").cloned().unwrap_or(Value::Null),
    );
    let names = STRINGS
        .iter()
        .chain(ENUMS.iter().map(|(n, _)| n))
        .chain([&BOOLEAN, &UPDATE_STATUS]);
    for n in names {
        out.insert(
            (*n).to_string(),
            config.get(*n).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

/// Stores `body` into `config`, noting a new signing certificate.
fn merge(config: &mut Map<String, Value>, body: &Map<String, Value>) {
    for (k, v) in body {
        if k.starts_with('@') || k == UPDATE_STATUS || k == "id" {
            continue;
        }
        config.insert(k.clone(), v.clone());
    }
    if body.get("signingCertificate").is_some_and(Value::is_string) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        config.insert(
            UPDATE_STATUS.into(),
            json!({"certificateUpdateResult": "Success", "lastRunDateTime": now}),
        );
    }
}

fn set_federated(d: &mut DomainConfig, config: Option<Map<String, Value>>) {
    d.authentication_type = if config.is_some() {
        "Federated".into()
    } else {
        "Managed".into()
    };
    d.federation_configuration = config;
}

/// `GET|POST /domains/{domain}/federationConfiguration`.
pub fn collection(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    domain: &str,
) -> GraphResult<GraphResponse> {
    only(&req.method, &["GET", "POST"])?;
    let i = domain_index(ctx, domain)?;
    let id = ctx.dir.domains[i].id.clone();
    if req.method == "GET" {
        let config = ctx.dir.domains[i]
            .federation_configuration
            .clone()
            .ok_or_else(|| GraphError::not_found(&format!("{id}/federationConfiguration")))?;
        return Ok(json(
            200,
            json!({
                "@odata.context": format!("{}/$metadata#domains('{id}')/federationConfiguration", ctx.root),
                "value": [render(ctx, &id, &config, false)],
            }),
        ));
    }
    let body = body_object(req)?;
    check_body(body)?;
    let d = &ctx.dir.domains[i];
    if !d.is_verified {
        return Err(GraphError::bad_request(format!(
            "Domain '{id}' is not verified; only verified domains can be federated."
        )));
    }
    if d.is_initial || id.to_ascii_lowercase().ends_with(".onmicrosoft.com") {
        return Err(GraphError::bad_request(format!(
            "Domain '{id}' is the initial domain provided by Microsoft and cannot be federated."
        )));
    }
    if d.federation_configuration.is_some() {
        return Err(GraphError::conflict("federationConfiguration"));
    }
    let mut config = Map::new();
    config.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    config.insert(BOOLEAN.into(), Value::Bool(false));
    merge(&mut config, body);
    let rendered = render(ctx, &id, &config, true);
    set_federated(&mut ctx.dir.domains[i], Some(config));
    Ok(json(201, rendered))
}

/// `GET|PATCH|DELETE /domains/{domain}/federationConfiguration/{id}`.
pub fn item(
    ctx: &mut Ctx<'_>,
    req: &GraphRequest,
    domain: &str,
    config_id: &str,
) -> GraphResult<GraphResponse> {
    only(&req.method, &["GET", "PATCH", "DELETE"])?;
    let i = domain_index(ctx, domain)?;
    let id = ctx.dir.domains[i].id.clone();
    let mut config = ctx.dir.domains[i]
        .federation_configuration
        .clone()
        .filter(|c| c.get("id").and_then(Value::as_str) == Some(config_id))
        .ok_or_else(|| GraphError::not_found(config_id))?;
    match req.method.as_str() {
        "GET" => Ok(json(200, render(ctx, &id, &config, true))),
        "PATCH" => {
            let body = body_object(req)?;
            check_body(body)?;
            if body
                .get("id")
                .is_some_and(|v| v.as_str() != Some(config_id))
            {
                return Err(GraphError::invalid_value("id", RESOURCE));
            }
            merge(&mut config, body);
            let rendered = render(ctx, &id, &config, true);
            set_federated(&mut ctx.dir.domains[i], Some(config));
            Ok(json(200, rendered))
        }
        _ => {
            set_federated(&mut ctx.dir.domains[i], None);
            Ok(GraphResponse {
                status: 204,
                headers: vec![],
                body: Body::Empty,
            })
        }
    }
}
