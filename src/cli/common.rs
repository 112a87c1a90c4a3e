//! Shared IO for the subcommands: loading the policy (printing diagnostics), the source
//! (LDIF or LDAP) and the target (snapshot file or Graph).

use ad2entra::model::{SourceSnapshot, TargetSnapshot};
use ad2entra::policy::LoadedPolicy;
use anyhow::{Context, anyhow, bail};
use std::io::IsTerminal;
use std::path::Path;

/// Loads the policy or prints every diagnostic and fails.
pub fn load_policy(path: &Path) -> anyhow::Result<LoadedPolicy> {
    match ad2entra::policy::load_path(path) {
        Ok(p) => {
            for w in &p.warnings {
                eprintln!("{w}");
            }
            Ok(p)
        }
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let n = diags.iter().filter(|d| d.is_error()).count();
            bail!("the policy has {n} error(s)")
        }
    }
}

/// A tokio runtime for the IO edges.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves `env:NAME` / `file:PATH` secret references.
pub fn resolve_secret(reference: &str) -> anyhow::Result<String> {
    if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name)
            .map_err(|_| anyhow!("environment variable {name} (named by passwordFrom) is not set"))
    } else if let Some(path) = reference.strip_prefix("file:") {
        let s = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the secret file {path}"))?;
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    } else {
        bail!("secrets must be referenced as env:NAME or file:PATH")
    }
}

/// The LDAP connection the policy describes.
pub fn ldap_config(policy: &LoadedPolicy) -> anyhow::Result<ad2entra::source::ldap::LdapConfig> {
    let src = policy
        .policy
        .source
        .as_ref()
        .ok_or_else(|| anyhow!("the policy has no `source` section: give --source-ldif FILE or add source: {{url, bindDn, passwordFrom, baseDn}}"))?;
    let mut cfg = ad2entra::source::ldap::LdapConfig::new(
        &src.url,
        &src.bind_dn,
        resolve_secret(&src.password_from)?,
        &src.base_dn,
    );
    cfg.ca_file = src.ca_file.as_ref().map(Into::into);
    cfg.allow_insecure = src.allow_insecure;
    if let Some(t) = src
        .timeout
        .as_deref()
        .and_then(ad2entra::policy::load::parse_duration)
    {
        cfg.timeout = std::time::Duration::from_secs(t);
    }
    Ok(cfg)
}

/// Reads AD: the LDIF file when given, else the policy's LDAP source. A failed or
/// partial read is an error: no plan is made from it. With a state file, OUs and groups
/// the policy names are followed by objectGUID when renamed or moved (the policy's DN is
/// replaced for this run, with a warning).
pub fn load_source(
    policy: &mut LoadedPolicy,
    ldif: Option<&Path>,
    state_path: Option<&Path>,
) -> anyhow::Result<SourceSnapshot> {
    if let Some(path) = ldif {
        return ad2entra::source::ldif::read_ldif_file(path)
            .with_context(|| format!("cannot read {}", path.display()));
    }
    let cfg = ldap_config(policy)?;
    let mut state = match state_path {
        Some(p) => ad2entra::state::State::load(p)?,
        None => ad2entra::state::State::default(),
    };
    let rt = runtime()?;
    let snapshot = rt.block_on(async {
        follow_named_dns(policy, &cfg, &mut state).await?;
        let req = ad2entra::source::ldap::ReadRequest {
            attributes: policy.source_attributes(),
        };
        ad2entra::source::ldap::read_full(&cfg, &req)
            .await
            .with_context(|| format!("reading AD from {} failed; no plan was made", cfg.url))
    })?;
    if let Some(p) = state_path {
        state.save(p)?;
    }
    Ok(snapshot)
}

/// Resolves every OU and group the policy names. One that no longer resolves by DN is
/// looked up by the objectGUID remembered in the state; if that fails too, the cycle
/// stops: a vanished include OU would otherwise look like "everything left scope".
async fn follow_named_dns(
    policy: &mut LoadedPolicy,
    cfg: &ad2entra::source::ldap::LdapConfig,
    state: &mut ad2entra::state::State,
) -> anyhow::Result<()> {
    let named: Vec<ad2entra::model::Dn> = policy
        .named_dns_mut()
        .into_iter()
        .map(|d| d.clone())
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let resolved = ad2entra::source::ldap::resolve_dns(cfg, &named)
        .await
        .context("cannot resolve the policy's OUs and groups in AD")?;
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
        let guids: Vec<ad2entra::model::ObjectGuid> = follow.iter().map(|(_, g)| *g).collect();
        let now = ad2entra::source::ldap::resolve_guids(cfg, &guids)
            .await
            .context("cannot look up renamed OUs by objectGUID")?;
        for (old, guid) in follow {
            match now.get(&guid).and_then(Option::as_ref) {
                Some(current) => {
                    for slot in policy.named_dns_mut() {
                        if *slot == old {
                            *slot = current.clone();
                        }
                    }
                    policy.warnings.push(
                        ad2entra::diagnostics::Diagnostic::warning(
                            "scope-dn-renamed",
                            format!("{old} was renamed or moved in AD; followed by objectGUID {guid} to {current}"),
                        )
                        .hint("update the policy to the new DN"),
                    );
                }
                None => missing.push(old.to_string()),
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "source-failure guard: these scope OUs/groups no longer resolve in AD: {}; refusing to plan",
            missing.join("; ")
        );
    }
    Ok(())
}

/// Everything a plan is computed from: the policy, AD and Entra.
pub struct Loaded {
    pub policy: LoadedPolicy,
    pub source: SourceSnapshot,
    pub target: TargetSnapshot,
}

/// Loads the policy, then reads AD and Entra as the inputs say.
pub fn load_inputs(inputs: &super::Inputs) -> anyhow::Result<Loaded> {
    let mut policy = load_policy(&inputs.policy)?;
    let source = load_source(
        &mut policy,
        inputs.source_ldif.as_deref(),
        inputs.state.as_deref(),
    )?;
    let target = load_target(&policy, inputs.target_snapshot.as_deref())?;
    Ok(Loaded {
        policy,
        source,
        target,
    })
}

/// Reads Entra: the snapshot file when given, else Graph when credentials are set.
pub fn load_target(
    policy: &LoadedPolicy,
    snapshot: Option<&Path>,
) -> anyhow::Result<TargetSnapshot> {
    if let Some(path) = snapshot {
        // Streamed: a 100,000-user snapshot is ~100 MB of JSON not worth holding twice.
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        return serde_json::from_reader(std::io::BufReader::with_capacity(1 << 20, file))
            .with_context(|| format!("{} is not a target snapshot", path.display()));
    }
    if std::env::var("AZURE_TENANT_ID").is_err() {
        bail!(
            "no target: give --target-snapshot FILE, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and a credential to read Entra through Graph"
        );
    }
    let client = super::graph::client_from_env()?;
    let rt = runtime()?;
    rt.block_on(super::graph::read_target(
        &client,
        policy,
        super::graph::extension_app_id(),
    ))
}

/// Colour only on a terminal, and never when NO_COLOR is set.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
