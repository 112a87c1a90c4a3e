//! What Entra holds: users and groups as Microsoft Graph returns them with `$select`,
//! plus the tenant facts the planner needs (verified domains, SKUs, directory roles).
//!
//! The JSON form of [`TargetSnapshot`] is the `--target-snapshot` file format, and the
//! Graph reader produces the same value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default app id (32 hex digits, no dashes) used to name directory extension
/// attributes when a snapshot does not say which app registered them.
pub const DEFAULT_EXTENSION_APP_ID: &str = "ad2e0000000000000000000000000000";

/// Names of the directory extension properties ad2entra stamps on what it owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionNames {
    /// Holds the source anchor on users and groups: the ownership marker.
    pub anchor: String,
    /// Set when an owned object left scope (RFC 3339); drives disable-then-delete.
    pub orphaned_at: String,
}

impl ExtensionNames {
    /// Graph names extension attributes `extension_{appIdWithoutDashes}_{name}`.
    pub fn for_app(app_id: &str) -> Self {
        let id: String = app_id.chars().filter(|c| *c != '-').collect();
        Self {
            anchor: format!("extension_{id}_ad2entraAnchor"),
            orphaned_at: format!("extension_{id}_ad2entraOrphanedAt"),
        }
    }
}

/// One user or group: its Graph `id` plus every property Graph returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetObject {
    pub id: String,
    /// Group members' object ids (groups only; users leave it empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(flatten)]
    pub props: Map<String, Value>,
}

impl TargetObject {
    /// A string property, if set.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Value::as_str)
    }

    /// `onPremisesSyncEnabled == true`: mastered by Entra Connect or Cloud Sync, and
    /// refused by Graph for writes. Never ours.
    pub fn is_dirsynced(&self) -> bool {
        self.props.get("onPremisesSyncEnabled") == Some(&Value::Bool(true))
    }

    /// Display name for messages: UPN, then displayName, then id.
    pub fn label(&self) -> &str {
        self.str("userPrincipalName")
            .or_else(|| self.str("displayName"))
            .unwrap_or(&self.id)
    }
}

/// A tenant domain from `GET /domains`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantDomain {
    pub id: String,
    #[serde(default)]
    pub is_verified: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_type: Option<String>,
}

/// A subscribed SKU from `GET /subscribedSkus` (part number → id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub sku_id: String,
    pub sku_part_number: String,
}

/// Everything read from Entra for one plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetSnapshot {
    /// Tenant id or primary domain, for the plan's provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The app whose directory extensions carry the ownership marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_app_id: Option<String>,
    /// Tenant domains. When absent the planner cannot check that UPN suffixes are
    /// verified and only rewrites non-routable ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<TenantDomain>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribed_skus: Vec<SubscribedSku>,
    #[serde(default)]
    pub users: Vec<TargetObject>,
    #[serde(default)]
    pub groups: Vec<TargetObject>,
    /// Soft-deleted users (`/directory/deletedItems/microsoft.graph.user`), restorable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_users: Vec<TargetObject>,
    /// Ids of users holding a directory role: never adopted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_role_members: Vec<String>,
}

impl TargetSnapshot {
    /// The extension attribute names for this tenant's app.
    pub fn extension_names(&self) -> ExtensionNames {
        ExtensionNames::for_app(
            self.extension_app_id
                .as_deref()
                .unwrap_or(DEFAULT_EXTENSION_APP_ID),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_graph_shaped_snapshot() {
        let s: TargetSnapshot = serde_json::from_str(
            r#"{"users":[{"id":"u1","userPrincipalName":"a@x.com","onPremisesSyncEnabled":true}],
                "groups":[{"id":"g1","displayName":"G","members":["u1"]}]}"#,
        )
        .unwrap();
        assert!(s.users[0].is_dirsynced());
        assert_eq!(s.groups[0].members, vec!["u1"]);
        assert_eq!(
            s.extension_names().anchor,
            "extension_ad2e0000000000000000000000000000_ad2entraAnchor"
        );
    }
}
