//! The typed policy, as the YAML says it. `ad2entra schema` prints the JSON Schema of
//! [`Policy`]; validation (`validate.rs`) checks what types alone cannot.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::model::anchor::AnchorAttribute;

/// The only apiVersion this build understands.
pub const API_VERSION: &str = "ad2entra/v1";

/// A whole policy (one file, or the merge of a directory's files).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    /// Must be `ad2entra/v1`.
    pub api_version: String,
    /// Where AD is and how to bind. Needed for live reads, not for LDIF sources. One
    /// domain; for several, use `sources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceConfig>,
    /// Several domains or forests synced into one tenant, each named, with its own DCs
    /// (tried in order) and, where they differ, its own `scope` and `upn`. Instead of
    /// `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<NamedSource>>,
    /// Tenant-side settings.
    #[serde(default)]
    pub target: TargetConfig,
    /// Which AD objects are synced.
    #[serde(default)]
    pub scope: Scope,
    /// userPrincipalName suffix handling.
    #[serde(default)]
    pub upn: UpnConfig,
    /// Graph property ← template over AD attributes.
    #[serde(default)]
    pub mappings: Mappings,
    /// Licences assigned by group membership.
    #[serde(default)]
    pub licenses: Vec<LicenseRule>,
    /// What happens to owned Entra objects whose AD object left scope.
    #[serde(default)]
    pub deletion: Deletion,
    /// Which AD attribute is the source anchor of users (`onPremisesImmutableId` and the
    /// anchor extension): `objectGUID` (default) or `mS-DS-ConsistencyGuid`.
    #[serde(default, skip_serializing_if = "AnchorAttribute::is_default")]
    pub anchor: AnchorAttribute,
    /// Taking over pre-existing cloud objects (soft match by UPN or mail, hard match by
    /// immutable id); off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adopt>,
    /// Glob patterns (UPN, mail or display name) of objects never touched.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Reconciler timing.
    #[serde(default)]
    pub schedule: Schedule,
    /// Federated sign-in per domain (Graph `internalDomainFederation`); domains not
    /// named are left alone. Absent: no domain's federation is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<BTreeMap<String, super::federation::DomainFederation>>,
}

/// LDAP connection. The password is a reference (`env:NAME` or `file:PATH`), never a literal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]` (StartTLS unless allowInsecure).
    pub url: String,
    pub bind_dn: String,
    /// `env:NAME` or `file:/path`.
    pub password_from: String,
    pub base_dn: String,
    /// PEM CA bundle to verify the DC's certificate; system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Allows plain, unencrypted `ldap://`. Off by default.
    #[serde(default)]
    pub allow_insecure: bool,
    /// Per-operation timeout, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// One domain of `sources:`: how to reach its DCs, and the rules that differ for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedSource {
    /// Names the source in plans, `explain`, logs and the state file (letters, digits,
    /// `-`, `_` and `.`; unique).
    pub name: String,
    /// The domain's DCs (`ldaps://host[:port]` or `ldap://host[:port]`), tried in order:
    /// the next one only when one cannot be connected or bound to.
    pub urls: Vec<String>,
    pub bind_dn: String,
    /// `env:NAME` or `file:/path`.
    pub password_from: String,
    /// The domain's naming context (or a subtree of it): nothing outside it is read.
    pub base_dn: String,
    /// PEM CA bundle to verify the DCs' certificates; system roots when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Allows plain, unencrypted `ldap://`. Off by default.
    #[serde(default)]
    pub allow_insecure: bool,
    /// Per-operation timeout, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// This source's scope, in place of the top-level `scope` for its objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// This source's UPN handling, in place of the top-level `upn` for its users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<UpnConfig>,
}

/// Tenant-side settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfig {
    /// The tenant id or primary domain, for provenance and checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The appId (client id) of the app registration whose directory extension
    /// `extension_{appId}_ad2entraAnchor` marks what ad2entra owns. Pinned here so that
    /// every app registration that plans or applies (a read-only one in CI, the
    /// reconciler's) sees the same owned objects; `ad2entra init` prints the line. Without
    /// it: `AD2ENTRA_EXTENSION_APP_ID`, else the client id ad2entra runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_app_id: Option<String>,
}

/// User and group scope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub users: UserScope,
    #[serde(default)]
    pub groups: GroupScope,
}

