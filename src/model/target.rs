//! What Entra holds: users and groups as Microsoft Graph returns them with `$select`,
//! plus the tenant facts the planner needs (verified domains, SKUs, directory roles).
//!
//! The JSON form of [`TargetSnapshot`] is the `--target-snapshot` file format, and the
//! Graph reader produces the same value.

pub use super::props::{PropRef, Props};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

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
            anchor: format!("extension_{id}_{ANCHOR_SHORT_NAME}"),
            orphaned_at: format!("extension_{id}_ad2entraOrphanedAt"),
        }
    }
}

/// Where the anchor extension's app id came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtensionAppSource {
    /// `target.extensionAppId` in the policy.
    Policy,
    /// `AD2ENTRA_EXTENSION_APP_ID`.
    Environment,
    /// The client id ad2entra runs as (`AZURE_CLIENT_ID`).
    ClientId,
}

/// Why the anchor extension's app cannot be decided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionAppError {
    #[error(
        "the policy pins target.extensionAppId {policy} but AD2ENTRA_EXTENSION_APP_ID is {env}: \
         ownership would be read through another app's anchor extension. Unset \
         AD2ENTRA_EXTENSION_APP_ID (the policy decides) or make them equal"
    )]
    Mismatch { policy: String, env: String },
    #[error("`{0}` is not an application (client) id (a GUID)")]
    Invalid(String),
    #[error(
        "no app id names the anchor extension: set target.extensionAppId in the policy (or \
         AD2ENTRA_EXTENSION_APP_ID, or AZURE_CLIENT_ID)"
    )]
    Missing,
}

/// Whether `s` is an application (client) id: a GUID, with or without dashes.
pub fn is_app_id(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashed_ok = !s.contains('-')
        || (s.len() == 36 && [8, 13, 18, 23].iter().all(|i| s.as_bytes()[*i] == b'-'));
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) && dashed_ok
}

/// Whether two app ids are the same app (case and dashes aside).
pub fn same_app(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    norm(a) == norm(b)
}

/// The app whose anchor extension marks ownership. The policy's `target.extensionAppId`
/// wins, so every app registration that plans or applies (a read-only one in CI, the
/// reconciler's) sees the same owned objects; `AD2ENTRA_EXTENSION_APP_ID` may only repeat
/// it. Without a pin: the environment variable, else the client id.
pub fn resolve_extension_app(
    policy: Option<&str>,
    env: Option<&str>,
    client_id: Option<&str>,
) -> Result<(String, ExtensionAppSource), ExtensionAppError> {
    fn nonempty(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    for v in [nonempty(policy), nonempty(env), nonempty(client_id)]
        .into_iter()
        .flatten()
    {
        if !is_app_id(v) {
            return Err(ExtensionAppError::Invalid(v.to_string()));
        }
    }
    match (nonempty(policy), nonempty(env), nonempty(client_id)) {
        (Some(p), Some(e), _) if !same_app(p, e) => Err(ExtensionAppError::Mismatch {
            policy: p.to_string(),
            env: e.to_string(),
        }),
        (Some(p), _, _) => Ok((p.to_string(), ExtensionAppSource::Policy)),
        (None, Some(e), _) => Ok((e.to_string(), ExtensionAppSource::Environment)),
        (None, None, Some(c)) => Ok((c.to_string(), ExtensionAppSource::ClientId)),
        (None, None, None) => Err(ExtensionAppError::Missing),
    }
}

/// The policy line that pins the anchor extension's app.
pub fn policy_pin_line(app_id: &str) -> String {
    format!("target:\n  extensionAppId: \"{app_id}\"")
}

/// One user or group: its Graph `id` plus every property Graph returned.
///
/// Deserialized by hand rather than with `#[serde(flatten)]`, which buffers each object
/// before splitting it, and straight into the lean [`Props`]. The JSON form is the
/// same: `id`, `members`, then the properties at the top level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetObject {
    pub id: String,
    /// Group members' object ids (groups only; users leave it empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<super::ObjectId>,
    #[serde(flatten)]
    pub props: Props,
}

