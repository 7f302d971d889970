//! `sigil operator raft ...` (membership and leadership through the cluster) and `sigil operator
//! kek generate` (a new key-encryption key, made locally; it never touches the cluster).

use clap::{Args, Subcommand};
use sigil_keyring::Kek;
use sigil_proto::v1::operator_service_client::OperatorServiceClient;
use sigil_proto::v1::{
    AddPeerRequest, ListPeersRequest, ListPeersResponse, Peer, RemovePeerRequest,
    TransferLeaderRequest,
};

use super::client::{Client, ClientArgs};
use super::table::Table;

/// Cluster operations and the key-encryption key.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Raft membership and leadership.
    Raft(RaftArgs),
    /// The key-encryption key (KEK) that wraps root keys at rest and in Raft.
    Kek {
        #[command(subcommand)]
        command: KekCommand,
    },
}

#[derive(Debug, Args)]
struct RaftArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: RaftCommand,
}

#[derive(Debug, Subcommand)]
enum RaftCommand {
    /// List the servers in the membership, the leader and how far each has replicated.
    ListPeers,
    /// Add a server: it joins as a learner, catches up, then becomes a voter.
    AddPeer {
        /// The new server's node id.
        id: u64,
        /// Its gRPC address, `host:port`.
        addr: String,
    },
    /// Remove a voter from the membership.
    RemovePeer {
        /// The node id to remove.
        id: u64,
    },
    /// Hand leadership to another voter (by default the most up-to-date one).
    TransferLeader {
        /// The node id to lead next.
        id: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum KekCommand {
    /// Print a new random KEK (base64) on stdout. Every server of a cluster needs the same one.
    Generate,
}

/// Runs `sigil operator ...`.
pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    match args.command {
        OperatorCommand::Raft(raft) => run_raft(raft).await,
        OperatorCommand::Kek {
            command: KekCommand::Generate,
        } => {
            let kek = Kek::try_generate()?;
            println!("{}", kek.to_base64().as_str());
            eprintln!(
                "hint: store it where only the agent can read it, e.g.\n  \
                 umask 077 && sigil operator kek generate > /etc/sigil/kek   (then kek_file = \
                 \"/etc/sigil/kek\")\nor pass it as SIGIL_KEK from a secret store; never next to \
                 data_dir. fingerprint: {}",
                kek.fingerprint()
            );
            Ok(())
        }
    }
}

async fn run_raft(args: RaftArgs) -> anyhow::Result<()> {
    let mut client = args.client.connect()?;
    match args.command {
        RaftCommand::ListPeers => {
            let mut response = list_peers(&mut client).await?;
            // Only the leader tracks how far each peer has replicated; a follower reports zeros.
            // Ask the leader itself when a follower answered, and keep the first answer if the
            // leader cannot be reached.
            let leader = response
                .peers
                .iter()
                .find(|p| p.leader)
                .map(|p| p.address.clone());
            if let Some(leader) = leader
                && response.peers.iter().all(|p| p.matched_index == 0)
                && let Ok(mut at_leader) = Client::new(&[leader], args.client.timeout)
                && let Ok(from_leader) = list_peers(&mut at_leader).await
            {
                response = from_leader;
            }
            print!("{}", peer_table(&response.peers));
            println!(
                "term {}, commit index {}",
                response.term, response.commit_index
            );
        }
        RaftCommand::AddPeer { id, addr } => {
            if !addr.contains(':') {
                anyhow::bail!("ADDR {addr:?}: must be the new server's gRPC host:port");
            }
            let request = AddPeerRequest {
                node_id: id,
                address: addr,
            };
            let response = client
                .call(request, |channel, request| async move {
                    OperatorServiceClient::new(channel).add_peer(request).await
                })
                .await?;
            print!("{}", peer_table(&response.peers));
            println!("membership committed at log index {}", response.log_index);
        }
        RaftCommand::RemovePeer { id } => {
            let request = RemovePeerRequest { node_id: id };
            let response = client
                .call(request, |channel, request| async move {
                    OperatorServiceClient::new(channel)
                        .remove_peer(request)
                        .await
                })
                .await?;
            print!("{}", peer_table(&response.peers));
            println!("membership committed at log index {}", response.log_index);
        }
        RaftCommand::TransferLeader { id } => {
            let request = TransferLeaderRequest {
                to_node_id: id.unwrap_or(0),
            };
            let response = client
                .call(request, |channel, request| async move {
                    OperatorServiceClient::new(channel)
                        .transfer_leader(request)
                        .await
                })
                .await?;
            println!("node {} is the leader", response.new_leader_id);
        }
    }
    Ok(())
}

async fn list_peers(client: &mut Client) -> anyhow::Result<ListPeersResponse> {
    client
        .call(ListPeersRequest {}, |channel, request| async move {
            OperatorServiceClient::new(channel)
                .list_peers(request)
                .await
        })
        .await
}

fn peer_table(peers: &[Peer]) -> String {
    let mut table = Table::new(&["NODE", "ADDRESS", "ROLE", "LEADER", "MATCHED INDEX"]);
    for peer in peers {
        table.row(vec![
            peer.node_id.to_string(),
            peer.address.clone(),
            if peer.voter { "voter" } else { "learner" }.to_owned(),
            if peer.leader { "yes" } else { "" }.to_owned(),
            peer.matched_index.to_string(),
        ]);
    }
    table.render()
}
