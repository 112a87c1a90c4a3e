//! Helpers for tests/e2e_samba.rs: a private OU subtree on the Samba test DC per test
//! ([`Lab`]), a private Graph emulator per test ([`Tenant`]), the policy template in
//! tests/data/e2e rendered for both ([`E2ePolicy`]), and the sync steps ad2entra's CLI
//! performs, driven through the library (read AD, read Entra, plan, apply) or the binary.

#![allow(dead_code)]

use crate::dc::{self, Dc};
use ad2entra::ad::ldap::{LdapConfig, LdapError, ReadRequest, read_full};
use ad2entra::apply::{ApplyOptions, ApplyReport};
use ad2entra::entra::graph::{AuthConfig, GraphClient, GraphConfig, ReadOptions, read_snapshot};
use ad2entra::model::{SourceSnapshot, TargetSnapshot};
use ad2entra::plan::Plan;
use ad2entra::policy::LoadedPolicy;
use graph_emulator::{Emulator, EmulatorConfig};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable the e2e policy's `passwordFrom` names.
pub const PASSWORD_ENV: &str = "AD2ENTRA_E2E_LDAP_PASSWORD";
/// The routable UPN suffix (a verified domain of the emulator's default tenant).
pub const DOMAIN: &str = "corp.example.com";

// ---------------------------------------------------------------- AD side

/// An AD user the test created.
#[derive(Clone, Debug)]
pub struct User {
    pub dn: String,
    pub cn: String,
    pub sam: String,
    pub upn: String,
}

/// One test's own subtree `OU=e2e-<tag>,<base DN>` with OUs Sales, Engineering (both
/// in scope), Groups (groups in scope) and Out (not in scope). Deleted on drop, so a
/// failing test cleans up too.
pub struct Lab {
    pub dc: Dc,
    /// Eight hex digits unique to this test run.
    pub tag: String,
    /// DN of the test's root OU.
    pub root: String,
    ldap: Ldap,
}

/// An administrative LDAPS connection, verified against the test CA.
pub async fn admin_connect(dc: &Dc) -> Ldap {
    let pem = std::fs::read(&dc.ca_file).expect("read the test CA");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&pem) {
        roots.add(c.expect("CA PEM")).expect("CA cert");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let settings = LdapConnSettings::new()
        .set_config(Arc::new(tls))
        .set_conn_timeout(Duration::from_secs(10));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &dc.ldaps_url)
        .await
        .unwrap_or_else(|e| panic!("admin connect to {}: {e}", dc.ldaps_url));
    ldap3::drive!(conn);
    ldap.simple_bind(&dc.bind_dn, &dc.password)
        .await
        .expect("admin bind")
        .success()
        .expect("admin bind result");
    ldap
}

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn one(s: &str) -> HashSet<Vec<u8>> {
    HashSet::from([bytes(s)])
}

impl Lab {
    pub async fn new(dc: &Dc) -> Lab {
        let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let root = dc.dn(&format!("OU=e2e-{tag}"));
        let ldap = admin_connect(dc).await;
        let mut lab = Lab {
            dc: dc.clone(),
            tag: tag.clone(),
            root: root.clone(),
            ldap,
        };
        lab.add_entry(
            &root,
            vec![
                ("objectClass", HashSet::from([bytes("organizationalUnit")])),
                ("ou", one(&format!("e2e-{tag}"))),
            ],
        )
        .await;
        for ou in ["Sales", "Engineering", "Groups", "Out"] {
            lab.add_ou(ou).await;
        }
        lab
    }

    /// `rel,<root>`.
    pub fn dn(&self, rel: &str) -> String {
        format!("{rel},{}", self.root)
    }

    async fn add_entry(&mut self, dn: &str, attrs: Vec<(&str, HashSet<Vec<u8>>)>) {
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> =
            attrs.into_iter().map(|(k, v)| (bytes(k), v)).collect();
        self.ldap
            .add(dn, attrs)
            .await
            .unwrap_or_else(|e| panic!("add {dn}: {e}"))
            .success()
            .unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }

    /// Adds `OU=name` under the root; returns its DN.
    pub async fn add_ou(&mut self, name: &str) -> String {
        let dn = self.dn(&format!("OU={name}"));
        self.add_entry(
            &dn,
            vec![
                ("objectClass", HashSet::from([bytes("organizationalUnit")])),
                ("ou", one(name)),
            ],
        )
        .await;
        dn
    }

    /// Adds an enabled user (userAccountControl 512) `CN=<given> <sn>` in `OU=<ou>` under
    /// the root. `key` (a few letters) makes sAMAccountName/UPN unique on the DC.
    pub async fn add_user(
        &mut self,
        ou: &str,
        key: &str,
        given: &str,
        sn: &str,
        department: &str,
    ) -> User {
        let cn = format!("{given} {sn}");
        let dn = self.dn(&format!("CN={cn},OU={ou}"));
        let sam = format!("e{}{key}", self.tag);
        assert!(sam.len() <= 20, "sAMAccountName {sam} too long");
        let upn = format!("{sam}@{DOMAIN}");
        self.add_entry(
            &dn,
            vec![
                (
                    "objectClass",
                    ["top", "person", "organizationalPerson", "user"]
                        .into_iter()
                        .map(bytes)
                        .collect(),
                ),
                ("sAMAccountName", one(&sam)),
                ("userPrincipalName", one(&upn)),
                ("givenName", one(given)),
                ("sn", one(sn)),
                ("displayName", one(&cn)),
                ("department", one(department)),
                ("userAccountControl", one("512")),
            ],
        )
        .await;
        User { dn, cn, sam, upn }
    }

    /// Adds a global security group `CN=<name>,OU=Groups` with direct `members` (DNs).
    pub async fn add_group(&mut self, name: &str, members: &[&str]) -> String {
        let dn = self.dn(&format!("CN={name},OU=Groups"));
        let mut attrs = vec![
            ("objectClass", HashSet::from([bytes("top"), bytes("group")])),
            ("sAMAccountName", one(&format!("g{}{name}", self.tag))),
            ("groupType", one("-2147483646")),
        ];
        if !members.is_empty() {
            attrs.push(("member", members.iter().map(|m| bytes(m)).collect()));
        }
        self.add_entry(&dn, attrs).await;
        dn
    }

    pub async fn modify(&mut self, dn: &str, mods: Vec<Mod<Vec<u8>>>) {
        self.ldap
            .modify(dn, mods)
            .await
            .unwrap_or_else(|e| panic!("modify {dn}: {e}"))
            .success()
            .unwrap_or_else(|e| panic!("modify {dn}: {e}"));
    }

    pub async fn replace(&mut self, dn: &str, attr: &str, value: &str) {
        self.modify(dn, vec![Mod::Replace(bytes(attr), one(value))])
            .await;
    }

    pub async fn add_member(&mut self, group: &str, member: &str) {
        self.modify(group, vec![Mod::Add(bytes("member"), one(member))])
            .await;
    }

    pub async fn remove_member(&mut self, group: &str, member: &str) {
        self.modify(group, vec![Mod::Delete(bytes("member"), one(member))])
            .await;
    }

    /// Moves `dn` (keeping its RDN) under `OU=<ou>` of the root; returns the new DN.
    pub async fn move_to(&mut self, dn: &str, ou: &str) -> String {
        let rdn = dn
            .split_once(',')
            .map(|(r, _)| r.to_string())
            .expect("an RDN");
        let parent = self.dn(&format!("OU={ou}"));
        self.ldap
            .modifydn(dn, &rdn, true, Some(&parent))
            .await
            .unwrap_or_else(|e| panic!("move {dn}: {e}"))
            .success()
            .unwrap_or_else(|e| panic!("move {dn}: {e}"));
        format!("{rdn},{parent}")
    }

    /// Renames `OU=<old>` under the root to `OU=<new>`; returns the new DN.
    pub async fn rename_ou(&mut self, old: &str, new: &str) -> String {
        let dn = self.dn(&format!("OU={old}"));
        self.ldap
            .modifydn(&dn, &format!("OU={new}"), true, None)
            .await
            .unwrap_or_else(|e| panic!("rename {dn}: {e}"))
            .success()
            .unwrap_or_else(|e| panic!("rename {dn}: {e}"));
        self.dn(&format!("OU={new}"))
    }

