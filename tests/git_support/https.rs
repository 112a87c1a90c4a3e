//! A git smart-HTTP server over TLS for tests (tests/git_support/https_git_server.py:
//! `git http-backend` behind Basic auth), with a self-signed certificate made by the
//! openssl CLI.

use super::KillOnDrop;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running server.
pub struct HttpsGitServer {
    _child: KillOnDrop,
    pub port: u16,
    /// "auth ok" / "auth missing" / "auth wrong", one per request.
    pub seen: Arc<Mutex<Vec<String>>>,
}

/// Writes `cert.pem` and `key.pem` (P-256, for 127.0.0.1) into `dir`.
pub fn self_signed(dir: &Path) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .output()
        .expect("openssl CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl HttpsGitServer {
    /// Serves the bare repositories under `project_root` with `dir`'s `cert.pem` and
    /// `key.pem` ([`self_signed`]), accepting `user` with `token` as the password.
    pub fn start(dir: &Path, project_root: &Path, user: &str, token: &str) -> HttpsGitServer {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/git_support/https_git_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .arg(project_root)
            .args([user, token])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port: u16 = first.strip_prefix("listening ").unwrap().parse().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        HttpsGitServer {
            _child: KillOnDrop(child),
            port,
            seen,
        }
    }
}
