//! No secret in any output (issue 8): every command a user runs, at `AD2ENTRA_LOG=trace`
//! (which also turns on reqwest's, hyper's, rustls' and ldap3's traces), run as a process
//! with everything it shows captured — stdout, stderr, the files it writes (plans, apply
//! reports, state files), `/status`, `/metrics`, `/healthz`, `/readyz` — and searched for
//! every secret it was given or made:
//!
//! - the Graph client secret, the certificate's private key (each base64 line of it), the
//!   federated token, and any JWT (`eyJ…`: access tokens and client assertions);
//! - the LDAP bind password, the git token (also as HTTP Basic credentials) and the ssh
//!   key passphrase, the trigger token;
//! - the initial passwords apply generates for new users (the emulator records the ones
//!   it received; where it cannot, any string shaped like one).
//!
//! Each secret is also searched percent-encoded and JSON-escaped. The scenarios: the
//! demo; the e2e scenario against the Samba DC (init, validate, plan, apply, explain, then
//! `run` for two cycles with a trigger token and `sync-now`/`status`), once with a client
//! secret and once with a certificate; `run --policy-repo` over https with a token; and
//! the failure paths (wrong LDAP password, wrong client secret, a federated token the
//! tenant refuses), whose errors must name the account.
//!
//!     scripts/test-dc.sh
//!     AD2ENTRA_TEST_DC_ENV=$PWD/.test-dc/connection.env cargo nextest run --test no_secrets

#[path = "support/dc.rs"]
mod dc;
mod e2e_support;
mod git_support;
mod run_support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use dc::Dc;
use e2e_support::{E2ePolicy, Lab, PASSWORD_ENV, Run as CliRun, Tenant, run_bin, run_cli, staff};
use git_support::Remote;
use git_support::https::{HttpsGitServer, self_signed};
use graph_emulator::EmulatorConfig;
use run_support::{DemoCopy, Run};
use std::path::Path;
use std::time::Duration;

const CLIENT_SECRET: &str = "cs8Q~NoSecrets.Client_Secret+of/the=app";
const WRONG_CLIENT_SECRET: &str = "cs8Q~Wrong.Client_Secret+93b2";
const TRIGGER_TOKEN: &str = "trg_Trigger+Token/4f1c=SECRET";
const GIT_TOKEN: &str = "ghs_GitToken_9a7e_SECRET";
const SSH_PASSPHRASE: &str = "ssh-Passphrase_77c1_SECRET";
const WRONG_LDAP_PASSWORD: &str = "Wrong-Ldap+Pw/51d3!";
/// A federated token (a JWT from another identity provider) the tenant does not trust.
const FEDERATED_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImZlZCJ9.eyJpc3MiOiJodHRwczovL2ZlZGVyYXRlZC5leGFtcGxlIiwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50In0.ZmVkZXJhdGVkLXRva2VuLXNpZ25hdHVyZS1TRUNSRVQ";
/// A certificate and its RSA key, as AZURE_CLIENT_CERTIFICATE_PATH names.
const CERT_PEM: &str = include_str!("data/test-client-cert.pem");

const LONG: Duration = Duration::from_secs(90);

// ------------------------------------------------------------------ what is searched

