//! Desired state: policy × AD snapshot → the users and groups Entra should hold, with a
//! scope decision for every candidate and per-object diagnostics for bad data.
//!
//! Pure: no IO. The same per-object evaluation serves `plan` and `explain`.

use crate::diagnostics::Diagnostic;
use crate::graph_rules;
use crate::model::props::Props;
use crate::model::{Anchor, Dn, ObjectKind, SourceObject, SourceSnapshot};
use crate::plan::ObjectType;
use crate::policy::LoadedPolicy;
use crate::policy::expr::AdObjectContext;
use crate::policy::graph_props::{self, PropKind};
use crate::policy::load::is_non_routable;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// RIDs of AD's built-in privileged groups (Domain Admins, Enterprise Admins, …).
const PRIVILEGED_RIDS: &[u32] = &[
    512, 516, 518, 519, 520, 521, 526, 527, 544, 548, 549, 550, 551, 552,
];
/// Names of privileged groups, for sources without objectSid.
const PRIVILEGED_NAMES: &[&str] = &[
    "domain admins",
    "enterprise admins",
    "schema admins",
    "administrators",
    "account operators",
    "server operators",
    "backup operators",
    "print operators",
    "domain controllers",
    "read-only domain controllers",
    "group policy creator owners",
    "key admins",
    "enterprise key admins",
    "dnsadmins",
    "replicator",
];

/// Why an object is in or out of scope: the rule, in words a person can check.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScopeDecision {
    pub in_scope: bool,
    pub rule: String,
}

impl ScopeDecision {
    fn out(rule: impl Into<String>) -> Self {
        Self {
            in_scope: false,
            rule: rule.into(),
        }
    }
}

/// One mapped value and the rule that produced it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MappedValue {
    pub property: String,
    pub template: String,
    pub value: Option<Value>,
}

/// A user or group as Entra should hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub object_type: ObjectType,
    pub anchor: Anchor,
    /// The AD object it comes from (shared, not copied: a DN alone is ~500 bytes).
    pub source: Arc<SourceObject>,
    /// UPN for users, displayName for groups.
    pub name: String,
    /// Graph properties (users include `onPremisesImmutableId`), in the lean form the
    /// target snapshot uses too: compared with it without converting either.
    pub props: Props,
    /// Groups: anchors of direct members that are in scope.
    pub members: BTreeSet<Anchor>,
    /// Users: SKU part numbers from licence rules.
    pub skus: BTreeSet<String>,
}

impl DesiredObject {
    /// DN of the AD object.
    pub fn dn(&self) -> &Dn {
        &self.source.dn
    }
}