/// Which users are synced. Every rule given must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserScope {
    /// OUs (by DN) whose subtree is in scope; the whole base DN when empty.
    #[serde(default, rename = "includeOUs")]
    pub include_ous: Vec<String>,
    /// OUs whose subtree is out of scope, even inside an included OU.
    #[serde(default, rename = "excludeOUs")]
    pub exclude_ous: Vec<String>,
    /// RFC 4515 filter (AD's bitwise matching rules supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
    /// Group DNs: users must be a member, directly or through nested groups.
    #[serde(default)]
    pub member_of: Vec<String>,
    /// Expression over AD attributes; the user is in scope when it is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Sync disabled AD accounts (as disabled Entra users). Default true, like Entra Connect.
    #[serde(default = "yes")]
    pub include_disabled: bool,
}

fn yes() -> bool {
    true
}

impl Default for UserScope {
    fn default() -> Self {
        Self {
            include_ous: Vec::new(),
            exclude_ous: Vec::new(),
            ldap_filter: None,
            member_of: Vec::new(),
            when: None,
            include_disabled: true,
        }
    }
}

impl Default for GroupScope {
    fn default() -> Self {
        Self {
            include_ous: Vec::new(),
            exclude_ous: Vec::new(),
            ldap_filter: None,
            when: None,
            exclude_admin_groups: true,
            enabled: true,
        }
    }
}

/// Which groups are synced. Only security groups can be created through Graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupScope {
    #[serde(default, rename = "includeOUs")]
    pub include_ous: Vec<String>,
    #[serde(default, rename = "excludeOUs")]
    pub exclude_ous: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Leave out adminCount=1 and the built-in privileged groups. Default true.
    #[serde(default = "yes")]
    pub exclude_admin_groups: bool,
    /// Sync no groups at all when false.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// UPN suffix handling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpnConfig {
    /// AD suffix → tenant domain, e.g. `corp.local: corp.example.com`.
    #[serde(default)]
    pub rewrite_suffixes: BTreeMap<String, String>,
    /// Used when a suffix is neither rewritten nor a verified domain (or is non-routable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_domain: Option<String>,
}

/// Templates per Graph property. A property not listed keeps its built-in mapping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mappings {
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    #[serde(default)]
    pub group: BTreeMap<String, String>,
}

/// Assign `sku` to users who are (transitively) members of the group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseRule {
    pub when_member_of: String,
    /// SKU part number, e.g. ENTERPRISEPACK.
    pub sku: String,
}

/// What happens to owned objects that left scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionMode {
    /// Disable users (groups are left alone).
    Disable,
    /// Delete at once (users soft-deleted for 30 days; groups permanently).
    Delete,
    /// Disable now, delete after `graceDays`.
    #[default]
    DisableThenDelete,
    /// Leave them as they are.
    Ignore,
}

/// Deletion mode and gates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deletion {
    #[serde(default)]
    pub mode: DeletionMode,
    #[serde(default = "default_grace_days")]
    pub grace_days: u32,
    /// More disables+deletes than this in one plan blocks all of them (Entra Connect: 500).
    #[serde(default = "default_max_deletes")]
    pub max_deletes: u32,
    /// …or more than this percent of the owned objects.
    #[serde(default = "default_max_delete_percent")]
    pub max_delete_percent: f64,
}

fn default_grace_days() -> u32 {
    7
}
fn default_max_deletes() -> u32 {
    500
}
fn default_max_delete_percent() -> f64 {
    5.0
}

impl Default for Deletion {
    fn default() -> Self {
        Self {
            mode: DeletionMode::default(),
            grace_days: default_grace_days(),
            max_deletes: default_max_deletes(),
            max_delete_percent: default_max_delete_percent(),
        }
    }
}

/// The property a match of pre-existing cloud objects uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AdoptBy {
    /// Soft match: a cloud user with the same userPrincipalName.
    #[serde(rename = "userPrincipalName")]
    UserPrincipalName,
    /// Soft match: a cloud user with the same mail.
    #[serde(rename = "mail")]
    Mail,
    /// Hard match, as Entra Connect does: users whose `onPremisesImmutableId` is the AD
    /// object's anchor, groups whose `onPremisesSecurityIdentifier` is its objectSid — the
    /// objects Entra Connect synced, once directory synchronization is turned off.
    #[serde(rename = "immutableId")]
    ImmutableId,
}

/// Opt-in adoption of existing cloud objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Adopt {
    pub by: AdoptBy,
}

/// Reconciler timing (durations like `30m`, `24h`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    #[serde(default = "default_interval")]
    pub interval: String,
    #[serde(default = "default_full_every")]
    pub full_every: String,
}

fn default_interval() -> String {
    "30m".into()
}
fn default_full_every() -> String {
    "24h".into()
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            interval: default_interval(),
            full_every: default_full_every(),
        }
    }
}
