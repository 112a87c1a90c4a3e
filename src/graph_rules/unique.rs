//! Uniqueness against what Entra already holds. Graph keeps `userPrincipalName` and the
//! SMTP addresses (`mail` and every `smtp:` entry of `proxyAddresses`) unique across
//! users and groups: a desired value held by another object would be refused. Two AD
//! objects wanting one value are `desired`'s conflicts; this module compares the desired
//! objects with the target snapshot, objects ad2entra does not own included.

use super::{UNIQUE_ADDRESS, UNIQUE_UPN};
use crate::desired::{DesiredObject, DesiredState};
use crate::diagnostics::Diagnostic;
use crate::model::{Anchor, TargetObject, TargetSnapshot};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Who holds a value in Entra, for the message.
struct Holder<'t> {
    kind: &'static str,
    object: &'t TargetObject,
    /// `the mail` or `a proxy address`.
    as_what: &'static str,
}

/// `s` in lower case, allocated only when it has upper-case letters (addresses rarely do,
/// and this runs for every address of every object).
fn lower(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The SMTP addresses an Entra object holds (lower case), with how it holds each.
fn addresses(o: &TargetObject) -> Vec<(Cow<'_, str>, &'static str)> {
    let mut out: Vec<(Cow<'_, str>, &'static str)> = Vec::new();
    if let Some(m) = o.str("mail").filter(|m| !m.is_empty()) {
        out.push((lower(m), "the mail"));
    }
    if let Some(Value::Array(proxies)) = o.props.get("proxyAddresses") {
        for p in proxies.iter().filter_map(Value::as_str) {
            if p.len() > 5 && p.is_char_boundary(5) && p[..5].eq_ignore_ascii_case("smtp:") {
                let a = lower(&p[5..]);
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
pub fn check(desired: &mut DesiredState, target: &TargetSnapshot, adopt_by_mail: bool) {
    check_paired(desired, target, adopt_by_mail, &HashMap::new());
}

/// [`check`], with the Entra objects the planner pairs with an AD object beyond the anchor
/// extension's value (Graph id → that object's anchor: re-anchored objects, hard-match
/// candidates): each counts as that object's own, like an owned one.
pub fn check_paired(
    desired: &mut DesiredState,
    target: &TargetSnapshot,
    adopt_by_mail: bool,
    paired: &HashMap<&str, Anchor>,
) {
    let clashes = find(desired, target, adopt_by_mail, paired);
    exclude(desired, clashes);
}

/// A desired value held by another object: (the user, the property) → (the value, who holds it).
type Clashes<'t> = BTreeMap<(Anchor, &'static str), (String, Holder<'t>)>;

fn find<'d, 't>(
    desired: &'d DesiredState,
    target: &'t TargetSnapshot,
    adopt_by_mail: bool,
    paired: &'t HashMap<&str, Anchor>,
) -> Clashes<'t> {
    let ext = target.extension_names();
    let anchor_of = |o: &'t TargetObject| {
        paired
            .get(o.id.as_str())
            .map(|a| a.0.as_str())
            .or_else(|| ours(o, &ext.anchor))
    };
    let owned: HashSet<&str> = target.users.iter().filter_map(anchor_of).collect();
    let prop = |u: &'d DesiredObject, p: &str| u.props.get(p).and_then(Value::as_str).map(lower);
    // One user per value: two AD objects wanting one were left out as conflicts already.
    let mut by_mail: HashMap<Cow<'d, str>, &'d Anchor> = HashMap::new();
    let mut by_upn: HashMap<Cow<'d, str>, &'d Anchor> = HashMap::new();
    for (a, u) in &desired.users {
        if let Some(m) = prop(u, "mail") {
            by_mail.insert(m, a);
        }
        if owned.contains(a.0.as_str())
            && let Some(upn) = prop(u, "userPrincipalName")
        {
            by_upn.insert(upn, a);
        }
    }
    if by_mail.is_empty() && by_upn.is_empty() {
        return Clashes::new();
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
            d.props
                .get(p)
                .and_then(Value::as_str)
                .is_some_and(|x| t.str(p).is_some_and(|y| y.eq_ignore_ascii_case(x)))
        };
        same("userPrincipalName") || (adopt_by_mail && same("mail"))
    };
    let mut clashes = Clashes::new();
    let objects = target
        .users
        .iter()
        .map(|t| ("user", t))
        .chain(target.groups.iter().map(|t| ("group", t)));
    for (kind, t) in objects {
        let t_anchor = anchor_of(t);
        for (addr, as_what) in addresses(t) {
            if let Some(&a) = by_mail.get(addr.as_ref())
                && t_anchor != Some(a.0.as_str())
                && !(kind == "user" && is_candidate(t, a))
            {
                let holder = Holder {
                    kind,
                    object: t,
                    as_what,
                };
                clashes
                    .entry((a.clone(), "mail"))
                    .or_insert_with(|| (addr.into_owned(), holder));
            }
        }
        if kind == "user"
            && let Some(upn) = t.str("userPrincipalName").map(lower)
            && let Some(&a) = by_upn.get(upn.as_ref())
            && t_anchor != Some(a.0.as_str())
        {
            let holder = Holder {
                kind,
                object: t,
                as_what: "the userPrincipalName",
            };
            clashes
                .entry((a.clone(), "userPrincipalName"))
                .or_insert_with(|| (upn.into_owned(), holder));
        }
    }
    clashes
}

/// Takes the clashing users out of the desired state, each with its diagnostic.
fn exclude(desired: &mut DesiredState, clashes: Clashes) {
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
