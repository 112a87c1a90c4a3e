//! What Entra holds: users and groups as Microsoft Graph returns them with `$select`,
//! plus the tenant facts the planner needs (verified domains, SKUs, directory roles).
//!
//! The JSON form of [`TargetSnapshot`] is the `--target-snapshot` file format, and the
//! Graph reader produces the same value.

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

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
///
/// Deserialized by hand rather than with `#[serde(flatten)]`, which buffers each object
/// before splitting it, and so that property names are shared (see [`Props`]). The JSON
/// form is the same: `id`, `members`, then the properties at the top level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetObject {
    pub id: String,
    /// Group members' object ids (groups only; users leave it empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(flatten)]
    pub props: Props,
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

impl<'de> Deserialize<'de> for TargetObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = TargetObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Graph object with an `id`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TargetObject, A::Error> {
                let mut id = None;
                let mut members = None;
                let mut props = Props::default();
                while let Some(key) = map.next_key_seed(PropName)? {
                    match &*key {
                        "id" if id.is_some() => return Err(de::Error::duplicate_field("id")),
                        "id" => id = Some(map.next_value()?),
                        "members" if members.is_some() => {
                            return Err(de::Error::duplicate_field("members"));
                        }
                        "members" => members = Some(map.next_value()?),
                        _ => props.insert_shared(key, map.next_value()?),
                    }
                }
                Ok(TargetObject {
                    id: id.ok_or_else(|| de::Error::missing_field("id"))?,
                    members: members.unwrap_or_default(),
                    props,
                })
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// Above this many distinct property names, names are no longer shared, so hostile
/// input cannot grow the table without bound (Graph has a few hundred properties).
const INTERN_LIMIT: usize = 10_000;

/// One shared copy of each property name (per thread: snapshots are read on one).
fn intern(name: &str) -> Arc<str> {
    thread_local! {
        static NAMES: RefCell<HashSet<Arc<str>>> = RefCell::default();
    }
    NAMES.with_borrow_mut(|names| {
        if let Some(n) = names.get(name) {
            return Arc::clone(n);
        }
        let n: Arc<str> = Arc::from(name);
        if names.len() < INTERN_LIMIT {
            names.insert(Arc::clone(&n));
        }
        n
    })
}

/// Deserializes an object key straight into a shared name, without a `String` per key.
struct PropName;

impl<'de> DeserializeSeed<'de> for PropName {
    type Value = Arc<str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Arc<str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for PropName {
    type Value = Arc<str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a property name")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Arc<str>, E> {
        Ok(intern(s))
    }
}

/// The properties of a [`TargetObject`], in the order Graph returned them.
///
/// A snapshot holds about twenty properties for each of 100,000 users. As a
/// `serde_json::Map` each had its own `String` name and hash slot (about 5 KB a user);
/// here names are shared among objects and found by a linear scan, as fast as hashing
/// for twenty entries. Behaves like `serde_json::Map` with `preserve_order`: `insert`
/// keeps an existing name's position, `remove` moves the last entry into the gap, and
/// equality ignores order.
#[derive(Clone, Debug, Default)]
pub struct Props(Vec<(Arc<str>, Value)>);

impl Props {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(k, _)| &**k == name)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| &**k == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets a property, returning the value it replaces.
    pub fn insert(&mut self, name: &str, value: Value) -> Option<Value> {
        match self.position(name) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((intern(name), value));
                None
            }
        }
    }

    fn insert_shared(&mut self, name: Arc<str>, value: Value) {
        match self.position(&name) {
            Some(i) => self.0[i].1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Removes a property; the last one takes its place (like `Map::remove`).
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).map(|i| self.0.swap_remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }
}

impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl std::ops::Index<&str> for Props {
    type Output = Value;
    /// Panics when the property is absent, like `Map`'s index.
    fn index(&self, name: &str) -> &Value {
        self.get(name)
            .unwrap_or_else(|| panic!("no property `{name}`"))
    }
}

impl From<Map<String, Value>> for Props {
    fn from(m: Map<String, Value>) -> Self {
        m.into_iter().collect()
    }
}

impl<K: AsRef<str>> FromIterator<(K, Value)> for Props {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut p = Props::default();
        for (k, v) in iter {
            p.insert(k.as_ref(), v);
        }
        p
    }
}

impl Serialize for Props {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Props {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PropsVisitor;
        impl<'de> Visitor<'de> for PropsVisitor {
            type Value = Props;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Props, A::Error> {
                let mut props = Props::default();
                while let Some(key) = map.next_key_seed(PropName)? {
                    props.insert_shared(key, map.next_value()?);
                }
                Ok(props)
            }
        }
        d.deserialize_map(PropsVisitor)
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
    /// Seats bought (`prepaidUnits.enabled`), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepaid_units: Option<PrepaidUnits>,
    /// Seats in use, when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_units: Option<i64>,
}

/// `prepaidUnits` of a subscribed SKU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrepaidUnits {
    #[serde(default)]
    pub enabled: i64,
}

impl SubscribedSku {
    /// Seats still free, when the snapshot says how many were bought and used.
    pub fn seats_left(&self) -> Option<i64> {
        Some(self.prepaid_units.as_ref()?.enabled - self.consumed_units?)
    }
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
    /// Federation configurations (`internalDomainFederation`) of the domains the policy's
    /// `federation:` names, by lower-case domain name; `null` when the domain has none.
    /// A domain missing from the map was not read, and its federation is not planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<std::collections::BTreeMap<String, Option<TargetObject>>>,
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
