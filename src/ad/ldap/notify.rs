//! Watching AD for changes with the change notification control, the way a Kubernetes
//! controller watches its API: the reconciler turns each pushed change into a debounced
//! delta cycle instead of waiting for the next interval.
//!
//! # The rules (Microsoft's documentation)
//!
//! From "Change Notifications in Active Directory Domain Services" (Win32 AD docs),
//! "LDAP_SERVER_NOTIFICATION_OID" (LDAP docs) and MS-ADTS 3.1.1.3.4.1.9:
//!
//! * The control is `1.2.840.113556.1.4.528`, with no value; a DC that supports it lists it
//!   in the rootDSE's `supportedControl`. The search never completes: the DC sends one
//!   SearchResultEntry (with the search's messageID) each time an object in scope is
//!   written, carrying the *requested* attributes (not the changed ones), until the client
//!   abandons the search or the connection ends. Nothing is sent at registration.
//! * The filter must be `(objectClass=*)` (anything else: unwillingToPerform).
//! * Scopes base, one-level and subtree are allowed. Windows 2000 refused a subtree search
//!   whose base is not a naming-context root; Windows Server 2003 and later do not
//!   (MS-ADTS), although the Win32 page still advises against subtree searches for their
//!   server cost. Every change anywhere in the subtree is sent.
//! * At most `MaxNotificationPerConn` (LDAP policy, default 5) notification searches per
//!   connection.
//! * A deletion in scope is notified with the tombstone's new DN under `CN=Deleted
//!   Objects` and `isDeleted: TRUE`, without the show-deleted control. Moving or renaming
//!   an *ancestor* of the scope sends nothing. Objects the account cannot read send
//!   nothing.
//! * After a disconnect the client must register again and then read the current state,
//!   because changes made meanwhile were never sent. The search is not paged: it has no
//!   end to page towards.
//!
//! # What Samba 4.17 does (its source, and `tests/ldap_notify.rs` against the test DC)
//!
//! Samba has no push path: `dsdb_notification` re-runs the search as
//! `(uSNChanged>=last+1)` over the same base and scope and sends what it finds. The LDAP
//! server re-runs pending notification searches right after (100 µs) any successful
//! operation handled by the same server process, and otherwise every 5 s; measured here
//! from sending a modify to its notification, p50 7–23 ms and p95 11–55 ms over 20
//! modifies (`notification_latency_over_20_modifies`, several runs on a busy machine). A filter on objectClass, objectGUID,
//! distinguishedName or name presence is accepted; subtree works at any base; Abandon
//! removes the search; a connection with a pending notification search has no idle
//! timeout. The per-connection limit is read from the Default Query Policy when the
//! connection is accepted; a search beyond it ends at once with adminLimitExceeded
//! ("MaxNotificationPerConn reached"), **and so does a search re-run while the connection
//! holds the limit's number of searches** (the re-run counts itself): in effect Samba
//! keeps `MaxNotificationPerConn - 1` searches per connection alive. A search of a base
//! that does not exist ends at once with noSuchObject; one whose base is deleted later
//! ends the same way at its next re-run.
//! Observed, per kind of change, with a subtree search on an OU:
//!
//! | change | what arrives |
//! |---|---|
//! | attribute modified | the object, new `uSNChanged` |
//! | object created | the new object |
//! | moved or renamed within the scope, or into it | the object under its new DN |
//! | moved out of the scope | **nothing** (it no longer matches the re-run search) |
//! | member added to a group | the **group** only; the member's `memberOf` is a back link and its `uSNChanged` does not move |
//! | object deleted | **nothing** on the scope's search (the tombstone left the scope and is hidden without show-deleted) |
//!
//! # How the watcher copes
//!
//! * One subtree search per base (nested bases are dropped: the outer search covers them).
//!   Should a DC refuse one with unwillingToPerform (a subtree below a naming-context
//!   root, refused by Windows 2000 and, by the older LDAP docs, more), the watcher
//!   watches the naming contexts holding the bases instead and forwards only changes
//!   inside the bases and deletions from them.
//! * Deletions: one one-level search, with the show-deleted control, of each involved
//!   naming context's `CN=Deleted Objects` container. Samba sends the tombstone there; it
//!   is forwarded only when its `lastKnownParent` is inside a base (or unknown, or itself
//!   deleted), so deletions elsewhere in the domain do not cause cycles. Windows sends
//!   deletions on the scope's search as well; the duplicate is harmless. If a DC refuses
//!   this search, the watcher goes on without it.
//! * Moves out of the scope are not pushed by Samba: the delta reader's `moved_out` finds
//!   them at the next cycle that something else triggers.
//! * Searches are packed at most [`WatchOptions::max_searches_per_connection`] to a
//!   connection; when a search on a connection of n ends with adminLimitExceeded, the
//!   watcher reconnects at once with n-1 per connection (on Samba, 5 becomes 4 within
//!   seconds of the first change).
//! * A dead peer: a notification search has no reply to time out, so every connection
//!   reads the rootDSE each [`WatchOptions::ping_interval`], bounded by the config's
//!   timeout. A connection that was silently dropped is noticed within interval +
//!   timeout (20 s + 30 s by default), then the watcher reconnects.
//! * Any error, or the server ending a search, tears every connection down and starts
//!   over after an exponential backoff with jitter (capped). [`WatchState`] says where it
//!   is; `session` in [`WatchState::Connected`] grows with each registration, and the
//!   reconciler must run a delta cycle after each one, because changes made while the
//!   watcher was not registered were never sent.

