//! A whole Sigil cluster inside this process, on 127.0.0.1 with ports the OS picks, for
//! `sigil dev` (try Sigil out), `sigil dev --smoke` (prove a fresh build works) and
//! `sigil bench --local` (figures on a fresh machine). The servers are the real ones, with real
//! Raft over real loopback gRPC; only the process boundary is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sigil_keyring::Kek;
use sigil_server::{PeerConfig, ServerConfig, ServerHandle, health_of};
use sigil_types::NodeId;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// The largest cluster `--nodes` accepts; more says nothing new on one machine.
pub const MAX_NODES: usize = 7;

/// A running local cluster.
pub struct LocalCluster {
    nodes: Vec<ServerHandle>,
    dir: DataDir,
}

/// One server's addresses.
#[derive(Debug, Clone)]
pub struct NodeAddrs {
    /// The node id.
    pub id: NodeId,
    /// `host:port` of its gRPC server.
    pub grpc: String,
    /// `host:port` of its HTTP server.
    pub http: String,
}

/// Where the servers keep their data: removed on shutdown unless the user named it.
enum DataDir {
    Temporary(TempDir),
    Kept(PathBuf),
}

impl LocalCluster {
    /// Starts `size` servers sharing one freshly generated KEK.
    ///
    /// Every listener is bound before any server starts, so each server's config can carry the
    /// full peer list with real addresses; the lowest id then initializes the cluster.
    pub async fn start(size: usize, data_dir: Option<&Path>) -> anyhow::Result<LocalCluster> {
        if !(1..=MAX_NODES).contains(&size) {
            bail!("--nodes: must be from 1 to {MAX_NODES}, got {size}");
        }
        let dir = DataDir::prepare(data_dir)?;
        let mut listeners = Vec::with_capacity(size);
        for _ in 0..size {
            let grpc = loopback_listener().await?;
            let http = loopback_listener().await?;
            listeners.push((grpc, http));
        }
        let mut peers = Vec::with_capacity(size);
        for (id, (grpc, http)) in (1..).zip(&listeners) {
            peers.push(PeerConfig {
                id,
                addr: local_addr(grpc)?,
                http_addr: local_addr(http)?,
            });
        }

        let kek = Kek::generate();
        let mut cluster = LocalCluster {
            nodes: Vec::with_capacity(size),
            dir,
        };
        for ((grpc, http), peer) in listeners.into_iter().zip(&peers) {
            let config = node_config(peer, &peers, cluster.dir.path());
            match sigil_server::start(config, Some(kek.clone()), grpc, http).await {
                Ok(handle) => cluster.nodes.push(handle),
                Err(err) => {
                    cluster.shutdown().await;
                    return Err(err).with_context(|| format!("node {} did not start", peer.id));
                }
            }
        }
        Ok(cluster)
    }

    /// Waits until one leader is elected and every server reports ready (leader known, every
    /// key unwrapped, an active key), and returns the leader's id.
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<NodeId> {
        let deadline = Instant::now() + within;
        loop {
            let healths: Vec<_> = self.nodes.iter().map(|n| health_of(&n.ctx)).collect();
            let leader = healths[0].leader_id;
            let agreed = healths.iter().all(|h| h.ready && h.leader_id == leader);
            if let (true, Some(leader)) = (agreed, leader) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                let problems: Vec<String> = healths
                    .iter()
                    .map(|h| format!("node {}: {}", h.node_id, h.problems.join("; ")))
                    .collect();
                bail!(
                    "the cluster was not ready within {}: {}",
                    humantime::format_duration(within),
                    problems.join(" | ")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every server's addresses, by node id.
    pub fn addrs(&self) -> Vec<NodeAddrs> {
        self.nodes
            .iter()
            .map(|n| NodeAddrs {
                id: n.ctx.id,
                grpc: n.grpc_addr.to_string(),
                http: n.http_addr.to_string(),
            })
            .collect()
    }

    /// The directory holding every server's data.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the data directory is removed on shutdown.
    pub fn data_is_temporary(&self) -> bool {
        matches!(self.dir, DataDir::Temporary(_))
    }

    /// Stops every server and waits until its storage is closed; a temporary data directory is
    /// removed afterwards.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

impl DataDir {
    /// A temporary directory, or `path` when it holds no earlier cluster.
    ///
    /// A kept directory cannot be resumed: every run binds new ports and generates a new KEK,
    /// so the stored membership would name dead addresses and the stored keys would not
    /// unwrap. Rather than start a cluster that never becomes ready, refuse such a directory.
    fn prepare(path: Option<&Path>) -> anyhow::Result<DataDir> {
        let Some(path) = path else {
            let dir = tempfile::Builder::new()
                .prefix("sigil-dev-")
                .tempdir()
                .context("cannot create a temporary data directory")?;
            return Ok(DataDir::Temporary(dir));
        };
        if path.join("node-1").exists() {
            bail!(
                "--data-dir {}: holds an earlier dev cluster, which cannot be resumed (each run \
                 uses new ports and a new KEK); remove it or choose another directory",
                path.display()
            );
        }
        std::fs::create_dir_all(path)
            .with_context(|| format!("--data-dir {}: cannot create", path.display()))?;
        Ok(DataDir::Kept(path.to_owned()))
    }

    fn path(&self) -> &Path {
        match self {
            DataDir::Temporary(dir) => dir.path(),
            DataDir::Kept(path) => path,
        }
    }
}

/// A node's config: the full peer list, and Raft timings that suit loopback.
fn node_config(peer: &PeerConfig, peers: &[PeerConfig], dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(peer.id, dir.join(format!("node-{}", peer.id)));
    config.grpc_addr = peer.addr.clone();
    config.http_addr = peer.http_addr.clone();
    config.advertise_grpc = Some(peer.addr.clone());
    config.advertise_http = Some(peer.http_addr.clone());
    config.peers = peers.to_vec();
    config.raft.heartbeat_interval = Duration::from_millis(100);
    config.raft.election_timeout_min = Duration::from_millis(500);
    config.raft.election_timeout_max = Duration::from_millis(1000);
    config
}

async fn loopback_listener() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind a port on 127.0.0.1")
}

fn local_addr(listener: &TcpListener) -> anyhow::Result<String> {
    let addr = listener
        .local_addr()
        .context("a bound listener has no address")?;
    Ok(addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_directory_with_an_earlier_cluster_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = DataDir::prepare(Some(dir.path())).expect("an empty directory is accepted");
        assert_eq!(kept.path(), dir.path(), "the named directory is used");

        std::fs::create_dir(dir.path().join("node-1")).expect("create node dir");
        let err = DataDir::prepare(Some(dir.path()))
            .err()
            .expect("an earlier cluster");
        let text = err.to_string();
        assert!(text.contains("--data-dir"), "the flag is named: {text}");
        assert!(
            text.contains("cannot be resumed"),
            "the reason is given: {text}"
        );
    }

    #[tokio::test]
    async fn cluster_sizes_outside_the_supported_range_are_rejected() {
        for size in [0, MAX_NODES + 1] {
            let err = LocalCluster::start(size, None)
                .await
                .err()
                .expect("bad size");
            assert!(
                err.to_string().contains("--nodes"),
                "the flag is named: {err}"
            );
        }
    }
}
