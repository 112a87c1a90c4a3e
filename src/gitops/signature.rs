//! `requireSignedCommits`: a policy commit loads only when it carries an SSH signature
//! (git's `gpg.format=ssh`) by a key in an allowed-signers file.
//!
//! This is what `git verify-commit` does with `gpg.ssh.allowedSignersFile`: the
//! commit's `gpgsig` header holds an armored SSHSIG over the commit without that
//! header, in namespace `git`; the signing key must be listed in the file (format of
//! ssh-keygen(1) "ALLOWED SIGNERS": `principals [options] keytype base64-key`), with
//! its `namespaces=` and `valid-after=`/`valid-before=` options honoured at the
//! committer's timestamp, as git passes `-Overify-time`. The principal is reported,
//! not matched against the committer: like git, a listed key is trusted for any commit.
//!
//! OpenPGP and X.509 signatures are refused as unsupported (use SSH signing).
//! `cert-authority` lines (signatures by SSH certificates) are not supported: such
//! lines never match.

use super::error::{GitError, PolicyAtCommitError};
use super::known_hosts::pattern_list_matches;
use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey, SshSig};
use std::fmt;
use std::path::{Path, PathBuf};

/// The SSHSIG namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// Why a commit's signature was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureProblem {
    /// Not an SSH signature: GPG (OpenPGP) or X.509.
    UnsupportedFormat(&'static str),
    /// The signature block does not parse.
    Malformed(String),
    /// Signed for another purpose than git (e.g. `file`).
    WrongNamespace(String),
    /// The signing key is not in the allowed signers file.
    KeyNotAllowed { fingerprint: String },
    /// The key is listed, but not for namespace `git` or not at the commit's time.
    KeyNotValid { fingerprint: String, reason: String },
    /// The signature does not match the commit's content.
    Invalid { fingerprint: String },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::UnsupportedFormat(what) => write!(
                f,
                "unsupported signature format ({what}), use SSH signing (git config gpg.format ssh)"
            ),
            SignatureProblem::Malformed(why) => write!(f, "malformed SSH signature: {why}"),
            SignatureProblem::WrongNamespace(ns) => {
                write!(f, "signed for namespace {ns:?}, not {GIT_NAMESPACE:?}")
            }
            SignatureProblem::KeyNotAllowed { fingerprint } => {
                write!(f, "the signing key {fingerprint} is not an allowed signer")
            }
            SignatureProblem::KeyNotValid {
                fingerprint,
                reason,
            } => write!(f, "the signing key {fingerprint} is {reason}"),
            SignatureProblem::Invalid { fingerprint } => write!(
                f,
                "the signature by {fingerprint} does not match the commit (altered commit or bad signature)"
            ),
        }
    }
}

/// Who signed a commit that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signer {
    /// The principals of the allowed-signers line that matched.
    pub principals: String,
    /// `SHA256:…` of the signing key.
    pub fingerprint: String,
}

/// One line of the allowed signers file.
#[derive(Clone, Debug)]
struct AllowedSigner {
    principals: String,
    key: KeyData,
    cert_authority: bool,
    namespaces: Option<Vec<String>>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// The allowed signers: the keys whose signatures make a commit acceptable.
#[derive(Clone, Debug)]
pub struct SignaturePolicy {
    file: PathBuf,
    signers: Vec<AllowedSigner>,
}

impl SignaturePolicy {
    /// Reads an allowed signers file (git's `gpg.ssh.allowedSignersFile`).
    pub fn from_file(file: &Path) -> Result<Self, GitError> {
        let text = std::fs::read_to_string(file).map_err(|source| GitError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        Self::parse(file, &text)
    }

    /// Parses the file's text. A line that does not parse is an error (a typo must
    /// not silently drop a signer), and so is a file with no signer at all.
    pub fn parse(file: &Path, text: &str) -> Result<Self, GitError> {
        let err = |reason: String| GitError::AllowedSigners {
            path: file.to_path_buf(),
            reason,
        };
        let mut signers = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            signers.push(parse_line(line).map_err(|r| err(format!("line {}: {r}", i + 1)))?);
        }
        if signers.is_empty() {
            return Err(err("lists no signer".into()));
        }
        Ok(Self {
            file: file.to_path_buf(),
            signers,
        })
    }

