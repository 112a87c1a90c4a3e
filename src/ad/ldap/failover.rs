//! Failover between the DCs of one domain: `url`, then each of `fallback_urls`, in
//! order, until one connects and binds.
//!
//! Only connecting and binding fail over. A read that fails half-way fails its source
//! (and the cycle): retrying it on another DC would mix two DCs' views, and USNs are
//! per DC. So the DC is picked once, before a read ([`pick_dc`]), and the read runs
//! against that one DC only.

use super::connect::Session;
use super::{LdapConfig, LdapError};

/// Whether another DC could do better: not for a configuration or CA-file problem,
/// which every DC of the source shares.
fn worth_another_dc(e: &LdapError) -> bool {
    !matches!(e, LdapError::Config(_) | LdapError::CaFile { .. })
}

/// Opens a session with the first DC that connects and binds; returns it with the
/// config pinned to that DC (no fallbacks).
pub(super) async fn open_first(cfg: &LdapConfig) -> Result<(Session, LdapConfig), LdapError> {
    let mut failed = Vec::new();
    for url in std::iter::once(&cfg.url).chain(&cfg.fallback_urls) {
        let mut one = cfg.clone();
        one.url = url.clone();
        one.fallback_urls.clear();
        match Session::open(&one).await {
            Ok(s) => {
                if !failed.is_empty() {
                    tracing::warn!(server = %url, skipped = failed.len(), "failed over to another domain controller");
                }
                return Ok((s, one));
            }
            Err(e) if !worth_another_dc(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(server = %url, error = %e, "domain controller did not answer");
                failed.push(e);
            }
        }
    }
    Err(match failed.len() {
        1 => failed.remove(0),
        _ => LdapError::NoDcAnswered(failed),
    })
}

/// The DC a read should use: `cfg` pinned to the first of its URLs that connects and
/// binds. With a single URL there is nothing to choose and no probe is made.
pub async fn pick_dc(cfg: &LdapConfig) -> Result<LdapConfig, LdapError> {
    if cfg.fallback_urls.is_empty() {
        return Ok(cfg.clone());
    }
    let (s, one) = open_first(cfg).await?;
    s.close().await;
    Ok(one)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nothing listens on (bound, then released).
    fn dead_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1)
    }

    #[tokio::test]
    async fn every_dc_is_tried_in_order_and_all_failures_are_named() {
        let (a, b) = (dead_port(), dead_port());
        let mut cfg = LdapConfig::new(format!("ldaps://127.0.0.1:{a}"), "cn=x", "pw", "DC=x");
        cfg.fallback_urls = vec![format!("ldaps://127.0.0.1:{b}")];
        cfg.timeout = std::time::Duration::from_secs(2);
        let err = pick_dc(&cfg).await.unwrap_err();
        let LdapError::NoDcAnswered(all) = &err else {
            panic!("{err}")
        };
        assert_eq!(all.len(), 2);
        let text = err.to_string();
        let (pa, pb) = (
            text.find(&format!(":{a}")).unwrap(),
            text.find(&format!(":{b}")).unwrap(),
        );
        assert!(pa < pb, "{text}");
    }

    #[tokio::test]
    async fn a_configuration_error_is_not_retried_elsewhere() {
        let mut cfg = LdapConfig::new("ldaps://127.0.0.1:1", "cn=x", "", "DC=x");
        cfg.fallback_urls = vec!["ldaps://127.0.0.1:2".into()];
        let err = pick_dc(&cfg).await.unwrap_err();
        assert!(matches!(err, LdapError::Config(_)), "{err}");
    }
}
