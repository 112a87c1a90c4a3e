//! The full read: rootDSE first (for the delta watermark), then every user, group, OU and
//! container under the base DN, page by page, with ranged attributes completed.

use super::connect::Session;
use super::entry::RawEntry;
use super::paged::PagedSearch;
use super::ranged::{complete_ranges, parse_range};
use super::{ALWAYS_READ, LdapConfig, LdapError, ReadRequest, filter};
use crate::model::{Dn, SourceObject, SourceSnapshot};

/// What the rootDSE says about the DC at the start of a read.
pub(super) struct RootDse {
    pub highest_usn: u64,
    pub ds_service_name: String,
    pub default_naming_context: String,
}

pub(super) async fn read_root_dse(s: &mut Session) -> Result<RootDse, LdapError> {
    let during = "reading the rootDSE";
    let attrs: Vec<String> = [
        "highestCommittedUSN",
        "dsServiceName",
        "defaultNamingContext",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let protocol = |server: &str, reason: &str| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason: reason.to_string(),
    };
    let e = s
        .base(during, "", &attrs, Vec::new())
        .await?
        .ok_or_else(|| protocol(s.server(), "no rootDSE"))?;
    let highest_usn = e
        .text("highestCommittedUSN")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            protocol(
                s.server(),
                "highestCommittedUSN missing or not a number (is this Active Directory?)",
            )
        })?;
    Ok(RootDse {
        highest_usn,
        ds_service_name: e.text("dsServiceName").unwrap_or_default().to_string(),
        default_naming_context: e
            .text("defaultNamingContext")
            .unwrap_or_default()
            .to_string(),
    })
}

/// The attribute list sent to the server: the caller's, then [`ALWAYS_READ`]. An
/// attribute the caller asked for with an explicit range option is not also requested
/// plainly (the server would return both).
pub(super) fn requested_attributes(req: &ReadRequest) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut push = |a: &str, out: &mut Vec<String>| {
        let a = a.trim();
        if a.is_empty() {
            return;
        }
        let base = match parse_range(a) {
            Ok(Some(r)) => r.base,
            _ => a.to_string(),
        }
        .to_ascii_lowercase();
        if !seen.contains(&base) {
            seen.push(base);
            out.push(a.to_string());
        }
    };
    for a in &req.attributes {
        push(a, &mut out);
    }
    for a in ALWAYS_READ {
        push(a, &mut out);
    }
    out
}

/// Turns a raw entry (ranges already completed) into a model object.
pub(super) fn to_object(
    server: &str,
    during: &str,
    e: RawEntry,
) -> Result<SourceObject, LdapError> {
    let protocol = |reason: String| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason,
    };
    let dn = Dn::parse(&e.dn).map_err(|err| protocol(err.to_string()))?;
    SourceObject::from_attrs(dn, e.attrs).map_err(protocol)
}

/// Runs a paged search to the end, completing ranged attributes after each page, and
/// converts every entry. Any failure fails the whole search.
pub(super) async fn collect_objects(
    s: &mut Session,
    mut search: PagedSearch,
) -> Result<Vec<SourceObject>, LdapError> {
    let mut objects = Vec::new();
    let mut pages = 0u32;
    while let Some(page) = search.next_page(s).await? {
        pages += 1;
        for mut e in page {
            complete_ranges(s, &mut e).await?;
            objects.push(to_object(s.server(), &search.during, e)?);
        }
        tracing::trace!(
            server = s.server(),
            pages,
            objects = objects.len(),
            "LDAP page read"
        );
    }
    Ok(objects)
}

/// Reads every user, group, OU and container under `cfg.base_dn`.
///
/// `highest_usn` in the snapshot is the DC's highestCommittedUSN read *before* the
/// objects, so a delta read from it can only repeat changes, never miss them. Any error
/// (including a size limit or a timeout) fails the read: no partial snapshot.
pub async fn read_full(cfg: &LdapConfig, req: &ReadRequest) -> Result<SourceSnapshot, LdapError> {
    let base_dn =
        Dn::parse(&cfg.base_dn).map_err(|e| LdapError::Config(format!("base_dn: {e}")))?;
    let mut s = Session::open(cfg).await?;
    let started = std::time::Instant::now();
    let root = read_root_dse(&mut s).await?;
    let search = PagedSearch::new(
        format!("reading objects under {}", cfg.base_dn),
        cfg.base_dn.clone(),
        filter::OBJECTS,
        requested_attributes(req),
        cfg.page_size,
    );
    let objects = collect_objects(&mut s, search).await?;
    let server = s.server().to_string();
    s.close().await;
    tracing::info!(
        server = %server,
        objects = objects.len(),
        highest_usn = root.highest_usn,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "full LDAP read complete"
    );
    Ok(SourceSnapshot {
        server,
        base_dn: Some(base_dn),
        highest_usn: Some(root.highest_usn),
        objects: objects.into_iter().map(std::sync::Arc::new).collect(),
        parts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_attributes_add_the_always_read_set_once() {
        let req = ReadRequest {
            attributes: vec!["displayName".into(), "MAIL".into(), "objectguid".into()],
        };
        let attrs = requested_attributes(&req);
        assert_eq!(&attrs[..3], &["displayName", "MAIL", "objectguid"]);
        assert_eq!(
            attrs
                .iter()
                .filter(|a| a.eq_ignore_ascii_case("objectGUID"))
                .count(),
            1
        );
        for a in ALWAYS_READ {
            assert!(
                attrs.iter().any(|x| x.eq_ignore_ascii_case(a)),
                "{a} missing"
            );
        }
    }

    #[test]
    fn explicit_range_replaces_the_plain_attribute() {
        let req = ReadRequest {
            attributes: vec!["member;range=0-99".into()],
        };
        let attrs = requested_attributes(&req);
        assert!(attrs.contains(&"member;range=0-99".to_string()));
        assert!(!attrs.iter().any(|a| a.eq_ignore_ascii_case("member")));
    }
}
