//! Renderers: the same `Plan` value as text for a terminal, JSON for machines, and
//! Markdown for a pull-request comment. Pure functions from a plan to text: written to
//! any writer as they go (`write_*`: a plan of 190,000 actions is hundreds of MB of
//! JSON, never held whole), or returned as a string for small plans and tests.

mod human;
mod markdown;

pub use human::{LIST_LIMIT, human, write_human};
pub use markdown::markdown;

use crate::plan::{Action, Operation, Plan};
use serde_json::Value;
use std::io::{self, Write};

/// The plan itself, pretty-printed.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// [`json`], written as it is produced.
pub fn write_json(out: &mut dyn Write, plan: &Plan) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan).map_err(io::Error::from)
}

/// Writes the plan in the given format; colour only applies to `human`.
pub fn write(out: &mut dyn Write, plan: &Plan, format: Format, color: bool) -> io::Result<()> {
    match format {
        Format::Human => write_human(out, plan, color),
        Format::Json => write_json(out, plan),
        Format::Markdown => out.write_all(markdown(plan).as_bytes()),
    }
}

/// Output formats `plan --format` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

/// Renders in the given format; colour only applies to `human`.
pub fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Human => human(plan, color),
        Format::Json => json(plan),
        Format::Markdown => markdown(plan),
    }
}

/// terraform-like sign for an operation.
pub(crate) fn sign(op: Operation) -> &'static str {
    match op {
        Operation::Create
        | Operation::Restore
        | Operation::AddMembers
        | Operation::AssignLicense => "+",
        Operation::Update | Operation::Adopt | Operation::Disable => "~",
        Operation::Delete | Operation::RemoveMembers | Operation::RemoveLicense => "-",
    }
}

/// One line per changed property: (sign, property, old, new).
pub(crate) fn property_changes(
    a: &Action,
) -> Vec<(&'static str, String, Option<String>, Option<String>)> {
    let before = a.before.as_ref().and_then(Value::as_object);
    let after = a.after().ok();
    let after = after.as_ref().and_then(Value::as_object);
    let mut keys: Vec<&String> = before
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(after.into_iter().flat_map(|m| m.keys()))
        .collect();
    keys.sort();
    keys.dedup();
    let certificate = a.object.object_type == crate::plan::ObjectType::Domain;
    let show = |k: &str, v: &Value| match v {
        Value::String(s) if certificate && k.ends_with("igningCertificate") => {
            describe_certificate(s)
        }
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    keys.into_iter()
        .filter_map(|k| {
            let show = |v: &Value| show(k, v);
            let old = before.and_then(|m| m.get(k));
            let new = after.and_then(|m| m.get(k));
            match (old, new) {
                (Some(o), Some(n)) if o == n => None,
                (None, Some(n)) => Some(("+", k.clone(), None, Some(show(n)))),
                (Some(o), None) => Some(("-", k.clone(), Some(show(o)), None)),
                (Some(o), Some(n)) => Some(("~", k.clone(), Some(show(o)), Some(show(n)))),
                (None, None) => None,
            }
        })
        .collect()
}

/// A signing certificate as a reviewer wants to see it: whose, until when, and the start
/// of its base64 (the JSON plan keeps all of it).
fn describe_certificate(b64: &str) -> String {
    let head: String = b64.chars().take(16).collect();
    match crate::policy::federation::parse_certificate(b64) {
        Ok(c) => format!(
            "certificate {} valid until {} ({head}…)",
            c.subject,
            c.not_after
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        Err(_) => format!("{head}… (not a certificate)"),
    }
}

/// One line per domain the plan switches to federated sign-in.
pub(crate) fn sign_in_lines(plan: &Plan) -> Vec<String> {
    plan.summary
        .sign_in_changes
        .iter()
        .map(|c| {
            let mut line = format!(
                "{} switches to federated sign-in at {} for its {} users",
                c.domain, c.passive_sign_in_uri, c.users
            );
            if c.users_without_immutable_id > 0 {
                line.push_str(&format!(
                    "; {} without onPremisesImmutableId could not sign in (federation-domain-has-cloud-users)",
                    c.users_without_immutable_id
                ));
            }
            line
        })
        .collect()
}

/// The plan's sources when there are several (a plan of one source does not repeat
/// its name on every line).
pub(crate) fn several_sources(plan: &Plan) -> &[crate::plan::SourcePartProvenance] {
    match plan.source.sources.as_slice() {
        [_, _, ..] => &plan.source.sources,
        _ => &[],
    }
}

/// "5 to create, 1 to update, …" in plan order.
pub(crate) fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let parts: Vec<String> = [
        (s.create, "to create"),
        (s.restore, "to restore"),
        (s.adopt, "to adopt"),
        (s.update, "to update"),
        (s.add_members, "member additions"),
        (s.remove_members, "member removals"),
        (s.assign_license, "licence assignments"),
        (s.remove_license, "licence removals"),
        (s.disable, "to disable"),
        (s.delete, "to delete"),
        (s.blocked, "blocked"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "no changes".to_string()
    } else {
        parts.join(", ")
    }
}

/// Short hash for headers.
/// The policy's revision for a header: `commit 1a2b3c4d5e6f, content 9f8e7d6c5b4a` when
/// the policy came from git, else the content hash alone.
pub(crate) fn revision(plan: &crate::plan::Plan) -> String {
    match &plan.policy.commit {
        Some(c) => format!(
            "commit {}, content {}",
            short(c),
            short(&plan.policy.content_hash)
        ),
        None => short(&plan.policy.content_hash).to_string(),
    }
}

pub(crate) fn short(hash: &str) -> &str {
    let h = hash.strip_prefix("sha256:").unwrap_or(hash);
    &h[..h.len().min(12)]
}
