//! Runs `ad2entra run` as a real process (so SIGTERM, SIGKILL and restarts are real) and
//! talks to it over its HTTP endpoints: status, sync, metrics.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running reconciler process.
pub struct Run {
    child: Child,
    pub url: String,
    logs: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

/// Appends every line `from` yields to `sink`, on its own thread.
fn drain(from: impl std::io::Read + Send + 'static, sink: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Run {
    /// Starts `ad2entra run ARGS` with `--log-json` (and `--listen 127.0.0.1:0` unless
    /// ARGS has a `--listen`) and `env`, and waits until it listens.
    pub fn start(args: &[String], env: &[(String, String)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ad2entra"));
        cmd.arg("--log-json").arg("run");
        if !args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args)
            .env_remove("AD2ENTRA_POLICY")
            .env_remove("AD2ENTRA_STATE")
            .env("AD2ENTRA_LOG", "info,ad2entra=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ad2entra run");
        let stderr = child.stderr.take().expect("stderr");
        let stdout = Arc::new(Mutex::new(String::new()));
        drain(child.stdout.take().expect("stdout"), stdout.clone());
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("ad2entra run: listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "ad2entra run did not start listening:\n{}",
                    logs.lock().unwrap()
                );
            }
        };
        Run {
            child,
            url,
            logs,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The log lines (JSON objects) whose `fields.message` is `message`.
    pub fn log_events(&self, message: &str) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.url))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let code = r.status().as_u16();
        (code, r.text().await.unwrap_or_default())
    }

    pub async fn status(&self) -> Value {
        let (code, body) = self.get("/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// `POST /sync` (optionally `?full=true`, with a bearer token).
    pub async fn sync(&self, full: bool, token: Option<&str>) -> u16 {
        let mut req = reqwest::Client::new().post(format!(
            "{}/sync{}",
            self.url,
            if full { "?full=true" } else { "" }
        ));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("POST /sync").status().as_u16()
    }

    /// Polls `/status` until `pred` holds; panics with the status and logs on timeout.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status().await;
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; status:\n{}\nlogs (tail):\n{}",
                    serde_json::to_string_pretty(&s).unwrap_or_default(),
                    tail(&self.logs(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `n` cycles have completed (counting the history in `/status`).
    pub async fn wait_cycles(&self, n: usize, timeout: Duration) -> Value {
        self.wait_for(&format!("{n} completed cycle(s)"), timeout, |s| {
            runs(s).len() >= n && s["currentCycle"].is_null()
        })
        .await
    }

    /// Sends a signal (`TERM`, `KILL`, `HUP`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "ad2entra run did not exit within {timeout:?}; logs:\n{}",
                    tail(&self.logs(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run history in a status document, newest first.
pub fn runs(status: &Value) -> Vec<Value> {
    status["recentRuns"].as_array().cloned().unwrap_or_default()
}

/// The outcome of the newest run.
pub fn last_outcome(status: &Value) -> String {
    status["lastCycle"]["outcome"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The condition `kind` (`Ready`, `Stalled`, …) as (status, reason).
pub fn condition(status: &Value, kind: &str) -> (String, String) {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .unwrap_or_default()
}

/// A metric sample's value: `name` with all `labels` matching (first match).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse as Prometheus text");
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A copy of the demo company (policy + LDIF) in a temporary directory, so a test can
/// edit either while the reconciler runs.
pub struct DemoCopy {
    pub dir: tempfile::TempDir,
}

impl DemoCopy {
    pub fn new() -> DemoCopy {
        let dir = tempfile::tempdir().expect("tempdir");
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
        for f in ["policy.yaml", "corp.ldif"] {
            std::fs::copy(demo.join(f), dir.path().join(f)).expect("copy demo");
        }
        std::fs::create_dir(dir.path().join("policy")).expect("policy dir");
        std::fs::rename(
            dir.path().join("policy.yaml"),
            dir.path().join("policy/policy.yaml"),
        )
        .expect("move policy");
        DemoCopy { dir }
    }

    pub fn policy_dir(&self) -> PathBuf {
        self.dir.path().join("policy")
    }

    pub fn policy_file(&self) -> PathBuf {
        self.policy_dir().join("policy.yaml")
    }

    pub fn ldif(&self) -> PathBuf {
        self.dir.path().join("corp.ldif")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// The usual arguments: this copy's policy directory, LDIF and state file.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![
            "--policy".to_string(),
            self.policy_dir().display().to_string(),
            "--source-ldif".to_string(),
            self.ldif().display().to_string(),
            "--state".to_string(),
            self.state().display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }
}

/// A TCP relay to the DC that a test can switch off (refusing and cutting every
/// connection) and on again: "LDAP stopped" without stopping the shared test DC.
pub struct Relay {
    pub addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(upstream: String) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Relay { addr, up, conns }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
