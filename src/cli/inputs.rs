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
    // Watermarks are the reconciler's: a one-off read keeps the state's as they were.
    let watermarks = state.ad_watermarks.clone();
    let mut sources = AdSources::new(edges);
    let rt = runtime()?;
    rt.block_on(sources.read(policy, &mut state, CycleKind::Full, chrono::Utc::now()))
        .with_context(|| {
            format!(
                "reading AD from {} failed; no plan was made",
                servers.join(", ")
            )
        })?;
    state.ad_watermarks = watermarks;
    let snapshot = sources
        .snapshot()
        .map(std::borrow::Cow::into_owned)
        .context("the AD read returned no snapshot")?;
    if let Some(p) = state_path {
        state.save(p)?;
    }
    Ok(snapshot)
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
    let app = super::graph::extension_app_id(Some(policy))?;
    rt.block_on(super::graph::read_target(&client, policy, Some(app)))
}
