//! Tests of policy loading: every diagnostic code, positions, and multi-file policies.

use super::load::{PolicyFile, load};
use crate::diagnostics::Diagnostic;

pub(super) fn load_str(text: &str) -> Result<super::LoadedPolicy, Vec<Diagnostic>> {
    load(
        "policy.yaml",
        &[PolicyFile {
            name: "policy.yaml".into(),
            text: text.into(),
        }],
    )
}

fn codes(text: &str) -> Vec<(String, u64, u64)> {
    match load_str(text) {
        Ok(_) => vec![],
        Err(d) => d
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| {
                let l = d.location.unwrap_or(crate::diagnostics::Location {
                    file: String::new(),
                    line: 0,
                    column: 0,
                });
                (d.code, l.line, l.column)
            })
            .collect(),
    }
}

fn one(text: &str) -> String {
    let c = codes(text);
    assert_eq!(c.len(), 1, "expected one error, got {c:?}");
    c[0].0.clone()
}

#[test]
fn minimal_policy_loads_with_defaults() {
    let p = load_str("apiVersion: ad2entra/v1\n").unwrap();
    assert!(p.policy.scope.users.include_disabled);
    assert!(p.policy.scope.groups.exclude_admin_groups);
    assert_eq!(p.policy.deletion.max_deletes, 500);
    assert!(p.user_mappings.iter().any(|m| m.property == "displayName"));
    assert!(p.content_hash.starts_with("sha256:"));
}

#[test]
fn five_mistakes_are_all_reported_with_positions() {
    let text = "\
apiVersion: ad2entra/v1
source:
  url: ldaps://dc1
  bindDn: CN=svc,DC=corp
  password: hunter2
  baseDn: DC=corp
scope:
  users:
    includeOU: [\"OU=Staff,DC=corp\"]
    ldapFilter: \"(&(objectClass=user)\"
mappings:
  user:
    displayName: \"{{ givenName | nosuch }}\"
deletion:
  mode: sometimes
";
    let c = codes(text);
    let want = [
        ("literal-secret", 5, 13),
        ("missing-field", 3, 3),
        ("unknown-field", 9, 5),
        ("invalid-ldap-filter", 10, 17),
        ("invalid-template", 13, 18),
        ("invalid-value", 15, 9),
    ];
    assert_eq!(c.len(), want.len(), "{c:?}");
    for (code, line, _col) in want {
        assert!(
            c.iter().any(|(cc, l, _)| cc == code && *l == line),
            "missing {code} at line {line}: {c:?}"
        );
    }
}

#[test]
fn each_code() {
    assert_eq!(one("apiVersion: ad2entra/v2\n"), "unsupported-api-version");
    assert_eq!(one("apiVersion: [\n"), "yaml-syntax");
    assert_eq!(one("apiVersion: ad2entra/v1\nscope: 3\n"), "wrong-type");
    assert_eq!(
        one("apiVersion: ad2entra/v1\nscopes: {}\n"),
        "unknown-field"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nadopt: {by: cn}\n"),
        "invalid-value"
    );
    assert_eq!(one("scope: {}\n"), "missing-field");
    assert_eq!(
        one(
            "apiVersion: ad2entra/v1\nsource: {url: 'http://x', bindDn: 'CN=a', passwordFrom: 'env:X', baseDn: 'DC=a'}\n"
        ),
        "invalid-url"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nscope: {users: {includeOUs: ['Staff']}}\n"),
        "invalid-dn"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nscope: {users: {ldapFilter: '(cn=a'}}\n"),
        "invalid-ldap-filter"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nscope: {users: {when: 'cn =='}}\n"),
        "invalid-expression"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nmappings: {user: {displayName: '{{ cn '}}\n"),
        "invalid-template"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nmappings: {user: {proxyAddresses: '{{ mail }}'}}\n"),
        "read-only-graph-property"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nmappings: {user: {favouriteColour: '{{ mail }}'}}\n"),
        "unknown-graph-property"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nupn: {fallbackDomain: 'bad domain'}\n"),
        "invalid-domain"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nupn: {rewriteSuffixes: {corp.local: corp.lan}}\n"),
        "non-routable-domain"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nlicenses: [{whenMemberOf: 'CN=E3,DC=corp', sku: 'E 3'}]\n"),
        "invalid-sku"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\ndeletion: {maxDeletePercent: 150}\n"),
        "out-of-range"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\ndeletion: {maxDeletes: -1}\n"),
        "out-of-range"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nprotect: ['*']\n"),
        "invalid-pattern"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\nschedule: {interval: soon}\n"),
        "invalid-duration"
    );
    assert_eq!(
        one("apiVersion: ad2entra/v1\ntarget: {extensionAppId: 'my-app'}\n"),
        "invalid-app-id"
    );
    assert_eq!(
        one(
            "apiVersion: ad2entra/v1\nsource: {url: 'ldaps://x', bindDn: 'CN=a', passwordFrom: 'hunter2', baseDn: 'DC=a'}\n"
        ),
        "literal-secret"
    );
}

#[test]
fn outside_base_dn_is_a_warning() {
    let p = load_str(
        "apiVersion: ad2entra/v1\nsource: {url: 'ldaps://x', bindDn: 'CN=a,DC=corp', passwordFrom: 'env:P', baseDn: 'DC=corp'}\nscope: {users: {includeOUs: ['OU=x,DC=other']}}\n",
    )
    .unwrap();
    assert_eq!(p.warnings[0].code, "outside-base-dn");
}

#[test]
fn directory_policies_merge_and_refuse_duplicate_sections() {
    let files = vec![
        PolicyFile {
            name: "dir/00-base.yaml".into(),
            text: "apiVersion: ad2entra/v1\nprotect: ['admin@*']\n".into(),
        },
        PolicyFile {
            name: "dir/10-scope.yaml".into(),
            text: "scope:\n  users:\n    ldapFilter: '(objectClass=user)'\n".into(),
        },
    ];
    let p = load("dir", &files).unwrap();
    assert!(p.user_filter.is_some());
    assert_eq!(p.protect.len(), 1);
    let mut dup = files.clone();
    dup.push(PolicyFile {
        name: "dir/20-more.yaml".into(),
        text: "protect: ['x*']\n".into(),
    });
    let err = load("dir", &dup).unwrap_err();
    assert_eq!(err[0].code, "duplicate-section");
    assert_eq!(err[0].location.as_ref().unwrap().file, "dir/20-more.yaml");
}

#[test]
fn diagnostics_locate_in_the_right_file() {
    let files = vec![
        PolicyFile {
            name: "a.yaml".into(),
            text: "apiVersion: ad2entra/v1\n".into(),
        },
        PolicyFile {
            name: "b.yaml".into(),
            text: "# comment\nscope:\n  users:\n    ldapFilter: '(cn=a'\n".into(),
        },
    ];
    let err = load("dir", &files).unwrap_err();
    let l = err[0].location.as_ref().unwrap();
    assert_eq!((l.file.as_str(), l.line), ("b.yaml", 4));
}

#[test]
fn a_value_that_passes_the_schema_but_not_the_type_is_invalid_policy() {
    assert_eq!(
        one("apiVersion: ad2entra/v1\ndeletion: {maxDeletes: 5000000000}\n"),
        "invalid-policy"
    );
}

#[test]
fn unquoted_dns_split_by_a_flow_list_are_refused() {
    let c =
        codes("apiVersion: ad2entra/v1\nscope: {users: {includeOUs: [OU=Staff,DC=corp,DC=com]}}\n");
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(
        c.iter()
            .all(|(code, line, _)| code == "invalid-dn" && *line == 2)
    );
}
