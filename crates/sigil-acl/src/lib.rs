//! ACL policy grammar, compiled ACLs and capability checks; pure (no I/O, no clock).
//!
//! The server parses policies with [`PolicyRules::parse`] and validates them with
//! [`AclPolicy::new`] before proposing them; the state machine stores [`AclPolicy`] values; the
//! auth layer compiles a token's policies with [`Acl::compile`], or a workload identity's with
//! [`workload_policies`] and [`Acl::for_workload`], and handlers call the `allow_*` checks.
//! The behaviour follows Nomad's ACL system (section 6 of the reference notes); where Sigil
//! differs, the item's documentation says so.

mod acl;
mod capability;
mod error;
mod glob;
mod policy;
mod rules;
mod syntax;

pub use acl::{Acl, AclSummary, NamespaceGrant, VariableGrant, WorkloadGrant};
pub use capability::{
    NamespaceCapability, NamespacePolicy, OperatorCapability, OperatorPolicy, VariableCapability,
    VariableOp,
};
pub use error::{PolicyError, Position};
pub use policy::{
    AclPolicy, JobAcl, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, WorkloadScope, workload_policies,
};
pub use rules::{NamespaceRule, OperatorRule, PolicyRules, VariablePathRule};
