//! The command line: the top-level `sigil` parser and the dispatch to one module per command
//! group. `main` parses with [`Cli`] and calls [`run`].

mod acl;
mod agent;
mod bench;
mod client;
mod dev;
mod identity;
mod keyring;
mod operator;
mod plan;
mod table;

use clap::{Parser, Subcommand};

/// Sigil: a Raft-replicated workload-identity issuer.
#[derive(Debug, Parser)]
#[command(name = "sigil", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one Sigil server until SIGINT or SIGTERM.
    Agent(agent::AgentArgs),
    /// Run a whole local cluster in this process, for trying Sigil out.
    Dev(dev::DevArgs),
    /// Submit plans: place allocations and receive their identities.
    Plan(plan::PlanArgs),
    /// Verify and sign workload identities.
    Identity(identity::IdentityArgs),
    /// List, rotate and remove root keys.
    Keyring(keyring::KeyringArgs),
    /// Cluster operations and the key-encryption key.
    Operator(operator::OperatorArgs),
    /// Measure plan throughput and latency of a running cluster, or of a local one.
    Bench(bench::BenchArgs),
    /// ACL policies and tokens: bootstrap, apply, create, inspect, authorize.
    Acl(acl::AclArgs),
}

impl Command {
    /// The log filter when `RUST_LOG` is unset: servers narrate what they do, client commands
    /// speak only when something is wrong, so their stdout and stderr stay readable. `dev`
    /// interleaves several servers in one stream, so it keeps openraft's internals to warnings.
    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Agent(_) => "info",
            Command::Dev(_) => "info,openraft=warn",
            _ => "warn",
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Agent(args) => agent::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Identity(args) => identity::run(args).await,
        Command::Keyring(args) => keyring::run(args).await,
        Command::Operator(args) => operator::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Acl(args) => acl::run(args).await,
    }
}

/// Prints `value` as indented JSON on stdout.
fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks conflicting names, bad defaults and group rules only when asked to.
        Cli::command().debug_assert();
    }

    #[test]
    fn client_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "sigil",
            "keyring",
            "rotate",
            "--now",
            "--address",
            "10.0.0.1:7400,10.0.0.2:7400",
            "--timeout",
            "3s",
        ])
        .expect("the command line parses");
        let Command::Keyring(args) = cli.command else {
            panic!("parsed as another command: {cli:?}");
        };
        assert_eq!(
            args.client.address,
            ["10.0.0.1:7400", "10.0.0.2:7400"],
            "a comma-separated --address is split"
        );
        assert_eq!(
            args.client.timeout,
            std::time::Duration::from_secs(3),
            "--timeout is a humantime duration"
        );
    }

    #[test]
    fn the_token_flag_reaches_nested_acl_commands_and_is_never_shown() {
        let cli = Cli::try_parse_from([
            "sigil",
            "acl",
            "policy",
            "list",
            "--token",
            "5f0e1f0c-4f7b-4a34-bd7e-7a6c0c7f2d11",
        ])
        .expect("--token is accepted after a nested subcommand");
        let shown = format!("{cli:?}");
        assert!(
            shown.contains("Token(redacted)"),
            "the token was parsed: {shown}"
        );
        assert!(
            !shown.contains("5f0e1f0c"),
            "a printed command line hides the token: {shown}"
        );
        let Command::Acl(args) = cli.command else {
            panic!("parsed as another command: {cli:?}");
        };
        let client = args.client.connect().expect("a UUID token is accepted");
        let header = client.authorization().expect("the token is sent");
        assert_eq!(
            header.to_str().ok(),
            Some("Bearer 5f0e1f0c-4f7b-4a34-bd7e-7a6c0c7f2d11"),
            "as a bearer token"
        );
    }
}
