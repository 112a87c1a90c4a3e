//! Uniqueness against what Entra already holds. Graph keeps `userPrincipalName` and the
//! SMTP addresses (`mail` and every `smtp:` entry of `proxyAddresses`) unique across
//! users and groups: a desired value held by another object would be refused. Two AD
//! objects wanting one value are `desired`'s conflicts; this module compares the desired
//! objects with the target snapshot, objects ad2entra does not own included.

use super::{UNIQUE_ADDRESS, UNIQUE_UPN};
use crate::desired::DesiredState;
use crate::diagnostics::Diagnostic;
use crate::model::{Anchor, TargetObject, TargetSnapshot};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Who holds a value in Entra, for the message.
struct Holder<'a> {
    kind: &'static str,
    object: &'a TargetObject,
    /// `the mail` or `a proxy address`.
    as_what: &'static str,
}

/// The SMTP addresses an Entra object holds (lower case), with how it holds each.
fn addresses(o: &TargetObject) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    if let Some(m) = o.str("mail").filter(|m| !m.is_empty()) {
        out.push((m.to_lowercase(), "the mail"));
    }
    if let Some(Value::Array(proxies)) = o.props.get("proxyAddresses") {
        for p in proxies.iter().filter_map(Value::as_str) {
            if p.len() > 5 && p[..5].eq_ignore_ascii_case("smtp:") {
                let a = p[5..].to_lowercase();
                if !out.iter().any(|(x, _)| *x == a) {
                    out.push((a, "a proxy address"));
                }
            }
        }
    }
    out
}

/// The anchor marking `o` as ad2entra's; synced objects are never ours.
fn ours<'t>(o: &'t TargetObject, anchor_prop: &str) -> Option<&'t str> {
    if o.is_dirsynced() {
        return None;
    }
    o.str(anchor_prop).filter(|s| !s.is_empty())
}

/// Removes from `desired` every user whose `mail` is held by another object in Entra,
/// or whose new `userPrincipalName` is (for users ad2entra owns already: for a new user
/// the planner's matching decides, with adoption). Each gets a diagnostic and is marked
/// errored: an owned one keeps its current state and ownership.
///
/// "Another object" leaves out the user itself and, for a user not owned yet, the cloud
/// user the planner's matching would pair it with (same UPN, or same mail with
/// `adopt: {by: mail}`): adopting it, or refusing to, is decided there.
pub fn check<'t>(desired: &mut DesiredState, target: &'t TargetSnapshot, adopt_by_mail: bool) {
    let ext = target.extension_names();
    let anchor_of = |o: &'t TargetObject| ours(o, &ext.anchor);
    let owned: HashSet<&str> = target.users.iter().filter_map(anchor_of).collect();
    let lower = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_lowercase);
    let mut by_mail: HashMap<String, Vec<&Anchor>> = HashMap::new();
    let mut by_upn: HashMap<String, Vec<&Anchor>> = HashMap::new();
    for (a, u) in &desired.users {
        if let Some(m) = lower(u.props.get("mail")) {
            by_mail.entry(m).or_default().push(a);
        }
        if owned.contains(a.0.as_str())
            && let Some(upn) = lower(u.props.get("userPrincipalName"))
        {
            by_upn.entry(upn).or_default().push(a);
        }
    }
    if by_mail.is_empty() && by_upn.is_empty() {
        return;
    }
    // The matching's candidate for a user not owned yet.
    let is_candidate = |t: &'t TargetObject, a: &Anchor| -> bool {
        if anchor_of(t).is_some() || owned.contains(a.0.as_str()) {
            return false;
        }
        let Some(d) = desired.users.get(a) else {
            return false;
        };
        let same = |p: &str| {
            lower(d.props.get(p)).is_some_and(|x| t.str(p).is_some_and(|y| y.to_lowercase() == x))
        };
        same("userPrincipalName") || (adopt_by_mail && same("mail"))
    };
    let mut clashes: BTreeMap<(Anchor, &'static str), (String, Holder)> = BTreeMap::new();
    let objects = target
        .users
        .iter()
        .map(|t| ("user", t))
        .chain(target.groups.iter().map(|t| ("group", t)));
    for (kind, t) in objects {
        let t_anchor = anchor_of(t);
        for (addr, as_what) in addresses(t) {
            for a in by_mail.get(&addr).into_iter().flatten() {
                if t_anchor == Some(a.0.as_str()) || (kind == "user" && is_candidate(t, a)) {
                    continue;
                }
                clashes.entry(((*a).clone(), "mail")).or_insert_with(|| {
                    (
                        addr.clone(),
                        Holder {
                            kind,
                            object: t,
                            as_what,
                        },
                    )
                });
            }
        }
        if kind == "user"
            && let Some(upn) = t.str("userPrincipalName").map(str::to_lowercase)
        {
            for a in by_upn.get(&upn).into_iter().flatten() {
                if t_anchor != Some(a.0.as_str()) {
                    clashes
                        .entry(((*a).clone(), "userPrincipalName"))
                        .or_insert_with(|| {
                            (
                                upn.clone(),
                                Holder {
                                    kind,
                                    object: t,
                                    as_what: "the userPrincipalName",
                                },
                            )
                        });
                }
            }
        }
    }
    for ((anchor, prop), (value, h)) in clashes {
        let Some(d) = desired.users.remove(&anchor) else {
            continue;
        };
        let (code, hint) = if prop == "mail" {
            (
                UNIQUE_ADDRESS,
                "Graph keeps mail and proxyAddresses unique across users and groups: change the address in AD, or free it in Entra; this user is left as it is until then",
            )
        } else {
            (
                UNIQUE_UPN,
                "change the UPN in AD, or free it in Entra; this user keeps its current UPN and values until then",
            )
        };
        desired.diagnostics.push(
            Diagnostic::error(
                code,
                format!(
                    "`{value}` is already {} of Entra {} {} ({})",
                    h.as_what,
                    h.kind,
                    h.object.label(),
                    h.object.id
                ),
            )
            .object(d.dn().as_str())
            .attribute(prop)
            .hint(hint),
        );
        desired.errored.insert(anchor);
    }
}
