//! The shipped deployment files (examples/kubernetes/, examples/systemd/, Dockerfile)
//! parse, have the properties a reconciler needs (one replica replaced with Recreate,
//! probes, non-root, read-only root filesystem, state on a volume, hardened unit), and
//! name only flags that the `ad2entra` binary has: each `--flag` is checked against the
//! `--help` of the subcommand it is given to.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const K8S: &str = "examples/kubernetes";
const UNIT: &str = "examples/systemd/ad2entra.service";
const SUBCOMMANDS: &[&str] = &[
    "validate", "plan", "apply", "run", "explain", "test", "schema", "init", "demo", "sync-now",
    "status",
];

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

/// Every YAML document under examples/kubernetes/, with its file.
fn manifests() -> Vec<(PathBuf, Value)> {
    let mut docs = Vec::new();
    for f in files(K8S, "yaml") {
        let text = std::fs::read_to_string(&f).unwrap();
        let parsed: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        docs.extend(parsed.into_iter().map(|d| (f.clone(), d)));
    }
    docs
}

fn of_kind(kind: &str) -> Value {
    let found: Vec<Value> = manifests()
        .into_iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found.into_iter().next().unwrap()
}

fn container() -> Value {
    let d = of_kind("Deployment");
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(containers.len(), 1);
    containers[0].clone()
}

fn container_args() -> Vec<String> {
    container()["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The value following `flag` in an argument list.
fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn seconds(duration: &str) -> u64 {
    ad2entra::policy::load::parse_duration(duration)
        .unwrap_or_else(|| panic!("{duration} is not a duration"))
}

#[test]
fn every_manifest_parses_and_is_a_kubernetes_object() {
    let docs = manifests();
    assert!(docs.len() >= 6, "{}", docs.len());
    for (file, d) in &docs {
        assert!(
            d["apiVersion"].is_string(),
            "{}: no apiVersion",
            file.display()
        );
        assert!(d["kind"].is_string(), "{}: no kind", file.display());
    }
    let kinds: BTreeSet<&str> = docs
        .iter()
        .filter_map(|(_, d)| d["kind"].as_str())
        .collect();
    for k in [
        "Deployment",
        "Secret",
        "PersistentVolumeClaim",
        "Service",
        "ServiceAccount",
        "Kustomization",
    ] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }
    // kustomize lists every other file
    let listed: BTreeSet<String> = of_kind("Kustomization")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let present: BTreeSet<String> = files(K8S, "yaml")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}

#[test]
fn the_deployment_is_one_recreated_non_root_read_only_replica_with_probes_metrics_and_state() {
    let d = of_kind("Deployment");
    assert_eq!(
        d["spec"]["replicas"], 1,
        "two reconcilers must never overlap"
    );
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let pod = &d["spec"]["template"];
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/port"], "8080");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);

    let c = container();
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["ports"][0]["containerPort"], 8080);

    let args = container_args();
    assert_eq!(args.iter().find(|a| !a.starts_with("--")).unwrap(), "run");
    // not loopback inside a pod: the probes and Prometheus must reach it
    assert_eq!(value_of(&args, "--listen"), Some("0.0.0.0:8080"));
    assert!(args.iter().any(|a| a == "--log-json"));
    let grace = seconds(value_of(&args, "--shutdown-grace").unwrap());
    let termination = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    assert!(termination > grace, "{termination} <= {grace}");

    // the state on the PersistentVolumeClaim, the git cache on an emptyDir
    let mounts: BTreeMap<String, String> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap().to_string(),
                m["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let volume = |mount: &str| -> Value {
        let name = &mounts[mount];
        pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no volume {name}"))
            .clone()
    };
    let state = value_of(&args, "--state").unwrap();
    assert!(state.starts_with("/var/lib/ad2entra/"), "{state}");
    let claim = volume("/var/lib/ad2entra")["persistentVolumeClaim"]["claimName"].clone();
    assert_eq!(claim, of_kind("PersistentVolumeClaim")["metadata"]["name"]);
    let cache = value_of(&args, "--git-cache").unwrap();
    assert!(cache.starts_with("/var/cache/ad2entra/"), "{cache}");
    assert!(volume("/var/cache/ad2entra")["emptyDir"].is_object());
    assert!(volume("/tmp")["emptyDir"].is_object(), "writable /tmp");

    let svc = of_kind("Service");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8080);
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_secret_holds_every_credential_and_the_binary_reads_each_name() {
    let secret = of_kind("Secret");
    let keys: BTreeSet<&str> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AD2ENTRA_LDAP_PASSWORD",
        "AD2ENTRA_GIT_TOKEN",
        "AD2ENTRA_TRIGGER_TOKEN",
    ];
    assert_eq!(keys, expected.into_iter().collect());
    assert_eq!(
        container()["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    // every name is one the code reads (the LDAP password: the shipped policy names it)
    let mut code = String::new();
    for dir in ["src", "policies"] {
        collect_text(Path::new(dir), &mut code);
    }
    let deployment = std::fs::read_to_string(format!("{K8S}/deployment.yaml")).unwrap();
    assert!(deployment.contains("AZURE_FEDERATED_TOKEN_FILE"));
    for name in expected.iter().chain(&["AZURE_FEDERATED_TOKEN_FILE"]) {
        assert!(code.contains(name), "nothing in src/ reads {name}");
    }
}

fn collect_text(dir: &Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_text(&p, out);
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
}

/// `Key=value` settings of a unit file, continuation lines joined.
fn unit_settings() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(UNIT).unwrap().replace("\\\n", " ");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
    }
    out
}

