//! Terminal rendering, terraform-like: `+` create, `~` change, `-` remove, with
//! colour only when the caller says the output is a TTY.

use super::{property_changes, sign, summary_line};
use crate::diagnostics::Severity;
use crate::plan::{Action, Operation, Plan};
use owo_colors::OwoColorize;
use std::fmt::Write;

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
        (Some(dn), Some(s)) => {
            let _ = write!(h, "  ({dn}, source {s})");
        }
        (Some(dn), None) => {
            let _ = write!(h, "  ({dn})");
        }
        (None, _) => {
            if let Some(id) = &a.object.id {
                let _ = write!(h, "  (id {id})");
            }
        }
    }
    h
}

fn body(out: &mut String, a: &Action, indent: &str, color: bool) {
    for (s, k, old, new) in property_changes(a) {
        let line = match (old, new) {
            (None, Some(n)) => format!("{indent}    + {k}: {n}"),
            (Some(o), None) => format!("{indent}    - {k}: {o}"),
            (Some(o), Some(n)) => format!("{indent}    ~ {k}: {o} → {n}"),
            (None, None) => continue,
        };
        let _ = writeln!(out, "{}", paint(&line, s, color));
    }
    for m in &a.members {
        let s = if a.op == Operation::AddMembers {
            "+"
        } else {
            "-"
        };
        let _ = writeln!(
            out,
            "{}",
            paint(&format!("{indent}    {s} member {}", m.name), s, color)
        );
    }
    for k in &a.skus {
        let s = if a.op == Operation::AssignLicense {
            "+"
        } else {
            "-"
        };
        let _ = writeln!(
            out,
            "{}",
            paint(
                &format!("{indent}    {s} licence {}", k.sku_part_number),
                s,
                color
            )
        );
    }
    let _ = writeln!(out, "{indent}    # {}", a.reason);
}

/// Renders the plan for a terminal.
pub fn human(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for policy {} ({}), source {} ({} objects), target {}",
        plan.policy.path,
        super::revision(plan),
        plan.source.server,
        plan.source.objects,
        plan.target.tenant.as_deref().unwrap_or("(snapshot)")
    );
    for s in super::several_sources(plan) {
        let _ = writeln!(
            out,
            "  source {}: {} ({} objects{})",
            s.name,
            s.server,
            s.objects,
            s.base_dn
                .as_deref()
                .map(|b| format!(", base {b}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "In scope: {} users, {} groups; owned in Entra: {}",
        plan.summary.in_scope_users, plan.summary.in_scope_groups, plan.summary.owned
    );
    let _ = writeln!(out);
    if !plan.summary.sign_in_changes.is_empty() {
        let _ = writeln!(out, "Sign-in changes (review before applying):");
        for line in super::sign_in_lines(plan) {
            let _ = writeln!(out, "{}", paint(&format!("  ! {line}"), "!", color));
        }
        let _ = writeln!(out);
    }
    let several = !super::several_sources(plan).is_empty();
    for a in &plan.actions {
        let s = sign(a.op);
        let _ = writeln!(
            out,
            "{}",
            paint(&format!("  {s} {}", header(a, several)), s, color)
        );
        body(&mut out, a, "  ", color);
    }
    if !plan.blocked.is_empty() {
        let _ = writeln!(out, "\nBlocked by safety rules:");
        for b in &plan.blocked {
            let _ = writeln!(
                out,
                "{}",
                paint(&format!("  ! {}", header(&b.action, several)), "!", color)
            );
            let _ = writeln!(out, "      [{}] {}", b.code, b.reason);
        }
    }
    if !plan.diagnostics.is_empty() {
        let _ = writeln!(out, "\nDiagnostics:");
        for d in &plan.diagnostics {
            let text = d.to_string().replace('\n', "\n  ");
            let text = if color && d.severity == Severity::Error {
                text.red().to_string()
            } else {
                text
            };
            let _ = writeln!(out, "  {text}");
        }
    }
    let _ = writeln!(out, "\nPlan: {}.", summary_line(plan));
    out
}
