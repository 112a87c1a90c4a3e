//! The ssh host-key check: the key a server presents must be listed for that host in
//! the known-hosts file. There is no trust on first use: an unknown host is refused
//! like a changed key, because a reconciler that writes to the directory must not
//! take its policy from whoever answers on the network.
//!
//! The file is OpenSSH's format (`ssh-keyscan` output works): host patterns with `*`,
//! `?` and `!` negation, `[host]:port` for other ports than 22, hashed names
//! (`|1|salt|hash`, `HashKnownHosts yes`), and `@revoked` entries. `@cert-authority`
//! lines (host certificates) are not supported and are ignored.

use aws_lc_rs::hmac;
use ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use ssh_key::{HashAlg, PublicKey};
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a host key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyProblem {
    /// The known-hosts file has no key for this host.
    UnknownHost { lookup: String, file: PathBuf },
    /// The file lists other keys for this host: the server's key changed, or someone
    /// is in between.
    Mismatch {
        lookup: String,
        fingerprint: String,
        file: PathBuf,
    },
    /// The key is marked `@revoked`.
    Revoked { fingerprint: String },
    /// The transport gave no key to check.
    NoKey,
    /// The known-hosts file cannot be read.
    Unreadable { file: PathBuf, reason: String },
}

impl fmt::Display for HostKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyProblem::UnknownHost { lookup, file } => write!(
                f,
                "{lookup} is not in {}; add its key (ssh-keyscan, then compare the fingerprint with the server's)",
                file.display()
            ),
            HostKeyProblem::Mismatch {
                lookup,
                fingerprint,
                file,
            } => write!(
                f,
                "{lookup} presented {fingerprint}, which is not the key {} lists for it (changed host key, or a man in the middle)",
                file.display()
            ),
            HostKeyProblem::Revoked { fingerprint } => {
                write!(f, "the key {fingerprint} is marked @revoked")
            }
            HostKeyProblem::NoKey => f.write_str("the server's host key could not be read"),
            HostKeyProblem::Unreadable { file, reason } => {
                write!(f, "cannot read {}: {reason}", file.display())
            }
        }
    }
}

/// The entries of a known-hosts file. Lines that do not parse (unsupported key types,
/// garbage) are skipped, as OpenSSH does.
#[derive(Clone, Debug)]
pub struct KnownHosts {
    file: PathBuf,
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Reads `file`.
    pub fn read(file: &Path) -> Result<Self, HostKeyProblem> {
        let text = std::fs::read_to_string(file).map_err(|e| HostKeyProblem::Unreadable {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self::parse(file, &text))
    }

    /// Parses the text of a known-hosts file (`file` is for messages).
    pub fn parse(file: &Path, text: &str) -> Self {
        let entries = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.parse::<Entry>().ok())
            .collect();
        Self {
            file: file.to_path_buf(),
            entries,
        }
    }

    /// Accepts `key` (SSH wire encoding, as the transport hands it over) for `host` on
    /// `port`, or says why not.
    pub fn check(&self, host: &str, port: Option<u16>, key: &[u8]) -> Result<(), HostKeyProblem> {
        let presented = PublicKey::from_bytes(key).map_err(|_| HostKeyProblem::NoKey)?;
        let fingerprint = presented.fingerprint(HashAlg::Sha256).to_string();
        let lookup = match port {
            None | Some(22) => host.to_ascii_lowercase(),
            Some(p) => format!("[{}]:{p}", host.to_ascii_lowercase()),
        };
        let for_host: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| host_matches(e.host_patterns(), &lookup))
            .collect();
        let same_key = |e: &&&Entry| e.public_key().key_data() == presented.key_data();
        if for_host
            .iter()
            .filter(|e| e.marker() == Some(&Marker::Revoked))
            .any(|e| same_key(&e))
        {
            return Err(HostKeyProblem::Revoked { fingerprint });
        }
        let usable: Vec<&&Entry> = for_host.iter().filter(|e| e.marker().is_none()).collect();
        if usable.iter().any(same_key) {
            return Ok(());
        }
        if usable.is_empty() {
            Err(HostKeyProblem::UnknownHost {
                lookup,
                file: self.file.clone(),
            })
        } else {
            Err(HostKeyProblem::Mismatch {
                lookup,
                fingerprint,
                file: self.file.clone(),
            })
        }
    }
}

