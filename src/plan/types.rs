//! The plan: a versioned, serialisable value. Renderers display it, `apply` executes it,
//! and nothing else is needed to do either. JSON form: `Plan` with `formatVersion`.

use crate::diagnostics::Diagnostic;
use crate::model::Anchor;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped whenever the JSON shape changes incompatibly; `apply` refuses other versions.
pub const FORMAT_VERSION: u32 = 1;

/// Users or groups, or a domain's federation configuration (`create`/`update` of its
/// `internalDomainFederation`; see `plan::federation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    User,
    Group,
    Domain,
}

/// What an action does. Serialised kebab-case (`add-members`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Create,
    Restore,
    Adopt,
    Update,
    AddMembers,
    RemoveMembers,
    AssignLicense,
    RemoveLicense,
    Disable,
    Delete,
}

impl Operation {
    /// Execution order: groups and users before memberships, licences after users,
    /// deprovisioning last.
    pub fn rank(self) -> u8 {
        match self {
            Operation::Create => 0,
            Operation::Restore => 1,
            Operation::Adopt => 2,
            Operation::Update => 3,
            Operation::AddMembers => 4,
            Operation::RemoveMembers => 5,
            Operation::AssignLicense => 6,
            Operation::RemoveLicense => 7,
            Operation::Disable => 8,
            Operation::Delete => 9,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Restore => "restore",
            Operation::Adopt => "adopt",
            Operation::Update => "update",
            Operation::AddMembers => "add-members",
            Operation::RemoveMembers => "remove-members",
            Operation::AssignLicense => "assign-license",
            Operation::RemoveLicense => "remove-license",
            Operation::Disable => "disable",
            Operation::Delete => "delete",
        }
    }

    /// Disable and delete are deprovisioning: counted by the deletion gates.
    pub fn is_deprovision(self) -> bool {
        matches!(self, Operation::Disable | Operation::Delete)
    }
}

/// Names the object an action is about, every way a person or apply may need.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    /// Source anchor (base64 objectGUID); None only for objects we do not own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    /// AD distinguished name, when the object is in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// UPN for users, display name for groups.
    pub name: String,
    /// Graph object id, when it exists already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The policy's name of the AD source (domain or forest) the object comes from,
    /// when it is in AD and the policy names its sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A member of a group in an add/remove-members action. `id` is None when the member is
/// created by the same plan; apply resolves it by anchor.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRef {
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
}

/// A licence in an assign/remove-license action.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuRef {
    pub sku_part_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku_id: Option<String>,
}

/// One change to one Entra object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub op: Operation,
    pub object: ObjectRef,
    /// The managed properties as Graph holds them now (None for create). Apply re-reads
    /// the object and refuses the action if these no longer hold (stale plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// RFC 6902 JSON Patch from `before` (or `{}` for create) to the desired properties.
    #[serde(default, skip_serializing_if = "json_patch_is_empty")]
    pub patch: json_patch::Patch,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<SkuRef>,
    /// Why, for people. Apply never branches on it.
    pub reason: String,
}

fn json_patch_is_empty(p: &json_patch::Patch) -> bool {
    p.0.is_empty()
}

impl Action {
    /// The properties to send: `before` (or `{}`) with the patch applied.
    pub fn after(&self) -> Result<Value, json_patch::PatchError> {
        let mut v = self
            .before
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        json_patch::patch(&mut v, &self.patch)?;
        Ok(v)
    }
}

/// An action the safety rules held back, with the reason and the numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedAction {
    pub action: Action,
    /// Stable code: `delete-gate-count`, `delete-gate-percent`, `protected`…
    pub code: String,
    pub reason: String,
}

/// Where the policy came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyProvenance {
    pub path: String,
    /// sha256 over the policy files' names and contents.
    pub content_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// Where the AD data came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProvenance {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_usn: Option<u64>,
    pub objects: usize,
    /// sha256 over the objects read (DN, GUID, attributes), in a stable order.
    pub fingerprint: String,
    /// Each named source (domain or forest) the read merged, in policy order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourcePartProvenance>,
}

/// One source of a plan: its name, the DC (or file) it was read from, and its share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourcePartProvenance {
    pub name: String,
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dn: Option<String>,
    /// That DC's highestCommittedUSN at the read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_usn: Option<u64>,
    pub objects: usize,
}

/// Which tenant state the plan was computed against.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetProvenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub users: usize,
    pub groups: usize,
    pub fingerprint: String,
}

/// Counts per operation, for renderers and exit codes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub create: usize,
    pub restore: usize,
    pub adopt: usize,
    pub update: usize,
    pub add_members: usize,
    pub remove_members: usize,
    pub assign_license: usize,
    pub remove_license: usize,
    pub disable: usize,
    pub delete: usize,
    pub blocked: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Owned objects in Entra, the base of `maxDeletePercent`.
    pub owned: usize,
    pub in_scope_users: usize,
    pub in_scope_groups: usize,
    /// Domains this plan switches to federated sign-in: shown before everything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_in_changes: Vec<SignInChange>,
}

/// A domain whose users will sign in at an identity provider once the plan is applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInChange {
    pub domain: String,
    /// Where its users will be sent to sign in.
    pub passive_sign_in_uri: String,
    /// Users of the domain: in Entra now, and those this plan creates or restores.
    pub users: usize,
    /// …of whom this many have no `onPremisesImmutableId`: the identity provider's
    /// ImmutableID claim matches none of them, so they could not sign in.
    pub users_without_immutable_id: usize,
}

/// The plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format_version: u32,
    pub generator: String,
    pub policy: PolicyProvenance,
    pub source: SourceProvenance,
    pub target: TargetProvenance,
    /// The time the plan was computed for (RFC 3339); grace periods count from it.
    pub now: String,
    pub summary: Summary,
    pub actions: Vec<Action>,
    pub blocked: Vec<BlockedAction>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Plan {
    /// True when applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}
