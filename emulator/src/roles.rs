//! Directory roles (`/directoryRoles`): the built-in Microsoft Entra roles the emulator knows,
//! with their immutable template ids (Microsoft Entra "built-in roles" reference,
//! learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
//!
//! A tenant's *activated* roles are Global Administrator (activated in every tenant) plus every
//! role named in the seed's `directoryRoleMembers` (even with an empty member list). Each
//! activated role gets a stable object id derived from the tenant id and the template id (a
//! name-based UUID: the same across runs and resets, different between tenants, never equal to
//! the template id — as in Graph, where `id` and `roleTemplateId` differ).
//!
//! Graph v1.0 shape of a directoryRole: `id`, `deletedDateTime` (always null),
//! `description`, `displayName`, `roleTemplateId`.

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

/// One built-in role: display name, template id, description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltInRole {
    /// Display name (`Global Administrator`).
    pub display_name: &'static str,
    /// Immutable template id.
    pub template_id: &'static str,
    /// Description as Graph returns it.
    pub description: &'static str,
}

const fn role(
    display_name: &'static str,
    template_id: &'static str,
    description: &'static str,
) -> BuiltInRole {
    BuiltInRole {
        display_name,
        template_id,
        description,
    }
}

/// Template id of Global Administrator (the role activated in every tenant).
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// The built-in roles the emulator can activate (a subset of Entra's list: the administrative
/// roles that matter to provisioning tools), in display-name order.
pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    role(
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Can create and manage all aspects of app registrations and enterprise apps.",
    ),
    role(
        "Authentication Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Can access to view, set and reset authentication method information for any non-admin user.",
    ),
    role(
        "Billing Administrator",
        "b0f54661-2d74-4c50-afa3-1ec803f12efe",
        "Can perform common billing related tasks like updating payment information.",
    ),
    role(
        "Cloud Application Administrator",
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Can create and manage all aspects of app registrations and enterprise apps except App Proxy.",
    ),
    role(
        "Conditional Access Administrator",
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Can manage Conditional Access capabilities.",
    ),
    role(
        "Directory Readers",
        "88d8e3e3-8f55-4a1e-953a-9b9898b8876b",
        "Can read basic directory information. Commonly used to grant directory read access to applications and guests.",
    ),
    role(
        "Directory Synchronization Accounts",
        "d29b2b05-8046-44ba-8758-1e26182fcf32",
        "Only used by Microsoft Entra Connect service.",
    ),
    role(
        "Directory Writers",
        "9360feb5-f418-4baa-8175-e2a00bac4301",
        "Can read and write basic directory information. For granting access to applications, not intended for users.",
    ),
    role(
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Can manage all aspects of the Exchange product.",
    ),
    role(
        "Global Administrator",
        GLOBAL_ADMINISTRATOR,
        "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
    ),
    role(
        "Global Reader",
        "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
        "Can read everything that a Global Administrator can, but not update anything.",
    ),
    role(
        "Groups Administrator",
        "fdd7a751-b60b-444a-984c-02652fe8fa1c",
        "Members of this role can create/manage groups, create/manage groups settings like naming and expiration policies, and view groups activity and audit reports.",
    ),
    role(
        "Helpdesk Administrator",
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Can reset passwords for non-administrators and Helpdesk Administrators.",
    ),
    role(
        "Hybrid Identity Administrator",
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Manage Active Directory to Microsoft Entra cloud provisioning, Microsoft Entra Connect, pass-through authentication (PTA), password hash synchronization (PHS), seamless single sign-on (seamless SSO), and federation settings. Does not have access to manage Microsoft Entra Connect Health.",
    ),
    role(
        "Intune Administrator",
        "3a2c62db-5318-420d-8d74-23affee5d9d5",
        "Can manage all aspects of the Intune product.",
    ),
    role(
        "License Administrator",
        "4d6ac14f-3453-41d0-bef9-a3e0c569773a",
        "Can manage product licenses on users and groups.",
    ),
    role(
        "Password Administrator",
        "966707d0-3269-4727-9be2-8c3a10f19b9d",
        "Can reset passwords for non-administrators and Password Administrators.",
    ),
    role(
        "Privileged Authentication Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
    ),
    role(
        "Privileged Role Administrator",
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
    ),
    role(
        "Reports Reader",
        "4a5d8f65-41da-4de4-8968-e035b65339cf",
        "Can read sign-in and audit reports.",
    ),
    role(
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
    ),
    role(
        "Security Reader",
        "5d6b6bb7-de71-4623-b4af-96380a352509",
        "Can read security information and reports in Microsoft Entra ID and Office 365.",
    ),
    role(
        "SharePoint Administrator",
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "Can manage all aspects of the SharePoint service.",
    ),
    role(
        "Teams Administrator",
        "69091246-20e8-4a56-aa4d-066075b2a7a8",
        "Can manage the Microsoft Teams service.",
    ),
    role(
        "User Administrator",
        "fe930be7-5e62-47db-91af-98c3a49a38b1",
        "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    ),
];

/// Properties of `microsoft.graph.directoryRole` in Graph v1.0.
pub const PROPERTIES: &[&str] = &[
    "id",
    "deletedDateTime",
    "description",
    "displayName",
    "roleTemplateId",
];

/// The built-in role a seed key names: its display name (case-insensitive; the legacy name
/// `Company Administrator` means Global Administrator) or its template id.
pub fn lookup(key: &str) -> Option<&'static BuiltInRole> {
    let key = key.trim();
    let key = if key.eq_ignore_ascii_case("Company Administrator") {
        GLOBAL_ADMINISTRATOR
    } else {
        key
    };
    BUILT_IN_ROLES.iter().find(|r| {
        r.display_name.eq_ignore_ascii_case(key) || r.template_id.eq_ignore_ascii_case(key)
    })
}

/// The stable object id of an activated role in a tenant.
pub fn role_object_id(tenant_id: &str, template_id: &str) -> String {
    let mut h = Sha1::new();
    h.update(b"graph-emulator/directoryRole/");
    h.update(tenant_id.to_ascii_lowercase().as_bytes());
    h.update(b"/");
    h.update(template_id.to_ascii_lowercase().as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// An activated role of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivatedRole {
    /// Object id.
    pub id: String,
    /// The built-in role.
    pub role: &'static BuiltInRole,
}

impl ActivatedRole {
    /// Full Graph representation.
    pub fn to_json(&self) -> Map<String, Value> {
        let v = json!({
            "id": self.id,
            "deletedDateTime": null,
            "description": self.role.description,
            "displayName": self.role.display_name,
            "roleTemplateId": self.role.template_id,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The representation restricted to `$select` (id always included, as Graph does).
    pub fn render(&self, select: Option<&[String]>) -> Map<String, Value> {
        let full = self.to_json();
        match select {
            None => full,
            Some(sel) => {
                let mut out = Map::new();
                for (k, v) in full {
                    if k == "id" || sel.iter().any(|s| s.eq_ignore_ascii_case(&k)) {
                        out.insert(k, v);
                    }
                }
                out
            }
        }
    }

    /// A property's value (for `$filter`).
    pub fn value_of(&self, property: &str) -> Value {
        self.to_json()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(property))
            .map(|(_, v)| v)
            .unwrap_or(Value::Null)
    }
}
