//! The server side of the Raft transport: decodes openraft's messages, hands them to the local
//! node, encodes the answer. Also answers `ReadIndex` for followers that need a linearizable
//! read point from the leader.

use futures::StreamExt;
use openraft::ReadPolicy;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sigil_proto::raft::raft_service_server::RaftService;
use sigil_proto::raft::{
    RaftPayload, ReadIndexRequest, ReadIndexResponse, SnapshotChunk, snapshot_chunk,
};
use sigil_types::{NodeId, TypeConfig};
use tonic::{Request, Response, Status, Streaming};

use crate::codec::{decode, encode};
use crate::network::FROM_HEADER;
use crate::{LinkFilter, Raft};

type SigilVote = openraft::type_config::alias::VoteOf<TypeConfig>;
type SigilSnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;

/// The Raft RPC endpoint of one server.
#[derive(Clone)]
pub struct RaftTransport {
    raft: Raft,
    filter: LinkFilter,
}

impl RaftTransport {
    /// Serves Raft RPCs for `raft`, refusing callers whose link `filter` cuts.
    pub fn new(raft: Raft, filter: LinkFilter) -> Self {
        Self { raft, filter }
    }

    fn admit<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let from = request
            .metadata()
            .get(FROM_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<NodeId>().ok());
        match from {
            Some(peer) if self.filter.is_blocked(peer) => {
                Err(Status::unavailable(format!("link from node {peer} is cut")))
            }
            _ => Ok(()),
        }
    }
}

fn payload<T: DeserializeOwned>(request: Request<RaftPayload>) -> Result<T, Status> {
    decode("raft request", &request.into_inner().json)
        .map_err(|e| Status::invalid_argument(e.to_string()))
}

fn reply<T: Serialize, E: std::fmt::Display>(
    result: Result<T, E>,
) -> Result<Response<RaftPayload>, Status> {
    let value = result.map_err(|e| Status::unavailable(format!("raft node: {e}")))?;
    let json = encode(&value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftPayload { json }))
}

#[tonic::async_trait]
impl RaftService for RaftTransport {
    async fn vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.admit(&req)?;
        reply(self.raft.vote(payload(req)?).await)
    }

    async fn pre_vote(&self, req: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        self.admit(&req)?;
        reply(self.raft.pre_vote(payload(req)?).await)
    }

    async fn append_entries(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.admit(&req)?;
        reply(self.raft.append_entries(payload(req)?).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.admit(&req)?;
        let mut chunks = req.into_inner();
        let Some(snapshot_chunk::Chunk::MetaJson(meta)) =
            chunks.next().await.transpose()?.and_then(|c| c.chunk)
        else {
            return Err(Status::invalid_argument(
                "a snapshot must start with its metadata",
            ));
        };
        let (vote, meta): (SigilVote, SigilSnapshotMeta) =
            decode("snapshot meta", &meta).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut data = Vec::new();
        while let Some(chunk) = chunks.next().await.transpose()? {
            match chunk.chunk {
                Some(snapshot_chunk::Chunk::Data(bytes)) => data.extend_from_slice(&bytes),
                _ => return Err(Status::invalid_argument("snapshot metadata sent twice")),
            }
        }
        let snapshot = openraft::storage::Snapshot {
            meta,
            snapshot: data,
        };
        reply(self.raft.install_full_snapshot(vote, snapshot).await)
    }

    async fn transfer_leader(
        &self,
        req: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        self.admit(&req)?;
        reply(self.raft.handle_transfer_leader(payload(req)?).await)
    }

    async fn read_index(
        &self,
        req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        self.admit(&req)?;
        // ReadIndex confirms leadership with a quorum round-trip, so the index returned covers
        // every write any client saw acknowledged before this call.
        let read = self
            .raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map_err(|e| Status::unavailable(format!("not the leader: {e}")))?;
        Ok(Response::new(ReadIndexResponse {
            index: read.log_id().index,
        }))
    }
}
