//! Directory object types and the property catalogues that drive validation and rendering:
//! default property sets, read-only properties, length limits, and which properties are
//! collections (taken from the OpenAPI description).

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Instant;

/// The two kinds of directory objects the emulator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `microsoft.graph.user`
    User,
    /// `microsoft.graph.group`
    Group,
}

impl Kind {
    /// OpenAPI schema name.
    pub fn schema(self) -> &'static str {
        match self {
            Kind::User => "microsoft.graph.user",
            Kind::Group => "microsoft.graph.group",
        }
    }
    /// `@odata.type` value.
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
        }
    }
    /// Resource name used in Graph's messages (`User`, `Group`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    /// Entity set name (`users`, `groups`).
    pub fn set(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
        }
    }
}

/// Properties returned by default for users (samples/list-users-page.json).
pub const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Properties returned by default for groups (samples/create-security-group-response-201.json).
pub const GROUP_DEFAULT: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
];

/// Properties clients cannot write (DESIGN §1, notes/05).
pub const USER_READ_ONLY: &[&str] = &[
    "id",
    "deletedDateTime",
    "proxyAddresses",
    "onPremisesSyncEnabled",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesUserPrincipalName",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "onPremisesExtensionAttributes",
    "createdDateTime",
    "creationType",
    "assignedLicenses",
    "assignedPlans",
    "provisionedPlans",
    "licenseAssignmentStates",
    "memberOf",
    "signInActivity",
    "securityIdentifier",
    "refreshTokensValidFromDateTime",
    "signInSessionsValidFromDateTime",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "lastPasswordChangeDateTime",
    "imAddresses",
    "isResourceAccount",
    "licenseDetails",
    "manager",
    "directReports",
];

/// Group properties clients cannot write.
pub const GROUP_READ_ONLY: &[&str] = &[
    "id",
    "deletedDateTime",
    "proxyAddresses",
    "mail",
    "onPremisesSyncEnabled",
    "onPremisesDomainName",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesLastSyncDateTime",
    "onPremisesProvisioningErrors",
    "createdDateTime",
    "renewedDateTime",
    "expirationDateTime",
    "securityIdentifier",
    "assignedLicenses",
    "hasMembersWithLicenseErrors",
    "membershipRuleProcessingState",
    "memberOf",
    "members",
    "owners",
    "transitiveMembers",
    "transitiveMemberOf",
    "createdOnBehalfOf",
];

/// Properties that an on-premises synced user still accepts from the cloud.
pub const USER_CLOUD_MASTERED: &[&str] = &[
    "usageLocation",
    "preferredDataLocation",
    "ageGroup",
    "consentProvidedForMinor",
];

/// Maximum lengths in characters (notes/04-property-descriptions-from-openapi.txt; the
/// user resource page for officeLocation; group `description`: not documented, kept).
pub fn max_length(kind: Kind, property: &str) -> Option<usize> {
    Some(match (kind, property) {
        (_, "displayName") => 256,
        (_, "mailNickname") => 64,
        (Kind::User, "employeeId") => 16,
        (Kind::User, "givenName" | "surname" | "department" | "companyName" | "mobilePhone") => 64,
        (Kind::User, "jobTitle" | "officeLocation" | "city" | "country" | "state") => 128,
        (Kind::User, "postalCode") => 40,
        (Kind::User, "streetAddress") => 1024,
        (Kind::Group, "description") => 1024,
        _ => return None,
    })
}

struct Catalogue {
    all: BTreeSet<String>,
    collections: BTreeSet<String>,
}

fn catalogue(kind: Kind) -> &'static Catalogue {
    static USER: OnceLock<Catalogue> = OnceLock::new();
    static GROUP: OnceLock<Catalogue> = OnceLock::new();
    let cell = match kind {
        Kind::User => &USER,
        Kind::Group => &GROUP,
    };
    cell.get_or_init(|| {
        let props = crate::conformance::openapi().properties(kind.schema());
        let collections = props
            .iter()
            .filter(|(_, v)| v.get("type").and_then(Value::as_str) == Some("array"))
            .map(|(k, _)| k.clone())
            .collect();
        let mut all: BTreeSet<String> = props.into_keys().collect();
        if kind == Kind::Group {
            all.insert("resourceBehaviorOptions".into());
            all.insert("resourceProvisioningOptions".into());
        }
        let mut c = Catalogue { all, collections };
        if kind == Kind::Group {
            c.collections.insert("resourceBehaviorOptions".into());
            c.collections.insert("resourceProvisioningOptions".into());
        }
        c
    })
}

/// Whether `property` is declared on the type (OpenAPI description).
pub fn is_declared(kind: Kind, property: &str) -> bool {
    catalogue(kind).all.contains(property)
}

