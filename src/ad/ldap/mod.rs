//! Live Active Directory reader over LDAP (ldap3 + rustls).
//!
//! What it guarantees, because the planner turns "absent from the read" into deletions:
//!
//! * **All or nothing.** Any LDAP error, a size or admin limit, a timeout or a lost
//!   connection anywhere in a read fails the whole read with [`LdapError`]; a partial
//!   [`SourceSnapshot`] is never returned (DESIGN.md §4, source-failure guard).
//! * **Encrypted binds.** `ldaps://` or `ldap://` + StartTLS, verified against the system
//!   roots or a given CA file. Plain `ldap://` is refused unless `allow_insecure` is set.
//! * **Raw values.** Every attribute value is kept as the bytes LDAP returned, so binary
//!   attributes (objectGUID, objectSid) survive and the anchor is base64 of the real bytes.
//! * **Complete multi-valued attributes.** Ranged values (`member;range=0-1499`) are
//!   followed to the end with base searches.
//!
//! Entry points: [`pick_dc`] (which of a domain's DCs answers), [`read_full`],
//! [`read_delta`], [`resolve_dns`], [`resolve_guids`], [`members_in_chain`],
//! [`read_watermark`], [`read_tombstone_lifetime`]; and [`watch_changes`], which keeps
//! change notification searches open (failing over between the DCs too).

mod connect;
mod delta;
mod entry;
mod failover;
mod filter;
mod notify;
mod paged;
mod ranged;
mod read;
mod resolve;
mod tls;
mod tombstone_lifetime;

use crate::model::{Dn, ObjectGuid, ObjectKind, SourceObject};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use delta::{read_delta, read_watermark};
pub use failover::pick_dc;
pub use filter::escape_filter_value;
pub use notify::{
    AdChange, CHANGE_NOTIFICATION_OID, DEFAULT_MAX_NOTIFICATIONS_PER_CONNECTION, WatchOptions,
    WatchState, supports_change_notifications, watch_changes, watch_changes_with,
};
pub use read::read_full;

/// What a full read asks the server for under the base DN: the search filter and the
/// attribute list (the caller's, then [`ALWAYS_READ`]). For comparisons with other
/// clients: `scripts/bench.sh` gives `ldapsearch` the same query.
pub fn full_read_query(req: &ReadRequest) -> (&'static str, Vec<String>) {
    (filter::OBJECTS, read::requested_attributes(req))
}
pub use resolve::{members_in_chain, resolve_dns, resolve_guids};
pub use tombstone_lifetime::{DEFAULT_TOMBSTONE_LIFETIME_DAYS, read_tombstone_lifetime};

/// The paged-results page size AD uses as its default MaxPageSize: asking for more is
/// silently capped by AD, asking for less only costs round trips.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;

/// Attributes every read requests on top of the caller's list: identity (objectGUID,
/// objectSid), classification (objectClass), change tracking (uSNChanged), scoping and
/// safety (userAccountControl, member, isCriticalSystemObject, adminCount) and naming
/// (sAMAccountName, userPrincipalName, cn, name).
///
/// Not `memberOf`: group membership is taken from the groups' `member` (nested scope
/// and licence rules walk it), and the back link would repeat every membership on every
/// user (500,000 DNs for 100,000 users). A template or filter that reads `memberOf`
/// asks for it through the policy's attribute list.
pub const ALWAYS_READ: &[&str] = &[
    "objectGUID",
    "objectSid",
    "objectClass",
    "uSNChanged",
    "userAccountControl",
    "member",
    "isCriticalSystemObject",
    "adminCount",
    "sAMAccountName",
    "userPrincipalName",
    "cn",
    "name",
];

/// How to reach and authenticate to a domain controller.
///
/// `password` arrives already resolved (from a file or the environment) and is never
/// logged: `Debug` masks it and no error message contains it.
#[derive(Clone)]
pub struct LdapConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]` (StartTLS, or plain with `allow_insecure`).
    pub url: String,
    /// Further DCs of the same domain, tried in order after `url` when it cannot be
    /// connected or bound to ([`pick_dc`], the change watcher). Reads use `url` only:
    /// pick the DC first, so one read never mixes two DCs' USNs.
    pub fallback_urls: Vec<String>,
    /// DN (or UPN / DOMAIN\user, which AD also accepts) for the simple bind.
    pub bind_dn: String,
    /// The bind password.
    pub password: String,
    /// Where the read starts; usually the domain's naming context.
    pub base_dn: String,
    /// A PEM file with the CA(s) that issued the DC's certificate. `None` trusts the
    /// system roots only.
    pub ca_file: Option<PathBuf>,
    /// Permits plain, unencrypted `ldap://` (lab use only: the password crosses the
    /// network in clear text).
    pub allow_insecure: bool,
    /// Bounds connecting, binding and the wait for every single server reply.
    pub timeout: Duration,
    /// Paged-results page size.
    pub page_size: u32,
}

