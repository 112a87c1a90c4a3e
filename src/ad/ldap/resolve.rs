//! Identity lookups used by scoping: DN → GUID (to pin include/exclude OUs by objectGUID
//! so a renamed OU does not look like "everything left scope"), GUID → current DN, and
//! transitive group membership evaluated by the DC.

use super::connect::Session;
use super::paged::PagedSearch;
use super::{LdapConfig, LdapError, filter};
use crate::model::{Dn, ObjectGuid};
use std::collections::BTreeMap;

fn guid_of(
    server: &str,
    during: &str,
    values: Option<&[Vec<u8>]>,
) -> Result<ObjectGuid, LdapError> {
    let bytes = values
        .and_then(|v| v.first())
        .ok_or_else(|| LdapError::Protocol {
            server: server.to_string(),
            during: during.to_string(),
            reason: "objectGUID missing".into(),
        })?;
    ObjectGuid::from_bytes(bytes).map_err(|e| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason: e.to_string(),
    })
}

fn parse_dn(server: &str, during: &str, dn: &str) -> Result<Dn, LdapError> {
    Dn::parse(dn).map_err(|e| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason: e.to_string(),
    })
}

/// Looks up each DN: `Some((objectGUID, DN as the server prints it now))`, or `None`
/// when no such object exists (a policy naming a vanished OU must stop the cycle, which
/// the caller decides).
pub async fn resolve_dns(
    cfg: &LdapConfig,
    dns: &[Dn],
) -> Result<BTreeMap<Dn, Option<(ObjectGuid, Dn)>>, LdapError> {
    let mut s = Session::open(cfg).await?;
    let attrs = vec!["objectGUID".to_string()];
    let mut out = BTreeMap::new();
    for dn in dns {
        let during = format!("resolving {dn}");
        let found = match s.base(&during, dn.as_str(), &attrs, Vec::new()).await? {
            None => None,
            Some(e) => {
                let guid = guid_of(s.server(), &during, e.get("objectGUID"))?;
                Some((guid, parse_dn(s.server(), &during, &e.dn)?))
            }
        };
        out.insert(dn.clone(), found);
    }
    s.close().await;
    Ok(out)
}

/// Finds the current DN of each objectGUID (base search on `<GUID=...>`, which AD and
/// Samba both accept), or `None` when the object no longer exists.
pub async fn resolve_guids(
    cfg: &LdapConfig,
    guids: &[ObjectGuid],
) -> Result<BTreeMap<ObjectGuid, Option<Dn>>, LdapError> {
    let mut s = Session::open(cfg).await?;
    let attrs = vec!["objectGUID".to_string()];
    let mut out = BTreeMap::new();
    for guid in guids {
        let during = format!("resolving objectGUID {guid}");
        let found = match s
            .base(&during, &format!("<GUID={guid}>"), &attrs, Vec::new())
            .await?
        {
            None => None,
            Some(e) => {
                let got = guid_of(s.server(), &during, e.get("objectGUID"))?;
                if got != *guid {
                    return Err(LdapError::Protocol {
                        server: s.server().to_string(),
                        during,
                        reason: format!("asked for {guid}, got {got}"),
                    });
                }
                Some(parse_dn(s.server(), &during, &e.dn)?)
            }
        };
        out.insert(*guid, found);
    }
    s.close().await;
    Ok(out)
}

/// Every object under the base DN that is a member of `group_dn`, directly or through
/// nested groups (LDAP_MATCHING_RULE_IN_CHAIN), so memberOf scoping sees nesting the way
/// the DC does. Nested groups themselves are included.
pub async fn members_in_chain(cfg: &LdapConfig, group_dn: &Dn) -> Result<Vec<Dn>, LdapError> {
    let mut s = Session::open(cfg).await?;
    let during = format!("expanding the members of {group_dn}");
    let mut search = PagedSearch::new(
        during.clone(),
        cfg.base_dn.clone(),
        filter::member_in_chain(group_dn.as_str()),
        vec!["1.1".to_string()],
        cfg.page_size,
    );
    let mut out = Vec::new();
    while let Some(page) = search.next_page(&mut s).await? {
        for e in page {
            out.push(parse_dn(s.server(), &during, &e.dn)?);
        }
    }
    s.close().await;
    Ok(out)
}
