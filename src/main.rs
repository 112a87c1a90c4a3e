//! The `ad2entra` command line: thin wiring from arguments to the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The reconciler logs every cycle and plan at info; one-shot commands stay quiet.
    let level = match args.command {
        cli::Command::Run(_) => "info",
        _ => "warn",
    };
    cli::init_logging(args.log_json, level);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// mimalloc: planning 100,000 users allocates millions of small strings and maps; the
/// system allocator spent a third of the time in malloc/free (measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
