//! `sigil agent`: the flags of one server process. Each flag falls back to its `SIGIL_*`
//! environment variable, and both override the config file; `crate::agent` does the rest.

use std::path::PathBuf;

use clap::Args;
use sigil_server::PeerConfig;

use crate::agent::{self, Overrides};

/// Run one Sigil server.
///
/// The configuration comes from the TOML file, overridden by `SIGIL_*` environment variables,
/// overridden by flags. The KEK comes from `SIGIL_KEK` (base64) or the file's `kek_file`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The TOML config file (see deploy/sigil.example.toml).
    #[arg(long, env = "SIGIL_CONFIG")]
    config: Option<PathBuf>,

    /// This server's id in the Raft membership.
    #[arg(long, env = "SIGIL_NODE_ID")]
    node_id: Option<u64>,

    /// Where the Raft log and state live.
    #[arg(long, env = "SIGIL_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// `host:port` to serve gRPC on (public API and Raft).
    #[arg(long, env = "SIGIL_GRPC_ADDR")]
    grpc_addr: Option<String>,

    /// `host:port` to serve HTTP on (JWKS, OIDC discovery, health).
    #[arg(long, env = "SIGIL_HTTP_ADDR")]
    http_addr: Option<String>,

    /// The gRPC address peers and clients reach this server at, if not `--grpc-addr`.
    #[arg(long, env = "SIGIL_ADVERTISE_GRPC")]
    advertise_grpc: Option<String>,

    /// The HTTP address others reach this server at, if not `--http-addr`.
    #[arg(long, env = "SIGIL_ADVERTISE_HTTP")]
    advertise_http: Option<String>,

    /// An initial voter, `ID=GRPC_HOST:PORT[/HTTP_HOST:PORT]`; repeat for each server, this one
    /// included. Replaces the file's peer list. `SIGIL_PEERS` takes a comma-separated list.
    #[arg(long = "peer", env = "SIGIL_PEERS", value_delimiter = ',', value_parser = parse_peer)]
    peers: Vec<PeerConfig>,
}

/// Resolves the configuration and KEK, then runs the server until SIGINT or SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        node_id: args.node_id,
        data_dir: args.data_dir,
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        advertise_grpc: args.advertise_grpc,
        advertise_http: args.advertise_http,
        peers: args.peers,
    };
    let config = agent::resolve(args.config.as_deref(), &overrides)?;
    let kek = agent::load_kek(&config)?;
    agent::run(config, kek).await
}

/// `ID=GRPC_HOST:PORT[/HTTP_HOST:PORT]` as a peer.
fn parse_peer(text: &str) -> Result<PeerConfig, String> {
    let usage = || format!("peer {text:?}: expected ID=GRPC_HOST:PORT[/HTTP_HOST:PORT]");
    let (id, addrs) = text.trim().split_once('=').ok_or_else(usage)?;
    let id: u64 = id
        .parse()
        .map_err(|_| format!("{}; the id must be a number", usage()))?;
    let (addr, http_addr) = addrs.split_once('/').unwrap_or((addrs, ""));
    if !addr.contains(':') || (!http_addr.is_empty() && !http_addr.contains(':')) {
        return Err(format!("{}; addresses need a port", usage()));
    }
    Ok(PeerConfig {
        id,
        addr: addr.to_owned(),
        http_addr: http_addr.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_with_and_without_an_http_address() {
        let peer = parse_peer("2=10.0.0.2:7400/10.0.0.2:7480").expect("a full peer parses");
        assert_eq!(
            (peer.id, peer.addr.as_str()),
            (2, "10.0.0.2:7400"),
            "id and gRPC address"
        );
        assert_eq!(
            peer.http_addr, "10.0.0.2:7480",
            "the part after '/' is the HTTP address"
        );
        let peer = parse_peer("3=sigil-3:7400").expect("a peer without HTTP parses");
        assert_eq!(
            (peer.id, peer.http_addr.as_str()),
            (3, ""),
            "the HTTP address is optional"
        );
    }

    #[test]
    fn malformed_peers_are_rejected_with_the_expected_form() {
        for bad in ["10.0.0.2:7400", "two=a:1", "2=a", "2=a:1/b"] {
            let err = parse_peer(bad).expect_err(bad);
            assert!(err.contains(bad), "the error quotes the input: {err}");
            assert!(
                err.contains("ID=GRPC_HOST:PORT"),
                "the error shows the form: {err}"
            );
        }
    }
}
