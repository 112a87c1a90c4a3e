//! The policy's AD sources: `source:` (one domain) or `sources:` (several domains or
//! forests, each named, with its DCs tried in order and, where they differ, its own
//! `scope` and `upn`), checked and compiled, and the per-source view of scope and UPN
//! rules the planner evaluates each object against.
//!
//! A source object's `origin` is the index of its source in [`LoadedPolicy::sources`];
//! everything here is keyed by it.

use super::ldap_filter::Filter;
use super::load::{Compiler, LoadedPolicy, key, p};
use super::model::{Policy, Scope, UpnConfig};
use super::yaml_tree::Step;
use crate::model::Dn;
use std::time::Duration;

/// The most sources one policy may name (an object's source is a 16-bit index).
pub const MAX_SOURCES: usize = 1000;

/// One source, checked: where its DCs are and how to bind, and its own rules if any.
#[derive(Clone, Debug)]
pub struct CompiledSource {
    /// `sources[].name`; for a single `source:`, the host of its URL (or `default`).
    pub name: String,
    /// The DCs, in the order they are tried (at least one).
    pub urls: Vec<String>,
    pub bind_dn: String,
    /// The password reference (`env:NAME` / `file:PATH`), not the password.
    pub password_from: String,
    pub base_dn: Dn,
    pub ca_file: Option<String>,
    pub allow_insecure: bool,
    pub timeout: Option<Duration>,
    /// Its own scope; `None`: the top-level `scope` applies.
    pub scope: Option<CompiledScope>,
    /// Its own UPN handling; `None`: the top-level `upn` applies.
    pub upn: Option<UpnConfig>,
}

/// A `scope` section with its DNs parsed, filters compiled and `when` expressions
/// registered (under `user_when` / `group_when` in the policy's templates).
#[derive(Clone, Debug)]
pub struct CompiledScope {
    /// Where it is written, for scope decisions: `scope` or `sources[corp].scope`.
    pub path: String,
    pub raw: Scope,
    pub user_include_ous: Vec<Dn>,
    pub user_exclude_ous: Vec<Dn>,
    pub user_member_of: Vec<Dn>,
    pub group_include_ous: Vec<Dn>,
    pub group_exclude_ous: Vec<Dn>,
    pub user_filter: Option<Filter>,
    pub group_filter: Option<Filter>,
    /// Template names of the compiled `when` expressions.
    pub user_when: String,
    pub group_when: String,
}

impl CompiledScope {
    /// Every OU and group DN it names, for resolving them in AD and following renames.
    pub fn dns_mut(&mut self) -> impl Iterator<Item = &mut Dn> {
        self.user_include_ous
            .iter_mut()
            .chain(self.user_exclude_ous.iter_mut())
            .chain(self.user_member_of.iter_mut())
            .chain(self.group_include_ous.iter_mut())
            .chain(self.group_exclude_ous.iter_mut())
    }

    fn dns(&self) -> impl Iterator<Item = (&'static str, &Dn)> {
        fn tag<'a>(
            field: &'static str,
            v: &'a [Dn],
        ) -> impl Iterator<Item = (&'static str, &'a Dn)> {
            v.iter().map(move |d| (field, d))
        }
        tag("users.includeOUs", &self.user_include_ous)
            .chain(tag("users.excludeOUs", &self.user_exclude_ous))
            .chain(tag("users.memberOf", &self.user_member_of))
            .chain(tag("groups.includeOUs", &self.group_include_ous))
            .chain(tag("groups.excludeOUs", &self.group_exclude_ous))
    }
}

/// The scope rules that apply to one source's objects, borrowed from the policy: the
/// source's own `scope` when it has one, else the top-level one; and the source's base
/// DN, outside which nothing is in scope.
#[derive(Clone, Copy, Debug)]
pub struct ScopeRules<'a> {
    /// `scope` or `sources[corp].scope`, for the rule a decision names.
    pub path: &'a str,
    pub raw: &'a Scope,
    pub base_dn: Option<&'a Dn>,
    pub user_include_ous: &'a [Dn],
    pub user_exclude_ous: &'a [Dn],
    pub user_member_of: &'a [Dn],
    pub group_include_ous: &'a [Dn],
    pub group_exclude_ous: &'a [Dn],
    pub user_filter: Option<&'a Filter>,
    pub group_filter: Option<&'a Filter>,
    pub user_when: &'a str,
    pub group_when: &'a str,
}

