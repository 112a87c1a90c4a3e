//! Input from outside (policy filters, DNs, LDIF files) must give errors, never panics.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dn_parse_never_panics(s in "\\PC{0,60}|[A-Za-z=,+;\\\\ #\"0-9a-f]{0,40}") {
        let _ = ad2entra::model::Dn::parse(&s);
    }

    #[test]
    fn ldap_filter_parse_never_panics(s in "\\PC{0,60}|[()&|!=*<>~:a-zA-Z0-9.\\\\ ]{0,50}") {
        let _ = ad2entra::policy::ldap_filter::Filter::parse(&s);
    }

    #[test]
    fn ldif_read_never_panics(s in "(dn|dn:|objectGUID::|cn:|member:|changetype:| |\\n|[A-Za-z0-9=+/,:;<>-]){0,80}") {
        let _ = ad2entra::ad::ldif::read_ldif(&s, "fuzz.ldif");
    }

    #[test]
    fn ldif_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut data = b"dn: CN=a,DC=c\nobjectGUID:: AAAAAAAAAAAAAAAAAAAAAA==\n".to_vec();
        data.extend(bytes);
        let _ = ad2entra::ad::ldif::read_ldif_bytes(&data, "fuzz.ldif");
    }
}

#[test]
fn policy_load_never_panics_on_odd_yaml() {
    for text in [
        "",
        "---",
        "[]",
        "apiVersion: ad2entra/v1\nscope: {users: {includeOUs: [1, null, {a: b}]}}",
        "apiVersion: ad2entra/v1\nmappings: {user: {displayName: '{% for %}'}}",
        "apiVersion: ad2entra/v1\n? [a]\n: b",
        "apiVersion: &a ad2entra/v1\nx: *a",
        "apiVersion: ad2entra/v1\ndeletion: {maxDeletePercent: .nan}",
    ] {
        let _ = ad2entra::policy::load(
            "p.yaml",
            &[ad2entra::policy::PolicyFile {
                name: "p.yaml".into(),
                text: text.into(),
            }],
        );
    }
}
