//! How long the DC keeps what the delta reader needs to see a deletion.
//!
//! The delta reader finds deletions as tombstones under the show-deleted control. Once a
//! deleted object is garbage collected, a delta read from an older watermark cannot see
//! that it ever existed, so the object would stay in Entra: a watermark older than this
//! window must become a full read.
//!
//! The rules, from MS-ADTS's "tombstone lifetime and deleted-object lifetime" text under
//! 3.1.1.5.5 (learn.microsoft.com/openspecs/windows_protocols/ms-adts/1887de08-2a9e-4694-95e2-898cde411180)
//! and 6.1.1.2.4.1.1 (the Directory Service object):
//!
//! * `tombstoneLifetime` on `CN=Directory Service,CN=Windows NT,CN=Services,<config NC>`,
//!   in days; **60 days when it has no value**. Forests created since Windows Server 2003
//!   SP1 set it to 180, and so does Samba's provisioning.
//! * A value below 2 means 2 days on Windows Server 2008 R2 and later (60 on older DCs):
//!   the shorter one is used here, because a window that is too short only costs a full
//!   read, and one that is too long loses deletions.
//! * With the Recycle Bin enabled, a deleted object becomes a *recycled* object after
//!   `msDS-DeletedObjectLifetime` days (default: the tombstone lifetime, minimum 2), and a
//!   recycled object is no longer visible under the show-deleted control the delta reader
//!   uses. The window is therefore the shorter of the two lifetimes. Without the Recycle
//!   Bin the second attribute has no effect, and counting it anyway is again only
//!   conservative.

use super::connect::Session;
use super::{LdapConfig, LdapError};
use std::time::Duration;

/// Days of `tombstoneLifetime` when the attribute has no value (MS-ADTS 3.1.1.5.5).
pub const DEFAULT_TOMBSTONE_LIFETIME_DAYS: u32 = 60;
/// The smallest lifetime a DC honours; lower values are raised to it.
pub const MIN_LIFETIME_DAYS: u32 = 2;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The forest's deletion window: how long a deletion stays visible to the delta reader's
/// tombstone search. A delta watermark older than this must become a full read, because
/// the tombstones of deletions may already be gone.
///
/// Reads `tombstoneLifetime` and `msDS-DeletedObjectLifetime` from the configuration
/// NC's Directory Service object and applies the documented defaults (module docs).
/// Fails when the object does not exist (not Active Directory) or a value is not a number.
pub async fn read_tombstone_lifetime(cfg: &LdapConfig) -> Result<Duration, LdapError> {
    let during = "reading the tombstone lifetime";
    let mut s = Session::open(cfg).await?;
    let protocol = |server: &str, reason: String| LdapError::Protocol {
        server: server.to_string(),
        during: during.to_string(),
        reason,
    };
    let root = s
        .base(
            during,
            "",
            &["configurationNamingContext".to_string()],
            vec![],
        )
        .await?
        .ok_or_else(|| protocol(s.server(), "no rootDSE".into()))?;
    let config_nc = root
        .text("configurationNamingContext")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            protocol(
                s.server(),
                "the rootDSE has no configurationNamingContext (is this Active Directory?)".into(),
            )
        })?
        .to_string();
    let dn = format!("CN=Directory Service,CN=Windows NT,CN=Services,{config_nc}");
    let attrs = ["tombstoneLifetime", "msDS-DeletedObjectLifetime"].map(String::from);
    let entry = s
        .base(during, &dn, &attrs, vec![])
        .await?
        .ok_or_else(|| protocol(s.server(), format!("{dn} does not exist")))?;
    let days = lifetime_days(
        entry.text("tombstoneLifetime"),
        entry.text("msDS-DeletedObjectLifetime"),
    )
    .map_err(|reason| protocol(s.server(), reason))?;
    tracing::debug!(server = s.server(), days, "tombstone lifetime read");
    s.close().await;
    Ok(DAY * days)
}

/// The deletion window in days from the two attributes' raw values (`None`: no value).
fn lifetime_days(tombstone: Option<&str>, deleted_object: Option<&str>) -> Result<u32, String> {
    let parse = |name: &str, v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| format!("{name} is not a number: {v:?}"))
            .map(|d| d.clamp(i64::from(MIN_LIFETIME_DAYS), i64::from(u32::MAX)) as u32)
    };
    let tombstone = match tombstone {
        Some(v) => parse("tombstoneLifetime", v)?,
        None => DEFAULT_TOMBSTONE_LIFETIME_DAYS,
    };
    let deleted_object = match deleted_object {
        Some(v) => parse("msDS-DeletedObjectLifetime", v)?,
        None => tombstone,
    };
    Ok(tombstone.min(deleted_object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_attribute_means_the_documented_sixty_days() {
        assert_eq!(lifetime_days(None, None), Ok(60));
    }

    #[test]
    fn value_is_taken_in_days() {
        assert_eq!(lifetime_days(Some("180"), None), Ok(180));
        assert_eq!(lifetime_days(Some(" 365 "), None), Ok(365));
    }

    #[test]
    fn values_below_the_minimum_are_raised_to_two_days() {
        assert_eq!(lifetime_days(Some("1"), None), Ok(2));
        assert_eq!(lifetime_days(Some("0"), None), Ok(2));
        assert_eq!(lifetime_days(Some("-5"), None), Ok(2));
        assert_eq!(lifetime_days(Some("180"), Some("0")), Ok(2));
    }

    #[test]
    fn a_shorter_deleted_object_lifetime_wins() {
        // Recycle Bin: a deleted object turns into an invisible recycled one after 30 days.
        assert_eq!(lifetime_days(Some("180"), Some("30")), Ok(30));
        // A longer one does not extend the tombstone lifetime.
        assert_eq!(lifetime_days(Some("60"), Some("365")), Ok(60));
        assert_eq!(lifetime_days(None, Some("30")), Ok(30));
    }

    #[test]
    fn garbage_is_an_error_not_a_default() {
        assert!(lifetime_days(Some("forever"), None).is_err());
        assert!(lifetime_days(Some("180"), Some("")).is_err());
        assert!(lifetime_days(Some("99999999999999999999"), None).is_err());
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let days = lifetime_days(Some("4294967295"), None).unwrap();
        assert_eq!(days, u32::MAX);
        // Duration arithmetic stays finite for the largest value.
        let _ = DAY * days;
    }
}
