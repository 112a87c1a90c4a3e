//! Turns the AD change watcher (`ad::ldap::watch_changes`) into loop events: each
//! pushed change, and each re-registration after a disconnect (changes made while
//! disconnected were never sent), becomes one debounced delta cycle. Every source of the
//! policy is watched on its own DCs (with their failover). The watchers' state shows in
//! `/status` (`adWatch`: with several sources, `watching` only when all are, and each
//! source's state in the message) and in `ad2entra_ad_watch_connected`.

use super::Handle;
use super::edges::AdEdge;
use super::status::WatchStatus;
use crate::ad::ldap::{AdChange, LdapConfig, WatchState, watch_changes};
use crate::model::Dn;
use crate::policy::LoadedPolicy;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where to watch source `origin`: the OUs its scope includes, the groups the policy
/// names in its domain (membership of a `memberOf` or licence group changes who is in
/// scope), or its whole base DN when a kind has no include list (everything under the
/// base is then in scope).
pub fn watch_bases(policy: &LoadedPolicy, origin: u16) -> Vec<Dn> {
    let rules = policy.scope_for(origin);
    let Some(base) = rules.base_dn.cloned() else {
        return Vec::new();
    };
    if rules.user_include_ous.is_empty() || rules.group_include_ous.is_empty() {
        return vec![base];
    }
    let mine = |d: &&Dn| policy.source_of(d).unwrap_or(0) == origin;
    let mut v: Vec<Dn> = rules
        .user_include_ous
        .iter()
        .chain(rules.group_include_ous)
        .chain(policy.membership_groups())
        .filter(mine)
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

/// Each watched source's last state: (name, status, connected).
type Board = Arc<Mutex<Vec<(String, WatchStatus, bool)>>>;

/// The status `/status` shows for every source together: one source's as it is; with
/// several, `watching` when every one is, else the first one that is not, with each
/// source's state in the message.
fn combined(board: &[(String, WatchStatus, bool)]) -> (WatchStatus, bool) {
    let connected = board.iter().all(|(_, _, c)| *c);
    if let [(_, only, _)] = board {
        return (only.clone(), connected);
    }
    let state = board
        .iter()
        .map(|(_, w, _)| w.state.as_str())
        .find(|s| *s != "watching")
        .unwrap_or("watching")
        .to_string();
    let message = board
        .iter()
        .map(|(name, w, _)| {
            if w.message.is_empty() {
                format!("{name}: {}", w.state)
            } else {
                format!("{name}: {} ({})", w.state, w.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    (WatchStatus { state, message }, connected)
}

/// Starts watching every LDAP source for the policy's scope; every change (and every
/// re-registration after the first) sends one event on `events`. Stops when `cancel`
/// fires.
pub fn start<'a>(
    edges: impl Iterator<Item = &'a dyn AdEdge>,
    policy: &LoadedPolicy,
    events: mpsc::Sender<()>,
    handle: &Handle,
    cancel: CancellationToken,
) {
    let targets: Vec<(String, LdapConfig, Vec<Dn>)> = edges
        .filter_map(|e| {
            let cfg = e.ldap_config()?.clone();
            let bases = watch_bases(policy, e.origin());
            (!bases.is_empty()).then(|| (e.source_name(), cfg, bases))
        })
        .collect();
    let board: Board = Arc::new(Mutex::new(
        targets
            .iter()
            .map(|(name, _, _)| {
                let w = describe(&WatchState::Starting);
                (name.clone(), w, false)
            })
            .collect(),
    ));
    for (slot, (name, cfg, bases)) in targets.into_iter().enumerate() {
        start_one(
            slot,
            name,
            cfg,
            bases,
            board.clone(),
            events.clone(),
            handle,
            cancel.clone(),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn start_one(
    slot: usize,
    name: String,
    cfg: LdapConfig,
    bases: Vec<Dn>,
    board: Board,
    events: mpsc::Sender<()>,
    handle: &Handle,
    cancel: CancellationToken,
) {
    let (tx, mut rx) = mpsc::channel::<AdChange>(1024);
    let (state_tx, mut state_rx) = watch::channel(WatchState::Starting);
    tokio::spawn(watch_changes(cfg, bases, tx, state_tx, cancel.clone()));
    let status = handle.status.clone();
    let metrics = handle.metrics.clone();
    tokio::spawn(async move {
        let mut last_session = 0u64;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                change = rx.recv() => match change {
                    Some(c) => {
                        tracing::debug!(source = %name, dn = %c.dn, usn = ?c.usn, "AD change notification");
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
                    let w = describe(&s);
                    tracing::info!(source = %name, state = %w.state, message = %w.message, "AD change watcher");
                    let (all, connected) = {
                        let mut b = match board.lock() {
                            Ok(b) => b,
                            Err(p) => p.into_inner(),
                        };
                        if let Some(entry) = b.get_mut(slot) {
                            entry.1 = w;
                            entry.2 = matches!(s, WatchState::Connected { .. });
                        }
                        combined(&b)
                    };
                    metrics.ad_watch_connected.set(i64::from(connected));
                    match status.write() {
                        Ok(mut st) => st.ad_watch = all,
                        Err(p) => p.into_inner().ad_watch = all,
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(state: &str, message: &str) -> WatchStatus {
        WatchStatus {
            state: state.into(),
            message: message.into(),
        }
    }

    #[test]
    fn one_source_shows_as_it_is_and_several_are_watching_only_together() {
        let one = vec![("corp".to_string(), w("watching", "2 searches"), true)];
        assert_eq!(combined(&one), (w("watching", "2 searches"), true));
        let two = vec![
            ("corp".to_string(), w("watching", "2 searches"), true),
            ("branch".to_string(), w("reconnecting", "attempt 2"), false),
        ];
        let (s, connected) = combined(&two);
        assert_eq!(s.state, "reconnecting");
        assert_eq!(
            s.message,
            "corp: watching (2 searches); branch: reconnecting (attempt 2)"
        );
        assert!(!connected);
        let both = vec![
            ("corp".to_string(), w("watching", ""), true),
            ("branch".to_string(), w("watching", ""), true),
        ];
        assert_eq!(
            combined(&both),
            (w("watching", "corp: watching; branch: watching"), true)
        );
    }
}