use super::connect::{Session, map_error};
use super::entry::{RawEntry, parse_entry};
use super::paged::show_deleted_control;
use super::{LdapConfig, LdapError};
use crate::model::{Dn, ObjectGuid};
use chrono::{DateTime, Utc};
use ldap3::controls::RawControl;
use ldap3::{LdapResult, RequestId, Scope, SearchStream};
use serde::Serialize;
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// LDAP_SERVER_NOTIFICATION_OID.
pub const CHANGE_NOTIFICATION_OID: &str = "1.2.840.113556.1.4.528";
/// `MaxNotificationPerConn`'s default in AD's and Samba's Default Query Policy.
pub const DEFAULT_MAX_NOTIFICATIONS_PER_CONNECTION: usize = 5;

/// The only filter a notification search may carry.
const FILTER: &str = "(objectClass=*)";

/// One change pushed by the DC: as little as it sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdChange {
    /// The object's DN after the change (a tombstone's DN under `CN=Deleted Objects` for a
    /// deletion).
    pub dn: String,
    /// objectGUID, when the DC sent a well-formed one.
    pub guid: Option<ObjectGuid>,
    /// uSNChanged, when the DC sent a number.
    pub usn: Option<u64>,
}

/// Where the watcher is, for the reconciler's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum WatchState {
    /// Not connected yet.
    Starting,
    /// Every notification search is registered.
    Connected {
        server: String,
        /// 1 for the first registration, +1 for each re-registration. Changes made while
        /// the watcher was not registered were never sent: run a delta cycle when it grows.
        session: u64,
        since: DateTime<Utc>,
        /// Notification searches open (scope searches plus deletion searches).
        searches: usize,
        connections: usize,
        /// The most searches one connection carries (lowered when the DC refuses more).
        per_connection: usize,
        /// Whether the Deleted Objects containers are watched (see the module docs).
        deletions_watched: bool,
    },
    /// The last attempt failed; the next one starts at `retry_at`.
    Reconnecting {
        attempt: u32,
        last_error: String,
        retry_at: DateTime<Utc>,
    },
    /// The DC does not offer change notifications; asked again at `retry_at` (another DC
    /// may answer behind the same name). Only the interval triggers cycles meanwhile.
    Unsupported {
        server: String,
        reason: String,
        retry_at: DateTime<Utc>,
    },
    /// Cancelled, or the receiver of the changes is gone.
    Stopped,
}

/// Tuning of [`watch_changes_with`]; [`watch_changes`] uses the defaults.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// How often each connection reads the rootDSE to prove the peer is alive (each read
    /// bounded by the config's timeout). Default 20 s.
    pub ping_interval: Duration,
    /// First reconnect delay; doubles per failed attempt, with jitter. Default 1 s.
    pub backoff_base: Duration,
    /// Longest reconnect delay, and the delay before asking an unsupporting DC again.
    /// Default 60 s.
    pub backoff_cap: Duration,
    /// A registration that lasted this long resets the backoff. Default 60 s.
    pub stable_after: Duration,
    /// Searches per connection; lowered by itself when the DC's policy is lower.
    /// Default [`DEFAULT_MAX_NOTIFICATIONS_PER_CONNECTION`].
    pub max_searches_per_connection: usize,
    /// Watch the Deleted Objects containers too (needed on Samba to hear of deletions).
    /// Default true.
    pub watch_deletions: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(20),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            max_searches_per_connection: DEFAULT_MAX_NOTIFICATIONS_PER_CONNECTION,
            watch_deletions: true,
        }
    }
}

/// True when the DC advertises the change notification control in its rootDSE.
pub async fn supports_change_notifications(cfg: &LdapConfig) -> Result<bool, LdapError> {
    let mut s = Session::open(cfg).await?;
    let root = read_root(&mut s).await?;
    s.close().await;
    Ok(root.supports_notifications())
}

/// Keeps notification searches open over `bases` (see the module docs for the plan),
/// sending each change to `tx` and its state to `state`, with the default
/// [`WatchOptions`]. Returns when `cancel` fires or `tx`'s receiver is dropped; never
/// panics on server input.
pub async fn watch_changes(
    cfg: LdapConfig,
    bases: Vec<Dn>,
    tx: mpsc::Sender<AdChange>,
    state: watch::Sender<WatchState>,
    cancel: CancellationToken,
) {
    watch_changes_with(cfg, bases, WatchOptions::default(), tx, state, cancel).await
}

/// [`watch_changes`] with explicit tuning.
pub async fn watch_changes_with(
    cfg: LdapConfig,
    bases: Vec<Dn>,
    opts: WatchOptions,
    tx: mpsc::Sender<AdChange>,
    state: watch::Sender<WatchState>,
    cancel: CancellationToken,
) {
    let bases = minimal_bases(&bases);
    if bases.is_empty() {
        tracing::warn!("no base DN to watch for changes");
        state.send_replace(WatchState::Stopped);
        return;
    }
    let watcher = Watcher {
        cfg,
        bases,
        opts,
        tx,
        state,
        cancel,
    };
    watcher.run().await;
}

// ------------------------------------------------------------------------ planning

/// What one notification search watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SearchKind {
    /// A subtree of the sync scope.
    Scope,
    /// A whole naming context, for a DC that refuses subtree notifications below one;
    /// only changes inside the bases (and deletions from them) are forwarded.
    NamingContext,
    /// A naming context's Deleted Objects container, one level, with show-deleted.
    Deletions,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PlannedSearch {
    base: String,
    kind: SearchKind,
}

