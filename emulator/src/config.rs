//! Configuration of an emulator instance: tenant identity, credentials, lifetimes, throttling and
//! fault injection. Everything has a default so that `EmulatorConfig::default()` is a usable
//! tenant (`corp.example.com` verified, a few SKUs, an application whose appId is the client id).

use serde::{Deserialize, Serialize};

/// Default tenant id of [`EmulatorConfig::default`].
pub const DEFAULT_TENANT_ID: &str = "8f1c5e2a-3b7d-4c61-9a0e-5d2f4b6c8a10";
/// Default client (application) id of [`EmulatorConfig::default`].
pub const DEFAULT_CLIENT_ID: &str = "2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f";
/// Default client secret of [`EmulatorConfig::default`].
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-secret";
/// skuId of the default ENTERPRISEPACK (Office 365 E3) subscription.
pub const SKU_ENTERPRISEPACK: &str = "6fd2c87f-b296-42f0-b197-1e91e994b900";
/// skuId of the default EMS (Enterprise Mobility + Security E3) subscription.
pub const SKU_EMS: &str = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e";
/// skuId of the default FLOW_FREE subscription.
pub const SKU_FLOW_FREE: &str = "f30db892-07e9-47e9-837c-80727f46fd3d";

/// Everything an emulator instance needs at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmulatorConfig {
    /// Directory (tenant) id; the token endpoint accepts it or any verified domain as `{tenant}`.
    pub tenant_id: String,
    /// Organization display name.
    pub tenant_display_name: String,
    /// The application (client) id allowed to get tokens.
    pub client_id: String,
    /// Client secret accepted for `client_secret` authentication; `None` disables secrets.
    pub client_secret: Option<String>,
    /// Application permissions (app roles) admin-consented for `client_id`: its tokens carry
    /// them in `roles`, and each Graph request needs one of the permissions Microsoft documents
    /// for it ([`crate::permissions`]), else 403 `Authorization_RequestDenied`.
    pub permissions: Vec<String>,
    /// Further app registrations that can get tokens in this tenant, e.g. a read-only app
    /// that plans in CI. Each needs an entry in `applications` to own directory extensions.
    pub additional_clients: Vec<ClientConfig>,
    /// Above this many app registrations (the emulator's service principals),
    /// `getAvailableExtensionProperties` answers an empty list: Microsoft documents that
    /// known issue for tenants with more than 1,000 service principals. `None`: never.
    pub available_extensions_limit: Option<usize>,
    /// PEM certificate or public key (RSA) used to verify `client_assertion` JWTs; `None`
    /// disables certificate authentication.
    pub client_certificate_pem: Option<String>,
    /// Lifetime of issued access tokens, in seconds (real time, not scaled).
    pub token_lifetime_secs: f64,
    /// Lifetime of delta tokens, in seconds (default 7 days; real time, not scaled).
    pub delta_token_lifetime_secs: f64,
    /// How long soft-deleted users stay restorable, in seconds (default 30 days).
    pub soft_delete_retention_secs: f64,
    /// How long turning directory synchronization off takes to convert the synced objects,
    /// in seconds (Microsoft: "may take up to 72 hours"; default 0: at once). See
    /// [`crate::organization`].
    pub dirsync_deactivation_secs: f64,
    /// Page size of delta rounds (items per page).
    pub delta_page_size: usize,
    /// Most `members@delta` entries in one group item of a delta page: a group with more
    /// member changes comes back several times, each with the next chunk, as Graph does for
    /// large groups (delta-query-groups, "Paging through members in a large group").
    pub delta_members_per_item: usize,
    /// Domains of the tenant (the first verified `*.onmicrosoft.com` one is the initial domain).
    pub domains: Vec<DomainConfig>,
    /// Subscribed SKUs.
    pub skus: Vec<SkuConfig>,
    /// Application registrations (extension properties hang off these).
    pub applications: Vec<ApplicationConfig>,
    /// Throttling model.
    pub throttling: ThrottleConfig,
    /// Fault injection (all off by default).
    pub faults: FaultConfig,
}