/// Graph properties of an object being evaluated, in mapping order: the working form
/// of one evaluation (the UPN rules and Graph's rules read and change it), kept as a
/// lean [`Props`] in the [`DesiredObject`].
///
/// Names are the `&'static str` of the property tables in [`graph_props`], so no name
/// is allocated per object. Behaves like `serde_json::Map` with `preserve_order`:
/// `insert` keeps an existing name's place, `remove` moves the last entry into the gap,
/// equality ignores order.
#[derive(Clone, Debug, Default)]
pub struct DesiredProps(Vec<(&'static str, Value)>);

impl DesiredProps {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn insert(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.0.iter().position(|(k, _)| *k == name)?;
        Some(self.0.swap_remove(i).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The lean form kept in a [`DesiredObject`].
    pub fn to_props(&self) -> Props {
        self.iter().collect()
    }
}

impl PartialEq for DesiredProps {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

/// The `&'static` spelling of each mapped property, found once per policy, not per
/// object.
struct PropNames {
    user: Vec<&'static str>,
    group: Vec<&'static str>,
}

impl PropNames {
    fn new(policy: &LoadedPolicy) -> Self {
        // The loader accepts only properties from the tables; a hand-built policy with
        // another name leaks that name once per call, which is bounded by the policy.
        let name = |r: &crate::policy::MappingRule, table: &[graph_props::GraphProp]| {
            table
                .iter()
                .find(|p| p.name == r.property)
                .map(|p| p.name)
                .unwrap_or_else(|| Box::leak(r.property.clone().into_boxed_str()))
        };
        Self {
            user: policy
                .user_mappings
                .iter()
                .map(|r| name(r, graph_props::USER_PROPS))
                .collect(),
            group: policy
                .group_mappings
                .iter()
                .map(|r| name(r, graph_props::GROUP_PROPS))
                .collect(),
        }
    }
}

/// Everything the planner needs from the source side.
#[derive(Clone, Debug, Default)]
pub struct DesiredState {
    pub users: BTreeMap<Anchor, DesiredObject>,
    pub groups: BTreeMap<Anchor, DesiredObject>,
    /// In-scope objects excluded because of errors: never deprovisioned for it.
    pub errored: BTreeSet<Anchor>,
    pub diagnostics: Vec<Diagnostic>,
    /// Number of user and group candidates the source held (for the empty-source guard).
    pub candidates: usize,
}

/// Tenant facts that shape desired values.
#[derive(Clone, Debug, Default)]
pub struct TenantFacts {
    /// Verified domains, lowercased; None when unknown (offline without domains).
    pub verified_domains: Option<BTreeSet<String>>,
}

/// Index over the source: DN → object, and group membership as edges between object
/// indexes, resolved once so that nested-membership questions cost no DN parsing.
pub struct SourceIndex<'a> {
    pub objects: &'a [Arc<SourceObject>],
    by_dn: HashMap<&'a str, u32>,
    /// For each object: the groups whose `member` lists it.
    parents: Vec<Vec<u32>>,
    /// For each group: its members present in the source.
    members: Vec<Vec<u32>>,
    /// Transitive members of the groups a policy asks about (memberOf scope, licences).
    closures: HashMap<u32, HashSet<u32>>,
    /// (group, SID) of members that are foreign security principals of a forest that is
    /// not a source: left out (see [`crate::sources::fsp`]).
    pub unresolved_foreign: Vec<(u32, String)>,
}

impl<'a> SourceIndex<'a> {
    pub fn new(snapshot: &'a SourceSnapshot) -> Self {
        let objects = snapshot.objects.as_slice();
        let by_dn: HashMap<&'a str, u32> = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.dn.key(), i as u32))
            .collect();
        let mut parents: Vec<Vec<u32>> = vec![Vec::new(); objects.len()];
        let mut members: Vec<Vec<u32>> = vec![Vec::new(); objects.len()];
        let mut foreign = crate::sources::fsp::ForeignMembers::default();
        for (g, o) in objects.iter().enumerate() {
            if o.kind != ObjectKind::Group {
                continue;
            }
            for m in o.texts("member") {
                let Ok(dn) = Dn::parse(m) else { continue };
                if foreign.note(g as u32, &dn) {
                    continue;
                }
                if let Some(&i) = by_dn.get(dn.key()) {
                    members[g].push(i);
                    parents[i as usize].push(g as u32);
                }
            }
        }
        // Members of another forest, by objectSid, when that forest is a source too.
        let (resolved, unresolved_foreign) = foreign.resolve(objects);
        for (g, i) in resolved {
            members[g as usize].push(i);
            parents[i as usize].push(g);
        }
        Self {
            objects,
            by_dn,
            parents,
            members,
            closures: HashMap::new(),
            unresolved_foreign,
        }
    }

    /// The index prepared for a policy: transitive members of its memberOf and licence
    /// groups computed once, instead of walking up from every user.
    pub fn for_policy(snapshot: &'a SourceSnapshot, policy: &LoadedPolicy) -> Self {
        let mut index = Self::new(snapshot);
        let groups: Vec<u32> = policy
            .membership_groups()
            .filter_map(|dn| index.position(dn))
            .collect();
        for g in groups {
            let closure = index.transitive_members(g);
            index.closures.insert(g, closure);
        }
        index
    }

    /// Position of the object with this DN.
    pub fn position(&self, dn: &Dn) -> Option<u32> {
        self.by_dn.get(dn.key()).copied()
    }

    pub fn get(&self, dn: &Dn) -> Option<&'a SourceObject> {
        self.position(dn).map(|i| &*self.objects[i as usize])
    }

    /// Direct members of the object at `i` that are in the source.
    pub fn members(&self, i: u32) -> &[u32] {
        &self.members[i as usize]
    }

    /// Everything below group `g`, through nested groups (cycle-safe).
    fn transitive_members(&self, g: u32) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut stack = vec![g];
        while let Some(x) = stack.pop() {
            for &m in &self.members[x as usize] {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    }

    /// Every group the object at `i` belongs to, directly or nested (cycle-safe).
    pub fn groups_of(&self, i: u32) -> HashSet<u32> {
        let mut seen = HashSet::new();
        let mut stack = vec![i];
        while let Some(x) = stack.pop() {
            for &g in &self.parents[x as usize] {
                if seen.insert(g) {
                    stack.push(g);
                }
            }
        }
        seen
    }

    /// Is `dn` a (transitive) member of `group`?
    pub fn is_member_of(&self, dn: &Dn, group: &Dn) -> bool {
        let (Some(i), Some(g)) = (self.position(dn), self.position(group)) else {
            return false;
        };
        match self.closures.get(&g) {
            Some(closure) => closure.contains(&i),
            None => self.groups_of(i).contains(&g),
        }
    }
}

/// The result of evaluating one object: its decision, values and problems.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub decision: ScopeDecision,
    pub values: Vec<MappedValue>,
    pub object: Option<DesiredObject>,
    pub diagnostics: Vec<Diagnostic>,
}

fn default_exclusion(o: &SourceObject) -> Option<String> {
    if o.flag("isCriticalSystemObject") {
        return Some("default exclusion: isCriticalSystemObject=TRUE".into());
    }
    let sam = o
        .text("sAMAccountName")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if sam.starts_with("aad_") || sam.starts_with("msol_") {
        return Some("default exclusion: sync service account (AAD_*/MSOL_*)".into());
    }
    if sam == "krbtgt" || sam.starts_with("krbtgt_") {
        return Some("default exclusion: krbtgt".into());
    }
    None
}

fn rid(o: &SourceObject) -> Option<u32> {
    let sid = o.values("objectSid").first()?;
    if sid.len() < 12 {
        return None;
    }
    let last = &sid[sid.len() - 4..];
    Some(u32::from_le_bytes([last[0], last[1], last[2], last[3]]))
}

/// True for adminCount=1 and the built-in privileged groups.
pub fn is_admin_group(o: &SourceObject) -> bool {
    o.int("adminCount") == Some(1)
        || rid(o).is_some_and(|r| PRIVILEGED_RIDS.contains(&r))
        || o.text("cn")
            .map(std::borrow::Cow::Borrowed)
            .or_else(|| o.dn.leaf_value())
            .is_some_and(|n| PRIVILEGED_NAMES.contains(&n.to_lowercase().as_str()))
}

/// Evaluates scope for a user or group candidate.
pub fn scope_decision(
    policy: &LoadedPolicy,
    index: &SourceIndex,
    o: &Arc<SourceObject>,
) -> Result<ScopeDecision, Box<Diagnostic>> {
    // The rules of the object's source: its own `scope` or the top-level one.
    let rules = policy.scope_for(o.origin);
    let (path, raw) = (rules.path, rules.raw);
    if let Some(rule) = default_exclusion(o) {
        return Ok(ScopeDecision::out(rule));
    }
    if let Some(base) = rules.base_dn
        && !o.dn.is_within(base)
    {
        return Ok(ScopeDecision::out(format!("outside source.baseDn {base}")));
    }
    let in_chain = |attr: &str, obj: &SourceObject, value: &str| -> bool {
        let Ok(target) = Dn::parse(value) else {
            return false;
        };
        if attr.eq_ignore_ascii_case("memberOf") {
            index.is_member_of(&obj.dn, &target)
        } else {
            false
        }
    };
    let (kind, includes, excludes, filter, when_name, when_src) = match o.kind {
        ObjectKind::User => (
            "users",
            rules.user_include_ous,
            rules.user_exclude_ous,
            rules.user_filter,
            rules.user_when,
            raw.users.when.as_deref(),
        ),
        ObjectKind::Group => {
            if !raw.groups.enabled {
                return Ok(ScopeDecision::out(format!(
                    "{path}.groups.enabled is false"
                )));
            }
            (
                "groups",
                rules.group_include_ous,
                rules.group_exclude_ous,
                rules.group_filter,
                rules.group_when,
                raw.groups.when.as_deref(),
            )
        }
        _ => return Ok(ScopeDecision::out("not a user or group")),
    };
    let include = includes.iter().find(|ou| o.dn.is_within(ou));
    if !includes.is_empty() && include.is_none() {
        return Ok(ScopeDecision::out(format!(
            "not under any {path}.{kind}.includeOUs"
        )));
    }
    if let Some(ou) = excludes.iter().find(|ou| o.dn.is_within(ou)) {
        return Ok(ScopeDecision::out(format!(
            "under {path}.{kind}.excludeOUs {ou}"
        )));
    }
    if let Some(f) = filter
        && !f.matches(o, &in_chain)
    {
        return Ok(ScopeDecision::out(format!(
            "does not match {path}.{kind}.ldapFilter"
        )));
    }
    if o.kind == ObjectKind::User {
        if !rules.user_member_of.is_empty() {
            let hit = rules
                .user_member_of
                .iter()
                .find(|g| index.is_member_of(&o.dn, g));
            if hit.is_none() {
                return Ok(ScopeDecision::out(format!(
                    "not a member (direct or nested) of any {path}.users.memberOf group"
                )));
            }
        }
        if !raw.users.include_disabled && o.is_disabled() {
            return Ok(ScopeDecision::out(format!(
                "disabled, and {path}.users.includeDisabled is false"
            )));
        }
    } else {
        if raw.groups.exclude_admin_groups && is_admin_group(o) {
            return Ok(ScopeDecision::out(format!(
                "{path}.groups.excludeAdminGroups: adminCount=1 or a built-in privileged group"
            )));
        }
        let group_type = o.int("groupType").unwrap_or(0);
        if group_type & 0x8000_0000 == 0 {
            return Ok(ScopeDecision::out(
                "distribution group: Graph can only create security groups",
            ));
        }
    }
    if let Some(src) = when_src {
        let ctx = AdObjectContext::shared(o);
        match policy.templates.eval_bool(when_name, &ctx) {
            Ok(true) => {}
            Ok(false) => {
                return Ok(ScopeDecision::out(format!(
                    "{path}.{kind}.when is false: {src}"
                )));
            }
            Err(e) => {
                return Err(Box::new(
                    Diagnostic::error(
                        "expression-failed",
                        format!("{path}.{kind}.when: {}", e.message),
                    )
                    .object(o.dn.as_str()),
                ));
            }
        }
    }
    Ok(ScopeDecision {
        in_scope: true,
        rule: match include {
            None => format!("in {path}.{kind} (whole directory)"),
            Some(ou) => format!("under {path}.{kind}.includeOUs {ou}"),
        },
    })
}

/// Renders the mappings of one in-scope object into Graph properties; with `record`,
/// also returns each value beside its template (for `explain` and `test`, not for
/// planning 100,000 objects).
fn map_object(
    policy: &LoadedPolicy,
    names: &PropNames,
    tenant: &TenantFacts,
    o: &Arc<SourceObject>,
    record: bool,
) -> (Vec<MappedValue>, Option<DesiredProps>, Vec<Diagnostic>) {
    let is_user = o.kind == ObjectKind::User;
    let (rules, names) = if is_user {
        (&policy.user_mappings, &names.user)
    } else {
        (&policy.group_mappings, &names.group)
    };
    let ctx = AdObjectContext::shared(o);
    let mut values = Vec::with_capacity(if record { rules.len() } else { 0 });
    // Room for the mapped values and the three added below, so the list is never regrown.
    let mut props = DesiredProps(Vec::with_capacity(rules.len() + 3));
    let mut diags = Vec::new();
    for (rule, &name) in rules.iter().zip(names) {
        let rendered = match policy.templates.render(&rule.compiled, &ctx) {
            Ok(v) => v,
            Err(e) => {
                diags.push(
                    Diagnostic::error("template-failed", e.message)
                        .object(o.dn.as_str())
                        .attribute(&rule.property),
                );
                None
            }
        };
        let value = rendered.map(|s| match rule.kind {
            PropKind::Text => Value::String(s),
            // One value per line: `{{ telephoneNumber }}` is one item, a template that
            // joins a multi-valued attribute with newlines gives several.
            PropKind::TextList => Value::Array(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| Value::String(l.to_string()))
                    .collect(),
            ),
            PropKind::Bool => Value::Bool(s.eq_ignore_ascii_case("true")),
        });
        if record {
            values.push(MappedValue {
                property: rule.property.clone(),
                template: rule.template.clone(),
                value: value.clone(),
            });
        }
        if let Some(v) = value {
            props.insert(name, v);
        }
    }
    if is_user {
        upn_pipeline(policy, tenant, o, &mut props, &mut diags);
        props.insert(
            "onPremisesImmutableId",
            Value::String(source_anchor(policy, o).0.to_string()),
        );
    } else {
        props.insert("securityEnabled", Value::Bool(true));
        props.insert("mailEnabled", Value::Bool(false));
    }
    graph_rules_hook(rules, o, is_user, &props, &mut diags);
    let required: &[&str] = if is_user {
        &[
            "displayName",
            "mailNickname",
            "userPrincipalName",
            "accountEnabled",
        ]
    } else {
        &["displayName", "mailNickname"]
    };
    for r in required {
        if !props.contains_key(r) && !diags.iter().any(|d| d.attribute.as_deref() == Some(*r)) {
            diags.push(
                Diagnostic::error(
                    "missing-required-attribute",
                    format!("Graph requires {r}, and the mapping gave no value"),
                )
                .object(o.dn.as_str())
                .attribute(*r)
                .hint("set the AD attribute the mapping reads, or change the mapping"),
            );
        }
    }
    let ok = !diags.iter().any(Diagnostic::is_error);
    (values, ok.then_some(props), diags)
}

/// Graph's documented rules over the mapped values ([`graph_rules`]): each broken rule
/// is an error naming the property, the value and the mapping that produced it, so the
/// object is left out of the plan instead of failing at apply.
fn graph_rules_hook(
    rules: &[crate::policy::MappingRule],
    o: &SourceObject,
    is_user: bool,
    props: &DesiredProps,
    diags: &mut Vec<Diagnostic>,
) {
    let ty = if is_user {
        ObjectType::User
    } else {
        ObjectType::Group
    };
    for v in graph_rules::check_props(ty, props.iter()) {
        let message = match rules.iter().find(|r| r.property == v.property) {
            Some(r) => format!("{}; from the mapping `{}`", v.message, r.template),
            None => v.message,
        };
        diags.push(
            Diagnostic::error(v.code, message)
                .object(o.dn.as_str())
                .attribute(v.property)
                .hint(v.hint),
        );
    }
}

fn upn_pipeline(
    policy: &LoadedPolicy,
    tenant: &TenantFacts,
    o: &SourceObject,
    props: &mut DesiredProps,
    diags: &mut Vec<Diagnostic>,
) {
    let upn_cfg = policy.upn_for(o.origin);
    let raw = props
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (prefix, suffix) = match raw.as_deref().and_then(|u| u.rsplit_once('@')) {
        Some((p, s)) => (p.to_string(), s.to_ascii_lowercase()),
        None => {
            // Like Entra: no UPN → mailNickname at the fallback (initial) domain.
            match (
                &upn_cfg.fallback_domain,
                props.get("mailNickname").and_then(Value::as_str),
            ) {
                (Some(fb), Some(nick)) => {
                    diags.push(
                        Diagnostic::warning(
                            "upn-generated",
                            format!("no userPrincipalName in AD; using {nick}@{fb}"),
                        )
                        .object(o.dn.as_str())
                        .attribute("userPrincipalName"),
                    );
                    (nick.to_string(), fb.to_ascii_lowercase())
                }
                _ => {
                    props.remove("userPrincipalName");
                    diags.push(
                        Diagnostic::error(
                            "missing-required-attribute",
                            match raw {
                                Some(r) => format!("`{r}` has no @domain part"),
                                None => "no userPrincipalName in AD".to_string(),
                            },
                        )
                        .object(o.dn.as_str())
                        .attribute("userPrincipalName")
                        .hint("set userPrincipalName in AD, or set upn.fallbackDomain"),
                    );
                    return;
                }
            }
        }
    };
    let verified = |d: &str| {
        tenant
            .verified_domains
            .as_ref()
            .is_none_or(|v| v.contains(d))
    };
    let domain = if let Some(to) = upn_cfg
        .rewrite_suffixes
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&suffix))
        .map(|(_, v)| v)
    {
        to.to_ascii_lowercase()
    } else if is_non_routable(&suffix) || !verified(&suffix) {
        match &upn_cfg.fallback_domain {
            Some(fb) => fb.to_ascii_lowercase(),
            None => {
                props.remove("userPrincipalName");
                diags.push(
                    Diagnostic::error(
                        "unverified-upn-suffix",
                        format!("UPN suffix `{suffix}` is {} and no upn.fallbackDomain is set",
                            if is_non_routable(&suffix) { "non-routable" } else { "not a verified tenant domain" }),
                    )
                    .object(o.dn.as_str())
                    .attribute("userPrincipalName")
                    .hint(format!("add `upn.rewriteSuffixes: {{{suffix}: <verified domain>}}` or `upn.fallbackDomain`")),
                );
                return;
            }
        }
    } else {
        suffix
    };
    props.insert(
        "userPrincipalName",
        Value::String(format!("{prefix}@{domain}")),
    );
}