impl PlannedSearch {
    fn scope(&self) -> Scope {
        match self.kind {
            SearchKind::Scope | SearchKind::NamingContext => Scope::Subtree,
            SearchKind::Deletions => Scope::OneLevel,
        }
    }

    fn controls(&self) -> Vec<RawControl> {
        let notification = RawControl {
            ctype: CHANGE_NOTIFICATION_OID.to_string(),
            // Critical: a DC without it must refuse, not run an ordinary search that
            // returns the whole subtree and ends.
            crit: true,
            val: None,
        };
        match self.kind {
            SearchKind::Scope | SearchKind::NamingContext => vec![notification],
            SearchKind::Deletions => vec![notification, show_deleted_control()],
        }
    }

    /// The same for every kind: what [`AdChange`] carries, and what tells whether a
    /// tombstone concerns the bases.
    fn attributes(&self) -> Vec<String> {
        ["objectGUID", "uSNChanged", "isDeleted", "lastKnownParent"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// Whether an entry this search sent is to be forwarded.
    fn concerns(&self, e: &RawEntry, bases: &[Dn]) -> bool {
        match self.kind {
            SearchKind::Scope => true,
            SearchKind::Deletions => deletion_concerns(e, bases),
            SearchKind::NamingContext => {
                let tombstone = e
                    .text("isDeleted")
                    .is_some_and(|v| v.eq_ignore_ascii_case("TRUE"));
                if tombstone {
                    deletion_concerns(e, bases)
                } else {
                    Dn::parse(&e.dn).is_ok_and(|dn| bases.iter().any(|b| dn.is_within(b)))
                }
            }
        }
    }
}

/// The bases without duplicates and without those inside another base (a subtree search
/// of the outer one already covers them), in DN order.
fn minimal_bases(bases: &[Dn]) -> Vec<Dn> {
    let mut by_depth: Vec<&Dn> = bases.iter().collect();
    by_depth.sort_by_key(|d| d.rdn_count());
    let mut kept: Vec<Dn> = Vec::new();
    for b in by_depth {
        if !kept.iter().any(|k| b.is_within(k)) {
            kept.push(b.clone());
        }
    }
    kept.sort();
    kept
}

/// The naming context holding `dn`: the deepest of `ncs` it is within.
fn naming_context_of<'a>(dn: &Dn, ncs: &'a [Dn]) -> Option<&'a Dn> {
    ncs.iter()
        .filter(|nc| dn.is_within(nc))
        .max_by_key(|nc| nc.rdn_count())
}

/// One scope search per base (or, `from_roots`, one per naming context holding a base),
/// then one deletion search per naming context involved.
fn plan_searches(
    bases: &[Dn],
    ncs: &[Dn],
    watch_deletions: bool,
    from_roots: bool,
) -> Vec<PlannedSearch> {
    let mut plan: Vec<PlannedSearch> = if from_roots {
        let roots: BTreeSet<&Dn> = bases
            .iter()
            .map(|b| naming_context_of(b, ncs).unwrap_or(b))
            .collect();
        roots
            .into_iter()
            .map(|r| PlannedSearch {
                base: r.as_str().to_string(),
                kind: SearchKind::NamingContext,
            })
            .collect()
    } else {
        bases
            .iter()
            .map(|b| PlannedSearch {
                base: b.as_str().to_string(),
                kind: SearchKind::Scope,
            })
            .collect()
    };
    if watch_deletions {
        let involved: BTreeSet<&Dn> = bases
            .iter()
            .filter_map(|b| naming_context_of(b, ncs))
            .collect();
        plan.extend(involved.into_iter().map(|nc| PlannedSearch {
            base: format!("CN=Deleted Objects,{}", nc.as_str()),
            kind: SearchKind::Deletions,
        }));
    }
    plan
}

// ------------------------------------------------------------------ what arrives

fn change_from(e: &RawEntry) -> AdChange {
    AdChange {
        dn: e.dn.clone(),
        guid: e
            .get("objectGUID")
            .and_then(|v| v.first())
            .and_then(|b| ObjectGuid::from_bytes(b).ok()),
        usn: e.text("uSNChanged").and_then(|t| t.trim().parse().ok()),
    }
}

/// Whether a tombstone from a Deleted Objects search concerns the watched bases: its
/// `lastKnownParent` is inside one of them, or is itself deleted (a child of a deleted
/// OU), or is missing or unreadable (forwarding an extra change only costs a cycle).
fn deletion_concerns(e: &RawEntry, bases: &[Dn]) -> bool {
    let Some(parent) = e.text("lastKnownParent").and_then(|p| Dn::parse(p).ok()) else {
        return true;
    };
    bases.iter().any(|b| parent.is_within(b))
        || parent
            .rdns()
            .iter()
            .any(|(a, v)| a == "cn" && v.eq_ignore_ascii_case("Deleted Objects"))
        || parent.rdns().iter().any(|(_, v)| v.contains("\nDEL:"))
}

/// What ending a search with result code `rc` means for the watcher.
#[derive(Debug, PartialEq, Eq)]
enum EndAction {
    /// The DC does not do notifications.
    Unsupported,
    /// The DC allows fewer searches per connection: this many.
    Shrink(usize),
    /// Go on without watching Deleted Objects.
    DropDeletions,
    /// Watch whole naming contexts instead of the bases.
    FromRoots,
    /// Start over after a backoff.
    Reconnect,
}

