//! What every service shares: the Raft node, the applied state, the unwrapped keys, and the
//! three moves every write handler makes: find the leader, forward to it, propose on it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::Instant as _;
use openraft::ServerState;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::{ClientWriteError, RaftError};
use sigil_proto::raft::ReadIndexRequest;
use sigil_proto::raft::raft_service_client::RaftServiceClient;
use sigil_raft::{LinkFilter, PeerChannels, Raft, SharedState};
use sigil_types::{Command, CommandResponse, NodeId};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::config::ServerConfig;
use crate::error::{ServiceError, ServiceResult};
use crate::keys::KeyCache;

/// Metadata key marking a request a follower forwarded; such a request is never forwarded again.
pub const FORWARDED_HEADER: &str = "x-sigil-forwarded";

/// The longest a forwarded request or a proposal may take when the caller set no deadline.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// Shared by all services of one server.
pub struct Ctx {
    /// This server's id.
    pub id: NodeId,
    /// The Raft node.
    pub raft: Raft,
    /// The applied state.
    pub state: SharedState,
    /// Unwrapped keys.
    pub keys: Arc<KeyCache>,
    /// Channels to peers, shared with the Raft transport.
    pub channels: PeerChannels,
    /// Cut links (tests only); a server with cut links forwards over none of them.
    pub filter: LinkFilter,
    /// This server's configuration.
    pub config: Arc<ServerConfig>,
}

/// Where a write goes.
pub enum Route {
    /// This server leads: handle it here.
    Local,
    /// Forward it to the leader over this channel.
    Forward(Channel),
}

/// Who leads, as this server last heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's id.
    pub id: NodeId,
    /// Its gRPC address.
    pub addr: String,
    /// Its HTTP address.
    pub http_addr: String,
}

