//! `validate --online` and `plan` against the real Samba AD DC started by
//! scripts/test-dc.sh (AD2ENTRA_TEST_DC_ENV names its connection.env).

use std::collections::HashMap;
use std::process::Command;

/// The DC's connection details; fails loudly when the DC is not configured, unless
/// AD2ENTRA_SKIP_DC_TESTS=1 says to skip.
fn dc() -> Option<HashMap<String, String>> {
    if std::env::var("AD2ENTRA_SKIP_DC_TESTS").as_deref() == Ok("1") {
        return None;
    }
    let path = std::env::var("AD2ENTRA_TEST_DC_ENV")
        .expect("AD2ENTRA_TEST_DC_ENV is not set: start the DC with scripts/test-dc.sh (scripts/test.sh does), or set AD2ENTRA_SKIP_DC_TESTS=1");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect(),
    )
}

fn policy(env: &HashMap<String, String>, ca: &str, include: &[&str]) -> String {
    let ous: Vec<String> = include.iter().map(|o| format!("      - \"{o}\"")).collect();
    format!(
        "apiVersion: ad2entra/v1\nsource:\n  url: {}\n  bindDn: \"{}\"\n  passwordFrom: env:TEST_DC_PASSWORD\n  baseDn: \"{}\"\n  caFile: {ca}\nscope:\n  users:\n    includeOUs:\n{}\nupn:\n  fallbackDomain: corpexample.onmicrosoft.com\n",
        env["LDAPS_URL"],
        env["LDAP_BIND_DN"],
        env["LDAP_BASE_DN"],
        ous.join("\n")
    )
}

