//! Terminal rendering, terraform-like: `+` create, `~` change, `-` remove, with
//! colour only when the caller says the output is a TTY.
//!
//! Written line by line to any writer ([`write_human`]), so a plan of 190,000 actions
//! is never held as text. Long lists collapse the way the Markdown renderer collapses
//! them: past [`LIST_LIMIT`] actions of one operation, or members of one action, a
//! line says how many more there are and where to see them all (the JSON plan).

use super::{property_changes, sign, summary_line};
use crate::diagnostics::Severity;
use crate::plan::{Action, Operation, Plan};
use owo_colors::OwoColorize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Actions of one operation, and members of one action, listed before the rest are
/// counted instead.
pub const LIST_LIMIT: usize = 1000;

fn paint(s: &str, sign: &str, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    match sign {
        "+" => s.green().to_string(),
        "~" => s.yellow().to_string(),
        "-" | "!" => s.red().to_string(),
        _ => s.to_string(),
    }
}

fn header(a: &Action, several_sources: bool) -> String {
    let ty = match a.object.object_type {
        crate::plan::ObjectType::User => "user",
        crate::plan::ObjectType::Group => "group",
        crate::plan::ObjectType::Domain => "federation",
    };
    let mut h = format!("{} {ty} {}", a.op.as_str(), a.object.name);
    let source = a.object.source.as_deref().filter(|_| several_sources);
    match (&a.object.dn, source) {
        (Some(dn), Some(s)) => h.push_str(&format!("  ({dn}, source {s})")),
        (Some(dn), None) => h.push_str(&format!("  ({dn})")),
        (None, _) => {
            if let Some(id) = &a.object.id {
                h.push_str(&format!("  (id {id})"));
            }
        }
    }
    h
}

fn body(out: &mut dyn Write, a: &Action, indent: &str, color: bool) -> io::Result<()> {
    for (s, k, old, new) in property_changes(a) {
        let line = match (old, new) {
            (None, Some(n)) => format!("{indent}    + {k}: {n}"),
            (Some(o), None) => format!("{indent}    - {k}: {o}"),
            (Some(o), Some(n)) => format!("{indent}    ~ {k}: {o} → {n}"),
            (None, None) => continue,
        };
        writeln!(out, "{}", paint(&line, s, color))?;
    }
    let s = if a.op == Operation::AddMembers {
        "+"
    } else {
        "-"
    };
    for m in a.members.iter().take(LIST_LIMIT) {
        writeln!(
            out,
            "{}",
            paint(&format!("{indent}    {s} member {}", m.name), s, color)
        )?;
    }
    if a.members.len() > LIST_LIMIT {
        writeln!(
            out,
            "{}",
            paint(
                &format!(
                    "{indent}    {s} … and {} more members",
                    a.members.len() - LIST_LIMIT
                ),
                s,
                color
            )
        )?;
    }
    for k in &a.skus {
        let s = if a.op == Operation::AssignLicense {
            "+"
        } else {
            "-"
        };
        writeln!(
            out,
            "{}",
            paint(
                &format!("{indent}    {s} licence {}", k.sku_part_number),
                s,
                color
            )
        )?;
    }
    writeln!(out, "{indent}    # {}", a.reason)
}

/// Renders the plan for a terminal, as one string (small plans, tests).
pub fn human(plan: &Plan, color: bool) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_human(&mut out, plan, color);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes the plan for a terminal, line by line.
pub fn write_human(out: &mut dyn Write, plan: &Plan, color: bool) -> io::Result<()> {
    writeln!(
        out,
        "Plan for policy {} ({}), source {} ({} objects), target {}",
        plan.policy.path,
        super::revision(plan),
        plan.source.server,
        plan.source.objects,
        plan.target.tenant.as_deref().unwrap_or("(snapshot)")
    )?;
    for s in super::several_sources(plan) {
        writeln!(
            out,
            "  source {}: {} ({} objects{})",
            s.name,
            s.server,
            s.objects,
            s.base_dn
                .as_deref()
                .map(|b| format!(", base {b}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "In scope: {} users, {} groups; owned in Entra: {}",
        plan.summary.in_scope_users, plan.summary.in_scope_groups, plan.summary.owned
    )?;
    writeln!(out)?;
    if !plan.summary.sign_in_changes.is_empty() {
        writeln!(out, "Sign-in changes (review before applying):")?;
        for line in super::sign_in_lines(plan) {
            writeln!(out, "{}", paint(&format!("  ! {line}"), "!", color))?;
        }
        writeln!(out)?;
    }
    let several = !super::several_sources(plan).is_empty();
    let mut shown: BTreeMap<Operation, usize> = BTreeMap::new();
    for a in &plan.actions {
        let n = shown.entry(a.op).or_default();
        *n += 1;
        if *n > LIST_LIMIT {
            continue;
        }
        let s = sign(a.op);
        writeln!(
            out,
            "{}",
            paint(&format!("  {s} {}", header(a, several)), s, color)
        )?;
        body(out, a, "  ", color)?;
    }
    let hidden: Vec<String> = shown
        .iter()
        .filter(|(_, n)| **n > LIST_LIMIT)
        .map(|(op, n)| format!("{} {}", n - LIST_LIMIT, op.as_str()))
        .collect();
    if !hidden.is_empty() {
        writeln!(
            out,
            "  … and {} more actions, not listed ({}): `--format json --out FILE` has every one",
            shown
                .values()
                .map(|n| n.saturating_sub(LIST_LIMIT))
                .sum::<usize>(),
            hidden.join(", ")
        )?;
    }
    if !plan.blocked.is_empty() {
        writeln!(out, "\nBlocked by safety rules:")?;
        for b in plan.blocked.iter().take(LIST_LIMIT) {
            writeln!(
                out,
                "{}",
                paint(&format!("  ! {}", header(&b.action, several)), "!", color)
            )?;
            writeln!(out, "      [{}] {}", b.code, b.reason)?;
        }
        if plan.blocked.len() > LIST_LIMIT {
            writeln!(
                out,
                "  … and {} more blocked actions, not listed",
                plan.blocked.len() - LIST_LIMIT
            )?;
        }
    }
    if !plan.diagnostics.is_empty() {
        writeln!(out, "\nDiagnostics:")?;
        for d in &plan.diagnostics {
            let text = d.to_string().replace('\n', "\n  ");
            let text = if color && d.severity == Severity::Error {
                text.red().to_string()
            } else {
                text
            };
            writeln!(out, "  {text}")?;
        }
    }
    writeln!(out, "\nPlan: {}.", summary_line(plan))
}