    pub async fn delete(&mut self, dn: &str) {
        self.ldap
            .delete(dn)
            .await
            .unwrap_or_else(|e| panic!("delete {dn}: {e}"))
            .success()
            .unwrap_or_else(|e| panic!("delete {dn}: {e}"));
    }

    /// The policy template rendered for this lab: LDAPS verified against the test CA,
    /// scope = this lab's Sales + Engineering (users) and Groups (groups).
    pub fn policy_text(&self, max_delete_percent: u32) -> String {
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/e2e/policy.yaml"),
        )
        .expect("tests/data/e2e/policy.yaml");
        template
            .replace("__LDAP_URL__", &self.dc.ldaps_url)
            .replace("__BIND_DN__", &yaml_quote(&self.dc.bind_dn))
            .replace("__BASE_DN__", &yaml_quote(&self.dc.base_dn))
            .replace(
                "__CA_FILE__",
                &yaml_quote(&self.dc.ca_file.display().to_string()),
            )
            .replace("__ROOT__", &self.root)
            .replace("__MAX_DELETE_PERCENT__", &max_delete_percent.to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Async cleanup from a synchronous drop: a fresh runtime on its own thread.
        let dc = self.dc.clone();
        let root = self.root.clone();
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async {
                let mut ldap = admin_connect(&dc).await;
                dc::delete_tree(&mut ldap, &root).await;
                let _ = ldap.unbind().await;
            });
        })
        .join();
        if done.is_err() {
            eprintln!("cleanup of {} failed; delete it by hand", self.root);
        }
    }
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A rendered policy in its own temporary directory, loaded.
pub struct E2ePolicy {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub loaded: LoadedPolicy,
}