impl LoadedPolicy {
    /// The scope rules for objects of source `origin` (the top-level ones for an origin
    /// the policy does not name, e.g. an LDIF read without `source:`).
    pub fn scope_for(&self, origin: u16) -> ScopeRules<'_> {
        let src = self.sources.get(usize::from(origin));
        let base_dn = src.map(|s| &s.base_dn).or(self.base_dn.as_ref());
        match src.and_then(|s| s.scope.as_ref()) {
            Some(sc) => ScopeRules {
                path: &sc.path,
                raw: &sc.raw,
                base_dn,
                user_include_ous: &sc.user_include_ous,
                user_exclude_ous: &sc.user_exclude_ous,
                user_member_of: &sc.user_member_of,
                group_include_ous: &sc.group_include_ous,
                group_exclude_ous: &sc.group_exclude_ous,
                user_filter: sc.user_filter.as_ref(),
                group_filter: sc.group_filter.as_ref(),
                user_when: &sc.user_when,
                group_when: &sc.group_when,
            },
            None => ScopeRules {
                path: "scope",
                raw: &self.policy.scope,
                base_dn,
                user_include_ous: &self.user_include_ous,
                user_exclude_ous: &self.user_exclude_ous,
                user_member_of: &self.user_member_of,
                group_include_ous: &self.group_include_ous,
                group_exclude_ous: &self.group_exclude_ous,
                user_filter: self.user_filter.as_ref(),
                group_filter: self.group_filter.as_ref(),
                user_when: super::load::USER_WHEN,
                group_when: super::load::GROUP_WHEN,
            },
        }
    }

    /// The UPN rules for users of source `origin`.
    pub fn upn_for(&self, origin: u16) -> &UpnConfig {
        self.sources
            .get(usize::from(origin))
            .and_then(|s| s.upn.as_ref())
            .unwrap_or(&self.policy.upn)
    }

    /// The tenant domains UPNs are rewritten to (top-level `upn` and each source's own),
    /// sorted, once each: `init` checks they are verified.
    pub fn upn_domains(&self) -> Vec<String> {
        let mut v: Vec<String> = std::iter::once(&self.policy.upn)
            .chain(self.sources.iter().filter_map(|s| s.upn.as_ref()))
            .flat_map(|u| u.rewrite_suffixes.values().chain(&u.fallback_domain))
            .map(|d| d.to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every OU and group DN the policy names (top-level scope, each source's own scope,
    /// licence rules), with the field that names it, e.g. `sources[corp].scope.users.includeOUs`.
    pub fn named_dns(&self) -> Vec<(String, &Dn)> {
        let top = [
            ("scope.users.includeOUs", &self.user_include_ous),
            ("scope.users.excludeOUs", &self.user_exclude_ous),
            ("scope.users.memberOf", &self.user_member_of),
            ("scope.groups.includeOUs", &self.group_include_ous),
            ("scope.groups.excludeOUs", &self.group_exclude_ous),
        ];
        top.into_iter()
            .flat_map(|(f, v)| v.iter().map(move |d| (f.to_string(), d)))
            .chain(
                self.licenses
                    .iter()
                    .map(|l| ("licenses.whenMemberOf".to_string(), &l.group)),
            )
            .chain(
                self.sources
                    .iter()
                    .filter_map(|s| s.scope.as_ref())
                    .flat_map(|sc| sc.dns().map(move |(f, d)| (format!("{}.{f}", sc.path), d))),
            )
            .collect()
    }

    /// The groups whose transitive members scope and licence rules ask about.
    pub fn membership_groups(&self) -> impl Iterator<Item = &Dn> {
        self.user_member_of
            .iter()
            .chain(self.licenses.iter().map(|l| &l.group))
            .chain(
                self.sources
                    .iter()
                    .filter_map(|s| s.scope.as_ref())
                    .flat_map(|sc| &sc.user_member_of),
            )
    }

    /// The source whose domain holds `dn`: the one with the deepest base DN above it (a
    /// child domain's naming context sits below its parent's by name, but is read from
    /// its own DCs).
    pub fn source_of(&self, dn: &Dn) -> Option<u16> {
        owner_of(&self.sources, dn)
    }
}

fn owner_of(sources: &[CompiledSource], dn: &Dn) -> Option<u16> {
    sources
        .iter()
        .enumerate()
        .filter(|(_, s)| dn.is_within(&s.base_dn))
        .max_by_key(|(_, s)| s.base_dn.rdns().len())
        .and_then(|(i, _)| u16::try_from(i).ok())
}

/// The name a single `source:` gets: the host of its URL, else `default`.
pub fn default_source_name(url: &str) -> String {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        "default".to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The fields `source:` and a `sources:` entry share, with where they are written.
struct Connection<'a> {
    path: Vec<Step>,
    urls: Vec<(Vec<Step>, &'a str)>,
    bind_dn: &'a str,
    password_from: &'a str,
    base_dn: &'a str,
    ca_file: &'a Option<String>,
    allow_insecure: bool,
    timeout: &'a Option<String>,
}

/// The [`Connection`] of `source:` or of a `sources:` entry (their shared fields).
macro_rules! connection {
    ($src:expr, $path:expr, $urls:expr) => {
        Connection {
            path: $path,
            urls: $urls,
            bind_dn: &$src.bind_dn,
            password_from: &$src.password_from,
            base_dn: &$src.base_dn,
            ca_file: &$src.ca_file,
            allow_insecure: $src.allow_insecure,
            timeout: &$src.timeout,
        }
    };
}

fn at(base: &[Step], rest: &[&str]) -> Vec<Step> {
    let mut v = base.to_vec();
    v.extend(rest.iter().map(|s| key(s)));
    v
}

/// Checks `source` or `sources` and compiles them, in policy order (each source's own
/// scope checked against the others' base DNs too).
pub(super) fn compile_sources(c: &mut Compiler, policy: &Policy) -> Vec<CompiledSource> {
    let mut out = Vec::new();
    if let (Some(_), Some(_)) = (&policy.source, &policy.sources) {
        c.err(
            &p(&["sources"]),
            "source-and-sources",
            "`source` and `sources` are both given",
            "keep one: `source` for one domain, `sources` (a list) for several",
        );
        return out;
    }
    if let Some(src) = &policy.source {
        let path = p(&["source"]);
        let conn = connection!(
            src,
            path.clone(),
            vec![(at(&path, &["url"]), src.url.as_str())]
        );
        if let Some(s) = compile_connection(c, default_source_name(&src.url), &conn) {
            out.push(s);
        }
        return out;
    }
    let Some(list) = &policy.sources else {
        return out;
    };
    if list.is_empty() {
        c.err(
            &p(&["sources"]),
            "no-sources",
            "`sources` is empty",
            "list at least one source, or remove `sources` to plan from an LDIF file only",
        );
    }
    if list.len() > MAX_SOURCES {
        c.err(
            &p(&["sources"]),
            "too-many-sources",
            format!("{} sources; at most {MAX_SOURCES}", list.len()),
            "one source per domain: list a domain's DCs as several urls of one source",
        );
        return out;
    }
    let mut names: Vec<(String, usize)> = Vec::new();
    let mut urls_seen: Vec<(String, usize)> = Vec::new();
    let mut own_scopes: Vec<(usize, Vec<Step>, &Scope)> = Vec::new();
    for (i, src) in list.iter().enumerate() {
        let path = vec![key("sources"), Step::Index(i)];
        if !valid_name(&src.name) {
            c.err(
                &at(&path, &["name"]),
                "invalid-source-name",
                format!("`{}` is not a source name", src.name),
                "letters, digits, `-`, `_` and `.`, at most 64, e.g. corp or emea.corp",
            );
        } else if let Some((_, j)) = names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&src.name))
        {
            c.err(
                &at(&path, &["name"]),
                "duplicate-source-name",
                format!("source name `{}` is also used by sources[{j}]", src.name),
                "give every source its own name: plans, logs and the state file tell them apart by it",
            );
        } else {
            names.push((src.name.clone(), i));
        }
        if src.urls.is_empty() {
            c.err(
                &at(&path, &["urls"]),
                "no-urls",
                "a source needs at least one DC URL",
                "e.g. urls: [ldaps://dc1.corp.example.com, ldaps://dc2.corp.example.com]",
            );
        }
        let mut urls = Vec::new();
        for (k, u) in src.urls.iter().enumerate() {
            let mut up = at(&path, &["urls"]);
            up.push(Step::Index(k));
            let norm = u.trim().to_ascii_lowercase();
            if let Some((_, j)) = urls_seen.iter().find(|(x, _)| *x == norm) {
                c.err(
                    &up,
                    "duplicate-source-url",
                    format!("{u} is also listed by sources[{j}]"),
                    "a DC serves one domain: list it once, in the source of its domain",
                );
            } else {
                urls_seen.push((norm, i));
            }
            urls.push((up, u.as_str()));
        }
        let conn = connection!(src, path.clone(), urls);
        if let Some(mut compiled) = compile_connection(c, src.name.clone(), &conn) {
            if let Some(upn) = &src.upn {
                check_upn(c, &at(&path, &["upn"]), upn);
                compiled.upn = Some(upn.clone());
            }
            if let Some(scope) = &src.scope {
                own_scopes.push((out.len(), at(&path, &["scope"]), scope));
            }
            out.push(compiled);
        }
    }
    for (a, sa) in out.iter().enumerate() {
        if let Some(b) = out[..a].iter().position(|sb| sb.base_dn == sa.base_dn) {
            c.err(
                &[key("sources"), Step::Index(a), key("baseDn")],
                "duplicate-source-base-dn",
                format!(
                    "base DN {} is also the base DN of source `{}`",
                    sa.base_dn, out[b].name
                ),
                "one source per domain: list a domain's DCs as several urls of one source",
            );
        }
    }
    // Own scopes last: their DNs are checked against every source's base DN.
    for (idx, path, scope) in own_scopes {
        let name = out[idx].name.clone();
        let compiled = compile_scope_at(c, scope, &path, &format!("sources[{name}].scope"));
        check_scope_dns(c, &compiled, &out, Some(idx));
        out[idx].scope = Some(compiled);
    }
    out
}

fn compile_connection(c: &mut Compiler, name: String, conn: &Connection) -> Option<CompiledSource> {
    for (path, u) in &conn.urls {
        let scheme = u.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let url_ok = matches!(scheme.as_deref(), Some("ldaps" | "ldap"));
        if !url_ok {
            c.err(
                path,
                "invalid-url",
                format!("`{u}` is not an LDAP URL"),
                "use ldaps://host[:port] or ldap://host[:port] (StartTLS)",
            );
        }
    }
    c.dn(&at(&conn.path, &["bindDn"]), conn.bind_dn);
    let base_dn = c.dn(&at(&conn.path, &["baseDn"]), conn.base_dn);
    let mut timeout = None;
    if let Some(t) = conn.timeout {
        c.duration(&at(&conn.path, &["timeout"]), t);
        timeout = super::load::parse_duration(t).map(Duration::from_secs);
    }
    Some(CompiledSource {
        name,
        urls: conn.urls.iter().map(|(_, u)| u.to_string()).collect(),
        bind_dn: conn.bind_dn.to_string(),
        password_from: conn.password_from.to_string(),
        base_dn: base_dn?,
        ca_file: conn.ca_file.clone(),
        allow_insecure: conn.allow_insecure,
        timeout,
        scope: None,
        upn: None,
    })
}

/// Compiles the top-level `scope` section (`path` is `scope`).
pub(super) fn compile_scope(c: &mut Compiler, scope: &Scope, path: &str) -> CompiledScope {
    compile_scope_at(c, scope, &p(&[path]), path)
}

/// Compiles a `scope` section written at `at_path`; `name` prefixes its template names
/// and the rules its decisions name.
fn compile_scope_at(
    c: &mut Compiler,
    scope: &Scope,
    at_path: &[Step],
    name: &str,
) -> CompiledScope {
    let f = |rest: &[&str]| at(at_path, rest);
    let users = &scope.users;
    let groups = &scope.groups;
    let user_when = format!("{name}.users.when");
    let group_when = format!("{name}.groups.when");
    let compiled = CompiledScope {
        path: name.to_string(),
        raw: scope.clone(),
        user_include_ous: c.dns(&f(&["users", "includeOUs"]), &users.include_ous),
        user_exclude_ous: c.dns(&f(&["users", "excludeOUs"]), &users.exclude_ous),
        user_member_of: c.dns(&f(&["users", "memberOf"]), &users.member_of),
        group_include_ous: c.dns(&f(&["groups", "includeOUs"]), &groups.include_ous),
        group_exclude_ous: c.dns(&f(&["groups", "excludeOUs"]), &groups.exclude_ous),
        user_filter: c.filter(&f(&["users", "ldapFilter"]), users.ldap_filter.as_deref()),
        group_filter: c.filter(&f(&["groups", "ldapFilter"]), groups.ldap_filter.as_deref()),
        user_when,
        group_when,
    };
    if let Some(w) = &users.when {
        c.expression(&f(&["users", "when"]), &compiled.user_when, w);
    }
    if let Some(w) = &groups.when {
        c.expression(&f(&["groups", "when"]), &compiled.group_when, w);
    }
    compiled
}

/// Where a scope's DNs may lie. The top-level scope (`own` None) applies to every
/// source: an include OU under none of their base DNs is a warning, as it always was.
/// A source's own scope names that source's OUs: an include or exclude OU of another
/// domain is an error (it could never match), and a memberOf group must be in some
/// source (a universal group of another domain of the forest is fine).
pub(super) fn check_scope_dns(
    c: &mut Compiler,
    sc: &CompiledScope,
    sources: &[CompiledSource],
    own: Option<usize>,
) {
    let written = |field: &str, i: usize| -> Vec<Step> {
        let mut v: Vec<Step> = match own {
            Some(idx) => vec![key("sources"), Step::Index(idx), key("scope")],
            None => p(&["scope"]),
        };
        v.extend(field.split('.').map(key));
        v.push(Step::Index(i));
        v
    };
    let Some(idx) = own else {
        if sources.is_empty() {
            return;
        }
        for (field, list) in [
            ("users.includeOUs", &sc.user_include_ous),
            ("groups.includeOUs", &sc.group_include_ous),
        ] {
            for (i, dn) in list.iter().enumerate() {
                if owner_of(sources, dn).is_none() {
                    let bases: Vec<String> =
                        sources.iter().map(|s| s.base_dn.to_string()).collect();
                    c.warn(
                        &written(field, i),
                        "outside-base-dn",
                        format!("{dn} is not under the base DN {}", bases.join(" or ")),
                        "nothing outside the sources' baseDn is read",
                    );
                }
            }
        }
        return;
    };
    let me = &sources[idx];
    for (field, list) in [
        ("users.includeOUs", &sc.user_include_ous),
        ("users.excludeOUs", &sc.user_exclude_ous),
        ("groups.includeOUs", &sc.group_include_ous),
        ("groups.excludeOUs", &sc.group_exclude_ous),
    ] {
        for (i, dn) in list.iter().enumerate() {
            let owner = owner_of(sources, dn).map(usize::from);
            if owner != Some(idx) {
                let whose = match owner {
                    Some(o) => format!("it belongs to source `{}`", sources[o].name),
                    None => "it is under no source's base DN".to_string(),
                };
                c.err(
                    &written(field, i),
                    "scope-outside-source",
                    format!(
                        "{dn} is not in source `{}` (base DN {}): {whose}",
                        me.name, me.base_dn
                    ),
                    "a source's own scope names OUs of its own domain; put this OU in the scope of the source that holds it",
                );
            }
        }
    }
    for (i, dn) in sc.user_member_of.iter().enumerate() {
        if owner_of(sources, dn).is_none() {
            c.err(
                &written("users.memberOf", i),
                "scope-outside-source",
                format!("{dn} is under no source's base DN: its members cannot be read"),
                "name a group of one of the sources",
            );
        }
    }
}

/// Checks a `upn` section (top-level or a source's).
pub(super) fn check_upn(c: &mut Compiler, path: &[Step], upn: &UpnConfig) {
    for (suffix, target) in &upn.rewrite_suffixes {
        let mut sp = at(path, &["rewriteSuffixes"]);
        sp.push(key(suffix));
        c.domain(&sp, suffix, false);
        c.domain(&sp, target, true);
    }
    if let Some(fb) = &upn.fallback_domain {
        c.domain(&at(path, &["fallbackDomain"]), fb, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_source_is_named_after_its_host() {
        assert_eq!(
            default_source_name("ldaps://DC1.corp.example.com"),
            "dc1.corp.example.com"
        );
        assert_eq!(
            default_source_name("ldaps://dc1.corp.example.com:636"),
            "dc1.corp.example.com"
        );
        assert_eq!(default_source_name("ldap://127.0.0.1:3389/"), "127.0.0.1");
        assert_eq!(default_source_name("ldaps://[::1]:636"), "::1");
        assert_eq!(default_source_name("ldaps://"), "default");
    }

    #[test]
    fn source_names() {
        assert!(valid_name("corp"));
        assert!(valid_name("emea.corp-1_x"));
        assert!(!valid_name(""));
        assert!(!valid_name("two words"));
        assert!(!valid_name(&"x".repeat(65)));
    }
}
