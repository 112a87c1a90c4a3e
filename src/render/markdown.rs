//! Markdown for a pull-request comment: a summary table first, then the actions; long
//! plans collapse into `<details>` so the comment stays readable.

use super::{property_changes, sign, summary_line};
use crate::plan::Plan;
use std::fmt::Write;

/// Above this many actions the list is collapsed.
pub const COLLAPSE_AFTER: usize = 20;

fn esc(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the plan as Markdown.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### ad2entra plan: {}\n", summary_line(plan));
    let _ = writeln!(
        out,
        "Policy `{}` (`{}`) · source `{}` ({} objects) · target `{}`\n",
        plan.policy.path,
        super::revision(plan),
        plan.source.server,
        plan.source.objects,
        plan.target.tenant.as_deref().unwrap_or("snapshot")
    );
    let several = super::several_sources(plan);
    if !several.is_empty() {
        let _ = writeln!(out, "| source | read from | objects |\n|---|---|---:|");
        for s in several {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} |",
                esc(&s.name),
                esc(&s.server),
                s.objects
            );
        }
        let _ = writeln!(out);
    }
    let s = &plan.summary;
    let _ = writeln!(
        out,
        "| create | update | adopt | restore | members ± | licences ± | disable | delete | blocked | errors |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | +{} / -{} | +{} / -{} | {} | {} | {} | {} |\n",
        s.create,
        s.update,
        s.adopt,
        s.restore,
        s.add_members,
        s.remove_members,
        s.assign_license,
        s.remove_license,
        s.disable,
        s.delete,
        s.blocked,
        s.errors
    );
    if !plan.summary.sign_in_changes.is_empty() {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **Sign-in changes** — review before merging:"
        );
        for line in super::sign_in_lines(plan) {
            let _ = writeln!(out, "> - {}", esc(&line));
        }
        let _ = writeln!(out);
    }
    if !plan.blocked.is_empty() {
        let _ = writeln!(
            out,
            "> [!WARNING]\n> {} actions blocked by safety rules:",
            plan.blocked.len()
        );
        for b in &plan.blocked {
            let _ = writeln!(
                out,
                "> - `{}` {} **{}**: {}",
                b.code,
                b.action.op.as_str(),
                esc(&b.action.object.name),
                esc(&b.reason)
            );
        }
        let _ = writeln!(out);
    }
    if !plan.actions.is_empty() {
        let collapse = plan.actions.len() > COLLAPSE_AFTER;
        if collapse {
            let _ = writeln!(
                out,
                "<details><summary>{} actions</summary>\n",
                plan.actions.len()
            );
        }
        let _ = writeln!(out, "```diff");
        for a in &plan.actions {
            let kind = match a.object.object_type {
                crate::plan::ObjectType::Domain => "federation ",
                _ => "",
            };
            let from = match (&a.object.source, several.is_empty()) {
                (Some(s), false) => format!("  (source {s})"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "{} {} {kind}{}{from}",
                sign(a.op),
                a.op.as_str(),
                a.object.name
            );
            for (s, k, old, new) in property_changes(a) {
                let _ = match (old, new) {
                    (None, Some(n)) => writeln!(out, "{s}   {k}: {n}"),
                    (Some(o), None) => writeln!(out, "{s}   {k}: {o}"),
                    (Some(o), Some(n)) => writeln!(out, "!   {k}: {o} -> {n}"),
                    (None, None) => Ok(()),
                };
            }
            for m in &a.members {
                let _ = writeln!(out, "{}   member {}", sign(a.op), m.name);
            }
            for k in &a.skus {
                let _ = writeln!(out, "{}   licence {}", sign(a.op), k.sku_part_number);
            }
        }
        let _ = writeln!(out, "```");
        if collapse {
            let _ = writeln!(out, "\n</details>");
        }
        let _ = writeln!(out);
    }
    if !plan.diagnostics.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>{} diagnostics ({} errors)</summary>\n",
            plan.diagnostics.len(),
            s.errors
        );
        for d in &plan.diagnostics {
            let _ = writeln!(out, "- {}", esc(&d.to_string().replace('\n', " — ")));
        }
        let _ = writeln!(out, "\n</details>");
    }
    out
}