impl LdapConfig {
    /// A config with the defaults: no CA file, TLS required, 30 s timeout, pages of 1000.
    pub fn new(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        password: impl Into<String>,
        base_dn: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            fallback_urls: Vec::new(),
            bind_dn: bind_dn.into(),
            password: password.into(),
            base_dn: base_dn.into(),
            ca_file: None,
            allow_insecure: false,
            timeout: Duration::from_secs(30),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("fallback_urls", &self.fallback_urls)
            .field("bind_dn", &self.bind_dn)
            .field("password", &"***")
            .field("base_dn", &self.base_dn)
            .field("ca_file", &self.ca_file)
            .field("allow_insecure", &self.allow_insecure)
            .field("timeout", &self.timeout)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// Why the policy's `source` section cannot become an [`LdapConfig`].
#[derive(Debug, thiserror::Error)]
pub enum SourceConfigError {
    #[error(
        "the policy has no `source` section: give --source-ldif FILE or add source: {{url, bindDn, passwordFrom, baseDn}}"
    )]
    Missing,
    #[error("the policy has {0} sources: read each with LdapConfig::for_source")]
    Several(usize),
    #[error("passwordFrom of source {name}: {error}")]
    Secret {
        name: String,
        error: crate::secrets::SecretError,
    },
}

impl LdapConfig {
    /// The connection of the policy's one source (`source:`, or `sources:` of one), its
    /// password resolved from the reference (`env:`/`file:`) it names. A policy with
    /// several sources is refused: read each with [`LdapConfig::for_source`].
    pub fn for_policy(policy: &crate::policy::LoadedPolicy) -> Result<Self, SourceConfigError> {
        match policy.sources.as_slice() {
            [] => Err(SourceConfigError::Missing),
            [one] => Self::for_source(one),
            many => Err(SourceConfigError::Several(many.len())),
        }
    }

    /// The connection a policy source describes: its first DC as `url`, the others as
    /// `fallback_urls`, the password resolved from its reference.
    pub fn for_source(
        src: &crate::policy::sources::CompiledSource,
    ) -> Result<Self, SourceConfigError> {
        let password = crate::secrets::resolve(&src.password_from).map_err(|error| {
            SourceConfigError::Secret {
                name: src.name.clone(),
                error,
            }
        })?;
        let mut cfg = LdapConfig::new(
            src.urls.first().map(String::as_str).unwrap_or_default(),
            &src.bind_dn,
            password,
            src.base_dn.as_str(),
        );
        cfg.fallback_urls = src.urls.iter().skip(1).cloned().collect();
        cfg.ca_file = src.ca_file.as_ref().map(Into::into);
        cfg.allow_insecure = src.allow_insecure;
        if let Some(t) = src.timeout {
            cfg.timeout = t;
        }
        Ok(cfg)
    }
}

/// What a read asks for beyond [`ALWAYS_READ`].
///
/// An attribute may carry an explicit range option (`member;range=0-99`): the first
/// window is then requested that way and the rest is followed window by window, instead
/// of letting the server pick (useful against servers that never force ranges).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadRequest {
    pub attributes: Vec<String>,
}

/// Where a delta read resumes: the USN high-water mark of one specific DC database.
///
/// USNs are per DC and per database instance; `invocation_id` (from the DC's NTDS
/// Settings object) changes when the DC is restored from backup or rebuilt, which makes
/// the USN meaningless: the next read must then be a full read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub invocation_id: ObjectGuid,
    pub highest_usn: u64,
}

/// A deleted object, as its tombstone in `CN=Deleted Objects` tells it.
///
/// Membership: AD and Samba strip a deleted object's links from its groups, but Samba does
/// not bump those groups' `uSNChanged`, so a delta read does not return them. A caller must
/// derive the lost memberships from the tombstone itself: remove `guid` (or `former_dn`)
/// from every group of its last snapshot that listed it as a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub guid: ObjectGuid,
    /// The container the object lived in when it was deleted (`lastKnownParent`).
    pub last_known_parent: Option<Dn>,
    /// The DN before deletion, rebuilt from the tombstone's name and `lastKnownParent`.
    pub former_dn: Option<Dn>,
    pub kind: ObjectKind,
    pub usn: Option<u64>,
}