impl Ctx {
    /// The leader as of the latest Raft metrics, if one is known.
    pub fn leader(&self) -> Option<LeaderInfo> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let id = metrics.current_leader?;
        let (_, node) = metrics
            .membership_config
            .nodes()
            .find(|(nid, _)| **nid == id)?;
        Some(LeaderInfo {
            id,
            addr: node.addr.clone(),
            http_addr: node.http_addr.clone(),
        })
    }

    /// Whether this server is the leader right now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().state == ServerState::Leader
    }

    /// The current term.
    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow_watched().current_term
    }

    /// Decides where a write is handled: here when leading, else at the leader, one hop at most.
    pub fn route<T>(&self, request: &Request<T>) -> ServiceResult<Route> {
        if self.is_leader() {
            return Ok(Route::Local);
        }
        let leader = self.leader();
        let hint = leader.as_ref().map(|l| l.addr.clone());
        if request.metadata().contains_key(FORWARDED_HEADER) {
            let reason = "forwarded to a server that is not the leader; leadership moved";
            return Err(ServiceError::Unavailable {
                reason: reason.into(),
                leader: hint,
            });
        }
        let Some(leader) = leader else {
            return Err(ServiceError::unavailable(
                "no leader is elected yet; retry shortly",
            ));
        };
        if self.filter.is_blocked(leader.id) || leader.id == self.id {
            let reason = format!("the leader (node {}) is unreachable from here", leader.id);
            return Err(ServiceError::Unavailable {
                reason,
                leader: hint,
            });
        }
        let channel = self
            .channels
            .get(&leader.addr)
            .map_err(|e| ServiceError::Unavailable {
                reason: format!("bad leader address {}: {e}", leader.addr),
                leader: hint,
            })?;
        Ok(Route::Forward(channel))
    }

    /// Sends `request` to the leader over `channel` and relays its answer, within the caller's
    /// deadline. The leader's own errors pass through unchanged.
    pub async fn forward<Req, Resp, F, Fut>(
        &self,
        channel: Channel,
        request: Request<Req>,
        call: F,
    ) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(Channel, Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let deadline = caller_deadline(&request);
        let authorization = request.metadata().get("authorization").cloned();
        let mut forwarded = Request::new(request.into_inner());
        forwarded.set_timeout(deadline);
        let metadata = forwarded.metadata_mut();
        if let Some(value) = authorization {
            metadata.insert("authorization", value);
        }
        if let Ok(value) = self.id.to_string().parse() {
            metadata.insert(FORWARDED_HEADER, value);
        }

        match tokio::time::timeout(deadline, call(channel, forwarded)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(status)) if is_transport_failure(&status) => {
                Err(self.leader_unreachable(status.message()).into())
            }
            Ok(Err(status)) => Err(status),
            Err(_) => Err(self
                .leader_unreachable("the caller's deadline passed")
                .into()),
        }
    }

    fn leader_unreachable(&self, why: &str) -> ServiceError {
        let leader = self.leader().map(|l| l.addr);
        ServiceError::Unavailable {
            reason: format!("forwarding to the leader failed: {why}"),
            leader,
        }
    }

    /// Proposes `command` and waits until it is applied, within `deadline`.
    ///
    /// The answer exists only once the entry committed: a leader deposed before that gets an
    /// error, and whatever it signed for the entry is dropped here, never returned.
    pub async fn propose(
        &self,
        command: Command,
        deadline: Duration,
    ) -> ServiceResult<(CommandResponse, u64)> {
        self.check_quorum_contact()?;
        let write = tokio::time::timeout(deadline, self.raft.client_write(command)).await;
        match write {
            Ok(Ok(response)) => Ok((response.data, response.log_id.index)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(fwd)))) => {
                let leader = fwd.leader_node.map(|n| n.addr);
                let reason = "leadership moved before the write committed; retry".into();
                Err(ServiceError::Unavailable { reason, leader })
            }
            Ok(Err(err)) => Err(ServiceError::unavailable(format!(
                "the write failed: {err}"
            ))),
            Err(_) => Err(ServiceError::unavailable(
                "the write did not commit in time; a majority of servers may be unreachable",
            )),
        }
    }

    /// A leader that has not heard from a majority for longer than an election timeout has
    /// probably been deposed on the other side of a partition; it refuses at once instead of
    /// making the caller wait for a commit that cannot happen.
    fn check_quorum_contact(&self) -> ServiceResult<()> {
        let acked = self.raft.metrics().borrow_watched().last_quorum_acked;
        let silent_ms = acked.map(|at| at.into_inner().elapsed().as_millis() as u64);
        let limit = self.config.raft.election_timeout_max.as_millis() as u64;
        match silent_ms {
            Some(ms) if ms > limit && self.is_leader() => Err(ServiceError::Unavailable {
                reason: format!("this leader has not reached a majority for {ms} ms"),
                leader: None,
            }),
            _ => Ok(()),
        }
    }

    /// Waits until this server has applied every write committed before the call (a
    /// linearizable read point obtained from the leader), so a lagging follower does not
    /// answer "unknown" for something that exists.
    pub async fn catch_up(&self, deadline: Duration) -> ServiceResult<()> {
        let index = if self.is_leader() {
            let read = self
                .raft
                .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
                .await
                .map_err(|e| {
                    ServiceError::unavailable(format!("cannot confirm leadership: {e}"))
                })?;
            read.log_id().index
        } else {
            let Route::Forward(channel) = self.route(&Request::new(()))? else {
                return Ok(());
            };
            let mut request = Request::new(ReadIndexRequest {});
            request.set_timeout(deadline);
            let mut client = RaftServiceClient::new(channel);
            let response = tokio::time::timeout(deadline, client.read_index(request))
                .await
                .map_err(|_| self.leader_unreachable("read index timed out"))?
                .map_err(|s| self.leader_unreachable(s.message()))?;
            response.into_inner().index
        };
        self.raft
            .wait(Some(deadline))
            .applied_index_at_least(Some(index), "catch up to the leader")
            .await
            .map_err(|e| ServiceError::unavailable(format!("could not catch up: {e}")))?;
        Ok(())
    }
}

/// The caller's remaining deadline from its `grpc-timeout` header, capped at a default.
pub fn caller_deadline<T>(request: &Request<T>) -> Duration {
    let parsed = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout);
    // Answer a little before the caller gives up, so that it hears why rather than a timeout.
    parsed.map_or(DEFAULT_DEADLINE, |d| {
        d.min(DEFAULT_DEADLINE * 6).mul_f64(0.8)
    })
}

fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn is_transport_failure(status: &Status) -> bool {
    // The leader's own Unavailable answers carry its address; one without it, or a cancelled
    // call, means the leader could not be reached at all.
    let unreachable = status.code() == tonic::Code::Unavailable
        && !status.metadata().contains_key(crate::error::LEADER_HEADER);
    unreachable || status.code() == tonic::Code::Cancelled
}

/// Unix milliseconds now, on this server's clock (only the leader's clock ever matters).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("7x"), None, "unknown unit");
        assert_eq!(parse_grpc_timeout(""), None, "empty value");
    }
}
