//! `OperatorService`: cluster membership and leadership, for `sigil operator raft ...`.
//! Listing peers needs `raft-read`; membership changes and leadership transfer `raft-write`.

use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::ChangeMembers;
use openraft::async_runtime::watch::WatchReceiver;
use sigil_acl::OperatorCapability;
use sigil_proto::v1::operator_service_client::OperatorServiceClient;
use sigil_proto::v1::operator_service_server::OperatorService;
use sigil_proto::v1::{
    AddPeerRequest, ListPeersRequest, ListPeersResponse, MembershipResponse, Peer,
    RemovePeerRequest, TransferLeaderRequest, TransferLeaderResponse,
};
use sigil_types::SigilNode;
use tonic::{Request, Response, Status};

use crate::auth::authenticate;
use crate::ctx::{Ctx, Route, caller_deadline};
use crate::error::{ServiceError, ServiceResult};

/// The operator service of one server.
pub struct OperatorSvc {
    ctx: Arc<Ctx>,
}

impl OperatorSvc {
    /// The service over `ctx`.
    pub fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn peers(&self) -> ListPeersResponse {
        let metrics = self.ctx.raft.metrics();
        let metrics = metrics.borrow_watched();
        let voters: BTreeSet<_> = metrics.membership_config.voter_ids().collect();
        let matched = |id| {
            metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map_or(0, |log_id| log_id.index)
        };
        let peers = metrics
            .membership_config
            .nodes()
            .map(|(id, node)| Peer {
                node_id: *id,
                address: node.addr.clone(),
                voter: voters.contains(id),
                leader: metrics.current_leader == Some(*id),
                matched_index: matched(*id),
            })
            .collect();
        ListPeersResponse {
            peers,
            term: metrics.current_term,
            commit_index: metrics.local_committed.map_or(0, |id| id.index),
        }
    }

    async fn membership_reply(&self, log_index: u64) -> MembershipResponse {
        MembershipResponse {
            peers: self.peers().peers,
            log_index,
        }
    }
}

fn membership_error(err: impl std::fmt::Display) -> ServiceError {
    ServiceError::FailedPrecondition(format!("membership change refused: {err}"))
}

#[tonic::async_trait]
impl OperatorService for OperatorSvc {
    async fn list_peers(
        &self,
        request: Request<ListPeersRequest>,
    ) -> Result<Response<ListPeersResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::RaftRead)?;

        Ok(Response::new(self.peers()))
    }

    async fn add_peer(
        &self,
        request: Request<AddPeerRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::RaftWrite)?;
        let req = request.get_ref().clone();
        if req.address.is_empty() {
            return Err(ServiceError::invalid("address", "must be host:port").into());
        }
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call = |ch, req| async move { OperatorServiceClient::new(ch).add_peer(req).await };
            return self.ctx.forward(channel, request, call).await;
        }
        let deadline = caller_deadline(&request);
        let node = SigilNode {
            addr: req.address.clone(),
            http_addr: String::new(),
        };
        let add = async {
            // Join as a learner first and wait until it has caught up, so that adding a voter
            // never leaves the cluster waiting on an empty log for its quorum.
            self.ctx
                .raft
                .add_learner(req.node_id, node, true)
                .await
                .map_err(membership_error)?;
            let voters = BTreeSet::from([req.node_id]);
            let change = ChangeMembers::AddVoterIds(voters);
            let response = self
                .ctx
                .raft
                .change_membership(change, false)
                .await
                .map_err(membership_error)?;
            ServiceResult::Ok(response.log_id.index)
        };
        let index = tokio::time::timeout(deadline, add)
            .await
            .map_err(|_| ServiceError::unavailable("the new peer did not catch up in time"))??;
        tracing::info!(node_id = req.node_id, address = %req.address, "peer added");
        Ok(Response::new(self.membership_reply(index).await))
    }

    async fn remove_peer(
        &self,
        request: Request<RemovePeerRequest>,
    ) -> Result<Response<MembershipResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::RaftWrite)?;
        let node_id = request.get_ref().node_id;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call =
                |ch, req| async move { OperatorServiceClient::new(ch).remove_peer(req).await };
            return self.ctx.forward(channel, request, call).await;
        }
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([node_id]));
        let response = self
            .ctx
            .raft
            .change_membership(change, false)
            .await
            .map_err(membership_error)?;
        tracing::info!(node_id, "peer removed");
        Ok(Response::new(
            self.membership_reply(response.log_id.index).await,
        ))
    }

    async fn transfer_leader(
        &self,
        request: Request<TransferLeaderRequest>,
    ) -> Result<Response<TransferLeaderResponse>, Status> {
        let caller = authenticate(&self.ctx, &request).await?;
        caller.require_operator(OperatorCapability::RaftWrite)?;
        if let Route::Forward(channel) = self.ctx.route(&request)? {
            let call =
                |ch, req| async move { OperatorServiceClient::new(ch).transfer_leader(req).await };
            return self.ctx.forward(channel, request, call).await;
        }
        let deadline = caller_deadline(&request);
        let mut target = request.get_ref().to_node_id;
        if target == 0 {
            let peers = self.peers();
            let best = peers
                .peers
                .iter()
                .filter(|p| p.voter && p.node_id != self.ctx.id);
            target = best
                .max_by_key(|p| p.matched_index)
                .map(|p| p.node_id)
                .ok_or_else(|| {
                    ServiceError::FailedPrecondition("there is no other voter to lead".into())
                })?;
        }
        if target == self.ctx.id {
            return Ok(Response::new(TransferLeaderResponse {
                new_leader_id: target,
            }));
        }
        self.ctx
            .raft
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| ServiceError::Internal(format!("transfer failed: {e}")))?;
        self.ctx
            .raft
            .wait(Some(deadline))
            .metrics(
                |m| m.current_leader == Some(target),
                "leadership transferred",
            )
            .await
            .map_err(|e| ServiceError::unavailable(format!("transfer did not complete: {e}")))?;
        tracing::info!(to = target, "leadership transferred");
        Ok(Response::new(TransferLeaderResponse {
            new_leader_id: target,
        }))
    }
}
