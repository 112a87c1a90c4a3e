//! A domain's federation configuration through Graph (`internalDomainFederation`):
//! `GET|POST /domains/{id}/federationConfiguration` and
//! `GET|PATCH|DELETE /domains/{id}/federationConfiguration/{id}`.
//!
//! Graph answers the list with `404 Not Found` when the domain has no configuration
//! ("If there isn't an internalDomainFederation object in the tenant, this API returns a
//! 404 Not Found response code", domain-list-federationconfiguration), so a 404 reads as
//! "none"; whether the domain itself exists is known from `GET /domains`.

use super::GraphClient;
use super::batch::BatchItem;
use super::error::GraphError;
use super::http::{GraphRequest, RetryMode};
use crate::model::TargetObject;
use serde_json::Value;
use std::collections::BTreeMap;

/// `/domains/{domain}/federationConfiguration` (domain names need no escaping).
pub fn collection_path(domain: &str) -> String {
    format!("/domains/{domain}/federationConfiguration")
}

/// `/domains/{domain}/federationConfiguration/{id}`.
pub fn item_path(domain: &str, id: &str) -> String {
    format!("{}/{id}", collection_path(domain))
}

fn decode_err(path: &str, message: impl Into<String>) -> GraphError {
    GraphError::Decode {
        method: "GET".into(),
        path: path.to_string(),
        message: message.into(),
    }
}

/// The configuration in a list answer (Graph returns a collection of one), if any.
pub fn configuration_of(path: &str, body: &Value) -> Result<Option<TargetObject>, GraphError> {
    let items = body
        .get("value")
        .and_then(Value::as_array)
        .ok_or_else(|| decode_err(path, "page without value[]"))?;
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let mut o: TargetObject = serde_json::from_value(first.clone())
        .map_err(|e| decode_err(path, format!("federation configuration: {e}")))?;
    let odata: Vec<String> = o
        .props
        .keys()
        .filter(|k| k.starts_with("@odata"))
        .map(str::to_string)
        .collect();
    for k in odata {
        o.props.remove(&k);
    }
    Ok(Some(o))
}

/// One domain's configuration now (`None`: the domain has none).
pub async fn get_federation(
    client: &GraphClient,
    domain: &str,
) -> Result<Option<TargetObject>, GraphError> {
    let path = collection_path(domain);
    match client
        .execute(&GraphRequest::get(path.clone()), RetryMode::Idempotent)
        .await
    {
        Ok(r) => configuration_of(&path, &r.body),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The configurations of `domains` (in one `$batch` per 20 domains), by lower-case domain
/// name; `None` when no domain is named, so snapshots of policies without `federation:`
/// stay as they were. Any failure other than "none" fails the whole read.
pub async fn read_federation(
    client: &GraphClient,
    domains: &[String],
) -> Result<Option<BTreeMap<String, Option<TargetObject>>>, GraphError> {
    if domains.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    let items: Vec<BatchItem> = names
        .iter()
        .enumerate()
        .map(|(i, d)| BatchItem::get(i.to_string(), collection_path(d)))
        .collect();
    let responses = client.batch_get_all(items).await?;
    let mut out = BTreeMap::new();
    for (i, d) in names.iter().enumerate() {
        let path = collection_path(d);
        let r = responses
            .get(&i.to_string())
            .ok_or_else(|| decode_err(&path, "missing batch response"))?;
        let config = match r.status {
            404 => None,
            _ if r.is_success() => configuration_of(&path, &r.body)?,
            status => {
                let (code, message) = r.error();
                return Err(GraphError::Api {
                    method: "GET".into(),
                    path,
                    status,
                    code,
                    message,
                    retry_after: None,
                });
            }
        };
        out.insert(d.clone(), config);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_list_answer_holds_one_configuration() {
        let body = json!({"@odata.context": "x", "value": [
            {"@odata.type": "#microsoft.graph.internalDomainFederation", "id": "f1", "issuerUri": "urn:x"}
        ]});
        let c = configuration_of("/p", &body).unwrap().unwrap();
        assert_eq!(c.id, "f1");
        assert_eq!(c.props.len(), 1);
        assert_eq!(configuration_of("/p", &json!({"value": []})).unwrap(), None);
        assert!(configuration_of("/p", &json!({})).is_err());
        assert_eq!(
            item_path("corp.example.com", "f1"),
            "/domains/corp.example.com/federationConfiguration/f1"
        );
    }
}
