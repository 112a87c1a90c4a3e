//! Loading a policy: files → span trees → structural checks → typed policy → semantic
//! checks → compiled templates and filters. Every problem is collected, not just the
//! first, each with `file:line:column`, a stable code and a hint.
//!
//! The loader is pure over its input ([`PolicyFile`]s): reading the files is the
//! caller's job (`read_policy_files`), so tests can load policies from strings.

use super::expr::Templates;
use super::graph_props::{self, PropKind};
use super::ldap_filter::Filter;
use super::model::{API_VERSION, Policy};
use super::schema_check;
use super::yaml_tree::{Node, NodeValue, Pos, Step, path_string};
use crate::diagnostics::{Diagnostic, Location};
use crate::model::Dn;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// One policy file's name (as shown in diagnostics) and text.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    pub name: String,
    pub text: String,
}

/// A compiled mapping: which Graph property, from which template.
#[derive(Clone, Debug)]
pub struct MappingRule {
    pub property: String,
    pub template: String,
    /// Name of the compiled template in [`LoadedPolicy::templates`].
    pub compiled: String,
    pub kind: PropKind,
    pub max_len: Option<usize>,
    /// Where the template is written (None for built-in defaults).
    pub location: Option<Location>,
}

/// A licence rule with its group DN parsed.
#[derive(Clone, Debug)]
pub struct CompiledLicense {
    pub group: Dn,
    pub sku: String,
}

/// A policy that validated: the typed model plus everything compiled from it.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub policy: Policy,
    /// The path given (file or directory), for provenance.
    pub path: String,
    /// sha256 over file names and contents: `apply` refuses a plan from other content.
    pub content_hash: String,
    /// The git commit the policy was read from (set by whoever checked it out: the
    /// reconciler or `plan --policy-repo`); it travels into the plan's provenance.
    pub commit: Option<String>,
    pub templates: Templates,
    pub user_mappings: Vec<MappingRule>,
    pub group_mappings: Vec<MappingRule>,
    pub user_filter: Option<Filter>,
    pub group_filter: Option<Filter>,
    pub user_include_ous: Vec<Dn>,
    pub user_exclude_ous: Vec<Dn>,
    pub user_member_of: Vec<Dn>,
    pub group_include_ous: Vec<Dn>,
    pub group_exclude_ous: Vec<Dn>,
    pub licenses: Vec<CompiledLicense>,
    pub protect: Vec<wildmatch::WildMatch>,
    /// The base DN of the policy's one source (`source.baseDn`, or the only entry of
    /// `sources`), parsed; None with several sources (each object is checked against its
    /// own source's, see [`LoadedPolicy::scope_for`]).
    pub base_dn: Option<Dn>,
    /// The AD sources (`source:` as a list of one, or `sources:`), in policy order: a
    /// source object's `origin` is its index here. Empty for LDIF-only policies.
    pub sources: Vec<super::sources::CompiledSource>,
    /// Non-fatal findings (warnings) from validation.
    pub warnings: Vec<Diagnostic>,
    /// The `federation:` section, checked: the domains whose federation is managed.
    pub federation: Vec<super::federation::CompiledFederation>,
}

impl LoadedPolicy {
    /// Every OU and group DN the policy names (scope and licence rules), for resolving
    /// them in AD and following renames.
    pub fn named_dns_mut(&mut self) -> Vec<&mut Dn> {
        self.user_include_ous
            .iter_mut()
            .chain(self.user_exclude_ous.iter_mut())
            .chain(self.user_member_of.iter_mut())
            .chain(self.group_include_ous.iter_mut())
            .chain(self.group_exclude_ous.iter_mut())
            .chain(self.licenses.iter_mut().map(|l| &mut l.group))
            .chain(
                self.sources
                    .iter_mut()
                    .filter_map(|s| s.scope.as_mut())
                    .flat_map(super::sources::CompiledScope::dns_mut),
            )
            .collect()
    }

