//! `graph-emulator`: runs the Microsoft Graph emulator as a standalone server.

use clap::Parser;
use graph_emulator::{Emulator, EmulatorConfig, FaultConfig, Seed};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Stateful Microsoft Graph v1.0 emulator (users, groups, delta, $batch, throttling, faults).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// JSON seed file (see the seed module docs).
    #[arg(long)]
    seed: Option<PathBuf>,
    /// JSON configuration file (EmulatorConfig, camelCase); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Divides throttling windows and Retry-After (100 = 100x faster).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Tenant id.
    #[arg(long)]
    tenant_id: Option<String>,
    /// Client id.
    #[arg(long)]
    client_id: Option<String>,
    /// Client secret.
    #[arg(long)]
    client_secret: Option<String>,
    /// PEM certificate or public key for client assertions.
    #[arg(long)]
    client_certificate: Option<PathBuf>,
    /// Fraction of requests answered with 500/503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Added latency in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Replication lag in milliseconds.
    #[arg(long, default_value_t = 0)]
    replication_lag_ms: u64,
    /// Fraction of connections dropped before processing.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fraction of committed writes whose connection is dropped.
    #[arg(long, default_value_t = 0.0)]
    drop_after_commit_rate: f64,
    /// Disable throttling.
    #[arg(long)]
    no_throttling: bool,
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    let mut cfg = match &args.config {
        Some(p) => serde_json::from_str::<EmulatorConfig>(&read(p)?)
            .map_err(|e| format!("invalid config: {e}"))?,
        None => EmulatorConfig::default(),
    };
    if let Some(t) = args.tenant_id {
        cfg.tenant_id = t;
    }
    if let Some(c) = args.client_id {
        cfg.client_id = c.clone();
        if let Some(app) = cfg.applications.first_mut() {
            app.app_id = c;
        }
    }
    if let Some(s) = args.client_secret {
        cfg.client_secret = Some(s);
    }
    if let Some(p) = &args.client_certificate {
        cfg.client_certificate_pem = Some(read(p)?);
    }
    if let Some(ts) = args.time_scale {
        cfg.throttling.time_scale = ts;
    }
    if args.no_throttling {
        cfg.throttling.enabled = false;
    }
    cfg.faults = FaultConfig {
        error_rate: args.error_rate,
        latency_ms: args.latency_ms,
        replication_lag_ms: args.replication_lag_ms,
        drop_rate: args.drop_rate,
        drop_after_commit_rate: args.drop_after_commit_rate,
        ..cfg.faults
    };
    let emu = Emulator::start_on(cfg.clone(), args.listen)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(p) = &args.seed {
        let seed: Seed =
            serde_json::from_str(&read(p)?).map_err(|e| format!("invalid seed: {e}"))?;
        let report = emu.seed(&seed).map_err(|e| e.to_string())?;
        println!(
            "seeded {} users, {} groups",
            report.user_ids.len(),
            report.group_ids.len()
        );
    }
    println!("graph root:     {}", emu.base_url());
    println!("authority:      {}", emu.authority_url());
    println!("token endpoint: {}", emu.token_url());
    println!("tenant id:      {}", cfg.tenant_id);
    println!("client id:      {}", cfg.client_id);
    println!(
        "control plane:  {}/_emulator/(seed|state|stats|reset|config)",
        emu.authority_url()
    );
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    emu.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("graph-emulator: {e}");
        std::process::exit(2);
    }
}