#[test]
fn the_systemd_unit_is_hardened_and_stops_after_the_shutdown_grace() {
    let s = unit_settings();
    let one = |k: &str| -> &str {
        let v = s.get(k).unwrap_or_else(|| panic!("{UNIT}: no {k}="));
        assert_eq!(v.len(), 1, "{k} set twice");
        &v[0]
    };
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("StateDirectory", "ad2entra"),
        ("CacheDirectory", "ad2entra"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("EnvironmentFile", "/etc/ad2entra/env"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(one(k), v, "{k}");
    }
    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(exec[0].ends_with("/ad2entra"), "{exec:?}");
    // the state and cache live in the directories systemd makes for the dynamic user
    assert!(
        value_of(&exec, "--state")
            .unwrap()
            .starts_with("/var/lib/ad2entra/")
    );
    assert!(
        value_of(&exec, "--git-cache")
            .unwrap()
            .starts_with("/var/cache/ad2entra/")
    );
    let grace = seconds(value_of(&exec, "--shutdown-grace").unwrap());
    assert!(seconds(one("TimeoutStopSec")) > grace);
}

#[test]
fn the_dockerfile_builds_with_rust_and_runs_distroless_as_non_root() {
    let text = std::fs::read_to_string("Dockerfile").unwrap();
    let from: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert_eq!(from.len(), 2, "multi-stage: {from:?}");
    assert!(from[0].starts_with("rust:1.95"), "{from:?}");
    assert!(
        from[1].starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{from:?}"
    );
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{user}"
    );
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/ad2entra\"]"));
    assert!(text.contains("CMD [\"run\"]"));
    // the settings given by environment are ones `run` reads
    let out = Command::new(env!("CARGO_BIN_EXE_ad2entra"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == '\\')
        .filter_map(|t| t.split_once('=').map(|(name, _)| name))
        .filter(|n| n.starts_with("AD2ENTRA_"))
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        assert!(
            help.contains(&format!("[env: {name}=")),
            "`run` reads no {name}"
        );
    }
}

/// Each `ad2entra SUBCOMMAND --flag ...` the shipped files give, as (where, subcommand,
/// flags): the Deployment's args, the commented alternatives among them, the unit's
/// ExecStart, the Dockerfile's CMD, and every command shown in comments and READMEs.
fn invocations() -> Vec<(String, String, Vec<String>)> {
    let mut lines: Vec<(String, String)> = Vec::new();
    lines.push((
        "deployment args".into(),
        format!("ad2entra {}", container_args().join(" ")),
    ));
    let deployment = std::fs::read_to_string(format!("{K8S}/deployment.yaml")).unwrap();
    let commented: Vec<&str> = deployment
        .lines()
        .filter_map(|l| l.trim().strip_prefix("# - --"))
        .collect();
    assert!(
        !commented.is_empty(),
        "the signed-commit alternative is shown"
    );
    for flag in commented {
        lines.push((
            "deployment comment".into(),
            format!("ad2entra run --{flag}"),
        ));
    }
    let mut texts: Vec<PathBuf> = files(K8S, "yaml");
    texts.extend(files(K8S, "md"));
    texts.extend([PathBuf::from(UNIT), PathBuf::from("Dockerfile")]);
    texts.push(PathBuf::from("examples/systemd/env.example"));
    for f in texts {
        let text = std::fs::read_to_string(&f).unwrap().replace("\\\n", " ");
        for line in text.lines() {
            let mut rest = line;
            while let Some(i) = rest.find("ad2entra ") {
                let cmd = &rest[i..];
                lines.push((f.display().to_string(), cmd.to_string()));
                rest = &rest[i + "ad2entra ".len()..];
            }
        }
    }
    let mut out = Vec::new();
    for (source, line) in lines {
        let mut tokens = line
            .split_whitespace()
            .skip(1)
            .take_while(|t| !matches!(*t, "#" | "&&" | "|" | "&" | ";"));
        let mut flags = Vec::new();
        let mut sub = None;
        for t in tokens.by_ref() {
            if let Some(f) = t.strip_prefix("--") {
                let name: String = f
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                flags.push(format!("--{name}"));
            } else if sub.is_none() && SUBCOMMANDS.contains(&t) {
                sub = Some(t.to_string());
            } else if sub.is_none() {
                break; // prose ("ad2entra does not ...")
            }
        }
        if let Some(sub) = sub {
            out.push((source, sub, flags));
        }
    }
    out
}

fn help(sub: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ad2entra"))
        .args([sub, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ad2entra {sub} --help failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|t| t.starts_with("--"))
        .map(|t| t.split('=').next().unwrap().to_string())
        .collect()
}

#[test]
fn every_flag_named_in_the_shipped_files_exists_in_the_cli() {
    let calls = invocations();
    let subs: BTreeSet<&str> = calls.iter().map(|(_, s, _)| s.as_str()).collect();
    for s in ["run", "status", "sync-now"] {
        assert!(subs.contains(s), "no `ad2entra {s}` shown: {subs:?}");
    }
    let mut helps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (source, sub, flags) in &calls {
        let known = helps.entry(sub.clone()).or_insert_with(|| help(sub));
        for f in flags {
            checked += 1;
            if !known.contains(f) {
                missing.push(format!("{source}: ad2entra {sub} {f}"));
            }
        }
    }
    assert!(checked >= 15, "only {checked} flags found: {calls:?}");
    assert!(
        missing.is_empty(),
        "flags the CLI does not have: {missing:#?}"
    );
}