/// The application permissions [`EmulatorConfig::default`] grants its client: everything
/// ad2entra reads and writes, including `init`'s registration of directory extensions on its
/// own app registration.
pub const DEFAULT_PERMISSIONS: &[&str] = &[
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
];

/// Another app registration allowed to get tokens (client credentials with a secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// The application (client) id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// Its admin-consented application permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A tenant domain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainConfig {
    /// Domain name, also its id.
    pub id: String,
    /// Whether the domain is verified (only verified domains are accepted in UPNs).
    #[serde(default = "yes")]
    pub is_verified: bool,
    /// `Managed` or `Federated`; federated domains require onPremisesImmutableId on create.
    #[serde(default = "managed")]
    pub authentication_type: String,
    /// Whether this is the default domain.
    #[serde(default)]
    pub is_default: bool,
    /// Whether this is the initial `*.onmicrosoft.com` domain.
    #[serde(default)]
    pub is_initial: bool,
    /// Its `internalDomainFederation` (with `id`), while the domain is federated
    /// ([`crate::federation`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_configuration: Option<serde_json::Map<String, serde_json::Value>>,
}

fn yes() -> bool {
    true
}
fn managed() -> String {
    "Managed".into()
}

/// A subscribed SKU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SkuConfig {
    /// skuId (GUID).
    pub sku_id: String,
    /// skuPartNumber, e.g. `ENTERPRISEPACK`.
    pub sku_part_number: String,
    /// prepaidUnits.enabled.
    pub enabled_units: u32,
    /// Service plans: (servicePlanId, servicePlanName).
    #[serde(default)]
    pub service_plans: Vec<ServicePlanConfig>,
}

/// A service plan inside a SKU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlanConfig {
    /// servicePlanId (GUID).
    pub service_plan_id: String,
    /// servicePlanName, e.g. `EXCHANGE_S_ENTERPRISE`.
    pub service_plan_name: String,
}

/// An application registration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationConfig {
    /// Object id of the application (used in `/applications/{id}`).
    pub id: String,
    /// appId (client id).
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// Pre-registered directory extensions (short names, e.g. `employeeNumber`).
    #[serde(default)]
    pub extension_properties: Vec<ExtensionPropertyConfig>,
}

/// A directory extension definition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionPropertyConfig {
    /// Short name (`employeeNumber`) or full name (`extension_{appId}_employeeNumber`).
    pub name: String,
    /// `String`, `Boolean`, `Integer`, `DateTime`, `Binary` or `LargeInteger`.
    #[serde(default = "string_type")]
    pub data_type: String,
    /// `User`, `Group`, ...
    #[serde(default = "user_target")]
    pub target_objects: Vec<String>,
    /// Whether the property holds a collection.
    #[serde(default)]
    pub is_multi_valued: bool,
}

fn string_type() -> String {
    "String".into()
}
fn user_target() -> Vec<String> {
    vec!["User".into()]
}

/// Tenant size class of the resource-unit limit (notes/01-throttling.md).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum TenantSize {
    /// Chosen from the number of users: S < 50, M 50-500, L > 500.
    #[default]
    Auto,
    /// 3,500 RU / 10 s.
    Small,
    /// 5,000 RU / 10 s.
    Medium,
    /// 8,000 RU / 10 s.
    Large,
}

