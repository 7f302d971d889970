//! openraft's type configuration for Sigil: which command the log carries, what applying it
//! returns, and how a server is addressed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Command, CommandResponse};

/// A server's id in the Raft membership. Chosen by the operator, stable across restarts.
pub type NodeId = u64;

/// How other servers and clients reach a server; carried in the Raft membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigilNode {
    /// `host:port` of the gRPC endpoint (public API and Raft transport).
    pub addr: String,
    /// `host:port` of the HTTP endpoint (JWKS, OIDC discovery, health), empty when unknown.
    #[serde(default)]
    pub http_addr: String,
}

impl fmt::Display for SigilNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)
    }
}

openraft::declare_raft_types!(
    /// Sigil's Raft type configuration: the log carries [`Command`]s.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = NodeId,
        Node = SigilNode,
);

/// One entry of Sigil's Raft log.
pub type LogEntry = openraft::type_config::alias::EntryOf<TypeConfig>;
