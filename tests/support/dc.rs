//! Access to the Samba AD test DC started by `scripts/test-dc.sh`.
//!
//! The tests read `DIR/connection.env` named by `AD2ENTRA_TEST_DC_ENV`. Without it they
//! FAIL (a test that silently passes without its server proves nothing); only
//! `AD2ENTRA_SKIP_DC_TESTS=1` skips them, loudly.

#![allow(dead_code)]

use ad2entra::ad::ldap::LdapConfig;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Connection details of the running test DC.
#[derive(Clone, Debug)]
pub struct Dc {
    pub ldap_url: String,
    pub ldaps_url: String,
    pub bind_dn: String,
    pub password: String,
    pub base_dn: String,
    pub ca_file: PathBuf,
    pub seed_users: usize,
}

/// The test DC, or `None` when `AD2ENTRA_SKIP_DC_TESTS=1`. Panics with instructions when
/// the DC is not configured.
pub fn dc() -> Option<Dc> {
    dc_from(
        "AD2ENTRA_TEST_DC_ENV",
        "Start the test DC with `scripts/test-dc.sh` and run \
         `AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env cargo test --test ldap_reader`",
    )
}

/// The second test DC (another realm: another forest), for tests of several sources;
/// `scripts/test.sh` starts it. `None` when `AD2ENTRA_SKIP_DC_TESTS=1`.
pub fn dc2() -> Option<Dc> {
    dc_from(
        "AD2ENTRA_TEST_DC2_ENV",
        "Start a second test DC with `scripts/test-dc.sh -d $PWD/.test-dc2 -p 3589 --realm \
         BRANCH.EXAMPLE.NET` and set AD2ENTRA_TEST_DC2_ENV=$PWD/.test-dc2/connection.env \
         (scripts/test.sh does both)",
    )
}

fn dc_from(var: &str, how: &str) -> Option<Dc> {
    if std::env::var("AD2ENTRA_SKIP_DC_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: AD2ENTRA_SKIP_DC_TESTS=1, not testing against a domain controller");
        return None;
    }
    let path = std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set. {how}, or set AD2ENTRA_SKIP_DC_TESTS=1 to skip these tests explicitly."
        )
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {var}={path}: {e} (is the test DC running?)"));
    let vars = parse_env(&text);
    let get = |k: &str| {
        vars.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{path} has no {k}"))
    };
    Some(Dc {
        ldap_url: get("LDAP_URL"),
        ldaps_url: get("LDAPS_URL"),
        bind_dn: get("LDAP_BIND_DN"),
        password: get("LDAP_PASSWORD"),
        base_dn: get("LDAP_BASE_DN"),
        ca_file: PathBuf::from(get("LDAP_CA_FILE")),
        seed_users: get("TEST_DC_SEED_USERS")
            .parse()
            .expect("TEST_DC_SEED_USERS"),
    })
}

/// Parses `KEY='value'` / `KEY=value` lines.
pub fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

impl Dc {
    /// LDAPS, verified against the test CA.
    pub fn cfg(&self) -> LdapConfig {
        let mut c = LdapConfig::new(
            &self.ldaps_url,
            &self.bind_dn,
            &self.password,
            &self.base_dn,
        );
        c.ca_file = Some(self.ca_file.clone());
        c.timeout = Duration::from_secs(20);
        c
    }

    /// `ldap://` (StartTLS), verified against the test CA.
    pub fn cfg_starttls(&self) -> LdapConfig {
        let mut c = self.cfg();
        c.url = self.ldap_url.clone();
        c
    }

    /// `CN=...` under the base DN.
    pub fn dn(&self, rel: &str) -> String {
        format!("{rel},{}", self.base_dn)
    }

    /// An administrative connection for test setup (adds, renames, deletes). Test code
    /// only: it skips certificate verification, which other tests cover.
    pub async fn admin(&self) -> Ldap {
        let settings = LdapConnSettings::new()
            .set_no_tls_verify(true)
            .set_conn_timeout(Duration::from_secs(10));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.ldaps_url)
            .await
            .expect("admin connect");
        ldap3::drive!(conn);
        ldap.simple_bind(&self.bind_dn, &self.password)
            .await
            .expect("admin bind")
            .success()
            .expect("admin bind result");
        ldap
    }
}

/// A name unique to this test run (tests run concurrently and are re-run on one DC).
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{nanos:x}", std::process::id())
}

pub async fn add_ou(ldap: &mut Ldap, dn: &str, name: &str) {
    ldap.add(
        dn,
        vec![
            ("objectClass", HashSet::from(["top", "organizationalUnit"])),
            ("ou", HashSet::from([name])),
        ],
    )
    .await
    .expect("add OU")
    .success()
    .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

pub async fn add_user(ldap: &mut Ldap, dn: &str, sam: &str) {
    ldap.add(
        dn,
        vec![
            (
                "objectClass",
                HashSet::from(["top", "person", "organizationalPerson", "user"]),
            ),
            ("sAMAccountName", HashSet::from([sam])),
            ("description", HashSet::from(["before"])),
        ],
    )
    .await
    .expect("add user")
    .success()
    .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

pub async fn add_group(ldap: &mut Ldap, dn: &str, sam: &str, members: &[&str]) {
    let mut attrs = vec![
        ("objectClass", HashSet::from(["top", "group"])),
        ("sAMAccountName", HashSet::from([sam])),
    ];
    if !members.is_empty() {
        attrs.push(("member", members.iter().copied().collect()));
    }
    ldap.add(dn, attrs)
        .await
        .expect("add group")
        .success()
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

/// Deletes a subtree, leaves first (best effort: cleanup only).
pub async fn delete_tree(ldap: &mut Ldap, dn: &str) {
    if let Ok(res) = ldap
        .search(dn, ldap3::Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .await
    {
        let mut dns: Vec<String> = res
            .0
            .into_iter()
            .map(|e| ldap3::SearchEntry::construct(e).dn)
            .collect();
        dns.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for d in dns {
            let _ = ldap.delete(&d).await;
        }
    }
}

/// objectGUID of the entry found by `filter`, as `ldapsearch` (OpenLDAP's client, not
/// ldap3) prints it: an independent check of the bytes ad2entra reads.
pub fn guid_b64_via_ldapsearch(dc: &Dc, filter: &str) -> String {
    let out = std::process::Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &dc.ca_file)
        .env("LDAPTLS_REQCERT", "demand")
        .args([
            "-LLL",
            "-x",
            "-o",
            "ldif-wrap=no",
            "-H",
            &dc.ldaps_url,
            "-D",
            &dc.bind_dn,
            "-w",
            &dc.password,
        ])
        .args(["-b", &dc.base_dn, filter, "objectGUID"])
        .output()
        .expect("run ldapsearch (apt-get install ldap-utils)");
    assert!(
        out.status.success(),
        "ldapsearch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("objectGUID:: "))
        .unwrap_or_else(|| panic!("no objectGUID for {filter} in {text}"))
        .trim()
        .to_string()
}