    /// The file this policy was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Verifies the commit `oid` of `repo`.
    pub fn verify_commit(
        &self,
        repo: &git2::Repository,
        oid: git2::Oid,
    ) -> Result<Signer, PolicyAtCommitError> {
        let commit_id = oid.to_string();
        let (signature, content) = match repo.extract_signature(&oid, None) {
            Ok(pair) => pair,
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                return Err(PolicyAtCommitError::Unsigned { commit: commit_id });
            }
            Err(e) => {
                return Err(PolicyAtCommitError::Git(GitError::CommitNotFound {
                    commit: commit_id,
                    message: e.message().to_string(),
                }));
            }
        };
        let when = repo
            .find_commit(oid)
            .map(|c| c.committer().when().seconds())
            .map_err(|e| GitError::CommitNotFound {
                commit: commit_id.clone(),
                message: e.message().to_string(),
            })?;
        self.verify(&signature, &content, when).map_err(|reason| {
            PolicyAtCommitError::BadSignature {
                commit: commit_id,
                reason,
            }
        })
    }

    /// Verifies an armored signature over `content`, made at `when` (unix seconds).
    pub fn verify(
        &self,
        signature: &[u8],
        content: &[u8],
        when: i64,
    ) -> Result<Signer, SignatureProblem> {
        let text = String::from_utf8_lossy(signature);
        let text = text.trim();
        if text.starts_with("-----BEGIN PGP SIGNATURE-----") {
            return Err(SignatureProblem::UnsupportedFormat("OpenPGP/GPG"));
        }
        if text.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            return Err(SignatureProblem::UnsupportedFormat("X.509"));
        }
        let sig = SshSig::from_pem(text).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
        if sig.namespace() != GIT_NAMESPACE {
            return Err(SignatureProblem::WrongNamespace(sig.namespace().into()));
        }
        let key = PublicKey::from(sig.public_key().clone());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let listed: Vec<&AllowedSigner> = self
            .signers
            .iter()
            .filter(|s| !s.cert_authority && &s.key == sig.public_key())
            .collect();
        if listed.is_empty() {
            return Err(SignatureProblem::KeyNotAllowed { fingerprint });
        }
        let mut reason = String::new();
        let signer = listed
            .into_iter()
            .find(|s| match s.usable_for_git_at(when) {
                Ok(()) => true,
                Err(r) => {
                    reason = r;
                    false
                }
            });
        let Some(signer) = signer else {
            return Err(SignatureProblem::KeyNotValid {
                fingerprint,
                reason,
            });
        };
        key.verify(GIT_NAMESPACE, content, &sig)
            .map_err(|_| SignatureProblem::Invalid {
                fingerprint: fingerprint.clone(),
            })?;
        Ok(Signer {
            principals: signer.principals.clone(),
            fingerprint,
        })
    }
}

impl AllowedSigner {
    fn usable_for_git_at(&self, when: i64) -> Result<(), String> {
        if let Some(ns) = &self.namespaces {
            let patterns: Vec<&str> = ns.iter().map(String::as_str).collect();
            if !pattern_list_matches(&patterns, GIT_NAMESPACE) {
                return Err(format!("not allowed for namespace {GIT_NAMESPACE:?}"));
            }
        }
        let at = |t: i64| {
            Utc.timestamp_opt(t, 0)
                .single()
                .map(|d| d.to_rfc3339())
                .unwrap_or_else(|| t.to_string())
        };
        if let Some(after) = self.valid_after.filter(|a| when < *a) {
            return Err(format!(
                "not valid before {} (commit time {})",
                at(after),
                at(when)
            ));
        }
        if let Some(before) = self.valid_before.filter(|b| when > *b) {
            return Err(format!(
                "not valid after {} (commit time {})",
                at(before),
                at(when)
            ));
        }
        Ok(())
    }
}

/// `principals [options] keytype base64 [comment]`.
fn parse_line(line: &str) -> Result<AllowedSigner, String> {
    let tokens = split_outside_quotes(line, |c| c.is_ascii_whitespace());
    let field = |i: usize| tokens.get(i).map(String::as_str);
    let principals = field(0)
        .ok_or("no principals")?
        .trim_matches('"')
        .to_string();
    let key_at = |i: usize| -> Option<KeyData> {
        let text = format!("{} {}", field(i)?, field(i + 1)?);
        PublicKey::from_openssh(&text)
            .ok()
            .map(|k| k.key_data().clone())
    };
    let (options, key) = match key_at(1) {
        Some(k) => (None, k),
        None => (
            field(1),
            key_at(2).ok_or("no valid public key (keytype base64) after the options")?,
        ),
    };
    let mut signer = AllowedSigner {
        principals,
        key,
        cert_authority: false,
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    for opt in options
        .map(|o| split_outside_quotes(o, |c| c == ','))
        .unwrap_or_default()
    {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v.trim_matches('"'))),
            None => (opt.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => signer.cert_authority = true,
            ("namespaces", Some(v)) => {
                signer.namespaces = Some(v.split(',').map(str::to_string).collect());
            }
            ("valid-after", Some(v)) => signer.valid_after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => signer.valid_before = Some(parse_time(v)?),
            _ => return Err(format!("unsupported option {opt:?}")),
        }
    }
    Ok(signer)
}

