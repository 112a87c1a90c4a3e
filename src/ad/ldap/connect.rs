//! Connecting, binding, and running single operations with every failure mapped onto
//! [`LdapError`] (naming the server and the step, never the password).

use super::entry::{RawEntry, parse_entry};
use super::{LdapConfig, LdapError, tls};
use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope};
use std::time::Duration;

/// How the URL asks to be secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    Ldaps,
    StartTls,
    Plain,
}

/// Validates the URL and decides the transport. Plain LDAP needs `allow_insecure`.
pub(super) fn transport(cfg: &LdapConfig) -> Result<Transport, LdapError> {
    let url = cfg.url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| LdapError::Config(format!("{url:?} is not an ldap:// or ldaps:// URL")))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(LdapError::Config(format!("{url:?} has no host")));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "ldaps" => Ok(Transport::Ldaps),
        "ldap" if cfg.allow_insecure => Ok(Transport::Plain),
        "ldap" => Ok(Transport::StartTls),
        other => Err(LdapError::Config(format!(
            "unsupported URL scheme {other:?} in {url:?} (use ldaps:// or ldap://)"
        ))),
    }
}

/// One bound connection. Dropping it closes the connection.
pub(super) struct Session {
    ldap: Ldap,
    server: String,
    timeout: Duration,
}

impl Session {
    /// Connects (TLS per [`transport`]), verifies the certificate, and simple-binds.
    ///
    /// `allow_insecure` selects plain LDAP for `ldap://` URLs; without it `ldap://` uses
    /// StartTLS, so a server that does not offer StartTLS fails instead of silently
    /// downgrading.
    pub(super) async fn open(cfg: &LdapConfig) -> Result<Self, LdapError> {
        let server = cfg.url.trim().to_string();
        let transport = transport(cfg)?;
        if cfg.password.is_empty() {
            // An empty password turns a simple bind into an unauthenticated bind that
            // "succeeds" and then reads nothing: refuse it up front.
            return Err(LdapError::Config("the bind password is empty".into()));
        }
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.timeout);
        if transport != Transport::Plain {
            settings = settings
                .set_config(tls::client_config(cfg.ca_file.as_deref())?)
                .set_starttls(transport == Transport::StartTls);
        }
        let trust = match &cfg.ca_file {
            Some(p) => format!("CA file {}", p.display()),
            None => "system roots".to_string(),
        };
        let connecting =
            tokio::time::timeout(cfg.timeout, LdapConnAsync::with_settings(settings, &server));
        let (conn, mut ldap) = match connecting.await {
            Err(_) => {
                return Err(LdapError::Timeout {
                    server,
                    during: "connecting".into(),
                    after: cfg.timeout,
                });
            }
            Ok(Err(e)) => {
                if let Some(tls_err) = tls::rustls_error(&e) {
                    return Err(if tls::is_verification_failure(tls_err) {
                        LdapError::TlsVerification {
                            server,
                            trust,
                            reason: tls_err.to_string(),
                        }
                    } else {
                        LdapError::Tls {
                            server,
                            reason: tls_err.to_string(),
                        }
                    });
                }
                return Err(match e {
                    ldap3::LdapError::Timeout { .. } => LdapError::Timeout {
                        server,
                        during: "connecting".into(),
                        after: cfg.timeout,
                    },
                    ldap3::LdapError::LdapResult { result } => LdapError::Tls {
                        server,
                        reason: format!("StartTLS refused: {result}"),
                    },
                    other => LdapError::Connect {
                        server,
                        reason: other.to_string(),
                    },
                });
            }
            Ok(Ok(pair)) => pair,
        };
        let drive_server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(server = %drive_server, error = %e, "LDAP connection ended");
            }
        });
        let bind = ldap
            .with_timeout(cfg.timeout)
            .simple_bind(&cfg.bind_dn, &cfg.password)
            .await;
        match bind {
            Ok(res) if res.rc == 0 => {}
            Ok(res) => {
                return Err(LdapError::BindFailed {
                    server,
                    bind_dn: cfg.bind_dn.clone(),
                    rc: res.rc,
                    reason: non_empty(&res.text, "rejected"),
                });
            }
            Err(e) => return Err(map_error(&server, "binding", cfg.timeout, e)),
        }
        tracing::debug!(server = %server, bind_dn = %cfg.bind_dn, ?transport, "LDAP bind succeeded");
        Ok(Self {
            ldap,
            server,
            timeout: cfg.timeout,
        })
    }

    /// The URL this session is connected to (for snapshots and messages).
    pub(super) fn server(&self) -> &str {
        &self.server
    }

    /// Another handle on the same bound connection, for an operation that stays open
    /// while this session runs others (a change notification search never completes,
    /// and the session keeps pinging beside it).
    pub(super) fn handle(&self) -> Ldap {
        self.ldap.clone()
    }

    /// One search request (one page when `controls` carries a paged-results control).
    /// Returns the entries (continuation references dropped) and the response controls.
    /// Any result code other than success is an error: the caller never sees a partial
    /// result set.
    pub(super) async fn search(
        &mut self,
        during: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
    ) -> Result<(Vec<RawEntry>, Vec<RawControl>), LdapError> {
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .with_controls(controls)
            .search(base, scope, filter, attrs)
            .await
            .map_err(|e| map_error(&self.server, during, self.timeout, e))?;
        let ldap3::SearchResult(items, result) = res;
        check_rc(&self.server, during, self.timeout, &result)?;
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            if item.is_ref() || item.is_intermediate() {
                continue; // continuation references point at other partitions: not ours
            }
            entries.push(parse_entry(item.0).map_err(|reason| LdapError::Protocol {
                server: self.server.clone(),
                during: during.to_string(),
                reason,
            })?);
        }
        let ctrls = result.ctrls.into_iter().map(|c| c.1).collect();
        Ok((entries, ctrls))
    }

    /// A base-scope search that returns `None` when the object does not exist.
    pub(super) async fn base(
        &mut self,
        during: &str,
        dn: &str,
        attrs: &[String],
        controls: Vec<RawControl>,
    ) -> Result<Option<RawEntry>, LdapError> {
        match self
            .search(during, dn, Scope::Base, "(objectClass=*)", attrs, controls)
            .await
        {
            Ok((mut entries, _)) => Ok(entries.pop()),
            Err(LdapError::Operation { rc: 32, .. }) => Ok(None), // noSuchObject
            Err(e) => Err(e),
        }
    }

    /// Unbinds politely; errors are irrelevant once the read is complete.
    pub(super) async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}

