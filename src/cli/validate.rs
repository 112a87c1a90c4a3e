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
    if online {
        let cfg = ad2entra::ad::ldap::LdapConfig::for_policy(&policy)?;
        let named: Vec<(String, ad2entra::model::Dn)> = [
            ("scope.users.includeOUs", &policy.user_include_ous),
            ("scope.users.excludeOUs", &policy.user_exclude_ous),
            ("scope.users.memberOf", &policy.user_member_of),
            ("scope.groups.includeOUs", &policy.group_include_ous),
            ("scope.groups.excludeOUs", &policy.group_exclude_ous),
        ]
        .into_iter()
        .flat_map(|(field, dns)| dns.iter().map(move |d| (field.to_string(), d.clone())))
        .chain(
            policy
                .licenses
                .iter()
                .map(|l| ("licenses.whenMemberOf".to_string(), l.group.clone())),
        )
        .collect();
        let dns: Vec<ad2entra::model::Dn> = named.iter().map(|(_, d)| d.clone()).collect();
        let resolved = runtime()?.block_on(ad2entra::ad::ldap::resolve_dns(&cfg, &dns))?;
        let mut missing = 0;
        for (field, dn) in &named {
            match resolved.get(dn).and_then(Option::as_ref) {
                Some((guid, current)) => {
                    println!("ok: {field}: {dn} → objectGUID {guid} ({current})")
                }
                None => {
                    missing += 1;
                    println!("error[not-found-in-ad]: {field}: {dn} does not exist in AD");
                }
            }
        }
        if missing > 0 {
            eprintln!("{missing} name(s) in the policy do not resolve in AD");
            return Ok(ExitCode::from(1));
        }
    }
    for w in ad2entra::plan::federation::certificate_warnings(&policy, chrono::Utc::now()) {
        eprintln!("{w}");
    }
    println!("{}: valid", path.display());
    Ok(ExitCode::SUCCESS)
}
