//! Planning the `federation:` section: each named domain's desired federation settings
//! against the `internalDomainFederation` Entra holds, as `create` (the domain switches to
//! federated sign-in), `update` (a JSON Patch of the changed properties) or nothing.
//!
//! Ownership: only domains the policy names are planned. A federated domain the policy does
//! not name is never changed — no plan deletes a federation configuration — and gets a
//! warning saying how to convert it back to managed sign-in on purpose.
//!
//! Pure, like the rest of the planner: the clock comes in as `now`.

use super::simulate::SimulateError;
use super::types::{Action, ObjectRef, ObjectType, Operation, SignInChange};
use crate::diagnostics::Diagnostic;
use crate::model::target::PropRef;
use crate::model::{TargetObject, TargetSnapshot};
use crate::policy::LoadedPolicy;
use crate::policy::federation::{CompiledFederation, parse_certificate};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Certificates expiring within this many days are warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// At most this many user names are quoted in a warning.
const EXAMPLES: usize = 5;

/// What the federation section adds to a plan.
#[derive(Debug, Default, PartialEq)]
pub struct FederationPlan {
    pub actions: Vec<Action>,
    pub diagnostics: Vec<Diagnostic>,
    pub sign_in_changes: Vec<SignInChange>,
}

fn unset(v: PropRef<'_>) -> bool {
    matches!(v, PropRef::Null) || v.as_str().is_some_and(str::is_empty)
}

/// The managed properties of a configuration as Entra holds it (unset ones left out).
fn held(current: &TargetObject, managed: &Map<String, Value>) -> Map<String, Value> {
    managed
        .keys()
        .filter_map(|k| {
            current
                .props
                .get(k)
                .filter(|v| !unset(*v))
                .map(|v| (k.clone(), v.to_value()))
        })
        .collect()
}

fn domain_ref(domain: &str) -> ObjectRef {
    ObjectRef {
        object_type: ObjectType::Domain,
        anchor: None,
        dn: None,
        name: domain.to_string(),
        id: None,
        source: None,
    }
}

fn upn_domain(u: &TargetObject) -> Option<String> {
    u.str("userPrincipalName")
        .and_then(|upn| upn.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())
}

/// Warnings for the certificates of the `federation:` section that expire within
/// [`EXPIRY_WARNING_DAYS`] of `now` (or have expired); `validate` shows them too.
pub fn certificate_warnings(policy: &LoadedPolicy, now: DateTime<Utc>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    expiry_warnings(policy, now, &mut out);
    out
}

fn expiry_warnings(policy: &LoadedPolicy, now: DateTime<Utc>, out: &mut Vec<Diagnostic>) {
    for f in &policy.federation {
        for c in &f.certificates {
            let left = c.not_after - now;
            if left >= Duration::days(EXPIRY_WARNING_DAYS) {
                continue;
            }
            let when = c.not_after.to_rfc3339_opts(SecondsFormat::Secs, true);
            let message = if left <= Duration::zero() {
                format!(
                    "federation.{}.{}: the certificate ({}) expired on {when}",
                    f.domain, c.property, c.subject
                )
            } else {
                format!(
                    "federation.{}.{}: the certificate ({}) expires on {when}, in {} days",
                    f.domain,
                    c.property,
                    c.subject,
                    left.num_days()
                )
            };
            out.push(
                Diagnostic::warning("signing-certificate-expiring", message)
                    .at(c.location.clone())
                    .hint("roll the identity provider's token-signing certificate over: put the new one in nextSigningCertificate, then in signingCertificate"),
            );
        }
    }
}

/// Federated domains in the tenant that the policy does not name: left alone, and said so.
fn unmanaged_warnings(policy: &LoadedPolicy, target: &TargetSnapshot, out: &mut Vec<Diagnostic>) {
    if policy.policy.federation.is_none() {
        return;
    }
    let named: BTreeSet<&str> = policy
        .federation
        .iter()
        .map(|f| f.domain.as_str())
        .collect();
    for d in target.domains.iter().flatten() {
        let federated = d
            .authentication_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Federated"));
        let id = d.id.to_ascii_lowercase();
        if federated && !named.contains(id.as_str()) {
            out.push(
                Diagnostic::warning(
                    "federation-domain-not-managed",
                    format!(
                        "{id} is federated in Entra but not named in `federation:`; ad2entra leaves its federation configuration alone"
                    ),
                )
                .hint(format!(
                    "to manage it, add it to `federation:`; to convert it back to managed (cloud) sign-in on purpose, delete its configuration (DELETE /domains/{id}/federationConfiguration/{{id}} or Remove-MgDomainFederationConfiguration) and give its users passwords or a Temporary Access Pass first: see docs/sign-in.md"
                )),
            );
        }
    }
}