/// Evaluates one object fully (scope, values, desired object): what `explain` shows.
pub fn evaluate(
    policy: &LoadedPolicy,
    tenant: &TenantFacts,
    index: &SourceIndex,
    o: &Arc<SourceObject>,
) -> Evaluation {
    evaluate_with(policy, &PropNames::new(policy), tenant, index, o, true)
}

fn evaluate_with(
    policy: &LoadedPolicy,
    names: &PropNames,
    tenant: &TenantFacts,
    index: &SourceIndex,
    o: &Arc<SourceObject>,
    record: bool,
) -> Evaluation {
    let decision = match scope_decision(policy, index, o) {
        Ok(d) => d,
        Err(diag) => {
            return Evaluation {
                decision: ScopeDecision::out("error evaluating scope"),
                values: vec![],
                object: None,
                diagnostics: vec![*diag],
            };
        }
    };
    if !decision.in_scope {
        return Evaluation {
            decision,
            values: vec![],
            object: None,
            diagnostics: vec![],
        };
    }
    let (values, props, diagnostics) = map_object(policy, names, tenant, o, record);
    let object = props.map(|props| {
        let is_user = o.kind == ObjectKind::User;
        let name = props
            .get(if is_user {
                "userPrincipalName"
            } else {
                "displayName"
            })
            .and_then(Value::as_str)
            .unwrap_or(o.dn.as_str())
            .to_string();
        DesiredObject {
            object_type: if is_user {
                ObjectType::User
            } else {
                ObjectType::Group
            },
            anchor: source_anchor(policy, o),
            source: Arc::clone(o),
            name,
            props: props.to_props(),
            members: BTreeSet::new(),
            skus: BTreeSet::new(),
        }
    });
    Evaluation {
        decision,
        values,
        object,
        diagnostics,
    }
}

