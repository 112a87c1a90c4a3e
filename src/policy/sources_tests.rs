//! Tests of `source:` / `sources:`: what a multi-source policy compiles to, and every
//! diagnostic of the sources with its `file:line:column`.

use super::load_tests::load_str;
use crate::diagnostics::Diagnostic;
use crate::model::Dn;

/// (code, line, column) of every error.
fn errors(text: &str) -> Vec<(String, u64, u64)> {
    match load_str(text) {
        Ok(_) => vec![],
        Err(d) => d
            .into_iter()
            .filter(Diagnostic::is_error)
            .map(|d| {
                let l = d.location.expect("every sources diagnostic has a position");
                (d.code, l.line, l.column)
            })
            .collect(),
    }
}

const TWO: &str = "\
apiVersion: ad2entra/v1
sources:
  - name: corp
    urls: [ldaps://dc1.corp.example.com, ldaps://dc2.corp.example.com]
    bindDn: CN=svc,CN=Users,DC=corp,DC=example,DC=com
    passwordFrom: env:CORP_PW
    baseDn: DC=corp,DC=example,DC=com
    timeout: 10s
  - name: emea
    urls: [ldaps://dc1.emea.corp.example.com]
    bindDn: CN=svc,CN=Users,DC=emea,DC=corp,DC=example,DC=com
    passwordFrom: env:EMEA_PW
    baseDn: DC=emea,DC=corp,DC=example,DC=com
    scope:
      users:
        includeOUs: ['OU=Staff,DC=emea,DC=corp,DC=example,DC=com']
        memberOf: ['CN=M365,OU=Groups,DC=corp,DC=example,DC=com']
        when: \"department != 'Temp'\"
      groups:
        enabled: false
    upn:
      rewriteSuffixes: {emea.corp.local: emea.example.com}
scope:
  users:
    includeOUs: ['OU=Staff,DC=corp,DC=example,DC=com']
upn:
  fallbackDomain: corpexample.onmicrosoft.com
";

#[test]
fn sources_compile_in_order_with_their_own_rules() {
    let p = load_str(TWO).unwrap();
    assert_eq!(p.sources.len(), 2);
    let (corp, emea) = (&p.sources[0], &p.sources[1]);
    assert_eq!(corp.name, "corp");
    assert_eq!(
        corp.urls,
        [
            "ldaps://dc1.corp.example.com",
            "ldaps://dc2.corp.example.com"
        ]
    );
    assert_eq!(corp.timeout, Some(std::time::Duration::from_secs(10)));
    assert!(corp.scope.is_none() && corp.upn.is_none());
    assert_eq!(emea.name, "emea");
    // With several sources there is no one base DN: each object has its source's.
    assert!(p.base_dn.is_none());

    // corp: the top-level scope, its own base DN.
    let r = p.scope_for(0);
    assert_eq!(r.path, "scope");
    assert_eq!(r.base_dn.unwrap().as_str(), "DC=corp,DC=example,DC=com");
    assert_eq!(r.user_include_ous.len(), 1);
    assert!(r.raw.groups.enabled);
    // emea: its own scope, with its own `when` compiled under its own name.
    let r = p.scope_for(1);
    assert_eq!(r.path, "sources[emea].scope");
    assert_eq!(
        r.base_dn.unwrap().as_str(),
        "DC=emea,DC=corp,DC=example,DC=com"
    );
    assert!(!r.raw.groups.enabled);
    assert_eq!(r.user_when, "sources[emea].scope.users.when");
    assert!(p.source_attributes().iter().any(|a| a == "department"));
    // An origin the policy does not name gets the top-level rules.
    assert_eq!(p.scope_for(7).path, "scope");

    assert_eq!(
        p.upn_for(0).fallback_domain.as_deref(),
        Some("corpexample.onmicrosoft.com")
    );
    assert!(
        p.upn_for(1)
            .rewrite_suffixes
            .contains_key("emea.corp.local")
    );
    // init checks every domain UPNs go to, the sources' own too.
    assert_eq!(
        p.upn_domains(),
        ["corpexample.onmicrosoft.com", "emea.example.com"]
    );

    // A child domain's DN is under its parent's by name: the deepest base DN owns it.
    let dn = |s: &str| Dn::parse(s).unwrap();
    assert_eq!(
        p.source_of(&dn("CN=a,OU=Staff,DC=emea,DC=corp,DC=example,DC=com")),
        Some(1)
    );
    assert_eq!(
        p.source_of(&dn("CN=a,OU=Staff,DC=corp,DC=example,DC=com")),
        Some(0)
    );
    assert_eq!(p.source_of(&dn("CN=a,DC=branch,DC=example,DC=net")), None);

    // Every named DN, each source's own with its field.
    let named = p.named_dns();
    assert!(
        named
            .iter()
            .any(|(f, d)| f == "sources[emea].scope.users.memberOf"
                && d.as_str() == "CN=M365,OU=Groups,DC=corp,DC=example,DC=com")
    );
    assert!(named.iter().any(|(f, _)| f == "scope.users.includeOUs"));
    assert_eq!(p.membership_groups().count(), 1);
}

#[test]
fn a_single_source_is_a_list_of_one_named_after_its_host() {
    let p = load_str(
        "apiVersion: ad2entra/v1\nsource: {url: 'ldaps://DC1.corp.example.com:636', bindDn: 'CN=a,DC=corp', passwordFrom: 'env:P', baseDn: 'DC=corp'}\n",
    )
    .unwrap();
    assert_eq!(p.sources.len(), 1);
    assert_eq!(p.sources[0].name, "dc1.corp.example.com");
    assert_eq!(p.sources[0].urls, ["ldaps://DC1.corp.example.com:636"]);
    assert_eq!(p.base_dn.as_ref().map(Dn::as_str), Some("DC=corp"));
    assert_eq!(p.scope_for(0).base_dn.map(Dn::as_str), Some("DC=corp"));
    // An LDIF-only policy has none.
    assert!(
        load_str("apiVersion: ad2entra/v1\n")
            .unwrap()
            .sources
            .is_empty()
    );
}

fn entry(name: &str, url: &str, base: &str) -> String {
    format!(
        "  - name: {name}\n    urls: [{url}]\n    bindDn: 'CN=svc,{base}'\n    passwordFrom: env:P\n    baseDn: '{base}'\n"
    )
}

#[test]
fn every_sources_diagnostic_points_at_its_line_and_column() {
    let head = "apiVersion: ad2entra/v1\nsources:\n";
    let cases: Vec<(String, &str, u64, u64)> = vec![
        (
            format!(
                "apiVersion: ad2entra/v1\nsource: {{url: 'ldaps://x', bindDn: 'CN=a', passwordFrom: 'env:P', baseDn: 'DC=a'}}\nsources:\n{}",
                entry("a", "ldaps://y", "DC=b")
            ),
            "source-and-sources",
            4,
            3,
        ),
        (
            "apiVersion: ad2entra/v1\nsources: []\n".into(),
            "no-sources",
            2,
            10,
        ),
        (
            format!("{head}{}", entry("two words", "ldaps://x", "DC=a")),
            "invalid-source-name",
            3,
            11,
        ),
        (
            format!(
                "{head}{}{}",
                entry("corp", "ldaps://x", "DC=a"),
                entry("CORP", "ldaps://y", "DC=b")
            ),
            "duplicate-source-name",
            8,
            11,
        ),
        (
            format!("{head}{}", entry("a", "", "DC=a")),
            "no-urls",
            4,
            11,
        ),
        (
            format!(
                "{head}{}{}",
                entry("a", "ldaps://dc1", "DC=a"),
                entry("b", "ldaps://x, LDAPS://DC1", "DC=b")
            ),
            "duplicate-source-url",
            9,
            23,
        ),
        (
            format!(
                "{head}{}{}",
                entry("a", "ldaps://x", "DC=a"),
                entry("b", "ldaps://y", "dc=A")
            ),
            "duplicate-source-base-dn",
            12,
            13,
        ),
        (
            format!("{head}{}", entry("a", "ldaps://x, https://y", "DC=a")),
            "invalid-url",
            4,
            23,
        ),
        (
            format!(
                "{head}{}",
                entry("a", "ldaps://x", "DC=a").replace("baseDn: 'DC=a'", "baseDn: 'not a dn'")
            ),
            "invalid-dn",
            7,
            13,
        ),
        (
            format!(
                "{head}{}{}    scope:\n      users:\n        includeOUs: ['OU=Staff,DC=a']\n",
                entry("a", "ldaps://x", "DC=a"),
                entry("b", "ldaps://y", "DC=b")
            ),
            "scope-outside-source",
            15,
            22,
        ),
        (
            format!(
                "{head}{}    scope:\n      users:\n        memberOf: ['CN=G,DC=elsewhere']\n",
                entry("a", "ldaps://x", "DC=a")
            ),
            "scope-outside-source",
            10,
            20,
        ),
        (
            format!(
                "{head}{}    upn: {{fallbackDomain: corp.local}}\n",
                entry("a", "ldaps://x", "DC=a")
            ),
            "non-routable-domain",
            8,
            27,
        ),
    ];
    for (text, code, line, column) in cases {
        let got = errors(&text);
        assert!(
            got.contains(&(code.to_string(), line, column)),
            "{code} at {line}:{column} expected, got {got:?} for\n{text}"
        );
        assert_eq!(
            got.len(),
            1,
            "only {code} expected, got {got:?} for\n{text}"
        );
    }
}

#[test]
fn at_most_a_thousand_sources() {
    let mut text = "apiVersion: ad2entra/v1\nsources:\n".to_string();
    for i in 0..=super::sources::MAX_SOURCES {
        text.push_str(&entry(
            &format!("s{i}"),
            &format!("ldaps://dc{i}"),
            &format!("DC=d{i}"),
        ));
    }
    assert_eq!(errors(&text), vec![("too-many-sources".to_string(), 3, 3)]);
}

#[test]
fn a_top_level_include_ou_under_no_source_is_a_warning() {
    let text = format!(
        "apiVersion: ad2entra/v1\nsources:\n{}{}scope: {{users: {{includeOUs: ['OU=x,DC=other']}}}}\n",
        entry("a", "ldaps://x", "DC=a"),
        entry("b", "ldaps://y", "DC=b")
    );
    let p = load_str(&text).unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert_eq!(p.warnings[0].code, "outside-base-dn");
    assert!(
        p.warnings[0].message.contains("DC=a or DC=b"),
        "{}",
        p.warnings[0].message
    );
    // The same OU in one of the sources is fine.
    let text = text.replace("OU=x,DC=other", "OU=x,DC=b");
    assert!(load_str(&text).unwrap().warnings.is_empty());
}
