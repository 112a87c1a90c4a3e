//! Application permissions: which of Microsoft Graph's application permissions (app roles in
//! the token's `roles` claim) each route needs, as the "Permissions" section of its Microsoft
//! Graph v1.0 reference page lists them (the least privileged one and the higher privileged
//! ones; any one is enough).
//!
//! A request whose token carries none of them gets Graph's 403
//! `Authorization_RequestDenied` / "Insufficient privileges to complete the operation."
//! (samples/forbidden-403.json), for plain requests and for each inner request of a `$batch`.
//!
//! Sources (learn.microsoft.com/graph/api/…, v1.0):
//! - users: `user-list`, `user-get`, `user-delta` (User.Read.All; User.ReadWrite.All,
//!   Directory.Read.All, Directory.ReadWrite.All), `user-post-users`, `user-update`
//!   (User.ReadWrite.All; Directory.ReadWrite.All), `user-delete` (User.ReadWrite.All; the
//!   permissions reference says Directory.ReadWrite.All "does not allow user or group
//!   deletion"), `user-assignlicense` (LicenseAssignment.ReadWrite.All; Directory.ReadWrite.All,
//!   User.ReadWrite.All);
//! - groups: `group-list`, `group-get`, `group-list-members`, `group-delta`
//!   (GroupMember.Read.All; Group.Read.All, Group.ReadWrite.All, GroupMember.ReadWrite.All,
//!   Directory.Read.All, Directory.ReadWrite.All), `group-post-groups` (Group.Create;
//!   Directory.ReadWrite.All, Group.ReadWrite.All), `group-update` (Group.ReadWrite.All;
//!   Directory.ReadWrite.All), `group-delete` (Group.ReadWrite.All), `group-post-members` and
//!   `group-delete-members` (GroupMember.ReadWrite.All; Group.ReadWrite.All,
//!   Directory.ReadWrite.All);
//! - `domain-list` (Domain.Read.All; Domain.ReadWrite.All, Directory.Read.All,
//!   Directory.ReadWrite.All), `organization-list` (Organization.Read.All; Directory.Read.All,
//!   Organization.ReadWrite.All, Directory.ReadWrite.All), `organization-update`
//!   (Organization.ReadWrite.All; higher privileged: not available), `subscribedsku-list`
//!   (LicenseAssignment.Read.All; Directory.Read.All, Directory.ReadWrite.All,
//!   Organization.Read.All, Organization.ReadWrite.All);
//! - `directoryrole-list`, `directoryrole-get`, `directoryrole-list-members`
//!   (RoleManagement.Read.Directory; RoleManagement.ReadWrite.Directory, Directory.Read.All,
//!   Directory.ReadWrite.All);
//! - `directory-deleteditems-list`/`-get` for users (User.Read.All), `-restore` and `-delete`
//!   for users (User.DeleteRestore.All; User.ReadWrite.All);
//! - `application-list`, `application-get`, `application-list-extensionproperty`
//!   (Application.Read.All; Application.ReadWrite.OwnedBy, Application.ReadWrite.All,
//!   Directory.Read.All, Directory.ReadWrite.All), `application-post-extensionproperty` and
//!   `extensionproperty-delete` (Application.ReadWrite.OwnedBy; Application.ReadWrite.All);
//! - `directoryobject-getavailableextensionproperties` (Directory.Read.All, "higher: not
//!   available"; the emulator also accepts Directory.ReadWrite.All, which includes reading).
//!
//! Higher privileged permissions a page leaves out but that include the read (the ReadWrite
//! form of a Read permission) are accepted too. Application.ReadWrite.OwnedBy only covers the
//! applications the caller owns; the emulator takes each app registration to be owned by its
//! own service principal (the setup `ad2entra init` documents) and by nobody else.

use crate::auth::Caller;
use crate::errors::{GraphError, GraphResult};

