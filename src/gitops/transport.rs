//! The callbacks libgit2 calls while it talks to the remote: credentials (a token for
//! https, a key file for ssh) and the ssh host-key check against our known-hosts file.
//!
//! libgit2 reports a refused callback as a bare error; [`Refusals`] keeps our own
//! reason so the caller can say *why* (unknown host key, no token...) without ever
//! putting a credential in the message.

use super::config::{GitAuth, TOKEN_USER};
use super::known_hosts::{HostKeyProblem, KnownHosts};
use super::url::Transport;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};
use std::cell::RefCell;

/// Why a callback refused, recorded for the error message.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    pub host_key: RefCell<Option<(String, HostKeyProblem)>>,
    pub auth: RefCell<Option<String>>,
}

/// Callbacks for one fetch. `known_hosts` is read for ssh transports only.
pub(super) fn callbacks<'a>(
    transport: &'a Transport,
    auth: &'a GitAuth,
    known_hosts: Option<&'a KnownHosts>,
    refusals: &'a Refusals,
) -> RemoteCallbacks<'a> {
    let mut cb = RemoteCallbacks::new();
    let mut secret_attempts = 0u32;
    cb.credentials(move |_url, user_from_url, allowed| {
        let refuse = |why: String| {
            *refusals.auth.borrow_mut() = Some(why);
            Err(git2::Error::from_str("credentials refused"))
        };
        match transport {
            Transport::Ssh { user, .. } => {
                let name = user_from_url.or(user.as_deref()).unwrap_or("git");
                if allowed.contains(CredentialType::USERNAME) {
                    return Cred::username(name);
                }
                let Some(key) = auth.ssh_key.as_deref() else {
                    return refuse("no ssh key: set AD2ENTRA_GIT_SSH_KEY".into());
                };
                if !allowed.contains(CredentialType::SSH_KEY) {
                    return refuse("the server accepts no ssh key authentication".into());
                }
                secret_attempts += 1;
                if secret_attempts > 1 {
                    return refuse(format!(
                        "the server refused the key {} for user {name}",
                        key.display()
                    ));
                }
                let passphrase = auth.ssh_key_passphrase.as_ref().map(|s| s.expose());
                Cred::ssh_key(name, None, key, passphrase)
            }
            Transport::Http { tls, user, .. } => {
                if !tls {
                    return refuse(
                        "the server asks for credentials over plain http; a token is only sent over https"
                            .into(),
                    );
                }
                let Some(token) = auth.token.as_ref() else {
                    return refuse("the server asks for credentials: set AD2ENTRA_GIT_TOKEN".into());
                };
                if !allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                    return refuse("the server accepts no token authentication".into());
                }
                secret_attempts += 1;
                if secret_attempts > 1 {
                    return refuse(
                        "the server refused the token in AD2ENTRA_GIT_TOKEN (expired, or without read access)"
                            .into(),
                    );
                }
                let name = user_from_url.or(user.as_deref()).unwrap_or(TOKEN_USER);
                Cred::userpass_plaintext(name, token.expose())
            }
            Transport::Local => refuse("a local repository asked for credentials".into()),
        }
    });
    let port = match transport {
        Transport::Ssh { port, .. } => *port,
        _ => None,
    };
    cb.certificate_check(move |cert, hostname| {
        let Some(hostkey) = cert.as_hostkey() else {
            // TLS: libgit2's own certificate verification (system CA store) decides.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let verdict = match (known_hosts, hostkey.hostkey()) {
            (Some(known), Some(raw)) => known.check(hostname, port, raw),
            (None, _) => Err(HostKeyProblem::Unreadable {
                file: "known_hosts".into(),
                reason: "no known-hosts file configured".into(),
            }),
            (_, None) => Err(HostKeyProblem::NoKey),
        };
        match verdict {
            Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
            Err(problem) => {
                *refusals.host_key.borrow_mut() = Some((hostname.to_string(), problem));
                Err(git2::Error::from_str("ssh host key refused"))
            }
        }
    });
    cb
}
