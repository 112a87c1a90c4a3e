//! The policy over ssh, against a real OpenSSH server (Debian's openssh-server, which
//! scripts/test.sh installs) started by the test on a loopback port: a listed host key
//! and an authorised deploy key fetch; an unknown host, a changed host key, an
//! unauthorised key and a wrong passphrase are refused with the reason, and no
//! passphrase appears in any message.
//!
//! Without /usr/sbin/sshd these tests fail, unless AD2ENTRA_SKIP_SSH_TESTS=1.

mod git_support;

use ad2entra::gitops::{GitAuth, GitConfig, GitError, GitPolicySource, HostKeyProblem};
use git_support::{KillOnDrop, MINIMAL_POLICY, Remote, keygen, public};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// An sshd on 127.0.0.1, for the current user, with one host key and the given
/// authorised keys; killed on drop.
struct Sshd {
    _child: KillOnDrop,
    port: u16,
    host_key: PathBuf,
    user: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// `None` when sshd is not installed and the skip variable is set.
    fn start(dir: &Path, authorized: &[&Path]) -> Option<Sshd> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var("AD2ENTRA_SKIP_SSH_TESTS").is_ok_and(|v| v == "1"),
                "{SSHD} is missing: install openssh-server (scripts/test.sh does), or set AD2ENTRA_SKIP_SSH_TESTS=1"
            );
            return None;
        }
        // sshd's privilege-separation directory, when running as root
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = keygen(dir, "ssh_host_ed25519_key");
        let keys: Vec<String> = authorized.iter().map(|k| public(k)).collect();
        let auth_file = dir.join("authorized_keys");
        std::fs::write(&auth_file, keys.join("\n") + "\n").unwrap();
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nLogLevel VERBOSE\n",
                host_key.display(),
                auth_file.display(),
                dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        Some(Sshd {
            _child: KillOnDrop(child),
            port,
            host_key,
            user,
        })
    }

    fn url(&self, remote: &Remote) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            remote.bare.display()
        )
    }

    /// A known-hosts line for this server (as `ssh-keyscan -p PORT 127.0.0.1` writes it).
    fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}\n", self.port, public(&self.host_key))
    }
}

fn auth(key: &Path, known_hosts: &Path, passphrase: Option<&str>) -> GitAuth {
    GitAuth::from_lookup(|name| match name {
        "AD2ENTRA_GIT_SSH_KEY" => Some(key.display().to_string()),
        "AD2ENTRA_GIT_KNOWN_HOSTS" => Some(known_hosts.display().to_string()),
        "AD2ENTRA_GIT_SSH_KEY_PASSPHRASE" => passphrase.map(str::to_string),
        _ => None,
    })
}

fn fetch(url: &str, cache: &Path, auth: GitAuth) -> Result<(GitPolicySource, String), GitError> {
    let cfg = GitConfig::new(url, "main", ".", cache, auth)?;
    let mut src = GitPolicySource::open(cfg)?;
    let head = src.fetch()?;
    Ok((src, head))
}

#[test]
fn a_known_host_and_an_authorised_key_fetch_over_ssh_and_anything_else_is_refused() {
    let remote = Remote::new();
    let sha = remote.commit(&[("policy.yaml", MINIMAL_POLICY)]);
    remote.push();
    let dir = remote.root.join("ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let deploy = keygen(&dir, "deploy");
    let Some(sshd) = Sshd::start(&dir, &[&deploy]) else {
        return;
    };
    let url = sshd.url(&remote);
    let known = dir.join("known_hosts");

    // the listed host key and the deploy key: fetched and loaded
    std::fs::write(&known, sshd.known_hosts_line()).unwrap();
    let (src, head) = fetch(&url, &dir.join("cache"), auth(&deploy, &known, None)).unwrap();
    assert_eq!(head, sha);
    assert_eq!(
        src.load(&head).unwrap().commit.as_deref(),
        Some(sha.as_str())
    );

    // an unknown host: refused, no trust on first use
    std::fs::write(&known, "").unwrap();
    let e = fetch(&url, &dir.join("cache"), auth(&deploy, &known, None)).unwrap_err();
    assert!(
        matches!(
            &e,
            GitError::HostKey {
                problem: HostKeyProblem::UnknownHost { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_transient());

    // another key listed for this host: a mismatch
    let other = keygen(&dir, "other_host_key");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", sshd.port, public(&other)),
    )
    .unwrap();
    let e = fetch(&url, &dir.join("cache"), auth(&deploy, &known, None)).unwrap_err();
    assert!(
        matches!(
            &e,
            GitError::HostKey {
                problem: HostKeyProblem::Mismatch { .. },
                ..
            }
        ),
        "{e:?}"
    );

    // a key the server does not authorise
    std::fs::write(&known, sshd.known_hosts_line()).unwrap();
    let stranger = keygen(&dir, "stranger");
    let e = fetch(&url, &dir.join("cache"), auth(&stranger, &known, None)).unwrap_err();
    assert!(matches!(&e, GitError::Auth { .. }), "{e:?}");
}

#[test]
fn a_passphrase_protected_key_works_and_a_wrong_passphrase_is_not_repeated() {
    let remote = Remote::new();
    let sha = remote.commit(&[("policy.yaml", MINIMAL_POLICY)]);
    remote.push();
    let dir = remote.root.join("ssh");
    std::fs::create_dir_all(&dir).unwrap();
    let key = keygen(&dir, "deploy");
    let passphrase = "correct horse SECRET";
    let out = Command::new("ssh-keygen")
        .args(["-q", "-p", "-N", passphrase, "-P", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(sshd) = Sshd::start(&dir, &[&key]) else {
        return;
    };
    let url = sshd.url(&remote);
    let known = dir.join("known_hosts");
    std::fs::write(&known, sshd.known_hosts_line()).unwrap();

    let (_, head) = fetch(
        &url,
        &dir.join("cache"),
        auth(&key, &known, Some(passphrase)),
    )
    .unwrap();
    assert_eq!(head, sha);

    let wrong = "wrong SECRET passphrase";
    let e = fetch(&url, &dir.join("cache"), auth(&key, &known, Some(wrong))).unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains(wrong) && !text.contains(passphrase),
        "{text}"
    );
}
