//! What the planner withholds when a safety input could not be read, and the ownership gate.
//!
//! Fail closed: an input Graph refused is never read as "none". Without directory-role
//! holders nothing is adopted; without soft-deleted users no user is restored or created;
//! without the SKUs no licence changes; without the list of other ad2entra anchors nothing
//! new is taken into ownership (create, adopt). Without the anchor extension itself — not
//! registered, or not readable — or with objects stamped by another app's anchor, no plan is
//! made at all: every owned object would look absent and be created again.

use super::{PlanError, Planner};
use crate::diagnostics::Diagnostic;
use crate::model::TargetSnapshot;
use crate::model::target::{ForeignAnchor, Readable, policy_pin_line, same_app};
use crate::plan::types::ObjectType;

/// Per-object code: adoption would happen, but role holders are unknown.
pub(super) const ROLES_UNKNOWN: &str = "adoption-disabled-roles-unreadable";
pub(super) const ROLES_UNKNOWN_HINT: &str = "grant the app RoleManagement.Read.Directory (or Directory.Read.All) so role holders can be excluded, or turn adoption off";
/// Blocked creates of users: a soft-deleted copy may exist.
const DELETED_UNKNOWN: &str = "deleted-users-unreadable";
/// Blocked creates and adoptions: another app's anchor may already own the object.
const OTHERS_UNKNOWN: &str = "other-anchors-unreadable";
/// Licences left alone: the SKUs are unknown.
const SKUS_UNKNOWN: &str = "licenses-skus-unreadable";
/// Another app's anchor extension exists but stamps nothing.
const UNUSED_OTHER_ANCHOR: &str = "other-anchor-extension";

impl Planner<'_> {
    /// Adoption was about to happen: refused when the role holders are unknown (an
    /// administrator's cloud account must never be taken over, then disabled when the AD
    /// user leaves).
    pub(super) fn adoption_refused_roles_unknown(&self) -> Option<(&'static str, String)> {
        let u = self.t.role_members.as_ref().err()?;
        Some((
            ROLES_UNKNOWN,
            format!(
                "could be adopted, but directory-role holders are unknown ({u}); role holders are never adopted, so nothing is"
            ),
        ))
    }

    /// Why taking a new object into ownership (`create`, `adopt`) is withheld, if it is.
    pub(super) fn takeover_withheld(&self, ty: ObjectType) -> Option<(&'static str, String)> {
        if ty == ObjectType::User
            && let Some(u) = self.t.deleted_unreadable
        {
            return Some((
                DELETED_UNKNOWN,
                format!(
                    "soft-deleted users are unknown ({u}); a soft-deleted copy of this user would be restored, while creating or adopting another account would duplicate the person (a new mailbox; the old one purged after 30 days)"
                ),
            ));
        }
        let u = self.t.others_unreadable?;
        Some((
            OTHERS_UNKNOWN,
            format!(
                "other ad2entra anchor extensions are unknown ({u}); the object may already exist, owned through another app registration's anchor"
            ),
        ))
    }

    /// One diagnostic per withheld kind, with the count (the blocked actions list each).
    pub(super) fn summarize_withheld(&mut self) {
        for (code, what, hint) in [
            (
                DELETED_UNKNOWN,
                "user creates and adoptions are blocked",
                "grant the app User.Read.All, so a returning user is restored instead of created twice",
            ),
            (
                OTHERS_UNKNOWN,
                "creates and adoptions are blocked",
                "grant the app Directory.Read.All or Application.Read.All, so other apps' ad2entra anchors can be listed",
            ),
        ] {
            let n = self.blocked.iter().filter(|b| b.code == code).count();
            if n > 0 {
                let reason = match code {
                    DELETED_UNKNOWN => self.t.deleted_unreadable,
                    _ => self.t.others_unreadable,
                };
                let reason = reason.map(ToString::to_string).unwrap_or_default();
                self.diags
                    .push(Diagnostic::error(code, format!("{n} {what}: {reason}")).hint(hint));
            }
        }
        if self.licences_withheld > 0
            && let Some(u) = self.t.skus_unreadable
        {
            self.diags.push(
                Diagnostic::error(
                    SKUS_UNKNOWN,
                    format!(
                        "licences of {} users are left as they are, neither assigned nor removed: {u}",
                        self.licences_withheld
                    ),
                )
                .hint("grant the app LicenseAssignment.Read.All"),
            );
        }
    }
}

fn describe(f: &ForeignAnchor) -> String {
    let app = match &f.app_display_name {
        Some(n) => format!("app {} ('{n}')", f.app_id),
        None => format!("app {}", f.app_id),
    };
    let mut s = format!(
        "{} of {app} is carried by {} users and {} groups",
        f.name, f.users, f.groups
    );
    if !f.examples.is_empty() {
        s.push_str(&format!(" (e.g. {})", f.examples.join(", ")));
    }
    s
}

/// Refuses to plan when ownership cannot be established: objects stamped by another app's
/// anchor extension, or this app's anchor extension not registered or not readable.
/// Returns warnings for other apps' anchor extensions that stamp nothing.
pub(super) fn ownership_gate(target: &TargetSnapshot) -> Result<Vec<Diagnostic>, PlanError> {
    let ext = target.extension_names();
    let app = target
        .extension_app_id
        .as_deref()
        .unwrap_or(crate::model::target::DEFAULT_EXTENSION_APP_ID);
    let others: &[ForeignAnchor] = target.other_anchors.read().map_or(&[], Vec::as_slice);
    let stamping: Vec<&ForeignAnchor> = others
        .iter()
        .filter(|f| f.stamps_objects() && !same_app(&f.app_id, app))
        .collect();
    if !stamping.is_empty() {
        let list: Vec<String> = stamping.iter().map(|f| describe(f)).collect();
        let pin = if stamping.len() == 1 {
            format!(
                "If those objects are this policy's (an earlier or another app registration ran ad2entra), pin that app in the policy so every app registration reads the same anchor:\n\n{}\n",
                policy_pin_line(&stamping[0].app_id)
            )
        } else {
            "Pin the app whose objects are this policy's with `target: {extensionAppId: \"<appId>\"}`.\n".to_string()
        };
        return Err(PlanError::OtherAnchorExtensions(format!(
            "Entra holds objects stamped by another ad2entra anchor extension than the one in use ({} of app {app}): {}. A plan with this app's anchor would see none of them as owned and create them again; refusing to plan. {pin}If they belong to another ad2entra instance, the two must not share this tenant.",
            ext.anchor,
            list.join("; "),
        )));
    }
    match &target.anchor_registered {
        Readable::Read(true) => {}
        Readable::Read(false) => {
            return Err(PlanError::AnchorExtensionMissing {
                name: ext.anchor,
                app_id: app.to_string(),
            });
        }
        Readable::Unreadable(u) => {
            return Err(PlanError::AnchorExtensionUnreadable {
                name: ext.anchor,
                reason: u.to_string(),
            });
        }
    }
    Ok(others
        .iter()
        .filter(|f| !f.stamps_objects() && !same_app(&f.app_id, app))
        .map(|f| {
            Diagnostic::warning(
                UNUSED_OTHER_ANCHOR,
                format!(
                    "another ad2entra anchor extension is registered in the tenant: {} of app {}{}; no user or group carries it",
                    f.name,
                    f.app_id,
                    f.app_display_name
                        .as_ref()
                        .map(|n| format!(" ('{n}')"))
                        .unwrap_or_default()
                ),
            )
            .hint("left by `ad2entra init` run as another app registration; delete it from that app (DELETE /applications/{id}/extensionProperties/{id}) unless another instance is about to use it")
        })
        .collect())
}