impl TargetObject {
    /// A string property, if set.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.props.str(name)
    }

    /// `onPremisesSyncEnabled == true`: mastered by Entra Connect or Cloud Sync, and
    /// refused by Graph for writes. Never ours.
    pub fn is_dirsynced(&self) -> bool {
        self.props
            .get("onPremisesSyncEnabled")
            .and_then(PropRef::as_bool)
            == Some(true)
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
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TargetObject, A::Error> {
                let mut id = None;
                let mut members = None;
                let props = super::props::read_map(map, |key, map: &mut A| match key {
                    "id" if id.is_some() => Err(de::Error::duplicate_field("id")),
                    "id" => {
                        id = Some(map.next_value()?);
                        Ok(true)
                    }
                    "members" if members.is_some() => Err(de::Error::duplicate_field("members")),
                    "members" => {
                        members = Some(map.next_value()?);
                        Ok(true)
                    }
                    _ => Ok(false),
                })?;
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

/// An input a safety rule depends on (who holds a directory role, which users are
/// soft-deleted, which SKUs the tenant has, whether the anchor extension is registered,
/// which other ad2entra anchors exist). Each is explicit in a [`TargetSnapshot`]: read, or
/// not readable with the reason, so that a refused read can never pass for "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SafetyInput {
    /// `GET /directoryRoles` and each role's members: role holders are never adopted.
    DirectoryRoles,
    /// `GET /directory/deletedItems/microsoft.graph.user`: owned users are restored, not
    /// created twice.
    DeletedUsers,
    /// `GET /subscribedSkus`: part numbers to SKU ids, and free seats.
    SubscribedSkus,
    /// The app's extension properties: whether the anchor extension exists.
    AnchorExtension,
    /// Every directory extension in the tenant: other ad2entra anchors.
    OtherAnchorExtensions,
}

impl SafetyInput {
    /// The Graph read, for messages.
    pub fn read(self) -> &'static str {
        match self {
            SafetyInput::DirectoryRoles => "GET /directoryRoles (and each role's members)",
            SafetyInput::DeletedUsers => "GET /directory/deletedItems/microsoft.graph.user",
            SafetyInput::SubscribedSkus => "GET /subscribedSkus",
            SafetyInput::AnchorExtension => "GET /applications(appId='…')/extensionProperties",
            SafetyInput::OtherAnchorExtensions => {
                "the tenant's directory extensions (POST /directoryObjects/getAvailableExtensionProperties, GET /applications)"
            }
        }
    }

    /// The application permissions that grant the read, least privileged first (from each
    /// endpoint's Microsoft Graph reference page).
    pub fn permission(self) -> &'static str {
        match self {
            SafetyInput::DirectoryRoles => "RoleManagement.Read.Directory (or Directory.Read.All)",
            SafetyInput::DeletedUsers => "User.Read.All",
            SafetyInput::SubscribedSkus => {
                "LicenseAssignment.Read.All (or Organization.Read.All, Directory.Read.All)"
            }
            SafetyInput::AnchorExtension => "Application.Read.All (or Directory.Read.All)",
            SafetyInput::OtherAnchorExtensions => {
                "Directory.Read.All (getAvailableExtensionProperties) or Application.Read.All (every app registration's extensions)"
            }
        }
    }
}

/// Why a safety input is not in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    pub input: SafetyInput,
    /// The HTTP status Graph answered (403, or a documented 404); absent when the input
    /// was not read at all (not needed by the policy, or missing from a snapshot file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Graph's error code (`Authorization_RequestDenied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Unreadable {
    /// Graph refused the read.
    pub fn refused(input: SafetyInput, status: u16, code: impl Into<String>) -> Self {
        Unreadable {
            input,
            status: Some(status),
            code: Some(code.into()),
        }
    }

    /// The read was not made.
    pub fn not_read(input: SafetyInput) -> Self {
        Unreadable {
            input,
            status: None,
            code: None,
        }
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let read = self.input.read();
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, "{read} was refused ({s} {c})")?,
            (Some(s), None) => write!(f, "{read} was refused ({s})")?,
            (None, _) => write!(f, "{read} was not read")?,
        }
        write!(
            f,
            "; it needs the application permission {}",
            self.input.permission()
        )
    }
}

/// A safety input: what Graph returned, or why it could not be read.
///
/// JSON: the value itself when read, `{"unreadable": {...}}` when not.
#[derive(Clone, Debug, PartialEq)]
pub enum Readable<T> {
    Read(T),
    Unreadable(Unreadable),
}

