//! Allocations and the identities issued to them, as the state machine stores them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sigil_keyring::KeyId;

/// An allocation id: a UUID chosen by the leader when it applies a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AllocId(pub uuid::Uuid);

impl AllocId {
    /// A fresh random id; only the leader calls this, before proposing.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for AllocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for AllocId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

/// Whether an allocation's identities still verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllocStatus {
    /// Placed and not stopped: its identities verify.
    Running,
    /// Stopped by a plan: its identities no longer verify.
    Stopped,
}

impl AllocStatus {
    /// The status as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// What an identity is for: a task, or a service of the group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Workload {
    /// A task's identity.
    Task(String),
    /// A service's identity.
    Service(String),
}

impl Workload {
    /// The task or service name.
    pub fn name(&self) -> &str {
        match self {
            Self::Task(name) | Self::Service(name) => name,
        }
    }

    /// `task` or `service`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Task(_) => "task",
            Self::Service(_) => "service",
        }
    }
}

/// One signed identity of an allocation.
///
/// The token is a bearer credential: it is stored in the replicated state (as Nomad does) so
/// that a plan retried after a failover returns the very tokens that committed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedIdentity {
    /// The task or service it identifies.
    pub workload: Workload,
    /// The identity's name (`default` or a named identity).
    pub identity: String,
    /// The key that signed it.
    pub key_id: KeyId,
    /// The compact JWT.
    pub jwt: String,
    /// Unix seconds after which the token is expired; `None` when it has no `exp`.
    pub expires_at: Option<u64>,
}

impl fmt::Debug for IssuedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedIdentity")
            .field("workload", &self.workload)
            .field("identity", &self.identity)
            .field("key_id", &self.key_id)
            .field("jwt", &format_args!("<{} bytes>", self.jwt.len()))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An allocation: one placement of a task group, with the identities signed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The allocation id.
    pub id: AllocId,
    /// The job's namespace.
    pub namespace: String,
    /// The job id (the child's own id for child jobs).
    pub job_id: String,
    /// The parent job id for child jobs.
    pub parent_job_id: Option<String>,
    /// The task group it runs.
    pub group: String,
    /// The client node it runs on.
    pub node_id: String,
    /// Running or stopped.
    pub status: AllocStatus,
    /// The key that signed its plan-time identities.
    pub signing_key_id: KeyId,
    /// Unix milliseconds when the leader built it.
    pub create_time_ms: u64,
    /// Every identity of every task and service of the group.
    pub identities: Vec<IssuedIdentity>,
}

impl Allocation {
    /// The job id that identities and ACL associations use: the parent for child jobs.
    pub fn identity_job_id(&self) -> &str {
        self.parent_job_id.as_deref().unwrap_or(&self.job_id)
    }

    /// Whether its identities verify.
    pub fn is_live(&self) -> bool {
        self.status == AllocStatus::Running
    }
}
