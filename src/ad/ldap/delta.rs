//! Delta reads by uSNChanged polling (the per-DC change counter), with tombstones read
//! under the show-deleted control.
//!
//! Why not DirSync: Samba ignores its size bound, cannot combine it with paging, and it
//! needs replication rights; uSNChanged polling works with read rights on AD and Samba.
//! USNs are local to one DC database, so the watermark carries that database's
//! invocationId and a change of it demands a full read.

use super::connect::Session;
use super::paged::{PagedSearch, show_deleted_control};
use super::read::{collect_objects, read_root_dse, requested_attributes};
use super::{DeltaRead, LdapConfig, LdapError, ReadRequest, Tombstone, Watermark, filter};
use crate::model::dn::escape_value;
use crate::model::{Dn, ObjectGuid, ObjectKind};

/// The invocationId of the DC's database, from its NTDS Settings object (`dsServiceName`).
async fn invocation_id(s: &mut Session, ds_service_name: &str) -> Result<ObjectGuid, LdapError> {
    let during = "reading the DC's invocationId";
    let attrs = vec!["invocationId".to_string()];
    let protocol = |server: &str, reason: String| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason,
    };
    if ds_service_name.is_empty() {
        return Err(protocol(
            s.server(),
            "the rootDSE has no dsServiceName".into(),
        ));
    }
    let e = s
        .base(during, ds_service_name, &attrs, Vec::new())
        .await?
        .ok_or_else(|| protocol(s.server(), format!("{ds_service_name} not found")))?;
    let bytes = e
        .get("invocationId")
        .and_then(|v| v.first())
        .ok_or_else(|| protocol(s.server(), "invocationId missing".into()))?;
    ObjectGuid::from_bytes(bytes).map_err(|err| protocol(s.server(), err.to_string()))
}

/// Reads the DC's current watermark without reading objects (e.g. right after a full
/// read that was taken from a snapshot of another source).
pub async fn read_watermark(cfg: &LdapConfig) -> Result<Watermark, LdapError> {
    let mut s = Session::open(cfg).await?;
    let root = read_root_dse(&mut s).await?;
    let invocation_id = invocation_id(&mut s, &root.ds_service_name).await?;
    s.close().await;
    Ok(Watermark {
        invocation_id,
        highest_usn: root.highest_usn,
    })
}

/// Rebuilds the DN an object had before deletion: its last RDN (the tombstone's leaf
/// value up to the `\nDEL:` marker, or msDS-LastKnownRDN) under lastKnownParent.
fn former_dn(tombstone_dn: &Dn, last_known_rdn: Option<&str>, parent: Option<&Dn>) -> Option<Dn> {
    let parent = parent?;
    let (attr, value) = tombstone_dn.rdns().into_iter().next()?;
    let name = match last_known_rdn {
        Some(n) if !n.is_empty() => n,
        _ => value.split('\n').next()?,
    };
    Dn::parse(&format!(
        "{}={},{}",
        attr.to_ascii_uppercase(),
        escape_value(name),
        parent.as_str()
    ))
    .ok()
}

