//! `sigil`: the one binary of Sigil, both the server daemon (`sigil agent`, `sigil dev`) and the
//! command-line client (`sigil plan`, `identity`, `keyring`, `operator`, `acl`, `bench`).
//!
//! This file only parses the command line, installs logging and runs the chosen command; the
//! commands live in `cli/`, the daemon wiring in `agent.rs`, the in-process cluster in `dev.rs`.

mod agent;
mod cli;
mod dev;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.command.default_log_filter());
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that a command's output on stdout stays machine-readable. `RUST_LOG`
/// overrides the command's default level.
fn init_tracing(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