impl<T> Readable<T> {
    pub fn read(&self) -> Option<&T> {
        match self {
            Readable::Read(v) => Some(v),
            Readable::Unreadable(_) => None,
        }
    }

    pub fn read_mut(&mut self) -> Option<&mut T> {
        match self {
            Readable::Read(v) => Some(v),
            Readable::Unreadable(_) => None,
        }
    }

    pub fn unreadable(&self) -> Option<&Unreadable> {
        match self {
            Readable::Read(_) => None,
            Readable::Unreadable(u) => Some(u),
        }
    }
}

impl<T: Default> Default for Readable<T> {
    fn default() -> Self {
        Readable::Read(T::default())
    }
}

impl<T: Serialize> Serialize for Readable<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wrapped<'a> {
            unreadable: &'a Unreadable,
        }
        match self {
            Readable::Read(v) => v.serialize(s),
            Readable::Unreadable(u) => Wrapped { unreadable: u }.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Readable<T> {
    /// Through a `Value`, so that an error inside the read value keeps its own message
    /// (the safety inputs are small: role holders, soft-deleted users, SKUs).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::Object(mut m) if m.len() == 1 && m.contains_key("unreadable") => {
                let u = m.remove("unreadable").unwrap_or_default();
                serde_json::from_value(u)
                    .map(Readable::Unreadable)
                    .map_err(|e| de::Error::custom(format!("unreadable: {e}")))
            }
            v => serde_json::from_value(v)
                .map(Readable::Read)
                .map_err(de::Error::custom),
        }
    }
}

/// An ad2entra anchor extension of another app registration, and how many objects carry it:
/// "another ad2entra instance, or an earlier app registration".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForeignAnchor {
    /// `extension_{appId}_ad2entraAnchor`.
    pub name: String,
    /// The app id, as a GUID with dashes (what `target.extensionAppId` takes).
    pub app_id: String,
    /// The registering app's display name, when Graph says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_display_name: Option<String>,
    /// Users carrying it.
    pub users: u64,
    /// Groups carrying it.
    pub groups: u64,
    /// A few of them (UPN or display name), for the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl ForeignAnchor {
    /// Whether any object carries it.
    pub fn stamps_objects(&self) -> bool {
        self.users + self.groups > 0
    }
}

/// The app id of an anchor extension name, when it is an ad2entra anchor of any app:
/// `extension_{32 hex}_ad2entraAnchor` → the GUID with dashes.
pub fn anchor_extension_app(name: &str) -> Option<String> {
    let hex = name
        .strip_prefix("extension_")?
        .strip_suffix(&format!("_{ANCHOR_SHORT_NAME}"))?;
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Short name of the ownership marker's directory extension.
pub const ANCHOR_SHORT_NAME: &str = "ad2entraAnchor";

fn roles_not_read() -> Readable<Vec<String>> {
    Readable::Unreadable(Unreadable::not_read(SafetyInput::DirectoryRoles))
}

fn registered() -> Readable<bool> {
    Readable::Read(true)
}

fn is_read_empty<T>(v: &Readable<Vec<T>>) -> bool {
    v.read().is_some_and(Vec::is_empty)
}

fn is_registered(v: &Readable<bool>) -> bool {
    *v == Readable::Read(true)
}

/// Everything read from Entra for one plan.
///
/// Safety inputs are [`Readable`]. A snapshot file that leaves one out means what older
/// snapshots meant: no soft-deleted users, no SKUs, the anchor extension registered and no
/// other ad2entra anchors (older readers failed as a whole otherwise); only directory-role
/// holders, which older readers silently left out when they could not read them, count as
/// not read, so adoption adopts nothing until they are known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    #[serde(default, skip_serializing_if = "is_read_empty")]
    pub subscribed_skus: Readable<Vec<SubscribedSku>>,
    #[serde(default)]
    pub users: Vec<TargetObject>,
    #[serde(default)]
    pub groups: Vec<TargetObject>,
    /// Soft-deleted users (`/directory/deletedItems/microsoft.graph.user`), restorable.
    #[serde(default, skip_serializing_if = "is_read_empty")]
    pub deleted_users: Readable<Vec<TargetObject>>,
    /// Ids of users holding a directory role: never adopted.
    #[serde(default = "roles_not_read")]
    pub directory_role_members: Readable<Vec<String>>,
    /// Whether the anchor extension of `extension_app_id` is registered in the tenant:
    /// without it no object can be recognised as owned.
    #[serde(
        default = "registered",
        skip_serializing_if = "is_registered",
        rename = "anchorExtensionRegistered"
    )]
    pub anchor_registered: Readable<bool>,
    /// ad2entra anchor extensions of other app registrations in the tenant.
    #[serde(
        default,
        skip_serializing_if = "is_read_empty",
        rename = "otherAnchorExtensions"
    )]
    pub other_anchors: Readable<Vec<ForeignAnchor>>,
    /// Federation configurations (`internalDomainFederation`) of the domains the policy's
    /// `federation:` names, by lower-case domain name; `null` when the domain has none.
    /// A domain missing from the map was not read, and its federation is not planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<std::collections::BTreeMap<String, Option<TargetObject>>>,
}