/// Who would be switched to the identity provider, and who could not sign in there.
fn sign_in_change(
    f: &CompiledFederation,
    target: &TargetSnapshot,
    planned: &[Action],
    out: &mut Vec<Diagnostic>,
) -> SignInChange {
    // Users this plan gives an immutable id (adoption) are not left without one.
    let given: BTreeSet<&str> = planned
        .iter()
        .filter(|a| a.object.object_type == ObjectType::User)
        .filter(|a| {
            a.after().ok().is_some_and(|v| {
                v.get("onPremisesImmutableId")
                    .is_some_and(|id| !id.is_null() && id.as_str() != Some(""))
            })
        })
        .filter_map(|a| a.object.id.as_deref())
        .collect();
    let in_domain: Vec<&TargetObject> = target
        .users
        .iter()
        .filter(|u| upn_domain(u).as_deref() == Some(f.domain.as_str()))
        .collect();
    // …and the users this plan brings into the domain (they carry their immutable id).
    let arriving = planned
        .iter()
        .filter(|a| {
            a.object.object_type == ObjectType::User
                && matches!(a.op, Operation::Create | Operation::Restore)
        })
        .filter(|a| {
            a.after().ok().is_some_and(|v| {
                v.get("userPrincipalName")
                    .and_then(Value::as_str)
                    .and_then(|upn| upn.rsplit_once('@'))
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&f.domain))
            })
        })
        .count();
    let users = in_domain.len() + arriving;
    let mut without: Vec<&str> = in_domain
        .iter()
        .filter(|u| {
            u.props.get("onPremisesImmutableId").is_none_or(unset) && !given.contains(u.id.as_str())
        })
        .map(|u| u.label())
        .collect();
    without.sort_unstable();
    if !without.is_empty() {
        let examples: Vec<&str> = without.iter().take(EXAMPLES).copied().collect();
        let more = without.len().saturating_sub(EXAMPLES);
        out.push(
            Diagnostic::warning(
                "federation-domain-has-cloud-users",
                format!(
                    "{}: users without onPremisesImmutableId could not sign in once the domain is federated ({} of {}): {}{}",
                    f.domain,
                    without.len(),
                    users,
                    examples.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                ),
            )
            .at(f.location.clone())
            .hint("the identity provider's ImmutableID claim must match the user's onPremisesImmutableId: adopt these users (adopt:), give them an immutable id, or move them to another domain before applying; keep break-glass admins on *.onmicrosoft.com"),
        );
    }
    SignInChange {
        domain: f.domain.clone(),
        passive_sign_in_uri: f
            .properties
            .get("passiveSignInUri")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        users,
        users_without_immutable_id: without.len(),
    }
}