    /// The AD attributes this policy reads: what a live LDAP read must request.
    pub fn source_attributes(&self) -> Vec<String> {
        let mut names: Vec<&str> = self
            .user_mappings
            .iter()
            .chain(&self.group_mappings)
            .map(|m| m.compiled.as_str())
            .collect();
        names.push(USER_WHEN);
        names.push(GROUP_WHEN);
        let own_scopes = || self.sources.iter().filter_map(|s| s.scope.as_ref());
        for sc in own_scopes() {
            names.push(&sc.user_when);
            names.push(&sc.group_when);
        }
        let mut attrs = self.templates.attributes_used(&names);
        for f in self
            .user_filter
            .iter()
            .chain(&self.group_filter)
            .chain(own_scopes().flat_map(|sc| sc.user_filter.iter().chain(&sc.group_filter)))
        {
            f.attributes(&mut attrs);
        }
        // What the planner reads beyond the mappings; the LDAP reader adds its own
        // identity and safety attributes (ad::ldap::ALWAYS_READ) to every read.
        // mS-DS-ConsistencyGuid whatever `anchor:` says: the other choice's anchor is how
        // an owned object is found again after `anchor:` changed (re-anchoring).
        for a in [
            crate::model::anchor::CONSISTENCY_GUID,
            "objectCategory",
            "groupType",
            "displayName",
            "givenName",
            "sn",
        ] {
            attrs.insert(a.to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        attrs
            .into_iter()
            .filter(|a| seen.insert(a.to_ascii_lowercase()))
            .collect()
    }
}

/// Template names for the compiled `when` expressions.
pub const USER_WHEN: &str = "scope.users.when";
pub const GROUP_WHEN: &str = "scope.groups.when";

/// Built-in user mappings: Entra Connect's default inbound/outbound flows that Graph can
/// write. A policy overrides any of them; an empty template turns one off.
pub const DEFAULT_USER_MAPPINGS: &[(&str, &str)] = &[
    (
        "accountEnabled",
        "{{ userAccountControl | account_enabled }}",
    ),
    (
        "displayName",
        "{{ displayName or ((givenName ~ ' ' ~ sn) | trim) or cn }}",
    ),
    ("givenName", "{{ givenName }}"),
    ("surname", "{{ sn }}"),
    ("userPrincipalName", "{{ userPrincipalName }}"),
    (
        "mailNickname",
        "{{ (mailNickname or sAMAccountName) | mail_nickname }}",
    ),
    ("mail", "{{ mail or (proxyAddresses | smtp_primary) }}"),
    ("jobTitle", "{{ title }}"),
    ("department", "{{ department }}"),
    ("companyName", "{{ company }}"),
    ("officeLocation", "{{ physicalDeliveryOfficeName }}"),
    ("streetAddress", "{{ streetAddress }}"),
    ("city", "{{ l }}"),
    ("state", "{{ st }}"),
    ("postalCode", "{{ postalCode }}"),
    ("country", "{{ co }}"),
    ("usageLocation", "{{ c }}"),
    ("businessPhones", "{{ telephoneNumber }}"),
    ("mobilePhone", "{{ mobile }}"),
    ("faxNumber", "{{ facsimileTelephoneNumber }}"),
    ("employeeId", "{{ employeeID }}"),
    ("employeeType", "{{ employeeType }}"),
];

/// Built-in group mappings.
pub const DEFAULT_GROUP_MAPPINGS: &[(&str, &str)] = &[
    ("displayName", "{{ displayName or cn }}"),
    ("description", "{{ description }}"),
    (
        "mailNickname",
        "{{ (mailNickname or sAMAccountName or cn) | mail_nickname }}",
    ),
];

/// Reads a policy from a file or a directory of `*.yaml`/`*.yml` files (sorted by name;
/// the `tests/` subdirectory holds policy tests and is not part of the policy).
pub fn read_policy_files(path: &Path) -> Result<Vec<PolicyFile>, Box<Diagnostic>> {
    let unreadable = |p: &Path, e: std::io::Error| {
        Box::new(Diagnostic::error(
            "policy-unreadable",
            format!("cannot read {}: {e}", p.display()),
        ))
    };
    let read = |p: &Path| -> Result<PolicyFile, Box<Diagnostic>> {
        Ok(PolicyFile {
            name: p.display().to_string(),
            text: std::fs::read_to_string(p).map_err(|e| unreadable(p, e))?,
        })
    };
    if !path.is_dir() {
        return Ok(vec![read(path)?]);
    }
    let mut names: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| unreadable(path, e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(Box::new(Diagnostic::error(
            "policy-unreadable",
            format!("{} holds no .yaml or .yml file", path.display()),
        )));
    }
    names.iter().map(|p| read(p)).collect()
}

/// Reads and loads a policy from disk.
pub fn load_path(path: &Path) -> Result<LoadedPolicy, Vec<Diagnostic>> {
    let files = read_policy_files(path).map_err(|d| vec![*d])?;
    load(&path.display().to_string(), &files)
}

/// Where each top-level section came from (file index), to locate diagnostics.
pub(super) struct Located<'a> {
    files: &'a [PolicyFile],
    trees: Vec<Option<Node>>,
    owner: BTreeMap<String, usize>,
}

impl Located<'_> {
    pub(super) fn loc(&self, path: &[Step]) -> Option<Location> {
        let first = match path.first() {
            Some(Step::Key(k)) => k,
            _ => return None,
        };
        let idx = *self.owner.get(first)?;
        let tree = self.trees[idx].as_ref()?;
        let pos = tree.pos_of(path);
        Some(loc(&self.files[idx].name, pos))
    }