/// Whether `property` is a collection (rendered `[]` when unset).
pub fn is_collection(kind: Kind, property: &str) -> bool {
    catalogue(kind).collections.contains(property)
}

/// Whether a declared property is a navigation property rather than data.
pub fn is_navigation(property: &str) -> bool {
    matches!(
        property,
        "manager"
            | "memberOf"
            | "members"
            | "owners"
            | "directReports"
            | "transitiveMemberOf"
            | "transitiveMembers"
            | "licenseDetails"
            | "createdOnBehalfOf"
            | "membersWithLicenseErrors"
            | "ownedObjects"
            | "registeredDevices"
            | "ownedDevices"
            | "createdObjects"
            | "acceptedSenders"
            | "rejectedSenders"
    )
}

/// A user or group.
#[derive(Debug, Clone)]
pub struct DirObject {
    /// User or group.
    pub kind: Kind,
    /// Object id (GUID).
    pub id: String,
    /// Stored properties (never `id`).
    pub props: Map<String, Value>,
    /// Member ids (groups).
    pub members: Vec<String>,
    /// Owner ids (groups).
    pub owners: Vec<String>,
    /// Manager id (users).
    pub manager: Option<String>,
    /// When it was created (replication lag).
    pub created: Instant,
    /// Change sequence number of the last change (delta).
    pub version: u64,
    /// When it was soft-deleted.
    pub deleted: Option<(Instant, chrono::DateTime<chrono::Utc>)>,
    /// Properties once set and since cleared (PATCHed to `null`): delta responses carry them
    /// as `null`, while never-set properties are left out (group: delta, "Default: return the
    /// same properties as initial delta request").
    pub cleared: BTreeSet<String>,
}

impl DirObject {
    /// A live object created now, with no members, owners or manager yet.
    pub(crate) fn new(kind: Kind, id: String, props: Map<String, Value>, version: u64) -> Self {
        DirObject {
            kind,
            id,
            props,
            members: vec![],
            owners: vec![],
            manager: None,
            created: Instant::now(),
            version,
            deleted: None,
            cleared: BTreeSet::new(),
        }
    }

    /// Writes one property from a PATCH body: `null` removes it and remembers that it was
    /// cleared (for delta), anything else sets it.
    pub(crate) fn patch_prop(&mut self, name: String, value: Value) {
        if value.is_null() {
            if self.props.remove(&name).is_some() {
                self.cleared.insert(name);
            }
        } else {
            self.cleared.remove(&name);
            self.props.insert(name, value);
        }
    }

    /// A string property.
    pub fn str_prop(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Value::as_str)
    }

    /// Whether the object is synced from on-premises AD (read-only through Graph).
    pub fn is_synced(&self) -> bool {
        self.props
            .get("onPremisesSyncEnabled")
            .and_then(Value::as_bool)
            == Some(true)
    }

    /// The value of a property for output and filtering (`null`/`[]` when unset).
    pub fn value_of(&self, name: &str) -> Value {
        if name == "id" {
            return Value::String(self.id.clone());
        }
        if name == "deletedDateTime" {
            return match &self.deleted {
                Some((_, at)) => {
                    Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                }
                None => Value::Null,
            };
        }
        match self.props.get(name) {
            Some(v) => v.clone(),
            None if is_collection(self.kind, name) => Value::Array(vec![]),
            None => Value::Null,
        }
    }

    /// Renders the object with the given property names (`None` = the default set).
    pub fn render(&self, select: Option<&[String]>) -> Map<String, Value> {
        let mut out = Map::new();
        match select {
            None => {
                let defaults = match self.kind {
                    Kind::User => USER_DEFAULT,
                    Kind::Group => GROUP_DEFAULT,
                };
                for p in defaults {
                    out.insert((*p).to_string(), self.value_of(p));
                }
            }
            Some(list) => {
                for p in list {
                    if p.starts_with("extension_") {
                        if let Some(v) = self.props.get(p) {
                            out.insert(p.clone(), v.clone());
                        }
                    } else if !is_navigation(p) {
                        out.insert(p.clone(), self.value_of(p));
                    }
                }
                if !out.contains_key("id") {
                    out.insert("id".into(), Value::String(self.id.clone()));
                }
            }
        }
        out
    }
}

/// A security identifier in the form Entra gives cloud objects (S-1-12-1-...).
pub fn cloud_sid(id: &str) -> String {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => {
            let b = u.as_bytes();
            let part = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let (d1, d2, d3, _) = u.as_fields();
            let first = d1;
            let second = (u32::from(d3) << 16) | u32::from(d2);
            format!("S-1-12-1-{first}-{second}-{}-{}", part(8), part(12))
        }
        Err(_) => String::new(),
    }
}