/// `sharing` is how many notification searches its connection carries.
///
/// adminLimitExceeded is the per-connection limit: a DC refuses the search beyond
/// `MaxNotificationPerConn` at once, and Samba also ends a search when it re-runs it with
/// the limit's number of searches on the connection (it counts the re-run search itself).
/// Either way one search fewer per connection fits.
fn classify_end(kind: SearchKind, sharing: usize, rc: u32) -> EndAction {
    const ADMIN_LIMIT_EXCEEDED: u32 = 11;
    const UNAVAILABLE_CRITICAL_EXTENSION: u32 = 12;
    const NO_SUCH_OBJECT: u32 = 32;
    const INSUFFICIENT_ACCESS: u32 = 50;
    const UNWILLING_TO_PERFORM: u32 = 53;
    match (kind, rc) {
        (_, ADMIN_LIMIT_EXCEEDED) if sharing > 1 => EndAction::Shrink(sharing - 1),
        (SearchKind::Deletions, UNAVAILABLE_CRITICAL_EXTENSION)
        | (SearchKind::Deletions, NO_SUCH_OBJECT)
        | (SearchKind::Deletions, INSUFFICIENT_ACCESS)
        | (SearchKind::Deletions, UNWILLING_TO_PERFORM) => EndAction::DropDeletions,
        (SearchKind::Scope | SearchKind::NamingContext, UNAVAILABLE_CRITICAL_EXTENSION) => {
            EndAction::Unsupported
        }
        // Windows 2000 (and, by the older LDAP docs, more) refuses a subtree notification
        // search below a naming-context root.
        (SearchKind::Scope, UNWILLING_TO_PERFORM) => EndAction::FromRoots,
        _ => EndAction::Reconnect,
    }
}

/// Exponential backoff with jitter: uniform in [d/2, d] where d = base·2^(attempt-1),
/// capped at `cap`.
fn backoff_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    exp.min(cap).mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

// ----------------------------------------------------------------------- rootDSE

struct WatchRoot {
    controls: Vec<String>,
    naming_contexts: Vec<Dn>,
}

impl WatchRoot {
    fn supports_notifications(&self) -> bool {
        self.controls.iter().any(|c| c == CHANGE_NOTIFICATION_OID)
    }
}

async fn read_root(s: &mut Session) -> Result<WatchRoot, LdapError> {
    let during = "reading the rootDSE";
    let attrs = ["supportedControl", "namingContexts"].map(String::from);
    let e = s
        .base(during, "", &attrs, vec![])
        .await?
        .ok_or_else(|| LdapError::Protocol {
            server: s.server().to_string(),
            during: during.to_string(),
            reason: "no rootDSE".into(),
        })?;
    let texts = |name: &str| -> Vec<String> {
        e.get(name)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .map(|v| v.trim().to_string())
            .collect()
    };
    Ok(WatchRoot {
        controls: texts("supportedControl"),
        naming_contexts: texts("namingContexts")
            .iter()
            .filter_map(|nc| Dn::parse(nc).ok())
            .collect(),
    })
}

/// Proves the connection is alive with a rootDSE read (bounded by the config's timeout).
async fn ping(s: &mut Session) -> Result<(), LdapError> {
    s.base(
        "checking the notification connection",
        "",
        &["1.1".to_string()],
        vec![],
    )
    .await
    .map(|_| ())
}

// ----------------------------------------------------------------------- running

/// What a search's pump reports.
enum Event {
    Entry(RawEntry),
    Ended(LdapResult),
    Failed(ldap3::LdapError),
    Malformed(String),
}

struct Tagged {
    /// Index into [`Live::searches`].
    search: usize,
    event: Event,
}

/// Why a registration ended.
enum SessionEnd {
    /// Cancelled, or the receiver of the changes is gone.
    Stop,
    Unsupported(String),
    Shrink(usize),
    DropDeletions(String),
    FromRoots(String),
    Failed(String),
}

struct Registered {
    conn: usize,
    /// Searches on the same connection, this one included.
    sharing: usize,
    msgid: RequestId,
    search: PlannedSearch,
}

/// The connections of one registration and their open searches.
struct Live {
    /// The DC every session is connected to (the first of the config's URLs that
    /// answered: see `failover`).
    server: String,
    sessions: Vec<Session>,
    searches: Vec<Registered>,
    events: mpsc::Receiver<Tagged>,
    /// Events that arrived while registering, handled first.
    early: VecDeque<Tagged>,
    /// Dropping it aborts the pumps.
    _pumps: JoinSet<()>,
}

/// How a registration lays its searches out.
#[derive(Clone, Copy, Debug)]
struct Layout {
    per_conn: usize,
    deletions: bool,
    from_roots: bool,
}

struct Watcher {
    cfg: LdapConfig,
    bases: Vec<Dn>,
    opts: WatchOptions,
    tx: mpsc::Sender<AdChange>,
    state: watch::Sender<WatchState>,
    cancel: CancellationToken,
}