fn non_empty(s: &str, default: &str) -> String {
    let s = s.trim().trim_end_matches('\0');
    if s.is_empty() {
        default.to_string()
    } else {
        s.to_string()
    }
}

/// Maps a non-success LDAP result code onto the read-failure taxonomy.
pub(super) fn check_rc(
    server: &str,
    during: &str,
    timeout: Duration,
    result: &ldap3::LdapResult,
) -> Result<(), LdapError> {
    match result.rc {
        0 => Ok(()),
        // sizeLimitExceeded, adminLimitExceeded: the server stopped early.
        4 | 11 => Err(LdapError::SizeLimitExceeded {
            server: server.to_string(),
            during: during.to_string(),
        }),
        3 => Err(LdapError::Timeout {
            server: server.to_string(),
            during: format!("{during} (server time limit)"),
            after: timeout,
        }),
        rc => Err(LdapError::Operation {
            server: server.to_string(),
            during: during.to_string(),
            rc,
            message: non_empty(&result.text, rc_name(rc)),
        }),
    }
}

fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        10 => "referral",
        12 => "unavailableCriticalExtension",
        32 => "noSuchObject",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "error",
    }
}

/// Maps an ldap3 error (transport level) onto [`LdapError`].
pub(super) fn map_error(
    server: &str,
    during: &str,
    timeout: Duration,
    e: ldap3::LdapError,
) -> LdapError {
    let server = server.to_string();
    let during = during.to_string();
    match e {
        ldap3::LdapError::Timeout { .. } => LdapError::Timeout {
            server,
            during,
            after: timeout,
        },
        ldap3::LdapError::LdapResult { result } => {
            match check_rc(&server, &during, timeout, &result) {
                Err(e) => e,
                Ok(()) => LdapError::Protocol {
                    server,
                    during,
                    reason: "an operation failed with result code 0".into(),
                },
            }
        }
        ldap3::LdapError::Io { .. }
        | ldap3::LdapError::OpSend { .. }
        | ldap3::LdapError::ResultRecv { .. }
        | ldap3::LdapError::IdScrubSend { .. }
        | ldap3::LdapError::MiscSend { .. }
        | ldap3::LdapError::EndOfStream => LdapError::ConnectionLost {
            server,
            during,
            reason: e.to_string(),
        },
        other => LdapError::Protocol {
            server,
            during,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, insecure: bool) -> LdapConfig {
        let mut c = LdapConfig::new(url, "CN=x", "secret-pw", "DC=x");
        c.allow_insecure = insecure;
        c
    }

    #[test]
    fn transport_follows_scheme_and_insecure_flag() {
        assert_eq!(
            transport(&cfg("ldaps://dc:636", false)).unwrap(),
            Transport::Ldaps
        );
        assert_eq!(
            transport(&cfg("ldap://dc", false)).unwrap(),
            Transport::StartTls
        );
        assert_eq!(
            transport(&cfg("LDAP://dc", true)).unwrap(),
            Transport::Plain
        );
        assert_eq!(
            transport(&cfg("ldaps://dc", true)).unwrap(),
            Transport::Ldaps
        );
        assert!(matches!(
            transport(&cfg("http://dc", false)),
            Err(LdapError::Config(_))
        ));
        assert!(matches!(
            transport(&cfg("ldap:///", false)),
            Err(LdapError::Config(_))
        ));
        assert!(matches!(
            transport(&cfg("dc.example.com", false)),
            Err(LdapError::Config(_))
        ));
    }

    #[test]
    fn result_codes_map_to_failures() {
        let r = |rc| ldap3::LdapResult {
            rc,
            matched: String::new(),
            text: String::new(),
            refs: vec![],
            ctrls: vec![],
        };
        let t = Duration::from_secs(1);
        assert!(check_rc("s", "d", t, &r(0)).is_ok());
        assert!(matches!(
            check_rc("s", "d", t, &r(4)),
            Err(LdapError::SizeLimitExceeded { .. })
        ));
        assert!(matches!(
            check_rc("s", "d", t, &r(11)),
            Err(LdapError::SizeLimitExceeded { .. })
        ));
        assert!(matches!(
            check_rc("s", "d", t, &r(3)),
            Err(LdapError::Timeout { .. })
        ));
        assert!(matches!(
            check_rc("s", "d", t, &r(32)),
            Err(LdapError::Operation { rc: 32, .. })
        ));
        let lost = map_error("s", "d", t, ldap3::LdapError::EndOfStream);
        assert!(matches!(lost, LdapError::ConnectionLost { .. }));
    }

    #[test]
    fn debug_masks_the_password() {
        let c = cfg("ldaps://dc", false);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret-pw"), "{dbg}");
        assert!(dbg.contains("***"));
    }
}
