//! The tenant's directory synchronization, for `migrate-check`:
//! `GET /organization?$select=id,onPremisesSyncEnabled,onPremisesLastSyncDateTime`
//! (organization-list: Organization.Read.All, or Directory.Read.All).
//!
//! A 403 is not a failure: the report says the state is unknown and which permission reads
//! it, and the rest of the check goes on; any other error fails the read.

use super::GraphClient;
use super::error::GraphError;
use super::http::{GraphRequest, RetryMode, with_query};
use crate::migrate::TenantSync;
use serde_json::Value;

/// The request (pure).
pub fn organization_path() -> String {
    with_query(
        "/organization",
        &[(
            "$select",
            "id,onPremisesSyncEnabled,onPremisesLastSyncDateTime".to_string(),
        )],
    )
}

/// The state one organization shows (pure).
pub fn tenant_sync_of(org: &Value) -> TenantSync {
    let last_sync = org
        .get("onPremisesLastSyncDateTime")
        .and_then(Value::as_str)
        .map(str::to_string);
    match org.get("onPremisesSyncEnabled").and_then(Value::as_bool) {
        Some(true) => TenantSync::On { last_sync },
        Some(false) => TenantSync::Off { last_sync },
        None => TenantSync::NeverSynced,
    }
}

/// Reads the tenant's directory synchronization state.
pub async fn read_tenant_sync(client: &GraphClient) -> Result<TenantSync, GraphError> {
    let path = organization_path();
    let resp = match client
        .execute(&GraphRequest::get(&path), RetryMode::Idempotent)
        .await
    {
        Ok(r) => r,
        Err(e) if e.status() == Some(403) => {
            return Ok(TenantSync::Unknown {
                reason: format!(
                    "GET /organization was refused (403 {}); it needs Organization.Read.All",
                    e.code().unwrap_or_default()
                ),
            });
        }
        Err(e) => return Err(e),
    };
    let org = resp
        .body
        .get("value")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
        .ok_or_else(|| GraphError::Decode {
            method: "GET".into(),
            path: "/organization".into(),
            message: "no organization in the answer".into(),
        })?;
    Ok(tenant_sync_of(org))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states() {
        assert_eq!(
            organization_path(),
            "/organization?$select=id,onPremisesSyncEnabled,onPremisesLastSyncDateTime"
        );
        assert_eq!(
            tenant_sync_of(
                &json!({"onPremisesSyncEnabled": true, "onPremisesLastSyncDateTime": "2026-01-01T00:00:00Z"})
            ),
            TenantSync::On {
                last_sync: Some("2026-01-01T00:00:00Z".into())
            }
        );
        assert_eq!(
            tenant_sync_of(&json!({"onPremisesSyncEnabled": false})),
            TenantSync::Off { last_sync: None }
        );
        assert_eq!(
            tenant_sync_of(&json!({"onPremisesSyncEnabled": null})),
            TenantSync::NeverSynced
        );
    }
}