/// Whether a known-hosts entry's host field names `lookup` (`host` or `[host]:port`).
fn host_matches(patterns: &HostPatterns, lookup: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
            hmac::verify(&key, lookup.as_bytes(), hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let patterns: Vec<&str> = list.iter().map(String::as_str).collect();
            pattern_list_matches(&patterns, lookup)
        }
    }
}

/// OpenSSH's pattern-list (ssh_config(5) PATTERNS): `*` and `?` wildcards, a `!`
/// prefix negates; a negated match wins, otherwise any positive match matches.
/// Case-insensitive, as OpenSSH compares host names.
pub(super) fn pattern_list_matches(patterns: &[&str], subject: &str) -> bool {
    let subject = subject.to_ascii_lowercase();
    let mut positive = false;
    for p in patterns {
        let (negated, pat) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, *p),
        };
        if wildmatch::WildMatch::new(&pat.to_ascii_lowercase()).matches(&subject) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    // Two real ed25519 public keys (ssh-keygen -t ed25519).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1IOi+CJGD6OE3wFdvhG1gvTHJWkcxmtz66I3eGY/jy";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaEMXLiAKasT95jReRLxPLRCS80vG7ujLz4aEXR1kxe";

    fn wire(openssh: &str) -> Vec<u8> {
        PublicKey::from_openssh(openssh)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("known_hosts"), text)
    }

    #[test]
    fn a_listed_key_is_accepted_for_its_host_and_port() {
        let k = kh(&format!(
            "# comment\ngit.example.com,10.0.0.5 {KEY_A}\n[git.example.com]:2222 {KEY_B}\nnot a valid line\n"
        ));
        assert_eq!(k.check("git.example.com", None, &wire(KEY_A)), Ok(()));
        assert_eq!(k.check("GIT.example.com", Some(22), &wire(KEY_A)), Ok(()));
        assert_eq!(k.check("10.0.0.5", None, &wire(KEY_A)), Ok(()));
        assert_eq!(k.check("git.example.com", Some(2222), &wire(KEY_B)), Ok(()));
    }

    #[test]
    fn an_unknown_host_is_refused_without_trust_on_first_use() {
        let k = kh(&format!("git.example.com {KEY_A}\n"));
        let e = k
            .check("other.example.com", None, &wire(KEY_A))
            .unwrap_err();
        assert!(matches!(e, HostKeyProblem::UnknownHost { .. }), "{e}");
        // the port is part of the identity
        let e = k
            .check("git.example.com", Some(2222), &wire(KEY_A))
            .unwrap_err();
        assert!(
            matches!(e, HostKeyProblem::UnknownHost { ref lookup, .. } if lookup == "[git.example.com]:2222")
        );
        let e = kh("")
            .check("git.example.com", None, &wire(KEY_A))
            .unwrap_err();
        assert!(matches!(e, HostKeyProblem::UnknownHost { .. }));
    }

    #[test]
    fn a_different_key_for_a_known_host_is_a_mismatch() {
        let k = kh(&format!("git.example.com {KEY_A}\n"));
        let e = k.check("git.example.com", None, &wire(KEY_B)).unwrap_err();
        assert!(matches!(e, HostKeyProblem::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("SHA256:"), "{e}");
    }

    #[test]
    fn wildcards_negation_hashes_and_revocation() {
        let k = kh(&format!("*.example.com,!evil.example.com {KEY_A}\n"));
        assert_eq!(k.check("git.example.com", None, &wire(KEY_A)), Ok(()));
        assert!(k.check("evil.example.com", None, &wire(KEY_A)).is_err());

        // |1|base64(salt)|base64(HMAC-SHA1(salt, host)), as `ssh-keygen -H` writes it
        let salt = [7u8; 20];
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
        let tag = hmac::sign(&key, b"git.example.com");
        let line = format!(
            "|1|{}|{} {KEY_A}\n",
            STANDARD.encode(salt),
            STANDARD.encode(tag.as_ref())
        );
        let k = kh(&line);
        assert_eq!(k.check("git.example.com", None, &wire(KEY_A)), Ok(()));
        assert!(k.check("other.example.com", None, &wire(KEY_A)).is_err());

        let k = kh(&format!("@revoked * {KEY_A}\ngit.example.com {KEY_A}\n"));
        let e = k.check("git.example.com", None, &wire(KEY_A)).unwrap_err();
        assert!(matches!(e, HostKeyProblem::Revoked { .. }), "{e}");
    }
}