/// Everything the runs showed, by where it was seen.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, place: impl Into<String>, text: impl Into<String>) {
        self.0.push((place.into(), text.into()));
    }

    /// A one-shot command's stdout and stderr.
    fn add_cli(&mut self, what: &str, run: &CliRun) {
        self.add(format!("{what}: stdout"), run.stdout.clone());
        self.add(format!("{what}: stderr"), run.stderr.clone());
    }

    /// A reconciler's logs and stdout, and what its endpoints answer now.
    async fn add_reconciler(&mut self, what: &str, run: &Run) {
        for path in ["/status", "/metrics", "/healthz", "/readyz"] {
            let (_, body) = run.get(path).await;
            self.add(format!("{what}: GET {path}"), body);
        }
        self.add(format!("{what}: stderr (logs)"), run.logs());
        self.add(format!("{what}: stdout"), run.stdout());
    }

    /// Every file under `dir` (plans, reports, state files, caches), read as text.
    fn add_files(&mut self, dir: &Path) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                } else {
                    let bytes = std::fs::read(&path).unwrap();
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.add(format!("file {}", path.display()), text);
                }
            }
        }
    }

    /// All text, for checks that the scenario did what it should.
    fn all(&self) -> String {
        self.0
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What must never be shown, by what it is.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: impl Into<String>, value: &str) {
        let what = what.into();
        assert!(value.len() >= 8, "{what} is too short to search for");
        self.0.push((what, value.to_string()));
    }

    /// The private key's base64 body, line by line (any line of it is a piece of key).
    fn add_private_key(&mut self, pem: &str) {
        let body = pem
            .split("-----BEGIN PRIVATE KEY-----")
            .nth(1)
            .and_then(|rest| rest.split("-----END PRIVATE KEY-----").next())
            .expect("a PRIVATE KEY block");
        for (i, line) in body
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= 16)
            .enumerate()
        {
            self.add(format!("private key line {}", i + 1), line);
        }
        self.add("a PEM private key", "PRIVATE KEY-----");
    }
}

/// `s` percent-encoded as a form body encodes it (alphanumerics and `*-._` kept), and
/// as a URL encodes it (alphanumerics and `-._~` kept).
fn percent_encodings(s: &str) -> [String; 2] {
    let enc = |keep: &[u8]| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || keep.contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    [enc(b"*-._"), enc(b"-._~")]
}