impl E2ePolicy {
    pub fn write(text: &str) -> E2ePolicy {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, text).expect("write policy");
        let loaded = ad2entra::policy::load_path(&path).unwrap_or_else(|d| {
            panic!(
                "the e2e policy does not load:\n{}\n{text}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        E2ePolicy {
            _dir: dir,
            path,
            loaded,
        }
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }
}

/// The LDAP connection the policy describes (as the CLI builds it), with the password.
pub fn ldap_config(policy: &LoadedPolicy, password: &str) -> LdapConfig {
    let src = policy.policy.source.as_ref().expect("source section");
    let mut c = LdapConfig::new(&src.url, &src.bind_dn, password, &src.base_dn);
    c.ca_file = src.ca_file.as_ref().map(PathBuf::from);
    c.allow_insecure = src.allow_insecure;
    c.timeout = Duration::from_secs(20);
    c
}

/// A full LDAP read with the policy's attribute list.
pub async fn try_read_source(policy: &LoadedPolicy, dc: &Dc) -> Result<SourceSnapshot, LdapError> {
    let req = ReadRequest {
        attributes: policy.source_attributes(),
    };
    read_full(&ldap_config(policy, &dc.password), &req).await
}

pub async fn read_source(policy: &LoadedPolicy, dc: &Dc) -> SourceSnapshot {
    try_read_source(policy, dc)
        .await
        .unwrap_or_else(|e| panic!("LDAP read: {e}"))
}

// ---------------------------------------------------------------- fixtures

/// The standard fixture: Ann and Bob in Sales, Cai in Engineering (all in scope), Olga
/// in Out (not in scope), and the security group Team = {Ann, Cai}.
pub struct Staff {
    pub ann: User,
    pub bob: User,
    pub cai: User,
    pub olga: User,
    pub team: String,
}

pub async fn staff(lab: &mut Lab) -> Staff {
    let ann = lab.add_user("Sales", "ann", "Ann", "Archer", "Sales").await;
    let bob = lab.add_user("Sales", "bob", "Bob", "Baker", "Sales").await;
    let cai = lab
        .add_user("Engineering", "cai", "Cai", "Chen", "Engineering")
        .await;
    let olga = lab.add_user("Out", "olg", "Olga", "Outside", "None").await;
    let team = lab.add_group("Team", &[&ann.dn, &cai.dn]).await;
    Staff {
        ann,
        bob,
        cai,
        olga,
        team,
    }
}

/// The Entra user with this UPN in the emulator's state.
pub fn entra_user(tenant: &Tenant, upn: &str) -> Value {
    let state = tenant.emu.state();
    state["users"]
        .as_array()
        .expect("users in the emulator state")
        .iter()
        .find(|u| u["userPrincipalName"].as_str() == Some(upn))
        .cloned()
        .unwrap_or_else(|| panic!("{upn} not in Entra: {state:#}"))
}

/// The UPNs of the members of the Entra group with this display name.
pub fn entra_members(tenant: &Tenant, group: &str) -> Vec<String> {
    let state = tenant.emu.state();
    let users = state["users"].as_array().cloned().unwrap_or_default();
    let g = state["groups"]
        .as_array()
        .expect("groups in the emulator state")
        .iter()
        .find(|g| g["displayName"].as_str() == Some(group))
        .cloned()
        .unwrap_or_else(|| panic!("group {group} not in Entra: {state:#}"));
    let ids: Vec<String> = member_ids(&g);
    let mut upns: Vec<String> = ids
        .iter()
        .map(|id| {
            users
                .iter()
                .find(|u| u["id"].as_str() == Some(id))
                .and_then(|u| u["userPrincipalName"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("(non-user {id})"))
        })
        .collect();
    upns.sort();
    upns
}

pub fn member_ids(g: &Value) -> Vec<String> {
    g["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.as_str().or_else(|| m["id"].as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- Entra side

/// One test's own Graph emulator, initialised (`ad2entra init`: anchor extension
/// registered), with a client for it.
pub struct Tenant {
    pub emu: Emulator,
    pub config: EmulatorConfig,
    pub client: GraphClient,
    pub app_id: String,
}

impl Tenant {
    pub async fn start() -> Tenant {
        Tenant::start_with(EmulatorConfig::default()).await
    }

    /// A tenant with this configuration (seats, faults, throttling…), initialised.
    pub async fn start_with(config: EmulatorConfig) -> Tenant {
        let tenant = Tenant::start_uninitialised(config).await;
        let init = ad2entra::init::run_init(
            &tenant.client,
            &ad2entra::init::InitOptions {
                app_object_id: tenant.config.applications.first().map(|a| a.id.clone()),
                domains: vec![
                    DOMAIN.to_string(),
                    "corpexample.onmicrosoft.com".to_string(),
                ],
                ..ad2entra::init::InitOptions::new(tenant.app_id.clone())
            },
        )
        .await
        .expect("init");
        assert!(init.ok, "init: {init:?}");
        tenant
    }

    /// A tenant `ad2entra init` has not run against (the test runs it, e.g. through the
    /// binary). Its client authenticates with the configured client secret.
    pub async fn start_uninitialised(config: EmulatorConfig) -> Tenant {
        let emu = Emulator::start(config.clone()).await.expect("emulator");
        let auth = AuthConfig::for_emulator(&emu, &config);
        let mut gc = GraphConfig::new(emu.base_url(), auth);
        gc.retry_base = Duration::from_millis(20);
        gc.timeout = Duration::from_secs(20);
        let client = GraphClient::new(gc).expect("Graph client");
        let app_id = config.client_id.clone();
        Tenant {
            emu,
            config,
            client,
            app_id,
        }
    }

    /// Reads Entra as `ad2entra plan` does.
    pub async fn read(&self, policy: &LoadedPolicy) -> TargetSnapshot {
        let opts = ReadOptions::for_policy(policy, Some(self.app_id.clone()));
        let mut snap = read_snapshot(&self.client, &opts)
            .await
            .expect("Graph read");
        snap.extension_app_id = Some(self.app_id.clone());
        snap
    }

    /// Applies a plan as `ad2entra apply` does; every action must succeed.
    pub async fn apply(&self, policy: &LoadedPolicy, plan: &Plan) -> ApplyReport {
        let opts = ApplyOptions {
            expected_policy_hash: Some(policy.content_hash.clone()),
            extension_app_id: Some(self.app_id.clone()),
            replication_wait: Duration::from_secs(5),
            lookup_delay: Duration::from_millis(200),
            ..Default::default()
        };
        let report = ad2entra::apply::apply_plan(plan, &self.client, &opts)
            .await
            .expect("apply");
        assert!(
            report.is_success(),
            "apply failed: {}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        report
    }

    /// Committed writes the emulator has seen.
    pub fn writes(&self) -> u64 {
        self.emu.stats().writes
    }

    /// The environment `ad2entra` needs to reach this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_TENANT_ID".into(), self.config.tenant_id.clone()),
            ("AZURE_CLIENT_ID".into(), self.config.client_id.clone()),
            (
                "AZURE_CLIENT_SECRET".into(),
                self.config.client_secret.clone().unwrap_or_default(),
            ),
            ("AZURE_AUTHORITY_HOST".into(), self.emu.authority_url()),
            ("AD2ENTRA_GRAPH_URL".into(), self.emu.base_url()),
        ]
    }
}

// ---------------------------------------------------------------- sync steps

/// Reads both sides and plans, as `ad2entra plan` does.
pub async fn plan_now(policy: &E2ePolicy, dc: &Dc, tenant: &Tenant) -> Plan {
    let source = read_source(&policy.loaded, dc).await;
    let target = tenant.read(&policy.loaded).await;
    ad2entra::plan::plan(&policy.loaded, &source, &target, chrono::Utc::now()).expect("plan")
}

/// (op, object name) of every action, sorted.
pub fn ops(plan: &Plan) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = plan
        .actions
        .iter()
        .map(|a| (a.op.as_str().to_string(), a.object.name.clone()))
        .collect();
    v.sort();
    v
}

/// Expected (op, name) pairs, sorted.
pub fn expect_ops(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(o, n)| (o.to_string(), n.to_string()))
        .collect();
    v.sort();
    v
}

/// The human rendering, for assertion messages.
pub fn show(plan: &Plan) -> String {
    ad2entra::render::render(plan, ad2entra::render::Format::Human, false)
}

/// Plan → apply → plan: the second plan must be empty. Returns the first plan.
pub async fn converge(policy: &E2ePolicy, dc: &Dc, tenant: &Tenant) -> Plan {
    let first = plan_now(policy, dc, tenant).await;
    if !first.is_empty() {
        tenant.apply(&policy.loaded, &first).await;
    }
    let second = plan_now(policy, dc, tenant).await;
    assert!(
        second.is_empty(),
        "not converged; the plan after apply still has actions:\n{}",
        show(&second)
    );
    first
}

// ---------------------------------------------------------------- the binary

/// Output of one `ad2entra` run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the `ad2entra` binary with a clean Azure environment plus `env` and the LDAP
/// password in the variable the e2e policy names. Async, so an in-process emulator keeps
/// serving while the child runs.
pub async fn run_bin(dc: &Dc, args: &[&str], env: &[(String, String)]) -> Run {
    let mut with_password = vec![(PASSWORD_ENV.to_string(), dc.password.clone())];
    with_password.extend_from_slice(env);
    run_cli(args, &with_password).await
}

/// [`run_bin`] without a domain controller: a clean Azure environment plus `env`.
pub async fn run_cli(args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ad2entra"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    for k in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "AD2ENTRA_GRAPH_URL",
        "AD2ENTRA_GRAPH_SCOPE",
        "AD2ENTRA_EXTENSION_APP_ID",
        "AD2ENTRA_POLICY",
        "AD2ENTRA_LOG",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("ad2entra did not finish within 120 s")
        .expect("run ad2entra");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------- a cutting relay

/// A TCP relay to `upstream` that counts the bytes each connection receives from the
/// server and, when `limit` is set, cuts a connection after that many. Returns the
/// listening address and the per-connection byte counts (in accept order).
pub async fn relay(
    upstream: String,
    limit: Option<usize>,
) -> (std::net::SocketAddr, Arc<std::sync::Mutex<Vec<usize>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts: Arc<std::sync::Mutex<Vec<usize>>> = Arc::default();
    let counts2 = counts.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let slot = {
                let mut c = counts2.lock().unwrap();
                c.push(0);
                c.len() - 1
            };
            let counts = counts2.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let limit = limit.unwrap_or(usize::MAX);
                let mut passed = 0usize;
                let mut buf = vec![0u8; 16384];
                while passed < limit {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min(limit - passed),
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    passed += n;
                    counts.lock().unwrap()[slot] = passed;
                }
                up.abort();
                let _ = cw.shutdown().await;
            });
        }
    });
    (addr, counts)
}