/// Keeps a signing certificate Entra rolled over to (one that outlives the policy's)
/// instead of writing the older one back, which would break sign-in when it expires.
fn keep_rolled_over_certificate(
    f: &CompiledFederation,
    current: &TargetObject,
    after: &mut Map<String, Value>,
    out: &mut Vec<Diagnostic>,
) {
    let key = "signingCertificate";
    let (Some(held), Some(mine)) = (
        current.props.str(key),
        f.certificates.iter().find(|c| c.property == key),
    ) else {
        return;
    };
    if after.get(key).and_then(Value::as_str) == Some(held) {
        return;
    }
    let Ok(theirs) = parse_certificate(held) else {
        return;
    };
    if theirs.not_after <= mine.not_after {
        return;
    }
    after.insert(key.to_string(), Value::String(held.to_string()));
    out.push(
        Diagnostic::warning(
            "federation-certificate-rolled-over",
            format!(
                "federation.{}.signingCertificate: Entra holds a newer signing certificate ({}, valid until {}) than the policy ({}, until {}), probably from its automatic rollover; it is kept, not replaced by the older one",
                f.domain,
                theirs.subject,
                theirs.not_after.to_rfc3339_opts(SecondsFormat::Secs, true),
                mine.subject,
                mine.not_after.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        )
        .at(mine.location.clone())
        .hint("put the certificate Entra holds (GET /domains/{id}/federationConfiguration) in signingCertificate"),
    );
}

/// Plans every domain of the policy's `federation:` section. `planned` are the user and
/// group actions already planned (for who will have an immutable id).
pub fn plan_federation(
    policy: &LoadedPolicy,
    target: &TargetSnapshot,
    planned: &[Action],
    now: DateTime<Utc>,
) -> FederationPlan {
    let mut out = FederationPlan::default();
    expiry_warnings(policy, now, &mut out.diagnostics);
    unmanaged_warnings(policy, target, &mut out.diagnostics);
    for f in &policy.federation {
        if let Some(domains) = &target.domains {
            let verified = domains
                .iter()
                .any(|d| d.id.eq_ignore_ascii_case(&f.domain) && d.is_verified);
            if !verified {
                out.diagnostics.push(
                    Diagnostic::error(
                        "federation-domain-unverified",
                        format!(
                            "federation.{}: not a verified domain of the tenant; its federation is not planned",
                            f.domain
                        ),
                    )
                    .at(f.location.clone())
                    .hint("add and verify the domain in Entra first (only verified custom domains can be federated)"),
                );
                continue;
            }
        }
        let Some(current) = target.federation.as_ref().and_then(|m| m.get(&f.domain)) else {
            out.diagnostics.push(
                Diagnostic::error(
                    "federation-not-read",
                    format!(
                        "federation.{}: the Entra snapshot does not say whether the domain has a federation configuration; it is not planned",
                        f.domain
                    ),
                )
                .at(f.location.clone())
                .hint("read Entra through Graph, or add \"federation\": {\"<domain>\": null | {...}} to the snapshot file"),
            );
            continue;
        };
        match current {
            None => {
                let change = sign_in_change(f, target, planned, &mut out.diagnostics);
                let reason = format!(
                    "switch {} to federated sign-in at {} ({} users)",
                    f.domain, change.passive_sign_in_uri, change.users
                );
                out.sign_in_changes.push(change);
                out.actions.push(Action {
                    op: Operation::Create,
                    object: domain_ref(&f.domain),
                    before: None,
                    patch: json_patch::diff(
                        &Value::Object(Map::new()),
                        &Value::Object(f.properties.clone()),
                    ),
                    members: vec![],
                    skus: vec![],
                    reason,
                });
            }
            Some(cur) => {
                let before = held(cur, &f.properties);
                let mut after = f.properties.clone();
                keep_rolled_over_certificate(f, cur, &mut after, &mut out.diagnostics);
                if before == after {
                    continue;
                }
                let mut changed: Vec<&str> = after
                    .keys()
                    .chain(before.keys())
                    .filter(|k| before.get(*k) != after.get(*k))
                    .map(String::as_str)
                    .collect();
                changed.sort_unstable();
                changed.dedup();
                let reason = format!("the policy differs in {}", changed.join(", "));
                out.actions.push(Action {
                    op: Operation::Update,
                    object: domain_ref(&f.domain),
                    patch: json_patch::diff(&Value::Object(before.clone()), &Value::Object(after)),
                    before: Some(Value::Object(before)),
                    members: vec![],
                    skus: vec![],
                    reason,
                });
            }
        }
    }
    out
}

/// Folds an applied domain action into a snapshot, as Graph would: a create makes the
/// domain federated, an update changes the configuration's properties.
pub fn simulate(a: &Action, s: &mut TargetSnapshot) -> Result<(), SimulateError> {
    let domain = a.object.name.to_ascii_lowercase();
    let after = match a.after() {
        Ok(Value::Object(m)) => m,
        Ok(_) => Map::new(),
        Err(e) => return Err(SimulateError::Patch(a.object.name.clone(), e.to_string())),
    };
    let map = s.federation.get_or_insert_with(BTreeMap::new);
    match a.op {
        Operation::Create => {
            let id = a
                .object
                .id
                .clone()
                .unwrap_or_else(|| format!("federation-{domain}"));
            map.insert(
                domain.clone(),
                Some(TargetObject {
                    id,
                    members: vec![],
                    props: after.into(),
                }),
            );
            for d in s.domains.iter_mut().flatten() {
                if d.id.eq_ignore_ascii_case(&domain) {
                    d.authentication_type = Some("Federated".into());
                }
            }
        }
        Operation::Update => {
            let Some(Some(cur)) = map.get_mut(&domain) else {
                return Err(SimulateError::Missing {
                    op: a.op.as_str(),
                    name: a.object.name.clone(),
                });
            };
            if let Some(Value::Object(b)) = &a.before {
                for k in b.keys().filter(|k| !after.contains_key(*k)) {
                    cur.props.remove(k);
                }
            }
            for (k, v) in after {
                cur.props.insert(&k, v);
            }
        }
        _ => {
            return Err(SimulateError::Missing {
                op: a.op.as_str(),
                name: a.object.name.clone(),
            });
        }
    }
    Ok(())
}
