//! The client side of the Raft transport: openraft's `RaftNetworkV2` over tonic, one cached
//! channel per peer, a deadline on every call.
//!
//! [`PeerChannels`] is shared with the services, which forward client writes to the leader over
//! the same channels. [`LinkFilter`] lets a test harness cut links between servers, the way
//! openraft's test router does: a cut link fails like an unreachable peer, in both directions.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use openraft::OptionalSend;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{Backoff, RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sigil_proto::raft::raft_service_client::RaftServiceClient;
use sigil_proto::raft::{RaftPayload, SnapshotChunk, snapshot_chunk};
use sigil_types::{NodeId, SigilNode, TypeConfig};
use tonic::transport::{Channel, Endpoint};

use crate::codec::{decode, encode};

type SigilVote = openraft::type_config::alias::VoteOf<TypeConfig>;
type SigilSnapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;

/// Metadata key naming the calling server on Raft RPCs, so a cut link is cut both ways.
pub const FROM_HEADER: &str = "x-sigil-from";

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// Lazily connected gRPC channels to other servers, one per address.
///
/// A tonic `Channel` reconnects by itself, so a cached channel stays usable across a peer's
/// restart; caching avoids a TCP and HTTP/2 handshake per forwarded request.
#[derive(Clone, Default)]
pub struct PeerChannels {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl PeerChannels {
    /// The channel to `addr` (`host:port`), created on first use.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// The set of peers this server may not talk to. Empty in production; tests fill it to
/// partition a cluster.
#[derive(Clone, Default, Debug)]
pub struct LinkFilter(Arc<RwLock<BTreeSet<NodeId>>>);

impl LinkFilter {
    /// Cuts the link to and from `peer`.
    pub fn block(&self, peer: NodeId) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer);
    }

    /// Restores every link.
    pub fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Whether the link to `peer` is cut.
    pub fn is_blocked(&self, peer: NodeId) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer)
    }

    /// Whether any link is cut (a server with cut links refuses to forward, too).
    pub fn any_blocked(&self) -> bool {
        !self.0.read().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

/// Builds one [`Connection`] per peer for openraft's replication tasks.
#[derive(Clone)]
pub struct Network {
    id: NodeId,
    channels: PeerChannels,
    filter: LinkFilter,
}

impl Network {
    /// The network of server `id`.
    pub fn new(id: NodeId, channels: PeerChannels, filter: LinkFilter) -> Self {
        Self {
            id,
            channels,
            filter,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &SigilNode) -> Connection {
        Connection {
            from: self.id,
            target,
            addr: node.addr.clone(),
            channels: self.channels.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// The transport to one peer.
pub struct Connection {
    from: NodeId,
    target: NodeId,
    addr: String,
    channels: PeerChannels,
    filter: LinkFilter,
}

impl Connection {
    fn client(&self) -> Result<RaftServiceClient<Channel>, RPCError<TypeConfig>> {
        if self.filter.is_blocked(self.target) {
            let msg = format!("link to node {} is cut", self.target);
            return Err(RPCError::Unreachable(Unreachable::from_string(msg)));
        }
        let channel = self
            .channels
            .get(&self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        Ok(RaftServiceClient::new(channel).max_decoding_message_size(64 << 20))
    }

    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        if let Ok(from) = self.from.to_string().parse() {
            request.metadata_mut().insert(FROM_HEADER, from);
        }
        request
    }

    async fn call<Req, Resp, F, Fut>(
        &self,
        rpc: &Req,
        option: &RPCOption,
        send: F,
    ) -> Result<Resp, RPCError<TypeConfig>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, tonic::Request<RaftPayload>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftPayload>, tonic::Status>>,
    {
        let client = self.client()?;
        let json = encode(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = self.request(RaftPayload { json }, option.hard_ttl());
        let response = send(client, request).await.map_err(status_to_rpc_error)?;
        decode("raft response", &response.into_inner().json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, r| async move {
            c.append_entries(r).await
        })
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, r| async move { c.vote(r).await })
            .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&rpc, &option, |mut c, r| async move { c.pre_vote(r).await })
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: SigilVote,
        snapshot: SigilSnapshot,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(rpc_to_streaming_error)?;
        let meta_json = encode(&(&vote, &snapshot.meta))
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let mut chunks = vec![SnapshotChunk {
            chunk: Some(snapshot_chunk::Chunk::MetaJson(meta_json)),
        }];
        chunks.extend(
            snapshot
                .snapshot
                .chunks(SNAPSHOT_CHUNK)
                .map(|data| SnapshotChunk {
                    chunk: Some(snapshot_chunk::Chunk::Data(data.to_vec())),
                }),
        );
        let request = self.request(tokio_stream::iter(chunks), option.hard_ttl());
        let response = client
            .install_snapshot(request)
            .await
            .map_err(|s| rpc_to_streaming_error(status_to_rpc_error(s)))?;
        decode("snapshot response", &response.into_inner().json)
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call(&req, &option, |mut c, r| async move {
            c.transfer_leader(r).await
        })
        .await
    }

    fn backoff(&self) -> Option<Backoff> {
        // Retry an unreachable peer every 200 ms rather than hammering it.
        Some(Backoff::new(std::iter::repeat(Duration::from_millis(200))))
    }
}

/// A peer that cannot be reached is `Unreachable` (openraft backs off); anything else is a
/// network error on an otherwise reachable peer.
fn status_to_rpc_error(status: tonic::Status) -> RPCError<TypeConfig> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            RPCError::Unreachable(Unreachable::from_string(status.message()))
        }
        _ => RPCError::Network(NetworkError::from_string(format!(
            "{:?}: {}",
            status.code(),
            status.message()
        ))),
    }
}

fn rpc_to_streaming_error(err: RPCError<TypeConfig>) -> StreamingError<TypeConfig> {
    match err {
        RPCError::Timeout(e) => StreamingError::Timeout(e),
        RPCError::Unreachable(e) => StreamingError::Unreachable(e),
        RPCError::Network(e) => StreamingError::Network(e),
        RPCError::RemoteError(e) => StreamingError::Network(NetworkError::from_string(e)),
    }
}