    /// Where the last key of `path` is written (not its value).
    fn key_loc(&self, path: &[Step]) -> Option<Location> {
        let (Step::Key(first), Some((Step::Key(name), parent))) =
            (path.first()?, path.split_last())
        else {
            return None;
        };
        let idx = *self.owner.get(first)?;
        let pos = self.trees[idx].as_ref()?.get(parent)?.key_pos(name)?;
        Some(loc(&self.files[idx].name, pos))
    }
}

fn loc(file: &str, pos: Pos) -> Location {
    Location {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
    }
}

pub(super) fn key(s: &str) -> Step {
    Step::Key(s.to_string())
}

pub(super) fn p(parts: &[&str]) -> Vec<Step> {
    parts.iter().map(|s| key(s)).collect()
}

/// Loads a policy from its files. On any error, returns every diagnostic found.
pub fn load(path: &str, files: &[PolicyFile]) -> Result<LoadedPolicy, Vec<Diagnostic>> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut hasher = Sha256::new();
    let mut located = Located {
        files,
        trees: Vec::new(),
        owner: BTreeMap::new(),
    };
    // 1. Parse every file; merge top-level sections.
    let mut merged: Vec<(super::yaml_tree::Key, Node)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let name = Path::new(&f.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(f.text.as_bytes());
        hasher.update([0]);
        match Node::parse(&f.text) {
            Ok(mut tree) => {
                if matches!(tree.value, NodeValue::Null) {
                    located.trees.push(None);
                    continue;
                }
                let NodeValue::Map(entries) = &mut tree.value else {
                    diags.push(
                        Diagnostic::error(
                            "wrong-type",
                            "a policy file must be a mapping of sections",
                        )
                        .at(Some(loc(&f.name, tree.pos))),
                    );
                    located.trees.push(None);
                    continue;
                };
                for (k, v) in entries.iter() {
                    if let Some(prev) = located.owner.get(&k.name) {
                        diags.push(
                            Diagnostic::error(
                                "duplicate-section",
                                format!(
                                    "section `{}` is also defined in {}",
                                    k.name, files[*prev].name
                                ),
                            )
                            .at(Some(loc(&f.name, k.pos)))
                            .hint("define each top-level section in one file only"),
                        );
                        continue;
                    }
                    located.owner.insert(k.name.clone(), i);
                    merged.push((k.clone(), v.clone()));
                }
                located.trees.push(Some(tree));
            }
            Err(e) => {
                let (line, column) = e
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .unwrap_or((1, 1));
                let message = e.without_snippet().to_string();
                let message = message.lines().next().unwrap_or("invalid YAML").to_string();
                diags.push(
                    Diagnostic::error("yaml-syntax", message)
                        .at(Some(Location {
                            file: f.name.clone(),
                            line,
                            column,
                        }))
                        .hint("fix the YAML syntax; indentation and quoting are the usual causes"),
                );
                located.trees.push(None);
            }
        }
    }
    let content_hash = format!("sha256:{:x}", hasher.finalize());
    if diags.iter().any(|d| d.code == "yaml-syntax") {
        return Err(sorted(diags));
    }

    // 2. Literal secrets anywhere: a key that names a password or secret must reference one.
    for (k, v) in &merged {
        find_literal_secrets(
            v,
            &mut vec![Step::Key(k.name.clone())],
            &located,
            &mut diags,
        );
    }

    // 3. Structural check against the JSON Schema.
    let mut root = Node {
        pos: Pos { line: 1, column: 1 },
        value: NodeValue::Map(merged),
    };
    let schema = serde_json::to_value(schemars::schema_for!(Policy)).unwrap_or_default();
    let mut issues = Vec::new();
    schema_check::check(&mut root, &schema, &schema, &mut Vec::new(), &mut issues);
    let secret_paths: Vec<String> = diags
        .iter()
        .filter(|d| d.code == "literal-secret")
        .map(|d| d.message.split(':').next().unwrap_or_default().to_string())
        .collect();
    let mut broken_sections: Vec<String> = Vec::new();
    let mut sections_with_issues: Vec<String> = Vec::new();
    for issue in &issues {
        if let Some(Step::Key(section)) = issue.path.first() {
            if issue.code == "missing-field" {
                broken_sections.push(section.clone());
            }
            sections_with_issues.push(section.clone());
        }
    }
    for issue in issues {
        let location = located.loc(&issue.path).map(|mut l| {
            l.line = issue.pos.line;
            l.column = issue.pos.column;
            l
        });
        if secret_paths.contains(&path_string(&issue.path)) {
            continue;
        }
        let mut d = Diagnostic::error(
            issue.code,
            format!("{}: {}", path_string(&issue.path), issue.message),
        )
        .at(location);
        if let Some(h) = issue.hint {
            d = d.hint(h);
        }
        diags.push(d);
    }

    // 4. Typed policy (what remains after pruning is structurally valid).
    // Sections missing a required field cannot be typed; drop them so the others
    // are still checked (their errors are already reported).
    if let NodeValue::Map(entries) = &mut root.value {
        entries.retain(|(k, _)| k.name == "apiVersion" || !broken_sections.contains(&k.name));
    }
    let typed = serde_json::from_value(root.to_json()).or_else(|_| {
        if let NodeValue::Map(entries) = &mut root.value {
            entries
                .retain(|(k, _)| k.name == "apiVersion" || !sections_with_issues.contains(&k.name));
        }
        serde_json::from_value(root.to_json())
    });
    let policy: Policy = match typed {
        Ok(p) => p,
        Err(e) => {
            if !diags.iter().any(Diagnostic::is_error) {
                diags.push(Diagnostic::error("invalid-policy", e.to_string()));
            }
            return Err(sorted(diags));
        }
    };

    // 5. Semantic checks and compilation.
    let mut c = Compiler {
        located: &located,
        diags: &mut diags,
        templates: Templates::new(),
    };
    if policy.api_version != API_VERSION {
        c.err(
            &p(&["apiVersion"]),
            "unsupported-api-version",
            format!("apiVersion `{}` is not supported", policy.api_version),
            format!("use `apiVersion: {API_VERSION}`"),
        );
    }
    let sources = super::sources::compile_sources(&mut c, &policy);
    let base_dn = match sources.as_slice() {
        [one] => Some(one.base_dn.clone()),
        _ => None,
    };
    let top = super::sources::compile_scope(&mut c, &policy.scope, "scope");
    super::sources::check_scope_dns(&mut c, &top, &sources, None);
    let super::sources::CompiledScope {
        user_include_ous,
        user_exclude_ous,
        user_member_of,
        group_include_ous,
        group_exclude_ous,
        user_filter,
        group_filter,
        ..
    } = top;
    if let Some(app) = &policy.target.extension_app_id
        && !crate::model::target::is_app_id(app)
    {
        c.err(
            &p(&["target", "extensionAppId"]),
            "invalid-app-id",
            format!("`{app}` is not an application (client) id"),
            "use the app registration's appId, a GUID such as 2b6f1c3d-8e4a-4f5b-9c7d-1a2b3c4d5e6f",
        );
    }
    super::sources::check_upn(&mut c, &p(&["upn"]), &policy.upn);
    let user_mappings = c.mappings("user", &policy.mappings.user, DEFAULT_USER_MAPPINGS);
    let group_mappings = c.mappings("group", &policy.mappings.group, DEFAULT_GROUP_MAPPINGS);
    let mut licenses = Vec::new();
    for (i, rule) in policy.licenses.iter().enumerate() {
        let base = vec![key("licenses"), Step::Index(i)];
        let mut gp = base.clone();
        gp.push(key("whenMemberOf"));
        if let Some(dn) = c.dn(&gp, &rule.when_member_of) {
            let sku_ok = !rule.sku.is_empty()
                && rule
                    .sku
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
            if !sku_ok {
                let mut sp = base.clone();
                sp.push(key("sku"));
                c.err(
                    &sp,
                    "invalid-sku",
                    format!("`{}` is not a SKU part number", rule.sku),
                    "use the skuPartNumber from GET /subscribedSkus, e.g. ENTERPRISEPACK",
                );
            }
            licenses.push(CompiledLicense {
                group: dn,
                sku: rule.sku.clone(),
            });
        }
    }
    let d = &policy.deletion;
    if !(0.0..=100.0).contains(&d.max_delete_percent) {
        c.err(
            &p(&["deletion", "maxDeletePercent"]),
            "out-of-range",
            format!(
                "maxDeletePercent {} is not between 0 and 100",
                d.max_delete_percent
            ),
            "a share of the owned objects, in percent",
        );
    }
    let mut protect = Vec::new();
    for (i, pat) in policy.protect.iter().enumerate() {
        if pat.trim().is_empty() || pat.trim() == "*" {
            c.err(
                &[key("protect"), Step::Index(i)],
                "invalid-pattern",
                format!("protect pattern `{pat}` is empty or matches everything"),
                "name the accounts to keep away from, e.g. `admin@*` or `breakglass-*`",
            );
        } else {
            protect.push(wildmatch::WildMatch::new(&pat.to_lowercase()));
        }
    }
    c.duration(&p(&["schedule", "interval"]), &policy.schedule.interval);
    c.duration(&p(&["schedule", "fullEvery"]), &policy.schedule.full_every);

    let templates = c.templates;
    let (federation, federation_diags) = super::federation::compile(
        policy.federation.as_ref().unwrap_or(&BTreeMap::new()),
        &|path, key| {
            if key {
                located.key_loc(path)
            } else {
                located.loc(path)
            }
        },
    );
    diags.extend(federation_diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(sorted(diags));
    }
    Ok(LoadedPolicy {
        policy,
        path: path.to_string(),
        content_hash,
        commit: None,
        templates,
        user_mappings,
        group_mappings,
        user_filter,
        group_filter,
        user_include_ous,
        user_exclude_ous,
        user_member_of,
        group_include_ous,
        group_exclude_ous,
        licenses,
        protect,
        base_dn,
        sources,
        warnings: sorted(diags),
        federation,
    })
}

fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by(|a, b| a.location.cmp(&b.location).then(a.code.cmp(&b.code)));
    diags
}

fn find_literal_secrets(
    node: &Node,
    path: &mut Vec<Step>,
    located: &Located,
    out: &mut Vec<Diagnostic>,
) {
    match &node.value {
        NodeValue::Map(entries) => {
            for (k, v) in entries {
                path.push(Step::Key(k.name.clone()));
                let lower = k.name.to_lowercase();
                let secretish = lower.contains("password") || lower.contains("secret");
                if secretish && let NodeValue::Str(s) = &v.value {
                    let is_ref = s.starts_with("env:") || s.starts_with("file:");
                    if !is_ref {
                        let mut l = located.loc(path);
                        if let Some(l) = l.as_mut() {
                            l.line = v.pos.line;
                            l.column = v.pos.column;
                        }
                        out.push(
                            Diagnostic::error(
                                "literal-secret",
                                format!(
                                    "{}: a secret must not be written in the policy",
                                    path_string(path)
                                ),
                            )
                            .at(l)
                            .hint(format!(
                                "use `{}: env:VARIABLE` or `{}: file:/path/to/secret`",
                                if lower == "password" {
                                    "passwordFrom"
                                } else {
                                    k.name.as_str()
                                },
                                if lower == "password" {
                                    "passwordFrom"
                                } else {
                                    k.name.as_str()
                                }
                            )),
                        );
                    }
                }
                find_literal_secrets(v, path, located, out);
                path.pop();
            }
        }
        NodeValue::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                find_literal_secrets(item, path, located, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Non-routable suffixes: Entra cannot verify these, so UPNs using them are rewritten.
pub fn is_non_routable(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let tld = d.rsplit('.').next().unwrap_or(&d);
    !d.contains('.')
        || matches!(
            tld,
            "local"
                | "lan"
                | "internal"
                | "test"
                | "localdomain"
                | "home"
                | "corp"
                | "intranet"
                | "private"
                | "invalid"
                | "example"
                | "localhost"
        )
}

pub(super) struct Compiler<'a> {
    located: &'a Located<'a>,
    diags: &'a mut Vec<Diagnostic>,
    pub(super) templates: Templates,
}

impl Compiler<'_> {
    pub(super) fn err(
        &mut self,
        path: &[Step],
        code: &str,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = Diagnostic::error(code, format!("{}: {}", path_string(path), msg.into()));
        self.push_at(d, path, hint.into());
    }

    pub(super) fn warn(
        &mut self,
        path: &[Step],
        code: &str,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = Diagnostic::warning(code, format!("{}: {}", path_string(path), msg.into()));
        self.push_at(d, path, hint.into());
    }

    fn push_at(&mut self, d: Diagnostic, path: &[Step], hint: String) {
        self.diags.push(d.at(self.located.loc(path)).hint(hint));
    }

    pub(super) fn dn(&mut self, path: &[Step], s: &str) -> Option<Dn> {
        match Dn::parse(s) {
            Ok(dn) if dn.rdn_count() > 0 => Some(dn),
            Ok(_) => {
                self.err(
                    path,
                    "invalid-dn",
                    "empty distinguished name",
                    "e.g. OU=Staff,DC=corp,DC=example,DC=com",
                );
                None
            }
            Err(e) => {
                self.err(
                    path,
                    "invalid-dn",
                    format!("`{s}` is not a distinguished name ({})", e.reason),
                    "e.g. OU=Staff,DC=corp,DC=example,DC=com; escape commas in values as \\,",
                );
                None
            }
        }
    }

    pub(super) fn dns(&mut self, field: &[Step], list: &[String]) -> Vec<Dn> {
        let mut out = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let mut path = field.to_vec();
            path.push(Step::Index(i));
            if let Some(dn) = self.dn(&path, s) {
                // `[OU=a,DC=b]` unquoted in a YAML flow list splits into `OU=a`, `DC=b`.
                if dn.rdn_count() < 2 {
                    self.err(
                        &path,
                        "invalid-dn",
                        format!("`{s}` is a single name, not the full DN of an OU or group"),
                        "quote DNs inside [ ] lists: [\"OU=Staff,DC=corp,DC=example,DC=com\"]",
                    );
                    continue;
                }
                out.push(dn);
            }
        }
        out
    }

    pub(super) fn filter(&mut self, field: &[Step], f: Option<&str>) -> Option<Filter> {
        let f = f?;
        match Filter::parse(f) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.err(
                    field,
                    "invalid-ldap-filter",
                    format!("{e}"),
                    "RFC 4515 syntax, e.g. (&(objectCategory=person)(objectClass=user))",
                );
                None
            }
        }
    }

    pub(super) fn expression(&mut self, field: &[Step], name: &str, expr: &str) {
        if let Err(e) = self.templates.add_expression(name, expr) {
            self.err(
                field,
                "invalid-expression",
                e.message,
                "a Jinja expression over AD attributes, e.g. not sAMAccountName.startswith('svc_')",
            );
        }
    }

    pub(super) fn duration(&mut self, path: &[Step], s: &str) {
        if parse_duration(s).is_none() {
            self.err(
                path,
                "invalid-duration",
                format!("`{s}` is not a duration"),
                "e.g. 30s, 30m, 24h, 7d",
            );
        }
    }

    pub(super) fn domain(&mut self, path: &[Step], d: &str, must_route: bool) {
        let valid = !d.is_empty()
            && d.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !valid {
            self.err(
                path,
                "invalid-domain",
                format!("`{d}` is not a domain name"),
                "e.g. corp.example.com",
            );
        } else if must_route && is_non_routable(d) {
            self.err(
                path,
                "non-routable-domain",
                format!("`{d}` is not routable and cannot be a verified Entra domain"),
                "rewrite to a verified domain or the tenant's *.onmicrosoft.com domain",
            );
        }
    }

    fn mappings(
        &mut self,
        kind: &str,
        given: &BTreeMap<String, String>,
        defaults: &[(&str, &str)],
    ) -> Vec<MappingRule> {
        let mut rules = Vec::new();
        for (prop, tpl) in defaults {
            if given.contains_key(*prop) {
                continue;
            }
            let compiled = format!("mappings.{kind}.{prop}");
            if self.templates.add_template(&compiled, tpl).is_ok() {
                let gp = if kind == "user" {
                    graph_props::user_prop(prop)
                } else {
                    graph_props::group_prop(prop)
                };
                if let Some(gp) = gp {
                    rules.push(MappingRule {
                        property: prop.to_string(),
                        template: tpl.to_string(),
                        compiled,
                        kind: gp.kind,
                        max_len: gp.max_len,
                        location: None,
                    });
                }
            }
        }
        for (prop, tpl) in given {
            let path = p(&["mappings", kind, prop]);
            let gp = if kind == "user" {
                graph_props::user_prop(prop)
            } else {
                graph_props::group_prop(prop)
            };
            let Some(gp) = gp else {
                match graph_props::read_only_hint(prop) {
                    Some(h) => self.err(
                        &path,
                        "read-only-graph-property",
                        format!("`{prop}` cannot be written through Graph"),
                        h,
                    ),
                    None => {
                        let known: Vec<&str> = if kind == "user" {
                            graph_props::USER_PROPS.iter().map(|p| p.name).collect()
                        } else {
                            graph_props::GROUP_PROPS.iter().map(|p| p.name).collect()
                        };
                        let mut key_path = p(&["mappings", kind]);
                        let located = self.located.loc(&key_path);
                        key_path.push(key(prop));
                        // point at the key, not the value
                        let location = self
                            .located
                            .owner
                            .get("mappings")
                            .and_then(|i| self.located.trees[*i].as_ref())
                            .and_then(|t| t.get(&p(&["mappings", kind])))
                            .and_then(|n| n.key_pos(prop))
                            .map(|pos| loc(&located.map(|l| l.file).unwrap_or_default(), pos));
                        self.diags.push(
                            Diagnostic::error(
                                "unknown-graph-property",
                                format!("mappings.{kind}.{prop}: `{prop}` is not a writable Graph {kind} property"),
                            )
                            .at(location)
                            .hint(format!("writable: {}", known.join(", "))),
                        );
                    }
                }
                continue;
            };
            if tpl.trim().is_empty() {
                continue; // turned off
            }
            let compiled = format!("mappings.{kind}.{prop}");
            match self.templates.add_template(&compiled, tpl) {
                Ok(()) => rules.push(MappingRule {
                    property: prop.clone(),
                    template: tpl.clone(),
                    compiled,
                    kind: gp.kind,
                    max_len: gp.max_len,
                    location: self.located.loc(&path),
                }),
                Err(e) => self.err(
                    &path,
                    "invalid-template",
                    e.message,
                    "a Jinja template over AD attributes, e.g. \"{{ givenName ~ ' ' ~ sn }}\"",
                ),
            }
        }
        rules
    }
}

/// Parses `30s`, `30m`, `24h`, `7d` into seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    (n > 0).then_some(n * mult)
}