/// The forms a secret can take in an output: as is, percent-encoded, JSON-escaped.
fn forms(value: &str) -> Vec<String> {
    let json = serde_json::to_string(value).unwrap();
    let mut v = vec![value.to_string(), json[1..json.len() - 1].to_string()];
    v.extend(percent_encodings(value));
    v.sort();
    v.dedup();
    v
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Every JWT in `text` (`eyJ` + base64url, a dot, base64url): an access token, a client
/// assertion or a federated token.
fn jwts(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let run = |from: usize| b[from..].iter().take_while(|c| B64URL.contains(c)).count();
    let mut found: Vec<String> = Vec::new();
    let mut after = 0;
    for (i, _) in text.match_indices("eyJ") {
        let head = run(i);
        let dot = i + head;
        if i >= after && head >= 10 && b.get(dot) == Some(&b'.') && run(dot + 1) >= 10 {
            // A JWT's payload starts with eyJ too: the next one starts after this one.
            after = dot + 1 + run(dot + 1);
            found.push(text[i..after].to_string());
        }
    }
    found
}

/// The character classes of `ad2entra::apply::generate_password`.
const PW_CLASSES: [&[u8]; 4] = [
    b"abcdefghijkmnopqrstuvwxyz",
    b"ABCDEFGHJKLMNPQRSTUVWXYZ",
    b"23456789",
    b"!#%+-.:=?@^_~",
];

/// Strings in `text` shaped like a generated password: exactly 24 characters of its
/// alphabet between characters outside it, at least two of each class — except the
/// base64 of 16 bytes, which is an objectGUID (the anchor, `onPremisesImmutableId`),
/// and pieces of Graph's paging and delta tokens (`$skiptoken=…`, `$deltatoken=…`: random
/// URL-safe base64 that sometimes splits into a password-shaped piece; they are Graph's
/// cursors, kept in the state file on purpose).
fn password_shaped(text: &str) -> Vec<String> {
    let is_guid = |w: &str| STANDARD.decode(w).is_ok_and(|b| b.len() == 16);
    let in_alphabet = |c: char| c.is_ascii() && PW_CLASSES.iter().any(|k| k.contains(&(c as u8)));
    let mut scanned = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["token=", "token%3D", "token%3d"]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
        .min()
    {
        let (i, len) = at;
        scanned.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let token_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        rest = &rest[token_end..];
    }
    scanned.push_str(rest);
    scanned
        .split(|c: char| !in_alphabet(c))
        .filter(|w| w.len() == 24 && !is_guid(w))
        .filter(|w| {
            PW_CLASSES
                .iter()
                .all(|k| w.bytes().filter(|b| k.contains(b)).count() >= 2)
        })
        .map(str::to_string)
        .collect()
}

/// Every place a secret was seen, described (the secret itself masked).
fn findings(outputs: &Outputs, secrets: &Secrets) -> Vec<String> {
    let mut found = Vec::new();
    for (place, text) in &outputs.0 {
        for (what, value) in &secrets.0 {
            for form in forms(value) {
                if let Some(at) = text.find(&form) {
                    let start = text[..at]
                        .char_indices()
                        .rev()
                        .nth(60)
                        .map_or(0, |(i, _)| i);
                    let end = (at + form.len() + 60).min(text.len());
                    let end = (end..=text.len())
                        .find(|e| text.is_char_boundary(*e))
                        .unwrap_or(text.len());
                    let context = text[start..end].replace(&form, "<SECRET>");
                    found.push(format!("{what} in {place}: …{context}…"));
                }
            }
        }
        for jwt in jwts(text) {
            found.push(format!("a JWT in {place}: {}…", &jwt[..jwt.len().min(24)]));
        }
        for pw in password_shaped(text) {
            found.push(format!(
                "a string shaped like a generated password in {place}: {}…",
                &pw[..4]
            ));
        }
    }
    found
}

/// Fails listing every place a secret was seen.
fn assert_nothing_secret(outputs: &Outputs, secrets: &Secrets) {
    let found = findings(outputs, secrets);
    assert!(
        found.is_empty(),
        "secrets shown ({}):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The checks would pass on empty output: the runs must have logged at trace level,
/// dependencies included.
fn assert_traced(outputs: &Outputs) {
    let all = outputs.all();
    for needle in ["TRACE", "hyper_util", "reqwest"] {
        assert!(
            all.contains(needle),
            "no {needle:?} in the output: was AD2ENTRA_LOG=trace in force?"
        );
    }
}

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

// ------------------------------------------------------------------ the checks themselves

#[test]
fn the_search_finds_each_kind_of_secret() {
    let mut secrets = Secrets::default();
    secrets.add("the client secret", CLIENT_SECRET);
    secrets.add_private_key(CERT_PEM);
    let key_line = secrets.0[1].1.clone();
    let passwords: Vec<String> = (0..50)
        .map(|_| ad2entra::apply::generate_password())
        .collect();
    let form = format!(
        "client_id=c&client_secret={}",
        percent_encodings(CLIENT_SECRET)[0]
    );
    for (text, what) in [
        (form.as_str(), "client secret"),
        (key_line.as_str(), "private key"),
        (&format!("{{\"at\":\"{FEDERATED_TOKEN}\"}}"), "JWT"),
        (
            &format!(
                "{{\"passwordProfile\":{{\"password\":{}}}}}",
                serde_json::to_string(&passwords[0]).unwrap()
            ),
            "generated password",
        ),
    ] {
        let mut o = Outputs::default();
        o.add("sample", text);
        assert_eq!(findings(&o, &secrets).len(), 1, "the {what} in {text:?}");
    }
    for p in &passwords {
        assert_eq!(
            password_shaped(&format!("password: {p}\n")),
            vec![p.clone()]
        );
    }
    // Graph's delta and paging tokens are random URL-safe base64 that can split into a
    // password-shaped piece: inside a token it is Graph's cursor, not a password.
    let piece = "ab-_cdEFgh23JKmn45PQ-_rs";
    assert_eq!(
        password_shaped(&format!("x {piece} y")),
        vec![piece.to_string()]
    );
    for link in [
        format!("\"users\":\"https://g/v1.0/users/delta?$deltatoken=lI{piece}O1\""),
        format!("GET /v1.0/groups/delta?$skiptoken={piece}&$top=999"),
    ] {
        assert!(password_shaped(&link).is_empty(), "{link}");
    }
    // Ordinary output is not mistaken for a secret (an anchor is 24 characters too).
    let mut o = Outputs::default();
    o.add(
        "ordinary",
        "2026-01-01T10:00:00.123456Z DEBUG ad2entra: GET /users?$select=id,onPremisesImmutableId&$top=999 KtN+mrQK/Rk2qSC19JzM09g== x-access-token \"anchor\": \"z4Xk+Hq7RwaV8PMe2dYbnA==\"",
    );
    assert_nothing_secret(&o, &secrets);
}

// ------------------------------------------------------------------ Debug output

/// What a `{:?}` in a log line or a panic message would show of every value that holds
/// a secret: the configurations, the clients, a token request, a create request.
#[test]
fn debug_output_shows_no_secret() {
    use ad2entra::entra::graph::{AuthConfig, BatchItem, GraphClient, GraphConfig, GraphRequest};
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, CERT_PEM).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, FEDERATED_TOKEN).unwrap();
    let mut shown = Vec::new();
    let mut secrets = Secrets::default();
    for credential in [
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        ("AZURE_CLIENT_CERTIFICATE_PATH", cert.display().to_string()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        ),
    ] {
        let lookup = |k: &str| match k {
            "AZURE_TENANT_ID" => Some("t".to_string()),
            "AZURE_CLIENT_ID" => Some("c".to_string()),
            _ if k == credential.0 => Some(credential.1.clone()),
            _ => None,
        };
        let scope = "https://graph.microsoft.com/.default".to_string();
        let auth = AuthConfig::from_lookup(scope.clone(), lookup).unwrap();
        let form = auth.token_form().unwrap();
        for (name, value) in &form {
            if name.starts_with("client_") && *name != "client_id" {
                secrets.add(format!("the token request's {name}"), value.expose());
            }
        }
        shown.push(format!("{auth:?} {auth:#?} {form:?}"));
        let auth = AuthConfig::from_lookup(scope, lookup).unwrap();
        let client = GraphClient::new(GraphConfig::new("http://127.0.0.1:9/v1.0", auth)).unwrap();
        shown.push(format!("{client:?} {client:#?}"));
    }
    let ldap =
        ad2entra::ad::ldap::LdapConfig::new("ldaps://dc", "CN=svc", WRONG_LDAP_PASSWORD, "DC=x");
    let run = ad2entra::reconciler::RunConfig {
        trigger_token: Some(ad2entra::secrets::Secret::new(TRIGGER_TOKEN)),
        ..Default::default()
    };
    let git = ad2entra::gitops::GitAuth::from_lookup(|k| match k {
        "AD2ENTRA_GIT_TOKEN" => Some(GIT_TOKEN.to_string()),
        "AD2ENTRA_GIT_SSH_KEY_PASSPHRASE" => Some(SSH_PASSPHRASE.to_string()),
        _ => None,
    });
    shown.push(format!("{ldap:?} {run:?} {run:#?} {git:?}"));
    let body = ad2entra::apply::create_body(
        ad2entra::plan::ObjectType::User,
        &serde_json::json!({"displayName": "Ann"}),
    );
    let password = body["passwordProfile"]["password"].as_str().unwrap();
    secrets.add("a new user's initial password", password);
    let create = GraphRequest::write(reqwest::Method::POST, "/users", Some(body.clone()));
    let batched = BatchItem::write("1", reqwest::Method::POST, "/users", Some(body.clone()));
    shown.push(format!("{create:?} {batched:#?}"));

    let mut outputs = Outputs::default();
    outputs.add("Debug output", shown.join("\n"));
    for (what, value) in [
        ("the client secret", CLIENT_SECRET),
        ("the federated token", FEDERATED_TOKEN),
        ("the LDAP password", WRONG_LDAP_PASSWORD),
        ("the trigger token", TRIGGER_TOKEN),
        ("the git token", GIT_TOKEN),
        ("the ssh key passphrase", SSH_PASSPHRASE),
    ] {
        secrets.add(what, value);
    }
    secrets.add_private_key(CERT_PEM);
    assert_nothing_secret(&outputs, &secrets);
    assert!(outputs.all().contains("[redacted]"));
}

// ------------------------------------------------------------------ the demo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_no_secret_at_trace_level() {
    let mut outputs = Outputs::default();
    for json in [false, true] {
        let mut args = vec!["demo"];
        if json {
            args.insert(0, "--log-json");
        }
        let r = run_cli(&args, &[pair("AD2ENTRA_LOG", "trace")]).await;
        assert_eq!(r.code, Some(0), "{}", r.text());
        assert!(r.stdout.contains("Converged"), "{}", r.text());
        outputs.add_cli(&format!("ad2entra {}", args.join(" ")), &r);
    }
    assert_traced(&outputs);
    let mut secrets = Secrets::default();
    let demo_secret = EmulatorConfig::default().client_secret.expect("a secret");
    secrets.add("the demo tenant's client secret", &demo_secret);
    assert_nothing_secret(&outputs, &secrets);
}