/// Everything that changed since `since`: changed objects under the base DN (complete,
/// with ranges followed), tombstones of objects deleted from under it, and changed
/// objects now outside it.
///
/// Fails with [`LdapError::FullReadRequired`] when the DC's invocationId differs from the
/// watermark's (restore, rebuild, another DC) or its USN went backwards.
///
/// Group membership lost through a deletion is not reported as a group change (Samba
/// does not bump the group's uSNChanged): see [`Tombstone`] for how to derive it.
pub async fn read_delta(
    cfg: &LdapConfig,
    req: &ReadRequest,
    since: &Watermark,
) -> Result<DeltaRead, LdapError> {
    let base_dn =
        Dn::parse(&cfg.base_dn).map_err(|e| LdapError::Config(format!("base_dn: {e}")))?;
    let mut s = Session::open(cfg).await?;
    let root = read_root_dse(&mut s).await?;
    let inv = invocation_id(&mut s, &root.ds_service_name).await?;
    if inv != since.invocation_id {
        return Err(LdapError::FullReadRequired {
            server: s.server().to_string(),
            reason: format!(
                "the DC's invocationId changed from {} to {inv} (restored, rebuilt, or another DC)",
                since.invocation_id
            ),
        });
    }
    if root.highest_usn < since.highest_usn {
        return Err(LdapError::FullReadRequired {
            server: s.server().to_string(),
            reason: format!(
                "highestCommittedUSN {} is below the watermark {}",
                root.highest_usn, since.highest_usn
            ),
        });
    }
    let new_watermark = Watermark {
        invocation_id: inv,
        highest_usn: root.highest_usn,
    };

    let changed = collect_objects(
        &mut s,
        PagedSearch::new(
            format!(
                "reading changes under {} since USN {}",
                cfg.base_dn, since.highest_usn
            ),
            cfg.base_dn.clone(),
            filter::changed_since(since.highest_usn),
            requested_attributes(req),
            cfg.page_size,
        ),
    )
    .await?;

    let nc = if root.default_naming_context.is_empty() {
        cfg.base_dn.clone()
    } else {
        root.default_naming_context.clone()
    };
    let nc_dn = Dn::parse(&nc).map_err(|e| LdapError::Protocol {
        server: s.server().to_string(),
        during: "reading the rootDSE".into(),
        reason: e.to_string(),
    })?;

    let mut moved_out = Vec::new();
    if nc_dn != base_dn {
        let mut search = PagedSearch::new(
            format!(
                "reading changes outside {} since USN {}",
                cfg.base_dn, since.highest_usn
            ),
            nc.clone(),
            filter::changed_since(since.highest_usn),
            vec!["objectGUID".to_string(), "objectClass".to_string()],
            cfg.page_size,
        );
        while let Some(page) = search.next_page(&mut s).await? {
            for e in page {
                let o = super::read::to_object(s.server(), &search.during, e)?;
                if !o.dn.is_within(&base_dn) {
                    moved_out.push((o.guid, o.dn));
                }
            }
        }
    }

    let mut deleted = Vec::new();
    let mut search = PagedSearch::new(
        format!("reading tombstones since USN {}", since.highest_usn),
        nc,
        filter::deleted_since(since.highest_usn),
        [
            "objectGUID",
            "lastKnownParent",
            "msDS-LastKnownRDN",
            "uSNChanged",
            "objectClass",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect(),
        cfg.page_size,
    );
    search.extra_controls.push(show_deleted_control());
    while let Some(page) = search.next_page(&mut s).await? {
        for e in page {
            let protocol = |reason: String| LdapError::Protocol {
                server: s.server().to_string(),
                during: search.during.clone(),
                reason,
            };
            let dn = Dn::parse(&e.dn).map_err(|err| protocol(err.to_string()))?;
            let guid_bytes = e
                .get("objectGUID")
                .and_then(|v| v.first())
                .ok_or_else(|| protocol(format!("{dn}: tombstone without objectGUID")))?;
            let guid =
                ObjectGuid::from_bytes(guid_bytes).map_err(|err| protocol(err.to_string()))?;
            let last_known_parent = match e.text("lastKnownParent") {
                Some(p) => Some(Dn::parse(p).map_err(|err| protocol(err.to_string()))?),
                None => None,
            };
            let former = former_dn(&dn, e.text("msDS-LastKnownRDN"), last_known_parent.as_ref());
            if let Some(f) = &former
                && !f.is_within(&base_dn)
            {
                continue;
            }
            let kind = ObjectKind::from_object_classes(
                e.get("objectClass")
                    .into_iter()
                    .flatten()
                    .filter_map(|v| std::str::from_utf8(v).ok()),
            );
            let usn = e.text("uSNChanged").and_then(|t| t.trim().parse().ok());
            deleted.push(Tombstone {
                guid,
                last_known_parent,
                former_dn: former,
                kind,
                usn,
            });
        }
    }
    let server = s.server().to_string();
    s.close().await;
    tracing::info!(
        server = %server,
        since = since.highest_usn,
        to = new_watermark.highest_usn,
        changed = changed.len(),
        deleted = deleted.len(),
        moved_out = moved_out.len(),
        "delta LDAP read complete"
    );
    Ok(DeltaRead {
        changed,
        deleted,
        moved_out,
        new_watermark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn former_dn_from_tombstone_name() {
        let t = Dn::parse(r"CN=Smith\, John\0ADEL:0d0a7c3e-1111-2222-3333-444455556666,CN=Deleted Objects,DC=corp").unwrap();
        let parent = Dn::parse("OU=Sales,OU=Staff,DC=corp").unwrap();
        let f = former_dn(&t, None, Some(&parent)).unwrap();
        assert_eq!(
            f,
            Dn::parse(r"CN=Smith\, John,OU=Sales,OU=Staff,DC=corp").unwrap()
        );
        let g = former_dn(&t, Some("Renamed"), Some(&parent)).unwrap();
        assert_eq!(g.leaf_value().as_deref(), Some("Renamed"));
        assert!(former_dn(&t, None, None).is_none());
    }
}
