//! What the process-level tests share: their deadline, and running the `sigil` CLI as a child
//! process with a bounded wait.

#![allow(dead_code)]

use std::process::Output;
use std::time::Duration;

/// How long any one step of a process-level test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Runs the `sigil` CLI with `args`, `SIGIL_TOKEN` set to `token` (or unset) and `SIGIL_ADDR`
/// set to `addresses` (or unset), and returns its output; fails the test past [`DEADLINE`].
pub async fn run_sigil(args: &[&str], token: Option<&str>, addresses: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sigil"));
    command.args(args).kill_on_drop(true);
    match token {
        Some(token) => command.env("SIGIL_TOKEN", token),
        None => command.env_remove("SIGIL_TOKEN"),
    };
    match addresses {
        Some(addresses) => command.env("SIGIL_ADDR", addresses),
        None => command.env_remove("SIGIL_ADDR"),
    };
    tokio::time::timeout(DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("sigil {args:?} did not finish within {DEADLINE:?}"))
        .expect("run the sigil CLI")
}