// ------------------------------------------------------------------ the e2e scenario

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Credential {
    ClientSecret,
    Certificate,
}

/// A tenant that accepts only `credential`, recording the passwords it receives, and the
/// environment the binary needs for it (the certificate written into `inputs`).
async fn tenant_for(credential: Credential, inputs: &Path) -> (Tenant, Vec<(String, String)>) {
    let mut config = EmulatorConfig {
        client_secret: Some(CLIENT_SECRET.into()),
        ..EmulatorConfig::default()
    };
    if credential == Credential::Certificate {
        config.client_secret = None;
        config.client_certificate_pem = Some(CERT_PEM.into());
    }
    let tenant = Tenant::start_uninitialised(config).await;
    tenant.emu.record_passwords();
    let mut env: Vec<(String, String)> = tenant
        .env()
        .into_iter()
        .filter(|(k, _)| k != "AZURE_CLIENT_SECRET")
        .collect();
    match credential {
        Credential::ClientSecret => env.push(pair("AZURE_CLIENT_SECRET", CLIENT_SECRET)),
        Credential::Certificate => {
            let path = inputs.join("client-cert.pem");
            std::fs::write(&path, CERT_PEM).unwrap();
            env.push(pair(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                path.display().to_string(),
            ));
        }
    }
    env.push(pair("AD2ENTRA_LOG", "trace"));
    env.push(pair("AD2ENTRA_TRIGGER_TOKEN", TRIGGER_TOKEN));
    (tenant, env)
}

