//! Turns the AD change watcher (`ad::ldap::watch_changes`) into loop events: each
//! pushed change, and each re-registration after a disconnect (changes made while
//! disconnected were never sent), becomes one debounced delta cycle. The watcher's state
//! shows in `/status` (`adWatch`) and in `ad2entra_ad_watch_connected`.

use super::Handle;
use super::status::WatchStatus;
use crate::ad::ldap::{AdChange, LdapConfig, WatchState, watch_changes};
use crate::model::Dn;
use crate::policy::LoadedPolicy;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where to watch: the OUs the policy includes, the groups it names (membership of a
/// `memberOf` or licence group changes who is in scope), or the whole base DN when a
/// kind has no include list (everything under the base is then in scope).
pub fn watch_bases(policy: &LoadedPolicy) -> Vec<Dn> {
    let Some(base) = policy.base_dn.clone() else {
        return Vec::new();
    };
    if policy.user_include_ous.is_empty() || policy.group_include_ous.is_empty() {
        return vec![base];
    }
    let mut v: Vec<Dn> = policy
        .user_include_ous
        .iter()
        .chain(&policy.group_include_ous)
        .chain(&policy.user_member_of)
        .chain(policy.licenses.iter().map(|l| &l.group))
        .cloned()
        .collect();
    v.sort_by(|a, b| a.key().cmp(b.key()));
    v.dedup();
    v
}

fn describe(s: &WatchState) -> WatchStatus {
    let (state, message) = match s {
        WatchState::Starting => ("connecting", String::new()),
        WatchState::Connected {
            server,
            searches,
            connections,
            deletions_watched,
            ..
        } => (
            "watching",
            format!(
                "{searches} notification search(es) on {connections} connection(s) to {server}{}",
                if *deletions_watched {
                    ", deletions watched"
                } else {
                    ""
                }
            ),
        ),
        WatchState::Reconnecting {
            attempt,
            last_error,
            retry_at,
        } => (
            "reconnecting",
            format!("attempt {attempt} at {retry_at}: {last_error}"),
        ),
        WatchState::Unsupported { reason, .. } => ("unsupported", reason.clone()),
        WatchState::Stopped => ("stopped", String::new()),
    };
    WatchStatus {
        state: state.into(),
        message,
    }
}

/// Starts watching AD for the policy's scope; every change (and every re-registration
/// after the first) sends one event on `events`. Stops when `cancel` fires.
pub fn start(
    cfg: &LdapConfig,
    policy: &LoadedPolicy,
    events: mpsc::Sender<()>,
    handle: &Handle,
    cancel: CancellationToken,
) {
    let bases = watch_bases(policy);
    if bases.is_empty() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<AdChange>(1024);
    let (state_tx, mut state_rx) = watch::channel(WatchState::Starting);
    tokio::spawn(watch_changes(
        cfg.clone(),
        bases,
        tx,
        state_tx,
        cancel.clone(),
    ));
    let status = handle.status.clone();
    let metrics = handle.metrics.clone();
    tokio::spawn(async move {
        let mut last_session = 0u64;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                change = rx.recv() => match change {
                    Some(c) => {
                        tracing::debug!(dn = %c.dn, usn = ?c.usn, "AD change notification");
                        if events.send(()).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                changed = state_rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let s = state_rx.borrow_and_update().clone();
                    if let WatchState::Connected { session, .. } = &s {
                        // A re-registration: what changed while disconnected was never
                        // sent, so a delta cycle catches up.
                        if *session > 1 && *session != last_session {
                            let _ = events.send(()).await;
                        }
                        last_session = *session;
                    }
                    metrics
                        .ad_watch_connected
                        .set(i64::from(matches!(s, WatchState::Connected { .. })));
                    let w = describe(&s);
                    tracing::info!(state = %w.state, message = %w.message, "AD change watcher");
                    match status.write() {
                        Ok(mut st) => st.ad_watch = w,
                        Err(p) => p.into_inner().ad_watch = w,
                    }
                }
            }
        }
    });
}
