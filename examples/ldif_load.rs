//! Loads an LDIF export with `ad2entra::ad::ldif` and reports how long it took, so the
//! reader's cost on a large directory can be measured without the rest of the pipeline.
//!
//! ```text
//! scripts/gen-bench-data.sh
//! cargo build --release --example ldif_load
//! /usr/bin/time -v target/release/examples/ldif_load target/bench/ad-100k.ldif
//! ```

use ad2entra::ad::ldif::read_ldif_file;
use ad2entra::model::ObjectKind;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: ldif_load FILE.ldif");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let snapshot = match read_ldif_file(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();
    let mut kinds: BTreeMap<ObjectKind, usize> = BTreeMap::new();
    let mut members = 0usize;
    let mut member_of = 0usize;
    for o in &snapshot.objects {
        *kinds.entry(o.kind).or_default() += 1;
        members += o.values("member").len();
        member_of += o.values("memberOf").len();
    }
    println!(
        "{path}: {} objects in {elapsed:.2?}",
        snapshot.objects.len()
    );
    for (k, n) in &kinds {
        println!("  {k:?}: {n}");
    }
    println!("  member values: {members}, memberOf values: {member_of}");
    if let Some(base) = &snapshot.base_dn {
        println!("  base DN: {base}");
    }
    // Freeing millions of small allocations is a visible share of the total: report it
    // so it is not mistaken for parsing time.
    let start = Instant::now();
    drop(snapshot);
    println!("  dropped in {:.2?}", start.elapsed());
    ExitCode::SUCCESS
}