/// ssh-keygen's timestamps: `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`; local time unless
/// suffixed with `Z` (UTC).
fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("bad timestamp {v:?} (YYYYMMDD[HHMM[SS]][Z])");
    let (digits, utc) = match v.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (v, false),
    };
    let naive = match digits.len() {
        8 => NaiveDate::parse_from_str(digits, "%Y%m%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0)),
        12 => NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M").ok(),
        14 => NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S").ok(),
        _ => None,
    }
    .ok_or_else(bad)?;
    if utc {
        Ok(naive.and_utc().timestamp())
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.timestamp())
            .ok_or_else(bad)
    }
}

/// Splits at `sep` except inside double quotes (quotes are kept).
fn split_outside_quotes(s: &str, sep: impl Fn(char) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && sep(c) {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN1IOi+CJGD6OE3wFdvhG1gvTHJWkcxmtz66I3eGY/jy";

    fn policy(text: &str) -> Result<SignaturePolicy, GitError> {
        SignaturePolicy::parse(Path::new("allowed_signers"), text)
    }

    #[test]
    fn lines_with_and_without_options_parse() {
        let p = policy(&format!(
            "# admins\nalice@example.com {KEY} alice\n\"bob@example.com,carol@*\" namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=20300101000000Z {KEY}\n"
        ))
        .unwrap();
        assert_eq!(p.signers.len(), 2);
        assert_eq!(p.signers[0].principals, "alice@example.com");
        assert!(p.signers[0].namespaces.is_none());
        let b = &p.signers[1];
        assert_eq!(b.principals, "bob@example.com,carol@*");
        assert_eq!(
            b.namespaces.as_deref(),
            Some(&["git".to_string(), "file".into()][..])
        );
        assert_eq!(b.valid_after, Some(1_704_067_200));
        assert_eq!(b.valid_before, Some(1_893_456_000));
        assert!(b.usable_for_git_at(1_750_000_000).is_ok());
        assert!(b.usable_for_git_at(1_600_000_000).is_err());
        assert!(b.usable_for_git_at(1_900_000_000).is_err());
    }

    #[test]
    fn a_bad_line_or_an_empty_file_is_an_error_naming_the_line() {
        let e = policy(&format!(
            "alice@example.com {KEY}\nbob ssh-ed25519 notbase64\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = policy(&format!("alice frobnicate {KEY}\n")).unwrap_err();
        assert!(e.to_string().contains("unsupported option"), "{e}");
        assert!(policy("# nobody\n\n").is_err());
    }

    #[test]
    fn namespaces_option_must_allow_git() {
        let p = policy(&format!("alice namespaces=\"file\" {KEY}\n")).unwrap();
        assert!(p.signers[0].usable_for_git_at(0).is_err());
        let p = policy(&format!("alice namespaces=\"*\" {KEY}\n")).unwrap();
        assert!(p.signers[0].usable_for_git_at(0).is_ok());
    }

    #[test]
    fn gpg_and_x509_signatures_are_refused_as_unsupported() {
        let p = policy(&format!("alice {KEY}\n")).unwrap();
        let gpg = b"-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\n";
        let e = p.verify(gpg, b"tree x\n", 0).unwrap_err();
        assert_eq!(e, SignatureProblem::UnsupportedFormat("OpenPGP/GPG"));
        assert!(e.to_string().contains("use SSH signing"), "{e}");
        let e = p
            .verify(b"-----BEGIN SIGNED MESSAGE-----\nx\n", b"", 0)
            .unwrap_err();
        assert_eq!(e, SignatureProblem::UnsupportedFormat("X.509"));
        let e = p.verify(b"garbage", b"", 0).unwrap_err();
        assert!(matches!(e, SignatureProblem::Malformed(_)), "{e}");
    }
}