impl Watcher {
    async fn run(&self) {
        let mut per_conn = self.opts.max_searches_per_connection.max(1);
        let mut deletions = self.opts.watch_deletions;
        let mut from_roots = false;
        let mut attempt = 0u32;
        let mut session = 0u64;
        self.state.send_replace(WatchState::Starting);
        loop {
            let layout = Layout {
                per_conn,
                deletions,
                from_roots,
            };
            let (end, connected_at) = self.run_session(layout, session + 1).await;
            if let Some(at) = connected_at {
                session += 1;
                if at.elapsed() >= self.opts.stable_after {
                    attempt = 0;
                }
            }
            let delay = match end {
                SessionEnd::Stop => break,
                SessionEnd::Shrink(n) if n < per_conn => {
                    tracing::info!(
                        server = %self.cfg.url,
                        from = per_conn,
                        to = n,
                        "the DC allows fewer notification searches per connection"
                    );
                    per_conn = n;
                    Duration::ZERO
                }
                SessionEnd::DropDeletions(reason) if deletions => {
                    tracing::warn!(
                        server = %self.cfg.url,
                        %reason,
                        "watching without the Deleted Objects containers: deletions wait for the next cycle"
                    );
                    deletions = false;
                    Duration::ZERO
                }
                SessionEnd::FromRoots(reason) if !from_roots => {
                    tracing::warn!(
                        server = %self.cfg.url,
                        %reason,
                        "the DC refuses notifications below a naming context; watching whole naming contexts"
                    );
                    from_roots = true;
                    Duration::ZERO
                }
                SessionEnd::Unsupported(reason) => {
                    let delay = self.opts.backoff_cap;
                    tracing::warn!(server = %self.cfg.url, %reason, "no change notifications from this DC");
                    self.state.send_replace(WatchState::Unsupported {
                        server: self.cfg.url.clone(),
                        reason,
                        retry_at: at(delay),
                    });
                    delay
                }
                SessionEnd::Shrink(n) => self.retry_after_failure(
                    &mut attempt,
                    format!("the DC refused a notification search beyond {n} per connection"),
                ),
                SessionEnd::DropDeletions(error)
                | SessionEnd::FromRoots(error)
                | SessionEnd::Failed(error) => self.retry_after_failure(&mut attempt, error),
            };
            if !delay.is_zero() {
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
        }
        self.state.send_replace(WatchState::Stopped);
    }

    /// Counts a failed attempt, reports Reconnecting, and returns the backoff delay.
    fn retry_after_failure(&self, attempt: &mut u32, error: String) -> Duration {
        *attempt = attempt.saturating_add(1);
        let delay = backoff_delay(*attempt, self.opts.backoff_base, self.opts.backoff_cap);
        tracing::warn!(
            server = %self.cfg.url,
            attempt = *attempt,
            retry_in_ms = delay.as_millis() as u64,
            %error,
            "change notifications interrupted; reconnecting"
        );
        self.state.send_replace(WatchState::Reconnecting {
            attempt: *attempt,
            last_error: error,
            retry_at: at(delay),
        });
        delay
    }

    /// Registers every search, reports Connected, and serves until something ends it.
    /// Returns when it was connected, if it got that far.
    async fn run_session(&self, layout: Layout, session: u64) -> (SessionEnd, Option<Instant>) {
        let registered = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return (SessionEnd::Stop, None),
            r = self.register(layout) => r,
        };
        let mut live = match registered {
            Ok(live) => live,
            Err(end) => return (end, None),
        };
        let connected_at = Instant::now();
        let deletions_watched = live
            .searches
            .iter()
            .any(|r| r.search.kind == SearchKind::Deletions);
        tracing::info!(
            server = %live.server,
            session,
            searches = live.searches.len(),
            connections = live.sessions.len(),
            deletions_watched,
            "watching AD for changes"
        );
        self.state.send_replace(WatchState::Connected {
            server: live.server.clone(),
            session,
            since: Utc::now(),
            searches: live.searches.len(),
            connections: live.sessions.len(),
            per_connection: live.searches.iter().map(|r| r.sharing).max().unwrap_or(0),
            deletions_watched,
        });
        let end = self.serve(&mut live).await;
        close(live).await;
        (end, Some(connected_at))
    }