/// The throttling model: token buckets per app+tenant (RU and writes) and per tenant (writes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ThrottleConfig {
    /// Master switch.
    pub enabled: bool,
    /// Divides every throttling window and Retry-After: 100.0 makes a 150 s window 1.5 s.
    pub time_scale: f64,
    /// Tenant size class for the resource-unit quota.
    pub tenant_size: TenantSize,
    /// Overrides the resource units per 10 s of the size class.
    pub resource_units_per_10s: Option<u32>,
    /// Writes per 150 s for the application+tenant pair (documented: 3,000).
    pub writes_per_150s: u32,
    /// Writes per 5 minutes for the tenant (documented: 18,000).
    pub tenant_writes_per_5min: u32,
    /// The application+tenant write bucket with its size and refill window set apart, to
    /// model budgets tighter than documented (other apps of the tenant spending it): e.g.
    /// `{size: 300, windowSecs: 15}` is a tenth of the burst at the documented rate.
    /// Overrides `writesPer150s`.
    pub app_write_bucket: Option<BucketConfig>,
    /// The application+tenant resource-unit bucket likewise; overrides the size class and
    /// `resourceUnitsPer10s`.
    pub resource_unit_bucket: Option<BucketConfig>,
}

/// A token bucket: `size` tokens, refilled at `size / windowSecs` per (virtual) second.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BucketConfig {
    /// Bucket size: what a burst may spend at once.
    pub size: u32,
    /// Seconds to refill an empty bucket (before `timeScale`).
    pub window_secs: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            enabled: true,
            time_scale: 1.0,
            tenant_size: TenantSize::Auto,
            resource_units_per_10s: None,
            writes_per_150s: 3000,
            tenant_writes_per_5min: 18000,
            app_write_bucket: None,
            resource_unit_bucket: None,
        }
    }
}

/// Fault injection for Graph requests (not for the token endpoint nor `/_emulator`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultConfig {
    /// Fraction (0..1) of requests answered with a random 500 or 503 Graph error instead of
    /// being processed (inner requests of a `$batch` are drawn individually).
    pub error_rate: f64,
    /// Fixed latency added to every Graph request, in milliseconds.
    pub latency_ms: u64,
    /// Extra random latency (uniform 0..jitter) in milliseconds.
    pub latency_jitter_ms: u64,
    /// For this many milliseconds after an object is created, reads of it (by id, list or
    /// filter) behave as if it did not exist yet (404 / empty), like Entra's replication lag.
    pub replication_lag_ms: u64,
    /// Fraction of Graph requests whose TCP connection is closed before anything is processed.
    pub drop_rate: f64,
    /// Fraction of successful writes whose connection is closed after the write was committed,
    /// so that the client sees a connection error for a write that happened.
    pub drop_after_commit_rate: f64,
    /// Fraction of continuation pages (GETs carrying `$skiptoken`, outside `$batch`) answered
    /// 200 with only the first half of their JSON: a page that is not JSON.
    pub non_json_page_rate: f64,
    /// Fraction of continuation pages (GETs carrying `$skiptoken`, `$batch` inner requests
    /// included) answered 200 without their `value` array.
    pub page_without_value_rate: f64,
    /// Fraction of `@odata.nextLink`s handed out that are broken for good: every request to
    /// one answers 500, however often it is retried.
    pub broken_next_link_rate: f64,
    /// Fraction of delta pages (`/users/delta`, `/groups/delta`) cut short: answered with
    /// neither `@odata.nextLink` nor `@odata.deltaLink`.
    pub truncated_delta_rate: f64,
    /// Seed of the fault RNG, for reproducible runs.
    pub rng_seed: Option<u64>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            tenant_id: DEFAULT_TENANT_ID.into(),
            tenant_display_name: "Corp Example".into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: Some(DEFAULT_CLIENT_SECRET.into()),
            permissions: DEFAULT_PERMISSIONS.iter().map(|p| p.to_string()).collect(),
            additional_clients: Vec::new(),
            available_extensions_limit: Some(1000),
            client_certificate_pem: None,
            token_lifetime_secs: 3599.0,
            delta_token_lifetime_secs: 7.0 * 24.0 * 3600.0,
            soft_delete_retention_secs: 30.0 * 24.0 * 3600.0,
            dirsync_deactivation_secs: 0.0,
            delta_page_size: 100,
            delta_members_per_item: 500,
            domains: vec![
                DomainConfig {
                    id: "corp.example.com".into(),
                    is_verified: true,
                    authentication_type: "Managed".into(),
                    is_default: true,
                    is_initial: false,
                    federation_configuration: None,
                },
                DomainConfig {
                    id: "corpexample.onmicrosoft.com".into(),
                    is_verified: true,
                    authentication_type: "Managed".into(),
                    is_default: false,
                    is_initial: true,
                    federation_configuration: None,
                },
            ],
            skus: vec![
                SkuConfig {
                    sku_id: SKU_ENTERPRISEPACK.into(),
                    sku_part_number: "ENTERPRISEPACK".into(),
                    enabled_units: 25,
                    service_plans: vec![
                        ServicePlanConfig {
                            service_plan_id: "efb87545-963c-4e0d-99df-69c6916d9eb0".into(),
                            service_plan_name: "EXCHANGE_S_ENTERPRISE".into(),
                        },
                        ServicePlanConfig {
                            service_plan_id: "5dbe027f-2339-4123-9542-606e4d348a72".into(),
                            service_plan_name: "SHAREPOINTENTERPRISE".into(),
                        },
                    ],
                },
                SkuConfig {
                    sku_id: SKU_EMS.into(),
                    sku_part_number: "EMS".into(),
                    enabled_units: 10,
                    service_plans: vec![],
                },
                SkuConfig {
                    sku_id: SKU_FLOW_FREE.into(),
                    sku_part_number: "FLOW_FREE".into(),
                    enabled_units: 10000,
                    service_plans: vec![],
                },
            ],
            applications: vec![ApplicationConfig {
                id: "5e3a7c91-0d4b-4f2e-8a6c-9b1d2e3f4a5b".into(),
                app_id: DEFAULT_CLIENT_ID.into(),
                display_name: "ad2entra".into(),
                extension_properties: vec![],
            }],
            throttling: ThrottleConfig::default(),
            faults: FaultConfig::default(),
        }
    }
}