/// The object's anchor under the policy's `anchor:` choice ([`crate::model::anchor`]).
pub fn source_anchor(policy: &LoadedPolicy, o: &SourceObject) -> Anchor {
    crate::model::anchor::anchor_for(o, policy.policy.anchor)
}

/// True when `name` matches one of the policy's protect patterns.
pub fn is_protected(policy: &LoadedPolicy, names: &[&str]) -> bool {
    names.iter().any(|n| {
        let n = n.to_lowercase();
        policy.protect.iter().any(|p| p.matches(&n))
    })
}

/// Computes the desired state of the whole source.
pub fn desired_state(
    policy: &LoadedPolicy,
    source: &SourceSnapshot,
    tenant: &TenantFacts,
) -> DesiredState {
    let index = SourceIndex::for_policy(source, policy);
    let mut state = DesiredState::default();
    // One objectGUID in two sources (forests): neither is planned, both are named.
    let clashes = crate::sources::clash::anchor_clashes(source);
    state.diagnostics.extend(clashes.diagnostics);
    state.errored.extend(clashes.anchors);
    // Anchor of each in-scope object, by position in the source.
    let mut in_scope: Vec<Option<Anchor>> = vec![None; source.objects.len()];
    // Objects that one later with the same anchor replaced (two users with one
    // mS-DS-ConsistencyGuid): both are left out below.
    let mut replaced: BTreeMap<Anchor, Vec<DesiredObject>> = BTreeMap::new();
    for (pos, ev) in evaluate_all(policy, tenant, &index) {
        let o = &source.objects[pos];
        state.candidates += 1;
        if clashes.positions.contains(&pos) {
            continue;
        }
        let had_error = ev.diagnostics.iter().any(Diagnostic::is_error);
        state.diagnostics.extend(ev.diagnostics);
        if !ev.in_scope && !had_error {
            continue;
        }
        if had_error {
            state.errored.insert(source_anchor(policy, o));
        }
        let Some(obj) = ev.object else { continue };
        let upn = obj.props.str("userPrincipalName").unwrap_or("");
        let sam = o.text("sAMAccountName").unwrap_or("");
        if is_protected(policy, &[upn, sam, &obj.name]) {
            state.diagnostics.push(
                Diagnostic::warning("protected", "matches a protect pattern: left alone")
                    .object(o.dn.as_str()),
            );
            state.errored.insert(obj.anchor.clone());
            continue;
        }
        in_scope[pos] = Some(obj.anchor.clone());
        let map = if obj.object_type == ObjectType::User {
            &mut state.users
        } else {
            &mut state.groups
        };
        if let Some(prev) = map.insert(obj.anchor.clone(), obj) {
            replaced.entry(prev.anchor.clone()).or_default().push(prev);
        }
    }
    resolve_anchor_clashes(policy, &mut state, replaced);
    resolve_conflicts(&mut state);
    // Objects lost to a conflict are no one's member.
    for a in &mut in_scope {
        if a.as_ref()
            .is_some_and(|a| !state.users.contains_key(a) && !state.groups.contains_key(a))
        {
            *a = None;
        }
    }
    // Memberships: direct members that are in scope.
    for g in state.groups.values_mut() {
        let Some(pos) = index.position(g.dn()) else {
            continue;
        };
        for &m in index.members(pos) {
            if let Some(a) = &in_scope[m as usize]
                && a != &g.anchor
            {
                g.members.insert(a.clone());
            }
        }
    }
    state
        .diagnostics
        .extend(crate::sources::fsp::unresolved_warnings(&index, &in_scope));
    // Licences by transitive membership.
    if !policy.licenses.is_empty() {
        for u in state.users.values_mut() {
            for rule in &policy.licenses {
                if index.is_member_of(u.dn(), &rule.group) {
                    u.skus.insert(rule.sku.clone());
                }
            }
        }
    }
    state
}