impl Default for TargetSnapshot {
    /// An empty tenant whose safety inputs were all read (directory roles included: none).
    fn default() -> Self {
        TargetSnapshot {
            tenant: None,
            extension_app_id: None,
            domains: None,
            subscribed_skus: Readable::default(),
            users: Vec::new(),
            groups: Vec::new(),
            deleted_users: Readable::default(),
            directory_role_members: Readable::default(),
            anchor_registered: registered(),
            other_anchors: Readable::default(),
            federation: None,
        }
    }
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

    #[test]
    fn the_policy_pin_wins_and_a_different_environment_pin_is_an_error() {
        let a = "2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f";
        let b = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
        assert_eq!(
            resolve_extension_app(Some(a), None, Some(b)),
            Ok((a.to_string(), ExtensionAppSource::Policy))
        );
        // The same app, written without dashes, is no mismatch.
        assert_eq!(
            resolve_extension_app(Some(a), Some(&a.replace('-', "").to_uppercase()), Some(b))
                .map(|r| r.1),
            Ok(ExtensionAppSource::Policy)
        );
        let e = resolve_extension_app(Some(a), Some(b), Some(b)).unwrap_err();
        assert!(matches!(e, ExtensionAppError::Mismatch { .. }), "{e}");
        assert!(
            e.to_string().contains(a) && e.to_string().contains(b),
            "{e}"
        );
        assert_eq!(
            resolve_extension_app(None, Some(b), Some(a)),
            Ok((b.to_string(), ExtensionAppSource::Environment))
        );
        assert_eq!(
            resolve_extension_app(None, Some(" "), Some(a)),
            Ok((a.to_string(), ExtensionAppSource::ClientId))
        );
        assert_eq!(
            resolve_extension_app(None, None, None),
            Err(ExtensionAppError::Missing)
        );
        assert!(matches!(
            resolve_extension_app(None, Some("x') or 1 eq 1"), None),
            Err(ExtensionAppError::Invalid(_))
        ));
    }

    #[test]
    fn app_ids_and_anchor_extension_names() {
        assert!(is_app_id("2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f"));
        assert!(is_app_id("2b6f1c3d8e4a4f5b9c7d1a2b3c4d5e6f"));
        assert!(!is_app_id("2b6f1c3d-8e4a4f5b-9c7d-1a2b3c4d5e6f"));
        assert!(!is_app_id("not-a-guid"));
        assert_eq!(
            anchor_extension_app("extension_7A1B2C3D4E5F4A6B8C7D9E0F1A2B3C4D_ad2entraAnchor"),
            Some("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into())
        );
        assert_eq!(
            anchor_extension_app("extension_7a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d_skypeId"),
            None
        );
        assert_eq!(anchor_extension_app("extension_abc_ad2entraAnchor"), None);
        assert_eq!(
            policy_pin_line("7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
            "target:\n  extensionAppId: \"7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\""
        );
    }

    #[test]
    fn unreadable_says_what_was_refused_and_the_permission() {
        let u = Unreadable::refused(
            SafetyInput::DirectoryRoles,
            403,
            "Authorization_RequestDenied",
        );
        assert_eq!(
            u.to_string(),
            "GET /directoryRoles (and each role's members) was refused (403 Authorization_RequestDenied); it needs the application permission RoleManagement.Read.Directory (or Directory.Read.All)"
        );
        assert!(
            Unreadable::not_read(SafetyInput::DeletedUsers)
                .to_string()
                .contains("was not read")
        );
    }
}
