//! Loading what a plan is computed from, as the command line names it: the source
//! (LDIF file or the policy's LDAP source) and the target (snapshot file or Graph).

use super::common::runtime;
use ad2entra::model::{SourceSnapshot, TargetSnapshot};
use ad2entra::policy::LoadedPolicy;
use ad2entra::reconciler::ad_sources::AdSources;
use ad2entra::state::CycleKind;
use anyhow::{Context, bail};
use std::path::Path;

/// Reads AD: the LDIF file when given (one file may hold several sources' objects: each
/// belongs to the source whose base DN holds it), else every LDAP source of the policy,
/// each from the first of its DCs that answers. A failed or partial read of any source
/// is an error: no plan is made from it. With a state file, OUs and groups the policy
/// names are followed by objectGUID when renamed or moved (the policy's DN is replaced
/// for this run, with a warning).
pub fn load_source(
    policy: &mut LoadedPolicy,
    ldif: Option<&Path>,
    state_path: Option<&Path>,
) -> anyhow::Result<SourceSnapshot> {
    if let Some(path) = ldif {
        let mut snapshot = ad2entra::ad::ldif::read_ldif_file(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        ad2entra::sources::tag_by_base_dn(&mut snapshot, policy);
        return Ok(snapshot);
    }
    let rt = runtime()?;
    let mut live = LiveSource::prepare(policy, state_path, &rt)?;
    let snapshot = rt.block_on(live.read(policy))?;
    live.finish(state_path).map(|()| snapshot)
}

/// The policy's AD sources, connected and their named DNs followed (see [`load_source`]).
struct LiveSource {
    sources: AdSources,
    servers: Vec<String>,
    state: ad2entra::state::State,
    /// Watermarks are the reconciler's: a one-off read keeps the state's as they were.
    watermarks: std::collections::BTreeMap<String, ad2entra::state::AdWatermark>,
}

impl LiveSource {
    fn prepare(
        policy: &mut LoadedPolicy,
        state_path: Option<&Path>,
        rt: &tokio::runtime::Runtime,
    ) -> anyhow::Result<Self> {
        let edges = ad2entra::reconciler::edges::ldap_edges(policy)?;
        let servers: Vec<String> = edges.iter().map(|e| e.server()).collect();
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
        let watermarks = state.ad_watermarks.clone();
        let mut sources = AdSources::new(edges);
        rt.block_on(sources.prepare(policy, &mut state))
            .with_context(|| Self::failed(&servers))?;
        Ok(Self {
            sources,
            servers,
            state,
            watermarks,
        })
    }

    fn failed(servers: &[String]) -> String {
        format!(
            "reading AD from {} failed; no plan was made",
            servers.join(", ")
        )
    }

    /// Reads every source in full, the policy borrowed shared (Graph may read at the
    /// same time).
    async fn read(&mut self, policy: &LoadedPolicy) -> anyhow::Result<SourceSnapshot> {
        self.sources
            .read_prepared(policy, &mut self.state, CycleKind::Full, chrono::Utc::now())
            .await
            .with_context(|| Self::failed(&self.servers))?;
        self.sources
            .take_snapshot()
            .context("the AD read returned no snapshot")
    }

    fn finish(mut self, state_path: Option<&Path>) -> anyhow::Result<()> {
        self.state.ad_watermarks = self.watermarks;
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
        let mut live = LiveSource::prepare(&mut policy, inputs.state.as_deref(), &rt)?;
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
