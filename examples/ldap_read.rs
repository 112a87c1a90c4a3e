//! Reads a domain controller with ad2entra's LDAP reader and prints what it got: the
//! entry point of scripts/bench-ldap-read.sh, and a quick manual check of a DC.
//!
//!     cargo run --example ldap_read -- full  --env .test-dc/connection.env [--attrs a,b] [--watermark-out F]
//!     cargo run --example ldap_read -- delta --env .test-dc/connection.env [--attrs a,b] --watermark-in F
//!
//! The env file holds LDAP_URL/LDAPS_URL, LDAP_BIND_DN, LDAP_PASSWORD, LDAP_BASE_DN and
//! LDAP_CA_FILE as scripts/test-dc.sh writes them. LDAPS is used.

use ad2entra::ad::ldap::{
    LdapConfig, ReadRequest, Watermark, read_delta, read_full, read_watermark,
};
use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::time::Instant;

fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().cloned().unwrap_or_default();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let env_file = opt("--env").context("--env FILE is required")?;
    let vars = parse_env(
        &std::fs::read_to_string(&env_file).with_context(|| format!("reading {env_file}"))?,
    );
    let get = |k: &str| {
        vars.get(k)
            .cloned()
            .with_context(|| format!("{env_file} has no {k}"))
    };
    let mut cfg = LdapConfig::new(
        get("LDAPS_URL")?,
        get("LDAP_BIND_DN")?,
        get("LDAP_PASSWORD")?,
        get("LDAP_BASE_DN")?,
    );
    cfg.ca_file = Some(get("LDAP_CA_FILE")?.into());
    let req = ReadRequest {
        attributes: opt("--attrs")
            .map(|a| a.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let started = Instant::now();
    match mode.as_str() {
        "full" => {
            let wm = read_watermark(&cfg).await?;
            let snap = read_full(&cfg, &req).await?;
            let values: usize = snap
                .objects
                .iter()
                .flat_map(|o| o.attrs.iter().map(|(_, v)| v.len()))
                .sum();
            println!(
                "full: {} objects, {values} values, highestCommittedUSN {:?}, {:.3} s",
                snap.objects.len(),
                snap.highest_usn,
                started.elapsed().as_secs_f64()
            );
            if let Some(out) = opt("--watermark-out") {
                // The watermark must not be newer than the snapshot: take the USN the read started at.
                let wm = Watermark {
                    highest_usn: snap.highest_usn.unwrap_or(wm.highest_usn),
                    ..wm
                };
                std::fs::write(&out, serde_json::to_string(&wm)?)?;
            }
        }
        "delta" => {
            let file = opt("--watermark-in").context("--watermark-in FILE is required")?;
            let wm: Watermark = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
            let d = read_delta(&cfg, &req, &wm).await?;
            println!(
                "delta: {} changed, {} deleted, {} moved out, USN {} -> {}, {:.3} s",
                d.changed.len(),
                d.deleted.len(),
                d.moved_out.len(),
                wm.highest_usn,
                d.new_watermark.highest_usn,
                started.elapsed().as_secs_f64()
            );
        }
        other => bail!("unknown mode {other:?}: use full or delta"),
    }
    Ok(())
}