/// What [`desired_state`] keeps of an [`Evaluation`]: not the rule text, which for
/// 100,000 objects would be 100,000 strings held until the merge.
struct Outcome {
    in_scope: bool,
    object: Option<DesiredObject>,
    diagnostics: Vec<Diagnostic>,
}

/// Evaluates every user and group, on all cores: evaluation is pure and per object, and
/// at 100,000 users template rendering dominates planning. Results come in source
/// order, one chunk per thread, so the caller consumes them without a second copy.
fn evaluate_all(
    policy: &LoadedPolicy,
    tenant: &TenantFacts,
    index: &SourceIndex,
) -> impl Iterator<Item = (usize, Outcome)> {
    let names = PropNames::new(policy);
    let candidates: Vec<usize> = index
        .objects
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o.kind, ObjectKind::User | ObjectKind::Group))
        .map(|(i, _)| i)
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = candidates.len().div_ceil(threads).max(1);
    let names = &names;
    let eval = |part: &[usize]| -> Vec<(usize, Outcome)> {
        part.iter()
            .map(|&i| {
                let ev = evaluate_with(policy, names, tenant, index, &index.objects[i], false);
                let outcome = Outcome {
                    in_scope: ev.decision.in_scope,
                    object: ev.object,
                    diagnostics: ev.diagnostics,
                };
                (i, outcome)
            })
            .collect()
    };
    let chunks: Vec<Vec<(usize, Outcome)>> = if threads == 1 || candidates.len() < 2_000 {
        vec![eval(&candidates)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = candidates
                .chunks(chunk)
                .map(|part| scope.spawn(move || eval(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    chunks.into_iter().flatten()
}

/// Every DN of `dns` but the `i`th, for naming the other side of a conflict.
fn all_but(dns: &[String], i: usize) -> String {
    dns.iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, d)| d.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Two AD objects with one anchor (the same `mS-DS-ConsistencyGuid`, copied from one
/// user to another): one Entra object cannot be both, so both are left out, both named.
fn resolve_anchor_clashes(
    policy: &LoadedPolicy,
    state: &mut DesiredState,
    replaced: BTreeMap<Anchor, Vec<DesiredObject>>,
) {
    for (anchor, mut objects) in replaced {
        for map in [&mut state.users, &mut state.groups] {
            if let Some(o) = map.remove(&anchor) {
                objects.push(o);
            }
        }
        let dns: Vec<String> = objects.iter().map(|o| o.dn().to_string()).collect();
        for (i, dn) in dns.iter().enumerate() {
            state.diagnostics.push(
                Diagnostic::error(
                    "anchor-conflict",
                    format!(
                        "the anchor `{anchor}` (from {}) is also the anchor of {}",
                        policy.policy.anchor.as_str(),
                        all_but(&dns, i)
                    ),
                )
                .object(dn.clone())
                .attribute(policy.policy.anchor.as_str())
                .hint("one Entra object cannot stand for both: give each AD object its own mS-DS-ConsistencyGuid (or clear it); both are left out until then"),
            );
        }
        state.errored.insert(anchor);
    }
}

/// Two AD objects wanting one UPN, mailNickname or mail: both are excluded, both named.
fn resolve_conflicts(state: &mut DesiredState) {
    for (prop, code, objects) in [
        ("userPrincipalName", "upn-conflict", ObjectType::User),
        ("mailNickname", "mail-nickname-conflict", ObjectType::User),
        ("mail", "mail-conflict", ObjectType::User),
        ("mailNickname", "mail-nickname-conflict", ObjectType::Group),
    ] {
        let map = if objects == ObjectType::User {
            &state.users
        } else {
            &state.groups
        };
        let mut seen: HashMap<String, Vec<&Anchor>> = HashMap::new();
        for (a, o) in map {
            if let Some(v) = o.props.str(prop) {
                seen.entry(v.to_lowercase()).or_default().push(a);
            }
        }
        let mut losers = Vec::new();
        for (value, anchors) in seen.into_iter().filter(|(_, v)| v.len() > 1) {
            let dns: Vec<String> = anchors
                .iter()
                .filter_map(|a| map.get(*a).map(|o| o.dn().to_string()))
                .collect();
            for (i, a) in anchors.iter().enumerate() {
                state.diagnostics.push(
                    Diagnostic::error(
                        code,
                        format!("`{value}` is also wanted by {}", all_but(&dns, i)),
                    )
                    .object(dns[i].clone())
                    .attribute(prop)
                    .hint("make the value unique in AD; both objects are left out until then"),
                );
                losers.push((*a).clone());
            }
        }
        let map = if objects == ObjectType::User {
            &mut state.users
        } else {
            &mut state.groups
        };
        for a in losers {
            map.remove(&a);
            state.errored.insert(a);
        }
    }
}