/// The outcome of [`read_delta`]: everything that changed since a [`Watermark`].
#[derive(Clone, Debug)]
pub struct DeltaRead {
    /// Objects under the base DN created, modified, moved or renamed since the watermark,
    /// read completely (all requested attributes, not only the changed ones).
    pub changed: Vec<SourceObject>,
    /// Objects deleted since the watermark whose former DN was under the base DN.
    pub deleted: Vec<Tombstone>,
    /// Objects changed since the watermark that now sit outside the base DN (moved out of
    /// scope): (GUID, current DN). Only searched when the base DN is below the naming
    /// context root.
    pub moved_out: Vec<(ObjectGuid, Dn)>,
    /// Pass this to the next [`read_delta`]. It was read *before* the changes were, so a
    /// change racing with the read is seen again next time rather than lost.
    pub new_watermark: Watermark,
}

/// Why a read failed. Messages name the server and what was being done, never the password.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("invalid LDAP configuration: {0}")]
    Config(String),
    #[error("cannot use CA file {}: {reason}", path.display())]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS certificate verification failed for {server} (trusted: {trust}): {reason}")]
    TlsVerification {
        server: String,
        trust: String,
        reason: String,
    },
    #[error("TLS handshake with {server} failed: {reason}")]
    Tls { server: String, reason: String },
    #[error("cannot connect to {server}: {reason}")]
    Connect { server: String, reason: String },
    #[error("bind to {server} as {bind_dn} failed: {reason} (LDAP result {rc})")]
    BindFailed {
        server: String,
        bind_dn: String,
        rc: u32,
        reason: String,
    },
    #[error("timed out after {after:?} on {server} while {during}")]
    Timeout {
        server: String,
        during: String,
        after: Duration,
    },
    #[error("connection to {server} lost while {during}: {reason}")]
    ConnectionLost {
        server: String,
        during: String,
        reason: String,
    },
    #[error("{server} hit a size or administrative limit while {during}; the read is incomplete")]
    SizeLimitExceeded { server: String, during: String },
    #[error("{server} returned LDAP result {rc} while {during}: {message}")]
    Operation {
        server: String,
        during: String,
        rc: u32,
        message: String,
    },
    #[error("malformed reply from {server} while {during}: {reason}")]
    Protocol {
        server: String,
        during: String,
        reason: String,
    },
    #[error("a full read of {server} is required: {reason}")]
    FullReadRequired { server: String, reason: String },
    /// Every DC of a source failed to connect or bind (each error, in the order tried).
    #[error("no domain controller answered: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoDcAnswered(Vec<LdapError>),
}

impl LdapError {
    /// True for errors that say "start over with a full read" rather than "try later".
    pub fn requires_full_read(&self) -> bool {
        matches!(self, LdapError::FullReadRequired { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str, password_file: &std::path::Path) -> crate::policy::LoadedPolicy {
        let text = format!("apiVersion: ad2entra/v1\n{yaml}")
            .replace("PWFILE", &password_file.display().to_string());
        crate::policy::load(
            "p.yaml",
            &[crate::policy::PolicyFile {
                name: "p.yaml".into(),
                text,
            }],
        )
        .unwrap()
    }

    #[test]
    fn a_source_becomes_its_first_dc_with_the_others_as_fallbacks() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let entry = |name: &str, base: &str| {
            format!(
                "  - {{name: {name}, urls: [ldaps://a.{name}, ldaps://b.{name}], bindDn: 'CN=x,{base}', passwordFrom: 'file:PWFILE', baseDn: '{base}', timeout: 5s}}\n"
            )
        };
        let two = policy(
            &format!(
                "sources:\n{}{}",
                entry("corp", "DC=corp"),
                entry("branch", "DC=branch")
            ),
            &pw,
        );
        let cfg = LdapConfig::for_source(&two.sources[1]).unwrap();
        assert_eq!(cfg.url, "ldaps://a.branch");
        assert_eq!(cfg.fallback_urls, ["ldaps://b.branch"]);
        assert_eq!(cfg.password, "s3cret");
        assert_eq!(cfg.base_dn, "DC=branch");
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        // One connection for the whole policy only when it has one source.
        assert!(matches!(
            LdapConfig::for_policy(&two),
            Err(SourceConfigError::Several(2))
        ));
        let one = policy(&format!("sources:\n{}", entry("corp", "DC=corp")), &pw);
        assert_eq!(LdapConfig::for_policy(&one).unwrap().url, "ldaps://a.corp");
        assert!(matches!(
            LdapConfig::for_policy(&policy("", &pw)),
            Err(SourceConfigError::Missing)
        ));
        // A password that cannot be read names the source, not a password.
        std::fs::remove_file(&pw).unwrap();
        let err = LdapConfig::for_source(&one.sources[0]).unwrap_err();
        assert!(
            err.to_string().starts_with("passwordFrom of source corp:"),
            "{err}"
        );
    }
}
