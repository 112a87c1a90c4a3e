//! `ad2entra explain WHO`: one object's scope decision and the rule behind it, each
//! mapped value and its template, its match in Entra, and its planned actions.

use super::Inputs;
use super::common::now;
use super::inputs::{Loaded, load_inputs};
use ad2entra::desired::{SourceIndex, evaluate};
use ad2entra::model::Dn;
use anyhow::bail;
use std::process::ExitCode;

pub fn run(inputs: &Inputs, who: &str) -> anyhow::Result<ExitCode> {
    let Loaded {
        policy,
        source,
        target,
    } = load_inputs(inputs)?;
    let wanted_dn = Dn::parse(who)
        .ok()
        .filter(|d| d.rdn_count() > 0 && who.contains('='));
    let who_l = who.to_lowercase();
    let found: Vec<_> = source
        .objects
        .iter()
        .filter(|o| {
            wanted_dn.as_ref().is_some_and(|d| o.dn == *d)
                || o.text("userPrincipalName")
                    .is_some_and(|u| u.to_lowercase() == who_l)
                || o.text("sAMAccountName")
                    .is_some_and(|s| s.to_lowercase() == who_l)
        })
        .collect();
    let o = match found.as_slice() {
        [one] => *one,
        [] => bail!("no AD object with DN, userPrincipalName or sAMAccountName `{who}`"),
        many => bail!(
            "`{who}` matches {} objects: {}",
            many.len(),
            many.iter()
                .map(|o| o.dn.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let tenant = ad2entra::plan::compute::tenant_facts(&target);
    let index = SourceIndex::new(&source);
    let ev = evaluate(&policy, &tenant, &index, o);
    println!("{}", o.dn);
    let anchor = ad2entra::desired::source_anchor(&policy, o);
    println!(
        "  objectGUID  {}   anchor {anchor} ({})",
        o.guid,
        policy.policy.anchor.as_str()
    );
    println!("  kind        {:?}", o.kind);
    if let Some(part) = source.part(o.origin) {
        println!("  source      {} (read from {})", part.name, part.server);
    }
    println!(
        "\nScope: {} — {}",
        if ev.decision.in_scope { "IN" } else { "OUT" },
        ev.decision.rule
    );
    if !ev.values.is_empty() {
        println!("\nMapped values:");
        for v in &ev.values {
            let val = v
                .value
                .as_ref()
                .map(|x| x.to_string())
                .unwrap_or_else(|| "(unset)".into());
            println!("  {:<18} = {:<40}  ← {}", v.property, val, v.template);
        }
        if let Some(obj) = &ev.object {
            for extra in ["userPrincipalName", "onPremisesImmutableId"] {
                if let Some(v) = obj.props.get(extra) {
                    println!("  {extra:<18} → {v}  (after UPN rules / anchor)");
                }
            }
        }
    }
    if !ev.diagnostics.is_empty() {
        println!("\nDiagnostics:");
        for d in &ev.diagnostics {
            println!("  {}", d.to_string().replace('\n', "\n  "));
        }
    }
    let ext = target.extension_names();
    let owned = target
        .users
        .iter()
        .chain(&target.groups)
        .find(|t| t.str(&ext.anchor) == Some(anchor.as_str()));
    println!("\nMatch in Entra:");
    // Entra Connect's object for it: the user whose immutable id is the anchor, the
    // group whose security identifier is the objectSid.
    let hard = match o.kind {
        ad2entra::model::ObjectKind::User => target
            .users
            .iter()
            .find(|t| t.str("onPremisesImmutableId") == Some(anchor.as_str())),
        _ => ad2entra::model::anchor::object_sid(o).and_then(|sid| {
            target
                .groups
                .iter()
                .find(|t| t.str("onPremisesSecurityIdentifier") == Some(sid.as_str()))
        }),
    };
    match (owned, hard) {
        (Some(t), _) => println!("  owned object {} ({}), matched by anchor", t.id, t.label()),
        (None, Some(t)) => println!(
            "  hard match {} ({}){}, not owned yet (adopt: {{by: immutableId}} takes it over)",
            t.id,
            t.label(),
            if t.is_dirsynced() {
                ", still synced by Entra Connect"
            } else {
                ""
            }
        ),
        (None, None) => {
            let upn = ev
                .object
                .as_ref()
                .and_then(|d| d.props.get("userPrincipalName"))
                .and_then(|v| v.as_str());
            match upn.and_then(|u| {
                target.users.iter().find(|t| {
                    t.str("userPrincipalName")
                        .is_some_and(|x| x.eq_ignore_ascii_case(u))
                })
            }) {
                Some(t) => println!(
                    "  no owned object; UPN held by {} ({}), not owned by ad2entra",
                    t.id,
                    t.label()
                ),
                None => println!("  none (would be created)"),
            }
        }
    }
    println!("\nPlanned actions:");
    match ad2entra::plan::plan(&policy, &source, &target, now()) {
        Ok(p) => {
            let mine: Vec<_> = p
                .actions
                .iter()
                .filter(|a| {
                    a.object.anchor.as_ref() == Some(&anchor)
                        || a.object.dn.as_deref() == Some(o.dn.as_str())
                })
                .collect();
            let blocked: Vec<_> = p
                .blocked
                .iter()
                .filter(|b| b.action.object.anchor.as_ref() == Some(&anchor))
                .collect();
            if mine.is_empty() && blocked.is_empty() {
                println!("  none");
            }
            for a in mine {
                println!("  {} — {}", a.op.as_str(), a.reason);
            }
            for b in blocked {
                println!(
                    "  {} BLOCKED [{}] {}",
                    b.action.op.as_str(),
                    b.code,
                    b.reason
                );
            }
        }
        Err(e) => println!("  no plan: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