impl EmulatorConfig {
    /// Checks ranges that would make the emulator misbehave.
    pub fn validate(&self) -> Result<(), crate::EmulatorError> {
        let bad = |m: &str| Err(crate::EmulatorError::Config(m.to_string()));
        if !(self.throttling.time_scale.is_finite() && self.throttling.time_scale > 0.0) {
            return bad("throttling.timeScale must be > 0");
        }
        for (name, b) in [
            (
                "throttling.appWriteBucket",
                self.throttling.app_write_bucket,
            ),
            (
                "throttling.resourceUnitBucket",
                self.throttling.resource_unit_bucket,
            ),
        ] {
            if let Some(b) = b
                && (b.size == 0 || !(b.window_secs.is_finite() && b.window_secs > 0.0))
            {
                return bad(&format!("{name} needs size > 0 and windowSecs > 0"));
            }
        }
        for (name, rate) in [
            ("faults.errorRate", self.faults.error_rate),
            ("faults.dropRate", self.faults.drop_rate),
            (
                "faults.dropAfterCommitRate",
                self.faults.drop_after_commit_rate,
            ),
            ("faults.nonJsonPageRate", self.faults.non_json_page_rate),
            (
                "faults.pageWithoutValueRate",
                self.faults.page_without_value_rate,
            ),
            (
                "faults.brokenNextLinkRate",
                self.faults.broken_next_link_rate,
            ),
            (
                "faults.truncatedDeltaRate",
                self.faults.truncated_delta_rate,
            ),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return bad(&format!("{name} must be within 0..=1"));
            }
        }
        if self.delta_page_size == 0 {
            return bad("deltaPageSize must be > 0");
        }
        if self.delta_members_per_item == 0 {
            return bad("deltaMembersPerItem must be > 0");
        }
        if self.token_lifetime_secs <= 0.0 || self.delta_token_lifetime_secs <= 0.0 {
            return bad("lifetimes must be > 0");
        }
        Ok(())
    }
}
