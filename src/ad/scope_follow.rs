//! Following the OUs and groups a policy names when AD renames or moves them.
//!
//! A policy names scope by DN; AD lets an administrator rename or move an OU at any
//! time. Read naively, a renamed include-OU looks like "everybody left scope", the one
//! mistake this product must never make. So every named DN is resolved before a read:
//! one that no longer resolves is looked up by the objectGUID remembered from an earlier
//! run and followed (with a warning), and one that cannot be found either way stops the
//! cycle (the source-failure guard).

use super::ldap::{LdapConfig, LdapError, resolve_dns, resolve_guids};
use crate::diagnostics::Diagnostic;
use crate::model::{Dn, ObjectGuid};
use crate::policy::LoadedPolicy;
use crate::state::State;

/// Why the named DNs could not all be resolved.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot resolve the policy's OUs and groups in AD: {0}")]
    Ldap(#[from] LdapError),
    /// Terminal until AD or the policy changes: planning would read these as empty.
    #[error(
        "source-failure guard: these scope OUs/groups no longer resolve in AD: {}; refusing to plan",
        .0.join("; ")
    )]
    Missing(Vec<String>),
}

/// Resolves every OU and group the policy names, remembering their objectGUIDs in
/// `state`. One that no longer resolves by DN is followed by its remembered objectGUID:
/// the policy's DN is replaced for this run and a `scope-dn-renamed` warning is added
/// to `policy.warnings`.
pub async fn follow_named_dns(
    policy: &mut LoadedPolicy,
    cfg: &LdapConfig,
    state: &mut State,
) -> Result<(), FollowError> {
    follow_named_dns_of(policy, 0, cfg, state).await
}

/// [`follow_named_dns`] for the DNs in the domain of source `origin` (`cfg` reaches one
/// of its DCs); DNs under no source's base DN go with source 0, whose DC then reports
/// them missing.
pub async fn follow_named_dns_of(
    policy: &mut LoadedPolicy,
    origin: u16,
    cfg: &LdapConfig,
    state: &mut State,
) -> Result<(), FollowError> {
    let mine = |policy: &LoadedPolicy, dn: &Dn| policy.source_of(dn).unwrap_or(0) == origin;
    let named: Vec<Dn> = policy
        .named_dns()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| mine(policy, d))
        .cloned()
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let resolved = resolve_dns(cfg, &named).await?;
    let mut follow = Vec::new();
    let mut missing = Vec::new();
    for dn in &named {
        match resolved.get(dn).and_then(Option::as_ref) {
            Some((guid, _)) => {
                state.scope_guids.insert(dn.key().to_string(), *guid);
            }
            None => match state.scope_guids.get(dn.key()) {
                Some(guid) => follow.push((dn.clone(), *guid)),
                None => missing.push(dn.to_string()),
            },
        }
    }
    if !follow.is_empty() {
        let guids: Vec<ObjectGuid> = follow.iter().map(|(_, g)| *g).collect();
        let now = resolve_guids(cfg, &guids).await?;
        for (old, guid) in follow {
            match now.get(&guid).and_then(Option::as_ref) {
                Some(current) => {
                    for slot in policy.named_dns_mut() {
                        if *slot == old {
                            *slot = current.clone();
                        }
                    }
                    policy.warnings.push(
                        Diagnostic::warning(
                            "scope-dn-renamed",
                            format!(
                                "{old} was renamed or moved in AD; followed by objectGUID {guid} to {current}"
                            ),
                        )
                        .hint("update the policy to the new DN"),
                    );
                }
                None => missing.push(old.to_string()),
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(FollowError::Missing(missing))
    }
}