const USERS_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const USERS_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
const USERS_DELETE: &[&str] = &["User.ReadWrite.All", "User.DeleteRestore.All"];
const LICENSE_ASSIGN: &[&str] = &[
    "LicenseAssignment.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const GROUPS_READ: &[&str] = &[
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const GROUPS_CREATE: &[&str] = &[
    "Group.Create",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const GROUPS_WRITE: &[&str] = &["Group.ReadWrite.All", "Directory.ReadWrite.All"];
const GROUPS_DELETE: &[&str] = &["Group.ReadWrite.All"];
const MEMBERS_WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const DIRECTORY_OBJECTS_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const DOMAINS_READ: &[&str] = &[
    "Domain.Read.All",
    "Domain.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ORGANIZATION_READ: &[&str] = &[
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// organization-update: "Organization.ReadWrite.All", higher privileged "Not available".
const ORGANIZATION_WRITE: &[&str] = &["Organization.ReadWrite.All"];
const SKUS_READ: &[&str] = &[
    "LicenseAssignment.Read.All",
    "LicenseAssignment.ReadWrite.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ROLES_READ: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const DELETED_USERS_WRITE: &[&str] = &["User.DeleteRestore.All", "User.ReadWrite.All"];
const APPLICATIONS_READ: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.OwnedBy",
    "Application.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Writes to an application: OwnedBy only counts for the caller's own app registration.
const APPLICATIONS_WRITE: &[&str] = &["Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"];
const AVAILABLE_EXTENSIONS: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// Any one of these application permissions.
    pub any_of: &'static [&'static str],
    /// For writes to an application: the appId of the application written (OwnedBy applies
    /// only when it is the caller's own).
    pub owned_app: bool,
}

const fn any(any_of: &'static [&'static str]) -> Option<Requirement> {
    Some(Requirement {
        any_of,
        owned_app: false,
    })
}

/// The permissions `method` on the path `segs` (split as the router splits them, with
/// `applications(appId='x')` as two segments) needs; `None` for routes the emulator does not
/// serve (they fail in routing with Graph's own error).
pub fn requirement(method: &str, segs: &[&str]) -> Option<Requirement> {
    let read = method == "GET";
    match (segs, method) {
        (["users"], "POST") => any(USERS_WRITE),
        (["users"] | ["users", "$count" | "delta" | "microsoft.graph.delta()"], _) if read => {
            any(USERS_READ)
        }
        (["users", _], "DELETE") => any(USERS_DELETE),
        (["users", _], "PATCH") => any(USERS_WRITE),
        (["users", _] | ["users", _, "manager"], _) if read => any(USERS_READ),
        (["users", _, "manager", "$ref"], "GET") => any(USERS_READ),
        (["users", _, "manager", "$ref"], _) => any(USERS_WRITE),
        (["users", _, "memberOf"], _) if read => any(GROUPS_READ),
        (
            [
                "users",
                _,
                "assignLicense" | "microsoft.graph.assignLicense",
            ],
            _,
        ) => any(LICENSE_ASSIGN),
        (["groups"], "POST") => any(GROUPS_CREATE),
        (["groups"] | ["groups", "$count" | "delta" | "microsoft.graph.delta()"], _) if read => {
            any(GROUPS_READ)
        }
        (["groups", _], "DELETE") => any(GROUPS_DELETE),
        (["groups", _], "PATCH") => any(GROUPS_WRITE),
        (["groups", _] | ["groups", _, "members" | "owners"], _) if read => any(GROUPS_READ),
        (["groups", _, "members", "$ref"] | ["groups", _, "members", _, "$ref"], _) => {
            any(MEMBERS_WRITE)
        }
        (["domains", ..], _) if read => any(DOMAINS_READ),
        (["organization", ..], _) if read => any(ORGANIZATION_READ),
        (["organization", _], "PATCH") => any(ORGANIZATION_WRITE),
        (["subscribedSkus", ..], _) if read => any(SKUS_READ),
        (["directoryRoles", ..], _) if read => any(ROLES_READ),
        (["directory", "deletedItems", ..], _) if read => any(USERS_READ),
        (["directory", "deletedItems", _] | ["directory", "deletedItems", _, _], _) => {
            any(DELETED_USERS_WRITE)
        }
        (
            [
                "directoryObjects",
                "getAvailableExtensionProperties"
                | "microsoft.graph.getAvailableExtensionProperties",
            ],
            "POST",
        ) => any(AVAILABLE_EXTENSIONS),
        (["directoryObjects", _], _) if read => any(DIRECTORY_OBJECTS_READ),
        (["applications", ..], _) if read => any(APPLICATIONS_READ),
        (["applications", _, "extensionProperties", ..], _) => Some(Requirement {
            any_of: APPLICATIONS_WRITE,
            owned_app: true,
        }),
        _ => None,
    }
}

/// Checks that `caller` may send `method` to `segs`. `app_id_of` resolves the application an
/// `applications/{key}` route addresses (object id or `(appId='…')`) to its appId.
pub fn check(
    caller: &Caller,
    method: &str,
    segs: &[&str],
    app_id_of: impl Fn(&str) -> Option<String>,
) -> GraphResult<()> {
    let Some(req) = requirement(method, segs) else {
        return Ok(());
    };
    let granted = |p: &str| caller.roles.iter().any(|r| r.eq_ignore_ascii_case(p));
    let allowed = req.any_of.iter().any(|p| {
        if !granted(p) {
            return false;
        }
        if req.owned_app && *p == "Application.ReadWrite.OwnedBy" {
            // Only the caller's own app registration.
            return segs
                .get(1)
                .and_then(|key| app_id_of(key))
                .is_some_and(|app| app.eq_ignore_ascii_case(&caller.app_id));
        }
        true
    });
    if allowed {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            app_id: "app-a".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn reads_need_a_documented_permission() {
        let users_only = caller(&["User.Read.All", "GroupMember.Read.All"]);
        assert!(check(&users_only, "GET", &["users"], |_| None).is_ok());
        assert!(check(&users_only, "GET", &["groups", "g", "members"], |_| None).is_ok());
        assert!(
            check(
                &users_only,
                "GET",
                &["directory", "deletedItems", "microsoft.graph.user"],
                |_| None
            )
            .is_ok()
        );
        let e = check(&users_only, "GET", &["directoryRoles"], |_| None).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (403, "Authorization_RequestDenied")
        );
        assert_eq!(
            e.message,
            "Insufficient privileges to complete the operation."
        );
        assert!(check(&users_only, "GET", &["subscribedSkus"], |_| None).is_err());
        assert!(check(&users_only, "POST", &["users"], |_| None).is_err());
        let dir = caller(&["Directory.Read.All"]);
        assert!(check(&dir, "GET", &["directoryRoles", "r", "members"], |_| None).is_ok());
        assert!(
            check(
                &dir,
                "POST",
                &["directoryObjects", "getAvailableExtensionProperties"],
                |_| None
            )
            .is_ok()
        );
        assert!(
            check(
                &users_only,
                "POST",
                &["directoryObjects", "getAvailableExtensionProperties"],
                |_| None
            )
            .is_err()
        );
    }

    #[test]
    fn directory_readwrite_does_not_delete_users_or_groups() {
        let dir = caller(&["Directory.ReadWrite.All"]);
        assert!(check(&dir, "PATCH", &["users", "u"], |_| None).is_ok());
        assert!(check(&dir, "DELETE", &["users", "u"], |_| None).is_err());
        assert!(check(&dir, "DELETE", &["groups", "g"], |_| None).is_err());
    }

    #[test]
    fn owned_by_covers_only_the_callers_own_app() {
        let c = caller(&["Application.ReadWrite.OwnedBy"]);
        let app_of = |k: &str| {
            Some(
                if k == "(appId='app-a')" {
                    "app-a"
                } else {
                    "app-b"
                }
                .to_string(),
            )
        };
        let own = ["applications", "(appId='app-a')", "extensionProperties"];
        let other = ["applications", "(appId='app-b')", "extensionProperties"];
        assert!(check(&c, "POST", &own, app_of).is_ok());
        assert!(check(&c, "POST", &other, app_of).is_err());
        assert!(
            check(&c, "GET", &other, app_of).is_ok(),
            "OwnedBy reads every application"
        );
        let all = caller(&["Application.ReadWrite.All"]);
        assert!(check(&all, "POST", &other, app_of).is_ok());
    }
}
