//! `ad2entra validate`: every diagnostic as `PATH:LINE:COL: error[CODE]: message`.

use super::common::{load_policy, runtime};
use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path, online: bool) -> anyhow::Result<ExitCode> {
    let policy = match load_policy(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if online && online_check(&policy)? > 0 {
        return Ok(ExitCode::from(1));
    }
    for w in ad2entra::plan::federation::certificate_warnings(&policy, chrono::Utc::now()) {
        eprintln!("{w}");
    }
    println!("{}: valid", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Resolves every OU and group the policy names in the source whose domain holds it
/// (each source through the first of its DCs that answers); returns how many do not
/// exist.
fn online_check(policy: &ad2entra::policy::LoadedPolicy) -> anyhow::Result<usize> {
    if policy.sources.is_empty() {
        anyhow::bail!(ad2entra::ad::ldap::SourceConfigError::Missing);
    }
    let named = policy.named_dns();
    let several = policy.sources.len() > 1;
    let rt = runtime()?;
    let mut missing = 0;
    for (i, src) in policy.sources.iter().enumerate() {
        let origin = i as u16;
        let cfg = ad2entra::ad::ldap::LdapConfig::for_source(src)?;
        let mine: Vec<&(String, &ad2entra::model::Dn)> = named
            .iter()
            .filter(|(_, dn)| policy.source_of(dn).unwrap_or(0) == origin)
            .collect();
        let dc = rt.block_on(ad2entra::ad::ldap::pick_dc(&cfg))?;
        if several {
            println!("source {}: {}", src.name, dc.url);
        }
        if mine.is_empty() {
            continue;
        }
        let dns: Vec<ad2entra::model::Dn> = mine.iter().map(|(_, d)| (*d).clone()).collect();
        let resolved = rt.block_on(ad2entra::ad::ldap::resolve_dns(&dc, &dns))?;
        for (field, dn) in mine {
            match resolved.get(*dn).and_then(Option::as_ref) {
                Some((guid, current)) => {
                    println!("ok: {field}: {dn} → objectGUID {guid} ({current})")
                }
                None => {
                    missing += 1;
                    println!("error[not-found-in-ad]: {field}: {dn} does not exist in AD");
                }
            }
        }
    }
    if missing > 0 {
        eprintln!("{missing} name(s) in the policy do not resolve in AD");
    }
    Ok(missing)
}
