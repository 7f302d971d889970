//! Sigil's shared vocabulary: plans and their validation, allocations and issued identities, the
//! replicated [`Command`] set with its responses, and openraft's type configuration.
//!
//! Every crate above the pure ones (keyring, identity, acl) speaks these types; the state machine
//! applies them, the server builds them, the Raft layer carries them.

mod acl;
mod alloc;
mod command;
mod plan;
mod raft;

pub use acl::{AclToken, MAX_TOKEN_NAME_CHARS, SecretHash, TokenKind};
pub use alloc::{AllocId, AllocStatus, Allocation, IssuedIdentity, Workload};
pub use command::{
    Command, CommandResponse, PlanEntry, PlanOutcome, Rejection, RejectionKind, RenewEntry,
};
pub use plan::{
    ConsulBlock, DEFAULT_IDENTITY, IdentityBlock, Job, MAX_IDENTITIES_PER_PLAN, Placement, Plan,
    PlanId, Service, Task, TaskGroup, ValidationError, VaultBlock, workload_identities,
};
pub use raft::{LogEntry, NodeId, SigilNode, TypeConfig};
