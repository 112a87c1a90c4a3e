//! `ad2entra run` (the reconciler), `ad2entra sync-now` and `ad2entra status`.

use super::common::runtime;
use ad2entra::reconciler::cycle::AdFactory;
use ad2entra::reconciler::edges::{
    AdEdge, EntraEdge, FilePolicy, GraphEntra, LdifAd, PolicyEdge, SnapshotEntra, ldap_edges,
};
use ad2entra::reconciler::status::Status;
use ad2entra::reconciler::triggers::{Trigger, TriggerReason};
use ad2entra::reconciler::{Reconciler, RunConfig};
use anyhow::{Context, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::plan::parse_duration;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Policy file or directory (plain files, no git). Re-read every --git-poll.
    #[arg(long, env = "AD2ENTRA_POLICY", conflicts_with = "policy_repo")]
    pub policy: Option<PathBuf>,
    #[command(flatten)]
    pub repo: super::gitops::RepoArgs,
    /// How often the policy source is checked for a new revision.
    #[arg(long, env = "AD2ENTRA_GIT_POLL", default_value = "1m", value_parser = parse_duration)]
    pub git_poll: Duration,
    /// Address of /healthz, /readyz, /metrics, /status and POST /sync. Off loopback,
    /// POST /sync requires AD2ENTRA_TRIGGER_TOKEN.
    #[arg(long, env = "AD2ENTRA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Plan and log every cycle, never write (staging mode; standby instance).
    #[arg(long)]
    pub plan_only: bool,
    /// State file (watermarks, run history, followed OUs). Losing it costs a full cycle.
    #[arg(long, env = "AD2ENTRA_STATE")]
    pub state: Option<PathBuf>,
    /// Read AD from an LDIF file instead of LDAP (smoke runs).
    #[arg(long)]
    pub source_ldif: Option<PathBuf>,
    /// Read Entra from a JSON snapshot instead of Graph (smoke runs; implies --plan-only).
    #[arg(long)]
    pub target_snapshot: Option<PathBuf>,
    /// How long SIGTERM waits for the batch in flight before exiting.
    #[arg(long, env = "AD2ENTRA_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Quiet time after an AD change notification before the delta cycle runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Do not open AD change-notification searches (poll on the interval only).
    #[arg(long)]
    pub no_watch: bool,
}

fn policy_edge(args: &RunArgs) -> anyhow::Result<Box<dyn PolicyEdge>> {
    match (&args.policy, &args.repo.policy_repo) {
        (Some(p), None) => Ok(Box::new(FilePolicy::new(p.clone()))),
        (None, Some(_)) => args.repo.policy_edge(args.state.as_deref()),
        _ => bail!("give --policy PATH or --policy-repo URL"),
    }
}

fn entra_edge(args: &RunArgs) -> anyhow::Result<Box<dyn EntraEdge>> {
    match &args.target_snapshot {
        Some(p) => Ok(Box::new(SnapshotEntra { path: p.clone() })),
        None => Ok(Box::new(GraphEntra {
            client: super::graph::client_from_env()?,
            env_extension_app_id: std::env::var("AD2ENTRA_EXTENSION_APP_ID")
                .ok()
                .filter(|v| !v.trim().is_empty()),
        })),
    }
}

fn ad_factory(args: &RunArgs) -> AdFactory {
    match &args.source_ldif {
        Some(p) => {
            let p = p.clone();
            Box::new(move |_| {
                let edge: Box<dyn AdEdge> = Box::new(LdifAd { path: p.clone() });
                Ok(vec![edge])
            })
        }
        // One edge per source of the policy.
        None => Box::new(ldap_edges),
    }
}

/// Maps SIGHUP to a sync trigger and SIGTERM/SIGINT to shutdown.
fn handle_signals(h: ad2entra::reconciler::Handle) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: sync requested");
                    let _ = h.triggers.send(Trigger::new(TriggerReason::Signal));
                }
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    h.shutdown.cancel();
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    h.shutdown.cancel();
                }
            }
        }
    });
    Ok(())
}

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let plan_only = args.plan_only || args.target_snapshot.is_some();
    if args.target_snapshot.is_some() && !args.plan_only {
        tracing::warn!("--target-snapshot cannot be written: running plan-only");
    }
    let cfg = RunConfig {
        plan_only,
        state_path: args.state.clone(),
        listen: Some(args.listen),
        policy_poll: args.git_poll,
        debounce: args.debounce,
        shutdown_grace: args.shutdown_grace,
        trigger_token: std::env::var("AD2ENTRA_TRIGGER_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(ad2entra::secrets::Secret::new),
        watch_ad: !args.no_watch && args.source_ldif.is_none(),
        ..RunConfig::default()
    };
    let rt = runtime()?;
    rt.block_on(async {
        let reconciler =
            Reconciler::new(cfg, policy_edge(args)?, ad_factory(args), entra_edge(args)?);
        handle_signals(reconciler.handle())?;
        let listener = reconciler.bind().await?;
        if let Some(l) = &listener {
            eprintln!("ad2entra run: listening on http://{}", l.local_addr()?);
        }
        reconciler.run(listener).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct RemoteArgs {
    /// The reconciler's listener.
    #[arg(long, env = "AD2ENTRA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")
}

/// `ad2entra sync-now [--full]`: Entra Connect's `Start-ADSyncSyncCycle`.
pub fn sync_now(remote: &RemoteArgs, full: bool) -> anyhow::Result<ExitCode> {
    let url = format!(
        "{}/sync{}",
        remote.url.trim_end_matches('/'),
        if full { "?full=true" } else { "" }
    );
    let rt = runtime()?;
    rt.block_on(async {
        let mut req = http_client()?.post(&url);
        if let Ok(t) = std::env::var("AD2ENTRA_TRIGGER_TOKEN")
            && !t.is_empty()
        {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the reconciler at {}", remote.url))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if status.is_success() {
            println!(
                "{} sync queued at {}",
                if full { "Full" } else { "Delta" },
                remote.url
            );
            Ok(ExitCode::SUCCESS)
        } else {
            bail!("the reconciler refused: {status}: {}", body.trim())
        }
    })
}

/// `ad2entra status [--json]`: the reconciler's status for a person, like `flux get`.
pub fn status(remote: &RemoteArgs, json: bool) -> anyhow::Result<ExitCode> {
    let url = format!("{}/status", remote.url.trim_end_matches('/'));
    let rt = runtime()?;
    rt.block_on(async {
        let resp = http_client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach the reconciler at {}", remote.url))?;
        if !resp.status().is_success() {
            bail!("{url}: {}", resp.status());
        }
        let text = resp.text().await.context("reading /status")?;
        if json {
            println!("{text}");
        } else {
            let s: Status = serde_json::from_str(&text).context("/status is not status JSON")?;
            print!("{}", s.render_human());
        }
        Ok(ExitCode::SUCCESS)
    })
}
