//! Loading what a plan is computed from, as the command line names it: the source
//! (LDIF file or the policy's LDAP source) and the target (snapshot file or Graph).

use super::common::runtime;
use ad2entra::model::{SourceSnapshot, TargetSnapshot};
use ad2entra::policy::LoadedPolicy;
use anyhow::{Context, bail};
use std::path::Path;

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
        return ad2entra::ad::ldif::read_ldif_file(path)
            .with_context(|| format!("cannot read {}", path.display()));
    }
    let rt = runtime()?;
    let live = LiveSource::prepare(policy, state_path, &rt)?;
    let snapshot = rt.block_on(live.read(policy))?;
    live.finish(state_path)?;
    Ok(snapshot)
}

/// The policy's LDAP source, its named DNs followed (see [`load_source`]).
struct LiveSource {
    cfg: ad2entra::ad::ldap::LdapConfig,
    state: ad2entra::state::State,
}

impl LiveSource {
    fn prepare(
        policy: &mut LoadedPolicy,
        state_path: Option<&Path>,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        let cfg = ad2entra::ad::ldap::LdapConfig::for_policy(policy)?;
        let mut state = match state_path {
            Some(p) => {
                let loaded = ad2entra::state::State::load_or_recover(p)?;
                if let (Some(aside), Some(problem)) = (&loaded.set_aside, &loaded.problem) {
                    eprintln!(
                        "warning[state-set-aside]: {problem}; moved to {} and starting fresh",
                        aside.display()
                    );
                }
                loaded.state
            }
            None => ad2entra::state::State::default(),
        };
        rt.block_on(ad2entra::ad::scope_follow::follow_named_dns(
            policy, &cfg, &mut state,
        ))?;
        Ok(Self { cfg, state })
    }

    async fn read(&self, policy: &LoadedPolicy) -> anyhow::Result<SourceSnapshot> {
        let req = ad2entra::ad::ldap::ReadRequest {
            attributes: policy.source_attributes(),
        };
        ad2entra::ad::ldap::read_full(&self.cfg, &req)
            .await
            .with_context(|| format!("reading AD from {} failed; no plan was made", self.cfg.url))
    }

    fn finish(self, state_path: Option<&Path>) -> anyhow::Result<()> {
        if let Some(p) = state_path {
            self.state.save(p)?;
        }
        Ok(())
    }
}

/// Everything a plan is computed from: the policy, AD and Entra.
pub struct Loaded {
    pub policy: LoadedPolicy,
    pub source: SourceSnapshot,
    pub target: TargetSnapshot,
}

/// Loads the policy, then reads AD and Entra as the inputs say.
pub fn load_inputs(inputs: &super::Inputs) -> anyhow::Result<Loaded> {
    let mut policy = super::gitops::load(
        inputs.policy.as_deref(),
        &inputs.repo,
        inputs.state.as_deref(),
    )?;
    let live_both = inputs.source_ldif.is_none()
        && inputs.target_snapshot.is_none()
        && std::env::var("AZURE_TENANT_ID").is_ok();
    let (source, target) = if live_both {
        // AD and Graph read at the same time: the plan waits for the slower one only.
        let rt = runtime()?;
        let live = LiveSource::prepare(&mut policy, inputs.state.as_deref(), &rt)?;
        let client = super::graph::client_from_env()?;
        let app = super::graph::extension_app_id(Some(&policy))?;
        let (source, target) = rt.block_on(async {
            tokio::join!(
                live.read(&policy),
                super::graph::read_target(&client, &policy, Some(app))
            )
        });
        let (source, target) = (source?, target?);
        live.finish(inputs.state.as_deref())?;
        (source, target)
    } else {
        let source = load_source(
            &mut policy,
            inputs.source_ldif.as_deref(),
            inputs.state.as_deref(),
        )?;
        (
            source,
            load_target(&policy, inputs.target_snapshot.as_deref())?,
        )
    };
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
    let app = super::graph::extension_app_id(Some(policy))?;
    rt.block_on(super::graph::read_target(&client, policy, Some(app)))
}
