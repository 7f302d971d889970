//! The replicated command set: what one Raft entry asks the state machine to do, and what
//! applying it answers.
//!
//! Everything non-deterministic (key material, ids, timestamps, signatures) is decided by the
//! leader before it proposes and travels inside the entry, so every server applies an entry to
//! the same state.

use std::fmt;

use serde::{Deserialize, Serialize};
use sigil_acl::AclPolicy;
use sigil_keyring::{KeyId, RootKey, RootKeyMeta};

use crate::{AclToken, AllocId, Allocation, IssuedIdentity, Job, NodeId, PlanId};

/// One replicated state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// The first active key, proposed by a leader that found none. Applied only while the
    /// keyring has no active key, so two leaders racing to initialize leave exactly one.
    InitKeyring {
        /// The wrapped key, in state `active`.
        key: RootKey,
    },
    /// A rotation: a new active key (the old one becomes inactive in this same entry) or a
    /// prepublished key that activates later.
    RotateKey {
        /// The wrapped key, in state `active` or `prepublished`.
        key: RootKey,
        /// The client's id for this rotation; a second entry with the same id applies as a
        /// no-op answering the first key.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Activate a prepublished key whose publish time has come.
    PromoteKey {
        /// The prepublished key.
        key_id: KeyId,
    },
    /// Remove a key that no longer signs.
    RemoveKey {
        /// The key to remove.
        key_id: KeyId,
        /// Remove it even while live allocations carry tokens it signed.
        force: bool,
    },
    /// A plan, its allocations and their signed identities.
    ApplyPlan(Box<PlanEntry>),
    /// A renewed identity of a live allocation, replacing the one of the same workload and name.
    RenewIdentity(Box<RenewEntry>),
    /// The one-time ACL bootstrap: the first management token. Applied only while the cluster
    /// was never bootstrapped, so of two racing bootstraps exactly one wins.
    BootstrapAcl(Box<AclToken>),
    /// Create or replace a policy, validated by the leader before proposing.
    UpsertPolicy(Box<AclPolicy>),
    /// Delete a policy; tokens that name it keep the name and lose its grants.
    DeletePolicy {
        /// The policy's name.
        name: String,
    },
    /// Create a token; its accessor id and secret hash must both be new.
    CreateToken(Box<AclToken>),
    /// Delete a token; its secret stops authenticating once this applies.
    DeleteToken {
        /// The token's accessor id.
        accessor_id: uuid::Uuid,
    },
}

/// The payload of [`Command::RenewIdentity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewEntry {
    /// The allocation.
    pub alloc_id: AllocId,
    /// The new token.
    pub identity: IssuedIdentity,
    /// The leader that signed it.
    pub signer: NodeId,
    /// The term it signed in; as for plans, it applies only if proposed in that term.
    pub term: u64,
}

/// The payload of [`Command::ApplyPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// The client's plan id; a second entry with the same id applies as a no-op.
    pub plan_id: PlanId,
    /// The job as submitted.
    pub job: Job,
    /// New allocations with their identities, signed by `signer` in term `term`.
    pub allocations: Vec<Allocation>,
    /// Allocations to stop.
    pub stop: Vec<AllocId>,
    /// The leader that built and signed this entry.
    pub signer: NodeId,
    /// The term in which it signed; the entry is applied only if it was proposed in that term.
    pub term: u64,
    /// Unix milliseconds on the leader when it built the entry.
    pub time_ms: u64,
}

/// What applying an entry answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// Applied; nothing to report (blank and membership entries, promotions, removals).
    Applied,
    /// A key was added.
    Key(RootKeyMeta),
    /// A plan was applied, or replayed from its first application.
    Plan(Box<PlanOutcome>),
    /// The entry was valid Raft but the state refused it; nothing changed.
    Rejected(Rejection),
}

/// The result of a plan, as stored for replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutcome {
    /// The plan's id.
    pub plan_id: PlanId,
    /// Placed allocations with their identities.
    pub allocations: Vec<Allocation>,
    /// Stopped allocations.
    pub stopped: Vec<AllocId>,
    /// The log index of the entry that first applied the plan.
    pub log_index: u64,
    /// True when this is a replay of the first application.
    pub replayed: bool,
}

/// Why the state machine refused an entry. Deterministic: every server refuses it alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct Rejection {
    /// The class of refusal, which decides the gRPC status.
    pub kind: RejectionKind,
    /// What happened, for the caller.
    pub message: String,
}

/// Classes of [`Rejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectionKind {
    /// Something named does not exist.
    NotFound,
    /// The state does not allow it now (e.g. removing the active key).
    FailedPrecondition,
    /// Another leader got there first (e.g. the keyring was initialized meanwhile).
    Aborted,
}

impl Rejection {
    /// A rejection of the given kind.
    pub fn new(kind: RejectionKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InitKeyring { key } => write!(f, "InitKeyring({})", key.meta.key_id),
            Self::RotateKey { key, .. } => {
                write!(f, "RotateKey({}, {})", key.meta.key_id, key.meta.state)
            }
            Self::PromoteKey { key_id } => write!(f, "PromoteKey({key_id})"),
            Self::RemoveKey { key_id, force } => write!(f, "RemoveKey({key_id}, force={force})"),
            Self::RenewIdentity(renew) => write!(
                f,
                "RenewIdentity({}, {}/{})",
                renew.alloc_id,
                renew.identity.workload.name(),
                renew.identity.identity
            ),
            Self::BootstrapAcl(token) => write!(f, "BootstrapAcl({})", token.accessor_id),
            Self::UpsertPolicy(policy) => write!(f, "UpsertPolicy({})", policy.name),
            Self::DeletePolicy { name } => write!(f, "DeletePolicy({name})"),
            Self::CreateToken(token) => {
                write!(f, "CreateToken({}, {})", token.accessor_id, token.kind)
            }
            Self::DeleteToken { accessor_id } => write!(f, "DeleteToken({accessor_id})"),
            Self::ApplyPlan(plan) => write!(
                f,
                "ApplyPlan({}, {} allocs, {} stops)",
                plan.plan_id,
                plan.allocations.len(),
                plan.stop.len()
            ),
        }
    }
}