    async fn register(&self, layout: Layout) -> Result<Live, SessionEnd> {
        let failed = |e: LdapError| SessionEnd::Failed(e.to_string());
        // Another DC of the domain when the first does not answer; every connection of
        // this registration then goes to the DC that did.
        let (mut first, dc) = super::failover::open_first(&self.cfg)
            .await
            .map_err(failed)?;
        let root = read_root(&mut first).await.map_err(failed)?;
        if !root.supports_notifications() {
            return Err(SessionEnd::Unsupported(format!(
                "the rootDSE does not list {CHANGE_NOTIFICATION_OID} in supportedControl"
            )));
        }
        let plan = plan_searches(
            &self.bases,
            &root.naming_contexts,
            layout.deletions,
            layout.from_roots,
        );
        let groups: Vec<&[PlannedSearch]> = plan.chunks(layout.per_conn).collect();
        let mut sessions = vec![first];
        while sessions.len() < groups.len() {
            sessions.push(Session::open(&dc).await.map_err(failed)?);
        }
        let (ev_tx, events) = mpsc::channel(64);
        let mut pumps = JoinSet::new();
        let mut searches = Vec::with_capacity(plan.len());
        for (conn, group) in groups.iter().enumerate() {
            for search in group.iter() {
                let during = format!("registering change notifications on {}", search.base);
                let mut ldap = sessions[conn].handle();
                let mut stream: SearchStream<'static, String, Vec<String>> = ldap
                    .with_controls(search.controls())
                    .streaming_search(&search.base, search.scope(), FILTER, search.attributes())
                    .await
                    .map_err(|e| failed(map_error(&dc.url, &during, self.cfg.timeout, e)))?;
                let msgid = stream.ldap_handle().last_id();
                pumps.spawn(pump(stream, searches.len(), ev_tx.clone()));
                searches.push(Registered {
                    conn,
                    sharing: group.len(),
                    msgid,
                    search: search.clone(),
                });
            }
        }
        drop(ev_tx);
        // The DC answers a connection's requests in order: once a rootDSE read sent after
        // the searches is answered, a search the DC refused at once has been refused.
        for s in &mut sessions {
            ping(s).await.map_err(failed)?;
        }
        let mut live = Live {
            server: dc.url,
            sessions,
            searches,
            events,
            early: VecDeque::new(),
            _pumps: pumps,
        };
        // Let the pumps hand over what the DC sent before the ping's answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(t) = live.events.try_recv() {
            if !matches!(t.event, Event::Entry(_)) {
                let end = self.end_of(&live, t);
                close(live).await;
                return Err(end);
            }
            live.early.push_back(t);
        }
        Ok(live)
    }

    async fn serve(&self, live: &mut Live) -> SessionEnd {
        let period = self.opts.ping_interval.max(Duration::from_millis(10));
        let mut pings = tokio::time::interval_at(Instant::now() + period, period);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let tagged = match live.early.pop_front() {
                Some(t) => t,
                None => tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => return SessionEnd::Stop,
                    ev = live.events.recv() => match ev {
                        Some(t) => t,
                        None => return SessionEnd::Failed("every notification search ended".into()),
                    },
                    _ = pings.tick() => {
                        let all = async {
                            for s in &mut live.sessions {
                                ping(s).await?;
                            }
                            Ok::<(), LdapError>(())
                        };
                        tokio::select! {
                            biased;
                            _ = self.cancel.cancelled() => return SessionEnd::Stop,
                            r = all => if let Err(e) = r {
                                return SessionEnd::Failed(e.to_string());
                            },
                        }
                        continue;
                    }
                },
            };
            let Event::Entry(entry) = &tagged.event else {
                return self.end_of(live, tagged);
            };
            let search = &live.searches[tagged.search].search;
            if !search.concerns(entry, &self.bases) {
                tracing::trace!(dn = %entry.dn, "change outside the watched bases");
                continue;
            }
            let change = change_from(entry);
            tracing::debug!(dn = %change.dn, usn = ?change.usn, "AD change notified");
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return SessionEnd::Stop,
                sent = self.tx.send(change) => if sent.is_err() {
                    tracing::debug!("the receiver of AD changes is gone; stopping the watcher");
                    return SessionEnd::Stop;
                },
            }
        }
    }

    /// What a non-entry event means.
    fn end_of(&self, live: &Live, t: Tagged) -> SessionEnd {
        let reg = &live.searches[t.search];
        let base = &reg.search.base;
        let during = format!("watching {base} for changes");
        match t.event {
            Event::Entry(_) => SessionEnd::Failed(format!("{during}: unexpected entry")),
            Event::Malformed(reason) => SessionEnd::Failed(
                LdapError::Protocol {
                    server: live.server.clone(),
                    during,
                    reason,
                }
                .to_string(),
            ),
            Event::Failed(e) => SessionEnd::Failed(
                map_error(&live.server, &during, self.cfg.timeout, e).to_string(),
            ),
            Event::Ended(res) => {
                let text = res.text.trim().trim_end_matches('\0');
                let message = format!(
                    "{} ended the notification search of {base}: LDAP result {}{}{}",
                    live.server,
                    res.rc,
                    if text.is_empty() { "" } else { ", " },
                    text
                );
                match classify_end(reg.search.kind, reg.sharing, res.rc) {
                    EndAction::Unsupported => SessionEnd::Unsupported(message),
                    EndAction::Shrink(n) => SessionEnd::Shrink(n),
                    EndAction::DropDeletions => SessionEnd::DropDeletions(message),
                    EndAction::FromRoots => SessionEnd::FromRoots(message),
                    EndAction::Reconnect => SessionEnd::Failed(message),
                }
            }
        }
    }
}

/// Forwards one search's results until it ends.
async fn pump(
    mut stream: SearchStream<'static, String, Vec<String>>,
    search: usize,
    tx: mpsc::Sender<Tagged>,
) {
    loop {
        let (event, last) = match stream.next().await {
            Ok(Some(item)) if item.is_ref() || item.is_intermediate() => continue,
            Ok(Some(item)) => match parse_entry(item.0) {
                Ok(e) => (Event::Entry(e), false),
                Err(reason) => (Event::Malformed(reason), true),
            },
            Ok(None) => (Event::Ended(stream.finish().await), true),
            Err(e) => (Event::Failed(e), true),
        };
        if tx.send(Tagged { search, event }).await.is_err() || last {
            return;
        }
    }
}

/// Abandons the searches and unbinds, politely but briefly: the connections close anyway
/// when dropped, and the DC ends their searches then.
async fn close(live: Live) {
    let Live {
        sessions, searches, ..
    } = live;
    let polite = async {
        for r in &searches {
            if let Some(s) = sessions.get(r.conn) {
                let _ = s.handle().abandon(r.msgid).await;
            }
        }
        for s in sessions {
            s.close().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), polite).await;
}