/// The secrets every scenario holds, plus the passwords the tenant received (at least
/// `min_passwords` of them: fewer means the scenario created fewer users than it should).
fn secrets_of(tenant: &Tenant, min_passwords: usize) -> Secrets {
    let mut s = Secrets::default();
    s.add("the client secret", CLIENT_SECRET);
    s.add_private_key(CERT_PEM);
    s.add("the trigger token", TRIGGER_TOKEN);
    let passwords = tenant.emu.received_passwords();
    assert!(
        passwords.len() >= min_passwords,
        "the tenant received {} initial passwords, expected at least {min_passwords}",
        passwords.len()
    );
    for (i, p) in passwords.iter().enumerate() {
        s.add(format!("the initial password of new user #{}", i + 1), p);
    }
    s
}

/// One-shot commands and the reconciler against the lab and a tenant that takes
/// `credential`; every output searched.
async fn e2e_scenario(dc: &Dc, credential: Credential) {
    let mut lab = Lab::new(dc).await;
    let staff = staff(&mut lab).await;
    let inputs = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (tenant, env) = tenant_for(credential, inputs.path()).await;
    let policy = E2ePolicy::write(&lab.policy_text(50));
    let p = policy.path_str();
    let file = |name: &str| out.path().join(name).display().to_string();
    let (plan, report, state) = (file("plan.json"), file("report.json"), file("state.json"));
    let mut outputs = Outputs::default();

    let steps: Vec<Vec<&str>> = vec![
        vec!["init", "--policy", p],
        vec!["validate", "--policy", p, "--online"],
        vec!["plan", "--policy", p, "--state", &state, "--out", &plan],
        vec!["plan", "--policy", p, "--format", "json"],
        vec!["plan", "--policy", p, "--format", "markdown"],
        vec![
            "apply",
            &plan,
            "--policy",
            p,
            "--state",
            &state,
            "--report",
            &report,
            "--auto-approve",
        ],
        vec!["explain", "--policy", p, &staff.ann.upn],
    ];
    for args in steps {
        let r = run_bin(dc, &args, &env).await;
        assert_eq!(
            r.code,
            Some(0),
            "ad2entra {}:\n{}",
            args.join(" "),
            r.text()
        );
        outputs.add_cli(&format!("ad2entra {}", args.join(" ")), &r);
    }
    assert!(
        tenant.emu.received_passwords().len() >= 3,
        "apply created the staff"
    );

    // The reconciler: a first cycle, a new AD user, a second cycle asked for with the
    // trigger token, the status through the CLI.
    let mut run_env = env.clone();
    run_env.push(pair(PASSWORD_ENV, dc.password.clone()));
    let run_state = file("run-state.json");
    let args: Vec<String> = ["--policy", p, "--state", &run_state, "--debounce", "1s"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut run = Run::start(&args, &run_env);
    run.wait_cycles(1, LONG).await;
    let dana = lab.add_user("Sales", "dan", "Dana", "Diaz", "Sales").await;
    let remote = ["--url", run.url.as_str()];
    let sync = run_bin(dc, &[&["sync-now"][..], &remote].concat(), &env).await;
    assert_eq!(sync.code, Some(0), "{}", sync.text());
    outputs.add_cli("ad2entra sync-now", &sync);
    run.wait_for("Dana's create", LONG, |_| {
        tenant.emu.state()["users"].as_array().is_some_and(|us| {
            us.iter()
                .any(|u| u["userPrincipalName"] == dana.upn.as_str())
        })
    })
    .await;
    run.wait_cycles(2, LONG).await;
    for args in [vec!["status"], vec!["status", "--json"]] {
        let r = run_bin(dc, &[&args[..], &remote].concat(), &env).await;
        assert_eq!(r.code, Some(0), "{}", r.text());
        outputs.add_cli(&format!("ad2entra {}", args.join(" ")), &r);
    }
    outputs.add_reconciler("ad2entra run", &run).await;
    run.signal("TERM");
    run.wait_exit(LONG);
    outputs.add("ad2entra run: logs to the end", run.logs());
    outputs.add_files(out.path());

    assert_traced(&outputs);
    let all = outputs.all();
    for wanted in ["LDAP bind succeeded", &dana.upn] {
        assert!(all.contains(wanted), "{wanted:?} is in no output");
    }
    let mut secrets = secrets_of(&tenant, 4);
    secrets.add("the LDAP password", &dc.password);
    assert_nothing_secret(&outputs, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_scenario_with_a_client_secret_shows_no_secret() {
    let Some(dc) = dc::dc() else { return };
    e2e_scenario(&dc, Credential::ClientSecret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_scenario_with_a_certificate_shows_no_secret() {
    let Some(dc) = dc::dc() else { return };
    e2e_scenario(&dc, Credential::Certificate).await;
}

// ------------------------------------------------------------------ the policy from git

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_the_policy_over_https_with_a_token_shows_no_secret() {
    let remote = Remote::new();
    let demo = DemoCopy::new();
    let policy = std::fs::read_to_string(demo.policy_file()).unwrap();
    remote.commit(&[("policy/policy.yaml", &policy)]);
    remote.push();
    self_signed(&remote.root);
    let server = HttpsGitServer::start(&remote.root, &remote.root, "x-access-token", GIT_TOKEN);
    let url = format!("https://127.0.0.1:{}/policy.git", server.port);
    let inputs = tempfile::tempdir().unwrap();
    let (tenant, mut env) = tenant_for(Credential::ClientSecret, inputs.path()).await;
    let cert = remote.root.join("cert.pem").display().to_string();
    env.extend([
        pair("AD2ENTRA_GIT_TOKEN", GIT_TOKEN),
        pair("AD2ENTRA_GIT_SSH_KEY_PASSPHRASE", SSH_PASSPHRASE),
        pair("SSL_CERT_FILE", cert),
    ]);
    let out = tempfile::tempdir().unwrap();
    let file = |name: &str| out.path().join(name).display().to_string();
    let ldif = demo.ldif().display().to_string();
    let mut outputs = Outputs::default();

    // The binary's own init (the tenant starts without one), then a one-shot plan.
    let init = run_cli(
        &[
            "init",
            "--policy",
            &demo.policy_file().display().to_string(),
        ],
        &env,
    )
    .await;
    assert_eq!(init.code, Some(0), "{}", init.text());
    outputs.add_cli("ad2entra init", &init);
    let repo_args = [
        "--policy-repo",
        url.as_str(),
        "--policy-path",
        "policy",
        "--source-ldif",
        ldif.as_str(),
    ];
    let cache = file("plan-git-cache");
    let plan_args = [&["plan"][..], &repo_args, &["--git-cache", &cache]].concat();
    let plan = run_cli(&plan_args, &env).await;
    assert_eq!(plan.code, Some(0), "{}", plan.text());
    outputs.add_cli("ad2entra plan --policy-repo", &plan);

    let mut args: Vec<String> = repo_args.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--git-poll",
            "1s",
            "--git-cache",
            &file("git-cache"),
            "--state",
            &file("state.json"),
        ]
        .map(String::from),
    );
    let mut run = Run::start(&args, &env);
    let s = run.wait_cycles(1, LONG).await;
    assert_eq!(run_support::last_outcome(&s), "applied", "{s:#}");
    let remote_args = ["sync-now", "--url", run.url.as_str()];
    let sync = run_cli(&remote_args, &env).await;
    assert_eq!(sync.code, Some(0), "{}", sync.text());
    outputs.add_cli("ad2entra sync-now", &sync);
    run.wait_cycles(2, LONG).await;
    outputs
        .add_reconciler("ad2entra run --policy-repo", &run)
        .await;
    run.signal("TERM");
    run.wait_exit(LONG);
    outputs.add("ad2entra run --policy-repo: logs to the end", run.logs());
    outputs.add_files(out.path());

    let seen = server.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s == "auth ok"),
        "the token was never sent: {seen:?}"
    );
    assert!(!seen.iter().any(|s| s == "auth wrong"), "{seen:?}");
    assert_traced(&outputs);
    let mut secrets = secrets_of(&tenant, 10);
    secrets.add("the git token", GIT_TOKEN);
    let basic = STANDARD.encode(format!("x-access-token:{GIT_TOKEN}"));
    secrets.add("the git token as HTTP Basic credentials", &basic);
    secrets.add("the ssh key passphrase", SSH_PASSPHRASE);
    assert_nothing_secret(&outputs, &secrets);
}

// ------------------------------------------------------------------ failures

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_graph_credential_names_the_app_never_the_credential() {
    let inputs = tempfile::tempdir().unwrap();
    let (tenant, env) = tenant_for(Credential::ClientSecret, inputs.path()).await;
    let demo = DemoCopy::new();
    let policy = demo.policy_file().display().to_string();
    let ldif = demo.ldif().display().to_string();
    let token_file = inputs.path().join("federated-token");
    std::fs::write(&token_file, format!("{FEDERATED_TOKEN}\n")).unwrap();
    let without_secret = || {
        env.iter()
            .filter(|(k, _)| k != "AZURE_CLIENT_SECRET")
            .cloned()
    };
    let wrong_secret: Vec<_> = without_secret()
        .chain([pair("AZURE_CLIENT_SECRET", WRONG_CLIENT_SECRET)])
        .collect();
    let federated: Vec<_> = without_secret()
        .chain([pair(
            "AZURE_FEDERATED_TOKEN_FILE",
            token_file.display().to_string(),
        )])
        .collect();
    let mut outputs = Outputs::default();
    for (what, env) in [
        ("a wrong client secret", wrong_secret),
        ("an untrusted federated token", federated),
    ] {
        for args in [
            vec!["plan", "--policy", &policy, "--source-ldif", &ldif],
            vec!["init", "--policy", &policy],
        ] {
            let r = run_cli(&args, &env).await;
            assert_eq!(r.code, Some(1), "{what}: {}", r.text());
            for account in [&tenant.config.client_id, &tenant.config.tenant_id] {
                assert!(
                    r.stderr.contains(account.as_str()),
                    "{what}: the error does not name {account}:\n{}",
                    r.text()
                );
            }
            outputs.add_cli(&format!("{what}: ad2entra {}", args.join(" ")), &r);
        }
    }
    // The reconciler with the wrong secret: its status and metrics say why, not what.
    let wrong: Vec<_> = without_secret()
        .chain([pair("AZURE_CLIENT_SECRET", WRONG_CLIENT_SECRET)])
        .collect();
    let args: Vec<String> = demo.args(&[]);
    let run = Run::start(&args, &wrong);
    let s = run
        .wait_for("the failed cycle", LONG, |s| {
            !run_support::runs(s).is_empty()
        })
        .await;
    assert!(
        s.to_string().contains(&tenant.config.client_id),
        "the status does not name the app: {s:#}"
    );
    outputs
        .add_reconciler("ad2entra run with a wrong client secret", &run)
        .await;

    assert_traced(&outputs);
    let mut secrets = Secrets::default();
    secrets.add("the client secret", CLIENT_SECRET);
    secrets.add("the wrong client secret", WRONG_CLIENT_SECRET);
    secrets.add("the federated token", FEDERATED_TOKEN);
    secrets.add(
        "the federated token's signature",
        FEDERATED_TOKEN.rsplit('.').next().unwrap(),
    );
    assert_nothing_secret(&outputs, &secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_ldap_password_names_the_account_never_the_password() {
    let Some(dc) = dc::dc() else { return };
    let lab = Lab::new(&dc).await;
    let inputs = tempfile::tempdir().unwrap();
    let (tenant, mut env) = tenant_for(Credential::ClientSecret, inputs.path()).await;
    env.push(pair(PASSWORD_ENV, WRONG_LDAP_PASSWORD));
    let policy = E2ePolicy::write(&lab.policy_text(50));
    let p = policy.path_str();
    let mut outputs = Outputs::default();
    let init = run_bin(&dc, &["init", "--policy", p], &env).await;
    assert_eq!(init.code, Some(0), "{}", init.text());
    outputs.add_cli("ad2entra init", &init);
    for args in [
        vec!["plan", "--policy", p],
        vec!["validate", "--policy", p, "--online"],
    ] {
        let r = run_bin(&dc, &args, &env).await;
        assert_eq!(r.code, Some(1), "{}", r.text());
        assert!(
            r.stderr.contains(&dc.bind_dn),
            "the error does not name the account {}:\n{}",
            dc.bind_dn,
            r.text()
        );
        outputs.add_cli(&format!("ad2entra {}", args.join(" ")), &r);
    }
    let state = inputs.path().join("state.json").display().to_string();
    let run = Run::start(
        &["--policy".into(), p.into(), "--state".into(), state],
        &env,
    );
    let s = run
        .wait_for("the failed cycle", LONG, |s| {
            !run_support::runs(s).is_empty()
        })
        .await;
    assert!(
        s.to_string().contains(&dc.bind_dn),
        "the status does not name the account: {s:#}"
    );
    outputs
        .add_reconciler("ad2entra run with a wrong LDAP password", &run)
        .await;

    assert_traced(&outputs);
    let mut secrets = secrets_of(&tenant, 0);
    secrets.add("the wrong LDAP password", WRONG_LDAP_PASSWORD);
    secrets.add("the LDAP password", &dc.password);
    assert_nothing_secret(&outputs, &secrets);
}
