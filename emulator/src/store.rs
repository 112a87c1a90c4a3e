//! The directory state and every write Graph allows on it, with Graph's validation rules:
//! required and read-only properties, unknown properties, length limits, verified UPN domains,
//! value rules ([`crate::rules`]), uniqueness (userPrincipalName, mail/proxyAddresses,
//! onPremisesImmutableId, and mailNickname among Microsoft 365 groups),
//! on-premises mastered objects, soft delete and restore, memberships, managers, licences and
//! directory extensions. Every change bumps a sequence number that delta queries read.

use crate::config::{
    ApplicationConfig, DomainConfig, EmulatorConfig, ExtensionPropertyConfig, SkuConfig,
};
use crate::errors::{GraphError, GraphResult};
use crate::index::PropIndex;
use crate::model::{self, DirObject, Kind};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A registered directory extension.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionProperty {
    /// Object id of the extensionProperty.
    pub id: String,
    /// Full name `extension_{appIdWithoutDashes}_{name}`.
    pub name: String,
    /// Data type (`String`, `Boolean`, `Integer`, ...).
    pub data_type: String,
    /// Target object types (`User`, `Group`).
    pub target_objects: Vec<String>,
    /// Collection-valued.
    pub is_multi_valued: bool,
    /// Display name of the owning application.
    pub app_display_name: String,
}

impl ExtensionProperty {
    /// Graph's JSON representation.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "deletedDateTime": null,
            "appDisplayName": self.app_display_name,
            "dataType": self.data_type,
            "isMultiValued": self.is_multi_valued,
            "isSyncedFromOnPremises": false,
            "name": self.name,
            "targetObjects": self.target_objects,
        })
    }
}

/// An application registration.
#[derive(Debug, Clone)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// appId.
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// Registered extensions.
    pub extensions: Vec<ExtensionProperty>,
}

/// A deletion for delta's `@removed`.
#[derive(Debug, Clone)]
pub struct Tombstone {
    /// Kind of the removed object.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// Sequence number of the deletion.
    pub seq: u64,
    /// `changed` (soft-deleted, restorable) or `deleted` (gone).
    pub reason: &'static str,
}

/// A membership change for `members@delta`.
#[derive(Debug, Clone)]
pub struct MemberChange {
    /// Sequence number.
    pub seq: u64,
    /// Group id.
    pub group: String,
    /// Member id.
    pub member: String,
    /// Member kind.
    pub member_kind: Kind,
    /// Added (true) or removed (false).
    pub added: bool,
}

/// The tenant's directory.
///
/// Uniqueness checks and `$filter … eq` lookups go through an index of some properties
/// ([`crate::index`]), kept up to date by the methods here. Code that edits an object's
/// `props` directly must call [`Directory::rebuild_index`] afterwards.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Tenant id.
    pub tenant_id: String,
    /// Organization name.
    pub tenant_display_name: String,
    /// Active users by id.
    pub users: BTreeMap<String, DirObject>,
    /// Soft-deleted users by id.
    pub deleted_users: BTreeMap<String, DirObject>,
    /// Groups by id.
    pub groups: BTreeMap<String, DirObject>,
    /// Domains.
    pub domains: Vec<DomainConfig>,
    /// Subscribed SKUs.
    pub skus: Vec<SkuConfig>,
    /// Applications.
    pub applications: Vec<Application>,
    /// Directory role name → member ids; writes to these users need privileges the app lacks.
    pub role_members: BTreeMap<String, BTreeSet<String>>,
    /// Last change sequence number.
    pub seq: u64,
    /// Deletions.
    pub tombstones: Vec<Tombstone>,
    /// Membership changes.
    pub member_log: Vec<MemberChange>,
    /// Soft-delete retention.
    pub retention: Duration,
    /// Value refusals no documentation gives, set by tests ([`crate::rules::UndocumentedRule`]).
    pub undocumented_rules: Vec<crate::rules::UndocumentedRule>,
    /// The tenant's directory synchronization and settings (`/organization`).
    pub organization: crate::organization::Organization,
    /// The `passwordProfile.password` values clients sent (creates and updates, in order),
    /// kept only once a test asked ([`crate::Emulator::record_passwords`]): Graph never
    /// returns them, and the test searches every output of the client for them.
    pub received_passwords: Option<Vec<String>>,
    /// Lookup index over users, deleted users and groups.
    index: PropIndex,
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Short extension name → full name for an appId.
pub fn extension_full_name(app_id: &str, name: &str) -> String {
    if name.starts_with("extension_") {
        name.to_string()
    } else {
        format!("extension_{}_{}", app_id.replace('-', ""), name)
    }
}

fn ext_from_config(app: &ApplicationConfig, e: &ExtensionPropertyConfig) -> ExtensionProperty {
    ExtensionProperty {
        id: uuid::Uuid::new_v4().to_string(),
        name: extension_full_name(&app.app_id, &e.name),
        data_type: e.data_type.clone(),
        target_objects: e.target_objects.clone(),
        is_multi_valued: e.is_multi_valued,
        app_display_name: app.display_name.clone(),
    }
}

impl Directory {
    /// An empty directory for the configuration.
    pub fn new(cfg: &EmulatorConfig) -> Self {
        Directory {
            tenant_id: cfg.tenant_id.clone(),
            tenant_display_name: cfg.tenant_display_name.clone(),
            users: BTreeMap::new(),
            deleted_users: BTreeMap::new(),
            groups: BTreeMap::new(),
            domains: cfg.domains.clone(),
            skus: cfg.skus.clone(),
            applications: cfg
                .applications
                .iter()
                .map(|a| Application {
                    id: a.id.clone(),
                    app_id: a.app_id.clone(),
                    display_name: a.display_name.clone(),
                    extensions: a
                        .extension_properties
                        .iter()
                        .map(|e| ext_from_config(a, e))
                        .collect(),
                })
                .collect(),
            role_members: BTreeMap::new(),
            seq: 0,
            tombstones: Vec::new(),
            member_log: Vec::new(),
            retention: Duration::from_secs_f64(cfg.soft_delete_retention_secs),
            undocumented_rules: Vec::new(),
            organization: Default::default(),
            received_passwords: None,
            index: PropIndex::default(),
        }
    }

    /// Re-files object `id` (user, deleted user or group) in the index after its properties
    /// changed, or drops it when it no longer exists.
    fn reindex(&mut self, id: &str) {
        let props = self
            .users
            .get(id)
            .or_else(|| self.deleted_users.get(id))
            .or_else(|| self.groups.get(id))
            .map(|o| &o.props);
        self.index.set(id, props);
    }

    /// Active objects of `kind` by id (users or groups).
    pub fn pool(&self, kind: Kind) -> &BTreeMap<String, DirObject> {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }

    /// The user or group `id` for a write: not found when missing, refused when it is synced
    /// from on-premises AD.
    fn cloud_mastered(&self, kind: Kind, id: &str) -> GraphResult<&DirObject> {
        let o = self
            .pool(kind)
            .get(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        if o.is_synced() {
            return Err(GraphError::on_premises_mastered());
        }
        Ok(o)
    }

    /// Stores a new object in its kind's pool and indexes it; returns its id.
    fn add_object(&mut self, obj: DirObject) -> String {
        let id = obj.id.clone();
        match obj.kind {
            Kind::User => self.users.insert(id.clone(), obj),
            Kind::Group => self.groups.insert(id.clone(), obj),
        };
        self.reindex(&id);
        id
    }

    /// Rebuilds the lookup index from scratch (after editing objects' `props` directly).
    pub fn rebuild_index(&mut self) {
        self.index.clear();
        for o in self
            .users
            .values()
            .chain(self.deleted_users.values())
            .chain(self.groups.values())
        {
            self.index.set(&o.id, Some(&o.props));
        }
    }

    /// Objects of `pool` whose indexed property `prop` may equal `value` under `$filter`'s
    /// case-insensitive `eq` (a superset, in id order; callers evaluate the filter on each).
    /// `None` when `prop` is not indexed.
    pub fn eq_candidates<'a>(
        &'a self,
        kind: Kind,
        prop: &str,
        value: &str,
    ) -> Option<Vec<&'a DirObject>> {
        if !crate::index::is_indexed(prop) {
            return None;
        }
        let pool = self.pool(kind);
        Some(
            self.index
                .candidates(prop, &value.to_lowercase())
                .filter_map(|id| pool.get(id))
                .collect(),
        )
    }

    /// Next change sequence number.
    pub fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Adds an application registration (seeding).
    pub fn add_application(&mut self, app: &ApplicationConfig) {
        let exts: Vec<ExtensionProperty> = app
            .extension_properties
            .iter()
            .map(|e| ext_from_config(app, e))
            .collect();
        if let Some(existing) = self
            .applications
            .iter_mut()
            .find(|a| a.app_id == app.app_id)
        {
            for e in exts {
                if !existing.extensions.iter().any(|x| x.name == e.name) {
                    existing.extensions.push(e);
                }
            }
        } else {
            self.applications.push(Application {
                id: app.id.clone(),
                app_id: app.app_id.clone(),
                display_name: app.display_name.clone(),
                extensions: exts,
            });
        }
    }

    /// A registered extension by full name.
    pub fn extension(&self, name: &str) -> Option<&ExtensionProperty> {
        self.applications
            .iter()
            .flat_map(|a| &a.extensions)
            .find(|e| e.name.eq_ignore_ascii_case(name))
    }

    /// Whether `name` is a registered extension applying to `kind`.
    pub fn extension_applies(&self, name: &str, kind: Kind) -> bool {
        self.extension(name).is_some_and(|e| {
            e.target_objects
                .iter()
                .any(|t| t.eq_ignore_ascii_case(kind.resource()))
        })
    }

    /// The user with this id or userPrincipalName.
    pub fn user_id(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        let lower = key.to_lowercase();
        self.index
            .candidates("userPrincipalName", &lower)
            .filter_map(|id| self.users.get(id))
            .find(|u| {
                u.str_prop("userPrincipalName")
                    .is_some_and(|p| p.to_lowercase() == lower)
            })
            .map(|u| u.id.clone())
    }

    /// Any active object by id.
    pub fn object(&self, id: &str) -> Option<&DirObject> {
        self.users.get(id).or_else(|| self.groups.get(id))
    }

    /// Removes soft-deleted users past retention (they become permanently deleted), and
    /// converts synced objects once turning directory synchronization off completes.
    pub fn housekeeping(&mut self, now: Instant) {
        self.finish_dirsync_conversion(now);
        let expired: Vec<String> = self
            .deleted_users
            .values()
            .filter(|u| {
                u.deleted
                    .is_some_and(|(at, _)| now.saturating_duration_since(at) >= self.retention)
            })
            .map(|u| u.id.clone())
            .collect();
        for id in expired {
            self.purge_deleted_user(&id);
        }
    }

    /// Users counted as the tenant's size.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Licences of a SKU consumed by active users.
    pub fn consumed_units(&self, sku_id: &str) -> u32 {
        let n = self
            .users
            .values()
            .filter(|u| {
                u.props
                    .get("assignedLicenses")
                    .and_then(Value::as_array)
                    .is_some_and(|l| {
                        l.iter()
                            .any(|x| x.get("skuId").and_then(Value::as_str) == Some(sku_id))
                    })
            })
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn check_privileged(&self, id: &str) -> GraphResult<()> {
        if self.role_members.values().any(|m| m.contains(id)) {
            return Err(GraphError::forbidden());
        }
        Ok(())
    }

    // ---------------------------------------------------------------- validation

    /// Validates a create or update body for `kind`; returns the properties to store and the
    /// `members@odata.bind` / `owners@odata.bind` lists.
    fn validate_body(
        &self,
        kind: Kind,
        body: &Map<String, Value>,
        existing: Option<&DirObject>,
    ) -> GraphResult<Validated> {
        let creating = existing.is_none();
        let mut out = Validated::default();
        for (k, v) in body {
            if let Some(nav) = k.strip_suffix("@odata.bind") {
                match (kind, nav) {
                    (Kind::Group, "members" | "owners") => {
                        let urls = v.as_array().ok_or_else(|| {
                            GraphError::odata_bad_request(format!(
                                "Invalid value for '{k}': an array of URLs is expected."
                            ))
                        })?;
                        let mut ids = Vec::new();
                        for u in urls {
                            let s = u.as_str().ok_or_else(|| {
                                GraphError::odata_bad_request(format!("Invalid value for '{k}'."))
                            })?;
                            ids.push(id_from_url(s)?);
                        }
                        if nav == "members" {
                            out.members = ids;
                        } else {
                            out.owners = ids;
                        }
                        continue;
                    }
                    _ => return Err(unknown_property(kind, k)),
                }
            }
            if k == "@odata.type" {
                continue;
            }
            if k.starts_with("extension_") {
                match self.extension(k) {
                    Some(e)
                        if e.target_objects
                            .iter()
                            .any(|t| t.eq_ignore_ascii_case(kind.resource())) =>
                    {
                        check_extension_value(e, v)?;
                        let name = e.name.clone();
                        out.props.insert(name, v.clone());
                        continue;
                    }
                    _ => {
                        return Err(GraphError::bad_request(format!(
                            "The following extension properties are not available: {k}."
                        )));
                    }
                }
            }
            if !model::is_declared(kind, k) {
                return Err(unknown_property(kind, k));
            }
            let read_only = match kind {
                Kind::User => model::USER_READ_ONLY,
                Kind::Group => model::GROUP_READ_ONLY,
            };
            if read_only.contains(&k.as_str()) {
                return Err(GraphError::bad_request(format!(
                    "Property '{k}' is read-only and cannot be set."
                )));
            }
            if kind == Kind::Group && k == "isAssignableToRole" && !creating {
                return Err(GraphError::bad_request(
                    "Property 'isAssignableToRole' is read-only and cannot be set.",
                ));
            }
            out.props.insert(k.clone(), v.clone());
        }
        // Types against the OpenAPI schema.
        let mut typed = Map::new();
        for (k, v) in &out.props {
            if !k.starts_with("extension_") {
                typed.insert(k.clone(), v.clone());
            }
        }
        if let Err(e) = crate::conformance::check_entity_value(kind.schema(), &Value::Object(typed))
        {
            return Err(GraphError::odata_bad_request(format!(
                "Invalid request body: {e}"
            )));
        }
        crate::rules::check(kind, &out.props)?;
        crate::rules::check_undocumented(&self.undocumented_rules, kind, &out.props)?;
        if let Some(v) = out.props.get("displayName")
            && v.as_str().is_none_or(|s| s.trim().is_empty())
        {
            return Err(GraphError::invalid_value("displayName", kind.resource()));
        }
        if out.props.get("mailNickname").is_some_and(Value::is_null) {
            return Err(GraphError::invalid_value("mailNickname", kind.resource()));
        }
        if creating {
            let required: &[&str] = match kind {
                Kind::User => &[
                    "accountEnabled",
                    "displayName",
                    "mailNickname",
                    "passwordProfile",
                    "userPrincipalName",
                ],
                Kind::Group => &[
                    "displayName",
                    "mailEnabled",
                    "mailNickname",
                    "securityEnabled",
                ],
            };
            for r in required {
                if out.props.get(*r).is_none_or(Value::is_null) {
                    return Err(required_missing(r));
                }
            }
        }
        if let Some(pp) = out.props.get("passwordProfile") {
            let has_password = pp
                .get("password")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty());
            if creating && !has_password {
                return Err(required_missing("passwordProfile.password"));
            }
            if let Some(p) = pp.get("password").and_then(Value::as_str)
                && (p.len() < 8 || p.len() > 256)
            {
                return Err(GraphError::bad_request(
                    "The specified password does not comply with password complexity requirements. Please provide a different password.",
                ));
            }
        }
        if kind == Kind::User {
            self.validate_upn_and_anchor(&out.props, existing)?;
        }
        if let Some(e) = out.props.get("employeeId")
            && !e.is_null()
            && !e.is_string()
        {
            return Err(GraphError::invalid_value("employeeId", "User"));
        }
        if out.members.len() + out.owners.len() > 20 {
            return Err(GraphError::bad_request(
                "A maximum of 20 relationships (members and owners) can be added in a single request.",
            ));
        }
        Ok(out)
    }

    fn validate_upn_and_anchor(
        &self,
        props: &Map<String, Value>,
        existing: Option<&DirObject>,
    ) -> GraphResult<()> {
        let upn = props
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .or_else(|| existing.and_then(|e| e.str_prop("userPrincipalName")));
        let immutable = props
            .get("onPremisesImmutableId")
            .and_then(Value::as_str)
            .or_else(|| existing.and_then(|e| e.str_prop("onPremisesImmutableId")));
        if let Some(v) = props.get("userPrincipalName") {
            let s = v.as_str().unwrap_or_default();
            // The shape was checked with the other value rules (crate::rules).
            let Some((_, domain)) = s.rsplit_once('@') else {
                return Err(GraphError::invalid_value("userPrincipalName", "User"));
            };
            let dom = self
                .domains
                .iter()
                .find(|d| d.id.eq_ignore_ascii_case(domain) && d.is_verified);
            let Some(dom) = dom else {
                let mut e = GraphError::bad_request(
                    "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
                );
                e.details.push(crate::errors::ErrorDetail {
                    code: "InvalidValue".into(),
                    message: e.message.clone(),
                    target: "userPrincipalName".into(),
                });
                return Err(e);
            };
            if dom.authentication_type.eq_ignore_ascii_case("Federated") && immutable.is_none() {
                return Err(GraphError::bad_request(
                    "One or more properties contains invalid values.",
                ));
            }
        }
        if let Some(v) = props.get("onPremisesImmutableId")
            && let Some(s) = v.as_str()
            && (s.contains('$') || s.contains('_') || s.is_empty())
        {
            return Err(GraphError::invalid_value("onPremisesImmutableId", "User"));
        }
        let _ = upn;
        Ok(())
    }

    /// Whether a write (`props`, on object `self_id` when it exists) is to a Microsoft 365
    /// group, whose mailNickname is "unique for Microsoft 365 groups in the organization";
    /// users and security groups may share one (Graph accepts two security groups with
    /// one mailNickname).
    fn unified_group_write(
        &self,
        kind: Kind,
        props: &Map<String, Value>,
        self_id: Option<&str>,
    ) -> bool {
        kind == Kind::Group
            && (is_unified(props.get("groupTypes"))
                || self_id
                    .and_then(|id| self.groups.get(id))
                    .is_some_and(|g| is_unified(g.props.get("groupTypes"))))
    }

    /// Conflicts with other objects. Candidates come from the index; each is checked with
    /// the same rule a scan of every object would apply.
    fn check_uniqueness(
        &self,
        kind: Kind,
        props: &Map<String, Value>,
        self_id: Option<&str>,
    ) -> GraphResult<()> {
        let other = |id: &&str| Some(*id) != self_id;
        let eq = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
        if kind == Kind::User
            && let Some(upn) = props.get("userPrincipalName").and_then(Value::as_str)
            && self
                .index
                .candidates("userPrincipalName", &upn.to_lowercase())
                .filter(other)
                .filter_map(|id| self.users.get(id))
                .any(|u| eq(u.str_prop("userPrincipalName"), upn))
        {
            return Err(GraphError::conflict("userPrincipalName"));
        }
        if self.unified_group_write(kind, props, self_id)
            && let Some(nick) = props.get("mailNickname").and_then(Value::as_str)
            && self
                .index
                .candidates("mailNickname", &nick.to_lowercase())
                .filter(other)
                .filter_map(|id| self.groups.get(id))
                .any(|o| {
                    is_unified(o.props.get("groupTypes")) && eq(o.str_prop("mailNickname"), nick)
                })
        {
            return Err(GraphError::conflict("mailNickname"));
        }
        if kind == Kind::User
            && let Some(anchor) = props.get("onPremisesImmutableId").and_then(Value::as_str)
            && self
                .index
                .candidates("onPremisesImmutableId", &anchor.to_lowercase())
                .filter(other)
                .filter_map(|id| self.users.get(id).or_else(|| self.deleted_users.get(id)))
                .any(|u| u.str_prop("onPremisesImmutableId") == Some(anchor))
        {
            return Err(GraphError::conflict("onPremisesImmutableId"));
        }
        if let Some(mail) = props.get("mail").and_then(Value::as_str) {
            let lower = mail.to_lowercase();
            let smtp = format!("smtp:{lower}");
            let clash = self
                .index
                .candidates("mail", &lower)
                .chain(self.index.candidates("proxyAddresses", &smtp))
                .filter(other)
                .filter_map(|id| self.users.get(id).or_else(|| self.groups.get(id)))
                .any(|o| mail_clashes(o, mail, &smtp));
            if clash {
                return Err(GraphError::conflict("proxyAddresses"));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- users

    /// Drops a client's `passwordProfile.password` from what is stored (Graph never
    /// returns it), recording it first when [`Directory::received_passwords`] is on.
    fn take_password(&mut self, props: &mut Map<String, Value>) {
        if let Some(record) = self.received_passwords.as_mut()
            && let Some(p) = props
                .get("passwordProfile")
                .and_then(|pp| pp.get("password"))
                .and_then(Value::as_str)
        {
            record.push(p.to_string());
        }
        strip_password(props);
    }

    /// POST /users.
    pub fn create_user(&mut self, body: &Map<String, Value>) -> GraphResult<String> {
        let v = self.validate_body(Kind::User, body, None)?;
        self.check_uniqueness(Kind::User, &v.props, None)?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut props = v.props;
        self.take_password(&mut props);
        props.insert("createdDateTime".into(), Value::String(now_iso()));
        props
            .entry("userType")
            .or_insert(Value::String("Member".into()));
        props.insert(
            "securityIdentifier".into(),
            Value::String(model::cloud_sid(&id)),
        );
        apply_mail(&mut props, None);
        let seq = self.bump();
        Ok(self.add_object(DirObject::new(Kind::User, id, props, seq)))
    }

    /// PATCH /users/{id}.
    pub fn update_user(&mut self, id: &str, body: &Map<String, Value>) -> GraphResult<()> {
        let existing = self
            .users
            .get(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        self.check_privileged(id)?;
        if existing.is_synced() {
            let cloud_only = body.keys().all(|k| {
                model::USER_CLOUD_MASTERED.contains(&k.as_str()) || k.starts_with("extension_")
            });
            if !cloud_only {
                return Err(GraphError::on_premises_mastered());
            }
        }
        let v = self.validate_body(Kind::User, body, Some(existing))?;
        self.check_uniqueness(Kind::User, &v.props, Some(id))?;
        let seq = self.bump();
        let mut props = v.props;
        self.take_password(&mut props);
        if let Some(u) = self.users.get_mut(id) {
            let old_proxies = u.props.get("proxyAddresses").cloned();
            for (k, val) in props.iter() {
                u.patch_prop(k.clone(), val.clone());
            }
            if props.contains_key("mail") {
                apply_mail(&mut u.props, old_proxies);
            }
            u.version = seq;
        }
        self.reindex(id);
        Ok(())
    }

    /// DELETE /users/{id}: soft delete (restorable for the retention period).
    pub fn delete_user(&mut self, id: &str) -> GraphResult<()> {
        let u = self
            .users
            .get(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        self.check_privileged(id)?;
        if u.is_synced() {
            return Err(GraphError::on_premises_mastered());
        }
        let seq = self.bump();
        if let Some(mut u) = self.users.remove(id) {
            u.deleted = Some((Instant::now(), chrono::Utc::now()));
            u.version = seq;
            self.deleted_users.insert(id.to_string(), u);
        }
        self.tombstones.push(Tombstone {
            kind: Kind::User,
            id: id.to_string(),
            seq,
            reason: "changed",
        });
        Ok(())
    }

    /// Permanently deletes a soft-deleted user (DELETE /directory/deletedItems/{id} or expiry).
    pub fn purge_deleted_user(&mut self, id: &str) -> bool {
        if self.deleted_users.remove(id).is_none() {
            return false;
        }
        self.reindex(id);
        let seq = self.bump();
        self.tombstones.push(Tombstone {
            kind: Kind::User,
            id: id.to_string(),
            seq,
            reason: "deleted",
        });
        self.remove_from_all_groups(id, Kind::User, seq);
        for u in self.users.values_mut() {
            if u.manager.as_deref() == Some(id) {
                u.manager = None;
            }
        }
        true
    }

    fn remove_from_all_groups(&mut self, member: &str, member_kind: Kind, seq: u64) {
        let mut changes = Vec::new();
        for g in self.groups.values_mut() {
            let before = g.members.len();
            g.members.retain(|m| m != member);
            g.owners.retain(|m| m != member);
            if g.members.len() != before {
                g.version = seq;
                changes.push(MemberChange {
                    seq,
                    group: g.id.clone(),
                    member: member.to_string(),
                    member_kind,
                    added: false,
                });
            }
        }
        self.member_log.extend(changes);
    }

    /// POST /directory/deletedItems/{id}/restore.
    pub fn restore_user(&mut self, id: &str) -> GraphResult<()> {
        let u = self
            .deleted_users
            .get(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        let mut unique = Map::new();
        for k in ["userPrincipalName", "mail"] {
            if let Some(v) = u.props.get(k) {
                unique.insert(k.to_string(), v.clone());
            }
        }
        self.check_uniqueness(Kind::User, &unique, Some(id))?;
        let seq = self.bump();
        if let Some(mut u) = self.deleted_users.remove(id) {
            u.deleted = None;
            u.version = seq;
            // Memberships were kept while deleted; make restored memberships visible to delta.
            for g in self.groups.values_mut() {
                if g.members.iter().any(|m| m == id) {
                    g.version = seq;
                    self.member_log.push(MemberChange {
                        seq,
                        group: g.id.clone(),
                        member: id.to_string(),
                        member_kind: Kind::User,
                        added: true,
                    });
                }
            }
            self.users.insert(id.to_string(), u);
        }
        Ok(())
    }

    /// PUT /users/{id}/manager/$ref.
    pub fn set_manager(&mut self, id: &str, manager: &str) -> GraphResult<()> {
        self.cloud_mastered(Kind::User, id)?;
        if !self.users.contains_key(manager) {
            return Err(GraphError::not_found(manager));
        }
        if manager == id {
            return Err(GraphError::bad_request(
                "A user cannot be their own manager.",
            ));
        }
        let seq = self.bump();
        if let Some(u) = self.users.get_mut(id) {
            u.manager = Some(manager.to_string());
            u.version = seq;
        }
        Ok(())
    }

    /// DELETE /users/{id}/manager/$ref.
    pub fn remove_manager(&mut self, id: &str) -> GraphResult<()> {
        let u = self.cloud_mastered(Kind::User, id)?;
        if u.manager.is_none() {
            return Err(GraphError::not_found("manager"));
        }
        let seq = self.bump();
        if let Some(u) = self.users.get_mut(id) {
            u.manager = None;
            u.version = seq;
        }
        Ok(())
    }

    /// POST /users/{id}/assignLicense.
    pub fn assign_license(&mut self, id: &str, body: &Map<String, Value>) -> GraphResult<()> {
        let u = self
            .users
            .get(id)
            .ok_or_else(|| GraphError::not_found(id))?;
        for k in body.keys() {
            if k != "addLicenses" && k != "removeLicenses" {
                return Err(GraphError::odata_bad_request(format!(
                    "The parameter '{k}' in the request payload is not a valid parameter for the operation 'assignLicense'."
                )));
            }
        }
        let add = body.get("addLicenses").and_then(Value::as_array).ok_or_else(|| {
            GraphError::odata_bad_request("The parameter 'addLicenses' in the request payload is required and must be an array.")
        })?;
        let remove = body.get("removeLicenses").and_then(Value::as_array).ok_or_else(|| {
            GraphError::odata_bad_request("The parameter 'removeLicenses' in the request payload is required and must be an array.")
        })?;
        if u.props
            .get("usageLocation")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && !add.is_empty()
        {
            return Err(GraphError::bad_request(
                "License assignment cannot be done for user with invalid usage location.",
            ));
        }
        let mut current: Vec<Value> = u
            .props
            .get("assignedLicenses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let has = |list: &[Value], sku: &str| {
            list.iter()
                .any(|l| l.get("skuId").and_then(Value::as_str) == Some(sku))
        };
        for r in remove {
            let sku = r
                .as_str()
                .ok_or_else(|| GraphError::odata_bad_request("removeLicenses must hold GUIDs."))?;
            if !has(&current, sku) {
                return Err(GraphError::bad_request(format!(
                    "User does not have a corresponding license {sku}."
                )));
            }
            current.retain(|l| l.get("skuId").and_then(Value::as_str) != Some(sku));
        }
        for a in add {
            let sku = a.get("skuId").and_then(Value::as_str).ok_or_else(|| {
                GraphError::odata_bad_request("addLicenses entries need a skuId.")
            })?;
            let Some(s) = self
                .skus
                .iter()
                .find(|s| s.sku_id.eq_ignore_ascii_case(sku))
            else {
                return Err(GraphError::bad_request(format!(
                    "License {sku} does not correspond to a valid company License."
                )));
            };
            let disabled: Vec<Value> = a
                .get("disabledPlans")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for d in &disabled {
                let known = d.as_str().is_some_and(|d| {
                    s.service_plans
                        .iter()
                        .any(|p| p.service_plan_id.eq_ignore_ascii_case(d))
                });
                if !known {
                    return Err(GraphError::bad_request(format!(
                        "Invalid disabled plan {d} for license {sku}."
                    )));
                }
            }
            let newly = !has(&current, &s.sku_id);
            if newly && self.consumed_units(&s.sku_id) >= s.enabled_units {
                return Err(GraphError::bad_request(format!(
                    "Subscription with SKU {} does not have any available licenses.",
                    s.sku_id
                )));
            }
            current.retain(|l| l.get("skuId").and_then(Value::as_str) != Some(s.sku_id.as_str()));
            current.push(json!({"disabledPlans": disabled, "skuId": s.sku_id}));
        }
        let seq = self.bump();
        if let Some(u) = self.users.get_mut(id) {
            u.props
                .insert("assignedLicenses".into(), Value::Array(current));
            u.version = seq;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- groups

    /// POST /groups (security groups only).
    pub fn create_group(&mut self, body: &Map<String, Value>) -> GraphResult<String> {
        let v = self.validate_body(Kind::Group, body, None)?;
        let mail_enabled = v.props.get("mailEnabled").and_then(Value::as_bool) == Some(true);
        let security_enabled =
            v.props.get("securityEnabled").and_then(Value::as_bool) == Some(true);
        let types: Vec<String> = v
            .props
            .get("groupTypes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if types.iter().any(|t| {
            t.eq_ignore_ascii_case("Unified") || t.eq_ignore_ascii_case("DynamicMembership")
        }) {
            return Err(GraphError::bad_request(
                "This emulator only creates security groups; groupTypes 'Unified' and 'DynamicMembership' are not supported.",
            ));
        }
        if mail_enabled {
            return Err(GraphError::bad_request(
                "Cannot Create a mail-enabled security groups and or distribution list.",
            ));
        }
        if !security_enabled {
            return Err(GraphError::bad_request(
                "A group must be either mail-enabled or security-enabled.",
            ));
        }
        if v.props.get("isAssignableToRole").and_then(Value::as_bool) == Some(true)
            && !security_enabled
        {
            return Err(GraphError::invalid_value("isAssignableToRole", "Group"));
        }
        self.check_uniqueness(Kind::Group, &v.props, None)?;
        let members = self.check_new_members(None, &v.members)?;
        for o in &v.owners {
            if !self.users.contains_key(o) {
                return Err(GraphError::not_found(o));
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut props = v.props;
        let now = now_iso();
        props.insert("createdDateTime".into(), Value::String(now.clone()));
        props.insert("renewedDateTime".into(), Value::String(now));
        props.entry("groupTypes").or_insert(json!([]));
        props.insert(
            "securityIdentifier".into(),
            Value::String(model::cloud_sid(&id)),
        );
        let seq = self.bump();
        for (m, k) in &members {
            self.member_log.push(MemberChange {
                seq,
                group: id.clone(),
                member: m.clone(),
                member_kind: *k,
                added: true,
            });
        }
        Ok(self.add_object(DirObject {
            members: members.into_iter().map(|(m, _)| m).collect(),
            owners: v.owners,
            ..DirObject::new(Kind::Group, id, props, seq)
        }))
    }

    /// Validates members to add; all-or-nothing.
    fn check_new_members(
        &self,
        group: Option<&DirObject>,
        ids: &[String],
    ) -> GraphResult<Vec<(String, Kind)>> {
        let mut out: Vec<(String, Kind)> = Vec::new();
        for m in ids {
            let kind = if self.users.contains_key(m) {
                Kind::User
            } else if self.groups.contains_key(m) {
                Kind::Group
            } else {
                return Err(GraphError::not_found(m));
            };
            let dup = out.iter().any(|(x, _)| x == m)
                || group.is_some_and(|g| g.members.iter().any(|x| x == m));
            if dup {
                return Err(GraphError::bad_request(
                    "One or more added object references already exist for the following modified properties: 'members'.",
                ));
            }
            if group.is_some_and(|g| g.id == *m) {
                return Err(GraphError::bad_request(
                    "A group cannot be a member of itself.",
                ));
            }
            out.push((m.clone(), kind));
        }
        Ok(out)
    }

    /// PATCH /groups/{id} (properties and `members@odata.bind`).
    pub fn update_group(&mut self, id: &str, body: &Map<String, Value>) -> GraphResult<()> {
        let g = self.cloud_mastered(Kind::Group, id)?;
        let v = self.validate_body(Kind::Group, body, Some(g))?;
        if v.props.get("mailEnabled").and_then(Value::as_bool) == Some(true) {
            return Err(GraphError::bad_request(
                "Cannot Create a mail-enabled security groups and or distribution list.",
            ));
        }
        if v.props.get("securityEnabled").and_then(Value::as_bool) == Some(false) {
            return Err(GraphError::invalid_value("securityEnabled", "Group"));
        }
        if v.props.contains_key("groupTypes") {
            return Err(GraphError::invalid_value("groupTypes", "Group"));
        }
        self.check_uniqueness(Kind::Group, &v.props, Some(id))?;
        let members = self.check_new_members(Some(g), &v.members)?;
        for o in &v.owners {
            if !self.users.contains_key(o) {
                return Err(GraphError::not_found(o));
            }
        }
        let seq = self.bump();
        for (m, k) in &members {
            self.member_log.push(MemberChange {
                seq,
                group: id.to_string(),
                member: m.clone(),
                member_kind: *k,
                added: true,
            });
        }
        if let Some(g) = self.groups.get_mut(id) {
            for (k, val) in v.props {
                g.patch_prop(k, val);
            }
            g.members.extend(members.into_iter().map(|(m, _)| m));
            for o in v.owners {
                if !g.owners.contains(&o) {
                    g.owners.push(o);
                }
            }
            g.version = seq;
        }
        self.reindex(id);
        Ok(())
    }

    /// DELETE /groups/{id}: security groups are deleted permanently.
    pub fn delete_group(&mut self, id: &str) -> GraphResult<()> {
        self.cloud_mastered(Kind::Group, id)?;
        let seq = self.bump();
        self.groups.remove(id);
        self.reindex(id);
        self.tombstones.push(Tombstone {
            kind: Kind::Group,
            id: id.to_string(),
            seq,
            reason: "deleted",
        });
        self.remove_from_all_groups(id, Kind::Group, seq);
        Ok(())
    }

    /// POST /groups/{id}/members/$ref.
    pub fn add_member(&mut self, group: &str, member: &str) -> GraphResult<()> {
        let g = self.cloud_mastered(Kind::Group, group)?;
        let members = self.check_new_members(Some(g), &[member.to_string()])?;
        let seq = self.bump();
        for (m, k) in members {
            self.member_log.push(MemberChange {
                seq,
                group: group.to_string(),
                member: m.clone(),
                member_kind: k,
                added: true,
            });
            if let Some(g) = self.groups.get_mut(group) {
                g.members.push(m);
                g.version = seq;
            }
        }
        Ok(())
    }

    /// DELETE /groups/{id}/members/{member}/$ref.
    pub fn remove_member(&mut self, group: &str, member: &str) -> GraphResult<()> {
        let g = self.cloud_mastered(Kind::Group, group)?;
        if !g.members.iter().any(|m| m == member) {
            return Err(GraphError::not_found(member));
        }
        let kind = if self.groups.contains_key(member) {
            Kind::Group
        } else {
            Kind::User
        };
        let seq = self.bump();
        if let Some(g) = self.groups.get_mut(group) {
            g.members.retain(|m| m != member);
            g.version = seq;
        }
        self.member_log.push(MemberChange {
            seq,
            group: group.to_string(),
            member: member.to_string(),
            member_kind: kind,
            added: false,
        });
        Ok(())
    }

    // ---------------------------------------------------------------- applications

    /// The activated directory roles: Global Administrator (activated in every tenant) plus
    /// every role the seed named, in display-name order.
    pub fn activated_roles(&self) -> Vec<crate::roles::ActivatedRole> {
        crate::roles::BUILT_IN_ROLES
            .iter()
            .filter(|r| {
                r.template_id == crate::roles::GLOBAL_ADMINISTRATOR
                    || self.role_members.contains_key(r.display_name)
            })
            .map(|r| crate::roles::ActivatedRole {
                id: crate::roles::role_object_id(&self.tenant_id, r.template_id),
                role: r,
            })
            .collect()
    }

    /// The activated role addressed by object id or `(roleTemplateId='...')` (also the older
    /// `roleTemplateId=...` spelling).
    pub fn directory_role(&self, key: &str) -> Option<crate::roles::ActivatedRole> {
        let template = key
            .strip_prefix("(roleTemplateId='")
            .and_then(|k| k.strip_suffix("')"))
            .or_else(|| key.strip_prefix("roleTemplateId="));
        self.activated_roles().into_iter().find(|r| match template {
            Some(t) => r.role.template_id.eq_ignore_ascii_case(t),
            None => r.id.eq_ignore_ascii_case(key),
        })
    }

    /// Member ids of an activated role.
    pub fn directory_role_members(&self, role: &crate::roles::ActivatedRole) -> Vec<String> {
        self.role_members
            .get(role.role.display_name)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The application addressed by object id or `(appId='...')`.
    pub fn application_index(&self, key: &str) -> Option<usize> {
        if let Some(app_id) = key
            .strip_prefix("(appId='")
            .and_then(|k| k.strip_suffix("')"))
        {
            return self
                .applications
                .iter()
                .position(|a| a.app_id.eq_ignore_ascii_case(app_id));
        }
        self.applications
            .iter()
            .position(|a| a.id.eq_ignore_ascii_case(key))
    }

    /// POST /applications/{id}/extensionProperties.
    pub fn register_extension(
        &mut self,
        app: usize,
        body: &Map<String, Value>,
    ) -> GraphResult<ExtensionProperty> {
        for k in body.keys() {
            if !["name", "dataType", "targetObjects", "isMultiValued"].contains(&k.as_str()) {
                return Err(GraphError::odata_bad_request(format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.extensionProperty'. Make sure to only use property names that are defined by the type or mark the type as open type."
                )));
            }
        }
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| required_missing("name"))?;
        let data_type = body
            .get("dataType")
            .and_then(Value::as_str)
            .ok_or_else(|| required_missing("dataType"))?;
        if ![
            "Binary",
            "Boolean",
            "DateTime",
            "Integer",
            "LargeInteger",
            "String",
        ]
        .contains(&data_type)
        {
            return Err(GraphError::invalid_value("dataType", "ExtensionProperty"));
        }
        let targets: Vec<String> = body
            .get("targetObjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .filter(|t: &Vec<String>| !t.is_empty())
            .ok_or_else(|| required_missing("targetObjects"))?;
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.len() > 120 {
            return Err(GraphError::invalid_value("name", "ExtensionProperty"));
        }
        let a = &self.applications[app];
        let full = extension_full_name(&a.app_id, name);
        if self.extension(&full).is_some() {
            return Err(GraphError::conflict("name"));
        }
        let ext = ExtensionProperty {
            id: uuid::Uuid::new_v4().to_string(),
            name: full,
            data_type: data_type.to_string(),
            target_objects: targets,
            is_multi_valued: body
                .get("isMultiValued")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            app_display_name: a.display_name.clone(),
        };
        self.applications[app].extensions.push(ext.clone());
        Ok(ext)
    }

    // ---------------------------------------------------------------- seeding

    /// Inserts an object as given (seeding; only structural checks).
    pub fn insert_seeded(
        &mut self,
        kind: Kind,
        mut props: Map<String, Value>,
    ) -> Result<String, String> {
        let id = match props.remove("id") {
            Some(Value::String(s)) => s,
            Some(_) => return Err("id must be a string".into()),
            None => uuid::Uuid::new_v4().to_string(),
        };
        if self.users.contains_key(&id)
            || self.groups.contains_key(&id)
            || self.deleted_users.contains_key(&id)
        {
            return Err(format!("duplicate id {id}"));
        }
        if props.get("displayName").and_then(Value::as_str).is_none() {
            return Err(format!("{} {id}: displayName required", kind.resource()));
        }
        if kind == Kind::User {
            let upn = props
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("user {id}: userPrincipalName required"))?;
            if self.user_id(upn).is_some() {
                return Err(format!("user {id}: duplicate userPrincipalName {upn}"));
            }
        }
        strip_password(&mut props);
        props
            .entry("createdDateTime")
            .or_insert(Value::String(now_iso()));
        props
            .entry("securityIdentifier")
            .or_insert(Value::String(model::cloud_sid(&id)));
        if kind == Kind::User {
            props
                .entry("userType")
                .or_insert(Value::String("Member".into()));
            if props.contains_key("mail") && !props.contains_key("proxyAddresses") {
                apply_mail(&mut props, None);
            }
        } else {
            props.entry("groupTypes").or_insert(json!([]));
            props
                .entry("renewedDateTime")
                .or_insert(Value::String(now_iso()));
        }
        let seq = self.bump();
        Ok(self.add_object(DirObject {
            created: Instant::now() - Duration::from_secs(3600),
            ..DirObject::new(kind, id, props, seq)
        }))
    }

    /// Resolves a seed reference (id, userPrincipalName, or group displayName/mailNickname).
    pub fn resolve_ref(&self, r: &str) -> Option<String> {
        if self.users.contains_key(r) || self.groups.contains_key(r) {
            return Some(r.to_string());
        }
        self.user_id(r).or_else(|| {
            self.groups
                .values()
                .find(|g| {
                    g.str_prop("mailNickname")
                        .is_some_and(|n| n.eq_ignore_ascii_case(r))
                        || g.str_prop("displayName") == Some(r)
                })
                .map(|g| g.id.clone())
        })
    }
}

#[derive(Default)]
struct Validated {
    props: Map<String, Value>,
    members: Vec<String>,
    owners: Vec<String>,
}

fn unknown_property(kind: Kind, k: &str) -> GraphError {
    GraphError::odata_bad_request(format!(
        "The property '{k}' does not exist on type '{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
        kind.schema()
    ))
}

fn required_missing(p: &str) -> GraphError {
    let mut e = GraphError::bad_request("Property value is required but is empty or missing.");
    e.details.push(crate::errors::ErrorDetail {
        code: "PropertyRequired".into(),
        message: format!("Property '{p}' is required."),
        target: p.into(),
    });
    e
}

fn check_extension_value(e: &ExtensionProperty, v: &Value) -> GraphResult<()> {
    if v.is_null() {
        return Ok(());
    }
    let one = |x: &Value| match e.data_type.as_str() {
        "Boolean" => x.is_boolean(),
        "Integer" | "LargeInteger" => x.is_i64() || x.is_u64(),
        _ => x.is_string(),
    };
    let ok = if e.is_multi_valued {
        v.as_array().is_some_and(|a| a.iter().all(one))
    } else {
        one(v)
    };
    if ok {
        Ok(())
    } else {
        Err(GraphError::invalid_value(&e.name, "User"))
    }
}

fn strip_password(props: &mut Map<String, Value>) {
    if let Some(Value::Object(pp)) = props.get_mut("passwordProfile") {
        pp.insert("password".into(), Value::Null);
    }
}

/// Whether a `groupTypes` value makes a Microsoft 365 group.
fn is_unified(group_types: Option<&Value>) -> bool {
    group_types.and_then(Value::as_array).is_some_and(|t| {
        t.iter().any(|x| {
            x.as_str()
                .is_some_and(|x| x.eq_ignore_ascii_case("Unified"))
        })
    })
}

/// Sets `SMTP:{mail}` as the primary proxy address, keeping others as secondary.
fn apply_mail(props: &mut Map<String, Value>, old: Option<Value>) {
    let mut proxies: Vec<String> = old
        .or_else(|| props.get("proxyAddresses").cloned())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .map(|p| match p.strip_prefix("SMTP:") {
            Some(rest) => format!("smtp:{rest}"),
            None => p,
        })
        .collect();
    if let Some(mail) = props.get("mail").and_then(Value::as_str) {
        let lower = format!("smtp:{}", mail.to_lowercase());
        proxies.retain(|p| p.to_lowercase() != lower);
        proxies.insert(0, format!("SMTP:{mail}"));
    }
    props.insert(
        "proxyAddresses".into(),
        Value::Array(proxies.into_iter().map(Value::String).collect()),
    );
}

/// Whether `o` already uses `mail` as its mail or (as `smtp`, the lower-cased `smtp:<mail>`)
/// as one of its proxy addresses, case-insensitively.
fn mail_clashes(o: &DirObject, mail: &str, smtp: &str) -> bool {
    o.str_prop("mail")
        .is_some_and(|m| m.eq_ignore_ascii_case(mail))
        || o.props
            .get("proxyAddresses")
            .and_then(Value::as_array)
            .is_some_and(|p| {
                p.iter()
                    .any(|a| a.as_str().is_some_and(|a| a.to_lowercase() == smtp))
            })
}

/// The object id at the end of an `@odata.id` / `@odata.bind` URL.
pub fn id_from_url(url: &str) -> GraphResult<String> {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let mut segs = path.rsplit('/');
    let id = segs.next().unwrap_or_default();
    let set = segs.next().unwrap_or_default();
    let known_set = [
        "directoryObjects",
        "users",
        "groups",
        "devices",
        "servicePrincipals",
        "contacts",
        "orgContacts",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(set));
    if id.is_empty() || !known_set {
        return Err(GraphError::bad_request(format!(
            "Invalid object identifier '{url}'."
        )));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The uniqueness rules as a scan of every object (what the index must reproduce).
    fn scan_conflict(
        d: &Directory,
        kind: Kind,
        props: &Map<String, Value>,
        self_id: Option<&str>,
    ) -> Option<&'static str> {
        let other = |o: &&DirObject| Some(o.id.as_str()) != self_id;
        let eq = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
        if kind == Kind::User
            && let Some(upn) = props.get("userPrincipalName").and_then(Value::as_str)
            && d.users
                .values()
                .filter(other)
                .any(|u| eq(u.str_prop("userPrincipalName"), upn))
        {
            return Some("userPrincipalName");
        }
        if d.unified_group_write(kind, props, self_id)
            && let Some(nick) = props.get("mailNickname").and_then(Value::as_str)
            && d.groups.values().filter(other).any(|o| {
                is_unified(o.props.get("groupTypes")) && eq(o.str_prop("mailNickname"), nick)
            })
        {
            return Some("mailNickname");
        }
        if kind == Kind::User
            && let Some(anchor) = props.get("onPremisesImmutableId").and_then(Value::as_str)
            && d.users
                .values()
                .chain(d.deleted_users.values())
                .filter(other)
                .any(|u| u.str_prop("onPremisesImmutableId") == Some(anchor))
        {
            return Some("onPremisesImmutableId");
        }
        if let Some(mail) = props.get("mail").and_then(Value::as_str) {
            let smtp = format!("smtp:{}", mail.to_lowercase());
            if d.users
                .values()
                .chain(d.groups.values())
                .filter(other)
                .any(|o| mail_clashes(o, mail, &smtp))
            {
                return Some("proxyAddresses");
            }
        }
        None
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn indexed_uniqueness_equals_full_scan() {
        let mut d = Directory::new(&EmulatorConfig::default());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // Few distinct names in varying case, so that clashes are frequent.
        let names = [
            "ann", "Ann", "BOB", "bob", "cy", "Ďana", "ďana", "ΣIGMA", "σigma",
        ];
        let mut users: Vec<String> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        for step in 0..600 {
            let n = names[rnd(names.len() as u64) as usize];
            let m = names[rnd(names.len() as u64) as usize];
            let body = obj(json!({
                "accountEnabled": true, "displayName": format!("U {step}"),
                "mailNickname": format!("{n}{}", rnd(3)),
                "userPrincipalName": format!("{m}{}@corp.example.com", rnd(3)),
                "mail": format!("{n}.{m}@Corp.example.com"),
                "onPremisesImmutableId": format!("{m}{}==", rnd(4)),
                "passwordProfile": {"password": "Passw0rd!Passw0rd"},
            }));
            let gbody = obj(json!({
                "displayName": format!("G {step}"), "mailNickname": format!("{n}{}", rnd(3)),
                "securityEnabled": true, "mailEnabled": false,
            }));
            let probe_self = users.get(rnd(users.len().max(1) as u64) as usize).cloned();
            for (kind, b, me) in [
                (Kind::User, &body, None),
                (Kind::User, &body, probe_self.as_deref()),
                (Kind::Group, &gbody, None),
            ] {
                let want = scan_conflict(&d, kind, b, me);
                let got = d.check_uniqueness(kind, b, me).err().map(|e| e.message);
                assert_eq!(
                    want.is_some(),
                    got.is_some(),
                    "step {step}: {want:?} vs {got:?}"
                );
            }
            let upn = format!("{m}{}@CORP.example.com", rnd(3));
            let scan = d
                .users
                .values()
                .find(|u| {
                    u.str_prop("userPrincipalName")
                        .is_some_and(|p| p.to_lowercase() == upn.to_lowercase())
                })
                .map(|u| u.id.clone());
            assert_eq!(d.user_id(&upn), scan);
            match rnd(7) {
                0 | 1 => {
                    if let Ok(id) = d.create_user(&body) {
                        users.push(id);
                    }
                }
                2 => {
                    if let Ok(id) = d.create_group(&gbody) {
                        groups.push(id);
                    }
                }
                3 if !users.is_empty() => {
                    let id = users[rnd(users.len() as u64) as usize].clone();
                    let patch = obj(json!({"mail": format!("{m}.{n}@corp.example.com"),
                        "userPrincipalName": format!("{n}{}@corp.example.com", rnd(3))}));
                    let _ = d.update_user(&id, &patch);
                }
                4 if !users.is_empty() => {
                    let id = users[rnd(users.len() as u64) as usize].clone();
                    let _ = d.delete_user(&id);
                }
                5 if !users.is_empty() => {
                    let id = users[rnd(users.len() as u64) as usize].clone();
                    if rnd(2) == 0 {
                        let _ = d.restore_user(&id);
                    } else {
                        d.purge_deleted_user(&id);
                    }
                }
                6 if !groups.is_empty() => {
                    let id = groups[rnd(groups.len() as u64) as usize].clone();
                    if rnd(2) == 0 {
                        let _ = d.delete_group(&id);
                    } else {
                        let patch = obj(json!({"mailNickname": format!("{m}{}", rnd(3))}));
                        let _ = d.update_group(&id, &patch);
                    }
                }
                _ => {}
            }
        }
        assert!(
            users.len() > 10 && groups.len() > 5,
            "{} {}",
            users.len(),
            groups.len()
        );
        // The maintained index equals one rebuilt from scratch.
        let mut fresh = d.clone();
        fresh.rebuild_index();
        assert_eq!(format!("{:?}", sorted(&d)), format!("{:?}", sorted(&fresh)));
    }

    #[test]
    fn passwords_are_recorded_only_when_asked_and_never_stored() {
        let mut d = Directory::new(&EmulatorConfig::default());
        let user = |n: &str, pw: &str| {
            obj(json!({
                "accountEnabled": true, "displayName": n, "mailNickname": n,
                "userPrincipalName": format!("{n}@corp.example.com"),
                "passwordProfile": {"password": pw, "forceChangePasswordNextSignIn": true},
            }))
        };
        d.create_user(&user("ann", "Unrecorded-Pw-1")).unwrap();
        assert_eq!(d.received_passwords, None);
        d.received_passwords = Some(Vec::new());
        let id = d.create_user(&user("bob", "Recorded-Pw-2")).unwrap();
        let reset = obj(json!({"passwordProfile": {"password": "Recorded-Pw-3"}}));
        d.update_user(&id, &reset).unwrap();
        assert_eq!(
            d.received_passwords.as_deref(),
            Some(&["Recorded-Pw-2".to_string(), "Recorded-Pw-3".to_string()][..])
        );
        let stored = format!("{:?}", d.users);
        assert!(!stored.contains("Pw-"), "{stored}");
    }

    fn sorted(d: &Directory) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for (p, vals) in d.index.by_prop_for_tests() {
            for (v, ids) in vals {
                out.push((p.clone(), v.clone(), ids.iter().cloned().collect()));
            }
        }
        out.sort();
        out
    }
}