/// The wall-clock time `delay` from now.
fn at(delay: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap()
    }

    fn dns(list: &[&str]) -> Vec<Dn> {
        list.iter().map(|s| dn(s)).collect()
    }

    fn entry(dn: &str, attrs: &[(&str, &[u8])]) -> RawEntry {
        RawEntry {
            dn: dn.to_string(),
            attrs: attrs
                .iter()
                .map(|(n, v)| (n.to_string(), vec![v.to_vec()]))
                .collect(),
        }
    }

    #[test]
    fn nested_and_duplicate_bases_collapse_into_the_outer_one() {
        let bases = dns(&[
            "OU=Sales,OU=Staff,DC=corp",
            "OU=Staff,DC=corp",
            "ou=staff,dc=CORP",
            "OU=Groups,DC=corp",
            "OU=Archive,OU=Groups,DC=corp",
        ]);
        assert_eq!(
            minimal_bases(&bases),
            dns(&["OU=Groups,DC=corp", "OU=Staff,DC=corp"])
        );
        assert!(minimal_bases(&[]).is_empty());
    }

    #[test]
    fn the_deepest_naming_context_holds_a_dn() {
        let ncs = dns(&[
            "DC=corp",
            "CN=Configuration,DC=corp",
            "CN=Schema,CN=Configuration,DC=corp",
        ]);
        assert_eq!(
            naming_context_of(&dn("OU=Staff,DC=corp"), &ncs),
            Some(&ncs[0])
        );
        assert_eq!(
            naming_context_of(&dn("CN=Sites,CN=Configuration,DC=corp"), &ncs),
            Some(&ncs[1])
        );
        assert_eq!(naming_context_of(&dn("DC=other"), &ncs), None);
    }

    /// Two naming contexts, bases in both, and one base in neither.
    fn two_domains() -> (Vec<Dn>, Vec<Dn>) {
        let ncs = dns(&["DC=corp", "DC=child,DC=corp"]);
        let bases = dns(&[
            "OU=A,DC=corp",
            "OU=B,DC=corp",
            "OU=C,DC=child,DC=corp",
            "OU=X,DC=elsewhere",
        ]);
        (ncs, bases)
    }

    #[test]
    fn plan_has_a_subtree_search_per_base_and_one_deletion_search_per_naming_context() {
        let (ncs, bases) = two_domains();
        let plan = plan_searches(&bases, &ncs, true, false);
        let summary: Vec<(String, SearchKind)> =
            plan.iter().map(|p| (p.base.clone(), p.kind)).collect();
        assert_eq!(
            summary,
            vec![
                ("OU=A,DC=corp".into(), SearchKind::Scope),
                ("OU=B,DC=corp".into(), SearchKind::Scope),
                ("OU=C,DC=child,DC=corp".into(), SearchKind::Scope),
                ("OU=X,DC=elsewhere".into(), SearchKind::Scope),
                // In DN order, once per naming context.
                (
                    "CN=Deleted Objects,DC=child,DC=corp".into(),
                    SearchKind::Deletions
                ),
                ("CN=Deleted Objects,DC=corp".into(), SearchKind::Deletions),
            ]
        );
        let without = plan_searches(&bases, &ncs, false, false);
        assert!(without.iter().all(|p| p.kind == SearchKind::Scope));
        assert_eq!(without.len(), 4);
    }

    #[test]
    fn from_roots_the_plan_watches_each_naming_context_once() {
        let (ncs, bases) = two_domains();
        let summary: Vec<(String, SearchKind)> = plan_searches(&bases, &ncs, true, true)
            .into_iter()
            .map(|p| (p.base, p.kind))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("DC=child,DC=corp".into(), SearchKind::NamingContext),
                ("DC=corp".into(), SearchKind::NamingContext),
                // A base in no known naming context is watched as it is.
                ("OU=X,DC=elsewhere".into(), SearchKind::NamingContext),
                (
                    "CN=Deleted Objects,DC=child,DC=corp".into(),
                    SearchKind::Deletions
                ),
                ("CN=Deleted Objects,DC=corp".into(), SearchKind::Deletions),
            ]
        );
    }

    #[test]
    fn a_naming_context_search_forwards_only_what_concerns_the_bases() {
        let bases = dns(&["OU=Staff,DC=corp"]);
        let search = PlannedSearch {
            base: "DC=corp".into(),
            kind: SearchKind::NamingContext,
        };
        assert!(search.concerns(&entry("CN=U,OU=Sales,OU=Staff,DC=corp", &[]), &bases));
        assert!(!search.concerns(&entry("CN=U,CN=Users,DC=corp", &[]), &bases));
        assert!(!search.concerns(&entry("not a dn", &[]), &bases));
        let tombstone = |parent: &str| {
            entry(
                "CN=U\\0ADEL:1,CN=Deleted Objects,DC=corp",
                &[
                    ("isDeleted", b"TRUE"),
                    ("lastKnownParent", parent.as_bytes()),
                ],
            )
        };
        assert!(search.concerns(&tombstone("OU=Staff,DC=corp"), &bases));
        assert!(!search.concerns(&tombstone("CN=Users,DC=corp"), &bases));
        // A scope search forwards everything it is sent.
        let scope = PlannedSearch {
            base: "OU=Staff,DC=corp".into(),
            kind: SearchKind::Scope,
        };
        assert!(scope.concerns(&tombstone("CN=Users,DC=corp"), &bases));
    }

    #[test]
    fn searches_carry_the_documented_filter_scope_and_controls() {
        assert_eq!(FILTER, "(objectClass=*)");
        let scope = PlannedSearch {
            base: "OU=A,DC=corp".into(),
            kind: SearchKind::Scope,
        };
        assert_eq!(scope.scope(), Scope::Subtree);
        let c = scope.controls();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].ctype, "1.2.840.113556.1.4.528");
        assert!(c[0].crit, "a DC without the control must refuse the search");
        assert!(c[0].val.is_none(), "the control has no value");
        assert!(scope.attributes().contains(&"objectGUID".to_string()));

        let del = PlannedSearch {
            base: "CN=Deleted Objects,DC=corp".into(),
            kind: SearchKind::Deletions,
        };
        assert_eq!(del.scope(), Scope::OneLevel);
        let oids: Vec<String> = del.controls().into_iter().map(|c| c.ctype).collect();
        assert_eq!(oids, ["1.2.840.113556.1.4.528", "1.2.840.113556.1.4.417"]);
        assert!(del.attributes().contains(&"lastKnownParent".to_string()));
    }

    #[test]
    fn a_change_takes_what_the_dc_sent_and_ignores_garbage() {
        let guid = [7u8; 16];
        let c = change_from(&entry(
            "CN=U,OU=A,DC=corp",
            &[("objectGUID", &guid), ("uSNChanged", b"4117")],
        ));
        assert_eq!(
            c,
            AdChange {
                dn: "CN=U,OU=A,DC=corp".into(),
                guid: Some(ObjectGuid(guid)),
                usn: Some(4117),
            }
        );
        let bad = change_from(&entry(
            "CN=U,DC=corp",
            &[("objectGUID", b"short"), ("uSNChanged", b"-1x")],
        ));
        assert_eq!((bad.guid, bad.usn), (None, None));
        let bare = change_from(&entry("CN=U,DC=corp", &[]));
        assert_eq!((bare.guid, bare.usn), (None, None));
    }

    #[test]
    fn deletions_are_forwarded_only_when_they_concern_a_base() {
        let bases = dns(&["OU=Staff,DC=corp"]);
        let tomb = |parent: Option<&str>| {
            let mut attrs: Vec<(&str, &[u8])> = vec![("isDeleted", b"TRUE")];
            if let Some(p) = parent {
                attrs.push(("lastKnownParent", p.as_bytes()));
            }
            entry("CN=U\\0ADEL:1,CN=Deleted Objects,DC=corp", attrs.as_slice())
        };
        assert!(deletion_concerns(
            &tomb(Some("OU=Sales,OU=Staff,DC=corp")),
            &bases
        ));
        assert!(deletion_concerns(&tomb(Some("ou=staff,dc=corp")), &bases));
        assert!(!deletion_concerns(&tomb(Some("CN=Users,DC=corp")), &bases));
        // A child of a deleted OU names the OU's tombstone as its parent.
        assert!(deletion_concerns(
            &tomb(Some("OU=Old\\0ADEL:2,CN=Deleted Objects,DC=corp")),
            &bases
        ));
        assert!(deletion_concerns(&tomb(None), &bases));
        assert!(deletion_concerns(&tomb(Some("not a dn")), &bases));
    }

    #[test]
    fn ended_searches_are_classified() {
        use SearchKind::*;
        // adminLimitExceeded with three searches on the connection: two fit.
        assert_eq!(classify_end(Scope, 3, 11), EndAction::Shrink(2));
        assert_eq!(classify_end(Deletions, 5, 11), EndAction::Shrink(4));
        // Alone on its connection it is not the per-connection limit.
        assert_eq!(classify_end(Scope, 1, 11), EndAction::Reconnect);
        assert_eq!(classify_end(Scope, 1, 12), EndAction::Unsupported);
        assert_eq!(classify_end(NamingContext, 1, 12), EndAction::Unsupported);
        // Refused below a naming-context root: watch from the roots; refused there too:
        // nothing else to try but again later.
        assert_eq!(classify_end(Scope, 2, 53), EndAction::FromRoots);
        assert_eq!(classify_end(NamingContext, 2, 53), EndAction::Reconnect);
        for rc in [12, 32, 50, 53] {
            assert_eq!(classify_end(Deletions, 2, rc), EndAction::DropDeletions);
        }
        // A scope search that ends, whatever the reason, is registered again.
        for rc in [0, 1, 3, 32, 50, 51, 52, 80] {
            assert_eq!(classify_end(Scope, 2, rc), EndAction::Reconnect, "rc {rc}");
        }
        assert_eq!(classify_end(Deletions, 1, 0), EndAction::Reconnect);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 1..=40 {
            let full = base.saturating_mul(1u32 << (attempt - 1).min(20)).min(cap);
            for _ in 0..20 {
                let d = backoff_delay(attempt, base, cap);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff_delay(40, base, cap) <= cap);
        assert_eq!(backoff_delay(0, Duration::ZERO, cap), Duration::ZERO);
    }

    #[test]
    fn state_serializes_for_the_status_endpoint() {
        let s = WatchState::Reconnecting {
            attempt: 3,
            last_error: "cannot connect".into(),
            retry_at: DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::json!({
                "state": "reconnecting",
                "attempt": 3,
                "lastError": "cannot connect",
                "retryAt": "2025-01-02T03:04:05Z"
            })
        );
        assert_eq!(
            serde_json::to_value(WatchState::Stopped).unwrap(),
            serde_json::json!({"state": "stopped"})
        );
    }
}