fn run(env: &HashMap<String, String>, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ad2entra"))
        .args(args)
        .env("TEST_DC_PASSWORD", &env["LDAP_PASSWORD"])
        .env_remove("AZURE_TENANT_ID")
        .output()
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// `ad2entra plan` of `policy` against an empty tenant snapshot written beside it.
fn plan_empty_tenant(
    env: &HashMap<String, String>,
    policy: &std::path::Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let snap = policy.with_file_name("empty-tenant.json");
    std::fs::write(&snap, r#"{"users": [], "groups": []}"#).unwrap();
    let mut args = vec![
        "plan",
        "--policy",
        policy.to_str().unwrap(),
        "--target-snapshot",
        snap.to_str().unwrap(),
    ];
    args.extend(extra);
    run(env, &args)
}

#[test]
fn validate_online_resolves_ous_and_reports_missing_ones() {
    let Some(env) = dc() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = &env["LDAP_BASE_DN"];
    let good = tmp.path().join("good.yaml");
    std::fs::write(
        &good,
        policy(&env, &env["LDAP_CA_FILE"], &[&format!("OU=Staff,{base}")]),
    )
    .unwrap();
    let (code, out) = run(
        &env,
        &["validate", "--online", "--policy", good.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("ok: scope.users.includeOUs: OU=Staff"),
        "{out}"
    );
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        policy(
            &env,
            &env["LDAP_CA_FILE"],
            &[&format!("OU=Staff,{base}"), &format!("OU=Gone Away,{base}")],
        ),
    )
    .unwrap();
    let (code, out) = run(
        &env,
        &["validate", "--online", "--policy", bad.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("error[not-found-in-ad]: scope.users.includeOUs: OU=Gone Away"),
        "{out}"
    );
}

#[test]
fn plan_refuses_when_an_include_ou_no_longer_resolves() {
    let Some(env) = dc() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = &env["LDAP_BASE_DN"];
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        policy(
            &env,
            &env["LDAP_CA_FILE"],
            &[
                &format!("OU=Staff,{base}"),
                &format!("OU=Renamed Away,{base}"),
            ],
        ),
    )
    .unwrap();
    let (code, out) = plan_empty_tenant(&env, &p, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("source-failure guard"), "{out}");
    assert!(out.contains("OU=Renamed Away"), "{out}");
}

#[test]
fn plan_reads_real_ad_and_a_wrong_ca_is_refused() {
    let Some(env) = dc() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = &env["LDAP_BASE_DN"];
    let p = tmp.path().join("p.yaml");
    std::fs::write(
        &p,
        policy(&env, &env["LDAP_CA_FILE"], &[&format!("OU=Staff,{base}")]),
    )
    .unwrap();
    let (code, out) = plan_empty_tenant(&env, &p, &["--detailed-exitcode"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("+ create user"), "{out}");
    // A CA that did not issue the DC's certificate: refused, nothing planned.
    let other_ca = tmp.path().join("other-ca.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=Not The DC CA",
            "-keyout",
        ])
        .arg(tmp.path().join("k.pem"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(status.status.success());
    std::fs::write(
        &p,
        policy(
            &env,
            other_ca.to_str().unwrap(),
            &[&format!("OU=Staff,{base}")],
        ),
    )
    .unwrap();
    let (code, out) = plan_empty_tenant(&env, &p, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("+ create"), "{out}");
    assert!(
        out.to_lowercase().contains("certificate") || out.contains("TLS"),
        "{out}"
    );
}

/// Runs an OpenLDAP client tool against the DC over LDAPS with the admin bind.
fn ldap_tool(env: &HashMap<String, String>, tool: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(tool)
        .args([
            "-H",
            &env["LDAPS_URL"],
            "-x",
            "-D",
            &env["LDAP_BIND_DN"],
            "-w",
            &env["LDAP_PASSWORD"],
        ])
        .args(args)
        .env("LDAPTLS_CACERT", &env["LDAP_CA_FILE"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?}: {text}");
    text
}

#[test]
fn a_renamed_include_ou_is_followed_by_guid_with_a_state_file() {
    let Some(env) = dc() else { return };
    let base = env["LDAP_BASE_DN"].clone();
    let tag = format!(
        "{:08x}",
        std::process::id()
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos())
    );
    let ou = format!("OU=rename-{tag},{base}");
    let renamed = format!("OU=renamed-{tag},{base}");
    ldap_tool(
        &env,
        "ldapadd",
        &[],
        &format!(
            "dn: {ou}\nobjectClass: organizationalUnit\n\ndn: CN=Rita {tag},{ou}\nobjectClass: user\nsAMAccountName: rita{tag}\nuserPrincipalName: rita{tag}@corp.example.com\ngivenName: Rita\nsn: Renamed\nuserAccountControl: 512\n\n"
        ),
    );
    let cleanup = |dn: &str| {
        let _ = Command::new("ldapdelete")
            .args([
                "-H",
                &env["LDAPS_URL"],
                "-x",
                "-D",
                &env["LDAP_BIND_DN"],
                "-w",
                &env["LDAP_PASSWORD"],
                "-r",
                dn,
            ])
            .env("LDAPTLS_CACERT", &env["LDAP_CA_FILE"])
            .output();
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.yaml");
    std::fs::write(&p, policy(&env, &env["LDAP_CA_FILE"], &[&ou])).unwrap();
    let state = tmp.path().join("state.json");
    let plan = |with_state: bool| {
        let mut extra = vec!["--detailed-exitcode"];
        if with_state {
            extra.extend(["--state", state.to_str().unwrap()]);
        }
        plan_empty_tenant(&env, &p, &extra)
    };
    let (code, out) = plan(true);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(&format!("+ create user rita{tag}@corp.example.com")),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains(&format!("ou=rename-{tag}"))
    );
    ldap_tool(
        &env,
        "ldapmodrdn",
        &["-r", &ou, &format!("OU=renamed-{tag}")],
        "",
    );
    // Without the remembered GUID: the guard stops the run.
    let (code, out) = plan(false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("source-failure guard"), "{out}");
    // With it: the OU is followed to its new name, with a warning; the user stays in scope.
    let (code, out) = plan(true);
    cleanup(&renamed);
    cleanup(&ou);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("warning[scope-dn-renamed]"), "{out}");
    assert!(out.contains(&format!("OU=renamed-{tag}")), "{out}");
    assert!(
        out.contains(&format!("+ create user rita{tag}@corp.example.com")),
        "{out}"
    );
    assert!(
        !out.contains("disable") && !out.contains("- delete"),
        "{out}"
    );
}
